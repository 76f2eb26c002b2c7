// The order lifecycle's commands (docs/lifecycle.md): shipping some or all units, delivering, failed
// deliveries and return to origin, partial cancellation, returns, refunds by items or amount, and
// cash on delivery. Each command is planned by one function on the reads it is given — an unlocked
// read at the boundary (precheck: a refused command stores nothing), then again under the order's
// row lock in the command's transaction (apply: the authority) — and then written: counts, stock
// movements, shipment and return history, money per seller with its balanced ledger entry, and the
// order's state as it follows from its lines (deriveOrderState), each with its outbound event.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { CommandRef } from '../db/inventory.ts';
import { postEntry } from '../db/ledger.ts';
import {
  addToLines,
  findReturn,
  findShipments,
  insertRefund,
  insertReturn,
  insertShipment,
  linesOf,
  moveReturn,
  moveShipment,
  type ReturnRow,
  restockUnits,
  returnItems,
  type ShipmentRow,
  sellerMoneyOf,
  shipmentItems,
  shipmentsOf,
  unitsAwaitingReturn,
  unitsRefunded,
  writeSellerMoney,
} from '../db/lifecycle.ts';
import { closeOrderReservations, findOrder, lockOrder, moveOrder, type OrderRow, orderItems } from '../db/orders.ts';
import type { DatabaseTransaction, Queryable } from '../db/pool.ts';
import { sql } from '../db/sql.ts';
import type { CommandOf, Outcome, OutcomeError } from '../domain/commands.ts';
import { normaliseLines } from '../domain/inventory/decide-reservation.ts';
import {
  decideRefund,
  deriveOrderState,
  type Line,
  type Pick,
  pickUnits,
  type SellerMoney,
  settle,
  stateAfterRefund,
  unsent,
  valueBySeller,
} from '../domain/orders/lifecycle.ts';
import { returnMachine } from '../domain/orders/returns.ts';
import { type ShipmentMove, type ShipmentState, shipmentMachine, shipmentMoves } from '../domain/orders/shipments.ts';
import { decideTransition, isOrderState, type OrderState } from '../domain/orders/states.ts';
import { type OrderContext, orderJson } from './order-handlers.ts';
import { fail, refuse } from './outcome.ts';

type Planned<T> = { readonly error: OutcomeError } | ({ readonly error?: undefined } & T);

const stateOf = (order: OrderRow): OrderState => {
  if (!isOrderState(order.state)) throw new Error(`order ${order.id} has unknown state ${order.state}`);
  return order.state;
};

const orderNotFound = (key: string) => refuse('not_found', `order not found: ${key}`, { order: key });

/** Refuses a move the order's machine does not allow, in its words; null when it does. */
function moveRefusal(order: OrderRow, to: OrderState): OutcomeError | null {
  const decision = decideTransition(stateOf(order), to);
  return decision.ok ? null : refuse(decision.code, `order ${order.ref}: ${decision.message}`, { order: order.ref, ...decision.details });
}

const fromDomain = (order: OrderRow, r: { code: OutcomeError['code']; message: string; details: Record<string, unknown> }) =>
  refuse(r.code, `order ${order.ref}: ${r.message}`, { order: order.ref, ...r.details });

/** A cash-on-delivery order the courier collects for (one paid online anyway is prepaid in effect). */
const collectsCash = (order: OrderRow) => order.payment_method === 'cod' && order.payment_ref === null;

/** A ref made from the command's key, so a replayed command names the same shipment or return. */
function refFrom(prefix: string, command: CommandRef): string {
  const seed = command ? `${command.scope}:${command.key}` : `${Date.now()}:${Math.random()}`;
  return `${prefix}-${createHash('sha256').update(seed).digest('hex').slice(0, 12).toUpperCase()}`;
}

async function refTaken(db: Queryable, table: 'shipments' | 'returns', ref: string): Promise<boolean> {
  const found =
    table === 'shipments'
      ? await db.maybeOneFirst(sql.type(z.object({ one: z.number() }))`select 1 as one from shipments where ref = ${ref}`)
      : await db.maybeOneFirst(sql.type(z.object({ one: z.number() }))`select 1 as one from returns where ref = ${ref}`);
  return found !== null;
}

const asPicks = (items: readonly { sku: string; qty: string }[] | undefined): Pick[] | undefined =>
  items?.map((i) => ({ sku: i.sku, qty: BigInt(i.qty) }));

