// Order commands: placement (all items reserved, or the order recorded rejected), and every move of
// the state machine with the effect bound to it, in the command's one transaction:
// confirm finalises the reservations; cancel from pending releases them; cancel from confirmed
// restocks; ship, deliver and refund move the state. Each locks the order row first.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { findSku } from '../db/catalog.ts';
import { type CommandRef, lockStock } from '../db/inventory.ts';
import { captureOrder, findPayment, recordPayment, type UnappliedReason } from '../db/ledger.ts';
import {
  closeOrderReservations,
  findOrder,
  insertUnpricedRejection,
  isOrderId,
  itemsOfOrders,
  lockOrder,
  moveOrder,
  type OrderItemRow,
  OrderRow,
  orderColumns as orderColumnsFragment,
  orderItems,
} from '../db/orders.ts';
import type { DatabaseTransaction, Queryable } from '../db/pool.ts';
import { readSetting } from '../db/settings.ts';
import { sql } from '../db/sql.ts';
import type { CommandOf, Outcome, OutcomeError } from '../domain/commands.ts';
import { decideReservation, normaliseLines, type ReservationLine, type Shortage } from '../domain/inventory/decide-reservation.ts';
import { type Currency, MAX_ORDER_TOTAL, moneyJson, type SellerSplit, splitBySeller } from '../domain/money.ts';
import { snapshotHash } from '../domain/snapshot.ts';
import { InvariantError } from '../errors.ts';
import { fail, refuse } from './outcome.ts';

export type OrderContext = { readonly command: CommandRef; readonly actor: string; readonly final?: boolean };

const int = z
  .string()
  .regex(/^-?[0-9]+$/)
  .transform((v) => BigInt(v));
const LifecycleItems = z.array(z.object({ sku: z.string(), qty: int }));
/** order_lifecycle() (sql/committed/000015.sql): what happened to the order past pending. */
export const Lifecycle = z.object({
  lines: z.array(z.object({ sku: z.string(), cancelled: int, shipped: int, delivered: int, rto: int, returned: int })),
  refunded: int,
  shipments: z.array(
    z.object({
      id: z.string(),
      ref: z.string(),
      tracking: z.string().nullable(),
      courier: z.string(),
      state: z.string(),
      created_at: z.string(),
      items: LifecycleItems,
    }),
  ),
  returns: z.array(
    z.object({
      id: z.string(),
      ref: z.string(),
      state: z.string(),
      reason: z.string(),
      disposition: z.string().nullable(),
      created_at: z.string(),
      items: LifecycleItems,
    }),
  ),
});

const NO_COUNTS = { cancelled: 0n, shipped: 0n, delivered: 0n, rto: 0n, returned: 0n };
const isoTime = (t: string) => new Date(t).toISOString();

export function orderJson(order: OrderRow, items: readonly OrderItemRow[]) {
  const currency = order.currency as Currency;
  const life = order.lifecycle === null ? null : Lifecycle.parse(JSON.parse(order.lifecycle));
  const counts = new Map(life?.lines.map(({ sku, ...c }) => [sku, c]) ?? []);
  return {
    id: order.id,
    ref: order.ref,
    state: order.state,
    buyer: order.buyer,
    currency,
    payment_method: order.payment_method,
    items: items.map((i) => ({
      sku: i.sku,
      qty: i.qty,
      unit_price: moneyJson({ amount: i.unit_price, currency }),
      total: moneyJson({ amount: i.total, currency }),
      ...(counts.get(i.sku) ?? NO_COUNTS),
    })),
    total: moneyJson({ amount: order.total_amount, currency }),
    refunded: moneyJson({ amount: life?.refunded ?? 0n, currency }),
    expires_at: order.state === 'pending' ? order.expires_at : null,
    shipments: (life?.shipments ?? []).map((s) => ({
      id: s.id,
      ref: s.ref,
      tracking: s.tracking,
      courier: s.courier,
      state: s.state,
      items: s.items,
      created_at: isoTime(s.created_at),
    })),
    returns: (life?.returns ?? []).map((r) => ({
      id: r.id,
      ref: r.ref,
      state: r.state,
      items: r.items,
      reason: r.reason,
      disposition: r.disposition,
      created_at: isoTime(r.created_at),
    })),
    ...(order.reject_reason ? { reject_reason: order.reject_reason } : {}),
    ...(order.requested_items ? { requested_items: requestedItems(order.requested_items) } : {}),
    ...(order.payment_ref ? { payment_ref: order.payment_ref } : {}),
    ...(order.tracking ? { tracking: order.tracking } : {}),
  };
}

