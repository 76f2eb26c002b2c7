// Applies many commands in one transaction, each with its own outcome (docs/design.md, The one write
// path). For each command: claim its key (claimKeys: the insert claimKeyAndEnqueue makes, without a
// job, since the command is applied at once) or find the key already there, run its handler's apply
// (handlers.ts, the one implementation of each rule, exactly as applyCommand runs it) and record the
// outcome on the key, all before the commit. So a command commits with its outcome or not at all, and a
// key that is done is never applied again. A refusal the handler decides is the command's recorded
// outcome. Two ways, the same effects:
// - First, the whole batch in one transaction without savepoints: one statement claims every key,
//   one records every outcome (recordOutcomes). When nothing raises (a handler returns refusals, it
//   does not throw them), that is all.
// - When anything raises, that transaction is rolled back whole and the batch runs again the careful
//   way, in transactions of at most SAVEPOINT_BATCH commands with a savepoint each (claim, apply and
//   recordOutcome inside it). There a refusal raised by the database (a constraint, a trigger) rolls
//   its command back to the savepoint and is then recorded as its outcome, as applyCommand records
//   it; anything else (a bug, a payload the database cannot store) rolls back to the savepoint and
//   records nothing: the key stays free, the item is reported `failed` and logged, the rest commits.
//   Savepoints only then: a backend caches 64 subtransaction ids, and past that every session's
//   snapshots look subtransactions up in pg_subtrans until the transaction ends.
// A deadlock, a serialization failure or a lost connection re-runs the transaction (bounded).
// Maintenance mode is read FOR SHARE in each transaction (a toggle waits for it, as for any command):
// while it is on nothing is written (MaintenanceHold) unless the batch runs with a bypass reason; then
// each key it claims is marked bypass_maintenance and audited the way submitCommand audits a bypass
// (action maintenance.bypass, target command:<scope>:<key>, in the same transaction).
// Locks: each handler takes its row locks as always and the batch holds them until it commits, so
// give the commands in ascending order of the SKUs they lock (the order every writer locks in).
// Webhook scopes are refused: their out-of-order retries and event outcomes live in applyCommand.
import { isRetryable, mapDatabaseError } from '../db/errors.ts';
import {
  claimKey,
  claimKeys,
  type KeyRow,
  lockKey,
  lockKeys,
  outcomeOf,
  recordOutcome,
  recordOutcomes,
  storedForm,
  WEBHOOK_SCOPE_PREFIX,
} from '../db/idempotency.ts';
import { audit, maintenanceOnForCommand } from '../db/operations.ts';
import type { DatabasePool, DatabaseTransaction } from '../db/pool.ts';
import { inTransaction } from '../db/transaction.ts';
import { Command, fingerprint, type Outcome, type OutcomeError } from '../domain/commands.ts';
import { InvariantError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { MaintenanceHold } from './apply-command.ts';
import { handlerFor } from './handlers.ts';
import { refuse } from './outcome.ts';

/** The most commands one batch may hold. */
export const MAX_BATCH = 500;
/** The most commands in one transaction with a savepoint each: under the 64 subtransaction ids cached. */
export const SAVEPOINT_BATCH = 50;

export type BatchItem = {
  readonly scope: string;
  readonly key: string;
  /** {type, payload}: parsed here by the command schema, as a stored command is. */
  readonly command: { readonly type: string; readonly payload: unknown };
  readonly actor: string;
};

export type BatchResult =
  /** Applied by this batch; the outcome (a result or a refusal) is recorded on the key. */
  | { readonly status: 'applied'; readonly outcome: Outcome }
  /** The key was done already: its stored outcome, nothing applied. */
  | { readonly status: 'replayed'; readonly outcome: Outcome }
  /** Not applied and nothing recorded: the key holds another command (idempotency_conflict). */
  | { readonly status: 'conflict'; readonly error: OutcomeError }
  /** Not applied and nothing recorded: an unexpected error rolled it back (logged). */
  | { readonly status: 'failed'; readonly error: OutcomeError };

export type BatchOptions = {
  readonly log: Logger;
  /** --bypass-maintenance with its reason: the batch runs while maintenance is on, audited per key. */
  readonly bypassReason?: string;
};

type Context = { readonly log: Logger; readonly bypassReason: string | undefined };

const idOf = (scope: string, key: string) => `${scope}:${key}`;

export async function applyBatch(pool: DatabasePool, items: readonly BatchItem[], options: BatchOptions): Promise<readonly BatchResult[]> {
  if (items.length > MAX_BATCH) throw new InvariantError(`a batch holds at most ${MAX_BATCH} commands, not ${items.length}`);
  const ids = new Set<string>();
  for (const item of items) {
    if (item.scope.startsWith(WEBHOOK_SCOPE_PREFIX)) throw new InvariantError(`applyBatch does not apply webhook commands (${item.scope})`);
    const id = idOf(item.scope, item.key);
    if (ids.has(id)) throw new InvariantError(`the key ${id} is twice in one batch`);
    ids.add(id);
  }
  if (items.length === 0) return [];
  try {
    return await inTransaction(pool, (tx) => inOneGo(tx, items, options), { log: options.log });
  } catch (error) {
    if (error instanceof MaintenanceHold || isRetryable(error)) throw error;
    options.log.debug({ err: error }, 'the batch raised; applying it again with a savepoint for each command');
  }
  const results: BatchResult[] = [];
  for (let i = 0; i < items.length; i += SAVEPOINT_BATCH) {
    const chunk = items.slice(i, i + SAVEPOINT_BATCH);
    results.push(...(await inTransaction(pool, (tx) => oneByOne(tx, chunk, options), { log: options.log })));
  }
  return results;
}

/** Whether maintenance holds the batch (throws), and the bypass reason when one is used. */
async function contextIn(tx: DatabaseTransaction, options: BatchOptions): Promise<Context> {
  const maintenance = await maintenanceOnForCommand(tx);
  if (maintenance && options.bypassReason === undefined) throw new MaintenanceHold('maintenance mode is on: the batch waits');
  return { log: options.log, bypassReason: maintenance ? options.bypassReason : undefined };
}

function auditBypass(tx: DatabaseTransaction, item: BatchItem, reason: string): Promise<void> {
  return audit(tx, {
    actor: item.actor,
    action: 'maintenance.bypass',
    target: `command:${item.scope}:${item.key}`,
    oldValue: null,
    newValue: { type: item.command.type, payload: item.command.payload },
    reason,
  });
}

/** What an existing key means for its command: another command's, done already, or still to apply. */
function existingKey(item: BatchItem, print: string, row: KeyRow): BatchResult | { readonly actor: string } {
  if (row.fingerprint !== print) {
    return {
      status: 'conflict',
      error: refuse('idempotency_conflict', `idempotency key ${item.key} was used for another command`, {
        idempotency_key: item.key,
        original_type: row.command_type,
      }),
    };
  }
  const stored = outcomeOf(row);
  // Claimed earlier and not applied yet (say, a queued job): applied here, as applyCommand would.
  return stored ? { status: 'replayed', outcome: stored } : { actor: row.actor };
}

/** The fast way: one transaction, no savepoints; anything that raises rolls the whole batch back. */
async function inOneGo(tx: DatabaseTransaction, items: readonly BatchItem[], options: BatchOptions): Promise<BatchResult[]> {
  const context = await contextIn(tx, options);
  const bypass = context.bypassReason !== undefined;
  const prints = items.map((item) => fingerprint(item.command as Command));
  const claimed = await claimKeys(
    tx,
    items.map((item, i) => ({ ...item, fingerprint: prints[i] ?? '', bypassMaintenance: bypass })),
  );
  const others = items.filter((item) => !claimed.has(idOf(item.scope, item.key)));
  const existing = new Map(
    (
      await lockKeys(
        tx,
        others.map((item) => [item.scope, item.key] as const),
      )
    ).map((row) => [idOf(row.scope, row.key), row]),
  );
  const results: BatchResult[] = [];
  const recorded: { scope: string; key: string; outcome: Outcome }[] = [];
  for (const [i, item] of items.entries()) {
    const id = idOf(item.scope, item.key);
    let actor = item.actor;
    if (!claimed.has(id)) {
      const row = existing.get(id);
      if (!row) throw new Error(`idempotency key ${id} vanished while claiming it`);
      const found = existingKey(item, prints[i] ?? '', row);
      if ('status' in found) {
        results.push(found);
        continue;
      }
      actor = found.actor;
    } else if (context.bypassReason !== undefined) {
      await auditBypass(tx, item, context.bypassReason);
    }
    const outcome = await decide(tx, item, actor, context.log);
    recorded.push({ scope: item.scope, key: item.key, outcome });
    results.push({ status: 'applied', outcome: storedForm(outcome) });
  }
  await recordOutcomes(tx, recorded);
  return results;
}

/** The careful way: a savepoint for each command, so that one that raises leaves the others be. */
async function oneByOne(tx: DatabaseTransaction, items: readonly BatchItem[], options: BatchOptions): Promise<BatchResult[]> {
  const context = await contextIn(tx, options);
  const results: BatchResult[] = [];
  for (const item of items) {
    const print = fingerprint(item.command as Command);
    try {
      results.push(await tx.transaction((savepoint) => claimApplyRecord(savepoint, item, print, context, null)));
    } catch (error) {
      // Rolled back to its savepoint. A fault of the transaction itself runs it again.
      if (isRetryable(error)) throw error;
      const refusal = mapDatabaseError(error);
      if (refusal && refusal.code !== 'database_unavailable' && refusal.code !== 'internal') {
        context.log.info(
          { code: refusal.code, scope: item.scope, key: item.key },
          'the database refused the command; recording the refusal as its outcome',
        );
        const outcome: Outcome = { ok: false, error: { code: refusal.code, message: refusal.message, details: refusal.details } };
        results.push(await tx.transaction((savepoint) => claimApplyRecord(savepoint, item, print, context, outcome)));
        continue;
      }
      context.log.error(
        { err: error, scope: item.scope, key: item.key },
        'a command of the batch failed unexpectedly: rolled back, nothing recorded',
      );
      const message = error instanceof Error ? error.message : String(error);
      results.push({ status: 'failed', error: refuse('internal', `unexpected failure: ${message}`, { idempotency_key: item.key }) });
    }
  }
  return results;
}

/** Claims or finds the key, then applies the command (or records `decided`, a refusal already known). */
async function claimApplyRecord(
  tx: DatabaseTransaction,
  item: BatchItem,
  print: string,
  context: Context,
  decided: Outcome | null,
): Promise<BatchResult> {
  let actor = item.actor;
  if (await claimKey(tx, { ...item, fingerprint: print, bypassMaintenance: context.bypassReason !== undefined })) {
    if (context.bypassReason !== undefined) await auditBypass(tx, item, context.bypassReason);
  } else {
    const row = await lockKey(tx, item.scope, item.key);
    if (!row) throw new Error(`idempotency key ${idOf(item.scope, item.key)} vanished while claiming it`);
    const found = existingKey(item, print, row);
    if ('status' in found) return found;
    actor = found.actor;
  }
  const outcome = decided ?? (await decide(tx, item, actor, context.log));
  await recordOutcome(tx, item.scope, item.key, outcome);
  return { status: 'applied', outcome: storedForm(outcome) };
}

/** The command's outcome by its handler, as applyCommand decides it (a command that does not parse is refused). */
async function decide(tx: DatabaseTransaction, item: BatchItem, actor: string, log: Logger): Promise<Outcome> {
  const parsed = Command.safeParse(item.command);
  if (!parsed.success) {
    return {
      ok: false,
      error: { code: 'invalid_input', message: 'the command does not match its schema', details: { type: item.command.type } },
    };
  }
  return handlerFor(parsed.data).apply(tx, parsed.data.payload as never, {
    command: { scope: item.scope, key: item.key },
    actor,
    log,
    final: true,
  });
}