async function orderOutcome(db: Queryable, orderId: string): Promise<Outcome> {
  const order = await findOrder(db, orderId);
  if (!order) throw new Error(`order ${orderId} vanished in its own transaction`);
  return { ok: true, result: orderJson(order, await orderItems(db, order.id)) };
}

/**
 * Moves the order to the state its lines and shipments now imply (when it differs), with its
 * transition row; `refund` also lets a fully refunded order become refunded.
 */
async function settleState(
  tx: DatabaseTransaction,
  orderId: string,
  meta: { actor: string; reason: string | null; command: CommandRef },
): Promise<void> {
  const order = await findOrder(tx, orderId);
  if (!order) throw new Error(`order ${orderId} vanished in its own transaction`);
  const lines = await linesOf(tx, orderId);
  const shipments = (await shipmentsOf(tx, orderId)).map((s) => s.state as ShipmentState);
  const derived = deriveOrderState(stateOf(order), lines, shipments);
  // A delivered or returned order whose captured money is all refunded is refunded — also when the
  // refund came first (a parcel refunded in transit, then delivered): two moves, each recorded.
  const next = stateAfterRefund(derived, await sellerMoneyOf(tx, orderId));
  let current = order;
  for (const step of [derived, next]) {
    if (step === current.state) continue;
    current = await moveOrder(tx, current, step, { actor: meta.actor, reason: meta.reason, command: meta.command });
  }
}

/**
 * Money per seller changes (captured more, refunded more) with its one balanced journal entry:
 * the cash side (psp_clearing or cod_receivable:<courier>) plus each seller's payable and the
 * commission, moved so that payable = (captured − refunded) − commission kept, by the rule.
 */
async function moveMoney(
  tx: DatabaseTransaction,
  order: OrderRow,
  money: readonly SellerMoney[],
  change: ReadonlyMap<string, { captured?: bigint; refunded?: bigint }>,
  entry: { kind: 'capture' | 'cancellation' | 'refund' | 'delivery'; cashAccount: string; command: CommandRef },
) {
  const settlement = settle(money, change, order.commission_bps);
  const cash = [...change.values()].reduce((s, c) => s + (c.captured ?? 0n) - (c.refunded ?? 0n), 0n);
  await writeSellerMoney(tx, order.id, settlement.next);
  await postEntry(tx, {
    orderId: order.id,
    kind: entry.kind,
    currency: order.currency,
    command: entry.command,
    postings: [{ account: entry.cashAccount, amount: cash }, ...settlement.postings],
  });
  return settlement;
}

/** A refund's money and record: refund.issued is written with it. */
async function issueRefund(
  tx: DatabaseTransaction,
  order: OrderRow,
  money: readonly SellerMoney[],
  bySeller: ReadonlyMap<string, bigint>,
  refund: { kind: 'refund' | 'cancellation'; reason: string; items: readonly Pick[]; command: CommandRef },
): Promise<void> {
  const change = new Map([...bySeller].map(([seller, amount]) => [seller, { refunded: amount }]));
  const settlement = await moveMoney(tx, order, money, change, { kind: refund.kind, cashAccount: 'psp_clearing', command: refund.command });
  const amount = [...bySeller.values()].reduce((a, b) => a + b, 0n);
  await insertRefund(
    tx,
    {
      orderId: order.id,
      kind: refund.kind,
      amount,
      currency: order.currency,
      reason: refund.reason,
      items: refund.items,
      allocations: [...bySeller].map(([seller, a]) => ({
        seller,
        amount: a,
        commissionReversed: settlement.commissionChange.get(seller) ?? 0n,
      })),
    },
    refund.command,
  );
}

// ---- order.confirm_cod ------------------------------------------------------------------------

async function planConfirmCod(db: Queryable, order: OrderRow | null, key: string): Promise<Planned<{ order: OrderRow }>> {
  if (!order) return { error: orderNotFound(key) };
  const refusal = moveRefusal(order, 'confirmed');
  if (refusal) return { error: refusal };
  if (order.payment_method !== 'cod') {
    return {
      error: refuse('conflict', `order ${order.ref} is prepaid: it is confirmed by its payment, not as cash on delivery`, {
        order: order.ref,
        payment_method: order.payment_method,
      }),
    };
  }
  const due = await db.oneFirst(sql.type(z.object({ due: z.boolean() }))`select ${order.expires_at}::timestamptz <= now() as due`);
  if (due) {
    return {
      error: refuse('transition_not_allowed', `order ${order.ref}: its reservation expired at ${order.expires_at}`, {
        order: order.ref,
        from: order.state,
        to: 'confirmed',
      }),
    };
  }
  return { order };
}

