// The order lifecycle's pure rules (src/domain/orders/lifecycle.ts): which units an action may take,
// the order's state from its lines and shipments, and the money per seller through captures and
// refunds, with property tests (fast-check) that partial refunds keep the commission by the rule,
// balance every entry, never refund more than was captured, and end with every account at zero.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_PRICE } from '../../src/domain/money.ts';
import {
  commissionKept,
  decideRefund,
  deriveOrderState,
  type Line,
  type Posting,
  pickUnits,
  type SellerMoney,
  type Settlement,
  settle,
  stateAfterRefund,
  unsent,
  valueBySeller,
} from '../../src/domain/orders/lifecycle.ts';
import { type ShipmentState, shipmentMachine, shipmentTransitions } from '../../src/domain/orders/shipments.ts';
import { decideTransition, type OrderState, transitions } from '../../src/domain/orders/states.ts';

const line = (sku: string, qty: bigint, counts: Partial<Omit<Line, 'sku' | 'qty'>> = {}): Line => ({
  sku,
  seller: 'tea-house',
  qty,
  unitPrice: 100n,
  cancelled: 0n,
  shipped: 0n,
  delivered: 0n,
  rto: 0n,
  returned: 0n,
  ...counts,
});
const money = (seller: string, m: Partial<Omit<SellerMoney, 'seller'>> = {}): SellerMoney => ({
  seller,
  subtotal: m.captured ?? 0n,
  captured: 0n,
  refunded: 0n,
  commissionKept: 0n,
  ...m,
});
/** Captured and kept by the rule, as a confirmation leaves it. */
const captured = (seller: string, amount: bigint, bps: number, refunded = 0n): SellerMoney =>
  money(seller, { subtotal: amount, captured: amount, refunded, commissionKept: independentKept(amount - refunded, bps) });

/**
 * The commission rule computed apart from the code under test: the integer nearest net × bps /
 * 10000, a tie to the even one, by comparing twice the remainder with the divisor.
 */
function independentKept(net: bigint, bps: number): bigint {
  const n = net * BigInt(bps);
  const q = n / 10_000n;
  const twice = (n - q * 10_000n) * 2n;
  if (twice > 10_000n) return q + 1n;
  if (twice === 10_000n) return q % 2n === 0n ? q : q + 1n;
  return q;
}

const sum = (values: Iterable<bigint>) => [...values].reduce((a, b) => a + b, 0n);

/** The entry the handlers post for a settlement: the cash side plus the settlement's postings. */
function entryOf(change: ReadonlyMap<string, { captured?: bigint; refunded?: bigint }>, s: Settlement, cashAccount: string): Posting[] {
  const cash = sum([...change.values()].map((c) => (c.captured ?? 0n) - (c.refunded ?? 0n)));
  return [{ account: cashAccount, amount: cash }, ...s.postings];
}

/** How much of what is left a step takes: one paisa, or a fraction of it (parts per million). */
const share = fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: 1_000_000 }));
/** Some of `room`: 1 for the one-paisa share, else ⌈room × share / 10^6⌉, in 1..room (0 when room is 0). */
function take(room: bigint, s: number): bigint {
  if (room <= 0n) return 0n;
  if (s < 0) return 1n;
  const t = (room * BigInt(s) + 999_999n) / 1_000_000n;
  return t < 1n ? 1n : t > room ? room : t;
}

