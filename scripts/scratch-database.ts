// For the soak run and the benchmark: a fresh, empty database on the configured server (embedded
// unless DATABASE_URL), dropped again by drop(); and strict integer options.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { resolveDatabase } from '../src/db/connect.ts';
import { parseStrictInteger } from '../src/domain/integers.ts';
import type { Logger } from '../src/log.ts';

export type ScratchDatabase = { readonly url: string; drop(): Promise<void> };

export async function createScratchDatabase(prefix: string, log: Logger): Promise<ScratchDatabase> {
  const target = await resolveDatabase(loadConfig(), log);
  const name = `${prefix}_${randomBytes(3).toString('hex')}`;
  const at = (database: string) => Object.assign(new URL(target.url), { pathname: `/${database}` }).toString();
  const admin = new pg.Client({ connectionString: at('postgres') });
  await admin.connect();
  await admin.query(`create database ${name}`);
  return {
    url: at(name),
    drop: async () => {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
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
