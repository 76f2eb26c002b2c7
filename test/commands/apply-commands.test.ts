// applyCommands, how a worker applies queued commands: many per transaction, each with its own
// outcome. In one batch: commands that apply, one refused by its handler, one whose stored command
// does not match its schema (poison), one the database refuses and one that fails unexpectedly —
// the others apply and each has its own result. A hot SKU's placements in one batch are decided in
// arrival order under one lock and one commit. Maintenance holds a batch's commands, not its bypasses.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { applyCommands, MaintenanceHold, type QueuedCommand } from '../../src/commands/apply-command.ts';
import { type Claim, claimKeys, claimKeysAndEnqueue } from '../../src/db/idempotency.ts';
import { setMaintenance } from '../../src/db/operations.ts';
import { sql } from '../../src/db/sql.ts';
import { Command, fingerprint } from '../../src/domain/commands.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { A: 0, B: 0, HOT: 12, MIX: 1, POISON: 0, SPARE: 5 });

const SCOPE = 'test-queue';

/** Stores commands as the boundary does (keys claimed, jobs queued); payloads are stored as given. */
async function store(
  commands: readonly (readonly [string, string, unknown])[],
  options: { jobs?: boolean } = {},
): Promise<QueuedCommand[]> {
  const claims: Claim[] = commands.map(([key, type, payload]) => {
    const parsed = Command.safeParse({ type, payload });
    return {
      scope: SCOPE,
      key,
      fingerprint: parsed.success ? fingerprint(parsed.data) : createHash('sha256').update(key).digest('hex'),
      command: { type, payload },
      actor: 'tester',
    };
  });
  await db.pool.transaction((tx) => (options.jobs ? claimKeysAndEnqueue(tx, claims) : claimKeys(tx, claims)));
  return commands.map(([key]) => ({ scope: SCOPE, key, attempts: 1 }));
}

const keyRow = (key: string) =>
  db.pool.one(sql.type(z.object({ state: z.string(), outcome: z.any(), xmin: z.string() }))`
    select state, outcome, xmin::text as xmin from idempotency_keys where scope = ${SCOPE} and key = ${key}`);
const stock = (sku: string) =>
  db.pool.one(
    sql.type(z.object({ on_hand: z.bigint(), reserved: z.bigint() }))`select on_hand, reserved from inventory where sku = ${sku}`,
  );

