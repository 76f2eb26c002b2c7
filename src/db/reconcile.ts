// `haat reconcile`: invariants 1–10 (docs/invariants.md), each a set-based query (no per-row round
// trips; the snapshot hashes are recomputed in batches of orders). Each check returns its offenders.
// The lifecycle's money (part of 7) and invariant 10 are in lifecycle-reconcile.ts.
import { z } from 'zod';
import { snapshotHash } from '../domain/snapshot.ts';
import { WEBHOOK_JOB_KEY_PREFIX, WEBHOOK_SCOPE_PREFIX } from './idempotency.ts';
import { inventoryViolations } from './inventory.ts';
import { lifecycleViolations, orderMoneyViolations } from './lifecycle-reconcile.ts';
import { orderViolations } from './orders.ts';
import type { Queryable } from './pool.ts';
import { sql } from './sql.ts';

export type Check = {
  readonly invariant: number;
  readonly name: string;
  readonly ok: boolean;
  readonly violations: readonly Record<string, unknown>[];
  /** Time of the query behind the check (1–3 share one query, 4–5 another). */
  readonly ms: number;
};

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work();
  return [result, Math.round(performance.now() - started)];
}

const INVENTORY_CHECKS = [
  [1, 'reserved_within_on_hand'],
  [2, 'reserved_is_active_reservations'],
  [3, 'on_hand_is_movements'],
] as const;
const ORDER_CHECKS = [
  [4, 'reservations_match_state'],
  [5, 'transitions_form_a_chain'],
] as const;

/** Orders per round trip when re-hashing snapshots (keyset-paged by ref). */
const SNAPSHOT_BATCH = 5000;

async function snapshotViolations(db: Queryable): Promise<Record<string, unknown>[]> {
  const violations: Record<string, unknown>[] = [];
  let after = '';
  for (;;) {
    const batch = await db.any(sql.type(
      z.object({
        ref: z.string(),
        currency: z.string(),
        total: z.bigint(),
        bps: z.number(),
        hash: z.string().nullable(),
        items: z.string(),
        splits: z.string(),
      }),
    )`
      select o.ref, o.currency, o.total_amount as total, o.commission_bps as bps, o.snapshot_hash as hash,
             (select coalesce(json_agg(json_build_object('sku', i.sku, 'qty', i.qty::text, 'unit_price', i.unit_price::text, 'total', i.total::text) order by i.sku), '[]')::text from order_items i where i.order_id = o.id) as items,
             (select coalesce(json_agg(json_build_object('seller', s.seller, 'subtotal', s.subtotal::text, 'commission', s.commission::text, 'payout', s.payout::text) order by s.seller), '[]')::text from order_seller_splits s where s.order_id = o.id) as splits
      from orders o where o.state not in ('pending', 'rejected') and o.ref > ${after} order by o.ref limit ${SNAPSHOT_BATCH}`);
    for (const o of batch) {
      const items = JSON.parse(o.items) as { sku: string; qty: string; unit_price: string; total: string }[];
      const splits = JSON.parse(o.splits) as { seller: string; subtotal: string; commission: string; payout: string }[];
      const expected = snapshotHash({
        currency: o.currency,
        total: o.total,
        commissionBps: o.bps,
        items: items.map((i) => ({ sku: i.sku, qty: BigInt(i.qty), unitPrice: BigInt(i.unit_price), total: BigInt(i.total) })),
        splits: splits.map((s) => ({
          seller: s.seller,
          subtotal: BigInt(s.subtotal),
          commission: BigInt(s.commission),
          payout: BigInt(s.payout),
        })),
      });
      if (o.hash !== expected) violations.push({ order_ref: o.ref, stored: o.hash, recomputed: expected });
    }
    if (batch.length < SNAPSHOT_BATCH) return violations;
    after = batch.at(-1)?.ref ?? after;
  }
}

