// Reservations under real concurrency: many connections at once, then invariants 1–3
// (docs/invariants.md).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { pgErrorOf } from '../../src/db/errors.ts';
import { closeReservations, inventoryViolations, reserve } from '../../src/db/inventory.ts';
import type { DatabasePool } from '../../src/db/pool.ts';
import { sql } from '../../src/db/sql.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { HOT: 10, A: 100, B: 100, CLOSE: 5 });

/** Asserts the error is PostgreSQL refusing with this constraint. */
const violates = (constraint: string) => (error: unknown) => pgErrorOf(error)?.constraint === constraint;

const count = (q: ReturnType<typeof sql.unsafe>) => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select (${q})::int8 as n`);

/** The wrong way, kept only to prove the test can fail: read, decide in JavaScript, write back, no lock. */
async function naiveReserve(pool: DatabasePool, holder: string, sku: string, qty: bigint): Promise<boolean> {
  return pool.transaction(async (tx) => {
    const row = await tx.one(
      sql.type(z.object({ on_hand: z.bigint(), reserved: z.bigint() }))`select on_hand, reserved from inventory where sku = ${sku}`,
    );
    if (row.on_hand - row.reserved < qty) return false;
    await tx.query(sql.unsafe`select pg_sleep(0.02)`);
    await tx.query(sql.unsafe`update inventory set reserved = ${row.reserved + qty} where sku = ${sku}`);
    await tx.query(sql.unsafe`insert into reservations (holder, sku, qty) values (${holder}, ${sku}, ${qty})`);
    await tx.query(
      sql.unsafe`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta) values (${sku}, 'reserve', 0, ${qty})`,
    );
    return true;
  });
}

describe('reserve', () => {
  test('50 concurrent one-unit reservations on 10 available reserve exactly 10, and invariants 1–3 hold', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => db.pool.transaction((tx) => reserve(tx, `order-${i}`, [{ sku: 'HOT', qty: 1n }], null))),
    );
    assert.equal(results.filter((r) => r.ok).length, 10);
    for (const r of results.filter((r) => !r.ok)) assert.equal(r.ok === false && r.code, 'insufficient_stock');
    assert.deepEqual(await inventoryViolations(db.pool), []);
    assert.equal(await count(sql.unsafe`select reserved from inventory where sku = 'HOT'`), 10n);
    assert.equal(await count(sql.unsafe`select count(*) from reservations where sku = 'HOT' and state = 'active'`), 10n);
  });

  test('the same race without FOR UPDATE (read, decide in JavaScript, write back) oversells: the test can fail', async () => {
    const fresh = await createTestDatabase({ corruptsOnPurpose: 'the naive control oversells, which is what it proves' });
    await seedCatalog(fresh.pool, { HOT: 10 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => naiveReserve(fresh.pool, `order-${i}`, 'HOT', 1n)));
    const won = results.filter(Boolean).length;
    const violations = await inventoryViolations(fresh.pool);
    assert.ok(won > 10, `the naive variant let ${won} buyers reserve 10 units`);
    assert.ok(
      violations.some((v) => v.check === 'reserved_is_active_reservations'),
      'the invariant check sees it',
    );
  });

  test('orders locking [A, B] and [B, A] at once never deadlock', async () => {
    const runs = Array.from({ length: 40 }, (_, i) =>
      db.pool.transaction(async (tx) => {
        const lines =
          i % 2 === 0
            ? [
                { sku: 'A', qty: 1n },
                { sku: 'B', qty: 1n },
              ]
            : [
                { sku: 'B', qty: 1n },
                { sku: 'A', qty: 1n },
              ];
        const result = await reserve(tx, `ab-${i}`, lines, null);
        await tx.query(sql.unsafe`select pg_sleep(0.01)`);
        return result;
      }),
    );
    const settled = await Promise.allSettled(runs);
    const failures = settled.filter((s) => s.status === 'rejected');
    assert.deepEqual(failures, [], 'no transaction failed (no 40P01 deadlock)');
    assert.deepEqual(await inventoryViolations(db.pool), []);
  });

  test('locking in the order given instead of by SKU does deadlock: the test above can fail', async () => {
    let deadlocks = 0;
    const lockInGivenOrder = (first: string, second: string) =>
      db.pool
        .transaction(async (tx) => {
          await tx.query(sql.unsafe`select 1 from inventory where sku = ${first} for update`);
          await tx.query(sql.unsafe`select pg_sleep(0.1)`);
          await tx.query(sql.unsafe`select 1 from inventory where sku = ${second} for update`);
        })
        .catch((error: unknown) => {
          if (
            String((error as { cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code).includes('40P01') ||
            /deadlock/.test(String(error))
          )
            deadlocks++;
          else throw error;
        });
    await Promise.all([lockInGivenOrder('A', 'B'), lockInGivenOrder('B', 'A')]);
    assert.equal(deadlocks, 1);
  });

  test('merges duplicate SKUs in one request and reserves all or none', async () => {
    const fresh = await createTestDatabase();
    await seedCatalog(fresh.pool, { X: 3, Y: 1 });
    const refused = await fresh.pool.transaction((tx) =>
      reserve(
        tx,
        'o1',
        [
          { sku: 'X', qty: 2n },
          { sku: 'Y', qty: 2n },
        ],
        null,
      ),
    );
    assert.equal(refused.ok, false);
    assert.deepEqual(refused.ok === false && refused.code === 'insufficient_stock' ? refused.shortages : null, [
      { sku: 'Y', requested: 2n, available: 1n },
    ]);
    assert.equal(
      await fresh.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select sum(reserved)::int8 as n from inventory`),
      0n,
      'nothing reserved',
    );
    const merged = await fresh.pool.transaction((tx) =>
      reserve(
        tx,
        'o2',
        [
          { sku: 'X', qty: 1n },
          { sku: 'X', qty: 2n },
        ],
        null,
      ),
    );
    assert.equal(merged.ok && merged.reservations.length, 1);
    assert.equal(merged.ok && merged.reservations[0]?.qty, 3n);
    const missing = await fresh.pool.transaction((tx) => reserve(tx, 'o3', [{ sku: 'NOPE', qty: 1n }], null));
    assert.deepEqual(missing, { ok: false, code: 'not_found', missing: ['NOPE'] });
    assert.deepEqual(await inventoryViolations(fresh.pool), []);
  });
});

