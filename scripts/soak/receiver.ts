// The soak's storefront: a real HTTP receiver on loopback for the endpoint the soak adds. It goes
// through phases as the soak tells it — answers 204 (`ok`); fails with 500 or 503 (`failing`);
// holds each request past the sender's timeout and then drops it (`hanging`) — and verifies the
// Standard Webhooks signature of every request against the endpoint's secret. An event counts as
// received only when it was answered 2xx; a repeat of an id answered 2xx before is a duplicate
// (at-least-once). A request whose signature does not verify is answered 401 and counted.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export type Phase = 'ok' | 'failing' | 'hanging';

/** What the receiver kept of an event the first time it answered it 2xx. */
export type Received = { readonly type: string | null; readonly sequence: number | null; readonly times: number };

export type ReceiverFigures = {
  readonly requests: number;
  readonly answered: Record<string, number>;
  readonly held: number;
  readonly bad_signatures: number;
  readonly not_json: number;
  readonly received_events: number;
  readonly duplicates_received: number;
  readonly phases: Record<Phase, number>;
};

export type SoakReceiver = {
  readonly url: string;
  /** Every event id answered 2xx, with its type and sequence as the body said. */
  readonly received: ReadonlyMap<string, Received>;
  /** The endpoint's secret, once `haat endpoints add` printed it; until then every request is answered 503. */
  verifyWith(secret: string): void;
  setPhase(phase: Phase): void;
  figures(): ReceiverFigures;
  close(): Promise<void>;
};

export async function startSoakReceiver(options: { readonly holdMs: number }): Promise<SoakReceiver> {
  let verifier: Webhook | undefined;
  let phase: Phase = 'ok';
  let failures = 0;
  const received = new Map<string, Received>();
  const answered: Record<string, number> = {};
  const phases: Record<Phase, number> = { ok: 0, failing: 0, hanging: 0 };
  const counts = { requests: 0, held: 0, bad_signatures: 0, not_json: 0, duplicates_received: 0 };
  const holds = new Set<NodeJS.Timeout>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      counts.requests++;
      const answer = (status: number, headers: Record<string, string> = {}) => {
        answered[status] = (answered[status] ?? 0) + 1;
        res.writeHead(status, headers).end();
      };
      if (verifier === undefined) {
        answer(503);
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id'] ?? '');
      try {
        verifier.verify(body, {
          'webhook-id': id,
          'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
          'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
        });
      } catch {
        counts.bad_signatures++;
        answer(401);
        return;
      }
      if (phase === 'hanging') {
        // Longer than the sender waits: it gives up (a timeout), then the request is dropped unanswered.
        counts.held++;
        const hold = setTimeout(() => {
          holds.delete(hold);
          res.destroy();
        }, options.holdMs);
        holds.add(hold);
        return;
      }
      if (phase === 'failing') {
        failures++;
        // A 503 asks for 3 s (the schedule's second step at most: honoured as asked, up to that step).
        if (failures % 2 === 0) answer(503, { 'retry-after': '3' });
        else answer(500);
        return;
      }
      let event: { type?: unknown; data?: { sequence?: unknown } };
      try {
        event = JSON.parse(body);
      } catch {
        counts.not_json++;
        answer(400);
        return;
      }
      const before = received.get(id);
      if (before) {
        counts.duplicates_received++;
        received.set(id, { ...before, times: before.times + 1 });
      } else {
        received.set(id, {
          type: typeof event.type === 'string' ? event.type : null,
          sequence: typeof event.data?.sequence === 'number' ? event.data.sequence : null,
          times: 1,
        });
      }
      answer(204);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/soak-events`,
    received,
    verifyWith: (secret) => {
      verifier = new Webhook(secret);
    },
    setPhase: (next) => {
      phase = next;
      phases[next]++;
    },
    figures: () => ({ ...counts, answered: { ...answered }, received_events: received.size, phases: { ...phases } }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const hold of holds) clearTimeout(hold);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