export async function precheckConfirmCod(db: Queryable, p: CommandOf<'order.confirm_cod'>['payload']) {
  return (await planConfirmCod(db, await findOrder(db, p.order), p.order)).error ?? null;
}

export async function applyConfirmCod(tx: DatabaseTransaction, p: CommandOf<'order.confirm_cod'>['payload'], context: OrderContext) {
  const plan = await planConfirmCod(tx, await lockOrder(tx, p.order), p.order);
  if (plan.error) return fail(plan.error);
  await closeOrderReservations(tx, plan.order.id, 'finalized', context.command);
  await moveOrder(tx, plan.order, 'confirmed', { actor: context.actor, reason: 'cash on delivery', command: context.command });
  return orderOutcome(tx, plan.order.id);
}

// ---- order.ship -------------------------------------------------------------------------------

type ShipPayload = CommandOf<'order.ship'>['payload'];

async function planShip(
  db: Queryable,
  order: OrderRow | null,
  p: ShipPayload,
): Promise<Planned<{ order: OrderRow; picks: readonly Pick[]; reattempt?: ShipmentRow }>> {
  if (!order) return { error: orderNotFound(p.order) };
  // A parcel dispatched again with the tracking number of one whose delivery failed (and no other
  // items) is that parcel sent again: a reattempt, not a new shipment.
  if (p.tracking !== undefined) {
    const known = (await shipmentsOf(db, order.id)).filter((s) => s.tracking === p.tracking);
    const failed = known.find((s) => s.state === 'delivery_failed');
    const other = known.find((s) => s.state !== 'delivery_failed');
    if (!failed && other) {
      return {
        error: refuse('conflict', `order ${order.ref}: shipment ${other.ref} with tracking ${p.tracking} is already ${other.state}`, {
          order: order.ref,
          shipment: other.ref,
          state: other.state,
        }),
      };
    }
    if (failed) {
      const text = (units: readonly Pick[]) =>
        units
          .map((u) => `${u.sku}:${u.qty}`)
          .sort()
          .join(',');
      if (p.items === undefined || text(normaliseLines(asPicks(p.items) ?? [])) === text(shipmentItems(failed))) {
        return { order, picks: [], reattempt: failed };
      }
      // Other units under the tracking number of a parcel still out: never a second parcel with it.
      return {
        error: refuse(
          'conflict',
          `order ${order.ref}: shipment ${failed.ref} with tracking ${p.tracking} holds ${text(shipmentItems(failed))}; dispatched again it is that parcel`,
          { order: order.ref, shipment: failed.ref, state: failed.state },
        ),
      };
    }
  }
  if (order.state !== 'confirmed' && order.state !== 'partially_shipped') return { error: moveRefusal(order, 'shipped') as OutcomeError };
  const picked = pickUnits(await linesOf(db, order.id), asPicks(p.items), unsent, 'ship', 'left to send');
  if (!picked.ok) return { error: fromDomain(order, picked) };
  if (p.shipment_ref !== undefined && (await refTaken(db, 'shipments', p.shipment_ref))) {
    return { error: refuse('conflict', `shipment ref ${p.shipment_ref} is already taken`, { shipment_ref: p.shipment_ref }) };
  }
  return { order, picks: picked.picks };
}

export async function precheckShip(db: Queryable, p: ShipPayload) {
  return (await planShip(db, await findOrder(db, p.order), p)).error ?? null;
}

export async function applyShip(tx: DatabaseTransaction, p: ShipPayload, context: OrderContext): Promise<Outcome> {
  const plan = await planShip(tx, await lockOrder(tx, p.order), p);
  if (plan.error) return fail(plan.error);
  const { order, picks } = plan;
  const reason = p.tracking ? `tracking ${p.tracking}` : null;
  if (plan.reattempt) {
    await moveShipment(tx, plan.reattempt, 'dispatched', { actor: context.actor, reason: 'dispatched again', command: context.command });
    await settleState(tx, order.id, { actor: context.actor, reason, command: context.command });
    return orderOutcome(tx, order.id);
  }
  await insertShipment(
    tx,
    {
      orderId: order.id,
      ref: p.shipment_ref ?? refFrom('S', context.command),
      tracking: p.tracking ?? null,
      courier: p.courier ?? 'default',
      items: picks,
    },
    { actor: context.actor, reason, command: context.command },
  );
  await addToLines(tx, order.id, 'shipped', picks);
  const fresh = await findOrder(tx, order.id);
  if (!fresh) throw new Error('order vanished');
  const lines = await linesOf(tx, order.id);
  const next = deriveOrderState(stateOf(fresh), lines, ['dispatched']);
  if (next !== fresh.state) {
    await moveOrder(tx, fresh, next, {
      actor: context.actor,
      reason,
      command: context.command,
      ...(p.tracking ? { set: { tracking: p.tracking } } : {}),
    });
  }
  return orderOutcome(tx, order.id);
}

