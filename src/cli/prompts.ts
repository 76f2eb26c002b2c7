// The one adapter over @inquirer/prompts. With no person at a terminal it never waits: a missing
// argument is an invalid_input error (exit 2) that names it. Tests pass their own Prompter.
import { HaatError, invalidInput } from '../errors.ts';
import type { Io } from './io.ts';

export type InputQuestion = {
  readonly name: string;
  readonly message: string;
  readonly validate?: (value: string) => true | string;
};
export type SelectQuestion<T extends string> = {
  readonly name: string;
  readonly message: string;
  readonly choices: readonly { readonly value: T; readonly name?: string; readonly description?: string }[];
};
export type ConfirmQuestion = { readonly message: string; readonly default?: boolean };

export type Prompter = {
  readonly interactive: boolean;
  input(question: InputQuestion): Promise<string>;
  select<T extends string>(question: SelectQuestion<T>): Promise<T>;
  confirm(question: ConfirmQuestion): Promise<boolean>;
};

function cancelled(error: unknown): HaatError {
  return new HaatError('invalid_input', 'cancelled at the prompt', {}, { cause: error });
}

/** The real prompts, drawn on stderr so stdout keeps only results. */
export function inquirerPrompter(io: Io): Prompter {
  const context = { output: process.stderr, input: process.stdin };
  const guard = async <T>(ask: () => Promise<T>): Promise<T> => {
    try {
      return await ask();
    } catch (error) {
      if (error instanceof Error && (error.name === 'ExitPromptError' || error.name === 'AbortPromptError')) throw cancelled(error);
      throw error;
    }
  };
  return {
    interactive: io.interactive,
    input: (q) =>
      guard(async () => {
        const { input } = await import('@inquirer/prompts');
        return input({ message: q.message, validate: q.validate ?? (() => true) }, context);
      }),
    select: <T extends string>(q: SelectQuestion<T>) =>
      guard(async () => {
        const { select } = await import('@inquirer/prompts');
        return select<T>({ message: q.message, choices: q.choices.map((c) => ({ ...c })) }, context);
      }),
    confirm: (q) =>
      guard(async () => {
        const { confirm } = await import('@inquirer/prompts');
        return confirm({ message: q.message, default: q.default ?? false }, context);
      }),
  };
}

/** A value given on the command line, or asked for at a terminal; never a hang without one. */
export async function requireValue(prompter: Prompter, value: string | undefined, question: InputQuestion): Promise<string> {
  if (value !== undefined) return value;
  if (!prompter.interactive) {
    throw invalidInput(`missing argument: ${question.name}`, { missing: question.name });
  }
  return prompter.input(question);
}

/** Asks before a destructive command; --yes answers for the operator. */
export async function confirmOrRefuse(prompter: Prompter, yes: boolean, message: string): Promise<void> {
  if (yes) return;
  if (!prompter.interactive) {
    throw invalidInput(`${message} — refusing without confirmation: pass --yes`, { missing: 'yes' });
  }
  if (!(await prompter.confirm({ message, default: false }))) {
    throw invalidInput('not confirmed; nothing was changed', { confirmed: false });
  }
}
