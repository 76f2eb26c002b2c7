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

export async function postOnce(request: {
  readonly url: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly allowPrivate: boolean;
}): Promise<AttemptResult> {
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
    return done({
      status: null,
      error: `address_not_allowed: ${host} is not a public address (the endpoint was not added with --allow-private)`,
      excerpt: null,
      address: host,
      retryAfter: undefined,
    });
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<AttemptResult>((resolve) => {
    let address: string | null = isIP(host) !== 0 ? host : null;
    let settled = false;
    const finish = (r: Omit<AttemptResult, 'at' | 'durationMs' | 'address'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(done({ ...r, address }));
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'haat-webhooks/1', ...request.headers },
        lookup: guardedLookup(request.allowPrivate) as never,
        agent: false,
      },
      (res) => {
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
          if (read >= READ_LIMIT_BYTES) end();
        });
        res.on('end', end);
        res.on('error', end);
      },
    );
    req.on('socket', (socket) => {
      socket.on('connect', () => {
        address = socket.remoteAddress ?? address;
      });
    });
    const timer = setTimeout(
      () =>
        finish({ status: null, error: `timeout: no complete reply within ${request.timeoutMs} ms`, excerpt: null, retryAfter: undefined }),
      request.timeoutMs,
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.name === 'AddressNotAllowed' ? 'address_not_allowed' : (error.code ?? error.name);
      finish({ status: null, error: `${code}: ${error.message}`, excerpt: null, retryAfter: undefined });
    });
    req.end(request.body);
  });
}