// ---- shipment moves (and order.deliver) ---------------------------------------------------------

/** The effect of a shipment reaching a state, on its order's lines, stock and money. */
async function shipmentEffect(
  tx: DatabaseTransaction,
  order: OrderRow,
  given: ShipmentRow,
  to: ShipmentState,
  context: OrderContext & { reason: string | null },
): Promise<void> {
  let shipment = given;
  const before = stepBefore(shipment.state as ShipmentState, to);
  if (before) {
    // Delivered after a failed attempt: the courier tried again (the reattempt is recorded first).
    await moveShipment(tx, shipment, before, { actor: context.actor, reason: 'delivered on a later attempt', command: context.command });
    shipment = { ...shipment, state: before };
  }
  await moveShipment(tx, shipment, to, { actor: context.actor, reason: context.reason, command: context.command });
  const items = shipmentItems(shipment);
  if (to === 'delivered') {
    await addToLines(tx, order.id, 'delivered', items);
    if (collectsCash(order)) {
      const value = valueBySeller(await linesOf(tx, order.id), items);
      const change = new Map([...value].map(([seller, v]) => [seller, { captured: v }]));
      await moveMoney(tx, order, await sellerMoneyOf(tx, order.id), change, {
        kind: 'delivery',
        cashAccount: `cod_receivable:${shipment.courier}`,
        command: context.command,
      });
    }
  } else if (to === 'rto_received') {
    await addToLines(tx, order.id, 'rto', items);
    await restockUnits(tx, {
      orderId: order.id,
      picks: items,
      kind: 'rto_restock',
      reason: `shipment ${shipment.ref} back at origin`,
      command: context.command,
    });
  }
}

/**
 * A shipment's move as commands take it: the machine's, except that a parcel whose delivery failed
 * may be reported delivered (couriers report the later attempt's delivery, not the reattempt):
 * shipmentEffect records the reattempt, then the delivery.
 */
function decideShipmentMove(from: ShipmentState, to: ShipmentState) {
  return stepBefore(from, to) ? ({ ok: true } as const) : shipmentMachine.decide(from, to);
}

/**
 * The step a courier leaves unreported before `to`: the reattempt before a delivery after a failed
 * attempt. Recorded first, then `to`.
 */
function stepBefore(from: ShipmentState, to: ShipmentState): ShipmentState | null {
  return to === 'delivered' && from === 'delivery_failed' ? 'dispatched' : null;
}

type MovePayload = CommandOf<'shipment.deliver'>['payload'];

async function planShipmentMove(
  db: Queryable,
  p: MovePayload,
  to: ShipmentState,
  lock: (orderId: string) => Promise<OrderRow | null>,
  final: boolean,
): Promise<Planned<{ order: OrderRow; shipment: ShipmentRow }>> {
  let scope: string | undefined;
  let locked: OrderRow | null = null;
  if (p.order !== undefined) {
    // The order named is locked first: the shipment is then looked up (and decided on) under it.
    locked = await lock(p.order);
    // A webhook naming an order not placed yet may be early: not_found with the order lets it wait.
    if (!locked) return { error: orderNotFound(p.order) };
    scope = locked.id;
  }
  let found = await findShipments(db, p.shipment, scope);
  if (!locked && found.length === 1) {
    // Named alone: its order is locked, then the key is looked up again under that lock.
    locked = await lock((found[0] as ShipmentRow).order_id);
    found = await findShipments(db, p.shipment, locked?.id);
  }
  if (found.length === 0) {
    return {
      error: refuse('not_found', `shipment not found: ${p.shipment}`, {
        shipment: p.shipment,
        // Within the out-of-order window an event for a shipment not dispatched yet is retried.
        ...(p.order !== undefined && !final ? { order: p.order } : {}),
      }),
    };
  }
  if (found.length > 1) {
    return {
      error: refuse('conflict', `${found.length} shipments have tracking number ${p.shipment}: name one by its id or ref`, {
        shipment: p.shipment,
        shipments: found.map((s) => s.ref),
      }),
    };
  }
  const shipment = found[0] as ShipmentRow;
  const order = locked;
  if (!order) throw new Error(`shipment ${shipment.ref} has no order`);
  const decision = decideShipmentMove(shipment.state as ShipmentState, to);
  // Within the out-of-order window a move its shipment is not ready for may be early (an RTO's
  // arrival before its start was reported): not_found with the order lets it wait and come again.
  if (!decision.ok && !final) {
    return { error: refuse('not_found', `shipment ${shipment.ref}: not ${to} from ${shipment.state} yet`, { order: order.ref }) };
  }
  if (!decision.ok) {
    return {
      error: refuse(decision.code, `shipment ${shipment.ref}: ${decision.message}`, {
        shipment: shipment.ref,
        order: order.ref,
        ...decision.details,
      }),
    };
  }
  return { order, shipment };
}

