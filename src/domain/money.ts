// Money: a bigint count of minor units and an ISO 4217 currency. No `number` arithmetic on amounts
// anywhere; amounts cross boundaries as strings of digits (JSON payloads) or exact JSON integers.
import { parseStrictInteger } from './integers.ts';

/** Minor-unit exponents. The database's `currencies` table holds the same list (a test checks). */
export const currencies = {
  INR: 2,
  BDT: 2,
  BTN: 2,
  NPR: 2,
  MMK: 2,
  LKR: 2,
  CNY: 2,
  THB: 2,
  SGD: 2,
  AED: 2,
  USD: 2,
  EUR: 2,
  GBP: 2,
  AUD: 2,
  CAD: 2,
  CHF: 2,
  JPY: 0,
  KRW: 0,
  KWD: 3,
  BHD: 3,
  OMR: 3,
} as const;
export type Currency = keyof typeof currencies;

export type Money = { readonly amount: bigint; readonly currency: Currency };

/** The largest unit price, in minor units (10^12: ₹10,00,00,00,000.00). */
export const MAX_PRICE = 1_000_000_000_000n;

/** The largest order total, in minor units: 10^18, inside PostgreSQL's int8 with room to spare. */
export const MAX_ORDER_TOTAL = 1_000_000_000_000_000_000n;

export function isCurrency(code: string): code is Currency {
  return Object.hasOwn(currencies, code);
}

export function parsePrice(raw: string): { ok: true; value: bigint } | { ok: false; reason: string } {
  const parsed = parseStrictInteger(raw, { min: 0n, max: MAX_PRICE });
  return parsed.ok ? parsed : { ok: false, reason: `price ${parsed.reason} (an integer count of minor units, e.g. 12999 for ₹129.99)` };
}

const symbols: Partial<Record<Currency, string>> = { INR: '₹', USD: '$', EUR: '€', GBP: '£', JPY: '¥' };

/** Groups digits the Indian way for INR (12,34,567) and in thousands otherwise. */
function group(digits: string, indian: boolean): string {
  if (digits.length <= 3) return digits;
  const last3 = digits.slice(-3);
  const rest = digits.slice(0, -3);
  const size = indian ? 2 : 3;
  const parts: string[] = [];
  for (let end = rest.length; end > 0; end -= size) parts.unshift(rest.slice(Math.max(0, end - size), end));
  return `${parts.join(',')},${last3}`;
}

/** Human formatting without floating point: ₹1,23,456.78 (en-IN), $1,234.50, ¥1,000. */
export function formatMoney(money: Money): string {
  const exponent = currencies[money.currency];
  const negative = money.amount < 0n;
  const digits = (negative ? -money.amount : money.amount).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = exponent > 0 ? `.${digits.slice(-exponent)}` : '';
  const body = `${group(whole, money.currency === 'INR')}${fraction}`;
  const symbol = symbols[money.currency];
  return `${negative ? '-' : ''}${symbol ?? ''}${body}${symbol ? '' : ` ${money.currency}`}`;
}

/**
 * The JSON shape of money (docs/contract.md, Output): {"amount": 12999, "currency": "INR"} with an
 * exact integer.
 */
export function moneyJson(money: Money): { amount: bigint; currency: Currency } {
  return { amount: money.amount, currency: money.currency };
}

/** numerator / denominator rounded to the nearest integer, ties to even (banker's rounding). */
export function roundHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const negative = numerator < 0n;
  const n = negative ? -numerator : numerator;
  const quotient = n / denominator;
  const twice = (n % denominator) * 2n;
  const rounded = twice > denominator || (twice === denominator && quotient % 2n === 1n) ? quotient + 1n : quotient;
  return negative ? -rounded : rounded;
}

/**
 * Splits `total` in proportion to `weights` (largest remainder): the parts always sum to `total`
 * exactly; leftover units go to the largest remainders, ties to the earlier weight.
 */
export function allocate(total: bigint, weights: readonly bigint[]): bigint[] {
  const sum = weights.reduce((a, b) => a + b, 0n);
  if (weights.some((w) => w < 0n)) throw new RangeError('weights must not be negative');
  if (sum === 0n) return weights.map((_, i) => (i === 0 ? total : 0n));
  const parts = weights.map((w) => (total * w) / sum);
  const remainders = weights.map((w, i) => ({ i, r: (total * w) % sum }));
  let left = total - parts.reduce((a, b) => a + b, 0n);
  remainders.sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i } of remainders) {
    if (left === 0n) break;
    parts[i] = (parts[i] ?? 0n) + 1n;
    left -= 1n;
  }
  return parts;
}

export type SellerSplit = { readonly seller: string; readonly subtotal: bigint; readonly commission: bigint; readonly payout: bigint };

/**
 * Per seller: commission = round_half_even(seller subtotal × bps / 10000), payout = subtotal −
 * commission. Payouts + commissions = the order total, exactly, by construction.
 */
export function splitBySeller(lines: readonly { seller: string; total: bigint }[], bps: number): SellerSplit[] {
  if (!Number.isInteger(bps) || bps < 0 || bps > 10_000) throw new RangeError('bps must be an integer 0–10000');
  const subtotals = new Map<string, bigint>();
  for (const line of lines) subtotals.set(line.seller, (subtotals.get(line.seller) ?? 0n) + line.total);
  return [...subtotals.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([seller, subtotal]) => {
      const commission = roundHalfEven(subtotal * BigInt(bps), 10_000n);
      return { seller, subtotal, commission, payout: subtotal - commission };
    });
}

/** Mixing currencies in arithmetic is a bug in the caller, never a value. */
export class CurrencyMismatchError extends Error {
  override name = 'CurrencyMismatchError';
}

function same(a: Money, b: Money): Currency {
  if (a.currency !== b.currency) throw new CurrencyMismatchError(`cannot combine ${a.currency} with ${b.currency}`);
  return a.currency;
}

export const addMoney = (a: Money, b: Money): Money => ({ amount: a.amount + b.amount, currency: same(a, b) });
export const subtractMoney = (a: Money, b: Money): Money => ({ amount: a.amount - b.amount, currency: same(a, b) });
export const multiplyMoney = (a: Money, quantity: bigint): Money => ({ amount: a.amount * quantity, currency: a.currency });
/** -1, 0 or 1. */
export const compareMoney = (a: Money, b: Money): -1 | 0 | 1 => {
  same(a, b);
  return a.amount < b.amount ? -1 : a.amount > b.amount ? 1 : 0;
};
