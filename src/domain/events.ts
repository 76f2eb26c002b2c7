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

export const eventSchemas = {
  'order.placed': {
    source: 'storefront',
    data: z.strictObject({
      ref,
      buyer: z.string().min(1).max(200),
      currency: z.string(),
      items: z
        .array(z.strictObject({ sku: z.string(), qty: JsonInteger }))
        .min(1)
        .max(100),
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
  'shipment.dispatched': { source: 'logistics', data: z.strictObject({ order_ref: ref, tracking: z.string().min(1).max(200) }) },
  'shipment.delivered': { source: 'logistics', data: z.strictObject({ order_ref: ref }) },
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
        return { type: 'order.place', payload: { ref: d.ref, buyer: d.buyer, currency: d.currency, items: d.items } };
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
        return { type: 'order.ship', payload: { order: d.order_ref, tracking: d.tracking } };
      case 'shipment.delivered':
        return { type: 'order.deliver', payload: { order: d.order_ref } };
    }
  })();
  return { ok: true, event: { type: type as EventType, command } };
}
