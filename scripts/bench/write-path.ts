// The write path as users feel it (CONTRACT §9), driven only through haat's real surfaces — the
// processes `haat intake` and `haat worker`, signed HTTP webhooks, the CLI — and read back with plain
// SQL, beside raw-SQL baselines measured on the same server in the same run (raw-sql.ts).
//   write   per run (spread: orders over 100 SKUs with ample stock; hot: 1 unit of one SKU whose stock
//           is 60 % of the orders), on a fresh scratch database: 16 keep-alive HTTP clients post
//           signed order.placed webhooks to one intake while one worker (concurrency 8) applies them;
//           intake rate and latency, end-to-end rate and drain time, the worker's peak RSS, oversold
//           stock and `haat reconcile` at the end. With notifications, an outbound endpoint is
//           subscribed to every event (`haat endpoints add … --events '*'`) and a receiver in this
//           process (src/outbox/listen.ts: verifies each signature, answers 204) gets every order
//           event from the worker's delivery lane: the same figures, plus events delivered per
//           second, the delivery lag and a count of what was lost or badly signed.
//   expiry  100,000 pending orders whose reservations are due, seeded set-based and consistent
//           (`haat reconcile` passes before), then `haat reservations expire` timed as a process;
//           none left due and reconcile passes after.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../src/db/embedded.ts';
import { migrateDatabase } from '../../src/db/migrate.ts';
import { newSecret } from '../../src/intake/secrets.ts';
import { signedHeaders } from '../../src/intake/sign.ts';
import type { Logger } from '../../src/log.ts';
import { type Listener, listen } from '../../src/outbox/listen.ts';
import { createScratchDatabase, type ScratchDatabase } from '../scratch-database.ts';
import { type BaselineClient, type Baselines, benchRawSql } from './raw-sql.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/haat.js');

const CLIENTS = 16;
const WORKER_CONCURRENCY = 8;
const SPREAD_SKUS = 100;
const HOT_STOCK_SHARE = 0.6;
/** How long the queue may take to drain after the last request before the bench gives up. */
const DRAIN_TIMEOUT_MS = 600_000;
const POLL_MS = 100;
/** With notifications: the wait for every delivery gives up after this long with none delivered. */
const DELIVERY_STALL_MS = 60_000;
const RSS_SAMPLE_MS = 200;

/** An outbound endpoint subscribed to every event, its receiver in the bench process. */
export type DeliveryFigures = {
  readonly endpoints: number;
  /** outbound_events written by the run (one per order: order.pending or order.rejected). */
  readonly events: number;
  readonly deliveries: number;
  readonly delivered: number;
  /** Every delivery delivered before the wait gave up (DELIVERY_STALL_MS with none delivered). */
  readonly complete: boolean;
  /** First event received → every delivery 'delivered' (polled every 100 ms). */
  readonly delivery_ms: number;
  readonly delivered_per_s: number;
  /** Every order has an outcome → every delivery delivered. */
  readonly after_orders_ms: number;
  /** An event's created_at (written with its change) → its first receipt by the receiver. */
  readonly lag_ms: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Requests received, repeats included, and distinct events among them. */
  readonly received: number;
  readonly received_events: number;
  readonly bad_signatures: number;
  /** Attempts recorded (webhook_delivery_attempts): one per delivery when none is retried. */
  readonly attempts: number;
  /** Events without exactly one delivery per endpoint. */
  readonly events_without_one_delivery: number;
  /** Events not delivered, or never seen by the receiver. */
  readonly lost: number;
};

export type WriteRun = {
  readonly run: 'spread' | 'hot';
  /** The worker started after posting: end_to_end is then the application alone, from its start. */
  readonly backlog: boolean;
  /** Set when an endpoint was subscribed (the worker delivered every event while applying). */
  readonly notifications?: DeliveryFigures;
  readonly orders: number;
  readonly lines_per_order: string;
  readonly skus: number;
  readonly stock_per_sku: number;
  readonly clients: number;
  readonly worker_concurrency: number;
  readonly accepted: number;
  readonly statuses: Record<string, number>;
  readonly sender_retries: number;
  readonly posting_ms: number;
  readonly intake_per_s: number;
  readonly latency_ms: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
  /** First accepted request sent → every order has an outcome (polled every 100 ms). */
  readonly end_to_end_ms: number;
  readonly end_to_end_per_s: number;
  /** Last response → every order has an outcome. */
  readonly drain_ms: number;
  readonly worker_pid: number;
  readonly worker_rss_mb: { readonly idle: number; readonly max: number };
  readonly intake_rss_mb: { readonly idle: number; readonly max: number };
  readonly outcomes: Record<string, number>;
  readonly orders_by_state: Record<string, number>;
  /** Inventory rows with reserved > on_hand. */
  readonly oversold_rows: number;
  /** The hot SKU: units held by pending + confirmed orders, beside its stock. */
  readonly hot?: {
    readonly sku: string;
    readonly stock: number;
    readonly reserved: number;
    readonly sold: number;
    readonly oversold: number;
  };
  /** How the services exited on SIGTERM after the run (0: cleanly). */
  readonly stop_exit: { readonly worker: number | string; readonly intake: number | string };
  readonly reconcile_exit: number;
};

