// The reconcile hook of createTestDatabase() is itself tested: a test whose own assertions pass but which
// leaves a broken invariant behind must fail, naming the invariant and the row; saying why
// (corruptsOnPurpose) is the only way out.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../fixtures/corrupt-inventory.ts', import.meta.url));

function runFixture(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // Without NODE_TEST_CONTEXT the child is a test run of its own, not a subtest of this one.
    const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', fixture], {
      env: { ...inherited, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the reconcile hook on every test database', () => {
  test('fails the test that leaves an invariant broken, naming the invariant and the SKU', async () => {
    const { code, output } = await runFixture({});
    assert.notEqual(code, 0, output);
    // The test that left it broken is the one that fails (its own assertions passed).
    assert.match(output, /✖ adds a unit of stock behind the ledger of movements/);
    assert.match(output, /haat reconcile fails on the test database/);
    assert.match(output, /invariant 3 on_hand_is_movements: \[\{"sku":"GHOST","detail":"on_hand 3, movements 2/);
  });

  test('lets it pass only when the file says why it corrupts on purpose', async () => {
    const { code, output } = await runFixture({ HAAT_FIXTURE_SAYS_WHY: 'a fixture for this test' });
    assert.equal(code, 0, output);
    assert.match(output, /ℹ pass 1\n/);
  });
});
