// Group commit for the webhook intake. A verified, parsed event waits a few milliseconds (the linger)
// and is stored together with the others that arrived meanwhile, in one transaction: one multi-row
// insert into the inbox (webhook_events), every new event's idempotency key claimed in one statement
// and its job added in one add_jobs call (claimKeysAndEnqueue). Each request is answered only after
// that commit, with its own result: stored now (202), or there already (200 or 409, by the body's
// hash), or refused by the storefront_order_placed flag (503, nothing stored).
// A batch that fails on a lost connection fails every request in it (503: nothing was stored). A
// batch that fails otherwise (one row the database refuses) is stored again one event per
// transaction, so the one bad row fails alone and the others are stored.

import { z } from 'zod';
import { isConnectionFailure } from '../db/errors.ts';
import { type Claim, claimKeysAndEnqueue, WEBHOOK_SCOPE_PREFIX } from '../db/idempotency.ts';
import { flagEnabled } from '../db/operations.ts';
import type { DatabasePool, DatabaseTransaction } from '../db/pool.ts';
import { sql } from '../db/sql.ts';
import { inTransaction } from '../db/transaction.ts';
import { type Command, fingerprint } from '../domain/commands.ts';
import type { Source } from '../domain/events.ts';
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
  /** How long the first request of a batch waits for others (ms). */
  readonly lingerMs?: number;
  /** The most events in one transaction. */
  readonly maxBatch?: number;
  /** The most batches being stored at once (each holds a connection). */
  readonly maxInFlight?: number;
};

export const ORDER_PLACED_FLAG = 'storefront_order_placed';

type Waiting = { readonly event: IntakeEvent; resolve(result: IntakeResult): void; reject(error: unknown): void };

const idOf = (e: IntakeEvent) => `${e.source}:${e.webhookId}`;

/** Stores a batch in the caller's transaction; one result per event, in order. */
export async function storeEvents(tx: DatabaseTransaction, events: readonly IntakeEvent[]): Promise<IntakeResult[]> {
  const accepting = !events.some((e) => e.eventType === 'order.placed') || (await flagEnabled(tx, ORDER_PLACED_FLAG));
  const results: (IntakeResult | null)[] = events.map((e) =>
    !accepting && e.eventType === 'order.placed' ? { status: 'disabled' } : null,
  );
  // The first of two requests with one webhook-id in the batch is the one stored; the later one
  // reads as a duplicate of it.
  const first = new Map<string, number>();
  events.forEach((e, i) => {
    if (results[i] === null && !first.has(idOf(e))) first.set(idOf(e), i);
  });
  const candidates = [...first.values()].map((i) => events[i] as IntakeEvent);
  const text = (f: (e: IntakeEvent) => string) => sql.array(candidates.map(f), 'text');
  const inserted =
    candidates.length === 0
      ? []
      : await tx.any(sql.type(z.object({ source: z.string(), webhook_id: z.string() }))`
          insert into webhook_events (source, webhook_id, event_type, body_sha256, body)
          select * from unnest(${text((e) => e.source)}, ${text((e) => e.webhookId)}, ${text((e) => e.eventType)},
                               ${text((e) => e.bodySha256)}, ${text((e) => e.body)})
          on conflict (source, webhook_id) do nothing
          returning source, webhook_id`);
  const stored = new Set(inserted.map((r) => `${r.source}:${r.webhook_id}`));
  const fresh = candidates.filter((e) => stored.has(idOf(e)));
  // A key left from an event no longer in the inbox is not claimed twice (claimKeys skips it).
  await claimKeysAndEnqueue(
    tx,
    fresh.map(
      (e): Claim => ({
        scope: `${WEBHOOK_SCOPE_PREFIX}${e.source}`,
        key: e.webhookId,
        fingerprint: fingerprint(e.command),
        command: e.command,
        actor: `${WEBHOOK_SCOPE_PREFIX}${e.source}`,
      }),
    ),
  );
  const others = candidates.filter((e) => !stored.has(idOf(e)));
  const earlier = new Map<string, string>();
  if (others.length > 0) {
    const rows = await tx.any(sql.type(z.object({ source: z.string(), webhook_id: z.string(), body_sha256: z.string() }))`
      select source, webhook_id, body_sha256 from webhook_events
      where (source, webhook_id) in (select * from unnest(${sql.array(
        others.map((e) => e.source),
        'text',
      )}, ${sql.array(
        others.map((e) => e.webhookId),
        'text',
      )}))`);
    for (const r of rows) earlier.set(`${r.source}:${r.webhook_id}`, r.body_sha256);
  }
  return events.map((e, i) => {
    const decided = results[i];
    if (decided) return decided;
    const id = idOf(e);
    if (first.get(id) === i && stored.has(id)) return { status: 'stored' };
    const hash = stored.has(id) ? (events[first.get(id) as number] as IntakeEvent).bodySha256 : earlier.get(id);
    if (hash === undefined) throw new Error(`webhook ${id} neither stored nor found`);
    return { status: 'exists', bodySha256: hash };
  });
}

export function createIntakeBatcher(pool: DatabasePool, log: Logger, options: BatchOptions = {}): IntakeBatcher {
  const lingerMs = options.lingerMs ?? 2;
  const maxBatch = options.maxBatch ?? 200;
  const maxInFlight = options.maxInFlight ?? 4;
  let waiting: Waiting[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight = 0;
  const idle: (() => void)[] = [];

  const settleOneByOne = async (batch: readonly Waiting[]) => {
    await Promise.all(
      batch.map(async (w) => {
        try {
          const [result] = await inTransaction(pool, (tx) => storeEvents(tx, [w.event]), { log });
          w.resolve(result as IntakeResult);
        } catch (error) {
          w.reject(error);
        }
      }),
    );
  };

  const run = async (batch: Waiting[]) => {
    try {
      const results = await inTransaction(
        pool,
        (tx) =>
          storeEvents(
            tx,
            batch.map((w) => w.event),
          ),
        { log },
      );
      for (const [i, w] of batch.entries()) w.resolve(results[i] as IntakeResult);
    } catch (error) {
      if (isConnectionFailure(error) || batch.length === 1) {
        for (const w of batch) w.reject(error);
      } else {
        log.warn({ err: error, events: batch.length }, 'a batch of webhooks failed; storing them one by one');
        await settleOneByOne(batch);
      }
    }
  };

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    while (waiting.length > 0 && inFlight < maxInFlight) {
      const batch = waiting.slice(0, maxBatch);
      waiting = waiting.slice(maxBatch);
      inFlight++;
      void run(batch).finally(() => {
        inFlight--;
        // Whatever arrived while this batch was stored goes next, without another linger.
        if (waiting.length > 0) flush();
        else if (inFlight === 0) for (const resolve of idle.splice(0)) resolve();
      });
    }
  };

  return {
    store: (event) =>
      new Promise<IntakeResult>((resolve, reject) => {
        waiting.push({ event, resolve, reject });
        if (waiting.length >= maxBatch) flush();
        else if (timer === undefined && inFlight < maxInFlight) timer = setTimeout(flush, lingerMs);
      }),
    close: async () => {
      flush();
      if (inFlight > 0) await new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
