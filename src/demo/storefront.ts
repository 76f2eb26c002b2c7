// The demo's storefront: where haat's outbound webhooks go. Its front door, an HTTP server in the
// demo process on loopback, answers 503 while it is told to fail; otherwise it hands each request,
// its body and headers as they came, to the verifying receiver of src/outbox/listen.ts (started
// with the endpoint's secret once `haat endpoints add` has printed it) and answers what that
// receiver answered. Until the receiver is attached the door answers 503 (nothing is lost: haat
// tries again).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Listener, listen, type ReceivedEvent } from '../outbox/listen.ts';

/** One request at the front door and how it was answered. */
export type Answer = { readonly id: string; readonly status: number };

export type Storefront = {
  readonly url: string;
  /** Every event the receiver saw (signature verified or not), in arrival order. */
  readonly events: readonly ReceivedEvent[];
  readonly answers: readonly Answer[];
  /** Starts the receiver with the endpoint's secret; from then on requests reach it. */
  attach(secret: string): Promise<void>;
  /** The next `count` requests are answered 503 without reaching the receiver. */
  failNext(count: number): void;
  close(): Promise<void>;
};

const FORWARDED = ['content-type', 'webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

export async function openStorefront(signal: AbortSignal): Promise<Storefront> {
  const events: ReceivedEvent[] = [];
  const answers: Answer[] = [];
  let receiver: Listener | undefined;
  let failing = 0;
  const door = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const id = String(req.headers['webhook-id'] ?? '');
      const answer = (status: number) => {
        answers.push({ id, status });
        res.writeHead(status).end();
      };
      if (receiver === undefined || failing > 0) {
        if (receiver !== undefined) failing--;
        answer(503);
        return;
      }
      const headers: Record<string, string> = {};
      for (const name of FORWARDED) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      fetch(receiver.url, { method: 'POST', headers, body: Buffer.concat(chunks), signal })
        .then(async (reply) => {
          await reply.body?.cancel();
          answer(reply.status);
        })
        .catch(() => answer(502));
    });
  });
  await new Promise<void>((resolve, reject) => {
    door.once('error', reject);
    door.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (door.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/haat-events`,
    events,
    answers,
    attach: async (secret) => {
      receiver = await listen({ port: 0, secrets: [secret], onEvent: (event) => events.push(event) });
    },
    failNext: (count) => {
      failing = count;
    },
    close: async () => {
      await receiver?.close();
      await new Promise<void>((resolve) => {
        door.closeAllConnections();
        door.close(() => resolve());
      });
    },
  };
}
