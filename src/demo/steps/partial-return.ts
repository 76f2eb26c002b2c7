// Guarantee: a partial return is refunded exactly. A prepaid order of three items is delivered;
// the buyer sends one back, it is received and restocked, and refunded by items: the refund is that
// unit's frozen price to the paisa, and the commission reversed is what the rule leaves, not a
// rounded share of the refund — the commission kept is round_half_even((captured − refunded) × bps
// / 10000). The numbers (commission_bps 1000, 10 %):
//   captured 26,549 (12,985 + 8,999 + 4,565): kept round_half_even(2,654.9)  = 2,655
//   refunded 12,985 (the shawl):             kept round_half_even(1,356.4)  = 1,356
//   reversed 2,655 − 1,356 = 1,299 (10 % of the refund alone, 1,298.5, would round to 1,298)
// The ledger's refund entry moves exactly that, refund.issued (as a storefront would receive it)
// says the same, and `haat reconcile` finds every invariant holding.
import { z } from 'zod';
import { sql } from '../../db/sql.ts';
import { OutboundEventRow } from '../../db/webhooks-out.ts';
import { parseJsonExact } from '../../domain/json.ts';
import { formatMoney } from '../../domain/money.ts';
import { renderBody } from '../../outbox/render.ts';
import { DEMO_SELLER } from '../context.ts';
import { exitOf, lineCounts, orderMovements, orderPostings, orderState, refundsOf, sellerMoney, stock } from '../reads.ts';
import type { Step } from '../step.ts';

const SHAWL = 'ERI-SILK-SHAWL';
const TRAY = 'CANE-TRAY';
const TEA = 'ORTHODOX-TEA-250G';
const REF = 'RET-1';
const RETURN = 'RET-1-R1';
const BPS = 1000;
const PRICES = { [SHAWL]: 12_985, [TRAY]: 8_999, [TEA]: 4_565 };
const CAPTURED = 26_549n;
const KEPT_BEFORE = 2_655n;
const KEPT_AFTER = 1_356n;
const REVERSED = KEPT_BEFORE - KEPT_AFTER;

type Report = { checks?: { name: string; ok: boolean }[] };

