// Guarantee: after everything the tour did (races, refusals, duplicates, a killed worker, a
// storefront that failed once, a parcel refused at the door, a partial return refunded), every
// invariant holds, as `haat reconcile` (a real process) checks them.
import { z } from 'zod';
import { sql } from '../../db/sql.ts';
import { exitOf } from '../reads.ts';
import type { Step } from '../step.ts';

type Report = { ok?: boolean; checks?: { name: string; ok: boolean }[] };

export const reconcileClean: Step = {
  name: 'reconcile_clean',
  claim: '`haat reconcile` finds every invariant holding',
  run: async (ctx, check) => {
    const run = await ctx.haat('reconcile', '--json');
    const report = (run.json ?? {}) as Report;
    check('`haat reconcile` exits', exitOf(run), 'exit 0');
    check(
      'checks that do not hold',
      (report.checks ?? []).filter((c) => !c.ok).map((c) => c.name),
      [],
    );
    check('checks run', report.checks?.length ?? 0, 10);
    const counts = await ctx.pool.one(sql.type(
      z.object({ orders: z.bigint(), movements: z.bigint(), events: z.bigint(), outbound: z.bigint(), deliveries: z.bigint() }),
    )`
      select (select count(*) from orders) as orders, (select count(*) from inventory_movements) as movements,
             (select count(*) from webhook_events) as events, (select count(*) from outbound_events) as outbound,
             (select count(*) from webhook_deliveries) as deliveries`);
    return {
      did: `\`haat reconcile\` over all the tour did: ${counts.orders} orders, ${counts.movements} stock movements, ${counts.events} webhook events, ${counts.outbound} outbound events and ${counts.deliveries} deliveries`,
      saw: `${exitOf(run)}: all ${report.checks?.length ?? 0} checks hold: ${(report.checks ?? []).map((c) => c.name.replaceAll('_', ' ')).join(', ')}`,
    };
  },
};
