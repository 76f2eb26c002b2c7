// The outbox as the database keeps it: no order change without its event, no event without its
// change, events append-only, sequences per order; and reconcile's invariant 9 names every way a
// delivery can be lost, each made with SQL behind haat's back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { reconcile } from '../../src/db/reconcile.ts';
import { sql } from '../../src/db/sql.ts';
import { inTransaction } from '../../src/db/transaction.ts';
import { addEndpoint, disableEndpoint, removeEndpoint } from '../../src/db/webhooks-out.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { mustApply, seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase({ corruptsOnPurpose: 'this file breaks invariant 9 with SQL' });
await seedCatalog(db.pool, { A: 50 });

const refused = async (statement: ReturnType<typeof sql.unsafe>, pattern: RegExp) => {
  await assert.rejects(
    inTransaction(db.pool, (tx) => tx.query(statement)),
    (error: Error) => pattern.test(`${error.message} ${String((error as { cause?: Error }).cause?.message ?? '')}`),
  );
};

const place = async (ref: string) =>
  (await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b', ref, items: [{ sku: 'A', qty: '1' }] } })) as { id: string };

const eventsOf = (orderId: string) =>
  db.pool.any(sql.type(z.object({ type: z.string(), sequence: z.number(), transition_id: z.bigint().nullable() }))`
    select type, sequence, transition_id from outbound_events where order_id = ${orderId}::uuid order by sequence`);

const endpoint = (url: string, events = ['*']) =>
  inTransaction(db.pool, (tx) => addEndpoint(tx, { url, events, description: null, allowPrivate: true }, { actor: 't', reason: 'r' }));

const violations = async (kind: string) => {
  const check = (await reconcile(db.pool)).find((c) => c.name === 'events_are_delivered');
  return (check?.violations ?? []).filter((v) => v.kind === kind);
};

describe('the outbox in the database', () => {
  test('every transition row writes its event, in the same statement, whoever writes it (even raw SQL)', async () => {
    const order = await place('I-1');
    await db.pool.query(sql.unsafe`
      insert into order_transitions (order_id, from_state, to_state, actor) values (${order.id}::uuid, 'pending', 'cancelled', 'sql')`);
    const events = await eventsOf(order.id);
    assert.deepEqual(
      events.map((e) => [e.type, e.sequence]),
      [
        ['order.pending', 1],
        ['order.cancelled', 2],
      ],
    );
    assert.ok(events.every((e) => e.transition_id !== null));
    // (Reconcile's invariant 5 reports the transition without its state change: that is its job.)
    await db.pool.query(sql.unsafe`update orders set state = 'cancelled' where id = ${order.id}::uuid`);
  });

  test('an event written directly (not by the trigger of its change) is refused, whatever it says', async () => {
    const order = await place('I-0');
    await refused(
      sql.unsafe`insert into outbound_events (id, type, order_id, sequence, payment_id, data)
                 values ('evt_00000000000000000000000000000009', 'payment.unapplied', ${order.id}::uuid, 2, 1, '{}')`,
      /written by the database with the change they report/,
    );
  });

  test('an order event without its transition, a second event for one transition, or a wrong sequence is refused', async () => {
    const order = await place('I-2');
    const [first] = await eventsOf(order.id);
    await refused(
      sql.unsafe`insert into outbound_events (id, type, order_id, sequence, data) values ('evt_00000000000000000000000000000001', 'order.confirmed', ${order.id}::uuid, 2, '{}')`,
      /outbound_events_check|violates check constraint/,
    );
    await refused(
      sql.unsafe`insert into outbound_events (id, type, order_id, sequence, transition_id, data)
                 values ('evt_00000000000000000000000000000002', 'order.pending', ${order.id}::uuid, 2, ${first?.transition_id ?? 0n}, '{}')`,
      /outbound_events_transition_key|duplicate key/,
    );
    await refused(
      sql.unsafe`insert into outbound_events (id, type, order_id, sequence, data) values ('evt_00000000000000000000000000000003', 'payment.unapplied', ${order.id}::uuid, 1, '{}')`,
      /check constraint|duplicate key/,
    );
  });

  test('an endpoint’s patterns are shaped as the CLI allows, and a removed endpoint stays removed, for SQL too', async () => {
    await refused(
      sql.unsafe`insert into webhook_endpoints (id, url, events) values ('ep_00000000000000000000000a', 'http://127.0.0.1:9/', '{"order.*", "DROP TABLE"}')`,
      /webhook_endpoints_events_check|check constraint/,
    );
    await refused(
      sql.unsafe`insert into webhook_endpoints (id, url, events) values ('ep_00000000000000000000000b', 'http://127.0.0.1:9/', '{"order.**"}')`,
      /check constraint/,
    );
    const ep = await endpoint('http://127.0.0.1:9/gone');
    await inTransaction(db.pool, (tx) => removeEndpoint(tx, ep.id, { actor: 't', reason: 'gone' }));
    await refused(sql.unsafe`update webhook_endpoints set state = 'enabled', removed_at = null where id = ${ep.id}`, /was removed/);
  });

  test('events are append-only', async () => {
    await refused(
      sql.unsafe`update outbound_events set type = 'order.confirmed' where type = 'order.pending'`,
      /append-only|not allowed|reject/i,
    );
    await refused(sql.unsafe`delete from outbound_events`, /append-only|not allowed|reject/i);
    await refused(sql.unsafe`truncate outbound_events cascade`, /append-only|not allowed|reject/i);
  });

  test('a change rolled back leaves no event; a committed one has its event and deliveries', async () => {
    const ep = await endpoint('http://127.0.0.1:9/never');
    const before = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from outbound_events`);
    await assert.rejects(
      inTransaction(db.pool, async (tx) => {
        await tx.query(
          sql.unsafe`insert into order_transitions (order_id, from_state, to_state, actor) select id, 'pending', 'expired', 'x' from orders where ref = 'I-2'`,
        );
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal(await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from outbound_events`), before);
    const order = await place('I-3');
    const delivery = await db.pool.one(sql.type(z.object({ state: z.string(), jobs: z.bigint() }))`
      select d.state, (select count(*) from graphile_worker.jobs j where j.key = 'dlv:' || d.id || ':0') as jobs
      from webhook_deliveries d join outbound_events e on e.id = d.event_id where e.order_id = ${order.id}::uuid and d.endpoint_id = ${ep.id}`);
    assert.deepEqual(delivery, { state: 'pending', jobs: 1n });
    await inTransaction(db.pool, (tx) => removeEndpoint(tx, ep.id, { actor: 't', reason: 'done' }));
  });
});

