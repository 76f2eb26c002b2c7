// Writes through the real write path (submit, then apply with the task's code), for test set-up.
import { randomUUID } from 'node:crypto';
import { applyCommand } from '../../src/commands/apply-command.ts';
import { submitCommand } from '../../src/commands/submit-command.ts';
import type { DatabasePool } from '../../src/db/pool.ts';
import { Command, type Outcome } from '../../src/domain/commands.ts';
import { createLogger } from '../../src/log.ts';

export const silent = createLogger('silent');

export async function apply(pool: DatabasePool, input: { type: string; payload: unknown }, key: string = randomUUID()): Promise<Outcome> {
  const command = Command.parse(input);
  const submitted = await submitCommand(pool, { scope: 'test', key, command, actor: 'test' });
  if (submitted.outcome) return submitted.outcome;
  const outcome = await applyCommand(pool, 'test', key, silent);
  if (!outcome) throw new Error('the key vanished');
  return outcome;
}

export async function mustApply(pool: DatabasePool, input: { type: string; payload: unknown }, key?: string): Promise<unknown> {
  const outcome = await apply(pool, input, key);
  if (!outcome.ok) throw new Error(`${input.type} refused: ${outcome.error.code} ${outcome.error.message}`);
  return outcome.result;
}

/** A seller and SKUs with stock, through the real commands. */
export async function seedCatalog(pool: DatabasePool, skus: Readonly<Record<string, number>>, seller = 'tea-house'): Promise<void> {
  await mustApply(pool, { type: 'seller.add', payload: { handle: seller, name: 'Tea House' } });
  for (const [code, qty] of Object.entries(skus)) {
    await mustApply(pool, { type: 'sku.add', payload: { code, seller, price: '12999', currency: 'INR' } });
    if (qty > 0) await mustApply(pool, { type: 'stock.receive', payload: { sku: code, qty: String(qty) } });
  }
}
