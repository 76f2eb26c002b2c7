// apply_command: applies one stored command by its idempotency key. Safe to replay: a key that is
// already done is a no-op. Only infrastructure faults throw (and are retried by the queue).
import { z } from 'zod';
import { applyCommand } from '../../commands/apply-command.ts';
import { APPLY_COMMAND_TASK } from '../../db/idempotency.ts';
import { defineTask } from '../task.ts';

export const ApplyCommandPayload = z.strictObject({ scope: z.string().min(1), key: z.string().min(1) });

export const applyCommandTask = defineTask({
  identifier: APPLY_COMMAND_TASK,
  payload: ApplyCommandPayload,
  run: async (payload, { pool, log, helpers }) => {
    const outcome = await applyCommand(pool, payload.scope, payload.key, log, { attempts: helpers.job.attempts });
    if (outcome === null) log.warn({ scope: payload.scope, key: payload.key }, 'no such idempotency key (purged?); nothing to apply');
    else log.debug({ scope: payload.scope, key: payload.key, ok: outcome.ok }, 'command applied');
  },
});
