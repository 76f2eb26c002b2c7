// Developer tool: turns sql/current.sql into the next committed migration with graphile-migrate's
// own `commit` (it replays every migration on a throw-away shadow database first, then writes
// sql/committed/NNNNNN.sql with its hash chained to the previous one).
// Usage: npm run db:commit -- [message]
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { commit, Logger } from 'graphile-migrate';
import { clearAllPools } from 'graphile-migrate/dist/pgReal.js';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { resolveDatabase } from '../src/db/connect.ts';
import { graphileLogFactory } from '../src/db/graphile-logger.ts';
import { migrationsFolder } from '../src/db/migrate.ts';
import { createLogger } from '../src/log.ts';

const log = createLogger(process.env.LOG_LEVEL ?? 'info');
const target = await resolveDatabase(loadConfig(), log);
const suffix = randomBytes(4).toString('hex');
const root = new URL(target.url);
root.pathname = '/postgres';
const scratch = new URL(target.url);
scratch.pathname = `/haat_commit_${suffix}`;
const shadow = new URL(target.url);
shadow.pathname = `/haat_commit_${suffix}_shadow`;

const admin = new pg.Client({ connectionString: root.toString() });
await admin.connect();
await admin.query(`create database haat_commit_${suffix}`);
try {
  await commit(
    {
      connectionString: scratch.toString(),
      shadowConnectionString: shadow.toString(),
      rootConnectionString: root.toString(),
      migrationsFolder,
      logger: new Logger(graphileLogFactory(log)),
    },
    process.argv[2] ?? null,
  );
} finally {
  clearAllPools();
  await sleep(200);
  await admin.query(`drop database if exists haat_commit_${suffix} with (force)`);
  await admin.query(`drop database if exists haat_commit_${suffix}_shadow with (force)`);
  await admin.end();
  await target.release();
}
