// Where `haat demo` runs, always a fresh database: with DATABASE_URL unset, a temporary embedded
// PostgreSQL in a temporary HAAT_HOME; with it set, a new scratch database haat_demo_<hex> on that
// server. Either is migrated before the tour, and removed at the end unless --keep.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config.ts';
import { embeddedPaths, ensureEmbeddedServer } from '../db/embedded.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { createScratchDatabase } from '../db/scratch-database.ts';
import { HaatError } from '../errors.ts';
import { type Logger, redactUrl } from '../log.ts';

export type DemoDatabase = {
  readonly kind: 'embedded' | 'server';
  /** With its password: for the demo's own pool and its child processes. */
  readonly url: string;
  readonly name: string;
  /** The children's HAAT_HOME (for the embedded server, also its data). */
  readonly home: string;
  readonly serverVersion: string;
  /** For the operator, password hidden. */
  readonly description: string;
  /** Stops and removes what the demo created; with `keep`, only stops it and says how to reach it. */
  finish(keep: boolean): Promise<KeptDatabase | null>;
};

export type KeptDatabase = {
  /** The environment that points `haat` at the kept database, e.g. `HAAT_HOME=/tmp/haat-demo-x`. */
  readonly env: string;
  /** How to remove it when done. */
  readonly remove: string;
};

type Opened = Omit<DemoDatabase, 'home' | 'serverVersion'>;

/**
 * A fresh folder that PostgreSQL can enter: as root it runs as the `postgres` user, who cannot
 * traverse the 0700 folder mkdtemp makes.
 */
async function temporaryHome(): Promise<string> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-demo-'));
  await fs.chmod(home, 0o755);
  return home;
}

/**
 * Removes a demo HAAT_HOME, and the data folder it links to when the embedded server had to place
 * it elsewhere (as root, when postgres cannot reach the home): that folder names its home in
 * `haat-home`, and only a folder naming this one is removed.
 */
async function removeHome(home: string): Promise<void> {
  const link = embeddedPaths(home).dataDir;
  if ((await fs.lstat(link).catch(() => undefined))?.isSymbolicLink()) {
    const real = await fs.realpath(link).catch(() => undefined);
    const folder = real && path.dirname(real);
    const owner = folder && (await fs.readFile(path.join(folder, 'haat-home'), 'utf8').catch(() => undefined));
    if (folder && owner?.trim() === home) await fs.rm(folder, { recursive: true, force: true });
  }
  await fs.rm(home, { recursive: true, force: true });
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>("select current_setting('server_version') as v");
    return rows[0]?.v.split(' ')[0] ?? 'unknown';
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function scratchOnServer(serverUrl: string, home: string): Promise<Opened> {
  const server = redactUrl(serverUrl).replace(/\/[^/]*$/, '');
  const scratch = await createScratchDatabase(serverUrl, 'haat_demo').catch((error: unknown) => {
    const why = error instanceof Error ? error.message : String(error);
    throw new HaatError(
      'demo_failed',
      `could not create a database for the demo on ${server} (${why}): its role needs CREATEDB`,
      {},
      { cause: error },
    );
  });
  return {
    kind: 'server',
    url: scratch.url,
    name: scratch.name,
    description: `a new database ${scratch.name} on ${server}`,
    finish: async (keep) => {
      await removeHome(home);
      if (!keep) {
        await scratch.drop();
        return null;
      }
      return { env: `DATABASE_URL=${redactUrl(scratch.url)}`, remove: `drop database ${scratch.name} with (force);  -- on ${server}` };
    },
  };
}

async function temporaryEmbedded(config: Config, home: string, log: Logger): Promise<Opened> {
  const embedded = await ensureEmbeddedServer({ home, log, relocateDir: config.relocateDir });
  return {
    kind: 'embedded',
    url: embedded.url,
    name: embedded.info.database,
    description: `a temporary embedded PostgreSQL in ${home}`,
    finish: async (keep) => {
      await embedded.stop();
      if (!keep) {
        await removeHome(home);
        return null;
      }
      return { env: `HAAT_HOME=${home}`, remove: `rm -rf ${home}` };
    },
  };
}

export async function openDemoDatabase(config: Config, log: Logger): Promise<DemoDatabase> {
  const home = await temporaryHome();
  let opened: Opened | undefined;
  try {
    opened = config.databaseUrl ? await scratchOnServer(config.databaseUrl, home) : await temporaryEmbedded(config, home, log);
    await migrateDatabase(opened.url, log);
    const version = await serverVersion(opened.url);
    return { ...opened, home, serverVersion: version, description: `${opened.description} (PostgreSQL ${version})` };
  } catch (error) {
    await (opened ? opened.finish(false) : removeHome(home)).catch((cleanup: unknown) =>
      log.warn({ err: cleanup }, 'cleaning up the demo database failed'),
    );
    throw error;
  }
}
