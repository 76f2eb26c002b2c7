// `haat reconcile` over the order lifecycle (docs/invariants.md, invariants 7 and 10): each seller's
// money against the ledger, the refunds and the rule for commission; each line's counts against its
// limits, its shipments, returns and restock movements; each order's state against its lines; each
// shipment's and return's history against its machine. Set-based: one query each, of hash joins
// and aggregates over whole tables (no per-row round trip or per-row subquery), so it runs over
// millions of rows. Each row names its kind, the order (its ref) and what disagrees.
import { z } from 'zod';
import type { Queryable } from './pool.ts';
import { sql } from './sql.ts';

export type Violation = { readonly kind: string; readonly subject: string; readonly detail: string };

const ViolationRow = z.object({ kind: z.string(), subject: z.string(), detail: z.string() });

/**
 * Runs a check without JIT: their plans cost enough for PostgreSQL to compile them (inlined and
 * optimised, about 3 s on 2 million rows) for a run that takes less. In a transaction of its own
 * (a savepoint when the caller is in one), so the setting goes no further.
 */
function withoutJit<T>(db: Queryable, check: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query(sql.unsafe`set local jit = off`);
    return check(tx);
  });
}

/**
 * Invariant 7, per order and seller: the ledger's net of each account over the order's entries is
 * what order_seller_splits says — seller_payable:<s> = −(captured − refunded − commission kept),
 * platform_commission = −Σ commission kept, psp_clearing = Σ captured (when captured by a payment,
 * i.e. the order has a `capture` entry) − Σ refunded, cod_receivable:<courier> = the value of the
 * order's delivered shipments with that courier (cash on delivery, nothing remitted yet); captured
 * is the subtotal (paid) or the value delivered (cash on delivery); refunded is the sum of the
 * seller's refund allocations (all captured, for an order reversed whole before refunds were
 * recorded: reversal entries and no refund row), never above captured; each refund is the sum of
 * its allocations; and the commission kept is haat_commission(captured − refunded, commission_bps).
 */
