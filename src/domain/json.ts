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

/**
 * A JSON number written with a fraction or an exponent (`10.5`, `2.0`, `1e3`), kept as its source
 * text when parsing strictly: whatever its value, it is not an integer count, and no integer schema
 * accepts it.
 */
export class NotAnIntegerLiteral {
  readonly source: string;
  constructor(source: string) {
    this.source = source;
  }
}

const INTEGER_LITERAL = /^-?(0|[1-9][0-9]*)$/;

/**
 * JSON.parse, with integers outside the safe range read exactly as bigint. With `strictNumbers`
 * (input from outside: webhook bodies), a number that is not a plain integer literal becomes a
 * NotAnIntegerLiteral, so `1e3` is refused exactly like `"1e3"` on the command line.
 */
export function parseJsonExact(text: string, options: { strictNumbers?: boolean } = {}): unknown {
  return JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: ReviverContext) {
    if (typeof value !== 'number' || context?.source === undefined) return value;
    const integer = INTEGER_LITERAL.test(context.source);
    if (options.strictNumbers && !integer) return new NotAnIntegerLiteral(context.source);
    if (integer && !Number.isSafeInteger(value)) return BigInt(context.source);
    return value;
  } as (this: unknown, key: string, value: unknown) => unknown);
}
