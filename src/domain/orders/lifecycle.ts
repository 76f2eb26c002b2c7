// The order lifecycle's rules (docs/lifecycle.md), pure: which units a ship, cancel, return or refund
// may take from each line; the order's state as it follows from its lines and shipments; and the
// money per seller after a capture, a cash-on-delivery collection or a refund, with the ledger
// postings that move it. No I/O: the handlers (src/commands/lifecycle-handlers.ts) read and lock,
// these decide, the handlers write; the database's CHECKs and triggers bound the same things.
import { normaliseLines } from '../inventory/decide-reservation.ts';
import { allocate, roundHalfEven } from '../money.ts';
import { openShipmentStates, type ShipmentState } from './shipments.ts';
import type { OrderState } from './states.ts';

/** One order line: its frozen price and seller, and what happened to its units so far. */
export type Line = {
  readonly sku: string;
  readonly seller: string;
  readonly qty: bigint;
  readonly unitPrice: bigint;
  readonly cancelled: bigint;
  readonly shipped: bigint;
  readonly delivered: bigint;
  readonly rto: bigint;
  readonly returned: bigint;
};

export type Pick = { readonly sku: string; readonly qty: bigint };

export type Refusal = {
  readonly ok: false;
  readonly code: 'invalid_input' | 'conflict';
  readonly message: string;
  readonly details: Record<string, unknown>;
};

export type PickDecision = { readonly ok: true; readonly picks: readonly Pick[] } | Refusal;

/** Units of a line still to send: neither cancelled nor shipped. */
export const unsent = (l: Line): bigint => l.qty - l.cancelled - l.shipped;

/**
 * The units an action takes, line by line. Without `asked`, every unit `room` leaves (lines with
 * none are skipped); with it, each asked SKU must be a line of the order with that much room.
 * `what` names the action in messages ("ship", "cancel"…); `limit` names the room ("not yet sent").
 */
export function pickUnits(
  lines: readonly Line[],
  asked: readonly Pick[] | undefined,
  room: (line: Line) => bigint,
  what: string,
  limit: string,
): PickDecision {
  if (asked === undefined) {
    const picks = lines.flatMap((l) => (room(l) > 0n ? [{ sku: l.sku, qty: room(l) }] : []));
    if (picks.length === 0) return { ok: false, code: 'conflict', message: `nothing to ${what}: no unit is ${limit}`, details: {} };
    return { ok: true, picks };
  }
  const merged = normaliseLines(asked);
  const bySku = new Map(lines.map((l) => [l.sku, l]));
  const unknown = merged.filter((a) => !bySku.has(a.sku)).map((a) => a.sku);
  if (unknown.length > 0) {
    return { ok: false, code: 'invalid_input', message: `not in this order: ${unknown.join(', ')}`, details: { skus: unknown } };
  }
  const over = merged.flatMap((a) => {
    const line = bySku.get(a.sku);
    const left = line ? room(line) : 0n;
    return a.qty > left ? [{ sku: a.sku, asked: a.qty, available: left }] : [];
  });
  if (over.length > 0) {
    return {
      ok: false,
      code: 'conflict',
      message: `cannot ${what} ${over.map((o) => `${o.asked} of ${o.sku} (${o.available} ${limit})`).join(', ')}`,
      details: { over },
    };
  }
  return { ok: true, picks: merged };
}

/**
 * An order's state past confirmation, from its lines and its shipments' states: every unit
 * cancelled → cancelled; nothing sent → confirmed; some still to send → partially_shipped; all sent
 * and a parcel still on its way → shipped; all back or delivered: delivered when any unit was,
 * else returned_to_origin. A refunded order, and one not yet confirmed, keep their state.
 */
export function deriveOrderState(current: OrderState, lines: readonly Line[], shipments: readonly ShipmentState[]): OrderState {
  if (!['confirmed', 'partially_shipped', 'shipped', 'delivered', 'returned_to_origin'].includes(current)) return current;
  const sum = (f: (l: Line) => bigint) => lines.reduce((s, l) => s + f(l), 0n);
  const qty = sum((l) => l.qty);
  if (sum((l) => l.cancelled) === qty) return 'cancelled';
  if (sum((l) => l.shipped) === 0n) return 'confirmed';
  if (sum(unsent) > 0n) return 'partially_shipped';
  if (shipments.some((s) => openShipmentStates.includes(s))) return 'shipped';
  return sum((l) => l.delivered) > 0n ? 'delivered' : 'returned_to_origin';
}

/** After a refund: a delivered or returned order whose captured money is all refunded is refunded. */
export function stateAfterRefund(current: OrderState, money: readonly SellerMoney[]): OrderState {
  const captured = money.reduce((s, m) => s + m.captured, 0n);
  const refunded = money.reduce((s, m) => s + m.refunded, 0n);
  return (current === 'delivered' || current === 'returned_to_origin') && captured > 0n && refunded === captured ? 'refunded' : current;
}

// ---- Money ----------------------------------------------------------------------------------

/** One seller's money in an order. */
export type SellerMoney = {
  readonly seller: string;
  readonly subtotal: bigint;
  readonly captured: bigint;
  readonly refunded: bigint;
  readonly commissionKept: bigint;
};

/** The rule: the commission kept is round_half_even((captured − refunded) × bps / 10000). */
export function commissionKept(captured: bigint, refunded: bigint, bps: number): bigint {
  return roundHalfEven((captured - refunded) * BigInt(bps), 10_000n);
}

export type Posting = { readonly account: string; readonly amount: bigint };

