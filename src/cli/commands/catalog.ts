// haat seller add · haat sku add
import type { Command } from 'commander';
import { type Currency, formatMoney } from '../../domain/money.ts';
import { type BaseDeps, buildDeps } from '../context.ts';
import { keyValues } from '../output.ts';
import { requireValue } from '../prompts.ts';
import { runWrite, type WriteOptions, writeOptions } from '../write.ts';

type SkuResult = {
  code: string;
  seller: string;
  title: string;
  price: { amount: bigint | number; currency: string };
  stock: { on_hand: bigint | number; available: bigint | number } | null;
};

export function registerCatalogCommands(program: Command, base: BaseDeps): void {
  const seller = program.command('seller').description('sellers');
  writeOptions(
    seller
      .command('add')
      .description('create a seller')
      .argument('[handle]', 'lower-case a-z, digits and -, e.g. tea-house')
      .option('--name <name>', 'display name'),
  ).action(async (handle: string | undefined, opts: WriteOptions & { name?: string }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const payload = {
      handle: await requireValue(deps.prompter, handle, { name: 'handle', message: 'Seller handle' }),
      name: await requireValue(deps.prompter, opts.name, { name: 'name', message: 'Seller name' }),
    };
    const written = await runWrite(deps, { type: 'seller.add', payload }, opts);
    if (!written) return;
    const { result } = written;
    const r = result as { handle: string; name: string };
    deps.output.result(result, () =>
      keyValues([
        ['seller', r.handle ?? ''],
        ['name', r.name ?? ''],
      ]),
    );
  });

  const sku = program.command('sku').description('SKUs');
  writeOptions(
    sku
      .command('add')
      .description('create a SKU with its inventory row (0 on hand)')
      .argument('[code]', 'upper-case A-Z, digits, - and _, e.g. TEA-1KG')
      .option('--seller <handle>', 'the seller')
      .option('--price <minor>', 'unit price as an integer count of minor units (12999 = ₹129.99)')
      .option('--currency <ISO>', 'ISO 4217 code, e.g. INR')
      .option('--title <title>', 'title'),
  ).action(
    async (
      code: string | undefined,
      opts: WriteOptions & { seller?: string; price?: string; currency?: string; title?: string },
      command: Command,
    ) => {
      const deps = buildDeps(base, command, 'warn');
      const payload = {
        code: await requireValue(deps.prompter, code, { name: 'code', message: 'SKU code' }),
        seller: await requireValue(deps.prompter, opts.seller, { name: 'seller', message: 'Seller handle' }),
        price: await requireValue(deps.prompter, opts.price, { name: 'price', message: 'Unit price in minor units' }),
        currency: await requireValue(deps.prompter, opts.currency, { name: 'currency', message: 'Currency (ISO 4217)' }),
        ...(opts.title === undefined ? {} : { title: opts.title }),
      };
      const written = await runWrite(deps, { type: 'sku.add', payload }, opts);
      if (!written) return;
      const { result } = written;
      const r = result as SkuResult;
      deps.output.result(result, () =>
        keyValues([
          ['sku', r.code],
          ['seller', r.seller],
          ['title', r.title || '—'],
          ['price', formatMoney({ amount: BigInt(r.price.amount), currency: r.price.currency as Currency })],
          ['on hand', String(r.stock?.on_hand ?? 0)],
        ]),
      );
    },
  );
}
