--! Previous: sha1:228d7360ef3cd47fd043d9263d459c71d72bece1
--! Hash: sha1:376bf8ea2ed5f578fd3d9c078ceaa24867723486

-- The webhook inbox and the payments are append-only against TRUNCATE too, like every other
-- history table (an UPDATE or DELETE was already refused row by row).
create trigger webhook_events_no_truncate before truncate on webhook_events
  for each statement execute function reject_change();
create trigger payments_no_truncate before truncate on payments
  for each statement execute function reject_change();
