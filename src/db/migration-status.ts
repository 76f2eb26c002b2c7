// What is applied, read cheaply: the committed files on disk against graphile-migrate's table and
// graphile-worker's schema. Kept apart from migrate.ts so that a command that only checks the
// schema is current never loads graphile-migrate or graphile-worker.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Queryable } from './pool.ts';
import { sql } from './sql.ts';

export const migrationsFolder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../sql');

/** The committed migration files, in order. */
export async function committedMigrations(): Promise<string[]> {
  const files = await fs.readdir(path.join(migrationsFolder, 'committed')).catch(() => []);
  return files.filter((f) => /^\d{6}[-_a-z0-9]*\.sql$/i.test(f)).sort();
}

export type MigrationStatus = {
  readonly applied: readonly { filename: string; appliedAt: string }[];
  readonly pending: readonly string[];
  readonly workerSchemaVersion: number | null;
  readonly current: boolean;
};

const Applied = z.object({ filename: z.string(), applied_at: z.string() });

/** A committed migration's number: graphile-migrate names files NNNNNN.sql or NNNNNN-slug.sql. */
const migrationNumber = (filename: string) => filename.slice(0, 6);

export async function migrationStatus(db: Queryable): Promise<MigrationStatus> {
  const hasTable = await db.oneFirst(
    sql.type(z.object({ exists: z.boolean() }))`select to_regclass('graphile_migrate.migrations') is not null as exists`,
  );
  const applied = hasTable
    ? await db.any(sql.type(Applied)`select filename, date as applied_at from graphile_migrate.migrations order by filename`)
    : [];
  const appliedNumbers = new Set(applied.map((r) => migrationNumber(r.filename)));
  const pending = (await committedMigrations()).filter((f) => !appliedNumbers.has(migrationNumber(f)));
  const workerSchemaVersion = await readWorkerSchemaVersion(db);
  return {
    applied: applied.map((r) => ({ filename: r.filename, appliedAt: r.applied_at })),
    pending,
    workerSchemaVersion,
    current: pending.length === 0 && workerSchemaVersion !== null,
  };
}

async function readWorkerSchemaVersion(db: Queryable): Promise<number | null> {
  const exists = await db.oneFirst(
    sql.type(z.object({ exists: z.boolean() }))`select to_regclass('graphile_worker.migrations') is not null as exists`,
  );
  if (!exists) return null;
  return db.oneFirst(sql.type(z.object({ id: z.number().nullable() }))`select max(id) as id from graphile_worker.migrations`);
}

/**
 * A cheap check for /readyz: the newest committed migration is applied and the worker schema
 * exists. `expectedLast` is read from disk once at start-up.
 */
export async function migrationsCurrent(db: Queryable, expectedLast: string | undefined): Promise<boolean> {
  const tables = await db.one(
    sql.type(z.object({ ours: z.boolean(), worker: z.boolean() }))`
      select to_regclass('graphile_migrate.migrations') is not null as ours,
             to_regclass('graphile_worker.jobs') is not null as worker`,
  );
  if (!tables.ours || !tables.worker) return false;
  if (expectedLast === undefined) return true;
  const last = await db.maybeOneFirst(
    sql.type(z.object({ filename: z.string() }))`select filename from graphile_migrate.migrations order by filename desc limit 1`,
  );
  return last !== null && migrationNumber(last) === migrationNumber(expectedLast);
}
