// A worker's logs: a routine completion is debug, never info, and no line carries a job's whole
// row (its payload) — only its id and attempt.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { submitCommand } from '../../src/commands/submit-command.ts';
import { sql } from '../../src/db/sql.ts';
import { Command } from '../../src/domain/commands.ts';
import { startWorker } from '../../src/worker/run-worker.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { memoryLog } from '../helpers/memory-log.ts';
import { seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 1 });

test('job completions are logged at debug, with the job id and attempt but not the job row', async () => {
  const { lines, log } = memoryLog();
  const worker = await startWorker({ url: db.url, pool: db.pool, log, concurrency: 1, pollIntervalMs: 100 });
  try {
    const command = Command.parse({ type: 'stock.receive', payload: { sku: 'TEA-1KG', qty: '3', reason: 'a secret note' } });
    await submitCommand(db.pool, { scope: 'test', key: 'logs-1', command, actor: 'test' });
    for (let i = 0; ; i++) {
      const done = await db.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
        select count(*) as n from idempotency_keys where key = 'logs-1' and state = 'done'`);
      if (done === 1n && lines.some((l) => /^Completed task/.test(l.msg))) break;
      assert.ok(i < 400, 'the command was applied and its job completed');
      await sleep(50);
    }
  } finally {
    await worker.stop();
  }
  const completed = lines.filter((l) => /^Completed task/.test(l.msg));
  assert.ok(completed.length > 0);
  for (const line of completed) {
    assert.equal(line.level, 20, 'debug');
    assert.match(String(line.jobId), /^\d+$/);
  }
  const applied = lines.filter((l) => l.msg === 'command applied');
  assert.ok(applied.length > 0 && applied.every((l) => l.level === 20));
  for (const line of lines) {
    assert.equal(line.job, undefined, `no job row in: ${line.msg}`);
    assert.doesNotMatch(JSON.stringify(line), /a secret note/, `no payload in: ${line.msg}`);
  }
  assert.equal(lines.filter((l) => l.level >= 30 && /Completed/.test(l.msg)).length, 0);
});
