// A database of its own for each test file, cloned from the template the global setup migrated.
import { randomBytes } from 'node:crypto';
import { after, afterEach } from 'node:test';
import pg from 'pg';
import { createDatabasePool, type DatabasePool } from '../../src/db/pool.ts';
import { reconcile } from '../../src/db/reconcile.ts';

export type TestDatabase = {
  readonly name: string;
  readonly url: string;
  readonly pool: DatabasePool;
};

export function adminUrl(): string {
  const url = process.env.HAAT_TEST_ADMIN_URL;
  if (!url) throw new Error('HAAT_TEST_ADMIN_URL is unset: run the tests with `npm test`');
  return url;
}

export function databaseUrl(name: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  return u.toString();
}

export async function adminQuery(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

export function uniqueName(kind: string): string {
  return `haat_${kind}_${process.env.HAAT_TEST_RUN}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

export type TestDatabaseOptions = {
  /** false: an empty database (no migrations). */
  readonly template?: boolean;
  /**
   * Why this file leaves a database on which `haat reconcile` must fail (it corrupts data on
   * purpose, or proves a control that oversells). Without it, every check of `haat reconcile`
   * must pass once the file's tests are done, or the file fails.
   */
  readonly corruptsOnPurpose?: string;
};

/** Throws (naming every failed check and its first offenders) unless all invariants hold. */
export async function assertReconciles(pool: DatabasePool, label: string): Promise<void> {
  const failed = (await reconcile(pool)).filter((c) => !c.ok);
  if (failed.length === 0) return;
  const lines = failed.map(
    (c) =>
      `  invariant ${c.invariant} ${c.name}: ${JSON.stringify(c.violations.slice(0, 5), (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`,
  );
  throw new Error(`haat reconcile fails on ${label}:\n${lines.join('\n')}`);
}

/**
 * A fresh, migrated database; dropped after the file's tests unless HAAT_TEST_KEEP is set.
 * Call it at the top level of a test file (top-level await), so the cleanup belongs to the file.
 * After each of the file's tests, `haat reconcile` must pass on it (unless `corruptsOnPurpose` says why not).
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const name = uniqueName('t');
  const template = process.env.HAAT_TEST_TEMPLATE;
  if (options.template !== false && !template) throw new Error('HAAT_TEST_TEMPLATE is unset: run the tests with `npm test`');
  await adminQuery(options.template === false ? `create database ${name}` : `create database ${name} template ${template}`);
  const url = databaseUrl(name);
  const pool = await createDatabasePool(url, { maxPoolSize: 20 });
  const checked = options.template !== false && options.corruptsOnPurpose === undefined;
  const where = `the test database ${name} of ${process.argv[1] ?? 'this test file'}`;
  // After every test of the file, subtests included (a failure names the test), and once more when
  // the file ends. For a database created inside a test, afterEach has nothing to follow and the
  // `after` check runs when that test ends.
  if (checked) afterEach(async () => assertReconciles(pool, where));
  after(async () => {
    try {
      if (checked) await assertReconciles(pool, where);
    } finally {
      await pool.end();
      if (!process.env.HAAT_TEST_KEEP) await adminQuery(`drop database if exists ${name} with (force)`);
    }
  });
  return { name, url, pool };
}
