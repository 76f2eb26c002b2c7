// Runs the real CLI: in-process through main() with captured streams, or as a child process.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import type { Prompter } from '../../src/cli/prompts.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const haatBin = path.join(repoRoot, 'bin/haat.js');

export type CliResult = { code: number; stdout: string; stderr: string };

/** main() with captured streams; the environment is only what the test gives. */
export async function runCli(
  argv: readonly string[],
  options: { env?: NodeJS.ProcessEnv; interactive?: boolean; prompter?: Prompter } = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(
    argv,
    {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      interactive: options.interactive ?? false,
      env: { LOG_LEVEL: 'silent', HAAT_ACTOR: 'test', ...options.env },
    },
    options.prompter,
  );
  return { code, stdout, stderr };
}

/** The CLI as its own process (Node 24, the same binary that runs these tests). */
export function spawnCli(
  argv: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [haatBin, ...argv], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}
