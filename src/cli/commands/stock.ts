// haat stock receive · adjust · show · list
import type { Command } from 'commander';
import { stockJson } from '../../commands/stock-json.ts';
import { listStock, stockOf } from '../../db/inventory.ts';
import { SkuCode } from '../../domain/catalog.ts';
import { notFound } from '../../errors.ts';
import { type BaseDeps, buildDeps } from '../context.ts';
import { smallInteger } from '../options.ts';
import { table } from '../output.ts';
import { requireValue } from '../prompts.ts';
import { runWrite, type WriteOptions, writeOptions } from '../write.ts';

type StockJson = { sku: string; on_hand: bigint | number; reserved: bigint | number; available: bigint | number };

export function stockTable(rows: readonly StockJson[]): string {
  return table(
    ['SKU', 'ON HAND', 'RESERVED', 'AVAILABLE'],
    rows.map((r) => [r.sku, String(r.on_hand), String(r.reserved), String(r.available)]),
  );
}

export function registerStockCommands(program: Command, base: BaseDeps): void {
  const stock = program.command('stock').description('inventory: on hand, reserved, available');

  writeOptions(
    stock.command('receive').description('add stock').argument('[sku]', 'SKU code').argument('[qty]', 'quantity, a whole number 1–1000000'),
  ).action(async (sku: string | undefined, qty: string | undefined, opts: WriteOptions, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const payload = {
      sku: await requireValue(deps.prompter, sku, { name: 'sku', message: 'SKU code' }),
      qty: await requireValue(deps.prompter, qty, { name: 'qty', message: 'Quantity received' }),
      ...(deps.globals.reason === undefined ? {} : { reason: deps.globals.reason }),
    };
    const written = await runWrite(deps, { type: 'stock.receive', payload }, opts);
    if (!written) return;
    const { result } = written;
    deps.output.result(result, () => stockTable([result as StockJson]));
  });

  writeOptions(
    stock
      .command('adjust')
      .description('correct stock up or down (never below what is reserved); needs --reason')
      .argument('[sku]', 'SKU code')
      .argument('[delta]', 'signed whole number, e.g. -3 or 5'),
  ).action(async (sku: string | undefined, delta: string | undefined, opts: WriteOptions, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const payload = {
      sku: await requireValue(deps.prompter, sku, { name: 'sku', message: 'SKU code' }),
      delta: await requireValue(deps.prompter, delta, { name: 'delta', message: 'Change (e.g. -3)' }),
      reason: await requireValue(deps.prompter, deps.globals.reason, { name: 'reason', message: 'Reason' }),
    };
    const written = await runWrite(deps, { type: 'stock.adjust', payload }, opts);
    if (!written) return;
    const { result } = written;
    deps.output.result(result, () => stockTable([result as StockJson]));
  });

  stock
    .command('show')
    .description('on hand, reserved and available for one SKU')
    .argument('[sku]', 'SKU code')
    .action(async (sku: string | undefined, _opts: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const code = SkuCode.parse(await requireValue(deps.prompter, sku, { name: 'sku', message: 'SKU code' }));
      const row = await deps.withDatabase((db) => stockOf(db.pool, code));
      if (!row) throw notFound('sku', code);
      deps.output.result(stockJson(row), () => stockTable([row]));
    });

  stock
    .command('list')
    .description('stock of every SKU, by code')
    .option('--limit <n>', 'at most this many rows (1–10000, default 1000)')
    .option('--after <sku>', 'start after this SKU code (paging)')
    .action(async (opts: { limit?: string; after?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const limit = opts.limit === undefined ? 1000 : smallInteger('--limit', opts.limit, 1, 10_000);
      const after = opts.after === undefined ? undefined : SkuCode.parse(opts.after);
      const rows = await deps.withDatabase((db) => listStock(db.pool, { limit, ...(after === undefined ? {} : { after }) }));
      deps.output.result(rows.map(stockJson), () => (rows.length === 0 ? 'no SKUs' : stockTable(rows)));
    });
}
