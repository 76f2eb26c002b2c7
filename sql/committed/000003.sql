--! Previous: sha1:807d0976bd5849a290ac8a0fdabae0a311e0301c
--! Hash: sha1:a677ff828ca9bfa0d4b1e44f49b52257b753a297

-- Orders: a strict state machine. The transition table lives in src/domain/orders/states.ts and,
-- as data, in order_transition_rules (a test checks they agree); a trigger refuses any other move.

create table order_transition_rules (
  from_state text not null,
  to_state text not null,
  primary key (from_state, to_state)
);
insert into order_transition_rules (from_state, to_state) values
  ('pending', 'confirmed'), ('pending', 'cancelled'), ('pending', 'expired'),
  ('confirmed', 'shipped'), ('confirmed', 'cancelled'),
  ('shipped', 'delivered'),
  ('delivered', 'refunded');

create table orders (
  id uuid primary key default gen_random_uuid(),
  ref text not null constraint orders_ref_key unique check (ref ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  buyer text not null check (length(buyer) between 1 and 200),
  currency text not null references currencies (code),
  state text not null check (state in ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled', 'expired', 'rejected', 'refunded')),
  total_amount bigint not null check (total_amount >= 0),
  reject_reason text,
  expires_at timestamptz,
  payment_ref text constraint orders_payment_ref_key unique,
  tracking text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (state <> 'pending' or expires_at is not null),
  check ((state = 'rejected') = (reject_reason is not null))
);
create index orders_pending_expiry on orders (expires_at) where state = 'pending';
create index orders_state_created on orders (state, created_at desc);

create table order_items (
  order_id uuid not null references orders (id),
  sku text not null references skus (code),
  qty bigint not null check (qty > 0),
  unit_price bigint not null check (unit_price >= 0),
  total bigint not null,
  primary key (order_id, sku),
  check (total = unit_price * qty)
);

create table order_transitions (
  id bigint generated always as identity primary key,
  order_id uuid not null references orders (id),
  from_state text,
  to_state text not null,
  at timestamptz not null default now(),
  actor text not null,
  reason text,
  command_scope text,
  command_key text
);
create index order_transitions_by_order on order_transitions (order_id, id);

create trigger order_transitions_append_only before update or delete on order_transitions
  for each row execute function reject_change();
create trigger order_transitions_no_truncate before truncate on order_transitions
  for each statement execute function reject_change();

-- New orders start pending or rejected; a state changes only along order_transition_rules.
create function orders_guard_state() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    if new.state not in ('pending', 'rejected') then
      raise exception using errcode = 'HA000', message = format('transition_not_allowed: a new order cannot start %s', new.state);
    end if;
  elsif new.state is distinct from old.state then
    if not exists (select 1 from order_transition_rules where from_state = old.state and to_state = new.state) then
      raise exception using errcode = 'HA000', message = format('transition_not_allowed: %s -> %s', old.state, new.state);
    end if;
  end if;
  return new;
end $$;
create trigger orders_guard_state before insert or update on orders
  for each row execute function orders_guard_state();

-- Reservations hold stock for an order: holder is the order's id.
