// Guarantee: concurrent buyers never get more than the stock. Real `haat order place` processes
// and signed order.placed webhooks race for the last units; the database's row lock decides.
import { z } from 'zod';
import { sql } from '../../db/sql.ts';
import { type DemoContext, orderPlacedBody } from '../context.ts';
import { activeReserved, errorCode, exitOf, orderStates, stock } from '../reads.ts';
import type { Step } from '../step.ts';

const SKU = 'ASSAM-TEA';
const UNITS = 5;
const CLI_BUYERS = 6;
const WEBHOOK_BUYERS = 6;

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

const eventId = (ref: string) => `evt_${ref.toLowerCase().replaceAll('-', '_')}`;

const cliOrdersSubmitted = (ctx: DemoContext) =>
  ctx.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
    select count(*) as n from idempotency_keys where scope = 'cli' and command_type = 'order.place' and payload->>'ref' like 'LAST-CLI-%'`);

export const noOversell: Step = {
  name: 'no_oversell',
  claim: 'Concurrent buyers never oversell the last units',
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 45_000, UNITS);
    const cliRefs = range(CLI_BUYERS).map((i) => `LAST-CLI-${i}`);
    const hookRefs = range(WEBHOOK_BUYERS).map((i) => `LAST-WEB-${i}`);
    const cliBuyers = Promise.all(
      cliRefs.map((ref, i) => ctx.haat('order', 'place', '--buyer', `buyer-${i + 1}`, '--item', `${SKU}:1`, '--ref', ref, '--json')),
    );
    // The webhooks go out as the first CLI buyer's order reaches the database (a process takes a
    // moment to start), so that both kinds of buyer really compete for the same units.
    await ctx
      .until('a CLI buyer to submit its order', async () => ((await cliOrdersSubmitted(ctx)) > 0n ? true : undefined), 15_000)
      .catch(() => undefined);
    const statuses = await Promise.all(
      hookRefs.map((ref, i) =>
        ctx.post('storefront', eventId(ref), orderPlacedBody({ ref, buyer: `web-buyer-${i + 1}`, items: [{ sku: SKU, qty: 1 }] })),
      ),
    );
    const runs = await cliBuyers;
    await Promise.all(hookRefs.map((ref) => ctx.eventOutcome('storefront', eventId(ref))));

    const buyers = CLI_BUYERS + WEBHOOK_BUYERS;
    check(
      'every webhook is accepted (HTTP 202)',
      statuses,
      hookRefs.map(() => 202),
    );
    check(
      'each `haat order place` exits 0, or 3 insufficient_stock',
      runs.map(exitOf).filter((e) => e !== 'exit 0' && e !== 'exit 3 insufficient_stock'),
      [],
    );
    const all = await orderStates(ctx.pool, [...cliRefs, ...hookRefs]);
    check('orders by state', all, { pending: BigInt(UNITS), rejected: BigInt(buyers - UNITS) });
    const cliPending = (await orderStates(ctx.pool, cliRefs)).pending ?? 0n;
    check('each CLI exit 0 is a pending order', BigInt(runs.filter((r) => r.code === 0).length), cliPending);
    const after = await stock(ctx.pool, SKU);
    check(`${SKU} stock`, after, { on_hand: BigInt(UNITS), reserved: BigInt(UNITS), available: 0n });
    check(`${SKU} reserved = its active reservations`, await activeReserved(ctx.pool, SKU), after.reserved);
    const refused = runs.filter((r) => errorCode(r) === 'insufficient_stock').length;
    return {
      did: `${buyers} buyers at once for the last ${UNITS} units of ${SKU}: ${CLI_BUYERS} \`haat order place\` processes and ${WEBHOOK_BUYERS} signed order.placed webhooks`,
      saw: `${all.pending ?? 0n} orders pending (${cliPending} by CLI processes, ${(all.pending ?? 0n) - cliPending} by webhooks), ${all.rejected ?? 0n} rejected with insufficient_stock (${refused} CLI processes exited 3); on hand ${after.on_hand}, reserved ${after.reserved}, available ${after.available}`,
    };
  },
};