/** The lines a rejected, unpriced order asked for, quantities as integers. */
function requestedItems(text: string): { sku: string; qty: bigint }[] {
  return (JSON.parse(text) as { sku: string; qty: string }[]).map((l) => ({ sku: l.sku, qty: BigInt(l.qty) }));
}

async function orderOutcome(db: Queryable, order: OrderRow): Promise<Outcome> {
  return { ok: true, result: orderJson(order, await orderItems(db, order.id)) };
}

/** A ref made from the idempotency key, so a replayed placement names the same order. */
function refFor(command: CommandRef): string {
  const seed = command ? `${command.scope}:${command.key}` : `${Date.now()}:${Math.random()}`;
  return `O-${createHash('sha256').update(seed).digest('hex').slice(0, 12).toUpperCase()}`;
}

type PlacePayload = CommandOf<'order.place'>['payload'];

type PricedSku = { readonly code: string; readonly seller: string; readonly price_amount: bigint; readonly currency: string };

/**
 * Whether a placement can be priced, from its normalised lines and the catalog rows of its SKUs:
 * every SKU known, one currency, a total within the maximum. Pure; precheck and apply share it.
 */
function pricingRefusal(
  p: PlacePayload,
  lines: readonly ReservationLine[],
  skuOf: (code: string) => PricedSku | undefined,
): OutcomeError | null {
  const skus = lines.map((l) => skuOf(l.sku));
  const missing = lines.filter((_, i) => !skus[i]).map((l) => l.sku);
  if (missing.length) return refuse('not_found', `SKU not found: ${missing.join(', ')}`, { skus: missing });
  const currencies = [...new Set([...(p.currency ? [p.currency] : []), ...skus.map((s) => s?.currency)])];
  if (currencies.length > 1)
    return refuse('currency_mismatch', `an order is single-currency; these items are in ${currencies.join(', ')}`, { currencies });
  const total = lines.reduce((sum, l, i) => sum + (skus[i]?.price_amount ?? 0n) * l.qty, 0n);
  if (total > MAX_ORDER_TOTAL)
    return refuse('invalid_input', `the order total ${total} is over the maximum ${MAX_ORDER_TOTAL} minor units`, {
      total,
      max: MAX_ORDER_TOTAL,
    });
  return null;
}

const refTaken = (ref: string) => refuse('conflict', `order ref ${ref} is already taken`, { ref });

export async function precheckPlace(db: Queryable, p: PlacePayload): Promise<OutcomeError | null> {
  const lines = normaliseLines(p.items.map((i) => ({ sku: i.sku, qty: BigInt(i.qty) })));
  const skus = new Map((await Promise.all(lines.map((l) => findSku(db, l.sku)))).flatMap((s) => (s ? [[s.code, s] as const] : [])));
  const refusal = pricingRefusal(p, lines, (code) => skus.get(code));
  if (refusal) return refusal;
  if (p.ref && (await findOrder(db, p.ref))) return refTaken(p.ref);
  return null;
}

export async function applyPlace(tx: DatabaseTransaction, p: PlacePayload, context: OrderContext): Promise<Outcome> {
  const [outcome] = await applyPlaces(tx, [{ payload: p, context }]);
  if (!outcome) throw new InvariantError('a placement without an outcome');
  return outcome;
}

export type Placement = { readonly payload: PlacePayload; readonly context: OrderContext };

type Draft = {
  readonly index: number;
  readonly ref: string;
  readonly buyer: string;
  readonly currency: string;
  readonly state: 'pending' | 'rejected';
  readonly paymentMethod: 'prepaid' | 'cod';
  readonly items: readonly { sku: string; qty: bigint; unitPrice: bigint }[];
  readonly splits: readonly SellerSplit[];
  readonly total: bigint;
  readonly snapshotHash: string;
  readonly shortages: readonly Shortage[];
  readonly context: OrderContext;
};

