// SQL for outbound webhooks: endpoints (every change audited, in the transaction of the change),
// deliveries and their attempts. Events and their first deliveries are written by the database's
// triggers (sql/committed/000013.sql), in the transaction of the change they report.
//
// The outbox lock: adding, enabling or removing an endpoint takes `outbound_events` in SHARE mode,
// which waits for every transaction that has written events and is not committed yet, and makes
// new ones wait for this one. So an event written before the change has its delivery decided by
// the endpoint as it was (and the change then sees that delivery: enabling turns it pending), and
// an event written after sees the endpoint as it is now. An endpoint's created_at is clock time
// taken after the lock: every event created after it has its delivery (reconcile checks it).
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { HaatError, notFound } from '../errors.ts';
import { registerConstraint } from './errors.ts';
import { audit } from './operations.ts';
import type { DatabasePool, DatabaseTransaction, Queryable } from './pool.ts';
import { sql } from './sql.ts';
import { inTransaction } from './transaction.ts';

registerConstraint('webhook_deliveries_event_endpoint_key', 'conflict');

export const DELIVER_TASK = 'deliver_webhook';
export const ROTATED_SECRET_HOURS = 24;

export const EndpointRow = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  description: z.string().nullable(),
  allow_private: z.boolean(),
  state: z.enum(['enabled', 'disabled', 'removed']),
  state_reason: z.string().nullable(),
  failing_since: z.string().nullable(),
  created_at: z.string(),
});
export type EndpointRow = z.infer<typeof EndpointRow>;

const endpointColumns = sql.fragment`id, url, events, description, allow_private, state, state_reason, failing_since, created_at`;

/** A Standard Webhooks secret: `whsec_` and 24 random bytes in base64. */
export function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export function newEndpointId(): string {
  return `ep_${randomBytes(12).toString('hex')}`;
}

async function lockOutbox(tx: DatabaseTransaction): Promise<void> {
  await tx.query(sql.unsafe`lock table outbound_events in share mode`);
}

/**
 * Adds the job of each delivery's next attempt: key `dlv:<id>:<attempts made>`, so adding it again
 * (a retry while it waits) replaces it, and a job of an earlier attempt, left by a killed worker,
 * finds itself stale (deliver.ts). Jobs of deliveries held or failed meanwhile are not removed:
 * they run once and find nothing to do.
 */
export async function scheduleDeliveries(
  tx: DatabaseTransaction,
  deliveries: readonly { readonly id: string; readonly attempts: number }[],
  runAt?: string,
): Promise<void> {
  if (deliveries.length === 0) return;
  await tx.query(sql.unsafe`
    select graphile_worker.add_jobs(array(
      select row(${DELIVER_TASK}, json_build_object('delivery', d.id, 'attempt', d.attempts), null, ${runAt ?? null}::timestamptz,
                 null, 'dlv:' || d.id || ':' || d.attempts, null, null)::graphile_worker.job_spec
      from unnest(${sql.array(
        deliveries.map((d) => d.id),
        'text',
      )}, ${sql.array(
        deliveries.map((d) => String(d.attempts)),
        'int4',
      )}) as d(id, attempts)))`);
}

export type NewEndpoint = { url: string; events: readonly string[]; description: string | null; allowPrivate: boolean };

export async function addEndpoint(
  tx: DatabaseTransaction,
  endpoint: NewEndpoint,
  meta: { actor: string; reason: string },
): Promise<EndpointRow & { secret: string }> {
  await lockOutbox(tx);
  const row = await tx.one(sql.type(EndpointRow)`
    insert into webhook_endpoints (id, url, events, description, allow_private)
    values (${newEndpointId()}, ${endpoint.url}, ${sql.array(endpoint.events, 'text')}, ${endpoint.description}, ${endpoint.allowPrivate})
    returning ${endpointColumns}`);
  const secret = newSecret();
  await tx.query(sql.unsafe`insert into webhook_endpoint_secrets (endpoint_id, secret) values (${row.id}, ${secret})`);
  await audit(tx, {
    actor: meta.actor,
    action: 'endpoint.add',
    target: row.id,
    oldValue: null,
    newValue: publicEndpoint(row),
    reason: meta.reason,
  });
  return { ...row, secret };
}

/** What the audit log keeps of an endpoint (never a secret). */
function publicEndpoint(row: EndpointRow) {
  return { url: row.url, events: row.events, state: row.state, allow_private: row.allow_private, description: row.description };
}

