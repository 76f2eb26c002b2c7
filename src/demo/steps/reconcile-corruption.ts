// Guarantee: what the database cannot refuse, reconcile finds. One unit of stock is added with
// plain SQL behind haat's back (no movement records it); `haat reconcile` names that SKU, and only it.
import { sql } from '../../db/sql.ts';
import { errorCode, exitOf, stock } from '../reads.ts';
import type { Step } from '../step.ts';

/** The SKU of the first step, by then with a history of races. */
export const CORRUPTED_SKU = 'ASSAM-TEA';

type Violations = { error?: { details?: { checks?: { name: string; ok: boolean; violations: { sku?: string; detail?: string }[] }[] } } };

export const reconcileNamesCorruption: Step = {
  name: 'reconcile_names_corruption',
  claim: '`haat reconcile` names a deliberately corrupted row',
  run: async (ctx, check) => {
    const before = await stock(ctx.pool, CORRUPTED_SKU);
    await ctx.pool.query(sql.unsafe`update inventory set on_hand = on_hand + 1 where sku = ${CORRUPTED_SKU}`);
    check(`${CORRUPTED_SKU} on hand after the SQL`, (await stock(ctx.pool, CORRUPTED_SKU)).on_hand, before.on_hand + 1n);
    const run = await ctx.haat('reconcile', '--json');
    check('`haat reconcile` exits', `exit ${run.code} ${errorCode(run)}`, 'exit 1 invariant_violation');
    const checks = ((run.json ?? {}) as Violations).error?.details?.checks ?? [];
    const failed = checks.filter((c) => !c.ok);
    check(
      'the checks that fail',
      failed.map((c) => c.name),
      ['on_hand_is_movements'],
    );
    const named = failed.flatMap((c) => c.violations);
    check(
      'the rows it names',
      named.map((v) => v.sku),
      [CORRUPTED_SKU],
    );
    return {
      did: `SQL behind haat's back: update inventory set on_hand = on_hand + 1 where sku = '${CORRUPTED_SKU}' (no movement); then \`haat reconcile\``,
      saw: `${exitOf(run)}: ${failed.map((c) => c.name).join(', ') || 'nothing'} names ${named.map((v) => `${v.sku} (${v.detail})`).join(', ') || 'nothing'}; ${checks.length - failed.length} of ${checks.length} checks hold`,
    };
  },
};
