// The set-based expiry sweep (expireDueOrders, a fixed number of statements per batch) on a real
// PostgreSQL: many multi-line due orders over several batches expire exactly once with every row
// the per-order code wrote (reservations, stock, movements, transitions) and nothing else touched;
// a due order whose reservations were tampered with rolls the whole batch back; concurrent sweeps
// and a confirmation at the deadline end with one outcome per order. `haat reconcile` holds after
// each test (test/helpers/db.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { expireDueOrders } from '../../src/db/orders.ts';
import type { DatabasePool } from '../../src/db/pool.ts';
import { sql } from '../../src/db/sql.ts';
import { inTransaction } from '../../src/db/transaction.ts';
import type { Outcome } from '../../src/domain/commands.ts';
import { InvariantError } from '../../src/errors.ts';
import { expireReservations } from '../../src/worker/tasks/expire-reservations.ts';
import { assertReconciles, createTestDatabase } from '../helpers/db.ts';
import { apply, seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
const SKUS = { TEA: 50, RICE: 50, DAL: 50, GHEE: 50, JAM: 50 };
await seedCatalog(db.pool, SKUS);

let placed = 0;
async function place(pool: DatabasePool, items: Record<string, number>, ref = `P-${++placed}`) {
  const outcome: Outcome = await apply(pool, {
    type: 'order.place',
    payload: { buyer: 'b-1', ref, items: Object.entries(items).map(([sku, qty]) => ({ sku, qty: String(qty) })) },
  });
  if (!outcome.ok) assert.fail(`placement refused: ${JSON.stringify(outcome)}`);
  return outcome.result as { ref: string; total: { amount: number } };
}
const confirm = (pool: DatabasePool, o: { ref: string; total: { amount: number } }) =>
  apply(pool, { type: 'order.confirm', payload: { order: o.ref, payment_ref: `pay-${o.ref}`, amount: String(o.total.amount) } }).catch(
    (e: unknown) => e,
  );

/** Multi-line templates placed through the real write path (they stay pending, not due). */
const TEMPLATES: readonly Record<string, number>[] = [
  { TEA: 1 },
  { TEA: 2, RICE: 1 },
  { RICE: 1, DAL: 2, GHEE: 1 },
  { DAL: 1, GHEE: 2, JAM: 1, TEA: 1 },
];

/**
 * `count` pending orders `<prefix>1…`, set-based: each a copy of a template (its items, splits,
 * money and snapshot hash, first transition), holding one active reservation per line with its
 * reserve movement, the stock for it received first. Consistent: reconcile passes on the result.
 * `expires` is SQL for expires_at in terms of g (1…count); due orders are spread over time.
 */
async function cloneOrders(pool: DatabasePool, templates: readonly string[], count: number, prefix: string, expires: 'due' | 'later') {
  const expiresAt =
    expires === 'due' ? sql.fragment`now() - interval '1 hour' + c.g * interval '1 millisecond'` : sql.fragment`now() + interval '1 hour'`;
  await pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`create temp table tpl on commit drop as
      select (row_number() over (order by ref) - 1)::int as t, id from orders where ref = any(${sql.array(templates, 'text')})`);
    await tx.query(sql.unsafe`create temp table clone on commit drop as
      select g, gen_random_uuid() as id, ${prefix} || g as ref, g % ${templates.length} as t from generate_series(1, ${count}::int) g`);
    await tx.query(sql.unsafe`insert into orders (id, ref, buyer, currency, state, total_amount, commission_bps, snapshot_hash, expires_at)
      select c.id, c.ref, o.buyer, o.currency, 'pending', o.total_amount, o.commission_bps, o.snapshot_hash, ${expiresAt}
      from clone c join tpl x using (t) join orders o on o.id = x.id order by c.g`);
    await tx.query(sql.unsafe`insert into order_items (order_id, sku, qty, unit_price, total)
      select c.id, i.sku, i.qty, i.unit_price, i.total from clone c join tpl x using (t) join order_items i on i.order_id = x.id`);
    await tx.query(sql.unsafe`insert into order_seller_splits (order_id, seller, subtotal, commission, payout)
      select c.id, s.seller, s.subtotal, s.commission, s.payout from clone c join tpl x using (t) join order_seller_splits s on s.order_id = x.id`);
    await tx.query(sql.unsafe`insert into order_transitions (order_id, from_state, to_state, actor, reason)
      select c.id, tr.from_state, tr.to_state, tr.actor, tr.reason
      from clone c join tpl x using (t) join order_transitions tr on tr.order_id = x.id order by c.g, tr.id`);
    await tx.query(sql.unsafe`create temp table held on commit drop as
      select c.id::text as holder, i.sku, i.qty, c.g from clone c join tpl x using (t) join order_items i on i.order_id = x.id`);
    await tx.query(sql.unsafe`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reason)
      select sku, 'receive', sum(qty), 0, 'test seed' from held group by sku order by sku`);
    await tx.query(sql.unsafe`with created as (
        insert into reservations (holder, sku, qty) select holder, sku, qty from held order by g, sku returning id, sku, qty
      )
      insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reservation_id)
      select sku, 'reserve', 0, qty, id from created order by id`);
    await tx.query(sql.unsafe`update inventory i set on_hand = i.on_hand + h.qty, reserved = i.reserved + h.qty, updated_at = now()
      from (select sku, sum(qty)::int8 as qty from held group by sku) h where i.sku = h.sku`);
  });
  return Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
}

