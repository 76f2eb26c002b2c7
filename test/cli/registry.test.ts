// The command registry (src/cli/commands/index.ts) is what `haat --help` shows without loading any
// command group: it must list exactly what the groups register, and loading must stay lazy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { commandGroups } from '../../src/cli/commands/index.ts';
import { targetGroup } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config.ts';
import { haatBin, repoRoot, runCli } from '../helpers/cli.ts';

const io = { stdout: { write: () => true }, stderr: { write: () => true }, interactive: false, env: {} };

async function loadedModules(argv: readonly string[]): Promise<string[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-imports-'));
  const file = path.join(dir, 'imports.txt');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', './test/fixtures/record-imports.js', haatBin, ...argv], {
        cwd: repoRoot,
        env: { PATH: process.env.PATH, HAAT_TEST_IMPORTS_FILE: file, HAAT_HOME: path.join(dir, 'home') },
        stdio: 'ignore',
      });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
    });
    return (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('the command registry', () => {
  it('lists exactly the top-level commands and summaries that each group registers', async () => {
    for (const group of commandGroups) {
      const program = new Command('haat');
      (await group.load())(program, { config: loadConfig({}), io, prompter: undefined as never });
      const registered = Object.fromEntries(program.commands.map((c) => [c.name(), c.description()]));
      assert.deepEqual(registered, group.commands);
    }
  });

  it('finds the command after global options, and behind `help`', () => {
    assert.equal(targetGroup(['--json', '--actor', 'stock', 'order', 'list']), targetGroup(['order']));
    assert.equal(targetGroup(['help', 'stock']), targetGroup(['stock']));
    assert.equal(targetGroup(['--reason=x', 'reconcile']), targetGroup(['reconcile']));
    assert.equal(targetGroup(['--help']), undefined);
    assert.equal(targetGroup(['nonsense']), undefined);
  });

  it('`haat --help` lists every command and loads no command group, zod, pg or slonik', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    for (const group of commandGroups)
      for (const name of Object.keys(group.commands)) assert.match(help.stdout, new RegExp(`\\n  ${name} `));
    const loaded = await loadedModules(['--help']);
    assert.ok(
      loaded.some((url) => url.endsWith('/src/cli/main.ts')),
      'the recorder saw main.ts',
    );
    const heavy = loaded.filter((url) =>
      /node_modules\/(zod|pg|slonik|pino|graphile-worker|graphile-migrate)\/|\/src\/cli\/commands\/(?!index\.ts)/.test(url),
    );
    assert.deepEqual(heavy, []);
  });

  it('a command loads its own group only', async () => {
    const loaded = await loadedModules(['stock', '--help']);
    assert.ok(loaded.some((url) => url.endsWith('/src/cli/commands/stock.ts')));
    const others = loaded.filter(
      (url) => /\/src\/cli\/commands\/(?!index\.ts|stock\.ts)/.test(url) || /graphile-(worker|migrate)/.test(url),
    );
    assert.deepEqual(others, []);
  });

  it('a typo still suggests the command, and help for a group shows its subcommands', async () => {
    const typo = await runCli(['stok', 'show', 'X']);
    assert.equal(typo.code, 2);
    const json = await runCli(['stok', '--json']);
    assert.match(json.stdout, /stock/);
    const stockHelp = await runCli(['help', 'stock']);
    assert.equal(stockHelp.code, 0);
    assert.match(stockHelp.stdout, /receive/);
  });
});
