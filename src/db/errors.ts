// The one place that reads SQLSTATEs and constraint names. Everything else branches on our codes.
// A constraint that encodes a business rule is named here with the error it means; any other
// database failure stays an unexpected error (exit 1) with its cause chained.
import { type ErrorCode, ErrorCodes, HaatError } from '../errors.ts';

/** The PostgreSQL error fields we read, wherever in the cause chain they sit. */
export type PgErrorFields = {
  readonly code: string;
  readonly message: string;
  readonly constraint?: string | undefined;
  readonly table?: string | undefined;
  readonly column?: string | undefined;
  readonly detail?: string | undefined;
};

export const SqlState = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
  notNullViolation: '23502',
  exclusionViolation: '23P01',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  idleInTransactionTimeout: '25P03',
  undefinedTable: '42P01',
  /** Raised by our own triggers: the message is `<error_code>: <text>`. */
  haatRefusal: 'HA000',
} as const;

/**
 * Constraints that encode a rule an operator can run into, and what they mean. The module that owns a
 * table registers its constraints (registerConstraint); an unknown constraint is a bug, not a refusal.
 */
const constraintCodes: Readonly<Record<string, ErrorCode>> = {};

export function registerConstraint(name: string, code: ErrorCode): void {
  (constraintCodes as Record<string, ErrorCode>)[name] = code;
}

function looksLikePgError(e: unknown): e is PgErrorFields {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { code?: unknown }).code === 'string' &&
    /^[0-9A-Z]{5}$/.test((e as { code: string }).code)
  );
}

/** Finds the PostgreSQL error in a cause chain (slonik wraps the driver's error). */
export function pgErrorOf(error: unknown): PgErrorFields | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && e; depth++) {
    if (looksLikePgError(e)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN']);

/** True when the database could not be reached or the connection was lost. */
export function isConnectionFailure(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && e; depth++) {
    const name = (e as { name?: unknown }).name;
    const code = (e as { code?: unknown }).code;
    const message = String((e as { message?: unknown }).message ?? '');
    if (name === 'ConnectionError' || name === 'BackendTerminatedError' || name === 'BackendTerminatedUnexpectedlyError') return true;
    if (typeof code === 'string') {
      if (networkCodes.has(code)) return true;
      if (code.startsWith('08')) return true;
      if (code === SqlState.adminShutdown || code === SqlState.crashShutdown || code === SqlState.cannotConnectNow) return true;
    }
    if (
      /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
        message,
      )
    )
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Errors after which re-running the whole transaction is correct and may succeed. */
export function isRetryable(error: unknown): boolean {
  const pg = pgErrorOf(error);
  if (pg && (pg.code === SqlState.serializationFailure || pg.code === SqlState.deadlockDetected)) return true;
  return isConnectionFailure(error);
}

/**
 * Maps a database error to a HaatError when it means something to an operator; otherwise
 * returns undefined and the caller rethrows it as unexpected.
 */
export function mapDatabaseError(error: unknown): HaatError | undefined {
  if (error instanceof HaatError) return error;
  if (isConnectionFailure(error)) {
    return new HaatError('database_unavailable', 'the database is unreachable', {}, { cause: error });
  }
  const pg = pgErrorOf(error);
  if (!pg) return undefined;
  if (pg.code === SqlState.haatRefusal) {
    const match = /^([a-z_]+): (.*)$/s.exec(pg.message);
    const code = match?.[1];
    if (code && isErrorCode(code)) {
      return new HaatError(code, match?.[2] ?? pg.message, pgDetails(pg), { cause: error });
    }
    return new HaatError('conflict', pg.message, pgDetails(pg), { cause: error });
  }
  if (pg.constraint) {
    const code = constraintCodes[pg.constraint];
    if (code) return new HaatError(code, describeConstraint(pg), pgDetails(pg), { cause: error });
  }
  return undefined;
}

function pgDetails(pg: PgErrorFields): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  if (pg.constraint) details.constraint = pg.constraint;
  if (pg.table) details.table = pg.table;
  if (pg.column) details.column = pg.column;
  return details;
}

function describeConstraint(pg: PgErrorFields): string {
  return `refused by the database (${pg.constraint}${pg.table ? ` on ${pg.table}` : ''})`;
}

function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ErrorCodes, code);
}
