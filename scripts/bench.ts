// npm run bench: the speed figures built so far (docs/contract.md, Planned, lists the rest), each
// beside its baseline or target, printed as a table and as one JSON line. `--only cli,import,reconcile`
// picks parts; the default runs them all.
//   cli        `haat --help` beside a bare `node -e 0`, a read and a write (medians of --runs)
//   import     `haat import skus` + `haat import stock` of --import-rows rows
//   reconcile  every invariant over ~2.3 million rows (--orders, --skus, --movements)
//   write      signed order.placed webhooks through an intake and a worker process (--write-orders per
//              run, spread and hot; --write-lines: at most that many lines per spread order), beside
//              raw-SQL baselines on the same server (--baseline-seconds each; --baseline-client
//              auto|pgbench|pg); both runs again with an outbound endpoint subscribed to every event
//              (delivered/s, lag, lost, and the order rate beside the run without)
//   expiry     `haat reservations expire` of --expiry-orders due reservations (--expiry-timeout seconds)
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger } from '../src/log.ts';
import { benchCli, type CliFigures } from './bench/cli.ts';
import { benchReconcile } from './bench/reconcile.ts';
import { benchExpiry, benchWrite, type WriteRun } from './bench/write-path.ts';
import { intOption } from './scratch-database.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'cli,import,reconcile,write,expiry' },
    runs: { type: 'string', default: '20' },
    'import-rows': { type: 'string', default: '10000' },
    orders: { type: 'string', default: '100000' },
    movements: { type: 'string', default: '1000000' },
    skus: { type: 'string', default: '10000' },
    'write-orders': { type: 'string', default: '4000' },
    'write-lines': { type: 'string', default: '1' },
    'baseline-seconds': { type: 'string', default: '10' },
    'baseline-client': { type: 'string', default: 'auto' },
    'expiry-orders': { type: 'string', default: '100000' },
    'expiry-timeout': { type: 'string', default: '600' },
  },
});
const parts = new Set(values.only.split(','));
for (const part of parts)
  if (!['cli', 'import', 'reconcile', 'write', 'expiry'].includes(part)) throw new Error(`--only: unknown part ${part}`);
const baselineClient = values['baseline-client'];
if (baselineClient !== 'auto' && baselineClient !== 'pgbench' && baselineClient !== 'pg')
  throw new Error(`--baseline-client: auto, pgbench or pg, not ${baselineClient}`);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');

const rows: [string, string, string, string][] = [];
// Other work on the machine skews every figure: the load when the bench starts is reported with them.
const result: Record<string, unknown> = {
  cpus: os.availableParallelism(),
  load_avg_1m_at_start: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
};
let failed = false;
const verdict = (ok: boolean) => {
  if (!ok) failed = true;
  return ok ? 'met' : 'NOT MET';
};

if (parts.has('cli') || parts.has('import')) {
  const cli: CliFigures = await benchCli({
    runs: parts.has('cli') ? intOption('runs', values.runs, 1, 1000) : 1,
    importRows: parts.has('import') ? intOption('import-rows', values['import-rows'], 1, 1_000_000) : 0,
    log,
  });
  result.cli = cli;
  if (parts.has('cli')) {
    const ratio = cli.help_ms / cli.node_e0_ms;
    rows.push(['node -e 0 (baseline)', `${cli.node_e0_ms} ms`, '', '']);
    rows.push(['haat --help', `${cli.help_ms} ms`, `${ratio.toFixed(2)}× node -e 0`, `≤ 3× — ${verdict(ratio <= 3)}`]);
    rows.push(['haat stock show (server running)', `${cli.read_ms} ms`, '', `≤ 300 ms — ${verdict(cli.read_ms <= 300)}`]);
    rows.push(['haat stock receive (worker running)', `${cli.write_ms} ms`, '', `≤ 400 ms — ${verdict(cli.write_ms <= 400)}`]);
  }
  if (cli.import) {
    const perSecond = Math.round((2 * cli.import.rows * 1000) / cli.import.total_ms);
    rows.push([
      `haat import of ${cli.import.rows} SKUs + their stock`,
      `${(cli.import.total_ms / 1000).toFixed(1)} s`,
      `${perSecond} rows/s (skus ${(cli.import.skus_ms / 1000).toFixed(1)} s, stock ${(cli.import.stock_ms / 1000).toFixed(1)} s)`,
      cli.import.rows === 10_000 ? `< 30 s — ${verdict(cli.import.total_ms < 30_000)}` : '',
    ]);
  }
}

if (parts.has('reconcile')) {
  const reconcile = await benchReconcile({
    orders: intOption('orders', values.orders, 1, 100_000_000),
    skus: intOption('skus', values.skus, 1, 9_999_999),
    movements: intOption('movements', values.movements, 1, 1_000_000_000),
  });
  result.reconcile = reconcile;
  const total = Object.values(reconcile.rows as Record<string, number>).reduce((a, b) => a + b, 0);
  rows.push([
    `haat reconcile over ${(total / 1e6).toFixed(1)} M rows`,
    `${reconcile.reconcile_ms} ms`,
    `one broken row: ${reconcile.reconcile_with_one_broken_row_ms} ms, found`,
    '',
  ]);
}

