// Glossary
// - command: one write, as data: a type and a payload in wire form (integers as strings of ASCII
//   digits), validated by the schema below at every boundary before anything is stored.
// - idempotency key: (scope, key) naming one command forever; scope is where it came from ('cli').
// - fingerprint: SHA-256 of the canonical JSON of {type, payload}; the same key with another
//   fingerprint is an idempotency_conflict.
// - outcome: what applying the command came to, stored on the key row in the same transaction as
//   the effect: {ok: true, result} or {ok: false, error: {code, message, details}}.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ErrorCode } from '../errors.ts';
import { OptionalText, SellerHandle, SkuCode, Text } from './catalog.ts';
import { parseStrictInteger } from './integers.ts';
import { isCurrency, parsePrice } from './money.ts';

/** The largest quantity one command may move (receive, adjust, reserve). */
export const MAX_QUANTITY = 1_000_000n;

const quantity = (min: bigint) =>
  z.string().superRefine((raw, ctx) => {
    const parsed = parseStrictInteger(raw, { min, max: MAX_QUANTITY });
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
  });

const Quantity = quantity(1n);
const Delta = z.string().superRefine((raw, ctx) => {
  const parsed = parseStrictInteger(raw, { min: -MAX_QUANTITY, max: MAX_QUANTITY });
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
  else if (parsed.value === 0n) ctx.addIssue({ code: 'custom', message: 'must not be 0' });
});
const Price = z.string().superRefine((raw, ctx) => {
  const parsed = parsePrice(raw);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
});
const CurrencyCode = z.string().refine(isCurrency, 'must be a known ISO 4217 code in upper case, e.g. INR');

export const SellerAdd = z.object({ type: z.literal('seller.add'), payload: z.strictObject({ handle: SellerHandle, name: Text(200) }) });
export const SkuAdd = z.object({
  type: z.literal('sku.add'),
  payload: z.strictObject({
    code: SkuCode,
    seller: SellerHandle,
    price: Price,
    currency: CurrencyCode,
    title: OptionalText(200).default(''),
  }),
});
export const StockReceive = z.object({
  type: z.literal('stock.receive'),
  payload: z.strictObject({ sku: SkuCode, qty: Quantity, reason: Text(500).optional() }),
});
export const StockAdjust = z.object({
  type: z.literal('stock.adjust'),
  payload: z.strictObject({ sku: SkuCode, delta: Delta, reason: Text(500) }),
});

/** The most distinct SKUs one order may hold. */
export const MAX_ORDER_ITEMS = 100;

/** An order id (UUID) or its ref. */
export const OrderKey = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be an order id or ref');
export const OrderRef = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "ref: letters, digits, '_', '.', '-' (1–64)");

export const PaymentMethod = z.enum(['prepaid', 'cod'], { error: "payment_method must be 'prepaid' or 'cod'" });

/** Some units of an order's lines (duplicate SKUs add up). */
const Units = z
  .array(z.strictObject({ sku: SkuCode, qty: Quantity }))
  .min(1, 'at least one item')
  .max(MAX_ORDER_ITEMS, `at most ${MAX_ORDER_ITEMS} items`);

/** A shipment's or return's own reference. */
export const LifecycleRef = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "ref: letters, digits, '_', '.', '-' (1–64)");
/** A shipment named by its id, ref or tracking number. */
export const ShipmentKey = z.string().regex(/^[ -~]{1,200}$/, 'must be a shipment id, ref or tracking number (printable ASCII, 1–200)');
/** A courier's handle, as ledger accounts name it (cod_receivable:<courier>). */
export const Courier = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "courier: lower-case letters, digits and '-' (1–63), e.g. delhivery");
/** A positive amount in minor units. */
const PositiveAmount = Price.refine((raw) => !/^0+$/.test(raw), 'must be more than 0');

