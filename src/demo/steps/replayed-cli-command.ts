// Guarantee: a CLI command replayed with its idempotency key has one effect and the same outcome;
// the key reused for another command is refused.
import { z } from 'zod';
import { sql } from '../../db/sql.ts';
import { toJsonText } from '../../domain/json.ts';
import { exitOf, movementCount, stock } from '../reads.ts';
import type { Step } from '../step.ts';

const SKU = 'BHUT-JOLOKIA';
const KEY = 'restock-bhut-jolokia-1';

export const replayedCliCommand: Step = {
  name: 'replayed_cli_command',
  claim: 'A replayed CLI command has one effect',
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 9_900, 0);
    const receive = (qty: string) => ctx.haat('stock', 'receive', SKU, qty, '--idempotency-key', KEY, '--json');
    const first = await receive('12');
    const replay = await receive('12');
    const changed = await receive('13');
    check('the first run exits', exitOf(first), 'exit 0');
    check('the replay exits', exitOf(replay), 'exit 0');
    check('the replay prints the same outcome', toJsonText(replay.json), toJsonText(first.json));
    check('the same key with 13 units exits', exitOf(changed), 'exit 3 idempotency_conflict');
    const after = await stock(ctx.pool, SKU);
    check(`${SKU} on hand`, after.on_hand, 12n);
    check(`movements of ${SKU}`, await movementCount(ctx.pool, SKU), 1n);
    const byKey = await ctx.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
      select count(*) as n from inventory_movements where command_scope = 'cli' and command_key = ${KEY}`);
    check(`movements of key ${KEY}`, byKey, 1n);
    return {
      did: `\`haat stock receive ${SKU} 12 --idempotency-key ${KEY}\` run twice, then with 13 units and the same key`,
      saw: `${exitOf(first)}, then ${exitOf(replay)} with ${toJsonText(replay.json) === toJsonText(first.json) ? 'the same' : 'another'} outcome; on hand ${after.on_hand} from ${byKey} movement; with 13: ${exitOf(changed)}`,
    };
  },
};
