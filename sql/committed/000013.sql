--! Previous: sha1:b91a69bb05ee33c94d9194ba42abd5733cd3e696
--! Hash: sha1:14b9c03dc54ab7a12398646def259c88918ff718

-- Outbound webhooks (docs/webhooks-out.md): the outbox, the endpoints events go to, one delivery
-- per (event, endpoint) and every attempt of it.
--
-- The outbox is written by the database itself, in the statement that records the change: a
-- statement trigger on order_transitions writes one `order.<state>` event per transition row, one
-- on payments writes `payment.unapplied` for each payment kept unapplied. An order event names its
-- transition (unique, foreign key), so there is no event without its change and no second event
-- for one change; the triggers leave no change without its event. Each new event fans out, in the
-- same statement, to a delivery per endpoint whose patterns match it (pending, with its
-- graphile-worker job, or held while the endpoint is disabled).

create table webhook_endpoints (
  id text primary key check (id ~ '^ep_[0-9a-f]{24}$'),
  url text not null check (url ~ '^https?://' and length(url) <= 2048 and is_safe_text(url)),
  -- Exact types or `<prefix>.*` or `*`: their shape checked here, each against the event catalog by
  -- the CLI (src/domain/events-out.ts).
  events text[] not null check (cardinality(events) between 1 and 50 and array_position(events, null) is null
    and array_to_string(events, ' ') ~ '^(\*|[a-z][a-z_]*\.(\*|[a-z][a-z_]*))( (\*|[a-z][a-z_]*\.(\*|[a-z][a-z_]*)))*$'),
  description text check (length(description) <= 500 and is_safe_text(description)),
  allow_private boolean not null default false,
  state text not null default 'enabled' check (state in ('enabled', 'disabled', 'removed')),
  state_reason text check (is_safe_text(state_reason)),
  -- The first failed attempt since the last delivered one; null while the endpoint works.
  failing_since timestamptz,
  -- Clock time (not transaction start), taken after the outbox lock: see endpoints.ts.
  created_at timestamptz not null default clock_timestamp(),
  removed_at timestamptz,
  check ((state = 'removed') = (removed_at is not null))
);

-- A removed endpoint stays removed (its deliveries were failed with it); its other columns may
-- still change (an attempt in flight when it was removed records its failure time).
create function webhook_endpoints_removed_final() returns trigger language plpgsql as $$
begin
  if old.state = 'removed' and new.state <> 'removed' then
    raise exception using errcode = 'HA000', message = format('conflict: endpoint %s was removed', old.id);
  end if;
  return new;
end $$;
create trigger webhook_endpoints_removed_final before update on webhook_endpoints
  for each row execute function webhook_endpoints_removed_final();

-- Secrets: the current one (expires_at null) and rotated ones, still signing until they expire.
create table webhook_endpoint_secrets (
  endpoint_id text not null references webhook_endpoints (id),
  secret text not null check (secret ~ '^whsec_[A-Za-z0-9+/]{32,88}={0,2}$'),
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  primary key (endpoint_id, secret)
);
create unique index webhook_endpoint_secrets_current on webhook_endpoint_secrets (endpoint_id) where expires_at is null;

create table outbound_events (
  id text primary key check (id ~ '^evt_[0-9a-f]{32}$'),
  type text not null check (type ~ '^[a-z][a-z_]*\.[a-z][a-z_]*$'),
  -- The order it is about (no foreign key: the transition's or payment's own keys imply it).
  order_id uuid,
  -- 1, 2, 3… per order: a receiver ignores an event older than one it has.
  sequence integer check (sequence > 0),
  -- The change it reports (no foreign keys: both tables are append-only, and only the triggers
  -- below write events, with ids taken from the rows just written; see outbound_events_fan_out).
  transition_id bigint,
  payment_id bigint,
  -- What changes in an order over its life, as it was at this event (expires_at, payment_ref,
  -- tracking), and the payment: the body is rendered from it, the order's lines and the transition,
  -- which do not change (src/outbox/render.ts).
  data jsonb not null,
  created_at timestamptz not null default clock_timestamp(),
  check ((order_id is null) = (sequence is null)),
  check ((type like 'order.%') = (transition_id is not null)),
  check ((type = 'payment.unapplied') = (payment_id is not null)),
  constraint outbound_events_order_sequence_key unique (order_id, sequence)
);
-- One event per change (partial: an order event has no payment, and the reverse).
create unique index outbound_events_transition_key on outbound_events (transition_id) where transition_id is not null;
create unique index outbound_events_payment_key on outbound_events (payment_id) where payment_id is not null;
-- Rows arrive in time order: a BRIN index serves `created_at >= …` (recover) at almost no write cost.
create index outbound_events_created on outbound_events using brin (created_at);
create trigger outbound_events_append_only before update or delete on outbound_events for each row execute function reject_change();
create trigger outbound_events_no_truncate before truncate on outbound_events for each statement execute function reject_change();

