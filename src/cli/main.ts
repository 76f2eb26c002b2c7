// The CLI: a thin command registry on commander. Only the group of the command being run is loaded
// (commands/index.ts); `haat --help` loads commander and nothing else. Each action builds its deps
// and calls a plain run function. This file is the one place that turns an outcome into an exit
// code and an error into the message or JSON document an operator sees.
import { Command, CommanderError } from 'commander';
import type { Config } from '../config.ts';
import { ExitCode, type HaatError } from '../errors.ts';
import { type CommandGroup, commandGroups, groupOf } from './commands/index.ts';
import type { BaseDeps } from './context.ts';
import { type Io, processIo } from './io.ts';
import { createOutput } from './output.ts';
import { inquirerPrompter, type Prompter } from './prompts.ts';

/** Global options that take a value: the token after them is not a command name. */
const VALUE_OPTIONS = new Set(['--actor', '--reason']);

/** The group of the command named in argv (`haat help <command>` too), if any. */
export function targetGroup(argv: readonly string[]): CommandGroup | undefined {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const token = argv[i] ?? '';
    if (token === '--') {
      words.push(...argv.slice(i + 1, i + 2));
      break;
    }
    if (token.startsWith('-')) {
      if (VALUE_OPTIONS.has(token)) i++;
      continue;
    }
    words.push(token);
  }
  const name = words[0] === 'help' ? words[1] : words[0];
  return name === undefined ? undefined : groupOf(name);
}

function baseProgram(io: Io): Command {
  return new Command('haat')
    .description('haat: a correctness-first marketplace backend (operator CLI, webhook intake, worker)')
    .version('0.1.0', '-V, --version')
    .option('--json', 'print one JSON document on stdout')
    .option('--actor <name>', 'operator name for the audit log (default: $HAAT_ACTOR or the OS user)')
    .option('--yes', 'answer yes to confirmation prompts')
    .option('--bypass-maintenance', 'run a write while maintenance mode is on (needs --reason; audited)')
    .option('--reason <text>', 'why: for the audit log, and for --bypass-maintenance')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // Usage errors are reported by main() below, once, in the operator's chosen format.
      outputError: () => undefined,
    });
}

/**
 * The program with `groups` registered in full and every other command as a name and summary only
 * (enough for help, and for "did you mean" on a typo).
 */
export async function buildProgram(base: BaseDeps, groups: readonly CommandGroup[] = commandGroups): Promise<Command> {
  const program = baseProgram(base.io);
  for (const group of groups) (await group.load())(program, base);
  addSummaries(program);
  for (const command of program.commands) applyToTree(command);
  return program;
}

function addSummaries(program: Command): void {
  const registered = new Set(program.commands.map((c) => c.name()));
  for (const group of commandGroups) {
    for (const [name, summary] of Object.entries(group.commands)) {
      if (!registered.has(name)) program.command(name).description(summary).helpOption(false);
    }
  }
}

function applyToTree(command: Command): void {
  command.exitOverride().allowExcessArguments(false);
  command.configureOutput(command.parent?.configureOutput() ?? {});
  for (const sub of command.commands) applyToTree(sub);
}

async function report(error: unknown, io: Io, json: boolean, config: Config | undefined): Promise<number> {
  const { toHaatError } = await import('./to-haat-error.ts');
  const haatError: HaatError = toHaatError(error);
  if (haatError.code === 'internal') {
    const { createLogger } = await import('../log.ts');
    createLogger(config?.logLevel ?? 'warn', config?.logFormat).error({ err: error }, 'unexpected failure');
  }
  createOutput(io, json).error(haatError);
  return haatError.exitCode;
}

export async function main(argv: readonly string[], io: Io = processIo(), prompter?: Prompter): Promise<number> {
  const json = argv.includes('--json');
  const group = targetGroup(argv);
  let config: Config | undefined;
  try {
    let program: Command;
    if (group) {
      // Configuration is read only for a command that runs: help never fails on a bad environment.
      const { loadConfig } = await import('../config.ts');
      config = loadConfig(io.env);
      program = await buildProgram({ config, io, prompter: prompter ?? inquirerPrompter(io) }, [group]);
    } else {
      program = baseProgram(io);
      addSummaries(program);
      for (const command of program.commands) applyToTree(command);
    }
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    // Help and --version end through exitOverride with exit code 0 (`haat help stock` too).
    if (error instanceof CommanderError && error.exitCode === 0) return ExitCode.ok;
    return report(error, io, json, config);
  }
}
