import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkMachine, decideTransition, initialStates, orderStates, transitions } from '../../src/domain/orders/states.ts';

export const allowedPairs = orderStates.flatMap((from) => transitions[from].map((to) => [from, to] as const));
export const disallowedPairs = orderStates.flatMap((from) =>
  orderStates.filter((to) => to !== from && !transitions[from].includes(to)).map((to) => [from, to] as const),
);

describe('the order state machine', () => {
  test('is exactly the state table of docs/contract.md §8, part-flows included', () => {
    assert.deepEqual(orderStates, [
      'pending',
      'confirmed',
      'partially_shipped',
      'shipped',
      'delivered',
      'returned_to_origin',
      'cancelled',
      'expired',
      'rejected',
      'refunded',
    ]);
    assert.deepEqual(initialStates, ['pending', 'rejected']);
    assert.deepEqual(allowedPairs, [
      ['pending', 'confirmed'],
      ['pending', 'cancelled'],
      ['pending', 'expired'],
      ['confirmed', 'partially_shipped'],
      ['confirmed', 'shipped'],
      ['confirmed', 'cancelled'],
      ['partially_shipped', 'shipped'],
      ['partially_shipped', 'delivered'],
      ['partially_shipped', 'returned_to_origin'],
      ['shipped', 'delivered'],
      ['shipped', 'returned_to_origin'],
      ['delivered', 'refunded'],
      ['returned_to_origin', 'refunded'],
    ]);
    for (const final of ['cancelled', 'expired', 'rejected', 'refunded'] as const) assert.deepEqual(transitions[final], [], final);
  });

  test('allows every move in the table', () => {
    for (const [from, to] of allowedPairs) assert.deepEqual(decideTransition(from, to), { ok: true }, `${from} -> ${to}`);
  });

  test(`refuses every other move (${10 * 9 - 13} pairs), naming what is allowed`, () => {
    assert.equal(disallowedPairs.length, 77);
    for (const [from, to] of disallowedPairs) {
      const decision = decideTransition(from, to);
      assert.equal(decision.ok, false, `${from} -> ${to}`);
      assert.equal(decision.ok === false && decision.code, 'transition_not_allowed');
      assert.deepEqual(decision.ok === false && decision.details, { from, to, allowed: transitions[from] });
    }
    // A few that part-flows could tempt: no going back, no skipping dispatch, no refund before delivery.
    for (const [from, to] of [
      ['shipped', 'partially_shipped'],
      ['partially_shipped', 'confirmed'],
      ['confirmed', 'delivered'],
      ['partially_shipped', 'cancelled'],
      ['shipped', 'refunded'],
      ['returned_to_origin', 'delivered'],
    ] as const) {
      assert.equal(decideTransition(from, to).ok, false, `${from} -> ${to}`);
    }
    const final = decideTransition('refunded', 'delivered');
    assert.match(final.ok === false ? final.message : '', /refunded is final/);
    const named = decideTransition('shipped', 'partially_shipped');
    assert.equal(
      named.ok === false && named.message,
      'cannot move an order from shipped to partially_shipped (from shipped: delivered, returned_to_origin)',
    );
  });

  test('the start-up check finds unknown and unreachable states', () => {
    assert.deepEqual(checkMachine(transitions, initialStates), []);
    assert.deepEqual(checkMachine({ ...transitions, pending: ['confirmed', 'lost'] }, initialStates).sort(), [
      'state expired is unreachable',
      'unknown state lost (from pending)',
    ]);
    const { refunded: _, ...missing } = transitions;
    assert.deepEqual(checkMachine(missing, initialStates), ['state refunded has no row']);
    assert.deepEqual(checkMachine({ ...transitions, confirmed: ['shipped', 'cancelled'] }, initialStates), [
      'state partially_shipped is unreachable',
    ]);
  });
});
