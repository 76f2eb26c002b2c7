// The order lifecycle under concurrency: commands on one order applied at once through the real
// write path — each in its own transaction (applyCommand, as the CLI's inline fallback and a
// worker's task do), each in a worker's batch that also drains the queue (applyCommands), or by two
// real workers — with every command submitted (and prechecked) before any is applied, so each
// one's apply decides against what the others wrote. A shipment and a cancel of the same units,
// two refunds worth more than what is refundable, a return received twice, an RTO racing a
// delivery, many partial shipments: where only one may win exactly one does, the others are
// refused with their code, and counts, stock, money and the outbox agree with the winners. After
// every scenario `haat reconcile` passes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { applyCommand, applyCommands } from '../../src/commands/apply-command.ts';
import { awaitOutcome, submitCommand } from '../../src/commands/submit-command.ts';
import { sql } from '../../src/db/sql.ts';
import { Command, type Outcome } from '../../src/domain/commands.ts';
import { HaatError } from '../../src/errors.ts';
import { startWorker } from '../../src/worker/run-worker.ts';
import { assertReconciles, createTestDatabase } from '../helpers/db.ts';
import { mustApply, seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
const PRICE = 12999;
await seedCatalog(db.pool, { RACE: 10_000, SIDE: 10_000 });

const SCOPE = 'race';
let keys = 0;
let orders = 0;

type Input = { type: string; payload: Record<string, unknown> };
type Mode = 'transactions' | 'batches' | 'workers';
/** Four rounds with one transaction per command, then four with one worker batch per command, and so on. */
const modeOf = (round: number): Mode => (Math.floor(round / 4) % 2 === 0 ? 'transactions' : 'batches');
/** Which of two racers is submitted (and so queued) first: swapped every eight rounds. */
const swapped = (round: number) => Math.floor(round / 8) % 2 === 1;

/** 'ok', or the refusal's code (recorded as the outcome, or raised by the precheck). */
function codeOf(result: Outcome | unknown): string {
  if (result instanceof HaatError) return result.code;
  if (result instanceof Error) throw result;
  const outcome = result as Outcome;
  return outcome.ok ? 'ok' : outcome.error.code;
}

/**
 * Applies the commands at once; their codes in input order. Except with workers, every command is
 * submitted first (its precheck decides on the state before the race), then all are applied
 * concurrently: `transactions`, one applyCommand each; `batches`, one applyCommands each, draining
 * due queued commands (the others of the race) into its transaction. `workers`: submitted at once
 * while two workers run, each awaited as the CLI awaits it (a late one may be refused by its precheck).
 */
async function race(inputs: readonly Input[], mode: Mode): Promise<string[]> {
  const batch = inputs.map((input) => ({ key: `race-${++keys}`, command: Command.parse(input) }));
  if (mode === 'workers') {
    return Promise.all(
      batch.map(async ({ key, command }) => {
        try {
          const submitted = await submitCommand(db.pool, { scope: SCOPE, key, command, actor: 'racer' });
          return codeOf(
            submitted.outcome ??
              (await awaitOutcome(db.pool, SCOPE, key, { url: db.url, log: silent, timeoutMs: 30_000, inlineAfterMs: 60_000 })),
          );
        } catch (error) {
          return codeOf(error);
        }
      }),
    );
  }
  // A command its precheck refuses now (before any of the race applies) stores nothing: its code is that refusal.
  const refused = new Map<string, string>();
  for (const { key, command } of batch) {
    await submitCommand(db.pool, { scope: SCOPE, key, command, actor: 'racer' }).catch((error: unknown) => refused.set(key, codeOf(error)));
  }
  const outcomes = await Promise.all(
    batch.map(async ({ key }) => {
      const code = refused.get(key);
      if (code !== undefined) return code;
      if (mode === 'transactions') return applyCommand(db.pool, SCOPE, key, silent);
      const [result] = await applyCommands(db.pool, [{ scope: SCOPE, key, attempts: 1 }], silent, { drain: inputs.length });
      if (!result?.ok) throw result?.error ?? new Error('no result');
      return result.outcome;
    }),
  );
  // No worker runs here: the commands' jobs are done (a worker would find their keys done).
  await db.pool.query(sql.unsafe`
    select graphile_worker.remove_job(key) from graphile_worker.jobs
    where key = any(${sql.array(
      batch.map(({ key }) => `cmd:${SCOPE}:${key}`),
      'text',
    )})`);
  return outcomes.map((o) => {
    if (!o) throw new Error('a raced command has no outcome');
    return typeof o === 'string' ? o : codeOf(o);
  });
}

/** Two commands raced, the second submitted first when `swap`; their codes as [first, second]. */
async function duel(first: Input, second: Input, mode: Mode, swap: boolean): Promise<[string, string]> {
  const codes = swap ? (await race([second, first], mode)).reverse() : await race([first, second], mode);
  return [codes[0] as string, codes[1] as string];
}

/** Two real workers (4 slots each) while `work` runs. */
async function withWorkers(work: () => Promise<void>): Promise<void> {
  const workers = await Promise.all(
    [1, 2].map(() => startWorker({ url: db.url, pool: db.pool, log: silent, concurrency: 4, pollIntervalMs: 50 })),
  );
  try {
    await work();
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

const count = (n: number) => String(n);

/** A confirmed order: prepaid (paid in full) or cash on delivery (confirmed without a payment). */
async function confirmedOrder(lines: Readonly<Record<string, number>>, method: 'prepaid' | 'cod' = 'prepaid'): Promise<string> {
  const ref = `RC-${++orders}`;
  await mustApply(db.pool, {
    type: 'order.place',
    payload: {
      ref,
      buyer: 'racer',
      items: Object.entries(lines).map(([sku, qty]) => ({ sku, qty: count(qty) })),
      ...(method === 'cod' ? { payment_method: 'cod' } : {}),
    },
  });
  if (method === 'cod') await mustApply(db.pool, { type: 'order.confirm_cod', payload: { order: ref } });
  else {
    const total = Object.values(lines).reduce((s, q) => s + q * PRICE, 0);
    await mustApply(db.pool, { type: 'order.confirm', payload: { order: ref, payment_ref: `pay-${ref}`, amount: count(total) } });
  }
  return ref;
}

const Line = z.object({
  sku: z.string(),
  qty: z.bigint(),
  cancelled: z.bigint(),
  shipped: z.bigint(),
  delivered: z.bigint(),
  rto: z.bigint(),
  returned: z.bigint(),
});
async function lines(
  ref: string,
): Promise<Record<string, { qty: number; cancelled: number; shipped: number; delivered: number; rto: number; returned: number }>> {
  const rows = await db.pool.any(sql.type(Line)`
    select i.sku, i.qty, i.cancelled, i.shipped, i.delivered, i.rto, i.returned
    from order_items i join orders o on o.id = i.order_id where o.ref = ${ref} order by i.sku`);
  return Object.fromEntries(
    rows.map((r) => [
      r.sku,
      {
        qty: Number(r.qty),
        cancelled: Number(r.cancelled),
        shipped: Number(r.shipped),
        delivered: Number(r.delivered),
        rto: Number(r.rto),
        returned: Number(r.returned),
      },
    ]),
  );
}

const orderState = (ref: string) =>
  db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where ref = ${ref}`);
const onHand = async (sku: string) =>
  Number(await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = ${sku}`));
const money = async (ref: string) => {
  const row = await db.pool.one(sql.type(z.object({ captured: z.bigint(), refunded: z.bigint() }))`
    select coalesce(sum(s.captured), 0)::int8 as captured, coalesce(sum(s.refunded), 0)::int8 as refunded
    from order_seller_splits s join orders o on o.id = s.order_id where o.ref = ${ref}`);
  return { captured: Number(row.captured), refunded: Number(row.refunded) };
};
const refundsOf = async (ref: string) =>
  (
    await db.pool.anyFirst(sql.type(z.object({ amount: z.bigint() }))`
      select f.amount from refunds f join orders o on o.id = f.order_id where o.ref = ${ref} and f.kind = 'refund' order by f.created_at`)
  ).map(Number);
const shipmentsOf = (ref: string) =>
  db.pool.any(sql.type(z.object({ ref: z.string(), state: z.string(), transitions: z.number(), units: z.number() }))`
    select s.ref, s.state,
           (select count(*) from shipment_transitions t where t.shipment_id = s.id)::int as transitions,
           (select coalesce(sum(i.qty), 0) from shipment_items i where i.shipment_id = s.id)::int as units
    from shipments s join orders o on o.id = s.order_id where o.ref = ${ref} order by s.created_at, s.id`);
const movementsOf = async (ref: string, kind: string) =>
  Number(
    await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
      select coalesce(sum(m.on_hand_delta), 0)::int8 as n from inventory_movements m join orders o on o.id = m.order_id
      where o.ref = ${ref} and m.kind = ${kind}`),
  );

/**
 * The order's outbox after the race: sequences 1..n without a gap or a repeat, and exactly one
 * event per change of the order, its shipments, its returns, and per refund.
 */
async function assertOutbox(ref: string): Promise<void> {
  const row = await db.pool.one(sql.type(
    z.object({
      sequences: z.array(z.number()),
      order_events: z.number(),
      order_changes: z.number(),
      shipment_events: z.number(),
      shipment_changes: z.number(),
      return_events: z.number(),
      return_changes: z.number(),
      refund_events: z.number(),
      refunds: z.number(),
    }),
  )`
    select coalesce((select array_agg(e.sequence order by e.sequence) from outbound_events e where e.order_id = o.id), '{}') as sequences,
           (select count(*) from outbound_events e where e.order_id = o.id and e.type like 'order.%')::int as order_events,
           (select count(*) from order_transitions t where t.order_id = o.id)::int as order_changes,
           (select count(*) from outbound_events e where e.order_id = o.id and e.type like 'shipment.%')::int as shipment_events,
           (select count(*) from shipment_transitions t join shipments s on s.id = t.shipment_id where s.order_id = o.id)::int as shipment_changes,
           (select count(*) from outbound_events e where e.order_id = o.id and e.type like 'return.%')::int as return_events,
           (select count(*) from return_transitions t join returns r on r.id = t.return_id where r.order_id = o.id)::int as return_changes,
           (select count(*) from outbound_events e where e.order_id = o.id and e.type = 'refund.issued')::int as refund_events,
           (select count(*) from refunds f where f.order_id = o.id)::int as refunds
    from orders o where o.ref = ${ref}`);
  assert.deepEqual(
    row.sequences,
    row.sequences.map((_, i) => i + 1),
    `the events of ${ref} are numbered 1..n`,
  );
  assert.equal(row.order_events, row.order_changes, `one order event per transition of ${ref}`);
  assert.equal(row.shipment_events, row.shipment_changes, `one shipment event per shipment transition of ${ref}`);
  assert.equal(row.return_events, row.return_changes, `one return event per return transition of ${ref}`);
  assert.equal(row.refund_events, row.refunds, `one refund.issued per refund of ${ref}`);
}

const oks = (codes: readonly string[]) => codes.filter((c) => c === 'ok').length;

/** A fixed pseudo-random sequence (a failure names its round, and replays): an integer in [0, n). */
function prng(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state % n;
  };
}

describe('the lifecycle under concurrent commands', () => {
  test('a shipment and a cancel of the same units at once: exactly one wins where only one may', async () => {
    const run = async (round: number, mode: Mode) => {
      const variant = round % 4;
      // 0: every unit shipped vs every unit cancelled; 1: 2 of 3 shipped vs 2 of 3 cancelled (only
      // one fits); 2: 1 of 3 vs 1 of 3 (both fit); 3: all shipped vs 1 of 2 cancelled (the cancel
      // fits only before the shipment).
      const qty = variant === 1 || variant === 2 ? 3 : 2;
      const ref = await confirmedOrder({ RACE: qty }, round % 3 === 0 ? 'cod' : 'prepaid');
      const cod = round % 3 === 0;
      const stockBefore = await onHand('RACE');
      const part = variant === 1 ? 2 : 1;
      const ship = {
        type: 'order.ship',
        payload: { order: ref, ...(variant === 0 || variant === 3 ? {} : { items: [{ sku: 'RACE', qty: count(part) }] }) },
      };
      const cancel = {
        type: 'order.cancel',
        payload: {
          order: ref,
          reason: 'race',
          ...(variant === 0 ? {} : { items: [{ sku: 'RACE', qty: count(variant === 3 ? 1 : part) }] }),
        },
      };
      const [shipCode, cancelCode] = await duel(ship, cancel, mode, swapped(round));
      const what = `round ${round} (${mode}, variant ${variant}): ship ${shipCode}, cancel ${cancelCode}`;
      const line = (await lines(ref)).RACE;
      assert.ok(line, what);
      if (variant === 2) assert.deepEqual([shipCode, cancelCode], ['ok', 'ok'], `${what}: both fit`);
      else if (variant === 3) assert.equal(shipCode, 'ok', `${what}: the shipment always finds a unit to send`);
      else assert.equal(oks([shipCode, cancelCode]), 1, `${what}: exactly one wins`);
      if (variant === 0) {
        // The loser finds the order shipped or cancelled: no move from there.
        assert.equal(shipCode === 'ok' ? cancelCode : shipCode, 'transition_not_allowed', what);
      } else if (variant === 1) assert.equal(shipCode === 'ok' ? cancelCode : shipCode, 'conflict', what);
      // Cancelled after the shipment sent every unit: the order is shipped, nothing is left to cancel.
      else if (variant === 3 && cancelCode !== 'ok') assert.equal(cancelCode, 'transition_not_allowed', what);
      const shipped = shipCode !== 'ok' ? 0 : variant === 0 ? qty : variant === 3 ? qty - (cancelCode === 'ok' ? 1 : 0) : part;
      const cancelled = cancelCode !== 'ok' ? 0 : variant === 0 ? qty : variant === 3 ? 1 : part;
      assert.deepEqual(
        { shipped: line.shipped, cancelled: line.cancelled },
        { shipped, cancelled },
        `${what}: the counts are the winners'`,
      );
      assert.ok(line.shipped + line.cancelled <= line.qty, what);
      assert.equal(await onHand('RACE'), stockBefore + cancelled, `${what}: the cancelled units, and only they, are back on hand`);
      assert.equal(await movementsOf(ref, 'restock'), cancelled, `${what}: restocked with a movement`);
      assert.deepEqual(
        await money(ref),
        { captured: cod ? 0 : qty * PRICE, refunded: cod ? 0 : cancelled * PRICE },
        `${what}: a prepaid order's cancelled units are refunded`,
      );
      const ships = await shipmentsOf(ref);
      assert.deepEqual(
        ships.map((s) => s.units),
        shipped > 0 ? [shipped] : [],
        `${what}: one shipment for the shipped units`,
      );
      const expectedState =
        cancelled === qty ? 'cancelled' : shipped === 0 ? 'confirmed' : shipped + cancelled === qty ? 'shipped' : 'partially_shipped';
      assert.equal(await orderState(ref), expectedState, what);
      await assertOutbox(ref);
    };
    for (let round = 0; round < 24; round++) await run(round, modeOf(round));
    await withWorkers(async () => {
      for (let round = 24; round < 32; round++) await run(round, 'workers');
    });
    await assertReconciles(db.pool, 'after the ship/cancel races');
  });

  test('two refunds at once worth more than what is refundable: one wins, the other is conflict', async () => {
    const qty = 3;
    const total = qty * PRICE;
    const run = async (round: number, mode: Mode) => {
      const variant = round % 4;
      const ref = await confirmedOrder({ RACE: qty });
      await mustApply(db.pool, { type: 'order.ship', payload: { order: ref } });
      await mustApply(db.pool, { type: 'order.deliver', payload: { order: ref } });
      const byAmount = (amount: number) => ({ type: 'order.refund', payload: { order: ref, reason: 'race', amount: count(amount) } });
      const byItems = (n: number) => ({
        type: 'order.refund',
        payload: { order: ref, reason: 'race', items: [{ sku: 'RACE', qty: count(n) }] },
      });
      // 0: two amounts; 1: two by items (2 + 2 of 3 units); 2: an amount and items; 3: three amounts, two fit.
      const inputs =
        variant === 0
          ? [byAmount(25_000), byAmount(25_000)]
          : variant === 1
            ? [byItems(2), byItems(2)]
            : variant === 2
              ? [byAmount(20_000), byItems(2)]
              : [byAmount(15_000), byAmount(15_000), byAmount(15_000)];
      const codes = await race(inputs, mode);
      const what = `round ${round} (${mode}, variant ${variant}): ${codes.join(', ')}`;
      assert.equal(oks(codes), variant === 3 ? 2 : 1, `${what}: only what fits wins`);
      for (const c of codes) assert.match(c, /^(ok|conflict)$/, what);
      const paid = await money(ref);
      assert.equal(paid.captured, total, what);
      assert.ok(paid.refunded <= paid.captured, `${what}: refunded ${paid.refunded} <= captured ${paid.captured}`);
      const amounts = await refundsOf(ref);
      assert.equal(amounts.length, oks(codes), `${what}: one refund per winner`);
      const expected = variant === 0 ? [25_000] : variant === 1 ? [2 * PRICE] : variant === 3 ? [15_000, 15_000] : undefined;
      if (expected) assert.deepEqual(amounts, expected, what);
      else assert.ok(amounts.length === 1 && (amounts[0] === 20_000 || amounts[0] === 2 * PRICE), what);
      assert.equal(
        paid.refunded,
        amounts.reduce((a, b) => a + b, 0),
        `${what}: refunded is the sum of the refunds`,
      );
      assert.equal(await orderState(ref), 'delivered', `${what}: not all of it refunded`);
      // What is left is still refundable, once: the rest of it at once by two more, one wins.
      const rest = await race(
        [
          { type: 'order.refund', payload: { order: ref, reason: 'the rest' } },
          { type: 'order.refund', payload: { order: ref, reason: 'the rest' } },
        ],
        mode,
      );
      assert.equal(oks(rest), 1, `${what}: the rest refunded once (${rest.join(', ')})`);
      assert.deepEqual(await money(ref), { captured: total, refunded: total }, what);
      assert.equal(await orderState(ref), 'refunded', what);
      await assertOutbox(ref);
    };
    for (let round = 0; round < 16; round++) await run(round, modeOf(round));
    await withWorkers(async () => {
      for (let round = 16; round < 20; round++) await run(round, 'workers');
    });
    await assertReconciles(db.pool, 'after the refund races');
  });

  test('a return received twice at once: received once, the other transition_not_allowed, restocked once', async () => {
    const run = async (round: number, mode: Mode) => {
      const variant = round % 4;
      const ref = await confirmedOrder({ RACE: 3, SIDE: 1 }, swapped(round) ? 'cod' : 'prepaid');
      await mustApply(db.pool, { type: 'order.ship', payload: { order: ref } });
      await mustApply(db.pool, { type: 'order.deliver', payload: { order: ref } });
      const returnRef = `RR-${ref}`;
      await mustApply(db.pool, {
        type: 'return.request',
        payload: { order: ref, ref: returnRef, reason: 'too big', items: [{ sku: 'RACE', qty: '2' }] },
      });
      const before = { RACE: await onHand('RACE'), SIDE: await onHand('SIDE') };
      const receive = (disposition: 'restock' | 'write_off') => ({
        type: 'return.receive',
        payload: { return: returnRef, disposition, reason: 'back' },
      });
      const reject = { type: 'return.reject', payload: { return: returnRef, reason: 'worn' } };
      // 0: received twice; 1: restock vs write-off; 2: received vs rejected; 3: three receipts.
      const inputs =
        variant === 0
          ? [receive('restock'), receive('restock')]
          : variant === 1
            ? [receive('restock'), receive('write_off')]
            : variant === 2
              ? [receive('restock'), reject]
              : [receive('restock'), receive('restock'), receive('restock')];
      const codes = await race(inputs, mode);
      const what = `round ${round} (${mode}, variant ${variant}): ${codes.join(', ')}`;
      assert.equal(oks(codes), 1, `${what}: exactly one wins`);
      for (const c of codes) assert.match(c, /^(ok|transition_not_allowed)$/, what);
      const winner = inputs[codes.indexOf('ok')] as Input;
      const restocked = winner.type === 'return.receive' && winner.payload.disposition === 'restock';
      const received = winner.type === 'return.receive';
      const state = await db.pool.one(sql.type(
        z.object({ state: z.string(), disposition: z.string().nullable(), transitions: z.number() }),
      )`
        select r.state, r.disposition, (select count(*) from return_transitions t where t.return_id = r.id)::int as transitions
        from returns r where r.ref = ${returnRef}`);
      assert.deepEqual(
        state,
        {
          state: received ? 'received' : 'rejected',
          disposition: received ? (restocked ? 'restock' : 'write_off') : null,
          transitions: 2,
        },
        what,
      );
      const line = (await lines(ref)).RACE;
      assert.equal(line?.returned, received ? 2 : 0, `${what}: returned counted once`);
      assert.equal(await onHand('RACE'), before.RACE + (restocked ? 2 : 0), `${what}: restocked once, or not at all`);
      assert.equal(await onHand('SIDE'), before.SIDE, what);
      assert.equal(await movementsOf(ref, 'return_restock'), restocked ? 2 : 0, `${what}: one restock movement`);
      // Received or rejected, the return is done: the units it held may be asked back again (once).
      const again = await race(
        [0, 1].map((i) => ({
          type: 'return.request',
          payload: { order: ref, reason: 'again', items: [{ sku: 'RACE', qty: received ? '1' : '3' }], ref: `${returnRef}-${i}` },
        })),
        mode,
      );
      assert.equal(oks(again), 1, `${what}: a second request of the units left fits once (${again.join(', ')})`);
      assert.ok(
        again.every((c) => c === 'ok' || c === 'conflict'),
        what,
      );
      await assertOutbox(ref);
    };
    for (let round = 0; round < 16; round++) await run(round, modeOf(round));
    await withWorkers(async () => {
      for (let round = 16; round < 20; round++) await run(round, 'workers');
    });
    await assertReconciles(db.pool, 'after the return races');
  });

  test('an RTO racing a delivery of the same shipment: exactly one of delivered / rto_initiated', async () => {
    const run = async (round: number, mode: Mode) => {
      const variant = round % 3;
      const cod = round % 2 === 0;
      const ref = await confirmedOrder({ RACE: 2 }, cod ? 'cod' : 'prepaid');
      const shipmentRef = `SR-${ref}`;
      await mustApply(db.pool, {
        type: 'order.ship',
        payload: { order: ref, shipment_ref: shipmentRef, tracking: `AWB-${ref}`, courier: 'swift' },
      });
      const rto = { type: 'shipment.rto', payload: { shipment: `AWB-${ref}`, order: ref } };
      // 0: shipment.deliver by ref; 1: order.deliver (every shipment out for delivery); 2: after a
      // failed attempt (a parcel reported delivered then is recorded reattempted, then delivered).
      if (variant === 2) await mustApply(db.pool, { type: 'shipment.fail', payload: { shipment: shipmentRef, reason: 'nobody home' } });
      const deliver =
        variant === 1
          ? { type: 'order.deliver', payload: { order: ref } }
          : { type: 'shipment.deliver', payload: { shipment: shipmentRef } };
      const [deliverCode, rtoCode] = await duel(deliver, rto, mode, swapped(round));
      const what = `round ${round} (${mode}, variant ${variant}, ${cod ? 'cod' : 'prepaid'}): deliver ${deliverCode}, rto ${rtoCode}`;
      assert.equal(oks([deliverCode, rtoCode]), 1, `${what}: exactly one wins`);
      assert.equal(deliverCode === 'ok' ? rtoCode : deliverCode, 'transition_not_allowed', what);
      const delivered = deliverCode === 'ok';
      const [shipment, ...others] = await shipmentsOf(ref);
      assert.deepEqual(others, [], what);
      assert.equal(shipment?.state, delivered ? 'delivered' : 'rto_initiated', what);
      // dispatched, then (after a failure) delivered with its reattempt first, or rto_initiated.
      assert.equal(shipment?.transitions, variant === 2 ? (delivered ? 4 : 3) : 2, `${what}: the winner's moves recorded, once`);
      const line = (await lines(ref)).RACE;
      assert.deepEqual({ delivered: line?.delivered, rto: line?.rto }, { delivered: delivered ? 2 : 0, rto: 0 }, what);
      assert.equal(await orderState(ref), delivered ? 'delivered' : 'shipped', what);
      const receivable = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
        select coalesce(sum(p.amount), 0)::int8 as n from postings p join journal_entries e on e.id = p.entry_id
        join orders o on o.id = e.order_id where o.ref = ${ref} and p.account = 'cod_receivable:swift'`);
      assert.equal(
        Number(receivable),
        cod && delivered ? 2 * PRICE : 0,
        `${what}: the courier owes the cash of a delivered COD parcel only`,
      );
      if (!delivered) {
        // Back at origin, raced with itself: received once, restocked once.
        const before = await onHand('RACE');
        const back = await race(
          [0, 1].map(() => ({ type: 'shipment.rto_receive', payload: { shipment: shipmentRef } })),
          mode,
        );
        assert.deepEqual(back.sort(), ['ok', 'transition_not_allowed'], `${what}: rto received once`);
        assert.equal(await onHand('RACE'), before + 2, what);
        assert.equal(await movementsOf(ref, 'rto_restock'), 2, what);
        assert.equal(await orderState(ref), 'returned_to_origin', what);
      }
      await assertOutbox(ref);
    };
    for (let round = 0; round < 18; round++) await run(round, modeOf(round));
    await withWorkers(async () => {
      for (let round = 18; round < 24; round++) await run(round, 'workers');
    });
    await assertReconciles(db.pool, 'after the delivery/RTO races');
  });

  test('many partial shipments of one order at once never over-ship', async () => {
    const next = prng(7);
    const run = async (round: number, mode: Mode) => {
      const qty = { RACE: 10, SIDE: 6 };
      const ref = await confirmedOrder(qty, round % 3 === 0 ? 'cod' : 'prepaid');
      const asks = Array.from({ length: 12 }, (_, i) => {
        if (i === 11 && round % 2 === 0) return undefined; // every unit still to send
        const items = [
          { sku: 'RACE', qty: 1 + next(3) },
          { sku: 'SIDE', qty: next(3) },
        ].filter((x) => x.qty > 0);
        return items;
      });
      const codes = await race(
        asks.map((items) => ({
          type: 'order.ship',
          payload: { order: ref, ...(items ? { items: items.map((x) => ({ sku: x.sku, qty: count(x.qty) })) } : {}) },
        })),
        mode,
      );
      const what = `round ${round} (${mode}): ${codes.join(', ')}`;
      for (const c of codes) assert.match(c, /^(ok|conflict|transition_not_allowed)$/, what);
      const got = await lines(ref);
      const ships = await shipmentsOf(ref);
      assert.equal(ships.length, oks(codes), `${what}: one shipment per winner`);
      for (const [sku, q] of Object.entries(qty)) {
        const line = got[sku];
        assert.ok(line && line.shipped <= q, `${what}: ${sku} shipped ${line?.shipped} of ${q}`);
      }
      const sentUnits = ships.reduce((s, x) => s + x.units, 0);
      assert.equal(sentUnits, (got.RACE?.shipped ?? 0) + (got.SIDE?.shipped ?? 0), `${what}: the shipments hold the shipped units`);
      // Each explicit ask that won shipped exactly what it asked.
      const explicitWins = asks.filter((a, i) => a !== undefined && codes[i] === 'ok') as { sku: string; qty: number }[][];
      const allWon = asks.some((a, i) => a === undefined && codes[i] === 'ok');
      const asked = (sku: string) => explicitWins.flat().reduce((s, x) => s + (x.sku === sku ? x.qty : 0), 0);
      if (!allWon) {
        assert.deepEqual(
          { RACE: got.RACE?.shipped, SIDE: got.SIDE?.shipped },
          { RACE: asked('RACE'), SIDE: asked('SIDE') },
          `${what}: shipped is what the winners asked`,
        );
      } else assert.deepEqual({ RACE: got.RACE?.shipped, SIDE: got.SIDE?.shipped }, qty, `${what}: the ship-all sent the rest`);
      const unsent = 16 - (got.RACE?.shipped ?? 0) - (got.SIDE?.shipped ?? 0);
      assert.equal(await orderState(ref), unsent === 0 ? 'shipped' : 'partially_shipped', what);
      // A refused ask did not fit what was left when it was decided, so it does not fit what is left now.
      for (const [i, a] of asks.entries()) {
        if (a === undefined || codes[i] === 'ok') continue;
        assert.ok(
          a.some((x) => x.qty > (qty[x.sku as keyof typeof qty] ?? 0) - (got[x.sku]?.shipped ?? 0)),
          `${what}: ask ${i} (${JSON.stringify(a)}) was refused though it fits`,
        );
      }
      // The rest delivered, with one order.deliver per racer at once: delivered once.
      const delivers = await race(
        [0, 1, 2].map(() => ({ type: 'order.deliver', payload: { order: ref } })),
        mode,
      );
      assert.equal(oks(delivers), 1, `${what}: delivered once (${delivers.join(', ')})`);
      const after = await lines(ref);
      assert.equal((after.RACE?.delivered ?? 0) + (after.SIDE?.delivered ?? 0), sentUnits, what);
      await assertOutbox(ref);
    };
    for (let round = 0; round < 12; round++) await run(round, modeOf(round));
    await withWorkers(async () => {
      for (let round = 12; round < 16; round++) await run(round, 'workers');
    });
    await assertReconciles(db.pool, 'after the partial-shipment races');
  });
  test('a storm: every lifecycle command on a few orders at once, wave after wave, and every invariant holds', async () => {
    const next = prng(11);
    const pick = <T>(xs: readonly T[]): T => xs[next(xs.length)] as T;
    const qty = { RACE: 4, SIDE: 3 };
    const storm = async (wave: number, mode: Mode, refs: readonly string[]) => {
      const inputs: Input[] = [];
      for (const ref of refs) {
        const ships = await shipmentsOf(ref);
        const returns = await db.pool.anyFirst(sql.type(z.object({ ref: z.string() }))`
          select r.ref from returns r join orders o on o.id = r.order_id where o.ref = ${ref} and r.state = 'requested'`);
        const sku = () => pick(['RACE', 'SIDE']);
        inputs.push(
          {
            type: 'order.ship',
            payload: { order: ref, shipment_ref: `${ref}-W${wave}`, items: [{ sku: sku(), qty: count(1 + next(2)) }] },
          },
          { type: 'order.cancel', payload: { order: ref, reason: 'storm', items: [{ sku: sku(), qty: '1' }] } },
          { type: 'order.deliver', payload: { order: ref } },
          { type: 'order.refund', payload: { order: ref, reason: 'storm', amount: count(1 + next(20_000)) } },
          { type: 'order.refund', payload: { order: ref, reason: 'storm', items: [{ sku: sku(), qty: '1' }] } },
          { type: 'return.request', payload: { order: ref, ref: `${ref}-R${wave}`, reason: 'storm', items: [{ sku: sku(), qty: '1' }] } },
        );
        for (const s of ships) {
          const type = pick(['shipment.deliver', 'shipment.fail', 'shipment.reattempt', 'shipment.rto', 'shipment.rto_receive']);
          inputs.push({ type, payload: { shipment: s.ref, ...(type === 'shipment.fail' ? { reason: 'storm' } : {}) } });
        }
        for (const r of returns) {
          inputs.push(
            next(3) === 0
              ? { type: 'return.reject', payload: { return: r, reason: 'storm' } }
              : { type: 'return.receive', payload: { return: r, disposition: pick(['restock', 'write_off']), reason: 'storm' } },
          );
        }
      }
      // Shuffled, so no order's commands always come first.
      for (let i = inputs.length - 1; i > 0; i--) {
        const j = next(i + 1);
        [inputs[i], inputs[j]] = [inputs[j] as Input, inputs[i] as Input];
      }
      const codes = await race(inputs, mode);
      const what = `wave ${wave} (${mode})`;
      for (const [i, c] of codes.entries()) {
        assert.match(c, /^(ok|conflict|transition_not_allowed)$/, `${what}: ${JSON.stringify(inputs[i])} came to ${c}`);
      }
      for (const ref of refs) {
        for (const [sku, line] of Object.entries(await lines(ref))) {
          const q = qty[sku as keyof typeof qty];
          assert.ok(
            line.qty === q &&
              line.cancelled + line.shipped <= q &&
              line.delivered + line.rto <= line.shipped &&
              line.returned <= line.delivered,
            `${what}: ${ref} ${sku} ${JSON.stringify(line)}`,
          );
        }
        const paid = await money(ref);
        assert.ok(paid.refunded <= paid.captured, `${what}: ${ref} refunded ${paid.refunded} of ${paid.captured}`);
        await assertOutbox(ref);
      }
      await assertReconciles(db.pool, `the storm's ${what}`);
      return oks(codes);
    };
    let won = 0;
    for (let round = 0; round < 4; round++) {
      const refs = [await confirmedOrder(qty), await confirmedOrder(qty, 'cod'), await confirmedOrder(qty)];
      for (let wave = 0; wave < 6; wave++) won += await storm(round * 10 + wave, modeOf(round * 4), refs);
    }
    await withWorkers(async () => {
      const refs = [await confirmedOrder(qty), await confirmedOrder(qty, 'cod')];
      for (let wave = 0; wave < 6; wave++) won += await storm(100 + wave, 'workers', refs);
    });
    assert.ok(won > 100, `the storm's commands mostly decided something (${won} won)`);
  });
});