-- Where the outbox starts: changes written before this migration have no events (reconcile checks
-- every change after it has its event).
create table outbox_start (
  one boolean primary key default true check (one),
  transition_id bigint not null,
  payment_id bigint not null
);
insert into outbox_start (transition_id, payment_id)
  select (select coalesce(max(id), 0) from order_transitions), (select coalesce(max(id), 0) from payments);
create trigger outbox_start_append_only before update or delete on outbox_start for each row execute function reject_change();

create table webhook_deliveries (
  id text primary key check (id ~ '^dlv_[0-9a-f]{32}$'),
  event_id text not null references outbound_events (id),
  endpoint_id text not null references webhook_endpoints (id),
  state text not null check (state in ('pending', 'held', 'delivered', 'failed')),
  attempts integer not null default 0 check (attempts >= 0),
  -- Attempts made before the current round (a retry, a recover or an enable starts a new round):
  -- the next delay is the schedule's step (attempts - round_start).
  round_start integer not null default 0 check (round_start between 0 and attempts),
  next_attempt_at timestamptz,
  last_status integer,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  delivered_at timestamptz,
  constraint webhook_deliveries_event_endpoint_key unique (event_id, endpoint_id),
  check ((state = 'pending') = (next_attempt_at is not null)),
  check (state <> 'delivered' or delivered_at is not null)
);
create index webhook_deliveries_by_endpoint on webhook_deliveries (endpoint_id, state, created_at desc);
create index webhook_deliveries_by_state on webhook_deliveries (state, created_at desc);

create table webhook_delivery_attempts (
  id bigint generated always as identity primary key,
  delivery_id text not null references webhook_deliveries (id),
  -- 1, 2, 3… per delivery: the attempt a job made is recorded once, even when the connection is
  -- lost after its commit and the recording is run again.
  number integer not null check (number > 0),
  at timestamptz not null,
  status integer,
  duration_ms integer not null check (duration_ms >= 0),
  error text,
  -- The start of the reply, for the operator (at most 512 characters).
  excerpt text check (length(excerpt) <= 512),
  -- The address connected to (the one the URL rules checked).
  address text
);
create unique index webhook_delivery_attempts_number on webhook_delivery_attempts (delivery_id, number);
create index webhook_delivery_attempts_at on webhook_delivery_attempts (at);
create trigger webhook_delivery_attempts_append_only before update or delete on webhook_delivery_attempts
  for each row execute function reject_change();

-- A new id: 12 hex digits of clock milliseconds, then 20 random ones. Time-ordered, so the
-- primary key grows at its right edge (a random id costs a random index page per row).
create function outbox_id(prefix text) returns text language sql volatile parallel safe
  return prefix || lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0')
    || left(replace(gen_random_uuid()::text, '-', ''), 20);

-- Whether an event type matches an endpoint's patterns: `*`, an exact type, or `<prefix>.*`.
create function webhook_patterns_match(patterns text[], type text) returns boolean
  language sql immutable parallel safe
  return exists (
    select 1 from unnest(patterns) p
    where p = '*' or p = type or (right(p, 2) = '.*' and left(type, length(p) - 1) = left(p, length(p) - 1)));

-- An order's parts that do not change once it is placed (the lines, the total, the buyer…), read
-- when an event's body is rendered; amounts as text (exact in JSON).
create function outbox_order(o orders) returns jsonb language sql stable parallel safe
  return jsonb_build_object(
    'id', o.id, 'ref', o.ref, 'buyer', o.buyer, 'currency', o.currency,
    'total_amount', o.total_amount::text, 'reject_reason', o.reject_reason, 'created_at', o.created_at,
    'commission_bps', o.commission_bps, 'snapshot_hash', o.snapshot_hash,
    'requested_items', case when o.state = 'rejected' then (
      select json_agg(json_build_object('sku', r.sku, 'qty', r.qty::text) order by r.line)::text
      from order_requested_items r where r.order_id = o.id) end,
    'items', coalesce((
      select jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty::text, 'unit_price', i.unit_price::text, 'total', i.total::text) order by i.sku)
      from order_items i where i.order_id = o.id), '[]'::jsonb));

