// A state machine as data: its states, the states a new row may start in, and the moves allowed.
// `defineMachine` checks the table when the defining module loads (every state known, every state
// reachable) and gives the one judge of a move. The order's, a shipment's and a return's machines
// are defined with it (src/domain/orders/); the database holds the same tables (…_transition_rules)
// and its triggers refuse anything else, SQL included.

export type TransitionDecision =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'transition_not_allowed'; readonly message: string; readonly details: Record<string, unknown> };

export type Machine<S extends string> = {
  /** What the rows are called in messages ("order", "shipment", "return"). */
  readonly name: string;
  readonly states: readonly S[];
  readonly initial: readonly S[];
  readonly transitions: { readonly [K in S]: readonly S[] };
  readonly isState: (value: string) => value is S;
  readonly decide: (from: S, to: S) => TransitionDecision;
};

/** Problems with a transition table over `states`: unknown states, states nothing reaches. Empty when sound. */
export function machineProblems(
  states: readonly string[],
  table: { readonly [state: string]: readonly string[] },
  initial: readonly string[],
): string[] {
  const problems: string[] = [];
  const known = new Set<string>(states);
  for (const [from, tos] of Object.entries(table)) {
    if (!known.has(from)) problems.push(`unknown state ${from}`);
    for (const to of tos) if (!known.has(to)) problems.push(`unknown state ${to} (from ${from})`);
  }
  for (const state of states) if (!(state in table)) problems.push(`state ${state} has no row`);
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
  for (const state of states) if (!reached.has(state)) problems.push(`state ${state} is unreachable`);
  return problems;
}

export function defineMachine<S extends string>(
  name: string,
  states: readonly S[],
  initial: readonly S[],
  transitions: { readonly [K in S]: readonly S[] },
): Machine<S> {
  const problems = machineProblems(states, transitions, initial);
  if (problems.length > 0) throw new Error(`the ${name} state machine is broken: ${problems.join('; ')}`);
  return {
    name,
    states,
    initial,
    transitions,
    isState: (value: string): value is S => (states as readonly string[]).includes(value),
    decide(from, to) {
      if (transitions[from].includes(to)) return { ok: true };
      const allowed = transitions[from];
      return {
        ok: false,
        code: 'transition_not_allowed',
        message: `cannot move ${name === 'order' ? 'an order' : `a ${name}`} from ${from} to ${to}${allowed.length ? ` (from ${from}: ${allowed.join(', ')})` : ` (${from} is final)`}`,
        details: { from, to, allowed },
      };
    },
  };
}
