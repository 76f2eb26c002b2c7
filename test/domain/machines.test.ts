// The state-machine builder (src/domain/machine.ts) and the shipment and return machines built with
// it: every allowed move allowed, every other pair refused with transition_not_allowed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defineMachine, type Machine, machineProblems } from '../../src/domain/machine.ts';
import { returnMachine, returnStates, returnTransitions } from '../../src/domain/orders/returns.ts';
import {
  openShipmentStates,
  shipmentMachine,
  shipmentMoves,
  shipmentStates,
  shipmentTransitions,
} from '../../src/domain/orders/shipments.ts';

/** Every (from, to) pair of distinct states, split by whether the table allows it. */
export function pairsOf<S extends string>(states: readonly S[], table: { readonly [K in S]: readonly S[] }) {
  const allowed = states.flatMap((from) => table[from].map((to) => [from, to] as const));
  const disallowed = states.flatMap((from) =>
    states.filter((to) => to !== from && !table[from].includes(to)).map((to) => [from, to] as const),
  );
  return { allowed, disallowed };
}

function assertJudges<S extends string>(
  machine: Machine<S>,
  allowed: readonly (readonly [S, S])[],
  disallowed: readonly (readonly [S, S])[],
) {
  for (const [from, to] of allowed) assert.deepEqual(machine.decide(from, to), { ok: true }, `${from} -> ${to}`);
  for (const [from, to] of disallowed) {
    const decision = machine.decide(from, to);
    assert.equal(decision.ok, false, `${from} -> ${to} must be refused`);
    if (decision.ok) continue;
    assert.equal(decision.code, 'transition_not_allowed');
    assert.deepEqual(decision.details, { from, to, allowed: machine.transitions[from] });
    assert.ok(decision.message.startsWith(`cannot move a ${machine.name} from ${from} to ${to} (`), decision.message);
  }
  // A state to itself is not a move either.
  for (const s of machine.states) assert.equal(machine.decide(s, s).ok, false, `${s} -> ${s}`);
}

describe('machineProblems', () => {
  const states = ['a', 'b', 'c'];
  test('a sound table has none', () => {
    assert.deepEqual(machineProblems(states, { a: ['b'], b: ['c'], c: [] }, ['a']), []);
    // Reached through a loop, and from a second initial state.
    assert.deepEqual(machineProblems(states, { a: ['b'], b: ['a'], c: [] }, ['a', 'c']), []);
  });
  test('names unknown states, on either side of a move', () => {
    assert.deepEqual(machineProblems(states, { a: ['b', 'x'], b: ['c'], c: [], y: [] }, ['a']), [
      'unknown state x (from a)',
      'unknown state y',
    ]);
  });
  test('names a state with no row', () => {
    assert.deepEqual(machineProblems(states, { a: ['b'], b: ['c'] }, ['a']), ['state c has no row']);
  });
  test('names states nothing reaches, however long the path', () => {
    assert.deepEqual(machineProblems(states, { a: [], b: ['c'], c: [] }, ['a']), ['state b is unreachable', 'state c is unreachable']);
    assert.deepEqual(machineProblems(['a', 'b', 'c', 'd'], { a: ['b'], b: ['c'], c: ['d'], d: [] }, ['a']), []);
    assert.deepEqual(machineProblems(states, { a: ['b'], b: ['c'], c: [] }, []), [
      'state a is unreachable',
      'state b is unreachable',
      'state c is unreachable',
    ]);
  });
});