/**
 * Invariant 7: every entry balances, and so does each currency; a capture moves the order's total;
 * every order past confirmation paid online has its capture (a cash-on-delivery order collects at
 * delivery: it has none); and each order's money per seller agrees with the ledger, its refunds and
 * the commission rule (orderMoneyViolations).
 */
async function ledgerViolations(db: Queryable): Promise<readonly Record<string, unknown>[]> {
  return [...(await entryViolations(db)), ...(await orderMoneyViolations(db))];
}

async function entryViolations(db: Queryable): Promise<readonly { kind: string; subject: string; detail: string }[]> {
  return db.any(sql.type(z.object({ kind: z.string(), subject: z.string(), detail: z.string() }))`
    select 'entry_unbalanced' as kind, p.entry_id::text as subject, format('%s sums to %s', p.currency, sum(p.amount)) as detail
      from postings p group by p.entry_id, p.currency having sum(p.amount) <> 0
    union all
    select 'postings_nonzero', currency, format('all postings sum to %s', sum(amount)) from postings group by currency having sum(amount) <> 0
    union all
    select 'capture_mismatch', o.ref,
           format('captured %s, payouts + commission %s, order total %s', c.captured, c.credited, o.total_amount)
      from orders o join lateral (
        select coalesce(sum(p.amount) filter (where p.account = 'psp_clearing'), 0) as captured,
               -coalesce(sum(p.amount) filter (where p.account <> 'psp_clearing'), 0) as credited
        from journal_entries e join postings p on p.entry_id = e.id where e.order_id = o.id and e.kind = 'capture'
      ) c on true
      where exists (select 1 from journal_entries e where e.order_id = o.id and e.kind = 'capture')
        and (c.captured <> o.total_amount or c.credited <> o.total_amount)
    union all
    select 'paid_without_capture', o.ref, o.state from orders o
      where o.state in ('confirmed', 'partially_shipped', 'shipped', 'delivered', 'returned_to_origin', 'refunded')
        and not (o.payment_method = 'cod' and o.payment_ref is null)
        and not exists (select 1 from journal_entries e where e.order_id = o.id and e.kind = 'capture')
    order by 1, 2`);
}

/**
 * Invariant 8: every accepted event ends in an outcome an operator can see. An event has its outcome
 * row or a live job; its outcome agrees with its command's; a placement that was not refused for a
 * taken ref (`conflict`) left an order under its ref (rejected ones included), and a rejected order
 * keeps the lines it was rejected for; no job has failed silently.
 */
