// haat payments unapplied · haat ledger balances
import type { Command } from 'commander';
import { balances, unappliedPayments } from '../../db/ledger.ts';
import { findOrder } from '../../db/orders.ts';
import { OrderKey } from '../../domain/commands.ts';
import { type Currency, formatMoney, moneyJson } from '../../domain/money.ts';
import { notFound } from '../../errors.ts';
import { humanTime } from '../../time.ts';
import { type BaseDeps, buildDeps } from '../context.ts';
import { smallInteger } from '../options.ts';
import { table } from '../output.ts';

export function registerMoneyCommands(program: Command, base: BaseDeps): void {
  program
    .command('payments')
    .description('payments')
    .command('unapplied')
    .description('payments that could not be applied (late, mismatched): kept, never dropped; newest first')
    .option('--limit <n>', 'at most this many (1–10000, default 100)')
    .action(async (opts: { limit?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const limit = opts.limit === undefined ? 100 : smallInteger('--limit', opts.limit, 1, 10_000);
      const rows = await deps.withDatabase((db) => unappliedPayments(db.pool, limit));
      const json = rows.map((p) => ({
        payment_ref: p.payment_ref,
        order_ref: p.order_ref,
        amount: moneyJson({ amount: p.amount, currency: p.currency as Currency }),
        reason: p.reason,
        received_at: p.received_at,
      }));
      deps.output.result(json, () =>
        rows.length === 0
          ? 'no unapplied payments'
          : table(
              ['PAYMENT', 'ORDER', 'AMOUNT', 'REASON', 'RECEIVED AT'],
              rows.map((p) => [
                p.payment_ref,
                p.order_ref,
                formatMoney({ amount: p.amount, currency: p.currency as Currency }),
                p.reason ?? '',
                humanTime(p.received_at),
              ]),
            ),
      );
    });

  program
    .command('ledger')
    .description('the double-entry ledger')
    .command('balances')
    .description('balance of every account (debits positive, credits negative), for all orders or one')
    .option('--order <order>', 'only this order (id or ref)')
    .action(async (opts: { order?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const key = opts.order === undefined ? undefined : OrderKey.parse(opts.order);
      const rows = await deps.withDatabase(async (db) => {
        if (key === undefined) return balances(db.pool);
        const order = await findOrder(db.pool, key);
        if (!order) throw notFound('order', key);
        return balances(db.pool, order.id);
      });
      const json = rows.map((r) => ({ account: r.account, balance: moneyJson({ amount: r.balance, currency: r.currency as Currency }) }));
      deps.output.result(json, () =>
        rows.length === 0
          ? 'no postings'
          : table(
              ['ACCOUNT', 'BALANCE'],
              rows.map((r) => [r.account, formatMoney({ amount: r.balance, currency: r.currency as Currency })]),
            ),
      );
    });
}
