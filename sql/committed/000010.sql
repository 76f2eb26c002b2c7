--! Previous: sha1:e0ac1aee91d641680f4ec6ff64f29f7e75613283
--! Hash: sha1:e5c92da70c9698279154c64cf8ba1c937c4aad26

-- The webhook inbox and the payments are append-only against TRUNCATE too, like every other
-- history table (an UPDATE or DELETE was already refused row by row).
create trigger webhook_events_no_truncate before truncate on webhook_events
  for each statement execute function reject_change();
create trigger payments_no_truncate before truncate on payments
  for each statement execute function reject_change();