/**
 * Placements, many at once, in arrival order: the one implementation of order.place (applyPlace is
 * a batch of one). Under the transaction, with the SKU rows locked once for the whole batch, each
 * placement is decided in turn against the stock the earlier ones left — all of its lines reserved,
 * or the order recorded rejected (insufficient_stock) — and then every order, item, seller split,
 * transition, reservation and movement of the batch is written set-based, a fixed number of
 * statements whatever its size. Prices are the catalog's, read in the transaction; a client never
 * supplies one. A placement that cannot be priced is rejected by rejectUnpriced, as it comes.
 */
export async function applyPlaces(tx: DatabaseTransaction, placements: readonly Placement[]): Promise<Outcome[]> {
  const outcomes: (Outcome | null)[] = placements.map(() => null);
  const linesOf = placements.map((x) => normaliseLines(x.payload.items.map((i) => ({ sku: i.sku, qty: BigInt(i.qty) }))));
  const codes = [...new Set(linesOf.flat().map((l) => l.sku))].sort();
  const catalog = new Map(
    (
      await tx.any(sql.type(z.object({ code: z.string(), seller: z.string(), price_amount: z.bigint(), currency: z.string() }))`
        select code, seller, price_amount, currency from skus where code = any(${sql.array(codes, 'text')})`)
    ).map((r) => [r.code, r]),
  );
  const asked = [...new Set(placements.flatMap((x) => (x.payload.ref ? [x.payload.ref] : [])))];
  // A ref is taken by an order with that ref, or by one whose id it is (as findOrder reads a key).
  const uuids = asked.filter(isOrderId);
  const taken = new Set(
    asked.length === 0
      ? []
      : await tx.anyFirst(sql.type(z.object({ key: z.string() }))`
          select ref as key from orders where ref = any(${sql.array(asked, 'text')})
          union all
          select id::text from orders where id = any(${sql.array(uuids, 'uuid')})`),
  );
  // The stock as it stands under the lock; each accepted placement takes its share before the next.
  const stock = new Map(
    (
      await lockStock(
        tx,
        codes.filter((c) => catalog.has(c)),
      )
    ).map((r) => [r.sku, { sku: r.sku, onHand: r.on_hand, reserved: r.reserved }]),
  );
  const { ttlSeconds, commissionBps } = await placementSettings(tx);
  const drafts: Draft[] = [];
  for (const [index, { payload: p, context }] of placements.entries()) {
    const lines = linesOf[index] ?? [];
    const refusal = pricingRefusal(p, lines, (code) => catalog.get(code)) ?? (p.ref && taken.has(p.ref) ? refTaken(p.ref) : null);
    if (refusal) {
      outcomes[index] = await rejectUnpriced(tx, p, refusal, context);
      // An order it recorded holds the ref from now on.
      if (!outcomes[index]?.ok && p.ref) taken.add(p.ref);
      continue;
    }
    const decision = decideReservation(
      lines,
      lines.flatMap((l) => {
        const row = stock.get(l.sku);
        return row ? [row] : [];
      }),
    );
    if (!decision.ok && decision.code === 'not_found') {
      outcomes[index] = fail(refuse('not_found', `SKU not found: ${decision.missing.join(', ')}`, { skus: decision.missing }));
      continue;
    }
    if (decision.ok) {
      for (const l of decision.lines) {
        const row = stock.get(l.sku);
        if (row) stock.set(l.sku, { ...row, reserved: row.reserved + l.qty });
      }
    }
    const currency = catalog.get(lines[0]?.sku ?? '')?.currency ?? 'INR';
    const items = lines.map((l) => ({ sku: l.sku, qty: l.qty, unitPrice: catalog.get(l.sku)?.price_amount ?? 0n }));
    const splits = splitBySeller(
      items.map((i) => ({ seller: catalog.get(i.sku)?.seller ?? '', total: i.unitPrice * i.qty })),
      commissionBps,
    );
    const total = items.reduce((sum, i) => sum + i.unitPrice * i.qty, 0n);
    const ref = p.ref ?? refFor(context.command);
    if (p.ref) taken.add(p.ref);
    drafts.push({
      index,
      ref,
      buyer: p.buyer,
      currency,
      state: decision.ok ? 'pending' : 'rejected',
      paymentMethod: p.payment_method ?? 'prepaid',
      items,
      splits,
      total,
      snapshotHash: snapshotHash({
        currency,
        total,
        commissionBps,
        splits,
        items: items.map((i) => ({ ...i, total: i.unitPrice * i.qty })),
      }),
      shortages: decision.ok ? [] : decision.shortages,
      context,
    });
  }
  if (drafts.length > 0) {
    const written = await insertOrders(tx, drafts, { ttlSeconds, commissionBps });
    for (const draft of drafts) {
      const order = written.get(draft.ref);
      if (!order) throw new InvariantError(`order ${draft.ref} vanished after its insert`);
      const json = orderJson(order.row, order.items);
      outcomes[draft.index] =
        draft.state === 'pending'
          ? { ok: true, result: json }
          : fail(
              refuse(
                'insufficient_stock',
                `not enough stock for ${draft.shortages.map((x) => x.sku).join(', ')}; order ${draft.ref} recorded as rejected`,
                { order: json, shortages: draft.shortages },
              ),
            );
    }
  }
  return outcomes.map((o) => {
    if (!o) throw new InvariantError('a placement of the batch has no outcome');
    return o;
  });
}

