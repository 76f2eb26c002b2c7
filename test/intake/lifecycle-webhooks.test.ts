// The order lifecycle through the webhook intake (CONTRACT §8, Webhooks): signed requests to a real
// intake, applied by a real worker. Dispatches with and without items, shipment refs and couriers;
// deliveries by tracking, by shipment ref and of every open shipment; failed deliveries and returns
// to origin; return requests; cash-on-delivery orders placed and confirmed by the storefront; an
// event for a shipment never dispatched recorded not_found once the out-of-order window is over; a
// delivery that arrives before its dispatch retried, then applied; duplicates applied once.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { applyCommand } from '../../src/commands/apply-command.ts';
import { type EventJson, findEvent } from '../../src/db/events.ts';
import { sql } from '../../src/db/sql.ts';
import { startWorker } from '../../src/worker/run-worker.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestIntake } from '../helpers/intake.ts';
import { seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 100, 'RICE-5KG': 100 });
const intake = await startTestIntake(db.pool);
// Stopped when the tests end, before the file's database is checked and dropped.
const worker = await startWorker({ url: db.url, pool: db.pool, log: silent, concurrency: 2, pollIntervalMs: 50 });
const env = { DATABASE_URL: db.url, HAAT_WAIT_FOR_WORKER_MS: '0' };
const PRICE = 12999;

type Units = { sku: string; qty: number }[];
type Order = {
  ref: string;
  state: string;
  payment_method: string;
  items: { sku: string; shipped: number; delivered: number; rto: number; returned: number }[];
  shipments: { ref: string; tracking: string | null; courier: string; state: string; items: Units }[];
  returns: { ref: string; state: string; items: Units; reason: string }[];
};

const SOURCE_OF: Record<string, string> = {
  'order.placed': 'storefront',
  'order.confirmed': 'storefront',
  'return.requested': 'storefront',
  'payment.captured': 'payments',
};
const sourceOf = (type: string) => SOURCE_OF[type] ?? 'logistics';
const body = (type: string, data: unknown) => JSON.stringify({ type, timestamp: new Date().toISOString(), data });

let ids = 0;
/** Sends one signed event; it must be accepted (202). Returns its webhook id. */
async function send(type: string, data: unknown, id = `evt_life_${++ids}`): Promise<string> {
  assert.equal(await intake.send(sourceOf(type), id, body(type, data)), 202, `${type} ${id}`);
  return id;
}

/** The event as operators see it, once `until` holds for it (the worker applies in the background). */
async function eventOnce(source: string, id: string, until: (e: EventJson) => boolean, what: string): Promise<EventJson> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const event = await findEvent(db.pool, source, id);
    if (event && until(event)) return event;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${source}/${id} to be ${what}: ${JSON.stringify(event)}`);
    await sleep(50);
  }
}

/** Sends an event and waits for its outcome; returns the outcome's code ('applied' or an error code). */
async function applied(type: string, data: unknown, id?: string): Promise<string> {
  const sent = await send(type, data, id);
  const event = await eventOnce(sourceOf(type), sent, (e) => e.state === 'done', 'done');
  return event.outcome?.code ?? '(none)';
}

/**
 * Sends an event its target is not ready for: it waits out the out-of-order window (retried, no
 * outcome), then — the window over — is recorded with `code`. Returns that code.
 */
async function refusedOnceFinal(type: string, data: unknown): Promise<string> {
  const id = await send(type, data);
  const waiting = await eventOnce(sourceOf(type), id, (e) => e.state === 'retrying', 'retrying');
  assert.equal(waiting.outcome, null, `${type}: not recorded while it may be early`);
  const outcome = await applyCommand(db.pool, `webhook:${sourceOf(type)}`, id, silent, { outOfOrderWindowMs: 0 });
  assert.equal(outcome?.ok, false);
  const done = await eventOnce(sourceOf(type), id, (e) => e.state === 'done', 'done');
  return done.outcome?.code ?? '(none)';
}

async function order(ref: string): Promise<Order> {
  const shown = await runCli(['order', 'show', ref, '--json'], { env });
  assert.equal(shown.code, 0, shown.stdout);
  return JSON.parse(shown.stdout) as Order;
}
const counts = (o: Order, sku: string) => {
  const l = o.items.find((i) => i.sku === sku);
  return l && { shipped: l.shipped, delivered: l.delivered, rto: l.rto, returned: l.returned };
};

async function balances(ref: string): Promise<Record<string, number>> {
  const result = await runCli(['ledger', 'balances', '--order', ref, '--json'], { env });
  assert.equal(result.code, 0, result.stdout);
  return Object.fromEntries(
    (JSON.parse(result.stdout) as { account: string; balance: { amount: number } }[]).map((b) => [b.account, b.balance.amount]),
  );
}

const onHand = (sku: string) =>
  db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = ${sku}`);

