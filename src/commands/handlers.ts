// One handler per command type: the only implementation of each write. `precheck` runs at the
// boundary on an unlocked read, so an obviously refused command stores nothing; `apply` runs in the
// command's transaction (a worker's, the CLI's inline fallback, or an import batch) with row locks
// and is the authority. Both call the same decide functions.
import { findSeller, findSku, insertSeller, insertSku, type SkuRow } from '../db/catalog.ts';
import { type CommandRef, changeOnHand, lockStock, type StockRow, stockOf } from '../db/inventory.ts';
import type { DatabaseTransaction, Queryable } from '../db/pool.ts';
import type { CommandOf, CommandType, Outcome, OutcomeError } from '../domain/commands.ts';
import { decideStockChange } from '../domain/inventory/decide-stock-change.ts';
import { type Currency, moneyJson } from '../domain/money.ts';
import type { Logger } from '../log.ts';
import {
  applyCancel,
  applyConfirmCod,
  applyDeliver,
  applyRefund,
  applyReturnReceive,
  applyReturnReject,
  applyReturnRequest,
  applyShip,
  precheckCancel,
  precheckConfirmCod,
  precheckDeliver,
  precheckRefund,
  precheckReturnReceive,
  precheckReturnReject,
  precheckReturnRequest,
  precheckShip,
  shipmentHandlers,
} from './lifecycle-handlers.ts';
import { applyConfirm, applyPlace, precheckConfirm, precheckPlace } from './order-handlers.ts';
import { fail, refuse } from './outcome.ts';
import { stockJson } from './stock-json.ts';

export type HandlerContext = {
  readonly command: CommandRef;
  readonly actor: string;
  readonly log: Logger;
  /** False while an event may still be early (its order not yet placed): see applyCommand. */
  readonly final: boolean;
};

type Handler<T extends CommandType> = {
  readonly precheck: (db: Queryable, payload: CommandOf<T>['payload']) => Promise<OutcomeError | null>;
  readonly apply: (tx: DatabaseTransaction, payload: CommandOf<T>['payload'], context: HandlerContext) => Promise<Outcome>;
};

export { stockJson } from './stock-json.ts';

export function skuJson(row: SkuRow, stock: StockRow | null) {
  return {
    code: row.code,
    seller: row.seller,
    title: row.title,
    price: moneyJson({ amount: row.price_amount, currency: row.currency as Currency }),
    stock: stock ? stockJson(stock) : null,
  };
}

async function skuMustExist(db: Queryable, sku: string): Promise<OutcomeError | null> {
  return (await findSku(db, sku)) ? null : refuse('not_found', `SKU not found: ${sku}`, { sku });
}

async function changeStock(
  tx: DatabaseTransaction,
  change: { sku: string; delta: bigint; kind: 'receive' | 'adjust'; reason: string | null },
  context: HandlerContext,
): Promise<Outcome> {
  const [row] = await lockStock(tx, [change.sku]);
  if (!row) return fail(refuse('not_found', `SKU not found: ${change.sku}`, { sku: change.sku }));
  const decision = decideStockChange({ onHand: row.on_hand, reserved: row.reserved }, change.delta);
  if (!decision.ok) return fail(refuse(decision.code, decision.message, { sku: change.sku, ...decision.details }));
  const updated = await changeOnHand(tx, { ...change, command: context.command });
  return { ok: true, result: stockJson(updated) };
}

export const handlers: { readonly [T in CommandType]: Handler<T> } = {
  'seller.add': {
    precheck: async (db, p) =>
      (await findSeller(db, p.handle)) ? refuse('conflict', `seller ${p.handle} already exists`, { seller: p.handle }) : null,
    apply: async (tx, p) => {
      if (await findSeller(tx, p.handle)) return fail(refuse('conflict', `seller ${p.handle} already exists`, { seller: p.handle }));
      const seller = await insertSeller(tx, p);
      return { ok: true, result: seller };
    },
  },
  'sku.add': {
    precheck: async (db, p) => {
      if (!(await findSeller(db, p.seller))) return refuse('not_found', `seller not found: ${p.seller}`, { seller: p.seller });
      if (await findSku(db, p.code)) return refuse('conflict', `SKU ${p.code} already exists`, { sku: p.code });
      return null;
    },
    apply: async (tx, p) => {
      if (!(await findSeller(tx, p.seller))) return fail(refuse('not_found', `seller not found: ${p.seller}`, { seller: p.seller }));
      if (await findSku(tx, p.code)) return fail(refuse('conflict', `SKU ${p.code} already exists`, { sku: p.code }));
      const sku = await insertSku(tx, {
        code: p.code,
        seller: p.seller,
        title: p.title,
        priceAmount: BigInt(p.price),
        currency: p.currency,
      });
      return { ok: true, result: skuJson(sku, await stockOf(tx, p.code)) };
    },
  },
  'stock.receive': {
    precheck: (db, p) => skuMustExist(db, p.sku),
    apply: (tx, p, context) => changeStock(tx, { sku: p.sku, delta: BigInt(p.qty), kind: 'receive', reason: p.reason ?? null }, context),
  },
  'stock.adjust': {
    precheck: async (db, p) => {
      const stock = await stockOf(db, p.sku);
      if (!stock) return refuse('not_found', `SKU not found: ${p.sku}`, { sku: p.sku });
      const decision = decideStockChange({ onHand: stock.on_hand, reserved: stock.reserved }, BigInt(p.delta));
      return decision.ok ? null : refuse(decision.code, decision.message, { sku: p.sku, ...decision.details });
    },
    apply: (tx, p, context) => changeStock(tx, { sku: p.sku, delta: BigInt(p.delta), kind: 'adjust', reason: p.reason }, context),
  },
  'order.place': { precheck: precheckPlace, apply: applyPlace },
  'order.confirm': { precheck: precheckConfirm, apply: applyConfirm },
  'order.confirm_cod': { precheck: precheckConfirmCod, apply: applyConfirmCod },
  'order.ship': { precheck: precheckShip, apply: applyShip },
  'order.deliver': { precheck: precheckDeliver, apply: applyDeliver },
  'order.cancel': { precheck: precheckCancel, apply: applyCancel },
  'order.refund': { precheck: precheckRefund, apply: applyRefund },
  ...shipmentHandlers,
  'return.request': { precheck: precheckReturnRequest, apply: applyReturnRequest },
  'return.receive': { precheck: precheckReturnReceive, apply: applyReturnReceive },
  'return.reject': { precheck: precheckReturnReject, apply: applyReturnReject },
};

export function handlerFor<T extends CommandType>(command: CommandOf<T>): Handler<T> {
  return handlers[command.type as T];
}
