// Order commands: placement (all items reserved, or the order recorded rejected), and every move of
// the state machine with the effect bound to it, in the command's one transaction:
// confirm finalises the reservations; cancel from pending releases them; cancel from confirmed
// restocks; ship, deliver and refund move the state. Each locks the order row first.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { findSku } from '../db/catalog.ts';
import { type CommandRef, reserve } from '../db/inventory.ts';
import { captureOrder, findPayment, recordPayment, reverseOrder, type UnappliedReason } from '../db/ledger.ts';
import {
  closeOrderReservations,
  findOrder,
  insertOrder,
  insertUnpricedRejection,
  lockOrder,
  moveOrder,
  type OrderItemRow,
  type OrderRow,
  orderItems,
  restockOrder,
} from '../db/orders.ts';
import type { DatabaseTransaction, Queryable } from '../db/pool.ts';
import { readSetting } from '../db/settings.ts';
import { sql } from '../db/sql.ts';
import type { CommandOf, Outcome, OutcomeError } from '../domain/commands.ts';
import { normaliseLines } from '../domain/inventory/decide-reservation.ts';
import { type Currency, MAX_ORDER_TOTAL, moneyJson, splitBySeller } from '../domain/money.ts';
import { decideTransition, isOrderState, type OrderState } from '../domain/orders/states.ts';
import { snapshotHash } from '../domain/snapshot.ts';
import { fail, refuse } from './outcome.ts';

export type OrderContext = { readonly command: CommandRef; readonly actor: string; readonly final?: boolean };

export function orderJson(order: OrderRow, items: readonly OrderItemRow[]) {
  const currency = order.currency as Currency;
  return {
    id: order.id,
    ref: order.ref,
    state: order.state,
    buyer: order.buyer,
    currency,
    items: items.map((i) => ({
      sku: i.sku,
      qty: i.qty,
      unit_price: moneyJson({ amount: i.unit_price, currency }),
      total: moneyJson({ amount: i.total, currency }),
    })),
    total: moneyJson({ amount: order.total_amount, currency }),
    expires_at: order.state === 'pending' ? order.expires_at : null,
    ...(order.reject_reason ? { reject_reason: order.reject_reason } : {}),
    ...(order.requested_items ? { requested_items: requestedItems(order.requested_items) } : {}),
    ...(order.payment_ref ? { payment_ref: order.payment_ref } : {}),
    ...(order.tracking ? { tracking: order.tracking } : {}),
  };
}

/** The lines a rejected, unpriced order asked for, quantities as integers. */
function requestedItems(text: string): { sku: string; qty: bigint }[] {
  return (JSON.parse(text) as { sku: string; qty: string }[]).map((l) => ({ sku: l.sku, qty: BigInt(l.qty) }));
}

async function orderOutcome(db: Queryable, order: OrderRow): Promise<Outcome> {
  return { ok: true, result: orderJson(order, await orderItems(db, order.id)) };
}

/** A ref made from the idempotency key, so a replayed placement names the same order. */
function refFor(command: CommandRef): string {
  const seed = command ? `${command.scope}:${command.key}` : `${Date.now()}:${Math.random()}`;
  return `O-${createHash('sha256').update(seed).digest('hex').slice(0, 12).toUpperCase()}`;
}

type PlacePayload = CommandOf<'order.place'>['payload'];

export async function precheckPlace(db: Queryable, p: PlacePayload): Promise<OutcomeError | null> {
  const lines = normaliseLines(p.items.map((i) => ({ sku: i.sku, qty: BigInt(i.qty) })));
  const skus = await Promise.all(lines.map((l) => findSku(db, l.sku)));
  const missing = lines.filter((_, i) => !skus[i]).map((l) => l.sku);
  if (missing.length) return refuse('not_found', `SKU not found: ${missing.join(', ')}`, { skus: missing });
  const currencies = [...new Set([...(p.currency ? [p.currency] : []), ...skus.map((s) => s?.currency)])];
  if (currencies.length > 1)
    return refuse('currency_mismatch', `an order is single-currency; these items are in ${currencies.join(', ')}`, { currencies });
  const total = lines.reduce((sum, l, i) => sum + (skus[i]?.price_amount ?? 0n) * l.qty, 0n);
  if (total > MAX_ORDER_TOTAL)
    return refuse('invalid_input', `the order total ${total} is over the maximum ${MAX_ORDER_TOTAL} minor units`, {
      total,
      max: MAX_ORDER_TOTAL,
    });
  if (p.ref && (await findOrder(db, p.ref))) return refuse('conflict', `order ref ${p.ref} is already taken`, { ref: p.ref });
  return null;
}

