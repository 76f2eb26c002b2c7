// haat shipment deliver · fail · reattempt · rto · rto-receive · show
// haat return request · receive · reject · show
import type { Command } from 'commander';
import { returnJson } from '../../commands/lifecycle-handlers.ts';
import { findReturn, findShipments, type ShipmentRow, shipmentHistory, shipmentItems } from '../../db/lifecycle.ts';
import { findOrder } from '../../db/orders.ts';
import { OrderKey, ShipmentKey } from '../../domain/commands.ts';
import { HaatError, invalidInput, notFound } from '../../errors.ts';
import { humanTime } from '../../time.ts';
import { type BaseDeps, buildDeps, type Deps } from '../context.ts';
import { keyValues, table } from '../output.ts';
import { requireValue } from '../prompts.ts';
import { runWrite, type WriteOptions, writeOptions } from '../write.ts';
import { collect, type OrderJson, orderKeyArg, parseItem, renderOrder } from './orders.ts';

async function keyArg(deps: Deps, raw: string | undefined, name: 'shipment' | 'return'): Promise<string> {
  return ShipmentKey.parse(
    await requireValue(deps.prompter, raw, {
      name,
      message: name === 'shipment' ? 'Shipment id, ref or tracking number' : 'Return id or ref',
    }),
  );
}

/** Prints a write's result: an order (shipment moves), or a return beside its order. */
async function write(deps: Deps, type: string, payload: Record<string, unknown>, opts: WriteOptions): Promise<void> {
  const written = await runWrite(deps, { type, payload }, opts);
  if (!written) return;
  const result = written.result as { return?: ReturnJson; order?: OrderJson } & Partial<OrderJson>;
  deps.output.result(result, () =>
    result.return
      ? [renderReturn(result.return), ...(result.order ? ['', renderOrder(result.order)] : [])].join('\n')
      : renderOrder(result as OrderJson),
  );
}

type ReturnJson = ReturnType<typeof returnJson>;

function renderReturn(r: ReturnJson): string {
  return [
    keyValues([
      ['return', `${r.ref} (${r.id})`],
      ['state', r.state + (r.disposition ? ` (${r.disposition})` : '')],
      ['reason', r.reason],
      ['requested', humanTime(r.created_at)],
    ]),
    table(
      ['SKU', 'QTY'],
      r.items.map((i) => [i.sku, String(i.qty)]),
    ),
  ].join('\n');
}

const SHIPMENT_MOVES = [
  ['deliver', 'shipment.deliver', 'dispatched → delivered (a COD parcel: the courier now owes its cash)'],
  ['fail', 'shipment.fail', 'dispatched → delivery_failed (refused or nobody home); needs --reason'],
  ['reattempt', 'shipment.reattempt', 'delivery_failed → dispatched (sent out again)'],
  ['rto', 'shipment.rto', 'dispatched | delivery_failed → rto_initiated (coming back to the seller)'],
  ['rto-receive', 'shipment.rto_receive', 'rto_initiated → rto_received (back at the seller: its units go back on hand)'],
] as const;

