// What an operator feels at the terminal (the CLI targets of `npm run bench`): the start of a bare
// `node -e 0` beside `haat --help`, a read (`stock show`) with the server running, and a write (`stock
// receive`) with a worker running — each a real process, the median of N runs after one warm-up run
// (which fills Node's compile cache, as any first use does) — and `haat import` of SKUs and their
// stock.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../src/log.ts';
import { createScratchDatabase } from '../scratch-database.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/haat.js');

export type CliFigures = {
  readonly runs: number;
  readonly node_e0_ms: number;
  readonly help_ms: number;
  readonly read_ms: number;
  readonly write_ms: number;
  readonly import?: { readonly rows: number; readonly skus_ms: number; readonly stock_ms: number; readonly total_ms: number };
};

function run(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  stdin?: string,
): Promise<{ ms: number; code: number; out: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let stdout = '';
    child.stdout.on('data', (d) => {
      out += d;
      stdout += d;
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code: code ?? -1, out, stdout }));
    child.stdin.end(stdin ?? '');
  });
}

const median = (xs: readonly number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return Math.round((sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2) * 10) / 10;
};

/** Wall time of one process, spawn to exit, as a shell's `time` sees it: no pipes to drain. */
function timeOne(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code: code ?? -1 }));
  });
}

async function timesOf(label: string, runs: number, args: (i: number) => readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const warm = await run(args(-1), env);
  if (warm.code !== 0) throw new Error(`${label} exited ${warm.code}: ${warm.out.slice(0, 500)}`);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const result = await timeOne(args(i), env);
    if (result.code !== 0) throw new Error(`${label} exited ${result.code} (run ${i + 1})`);
    times.push(result.ms);
  }
  return median(times);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function haatUp(env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bin, 'up', '--port', String(port)], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d) => (log += d));
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`haat up exited ${child.exitCode}: ${log.slice(-2000)}`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return child;
    await sleep(100);
  }
  throw new Error(`haat up was not ready after 60 s: ${log.slice(-2000)}`);
}

export async function benchCli(options: { runs: number; importRows: number; log: Logger }): Promise<CliFigures> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-bench-'));
  const scratch = process.env.DATABASE_URL ? await createScratchDatabase('haat_bench_cli', options.log) : undefined;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HAAT_HOME: home,
    HAAT_ACTOR: 'bench',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    ...(scratch ? { DATABASE_URL: scratch.url } : {}),
  };
  const port = await freePort();
  const up = await haatUp({ ...env, PORT: String(port) }, port);
  try {
    const haat = (...args: string[]) => [bin, ...args] as const;
    for (const args of [
      ['seller', 'add', 'bench', '--name', 'Bench'],
      ['sku', 'add', 'BENCH-1', '--seller', 'bench', '--price', '100', '--currency', 'INR'],
    ]) {
      const result = await run(haat(...args), env);
      if (result.code !== 0) throw new Error(`${args.join(' ')}: ${result.out}`);
    }
    const figures = {
      runs: options.runs,
      node_e0_ms: await timesOf('node -e 0', options.runs, () => ['-e', '0'], env),
      help_ms: await timesOf('haat --help', options.runs, () => haat('--help'), env),
      read_ms: await timesOf('haat stock show', options.runs, () => haat('stock', 'show', 'BENCH-1'), env),
      write_ms: await timesOf('haat stock receive', options.runs, () => haat('stock', 'receive', 'BENCH-1', '1'), env),
    };
    if (options.importRows === 0) return figures;
    const skus = path.join(home, 'skus.csv');
    const stock = path.join(home, 'stock.csv');
    const codes = Array.from({ length: options.importRows }, (_, i) => `IMP-${String(i + 1).padStart(6, '0')}`);
    await fs.writeFile(
      skus,
      `code,seller,price,currency,title\n${codes.map((c, i) => `${c},bench,${(i % 500) + 1}00,INR,Item ${i + 1}`).join('\n')}\n`,
    );
    await fs.writeFile(stock, `sku,qty,reason\n${codes.map((c, i) => `${c},${(i % 50) + 1},opening stock`).join('\n')}\n`);
    const importSkus = await run(haat('import', 'skus', skus, '--json'), env);
    if (importSkus.code !== 0) throw new Error(`import skus: ${importSkus.out.slice(0, 1000)}`);
    const importStock = await run(haat('import', 'stock', stock, '--json'), env);
    if (importStock.code !== 0) throw new Error(`import stock: ${importStock.out.slice(0, 1000)}`);
    for (const [what, result] of [
      ['skus', importSkus],
      ['stock', importStock],
    ] as const) {
      const applied = (JSON.parse(result.stdout) as { applied?: number }).applied;
      if (applied !== options.importRows) throw new Error(`import ${what} applied ${applied}, expected ${options.importRows}`);
    }
    return {
      ...figures,
      import: {
        rows: options.importRows,
        skus_ms: Math.round(importSkus.ms),
        stock_ms: Math.round(importStock.ms),
        total_ms: Math.round(importSkus.ms + importStock.ms),
      },
    };
  } finally {
    up.kill('SIGTERM');
    await new Promise((resolve) => (up.exitCode !== null ? resolve(null) : up.once('close', resolve)));
    await scratch?.drop();
    await fs.rm(home, { recursive: true, force: true });
  }
}
