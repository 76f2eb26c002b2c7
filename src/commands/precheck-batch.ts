// The handlers' prechecks (handlers.ts) for many commands at once: for the types a bulk import
// writes, one query per kind of lookup for the whole batch instead of one per command; any other
// type falls back on its handler's own precheck. Same refusals, same codes and messages (a test
// holds each equal to the handler's). Like every precheck it reads without locks and only spares the
// write path commands that are obviously refused: the handler's apply, under its row locks, decides.
import { z } from 'zod';
import type { Queryable } from '../db/pool.ts';
import { sql } from '../db/sql.ts';
import type { Command, CommandOf, OutcomeError } from '../domain/commands.ts';
import { handlerFor } from './handlers.ts';
import { refuse } from './outcome.ts';

async function existing(db: Queryable, table: 'sellers' | 'skus', values: ReadonlySet<string>): Promise<ReadonlySet<string>> {
  if (values.size === 0) return new Set();
  const column = table === 'sellers' ? sql.identifier(['handle']) : sql.identifier(['code']);
  const rows = await db.anyFirst(sql.type(z.object({ v: z.string() }))`
    select ${column} as v from ${sql.identifier([table])} where ${column} = any(${sql.array([...values], 'text')})`);
  return new Set(rows);
}

/** For each command, in order: its precheck's refusal, or null when it may go ahead. */
export async function precheckBatch(db: Queryable, commands: readonly Command[]): Promise<readonly (OutcomeError | null)[]> {
  const adds = commands.filter((c): c is CommandOf<'sku.add'> => c.type === 'sku.add');
  const receives = commands.filter((c): c is CommandOf<'stock.receive'> => c.type === 'stock.receive');
  const sellers = await existing(db, 'sellers', new Set(adds.map((c) => c.payload.seller)));
  const skus = await existing(db, 'skus', new Set([...adds.map((c) => c.payload.code), ...receives.map((c) => c.payload.sku)]));
  const results: (OutcomeError | null)[] = [];
  for (const command of commands) {
    if (command.type === 'sku.add') {
      const p = command.payload;
      if (!sellers.has(p.seller)) results.push(refuse('not_found', `seller not found: ${p.seller}`, { seller: p.seller }));
      else if (skus.has(p.code)) results.push(refuse('conflict', `SKU ${p.code} already exists`, { sku: p.code }));
      else results.push(null);
    } else if (command.type === 'stock.receive') {
      const p = command.payload;
      results.push(skus.has(p.sku) ? null : refuse('not_found', `SKU not found: ${p.sku}`, { sku: p.sku }));
    } else {
      results.push(await handlerFor(command).precheck(db, command.payload as never));
    }
  }
  return results;
}
