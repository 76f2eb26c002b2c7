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
type Units = { sku: string; qty: bigint | number }[];
type Counts = {
  cancelled: bigint | number;
  shipped: bigint | number;
  delivered: bigint | number;
  rto: bigint | number;
  returned: bigint | number;
};
export type OrderJson = {
  id: string;
  ref: string;
  state: string;
  buyer: string;
  payment_method: string;
  items: ({ sku: string; qty: bigint | number; unit_price: Money; total: Money } & Counts)[];
  total: Money;
  refunded: Money;
  expires_at: string | null;
  shipments: { ref: string; tracking: string | null; courier: string; state: string; items: Units }[];
  returns: { ref: string; state: string; items: Units; reason: string; disposition: string | null }[];
  reject_reason?: string;
  requested_items?: Units;
};

const units = (items: Units) => items.map((i) => `${i.sku}×${i.qty}`).join(', ');

const money = (m: Money) => formatMoney({ amount: BigInt(m.amount), currency: m.currency as Currency });

export function renderOrder(o: OrderJson): string {
  const past = o.state !== 'pending' && o.state !== 'rejected' && o.state !== 'expired';
  return [
    keyValues([
      ['order', `${o.ref} (${o.id})`],
      ['state', o.state + (o.reject_reason ? ` (${o.reject_reason})` : '')],
      ['buyer', o.buyer],
      ['payment', o.payment_method === 'cod' ? 'cash on delivery' : 'prepaid'],
      ['total', money(o.total)],
      ...(BigInt(o.refunded.amount) > 0n ? [['refunded', money(o.refunded)] as const] : []),
      ...(o.expires_at ? [['expires at', humanTime(o.expires_at)] as const] : []),
    ]),
    o.requested_items
      ? table(
          ['SKU (AS ASKED)', 'QTY'],
          o.requested_items.map((i) => [i.sku, String(i.qty)]),
        )
      : past
        ? table(
            ['SKU', 'QTY', 'UNIT PRICE', 'TOTAL', 'CANCELLED', 'SHIPPED', 'DELIVERED', 'RTO', 'RETURNED'],
            o.items.map((i) => [
              i.sku,
              String(i.qty),
              money(i.unit_price),
              money(i.total),
              String(i.cancelled),
              String(i.shipped),
              String(i.delivered),
              String(i.rto),
              String(i.returned),
            ]),
          )
        : table(
            ['SKU', 'QTY', 'UNIT PRICE', 'TOTAL'],
            o.items.map((i) => [i.sku, String(i.qty), money(i.unit_price), money(i.total)]),
          ),
    ...(o.shipments.length > 0
      ? [
          table(
            ['SHIPMENT', 'STATE', 'COURIER', 'TRACKING', 'ITEMS'],
            o.shipments.map((x) => [x.ref, x.state, x.courier, x.tracking ?? '', units(x.items)]),
          ),
        ]
      : []),
    ...(o.returns.length > 0
      ? [
          table(
            ['RETURN', 'STATE', 'ITEMS', 'REASON'],
            o.returns.map((x) => [x.ref, x.state + (x.disposition ? ` (${x.disposition})` : ''), units(x.items), x.reason]),
          ),
        ]
      : []),
  ].join('\n');
}

export function parseItem(raw: string): { sku: string; qty: string } {
  const at = raw.lastIndexOf(':');
  if (at <= 0) throw invalidInput(`--item must be <sku>:<qty>, got ${JSON.stringify(raw)}`, { item: raw });
  return { sku: raw.slice(0, at), qty: raw.slice(at + 1) };
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];

function stateOption(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!isOrderState(raw)) throw invalidInput(`--state must be one of ${orderStates.join(', ')}`, { state: raw });
  return raw;
}

export async function orderKeyArg(deps: Deps, raw: string | undefined): Promise<string> {
  return OrderKey.parse(await requireValue(deps.prompter, raw, { name: 'order', message: 'Order id or ref' }));
}

