// A worker process SIGKILLed while a delivery's request is in flight (the receiver holds it open):
// nothing is lost. The delivery stays pending with its job; once the dead worker is found (its
// heartbeats stop), another worker attempts it again and it is delivered, signed, same webhook-id.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import { sql } from '../../src/db/sql.ts';
import { inTransaction } from '../../src/db/transaction.ts';
import { addEndpoint } from '../../src/db/webhooks-out.ts';
import { haatBin, repoRoot } from '../helpers/cli.ts';
import { assertReconciles, createTestDatabase } from '../helpers/db.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { mustApply, seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { LAMP: 10 });

function worker(): ChildProcess {
  return spawn(process.execPath, [haatBin, 'worker', '--concurrency', '2'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url, HAAT_WORKER_HEARTBEAT_MS: '300', LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('a worker killed mid-delivery', () => {
  test('SIGKILL while the request is in flight: delivered afterwards by another worker, nothing lost', async () => {
    const receiver = await startReceiver(['hang']);
    after(() => receiver.close());
    const endpoint = await inTransaction(db.pool, (tx) =>
      addEndpoint(
        tx,
        { url: receiver.url, events: ['order.*'], description: null, allowPrivate: true },
        { actor: 'test', reason: 'crash test' },
      ),
    );
    await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b', ref: 'K-1', items: [{ sku: 'LAMP', qty: '1' }] } });
    const first = worker();
    try {
      await receiver.waitFor('the request in flight', (got) => got.length >= 1, 30_000);
      first.kill('SIGKILL');
      await exited(first);
    } finally {
      first.kill('SIGKILL');
    }
    const state = () =>
      db.pool.one(sql.type(z.object({ state: z.string(), attempts: z.number() }))`
        select state, attempts from webhook_deliveries where endpoint_id = ${endpoint.id}`);
    assert.deepEqual(await state(), { state: 'pending', attempts: 0 }, 'visibly pending: the attempt never completed');
    receiver.script([{ status: 204 }]);
    const second = worker();
    try {
      const deadline = Date.now() + 60_000;
      while ((await state()).state !== 'delivered') {
        assert.ok(Date.now() < deadline, 'delivered by the second worker within 60 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(await state(), { state: 'delivered', attempts: 1 });
      assert.equal(receiver.received.length, 2, 'sent twice: at least once, never lost');
      assert.equal(receiver.received[0]?.id, receiver.received[1]?.id, 'the same webhook-id both times');
      assert.ok(receiver.received.every((r) => r.verifiedWith(endpoint.secret)));
      const jobsLeft = async () =>
        db.pool.oneFirst(
          sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs where task_identifier = 'deliver_webhook'`,
        );
      for (let d = Date.now() + 20_000; (await jobsLeft()) > 0n && Date.now() < d; ) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await jobsLeft(), 0n, 'no delivery job left behind');
      await assertReconciles(db.pool, 'after the crash');
    } finally {
      second.kill('SIGTERM');
      await exited(second);
    }
  });
});
