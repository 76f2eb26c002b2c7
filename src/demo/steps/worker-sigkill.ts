// Guarantee: a worker killed mid-stream loses nothing and applies nothing twice. A stream of
// restocks (one unit each, each with its own idempotency key) goes to the worker process; it is
// SIGKILLed once some are applied and others are in its hands; the stream goes on; a new worker
// takes over (the dead one's jobs are unlocked once its heartbeats stop) and every key applies once.
import { z } from 'zod';
import { sql } from '../../db/sql.ts';
import { DEMO_SCOPE } from '../context.ts';
import { stock } from '../reads.ts';
import type { Step } from '../step.ts';

const SKU = 'BELL-METAL-LAMP';
const STREAM = 60;
/** Submitted before the kill; the rest after it (the stream does not stop for a dead worker). */
const BEFORE_KILL = 40;
const KILL_AFTER_APPLIED = 5n;
const KEY_PREFIX = 'stream-lamp-';

export const workerSigkill: Step = {
  name: 'worker_sigkill',
  claim: 'A worker SIGKILLed mid-stream loses nothing and applies nothing twice',
  run: async (ctx, check) => {
    await ctx.addSku(SKU, 150_000, 0);
    const keys = Array.from({ length: STREAM }, (_, i) => `${KEY_PREFIX}${i + 1}`);
    const applied = () =>
      ctx.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
        select count(*) as n from idempotency_keys where scope = ${DEMO_SCOPE} and key like ${`${KEY_PREFIX}%`} and state = 'done'`);
    // Submitted a few at a time, so that the worker has a backlog and jobs in its hands when it dies.
    const send = async (from: number, to: number) => {
      for (let at = from; at < to; at += 5) {
        await Promise.all(
          keys
            .slice(at, Math.min(at + 5, to))
            .map((key) => ctx.submit('stock.receive', { sku: SKU, qty: '1', reason: 'demo stream' }, key)),
        );
      }
    };

    const victim = ctx.worker();
    const sending = send(0, BEFORE_KILL);
    await ctx.until(
      `${KILL_AFTER_APPLIED} restocks applied`,
      async () => ((await applied()) >= KILL_AFTER_APPLIED ? true : undefined),
      20_000,
    );
    victim.kill('SIGKILL');
    const death = await victim.exited;
    const appliedAtKill = await applied();
    const inItsHands = await ctx.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
      select count(*) as n from graphile_worker.jobs where key like ${`cmd:${DEMO_SCOPE}:${KEY_PREFIX}%`} and locked_at is not null`);
    await sending;
    await send(BEFORE_KILL, STREAM);
    const successor = await ctx.startWorker();
    const jobsLeft = () =>
      ctx.pool.oneFirst(sql.type(z.object({ n: z.bigint() }))`
        select count(*) as n from graphile_worker.jobs where key like ${`cmd:${DEMO_SCOPE}:${KEY_PREFIX}%`}`);
    // A job whose command the dead worker committed but did not get to complete stays locked until
    // the successor unlocks it (the dead one's heartbeats stopped) and finds its command done: wait
    // for that too, not only for the outcomes.
    await ctx.until(
      `all ${STREAM} restocks to have outcomes and their jobs to be gone`,
      async () => ((await applied()) === BigInt(STREAM) && (await jobsLeft()) === 0n ? true : undefined),
      40_000,
    );

    check('the worker died by', death.signal, 'SIGKILL');
    check('the kill came mid-stream (some applied, not all)', appliedAtKill > 0n && appliedAtKill < BigInt(STREAM), true);
    const outcomes = await ctx.pool.one(sql.type(z.object({ done: z.bigint(), ok: z.bigint() }))`
      select count(*) filter (where state = 'done') as done, count(*) filter (where (outcome->>'ok')::boolean) as ok
      from idempotency_keys where scope = ${DEMO_SCOPE} and key like ${`${KEY_PREFIX}%`}`);
    check('keys done / applied', outcomes, { done: BigInt(STREAM), ok: BigInt(STREAM) });
    const after = await stock(ctx.pool, SKU);
    check(`${SKU} on hand`, after.on_hand, BigInt(STREAM));
    const movements = await ctx.pool.one(sql.type(z.object({ rows: z.bigint(), keys: z.bigint() }))`
      select count(*) as rows, count(distinct command_key) as keys from inventory_movements where sku = ${SKU}`);
    check(`movements of ${SKU} / distinct keys`, movements, { rows: BigInt(STREAM), keys: BigInt(STREAM) });
    const left = await jobsLeft();
    check('jobs left in the queue', left, 0n);
    return {
      did: `${STREAM} restocks of 1 × ${SKU} (a key each) streamed to \`haat worker\` (pid ${victim.pid}); SIGKILLed it with ${appliedAtKill} applied and ${inItsHands} locked in its hands; the rest streamed on; a new worker (pid ${successor.pid})`,
      saw: `${outcomes.ok} of ${STREAM} applied; on hand ${after.on_hand} from ${movements.rows} movements of ${movements.keys} distinct keys; ${left} jobs left`,
    };
  },
};
