// A maintenance toggle is never starved by a stream of commands: each command holds the maintenance
// row FOR SHARE while it runs, and their overlap never ends under load (an import's batches, many
// workers). The toggle waits for the commands running when it asks, not for the stream to stop.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { maintenanceOnForCommand, setMaintenance } from '../../src/db/operations.ts';
import { createDatabasePool } from '../../src/db/pool.ts';
import { inTransaction } from '../../src/db/transaction.ts';
import { createTestDatabase } from '../helpers/db.ts';

const db = await createTestDatabase();

test('maintenance on gets through a never-ending overlap of commands', async () => {
  const pool = await createDatabasePool(db.url, { maxPoolSize: 8 });
  const ITERATIONS = 40;
  const done = [0, 0, 0, 0];
  let toggled = false;
  try {
    // Four lanes of commands, each holding the row for 100 ms, started so that they always overlap.
    const lanes = done.map(async (_, lane) => {
      await sleep(lane * 25);
      for (let i = 0; i < ITERATIONS && !toggled; i++) {
        await pool.transaction(async (tx) => {
          await maintenanceOnForCommand(tx);
          await sleep(100);
        });
        done[lane] = (done[lane] ?? 0) + 1;
      }
    });
    await sleep(300);
    await inTransaction(pool, (tx) => setMaintenance(tx, true, null, 'test', 'starvation test'));
    const progress = done.reduce((a, b) => a + b, 0);
    toggled = true;
    await Promise.all(lanes);
    assert.ok(progress < done.length * ITERATIONS, `the toggle did not wait for the stream to end (${progress} commands had run)`);
    await inTransaction(pool, (tx) => setMaintenance(tx, false, null, 'test', 'starvation test'));
  } finally {
    await pool.end();
  }
});
