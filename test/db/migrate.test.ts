import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { committedMigrations, migrateDatabase, migrationStatus, migrationsCurrent } from '../../src/db/migrate.ts';
import { sql } from '../../src/db/sql.ts';
import { createLogger } from '../../src/log.ts';
import { createTestDatabase } from '../helpers/db.ts';

const log = createLogger('silent');
const committed = await committedMigrations();

describe('migrations', () => {
  test('an empty database reports every committed migration as pending and is not current', async () => {
    const db = await createTestDatabase({ template: false });
    const status = await migrationStatus(db.pool);
    assert.deepEqual(status.pending, committed);
    assert.equal(status.current, false);
    assert.equal(await migrationsCurrent(db.pool, committed.at(-1)), false);
  });

  test('migrating twice in a row applies each migration once', async () => {
    const db = await createTestDatabase({ template: false });
    await migrateDatabase(db.url, log);
    await migrateDatabase(db.url, log);
    const status = await migrationStatus(db.pool);
    assert.deepEqual(
      status.applied.map((m) => m.filename),
      committed,
    );
    assert.deepEqual(status.pending, []);
    assert.equal(status.current, true);
    assert.ok((status.workerSchemaVersion ?? 0) > 0);
    assert.equal(await migrationsCurrent(db.pool, committed.at(-1)), true);
  });

  test('four concurrent migrations on one database apply each migration once and all succeed', async () => {
    const db = await createTestDatabase({ template: false });
    await Promise.all([1, 2, 3, 4].map(() => migrateDatabase(db.url, log)));
    const count = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from graphile_migrate.migrations`);
    assert.equal(count, BigInt(committed.length));
    const instances = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`select count(*) as n from app_info`);
    assert.equal(instances, 1n);
  });
});
