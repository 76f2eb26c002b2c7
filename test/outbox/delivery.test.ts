// Outbound webhooks end to end: real commands change orders, the database writes their events and
// deliveries, a real worker's delivery lane posts them to real receivers on loopback, and every
// request's signature is verified.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { orderJson } from '../../src/commands/order-handlers.ts';
import { setSetting } from '../../src/db/operations.ts';
import { findOrder, orderItems } from '../../src/db/orders.ts';
import { sql } from '../../src/db/sql.ts';
import { inTransaction } from '../../src/db/transaction.ts';
import { addEndpoint, disableEndpoint, enableEndpoint, recoverEndpoint, rotateSecret, showDelivery } from '../../src/db/webhooks-out.ts';
import { toJsonText } from '../../src/domain/json.ts';
import { createMetrics } from '../../src/intake/metrics.ts';
import { deliverOnce } from '../../src/outbox/deliver.ts';
import { guardedLookup } from '../../src/outbox/url-rules.ts';
import { type RunningWorker, startWorker } from '../../src/worker/run-worker.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { type Receiver, type Reply, startReceiver } from '../helpers/receiver.ts';
import { apply, mustApply, seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { TEA: 1_000, HONEY: 1_000 });

let worker: RunningWorker | undefined;
const receivers: Receiver[] = [];

async function receiver(replies?: readonly Reply[]): Promise<Receiver> {
  const r = await startReceiver(replies);
  receivers.push(r);
  return r;
}

async function endpoint(url: string, events: string[] = ['*']) {
  return inTransaction(db.pool, (tx) =>
    addEndpoint(tx, { url, events, description: null, allowPrivate: true }, { actor: 'test', reason: 'test endpoint' }),
  );
}

async function setting(key: 'webhook_retry_second_ms' | 'webhook_timeout_ms', value: number) {
  await inTransaction(db.pool, (tx) => setSetting(tx, key, value, 'test', 'a test shortens it'));
}

let refs = 0;
async function place(sku = 'TEA', qty = 1): Promise<{ ref: string; total: bigint }> {
  const ref = `W-${++refs}`;
  const order = (await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b-1', ref, items: [{ sku, qty: String(qty) }] } })) as {
    total: { amount: bigint };
  };
  return { ref, total: order.total.amount };
}

