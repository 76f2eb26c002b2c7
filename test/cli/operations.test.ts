// Operator controls on a real PostgreSQL: settings, flags, maintenance mode (held jobs, refused
// writes, audited bypass), the append-only audit log, prompts, and the job queue.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Prompter } from '../../src/cli/prompts.ts';
import { pgErrorOf } from '../../src/db/errors.ts';
import { sql } from '../../src/db/sql.ts';
import { startWorker } from '../../src/worker/run-worker.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestIntake } from '../helpers/intake.ts';
import { seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 10 });
const env = { DATABASE_URL: db.url, HAAT_WAIT_FOR_WORKER_MS: '0' };
const cli = (...argv: string[]) => runCli(argv, { env });
const as = (actor: string, ...argv: string[]) => runCli(argv, { env: { ...env, HAAT_ACTOR: actor } });
const json = (stdout: string) => JSON.parse(stdout);
const auditCount = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from audit_log`);
const onHand = () => db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select on_hand as n from inventory where sku = 'TEA-1KG'`);

const intake = await startTestIntake(db.pool);

async function post(id: string, ref: string): Promise<number> {
  const body = JSON.stringify({
    type: 'order.placed',
    timestamp: '2026-11-25T10:00:00Z',
    data: { ref, buyer: 'b', currency: 'INR', items: [{ sku: 'TEA-1KG', qty: 1 }] },
  });
  return intake.send('storefront', id, body);
}

describe('settings', () => {
  test('list and get show values with defaults; set is audited with old and new value, actor and reason', async () => {
    const list = json((await cli('settings', 'list', '--json')).stdout);
    assert.deepEqual(
      list.map((s: { key: string; value: number }) => [s.key, s.value]),
      [
        ['reservation_ttl_seconds', 900],
        ['commission_bps', 1000],
        ['idempotency_retention_hours', 720],
        ['webhook_timeout_ms', 15_000],
        ['webhook_retry_second_ms', 1_000],
      ],
    );
    const set = await as('asha', 'settings', 'set', 'reservation_ttl_seconds', '600', '--reason', 'faster turnover', '--json');
    assert.equal(set.code, 0, set.stdout);
    assert.equal(json((await cli('settings', 'get', 'reservation_ttl_seconds', '--json')).stdout).value, 600);
    const [entry] = json((await cli('audit', '--target', 'setting:reservation_ttl_seconds', '--json')).stdout);
    assert.deepEqual(
      [entry.actor, entry.action, entry.old_value, entry.new_value, entry.reason],
      ['asha', 'settings.set', 900, 600, 'faster turnover'],
    );
  });

  test('invalid values exit 2 with no audit row; an unknown key exits 4', async () => {
    const before = await auditCount();
    for (const value of ['5', '1.5', 'abc', '', '99999999999', '-1']) {
      assert.equal((await cli('settings', 'set', 'reservation_ttl_seconds', value, '--reason', 'x')).code, 2, value);
    }
    assert.equal((await cli('settings', 'set', 'commission_bps', '10001', '--reason', 'x')).code, 2);
    assert.equal((await cli('settings', 'set', 'commission_bps', '100')).code, 2, 'no reason');
    assert.equal((await cli('settings', 'set', 'no_such_key', '1', '--reason', 'x')).code, 4);
    assert.equal(await auditCount(), before);
  });

  test('concurrent sets never lose an update: each audit row’s old value is the previous row’s new value', async () => {
    await Promise.all(['100', '200', '300', '400', '500'].map((v) => cli('settings', 'set', 'commission_bps', v, '--reason', `race ${v}`)));
    const rows = json((await cli('audit', '--target', 'setting:commission_bps', '--json')).stdout).reverse();
    assert.equal(rows.length, 5);
    for (let i = 1; i < rows.length; i++) assert.equal(rows[i].old_value, rows[i - 1].new_value);
    assert.equal(json((await cli('settings', 'get', 'commission_bps', '--json')).stdout).value, rows.at(-1).new_value);
    await cli('settings', 'set', 'commission_bps', '1000', '--reason', 'restore');
  });
});

