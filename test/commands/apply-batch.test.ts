// applyBatch, the batched form of the one write path: in one batch, commands that apply, one refused
// at apply time, one that does not match its schema and one the database cannot store; replays and
// conflicts; maintenance; and precheckBatch, held equal to the handlers' own prechecks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { applyBatch, type BatchItem } from '../../src/commands/apply-batch.ts';
import { handlerFor } from '../../src/commands/handlers.ts';
import { precheckBatch } from '../../src/commands/precheck-batch.ts';
import { insertSku } from '../../src/db/catalog.ts';
import { setMaintenance } from '../../src/db/operations.ts';
import { sql } from '../../src/db/sql.ts';
import { Command } from '../../src/domain/commands.ts';
import { InvariantError } from '../../src/errors.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { footprint } from '../helpers/footprint.ts';
import { seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { A: 0, B: 0, C: 0, D: 0 });

const item = (key: string, type: string, payload: unknown): BatchItem => ({
  scope: 'test-batch',
  key,
  command: { type, payload },
  actor: 'batcher',
});
const receive = (key: string, sku: string, qty: string) => item(key, 'stock.receive', { sku, qty });

const onHand = (sku: string) =>
  db.pool.maybeOneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = ${sku}`);
const keyRow = (key: string) =>
  db.pool.maybeOne(sql.type(z.object({ state: z.string(), outcome: z.unknown(), actor: z.string() }))`
    select state, outcome, actor from idempotency_keys where scope = 'test-batch' and key = ${key}`);

describe('applyBatch', () => {
  test('in one batch: the good commands apply, a refusal at apply time and a schema poison are recorded, a DB poison rolls back alone', async () => {
    const results = await applyBatch(
      db.pool,
      [
        receive('k-a', 'A', '3'),
        receive('k-b', 'B', '4'),
        receive('k-unknown', 'NOPE', '1'), // no precheck here: refused by the handler at apply time
        receive('k-schema', 'C', '1.5'), // does not match its schema
        item('k-nul', 'sku.add', { code: 'NUL-1', seller: 'tea-house', price: '1', currency: 'INR', title: 'a\u0000b' }), // the database cannot store it
        receive('k-c', 'C', '5'),
      ],
      { log: silent },
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ['applied', 'applied', 'applied', 'applied', 'failed', 'applied'],
    );
    assert.deepEqual(results[0], { status: 'applied', outcome: { ok: true, result: { sku: 'A', on_hand: 3, reserved: 0, available: 3 } } });
    const unknown = results[2];
    assert.ok(unknown?.status === 'applied' && !unknown.outcome.ok && unknown.outcome.error.code === 'not_found');
    const schema = results[3];
    assert.ok(schema?.status === 'applied' && !schema.outcome.ok && schema.outcome.error.code === 'invalid_input');
    const poison = results[4];
    assert.ok(poison?.status === 'failed' && poison.error.code === 'internal', JSON.stringify(poison));

    assert.equal(await onHand('A'), 3n);
    assert.equal(await onHand('B'), 4n);
    assert.equal(await onHand('C'), 5n);
    assert.equal(await onHand('NUL-1'), null);
    // Each command has its own recorded outcome; the poison has none and its key is free.
    for (const key of ['k-a', 'k-b', 'k-unknown', 'k-schema', 'k-c']) {
      const row = await keyRow(key);
      assert.equal(row?.state, 'done', key);
      assert.equal(row?.actor, 'batcher');
    }
    assert.deepEqual((await keyRow('k-unknown'))?.outcome, {
      ok: false,
      error: { code: 'not_found', message: 'SKU not found: NOPE', details: { sku: 'NOPE' } },
    });
    assert.equal(await keyRow('k-nul'), null);
    const movements = await db.pool.any(sql.type(z.object({ sku: z.string(), command_key: z.string() }))`
      select sku, command_key from inventory_movements where command_scope = 'test-batch' order by sku`);
    assert.deepEqual(movements, [
      { sku: 'A', command_key: 'k-a' },
      { sku: 'B', command_key: 'k-b' },
      { sku: 'C', command_key: 'k-c' },
    ]);
  });

  test('the same batch again replays every recorded outcome and writes nothing; the poison is tried again', async () => {
    const before = await footprint(db.pool);
    const results = await applyBatch(
      db.pool,
      [
        receive('k-a', 'A', '3'),
        receive('k-unknown', 'NOPE', '1'),
        item('k-nul', 'sku.add', { code: 'NUL-1', seller: 'tea-house', price: '1', currency: 'INR', title: 'a\u0000b' }),
        receive('k-c', 'C', '5'),
      ],
      { log: silent },
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ['replayed', 'replayed', 'failed', 'replayed'],
    );
    assert.deepEqual(results[0], {
      status: 'replayed',
      outcome: { ok: true, result: { sku: 'A', on_hand: 3, reserved: 0, available: 3 } },
    });
    assert.deepEqual(await footprint(db.pool), before);
  });

  test('a key that holds another command is a conflict, recorded nowhere, and the rest applies', async () => {
    const results = await applyBatch(db.pool, [receive('k-a', 'A', '9'), receive('k-d', 'D', '2')], { log: silent });
    assert.equal(results[0]?.status, 'conflict');
    assert.ok(results[0]?.status === 'conflict' && results[0].error.code === 'idempotency_conflict');
    assert.equal(results[1]?.status, 'applied');
    assert.equal(await onHand('A'), 3n);
    assert.equal(await onHand('D'), 2n);
  });

  test('a SKU created by another transaction meanwhile (the batch waits for it, then its insert fails): refused at apply time, recorded, the rest applies', async () => {
    let inserted: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (inserted = resolve));
    let finish: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (finish = resolve));
    const other = db.pool.transaction(async (tx) => {
      await insertSku(tx, { code: 'RACE-1', seller: 'tea-house', title: '', priceAmount: 1n, currency: 'INR' });
      inserted();
      await gate;
    });
    await ready;
    const batch = applyBatch(
      db.pool,
      [
        item('k-race', 'sku.add', { code: 'RACE-1', seller: 'tea-house', price: '100', currency: 'INR' }),
        item('k-race-ok', 'sku.add', { code: 'RACE-2', seller: 'tea-house', price: '100', currency: 'INR' }),
      ],
      { log: silent },
    );
    // The batch's insert waits for the other transaction, which holds the new row's key.
    let waited = false;
    for (let i = 0; i < 500 && !waited; i++) {
      waited =
        (await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
        select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)) > 0n;
      if (!waited) await sleep(10);
    }
    assert.ok(waited, 'the batch waited for the other transaction');
    finish();
    await other;
    const results = await batch;
    const race = results[0];
    assert.ok(race?.status === 'applied' && !race.outcome.ok && race.outcome.error.code === 'conflict', JSON.stringify(race));
    assert.equal(results[1]?.status, 'applied');
    assert.equal((await keyRow('k-race'))?.state, 'done');
    assert.deepEqual(
      await db.pool.any(sql.type(z.object({ code: z.string(), price_amount: z.bigint() }))`
        select code, price_amount from skus where code like 'RACE-%' order by code`),
      [
        { code: 'RACE-1', price_amount: 1n },
        { code: 'RACE-2', price_amount: 100n },
      ],
    );
  });

  test('while maintenance is on a batch writes nothing; with a bypass reason each claimed key is audited', async () => {
    await db.pool.transaction((tx) => setMaintenance(tx, true, null, 'test', 'batch test'));
    try {
      const before = await footprint(db.pool);
      await assert.rejects(
        applyBatch(db.pool, [receive('k-m1', 'A', '1')], { log: silent }),
        (e) => (e as Error).name === 'MaintenanceHold',
      );
      assert.deepEqual(await footprint(db.pool), before);
      const results = await applyBatch(db.pool, [receive('k-m1', 'A', '1'), receive('k-a', 'A', '3')], {
        log: silent,
        bypassReason: 'urgent delivery',
      });
      assert.deepEqual(
        results.map((r) => r.status),
        ['applied', 'replayed'],
      );
      const audits = await db.pool.any(sql.type(z.object({ target: z.string(), reason: z.string(), actor: z.string() }))`
        select target, reason, actor from audit_log where action = 'maintenance.bypass' order by id`);
      assert.deepEqual(audits, [{ target: 'command:test-batch:k-m1', reason: 'urgent delivery', actor: 'batcher' }]);
      const bypassed = await db.pool.oneFirst(sql.type(z.object({ b: z.boolean() }))`
        select bypass_maintenance as b from idempotency_keys where scope = 'test-batch' and key = 'k-m1'`);
      assert.equal(bypassed, true);
    } finally {
      await db.pool.transaction((tx) => setMaintenance(tx, false, null, 'test', 'batch test done'));
    }
  });

  test('refuses what it cannot do right: a key twice in one batch, webhook scopes, too many commands', async () => {
    await assert.rejects(applyBatch(db.pool, [receive('k-x', 'A', '1'), receive('k-x', 'A', '1')], { log: silent }), InvariantError);
    await assert.rejects(
      applyBatch(db.pool, [{ ...receive('k-w', 'A', '1'), scope: 'webhook:storefront' }], { log: silent }),
      InvariantError,
    );
    await assert.rejects(
      applyBatch(
        db.pool,
        Array.from({ length: 501 }, (_, i) => receive(`k-many-${i}`, 'A', '1')),
        { log: silent },
      ),
      InvariantError,
    );
  });
});

describe('precheckBatch', () => {
  test('refuses exactly what each handler precheck refuses, with the same code, message and details', async () => {
    const commands = [
      { type: 'sku.add', payload: { code: 'NEW-1', seller: 'tea-house', price: '1', currency: 'INR' } },
      { type: 'sku.add', payload: { code: 'A', seller: 'tea-house', price: '1', currency: 'INR' } },
      { type: 'sku.add', payload: { code: 'NEW-2', seller: 'nobody', price: '1', currency: 'INR' } },
      { type: 'sku.add', payload: { code: 'A', seller: 'nobody', price: '1', currency: 'INR' } },
      { type: 'stock.receive', payload: { sku: 'A', qty: '1' } },
      { type: 'stock.receive', payload: { sku: 'NOPE', qty: '1' } },
      { type: 'stock.adjust', payload: { sku: 'A', delta: '-1000', reason: 'count' } },
      { type: 'seller.add', payload: { handle: 'tea-house', name: 'Again' } },
    ].map((c) => Command.parse(c));
    const batched = await precheckBatch(db.pool, commands);
    const single = await Promise.all(commands.map((c) => handlerFor(c).precheck(db.pool, c.payload as never)));
    assert.deepEqual(batched, single);
    assert.deepEqual(
      batched.map((r) => r?.code ?? null),
      [null, 'conflict', 'not_found', 'not_found', null, 'not_found', 'conflict', 'conflict'],
    );
  });
});
