// A bulk import (docs/contract.md, Bulk import): every row of a CSV file is one command with its own
// idempotency key, validated all together before anything is written, then applied in batches through
// the one write path (applyBatch: the handlers' own apply, each batch one commit; a savepoint per row
// only when a row raises).
//
// Keys (scope `import`): `<kind>:<prefix>:<SKU code>`. A file holds one row per SKU, so the SKU code
// names the row. The prefix is `--idempotency-key`, or by default the SHA-256 of the file's records
// (as named values: line endings, quoting, a BOM or the order of columns do not change it), printed
// so it can be given again. Hence:
// - the same file again: every key is done, nothing is applied twice ({"applied": 0, "replayed": n});
// - an import interrupted (Ctrl-C, kill, a lost connection): every committed batch is whole, and the
//   same file again applies only the rest;
// - a corrected file with the same --idempotency-key: rows already applied replay, rows that were
//   refused (and so never applied) apply, and a row changed after it was applied is an
//   idempotency_conflict, never a second effect (a key per row content would apply it again);
// - another file, or the same one with another key, is another import: identical stock rows in next
//   week's delivery file are applied again, as they should be.
// Validation, for the whole file before any write, in one query per lookup: the file (see
// domain/import/parse-import-file.ts), each row by the single command's schema, duplicate SKUs, then
// the rows' keys (done → replayed; another command under the key → idempotency_conflict) and, for the
// rest, the prechecks the single commands run (precheckBatch: unknown seller or SKU, a SKU that
// exists). An invalid row refuses the import (invalid_input, nothing written) unless skipInvalid.
// Maintenance mode refuses an import that has anything to write (maintenance_mode) unless it runs
// with a bypass reason; applyBatch holds the line inside each batch too.
import { findKeys, outcomeOf } from '../db/idempotency.ts';
import { maintenanceStatus } from '../db/operations.ts';
import type { DatabasePool } from '../db/pool.ts';
import { fingerprint, IdempotencyKey, type Outcome } from '../domain/commands.ts';
import { commandsFromRows, type ImportCommand, skuColumnOf } from '../domain/import/commands-from-rows.ts';
import { type ImportKind, parseImportFile, type RowIssue } from '../domain/import/parse-import-file.ts';
import { type ErrorDetails, HaatError, invalidInput } from '../errors.ts';
import type { Logger } from '../log.ts';
import { applyBatch, type BatchResult } from './apply-batch.ts';
import { MaintenanceHold } from './apply-command.ts';
import { precheckBatch } from './precheck-batch.ts';

export const IMPORT_SCOPE = 'import';
/** Rows per transaction (at most applyBatch's MAX_BATCH): each batch holds its SKUs' row locks until it commits. */
export const IMPORT_BATCH = 250;
/** Batches in flight at once, each on its own connection: their SKUs are disjoint (one row per SKU), so they never wait for each other. */
export const IMPORT_CONCURRENCY = 4;
/** Room left in a 255-character key for `stock:` and `:<64-character SKU code>`. */
export const MAX_IMPORT_PREFIX = 255 - 'stock:'.length - 1 - 64;
/** At most this many row issues are listed in details.rows (the count of all is there too). */
export const MAX_LISTED_ROWS = 1000;

export type ImportOptions = {
  readonly kind: ImportKind;
  readonly bytes: Uint8Array;
  /** --idempotency-key: the prefix of every row's key (default: the file's digest). */
  readonly prefix?: string;
  readonly dryRun: boolean;
  readonly skipInvalid: boolean;
  readonly actor: string;
  readonly bypassReason?: string;
  readonly log: Logger;
  /** Told the rows' key prefix as soon as it is known, before anything is written. */
  readonly onKey?: (prefix: string) => void;
  /** Told how many rows are to be written, before the first batch. */
  readonly onStart?: (total: number) => void;
  /** Told after each committed batch how many rows of the total are done. */
  readonly onProgress?: (done: number) => void;
};