export async function orderMoneyViolations(db: Queryable): Promise<readonly Violation[]> {
  return withoutJit(db, (tx) =>
    tx.any(sql.type(ViolationRow)`
    with captures as (
      select distinct order_id from journal_entries where kind = 'capture'
    ), reversed_whole as (
      -- Cancelled or refunded before refunds were recorded (migration 000014 carried them over as
      -- refunded = captured): reversal entries, and not one refund row.
      select distinct e.order_id from journal_entries e
      where e.kind in ('cancellation', 'refund') and not exists (select 1 from refunds f where f.order_id = e.order_id)
    ), delivered as (
      select i.order_id, k.seller, sum(i.delivered * i.unit_price) as value
      from order_items i join skus k on k.code = i.sku where i.delivered > 0 group by i.order_id, k.seller
    ), allocated as (
      select f.order_id, a.seller, sum(a.amount) as amount
      from refunds f join refund_allocations a on a.refund_id = f.id group by f.order_id, a.seller
    ), splits as (
      select s.order_id, s.seller, s.subtotal, s.captured, s.refunded, s.commission_kept as kept, o.commission_bps as bps,
             c.order_id is not null as by_payment, (o.payment_method = 'cod' and o.payment_ref is null) as collects_cash,
             coalesce(d.value, 0) as delivered_value, a.order_id is not null as has_allocations, coalesce(a.amount, 0) as allocated,
             w.order_id is not null as reversed_whole
      from order_seller_splits s join orders o on o.id = s.order_id
      left join captures c on c.order_id = s.order_id
      left join delivered d on d.order_id = s.order_id and d.seller = s.seller
      left join allocated a on a.order_id = s.order_id and a.seller = s.seller
      left join reversed_whole w on w.order_id = s.order_id
    ), expected as (
      -- What each account of each order should net to, by the splits (and the delivered parcels).
      -- (What it is made of, for the message: captured, refunded, commission kept.)
      select order_id, 'seller_payable:' || seller as account, -(captured - refunded - kept)::numeric as amount,
             captured::numeric as captured, refunded::numeric as refunded, kept::numeric as kept
        from splits
      union all
      select order_id, 'platform_commission', -sum(kept), null, null, sum(kept) from splits group by order_id
      union all
      select order_id, 'psp_clearing', sum(case when by_payment then captured else 0 end) - sum(refunded),
             sum(case when by_payment then captured else 0 end), sum(refunded), null
        from splits group by order_id
      union all
      select s.order_id, 'cod_receivable:' || s.courier, sum(i.qty * l.unit_price), null, null, null
        from shipments s join shipment_items i on i.shipment_id = s.id
        join order_items l on l.order_id = s.order_id and l.sku = i.sku
        join orders o on o.id = s.order_id
        where s.state = 'delivered' and o.payment_method = 'cod' and o.payment_ref is null
        group by s.order_id, s.courier
    ), net as (
      select e.order_id, p.account, sum(p.amount) as amount
      from journal_entries e join postings p on p.entry_id = e.id group by e.order_id, p.account
    ), off as (
      select order_id, account, coalesce(x.amount, 0) as expected, coalesce(n.amount, 0) as actual, x.captured, x.refunded, x.kept
      from expected x full join net n using (order_id, account)
      where coalesce(x.amount, 0) <> coalesce(n.amount, 0)
    )
    select case split_part(f.account, ':', 1) when 'seller_payable' then 'seller_payable_mismatch' when 'platform_commission' then 'commission_mismatch'
                when 'psp_clearing' then 'psp_clearing_mismatch' else 'cod_receivable_mismatch' end as kind,
           o.ref as subject,
           format('%s: ledger %s, expected %s (%s)', f.account, f.actual, f.expected,
                  case split_part(f.account, ':', 1)
                    when 'seller_payable' then format('-(captured %s - refunded %s - commission kept %s)', f.captured, f.refunded, f.kept)
                    when 'platform_commission' then format('-(commission kept %s)', f.kept)
                    when 'psp_clearing' then format('captured by payment %s - refunded %s', f.captured, f.refunded)
                    else 'the value of its delivered cash-on-delivery parcels' end) as detail
      from off f join orders o on o.id = f.order_id
    union all
    select 'captured_mismatch', o.ref,
           format('seller %s: captured %s, expected %s (%s)', s.seller, s.captured,
                  case when s.by_payment then s.subtotal when s.collects_cash then s.delivered_value else 0 end,
                  case when s.by_payment then 'paid: its subtotal' when s.collects_cash then 'cash on delivery: the value delivered' else 'not paid' end)
      from splits s join orders o on o.id = s.order_id
      where s.captured <> case when s.by_payment then s.subtotal when s.collects_cash then s.delivered_value else 0 end
    union all
    select 'refunded_mismatch', o.ref,
           case when s.reversed_whole and not s.has_allocations
                then format('seller %s: refunded %s, captured %s, reversed whole before refunds were recorded', s.seller, s.refunded, s.captured)
                else format('seller %s: refunded %s, refund allocations %s', s.seller, s.refunded, s.allocated) end
      from splits s join orders o on o.id = s.order_id
      where s.refunded <> case when s.reversed_whole and not s.has_allocations then s.captured else s.allocated end
    union all
    select 'refunded_above_captured', o.ref, format('seller %s: refunded %s of captured %s', s.seller, s.refunded, s.captured)
      from splits s join orders o on o.id = s.order_id
      where s.refunded > s.captured or s.refunded < 0
    union all
    select 'commission_kept_off_rule', o.ref,
           format('seller %s: commission kept %s, round_half_even((%s - %s) x %s / 10000) = %s', s.seller, s.kept, s.captured, s.refunded,
                  s.bps, haat_commission(s.captured - s.refunded, s.bps))
      from splits s join orders o on o.id = s.order_id
      where s.kept <> haat_commission(s.captured - s.refunded, s.bps)
    union all
    select 'refunded_mismatch', o.ref, format('seller %s: refund allocations %s, and no money of its in the order', a.seller, a.amount)
      from allocated a join orders o on o.id = a.order_id
      where not exists (select 1 from order_seller_splits s where s.order_id = a.order_id and s.seller = a.seller)
    union all
    select 'refund_allocations_mismatch', o.ref, format('refund %s of %s: allocations %s', f.id, f.amount, coalesce(a.amount, 0))
      from refunds f join orders o on o.id = f.order_id
      left join (select refund_id, sum(amount) as amount from refund_allocations group by refund_id) a on a.refund_id = f.id
      where f.amount <> coalesce(a.amount, 0)
    order by 1, 2, 3`),
  );
}

