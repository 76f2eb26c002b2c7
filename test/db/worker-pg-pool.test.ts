import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { sql } from '../../src/db/sql.ts';
import { createWorkerPgPool } from '../../src/db/worker-pg-pool.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { memoryLog } from '../helpers/memory-log.ts';

const db = await createTestDatabase();

describe("graphile-worker's connection pool", () => {
  test('a second release of one checkout is logged and ignored, in both the promise and the callback form', async () => {
    // The control: node-postgres itself throws on the second release (inside graphile-worker's
    // async LISTEN release, an unhandled rejection).
    const plain = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      const client = await plain.connect();
      client.release();
      assert.throws(() => client.release(), /already been released/);
    } finally {
      await plain.end();
    }

    const { lines, log } = memoryLog();
    const pool = createWorkerPgPool({ url: db.url, max: 2, log });
    try {
      const client = await pool.connect();
      client.release();
      assert.doesNotThrow(() => client.release());

      const done = await new Promise<(error?: Error | boolean) => void>((resolve, reject) =>
        pool.connect((error, c, release) => (error || !c ? reject(error) : resolve(release))),
      );
      done();
      assert.doesNotThrow(() => done());

      assert.equal(lines.filter((l) => /released twice/.test(l.msg)).length, 2);
      assert.equal(pool.totalCount, 1, 'the connection went back once, and is reused');
      assert.equal(pool.idleCount, 1);
      const { rows } = await pool.query<{ one: number }>('select 1 as one');
      assert.deepEqual(rows, [{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  test('an idle connection terminated by the server is logged, dropped and replaced, not thrown', async () => {
    const { lines, log } = memoryLog();
    const pool = createWorkerPgPool({ url: db.url, max: 2, log });
    try {
      const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid');
      const pid = rows[0]?.pid;
      await db.pool.query(sql.unsafe`select pg_terminate_backend(${pid ?? 0})`);
      for (let i = 0; i < 100 && pool.totalCount > 0; i++) await sleep(20);
      assert.equal(pool.totalCount, 0, 'the broken connection left the pool');
      assert.ok(lines.some((l) => l.level === 40 && /idle worker connection lost/.test(l.msg)));
      const again = await pool.query<{ pid: number }>('select pg_backend_pid() as pid');
      assert.notEqual(again.rows[0]?.pid, pid);
    } finally {
      await pool.end();
    }
  });
});
