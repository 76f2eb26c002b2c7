// Runs graphile-worker with haat's task list and crontab. Signals are handled by the caller (the
// CLI shell) so that shutdown happens in order: stop taking jobs, finish running ones, then close
// the pool and, last, the embedded database.
import { EventEmitter } from 'node:events';
import { type Runner, run, type WorkerEvents, Logger as WorkerLogger, type WorkerPool } from 'graphile-worker';
import { graphileLogFactory } from '../db/graphile-logger.ts';
import { DOMAIN_FLAG } from '../db/idempotency.ts';
import { maintenanceStatus } from '../db/operations.ts';
import type { DatabasePool } from '../db/pool.ts';
import { createWorkerPgPool } from '../db/worker-pg-pool.ts';
import { heartbeat, releaseStoppedPools, unlockDeadWorkers } from '../db/workers.ts';
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
  /**
   * How long stop() lets running jobs finish before it fails them (they are retried, by this
   * worker's successor or another one); a job that ignores its abort signal cannot hold a shutdown
   * forever.
   */
  readonly stopGraceMs?: number;
  /**
   * A runner whose workers have failed to look for jobs for this long, error after error, is
   * replaced. (graphile-worker 0.18 caches a failed first lookup of its task ids for the life of
   * the runner: a connection cut at that moment leaves a runner that never takes a job again.)
   */
  readonly wedgedAfterMs?: number;
};

export type RunningWorker = {
  /** The graphile-worker runner now in use (a new one after a restart). */
  readonly runner: Runner;
  /** How many times the runner stopped on its own and was started again. */
  readonly restarts: number;
  /** Stops taking jobs and waits for running ones to finish. */
  stop(): Promise<void>;
};

/**
 * Backoff between restarts of a runner that stopped on its own: 1 s, doubling, at most 10 s. A
 * cut connection stops a runner now and then; that is no reason to stay idle for long, so a runner
 * that lived a while is restarted after the minimum again. Only runners that keep dying at once,
 * or cannot start (the database is down), wait longer.
 */
const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 10_000;
/** A runner that lived this long resets the backoff. */
const HEALTHY_AFTER_MS = 10_000;
/** Bound on waiting for a forceful shutdown, after the grace period. */
const KILL_WAIT_MS = 10_000;