-- What changes in an order over its life, as it is now.
create function outbox_order_state(o orders) returns jsonb language sql stable parallel safe
  return jsonb_build_object('state', o.state, 'expires_at', o.expires_at, 'payment_ref', o.payment_ref, 'tracking', o.tracking);

-- A transition as an event's body shows it.
create function outbox_transition(t order_transitions) returns jsonb language sql stable parallel safe
  return jsonb_build_object('from', t.from_state, 'to', t.to_state, 'at', t.at, 'actor', t.actor, 'reason', t.reason);

-- One event per transition row, set-based: the order as it is at the end of the statement. (These
-- trigger functions run without JIT: the row estimates of a transition table make the planner
-- compile a statement of a few rows for hundreds of milliseconds.)
create function order_transitions_outbox() returns trigger language plpgsql set jit = off as $$
begin
  insert into outbound_events (id, type, order_id, sequence, transition_id, data)
  select outbox_id('evt_'), 'order.' || t.to_state, t.order_id,
         coalesce((select max(e.sequence) from outbound_events e where e.order_id = t.order_id), 0)
           + row_number() over (partition by t.order_id order by t.id),
         t.id,
         -- (Its state is the transition's: a statement moving one order twice keeps each state.)
         jsonb_build_object('order', outbox_order_state(o) || jsonb_build_object('state', t.to_state))
  from new_transitions t join orders o on o.id = t.order_id;
  return null;
end $$;
create trigger order_transitions_outbox after insert on order_transitions
  referencing new table as new_transitions for each statement execute function order_transitions_outbox();

-- payment.unapplied for each payment kept unapplied; in its order's sequence when it names one.
create function payments_outbox() returns trigger language plpgsql set jit = off as $$
begin
  insert into outbound_events (id, type, order_id, sequence, payment_id, data)
  select outbox_id('evt_'), 'payment.unapplied', p.order_id,
         case when p.order_id is not null then
           coalesce((select max(e.sequence) from outbound_events e where e.order_id = p.order_id), 0)
             + row_number() over (partition by p.order_id order by p.id) end,
         p.id,
         jsonb_build_object(
           'payment', jsonb_build_object('payment_ref', p.payment_ref, 'order_ref', p.order_ref, 'amount', p.amount::text,
                                         'currency', p.currency, 'reason', p.reason, 'received_at', p.received_at),
           'order', (select outbox_order_state(o) from orders o where o.id = p.order_id))
  from new_payments p
  where p.state = 'unapplied';
  return null;
end $$;
create trigger payments_outbox after insert on payments
  referencing new table as new_payments for each statement execute function payments_outbox();

-- Each new event (and only those the triggers above write): a delivery per endpoint subscribed to it (pending with its job, or held while the
-- endpoint is disabled); removed endpoints get none. A delivery's job is keyed by the attempt it is
-- for (`dlv:<id>:<attempts made>`): a job left over from an earlier attempt finds it stale.
create function outbound_events_fan_out() returns trigger language plpgsql set jit = off as $$
declare
  pending text[];
begin
  -- Events are written only by the triggers on order_transitions and payments, in the statement of
  -- the change they report: one inserted by hand (at trigger depth 1) has no change, and is refused.
  if pg_trigger_depth() < 2 then
    raise exception using errcode = 'HA000', message = 'conflict: outbound events are written by the database with the change they report, never directly';
  end if;
  -- Most installations write most events with no endpoint to send them to: nothing to look at.
  if not exists (select 1 from webhook_endpoints where state <> 'removed') then
    return null;
  end if;
  with d as (
    insert into webhook_deliveries (id, event_id, endpoint_id, state, next_attempt_at)
    select outbox_id('dlv_'), e.id, p.id,
           case when p.state = 'enabled' then 'pending' else 'held' end,
           case when p.state = 'enabled' then now() end
    from new_events e join webhook_endpoints p on p.state <> 'removed' and webhook_patterns_match(p.events, e.type)
    returning id, state
  )
  select array_agg(id) filter (where state = 'pending') into pending from d;
  if pending is not null then
    perform graphile_worker.add_jobs(array(
      select row('deliver_webhook', json_build_object('delivery', id, 'attempt', 0), null, null, null, 'dlv:' || id || ':0', null, null)::graphile_worker.job_spec
      from unnest(pending) as id));
  end if;
  return null;
end $$;
create trigger outbound_events_fan_out after insert on outbound_events
  referencing new table as new_events for each statement execute function outbound_events_fan_out();
