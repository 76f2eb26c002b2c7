// npm run soak -- [--duration 60] [--workers 3]
// Starts an intake and N worker processes on a fresh database and drives mixed load through the
// real surfaces (signed webhooks; CLI restocks and cancels; expiry; the order lifecycle — cash on
// delivery, partial shipments, failed deliveries and RTO, returns and refunds, by webhooks and CLI
// writes, scripts/soak/lifecycle.ts), while injecting faults:
// SIGKILL and restart of workers, pg_terminate_backend of random connections, duplicate and
// out-of-order deliveries, maintenance toggled on and off. Conservation is checked on every
// snapshot read; at the end the queue drains and `haat reconcile` must pass. Exits non-zero on
// any violation or any event without an outcome.
//
// Outbound webhooks: an endpoint, added first, points at a receiver in this process
// (scripts/soak/receiver.ts) that goes through phases while the load runs — answers 204, fails
// (500/503), hangs past webhook_timeout_ms, recovers — and is healthy from the end of the load.
// The retry schedule is shortened (webhook_retry_second_ms) so that retries happen within the run,
// but never so much that a delivery could use up its round while the receiver still fails. At the
// end every event must have exactly one delivery, every delivery must be delivered (none lost to a
// SIGKILLed worker or a terminated connection), and every event id must have been received, signed.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from '../src/db/embedded.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { newSecret } from '../src/intake/secrets.ts';
import { signedHeaders } from '../src/intake/sign.ts';
import { createLogger } from '../src/log.ts';
import { JITTER, RETRY_SCHEDULE_SECONDS } from '../src/outbox/schedule.ts';
import { createScratchDatabase, intOption } from './scratch-database.ts';
import { createLifecycleTraffic } from './soak/lifecycle.ts';
import { type Phase, startSoakReceiver } from './soak/receiver.ts';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '60' }, workers: { type: 'string', default: '3' } } });
const durationMs = intOption('duration', values.duration, 1, 86_400) * 1000;
const workerCount = intOption('workers', values.workers, 1, 32);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/haat.js');
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');

const scratch = await createScratchDatabase('haat_soak', log);
const url = scratch.url;
await migrateDatabase(url, log);
const db = new pg.Client({ connectionString: url });
await db.connect();

const secret = newSecret();
const port = await freePort();
const env = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  DATABASE_URL: url,
  // The children's logs would be mostly the expected retries of early events; the verdict is the
  // summary, the conservation reads and reconcile. LOG_LEVEL=error shows them.
  LOG_LEVEL: process.env.SOAK_CHILD_LOG_LEVEL ?? 'fatal',
  HAAT_WORKER_HEARTBEAT_MS: '1000',
  HAAT_WAIT_FOR_WORKER_MS: '2000',
  HAAT_WEBHOOK_SECRET_STOREFRONT: secret,
  HAAT_WEBHOOK_SECRET_PAYMENTS: secret,
  HAAT_WEBHOOK_SECRET_LOGISTICS: secret,
  HAAT_ACTOR: 'soak',
};
const start = (args: string[], stderr: 'inherit' | 'ignore' = 'inherit'): ChildProcess =>
  spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ['ignore', 'ignore', stderr] });
/** A one-shot command: its exit code. `quiet`: its refusals are expected, and not printed. */
const cli = (args: string[], quiet = false) =>
  new Promise<number>((resolve) => {
    const child = start(args, quiet ? 'ignore' : 'inherit');
    child.on('close', (code) => resolve(code ?? -1));
  });
/** A one-shot command with --json: its exit code and what it printed. */
const cliJson = (args: string[]) =>
  new Promise<{ code: number; json: unknown }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args, '--json'], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.on('close', (code) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, json });
    });
  });

const stats = {
  sent: 0,
  accepted: 0,
  duplicates: 0,
  refusedHttp: 0,
  senderRetries: 0,
  gaveUp: 0,
  kills: 0,
  terminations: 0,
  maintenanceToggles: 0,
  cliWrites: 0,
  conservationReads: 0,
  /** Delivery jobs locked by a worker when the soak SIGKILLed it. */
  deliveriesInKilledHands: 0,
  /** Services (intake, workers) that exited without being killed by the soak. */
  crashes: 0,
  violations: [] as string[],
};