export const partialReturnRefund: Step = {
  name: 'partial_return_refund',
  claim: 'A partial return is refunded exactly: its frozen unit price, and the commission reversed by the rule',
  run: async (ctx, check) => {
    for (const [sku, price] of Object.entries(PRICES)) await ctx.addSku(sku, price, 2);
    const must = async (type: string, payload: Record<string, unknown>) => {
      const outcome = await ctx.write(type, payload);
      if (!outcome.ok) throw new Error(`${type} ${REF} was refused: ${outcome.error.code} ${outcome.error.message}`);
    };
    await must('order.place', { buyer: 'buyer-f', ref: REF, items: Object.keys(PRICES).map((sku) => ({ sku, qty: '1' })) });
    await must('order.confirm', { order: REF, payment_ref: 'pay_ret_1', amount: String(CAPTURED) });
    await must('order.ship', { order: REF, tracking: 'AWB-RET-1' });
    await must('order.deliver', { order: REF });
    const commissionBps = await ctx.pool.oneFirst(sql.type(z.object({ commission_bps: z.number() }))`
      select commission_bps from orders where ref = ${REF}`);
    check(`${REF}'s frozen commission rate (bps)`, commissionBps, BPS);
    check(`${DEMO_SELLER}'s money in ${REF} once delivered`, (await sellerMoney(ctx.pool, REF))[DEMO_SELLER], {
      captured: CAPTURED,
      refunded: 0n,
      commission_kept: KEPT_BEFORE,
    });
    const shelf = (await stock(ctx.pool, SHAWL)).on_hand;

    const requested = await ctx.haat(
      'return',
      'request',
      REF,
      '--item',
      `${SHAWL}:1`,
      '--reason',
      'colour not as pictured',
      '--return-ref',
      RETURN,
      '--json',
    );
    const received = await ctx.haat('return', 'receive', RETURN, '--restock', '--reason', 'unworn, tags on', '--json');
    const refunded = await ctx.haat('order', 'refund', REF, '--item', `${SHAWL}:1`, '--reason', `return ${RETURN} received`, '--json');
    check(
      `\`haat return request\`, \`return receive ${RETURN} --restock\`, \`order refund ${REF} --item ${SHAWL}:1\` exit`,
      [requested, received, refunded].map(exitOf),
      ['exit 0', 'exit 0', 'exit 0'],
    );
    const printed = (refunded.json as { refunded?: { amount?: unknown } } | undefined)?.refunded?.amount;
    check(
      `${REF}'s refunded amount (printed) is ${SHAWL}'s frozen unit price`,
      typeof printed === 'number' ? BigInt(printed) : printed,
      BigInt(PRICES[SHAWL]),
    );
    const refunds = await refundsOf(ctx.pool, REF);
    check(
      `refunds of ${REF} (kind, amount, seller, allocated, commission reversed)`,
      refunds.map((r) => [r.kind, r.amount, r.seller, r.allocated, r.commission_reversed]),
      [['refund', BigInt(PRICES[SHAWL]), DEMO_SELLER, BigInt(PRICES[SHAWL]), REVERSED]],
    );
    const money = (await sellerMoney(ctx.pool, REF))[DEMO_SELLER];
    check(`${DEMO_SELLER}'s money after the refund (commission kept by the rule)`, money, {
      captured: CAPTURED,
      refunded: BigInt(PRICES[SHAWL]),
      commission_kept: KEPT_AFTER,
    });
    const entry = await orderPostings(ctx.pool, REF, 'refund');
    check(`the refund's journal entry (by account)`, entry, {
      platform_commission: REVERSED,
      psp_clearing: -BigInt(PRICES[SHAWL]),
      [`seller_payable:${DEMO_SELLER}`]: BigInt(PRICES[SHAWL]) - REVERSED,
    });
    const lines = await lineCounts(ctx.pool, REF);
    check(
      `${REF}'s lines: delivered, returned`,
      Object.fromEntries(Object.entries(lines).map(([sku, l]) => [sku, [l.delivered, l.returned]])),
      { [TRAY]: [1n, 0n], [SHAWL]: [1n, 1n], [TEA]: [1n, 0n] },
    );
    check(
      `${SHAWL} back on hand (return_restock)`,
      [(await stock(ctx.pool, SHAWL)).on_hand - shelf, await orderMovements(ctx.pool, REF)],
      [1n, { return_restock: 1n }],
    );
    const state = await orderState(ctx.pool, REF);
    check(`${REF} is still`, state, 'delivered');
    const issued = await ctx.pool.any(sql.type(OutboundEventRow)`
      select e.id, e.type, e.sequence, e.data, e.created_at, null as order, null as transition
      from outbound_events e join orders o on o.id = e.order_id where o.ref = ${REF} and e.type = 'refund.issued'`);
    const told = issued.map((e) => {
      const { refund } = (parseJsonExact(renderBody(e)) as { data: { refund: Record<string, unknown> } }).data;
      return { amount: refund.amount, items: refund.items, sellers: refund.sellers };
    });
    const inrJson = (amount: bigint) => ({ amount: Number(amount), currency: 'INR' });
    check(`refund.issued for ${REF}, as its body is sent (amount, items, sellers)`, told, [
      {
        amount: inrJson(BigInt(PRICES[SHAWL])),
        items: [{ sku: SHAWL, qty: 1 }],
        sellers: [{ seller: DEMO_SELLER, amount: inrJson(BigInt(PRICES[SHAWL])), commission_reversed: inrJson(REVERSED) }],
      },
    ]);
    const reconcile = await ctx.haat('reconcile', '--json');
    const failing = ((reconcile.json ?? {}) as Report).checks?.filter((c) => !c.ok).map((c) => c.name) ?? ['(no report)'];
    check('`haat reconcile` after the refund exits', [exitOf(reconcile), failing], ['exit 0', []]);
    const inr = (amount: bigint) => formatMoney({ amount, currency: 'INR' });
    return {
      did: `${REF}: ${Object.entries(PRICES)
        .map(([sku, p]) => `${sku} ${inr(BigInt(p))}`)
        .join(
          ' + ',
        )} = ${inr(CAPTURED)}, paid, shipped, delivered; \`haat return request ${REF} --item ${SHAWL}:1\`, \`haat return receive ${RETURN} --restock\`, \`haat order refund ${REF} --item ${SHAWL}:1\``,
      saw: `refunded ${inr(refunds[0]?.amount ?? 0n)} (${SHAWL}'s frozen price); commission kept ${inr(KEPT_BEFORE)} → ${inr(money?.commission_kept ?? 0n)} = round_half_even((${CAPTURED} − ${money?.refunded ?? 0n}) × ${BPS} / 10000), so ${inr(refunds[0]?.commission_reversed ?? 0n)} reversed (10 % of the refund would round to ${inr(1_298n)}); seller payable −${inr(BigInt(PRICES[SHAWL]) - REVERSED)}; ${SHAWL} restocked; reconcile ${exitOf(reconcile)}`,
    };
  },
};
