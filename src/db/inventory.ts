// SQL for inventory. Protects invariants 1–3 (docs/invariants.md):
// 1. 0 <= reserved <= on_hand (also a CHECK constraint);
// 2. reserved = the sum of the SKU's active reservations;
// 3. on_hand = the sum of the SKU's movements.
// Every function here runs inside the caller's transaction, locks inventory rows FOR UPDATE in
// ascending SKU order (so two transactions never deadlock on each other's SKUs), and writes a
// movement for every change.
import { z } from 'zod';
import { decideReservation, type ReservationLine, type Shortage } from '../domain/inventory/decide-reservation.ts';
import type { DatabaseTransaction, Queryable } from './pool.ts';
import { sql } from './sql.ts';

export const StockRow = z.object({ sku: z.string(), on_hand: z.bigint(), reserved: z.bigint(), available: z.bigint() });
export type StockRow = z.infer<typeof StockRow>;

export type CommandRef = { readonly scope: string; readonly key: string } | null;

const stockColumns = sql.fragment`sku, on_hand, reserved, on_hand - reserved as available`;

export async function stockOf(db: Queryable, sku: string): Promise<StockRow | null> {
  return db.maybeOne(sql.type(StockRow)`select ${stockColumns} from inventory where sku = ${sku}`);
}

export async function listStock(db: Queryable, options: { limit: number; after?: string }): Promise<readonly StockRow[]> {
  return db.any(sql.type(StockRow)`
    select ${stockColumns} from inventory
    where ${options.after === undefined ? sql.fragment`true` : sql.fragment`sku > ${options.after}`}
    order by sku limit ${options.limit}`);
}

/**
 * Locks the SKUs' inventory rows, in ascending SKU order. Missing SKUs are simply absent. The order
 * is byte order (collate "C"), the order JavaScript sorts SKU codes in, whatever the database's
 * collation: every writer (a batch of imports too) locks in one order, so none deadlocks another.
 */
export async function lockStock(tx: DatabaseTransaction, skus: readonly string[]): Promise<readonly StockRow[]> {
  const sorted = [...new Set(skus)].sort();
  return tx.any(sql.type(StockRow)`
    select ${stockColumns} from inventory where sku = any(${sql.array(sorted, 'text')}) order by sku collate "C" for update`);
}

/** Sets on_hand by a delta on a locked row and records the movement. The caller decided it. */
export async function changeOnHand(
  tx: DatabaseTransaction,
  change: { sku: string; delta: bigint; kind: 'receive' | 'adjust' | 'restock'; reason: string | null; command: CommandRef },
): Promise<StockRow> {
  const row = await tx.one(sql.type(StockRow)`
    update inventory set on_hand = on_hand + ${change.delta}, updated_at = now()
    where sku = ${change.sku} returning ${stockColumns}`);
  await tx.query(sql.unsafe`
    insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reason, command_scope, command_key)
    values (${change.sku}, ${change.kind}, ${change.delta}, 0, ${change.reason}, ${change.command?.scope ?? null}, ${change.command?.key ?? null})`);
  return row;
}

export type ReservationRow = { readonly id: bigint; readonly sku: string; readonly qty: bigint };

export type ReserveResult =
  | { readonly ok: true; readonly reservations: readonly ReservationRow[] }
  | { readonly ok: false; readonly code: 'not_found'; readonly missing: readonly string[] }
  | { readonly ok: false; readonly code: 'insufficient_stock'; readonly shortages: readonly Shortage[] };

/**
 * Reserves every line for `holder`, or none: locks the SKU rows in ascending order, decides with
 * the pure rule, then raises `reserved` and writes one reservation and one movement per SKU.
 */
export async function reserve(
  tx: DatabaseTransaction,
  holder: string,
  lines: readonly ReservationLine[],
  command: CommandRef,
): Promise<ReserveResult> {
  const rows = await lockStock(
    tx,
    lines.map((l) => l.sku),
  );
  const decision = decideReservation(
    lines,
    rows.map((r) => ({ sku: r.sku, onHand: r.on_hand, reserved: r.reserved })),
  );
  if (!decision.ok) return decision;
  const skus = decision.lines.map((l) => l.sku);
  const qtys = decision.lines.map((l) => l.qty.toString());
  await tx.query(sql.unsafe`
    update inventory i set reserved = i.reserved + l.qty, updated_at = now()
    from unnest(${sql.array(skus, 'text')}, ${sql.array(qtys, 'int8')}) as l(sku, qty)
    where i.sku = l.sku`);
  const reservations = await tx.any(sql.type(z.object({ id: z.bigint(), sku: z.string(), qty: z.bigint() }))`
    with created as (
      insert into reservations (holder, sku, qty)
      select ${holder}, l.sku, l.qty from unnest(${sql.array(skus, 'text')}, ${sql.array(qtys, 'int8')}) as l(sku, qty)
      returning id, sku, qty
    ), moved as (
      insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reservation_id, command_scope, command_key)
      select sku, 'reserve', 0, qty, id, ${command?.scope ?? null}, ${command?.key ?? null} from created
    )
    select id, sku, qty from created order by sku`);
  return { ok: true, reservations };
}