export async function applyPlace(tx: DatabaseTransaction, p: PlacePayload, context: OrderContext): Promise<Outcome> {
  const refusal = await precheckPlace(tx, p);
  if (refusal) return rejectUnpriced(tx, p, refusal, context);
  const lines = normaliseLines(p.items.map((i) => ({ sku: i.sku, qty: BigInt(i.qty) })));
  // Prices are the catalog's, read inside this transaction; a client never supplies one.
  const prices = await tx.any(sql.type(z.object({ code: z.string(), seller: z.string(), price_amount: z.bigint(), currency: z.string() }))`
    select code, seller, price_amount, currency from skus where code = any(${sql.array(
      lines.map((l) => l.sku),
      'text',
    )}) order by code`);
  const priceOf = new Map(prices.map((r) => [r.code, r]));
  const currency = prices[0]?.currency ?? 'INR';
  const ref = p.ref ?? refFor(context.command);
  const items = lines.map((l) => ({ sku: l.sku, qty: l.qty, unitPrice: priceOf.get(l.sku)?.price_amount ?? 0n }));
  const { ttlSeconds, commissionBps } = await placementSettings(tx);
  const splits = splitBySeller(
    items.map((i) => ({ seller: priceOf.get(i.sku)?.seller ?? '', total: i.unitPrice * i.qty })),
    commissionBps,
  );
  const total = items.reduce((sum, i) => sum + i.unitPrice * i.qty, 0n);
  const hash = snapshotHash({ currency, total, commissionBps, splits, items: items.map((i) => ({ ...i, total: i.unitPrice * i.qty })) });
  // The order row exists before its reservations, which name it as their holder.
  const draft = { ref, buyer: p.buyer, currency, items, ttlSeconds, commissionBps, splits, snapshotHash: hash };
  const savepoint = await tx
    .transaction(async (inner) => {
      const order = await insertOrder(inner, { ...draft, state: 'pending', rejectReason: null }, context);
      const reserved = await reserve(inner, order.id, lines, context.command);
      if (!reserved.ok) throw new Refused(reserved);
      return order;
    })
    .catch((error: unknown) => {
      if (error instanceof Refused) return error.result;
      throw error;
    });
  if ('id' in savepoint) return orderOutcome(tx, savepoint);
  if (savepoint.code === 'not_found')
    return fail(refuse('not_found', `SKU not found: ${savepoint.missing.join(', ')}`, { skus: savepoint.missing }));
  const rejected = await insertOrder(tx, { ...draft, state: 'rejected', rejectReason: 'insufficient_stock' }, context);
  const order = orderJson(rejected, await orderItems(tx, rejected.id));
  return fail(
    refuse(
      'insufficient_stock',
      `not enough stock for ${savepoint.shortages.map((s) => s.sku).join(', ')}; order ${ref} recorded as rejected`,
      { order, shortages: savepoint.shortages },
    ),
  );
}

/**
 * The settings a placement freezes, read once per transaction: every placement of a worker's batch
 * (applyCommands) shares one read.
 */
const settingsRead = new WeakMap<DatabaseTransaction, Promise<{ ttlSeconds: number; commissionBps: number }>>();
function placementSettings(tx: DatabaseTransaction) {
  let read = settingsRead.get(tx);
  if (!read) {
    read = (async () => ({
      ttlSeconds: await readSetting(tx, 'reservation_ttl_seconds'),
      commissionBps: await readSetting(tx, 'commission_bps'),
    }))();
    settingsRead.set(tx, read);
  }
  return read;
}

/** Why a placement that could not be priced is rejected; any other refusal leaves no order. */
const UNPRICED_REJECTIONS = {
  not_found: 'unknown_sku',
  currency_mismatch: 'currency_mismatch',
  invalid_input: 'invalid_order',
} as const;

