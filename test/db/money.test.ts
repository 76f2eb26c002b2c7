// Money on a real PostgreSQL: frozen snapshots, unapplied payments, a balanced ledger.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { pgErrorOf } from '../../src/db/errors.ts';
import { balances } from '../../src/db/ledger.ts';
import { findOrder } from '../../src/db/orders.ts';
import { sql } from '../../src/db/sql.ts';
import type { Outcome } from '../../src/domain/commands.ts';
import { snapshotHash } from '../../src/domain/snapshot.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { apply, mustApply, seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { TEA: 50 }, 'tea-house');
await mustApply(db.pool, { type: 'seller.add', payload: { handle: 'rice-co', name: 'Rice Co' } });
await mustApply(db.pool, { type: 'sku.add', payload: { code: 'RICE', seller: 'rice-co', price: '33333', currency: 'INR' } });
await mustApply(db.pool, { type: 'stock.receive', payload: { sku: 'RICE', qty: '50' } });
await mustApply(db.pool, { type: 'sku.add', payload: { code: 'YEN', seller: 'rice-co', price: '100', currency: 'JPY' } });

let n = 0;
async function place(items: Record<string, number>): Promise<{ ref: string; id: string; total: bigint }> {
  const ref = `M-${++n}`;
  const result = (await mustApply(db.pool, {
    type: 'order.place',
    payload: { buyer: 'b', ref, items: Object.entries(items).map(([sku, q]) => ({ sku, qty: String(q) })) },
  })) as {
    id: string;
    total: { amount: number };
  };
  return { ref, id: result.id, total: BigInt(result.total.amount) };
}
const confirm = (ref: string, amount: bigint, paymentRef = `pay-${ref}`, currency?: string) =>
  apply(db.pool, {
    type: 'order.confirm',
    payload: { order: ref, payment_ref: paymentRef, amount: amount.toString(), ...(currency ? { currency } : {}) },
  }).catch((e: unknown) => e);
const splitsOf = (id: string) =>
  db.pool.any(sql.type(z.object({ seller: z.string(), subtotal: z.bigint(), commission: z.bigint(), payout: z.bigint() }))`
    select seller, subtotal, commission, payout from order_seller_splits where order_id = ${id}::uuid order by seller`);
const refusedBy = (error: unknown) => pgErrorOf(error)?.code === 'HA000';

describe('the money snapshot', () => {
  test('a multi-seller order stores prices, totals, the commission rate and a split that sums to the total', async () => {
    const o = await place({ TEA: 3, RICE: 1 });
    assert.equal(o.total, 3n * 12999n + 33333n);
    const splits = await splitsOf(o.id);
    // 10% commission (1000 bps), half-even per seller: 3899.7 → 3900; 3333.3 → 3333.
    assert.deepEqual(splits, [
      { seller: 'rice-co', subtotal: 33333n, commission: 3333n, payout: 30000n },
      { seller: 'tea-house', subtotal: 38997n, commission: 3900n, payout: 35097n },
    ]);
    const row = await findOrder(db.pool, o.ref);
    assert.equal(row?.commission_bps, 1000);
    const items = await db.pool.any(sql.type(z.object({ sku: z.string(), qty: z.bigint(), unit_price: z.bigint(), total: z.bigint() }))`
      select sku, qty, unit_price, total from order_items where order_id = ${o.id}::uuid`);
    const recomputed = snapshotHash({
      currency: 'INR',
      total: o.total,
      commissionBps: 1000,
      items: items.map((i) => ({ sku: i.sku, qty: i.qty, unitPrice: i.unit_price, total: i.total })),
      splits,
    });
    assert.equal(row?.snapshot_hash, recomputed, 'the stored hash matches the stored snapshot');
  });

  test('changing the catalog price or commission_bps after confirmation changes no confirmed order', async () => {
    const o = await place({ TEA: 2 });
    assert.equal(((await confirm(o.ref, o.total)) as Outcome).ok, true);
    const before = { order: await findOrder(db.pool, o.ref), splits: await splitsOf(o.id) };
    await db.pool.query(sql.unsafe`update skus set price_amount = 1 where code = 'TEA'`);
    await db.pool.query(sql.unsafe`update settings set value = '2500' where key = 'commission_bps'`);
    assert.deepEqual({ order: await findOrder(db.pool, o.ref), splits: await splitsOf(o.id) }, before);
    await db.pool.query(sql.unsafe`update skus set price_amount = 12999 where code = 'TEA'`);
    await db.pool.query(sql.unsafe`update settings set value = '1000' where key = 'commission_bps'`);
  });

  test("a direct SQL change to a confirmed order's money fails in the database", async () => {
    const o = await place({ TEA: 1 });
    await confirm(o.ref, o.total);
    for (const statement of [
      sql.unsafe`update orders set total_amount = 1 where ref = ${o.ref}`,
      sql.unsafe`update orders set commission_bps = 0 where ref = ${o.ref}`,
      sql.unsafe`update orders set currency = 'USD' where ref = ${o.ref}`,
      sql.unsafe`update order_items set unit_price = 1, total = qty where order_id = ${o.id}::uuid`,
      sql.unsafe`delete from order_items where order_id = ${o.id}::uuid`,
      sql.unsafe`update order_seller_splits set commission = 0, payout = subtotal where order_id = ${o.id}::uuid`,
    ]) {
      assert.ok(refusedBy(await db.pool.query(statement).catch((e: unknown) => e)), statement.sql);
    }
  });
});