export async function listEndpoints(db: Queryable, options: { includeRemoved?: boolean } = {}): Promise<readonly EndpointRow[]> {
  return db.any(sql.type(EndpointRow)`
    select ${endpointColumns} from webhook_endpoints
    where ${options.includeRemoved ? sql.fragment`true` : sql.fragment`state <> 'removed'`}
    order by created_at, id`);
}

export async function findEndpoint(db: Queryable, id: string): Promise<EndpointRow | null> {
  return db.maybeOne(sql.type(EndpointRow)`select ${endpointColumns} from webhook_endpoints where id = ${id}`);
}

async function lockEndpoint(tx: DatabaseTransaction, id: string): Promise<EndpointRow> {
  // No key update: it neither waits for nor blocks the deliveries being inserted for the endpoint.
  const row = await tx.maybeOne(sql.type(EndpointRow)`select ${endpointColumns} from webhook_endpoints where id = ${id} for no key update`);
  if (!row) throw notFound('endpoint', id);
  return row;
}

const SecretRow = z.object({ secret: z.string(), created_at: z.string(), expires_at: z.string().nullable() });

/**
 * The secrets that sign now, of an endpoint named by `endpoint` (an id, or a column of the query it
 * is part of): the current one and rotated ones not yet expired, current first, then newest.
 */
const liveSecretsOf = (endpoint: ReturnType<typeof sql.fragment>) => sql.fragment`
  select s.secret, s.created_at, s.expires_at from webhook_endpoint_secrets s
  where s.endpoint_id = ${endpoint} and (s.expires_at is null or s.expires_at > now())
  order by s.expires_at is null desc, s.created_at desc`;

export async function liveSecrets(db: Queryable, endpointId: string): Promise<readonly z.infer<typeof SecretRow>[]> {
  return db.any(sql.type(SecretRow)`${liveSecretsOf(sql.fragment`${endpointId}`)}`);
}

export type EndpointSummary = EndpointRow & {
  deliveries: Record<'pending' | 'held' | 'delivered' | 'failed', number>;
  secrets: { created_at: string; expires_at: string | null }[];
};

export async function showEndpoint(db: Queryable, id: string): Promise<EndpointSummary> {
  const row = await findEndpoint(db, id);
  if (!row) throw notFound('endpoint', id);
  const counts = await db.any(sql.type(z.object({ state: z.string(), n: z.number() }))`
    select state, count(*)::int as n from webhook_deliveries where endpoint_id = ${id} group by state`);
  const deliveries = { pending: 0, held: 0, delivered: 0, failed: 0 };
  for (const c of counts) deliveries[c.state as keyof typeof deliveries] = c.n;
  const secrets = (await liveSecrets(db, id)).map((s) => ({ created_at: s.created_at, expires_at: s.expires_at }));
  return { ...row, deliveries, secrets };
}

function refuseRemoved(row: EndpointRow): void {
  if (row.state === 'removed') {
    throw new HaatError('conflict', `endpoint ${row.id} was removed`, { endpoint: row.id, state: row.state });
  }
}

/**
 * Disables an endpoint: its pending deliveries are held (their jobs removed), and events keep
 * arriving as held deliveries until it is enabled. `actor` is `haat` when the delivery task
 * disables it (a 410, or 5 days of failures).
 */
export async function disableEndpoint(tx: DatabaseTransaction, id: string, meta: { actor: string; reason: string }): Promise<EndpointRow> {
  const before = await lockEndpoint(tx, id);
  refuseRemoved(before);
  if (before.state === 'disabled') return before;
  const row = await tx.one(sql.type(EndpointRow)`
    update webhook_endpoints set state = 'disabled', state_reason = ${meta.reason} where id = ${id} returning ${endpointColumns}`);
  const held = await tx.anyFirst(sql.type(z.object({ id: z.string() }))`
    update webhook_deliveries set state = 'held', next_attempt_at = null, updated_at = now()
    where endpoint_id = ${id} and state = 'pending' returning id`);
  await audit(tx, {
    actor: meta.actor,
    action: 'endpoint.disable',
    target: id,
    oldValue: { state: before.state },
    newValue: { state: 'disabled', held: held.length },
    reason: meta.reason,
  });
  return row;
}

/** Held deliveries are made pending in batches this large, each batch its own short transaction. */
const RELEASE_BATCH = 1_000;