const timeout = (ms: number) =>
  new Promise<'timeout'>((resolve) => {
    setTimeout(() => resolve('timeout'), ms).unref();
  });

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const tasks = options.tasks ?? haatTasks;
  const log = options.log.child({ component: 'worker' });
  // Pool ids of the live runner, heartbeated; a dead runner's ids stop beating, so the sweep of
  // any worker frees the jobs it left locked.
  const poolIds = new Set<string>();
  const everyPoolId = new Set<string>();
  const startRunner = async (): Promise<{ runner: Runner; ids: Set<string>; workerPools: WorkerPool[]; end: () => Promise<void> }> => {
    const pgPool = createWorkerPgPool({ url: options.url, max: options.concurrency + 2, log });
    // Ends the runner's connections once it has stopped; bounded, since a connection graphile-worker
    // never gave back would hold pg's end() forever.
    const end = async () => {
      const ended = await Promise.race([pgPool.end().then(() => 'ended' as const), timeout(5_000)]).catch(() => 'ended' as const);
      if (ended === 'timeout') log.warn('the stopped runner still holds a connection; leaving it');
    };
    const events = new EventEmitter() as WorkerEvents;
    const ids = new Set<string>();
    const workerPools: WorkerPool[] = [];
    // The watchdog: a successful lookup (a job, or none) proves the runner can work; failures
    // alone for `wedgedAfterMs` mean it cannot, whatever the cause, and a new runner is the cure.
    const wedgedAfterMs = options.wedgedAfterMs ?? 15_000;
    let lastLookupAt = Date.now();
    let replacing = false;
    const lookedUp = () => {
      lastLookupAt = Date.now();
    };
    events.on('worker:getJob:empty', lookedUp);
    events.on('job:start', lookedUp);
    events.on('worker:getJob:error', ({ error }) => {
      const failingForMs = Date.now() - lastLookupAt;
      if (replacing || failingForMs < wedgedAfterMs) return;
      replacing = true;
      log.error({ err: error, failingForMs }, 'the job runner has failed to look for jobs for too long; replacing it');
      void starting.then((r) => r.stop('it cannot look for jobs')).catch(() => undefined);
    });
    events.on('pool:create', ({ workerPool }) => {
      workerPools.push(workerPool);
      ids.add(workerPool.id);
      poolIds.add(workerPool.id);
      everyPoolId.add(workerPool.id);
    });
    const starting = run({
      events,
      pgPool,
      // While maintenance mode is on, domain jobs stay queued: not taken, no attempt used.
      forbiddenFlags: async () => ((await maintenanceStatus(options.pool).catch(() => ({ enabled: false }))).enabled ? [DOMAIN_FLAG] : []),
      concurrency: options.concurrency,
      noHandleSignals: true,
      pollInterval: options.pollIntervalMs ?? 2_000,
      taskList: buildTaskList(tasks, options.pool, log),
      parsedCronItems: buildCronItems(options.crontab ?? haatCrontab, tasks),
      logger: new WorkerLogger(graphileLogFactory(log)),
      // Batch (delay 0) so completions and failures in flight are awaited at shutdown; unbatched, a
      // graceful stop can end the pool before a finished job is marked complete, leaving it locked.
      preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    });
    const runner = await starting.catch(async (error: unknown) => {
      await end();
      throw error;
    });
    return { runner, ids, workerPools, end };
  };

  let current = await startRunner();
  let restarts = 0;
  let stopping: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  /** Pool ids of runners that stopped, whose leftovers are not released yet (retried each beat). */
  const stopped = new Set<string>();

  const heartbeatMs = options.heartbeatMs ?? 10_000;
  const beat = async () => {
    try {
      if (stopped.size > 0) {
        const ids = [...stopped];
        await releaseStoppedPools(options.pool, ids);
        for (const id of ids) stopped.delete(id);
      }
      await heartbeat(options.pool, [...poolIds]);
      const unlocked = await unlockDeadWorkers(options.pool, heartbeatMs * 3);
      if (unlocked.length > 0) log.warn({ workers: unlocked }, 'unlocked the jobs of workers that stopped heartbeating');
    } catch (error) {
      log.warn({ err: error }, 'heartbeat failed');
    }
  };

  const sleepUnlessStopping = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping !== undefined) return resolve();
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      wake = undefined;
    });

  // graphile-worker shuts a runner down by itself when it cannot record a job's completion or
  // failure (e.g. its connections were terminated past its retries). The process must not stay up
  // with no runner: release what the dead one left locked, start a new one (with backoff), until
  // stop() is called.
  const supervise = async (): Promise<void> => {
    let delay = RESTART_MIN_MS;
    for (;;) {
      const { runner, ids, end } = current;
      const startedAt = Date.now();
      const reason = await runner.promise.then(
        () => 'stopped',
        (error: unknown) => String(error),
      );
      if (stopping !== undefined) return;
      await end();
      for (const id of ids) {
        poolIds.delete(id);
        stopped.add(id);
      }
      if (Date.now() - startedAt > HEALTHY_AFTER_MS) delay = RESTART_MIN_MS;
      log.error({ reason, restartInMs: delay }, 'the job runner stopped on its own; starting a new one');
      for (;;) {
        await sleepUnlessStopping(delay);
        delay = Math.min(delay * 2, RESTART_MAX_MS);
        if (stopping !== undefined) return;
        try {
          current = await startRunner();
          restarts++;
          break;
        } catch (error) {
          log.error({ err: error, restartInMs: delay }, 'could not start the job runner; retrying');
        }
      }
      if (stopping !== undefined) return; // stop() stops `current`, whichever it is by then
      await beat(); // register the new pool now, and release the old one's jobs
    }
  };
  const supervising = supervise();

  await beat();
  const timer = setInterval(() => void beat(), heartbeatMs);
  timer.unref();
  return {
    get runner() {
      return current.runner;
    },
    get restarts() {
      return restarts;
    },
    stop: () => {
      stopping ??= (async () => {
        clearInterval(timer);
        wake?.();
        const graceMs = options.stopGraceMs ?? 60_000;
        const stopRunner = async ({ runner: r, workerPools, end }: typeof current) => {
          const finished = r.stop('haat is shutting down').then(
            () => r.promise,
            () => r.promise,
          );
          const outcome = await Promise.race([
            finished.then(
              () => 'stopped' as const,
              () => 'stopped' as const,
            ),
            timeout(graceMs),
          ]);
          if (outcome === 'timeout') {
            log.error({ graceMs }, 'running jobs did not finish in time; failing them so that they are retried');
            // (Runner.kill() does nothing once a graceful shutdown is under way; the pool's does.)
            const forced = workerPools.map(async (pool) => pool.forcefulShutdown('haat is shutting down: grace period over'));
            await Promise.race([Promise.allSettled(forced), timeout(KILL_WAIT_MS)]);
          }
          await end();
        };
        const running = current;
        await stopRunner(running);
        await supervising; // returns now; a restart that was in progress has finished or given up
        if (current !== running) await stopRunner(current);
        // Every runner this process ran has stopped: release anything left locked, deregister.
        await releaseStoppedPools(options.pool, [...everyPoolId]).catch((error: unknown) =>
          log.warn({ err: error }, 'could not deregister; the sweep of other workers will release any locked job'),
        );
      })();
      return stopping;
    },
  };
}