describe('pickUnits', () => {
  const lines = [line('A', 3n, { shipped: 1n }), line('B', 2n, { cancelled: 2n }), line('C', 4n)];

  test('without items: every unit the room leaves, line by line, skipping lines with none', () => {
    assert.deepEqual(pickUnits(lines, undefined, unsent, 'ship', 'left to send'), {
      ok: true,
      picks: [
        { sku: 'A', qty: 2n },
        { sku: 'C', qty: 4n },
      ],
    });
  });

  test('without items and no room anywhere: conflict, nothing to do', () => {
    assert.deepEqual(
      pickUnits([line('A', 1n, { shipped: 1n }), line('B', 2n, { cancelled: 1n, shipped: 1n })], undefined, unsent, 'ship', 'left to send'),
      { ok: false, code: 'conflict', message: 'nothing to ship: no unit is left to send', details: {} },
    );
    assert.equal(pickUnits([], undefined, unsent, 'cancel', 'not yet dispatched').ok, false);
  });

  test('an SKU not in the order is invalid_input, naming every such SKU', () => {
    assert.deepEqual(
      pickUnits(
        lines,
        [
          { sku: 'Z', qty: 1n },
          { sku: 'A', qty: 1n },
          { sku: 'Y', qty: 1n },
        ],
        unsent,
        'ship',
        'left to send',
      ),
      { ok: false, code: 'invalid_input', message: 'not in this order: Y, Z', details: { skus: ['Y', 'Z'] } },
    );
  });

  test('asking more than the room is conflict, naming each line over it', () => {
    assert.deepEqual(
      pickUnits(
        lines,
        [
          { sku: 'A', qty: 3n },
          { sku: 'B', qty: 1n },
          { sku: 'C', qty: 4n },
        ],
        unsent,
        'ship',
        'left to send',
      ),
      {
        ok: false,
        code: 'conflict',
        message: 'cannot ship 3 of A (2 left to send), 1 of B (0 left to send)',
        details: {
          over: [
            { sku: 'A', asked: 3n, available: 2n },
            { sku: 'B', asked: 1n, available: 0n },
          ],
        },
      },
    );
  });

  test('duplicate SKUs add up (sorted), within the room and past it', () => {
    assert.deepEqual(
      pickUnits(
        lines,
        [
          { sku: 'C', qty: 1n },
          { sku: 'A', qty: 1n },
          { sku: 'C', qty: 2n },
          { sku: 'A', qty: 1n },
        ],
        unsent,
        'ship',
        'left to send',
      ),
      {
        ok: true,
        picks: [
          { sku: 'A', qty: 2n },
          { sku: 'C', qty: 3n },
        ],
      },
    );
    const over = pickUnits(
      lines,
      [
        { sku: 'A', qty: 2n },
        { sku: 'A', qty: 1n },
      ],
      unsent,
      'ship',
      'left to send',
    );
    assert.deepEqual(over.ok === false && over.details, { over: [{ sku: 'A', asked: 3n, available: 2n }] });
  });

  test('the room is the caller’s: a return takes delivered and not returned units', () => {
    const delivered = [line('A', 5n, { shipped: 5n, delivered: 3n, returned: 1n, rto: 2n })];
    const room = (l: Line) => l.delivered - l.returned;
    assert.deepEqual(pickUnits(delivered, undefined, room, 'return', 'delivered'), { ok: true, picks: [{ sku: 'A', qty: 2n }] });
    assert.equal(pickUnits(delivered, [{ sku: 'A', qty: 3n }], room, 'return', 'delivered').ok, false);
  });

  test('unsent is qty − cancelled − shipped; valueBySeller prices units at their frozen unit price', () => {
    assert.equal(unsent(line('A', 10n, { cancelled: 3n, shipped: 4n, delivered: 4n })), 3n);
    const two = [
      line('A', 2n, { unitPrice: 12999n }),
      line('B', 5n, { seller: 'rice-co', unitPrice: 333n }),
      line('C', 1n, { unitPrice: 1n }),
    ];
    assert.deepEqual(
      valueBySeller(two, [
        { sku: 'A', qty: 2n },
        { sku: 'B', qty: 3n },
        { sku: 'C', qty: 1n },
        { sku: 'nope', qty: 9n },
      ]),
      new Map([
        ['tea-house', 2n * 12999n + 1n],
        ['rice-co', 999n],
      ]),
    );
  });
});

