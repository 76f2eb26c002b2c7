import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createOutput } from '../../src/cli/output.ts';
import { confirmOrRefuse, type Prompter, requireValue } from '../../src/cli/prompts.ts';
import { toHaatError } from '../../src/cli/to-haat-error.ts';
import { HaatError } from '../../src/errors.ts';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';

const db = await createTestDatabase();
const env = { DATABASE_URL: db.url };

type ErrorDoc = { error: { code: string; message: string; details: Record<string, unknown> } };

function parseError(stdout: string): ErrorDoc {
  const doc = JSON.parse(stdout) as ErrorDoc;
  assert.deepEqual(Object.keys(doc), ['error']);
  assert.deepEqual(Object.keys(doc.error).sort(), ['code', 'details', 'message']);
  assert.equal(typeof doc.error.message, 'string');
  return doc;
}

describe('the CLI', () => {
  test('exits 0 for --version and --help', async () => {
    assert.equal((await runCli(['--version'])).code, 0);
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /db/);
  });

  test('db status reports the database, its server and that migrations are current', async () => {
    const result = await runCli(['db', 'status', '--json'], { env });
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout);
    assert.equal(status.embedded, false);
    assert.match(status.instance_id, /^[0-9a-f-]{36}$/);
    assert.equal(status.migrations.current, true);
    assert.deepEqual(status.migrations.pending, []);
    const password = new URL(db.url).password;
    if (password) assert.ok(!result.stdout.includes(password), 'the password is never printed');
    assert.ok(status.database.includes(new URL(db.url).pathname.slice(1)), 'names the database');
  });

  test('db migrate on a migrated database changes nothing and exits 0', async () => {
    const before = JSON.parse((await runCli(['db', 'status', '--json'], { env })).stdout);
    const result = await runCli(['db', 'migrate', '--json'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout).migrations.applied, before.migrations.applied);
  });

  test('an unknown option is invalid_input, exit 2, with the JSON error document on stdout', async () => {
    const result = await runCli(['db', 'status', '--bogus', '--json'], { env });
    assert.equal(result.code, 2);
    const doc = parseError(result.stdout);
    assert.equal(doc.error.code, 'invalid_input');
    assert.match(doc.error.message, /--bogus/);
  });

  test('an unknown command and no command at all are usage errors, exit 2', async () => {
    assert.equal((await runCli(['frobnicate', '--json'])).code, 2);
    assert.equal(parseError((await runCli(['frobnicate', '--json'])).stdout).error.code, 'invalid_input');
    assert.equal((await runCli([])).code, 2);
  });

  test('a bad number is refused with exit 2 before anything starts', async () => {
    for (const bad of ['1.5', '0x10', '0', '1e3', '', ' 2', '１']) {
      const result = await runCli(['worker', '--concurrency', bad, '--json'], { env });
      assert.equal(result.code, 2, `--concurrency ${JSON.stringify(bad)}`);
      assert.equal(parseError(result.stdout).error.code, 'invalid_input');
    }
    for (const bad of ['0', '101', '1.5', 'many']) {
      for (const command of ['worker', 'up']) {
        const result = await runCli([command, '--delivery-concurrency', bad, '--json'], { env });
        assert.equal(result.code, 2, `${command} --delivery-concurrency ${JSON.stringify(bad)}`);
        assert.equal(parseError(result.stdout).error.code, 'invalid_input');
      }
    }
    const port = await runCli(['intake', '--port', '70000', '--json'], { env });
    assert.equal(port.code, 2);
  });

  test('an invalid environment is exit 2 and names the variable', async () => {
    const result = await runCli(['db', 'status', '--json'], { env: { DATABASE_URL: 'mysql://nope' } });
    assert.equal(result.code, 2);
    assert.match(parseError(result.stdout).error.message, /DATABASE_URL/);
  });

  test('each environment variable is checked: a bad value is exit 2 naming it', async () => {
    const cases: [string, string][] = [
      ['HAAT_WORKER_HEARTBEAT_MS', '000'],
      ['HAAT_WORKER_HEARTBEAT_MS', '99'],
      ['HAAT_WAIT_FOR_WORKER_MS', '1.5'],
      ['PORT', '70000'],
      ['LOG_LEVEL', 'loud'],
      ['LOG_FORMAT', 'xml'],
    ];
    for (const [name, value] of cases) {
      const result = await runCli(['db', 'status', '--json'], { env: { [name]: value } });
      assert.equal(result.code, 2, `${name}=${value}`);
      assert.match(parseError(result.stdout).error.message, new RegExp(name));
    }
  });

  test('an unreachable database is database_unavailable, exit 1, with a clear message and no stack', async () => {
    const result = await runCli(['db', 'status', '--json'], { env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } });
    assert.equal(result.code, 1);
    const doc = parseError(result.stdout);
    assert.equal(doc.error.code, 'database_unavailable');
    assert.equal(doc.error.message, 'the database is unreachable');
    const human = await runCli(['db', 'status'], { env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } });
    assert.equal(human.code, 1);
    assert.equal(human.stderr, 'error: the database is unreachable (database_unavailable)\n');
  });

  test('maps every error code to its exit code and prints the same JSON shape for each', () => {
    const cases: [HaatError, number][] = [
      [new HaatError('invalid_input', 'bad'), 2],
      [new HaatError('insufficient_stock', 'short', { order: { id: 'o1' } }), 3],
      [new HaatError('transition_not_allowed', 'no'), 3],
      [new HaatError('idempotency_conflict', 'reused'), 3],
      [new HaatError('amount_mismatch', 'amount'), 3],
      [new HaatError('currency_mismatch', 'currency'), 3],
      [new HaatError('not_found', 'missing'), 4],
      [new HaatError('maintenance_mode', 'on'), 5],
      [new HaatError('database_unavailable', 'down'), 1],
      [new HaatError('internal', 'bug'), 1],
    ];
    for (const [error, exit] of cases) {
      assert.equal(toHaatError(error).exitCode, exit, error.code);
      let stdout = '';
      createOutput(
        { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: () => true }, interactive: false, env: {} },
        true,
      ).error(error);
      const doc = parseError(stdout);
      assert.equal(doc.error.code, error.code);
      assert.deepEqual(doc.error.details, error.details);
    }
    const unknown = toHaatError(new TypeError('boom'));
    assert.equal(unknown.code, 'internal');
    assert.equal(unknown.exitCode, 1);
  });

  test('runs as its own process on Node 24 and exits with the mapped code', async () => {
    const ok = await spawnCli(['db', 'status', '--json'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).migrations.current, true);
    const bad = await spawnCli(['db', 'status', '--nope', '--json'], { env });
    assert.equal(bad.code, 2);
    assert.equal(parseError(bad.stdout).error.code, 'invalid_input');
  });
});

