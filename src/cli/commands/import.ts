// haat import skus <file|-> · haat import stock <file|->
// Reads the file (or standard input) up to MAX_IMPORT_BYTES, refusing a larger one before reading it
// whole, and hands the bytes to importFile (src/commands/import-file.ts), where every row becomes one
// idempotent command. A progress bar (rows, rows/s, time left) is drawn on stderr when stderr is a
// terminal, and never otherwise.
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { type ImportReport, importFile, importPrefix } from '../../commands/import-file.ts';
import { headerText, type ImportKind, MAX_IMPORT_BYTES, type RowIssue } from '../../domain/import/parse-import-file.ts';
import { HaatError, invalidInput } from '../../errors.ts';
import { type BaseDeps, buildDeps, type Deps } from '../context.ts';
import { requireValue } from '../prompts.ts';

type ImportFlags = { readonly skipInvalid?: boolean; readonly dryRun?: boolean; readonly idempotencyKey?: string };

const MIB = MAX_IMPORT_BYTES / 1024 / 1024;

function tooLarge(what: string, size?: number): HaatError {
  const message = `${what} is larger than ${MIB} MiB, the import limit: split it into smaller files`;
  const issue: RowIssue = { line: null, column: null, code: 'invalid_input', message };
  return invalidInput(message, { rows: [issue], limit_bytes: MAX_IMPORT_BYTES, ...(size === undefined ? {} : { size_bytes: size }) });
}

function unreadable(source: string, error: unknown): HaatError {
  const code = (error as { code?: unknown }).code;
  const why =
    code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : String(error);
  const message = `cannot read ${source}: ${why}`;
  return invalidInput(message, { rows: [{ line: null, column: null, code: 'invalid_input', message }], file: source });
}

/** Reads at most MAX_IMPORT_BYTES; one byte more and the rest is never read. */
async function readLimited(stream: AsyncIterable<Uint8Array | string> & { destroy(): void }, what: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    total += bytes.length;
    if (total > MAX_IMPORT_BYTES) {
      stream.destroy();
      throw tooLarge(what);
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, total);
}

async function readInput(source: string): Promise<Uint8Array> {
  if (source === '-') return readLimited(process.stdin, 'standard input');
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(source, 'r');
  } catch (error) {
    throw unreadable(source, error);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw unreadable(source, Object.assign(new Error('EISDIR'), { code: 'EISDIR' }));
    // A regular file's size is known: a file over the limit is refused without reading a byte.
    if (stat.isFile() && stat.size > MAX_IMPORT_BYTES) throw tooLarge(source, stat.size);
    return await readLimited(handle.createReadStream({ autoClose: false }), source);
  } catch (error) {
    if (error instanceof HaatError) throw error;
    throw unreadable(source, error);
  } finally {
    await handle.close();
  }
}

type Progress = { start(total: number): void; update(done: number): void; stop(): void };