describe('deriveOrderState', () => {
  const derive = (lines: Line[], shipments: ShipmentState[] = [], current: OrderState = 'confirmed') =>
    deriveOrderState(current, lines, shipments);

  test('every unit cancelled: cancelled', () => {
    assert.equal(derive([line('A', 2n, { cancelled: 2n }), line('B', 1n, { cancelled: 1n })]), 'cancelled');
  });

  test('nothing sent yet (some units maybe cancelled): confirmed', () => {
    assert.equal(derive([line('A', 2n)]), 'confirmed');
    assert.equal(derive([line('A', 2n, { cancelled: 1n }), line('B', 1n)]), 'confirmed');
  });

  test('some sent and some still to send: partially_shipped, whatever the shipments did', () => {
    const lines = [line('A', 2n, { shipped: 1n, delivered: 1n }), line('B', 1n)];
    assert.equal(derive(lines, ['dispatched']), 'partially_shipped');
    assert.equal(derive(lines, ['delivered']), 'partially_shipped');
    assert.equal(derive([line('A', 3n, { shipped: 1n, rto: 1n })], ['rto_received']), 'partially_shipped');
  });

  test('everything sent or cancelled and a parcel still on its way: shipped', () => {
    const lines = [line('A', 2n, { shipped: 2n, delivered: 1n }), line('B', 1n, { cancelled: 1n })];
    for (const open of ['dispatched', 'delivery_failed', 'rto_initiated'] as const) {
      assert.equal(derive(lines, ['delivered', open]), 'shipped', open);
    }
    assert.equal(derive([line('A', 1n, { shipped: 1n })], ['dispatched'], 'partially_shipped'), 'shipped');
  });

  test('every parcel done and a unit delivered: delivered (some may have come back)', () => {
    assert.equal(derive([line('A', 2n, { shipped: 2n, delivered: 2n })], ['delivered'], 'shipped'), 'delivered');
    assert.equal(
      derive(
        [line('A', 2n, { shipped: 2n, delivered: 1n, rto: 1n }), line('B', 1n, { cancelled: 1n })],
        ['delivered', 'rto_received'],
        'shipped',
      ),
      'delivered',
    );
    assert.equal(derive([line('A', 2n, { shipped: 2n, delivered: 2n, returned: 2n })], ['delivered'], 'delivered'), 'delivered');
  });

  test('every parcel back at origin, none delivered: returned_to_origin', () => {
    assert.equal(derive([line('A', 2n, { shipped: 2n, rto: 2n })], ['rto_received', 'rto_received'], 'shipped'), 'returned_to_origin');
    assert.equal(
      derive([line('A', 2n, { cancelled: 1n, shipped: 1n, rto: 1n })], ['rto_received'], 'partially_shipped'),
      'returned_to_origin',
    );
  });

  test('a refunded order, and one not past confirmation, keep their state', () => {
    const lines = [line('A', 2n, { shipped: 2n, delivered: 2n })];
    for (const kept of ['pending', 'cancelled', 'expired', 'rejected', 'refunded'] as const) {
      assert.equal(deriveOrderState(kept, lines, ['delivered']), kept, kept);
      assert.equal(deriveOrderState(kept, [line('A', 2n, { cancelled: 2n })], []), kept, kept);
    }
  });

  test('along any run of ships, cancels and shipment moves, each state it derives is one allowed move away (or the same)', () => {
    const action = fc.oneof(
      fc.record({ kind: fc.constant('ship' as const), line: fc.nat(2), share }),
      fc.record({ kind: fc.constant('cancel' as const), line: fc.nat(2), share }),
      // A shipment's move: one its machine allows (the `choice`-th), to keep runs going somewhere.
      { arbitrary: fc.record({ kind: fc.constant('move' as const), shipment: fc.nat(5), choice: fc.nat(2) }), weight: 3 },
    );
    const seen = new Set<OrderState>();
    const moved = new Set<string>();
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
        fc.array(action, { maxLength: 40, size: 'large' }),
        (qtys, actions) => {
          const lines = qtys.map((q, i) => ({ ...line(`S${i}`, BigInt(q)) }));
          const shipments: { state: ShipmentState; items: Map<number, bigint> }[] = [];
          const add = (i: number, field: 'cancelled' | 'shipped' | 'delivered' | 'rto', qty: bigint) => {
            const l = lines[i] as Line;
            lines[i] = { ...l, [field]: l[field] + qty };
          };
          let state: OrderState = 'confirmed';
          seen.add(state);
          for (const a of actions) {
            if (a.kind === 'move') {
              const s = shipments[a.shipment % Math.max(shipments.length, 1)];
              const moves = s ? shipmentTransitions[s.state] : [];
              const to = moves[a.choice % Math.max(moves.length, 1)];
              if (!s || !to) continue;
              assert.deepEqual(shipmentMachine.decide(s.state, to), { ok: true });
              s.state = to;
              for (const [i, qty] of s.items) {
                if (to === 'delivered') add(i, 'delivered', qty);
                if (to === 'rto_received') add(i, 'rto', qty);
              }
            } else {
              // The handlers ship and cancel only a confirmed or partially shipped order, units not yet sent.
              if (state !== 'confirmed' && state !== 'partially_shipped') continue;
              const i = a.line % lines.length;
              const qty = take(unsent(lines[i] as Line), a.share);
              if (qty === 0n) continue;
              if (a.kind === 'ship') {
                add(i, 'shipped', qty);
                shipments.push({ state: 'dispatched', items: new Map([[i, qty]]) });
              } else add(i, 'cancelled', qty);
            }
            const next = deriveOrderState(
              state,
              lines,
              shipments.map((s) => s.state),
            );
            if (next !== state) {
              assert.deepEqual(decideTransition(state, next), { ok: true }, `${state} -> ${next}`);
              moved.add(`${state} -> ${next}`);
            }
            state = next;
            seen.add(state);
          }
          for (const l of lines) assert.ok(l.delivered + l.rto <= l.shipped && l.cancelled + l.shipped <= l.qty);
        },
      ),
      { numRuns: 500 },
    );
    assert.deepEqual(
      [...seen].sort(),
      ['cancelled', 'confirmed', 'delivered', 'partially_shipped', 'returned_to_origin', 'shipped'],
      'the runs reach every state past confirmation',
    );
    assert.deepEqual(
      [...moved].sort(),
      Object.entries(transitions)
        .filter(([from]) => from !== 'pending')
        .flatMap(([from, tos]) => tos.filter((to) => to !== 'refunded').map((to) => `${from} -> ${to}`))
        .sort(),
      'and make every move of the table past confirmation (refunds aside)',
    );
  });
});