/**
 * Writes the batch's priced orders: orders, items, seller splits and first transitions, then the
 * reservations of the pending ones with their movements and the SKUs' reserved — set-based, one
 * statement each — and reads them back as every reader sees them.
 */
async function insertOrders(
  tx: DatabaseTransaction,
  drafts: readonly Draft[],
  settings: { ttlSeconds: number; commissionBps: number },
): Promise<Map<string, { row: OrderRow; items: readonly OrderItemRow[] }>> {
  const text = (f: (d: Draft) => string | null) => sql.array(drafts.map(f) as string[], 'text');
  const ids = new Map(
    (
      await tx.any(sql.type(z.object({ id: z.string(), ref: z.string() }))`
        insert into orders (ref, buyer, currency, state, total_amount, reject_reason, commission_bps, snapshot_hash, expires_at, payment_method)
        select t.ref, t.buyer, t.currency, t.state, t.total, t.reason, ${settings.commissionBps}, t.hash,
               case when t.state = 'pending' then now() + make_interval(secs => ${settings.ttlSeconds}) end, t.method
        from unnest(${text((d) => d.ref)}, ${text((d) => d.buyer)}, ${text((d) => d.currency)}, ${text((d) => d.state)},
                    ${sql.array(
                      drafts.map((d) => d.total.toString()),
                      'int8',
                    )}, ${text((d) => (d.state === 'rejected' ? 'insufficient_stock' : null))}, ${text((d) => d.snapshotHash)},
                    ${text((d) => d.paymentMethod)})
             with ordinality as t(ref, buyer, currency, state, total, reason, hash, method, n)
        order by t.n
        returning id::text as id, ref`)
    ).map((r) => [r.ref, r.id]),
  );
  const idOf = (d: Draft) => {
    const id = ids.get(d.ref);
    if (!id) throw new InvariantError(`order ${d.ref} has no id after its insert`);
    return id;
  };
  const lines = drafts.flatMap((d) => d.items.map((i) => ({ id: idOf(d), ...i })));
  await tx.query(sql.unsafe`
    insert into order_items (order_id, sku, qty, unit_price, total)
    select i.order_id, i.sku, i.qty, i.unit_price, i.qty * i.unit_price
    from unnest(${sql.array(
      lines.map((l) => l.id),
      'uuid',
    )}, ${sql.array(
      lines.map((l) => l.sku),
      'text',
    )}, ${sql.array(
      lines.map((l) => l.qty.toString()),
      'int8',
    )}, ${sql.array(
      lines.map((l) => l.unitPrice.toString()),
      'int8',
    )}) as i(order_id, sku, qty, unit_price)`);
  const splits = drafts.flatMap((d) => d.splits.map((x) => ({ id: idOf(d), ...x })));
  await tx.query(sql.unsafe`
    insert into order_seller_splits (order_id, seller, subtotal, commission, payout)
    select s.order_id, s.seller, s.subtotal, s.commission, s.payout
    from unnest(${sql.array(
      splits.map((x) => x.id),
      'uuid',
    )}, ${sql.array(
      splits.map((x) => x.seller),
      'text',
    )}, ${sql.array(
      splits.map((x) => x.subtotal.toString()),
      'int8',
    )}, ${sql.array(
      splits.map((x) => x.commission.toString()),
      'int8',
    )}, ${sql.array(
      splits.map((x) => x.payout.toString()),
      'int8',
    )}) as s(order_id, seller, subtotal, commission, payout)`);
  await tx.query(sql.unsafe`
    insert into order_transitions (order_id, from_state, to_state, actor, reason, command_scope, command_key)
    select t.order_id, null, t.state, t.actor, t.reason, t.scope, t.key
    from unnest(${sql.array(drafts.map(idOf), 'uuid')}, ${text((d) => d.state)}, ${text((d) => d.context.actor)},
                ${text((d) => (d.state === 'rejected' ? 'insufficient_stock' : null))}, ${text((d) => d.context.command?.scope ?? null)},
                ${text((d) => d.context.command?.key ?? null)}) with ordinality as t(order_id, state, actor, reason, scope, key, n)
    order by t.n`);
  const held = drafts
    .filter((d) => d.state === 'pending')
    .flatMap((d) => d.items.map((i) => ({ holder: idOf(d), command: d.context.command, ...i })));
  if (held.length > 0) {
    const col = (f: (h: (typeof held)[number]) => string | null) => sql.array(held.map(f) as string[], 'text');
    await tx.query(sql.unsafe`
      with l as (
        select * from unnest(${col((h) => h.holder)}, ${col((h) => h.sku)}, ${sql.array(
          held.map((h) => h.qty.toString()),
          'int8',
        )}, ${col((h) => h.command?.scope ?? null)}, ${col((h) => h.command?.key ?? null)}) as l(holder, sku, qty, scope, key)
      ), created as (
        insert into reservations (holder, sku, qty) select holder, sku, qty from l returning id, holder, sku, qty
      ), moved as (
        insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reservation_id, command_scope, command_key)
        select c.sku, 'reserve', 0, c.qty, c.id, l.scope, l.key from created c join l on l.holder = c.holder and l.sku = c.sku
      )
      update inventory i set reserved = i.reserved + t.qty, updated_at = now()
      from (select sku, sum(qty)::int8 as qty from l group by sku) t
      where i.sku = t.sku`);
  }
  const orderIds = drafts.map(idOf);
  const rows = await tx.any(sql.type(OrderRow)`select ${orderColumnsFragment} from orders where id = any(${sql.array(orderIds, 'uuid')})`);
  const items = await itemsOfOrders(tx, orderIds);
  return new Map(rows.map((row) => [row.ref, { row, items: items.get(row.id) ?? [] }]));
}

