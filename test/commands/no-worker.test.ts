// A CLI write with no worker alive is applied by the CLI at once, whatever HAAT_WAIT_FOR_WORKER_MS
// says: the wait is for a worker that exists. With a worker alive, the worker applies it.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { z } from 'zod';
import { sql } from '../../src/db/sql.ts';
import { startWorker } from '../../src/worker/run-worker.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 1 });
// Longer than the CLI's own 30 s limit on waiting: if it waited for a worker, it would fail.
const env = { DATABASE_URL: db.url, HAAT_WAIT_FOR_WORKER_MS: '600000' };
const onHand = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = 'TEA-1KG'`);

test('with no worker alive, a write is applied by the CLI at once and leaves no job behind', async () => {
  const result = await runCli(['stock', 'receive', 'TEA-1KG', '2', '--json'], { env });
  assert.equal(result.code, 0, result.stdout);
  assert.equal(JSON.parse(result.stdout).on_hand, 3);
  assert.equal(await onHand(), 3n);
  const jobs = await db.pool.oneFirst(
    sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs where key like 'cmd:cli:%'`,
  );
  assert.equal(jobs, 0n);
});

test('a stale heartbeat is no worker: still applied at once', async () => {
  await db.pool.query(sql.unsafe`
    insert into worker_heartbeats (worker_id, pid, host, heartbeat_at) values ('gone', 1, 'nowhere', now() - interval '1 hour')`);
  const result = await runCli(['stock', 'receive', 'TEA-1KG', '1', '--json'], { env });
  assert.equal(result.code, 0, result.stdout);
  assert.equal(await onHand(), 4n);
  await db.pool.query(sql.unsafe`delete from worker_heartbeats where worker_id = 'gone'`);
});

test('with a worker alive, the worker applies it and the CLI prints its outcome', async () => {
  const worker = await startWorker({ url: db.url, pool: db.pool, log: silent, concurrency: 1, pollIntervalMs: 100, heartbeatMs: 1000 });
  after(() => worker.stop());
  for (;;) {
    const alive = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from worker_heartbeats`);
    if (alive > 0n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const result = await runCli(['stock', 'receive', 'TEA-1KG', '1', '--json'], { env: { ...env, HAAT_WORKER_HEARTBEAT_MS: '1000' } });
  assert.equal(result.code, 0, result.stdout);
  assert.equal(await onHand(), 5n);
  await worker.stop();
});
