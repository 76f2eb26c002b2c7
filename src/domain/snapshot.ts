// The money snapshot of an order: what was agreed at placement and frozen from confirmation on.
// Its SHA-256 over canonical JSON is stored on the order and re-checked (reconcile, tests).
import { createHash } from 'node:crypto';
import { canonicalJson } from './commands.ts';
import type { SellerSplit } from './money.ts';

export type MoneySnapshot = {
  readonly currency: string;
  readonly total: bigint;
  readonly commissionBps: number;
  readonly items: readonly { sku: string; qty: bigint; unitPrice: bigint; total: bigint }[];
  readonly splits: readonly SellerSplit[];
};

export function snapshotHash(snapshot: MoneySnapshot): string {
  const text = canonicalJson({
    currency: snapshot.currency,
    total: snapshot.total.toString(),
    commission_bps: snapshot.commissionBps,
    items: [...snapshot.items]
      .sort((a, b) => (a.sku < b.sku ? -1 : 1))
      .map((i) => ({ sku: i.sku, qty: i.qty.toString(), unit_price: i.unitPrice.toString(), total: i.total.toString() })),
    splits: snapshot.splits.map((s) => ({
      seller: s.seller,
      subtotal: s.subtotal.toString(),
      commission: s.commission.toString(),
      payout: s.payout.toString(),
    })),
  });
  return createHash('sha256').update(text).digest('hex');
}
