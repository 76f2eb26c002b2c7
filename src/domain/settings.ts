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
  /** How long an outbound webhook attempt may take, in ms (the contract's 15 s is the most). */
  webhook_timeout_ms: z.number().int().min(100).max(15_000),
  /** How long one second of the outbound retry schedule lasts, in ms: 1,000; tests shorten it (0: retry at once). */
  webhook_retry_second_ms: z.number().int().min(0).max(1_000),
} as const;
export type SettingKey = keyof typeof settingSchemas;
export type SettingValue<K extends SettingKey> = z.infer<(typeof settingSchemas)[K]>;

export const settingDefaults: { readonly [K in SettingKey]: SettingValue<K> } = {
  reservation_ttl_seconds: 900,
  commission_bps: 1000,
  idempotency_retention_hours: 720,
  webhook_timeout_ms: 15_000,
  webhook_retry_second_ms: 1_000,
};
