// Guarantee: once an order is paid its money is history. SQL that rewrites the total or a unit
// price of a confirmed order is refused by the database; the snapshot is unchanged.
import { z } from 'zod';
import { findOrder, orderItems } from '../../db/orders.ts';
import { sql } from '../../db/sql.ts';
import { formatMoney } from '../../domain/money.ts';
import { orderState, refusalOf } from '../reads.ts';
import type { Step } from '../step.ts';

const SKU = 'ORANGE-HONEY';
const REF = 'FROZEN-1';

async function money(ctx: Parameters<Step['run']>[0]) {
  const order = await findOrder(ctx.pool, REF);
  if (!order) throw new Error(`order ${REF} not found`);
  const items = await orderItems(ctx.pool, order.id);
  return { id: order.id, total: order.total_amount, hash: order.snapshot_hash, unitPrices: items.map((i) => i.unit_price) };
}

export const frozenMoney: Step = {
  name: 'frozen_money',
  claim: "A confirmed order's money is frozen, even for SQL",
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 35_000, 4);
    const placed = await ctx.write('order.place', { buyer: 'buyer-c', ref: REF, items: [{ sku: SKU, qty: '2' }] });
    if (!placed.ok) throw new Error(`placing ${REF} was refused: ${placed.error.code}`);
    const before = await money(ctx);
    const paid = await ctx.write('order.confirm', { order: REF, payment_ref: 'pay_frozen_1', amount: String(before.total) });
    if (!paid.ok) throw new Error(`confirming ${REF} was refused: ${paid.error.code}`);
    check(`${REF} is`, await orderState(ctx.pool, REF), 'confirmed');
    const total = await refusalOf(() => ctx.pool.query(sql.unsafe`update orders set total_amount = 1 where ref = ${REF}`));
    const price = await refusalOf(() =>
      ctx.pool.query(sql.unsafe`update order_items set unit_price = 1, total = 2 where order_id = ${before.id}::uuid`),
    );
    check('SQL update of the total is refused with', total?.code ?? 'not refused', 'conflict');
    check('SQL update of a unit price is refused with', price?.code ?? 'not refused', 'conflict');
    const after = await money(ctx);
    check('total, unit prices and snapshot hash', after, before);
    const stored = await ctx.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
      select count(*) as n from journal_entries e join orders o on o.id = e.order_id where o.ref = ${REF} and e.kind = 'capture'`);
    check('capture entries in the ledger', stored, 1n);
    const inr = (amount: bigint) => formatMoney({ amount, currency: 'INR' });
    return {
      did: `${REF} (2 × ${SKU}, ${inr(before.total)}) placed and paid; then SQL: update orders set total_amount = 1, update order_items set unit_price = 1`,
      saw: `the database: ${total?.message ?? 'ran the update of the total'}; ${price?.message ?? 'ran the update of the price'}; total ${inr(after.total)}, unit price ${after.unitPrices.map(inr).join(', ')}`,
    };
  },
};
