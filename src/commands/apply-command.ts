// Applies one stored command: lock its key row, run its handler, record the outcome — all in one
// transaction. The worker's apply_command task and the CLI's inline fallback both call this; it is
// safe to run any number of times (a finished key returns its stored outcome and does nothing).
import { z } from 'zod';
import { isRetryable, mapDatabaseError } from '../db/errors.ts';
import {
  APPLY_COMMAND_TASK,
  jobKeyOf,
  type KeyRow,
  lockKey,
  lockKeys,
  outcomeOf,
  type RecordedOutcome,
  recordOutcome,
  recordOutcomes,
  storedForm,
  WEBHOOK_SCOPE_PREFIX,
} from '../db/idempotency.ts';
import { lockStock } from '../db/inventory.ts';
import { maintenanceOnForCommand } from '../db/operations.ts';
import { isOrderId } from '../db/orders.ts';
import type { DatabasePool, DatabaseTransaction } from '../db/pool.ts';
import { sql } from '../db/sql.ts';
import { inTransaction } from '../db/transaction.ts';
import { Command, type Outcome } from '../domain/commands.ts';
import type { HaatError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { handlerFor } from './handlers.ts';
import { applyPlaces, type Placement } from './order-handlers.ts';

/** How long an event that names an order not placed yet is retried before its outcome is kept. */
export const OUT_OF_ORDER_WINDOW_MS = 10 * 60_000;

/** Thrown to roll back and let the queue retry later (with backoff): the event may be early. */
export class RetryLater extends Error {
  override name = 'RetryLater';
  /** An expected, bounded retry: logged at info by the worker, not as a failure. */
  readonly expectedRetry = true;
}

/** Thrown when maintenance mode is on: nothing is written, the job is retried later. */
export class MaintenanceHold extends Error {
  override name = 'MaintenanceHold';
  readonly expectedRetry = true;
}

export async function applyCommand(
  pool: DatabasePool,
  scope: string,
  key: string,
  log: Logger,
  options: { outOfOrderWindowMs?: number /** The job's attempt (1 when applied inline). */; attempts?: number } = {},
): Promise<Outcome | null> {
  const item = { scope, key, attempts: options.attempts };
  try {
    return await inTransaction(
      pool,
      async (tx) => {
        const row = await lockKey(tx, scope, key);
        const maintenanceOn = row?.state === 'pending' && (await maintenanceOnForCommand(tx));
        const decided = await decideOne(tx, item, row, maintenanceOn, log, options);
        if ('hold' in decided) throw new MaintenanceHold('maintenance mode is on: the command waits');
        if ('early' in decided) throw decided.early;
        if ('stored' in decided) return decided.stored;
        await recordOutcome(tx, scope, key, decided.outcome, { attempts: options.attempts, payload: decided.payload });
        return storedForm(decided.outcome);
      },
      { log },
    );
  } catch (error) {
    // A refusal raised by the database itself (a constraint, a trigger) rolled the effect back;
    // it is still this command's outcome, so it is recorded, in a transaction of its own.
    const refusal = mapDatabaseError(error);
    if (!refusal || refusal.code === 'database_unavailable' || refusal.code === 'internal') throw error;
    log.info({ code: refusal.code, scope, key }, 'the database refused the command; recording the refusal as its outcome');
    return inTransaction(pool, (tx) => recordRefusal(tx, item, refusal));
  }
}

/** Records a refusal the database raised as the command's outcome (unless the key is gone or done). */
async function recordRefusal(tx: DatabaseTransaction, item: QueuedCommand, refusal: HaatError): Promise<Outcome | null> {
  const row = await lockKey(tx, item.scope, item.key);
  if (!row) return null;
  if (row.state === 'done') return outcomeOf(row);
  const outcome: Outcome = { ok: false, error: { code: refusal.code, message: refusal.message, details: refusal.details } };
  await recordOutcome(tx, item.scope, item.key, outcome, { attempts: item.attempts, payload: row.payload });
  return storedForm(outcome);
}

/** One command of a batch: its key and the job's attempt. */
export type QueuedCommand = { readonly scope: string; readonly key: string; readonly attempts?: number };

/**
 * What became of one command of a batch: its outcome (recorded now, or stored earlier; null for a
 * key that no longer exists), or the error applyCommand would have thrown for it alone
 * (MaintenanceHold, RetryLater, an infrastructure fault), with nothing of it written.
 */
export type QueuedResult = { readonly ok: true; readonly outcome: Outcome | null } | { readonly ok: false; readonly error: unknown };

/** The most commands one transaction of applyCommands holds with a savepoint each (64 subtransaction ids are cached). */
export const APPLY_SAVEPOINT_BATCH = 50;

/** Thrown inside the fast way to fall back to the careful one. */
class NeedsSavepoints extends Error {
  override name = 'NeedsSavepoints';
}

/**
 * Applies many stored commands, each exactly as applyCommand applies it alone — the same lock of its
 * key, maintenance check, handler, out-of-order wait and recorded outcome — but many per transaction:
 * - First (the fast way), all in one transaction without savepoints: the keys locked in one
 *   statement, then every order the commands name and every SKU they touch locked up front (keys,
 *   then orders by id, then SKUs in byte order: the order a single command locks in, so a batch and
 *   a single command never deadlock, nor two batches), maintenance read once, each command applied
 *   in arrival order, every outcome recorded in one statement, one commit. So a hot SKU's row is
 *   locked once and committed once for the whole batch.
 * - When any command raises (the database refused it, it waits for its order, a bug), that
 *   transaction is rolled back whole and the batch runs again the careful way: transactions of at
 *   most APPLY_SAVEPOINT_BATCH commands, each command under its own savepoint, so one that raises is
 *   rolled back alone and gets its own result (a refusal raised by the database is recorded as its
 *   outcome, as applyCommand records it) while the others commit.
 * A deadlock, a serialization failure or a lost connection re-runs the transaction (bounded).
 */
export async function applyCommands(
  pool: DatabasePool,
  items: readonly QueuedCommand[],
  log: Logger,
  options: ApplyOptions = {},
): Promise<QueuedResult[]> {
  if (items.length === 0) return [];
  if (items.length > 1 || (options.drain ?? 0) > 0) {
    try {
      const results = await inTransaction(pool, (tx) => inOneGo(tx, items, log, options), { log });
      return await Promise.all(
        results.map(async (result, i) => {
          if (result !== DEFERRED) return result;
          const item = items[i] as QueuedCommand;
          try {
            return {
              ok: true,
              outcome: await applyCommand(pool, item.scope, item.key, log, { ...options, attempts: item.attempts }),
            } as const;
          } catch (error) {
            return { ok: false, error } as const;
          }
        }),
      );
    } catch (error) {
      if (!(error instanceof NeedsSavepoints) && isRetryable(error)) throw error;
      log.debug(
        { err: error instanceof NeedsSavepoints ? error.cause : error },
        'a batch of commands raised; applying its own commands again, without the drained ones',
      );
      // The drained commands are left to their own jobs (whose failures and retries the queue
      // counts), so one that raises cannot stall every batch that drains it.
      if ((options.drain ?? 0) > 0) return applyCommands(pool, items, log, { ...options, drain: 0 });
    }
  }
  const results: QueuedResult[] = [];
  for (let i = 0; i < items.length; i += APPLY_SAVEPOINT_BATCH) {
    results.push(...(await oneByOne(pool, items.slice(i, i + APPLY_SAVEPOINT_BATCH), log, options)));
  }
  return results;
}

export type ApplyOptions = {
  readonly outOfOrderWindowMs?: number;
  /**
   * Also apply up to this many more due apply_command jobs waiting in the queue (not taken by any
   * worker), in the same transaction: their keys are locked SKIP LOCKED (a key another transaction
   * is applying is left to it), and each one applied has its job completed in that transaction. One
   * that does not apply now (held, early, failed) is left to its own job, untouched.
   */
  readonly drain?: number;
};

type Decided =
  | { readonly outcome: Outcome; readonly payload: unknown }
  | { readonly stored: Outcome | null }
  | { readonly hold: true }
  | { readonly early: RetryLater };

/** The decision for one locked key, as applyCommand makes it; throws what applyCommand would throw. */
async function decideOne(
  tx: DatabaseTransaction,
  item: QueuedCommand,
  row: KeyRow | null,
  maintenanceOn: boolean,
  log: Logger,
  options: ApplyOptions,
): Promise<Decided> {
  if (!row) return { stored: null };
  if (row.state === 'done') return { stored: outcomeOf(row) };
  if (maintenanceOn && !row.bypass_maintenance) return { hold: true };
  const mayBeEarly = item.scope.startsWith(WEBHOOK_SCOPE_PREFIX) && row.age_ms < (options.outOfOrderWindowMs ?? OUT_OF_ORDER_WINDOW_MS);
  const parsed = Command.safeParse({ type: row.command_type, payload: row.payload });
  const outcome: Outcome = parsed.success
    ? await handlerFor(parsed.data).apply(tx, parsed.data.payload as never, {
        command: { scope: item.scope, key: item.key },
        actor: row.actor,
        log,
        final: !mayBeEarly,
      })
    : {
        ok: false,
        error: { code: 'invalid_input', message: 'the stored command does not match its schema', details: { type: row.command_type } },
      };
  // An early event: its handler found no order to act on and wrote nothing (every handler checks
  // the order it names before its first write), so it is left for the queue to retry, alone.
  if (mayBeEarly && !outcome.ok && outcome.error.code === 'not_found' && typeof outcome.error.details.order === 'string') {
    return { early: new RetryLater(`order ${String(outcome.error.details.order)} not found yet; the queue will retry`) };
  }
  return { outcome, payload: row.payload };
}

/** Locks, in the order every writer locks in, the orders the commands name and the SKUs they touch. */
async function lockTargets(tx: DatabaseTransaction, rows: readonly KeyRow[]): Promise<void> {
  const orders = new Set<string>();
  const skus = new Set<string>();
  const shipments = new Set<string>();
  const returns = new Set<string>();
  for (const row of rows) {
    if (row.state === 'done' || row.payload === null || typeof row.payload !== 'object') continue;
    const p = row.payload as Record<string, unknown>;
    if (typeof p.order === 'string') orders.add(p.order);
    if (typeof p.sku === 'string') skus.add(p.sku);
    if (Array.isArray(p.items)) for (const i of p.items) if (typeof i?.sku === 'string') skus.add(i.sku);
    // A shipment or return named alone: its order is locked with the others, before any SKU.
    if (typeof p.order !== 'string' && typeof p.shipment === 'string') shipments.add(p.shipment);
    if (typeof p.return === 'string') returns.add(p.return);
  }
  if (shipments.size > 0 || returns.size > 0) {
    const s = [...shipments];
    const r = [...returns];
    const owners = await tx.anyFirst(sql.type(z.object({ id: z.string() }))`
      select order_id::text as id from shipments
      where ref = any(${sql.array(s, 'text')}) or tracking = any(${sql.array(s, 'text')}) or id = any(${sql.array(s.filter(isOrderId), 'uuid')})
      union
      select order_id::text from returns where ref = any(${sql.array(r, 'text')}) or id = any(${sql.array(r.filter(isOrderId), 'uuid')})`);
    for (const id of owners) orders.add(id);
  }
  const keys = [...orders];
  if (keys.length > 0) {
    const uuids = keys.filter(isOrderId);
    const named = await tx.anyFirst(sql.type(z.object({ sku: z.string() }))`
      with locked as (
        select id from orders
        where ref = any(${sql.array(keys, 'text')}) or id = any(${sql.array(uuids, 'uuid')})
        order by id for update
      )
      select distinct i.sku from order_items i join locked l on l.id = i.order_id`);
    for (const sku of named) skus.add(sku);
  }
  if (skus.size > 0) await lockStock(tx, [...skus]);
}

/**
 * Due apply_command jobs no worker holds, in graphile-worker's own order, except the commands named.
 * (Read from graphile-worker's table: its public view has no payload, which names the command. The
 * version is pinned; test/commands/apply-commands.test.ts drains through it.) The job rows are
 * locked SKIP LOCKED, as graphile-worker's own get_job locks them: until this transaction ends, no
 * worker takes these jobs and no other batch drains them. Only jobs never tried: a job that failed or
 * waited (an early event) keeps the queue's backoff, and is not drained again and again.
 */
async function drainable(tx: DatabaseTransaction, limit: number, except: readonly QueuedCommand[]) {
  return tx.any(sql.type(z.object({ id: z.string(), scope: z.string(), key: z.string(), attempts: z.number() }))`
    select j.id::text as id, j.payload->>'scope' as scope, j.payload->>'key' as key, j.attempts
    from graphile_worker._private_jobs j
    where j.is_available and j.run_at <= now() and j.attempts = 0
      and j.task_id = (select id from graphile_worker._private_tasks where identifier = ${APPLY_COMMAND_TASK})
      and j.key <> all(${sql.array(
        except.map((i) => jobKeyOf(i.scope, i.key)),
        'text',
      )})
    order by j.priority, j.run_at, j.id
    limit ${limit}
    for update of j skip locked`);
}

/** A command of the batch whose key another transaction held: applied (or found done) after the commit. */
const DEFERRED = Symbol('deferred');

async function inOneGo(
  tx: DatabaseTransaction,
  items: readonly QueuedCommand[],
  log: Logger,
  options: ApplyOptions,
): Promise<(QueuedResult | typeof DEFERRED)[]> {
  // SKIP LOCKED: a key another batch is applying (it drained it) is not waited for here, holding
  // this batch's locks; that command is looked at again once this batch has committed.
  const rows = new Map(
    (
      await lockKeys(
        tx,
        items.map((i) => [i.scope, i.key] as const),
        { skipLocked: true },
      )
    ).map((r) => [`${r.scope}:${r.key}`, r]),
  );
  // The maintenance row next, as a single command reads it (key, maintenance, order, SKUs).
  const maintenanceOn = await maintenanceOnForCommand(tx);
  // More of the queue, in the same transaction: only keys no one else holds, still to apply.
  const extras: (QueuedCommand & { readonly jobId: string })[] = [];
  const completed: string[] = [];
  if ((options.drain ?? 0) > 0 && !maintenanceOn) {
    const due = await drainable(tx, options.drain ?? 0, items);
    const free = await lockKeys(
      tx,
      due.map((j) => [j.scope, j.key] as const),
      { skipLocked: true },
    );
    for (const row of free) rows.set(`${row.scope}:${row.key}`, row);
    for (const job of due) {
      const row = rows.get(`${job.scope}:${job.key}`);
      if (row?.state === 'pending') extras.push({ scope: job.scope, key: job.key, attempts: job.attempts + 1, jobId: job.id });
      // A job whose command is done already (applied inline, say) would do nothing: it is completed.
      else if (row?.state === 'done') completed.push(job.id);
    }
  }
  await lockTargets(tx, [...rows.values()]);
  const results: (QueuedResult | typeof DEFERRED)[] = items.map(() => DEFERRED);
  const recorded: RecordedOutcome[] = [];
  const all: readonly (QueuedCommand & { readonly jobId?: string })[] = [...items, ...extras];
  const settle = (index: number, item: (typeof all)[number], decided: Decided) => {
    if ('hold' in decided) results[index] = { ok: false, error: new MaintenanceHold('maintenance mode is on: the command waits') };
    else if ('early' in decided) results[index] = { ok: false, error: decided.early };
    else if ('stored' in decided) results[index] = { ok: true, outcome: decided.stored };
    else {
      recorded.push({ scope: item.scope, key: item.key, outcome: decided.outcome, attempts: item.attempts, payload: decided.payload });
      results[index] = { ok: true, outcome: storedForm(decided.outcome) };
      if (item.jobId !== undefined) completed.push(item.jobId);
    }
  };
  // Placements that follow one another are decided together (applyPlaces: one read of the catalog
  // and the stock, one write of each kind of row for all of them), still in arrival order; any
  // other command ends the run first, so it sees the placements before it.
  let run: { index: number; item: (typeof all)[number]; row: KeyRow; payload: Placement['payload'] }[] = [];
  const flush = async () => {
    if (run.length === 0) return;
    const placed = run;
    run = [];
    const outcomes = await applyPlaces(
      tx,
      placed.map((p) => ({
        payload: p.payload,
        context: { command: { scope: p.item.scope, key: p.item.key }, actor: p.row.actor, final: true },
      })),
    );
    for (const [i, p] of placed.entries()) settle(p.index, p.item, { outcome: outcomes[i] as Outcome, payload: p.row.payload });
  };
  for (const [index, item] of all.entries()) {
    const row = rows.get(`${item.scope}:${item.key}`);
    if (!row) {
      results[index] = DEFERRED;
      continue;
    }
    try {
      if (row.state === 'pending' && (!maintenanceOn || row.bypass_maintenance) && row.command_type === 'order.place') {
        const parsed = Command.safeParse({ type: row.command_type, payload: row.payload });
        if (parsed.success && parsed.data.type === 'order.place') {
          run.push({ index, item, row, payload: parsed.data.payload });
          continue;
        }
      }
      await flush();
      settle(index, item, await decideOne(tx, item, row, maintenanceOn, log, options));
    } catch (error) {
      // Its effects (if any) cannot be undone alone here: the careful way gives it a savepoint.
      if (isRetryable(error)) throw error;
      throw new NeedsSavepoints('a command raised', { cause: error });
    }
  }
  try {
    await flush();
  } catch (error) {
    if (isRetryable(error)) throw error;
    throw new NeedsSavepoints('a placement raised', { cause: error });
  }
  await recordOutcomes(tx, recorded);
  // A drained job a worker took meanwhile is left to it: it finds its key done and does nothing.
  if (completed.length > 0) await tx.query(sql.unsafe`select count(*) from graphile_worker.complete_jobs(${sql.array(completed, 'int8')})`);
  if (extras.length > 0)
    log.debug({ commands: items.length, drained: completed.length }, 'applied a batch with commands drained from the queue');
  return results.slice(0, items.length);
}

async function oneByOne(pool: DatabasePool, items: readonly QueuedCommand[], log: Logger, options: ApplyOptions): Promise<QueuedResult[]> {
  return inTransaction(
    pool,
    async (tx) => {
      const results: QueuedResult[] = [];
      const keys = await lockKeys(
        tx,
        items.map((i) => [i.scope, i.key] as const),
      );
      const maintenanceOn = await maintenanceOnForCommand(tx);
      await lockTargets(tx, keys);
      for (const item of items) {
        try {
          const outcome = await tx.transaction(async (savepoint) => {
            const decided = await decideOne(savepoint, item, await lockKey(savepoint, item.scope, item.key), maintenanceOn, log, options);
            if ('hold' in decided) throw new MaintenanceHold('maintenance mode is on: the command waits');
            if ('early' in decided) throw decided.early;
            if ('stored' in decided) return decided.stored;
            await recordOutcome(savepoint, item.scope, item.key, decided.outcome, { attempts: item.attempts, payload: decided.payload });
            return storedForm(decided.outcome);
          });
          results.push({ ok: true, outcome });
        } catch (error) {
          if (isRetryable(error)) throw error;
          const refusal = mapDatabaseError(error);
          if (!refusal || refusal.code === 'database_unavailable' || refusal.code === 'internal') {
            results.push({ ok: false, error });
            continue;
          }
          log.info(
            { code: refusal.code, scope: item.scope, key: item.key },
            'the database refused the command; recording the refusal as its outcome',
          );
          const outcome = await tx.transaction((savepoint) => recordRefusal(savepoint, item, refusal));
          results.push({ ok: true, outcome });
        }
      }
      return results;
    },
    { log },
  );
}
