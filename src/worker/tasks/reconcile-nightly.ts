// reconcile_nightly (cron, 02:30 UTC): runs every invariant check and logs violations at error level.
import { z } from 'zod';
import { reconcile } from '../../db/reconcile.ts';
import { defineTask } from '../task.ts';

export const reconcileNightlyTask = defineTask({
  identifier: 'reconcile_nightly',
  payload: z.object({}).loose(),
  run: async (_payload, { pool, log }) => {
    const checks = await reconcile(pool);
    for (const check of checks.filter((c) => !c.ok)) {
      log.error({ invariant: check.invariant, check: check.name, violations: check.violations.slice(0, 100) }, 'invariant violated');
    }
    log.info({ failed: checks.filter((c) => !c.ok).length }, 'nightly reconcile done');
  },
});