export type WriteFigures = {
  readonly baselines: Baselines;
  readonly spread: WriteRun;
  readonly hot: WriteRun;
  readonly spreadBacklog: WriteRun;
  readonly hotBacklog: WriteRun;
  /** spread and hot again, with an endpoint subscribed to every event. */
  readonly spreadNotify: WriteRun;
  readonly hotNotify: WriteRun;
  /** End-to-end order rate with notifications ÷ without (target ≥ 0.5: they must not halve it). */
  readonly notify_ratio: { readonly spread: number; readonly hot: number };
};

export type ExpiryFigures = {
  readonly orders: number;
  readonly reservations: number;
  readonly seed_ms: number;
  readonly reconcile_before_exit: number;
  /** `haat reservations expire` as a process, spawn to exit. */
  readonly expire_ms: number;
  readonly expire_exit: number | 'timeout';
  readonly expired_reported: number | null;
  readonly pending_due_left: number;
  readonly expired_orders: number;
  readonly reconcile_after_exit: number;
};

// ---------------------------------------------------------------------------------------------
// Processes

type Env = NodeJS.ProcessEnv;

function childEnv(home: string, url: string, secret: string): Env {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HAAT_HOME: home,
    DATABASE_URL: url,
    HAAT_ACTOR: 'bench',
    // What a deployment logs by default, to a file (not a pipe the bench would have to read).
    LOG_LEVEL: process.env.BENCH_CHILD_LOG_LEVEL ?? 'info',
    LOG_FORMAT: 'json',
    HAAT_WEBHOOK_SECRET_STOREFRONT: secret,
    HAAT_WEBHOOK_SECRET_PAYMENTS: secret,
    HAAT_WEBHOOK_SECRET_LOGISTICS: secret,
    // For profiling the children, e.g. BENCH_CHILD_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof'.
    ...(process.env.BENCH_CHILD_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_CHILD_NODE_OPTIONS } : {}),
  };
}

/** One CLI command to its end (or until timeoutMs, then SIGKILL): exit code, wall time and output. */
function cli(
  args: readonly string[],
  env: Env,
  timeoutMs = 600_000,
): Promise<{ code: number | 'timeout'; ms: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? 'timeout' : (code ?? -1), ms: performance.now() - started, stdout, stderr });
    });
  });
}

async function cliOk(args: readonly string[], env: Env): Promise<string> {
  const result = await cli(args, env);
  if (result.code !== 0) throw new Error(`haat ${args.join(' ')} exited ${result.code}: ${(result.stderr || result.stdout).slice(-2000)}`);
  return result.stdout;
}

type Service = { readonly child: ChildProcess; readonly name: string; readonly logFile: string };

async function startService(args: readonly string[], env: Env, logFile: string): Promise<Service> {
  const out = await fs.open(logFile, 'a');
  try {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ['ignore', out.fd, out.fd] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return { child, name: `haat ${args.join(' ')}`, logFile };
  } finally {
    await out.close();
  }
}

const tail = async (file: string) => (await fs.readFile(file, 'utf8').catch(() => '')).slice(-3000);

async function failIfExited(service: Service): Promise<void> {
  const { child } = service;
  if (child.exitCode !== null || child.signalCode !== null) {
    throw new Error(`${service.name} exited (${child.signalCode ?? child.exitCode}): ${await tail(service.logFile)}`);
  }
}

async function stopService(service: Service | undefined): Promise<number | string> {
  if (!service) return 0;
  const { child } = service;
  if (child.exitCode !== null || child.signalCode !== null) return child.signalCode ?? child.exitCode ?? -1;
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? -1)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

