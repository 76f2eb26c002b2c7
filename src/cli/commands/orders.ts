// haat order place · show · list · history · confirm · ship · deliver · cancel · refund
// haat reservations list · expire
import type { Command } from 'commander';
import { z } from 'zod';
import { orderJson } from '../../commands/order-handlers.ts';
import { findOrder, itemsOfOrders, listOrders, listReservations, orderHistory, orderItems } from '../../db/orders.ts';
import { OrderKey } from '../../domain/commands.ts';
import { type Currency, formatMoney } from '../../domain/money.ts';
import { isOrderState, orderStates } from '../../domain/orders/states.ts';
import { invalidInput, notFound } from '../../errors.ts';
import { humanTime } from '../../time.ts';
import { expireReservations } from '../../worker/tasks/expire-reservations.ts';
import { type BaseDeps, buildDeps, type Deps } from '../context.ts';
import { smallInteger } from '../options.ts';
import { keyValues, table } from '../output.ts';
import { requireValue } from '../prompts.ts';
import { runWrite, type WriteOptions, writeOptions } from '../write.ts';

type Money = { amount: bigint | number; currency: string };
type OrderJson = {
  id: string;
  ref: string;
  state: string;
  buyer: string;
  items: { sku: string; qty: bigint | number; unit_price: Money; total: Money }[];
  total: Money;
  expires_at: string | null;
  reject_reason?: string;
  requested_items?: { sku: string; qty: bigint | number }[];
};

const money = (m: Money) => formatMoney({ amount: BigInt(m.amount), currency: m.currency as Currency });

function renderOrder(o: OrderJson): string {
  return [
    keyValues([
      ['order', `${o.ref} (${o.id})`],
      ['state', o.state + (o.reject_reason ? ` (${o.reject_reason})` : '')],
      ['buyer', o.buyer],
      ['total', money(o.total)],
      ...(o.expires_at ? [['expires at', humanTime(o.expires_at)] as const] : []),
    ]),
    o.requested_items
      ? table(
          ['SKU (AS ASKED)', 'QTY'],
          o.requested_items.map((i) => [i.sku, String(i.qty)]),
        )
      : table(
          ['SKU', 'QTY', 'UNIT PRICE', 'TOTAL'],
          o.items.map((i) => [i.sku, String(i.qty), money(i.unit_price), money(i.total)]),
        ),
  ].join('\n');
}

function parseItem(raw: string): { sku: string; qty: string } {
  const at = raw.lastIndexOf(':');
  if (at <= 0) throw invalidInput(`--item must be <sku>:<qty>, got ${JSON.stringify(raw)}`, { item: raw });
  return { sku: raw.slice(0, at), qty: raw.slice(at + 1) };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function stateOption(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!isOrderState(raw)) throw invalidInput(`--state must be one of ${orderStates.join(', ')}`, { state: raw });
  return raw;
}

async function orderKeyArg(deps: Deps, raw: string | undefined): Promise<string> {
  return OrderKey.parse(await requireValue(deps.prompter, raw, { name: 'order', message: 'Order id or ref' }));
}

async function write(deps: Deps, type: string, payload: Record<string, unknown>, opts: WriteOptions): Promise<void> {
  const written = await runWrite(deps, { type, payload }, opts);
  if (!written) return;
  const { result } = written;
  deps.output.result(result, () => ('state' in (result as object) ? renderOrder(result as OrderJson) : JSON.stringify(result)));
}

