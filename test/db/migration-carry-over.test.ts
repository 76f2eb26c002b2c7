// Migration 000009 carries over what earlier versions left behind: a finished placement refused for
// an unknown SKU, a currency or an invalid total left no order (the event looked lost); after the
// carry-over it is a rejected order with its reason, its lines and its transition, and every
// finished event has its outcome row. The carry-over statements are run as the migration has them.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { z } from 'zod';
import { findEvent } from '../../src/db/events.ts';
import { migrationsFolder } from '../../src/db/migration-status.ts';
import { sql } from '../../src/db/sql.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 5 });

test('placements that left no order become rejected orders; finished events get their outcome', async () => {
  const migration = await fs.readFile(path.join(migrationsFolder, 'committed', '000009.sql'), 'utf8');
  const carryOver = migration.slice(migration.indexOf('-- Carry-over 1'));
  assert.ok(carryOver.length > 100, 'the migration has its carry-over section');

  // What an earlier version stored: the event, its key done with a refusal, no order, no outcome row.
  const legacy = [
    ['evt-old-sku', { ref: 'S-OLD-1', buyer: 'b-1', currency: 'INR', items: [{ sku: 'GONE', qty: '2' }] }, 'not_found'],
    ['evt-old-usd', { ref: 'S-OLD-2', buyer: 'b-2', currency: 'USD', items: [{ sku: 'TEA-1KG', qty: '1' }] }, 'currency_mismatch'],
    ['evt-old-big', { ref: 'S-OLD-3', buyer: 'b-3', currency: 'INR', items: [{ sku: 'TEA-1KG', qty: '1' }] }, 'invalid_input'],
  ] as const;
  for (const [id, payload, code] of legacy) {
    const body = JSON.stringify({ type: 'order.placed', timestamp: new Date().toISOString(), data: payload });
    await db.pool.query(sql.unsafe`
      insert into webhook_events (source, webhook_id, event_type, body_sha256, body)
      values ('storefront', ${id}, 'order.placed', encode(sha256(convert_to(${body}, 'UTF8')), 'hex'), ${body})`);
    await db.pool.query(sql.unsafe`
      insert into idempotency_keys (scope, key, fingerprint, command_type, payload, actor, state, outcome, completed_at)
      values ('webhook:storefront', ${id}, repeat('a', 64), 'order.place', ${sql.jsonb(payload)}, 'webhook:storefront', 'done',
              ${sql.jsonb({ ok: false, error: { code, message: 'refused', details: {} } })}, now())`);
  }

  // Two lost placements for one ref: the earliest makes the order, lines and buyer all its own.
  for (const [id, buyer, items, at] of [
    ['evt-dup-1', 'b-first', [{ sku: 'GONE-C', qty: '7' }], '1 hour'],
    [
      'evt-dup-2',
      'b-second',
      [
        { sku: 'GONE-A', qty: '1' },
        { sku: 'GONE-B', qty: '2' },
      ],
      '1 minute',
    ],
  ] as const) {
    const payload = { ref: 'S-DUP', buyer, currency: 'INR', items };
    await db.pool.query(sql.unsafe`
      insert into webhook_events (source, webhook_id, event_type, body_sha256, body)
      values ('storefront', ${id}, 'order.placed', repeat('c', 64), '{}')`);
    await db.pool.query(sql.unsafe`
      insert into idempotency_keys (scope, key, fingerprint, command_type, payload, actor, state, outcome, created_at, completed_at)
      values ('webhook:storefront', ${id}, repeat('a', 64), 'order.place', ${sql.jsonb(payload)}, 'webhook:storefront', 'done',
              ${sql.jsonb({ ok: false, error: { code: 'not_found', message: 'refused', details: {} } })}, now() - ${at}::interval, now() - ${at}::interval)`);
  }
  // An event finished so long ago that its key was purged (past the retention), and no job left.
  await db.pool.query(sql.unsafe`
    insert into webhook_events (source, webhook_id, event_type, body_sha256, body, received_at)
    values ('payments', 'evt-purged', 'payment.failed', repeat('d', 64), '{}', now() - interval '40 days')`);

  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query(`begin; ${carryOver}; commit;`);
  } finally {
    await client.end();
  }

  const expected = { 'S-OLD-1': ['unknown_sku', 'INR'], 'S-OLD-2': ['currency_mismatch', 'USD'], 'S-OLD-3': ['invalid_order', 'INR'] };
  for (const [ref, [reason, currency]] of Object.entries(expected)) {
    const shown = await runCli(['order', 'show', ref, '--json'], { env: { DATABASE_URL: db.url } });
    assert.equal(shown.code, 0, shown.stdout);
    const order = JSON.parse(shown.stdout);
    assert.equal(order.state, 'rejected');
    assert.equal(order.reject_reason, reason);
    assert.equal(order.currency, currency);
    assert.equal(order.requested_items.length, 1);
    const history = JSON.parse((await runCli(['order', 'history', ref, '--json'], { env: { DATABASE_URL: db.url } })).stdout);
    assert.equal(history.length, 1);
    assert.match(history[0].reason, /recorded by migration 000009/);
  }
  const event = await findEvent(db.pool, 'storefront', 'evt-old-sku');
  assert.equal(event?.state, 'done');
  assert.equal(event?.outcome?.code, 'not_found');
  assert.equal(event?.order, 'S-OLD-1');
  const dup = JSON.parse((await runCli(['order', 'show', 'S-DUP', '--json'], { env: { DATABASE_URL: db.url } })).stdout);
  assert.equal(dup.buyer, 'b-first');
  assert.deepEqual(dup.requested_items, [{ sku: 'GONE-C', qty: 7 }]);
  const dupHistory = JSON.parse((await runCli(['order', 'history', 'S-DUP', '--json'], { env: { DATABASE_URL: db.url } })).stdout);
  assert.equal(dupHistory.length, 1);
  const purged = await findEvent(db.pool, 'payments', 'evt-purged');
  assert.equal(purged?.state, 'done');
  assert.equal(purged?.outcome?.code, 'unknown');
  assert.match(purged?.outcome?.message ?? '', /purged after its retention/);
  const listed = JSON.parse((await runCli(['events', 'list', '--outcome', 'unknown', '--json'], { env: { DATABASE_URL: db.url } })).stdout);
  assert.deepEqual(
    listed.map((e: { id: string }) => e.id),
    ['evt-purged'],
  );
  // The test database's reconcile (after this test) must now pass: nothing is lost any more.
});

test("the database's placement_ref is the ref a placement without one gets (reconcile relies on both agreeing)", async () => {
  const { mustApply } = await import('../helpers/seed.ts');
  const placed = (await mustApply(
    db.pool,
    { type: 'order.place', payload: { buyer: 'b', items: [{ sku: 'TEA-1KG', qty: '1' }] } },
    'no-ref-given',
  )) as { ref: string };
  const ref = await db.pool.oneFirst(sql.type(z.object({ ref: z.string() }))`select placement_ref('test', 'no-ref-given') as ref`);
  assert.equal(placed.ref, ref);
});
