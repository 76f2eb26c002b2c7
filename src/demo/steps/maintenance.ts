// Guarantee: maintenance mode holds domain work without losing it, and operators are never locked
// out: a CLI write is refused (exit 5), a webhook is accepted but its job waits (no attempt used),
// an audited bypass goes through, and when maintenance ends the held job applies.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { findKey, jobKeyOf } from '../../db/idempotency.ts';
import { maintenanceStatus } from '../../db/operations.ts';
import { sql } from '../../db/sql.ts';
import { orderPlacedBody } from '../context.ts';
import { exitOf, orderState, stock } from '../reads.ts';
import type { Step } from '../step.ts';

const SKU = 'CANE-CHAIR';
const HELD_ID = 'evt_held_1';
const HELD_REF = 'HELD-1';
const BYPASS_KEY = 'bypass-cane-chair-1';
const BYPASS_REASON = 'demo: the supplier is at the door';
/** Long enough for an idle worker to have taken the job many times over, were it allowed to. */
const HOLD_MS = 1500;

export const maintenanceHoldsWork: Step = {
  name: 'maintenance_holds_work',
  claim: 'Maintenance mode holds work, and an audited bypass gets through',
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 420_000, 2);
    const on = await ctx.haat('maintenance', 'on', '--reason', 'demo: a quiet hour', '--message', 'back soon', '--yes', '--json');
    try {
      check('`haat maintenance on` exits', exitOf(on), 'exit 0');
      const refused = await ctx.haat('stock', 'receive', SKU, '1', '--json');
      check('a CLI write (`haat stock receive`) exits', exitOf(refused), 'exit 5 maintenance_mode');
      const accepted = await ctx.post(
        'storefront',
        HELD_ID,
        orderPlacedBody({ ref: HELD_REF, buyer: 'web-buyer-9', items: [{ sku: SKU, qty: 1 }] }),
      );
      check('a webhook is still accepted (HTTP)', accepted, 202);
      await sleep(HOLD_MS, undefined, { signal: ctx.signal });
      const job = await ctx.pool.maybeOne(sql.type(z.object({ attempts: z.number(), locked: z.boolean() }))`
        select attempts, locked_at is not null as locked from graphile_worker.jobs where key = ${jobKeyOf('webhook:storefront', HELD_ID)}`);
      check(`after ${HOLD_MS / 1000} s its job is queued, untouched`, job, { attempts: 0, locked: false });
      check(`its command is`, (await findKey(ctx.pool, 'webhook:storefront', HELD_ID))?.state ?? null, 'pending');
      check(`order ${HELD_REF} exists`, (await orderState(ctx.pool, HELD_REF)) !== null, false);

      const bypass = await ctx.haat(
        'stock',
        'receive',
        SKU,
        '3',
        '--bypass-maintenance',
        '--reason',
        BYPASS_REASON,
        '--idempotency-key',
        BYPASS_KEY,
        '--json',
      );
      check('the same write with --bypass-maintenance --reason exits', exitOf(bypass), 'exit 0');
      check(`${SKU} on hand (2 + 3)`, (await stock(ctx.pool, SKU)).on_hand, 5n);
      const audited = await ctx.pool.any(sql.type(z.object({ actor: z.string(), reason: z.string() }))`
        select actor, reason from audit_log where action = 'maintenance.bypass' and target = ${`command:cli:${BYPASS_KEY}`}`);
      check('its audit row (actor, reason)', audited, [{ actor: 'haat-demo', reason: BYPASS_REASON }]);
      const onHand = (await stock(ctx.pool, SKU)).on_hand;

      const off = await ctx.haat('maintenance', 'off', '--reason', 'demo: done', '--json');
      check('`haat maintenance off` exits', exitOf(off), 'exit 0');
      const outcome = await ctx.eventOutcome('storefront', HELD_ID);
      check('then the held webhook is applied', outcome.ok, true);
      const held = await orderState(ctx.pool, HELD_REF);
      check(`order ${HELD_REF} is`, held, 'pending');
      const toggles = await ctx.pool.anyFirst(sql.type(z.object({ action: z.string() }))`
        select action from audit_log where target = 'maintenance' order by id`);
      check('maintenance audit rows', toggles, ['maintenance.on', 'maintenance.off']);
      return {
        did: `\`haat maintenance on\`; \`haat stock receive ${SKU} 1\`; a webhook for order ${HELD_REF}; the restock again with --bypass-maintenance --reason; \`haat maintenance off\``,
        saw: `restock ${exitOf(refused)}; webhook ${accepted}, after ${HOLD_MS / 1000} s still queued (${job?.attempts ?? 'no'} attempts, no order); bypass ${exitOf(bypass)}, on hand ${onHand}, ${audited.length} audit row; after off, ${HELD_REF} ${held ?? 'missing'}`,
      };
    } finally {
      // A step that failed half-way must not leave the rest of the tour held.
      if ((await maintenanceStatus(ctx.pool)).enabled) await ctx.haat('maintenance', 'off', '--reason', 'demo: a step failed', '--json');
    }
  },
};
