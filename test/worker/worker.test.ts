import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { sql } from '../../src/db/sql.ts';
import { createLogger } from '../../src/log.ts';
import { startWorker } from '../../src/worker/run-worker.ts';
import { defineTask } from '../../src/worker/task.ts';
import { buildCronItems, haatCrontab, haatTasks } from '../../src/worker/tasks.ts';
import { createTestDatabase } from '../helpers/db.ts';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const db = await createTestDatabase();

async function addJob(task: string, payload: unknown): Promise<string> {
  return db.pool.oneFirst(
    sql.type(
      z.object({ id: z.string() }),
    )`select (graphile_worker.add_job(${task}::text, ${sql.json(payload as never)}, max_attempts => 3)).id::text as id`,
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

const jobCount = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs`);

describe('the worker', () => {
  test('runs a job from the queue: the ping task records that it ran', async () => {
    const worker = await startWorker({ url: db.url, pool: db.pool, log, concurrency: 2, pollIntervalMs: 100 });
    try {
      const jobId = await addJob('ping', { note: 'hello' });
      const note = await waitFor('the ping', () =>
        db.pool
          .maybeOneFirst(sql.type(z.object({ note: z.string() }))`select note from worker_pings where job_id = ${jobId}`)
          .then((n) => n ?? undefined),
      );
      assert.equal(note, 'hello');
      await waitFor('the job to complete', async () => ((await jobCount()) === 0n ? true : undefined));
    } finally {
      await worker.stop();
    }
  });

  test('records a poison payload in dead_letters once and completes the job instead of retrying it', async () => {
    const worker = await startWorker({ url: db.url, pool: db.pool, log, concurrency: 1, pollIntervalMs: 100 });
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
    const worker = await startWorker({ url: db.url, pool: db.pool, log, concurrency: 1, pollIntervalMs: 100, tasks: [...haatTasks, slow] });
    let jobId: string;
    try {
      jobId = await addJob('test_slow', { ms: 1_500 });
      await running;
    } finally {
      await worker.stop();
    }
    const note = await db.pool.maybeOneFirst(
      sql.type(z.object({ note: z.string() }))`select note from worker_pings where job_id = ${jobId}`,
    );
    assert.equal(note, 'slow finished', 'the job ran to its end');
    const left = await db.pool.any(
      sql.type(
        z.object({ attempts: z.number(), locked_by: z.string().nullable() }),
      )`select attempts, locked_by from graphile_worker.jobs where id = ${jobId}::bigint`,
    );
    assert.deepEqual(left, [], 'the job completed: not failed, not left locked');
  });

  test('every cron item names a task in the task list', () => {
    assert.doesNotThrow(() => buildCronItems(haatCrontab, haatTasks));
    assert.throws(
      () => buildCronItems([{ task: 'no_such_task', match: '* * * * *', backfillPeriod: 0, identifier: 'x' }], haatTasks),
      /unknown task no_such_task/,
    );
  });
});