// The endpoint comes first: every event of the run must reach it. A hanging receiver holds a
// request past the timeout; the schedule's second is as short as it may be while a round (its
// steps at their shortest, -20 % jitter) still lasts twice the run: the receiver, healthy after
// the load, always gets a delivery's last attempt of a round.
const WEBHOOK_TIMEOUT_MS = 1_000;
const shortestRound = RETRY_SCHEDULE_SECONDS.reduce((a, b) => a + b, 0) * (1 - JITTER);
const retrySecondMs = Math.min(1_000, Math.max(10, Math.ceil((2 * durationMs) / shortestRound)));
const receiver = await startSoakReceiver({ holdMs: WEBHOOK_TIMEOUT_MS + 1_000 });
for (const [key, value] of [
  ['webhook_timeout_ms', WEBHOOK_TIMEOUT_MS],
  ['webhook_retry_second_ms', retrySecondMs],
] as const) {
  const code = await cli(['settings', 'set', key, String(value), '--reason', 'soak: retries within the run']);
  if (code !== 0) throw new Error(`haat settings set ${key} ${value} exited ${code}`);
}
const added = await cliJson(['endpoints', 'add', receiver.url, '--allow-private', '--description', 'soak receiver']);
const endpoint = added.json as { id?: string; secret?: string } | undefined;
if (added.code !== 0 || !endpoint?.id || !endpoint.secret) throw new Error(`haat endpoints add exited ${added.code}`);
const endpointId = endpoint.id;
receiver.verifyWith(endpoint.secret);

await cli(['seller', 'add', 'soak', '--name', 'Soak']);
const skus = ['S-A', 'S-B', 'S-C', 'S-D'];
const PRICE = 1000;
for (const s of skus) {
  await cli(['sku', 'add', s, '--seller', 'soak', '--price', String(PRICE), '--currency', 'INR']);
  await cli(['stock', 'receive', s, '200']);
}

// A service that exits without being told to (an unhandled rejection, a crash) is a violation:
// the soak would otherwise go on with fewer workers and report nothing. A crashed worker is
// replaced so that the load goes on.
const told = new WeakSet<ChildProcess>();
const stopService = (child: ChildProcess | undefined, signal: NodeJS.Signals) => {
  if (!child) return;
  told.add(child);
  child.kill(signal);
};
const service = (args: string[], onCrash?: () => void): ChildProcess => {
  const child = start(args);
  child.on('error', (error) => stats.violations.push(`haat ${args[0]} could not be started: ${error.message}`));
  child.on('exit', (code, signal) => {
    if (told.has(child)) return;
    stats.crashes++;
    stats.violations.push(`haat ${args[0]} (pid ${child.pid}) exited on its own: ${signal ?? `code ${code}`}`);
    onCrash?.();
  });
  return child;
};
const workers: ChildProcess[] = [];
/** Set when the soak stops its services: a crash is still counted, but not replaced. */
let finishing = false;
const startWorkerAt = (i: number) => {
  workers[i] = service(['worker', '--concurrency', '4'], () => {
    // Not in a hot loop; and not once the soak has begun stopping its services (a replacement
    // started then would never be stopped, and the soak would never exit).
    if (!finishing) setTimeout(() => finishing || startWorkerAt(i), 1_000);
  });
};
/** Stops a service with SIGTERM and waits: it must exit 0 (a clean shutdown) within 90 s. */
const stopCleanly = async (child: ChildProcess | undefined, name: string): Promise<void> => {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? -1)));
  stopService(child, 'SIGTERM');
  const timer = setTimeout(() => stopService(child, 'SIGKILL'), 90_000);
  const result = await exited;
  clearTimeout(timer);
  if (result !== 0) {
    stats.crashes++;
    stats.violations.push(`haat ${name} (pid ${child.pid}) did not stop cleanly on SIGTERM: ${result}`);
  }
};
const intake = service(['intake', '--port', String(port), '--host', '127.0.0.1']);
for (let i = 0; i < workerCount; i++) startWorkerAt(i);
await sleep(2000);

