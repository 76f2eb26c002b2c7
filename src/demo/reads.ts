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
