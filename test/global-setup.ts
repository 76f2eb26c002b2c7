// One PostgreSQL for the whole run: the embedded server in a temporary HAAT_HOME by default, or
// the server at DATABASE_URL. A template database is migrated once; every test file clones it
// (test/helpers/db.ts). The run's settings reach the test processes through the environment.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type EmbeddedServer, ensureEmbeddedServer } from '../src/db/embedded.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { createLogger } from '../src/log.ts';

let embedded: EmbeddedServer | undefined;
let home: string | undefined;
let adminUrl: string | undefined;
let template: string | undefined;

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function globalSetup(): Promise<void> {
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const external = process.env.DATABASE_URL;
  if (external) {
    adminUrl = external;
  } else {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-test-'));
    embedded = await ensureEmbeddedServer({
      home,
      log,
      // A throw-away server: durability buys nothing here.
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300' },
    });
    adminUrl = withDatabase(embedded.url, 'postgres');
  }
  const run = randomBytes(3).toString('hex');
  template = `haat_tpl_${run}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const { rows } = await admin.query<{ version: string }>("select current_setting('server_version') as version");
  await admin.query(`create database ${template}`);
  await admin.end();
  await migrateDatabase(withDatabase(adminUrl, template), log);

  process.env.HAAT_TEST_ADMIN_URL = adminUrl;
  process.env.HAAT_TEST_TEMPLATE = template;
  process.env.HAAT_TEST_RUN = run;
  // Test processes must never fall back on the developer's own HAAT_HOME or DATABASE_URL.
  delete process.env.DATABASE_URL;
  process.stderr.write(`# PostgreSQL ${rows[0]?.version} (${embedded ? 'embedded' : 'DATABASE_URL'}), template ${template}\n`);
}

export async function globalTeardown(): Promise<void> {
  if (adminUrl && template) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    const { rows } = await admin.query<{ datname: string }>('select datname from pg_database where datname like $1', [
      `haat_%${process.env.HAAT_TEST_RUN}%`,
    ]);
    for (const { datname } of rows) {
      await admin.query(`drop database if exists ${admin.escapeIdentifier(datname)} with (force)`).catch(() => undefined);
    }
    await admin.end();
  }
  await embedded?.stop();
  if (home) await fs.rm(home, { recursive: true, force: true });
}