const Stock = z.object({ sku: z.string(), on_hand: z.bigint(), reserved: z.bigint() });
const stock = async (pool: DatabasePool) =>
  new Map((await pool.any(sql.type(Stock)`select sku, on_hand, reserved from inventory`)).map((r) => [r.sku, r]));
/** Active quantity per SKU held by the orders whose refs are given. */
async function heldBy(pool: DatabasePool, refs: readonly string[]): Promise<Map<string, bigint>> {
  const rows = await pool.any(sql.type(z.object({ sku: z.string(), qty: z.bigint() }))`
    select r.sku, sum(r.qty)::int8 as qty from reservations r join orders o on o.id::text = r.holder
    where o.ref = any(${sql.array(refs, 'text')}) and r.state = 'active' group by r.sku`);
  return new Map(rows.map((r) => [r.sku, r.qty]));
}
/** Everything about the given orders that the sweep could change, as one comparable text. */
const Fingerprint = z.object({ text: z.string() });
async function fingerprintOf(pool: DatabasePool, refs: readonly string[]): Promise<string> {
  return pool.oneFirst(sql.type(Fingerprint)`
    select concat_ws(' | ',
      (select string_agg(concat_ws(',', o.ref, o.state, o.updated_at, o.expires_at), ';' order by o.ref) from orders o where o.ref = any(${sql.array(refs, 'text')})),
      (select string_agg(concat_ws(',', r.id, r.state, r.closed_at), ';' order by r.id) from reservations r join orders o on o.id::text = r.holder where o.ref = any(${sql.array(refs, 'text')})),
      (select string_agg(concat_ws(',', t.id, t.to_state), ';' order by t.id) from order_transitions t join orders o on o.id = t.order_id where o.ref = any(${sql.array(refs, 'text')}))
    ) as text`);
}
/** The whole database's state the sweep writes to: a change anywhere shows. */
async function everything(pool: DatabasePool): Promise<string> {
  return pool.oneFirst(sql.type(Fingerprint)`
    select concat_ws(' | ',
      (select string_agg(concat_ws(',', id, state, updated_at), ';' order by id) from orders),
      (select string_agg(concat_ws(',', id, state, closed_at), ';' order by id) from reservations),
      (select string_agg(concat_ws(',', sku, on_hand, reserved, updated_at), ';' order by sku) from inventory),
      (select count(*)::text || '/' || coalesce(max(id), 0)::text from inventory_movements),
      (select count(*)::text || '/' || coalesce(max(id), 0)::text from order_transitions)
    ) as text`);
}

