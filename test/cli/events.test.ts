// Every accepted event is visible (docs/contract.md, Events): `haat events list/show` over the real
// intake and the real write path, with state and outcome; an order.placed that cannot become a pending
// order is still an order, rejected with its reason; filters and bad input.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import { applyCommand } from '../../src/commands/apply-command.ts';
import { sql } from '../../src/db/sql.ts';
import { startWorker } from '../../src/worker/run-worker.ts';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { footprint } from '../helpers/footprint.ts';
import { startTestIntake } from '../helpers/intake.ts';
import { mustApply, seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 5 });
await mustApply(db.pool, { type: 'sku.add', payload: { code: 'DOLLAR-TEA', seller: 'tea-house', price: '500', currency: 'USD' } });
for (let i = 1; i <= 10; i++) {
  await mustApply(db.pool, {
    type: 'sku.add',
    payload: { code: `GOLD-${i}`, seller: 'tea-house', price: '1000000000000', currency: 'INR' },
  });
}
const intake = await startTestIntake(db.pool);
const env = { DATABASE_URL: db.url };

const body = (type: string, data: unknown, timestamp = new Date().toISOString()) => JSON.stringify({ type, timestamp, data });
const placed = (ref: string, items: { sku: string; qty: number }[], currency = 'INR') =>
  body('order.placed', { ref, buyer: 'b-42', currency, items });

/** Posts the event (expecting 202) and applies it with the worker's code, as a worker would. */
async function deliver(source: string, id: string, text: string): Promise<void> {
  assert.equal(await intake.send(source, id, text), 202);
  await applyCommand(db.pool, `webhook:${source}`, id, silent);
}

const cli = async (...argv: string[]) => {
  const result = await runCli([...argv, '--json'], { env });
  return { ...result, json: result.stdout ? JSON.parse(result.stdout) : undefined };
};

describe('an accepted order.placed always leaves an order', () => {
  const cases = [
    [
      'unknown_sku',
      'evt-unknown',
      placed('S-UNKNOWN', [
        { sku: 'NO-SUCH-SKU', qty: 1 },
        { sku: 'TEA-1KG', qty: 1 },
      ]),
      'not_found',
    ],
    ['currency_mismatch', 'evt-usd', placed('S-USD', [{ sku: 'TEA-1KG', qty: 1 }], 'USD'), 'currency_mismatch'],
    [
      'currency_mismatch',
      'evt-mixed',
      placed('S-MIXED', [
        { sku: 'TEA-1KG', qty: 1 },
        { sku: 'DOLLAR-TEA', qty: 1 },
      ]),
      'currency_mismatch',
    ],
    [
      'invalid_order',
      'evt-overflow',
      placed(
        'S-OVERFLOW',
        Array.from({ length: 10 }, (_, i) => ({ sku: `GOLD-${i + 1}`, qty: 1_000_000 })),
      ),
      'invalid_input',
    ],
    ['insufficient_stock', 'evt-short', placed('S-SHORT', [{ sku: 'TEA-1KG', qty: 6 }]), 'insufficient_stock'],
  ] as const;

  for (const [reason, id, text, code] of cases) {
    test(`${reason}: recorded rejected (${id}), its event done with outcome ${code}, nothing reserved`, async () => {
      const before = await db.pool.oneFirst(
        sql.type(z.object({ r: z.bigint() }))`select reserved as r from inventory where sku = 'TEA-1KG'`,
      );
      await deliver('storefront', id, text);
      const ref = (JSON.parse(text) as { data: { ref: string } }).data.ref;
      const shown = await cli('order', 'show', ref);
      assert.equal(shown.code, 0, shown.stdout);
      assert.equal(shown.json.state, 'rejected');
      assert.equal(shown.json.reject_reason, reason);
      if (reason === 'insufficient_stock') {
        assert.equal(shown.json.items.length, 1);
        assert.equal(shown.json.requested_items, undefined);
      } else {
        assert.deepEqual(shown.json.items, []);
        assert.equal(shown.json.total.amount, 0);
        const asked = (JSON.parse(text) as { data: { items: { sku: string; qty: number }[] } }).data.items;
        assert.deepEqual(shown.json.requested_items, asked);
      }
      const history = await cli('order', 'history', ref);
      assert.deepEqual(
        history.json.map((t: { from: string | null; to: string }) => [t.from, t.to]),
        [[null, 'rejected']],
      );
      const event = await cli('events', 'show', 'storefront', id);
      assert.equal(event.code, 0, event.stdout);
      assert.equal(event.json.state, 'done');
      assert.equal(event.json.outcome.code, code);
      assert.match(event.json.outcome.message, /recorded as rejected/);
      assert.equal(event.json.order, ref);
      assert.equal(event.json.attempts, 1);
      assert.equal(event.json.last_error, null);
      assert.equal(event.json.body, text, 'the body exactly as received');
      const after = await db.pool.oneFirst(
        sql.type(z.object({ r: z.bigint() }))`select reserved as r from inventory where sku = 'TEA-1KG'`,
      );
      assert.equal(after, before);
    });
  }

  test('a ref already taken leaves no new order: the outcome is conflict, visible in haat events', async () => {
    await deliver('storefront', 'evt-ok', placed('S-TAKEN', [{ sku: 'TEA-1KG', qty: 1 }]));
    const orders = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from orders`);
    await deliver('storefront', 'evt-again', placed('S-TAKEN', [{ sku: 'NO-SUCH-SKU', qty: 1 }]));
    assert.equal(await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from orders`), orders);
    const event = await cli('events', 'show', 'storefront', 'evt-again');
    assert.equal(event.json.outcome.code, 'conflict');
    const original = await cli('order', 'show', 'S-TAKEN');
    assert.equal(original.json.state, 'pending');
  });

  test('the database refuses an unknown reject_reason', async () => {
    await assert.rejects(
      db.pool.query(
        sql.unsafe`insert into orders (ref, buyer, currency, state, total_amount, reject_reason) values ('S-BAD', 'b', 'INR', 'rejected', 0, 'because')`,
      ),
      (error: { constraint?: string }) => error.constraint === 'orders_reject_reason_known',
    );
  });
});

