// Whole-transaction retry. A deadlock, a serialization failure or a lost connection rolls the
// transaction back entirely; running it again from the start is correct. Bounded, with jitter.
// The callback must have no side effects outside the database: it may run more than once.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { isRetryable } from './errors.ts';
import type { DatabasePool, DatabaseTransaction } from './pool.ts';

export async function inTransaction<T>(
  pool: DatabasePool,
  fn: (tx: DatabaseTransaction) => Promise<T>,
  options: { attempts?: number; log?: Logger } = {},
): Promise<T> {
  return withRetry(() => pool.transaction(fn), options);
}

/** Runs `fn` (one transaction, or one statement that is its own) again on a retryable error. */
export async function withRetry<T>(fn: () => Promise<T>, options: { attempts?: number; log?: Logger } = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error)) throw error;
      options.log?.warn({ err: error, attempt }, 'transaction failed with a retryable error; running it again');
      await sleep(Math.floor(20 * 2 ** attempt * (0.5 + Math.random())));
    }
  }
}
