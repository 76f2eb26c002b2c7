// `haat up` on the embedded PostgreSQL, as an operator runs it: a second haat process uses the same
// server, and Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops everything in
// order, leaving no PostgreSQL behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isAlive } from '../../src/db/embedded.ts';
import { haatBin, repoRoot, spawnCli } from '../helpers/cli.ts';

/** The process group id, from /proc/<pid>/stat (field 5, after the parenthesised command name). */
async function processGroup(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

const home = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-up-'));
after(() => fs.rm(home, { recursive: true, force: true }));

describe('haat up', () => {
  test('runs everything on the embedded PostgreSQL, shares it with a second command, and stops cleanly on Ctrl-C', async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, HAAT_HOME: home, LOG_LEVEL: 'warn' };
    const up = spawn(process.execPath, [haatBin, 'up', '--port', '0', '--host', '127.0.0.1', '--concurrency', '2', '--json'], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, like a command started at a terminal.
      detached: true,
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

      assert.notEqual(
        await processGroup(server.postmasterPid),
        await processGroup(started.pid),
        'PostgreSQL is outside the terminal’s process group, so Ctrl-C reaches haat alone and haat stops it last',
      );
      process.kill(-started.pid, 'SIGINT');
      assert.equal(await exited, 0, stderr);
      assert.equal(isAlive(server.postmasterPid), false, 'no PostgreSQL left running');
      await assert.rejects(fs.access(path.join(home, 'server.json')), 'the address file is removed');
    } finally {
      if (up.exitCode === null) up.kill('SIGKILL');
    }
  });
});
