// When a delivery is tried again (docs/webhooks-out.md, Delivery): after 5 s, 5 min, 30 min, 2 h, 5 h,
// 10 h and 10 h, each ±20 % jitter, then it is failed. A 429 or 503 with Retry-After waits what the
// receiver asked, but at most the schedule's step. Pure: the clock and the dice are arguments.

/** The schedule, in seconds: the delay before the 2nd, 3rd… attempt of a round. */
export const RETRY_SCHEDULE_SECONDS: readonly number[] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
/** Attempts in one round: the first and one per step. */
export const ATTEMPTS_PER_ROUND = RETRY_SCHEDULE_SECONDS.length + 1;
export const JITTER = 0.2;

export type RetryDecision = { readonly retry: false } | { readonly retry: true; readonly delayMs: number };

/**
 * After the `attemptsInRound`-th failed attempt of a round (1 = the first), the delay before the
 * next one, or none when the round is over. `secondMs` is how long a second of the schedule lasts
 * (setting webhook_retry_second_ms: 1,000; tests shorten it); `random` is in [0, 1).
 */
export function nextRetry(
  attemptsInRound: number,
  options: { secondMs: number; retryAfterMs?: number | null; random: number },
): RetryDecision {
  const step = RETRY_SCHEDULE_SECONDS[attemptsInRound - 1];
  if (step === undefined) return { retry: false };
  const scheduled = step * options.secondMs;
  const jittered = Math.round(scheduled * (1 - JITTER + 2 * JITTER * options.random));
  if (options.retryAfterMs !== undefined && options.retryAfterMs !== null) {
    return { retry: true, delayMs: Math.max(0, Math.min(options.retryAfterMs, scheduled)) };
  }
  return { retry: true, delayMs: jittered };
}

/** A Retry-After header (delay-seconds or an HTTP date) as milliseconds from `now`; null if absent or unreadable. */
export function parseRetryAfter(header: string | undefined, now: Date): number | null {
  if (header === undefined) return null;
  const text = header.trim();
  if (/^[0-9]{1,10}$/.test(text)) return Number(text) * 1_000;
  const at = Date.parse(text);
  if (Number.isNaN(at) || !/[a-z]/i.test(text)) return null;
  return Math.max(0, at - now.getTime());
}