/**
 * Enables an endpoint, then sends its held deliveries (a new round of the schedule each). The
 * state changes under the outbox lock, held a moment only: an event written before it has its
 * delivery held (released below), one written after it a pending one. The held deliveries are then
 * released in batches of their own, so a long outage's backlog never holds up the writers; enabling
 * an endpoint that is enabled releases what is still held (a release cut short is finished so).
 */
export async function enableEndpoint(
  pool: DatabasePool,
  id: string,
  meta: { actor: string; reason: string },
): Promise<EndpointRow & { released: number }> {
  const row = await inTransaction(pool, async (tx) => {
    await lockOutbox(tx);
    const before = await lockEndpoint(tx, id);
    refuseRemoved(before);
    if (before.state === 'enabled') return before;
    const enabled = await tx.one(sql.type(EndpointRow)`
      update webhook_endpoints set state = 'enabled', state_reason = ${meta.reason}, failing_since = null where id = ${id}
      returning ${endpointColumns}`);
    const held = await tx.oneFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int as n from webhook_deliveries where endpoint_id = ${id} and state = 'held'`);
    await audit(tx, {
      actor: meta.actor,
      action: 'endpoint.enable',
      target: id,
      oldValue: { state: before.state },
      newValue: { state: 'enabled', held },
      reason: meta.reason,
    });
    return enabled;
  });
  let released = 0;
  for (;;) {
    const batch = await inTransaction(pool, (tx) =>
      requeue(
        tx,
        sql.fragment`d.id in (select h.id from webhook_deliveries h where h.endpoint_id = ${id} and h.state = 'held' order by h.created_at limit ${RELEASE_BATCH})`,
      ),
    );
    released += batch.length;
    if (batch.length < RELEASE_BATCH) break;
  }
  return { ...row, released };
}

/** Removes an endpoint: no new deliveries; those pending or held are failed (nothing left hanging). */
export async function removeEndpoint(tx: DatabaseTransaction, id: string, meta: { actor: string; reason: string }): Promise<EndpointRow> {
  await lockOutbox(tx);
  const before = await lockEndpoint(tx, id);
  refuseRemoved(before);
  const row = await tx.one(sql.type(EndpointRow)`
    update webhook_endpoints set state = 'removed', state_reason = ${meta.reason}, removed_at = clock_timestamp() where id = ${id}
    returning ${endpointColumns}`);
  const failed = await tx.anyFirst(sql.type(z.object({ id: z.string() }))`
    update webhook_deliveries set state = 'failed', next_attempt_at = null, last_error = 'endpoint removed', updated_at = now()
    where endpoint_id = ${id} and state in ('pending', 'held') returning id`);
  await audit(tx, {
    actor: meta.actor,
    action: 'endpoint.remove',
    target: id,
    oldValue: publicEndpoint(before),
    newValue: { state: 'removed', failed: failed.length },
    reason: meta.reason,
  });
  return row;
}

/** A new current secret; the old one keeps signing for 24 h beside it. */
export async function rotateSecret(
  tx: DatabaseTransaction,
  id: string,
  meta: { actor: string; reason: string },
): Promise<EndpointRow & { secret: string; previous_secret_expires_at: string }> {
  const row = await lockEndpoint(tx, id);
  refuseRemoved(row);
  const expires = await tx.oneFirst(sql.type(z.object({ at: z.string() }))`
    select now() + make_interval(hours => ${ROTATED_SECRET_HOURS}) as at`);
  await tx.query(sql.unsafe`
    update webhook_endpoint_secrets set expires_at = ${expires}::timestamptz where endpoint_id = ${id} and expires_at is null`);
  const secret = newSecret();
  await tx.query(sql.unsafe`insert into webhook_endpoint_secrets (endpoint_id, secret) values (${id}, ${secret})`);
  await audit(tx, {
    actor: meta.actor,
    action: 'endpoint.rotate_secret',
    target: id,
    oldValue: null,
    newValue: { previous_secret_expires_at: expires },
    reason: meta.reason,
  });
  return { ...row, secret, previous_secret_expires_at: expires };
}

/**
 * Deliveries matching `where` start a new round: pending now with a job (held instead when their
 * endpoint is disabled). Returns the ids made pending.
 */
async function requeue(tx: DatabaseTransaction, where: ReturnType<typeof sql.fragment>): Promise<readonly string[]> {
  const rows = await tx.any(sql.type(z.object({ id: z.string(), attempts: z.number() }))`
    update webhook_deliveries d set state = 'pending', next_attempt_at = now(), round_start = d.attempts, updated_at = now()
    from webhook_endpoints p
    where p.id = d.endpoint_id and p.state = 'enabled' and ${where}
    returning d.id, d.attempts`);
  await scheduleDeliveries(tx, rows);
  return rows.map((r) => r.id);
}

/**
 * Sends again every event since `since` that the endpoint's patterns match: deliveries it has are
 * started again whatever their state; events it has none for (written before it was added) get
 * one. Held instead of pending while the endpoint is disabled.
 */
export async function recoverEndpoint(
  tx: DatabaseTransaction,
  id: string,
  since: string,
  meta: { actor: string; reason: string },
): Promise<{ endpoint: string; since: string; events: number; created: number }> {
  // No outbox lock: recover changes no endpoint and sees only committed events (those in flight
  // get their deliveries from their own fan-out), so it never holds up the writers.
  const endpoint = await lockEndpoint(tx, id);
  refuseRemoved(endpoint);
  const created = await tx.oneFirst(sql.type(z.object({ n: z.number() }))`
    with d as (
      insert into webhook_deliveries (id, event_id, endpoint_id, state, next_attempt_at)
      select outbox_id('dlv_'), e.id, ${id}, 'held', null
      from outbound_events e
      where e.created_at >= ${since}::timestamptz and webhook_patterns_match(${sql.array(endpoint.events, 'text')}, e.type)
        and not exists (select 1 from webhook_deliveries x where x.event_id = e.id and x.endpoint_id = ${id})
      order by e.created_at, e.id
      on conflict (event_id, endpoint_id) do nothing
      returning 1
    ) select count(*)::int as n from d`);
  const matching = sql.fragment`d.endpoint_id = ${id} and d.event_id in (
      select e.id from outbound_events e where e.created_at >= ${since}::timestamptz)`;
  const sent = await requeue(tx, matching);
  // A disabled endpoint: its deliveries since then wait, held, for it to be enabled.
  const held = await tx.oneFirst(sql.type(z.object({ n: z.number() }))`
    with h as (
      update webhook_deliveries d set state = 'held', next_attempt_at = null, round_start = d.attempts, updated_at = now()
      where ${matching} and d.state <> 'pending'
      returning 1
    ) select count(*)::int as n from h`);
  const events = sent.length + held;
  await audit(tx, {
    actor: meta.actor,
    action: 'endpoint.recover',
    target: id,
    oldValue: null,
    newValue: { since, events, created },
    reason: meta.reason,
  });
  return { endpoint: id, since, events, created };
}

export const DeliveryRow = z.object({
  id: z.string(),
  endpoint: z.string(),
  event: z.object({ id: z.string(), type: z.string() }),
  state: z.enum(['pending', 'held', 'delivered', 'failed']),
  attempts: z.number(),
  next_attempt_at: z.string().nullable(),
  last_status: z.number().nullable(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  delivered_at: z.string().nullable(),
});
export type DeliveryRow = z.infer<typeof DeliveryRow>;

const deliveryColumns = sql.fragment`
  d.id, d.endpoint_id as endpoint, json_build_object('id', e.id, 'type', e.type) as event, d.state, d.attempts,
  d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.delivered_at`;

export async function listDeliveries(
  db: Queryable,
  options: { endpoint?: string; state?: string; limit: number },
): Promise<readonly DeliveryRow[]> {
  return db.any(sql.type(DeliveryRow)`
    select ${deliveryColumns}
    from webhook_deliveries d join outbound_events e on e.id = d.event_id
    where ${options.endpoint === undefined ? sql.fragment`true` : sql.fragment`d.endpoint_id = ${options.endpoint}`}
      and ${options.state === undefined ? sql.fragment`true` : sql.fragment`d.state = ${options.state}`}
    order by d.created_at desc, d.id desc limit ${options.limit}`);
}

export const AttemptRow = z.object({
  at: z.string(),
  status: z.number().nullable(),
  duration_ms: z.number(),
  error: z.string().nullable(),
  excerpt: z.string().nullable(),
  address: z.string().nullable(),
});

export async function showDelivery(db: Queryable, id: string) {
  const row = await db.maybeOne(sql.type(DeliveryRow)`
    select ${deliveryColumns} from webhook_deliveries d join outbound_events e on e.id = d.event_id where d.id = ${id}`);
  if (!row) throw notFound('delivery', id);
  const attempts = await db.any(sql.type(AttemptRow)`
    select at, status, duration_ms, error, excerpt, address from webhook_delivery_attempts where delivery_id = ${id} order by id`);
  return { ...row, attempt_log: attempts };
}

/** Sends a delivery again now, whatever its state (a new round); refused while its endpoint is not enabled. */
export async function retryDelivery(tx: DatabaseTransaction, id: string, meta: { actor: string; reason: string }) {
  const row = await tx.maybeOne(sql.type(
    z.object({ id: z.string(), endpoint_id: z.string(), state: z.string(), endpoint_state: z.string() }),
  )`
    select d.id, d.endpoint_id, d.state, p.state as endpoint_state
    from webhook_deliveries d join webhook_endpoints p on p.id = d.endpoint_id where d.id = ${id} for update of d for share of p`);
  if (!row) throw notFound('delivery', id);
  if (row.endpoint_state !== 'enabled') {
    throw new HaatError(
      'conflict',
      `endpoint ${row.endpoint_id} is ${row.endpoint_state}: enable it first (its held deliveries are sent then)`,
      {
        delivery: id,
        endpoint: row.endpoint_id,
        endpoint_state: row.endpoint_state,
      },
    );
  }
  if ((await requeue(tx, sql.fragment`d.id = ${id}`)).length === 0) {
    throw new HaatError('conflict', `delivery ${id} could not be sent again: its endpoint ${row.endpoint_id} is not enabled`, {
      delivery: id,
      endpoint: row.endpoint_id,
    });
  }
  await audit(tx, {
    actor: meta.actor,
    action: 'delivery.retry',
    target: id,
    oldValue: { state: row.state },
    newValue: { state: 'pending' },
    reason: meta.reason,
  });
  return showDelivery(tx, id);
}

/** An outbound event as its body is rendered from (src/outbox/render.ts). */
export const OutboundEventRow = z.object({
  id: z.string(),
  type: z.string(),
  sequence: z.number().nullable(),
  /** What the trigger kept: the order's changing parts at the event, the transition or payment. */
  data: z.record(z.string(), z.unknown()),
  created_at: z.string(),
  /** outbox_order() of the order it names (what does not change), or null. */
  order: z.record(z.string(), z.unknown()).nullable(),
  /** outbox_transition() of an order event's transition, or null. */
  transition: z.record(z.string(), z.unknown()).nullable(),
});
export type OutboundEventRow = z.infer<typeof OutboundEventRow>;

export const AttemptTarget = z.object({
  id: z.string(),
  state: z.string(),
  attempts: z.number(),
  round_start: z.number(),
  endpoint_id: z.string(),
  endpoint_state: z.string(),
  url: z.string(),
  allow_private: z.boolean(),
  /** The secrets that sign now, current first (liveSecrets). */
  secrets: z.array(z.string()),
  /** The stored values of webhook_timeout_ms and webhook_retry_second_ms (null: unset). */
  timeout_setting: z.unknown(),
  second_setting: z.unknown(),
  event: OutboundEventRow,
});
export type AttemptTarget = z.infer<typeof AttemptTarget>;

/** What one attempt needs, in one round trip: the delivery, its endpoint, secrets, event and settings. */
export async function attemptTarget(db: Queryable, id: string): Promise<AttemptTarget | null> {
  return db.maybeOne(sql.type(AttemptTarget)`
    select d.id, d.state, d.attempts, d.round_start, d.endpoint_id, p.state as endpoint_state, p.url, p.allow_private,
           array(select l.secret from (${liveSecretsOf(sql.fragment`p.id`)}) l) as secrets,
           (select value from settings where key = 'webhook_timeout_ms') as timeout_setting,
           (select value from settings where key = 'webhook_retry_second_ms') as second_setting,
           json_build_object('id', e.id, 'type', e.type, 'sequence', e.sequence, 'data', e.data,
                             'created_at', to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                             'order', (select outbox_order(o) from orders o where o.id = e.order_id),
                             'transition', (select outbox_transition(t) from order_transitions t where t.id = e.transition_id)) as event
    from webhook_deliveries d join webhook_endpoints p on p.id = d.endpoint_id join outbound_events e on e.id = d.event_id
    where d.id = ${id}`);
}