describe('stateAfterRefund', () => {
  const all = [captured('a', 500n, 1000, 500n), captured('b', 300n, 1000, 300n)];
  const some = [captured('a', 500n, 1000, 500n), captured('b', 300n, 1000, 299n)];

  test('a delivered or returned order with all its captured money refunded is refunded', () => {
    assert.equal(stateAfterRefund('delivered', all), 'refunded');
    assert.equal(stateAfterRefund('returned_to_origin', all), 'refunded');
  });

  test('one paisa still captured keeps it; so does a state still on its way; nothing captured is not a refund', () => {
    assert.equal(stateAfterRefund('delivered', some), 'delivered');
    for (const s of ['shipped', 'partially_shipped', 'confirmed'] as const) assert.equal(stateAfterRefund(s, all), s);
    assert.equal(stateAfterRefund('returned_to_origin', [money('a', { subtotal: 500n })]), 'returned_to_origin');
    assert.equal(stateAfterRefund('delivered', []), 'delivered');
  });
});

describe('commissionKept', () => {
  test('is round_half_even((captured − refunded) × bps / 10000)', () => {
    assert.equal(commissionKept(333n, 0n, 1000), 33n); // 33.3
    assert.equal(commissionKept(335n, 0n, 1000), 34n); // 33.5 → even 34
    assert.equal(commissionKept(325n, 0n, 1000), 32n); // 32.5 → even 32
    assert.equal(commissionKept(333n, 8n, 1000), 32n); // 32.5 → even 32
    assert.equal(commissionKept(1n, 0n, 5000), 0n); // 0.5 → even 0
    assert.equal(commissionKept(3n, 0n, 5000), 2n); // 1.5 → even 2
    assert.equal(commissionKept(12999n, 12999n, 1000), 0n);
    assert.equal(commissionKept(12999n, 0n, 0), 0n);
    assert.equal(commissionKept(12999n, 1n, 10_000), 12998n);
  });

  test('agrees with the rule computed apart, for any amounts', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_PRICE * 1000n }),
        fc.bigInt({ min: 0n, max: MAX_PRICE }),
        fc.integer({ min: 0, max: 10_000 }),
        (a, b, bps) => {
          const [cap, ref] = a >= b ? [a, b] : [b, a];
          assert.equal(commissionKept(cap, ref, bps), independentKept(cap - ref, bps));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('settle', () => {
  test('a capture: payables and commission credited, balanced by the cash side', () => {
    const before = [money('rice-co', { subtotal: 333n }), money('tea-house', { subtotal: 12999n })];
    const change = new Map([
      ['rice-co', { captured: 333n }],
      ['tea-house', { captured: 12999n }],
    ]);
    const s = settle(before, change, 1000);
    assert.deepEqual(s.next, [
      { seller: 'rice-co', subtotal: 333n, captured: 333n, refunded: 0n, commissionKept: 33n },
      { seller: 'tea-house', subtotal: 12999n, captured: 12999n, refunded: 0n, commissionKept: 1300n },
    ]);
    assert.deepEqual(s.postings, [
      { account: 'seller_payable:rice-co', amount: -300n },
      { account: 'seller_payable:tea-house', amount: -11699n },
      { account: 'platform_commission', amount: -1333n },
    ]);
    assert.deepEqual(
      s.commissionChange,
      new Map([
        ['rice-co', 33n],
        ['tea-house', 1300n],
      ]),
    );
    assert.equal(sum(entryOf(change, s, 'psp_clearing').map((p) => p.amount)), 0n);
  });

  test('refunds of 333 paise at 1000 bps: the commission moves only when the rule says so', () => {
    let m: readonly SellerMoney[] = [captured('rice-co', 333n, 1000)];
    const steps: [bigint, bigint, Posting[]][] = [
      // refunded, kept after, postings
      [1n, 33n, [{ account: 'seller_payable:rice-co', amount: 1n }]], // 33.2 → 33: nothing reversed
      [
        8n,
        32n,
        [
          { account: 'seller_payable:rice-co', amount: 6n },
          { account: 'platform_commission', amount: 1n },
        ],
      ], // 32.5 → even 32
      [
        333n,
        0n,
        [
          { account: 'seller_payable:rice-co', amount: 293n },
          { account: 'platform_commission', amount: 32n },
        ],
      ],
    ];
    for (const [total, kept, postings] of steps) {
      const step = total - (m[0]?.refunded ?? 0n);
      const change = new Map([['rice-co', { refunded: step }]]);
      const s = settle(m, change, 1000);
      assert.equal(s.next[0]?.commissionKept, kept, `after ${total} refunded`);
      assert.deepEqual(s.postings, postings, `after ${total} refunded`);
      assert.equal(sum(entryOf(change, s, 'psp_clearing').map((p) => p.amount)), 0n);
      m = s.next;
    }
    assert.deepEqual(m, [{ seller: 'rice-co', subtotal: 333n, captured: 333n, refunded: 333n, commissionKept: 0n }]);
  });

  test('payable is captured − refunded − commission kept after any change; sellers not changed are left alone', () => {
    const before = [captured('a', 1000n, 250), captured('b', 777n, 250, 77n)];
    const change = new Map([['b', { refunded: 100n }]]);
    const s = settle(before, change, 250);
    assert.equal(s.next[0], before[0], 'a is untouched');
    assert.ok(!s.postings.some((p) => p.account === 'seller_payable:a'));
    const b = s.next[1] as SellerMoney;
    const payable = (m: SellerMoney) => m.captured - m.refunded - m.commissionKept;
    const moved = s.postings.find((p) => p.account === 'seller_payable:b')?.amount ?? 0n;
    assert.equal(-moved, payable(b) - payable(before[1] as SellerMoney));
    assert.equal(b.commissionKept, independentKept(600n, 250));
  });

  test('a cash-on-delivery collection moves money the same way, balanced by the courier’s receivable', () => {
    const change = new Map([['a', { captured: 500n }]]);
    const s = settle([money('a', { subtotal: 1000n })], change, 1500);
    const entry = entryOf(change, s, 'cod_receivable:delhivery');
    assert.deepEqual(entry, [
      { account: 'cod_receivable:delhivery', amount: 500n },
      { account: 'seller_payable:a', amount: -425n },
      { account: 'platform_commission', amount: -75n },
    ]);
  });
});

describe('decideRefund', () => {
  const two = [captured('rice-co', 33333n, 1000), captured('tea-house', 12999n, 1000)];

  test('by items: each seller gets its items’ value', () => {
    const items = new Map([
      ['tea-house', 12999n],
      ['rice-co', 333n],
    ]);
    assert.deepEqual(decideRefund(two, items, undefined), { ok: true, bySeller: items, amount: 13332n });
  });

  test('by amount: split by what each seller can still refund, adding up exactly', () => {
    const d = decideRefund(two, undefined, 10_000n);
    assert.equal(d.ok, true);
    if (!d.ok) return;
    assert.equal(d.amount, 10_000n);
    // 10000 × 33333 / 46332 = 7194.38…, 10000 × 12999 / 46332 = 2805.61…: the larger remainder gets the unit.
    assert.deepEqual(
      d.bySeller,
      new Map([
        ['rice-co', 7194n],
        ['tea-house', 2806n],
      ]),
    );
  });

  test('by amount and items: the amount split over the items’ sellers, at most their value', () => {
    const items = new Map([
      ['tea-house', 5000n],
      ['rice-co', 3000n],
    ]);
    assert.deepEqual(decideRefund(two, items, 4000n), {
      ok: true,
      bySeller: new Map([
        ['tea-house', 2500n],
        ['rice-co', 1500n],
      ]),
      amount: 4000n,
    });
    assert.deepEqual(decideRefund(two, items, 8001n), {
      ok: false,
      code: 'conflict',
      message: 'cannot refund 8001 for items worth 8000',
      details: { asked: 8001n, items_value: 8000n },
    });
    const one = decideRefund(two, new Map([['tea-house', 5000n]]), 5000n);
    assert.deepEqual(one.ok && one.bySeller, new Map([['tea-house', 5000n]]), 'another seller’s money is not touched');
  });

  test('neither: everything still refundable, sellers with nothing left skipped', () => {
    const partly = [captured('rice-co', 33333n, 1000, 33333n), captured('tea-house', 12999n, 1000, 999n)];
    assert.deepEqual(decideRefund(partly, undefined, undefined), { ok: true, bySeller: new Map([['tea-house', 12000n]]), amount: 12000n });
    assert.deepEqual(decideRefund(two, undefined, undefined), {
      ok: true,
      bySeller: new Map([
        ['rice-co', 33333n],
        ['tea-house', 12999n],
      ]),
      amount: 46332n,
    });
  });

  test('more than captured − refunded is conflict, by amount or by items', () => {
    const partly = [captured('rice-co', 300n, 1000, 100n), captured('tea-house', 100n, 1000)];
    assert.deepEqual(decideRefund(partly, undefined, 301n), {
      ok: false,
      code: 'conflict',
      message: 'cannot refund 301: 300 was captured and not yet refunded',
      details: { asked: 301n, refundable: 300n },
    });
    assert.equal(decideRefund(partly, undefined, 300n).ok, true);
    const byItems = decideRefund(
      partly,
      new Map([
        ['rice-co', 200n],
        ['tea-house', 101n],
      ]),
      undefined,
    );
    assert.deepEqual(byItems.ok === false && byItems.details, { asked: 301n, refundable: 300n });
  });

  test('a seller short of what its items ask is conflict, naming the seller, though the order has room', () => {
    const m = [captured('rice-co', 100n, 1000), captured('tea-house', 1000n, 1000)];
    assert.deepEqual(decideRefund(m, new Map([['rice-co', 200n]]), undefined), {
      ok: false,
      code: 'conflict',
      message: 'cannot refund 200 of seller rice-co: 100 of its captured money is not yet refunded',
      details: { seller: 'rice-co', asked: 200n, refundable: 100n },
    });
    const strange = decideRefund(m, new Map([['nobody', 5n]]), undefined);
    assert.deepEqual(strange.ok === false && strange.details, { seller: 'nobody', asked: 5n, refundable: 0n });
  });

  test('nothing captured or all refunded: conflict, nothing to refund', () => {
    const none = [money('a', { subtotal: 500n })];
    const refusal = {
      ok: false,
      code: 'conflict',
      message: 'nothing to refund: no money was captured and not yet refunded',
      details: { refundable: 0n },
    };
    assert.deepEqual(decideRefund(none, undefined, undefined), refusal);
    assert.deepEqual(decideRefund([captured('a', 5n, 0, 5n)], undefined, undefined), refusal);
    assert.deepEqual(decideRefund(none, new Map([['a', 0n]]), undefined), refusal, 'items worth nothing');
    assert.equal(decideRefund(none, undefined, 1n).ok, false);
  });

  test('one paisa: to one seller only, the one with the larger room', () => {
    const m = [captured('a', 100n, 1000), captured('b', 300n, 1000)];
    assert.deepEqual(decideRefund(m, undefined, 1n), { ok: true, bySeller: new Map([['b', 1n]]), amount: 1n });
    assert.deepEqual(decideRefund(m, new Map([['a', 1n]]), undefined), { ok: true, bySeller: new Map([['a', 1n]]), amount: 1n });
    const last = [captured('a', 100n, 1000, 99n), captured('b', 300n, 1000, 300n)];
    assert.deepEqual(decideRefund(last, undefined, 1n), { ok: true, bySeller: new Map([['a', 1n]]), amount: 1n });
    assert.equal(decideRefund(last, undefined, 2n).ok, false);
  });

  test('a seller whose commission does not divide evenly (1000 bps on 333): three refunds of 111 reverse 11 each, 33 in all', () => {
    let m: readonly SellerMoney[] = [captured('odd', 333n, 1000)];
    assert.equal(m[0]?.commissionKept, 33n);
    const reversed: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const d = decideRefund(m, undefined, 111n);
      assert.ok(d.ok);
      const s = settle(m, new Map([...d.bySeller].map(([seller, v]) => [seller, { refunded: v }])), 1000);
      reversed.push(s.commissionChange.get('odd') ?? 0n);
      m = s.next;
    }
    assert.deepEqual(reversed, [11n, 11n, 11n]);
    assert.deepEqual(m[0], { seller: 'odd', subtotal: 333n, captured: 333n, refunded: 333n, commissionKept: 0n });
    assert.equal(decideRefund(m, undefined, 1n).ok, false);
  });
});

// ---- Properties -------------------------------------------------------------------------------

const subtotal = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: MAX_PRICE }));
const order = fc.record({
  subtotals: fc.array(subtotal, { minLength: 1, maxLength: 4 }),
  bps: fc.integer({ min: 0, max: 10_000 }),
});
const refundStep = fc.oneof(
  fc.record({ by: fc.constant('amount' as const), share }),
  fc.record({ by: fc.constant('items' as const), sellers: fc.array(fc.tuple(fc.nat(3), share), { minLength: 1, maxLength: 4 }) }),
  fc.record({ by: fc.constant('both' as const), sellers: fc.array(fc.tuple(fc.nat(3), share), { minLength: 1, maxLength: 4 }), share }),
);

