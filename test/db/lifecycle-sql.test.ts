// The order lifecycle's rules as the database enforces them, by direct SQL (migration 000014): the
// per-line counts' CHECKs and their only growing, the shipment and return machines (the same tables
// as the domain's), what a shipment and a return keep, money per seller by the commission rule,
// append-only history, the ledger's new account and entry kind, events written only by the
// database, and order moves only along order_transition_rules. The orders are made through the real
// write path; moves the database accepts are made inside a transaction that is rolled back, so the
// database stays one `haat reconcile` passes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { z } from 'zod';
import { type PgErrorFields, pgErrorOf } from '../../src/db/errors.ts';
import type { DatabaseTransaction, Queryable } from '../../src/db/pool.ts';
import { sql } from '../../src/db/sql.ts';
import { commissionKept } from '../../src/domain/orders/lifecycle.ts';
import { returnStates, returnTransitions } from '../../src/domain/orders/returns.ts';
import { shipmentStates, shipmentTransitions } from '../../src/domain/orders/shipments.ts';
import { type OrderState, orderStates, transitions } from '../../src/domain/orders/states.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { mustApply, seedCatalog } from '../helpers/seed.ts';

/** Every (from, to) pair of distinct states, split by whether the table allows it. */
function pairsOf<S extends string>(states: readonly S[], table: { readonly [K in S]: readonly S[] }) {
  const allowed = states.flatMap((from) => table[from].map((to) => [from, to] as const));
  const disallowed = states.flatMap((from) =>
    states.filter((to) => to !== from && !table[from].includes(to)).map((to) => [from, to] as const),
  );
  return { allowed, disallowed };
}

const db = await createTestDatabase();
await seedCatalog(db.pool, { TEA: 100 }, 'tea-house');
await mustApply(db.pool, { type: 'seller.add', payload: { handle: 'rice-co', name: 'Rice Co' } });
await mustApply(db.pool, { type: 'sku.add', payload: { code: 'RICE', seller: 'rice-co', price: '33333', currency: 'INR' } });
await mustApply(db.pool, { type: 'stock.receive', payload: { sku: 'RICE', qty: '100' } });

type Query = ReturnType<typeof sql.unsafe>;
const run = (type: string, payload: Record<string, unknown>) => mustApply(db.pool, { type, payload });