describe('flags', () => {
  test('a disabled flag is used for real: order.placed webhooks get 503 and nothing is stored; enable restores', async () => {
    assert.equal((await cli('flags', 'disable', 'storefront_order_placed', '--reason', 'storefront outage')).code, 0);
    assert.equal(await post('evt_flag_1', 'F-1'), 503);
    const stored = await db.pool.oneFirst(
      sql.type(z.object({ n: z.bigint() }))`select count(*) as n from webhook_events where webhook_id = 'evt_flag_1'`,
    );
    assert.equal(stored, 0n);
    assert.equal((await cli('flags', 'enable', 'storefront_order_placed', '--reason', 'back')).code, 0);
    assert.equal(await post('evt_flag_1', 'F-1'), 202);
    const flags = json((await cli('flags', 'list', '--json')).stdout);
    assert.deepEqual(
      flags.map((f: { name: string; enabled: boolean }) => [f.name, f.enabled]),
      [['storefront_order_placed', true]],
    );
    assert.equal((await cli('flags', 'enable', 'no_such_flag', '--reason', 'x')).code, 4);
  });
});

describe('maintenance mode', () => {
  test('holds domain jobs (queued, attempts unchanged), refuses CLI writes with exit 5, allows an audited bypass; off releases everything', async () => {
    const worker = await startWorker({ url: db.url, pool: db.pool, log: silent, concurrency: 2, pollIntervalMs: 100, heartbeatMs: 500 });
    try {
      assert.equal((await as('asha', 'maintenance', 'on', '--reason', 'db upgrade', '--message', 'back at 14:00', '--yes')).code, 0);
      assert.equal(json((await cli('maintenance', 'status', '--json')).stdout).enabled, true);

      assert.equal(await post('evt_maint_1', 'MT-1'), 202, 'webhooks are still accepted');
      await sleep(1_000);
      const job = await db.pool.one(sql.type(z.object({ attempts: z.number(), locked_at: z.string().nullable() }))`
        select attempts, locked_at from graphile_worker.jobs where key = 'cmd:webhook:storefront:evt_maint_1'`);
      assert.deepEqual(job, { attempts: 0, locked_at: null }, 'queued, not failed, no attempt used');

      const before = await onHand();
      const refused = await cli('stock', 'receive', 'TEA-1KG', '5', '--json');
      assert.equal(refused.code, 5);
      assert.equal(json(refused.stdout).error.code, 'maintenance_mode');
      assert.equal(await onHand(), before, 'nothing written');
      const keys = await db.pool.oneFirst(
        sql.type(
          z.object({ n: z.bigint() }),
        )`select count(*) as n from idempotency_keys where scope = 'cli' and command_type = 'stock.receive' and payload->>'qty' = '5'`,
      );
      assert.equal(keys, 0n);

      const bypass = await as('bikash', 'stock', 'receive', 'TEA-1KG', '5', '--bypass-maintenance', '--reason', 'urgent restock', '--json');
      assert.equal(bypass.code, 0, bypass.stdout);
      assert.equal(await onHand(), before + 5n);
      const [audited] = json((await cli('audit', '--actor', 'bikash', '--json')).stdout);
      assert.deepEqual([audited.action, audited.actor, audited.reason], ['maintenance.bypass', 'bikash', 'urgent restock']);
      assert.equal((await cli('stock', 'receive', 'TEA-1KG', '1', '--bypass-maintenance', '--json')).code, 2, 'a bypass needs a reason');

      // Reads and operator tools still work.
      for (const argv of [
        ['stock', 'show', 'TEA-1KG'],
        ['settings', 'list'],
        ['flags', 'list'],
        ['audit'],
        ['order', 'list'],
        ['jobs', 'list'],
      ]) {
        assert.equal((await cli(...argv, '--json')).code, 0, argv.join(' '));
      }

      assert.equal((await as('asha', 'maintenance', 'off', '--reason', 'upgrade done')).code, 0);
      for (let deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(100)) {
        const state = await db.pool.maybeOneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where ref = 'MT-1'`);
        if (state) break;
      }
      assert.equal(
        await db.pool.maybeOneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where ref = 'MT-1'`),
        'pending',
        'the held event completed once maintenance was off',
      );
      const trail = json((await cli('audit', '--target', 'maintenance', '--json')).stdout);
      assert.deepEqual(
        trail.map((r: { action: string; actor: string; reason: string }) => [r.action, r.actor, r.reason]),
        [
          ['maintenance.off', 'asha', 'upgrade done'],
          ['maintenance.on', 'asha', 'db upgrade'],
        ],
      );
    } finally {
      await cli('maintenance', 'off', '--reason', 'test cleanup');
      await worker.stop();
    }
  });

  test('maintenance on needs confirmation without a terminal (--yes), and a reason', async () => {
    assert.equal((await cli('maintenance', 'on', '--reason', 'x')).code, 2);
    assert.equal((await cli('maintenance', 'on', '--yes')).code, 2);
    assert.equal(json((await cli('maintenance', 'status', '--json')).stdout).enabled, false);
  });
});

