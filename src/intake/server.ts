// The HTTP intake on node:http: POST /webhooks/<source> (webhooks.ts), /healthz (the process is
// alive), /readyz (the database answers and its migrations are current) and /metrics (Prometheus).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { migrationsCurrent } from '../db/migration-status.ts';
import type { DatabasePool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { type BatchOptions, createIntakeBatcher } from './intake-batch.ts';
import { createMetrics } from './metrics.ts';
import type { WebhookSecrets } from './secrets.ts';
import { handleWebhook, isSource } from './webhooks.ts';

export type IntakeOptions = {
  readonly pool: DatabasePool;
  readonly log: Logger;
  /** The newest committed migration, read at start-up; /readyz wants it applied. */
  readonly expectedMigration: string | undefined;
  readonly secrets: WebhookSecrets;
  /** How webhooks are batched into transactions (intake-batch.ts); defaults suit production. */
  readonly batch?: BatchOptions;
};

export type RunningIntake = {
  readonly server: http.Server;
  readonly url: string;
  close(): Promise<void>;
};

type Route = {
  readonly methods: readonly string[];
  readonly handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
};

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export type IntakeHandler = http.RequestListener & {
  /** Stores the webhooks waiting in the intake's batch and waits for those being stored. */
  drain(): Promise<void>;
};

export function createIntakeHandler(options: IntakeOptions): IntakeHandler {
  const log = options.log.child({ component: 'intake' });
  const batcher = createIntakeBatcher(options.pool, log, options.batch);
  const metrics = createMetrics(options.pool);
  const routes: Record<string, Route> = {
    '/metrics': {
      methods: ['GET'],
      handle: async (_req, res) => {
        try {
          const text = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        } catch (error) {
          log.warn({ err: error }, 'metrics unavailable');
          sendJson(res, 503, { error: { code: 'database_unavailable', message: 'metrics need the database', details: {} } });
        }
      },
    },
    '/healthz': {
      methods: ['GET', 'HEAD'],
      handle: async (_req, res) => sendJson(res, 200, { status: 'ok' }),
    },
    '/readyz': {
      methods: ['GET', 'HEAD'],
      handle: async (_req, res) => {
        try {
          const current = await migrationsCurrent(options.pool, options.expectedMigration);
          if (!current) {
            sendJson(res, 503, { status: 'not_ready', database: 'ok', migrations: 'pending' });
            return;
          }
          sendJson(res, 200, { status: 'ready', database: 'ok', migrations: 'current' });
        } catch (error) {
          log.warn({ err: error }, 'readiness check failed');
          sendJson(res, 503, { status: 'not_ready', database: 'unreachable' });
        }
      },
    },
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://intake').pathname;
    const webhook = /^\/webhooks\/([^/]+)$/.exec(path);
    if (webhook) {
      if (req.method !== 'POST') {
        req.resume();
        sendJson(res, 405, { error: { code: 'method_not_allowed', message: 'webhooks are POSTed', details: {} } }, { allow: 'POST' });
        return;
      }
      handleWebhook(req, decodeURIComponent(webhook[1] ?? ''), { batcher, log, secrets: options.secrets })
        .then((reply) => {
          // Unknown sources share one label, so a caller cannot grow the label set.
          metrics.webhookRequests.inc({
            source: isSource(webhook[1] ?? '') ? (webhook[1] ?? '') : 'unknown',
            status: String(reply.status),
          });
          if (reply.status >= 500) log.warn({ status: reply.status, path }, 'webhook not stored');
          sendJson(res, reply.status, reply.body, reply.status === 413 ? { connection: 'close' } : {});
        })
        .catch((error: unknown) => {
          log.error({ err: error, path }, 'webhook handler failed');
          if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal', message: 'internal error', details: {} } });
        });
      return;
    }
    const route = routes[path];
    if (!route) {
      sendJson(res, 404, { error: { code: 'not_found', message: `no route ${path}`, details: {} } });
      return;
    }
    if (!route.methods.includes(req.method ?? '')) {
      sendJson(
        res,
        405,
        { error: { code: 'method_not_allowed', message: `${req.method} is not allowed on ${path}`, details: {} } },
        { allow: route.methods.join(', ') },
      );
      return;
    }
    route.handle(req, res).catch((error: unknown) => {
      log.error({ err: error, path }, 'intake handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal', message: 'internal error', details: {} } });
      else res.destroy();
    });
  };
  return Object.assign(handler, { drain: () => batcher.close() });
}

export async function startIntake(options: IntakeOptions & { port: number; host: string }): Promise<RunningIntake> {
  const handler = createIntakeHandler(options);
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, handler);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const shownHost = host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;
  let closing: Promise<void> | undefined;
  return {
    server,
    url: `http://${shownHost}:${address.port}`,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => void handler.drain().then(resolve, resolve));
        server.closeIdleConnections();
        // Requests still running get a moment to finish; then their sockets are closed.
        setTimeout(() => server.closeAllConnections(), 5_000).unref();
      });
      return closing;
    },
  };
}
