// The node-postgres pool graphile-worker runs on. We create it (graphile-worker would otherwise
// make its own) for two reasons:
//
// - graphile-worker 0.18 can release its LISTEN client twice: when the pool shuts down while the
//   LISTEN query is still in flight and the connection is then cut, both its shutdown and the
//   query's rejection release the client. pg-pool throws on the second release, inside an async
//   function nobody awaits: an unhandled rejection, which ends a Node process. Here a second
//   release of the same checkout is logged and ignored (the first one already returned or removed
//   the client, so ignoring it is exactly right).
// - A wait for a connection is bounded, and connection errors are logged as one short line (its
//   own handlers log the whole client object).
import pg from 'pg';
import type { Logger } from '../log.ts';

export type WorkerPgPoolOptions = {
  readonly url: string;
  readonly max: number;
  readonly log: Logger;
  /** How long a checkout may wait for a connection before it fails (and is retried by the caller). */
  readonly connectionTimeoutMs?: number;
};

type Release = (error?: Error | boolean) => void;

/** Wraps a checkout's release so that a second call is logged instead of throwing. */
function releaseOnce(client: pg.PoolClient, release: Release, log: Logger): Release {
  let released = false;
  const once: Release = (error) => {
    if (released) {
      log.warn('a pooled connection was released twice (a known graphile-worker race); the second release is ignored');
      return;
    }
    released = true;
    release(error);
  };
  client.release = once;
  return once;
}

class ForgivingPool extends pg.Pool {
  readonly #log: Logger;

  constructor(config: pg.PoolConfig, log: Logger) {
    super(config);
    this.#log = log;
  }

  // Both forms graphile-worker uses: a promise (its queries) and a callback (its LISTEN client).
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: Release) => void): void;
  override connect(
    callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: Release) => void,
  ): Promise<pg.PoolClient> | undefined {
    if (callback === undefined) {
      return super.connect().then((client) => {
        releaseOnce(client, client.release.bind(client), this.#log);
        return client;
      });
    }
    super.connect((err, client, done) => {
      if (client === undefined) return callback(err, client, done);
      callback(err, client, releaseOnce(client, done, this.#log));
    });
    return undefined;
  }
}

export function createWorkerPgPool(options: WorkerPgPoolOptions): pg.Pool {
  const log = options.log;
  const pool = new ForgivingPool(
    {
      connectionString: options.url,
      max: options.max,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
      application_name: 'haat worker',
    },
    log,
  );
  // Without these, a connection cut while idle (or between queries) is an 'error' event with no
  // listener: an uncaught exception. pg removes a broken idle client itself; a checked-out one
  // fails its next query, which graphile-worker retries.
  pool.on('error', (error) => log.warn({ code: (error as { code?: string }).code }, `idle worker connection lost: ${error.message}`));
  pool.on('connect', (client) =>
    client.on('error', (error) => log.debug({ code: (error as { code?: string }).code }, `worker connection lost: ${error.message}`)),
  );
  return pool;
}
