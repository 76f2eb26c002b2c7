--! Previous: sha1:94e146f33cbe6678949a6f14af167650c7a7ff4b
--! Hash: sha1:b5008dd680949ff92b50796120fb10bd2e93a888

-- The webhook inbox: every accepted event, its raw body, kept forever and keyed by
-- (source, webhook-id). Its command runs through the same write path as the CLI's
-- (idempotency scope 'webhook:<source>', key = webhook-id), so its outcome is that key's outcome.

create table webhook_events (
  source text not null check (source in ('storefront', 'payments', 'logistics')),
  webhook_id text not null check (webhook_id ~ '^[ -~]{1,255}$'),
  event_type text not null,
  body_sha256 text not null check (body_sha256 ~ '^[0-9a-f]{64}$'),
  body text not null,
  received_at timestamptz not null default now(),
  primary key (source, webhook_id)
);
create trigger webhook_events_append_only before update or delete on webhook_events for each row execute function reject_change();
