// SQL for orders. Every state change goes through `moveOrder`, which writes the order_transitions
// row in the same transaction; the database trigger refuses any move the table does not allow.
// Lock order: the order row first (FOR UPDATE), then inventory rows in ascending SKU order.
import { z } from 'zod';
import type { OrderState } from '../domain/orders/states.ts';
import { InvariantError } from '../errors.ts';
import { registerConstraint } from './errors.ts';
import { type CloseKind, type CommandRef, closeReservations } from './inventory.ts';
import type { DatabaseTransaction, Queryable } from './pool.ts';
import { sql } from './sql.ts';

registerConstraint('orders_ref_key', 'conflict');
registerConstraint('orders_payment_ref_key', 'conflict');

export const OrderRow = z.object({
  id: z.string(),
  ref: z.string(),
  buyer: z.string(),
  currency: z.string(),
  state: z.string(),
  total_amount: z.bigint(),
  reject_reason: z.string().nullable(),
  expires_at: z.string().nullable(),
  payment_ref: z.string().nullable(),
  tracking: z.string().nullable(),
  created_at: z.string(),
  commission_bps: z.number(),
  snapshot_hash: z.string().nullable(),
  /** A rejected order that could not be priced: the lines as asked (JSON text), else null. */
  requested_items: z.string().nullable(),
  payment_method: z.string(),
  /** Past pending: order_lifecycle() as JSON text (lines' counts, refunded, shipments, returns), else null. */
  lifecycle: z.string().nullable(),
});
export type OrderRow = z.infer<typeof OrderRow>;

export const OrderItemRow = z.object({ sku: z.string(), qty: z.bigint(), unit_price: z.bigint(), total: z.bigint() });
export type OrderItemRow = z.infer<typeof OrderItemRow>;

export const TransitionRow = z.object({
  from_state: z.string().nullable(),
  to_state: z.string(),
  at: z.string(),
  actor: z.string(),
  reason: z.string().nullable(),
});
export type TransitionRow = z.infer<typeof TransitionRow>;

/** The columns of an OrderRow, for a select from orders. */
export const orderColumns = sql.fragment`id::text as id, ref, buyer, currency, state, total_amount, reject_reason, expires_at, payment_ref, tracking, created_at, commission_bps, snapshot_hash,
  case when state = 'rejected' then (
    select json_agg(json_build_object('sku', r.sku, 'qty', r.qty::text) order by r.line)::text
    from order_requested_items r where r.order_id = orders.id) end as requested_items,
  payment_method, case when state in ('pending', 'expired', 'rejected') then null else order_lifecycle(orders)::text end as lifecycle`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether an order key reads as an order's id (findOrder then matches it against ids too). */
export const isOrderId = (key: string): boolean => UUID.test(key);

function byKey(key: string) {
  return UUID.test(key) ? sql.fragment`(id = ${key}::uuid or ref = ${key})` : sql.fragment`ref = ${key}`;
}

export async function findOrder(db: Queryable, key: string): Promise<OrderRow | null> {
  return db.maybeOne(sql.type(OrderRow)`select ${orderColumns} from orders where ${byKey(key)}`);
}

export async function lockOrder(tx: DatabaseTransaction, key: string): Promise<OrderRow | null> {
  return tx.maybeOne(sql.type(OrderRow)`select ${orderColumns} from orders where ${byKey(key)} for update`);
}

export async function orderItems(db: Queryable, orderId: string): Promise<readonly OrderItemRow[]> {
  return db.any(sql.type(OrderItemRow)`select sku, qty, unit_price, total from order_items where order_id = ${orderId}::uuid order by sku`);
}

export async function orderHistory(db: Queryable, orderId: string): Promise<readonly TransitionRow[]> {
  return db.any(sql.type(TransitionRow)`
    select from_state, to_state, at, actor, reason from order_transitions where order_id = ${orderId}::uuid order by id`);
}

