--! Previous: sha1:4392bc7a9603dc2aa2849e59125d984fa3116eed
--! Hash: sha1:807d0976bd5849a290ac8a0fdabae0a311e0301c

-- The one write path and inventory: idempotency keys, settings, the catalog, inventory with its
-- append-only movements, and reservations.

-- Runtime settings (typed in src/domain/settings.ts); the CLI for them comes with operator controls.
create table settings (
  key text primary key check (key ~ '^[a-z][a-z0-9_]{0,62}$'),
  value jsonb not null,
  updated_at timestamptz not null default now()
);
insert into settings (key, value) values
  ('reservation_ttl_seconds', '900'),
  ('commission_bps', '1000'),
  ('idempotency_retention_hours', '720');

-- One row per command ever submitted. The outcome is written in the same transaction as the
-- command's effect, so a crash leaves either both or neither.
create table idempotency_keys (
  scope text not null check (scope ~ '^[a-z][a-z0-9_:.-]{0,62}$'),
  key text not null constraint idempotency_keys_key_printable check (key ~ '^[ -~]{1,255}$'),
  fingerprint text not null check (fingerprint ~ '^[0-9a-f]{64}$'),
  command_type text not null,
  payload jsonb not null,
  actor text not null,
  state text not null default 'pending' check (state in ('pending', 'done')),
  outcome jsonb,
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  primary key (scope, key),
  constraint idempotency_keys_outcome_when_done check ((state = 'done') = (outcome is not null) and (state = 'done') = (completed_at is not null))
);
create index idempotency_keys_completed_at on idempotency_keys (completed_at) where state = 'done';

-- A finished outcome is history: it never changes and never goes back to pending.
create function idempotency_keys_frozen() returns trigger language plpgsql as $$
begin
  if old.state = 'done' then
    raise exception using errcode = 'HA000', message = 'conflict: a finished command''s outcome cannot change';
  end if;
  return new;
end $$;
create trigger idempotency_keys_frozen before update on idempotency_keys
  for each row execute function idempotency_keys_frozen();

create table currencies (
  code text primary key check (code ~ '^[A-Z]{3}$'),
  exponent smallint not null check (exponent between 0 and 4)
);
insert into currencies (code, exponent) values
  ('INR', 2), ('BDT', 2), ('BTN', 2), ('NPR', 2), ('MMK', 2), ('LKR', 2), ('CNY', 2), ('THB', 2),
  ('SGD', 2), ('AED', 2), ('USD', 2), ('EUR', 2), ('GBP', 2), ('AUD', 2), ('CAD', 2), ('CHF', 2),
  ('JPY', 0), ('KRW', 0), ('KWD', 3), ('BHD', 3), ('OMR', 3);

create table sellers (
  handle text primary key constraint sellers_handle_canonical check (handle ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text not null check (length(btrim(name)) between 1 and 200),
  created_at timestamptz not null default now()
);

-- SKU codes are canonical: upper-case ASCII letters, digits, '-' and '_', starting with a letter
-- or digit, at most 64 characters. Nothing else is stored, so two codes never differ by case.
create table skus (
  code text primary key constraint skus_code_canonical check (code ~ '^[A-Z0-9][A-Z0-9_-]{0,63}$'),
  seller text not null references sellers (handle),
  title text not null default '' check (length(title) <= 200),
  price_amount bigint not null check (price_amount between 0 and 1000000000000),
  currency text not null references currencies (code),
  created_at timestamptz not null default now()
);
create index skus_seller on skus (seller);

create table inventory (
  sku text primary key references skus (code),
  on_hand bigint not null default 0,
  reserved bigint not null default 0,
  updated_at timestamptz not null default now(),
  constraint inventory_reserved_within_on_hand check (0 <= reserved and reserved <= on_hand)
);

-- Reservations hold stock for an order item. `holder` names the order (a foreign key to orders
-- arrives with the orders migration).
create table reservations (
  id bigint generated always as identity primary key,
  holder text not null check (length(holder) between 1 and 255),
  sku text not null references skus (code),
  qty bigint not null check (qty > 0),
  state text not null default 'active' check (state in ('active', 'released', 'finalized', 'expired')),
  created_at timestamptz not null default now(),
  closed_at timestamptz,
  constraint reservations_closed_when_not_active check ((state = 'active') = (closed_at is null))
);
create index reservations_active_by_sku on reservations (sku) where state = 'active';
create index reservations_by_holder on reservations (holder);

-- A reservation closes once: active -> released | finalized | expired, never back.
create function reservations_close_once() returns trigger language plpgsql as $$
begin
  if old.state <> 'active' then
    raise exception using errcode = 'HA000', message = format('conflict: reservation %s is already %s', old.id, old.state);
  end if;
  if new.qty <> old.qty or new.sku <> old.sku or new.holder <> old.holder then
    raise exception using errcode = 'HA000', message = 'conflict: a reservation''s sku, quantity and holder never change';
  end if;
  return new;
end $$;
create trigger reservations_close_once before update on reservations
  for each row execute function reservations_close_once();

-- Every change to on_hand or reserved, with the command that caused it. Append-only.
create table inventory_movements (
  id bigint generated always as identity primary key,
  sku text not null references skus (code),
  kind text not null check (kind in ('receive', 'adjust', 'reserve', 'release', 'finalize', 'expire', 'restock')),
  on_hand_delta bigint not null,
  reserved_delta bigint not null,
  reason text,
  reservation_id bigint references reservations (id),
  command_scope text,
  command_key text,
  at timestamptz not null default now(),
  check (on_hand_delta <> 0 or reserved_delta <> 0)
);
comment on column inventory_movements.command_key is 'The idempotency key of the command that caused it; kept as text after the key is purged.';
create index inventory_movements_by_sku on inventory_movements (sku);

create function reject_change() returns trigger language plpgsql as $$
begin
  raise exception using errcode = 'HA000', message = format('conflict: %s is append-only', tg_table_name);
end $$;
create trigger inventory_movements_append_only before update or delete on inventory_movements
  for each row execute function reject_change();
create trigger inventory_movements_no_truncate before truncate on inventory_movements
  for each statement execute function reject_change();
