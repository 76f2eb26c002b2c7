// One attempt of one delivery (docs/webhooks-out.md, Delivery), run by the deliver_webhook task:
// read the delivery, its endpoint and its event (no transaction held); sign the body with every
// live secret of the endpoint; POST it (send.ts); then, in one short transaction, record the attempt
// and decide: delivered (2xx), held and the endpoint disabled (410), tried again later on the
// schedule (anything else, 429/503 honouring Retry-After), or failed after the round's last
// attempt. An endpoint failing for 5 days is disabled. A worker killed anywhere in between leaves
// the delivery pending with its job (retried once the dead worker's job is unlocked): nothing is
// lost, at worst an attempt is made twice.
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import type { DatabasePool, DatabaseTransaction } from '../db/pool.ts';
import { settingValue } from '../db/settings.ts';
import { sql } from '../db/sql.ts';
import { inTransaction, withRetry } from '../db/transaction.ts';
import { type AttemptTarget, attemptTarget, disableEndpoint, scheduleDeliveries } from '../db/webhooks-out.ts';
import type { Logger } from '../log.ts';
import { renderBody } from './render.ts';
import { nextRetry, parseRetryAfter } from './schedule.ts';
import { type AttemptResult, postOnce } from './send.ts';

/** An endpoint whose attempts have failed, with none delivered, for this long is disabled. */
export const DISABLE_AFTER_MS = 5 * 24 * 3600 * 1000;

export type AttemptOutcome = 'delivered' | 'retry' | 'failed' | 'held' | 'skipped';

/** The Standard Webhooks headers, with a `v1,…` signature for each secret (space-separated). */
export function signatureHeaders(secrets: readonly string[], id: string, body: string, at: Date): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(id, at, body)).join(' '),
  };
}

/**
 * Makes attempt number `attempt + 1` of a delivery (its job names how many were made when it was
 * scheduled); a job whose attempt was made already (a killed worker's, unlocked) is stale: skipped.
 */
export async function deliverOnce(pool: DatabasePool, deliveryId: string, attempt: number, log: Logger): Promise<AttemptOutcome> {
  const target = await attemptTarget(pool, deliveryId);
  if (target?.state !== 'pending' || target.attempts !== attempt) return 'skipped';
  if (target.endpoint_state !== 'enabled' && (await holdUnlessEnabled(pool, target))) return 'held';
  const timeoutMs = settingValue('webhook_timeout_ms', target.timeout_setting);
  const secondMs = settingValue('webhook_retry_second_ms', target.second_setting);
  const body = renderBody(target.event);
  const at = new Date();
  const result = await postOnce({
    url: target.url,
    body,
    headers: signatureHeaders(target.secrets, target.event.id, body, at),
    timeoutMs,
    allowPrivate: target.allow_private,
  });
  const outcome =
    (await withRetry(() => recordDelivered(pool, target, result))) ??
    (await inTransaction(pool, (tx) => recordAttempt(tx, target, result, secondMs)));
  log[outcome === 'delivered' ? 'debug' : 'info'](
    { delivery: deliveryId, endpoint: target.endpoint_id, event: target.event.id, status: result.status, error: result.error, outcome },
    'webhook delivery attempt',
  );
  return outcome;
}

/**
 * A pending delivery of an endpoint that is not enabled (an event written while it was being
 * disabled): held, or failed if removed, under a share lock of the endpoint row so that an enable
 * running now either sees it held (and sends it) or has committed first (then it is attempted now:
 * returns false).
 */
async function holdUnlessEnabled(pool: DatabasePool, target: AttemptTarget): Promise<boolean> {
  return inTransaction(pool, async (tx) => {
    const state = await tx.oneFirst(sql.type(z.object({ state: z.string() }))`
      select state from webhook_endpoints where id = ${target.endpoint_id} for share`);
    if (state === 'enabled') return false;
    await tx.query(sql.unsafe`
      update webhook_deliveries set state = ${state === 'removed' ? 'failed' : 'held'}, next_attempt_at = null, updated_at = now(),
        last_error = case when ${state} = 'removed' then 'endpoint removed' else last_error end
      where id = ${target.id} and state = 'pending'`);
    return true;
  });
}

/**
 * The common case in one statement (one round trip, no explicit transaction): a 2xx for a delivery
 * still pending after the attempts it had when read. Otherwise (not 2xx, or changed meanwhile)
 * null, and recordAttempt decides under the row lock.
 */
