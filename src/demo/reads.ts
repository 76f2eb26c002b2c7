// The reads behind the demo's checks: effects read back from the database, never inferred from
// what a process printed. Plain counts and sums; no rule of haat is implemented here.
import { z } from 'zod';
import { mapDatabaseError, pgErrorOf } from '../db/errors.ts';
import { stockOf } from '../db/inventory.ts';
import type { Queryable } from '../db/pool.ts';
import { sql } from '../db/sql.ts';
import type { HaatRun } from './processes.ts';

export type Stock = { readonly on_hand: bigint; readonly reserved: bigint; readonly available: bigint };

export async function stock(db: Queryable, sku: string): Promise<Stock> {
  const row = await stockOf(db, sku);
  if (!row) throw new Error(`SKU ${sku} has no inventory row`);
  return { on_hand: row.on_hand, reserved: row.reserved, available: row.available };
}

/** How many orders with these refs are in each state, e.g. {pending: 5n, rejected: 7n}. */
export async function orderStates(db: Queryable, refs: readonly string[]): Promise<Record<string, bigint>> {
  const rows = await db.any(sql.type(z.object({ state: z.string(), n: z.bigint() }))`
    select state, count(*) as n from orders where ref = any(${sql.array([...refs], 'text')}) group by state order by state`);
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

export async function orderState(db: Queryable, ref: string): Promise<string | null> {
  return db.maybeOneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where ref = ${ref}`);
}

export async function transitionCount(db: Queryable, ref: string): Promise<bigint> {
  return db.oneFirst(sql.type(z.object({ n: z.bigint() }))`
    select count(*) as n from order_transitions t join orders o on o.id = t.order_id where o.ref = ${ref}`);
}

/** Stock movements of a SKU, optionally of one kind. */
export async function movementCount(db: Queryable, sku: string, kind?: string): Promise<bigint> {
  return db.oneFirst(sql.type(z.object({ n: z.bigint() }))`
    select count(*) as n from inventory_movements where sku = ${sku} and (${kind ?? null}::text is null or kind = ${kind ?? null})`);
}

/** Active reservations of a SKU, in units. */
export async function activeReserved(db: Queryable, sku: string): Promise<bigint> {
  return db.oneFirst(sql.type(z.object({ n: z.bigint() }))`
    select coalesce(sum(qty), 0)::int8 as n from reservations where sku = ${sku} and state = 'active'`);
}

/** The error code of a `haat … --json` run that failed, or null when it printed no error document. */
export function errorCode(run: HaatRun): string | null {
  const doc = run.json as { error?: { code?: unknown } } | undefined;
  return typeof doc?.error?.code === 'string' ? doc.error.code : null;
}

/** `exit 3 insufficient_stock`, `exit 0`, `killed by SIGKILL`: how a process ended, for a check. */
export function exitOf(run: HaatRun): string {
  if (run.code === null) return `killed by ${run.signal}`;
  const code = errorCode(run);
  return code ? `exit ${run.code} ${code}` : `exit ${run.code}`;
}

/** How the database refused a statement (SQLSTATE, message, haat's error code), or null when it ran it. */
export async function refusalOf(
  statement: () => Promise<unknown>,
): Promise<{ sqlstate: string; message: string; code: string | null } | null> {
  try {
    await statement();
    return null;
  } catch (error) {
    const pg = pgErrorOf(error);
    if (!pg) throw error;
    return { sqlstate: pg.code, message: pg.message, code: mapDatabaseError(error)?.code ?? null };
  }
}

/** An order's lines: what happened to its units, by SKU ({qty, cancelled, shipped, delivered, rto, returned}). */
export async function lineCounts(db: Queryable, ref: string): Promise<Record<string, Record<string, bigint>>> {
  const rows = await db.any(sql.type(
    z.object({
      sku: z.string(),
      qty: z.bigint(),
      cancelled: z.bigint(),
      shipped: z.bigint(),
      delivered: z.bigint(),
      rto: z.bigint(),
      returned: z.bigint(),
    }),
  )`
    select i.sku, i.qty, i.cancelled, i.shipped, i.delivered, i.rto, i.returned
    from order_items i join orders o on o.id = i.order_id where o.ref = ${ref} order by i.sku collate "C"`);
  return Object.fromEntries(rows.map(({ sku, ...counts }) => [sku, counts]));
}

/** An order's states, oldest first ("(new)" excluded): e.g. ["pending", "confirmed", "shipped"]. */
export async function orderPath(db: Queryable, ref: string): Promise<readonly string[]> {
  return db.anyFirst(sql.type(z.object({ to_state: z.string() }))`
    select t.to_state from order_transitions t join orders o on o.id = t.order_id where o.ref = ${ref} order by t.id`);
}

/** A shipment's states, oldest first, by its tracking number. */
export async function shipmentPath(db: Queryable, tracking: string): Promise<readonly string[]> {
  return db.anyFirst(sql.type(z.object({ to_state: z.string() }))`
    select t.to_state from shipment_transitions t join shipments s on s.id = t.shipment_id where s.tracking = ${tracking} order by t.id`);
}

/** The stock movements that name an order, by kind: {kind: units put back on hand}. */
export async function orderMovements(db: Queryable, ref: string): Promise<Record<string, bigint>> {
  const rows = await db.any(sql.type(z.object({ kind: z.string(), units: z.bigint() }))`
    select m.kind, sum(m.on_hand_delta)::int8 as units from inventory_movements m join orders o on o.id = m.order_id
    where o.ref = ${ref} group by m.kind order by m.kind`);
  return Object.fromEntries(rows.map((r) => [r.kind, r.units]));
}

/** The whole ledger's size: journal entries and postings. */
export async function ledgerSize(db: Queryable): Promise<{ entries: bigint; postings: bigint }> {
  return db.one(sql.type(z.object({ entries: z.bigint(), postings: z.bigint() }))`
    select (select count(*) from journal_entries) as entries, (select count(*) from postings) as postings`);
}

/** An order's postings of one kind of journal entry, summed by account: {account: amount}. */
export async function orderPostings(db: Queryable, ref: string, kind?: string): Promise<Record<string, bigint>> {
  const rows = await db.any(sql.type(z.object({ account: z.string(), amount: z.bigint() }))`
    select p.account, sum(p.amount)::int8 as amount
    from postings p join journal_entries e on e.id = p.entry_id join orders o on o.id = e.order_id
    where o.ref = ${ref} and (${kind ?? null}::text is null or e.kind = ${kind ?? null})
    group by p.account order by p.account`);
  return Object.fromEntries(rows.map((r) => [r.account, r.amount]));
}

/** Each seller's money in an order: captured, refunded, commission kept (order_seller_splits). */
export async function sellerMoney(
  db: Queryable,
  ref: string,
): Promise<Record<string, { captured: bigint; refunded: bigint; commission_kept: bigint }>> {
  const rows = await db.any(sql.type(
    z.object({ seller: z.string(), captured: z.bigint(), refunded: z.bigint(), commission_kept: z.bigint() }),
  )`
    select s.seller, s.captured, s.refunded, s.commission_kept
    from order_seller_splits s join orders o on o.id = s.order_id where o.ref = ${ref} order by s.seller`);
  return Object.fromEntries(rows.map(({ seller, ...money }) => [seller, money]));
}

/** An order's refunds, oldest first, each with its split per seller. */
export async function refundsOf(
  db: Queryable,
  ref: string,
): Promise<readonly { kind: string; amount: bigint; seller: string; allocated: bigint; commission_reversed: bigint }[]> {
  return db.any(sql.type(
    z.object({ kind: z.string(), amount: z.bigint(), seller: z.string(), allocated: z.bigint(), commission_reversed: z.bigint() }),
  )`
    select f.kind, f.amount, a.seller, a.amount as allocated, a.commission_reversed
    from refunds f join orders o on o.id = f.order_id join refund_allocations a on a.refund_id = f.id
    where o.ref = ${ref} order by f.created_at, f.id, a.seller`);
}
