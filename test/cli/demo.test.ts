// `haat demo` as a newcomer runs it: a real process, on a temporary embedded PostgreSQL (DATABASE_URL
// unset) and on a server (a scratch database there). Every guarantee must hold (exit 0), and the
// demo must leave nothing behind: no database, no temporary folder, no process; with --keep, the
// database stays and is reachable the way the demo says, with its deliberately corrupted row.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isAlive } from '../../src/db/embedded.ts';
import { haatBin, repoRoot, spawnCli } from '../helpers/cli.ts';
import { adminQuery, adminUrl } from '../helpers/db.ts';

const STEPS = [
  'no_oversell',
  'all_or_nothing',
  'webhook_five_times',
  'replayed_cli_command',
  'skipped_transition',
  'frozen_money',
  'maintenance_holds_work',
  'worker_sigkill',
  'outbound_webhooks',
  'cod_refused_at_door',
  'partial_return_refund',
  'reconcile_clean',
  'reconcile_names_corruption',
];

type Report = {
  ok: boolean;
  steps: { name: string; claim: string; ok: boolean; details: { did: string; saw: string; checks: { check: string; ok: boolean }[] } }[];
  database: { kind: string; name: string; home: string };
  kept: { env: string; corrupted_sku: string } | null;
};

/**
 * The demo's TMPDIR: its temporary HAAT_HOME (haat-demo-*) goes there. As root PostgreSQL runs as
 * `postgres`, which must be able to enter it.
 */
async function scratchFolder(): Promise<string> {
  const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-demo-test-'));
  await fs.chmod(folder, 0o755);
  after(() => fs.rm(folder, { recursive: true, force: true }));
  return folder;
}

/** Processes whose command line mentions `text` (a child or a PostgreSQL left behind). */
/** What the demo left in its TMPDIR (Node keeps its compile cache there too: not ours). */
const demoFolders = async (tmp: string) => (await fs.readdir(tmp)).filter((name) => name.startsWith('haat-demo-'));

