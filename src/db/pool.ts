// The slonik pool: int8 → bigint, numeric → string (never a float), timestamptz → ISO-8601,
// every sql.type(zod) result checked by an interceptor, and server-side timeouts on every session.

import pg from 'pg';
import type { DriverTypeParser } from 'slonik';
import { createPool, type DatabasePool, type Interceptor, type QueryResultRow, SchemaValidationError } from 'slonik';

export type { DatabasePool };
export type DatabaseTransaction = Parameters<Parameters<DatabasePool['transaction']>[0]>[0];
export type Queryable = DatabasePool | DatabaseTransaction;

export type PoolOptions = {
  readonly maxPoolSize?: number;
  readonly statementTimeoutMs?: number;
  readonly lockTimeoutMs?: number;
  readonly idleInTransactionTimeoutMs?: number;
  readonly connectionTimeoutMs?: number;
  readonly applicationName?: string;
};

const typeParsers: readonly DriverTypeParser[] = [
  { name: 'int8', parse: (value: string) => BigInt(value) },
  { name: 'numeric', parse: (value: string) => value },
  { name: 'timestamptz', parse: (value: string) => new Date(value).toISOString() },
  { name: 'timestamp', parse: (value: string) => value },
  { name: 'date', parse: (value: string) => value },
];

/** Validates each row against the query's zod (standard-schema) parser, when it has one. */
const resultParserInterceptor: Interceptor = {
  name: 'haat.resultParser',
  transformRowAsync: async (context, query, row) => {
    const parser = context.resultParser;
    if (!parser) return row;
    let result = parser['~standard'].validate(row);
    if (result instanceof Promise) result = await result;
    if (result.issues) throw new SchemaValidationError(query, row, result.issues);
    return result.value as QueryResultRow;
  },
};

/** Adds session settings to the connection string, leaving any the operator set untouched. */
export function withSessionSettings(url: string, options: PoolOptions): string {
  const u = new URL(url);
  const existing = u.searchParams.get('options') ?? '';
  const settings: string[] = [];
  if (!existing.includes('lock_timeout')) settings.push(`-c lock_timeout=${options.lockTimeoutMs ?? 10_000}`);
  if (settings.length > 0) u.searchParams.set('options', [existing, ...settings].filter(Boolean).join(' '));
  if (options.applicationName && !u.searchParams.has('application_name')) {
    u.searchParams.set('application_name', options.applicationName);
  }
  return u.toString();
}

/**
 * slonik's pg driver looks up its type parsers on a one-off pg Client with no 'error' listener
 * (@slonik/pg-driver, queryTypeOverrides): a connection the server ends at that moment (a restart,
 * pg_terminate_backend) raised an unhandled 'error' event and ended the process, as the soak run
 * found with workers restarting while connections were being terminated. Every pg Client now has a
 * listener from its connect on, so such an error is never unhandled; whoever uses the client still
 * sees it (its connect or query fails), and pools add their own listeners as before.
 */
const connect = pg.Client.prototype.connect;
const ignoreUnheard = () => undefined;
pg.Client.prototype.connect = function (this: pg.Client, ...args: unknown[]) {
  if (this.listenerCount('error') === 0) this.on('error', ignoreUnheard);
  return (connect as (...a: unknown[]) => unknown).apply(this, args);
} as never;

export async function createDatabasePool(url: string, options: PoolOptions = {}): Promise<DatabasePool> {
  return createPool(withSessionSettings(url, options), {
    typeParsers,
    interceptors: [resultParserInterceptor],
    maxPoolSize: options.maxPoolSize ?? 10,
    statementTimeout: options.statementTimeoutMs ?? 30_000,
    idleInTransactionSessionTimeout: options.idleInTransactionTimeoutMs ?? 60_000,
    connectionTimeout: options.connectionTimeoutMs ?? 5_000,
    connectionRetryLimit: 1,
    // Our own code retries whole transactions (see db/transaction.ts); slonik must not retry
    // a single query or a transaction callback that may have side effects outside the database.
    queryRetryLimit: 0,
    transactionRetryLimit: 0,
    captureStackTrace: false,
    idleTimeout: 10_000,
    // slonik's default runs DISCARD ALL at every release (~8 ms here: a round trip, and every plan
    // cache of the session lost). haat leaves no session state on a pooled connection: settings are
    // `set local` inside a transaction or given at connect, and LISTEN, advisory locks and temp tables
    // live on connections of their own (test/db/pool.test.ts holds the code to that).
    resetConnection: async () => undefined,
  });
}
