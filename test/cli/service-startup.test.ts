// A service started while its database is away (restarting, a failover, a cut connection) waits
// for it and starts, instead of exiting: `haat worker` here, started behind a closed proxy that
// opens a moment later, then takes a job and stops cleanly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { sql } from '../../src/db/sql.ts';
import { haatBin, repoRoot } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { databaseProxy } from '../helpers/proxy.ts';

const db = await createTestDatabase();

test('haat worker started while the database is unreachable waits for it, then works', async () => {
  const proxy = await databaseProxy(new URL(db.url));
  await proxy.down();
  const worker = spawn(process.execPath, [haatBin, 'worker', '--concurrency', '1'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: proxy.url(), LOG_LEVEL: 'warn', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  worker.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => worker.on('exit', (code) => resolve(code)));
  try {
    await sleep(1500);
    assert.equal(worker.exitCode, null, `the worker is still there: ${stderr}`);
    assert.match(stderr, /the database connection was lost; trying again/);
    await proxy.up();
    const jobId = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
      select (graphile_worker.add_job('ping', json_build_object('note', 'after the wait'))).id::text as id`);
    for (let i = 0; ; i++) {
      assert.ok(i < 600, `the job ran within 60 s: ${stderr}`);
      const note = await db.pool.maybeOneFirst(
        sql.type(z.object({ note: z.string() }))`select note from worker_pings where job_id = ${jobId}`,
      );
      if (note === 'after the wait') break;
      await sleep(100);
    }
    worker.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  } finally {
    if (worker.exitCode === null) worker.kill('SIGKILL');
    await proxy.down();
  }
});
