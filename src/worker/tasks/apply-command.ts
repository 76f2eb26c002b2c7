// apply_command: applies one stored command by its idempotency key (applyCommands, through the
// worker's batcher). Safe to replay: a key that is
// already done is a no-op. Only infrastructure faults throw (and are retried by the queue).
import { z } from 'zod';
import { APPLY_COMMAND_TASK } from '../../db/idempotency.ts';
import { defineTask } from '../task.ts';

export const ApplyCommandPayload = z.strictObject({ scope: z.string().min(1), key: z.string().min(1) });

export const applyCommandTask = defineTask({
  identifier: APPLY_COMMAND_TASK,
  payload: ApplyCommandPayload,
  run: async (payload, { log, helpers, commands }) => {
    // Applied with the other jobs running now, many per transaction; the result is this job's alone.
    const result = await commands.apply({ scope: payload.scope, key: payload.key, attempts: helpers.job.attempts });
    if (!result.ok) throw result.error;
    const outcome = result.outcome;
    if (outcome === null) log.warn({ scope: payload.scope, key: payload.key }, 'no such idempotency key (purged?); nothing to apply');
    else log.debug({ scope: payload.scope, key: payload.key, ok: outcome.ok }, 'command applied');
  },
});
