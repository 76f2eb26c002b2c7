// haat import skus|stock through the real CLI (docs/contract.md, Bulk import): whole-file validation,
// replays, an import killed midway and run again, --skip-invalid, --dry-run, standard input, the
// size limit, and the progress bar (only at a terminal). "Nothing written" is the footprint of every
// table of haat and of the job queue, unchanged.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { sql } from '../../src/db/sql.ts';
import { haatBin, repoRoot, runCli, spawnCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { footprint } from '../helpers/footprint.ts';
import { mustApply } from '../helpers/seed.ts';

const db = await createTestDatabase();
const env = { DATABASE_URL: db.url, HAAT_WAIT_FOR_WORKER_MS: '0' };
const cli = (...argv: string[]) => runCli(argv, { env });
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-import-'));
after(() => fs.rm(dir, { recursive: true, force: true }));

await mustApply(db.pool, { type: 'seller.add', payload: { handle: 'tea-house', name: 'Tea House' } });

let files = 0;
async function csv(content: string | Uint8Array): Promise<string> {
  const file = path.join(dir, `f${++files}.csv`);
  await fs.writeFile(file, content);
  return file;
}

type Report = { applied: number; replayed: number; skipped: number; idempotency_key: string; to_apply?: number; to_replay?: number };
type Row = { line: number | null; column: string | null; code: string; message: string };
type ErrorDoc = {
  error: { code: string; message: string; details: { rows: Row[]; applied?: number; replayed?: number; skipped?: number } };
};

const report = (stdout: string) => {
  const { applied, replayed, skipped } = JSON.parse(stdout) as Report;
  return { applied, replayed, skipped };
};
const failure = (stdout: string) => (JSON.parse(stdout) as ErrorDoc).error;
const rowsOf = (stdout: string) => failure(stdout).details.rows.map(({ line, column, code }) => ({ line, column, code }));

const stockOf = async (sku: string) =>
  db.pool.maybeOne(sql.type(z.object({ on_hand: z.bigint(), movements: z.bigint() }))`
    select i.on_hand, (select count(*) from inventory_movements m where m.sku = i.sku) as movements from inventory i where i.sku = ${sku}`);
const importKeys = (kind: string) =>
  db.pool.oneFirst(
    sql.type(z.object({ n: z.bigint() }))`select count(*) as n from idempotency_keys where scope = 'import' and key like ${`${kind}:%`}`,
  );

/** The import must be refused with exit 2 and these rows, and write nothing. */
async function refused(argv: readonly string[], rows: readonly { line: number | null; column: string | null; code: string }[]) {
  const before = await footprint(db.pool);
  const result = await cli('import', ...argv, '--json');
  assert.equal(result.code, 2, result.stdout + result.stderr);
  assert.equal(failure(result.stdout).code, 'invalid_input');
  assert.deepEqual(rowsOf(result.stdout), rows, result.stdout);
  assert.deepEqual(await footprint(db.pool), before, 'nothing was written');
  return failure(result.stdout);
}

describe('import skus, then stock', () => {
  test('creates every SKU and receives its stock; CRLF endings, quoted commas and a leading BOM read as an operator means them', async () => {
    const skus = await csv(
      '\ufeffcode,seller,price,currency,title\r\nHAPPY-1,tea-house,12999,INR,"Assam, 1 kg"\r\nHAPPY-2,tea-house,500,JPY,\r\nHAPPY-3,tea-house,0,INR,"a ""quoted"" title"\r\n',
    );
    const first = await cli('import', 'skus', skus, '--json');
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.deepEqual(report(first.stdout), { applied: 3, replayed: 0, skipped: 0 });
    assert.match(first.stderr, /^idempotency key: [0-9a-f]{64}$/m, 'the key is printed, like a single write prints its own');
    const shown = JSON.parse(
      (await cli('sku', 'add', 'HAPPY-1', '--seller', 'tea-house', '--price', '1', '--currency', 'INR', '--json')).stdout,
    );
    assert.equal(shown.error.code, 'conflict', 'the SKU exists');
    const titles = await db.pool.any(sql.type(
      z.object({ code: z.string(), title: z.string(), price_amount: z.bigint(), currency: z.string() }),
    )`
      select code, title, price_amount, currency from skus where code like 'HAPPY-%' order by code`);
    assert.deepEqual(titles, [
      { code: 'HAPPY-1', title: 'Assam, 1 kg', price_amount: 12999n, currency: 'INR' },
      { code: 'HAPPY-2', title: '', price_amount: 500n, currency: 'JPY' },
      { code: 'HAPPY-3', title: 'a "quoted" title', price_amount: 0n, currency: 'INR' },
    ]);

    const stock = await csv('sku,qty,reason\nHAPPY-1,10,delivery 42\nHAPPY-2,3,\n');
    const received = await cli('import', 'stock', stock);
    assert.equal(received.code, 0, received.stderr);
    assert.equal(received.stdout, 'import stock: 2 applied, 0 replayed, 0 skipped\n');
    assert.doesNotMatch(received.stderr, /rows\/s/, 'no progress bar when stderr is not a terminal');
    assert.deepEqual(await stockOf('HAPPY-1'), { on_hand: 10n, movements: 1n });
    assert.deepEqual(await stockOf('HAPPY-2'), { on_hand: 3n, movements: 1n });
    const reason = await db.pool.oneFirst(
      sql.type(z.object({ reason: z.string().nullable() }))`select reason from inventory_movements where sku = 'HAPPY-1'`,
    );
    assert.equal(reason, 'delivery 42');

    // Next week's delivery, line for line the same: replayed under the file's digest, and said so.
    const nextWeek = await csv('sku,qty,reason\nHAPPY-1,10,delivery 42\nHAPPY-2,3,\n');
    const nextWeekRun = await cli('import', 'stock', nextWeek);
    assert.equal(nextWeekRun.code, 0);
    assert.equal(nextWeekRun.stdout, 'import stock: 0 applied, 2 replayed, 0 skipped\n');
    assert.match(nextWeekRun.stderr, /note: 2 row\(s\) were applied before.*needs its own --idempotency-key/);
    assert.deepEqual(await stockOf('HAPPY-1'), { on_hand: 10n, movements: 1n });
    const ownKey = await cli('import', 'stock', nextWeek, '--idempotency-key', 'delivery-43');
    assert.equal(ownKey.stdout, 'import stock: 2 applied, 0 replayed, 0 skipped\n');
    assert.doesNotMatch(ownKey.stderr, /note:/);
    assert.deepEqual(await stockOf('HAPPY-1'), { on_hand: 20n, movements: 2n });

    // The same files again: nothing is applied twice, and nothing at all is written.
    const before = await footprint(db.pool);
    const again = await cli('import', 'skus', skus, '--json');
    assert.equal(again.code, 0, again.stdout);
    assert.deepEqual(report(again.stdout), { applied: 0, replayed: 3, skipped: 0 });
    assert.equal(JSON.parse(again.stdout).idempotency_key, JSON.parse(first.stdout).idempotency_key);
    const stockAgain = await cli('import', 'stock', stock, '--json');
    assert.deepEqual(report(stockAgain.stdout), { applied: 0, replayed: 2, skipped: 0 });
    assert.deepEqual(await footprint(db.pool), before, 'a replay writes nothing');
  });

  test('the same rows with other line endings, quoting or column order are the same import (a re-saved file replays)', async () => {
    const original = await csv('sku,qty\nHAPPY-3,4\n');
    assert.deepEqual(report((await cli('import', 'stock', original, '--json')).stdout), { applied: 1, replayed: 0, skipped: 0 });
    const resaved = await csv('\ufeff"qty","sku"\r\n"4","HAPPY-3"\r\n');
    assert.deepEqual(report((await cli('import', 'stock', resaved, '--json')).stdout), { applied: 0, replayed: 1, skipped: 0 });
    assert.deepEqual(await stockOf('HAPPY-3'), { on_hand: 4n, movements: 1n });
  });

  test('a header with no rows is an import of nothing (exit 0)', async () => {
    const before = await footprint(db.pool);
    const result = await cli('import', 'stock', await csv('sku,qty,reason\r\n'), '--json');
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(report(result.stdout), { applied: 0, replayed: 0, skipped: 0 });
    assert.deepEqual(await footprint(db.pool), before);
  });

  test('reads standard input for -, with the same rules', async () => {
    const result = await spawnCli(['import', 'skus', '-', '--json'], {
      env: { ...env, LOG_LEVEL: 'silent' },
      stdin: 'code,seller,price,currency\nSTDIN-1,tea-house,100,INR\nSTDIN-2,tea-house,200,INR\n',
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.deepEqual(report(result.stdout), { applied: 2, replayed: 0, skipped: 0 });
    const bad = await spawnCli(['import', 'skus', '-', '--json'], {
      env: { ...env, LOG_LEVEL: 'silent' },
      stdin: 'code,seller,price,currency\nSTDIN-3,tea-house,1.5,INR\n',
    });
    assert.equal(bad.code, 2, bad.stdout);
    assert.deepEqual(rowsOf(bad.stdout), [{ line: 2, column: 'price', code: 'invalid_input' }]);
  });
});

describe('the whole file is validated first: one bad row and nothing is written', () => {
  test('each kind of bad row is named by its line and column, all of them at once', async () => {
    const error = await refused(
      [
        'skus',
        await csv(
          [
            'code,seller,price,currency,title',
            'BAD-1,tea-house,10.50,INR,ok', // price
            'BAD-2,tea-house,100,inr,ok', // currency
            'BAD-3,nobody,100,INR,ok', // unknown seller
            'bad-4,tea-house,100,INR,ok', // non-canonical code
            'HAPPY-1,tea-house,100,INR,ok', // exists already
            'GOOD-1,tea-house,100,INR,ok',
            'BAD-5,tea-house,100,INR,too,many', // a comma not quoted
            '',
          ].join('\n'),
        ),
      ],
      [
        { line: 2, column: 'price', code: 'invalid_input' },
        { line: 3, column: 'currency', code: 'invalid_input' },
        { line: 4, column: 'seller', code: 'not_found' },
        { line: 5, column: 'code', code: 'invalid_input' },
        { line: 6, column: 'code', code: 'conflict' },
        { line: 8, column: null, code: 'invalid_input' },
      ],
    );
    assert.match(error.message, /^6 invalid rows; nothing was written/);
    assert.match(error.details.rows[3]?.message ?? '', /did you mean BAD-4\?/);
    assert.equal(await stockOf('GOOD-1'), null, 'the valid row was not written either');
  });

  test('stock rows: a bad quantity and an unknown SKU', async () => {
    await refused(
      ['stock', await csv('sku,qty\nHAPPY-1,0\nHAPPY-2,1e3\nNOPE-1,1\nHAPPY-3,+2\nHAPPY-1X,1000001\n')],
      [
        { line: 2, column: 'qty', code: 'invalid_input' },
        { line: 3, column: 'qty', code: 'invalid_input' },
        { line: 4, column: 'sku', code: 'not_found' },
        { line: 5, column: 'qty', code: 'invalid_input' },
        { line: 6, column: 'qty', code: 'invalid_input' },
      ],
    );
  });

  test('two rows for one SKU are refused, each naming the other line (also when one spells it in lower case)', async () => {
    const error = await refused(
      ['stock', await csv('sku,qty\nHAPPY-1,1\nHAPPY-2,1\nHAPPY-1,1\nhappy-2,5\n')],
      [
        { line: 2, column: 'sku', code: 'invalid_input' },
        { line: 3, column: 'sku', code: 'invalid_input' },
        { line: 4, column: 'sku', code: 'invalid_input' },
        { line: 5, column: 'sku', code: 'invalid_input' },
        { line: 5, column: 'sku', code: 'invalid_input' },
      ],
    );
    const messages = error.details.rows.map((r) => `${r.line}: ${r.message}`);
    assert.ok(messages.includes('4: duplicate of line 2 (SKU HAPPY-1): one row per SKU in a file'), messages.join('\n'));
    assert.ok(messages.includes('2: SKU HAPPY-1 is also on line 4: one row per SKU in a file'), messages.join('\n'));
    assert.ok(messages.includes('5: duplicate of line 3 (SKU HAPPY-2): one row per SKU in a file'), messages.join('\n'));
  });

  test('a row whose SKU another row of the file creates (same code, other price) is a duplicate too', async () => {
    await refused(
      ['skus', await csv('code,seller,price,currency\nDUP-1,tea-house,100,INR\nDUP-2,tea-house,100,INR\nDUP-1,tea-house,200,INR\n')],
      [
        { line: 2, column: 'code', code: 'invalid_input' },
        { line: 4, column: 'code', code: 'invalid_input' },
      ],
    );
  });

  test('a wrong header (missing, unknown, duplicated columns) is refused on line 1', async () => {
    await refused(['skus', await csv('code,seller,price\nX-1,tea-house,1\n')], [{ line: 1, column: 'currency', code: 'invalid_input' }]);
    const unknown = await refused(
      ['skus', await csv('Code,seller,price,currency,colour\n')],
      [
        { line: 1, column: 'Code', code: 'invalid_input' },
        { line: 1, column: 'colour', code: 'invalid_input' },
        { line: 1, column: 'code', code: 'invalid_input' },
      ],
    );
    assert.match(unknown.details.rows[0]?.message ?? '', /did you mean code\?/);
    await refused(['stock', await csv('sku,qty,qty\nHAPPY-1,1,1\n')], [{ line: 1, column: 'qty', code: 'invalid_input' }]);
    // A stock file given to import skus names what is expected.
    const swapped = await refused(
      ['skus', await csv('sku,qty\nHAPPY-1,1\n')],
      [
        { line: 1, column: 'sku', code: 'invalid_input' },
        { line: 1, column: 'qty', code: 'invalid_input' },
        { line: 1, column: 'code', code: 'invalid_input' },
        { line: 1, column: 'seller', code: 'invalid_input' },
        { line: 1, column: 'price', code: 'invalid_input' },
        { line: 1, column: 'currency', code: 'invalid_input' },
      ],
    );
    assert.match(swapped.message, /6 problems with the file's header/);
  });

  test('an empty file (no header) is refused', async () => {
    for (const content of ['', '\ufeff', '\n\n', '\r\n']) {
      const error = await refused(['stock', await csv(content)], [{ line: 1, column: null, code: 'invalid_input' }]);
      assert.match(error.message, /the file is empty: expected a header line sku,qty\[,reason\]/);
    }
  });

  test('invalid UTF-8, UTF-16 and a NUL are refused with the line and character', async () => {
    const bad = await refused(
      ['stock', await csv(Buffer.concat([Buffer.from('sku,qty\nHAPPY-1,1\nHAPPY-2,1'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]))],
      [{ line: 3, column: null, code: 'invalid_input' }],
    );
    assert.match(bad.message, /invalid UTF-8 at line 3, character 10 \(byte 0xC3\)/);
    const utf16 = await refused(
      ['stock', await csv(Buffer.from('\ufeffsku,qty\nHAPPY-1,1\n', 'utf16le'))],
      [{ line: 1, column: null, code: 'invalid_input' }],
    );
    assert.match(utf16.message, /UTF-16/);
    const nul = await refused(
      ['stock', await csv('sku,qty,reason\nHAPPY-1,1,a\u0000b\n')],
      [{ line: 2, column: null, code: 'invalid_input' }],
    );
    assert.match(nul.message, /NUL character at line 2, character 12/);
  });

  test('a stray quote is refused with its line', async () => {
    await refused(['stock', await csv('sku,qty\nHAPPY-1,1\n"HAPPY-2,1\nHAPPY-3,1\n')], [{ line: 3, column: null, code: 'invalid_input' }]);
    await refused(['stock', await csv('sku,qty\nHAPPY-1,1\nHAP"PY-2,1\n')], [{ line: 3, column: 'sku', code: 'invalid_input' }]);
  });

  test('a 50 MB file is refused before it is read, and so is standard input past the limit', async () => {
    const big = path.join(dir, 'big.csv');
    const handle = await fs.open(big, 'w');
    const chunk = Buffer.from(`sku,qty\n${'HAPPY-1,1\n'.repeat(100_000)}`);
    for (let written = 0; written < 50 * 1024 * 1024; written += chunk.length) await handle.write(chunk);
    await handle.close();
    const error = await refused(['stock', big], [{ line: null, column: null, code: 'invalid_input' }]);
    assert.match(error.message, /larger than 16 MiB, the import limit/);
    assert.equal((error.details as { limit_bytes?: number }).limit_bytes, 16 * 1024 * 1024);

    const before = await footprint(db.pool);
    const child = spawn(process.execPath, [haatBin, 'import', 'stock', '-', '--json'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'silent', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stdin.on('error', () => undefined); // the reader stops at the limit: a broken pipe here is expected
    const code = new Promise<number | null>((resolve) => child.on('close', resolve));
    const closed = new Promise((resolve) => child.once('close', resolve));
    for (let i = 0; i < 40 && child.stdin.writable; i++) {
      if (!child.stdin.write(chunk)) await Promise.race([new Promise((resolve) => child.stdin.once('drain', resolve)), closed]);
    }
    child.stdin.end();
    assert.equal(await code, 2, stdout);
    assert.match(failure(stdout).message, /standard input is larger than 16 MiB/);
    assert.deepEqual(await footprint(db.pool), before);
  });

  test('without --json the rows are listed on stderr, then the error', async () => {
    const result = await cli('import', 'stock', await csv('sku,qty\nHAPPY-1,1.5\nNOPE-2,1\n'));
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^line 2, qty: must be a whole number written with digits 0-9 \(invalid_input\)$/m);
    assert.match(result.stderr, /^line 3, sku: SKU not found: NOPE-2 \(not_found\)$/m);
    assert.match(result.stderr, /^error: 2 invalid rows; nothing was written/m);
  });

  test('a missing file, a folder and --reason without --bypass-maintenance are usage errors', async () => {
    for (const [argv, pattern] of [
      [['stock', path.join(dir, 'no-such.csv')], /no such file/],
      [['stock', dir], /it is a folder/],
      [['stock', await csv('sku,qty\n'), '--reason', 'delivery'], /--reason is only for --bypass-maintenance/],
      [['stock'], /missing argument: file/],
      [['stock', await csv('sku,qty\n'), '--idempotency-key', 'k'.repeat(200)], /at most 184 characters/],
    ] as const) {
      const result = await cli('import', ...argv, '--json');
      assert.equal(result.code, 2, result.stdout);
      assert.match(failure(result.stdout).message, pattern);
    }
  });
});

describe('--dry-run and --skip-invalid', () => {
  test('--dry-run validates against the database and writes nothing', async () => {
    const before = await footprint(db.pool);
    const result = await cli('import', 'stock', await csv('sku,qty\nHAPPY-1,1\nHAPPY-2,2\n'), '--dry-run', '--json');
    assert.equal(result.code, 0, result.stdout);
    const doc = JSON.parse(result.stdout) as Report & { dry_run: boolean };
    assert.deepEqual(
      {
        applied: doc.applied,
        replayed: doc.replayed,
        skipped: doc.skipped,
        dry_run: doc.dry_run,
        to_apply: doc.to_apply,
        to_replay: doc.to_replay,
      },
      { applied: 0, replayed: 0, skipped: 0, dry_run: true, to_apply: 2, to_replay: 0 },
    );
    const invalid = await cli('import', 'stock', await csv('sku,qty\nNOPE-1,1\n'), '--dry-run', '--json');
    assert.equal(invalid.code, 2, 'the exit a real run would have');
    assert.deepEqual(await footprint(db.pool), before);
  });

  test('--skip-invalid writes the valid rows and exits 3 import_incomplete listing the others', async () => {
    const file = await csv('sku,qty\nHAPPY-1,5\nNOPE-1,1\nHAPPY-2,x\nHAPPY-3,5\n');
    const before = { one: await stockOf('HAPPY-1'), three: await stockOf('HAPPY-3'), two: await stockOf('HAPPY-2') };
    const result = await cli('import', 'stock', file, '--skip-invalid', '--json');
    assert.equal(result.code, 3, result.stdout);
    const error = failure(result.stdout);
    assert.equal(error.code, 'import_incomplete');
    assert.deepEqual(
      { applied: error.details.applied, replayed: error.details.replayed, skipped: error.details.skipped },
      {
        applied: 2,
        replayed: 0,
        skipped: 2,
      },
    );
    assert.deepEqual(rowsOf(result.stdout), [
      { line: 3, column: 'sku', code: 'not_found' },
      { line: 4, column: 'qty', code: 'invalid_input' },
    ]);
    assert.equal((await stockOf('HAPPY-1'))?.on_hand, (before.one?.on_hand ?? 0n) + 5n);
    assert.equal((await stockOf('HAPPY-3'))?.on_hand, (before.three?.on_hand ?? 0n) + 5n);
    assert.deepEqual(await stockOf('HAPPY-2'), before.two);

    // The same file again: the applied rows replay, the invalid ones are still listed; nothing changes.
    const snapshot = await footprint(db.pool);
    const again = await cli('import', 'stock', file, '--skip-invalid', '--json');
    assert.equal(again.code, 3);
    assert.deepEqual(
      { applied: failure(again.stdout).details.applied, replayed: failure(again.stdout).details.replayed },
      { applied: 0, replayed: 2 },
    );
    assert.deepEqual(await footprint(db.pool), snapshot);

    // Human output says how to finish the import with a corrected file.
    const human = await cli('import', 'stock', file, '--skip-invalid');
    assert.equal(human.code, 3);
    assert.match(human.stderr, /run it with --idempotency-key [0-9a-f]{64}: rows already applied are not applied again/);
  });

  test('a corrected file with the same --idempotency-key applies only what was not applied, and refuses a changed applied row', async () => {
    const key = 'delivery-2026-12-01';
    const first = await cli(
      'import',
      'stock',
      await csv('sku,qty\nHAPPY-1,1\nHAPPY-2,-1\n'),
      '--skip-invalid',
      '--idempotency-key',
      key,
      '--json',
    );
    assert.equal(first.code, 3, first.stdout);
    const start = { one: (await stockOf('HAPPY-1'))?.on_hand ?? 0n, two: (await stockOf('HAPPY-2'))?.on_hand ?? 0n };
    const corrected = await cli('import', 'stock', await csv('sku,qty\nHAPPY-1,1\nHAPPY-2,1\n'), '--idempotency-key', key, '--json');
    assert.equal(corrected.code, 0, corrected.stdout);
    assert.deepEqual(report(corrected.stdout), { applied: 1, replayed: 1, skipped: 0 });
    assert.equal((await stockOf('HAPPY-1'))?.on_hand, start.one, 'the applied row is not applied again');
    assert.equal((await stockOf('HAPPY-2'))?.on_hand, start.two + 1n);
    const changed = await refused(
      ['stock', await csv('sku,qty\nHAPPY-1,7\nHAPPY-2,1\n'), '--idempotency-key', key],
      [{ line: 2, column: 'sku', code: 'idempotency_conflict' }],
    );
    assert.match(changed.details.rows[0]?.message ?? '', /imported under this idempotency key with other values/);
  });
});

describe('maintenance mode', () => {
  test('refuses an import with exit 5 and writes nothing; --bypass-maintenance --reason applies it, audited per row', async () => {
    assert.equal((await cli('maintenance', 'on', '--reason', 'stocktake', '--yes')).code, 0);
    try {
      const file = await csv('sku,qty\nHAPPY-1,2\nHAPPY-2,2\n');
      const before = await footprint(db.pool);
      const held = await cli('import', 'stock', file, '--json');
      assert.equal(held.code, 5, held.stdout);
      assert.equal(failure(held.stdout).code, 'maintenance_mode');
      assert.deepEqual(await footprint(db.pool), before);
      const noReason = await cli('import', 'stock', file, '--bypass-maintenance', '--json');
      assert.equal(noReason.code, 2);
      const bypassed = await cli('import', 'stock', file, '--bypass-maintenance', '--reason', 'supplier at the door', '--json');
      assert.equal(bypassed.code, 0, bypassed.stdout);
      assert.deepEqual(report(bypassed.stdout), { applied: 2, replayed: 0, skipped: 0 });
      const audits = await db.pool.any(sql.type(z.object({ target: z.string(), reason: z.string(), actor: z.string() }))`
        select target, reason, actor from audit_log where action = 'maintenance.bypass' and target like 'command:import:stock:%' order by target`);
      const prefix = JSON.parse(bypassed.stdout).idempotency_key as string;
      assert.deepEqual(audits, [
        { target: `command:import:stock:${prefix}:HAPPY-1`, reason: 'supplier at the door', actor: 'test' },
        { target: `command:import:stock:${prefix}:HAPPY-2`, reason: 'supplier at the door', actor: 'test' },
      ]);
      // A replay writes nothing, so maintenance does not hold it.
      const replay = await cli('import', 'stock', file, '--json');
      assert.equal(replay.code, 0, replay.stdout);
      assert.deepEqual(report(replay.stdout), { applied: 0, replayed: 2, skipped: 0 });
    } finally {
      assert.equal((await cli('maintenance', 'off', '--reason', 'done', '--yes')).code, 0);
    }
  });
});

describe('an import killed midway', () => {
  test('leaves whole batches only, and the same file again finishes the rest, each row once', async () => {
    const count = 2500;
    const codes = Array.from({ length: count }, (_, i) => `KILL-${String(i).padStart(5, '0')}`);
    const skus = await csv(`code,seller,price,currency\n${codes.map((c) => `${c},tea-house,100,INR`).join('\n')}\n`);
    assert.deepEqual(report((await cli('import', 'skus', skus, '--json')).stdout), { applied: count, replayed: 0, skipped: 0 });
    const qty = (i: number) => (i % 7) + 1;
    const stock = await csv(`sku,qty\n${codes.map((c, i) => `${c},${qty(i)}`).join('\n')}\n`);

    const baseline = await importKeys('stock');
    const child = spawn(process.execPath, [haatBin, 'import', 'stock', stock, '--json'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'silent', ...env },
      stdio: 'ignore',
    });
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    // Killed as soon as its first batch is committed.
    for (let i = 0; i < 6000 && (await importKeys('stock')) === baseline; i++) await sleep(5);
    child.kill('SIGKILL');
    await exited;

    const rows = await db.pool.any(sql.type(z.object({ sku: z.string(), on_hand: z.bigint(), keyed: z.boolean() }))`
      select i.sku, i.on_hand,
             exists (select 1 from idempotency_keys k where k.scope = 'import' and k.key like 'stock:%' and right(k.key, length(i.sku) + 1) = ':' || i.sku) as keyed
      from inventory i where i.sku like 'KILL-%' order by i.sku`);
    const done = rows.filter((r) => r.keyed).length;
    assert.ok(done > 0 && done < count, `killed midway (${done} of ${count} rows were done)`);
    assert.equal(done % 250, 0, 'only whole batches were committed');
    for (const [i, r] of rows.entries()) assert.equal(r.on_hand, r.keyed ? BigInt(qty(i)) : 0n, r.sku);

    const rerun = await cli('import', 'stock', stock, '--json');
    assert.equal(rerun.code, 0, rerun.stdout);
    assert.deepEqual(report(rerun.stdout), { applied: count - done, replayed: done, skipped: 0 });
    const after = await db.pool.any(sql.type(z.object({ on_hand: z.bigint(), movements: z.bigint() }))`
      select i.on_hand, (select count(*) from inventory_movements m where m.sku = i.sku) as movements
      from inventory i where i.sku like 'KILL-%' order by i.sku`);
    assert.deepEqual(
      after,
      codes.map((_, i) => ({ on_hand: BigInt(qty(i)), movements: 1n })),
    );
  });
});

describe('the progress bar', () => {
  test('is drawn on stderr at a terminal: rows, rows/s and time left', async () => {
    const file = await csv(
      `sku,qty\n${Array.from({ length: 300 }, (_, i) => `KILL-${String(i).padStart(5, '0')}`)
        .map((c) => `${c},1`)
        .join('\n')}\n`,
    );
    const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    const child = spawn(
      'script',
      ['-q', '-e', '-c', `${quote(process.execPath)} ${quote(haatBin)} import stock ${quote(file)}`, '/dev/null'],
      {
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          DATABASE_URL: db.url,
          LOG_LEVEL: 'error',
          HAAT_ACTOR: 'pty',
          TERM: 'xterm',
          COLUMNS: '120',
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let screen = '';
    child.stdout.on('data', (chunk: Buffer) => (screen += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, screen);
    assert.match(screen, /import stock .*300\/300 rows \| \d+ rows\/s \| .* left/, screen);
    assert.match(screen, /import stock: 300 applied, 0 replayed, 0 skipped/);
  });
});