function shipmentHandler(type: ShipmentMove) {
  const to = shipmentMoves[type];
  return {
    precheck: async (db: Queryable, p: MovePayload) => (await planShipmentMove(db, p, to, (id) => findOrder(db, id), true)).error ?? null,
    apply: async (tx: DatabaseTransaction, p: MovePayload, context: OrderContext): Promise<Outcome> => {
      const plan = await planShipmentMove(tx, p, to, (id) => lockOrder(tx, id), context.final !== false);
      if (plan.error) return fail(plan.error);
      const reason = p.reason ?? null;
      await shipmentEffect(tx, plan.order, plan.shipment, to, { ...context, reason });
      await settleState(tx, plan.order.id, {
        actor: context.actor,
        reason: reason ?? `shipment ${plan.shipment.ref} ${to}`,
        command: context.command,
      });
      return orderOutcome(tx, plan.order.id);
    },
  };
}

export const shipmentHandlers = {
  'shipment.deliver': shipmentHandler('shipment.deliver'),
  'shipment.fail': shipmentHandler('shipment.fail'),
  'shipment.reattempt': shipmentHandler('shipment.reattempt'),
  'shipment.rto': shipmentHandler('shipment.rto'),
  'shipment.rto_receive': shipmentHandler('shipment.rto_receive'),
};

type DeliverPayload = CommandOf<'order.deliver'>['payload'];

async function planDeliver(
  db: Queryable,
  order: OrderRow | null,
  p: DeliverPayload,
  final: boolean,
): Promise<Planned<{ order: OrderRow; shipments: readonly ShipmentRow[] }>> {
  if (!order) return { error: orderNotFound(p.order) };
  const named = p.shipment_ref ?? p.tracking;
  const all = await shipmentsOf(db, order.id);
  const chosen =
    named === undefined
      ? all.filter((s) => s.state === 'dispatched' || s.state === 'delivery_failed')
      : all.filter((s) => s.ref === named || s.tracking === named);
  if (chosen.length === 0) {
    // An early delivery event (its dispatch not recorded yet) waits; once final it is recorded refused.
    if (!final) return { error: refuse('not_found', `order ${order.ref}: no shipment on its way yet`, { order: p.order }) };
    if (named !== undefined)
      return { error: refuse('not_found', `order ${order.ref} has no shipment ${named}`, { order: order.ref, shipment: named }) };
    return {
      error:
        moveRefusal(order, 'delivered') ??
        refuse('transition_not_allowed', `order ${order.ref}: no shipment is on its way`, {
          order: order.ref,
          from: order.state,
          to: 'delivered',
        }),
    };
  }
  for (const s of chosen) {
    const decision = decideShipmentMove(s.state as ShipmentState, 'delivered');
    // As for every shipment move: within the out-of-order window a refused one may be early.
    if (!decision.ok && !final) {
      return { error: refuse('not_found', `shipment ${s.ref}: not delivered from ${s.state} yet`, { order: order.ref }) };
    }
    if (!decision.ok)
      return {
        error: refuse(decision.code, `shipment ${s.ref}: ${decision.message}`, { shipment: s.ref, order: order.ref, ...decision.details }),
      };
  }
  return { order, shipments: chosen };
}

export async function precheckDeliver(db: Queryable, p: DeliverPayload) {
  return (await planDeliver(db, await findOrder(db, p.order), p, true)).error ?? null;
}