// The receiver's phases while the load runs: each failure is short and followed by a longer
// healthy spell, so a delivery is retried (on the schedule's first steps) and then delivered.
const PHASES: readonly (readonly [Phase, number])[] = [
  ['ok', 9_000],
  ['failing', 2_000],
  ['ok', 7_000],
  ['hanging', 2_000],
];
const phasesDone = new AbortController();
const phasing = (async () => {
  for (let i = 0; !phasesDone.signal.aborted; i++) {
    const [phase, ms] = PHASES[i % PHASES.length] as readonly [Phase, number];
    receiver.setPhase(phase);
    await sleep(ms, undefined, { signal: phasesDone.signal }).catch(() => undefined);
  }
})();

/** Posts a signed event like an upstream sender: a 503 or a broken connection is retried. */
async function post(
  source: string,
  type: string,
  data: unknown,
  id = `evt_${randomBytes(8).toString('hex')}`,
  body?: string,
): Promise<void> {
  const text = body ?? JSON.stringify({ type, timestamp: new Date().toISOString(), data });
  stats.sent++;
  for (let attempt = 1; attempt <= 10; attempt++) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/webhooks/${source}`, {
        method: 'POST',
        headers: signedHeaders(secret, id, text),
        body: text,
      });
      await response.body?.cancel();
      if (response.status === 202) stats.accepted++;
      else if (response.status === 200) stats.duplicates++;
      else if (response.status === 503) {
        stats.senderRetries++;
        await sleep(100 * attempt);
        continue;
      } else stats.refusedHttp++;
      return;
    } catch {
      stats.senderRetries++;
      await sleep(100 * attempt);
    }
  }
  stats.gaveUp++;
}

/** Conservation on one snapshot: stock is never negative, never over-reserved, and on hand matches the movements. */
async function conservation(): Promise<void> {
  stats.conservationReads++;
  const { rows } = await db.query(`
    select i.sku, i.on_hand, i.reserved, coalesce(m.moved, 0) as moved, coalesce(r.active, 0) as active
    from inventory i
    left join (select sku, sum(on_hand_delta) as moved from inventory_movements group by sku) m using (sku)
    left join (select sku, sum(qty) as active from reservations where state = 'active' group by sku) r using (sku)`);
  for (const r of rows) {
    if (BigInt(r.reserved) > BigInt(r.on_hand) || BigInt(r.reserved) < 0n || r.on_hand !== r.moved || r.reserved !== r.active) {
      stats.violations.push(`conservation ${r.sku}: on_hand ${r.on_hand} reserved ${r.reserved} moved ${r.moved} active ${r.active}`);
    }
  }
}

/**
 * After the load, with the receiver healthy: waits until no delivery is pending. One whose next
 * attempt is far off on the schedule is sent now with `haat deliveries retry`, as an operator would,
 * but only when it has its job: a pending delivery without one is lost — a violation, never hidden
 * by a retry.
 */
async function settleDeliveries(): Promise<{ retried_by_operator: number; lost: number; settled_in_s: number }> {
  const started = Date.now();
  const lost = new Set<string>();
  let retried = 0;
  for (const until = Date.now() + 180_000; ; await sleep(500)) {
    const { rows } = await db.query(`
      select d.id, d.next_attempt_at > now() + interval '10 seconds' as far,
             exists (select 1 from graphile_worker.jobs j
                     where j.key = 'dlv:' || d.id || ':' || d.attempts and j.attempts < j.max_attempts) as has_job
      from webhook_deliveries d where d.state = 'pending'`);
    for (const r of rows) if (!r.has_job) lost.add(r.id);
    const waiting = rows.filter((r) => !lost.has(r.id));
    if (waiting.length === 0) break;
    if (Date.now() > until) {
      stats.violations.push(`webhooks out: ${waiting.length} deliveries still pending 180 s after the load`);
      break;
    }
    const far = waiting.filter((r) => r.far);
    for (let i = 0; i < far.length; i += 4) {
      await Promise.all(
        far.slice(i, i + 4).map(async (r) => {
          retried++;
          const code = await cli(['deliveries', 'retry', r.id, '--reason', 'soak: the receiver is healthy again']);
          if (code !== 0) stats.violations.push(`webhooks out: haat deliveries retry ${r.id} exited ${code}`);
        }),
      );
    }
  }
  for (const id of lost) stats.violations.push(`webhooks out: delivery ${id} is pending with no job for its next attempt (lost)`);
  return { retried_by_operator: retried, lost: lost.size, settled_in_s: Math.round((Date.now() - started) / 100) / 10 };
}

/** The verdict on outbound webhooks: every event delivered exactly once per endpoint, and received, signed. */
async function checkDeliveries(settled: Awaited<ReturnType<typeof settleDeliveries>>) {
  const { rows: figures } = await db.query(
    `select (select count(*)::int from outbound_events) as events,
       (select count(*)::int from webhook_deliveries where endpoint_id = $1) as deliveries,
       (select count(*)::int from outbound_events e
        where (select count(*) from webhook_deliveries d where d.event_id = e.id and d.endpoint_id = $1) <> 1) as without_one_delivery,
       (select coalesce(json_object_agg(state, n), '{}') from (
          select state, count(*)::int as n from webhook_deliveries where endpoint_id = $1 group by state) s) as states,
       (select count(*)::int from webhook_deliveries where endpoint_id = $1 and attempts > 1) as retried,
       (select coalesce(max(attempts), 0)::int from webhook_deliveries where endpoint_id = $1) as most_attempts,
       (select state from webhook_endpoints where id = $1) as endpoint_state`,
    [endpointId],
  );
  const f = figures[0];
  const { rows: attempts } = await db.query(
    `select case when a.status between 200 and 299 then '2xx' when a.status is not null then a.status::text
                 when a.error like 'timeout%' then 'timeout' else split_part(a.error, ':', 1) end as kind,
            count(*)::int as n
     from webhook_delivery_attempts a join webhook_deliveries d on d.id = a.delivery_id
     where d.endpoint_id = $1 group by 1 order by 2 desc`,
    [endpointId],
  );
  // Sent twice and answered 2xx both times (at-least-once allows it): how, for whoever reads the summary.
  const { rows: twice } = await db.query(
    `select d.id as delivery, json_agg(json_build_object('at', a.at, 'status', a.status, 'error', a.error) order by a.id) as attempts
     from webhook_deliveries d join webhook_delivery_attempts a on a.delivery_id = d.id
     where d.endpoint_id = $1 and d.id in (
       select delivery_id from webhook_delivery_attempts where status between 200 and 299 group by 1 having count(*) > 1)
     group by d.id limit 5`,
    [endpointId],
  );
  const { rows: events } = await db.query(`select id, type, sequence from outbound_events`);
  let neverReceived = 0;
  let mismatched = 0;
  for (const e of events) {
    const got = receiver.received.get(e.id);
    if (!got) neverReceived++;
    else if (got.type !== e.type || got.sequence !== e.sequence) mismatched++;
  }
  const known = new Set(events.map((e) => e.id));
  const unknown = [...receiver.received.keys()].filter((id) => !known.has(id)).length;
  const seen = receiver.figures();
  const states = f.states as Record<string, number>;
  const expect = (ok: boolean, what: string) => {
    if (!ok) stats.violations.push(`webhooks out: ${what}`);
  };
  expect(f.events > 0, 'the run wrote no outbound events');
  expect(f.without_one_delivery === 0 && f.deliveries === f.events, `${f.without_one_delivery} events without exactly one delivery`);
  expect((states.delivered ?? 0) === f.deliveries, `deliveries not all delivered: ${JSON.stringify(states)}`);
  expect(neverReceived === 0, `${neverReceived} events never received by the receiver`);
  expect(mismatched === 0, `${mismatched} events received with another type or sequence than the outbox's`);
  expect(unknown === 0, `${unknown} events received that the outbox does not have`);
  expect(seen.bad_signatures === 0, `${seen.bad_signatures} requests whose signature did not verify`);
  expect(f.endpoint_state === 'enabled', `the endpoint is ${f.endpoint_state}`);
  // A run long enough for a failing and a hanging phase must have made deliveries retry through both.
  const byOutcome = Object.fromEntries(attempts.map((a) => [a.kind, a.n])) as Record<string, number>;
  if (durationMs >= 30_000) {
    expect((byOutcome['500'] ?? 0) + (byOutcome['503'] ?? 0) > 0 && (byOutcome.timeout ?? 0) > 0, 'no attempt failed or timed out');
    expect(f.retried > 0, 'no delivery was retried');
  }
  return {
    retry_second_ms: retrySecondMs,
    timeout_ms: WEBHOOK_TIMEOUT_MS,
    events: f.events,
    deliveries: f.deliveries,
    delivery_states: states,
    attempts: attempts.reduce((sum, a) => sum + a.n, 0),
    attempts_by_outcome: byOutcome,
    deliveries_retried: f.retried,
    most_attempts: f.most_attempts,
    in_killed_workers_hands: stats.deliveriesInKilledHands,
    ...settled,
    received: seen.received_events,
    never_received: neverReceived,
    duplicates_received: seen.duplicates_received,
    bad_signatures: seen.bad_signatures,
    requests: seen.requests,
    answered: seen.answered,
    held_past_timeout: seen.held,
    phases: seen.phases,
    ...(twice.length > 0 ? { delivered_twice: twice } : {}),
  };
}

