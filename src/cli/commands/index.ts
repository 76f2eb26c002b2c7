// The command registry: every top-level command, its one-line summary, and the module that defines
// it, loaded only when that command runs (`import()` per group). `haat --help` reads this page and
// nothing else, so it starts as fast as Node itself; a test checks each module registers exactly the
// names and summaries listed here. To add a command group: write src/cli/commands/<group>.ts
// exporting a Registrar, and list its top-level commands below.
import type { Command } from 'commander';
import type { BaseDeps } from '../context.ts';

export type Registrar = (program: Command, base: BaseDeps) => void;

export type CommandGroup = {
  /** Top-level command name → its summary, as the module registers it. */
  readonly commands: Readonly<Record<string, string>>;
  load(): Promise<Registrar>;
};

export const commandGroups: readonly CommandGroup[] = [
  {
    commands: {
      up: 'run everything in one process: database (embedded unless DATABASE_URL), migrations, worker, cron, webhook intake',
      worker: 'run the background worker alone (run as many as you like)',
      intake: 'run the webhook intake alone',
    },
    load: async () => (await import('./services.ts')).registerServiceCommands,
  },
  { commands: { db: 'database migrations' }, load: async () => (await import('./db.ts')).registerDbCommands },
  { commands: { seller: 'sellers', sku: 'SKUs' }, load: async () => (await import('./catalog.ts')).registerCatalogCommands },
  {
    commands: { stock: 'inventory: on hand, reserved, available' },
    load: async () => (await import('./stock.ts')).registerStockCommands,
  },
  { commands: { import: 'bulk import from CSV: SKUs, stock' }, load: async () => (await import('./import.ts')).registerImportCommands },
  {
    commands: {
      order: 'orders: place, read, and move through their states',
      reservations: 'stock held for pending orders',
    },
    load: async () => (await import('./orders.ts')).registerOrderCommands,
  },
  {
    commands: {
      shipment: 'shipments: delivered, failed at the door, sent again, returned to origin',
      return: 'returns: requested, received (restocked or written off), rejected',
    },
    load: async () => (await import('./lifecycle.ts')).registerLifecycleCommands,
  },
  {
    commands: { payments: 'payments', ledger: 'the double-entry ledger' },
    load: async () => (await import('./money.ts')).registerMoneyCommands,
  },
  {
    commands: { webhook: 'webhooks, for testing and replays' },
    load: async () => (await import('./webhook.ts')).registerWebhookCommands,
  },
  {
    commands: {
      settings: 'runtime settings (typed, audited)',
      flags: 'feature flags (audited)',
      maintenance: 'maintenance mode: hold domain writes, keep accepting webhooks',
      audit: 'the audit log, newest first',
      jobs: 'the job queue',
    },
    load: async () => (await import('./operations.ts')).registerOperationCommands,
  },
  {
    commands: {
      endpoints: 'outbound webhook endpoints: where haat tells upstream what happened',
      deliveries: 'outbound webhook deliveries and their attempts',
    },
    load: async () => (await import('./endpoints.ts')).registerEndpointCommands,
  },
  {
    commands: { events: 'accepted webhook events: state and outcome' },
    load: async () => (await import('./events.ts')).registerEventCommands,
  },
  {
    commands: { reconcile: 'check every invariant (docs/invariants.md); exit 0 only when all hold' },
    load: async () => (await import('./reconcile.ts')).registerReconcileCommand,
  },
  {
    commands: { demo: 'a scripted tour on a fresh database that shows each guarantee holding' },
    load: async () => (await import('./demo.ts')).registerDemoCommands,
  },
];

export function groupOf(name: string): CommandGroup | undefined {
  return commandGroups.find((group) => Object.hasOwn(group.commands, name));
}
