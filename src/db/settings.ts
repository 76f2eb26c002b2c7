// Reads typed settings: the stored value parsed by its zod schema, or the default when unset.
import { z } from 'zod';
import { type SettingKey, type SettingValue, settingDefaults, settingSchemas } from '../domain/settings.ts';
import { InvariantError } from '../errors.ts';
import type { Queryable } from './pool.ts';
import { sql } from './sql.ts';

const StoredValue = z.object({ value: z.unknown() });

export async function readSetting<K extends SettingKey>(db: Queryable, key: K): Promise<SettingValue<K>> {
  return settingValue(key, await db.maybeOneFirst(sql.type(StoredValue)`select value from settings where key = ${key}`));
}

/** A stored value (read by another query) parsed by its schema; the default when unset. */
export function settingValue<K extends SettingKey>(key: K, raw: unknown): SettingValue<K> {
  if (raw === null || raw === undefined) return settingDefaults[key];
  const parsed = settingSchemas[key].safeParse(raw);
  if (!parsed.success) throw new InvariantError(`setting ${key} holds an invalid value: ${JSON.stringify(raw)}`);
  return parsed.data as SettingValue<K>;
}