/**
 * The settings a placement freezes, read once per transaction: every placement of a worker's batch
 * (applyCommands) shares one read.
 */
const settingsRead = new WeakMap<DatabaseTransaction, Promise<{ ttlSeconds: number; commissionBps: number }>>();
function placementSettings(tx: DatabaseTransaction) {
  let read = settingsRead.get(tx);
  if (!read) {
    read = (async () => ({
      ttlSeconds: await readSetting(tx, 'reservation_ttl_seconds'),
      commissionBps: await readSetting(tx, 'commission_bps'),
    }))();
    settingsRead.set(tx, read);
  }
  return read;
}

/** Why a placement that could not be priced is rejected; any other refusal leaves no order. */
const UNPRICED_REJECTIONS = {
  not_found: 'unknown_sku',
  currency_mismatch: 'currency_mismatch',
  invalid_input: 'invalid_order',
} as const;

/**
 * A placement refused before anything could be priced is still an order an operator can find:
 * recorded rejected with its reason and the lines as asked. Only a ref that is already taken
 * leaves no new order (the outcome is `conflict`).
 */
async function rejectUnpriced(tx: DatabaseTransaction, p: PlacePayload, refusal: OutcomeError, context: OrderContext): Promise<Outcome> {
  const reason = Object.hasOwn(UNPRICED_REJECTIONS, refusal.code)
    ? UNPRICED_REJECTIONS[refusal.code as keyof typeof UNPRICED_REJECTIONS]
    : undefined;
  if (reason === undefined) return fail(refusal);
  const ref = p.ref ?? refFor(context.command);
  if (await findOrder(tx, ref)) return fail(refuse('conflict', `order ref ${ref} is already taken`, { ref }));
  const lines = p.items.map((i) => ({ sku: i.sku, qty: BigInt(i.qty) }));
  const known = await tx.maybeOneFirst(sql.type(z.object({ currency: z.string() }))`
    select currency from skus where code = any(${sql.array(
      lines.map((l) => l.sku),
      'text',
    )}) order by code limit 1`);
  const currency = p.currency ?? known ?? 'INR';
  const rejected = await insertUnpricedRejection(
    tx,
    { ref, buyer: p.buyer, currency, rejectReason: reason, paymentMethod: p.payment_method ?? 'prepaid' },
    lines,
    context,
  );
  return fail(
    refuse(refusal.code, `${refusal.message}; order ${ref} recorded as rejected (${reason})`, {
      ...refusal.details,
      reject_reason: reason,
      order: orderJson(rejected, []),
    }),
  );
}

