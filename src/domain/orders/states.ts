// The order state machine (docs/lifecycle.md) as data. `decideTransition` is the only judge of a
// move; the database's order_transition_rules holds the same table and its trigger refuses anything
// else. Whole-order flows keep their path (confirmed → shipped → delivered → refunded); part-flows
// add partially_shipped (some units sent, some still to send) and returned_to_origin (every
// dispatched unit came back undelivered). Past confirmation the state follows from the order's
// per-line quantities and its shipments (deriveOrderState, src/domain/orders/lifecycle.ts).
import { defineMachine, machineProblems, type TransitionDecision } from '../machine.ts';

export type { TransitionDecision } from '../machine.ts';

export const orderStates = [
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
] as const;
export type OrderState = (typeof orderStates)[number];

/** States a new order may start in. */
export const initialStates: readonly OrderState[] = ['pending', 'rejected'];

export const transitions: { readonly [S in OrderState]: readonly OrderState[] } = {
  pending: ['confirmed', 'cancelled', 'expired'],
  confirmed: ['partially_shipped', 'shipped', 'cancelled'],
  partially_shipped: ['shipped', 'delivered', 'returned_to_origin'],
  shipped: ['delivered', 'returned_to_origin'],
  delivered: ['refunded'],
  returned_to_origin: ['refunded'],
  cancelled: [],
  expired: [],
  rejected: [],
  refunded: [],
};

export const orderMachine = defineMachine('order', orderStates, initialStates, transitions);

export function isOrderState(value: string): value is OrderState {
  return orderMachine.isState(value);
}

export function decideTransition(from: OrderState, to: OrderState): TransitionDecision {
  return orderMachine.decide(from, to);
}

/** Problems with an order transition table: unknown states, states nothing reaches. Empty when sound. */
export function checkMachine(table: { readonly [state: string]: readonly string[] }, initial: readonly string[]): string[] {
  return machineProblems(orderStates, table, initial);
}