export type Settlement = {
  readonly next: readonly SellerMoney[];
  /** Seller payables and commission: what the changes move (debits positive, credits negative). */
  readonly postings: readonly Posting[];
  /** Per seller: commission reversed (a refund) or newly kept (a capture), as a positive number. */
  readonly commissionChange: ReadonlyMap<string, bigint>;
};

/**
 * Each seller's money after `captured` and `refunded` more, and the postings that move the
 * seller payables and the commission from before to after. The caller adds the cash side
 * (psp_clearing or cod_receivable:<courier>) equal to Σcaptured − Σrefunded of the change, so the
 * entry balances: payable = (captured − refunded) − commission kept, for every seller, always.
 */
export function settle(
  money: readonly SellerMoney[],
  change: ReadonlyMap<string, { readonly captured?: bigint; readonly refunded?: bigint }>,
  bps: number,
): Settlement {
  const postings: Posting[] = [];
  const commissionChange = new Map<string, bigint>();
  let commissionDelta = 0n;
  const next = money.map((m) => {
    const c = change.get(m.seller);
    if (!c) return m;
    const captured = m.captured + (c.captured ?? 0n);
    const refunded = m.refunded + (c.refunded ?? 0n);
    const kept = commissionKept(captured, refunded, bps);
    const payableBefore = m.captured - m.refunded - m.commissionKept;
    const payableAfter = captured - refunded - kept;
    postings.push({ account: `seller_payable:${m.seller}`, amount: -(payableAfter - payableBefore) });
    commissionDelta += kept - m.commissionKept;
    commissionChange.set(m.seller, kept > m.commissionKept ? kept - m.commissionKept : m.commissionKept - kept);
    return { ...m, captured, refunded, commissionKept: kept };
  });
  postings.push({ account: 'platform_commission', amount: -commissionDelta });
  return { next, postings: postings.filter((p) => p.amount !== 0n), commissionChange };
}

/** Value per seller of some units of an order's lines (their frozen unit prices). */
export function valueBySeller(lines: readonly Line[], picks: readonly Pick[]): Map<string, bigint> {
  const bySku = new Map(lines.map((l) => [l.sku, l]));
  const value = new Map<string, bigint>();
  for (const p of picks) {
    const line = bySku.get(p.sku);
    if (!line) continue;
    value.set(line.seller, (value.get(line.seller) ?? 0n) + line.unitPrice * p.qty);
  }
  return value;
}

export type RefundDecision = { readonly ok: true; readonly bySeller: ReadonlyMap<string, bigint>; readonly amount: bigint } | Refusal;

/**
 * How a refund splits over sellers. By items: each unit's frozen price goes to its seller. By
 * amount: split in proportion to what each seller can still refund (captured − refunded), largest
 * remainder, so the parts add up exactly and none exceeds its seller's room. Both: the amount, split
 * over the items' sellers by their value, at most that value. Neither: everything still refundable.
 * Never above captured − refunded, per seller and in all (`conflict`).
 */
export function decideRefund(
  money: readonly SellerMoney[],
  items: ReadonlyMap<string, bigint> | undefined,
  amount: bigint | undefined,
): RefundDecision {
  const room = new Map(money.map((m) => [m.seller, m.captured - m.refunded]));
  const totalRoom = [...room.values()].reduce((a, b) => a + b, 0n);
  const refuseOver = (asked: bigint) =>
    ({
      ok: false,
      code: 'conflict',
      message: `cannot refund ${asked}: ${totalRoom} was captured and not yet refunded`,
      details: { asked, refundable: totalRoom },
    }) as const;
  let bySeller: Map<string, bigint>;
  if (items === undefined && amount === undefined) {
    bySeller = new Map([...room].filter(([, r]) => r > 0n));
  } else if (items === undefined) {
    const asked = amount ?? 0n;
    if (asked > totalRoom) return refuseOver(asked);
    const sellers = [...room.keys()];
    const parts = allocate(
      asked,
      sellers.map((s) => room.get(s) ?? 0n),
    );
    bySeller = new Map(sellers.map((s, i) => [s, parts[i] ?? 0n]));
  } else if (amount === undefined) {
    bySeller = new Map(items);
  } else {
    const value = [...items.values()].reduce((a, b) => a + b, 0n);
    if (amount > value) {
      return {
        ok: false,
        code: 'conflict',
        message: `cannot refund ${amount} for items worth ${value}`,
        details: { asked: amount, items_value: value },
      };
    }
    const sellers = [...items.keys()];
    const parts = allocate(
      amount,
      sellers.map((s) => items.get(s) ?? 0n),
    );
    bySeller = new Map(sellers.map((s, i) => [s, parts[i] ?? 0n]));
  }
  bySeller = new Map([...bySeller].filter(([, v]) => v > 0n));
  const total = [...bySeller.values()].reduce((a, b) => a + b, 0n);
  if (total === 0n) {
    return {
      ok: false,
      code: 'conflict',
      message: 'nothing to refund: no money was captured and not yet refunded',
      details: { refundable: totalRoom },
    };
  }
  if (total > totalRoom) return refuseOver(total);
  const short = [...bySeller].find(([s, v]) => v > (room.get(s) ?? 0n));
  if (short) {
    const [seller, asked] = short;
    return {
      ok: false,
      code: 'conflict',
      message: `cannot refund ${asked} of seller ${seller}: ${room.get(seller) ?? 0n} of its captured money is not yet refunded`,
      details: { seller, asked, refundable: room.get(seller) ?? 0n },
    };
  }
  return { ok: true, bySeller, amount: total };
}
