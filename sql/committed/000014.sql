--! Previous: sha1:14b9c03dc54ab7a12398646def259c88918ff718
--! Hash: sha1:c65374fe391c6f1fd5c445555a3459e6063634cf

-- The whole order lifecycle (docs/lifecycle.md): per-line quantities, shipments, returns, refunds
-- and cash on delivery. Each machine is data here (…_transition_rules) and once in the domain
-- (src/domain/orders/, a test checks they agree); triggers refuse any other move, SQL included.

-- (The outbox's order functions take the orders row type: they are dropped while orders changes,
-- and made again in 8.)
drop function outbox_order(orders);
drop function outbox_order_state(orders);

-- 1. Orders: the payment method, and the states part-flows need.
alter table orders
  add column payment_method text not null default 'prepaid' check (payment_method in ('prepaid', 'cod'));
alter table orders drop constraint orders_state_check;
alter table orders add constraint orders_state_check check (state in (
  'pending', 'confirmed', 'partially_shipped', 'shipped', 'delivered', 'returned_to_origin',
  'cancelled', 'expired', 'rejected', 'refunded'));
insert into order_transition_rules (from_state, to_state) values
  ('confirmed', 'partially_shipped'),
  ('partially_shipped', 'shipped'), ('partially_shipped', 'delivered'), ('partially_shipped', 'returned_to_origin'),
  ('shipped', 'returned_to_origin'),
  ('returned_to_origin', 'refunded');

-- 2. Per-line quantities: the truth of what happened to each unit. They only grow.
alter table order_items
  add column cancelled bigint not null default 0,
  add column shipped bigint not null default 0,
  add column delivered bigint not null default 0,
  add column rto bigint not null default 0,
  add column returned bigint not null default 0,
  add constraint order_items_counts_not_negative check (cancelled >= 0 and shipped >= 0 and delivered >= 0 and rto >= 0 and returned >= 0),
  add constraint order_items_cancelled_shipped_within_qty check (cancelled + shipped <= qty),
  add constraint order_items_delivered_rto_within_shipped check (delivered + rto <= shipped),
  add constraint order_items_returned_within_delivered check (returned <= delivered);

-- An item's money is frozen once its order has left pending (as before); its counts may only grow.
create or replace function order_items_guard() returns trigger language plpgsql as $$
declare
  order_state text;
begin
  select state into order_state from orders where id = old.order_id;
  if tg_op = 'DELETE' or new.order_id is distinct from old.order_id or new.sku is distinct from old.sku
     or new.qty is distinct from old.qty or new.unit_price is distinct from old.unit_price or new.total is distinct from old.total then
    if order_state is distinct from 'pending' then
      raise exception using errcode = 'HA000', message = format('conflict: the money of a %s order is frozen', order_state);
    end if;
  end if;
  if tg_op = 'UPDATE' and (new.cancelled < old.cancelled or new.shipped < old.shipped or new.delivered < old.delivered
     or new.rto < old.rto or new.returned < old.returned) then
    raise exception using errcode = 'HA000', message = format('conflict: an item''s quantities only grow (%s of order %s)', old.sku, old.order_id);
  end if;
  return coalesce(new, old);
end $$;
drop trigger order_items_frozen on order_items;
create trigger order_items_frozen before update or delete on order_items for each row execute function order_items_guard();

-- 3. Money per seller: captured (prepaid: the subtotal at confirmation; COD: what was delivered),
-- refunded (never above captured), and the commission kept, always
-- round_half_even((captured − refunded) × bps / 10000), so partial refunds add up exactly.
create function haat_commission(net bigint, bps integer) returns bigint language sql immutable parallel safe
  return (net * bps) / 10000 + case
    when 2 * ((net * bps) % 10000) > 10000 then 1
    when 2 * ((net * bps) % 10000) = 10000 then ((net * bps) / 10000) % 2
    else 0 end;

