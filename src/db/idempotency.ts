// SQL for idempotency keys. The key row is claimed together with the job that applies it, and its
// outcome is written in the transaction of the effect.
import { z } from 'zod';
import type { Command, Outcome } from '../domain/commands.ts';
import { parseJsonExact, toJsonText } from '../domain/json.ts';
import type { Queryable } from './pool.ts';
import { sql } from './sql.ts';

export const KeyRow = z.object({
  scope: z.string(),
  key: z.string(),
  fingerprint: z.string(),
  command_type: z.string(),
  payload: z.unknown(),
  actor: z.string(),
  state: z.enum(['pending', 'done']),
  outcome_text: z.string().nullable(),
  bypass_maintenance: z.boolean(),
  /** Milliseconds since the key was claimed, by the database clock. */
  age_ms: z.number(),
});
export type KeyRow = z.infer<typeof KeyRow>;

export const OutcomeSchema: z.ZodType<Outcome> = z.union([
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) }),
  }),
]) as z.ZodType<Outcome>;

export const APPLY_COMMAND_TASK = 'apply_command';
export const OUTCOME_CHANNEL = 'haat_outcome';
/** Webhook events run under the scope `webhook:<source>`, keyed by their webhook-id. */
export const WEBHOOK_SCOPE_PREFIX = 'webhook:';
/** graphile-worker job flag of domain work: workers forbid it while maintenance mode is on. */
export const DOMAIN_FLAG = 'domain';

/** The stored outcome, integers exact. */
export function outcomeOf(row: KeyRow): Outcome | null {
  return row.outcome_text === null ? null : OutcomeSchema.parse(parseJsonExact(row.outcome_text));
}

/** An outcome as it reads back from storage, so the first caller and every replay see the same value. */
export function storedForm(outcome: Outcome): Outcome {
  return OutcomeSchema.parse(parseJsonExact(toJsonText(outcome)));
}

export const JOB_KEY_PREFIX = 'cmd:';

export function jobKeyOf(scope: string, key: string): string {
  return `${JOB_KEY_PREFIX}${scope}:${key}`;
}

/** The start of a webhook event's job key: `<this><source>:<webhook-id>` (for SQL that joins jobs to events). */
export const WEBHOOK_JOB_KEY_PREFIX = `${JOB_KEY_PREFIX}${WEBHOOK_SCOPE_PREFIX}`;

export async function findKey(db: Queryable, scope: string, key: string): Promise<KeyRow | null> {
  return db.maybeOne(sql.type(KeyRow)`
    select scope, key, fingerprint, command_type, payload, actor, state, outcome::text as outcome_text, bypass_maintenance,
           (extract(epoch from now() - created_at) * 1000)::float8 as age_ms
    from idempotency_keys where scope = ${scope} and key = ${key}`);
}

/** The keys of `keys` that exist in `scope` (one query for any number). */
export async function findKeys(db: Queryable, scope: string, keys: readonly string[]): Promise<readonly KeyRow[]> {
  if (keys.length === 0) return [];
  return db.any(sql.type(KeyRow)`
    select scope, key, fingerprint, command_type, payload, actor, state, outcome::text as outcome_text, bypass_maintenance,
           (extract(epoch from now() - created_at) * 1000)::float8 as age_ms
    from idempotency_keys where scope = ${scope} and key = any(${sql.array(keys, 'text')})`);
}

export async function lockKey(db: Queryable, scope: string, key: string): Promise<KeyRow | null> {
  return db.maybeOne(sql.type(KeyRow)`
    select scope, key, fingerprint, command_type, payload, actor, state, outcome::text as outcome_text, bypass_maintenance,
           (extract(epoch from now() - created_at) * 1000)::float8 as age_ms
    from idempotency_keys where scope = ${scope} and key = ${key} for update`);
}

export type Claim = {
  scope: string;
  key: string;
  fingerprint: string;
  command: { type: string; payload: unknown };
  actor: string;
  bypassMaintenance?: boolean;
};

/**
 * Claims the keys in the caller's transaction, in one statement, without jobs (for commands applied
 * at once, in the same transaction). Returns the claims made now, as `scope:key`; a key that already
 * existed is not among them (a concurrent claim waits for the first to commit, then sees it).
 */