export type ImportReport = {
  readonly applied: number;
  readonly replayed: number;
  readonly skipped: number;
  /** The prefix of the rows' keys: give it as --idempotency-key to run a corrected file as the same import. */
  readonly idempotency_key: string;
  readonly dry_run?: true;
  /** Dry run: rows that would be applied, and replayed. */
  readonly to_apply?: number;
  readonly to_replay?: number;
  /** Every skipped or refused row, and why (at most MAX_LISTED_ROWS). */
  readonly rows: readonly RowIssue[];
};

type PlannedRow = ImportCommand & { readonly key: string };

export function importKey(kind: ImportKind, prefix: string, sku: string): string {
  return `${kind}:${prefix}:${sku}`;
}

export function importPrefix(raw: string): string {
  const key = IdempotencyKey.parse(raw);
  if (key.length > MAX_IMPORT_PREFIX) {
    throw invalidInput(
      `--idempotency-key: at most ${MAX_IMPORT_PREFIX} characters for an import (each row's key adds the kind and the SKU code)`,
      {
        option: '--idempotency-key',
      },
    );
  }
  return key;
}

function listed(rows: readonly RowIssue[]): ErrorDetails {
  const sorted = [...rows].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return {
    rows: sorted.slice(0, MAX_LISTED_ROWS),
    ...(sorted.length > MAX_LISTED_ROWS ? { rows_listed: MAX_LISTED_ROWS, rows_total: sorted.length } : {}),
  };
}

const linesOf = (issues: readonly RowIssue[]) => new Set(issues.map((i) => i.line)).size;

function refusedRow(row: PlannedRow, column: string | null, error: { code: RowIssue['code']; message: string }): RowIssue {
  return { line: row.line, column, code: error.code, message: error.message };
}

/** The validation pass against the database, read only: which rows are done, which refused, which to write. */
async function plan(
  pool: DatabasePool,
  kind: ImportKind,
  rows: readonly PlannedRow[],
): Promise<{ pending: PlannedRow[]; done: { row: PlannedRow; outcome: Outcome }[]; issues: RowIssue[] }> {
  const skuColumn = skuColumnOf(kind);
  const keys = new Map(
    (
      await findKeys(
        pool,
        IMPORT_SCOPE,
        rows.map((r) => r.key),
      )
    ).map((k) => [k.key, k]),
  );
  const done: { row: PlannedRow; outcome: Outcome }[] = [];
  const issues: RowIssue[] = [];
  const fresh: PlannedRow[] = [];
  const pending: PlannedRow[] = [];
  for (const row of rows) {
    const existing = keys.get(row.key);
    if (!existing) fresh.push(row);
    else if (existing.fingerprint !== fingerprint(row.command)) {
      issues.push(
        refusedRow(row, skuColumn, {
          code: 'idempotency_conflict',
          message: `${row.sku} was imported under this idempotency key with other values: a row is never applied twice`,
        }),
      );
    } else {
      const outcome = outcomeOf(existing);
      if (outcome) done.push({ row, outcome });
      else pending.push(row);
    }
  }
  const refusals = await precheckBatch(
    pool,
    fresh.map((r) => r.command),
  );
  fresh.forEach((row, i) => {
    const refusal = refusals[i];
    if (!refusal) pending.push(row);
    else issues.push(refusedRow(row, 'seller' in refusal.details && kind === 'skus' ? 'seller' : skuColumn, refusal));
  });
  return { pending, done, issues };
}

