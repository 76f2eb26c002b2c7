// Guarantee: a webhook delivered again and again has one effect. The same signed event (same
// webhook-id, same bytes) arrives five times, three at once and two after it was applied.
import { z } from 'zod';
import { sql } from '../../db/sql.ts';
import { orderPlacedBody } from '../context.ts';
import { movementCount, orderStates, stock } from '../reads.ts';
import type { Step } from '../step.ts';

const SKU = 'BLACK-RICE';
const ID = 'evt_black_rice_1';
const REF = 'WEB-5X';

export const webhookFiveTimes: Step = {
  name: 'webhook_five_times',
  claim: 'A webhook delivered five times has one effect',
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 18_000, 10);
    const body = orderPlacedBody({ ref: REF, buyer: 'web-buyer-7', items: [{ sku: SKU, qty: 2 }] });
    const first = await Promise.all([1, 2, 3].map(() => ctx.post('storefront', ID, body)));
    const outcome = await ctx.eventOutcome('storefront', ID);
    const later = [await ctx.post('storefront', ID, body), await ctx.post('storefront', ID, body)];
    const statuses = [...first, ...later].sort();
    check('HTTP statuses (202 accepted, 200 duplicate)', statuses, [200, 200, 200, 200, 202]);
    check('its outcome', outcome.ok, true);
    const events = await ctx.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
      select count(*) as n from webhook_events where source = 'storefront' and webhook_id = ${ID}`);
    check('events stored', events, 1n);
    const orders = await orderStates(ctx.pool, [REF]);
    check(`orders ${REF}`, orders, { pending: 1n });
    const after = await stock(ctx.pool, SKU);
    check(`${SKU} reserved`, after.reserved, 2n);
    const reserves = await movementCount(ctx.pool, SKU, 'reserve');
    check(`reserve movements of ${SKU}`, reserves, 1n);
    const count = (status: number) => statuses.filter((s) => s === status).length;
    return {
      did: `the same signed order.placed (webhook-id ${ID}: 2 × ${SKU}) delivered 5 times: 3 at once, then 2 after it was applied`,
      saw: `HTTP 202 accepted ×${count(202)}, 200 duplicate ×${count(200)}; ${events} event stored, ${Object.values(orders).reduce((a, b) => a + b, 0n)} order ${REF}, ${after.reserved} units reserved by ${reserves} movement`,
    };
  },
};
