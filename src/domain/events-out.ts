// The outbound event catalog (docs/webhooks-out.md, Events out) and the patterns an endpoint
// subscribes with: `*`, an exact type, or `<prefix>.*` for a prefix some type has.
import { returnStates } from './orders/returns.ts';
import { shipmentStates } from './orders/shipments.ts';
import { orderStates } from './orders/states.ts';

export const outboundEventTypes: readonly string[] = [
  ...orderStates.map((s) => `order.${s}`),
  'payment.unapplied',
  ...shipmentStates.map((s) => `shipment.${s}`),
  ...returnStates.map((s) => `return.${s}`),
  'refund.issued',
];

const prefixes = new Set(outboundEventTypes.map((t) => t.slice(0, t.indexOf('.'))));

export type PatternsResult = { readonly ok: true; readonly patterns: string[] } | { readonly ok: false; readonly message: string };

/** `order.*,payment.unapplied` → the patterns, each known; duplicates dropped, order kept. */
export function parsePatterns(raw: string): PatternsResult {
  const patterns = [...new Set(raw.split(',').map((p) => p.trim()))];
  if (patterns.length === 0 || patterns.includes('')) return { ok: false, message: '--events has an empty pattern' };
  if (patterns.length > 50) return { ok: false, message: '--events has more than 50 patterns' };
  for (const p of patterns) {
    const known = p === '*' || outboundEventTypes.includes(p) || (p.endsWith('.*') && prefixes.has(p.slice(0, -2)));
    if (!known) {
      return {
        ok: false,
        message: `unknown event pattern: ${p} (use *, <prefix>.* with prefix ${[...prefixes].join(' or ')}, or one of ${outboundEventTypes.join(', ')})`,
      };
    }
  }
  return { ok: true, patterns };
}
