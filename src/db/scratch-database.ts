// A fresh, empty database on a server, for `haat demo`, the soak run and the benchmark: created
// next to the database `serverUrl` names, and dropped again by drop() (WITH (FORCE): connections
// still open to it are ended).
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export type ScratchDatabase = {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
};

/** The same server and credentials, another database. */
export function urlOfDatabase(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

async function onServer<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates `<prefix>_<6 hex digits>`; `prefix` is a plain SQL identifier (e.g. haat_demo). */
export async function createScratchDatabase(serverUrl: string, prefix: string): Promise<ScratchDatabase> {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`not a plain database name prefix: ${prefix}`);
  const name = `${prefix}_${randomBytes(3).toString('hex')}`;
  await onServer(serverUrl, (client) => client.query(`create database ${client.escapeIdentifier(name)}`));
  let dropped = false;
  return {
    name,
    url: urlOfDatabase(serverUrl, name),
    drop: async () => {
      if (dropped) return;
      await onServer(serverUrl, (client) => client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`));
      dropped = true;
    },
  };
}
