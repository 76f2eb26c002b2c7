// The real @inquirer/prompts at a real pseudo-terminal (util-linux `script`): a missing argument
// chosen with a select, and a confirmation answered with y.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { sql } from '../../src/db/sql.ts';
import { haatBin, repoRoot } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';

const db = await createTestDatabase();

/** Runs haat in a pseudo-terminal; each time the screen shows `waitFor`, types `keys`. */
function atTerminal(args: string, answers: readonly { waitFor: RegExp; keys: string }[]): Promise<{ code: number | null; screen: string }> {
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const child = spawn('script', ['-q', '-e', '-c', `${quote(process.execPath)} ${quote(haatBin)} ${args}`, '/dev/null'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url, LOG_LEVEL: 'error', HAAT_ACTOR: 'pty', TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  let next = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    screen += chunk.toString();
    const answer = answers[next];
    if (answer?.waitFor.test(screen)) {
      next++;
      setTimeout(() => child.stdin.write(answer.keys), 100);
    }
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}

describe('prompts at a real terminal', () => {
  test('a missing flag is chosen from a select and a missing reason typed in', async () => {
    const result = await atTerminal('flags disable', [
      { waitFor: /Flag/, keys: '\r' },
      { waitFor: /Reason/, keys: 'typed at a terminal\r' },
    ]);
    assert.equal(result.code, 0, result.screen);
    const row = await db.pool.one(
      sql.type(z.object({ enabled: z.boolean() }))`select enabled from feature_flags where name = 'storefront_order_placed'`,
    );
    assert.equal(row.enabled, false);
    const reason = await db.pool.oneFirst(
      sql.type(z.object({ reason: z.string() }))`select reason from audit_log order by id desc limit 1`,
    );
    assert.equal(reason, 'typed at a terminal');
  });

  test('maintenance on asks for confirmation; y turns it on', async () => {
    const result = await atTerminal('maintenance on --reason pty', [{ waitFor: /Turn maintenance mode on\?/, keys: 'y\r' }]);
    assert.equal(result.code, 0, result.screen);
    assert.equal(await db.pool.oneFirst(sql.type(z.object({ enabled: z.boolean() }))`select enabled from maintenance`), true);
  });
});
