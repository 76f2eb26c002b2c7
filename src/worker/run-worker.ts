// Runs graphile-worker with haat's task list and crontab. Signals are handled by the caller (the
// CLI shell) so that shutdown happens in order: stop taking jobs, finish running ones, then close
// the pool and, last, the embedded database.
import { EventEmitter } from 'node:events';
import { type Runner, run, type WorkerEvents, Logger as WorkerLogger } from 'graphile-worker';
import { graphileLogFactory } from '../db/graphile-logger.ts';
import { DOMAIN_FLAG } from '../db/idempotency.ts';
import { maintenanceStatus } from '../db/operations.ts';
import type { DatabasePool } from '../db/pool.ts';
import { forget, heartbeat, unlockDeadWorkers } from '../db/workers.ts';
import type { Logger } from '../log.ts';
import { type AnyTask, buildCronItems, buildTaskList, type CronItem, haatCrontab, haatTasks } from './tasks.ts';

export type WorkerOptions = {
  /** How often this worker heartbeats and looks for dead workers; dead = silent for 3 intervals. */
  readonly heartbeatMs?: number;
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
  const events = new EventEmitter() as WorkerEvents;
  const poolIds = new Set<string>();
  events.on('pool:create', ({ workerPool }) => poolIds.add(workerPool.id));
  const runner = await run({
    events,
    // While maintenance mode is on, domain jobs stay queued: not taken, no attempt used.
    forbiddenFlags: async () => ((await maintenanceStatus(options.pool).catch(() => ({ enabled: false }))).enabled ? [DOMAIN_FLAG] : []),
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
  const heartbeatMs = options.heartbeatMs ?? 10_000;
  const beat = async () => {
    try {
      await heartbeat(options.pool, [...poolIds]);
      const unlocked = await unlockDeadWorkers(options.pool, heartbeatMs * 3);
      if (unlocked.length > 0) log.warn({ workers: unlocked }, 'unlocked the jobs of workers that stopped heartbeating');
    } catch (error) {
      log.warn({ err: error }, 'heartbeat failed');
    }
  };
  await beat();
  const timer = setInterval(() => void beat(), heartbeatMs);
  timer.unref();
  let stopping: Promise<void> | undefined;
  return {
    runner,
    stop: () => {
      stopping ??= (async () => {
        clearInterval(timer);
        await runner.stop('haat is shutting down');
        await runner.promise.catch(() => undefined);
        await forget(options.pool, [...poolIds]).catch((error: unknown) => log.warn({ err: error }, 'could not deregister'));
      })();
      return stopping;
    },
  };
}
