import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { RetryLater } from '../../src/commands/apply-command.ts';
import { sql } from '../../src/db/sql.ts';
import { bigintReplacer, createLogger } from '../../src/log.ts';
import { startWorker, type WorkerOptions } from '../../src/worker/run-worker.ts';
import { defineTask } from '../../src/worker/task.ts';
import { buildCronItems, haatCrontab, haatTasks } from '../../src/worker/tasks.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { memoryLog } from '../helpers/memory-log.ts';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const db = await createTestDatabase();

async function addJob(task: string, payload: unknown, maxAttempts = 3): Promise<string> {
  return db.pool.oneFirst(
    sql.type(
      z.object({ id: z.string() }),
    )`select (graphile_worker.add_job(${task}::text, ${sql.json(payload as never)}, max_attempts => ${maxAttempts})).id::text as id`,
  );
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The note the ping job recorded, once it has run. */
const pingNote = (jobId: string) =>
  db.pool
    .maybeOneFirst(sql.type(z.object({ note: z.string() }))`select note from worker_pings where job_id = ${jobId}`)
    .then((n) => n ?? undefined);

/** A worker on this file's database, polling fast; `options` overrides any default. */
const start = (options: Partial<WorkerOptions> = {}) =>
  startWorker({ url: db.url, pool: db.pool, log, concurrency: 2, pollIntervalMs: 100, ...options });

const jobCount = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs`);

describe('the worker', () => {
  test('runs a job from the queue: the ping task records that it ran', async () => {
    const worker = await start();
    try {
      const jobId = await addJob('ping', { note: 'hello' });
      const note = await waitFor('the ping', () => pingNote(jobId));
      assert.equal(note, 'hello');
      await waitFor('the job to complete', async () => ((await jobCount()) === 0n ? true : undefined));
      const ours = await db.pool.oneFirst(
        sql.type(z.object({ n: z.bigint() }))`
          select count(*) as n from pg_stat_activity where datname = current_database() and application_name = 'haat worker'`,
      );
      assert.ok(ours > 0n, "graphile-worker runs on haat's own connection pool");
    } finally {
      await worker.stop();
    }
  });

  test('records a poison payload in dead_letters once and completes the job instead of retrying it', async () => {
    const worker = await start({ concurrency: 1 });
    try {
      const jobId = await addJob('ping', { note: 42, unexpected: true });
      const error = await waitFor('the dead letter', () =>
        db.pool
          .maybeOneFirst(sql.type(z.object({ error: z.string() }))`select error from dead_letters where job_id = ${jobId}`)
          .then((e) => e ?? undefined),
      );
      assert.match(error, /note/);
      await waitFor('the job to be gone', async () => ((await jobCount()) === 0n ? true : undefined));
      const letters = await db.pool.oneFirst(
        sql.type(z.object({ n: z.bigint() }))`select count(*) as n from dead_letters where job_id = ${jobId}`,
      );
      assert.equal(letters, 1n);
    } finally {
      await worker.stop();
    }
  });

  test('graceful shutdown lets a running job finish and commit before stop() returns', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const slow = defineTask({
      identifier: 'test_slow',
      payload: z.object({ ms: z.number().int() }),
      run: async (payload, { pool, helpers }) => {
        started();
        await sleep(payload.ms);
        await pool.query(sql.unsafe`insert into worker_pings (job_id, note) values (${helpers.job.id}, 'slow finished')`);
      },
    });
    const worker = await start({ concurrency: 1, tasks: [...haatTasks, slow] });
    let jobId: string;
    try {
      jobId = await addJob('test_slow', { ms: 1_500 });
      await running;
    } finally {
      await worker.stop();
    }
    assert.equal(await pingNote(jobId), 'slow finished', 'the job ran to its end');
    const left = await db.pool.any(
      sql.type(
        z.object({ attempts: z.number(), locked_by: z.string().nullable() }),
      )`select attempts, locked_by from graphile_worker.jobs where id = ${jobId}::bigint`,
    );
    assert.deepEqual(left, [], 'the job completed: not failed, not left locked');
  });

  test('a job that does not finish within the grace period is failed at stop (to be retried), and stop() returns', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const stuck = defineTask({
      identifier: 'test_stuck',
      payload: z.object({}),
      // Ignores the abort signal, as a job wedged on I/O would.
      run: async () => {
        started();
        await new Promise(() => undefined);
      },
    });
    const worker = await start({ concurrency: 1, stopGraceMs: 500, tasks: [...haatTasks, stuck] });
    let jobId: string;
    try {
      jobId = await addJob('test_stuck', {});
      await running;
    } finally {
      await worker.stop();
    }
    const left = await db.pool.one(
      sql.type(
        z.object({ attempts: z.number(), locked_by: z.string().nullable(), last_error: z.string().nullable() }),
      )`select attempts, locked_by, last_error from graphile_worker.jobs where id = ${jobId}::bigint`,
    );
    assert.equal(left.locked_by, null, 'not left locked: another worker may take it');
    assert.equal(left.attempts, 1, 'the attempt counts');
    assert.match(left.last_error ?? '', /grace period over/);
    await db.pool.query(sql.unsafe`select graphile_worker.complete_jobs(array[${jobId}]::bigint[])`);
  });

  test('a runner that stops on its own while a job hangs is replaced after the grace period; the job is failed and retried', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let runs = 0;
    const hangsOnce = defineTask({
      identifier: 'test_hangs_once',
      payload: z.object({}),
      run: async (_payload, { pool, helpers }) => {
        runs++;
        if (runs === 1) {
          started();
          await new Promise(() => undefined); // ignores its abort signal
        }
        await pool.query(sql.unsafe`insert into worker_pings (job_id, note) values (${helpers.job.id}, 'second attempt')`);
      },
    });
    const worker = await start({ concurrency: 1, stopGraceMs: 500, tasks: [...haatTasks, hangsOnce] });
    try {
      const jobId = await addJob('test_hangs_once', {});
      await running;
      const first = worker.runner;
      void first.stop('simulating graphile-worker giving up'); // as it does on its own
      await waitFor('a new runner', async () => (worker.runner !== first ? true : undefined));
      // The failed attempt is retried after graphile-worker's backoff (e^1 s).
      await waitFor('the second attempt', () => pingNote(jobId));
      assert.equal(runs, 2);
    } finally {
      await worker.stop();
    }
  });

  test("a runner that stops because a job's completion failed is replaced promptly; that job runs once more, the others finish", async () => {
    // What graphile-worker does when it cannot record a completion (in the soak: a cut connection),
    // made certain with a one-shot trigger that refuses one job's delete, while two other jobs are
    // still running and finish during the shutdown.
    await db.pool.query(sql.unsafe`create table test_refuse_completion (job_id bigint primary key)`);
    // A sequence, not a row, counts the refusals: it is not rolled back with the refused delete.
    await db.pool.query(sql.unsafe`create sequence test_refusals`);
    await db.pool.query(sql.unsafe`
      create function test_refuse_completion() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from test_refuse_completion where job_id = old.id) and nextval('test_refusals') = 1 then
          raise exception 'completion refused by the test';
        end if;
        return old;
      end $$`);
    await db.pool.query(sql.unsafe`
      create trigger test_refuse_completion before delete on graphile_worker._private_jobs
        for each row execute function test_refuse_completion()`);
    const opens: (() => void)[] = [];
    const gates = [0, 1].map(() => new Promise<void>((resolve) => opens.push(resolve)));
    let running = 0;
    const quickRuns: string[] = [];
    const tasks = [
      ...haatTasks,
      defineTask({
        identifier: 'test_gate',
        payload: z.object({ gate: z.number().int() }),
        run: async ({ gate }) => {
          running++;
          await gates[gate];
        },
      }),
      defineTask({
        identifier: 'test_quick',
        payload: z.object({}),
        run: async (_payload, { helpers }) => {
          quickRuns.push(helpers.job.id);
        },
      }),
    ];
    const { lines, log: memory } = memoryLog();
    const worker = await start({ log: memory, concurrency: 3, stopGraceMs: 30_000, tasks });
    const openAll = () => {
      for (const open of opens) open();
    };
    try {
      await addJob('test_gate', { gate: 0 });
      await addJob('test_gate', { gate: 1 });
      await waitFor('both gate jobs running', async () => (running === 2 ? true : undefined));
      const first = worker.runner;
      await db.pool.query(sql.unsafe`
        insert into test_refuse_completion (job_id)
        select (graphile_worker.add_job('test_quick', '{}'::json)).id`);
      await waitFor('the refused completion', async () => (lines.some((l) => /Failed to complete jobs/.test(l.msg)) ? true : undefined));
      // The gate jobs now complete successfully, one after the other, during the shutdown.
      opens[0]?.();
      await sleep(100);
      opens[1]?.();
      await waitFor('a new runner', async () => (worker.runner !== first ? true : undefined), 15_000);
      assert.equal(worker.restarts, 1);
      assert.ok(!lines.some((l) => /did not finish its shutdown in time/.test(l.msg)), 'not held for the grace period');
      await waitFor('every job done', async () => ((await jobCount()) === 0n ? true : undefined));
      assert.equal(quickRuns.length, 2, 'the job whose completion was refused ran again, and once more only');
    } finally {
      openAll();
      await worker.stop();
      await db.pool.query(sql.unsafe`drop trigger test_refuse_completion on graphile_worker._private_jobs`);
      await db.pool.query(sql.unsafe`drop function test_refuse_completion()`);
      await db.pool.query(sql.unsafe`drop table test_refuse_completion`);
      await db.pool.query(sql.unsafe`drop sequence test_refusals`);
    }
  });

  test('a job that asks to be retried (an early event) is logged at info; a real failure, or its last attempt, at error', async () => {
    const { lines, log: memory } = memoryLog();
    const flaky = defineTask({
      identifier: 'test_flaky',
      payload: z.object({ kind: z.enum(['early', 'broken']) }),
      run: async (payload) => {
        throw payload.kind === 'early' ? new RetryLater('order S-1 not found yet') : new Error('disk on fire');
      },
    });
    const worker = await start({ log: memory, tasks: [...haatTasks, flaky] });
    let ids: string[] = [];
    try {
      ids = [
        await addJob('test_flaky', { kind: 'early' }),
        await addJob('test_flaky', { kind: 'broken' }),
        await addJob('test_flaky', { kind: 'early' }, 1), // its last attempt: a failure after all
      ];
      await waitFor('both attempts', async () =>
        (await db.pool.oneFirst(
          sql.type(
            z.object({ n: z.bigint() }),
          )`select count(*) as n from graphile_worker.jobs where task_identifier = 'test_flaky' and attempts = 1 and locked_at is null`,
        )) === 3n
          ? true
          : undefined,
      );
    } finally {
      await worker.stop();
      await db.pool.query(sql.unsafe`select graphile_worker.complete_jobs(array[${sql.join(ids, sql.fragment`, `)}]::bigint[])`);
    }
    const about = (id: string | undefined) =>
      lines.filter((l) => (l.jobId ?? l.job?.id) === id && (l.level >= 50 || /retried/.test(l.msg)));
    assert.deepEqual(
      about(ids[0]).map((l) => [l.level, l.msg]),
      [[30, 'job will be retried: order S-1 not found yet']],
    );
    const broken = about(ids[1]);
    assert.equal(broken.length, 1);
    assert.equal(broken[0]?.level, 50);
    assert.match(broken[0]?.msg ?? '', /Failed task .* with error 'disk on fire'/);
    const last = about(ids[2]);
    assert.deepEqual(
      last.map((l) => l.level),
      [50],
    );
    assert.match(last[0]?.msg ?? '', /attempt 1 of 1\) with error 'order S-1 not found yet'/);
  });

  test('keeps taking jobs after its database connections are terminated, again and again', async () => {
    // A cut can land while graphile-worker takes a job, records a completion (then its runner stops
    // and ours starts a new one) or (re)subscribes to new jobs (where it once released a connection
    // twice, an unhandled rejection that would end the process): the next job is taken every time.
    // The cuts land at varied moments after a job is added.
    // Keep the worker's log (debug) so that a failure says what the runner and the job were doing.
    const { lines, log: memory } = memoryLog();
    const worker = await start({ log: memory });
    const explain = async (error: unknown): Promise<never> => {
      const jobs = await db.pool
        .any(
          sql.unsafe`select id, task_identifier, attempts, max_attempts, run_at, locked_at, locked_by, last_error from graphile_worker.jobs`,
        )
        .catch((e: unknown) => `(could not read jobs: ${String(e)})`);
      throw new Error(
        `${String(error)}\nrestarts: ${worker.restarts}\njobs: ${JSON.stringify(jobs, bigintReplacer)}\nlast log lines:\n${lines
          .slice(-60)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
      );
    };
    try {
      for (let round = 1; round <= 12; round++) {
        if (round > 1) {
          await waitFor('the job to be added', () => addJob('ping', { note: `before cut ${round}` }).catch(() => undefined));
          await sleep((round * 7) % 40);
        }
        await db.pool
          .query(
            sql.unsafe`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`,
          )
          .catch(() => undefined);
        await sleep(300);
        const jobId = await waitFor('the job to be added', () => addJob('ping', { note: `after cut ${round}` }).catch(() => undefined));
        await waitFor(`the ping after cut ${round}`, () => pingNote(jobId).catch(() => undefined), 60_000).catch(explain);
      }
    } finally {
      await worker.stop();
    }
  });

  test('a runner that stops on its own (as graphile-worker does when it cannot record a completion) is replaced', async () => {
    const worker = await start({ concurrency: 1 });
    try {
      const first = worker.runner;
      await first.stop('simulating graphile-worker giving up');
      await waitFor('a new runner', async () => (worker.runner !== first ? true : undefined));
      assert.equal(worker.restarts, 1);
      const jobId = await addJob('ping', { note: 'after the restart' });
      const note = await waitFor('the ping', () => pingNote(jobId));
      assert.equal(note, 'after the restart');
    } finally {
      await worker.stop();
    }
    const beating = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from worker_heartbeats`);
    assert.equal(beating, 0n, 'every pool it ever ran is deregistered at stop');
    const locked = await db.pool.oneFirst(
      sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs where locked_by is not null`,
    );
    assert.equal(locked, 0n, 'nothing is left locked');
  });

  test('a runner that cannot look for jobs (its first lookup of task ids was cut) is replaced and the job is taken', async () => {
    // graphile-worker 0.18 caches the promise of its first task-id lookup for the runner's life; if
    // that lookup fails (57P01 is not an error it retries), every later lookup fails the same way.
    // Make it fail for certain: hold a lock the lookup waits on, then terminate the waiting backend.
    const worker = await db.pool.connect(async (connection) => {
      await connection.query(sql.unsafe`begin`);
      await connection.query(sql.unsafe`lock table graphile_worker._private_tasks in access exclusive mode`);
      const worker = await start({ wedgedAfterMs: 1_000 });
      const waiting = await waitFor('the lookup to wait on the lock', async () => {
        const pids = await db.pool.anyFirst(
          sql.type(z.object({ pid: z.number() }))`
            select pid from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and query like '%_private_tasks%'`,
        );
        return pids.length > 0 ? pids : undefined;
      });
      for (const pid of waiting) await db.pool.query(sql.unsafe`select pg_terminate_backend(${pid})`);
      await connection.query(sql.unsafe`rollback`);
      return worker;
    });
    try {
      const jobId = await addJob('ping', { note: 'after a failed first lookup' });
      const note = await waitFor('the ping', () => pingNote(jobId));
      assert.equal(note, 'after a failed first lookup');
      assert.ok(worker.restarts >= 1, 'the wedged runner was replaced');
    } finally {
      await worker.stop();
    }
  });

  test('every cron item names a task in the task list', () => {
    assert.doesNotThrow(() => buildCronItems(haatCrontab, haatTasks));
    assert.throws(
      () => buildCronItems([{ task: 'no_such_task', match: '* * * * *', backfillPeriod: 0, identifier: 'x' }], haatTasks),
      /unknown task no_such_task/,
    );
  });
});