/** VmRSS of a process in MiB, from /proc (null once it is gone). */
function rssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+([0-9]+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function rssSampler(first: number) {
  let pid = first;
  let idle = rssMb(pid) ?? 0;
  let max = idle;
  const timer = setInterval(() => {
    const v = rssMb(pid);
    if (v !== null && v > max) max = v;
  }, RSS_SAMPLE_MS);
  return {
    /** Samples another process (a worker started later) from now on. */
    restart: (next: number) => {
      pid = next;
      idle = rssMb(pid) ?? 0;
      max = idle;
    },
    stop: () => {
      clearInterval(timer);
      const v = rssMb(pid);
      if (v !== null && v > max) max = v;
      return { idle: Math.round(idle * 10) / 10, max: Math.round(max * 10) / 10 };
    },
  };
}

async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  services: readonly Service[],
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    for (const s of services) await failIfExited(s);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what}: not after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

const intOf = (rows: { n: number | string }[]) => Number(rows[0]?.n ?? 0);

// ---------------------------------------------------------------------------------------------
// HTTP: 16 keep-alive clients posting pre-signed requests

type Request = { readonly body: string; readonly headers: Record<string, string> };
type Sent = { readonly status: number; readonly startedAt: number; readonly ms: number };

function postOnce(agent: http.Agent, port: number, request: Request): Promise<Sent> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/webhooks/storefront',
        method: 'POST',
        agent,
        headers: { ...request.headers, 'content-length': Buffer.byteLength(request.body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, startedAt, ms: performance.now() - startedAt }));
        res.on('error', () => resolve({ status: 0, startedAt, ms: performance.now() - startedAt }));
      },
    );
    req.on('error', () => resolve({ status: 0, startedAt, ms: performance.now() - startedAt }));
    req.end(request.body);
  });
}

const percentile = (sorted: readonly number[], p: number) =>
  Math.round((sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0) * 10) / 10;

