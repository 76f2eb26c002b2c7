import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { committedMigrations } from '../../src/db/migrate.ts';
import { createDatabasePool } from '../../src/db/pool.ts';
import { startIntake } from '../../src/intake/server.ts';
import { createLogger } from '../../src/log.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { databaseProxy } from '../helpers/proxy.ts';

const log = createLogger('silent');
const db = await createTestDatabase();
const noSecrets = { storefront: [], payments: [], logistics: [] };
const expectedMigration = (await committedMigrations()).at(-1);

describe('the intake', () => {
  test('answers /healthz, 404 for an unknown path and 405 with Allow for a wrong method', async () => {
    const intake = await startIntake({ pool: db.pool, log, expectedMigration, secrets: noSecrets, port: 0, host: '127.0.0.1' });
    try {
      const health = await fetch(`${intake.url}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const missing = await fetch(`${intake.url}/nope`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
      const wrong = await fetch(`${intake.url}/readyz`, { method: 'POST', body: '{}' });
      assert.equal(wrong.status, 405);
      assert.equal(wrong.headers.get('allow'), 'GET, HEAD');
    } finally {
      await intake.close();
    }
  });

  test('/readyz is 503 while the database is unreachable and 200 again once it is back', async () => {
    const proxy = await databaseProxy(new URL(db.url));
    const pool = await createDatabasePool(proxy.url(), { connectionTimeoutMs: 1_000 });
    const intake = await startIntake({ pool, log, expectedMigration, secrets: noSecrets, port: 0, host: '127.0.0.1' });
    try {
      assert.equal((await fetch(`${intake.url}/readyz`)).status, 200);
      await proxy.down();
      const down = await fetch(`${intake.url}/readyz`);
      assert.equal(down.status, 503);
      assert.deepEqual(await down.json(), { status: 'not_ready', database: 'unreachable' });
      assert.equal((await fetch(`${intake.url}/healthz`)).status, 200, 'the process itself is alive');
      await proxy.up();
      let status = 0;
      for (let i = 0; i < 20 && status !== 200; i++) {
        status = (await fetch(`${intake.url}/readyz`)).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 200);
    } finally {
      await intake.close();
      await pool.end();
      await proxy.down();
    }
  });

  test('/readyz is 503 when migrations are not current', async () => {
    const intake = await startIntake({
      pool: db.pool,
      log,
      expectedMigration: '999999.sql',
      secrets: noSecrets,
      port: 0,
      host: '127.0.0.1',
    });
    try {
      const response = await fetch(`${intake.url}/readyz`);
      assert.equal(response.status, 503);
      assert.deepEqual(await response.json(), { status: 'not_ready', database: 'ok', migrations: 'pending' });
    } finally {
      await intake.close();
    }
  });
});
