// SQL for payments and the double-entry ledger. Debits are positive, credits negative; every
// journal entry must sum to zero per currency, checked by a deferred trigger at commit.
import { z } from 'zod';
import { registerConstraint } from './errors.ts';
import type { CommandRef } from './inventory.ts';
import type { DatabaseTransaction, Queryable } from './pool.ts';
import { sql } from './sql.ts';

registerConstraint('payments_payment_ref_key', 'conflict');

export type UnappliedReason = 'amount_mismatch' | 'currency_mismatch' | 'order_not_pending' | 'order_not_found';

export const PaymentRow = z.object({
  payment_ref: z.string(),
  order_ref: z.string(),
  amount: z.bigint(),
  currency: z.string(),
  state: z.string(),
  reason: z.string().nullable(),
  received_at: z.string(),
});
export type PaymentRow = z.infer<typeof PaymentRow>;

const paymentColumns = sql.fragment`payment_ref, order_ref, amount, currency, state, reason, received_at`;

export async function findPayment(db: Queryable, paymentRef: string): Promise<PaymentRow | null> {
  return db.maybeOne(sql.type(PaymentRow)`select ${paymentColumns} from payments where payment_ref = ${paymentRef}`);
}

export async function recordPayment(
  tx: DatabaseTransaction,
  payment: {
    paymentRef: string;
    orderRef: string;
    orderId: string | null;
    amount: bigint;
    currency: string;
    reason: UnappliedReason | null;
    command: CommandRef;
  },
): Promise<PaymentRow> {
  return tx.one(sql.type(PaymentRow)`
    insert into payments (payment_ref, order_ref, order_id, amount, currency, state, reason, command_scope, command_key)
    values (${payment.paymentRef}, ${payment.orderRef}, ${payment.orderId}::uuid, ${payment.amount}, ${payment.currency},
            ${payment.reason === null ? 'applied' : 'unapplied'}, ${payment.reason}, ${payment.command?.scope ?? null}, ${payment.command?.key ?? null})
    returning ${paymentColumns}`);
}

export async function unappliedPayments(db: Queryable, limit: number): Promise<readonly PaymentRow[]> {
  return db.any(sql.type(PaymentRow)`
    select ${paymentColumns} from payments where state = 'unapplied' order by received_at desc, id desc limit ${limit}`);
}

export type Posting = { readonly account: string; readonly amount: bigint };

export async function postEntry(
  tx: DatabaseTransaction,
  entry: {
    orderId: string;
    kind: 'capture' | 'cancellation' | 'refund' | 'delivery';
    currency: string;
    postings: readonly Posting[];
    command: CommandRef;
  },
): Promise<void> {
  const postings = entry.postings.filter((p) => p.amount !== 0n);
  const id = await tx.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    insert into journal_entries (order_id, kind, command_scope, command_key)
    values (${entry.orderId}::uuid, ${entry.kind}, ${entry.command?.scope ?? null}, ${entry.command?.key ?? null}) returning id`);
  await tx.query(sql.unsafe`
    insert into postings (entry_id, account, amount, currency)
    select ${id}, p.account, p.amount, ${entry.currency}
    from unnest(${sql.array(
      postings.map((p) => p.account),
      'text',
    )}, ${sql.array(
      postings.map((p) => p.amount.toString()),
      'int8',
    )}) as p(account, amount)`);
}

/** The capture of a paid order: PSP clearing debited, seller payables and commission credited. */
export async function captureOrder(
  tx: DatabaseTransaction,
  order: { id: string; currency: string; total: bigint },
  command: CommandRef,
): Promise<void> {
  const splits = await tx.any(sql.type(z.object({ seller: z.string(), commission: z.bigint(), payout: z.bigint() }))`
    select seller, commission, payout from order_seller_splits where order_id = ${order.id}::uuid order by seller`);
  const commission = splits.reduce((sum, s) => sum + s.commission, 0n);
  // Each seller's money captured whole: the commission kept is then the frozen one (the same rule).
  await tx.query(sql.unsafe`
    update order_seller_splits set captured = subtotal, commission_kept = commission
    where order_id = ${order.id}::uuid and captured = 0 and refunded = 0`);
  await postEntry(tx, {
    orderId: order.id,
    kind: 'capture',
    currency: order.currency,
    command,
    postings: [
      { account: 'psp_clearing', amount: order.total },
      ...splits.map((s) => ({ account: `seller_payable:${s.seller}`, amount: -s.payout })),
      { account: 'platform_commission', amount: -commission },
    ],
  });
}

export const BalanceRow = z.object({ account: z.string(), currency: z.string(), balance: z.bigint() });

export async function balances(db: Queryable, orderId?: string): Promise<readonly z.infer<typeof BalanceRow>[]> {
  return db.any(sql.type(BalanceRow)`
    select p.account, p.currency, sum(p.amount)::int8 as balance
    from postings p join journal_entries e on e.id = p.entry_id
    where ${orderId === undefined ? sql.fragment`true` : sql.fragment`e.order_id = ${orderId}::uuid`}
    group by p.account, p.currency order by p.account, p.currency`);
}