describe('applyCommands', () => {
  test('one batch: the good commands apply, a refusal and a poison row are recorded, a database refusal and a fault stay alone', async () => {
    // The database refuses any movement of POISON (a trigger raising haat's refusal code), and fails
    // unexpectedly on any movement of SPARE with a reason 'fault' (an error it does not explain).
    await db.pool.query(sql.unsafe`
      create function test_poison() returns trigger language plpgsql as $$
      begin
        if new.sku = 'POISON' then raise exception 'conflict: POISON refuses every movement' using errcode = 'HA000'; end if;
        if new.sku = 'SPARE' and new.reason = 'fault' then raise exception 'an unexpected fault'; end if;
        return new;
      end $$`);
    await db.pool.query(
      sql.unsafe`create trigger test_poison before insert on inventory_movements for each row execute function test_poison()`,
    );
    try {
      const items = await store([
        ['good-a', 'stock.receive', { sku: 'A', qty: '3' }],
        ['refused', 'stock.adjust', { sku: 'B', delta: '-1', reason: 'below zero' }],
        ['poison', 'stock.receive', { sku: 'A', qty: 'many' }],
        ['db-refused', 'stock.receive', { sku: 'POISON', qty: '1' }],
        ['fault', 'stock.adjust', { sku: 'SPARE', delta: '1', reason: 'fault' }],
        ['good-b', 'stock.receive', { sku: 'B', qty: '4' }],
      ]);
      const results = await applyCommands(db.pool, items, silent);
      assert.equal(results.length, 6);
      const [goodA, refused, poison, dbRefused, fault, goodB] = results;
      assert.deepEqual(goodA, { ok: true, outcome: { ok: true, result: { sku: 'A', on_hand: 3, reserved: 0, available: 3 } } });
      assert.deepEqual(goodB, { ok: true, outcome: { ok: true, result: { sku: 'B', on_hand: 4, reserved: 0, available: 4 } } });
      assert.ok(refused?.ok && refused.outcome && !refused.outcome.ok, 'the handler refused it');
      assert.equal(refused.outcome.error.code, 'conflict');
      assert.ok(poison?.ok && poison.outcome && !poison.outcome.ok);
      assert.equal(poison.outcome.error.code, 'invalid_input');
      assert.ok(dbRefused?.ok && dbRefused.outcome && !dbRefused.outcome.ok, 'the database refusal is its outcome');
      assert.equal(dbRefused.outcome.error.code, 'conflict');
      assert.ok(fault && !fault.ok, 'the fault is its own error, for the queue to retry');
      assert.match(String((fault.error as Error).message), /unexpected fault/);

      // Each recorded outcome is on its own key; the fault's key is still pending, with no effect.
      for (const key of ['good-a', 'refused', 'poison', 'db-refused', 'good-b']) assert.equal((await keyRow(key)).state, 'done', key);
      assert.equal((await keyRow('fault')).state, 'pending');
      assert.deepEqual(await stock('A'), { on_hand: 3n, reserved: 0n });
      assert.deepEqual(await stock('B'), { on_hand: 4n, reserved: 0n });
      assert.deepEqual(await stock('POISON'), { on_hand: 0n, reserved: 0n });
      assert.deepEqual(await stock('SPARE'), { on_hand: 5n, reserved: 0n });

      // Applied again (a retried job): done keys return their outcome and apply nothing twice.
      const again = await applyCommands(db.pool, items.slice(0, 2), silent);
      assert.deepEqual(again, [goodA, refused]);
      assert.deepEqual(await stock('A'), { on_hand: 3n, reserved: 0n });
    } finally {
      await db.pool.query(sql.unsafe`drop trigger test_poison on inventory_movements`);
      await db.pool.query(sql.unsafe`drop function test_poison()`);
    }
    // Once the fault is gone, its retry applies.
    const [retried] = await applyCommands(db.pool, [{ scope: SCOPE, key: 'fault', attempts: 2 }], silent);
    assert.ok(retried?.ok && retried.outcome?.ok);
    assert.deepEqual(await stock('SPARE'), { on_hand: 6n, reserved: 0n });
  });

  test('placements on one hot SKU in one batch: decided in arrival order, one transaction, never oversold', async () => {
    const orders = Array.from(
      { length: 20 },
      (_, i) => [`hot-${i}`, 'order.place', { buyer: `b${i}`, items: [{ sku: 'HOT', qty: '1' }] }] as const,
    );
    const items = await store(orders);
    const results = await applyCommands(db.pool, items, silent);
    const accepted = results.map((r) => r.ok && r.outcome?.ok === true);
    // Stock 12: the first twelve in arrival order are accepted, the rest rejected for stock.
    assert.deepEqual(
      accepted,
      Array.from({ length: 20 }, (_, i) => i < 12),
    );
    for (const r of results.slice(12)) {
      assert.ok(r.ok && r.outcome && !r.outcome.ok);
      assert.equal(r.outcome.error.code, 'insufficient_stock');
    }
    assert.deepEqual(await stock('HOT'), { on_hand: 12n, reserved: 12n });
    // One transaction wrote every outcome (one xmin for all of them).
    const xmins = new Set(await Promise.all(orders.map(async ([key]) => (await keyRow(key)).xmin)));
    assert.equal(xmins.size, 1);
  });

  test('maintenance holds the batch’s commands (nothing written), and they apply once it is off', async () => {
    await db.pool.transaction((tx) => setMaintenance(tx, true, 'test', 'tester', 'hold the batch'));
    const items = await store([
      ['held-1', 'stock.receive', { sku: 'A', qty: '1' }],
      ['held-2', 'stock.receive', { sku: 'B', qty: '1' }],
    ]);
    try {
      const results = await applyCommands(db.pool, items, silent);
      for (const r of results) assert.ok(!r.ok && r.error instanceof MaintenanceHold);
      assert.equal((await keyRow('held-1')).state, 'pending');
    } finally {
      await db.pool.transaction((tx) => setMaintenance(tx, false, null, 'tester', 'release'));
    }
    const results = await applyCommands(db.pool, items, silent);
    for (const r of results) assert.ok(r.ok && r.outcome?.ok);
    assert.deepEqual(await stock('A'), { on_hand: 4n, reserved: 0n });
  });

  test('claimKeysAndEnqueue queues one job per new key in one call, none for a key already claimed', async () => {
    await store(
      [
        ['queued-1', 'stock.receive', { sku: 'A', qty: '1' }],
        ['queued-2', 'stock.receive', { sku: 'B', qty: '1' }],
      ],
      { jobs: true },
    );
    await store([['queued-1', 'stock.receive', { sku: 'A', qty: '1' }]], { jobs: true });
    const jobs = await db.pool.anyFirst(sql.type(z.object({ key: z.string() }))`
      select key from graphile_worker.jobs where key like ${`cmd:${SCOPE}:queued-%`} order by key`);
    assert.deepEqual(jobs, [`cmd:${SCOPE}:queued-1`, `cmd:${SCOPE}:queued-2`]);
    const flags = await db.pool.anyFirst(sql.type(z.object({ flags: z.any() }))`
      select flags from graphile_worker.jobs where key like ${`cmd:${SCOPE}:queued-%`}`);
    for (const f of flags) assert.deepEqual(f, { domain: true });
    await db.pool.query(
      sql.unsafe`select graphile_worker.remove_job(key) from graphile_worker.jobs where key like ${`cmd:${SCOPE}:queued-%`}`,
    );
    await applyCommands(
      db.pool,
      ['queued-1', 'queued-2'].map((key) => ({ scope: SCOPE, key })),
      silent,
    );
  });

  test('a batch drains due queued commands: applied in its transaction, their jobs completed; a job a worker holds is left', async () => {
    const items = await store(
      Array.from({ length: 8 }, (_, i) => [`drain-${i}`, 'stock.receive', { sku: 'A', qty: '1' }] as const),
      { jobs: true },
    );
    // One job is held by a worker (locked): its command is left to that worker.
    await db.pool.query(sql.unsafe`
      update graphile_worker._private_jobs set locked_at = now(), locked_by = 'another-worker' where key = ${`cmd:${SCOPE}:drain-7`}`);
    const before = await stock('A');
    const [first] = await applyCommands(db.pool, [items[0] as QueuedCommand], silent, { drain: 20 });
    assert.ok(first?.ok && first.outcome?.ok);
    for (let i = 0; i < 7; i++) assert.equal((await keyRow(`drain-${i}`)).state, 'done', `drain-${i}`);
    assert.equal(new Set(await Promise.all([0, 1, 2, 3, 4, 5, 6].map(async (i) => (await keyRow(`drain-${i}`)).xmin))).size, 1);
    assert.deepEqual(await stock('A'), { on_hand: before.on_hand + 7n, reserved: 0n });
    const left = await db.pool.anyFirst(sql.type(z.object({ key: z.string() }))`
      select key from graphile_worker.jobs where key like ${`cmd:${SCOPE}:drain-%`} order by key`);
    // drain-0's own job is completed by the queue when its task returns; here no worker ran it.
    assert.deepEqual(left, [`cmd:${SCOPE}:drain-0`, `cmd:${SCOPE}:drain-7`]);
    assert.equal((await keyRow('drain-7')).state, 'pending');
    // The held one applies when its worker gets to it (that worker then completes its job).
    await db.pool.query(sql.unsafe`
      update graphile_worker._private_jobs set locked_at = null, locked_by = null where key = ${`cmd:${SCOPE}:drain-7`}`);
    const [held] = await applyCommands(db.pool, [items[7] as QueuedCommand], silent);
    assert.ok(held?.ok && held.outcome?.ok);
    await db.pool.query(
      sql.unsafe`select graphile_worker.remove_job(key) from graphile_worker.jobs where key like ${`cmd:${SCOPE}:drain-%`}`,
    );
  });

  test('placements and other commands in one batch apply in arrival order: a cancel frees stock for the placement after it', async () => {
    const place = (ref: string) => ({ ref, buyer: 'b', items: [{ sku: 'MIX', qty: '1' }] });
    const items = await store([
      ['mix-1', 'order.place', place('MIX-1')],
      ['mix-2', 'order.place', place('MIX-2')],
      ['mix-cancel', 'order.cancel', { order: 'MIX-1', reason: 'changed mind' }],
      ['mix-3', 'order.place', place('MIX-3')],
      ['mix-4', 'order.place', place('MIX-4')],
      ['mix-dup', 'order.place', place('MIX-3')],
    ]);
    const results = await applyCommands(db.pool, items, silent);
    const codes = results.map((r) => (r.ok && r.outcome ? (r.outcome.ok ? 'ok' : r.outcome.error.code) : 'error'));
    // Stock 1: MIX-1 takes it, MIX-2 is short; the cancel gives it back, so MIX-3 takes it and
    // MIX-4 is short; a second placement with the ref MIX-3 is refused (the ref is taken).
    assert.deepEqual(codes, ['ok', 'insufficient_stock', 'ok', 'ok', 'insufficient_stock', 'conflict']);
    const states = await db.pool.any(sql.type(z.object({ ref: z.string(), state: z.string() }))`
      select ref, state from orders where ref like 'MIX-%' order by ref`);
    assert.deepEqual(
      states.map((o) => `${o.ref}:${o.state}`),
      ['MIX-1:cancelled', 'MIX-2:rejected', 'MIX-3:pending', 'MIX-4:rejected'],
    );
    assert.deepEqual(await stock('MIX'), { on_hand: 1n, reserved: 1n });
  });

  test('a placement whose ref is an existing order’s id is refused (conflict), as findOrder reads keys', async () => {
    const [first] = await applyCommands(
      db.pool,
      await store([['uuid-seed', 'order.place', { buyer: 'b', items: [{ sku: 'SPARE', qty: '1' }] }]]),
      silent,
    );
    assert.ok(first?.ok && first.outcome?.ok);
    const id = (first.outcome.result as { id: string }).id;
    const results = await applyCommands(
      db.pool,
      await store([
        ['uuid-ref', 'order.place', { ref: id, buyer: 'b', items: [{ sku: 'SPARE', qty: '1' }] }],
        ['uuid-cancel', 'order.cancel', { order: id, reason: 'test' }],
      ]),
      silent,
    );
    assert.ok(results[0]?.ok && results[0].outcome && !results[0].outcome.ok);
    assert.equal(results[0].outcome.error.code, 'conflict');
    assert.ok(results[1]?.ok && results[1].outcome?.ok, 'the id still names one order');
  });

  test('a drained command that raises does not hold back the batch: its own commands apply, the culprit is left to its job', async () => {
    // A queued placement whose derived ref an order already holds: applying it raises (orders_ref_key).
    const [culprit] = await store([['drain-culprit', 'order.place', { buyer: 'b', items: [{ sku: 'SPARE', qty: '1' }] }]], { jobs: true });
    const taken = await db.pool.oneFirst(sql.type(z.object({ ref: z.string() }))`select placement_ref(${SCOPE}, 'drain-culprit') as ref`);
    await applyCommands(
      db.pool,
      await store([['drain-taker', 'order.place', { ref: taken, buyer: 'b', items: [{ sku: 'SPARE', qty: '1' }] }]]),
      silent,
    );
    const own = await store([['drain-own', 'stock.receive', { sku: 'B', qty: '1' }]]);
    const [result] = await applyCommands(db.pool, own, silent, { drain: 10 });
    assert.ok(result?.ok && result.outcome?.ok, 'the batch’s own command applied');
    assert.equal((await keyRow('drain-own')).state, 'done');
    assert.equal((await keyRow('drain-culprit')).state, 'pending', 'the culprit waits for its own job');
    // Its own job applies it: the database's refusal is its recorded outcome.
    const [alone] = await applyCommands(db.pool, [culprit as QueuedCommand], silent);
    assert.ok(alone?.ok && alone.outcome && !alone.outcome.ok);
    assert.equal(alone.outcome.error.code, 'conflict');
    await db.pool.query(
      sql.unsafe`select graphile_worker.remove_job(key) from graphile_worker.jobs where key like ${`cmd:${SCOPE}:drain-%`}`,
    );
  });
});