describe('defineMachine', () => {
  test('refuses a broken table when it is defined, naming every problem', () => {
    assert.throws(() => defineMachine('widget', ['new', 'old', 'lost'] as const, ['new'], { new: ['old'], old: [], lost: [] }), {
      message: 'the widget state machine is broken: state lost is unreachable',
    });
    assert.throws(
      () => defineMachine('widget', ['new', 'old'] as const, ['new'], { new: ['gone'], old: [] } as never),
      /the widget state machine is broken: unknown state gone \(from new\); state old is unreachable/,
    );
  });

  test('judges moves by its table, naming what is allowed or that the state is final', () => {
    const m = defineMachine('widget', ['new', 'used', 'gone'] as const, ['new'], { new: ['used', 'gone'], used: ['gone'], gone: [] });
    assert.equal(m.name, 'widget');
    assert.deepEqual(m.initial, ['new']);
    assert.deepEqual(m.decide('new', 'used'), { ok: true });
    assert.deepEqual(m.decide('used', 'new'), {
      ok: false,
      code: 'transition_not_allowed',
      message: 'cannot move a widget from used to new (from used: gone)',
      details: { from: 'used', to: 'new', allowed: ['gone'] },
    });
    assert.deepEqual(m.decide('gone', 'new'), {
      ok: false,
      code: 'transition_not_allowed',
      message: 'cannot move a widget from gone to new (gone is final)',
      details: { from: 'gone', to: 'new', allowed: [] },
    });
    assert.equal(m.isState('used'), true);
    assert.equal(m.isState('USED'), false);
    assert.equal(m.isState(''), false);
    assert.equal(m.isState('toString'), false);
  });

  test('calls the order "an order" in its messages', () => {
    const m = defineMachine('order', ['pending', 'done'] as const, ['pending'], { pending: ['done'], done: [] });
    assert.match((m.decide('done', 'pending') as { message: string }).message, /^cannot move an order from done to pending/);
  });
});

describe('the shipment machine', () => {
  const { allowed, disallowed } = pairsOf(shipmentStates, shipmentTransitions);

  test('is the table of docs/contract.md §8', () => {
    assert.deepEqual(shipmentMachine.states, ['dispatched', 'delivered', 'delivery_failed', 'rto_initiated', 'rto_received']);
    assert.deepEqual(shipmentMachine.initial, ['dispatched']);
    assert.deepEqual(allowed, [
      ['dispatched', 'delivered'],
      ['dispatched', 'delivery_failed'],
      ['dispatched', 'rto_initiated'],
      ['delivery_failed', 'dispatched'],
      ['delivery_failed', 'rto_initiated'],
      ['rto_initiated', 'rto_received'],
    ]);
    assert.equal(disallowed.length, 5 * 4 - 6);
    assert.deepEqual(machineProblems(shipmentStates, shipmentTransitions, ['dispatched']), []);
  });

  test('allows every allowed move and refuses every other pair with transition_not_allowed', () => {
    assertJudges(shipmentMachine, allowed, disallowed);
    assert.match((shipmentMachine.decide('delivered', 'delivery_failed') as { message: string }).message, /delivered is final/);
    assert.match((shipmentMachine.decide('rto_received', 'dispatched') as { message: string }).message, /rto_received is final/);
  });

  test('its open states are those with a move left, and each command moves to an allowed state', () => {
    assert.deepEqual([...openShipmentStates].sort(), shipmentStates.filter((s) => shipmentTransitions[s].length > 0).sort());
    assert.deepEqual(shipmentMoves, {
      'shipment.deliver': 'delivered',
      'shipment.fail': 'delivery_failed',
      'shipment.reattempt': 'dispatched',
      'shipment.rto': 'rto_initiated',
      'shipment.rto_receive': 'rto_received',
    });
    for (const to of Object.values(shipmentMoves)) {
      assert.ok(
        allowed.some(([, t]) => t === to),
        `${to} is reached by some move`,
      );
    }
  });
});

describe('the return machine', () => {
  const { allowed, disallowed } = pairsOf(returnStates, returnTransitions);

  test('is the table of docs/contract.md §8', () => {
    assert.deepEqual(returnMachine.states, ['requested', 'received', 'rejected']);
    assert.deepEqual(returnMachine.initial, ['requested']);
    assert.deepEqual(allowed, [
      ['requested', 'received'],
      ['requested', 'rejected'],
    ]);
    assert.deepEqual(disallowed, [
      ['received', 'requested'],
      ['received', 'rejected'],
      ['rejected', 'requested'],
      ['rejected', 'received'],
    ]);
  });

  test('allows every allowed move and refuses every other pair with transition_not_allowed', () => {
    assertJudges(returnMachine, allowed, disallowed);
    assert.equal(
      (returnMachine.decide('received', 'rejected') as { message: string }).message,
      'cannot move a return from received to rejected (received is final)',
    );
  });
});
