// Runtime settings: each key has a zod schema and a default. Values live in the `settings` table;
// a missing row means the default.
import { z } from 'zod';

export const settingSchemas = {
  reservation_ttl_seconds: z
    .number()
    .int()
    .min(10)
    .max(7 * 24 * 3600),
  commission_bps: z.number().int().min(0).max(10_000),
  idempotency_retention_hours: z
    .number()
    .int()
    .min(1)
    .max(24 * 365),
} as const;
export type SettingKey = keyof typeof settingSchemas;
export type SettingValue<K extends SettingKey> = z.infer<(typeof settingSchemas)[K]>;

export const settingDefaults: { readonly [K in SettingKey]: SettingValue<K> } = {
  reservation_ttl_seconds: 900,
  commission_bps: 1000,
  idempotency_retention_hours: 720,
};
