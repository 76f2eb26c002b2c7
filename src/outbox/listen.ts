// A local receiver for outbound webhooks (`haat webhook listen`, the demo, tests): verifies each
// request's Standard Webhooks signature against the secrets it was given (any one may match: a
// rotated endpoint signs with two) and reports every event. Answers 204 when verified (or when it
// has no secret to verify with), 401 when not, 400 when the body is not an event.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { parseJsonExact } from '../domain/json.ts';

export type ReceivedEvent = {
  readonly id: string;
  readonly type: string | null;
  readonly timestamp: string | null;
  /** true: a signature matched; false: none did; null: no secret to check with. */
  readonly verified: boolean | null;
  readonly signatures: number;
  readonly body: unknown;
  readonly raw: string;
  readonly headers: http.IncomingHttpHeaders;
};

export type Listener = {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
};

const MAX_BODY_BYTES = 1024 * 1024;

export async function listen(options: {
  readonly port: number;
  readonly host?: string;
  readonly secrets: readonly string[];
  readonly onEvent: (event: ReceivedEvent) => void;
}): Promise<Listener> {
  const verifiers = options.secrets.map((s) => new Webhook(s));
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        res.writeHead(413).end();
        return;
      }
      const raw = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      };
      let verified: boolean | null = null;
      if (verifiers.length > 0) {
        verified = verifiers.some((v) => {
          try {
            v.verify(raw, headers);
            return true;
          } catch {
            return false;
          }
        });
      }
      let body: unknown;
      try {
        body = parseJsonExact(raw);
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('not JSON');
        return;
      }
      const event = body as { type?: unknown; timestamp?: unknown };
      options.onEvent({
        id: headers['webhook-id'],
        type: typeof event.type === 'string' ? event.type : null,
        timestamp: typeof event.timestamp === 'string' ? event.timestamp : null,
        verified,
        signatures: headers['webhook-signature'].split(' ').filter((s) => s.length > 0).length,
        body,
        raw,
        headers: req.headers,
      });
      res.writeHead(verified === false ? 401 : 204).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