describe('prompts', () => {
  const noPerson: Prompter = {
    interactive: false,
    input: () => Promise.reject(new Error('must not prompt')),
    select: () => Promise.reject(new Error('must not prompt')),
    confirm: () => Promise.reject(new Error('must not prompt')),
  };

  test('a missing argument with no terminal fails at once with exit 2, naming the argument', async () => {
    const error = await requireValue(noPerson, undefined, { name: 'handle', message: 'Seller handle' }).catch((e: unknown) => e);
    assert.ok(error instanceof HaatError);
    assert.equal(error.exitCode, 2);
    assert.equal(error.message, 'missing argument: handle');
    assert.deepEqual(error.details, { missing: 'handle' });
  });

  test('a missing argument at a terminal is asked for, and a given one is not', async () => {
    const asked: string[] = [];
    const person: Prompter = {
      ...noPerson,
      interactive: true,
      input: async (q) => {
        asked.push(q.name);
        return 'tea-house';
      },
    };
    assert.equal(await requireValue(person, undefined, { name: 'handle', message: 'Seller handle' }), 'tea-house');
    assert.equal(await requireValue(person, 'given', { name: 'handle', message: 'Seller handle' }), 'given');
    assert.deepEqual(asked, ['handle']);
  });

  test('a destructive command needs --yes without a terminal, and a yes at one', async () => {
    await assert.rejects(confirmOrRefuse(noPerson, false, 'Turn maintenance on?'), (e) => e instanceof HaatError && e.exitCode === 2);
    await confirmOrRefuse(noPerson, true, 'Turn maintenance on?');
    const declines: Prompter = { ...noPerson, interactive: true, confirm: async () => false };
    await assert.rejects(confirmOrRefuse(declines, false, 'Turn maintenance on?'), /not confirmed/);
    const agrees: Prompter = { ...noPerson, interactive: true, confirm: async () => true };
    await confirmOrRefuse(agrees, false, 'Turn maintenance on?');
  });
});