describe('the set-based expiry sweep', () => {
  test('1,500 due multi-line orders over several batches: exactly they expire, with every row the per-order sweep wrote', async () => {
    const templates = await Promise.all(TEMPLATES.map((items) => place(db.pool, items)));
    const due = await cloneOrders(
      db.pool,
      templates.map((t) => t.ref),
      1500,
      'D-',
      'due',
    );
    const later = await cloneOrders(
      db.pool,
      templates.map((t) => t.ref),
      200,
      'L-',
      'later',
    );
    // Confirmed orders keep the expires_at they had; one past it must be left alone too.
    const confirmedLate = await place(db.pool, { TEA: 1, DAL: 1 });
    const confirmedSoon = await place(db.pool, { JAM: 2 });
    for (const o of [confirmedLate, confirmedSoon]) assert.equal(((await confirm(db.pool, o)) as Outcome).ok, true);
    await db.pool.query(sql.unsafe`update orders set expires_at = now() - interval '2 hours' where ref = ${confirmedLate.ref}`);
    const untouched = [...templates.map((t) => t.ref), ...later, confirmedLate.ref, confirmedSoon.ref];

    const stockBefore = await stock(db.pool);
    const released = await heldBy(db.pool, due);
    const untouchedBefore = await fingerprintOf(db.pool, untouched);
    const marks = await db.pool.one(sql.type(z.object({ movement: z.bigint(), transition: z.bigint() }))`
      select (select coalesce(max(id), 0) from inventory_movements) as movement, (select coalesce(max(id), 0) from order_transitions) as transition`);

    // 400 a batch: four transactions (400, 400, 400, 300).
    const swept = await expireReservations(db.pool, silent, 'sweep-test', 400);
    assert.equal(swept.length, 1500);
    assert.deepEqual([...swept].sort(), [...due].sort(), 'exactly the due orders, each once');
    assert.deepEqual(await expireReservations(db.pool, silent), [], 'nothing left due');

    const states = await db.pool.any(sql.type(z.object({ state: z.string(), n: z.bigint() }))`
      select state, count(*) as n from orders where ref like 'D-%' group by state`);
    assert.deepEqual(states, [{ state: 'expired', n: 1500n }]);

    // Reservations: each of the due orders' closed once, to expired, one per item.
    const reservations = await db.pool.one(sql.type(
      z.object({ items: z.bigint(), reservations: z.bigint(), expired: z.bigint(), closed: z.bigint() }),
    )`
      select (select count(*) from order_items i join orders o on o.id = i.order_id where o.ref like 'D-%') as items,
             count(*) as reservations, count(*) filter (where r.state = 'expired') as expired,
             count(*) filter (where r.closed_at is not null) as closed
      from reservations r join orders o on o.id::text = r.holder where o.ref like 'D-%'`);
    assert.equal(reservations.reservations, reservations.items);
    assert.equal(reservations.expired, reservations.items);
    assert.equal(reservations.closed, reservations.items);

    // Stock: reserved lowered by exactly the due orders' quantities, on hand unchanged.
    const stockAfter = await stock(db.pool);
    for (const [sku, before] of stockBefore) {
      const after = stockAfter.get(sku);
      assert.equal(after?.on_hand, before.on_hand, `${sku} on hand`);
      assert.equal(after?.reserved, before.reserved - (released.get(sku) ?? 0n), `${sku} reserved`);
    }
    assert.ok([...released.values()].reduce((a, b) => a + b, 0n) > 3000n, 'the due orders held stock of several SKUs');

    // One 'expire' movement per reservation, as closeReservations wrote; nothing else new.
    const movements = await db.pool.any(sql.type(
      z.object({
        kind: z.string(),
        on_hand_delta: z.bigint(),
        reserved_delta: z.bigint(),
        reservation_id: z.bigint().nullable(),
        qty: z.bigint().nullable(),
        reason: z.string().nullable(),
        command_scope: z.string().nullable(),
        command_key: z.string().nullable(),
        holder_ref: z.string().nullable(),
      }),
    )`
      select m.kind, m.on_hand_delta, m.reserved_delta, m.reservation_id, r.qty, m.reason, m.command_scope, m.command_key, o.ref as holder_ref
      from inventory_movements m left join reservations r on r.id = m.reservation_id left join orders o on o.id::text = r.holder
      where m.id > ${marks.movement} order by m.id`);
    assert.equal(BigInt(movements.length), reservations.items);
    assert.equal(new Set(movements.map((m) => m.reservation_id)).size, movements.length, 'one movement per reservation');
    for (const m of movements) {
      assert.deepEqual(
        [m.kind, m.on_hand_delta, m.reserved_delta, m.reason, m.command_scope, m.command_key],
        ['expire', 0n, -(m.qty ?? 0n), null, null, null],
      );
      assert.match(m.holder_ref ?? '', /^D-/);
    }

    // One transition per order, as moveOrder wrote it; nothing else new.
    const transitions = await db.pool.any(sql.type(
      z.object({
        ref: z.string(),
        from_state: z.string().nullable(),
        to_state: z.string(),
        actor: z.string(),
        reason: z.string().nullable(),
        command_scope: z.string().nullable(),
        command_key: z.string().nullable(),
      }),
    )`
      select o.ref, t.from_state, t.to_state, t.actor, t.reason, t.command_scope, t.command_key
      from order_transitions t join orders o on o.id = t.order_id where t.id > ${marks.transition} order by t.id`);
    assert.equal(transitions.length, 1500);
    assert.deepEqual(transitions.map((t) => t.ref).sort(), [...due].sort());
    for (const t of transitions) {
      assert.deepEqual(
        [t.from_state, t.to_state, t.actor, t.reason, t.command_scope, t.command_key],
        ['pending', 'expired', 'sweep-test', 'reservation expired', null, null],
      );
    }

    // Each order's move, its reservations' closing and their movements share one transaction's clock.
    const clocks = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
      select count(*) as n from orders o
      join order_transitions t on t.order_id = o.id and t.to_state = 'expired'
      join reservations r on r.holder = o.id::text
      join inventory_movements m on m.reservation_id = r.id and m.kind = 'expire'
      where o.ref like 'D-%' and not (o.updated_at = t.at and r.closed_at = t.at and m.at = t.at)`);
    assert.equal(clocks, 0n);

    assert.equal(await fingerprintOf(db.pool, untouched), untouchedBefore, 'not-due, confirmed and template orders untouched');
    await assertReconciles(db.pool, 'after the sweep');
  });

  test('a due order whose reservations were tampered with: the sweep throws InvariantError and changes nothing', async () => {
    const broken = await createTestDatabase({
      corruptsOnPurpose: 'a pending order has a reservation closed by hand and another an item without a reservation',
    });
    await seedCatalog(broken.pool, SKUS);
    const templates = await Promise.all(TEMPLATES.map((items, i) => place(broken.pool, items, `BT-${i + 1}`)));
    await cloneOrders(
      broken.pool,
      templates.map((t) => t.ref),
      60,
      'B-',
      'due',
    );
    // B-7 (a template of several lines): one reservation already released, the others active.
    await broken.pool.query(sql.unsafe`
      update reservations set state = 'released', closed_at = now()
      where id = (select min(r.id) from reservations r join orders o on o.id::text = r.holder where o.ref = 'B-7')`);
    // B-12 (one TEA line): an item no reservation holds stock for.
    // (The database refuses a line added to an order after it was placed: the corruption goes
    // round its triggers.)
    await broken.pool.transaction(async (tx) => {
      await tx.query(sql.unsafe`set local session_replication_role = replica`);
      await tx.query(sql.unsafe`
        insert into order_items (order_id, sku, qty, unit_price, total)
        select id, 'JAM', 1, 12999, 12999 from orders where ref = 'B-12'`);
    });
    const before = await everything(broken.pool);

    await assert.rejects(expireReservations(broken.pool, silent), (error: unknown) => {
      assert.ok(error instanceof InvariantError, String(error));
      assert.match(error.message, /2 of 60 due orders/);
      assert.match(error.message, /order B-7: closed 3 reservations for 4 items/);
      assert.match(error.message, /order B-12: closed 1 reservations for 2 items/);
      return true;
    });
    assert.equal(await everything(broken.pool), before, 'rolled back: not one row changed');
    // Once it is broken nothing expires, not even the healthy orders of its batch: a finding for reconcile.
    await assert.rejects(
      inTransaction(broken.pool, (tx) => expireDueOrders(tx, 5000, 'again')),
      InvariantError,
    );
    assert.equal(await everything(broken.pool), before);
  });

  test('an order locked by a command in progress is skipped, and expired by the next sweep', async () => {
    const templates = await Promise.all(TEMPLATES.map((items) => place(db.pool, items)));
    const due = await cloneOrders(
      db.pool,
      templates.map((t) => t.ref),
      30,
      'K-',
      'due',
    );
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked: () => void = () => undefined;
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const holder = db.pool.transaction(async (tx) => {
      await tx.query(sql.unsafe`select 1 from orders where ref = 'K-5' for update`);
      locked();
      await gate;
    });
    await isLocked;
    try {
      const swept = await expireReservations(db.pool, silent);
      assert.deepEqual([...swept].sort(), due.filter((r) => r !== 'K-5').sort());
      assert.equal(
        await db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where ref = 'K-5'`),
        'pending',
      );
    } finally {
      release();
      await holder;
    }
    assert.deepEqual(await expireReservations(db.pool, silent), ['K-5']);
  });

  test('two sweeps at once and a confirmation at the deadline: every order leaves pending once, nothing is expired twice', async () => {
    const templates = await Promise.all(TEMPLATES.map((items) => place(db.pool, items)));
    const due = await cloneOrders(
      db.pool,
      templates.map((t) => t.ref),
      600,
      'C-',
      'due',
    );
    const soon = await place(db.pool, { TEA: 1, GHEE: 1 });
    await db.pool.query(sql.unsafe`update orders set expires_at = now() + interval '200 milliseconds' where ref = ${soon.ref}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Small batches, so the two sweeps interleave over many transactions on the same SKUs.
    const [a, b, confirmed] = await Promise.all([
      expireReservations(db.pool, silent, 'sweep-a', 50),
      expireReservations(db.pool, silent, 'sweep-b', 50),
      confirm(db.pool, soon),
    ]);
    // A sweep that ran just before the deadline left it, and a confirmation just after it was refused
    // as late: the next sweep expires it.
    const next = await expireReservations(db.pool, silent, 'sweep-c');
    const all = [...a, ...b, ...next];
    assert.equal(new Set(all).size, all.length, 'no order expired by two sweeps');
    const soonState = await db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where ref = ${soon.ref}`);
    assert.ok(soonState === 'confirmed' || soonState === 'expired', soonState);
    assert.equal((confirmed as Outcome).ok === true, soonState === 'confirmed', JSON.stringify(confirmed));
    assert.deepEqual([...all].sort(), [...due, ...(soonState === 'expired' ? [soon.ref] : [])].sort());

    const twice = await db.pool.any(sql.type(z.object({ ref: z.string(), n: z.bigint() }))`
      select o.ref, count(*) as n from order_transitions t join orders o on o.id = t.order_id
      where t.from_state = 'pending' and (o.ref like 'C-%' or o.ref = ${soon.ref}) group by o.ref having count(*) <> 1`);
    assert.deepEqual(twice, [], 'each order left pending exactly once');
    const movedTwice = await db.pool.anyFirst(sql.type(z.object({ id: z.bigint() }))`
      select reservation_id as id from inventory_movements where kind in ('expire', 'finalize')
      group by reservation_id having count(*) > 1`);
    assert.deepEqual(movedTwice, [], 'each reservation closed once');
    await assertReconciles(db.pool, 'after concurrent sweeps');
  });
});
