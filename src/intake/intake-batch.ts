// Group commit for the webhook intake. A verified, parsed event is stored together with the others
// that arrived meanwhile (while the batches in flight commit, or within the linger) in ONE statement
// and so one transaction: the storefront_order_placed flag read, one multi-row insert into the inbox
// (webhook_events), every new event's idempotency key claimed and its job added in one add_jobs
// call, as data-modifying CTEs. Each request is answered only after
// that commit, with its own result: stored now (202), or there already (200 or 409, by the body's
// hash), or refused by the storefront_order_placed flag (503, nothing stored).
// A batch that fails on a lost connection fails every request in it (503: nothing was stored). A
// batch that fails otherwise (one row the database refuses) is stored again one event per
// transaction, so the one bad row fails alone and the others are stored.

import { z } from 'zod';
import { isConnectionFailure } from '../db/errors.ts';
import { APPLY_COMMAND_TASK, DOMAIN_FLAG, JOB_KEY_PREFIX, WEBHOOK_SCOPE_PREFIX } from '../db/idempotency.ts';
import type { DatabasePool, Queryable } from '../db/pool.ts';
import { sql } from '../db/sql.ts';
import { withRetry } from '../db/transaction.ts';
import { type Command, fingerprint } from '../domain/commands.ts';
import type { Source } from '../domain/events.ts';
import { toJsonText } from '../domain/json.ts';
import { createGroupCommit, type Settled } from '../group-commit.ts';
import type { Logger } from '../log.ts';

export type IntakeEvent = {
  readonly source: Source;
  readonly webhookId: string;
  readonly eventType: string;
  readonly bodySha256: string;
  readonly body: string;
  readonly command: Command;
};

export type IntakeResult =
  /** Stored by this request: in the inbox, its key claimed and its job queued. */
  | { readonly status: 'stored' }
  /** The inbox held this webhook-id already (or an earlier request of the same batch stored it). */
  | { readonly status: 'exists'; readonly bodySha256: string }
  /** order.placed while the storefront_order_placed flag is off: nothing stored. */
  | { readonly status: 'disabled' };

export type IntakeBatcher = {
  store(event: IntakeEvent): Promise<IntakeResult>;
  /** Stores what is waiting and resolves when no batch is running. */
  close(): Promise<void>;
};

export type BatchOptions = {
  /**
   * How long the first request of a batch waits for others (ms). 0 (the default): until the requests
   * read in the same turn of the event loop are parsed; under load, batches form on their own from
   * what arrives while the batches in flight commit.
   */
  readonly lingerMs?: number;
  /** The most events in one transaction. */
  readonly maxBatch?: number;
  /** The most batches being stored at once (each holds a connection). */
  readonly maxInFlight?: number;
};

export const ORDER_PLACED_FLAG = 'storefront_order_placed';

const idOf = (e: IntakeEvent) => `${e.source}:${e.webhookId}`;

const Stored = z.object({ n: z.bigint(), accepting: z.boolean(), stored: z.boolean(), earlier: z.string().nullable() });

/**
 * Stores a batch in ONE statement (so one round trip, and its own transaction unless the caller's
 * `db` is one): the flag read, the inbox insert, the keys claimed and the jobs added, as
 * data-modifying CTEs that commit together or not at all. One result per event, in order.
 */
