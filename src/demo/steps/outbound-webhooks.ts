// Guarantee: every state an order enters is told to the storefront, signed with the endpoint's
// secret, at least once. A receiver in the demo process (src/outbox/listen.ts, verifying with the
// secret `haat endpoints add` printed) gets order.pending and order.confirmed, sequence 1 and 2,
// from the worker's delivery lane; then the storefront answers 503 once, and the delivery of
// order.shipped is tried again on the schedule (shortened through `haat settings set`) and
// delivered. The endpoint is removed and the setting put back, so the rest of the tour is as before.
import { z } from 'zod';
import { sql } from '../../db/sql.ts';
import type { ReceivedEvent } from '../../outbox/listen.ts';
import type { DemoContext } from '../context.ts';
import { exitOf } from '../reads.ts';
import type { Step } from '../step.ts';
import { openStorefront } from '../storefront.ts';

const SKU = 'KHASI-MANDARIN';
const REF = 'TOLD-1';
const SETTING = 'webhook_retry_second_ms';
/** A second of the retry schedule lasts 100 ms: its first retry (5 s) comes after about half a second. */
const RETRY_SECOND_MS = 100;

type Delivery = { id: string; event: { id: string; type: string }; state: string; attempts: number };

/** What the storefront verified of order REF: one entry per event (a repeat is at-least-once), by sequence. */
function toldOf(events: readonly ReceivedEvent[]) {
  const byId = new Map<string, { type: string | null; sequence: unknown; verified: boolean | null }>();
  for (const event of events) {
    const data = (event.body as { data?: { order?: { ref?: unknown }; sequence?: unknown } }).data;
    if (data?.order?.ref !== REF || byId.has(event.id)) continue;
    byId.set(event.id, { type: event.type, sequence: data.sequence, verified: event.verified });
  }
  return [...byId.entries()].map(([id, e]) => ({ id, ...e })).sort((a, b) => Number(a.sequence) - Number(b.sequence));
}

/**
 * The outbox's order events of REF (the endpoint subscribes to `order.*`), by sequence. Its
 * shipment events (shipment.dispatched, sequence 3) share the order's sequence but are not sent here.
 */
const outboxOf = (ctx: DemoContext) =>
  ctx.pool.anyFirst(sql.type(z.object({ id: z.string() }))`
    select e.id from outbound_events e join orders o on o.id = e.order_id
    where o.ref = ${REF} and e.type like 'order.%' order by e.sequence`);

