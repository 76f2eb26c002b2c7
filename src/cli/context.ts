// What every command receives: configuration, streams, prompts, output and the global options
// (docs/contract.md, Global options and prompts). Commands are plain `run(input, deps)` functions; this
// builds their deps.
import type { Command } from 'commander';
import { z } from 'zod';
import type { Config } from '../config.ts';
import { type Database, openDatabase, untilConnected } from '../db/connect.ts';
import { committedMigrations, migrationsCurrent } from '../db/migration-status.ts';
import { Text } from '../domain/catalog.ts';
import { HaatError } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import type { Io } from './io.ts';
import { createOutput, type Output } from './output.ts';
import type { Prompter } from './prompts.ts';

export const Globals = z.object({
  json: z.boolean().default(false),
  actor: Text(200).optional(),
  yes: z.boolean().default(false),
  bypassMaintenance: z.boolean().default(false),
  reason: Text(1000).optional(),
});
export type Globals = {
  readonly json: boolean;
  readonly actor: string;
  readonly yes: boolean;
  readonly bypassMaintenance: boolean;
  readonly reason: string | undefined;
};

export type Deps = {
  readonly config: Config;
  readonly io: Io;
  readonly prompter: Prompter;
  readonly output: Output;
  readonly log: Logger;
  readonly globals: Globals;
  /**
   * Opens the database (starting the embedded one if needed), runs `fn`, then closes it. Unless
   * `migrated: false`, refuses with not_migrated when the schema is not current.
   */
  withDatabase<T>(fn: (db: Database) => Promise<T>, options?: { migrated?: boolean; untilConnected?: boolean }): Promise<T>;
};

export type BaseDeps = {
  readonly config: Config;
  readonly io: Io;
  readonly prompter: Prompter;
};

/** Long-running commands log at info by default; one-shot commands only warn. */
export function buildDeps(base: BaseDeps, command: Command, defaultLogLevel: 'info' | 'warn'): Deps {
  const raw = command.optsWithGlobals();
  const parsed = Globals.parse({
    json: raw.json,
    actor: raw.actor,
    yes: raw.yes,
    bypassMaintenance: raw.bypassMaintenance,
    reason: raw.reason,
  });
  const globals: Globals = {
    json: parsed.json,
    actor: parsed.actor ?? base.config.actor,
    yes: parsed.yes,
    bypassMaintenance: parsed.bypassMaintenance,
    reason: parsed.reason,
  };
  const log = createLogger(base.config.logLevel ?? defaultLogLevel, base.config.logFormat);
  return {
    ...base,
    globals,
    log,
    output: createOutput(base.io, globals.json),
    withDatabase: async (fn, options) => {
      // Long-running services wait out a database that is restarting; a one-shot command fails at once.
      const db = options?.untilConnected
        ? await untilConnected('opening the database', () => openDatabase(base.config, log), log)
        : await openDatabase(base.config, log);
      try {
        if (options?.migrated !== false && !(await migrationsCurrent(db.pool, (await committedMigrations()).at(-1)))) {
          throw new HaatError('not_migrated', 'the database schema is not current: run `haat db migrate` (or `haat up`)');
        }
        return await fn(db);
      } finally {
        await db.close();
      }
    },
  };
}