describe('haat events', () => {
  test('queued, then held by maintenance mode, then done: the state follows the event', async () => {
    assert.equal(await intake.send('storefront', 'evt-wait', placed('S-WAIT', [{ sku: 'TEA-1KG', qty: 1 }])), 202);
    let event = await cli('events', 'show', 'storefront', 'evt-wait');
    assert.equal(event.json.state, 'queued');
    assert.equal(event.json.outcome, null);
    assert.equal(event.json.attempts, 0);
    assert.equal(event.json.order, 'S-WAIT');
    assert.equal((await runCli(['maintenance', 'on', '--reason', 'test', '--yes'], { env })).code, 0);
    event = await cli('events', 'show', 'storefront', 'evt-wait');
    assert.equal(event.json.state, 'held');
    assert.equal((await runCli(['maintenance', 'off', '--reason', 'test'], { env })).code, 0);
    await applyCommand(db.pool, 'webhook:storefront', 'evt-wait', silent);
    event = await cli('events', 'show', 'storefront', 'evt-wait');
    assert.equal(event.json.state, 'done');
    assert.equal(event.json.outcome.code, 'applied');
    assert.equal(event.json.outcome.message, 'order S-WAIT is pending');
  });

  test('an early payment is retrying (with its last error) under a real worker, then done on a later attempt', async () => {
    const worker = await startWorker({ url: db.url, pool: db.pool, log: silent, concurrency: 1, pollIntervalMs: 100 });
    after(() => worker.stop());
    const early = body('payment.captured', { order_ref: 'S-LATER', payment_ref: 'pay-later', amount: 12999, currency: 'INR' });
    assert.equal(await intake.send('payments', 'evt-early', early), 202);
    let event: { json: { state: string; attempts: number; last_error: string | null; outcome: { code: string } | null } };
    for (let i = 0; ; i++) {
      assert.ok(i < 600, 'the early payment was attempted within 30 s');
      event = await cli('events', 'show', 'payments', 'evt-early');
      if (event.json.state === 'retrying') break;
      assert.equal(event.json.state, 'queued');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(event.json.attempts, 1);
    assert.match(event.json.last_error ?? '', /not found yet/);
    await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b', ref: 'S-LATER', items: [{ sku: 'TEA-1KG', qty: '1' }] } });
    for (let i = 0; ; i++) {
      assert.ok(i < 600, 'the early payment was applied within 60 s of its order');
      event = await cli('events', 'show', 'payments', 'evt-early');
      if (event.json.state === 'done') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(event.json.outcome?.code, 'applied');
    assert.ok(event.json.attempts >= 2, 'the attempt that applied it is a later one');
    assert.equal(event.json.last_error, null);
    await worker.stop();
  });

  test('list: newest first, each filter narrows, --limit caps', async () => {
    const all = await cli('events', 'list', '--limit', '1000');
    assert.equal(all.code, 0);
    const received = all.json.map((e: { received_at: string }) => e.received_at);
    assert.deepEqual(received, [...received].sort().reverse());
    for (const e of all.json)
      assert.deepEqual(Object.keys(e).sort(), [
        'attempts',
        'id',
        'last_error',
        'order',
        'outcome',
        'received_at',
        'source',
        'state',
        'type',
      ]);
    const bySource = await cli('events', 'list', '--source', 'payments');
    assert.deepEqual(
      bySource.json.map((e: { id: string }) => e.id),
      ['evt-early'],
    );
    const byType = await cli('events', 'list', '--type', 'order.placed');
    assert.ok(byType.json.length >= 8 && byType.json.every((e: { type: string }) => e.type === 'order.placed'));
    const byOutcome = await cli('events', 'list', '--outcome', 'currency_mismatch');
    assert.deepEqual(byOutcome.json.map((e: { id: string }) => e.id).sort(), ['evt-mixed', 'evt-usd']);
    const applied = await cli('events', 'list', '--outcome', 'applied');
    assert.ok(applied.json.every((e: { outcome: { code: string } }) => e.outcome.code === 'applied'));
    const done = await cli('events', 'list', '--state', 'done');
    assert.equal(done.json.length, all.json.length);
    assert.deepEqual((await cli('events', 'list', '--state', 'queued')).json, []);
    const latest = all.json[0].received_at as string;
    const since = await cli('events', 'list', '--since', latest);
    assert.ok(since.json.length >= 1 && since.json.every((e: { received_at: string }) => e.received_at >= latest));
    assert.deepEqual((await cli('events', 'list', '--since', '2999-01-01T00:00:00+05:30')).json, []);
    assert.equal((await cli('events', 'list', '--limit', '2')).json.length, 2);
    const defaultLimit = await cli('events', 'list');
    assert.equal(defaultLimit.json.length, Math.min(50, all.json.length));
  });

  test('human output: a table with times in the operator zone', async () => {
    const list = await spawnCli(['events', 'list', '--limit', '3'], { env: { ...env, TZ: 'Asia/Kolkata' } });
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^RECEIVED\s+SOURCE\s+ID\s+TYPE\s+STATE\s+OUTCOME/);
    assert.match(list.stdout, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d IST/);
    const show = await spawnCli(['events', 'show', 'storefront', 'evt-unknown'], { env: { ...env, TZ: 'UTC' } });
    assert.match(show.stdout, /outcome:\s+not_found: SKU not found: NO-SUCH-SKU/);
    assert.match(show.stdout, /received:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    const order = await runCli(['order', 'show', 'S-UNKNOWN'], { env });
    assert.match(order.stdout, /state:\s+rejected \(unknown_sku\)/);
    assert.match(order.stdout, /NO-SUCH-SKU\s+1/);
  });

  test('bad input is refused with exit 2 (or 4 for an unknown event) and changes nothing', async () => {
    const before = await footprint(db.pool);
    const cases: [string[], number, string][] = [
      [['events', 'list', '--source', 'bank'], 2, 'invalid_input'],
      [['events', 'list', '--type', 'order.exploded'], 2, 'invalid_input'],
      [['events', 'list', '--outcome', 'sort_of'], 2, 'invalid_input'],
      [['events', 'list', '--state', 'lost'], 2, 'invalid_input'],
      [['events', 'list', '--since', 'yesterday'], 2, 'invalid_input'],
      [['events', 'list', '--since', '2026-12-01T10:00:00'], 2, 'invalid_input'],
      [['events', 'list', '--limit', '0'], 2, 'invalid_input'],
      [['events', 'list', '--limit', '1001'], 2, 'invalid_input'],
      [['events', 'list', '--limit', '1e3'], 2, 'invalid_input'],
      [['events', 'show', 'storefront'], 2, 'invalid_input'],
      [['events', 'show', 'bank', 'evt-usd'], 2, 'invalid_input'],
      [['events', 'show', 'storefront', 'evt\u0007'], 2, 'invalid_input'],
      [['events', 'show', 'storefront', 'evt-never'], 4, 'not_found'],
      [['events', 'show', 'payments', 'evt-usd'], 4, 'not_found'],
    ];
    for (const [argv, exit, code] of cases) {
      const result = await cli(...argv);
      assert.equal(result.code, exit, `${argv.join(' ')}: ${result.stdout}`);
      assert.equal(result.json.error.code, code, argv.join(' '));
    }
    assert.deepEqual(await footprint(db.pool), before);
  });
});