describe('the audit log', () => {
  test('UPDATE, DELETE and TRUNCATE on it fail in the database', async () => {
    for (const statement of [
      sql.unsafe`update audit_log set reason = 'rewritten'`,
      sql.unsafe`delete from audit_log`,
      sql.unsafe`truncate audit_log`,
    ]) {
      const error = await db.pool.query(statement).catch((e: unknown) => e);
      assert.equal(pgErrorOf(error)?.code, 'HA000', statement.sql);
    }
  });

  test('control, line-separator and text-direction characters in an actor or reason are refused by the database too', async () => {
    const before = await auditCount();
    const cases: readonly [string, string][] = [
      ['ops\nroot', 'ok'],
      ['ops', 'ok\u2028forged line'],
      ['ops', 'ok\u202Egnp.exe'],
      ['ops\u0007', 'ok'],
    ];
    for (const [actor, reason] of cases) {
      const error = await db.pool
        .query(sql.unsafe`insert into audit_log (actor, action, target, reason) values (${actor}, 'settings.set', 'setting:x', ${reason})`)
        .catch((e: unknown) => e);
      assert.equal(pgErrorOf(error)?.code, '23514', JSON.stringify([actor, reason]));
    }
    // Indic text with zero-width (non-)joiners is fine.
    await db.pool.query(
      sql.unsafe`insert into audit_log (actor, action, target, reason) values ('অসম\u200Cৰ', 'settings.set', 'setting:x', 'ঠিক\u200D আছে')`,
    );
    assert.equal(await auditCount(), before + 1n);
  });

  test('a change that rolls back leaves no audit row', async () => {
    const before = await auditCount();
    await db.pool
      .transaction(async (tx) => {
        await tx.query(
          sql.unsafe`insert into audit_log (actor, action, target, reason) values ('x', 'settings.set', 'setting:x', 'will roll back')`,
        );
        throw new Error('abort');
      })
      .catch(() => undefined);
    assert.equal(await auditCount(), before);
  });
});

describe('prompts at a terminal', () => {
  test('asks for a missing flag with a select, and for a confirmation before maintenance on', async () => {
    const asked: string[] = [];
    const person: Prompter = {
      interactive: true,
      input: async (q) => {
        asked.push(`input:${q.name}`);
        return 'testing prompts';
      },
      select: async <T extends string>(q: { name: string; choices: readonly { value: T }[] }) => {
        asked.push(`select:${q.name}:${q.choices.map((c) => c.value).join(',')}`);
        return q.choices[0]?.value as T;
      },
      confirm: async (q) => {
        asked.push(`confirm:${q.message}`);
        return false;
      },
    };
    const disabled = await runCli(['flags', 'disable', '--json'], { env, interactive: true, prompter: person });
    assert.equal(disabled.code, 0, disabled.stdout);
    assert.deepEqual(asked.slice(0, 2), ['select:flag:storefront_order_placed', 'input:reason']);
    await cli('flags', 'enable', 'storefront_order_placed', '--reason', 'restore');
    const declined = await runCli(['maintenance', 'on', '--reason', 'x'], { env, interactive: true, prompter: person });
    assert.equal(declined.code, 2);
    assert.match(asked.at(-1) ?? '', /^confirm:Turn maintenance mode on\?/);
    assert.equal(json((await cli('maintenance', 'status', '--json')).stdout).enabled, false, 'declined: nothing changed');
  });
});

describe('jobs', () => {
  test('lists failed jobs and retries one, audited', async () => {
    const id = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
      select (graphile_worker.add_job('ping'::text, '{}'::json, max_attempts => 1)).id::text as id`);
    await db.pool.query(sql.unsafe`update graphile_worker._private_jobs set attempts = 1, last_error = 'boom' where id = ${id}::bigint`);
    const failed = json((await cli('jobs', 'list', '--failed', '--json')).stdout);
    assert.deepEqual(
      failed.map((j: { id: string; last_error: string }) => [j.id, j.last_error]),
      [[id, 'boom']],
    );
    assert.equal((await cli('jobs', 'retry', id, '--reason', 'transient')).code, 0);
    assert.deepEqual(json((await cli('jobs', 'list', '--failed', '--json')).stdout), []);
    assert.equal((await cli('jobs', 'retry', '999999', '--reason', 'x')).code, 4);
  });
});
