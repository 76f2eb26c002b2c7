// `haat demo`: the tour. It opens a fresh database, starts a real `haat worker` and `haat intake`
// on it, runs each step (a failing step does not stop the tour), and always cleans up — child
// processes stopped, the database dropped or the temporary server stopped and its folder removed
// (unless --keep) — also after a failing step and on Ctrl-C (SIGINT) or SIGTERM.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.ts';
import { createDatabasePool, type DatabasePool } from '../db/pool.ts';
import { HaatError } from '../errors.ts';
import { newSecret } from '../intake/secrets.ts';
import { type Logger, redactUrl } from '../log.ts';
import { createContext, DEMO_SELLER } from './context.ts';
import { type DemoDatabase, type KeptDatabase, openDemoDatabase } from './database.ts';
import { createProcesses, type Processes } from './processes.ts';
import { runStep, type Step, type StepResult } from './step.ts';
import { allOrNothing } from './steps/all-or-nothing.ts';
import { codRefusedAtDoor } from './steps/cod-refused.ts';
import { frozenMoney } from './steps/frozen-money.ts';
import { maintenanceHoldsWork } from './steps/maintenance.ts';
import { noOversell } from './steps/no-oversell.ts';
import { outboundWebhooks } from './steps/outbound-webhooks.ts';
import { partialReturnRefund } from './steps/partial-return.ts';
import { reconcileClean } from './steps/reconcile-clean.ts';
import { CORRUPTED_SKU, reconcileNamesCorruption } from './steps/reconcile-corruption.ts';
import { replayedCliCommand } from './steps/replayed-cli-command.ts';
import { skippedTransition } from './steps/skipped-transition.ts';
import { webhookFiveTimes } from './steps/webhook-five-times.ts';
import { workerSigkill } from './steps/worker-sigkill.ts';

/** The tour, in order. Each step sets up its own SKUs; the last two read what the others left. */
export const tour: readonly Step[] = [
  noOversell,
  allOrNothing,
  webhookFiveTimes,
  replayedCliCommand,
  skippedTransition,
  frozenMoney,
  maintenanceHoldsWork,
  workerSigkill,
  outboundWebhooks,
  codRefusedAtDoor,
  partialReturnRefund,
  reconcileClean,
  reconcileNamesCorruption,
];

/** Heartbeat of the demo's workers: a SIGKILLed one is declared dead (3 silent beats) in about a second. */
const WORKER_HEARTBEAT_MS = '300';

export type DemoSetup = {
  readonly database: { readonly kind: 'embedded' | 'server'; readonly name: string; readonly description: string };
  readonly worker: { readonly pid: number };
  readonly intake: { readonly pid: number; readonly url: string };
};

export type DemoReport = {
  readonly ok: boolean;
  readonly steps: readonly StepResult[];
  readonly seconds: number;
  readonly database: {
    readonly kind: 'embedded' | 'server';
    readonly name: string;
    readonly url: string;
    readonly home: string;
    readonly server_version: string;
  };
  /** Set with --keep: how to reach the kept database, and what the tour left in it on purpose. */
  readonly kept: (KeptDatabase & { readonly corrupted_sku: string }) | null;
};

export type DemoProgress = {
  ready(setup: DemoSetup): void;
  stepStarted(index: number, step: Step): void;
  stepFinished(index: number, result: StepResult): void;
  /** A line for the operator (e.g. after Ctrl-C). */
  note(text: string): void;
};

export type DemoOptions = {
  readonly config: Config;
  /** The demo's own environment: the children get PATH, HOME, TZ and LANG from it, nothing else. */
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  readonly keep: boolean;
  readonly progress: DemoProgress;
};