/** A ledger of one order: account → balance (debits positive). */
class Ledger {
  readonly balances = new Map<string, bigint>();
  post(entry: readonly Posting[]): void {
    assert.equal(
      sum(entry.map((p) => p.amount)),
      0n,
      `the entry balances: ${JSON.stringify(entry, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))}`,
    );
    for (const p of entry) this.balances.set(p.account, (this.balances.get(p.account) ?? 0n) + p.amount);
  }
  of(account: string): bigint {
    return this.balances.get(account) ?? 0n;
  }
}

function assertByTheRule(m: readonly SellerMoney[], bps: number, ledger: Ledger, cashAccounts: readonly string[]): void {
  for (const s of m) {
    assert.ok(s.refunded >= 0n && s.refunded <= s.captured && s.captured <= s.subtotal, `${s.seller}: 0 ≤ refunded ≤ captured ≤ subtotal`);
    assert.equal(s.commissionKept, independentKept(s.captured - s.refunded, bps), `${s.seller}: commission kept by the rule`);
    const payable = s.captured - s.refunded - s.commissionKept;
    assert.ok(payable >= 0n, `${s.seller}: payable not negative`);
    assert.equal(ledger.of(`seller_payable:${s.seller}`), -payable, `${s.seller}: payable = captured − refunded − kept`);
  }
  assert.equal(ledger.of('platform_commission'), -sum(m.map((s) => s.commissionKept)));
  assert.equal(sum(cashAccounts.map((a) => ledger.of(a))), sum(m.map((s) => s.captured - s.refunded)));
}

