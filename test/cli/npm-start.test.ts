// `npm start` is `haat up`: SIGTERM to npm (a supervisor's stop, a CI job's end) reaches haat, which
// stops in order and exits 0, leaving no haat or PostgreSQL process behind. (npm signals its shell;
// the script `exec`s node so that the signal is haat's.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from '../../src/db/embedded.ts';
import { repoRoot } from '../helpers/cli.ts';

const home = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-npm-start-'));
after(() => fs.rm(home, { recursive: true, force: true }));

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

test('npm start serves /readyz, and SIGTERM to npm stops haat cleanly with exit 0', async () => {
  const port = await freePort();
  const npm = spawn('npm', ['start'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HAAT_HOME: home, PORT: String(port), LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout.on('data', (d) => (output += d));
  npm.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => npm.on('close', (code) => resolve(code)));
  let ready = false;
  for (let i = 0; i < 240 && !ready; i++) {
    ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (!ready) await sleep(250);
  }
  assert.ok(ready, `npm start served /readyz: ${output}`);
  const haatPid = Number(/"pid":(\d+)/.exec(output)?.[1]);
  const server = JSON.parse(await fs.readFile(path.join(home, 'server.json'), 'utf8')) as { postmasterPid: number };
  assert.ok(isAlive(haatPid) && isAlive(server.postmasterPid));
  npm.kill('SIGTERM');
  assert.equal(await exited, 0, output);
  assert.match(output, /"msg":"stopped"/);
  for (let i = 0; i < 50 && (isAlive(haatPid) || isAlive(server.postmasterPid)); i++) await sleep(100);
  assert.equal(isAlive(haatPid), false, 'haat is gone');
  assert.equal(isAlive(server.postmasterPid), false, 'PostgreSQL is gone');
});