export const outboundWebhooks: Step = {
  name: 'outbound_webhooks',
  claim: 'Storefronts are told what happened, signed, at least once',
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 45_000, 3);
    const storefront = await openStorefront(ctx.signal);
    let endpoint: string | undefined;
    let restore: string | undefined;
    const setting = async () => (await ctx.haat('settings', 'get', SETTING, '--json')).json as { value?: unknown } | undefined;
    const stateOf = (id: string) =>
      ctx.pool.maybeOne(sql.type(z.object({ state: z.string(), attempts: z.number() }))`
        select d.state, d.attempts from webhook_deliveries d where d.event_id = ${id}`);
    try {
      const previous = (await setting())?.value ?? 1000;
      restore = String(previous);
      const shorten = await ctx.haat('settings', 'set', SETTING, String(RETRY_SECOND_MS), '--reason', 'demo: retries in tenths', '--json');
      check(`\`haat settings set ${SETTING} ${RETRY_SECOND_MS}\` exits`, exitOf(shorten), 'exit 0');
      const added = await ctx.haat(
        'endpoints',
        'add',
        storefront.url,
        '--allow-private',
        '--events',
        'order.*',
        '--description',
        'the demo storefront',
        '--json',
      );
      check('`haat endpoints add … --allow-private` exits', exitOf(added), 'exit 0');
      const ep = (added.json ?? {}) as { id?: string; secret?: string };
      if (!ep.id || !ep.secret) throw new Error(`haat endpoints add printed no id and secret: ${added.stdout}${added.stderr}`);
      endpoint = ep.id;
      await storefront.attach(ep.secret);

      const placed = await ctx.haat('order', 'place', '--buyer', 'buyer-d', '--item', `${SKU}:2`, '--ref', REF, '--json');
      const total = (placed.json as { total?: { amount?: unknown } } | undefined)?.total?.amount;
      const confirmed = await ctx.haat('order', 'confirm', REF, '--payment-ref', 'pay_told_1', '--amount', String(total), '--json');
      check(`\`haat order place\` and \`haat order confirm ${REF}\` exit`, [exitOf(placed), exitOf(confirmed)], ['exit 0', 'exit 0']);
      const firstTwo = await ctx.until('order.pending and order.confirmed at the storefront', async () => {
        const told = toldOf(storefront.events);
        return told.length >= 2 ? told : undefined;
      });
      check(
        'events the storefront got (type, sequence, signature verified)',
        firstTwo.map((e) => [e.type, e.sequence, e.verified]),
        [
          ['order.pending', 1, true],
          ['order.confirmed', 2, true],
        ],
      );
      check(
        `their webhook-ids are the outbox's events of ${REF}`,
        firstTwo.map((e) => e.id),
        await outboxOf(ctx),
      );

      // The storefront fails once: the next event is answered 503 and tried again on the schedule.
      storefront.failNext(1);
      const shipped = await ctx.haat('order', 'ship', REF, '--tracking', 'AWB-TOLD-1', '--json');
      check(`\`haat order ship ${REF}\` exits`, exitOf(shipped), 'exit 0');
      const third = await ctx.until('order.shipped at the storefront', async () => toldOf(storefront.events)[2]);
      // Sequence 3 is the order's shipment.dispatched, which this endpoint does not subscribe to.
      check('then it got (type, sequence, signature verified)', [third.type, third.sequence, third.verified], ['order.shipped', 4, true]);
      await ctx.until('the delivery of order.shipped recorded', async () =>
        (await stateOf(third.id))?.state === 'delivered' ? true : undefined,
      );
      check(
        'the storefront answered order.shipped',
        storefront.answers.filter((a) => a.id === third.id).map((a) => a.status),
        [503, 204],
      );
      const outbox = await outboxOf(ctx);
      check(`its webhook-id is the outbox's third order event of ${REF}`, third.id, outbox[2]);
      const listed = await ctx.haat('deliveries', 'list', '--endpoint', endpoint, '--json');
      const deliveries = [...((listed.json ?? []) as Delivery[])].sort((a, b) => outbox.indexOf(a.event.id) - outbox.indexOf(b.event.id));
      check(
        '`haat deliveries list --endpoint` (type, state, attempts)',
        deliveries.map((d) => [d.event.type, d.state, d.attempts]),
        [
          ['order.pending', 'delivered', 1],
          ['order.confirmed', 'delivered', 1],
          ['order.shipped', 'delivered', 2],
        ],
      );
      const retried = deliveries.find((d) => d.event.id === third.id);
      const shown = retried ? await ctx.haat('deliveries', 'show', retried.id, '--json') : undefined;
      const attempts = ((shown?.json ?? {}) as { attempts?: { at: string; status: number | null }[] }).attempts ?? [];
      check(
        `\`haat deliveries show\` of order.shipped: its attempts' statuses`,
        attempts.map((a) => a.status),
        [503, 204],
      );
      const gap = attempts.length === 2 ? (Date.parse(attempts[1]?.at ?? '') - Date.parse(attempts[0]?.at ?? '')) / 1000 : Number.NaN;

      const removed = await ctx.haat('endpoints', 'remove', endpoint, '--reason', 'demo: the tour goes on without it', '--yes', '--json');
      check('`haat endpoints remove` exits', exitOf(removed), 'exit 0');
      endpoint = undefined;
      const back = await ctx.haat('settings', 'set', SETTING, restore, '--reason', 'demo: the schedule in seconds again', '--json');
      check(`\`haat settings set ${SETTING} ${restore}\` (back) exits`, exitOf(back), 'exit 0');
      restore = undefined;
      check(`${SETTING} after the step`, (await setting())?.value, previous);
      return {
        did: `\`haat endpoints add ${storefront.url} --allow-private --events order.*\` (a receiver in the demo verifying with its secret); ${REF} placed and confirmed; then the storefront answered 503 once and ${REF} was shipped (${SETTING} ${RETRY_SECOND_MS} for the step)`,
        saw: `the worker posted ${firstTwo.map((e) => `${e.type} (sequence ${e.sequence}, signature ${e.verified ? 'verified' : 'not verified'})`).join(', ')}; order.shipped (sequence ${third.sequence}) answered ${attempts.map((a) => a.status).join(', then ')}${Number.isNaN(gap) ? '' : ` ${gap.toFixed(1)} s later`}: ${retried?.state ?? 'not delivered'} on attempt ${retried?.attempts ?? '?'}; endpoint removed`,
      };
    } finally {
      // A step that failed half-way must not leave the rest of the tour sending, or retrying fast.
      if (endpoint) await ctx.haat('endpoints', 'remove', endpoint, '--reason', 'demo: a step failed', '--yes', '--json');
      if (restore) await ctx.haat('settings', 'set', SETTING, restore, '--reason', 'demo: a step failed', '--json');
      await storefront.close();
    }
  },
};
