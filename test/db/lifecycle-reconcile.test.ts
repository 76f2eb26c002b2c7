// haat reconcile over the order lifecycle (CONTRACT §8): after a full lifecycle written through the
// real write path (partial shipments and cancels, deliveries, failed deliveries and reattempts, RTO
// back to stock, returns restocked and written off, refunds by items and by amount, cash on delivery
// to two couriers) every check holds; then each thing is broken with SQL, in a transaction rolled
// back afterwards, and exactly the expected kinds are reported, naming the order.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { reconcile } from '../../src/db/reconcile.ts';
import { sql } from '../../src/db/sql.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { mustApply, seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
const env = { DATABASE_URL: db.url };

type Order = { id: string; ref: string; state: string; total: { amount: number } };
const run = async (type: string, payload: Record<string, unknown>) => (await mustApply(db.pool, { type, payload })) as Order;
const units = (spec: Record<string, number>) => Object.entries(spec).map(([sku, qty]) => ({ sku, qty: String(qty) }));
const place = (ref: string, items: Record<string, number>, paymentMethod: 'prepaid' | 'cod' = 'prepaid') =>
  run('order.place', { buyer: 'b', ref, items: units(items), payment_method: paymentMethod });
const confirm = async (ref: string, items: Record<string, number>) => {
  const placed = await place(ref, items);
  return run('order.confirm', { order: ref, payment_ref: `pay-${ref}`, amount: String(placed.total.amount) });
};
const stateOf = (ref: string) => db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where ref = ${ref}`);

await seedCatalog(db.pool, { A: 50, B: 50 }, 'tea-house');
await seedCatalog(db.pool, { C: 50 }, 'spice-co');

// L-1, prepaid, two sellers: three parcels, two partial cancels, a delivery, a parcel that fails
// twice and comes back (RTO), returns restocked, written off and rejected, refunds by items and amount.
await confirm('L-1', { A: 4, B: 2, C: 3 });
await run('order.ship', { order: 'L-1', items: units({ A: 2, C: 1 }), shipment_ref: 'L1-S1', tracking: 'TRK-L1-1' });
await run('order.cancel', { order: 'L-1', items: units({ B: 1 }), reason: 'out of gift wrap' });
await run('order.ship', { order: 'L-1', items: units({ A: 1, B: 1 }), shipment_ref: 'L1-S2' });
await run('order.ship', { order: 'L-1', items: units({ C: 1 }), shipment_ref: 'L1-S3' });
await run('order.cancel', { order: 'L-1', reason: 'buyer changed their mind' });
await run('shipment.deliver', { shipment: 'TRK-L1-1' });
await run('shipment.fail', { shipment: 'L1-S2', reason: 'nobody home' });
await run('shipment.reattempt', { shipment: 'L1-S2' });
await run('shipment.fail', { shipment: 'L1-S2', reason: 'nobody home again' });
await run('shipment.rto', { shipment: 'L1-S2' });
await run('shipment.rto_receive', { shipment: 'L1-S2' });
await run('order.deliver', { order: 'L-1' });
await run('return.request', { order: 'L-1', items: units({ A: 1 }), reason: 'too strong', ref: 'L1-R1' });
await run('return.receive', { return: 'L1-R1', disposition: 'restock', reason: 'sealed' });
await run('return.request', { order: 'L-1', items: units({ C: 1 }), reason: 'damaged', ref: 'L1-R2' });
await run('return.receive', { return: 'L1-R2', disposition: 'write_off', reason: 'crushed' });
await run('return.request', { order: 'L-1', items: units({ A: 1 }), reason: 'changed mind', ref: 'L1-R3' });
await run('return.reject', { return: 'L1-R3', reason: 'opened' });
await run('order.refund', { order: 'L-1', items: units({ A: 1 }), reason: 'returned' });
await run('order.refund', { order: 'L-1', items: units({ B: 1 }), reason: 'came back undelivered' });
await run('order.refund', { order: 'L-1', amount: '1001', reason: 'goodwill' });

// L-2, cash on delivery over two couriers: one parcel delivered (the courier owes its value), one
// back to origin (nothing collected), then part of the cash refunded.
await place('L-2', { A: 2, C: 2 }, 'cod');
await run('order.confirm_cod', { order: 'L-2' });
await run('order.ship', { order: 'L-2', items: units({ A: 1, C: 1 }), shipment_ref: 'L2-S1', courier: 'delhivery' });
await run('order.ship', { order: 'L-2', shipment_ref: 'L2-S2', tracking: 'TRK-L2-2', courier: 'bluedart' });
await run('shipment.deliver', { shipment: 'L2-S1', order: 'L-2' });
await run('shipment.rto', { shipment: 'TRK-L2-2' });
await run('shipment.rto_receive', { shipment: 'TRK-L2-2' });
await run('order.refund', { order: 'L-2', amount: '500', reason: 'late' });

// L-3 cancelled while pending (released, never restocked); L-4 cancelled whole after payment
// (restocked and refunded); L-5 delivered, refunded whole, then a return requested; L-6 cash on
// delivery cancelled after confirmation (restocked, nothing to refund); L-7 paid; L-8 cash on
// delivery confirmed (no capture, by design); L-9 half shipped, its parcel on its way.
await place('L-3', { A: 1 });
await run('order.cancel', { order: 'L-3', reason: 'duplicate' });
await confirm('L-4', { B: 2 });
await run('order.cancel', { order: 'L-4', reason: 'fraud check' });
await confirm('L-5', { A: 1 });
await run('order.ship', { order: 'L-5', shipment_ref: 'L5-S1' });
await run('order.deliver', { order: 'L-5' });
await run('order.refund', { order: 'L-5', reason: 'wrong tea' });
await run('return.request', { order: 'L-5', items: units({ A: 1 }), reason: 'wrong tea', ref: 'L5-R1' });
await place('L-6', { B: 1 }, 'cod');
await run('order.confirm_cod', { order: 'L-6' });
await run('order.cancel', { order: 'L-6', reason: 'buyer unreachable' });
await confirm('L-7', { A: 1 });
await place('L-8', { A: 1 }, 'cod');
await run('order.confirm_cod', { order: 'L-8' });
await confirm('L-9', { A: 2 });
await run('order.ship', { order: 'L-9', items: units({ A: 1 }), shipment_ref: 'L9-S1' });

/** Every violation as `<check>/<kind>` (checks 1–6 have no kinds: their name) with its subject. */
type Found = { key: string; subject: string; detail: string };

class Rollback extends Error {}

/** Runs the statements and reconcile in one transaction, then rolls it back: the database stays whole. */
async function reportedAfter(statements: readonly ReturnType<typeof sql.unsafe>[]): Promise<Found[]> {
  let found: Found[] = [];
  await assert.rejects(
    db.pool.transaction(async (tx) => {
      for (const statement of statements) await tx.query(statement);
      found = (await reconcile(tx)).flatMap((c) =>
        c.violations.map((v) => ({
          key: typeof v.kind === 'string' ? `${c.name}/${v.kind}` : c.name,
          subject: String(v.subject ?? v.order_ref ?? v.sku),
          detail: String(v.detail ?? ''),
        })),
      );
      throw new Rollback();
    }),
    Rollback,
  );
  return found;
}

/** Exactly these kinds are reported, and each names the order. */
async function assertReported(statements: readonly ReturnType<typeof sql.unsafe>[], expected: readonly string[], order: string) {
  const found = await reportedAfter(statements);
  assert.deepEqual([...new Set(found.map((f) => f.key))].sort(), [...expected].sort(), JSON.stringify(found, null, 1));
  for (const f of found) assert.equal(f.subject, order, JSON.stringify(f));
  return found;
}

const replica = sql.unsafe`set local session_replication_role = replica`;
const orderId = (ref: string) => sql.fragment`(select id from orders where ref = ${ref})`;

/**
 * A balanced change of one seller's money in an order, as haat would write it (splits with the
 * commission by the rule, one entry moving psp_clearing, the payable and the commission), but
 * without the refund or capture that should explain it. (Its entries are of kind `delivery`: a
 * `refund` or `cancellation` entry with no refund row reads as an order reversed before refunds
 * were recorded, which reconcile holds to other terms.)
 */
const moneyMoved = (ref: string, seller: string, captured: number, refunded: number) => [
  replica,
  sql.unsafe`
    with d as (select ${captured}::int8 as captured, ${refunded}::int8 as refunded), s as (
      select s.order_id, s.seller, s.captured, s.refunded, s.commission_kept, o.currency,
             haat_commission(s.captured + d.captured - s.refunded - d.refunded, o.commission_bps) as kept
      from order_seller_splits s join orders o on o.id = s.order_id, d where o.ref = ${ref} and s.seller = ${seller}
    ), changed as (
      update order_seller_splits x set captured = x.captured + d.captured, refunded = x.refunded + d.refunded, commission_kept = s.kept
      from s, d where x.order_id = s.order_id and x.seller = s.seller
    ), entry as (
      insert into journal_entries (order_id, kind) select order_id, 'delivery' from s returning id
    )
    insert into postings (entry_id, account, amount, currency)
    select entry.id, p.account, p.amount, s.currency
    from entry, s, d, lateral (values
      ('psp_clearing', d.captured - d.refunded),
      ('seller_payable:' || s.seller, (d.refunded - d.captured) + (s.kept - s.commission_kept)),
      ('platform_commission', -(s.kept - s.commission_kept))
    ) p(account, amount)
    where p.amount <> 0`,
];

/** A balanced entry of the order with these postings. */
const entry = (ref: string, postings: Record<string, number>) => sql.unsafe`
  with e as (insert into journal_entries (order_id, kind) select id, 'delivery' from orders where ref = ${ref} returning id)
  insert into postings (entry_id, account, amount, currency)
  select e.id, p.account, p.amount, 'INR' from e, unnest(${sql.array(Object.keys(postings), 'text')}, ${sql.array(
    Object.values(postings).map(String),
    'int8',
  )}) p(account, amount)`;

describe('haat reconcile over the order lifecycle', () => {
  test('a full lifecycle leaves every invariant holding: exit 0, ten checks listed', async () => {
    assert.deepEqual(await Promise.all(['L-1', 'L-2', 'L-3', 'L-4', 'L-5', 'L-6', 'L-7', 'L-8', 'L-9'].map(stateOf)), [
      'delivered',
      'delivered',
      'cancelled',
      'cancelled',
      'refunded',
      'cancelled',
      'confirmed',
      'confirmed',
      'partially_shipped',
    ]);
    const result = await runCli(['reconcile', '--json'], { env });
    assert.equal(result.code, 0, result.stdout);
    const report = JSON.parse(result.stdout) as { checks: { invariant: number; name: string; ok: boolean }[] };
    assert.deepEqual(
      report.checks.map((c) => [c.invariant, c.ok]),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => [n, true]),
    );
    assert.equal(report.checks.at(-1)?.name, 'lifecycle_holds');
    assert.match((await runCli(['reconcile'], { env })).stdout, /10\s+lifecycle_holds\s+ok/);
    // What was built: a courier owes L-2's delivered parcel; restocks of every kind exist.
    const owed = await db.pool.any(sql.type(z.object({ account: z.string(), balance: z.bigint() }))`
      select p.account, sum(p.amount)::int8 as balance from postings p join journal_entries e on e.id = p.entry_id
      where e.order_id = ${orderId('L-2')} and p.account like 'cod_receivable:%' group by 1 order by 1`);
    assert.deepEqual(owed, [{ account: 'cod_receivable:delhivery', balance: 12999n * 2n }]);
    const kinds = await db.pool.anyFirst(sql.type(z.object({ kind: z.string() }))`
      select distinct kind from inventory_movements where order_id is not null order by kind`);
    assert.deepEqual(kinds, ['restock', 'return_restock', 'rto_restock']);
  });

  describe('money (invariant 7)', () => {
    test('a cash-on-delivery order has no capture by design; a prepaid one without it is paid_without_capture', async () => {
      await assertReported(
        [replica, sql.unsafe`update orders set payment_method = 'prepaid' where ref = 'L-8'`],
        ['ledger_balances/paid_without_capture'],
        'L-8',
      );
    });

    test('seller payables that disagree with the splits: seller_payable_mismatch', async () => {
      const found = await assertReported(
        [entry('L-1', { 'seller_payable:tea-house': 5, 'seller_payable:spice-co': -5 })],
        ['ledger_balances/seller_payable_mismatch'],
        'L-1',
      );
      assert.equal(found.length, 2);
    });

    test('commission booked as a payable: commission_mismatch (with the payable it went to)', async () => {
      // Each entry balances and the four accounts' expected nets sum to zero, so no one account can
      // be off alone: the commission's counterpart shows too.
      await assertReported(
        [entry('L-7', { platform_commission: 7, 'seller_payable:tea-house': -7 })],
        ['ledger_balances/commission_mismatch', 'ledger_balances/seller_payable_mismatch'],
        'L-7',
      );
    });

    test('cash on delivery posted to the PSP: psp_clearing_mismatch (with the receivable)', async () => {
      await assertReported(
        [entry('L-2', { psp_clearing: 100, 'cod_receivable:delhivery': -100 })],
        ['ledger_balances/cod_receivable_mismatch', 'ledger_balances/psp_clearing_mismatch'],
        'L-2',
      );
    });

    test('a receivable owed by another courier than the parcel had: cod_receivable_mismatch', async () => {
      const found = await assertReported(
        [replica, sql.unsafe`update shipments set courier = 'bluedart' where ref = 'L2-S1'`],
        ['ledger_balances/cod_receivable_mismatch'],
        'L-2',
      );
      assert.equal(found.length, 2, 'delhivery is owed nothing, bluedart the parcel');
    });

    test('money captured short of the subtotal (ledger agreeing): captured_mismatch', async () => {
      await assertReported(moneyMoved('L-7', 'tea-house', -1000, 0), ['ledger_balances/captured_mismatch'], 'L-7');
    });

    test("a seller's refunded not what its allocations add up to: refunded_mismatch", async () => {
      await assertReported(
        [
          replica,
          sql.unsafe`update refund_allocations a set amount = a.amount + 100 from refunds f
                     where f.id = a.refund_id and f.order_id = ${orderId('L-5')}`,
          sql.unsafe`update refunds set amount = amount + 100 where order_id = ${orderId('L-5')}`,
        ],
        ['ledger_balances/refunded_mismatch'],
        'L-5',
      );
    });

    test('a refund that is not the sum of its allocations: refund_allocations_mismatch', async () => {
      await assertReported(
        [replica, sql.unsafe`update refunds set amount = amount + 1 where order_id = ${orderId('L-5')}`],
        ['ledger_balances/refund_allocations_mismatch'],
        'L-5',
      );
    });

    test('more refunded than captured (CHECK dropped, all else agreeing): refunded_above_captured', async () => {
      const room = await db.pool.oneFirst(sql.type(z.object({ room: z.bigint() }))`
        select captured - refunded as room from order_seller_splits where order_id = ${orderId('L-1')} and seller = 'spice-co'`);
      const over = Number(room) + 100;
      await assertReported(
        [
          sql.unsafe`alter table order_seller_splits drop constraint order_seller_splits_refunded_within_captured`,
          ...moneyMoved('L-1', 'spice-co', 0, over),
          sql.unsafe`update refund_allocations a set amount = a.amount + ${over} from refunds f
                     where f.id = a.refund_id and f.order_id = ${orderId('L-1')} and f.kind = 'refund' and a.seller = 'spice-co'
                       and f.id = (select f2.id from refunds f2 join refund_allocations a2 on a2.refund_id = f2.id
                                   where f2.order_id = ${orderId('L-1')} and a2.seller = 'spice-co' order by f2.created_at desc limit 1)`,
          sql.unsafe`update refunds f set amount = f.amount + ${over}
                     where f.id = (select f2.id from refunds f2 join refund_allocations a2 on a2.refund_id = f2.id
                                   where f2.order_id = ${orderId('L-1')} and a2.seller = 'spice-co' order by f2.created_at desc limit 1)`,
        ],
        ['ledger_balances/refunded_above_captured'],
        'L-1',
      );
    });

    test('an order reversed whole before refunds were recorded (as migration 000014 carried it over) holds', async () => {
      // The old cancel and refund reversed every posting and recorded no refund row; the migration
      // set refunded = captured. Without the reversal, the same splits are refunded_mismatch.
      const reversal = sql.unsafe`
        with e as (insert into journal_entries (order_id, kind) select id, 'cancellation' from orders where ref = 'L-7' returning id)
        insert into postings (entry_id, account, amount, currency)
        select e.id, n.account, -n.amount, 'INR' from e, (
          select p.account, sum(p.amount) as amount from postings p join journal_entries j on j.id = p.entry_id
          where j.order_id = ${orderId('L-7')} group by p.account having sum(p.amount) <> 0) n`;
      const splits = sql.unsafe`update order_seller_splits set refunded = captured, commission_kept = 0 where order_id = ${orderId('L-7')}`;
      assert.deepEqual(await reportedAfter([replica, reversal, splits]), []);
      const found = await reportedAfter([replica, splits]);
      assert.ok(found.some((f) => f.key === 'ledger_balances/refunded_mismatch' && f.subject === 'L-7'));
    });

    test('commission kept off the rule (ledger agreeing): commission_kept_off_rule', async () => {
      await assertReported(
        [
          replica,
          sql.unsafe`update order_seller_splits set commission_kept = commission_kept + 5 where order_id = ${orderId('L-1')} and seller = 'tea-house'`,
          entry('L-1', { platform_commission: -5, 'seller_payable:tea-house': 5 }),
        ],
        ['ledger_balances/commission_kept_off_rule'],
        'L-1',
      );
    });
  });

  describe('the lifecycle (invariant 10)', () => {
    test('counts past their limits (CHECK dropped), shipments agreeing: line_limits', async () => {
      const found = await assertReported(
        [
          sql.unsafe`alter table order_items drop constraint order_items_cancelled_shipped_within_qty`,
          replica,
          sql.unsafe`update shipment_items set qty = qty + 5 where shipment_id = (select id from shipments where ref = 'L1-S1') and sku = 'A'`,
          sql.unsafe`update order_items set shipped = shipped + 5, delivered = delivered + 5 where order_id = ${orderId('L-1')} and sku = 'A'`,
        ],
        ['lifecycle_holds/line_limits'],
        'L-1',
      );
      assert.match(found[0]?.detail ?? '', /^A: qty 4, cancelled 1, shipped 8/);
    });

    test('a parcel holding more than its line shipped: shipped_matches_shipments', async () => {
      const found = await assertReported(
        [replica, sql.unsafe`update shipment_items set qty = qty + 1 where shipment_id = (select id from shipments where ref = 'L9-S1')`],
        ['lifecycle_holds/shipped_matches_shipments'],
        'L-9',
      );
      assert.equal(found[0]?.detail, 'A: shipped 1, units of its shipments 2');
    });

    test('delivered units no delivered parcel holds: delivered_matches_shipments', async () => {
      await assertReported(
        [replica, sql.unsafe`update order_items set delivered = delivered - 1 where order_id = ${orderId('L-1')} and sku = 'A'`],
        ['lifecycle_holds/delivered_matches_shipments'],
        'L-1',
      );
    });

    test('an RTO undone on the line (and its stock taken back), the parcel still back: rto_matches_shipments', async () => {
      await assertReported(
        [
          replica,
          sql.unsafe`update order_items set rto = rto - 1 where order_id = ${orderId('L-1')} and sku = 'B'`,
          sql.unsafe`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reason, order_id)
                     values ('B', 'rto_restock', -1, 0, 'by hand', ${orderId('L-1')})`,
          sql.unsafe`update inventory set on_hand = on_hand - 1 where sku = 'B'`,
        ],
        ['lifecycle_holds/rto_matches_shipments'],
        'L-1',
      );
    });

    test('a received return not counted on its line: returned_matches_returns', async () => {
      await assertReported(
        [replica, sql.unsafe`update order_items set returned = returned - 1 where order_id = ${orderId('L-1')} and sku = 'C'`],
        ['lifecycle_holds/returned_matches_returns'],
        'L-1',
      );
    });

    test('units cancelled after payment whose restock names no order: restock_without_movement', async () => {
      const found = await assertReported(
        [replica, sql.unsafe`update inventory_movements set order_id = null where kind = 'restock' and order_id = ${orderId('L-4')}`],
        ['lifecycle_holds/restock_without_movement'],
        'L-4',
      );
      assert.equal(found[0]?.detail, 'B: units cancelled past confirmation 2, restock movements 0');
    });

    test('a returned unit restocked without its movement (stock agreeing): restock_without_movement', async () => {
      await assertReported(
        [
          replica,
          sql.unsafe`delete from inventory_movements where kind = 'return_restock' and order_id = ${orderId('L-1')}`,
          sql.unsafe`update inventory set on_hand = on_hand - 1 where sku = 'A'`,
        ],
        ['lifecycle_holds/restock_without_movement'],
        'L-1',
      );
    });

    test('a restock for an order cancelled while pending (its stock was released): movement_without_restock', async () => {
      const found = await assertReported(
        [
          sql.unsafe`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reason, order_id)
                     values ('A', 'restock', 1, 0, 'by hand', ${orderId('L-3')})`,
          sql.unsafe`update inventory set on_hand = on_hand + 1 where sku = 'A'`,
        ],
        ['lifecycle_holds/movement_without_restock'],
        'L-3',
      );
      assert.equal(found[0]?.detail, 'A: units cancelled past confirmation 0, restock movements 1');
    });

    test('an order moved on by hand (allowed move, its event written): state_matches_lines', async () => {
      const found = await assertReported(
        [
          sql.unsafe`update orders set state = 'shipped' where ref = 'L-9'`,
          sql.unsafe`insert into order_transitions (order_id, from_state, to_state, actor) values (${orderId('L-9')}, 'partially_shipped', 'shipped', 'sql')`,
        ],
        ['lifecycle_holds/state_matches_lines'],
        'L-9',
      );
      assert.match(found[0]?.detail ?? '', /^shipped, lines imply partially_shipped/);
    });

    test('a shipment moved without its transition: shipment_transitions_form_a_chain', async () => {
      const found = await assertReported(
        [sql.unsafe`update shipments set state = 'delivery_failed' where ref = 'L9-S1'`],
        ['lifecycle_holds/shipment_transitions_form_a_chain'],
        'L-9',
      );
      assert.equal(found[0]?.detail, 'shipment L9-S1: (new) -> dispatched (step 1), the last, but the shipment is delivery_failed');
    });

    test('a return transition the machine does not allow: return_transitions_form_a_chain', async () => {
      const found = await assertReported(
        [
          sql.unsafe`insert into return_transitions (return_id, from_state, to_state, actor)
                     select id, 'received', 'rejected', 'sql' from returns where ref = 'L1-R1'`,
        ],
        ['lifecycle_holds/return_transitions_form_a_chain'],
        'L-1',
      );
      assert.equal(found[0]?.detail, 'return L1-R1: received -> rejected (step 3), the last, but the return is received');
    });
  });

  describe('lifecycle events (invariant 9)', () => {
    test('a shipment transition written with its outbox trigger off: change_without_event', async () => {
      const found = await reportedAfter([
        sql.unsafe`alter table shipment_transitions disable trigger shipment_transitions_outbox`,
        sql.unsafe`update shipments set state = 'delivery_failed' where ref = 'L9-S1'`,
        sql.unsafe`insert into shipment_transitions (shipment_id, from_state, to_state, actor, reason)
                   select id, 'dispatched', 'delivery_failed', 'sql', 'by hand' from shipments where ref = 'L9-S1'`,
      ]);
      assert.deepEqual(
        found.map((f) => [f.key, f.subject.replace(/\d+$/, 'N')]),
        [['events_are_delivered/change_without_event', 'shipment transition N']],
      );
      assert.match(found[0]?.detail ?? '', /^transition dispatched -> delivery_failed of shipment /);
    });

    test('a return transition written with its outbox trigger off: change_without_event', async () => {
      const found = await reportedAfter([
        sql.unsafe`alter table return_transitions disable trigger return_transitions_outbox`,
        sql.unsafe`update returns set state = 'rejected' where ref = 'L5-R1'`,
        sql.unsafe`insert into return_transitions (return_id, from_state, to_state, actor, reason)
                   select id, 'requested', 'rejected', 'sql', 'by hand' from returns where ref = 'L5-R1'`,
      ]);
      assert.deepEqual(
        found.map((f) => [f.key, f.subject.replace(/\d+$/, 'N')]),
        [['events_are_delivered/change_without_event', 'return transition N']],
      );
    });

    test('a refund whose refund.issued is gone: change_without_event', async () => {
      const refund = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
        select id::text as id from refunds where order_id = ${orderId('L-5')}`);
      const found = await reportedAfter([replica, sql.unsafe`delete from outbound_events where refund_id = ${refund}::uuid`]);
      assert.deepEqual(
        found.map((f) => [f.key, f.subject]),
        [['events_are_delivered/change_without_event', `refund ${refund}`]],
      );
    });
  });
});
