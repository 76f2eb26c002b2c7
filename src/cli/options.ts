// Option parsers shared by commands: strict, and failing with invalid_input (exit 2).
import { z } from 'zod';
import { parseStrictInteger } from '../domain/integers.ts';
import { invalidInput } from '../errors.ts';

export function smallInteger(name: string, raw: string, min: number, max: number): number {
  const parsed = parseStrictInteger(raw, { min: BigInt(min), max: BigInt(max) });
  if (!parsed.ok) throw invalidInput(`${name} ${parsed.reason}`, { option: name, value: raw });
  return Number(parsed.value);
}

/** A time option (`--since`): ISO-8601 with its offset, a real calendar day. */
export const IsoTime = z.iso.datetime({ offset: true, error: 'must be an ISO-8601 time with its offset, e.g. 2026-12-01T06:00:00Z' });
