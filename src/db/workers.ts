// Worker registration and heartbeats. A worker is dead when its heartbeat is older than the
// staleness limit; its locked jobs are unlocked for others, and never those of a live worker
// (a live one keeps its row fresh). Every worker does this sweep; SKIP LOCKED keeps it single.
import os from 'node:os';
import { z } from 'zod';
import type { Queryable } from './pool.ts';
import { sql } from './sql.ts';

export async function heartbeat(db: Queryable, workerIds: readonly string[]): Promise<void> {
  if (workerIds.length === 0) return;
  await db.query(sql.unsafe`
    insert into worker_heartbeats (worker_id, pid, host)
    select id, ${process.pid}, ${os.hostname()} from unnest(${sql.array(workerIds, 'text')}) as id
    on conflict (worker_id) do update set heartbeat_at = now()`);
}

/** Unlocks the jobs of pools that are not running any more and forgets them (in the caller's transaction). */
async function release(tx: Queryable, workerIds: readonly string[]): Promise<void> {
  await tx.query(sql.unsafe`select graphile_worker.force_unlock_workers(${sql.array(workerIds, 'text')})`);
  await tx.query(sql.unsafe`delete from worker_heartbeats where worker_id = any(${sql.array(workerIds, 'text')})`);
}

export async function unlockDeadWorkers(db: Queryable, staleMs: number): Promise<readonly string[]> {
  return db.transaction(async (tx) => {
    const dead = await tx.anyFirst(sql.type(z.object({ worker_id: z.string() }))`
      select worker_id from worker_heartbeats
      where heartbeat_at < now() - make_interval(secs => ${staleMs / 1000})
      for update skip locked`);
    if (dead.length > 0) await release(tx, dead);
    return dead;
  });
}

/**
 * For pools known to have stopped (this process saw them end): unlock whatever they left locked
 * and drop their heartbeat rows, at once, instead of waiting for the stale-heartbeat sweep.
 */
export async function releaseStoppedPools(db: Queryable, workerIds: readonly string[]): Promise<void> {
  if (workerIds.length === 0) return;
  await db.transaction((tx) => release(tx, workerIds));
}

/** Is any worker alive (its heartbeat fresher than the staleness limit)? */
export async function anyWorkerAlive(db: Queryable, staleMs: number): Promise<boolean> {
  return db.oneFirst(sql.type(z.object({ alive: z.boolean() }))`
    select exists (select 1 from worker_heartbeats where heartbeat_at >= now() - make_interval(secs => ${staleMs / 1000})) as alive`);
}
