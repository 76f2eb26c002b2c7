// The sending side of Standard Webhooks: the headers of a signed POST (used by `haat webhook send`,
// the soak run and the tests, so there is one way to sign a request).
import { Webhook } from 'standardwebhooks';

export type SignedHeaders = {
  readonly 'content-type': 'application/json';
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
};

/** Headers for `body` (the exact bytes to send) signed with `secret` (`whsec_…`) at time `at`. */
export function signedHeaders(secret: string, id: string, body: string, at: Date = new Date()): SignedHeaders {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}
