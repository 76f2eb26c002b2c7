// The webhook intake over real HTTP: signatures made by the standardwebhooks library's own signer,
// every response status of docs/contract.md (Webhook intake), duplicates, and events applied by the
// write path.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { applyCommand } from '../../src/commands/apply-command.ts';
import { findOrder } from '../../src/db/orders.ts';
import { createDatabasePool } from '../../src/db/pool.ts';
import { sql } from '../../src/db/sql.ts';
import { newSecret } from '../../src/intake/secrets.ts';
import { startIntake } from '../../src/intake/server.ts';
import { signedHeaders } from '../../src/intake/sign.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { databaseProxy } from '../helpers/proxy.ts';
import { mustApply, seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 10 });
const secret = newSecret();
const rotated = newSecret();
const secrets = { storefront: [secret, rotated], payments: [secret], logistics: [secret] };
const intake = await startIntake({ pool: db.pool, log: silent, expectedMigration: undefined, secrets, port: 0, host: '127.0.0.1' });
const { after } = await import('node:test');
after(() => intake.close());

let ids = 0;
type SendOptions = {
  id?: string;
  secret?: string;
  timestamp?: Date;
  signature?: string;
  body?: string;
  source?: string;
  contentType?: string;
  drop?: string[];
};

function event(type: string, data: unknown): string {
  return JSON.stringify({ type, timestamp: new Date().toISOString(), data });
}

