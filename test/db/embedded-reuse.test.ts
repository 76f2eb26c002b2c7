// Reusing a running embedded server: server.json and postmaster.pid outlive an unclean stop, and
// their pids can be recycled by unrelated processes. Such leftovers are never taken for a server,
// and the processes that now have those pids are never signalled.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { ensureEmbeddedServer, isAlive } from '../../src/db/embedded.ts';
import { silent } from '../helpers/seed.ts';

const home = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-reuse-'));
const sleepers = [spawn('sleep', ['300']), spawn('sleep', ['300'])];
after(async () => {
  for (const s of sleepers) s.kill();
  await fs.rm(home, { recursive: true, force: true });
});

test('leftovers whose pids now belong to other processes: not reused, not signalled, a real server started', async () => {
  const first = await ensureEmbeddedServer({ home, log: silent, settings: { fsync: 'off' } });
  const dataDir = first.info.dataDir;
  await first.stop();
  const [owner, postmaster] = sleepers.map((s) => s.pid as number) as [number, number];
  const port = first.info.port;
  await fs.writeFile(path.join(home, 'server.json'), JSON.stringify({ ...first.info, ownerPid: owner, postmasterPid: postmaster }));
  // What an unclean stop leaves: PostgreSQL's own lock file, naming the recycled pid, the port, `ready`.
  await fs.writeFile(path.join(dataDir, 'postmaster.pid'), `${postmaster}\n${dataDir}\n0\n${port}\n\n127.0.0.1\n0 0\nready   \n`);
  const server = await ensureEmbeddedServer({ home, log: silent, settings: { fsync: 'off' } });
  try {
    assert.equal(server.owned, true, 'it started a server of its own');
    assert.ok(isAlive(owner) && isAlive(postmaster), 'the processes that have those pids were not signalled');
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    assert.equal((await client.query('select 1 as one')).rows[0].one, 1);
    await client.end();
    const again = await ensureEmbeddedServer({ home, log: silent });
    assert.equal(again.owned, false, 'the running one is reused');
    assert.equal(again.info.port, server.info.port);
  } finally {
    await server.stop();
  }
});