async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`);
  }
  return found;
}

const databaseExists = async (name: string) => (await adminQuery('select 1 from pg_database where datname = $1', [name])).rowCount === 1;

function assertAllHeld(report: Report, output: string): void {
  assert.equal(report.ok, true, output);
  assert.deepEqual(
    report.steps.map((s) => s.name),
    STEPS,
  );
  for (const step of report.steps) {
    assert.equal(step.ok, true, `${step.name}: ${JSON.stringify(step.details)}`);
    assert.ok(step.claim.length > 0 && step.details.did.length > 0 && step.details.saw.length > 0, step.name);
    assert.ok(step.details.checks.length >= 3, `${step.name} checks what it claims`);
  }
}

describe('haat demo', () => {
  test('on a temporary embedded PostgreSQL, --keep: every guarantee holds, shown ✔ step by step; the kept database is reachable as it says', async () => {
    const tmp = await scratchFolder();
    const result = await spawnCli(['demo', '--keep'], {
      env: { TMPDIR: tmp, HAAT_HOME: path.join(tmp, 'never-used') },
      timeoutMs: 150_000,
    });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const marks = [...result.stdout.matchAll(/^ (✔|✘) +(\d+)\. (.+)$/gm)].map((m) => [m[1], Number(m[2])]);
    assert.deepEqual(
      marks,
      STEPS.map((_, i) => ['✔', i + 1]),
      result.stdout,
    );
    assert.match(result.stdout, /^haat demo: 13 guarantees/);
    assert.match(result.stdout, /database {3}a temporary embedded PostgreSQL in \S+ \(PostgreSQL \d+/);
    assert.match(result.stdout, /^13\/13 guarantees held in \d+(\.\d)? s\.$/m);
    assert.ok(!result.stdout.includes('\u001b['), 'no colours or cursor moves when stdout is not a terminal');
    assert.deepEqual(await processesMentioning(tmp), [], 'its worker, intake and PostgreSQL are stopped');

    const home = /^ {2}HAAT_HOME=(\S+) npx haat reconcile /m.exec(result.stdout)?.[1] ?? '';
    assert.deepEqual(await demoFolders(tmp), [path.basename(home)], 'the temporary HAAT_HOME is kept');
    const reconcile = await spawnCli(['reconcile', '--json'], { env: { HAAT_HOME: home } });
    assert.equal(reconcile.code, 1, reconcile.stdout);
    const failed = (
      JSON.parse(reconcile.stdout).error.details.checks as { name: string; ok: boolean; violations: { sku: string }[] }[]
    ).filter((c) => !c.ok);
    assert.deepEqual(
      failed.map((c) => [c.name, c.violations.map((v) => v.sku)]),
      [['on_hand_is_movements', ['ASSAM-TEA']]],
      'the row it corrupted on purpose, and only that one',
    );
    assert.match(result.stdout, /exits 1: ASSAM-TEA was corrupted on purpose/);
  });

  test('on the DATABASE_URL server: --json reports every step ok, and the scratch database is dropped', async () => {
    const tmp = await scratchFolder();
    const result = await spawnCli(['demo', '--json'], { env: { TMPDIR: tmp, DATABASE_URL: adminUrl() }, timeoutMs: 150_000 });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const report = JSON.parse(result.stdout) as Report;
    assertAllHeld(report, result.stdout);
    assert.equal(report.database.kind, 'server');
    assert.match(report.database.name, /^haat_demo_[0-9a-f]{6}$/);
    assert.equal(report.kept, null);
    const told = report.steps.find((s) => s.name === 'outbound_webhooks');
    assert.match(
      told?.details.saw ?? '',
      /order\.pending \(sequence 1, signature verified\), order\.confirmed \(sequence 2, signature verified\); order\.shipped \(sequence 4\) answered 503, then 204\b.*: delivered on attempt 2; endpoint removed/,
    );
    const refused = report.steps.find((s) => s.name === 'cod_refused_at_door');
    assert.match(
      refused?.details.saw ?? '',
      /^COD-1 returned_to_origin; BAMBOO-BASKET on hand 1 after confirmation, 3 once back \(rto_restock 2\); 0 postings for COD-1, 0 journal entries added; a refund: exit 3 conflict$/,
    );
    const returned = report.steps.find((s) => s.name === 'partial_return_refund');
    assert.match(
      returned?.details.saw ?? '',
      /^refunded ₹129\.85 \(ERI-SILK-SHAWL's frozen price\); commission kept ₹26\.55 → ₹13\.56 .*so ₹12\.99 reversed .*reconcile exit 0$/,
    );
    const reconciled = report.steps.find((s) => s.name === 'reconcile_clean');
    assert.match(reconciled?.details.saw ?? '', /^exit 0: all 10 checks hold: .*events are delivered, lifecycle holds$/);
    assert.equal(await databaseExists(report.database.name), false, 'the scratch database is dropped');
    assert.deepEqual(await demoFolders(tmp), [], 'the temporary HAAT_HOME is removed');
  });

  test('Ctrl-C (SIGINT) mid-tour stops it, exits 1 demo_failed, and cleans up: processes, PostgreSQL and its folder gone', async () => {
    const tmp = await scratchFolder();
    const demo = spawn(process.execPath, [haatBin, 'demo'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmp, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    demo.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => demo.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      demo.stdout.on('data', (d) => {
        stdout += d;
        if (/haat worker \(pid \d+\), haat intake at \S+ \(pid \d+\)/.test(stdout)) resolve();
      });
      void exited.then(() => reject(new Error(`haat demo ended before its tour began:\n${stdout}\n${stderr}`)));
    });
    assert.equal((await processesMentioning(tmp)).length > 0, true, 'its PostgreSQL runs from the temporary HAAT_HOME');
    demo.kill('SIGINT');
    assert.equal(await exited, 1, `${stdout}\n${stderr}`);
    assert.match(stderr, /interrupted by SIGINT: the tour stopped and cleaned up \(demo_failed\)/);
    const [, worker, intake] = /haat worker \(pid (\d+)\), haat intake at \S+ \(pid (\d+)\)/.exec(stdout) ?? [];
    assert.equal(isAlive(Number(worker)) || isAlive(Number(intake)), false, 'the worker and the intake are stopped');
    assert.deepEqual(await processesMentioning(tmp), [], 'PostgreSQL is stopped');
    assert.deepEqual(await demoFolders(tmp), [], 'the temporary HAAT_HOME and its data are removed');
  });
});