export function registerLifecycleCommands(program: Command, base: BaseDeps): void {
  const shipment = program.command('shipment').description('shipments: delivered, failed at the door, sent again, returned to origin');
  for (const [name, type, description] of SHIPMENT_MOVES) {
    writeOptions(
      shipment
        .command(name)
        .description(description)
        .argument('[shipment]', 'shipment id, ref or tracking number')
        .option('--order <order>', 'the order it belongs to (when orders share a tracking number)'),
    ).action(async (raw: string | undefined, opts: WriteOptions & { order?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const reason =
        type === 'shipment.fail'
          ? await requireValue(deps.prompter, deps.globals.reason, { name: 'reason', message: 'Why did the delivery fail?' })
          : deps.globals.reason;
      await write(
        deps,
        type,
        {
          shipment: await keyArg(deps, raw, 'shipment'),
          ...(opts.order === undefined ? {} : { order: OrderKey.parse(opts.order) }),
          ...(reason === undefined ? {} : { reason }),
        },
        opts,
      );
    });
  }
  shipment
    .command('show')
    .description('one shipment, with its history')
    .argument('[shipment]', 'shipment id, ref or tracking number')
    .option('--order <order>', 'the order it belongs to (when orders share a tracking number)')
    .action(async (raw: string | undefined, opts: { order?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const key = await keyArg(deps, raw, 'shipment');
      const orderKey = opts.order === undefined ? undefined : OrderKey.parse(opts.order);
      const json = await deps.withDatabase(async (db) => {
        let orderId: string | undefined;
        if (orderKey !== undefined) {
          const order = await findOrder(db.pool, orderKey);
          if (!order) throw notFound('order', orderKey);
          orderId = order.id;
        }
        const found = await findShipments(db.pool, key, orderId);
        if (found.length > 1) {
          throw new HaatError('conflict', `${found.length} shipments have tracking number ${key}: name one by its id or ref`, {
            shipments: found.map((s) => s.ref),
          });
        }
        const s = found[0];
        if (!s) return null;
        const order = await findOrder(db.pool, s.order_id);
        return { ...shipmentJson(s), order: order?.ref ?? null, history: await shipmentHistory(db.pool, s.id) };
      });
      if (!json) throw notFound('shipment', key);
      deps.output.result(json, () =>
        [
          keyValues([
            ['shipment', `${json.ref} (${json.id})`],
            ['order', json.order ?? ''],
            ['state', json.state],
            ['courier', json.courier],
            ['tracking', json.tracking ?? ''],
          ]),
          table(
            ['SKU', 'QTY'],
            json.items.map((i) => [i.sku, String(i.qty)]),
          ),
          table(
            ['FROM', 'TO', 'AT', 'ACTOR', 'REASON'],
            json.history.map((t) => [t.from_state ?? '(new)', t.to_state, humanTime(t.at), t.actor, t.reason ?? '']),
          ),
        ].join('\n'),
      );
    });

  const ret = program.command('return').description('returns: requested, received (restocked or written off), rejected');
  writeOptions(
    ret
      .command('request')
      .description('the buyer sends delivered units back: --item <sku>:<qty> …; needs --reason')
      .argument('[order]', 'order id or ref')
      .option('--item <sku:qty>', 'units coming back; repeat for more', collect)
      .option('--return-ref <ref>', "the return's reference (default: made from the idempotency key)"),
  ).action(async (raw: string | undefined, opts: WriteOptions & { item?: string[]; returnRef?: string }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const order = await orderKeyArg(deps, raw);
    const items = opts.item ?? [await requireValue(deps.prompter, undefined, { name: 'item', message: 'Item as SKU:QTY' })];
    const reason = await requireValue(deps.prompter, deps.globals.reason, { name: 'reason', message: 'Why is it coming back?' });
    await write(
      deps,
      'return.request',
      { order, items: items.map(parseItem), reason, ...(opts.returnRef === undefined ? {} : { ref: opts.returnRef }) },
      opts,
    );
  });
  writeOptions(
    ret
      .command('receive')
      .description('the units are back at the seller: --restock (back on hand) or --write-off; needs --reason')
      .argument('[return]', 'return id or ref')
      .option('--restock', 'put the units back on hand (with a stock movement)')
      .option('--write-off', 'record them, not restocked (damaged, unsellable)'),
  ).action(async (raw: string | undefined, opts: WriteOptions & { restock?: boolean; writeOff?: boolean }, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    if (Boolean(opts.restock) === Boolean(opts.writeOff))
      throw invalidInput('return receive needs exactly one of --restock or --write-off');
    const key = await keyArg(deps, raw, 'return');
    const reason = await requireValue(deps.prompter, deps.globals.reason, { name: 'reason', message: 'Reason' });
    await write(deps, 'return.receive', { return: key, disposition: opts.restock ? 'restock' : 'write_off', reason }, opts);
  });
  writeOptions(
    ret.command('reject').description('refuse a requested return; needs --reason').argument('[return]', 'return id or ref'),
  ).action(async (raw: string | undefined, opts: WriteOptions, command: Command) => {
    const deps = buildDeps(base, command, 'warn');
    const key = await keyArg(deps, raw, 'return');
    const reason = await requireValue(deps.prompter, deps.globals.reason, { name: 'reason', message: 'Reason' });
    await write(deps, 'return.reject', { return: key, reason }, opts);
  });
  ret
    .command('show')
    .description('one return')
    .argument('[return]', 'return id or ref')
    .action(async (raw: string | undefined, _opts: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const key = await keyArg(deps, raw, 'return');
      const json = await deps.withDatabase(async (db) => {
        const r = await findReturn(db.pool, key);
        if (!r) return null;
        const order = await findOrder(db.pool, r.order_id);
        return { ...returnJson(r), order: order?.ref ?? null };
      });
      if (!json) throw notFound('return', key);
      deps.output.result(json, () => renderReturn(json));
    });
}

function shipmentJson(s: ShipmentRow) {
  return {
    id: s.id,
    ref: s.ref,
    tracking: s.tracking,
    courier: s.courier,
    state: s.state,
    items: shipmentItems(s),
    created_at: s.created_at,
  };
}
