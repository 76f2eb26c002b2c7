// The environment, parsed once with zod. Nothing else in haat reads process.env.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { Text } from './domain/catalog.ts';

const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const Port = z
  .string()
  .regex(/^[0-9]{1,5}$/, 'must be a port number')
  .transform(Number)
  .pipe(z.number().int().min(0).max(65535));

const Env = z.object({
  DATABASE_URL: z
    .string()
    .trim()
    .min(1)
    .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL')
    .optional(),
  HAAT_HOME: z.string().min(1).default('./.haat'),
  HAAT_RELOCATE_DIR: z.string().min(1).optional(),
  // Written to the audit log: no control characters (a newline would forge a log line).
  HAAT_ACTOR: Text(200).optional(),
  PORT: Port.default(8787),
  LOG_LEVEL: LogLevel.optional(),
  LOG_FORMAT: z.enum(['json', 'pretty'], "must be 'json' or 'pretty'").optional(),
  HAAT_WAIT_FOR_WORKER_MS: z
    .string()
    .regex(/^[0-9]{1,7}$/, 'must be whole milliseconds')
    .transform(Number)
    .default(1000),
  HAAT_WORKER_HEARTBEAT_MS: z
    .string()
    .regex(/^[0-9]{3,7}$/, 'must be whole milliseconds (at least 100)')
    .transform(Number)
    .pipe(z.number().min(100, 'must be whole milliseconds (at least 100)'))
    .default(10_000),
});

export type Config = {
  readonly databaseUrl: string | undefined;
  readonly home: string;
  /** As root: where the embedded PostgreSQL's binaries and data go when the OS user postgres cannot reach them. */
  readonly relocateDir: string | undefined;
  readonly actor: string;
  readonly port: number;
  /** Unset: each command picks its own (info for services, warn for one-shot commands). */
  readonly logLevel: z.infer<typeof LogLevel> | undefined;
  /** Unset: pretty when stderr is a terminal, JSON lines otherwise. */
  readonly logFormat: 'json' | 'pretty' | undefined;
  /** How long a CLI write waits for a worker to take its job before applying it itself. */
  readonly waitForWorkerMs: number;
  /** Workers heartbeat this often; one silent for three intervals is dead and its jobs are unlocked. */
  readonly workerHeartbeatMs: number;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = Env.safeParse({
    DATABASE_URL: env.DATABASE_URL === '' ? undefined : env.DATABASE_URL,
    HAAT_HOME: env.HAAT_HOME === '' ? undefined : env.HAAT_HOME,
    HAAT_RELOCATE_DIR: env.HAAT_RELOCATE_DIR === '' ? undefined : env.HAAT_RELOCATE_DIR,
    HAAT_ACTOR: env.HAAT_ACTOR === '' ? undefined : env.HAAT_ACTOR,
    PORT: env.PORT === '' ? undefined : env.PORT,
    LOG_LEVEL: env.LOG_LEVEL === '' ? undefined : env.LOG_LEVEL?.toLowerCase(),
    LOG_FORMAT: env.LOG_FORMAT === '' ? undefined : env.LOG_FORMAT?.toLowerCase(),
    HAAT_WAIT_FOR_WORKER_MS: env.HAAT_WAIT_FOR_WORKER_MS === '' ? undefined : env.HAAT_WAIT_FOR_WORKER_MS,
    HAAT_WORKER_HEARTBEAT_MS: env.HAAT_WORKER_HEARTBEAT_MS === '' ? undefined : env.HAAT_WORKER_HEARTBEAT_MS,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`invalid environment: ${issue?.path.join('.')} ${issue?.message}`);
  }
  const e = parsed.data;
  return {
    databaseUrl: e.DATABASE_URL,
    home: path.resolve(e.HAAT_HOME),
    relocateDir: e.HAAT_RELOCATE_DIR === undefined ? undefined : path.resolve(e.HAAT_RELOCATE_DIR),
    actor: e.HAAT_ACTOR ?? osUser(),
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    waitForWorkerMs: e.HAAT_WAIT_FOR_WORKER_MS,
    workerHeartbeatMs: e.HAAT_WORKER_HEARTBEAT_MS,
  };
}
