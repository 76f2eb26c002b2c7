// Group application for apply_command jobs. graphile-worker runs many apply_command jobs at once in
// one worker process; each job hands its key to the batcher and waits. The batcher gathers the keys
// that arrive within a linger (or until a batch is full) and applies them with applyCommands: many
// commands per transaction, each with its own outcome, and each job then completes or fails with
// exactly the result it would have had alone (so retries, maintenance holds and the out-of-order
// wait are the queue's, per job, as before). Each batch is topped up to maxBatch with due commands
// still waiting in the queue (applyCommands' drain), whose jobs it completes in its transaction: so
// a backlog is applied up to maxBatch commands per transaction whatever the worker's concurrency.
import { applyCommands, type QueuedCommand, type QueuedResult } from '../commands/apply-command.ts';
import type { DatabasePool } from '../db/pool.ts';
import { createGroupCommit } from '../group-commit.ts';
import type { Logger } from '../log.ts';

export type CommandBatcherOptions = {
  /** How long the first command of a batch waits for others (ms). */
  readonly lingerMs?: number;
  /** The most commands in one transaction. */
  readonly maxBatch?: number;
  /** The most transactions applying commands at once. */
  readonly maxInFlight?: number;
};

export type CommandBatcher = { apply(command: QueuedCommand): Promise<QueuedResult> };

export function createCommandBatcher(pool: DatabasePool, log: Logger, options: CommandBatcherOptions = {}): CommandBatcher {
  const maxBatch = options.maxBatch ?? 50;
  const batches = createGroupCommit<QueuedCommand, QueuedResult>(
    async (commands) => {
      try {
        // The batch is topped up from the queue: due commands no worker has taken yet.
        const results = await applyCommands(pool, commands, log, { drain: maxBatch - commands.length });
        return results.map((value) => ({ ok: true, value }));
      } catch (error) {
        // The transaction itself failed (after its retries): every command of it is retried by the queue.
        return commands.map(() => ({ ok: true, value: { ok: false, error } }));
      }
    },
    { lingerMs: options.lingerMs ?? 2, maxBatch, maxInFlight: options.maxInFlight ?? 4 },
  );
  return { apply: (command) => batches.submit(command) };
}
