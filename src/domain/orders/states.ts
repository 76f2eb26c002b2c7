// The order state machine (docs/contract.md, Orders) as data. `decideTransition` is the only judge of a
// move; the database's order_transition_rules holds the same table and its trigger refuses anything
// else. The table is checked when this module loads: every state known, every state reachable.

export const orderStates = ['pending', 'confirmed', 'shipped', 'delivered', 'cancelled', 'expired', 'rejected', 'refunded'] as const;
export type OrderState = (typeof orderStates)[number];

/** States a new order may start in. */
export const initialStates: readonly OrderState[] = ['pending', 'rejected'];

export const transitions: { readonly [S in OrderState]: readonly OrderState[] } = {
  pending: ['confirmed', 'cancelled', 'expired'],
  confirmed: ['shipped', 'cancelled'],
  shipped: ['delivered'],
  delivered: ['refunded'],
  cancelled: [],
  expired: [],
  rejected: [],
  refunded: [],
};

export function isOrderState(value: string): value is OrderState {
  return (orderStates as readonly string[]).includes(value);
}

export type TransitionDecision =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'transition_not_allowed'; readonly message: string; readonly details: Record<string, unknown> };

export function decideTransition(from: OrderState, to: OrderState): TransitionDecision {
  if (transitions[from].includes(to)) return { ok: true };
  const allowed = transitions[from];
  return {
    ok: false,
    code: 'transition_not_allowed',
    message: `cannot move an order from ${from} to ${to}${allowed.length ? ` (from ${from}: ${allowed.join(', ')})` : ` (${from} is final)`}`,
    details: { from, to, allowed },
  };
}

/** Problems with a transition table: unknown states, states nothing reaches. Empty when sound. */
export function checkMachine(table: { readonly [state: string]: readonly string[] }, initial: readonly string[]): string[] {
  const problems: string[] = [];
  const known = new Set<string>(orderStates);
  for (const [from, tos] of Object.entries(table)) {
    if (!known.has(from)) problems.push(`unknown state ${from}`);
    for (const to of tos) if (!known.has(to)) problems.push(`unknown state ${to} (from ${from})`);
  }
  for (const state of orderStates) if (!(state in table)) problems.push(`state ${state} has no row`);
  const reached = new Set<string>(initial);
  for (let grew = true; grew; ) {
    grew = false;
    for (const from of reached) {
      for (const to of table[from] ?? []) {
        if (!reached.has(to)) {
          reached.add(to);
          grew = true;
        }
      }
    }
  }
  for (const state of orderStates) if (!reached.has(state)) problems.push(`state ${state} is unreachable`);
  return problems;
}

const problems = checkMachine(transitions, initialStates);
if (problems.length > 0) throw new Error(`the order state machine is broken: ${problems.join('; ')}`);
