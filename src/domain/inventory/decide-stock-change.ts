// Protects invariant 1 (0 <= reserved <= on_hand): a receive or adjustment may never take on_hand
// below what is reserved, nor below zero. Pure; the caller holds the SKU's row lock.

export type StockLevels = { readonly onHand: bigint; readonly reserved: bigint };

export type StockChangeDecision =
  | { readonly ok: true; readonly onHand: bigint }
  | { readonly ok: false; readonly code: 'conflict'; readonly message: string; readonly details: Record<string, unknown> };

export function decideStockChange(levels: StockLevels, delta: bigint): StockChangeDecision {
  const onHand = levels.onHand + delta;
  if (onHand < levels.reserved) {
    return {
      ok: false,
      code: 'conflict',
      message: `cannot take on_hand to ${onHand}: ${levels.reserved} reserved`,
      details: { on_hand: levels.onHand, reserved: levels.reserved, delta },
    };
  }
  return { ok: true, onHand };
}
