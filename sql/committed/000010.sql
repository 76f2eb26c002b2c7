--! Previous: sha1:08110a8a7860d4cc9ee85d4fe51a1e38ab647081
--! Hash: sha1:d63fc2e8446c176b23d85590af7de6805d57f2d5

-- The webhook inbox and the payments are append-only against TRUNCATE too, like every other
-- history table (an UPDATE or DELETE was already refused row by row).
create trigger webhook_events_no_truncate before truncate on webhook_events
  for each statement execute function reject_change();
create trigger payments_no_truncate before truncate on payments
  for each statement execute function reject_change();
