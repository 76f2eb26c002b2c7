// What every step of the tour may use: the demo database (its own pool, for set-up through the one
// write path and for reading effects back), real `haat` processes on it, the signed webhook sender
// for the intake process, and the running worker process (which one step kills and replaces).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { awaitOutcome, submitCommand } from '../commands/submit-command.ts';
import { findKey, outcomeOf } from '../db/idempotency.ts';
import type { DatabasePool } from '../db/pool.ts';
import { Command, type Outcome } from '../domain/commands.ts';
import { signedHeaders } from '../intake/sign.ts';
import type { Logger } from '../log.ts';
import type { HaatRun, Processes, Service } from './processes.ts';

/** The scope of the demo's own in-process commands (CLI processes use `cli`, webhooks `webhook:<source>`). */
export const DEMO_SCOPE = 'demo';
export const DEMO_ACTOR = 'haat-demo';
export const DEMO_SELLER = 'demo-market';

export type DemoContext = {
  readonly pool: DatabasePool;
  readonly url: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** A one-shot `haat` command as its own process, on the demo database (add --json to read it). */
  haat(...args: string[]): Promise<HaatRun>;
  /** A command through the one write path, in this process: submitted, applied (by the worker), awaited. */
  write(type: string, payload: Record<string, unknown>, key?: string): Promise<Outcome>;
  /** Submits without waiting (like `--no-wait`): the key is claimed and the job queued. */
  submit(type: string, payload: Record<string, unknown>, key: string): Promise<void>;
  /** A signed Standard Webhooks POST to the intake process; resolves with the HTTP status. */
  post(source: string, id: string, body: string): Promise<number>;
  /** Waits for the outcome of a webhook event, as the worker records it. */
  eventOutcome(source: string, id: string): Promise<Outcome>;
  /** Polls `probe` until it returns something other than undefined; throws after `timeoutMs`. */
  until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  /** Adds a SKU of the demo seller (INR) and receives `stock` units, through the write path. */
  addSku(code: string, price: number, stock: number): Promise<void>;
  /** The running worker process. */
  worker(): Service;
  /** Starts another worker process, which becomes the running one. */
  startWorker(): Promise<Service>;
};

export type ContextOptions = {
  readonly pool: DatabasePool;
  readonly url: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly processes: Processes;
  readonly intakeUrl: string;
  readonly webhookSecret: string;
  readonly waitForWorkerMs: number;
  readonly worker: Service;
  readonly startWorker: () => Promise<Service>;
};

const nextKey = () => `demo-${randomUUID()}`;

export function orderPlacedBody(data: { ref: string; buyer: string; items: { sku: string; qty: number }[] }): string {
  return JSON.stringify({ type: 'order.placed', timestamp: new Date().toISOString(), data: { ...data, currency: 'INR' } });
}

export function createContext(options: ContextOptions): DemoContext {
  const { pool, url, log, signal } = options;
  let worker = options.worker;
  const until: DemoContext['until'] = async (what, probe, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal.aborted) throw new Error('interrupted');
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs / 1000} s waiting for ${what}`);
      await sleep(25);
    }
  };
  const submit: DemoContext['submit'] = async (type, payload, key) => {
    const command = Command.parse({ type, payload });
    const submitted = await submitCommand(pool, { scope: DEMO_SCOPE, key, command, actor: DEMO_ACTOR });
    if (submitted.replay) throw new Error(`the demo's key ${key} was used before`);
  };
  const write: DemoContext['write'] = async (type, payload, key = nextKey()) => {
    await submit(type, payload, key);
    return awaitOutcome(pool, DEMO_SCOPE, key, { url, log, timeoutMs: 30_000, inlineAfterMs: options.waitForWorkerMs });
  };
  const mustWrite = async (type: string, payload: Record<string, unknown>) => {
    const outcome = await write(type, payload);
    if (!outcome.ok) throw new Error(`${type} was refused: ${outcome.error.code} ${outcome.error.message}`);
  };
  return {
    pool,
    url,
    log,
    signal,
    haat: (...args) => options.processes.run(args),
    write,
    submit,
    post: async (source, id, body) => {
      const response = await fetch(`${options.intakeUrl}/webhooks/${source}`, {
        method: 'POST',
        headers: signedHeaders(options.webhookSecret, id, body),
        body,
        signal,
      });
      await response.body?.cancel();
      return response.status;
    },
    eventOutcome: (source, id) =>
      until(`the outcome of webhook ${id}`, async () => {
        const row = await findKey(pool, `webhook:${source}`, id);
        return (row && outcomeOf(row)) ?? undefined;
      }),
    until,
    addSku: async (code, price, stock) => {
      await mustWrite('sku.add', { code, seller: DEMO_SELLER, price: String(price), currency: 'INR' });
      if (stock > 0) await mustWrite('stock.receive', { sku: code, qty: String(stock), reason: 'demo stock' });
    },
    worker: () => worker,
    startWorker: async () => {
      worker = await options.startWorker();
      return worker;
    },
  };
}
