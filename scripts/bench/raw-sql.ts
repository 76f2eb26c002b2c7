// Raw-SQL baselines for the write path (CONTRACT §9), on the server the bench runs against, in a
// database of their own: what PostgreSQL itself does with 16 clients and no application in between.
//   insert        one ~1 KiB jsonb row with a unique text id into a durable (logged) table
//   reserve       BEGIN; SELECT … FOR UPDATE of a random one of 100 stock rows; UPDATE reserved + 1;
//                 INSERT a reservation row; COMMIT
//   reserve_hot   the same transaction, always on one stock row
// pgbench when it is on PATH (`-n -c 16 -j 2 -T <seconds> -M prepared`), else the same statements
// from 16 `pg` connections in a loop (prepared too).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export type BaselineClient = 'auto' | 'pgbench' | 'pg';

export type Baselines = {
  readonly client: 'pgbench' | 'pg';
  readonly clients: number;
  readonly seconds: number;
  readonly postgres: string;
  /** Transactions per second of each baseline. */
  readonly insert_tps: number;
  readonly reserve_spread_tps: number;
  readonly reserve_hot_tps: number;
};

const SPREAD_SKUS = 100;
/** ~1 KiB of JSON once the ref is in, like an order.placed body with its padding. */
const PAD = 'x'.repeat(860);
const bodySql = (r: string) =>
  `('{"type": "order.placed", "timestamp": "2025-01-01T00.00.00Z", "data": {"ref": "R-' || ${r} || '", "buyer": "b-42", "currency": "INR", "items": [{"sku": "S-1", "qty": 1}]}, "pad": "${PAD}"}')::jsonb`;

const SETUP = `
  create table bench_events (id text primary key, body jsonb not null, received_at timestamptz not null default now());
  create table bench_stock (
    sku text primary key,
    on_hand bigint not null,
    reserved bigint not null default 0,
    check (0 <= reserved and reserved <= on_hand)
  );
  insert into bench_stock (sku, on_hand) select 'S-' || g, 1000000000000 from generate_series(1, ${SPREAD_SKUS}) g;
  create table bench_reservations (
    id bigint generated always as identity primary key,
    holder text not null,
    sku text not null,
    qty bigint not null,
    created_at timestamptz not null default now()
  );`;

type Script = {
  readonly name: 'insert' | 'reserve' | 'reserve_hot';
  readonly pgbench: string;
  readonly loop: (c: pg.Client) => Promise<void>;
};

const reserveLoop = (pick: () => string) => async (c: pg.Client) => {
  const sku = pick();
  await c.query('begin');
  await c.query({ name: 'lock', text: 'select on_hand, reserved from bench_stock where sku = $1 for update', values: [sku] });
  await c.query({ name: 'bump', text: 'update bench_stock set reserved = reserved + 1 where sku = $1', values: [sku] });
  await c.query({
    name: 'hold',
    text: 'insert into bench_reservations (holder, sku, qty) values (gen_random_uuid()::text, $1, 1)',
    values: [sku],
  });
  await c.query('commit');
};

const reserveScript = (sku: string) => `BEGIN;
SELECT on_hand, reserved FROM bench_stock WHERE sku = ${sku} FOR UPDATE;
UPDATE bench_stock SET reserved = reserved + 1 WHERE sku = ${sku};
INSERT INTO bench_reservations (holder, sku, qty) VALUES (gen_random_uuid()::text, ${sku}, 1);
COMMIT;
`;

const scripts: readonly Script[] = [
  {
    name: 'insert',
    pgbench: `\\set r random(1, 1000000000)\nINSERT INTO bench_events (id, body) VALUES (gen_random_uuid()::text, ${bodySql('cast(:r as text)')});\n`,
    loop: async (c) => {
      await c.query({
        name: 'insert',
        text: `insert into bench_events (id, body) values (gen_random_uuid()::text, ${bodySql('$1::text')})`,
        values: [String(Math.floor(Math.random() * 1e9))],
      });
    },
  },
  {
    name: 'reserve',
    pgbench: `\\set k random(1, ${SPREAD_SKUS})\n${reserveScript(`'S-' || cast(:k as text)`)}`,
    loop: reserveLoop(() => `S-${1 + Math.floor(Math.random() * SPREAD_SKUS)}`),
  },
  { name: 'reserve_hot', pgbench: reserveScript(`'S-1'`), loop: reserveLoop(() => 'S-1') },
];

function hasPgbench(): boolean {
  const probe = spawnSync('pgbench', ['--version'], { stdio: 'ignore' });
  return probe.status === 0;
}

async function runPgbench(url: string, file: string, clients: number, seconds: number): Promise<number> {
  const args = ['-n', '-c', String(clients), '-j', '2', '-T', String(seconds), '-M', 'prepared', '-f', file, url];
  const { code, out } = await new Promise<{ code: number; out: string }>((resolve, reject) => {
    const child = spawn('pgbench', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c ?? -1, out }));
  });
  const tps = /^tps = ([0-9.]+)/m.exec(out);
  const failed = /number of failed transactions: ([0-9]+)/.exec(out);
  if (code !== 0 || !tps || (failed && failed[1] !== '0'))
    throw new Error(`pgbench ${path.basename(file)} exited ${code}: ${out.slice(-2000)}`);
  return Number(tps[1]);
}

async function runLoop(url: string, script: Script, clients: number, seconds: number): Promise<number> {
  const connections = await Promise.all(
    Array.from({ length: clients }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  try {
    let done = 0;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      connections.map(async (c) => {
        while (performance.now() < deadline) {
          await script.loop(c);
          done++;
        }
      }),
    );
    return done / ((performance.now() - started) / 1000);
  } finally {
    await Promise.all(connections.map((c) => c.end().catch(() => undefined)));
  }
}

/** Runs the three baselines in the (empty) database `url`; its tables are left for the caller to drop with it. */
export async function benchRawSql(url: string, options: { clients: number; seconds: number; client: BaselineClient }): Promise<Baselines> {
  const client = options.client === 'auto' ? (hasPgbench() ? 'pgbench' : 'pg') : options.client;
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-bench-sql-'));
  try {
    await db.query(SETUP);
    const version = (await db.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0]?.v ?? '?';
    const tps: Record<string, number> = {};
    for (const script of scripts) {
      // Each baseline starts from the same state: empty history tables, stock back at 0 reserved.
      await db.query('truncate bench_events, bench_reservations');
      await db.query('update bench_stock set reserved = 0');
      await db.query('vacuum analyze bench_events, bench_stock, bench_reservations');
      await db.query('checkpoint').catch(() => undefined); // needs superuser or pg_checkpoint; only evens the runs out
      if (client === 'pgbench') {
        const file = path.join(dir, `${script.name}.sql`);
        await fs.writeFile(file, script.pgbench);
        tps[script.name] = await runPgbench(url, file, options.clients, options.seconds);
      } else {
        tps[script.name] = await runLoop(url, script, options.clients, options.seconds);
      }
      console.error(`baseline ${script.name} (${client}): ${Math.round(tps[script.name] as number)} tps`);
    }
    return {
      client,
      clients: options.clients,
      seconds: options.seconds,
      postgres: version,
      insert_tps: Math.round(tps.insert as number),
      reserve_spread_tps: Math.round(tps.reserve as number),
      reserve_hot_tps: Math.round(tps.reserve_hot as number),
    };
  } finally {
    await db.end().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  }
}
