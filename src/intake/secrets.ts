// Webhook secrets per source: HAAT_WEBHOOK_SECRET_<SOURCE> (comma-separated, for rotation: any one
// verifies), else HAAT_HOME/webhook-secrets.json, which `haat up` generates when missing.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { type Source, sources } from '../domain/events.ts';
import { invalidInput } from '../errors.ts';

export type WebhookSecrets = Readonly<Record<Source, readonly string[]>>;

const Secret = z.string().regex(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/, 'a webhook secret is whsec_ followed by base64 (at least 24 bytes)');
const SecretsFile = z.record(z.enum(sources), z.array(Secret).min(1));

export const secretsFile = (home: string) => path.join(home, 'webhook-secrets.json');

export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Writes a secret for every source that has none in the environment, unless the file exists. */
export async function ensureWebhookSecrets(home: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  const file = secretsFile(home);
  if (sources.every((s) => env[`HAAT_WEBHOOK_SECRET_${s.toUpperCase()}`])) return null;
  await fs.mkdir(home, { recursive: true });
  const secrets = Object.fromEntries(sources.map((s) => [s, [newSecret()]]));
  try {
    await fs.writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    return file;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw error;
  }
}

export async function loadWebhookSecrets(home: string, env: NodeJS.ProcessEnv): Promise<WebhookSecrets> {
  const fromFile = await fs
    .readFile(secretsFile(home), 'utf8')
    .then((text) => SecretsFile.parse(JSON.parse(text)))
    .catch(() => ({}) as Partial<Record<Source, string[]>>);
  const result = {} as Record<Source, readonly string[]>;
  for (const source of sources) {
    const raw = env[`HAAT_WEBHOOK_SECRET_${source.toUpperCase()}`];
    const list = raw ? raw.split(',').map((s) => s.trim()) : (fromFile[source] ?? []);
    for (const secret of list) {
      if (!Secret.safeParse(secret).success) throw invalidInput(`HAAT_WEBHOOK_SECRET_${source.toUpperCase()}: not a whsec_ secret`);
    }
    result[source] = list;
  }
  return result;
}