/**
 * A confirmation is accepted whenever the order exists and the payment_ref is new: a payment that
 * cannot be applied is stored as unapplied when applied, never refused unseen.
 */
export async function precheckConfirm(db: Queryable, p: CommandOf<'order.confirm'>['payload']): Promise<OutcomeError | null> {
  if (!(await findOrder(db, p.order))) return refuse('not_found', `order not found: ${p.order}`, { order: p.order });
  const earlier = await findPayment(db, p.payment_ref);
  return earlier ? refuse('conflict', `payment ${p.payment_ref} was already recorded (${earlier.state})`, { payment: earlier }) : null;
}

/**
 * A captured payment for an order. Applied only when the order is pending (before its deadline,
 * database clock) and amount and currency equal its frozen total; otherwise kept as an unapplied
 * payment with its reason, and the order does not change. One payment_ref is recorded once.
 */
export async function applyConfirm(
  tx: DatabaseTransaction,
  p: CommandOf<'order.confirm'>['payload'],
  context: OrderContext,
): Promise<Outcome> {
  const earlier = await findPayment(tx, p.payment_ref);
  if (earlier) return fail(refuse('conflict', `payment ${p.payment_ref} was already recorded (${earlier.state})`, { payment: earlier }));
  const order = await lockOrder(tx, p.order);
  if (!order) {
    // Never dropped: once the wait for an early payment is over, it is kept as unapplied.
    if (context.final !== false) {
      await recordPayment(tx, {
        paymentRef: p.payment_ref,
        orderRef: p.order,
        orderId: null,
        amount: BigInt(p.amount),
        currency: p.currency ?? 'INR',
        reason: 'order_not_found',
        command: context.command,
      });
    }
    return fail(refuse('not_found', `order not found: ${p.order}`, { order: p.order }));
  }
  const amount = BigInt(p.amount);
  const currency = p.currency ?? order.currency;
  const due =
    order.state === 'pending' &&
    (await tx.oneFirst(sql.type(z.object({ due: z.boolean() }))`select ${order.expires_at}::timestamptz <= now() as due`));
  const reason: UnappliedReason | null =
    order.state !== 'pending' || due
      ? 'order_not_pending'
      : currency !== order.currency
        ? 'currency_mismatch'
        : amount !== order.total_amount
          ? 'amount_mismatch'
          : null;
  const payment = await recordPayment(tx, {
    paymentRef: p.payment_ref,
    orderRef: order.ref,
    orderId: order.id,
    amount,
    currency,
    reason,
    command: context.command,
  });
  if (reason !== null) {
    const code = reason === 'order_not_pending' ? 'transition_not_allowed' : reason;
    const why =
      reason === 'order_not_pending'
        ? due
          ? `its reservation expired at ${order.expires_at}`
          : `it is ${order.state}`
        : reason === 'currency_mismatch'
          ? `it is in ${order.currency}, the payment in ${currency}`
          : `it totals ${order.total_amount}, the payment is ${amount}`;
    return fail(
      refuse(code, `payment ${p.payment_ref} kept as unapplied: order ${order.ref} ${why}`, {
        order: order.ref,
        payment,
        expected: { amount: order.total_amount, currency: order.currency },
      }),
    );
  }
  await closeOrderReservations(tx, order.id, 'finalized', context.command);
  const moved = await moveOrder(tx, order, 'confirmed', {
    actor: context.actor,
    reason: `payment ${p.payment_ref}`,
    command: context.command,
    set: { payment_ref: p.payment_ref },
  });
  await captureOrder(tx, { id: order.id, currency: order.currency, total: order.total_amount }, context.command);
  return orderOutcome(tx, moved);
}
