// A real HTTP receiver on loopback for outbound webhook tests: records every request (verifying
// its signatures with the secrets it is told), answers as the test scripts it (a status, headers, a
// redirect, a hang), and lets a test wait for what it expects.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';

export type Received = {
  readonly at: number;
  readonly id: string;
  readonly timestamp: string;
  readonly signatures: readonly string[];
  readonly body: string;
  readonly json: { type: string; timestamp: string; data: Record<string, unknown> & { sequence?: number } };
  readonly url: string;
  /** Per secret given to verify(): whether one of the request's signatures matches it. */
  verifiedWith(secret: string): boolean;
};

export type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

export type Receiver = {
  readonly url: string;
  readonly port: number;
  readonly received: Received[];
  /** How the next requests are answered (first to last; the last one repeats). */
  script(replies: readonly Reply[]): void;
  waitFor(what: string, predicate: (received: readonly Received[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
};

export async function startReceiver(initial: readonly Reply[] = [{ status: 204 }]): Promise<Receiver> {
  let replies = [...initial];
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      };
      let json: Received['json'];
      try {
        json = JSON.parse(body);
      } catch {
        json = { type: '', timestamp: '', data: {} };
      }
      received.push({
        at: Date.now(),
        id: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        signatures: headers['webhook-signature'].split(' ').filter((s) => s !== ''),
        body,
        json,
        url: req.url ?? '',
        verifiedWith(secret: string) {
          try {
            new Webhook(secret).verify(body, headers);
            return true;
          } catch {
            return false;
          }
        },
      });
      const reply = replies.length > 1 ? (replies.shift() as Reply) : (replies[0] as Reply);
      if (reply === 'hang') return; // never answered; the sender's timeout ends it
      res.writeHead(reply.status, reply.headers ?? {}).end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    received,
    script(next) {
      replies = [...next];
    },
    async waitFor(what, predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${received.length}`);
        await sleep(25);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
