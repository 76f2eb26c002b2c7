--! Previous: sha1:3e205185a64e20bfe2dbf4dd5b2a344e32133c06
--! Hash: sha1:dd292dacc7767121d17317de188c968934e88b34

-- Operator controls: feature flags, maintenance mode (one row) and an append-only audit log.
-- Every change to settings, flags or maintenance, and every maintenance bypass, writes an audit
-- row in the same transaction as the change.

create table audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor text not null check (length(actor) between 1 and 200),
  action text not null,
  target text not null,
  old_value jsonb,
  new_value jsonb,
  reason text not null check (length(btrim(reason)) between 1 and 1000)
);
create index audit_log_by_actor on audit_log (actor, id desc);
create index audit_log_by_target on audit_log (target, id desc);
create trigger audit_log_append_only before update or delete on audit_log for each row execute function reject_change();
create trigger audit_log_no_truncate before truncate on audit_log for each statement execute function reject_change();

create table feature_flags (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  enabled boolean not null,
  description text not null,
  updated_at timestamptz not null default now()
);
insert into feature_flags (name, enabled, description) values
  ('storefront_order_placed', true, 'accept order.placed webhooks from the storefront (off: 503, the sender retries later)');

create table maintenance (
  singleton boolean primary key default true check (singleton),
  enabled boolean not null default false,
  message text,
  updated_at timestamptz not null default now()
);
insert into maintenance default values;

-- A command submitted with --bypass-maintenance runs while maintenance is on (and was audited).
alter table idempotency_keys add column bypass_maintenance boolean not null default false;
