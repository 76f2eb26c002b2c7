// One HTTP attempt of a delivery: POST the body with its headers, never inside a database
// transaction, never following a redirect (node:http does not), bounded by a timeout for the whole
// exchange, through the guarded lookup of url-rules.ts. Never throws: every way it can go wrong is
// an attempt result with an error, recorded by the caller.
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { addressAllowed, guardedLookup, hostOf } from './url-rules.ts';

/** At most this much of a reply is kept (as text) for the operator. */
export const EXCERPT_CHARS = 512;
/** At most this much of a reply is read; the rest is not waited for. */
const READ_LIMIT_BYTES = 64 * 1024;

export type AttemptResult = {
  readonly at: Date;
  readonly status: number | null;
  readonly durationMs: number;
  readonly error: string | null;
  readonly excerpt: string | null;
  readonly address: string | null;
  readonly retryAfter: string | undefined;
};

/** Idle kept-alive connections are closed after this (shorter than common servers' 5 s). */
const IDLE_SOCKET_MS = 4_000;

/**
 * One keep-alive agent per (scheme, allow-private): connections to an endpoint are reused between
 * attempts, and a connection opened under one address rule never serves the other.
 */
const agents = new Map<string, http.Agent>();
function agentFor(https_: boolean, allowPrivate: boolean): http.Agent {
  const key = `${https_}:${allowPrivate}`;
  let agent = agents.get(key);
  if (!agent) {
    const options = { keepAlive: true, maxSockets: 16, maxFreeSockets: 16, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' as const };
    agent = https_ ? new https.Agent(options) : new http.Agent(options);
    agents.set(key, agent);
  }
  return agent;
}

type PostRequest = {
  readonly url: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly allowPrivate: boolean;
};

/**
 * One attempt. A kept-alive connection the receiver had closed (a reset on a reused socket, before
 * any reply) is not the receiver's failure: the request is sent once more on a new connection.
 */
export async function postOnce(request: PostRequest): Promise<AttemptResult> {
  const first = await exchange(request, false);
  if (first.staleSocket) return (await exchange(request, true)).result;
  return first.result;
}

async function exchange(request: PostRequest, fresh: boolean): Promise<{ result: AttemptResult; staleSocket: boolean }> {
  const at = new Date();
  const started = performance.now();
  const done = (r: Omit<AttemptResult, 'at' | 'durationMs'>): AttemptResult => ({
    at,
    durationMs: Math.max(0, Math.round(performance.now() - started)),
    ...r,
  });
  const url = new URL(request.url);
  const host = hostOf(url);
  if (isIP(host) !== 0 && !addressAllowed(host, request.allowPrivate)) {
    const result = done({
      status: null,
      error: `address_not_allowed: ${host} is not a public address (the endpoint was not added with --allow-private)`,
      excerpt: null,
      address: host,
      retryAfter: undefined,
    });
    return { result, staleSocket: false };
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let address: string | null = isIP(host) !== 0 ? host : null;
    let settled = false;
    let replied = false;
    const finish = (r: Omit<AttemptResult, 'at' | 'durationMs' | 'address'>, staleSocket = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A complete reply leaves the connection to the agent for the next attempt; anything else ends it.
      if (!(replied && r.error === null)) req.destroy();
      resolve({ result: done({ ...r, address }), staleSocket });
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'haat-webhooks/1', ...request.headers },
        lookup: guardedLookup(request.allowPrivate) as never,
        agent: fresh ? false : agentFor(url.protocol === 'https:', request.allowPrivate),
      },
      (res) => {
        replied = true;
        const chunks: Buffer[] = [];
        let read = 0;
        const status = res.statusCode ?? null;
        const retryAfter = typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined;
        const end = () =>
          finish({
            status,
            error: null,
            excerpt: Buffer.concat(chunks).toString('utf8').slice(0, EXCERPT_CHARS) || null,
            retryAfter,
          });
        res.on('data', (chunk: Buffer) => {
          if (read < READ_LIMIT_BYTES) chunks.push(chunk);
          read += chunk.length;
          if (read >= READ_LIMIT_BYTES) {
            replied = false; // not read to its end: the connection is not reusable
            end();
          }
        });
        res.on('end', end);
        res.on('error', end);
      },
    );
    req.on('socket', (socket) => {
      if (socket.remoteAddress) address = socket.remoteAddress; // a kept-alive connection
      if (socket.connecting) {
        socket.once('connect', () => {
          address = socket.remoteAddress ?? address;
        });
      }
    });
    const timer = setTimeout(
      () =>
        finish({ status: null, error: `timeout: no complete reply within ${request.timeoutMs} ms`, excerpt: null, retryAfter: undefined }),
      request.timeoutMs,
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.name === 'AddressNotAllowed' ? 'address_not_allowed' : (error.code ?? error.name);
      const stale = !fresh && !replied && req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
      finish({ status: null, error: `${code}: ${error.message}`, excerpt: null, retryAfter: undefined }, stale);
    });
    req.end(request.body);
  });
}
