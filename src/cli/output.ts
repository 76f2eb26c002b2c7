// Results go to stdout: a readable table by default, one JSON document with --json.
// bigint (money, ids) is written into JSON as exact digits, never through a float.
import { toJsonText } from '../domain/json.ts';
import { errorDocument, type HaatError } from '../errors.ts';
import type { Io } from './io.ts';

export function toJson(value: unknown, indent = 2): string {
  return toJsonText(value, indent);
}

export type Output = {
  readonly json: boolean;
  /** Prints a command's result: `value` with --json, otherwise what `human` renders. */
  result(value: unknown, human: () => string): void;
  /** A line for the operator that is not the result (stderr; silent with --json). */
  note(text: string): void;
  error(error: HaatError): void;
};

export function createOutput(io: Io, json: boolean): Output {
  return {
    json,
    result(value, human) {
      io.stdout.write(json ? `${toJson(value)}\n` : ensureNewline(human()));
    },
    note(text) {
      if (!json) io.stderr.write(ensureNewline(text));
    },
    error(error) {
      if (json) io.stdout.write(`${toJson(errorDocument(error))}\n`);
      else io.stderr.write(`error: ${error.message} (${error.code})\n`);
    },
  };
}

function ensureNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

/** A plain text table: a header row, then one row per record, columns padded to fit. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Key: value lines, aligned. */
export function keyValues(entries: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join('\n');
}
