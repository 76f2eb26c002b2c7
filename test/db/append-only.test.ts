// Every history table refuses UPDATE, DELETE and TRUNCATE, by any path, SQL included.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from '../../src/db/sql.ts';
import { createTestDatabase } from '../helpers/db.ts';

const db = await createTestDatabase();

const HISTORY = [
  'audit_log',
  'inventory_movements',
  'order_transitions',
  'order_requested_items',
  'journal_entries',
  'postings',
  'payments',
  'webhook_events',
  'webhook_event_outcomes',
] as const;

for (const table of HISTORY) {
  test(`${table} refuses TRUNCATE`, async () => {
    await assert.rejects(db.pool.query(sql.unsafe`truncate ${sql.identifier([table])} cascade`), new RegExp(`${table} is append-only`));
  });
}
