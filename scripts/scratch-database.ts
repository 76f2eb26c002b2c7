// For the soak run and the benchmark: a fresh, empty database on the configured server (embedded
// unless DATABASE_URL), dropped again by drop(); and strict integer options.
import { loadConfig } from '../src/config.ts';
import { resolveDatabase } from '../src/db/connect.ts';
import { createScratchDatabase as createOn } from '../src/db/scratch-database.ts';
import { parseStrictInteger } from '../src/domain/integers.ts';
import type { Logger } from '../src/log.ts';

export type ScratchDatabase = { readonly url: string; drop(): Promise<void> };

export async function createScratchDatabase(prefix: string, log: Logger): Promise<ScratchDatabase> {
  const target = await resolveDatabase(loadConfig(), log);
  const scratch = await createOn(target.url, prefix);
  return {
    url: scratch.url,
    drop: async () => {
      await scratch.drop();
      await target.release();
    },
  };
}

/** A command-line integer option: plain digits within [min, max], or the script stops. */
export function intOption(name: string, raw: string | undefined, min: number, max: number): number {
  const parsed = parseStrictInteger(raw ?? '', { min: BigInt(min), max: BigInt(max) });
  if (!parsed.ok) throw new Error(`--${name} ${parsed.reason}`);
  return Number(parsed.value);
}