export async function listOrders(db: Queryable, options: { state?: string; limit: number }): Promise<readonly OrderRow[]> {
  return db.any(sql.type(OrderRow)`
    select ${orderColumns} from orders
    where ${options.state === undefined ? sql.fragment`true` : sql.fragment`state = ${options.state}`}
    order by created_at desc, id limit ${options.limit}`);
}

export type RejectReason = 'insufficient_stock' | 'unknown_sku' | 'currency_mismatch' | 'invalid_order';

/**
 * Records a placement that could not be priced (unknown SKU, mixed currencies, a total over the
 * maximum) as a rejected order: total 0, the lines as asked in order_requested_items, and its
 * first transition ((new) → rejected) with the reason.
 */
export async function insertUnpricedRejection(
  tx: DatabaseTransaction,
  order: {
    ref: string;
    buyer: string;
    currency: string;
    rejectReason: Exclude<RejectReason, 'insufficient_stock'>;
    paymentMethod: 'prepaid' | 'cod';
  },
  lines: readonly { sku: string; qty: bigint }[],
  meta: { actor: string; command: CommandRef },
): Promise<OrderRow> {
  const row = await tx.one(sql.type(z.object({ id: z.string() }))`
    insert into orders (ref, buyer, currency, state, total_amount, reject_reason, commission_bps, payment_method)
    values (${order.ref}, ${order.buyer}, ${order.currency}, 'rejected', 0, ${order.rejectReason}, 0, ${order.paymentMethod})
    returning id::text as id`);
  await tx.query(sql.unsafe`
    insert into order_requested_items (order_id, line, sku, qty)
    select ${row.id}::uuid, l.line, l.sku, l.qty
    from unnest(${sql.array(
      lines.map((l) => l.sku),
      'text',
    )}, ${sql.array(
      lines.map((l) => l.qty.toString()),
      'int8',
    )}) with ordinality as l(sku, qty, line)`);
  await tx.query(sql.unsafe`
    insert into order_transitions (order_id, from_state, to_state, actor, reason, command_scope, command_key)
    values (${row.id}::uuid, null, 'rejected', ${meta.actor}, ${order.rejectReason}, ${meta.command?.scope ?? null}, ${meta.command?.key ?? null})`);
  const inserted = await findOrder(tx, order.ref);
  if (!inserted) throw new InvariantError(`order ${order.ref} vanished after its insert`);
  return inserted;
}

/** The only way an order's state changes: the update and its transition row, together. */
export async function moveOrder(
  tx: DatabaseTransaction,
  order: OrderRow,
  to: OrderState,
  meta: { actor: string; reason: string | null; command: CommandRef; set?: { payment_ref?: string; tracking?: string } },
): Promise<OrderRow> {
  const row = await tx.one(sql.type(OrderRow)`
    update orders set state = ${to}, updated_at = now(),
      payment_ref = coalesce(${meta.set?.payment_ref ?? null}, payment_ref),
      tracking = coalesce(${meta.set?.tracking ?? null}, tracking)
    where id = ${order.id}::uuid and state = ${order.state}
    returning ${orderColumns}`);
  await tx.query(sql.unsafe`
    insert into order_transitions (order_id, from_state, to_state, actor, reason, command_scope, command_key)
    values (${order.id}::uuid, ${order.state}, ${to}, ${meta.actor}, ${meta.reason}, ${meta.command?.scope ?? null}, ${meta.command?.key ?? null})`);
  return row;
}

/**
 * Closes the order's reservations (release, finalise or expire): one per item, each exactly once.
 * A pending order whose reservations are not all active is a broken invariant: the transaction
 * is rolled back rather than half-applied.
 */
export async function closeOrderReservations(tx: DatabaseTransaction, orderId: string, to: CloseKind, command: CommandRef) {
  const ids = await tx.anyFirst(sql.type(z.object({ id: z.bigint() }))`
    select id from reservations where holder = ${orderId} and state = 'active' order by id`);
  const closed = await closeReservations(tx, ids, to, command);
  const items = await tx.oneFirst(
    sql.type(z.object({ n: z.bigint() }))`select count(*) as n from order_items where order_id = ${orderId}::uuid`,
  );
  if (BigInt(closed.length) !== items) {
    throw new InvariantError(`order ${orderId}: closed ${closed.length} reservations for ${items} items`);
  }
  return closed;
}

