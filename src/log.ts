// The pino root logger. Logs go to stderr so stdout stays for results (tables, --json).
import { type Logger, pino } from 'pino';

export type { Logger };

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

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact,
      // bigint (money, ids) is logged as a string of digits, never coerced to a float; an error
      // anywhere in the object keeps its message, stack and code (JSON.stringify alone drops them).
      formatters: { log: (o) => JSON.parse(JSON.stringify(o, logReplacer)) },
    },
    pino.destination({ fd: 2, sync: true }),
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
