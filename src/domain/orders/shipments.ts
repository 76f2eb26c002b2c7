// A shipment's machine (docs/lifecycle.md): a parcel is dispatched, then delivered, or it fails at
// the door and is sent again (a reattempt) or returned to origin: rto_initiated, then rto_received
// when it is back at the seller (its units go back on hand). The database's
// shipment_transition_rules holds the same table.
import { defineMachine } from '../machine.ts';

export const shipmentStates = ['dispatched', 'delivered', 'delivery_failed', 'rto_initiated', 'rto_received'] as const;
export type ShipmentState = (typeof shipmentStates)[number];

export const shipmentTransitions: { readonly [S in ShipmentState]: readonly ShipmentState[] } = {
  dispatched: ['delivered', 'delivery_failed', 'rto_initiated'],
  delivered: [],
  delivery_failed: ['dispatched', 'rto_initiated'],
  rto_initiated: ['rto_received'],
  rto_received: [],
};

export const shipmentMachine = defineMachine('shipment', shipmentStates, ['dispatched'], shipmentTransitions);

/** A shipment still on its way (its order is not done with it). */
export const openShipmentStates: readonly ShipmentState[] = ['dispatched', 'delivery_failed', 'rto_initiated'];

/** The commands that move a shipment, and where each takes it. */
export const shipmentMoves = {
  'shipment.deliver': 'delivered',
  'shipment.fail': 'delivery_failed',
  'shipment.reattempt': 'dispatched',
  'shipment.rto': 'rto_initiated',
  'shipment.rto_receive': 'rto_received',
} as const satisfies Record<string, ShipmentState>;
export type ShipmentMove = keyof typeof shipmentMoves;