alter table order_seller_splits
  add column captured bigint not null default 0,
  add column refunded bigint not null default 0,
  add column commission_kept bigint not null default 0,
  add constraint order_seller_splits_captured_within_subtotal check (captured between 0 and subtotal),
  add constraint order_seller_splits_refunded_within_captured check (refunded between 0 and captured);

create function order_seller_splits_guard() returns trigger language plpgsql as $$
declare
  o record;
begin
  select state, commission_bps into o from orders where id = coalesce(old.order_id, new.order_id);
  if tg_op = 'DELETE' or new.order_id is distinct from old.order_id or new.seller is distinct from old.seller
     or new.subtotal is distinct from old.subtotal or new.commission is distinct from old.commission or new.payout is distinct from old.payout then
    if o.state is distinct from 'pending' then
      raise exception using errcode = 'HA000', message = format('conflict: the money of a %s order is frozen', o.state);
    end if;
  end if;
  if tg_op = 'UPDATE' then
    if new.captured < old.captured or new.refunded < old.refunded then
      raise exception using errcode = 'HA000', message = 'conflict: captured and refunded amounts only grow';
    end if;
    if new.commission_kept <> haat_commission(new.captured - new.refunded, o.commission_bps) then
      raise exception using errcode = 'HA000', message = format('conflict: commission kept %s is not round_half_even((%s - %s) x %s / 10000)',
        new.commission_kept, new.captured, new.refunded, o.commission_bps);
    end if;
  end if;
  return coalesce(new, old);
end $$;
drop trigger order_seller_splits_frozen on order_seller_splits;
create trigger order_seller_splits_frozen before update or delete on order_seller_splits
  for each row execute function order_seller_splits_guard();

-- The ledger learns cash on delivery: a courier owes what it collected (cod_receivable:<courier>),
-- posted at delivery ('delivery' entries).
alter table postings drop constraint postings_account_check;
alter table postings add constraint postings_account_check check (
  account ~ '^(psp_clearing|platform_commission|seller_payable:[a-z0-9][a-z0-9-]{0,62}|cod_receivable:[a-z0-9][a-z0-9-]{0,62})$');
alter table journal_entries drop constraint journal_entries_kind_check;
alter table journal_entries add constraint journal_entries_kind_check check (kind in ('capture', 'cancellation', 'refund', 'delivery'));

-- 4. Shipments: a parcel of some of an order's units, with its own machine and history.
create table shipment_transition_rules (
  from_state text not null,
  to_state text not null,
  primary key (from_state, to_state)
);
insert into shipment_transition_rules (from_state, to_state) values
  ('dispatched', 'delivered'), ('dispatched', 'delivery_failed'), ('dispatched', 'rto_initiated'),
  ('delivery_failed', 'dispatched'), ('delivery_failed', 'rto_initiated'),
  ('rto_initiated', 'rto_received');

