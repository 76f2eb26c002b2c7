// Guarantee: a cash-on-delivery parcel refused at the door costs nothing and loses nothing. The
// order is placed and confirmed as COD (no payment: nothing captured), shipped, refused, returned to
// origin and received back: the order ends returned_to_origin, its units are back on hand with an
// rto_restock movement, no cod_receivable was ever opened (the courier collected nothing), the ledger
// has not one entry more, and there is nothing to refund.
import { formatMoney } from '../../domain/money.ts';
import {
  errorCode,
  exitOf,
  ledgerSize,
  lineCounts,
  orderMovements,
  orderPath,
  orderPostings,
  orderState,
  shipmentPath,
  stock,
} from '../reads.ts';
import type { Step } from '../step.ts';

const SKU = 'BAMBOO-BASKET';
const REF = 'COD-1';
const TRACKING = 'AWB-COD-1';
const COURIER = 'demo-courier';

export const codRefusedAtDoor: Step = {
  name: 'cod_refused_at_door',
  claim: 'A cash-on-delivery parcel refused at the door comes back whole: stock on hand, nothing owed, the ledger untouched',
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 85_000, 3);
    const before = await stock(ctx.pool, SKU);
    const ledgerBefore = await ledgerSize(ctx.pool);
    const runs = [
      await ctx.haat('order', 'place', '--cod', '--buyer', 'buyer-e', '--item', `${SKU}:2`, '--ref', REF, '--json'),
      await ctx.haat('order', 'confirm', REF, '--cod', '--json'),
    ];
    const confirmed = await stock(ctx.pool, SKU);
    runs.push(
      await ctx.haat('order', 'ship', REF, '--tracking', TRACKING, '--courier', COURIER, '--json'),
      await ctx.haat('shipment', 'fail', TRACKING, '--reason', 'refused at the door', '--json'),
      await ctx.haat('shipment', 'rto', TRACKING, '--json'),
      await ctx.haat('shipment', 'rto-receive', TRACKING, '--json'),
    );
    check(
      '`haat order place --cod`, `order confirm --cod`, `order ship`, `shipment fail`, `shipment rto`, `shipment rto-receive` exit',
      runs.map(exitOf),
      runs.map(() => 'exit 0'),
    );
    const state = await orderState(ctx.pool, REF);
    check(`${REF} is`, state, 'returned_to_origin');
    check(`${REF}'s states`, await orderPath(ctx.pool, REF), ['pending', 'confirmed', 'shipped', 'returned_to_origin']);
    check(`shipment ${TRACKING}'s states`, await shipmentPath(ctx.pool, TRACKING), [
      'dispatched',
      'delivery_failed',
      'rto_initiated',
      'rto_received',
    ]);
    const lines = (await lineCounts(ctx.pool, REF))[SKU];
    check(`${SKU} in ${REF}: shipped, delivered, back (rto)`, [lines?.shipped, lines?.delivered, lines?.rto], [2n, 0n, 2n]);
    const after = await stock(ctx.pool, SKU);
    check(
      `${SKU} on hand after confirmation, then back at origin`,
      [confirmed.on_hand, after.on_hand],
      [before.on_hand - 2n, before.on_hand],
    );
    check(`${SKU} available again`, after.available, before.available);
    const movements = await orderMovements(ctx.pool, REF);
    check(`stock movements naming ${REF} (units back on hand, by kind)`, movements, { rto_restock: 2n });
    const postings = await orderPostings(ctx.pool, REF);
    check(`${REF}'s postings (no capture, no cod_receivable:${COURIER})`, postings, {});
    const ledgerAfter = await ledgerSize(ctx.pool);
    check(
      'journal entries and postings added to the ledger',
      [ledgerAfter.entries - ledgerBefore.entries, ledgerAfter.postings - ledgerBefore.postings],
      [0n, 0n],
    );
    const refund = await ctx.haat('order', 'refund', REF, '--reason', 'nothing was paid', '--json');
    const refused = exitOf(refund);
    check(`\`haat order refund ${REF}\` (nothing was collected) exits`, refused, 'exit 3 conflict');
    const inr = (amount: bigint) => formatMoney({ amount, currency: 'INR' });
    const failed = runs.find((r) => r.code !== 0);
    return {
      did: `${REF} (2 × ${SKU}, ${inr(170_000n)}, cash on delivery): \`haat order place --cod\`, \`haat order confirm ${REF} --cod\`, \`haat order ship ${REF} --tracking ${TRACKING} --courier ${COURIER}\`, \`haat shipment fail ${TRACKING} --reason "refused at the door"\`, \`haat shipment rto ${TRACKING}\`, \`haat shipment rto-receive ${TRACKING}\``,
      saw: `${failed ? `${failed.args.slice(0, 2).join(' ')}: ${exitOf(failed)} ${errorCode(failed) ?? failed.stderr.trim()}; ` : ''}${REF} ${state}; ${SKU} on hand ${confirmed.on_hand} after confirmation, ${after.on_hand} once back (rto_restock ${movements.rto_restock ?? 0n}); ${Object.keys(postings).length} postings for ${REF}, ${ledgerAfter.entries - ledgerBefore.entries} journal entries added; a refund: ${refused}`,
    };
  },
};