export async function applyDeliver(tx: DatabaseTransaction, p: DeliverPayload, context: OrderContext): Promise<Outcome> {
  const plan = await planDeliver(tx, await lockOrder(tx, p.order), p, context.final !== false);
  if (plan.error) return fail(plan.error);
  for (const s of plan.shipments) await shipmentEffect(tx, plan.order, s, 'delivered', { ...context, reason: null });
  await settleState(tx, plan.order.id, { actor: context.actor, reason: null, command: context.command });
  return orderOutcome(tx, plan.order.id);
}

// ---- order.cancel -------------------------------------------------------------------------------

type CancelPayload = CommandOf<'order.cancel'>['payload'];

async function planCancel(
  db: Queryable,
  order: OrderRow | null,
  p: CancelPayload,
): Promise<Planned<{ order: OrderRow; picks: readonly Pick[]; lines: readonly Line[] }>> {
  if (!order) return { error: orderNotFound(p.order) };
  if (p.only_from !== undefined && order.state !== p.only_from) {
    return {
      error: refuse(
        'transition_not_allowed',
        `order ${order.ref}: a failed payment cancels only a ${p.only_from} order; it is ${order.state}`,
        {
          order: order.ref,
          from: order.state,
          to: 'cancelled',
        },
      ),
    };
  }
  const lines = await linesOf(db, order.id);
  if (order.state === 'pending') {
    if (p.items !== undefined) {
      return {
        error: refuse('conflict', `order ${order.ref} is pending: an order awaiting payment is cancelled whole (without --item)`, {
          order: order.ref,
        }),
      };
    }
    return { order, picks: lines.map((l) => ({ sku: l.sku, qty: l.qty })), lines };
  }
  if (order.state !== 'confirmed' && order.state !== 'partially_shipped') return { error: moveRefusal(order, 'cancelled') as OutcomeError };
  const picked = pickUnits(lines, asPicks(p.items), unsent, 'cancel', 'not yet dispatched');
  if (!picked.ok) return { error: fromDomain(order, picked) };
  return { order, picks: picked.picks, lines };
}

export async function precheckCancel(db: Queryable, p: CancelPayload) {
  return (await planCancel(db, await findOrder(db, p.order), p)).error ?? null;
}

/**
 * Cancels units not yet dispatched: a pending order whole (its reservations released); past
 * confirmation the units asked (all not dispatched without items), restocked with a movement, and
 * their captured money refunded (a 'cancellation' refund, at most what is still refundable).
 */
export async function applyCancel(tx: DatabaseTransaction, p: CancelPayload, context: OrderContext): Promise<Outcome> {
  const plan = await planCancel(tx, await lockOrder(tx, p.order), p);
  if (plan.error) return fail(plan.error);
  const { order, picks, lines } = plan;
  if (order.state === 'pending') {
    await closeOrderReservations(tx, order.id, 'released', context.command);
    await addToLines(tx, order.id, 'cancelled', picks);
    await moveOrder(tx, order, 'cancelled', { actor: context.actor, reason: p.reason, command: context.command });
    return orderOutcome(tx, order.id);
  }
  await addToLines(tx, order.id, 'cancelled', picks);
  await restockUnits(tx, { orderId: order.id, picks, kind: 'restock', reason: `order ${order.id} cancelled`, command: context.command });
  const money = await sellerMoneyOf(tx, order.id);
  const room = new Map(money.map((m) => [m.seller, m.captured - m.refunded]));
  // Only money captured for the units comes back (a COD order collected none for them).
  const captured = new Map(money.map((m) => [m.seller, m.captured]));
  const bySeller = new Map(
    [...valueBySeller(lines, picks)]
      .map(
        ([seller, v]) =>
          [seller, (captured.get(seller) ?? 0n) > 0n ? (v < (room.get(seller) ?? 0n) ? v : (room.get(seller) ?? 0n)) : 0n] as const,
      )
      .filter(([, v]) => v > 0n),
  );
  if (bySeller.size > 0 && !collectsCash(order)) {
    await issueRefund(tx, order, money, bySeller, { kind: 'cancellation', reason: p.reason, items: picks, command: context.command });
  }
  await settleState(tx, order.id, { actor: context.actor, reason: p.reason, command: context.command });
  return orderOutcome(tx, order.id);
}

// ---- order.refund -------------------------------------------------------------------------------

type RefundPayload = CommandOf<'order.refund'>['payload'];

const REFUNDABLE_STATES: readonly string[] = ['partially_shipped', 'shipped', 'delivered', 'returned_to_origin'];

