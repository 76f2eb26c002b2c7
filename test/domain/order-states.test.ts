import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkMachine, decideTransition, initialStates, orderStates, transitions } from '../../src/domain/orders/states.ts';

export const allowedPairs = orderStates.flatMap((from) => transitions[from].map((to) => [from, to] as const));
export const disallowedPairs = orderStates.flatMap((from) =>
  orderStates.filter((to) => to !== from && !transitions[from].includes(to)).map((to) => [from, to] as const),
);

describe('the order state machine', () => {
  test('is exactly the state table of docs/contract.md', () => {
    assert.deepEqual(allowedPairs, [
      ['pending', 'confirmed'],
      ['pending', 'cancelled'],
      ['pending', 'expired'],
      ['confirmed', 'shipped'],
      ['confirmed', 'cancelled'],
      ['shipped', 'delivered'],
      ['delivered', 'refunded'],
    ]);
  });

  test('allows every move in the table', () => {
    for (const [from, to] of allowedPairs) assert.deepEqual(decideTransition(from, to), { ok: true }, `${from} -> ${to}`);
  });

  test(`refuses every other move (${8 * 7 - 7} pairs), naming what is allowed`, () => {
    assert.equal(disallowedPairs.length, 49);
    for (const [from, to] of disallowedPairs) {
      const decision = decideTransition(from, to);
      assert.equal(decision.ok, false, `${from} -> ${to}`);
      assert.equal(decision.ok === false && decision.code, 'transition_not_allowed');
    }
  });

  test('the start-up check finds unknown and unreachable states', () => {
    assert.deepEqual(checkMachine(transitions, initialStates), []);
    assert.deepEqual(checkMachine({ ...transitions, pending: ['confirmed', 'lost'] }, initialStates).sort(), [
      'state expired is unreachable',
      'unknown state lost (from pending)',
    ]);
    const { refunded: _, ...missing } = transitions;
    assert.deepEqual(checkMachine(missing, initialStates), ['state refunded has no row']);
  });
});