create table shipments (
  id uuid primary key default gen_random_uuid(),
  order_id uuid not null references orders (id),
  ref text not null constraint shipments_ref_key unique check (ref ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  tracking text check (length(tracking) between 1 and 200),
  courier text not null default 'default' check (courier ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  state text not null check (state in ('dispatched', 'delivered', 'delivery_failed', 'rto_initiated', 'rto_received')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index shipments_by_order on shipments (order_id);
create index shipments_by_tracking on shipments (tracking) where tracking is not null;

create table shipment_items (
  shipment_id uuid not null references shipments (id),
  sku text not null,
  qty bigint not null check (qty > 0),
  primary key (shipment_id, sku)
);

create table shipment_transitions (
  id bigint generated always as identity primary key,
  shipment_id uuid not null references shipments (id),
  from_state text,
  to_state text not null,
  at timestamptz not null default now(),
  actor text not null,
  reason text,
  command_scope text,
  command_key text
);
create index shipment_transitions_by_shipment on shipment_transitions (shipment_id, id);

-- 5. Returns: units a buyer sends back after delivery.
create table return_transition_rules (
  from_state text not null,
  to_state text not null,
  primary key (from_state, to_state)
);
insert into return_transition_rules (from_state, to_state) values ('requested', 'received'), ('requested', 'rejected');

create table returns (
  id uuid primary key default gen_random_uuid(),
  order_id uuid not null references orders (id),
  ref text not null constraint returns_ref_key unique check (ref ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  state text not null check (state in ('requested', 'received', 'rejected')),
  reason text not null check (length(reason) between 1 and 500),
  disposition text check (disposition in ('restock', 'write_off')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((state = 'received') = (disposition is not null))
);
create index returns_by_order on returns (order_id);

create table return_items (
  return_id uuid not null references returns (id),
  sku text not null,
  qty bigint not null check (qty > 0),
  primary key (return_id, sku)
);

create table return_transitions (
  id bigint generated always as identity primary key,
  return_id uuid not null references returns (id),
  from_state text,
  to_state text not null,
  at timestamptz not null default now(),
  actor text not null,
  reason text,
  command_scope text,
  command_key text
);
create index return_transitions_by_return on return_transitions (return_id, id);

-- A shipment or return starts in its first state and moves only along its rules; what it is
-- (order, ref, tracking, courier, disposition once set) does not change.
create function lifecycle_guard_state() returns trigger language plpgsql as $$
declare
  first_state text := case tg_table_name when 'shipments' then 'dispatched' else 'requested' end;
  allowed boolean;
begin
  if tg_op = 'INSERT' then
    if new.state <> first_state then
      raise exception using errcode = 'HA000', message = format('transition_not_allowed: a new %s cannot start %s', tg_table_name, new.state);
    end if;
    return new;
  end if;
  if new.id is distinct from old.id or new.order_id is distinct from old.order_id or new.ref is distinct from old.ref
     or new.created_at is distinct from old.created_at then
    raise exception using errcode = 'HA000', message = format('conflict: a %s row keeps its identity', tg_table_name);
  end if;
  if new.state is distinct from old.state then
    if tg_table_name = 'shipments' then
      select exists (select 1 from shipment_transition_rules where from_state = old.state and to_state = new.state) into allowed;
    else
      select exists (select 1 from return_transition_rules where from_state = old.state and to_state = new.state) into allowed;
    end if;
    if not allowed then
      raise exception using errcode = 'HA000', message = format('transition_not_allowed: %s %s -> %s', tg_table_name, old.state, new.state);
    end if;
  end if;
  return new;
end $$;
create trigger shipments_guard_state before insert or update on shipments for each row execute function lifecycle_guard_state();
create trigger returns_guard_state before insert or update on returns for each row execute function lifecycle_guard_state();
create function shipments_keep_identity() returns trigger language plpgsql as $$
begin
  if new.tracking is distinct from old.tracking or new.courier is distinct from old.courier then
    raise exception using errcode = 'HA000', message = 'conflict: a shipment keeps its tracking number and courier';
  end if;
  return new;
end $$;
create trigger shipments_keep_identity before update on shipments for each row execute function shipments_keep_identity();
create function returns_keep_disposition() returns trigger language plpgsql as $$
begin
  if old.disposition is not null and new.disposition is distinct from old.disposition then
    raise exception using errcode = 'HA000', message = 'conflict: a received return keeps its disposition';
  end if;
  return new;
end $$;
create trigger returns_keep_disposition before update on returns for each row execute function returns_keep_disposition();

-- 6. Refunds: money back to the buyer, by items or by amount ('refund'), or for units cancelled
-- after payment ('cancellation'); split per seller with the commission each reversed.
create table refunds (
  id uuid primary key default gen_random_uuid(),
  order_id uuid not null references orders (id),
  kind text not null check (kind in ('refund', 'cancellation')),
  amount bigint not null check (amount > 0),
  currency text not null references currencies (code),
  reason text not null check (length(reason) between 1 and 500),
  created_at timestamptz not null default now(),
  command_scope text,
  command_key text
);
create index refunds_by_order on refunds (order_id);

create table refund_items (
  refund_id uuid not null references refunds (id),
  sku text not null,
  qty bigint not null check (qty > 0),
  primary key (refund_id, sku)
);

create table refund_allocations (
  refund_id uuid not null references refunds (id),
  seller text not null,
  amount bigint not null check (amount > 0),
  commission_reversed bigint not null check (commission_reversed >= 0),
  primary key (refund_id, seller)
);

create trigger shipment_items_append_only before update or delete on shipment_items for each row execute function reject_change();
create trigger shipment_transitions_append_only before update or delete on shipment_transitions for each row execute function reject_change();
create trigger return_items_append_only before update or delete on return_items for each row execute function reject_change();
create trigger return_transitions_append_only before update or delete on return_transitions for each row execute function reject_change();
create trigger refunds_append_only before update or delete on refunds for each row execute function reject_change();
create trigger refund_items_append_only before update or delete on refund_items for each row execute function reject_change();
create trigger refund_allocations_append_only before update or delete on refund_allocations for each row execute function reject_change();
create trigger shipments_no_delete before delete on shipments for each row execute function reject_change();
create trigger returns_no_delete before delete on returns for each row execute function reject_change();
create trigger shipment_transitions_no_truncate before truncate on shipment_transitions for each statement execute function reject_change();
create trigger return_transitions_no_truncate before truncate on return_transitions for each statement execute function reject_change();
create trigger refunds_no_truncate before truncate on refunds for each statement execute function reject_change();

-- 7. What orders placed before this migration already lived, in the new terms: their units shipped,
-- delivered or cancelled, their money captured and refunded (one shipment per shipped order).
update order_items i set cancelled = i.qty
  from orders o where o.id = i.order_id and o.state = 'cancelled';
update order_items i set shipped = i.qty, delivered = case when o.state in ('delivered', 'refunded') then i.qty else 0 end
  from orders o where o.id = i.order_id and o.state in ('shipped', 'delivered', 'refunded');
update order_seller_splits s set captured = s.subtotal,
       refunded = case when exists (select 1 from journal_entries e where e.order_id = s.order_id and e.kind in ('cancellation', 'refund')) then s.subtotal else 0 end,
       commission_kept = case when exists (select 1 from journal_entries e where e.order_id = s.order_id and e.kind in ('cancellation', 'refund')) then 0 else s.commission end
  where exists (select 1 from journal_entries e where e.order_id = s.order_id and e.kind = 'capture');
with o as (
  select id, ref, tracking, case when state = 'shipped' then 'dispatched' else 'delivered' end as state
  from orders where state in ('shipped', 'delivered', 'refunded')
), s as (
  insert into shipments (order_id, ref, tracking, state)
  -- (A shipment ref holds 64 characters: a long order ref is cut and made unique by its order's id.)
  select id, case when length(ref) <= 62 then 'S-' || ref else 'S-' || left(ref, 49) || '-' || left(replace(id::text, '-', ''), 12) end,
         tracking, 'dispatched' from o
  returning id, order_id
), items as (
  insert into shipment_items (shipment_id, sku, qty)
  select s.id, i.sku, i.qty from s join order_items i on i.order_id = s.order_id
)
insert into shipment_transitions (shipment_id, from_state, to_state, actor, reason)
  select s.id, null, 'dispatched', 'haat', 'carried over: shipped before shipments were recorded' from s;
update shipments s set state = 'delivered' from orders o where o.id = s.order_id and o.state in ('delivered', 'refunded');
insert into shipment_transitions (shipment_id, from_state, to_state, actor, reason)
  select s.id, 'dispatched', 'delivered', 'haat', 'carried over: delivered before shipments were recorded'
  from shipments s where s.state = 'delivered';

-- 8. The outbox learns the lifecycle's events (docs/webhooks-out.md): shipment.<state>,
-- return.<state> and refund.issued, each written with its change by a trigger, like order events.
alter table outbound_events
  add column shipment_transition_id bigint,
  add column return_transition_id bigint,
  add column refund_id uuid,
  add constraint outbound_events_shipment_check check ((type like 'shipment.%') = (shipment_transition_id is not null)),
  add constraint outbound_events_return_check check ((type like 'return.%') = (return_transition_id is not null)),
  add constraint outbound_events_refund_check check ((type = 'refund.issued') = (refund_id is not null));
create unique index outbound_events_shipment_transition_key on outbound_events (shipment_transition_id) where shipment_transition_id is not null;
create unique index outbound_events_return_transition_key on outbound_events (return_transition_id) where return_transition_id is not null;
create unique index outbound_events_refund_key on outbound_events (refund_id) where refund_id is not null;

-- What never changes in an order, now with its payment method.
create function outbox_order(o orders) returns jsonb language sql stable parallel safe
  return jsonb_build_object(
    'id', o.id, 'ref', o.ref, 'buyer', o.buyer, 'currency', o.currency,
    'total_amount', o.total_amount::text, 'reject_reason', o.reject_reason, 'created_at', o.created_at,
    'commission_bps', o.commission_bps, 'snapshot_hash', o.snapshot_hash, 'payment_method', o.payment_method,
    'requested_items', case when o.state = 'rejected' then (
      select json_agg(json_build_object('sku', r.sku, 'qty', r.qty::text) order by r.line)::text
      from order_requested_items r where r.order_id = o.id) end,
    'items', coalesce((
      select jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty::text, 'unit_price', i.unit_price::text, 'total', i.total::text) order by i.sku)
      from order_items i where i.order_id = o.id), '[]'::jsonb));

-- A shipment and a return as the order JSON shows them.
create function lifecycle_shipment(s shipments) returns jsonb language sql stable parallel safe
  return jsonb_build_object('id', s.id, 'ref', s.ref, 'tracking', s.tracking, 'courier', s.courier, 'state', s.state,
    'created_at', s.created_at,
    'items', coalesce((select jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty::text) order by i.sku)
                       from shipment_items i where i.shipment_id = s.id), '[]'::jsonb));
create function lifecycle_return(r returns) returns jsonb language sql stable parallel safe
  return jsonb_build_object('id', r.id, 'ref', r.ref, 'state', r.state, 'reason', r.reason, 'disposition', r.disposition,
    'created_at', r.created_at,
    'items', coalesce((select jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty::text) order by i.sku)
                       from return_items i where i.return_id = r.id), '[]'::jsonb));

-- What changes in an order, as it is now: past pending also its lines' counts, money refunded,
-- shipments and returns (a pending, expired or rejected order has none: nothing more is read).
create function outbox_order_state(o orders) returns jsonb language sql stable parallel safe
  return jsonb_build_object('state', o.state, 'expires_at', o.expires_at, 'payment_ref', o.payment_ref, 'tracking', o.tracking)
    || case when o.state in ('pending', 'expired', 'rejected') then '{}'::jsonb else jsonb_build_object(
      'lines', coalesce((select jsonb_agg(jsonb_build_object('sku', i.sku, 'cancelled', i.cancelled::text, 'shipped', i.shipped::text,
                              'delivered', i.delivered::text, 'rto', i.rto::text, 'returned', i.returned::text) order by i.sku)
                         from order_items i where i.order_id = o.id), '[]'::jsonb),
      'refunded', (select coalesce(sum(s.refunded), 0)::text from order_seller_splits s where s.order_id = o.id),
      'shipments', coalesce((select jsonb_agg(lifecycle_shipment(s) order by s.created_at, s.id) from shipments s where s.order_id = o.id), '[]'::jsonb),
      'returns', coalesce((select jsonb_agg(lifecycle_return(r) order by r.created_at, r.id) from returns r where r.order_id = o.id), '[]'::jsonb)) end;

-- The next sequence number of an order's events (every writer of an order holds its row lock).
create function outbox_next_sequence(order_id uuid) returns integer language sql stable parallel safe
  return coalesce((select max(e.sequence) from outbound_events e where e.order_id = outbox_next_sequence.order_id), 0) + 1;

create function shipment_transitions_outbox() returns trigger language plpgsql set jit = off as $$
begin
  insert into outbound_events (id, type, order_id, sequence, shipment_transition_id, data)
  select outbox_id('evt_'), 'shipment.' || t.to_state, s.order_id,
         outbox_next_sequence(s.order_id) - 1 + row_number() over (partition by s.order_id order by t.id),
         t.id,
         jsonb_build_object('shipment', lifecycle_shipment(s) || jsonb_build_object('state', t.to_state),
                            'order', jsonb_build_object('id', o.id, 'ref', o.ref, 'state', o.state),
                            'transition', jsonb_build_object('from', t.from_state, 'to', t.to_state, 'at', t.at, 'actor', t.actor, 'reason', t.reason))
  from new_transitions t join shipments s on s.id = t.shipment_id join orders o on o.id = s.order_id;
  return null;
end $$;
create trigger shipment_transitions_outbox after insert on shipment_transitions
  referencing new table as new_transitions for each statement execute function shipment_transitions_outbox();

create function return_transitions_outbox() returns trigger language plpgsql set jit = off as $$
begin
  insert into outbound_events (id, type, order_id, sequence, return_transition_id, data)
  select outbox_id('evt_'), 'return.' || t.to_state, r.order_id,
         outbox_next_sequence(r.order_id) - 1 + row_number() over (partition by r.order_id order by t.id),
         t.id,
         jsonb_build_object('return', lifecycle_return(r) || jsonb_build_object('state', t.to_state),
                            'order', jsonb_build_object('id', o.id, 'ref', o.ref, 'state', o.state),
                            'transition', jsonb_build_object('from', t.from_state, 'to', t.to_state, 'at', t.at, 'actor', t.actor, 'reason', t.reason))
  from new_transitions t join returns r on r.id = t.return_id join orders o on o.id = r.order_id;
  return null;
end $$;
create trigger return_transitions_outbox after insert on return_transitions
  referencing new table as new_transitions for each statement execute function return_transitions_outbox();

-- refund.issued when a refund's allocations are written (its last rows: the refund is whole then).
create function refund_allocations_outbox() returns trigger language plpgsql set jit = off as $$
begin
  insert into outbound_events (id, type, order_id, sequence, refund_id, data)
  select outbox_id('evt_'), 'refund.issued', f.order_id,
         outbox_next_sequence(f.order_id) - 1 + row_number() over (partition by f.order_id order by f.created_at, f.id),
         f.id,
         jsonb_build_object('refund', jsonb_build_object('id', f.id, 'kind', f.kind, 'amount', f.amount::text, 'currency', f.currency,
                              'reason', f.reason, 'created_at', f.created_at,
                              'items', coalesce((select jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty::text) order by i.sku)
                                                 from refund_items i where i.refund_id = f.id), '[]'::jsonb),
                              'sellers', (select jsonb_agg(jsonb_build_object('seller', a.seller, 'amount', a.amount::text,
                                                 'commission_reversed', a.commission_reversed::text) order by a.seller)
                                          from refund_allocations a where a.refund_id = f.id)),
                            'order', jsonb_build_object('id', o.id, 'ref', o.ref, 'state', o.state,
                              'refunded', (select coalesce(sum(s.refunded), 0)::text from order_seller_splits s where s.order_id = o.id)))
  from refunds f join orders o on o.id = f.order_id
  where f.id in (select distinct refund_id from new_allocations);
  return null;
end $$;
create trigger refund_allocations_outbox after insert on refund_allocations
  referencing new table as new_allocations for each statement execute function refund_allocations_outbox();