async function planRefund(
  db: Queryable,
  order: OrderRow | null,
  p: RefundPayload,
): Promise<Planned<{ order: OrderRow; money: readonly SellerMoney[]; bySeller: ReadonlyMap<string, bigint>; items: readonly Pick[] }>> {
  if (!order) return { error: orderNotFound(p.order) };
  if (!REFUNDABLE_STATES.includes(order.state)) return { error: moveRefusal(order, 'refunded') as OutcomeError };
  const lines = await linesOf(db, order.id);
  let items: readonly Pick[] = [];
  let value: Map<string, bigint> | undefined;
  if (p.items !== undefined) {
    const refunded = await unitsRefunded(db, order.id);
    // A unit is refunded by items once it was paid for and did not reach the buyer or came back:
    // delivered (returned or not), or back from a failed delivery when it was paid up front.
    const cash = collectsCash(order);
    const picked = pickUnits(
      lines,
      asPicks(p.items),
      (l) => (cash ? l.delivered : l.delivered + l.rto) - (refunded.get(l.sku) ?? 0n),
      'refund',
      'delivered or back and not yet refunded',
    );
    if (!picked.ok) return { error: fromDomain(order, picked) };
    items = picked.picks;
    value = valueBySeller(lines, items);
  }
  const money = await sellerMoneyOf(db, order.id);
  // The money of units not yet sent comes back by cancelling them (order cancel), never by a
  // refund: it is kept out of what a refund may take, so they can still be sent, paid for. A COD
  // order collected nothing for them (it captured only what was delivered): nothing is held back.
  const unsentValue = valueBySeller(
    lines,
    lines.map((l) => ({ sku: l.sku, qty: unsent(l) })),
  );
  const collecting = collectsCash(order);
  const refundable = money.map((m) => {
    const reserve = (m.captured > 0n && !collecting ? unsentValue.get(m.seller) : 0n) ?? 0n;
    const room = m.captured - m.refunded - reserve;
    return { ...m, captured: room > 0n ? m.refunded + room : m.refunded };
  });
  const decided = decideRefund(refundable, value, p.amount === undefined ? undefined : BigInt(p.amount));
  if (!decided.ok) {
    const held = [...unsentValue.values()].reduce((a, b) => a + b, 0n);
    return {
      error: fromDomain(order, {
        ...decided,
        message:
          held > 0n && !collecting ? `${decided.message} (${held} is for units not yet sent: cancel those instead)` : decided.message,
      }),
    };
  }
  return { order, money, bySeller: decided.bySeller, items };
}

export async function precheckRefund(db: Queryable, p: RefundPayload) {
  return (await planRefund(db, await findOrder(db, p.order), p)).error ?? null;
}

export async function applyRefund(tx: DatabaseTransaction, p: RefundPayload, context: OrderContext): Promise<Outcome> {
  const plan = await planRefund(tx, await lockOrder(tx, p.order), p);
  if (plan.error) return fail(plan.error);
  await issueRefund(tx, plan.order, plan.money, plan.bySeller, {
    kind: 'refund',
    reason: p.reason,
    items: plan.items,
    command: context.command,
  });
  await settleState(tx, plan.order.id, { actor: context.actor, reason: p.reason, command: context.command });
  return orderOutcome(tx, plan.order.id);
}

// ---- returns --------------------------------------------------------------------------------------

type RequestPayload = CommandOf<'return.request'>['payload'];

async function planReturnRequest(
  db: Queryable,
  order: OrderRow | null,
  p: RequestPayload,
  final = true,
): Promise<Planned<{ order: OrderRow; picks: readonly Pick[] }>> {
  if (!order) return { error: orderNotFound(p.order) };
  const awaiting = await unitsAwaitingReturn(db, order.id);
  const picked = pickUnits(
    await linesOf(db, order.id),
    asPicks(p.items),
    (l) => l.delivered - l.returned - (awaiting.get(l.sku) ?? 0n),
    'return',
    'delivered and not returned or awaiting return',
  );
  // A storefront's return request may arrive before the courier's delivery of its units: within the
  // out-of-order window it waits (not_found with the order), then it is decided as it stands.
  if (!picked.ok && picked.code === 'conflict' && !final) {
    return { error: refuse('not_found', `order ${order.ref}: its units may not be delivered yet`, { order: p.order }) };
  }
  if (!picked.ok) return { error: fromDomain(order, picked) };
  if (p.ref !== undefined && (await refTaken(db, 'returns', p.ref))) {
    return { error: refuse('conflict', `return ref ${p.ref} is already taken`, { return_ref: p.ref }) };
  }
  return { order, picks: picked.picks };
}

