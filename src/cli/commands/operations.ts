// haat settings · flags · maintenance · audit · jobs — operator controls. None of these is ever
// refused by maintenance mode: no setting or flag can lock an operator out.
import type { Command } from 'commander';
import { z } from 'zod';
import { audit, listAudit, listFlags, listSettings, maintenanceStatus, setFlag, setMaintenance, setSetting } from '../../db/operations.ts';
import { sql } from '../../db/sql.ts';
import { inTransaction } from '../../db/transaction.ts';
import { Text } from '../../domain/catalog.ts';
import { toJsonText } from '../../domain/json.ts';
import { type SettingKey, settingSchemas } from '../../domain/settings.ts';
import { invalidInput, notFound } from '../../errors.ts';
import { humanTime } from '../../time.ts';
import { type BaseDeps, buildDeps, type Deps } from '../context.ts';
import { smallInteger } from '../options.ts';
import { keyValues, table } from '../output.ts';
import { confirmOrRefuse, requireValue } from '../prompts.ts';

const settingKeys = Object.keys(settingSchemas) as SettingKey[];

export async function reason(deps: Deps): Promise<string> {
  return requireValue(deps.prompter, deps.globals.reason, {
    name: 'reason',
    message: 'Reason (for the audit log)',
    validate: (v) => v.trim().length > 0 || 'a reason is required',
  });
}

async function pick<T extends string>(
  deps: Deps,
  raw: string | undefined,
  name: string,
  message: string,
  choices: readonly T[],
): Promise<string> {
  if (raw !== undefined) return raw;
  if (!deps.prompter.interactive) throw invalidInput(`missing argument: ${name}`, { missing: name });
  return deps.prompter.select({ name, message, choices: choices.map((value) => ({ value })) });
}

