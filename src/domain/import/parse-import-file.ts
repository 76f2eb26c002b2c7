// Bulk import files (docs/contract.md, Bulk import): a CSV file with a header line, read strictly
// before any row is looked at. Pure: bytes in, named rows or refusals out, each refusal with its line.
// - Size: at most MAX_IMPORT_BYTES; the caller refuses a larger input before reading it all.
// - Text: UTF-8 only (decoded with a fatal decoder, so no byte is ever replaced). One UTF-8 byte
//   order mark at the very start is accepted and dropped: Excel's "CSV UTF-8" export writes one, and
//   it is not part of the first column's name. A UTF-16 file, invalid UTF-8 or a NUL is refused
//   with its line and character.
// - CSV: RFC 4180 as csv-parse reads it: LF, CRLF or CR line endings, quoted values with commas,
//   doubled quotes and line breaks. Blank lines, and rows whose every cell is empty (a spreadsheet's
//   cleared rows), are skipped; line numbers stay those of the file.
// - Header: every required column once, optional ones at most once, nothing else, in any order.
//   A file with no header is refused; a header with no rows is an import of nothing.
import { createHash } from 'node:crypto';
import { type CsvError, parse } from 'csv-parse/sync';
import type { ErrorCode } from '../../errors.ts';
import { canonicalJson } from '../commands.ts';

/** 16 MiB: about 300,000 rows; a larger file is split by the operator. */
export const MAX_IMPORT_BYTES = 16 * 1024 * 1024;

export const IMPORT_KINDS = {
  skus: { required: ['code', 'seller', 'price', 'currency'], optional: ['title'] },
  stock: { required: ['sku', 'qty'], optional: ['reason'] },
} as const;
export type ImportKind = keyof typeof IMPORT_KINDS;

/** One refusal: the file line it is on (null when it is about the whole input), the CSV column. */
export type RowIssue = {
  readonly line: number | null;
  readonly column: string | null;
  readonly code: ErrorCode;
  readonly message: string;
};

/** A data row: its first line in the file and its values by column name (only the header's columns). */
export type ImportRow = { readonly line: number; readonly values: Readonly<Record<string, string>> };

export type ParsedImportFile =
  | {
      readonly ok: true;
      readonly columns: readonly string[];
      /** Rows with the header's number of fields. */
      readonly rows: readonly ImportRow[];
      /** Rows refused as they stand (another number of fields): skippable, like any invalid row. */
      readonly issues: readonly RowIssue[];
      /** SHA-256 of the records as named values: the same for the same content, whatever the line endings, quoting, BOM or column order. */
      readonly digest: string;
    }
  | { readonly ok: false; readonly issues: readonly RowIssue[] };

export function headerText(kind: ImportKind): string {
  const spec = IMPORT_KINDS[kind];
  return `${spec.required.join(',')}${spec.optional.map((c) => `[,${c}]`).join('')}`;
}

const refuse = (issue: RowIssue): ParsedImportFile => ({ ok: false, issues: [issue] });
const invalid = (line: number | null, column: string | null, message: string): RowIssue => ({
  line,
  column,
  code: 'invalid_input',
  message,
});

/** Line (1-based) and character (1-based, in code points) of a UTF-16 index into `text`. */
function positionOf(text: string, index: number): { line: number; character: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, character: [...text.slice(start, index)].length + 1 };
}

/** Where the first invalid UTF-8 sequence is: the line (split on LF bytes, which no multi-byte sequence contains) and the character. */
function firstInvalidUtf8(bytes: Uint8Array): { line: number; character: number; byte: number } {
  let line = 1;
  for (let start = 0; start <= bytes.length; line++) {
    const lf = bytes.indexOf(0x0a, start);
    const end = lf === -1 ? bytes.length : lf;
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: line !== 1 });
    let characters = 0;
    // The first byte not yet decoded into a character: where a bad sequence starts.
    let pending = start;
    for (let i = start; i < end; i++) {
      try {
        const decoded = [...decoder.decode(bytes.subarray(i, i + 1), { stream: true })].length;
        if (decoded > 0) {
          characters += decoded;
          pending = i + 1;
        }
      } catch {
        return { line, character: characters + 1, byte: bytes[pending] ?? 0 };
      }
    }
    try {
      decoder.decode();
    } catch {
      return { line, character: characters + 1, byte: bytes[pending] ?? 0 };
    }
    if (lf === -1) break;
    start = lf + 1;
  }
  return { line, character: 1, byte: 0 };
}

function decode(bytes: Uint8Array): { ok: true; text: string } | { ok: false; issue: RowIssue } {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return { ok: false, issue: invalid(1, null, 'the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as CSV UTF-8') };
  }
  try {
    // The default ignoreBOM: false drops one UTF-8 BOM at the very start, and only there.
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    const at = firstInvalidUtf8(bytes);
    const hex = at.byte.toString(16).toUpperCase().padStart(2, '0');
    return {
      ok: false,
      issue: invalid(
        at.line,
        null,
        `invalid UTF-8 at line ${at.line}, character ${at.character} (byte 0x${hex}): save the file as CSV UTF-8`,
      ),
    };
  }
}