if (parts.has('write')) {
  const write = await benchWrite({
    orders: intOption('write-orders', values['write-orders'], 1, 1_000_000),
    maxLines: intOption('write-lines', values['write-lines'], 1, 3),
    baselineSeconds: intOption('baseline-seconds', values['baseline-seconds'], 1, 3600),
    baselineClient,
    log,
  });
  result.write = write;
  const b = write.baselines;
  const by = `${b.client}, ${b.clients} clients, ${b.seconds} s`;
  rows.push(['raw SQL (a): insert a 1 KiB jsonb row', `${b.insert_tps} tx/s`, by, '']);
  rows.push(['raw SQL (b): reserve, 100 SKUs', `${b.reserve_spread_tps} tx/s`, by, '']);
  rows.push(['raw SQL (c): reserve, one hot SKU', `${b.reserve_hot_tps} tx/s`, by, '']);
  // The application alone: a backlog posted with the worker stopped, then drained (no target of its
  // own: it shows what bounds the end-to-end figures).
  for (const [run, base, label] of [
    [write.spreadBacklog, b.reserve_spread_tps, '(b)'],
    [write.hotBacklog, b.reserve_hot_tps, '(c)'],
  ] as const) {
    rows.push([
      `worker alone, backlog of ${run.orders}, ${run.run === 'spread' ? `${run.skus} SKUs` : 'one hot SKU'}`,
      `${run.end_to_end_per_s} orders/s`,
      `${(run.end_to_end_per_s / base).toFixed(2)}× ${label}; oversold ${run.oversold_rows + (run.hot?.oversold ?? 0)}; reconcile exit ${run.reconcile_exit}; RSS ${run.worker_rss_mb.max.toFixed(0)} MB`,
      '',
    ]);
    rows.push([
      `intake alone (worker stopped), ${run.run === 'spread' ? `${run.skus} SKUs` : 'one hot SKU'}`,
      `${run.intake_per_s}/s`,
      `${(run.intake_per_s / b.insert_tps).toFixed(2)}× (a); p50 ${run.latency_ms.p50} ms, p99 ${run.latency_ms.p99} ms`,
      '',
    ]);
  }
  const mb = (n: number) => `${n.toFixed(0)} MB`;
  for (const run of [write.spread, write.hot] as const) {
    const what =
      run.run === 'spread'
        ? `spread (${run.skus} SKUs, ${run.lines_per_order} line${run.lines_per_order === '1' ? '' : 's'})`
        : 'hot (one SKU)';
    const intakeRatio = run.intake_per_s / b.insert_tps;
    rows.push([
      `intake, ${what}: 202/s`,
      `${run.intake_per_s}/s`,
      `${intakeRatio.toFixed(2)}× (a); ${run.accepted} of ${run.orders} in ${(run.posting_ms / 1000).toFixed(1)} s`,
      `≥ 0.40× (a) — ${verdict(intakeRatio >= 0.4)}`,
    ]);
    rows.push([
      `intake, ${what}: latency`,
      `p99 ${run.latency_ms.p99} ms`,
      `p50 ${run.latency_ms.p50} ms, p95 ${run.latency_ms.p95} ms, max ${run.latency_ms.max} ms`,
      `p99 < 50 ms — ${verdict(run.latency_ms.p99 < 50)}`,
    ]);
    const e2e = (run: WriteRun, base: number) => run.end_to_end_per_s / base;
    if (run.run === 'spread') {
      const ratio = e2e(run, b.reserve_spread_tps);
      rows.push([
        `end to end, ${what}`,
        `${run.end_to_end_per_s} orders/s`,
        `${ratio.toFixed(2)}× (b); drain ${(run.drain_ms / 1000).toFixed(1)} s after posting`,
        `≥ 0.50× (b) — ${verdict(ratio >= 0.5)}`,
      ]);
    } else {
      const ratio = e2e(run, b.reserve_hot_tps);
      const hot = run.hot;
      const oversold = run.oversold_rows + (hot?.oversold ?? 0);
      rows.push([
        `end to end, ${what}`,
        `${run.end_to_end_per_s} orders/s`,
        `${ratio.toFixed(2)}× (c); drain ${(run.drain_ms / 1000).toFixed(1)} s after posting; oversold ${oversold}`,
        `≥ 2.0× (c), 0 oversold — ${verdict(ratio >= 2 && oversold === 0)}`,
      ]);
      rows.push([
        `hot SKU sold`,
        `${hot?.sold ?? '?'} of ${hot?.stock ?? '?'}`,
        `${run.orders} ordered; reserved ${hot?.reserved ?? '?'}; ${JSON.stringify(run.orders_by_state)}`,
        `= stock — ${verdict(hot !== undefined && hot.sold === hot.stock && hot.reserved === hot.stock)}`,
      ]);
    }
    rows.push([
      `worker RSS, ${what}`,
      mb(run.worker_rss_mb.max),
      `idle ${mb(run.worker_rss_mb.idle)} (intake max ${mb(run.intake_rss_mb.max)})`,
      `< 200 MB — ${verdict(run.worker_rss_mb.max < 200)}`,
    ]);
    rows.push([
      `haat reconcile after ${run.run}`,
      `exit ${run.reconcile_exit}`,
      `after SIGTERM the worker exited ${run.stop_exit.worker}, the intake ${run.stop_exit.intake}`,
      `exit 0 — ${verdict(run.reconcile_exit === 0)}`,
    ]);
  }
  // Notifications: the spread and hot runs again with an endpoint subscribed to every event, its
  // receiver in the bench process; each run beside its neighbour without (issue 14: they must not
  // halve the order rate).
  for (const [run, without, ratio] of [
    [write.spreadNotify, write.spread, write.notify_ratio.spread],
    [write.hotNotify, write.hot, write.notify_ratio.hot],
  ] as const) {
    const n = run.notifications;
    if (!n) throw new Error(`write ${run.run}: a run with notifications has no delivery figures`);
    const what = run.run === 'spread' ? `spread (${run.skus} SKUs)` : 'hot (one SKU)';
    const oversold = run.oversold_rows + (run.hot?.oversold ?? 0);
    rows.push([
      `end to end, ${what}, webhooks out`,
      `${run.end_to_end_per_s} orders/s`,
      `${ratio.toFixed(2)}× without (${without.end_to_end_per_s}/s); 1 endpoint on every event; drain ${(run.drain_ms / 1000).toFixed(1)} s after posting; oversold ${oversold}`,
      `≥ 0.50× without, 0 oversold — ${verdict(ratio >= 0.5 && oversold === 0)}`,
    ]);
    rows.push([
      `webhooks out, ${run.run}: delivered/s`,
      `${n.delivered_per_s} events/s`,
      `${n.delivered} of ${n.events} events in ${(n.delivery_ms / 1000).toFixed(1)} s (${n.complete ? `first received → all delivered, ${(n.after_orders_ms / 1000).toFixed(1)} s after the last order's outcome` : 'then none for 60 s: the wait gave up'}); ${n.attempts} attempts; worker RSS ${mb(run.worker_rss_mb.max)}`,
      '',
    ]);
    rows.push([
      `webhooks out, ${run.run}: lag`,
      `p99 ${n.lag_ms.p99} ms`,
      `p50 ${n.lag_ms.p50} ms, max ${n.lag_ms.max} ms (event written with its change → received)`,
      '',
    ]);
    const clean = n.complete && n.lost === 0 && n.bad_signatures === 0 && n.events_without_one_delivery === 0 && run.reconcile_exit === 0;
    rows.push([
      `webhooks out, ${run.run}: lost`,
      `${n.lost} lost`,
      `${n.events - n.events_without_one_delivery} of ${n.events} events with one delivery; ${n.received} requests received (${n.received_events} events); bad signatures ${n.bad_signatures}; reconcile exit ${run.reconcile_exit}`,
      `0 lost, 0 bad, reconcile 0 — ${verdict(clean)}`,
    ]);
  }
}

