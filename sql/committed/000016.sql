--! Previous: sha1:733d3c37ca51836495ecd3a45f77acbf077753ab
--! Hash: sha1:2ebded19acc4d5bb5e67e088bf3854676989639a

-- What the lifecycle's tables hold is written once, with what it belongs to: an order's lines and
-- seller splits in the transaction that places it, a shipment's, return's or refund's items (and a
-- refund's split) in the transaction that creates it; none is truncated; a payment method stays.
create function rows_written_with_parent() returns trigger language plpgsql as $$
declare
  born timestamptz;
begin
  case tg_table_name
    when 'order_items', 'order_seller_splits' then select created_at into born from orders where id = new.order_id;
    when 'shipment_items' then select created_at into born from shipments where id = new.shipment_id;
    when 'return_items' then select created_at into born from returns where id = new.return_id;
    else select created_at into born from refunds where id = new.refund_id;
  end case;
  -- now() is the transaction's start: a parent made in this transaction has it as created_at.
  if born is distinct from now() then
    raise exception using errcode = 'HA000', message = format('conflict: %s rows are written with what they belong to, never added later', tg_table_name);
  end if;
  return new;
end $$;
create trigger order_items_written_with_order before insert on order_items for each row execute function rows_written_with_parent();
create trigger order_seller_splits_written_with_order before insert on order_seller_splits for each row execute function rows_written_with_parent();
create trigger shipment_items_written_with_shipment before insert on shipment_items for each row execute function rows_written_with_parent();
create trigger return_items_written_with_return before insert on return_items for each row execute function rows_written_with_parent();
create trigger refund_items_written_with_refund before insert on refund_items for each row execute function rows_written_with_parent();
create trigger refund_allocations_written_with_refund before insert on refund_allocations for each row execute function rows_written_with_parent();

create trigger shipment_items_no_truncate before truncate on shipment_items for each statement execute function reject_change();
create trigger return_items_no_truncate before truncate on return_items for each statement execute function reject_change();
create trigger refund_items_no_truncate before truncate on refund_items for each statement execute function reject_change();
create trigger refund_allocations_no_truncate before truncate on refund_allocations for each statement execute function reject_change();
create trigger shipments_no_truncate before truncate on shipments for each statement execute function reject_change();
create trigger returns_no_truncate before truncate on returns for each statement execute function reject_change();

create function orders_keep_payment_method() returns trigger language plpgsql as $$
begin
  if new.payment_method is distinct from old.payment_method then
    raise exception using errcode = 'HA000', message = format('conflict: order %s keeps its payment method', old.ref);
  end if;
  return new;
end $$;
create trigger orders_keep_payment_method before update on orders for each row execute function orders_keep_payment_method();
