// haat reconcile: all invariants hold after real activity (exit 0); then each invariant is broken
// in turn with SQL and reported with the offending row (exit 1).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { reconcile } from '../../src/db/reconcile.ts';
import { sql } from '../../src/db/sql.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { apply, mustApply, seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase({ corruptsOnPurpose: 'this file breaks each invariant with SQL' });
await seedCatalog(db.pool, { A: 20, B: 20 });
const place = async (ref: string, sku: string) =>
  (await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b', ref, items: [{ sku, qty: '1' }] } })) as {
    id: string;
    total: { amount: number };
  };
const paid = await place('R-paid', 'A');
await mustApply(db.pool, { type: 'order.confirm', payload: { order: 'R-paid', payment_ref: 'pay-r', amount: String(paid.total.amount) } });
const pending = await place('R-pending', 'B');
await place('R-cancel', 'A');
await mustApply(db.pool, { type: 'order.cancel', payload: { order: 'R-cancel', reason: 'x' } });
await apply(db.pool, { type: 'order.place', payload: { buyer: 'b', ref: 'R-rejected', items: [{ sku: 'A', qty: '999' }] } });

const env = { DATABASE_URL: db.url };
const check = async (name: string) => (await reconcile(db.pool)).find((c) => c.name === name);

describe('haat reconcile', () => {
  test('every invariant holds after real activity: exit 0, each check listed', async () => {
    const result = await runCli(['reconcile', '--json'], { env });
    assert.equal(result.code, 0, result.stdout);
    const report = JSON.parse(result.stdout);
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.checks.map((c: { invariant: number; ok: boolean }) => [c.invariant, c.ok]),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => [n, true]),
    );
    const human = await runCli(['reconcile'], { env });
    assert.match(human.stdout, /ledger_balances\s+ok/);
  });

  test('each broken invariant is reported with its offending row, and reconcile exits 1', async () => {
    const cases: [string, ReturnType<typeof sql.unsafe>[], (v: Record<string, unknown>) => boolean][] = [
      ['on_hand_is_movements', [sql.unsafe`update inventory set on_hand = on_hand + 1 where sku = 'B'`], (v) => v.sku === 'B'],
      [
        'reserved_within_on_hand',
        [
          sql.unsafe`alter table inventory drop constraint inventory_reserved_within_on_hand`,
          sql.unsafe`update inventory set reserved = on_hand + 5 where sku = 'A'`,
        ],
        (v) => v.sku === 'A',
      ],
      ['reserved_is_active_reservations', [], (v) => v.sku === 'A'],
      [
        'reservations_match_state',
        [
          sql.unsafe`alter table reservations disable trigger reservations_close_once`,
          sql.unsafe`update reservations set state = 'released', closed_at = now() where holder = ${pending.id}`,
        ],
        (v) => v.order_ref === 'R-pending',
      ],
      [
        'transitions_form_a_chain',
        [
          sql.unsafe`insert into order_transitions (order_id, from_state, to_state, actor) values (${pending.id}::uuid, 'shipped', 'delivered', 'intruder')`,
        ],
        (v) => v.order_ref === 'R-pending',
      ],
      [
        'money_snapshot_matches_hash',
        [
          sql.unsafe`alter table orders disable trigger orders_freeze_money`,
          sql.unsafe`update orders set snapshot_hash = repeat('0', 64) where ref = 'R-paid'`,
        ],
        (v) => v.order_ref === 'R-paid',
      ],
      [
        'ledger_balances',
        [
          sql.unsafe`alter table postings disable trigger postings_balance`,
          sql.unsafe`insert into postings (entry_id, account, amount, currency) select min(id), 'platform_commission', -1, 'INR' from journal_entries`,
        ],
        (v) => v.kind === 'entry_unbalanced',
      ],
      [
        'events_have_outcomes',
        [
          sql.unsafe`insert into webhook_events (source, webhook_id, event_type, body_sha256, body) values ('payments', 'evt_lost', 'payment.failed', repeat('a', 64), '{}')`,
        ],
        (v) => v.subject === 'payments/evt_lost',
      ],
      [
        'events_have_outcomes',
        [
          sql.unsafe`insert into webhook_events (source, webhook_id, event_type, body_sha256, body) values ('storefront', 'evt_ghost', 'order.placed', repeat('b', 64), '{}')`,
          sql.unsafe`insert into webhook_event_outcomes (source, webhook_id, code, order_ref, attempts, outcome) values ('storefront', 'evt_ghost', 'not_found', 'S-GHOST', 1, '{"ok": false}')`,
        ],
        (v) => v.kind === 'placed_event_without_order' && v.subject === 'storefront/evt_ghost',
      ],
      [
        'events_have_outcomes',
        [
          sql.unsafe`insert into webhook_events (source, webhook_id, event_type, body_sha256, body) values ('logistics', 'evt_twice', 'shipment.delivered', repeat('c', 64), '{}')`,
          sql.unsafe`insert into idempotency_keys (scope, key, fingerprint, command_type, payload, actor, state, outcome, completed_at)
                     values ('webhook:logistics', 'evt_twice', repeat('d', 64), 'order.deliver', '{"order": "R-paid"}', 'x', 'done', '{"ok": true, "result": {}}', now())`,
          sql.unsafe`insert into webhook_event_outcomes (source, webhook_id, code, order_ref, attempts, outcome) values ('logistics', 'evt_twice', 'transition_not_allowed', 'R-paid', 1, '{"ok": false}')`,
        ],
        (v) => v.kind === 'event_outcome_disagrees' && v.subject === 'logistics/evt_twice',
      ],
      [
        'events_have_outcomes',
        [
          sql.unsafe`insert into idempotency_keys (scope, key, fingerprint, command_type, payload, actor, state, outcome, completed_at)
                     values ('cli', 'k-ghost', repeat('e', 64), 'order.place', '{"ref": "R-ghost", "buyer": "b", "items": []}', 'x', 'done', '{"ok": false, "error": {"code": "not_found", "message": "", "details": {}}}', now())`,
        ],
        (v) => v.kind === 'placement_without_order' && v.subject === 'cli/k-ghost',
      ],
      [
        'events_have_outcomes',
        [
          sql.unsafe`insert into orders (ref, buyer, currency, state, total_amount, reject_reason) values ('R-empty', 'b', 'INR', 'rejected', 0, 'unknown_sku')`,
        ],
        (v) => v.kind === 'rejected_order_without_lines' && v.subject === 'R-empty',
      ],
      [
        'lifecycle_holds',
        [sql.unsafe`update order_items set shipped = qty where order_id = ${paid.id}::uuid`],
        (v) => v.kind === 'shipped_matches_shipments' && v.subject === 'R-paid',
      ],
    ];
    for (const [name, statements, offender] of cases) {
      for (const statement of statements) await db.pool.query(statement);
      const found = await check(name);
      assert.equal(found?.ok, false, `${name} is reported`);
      assert.ok(found?.violations.some(offender), `${name} names the offending row: ${JSON.stringify(found?.violations)}`);
    }
    const result = await runCli(['reconcile', '--json'], { env });
    assert.equal(result.code, 1);
    const doc = JSON.parse(result.stdout) as { error: { code: string; details: { checks: { ok: boolean }[] } } };
    assert.equal(doc.error.code, 'invariant_violation');
    assert.equal(doc.error.details.checks.filter((c) => !c.ok).length, 9);
    const failedJob = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
      select (graphile_worker.add_job('ping'::text, '{}'::json, max_attempts => 1)).id::text as id`);
    await db.pool.query(
      sql.unsafe`update graphile_worker._private_jobs set attempts = 1, last_error = 'boom' where id = ${failedJob}::bigint`,
    );
    assert.ok(
      (await check('events_have_outcomes'))?.violations.some((v) => v.kind === 'job_failed' && v.subject === failedJob),
      'a failed job is not silent',
    );
  });
});