function parseSettingValue(key: SettingKey, raw: string): unknown {
  const schema = settingSchemas[key];
  if (!/^-?[0-9]+$/.test(raw)) throw invalidInput(`${key} must be a whole number`, { key, value: raw });
  const parsed = schema.safeParse(Number(raw));
  if (!parsed.success) throw invalidInput(`${key}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { key, value: raw });
  return parsed.data;
}

export function registerOperationCommands(program: Command, base: BaseDeps): void {
  const settings = program.command('settings').description('runtime settings (typed, audited)');
  settings
    .command('list')
    .description('every setting with its value and default')
    .action(async (_o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const rows = await deps.withDatabase((db) => listSettings(db.pool));
      deps.output.result(rows, () =>
        table(
          ['KEY', 'VALUE', 'DEFAULT'],
          rows.map((r) => [r.key, toJsonText(r.value), toJsonText(r.default)]),
        ),
      );
    });
  settings
    .command('get')
    .description('one setting')
    .argument('[key]', settingKeys.join(' | '))
    .action(async (raw: string | undefined, _o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const key = await pick(deps, raw, 'key', 'Setting', settingKeys);
      const row = (await deps.withDatabase((db) => listSettings(db.pool))).find((r) => r.key === key);
      if (!row) throw notFound('setting', key);
      deps.output.result(row, () => toJsonText(row.value));
    });
  settings
    .command('set')
    .description('change a setting (needs --reason; audited)')
    .argument('[key]', settingKeys.join(' | '))
    .argument('[value]', 'the new value')
    .action(async (rawKey: string | undefined, rawValue: string | undefined, _o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const key = await pick(deps, rawKey, 'key', 'Setting', settingKeys);
      if (!settingKeys.includes(key as SettingKey)) throw notFound('setting', key);
      const value = parseSettingValue(
        key as SettingKey,
        await requireValue(deps.prompter, rawValue, { name: 'value', message: `New value for ${key}` }),
      );
      const why = await reason(deps);
      const result = await deps.withDatabase((db) =>
        inTransaction(db.pool, (tx) => setSetting(tx, key as SettingKey, value, deps.globals.actor, why)),
      );
      deps.output.result(result, () => `${key}: ${toJsonText(result.old_value)} → ${toJsonText(result.new_value)}`);
    });

  const flags = program.command('flags').description('feature flags (audited)');
  flags
    .command('list')
    .description('every flag')
    .action(async (_o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const rows = await deps.withDatabase((db) => listFlags(db.pool));
      deps.output.result(rows, () =>
        table(
          ['FLAG', 'ENABLED', 'DESCRIPTION'],
          rows.map((r) => [r.name, String(r.enabled), r.description]),
        ),
      );
    });
  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    flags
      .command(verb)
      .description(`${verb} a flag (needs --reason; audited)`)
      .argument('[flag]', 'flag name')
      .action(async (raw: string | undefined, _o: unknown, command: Command) => {
        const deps = buildDeps(base, command, 'warn');
        const names = await deps.withDatabase(async (db) => (await listFlags(db.pool)).map((f) => f.name));
        const name = await pick(deps, raw, 'flag', 'Flag', names);
        const why = await reason(deps);
        const result = await deps.withDatabase((db) => inTransaction(db.pool, (tx) => setFlag(tx, name, enabled, deps.globals.actor, why)));
        deps.output.result(result, () => `${name}: ${result.previous} → ${enabled}`);
      });
  }

  const maintenance = program.command('maintenance').description('maintenance mode: hold domain writes, keep accepting webhooks');
  maintenance
    .command('status')
    .description('is maintenance mode on?')
    .action(async (_o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const row = await deps.withDatabase((db) => maintenanceStatus(db.pool));
      deps.output.result(row, () =>
        keyValues([
          ['maintenance', row.enabled ? 'on' : 'off'],
          ...(row.message ? [['message', row.message] as const] : []),
          ['since', humanTime(row.updated_at)],
        ]),
      );
    });
  maintenance
    .command('on')
    .description('turn maintenance mode on (asks to confirm; --yes skips; needs --reason)')
    .option('--message <m>', 'shown to operators whose writes are refused')
    .action(async (opts: { message?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const why = await reason(deps);
      const message = opts.message === undefined ? undefined : Text(500).safeParse(opts.message);
      if (message && !message.success) throw invalidInput(`--message ${message.error.issues[0]?.message}`, { option: '--message' });
      await confirmOrRefuse(deps.prompter, deps.globals.yes, 'Turn maintenance mode on? Domain writes will wait until it is off.');
      const row = await deps.withDatabase((db) =>
        inTransaction(db.pool, (tx) => setMaintenance(tx, true, message?.data ?? null, deps.globals.actor, why)),
      );
      deps.output.result(row, () => 'maintenance mode is on');
    });
  maintenance
    .command('off')
    .description('turn maintenance mode off (needs --reason); always allowed')
    .action(async (_o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const why = await reason(deps);
      const row = await deps.withDatabase((db) => inTransaction(db.pool, (tx) => setMaintenance(tx, false, null, deps.globals.actor, why)));
      deps.output.result(row, () => 'maintenance mode is off');
    });

  program
    .command('audit')
    .description('the audit log, newest first')
    .option('--limit <n>', 'at most this many (1–10000, default 50)')
    .option('--actor <a>', 'only this actor')
    .option('--target <t>', 'only this target, e.g. maintenance, flag:<name>, setting:<key>')
    .action(async (opts: { limit?: string; target?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const limit = opts.limit === undefined ? 50 : smallInteger('--limit', opts.limit, 1, 10_000);
      // --actor is also the global option naming who acts; here it filters.
      const actor = command.optsWithGlobals<{ actor?: string }>().actor;
      const rows = await deps.withDatabase((db) =>
        listAudit(db.pool, {
          limit,
          ...(actor === undefined ? {} : { actor }),
          ...(opts.target === undefined ? {} : { target: opts.target }),
        }),
      );
      deps.output.result(rows, () =>
        rows.length === 0
          ? 'no audit entries'
          : table(
              ['AT', 'ACTOR', 'ACTION', 'TARGET', 'OLD', 'NEW', 'REASON'],
              rows.map((r) => [humanTime(r.at), r.actor, r.action, r.target, toJsonText(r.old_value), toJsonText(r.new_value), r.reason]),
            ),
      );
    });

  const jobs = program.command('jobs').description('the job queue');
  jobs
    .command('list')
    .description('queued, running and failed jobs')
    .option('--failed', 'only jobs that used up their attempts')
    .action(async (opts: { failed?: boolean }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const rows = await deps.withDatabase((db) =>
        db.pool.any(sql.type(
          z.object({
            id: z.string(),
            task: z.string(),
            key: z.string().nullable(),
            attempts: z.number(),
            max_attempts: z.number(),
            locked_by: z.string().nullable(),
            run_at: z.string(),
            last_error: z.string().nullable(),
          }),
        )`
          select j.id::text as id, task_identifier as task, key, attempts, max_attempts, locked_by, run_at, last_error from graphile_worker.jobs j
          where ${opts.failed ? sql.fragment`attempts >= max_attempts` : sql.fragment`true`} order by j.id limit 1000`),
      );
      deps.output.result(rows, () =>
        rows.length === 0
          ? 'no jobs'
          : table(
              ['ID', 'TASK', 'KEY', 'ATTEMPTS', 'LOCKED BY', 'LAST ERROR'],
              rows.map((r) => [
                r.id,
                r.task,
                r.key ?? '',
                `${r.attempts}/${r.max_attempts}`,
                r.locked_by ?? '',
                (r.last_error ?? '').split('\n')[0] ?? '',
              ]),
            ),
      );
    });
  jobs
    .command('retry')
    .description('run a job again now (resets its attempts; needs --reason; audited)')
    .argument('[id]', 'job id')
    .action(async (raw: string | undefined, _o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const id = String(
        smallInteger('id', await requireValue(deps.prompter, raw, { name: 'id', message: 'Job id' }), 1, Number.MAX_SAFE_INTEGER),
      );
      const why = await reason(deps);
      const result = await deps.withDatabase((db) =>
        inTransaction(db.pool, async (tx) => {
          const rows = await tx.any(sql.type(z.object({ id: z.string(), attempts: z.number() }))`
            select id::text, attempts from graphile_worker.jobs where id = ${id}::bigint and locked_at is null`);
          if (rows.length === 0) throw notFound('job', id, { hint: 'no such job, or it is running now' });
          await tx.query(sql.unsafe`select graphile_worker.reschedule_jobs(array[${id}::bigint], run_at => now(), attempts => 0)`);
          await audit(tx, {
            actor: deps.globals.actor,
            action: 'jobs.retry',
            target: `job:${id}`,
            oldValue: { attempts: rows[0]?.attempts },
            newValue: { attempts: 0 },
            reason: why,
          });
          return { id, retried: true };
        }),
      );
      deps.output.result(result, () => `job ${id} will run again`);
    });
}