export const OrderPlace = z.object({
  type: z.literal('order.place'),
  payload: z.strictObject({
    buyer: Text(200),
    ref: OrderRef.optional(),
    /** When the sender states the currency (webhooks), every item must be priced in it. */
    currency: CurrencyCode.optional(),
    items: z
      .array(z.strictObject({ sku: SkuCode, qty: Quantity }))
      .min(1, 'an order needs at least one item')
      .max(MAX_ORDER_ITEMS, `an order holds at most ${MAX_ORDER_ITEMS} items`),
    /** Cash on delivery: confirmed without a payment, paid to the courier at the door. */
    payment_method: PaymentMethod.optional(),
  }),
});
export const OrderConfirm = z.object({
  type: z.literal('order.confirm'),
  payload: z.strictObject({ order: OrderKey, payment_ref: Text(200), amount: Price, currency: CurrencyCode.optional() }),
});
/** A cash-on-delivery order confirmed without a payment: its money is frozen, nothing captured. */
export const OrderConfirmCod = z.object({ type: z.literal('order.confirm_cod'), payload: z.strictObject({ order: OrderKey }) });
export const OrderShip = z.object({
  type: z.literal('order.ship'),
  payload: z.strictObject({
    order: OrderKey,
    tracking: Text(200).optional(),
    /** Without items: every unit still to send. */
    items: Units.optional(),
    shipment_ref: LifecycleRef.optional(),
    courier: Courier.optional(),
  }),
});
export const OrderDeliver = z.object({
  type: z.literal('order.deliver'),
  /** Without tracking or shipment_ref: every shipment of the order on its way. */
  payload: z.strictObject({ order: OrderKey, tracking: Text(200).optional(), shipment_ref: LifecycleRef.optional() }),
});
export const OrderCancel = z.object({
  type: z.literal('order.cancel'),
  payload: z.strictObject({
    order: OrderKey,
    reason: Text(500),
    /** Without items: every unit not yet dispatched. */
    items: Units.optional(),
    /** A failed payment cancels only an order still awaiting payment (never a paid one). */
    only_from: z.literal('pending').optional(),
  }),
});
export const OrderRefund = z.object({
  type: z.literal('order.refund'),
  payload: z.strictObject({ order: OrderKey, reason: Text(500), items: Units.optional(), amount: PositiveAmount.optional() }),
});

const shipmentMove = <T extends string>(type: T) =>
  z.object({
    type: z.literal(type),
    payload: z.strictObject({
      shipment: ShipmentKey,
      /** The order it belongs to (webhooks name it; it narrows a tracking number shared by orders). */
      order: OrderKey.optional(),
      reason: Text(500).optional(),
    }),
  });
export const ShipmentDeliver = shipmentMove('shipment.deliver');
export const ShipmentFail = shipmentMove('shipment.fail');
export const ShipmentReattempt = shipmentMove('shipment.reattempt');
export const ShipmentRto = shipmentMove('shipment.rto');
export const ShipmentRtoReceive = shipmentMove('shipment.rto_receive');

export const ReturnRequest = z.object({
  type: z.literal('return.request'),
  payload: z.strictObject({ order: OrderKey, items: Units, reason: Text(500), ref: LifecycleRef.optional() }),
});
export const ReturnReceive = z.object({
  type: z.literal('return.receive'),
  payload: z.strictObject({ return: ShipmentKey, disposition: z.enum(['restock', 'write_off']), reason: Text(500) }),
});
export const ReturnReject = z.object({
  type: z.literal('return.reject'),
  payload: z.strictObject({ return: ShipmentKey, reason: Text(500) }),
});

export const Command = z.discriminatedUnion('type', [
  SellerAdd,
  SkuAdd,
  StockReceive,
  StockAdjust,
  OrderPlace,
  OrderConfirm,
  OrderConfirmCod,
  OrderShip,
  OrderDeliver,
  OrderCancel,
  OrderRefund,
  ShipmentDeliver,
  ShipmentFail,
  ShipmentReattempt,
  ShipmentRto,
  ShipmentRtoReceive,
  ReturnRequest,
  ReturnReceive,
  ReturnReject,
]);
export type Command = z.infer<typeof Command>;
export type CommandType = Command['type'];
export type CommandOf<T extends CommandType> = Extract<Command, { type: T }>;

export type OutcomeError = { readonly code: ErrorCode; readonly message: string; readonly details: Readonly<Record<string, unknown>> };
export type Outcome = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: OutcomeError };

/** Printable ASCII (space to ~), 1–255 characters. */
export const IdempotencyKey = z
  .string()
  .min(1, 'idempotency key must not be empty')
  .max(255, 'idempotency key must be at most 255 characters')
  .regex(/^[ -~]+$/, 'idempotency key must be printable ASCII');

/** JSON with object keys sorted, so equal commands have equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value);
}

export function fingerprint(command: Command): string {
  return createHash('sha256')
    .update(canonicalJson({ type: command.type, payload: command.payload }))
    .digest('hex');
}
