// Runs graphile-worker with haat's task list and crontab. Signals are handled by the caller (the
// CLI shell) so that shutdown happens in order: stop taking jobs, finish running ones, then close
// the pool and, last, the embedded database.
import { type Runner, run, Logger as WorkerLogger } from 'graphile-worker';
import { graphileLogFactory } from '../db/graphile-logger.ts';
import type { DatabasePool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { type AnyTask, buildCronItems, buildTaskList, type CronItem, haatCrontab, haatTasks } from './tasks.ts';

export type WorkerOptions = {
  readonly url: string;
  readonly pool: DatabasePool;
  readonly log: Logger;
  readonly concurrency: number;
  readonly tasks?: readonly AnyTask[];
  readonly crontab?: readonly CronItem[];
  readonly pollIntervalMs?: number;
};

export type RunningWorker = {
  readonly runner: Runner;
  /** Stops taking jobs and waits for running ones to finish. */
  stop(): Promise<void>;
};

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const tasks = options.tasks ?? haatTasks;
  const log = options.log.child({ component: 'worker' });
  const runner = await run({
    connectionString: options.url,
    concurrency: options.concurrency,
    maxPoolSize: options.concurrency + 2,
    noHandleSignals: true,
    pollInterval: options.pollIntervalMs ?? 2_000,
    taskList: buildTaskList(tasks, options.pool, log),
    parsedCronItems: buildCronItems(options.crontab ?? haatCrontab, tasks),
    logger: new WorkerLogger(graphileLogFactory(log)),
    // Batch (delay 0) so completions and failures in flight are awaited at shutdown; unbatched, a
    // graceful stop can end the pool before a finished job is marked complete, leaving it locked.
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  });
  let stopping: Promise<void> | undefined;
  return {
    runner,
    stop: () => {
      stopping ??= runner.stop('haat is shutting down').then(() => runner.promise.catch(() => undefined));
      return stopping;
    },
  };
}
