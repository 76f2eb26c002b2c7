// The rows of an import file as commands: each row's payload is built the way the single command's
// CLI builds it (`haat sku add`, `haat stock receive`: every value a string as typed) and parsed by
// the same schema (domain/commands.ts), so a row is valid exactly when the command would be. Zod's
// issues become row issues on the CSV column they are about. Pure.
// - An empty cell of an optional column (title, reason) is that option left out.
// - Two rows for the same SKU (compared after canonicalSkuCode, so `tea-1kg` meets `TEA-1KG`) are
//   ambiguous: both are refused, each naming the other's line.
import { canonicalSkuCode } from '../catalog.ts';
import { Command } from '../commands.ts';
import type { ImportKind, ImportRow, RowIssue } from './parse-import-file.ts';

export type ImportCommand = { readonly line: number; readonly sku: string; readonly command: Command };

type KindSpec = {
  readonly type: Command['type'];
  /** The column naming the SKU a row is about: each file holds one row per SKU. */
  readonly skuColumn: string;
  readonly optional: readonly string[];
};

const kinds: { readonly [K in ImportKind]: KindSpec } = {
  skus: { type: 'sku.add', skuColumn: 'code', optional: ['title'] },
  stock: { type: 'stock.receive', skuColumn: 'sku', optional: ['reason'] },
};

export function skuColumnOf(kind: ImportKind): string {
  return kinds[kind].skuColumn;
}

function payloadOf(spec: KindSpec, values: Readonly<Record<string, string>>): Record<string, string> {
  const payload: Record<string, string> = {};
  for (const [column, value] of Object.entries(values)) {
    if (spec.optional.includes(column) && value === '') continue;
    payload[column] = value;
  }
  return payload;
}

function duplicates(spec: KindSpec, rows: readonly ImportRow[]): Map<number, RowIssue[]> {
  const byCode = new Map<string, number[]>();
  for (const row of rows) {
    const code = canonicalSkuCode(row.values[spec.skuColumn] ?? '');
    if (code === '') continue;
    const lines = byCode.get(code);
    if (lines) lines.push(row.line);
    else byCode.set(code, [row.line]);
  }
  const issues = new Map<number, RowIssue[]>();
  for (const [code, lines] of byCode) {
    if (lines.length < 2) continue;
    const [first = 0, ...later] = lines;
    const shown = later.slice(0, 5).join(', ') + (later.length > 5 ? ` and ${later.length - 5} more` : '');
    for (const line of lines) {
      const message =
        line === first
          ? `SKU ${code} is also on line ${shown}: one row per SKU in a file`
          : `duplicate of line ${first} (SKU ${code}): one row per SKU in a file`;
      const issue: RowIssue = { line, column: spec.skuColumn, code: 'invalid_input', message };
      const existing = issues.get(line);
      if (existing) existing.push(issue);
      else issues.set(line, [issue]);
    }
  }
  return issues;
}

export function commandsFromRows(
  kind: ImportKind,
  rows: readonly ImportRow[],
): { readonly commands: readonly ImportCommand[]; readonly issues: readonly RowIssue[] } {
  const spec = kinds[kind];
  const duplicated = duplicates(spec, rows);
  const commands: ImportCommand[] = [];
  const issues: RowIssue[] = [];
  for (const row of rows) {
    const parsed = Command.safeParse({ type: spec.type, payload: payloadOf(spec, row.values) });
    const rowIssues: RowIssue[] = parsed.success
      ? []
      : parsed.error.issues.map((issue) => ({
          line: row.line,
          column: typeof issue.path[1] === 'string' ? issue.path[1] : null,
          code: 'invalid_input',
          message: issue.message,
        }));
    rowIssues.push(...(duplicated.get(row.line) ?? []));
    if (parsed.success && rowIssues.length === 0) {
      commands.push({ line: row.line, sku: row.values[spec.skuColumn] ?? '', command: parsed.data });
    } else {
      issues.push(...rowIssues);
    }
  }
  return { commands, issues };
}
