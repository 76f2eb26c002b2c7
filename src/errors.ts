// Error codes are the public contract (docs/contract.md, Exit codes and errors): a stable snake_case
// code and its exit code. Expected refusals are returned as values by the domain; a HaatError is how a
// boundary (CLI, intake, worker) carries one of them, or an infrastructure fault, to the one place that
// maps it.

export const ExitCode = {
  ok: 0,
  unexpected: 1,
  invalid: 2,
  conflict: 3,
  notFound: 4,
  maintenance: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Every error code haat emits, and the exit code it maps to. */
export const ErrorCodes = {
  invalid_input: ExitCode.invalid,
  not_found: ExitCode.notFound,
  insufficient_stock: ExitCode.conflict,
  transition_not_allowed: ExitCode.conflict,
  idempotency_conflict: ExitCode.conflict,
  conflict: ExitCode.conflict,
  amount_mismatch: ExitCode.conflict,
  currency_mismatch: ExitCode.conflict,
  /** A bulk import that wrote its valid rows and skipped or could not apply others (listed in details.rows). */
  import_incomplete: ExitCode.conflict,
  /** An endpoint URL that leads to a loopback, private or link-local address (without --allow-private). */
  address_not_allowed: ExitCode.invalid,
  maintenance_mode: ExitCode.maintenance,
  database_unavailable: ExitCode.unexpected,
  /** The embedded PostgreSQL cannot run here (as root: the OS user postgres cannot reach it). */
  embedded_unavailable: ExitCode.unexpected,
  not_migrated: ExitCode.unexpected,
  invariant_violation: ExitCode.unexpected,
  /** `haat demo`: a guarantee of the tour did not hold (every step is in details.steps), or it was interrupted. */
  demo_failed: ExitCode.unexpected,
  internal: ExitCode.unexpected,
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

export type ErrorDetails = Readonly<Record<string, unknown>>;

export class HaatError extends Error {
  override name = 'HaatError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  /** Fields a command's JSON document carries beside `error` (e.g. `haat demo`'s ok and steps). */
  readonly document: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: ErrorDetails = {},
    options?: ErrorOptions & { readonly document?: Readonly<Record<string, unknown>> },
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
    this.document = options?.document ?? {};
  }

  get exitCode(): ExitCode {
    return ErrorCodes[this.code];
  }
}

/** A broken invariant: a bug, never an expected outcome. */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function invalidInput(message: string, details: ErrorDetails = {}): HaatError {
  return new HaatError('invalid_input', message, details);
}

export function notFound(what: string, key: string, details: ErrorDetails = {}): HaatError {
  return new HaatError('not_found', `${what} not found: ${key}`, { [what]: key, ...details });
}

/** The JSON error document (docs/contract.md, Output). */
export function errorDocument(error: HaatError): {
  error: { code: ErrorCode; message: string; details: ErrorDetails };
} {
  return { ...error.document, error: { code: error.code, message: error.message, details: error.details } };
}
