// The stock JSON (docs/contract.md, haat stock), apart from the handlers so that a read loads no write
// machinery.
import type { StockRow } from '../db/inventory.ts';

export function stockJson(row: StockRow) {
  return { sku: row.sku, on_hand: row.on_hand, reserved: row.reserved, available: row.available };
}
