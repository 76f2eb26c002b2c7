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

type Waiting = { readonly command: QueuedCommand; resolve(result: QueuedResult): void };

export function createCommandBatcher(pool: DatabasePool, log: Logger, options: CommandBatcherOptions = {}): CommandBatcher {
  const lingerMs = options.lingerMs ?? 2;
  const maxBatch = options.maxBatch ?? 50;
  const maxInFlight = options.maxInFlight ?? 4;
  let waiting: Waiting[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight = 0;

  const run = async (batch: readonly Waiting[]) => {
    try {
      // The batch is topped up from the queue: due commands no worker has taken yet.
      const results = await applyCommands(
        pool,
        batch.map((w) => w.command),
        log,
        { drain: maxBatch - batch.length },
      );
      for (const [i, w] of batch.entries()) w.resolve(results[i] as QueuedResult);
    } catch (error) {
      // The transaction itself failed (after its retries): every command of it is retried by the queue.
      for (const w of batch) w.resolve({ ok: false, error });
    }
  };

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    while (waiting.length > 0 && inFlight < maxInFlight) {
      const batch = waiting.slice(0, maxBatch);
      waiting = waiting.slice(maxBatch);
      inFlight++;
      void run(batch).finally(() => {
        inFlight--;
        if (waiting.length > 0) flush();
      });
    }
  };

  return {
    apply: (command) =>
      new Promise<QueuedResult>((resolve) => {
        waiting.push({ command, resolve });
        if (waiting.length >= maxBatch) flush();
        else if (timer === undefined && inFlight < maxInFlight) timer = setTimeout(flush, lingerMs);
      }),
  };
}