async function place(ref: string, items: Record<string, number>): Promise<{ id: string; ref: string }> {
  const placed = (await run('order.place', {
    buyer: 'b-1',
    ref,
    items: Object.entries(items).map(([sku, qty]) => ({ sku, qty: String(qty) })),
  })) as { id: string; total: { amount: number } };
  await run('order.confirm', { order: ref, payment_ref: `pay-${ref}`, amount: String(placed.total.amount) });
  return { id: placed.id, ref };
}
const stateOf = (id: string) =>
  db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where id = ${id}::uuid`);

// A confirmed order, a partly shipped one, a shipped one, and one that lived a lot: two sellers,
// a unit cancelled after payment, a parcel delivered, another failed and back at origin, a return
// received (restocked) and one still requested, and a refund by items. Every count of its TEA line
// is above zero.
const confirmed = await place('L-CONF', { TEA: 1 });
const partly = await place('L-PART', { TEA: 2 });
await run('order.ship', { order: partly.ref, items: [{ sku: 'TEA', qty: '1' }] });
const shipped = await place('L-SHIP', { TEA: 1 });
await run('order.ship', { order: shipped.ref, tracking: 'AWB-S' });
const rich = await place('L-RICH', { TEA: 5, RICE: 2 });
await run('order.cancel', { order: rich.ref, items: [{ sku: 'TEA', qty: '1' }], reason: 'one too many' });
await run('order.ship', {
  order: rich.ref,
  items: [{ sku: 'TEA', qty: '2' }],
  shipment_ref: 'SH-A',
  tracking: 'AWB-A',
  courier: 'delhivery',
});
await run('order.ship', { order: rich.ref, shipment_ref: 'SH-B', tracking: 'AWB-B' });
await run('shipment.deliver', { shipment: 'SH-A' });
await run('shipment.fail', { shipment: 'SH-B', reason: 'nobody home' });
await run('shipment.rto', { shipment: 'SH-B' });
await run('shipment.rto_receive', { shipment: 'SH-B' });
await run('return.request', { order: rich.ref, items: [{ sku: 'TEA', qty: '1' }], reason: 'too strong', ref: 'RT-A' });
await run('return.receive', { return: 'RT-A', disposition: 'restock', reason: 'sealed' });
await run('return.request', { order: rich.ref, items: [{ sku: 'TEA', qty: '1' }], reason: 'too weak', ref: 'RT-B' });
await run('order.refund', { order: rich.ref, items: [{ sku: 'TEA', qty: '1' }], reason: 'returned' });

const Lines = z.object({
  sku: z.string(),
  qty: z.bigint(),
  cancelled: z.bigint(),
  shipped: z.bigint(),
  delivered: z.bigint(),
  rto: z.bigint(),
  returned: z.bigint(),
});
const linesOf = (id: string) =>
  db.pool.any(sql.type(Lines)`
    select sku, qty, cancelled, shipped, delivered, rto, returned from order_items where order_id = ${id}::uuid order by sku`);

/** The refusal a statement meets (in a savepoint when `q` is a transaction); fails when it is accepted. */
async function refusal(q: Queryable, query: Query, what: string): Promise<PgErrorFields> {
  // A transaction of its own on the pool; a savepoint inside a transaction (which goes on after it).
  const error = await q
    .transaction((t) => t.query(query))
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  const pg = pgErrorOf(error);
  if (!pg) assert.fail(`${what} must be refused by the database, was ${error === undefined ? 'accepted' : String(error)}`);
  return pg;
}
async function refusedWith(q: Queryable, query: Query, what: string, code: string, pattern: RegExp | string): Promise<void> {
  const pg = await refusal(q, query, what);
  assert.equal(pg.code, code, `${what}: ${pg.message}`);
  if (typeof pattern === 'string') assert.equal(pg.constraint, pattern, `${what}: ${pg.message}`);
  else assert.match(pg.message, pattern, what);
}
const checkViolation = (q: Queryable, query: Query, what: string, constraint: string) => refusedWith(q, query, what, '23514', constraint);
const haatRefusal = (q: Queryable, query: Query, what: string, message: RegExp) => refusedWith(q, query, what, 'HA000', message);

const ROLLBACK = new Error('rolled back on purpose');
/** Runs `fn` in a transaction and rolls it back: what it shows accepted leaves no trace. */
async function rolledBack(fn: (tx: DatabaseTransaction) => Promise<void>): Promise<void> {
  const outcome = await db.pool
    .transaction(async (tx) => {
      await fn(tx);
      throw ROLLBACK;
    })
    .catch((e: unknown) => e);
  if (outcome !== ROLLBACK) throw outcome;
}

const rulesOf = async (table: 'shipment_transition_rules' | 'return_transition_rules' | 'order_transition_rules') => {
  const rows = await db.pool.any(
    sql.type(z.object({ from_state: z.string(), to_state: z.string() }))`select from_state, to_state from ${sql.identifier([table])}`,
  );
  return rows.map((r) => `${r.from_state} -> ${r.to_state}`).sort();
};
const domainRules = (table: { readonly [from: string]: readonly string[] }) =>
  Object.entries(table)
    .flatMap(([from, tos]) => tos.map((to) => `${from} -> ${to}`))
    .sort();

describe('the fixtures, made through the real write path', () => {
  test('are in the states and counts the tests below rely on', async () => {
    assert.deepEqual(await Promise.all([confirmed, partly, shipped, rich].map((o) => stateOf(o.id))), [
      'confirmed',
      'partially_shipped',
      'shipped',
      'delivered',
    ]);
    assert.deepEqual(await linesOf(rich.id), [
      { sku: 'RICE', qty: 2n, cancelled: 0n, shipped: 2n, delivered: 0n, rto: 2n, returned: 0n },
      { sku: 'TEA', qty: 5n, cancelled: 1n, shipped: 4n, delivered: 2n, rto: 2n, returned: 1n },
    ]);
  });
});

describe('the machines in the database are the domain’s', () => {
  test('shipment_transition_rules is exactly src/domain/orders/shipments.ts, both ways', async () => {
    assert.deepEqual(await rulesOf('shipment_transition_rules'), domainRules(shipmentTransitions));
  });
  test('return_transition_rules is exactly src/domain/orders/returns.ts, both ways', async () => {
    assert.deepEqual(await rulesOf('return_transition_rules'), domainRules(returnTransitions));
  });
  test('order_transition_rules is exactly src/domain/orders/states.ts, both ways', async () => {
    assert.deepEqual(await rulesOf('order_transition_rules'), domainRules(transitions));
  });
  test('the state CHECKs name exactly the domain’s states', async () => {
    const checkOf = (name: string) =>
      db.pool.oneFirst(sql.type(z.object({ def: z.string() }))`
        select pg_get_constraintdef(oid) as def from pg_constraint where conname = ${name}`);
    const statesIn = (def: string) => [...def.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]).sort();
    assert.deepEqual(statesIn(await checkOf('shipments_state_check')), [...shipmentStates].sort());
    assert.deepEqual(statesIn(await checkOf('returns_state_check')), [...returnStates].sort());
    assert.deepEqual(statesIn(await checkOf('orders_state_check')), [...orderStates].sort());
  });
});

describe('order_items counts', () => {
  const tea = (id: string) => sql.fragment`order_id = ${id}::uuid and sku = 'TEA'`;

  test('cancelled + shipped above qty is refused (CHECK)', async () => {
    await checkViolation(
      db.pool,
      sql.unsafe`update order_items set cancelled = 1, shipped = 1 where ${tea(confirmed.id)}`,
      '1 cancelled + 1 shipped of 1',
      'order_items_cancelled_shipped_within_qty',
    );
    await checkViolation(
      db.pool,
      sql.unsafe`update order_items set cancelled = 2 where ${tea(rich.id)}`,
      '2 cancelled + 4 shipped of 5',
      'order_items_cancelled_shipped_within_qty',
    );
  });

  test('delivered + rto above shipped is refused (CHECK)', async () => {
    await checkViolation(
      db.pool,
      sql.unsafe`update order_items set delivered = 3 where ${tea(rich.id)}`,
      '3 delivered + 2 rto of 4 shipped',
      'order_items_delivered_rto_within_shipped',
    );
    await checkViolation(
      db.pool,
      sql.unsafe`update order_items set delivered = 1 where order_id = ${rich.id}::uuid and sku = 'RICE'`,
      '1 delivered + 2 rto of 2 shipped',
      'order_items_delivered_rto_within_shipped',
    );
    await checkViolation(
      db.pool,
      sql.unsafe`update order_items set delivered = 1 where ${tea(confirmed.id)}`,
      'delivered with nothing shipped',
      'order_items_delivered_rto_within_shipped',
    );
  });

  test('returned above delivered is refused (CHECK)', async () => {
    await checkViolation(
      db.pool,
      sql.unsafe`update order_items set returned = 3 where ${tea(rich.id)}`,
      '3 returned of 2 delivered',
      'order_items_returned_within_delivered',
    );
  });

  test('a negative count is refused: by the CHECK on a new row, by the only-grow trigger on an update', async () => {
    for (const count of ['cancelled', 'shipped', 'delivered', 'rto', 'returned'] as const) {
      // (A line added to a placed order is refused by a trigger first: with triggers off for the
      // row, the CHECK is what refuses it. The transaction is rolled back either way.)
      await db.pool
        .transaction(async (tx) => {
          await tx.query(sql.unsafe`set local session_replication_role = replica`);
          await checkViolation(
            tx,
            sql.unsafe`insert into order_items (order_id, sku, qty, unit_price, total, ${sql.identifier([count])})
                       values (${confirmed.id}::uuid, 'RICE', 1, 33333, 33333, -1)`,
            `a new line with ${count} -1`,
            'order_items_counts_not_negative',
          );
          throw new Error('roll back');
        })
        .catch((e: unknown) => {
          if (!(e instanceof Error && e.message === 'roll back')) throw e;
        });
      await haatRefusal(
        db.pool,
        sql.unsafe`insert into order_items (order_id, sku, qty, unit_price, total) values (${confirmed.id}::uuid, 'RICE', 1, 33333, 33333)`,
        'a line added to a confirmed order',
        /^conflict: order_items rows are written with what they belong to/,
      );
      await haatRefusal(
        db.pool,
        sql.unsafe`update order_items set ${sql.identifier([count])} = -1 where ${tea(confirmed.id)}`,
        `${count} set to -1`,
        /^conflict: an item's quantities only grow/,
      );
    }
  });

  test('no count ever decreases, even within the CHECKs', async () => {
    for (const count of ['cancelled', 'shipped', 'delivered', 'rto', 'returned'] as const) {
      const column = sql.identifier([count]);
      await haatRefusal(
        db.pool,
        sql.unsafe`update order_items set ${column} = ${column} - 1 where ${tea(rich.id)}`,
        `${count} − 1`,
        /^conflict: an item's quantities only grow \(TEA of order /,
      );
    }
    // Shipped 4 → 3 with delivered and rto lowered too, all within the CHECKs: still refused.
    await haatRefusal(
      db.pool,
      sql.unsafe`update order_items set shipped = 3, rto = 1 where ${tea(rich.id)}`,
      'shipped and rto lowered together',
      /^conflict: an item's quantities only grow/,
    );
    assert.deepEqual((await linesOf(rich.id)).find((l) => l.sku === 'TEA')?.shipped, 4n, 'nothing changed');
  });

  test('a count that grows within the CHECKs is accepted (the refusals above are the rules, not any change)', async () => {
    await rolledBack(async (tx) => {
      await tx.query(sql.unsafe`update order_items set shipped = 1 where ${tea(confirmed.id)}`);
      await tx.query(sql.unsafe`update order_items set delivered = 1 where ${tea(confirmed.id)}`);
      await tx.query(sql.unsafe`update order_items set returned = 1 where ${tea(confirmed.id)}`);
      await tx.query(sql.unsafe`update order_items set cancelled = 1 where order_id = ${partly.id}::uuid`);
    });
  });
});

describe('shipments', () => {
  let n = 0;
  const path: Record<(typeof shipmentStates)[number], string[]> = {
    dispatched: [],
    delivered: ['delivered'],
    delivery_failed: ['delivery_failed'],
    rto_initiated: ['rto_initiated'],
    rto_received: ['rto_initiated', 'rto_received'],
  };
  /** A new shipment of the rich order, by SQL, walked to `state` along allowed moves. */
  async function shipmentIn(tx: DatabaseTransaction, state: (typeof shipmentStates)[number]): Promise<string> {
    const id = await tx.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into shipments (order_id, ref, state) values (${rich.id}::uuid, ${`Q-${++n}`}, 'dispatched') returning id`);
    for (const step of path[state]) await tx.query(sql.unsafe`update shipments set state = ${step} where id = ${id}::uuid`);
    return id;
  }

  test('a new shipment starts dispatched: any other first state is refused', async () => {
    for (const state of shipmentStates.filter((s) => s !== 'dispatched')) {
      await haatRefusal(
        db.pool,
        sql.unsafe`insert into shipments (order_id, ref, state) values (${rich.id}::uuid, ${`Q-new-${state}`}, ${state})`,
        `a new shipment in ${state}`,
        new RegExp(`^transition_not_allowed: a new shipments cannot start ${state}$`),
      );
    }
    await rolledBack(async (tx) => {
      assert.ok(await shipmentIn(tx, 'dispatched'));
    });
  });

  const { allowed, disallowed } = pairsOf(shipmentStates, shipmentTransitions);

  test(`every one of the ${disallowed.length} disallowed shipment moves is refused by SQL`, async () => {
    assert.equal(disallowed.length, 14);
    await rolledBack(async (tx) => {
      for (const [from, to] of disallowed) {
        const id = await shipmentIn(tx, from);
        await haatRefusal(
          tx,
          sql.unsafe`update shipments set state = ${to} where id = ${id}::uuid`,
          `${from} -> ${to}`,
          new RegExp(`^transition_not_allowed: shipments ${from} -> ${to}$`),
        );
        assert.equal(
          await tx.oneFirst(sql.type(z.object({ state: z.string() }))`select state from shipments where id = ${id}::uuid`),
          from,
        );
      }
    });
  });

  test(`every one of the ${allowed.length} allowed shipment moves is accepted by SQL`, async () => {
    assert.equal(allowed.length, 6);
    await rolledBack(async (tx) => {
      for (const [from, to] of allowed) {
        const id = await shipmentIn(tx, from);
        await tx.query(sql.unsafe`update shipments set state = ${to} where id = ${id}::uuid`);
        assert.equal(await tx.oneFirst(sql.type(z.object({ state: z.string() }))`select state from shipments where id = ${id}::uuid`), to);
      }
    });
  });

  test('a shipment keeps its tracking number, courier, order and ref; it is never deleted', async () => {
    const sh = sql.fragment`ref = 'SH-A'`;
    for (const [what, set] of [
      ['another tracking number', sql.fragment`tracking = 'AWB-Z'`],
      ['no tracking number', sql.fragment`tracking = null`],
      ['another courier', sql.fragment`courier = 'bluedart'`],
    ] as const) {
      await haatRefusal(
        db.pool,
        sql.unsafe`update shipments set ${set} where ${sh}`,
        what,
        /^conflict: a shipment keeps its tracking number and courier$/,
      );
    }
    await haatRefusal(
      db.pool,
      sql.unsafe`update shipments set tracking = 'AWB-1' where id = (select id from shipments where order_id = ${partly.id}::uuid)`,
      'a tracking number added later',
      /keeps its tracking number/,
    );
    await haatRefusal(
      db.pool,
      sql.unsafe`update shipments set order_id = ${confirmed.id}::uuid where ${sh}`,
      'another order',
      /^conflict: a shipments row keeps its identity$/,
    );
    await haatRefusal(db.pool, sql.unsafe`update shipments set ref = 'SH-Z' where ${sh}`, 'another ref', /keeps its identity/);
    await haatRefusal(db.pool, sql.unsafe`delete from shipments where ${sh}`, 'deleted', /^conflict: shipments is append-only$/);
    const row = await db.pool.one(sql.type(z.object({ tracking: z.string().nullable(), courier: z.string(), state: z.string() }))`
      select tracking, courier, state from shipments where ${sh}`);
    assert.deepEqual(row, { tracking: 'AWB-A', courier: 'delhivery', state: 'delivered' });
  });
});