export async function claimKeys(db: Queryable, claims: readonly Claim[]): Promise<ReadonlySet<string>> {
  if (claims.length === 0) return new Set();
  const text = (f: (c: Claim) => string) => sql.array(claims.map(f), 'text');
  const rows = await db.any(sql.type(z.object({ scope: z.string(), key: z.string() }))`
    insert into idempotency_keys (scope, key, fingerprint, command_type, payload, actor, bypass_maintenance)
    select * from unnest(${text((c) => c.scope)}, ${text((c) => c.key)}, ${text((c) => c.fingerprint)}, ${text((c) => c.command.type)},
      ${sql.array(
        claims.map((c) => toJsonText(c.command.payload ?? null)),
        'jsonb',
      )}, ${text((c) => c.actor)}, ${sql.array(
        claims.map((c) => c.bypassMaintenance === true),
        'bool',
      )})
    on conflict (scope, key) do nothing
    returning scope, key`);
  return new Set(rows.map((r) => `${r.scope}:${r.key}`));
}

/** Claims one key (claimKeys); false when it already existed. */
export async function claimKey(db: Queryable, claim: Claim): Promise<boolean> {
  return (await claimKeys(db, [claim])).size > 0;
}

/**
 * Locks the rows of existing keys, given as [scope, key] pairs (one query for any number). With
 * skipLocked, keys another transaction holds are left out instead of waited for.
 */
export async function lockKeys(
  db: Queryable,
  keys: readonly (readonly [string, string])[],
  options: { skipLocked?: boolean } = {},
): Promise<readonly KeyRow[]> {
  if (keys.length === 0) return [];
  const scopes = sql.array(
    keys.map(([scope]) => scope),
    'text',
  );
  const names = sql.array(
    keys.map(([, key]) => key),
    'text',
  );
  return db.any(sql.type(KeyRow)`
    select scope, key, fingerprint, command_type, payload, actor, state, outcome::text as outcome_text, bypass_maintenance,
           (extract(epoch from now() - created_at) * 1000)::float8 as age_ms
    from idempotency_keys where (scope, key) in (select * from unnest(${scopes}, ${names}))
    order by scope, key for update${options.skipLocked ? sql.fragment` skip locked` : sql.fragment``}`);
}

/** Claims the key (claimKey) and enqueues its job in the caller's transaction; false when the key already existed. */
export async function claimKeyAndEnqueue(db: Queryable, claim: Claim & { command: Command }): Promise<boolean> {
  return (await claimKeysAndEnqueue(db, [claim])).size > 0;
}

/**
 * Claims many keys (claimKeys, one statement) and enqueues a job for each key claimed now, in one
 * `add_jobs` call; all in the caller's transaction. Returns the claims made now, as `scope:key`.
 */
export async function claimKeysAndEnqueue(db: Queryable, claims: readonly Claim[]): Promise<ReadonlySet<string>> {
  const claimed = await claimKeys(db, claims);
  const jobs = claims.filter((c) => claimed.has(`${c.scope}:${c.key}`));
  if (jobs.length === 0) return claimed;
  await db.query(sql.unsafe`
    select count(*) from graphile_worker.add_jobs(array(
      select row(
        ${APPLY_COMMAND_TASK}::text, json_build_object('scope', j.scope, 'key', j.key), null, null, 10,
        ${JOB_KEY_PREFIX}::text || j.scope || ':' || j.key, null,
        case when j.bypass then null else array[${DOMAIN_FLAG}::text] end
      )::graphile_worker.job_spec
      from unnest(${sql.array(
        jobs.map((j) => j.scope),
        'text',
      )}, ${sql.array(
        jobs.map((j) => j.key),
        'text',
      )}, ${sql.array(
        jobs.map((j) => j.bypassMaintenance === true),
        'bool',
      )}) with ordinality as j(scope, key, bypass, n)
      order by j.n))`);
  return claimed;
}

/**
 * The order an outcome concerns: the order the command named, or a placement's ref (a return
 * request names its order and its own ref: the order is the one meant).
 */
function orderNamed(payload: unknown): string | null {
  if (payload === null || typeof payload !== 'object') return null;
  const p = payload as Record<string, unknown>;
  const named = p.order ?? p.ref;
  return typeof named === 'string' ? named : null;
}

