// The pino root logger. Logs go to stderr so stdout stays for results (tables, --json): JSON lines,
// or readable lines (pino-pretty, times in the operator's zone) when stderr is a terminal.
// LOG_FORMAT=json|pretty overrides the choice.
import { createRequire } from 'node:module';
import { type DestinationStream, type Logger, pino } from 'pino';
import { humanTime } from './time.ts';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

const redact = {
  paths: [
    'password',
    '*.password',
    'secret',
    '*.secret',
    'connectionString',
    '*.connectionString',
    'headers["webhook-signature"]',
    '*.headers["webhook-signature"]',
  ],
  censor: '[redacted]',
};

/** JSON unless stderr is a terminal (a person reads it). */
export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? 'pretty' : 'json';
}

function destination(format: LogFormat): DestinationStream {
  if (format === 'json') return pino.destination({ fd: 2, sync: true });
  // Loaded only for a terminal: most runs (services under a supervisor, scripts, tests) never pay for it.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return pretty({
    destination: 2,
    sync: true,
    colorize: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR,
    // The ISO time of the line, shown in the operator's zone (TZ), e.g. 2026-12-01 12:25:19.042 IST.
    translateTime: false,
    customPrettifiers: { time: (t) => `[${humanTime(String(t), { milliseconds: true })}]` },
    ignore: 'pid,hostname',
    singleLine: true,
  });
}

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', format: LogFormat = defaultLogFormat()): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      // JSON lines carry ISO-8601 in UTC, like every JSON haat writes.
      timestamp: pino.stdTimeFunctions.isoTime,
      redact,
      // bigint (money, ids) is logged as a string of digits, never coerced to a float; an error
      // anywhere in the object keeps its message, stack and code (JSON.stringify alone drops them).
      formatters: { log: (o) => JSON.parse(JSON.stringify(o, logReplacer)) },
    },
    destination(format),
  );
}

function logReplacer(key: string, value: unknown): unknown {
  if (value instanceof Error) return pino.stdSerializers.err(value);
  return bigintReplacer(key, value);
}

export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** Hides the password of a connection string, for printing and logging. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