if (parts.has('expiry')) {
  const expiry = await benchExpiry({
    orders: intOption('expiry-orders', values['expiry-orders'], 1, 10_000_000),
    timeoutMs: intOption('expiry-timeout', values['expiry-timeout'], 1, 86_400) * 1000,
    log,
  });
  result.expiry = expiry;
  const clean = expiry.expire_exit === 0 && expiry.pending_due_left === 0 && expiry.reconcile_after_exit === 0;
  rows.push([
    `haat reservations expire of ${expiry.orders} due orders`,
    expiry.expire_exit === 'timeout'
      ? `> ${(expiry.expire_ms / 1000).toFixed(0)} s (timeout)`
      : `${(expiry.expire_ms / 1000).toFixed(1)} s`,
    `${expiry.reservations} reservations; exit ${expiry.expire_exit}, ${expiry.pending_due_left} still due, reconcile before ${expiry.reconcile_before_exit} / after ${expiry.reconcile_after_exit}`,
    expiry.orders === 100_000 ? `< 10 s, none left — ${verdict(clean && expiry.expire_ms < 10_000)}` : `none left — ${verdict(clean)}`,
  ]);
}

const widths = [0, 1, 2, 3].map((i) =>
  Math.max(...[['figure', 'value', 'ratio / detail', 'target'], ...rows].map((r) => (r[i] as string).length)),
);
const line = (r: readonly string[]) =>
  r
    .map((c, i) => c.padEnd(widths[i] as number))
    .join('  ')
    .trimEnd();
console.log(line(['figure', 'value', 'ratio / detail', 'target']));
for (const r of rows) console.log(line(r));
console.log(JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
// Figures that miss a target are reported, not hidden; the exit code says so for scripts.
if (failed) process.exitCode = 3;
