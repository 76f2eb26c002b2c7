// SQL for operator controls: settings, feature flags, maintenance mode and the audit log. Every
// change locks its row, writes the new value and its audit row in one transaction.
import { z } from 'zod';
import { toJsonText } from '../domain/json.ts';
import { type SettingKey, settingDefaults, settingSchemas } from '../domain/settings.ts';
import { notFound } from '../errors.ts';
import type { DatabaseTransaction, Queryable } from './pool.ts';
import { sql } from './sql.ts';

export type AuditEntry = { actor: string; action: string; target: string; oldValue: unknown; newValue: unknown; reason: string };

export async function audit(tx: DatabaseTransaction, entry: AuditEntry): Promise<void> {
  await tx.query(sql.unsafe`
    insert into audit_log (actor, action, target, old_value, new_value, reason)
    values (${entry.actor}, ${entry.action}, ${entry.target}, ${toJsonText(entry.oldValue ?? null)}::jsonb, ${toJsonText(entry.newValue ?? null)}::jsonb, ${entry.reason})`);
}

export const AuditRow = z.object({
  id: z.bigint(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  old_value: z.unknown(),
  new_value: z.unknown(),
  reason: z.string(),
});

export async function listAudit(db: Queryable, options: { limit: number; actor?: string; target?: string }) {
  return db.any(sql.type(AuditRow)`
    select id, at, actor, action, target, old_value, new_value, reason from audit_log
    where ${options.actor === undefined ? sql.fragment`true` : sql.fragment`actor = ${options.actor}`}
      and ${options.target === undefined ? sql.fragment`true` : sql.fragment`target = ${options.target}`}
    order by id desc limit ${options.limit}`);
}

export async function listSettings(db: Queryable): Promise<{ key: SettingKey; value: unknown; default: unknown }[]> {
  const rows = await db.any(sql.type(z.object({ key: z.string(), value: z.unknown() }))`select key, value from settings`);
  const stored = new Map(rows.map((r) => [r.key, r.value]));
  return (Object.keys(settingSchemas) as SettingKey[]).map((key) => ({
    key,
    value: stored.get(key) ?? settingDefaults[key],
    default: settingDefaults[key],
  }));
}

export async function setSetting(tx: DatabaseTransaction, key: SettingKey, value: unknown, actor: string, reason: string) {
  const old = await tx.maybeOneFirst(sql.type(z.object({ value: z.unknown() }))`select value from settings where key = ${key} for update`);
  await tx.query(sql.unsafe`
    insert into settings (key, value) values (${key}, ${toJsonText(value)}::jsonb)
    on conflict (key) do update set value = excluded.value, updated_at = now()`);
  const previous = old ?? settingDefaults[key];
  await audit(tx, { actor, action: 'settings.set', target: `setting:${key}`, oldValue: previous, newValue: value, reason });
  return { key, old_value: previous, new_value: value };
}

export const FlagRow = z.object({ name: z.string(), enabled: z.boolean(), description: z.string(), updated_at: z.string() });

export async function listFlags(db: Queryable) {
  return db.any(sql.type(FlagRow)`select name, enabled, description, updated_at from feature_flags order by name`);
}

/** The one question domain code asks about a flag. An unknown flag is off. */
export async function flagEnabled(db: Queryable, name: string): Promise<boolean> {
  return (
    (await db.maybeOneFirst(sql.type(z.object({ enabled: z.boolean() }))`select enabled from feature_flags where name = ${name}`)) ?? false
  );
}

export async function setFlag(tx: DatabaseTransaction, name: string, enabled: boolean, actor: string, reason: string) {
  const old = await tx.maybeOneFirst(
    sql.type(z.object({ enabled: z.boolean() }))`select enabled from feature_flags where name = ${name} for update`,
  );
  if (old === null) throw notFound('flag', name);
  await tx.query(sql.unsafe`update feature_flags set enabled = ${enabled}, updated_at = now() where name = ${name}`);
  await audit(tx, {
    actor,
    action: enabled ? 'flags.enable' : 'flags.disable',
    target: `flag:${name}`,
    oldValue: old,
    newValue: enabled,
    reason,
  });
  return { name, enabled, previous: old };
}

export const MaintenanceRow = z.object({ enabled: z.boolean(), message: z.string().nullable(), updated_at: z.string() });

export async function maintenanceStatus(db: Queryable) {
  return db.one(sql.type(MaintenanceRow)`select enabled, message, updated_at from maintenance`);
}

/**
 * Locks the maintenance row FOR SHARE in a command's transaction: the toggle (FOR UPDATE) waits for
 * every running command, and every command after the toggle sees it. Linearised.
 */
export async function maintenanceOnForCommand(tx: DatabaseTransaction): Promise<boolean> {
  return tx.oneFirst(sql.type(z.object({ enabled: z.boolean() }))`select enabled from maintenance for share`);
}

export async function setMaintenance(tx: DatabaseTransaction, enabled: boolean, message: string | null, actor: string, reason: string) {
  // Every command holds the row FOR SHARE while it runs; a FOR UPDATE would wait behind an endless
  // overlap of them (share lockers pass a waiting one). A table lock queues fairly: it waits for the
  // commands running now, and commands that come later wait for it. Plain reads are never blocked.
  await tx.query(sql.unsafe`lock table maintenance in exclusive mode`);
  const old = await tx.one(sql.type(MaintenanceRow)`select enabled, message, updated_at from maintenance for update`);
  const row = await tx.one(sql.type(MaintenanceRow)`
    update maintenance set enabled = ${enabled}, message = ${enabled ? message : null}, updated_at = now() returning enabled, message, updated_at`);
  await audit(tx, {
    actor,
    action: enabled ? 'maintenance.on' : 'maintenance.off',
    target: 'maintenance',
    oldValue: { enabled: old.enabled, message: old.message },
    newValue: { enabled: row.enabled, message: row.message },
    reason,
  });
  return row;
}
