// The boundary half of the one write path: validate, claim the idempotency key and enqueue the
// job in one transaction, then wait for the outcome. If no worker picks the job up, apply it here
// with the same code (applyCommand) so an operator is never stuck behind an empty queue.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { claimKeyAndEnqueue, findKey, jobLocked, type KeyRow, OUTCOME_CHANNEL, outcomeOf, removeJob } from '../db/idempotency.ts';
import { audit, maintenanceStatus } from '../db/operations.ts';
import type { DatabasePool } from '../db/pool.ts';
import { inTransaction } from '../db/transaction.ts';
import { anyWorkerAlive } from '../db/workers.ts';
import { type Command, fingerprint, type Outcome } from '../domain/commands.ts';
import { HaatError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { applyCommand } from './apply-command.ts';
import { handlerFor } from './handlers.ts';

export type Submission = {
  readonly scope: string;
  readonly key: string;
  readonly command: Command;
  readonly actor: string;
  /** --bypass-maintenance with its reason: the command runs while maintenance is on, audited. */
  readonly bypassReason?: string;
};

export type SubmitResult = { readonly replay: boolean; readonly outcome: Outcome | null };

function conflict(submission: Submission, existing: KeyRow): HaatError {
  return new HaatError('idempotency_conflict', `idempotency key ${submission.key} was used for another command`, {
    idempotency_key: submission.key,
    original_type: existing.command_type,
  });
}

/**
 * Claims the key and enqueues the command, or finds the earlier command with the same key.
 * Throws idempotency_conflict for a reused key with other input, and the precheck's refusal
 * (nothing stored) for a command that is refused before it is accepted.
 */
export async function submitCommand(pool: DatabasePool, submission: Submission): Promise<SubmitResult> {
  const print = fingerprint(submission.command);
  const existing = await findKey(pool, submission.scope, submission.key);
  if (existing) {
    if (existing.fingerprint !== print) throw conflict(submission, existing);
    return { replay: true, outcome: outcomeOf(existing) };
  }
  const maintenance = await maintenanceStatus(pool);
  if (maintenance.enabled && submission.bypassReason === undefined) {
    throw new HaatError(
      'maintenance_mode',
      `maintenance mode is on${maintenance.message ? `: ${maintenance.message}` : ''}; retry with --bypass-maintenance --reason <why>`,
      {
        message: maintenance.message,
      },
    );
  }
  const refusal = await handlerFor(submission.command).precheck(pool, submission.command.payload as never);
  if (refusal) throw new HaatError(refusal.code, refusal.message, refusal.details);
  const bypass = maintenance.enabled && submission.bypassReason !== undefined;
  const claimed = await inTransaction(pool, async (tx) => {
    const claimedNow = await claimKeyAndEnqueue(tx, { ...submission, fingerprint: print, bypassMaintenance: bypass });
    if (claimedNow && bypass) {
      await audit(tx, {
        actor: submission.actor,
        action: 'maintenance.bypass',
        target: `command:${submission.scope}:${submission.key}`,
        oldValue: null,
        newValue: { type: submission.command.type, payload: submission.command.payload },
        reason: submission.bypassReason ?? '',
      });
    }
    return claimedNow;
  });
  if (claimed) return { replay: false, outcome: null };
  // Someone claimed the same key between our read and our insert.
  const raced = await findKey(pool, submission.scope, submission.key);
  if (!raced) throw new Error('idempotency key vanished while claiming it');
  if (raced.fingerprint !== print) throw conflict(submission, raced);
  return { replay: true, outcome: outcomeOf(raced) };
}

export type WaitOptions = {
  readonly url: string;
  readonly log: Logger;
  /** Give up (the command stays queued) after this long. */
  readonly timeoutMs: number;
  /** Apply inline when no worker has taken the job after this long. */
  readonly inlineAfterMs: number;
  /**
   * A worker silent for this long is dead. With none alive the command is applied here at once,
   * instead of after inlineAfterMs. Unset: always wait inlineAfterMs.
   */
  readonly workerStaleMs?: number;
};

/** Waits for a command's outcome: LISTEN for the worker's notification, with polling as backstop. */
export async function awaitOutcome(pool: DatabasePool, scope: string, key: string, options: WaitOptions): Promise<Outcome> {
  const noWorker = options.workerStaleMs !== undefined && !(await anyWorkerAlive(pool, options.workerStaleMs));
  // With no worker alive the command is applied here at once: nothing to listen for.
  const listener = noWorker ? null : new pg.Client({ connectionString: options.url });
  let wake: () => void = () => undefined;
  listener?.on('notification', (message) => {
    if (message.payload === `${scope}:${key}`) wake();
  });
  listener?.on('error', () => wake());
  let listening = false;
  try {
    if (listener) {
      await listener.connect();
      await listener.query(`listen ${OUTCOME_CHANNEL}`);
      listening = true;
    }
  } catch (error) {
    options.log.debug({ err: error }, 'LISTEN unavailable; polling for the outcome');
  }
  const started = Date.now();
  const inlineAfterMs = noWorker ? 0 : options.inlineAfterMs;
  try {
    for (;;) {
      const row = await findKey(pool, scope, key);
      const outcome = row ? outcomeOf(row) : null;
      if (outcome) return outcome;
      const elapsed = Date.now() - started;
      if (elapsed >= inlineAfterMs && !(await jobLocked(pool, scope, key))) {
        options.log.debug({ scope, key }, 'no worker took the command; applying it here');
        const applied = await applyCommand(pool, scope, key, options.log);
        if (applied) {
          await removeJob(pool, scope, key).catch((error: unknown) =>
            options.log.debug({ err: error }, 'could not remove the applied job'),
          );
          return applied;
        }
      }
      if (elapsed >= options.timeoutMs) {
        throw new HaatError(
          'internal',
          `no outcome yet for ${key}: it is queued; run the same command with --idempotency-key ${key} to see it`,
          {
            idempotency_key: key,
            state: 'queued',
          },
        );
      }
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(listening ? 1_000 : 200, undefined, { ref: false })]);
    }
  } finally {
    await listener?.end().catch(() => undefined);
  }
}