async function send(body: string, options: SendOptions = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const id = options.id ?? `evt_${++ids}`;
  const at = options.timestamp ?? new Date();
  const headers: Record<string, string> = { ...signedHeaders(options.secret ?? secret, id, body, at) };
  if (options.contentType) headers['content-type'] = options.contentType;
  if (options.signature) headers['webhook-signature'] = options.signature;
  for (const name of options.drop ?? []) delete headers[name];
  const response = await fetch(`${intake.url}/webhooks/${options.source ?? 'storefront'}`, {
    method: 'POST',
    headers,
    body: options.body ?? body,
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

const placed = (ref: string, qty: number | string = 1) =>
  event('order.placed', { ref, buyer: 'b-42', currency: 'INR', items: [{ sku: 'TEA-1KG', qty }] });
const inbox = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from webhook_events`);

describe('signatures', () => {
  test('a request signed by the standardwebhooks signer is accepted, with any of the rotated secrets', async () => {
    assert.deepEqual(await send(placed('W-1'), { id: 'evt_ok' }), { status: 202, json: { accepted: true, id: 'evt_ok' } });
    assert.equal((await send(placed('W-2'), { secret: rotated })).status, 202);
  });

  test('wrong secret, tampered or re-serialised body, stale or future timestamp, bad signatures → 401; nothing stored', async () => {
    const before = await inbox();
    const body = placed('W-bad');
    const now = Date.now();
    const cases: [string, SendOptions][] = [
      ['wrong secret', { secret: newSecret() }],
      ['tampered body', { body: body.replace('b-42', 'b-43') }],
      ['re-serialised body', { body: JSON.stringify(JSON.parse(body), null, 1) }],
      ['stale timestamp', { timestamp: new Date(now - 6 * 60_000) }],
      ['future timestamp', { timestamp: new Date(now + 6 * 60_000) }],
      ['malformed signature', { signature: 'v1,not-base64!' }],
      ['wrong-length signature', { signature: 'v1,c2hvcnQ=' }],
      ['unknown version', { signature: new Webhook(secret).sign('evt_x', new Date(), body).replace('v1,', 'v2,') }],
      ['missing signature', { drop: ['webhook-signature'] }],
    ];
    for (const [name, options] of cases) {
      const reply = await send(body, options);
      assert.equal(reply.status, 401, name);
      assert.equal((reply.json.error as { code: string }).code, 'unauthorized', name);
    }
    const notANumber = await fetch(`${intake.url}/webhooks/storefront`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': 'evt_nan', 'webhook-timestamp': 'soon', 'webhook-signature': 'v1,AAAA' },
      body,
    });
    assert.equal(notANumber.status, 401);
    assert.equal((await send(body, { drop: ['webhook-id'] })).status, 400);
    assert.equal(await inbox(), before);
  });
});

describe('statuses', () => {
  test('404 unknown source, 405 not POST, 415 not JSON, 413 too large, 400 not JSON or not the schema', async () => {
    assert.equal((await send(placed('W-3'), { source: 'warehouse' })).status, 404);
    assert.equal((await fetch(`${intake.url}/webhooks/storefront`)).status, 405);
    assert.equal((await send(placed('W-3'), { contentType: 'text/plain' })).status, 415);
    const big = event('order.placed', { ref: 'W-big', buyer: 'x'.repeat(300 * 1024), currency: 'INR', items: [] });
    assert.equal((await send(big)).status, 413);
    for (const [name, body, source] of [
      ['not JSON', '{"type":', 'storefront'],
      ['unknown type', event('order.teleported', {}), 'storefront'],
      [
        'type from another source',
        event('payment.captured', { order_ref: 'W-1', payment_ref: 'p', amount: 1, currency: 'INR' }),
        'storefront',
      ],
      ['float quantity', placed('W-4', 1.5), 'storefront'],
      ['string quantity', placed('W-4', '1'), 'storefront'],
      ['float amount', event('payment.captured', { order_ref: 'W-1', payment_ref: 'p', amount: 10.5, currency: 'INR' }), 'payments'],
      ['extra field', event('shipment.delivered', { order_ref: 'W-1', price: 1 }), 'logistics'],
      [
        'lower-case SKU',
        event('order.placed', { ref: 'W-5', buyer: 'b', currency: 'INR', items: [{ sku: 'tea-1kg', qty: 1 }] }),
        'storefront',
      ],
    ] as const) {
      const reply = await send(body, { source });
      assert.equal(reply.status, 400, `${name}: ${JSON.stringify(reply.json)}`);
    }
  });

  test('the same id and body again is 200 duplicate; the same id with another body is 409 and the original is kept', async () => {
    const body = placed('W-dup');
    assert.equal((await send(body, { id: 'evt_dup' })).status, 202);
    assert.deepEqual(await send(body, { id: 'evt_dup' }), { status: 200, json: { duplicate: true, id: 'evt_dup' } });
    assert.equal((await send(placed('W-dup', 2), { id: 'evt_dup' })).status, 409);
    const stored = await db.pool.oneFirst(
      sql.type(z.object({ body: z.string() }))`select body from webhook_events where webhook_id = 'evt_dup'`,
    );
    assert.equal(stored, body);
  });

  test('the same event posted 5 times at once: exactly one 202, the rest 200 duplicate, one stored command', async () => {
    const body = placed('W-five');
    const replies = await Promise.all([1, 2, 3, 4, 5].map(() => send(body, { id: 'evt_five' })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 200, 200, 202]);
    const keys = await db.pool.oneFirst(
      sql.type(z.object({ n: z.bigint() }))`select count(*) as n from idempotency_keys where key = 'evt_five'`,
    );
    assert.equal(keys, 1n);
  });

  test('503 while the database is unreachable, and the sender can retry after', async () => {
    const proxy = await databaseProxy(new URL(db.url));
    const pool = await createDatabasePool(proxy.url(), { connectionTimeoutMs: 1_000 });
    const cut = await startIntake({ pool, log: silent, expectedMigration: undefined, secrets, port: 0, host: '127.0.0.1' });
    try {
      await proxy.down();
      const id = 'evt_503';
      const body = placed('W-503');
      const headers = signedHeaders(secret, id, body);
      const down = await fetch(`${cut.url}/webhooks/storefront`, { method: 'POST', headers, body });
      assert.equal(down.status, 503);
      assert.equal(((await down.json()) as { error: { code: string } }).error.code, 'database_unavailable');
      assert.equal(
        await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from webhook_events where webhook_id = ${id}`),
        0n,
      );
    } finally {
      await cut.close();
      await pool.end();
      await proxy.down();
    }
  });
});