type RawRecord = { readonly fields: readonly string[]; readonly line: number };

const LINE_BREAK = /\r\n|\r|\n/g;

function records(text: string): { ok: true; records: RawRecord[] } | { ok: false; issue: RowIssue } {
  const found: RawRecord[] = [];
  let lastLine = 0;
  try {
    parse(text, {
      raw: true,
      relax_column_count: true,
      skip_empty_lines: true,
      skip_records_with_empty_values: true,
      // With raw: true a record arrives as {record, raw}.
      on_record: (withRaw: unknown, context) => {
        const { record, raw } = withRaw as { record: string[]; raw: string };
        // `lines` is where the record ends; a quoted value may span lines, and the row's line is where it starts.
        const line = context.lines - (raw.replace(/(\r\n|\r|\n)$/, '').match(LINE_BREAK)?.length ?? 0);
        lastLine = context.lines;
        found.push({ fields: record, line });
        return null;
      },
    });
  } catch (error) {
    const e = error as CsvError & { lines?: number; column?: number | string };
    if (e.code === 'CSV_QUOTE_NOT_CLOSED') {
      return {
        ok: false,
        issue: invalid(lastLine + 1, null, 'a quoted value that starts in this row is never closed (a stray " in a value?)'),
      };
    }
    const line = typeof e.lines === 'number' ? e.lines : lastLine + 1;
    // e.column is the 0-based field index; the header (the first record) names it.
    const column = typeof e.column === 'number' && found.length > 0 ? (found[0]?.fields[e.column] ?? null) : null;
    if (e.code === 'INVALID_OPENING_QUOTE' || e.code === 'CSV_INVALID_CLOSING_QUOTE') {
      return {
        ok: false,
        issue: invalid(line, column, 'a quote inside a value: quote the whole value and double the quote inside it ("5"" pot")'),
      };
    }
    return { ok: false, issue: invalid(line, column, `not readable as CSV: ${e.message}`) };
  }
  return { ok: true, records: found };
}

function checkHeader(kind: ImportKind, header: RawRecord): RowIssue[] {
  const spec = IMPORT_KINDS[kind];
  const known: readonly string[] = [...spec.required, ...spec.optional];
  const issues: RowIssue[] = [];
  const seen = new Set<string>();
  for (const name of header.fields) {
    if (seen.has(name)) issues.push(invalid(header.line, name, `column "${name}" appears more than once`));
    seen.add(name);
    if (!known.includes(name)) {
      const near = known.find((k) => k === name.trim().toLowerCase());
      const why =
        name === '' ? 'an empty column name (a trailing comma?)' : `unknown column "${name}"${near ? ` (did you mean ${near}?)` : ''}`;
      issues.push(invalid(header.line, name, `${why}; expected ${headerText(kind)}`));
    }
  }
  for (const name of spec.required) {
    if (!seen.has(name)) issues.push(invalid(header.line, name, `missing column "${name}"; expected ${headerText(kind)}`));
  }
  return issues;
}

export function parseImportFile(kind: ImportKind, bytes: Uint8Array): ParsedImportFile {
  if (bytes.length > MAX_IMPORT_BYTES) {
    return refuse(invalid(null, null, `the file is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MiB: split it`));
  }
  const decoded = decode(bytes);
  if (!decoded.ok) return refuse(decoded.issue);
  const { text } = decoded;
  const nul = text.indexOf('\u0000');
  if (nul !== -1) {
    const at = positionOf(text, nul);
    return refuse(invalid(at.line, null, `a NUL character at line ${at.line}, character ${at.character}: not a text file`));
  }
  const read = records(text);
  if (!read.ok) return refuse(read.issue);
  const [first, ...data] = read.records;
  if (!first) return refuse(invalid(1, null, `the file is empty: expected a header line ${headerText(kind)}`));
  const header = first.fields;
  const headerIssues = checkHeader(kind, first);
  if (headerIssues.length > 0) return { ok: false, issues: headerIssues };

  const rows: ImportRow[] = [];
  const issues: RowIssue[] = [];
  const named: Record<string, string>[] = [];
  for (const record of data) {
    const values: Record<string, string> = {};
    record.fields.forEach((value, i) => {
      values[header[i] ?? `#${i + 1}`] = value;
    });
    named.push(values);
    if (record.fields.length !== header.length) {
      const hint = record.fields.length > header.length ? ' (a comma inside a value needs the value in double quotes)' : '';
      issues.push(invalid(record.line, null, `${record.fields.length} values, the header has ${header.length}${hint}`));
      continue;
    }
    rows.push({ line: record.line, values });
  }
  const digest = createHash('sha256')
    .update(canonicalJson({ kind, records: named }))
    .digest('hex');
  return { ok: true, columns: header, rows, issues, digest };
}
