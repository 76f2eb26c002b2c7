// All or nothing: an order's items are reserved only if every SKU has enough available
// (on_hand - reserved). Pure; the caller has locked the SKU rows in ascending SKU order.

export type ReservationLine = { readonly sku: string; readonly qty: bigint };
export type InventoryRow = { readonly sku: string; readonly onHand: bigint; readonly reserved: bigint };
export type Shortage = { readonly sku: string; readonly requested: bigint; readonly available: bigint };

export type ReservationDecision =
  | { readonly ok: true; readonly lines: readonly ReservationLine[] }
  | { readonly ok: false; readonly code: 'not_found'; readonly missing: readonly string[] }
  | { readonly ok: false; readonly code: 'insufficient_stock'; readonly shortages: readonly Shortage[] };

/** Merges duplicate SKUs and sorts by SKU: the order in which rows must be locked. */
export function normaliseLines(lines: readonly ReservationLine[]): ReservationLine[] {
  const merged = new Map<string, bigint>();
  for (const line of lines) merged.set(line.sku, (merged.get(line.sku) ?? 0n) + line.qty);
  return [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([sku, qty]) => ({ sku, qty }));
}

export function decideReservation(lines: readonly ReservationLine[], rows: readonly InventoryRow[]): ReservationDecision {
  const normalised = normaliseLines(lines);
  const bySku = new Map(rows.map((r) => [r.sku, r]));
  const missing = normalised.filter((l) => !bySku.has(l.sku)).map((l) => l.sku);
  if (missing.length > 0) return { ok: false, code: 'not_found', missing };
  const shortages: Shortage[] = [];
  for (const line of normalised) {
    const row = bySku.get(line.sku);
    if (!row) continue;
    const available = row.onHand - row.reserved;
    if (available < line.qty) shortages.push({ sku: line.sku, requested: line.qty, available });
  }
  if (shortages.length > 0) return { ok: false, code: 'insufficient_stock', shortages };
  return { ok: true, lines: normalised };
}
