import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { SchemaValidationError } from 'slonik';
import { z } from 'zod';
import { isConnectionFailure, isRetryable, mapDatabaseError, registerConstraint } from '../../src/db/errors.ts';
import { createDatabasePool } from '../../src/db/pool.ts';
import { sql } from '../../src/db/sql.ts';
import { HaatError } from '../../src/errors.ts';
import { repoRoot } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';

const db = await createTestDatabase();

describe('the pool', () => {
  test('parses int8 to bigint, exactly, past 2^53', async () => {
    const value = await db.pool.oneFirst(sql.type(z.object({ v: z.bigint() }))`select 9223372036854775807::int8 as v`);
    assert.equal(value, 9223372036854775807n);
  });

  test('parses numeric to a string, never a float', async () => {
    const value = await db.pool.oneFirst(sql.type(z.object({ v: z.string() }))`select 0.1::numeric + 0.2::numeric as v`);
    assert.equal(value, '0.3');
  });

  test('returns timestamptz as an ISO-8601 string', async () => {
    const value = await db.pool.oneFirst(sql.type(z.object({ v: z.string() }))`select '2026-01-02T03:04:05Z'::timestamptz as v`);
    assert.equal(value, '2026-01-02T03:04:05.000Z');
  });

  test('checks every sql.type(zod) result: a row of the wrong shape is an error, not a value', async () => {
    await assert.rejects(
      db.pool.one(sql.type(z.object({ v: z.number() }))`select 'not a number' as v`),
      (error) => error instanceof SchemaValidationError,
    );
  });

  test('sets statement and lock timeouts on every session', async () => {
    const row = await db.pool.one(
      sql.type(z.object({ statement: z.string(), lock: z.string(), idle: z.string() }))`
        select current_setting('statement_timeout') as statement, current_setting('lock_timeout') as lock,
               current_setting('idle_in_transaction_session_timeout') as idle`,
    );
    assert.equal(row.statement, '30s');
    assert.equal(row.lock, '10s');
    assert.equal(row.idle, '1min');
  });

  test('a pooled connection is reused without DISCARD ALL: nothing in haat leaves session state on one', async () => {
    const pool = await createDatabasePool(db.url, { maxPoolSize: 1 });
    try {
      const pid = () => pool.oneFirst(sql.type(z.object({ pid: z.number() }))`select pg_backend_pid() as pid`);
      const first = await pid();
      await pool.transaction((tx) => tx.query(sql.unsafe`set local lock_timeout = '1s'`));
      assert.equal(await pid(), first, 'the same connection');
      const lock = await pool.oneFirst(sql.type(z.object({ v: z.string() }))`select current_setting('lock_timeout') as v`);
      assert.equal(lock, '10s', 'a transaction-local setting ends with its transaction');
    } finally {
      await pool.end();
    }
    // Session state belongs on connections of its own: no pooled query in src/ sets a session
    // setting, LISTENs, takes a session advisory lock or makes a temp table.
    const fs = await import('node:fs/promises');
    const path = await import('node:path');
    const root = path.resolve(import.meta.dirname, '../../src');
    const files = (await fs.readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts'));
    for (const file of files) {
      const text = await fs.readFile(path.join(root, file), 'utf8');
      for (const [pattern, what] of [
        [/sql\.(unsafe|fragment|type\([^)]*\))`\s*set (?!local)/i, 'a session SET'],
        [/sql\.[a-z]+`[^`]*\blisten\b/i, 'LISTEN'],
        [/sql\.[a-z]+`[^`]*pg_advisory_lock\(/i, 'a session advisory lock'],
        [/sql\.[a-z]+`[^`]*create temp/i, 'a temp table'],
      ] as const) {
        assert.doesNotMatch(text, pattern, `${file}: ${what} on a pooled connection`);
      }
    }
  });
});

describe('a connection the server ends', () => {
  test('on a bare pg client nobody listens to (as slonik’s type lookup uses) does not end the process', async () => {
    // In a child process: an unhandled 'error' event would end it, with a non-zero exit.
    const script = `
      import pg from 'pg';
      import '${path.join(repoRoot, 'src/db/pool.ts')}';
      const url = process.env.URL;
      const victim = new pg.Client({ connectionString: url, application_name: 'haat-victim-' + process.pid });
      await victim.connect();
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', ['haat-victim-' + process.pid]);
      await admin.end();
      await new Promise((resolve) => setTimeout(resolve, 500));
      console.log('alive');`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      env: { ...process.env, URL: db.url },
    });
    assert.equal(stdout.trim(), 'alive');
  });
});

describe('database error mapping', () => {
  test('maps a refusal raised by our triggers (SQLSTATE HA000) to its error code and exit code', async () => {
    const cases = [
      ['transition_not_allowed', 3],
      ['not_found', 4],
      ['maintenance_mode', 5],
      ['invalid_input', 2],
    ] as const;
    await db.pool.query(sql.unsafe`
      create function haat_test_raise(code text) returns void language plpgsql as $$
      begin raise exception using errcode = 'HA000', message = code || ': refused for a test'; end $$`);
    for (const [code, exit] of cases) {
      const error = await db.pool.query(sql.unsafe`select haat_test_raise(${code})`).catch((e: unknown) => e);
      const mapped = mapDatabaseError(error);
      assert.ok(mapped instanceof HaatError, `${code} maps to a HaatError`);
      assert.equal(mapped.code, code);
      assert.equal(mapped.exitCode, exit);
      assert.equal(mapped.message, 'refused for a test');
    }
  });

  test('maps a registered constraint to its code and names the constraint; leaves others unmapped', async () => {
    await db.pool.query(
      sql.unsafe`create table t_unique (k text constraint t_unique_k_key unique, n int constraint t_n_positive check (n > 0))`,
    );
    registerConstraint('t_unique_k_key', 'conflict');
    await db.pool.query(sql.unsafe`insert into t_unique values ('a', 1)`);
    const duplicate = await db.pool.query(sql.unsafe`insert into t_unique values ('a', 1)`).catch((e: unknown) => e);
    const mapped = mapDatabaseError(duplicate);
    assert.equal(mapped?.code, 'conflict');
    assert.equal(mapped?.details.constraint, 't_unique_k_key');
    const check = await db.pool.query(sql.unsafe`insert into t_unique values ('b', 0)`).catch((e: unknown) => e);
    assert.equal(mapDatabaseError(check), undefined, 'an unregistered constraint is a bug, not a refusal');
    assert.equal(isRetryable(check), false);
  });

  test('treats a deadlock and a serialization failure as retryable', async () => {
    for (const state of ['40P01', '40001']) {
      const error = await db.pool
        .query(sql.unsafe`do $$ begin raise exception using errcode = ${sql.literalValue(state)}; end $$`)
        .catch((e: unknown) => e);
      assert.equal(isRetryable(error), true, state);
    }
  });

  test('reports an unreachable database as database_unavailable (exit 1)', async () => {
    const error = await createDatabasePool('postgres://nobody@127.0.0.1:1/none', { connectionTimeoutMs: 1_000 })
      .then(async (pool) => {
        try {
          await pool.query(sql.unsafe`select 1`);
        } finally {
          await pool.end();
        }
      })
      .catch((e: unknown) => e);
    assert.equal(isConnectionFailure(error), true);
    assert.equal(mapDatabaseError(error)?.code, 'database_unavailable');
    assert.equal(mapDatabaseError(error)?.exitCode, 1);
  });

  test('reports a terminated backend as a connection failure, so the transaction is retried', async () => {
    const error = await db.pool
      .transaction(async (tx) => {
        await tx.query(sql.unsafe`select pg_terminate_backend(pg_backend_pid())`);
      })
      .catch((e: unknown) => e);
    assert.equal(isRetryable(error), true);
  });
});

describe('reference data', () => {
  test('the currencies table and the money module agree on every exponent', async () => {
    const { knownCurrencies } = await import('../../src/db/catalog.ts');
    const { currencies } = await import('../../src/domain/money.ts');
    const rows = await knownCurrencies(db.pool);
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.code, r.exponent])), { ...currencies });
  });
});

describe('whole-transaction retry', () => {
  test('runs the whole transaction again after its connection is killed mid-way, and writes once', async () => {
    const { inTransaction } = await import('../../src/db/transaction.ts');
    await db.pool.query(sql.unsafe`create table retry_probe (n int)`);
    let attempts = 0;
    const result = await inTransaction(db.pool, async (tx) => {
      attempts++;
      await tx.query(sql.unsafe`insert into retry_probe values (${attempts})`);
      if (attempts === 1) await tx.query(sql.unsafe`select pg_terminate_backend(pg_backend_pid())`);
      return attempts;
    });
    assert.equal(result, 2);
    const rows = await db.pool.anyFirst(sql.type(z.object({ n: z.number() }))`select n from retry_probe`);
    assert.deepEqual(rows, [2], 'the first attempt left nothing behind');
  });

  test('does not retry a refusal: a constraint violation fails at once', async () => {
    const { inTransaction } = await import('../../src/db/transaction.ts');
    let attempts = 0;
    await assert.rejects(
      inTransaction(db.pool, async (tx) => {
        attempts++;
        await tx.query(sql.unsafe`select 1/0`);
      }),
    );
    assert.equal(attempts, 1);
  });
});
