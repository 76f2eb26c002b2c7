// The webhook inbox as operators see it (docs/contract.md, Events): each accepted event with its state
// and outcome. An event is `done` once its outcome row exists (written with the effect); until then its
// job says where it is: `held` by maintenance mode, `retrying` after a failed attempt, `queued`; `failed`
// when its job gave up or is gone (reconcile names those too).
import type { FragmentSqlToken, ListSqlToken } from 'slonik';
import { z } from 'zod';
import { parseJsonExact } from '../domain/json.ts';
import { WEBHOOK_JOB_KEY_PREFIX, WEBHOOK_SCOPE_PREFIX } from './idempotency.ts';
import type { Queryable } from './pool.ts';
import { sql } from './sql.ts';

export const eventStates = ['queued', 'held', 'retrying', 'done', 'failed'] as const;
export type EventState = (typeof eventStates)[number];

export type EventFilter = {
  readonly source?: string;
  readonly type?: string;
  readonly outcome?: string;
  readonly state?: EventState;
  readonly since?: string;
  readonly limit: number;
};

const EventRow = z.object({
  source: z.string(),
  id: z.string(),
  type: z.string(),
  received_at: z.string(),
  state: z.enum(eventStates),
  outcome_code: z.string().nullable(),
  outcome_text: z.string().nullable(),
  outcome_at: z.string().nullable(),
  order_ref: z.string().nullable(),
  attempts: z.number(),
  last_error: z.string().nullable(),
});
type EventRow = z.infer<typeof EventRow>;

export type EventJson = {
  readonly source: string;
  readonly id: string;
  readonly type: string;
  readonly received_at: string;
  readonly state: EventState;
  readonly outcome: { readonly code: string; readonly message: string; readonly at: string } | null;
  readonly order: string | null;
  readonly attempts: number;
  readonly last_error: string | null;
};

/** One line for an outcome: the error's message, or what the applied command left the order as. */
function outcomeMessage(text: string): string {
  const outcome = parseJsonExact(text) as { ok: boolean; result?: unknown; error?: { message?: unknown } };
  if (!outcome.ok) return String(outcome.error?.message ?? '');
  const result = outcome.result as { ref?: unknown; state?: unknown } | null | undefined;
  return typeof result?.ref === 'string' && typeof result.state === 'string' ? `order ${result.ref} is ${result.state}` : 'applied';
}

function toJson(row: EventRow): EventJson {
  return {
    source: row.source,
    id: row.id,
    type: row.type,
    received_at: row.received_at,
    state: row.state,
    outcome:
      row.outcome_code !== null && row.outcome_text !== null && row.outcome_at !== null
        ? { code: row.outcome_code, message: outcomeMessage(row.outcome_text), at: row.outcome_at }
        : null,
    order: row.order_ref,
    attempts: row.attempts,
    last_error: row.last_error,
  };
}

const stateExpression = sql.fragment`
  case
    when o.webhook_id is not null then 'done'
    when j.id is null or j.attempts >= j.max_attempts then 'failed'
    when m.enabled and j.flags ? 'domain' then 'held'
    -- graphile-worker counts an attempt when it takes the job: only a failed one makes it retrying.
    when j.attempts > 0 and j.last_error is not null then 'retrying'
    else 'queued'
  end`;

function eventsQuery(where: FragmentSqlToken | ListSqlToken, limit: number, withBody: boolean) {
  return sql.type(EventRow.extend(withBody ? { body: z.string() } : {}))`
    select e.source, e.webhook_id as id, e.event_type as type, e.received_at,
           ${stateExpression} as state,
           o.code as outcome_code, o.outcome::text as outcome_text, o.recorded_at as outcome_at,
           coalesce(o.order_ref, k.payload ->> 'order', k.payload ->> 'ref') as order_ref,
           coalesce(o.attempts, j.attempts, 0) as attempts,
           case when o.webhook_id is null then nullif(split_part(coalesce(j.last_error, case when j.id is null then 'its job is gone' end, ''), E'\\n', 1), '') end as last_error
           ${withBody ? sql.fragment`, e.body` : sql.fragment``}
    from webhook_events e
    cross join maintenance m
    left join webhook_event_outcomes o on o.source = e.source and o.webhook_id = e.webhook_id
    left join idempotency_keys k on k.scope = ${WEBHOOK_SCOPE_PREFIX} || e.source and k.key = e.webhook_id
    left join graphile_worker.jobs j on j.key = ${WEBHOOK_JOB_KEY_PREFIX} || e.source || ':' || e.webhook_id
    where ${where}
    order by e.received_at desc, e.source, e.webhook_id
    limit ${limit}`;
}

export async function listEvents(db: Queryable, filter: EventFilter): Promise<EventJson[]> {
  const conditions = [
    filter.source === undefined ? null : sql.fragment`e.source = ${filter.source}`,
    filter.type === undefined ? null : sql.fragment`e.event_type = ${filter.type}`,
    filter.outcome === undefined ? null : sql.fragment`o.code = ${filter.outcome}`,
    filter.since === undefined ? null : sql.fragment`e.received_at >= ${filter.since}::timestamptz`,
    filter.state === undefined ? null : sql.fragment`${stateExpression} = ${filter.state}`,
  ].filter((c) => c !== null);
  const where = conditions.length === 0 ? sql.fragment`true` : sql.join(conditions, sql.fragment` and `);
  const rows = await db.any(eventsQuery(where, filter.limit, false));
  return rows.map(toJson);
}

export async function findEvent(db: Queryable, source: string, id: string): Promise<(EventJson & { body: string }) | null> {
  const row = await db.maybeOne(eventsQuery(sql.fragment`e.source = ${source} and e.webhook_id = ${id}`, 1, true));
  return row ? { ...toJson(row), body: (row as EventRow & { body: string }).body } : null;
}