function childEnvironment(env: NodeJS.ProcessEnv, database: DemoDatabase, secret: string): NodeJS.ProcessEnv {
  return {
    PATH: env.PATH,
    HOME: env.HOME,
    TZ: env.TZ,
    LANG: env.LANG,
    TMPDIR: env.TMPDIR,
    DATABASE_URL: database.url,
    HAAT_HOME: database.home,
    HAAT_ACTOR: 'haat-demo',
    LOG_LEVEL: 'error',
    HAAT_WORKER_HEARTBEAT_MS: WORKER_HEARTBEAT_MS,
    HAAT_WEBHOOK_SECRET_STOREFRONT: secret,
    HAAT_WEBHOOK_SECRET_PAYMENTS: secret,
    HAAT_WEBHOOK_SECRET_LOGISTICS: secret,
    NO_COLOR: '1',
  };
}

const startWorker = (processes: Processes) => processes.start('worker', ['worker', '--concurrency', '4', '--json']);

/** Until the returned function is called, SIGINT and SIGTERM abort the tour instead of ending the process. */
function abortOnSignals(controller: AbortController, progress: DemoProgress): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      progress.note('still cleaning up: stopping the demo’s processes and removing its database');
      return;
    }
    progress.note(`${signal}: stopping the tour and cleaning up…`);
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const { config, log, progress } = options;
  const started = performance.now();
  const controller = new AbortController();
  const signal = controller.signal;
  const stopListening = abortOnSignals(controller, progress);
  const steps: StepResult[] = [];
  let database: DemoDatabase | undefined;
  let processes: Processes | undefined;
  let pool: DatabasePool | undefined;
  let kept: KeptDatabase | null = null;
  try {
    database = await openDemoDatabase(config, log);
    signal.throwIfAborted();
    const secret = newSecret();
    processes = createProcesses(childEnvironment(options.env, database, secret));
    pool = await createDatabasePool(database.url, { maxPoolSize: 10, applicationName: 'haat-demo' });
    const children = processes;
    const [worker, intake] = await Promise.all([
      startWorker(children),
      children.start('intake', ['intake', '--port', '0', '--host', '127.0.0.1', '--json']),
    ]);
    const intakeUrl = String(intake.started.intake_url);
    const ctx = createContext({
      pool,
      url: database.url,
      log,
      signal,
      processes: children,
      intakeUrl,
      webhookSecret: secret,
      waitForWorkerMs: config.waitForWorkerMs,
      worker,
      startWorker: () => startWorker(children),
    });
    const seller = await ctx.write('seller.add', { handle: DEMO_SELLER, name: 'Demo Market' }, `seller-${randomUUID()}`);
    if (!seller.ok) throw new Error(`could not add the demo's seller: ${seller.error.message}`);
    progress.ready({
      database: { kind: database.kind, name: database.name, description: database.description },
      worker: { pid: worker.pid },
      intake: { pid: intake.pid, url: intakeUrl },
    });
    for (const [index, step] of tour.entries()) {
      if (signal.aborted) break;
      progress.stepStarted(index, step);
      const result = await runStep(step, ctx);
      steps.push(result);
      progress.stepFinished(index, result);
    }
  } catch (error) {
    // Interrupted while setting up: whatever failed then failed because of it.
    if (!signal.aborted) throw error;
  } finally {
    try {
      await processes?.stopAll().catch((error: unknown) => log.warn({ err: error }, 'stopping the demo’s processes failed'));
      await pool?.end().catch(() => undefined);
      if (database) kept = await database.finish(options.keep);
    } finally {
      stopListening();
    }
  }
  if (signal.aborted || !database) {
    const why = signal.reason instanceof Error ? signal.reason.message : 'interrupted';
    throw new HaatError('demo_failed', `${why}: the tour stopped and cleaned up${kept ? ` (kept: ${kept.env})` : ''}`, { steps });
  }
  return {
    ok: steps.length === tour.length && steps.every((s) => s.ok),
    steps,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    database: {
      kind: database.kind,
      name: database.name,
      url: redactUrl(database.url),
      home: database.home,
      server_version: database.serverVersion,
    },
    kept: kept ? { ...kept, corrupted_sku: CORRUPTED_SKU } : null,
  };
}