async function eventViolations(db: Queryable): Promise<readonly Record<string, unknown>[]> {
  return db.any(sql.type(z.object({ kind: z.string(), subject: z.string(), detail: z.string() }))`
    select 'event_without_outcome' as kind, e.source || '/' || e.webhook_id as subject, coalesce(k.state, 'no command') as detail
      from webhook_events e
      left join webhook_event_outcomes o on o.source = e.source and o.webhook_id = e.webhook_id
      left join idempotency_keys k on k.scope = ${WEBHOOK_SCOPE_PREFIX} || e.source and k.key = e.webhook_id
      where o.webhook_id is null
        and not exists (select 1 from graphile_worker.jobs j where j.key = ${WEBHOOK_JOB_KEY_PREFIX} || e.source || ':' || e.webhook_id and j.attempts < j.max_attempts)
    union all
    select 'event_outcome_disagrees', o.source || '/' || o.webhook_id,
           format('event says %s, its command %s', o.code, coalesce(case when (k.outcome ->> 'ok')::boolean then 'applied' else k.outcome -> 'error' ->> 'code' end, k.state))
      from webhook_event_outcomes o
      join idempotency_keys k on k.scope = ${WEBHOOK_SCOPE_PREFIX} || o.source and k.key = o.webhook_id
      where o.code is distinct from case when k.state = 'done' then case when (k.outcome ->> 'ok')::boolean then 'applied' else k.outcome -> 'error' ->> 'code' end end
    union all
    select 'placed_event_without_order', o.source || '/' || o.webhook_id, format('outcome %s, no order %s', o.code, coalesce(o.order_ref, '(no ref)'))
      from webhook_event_outcomes o join webhook_events e on e.source = o.source and e.webhook_id = o.webhook_id
      where e.event_type = 'order.placed' and o.code <> 'conflict'
        and not exists (select 1 from orders x where x.ref = o.order_ref)
    union all
    select 'placement_without_order', k.scope || '/' || k.key, format('outcome %s, no order %s', coalesce(k.outcome -> 'error' ->> 'code', 'applied'), coalesce(k.payload ->> 'ref', placement_ref(k.scope, k.key)))
      from idempotency_keys k
      where k.command_type = 'order.place' and k.state = 'done' and k.scope not like ${`${WEBHOOK_SCOPE_PREFIX}%`}
        and coalesce(k.outcome -> 'error' ->> 'code', 'applied') <> 'conflict'
        and not exists (select 1 from orders x where x.ref = coalesce(k.payload ->> 'ref', placement_ref(k.scope, k.key)))
    union all
    select 'rejected_order_without_lines', x.ref, coalesce(x.reject_reason, '?')
      from orders x
      where x.state = 'rejected'
        and not exists (select 1 from order_items i where i.order_id = x.id)
        and not exists (select 1 from order_requested_items r where r.order_id = x.id)
    union all
    select 'job_failed', j.id::text, format('%s after %s attempts: %s', j.task_identifier, j.attempts, split_part(coalesce(j.last_error, ''), E'\\n', 1))
      from graphile_worker.jobs j where j.attempts >= j.max_attempts
    order by 1, 2`);
}

/**
 * Invariant 9: every order change (and payment kept unapplied) since the outbox began, and every
 * shipment and return transition and refund (but the shipments migration 000014 carried over), has its
 * event, every outbound event has a delivery for each endpoint subscribed when it was written
 * (added before it, not removed before it, its patterns matching), and every delivery is accounted
 * for: delivered, failed, held while its endpoint is disabled, or pending with a live job for its
 * next attempt. Anything else is a notification lost.
 */
