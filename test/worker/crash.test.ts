// Crash safety with real processes: 100 signed webhooks (and duplicates) while a worker process is
// SIGKILLed mid-stream and another takes over. Every event ends with exactly one outcome, no order
// is placed twice, and invariants 1–5 (docs/invariants.md) hold.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { inventoryViolations } from '../../src/db/inventory.ts';
import { orderViolations } from '../../src/db/orders.ts';
import { sql } from '../../src/db/sql.ts';
import { haatBin, repoRoot } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestIntake } from '../helpers/intake.ts';
import { seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { LAST: 60 });
const intake = await startTestIntake(db.pool);

function worker(): ChildProcess {
  return spawn(process.execPath, [haatBin, 'worker', '--concurrency', '4'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url, HAAT_WORKER_HEARTBEAT_MS: '300', LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function post(i: number): Promise<number> {
  const id = `evt_crash_${i}`;
  const body = JSON.stringify({
    type: 'order.placed',
    timestamp: '2026-11-25T10:00:00Z',
    data: { ref: `K-${i}`, buyer: `b-${i}`, currency: 'INR', items: [{ sku: 'LAST', qty: 1 }] },
  });
  return intake.send('storefront', id, body);
}

const done = () =>
  db.pool.oneFirst(
    sql.type(z.object({ n: z.bigint() }))`select count(*) as n from idempotency_keys where scope = 'webhook:storefront' and state = 'done'`,
  );

describe('a worker killed mid-stream', () => {
  test('100 events, duplicates, SIGKILL and restart: one outcome each, no duplicate order, invariants hold', async (t) => {
    const first = worker();
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push(await post(i));
    for (let deadline = Date.now() + 30_000; (await done()) < 10n && Date.now() < deadline; ) await sleep(20);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const doneAtKill = await done();
    const lockedByTheDead = await db.pool.oneFirst(
      sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs where locked_at is not null`,
    );
    t.diagnostic(`killed with ${doneAtKill} of 50 done and ${lockedByTheDead} jobs locked by the dead worker`);
    for (let i = 50; i < 100; i++) statuses.push(await post(i));
    for (let i = 0; i < 100; i += 5) statuses.push(await post(i)); // redeliveries
    const second = worker();
    try {
      for (let deadline = Date.now() + 60_000; (await done()) < 100n && Date.now() < deadline; ) await sleep(100);
      assert.equal(await done(), 100n, `every event has its outcome (${doneAtKill} were done when the first worker died)`);
      assert.equal(statuses.filter((s) => s === 202).length, 100);
      assert.equal(statuses.filter((s) => s === 200).length, 20);
      const orders = await db.pool.one(sql.type(
        z.object({ total: z.bigint(), refs: z.bigint(), pending: z.bigint(), rejected: z.bigint() }),
      )`
        select count(*) as total, count(distinct ref) as refs,
               count(*) filter (where state = 'pending') as pending, count(*) filter (where state = 'rejected') as rejected
        from orders`);
      assert.deepEqual(orders, { total: 100n, refs: 100n, pending: 60n, rejected: 40n });
      assert.deepEqual(await inventoryViolations(db.pool), []);
      assert.deepEqual(await orderViolations(db.pool), []);
      // A job the dead worker held, whose command its last batch had applied (its completion died
      // with it), is freed once the dead worker is found (three silent heartbeats), then finds its
      // key done and completes: none is left behind, failed or locked.
      const jobs = () =>
        db.pool.oneFirst(
          sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs where task_identifier = 'apply_command'`,
        );
      for (let deadline = Date.now() + 30_000; (await jobs()) > 0n && Date.now() < deadline; ) await sleep(100);
      assert.equal(await jobs(), 0n, 'no job left behind, failed or locked');
    } finally {
      second.kill('SIGTERM');
      assert.equal(await new Promise((resolve) => second.once('exit', resolve)), 0, 'the second worker stops cleanly');
    }
  });
});
