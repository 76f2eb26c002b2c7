// haat db migrate · haat db status
import type { Command } from 'commander';
import { z } from 'zod';
import { type MigrationStatus, migrateDatabase, migrationStatus } from '../../db/migrate.ts';
import { sql } from '../../db/sql.ts';
import { type BaseDeps, buildDeps, type Deps } from '../context.ts';
import { keyValues } from '../output.ts';

export type DbStatus = {
  readonly database: string;
  readonly embedded: boolean;
  readonly server_version: string;
  readonly instance_id: string | null;
  readonly migrations: {
    readonly applied: readonly { filename: string; applied_at: string }[];
    readonly pending: readonly string[];
    readonly worker_schema_version: number | null;
    readonly current: boolean;
  };
};

function shape(status: MigrationStatus) {
  return {
    applied: status.applied.map((m) => ({ filename: m.filename, applied_at: m.appliedAt })),
    pending: status.pending,
    worker_schema_version: status.workerSchemaVersion,
    current: status.current,
  };
}

export async function dbStatus(deps: Deps): Promise<DbStatus> {
  return deps.withDatabase(
    async (db) => {
      const serverVersion = await db.pool.oneFirst(sql.type(z.object({ v: z.string() }))`select current_setting('server_version') as v`);
      const hasInfo = await db.pool.oneFirst(
        sql.type(z.object({ e: z.boolean() }))`select to_regclass('public.app_info') is not null as e`,
      );
      const instanceId = hasInfo
        ? await db.pool.maybeOneFirst(sql.type(z.object({ id: z.string() }))`select instance_id::text as id from app_info`)
        : null;
      return {
        database: db.description,
        embedded: db.embedded !== undefined,
        server_version: serverVersion,
        instance_id: instanceId ?? null,
        migrations: shape(await migrationStatus(db.pool)),
      };
    },
    { migrated: false },
  );
}

export async function dbMigrate(deps: Deps): Promise<DbStatus> {
  await deps.withDatabase((db) => migrateDatabase(db.url, deps.log), { migrated: false });
  return dbStatus(deps);
}

function render(status: DbStatus): string {
  const m = status.migrations;
  return keyValues([
    ['database', status.database],
    ['server', `PostgreSQL ${status.server_version}`],
    ['instance', status.instance_id ?? '(not migrated)'],
    ['migrations', `${m.applied.length} applied, ${m.pending.length} pending${m.pending.length ? ` (${m.pending.join(', ')})` : ''}`],
    ['job queue schema', m.worker_schema_version === null ? '(not installed)' : `version ${m.worker_schema_version}`],
    ['state', m.current ? 'current' : 'needs `haat db migrate`'],
  ]);
}

export function registerDbCommands(program: Command, base: BaseDeps): void {
  const db = program.command('db').description('database migrations');
  db.command('migrate')
    .description('apply pending migrations (ours and the job queue’s); safe to run concurrently')
    .action(async (_opts, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const status = await dbMigrate(deps);
      deps.output.result(status, () => render(status));
    });
  db.command('status')
    .description('show the database in use and its migrations')
    .action(async (_opts, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const status = await dbStatus(deps);
      deps.output.result(status, () => render(status));
    });
}
