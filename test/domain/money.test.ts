import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Command, canonicalJson, fingerprint, IdempotencyKey } from '../../src/domain/commands.ts';
import { decideReservation } from '../../src/domain/inventory/decide-reservation.ts';
import { decideStockChange } from '../../src/domain/inventory/decide-stock-change.ts';
import { formatMoney, parsePrice } from '../../src/domain/money.ts';

describe('money', () => {
  test('formats without floating point: Indian grouping for INR, exponents from the table', () => {
    assert.equal(formatMoney({ amount: 12345678n, currency: 'INR' }), '₹1,23,456.78');
    assert.equal(formatMoney({ amount: 12999n, currency: 'INR' }), '₹129.99');
    assert.equal(formatMoney({ amount: 5n, currency: 'INR' }), '₹0.05');
    assert.equal(formatMoney({ amount: 100000000000000n, currency: 'INR' }), '₹10,00,00,00,00,000.00');
    assert.equal(formatMoney({ amount: 123456789n, currency: 'USD' }), '$1,234,567.89');
    assert.equal(formatMoney({ amount: 1000n, currency: 'JPY' }), '¥1,000');
    assert.equal(formatMoney({ amount: 1234n, currency: 'KWD' }), '1.234 KWD');
    assert.equal(formatMoney({ amount: -250n, currency: 'INR' }), '-₹2.50');
  });

  test('parses a price only as plain digits within 0..10^12', () => {
    assert.deepEqual(parsePrice('12999'), { ok: true, value: 12999n });
    for (const bad of ['10.5', '₹10', '-1', '1e3', '1000000000001', '', 'NaN']) assert.equal(parsePrice(bad).ok, false, bad);
  });
});

describe('commands', () => {
  test('equal commands have equal fingerprints whatever the key order; different input differs', () => {
    const a = Command.parse({ type: 'stock.receive', payload: { sku: 'TEA', qty: '5', reason: 'r' } });
    const b = Command.parse({ type: 'stock.receive', payload: { reason: 'r', qty: '5', sku: 'TEA' } });
    const c = Command.parse({ type: 'stock.receive', payload: { sku: 'TEA', qty: '6', reason: 'r' } });
    assert.equal(fingerprint(a), fingerprint(b));
    assert.notEqual(fingerprint(a), fingerprint(c));
    assert.equal(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }), '{"a":[2,{"c":4,"d":3}],"b":1}');
  });

  test('refuses unknown payload fields, so a client cannot slip in a price', () => {
    assert.throws(() => Command.parse({ type: 'stock.receive', payload: { sku: 'TEA', qty: '1', price: '1' } }));
  });

  test('idempotency keys are printable ASCII, 1–255 characters', () => {
    assert.equal(IdempotencyKey.safeParse('order 42/retry-1').success, true);
    assert.equal(IdempotencyKey.safeParse('x'.repeat(255)).success, true);
    for (const bad of ['', 'x'.repeat(256), 'a\tb', 'a\nb', 'é', '\u0000'])
      assert.equal(IdempotencyKey.safeParse(bad).success, false, JSON.stringify(bad));
  });
});

describe('inventory decisions', () => {
  test('a stock change may not take on_hand below reserved', () => {
    assert.deepEqual(decideStockChange({ onHand: 10n, reserved: 4n }, -6n), { ok: true, onHand: 4n });
    assert.equal(decideStockChange({ onHand: 10n, reserved: 4n }, -7n).ok, false);
    assert.equal(decideStockChange({ onHand: 0n, reserved: 0n }, -1n).ok, false);
  });

  test('a reservation is all or nothing, with every shortage named', () => {
    const rows = [
      { sku: 'A', onHand: 5n, reserved: 4n },
      { sku: 'B', onHand: 2n, reserved: 0n },
    ];
    assert.deepEqual(
      decideReservation(
        [
          { sku: 'B', qty: 2n },
          { sku: 'A', qty: 1n },
        ],
        rows,
      ),
      {
        ok: true,
        lines: [
          { sku: 'A', qty: 1n },
          { sku: 'B', qty: 2n },
        ],
      },
    );
    assert.deepEqual(
      decideReservation(
        [
          { sku: 'A', qty: 1n },
          { sku: 'A', qty: 1n },
          { sku: 'B', qty: 3n },
        ],
        rows,
      ),
      {
        ok: false,
        code: 'insufficient_stock',
        shortages: [
          { sku: 'A', requested: 2n, available: 1n },
          { sku: 'B', requested: 3n, available: 2n },
        ],
      },
    );
  });
});

describe('money arithmetic', () => {
  test('adds, subtracts, multiplies and compares exactly, and refuses mixed currencies', async () => {
    const { addMoney, compareMoney, CurrencyMismatchError, multiplyMoney, subtractMoney } = await import('../../src/domain/money.ts');
    const inr = (amount: bigint) => ({ amount, currency: 'INR' as const });
    assert.deepEqual(addMoney(inr(9007199254740993n), inr(1n)), inr(9007199254740994n));
    assert.deepEqual(subtractMoney(inr(5n), inr(7n)), inr(-2n));
    assert.deepEqual(multiplyMoney(inr(1_000_000_000_000n), 1_000_000n), inr(10n ** 18n));
    assert.equal(compareMoney(inr(2n), inr(10n)), -1);
    assert.equal(compareMoney(inr(10n), inr(10n)), 0);
    assert.throws(() => addMoney(inr(1n), { amount: 1n, currency: 'USD' }), CurrencyMismatchError);
    assert.throws(() => compareMoney(inr(1n), { amount: 1n, currency: 'JPY' }), CurrencyMismatchError);
  });
});