async function postAll(port: number, requests: readonly Request[], clients: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let retries = 0;
  let accepted = 0;
  let firstAcceptedAt = Number.POSITIVE_INFINITY;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < requests.length; i = next++) {
        const request = requests[i] as Request;
        // Like an upstream sender: a 503 or a broken connection is retried; anything else is final.
        for (let attempt = 1; ; attempt++) {
          const sent = await postOnce(agent, port, request);
          latencies.push(sent.ms);
          if ((sent.status === 503 || sent.status === 0) && attempt < 5) {
            retries++;
            await sleep(100 * attempt);
            continue;
          }
          statuses[String(sent.status)] = (statuses[String(sent.status)] ?? 0) + 1;
          if (sent.status === 202) {
            accepted++;
            firstAcceptedAt = Math.min(firstAcceptedAt, sent.startedAt);
          }
          break;
        }
      }
    }),
  );
  const ended = performance.now();
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    accepted,
    statuses,
    retries,
    started,
    ended,
    firstAcceptedAt,
    latency: {
      p50: percentile(latencies, 0.5),
      p95: percentile(latencies, 0.95),
      p99: percentile(latencies, 0.99),
      max: percentile(latencies, 1),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// write: one run

type RunOptions = { readonly orders: number; readonly maxLines: number; readonly log: Logger };

/** What the receiver saw: each event's first receipt (epoch ms), every request, bad signatures. */
type Receipts = {
  readonly firstAt: Map<string, number>;
  received: number;
  badSignatures: number;
  /** performance.now() of the first request received. */
  firstReceivedAt: number;
};

const epochNow = () => performance.timeOrigin + performance.now();

/**
 * One run. With `backlog`, the worker starts only once every order is posted: the drain then
 * measures the application alone (the worker's batches), without the intake as its bound. With
 * `notify`, an endpoint subscribed to every event points at a receiver in this process, and the
 * run ends once every delivery is delivered too.
 */
async function writeRun(
  kind: 'spread' | 'hot',
  options: RunOptions,
  mode: { readonly backlog?: boolean; readonly notify?: boolean } = {},
): Promise<WriteRun> {
  const { orders, maxLines, log } = options;
  const backlog = mode.backlog === true;
  const label = `${kind}${backlog ? ' backlog' : ''}${mode.notify ? ' notify' : ''}`;
  const home = await fs.mkdtemp(path.join(os.tmpdir(), `haat-bench-write-${kind}-`));
  let scratch: ScratchDatabase | undefined;
  let db: pg.Client | undefined;
  let intake: Service | undefined;
  let worker: Service | undefined;
  let receiver: Listener | undefined;
  let keepLogs = false;
  try {
    scratch = await createScratchDatabase(`haat_bench_${kind}`, log);
    await migrateDatabase(scratch.url, log);
    db = new pg.Client({ connectionString: scratch.url });
    db.on('error', () => undefined); // the database is dropped under it on failure
    await db.connect();
    const secret = newSecret();
    const env = childEnv(home, scratch.url, secret);

    // Catalog and stock through the CLI, before any service runs.
    const skus = kind === 'spread' ? Array.from({ length: SPREAD_SKUS }, (_, i) => `W-${String(i + 1).padStart(3, '0')}`) : ['HOT-1'];
    const stockPerSku = kind === 'spread' ? orders * maxLines : Math.floor(orders * HOT_STOCK_SHARE);
    await cliOk(['seller', 'add', 'bench', '--name', 'Bench'], env);
    const skusCsv = path.join(home, 'skus.csv');
    const stockCsv = path.join(home, 'stock.csv');
    await fs.writeFile(
      skusCsv,
      `code,seller,price,currency,title\n${skus.map((c, i) => `${c},bench,${(i % 50) + 1}00,INR,Item ${c}`).join('\n')}\n`,
    );
    await fs.writeFile(stockCsv, `sku,qty,reason\n${skus.map((c) => `${c},${stockPerSku},opening stock`).join('\n')}\n`);
    await cliOk(['import', 'skus', skusCsv, '--json'], env);
    await cliOk(['import', 'stock', stockCsv, '--json'], env);

    // Notifications: the endpoint is added through the CLI (its secret is printed once), then the
    // receiver listens on the port its URL names, verifying with that secret (204; 401 if not).
    let endpoint: { id: string; secret: string } | undefined;
    const receipts: Receipts = { firstAt: new Map(), received: 0, badSignatures: 0, firstReceivedAt: Number.POSITIVE_INFINITY };
    if (mode.notify) {
      const receiverPort = await freePort();
      const added = JSON.parse(
        await cliOk(['endpoints', 'add', `http://127.0.0.1:${receiverPort}/bench`, '--allow-private', '--events', '*', '--json'], env),
      ) as { id: string; secret: string; state: string };
      if (added.state !== 'enabled' || !added.secret) throw new Error(`write ${label}: endpoints add printed ${JSON.stringify(added)}`);
      endpoint = { id: added.id, secret: added.secret };
      receiver = await listen({
        port: receiverPort,
        secrets: [added.secret],
        onEvent: (event) => {
          const now = performance.now();
          receipts.received++;
          if (now < receipts.firstReceivedAt) receipts.firstReceivedAt = now;
          if (event.verified !== true) {
            receipts.badSignatures++;
            return; // answered 401: not received, the delivery is retried
          }
          if (!receipts.firstAt.has(event.id)) receipts.firstAt.set(event.id, epochNow());
        },
      });
    }

    // The services, each a real process with its own log file.
    const port = await freePort();
    intake = await startService(['intake', '--port', String(port), '--host', '127.0.0.1'], env, path.join(home, 'intake.log'));
    const startWorker = () => startService(['worker', '--concurrency', String(WORKER_CONCURRENCY)], env, path.join(home, 'worker.log'));
    worker = await startWorker();
    const services = [intake, worker];
    await waitUntil(
      'the intake ready',
      60_000,
      async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok ? true : undefined),
      services,
    );
    // The worker is up once it heartbeats; its row names its pid, which must be the process we
    // started (bin/haat.js runs in-process, it does not re-execute itself): that is the RSS we sample.
    const workerPid = worker.child.pid as number;
    const dbc = db;
    await waitUntil(
      'the worker heartbeating',
      60_000,
      async () => ((await dbc.query('select 1 from worker_heartbeats where pid = $1', [workerPid])).rowCount ? true : undefined),
      services,
    );
    const cmdline = readFileSync(`/proc/${workerPid}/cmdline`, 'utf8').split('\0');
    if (!cmdline.includes('worker')) throw new Error(`pid ${workerPid} is not the worker: ${cmdline.join(' ')}`);

    // Every request signed up front, so the clients only send.
    const tag = kind === 'spread' ? 'S' : 'H';
    const requests: Request[] = Array.from({ length: orders }, (_, i) => {
      const lines = kind === 'spread' ? 1 + (i % maxLines) : 1;
      // 61 is prime to 100: order i's first SKU walks all of them; its further lines are distinct.
      const items = Array.from({ length: lines }, (_, j) => ({ sku: skus[(i * 61 + j * 37) % skus.length] as string, qty: 1 }));
      const body = JSON.stringify({
        type: 'order.placed',
        timestamp: new Date().toISOString(),
        data: { ref: `B${tag}-${i + 1}`, buyer: `b-${i % 1000}`, currency: 'INR', items },
      });
      const id = `bench-${kind}-${i + 1}`;
      return { body, headers: { ...signedHeaders(secret, id, body) } };
    });

    const workerRss = rssSampler(workerPid);
    const intakeRss = rssSampler(intake.child.pid as number);
    console.error(`write ${label}: posting ${orders} orders with ${CLIENTS} clients`);
    if (backlog) {
      // The backlog waits in the queue: the worker is stopped while the orders are posted.
      await stopService(worker);
      services.pop();
    }
    const posted = await postAll(port, requests, CLIENTS);
    if (posted.accepted !== orders) {
      keepLogs = true;
      throw new Error(`write ${label}: ${posted.accepted} of ${orders} webhooks accepted (statuses ${JSON.stringify(posted.statuses)})`);
    }
    let applyFrom = posted.firstAcceptedAt;
    let sampledPid = workerPid;
    if (backlog) {
      worker = await startWorker();
      services.push(worker);
      const pid = worker.child.pid as number;
      await waitUntil(
        'the worker heartbeating',
        60_000,
        async () => ((await dbc.query('select 1 from worker_heartbeats where pid = $1', [pid])).rowCount ? true : undefined),
        services,
      );
      applyFrom = performance.now();
      workerRss.restart(pid);
      sampledPid = pid;
    }

    // Drain: every accepted order has its outcome (webhook_event_outcomes, invariant 8).
    let doneAt = 0;
    let lastReport = performance.now();
    for (;;) {
      const n = intOf((await db.query(`select count(*)::int as n from webhook_event_outcomes where source = 'storefront'`)).rows);
      const now = performance.now();
      if (n >= orders) {
        doneAt = now;
        break;
      }
      for (const s of services) await failIfExited(s);
      if (now - posted.ended > DRAIN_TIMEOUT_MS) {
        keepLogs = true;
        const jobs = intOf((await db.query('select count(*)::int as n from graphile_worker.jobs')).rows);
        throw new Error(
          `write ${label}: did not drain within ${DRAIN_TIMEOUT_MS / 1000} s after posting: ${n} of ${orders} outcomes, ${jobs} jobs queued (logs kept in ${home})`,
        );
      }
      if (now - lastReport > 5000) {
        console.error(`write ${label}: ${n} of ${orders} outcomes`);
        lastReport = now;
      }
      await sleep(POLL_MS);
    }

    // Notifications: every event of the run has its delivery delivered (the events are all written:
    // each in the transaction of its order's outcome). A wait with nothing delivered for
    // DELIVERY_STALL_MS gives up and reports what is missing.
    let deliveredAllAt = 0;
    let complete = false;
    if (endpoint) {
      let progressAt = performance.now();
      let last = -1;
      lastReport = performance.now();
      for (;;) {
        const { rows } = await db.query<{ events: number; deliveries: number; delivered: number }>(
          `select (select count(*)::int from outbound_events) as events,
                  count(*)::int as deliveries, (count(*) filter (where state = 'delivered'))::int as delivered
           from webhook_deliveries`,
        );
        const c = rows[0] as { events: number; deliveries: number; delivered: number };
        const now = performance.now();
        if (c.delivered === c.events && c.deliveries === c.events) {
          deliveredAllAt = now;
          complete = true;
          break;
        }
        for (const s of services) await failIfExited(s);
        if (c.delivered !== last) {
          last = c.delivered;
          progressAt = now;
        } else if (now - progressAt > DELIVERY_STALL_MS) {
          keepLogs = true;
          deliveredAllAt = now;
          console.error(
            `write ${label}: ${c.delivered} of ${c.events} events delivered, none for ${DELIVERY_STALL_MS / 1000} s: giving up (logs kept in ${home})`,
          );
          break;
        }
        if (now - lastReport > 5000) {
          console.error(`write ${label}: ${c.delivered} of ${c.events} events delivered`);
          lastReport = now;
        }
        await sleep(POLL_MS);
      }
    }
    const workerRssMb = workerRss.stop();
    const intakeRssMb = intakeRss.stop();

    const outcomes = await db.query<{ code: string; n: number }>(
      `select code, count(*)::int as n from webhook_event_outcomes group by code order by 2 desc`,
    );
    const states = await db.query<{ state: string; n: number }>(
      `select state || coalesce(' (' || reject_reason || ')', '') as state, count(*)::int as n from orders group by 1 order by 2 desc`,
    );
    const oversoldRows = intOf((await db.query('select count(*)::int as n from inventory where reserved > on_hand')).rows);
    let hot: WriteRun['hot'];
    if (kind === 'hot') {
      const { rows } = await db.query<{ on_hand: string; reserved: string; sold: string }>(
        `select i.on_hand::text, i.reserved::text,
                (select coalesce(sum(x.qty), 0)::text from order_items x join orders o on o.id = x.order_id
                 where x.sku = i.sku and o.state in ('pending', 'confirmed')) as sold
         from inventory i where i.sku = $1`,
        ['HOT-1'],
      );
      const r = rows[0];
      if (!r) throw new Error(`write ${label}: no inventory row for HOT-1`);
      const stock = Number(r.on_hand);
      hot = { sku: 'HOT-1', stock, reserved: Number(r.reserved), sold: Number(r.sold), oversold: Math.max(0, Number(r.sold) - stock) };
    }
    // SIGTERM: both must shut down cleanly (exit 0).
    const stopped = { worker: await stopService(worker), intake: await stopService(intake) };
    worker = undefined;
    intake = undefined;
    const reconcile = await cli(['reconcile'], env);
    if (reconcile.code !== 0) console.error(`write ${label}: haat reconcile exited ${reconcile.code}: ${reconcile.stdout.slice(-2000)}`);

    let notifications: DeliveryFigures | undefined;
    if (endpoint) {
      await receiver?.close();
      receiver = undefined;
      // Per event: its deliveries to the endpoint and whether it was delivered; beside what the
      // receiver saw, that is what was lost (not delivered, or delivered without being received).
      const { rows } = await db.query<{ id: string; created_ms: number; deliveries: number; delivered: boolean }>(
        `select e.id, (extract(epoch from e.created_at) * 1000)::float8 as created_ms,
                count(d.id)::int as deliveries, coalesce(bool_and(d.state = 'delivered'), false) as delivered
         from outbound_events e left join webhook_deliveries d on d.event_id = e.id and d.endpoint_id = $1
         group by e.id`,
        [endpoint.id],
      );
      const lags: number[] = [];
      let lost = 0;
      for (const e of rows) {
        const at = receipts.firstAt.get(e.id);
        if (at === undefined || !e.delivered || e.deliveries !== 1) lost++;
        if (at !== undefined) lags.push(at - e.created_ms);
      }
      lags.sort((a, b) => a - b);
      const totals = await db.query<{ deliveries: number; delivered: number; attempts: number }>(
        `select (select count(*)::int from webhook_deliveries) as deliveries,
                (select count(*)::int from webhook_deliveries where state = 'delivered') as delivered,
                (select count(*)::int from webhook_delivery_attempts) as attempts`,
      );
      const t = totals.rows[0] as { deliveries: number; delivered: number; attempts: number };
      const deliveryMs = deliveredAllAt - receipts.firstReceivedAt;
      notifications = {
        endpoints: 1,
        events: rows.length,
        deliveries: t.deliveries,
        delivered: t.delivered,
        complete,
        delivery_ms: Math.round(deliveryMs),
        delivered_per_s: Math.round((t.delivered * 1000) / deliveryMs),
        after_orders_ms: Math.round(deliveredAllAt - doneAt),
        lag_ms: { p50: percentile(lags, 0.5), p99: percentile(lags, 0.99), max: percentile(lags, 1) },
        received: receipts.received,
        received_events: receipts.firstAt.size,
        bad_signatures: receipts.badSignatures,
        attempts: t.attempts,
        events_without_one_delivery: rows.filter((e) => e.deliveries !== 1).length,
        lost,
      };
    }

    const postingMs = posted.ended - posted.started;
    const e2eMs = doneAt - applyFrom;
    return {
      run: kind,
      backlog,
      ...(notifications ? { notifications } : {}),
      orders,
      lines_per_order: kind === 'spread' && maxLines > 1 ? `1-${maxLines}` : '1',
      skus: skus.length,
      stock_per_sku: stockPerSku,
      clients: CLIENTS,
      worker_concurrency: WORKER_CONCURRENCY,
      accepted: posted.accepted,
      statuses: posted.statuses,
      sender_retries: posted.retries,
      posting_ms: Math.round(postingMs),
      intake_per_s: Math.round((posted.accepted * 1000) / postingMs),
      latency_ms: posted.latency,
      end_to_end_ms: Math.round(e2eMs),
      end_to_end_per_s: Math.round((orders * 1000) / e2eMs),
      drain_ms: Math.round(doneAt - posted.ended),
      worker_pid: sampledPid,
      worker_rss_mb: workerRssMb,
      intake_rss_mb: intakeRssMb,
      outcomes: Object.fromEntries(outcomes.rows.map((r) => [r.code, r.n])),
      orders_by_state: Object.fromEntries(states.rows.map((r) => [r.state, r.n])),
      oversold_rows: oversoldRows,
      ...(hot ? { hot } : {}),
      stop_exit: stopped,
      reconcile_exit: reconcile.code === 'timeout' ? -1 : reconcile.code,
    };
  } catch (error) {
    keepLogs = true;
    for (const s of [intake, worker]) if (s) console.error(`${s.name} log tail:\n${await tail(s.logFile)}`);
    console.error(`write ${label}: the services' logs are kept in ${home}`);
    throw error;
  } finally {
    await stopService(worker);
    await stopService(intake);
    await receiver?.close();
    await db?.end().catch(() => undefined);
    await scratch?.drop();
    if (!keepLogs) await fs.rm(home, { recursive: true, force: true });
  }
}