async function recordDelivered(pool: DatabasePool, target: AttemptTarget, result: AttemptResult): Promise<AttemptOutcome | null> {
  if (result.status === null || result.status < 200 || result.status >= 300) return null;
  const recorded = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
    with d as (
      update webhook_deliveries set state = 'delivered', attempts = attempts + 1, next_attempt_at = null,
        last_status = ${result.status}, last_error = null, updated_at = now(), delivered_at = now()
      where id = ${target.id} and state = 'pending' and attempts = ${target.attempts}
      returning id, endpoint_id
    ), a as (
      insert into webhook_delivery_attempts (delivery_id, number, at, status, duration_ms, error, excerpt, address)
      select id, ${target.attempts + 1}, ${result.at.toISOString()}::timestamptz, ${result.status}, ${result.durationMs}, null, ${result.excerpt}, ${result.address} from d
    ), p as (
      update webhook_endpoints set failing_since = null where id in (select endpoint_id from d) and failing_since is not null
    )
    select count(*)::int as n from d`);
  return recorded === 1 ? 'delivered' : null;
}

const Locked = z.object({ state: z.string(), attempts: z.number(), round_start: z.number() });
const LockedEndpoint = z.object({ state: z.string(), failing_for_ms: z.number().nullable() });

/**
 * Records an attempt and decides what follows, under the locks of the endpoint and then the
 * delivery: the order disable, enable and remove take them in (so they never deadlock).
 */
async function recordAttempt(
  tx: DatabaseTransaction,
  target: AttemptTarget,
  result: AttemptResult,
  secondMs: number,
): Promise<AttemptOutcome> {
  const endpointBefore = await tx.one(sql.type(LockedEndpoint)`
    select state, (extract(epoch from now() - failing_since) * 1000)::float8 as failing_for_ms
    from webhook_endpoints where id = ${target.endpoint_id} for no key update`);
  const current = await tx.one(sql.type(Locked)`
    select state, attempts, round_start from webhook_deliveries where id = ${target.id} for update`);
  // This job made attempt number target.attempts + 1. Recorded already (its first recording
  // committed, the reply was lost, and it is run again), or another job's attempt took that number
  // (two at once: at least once): nothing more to record.
  if (current.attempts !== target.attempts) return 'skipped';
  await tx.query(sql.unsafe`
    insert into webhook_delivery_attempts (delivery_id, number, at, status, duration_ms, error, excerpt, address)
    values (${target.id}, ${target.attempts + 1}, ${result.at.toISOString()}::timestamptz, ${result.status}, ${result.durationMs}, ${result.error}, ${result.excerpt}, ${result.address})`);
  const attempts = current.attempts + 1;
  const status = result.status;
  const ok = status !== null && status >= 200 && status < 300;
  const lastError = ok ? null : (result.error ?? `HTTP ${status}`);
  const record = (state: string, nextAt: string | null) =>
    tx.query(sql.unsafe`
      update webhook_deliveries set state = ${state}, attempts = ${attempts}, next_attempt_at = ${nextAt}::timestamptz,
        last_status = ${status}, last_error = ${lastError}, updated_at = now(),
        delivered_at = case when ${state} = 'delivered' then now() else delivered_at end
      where id = ${target.id}`);
  if (ok) {
    await record('delivered', null);
    await tx.query(
      sql.unsafe`update webhook_endpoints set failing_since = null where id = ${target.endpoint_id} and failing_since is not null`,
    );
    return 'delivered';
  }
  // The first failure since the last delivery starts the endpoint's failing time (written once).
  if (endpointBefore.failing_for_ms === null) {
    await tx.query(sql.unsafe`
      update webhook_endpoints set failing_since = ${result.at.toISOString()}::timestamptz
      where id = ${target.endpoint_id} and failing_since is null`);
  }
  const endpoint = { state: endpointBefore.state, failing_for_ms: endpointBefore.failing_for_ms ?? 0 };
  if (status === 410) {
    await record(current.state === 'pending' ? 'held' : current.state, null);
    if (endpoint.state === 'enabled') {
      await disableEndpoint(tx, target.endpoint_id, { actor: 'haat', reason: `${target.url} answered 410 Gone` });
    }
    return 'held';
  }
  let outcome: AttemptOutcome;
  if (current.state !== 'pending') {
    // Held, failed or delivered meanwhile (an operator, another attempt): the attempt is kept, the state too.
    await record(current.state, null);
    outcome = current.state === 'held' ? 'held' : 'skipped';
  } else {
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(result.retryAfter, result.at) : null;
    const decision = nextRetry(attempts - current.round_start, { secondMs, retryAfterMs, random: Math.random() });
    if (decision.retry) {
      const nextAt = new Date(Date.now() + decision.delayMs).toISOString();
      await record('pending', nextAt);
      await scheduleDeliveries(tx, [{ id: target.id, attempts }], nextAt);
      outcome = 'retry';
    } else {
      await record('failed', null);
      outcome = 'failed';
    }
  }
  if (endpoint.state === 'enabled' && endpoint.failing_for_ms >= DISABLE_AFTER_MS) {
    await disableEndpoint(tx, target.endpoint_id, { actor: 'haat', reason: 'every attempt has failed for 5 days' });
    if (outcome === 'retry') outcome = 'held';
  }
  return outcome;
}
