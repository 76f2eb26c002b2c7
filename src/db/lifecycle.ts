// SQL for the order lifecycle (docs/lifecycle.md): lines with their counts, shipments, returns,
// refunds and each seller's money. Every function runs in the caller's transaction, which holds the
// order's row lock (lockOrder) before it reads or writes any of these: one order's lifecycle is
// changed by one transaction at a time. Lock order as everywhere: the order, then inventory rows in
// ascending SKU order.
import { z } from 'zod';
import type { Line, Pick, SellerMoney } from '../domain/orders/lifecycle.ts';
import type { ReturnState } from '../domain/orders/returns.ts';
import type { ShipmentState } from '../domain/orders/shipments.ts';
import { InvariantError } from '../errors.ts';
import { registerConstraint } from './errors.ts';
import { type CommandRef, lockStock } from './inventory.ts';
import type { DatabaseTransaction, Queryable } from './pool.ts';
import { sql } from './sql.ts';

registerConstraint('shipments_ref_key', 'conflict');
registerConstraint('returns_ref_key', 'conflict');
registerConstraint('order_items_cancelled_shipped_within_qty', 'conflict');
registerConstraint('order_items_delivered_rto_within_shipped', 'conflict');
registerConstraint('order_items_returned_within_delivered', 'conflict');
registerConstraint('order_seller_splits_refunded_within_captured', 'conflict');
registerConstraint('order_seller_splits_captured_within_subtotal', 'conflict');

const LineRow = z.object({
  sku: z.string(),
  seller: z.string(),
  qty: z.bigint(),
  unit_price: z.bigint(),
  cancelled: z.bigint(),
  shipped: z.bigint(),
  delivered: z.bigint(),
  rto: z.bigint(),
  returned: z.bigint(),
});

/** The order's lines with their sellers and counts, by SKU. */
export async function linesOf(db: Queryable, orderId: string): Promise<Line[]> {
  const rows = await db.any(sql.type(LineRow)`
    select i.sku, k.seller, i.qty, i.unit_price, i.cancelled, i.shipped, i.delivered, i.rto, i.returned
    from order_items i join skus k on k.code = i.sku
    where i.order_id = ${orderId}::uuid order by i.sku collate "C"`);
  return rows.map((r) => ({
    sku: r.sku,
    seller: r.seller,
    qty: r.qty,
    unitPrice: r.unit_price,
    cancelled: r.cancelled,
    shipped: r.shipped,
    delivered: r.delivered,
    rto: r.rto,
    returned: r.returned,
  }));
}

export type Counter = 'cancelled' | 'shipped' | 'delivered' | 'rto' | 'returned';

/** Adds the picked units to one count of the order's lines (the database bounds every count). */
export async function addToLines(tx: DatabaseTransaction, orderId: string, counter: Counter, picks: readonly Pick[]): Promise<void> {
  if (picks.length === 0) return;
  const column = sql.identifier([counter]);
  await tx.query(sql.unsafe`
    update order_items i set ${column} = i.${column} + p.qty
    from unnest(${sql.array(
      picks.map((p) => p.sku),
      'text',
    )}, ${sql.array(
      picks.map((p) => p.qty.toString()),
      'int8',
    )}) as p(sku, qty)
    where i.order_id = ${orderId}::uuid and i.sku = p.sku`);
}

const MoneyRow = z.object({
  seller: z.string(),
  subtotal: z.bigint(),
  captured: z.bigint(),
  refunded: z.bigint(),
  commission_kept: z.bigint(),
});

export async function sellerMoneyOf(db: Queryable, orderId: string): Promise<SellerMoney[]> {
  const rows = await db.any(sql.type(MoneyRow)`
    select seller, subtotal, captured, refunded, commission_kept from order_seller_splits
    where order_id = ${orderId}::uuid order by seller`);
  return rows.map((r) => ({
    seller: r.seller,
    subtotal: r.subtotal,
    captured: r.captured,
    refunded: r.refunded,
    commissionKept: r.commission_kept,
  }));
}