/**
 * A placement refused before anything could be priced is still an order an operator can find:
 * recorded rejected with its reason and the lines as asked. Only a ref that is already taken
 * leaves no new order (the outcome is `conflict`).
 */
async function rejectUnpriced(tx: DatabaseTransaction, p: PlacePayload, refusal: OutcomeError, context: OrderContext): Promise<Outcome> {
  const reason = Object.hasOwn(UNPRICED_REJECTIONS, refusal.code)
    ? UNPRICED_REJECTIONS[refusal.code as keyof typeof UNPRICED_REJECTIONS]
    : undefined;
  if (reason === undefined) return fail(refusal);
  const ref = p.ref ?? refFor(context.command);
  if (await findOrder(tx, ref)) return fail(refuse('conflict', `order ref ${ref} is already taken`, { ref }));
  const lines = p.items.map((i) => ({ sku: i.sku, qty: BigInt(i.qty) }));
  const known = await tx.maybeOneFirst(sql.type(z.object({ currency: z.string() }))`
    select currency from skus where code = any(${sql.array(
      lines.map((l) => l.sku),
      'text',
    )}) order by code limit 1`);
  const currency = p.currency ?? known ?? 'INR';
  const rejected = await insertUnpricedRejection(tx, { ref, buyer: p.buyer, currency, rejectReason: reason }, lines, context);
  return fail(
    refuse(refusal.code, `${refusal.message}; order ${ref} recorded as rejected (${reason})`, {
      ...refusal.details,
      reject_reason: reason,
      order: orderJson(rejected, []),
    }),
  );
}

class Refused extends Error {
  readonly result: Extract<Awaited<ReturnType<typeof reserve>>, { ok: false }>;
  constructor(result: Extract<Awaited<ReturnType<typeof reserve>>, { ok: false }>) {
    super('refused');
    this.result = result;
  }
}

/** Locks the order and checks the move; returns the order or the refusal. */
async function lockForMove(tx: DatabaseTransaction, key: string, to: OrderState): Promise<{ order: OrderRow } | { error: OutcomeError }> {
  const order = await lockOrder(tx, key);
  if (!order) return { error: refuse('not_found', `order not found: ${key}`, { order: key }) };
  if (!isOrderState(order.state)) throw new Error(`order ${order.id} has unknown state ${order.state}`);
  const decision = decideTransition(order.state, to);
  if (!decision.ok)
    return { error: refuse(decision.code, `order ${order.ref}: ${decision.message}`, { order: order.ref, ...decision.details }) };
  return { order };
}

/**
 * A confirmation is accepted whenever the order exists and the payment_ref is new: a payment that
 * cannot be applied is stored as unapplied when applied, never refused unseen.
 */
export async function precheckConfirm(db: Queryable, p: CommandOf<'order.confirm'>['payload']): Promise<OutcomeError | null> {
  if (!(await findOrder(db, p.order))) return refuse('not_found', `order not found: ${p.order}`, { order: p.order });
  const earlier = await findPayment(db, p.payment_ref);
  return earlier ? refuse('conflict', `payment ${p.payment_ref} was already recorded (${earlier.state})`, { payment: earlier }) : null;
}

/** The move checked on an unlocked read, so a refused move stores nothing; apply checks again under lock. */
export async function precheckMove(db: Queryable, key: string, to: OrderState): Promise<OutcomeError | null> {
  const order = await findOrder(db, key);
  if (!order) return refuse('not_found', `order not found: ${key}`, { order: key });
  if (!isOrderState(order.state)) return null;
  const decision = decideTransition(order.state, to);
  return decision.ok ? null : refuse(decision.code, `order ${order.ref}: ${decision.message}`, { order: order.ref, ...decision.details });
}

/**
 * A captured payment for an order. Applied only when the order is pending (before its deadline,
 * database clock) and amount and currency equal its frozen total; otherwise kept as an unapplied
 * payment with its reason, and the order does not change. One payment_ref is recorded once.
 */
