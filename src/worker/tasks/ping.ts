// ping: proves the queue end to end. It records that a worker picked the job up, so an operator
// (or a test) can see that jobs flow; it touches no business table.
import { z } from 'zod';
import { sql } from '../../db/sql.ts';
import { defineTask } from '../task.ts';

export const PingPayload = z.object({ note: z.string().max(200).default('') }).strict();

export const pingTask = defineTask({
  identifier: 'ping',
  payload: PingPayload,
  run: async (payload, { pool, log, helpers }) => {
    await pool.query(sql.unsafe`
      insert into worker_pings (job_id, note) values (${helpers.job.id}, ${payload.note})
      on conflict (job_id) do nothing`);
    log.info({ note: payload.note }, 'pong');
  },
});