/** The bar, only when stderr is a terminal (the process's real stderr; a test's captured one is not). */
async function progressBar(deps: Deps, kind: ImportKind): Promise<Progress | undefined> {
  const stream = deps.io.stderr as Partial<NodeJS.WriteStream>;
  if (stream.isTTY !== true) return undefined;
  const { SingleBar } = (await import('cli-progress')).default;
  const bar = new SingleBar({
    stream: stream as NodeJS.WriteStream,
    format: `import ${kind} {bar} {value}/{total} rows | {speed} rows/s | {eta_formatted} left`,
    etaBuffer: 20,
    fps: 10,
  });
  let started = 0;
  return {
    start(total) {
      started = Date.now();
      bar.start(total, 0, { speed: 0 });
    },
    update(done) {
      const seconds = (Date.now() - started) / 1000;
      bar.update(done, { speed: seconds > 0 ? Math.round(done / seconds) : 0 });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function human(kind: ImportKind, r: ImportReport): string {
  if (r.dry_run) {
    return `import ${kind} (dry run, nothing written): ${r.to_apply} to apply, ${r.to_replay} to replay, ${r.skipped} skipped`;
  }
  return `import ${kind}: ${r.applied} applied, ${r.replayed} replayed, ${r.skipped} skipped`;
}

/** Without --json the error line only says how many rows: the rows themselves go to stderr first. */
function explain(deps: Deps, error: HaatError): void {
  const rows = (error.details.rows ?? []) as readonly RowIssue[];
  const shown = rows.slice(0, 20);
  for (const r of shown) {
    const where = [r.line === null ? null : `line ${r.line}`, r.column === null ? null : r.column].filter(Boolean).join(', ');
    deps.output.note(`${where ? `${where}: ` : ''}${r.message} (${r.code})`);
  }
  const total = typeof error.details.rows_total === 'number' ? error.details.rows_total : rows.length;
  if (total > shown.length) deps.output.note(`… and ${total - shown.length} more (--json lists up to ${rows.length})`);
  if (error.code === 'import_incomplete' && typeof error.details.idempotency_key === 'string') {
    deps.output.note(
      `to finish this import with a corrected file, run it with --idempotency-key ${error.details.idempotency_key}: rows already applied are not applied again`,
    );
  }
}

async function runImport(deps: Deps, kind: ImportKind, source: string, flags: ImportFlags): Promise<void> {
  if (deps.globals.reason !== undefined && !deps.globals.bypassMaintenance) {
    throw invalidInput(
      `--reason is only for --bypass-maintenance here: each stock row's reason is its reason column (${headerText('stock')})`,
      { option: '--reason' },
    );
  }
  if (deps.globals.bypassMaintenance && deps.globals.reason === undefined) {
    throw invalidInput('--bypass-maintenance needs --reason <why>', { missing: 'reason' });
  }
  const prefix = flags.idempotencyKey === undefined ? undefined : importPrefix(flags.idempotencyKey);
  const bytes = await readInput(source);
  const progress = flags.dryRun ? undefined : await progressBar(deps, kind);
  try {
    const report = await deps.withDatabase((db) =>
      importFile(db.pool, {
        kind,
        bytes,
        ...(prefix === undefined ? {} : { prefix }),
        dryRun: flags.dryRun === true,
        skipInvalid: flags.skipInvalid === true,
        actor: deps.globals.actor,
        ...(deps.globals.bypassMaintenance && deps.globals.reason !== undefined ? { bypassReason: deps.globals.reason } : {}),
        log: deps.log,
        onKey: (key) => {
          if (prefix === undefined) deps.io.stderr.write(`idempotency key: ${key}\n`);
        },
        ...(progress ? { onStart: (total: number) => progress.start(total), onProgress: (done: number) => progress.update(done) } : {}),
      }),
    );
    progress?.stop();
    const { rows: _none, ...shown } = report;
    deps.output.result(shown, () => human(kind, report));
    // A stock delivery whose lines equal an earlier one's (next week's, say) replays it when run
    // under the same key: say so, loudly, so that it is not taken for a received delivery.
    const replayed = report.dry_run ? report.to_replay : report.replayed;
    if (replayed !== undefined && replayed > 0) {
      deps.io.stderr.write(
        `note: ${replayed} row(s) were applied before, by an import with the same idempotency key${prefix === undefined ? " (the file's digest: the same lines as an earlier file)" : ''}, and were not applied again. A new delivery with the same lines needs its own --idempotency-key, e.g. --idempotency-key delivery-2026-12-01.\n`,
      );
    }
  } catch (error) {
    progress?.stop();
    if (error instanceof HaatError) explain(deps, error);
    throw error;
  }
}

export function registerImportCommands(program: Command, base: BaseDeps): void {
  const group = program.command('import').description('bulk import from CSV: SKUs, stock');
  const describe = (kind: ImportKind, summary: string) =>
    group
      .command(kind)
      .description(`${summary}; CSV with the header ${headerText(kind)} (at most ${MIB} MiB, UTF-8)`)
      .argument('[file]', 'the CSV file, or - for standard input')
      .option('--skip-invalid', 'write the valid rows and list the others (exit 3 import_incomplete when any is skipped)')
      .option('--dry-run', 'validate every row against the database and write nothing')
      .option('--idempotency-key <key>', "prefix of every row's key (default: the file's digest); the same key again applies no row twice")
      .action(async (file: string | undefined, flags: ImportFlags, command: Command) => {
        const deps = buildDeps(base, command, 'warn');
        const source = await requireValue(deps.prompter, file, { name: 'file', message: 'CSV file (- for standard input)' });
        await runImport(deps, kind, source, flags);
      });
  describe('skus', 'create SKUs (as `haat sku add`, one row each)');
  describe('stock', 'receive stock (as `haat stock receive`, one row each)');
}
