// The one table from anything thrown to a HaatError, and so to an exit code (docs/contract.md).
// Loaded only when a command fails: it brings zod and the database error mapper with it.
import { CommanderError } from 'commander';
import { ZodError, z } from 'zod';
import { ConfigError } from '../config.ts';
import { mapDatabaseError } from '../db/errors.ts';
import { HaatError, invalidInput } from '../errors.ts';

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