describe('events become commands', () => {
  test('order.placed, payment.captured, shipment.dispatched and shipment.delivered move an order, through the write path', async () => {
    const run = async (source: string, body: string, id: string) => {
      assert.equal((await send(body, { source, id })).status, 202);
      return applyCommand(db.pool, `webhook:${source}`, id, silent);
    };
    assert.equal((await run('storefront', placed('W-flow', 2), 'evt_flow_1'))?.ok, true);
    const order = await findOrder(db.pool, 'W-flow');
    assert.equal(order?.state, 'pending');
    const short = await run(
      'payments',
      event('payment.captured', { order_ref: 'W-flow', payment_ref: 'pay_short', amount: 1, currency: 'INR' }),
      'evt_flow_2',
    );
    assert.equal(short?.ok === false && short.error.code, 'amount_mismatch');
    const paid = await run(
      'payments',
      event('payment.captured', { order_ref: 'W-flow', payment_ref: 'pay_ok', amount: Number(order?.total_amount), currency: 'INR' }),
      'evt_flow_3',
    );
    assert.equal(paid?.ok, true);
    assert.equal(
      (await run('logistics', event('shipment.dispatched', { order_ref: 'W-flow', tracking: 'AWB123' }), 'evt_flow_4'))?.ok,
      true,
    );
    assert.equal((await run('logistics', event('shipment.delivered', { order_ref: 'W-flow' }), 'evt_flow_5'))?.ok, true);
    assert.equal((await findOrder(db.pool, 'W-flow'))?.state, 'delivered');
    const unapplied = await db.pool.anyFirst(
      sql.type(z.object({ payment_ref: z.string() }))`select payment_ref from payments where state = 'unapplied'`,
    );
    assert.deepEqual(unapplied, ['pay_short']);
  });

  test('payment.failed cancels a pending order; an order.placed in another currency is refused as its outcome', async () => {
    assert.equal((await send(placed('W-fail'), { id: 'evt_fail_1' })).status, 202);
    await applyCommand(db.pool, 'webhook:storefront', 'evt_fail_1', silent);
    assert.equal(
      (
        await send(event('payment.failed', { order_ref: 'W-fail', payment_ref: 'pay_x', reason: 'card_declined' }), {
          source: 'payments',
          id: 'evt_fail_2',
        })
      ).status,
      202,
    );
    const cancelled = await applyCommand(db.pool, 'webhook:payments', 'evt_fail_2', silent);
    assert.equal(cancelled?.ok, true);
    assert.equal((await findOrder(db.pool, 'W-fail'))?.state, 'cancelled');
    const usd = event('order.placed', { ref: 'W-usd', buyer: 'b', currency: 'USD', items: [{ sku: 'TEA-1KG', qty: 1 }] });
    assert.equal((await send(usd, { id: 'evt_usd' })).status, 202);
    const outcome = await applyCommand(db.pool, 'webhook:storefront', 'evt_usd', silent);
    assert.equal(outcome?.ok === false && outcome.error.code, 'currency_mismatch');
  });
});

describe('payment.failed for a paid order', () => {
  test('is refused (transition_not_allowed): the order stays confirmed, its stock and ledger untouched', async () => {
    await mustApply(db.pool, { type: 'stock.receive', payload: { sku: 'TEA-1KG', qty: '1' } });
    assert.equal((await send(placed('W-paid'), { id: 'evt_paid_1' })).status, 202);
    await applyCommand(db.pool, 'webhook:storefront', 'evt_paid_1', silent);
    const pay = event('payment.captured', { order_ref: 'W-paid', payment_ref: 'pay_w_paid', amount: 12999, currency: 'INR' });
    assert.equal((await send(pay, { source: 'payments', id: 'evt_paid_2' })).status, 202);
    const captured = await applyCommand(db.pool, 'webhook:payments', 'evt_paid_2', silent);
    assert.equal(
      captured?.ok,
      true,
      JSON.stringify(captured, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
    );
    const ledger = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from postings`);
    const postings = await ledger();
    const onHand = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = 'TEA-1KG'`);
    const stock = await onHand();
    const failed = event('payment.failed', { order_ref: 'W-paid', payment_ref: 'pay_other', reason: 'card_declined' });
    assert.equal((await send(failed, { source: 'payments', id: 'evt_paid_3' })).status, 202);
    const outcome = await applyCommand(db.pool, 'webhook:payments', 'evt_paid_3', silent);
    assert.equal(outcome?.ok === false && outcome.error.code, 'transition_not_allowed');
    assert.equal((await findOrder(db.pool, 'W-paid'))?.state, 'confirmed');
    assert.equal(await ledger(), postings);
    assert.equal(await onHand(), stock);
  });
});

