// Glossary
// - task: a named function graphile-worker runs for a job; its identifier is snake_case.
// - payload: the job's JSON, parsed by the task's zod schema before anything else happens.
// - poison job: a payload no schema accepts; it is recorded in dead_letters and completed,
//   because retrying it can never succeed.
// - infrastructure fault: anything thrown after parsing; graphile-worker retries it with backoff.
import type { JobHelpers, Task } from 'graphile-worker';
import { z } from 'zod';
import type { DatabasePool } from '../db/pool.ts';
import { sql } from '../db/sql.ts';
import type { Logger } from '../log.ts';
import type { CommandBatcher } from './command-batcher.ts';

export type TaskContext = {
  readonly pool: DatabasePool;
  readonly log: Logger;
  readonly helpers: JobHelpers;
  /** Applies apply_command jobs many per transaction (command-batcher.ts); one per worker process. */
  readonly commands: CommandBatcher;
};

export type TaskDefinition<P> = {
  readonly identifier: string;
  readonly payload: z.ZodType<P>;
  readonly run: (payload: P, context: TaskContext) => Promise<void>;
};

export function defineTask<P>(definition: TaskDefinition<P>): TaskDefinition<P> {
  return definition;
}

/** Wraps a definition into graphile-worker's Task: parse, then run; poison payloads are recorded. */
export function toGraphileTask<P>(definition: TaskDefinition<P>, pool: DatabasePool, log: Logger, commands: CommandBatcher): Task {
  return async (raw, helpers) => {
    const jobLog = log.child({
      component: 'worker',
      task: definition.identifier,
      jobId: helpers.job.id,
      attempt: helpers.job.attempts,
    });
    const parsed = definition.payload.safeParse(raw);
    if (!parsed.success) {
      jobLog.error({ issues: parsed.error.issues }, 'poison job: payload does not match its schema; recorded, not retried');
      await recordDeadLetter(pool, {
        task: definition.identifier,
        jobId: helpers.job.id,
        payload: raw,
        error: z.prettifyError(parsed.error),
      });
      return;
    }
    await definition.run(parsed.data, { pool, log: jobLog, helpers, commands });
  };
}

export async function recordDeadLetter(
  pool: DatabasePool,
  entry: { task: string; jobId: string; payload: unknown; error: string },
): Promise<void> {
  await pool.query(sql.unsafe`
    insert into dead_letters (task, job_id, payload, error)
    values (${entry.task}, ${entry.jobId}, ${sql.jsonb(entry.payload === undefined ? null : (entry.payload as never))}, ${entry.error})`);
}
