// A real intake (node:http on a free port) over a test database, one secret for every source, closed
// when the file's tests end; and a sender that signs like any Standard Webhooks client.
import { after } from 'node:test';
import type { DatabasePool } from '../../src/db/pool.ts';
import { newSecret } from '../../src/intake/secrets.ts';
import { startIntake } from '../../src/intake/server.ts';
import { signedHeaders } from '../../src/intake/sign.ts';
import { silent } from './seed.ts';

export type TestIntake = {
  readonly url: string;
  readonly secret: string;
  /** POSTs `body` signed with the secret; returns the status (the body is read and dropped). */
  send(source: string, id: string, body: string): Promise<number>;
};

/** Call at the top level of a test file. */
export async function startTestIntake(pool: DatabasePool): Promise<TestIntake> {
  const secret = newSecret();
  const intake = await startIntake({
    pool,
    log: silent,
    expectedMigration: undefined,
    secrets: { storefront: [secret], payments: [secret], logistics: [secret] },
    port: 0,
    host: '127.0.0.1',
  });
  after(() => intake.close());
  return {
    url: intake.url,
    secret,
    send: async (source, id, body) => {
      const response = await fetch(`${intake.url}/webhooks/${source}`, { method: 'POST', headers: signedHeaders(secret, id, body), body });
      await response.body?.cancel();
      return response.status;
    },
  };
}
