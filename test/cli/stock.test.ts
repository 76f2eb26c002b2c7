// Catalog and stock through the real CLI: outcomes, exit codes, tables and JSON (bad input: test/bad-inputs/).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from '../../src/db/sql.ts';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';

const db = await createTestDatabase();
const env = { DATABASE_URL: db.url, HAAT_WAIT_FOR_WORKER_MS: '0' };
const cli = (...argv: string[]) => runCli(argv, { env });

function errorCode(stdout: string): string {
  return (JSON.parse(stdout) as { error: { code: string } }).error.code;
}

describe('catalog', () => {
  test('creates a seller and a SKU with 0 on hand', async () => {
    const seller = await cli('seller', 'add', 'tea-house', '--name', 'Tea House', '--json');
    assert.equal(seller.code, 0, seller.stdout + seller.stderr);
    assert.equal(JSON.parse(seller.stdout).handle, 'tea-house');
    assert.match(seller.stderr, /^idempotency key: cli-/m, 'the generated key is printed');
    // Indic names keep their zero-width joiners (only control and text-direction characters are refused).
    const assamese = await cli('seller', 'add', 'assam-cha', '--name', 'অসম\u200Cৰ চাহ\u200D', '--json');
    assert.equal(assamese.code, 0, assamese.stdout);
    assert.equal(JSON.parse(assamese.stdout).name, 'অসম\u200Cৰ চাহ\u200D');
    const sku = await cli(
      'sku',
      'add',
      'TEA-1KG',
      '--seller',
      'tea-house',
      '--price',
      '12999',
      '--currency',
      'INR',
      '--title',
      'Assam 1kg',
      '--json',
    );
    assert.equal(sku.code, 0, sku.stdout);
    assert.deepEqual(JSON.parse(sku.stdout), {
      code: 'TEA-1KG',
      seller: 'tea-house',
      title: 'Assam 1kg',
      price: { amount: 12999, currency: 'INR' },
      stock: { sku: 'TEA-1KG', on_hand: 0, reserved: 0, available: 0 },
    });
    const human = await cli('sku', 'add', 'RICE-5KG', '--seller', 'tea-house', '--price', '123456789', '--currency', 'INR');
    assert.equal(human.code, 0);
    assert.match(human.stdout, /₹12,34,567\.89/);
  });
});

describe('stock', () => {
  test('receive, adjust, show (a table, and the stock JSON) and list', async () => {
    assert.equal((await cli('stock', 'receive', 'TEA-1KG', '10', '--reason', 'delivery')).code, 0);
    const adjusted = await cli('stock', 'adjust', 'TEA-1KG', '-3', '--reason', 'count', '--json');
    assert.equal(adjusted.code, 0, adjusted.stdout);
    assert.deepEqual(JSON.parse(adjusted.stdout), { sku: 'TEA-1KG', on_hand: 7, reserved: 0, available: 7 });
    const shown = await cli('stock', 'show', 'TEA-1KG');
    assert.equal(shown.code, 0);
    assert.equal(shown.stdout, 'SKU      ON HAND  RESERVED  AVAILABLE\nTEA-1KG  7        0         7\n');
    const json = await cli('stock', 'show', 'TEA-1KG', '--json');
    assert.deepEqual(JSON.parse(json.stdout), { sku: 'TEA-1KG', on_hand: 7, reserved: 0, available: 7 });
    const list = await cli('stock', 'list', '--json');
    assert.deepEqual(
      JSON.parse(list.stdout).map((s: { sku: string }) => s.sku),
      ['RICE-5KG', 'TEA-1KG'],
    );
  });

  test('replaying stock receive with one key adds once and exits 0; another quantity exits 3', async () => {
    const first = await cli('stock', 'receive', 'RICE-5KG', '5', '--idempotency-key', 'delivery-42', '--json');
    const again = await cli('stock', 'receive', 'RICE-5KG', '5', '--idempotency-key', 'delivery-42', '--json');
    assert.equal(first.code, 0);
    assert.equal(again.code, 0);
    assert.deepEqual(JSON.parse(again.stdout), JSON.parse(first.stdout));
    assert.equal(again.stderr, '', 'a given key is not printed again');
    const other = await cli('stock', 'receive', 'RICE-5KG', '6', '--idempotency-key', 'delivery-42', '--json');
    assert.equal(other.code, 3);
    assert.equal(errorCode(other.stdout), 'idempotency_conflict');
    assert.equal(JSON.parse((await cli('stock', 'show', 'RICE-5KG', '--json')).stdout).on_hand, 5);
  });

  test('adjusting below what is reserved is a conflict (exit 3) and changes nothing', async () => {
    await db.pool.query(sql.unsafe`update inventory set reserved = 6 where sku = 'TEA-1KG'`);
    await db.pool.query(sql.unsafe`insert into reservations (holder, sku, qty) values ('o-1', 'TEA-1KG', 6)`);
    await db.pool.query(
      sql.unsafe`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta) values ('TEA-1KG', 'reserve', 0, 6)`,
    );
    const result = await cli('stock', 'adjust', 'TEA-1KG', '-2', '--reason', 'count', '--json');
    assert.equal(result.code, 3);
    assert.equal(errorCode(result.stdout), 'conflict');
    assert.equal(JSON.parse((await cli('stock', 'show', 'TEA-1KG', '--json')).stdout).on_hand, 7);
  });

  test('a missing argument with no terminal exits 2 at once and names it', async () => {
    const result = await spawnCli(['stock', 'receive', 'TEA-1KG', '--json'], { env });
    assert.equal(result.code, 2);
    const doc = JSON.parse(result.stdout) as { error: { code: string; details: { missing: string } } };
    assert.equal(doc.error.code, 'invalid_input');
    assert.equal(doc.error.details.missing, 'qty');
    const reason = await runCli(['stock', 'adjust', 'TEA-1KG', '1'], { env });
    assert.equal(reason.code, 2);
    assert.match(reason.stderr, /missing argument: reason/);
  });

  test('--no-wait prints the key and returns; the outcome is there once applied', async () => {
    const queued = await cli('stock', 'receive', 'TEA-1KG', '1', '--idempotency-key', 'later-1', '--no-wait', '--json');
    assert.equal(queued.code, 0);
    assert.deepEqual(JSON.parse(queued.stdout), { idempotency_key: 'later-1', state: 'queued' });
    const human = await cli('stock', 'receive', 'TEA-1KG', '1', '--idempotency-key', 'later-2', '--no-wait');
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^queued: run the same command with --idempotency-key later-2/);
    const replay = await cli('stock', 'receive', 'TEA-1KG', '1', '--idempotency-key', 'later-1', '--json');
    assert.equal(replay.code, 0);
    assert.equal(JSON.parse(replay.stdout).on_hand, 8);
    const second = await cli('stock', 'receive', 'TEA-1KG', '1', '--idempotency-key', 'later-2', '--json');
    assert.equal(JSON.parse(second.stdout).on_hand, 9);
  });
});
