// deliver_webhook: one attempt of one outbound webhook delivery (src/outbox/deliver.ts). Run by the
// worker's delivery lane, never by the lane that applies commands: a slow or hanging receiver holds
// a delivery slot, never a command's. HTTP failures are recorded and rescheduled by the attempt
// itself; only infrastructure faults (the database) throw and are retried by the queue.
import { z } from 'zod';
import { DELIVER_TASK } from '../../db/webhooks-out.ts';
import { deliverOnce } from '../../outbox/deliver.ts';
import { defineTask } from '../task.ts';

export const DeliverWebhookPayload = z.strictObject({
  delivery: z.string().regex(/^dlv_[0-9a-f]{32}$/),
  /** Attempts made when the job was scheduled: this job is for the next one. */
  attempt: z.number().int().min(0),
});

export const deliverWebhookTask = defineTask({
  identifier: DELIVER_TASK,
  payload: DeliverWebhookPayload,
  run: async (payload, { pool, log }) => {
    await deliverOnce(pool, payload.delivery, payload.attempt, log);
  },
});
