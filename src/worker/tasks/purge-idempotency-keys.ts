// purge_idempotency_keys (cron, hourly): deletes finished idempotency keys older than the
// `idempotency_retention_hours` setting, in batches. Pending keys are never purged.
import { z } from 'zod';
import { purgeKeys } from '../../db/idempotency.ts';
import { readSetting } from '../../db/settings.ts';
import { defineTask } from '../task.ts';

export const purgeIdempotencyKeysTask = defineTask({
  identifier: 'purge_idempotency_keys',
  payload: z.object({}).loose(),
  run: async (_payload, { pool, log }) => {
    const hours = await readSetting(pool, 'idempotency_retention_hours');
    let total = 0;
    for (;;) {
      const purged = await purgeKeys(pool, hours);
      total += purged;
      if (purged === 0) break;
    }
    log.info({ purged: total, retentionHours: hours }, 'purged old idempotency keys');
  },
});
