// Strict integer parsing for every quantity, amount and count that crosses a boundary.
// Only plain ASCII digits parse: no `1e3`, `1.5`, `0x10`, ` 2`, `+2`, full-width or other-script
// digits, and nothing outside [min, max] — checked on the exact bigint, so nothing wraps or rounds.

export type IntegerBounds = { readonly min: bigint; readonly max: bigint };

export type ParsedInteger = { readonly ok: true; readonly value: bigint } | { readonly ok: false; readonly reason: string };

const unsigned = /^[0-9]+$/;
const signed = /^-?[0-9]+$/;

export function parseStrictInteger(raw: string, bounds: IntegerBounds): ParsedInteger {
  const pattern = bounds.min < 0n ? signed : unsigned;
  if (!pattern.test(raw)) {
    return { ok: false, reason: `must be a whole number written with digits 0-9${bounds.min < 0n ? ' (a leading - allowed)' : ''}` };
  }
  // Bound the length first so a million-digit input costs nothing.
  if (raw.replace(/^-/, '').replace(/^0+(?=.)/, '').length > 40) {
    return { ok: false, reason: `must be between ${bounds.min} and ${bounds.max}` };
  }
  const value = BigInt(raw);
  if (value < bounds.min || value > bounds.max) {
    return { ok: false, reason: `must be between ${bounds.min} and ${bounds.max}` };
  }
  return { ok: true, value };
}
