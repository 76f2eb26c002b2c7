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
import { createCommandBatcher } from './command-batcher.ts';
import { type AnyTask, buildCronItems, buildTaskList, type CronItem, DELIVERY_TASKS, haatCrontab, haatTasks } from './tasks.ts';

export type WorkerOptions = {
  /** How often this worker heartbeats and looks for dead workers; dead = silent for 3 intervals. */
  readonly heartbeatMs?: number;
  readonly url: string;
  readonly pool: DatabasePool;
  readonly log: Logger;
  readonly concurrency: number;
  /** Outbound webhook attempts run at once, in the delivery lane (default 8). */
  readonly deliveryConcurrency?: number;
  readonly tasks?: readonly AnyTask[];
  readonly crontab?: readonly CronItem[];
  readonly pollIntervalMs?: number;
  /**
   * How long a runner that is shutting down (asked to by stop(), or on its own) lets running jobs
   * finish before it fails them (they are retried, by this worker's next runner or another
   * worker): a job that ignores its abort signal cannot hold a shutdown, or a restart, forever.
   */
  readonly stopGraceMs?: number;
  /**
   * A runner whose workers have failed to look for jobs for this long, error after error with no
   * success between, is replaced. (graphile-worker 0.18 caches a failed first lookup of its task ids for the life of
   * the runner: a connection cut at that moment leaves a runner that never takes a job again.)
   */
  readonly wedgedAfterMs?: number;
};

export type RunningWorker = {
  /** The graphile-worker runner now in use (a new one after a restart). */
  readonly runner: Runner;
  /** How many times the runner stopped on its own and was started again. */
  readonly restarts: number;
  /** Stops taking jobs and waits (up to the grace period) for running ones to finish. */
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
/**
 * The grace period of a runner that stops on its own (at most; stopGraceMs if shorter): it is
 * broken, and the process takes no job until it is replaced, so its running jobs (short, and
 * retried if failed) get less time than at an operator's stop. In a 300 s soak, one such runner
 * never ended its shutdown although no job of ours could have been running.
 */
const RESTART_GRACE_MS = 15_000;
/** The most commands a worker applies in one transaction (command-batcher.ts). */
const COMMANDS_PER_TRANSACTION = 200;
/** Bound on waiting for a forceful shutdown, after the grace period. */
const KILL_WAIT_MS = 10_000;
/** Bound on ending a stopped runner's connections. */
const END_WAIT_MS = 5_000;

/** `promise`, or 'timeout' after `ms`; the timer keeps the process alive while it runs, and no longer. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

type RunnerEntry = {
  readonly runner: Runner;
  /** Its graphile-worker pool ids (as registered for heartbeats and unlocking). */
  readonly ids: Set<string>;
  readonly workerPools: WorkerPool[];
  /** Settles when the runner begins to shut down, whoever asked, or has stopped. */
  readonly shuttingDown: Promise<void>;
  /** Ends its node-postgres pool. */
  readonly end: () => Promise<void>;
  /** Set once by finish(). */
  finishing?: Promise<void>;
};

/**
 * A worker: two lanes, each its own graphile-worker runner with its own connections, supervisor
 * and heartbeats. The command lane runs every task but deliveries, with the crontab, held by
 * maintenance mode; the delivery lane runs outbound webhook attempts only (HTTP, up to 15 s each),
 * so a slow receiver never takes a slot from the commands, and deliveries go on in maintenance
 * (they change nothing in the domain).
 */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const tasks = options.tasks ?? haatTasks;
  const commandTasks = tasks.filter((t) => !DELIVERY_TASKS.has(t.identifier));
  const deliveryTasks = tasks.filter((t) => DELIVERY_TASKS.has(t.identifier));
  const commands = await startLane(options, {
    lane: 'commands',
    tasks: commandTasks,
    crontab: options.crontab ?? haatCrontab,
    holdInMaintenance: true,
  });
  if (deliveryTasks.length === 0) return commands;
  let deliveries: RunningWorker;
  try {
    deliveries = await startLane(
      { ...options, concurrency: options.deliveryConcurrency ?? 8 },
      { lane: 'deliveries', tasks: deliveryTasks, crontab: [], holdInMaintenance: false },
    );
  } catch (error) {
    await commands.stop();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    get runner() {
      return commands.runner;
    },
    get restarts() {
      return commands.restarts + deliveries.restarts;
    },
    stop: () => (stopping ??= Promise.all([commands.stop(), deliveries.stop()]).then(() => undefined)),
  };
}

type Lane = {
  readonly lane: 'commands' | 'deliveries';
  readonly tasks: readonly AnyTask[];
  readonly crontab: readonly CronItem[];
  /** Whether maintenance mode holds this lane's domain jobs (forbiddenFlags). */
  readonly holdInMaintenance: boolean;
};

