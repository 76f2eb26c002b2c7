// npm run bench: the speed figures built so far (docs/contract.md, Planned, lists the rest), each
// beside its baseline or target, printed as a table and as one JSON line. `--only cli,import,reconcile`
// picks parts.
//   cli        `haat --help` beside a bare `node -e 0`, a read and a write (medians of --runs)
//   import     `haat import skus` + `haat import stock` of --import-rows rows
//   reconcile  every invariant over ~2.3 million rows (--orders, --skus, --movements)
import { parseArgs } from 'node:util';
import { createLogger } from '../src/log.ts';
import { benchCli, type CliFigures } from './bench/cli.ts';
import { benchReconcile } from './bench/reconcile.ts';
import { intOption } from './scratch-database.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'cli,import,reconcile' },
    runs: { type: 'string', default: '20' },
    'import-rows': { type: 'string', default: '10000' },
    orders: { type: 'string', default: '100000' },
    movements: { type: 'string', default: '1000000' },
    skus: { type: 'string', default: '10000' },
  },
});
const parts = new Set(values.only.split(','));
for (const part of parts) if (!['cli', 'import', 'reconcile'].includes(part)) throw new Error(`--only: unknown part ${part}`);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');

const rows: [string, string, string, string][] = [];
const result: Record<string, unknown> = {};
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