describe('out-of-order delivery', () => {
  test('a payment before its order waits (the job is retried) and applies once the order exists', async () => {
    const { RetryLater } = await import('../../src/commands/apply-command.ts');
    const pay = event('payment.captured', { order_ref: 'W-late', payment_ref: 'pay_early', amount: 12999, currency: 'INR' });
    assert.equal((await send(pay, { source: 'payments', id: 'evt_early_pay' })).status, 202);
    await assert.rejects(applyCommand(db.pool, 'webhook:payments', 'evt_early_pay', silent), RetryLater);
    const pending = await db.pool.oneFirst(
      sql.type(z.object({ state: z.string() }))`select state from idempotency_keys where key = 'evt_early_pay'`,
    );
    assert.equal(pending, 'pending', 'nothing recorded yet');
    assert.equal((await send(placed('W-late'), { id: 'evt_late_order' })).status, 202);
    await applyCommand(db.pool, 'webhook:storefront', 'evt_late_order', silent);
    const applied = await applyCommand(db.pool, 'webhook:payments', 'evt_early_pay', silent);
    assert.equal(applied?.ok, true);
    assert.equal((await findOrder(db.pool, 'W-late'))?.state, 'confirmed');
  });

  test('after the waiting window, a payment for an order that never came is kept as unapplied (order_not_found)', async () => {
    const pay = event('payment.captured', { order_ref: 'W-never', payment_ref: 'pay_orphan', amount: 500, currency: 'INR' });
    assert.equal((await send(pay, { source: 'payments', id: 'evt_orphan' })).status, 202);
    const outcome = await applyCommand(db.pool, 'webhook:payments', 'evt_orphan', silent, { outOfOrderWindowMs: 0 });
    assert.equal(outcome?.ok === false && outcome.error.code, 'not_found');
    const kept = await db.pool.one(sql.type(z.object({ state: z.string(), reason: z.string().nullable(), amount: z.bigint() }))`
      select state, reason, amount from payments where payment_ref = 'pay_orphan'`);
    assert.deepEqual(kept, { state: 'unapplied', reason: 'order_not_found', amount: 500n });
  });
});

describe('/metrics', () => {
  test('reports webhook requests, events by outcome, jobs and active reservations in Prometheus text', async () => {
    const response = await fetch(`${intake.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    assert.match(text, /^haat_webhook_requests_total\{source="storefront",status="202"\} \d+$/m);
    assert.match(text, /^haat_webhook_requests_total\{source="unknown",status="404"\} 1$/m);
    assert.match(text, /^haat_webhook_events\{source="storefront",type="order.placed",outcome="applied"\} \d+$/m);
    assert.match(text, /^haat_webhook_events\{source="payments",type="payment.captured",outcome="amount_mismatch"\} 1$/m);
    assert.match(text, /^haat_jobs\{state="queued"\} \d+$/m);
    assert.match(text, /^haat_reservations_active\{measure="units"\} \d+$/m);
  });
});

describe('haat webhook send', () => {
  test('signs with the configured secret and posts; a replay with the same id is a duplicate', async () => {
    const { runCli } = await import('../helpers/cli.ts');
    const env = { DATABASE_URL: db.url, HAAT_WEBHOOK_SECRET_STOREFRONT: secret };
    const data = JSON.stringify({ ref: 'W-cli', buyer: 'b-1', currency: 'INR', items: [{ sku: 'TEA-1KG', qty: 1 }] });
    const argv = [
      'webhook',
      'send',
      'order.placed',
      '--source',
      'storefront',
      '--data',
      data,
      '--id',
      'evt_cli',
      '--url',
      `${intake.url}/webhooks/storefront`,
      '--at',
      '2026-11-25T10:00:00Z',
      '--json',
    ];
    const first = await runCli(argv, { env });
    assert.equal(first.code, 0, first.stdout);
    assert.deepEqual(JSON.parse(first.stdout), { id: 'evt_cli', status: 202, response: { accepted: true, id: 'evt_cli' } });
    const again = await runCli(argv, { env });
    assert.equal(JSON.parse(again.stdout).status, 200, again.stdout);
    const bad = await runCli(['webhook', 'send', 'order.placed', '--source', 'storefront', '--data', '{', '--json'], { env });
    assert.equal(bad.code, 2);
  });
});
