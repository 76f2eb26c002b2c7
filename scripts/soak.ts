// npm run soak -- [--duration 60] [--workers 3]
// Starts an intake and N worker processes on a fresh database and drives mixed load through the
// real surfaces (signed webhooks; CLI restocks and cancels; expiry), while injecting faults:
// SIGKILL and restart of workers, pg_terminate_backend of random connections, duplicate and
// out-of-order deliveries, maintenance toggled on and off. Conservation is checked on every
// snapshot read; at the end the queue drains and `haat reconcile` must pass. Exits non-zero on
// any violation or any event without an outcome.
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
import { createScratchDatabase, intOption } from './scratch-database.ts';

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
const start = (args: string[]): ChildProcess =>
  spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
const cli = (args: string[]) =>
  new Promise<number>((resolve) => {
    const child = start(args);
    child.on('close', (code) => resolve(code ?? -1));
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
  /** Services (intake, workers) that exited without being killed by the soak. */
  crashes: 0,
  violations: [] as string[],
};

await cli(['seller', 'add', 'soak', '--name', 'Soak']);
const skus = ['S-A', 'S-B', 'S-C', 'S-D'];
for (const s of skus) {
  await cli(['sku', 'add', s, '--seller', 'soak', '--price', '1000', '--currency', 'INR']);
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
    if (!finishing) setTimeout(() => startWorkerAt(i), 1_000); // not in a hot loop
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

let n = 0;
const deadline = Date.now() + durationMs;
while (Date.now() < deadline) {
  n++;
  const ref = `SO-${n}`;
  const s = skus[n % skus.length] as string;
  const placed = JSON.stringify({
    type: 'order.placed',
    timestamp: new Date().toISOString(),
    // Some placements cannot be priced (an unknown SKU, another currency): rejected orders all the same.
    data: {
      ref,
      buyer: `b-${n}`,
      currency: n % 13 === 0 ? 'USD' : 'INR',
      items: [{ sku: n % 11 === 0 ? 'NO-SUCH-SKU' : s, qty: 1 + (n % 3) }],
    },
  });
  const id = `evt_place_${n}`;
  const roll = n % 10;
  if (roll === 0) {
    // out of order: the payment first
    await post('payments', 'payment.captured', { order_ref: ref, payment_ref: `pay_${n}`, amount: 1000 * (1 + (n % 3)), currency: 'INR' });
    await post('storefront', 'order.placed', null, id, placed);
  } else {
    await post('storefront', 'order.placed', null, id, placed);
    if (roll < 6)
      await post('payments', 'payment.captured', {
        order_ref: ref,
        payment_ref: `pay_${n}`,
        amount: 1000 * (1 + (n % 3)),
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
    stopService(workers[victim], 'SIGKILL');
    stats.kills++;
    startWorkerAt(victim);
  }
  if (n % 35 === 0) {
    const { rowCount } = await db.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and random() < 0.3`,
    );
    stats.terminations += rowCount ?? 0;
  }
  if (n % 60 === 0) {
    stats.maintenanceToggles++;
    await cli(['maintenance', 'on', '--reason', 'soak', '--yes']);
    await sleep(500);
    await cli(['maintenance', 'off', '--reason', 'soak']);
  }
  if (n % 5 === 0) await conservation();
}

// Drain: every accepted event needs its outcome (out-of-order payments wait up to 10 minutes, so
// the expiry of their window is not awaited: they count as live jobs for invariant 8).
for (let waitUntil = Date.now() + 120_000; Date.now() < waitUntil; await sleep(1000)) {
  const { rows } = await db.query(`select count(*)::int as n from graphile_worker.jobs where run_at <= now() + interval '5 seconds'`);
  if (rows[0].n === 0) break;
}
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

finishing = true;
await Promise.all([...workers.map((w) => stopCleanly(w, 'worker')), stopCleanly(intake, 'intake')]);
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
      reconcile_exit: reconcile,
    },
    null,
    2,
  ),
);
for (const v of stats.violations.slice(0, 20)) console.error(v);
process.exitCode = stats.violations.length === 0 && reconcile === 0 && stats.gaveUp === 0 && stats.refusedHttp === 0 ? 0 : 1;
