// The CLI: a thin command registry on commander. Each command group registers its commands; each
// action builds its deps and calls a plain run function. This file is the one place that turns an
// outcome into an exit code and an error into the message or JSON document an operator sees.
import { Command, CommanderError } from 'commander';
import { ZodError, z } from 'zod';
import { ConfigError, loadConfig } from '../config.ts';
import { mapDatabaseError } from '../db/errors.ts';
import { ExitCode, HaatError, invalidInput } from '../errors.ts';
import { createLogger } from '../log.ts';
import { registerCatalogCommands } from './commands/catalog.ts';
import { registerDbCommands } from './commands/db.ts';
import { registerMoneyCommands } from './commands/money.ts';
import { registerOperationCommands } from './commands/operations.ts';
import { registerOrderCommands } from './commands/orders.ts';
import { registerReconcileCommand } from './commands/reconcile.ts';
import { registerServiceCommands } from './commands/services.ts';
import { registerStockCommands } from './commands/stock.ts';
import { registerWebhookCommands } from './commands/webhook.ts';
import type { BaseDeps } from './context.ts';
import { type Io, processIo } from './io.ts';
import { createOutput } from './output.ts';
import { inquirerPrompter, type Prompter } from './prompts.ts';

export type Registrar = (program: Command, base: BaseDeps) => void;

const registrars: readonly Registrar[] = [
  registerServiceCommands,
  registerDbCommands,
  registerCatalogCommands,
  registerStockCommands,
  registerOrderCommands,
  registerMoneyCommands,
  registerWebhookCommands,
  registerOperationCommands,
  registerReconcileCommand,
];

export function buildProgram(base: BaseDeps): Command {
  const program = new Command('haat')
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
      writeOut: (text) => base.io.stdout.write(text),
      writeErr: (text) => base.io.stderr.write(text),
      // Usage errors are reported by main() below, once, in the operator's chosen format.
      outputError: () => undefined,
    });
  for (const register of registrars) register(program, base);
  for (const command of program.commands) applyToTree(command);
  return program;
}

function applyToTree(command: Command): void {
  command.exitOverride().allowExcessArguments(false);
  command.configureOutput(command.parent?.configureOutput() ?? {});
  for (const sub of command.commands) applyToTree(sub);
}

/** Maps anything thrown to a HaatError: the one table from failure to exit code. */
export function toHaatError(error: unknown): HaatError {
  if (error instanceof HaatError) return error;
  if (error instanceof CommanderError) {
    return invalidInput(error.message.replace(/^error: /, ''), { usage: error.code });
  }
  if (error instanceof ZodError) {
    const issue = error.issues[0];
    // Command payloads are parsed as {type, payload}; the operator knows the field, not the wrapper.
    const path = issue?.path[0] === 'payload' ? issue.path.slice(1) : (issue?.path ?? []);
    const where = path.length ? `${path.join('.')}: ` : '';
    return invalidInput(`${where}${issue?.message ?? 'invalid input'}`, { issues: z.treeifyError(error) });
  }
  if (error instanceof ConfigError) return invalidInput(error.message);
  const mapped = mapDatabaseError(error);
  if (mapped) return mapped;
  return new HaatError('internal', error instanceof Error ? error.message : String(error), {}, { cause: error });
}

export async function main(argv: readonly string[], io: Io = processIo(), prompter?: Prompter): Promise<number> {
  const json = argv.includes('--json');
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(io.env);
  } catch (error) {
    const haatError = toHaatError(error);
    createOutput(io, json).error(haatError);
    return haatError.exitCode;
  }
  const base: BaseDeps = { config, io, prompter: prompter ?? inquirerPrompter(io) };
  try {
    await buildProgram(base).parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError && (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')) {
      return ExitCode.ok;
    }
    const haatError = toHaatError(error);
    if (haatError.code === 'internal') {
      createLogger(config.logLevel ?? 'warn').error({ err: error }, 'unexpected failure');
    }
    createOutput(io, json).error(haatError);
    return haatError.exitCode;
  }
}