export async function write(deps: Deps, type: string, payload: Record<string, unknown>, opts: WriteOptions): Promise<void> {
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
      .option('--ref <ref>', 'your reference for the order (default: made from the idempotency key)')
      .option('--cod', 'cash on delivery: confirmed without a payment (order confirm --cod), paid at the door'),
  ).action(async (opts: WriteOptions & { buyer?: string; item?: string[]; ref?: string; cod?: boolean }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const buyer = await requireValue(deps.prompter, opts.buyer, { name: 'buyer', message: 'Buyer id' });
    const rawItems = opts.item ?? [await requireValue(deps.prompter, undefined, { name: 'item', message: 'Item as SKU:QTY' })];
    await write(
      deps,
      'order.place',
      {
        buyer,
        items: rawItems.map(parseItem),
        ...(opts.ref === undefined ? {} : { ref: opts.ref }),
        ...(opts.cod ? { payment_method: 'cod' } : {}),
      },
      opts,
    );
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
      .option('--amount <minor>', 'captured amount in minor units; must equal the order total')
      .option('--cod', 'confirm a cash-on-delivery order without a payment (its money is frozen; nothing captured)'),
  ).action(
    async (raw: string | undefined, opts: WriteOptions & { paymentRef?: string; amount?: string; cod?: boolean }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      if (opts.cod) {
        if (opts.paymentRef !== undefined || opts.amount !== undefined) {
          throw invalidInput('--cod confirms without a payment: leave out --payment-ref and --amount');
        }
        await write(deps, 'order.confirm_cod', { order: await orderKeyArg(deps, raw) }, opts);
        return;
      }
      const payload = {
        order: await orderKeyArg(deps, raw),
        payment_ref: await requireValue(deps.prompter, opts.paymentRef, { name: 'payment-ref', message: 'Payment reference' }),
        amount: await requireValue(deps.prompter, opts.amount, { name: 'amount', message: 'Amount in minor units' }),
      };
      await write(deps, 'order.confirm', payload, opts);
    },
  );

  writeOptions(
    order
      .command('ship')
      .description('send units as one shipment: all still to send, or --item <sku>:<qty> … (confirmed → partially_shipped | shipped)')
      .argument('[order]', 'order id or ref')
      .option('--item <sku:qty>', 'units to send; repeat for more (default: every unit still to send)', collect)
      .option('--tracking <t>', 'tracking number')
      .option('--shipment-ref <ref>', "the shipment's reference (default: made from the idempotency key)")
      .option('--courier <c>', 'the courier (lower-case handle; default: default); a COD delivery is owed by it'),
  ).action(
    async (
      raw: string | undefined,
      opts: WriteOptions & { item?: string[]; tracking?: string; shipmentRef?: string; courier?: string },
      command: Command,
    ) => {
      const deps = buildDeps(base, command, 'warn');
      await write(
        deps,
        'order.ship',
        {
          order: await orderKeyArg(deps, raw),
          ...(opts.item === undefined ? {} : { items: opts.item.map(parseItem) }),
          ...(opts.tracking === undefined ? {} : { tracking: opts.tracking }),
          ...(opts.shipmentRef === undefined ? {} : { shipment_ref: opts.shipmentRef }),
          ...(opts.courier === undefined ? {} : { courier: opts.courier }),
        },
        opts,
      );
    },
  );

  writeOptions(
    order
      .command('deliver')
      .description('deliver every shipment of the order on its way (shipped → delivered)')
      .argument('[order]', 'order id or ref'),
  ).action(async (raw: string | undefined, opts: WriteOptions, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    await write(deps, 'order.deliver', { order: await orderKeyArg(deps, raw) }, opts);
  });

  writeOptions(
    order
      .command('cancel')
      .description(
        'cancel units not yet dispatched (all without --item): pending → cancelled releases stock; past confirmation restocks and refunds them; needs --reason',
      )
      .argument('[order]', 'order id or ref')
      .option('--item <sku:qty>', 'units to cancel; repeat for more (default: every unit not yet dispatched)', collect),
  ).action(async (raw: string | undefined, opts: WriteOptions & { item?: string[] }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const payload = {
      order: await orderKeyArg(deps, raw),
      reason: await requireValue(deps.prompter, deps.globals.reason, { name: 'reason', message: 'Reason' }),
      ...(opts.item === undefined ? {} : { items: opts.item.map(parseItem) }),
    };
    await write(deps, 'order.cancel', payload, opts);
  });

  writeOptions(
    order
      .command('refund')
      .description(
        'refund by items (their frozen prices) or by --amount, never more than captured and not yet refunded (all of it without either); needs --reason',
      )
      .argument('[order]', 'order id or ref')
      .option('--item <sku:qty>', 'units to refund; repeat for more', collect)
      .option('--amount <minor>', 'amount in minor units (with --item: for those items, at most their value)'),
  ).action(async (raw: string | undefined, opts: WriteOptions & { item?: string[]; amount?: string }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const payload = {
      order: await orderKeyArg(deps, raw),
      reason: await requireValue(deps.prompter, deps.globals.reason, { name: 'reason', message: 'Reason' }),
      ...(opts.item === undefined ? {} : { items: opts.item.map(parseItem) }),
      ...(opts.amount === undefined ? {} : { amount: opts.amount }),
    };
    await write(deps, 'order.refund', payload, opts);
  });

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
