// Option parsers shared by commands: strict, and failing with invalid_input (exit 2).
import { parseStrictInteger } from '../domain/integers.ts';
import { invalidInput } from '../errors.ts';

export function smallInteger(name: string, raw: string, min: number, max: number): number {
  const parsed = parseStrictInteger(raw, { min: BigInt(min), max: BigInt(max) });
  if (!parsed.ok) throw invalidInput(`${name} ${parsed.reason}`, { option: name, value: raw });
  return Number(parsed.value);
}