async function placedAndPaid(ref: string, items: Units): Promise<void> {
  assert.equal(await applied('order.placed', { ref, buyer: 'b-1', currency: 'INR', items }), 'applied');
  const total = items.reduce((s, i) => s + i.qty * PRICE, 0);
  assert.equal(await applied('payment.captured', { order_ref: ref, payment_ref: `pay-${ref}`, amount: total, currency: 'INR' }), 'applied');
  assert.equal((await order(ref)).state, 'confirmed');
}

describe('the lifecycle by webhook, applied by a worker', () => {
  after(() => worker.stop());

  test('a parcel that failed at the door: dispatched again with its tracking is a reattempt; delivered after a failure is recorded as reattempt then delivery', async () => {
    await placedAndPaid('W-RE', [{ sku: 'TEA-1KG', qty: 2 }]);
    assert.equal(await applied('shipment.dispatched', { order_ref: 'W-RE', tracking: 'T-RE-1' }), 'applied');
    assert.equal(await applied('shipment.failed', { order_ref: 'W-RE', tracking: 'T-RE-1', reason: 'nobody home' }), 'applied');
    assert.equal(await applied('shipment.dispatched', { order_ref: 'W-RE', tracking: 'T-RE-1' }), 'applied', 'sent out again');
    let o = await order('W-RE');
    assert.deepEqual(
      o.shipments.map((s) => [s.tracking, s.state]),
      [['T-RE-1', 'dispatched']],
      'the same shipment, dispatched again (no second one)',
    );
    assert.equal(
      await applied('shipment.dispatched', { order_ref: 'W-RE', tracking: 'T-RE-1' }),
      'conflict',
      'a dispatch of a parcel already on its way is a conflict',
    );
    assert.equal(await applied('shipment.failed', { order_ref: 'W-RE', tracking: 'T-RE-1', reason: 'refused' }), 'applied');
    assert.equal(await applied('shipment.delivered', { order_ref: 'W-RE', tracking: 'T-RE-1' }), 'applied', 'delivered on a later attempt');
    o = await order('W-RE');
    assert.equal(o.state, 'delivered');
    assert.deepEqual(counts(o, 'TEA-1KG'), { shipped: 2, delivered: 2, rto: 0, returned: 0 });
    const history = await db.pool.anyFirst(sql.type(z.object({ step: z.string() }))`
      select coalesce(t.from_state, '(new)') || ' -> ' || t.to_state as step
      from shipment_transitions t join shipments s on s.id = t.shipment_id where s.tracking = 'T-RE-1' order by t.id`);
    assert.deepEqual(history, [
      '(new) -> dispatched',
      'dispatched -> delivery_failed',
      'delivery_failed -> dispatched',
      'dispatched -> delivery_failed',
      'delivery_failed -> dispatched',
      'dispatched -> delivered',
    ]);
  });

  test('dispatched again with its items is the failed parcel again; with other items a conflict; back at origin before its return was reported', async () => {
    await placedAndPaid('W-RE2', [
      { sku: 'TEA-1KG', qty: 2 },
      { sku: 'RICE-5KG', qty: 1 },
    ]);
    const items = [
      { sku: 'TEA-1KG', qty: 2 },
      { sku: 'RICE-5KG', qty: 1 },
    ];
    assert.equal(await applied('shipment.dispatched', { order_ref: 'W-RE2', tracking: 'T-RE2', items }), 'applied');
    assert.equal(await applied('shipment.failed', { order_ref: 'W-RE2', tracking: 'T-RE2', reason: 'nobody home' }), 'applied');
    assert.equal(
      await applied('shipment.dispatched', { order_ref: 'W-RE2', tracking: 'T-RE2', items: [{ sku: 'TEA-1KG', qty: 1 }] }),
      'conflict',
      'other units under the failed parcel’s tracking number',
    );
    assert.equal(
      await applied('shipment.dispatched', { order_ref: 'W-RE2', tracking: 'T-RE2', items: [...items].reverse() }),
      'applied',
      'its own units, in any order: sent again',
    );
    const stock = await onHand('TEA-1KG');
    // Back at origin before its return was reported: it waits (retried), then applies once it is.
    const early = await send('shipment.rto_delivered', { order_ref: 'W-RE2', tracking: 'T-RE2' });
    assert.equal((await eventOnce('logistics', early, (e) => e.state === 'retrying', 'retrying')).outcome, null);
    assert.equal(await applied('shipment.rto_initiated', { order_ref: 'W-RE2', tracking: 'T-RE2' }), 'applied');
    const done = await eventOnce('logistics', early, (e) => e.state === 'done', 'done');
    assert.equal(done.outcome?.code, 'applied');
    const o = await order('W-RE2');
    assert.equal(o.state, 'returned_to_origin');
    assert.equal(o.shipments.length, 1);
    assert.equal(await onHand('TEA-1KG'), stock + 2n);
    const history = await db.pool.anyFirst(sql.type(z.object({ step: z.string() }))`
      select coalesce(t.from_state, '(new)') || ' -> ' || t.to_state as step
      from shipment_transitions t join shipments s on s.id = t.shipment_id where s.tracking = 'T-RE2' order by t.id`);
    assert.deepEqual(history.slice(-2), ['dispatched -> rto_initiated', 'rto_initiated -> rto_received']);
  });

  describe('shipments by webhook', () => {
    test('dispatched with items, shipment_ref and courier, then without items; delivered by shipment_ref, then by tracking', async () => {
      await placedAndPaid('W-1', [
        { sku: 'TEA-1KG', qty: 3 },
        { sku: 'RICE-5KG', qty: 1 },
      ]);
      assert.equal(
        await applied('shipment.dispatched', {
          order_ref: 'W-1',
          tracking: 'T-W1-A',
          items: [{ sku: 'TEA-1KG', qty: 2 }],
          shipment_ref: 'SH-W1-A',
          courier: 'delhivery',
        }),
        'applied',
      );
      let o = await order('W-1');
      assert.equal(o.state, 'partially_shipped');
      assert.deepEqual(o.shipments, [
        {
          ...o.shipments[0],
          ref: 'SH-W1-A',
          tracking: 'T-W1-A',
          courier: 'delhivery',
          state: 'dispatched',
          items: [{ sku: 'TEA-1KG', qty: 2 }],
        },
      ]);
      assert.equal(await applied('shipment.dispatched', { order_ref: 'W-1', tracking: 'T-W1-B' }), 'applied');
      o = await order('W-1');
      assert.equal(o.state, 'shipped');
      const b = o.shipments.find((s) => s.tracking === 'T-W1-B');
      assert.equal(b?.courier, 'default');
      assert.deepEqual(
        [...(b?.items ?? [])].sort((x, y) => x.sku.localeCompare(y.sku)),
        [
          { sku: 'RICE-5KG', qty: 1 },
          { sku: 'TEA-1KG', qty: 1 },
        ],
        'without items: every unit still to send',
      );
      assert.equal(await applied('shipment.delivered', { order_ref: 'W-1', shipment_ref: 'SH-W1-A' }), 'applied');
      o = await order('W-1');
      assert.equal(o.state, 'shipped');
      assert.deepEqual(counts(o, 'TEA-1KG'), { shipped: 3, delivered: 2, rto: 0, returned: 0 });
      assert.equal(await applied('shipment.delivered', { order_ref: 'W-1', tracking: 'T-W1-B' }), 'applied');
      o = await order('W-1');
      assert.equal(o.state, 'delivered');
      assert.deepEqual(
        o.shipments.map((s) => s.state),
        ['delivered', 'delivered'],
      );
      assert.equal(
        await refusedOnceFinal('shipment.delivered', { order_ref: 'W-1', tracking: 'T-W1-B' }),
        'transition_not_allowed',
        'a second delivery of a delivered parcel (another webhook id) waits out the window, then is refused as its outcome',
      );
    });

    test('delivered without tracking or shipment_ref: every open shipment of the order', async () => {
      await placedAndPaid('W-2', [{ sku: 'TEA-1KG', qty: 2 }]);
      assert.equal(
        await applied('shipment.dispatched', { order_ref: 'W-2', tracking: 'T-W2-A', items: [{ sku: 'TEA-1KG', qty: 1 }] }),
        'applied',
      );
      assert.equal(await applied('shipment.dispatched', { order_ref: 'W-2', tracking: 'T-W2-B' }), 'applied');
      assert.equal(await applied('shipment.delivered', { order_ref: 'W-2' }), 'applied');
      const o = await order('W-2');
      assert.equal(o.state, 'delivered');
      assert.deepEqual(
        o.shipments.map((s) => s.state),
        ['delivered', 'delivered'],
      );
      assert.deepEqual(counts(o, 'TEA-1KG'), { shipped: 2, delivered: 2, rto: 0, returned: 0 });
    });

    test('return.requested for delivered units', async () => {
      assert.equal(
        await applied('return.requested', {
          order_ref: 'W-1',
          return_ref: 'RT-W1',
          items: [{ sku: 'TEA-1KG', qty: 2 }],
          reason: 'wrong blend',
        }),
        'applied',
      );
      const o = await order('W-1');
      assert.deepEqual(
        o.returns.map((r) => [r.ref, r.state, r.items, r.reason]),
        [['RT-W1', 'requested', [{ sku: 'TEA-1KG', qty: 2 }], 'wrong blend']],
      );
      // Only 1 delivered unit is not already awaiting return: within the out-of-order window the
      // request waits (its units may not be reported delivered yet), then it is refused as it stands.
      const id = await send('return.requested', {
        order_ref: 'W-1',
        return_ref: 'RT-W1-2',
        items: [{ sku: 'TEA-1KG', qty: 2 }],
        reason: 'more',
      });
      const waiting = await eventOnce('storefront', id, (e) => e.state === 'retrying', 'retrying');
      assert.equal(waiting.outcome, null, 'not recorded while its delivery may be early');
      const outcome = await applyCommand(db.pool, 'webhook:storefront', id, silent, { outOfOrderWindowMs: 0 });
      assert.equal(outcome?.ok === false && outcome.error.code, 'conflict');
      assert.equal((await eventOnce('storefront', id, (e) => e.state === 'done', 'done')).outcome?.code, 'conflict');
      assert.equal((await order('W-1')).returns.length, 1, 'no second return');
    });
  });

  describe('cash on delivery by webhook', () => {
    test('order.placed with payment_method cod, order.confirmed, delivered: the courier owes the cash; a duplicate applies once', async () => {
      assert.equal(
        await applied('order.placed', {
          ref: 'W-3',
          buyer: 'b-1',
          currency: 'INR',
          items: [{ sku: 'RICE-5KG', qty: 2 }],
          payment_method: 'cod',
        }),
        'applied',
      );
      assert.equal((await order('W-3')).payment_method, 'cod');
      assert.equal(
        await applied('order.placed', { ref: 'W-7', buyer: 'b-1', currency: 'INR', items: [{ sku: 'RICE-5KG', qty: 1 }] }),
        'applied',
      );
      assert.equal((await order('W-7')).payment_method, 'prepaid', 'prepaid unless the storefront says cod');
      assert.equal(await applied('order.confirmed', { order_ref: 'W-7' }), 'conflict', 'a prepaid order is confirmed by its payment');
      assert.equal((await order('W-7')).state, 'pending');
      assert.equal(await applied('order.confirmed', { order_ref: 'W-3' }), 'applied');
      assert.equal((await order('W-3')).state, 'confirmed');
      assert.deepEqual(await balances('W-3'), {}, 'nothing captured at confirmation');
      assert.equal(await applied('shipment.dispatched', { order_ref: 'W-3', tracking: 'T-W3', courier: 'bluedart' }), 'applied');
      // The same delivery posted three times: one 202, then duplicates; one effect.
      const delivered = body('shipment.delivered', { order_ref: 'W-3', tracking: 'T-W3' });
      const replies = [];
      for (let i = 0; i < 3; i++) replies.push(await intake.send('logistics', 'evt_w3_delivered', delivered));
      assert.deepEqual(replies, [202, 200, 200]);
      await eventOnce('logistics', 'evt_w3_delivered', (e) => e.state === 'done', 'done');
      assert.equal(await intake.send('logistics', 'evt_w3_delivered', delivered), 200, 'a duplicate after it was applied');
      assert.equal((await order('W-3')).state, 'delivered');
      assert.equal((await balances('W-3'))['cod_receivable:bluedart'], 2 * PRICE, 'collected once');
      const entries = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
      select count(*) as n from journal_entries e join orders o on o.id = e.order_id where o.ref = 'W-3' and e.kind = 'delivery'`);
      assert.equal(entries, 1n);
    });

    test('shipment.failed, shipment.rto_initiated, shipment.rto_delivered: back on hand, returned_to_origin, nothing owed', async () => {
      const stock = await onHand('TEA-1KG');
      assert.equal(
        await applied('order.placed', {
          ref: 'W-4',
          buyer: 'b-1',
          currency: 'INR',
          items: [{ sku: 'TEA-1KG', qty: 2 }],
          payment_method: 'cod',
        }),
        'applied',
      );
      assert.equal(await applied('order.confirmed', { order_ref: 'W-4' }), 'applied');
      assert.equal(await onHand('TEA-1KG'), stock - 2n);
      assert.equal(await applied('shipment.dispatched', { order_ref: 'W-4', tracking: 'T-W4', courier: 'ekart' }), 'applied');
      assert.equal(await applied('shipment.failed', { order_ref: 'W-4', tracking: 'T-W4', reason: 'nobody home' }), 'applied');
      let o = await order('W-4');
      assert.equal(o.shipments[0]?.state, 'delivery_failed');
      assert.equal(o.state, 'shipped');
      assert.equal(await applied('shipment.rto_initiated', { order_ref: 'W-4', tracking: 'T-W4' }), 'applied');
      assert.equal((await order('W-4')).shipments[0]?.state, 'rto_initiated');
      assert.equal(
        await refusedOnceFinal('shipment.delivered', { order_ref: 'W-4', tracking: 'T-W4' }),
        'transition_not_allowed',
        'a parcel on its way back is not delivered',
      );
      assert.equal(await applied('shipment.rto_delivered', { order_ref: 'W-4', tracking: 'T-W4' }), 'applied');
      o = await order('W-4');
      assert.equal(o.state, 'returned_to_origin');
      assert.equal(o.shipments[0]?.state, 'rto_received');
      assert.deepEqual(counts(o, 'TEA-1KG'), { shipped: 2, delivered: 0, rto: 2, returned: 0 });
      assert.equal(await onHand('TEA-1KG'), stock);
      assert.deepEqual(await balances('W-4'), {}, 'an RTO collects nothing');
    });
  });

  describe('out of order and unknown shipments', () => {
    test('an event for a shipment never dispatched is retried, then recorded not_found once the window is over', async () => {
      const id = await send('shipment.failed', { order_ref: 'W-2', tracking: 'T-NEVER', reason: 'nobody home' });
      const waiting = await eventOnce('logistics', id, (e) => e.state === 'retrying', 'retrying');
      assert.equal(waiting.outcome, null, 'not recorded while it may be early');
      assert.match(waiting.last_error ?? '', /not found yet/);
      // The out-of-order window over (10 minutes in production), the next attempt records the outcome.
      const outcome = await applyCommand(db.pool, 'webhook:logistics', id, silent, { outOfOrderWindowMs: 0 });
      assert.equal(outcome?.ok === false && outcome.error.code, 'not_found');
      const done = await eventOnce('logistics', id, (e) => e.state === 'done', 'done');
      assert.equal(done.outcome?.code, 'not_found');
      assert.equal((await order('W-2')).state, 'delivered', 'the order is untouched');
    });

    test('a delivery before its dispatch waits (retried, not refused) and applies once the dispatch arrives', async () => {
      await placedAndPaid('W-5', [{ sku: 'TEA-1KG', qty: 1 }]);
      const early = await send('shipment.delivered', { order_ref: 'W-5', tracking: 'T-W5' });
      const waiting = await eventOnce('logistics', early, (e) => e.state === 'retrying', 'retrying');
      assert.equal(waiting.outcome, null, 'not recorded refused');
      assert.equal(
        await db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`
        select state from idempotency_keys where scope = 'webhook:logistics' and key = ${early}`),
        'pending',
      );
      assert.equal((await order('W-5')).state, 'confirmed');
      assert.equal(await applied('shipment.dispatched', { order_ref: 'W-5', tracking: 'T-W5' }), 'applied');
      const done = await eventOnce('logistics', early, (e) => e.state === 'done', 'done');
      assert.equal(done.outcome?.code, 'applied');
      assert.ok(done.attempts >= 2, 'applied by a later attempt');
      const o = await order('W-5');
      assert.equal(o.state, 'delivered');
      assert.deepEqual(counts(o, 'TEA-1KG'), { shipped: 1, delivered: 1, rto: 0, returned: 0 });
    });

    test('a dispatch posted twice under one webhook id makes one shipment', async () => {
      await placedAndPaid('W-6', [{ sku: 'RICE-5KG', qty: 2 }]);
      const dispatched = body('shipment.dispatched', { order_ref: 'W-6', tracking: 'T-W6', items: [{ sku: 'RICE-5KG', qty: 1 }] });
      const replies = await Promise.all([1, 2, 3].map(() => intake.send('logistics', 'evt_w6_dispatched', dispatched)));
      assert.deepEqual(replies.sort(), [200, 200, 202]);
      await eventOnce('logistics', 'evt_w6_dispatched', (e) => e.state === 'done', 'done');
      const o = await order('W-6');
      assert.equal(o.shipments.length, 1);
      assert.equal(o.state, 'partially_shipped');
      assert.deepEqual(counts(o, 'RICE-5KG'), { shipped: 1, delivered: 0, rto: 0, returned: 0 });
    });
  });
});
