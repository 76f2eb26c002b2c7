// Exact JSON for integers: bigint values are written as plain JSON integers (never through a float),
// and integers outside the safe range are read back as bigint from their source text.

declare global {
  interface JSON {
    rawJSON(text: string): unknown;
  }
}

export function toJsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? JSON.rawJSON(v.toString()) : v), indent);
}

type ReviverContext = { source?: string };

export function parseJsonExact(text: string): unknown {
  return JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: ReviverContext) {
    if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source && /^-?[0-9]+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  } as (this: unknown, key: string, value: unknown) => unknown);
}
