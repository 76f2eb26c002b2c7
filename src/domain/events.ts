// Webhook events (docs/contract.md, Webhook intake): the envelope and each type's data, validated by
// zod, and the command each becomes — the same commands the CLI submits.
import { z } from 'zod';
import type { Command } from './commands.ts';

export const sources = ['storefront', 'payments', 'logistics'] as const;
export type Source = (typeof sources)[number];

/** A JSON integer: a safe number, or a bigint read exactly from its source text. Never 10.5 or "10". */
const JsonInteger = z
  .union([z.number().int(), z.bigint()], { error: 'must be a JSON integer (digits only: no fraction, exponent or quotes)' })
  .transform((v) => v.toString());

const ref = z.string().min(1).max(64);
const tracking = z.string().min(1).max(200);
const items = z
  .array(z.strictObject({ sku: z.string(), qty: JsonInteger }))
  .min(1)
  .max(100);

export const eventSchemas = {
  'order.placed': {
    source: 'storefront',
    data: z.strictObject({
      ref,
      buyer: z.string().min(1).max(200),
      currency: z.string(),
      items,
      payment_method: z.enum(['prepaid', 'cod']).optional(),
    }),
  },
  'payment.captured': {
    source: 'payments',
    data: z.strictObject({ order_ref: ref, payment_ref: z.string().min(1).max(200), amount: JsonInteger, currency: z.string() }),
  },
  'payment.failed': {
    source: 'payments',
    data: z.strictObject({ order_ref: ref, payment_ref: z.string().min(1).max(200), reason: z.string().min(1).max(200) }),
  },
  'shipment.dispatched': {
    source: 'logistics',
    data: z.strictObject({
      order_ref: ref,
      tracking,
      items: items.optional(),
      shipment_ref: ref.optional(),
      courier: z.string().min(1).max(63).optional(),
    }),
  },
  'shipment.delivered': {
    source: 'logistics',
    data: z.strictObject({ order_ref: ref, tracking: tracking.optional(), shipment_ref: ref.optional() }),
  },
  'shipment.failed': { source: 'logistics', data: z.strictObject({ order_ref: ref, tracking, reason: z.string().min(1).max(500) }) },
  'shipment.rto_initiated': { source: 'logistics', data: z.strictObject({ order_ref: ref, tracking }) },
  'shipment.rto_delivered': { source: 'logistics', data: z.strictObject({ order_ref: ref, tracking }) },
  'return.requested': {
    source: 'storefront',
    data: z.strictObject({ order_ref: ref, return_ref: ref, items: items, reason: z.string().min(1).max(500) }),
  },
  'order.confirmed': { source: 'storefront', data: z.strictObject({ order_ref: ref }) },
} as const;
export type EventType = keyof typeof eventSchemas;

export const Envelope = z.object({
  type: z.string(),
  timestamp: z.iso.datetime({ offset: true }),
  data: z.unknown(),
});

export type ParsedEvent = { readonly type: EventType; readonly command: { type: Command['type']; payload: unknown } };

/** Turns a verified body into the command it stands for; an error message when it does not fit. */
export function eventToCommand(source: Source, body: unknown): { ok: true; event: ParsedEvent } | { ok: false; message: string } {
  const envelope = Envelope.safeParse(body);
  if (!envelope.success) return { ok: false, message: z.prettifyError(envelope.error) };
  const type = envelope.data.type;
  if (!Object.hasOwn(eventSchemas, type)) return { ok: false, message: `unknown event type ${JSON.stringify(type)}` };
  const spec = eventSchemas[type as EventType];
  if (spec.source !== source) return { ok: false, message: `${type} events come from ${spec.source}, not ${source}` };
  const data = spec.data.safeParse(envelope.data.data);
  if (!data.success) return { ok: false, message: z.prettifyError(data.error) };
  const d = data.data as Record<string, unknown>;
  const command = ((): { type: Command['type']; payload: unknown } => {
    switch (type as EventType) {
      case 'order.placed':
        return {
          type: 'order.place',
          payload: { ref: d.ref, buyer: d.buyer, currency: d.currency, items: d.items, payment_method: d.payment_method },
        };
      case 'payment.captured':
        return {
          type: 'order.confirm',
          payload: { order: d.order_ref, payment_ref: d.payment_ref, amount: d.amount, currency: d.currency },
        };
      case 'payment.failed':
        // Only an order awaiting payment is cancelled by it: a paid order's money is not undone by a stray failure.
        return {
          type: 'order.cancel',
          payload: { order: d.order_ref, reason: `payment ${d.payment_ref} failed: ${d.reason}`, only_from: 'pending' },
        };
      case 'shipment.dispatched':
        return {
          type: 'order.ship',
          payload: { order: d.order_ref, tracking: d.tracking, items: d.items, shipment_ref: d.shipment_ref, courier: d.courier },
        };
      case 'shipment.delivered':
        return { type: 'order.deliver', payload: { order: d.order_ref, tracking: d.tracking, shipment_ref: d.shipment_ref } };
      case 'shipment.failed':
        return { type: 'shipment.fail', payload: { order: d.order_ref, shipment: d.tracking, reason: d.reason } };
      case 'shipment.rto_initiated':
        return { type: 'shipment.rto', payload: { order: d.order_ref, shipment: d.tracking } };
      case 'shipment.rto_delivered':
        return { type: 'shipment.rto_receive', payload: { order: d.order_ref, shipment: d.tracking } };
      case 'return.requested':
        return { type: 'return.request', payload: { order: d.order_ref, ref: d.return_ref, items: d.items, reason: d.reason } };
      case 'order.confirmed':
        return { type: 'order.confirm_cod', payload: { order: d.order_ref } };
    }
  })();
  return { ok: true, event: { type: type as EventType, command } };
}
