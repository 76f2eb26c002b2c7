--! Previous: sha1:c65374fe391c6f1fd5c445555a3459e6063634cf
--! Hash: sha1:733d3c37ca51836495ecd3a45f77acbf077753ab

-- Restocks name the order they come from, so reconcile can match every unit put back on hand
-- (cancelled after payment, back from a failed delivery, returned by the buyer) to its movement.
alter table inventory_movements add column order_id uuid;
alter table inventory_movements drop constraint inventory_movements_kind_check;
alter table inventory_movements add constraint inventory_movements_kind_check
  check (kind in ('receive', 'adjust', 'reserve', 'release', 'finalize', 'expire', 'restock', 'rto_restock', 'return_restock'));
alter table inventory_movements add constraint inventory_movements_restock_names_order
  check (kind not in ('rto_restock', 'return_restock') or order_id is not null);
create index inventory_movements_by_order on inventory_movements (order_id) where order_id is not null;
-- Restocks written before this migration named their order in their reason only.
alter table inventory_movements disable trigger inventory_movements_append_only;
update inventory_movements set order_id = substring(reason from '^order ([0-9a-f-]{36}) cancelled$')::uuid
  where kind = 'restock' and order_id is null and reason ~ '^order [0-9a-f-]{36} cancelled$';
alter table inventory_movements enable trigger inventory_movements_append_only;

-- An order's lifecycle as its JSON shows it (lines' counts, refunded, shipments, returns): one
-- function for `haat order show` and for the outbox (what an event keeps of the order as it was).
create function order_lifecycle(o orders) returns jsonb language sql stable parallel safe
  return jsonb_build_object(
      'lines', coalesce((select jsonb_agg(jsonb_build_object('sku', i.sku, 'cancelled', i.cancelled::text, 'shipped', i.shipped::text,
                              'delivered', i.delivered::text, 'rto', i.rto::text, 'returned', i.returned::text) order by i.sku)
                         from order_items i where i.order_id = o.id), '[]'::jsonb),
      'refunded', (select coalesce(sum(s.refunded), 0)::text from order_seller_splits s where s.order_id = o.id),
      'shipments', coalesce((select jsonb_agg(lifecycle_shipment(s) order by s.created_at, s.id) from shipments s where s.order_id = o.id), '[]'::jsonb),
      'returns', coalesce((select jsonb_agg(lifecycle_return(r) order by r.created_at, r.id) from returns r where r.order_id = o.id), '[]'::jsonb));

create or replace function outbox_order_state(o orders) returns jsonb language sql stable parallel safe
  return jsonb_build_object('state', o.state, 'expires_at', o.expires_at, 'payment_ref', o.payment_ref, 'tracking', o.tracking)
    || case when o.state in ('pending', 'expired', 'rejected') then '{}'::jsonb else order_lifecycle(o) end;
