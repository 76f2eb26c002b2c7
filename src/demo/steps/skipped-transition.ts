// Guarantee: an order moves only along the transition table. Shipping an unpaid order is refused
// by the CLI, and the same move written as SQL is refused by the database's trigger.
import { sql } from '../../db/sql.ts';
import { exitOf, orderState, refusalOf, transitionCount } from '../reads.ts';
import type { Step } from '../step.ts';

const SKU = 'BAMBOO-SHOOT-PICKLE';
const REF = 'SKIP-1';

export const skippedTransition: Step = {
  name: 'skipped_transition',
  claim: 'A skipped transition is refused, by the CLI and by SQL',
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 32_000, 3);
    const placed = await ctx.write('order.place', { buyer: 'buyer-b', ref: REF, items: [{ sku: SKU, qty: '1' }] });
    if (!placed.ok) throw new Error(`placing ${REF} was refused: ${placed.error.code}`);
    const transitions = await transitionCount(ctx.pool, REF);
    const ship = await ctx.haat('order', 'ship', REF, '--tracking', 'AWB-DEMO-1', '--json');
    check(`\`haat order ship ${REF}\` (pending, unpaid) exits`, exitOf(ship), 'exit 3 transition_not_allowed');
    const refusal = await refusalOf(() => ctx.pool.query(sql.unsafe`update orders set state = 'shipped' where ref = ${REF}`));
    check('SQL update orders set state = shipped is refused with', refusal?.code ?? 'not refused', 'transition_not_allowed');
    const state = await orderState(ctx.pool, REF);
    check(`${REF} is still`, state, 'pending');
    const added = (await transitionCount(ctx.pool, REF)) - transitions;
    check(`transitions added to ${REF}`, added, 0n);
    return {
      did: `\`haat order ship ${REF}\` on a pending (unpaid) order; then SQL: update orders set state = 'shipped' where ref = '${REF}'`,
      saw: `CLI: ${exitOf(ship)}; SQL: ${refusal ? `refused by the database (${refusal.message})` : 'ran'}; ${REF} is ${state}, ${added} transitions added`,
    };
  },
};
