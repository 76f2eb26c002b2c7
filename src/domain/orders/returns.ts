// A return's machine (docs/lifecycle.md): requested by the buyer, then received at the seller
// (restocked or written off) or rejected. The database's return_transition_rules holds the same table.
import { defineMachine } from '../machine.ts';

export const returnStates = ['requested', 'received', 'rejected'] as const;
export type ReturnState = (typeof returnStates)[number];

export const returnTransitions: { readonly [S in ReturnState]: readonly ReturnState[] } = {
  requested: ['received', 'rejected'],
  received: [],
  rejected: [],
};

export const returnMachine = defineMachine('return', returnStates, ['requested'], returnTransitions);