/**
 * The expiry sweep, one batch per transaction: moves due pending orders to expired and releases
 * their reservations, set-based (three statements whatever the batch size). SKIP LOCKED: an order
 * being confirmed right now is left to that command. The effect is that of closeOrderReservations
 * ('expired') and moveOrder per order: each active reservation closed once with its 'expire'
 * movement, reserved lowered per SKU, the order moved with its transition row. A due order whose
 * active reservations do not match its items is a broken invariant: InvariantError, and the
 * transaction is rolled back rather than half-applied.
 */
export async function expireDueOrders(tx: DatabaseTransaction, batch: number, actor: string): Promise<readonly string[]> {
  const due = await tx.any(sql.type(z.object({ id: z.string(), ref: z.string() }))`
    select id::text as id, ref from orders where state = 'pending' and expires_at <= now()
    order by expires_at limit ${batch} for update skip locked`);
  if (due.length === 0) return [];
  const ids = due.map((o) => o.id);
  // Every SKU the batch touches, locked up front in ascending byte order like every other writer
  // (lockStock's order), before any reservation or inventory row is written.
  await tx.query(sql.unsafe`
    select i.sku from inventory i
    where i.sku in (select r.sku from reservations r where r.holder = any(${sql.array(ids, 'text')}) and r.state = 'active')
    order by i.sku collate "C" for update of i`);
  const broken = await tx.any(sql.type(ExpiryMismatch)`${expireOrdersStatement(ids, actor)}`);
  if (broken.length > 0) {
    const refs = new Map(due.map((o) => [o.id, o.ref]));
    const detail = broken
      .slice(0, 5)
      .map((b) => `order ${refs.get(b.id) ?? b.id}: ${b.moved ? '' : 'not moved, '}closed ${b.closed} reservations for ${b.items} items`);
    throw new InvariantError(`expiry sweep: ${broken.length} of ${due.length} due orders broken (${detail.join('; ')})`);
  }
  return due.map((o) => o.ref);
}

const ExpiryMismatch = z.object({ id: z.string(), closed: z.bigint(), items: z.bigint(), moved: z.boolean() });

/**
 * One statement for the whole batch (its SKUs already locked): close the orders' active
 * reservations, lower reserved by the summed qty per SKU, one 'expire' movement per reservation,
 * move the orders still pending and write their transitions. Returns the orders that did not
 * close one reservation per item or did not move (none, unless the invariant is broken).
 */
function expireOrdersStatement(ids: readonly string[], actor: string) {
  return sql.fragment`
    with closed as (
      update reservations set state = 'expired', closed_at = now()
      where holder = any(${sql.array(ids, 'text')}) and state = 'active'
      returning id, holder, sku, qty
    ), released as (
      update inventory i set reserved = i.reserved - c.qty, updated_at = now()
      from (select sku, sum(qty)::int8 as qty from closed group by sku) c
      where i.sku = c.sku
    ), movements as (
      insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reservation_id, command_scope, command_key)
      select sku, 'expire', 0, -qty, id, null, null from closed order by id
    ), moved as (
      update orders set state = 'expired', updated_at = now()
      where id = any(${sql.array(ids, 'uuid')}) and state = 'pending'
      returning id
    ), transitions as (
      insert into order_transitions (order_id, from_state, to_state, actor, reason, command_scope, command_key)
      select id, 'pending', 'expired', ${actor}, 'reservation expired', null, null from moved
    ), per_order as (
      select holder, count(*) as n from closed group by holder
    ), items as (
      select order_id, count(*) as n from order_items where order_id = any(${sql.array(ids, 'uuid')}) group by order_id
    )
    select d.id, coalesce(c.n, 0) as closed, coalesce(i.n, 0) as items, m.id is not null as moved
    from unnest(${sql.array(ids, 'uuid')}) as d(id)
    left join per_order c on c.holder = d.id::text
    left join items i on i.order_id = d.id
    left join moved m on m.id = d.id
    where coalesce(c.n, 0) <> coalesce(i.n, 0) or m.id is null`;
}

