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

/**
 * The first object key that appears twice in one object of a valid JSON text, or null. JSON.parse
 * keeps the last of them silently; a sender's parser may keep the first, so such a body is
 * ambiguous and is refused rather than read either way. Keys are compared decoded (`"q\u0074y"` is
 * `"qty"`). `text` must already have parsed.
 */
export function duplicateKey(text: string): string | null {
  const frames: { keys: Set<string> | null }[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const keys = frames.at(-1)?.keys;
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === '{') {
      frames.push({ keys: new Set() });
      expectKey = true;
    } else if (c === '[') {
      frames.push({ keys: null });
    } else if (c === '}' || c === ']') {
      frames.pop();
    } else if (c === ',') {
      expectKey = frames.at(-1)?.keys != null;
    }
  }
  return null;
}