const life = createLifecycleTraffic({ db, post, cli: (args) => cli(args, true), skus, price: PRICE, violations: stats.violations });

let n = 0;
const deadline = Date.now() + durationMs;
while (Date.now() < deadline) {
  n++;
  const ref = `SO-${n}`;
  const s = skus[n % skus.length] as string;
  // One or two lines, prepaid or cash on delivery, and the lifecycle story it lives once confirmed.
  const roll = n % 10;
  const placement = life.placement(n, s, roll < 6);
  const placed = JSON.stringify({
    type: 'order.placed',
    timestamp: new Date().toISOString(),
    // Some placements cannot be priced (an unknown SKU, another currency): rejected orders all the same.
    data: {
      ref,
      buyer: `b-${n}`,
      currency: n % 13 === 0 ? 'USD' : 'INR',
      items: n % 11 === 0 ? [{ sku: 'NO-SUCH-SKU', qty: 1 + (n % 3) }] : placement.items,
      ...(placement.cod ? { payment_method: 'cod' } : {}),
    },
  });
  const id = `evt_place_${n}`;
  if (placement.cod) {
    // Cash on delivery: confirmed without a payment (by the storefront, or the CLI).
    await life.confirmCod(n, ref, () => post('storefront', 'order.placed', null, id, placed));
  } else if (roll === 0) {
    // out of order: the payment first
    await post('payments', 'payment.captured', { order_ref: ref, payment_ref: `pay_${n}`, amount: placement.total, currency: 'INR' });
    await post('storefront', 'order.placed', null, id, placed);
  } else {
    await post('storefront', 'order.placed', null, id, placed);
    if (roll < 6)
      await post('payments', 'payment.captured', {
        order_ref: ref,
        payment_ref: `pay_${n}`,
        amount: placement.total,
        currency: 'INR',
      });
    if (roll === 6) await post('payments', 'payment.failed', { order_ref: ref, payment_ref: `pay_${n}`, reason: 'card_declined' });
    if (roll === 7) await post('payments', 'payment.captured', { order_ref: ref, payment_ref: `pay_${n}`, amount: 1, currency: 'INR' });
  }
  if (n % 4 === 0) await post('storefront', 'order.placed', null, id, placed); // duplicate delivery
  if (n % 17 === 0) {
    // A new event for a ref already taken: no second order, the outcome is `conflict`.
    await post('storefront', 'order.placed', { ref: `SO-${n - 1}`, buyer: 'b-again', currency: 'INR', items: [{ sku: s, qty: 1 }] });
  }
  if (n % 3 === 0) await post('logistics', 'shipment.dispatched', { order_ref: `SO-${n - 2}`, tracking: `AWB${n}` });
  life.schedule(n, ref, placement);
  await life.tick(n);
  if (n % 25 === 0) {
    stats.cliWrites++;
    await cli(['stock', 'receive', s, '20', '--no-wait']);
  }
  if (n % 30 === 0) {
    stats.cliWrites++;
    await cli(['order', 'cancel', `SO-${n - 5}`, '--reason', 'soak', '--no-wait']);
  }
  if (n % 40 === 0) {
    const victim = n % workers.length;
    const { rows: inHand } = await db.query(
      `select count(*)::int as n from graphile_worker.jobs j join worker_heartbeats h on h.worker_id = j.locked_by
       where h.pid = $1 and j.task_identifier = 'deliver_webhook'`,
      [workers[victim]?.pid ?? 0],
    );
    stats.deliveriesInKilledHands += inHand[0].n;
    stopService(workers[victim], 'SIGKILL');
    stats.kills++;
    startWorkerAt(victim);
  }
  if (n % 35 === 0) {
    const { rowCount } = await life.fault(() =>
      db.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and random() < 0.3`,
      ),
    );
    stats.terminations += rowCount ?? 0;
  }
  if (n % 60 === 0) {
    stats.maintenanceToggles++;
    await life.fault(async () => {
      await cli(['maintenance', 'on', '--reason', 'soak', '--yes']);
      await sleep(500);
      await cli(['maintenance', 'off', '--reason', 'soak']);
    });
  }
  if (n % 5 === 0) await conservation();
}
// The lifecycle's CLI writes still running end (its stories' later steps go with the load).
await life.settle();
// The receiver recovers for good.
phasesDone.abort();
await phasing;
receiver.setPhase('ok');

// Drain: every accepted event needs its outcome (out-of-order payments wait up to 10 minutes, so
// the expiry of their window is not awaited: they count as live jobs for invariant 8).
for (let waitUntil = Date.now() + 120_000; Date.now() < waitUntil; await sleep(1000)) {
  const { rows } = await db.query(`select count(*)::int as n from graphile_worker.jobs where run_at <= now() + interval '5 seconds'`);
  if (rows[0].n === 0) break;
}
const webhooks = await settleDeliveries();
await conservation();
const reconcile = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, [bin, 'reconcile'], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('close', (code) => resolve(code ?? -1));
});
const { rows: outcomes } = await db.query(`
  select coalesce(o.code, case when k.state = 'pending' then 'pending' end, 'no command') as outcome, count(*)::int as n
  from webhook_events e
  left join webhook_event_outcomes o on o.source = e.source and o.webhook_id = e.webhook_id
  left join idempotency_keys k on k.scope = 'webhook:' || e.source and k.key = e.webhook_id group by 1 order by 2 desc`);
const { rows: rejections } = await db.query(
  `select reject_reason, count(*)::int as n from orders where state = 'rejected' group by 1 order by 2 desc`,
);

const webhooksOut = await checkDeliveries(webhooks);
const lifecycle = await life.verdict(db, durationMs);

finishing = true;
await Promise.all([...workers.map((w) => stopCleanly(w, 'worker')), stopCleanly(intake, 'intake')]);
await receiver.close();
await db.end();
await scratch.drop();

console.log(
  JSON.stringify(
    {
      duration_s: durationMs / 1000,
      workers: workerCount,
      ...stats,
      violations: stats.violations.length,
      outcomes: Object.fromEntries(outcomes.map((r) => [r.outcome, r.n])),
      rejected_orders: Object.fromEntries(rejections.map((r) => [r.reject_reason, r.n])),
      webhooks_out: webhooksOut,
      lifecycle,
      reconcile_exit: reconcile,
    },
    null,
    2,
  ),
);
for (const v of stats.violations.slice(0, 20)) console.error(v);
process.exitCode = stats.violations.length === 0 && reconcile === 0 && stats.gaveUp === 0 && stats.refusedHttp === 0 ? 0 : 1;
