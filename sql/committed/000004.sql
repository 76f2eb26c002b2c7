--! Previous: sha1:a677ff828ca9bfa0d4b1e44f49b52257b753a297
--! Hash: sha1:94e146f33cbe6678949a6f14af167650c7a7ff4b

-- Money that never drifts: the order's money snapshot (prices, totals, commission rate, per-seller
-- split, and a hash of them) frozen once the order leaves pending; payments, applied or kept as
-- unapplied; and a double-entry ledger whose entries must balance at commit.

alter table orders
  add column commission_bps integer not null default 0 check (commission_bps between 0 and 10000),
  add column snapshot_hash text check (snapshot_hash ~ '^[0-9a-f]{64}$');

create table order_seller_splits (
  order_id uuid not null references orders (id),
  seller text not null references sellers (handle),
  subtotal bigint not null check (subtotal >= 0),
  commission bigint not null check (commission >= 0),
  payout bigint not null check (payout >= 0),
  primary key (order_id, seller),
  check (payout + commission = subtotal)
);

-- Once an order has left pending, its money is history: no path, SQL included, may change it.
create function orders_freeze_money() returns trigger language plpgsql as $$
begin
  if old.state <> 'pending' and (
       new.total_amount is distinct from old.total_amount or new.currency is distinct from old.currency
    or new.commission_bps is distinct from old.commission_bps or new.snapshot_hash is distinct from old.snapshot_hash) then
    raise exception using errcode = 'HA000', message = format('conflict: order %s is %s: its money is frozen', old.ref, old.state);
  end if;
  return new;
end $$;
create trigger orders_freeze_money before update on orders for each row execute function orders_freeze_money();

create function order_lines_frozen() returns trigger language plpgsql as $$
declare
  order_state text;
begin
  select state into order_state from orders where id = coalesce(old.order_id, new.order_id);
  if order_state is distinct from 'pending' and tg_op <> 'INSERT' then
    raise exception using errcode = 'HA000', message = format('conflict: the money of a %s order is frozen', order_state);
  end if;
  return coalesce(new, old);
end $$;
create trigger order_items_frozen before update or delete on order_items for each row execute function order_lines_frozen();
create trigger order_seller_splits_frozen before update or delete on order_seller_splits for each row execute function order_lines_frozen();

-- Every payment received, applied to its order or kept as unapplied with why. Never dropped.
create table payments (
  id bigint generated always as identity primary key,
  payment_ref text not null constraint payments_payment_ref_key unique,
  order_ref text not null,
  order_id uuid references orders (id),
  amount bigint not null check (amount >= 0),
  currency text not null,
  state text not null check (state in ('applied', 'unapplied')),
  reason text check (reason in ('amount_mismatch', 'currency_mismatch', 'order_not_pending', 'order_not_found')),
  received_at timestamptz not null default now(),
  command_scope text,
  command_key text,
  check ((state = 'unapplied') = (reason is not null)),
  check (state = 'unapplied' or order_id is not null)
);
create index payments_unapplied on payments (received_at) where state = 'unapplied';

create table journal_entries (
  id bigint generated always as identity primary key,
  order_id uuid not null references orders (id),
  kind text not null check (kind in ('capture', 'cancellation', 'refund')),
  created_at timestamptz not null default now(),
  command_scope text,
  command_key text
);
create index journal_entries_by_order on journal_entries (order_id);

-- Debits positive, credits negative. Accounts: psp_clearing, platform_commission,
-- seller_payable:<handle>.
create table postings (
  id bigint generated always as identity primary key,
  entry_id bigint not null references journal_entries (id),
  account text not null check (account ~ '^(psp_clearing|platform_commission|seller_payable:[a-z0-9][a-z0-9-]{0,62})$'),
  amount bigint not null check (amount <> 0),
  currency text not null references currencies (code)
);
create index postings_by_entry on postings (entry_id);

-- Checked at commit: every entry touched in the transaction sums to zero in each currency.
create function postings_balance() returns trigger language plpgsql as $$
begin
  if exists (
    select 1 from postings where entry_id = new.entry_id group by currency having sum(amount) <> 0
  ) or not exists (select 1 from postings where entry_id = new.entry_id) then
    raise exception using errcode = 'HA000', message = format('conflict: journal entry %s does not balance', new.entry_id);
  end if;
  return null;
end $$;
create constraint trigger postings_balance after insert on postings
  deferrable initially deferred for each row execute function postings_balance();

create trigger journal_entries_append_only before update or delete on journal_entries for each row execute function reject_change();
create trigger journal_entries_no_truncate before truncate on journal_entries for each statement execute function reject_change();
create trigger postings_append_only before update or delete on postings for each row execute function reject_change();
create trigger postings_no_truncate before truncate on postings for each statement execute function reject_change();
create trigger payments_append_only before update or delete on payments for each row execute function reject_change();