/**
 * Records the outcome on the key, in the transaction of the effect. For a webhook event (scope
 * `webhook:<source>`, key = webhook-id) it also writes the event's own outcome row, which outlives
 * the key's retention. `attempts` is the job's attempt that reached the outcome (1 when applied inline).
 */
export async function recordOutcome(
  db: Queryable,
  scope: string,
  key: string,
  outcome: Outcome,
  options: { attempts?: number; payload?: unknown } = {},
): Promise<void> {
  await recordOutcomes(db, [{ scope, key, outcome, ...options }]);
}

export type RecordedOutcome = {
  readonly scope: string;
  readonly key: string;
  readonly outcome: Outcome;
  /** The job's attempt that reached the outcome (1 when applied inline). */
  readonly attempts?: number;
  /** The command's payload: names the order of a webhook event's outcome row. */
  readonly payload?: unknown;
};

/**
 * recordOutcome for many keys at once, in the transaction of their effects: the same update, event
 * outcome rows and notifications, one statement each.
 */
export async function recordOutcomes(db: Queryable, outcomes: readonly RecordedOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  const text = (f: (o: RecordedOutcome) => string | null) => sql.array(outcomes.map(f) as string[], 'text');
  const scopes = text((o) => o.scope);
  const keys = text((o) => o.key);
  const texts = sql.array(
    outcomes.map((o) => toJsonText(o.outcome)),
    'jsonb',
  );
  await db.query(sql.unsafe`
    update idempotency_keys k set state = 'done', outcome = o.outcome, completed_at = now()
    from unnest(${scopes}, ${keys}, ${texts}) as o(scope, key, outcome)
    where k.scope = o.scope and k.key = o.key and k.state = 'pending'`);
  const events = outcomes.filter((o) => o.scope.startsWith(WEBHOOK_SCOPE_PREFIX));
  if (events.length > 0) {
    const column = (f: (o: RecordedOutcome) => string | null) => sql.array(events.map(f) as string[], 'text');
    await db.query(sql.unsafe`
      insert into webhook_event_outcomes (source, webhook_id, code, order_ref, attempts, outcome)
      select e.source, e.webhook_id, o.code, o.order_ref, o.attempts, o.outcome
      from unnest(${column((o) => o.scope.slice(WEBHOOK_SCOPE_PREFIX.length))}, ${column((o) => o.key)},
                  ${column((o) => (o.outcome.ok ? 'applied' : o.outcome.error.code))}, ${column((o) => orderNamed(o.payload))},
                  ${sql.array(
                    events.map((o) => Math.max(1, o.attempts ?? 1)),
                    'int4',
                  )}, ${sql.array(
                    events.map((o) => toJsonText(o.outcome)),
                    'jsonb',
                  )}) as o(source, webhook_id, code, order_ref, attempts, outcome)
      join webhook_events e on e.source = o.source and e.webhook_id = o.webhook_id
      on conflict (source, webhook_id) do nothing`);
  }
  await db.query(sql.unsafe`
    select count(pg_notify(${OUTCOME_CHANNEL}, o.scope || ':' || o.key)) from unnest(${scopes}, ${keys}) as o(scope, key)`);
}

/** Is a worker holding this command's job right now? */
export async function jobLocked(db: Queryable, scope: string, key: string): Promise<boolean> {
  return db.oneFirst(sql.type(z.object({ locked: z.boolean() }))`
    select exists (select 1 from graphile_worker.jobs where key = ${jobKeyOf(scope, key)} and locked_at is not null) as locked`);
}

/** Removes the job of a command applied inline, unless a worker holds it. */
export async function removeJob(db: Queryable, scope: string, key: string): Promise<void> {
  await db.query(sql.unsafe`select graphile_worker.remove_job(${jobKeyOf(scope, key)})`);
}

/** Deletes finished keys older than the retention, in batches; returns how many. */
export async function purgeKeys(db: Queryable, retentionHours: number, batch = 1000): Promise<number> {
  const result = await db.query(sql.unsafe`
    delete from idempotency_keys where ctid = any (array(
      select ctid from idempotency_keys
      where state = 'done' and completed_at < now() - make_interval(hours => ${retentionHours})
      limit ${batch} for update skip locked))`);
  return result.rowCount;
}