export function registerOrderCommands(program: Command, base: BaseDeps): void {
  const order = program.command('order').description('orders: place, read, and move through their states');

  writeOptions(
    order
      .command('place')
      .description('place an order: every item reserved, or the order recorded rejected (insufficient_stock, exit 3)')
      .option('--buyer <id>', 'buyer id')
      .option('--item <sku:qty>', 'an item; repeat for more (at most 100 SKUs)', collect)
      .option('--ref <ref>', 'your reference for the order (default: made from the idempotency key)'),
  ).action(async (opts: WriteOptions & { buyer?: string; item?: string[]; ref?: string }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const buyer = await requireValue(deps.prompter, opts.buyer, { name: 'buyer', message: 'Buyer id' });
    const rawItems = opts.item ?? [await requireValue(deps.prompter, undefined, { name: 'item', message: 'Item as SKU:QTY' })];
    await write(deps, 'order.place', { buyer, items: rawItems.map(parseItem), ...(opts.ref === undefined ? {} : { ref: opts.ref }) }, opts);
  });

  order
    .command('show')
    .description('one order, by id or ref')
    .argument('[order]', 'order id or ref')
    .action(async (raw: string | undefined, _opts: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const key = await orderKeyArg(deps, raw);
      const json = await deps.withDatabase(async (db) => {
        const found = await findOrder(db.pool, key);
        return found ? orderJson(found, await orderItems(db.pool, found.id)) : null;
      });
      if (!json) throw notFound('order', key);
      deps.output.result(json, () => renderOrder(json as unknown as OrderJson));
    });

  order
    .command('list')
    .description('orders, newest first')
    .option('--state <state>', `only this state (${orderStates.join(', ')})`)
    .option('--limit <n>', 'at most this many (1–10000, default 50)')
    .action(async (opts: { state?: string; limit?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const state = stateOption(opts.state);
      const limit = opts.limit === undefined ? 50 : smallInteger('--limit', opts.limit, 1, 10_000);
      const orders = await deps.withDatabase(async (db) => {
        const rows = await listOrders(db.pool, { limit, ...(state ? { state } : {}) });
        const items = await itemsOfOrders(
          db.pool,
          rows.map((r) => r.id),
        );
        return rows.map((r) => orderJson(r, items.get(r.id) ?? []));
      });
      deps.output.result(orders, () =>
        orders.length === 0
          ? 'no orders'
          : table(
              ['REF', 'STATE', 'BUYER', 'TOTAL', 'EXPIRES AT'],
              orders.map((o) => [
                o.ref,
                o.state + (o.reject_reason ? ` (${o.reject_reason})` : ''),
                o.buyer,
                money(o.total),
                humanTime(o.expires_at),
              ]),
            ),
      );
    });

  order
    .command('history')
    .description("an order's transitions, oldest first")
    .argument('[order]', 'order id or ref')
    .action(async (raw: string | undefined, _opts: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const key = await orderKeyArg(deps, raw);
      const history = await deps.withDatabase(async (db) => {
        const found = await findOrder(db.pool, key);
        return found ? orderHistory(db.pool, found.id) : null;
      });
      if (!history) throw notFound('order', key);
      const json = history.map((t) => ({ from: t.from_state, to: t.to_state, at: t.at, actor: t.actor, reason: t.reason }));
      deps.output.result(json, () =>
        table(
          ['FROM', 'TO', 'AT', 'ACTOR', 'REASON'],
          json.map((t) => [t.from ?? '(new)', t.to, humanTime(t.at), t.actor, t.reason ?? '']),
        ),
      );
    });

  writeOptions(
    order
      .command('confirm')
      .description('record a captured payment by hand: pending → confirmed')
      .argument('[order]', 'order id or ref')
      .option('--payment-ref <ref>', 'the payment reference')
      .option('--amount <minor>', 'captured amount in minor units; must equal the order total'),
  ).action(async (raw: string | undefined, opts: WriteOptions & { paymentRef?: string; amount?: string }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const payload = {
      order: await orderKeyArg(deps, raw),
      payment_ref: await requireValue(deps.prompter, opts.paymentRef, { name: 'payment-ref', message: 'Payment reference' }),
      amount: await requireValue(deps.prompter, opts.amount, { name: 'amount', message: 'Amount in minor units' }),
    };
    await write(deps, 'order.confirm', payload, opts);
  });

  writeOptions(
    order
      .command('ship')
      .description('confirmed → shipped')
      .argument('[order]', 'order id or ref')
      .option('--tracking <t>', 'tracking number'),
  ).action(async (raw: string | undefined, opts: WriteOptions & { tracking?: string }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    await write(
      deps,
      'order.ship',
      { order: await orderKeyArg(deps, raw), ...(opts.tracking === undefined ? {} : { tracking: opts.tracking }) },
      opts,
    );
  });

  writeOptions(order.command('deliver').description('shipped → delivered').argument('[order]', 'order id or ref')).action(
    async (raw: string | undefined, opts: WriteOptions, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      await write(deps, 'order.deliver', { order: await orderKeyArg(deps, raw) }, opts);
    },
  );

  for (const [name, type, description] of [
    ['cancel', 'order.cancel', 'pending → cancelled (releases stock) or confirmed → cancelled (restocks); needs --reason'],
    ['refund', 'order.refund', 'delivered → refunded; needs --reason'],
  ] as const) {
    writeOptions(order.command(name).description(description).argument('[order]', 'order id or ref')).action(
      async (raw: string | undefined, opts: WriteOptions, command: Command) => {
        const deps = buildDeps(base, command, 'warn');
        const payload = {
          order: await orderKeyArg(deps, raw),
          reason: await requireValue(deps.prompter, deps.globals.reason, { name: 'reason', message: 'Reason' }),
        };
        await write(deps, type, payload, opts);
      },
    );
  }

  const reservations = program.command('reservations').description('stock held for pending orders');
  reservations
    .command('list')
    .description('reservations, newest first')
    .option('--state <state>', 'active, released, finalized or expired')
    .option('--limit <n>', 'at most this many (1–10000, default 100)')
    .action(async (opts: { state?: string; limit?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const state = opts.state === undefined ? undefined : z.enum(['active', 'released', 'finalized', 'expired']).parse(opts.state);
      const limit = opts.limit === undefined ? 100 : smallInteger('--limit', opts.limit, 1, 10_000);
      const rows = await deps.withDatabase((db) => listReservations(db.pool, { limit, ...(state ? { state } : {}) }));
      deps.output.result(rows, () =>
        rows.length === 0
          ? 'no reservations'
          : table(
              ['ID', 'ORDER', 'SKU', 'QTY', 'STATE', 'CREATED AT'],
              rows.map((r) => [String(r.id), r.order_ref ?? '', r.sku, String(r.qty), r.state, humanTime(r.created_at)]),
            ),
      );
    });
  reservations
    .command('expire')
    .description('run the expiry sweep now (the worker runs it every minute)')
    .action(async (_opts: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const expired = await deps.withDatabase((db) => expireReservations(db.pool, deps.log, deps.globals.actor));
      deps.output.result({ expired }, () => (expired.length === 0 ? 'nothing to expire' : `expired: ${expired.join(', ')}`));
    });
}
