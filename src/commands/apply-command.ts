// Applies one stored command: lock its key row, run its handler, record the outcome — all in one
// transaction. The worker's apply_command task and the CLI's inline fallback both call this; it is
// safe to run any number of times (a finished key returns its stored outcome and does nothing).
import { mapDatabaseError } from '../db/errors.ts';
import { lockKey, outcomeOf, recordOutcome, storedForm, WEBHOOK_SCOPE_PREFIX } from '../db/idempotency.ts';
import { maintenanceOnForCommand } from '../db/operations.ts';
import type { DatabasePool } from '../db/pool.ts';
import { inTransaction } from '../db/transaction.ts';
import { Command, type Outcome } from '../domain/commands.ts';
import type { Logger } from '../log.ts';
import { handlerFor } from './handlers.ts';

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
  try {
    return await inTransaction(
      pool,
      async (tx) => {
        const row = await lockKey(tx, scope, key);
        if (!row) return null;
        if (row.state === 'done') return outcomeOf(row);
        if ((await maintenanceOnForCommand(tx)) && !row.bypass_maintenance) {
          throw new MaintenanceHold('maintenance mode is on: the command waits');
        }
        // Upstream events may arrive before the order they name; CLI commands never wait.
        const mayBeEarly = scope.startsWith(WEBHOOK_SCOPE_PREFIX) && row.age_ms < (options.outOfOrderWindowMs ?? OUT_OF_ORDER_WINDOW_MS);
        const parsed = Command.safeParse({ type: row.command_type, payload: row.payload });
        const outcome: Outcome = parsed.success
          ? await handlerFor(parsed.data).apply(tx, parsed.data.payload as never, {
              command: { scope, key },
              actor: row.actor,
              log,
              final: !mayBeEarly,
            })
          : {
              ok: false,
              error: {
                code: 'invalid_input',
                message: 'the stored command does not match its schema',
                details: { type: row.command_type },
              },
            };
        // Only a command that names an order (a string) waits for it; a placement's refusal carries the
        // rejected order itself, and is final.
        if (mayBeEarly && !outcome.ok && outcome.error.code === 'not_found' && typeof outcome.error.details.order === 'string') {
          throw new RetryLater(`order ${String(outcome.error.details.order)} not found yet; the queue will retry`);
        }
        await recordOutcome(tx, scope, key, outcome, { attempts: options.attempts, payload: row.payload });
        return storedForm(outcome);
      },
      { log },
    );
  } catch (error) {
    // A refusal raised by the database itself (a constraint, a trigger) rolled the effect back;
    // it is still this command's outcome, so it is recorded, in a transaction of its own.
    const refusal = mapDatabaseError(error);
    if (!refusal || refusal.code === 'database_unavailable' || refusal.code === 'internal') throw error;
    log.info({ code: refusal.code, scope, key }, 'the database refused the command; recording the refusal as its outcome');
    return inTransaction(pool, async (tx) => {
      const row = await lockKey(tx, scope, key);
      if (!row) return null;
      if (row.state === 'done') return outcomeOf(row);
      const outcome: Outcome = { ok: false, error: { code: refusal.code, message: refusal.message, details: refusal.details } };
      await recordOutcome(tx, scope, key, outcome, { attempts: options.attempts, payload: row.payload });
      return storedForm(outcome);
    });
  }
}