async function deliveryViolations(db: Queryable): Promise<readonly Record<string, unknown>[]> {
  return db.any(sql.type(z.object({ kind: z.string(), subject: z.string(), detail: z.string() }))`
    select 'change_without_event' as kind, t.id::text as subject, format('transition %s -> %s of order %s has no event', coalesce(t.from_state, '(new)'), t.to_state, t.order_id) as detail
      from order_transitions t
      where t.id > (select transition_id from outbox_start)
        and not exists (select 1 from outbound_events e where e.transition_id = t.id)
    union all
    select 'change_without_event', 'payment ' || p.id, format('payment %s kept unapplied (%s) has no event', p.payment_ref, p.reason)
      from payments p
      where p.id > (select payment_id from outbox_start) and p.state = 'unapplied'
        and not exists (select 1 from outbound_events e where e.payment_id = p.id)
    union all
    select 'change_without_event', 'shipment transition ' || t.id, format('transition %s -> %s of shipment %s has no event', coalesce(t.from_state, '(new)'), t.to_state, t.shipment_id)
      from shipment_transitions t
      -- Migration 000014 recorded the shipments of orders shipped before them, before the outbox knew shipments.
      where not (t.actor = 'haat' and t.command_scope is null and t.reason like 'carried over: %')
        and not exists (select 1 from outbound_events e where e.shipment_transition_id = t.id)
    union all
    select 'change_without_event', 'return transition ' || t.id, format('transition %s -> %s of return %s has no event', coalesce(t.from_state, '(new)'), t.to_state, t.return_id)
      from return_transitions t
      where not exists (select 1 from outbound_events e where e.return_transition_id = t.id)
    union all
    select 'change_without_event', 'refund ' || f.id, format('refund %s of %s to order %s has no event', f.kind, f.amount, f.order_id)
      from refunds f
      where not exists (select 1 from outbound_events e where e.refund_id = f.id)
    union all
    select 'event_without_delivery' as kind, e.id as subject, format('%s of %s: no delivery to endpoint %s', e.type, e.created_at, p.id) as detail
      from outbound_events e
      join webhook_endpoints p on p.created_at < e.created_at and (p.removed_at is null or p.removed_at > e.created_at)
        and webhook_patterns_match(p.events, e.type)
      where not exists (select 1 from webhook_deliveries d where d.event_id = e.id and d.endpoint_id = p.id)
    union all
    select 'pending_without_job', d.id, format('pending after %s attempts, no job for the next one (dlv:%s:%s)', d.attempts, d.id, d.attempts)
      from webhook_deliveries d
      where d.state = 'pending'
        and not exists (select 1 from graphile_worker.jobs j
                        where j.key = 'dlv:' || d.id || ':' || d.attempts and (j.attempts < j.max_attempts or j.locked_at is not null))
    union all
    select 'held_while_enabled', d.id, format('held, but endpoint %s is %s', p.id, p.state)
      from webhook_deliveries d join webhook_endpoints p on p.id = d.endpoint_id
      where d.state = 'held' and p.state <> 'disabled'
    union all
    select 'pending_for_removed_endpoint', d.id, format('pending, but endpoint %s was removed', p.id)
      from webhook_deliveries d join webhook_endpoints p on p.id = d.endpoint_id
      where d.state = 'pending' and p.state = 'removed'
    union all
    select 'attempts_do_not_add_up', d.id, format('%s attempts counted, %s recorded', d.attempts, (select count(*) from webhook_delivery_attempts a where a.delivery_id = d.id))
      from webhook_deliveries d
      where d.attempts <> (select count(*) from webhook_delivery_attempts a where a.delivery_id = d.id)
    order by 1, 2`);
}

export async function reconcile(db: Queryable): Promise<Check[]> {
  const [inventory, inventoryMs] = await timed(() => inventoryViolations(db));
  const [orders, ordersMs] = await timed(() => orderViolations(db));
  const checks: Check[] = [
    ...INVENTORY_CHECKS.map(([invariant, name]) => {
      const violations = inventory.filter((v) => v.check === name).map((v) => ({ sku: v.sku, detail: v.detail }));
      return { invariant, name, ok: violations.length === 0, violations, ms: inventoryMs };
    }),
    ...ORDER_CHECKS.map(([invariant, name]) => {
      const violations = orders.filter((v) => v.check === name).map((v) => ({ order_ref: v.order_ref, detail: v.detail }));
      return { invariant, name, ok: violations.length === 0, violations, ms: ordersMs };
    }),
  ];
  const [snapshots, snapshotsMs] = await timed(() => snapshotViolations(db));
  checks.push({ invariant: 6, name: 'money_snapshot_matches_hash', ok: snapshots.length === 0, violations: snapshots, ms: snapshotsMs });
  const [ledger, ledgerMs] = await timed(() => ledgerViolations(db));
  checks.push({ invariant: 7, name: 'ledger_balances', ok: ledger.length === 0, violations: ledger, ms: ledgerMs });
  const [events, eventsMs] = await timed(() => eventViolations(db));
  checks.push({ invariant: 8, name: 'events_have_outcomes', ok: events.length === 0, violations: events, ms: eventsMs });
  const [deliveries, deliveriesMs] = await timed(() => deliveryViolations(db));
  checks.push({ invariant: 9, name: 'events_are_delivered', ok: deliveries.length === 0, violations: deliveries, ms: deliveriesMs });
  const [lifecycle, lifecycleMs] = await timed(() => lifecycleViolations(db));
  checks.push({ invariant: 10, name: 'lifecycle_holds', ok: lifecycle.length === 0, violations: lifecycle, ms: lifecycleMs });
  return checks;
}