/** Items of many orders in one query, by order id. */
export async function itemsOfOrders(db: Queryable, orderIds: readonly string[]): Promise<Map<string, OrderItemRow[]>> {
  const rows = await db.any(sql.type(OrderItemRow.extend({ order_id: z.string() }))`
    select order_id::text as order_id, sku, qty, unit_price, total from order_items
    where order_id = any(${sql.array(orderIds, 'uuid')}) order by order_id, sku`);
  const byOrder = new Map<string, OrderItemRow[]>();
  for (const { order_id, ...item } of rows) byOrder.set(order_id, [...(byOrder.get(order_id) ?? []), item]);
  return byOrder;
}

export const ReservationListRow = z.object({
  id: z.bigint(),
  order_ref: z.string().nullable(),
  sku: z.string(),
  qty: z.bigint(),
  state: z.string(),
  created_at: z.string(),
  closed_at: z.string().nullable(),
});

export async function listReservations(db: Queryable, options: { state?: string; limit: number }) {
  return db.any(sql.type(ReservationListRow)`
    select r.id, o.ref as order_ref, r.sku, r.qty, r.state, r.created_at, r.closed_at
    from reservations r left join orders o on o.id::text = r.holder
    where ${options.state === undefined ? sql.fragment`true` : sql.fragment`r.state = ${options.state}`}
    order by r.id desc limit ${options.limit}`);
}

/**
 * Invariants 4 and 5 (docs/invariants.md), set-based: each order's reservations agree with its state,
 * and its transitions form an allowed chain from creation to its current state. Empty when they hold.
 */
export async function orderViolations(db: Queryable): Promise<readonly { order_ref: string; check: string; detail: string }[]> {
  return db.any(sql.type(z.object({ order_ref: z.string(), check: z.string(), detail: z.string() }))`
    with r as (
      select holder, count(*) filter (where state = 'active') as active, count(*) filter (where state = 'finalized') as finalized, count(*) as total
      from reservations group by holder
    ), items as (
      select order_id, count(*) as n from order_items group by order_id
    ), chain as (
      select order_id, from_state, to_state,
             lag(to_state) over (partition by order_id order by id) as previous,
             row_number() over (partition by order_id order by id) as n,
             row_number() over (partition by order_id order by id desc) as from_end
      from order_transitions
    )
    select o.ref as order_ref, 'reservations_match_state' as check,
           format('%s with %s active, %s finalized of %s reservations for %s items', o.state, coalesce(r.active, 0), coalesce(r.finalized, 0), coalesce(r.total, 0), coalesce(i.n, 0)) as detail
    from orders o left join r on r.holder = o.id::text left join items i on i.order_id = o.id
    where (o.state = 'pending' and (coalesce(r.active, 0) <> coalesce(i.n, 0) or coalesce(r.total, 0) <> coalesce(r.active, 0)))
       or (o.state in ('confirmed', 'partially_shipped', 'shipped', 'delivered', 'returned_to_origin', 'refunded') and coalesce(r.finalized, 0) <> coalesce(i.n, 0))
       or (o.state in ('cancelled', 'expired', 'rejected') and coalesce(r.active, 0) <> 0)
    union all
    select o.ref, 'transitions_form_a_chain', format('%s -> %s (step %s)', coalesce(c.from_state, '(new)'), c.to_state, c.n)
    from chain c join orders o on o.id = c.order_id
    where (c.n = 1 and (c.from_state is not null or c.to_state not in ('pending', 'rejected')))
       or (c.n > 1 and (c.from_state is distinct from c.previous
            or not exists (select 1 from order_transition_rules t where t.from_state = c.from_state and t.to_state = c.to_state)))
       or (c.from_end = 1 and c.to_state <> o.state)
    union all
    select o.ref, 'transitions_form_a_chain', 'no transitions'
    from orders o where not exists (select 1 from order_transitions t where t.order_id = o.id)
    order by 1, 2`);
}
