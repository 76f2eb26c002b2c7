// Orders on a real PostgreSQL: every transition, the database trigger for every disallowed pair,
// and races (concurrent placement, confirm vs cancel, confirm vs expiry, two sweeps), with
// Invariants 1–5 (docs/invariants.md) checked after every step.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { pgErrorOf } from '../../src/db/errors.ts';
import { inventoryViolations } from '../../src/db/inventory.ts';
import { findOrder, orderViolations } from '../../src/db/orders.ts';
import type { DatabasePool } from '../../src/db/pool.ts';
import { sql } from '../../src/db/sql.ts';
import type { Outcome } from '../../src/domain/commands.ts';
import { transitions } from '../../src/domain/orders/states.ts';
import { HaatError } from '../../src/errors.ts';
import { expireReservations } from '../../src/worker/tasks/expire-reservations.ts';
import { disallowedPairs } from '../domain/order-states.test.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { apply, seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { TEA: 100, RICE: 100 });

async function invariantsHold(pool: DatabasePool = db.pool): Promise<void> {
  assert.deepEqual(await inventoryViolations(pool), [], 'invariants 1–3');
  assert.deepEqual(await orderViolations(pool), [], 'invariants 4–5');
}

let refs = 0;
const place = (items: Record<string, number>, pool: DatabasePool = db.pool) =>
  apply(pool, {
    type: 'order.place',
    payload: { buyer: 'b-1', ref: `T-${++refs}`, items: Object.entries(items).map(([sku, qty]) => ({ sku, qty: String(qty) })) },
  });
const orderOf = (outcome: Outcome) =>
  outcome.ok ? (outcome.result as { ref: string; total: { amount: number } }) : assert.fail(`refused: ${JSON.stringify(outcome)}`);
const move = (type: string, payload: Record<string, unknown>, pool: DatabasePool = db.pool) =>
  apply(pool, { type, payload }).catch((e: unknown) => e);
const confirm = (ref: string, amount: number, pool: DatabasePool = db.pool) =>
  move('order.confirm', { order: ref, payment_ref: `pay-${ref}`, amount: String(amount) }, pool);
/** 'ok', or the refusal's code: refused before acceptance (thrown) or when applied (stored outcome). */
const codeOf = (r: unknown): string =>
  r instanceof HaatError ? r.code : (r as Outcome).ok ? 'ok' : (r as Extract<Outcome, { ok: false }>).error.code;
const stateOf = async (ref: string, pool: DatabasePool = db.pool) => (await findOrder(pool, ref))?.state;

