// The body of an outbound event (docs/webhooks-out.md, Body), rendered from what the outbox row
// keeps (written by the database's triggers, sql/committed/000013.sql): what changes in an order
// over its life (state, expires_at, payment_ref, tracking) as it was at the event, beside the parts
// that never change once it is placed (its lines, total, buyer: outbox_order, read with it). The
// same bytes on every attempt, and the order in the same JSON as `haat order show --json`
// (orderJson, one implementation).
import { z } from 'zod';
import { orderJson } from '../commands/order-handlers.ts';
import { OrderItemRow, OrderRow } from '../db/orders.ts';
import type { OutboundEventRow } from '../db/webhooks-out.ts';
import { toJsonText } from '../domain/json.ts';
import { type Currency, moneyJson } from '../domain/money.ts';

const isoTime = z.string().transform((s) => new Date(s).toISOString());
const bigintText = z
  .string()
  .regex(/^-?[0-9]+$/)
  .transform((s) => BigInt(s));

/** outbox_order(): what does not change once the order is placed. */
const FixedOrder = z.object({
  id: z.string(),
  ref: z.string(),
  buyer: z.string(),
  currency: z.string(),
  total_amount: bigintText,
  reject_reason: z.string().nullable(),
  created_at: isoTime,
  commission_bps: z.number(),
  snapshot_hash: z.string().nullable(),
  requested_items: z.string().nullable(),
  // Events written before the lifecycle (migration 000015) have no payment method: prepaid then.
  payment_method: z.string().default('prepaid'),
  items: z.array(z.object({ sku: z.string(), qty: bigintText, unit_price: bigintText, total: bigintText })),
});

/** outbox_order_state(): what changes, as it was when the event was written. */
const OrderState = z.object({
  state: z.string(),
  expires_at: isoTime.nullable(),
  payment_ref: z.string().nullable(),
  tracking: z.string().nullable(),
  // Past pending (order_lifecycle()): the lines' counts, refunded, shipments and returns.
  lines: z.array(z.unknown()).optional(),
  refunded: z.string().optional(),
  shipments: z.array(z.unknown()).optional(),
  returns: z.array(z.unknown()).optional(),
});

function renderOrder(fixed: unknown, atEvent: unknown) {
  const { items, ...row } = FixedOrder.parse(fixed);
  const { lines, refunded, shipments, returns, ...state } = OrderState.parse(atEvent);
  const lifecycle = lines === undefined ? null : JSON.stringify({ lines, refunded, shipments, returns });
  return orderJson(
    OrderRow.parse({ ...row, ...state, lifecycle }),
    items.map((i) => OrderItemRow.parse(i)),
  );
}

const StoredPayment = z.object({
  payment_ref: z.string(),
  order_ref: z.string(),
  amount: bigintText,
  currency: z.string(),
  reason: z.string(),
  received_at: isoTime,
});

/** outbox_transition(): the transition an order event reports (transitions never change). */
const StoredTransition = z.object({
  from: z.string().nullable(),
  to: z.string(),
  at: isoTime,
  actor: z.string(),
  reason: z.string().nullable(),
});

/** Units of a shipment, return or refund, as the lifecycle triggers keep them (sql/committed/000014.sql). */
const StoredUnits = z.array(z.object({ sku: z.string(), qty: bigintText }));

/** The order beside a shipment, return or refund event: who it is and its state when the event was written. */
const StoredOrderBrief = z.object({ id: z.string(), ref: z.string(), state: z.string() });

/** lifecycle_shipment(): a shipment as it is at its transition. */
const StoredShipment = z.object({
  id: z.string(),
  ref: z.string(),
  tracking: z.string().nullable(),
  courier: z.string(),
  state: z.string(),
  items: StoredUnits,
  created_at: isoTime,
});

/** lifecycle_return(): a return as it is at its transition. */
const StoredReturn = z.object({
  id: z.string(),
  ref: z.string(),
  state: z.string(),
  items: StoredUnits,
  reason: z.string(),
  disposition: z.string().nullable(),
  created_at: isoTime,
});

/** refund_allocations_outbox(): a refund, its units and its split per seller. */
const StoredRefund = z.object({
  id: z.string(),
  kind: z.string(),
  amount: bigintText,
  currency: z.string(),
  reason: z.string(),
  items: StoredUnits,
  sellers: z.array(z.object({ seller: z.string(), amount: bigintText, commission_reversed: bigintText })),
  created_at: isoTime,
});

/**
 * A shipment, return or refund event in the JSON every reader gets: quantities as integers, money
 * as {amount, currency}, times ISO-8601 in UTC (the trigger keeps them as text).
 */
function lifecycleData(event: OutboundEventRow): Record<string, unknown> {
  const data = event.data;
  const sequence = event.sequence !== null ? { sequence: event.sequence } : {};
  if (event.type === 'refund.issued') {
    const { amount, currency, sellers, ...refund } = StoredRefund.parse(data.refund);
    const money = (value: bigint) => moneyJson({ amount: value, currency: currency as Currency });
    const order = StoredOrderBrief.extend({ refunded: bigintText }).parse(data.order);
    return {
      refund: {
        id: refund.id,
        kind: refund.kind,
        amount: money(amount),
        reason: refund.reason,
        items: refund.items,
        sellers: sellers.map((s) => ({ seller: s.seller, amount: money(s.amount), commission_reversed: money(s.commission_reversed) })),
        created_at: refund.created_at,
      },
      order: { ...order, refunded: money(order.refunded) },
      ...sequence,
    };
  }
  const order = StoredOrderBrief.parse(data.order);
  const transition = StoredTransition.parse(data.transition);
  if (event.type.startsWith('shipment.')) return { shipment: StoredShipment.parse(data.shipment), order, transition, ...sequence };
  return { return: StoredReturn.parse(data.return), order, transition, ...sequence };
}

/** The event's `data`, for the body and for `haat deliveries show`. */
export function eventData(event: OutboundEventRow): Record<string, unknown> {
  const data = event.data;
  if (event.type === 'payment.unapplied') {
    const payment = StoredPayment.parse(data.payment);
    return {
      payment: { ...payment, amount: moneyJson({ amount: payment.amount, currency: payment.currency as Currency }) },
      ...(data.order && event.order ? { order: renderOrder(event.order, data.order) } : {}),
      ...(event.sequence !== null ? { sequence: event.sequence } : {}),
    };
  }
  if (event.type.startsWith('order.')) {
    return {
      order: renderOrder(event.order, data.order),
      sequence: event.sequence,
      transition: StoredTransition.parse(event.transition),
    };
  }
  if (event.type.startsWith('shipment.') || event.type.startsWith('return.') || event.type === 'refund.issued') return lifecycleData(event);
  return { ...data, ...(event.sequence !== null ? { sequence: event.sequence } : {}) };
}

/** The body sent: `{"type", "timestamp", "data"}`, integers exact. */
export function renderBody(event: OutboundEventRow): string {
  return toJsonText({ type: event.type, timestamp: new Date(event.created_at).toISOString(), data: eventData(event) });
}
