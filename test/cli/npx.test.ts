// `npx haat …` prints haat's output only (docs/contract.md, Set-up), even when npm runs on an older
// Node than the pinned Node 24 (it would warn EBADENGINE on every call without the project's .npmrc).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { repoRoot } from '../helpers/cli.ts';

function npx(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', args, {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('npx haat --version prints the version and nothing else', async () => {
  const result = await npx(['haat', '--version']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, '0.1.0\n');
  assert.equal(result.stderr, '');
});

test("npx haat with a usage error prints only haat's own error", async () => {
  const result = await npx(['haat', 'no-such-command', '--json']);
  assert.equal(result.code, 2);
  assert.equal(JSON.parse(result.stdout).error.code, 'invalid_input');
  assert.equal(result.stderr, '');
});
