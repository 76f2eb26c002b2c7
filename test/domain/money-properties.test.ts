// Property tests (fast-check) for the money arithmetic: exact, integer-only, never drifting.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_QUANTITY } from '../../src/domain/commands.ts';
import { allocate, MAX_PRICE, roundHalfEven, splitBySeller } from '../../src/domain/money.ts';
import { repoRoot } from '../helpers/cli.ts';

const price = fc.bigInt({ min: 0n, max: MAX_PRICE });
const qty = fc.bigInt({ min: 1n, max: MAX_QUANTITY });
const bps = fc.integer({ min: 0, max: 10_000 });
const cart = fc.array(fc.record({ seller: fc.integer({ min: 1, max: 20 }).map((n) => `s-${n}`), price, qty }), {
  minLength: 1,
  maxLength: 30,
});

describe('money properties', () => {
  test('per-seller payouts + commissions sum exactly to the order total, for any cart and any bps', () => {
    fc.assert(
      fc.property(cart, bps, (lines, rate) => {
        const priced = lines.map((l) => ({ seller: l.seller, total: l.price * l.qty }));
        const total = priced.reduce((a, l) => a + l.total, 0n);
        const splits = splitBySeller(priced, rate);
        assert.equal(
          splits.reduce((a, s) => a + s.payout + s.commission, 0n),
          total,
        );
        for (const s of splits) {
          assert.equal(typeof s.commission, 'bigint');
          assert.ok(s.commission >= 0n && s.payout >= 0n);
          assert.equal(s.commission, roundHalfEven(s.subtotal * BigInt(rate), 10_000n));
        }
      }),
      { numRuns: 500 },
    );
  });

  test('largest-remainder allocation never loses or creates a minor unit', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 18n }),
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 20 }),
        (total, weights) => {
          const parts = allocate(total, weights);
          assert.equal(parts.length, weights.length);
          assert.equal(
            parts.reduce((a, b) => a + b, 0n),
            total,
          );
          const sum = weights.reduce((a, b) => a + b, 0n);
          if (sum > 0n) {
            weights.forEach((w, i) => {
              const exact = (total * w) / sum;
              assert.ok(parts[i] === exact || parts[i] === exact + 1n, 'each part is its floor or one more');
            });
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  test('round_half_even is the nearest integer, ties to even, checked against exact rational comparison', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.bigInt({ min: 1n, max: 10n ** 6n }), (n, d) => {
        const r = roundHalfEven(n, d);
        const distance = (n - r * d) * 2n; // 2·(n/d − r)·d, compared without division
        const abs = distance < 0n ? -distance : distance;
        assert.ok(abs <= d, 'within half a unit');
        if (abs === d) assert.equal(r % 2n, 0n, 'a tie goes to the even neighbour');
      }),
      { numRuns: 1000 },
    );
    assert.equal(roundHalfEven(5n, 2n), 2n);
    assert.equal(roundHalfEven(7n, 2n), 4n);
    assert.equal(roundHalfEven(-5n, 2n), -2n);
    assert.equal(roundHalfEven(1n, 3n), 0n);
  });

  test('money code does no number arithmetic: no Number(), parseFloat, parseInt or Math on amounts', async () => {
    const files = [
      'src/domain/money.ts',
      'src/domain/snapshot.ts',
      'src/db/ledger.ts',
      'src/commands/order-handlers.ts',
      'src/db/orders.ts',
    ];
    for (const file of files) {
      const text = await fs.readFile(path.join(repoRoot, file), 'utf8');
      for (const forbidden of [/\bNumber\(/, /\bparseFloat\b/, /\bparseInt\b/, /\bMath\.(round|floor|ceil|trunc)\b/, /toFixed\(/]) {
        assert.doesNotMatch(text, forbidden, `${file} uses ${forbidden}`);
      }
    }
  });
});