export async function applyConfirm(
  tx: DatabaseTransaction,
  p: CommandOf<'order.confirm'>['payload'],
  context: OrderContext,
): Promise<Outcome> {
  const earlier = await findPayment(tx, p.payment_ref);
  if (earlier) return fail(refuse('conflict', `payment ${p.payment_ref} was already recorded (${earlier.state})`, { payment: earlier }));
  const order = await lockOrder(tx, p.order);
  if (!order) {
    // Never dropped: once the wait for an early payment is over, it is kept as unapplied.
    if (context.final !== false) {
      await recordPayment(tx, {
        paymentRef: p.payment_ref,
        orderRef: p.order,
        orderId: null,
        amount: BigInt(p.amount),
        currency: p.currency ?? 'INR',
        reason: 'order_not_found',
        command: context.command,
      });
    }
    return fail(refuse('not_found', `order not found: ${p.order}`, { order: p.order }));
  }
  const amount = BigInt(p.amount);
  const currency = p.currency ?? order.currency;
  const due =
    order.state === 'pending' &&
    (await tx.oneFirst(sql.type(z.object({ due: z.boolean() }))`select ${order.expires_at}::timestamptz <= now() as due`));
  const reason: UnappliedReason | null =
    order.state !== 'pending' || due
      ? 'order_not_pending'
      : currency !== order.currency
        ? 'currency_mismatch'
        : amount !== order.total_amount
          ? 'amount_mismatch'
          : null;
  const payment = await recordPayment(tx, {
    paymentRef: p.payment_ref,
    orderRef: order.ref,
    orderId: order.id,
    amount,
    currency,
    reason,
    command: context.command,
  });
  if (reason !== null) {
    const code = reason === 'order_not_pending' ? 'transition_not_allowed' : reason;
    const why =
      reason === 'order_not_pending'
        ? due
          ? `its reservation expired at ${order.expires_at}`
          : `it is ${order.state}`
        : reason === 'currency_mismatch'
          ? `it is in ${order.currency}, the payment in ${currency}`
          : `it totals ${order.total_amount}, the payment is ${amount}`;
    return fail(
      refuse(code, `payment ${p.payment_ref} kept as unapplied: order ${order.ref} ${why}`, {
        order: order.ref,
        payment,
        expected: { amount: order.total_amount, currency: order.currency },
      }),
    );
  }
  await closeOrderReservations(tx, order.id, 'finalized', context.command);
  const moved = await moveOrder(tx, order, 'confirmed', {
    actor: context.actor,
    reason: `payment ${p.payment_ref}`,
    command: context.command,
    set: { payment_ref: p.payment_ref },
  });
  await captureOrder(tx, { id: order.id, currency: order.currency, total: order.total_amount }, context.command);
  return orderOutcome(tx, moved);
}

export async function applySimpleMove(
  tx: DatabaseTransaction,
  key: string,
  to: 'shipped' | 'delivered' | 'refunded',
  context: OrderContext & { reason: string | null; tracking?: string },
): Promise<Outcome> {
  const locked = await lockForMove(tx, key, to);
  if ('error' in locked) return fail(locked.error);
  if (to === 'refunded') await reverseOrder(tx, { id: locked.order.id, currency: locked.order.currency }, 'refund', context.command);
  const moved = await moveOrder(tx, locked.order, to, {
    actor: context.actor,
    reason: context.reason,
    command: context.command,
    ...(context.tracking ? { set: { tracking: context.tracking } } : {}),
  });
  return orderOutcome(tx, moved);
}

export async function applyCancel(
  tx: DatabaseTransaction,
  p: CommandOf<'order.cancel'>['payload'],
  context: OrderContext,
): Promise<Outcome> {
  const locked = await lockForMove(tx, p.order, 'cancelled');
  if ('error' in locked) return fail(locked.error);
  const { order } = locked;
  if (p.only_from !== undefined && order.state !== p.only_from) {
    return fail(
      refuse('transition_not_allowed', `order ${order.ref}: a failed payment cancels only a ${p.only_from} order; it is ${order.state}`, {
        order: order.ref,
        from: order.state,
        to: 'cancelled',
      }),
    );
  }
  if (order.state === 'pending') await closeOrderReservations(tx, order.id, 'released', context.command);
  else {
    await restockOrder(tx, order.id, context.command);
    await reverseOrder(tx, { id: order.id, currency: order.currency }, 'cancellation', context.command);
  }
  const moved = await moveOrder(tx, order, 'cancelled', { actor: context.actor, reason: p.reason, command: context.command });
  return orderOutcome(tx, moved);
}