describe('order transitions', () => {
  test('the database holds the same transition table as the domain', async () => {
    const rows = await db.pool.any(
      sql.type(z.object({ from_state: z.string(), to_state: z.string() }))`select from_state, to_state from order_transition_rules`,
    );
    const table: Record<string, string[]> = {};
    for (const r of rows) table[r.from_state] = [...(table[r.from_state] ?? []), r.to_state];
    for (const [from, tos] of Object.entries(transitions)) assert.deepEqual((table[from] ?? []).sort(), [...tos].sort(), from);
  });

  test('every allowed transition works through its command, with its stock effect', async () => {
    const a = orderOf(await place({ TEA: 2 }));
    assert.equal(await stateOf(a.ref), 'pending');
    for (const [type, extra, state] of [
      ['order.confirm', { payment_ref: 'pay-a', amount: String(a.total.amount) }, 'confirmed'],
      ['order.ship', { tracking: 'AWB1' }, 'shipped'],
      ['order.deliver', {}, 'delivered'],
      ['order.refund', { reason: 'damaged' }, 'refunded'],
    ] as const) {
      const outcome = (await move(type, { order: a.ref, ...extra })) as Outcome;
      assert.equal(outcome.ok, true, `${type}: ${JSON.stringify(outcome)}`);
      assert.equal(await stateOf(a.ref), state);
    }
    const b = orderOf(await place({ TEA: 1 }));
    assert.equal(((await move('order.cancel', { order: b.ref, reason: 'buyer asked' })) as Outcome).ok, true);
    const c = orderOf(await place({ RICE: 3 }));
    await confirm(c.ref, c.total.amount);
    const before = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = 'RICE'`);
    assert.equal(((await move('order.cancel', { order: c.ref, reason: 'out of area' })) as Outcome).ok, true);
    const after = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = 'RICE'`);
    assert.equal(after, before + 3n, 'cancelling a confirmed order restocks');
    const d = orderOf(await place({ TEA: 1 }));
    await db.pool.query(sql.unsafe`update orders set expires_at = now() - interval '1 second' where ref = ${d.ref}`);
    assert.deepEqual(await expireReservations(db.pool, silent), [d.ref]);
    assert.equal(await stateOf(d.ref), 'expired');
    await invariantsHold();
  });

  test('a disallowed move through a command is transition_not_allowed (exit 3) and changes nothing', async () => {
    const a = orderOf(await place({ TEA: 1 }));
    for (const type of ['order.ship', 'order.deliver'] as const) {
      const error = await move(type, { order: a.ref });
      assert.ok(error instanceof HaatError && error.code === 'transition_not_allowed' && error.exitCode === 3, type);
    }
    const refund = await move('order.refund', { order: a.ref, reason: 'x' });
    assert.ok(refund instanceof HaatError && refund.code === 'transition_not_allowed');
    assert.equal(await stateOf(a.ref), 'pending');
    await invariantsHold();
  });

  test(`the database trigger refuses every one of the ${disallowedPairs.length} disallowed pairs, even from direct SQL`, async () => {
    const pathTo: Record<string, string[]> = {
      pending: [],
      confirmed: ['confirmed'],
      partially_shipped: ['confirmed', 'partially_shipped'],
      shipped: ['confirmed', 'shipped'],
      delivered: ['confirmed', 'shipped', 'delivered'],
      returned_to_origin: ['confirmed', 'shipped', 'returned_to_origin'],
      refunded: ['confirmed', 'shipped', 'delivered', 'refunded'],
      cancelled: ['cancelled'],
      expired: ['expired'],
    };
    let n = 0;
    for (const [from, to] of disallowedPairs) {
      const ref = `TRG-${++n}`;
      if (from === 'rejected') {
        await db.pool.query(
          sql.unsafe`insert into orders (ref, buyer, currency, state, total_amount, reject_reason) values (${ref}, 'b', 'INR', 'rejected', 0, 'insufficient_stock')`,
        );
      } else {
        await db.pool.query(
          sql.unsafe`insert into orders (ref, buyer, currency, state, total_amount, expires_at) values (${ref}, 'b', 'INR', 'pending', 0, now() + interval '1 hour')`,
        );
        for (const step of pathTo[from] ?? []) await db.pool.query(sql.unsafe`update orders set state = ${step} where ref = ${ref}`);
      }
      const error = await db.pool
        .query(sql.unsafe`update orders set state = ${to}, reject_reason = ${to === 'rejected' ? 'x' : null} where ref = ${ref}`)
        .catch((e: unknown) => e);
      assert.equal(pgErrorOf(error)?.code, 'HA000', `${from} -> ${to} must be refused`);
      assert.match(pgErrorOf(error)?.message ?? '', /^transition_not_allowed: /);
    }
    const direct = await db.pool
      .query(sql.unsafe`insert into orders (ref, buyer, currency, state, total_amount) values ('TRG-new', 'b', 'INR', 'shipped', 0)`)
      .catch((e: unknown) => e);
    assert.equal(pgErrorOf(direct)?.code, 'HA000', 'a new order cannot start shipped');
    await db.pool.query(sql.unsafe`delete from orders where ref like 'TRG-%'`);
  });
});

