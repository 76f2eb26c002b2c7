// The one write path: idempotency keys, replay, conflicts, concurrency, replays of the task
// (a crash between the domain commit and the job's completion), and the worker doing the work.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { applyCommand } from '../../src/commands/apply-command.ts';
import { awaitOutcome, submitCommand } from '../../src/commands/submit-command.ts';
import { reserve } from '../../src/db/inventory.ts';
import { sql } from '../../src/db/sql.ts';
import { Command } from '../../src/domain/commands.ts';
import { HaatError } from '../../src/errors.ts';
import { createCommandBatcher } from '../../src/worker/command-batcher.ts';
import { startWorker } from '../../src/worker/run-worker.ts';
import { purgeIdempotencyKeysTask } from '../../src/worker/tasks/purge-idempotency-keys.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { apply, seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { TEA: 0, RICE: 5 });

const onHand = (sku: string) =>
  db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = ${sku}`);
const movements = (sku: string) =>
  db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from inventory_movements where sku = ${sku}`);
const receive = (qty: string) => ({ type: 'stock.receive', payload: { sku: 'TEA', qty } });

describe('idempotency keys', () => {
  test('replaying a key adds stock once and returns the original outcome', async () => {
    const first = await apply(db.pool, receive('4'), 'k-replay');
    const again = await apply(db.pool, receive('4'), 'k-replay');
    assert.deepEqual(again, first);
    assert.equal(await onHand('TEA'), 4n);
  });

  test('the same key with another quantity is idempotency_conflict, and nothing changes', async () => {
    const before = await onHand('TEA');
    await assert.rejects(
      apply(db.pool, receive('5'), 'k-replay'),
      (e) => e instanceof HaatError && e.code === 'idempotency_conflict' && e.exitCode === 3,
    );
    assert.equal(await onHand('TEA'), before);
  });

  test('ten concurrent identical commands with one key have one effect and one outcome for all', async () => {
    const before = await onHand('TEA');
    const moves = await movements('TEA');
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => apply(db.pool, receive('3'), 'k-concurrent')));
    assert.equal(await onHand('TEA'), before + 3n);
    assert.equal(await movements('TEA'), moves + 1n);
    for (const outcome of outcomes) assert.deepEqual(outcome, outcomes[0]);
  });

  test('running the task again after its commit (a crash before the job completed) has no second effect', async () => {
    const before = await onHand('TEA');
    const outcome = await apply(db.pool, receive('2'), 'k-crash');
    const replays = await Promise.all([1, 2, 3].map(() => applyCommand(db.pool, 'test', 'k-crash', silent)));
    for (const replay of replays) assert.deepEqual(replay, outcome);
    assert.equal(await onHand('TEA'), before + 2n);
  });

  test('a command that failed validation stores nothing, and the corrected one runs with the same key', async () => {
    assert.throws(() => Command.parse(receive('1.5')));
    const stored = await db.pool.oneFirst(
      sql.type(z.object({ n: z.bigint() }))`select count(*) as n from idempotency_keys where key = 'k-fixed'`,
    );
    assert.equal(stored, 0n);
    const outcome = await apply(db.pool, receive('1'), 'k-fixed');
    assert.equal(outcome.ok, true);
  });

  test('a command refused by its precheck (unknown SKU) stores no key and enqueues nothing', async () => {
    const jobs = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs`);
    const before = await jobs();
    await assert.rejects(
      apply(db.pool, { type: 'stock.receive', payload: { sku: 'NOPE', qty: '1' } }, 'k-nope'),
      (e) => e instanceof HaatError && e.exitCode === 4,
    );
    const stored = await db.pool.oneFirst(
      sql.type(z.object({ n: z.bigint() }))`select count(*) as n from idempotency_keys where key = 'k-nope'`,
    );
    assert.equal(stored, 0n);
    assert.equal(await jobs(), before);
  });

  test('a refusal decided at apply time (stock reserved after the precheck) is recorded as the outcome', async () => {
    // RICE has 5 on hand; the precheck sees room to take 4 away, then a reservation takes 3.
    const command = Command.parse({ type: 'stock.adjust', payload: { sku: 'RICE', delta: '-4', reason: 'count' } });
    const submitted = await submitCommand(db.pool, { scope: 'test', key: 'k-late', command, actor: 'test' });
    assert.equal(submitted.outcome, null);
    await db.pool.transaction((tx) => reserve(tx, 'order-1', [{ sku: 'RICE', qty: 3n }], null));
    const outcome = await applyCommand(db.pool, 'test', 'k-late', silent);
    assert.equal(outcome?.ok, false);
    assert.equal(outcome?.ok === false && outcome.error.code, 'conflict');
    assert.equal(await onHand('RICE'), 5n);
    const replay = await apply(db.pool, command, 'k-late');
    assert.deepEqual(replay, outcome, 'the refusal is the stored outcome');
  });

  test('a finished outcome cannot be rewritten, even by SQL', async () => {
    await assert.rejects(db.pool.query(sql.unsafe`update idempotency_keys set outcome = '{}' where key = 'k-replay'`), /cannot change/);
  });
});

describe('the worker applies queued commands', () => {
  test('a command submitted while a worker runs is applied by the worker; the CLI only waits', async () => {
    const worker = await startWorker({ url: db.url, pool: db.pool, log: silent, concurrency: 2, pollIntervalMs: 100 });
    try {
      const before = await onHand('TEA');
      const command = Command.parse(receive('7'));
      await submitCommand(db.pool, { scope: 'test', key: 'k-worker', command, actor: 'test' });
      const outcome = await awaitOutcome(db.pool, 'test', 'k-worker', {
        url: db.url,
        log: silent,
        timeoutMs: 20_000,
        inlineAfterMs: 60_000,
      });
      assert.equal(outcome.ok, true);
      assert.equal(await onHand('TEA'), before + 7n);
    } finally {
      await worker.stop();
    }
  });

  test('with no worker running, waiting applies the command inline and removes its job', async () => {
    const command = Command.parse(receive('1'));
    await submitCommand(db.pool, { scope: 'test', key: 'k-inline', command, actor: 'test' });
    const outcome = await awaitOutcome(db.pool, 'test', 'k-inline', { url: db.url, log: silent, timeoutMs: 20_000, inlineAfterMs: 0 });
    assert.equal(outcome.ok, true);
    const jobs = await db.pool.oneFirst(
      sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_worker.jobs where key = 'cmd:test:k-inline'`,
    );
    assert.equal(jobs, 0n);
  });

  test('purging removes finished keys older than the retention and keeps the rest', async () => {
    await db.pool.query(sql.unsafe`alter table idempotency_keys disable trigger idempotency_keys_frozen`);
    await db.pool.query(sql.unsafe`update idempotency_keys set completed_at = now() - interval '800 hours' where key = 'k-replay'`);
    await db.pool.query(sql.unsafe`alter table idempotency_keys enable trigger idempotency_keys_frozen`);
    const before = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from idempotency_keys`);
    await purgeIdempotencyKeysTask.run(
      {},
      { pool: db.pool, log: silent, helpers: {} as never, commands: createCommandBatcher(db.pool, silent) },
    );
    const after = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from idempotency_keys`);
    assert.equal(after, before - 1n);
    const gone = await db.pool.oneFirst(
      sql.type(z.object({ n: z.bigint() }))`select count(*) as n from idempotency_keys where key = 'k-replay'`,
    );
    assert.equal(gone, 0n);
  });
});
