--! Previous: sha1:7a531fee676d1dc301c4f368a3604a1185ec98a9
--! Hash: sha1:228d7360ef3cd47fd043d9263d459c71d72bece1

-- Every accepted event ends in an outcome an operator can see, kept as long as the event itself.
--
-- 1. An order.placed that cannot become a pending order is still an order: `rejected`, with
--    reject_reason insufficient_stock (priced lines in order_items, as before) or unknown_sku,
--    currency_mismatch, invalid_order (nothing could be priced: the lines as asked are kept in
--    order_requested_items, the total is 0).
-- 2. webhook_event_outcomes: an event's outcome, written in the transaction of its effect (with the
--    idempotency key's), append-only. Idempotency keys are purged after their retention; the
--    event's outcome is not.
-- Existing rows are carried over: placements that earlier left no order become rejected orders,
-- and finished events get their outcome row.

create table order_requested_items (
  order_id uuid not null references orders (id),
  line integer not null check (line between 1 and 100),
  sku text not null check (length(sku) between 1 and 200),
  qty bigint not null check (qty > 0),
  primary key (order_id, line)
);
create trigger order_requested_items_append_only before update or delete on order_requested_items
  for each row execute function reject_change();
create trigger order_requested_items_no_truncate before truncate on order_requested_items
  for each statement execute function reject_change();

alter table orders add constraint orders_reject_reason_known
  check (reject_reason in ('insufficient_stock', 'unknown_sku', 'currency_mismatch', 'invalid_order'));

create table webhook_event_outcomes (
  source text not null,
  webhook_id text not null,
  code text not null check (code ~ '^[a-z][a-z0-9_]{0,62}$'),
  order_ref text,
  attempts integer not null check (attempts >= 1),
  outcome jsonb not null check (outcome ? 'ok'),
  recorded_at timestamptz not null default now(),
  primary key (source, webhook_id),
  foreign key (source, webhook_id) references webhook_events (source, webhook_id)
);
create trigger webhook_event_outcomes_append_only before update or delete on webhook_event_outcomes
  for each row execute function reject_change();
create trigger webhook_event_outcomes_no_truncate before truncate on webhook_event_outcomes
  for each statement execute function reject_change();
create index webhook_event_outcomes_code on webhook_event_outcomes (code, recorded_at desc);
create index webhook_events_received on webhook_events (received_at desc);
create index webhook_events_type_received on webhook_events (event_type, received_at desc);

-- The ref a placement gets when it names none (src/commands/order-handlers.ts refFor).
create function placement_ref(scope text, key text) returns text language sql immutable parallel safe
  return 'O-' || upper(left(encode(sha256(convert_to(scope || ':' || key, 'UTF8')), 'hex'), 12));

-- Carry-over 1: finished placements refused for an unknown SKU, a currency or an invalid total
-- that left no order. One placement per ref (the earliest) makes the order, its lines and its
-- transition; a later one for the same ref is what a taken ref is: no second order.
create temp table lost_placements on commit drop as
  select distinct on (ref) *
  from (
    select k.scope, k.key, k.actor, k.payload, k.completed_at,
           coalesce(k.payload ->> 'ref', placement_ref(k.scope, k.key)) as ref,
           case k.outcome -> 'error' ->> 'code'
             when 'not_found' then 'unknown_sku'
             when 'currency_mismatch' then 'currency_mismatch'
             else 'invalid_order' end as reject_reason,
           coalesce(
             (select c.code from currencies c where c.code = k.payload ->> 'currency'),
             (select s.currency from skus s where s.code = any (array(select jsonb_array_elements(k.payload -> 'items') ->> 'sku')) order by s.code limit 1),
             'INR') as currency
    from idempotency_keys k
    where k.command_type = 'order.place' and k.state = 'done'
      and k.outcome -> 'error' ->> 'code' in ('not_found', 'currency_mismatch', 'invalid_input')
  ) p
  where not exists (select 1 from orders o where o.ref = p.ref)
  order by ref, completed_at, scope, key;

insert into orders (ref, buyer, currency, state, total_amount, reject_reason, commission_bps, created_at, updated_at)
  select ref, left(coalesce(nullif(payload ->> 'buyer', ''), 'unknown'), 200), currency, 'rejected', 0, reject_reason, 0, completed_at, completed_at
  from lost_placements;
insert into order_requested_items (order_id, line, sku, qty)
  select o.id, i.line, left(i.item ->> 'sku', 200), (i.item ->> 'qty')::bigint
  from lost_placements l join orders o on o.ref = l.ref
  cross join lateral jsonb_array_elements(l.payload -> 'items') with ordinality as i(item, line)
  where i.line <= 100 and length(i.item ->> 'sku') > 0 and (i.item ->> 'qty') ~ '^[1-9][0-9]{0,17}$';
insert into order_transitions (order_id, from_state, to_state, actor, reason, command_scope, command_key, at)
  select o.id, null, 'rejected', l.actor, l.reject_reason || ' (recorded by migration 000009)', l.scope, l.key, l.completed_at
  from lost_placements l join orders o on o.ref = l.ref;

-- Carry-over 2: the outcome of every finished event. An event whose idempotency key was already
-- purged (past its retention) finished long ago, its outcome unknown now:
-- it is recorded as `unknown`, so that it is not reported as lost forever.
insert into webhook_event_outcomes (source, webhook_id, code, order_ref, attempts, outcome, recorded_at)
  select e.source, e.webhook_id,
         case when (k.outcome ->> 'ok')::boolean then 'applied' else k.outcome -> 'error' ->> 'code' end,
         coalesce(k.payload ->> 'ref', k.payload ->> 'order'), 1, k.outcome, k.completed_at
  from webhook_events e
  join idempotency_keys k on k.scope = 'webhook:' || e.source and k.key = e.webhook_id
  where k.state = 'done';
insert into webhook_event_outcomes (source, webhook_id, code, order_ref, attempts, outcome, recorded_at)
  select e.source, e.webhook_id, 'unknown', null, 1,
         jsonb_build_object('ok', false, 'error', jsonb_build_object(
           'code', 'unknown',
           'message', 'finished before haat kept event outcomes; its idempotency key was purged after its retention',
           'details', '{}'::jsonb)),
         e.received_at
  from webhook_events e
  -- (A key is purged only once done, so such an event has no job left either.)
  where not exists (select 1 from idempotency_keys k where k.scope = 'webhook:' || e.source and k.key = e.webhook_id)
    and e.received_at < now() - interval '1 hour';
