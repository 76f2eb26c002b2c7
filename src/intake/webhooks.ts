// POST /webhooks/<source>: Standard Webhooks signatures over the raw bytes, a body limit enforced
// while reading, then the event stored in the inbox with its command's idempotency key claimed and
// its job queued — in one transaction, shared with the events that arrived in the same few
// milliseconds (intake-batch.ts). A bad request is a 4xx with a JSON error, never a 500.
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { Webhook } from 'standardwebhooks';
import { isConnectionFailure, mapDatabaseError } from '../db/errors.ts';
import { Command, IdempotencyKey } from '../domain/commands.ts';
import { eventToCommand, type Source, sources } from '../domain/events.ts';
import { duplicateKey, parseJsonExact } from '../domain/json.ts';
import type { Logger } from '../log.ts';
import { type IntakeBatcher, ORDER_PLACED_FLAG } from './intake-batch.ts';
import type { WebhookSecrets } from './secrets.ts';

/** Refuses malformed UTF-8 instead of replacing it with U+FFFD; a BOM is kept, so it is not JSON. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const MAX_BODY_BYTES = 256 * 1024;

export type WebhookDeps = { readonly batcher: IntakeBatcher; readonly log: Logger; readonly secrets: WebhookSecrets };

type Reply = { status: number; body: unknown };
const error = (status: number, code: string, message: string): Reply => ({ status, body: { error: { code, message, details: {} } } });

export function isSource(value: string): value is Source {
  return (sources as readonly string[]).includes(value);
}

/** Reads the body, refusing more than `limit` bytes as soon as it is known (413). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const declared = Number.parseInt(req.headers['content-length'] ?? '', 10);
  if (Number.isInteger(declared) && declared > limit) return Promise.resolve('too_large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        resolve('too_large');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export async function handleWebhook(req: http.IncomingMessage, source: string, deps: WebhookDeps): Promise<Reply> {
  if (!isSource(source)) return error(404, 'not_found', `unknown source ${source}`);
  const type = (header(req, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    req.resume();
    return error(415, 'unsupported_media_type', 'Content-Type must be application/json');
  }
  const raw = await readBody(req, MAX_BODY_BYTES);
  if (raw === 'too_large') return error(413, 'payload_too_large', `the body is over ${MAX_BODY_BYTES} bytes`);

  const id = header(req, 'webhook-id');
  const timestamp = header(req, 'webhook-timestamp');
  const signature = header(req, 'webhook-signature');
  if (!id || !timestamp) return error(400, 'invalid_input', 'webhook-id and webhook-timestamp headers are required');
  if (!signature) return error(401, 'unauthorized', 'the webhook-signature header is missing');
  if (!IdempotencyKey.safeParse(id).success) return error(400, 'invalid_input', 'webhook-id must be printable ASCII, 1–255 characters');
  const secrets = deps.secrets[source];
  const verified = secrets.some((secret) => {
    try {
      new Webhook(secret).verify(
        raw,
        { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature },
        { jsonParse: false },
      );
      return true;
    } catch {
      return false;
    }
  });
  if (!verified) return error(401, 'unauthorized', 'signature missing or wrong, or timestamp outside ±5 minutes');

  let body: unknown;
  let text: string;
  try {
    text = utf8.decode(raw);
    body = parseJsonExact(text, { strictNumbers: true });
  } catch {
    return error(400, 'invalid_input', 'the body is not JSON (UTF-8)');
  }
  const repeated = duplicateKey(text);
  if (repeated !== null) {
    return error(
      400,
      'invalid_input',
      `the body names the key ${JSON.stringify(repeated)} twice in one object: ambiguous, so neither is read`,
    );
  }
  const parsed = eventToCommand(source, body);
  if (!parsed.ok) return error(400, 'invalid_input', parsed.message);
  const command = Command.safeParse(parsed.event.command);
  if (!command.success)
    return error(400, 'invalid_input', command.error.issues.map((i) => `${i.path.slice(1).join('.')}: ${i.message}`).join('; '));

  const bodyHash = createHash('sha256').update(raw).digest('hex');
  try {
    const stored = await deps.batcher.store({
      source,
      webhookId: id,
      eventType: parsed.event.type,
      bodySha256: bodyHash,
      body: raw.toString('utf8'),
      command: command.data,
    });
    if (stored.status === 'stored') return { status: 202, body: { accepted: true, id } };
    if (stored.status === 'disabled')
      return error(503, 'feature_disabled', `order.placed is not being accepted right now (flag ${ORDER_PLACED_FLAG}); retry later`);
    if (stored.bodySha256 !== bodyHash) return error(409, 'idempotency_conflict', `webhook-id ${id} was already used with another body`);
    return { status: 200, body: { duplicate: true, id } };
  } catch (e) {
    if (isConnectionFailure(e)) return error(503, 'database_unavailable', 'the database is unreachable; retry later');
    // One event the database refuses (its batch was stored without it) is a bad request.
    const refusal = mapDatabaseError(e);
    if (refusal?.code === 'invalid_input') return error(400, 'invalid_input', `the event cannot be stored: ${refusal.message}`);
    throw e;
  }
}