/** Applies a refund decision with settle() and posts its entry, checking what the refund promised. */
function refund(m: readonly SellerMoney[], bySeller: ReadonlyMap<string, bigint>, bps: number, ledger: Ledger): readonly SellerMoney[] {
  const change = new Map([...bySeller].map(([seller, v]) => [seller, { refunded: v }]));
  const s = settle(m, change, bps);
  ledger.post(entryOf(change, s, 'psp_clearing'));
  for (const [seller, v] of bySeller) {
    const before = m.find((x) => x.seller === seller) as SellerMoney;
    const after = s.next.find((x) => x.seller === seller) as SellerMoney;
    assert.equal(after.refunded - before.refunded, v);
    assert.equal(
      s.commissionChange.get(seller),
      before.commissionKept - after.commissionKept,
      'commission reversed, as allocations record it',
    );
  }
  return s.next;
}

function decideStep(m: readonly SellerMoney[], step: StepValue) {
  const room = new Map(m.map((s) => [s.seller, s.captured - s.refunded]));
  const total = sum(room.values());
  const sellers = m.map((s) => s.seller);
  const itemsOf = (picks: readonly [number, number][]) => {
    const items = new Map<string, bigint>();
    for (const [i, sh] of picks) {
      const seller = sellers[i % sellers.length] as string;
      if (items.has(seller)) continue;
      const v = take(room.get(seller) ?? 0n, sh);
      if (v > 0n) items.set(seller, v);
    }
    return items;
  };
  if (step.by === 'amount') return { items: undefined, amount: take(total, step.share) };
  if (step.by === 'items') return { items: itemsOf(step.sellers), amount: undefined };
  const items = itemsOf(step.sellers);
  return { items, amount: take(sum(items.values()), step.share) };
}
type StepValue =
  | { by: 'amount'; share: number }
  | { by: 'items'; sellers: [number, number][] }
  | { by: 'both'; sellers: [number, number][]; share: number };