describe('reconcile: events_are_delivered (invariant 9)', () => {
  test('holds now; each way of losing a delivery is named', async () => {
    const ep = await endpoint('http://127.0.0.1:9/never', ['order.pending']);
    const order = await place('I-4');
    assert.deepEqual(await violations('pending_without_job'), []);
    assert.deepEqual(await violations('event_without_delivery'), []);
    const deliveryId = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
      select d.id from webhook_deliveries d join outbound_events e on e.id = d.event_id where e.order_id = ${order.id}::uuid`);
    // Its job deleted: pending with no job.
    await db.pool.query(sql.unsafe`select graphile_worker.remove_job('dlv:' || ${deliveryId} || ':0')`);
    assert.deepEqual(
      (await violations('pending_without_job')).map((v) => v.subject),
      [deliveryId],
    );
    // Its delivery deleted: an event without its delivery.
    await db.pool.query(sql.unsafe`delete from webhook_deliveries where id = ${deliveryId}`);
    const [missing] = await violations('event_without_delivery');
    assert.match(String(missing?.detail), new RegExp(ep.id));
    // Held while the endpoint is enabled.
    const second = await place('I-5');
    await db.pool.query(sql.unsafe`
      update webhook_deliveries d set state = 'held', next_attempt_at = null from outbound_events e
      where e.id = d.event_id and e.order_id = ${second.id}::uuid`);
    assert.equal((await violations('held_while_enabled')).length, 1);
    // Attempts counted that were never recorded.
    await db.pool.query(sql.unsafe`
      update webhook_deliveries d set attempts = 3, state = 'failed' from outbound_events e
      where e.id = d.event_id and e.order_id = ${second.id}::uuid`);
    assert.equal((await violations('attempts_do_not_add_up')).length, 1);
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 't', reason: 'done' }));
  });

  test('a change written with the outbox trigger turned off is named: a change without its event', async () => {
    const order = await place('I-6');
    await db.pool.query(sql.unsafe`alter table order_transitions disable trigger order_transitions_outbox`);
    try {
      await db.pool.query(sql.unsafe`
        insert into order_transitions (order_id, from_state, to_state, actor) values (${order.id}::uuid, 'pending', 'cancelled', 'sql')`);
    } finally {
      await db.pool.query(sql.unsafe`alter table order_transitions enable trigger order_transitions_outbox`);
    }
    const [missing] = await violations('change_without_event');
    assert.match(String(missing?.detail), /pending -> cancelled/);
  });
});