/** Runs batches over the pool, a few at a time; each result lands at its row's index. */
async function applyAll(pool: DatabasePool, rows: readonly PlannedRow[], options: ImportOptions): Promise<BatchResult[]> {
  const batches: PlannedRow[][] = [];
  for (let i = 0; i < rows.length; i += IMPORT_BATCH) batches.push(rows.slice(i, i + IMPORT_BATCH));
  const results: BatchResult[] = new Array(rows.length);
  let next = 0;
  let done = 0;
  let stop: unknown;
  const lane = async () => {
    while (stop === undefined && next < batches.length) {
      const index = next++;
      const batch = batches[index] ?? [];
      try {
        const outcomes = await applyBatch(
          pool,
          batch.map((row) => ({ scope: IMPORT_SCOPE, key: row.key, command: row.command, actor: options.actor })),
          { log: options.log, ...(options.bypassReason === undefined ? {} : { bypassReason: options.bypassReason }) },
        );
        outcomes.forEach((outcome, i) => {
          results[index * IMPORT_BATCH + i] = outcome;
        });
        done += batch.length;
        options.onProgress?.(done);
      } catch (error) {
        stop ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IMPORT_CONCURRENCY, batches.length) }, lane));
  if (stop !== undefined) {
    if (stop instanceof MaintenanceHold) {
      throw new HaatError(
        'maintenance_mode',
        `maintenance mode was turned on during the import: ${done} rows were written; run the same import again once it is off`,
        {
          rows_written: done,
        },
      );
    }
    throw stop;
  }
  return results;
}

export async function importFile(pool: DatabasePool, options: ImportOptions): Promise<ImportReport> {
  const { kind } = options;
  const parsed = parseImportFile(kind, options.bytes);
  if (!parsed.ok) {
    throw invalidInput(
      parsed.issues.length === 1
        ? (parsed.issues[0]?.message ?? 'invalid file')
        : `${parsed.issues.length} problems with the file's header`,
      {
        ...listed(parsed.issues),
      },
    );
  }
  const prefix = options.prefix ?? parsed.digest;
  options.onKey?.(prefix);
  const fromRows = commandsFromRows(kind, parsed.rows);
  const rows: PlannedRow[] = fromRows.commands.map((c) => ({ ...c, key: importKey(kind, prefix, c.sku) }));
  const checked = await plan(pool, kind, rows);
  const invalid = [...parsed.issues, ...fromRows.issues, ...checked.issues];
  if (invalid.length > 0 && !options.skipInvalid) {
    const count = linesOf(invalid);
    throw invalidInput(`${count} invalid row${count === 1 ? '' : 's'}; nothing was written (--skip-invalid writes the valid rows)`, {
      ...listed(invalid),
      idempotency_key: prefix,
    });
  }
  const skipped: RowIssue[] = [...invalid];
  let replayed = 0;
  for (const { row, outcome } of checked.done) {
    if (outcome.ok) replayed++;
    else skipped.push(refusedRow(row, null, outcome.error));
  }
  let applied = 0;
  let dry: Pick<ImportReport, 'dry_run' | 'to_apply' | 'to_replay'> = {};
  if (options.dryRun) {
    dry = { dry_run: true, to_apply: checked.pending.length, to_replay: replayed };
    replayed = 0;
  } else if (checked.pending.length > 0) {
    const maintenance = await maintenanceStatus(pool);
    if (maintenance.enabled && options.bypassReason === undefined) {
      throw new HaatError(
        'maintenance_mode',
        `maintenance mode is on${maintenance.message ? `: ${maintenance.message}` : ''}; retry with --bypass-maintenance --reason <why>`,
        { message: maintenance.message },
      );
    }
    // In ascending SKU order, the order every writer locks SKUs in.
    const pending = [...checked.pending].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    options.onStart?.(pending.length);
    const results = await applyAll(pool, pending, options);
    pending.forEach((row, i) => {
      const result = results[i];
      if (!result) return;
      if (result.status === 'applied' && result.outcome.ok) applied++;
      else if (result.status === 'replayed' && result.outcome.ok) replayed++;
      else if (result.status === 'applied' || result.status === 'replayed') {
        if (!result.outcome.ok) skipped.push(refusedRow(row, null, result.outcome.error));
      } else skipped.push(refusedRow(row, null, result.error));
    });
  }
  const report: ImportReport = { applied, replayed, skipped: linesOf(skipped), idempotency_key: prefix, ...dry, rows: [] };
  if (skipped.length > 0) {
    const count = linesOf(skipped);
    throw new HaatError(
      'import_incomplete',
      `${count} row${count === 1 ? '' : 's'} not imported${options.dryRun ? ' (dry run: nothing was written)' : ''}; ${applied} applied, ${replayed} replayed`,
      { ...report, ...listed(skipped) },
    );
  }
  return report;
}