const Delivery = z.object({ id: z.string(), state: z.string(), attempts: z.number(), type: z.string(), event_id: z.string() });
async function deliveriesOf(endpointId: string) {
  return db.pool.any(sql.type(Delivery)`
    select d.id, d.state, d.attempts, e.type, e.id as event_id from webhook_deliveries d join outbound_events e on e.id = d.event_id
    where d.endpoint_id = ${endpointId} order by e.created_at, e.id`);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const attemptsOf = async (deliveryId: string) => (await showDelivery(db.pool, deliveryId)).attempt_log;

describe('outbound webhooks', () => {
  // Started and stopped within the suite: stopped before the file's database is dropped.
  before(async () => {
    worker = await startWorker({ url: db.url, pool: db.pool, log: silent, concurrency: 2, deliveryConcurrency: 4, pollIntervalMs: 50 });
  });
  after(async () => {
    await worker?.stop();
    for (const r of receivers) await r.close();
  });
  test('every state change of an order is delivered, signed, with the order as `haat order show` prints it, in the order’s sequence', async () => {
    const r = await receiver();
    const ep = await endpoint(r.url, ['order.*']);
    const { ref, total } = await place('TEA', 2);
    const states: string[] = ['pending'];
    const snapshots: string[] = [];
    const snapshot = async () => {
      const order = await findOrder(db.pool, ref);
      assert.ok(order);
      snapshots.push(toJsonText(orderJson(order, await orderItems(db.pool, order.id))));
    };
    await snapshot();
    for (const [type, payload, state] of [
      ['order.confirm', { order: ref, payment_ref: `pay-${ref}`, amount: String(total) }, 'confirmed'],
      ['order.ship', { order: ref, tracking: 'AWB-1' }, 'shipped'],
      ['order.deliver', { order: ref }, 'delivered'],
      ['order.refund', { order: ref, reason: 'damaged' }, 'refunded'],
    ] as const) {
      await mustApply(db.pool, { type, payload });
      states.push(state);
      await snapshot();
    }
    await r.waitFor('5 events', (got) => got.length >= 5);
    const got = [...r.received].sort((a, b) => Number(a.json.data.sequence) - Number(b.json.data.sequence));
    assert.deepEqual(
      got.map((g) => g.json.type),
      states.map((s) => `order.${s}`),
    );
    // Between them, in the order's one sequence, the shipment's and the refund's own events
    // (shipment.dispatched 3, shipment.delivered 5, refund.issued 7: not subscribed here).
    assert.deepEqual(
      got.map((g) => g.json.data.sequence),
      [1, 2, 4, 6, 8],
    );
    for (const [i, g] of got.entries()) {
      assert.ok(g.verifiedWith(ep.secret), `event ${g.json.type} verifies with the endpoint's secret`);
      assert.equal(g.signatures.length, 1);
      assert.equal(toJsonText(g.json.data.order), snapshots[i], `${g.json.type}: the order as it was in that state`);
      assert.match(g.id, /^evt_[0-9a-f]{32}$/);
    }
    assert.equal(new Set(got.map((g) => g.id)).size, 5, 'a distinct webhook-id per event');
    // (A receiver has the request before the attempt's outcome is committed: wait for that.)
    const rows = await until('every delivery recorded', async () => {
      const all = await deliveriesOf(ep.id);
      return all.every((d) => d.state === 'delivered') ? all : undefined;
    });
    assert.deepEqual(
      rows.map((d) => [d.state, d.attempts]),
      states.map(() => ['delivered', 1]),
    );
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('a rejected placement and a payment kept unapplied are events too; patterns pick what an endpoint gets', async () => {
    const all = await receiver();
    const payments = await receiver();
    const epAll = await endpoint(all.url, ['*']);
    const epPayments = await endpoint(payments.url, ['payment.unapplied']);
    const rejected = await apply(db.pool, {
      type: 'order.place',
      payload: { buyer: 'b', ref: 'W-REJ', items: [{ sku: 'TEA', qty: '100000' }] },
    });
    assert.equal(rejected.ok, false);
    const { ref } = await place();
    const unapplied = await apply(db.pool, { type: 'order.confirm', payload: { order: ref, payment_ref: 'pay-short', amount: '1' } });
    assert.equal(unapplied.ok, false);
    await all.waitFor('3 events', (got) => got.length >= 3);
    await payments.waitFor('1 event', (got) => got.length >= 1);
    assert.deepEqual(all.received.map((g) => g.json.type).sort(), ['order.pending', 'order.rejected', 'payment.unapplied']);
    assert.deepEqual(
      payments.received.map((g) => g.json.type),
      ['payment.unapplied'],
    );
    const payment = payments.received[0];
    assert.ok(payment?.verifiedWith(epPayments.secret));
    assert.equal(payment?.verifiedWith(epAll.secret), false, 'each endpoint signs with its own secret');
    const data = payment?.json.data as { payment: { payment_ref: string; reason: string; amount: { amount: number } }; sequence: number };
    assert.equal(data.payment.payment_ref, 'pay-short');
    assert.equal(data.payment.reason, 'amount_mismatch');
    assert.equal(data.payment.amount.amount, 1);
    assert.equal(data.sequence, 2, "in its order's sequence, after order.pending");
    const rejection = all.received.find((g) => g.json.type === 'order.rejected');
    assert.equal((rejection?.json.data.order as { reject_reason?: string } | undefined)?.reject_reason, 'insufficient_stock');
    for (const ep of [epAll, epPayments]) {
      await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
    }
  });

  test('failures are retried on the schedule (shortened by a setting), each attempt recorded, then delivered', async () => {
    await setting('webhook_retry_second_ms', 1); // 5 ms, 300 ms, 1.8 s…
    try {
      const r = await receiver([
        { status: 500, body: 'boom' },
        { status: 404 },
        { status: 302, headers: { location: 'http://127.0.0.1:1/' } },
        { status: 200 },
      ]);
      const ep = await endpoint(r.url, ['order.pending']);
      await place();
      await r.waitFor('4 attempts', (got) => got.length >= 4, 30_000);
      const [delivery] = await deliveriesOf(ep.id);
      assert.ok(delivery);
      await until('delivered', async () => ((await deliveriesOf(ep.id))[0]?.state === 'delivered' ? true : undefined));
      const attempts = await attemptsOf(delivery.id);
      assert.deepEqual(
        attempts.map((a) => a.status),
        [500, 404, 302, 200],
      );
      assert.equal(attempts[0]?.excerpt, 'boom', 'a short excerpt of the reply is kept');
      assert.equal(new Set(r.received.map((g) => g.id)).size, 1, 'the same webhook-id on every attempt');
      // The gaps follow the schedule's first steps (5, 300, 1800 seconds of 1 ms), −20 % at most: recorded times, not a stopwatch.
      const at = attempts.map((a) => Date.parse(a.at));
      for (const [i, step] of [5, 300, 1_800].entries()) {
        assert.ok((at[i + 1] as number) - (at[i] as number) >= step * 0.8 - 1, `attempt ${i + 2} waited at least ${step * 0.8} ms`);
      }
      assert.ok(r.received.every((g) => g.verifiedWith(ep.secret)));
      await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
    } finally {
      await setting('webhook_retry_second_ms', 1_000);
    }
  });

  test('a redirect is not followed: the 3xx is a failed attempt and its target gets nothing', async () => {
    const target = await receiver();
    const r = await receiver([{ status: 307, headers: { location: target.url } }]);
    const ep = await endpoint(r.url, ['order.pending']);
    await place();
    await r.waitFor('1 attempt', (got) => got.length >= 1);
    const [delivery] = await until('the attempt recorded', async () => {
      const rows = await deliveriesOf(ep.id);
      return rows[0]?.attempts === 1 ? rows : undefined;
    });
    assert.equal(delivery?.state, 'pending', 'tried again later');
    assert.equal((await attemptsOf(delivery?.id as string))[0]?.status, 307);
    assert.equal(target.received.length, 0);
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('429 with Retry-After is honoured (sooner than the schedule’s 5 s step), then delivered', async () => {
    const r = await receiver([{ status: 429, headers: { 'retry-after': '1' } }, { status: 204 }]);
    const ep = await endpoint(r.url, ['order.pending']);
    await place();
    await r.waitFor('2 attempts', (got) => got.length >= 2, 15_000);
    const [delivery] = await deliveriesOf(ep.id);
    await until('delivered', async () => ((await deliveriesOf(ep.id))[0]?.state === 'delivered' ? true : undefined));
    const attempts = await attemptsOf(delivery?.id as string);
    assert.deepEqual(
      attempts.map((a) => a.status),
      [429, 204],
    );
    const gap = Date.parse(attempts[1]?.at as string) - Date.parse(attempts[0]?.at as string);
    assert.ok(gap >= 1_000 && gap < 4_000, `the second attempt came after Retry-After (1 s), before the 5 s step (±20 %): ${gap} ms`);
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('a receiver that hangs is cut off at the timeout (a setting, 15 s at most) and tried again', async () => {
    await setting('webhook_timeout_ms', 300);
    try {
      const r = await receiver(['hang', { status: 204 }]);
      const ep = await endpoint(r.url, ['order.pending']);
      await place();
      await until('delivered', async () => ((await deliveriesOf(ep.id))[0]?.state === 'delivered' ? true : undefined), 20_000);
      const [delivery] = await deliveriesOf(ep.id);
      const attempts = await attemptsOf(delivery?.id as string);
      assert.equal(attempts.length, 2);
      assert.equal(attempts[0]?.status, null);
      assert.match(attempts[0]?.error ?? '', /^timeout/);
      assert.ok((attempts[0]?.duration_ms ?? 0) >= 300);
      assert.equal(attempts[1]?.status, 204);
      await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
    } finally {
      await setting('webhook_timeout_ms', 15_000);
    }
  });

  test('410 disables the endpoint at once (audited, actor haat); events wait held and are sent on enable', async () => {
    const r = await receiver([{ status: 410 }]);
    const ep = await endpoint(r.url, ['order.pending']);
    await place();
    await r.waitFor('the 410', (got) => got.length >= 1);
    await until('the endpoint disabled', async () =>
      (await db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from webhook_endpoints where id = ${ep.id}`)) ===
      'disabled'
        ? true
        : undefined,
    );
    const auditRow = await db.pool.one(sql.type(z.object({ actor: z.string(), reason: z.string() }))`
      select actor, reason from audit_log where target = ${ep.id} and action = 'endpoint.disable'`);
    assert.equal(auditRow.actor, 'haat');
    assert.match(auditRow.reason, /410/);
    await place();
    const held = await until('both held', async () => {
      const rows = await deliveriesOf(ep.id);
      return rows.length === 2 && rows.every((d) => d.state === 'held') ? rows : undefined;
    });
    assert.equal(held.length, 2);
    assert.equal(r.received.length, 1, 'nothing sent while disabled');
    r.script([{ status: 204 }]);
    const enabled = await enableEndpoint(db.pool, ep.id, { actor: 'test', reason: 'receiver is back' });
    assert.equal(enabled.released, 2);
    await until('both delivered', async () => ((await deliveriesOf(ep.id)).every((d) => d.state === 'delivered') ? true : undefined));
    assert.equal(r.received.length, 3);
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('after the round’s last attempt a delivery is failed; an endpoint failing for 5 days is disabled', async () => {
    await setting('webhook_retry_second_ms', 0); // every retry at once
    try {
      const r = await receiver([{ status: 500 }]);
      const ep = await endpoint(r.url, ['order.pending']);
      await place();
      // 8 attempts: the first and one per step of the schedule.
      await until('failed', async () => ((await deliveriesOf(ep.id))[0]?.state === 'failed' ? true : undefined), 30_000);
      const [delivery] = await deliveriesOf(ep.id);
      assert.equal(delivery?.attempts, 8);
      assert.equal(r.received.length, 8);
      // Failing since 5 days (as if): the next failed attempt disables the endpoint.
      await db.pool.query(sql.unsafe`update webhook_endpoints set failing_since = now() - interval '5 days 1 minute' where id = ${ep.id}`);
      await place();
      await until('the endpoint disabled', async () =>
        (await db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from webhook_endpoints where id = ${ep.id}`)) ===
        'disabled'
          ? true
          : undefined,
      );
      const rows = await deliveriesOf(ep.id);
      assert.deepEqual(
        rows.map((d) => d.state),
        ['failed', 'held'],
      );
      const auditRow = await db.pool.one(sql.type(z.object({ actor: z.string(), reason: z.string() }))`
        select actor, reason from audit_log where target = ${ep.id} and action = 'endpoint.disable'`);
      assert.equal(auditRow.actor, 'haat');
      assert.match(auditRow.reason, /5 days/);
    } finally {
      await setting('webhook_retry_second_ms', 1_000);
    }
  });

  test('after a rotation every delivery is signed with both secrets, each verifying', async () => {
    const r = await receiver();
    const ep = await endpoint(r.url, ['order.pending']);
    const rotated = await inTransaction(db.pool, (tx) => rotateSecret(tx, ep.id, { actor: 'test', reason: 'rotation drill' }));
    assert.notEqual(rotated.secret, ep.secret);
    await place();
    await r.waitFor('1 event', (got) => got.length >= 1);
    const got = r.received[0];
    assert.equal(got?.signatures.length, 2);
    assert.ok(got?.verifiedWith(ep.secret), 'the old secret still verifies (24 h)');
    assert.ok(got?.verifiedWith(rotated.secret), 'the new secret verifies');
    // Once the old one has expired, only the new one signs.
    await db.pool.query(
      sql.unsafe`update webhook_endpoint_secrets set expires_at = now() - interval '1 second' where endpoint_id = ${ep.id} and expires_at is not null`,
    );
    await place();
    await r.waitFor('2 events', (g) => g.length >= 2);
    assert.equal(r.received[1]?.signatures.length, 1);
    assert.ok(r.received[1]?.verifiedWith(rotated.secret));
    assert.equal(r.received[1]?.verifiedWith(ep.secret), false);
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('recover sends again every event since a time, with the same ids, and those written before the endpoint existed', async () => {
    const before = await db.pool.oneFirst(sql.type(z.object({ at: z.string() }))`select clock_timestamp() as at`);
    await place(); // before the endpoint: no delivery
    const r = await receiver();
    const ep = await endpoint(r.url, ['order.pending']);
    await place();
    await r.waitFor('1 event', (got) => got.length >= 1);
    const firstIds = r.received.map((g) => g.id);
    const result = await inTransaction(db.pool, (tx) =>
      recoverEndpoint(tx, ep.id, before, { actor: 'test', reason: 'receiver lost its data' }),
    );
    assert.deepEqual([result.events, result.created], [2, 1]);
    await r.waitFor('3 requests', (got) => got.length >= 3);
    const ids = r.received.map((g) => g.id);
    assert.ok(
      firstIds.every((id) => ids.filter((x) => x === id).length === 2),
      'the delivered event sent again, same webhook-id',
    );
    assert.equal(new Set(ids).size, 2);
    assert.ok(r.received.every((g) => g.verifiedWith(ep.secret)));
    await until('all delivered', async () => ((await deliveriesOf(ep.id)).every((d) => d.state === 'delivered') ? true : undefined));
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('an endpoint on a private address without --allow-private is refused at connection, on the address connected to', async () => {
    const r = await receiver();
    // As if it had been public when added (or the database edited): the rule holds at every connection.
    const ep = await endpoint(r.url, ['order.pending']);
    await db.pool.query(sql.unsafe`update webhook_endpoints set allow_private = false where id = ${ep.id}`);
    await place();
    const [delivery] = await until('the attempt recorded', async () => {
      const rows = await deliveriesOf(ep.id);
      return rows[0]?.attempts === 1 ? rows : undefined;
    });
    const [attempt] = await attemptsOf(delivery?.id as string);
    assert.match(attempt?.error ?? '', /^address_not_allowed/);
    assert.equal(attempt?.address, '127.0.0.1');
    assert.equal(r.received.length, 0, 'no request reached the receiver');
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('attempts of one delivery made at once (a job run twice): each reaches the receiver, one is recorded', async () => {
    const r = await receiver([{ status: 204 }]);
    const ep = await endpoint(r.url, ['order.pending']);
    await place();
    const [delivery] = await deliveriesOf(ep.id);
    assert.ok(delivery);
    // Beside the worker's own job for attempt 1: the same attempt twice more, at once.
    await Promise.all([deliverOnce(db.pool, delivery.id, 0, silent), deliverOnce(db.pool, delivery.id, 0, silent)]);
    await until('delivered', async () => ((await deliveriesOf(ep.id))[0]?.state === 'delivered' ? true : undefined));
    const [after] = await deliveriesOf(ep.id);
    assert.equal(after?.attempts, 1);
    assert.equal((await attemptsOf(delivery.id)).length, 1, 'one attempt recorded');
    assert.ok(r.received.length >= 1 && r.received.every((g) => g.id === r.received[0]?.id));
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('metrics: deliveries by endpoint and state, attempt latency quantiles and results of the last 15 minutes', async () => {
    await setting('webhook_retry_second_ms', 0);
    const r = await receiver([{ status: 500 }, { status: 204 }]);
    const ep = await endpoint(r.url, ['order.pending']);
    await place();
    await place();
    await until('delivered', async () =>
      (await deliveriesOf(ep.id)).filter((d) => d.state === 'delivered').length === 2 ? true : undefined,
    );
    await setting('webhook_retry_second_ms', 1_000);
    const text = await createMetrics(db.pool).registry.metrics();
    assert.match(text, new RegExp(`^haat_webhook_deliveries\\{endpoint="${ep.id}",state="delivered"\\} 2$`, 'm'));
    assert.match(text, new RegExp(`^haat_webhook_attempts_recent\\{endpoint="${ep.id}",result="5xx"\\} 1$`, 'm'));
    assert.match(text, new RegExp(`^haat_webhook_attempts_recent\\{endpoint="${ep.id}",result="2xx"\\} 2$`, 'm'));
    assert.match(text, new RegExp(`^haat_webhook_attempt_duration_seconds\\{endpoint="${ep.id}",quantile="0.99"\\} [0-9.e-]+$`, 'm'));
    await inTransaction(db.pool, (tx) => disableEndpoint(tx, ep.id, { actor: 'test', reason: 'next test' }));
  });

  test('a name that resolves to a private address is refused by the lookup the socket uses (DNS rebinding)', async () => {
    const lookup = guardedLookup(false);
    const error = await new Promise<Error | null>((resolve) => lookup('localhost', { all: true }, (e) => resolve(e)));
    assert.equal(error?.name, 'AddressNotAllowed');
    const allowed = await new Promise<unknown>((resolve) => guardedLookup(true)('localhost', { all: true }, (_e, a) => resolve(a)));
    assert.ok(Array.isArray(allowed) && allowed.length > 0);
  });
});