describe('payments', () => {
  test('a wrong amount, a wrong currency, or a payment for an order no longer pending is kept as unapplied; the order does not change', async () => {
    const o = await place({ TEA: 1 });
    const wrongAmount = await confirm(o.ref, o.total - 1n, 'pay-short');
    assert.equal((wrongAmount as Outcome).ok === false && (wrongAmount as Extract<Outcome, { ok: false }>).error.code, 'amount_mismatch');
    const wrongCurrency = await confirm(o.ref, o.total, 'pay-usd', 'USD');
    assert.equal((wrongCurrency as Extract<Outcome, { ok: false }>).error.code, 'currency_mismatch');
    assert.equal((await findOrder(db.pool, o.ref))?.state, 'pending');
    assert.equal(((await confirm(o.ref, o.total, 'pay-ok')) as Outcome).ok, true);
    const late = await confirm(o.ref, o.total, 'pay-twice');
    assert.equal((late as Extract<Outcome, { ok: false }>).error.code, 'transition_not_allowed');
    const unapplied = await db.pool.any(sql.type(z.object({ payment_ref: z.string(), reason: z.string() }))`
      select payment_ref, reason from payments where order_ref = ${o.ref} and state = 'unapplied' order by id`);
    assert.deepEqual(unapplied, [
      { payment_ref: 'pay-short', reason: 'amount_mismatch' },
      { payment_ref: 'pay-usd', reason: 'currency_mismatch' },
      { payment_ref: 'pay-twice', reason: 'order_not_pending' },
    ]);
    const again = await confirm(o.ref, o.total, 'pay-ok');
    assert.equal((again as { code?: string }).code, 'conflict', 'one payment_ref is recorded once');
  });
});