/** Writes each seller's money as settled (the trigger checks the commission kept is the rule). */
export async function writeSellerMoney(tx: DatabaseTransaction, orderId: string, money: readonly SellerMoney[]): Promise<void> {
  if (money.length === 0) return;
  const col = (f: (m: SellerMoney) => bigint) =>
    sql.array(
      money.map((m) => f(m).toString()),
      'int8',
    );
  await tx.query(sql.unsafe`
    update order_seller_splits s set captured = m.captured, refunded = m.refunded, commission_kept = m.kept
    from unnest(${sql.array(
      money.map((m) => m.seller),
      'text',
    )}, ${col((m) => m.captured)}, ${col((m) => m.refunded)}, ${col((m) => m.commissionKept)}) as m(seller, captured, refunded, kept)
    where s.order_id = ${orderId}::uuid and s.seller = m.seller
      and (s.captured, s.refunded, s.commission_kept) is distinct from (m.captured, m.refunded, m.kept)`);
}

/** Puts units back on hand, one movement per SKU naming the order (its rows locked in SKU order). */
export async function restockUnits(
  tx: DatabaseTransaction,
  change: {
    orderId: string;
    picks: readonly Pick[];
    kind: 'restock' | 'rto_restock' | 'return_restock';
    reason: string;
    command: CommandRef;
  },
): Promise<void> {
  const picks = change.picks.filter((p) => p.qty > 0n);
  if (picks.length === 0) return;
  await lockStock(
    tx,
    picks.map((p) => p.sku),
  );
  await tx.query(sql.unsafe`
    with p as (
      select * from unnest(${sql.array(
        picks.map((p) => p.sku),
        'text',
      )}, ${sql.array(
        picks.map((p) => p.qty.toString()),
        'int8',
      )}) as p(sku, qty)
    ), moved as (
      insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reason, order_id, command_scope, command_key)
      select p.sku, ${change.kind}, p.qty, 0, ${change.reason}, ${change.orderId}::uuid, ${change.command?.scope ?? null}, ${change.command?.key ?? null}
      from p order by p.sku collate "C"
    )
    update inventory i set on_hand = i.on_hand + p.qty, updated_at = now() from p where i.sku = p.sku`);
}

/** Units of a shipment, return or refund, written with it (one statement). */
async function insertUnits(
  tx: DatabaseTransaction,
  into: 'shipment_items' | 'return_items' | 'refund_items',
  id: string,
  units: readonly Pick[],
): Promise<void> {
  if (units.length === 0) return;
  const owner = sql.identifier([{ shipment_items: 'shipment_id', return_items: 'return_id', refund_items: 'refund_id' }[into]]);
  await tx.query(sql.unsafe`
    insert into ${sql.identifier([into])} (${owner}, sku, qty)
    select ${id}::uuid, p.sku, p.qty from unnest(${sql.array(
      units.map((p) => p.sku),
      'text',
    )}, ${sql.array(
      units.map((p) => p.qty.toString()),
      'int8',
    )}) as p(sku, qty)`);
}

type HistoryMeta = { actor: string; reason: string | null; command: CommandRef };

/** A shipment's or return's history row: from (null when it is new) → to, with who, why and the command. */
async function insertHistory(
  tx: DatabaseTransaction,
  into: 'shipment_transitions' | 'return_transitions',
  id: string,
  from: string | null,
  to: string,
  meta: HistoryMeta,
): Promise<void> {
  const owner = sql.identifier([into === 'shipment_transitions' ? 'shipment_id' : 'return_id']);
  await tx.query(sql.unsafe`
    insert into ${sql.identifier([into])} (${owner}, from_state, to_state, actor, reason, command_scope, command_key)
    values (${id}::uuid, ${from}, ${to}, ${meta.actor}, ${meta.reason}, ${meta.command?.scope ?? null}, ${meta.command?.key ?? null})`);
}

// ---- Shipments ------------------------------------------------------------------------------

export const ShipmentRow = z.object({
  id: z.string(),
  order_id: z.string(),
  ref: z.string(),
  tracking: z.string().nullable(),
  courier: z.string(),
  state: z.string(),
  created_at: z.string(),
  items: z.string(),
});
export type ShipmentRow = z.infer<typeof ShipmentRow>;

const shipmentColumns = sql.fragment`s.id::text as id, s.order_id::text as order_id, s.ref, s.tracking, s.courier, s.state, s.created_at,
  (select coalesce(json_agg(json_build_object('sku', i.sku, 'qty', i.qty::text) order by i.sku), '[]')::text from shipment_items i where i.shipment_id = s.id) as items`;