/**
 * Invariant 10 (`lifecycle_holds`). Per line (order and SKU): its counts within their limits;
 * shipped, delivered and rto equal to the units of the order's shipments (all of them, those
 * delivered, those rto_received); returned equal to the units of its received returns; and every
 * unit put back on hand matched by its movement, and every movement by its unit — `restock` for
 * units cancelled past confirmation (an order cancelled while pending released its reservations
 * instead), `rto_restock` for rto, `return_restock` for units of returns received with restock.
 * Per order: its state is what its lines and shipments imply (deriveOrderState; refunded is kept
 * while every captured unit of money is refunded; pending, expired and rejected orders have no
 * counts). Per shipment and return: its transitions form an allowed chain ending at its state.
 */
export async function lifecycleViolations(db: Queryable): Promise<readonly Violation[]> {
  return withoutJit(db, (tx) =>
    tx.any(sql.type(ViolationRow)`
    with sh as (
      select s.order_id, i.sku, sum(i.qty) as shipped,
             coalesce(sum(i.qty) filter (where s.state = 'delivered'), 0) as delivered,
             coalesce(sum(i.qty) filter (where s.state = 'rto_received'), 0) as rto
      from shipments s join shipment_items i on i.shipment_id = s.id group by s.order_id, i.sku
    ), rt as (
      select r.order_id, i.sku,
             coalesce(sum(i.qty) filter (where r.state = 'received'), 0) as returned,
             coalesce(sum(i.qty) filter (where r.state = 'received' and r.disposition = 'restock'), 0) as restocked
      from returns r join return_items i on i.return_id = r.id group by r.order_id, i.sku
    ), mv as (
      select m.order_id, m.sku,
             coalesce(sum(m.on_hand_delta) filter (where m.kind = 'restock'), 0) as restock,
             coalesce(sum(m.on_hand_delta) filter (where m.kind = 'rto_restock'), 0) as rto_restock,
             coalesce(sum(m.on_hand_delta) filter (where m.kind = 'return_restock'), 0) as return_restock
      from inventory_movements m
      where m.order_id is not null and m.kind in ('restock', 'rto_restock', 'return_restock')
      group by m.order_id, m.sku
    ), cancelled_pending as (
      -- Cancelled while pending: its units were released, never restocked.
      select o.id from orders o
      where o.state = 'cancelled'
        and exists (select 1 from order_transitions t where t.order_id = o.id and t.from_state = 'pending' and t.to_state = 'cancelled')
    ), u as (
      select order_id, sku, coalesce(l.qty, 0) as qty, coalesce(l.cancelled, 0) as cancelled, coalesce(l.shipped, 0) as shipped,
             coalesce(l.delivered, 0) as delivered, coalesce(l.rto, 0) as rto, coalesce(l.returned, 0) as returned,
             coalesce(sh.shipped, 0) as sh_shipped, coalesce(sh.delivered, 0) as sh_delivered, coalesce(sh.rto, 0) as sh_rto,
             coalesce(rt.returned, 0) as rt_returned, coalesce(rt.restocked, 0) as rt_restocked,
             coalesce(mv.restock, 0) as mv_restock, coalesce(mv.rto_restock, 0) as mv_rto_restock, coalesce(mv.return_restock, 0) as mv_return_restock,
             case when c.id is not null then 0 else coalesce(l.cancelled, 0) end as due_restock
      from order_items l full join sh using (order_id, sku) full join rt using (order_id, sku) full join mv using (order_id, sku)
      left join cancelled_pending c on c.id = order_id
    ), flagged as (
      select u.*,
             not (u.cancelled >= 0 and u.shipped >= 0 and u.delivered >= 0 and u.rto >= 0 and u.returned >= 0
                  and u.cancelled + u.shipped <= u.qty and u.delivered + u.rto <= u.shipped and u.returned <= u.delivered) as over_limits,
             u.shipped <> u.sh_shipped as shipped_off, u.delivered <> u.sh_delivered as delivered_off, u.rto <> u.sh_rto as rto_off,
             u.returned <> u.rt_returned as returned_off, u.mv_restock <> u.due_restock as restock_off,
             u.mv_rto_restock <> u.rto as rto_restock_off, u.mv_return_restock <> u.rt_restocked as return_restock_off
      from u
    ), bad as (
      -- Only the lines with something off are expanded into one row per kind.
      select f.*, v.kind, v.what, v.expected, v.actual
      from flagged f cross join lateral (values
        ('line_limits', f.over_limits, '', 0::numeric, 0::numeric),
        ('shipped_matches_shipments', f.shipped_off, 'units of its shipments', f.shipped::numeric, f.sh_shipped),
        ('delivered_matches_shipments', f.delivered_off, 'units of its delivered shipments', f.delivered::numeric, f.sh_delivered),
        ('rto_matches_shipments', f.rto_off, 'units of its rto_received shipments', f.rto::numeric, f.sh_rto),
        ('returned_matches_returns', f.returned_off, 'units of its received returns', f.returned::numeric, f.rt_returned),
        (case when f.mv_restock < f.due_restock then 'restock_without_movement' else 'movement_without_restock' end,
         f.restock_off, 'restock', f.due_restock::numeric, f.mv_restock),
        (case when f.mv_rto_restock < f.rto then 'restock_without_movement' else 'movement_without_restock' end,
         f.rto_restock_off, 'rto_restock', f.rto::numeric, f.mv_rto_restock),
        (case when f.mv_return_restock < f.rt_restocked then 'restock_without_movement' else 'movement_without_restock' end,
         f.return_restock_off, 'return_restock', f.rt_restocked::numeric, f.mv_return_restock)
      ) v(kind, broken, what, expected, actual)
      where (f.over_limits or f.shipped_off or f.delivered_off or f.rto_off or f.returned_off or f.restock_off or f.rto_restock_off or f.return_restock_off)
        and v.broken
    ), lines as (
      select order_id, sum(qty) as qty, sum(cancelled) as cancelled, sum(shipped) as shipped, sum(delivered) as delivered,
             sum(rto) as rto, sum(returned) as returned, sum(qty - cancelled - shipped) as unsent
      from order_items group by order_id
    ), parcels as (
      select order_id, count(*) as n, count(*) filter (where state in ('dispatched', 'delivery_failed', 'rto_initiated')) as open
      from shipments group by order_id
    ), money as (
      select s.order_id, sum(s.captured) as captured, sum(s.refunded) as refunded
      from order_seller_splits s join orders o on o.id = s.order_id where o.state = 'refunded' group by s.order_id
    ), derived as (
      select o.ref, o.state, coalesce(l.qty, 0) as qty, coalesce(l.cancelled, 0) as cancelled, coalesce(l.shipped, 0) as shipped,
             coalesce(l.delivered, 0) as delivered, coalesce(l.rto, 0) as rto, coalesce(l.returned, 0) as returned,
             coalesce(p.n, 0) as parcels, coalesce(p.open, 0) as open, coalesce(m.captured, 0) as captured, coalesce(m.refunded, 0) as refunded,
             case when coalesce(l.cancelled, 0) = coalesce(l.qty, 0) then 'cancelled'
                  when coalesce(l.shipped, 0) = 0 then 'confirmed'
                  when coalesce(l.unsent, 0) > 0 then 'partially_shipped'
                  when coalesce(p.open, 0) > 0 then 'shipped'
                  when coalesce(l.delivered, 0) > 0 then 'delivered'
                  else 'returned_to_origin' end as implied
      from orders o left join lines l on l.order_id = o.id left join parcels p on p.order_id = o.id left join money m on m.order_id = o.id
    ), chain as (
      select 'shipment' as what, t.shipment_id as id, t.from_state, t.to_state,
             lag(t.to_state) over (partition by t.shipment_id order by t.id) as previous,
             row_number() over (partition by t.shipment_id order by t.id) as n,
             row_number() over (partition by t.shipment_id order by t.id desc) as from_end,
             r.from_state is not null as allowed
      from shipment_transitions t left join shipment_transition_rules r on r.from_state = t.from_state and r.to_state = t.to_state
      union all
      select 'return', t.return_id, t.from_state, t.to_state,
             lag(t.to_state) over (partition by t.return_id order by t.id),
             row_number() over (partition by t.return_id order by t.id),
             row_number() over (partition by t.return_id order by t.id desc),
             r.from_state is not null
      from return_transitions t left join return_transition_rules r on r.from_state = t.from_state and r.to_state = t.to_state
    ), things as (
      select 'shipment' as what, id, order_id, ref, state, 'dispatched' as first_state from shipments
      union all
      select 'return', id, order_id, ref, state, 'requested' from returns
    )
    select b.kind, coalesce(o.ref, '(no order ' || b.order_id || ')') as subject,
           case when b.kind = 'line_limits'
                then format('%s: qty %s, cancelled %s, shipped %s, delivered %s, rto %s, returned %s', b.sku, b.qty, b.cancelled, b.shipped, b.delivered, b.rto, b.returned)
                when b.kind like '%_matches_%'
                then format('%s: %s %s, %s %s', b.sku, split_part(b.kind, '_', 1), b.expected, b.what, b.actual)
                else format('%s: %s %s, %s movements %s', b.sku,
                            case b.what when 'restock' then 'units cancelled past confirmation' when 'rto_restock' then 'units back from RTO'
                                        else 'units of returns received to restock' end,
                            b.expected, b.what, b.actual)
           end as detail
      from bad b left join orders o on o.id = b.order_id
    union all
    select 'state_matches_lines', d.ref,
           format('%s, lines imply %s (qty %s, cancelled %s, shipped %s, delivered %s, rto %s, returned %s; shipments %s, open %s; captured %s, refunded %s)',
                  d.state, case when d.state in ('pending', 'expired', 'rejected') then 'none yet' when d.state = 'refunded' then d.implied || ' and all refunded' else d.implied end,
                  d.qty, d.cancelled, d.shipped, d.delivered, d.rto, d.returned, d.parcels, d.open, d.captured, d.refunded)
      from derived d
      where (d.state in ('confirmed', 'partially_shipped', 'shipped', 'delivered', 'returned_to_origin', 'cancelled') and d.implied <> d.state)
         or (d.state = 'refunded' and (d.implied not in ('delivered', 'returned_to_origin') or d.captured = 0 or d.refunded <> d.captured))
         or (d.state in ('pending', 'expired', 'rejected') and (d.cancelled + d.shipped + d.delivered + d.rto + d.returned > 0 or d.parcels > 0))
    union all
    select c.what || '_transitions_form_a_chain', coalesce(o.ref, '(no order)'),
           format('%s %s: %s -> %s (step %s)', c.what, coalesce(x.ref, c.id::text), coalesce(c.from_state, '(new)'), c.to_state, c.n)
             || case when c.from_end = 1 and c.to_state is distinct from x.state
                     then format(', the last, but the %s is %s', c.what, coalesce(x.state, 'missing')) else '' end
      from chain c left join things x on x.what = c.what and x.id = c.id left join orders o on o.id = x.order_id
      where (c.n = 1 and (c.from_state is not null or c.to_state <> coalesce(x.first_state, '')))
         or (c.n > 1 and (c.from_state is distinct from c.previous or not c.allowed))
         or (c.from_end = 1 and c.to_state is distinct from x.state)
    union all
    select x.what || '_transitions_form_a_chain', o.ref, format('%s %s: no transitions', x.what, x.ref)
      from things x join orders o on o.id = x.order_id
      where not exists (select 1 from chain c where c.what = x.what and c.id = x.id)
    order by 1, 2, 3`),
  );
}
