import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseStrictInteger } from '../../src/domain/integers.ts';

const quantity = { min: 1n, max: 1_000_000n };
const delta = { min: -1_000_000n, max: 1_000_000n };

describe('parseStrictInteger', () => {
  test('accepts plain ASCII digits within bounds, exactly', () => {
    assert.deepEqual(parseStrictInteger('1', quantity), { ok: true, value: 1n });
    assert.deepEqual(parseStrictInteger('1000000', quantity), { ok: true, value: 1_000_000n });
    assert.deepEqual(parseStrictInteger('007', quantity), { ok: true, value: 7n });
    assert.deepEqual(parseStrictInteger('-5', delta), { ok: true, value: -5n });
  });

  const rejected = [
    '',
    ' 2',
    '2 ',
    '+2',
    '1.5',
    '1e3',
    '0x10',
    '0b1',
    '１２',
    '١٢',
    '१२',
    'NaN',
    'Infinity',
    '-',
    '--1',
    '1_000',
    '0',
    '1000001',
    '9223372036854775808',
    '99999999999999999999999999999999999999999999999999',
  ];
  for (const raw of rejected) {
    test(`rejects ${JSON.stringify(raw)} as a quantity`, () => {
      const parsed = parseStrictInteger(raw, quantity);
      assert.equal(parsed.ok, false);
    });
  }

  test('rejects a negative where negatives are not allowed, and accepts it where they are', () => {
    assert.equal(parseStrictInteger('-1', quantity).ok, false);
    assert.equal(parseStrictInteger('-1', delta).ok, true);
    assert.equal(parseStrictInteger('-1000001', delta).ok, false);
  });

  test('compares against the bounds as bigint, so 2^63 and beyond never wrap or round', () => {
    const int8 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
    assert.deepEqual(parseStrictInteger('9223372036854775807', int8), { ok: true, value: 2n ** 63n - 1n });
    assert.equal(parseStrictInteger('9223372036854775808', int8).ok, false);
    assert.equal(parseStrictInteger('9007199254740993', { min: 0n, max: 9007199254740992n }).ok, false);
  });
});
