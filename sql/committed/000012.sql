--! Previous: sha1:51b46b1c45aaa30272d018bf32384c391290b0ed
--! Hash: sha1:b91a69bb05ee33c94d9194ba42abd5733cd3e696

-- The lines as asked belong to rejected orders only (those that could not be priced): the
-- database refuses them for any other order, as the code never writes them.
create function order_requested_items_rejected_only() returns trigger language plpgsql as $$
begin
  if not exists (select 1 from orders where id = new.order_id and state = 'rejected') then
    raise exception using errcode = 'HA000', message = 'conflict: requested items belong to a rejected order only';
  end if;
  return new;
end $$;
create trigger order_requested_items_rejected_only before insert on order_requested_items
  for each row execute function order_requested_items_rejected_only();