export const shipmentItems = (s: ShipmentRow): Pick[] =>
  (JSON.parse(s.items) as { sku: string; qty: string }[]).map((i) => ({ sku: i.sku, qty: BigInt(i.qty) }));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Shipments a key names: its id, its ref, or its tracking number (several shipments may share
 * one; the caller refuses an ambiguous key), optionally within one order.
 */
export async function findShipments(db: Queryable, key: string, orderId?: string): Promise<readonly ShipmentRow[]> {
  const byKey = UUID.test(key)
    ? sql.fragment`(s.id = ${key}::uuid or s.ref = ${key} or s.tracking = ${key})`
    : sql.fragment`(s.ref = ${key} or s.tracking = ${key})`;
  return db.any(sql.type(ShipmentRow)`
    select ${shipmentColumns} from shipments s
    where ${byKey} and ${orderId === undefined ? sql.fragment`true` : sql.fragment`s.order_id = ${orderId}::uuid`}
    order by s.created_at, s.id limit 10`);
}

export async function shipmentsOf(db: Queryable, orderId: string): Promise<readonly ShipmentRow[]> {
  return db.any(sql.type(ShipmentRow)`
    select ${shipmentColumns} from shipments s where s.order_id = ${orderId}::uuid order by s.created_at, s.id`);
}

export async function insertShipment(
  tx: DatabaseTransaction,
  shipment: { orderId: string; ref: string; tracking: string | null; courier: string; items: readonly Pick[] },
  meta: { actor: string; reason: string | null; command: CommandRef },
): Promise<string> {
  const id = await tx.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into shipments (order_id, ref, tracking, courier, state)
    values (${shipment.orderId}::uuid, ${shipment.ref}, ${shipment.tracking}, ${shipment.courier}, 'dispatched')
    returning id::text as id`);
  await insertUnits(tx, 'shipment_items', id, shipment.items);
  await insertHistory(tx, 'shipment_transitions', id, null, 'dispatched', meta);
  return id;
}

/** A shipment's one way to change state: the update (the trigger checks the move) and its history row. */
export async function moveShipment(
  tx: DatabaseTransaction,
  shipment: ShipmentRow,
  to: ShipmentState,
  meta: { actor: string; reason: string | null; command: CommandRef },
): Promise<void> {
  const moved = await tx.query(sql.unsafe`
    update shipments set state = ${to}, updated_at = now() where id = ${shipment.id}::uuid and state = ${shipment.state}`);
  // Every writer of a shipment holds its order's lock and read it under that lock: it cannot have moved.
  if (moved.rowCount !== 1) throw new InvariantError(`shipment ${shipment.ref} was not ${shipment.state} under its order's lock`);
  await insertHistory(tx, 'shipment_transitions', shipment.id, shipment.state, to, meta);
}

export const LifecycleTransitionRow = z.object({
  from_state: z.string().nullable(),
  to_state: z.string(),
  at: z.string(),
  actor: z.string(),
  reason: z.string().nullable(),
});

export async function shipmentHistory(db: Queryable, shipmentId: string) {
  return db.any(sql.type(LifecycleTransitionRow)`
    select from_state, to_state, at, actor, reason from shipment_transitions where shipment_id = ${shipmentId}::uuid order by id`);
}

// ---- Returns --------------------------------------------------------------------------------

export const ReturnRow = z.object({
  id: z.string(),
  order_id: z.string(),
  ref: z.string(),
  state: z.string(),
  reason: z.string(),
  disposition: z.string().nullable(),
  created_at: z.string(),
  items: z.string(),
});
export type ReturnRow = z.infer<typeof ReturnRow>;

const returnColumns = sql.fragment`r.id::text as id, r.order_id::text as order_id, r.ref, r.state, r.reason, r.disposition, r.created_at,
  (select coalesce(json_agg(json_build_object('sku', i.sku, 'qty', i.qty::text) order by i.sku), '[]')::text from return_items i where i.return_id = r.id) as items`;

export const returnItems = (r: ReturnRow): Pick[] =>
  (JSON.parse(r.items) as { sku: string; qty: string }[]).map((i) => ({ sku: i.sku, qty: BigInt(i.qty) }));

export async function findReturn(db: Queryable, key: string): Promise<ReturnRow | null> {
  const byKey = UUID.test(key) ? sql.fragment`(r.id = ${key}::uuid or r.ref = ${key})` : sql.fragment`r.ref = ${key}`;
  return db.maybeOne(sql.type(ReturnRow)`select ${returnColumns} from returns r where ${byKey}`);
}

