// haat up · haat worker · haat intake: the long-running parts, alone or together in one process.
// Shutdown is ordered: stop accepting requests, let running jobs finish, close the pool, and last
// stop the embedded PostgreSQL if this process started it.
import type { Command } from 'commander';
import { untilConnected } from '../../db/connect.ts';
import { committedMigrations, migrateDatabase } from '../../db/migrate.ts';
import { ensureWebhookSecrets, loadWebhookSecrets } from '../../intake/secrets.ts';
import { type RunningIntake, startIntake } from '../../intake/server.ts';
import type { Logger } from '../../log.ts';
import { type RunningWorker, startWorker } from '../../worker/run-worker.ts';
import { type BaseDeps, buildDeps, type Deps } from '../context.ts';
import { smallInteger } from '../options.ts';
import { keyValues } from '../output.ts';

export type ServicesInput = {
  readonly worker?: { readonly concurrency: number; readonly deliveryConcurrency: number };
  readonly intake?: { readonly port: number; readonly host: string };
};

export type ServicesStarted = {
  readonly database: string;
  readonly data_dir: string | null;
  readonly intake_url: string | null;
  readonly worker_concurrency: number | null;
  readonly pid: number;
};

/** Resolves with the signal's name at the first SIGINT or SIGTERM. */
export function waitForSignal(log: Logger): Promise<string> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) {
        log.warn({ signal }, 'already shutting down: waiting for running jobs to finish');
        return;
      }
      received = true;
      log.info({ signal }, 'shutting down');
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export async function runServices(input: ServicesInput, deps: Deps, until: (started: ServicesStarted) => Promise<unknown>): Promise<void> {
  const log = deps.log;
  await deps.withDatabase(
    async (db) => {
      await untilConnected('migrations', () => migrateDatabase(db.url, log), log);
      if (input.intake && input.worker) {
        const created = await ensureWebhookSecrets(deps.config.home, deps.io.env);
        if (created) deps.output.note(`webhook secrets generated in ${created} (set HAAT_WEBHOOK_SECRET_<SOURCE> to use your own)`);
      }
      const expectedMigration = (await committedMigrations()).at(-1);
      let worker: RunningWorker | undefined;
      let intake: RunningIntake | undefined;
      try {
        if (input.worker) {
          const options = {
            url: db.url,
            pool: db.pool,
            log,
            concurrency: input.worker.concurrency,
            deliveryConcurrency: input.worker.deliveryConcurrency,
            heartbeatMs: deps.config.workerHeartbeatMs,
          };
          worker = await untilConnected('starting the worker', () => startWorker(options), log);
        }
        if (input.intake) {
          const secrets = await loadWebhookSecrets(deps.config.home, deps.io.env);
          intake = await startIntake({ pool: db.pool, log, expectedMigration, secrets, port: input.intake.port, host: input.intake.host });
        }
        const started: ServicesStarted = {
          database: db.description,
          data_dir: db.embedded?.info.dataDir ?? null,
          intake_url: intake?.url ?? null,
          worker_concurrency: input.worker?.concurrency ?? null,
          pid: process.pid,
        };
        deps.output.result(started, () =>
          keyValues([
            ['haat', `running (pid ${process.pid}); Ctrl-C or SIGTERM stops it`],
            ['database', started.database],
            ...(started.data_dir ? [['data folder', started.data_dir] as const] : []),
            ...(started.intake_url
              ? [
                  ['intake', started.intake_url] as const,
                  ['health', `${started.intake_url}/healthz  ${started.intake_url}/readyz`] as const,
                ]
              : []),
            ...(input.worker
              ? [
                  [
                    'worker',
                    `concurrency ${input.worker.concurrency}, cron on; outbound webhooks ${input.worker.deliveryConcurrency} at once`,
                  ] as const,
                ]
              : []),
          ]),
        );
        await until(started);
      } finally {
        await intake?.close();
        await worker?.stop();
        log.info('stopped');
      }
    },
    { migrated: false, untilConnected: true },
  );
}

function workerOptions(opts: { concurrency?: string; deliveryConcurrency?: string }) {
  return {
    concurrency: opts.concurrency === undefined ? 4 : smallInteger('--concurrency', opts.concurrency, 1, 100),
    deliveryConcurrency:
      opts.deliveryConcurrency === undefined ? 8 : smallInteger('--delivery-concurrency', opts.deliveryConcurrency, 1, 100),
  };
}

const DELIVERY_CONCURRENCY_HELP = 'outbound webhook attempts at once, apart from the jobs (default 8)';

function portOption(raw: string | undefined, fallback: number): number {
  return raw === undefined ? fallback : smallInteger('--port', raw, 0, 65535);
}

export function registerServiceCommands(program: Command, base: BaseDeps): void {
  program
    .command('up')
    .description('run everything in one process: database (embedded unless DATABASE_URL), migrations, worker, cron, webhook intake')
    .option('--port <n>', 'webhook intake port (default: $PORT or 8787)')
    .option('--host <address>', 'address the intake listens on', '0.0.0.0')
    .option('--concurrency <n>', 'jobs run at once by the worker (default 4)')
    .option('--delivery-concurrency <n>', DELIVERY_CONCURRENCY_HELP)
    .action(async (opts: { port?: string; host: string; concurrency?: string; deliveryConcurrency?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'info');
      const input = {
        worker: workerOptions(opts),
        intake: { port: portOption(opts.port, base.config.port), host: opts.host },
      };
      // Listened for from the start: a SIGTERM while the services start (a job may already run) stops
      // them in order once started, instead of killing the process mid-job.
      const signalled = waitForSignal(deps.log);
      await runServices(input, deps, () => signalled);
    });
  program
    .command('worker')
    .description('run the background worker alone (run as many as you like)')
    .option('--concurrency <n>', 'jobs run at once (default 4)')
    .option('--delivery-concurrency <n>', DELIVERY_CONCURRENCY_HELP)
    .action(async (opts: { concurrency?: string; deliveryConcurrency?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'info');
      const signalled = waitForSignal(deps.log);
      await runServices({ worker: workerOptions(opts) }, deps, () => signalled);
    });
  program
    .command('intake')
    .description('run the webhook intake alone')
    .option('--port <n>', 'port (default: $PORT or 8787)')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .action(async (opts: { port?: string; host: string }, command: Command) => {
      const deps = buildDeps(base, command, 'info');
      const input = { intake: { port: portOption(opts.port, base.config.port), host: opts.host } };
      // Listened for from the start: a SIGTERM while the services start (a job may already run) stops
      // them in order once started, instead of killing the process mid-job.
      const signalled = waitForSignal(deps.log);
      await runServices(input, deps, () => signalled);
    });
}