export type CloseKind = 'released' | 'finalized' | 'expired';

/**
 * Closes active reservations exactly once: released or expired give the stock back to
 * `available` (reserved -= qty); finalized ships it (on_hand -= qty and reserved -= qty).
 * Reservations that are no longer active are skipped; the rows actually closed are returned.
 */
export async function closeReservations(
  tx: DatabaseTransaction,
  ids: readonly bigint[],
  to: CloseKind,
  command: CommandRef,
): Promise<readonly ReservationRow[]> {
  if (ids.length === 0) return [];
  const idText = ids.map(String);
  const candidates = await tx.any(sql.type(z.object({ sku: z.string() }))`
    select distinct sku from reservations where id = any(${sql.array(idText, 'int8')}) and state = 'active'`);
  // Inventory rows first, in SKU order, like every other writer; then the reservations.
  await lockStock(
    tx,
    candidates.map((c) => c.sku),
  );
  const closed = await tx.any(sql.type(z.object({ id: z.bigint(), sku: z.string(), qty: z.bigint() }))`
    update reservations set state = ${to}, closed_at = now()
    where id = any(${sql.array(idText, 'int8')}) and state = 'active'
    returning id, sku, qty`);
  if (closed.length === 0) return [];
  const onHandFactor = to === 'finalized' ? -1n : 0n;
  const kind = to === 'finalized' ? 'finalize' : to === 'expired' ? 'expire' : 'release';
  const closedIds = closed.map((r) => r.id.toString());
  await tx.query(sql.unsafe`
    update inventory i set reserved = i.reserved - t.qty, on_hand = i.on_hand + ${onHandFactor} * t.qty, updated_at = now()
    from (select sku, sum(qty)::int8 as qty from reservations where id = any(${sql.array(closedIds, 'int8')}) group by sku) t
    where i.sku = t.sku`);
  await tx.query(sql.unsafe`
    insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reservation_id, command_scope, command_key)
    select sku, ${kind}, ${onHandFactor} * qty, -qty, id, ${command?.scope ?? null}, ${command?.key ?? null}
    from reservations where id = any(${sql.array(closedIds, 'int8')})`);
  return closed;
}

export type InvariantViolation = { readonly sku: string; readonly check: string; readonly detail: string };

/** Invariants 1–3 (docs/invariants.md), set-based. Empty when they hold (reconcile builds on this). */
export async function inventoryViolations(db: Queryable): Promise<readonly InvariantViolation[]> {
  return db.any(sql.type(z.object({ sku: z.string(), check: z.string(), detail: z.string() }))`
    with active as (
      select sku, sum(qty)::int8 as qty from reservations where state = 'active' group by sku
    ), moved as (
      select sku, sum(on_hand_delta)::int8 as on_hand, sum(reserved_delta)::int8 as reserved from inventory_movements group by sku
    )
    select i.sku, 'reserved_within_on_hand' as check, format('reserved %s, on_hand %s', i.reserved, i.on_hand) as detail
      from inventory i where not (0 <= i.reserved and i.reserved <= i.on_hand)
    union all
    select i.sku, 'reserved_is_active_reservations', format('reserved %s, active reservations %s', i.reserved, coalesce(a.qty, 0))
      from inventory i left join active a using (sku) where i.reserved <> coalesce(a.qty, 0)
    union all
    select i.sku, 'on_hand_is_movements', format('on_hand %s, movements %s; reserved %s, reserve movements %s', i.on_hand, coalesce(m.on_hand, 0), i.reserved, coalesce(m.reserved, 0))
      from inventory i left join moved m using (sku) where i.on_hand <> coalesce(m.on_hand, 0) or i.reserved <> coalesce(m.reserved, 0)
    order by 1, 2`);
}