describe('orders under concurrency', () => {
  test('40 concurrent one-unit orders on 10 units: 10 pending, 30 rejected; then a concurrent mix of confirm, cancel and expire', async () => {
    const fresh = await createTestDatabase();
    await seedCatalog(fresh.pool, { LAST: 10 });
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        apply(fresh.pool, { type: 'order.place', payload: { buyer: `b-${i}`, ref: `C-${i}`, items: [{ sku: 'LAST', qty: '1' }] } }),
      ),
    );
    const pending = outcomes
      .filter((o) => o.ok)
      .map((o) => (o.ok ? (o.result as { ref: string; total: { amount: number } }) : assert.fail()));
    const rejected = outcomes.filter((o) => !o.ok);
    assert.equal(pending.length, 10);
    assert.equal(rejected.length, 30);
    for (const r of rejected) {
      assert.equal(r.ok === false && r.error.code, 'insufficient_stock');
      assert.equal(r.ok === false && (r.error.details.order as { state: string }).state, 'rejected');
    }
    await invariantsHold(fresh.pool);

    await fresh.pool.query(
      sql.unsafe`update orders set expires_at = now() - interval '1 second' where ref = any(${sql.array(
        pending.slice(6).map((p) => p.ref),
        'text',
      )})`,
    );
    await Promise.all([
      ...pending.slice(0, 3).map((p) => confirm(p.ref, p.total.amount, fresh.pool)),
      ...pending.slice(3, 6).map((p) => move('order.cancel', { order: p.ref, reason: 'changed mind' }, fresh.pool)),
      expireReservations(fresh.pool, silent),
      expireReservations(fresh.pool, silent),
      ...pending.slice(6, 8).map((p) => confirm(p.ref, p.total.amount, fresh.pool)),
    ]);
    const states = await Promise.all(pending.map((p) => stateOf(p.ref, fresh.pool)));
    assert.deepEqual(states.slice(0, 6), ['confirmed', 'confirmed', 'confirmed', 'cancelled', 'cancelled', 'cancelled']);
    assert.deepEqual(states.slice(6), ['expired', 'expired', 'expired', 'expired'], 'confirming after the deadline does not win');
    const stock = await fresh.pool.one(
      sql.type(z.object({ on_hand: z.bigint(), reserved: z.bigint() }))`select on_hand, reserved from inventory where sku = 'LAST'`,
    );
    assert.deepEqual(stock, { on_hand: 7n, reserved: 0n });
    await invariantsHold(fresh.pool);
  });

  test('two confirmations of one order at once: exactly one wins, the other is transition_not_allowed (exit 3)', async () => {
    for (let round = 0; round < 5; round++) {
      const o = orderOf(await place({ TEA: 1 }));
      const results = await Promise.all([
        move('order.confirm', { order: o.ref, payment_ref: `pay-${o.ref}-a`, amount: String(o.total.amount) }),
        move('order.confirm', { order: o.ref, payment_ref: `pay-${o.ref}-b`, amount: String(o.total.amount) }),
      ]);
      assert.deepEqual(results.map(codeOf).sort(), ['ok', 'transition_not_allowed'], JSON.stringify(results));
    }
    await invariantsHold();
  });

  test('confirm and cancel of one pending order at once: one effect each, in one order, never both on pending', async () => {
    // The state table (docs/contract.md, Orders) allows confirmed → cancelled, so when the confirmation
    // commits first the cancel is a cancellation of a confirmed order (restock); when the cancel
    // commits first the confirmation is refused with exit 3. Either way the order left pending exactly
    // once.
    for (let round = 0; round < 6; round++) {
      const o = orderOf(await place({ TEA: 1 }));
      const [confirmed, cancelled] = await Promise.all([
        confirm(o.ref, o.total.amount),
        move('order.cancel', { order: o.ref, reason: 'race' }),
      ]);
      assert.equal(codeOf(cancelled), 'ok', 'cancel is allowed from pending and from confirmed');
      const history = await db.pool.anyFirst(sql.type(z.object({ to_state: z.string() }))`
        select t.to_state from order_transitions t join orders o on o.id = t.order_id where o.ref = ${o.ref} order by t.id`);
      if (codeOf(confirmed) !== 'ok') {
        assert.equal(codeOf(confirmed), 'transition_not_allowed');
        assert.deepEqual(history, ['pending', 'cancelled']);
      } else {
        assert.deepEqual(history, ['pending', 'confirmed', 'cancelled']);
      }
    }
    await invariantsHold();
  });

  test('confirm racing the expiry sweep at the deadline, and two sweeps at once: one outcome each, nothing twice', async () => {
    const orders = await Promise.all([1, 2, 3, 4, 5, 6].map(() => place({ RICE: 1 }).then(orderOf)));
    await db.pool.query(
      sql.unsafe`update orders set expires_at = now() + interval '300 milliseconds' where ref = any(${sql.array(
        orders.map((o) => o.ref),
        'text',
      )})`,
    );
    await new Promise((r) => setTimeout(r, 300));
    const results = await Promise.all([
      ...orders.map((o) => confirm(o.ref, o.total.amount)),
      expireReservations(db.pool, silent),
      expireReservations(db.pool, silent),
    ]);
    // A sweep that ran just before the deadline found nothing due, and a confirmation just after it
    // was refused as late: that order waits for the next sweep (the cron's, each minute), as here.
    const later = await expireReservations(db.pool, silent);
    for (const o of orders) {
      const state = await stateOf(o.ref);
      assert.ok(state === 'confirmed' || state === 'expired', `${o.ref} is ${state}`);
      const moves = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
        select count(*) as n from order_transitions t join orders o on o.id = t.order_id where o.ref = ${o.ref} and t.from_state = 'pending'`);
      assert.equal(moves, 1n, `${o.ref} left pending exactly once`);
    }
    const expiredBySweeps = [...(results.at(-1) as string[]), ...(results.at(-2) as string[]), ...later];
    assert.equal(new Set(expiredBySweeps).size, expiredBySweeps.length, 'no order expired by both sweeps');
    await invariantsHold();
  });
});
