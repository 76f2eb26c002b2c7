--! Previous: sha1:dd292dacc7767121d17317de188c968934e88b34
--! Hash: sha1:7a531fee676d1dc301c4f368a3604a1185ec98a9

-- Free text that lands in the audit trail is refused by the database too when it carries control
-- characters, line/paragraph separators or bidirectional overrides/isolates (the same rule as
-- `Text` in src/domain/catalog.ts): an audit line cannot be forged or disguised by any path.
-- NOT VALID: rows written before this rule are kept as they are (the tables are append-only).
create or replace function is_safe_text(value text) returns boolean
  language sql immutable parallel safe
  return value is null or value !~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]';

alter table audit_log
  add constraint audit_log_actor_safe check (is_safe_text(actor)) not valid,
  add constraint audit_log_reason_safe check (is_safe_text(reason)) not valid;
alter table order_transitions
  add constraint order_transitions_actor_safe check (is_safe_text(actor)) not valid,
  add constraint order_transitions_reason_safe check (is_safe_text(reason)) not valid;