describe('the ledger', () => {
  test('confirmation posts capture → seller payables + commission, balanced; cancellation and refund reverse it', async () => {
    const o = await place({ TEA: 1, RICE: 2 });
    await confirm(o.ref, o.total);
    const captured = await balances(db.pool, o.id);
    const byAccount = Object.fromEntries(captured.map((b) => [b.account, b.balance]));
    assert.equal(byAccount.psp_clearing, o.total);
    assert.equal(
      captured.reduce((a, b) => a + b.balance, 0n),
      0n,
    );
    const payouts = -(byAccount['seller_payable:tea-house'] ?? 0n) - (byAccount['seller_payable:rice-co'] ?? 0n);
    assert.equal(payouts - (byAccount.platform_commission ?? 0n), o.total, 'payouts + commission = captured amount');
    await mustApply(db.pool, { type: 'order.cancel', payload: { order: o.ref, reason: 'out of stock' } });
    assert.deepEqual(
      (await balances(db.pool, o.id)).filter((b) => b.balance !== 0n),
      [],
      'cancellation after payment reverses every posting',
    );

    const r = await place({ TEA: 1 });
    await confirm(r.ref, r.total);
    await mustApply(db.pool, { type: 'order.ship', payload: { order: r.ref } });
    await mustApply(db.pool, { type: 'order.deliver', payload: { order: r.ref } });
    await mustApply(db.pool, { type: 'order.refund', payload: { order: r.ref, reason: 'damaged' } });
    assert.deepEqual(
      (await balances(db.pool, r.id)).filter((b) => b.balance !== 0n),
      [],
    );
    const kinds = await db.pool.anyFirst(
      sql.type(z.object({ kind: z.string() }))`select kind from journal_entries where order_id = ${r.id}::uuid order by id`,
    );
    assert.deepEqual(kinds, ['capture', 'refund']);
  });

  test('a journal entry that does not balance is refused at commit, and postings are append-only', async () => {
    const o = await place({ TEA: 1 });
    const error = await db.pool
      .transaction(async (tx) => {
        const id = await tx.oneFirst(
          sql.type(
            z.object({ id: z.bigint() }),
          )`insert into journal_entries (order_id, kind) values (${o.id}::uuid, 'capture') returning id`,
        );
        await tx.query(
          sql.unsafe`insert into postings (entry_id, account, amount, currency) values (${id}, 'psp_clearing', 100, 'INR'), (${id}, 'platform_commission', -99, 'INR')`,
        );
      })
      .catch((e: unknown) => e);
    assert.ok(refusedBy(error), 'unbalanced entry refused');
    assert.match(pgErrorOf(error)?.message ?? '', /does not balance/);
    assert.ok(refusedBy(await db.pool.query(sql.unsafe`update postings set amount = amount + 1`).catch((e: unknown) => e)));
    assert.ok(refusedBy(await db.pool.query(sql.unsafe`delete from journal_entries`).catch((e: unknown) => e)));
    const all = await balances(db.pool);
    const perCurrency = new Map<string, bigint>();
    for (const b of all) perCurrency.set(b.currency, (perCurrency.get(b.currency) ?? 0n) + b.balance);
    for (const [currency, sum] of perCurrency) assert.equal(sum, 0n, `all postings in ${currency} sum to zero`);
  });

  test('an order whose total would pass 10^18 minor units is refused before anything is stored', async () => {
    for (const code of ['BIG-1', 'BIG-2']) {
      await mustApply(db.pool, { type: 'sku.add', payload: { code, seller: 'rice-co', price: '1000000000000', currency: 'INR' } });
      await mustApply(db.pool, { type: 'stock.receive', payload: { sku: code, qty: '1000000' } });
    }
    const error = await apply(db.pool, {
      type: 'order.place',
      payload: {
        buyer: 'b',
        items: [
          { sku: 'BIG-1', qty: '1000000' },
          { sku: 'BIG-2', qty: '1000000' },
        ],
      },
    }).catch((e: unknown) => e);
    assert.equal((error as { code?: string }).code, 'invalid_input');
    const one = await apply(db.pool, { type: 'order.place', payload: { buyer: 'b', items: [{ sku: 'BIG-1', qty: '1000000' }] } });
    assert.equal(one.ok, true, 'exactly 10^18 is allowed');
  });

  test('an order mixing currencies is refused (currency_mismatch) before anything is stored', async () => {
    const error = await apply(db.pool, {
      type: 'order.place',
      payload: {
        buyer: 'b',
        items: [
          { sku: 'TEA', qty: '1' },
          { sku: 'YEN', qty: '1' },
        ],
      },
    }).catch((e: unknown) => e);
    assert.equal((error as { code?: string }).code, 'currency_mismatch');
    assert.equal((error as { exitCode?: number }).exitCode, 3);
  });
});