describe('money properties of the lifecycle', () => {
  test('partial refunds keep the commission by the rule, balance every entry, and a last full refund leaves every account at zero', () => {
    fc.assert(
      fc.property(order, fc.array(refundStep, { maxLength: 12 }), ({ subtotals, bps }, steps) => {
        const ledger = new Ledger();
        const sellers = subtotals.map((sub, i) => money(`s-${i + 1}`, { subtotal: sub }));
        // Confirmation captures every seller's subtotal (prepaid).
        const capture = new Map(sellers.map((s) => [s.seller, { captured: s.subtotal }]));
        const confirmed = settle(sellers, capture, bps);
        ledger.post(entryOf(capture, confirmed, 'psp_clearing'));
        let m = confirmed.next;
        assertByTheRule(m, bps, ledger, ['psp_clearing']);
        for (const step of steps) {
          const { items, amount } = decideStep(m, step);
          if (amount === 0n || (items !== undefined && items.size === 0)) continue;
          const d = decideRefund(m, items, amount);
          assert.ok(d.ok, `a refund within the room is allowed: ${!d.ok && d.message}`);
          if (amount !== undefined) assert.equal(d.amount, amount, 'the amount asked, exactly');
          if (items !== undefined && amount === undefined) assert.deepEqual(d.bySeller, items);
          assert.equal(d.amount, sum(d.bySeller.values()));
          m = refund(m, d.bySeller, bps, ledger);
          assertByTheRule(m, bps, ledger, ['psp_clearing']);
        }
        const rest = decideRefund(m, undefined, undefined);
        const left = sum(m.map((s) => s.captured - s.refunded));
        if (left === 0n) {
          assert.equal(rest.ok, false, 'nothing left to refund');
        } else {
          assert.ok(rest.ok);
          assert.equal(rest.amount, left);
          m = refund(m, rest.bySeller, bps, ledger);
        }
        assertByTheRule(m, bps, ledger, ['psp_clearing']);
        assert.equal(ledger.of('psp_clearing'), 0n);
        assert.equal(ledger.of('platform_commission'), 0n);
        for (const s of m) {
          assert.equal(ledger.of(`seller_payable:${s.seller}`), 0n, s.seller);
          assert.equal(s.commissionKept, 0n);
        }
        for (const [account, balance] of ledger.balances) assert.equal(balance, 0n, account);
      }),
      { numRuns: 400 },
    );
  });

  test('cash on delivery: collections into the courier’s receivable, refunds out of psp_clearing, by the same rule', () => {
    const collect = fc.record({ seller: fc.nat(3), share });
    const step = fc.oneof(
      fc.record({ kind: fc.constant('collect' as const), collect }),
      fc.record({ kind: fc.constant('refund' as const), step: refundStep }),
    );
    fc.assert(
      fc.property(order, fc.array(step, { maxLength: 12 }), ({ subtotals, bps }, steps) => {
        const ledger = new Ledger();
        const cashAccounts = ['psp_clearing', 'cod_receivable:delhivery'];
        let m: readonly SellerMoney[] = subtotals.map((sub, i) => money(`s-${i + 1}`, { subtotal: sub }));
        for (const s of steps) {
          if (s.kind === 'collect') {
            const seller = m[s.collect.seller % m.length] as SellerMoney;
            const v = take(seller.subtotal - seller.captured, s.collect.share);
            if (v === 0n) continue;
            const change = new Map([[seller.seller, { captured: v }]]);
            const settled = settle(m, change, bps);
            ledger.post(entryOf(change, settled, 'cod_receivable:delhivery'));
            m = settled.next;
          } else {
            const { items, amount } = decideStep(m, s.step);
            if (amount === 0n || (items !== undefined && items.size === 0)) continue;
            const d = decideRefund(m, items, amount);
            assert.ok(d.ok, `a refund within the room is allowed: ${!d.ok && d.message}`);
            m = refund(m, d.bySeller, bps, ledger);
          }
          assertByTheRule(m, bps, ledger, cashAccounts);
        }
        const rest = decideRefund(m, undefined, undefined);
        if (rest.ok) m = refund(m, rest.bySeller, bps, ledger);
        assertByTheRule(m, bps, ledger, cashAccounts);
        assert.equal(ledger.of('platform_commission'), 0n);
        for (const s of m) assert.equal(ledger.of(`seller_payable:${s.seller}`), 0n, s.seller);
        assert.equal(
          ledger.of('psp_clearing') + ledger.of('cod_receivable:delhivery'),
          0n,
          'the courier owes what the buyer was not refunded: none',
        );
      }),
      { numRuns: 300 },
    );
  });

  test('decideRefund never allows refunded > captured, for any money and any request', () => {
    const sellerMoney = fc
      .tuple(fc.bigInt({ min: 0n, max: 10n ** 9n }), fc.nat(1_000_000), fc.nat(1_000_000), fc.integer({ min: 0, max: 10_000 }))
      .map(([sub, c, r, bps]) => {
        const cap = (sub * BigInt(c)) / 1_000_000n;
        const ref = (cap * BigInt(r)) / 1_000_000n;
        return { sub, cap, ref, bps };
      });
    const request = fc.record({
      items: fc.option(fc.array(fc.tuple(fc.nat(4), fc.oneof(fc.constant(1n), fc.bigInt({ min: 0n, max: 10n ** 9n }))), { maxLength: 5 }), {
        nil: undefined,
      }),
      amount: fc.option(fc.oneof(fc.constant(1n), fc.bigInt({ min: 0n, max: 3n * 10n ** 9n })), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(sellerMoney, { minLength: 1, maxLength: 4 }), request, (raw, req) => {
        const bps = raw[0]?.bps ?? 0;
        const m = raw.map((r, i) =>
          money(`s-${i + 1}`, { subtotal: r.sub, captured: r.cap, refunded: r.ref, commissionKept: independentKept(r.cap - r.ref, bps) }),
        );
        // Items may name a seller the order does not have (index 4 of at most 4 sellers).
        const items =
          req.items === undefined ? undefined : new Map(req.items.map(([i, v]) => [i < m.length ? `s-${i + 1}` : 'stranger', v]));
        const d = decideRefund(m, items, req.amount);
        const room = sum(m.map((s) => s.captured - s.refunded));
        if (!d.ok) {
          assert.equal(d.code, 'conflict');
          return;
        }
        assert.ok(d.amount > 0n && d.amount <= room, 'within what is refundable');
        assert.equal(d.amount, sum(d.bySeller.values()));
        if (req.amount !== undefined) assert.equal(d.amount, req.amount);
        for (const [seller, v] of d.bySeller) {
          const s = m.find((x) => x.seller === seller);
          assert.ok(s, `${seller} is a seller of the order`);
          assert.ok(v > 0n && s.refunded + v <= s.captured, `${seller}: refunded stays within captured`);
        }
        const after = settle(m, new Map([...d.bySeller].map(([seller, v]) => [seller, { refunded: v }])), bps).next;
        for (const s of after) assert.ok(s.refunded <= s.captured);
      }),
      { numRuns: 1000 },
    );
  });
});
