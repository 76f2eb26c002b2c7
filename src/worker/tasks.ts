// The explicit task list and crontab. Every task haat runs is named here, typed by its payload
// schema; cron items may only name tasks from this list (checked when the worker starts).
import type { ParsedCronItem, TaskList } from 'graphile-worker';
import { parseCronItems } from 'graphile-worker';
import type { DatabasePool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import type { CommandBatcher } from './command-batcher.ts';
import { type TaskDefinition, toGraphileTask } from './task.ts';
import { applyCommandTask } from './tasks/apply-command.ts';
import { deliverWebhookTask } from './tasks/deliver-webhook.ts';
import { expireReservationsTask } from './tasks/expire-reservations.ts';
import { pingTask } from './tasks/ping.ts';
import { purgeIdempotencyKeysTask } from './tasks/purge-idempotency-keys.ts';
import { reconcileNightlyTask } from './tasks/reconcile-nightly.ts';

// biome-ignore lint/suspicious/noExplicitAny: a list of tasks with different payload types
export type AnyTask = TaskDefinition<any>;

export const haatTasks: readonly AnyTask[] = [
  pingTask,
  applyCommandTask,
  purgeIdempotencyKeysTask,
  expireReservationsTask,
  reconcileNightlyTask,
  deliverWebhookTask,
];

/** Tasks run by the worker's delivery lane (their own runner and connections), not the command lane. */
export const DELIVERY_TASKS: ReadonlySet<string> = new Set([deliverWebhookTask.identifier]);

export type CronItem = {
  /** A task identifier from the task list. */
  readonly task: string;
  /** Standard five-field cron pattern, UTC. */
  readonly match: string;
  /** Jobs missed while no worker ran are back-filled for this long (ms); 0 = never. */
  readonly backfillPeriod: number;
  readonly identifier: string;
};

export const haatCrontab: readonly CronItem[] = [
  { identifier: 'reconcile_nightly', task: 'reconcile_nightly', match: '30 2 * * *', backfillPeriod: 0 },
  { identifier: 'expire_reservations_every_minute', task: 'expire_reservations', match: '* * * * *', backfillPeriod: 0 },
  { identifier: 'purge_idempotency_keys_hourly', task: 'purge_idempotency_keys', match: '17 * * * *', backfillPeriod: 0 },
];

export function buildTaskList(tasks: readonly AnyTask[], pool: DatabasePool, log: Logger, commands: CommandBatcher): TaskList {
  const list: TaskList = {};
  for (const task of tasks) {
    if (list[task.identifier]) throw new Error(`task ${task.identifier} is defined twice`);
    list[task.identifier] = toGraphileTask(task, pool, log, commands);
  }
  return list;
}

export function buildCronItems(crontab: readonly CronItem[], tasks: readonly AnyTask[]): ParsedCronItem[] {
  const known = new Set(tasks.map((t) => t.identifier));
  for (const item of crontab) {
    if (!known.has(item.task)) throw new Error(`cron item ${item.identifier} names unknown task ${item.task}`);
  }
  return parseCronItems(
    crontab.map((item) => ({
      task: item.task,
      match: item.match,
      identifier: item.identifier,
      options: { backfillPeriod: item.backfillPeriod, queueName: undefined, maxAttempts: 3 },
    })),
  );
}