export async function returnsOf(db: Queryable, orderId: string): Promise<readonly ReturnRow[]> {
  return db.any(sql.type(ReturnRow)`
    select ${returnColumns} from returns r where r.order_id = ${orderId}::uuid order by r.created_at, r.id`);
}

export async function insertReturn(
  tx: DatabaseTransaction,
  ret: { orderId: string; ref: string; reason: string; items: readonly Pick[] },
  meta: { actor: string; command: CommandRef },
): Promise<string> {
  const id = await tx.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into returns (order_id, ref, state, reason) values (${ret.orderId}::uuid, ${ret.ref}, 'requested', ${ret.reason})
    returning id::text as id`);
  await insertUnits(tx, 'return_items', id, ret.items);
  await insertHistory(tx, 'return_transitions', id, null, 'requested', { ...meta, reason: ret.reason });
  return id;
}

export async function moveReturn(
  tx: DatabaseTransaction,
  ret: ReturnRow,
  to: ReturnState,
  meta: { actor: string; reason: string | null; command: CommandRef; disposition?: 'restock' | 'write_off' },
): Promise<void> {
  const moved = await tx.query(sql.unsafe`
    update returns set state = ${to}, disposition = coalesce(${meta.disposition ?? null}, disposition), updated_at = now()
    where id = ${ret.id}::uuid and state = ${ret.state}`);
  if (moved.rowCount !== 1) throw new InvariantError(`return ${ret.ref} was not ${ret.state} under its order's lock`);
  await insertHistory(tx, 'return_transitions', ret.id, ret.state, to, meta);
}

/** Units of each SKU in the order's returns still requested (not yet received or rejected). */
export async function unitsAwaitingReturn(db: Queryable, orderId: string): Promise<Map<string, bigint>> {
  const rows = await db.any(sql.type(z.object({ sku: z.string(), qty: z.bigint() }))`
    select i.sku, sum(i.qty)::int8 as qty from returns r join return_items i on i.return_id = r.id
    where r.order_id = ${orderId}::uuid and r.state = 'requested' group by i.sku`);
  return new Map(rows.map((r) => [r.sku, r.qty]));
}

// ---- Refunds --------------------------------------------------------------------------------

/** Units of each SKU refunded by items so far. */
export async function unitsRefunded(db: Queryable, orderId: string): Promise<Map<string, bigint>> {
  const rows = await db.any(sql.type(z.object({ sku: z.string(), qty: z.bigint() }))`
    select i.sku, sum(i.qty)::int8 as qty from refunds f join refund_items i on i.refund_id = f.id
    where f.order_id = ${orderId}::uuid and f.kind = 'refund' group by i.sku`);
  return new Map(rows.map((r) => [r.sku, r.qty]));
}

/**
 * A refund with its items and its split per seller. The allocations are written last: their
 * trigger writes refund.issued, with the order's refunded total as it now is.
 */
export async function insertRefund(
  tx: DatabaseTransaction,
  refund: {
    orderId: string;
    kind: 'refund' | 'cancellation';
    amount: bigint;
    currency: string;
    reason: string;
    items: readonly Pick[];
    allocations: readonly { seller: string; amount: bigint; commissionReversed: bigint }[];
  },
  command: CommandRef,
): Promise<string> {
  const id = await tx.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into refunds (order_id, kind, amount, currency, reason, command_scope, command_key)
    values (${refund.orderId}::uuid, ${refund.kind}, ${refund.amount}, ${refund.currency}, ${refund.reason}, ${command?.scope ?? null}, ${command?.key ?? null})
    returning id::text as id`);
  await insertUnits(tx, 'refund_items', id, refund.items);
  await tx.query(sql.unsafe`
    insert into refund_allocations (refund_id, seller, amount, commission_reversed)
    select ${id}::uuid, a.seller, a.amount, a.reversed from unnest(${sql.array(
      refund.allocations.map((a) => a.seller),
      'text',
    )}, ${sql.array(
      refund.allocations.map((a) => a.amount.toString()),
      'int8',
    )}, ${sql.array(
      refund.allocations.map((a) => a.commissionReversed.toString()),
      'int8',
    )}) as a(seller, amount, reversed)`);
  return id;
}
