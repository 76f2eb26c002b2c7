// `haat up` on the embedded PostgreSQL, as an operator runs it: a second haat process uses the same
// server, and SIGTERM stops everything, leaving no PostgreSQL behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isAlive } from '../../src/db/embedded.ts';
import { haatBin, repoRoot, spawnCli } from '../helpers/cli.ts';

const home = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-up-'));
after(() => fs.rm(home, { recursive: true, force: true }));

describe('haat up', () => {
  test('runs everything on the embedded PostgreSQL, shares it with a second command, and stops cleanly', async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, HAAT_HOME: home, LOG_LEVEL: 'warn' };
    const up = spawn(process.execPath, [haatBin, 'up', '--port', '0', '--host', '127.0.0.1', '--concurrency', '2', '--json'], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    up.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => up.on('close', (code) => resolve(code)));
    try {
      const started = await new Promise<{ intake_url: string; data_dir: string; database: string; pid: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`haat up did not start: ${stderr}`)), 60_000);
        up.stdout.on('data', (d) => {
          stdout += d;
          try {
            resolve(JSON.parse(stdout));
            clearTimeout(timer);
          } catch {
            // not a whole document yet
          }
        });
        up.on('close', () => reject(new Error(`haat up exited early: ${stderr}`)));
      });
      assert.equal(started.data_dir, path.join(home, 'pg'));
      assert.equal((await fetch(`${started.intake_url}/readyz`)).status, 200);

      const server = JSON.parse(await fs.readFile(path.join(home, 'server.json'), 'utf8'));
      assert.equal(server.ownerPid, started.pid);
      assert.ok(isAlive(server.postmasterPid));

      const status = await spawnCli(['db', 'status', '--json'], { env });
      assert.equal(status.code, 0, status.stderr);
      const parsed = JSON.parse(status.stdout);
      assert.equal(parsed.embedded, true);
      assert.match(
        parsed.database,
        new RegExp(`:${server.port}/haat .*run by pid ${started.pid}`),
        'the second process reused the running server',
      );
      assert.equal(parsed.migrations.current, true);
      assert.ok(isAlive(server.postmasterPid), 'the second process did not stop a server it did not start');

      up.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.equal(isAlive(server.postmasterPid), false, 'no PostgreSQL left running');
      await assert.rejects(fs.access(path.join(home, 'server.json')), 'the address file is removed');
    } finally {
      if (up.exitCode === null) up.kill('SIGKILL');
    }
  });
});
