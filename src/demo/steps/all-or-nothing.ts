// Guarantee: an order reserves every line or none. With one line short, nothing is held, not even
// the lines that were in stock; with enough of each, every line is reserved.
import { exitOf, movementCount, orderState, stock } from '../reads.ts';
import type { Step } from '../step.ts';

const STOLE = 'MUGA-SILK-STOLE';
const BASKET = 'CANE-BASKET';

export const allOrNothing: Step = {
  name: 'all_or_nothing',
  claim: 'A multi-item order is reserved in full or not at all',
  run: async (ctx, check) => {
    await ctx.addSku(STOLE, 250_000, 10);
    await ctx.addSku(BASKET, 60_000, 1);
    const place = (baskets: number, ref: string) =>
      ctx.haat('order', 'place', '--buyer', 'buyer-a', '--item', `${STOLE}:2`, '--item', `${BASKET}:${baskets}`, '--ref', ref, '--json');
    const short = await place(2, 'BOTH-1');
    check('the order with 2 baskets (1 in stock) exits', exitOf(short), 'exit 3 insufficient_stock');
    const shortState = await orderState(ctx.pool, 'BOTH-1');
    check('it is recorded', shortState, 'rejected');
    const stoleAfterShort = await stock(ctx.pool, STOLE);
    check(`${STOLE} reserved after it (10 were available)`, stoleAfterShort.reserved, 0n);
    check(`${BASKET} reserved after it`, (await stock(ctx.pool, BASKET)).reserved, 0n);
    check(`reserve movements of ${STOLE} after it`, await movementCount(ctx.pool, STOLE, 'reserve'), 0n);

    const fits = await place(1, 'BOTH-2');
    check('the same order with 1 basket exits', exitOf(fits), 'exit 0');
    const fitsState = await orderState(ctx.pool, 'BOTH-2');
    check('it is', fitsState, 'pending');
    const reserved = [(await stock(ctx.pool, STOLE)).reserved, (await stock(ctx.pool, BASKET)).reserved];
    check(`${STOLE} and ${BASKET} reserved`, reserved, [2n, 1n]);
    return {
      did: `\`haat order place\` 2 × ${STOLE} + 2 × ${BASKET} (10 stoles, 1 basket in stock); then the same with 1 basket`,
      saw: `first: ${exitOf(short)}, order ${shortState}, ${stoleAfterShort.reserved} stoles held; then: ${exitOf(fits)}, order ${fitsState}, ${reserved[0]} stoles + ${reserved[1]} basket reserved`,
    };
  },
};