export async function benchWrite(options: {
  orders: number;
  maxLines: number;
  baselineSeconds: number;
  baselineClient: BaselineClient;
  log: Logger;
}): Promise<WriteFigures> {
  // The baselines' database is created first and dropped last: with the embedded server, it keeps
  // that one server running for the runs too (same server, same run).
  const sqlScratch = await createScratchDatabase('haat_bench_sql', options.log);
  try {
    const baselines = await benchRawSql(sqlScratch.url, {
      clients: CLIENTS,
      seconds: options.baselineSeconds,
      client: options.baselineClient,
    });
    // Each run with notifications right after the same run without: the ratio of the two compares
    // neighbours (the machine's other load drifts).
    const spread = await writeRun('spread', options);
    const spreadNotify = await writeRun('spread', options, { notify: true });
    const hot = await writeRun('hot', options);
    const hotNotify = await writeRun('hot', options, { notify: true });
    const spreadBacklog = await writeRun('spread', options, { backlog: true });
    const hotBacklog = await writeRun('hot', options, { backlog: true });
    const ratio = (a: WriteRun, b: WriteRun) => Math.round((a.end_to_end_per_s / b.end_to_end_per_s) * 100) / 100;
    return {
      baselines,
      spread,
      hot,
      spreadBacklog,
      hotBacklog,
      spreadNotify,
      hotNotify,
      notify_ratio: { spread: ratio(spreadNotify, spread), hot: ratio(hotNotify, hot) },
    };
  } finally {
    await sqlScratch.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// expiry

/** Orders placed through the CLI, then cloned set-based: the clones carry the real code's money snapshot. */
const TEMPLATES = 6;

export async function benchExpiry(options: { orders: number; timeoutMs: number; log: Logger }): Promise<ExpiryFigures> {
  const { log } = options;
  const orders = Math.max(options.orders, TEMPLATES);
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-bench-expiry-'));
  const scratch = await createScratchDatabase('haat_bench_expiry', log);
  const db = new pg.Client({ connectionString: scratch.url });
  db.on('error', () => undefined);
  try {
    await migrateDatabase(scratch.url, log);
    await db.connect();
    const env = childEnv(home, scratch.url, newSecret());
    const skus = Array.from({ length: SPREAD_SKUS }, (_, i) => `E-${String(i + 1).padStart(3, '0')}`);
    await cliOk(['seller', 'add', 'bench', '--name', 'Bench'], env);
    await fs.writeFile(
      path.join(home, 'skus.csv'),
      `code,seller,price,currency,title\n${skus.map((c, i) => `${c},bench,${(i % 50) + 1}00,INR,Item ${c}`).join('\n')}\n`,
    );
    await fs.writeFile(path.join(home, 'stock.csv'), `sku,qty,reason\n${skus.map((c) => `${c},10,opening stock`).join('\n')}\n`);
    await cliOk(['import', 'skus', path.join(home, 'skus.csv'), '--json'], env);
    await cliOk(['import', 'stock', path.join(home, 'stock.csv'), '--json'], env);
    // Templates: 1, 2 or 3 lines of distinct SKUs, quantities 1–2, placed by the real code (no
    // worker runs, so the CLI applies each itself).
    for (let t = 0; t < TEMPLATES; t++) {
      const items = Array.from({ length: 1 + (t % 3) }, (_, j) => [
        '--item',
        `${skus[(t * 17 + j * 31) % skus.length]}:${1 + ((t + j) % 2)}`,
      ]);
      await cliOk(['order', 'place', '--buyer', `b-${t}`, '--ref', `EXP-T${t + 1}`, ...items.flat(), '--json'], env);
    }

    console.error(`expiry: seeding ${orders} due orders`);
    const seedStarted = performance.now();
    await db.query('begin');
    await db.query(`create temp table tpl on commit drop as
      select (row_number() over (order by ref) - 1)::int as t, id, buyer, currency, total_amount, commission_bps, snapshot_hash
      from orders where state = 'pending'`);
    const templates = intOf((await db.query('select count(*)::int as n from tpl')).rows);
    if (templates !== TEMPLATES) throw new Error(`expiry: ${templates} pending template orders, expected ${TEMPLATES}`);
    await db.query(
      `create temp table clone on commit drop as
       select g, gen_random_uuid() as id, 'EXP-' || g as ref, g % $2 as t from generate_series(1, $1::int) g`,
      [orders - TEMPLATES, TEMPLATES],
    );
    await db.query(`insert into orders (id, ref, buyer, currency, state, total_amount, commission_bps, snapshot_hash, expires_at)
      select c.id, c.ref, x.buyer, x.currency, 'pending', x.total_amount, x.commission_bps, x.snapshot_hash, now() - interval '1 minute'
      from clone c join tpl x using (t) order by c.g`);
    await db.query(`insert into order_items (order_id, sku, qty, unit_price, total)
      select c.id, i.sku, i.qty, i.unit_price, i.total from clone c join tpl x using (t) join order_items i on i.order_id = x.id`);
    await db.query(`insert into order_seller_splits (order_id, seller, subtotal, commission, payout)
      select c.id, s.seller, s.subtotal, s.commission, s.payout from clone c join tpl x using (t) join order_seller_splits s on s.order_id = x.id`);
    await db.query(`insert into order_transitions (order_id, from_state, to_state, actor, reason)
      select c.id, tr.from_state, tr.to_state, 'bench-seed', tr.reason
      from clone c join tpl x using (t) join order_transitions tr on tr.order_id = x.id order by c.g, tr.id`);
    // Each clone holds what its template holds: a reservation per line and its reserve movement;
    // the stock for it is received first, so on hand and reserved both follow their movements.
    await db.query(`create temp table held on commit drop as
      select c.id::text as holder, r.sku, r.qty, c.g, r.id as template_reservation
      from clone c join tpl x using (t) join reservations r on r.holder = x.id::text and r.state = 'active'`);
    await db.query(`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reason)
      select sku, 'receive', sum(qty), 0, 'bench seed' from held group by sku order by sku`);
    await db.query(`with created as (
        insert into reservations (holder, sku, qty) select holder, sku, qty from held order by g, template_reservation
        returning id, sku, qty
      )
      insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reservation_id)
      select sku, 'reserve', 0, qty, id from created order by id`);
    await db.query(`update inventory i set on_hand = i.on_hand + h.qty, reserved = i.reserved + h.qty, updated_at = now()
      from (select sku, sum(qty) as qty from held group by sku) h where i.sku = h.sku`);
    await db.query(`update orders set expires_at = now() - interval '1 minute' where id in (select id from tpl)`);
    const reservations = intOf((await db.query(`select count(*)::int as n from reservations where state = 'active'`)).rows);
    await db.query('commit');
    await db.query('analyze');
    const seedMs = Math.round(performance.now() - seedStarted);
    const due = intOf((await db.query(`select count(*)::int as n from orders where state = 'pending' and expires_at <= now()`)).rows);
    if (due !== orders) throw new Error(`expiry: ${due} due orders seeded, expected ${orders}`);

    const before = await cli(['reconcile'], env);
    if (before.code !== 0)
      throw new Error(`expiry: the seed is not consistent, haat reconcile exited ${before.code}: ${before.stdout.slice(-3000)}`);

    console.error(`expiry: haat reservations expire (${orders} due, timeout ${options.timeoutMs / 1000} s)`);
    const expire = await cli(['reservations', 'expire', '--json'], env, options.timeoutMs);
    let reported: number | null = null;
    try {
      const parsed = JSON.parse(expire.stdout) as { expired?: unknown };
      reported = Array.isArray(parsed.expired) ? parsed.expired.length : typeof parsed.expired === 'number' ? parsed.expired : null;
    } catch {
      reported = null;
    }
    if (expire.code !== 0) console.error(`expiry: haat reservations expire exited ${expire.code}: ${expire.stderr.slice(-2000)}`);
    const left = intOf((await db.query(`select count(*)::int as n from orders where state = 'pending' and expires_at <= now()`)).rows);
    const expired = intOf((await db.query(`select count(*)::int as n from orders where state = 'expired'`)).rows);
    const after = await cli(['reconcile'], env);
    if (after.code !== 0) console.error(`expiry: haat reconcile after expiry exited ${after.code}: ${after.stdout.slice(-2000)}`);
    return {
      orders,
      reservations,
      seed_ms: seedMs,
      reconcile_before_exit: 0, // (any other exit stopped the part above)
      expire_ms: Math.round(expire.ms),
      expire_exit: expire.code,
      expired_reported: reported,
      pending_due_left: left,
      expired_orders: expired,
      reconcile_after_exit: after.code === 'timeout' ? -1 : after.code,
    };
  } finally {
    await db.end().catch(() => undefined);
    await scratch.drop();
    await fs.rm(home, { recursive: true, force: true });
  }
}