describe('returns', () => {
  let n = 0;
  /** A new return of the rich order, by SQL, walked to `state`. */
  async function returnIn(tx: DatabaseTransaction, state: (typeof returnStates)[number]): Promise<string> {
    const id = await tx.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into returns (order_id, ref, state, reason) values (${rich.id}::uuid, ${`QR-${++n}`}, 'requested', 'by SQL') returning id`);
    if (state !== 'requested') await tx.query(sql.unsafe`update returns set ${setState(state)} where id = ${id}::uuid`);
    return id;
  }
  const setState = (state: string) => sql.fragment`state = ${state}, disposition = ${state === 'received' ? 'restock' : null}`;

  test('a new return starts requested: any other first state is refused', async () => {
    for (const state of returnStates.filter((s) => s !== 'requested')) {
      await haatRefusal(
        db.pool,
        sql.unsafe`insert into returns (order_id, ref, state, reason, disposition)
                   values (${rich.id}::uuid, ${`QR-new-${state}`}, ${state}, 'by SQL', ${state === 'received' ? 'restock' : null})`,
        `a new return in ${state}`,
        new RegExp(`^transition_not_allowed: a new returns cannot start ${state}$`),
      );
    }
  });

  const { allowed, disallowed } = pairsOf(returnStates, returnTransitions);

  test(`every one of the ${disallowed.length} disallowed return moves is refused by SQL, and both allowed ones accepted`, async () => {
    assert.deepEqual([allowed.length, disallowed.length], [2, 4]);
    await rolledBack(async (tx) => {
      for (const [from, to] of disallowed) {
        const id = await returnIn(tx, from);
        await haatRefusal(
          tx,
          sql.unsafe`update returns set ${setState(to)} where id = ${id}::uuid`,
          `${from} -> ${to}`,
          new RegExp(`^transition_not_allowed: returns ${from} -> ${to}$`),
        );
      }
      for (const [from, to] of allowed) {
        const id = await returnIn(tx, from);
        await tx.query(sql.unsafe`update returns set ${setState(to)} where id = ${id}::uuid`);
        assert.equal(await tx.oneFirst(sql.type(z.object({ state: z.string() }))`select state from returns where id = ${id}::uuid`), to);
      }
    });
  });

  test('a received return keeps its disposition; a return keeps its order and ref and is never deleted', async () => {
    for (const [what, value] of [
      ['written off instead', 'write_off'],
      ['no disposition', null],
    ] as const) {
      await haatRefusal(
        db.pool,
        sql.unsafe`update returns set disposition = ${value} where ref = 'RT-A'`,
        what,
        /^conflict: a received return keeps its disposition$/,
      );
    }
    await haatRefusal(
      db.pool,
      sql.unsafe`update returns set ref = 'RT-Z' where ref = 'RT-A'`,
      'another ref',
      /^conflict: a returns row keeps its identity$/,
    );
    await haatRefusal(db.pool, sql.unsafe`delete from returns where ref = 'RT-B'`, 'deleted', /^conflict: returns is append-only$/);
    // A requested return has no disposition to keep yet, and gets one only with its receipt (CHECK).
    await checkViolation(
      db.pool,
      sql.unsafe`update returns set disposition = 'restock' where ref = 'RT-B'`,
      'a disposition while requested',
      'returns_check',
    );
    assert.equal(
      await db.pool.oneFirst(
        sql.type(z.object({ disposition: z.string().nullable() }))`select disposition from returns where ref = 'RT-A'`,
      ),
      'restock',
    );
  });
});

describe('money per seller (order_seller_splits)', () => {
  const split = (id: string, seller = 'tea-house') => sql.fragment`order_id = ${id}::uuid and seller = ${seller}`;
  const Money = z.object({ captured: z.bigint(), refunded: z.bigint(), commission_kept: z.bigint() });
  const moneyOf = (id: string, seller = 'tea-house') =>
    db.pool.one(sql.type(Money)`select captured, refunded, commission_kept from order_seller_splits where ${split(id, seller)}`);

  test('the fixtures’ money is by the rule (1000 bps)', async () => {
    assert.equal(
      await db.pool.oneFirst(
        sql.type(z.object({ bps: z.number() }))`select commission_bps as bps from orders where id = ${confirmed.id}::uuid`,
      ),
      1000,
    );
    assert.deepEqual(await moneyOf(confirmed.id), { captured: 12999n, refunded: 0n, commission_kept: 1300n });
    // Five teas captured, one cancelled and one refunded by items: 3 × 12999 = 38997 kept at 10 %.
    assert.deepEqual(await moneyOf(rich.id), { captured: 64995n, refunded: 25998n, commission_kept: 3900n });
    assert.deepEqual(await moneyOf(rich.id, 'rice-co'), { captured: 66666n, refunded: 0n, commission_kept: 6667n });
  });

  test('refunded above captured is refused (CHECK), even with the commission by the rule', async () => {
    await checkViolation(
      db.pool,
      sql.unsafe`update order_seller_splits set refunded = captured + 1, commission_kept = haat_commission(-1, 1000) where ${split(confirmed.id)}`,
      'refunded = captured + 1',
      'order_seller_splits_refunded_within_captured',
    );
    await checkViolation(
      db.pool,
      sql.unsafe`update order_seller_splits set captured = subtotal + 1, commission_kept = haat_commission(subtotal + 1, 1000) where ${split(confirmed.id)}`,
      'captured = subtotal + 1',
      'order_seller_splits_captured_within_subtotal',
    );
  });

  test('a commission kept other than round_half_even((captured − refunded) × bps / 10000) is refused', async () => {
    for (const [what, set] of [
      ['one paisa more', sql.fragment`commission_kept = commission_kept + 1`],
      ['one paisa less', sql.fragment`commission_kept = commission_kept - 1`],
      ['a refund of 5 keeping 1300 (12994 → 1299)', sql.fragment`refunded = 5`],
      ['12995 × 10 % = 1299.5 truncated to 1299 (half-even is 1300)', sql.fragment`refunded = 4, commission_kept = 1299`],
      ['12985 × 10 % = 1298.5 rounded half up to 1299 (half-even is 1298)', sql.fragment`refunded = 14, commission_kept = 1299`],
    ] as const) {
      await haatRefusal(
        db.pool,
        sql.unsafe`update order_seller_splits set ${set} where ${split(confirmed.id)}`,
        what,
        /^conflict: commission kept \d+ is not round_half_even/,
      );
    }
    await rolledBack(async (tx) => {
      // A refund of 1 paisa: 12998 × 10 % = 1299.8 → 1300, the same commission, by the rule.
      await tx.query(sql.unsafe`update order_seller_splits set refunded = 1 where ${split(confirmed.id)}`);
      await tx.query(sql.unsafe`update order_seller_splits set refunded = 4, commission_kept = 1300 where ${split(confirmed.id)}`);
      await tx.query(sql.unsafe`update order_seller_splits set refunded = 14, commission_kept = 1298 where ${split(confirmed.id)}`);
      await tx.query(sql.unsafe`update order_seller_splits set refunded = 6499, commission_kept = 650 where ${split(confirmed.id)}`);
      await tx.query(sql.unsafe`update order_seller_splits set refunded = captured, commission_kept = 0 where ${split(confirmed.id)}`);
    });
  });

  test('captured and refunded never decrease', async () => {
    await haatRefusal(
      db.pool,
      sql.unsafe`update order_seller_splits set captured = captured - 1, commission_kept = haat_commission(captured - 1 - refunded, 1000) where ${split(confirmed.id)}`,
      'captured − 1',
      /^conflict: captured and refunded amounts only grow$/,
    );
    await haatRefusal(
      db.pool,
      sql.unsafe`update order_seller_splits set refunded = refunded - 1, commission_kept = haat_commission(captured - refunded + 1, 1000) where ${split(rich.id)}`,
      'refunded − 1',
      /^conflict: captured and refunded amounts only grow$/,
    );
    assert.deepEqual(await moneyOf(rich.id), { captured: 64995n, refunded: 25998n, commission_kept: 3900n });
  });

  test('the database’s haat_commission is the domain’s commissionKept, ties and extremes included', async () => {
    const cases = fc.sample(fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 14n }), fc.integer({ min: 0, max: 10_000 })), 300);
    cases.push(
      [333n, 1000],
      [335n, 1000],
      [325n, 1000],
      [1n, 5000],
      [3n, 5000],
      [5n, 1000],
      [15n, 1000],
      [0n, 10_000],
      [10n ** 14n, 10_000],
      [12999n, 0],
    );
    const rows = await db.pool.any(sql.type(z.object({ net: z.bigint(), bps: z.number(), kept: z.bigint() }))`
      select c.net, c.bps, haat_commission(c.net, c.bps) as kept
      from unnest(${sql.array(
        cases.map(([net]) => net.toString()),
        'int8',
      )}, ${sql.array(
        cases.map(([, bps]) => bps),
        'int4',
      )}) as c(net, bps)`);
    assert.equal(rows.length, cases.length);
    for (const r of rows) assert.equal(r.kept, commissionKept(r.net, 0n, r.bps), `${r.net} at ${r.bps} bps`);
  });
});

describe('append-only history', () => {
  const tables = [
    ['refunds', 'reason'],
    ['refund_items', 'qty'],
    ['refund_allocations', 'amount'],
    ['shipment_transitions', 'reason'],
    ['return_transitions', 'reason'],
    ['shipment_items', 'qty'],
    ['return_items', 'qty'],
  ] as const;
  for (const [table, column] of tables) {
    test(`${table} refuses UPDATE and DELETE`, async () => {
      const t = sql.identifier([table]);
      const c = sql.identifier([column]);
      const rows = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from ${t}`);
      assert.ok(rows > 0n, `the fixtures wrote ${table} rows`);
      const message = new RegExp(`^conflict: ${table} is append-only$`);
      await haatRefusal(db.pool, sql.unsafe`update ${t} set ${c} = ${c}`, `update ${table}`, message);
      await haatRefusal(db.pool, sql.unsafe`delete from ${t}`, `delete from ${table}`, message);
      assert.equal(await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from ${t}`), rows);
    });
  }
  for (const table of [
    'refunds',
    'shipment_transitions',
    'return_transitions',
    'refund_items',
    'refund_allocations',
    'shipment_items',
    'return_items',
    'shipments',
    'returns',
  ] as const) {
    test(`${table} refuses TRUNCATE`, async () => {
      await haatRefusal(db.pool, sql.unsafe`truncate ${sql.identifier([table])} cascade`, `truncate ${table}`, /is append-only$/);
    });
  }
  test('items are written with what they belong to: none is added to a shipment, return or refund later', async () => {
    for (const [table, insert] of [
      [
        'shipment_items',
        sql.unsafe`insert into shipment_items (shipment_id, sku, qty) select id, 'JAM', 1 from shipments where ref = 'SH-B'`,
      ],
      ['return_items', sql.unsafe`insert into return_items (return_id, sku, qty) select id, 'JAM', 1 from returns limit 1`],
      ['refund_items', sql.unsafe`insert into refund_items (refund_id, sku, qty) select id, 'JAM', 1 from refunds limit 1`],
      [
        'refund_allocations',
        sql.unsafe`insert into refund_allocations (refund_id, seller, amount, commission_reversed) select id, 'nobody', 1, 0 from refunds limit 1`,
      ],
      [
        'order_seller_splits',
        sql.unsafe`insert into order_seller_splits (order_id, seller, subtotal, commission, payout) values (${confirmed.id}::uuid, 'nobody', 1, 0, 1)`,
      ],
    ] as const) {
      await haatRefusal(
        db.pool,
        insert,
        `a row added to ${table}`,
        new RegExp(`^conflict: ${table} rows are written with what they belong to`),
      );
    }
  });
  test('an order keeps its payment method', async () => {
    await haatRefusal(
      db.pool,
      sql.unsafe`update orders set payment_method = 'cod' where id = ${confirmed.id}::uuid`,
      'a payment method changed',
      /^conflict: order .* keeps its payment method$/,
    );
  });
});

describe('the ledger learns cash on delivery', () => {
  test("a balanced 'delivery' entry debiting cod_receivable:<courier> is accepted, checks at commit included", async () => {
    await rolledBack(async (tx) => {
      const entry = await tx.oneFirst(sql.type(z.object({ id: z.bigint() }))`
        insert into journal_entries (order_id, kind) values (${rich.id}::uuid, 'delivery') returning id`);
      await tx.query(sql.unsafe`
        insert into postings (entry_id, account, amount, currency) values
          (${entry}, 'cod_receivable:delhivery', 12999, 'INR'),
          (${entry}, ${`cod_receivable:${'a'.repeat(63)}`}, 1, 'INR'),
          (${entry}, 'seller_payable:tea-house', -11700, 'INR'),
          (${entry}, 'platform_commission', -1300, 'INR')`);
      await tx.query(sql.unsafe`set constraints all immediate`);
    });
  });

  test('an unbalanced delivery entry is refused when it is checked', async () => {
    await rolledBack(async (tx) => {
      const entry = await tx.oneFirst(sql.type(z.object({ id: z.bigint() }))`
        insert into journal_entries (order_id, kind) values (${rich.id}::uuid, 'delivery') returning id`);
      await tx.query(
        sql.unsafe`insert into postings (entry_id, account, amount, currency) values (${entry}, 'cod_receivable:delhivery', 100, 'INR')`,
      );
      await haatRefusal(
        tx,
        sql.unsafe`set constraints all immediate`,
        'an unbalanced entry',
        /^conflict: journal entry \d+ does not balance$/,
      );
    });
  });

  test('a bad account is refused (CHECK)', async () => {
    await rolledBack(async (tx) => {
      const entry = await tx.oneFirst(sql.type(z.object({ id: z.bigint() }))`
        insert into journal_entries (order_id, kind) values (${rich.id}::uuid, 'delivery') returning id`);
      for (const account of [
        'cod_receivable',
        'cod_receivable:',
        'cod_receivable:Delhivery',
        'cod_receivable:-delhivery',
        'cod_receivable:del hivery',
        'cod_receivable:delhivery:x',
        `cod_receivable:${'a'.repeat(64)}`,
        'cod_receivables:delhivery',
        'cash',
        'psp_clearing:x',
        'seller_payable:',
        ' psp_clearing',
      ]) {
        await checkViolation(
          tx,
          sql.unsafe`insert into postings (entry_id, account, amount, currency) values (${entry}, ${account}, 1, 'INR')`,
          JSON.stringify(account),
          'postings_account_check',
        );
      }
    });
  });

  test("journal entry kinds: 'delivery' joins capture, cancellation and refund; others are refused", async () => {
    await rolledBack(async (tx) => {
      for (const kind of ['capture', 'cancellation', 'refund', 'delivery']) {
        await tx.query(sql.unsafe`insert into journal_entries (order_id, kind) values (${rich.id}::uuid, ${kind})`);
      }
      for (const kind of ['cod', 'deliver', 'collection', 'Delivery']) {
        await checkViolation(
          tx,
          sql.unsafe`insert into journal_entries (order_id, kind) values (${rich.id}::uuid, ${kind})`,
          kind,
          'journal_entries_kind_check',
        );
      }
    });
  });
});

describe('lifecycle events are written only by the database', () => {
  const insertEvent = (type: string, extra: ReturnType<typeof sql.fragment>) =>
    sql.unsafe`insert into outbound_events (id, type, order_id, sequence, data, shipment_transition_id, return_transition_id, refund_id)
               select outbox_id('evt_'), ${type}, ${rich.id}::uuid, 10000, '{}'::jsonb, s, r, f from ${extra}`;

  test('the write path wrote one shipment.<state> event per shipment transition', async () => {
    const counts = await db.pool.one(sql.type(z.object({ transitions: z.bigint(), events: z.bigint() }))`
      select (select count(*) from shipment_transitions t join shipments s on s.id = t.shipment_id where s.order_id = ${rich.id}::uuid) as transitions,
             (select count(*) from outbound_events where order_id = ${rich.id}::uuid and type like 'shipment.%') as events`);
    assert.ok(counts.transitions >= 6n, 'SH-A: dispatched, delivered; SH-B: dispatched, failed, rto, rto received');
    assert.equal(counts.events, counts.transitions);
  });

  test('a shipment.* event inserted by hand is refused: without its transition, for a made-up one, or a second for a real one', async () => {
    await checkViolation(
      db.pool,
      insertEvent('shipment.delivered', sql.fragment`(values (null::bigint, null::bigint, null::uuid)) as v(s, r, f)`),
      'a shipment event naming no transition',
      'outbound_events_shipment_check',
    );
    await haatRefusal(
      db.pool,
      insertEvent(
        'shipment.delivered',
        sql.fragment`(select max(id) + 1000, null::bigint, null::uuid from shipment_transitions) as v(s, r, f)`,
      ),
      'a shipment event for a made-up transition',
      /^conflict: outbound events are written by the database with the change they report, never directly$/,
    );
    await refusedWith(
      db.pool,
      insertEvent(
        'shipment.delivered',
        sql.fragment`(select t.id, null::bigint, null::uuid from shipment_transitions t join shipments s on s.id = t.shipment_id
                      where s.ref = 'SH-A' and t.to_state = 'delivered') as v(s, r, f)`,
      ),
      'a second event for a real transition',
      '23505',
      'outbound_events_shipment_transition_key',
    );
  });

  test('so are return.* and refund.issued events inserted by hand', async () => {
    await haatRefusal(
      db.pool,
      insertEvent('return.received', sql.fragment`(select null::bigint, max(id) + 1000, null::uuid from return_transitions) as v(s, r, f)`),
      'a return event by hand',
      /never directly/,
    );
    await haatRefusal(
      db.pool,
      insertEvent('refund.issued', sql.fragment`(values (null::bigint, null::bigint, gen_random_uuid())) as v(s, r, f)`),
      'a refund event by hand',
      /never directly/,
    );
    await checkViolation(
      db.pool,
      insertEvent('return.received', sql.fragment`(values (null::bigint, null::bigint, null::uuid)) as v(s, r, f)`),
      'a return event naming no transition',
      'outbound_events_return_check',
    );
  });
});

describe('order moves by SQL follow order_transition_rules', () => {
  const move = (id: string, to: OrderState) => sql.unsafe`update orders set state = ${to} where id = ${id}::uuid`;
  const refusedMove = (from: string, to: string) => new RegExp(`^transition_not_allowed: ${from} -> ${to}$`);

  test('real orders: confirmed → delivered, shipped → partially_shipped and other moves off the table are refused', async () => {
    for (const [order, from, to] of [
      [confirmed, 'confirmed', 'delivered'],
      [confirmed, 'confirmed', 'returned_to_origin'],
      [confirmed, 'confirmed', 'refunded'],
      [shipped, 'shipped', 'partially_shipped'],
      [shipped, 'shipped', 'confirmed'],
      [shipped, 'shipped', 'cancelled'],
      [partly, 'partially_shipped', 'confirmed'],
      [partly, 'partially_shipped', 'cancelled'],
      [partly, 'partially_shipped', 'refunded'],
      [rich, 'delivered', 'shipped'],
      [rich, 'delivered', 'returned_to_origin'],
      [rich, 'delivered', 'partially_shipped'],
    ] as const) {
      assert.equal(await stateOf(order.id), from);
      await haatRefusal(db.pool, move(order.id, to), `${order.ref}: ${from} -> ${to}`, refusedMove(from, to));
      assert.equal(await stateOf(order.id), from, 'unchanged');
    }
  });

  test('real orders: the moves the table allows are accepted by the trigger', async () => {
    await rolledBack(async (tx) => {
      await tx.query(move(confirmed.id, 'partially_shipped'));
      await tx.query(move(partly.id, 'returned_to_origin'));
      await tx.query(move(shipped.id, 'returned_to_origin'));
      await tx.query(move(rich.id, 'refunded'));
    });
  });

  const pathTo: Record<OrderState, OrderState[]> = {
    pending: [],
    confirmed: ['confirmed'],
    partially_shipped: ['confirmed', 'partially_shipped'],
    shipped: ['confirmed', 'shipped'],
    delivered: ['confirmed', 'shipped', 'delivered'],
    returned_to_origin: ['confirmed', 'shipped', 'returned_to_origin'],
    refunded: ['confirmed', 'shipped', 'delivered', 'refunded'],
    cancelled: ['cancelled'],
    expired: ['expired'],
    rejected: [],
  };
  const { allowed, disallowed } = pairsOf(orderStates, transitions);

  test(`every one of the ${disallowed.length} disallowed order moves is refused by SQL, every one of the ${allowed.length} allowed accepted`, async () => {
    assert.deepEqual([allowed.length, disallowed.length], [13, 77]);
    let k = 0;
    await rolledBack(async (tx) => {
      const orderIn = async (state: OrderState) => {
        const ref = `SQL-${++k}`;
        const id =
          state === 'rejected'
            ? await tx.oneFirst(sql.type(z.object({ id: z.string() }))`
                insert into orders (ref, buyer, currency, state, total_amount, reject_reason)
                values (${ref}, 'b', 'INR', 'rejected', 0, 'insufficient_stock') returning id`)
            : await tx.oneFirst(sql.type(z.object({ id: z.string() }))`
                insert into orders (ref, buyer, currency, state, total_amount, expires_at)
                values (${ref}, 'b', 'INR', 'pending', 0, now() + interval '1 hour') returning id`);
        for (const step of pathTo[state]) await tx.query(move(id, step));
        return id;
      };
      for (const [from, to] of disallowed) {
        const id = await orderIn(from);
        await haatRefusal(
          tx,
          sql.unsafe`update orders set state = ${to}, reject_reason = ${to === 'rejected' ? 'x' : null} where id = ${id}::uuid`,
          `${from} -> ${to}`,
          refusedMove(from, to),
        );
      }
      for (const [from, to] of allowed) {
        const id = await orderIn(from);
        await tx.query(move(id, to));
        assert.equal(await tx.oneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where id = ${id}::uuid`), to);
      }
      for (const state of orderStates.filter((s) => s !== 'pending' && s !== 'rejected')) {
        await haatRefusal(
          tx,
          sql.unsafe`insert into orders (ref, buyer, currency, state, total_amount) values (${`SQL-new-${state}`}, 'b', 'INR', ${state}, 0)`,
          `a new order in ${state}`,
          new RegExp(`^transition_not_allowed: a new order cannot start ${state}$`),
        );
      }
    });
  });
});