export async function precheckReturnRequest(db: Queryable, p: RequestPayload) {
  return (await planReturnRequest(db, await findOrder(db, p.order), p)).error ?? null;
}

export async function applyReturnRequest(tx: DatabaseTransaction, p: RequestPayload, context: OrderContext): Promise<Outcome> {
  const plan = await planReturnRequest(tx, await lockOrder(tx, p.order), p, context.final !== false);
  if (plan.error) return fail(plan.error);
  const ref = p.ref ?? refFrom('R', context.command);
  await insertReturn(
    tx,
    { orderId: plan.order.id, ref, reason: p.reason, items: plan.picks },
    { actor: context.actor, command: context.command },
  );
  const created = await findReturn(tx, ref);
  return {
    ok: true,
    result: {
      return: created ? returnJson(created) : null,
      order: ((await orderOutcome(tx, plan.order.id)) as { result: unknown }).result,
    },
  };
}

export function returnJson(r: ReturnRow) {
  return {
    id: r.id,
    ref: r.ref,
    state: r.state,
    items: returnItems(r),
    reason: r.reason,
    disposition: r.disposition,
    created_at: r.created_at,
  };
}

async function planReturnMove(
  db: Queryable,
  key: string,
  to: 'received' | 'rejected',
  lock: (orderId: string) => Promise<OrderRow | null>,
): Promise<Planned<{ order: OrderRow; ret: ReturnRow }>> {
  const found = await findReturn(db, key);
  if (!found) return { error: refuse('not_found', `return not found: ${key}`, { return: key }) };
  const order = await lock(found.order_id);
  if (!order) throw new Error(`return ${found.ref} has no order`);
  const ret = (await findReturn(db, found.id)) ?? found;
  const decision = returnMachine.decide(ret.state as 'requested', to);
  if (!decision.ok)
    return {
      error: refuse(decision.code, `return ${ret.ref}: ${decision.message}`, { return: ret.ref, order: order.ref, ...decision.details }),
    };
  return { order, ret };
}

type ReceivePayload = CommandOf<'return.receive'>['payload'];
type RejectPayload = CommandOf<'return.reject'>['payload'];

export async function precheckReturnReceive(db: Queryable, p: ReceivePayload) {
  return (await planReturnMove(db, p.return, 'received', (id) => findOrder(db, id))).error ?? null;
}

export async function applyReturnReceive(tx: DatabaseTransaction, p: ReceivePayload, context: OrderContext): Promise<Outcome> {
  const plan = await planReturnMove(tx, p.return, 'received', (id) => lockOrder(tx, id));
  if (plan.error) return fail(plan.error);
  const items = returnItems(plan.ret);
  await addToLines(tx, plan.order.id, 'returned', items);
  if (p.disposition === 'restock') {
    await restockUnits(tx, {
      orderId: plan.order.id,
      picks: items,
      kind: 'return_restock',
      reason: `return ${plan.ret.ref} restocked`,
      command: context.command,
    });
  }
  await moveReturn(tx, plan.ret, 'received', {
    actor: context.actor,
    reason: p.reason,
    command: context.command,
    disposition: p.disposition,
  });
  const updated = await findReturn(tx, plan.ret.id);
  return {
    ok: true,
    result: {
      return: updated ? returnJson(updated) : null,
      order: ((await orderOutcome(tx, plan.order.id)) as { result: unknown }).result,
    },
  };
}

export async function precheckReturnReject(db: Queryable, p: RejectPayload) {
  return (await planReturnMove(db, p.return, 'rejected', (id) => findOrder(db, id))).error ?? null;
}

export async function applyReturnReject(tx: DatabaseTransaction, p: RejectPayload, context: OrderContext): Promise<Outcome> {
  const plan = await planReturnMove(tx, p.return, 'rejected', (id) => lockOrder(tx, id));
  if (plan.error) return fail(plan.error);
  await moveReturn(tx, plan.ret, 'rejected', { actor: context.actor, reason: p.reason, command: context.command });
  const updated = await findReturn(tx, plan.ret.id);
  return {
    ok: true,
    result: {
      return: updated ? returnJson(updated) : null,
      order: ((await orderOutcome(tx, plan.order.id)) as { result: unknown }).result,
    },
  };
}
