// GET /metrics (Prometheus text). Request counters live in this process; everything else is read
// from PostgreSQL at scrape time, so any intake reports the whole system's state.
import { Counter, Gauge, Registry } from 'prom-client';
import { z } from 'zod';
import type { DatabasePool } from '../db/pool.ts';
import { sql } from '../db/sql.ts';

export type Metrics = {
  readonly registry: Registry;
  readonly webhookRequests: Counter<'source' | 'status'>;
};

export function createMetrics(pool: DatabasePool): Metrics {
  const registry = new Registry();
  const webhookRequests = new Counter({
    name: 'haat_webhook_requests_total',
    help: 'Webhook requests answered by this intake, by source and HTTP status',
    labelNames: ['source', 'status'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'haat_webhook_events',
    help: 'Stored webhook events by source, type and outcome (pending, applied, or the refusal code)',
    labelNames: ['source', 'type', 'outcome'] as const,
    registers: [registry],
    async collect() {
      const rows = await pool.any(sql.type(z.object({ source: z.string(), type: z.string(), outcome: z.string(), n: z.number() }))`
        select e.source, e.event_type as type,
               case when k.state is distinct from 'done' then 'pending'
                    when (k.outcome ->> 'ok')::boolean then 'applied'
                    else k.outcome -> 'error' ->> 'code' end as outcome,
               count(*)::int as n
        from webhook_events e left join idempotency_keys k on k.scope = 'webhook:' || e.source and k.key = e.webhook_id
        group by 1, 2, 3`);
      this.reset();
      for (const r of rows) this.set({ source: r.source, type: r.type, outcome: r.outcome }, r.n);
    },
  });
  new Gauge({
    name: 'haat_jobs',
    help: 'Jobs in the queue: queued, locked (running) and failed (attempts exhausted)',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const row = await pool.one(sql.type(z.object({ queued: z.number(), locked: z.number(), failed: z.number() }))`
        select count(*) filter (where locked_at is null and attempts < max_attempts)::int as queued,
               count(*) filter (where locked_at is not null)::int as locked,
               count(*) filter (where attempts >= max_attempts)::int as failed
        from graphile_worker.jobs`);
      this.set({ state: 'queued' }, row.queued);
      this.set({ state: 'locked' }, row.locked);
      this.set({ state: 'failed' }, row.failed);
    },
  });
  new Gauge({
    name: 'haat_commands',
    help: 'Commands by state (pending or done) and outcome',
    labelNames: ['state', 'outcome'] as const,
    registers: [registry],
    async collect() {
      const rows = await pool.any(sql.type(z.object({ state: z.string(), outcome: z.string(), n: z.number() }))`
        select state, coalesce(case when (outcome ->> 'ok')::boolean then 'ok' else outcome -> 'error' ->> 'code' end, 'none') as outcome, count(*)::int as n
        from idempotency_keys group by 1, 2`);
      this.reset();
      for (const r of rows) this.set({ state: r.state, outcome: r.outcome }, r.n);
    },
  });
  new Gauge({
    name: 'haat_reservations_active',
    help: 'Active reservations (count) and the units they hold',
    labelNames: ['measure'] as const,
    registers: [registry],
    async collect() {
      const row = await pool.one(sql.type(z.object({ n: z.number(), units: z.string() }))`
        select count(*)::int as n, coalesce(sum(qty), 0)::text as units from reservations where state = 'active'`);
      this.set({ measure: 'reservations' }, row.n);
      this.set({ measure: 'units' }, Number(row.units));
    },
  });
  new Gauge({
    name: 'haat_webhook_deliveries',
    help: 'Outbound webhook deliveries by endpoint and state (pending, held, delivered, failed)',
    labelNames: ['endpoint', 'state'] as const,
    registers: [registry],
    async collect() {
      const rows = await pool.any(sql.type(z.object({ endpoint: z.string(), state: z.string(), n: z.number() }))`
        select endpoint_id as endpoint, state, count(*)::int as n from webhook_deliveries group by 1, 2`);
      this.reset();
      for (const r of rows) this.set({ endpoint: r.endpoint, state: r.state }, r.n);
    },
  });
  new Gauge({
    name: 'haat_webhook_attempt_duration_seconds',
    help: 'Outbound webhook attempts of the last 15 minutes: duration quantiles (0.5, 0.95, 0.99) by endpoint',
    labelNames: ['endpoint', 'quantile'] as const,
    registers: [registry],
    async collect() {
      const rows = await pool.any(sql.type(z.object({ endpoint: z.string(), p50: z.number(), p95: z.number(), p99: z.number() }))`
        select d.endpoint_id as endpoint,
               percentile_cont(0.5) within group (order by a.duration_ms)::float8 / 1000 as p50,
               percentile_cont(0.95) within group (order by a.duration_ms)::float8 / 1000 as p95,
               percentile_cont(0.99) within group (order by a.duration_ms)::float8 / 1000 as p99
        from webhook_delivery_attempts a join webhook_deliveries d on d.id = a.delivery_id
        where a.at > now() - interval '15 minutes' group by 1`);
      this.reset();
      for (const r of rows) {
        this.set({ endpoint: r.endpoint, quantile: '0.5' }, r.p50);
        this.set({ endpoint: r.endpoint, quantile: '0.95' }, r.p95);
        this.set({ endpoint: r.endpoint, quantile: '0.99' }, r.p99);
      }
    },
  });
  new Gauge({
    name: 'haat_webhook_attempts_recent',
    help: 'Outbound webhook attempts of the last 15 minutes by endpoint and result (2xx, 4xx, 5xx, 3xx, error)',
    labelNames: ['endpoint', 'result'] as const,
    registers: [registry],
    async collect() {
      const rows = await pool.any(sql.type(z.object({ endpoint: z.string(), result: z.string(), n: z.number() }))`
        select d.endpoint_id as endpoint,
               case when a.status is null then 'error' else (a.status / 100)::text || 'xx' end as result, count(*)::int as n
        from webhook_delivery_attempts a join webhook_deliveries d on d.id = a.delivery_id
        where a.at > now() - interval '15 minutes' group by 1, 2`);
      this.reset();
      for (const r of rows) this.set({ endpoint: r.endpoint, result: r.result }, r.n);
    },
  });
  return { registry, webhookRequests };
}