describe('close reservations', () => {
  test('finalize ships the stock, release returns it, and a reservation closes exactly once even when raced', async () => {
    const made = await db.pool.transaction((tx) => reserve(tx, 'c1', [{ sku: 'CLOSE', qty: 2n }], null));
    assert.ok(made.ok);
    const id = made.reservations[0]!.id;
    const raced = await Promise.all([
      db.pool.transaction((tx) => closeReservations(tx, [id], 'finalized', null)),
      db.pool.transaction((tx) => closeReservations(tx, [id], 'released', null)),
      db.pool.transaction((tx) => closeReservations(tx, [id], 'expired', null)),
    ]);
    assert.equal(raced.filter((closed) => closed.length === 1).length, 1, 'exactly one close wins');
    const state = await db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from reservations where id = ${id}`);
    const stock = await db.pool.one(
      sql.type(z.object({ on_hand: z.bigint(), reserved: z.bigint() }))`select on_hand, reserved from inventory where sku = 'CLOSE'`,
    );
    assert.equal(stock.reserved, 0n);
    assert.equal(stock.on_hand, state === 'finalized' ? 3n : 5n);
    assert.deepEqual(await inventoryViolations(db.pool), []);
  });
});

describe('the database itself', () => {
  test('refuses reserved above on_hand or below zero, whatever the code does', async () => {
    await assert.rejects(
      db.pool.query(sql.unsafe`update inventory set reserved = on_hand + 1 where sku = 'A'`),
      violates('inventory_reserved_within_on_hand'),
    );
    await assert.rejects(
      db.pool.query(sql.unsafe`update inventory set reserved = -1 where sku = 'A'`),
      violates('inventory_reserved_within_on_hand'),
    );
  });

  test('inventory movements are append-only: UPDATE, DELETE and TRUNCATE fail', async () => {
    await assert.rejects(db.pool.query(sql.unsafe`update inventory_movements set on_hand_delta = 0`), /append-only/);
    await assert.rejects(db.pool.query(sql.unsafe`delete from inventory_movements`), /append-only/);
    await assert.rejects(db.pool.query(sql.unsafe`truncate inventory_movements cascade`), /append-only/);
  });

  test('a closed reservation cannot be reopened or changed', async () => {
    const made = await db.pool.transaction((tx) => reserve(tx, 'c2', [{ sku: 'A', qty: 1n }], null));
    assert.ok(made.ok);
    const id = made.reservations[0]!.id;
    await db.pool.transaction((tx) => closeReservations(tx, [id], 'released', null));
    await assert.rejects(
      db.pool.query(sql.unsafe`update reservations set state = 'active', closed_at = null where id = ${id}`),
      /already released/,
    );
  });

  test('refuses a SKU code that is not canonical, so two codes never differ by case', async () => {
    await assert.rejects(
      db.pool.query(sql.unsafe`insert into skus (code, seller, price_amount, currency) values ('tea', 'tea-house', 1, 'INR')`),
      violates('skus_code_canonical'),
    );
  });
});
