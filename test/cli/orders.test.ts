// Orders through the real CLI: JSON shapes, exit codes, history with actors and reasons.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { sql } from '../../src/db/sql.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 5, 'RICE-5KG': 5 });
const env = { DATABASE_URL: db.url, HAAT_WAIT_FOR_WORKER_MS: '0' };
const cli = (...argv: string[]) => runCli(argv, { env });
const asActor = (actor: string, ...argv: string[]) => runCli(argv, { env: { ...env, HAAT_ACTOR: actor } });
const json = (stdout: string) => JSON.parse(stdout);

describe('haat order', () => {
  test('places an order with the order JSON shape, prices from the catalog', async () => {
    const placed = await cli(
      'order',
      'place',
      '--buyer',
      'b-42',
      '--item',
      'TEA-1KG:2',
      '--item',
      'RICE-5KG:1',
      '--item',
      'TEA-1KG:1',
      '--ref',
      'S-1001',
      '--json',
    );
    assert.equal(placed.code, 0, placed.stdout);
    const order = json(placed.stdout);
    assert.match(order.id, /^[0-9a-f-]{36}$/);
    assert.equal(order.ref, 'S-1001');
    assert.equal(order.state, 'pending');
    assert.equal(order.buyer, 'b-42');
    assert.equal(order.currency, 'INR');
    const none = { cancelled: 0, shipped: 0, delivered: 0, rto: 0, returned: 0 };
    assert.deepEqual(order.items, [
      { sku: 'RICE-5KG', qty: 1, unit_price: { amount: 12999, currency: 'INR' }, total: { amount: 12999, currency: 'INR' }, ...none },
      { sku: 'TEA-1KG', qty: 3, unit_price: { amount: 12999, currency: 'INR' }, total: { amount: 38997, currency: 'INR' }, ...none },
    ]);
    assert.deepEqual(order.total, { amount: 51996, currency: 'INR' });
    assert.equal(order.payment_method, 'prepaid');
    assert.deepEqual(order.refunded, { amount: 0, currency: 'INR' });
    assert.deepEqual([order.shipments, order.returns], [[], []]);
    assert.ok(Date.parse(order.expires_at) > Date.now());
    assert.deepEqual(json((await cli('order', 'show', order.id, '--json')).stdout), order, 'found by id');
    assert.deepEqual(json((await cli('order', 'show', 'S-1001', '--json')).stdout), order, 'found by ref');
  });

  test('too little stock records the order rejected and exits 3 with the order in details', async () => {
    const result = await cli('order', 'place', '--buyer', 'b-1', '--item', 'TEA-1KG:99', '--ref', 'S-1002', '--json');
    assert.equal(result.code, 3);
    const error = json(result.stdout).error;
    assert.equal(error.code, 'insufficient_stock');
    assert.equal(error.details.order.ref, 'S-1002');
    assert.equal(error.details.order.state, 'rejected');
    assert.equal(error.details.order.expires_at, null);
    assert.equal(json((await cli('order', 'show', 'S-1002', '--json')).stdout).state, 'rejected');
    const rejected = json((await cli('order', 'list', '--state', 'rejected', '--json')).stdout);
    assert.deepEqual(
      rejected.map((o: { ref: string }) => o.ref),
      ['S-1002'],
    );
  });

  test('bad order input is exit 2 (or 4 for an unknown SKU) and writes nothing', async () => {
    const count = () =>
      db.pool.oneFirst(
        sql.type(z.object({ n: z.bigint() }))`select (select count(*) from orders) + (select count(*) from idempotency_keys) as n`,
      );
    const before = await count();
    const items101 = Array.from({ length: 101 }, (_, i) => ['--item', `SKU${i}:1`]).flat();
    for (const [argv, exit] of [
      [['--item', 'TEA-1KG'], 2],
      [['--item', 'TEA-1KG:0'], 2],
      [['--item', 'TEA-1KG:1.5'], 2],
      [['--item', 'tea-1kg:1'], 2],
      [['--item', ':1'], 2],
      [items101, 2],
      [['--item', 'NOPE:1'], 4],
    ] as const) {
      const result = await cli('order', 'place', '--buyer', 'b-1', ...argv, '--json');
      assert.equal(result.code, exit, `${argv.slice(0, 2).join(' ')} → ${result.stdout}`);
    }
    assert.equal((await cli('order', 'place', '--item', 'TEA-1KG:1', '--json')).code, 2, 'missing --buyer');
    assert.equal((await cli('order', 'show', 'NOPE-404', '--json')).code, 4);
    assert.equal((await cli('order', 'list', '--state', 'lost', '--json')).code, 2);
    assert.equal(await count(), before);
  });

  test('moves through its states; a disallowed move exits 3; history shows actors and reasons, oldest first', async () => {
    assert.equal(
      (await cli('order', 'confirm', 'S-1001', '--payment-ref', 'pay_0', '--amount', '51995', '--json')).code,
      3,
      'amount_mismatch',
    );
    assert.equal((await asActor('asha', 'order', 'confirm', 'S-1001', '--payment-ref', 'pay_1', '--amount', '51996')).code, 0);
    const early = await cli('order', 'deliver', 'S-1001', '--json');
    assert.equal(early.code, 3);
    assert.equal(json(early.stdout).error.code, 'transition_not_allowed');
    assert.equal((await asActor('bikash', 'order', 'ship', 'S-1001', '--tracking', 'AWB123')).code, 0);
    assert.equal((await cli('order', 'deliver', 'S-1001')).code, 0);
    assert.equal((await asActor('asha', 'order', 'refund', 'S-1001', '--reason', 'damaged in transit')).code, 0);
    assert.equal((await cli('order', 'refund', 'S-1001', '--reason', 'again', '--json')).code, 3);
    const history = json((await cli('order', 'history', 'S-1001', '--json')).stdout);
    assert.deepEqual(
      history.map((t: { from: string | null; to: string; actor: string; reason: string | null }) => [t.from, t.to, t.actor, t.reason]),
      [
        [null, 'pending', 'test', null],
        ['pending', 'confirmed', 'asha', 'payment pay_1'],
        ['confirmed', 'shipped', 'bikash', 'tracking AWB123'],
        ['shipped', 'delivered', 'test', null],
        ['delivered', 'refunded', 'asha', 'damaged in transit'],
      ],
    );
    for (const t of history) assert.ok(Date.parse(t.at) > 0);
  });

  test('cancel needs a reason; reservations list and expire', async () => {
    assert.equal((await cli('order', 'place', '--buyer', 'b-2', '--item', 'RICE-5KG:2', '--ref', 'S-1003')).code, 0);
    assert.equal((await cli('order', 'cancel', 'S-1003')).code, 2, 'no --reason');
    const active = json((await cli('reservations', 'list', '--state', 'active', '--json')).stdout);
    assert.deepEqual(
      active.map((r: { order_ref: string; sku: string; qty: number }) => [r.order_ref, r.sku, r.qty]),
      [['S-1003', 'RICE-5KG', 2]],
    );
    await db.pool.query(sql.unsafe`update orders set expires_at = now() - interval '1 second' where ref = 'S-1003'`);
    const swept = await cli('reservations', 'expire', '--json');
    assert.deepEqual(json(swept.stdout), { expired: ['S-1003'] });
    assert.deepEqual(json((await cli('reservations', 'expire', '--json')).stdout), { expired: [] }, 'twice in a row is safe');
    assert.equal(json((await cli('order', 'show', 'S-1003', '--json')).stdout).state, 'expired');
    assert.equal((await cli('order', 'cancel', 'S-1003', '--reason', 'too late', '--json')).code, 3);
  });

  test('payments unapplied lists what could not be applied; ledger balances nets to zero after a refund', async () => {
    const unapplied = json((await cli('payments', 'unapplied', '--json')).stdout);
    assert.deepEqual(
      unapplied.map((p: { payment_ref: string; order_ref: string; amount: unknown; reason: string }) => [
        p.payment_ref,
        p.order_ref,
        p.amount,
        p.reason,
      ]),
      [['pay_0', 'S-1001', { amount: 51995, currency: 'INR' }, 'amount_mismatch']],
    );
    const ledger = json((await cli('ledger', 'balances', '--order', 'S-1001', '--json')).stdout);
    assert.deepEqual(
      ledger.map((b: { account: string; balance: { amount: number } }) => [b.account, b.balance.amount]),
      [
        ['platform_commission', 0],
        ['psp_clearing', 0],
        ['seller_payable:tea-house', 0],
      ],
      'refunded: every account back to zero',
    );
    assert.equal((await cli('ledger', 'balances', '--order', 'NOPE-1', '--json')).code, 4);
    const human = await cli('ledger', 'balances');
    assert.equal(human.code, 0);
    assert.match(human.stdout, /^ACCOUNT\s+BALANCE/);
  });
});
