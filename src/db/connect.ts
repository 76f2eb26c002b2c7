// Where the database is: DATABASE_URL when set (that server, untouched), otherwise the embedded
// PostgreSQL under HAAT_HOME, reused when another haat process runs it, started when none does.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.ts';
import { type Logger, redactUrl } from '../log.ts';
import { type EmbeddedServer, ensureEmbeddedServer } from './embedded.ts';
import { isConnectionFailure } from './errors.ts';
import { createDatabasePool, type DatabasePool, type PoolOptions } from './pool.ts';

export type DatabaseTarget = {
  readonly url: string;
  /** Set when the embedded server is in use. */
  readonly embedded: EmbeddedServer | undefined;
  /** How to describe this database to an operator (password hidden). */
  readonly description: string;
  /** Stops the embedded server if this process started it. */
  release(): Promise<void>;
};

export async function resolveDatabase(config: Config, log: Logger): Promise<DatabaseTarget> {
  if (config.databaseUrl) {
    return {
      url: config.databaseUrl,
      embedded: undefined,
      description: redactUrl(config.databaseUrl),
      release: async () => undefined,
    };
  }
  const embedded = await ensureEmbeddedServer({ home: config.home, log, relocateDir: config.relocateDir });
  return {
    url: embedded.url,
    embedded,
    description: `${redactUrl(embedded.url)} (embedded PostgreSQL, data in ${embedded.info.dataDir}${embedded.owned ? '' : `, run by pid ${embedded.info.ownerPid}`})`,
    release: () => embedded.stop(),
  };
}

export type Database = DatabaseTarget & {
  readonly pool: DatabasePool;
  /** Ends the pool, then releases the server. */
  close(): Promise<void>;
};

export async function openDatabase(config: Config, log: Logger, options: PoolOptions = {}): Promise<Database> {
  const target = await resolveDatabase(config, log);
  try {
    const pool = await createDatabasePool(target.url, options);
    return {
      ...target,
      pool,
      close: async () => {
        await pool.end().catch((error: unknown) => log.warn({ err: error }, 'closing the pool failed'));
        await target.release();
      },
    };
  } catch (error) {
    await target.release();
    throw error;
  }
}

/**
 * A start-up step that a lost connection (a database restart, a terminated backend) must not turn
 * into an exit: retried with backoff for up to a minute; any other error is thrown at once.
 */
export async function untilConnected<T>(what: string, step: () => Promise<T>, log: Logger): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (let delay = 250; ; delay = Math.min(delay * 2, 4_000)) {
    try {
      return await step();
    } catch (error) {
      if (!isConnectionFailure(error) || Date.now() + delay > deadline) throw error;
      log.warn({ err: error, retryInMs: delay }, `${what}: the database connection was lost; trying again`);
      await sleep(delay);
    }
  }
}
