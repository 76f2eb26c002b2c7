// duplicateKey: a key twice in one object is found wherever it is; nothing else is.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { duplicateKey } from '../../src/domain/json.ts';

test('no JSON that JSON.stringify writes has a duplicate key (strings with quotes, escapes, brackets)', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      assert.equal(duplicateKey(JSON.stringify(value)), null);
    }),
    { numRuns: 500 },
  );
});

test('a key twice in any one object is found; the same key in sibling or nested objects is not a duplicate', () => {
  assert.equal(duplicateKey('{"a":1,"a":2}'), 'a');
  assert.equal(duplicateKey('{"x":{"b":[{"c":1},{"c":2,"c":3}]}}'), 'c');
  assert.equal(duplicateKey('{"q\\u0074y":1,"qty":2}'), 'qty');
  assert.equal(duplicateKey('{"a":"\\"a\\":","a":1}'), 'a');
  assert.equal(duplicateKey(' { "k" : { "k" : 1 } , "j" : [ { "k" : 2 } ] } '), null);
  assert.equal(duplicateKey('[{"a":1},{"a":2}]'), null);
  assert.equal(duplicateKey('{"a":{"x":1},"b":{"x":2}}'), null);
  assert.equal(duplicateKey('{"a":["a","a"],"b":"a"}'), null);
});

test('a duplicate injected anywhere into a JSON object is found', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }), fc.nat(), (object, pick) => {
      const keys = Object.keys(object);
      const key = keys[pick % keys.length] as string;
      const text = JSON.stringify(object);
      const doubled = `${text.slice(0, -1)},${JSON.stringify(key)}:0}`;
      assert.equal(duplicateKey(doubled), key);
    }),
    { numRuns: 300 },
  );
});