async function startLane(options: WorkerOptions, lane: Lane): Promise<RunningWorker> {
  const tasks = lane.tasks;
  const log = options.log.child({ component: 'worker', lane: lane.lane });
  const graceMs = options.stopGraceMs ?? 60_000;
  const wedgedAfterMs = options.wedgedAfterMs ?? 15_000;
  // Pool ids of the live runner, heartbeated; a dead runner's ids stop beating, so the sweep of
  // any worker frees the jobs it left locked.
  const poolIds = new Set<string>();
  const everyPoolId = new Set<string>();

  // Every apply_command job of this process goes through one batcher: the jobs running at once share
  // a transaction, which also drains more due commands from the queue (command-batcher.ts).
  const commands = createCommandBatcher(options.pool, log, { maxInFlight: options.concurrency, maxBatch: COMMANDS_PER_TRANSACTION });

  const startRunner = async (): Promise<RunnerEntry> => {
    const pgPool = createWorkerPgPool({ url: options.url, max: options.concurrency + 2, log });
    // Bounded: a connection graphile-worker never gave back would hold pg's end() forever.
    const end = async () => {
      const ended = await within(
        pgPool.end().then(
          () => 'ended',
          () => 'ended', // ended already
        ),
        END_WAIT_MS,
      );
      if (ended === 'timeout') log.warn('the stopped runner still holds a connection; leaving it');
    };
    const events = new EventEmitter() as WorkerEvents;
    const ids = new Set<string>();
    const workerPools: WorkerPool[] = [];
    let shutDown!: () => void;
    const shuttingDown = new Promise<void>((resolve) => (shutDown = resolve));
    events.on('pool:gracefulShutdown', () => shutDown());
    events.on('pool:forcefulShutdown', () => shutDown());
    // The watchdog: a successful lookup (a job, or none) proves the runner can work; lookups that
    // have failed without a success between for `wedgedAfterMs` mean it cannot, whatever the
    // cause, and a new runner is the cure.
    let failingSince: number | undefined;
    let replacing = false;
    const lookedUp = () => {
      failingSince = undefined;
    };
    events.on('worker:getJob:empty', lookedUp);
    events.on('job:start', lookedUp);
    events.on('worker:getJob:error', ({ error }) => {
      failingSince ??= Date.now();
      const failingForMs = Date.now() - failingSince;
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
      forbiddenFlags: lane.holdInMaintenance
        ? async () => ((await maintenanceStatus(options.pool).catch(() => ({ enabled: false }))).enabled ? [DOMAIN_FLAG] : [])
        : undefined,
      concurrency: options.concurrency,
      noHandleSignals: true,
      pollInterval: options.pollIntervalMs ?? 2_000,
      taskList: buildTaskList(tasks, options.pool, log, commands),
      parsedCronItems: buildCronItems(lane.crontab, tasks),
      logger: new WorkerLogger(graphileLogFactory(log)),
      // Batch (delay 0) so completions and failures in flight are awaited at shutdown; unbatched, a
      // graceful stop can end the pool before a finished job is marked complete, leaving it locked.
      preset: {
        worker: {
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
    });
    const runner = await starting.catch(async (error: unknown) => {
      await end();
      throw error;
    });
    runner.promise.then(shutDown, shutDown);
    return { runner, ids, workerPools, shuttingDown, end };
  };

  /**
   * Brings a runner to a stop, bounded: asks it to stop (when `reason` is given), lets running jobs
   * finish for the grace period, then fails those still running (they are retried), and ends its
   * connections. Once per runner; later calls share the first.
   */
  const finish = (entry: RunnerEntry, reason?: string, grace = graceMs): Promise<void> =>
    (entry.finishing ??= (async () => {
      if (reason !== undefined) entry.runner.stop(reason).catch(() => undefined); // already stopping
      const stopped = entry.runner.promise.then(
        () => 'stopped',
        () => 'stopped',
      );
      if ((await within(stopped, grace)) === 'timeout') {
        log.error(
          { graceMs: grace },
          'the runner did not finish its shutdown in time; failing any job still running so that it is retried',
        );
        // (Runner.kill() does nothing once a graceful shutdown is under way; the pool's does.)
        const forced = entry.workerPools.map(async (pool) => pool.forcefulShutdown('grace period over'));
        await within(Promise.allSettled(forced), KILL_WAIT_MS);
      }
      await entry.end();
    })());

  let current = await startRunner();
  let restarts = 0;
  let stopping: Promise<void> | undefined;
  let stopRequested!: () => void;
  const stopRequest = new Promise<void>((resolve) => (stopRequested = resolve));
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
  // failure (e.g. its connections were terminated past its retries), and the watchdog above does
  // when it cannot look for jobs. The process must not stay up with no runner: bring the old one to
  // a stop (bounded), release what it left locked, start a new one (with backoff), until stop().
  const supervise = async (): Promise<void> => {
    let delay = RESTART_MIN_MS;
    for (;;) {
      const entry = current;
      const startedAt = Date.now();
      await Promise.race([entry.shuttingDown, stopRequest]);
      if (stopping !== undefined) return; // stop() finishes `current`
      await finish(entry, undefined, Math.min(graceMs, RESTART_GRACE_MS));
      if (stopping !== undefined) return;
      for (const id of entry.ids) {
        poolIds.delete(id);
        stopped.add(id);
      }
      if (Date.now() - startedAt > HEALTHY_AFTER_MS) delay = RESTART_MIN_MS;
      log.error({ restartInMs: delay }, 'the job runner stopped on its own; starting a new one');
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
      // A runner started while stop() was under way: stop() may have finished `current` before
      // it changed, so this one is finished here.
      if (stopping !== undefined) return finish(current, 'haat is shutting down');
      await beat(); // register the new pool now, and release the old one's jobs
    }
  };
  const supervising = supervise().catch((error: unknown) => log.error({ err: error }, 'the job runner supervisor failed'));

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
        stopRequested();
        wake?.();
        const first = current;
        await finish(first, 'haat is shutting down');
        // The supervisor returns at once, unless a restart is under way: that one is bounded by
        // the connection timeout, and the runner it starts is finished by the supervisor itself.
        await within(supervising, graceMs);
        if (current !== first) await finish(current, 'haat is shutting down');
        // Every runner this process ran has stopped: release anything left locked, deregister.
        await releaseStoppedPools(options.pool, [...everyPoolId]).catch((error: unknown) =>
          log.warn({ err: error }, 'could not deregister; the sweep of other workers will release any locked job'),
        );
      })();
      return stopping;
    },
  };
}
