// Migrations: our plain SQL in sql/committed (graphile-migrate: forward only, each file's hash
// chained to the one before, so an edited migration is refused), and graphile-worker's own
// schema, which it installs itself. Both take an advisory lock, so concurrent runs are safe.
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger as MigrateLogger, migrate } from 'graphile-migrate';
// graphile-migrate keeps its pool alive for 200 ms after a command and calls process.exit(1) if an
// idle connection of that pool errors (a restart, a dropped database). We end the pool at once and
// give its sockets a moment to close (its end() returns no promise we could await).
import { clearAllPools } from 'graphile-migrate/dist/pgReal.js';
import { runMigrations, Logger as WorkerLogger } from 'graphile-worker';
import pg from 'pg';
import type { Logger } from '../log.ts';
import { graphileLogFactory } from './graphile-logger.ts';
import { migrationsFolder } from './migration-status.ts';

export { committedMigrations, type MigrationStatus, migrationStatus, migrationsCurrent, migrationsFolder } from './migration-status.ts';

function settings(url: string, log: Logger) {
  return {
    connectionString: url,
    migrationsFolder,
    logger: new MigrateLogger(graphileLogFactory(log.child({ component: 'migrate' }))),
  };
}

/** Our own lock: graphile-migrate only *tries* its lock and fails when another run holds it. */
const MIGRATE_LOCK = '7283442800001';

export async function migrateDatabase(url: string, log: Logger): Promise<void> {
  const lock = new pg.Client({ connectionString: url });
  lock.on('error', (error) => log.warn({ err: error }, 'migration lock connection failed'));
  await lock.connect();
  try {
    await lock.query("set statement_timeout = '5min'; set lock_timeout = '5min'");
    await lock.query('select pg_advisory_lock($1)', [MIGRATE_LOCK]);
    await applyMigrations(url, log);
    await lock.query('select pg_advisory_unlock($1)', [MIGRATE_LOCK]);
  } finally {
    await lock.end().catch(() => undefined);
  }
}

async function applyMigrations(url: string, log: Logger): Promise<void> {
  await runMigrations({
    connectionString: url,
    logger: new WorkerLogger(graphileLogFactory(log.child({ component: 'worker-migrate' }))),
  });
  try {
    await migrate(settings(url, log));
  } finally {
    clearAllPools();
    await sleep(100);
  }
}
