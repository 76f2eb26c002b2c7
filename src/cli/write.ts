// How every CLI write runs: parse the command (zod), take or make the idempotency key, submit it
// (claim + enqueue in one transaction), wait for the outcome and turn a refusal into its error.
import { randomUUID } from 'node:crypto';
import type { Command as Commander } from 'commander';
import { Command, IdempotencyKey } from '../domain/commands.ts';
import { HaatError, invalidInput } from '../errors.ts';
import type { Deps } from './context.ts';

export const CLI_SCOPE = 'cli';

export type WriteOptions = { readonly idempotencyKey?: string; readonly wait?: boolean };

/** The outcome's result; null when --no-wait returned before it (and printed the key). */
export type WriteResult = { readonly key: string; readonly result: unknown } | null;

/** Adds --idempotency-key and --no-wait to a write command. */
export function writeOptions(command: Commander): Commander {
  return command
    .option('--idempotency-key <key>', 'replay-safe key (printable ASCII, 1–255); made for you when omitted')
    .option('--no-wait', 'print the idempotency key and return without waiting for the outcome');
}

function bypassReason(deps: Deps): string {
  if (deps.globals.reason === undefined) throw invalidInput('--bypass-maintenance needs --reason <why>', { missing: 'reason' });
  return deps.globals.reason;
}

export async function runWrite(deps: Deps, input: { type: string; payload: unknown }, options: WriteOptions): Promise<WriteResult> {
  const command = Command.parse(input);
  const key = options.idempotencyKey === undefined ? `cli-${randomUUID()}` : IdempotencyKey.parse(options.idempotencyKey);
  if (options.idempotencyKey === undefined) deps.io.stderr.write(`idempotency key: ${key}\n`);
  // The write machinery (handlers, ledger, orders…) loads only when a write runs, not for a read of the same group.
  const { awaitOutcome, submitCommand } = await import('../commands/submit-command.ts');
  return deps.withDatabase(async (db) => {
    const submitted = await submitCommand(db.pool, {
      scope: CLI_SCOPE,
      key,
      command,
      actor: deps.globals.actor,
      ...(deps.globals.bypassMaintenance ? { bypassReason: bypassReason(deps) } : {}),
    });
    let outcome = submitted.outcome;
    if (!outcome) {
      if (options.wait === false) {
        deps.output.result(
          { idempotency_key: key, state: 'queued' },
          () => `queued: run the same command with --idempotency-key ${key} to see its outcome`,
        );
        return null;
      }
      outcome = await awaitOutcome(db.pool, CLI_SCOPE, key, {
        url: db.url,
        log: deps.log,
        timeoutMs: 30_000,
        inlineAfterMs: deps.config.waitForWorkerMs,
        workerStaleMs: 3 * deps.config.workerHeartbeatMs,
      });
    }
    if (!outcome.ok) throw new HaatError(outcome.error.code, outcome.error.message, outcome.error.details);
    return { key, result: outcome.result };
  });
}
