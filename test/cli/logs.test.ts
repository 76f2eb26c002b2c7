// Logs (docs/contract.md, Logs): JSON lines on stderr (time ISO-8601 in UTC), readable lines when
// stderr is a terminal, LOG_FORMAT=json|pretty overriding the choice; readable times in the operator's
// zone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { haatBin, repoRoot, spawnCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 1 });
// A write with no worker alive logs at debug that the CLI applies it itself.
const WRITE = ['stock', 'receive', 'TEA-1KG', '1'];
const env = { DATABASE_URL: db.url, LOG_LEVEL: 'debug' };
const PRETTY = /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} IST\] (DEBUG|INFO)/m;

describe('logs', () => {
  test('without a terminal: JSON lines, each with its time in UTC', async () => {
    const result = await spawnCli(WRITE, { env });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stderr.split('\n').filter(Boolean);
    assert.ok(lines.length > 0, 'debug lines were written');
    for (const line of lines.filter((l) => !l.startsWith('idempotency key:')))
      assert.match(JSON.parse(line).time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('LOG_FORMAT=pretty: readable lines, times in TZ', async () => {
    const result = await spawnCli(WRITE, { env: { ...env, LOG_FORMAT: 'pretty', TZ: 'Asia/Kolkata' } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, PRETTY);
    assert.doesNotMatch(result.stderr, /^\{"level"/m);
  });

  test('at a terminal: readable by default; LOG_FORMAT=json keeps JSON', async () => {
    const atTerminal = (extra: Record<string, string>) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn('script', ['-q', '-e', '-c', `'${process.execPath}' '${haatBin}' ${WRITE.join(' ')}`, '/dev/null'], {
          cwd: repoRoot,
          env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, TZ: 'Asia/Kolkata', TERM: 'dumb', NO_COLOR: '1', ...extra },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let screen = '';
        child.stdout.on('data', (d) => (screen += d));
        child.on('error', reject);
        child.on('close', () => resolve(screen.replaceAll('\r', '')));
        child.stdin.end();
      });
    assert.match(await atTerminal({}), PRETTY);
    assert.match(await atTerminal({ LOG_FORMAT: 'json' }), /^\{"level":20,"time":"\d{4}-/m);
  });

  test('a bad LOG_FORMAT is refused with exit 2', async () => {
    const result = await spawnCli(['order', 'list', '--json'], { env: { ...env, LOG_FORMAT: 'xml' } });
    assert.equal(result.code, 2);
    assert.equal(JSON.parse(result.stdout).error.code, 'invalid_input');
  });
});
