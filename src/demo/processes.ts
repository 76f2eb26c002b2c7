// The demo's real processes: one-shot `haat` commands and the services (`haat worker`, `haat intake`)
// as child processes of the demo, on the demo's database. Every child is tracked, and stopAll()
// ends them (services with SIGTERM, then SIGKILL); a child still alive when the demo exits is killed.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseJsonExact } from '../domain/json.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const haatBin = path.join(repoRoot, 'bin/haat.js');

/** How much of a child's stderr is kept, for a failing step's explanation. */
const STDERR_TAIL = 4000;

export type HaatRun = {
  readonly args: readonly string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout as JSON (every demo command runs with --json), or undefined when it is not JSON. */
  readonly json: unknown;
};

export type Service = {
  readonly name: string;
  readonly pid: number;
  /** The JSON document the service printed once it was running (haat up/worker/intake --json). */
  readonly started: Record<string, unknown>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
};

export type Processes = {
  run(args: readonly string[], options?: { timeoutMs?: number }): Promise<HaatRun>;
  start(name: string, args: readonly string[], options?: { timeoutMs?: number }): Promise<Service>;
  stopAll(): Promise<void>;
};

function parseJson(text: string): unknown {
  try {
    return parseJsonExact(text);
  } catch {
    return undefined;
  }
}

const tail = (text: string) => (text.length > STDERR_TAIL ? text.slice(-STDERR_TAIL) : text);

export function createProcesses(env: NodeJS.ProcessEnv): Processes {
  const live = new Set<ChildProcess>();
  const services = new Set<Service>();
  const killLeftovers = () => {
    for (const child of live) child.kill('SIGKILL');
  };
  process.on('exit', killLeftovers);

  const spawnHaat = (args: readonly string[]): ChildProcess => {
    const child = spawn(process.execPath, [haatBin, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    return child;
  };

  return {
    run: (args, options = {}) =>
      new Promise((resolve, reject) => {
        const child = spawnHaat(args);
        let stdout = '';
        let stderr = '';
        child.stdout?.on('data', (d) => (stdout += d));
        child.stderr?.on('data', (d) => (stderr = tail(stderr + d)));
        const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
        child.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ args, code, signal, stdout, stderr, json: parseJson(stdout) });
        });
      }),

    start: (name, args, options = {}) =>
      new Promise((resolve, reject) => {
        const child = spawnHaat(args);
        let stdout = '';
        let stderr = '';
        let running = false;
        child.stderr?.on('data', (d) => (stderr = tail(stderr + d)));
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
          child.once('exit', (code, signal) => done({ code, signal })),
        );
        const fail = (why: string) => {
          clearTimeout(timer);
          child.kill('SIGKILL');
          reject(new Error(`haat ${name} ${why}${stderr ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`));
        };
        const timer = setTimeout(() => fail('did not start in time'), options.timeoutMs ?? 30_000);
        child.once('error', (error) => fail(`could not be started (${error.message})`));
        void exited.then(({ code, signal }) => {
          if (!running) fail(`exited before it was running (${signal ?? `exit ${code}`})`);
        });
        child.stdout?.on('data', (d) => {
          if (running) return;
          stdout += d;
          const started = parseJson(stdout);
          if (typeof started !== 'object' || started === null) return; // not a whole document yet
          running = true;
          clearTimeout(timer);
          const pid = child.pid ?? 0;
          const service: Service = {
            name,
            pid,
            started: started as Record<string, unknown>,
            exited,
            kill: (signal) => {
              child.kill(signal);
            },
            stop: async (graceMs = 15_000) => {
              services.delete(service);
              if (child.exitCode !== null || child.signalCode !== null) return;
              child.kill('SIGTERM');
              const hard = setTimeout(() => child.kill('SIGKILL'), graceMs);
              await exited;
              clearTimeout(hard);
            },
          };
          services.add(service);
          resolve(service);
        });
      }),

    stopAll: async () => {
      await Promise.all([...services].map((s) => s.stop()));
      killLeftovers();
      await Promise.all(
        [...live].map(
          (child) => new Promise((done) => (child.exitCode !== null || child.signalCode !== null ? done(null) : child.once('exit', done))),
        ),
      );
      process.off('exit', killLeftovers);
    },
  };
}