export async function storeEvents(db: Queryable, events: readonly IntakeEvent[]): Promise<IntakeResult[]> {
  // The first of two requests with one webhook-id in the batch is the one stored; the later one
  // reads as a duplicate of it.
  const first = new Map<string, number>();
  events.forEach((e, i) => {
    if (!first.has(idOf(e))) first.set(idOf(e), i);
  });
  const candidates = [...first.values()].map((i) => events[i] as IntakeEvent);
  const text = (f: (e: IntakeEvent) => string) => sql.array(candidates.map(f), 'text');
  const rows = await db.any(sql.type(Stored)`
    with input as (
      select * from unnest(${text((e) => e.source)}, ${text((e) => e.webhookId)}, ${text((e) => e.eventType)},
                           ${text((e) => e.bodySha256)}, ${text((e) => e.body)}, ${text((e) => fingerprint(e.command))},
                           ${text((e) => e.command.type)}, ${sql.array(
                             candidates.map((e) => toJsonText(e.command.payload ?? null)),
                             'jsonb',
                           )})
        with ordinality as t(source, webhook_id, event_type, body_sha256, body, fingerprint, command_type, payload, n)
    ), flag as (
      select coalesce((select enabled from feature_flags where name = ${ORDER_PLACED_FLAG}), false) as enabled
    ), accepted as (
      select input.* from input, flag where input.event_type <> 'order.placed' or flag.enabled
    ), inbox as (
      insert into webhook_events (source, webhook_id, event_type, body_sha256, body)
      select source, webhook_id, event_type, body_sha256, body from accepted order by n
      on conflict (source, webhook_id) do nothing
      returning source, webhook_id
    ), claimed as (
      -- A key left from an event no longer in the inbox is not claimed twice.
      insert into idempotency_keys (scope, key, fingerprint, command_type, payload, actor, bypass_maintenance)
      select ${WEBHOOK_SCOPE_PREFIX}::text || a.source, a.webhook_id, a.fingerprint, a.command_type, a.payload,
             ${WEBHOOK_SCOPE_PREFIX}::text || a.source, false
      from accepted a join inbox i on i.source = a.source and i.webhook_id = a.webhook_id
      order by a.n
      on conflict (scope, key) do nothing
      returning scope, key
    ), jobs as (
      select count(*) as n from graphile_worker.add_jobs(array(
        select row(${APPLY_COMMAND_TASK}::text, json_build_object('scope', c.scope, 'key', c.key), null, null, 10,
                   ${JOB_KEY_PREFIX}::text || c.scope || ':' || c.key, null, array[${DOMAIN_FLAG}::text])::graphile_worker.job_spec
        from claimed c))
    )
    select input.n, flag.enabled or input.event_type <> 'order.placed' as accepting,
           inbox.webhook_id is not null as stored, e.body_sha256 as earlier
    from input cross join flag cross join jobs
    left join inbox on inbox.source = input.source and inbox.webhook_id = input.webhook_id
    left join webhook_events e on e.source = input.source and e.webhook_id = input.webhook_id
    order by input.n`);
  const byId = new Map(candidates.map((e, i) => [idOf(e), rows[i]]));
  const late: IntakeEvent[] = [];
  for (const e of candidates) {
    const row = byId.get(idOf(e));
    // Stored by a transaction that committed while this statement ran: its row is newer than the
    // statement's snapshot, so its hash is read once more.
    if (row?.accepting && !row.stored && row.earlier === null) late.push(e);
  }
  const lateHashes = new Map<string, string>();
  if (late.length > 0) {
    const found = await db.any(sql.type(z.object({ source: z.string(), webhook_id: z.string(), body_sha256: z.string() }))`
      select source, webhook_id, body_sha256 from webhook_events
      where (source, webhook_id) in (select * from unnest(${sql.array(
        late.map((e) => e.source),
        'text',
      )}, ${sql.array(
        late.map((e) => e.webhookId),
        'text',
      )}))`);
    for (const r of found) lateHashes.set(`${r.source}:${r.webhook_id}`, r.body_sha256);
  }
  return events.map((e, i) => {
    const id = idOf(e);
    const row = byId.get(id);
    if (!row) throw new Error(`webhook ${id} has no result`);
    if (!row.accepting) return { status: 'disabled' };
    if (first.get(id) === i && row.stored) return { status: 'stored' };
    const hash = row.stored ? (events[first.get(id) as number] as IntakeEvent).bodySha256 : (row.earlier ?? lateHashes.get(id));
    if (hash === undefined) throw new Error(`webhook ${id} neither stored nor found`);
    return { status: 'exists', bodySha256: hash };
  });
}

export function createIntakeBatcher(pool: DatabasePool, log: Logger, options: BatchOptions = {}): IntakeBatcher {
  const batches = createGroupCommit<IntakeEvent, IntakeResult>(
    async (events) => {
      try {
        return (await withRetry(() => storeEvents(pool, events), { log })).map((value) => ({ ok: true, value }));
      } catch (error) {
        if (isConnectionFailure(error) || events.length === 1) throw error;
        log.warn({ err: error, events: events.length }, 'a batch of webhooks failed; storing them one by one');
        return Promise.all(
          events.map(async (event): Promise<Settled<IntakeResult>> => {
            try {
              const [value] = await withRetry(() => storeEvents(pool, [event]), { log });
              return { ok: true, value: value as IntakeResult };
            } catch (e) {
              return { ok: false, error: e };
            }
          }),
        );
      }
    },
    { lingerMs: options.lingerMs ?? 0, maxBatch: options.maxBatch ?? 200, maxInFlight: options.maxInFlight ?? 4 },
  );
  return { store: (event) => batches.submit(event), close: () => batches.close() };
}
