// The intake's group commit (src/intake/intake-batch.ts), through a real intake: requests that arrive
// together are stored in one transaction, each answered for itself (202, 200 duplicate, 409, a
// feature-flag 503); a row the database refuses fails alone and the rest of its batch is stored; a
// lost database answers 503 to every request of the batch and stores nothing.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import { createDatabasePool } from '../../src/db/pool.ts';
import { sql } from '../../src/db/sql.ts';
import { newSecret } from '../../src/intake/secrets.ts';
import { startIntake } from '../../src/intake/server.ts';
import { signedHeaders } from '../../src/intake/sign.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { databaseProxy } from '../helpers/proxy.ts';
import { seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 10 });
const secret = newSecret();
const secrets = { storefront: [secret], payments: [secret], logistics: [secret] };
// A long linger, so that requests sent together share a batch for certain.
const batch = { lingerMs: 300, maxBatch: 200, maxInFlight: 2 };
const intake = await startIntake({ pool: db.pool, log: silent, expectedMigration: undefined, secrets, port: 0, host: '127.0.0.1', batch });
after(() => intake.close());

const placed = (ref: string, buyer = 'b-1') =>
  JSON.stringify({
    type: 'order.placed',
    timestamp: new Date().toISOString(),
    data: { ref, buyer, currency: 'INR', items: [{ sku: 'TEA-1KG', qty: 1 }] },
  });
const captured = (ref: string) =>
  JSON.stringify({
    type: 'payment.captured',
    timestamp: new Date().toISOString(),
    data: { order_ref: ref, payment_ref: `pay-${ref}`, amount: 1, currency: 'INR' },
  });

async function send(url: string, source: string, id: string, body: string) {
  const response = await fetch(`${url}/webhooks/${source}`, { method: 'POST', headers: signedHeaders(secret, id, body), body });
  return { status: response.status, json: (await response.json()) as { error?: { code: string } } };
}

const stored = (prefix: string) =>
  db.pool.one(sql.type(z.object({ events: z.bigint(), keys: z.bigint(), jobs: z.bigint(), transactions: z.bigint() }))`
    select (select count(*) from webhook_events where webhook_id like ${`${prefix}%`}) as events,
           (select count(*) from idempotency_keys where key like ${`${prefix}%`}) as keys,
           (select count(*) from graphile_worker.jobs where key like ${`cmd:webhook:%:${prefix}%`}) as jobs,
           (select count(distinct xmin::text) from webhook_events where webhook_id like ${`${prefix}%`}) as transactions`);

describe('intake batches', () => {
  test('requests sent together: one transaction, each its own answer', async () => {
    const seed = placed('B1-SEED');
    const twice = placed('B1-TWICE');
    const first = await send(intake.url, 'storefront', 'b1-seed', seed);
    assert.equal(first.status, 202);
    const requests = [
      ...Array.from({ length: 30 }, (_, i) => send(intake.url, 'storefront', `b1-${i}`, placed(`B1-${i}`))),
      // In the same batch: the same id and body twice (one 202, one 200), the same id with another body (409).
      send(intake.url, 'storefront', 'b1-twice', twice),
      send(intake.url, 'storefront', 'b1-twice', twice),
      send(intake.url, 'storefront', 'b1-clash', placed('B1-CLASH')),
      send(intake.url, 'storefront', 'b1-clash', placed('B1-CLASH', 'someone-else')),
      // An id stored by an earlier batch: 200, and 409 with another body.
      send(intake.url, 'storefront', 'b1-seed', seed),
      send(intake.url, 'storefront', 'b1-seed', placed('B1-SEED', 'someone-else')),
    ];
    const replies = await Promise.all(requests);
    for (const reply of replies.slice(0, 30)) assert.equal(reply.status, 202);
    assert.deepEqual(
      replies
        .slice(30, 32)
        .map((r) => r.status)
        .sort(),
      [200, 202],
    );
    assert.deepEqual(
      replies
        .slice(32, 34)
        .map((r) => r.status)
        .sort(),
      [202, 409],
    );
    assert.equal(replies[34]?.status, 200);
    assert.equal(replies[35]?.status, 409);
    assert.equal(replies[35]?.json.error?.code, 'idempotency_conflict');
    const counts = await stored('b1-');
    // 30 + twice + clash + seed: each stored once, with its key and its job.
    assert.deepEqual({ events: counts.events, keys: counts.keys, jobs: counts.jobs }, { events: 33n, keys: 33n, jobs: 33n });
    assert.ok(counts.transactions < 33n, `the requests shared transactions (${counts.transactions} for 33 events)`);
  });

  test('with storefront_order_placed off, its order.placed requests are 503 and the payments in the same batch are stored', async () => {
    await db.pool.query(sql.unsafe`update feature_flags set enabled = false where name = 'storefront_order_placed'`);
    try {
      const replies = await Promise.all([
        send(intake.url, 'storefront', 'b2-placed', placed('B2-1')),
        send(intake.url, 'payments', 'b2-paid', captured('B2-1')),
      ]);
      assert.deepEqual(
        replies.map((r) => [r.status, r.json.error?.code]),
        [
          [503, 'feature_disabled'],
          [202, undefined],
        ],
      );
    } finally {
      await db.pool.query(sql.unsafe`update feature_flags set enabled = true where name = 'storefront_order_placed'`);
    }
    assert.deepEqual({ events: (await stored('b2-')).events }, { events: 1n });
  });

  test('a row the database refuses fails alone; the rest of its batch is stored', async () => {
    await db.pool.query(sql.unsafe`
      alter table webhook_events add constraint test_no_poison check (webhook_id <> 'b3-poison') not valid`);
    try {
      const replies = await Promise.all([
        send(intake.url, 'storefront', 'b3-1', placed('B3-1')),
        send(intake.url, 'storefront', 'b3-poison', placed('B3-POISON')),
        send(intake.url, 'storefront', 'b3-2', placed('B3-2')),
      ]);
      assert.equal(replies[0]?.status, 202);
      assert.equal(replies[1]?.status, 500, 'an unexplained refusal is the intake’s fault, and the sender retries');
      assert.equal(replies[2]?.status, 202);
    } finally {
      await db.pool.query(sql.unsafe`alter table webhook_events drop constraint test_no_poison`);
    }
    const counts = await stored('b3-');
    assert.deepEqual({ events: counts.events, keys: counts.keys, jobs: counts.jobs }, { events: 2n, keys: 2n, jobs: 2n });
    // The sender's retry of the refused one is stored once the database takes it.
    assert.equal((await send(intake.url, 'storefront', 'b3-poison', placed('B3-POISON'))).status, 202);
  });

  test('a lost database answers 503 to every request of the batch, and nothing of it is stored', async () => {
    const proxy = await databaseProxy(new URL(db.url));
    const pool = await createDatabasePool(proxy.url(), { connectionTimeoutMs: 1_000 });
    const cut = await startIntake({ pool, log: silent, expectedMigration: undefined, secrets, port: 0, host: '127.0.0.1', batch });
    try {
      await proxy.down();
      const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => send(cut.url, 'storefront', `b4-${i}`, placed(`B4-${i}`))));
      for (const reply of replies) assert.deepEqual([reply.status, reply.json.error?.code], [503, 'database_unavailable']);
      assert.equal((await stored('b4-')).events, 0n);
    } finally {
      await cut.close();
      await pool.end();
    }
  });
});
