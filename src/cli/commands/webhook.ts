// haat webhook send <type> --source <s> --data <json> [--id <event-id>] [--url <u>]
// Signs an event with the source's first configured secret (Standard Webhooks) and posts it.
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { toJsonText } from '../../domain/json.ts';
import { HaatError, invalidInput } from '../../errors.ts';
import { loadWebhookSecrets } from '../../intake/secrets.ts';
import { signedHeaders } from '../../intake/sign.ts';
import { isSource } from '../../intake/webhooks.ts';
import { type Listener, listen } from '../../outbox/listen.ts';
import { type BaseDeps, buildDeps } from '../context.ts';
import { smallInteger } from '../options.ts';
import { requireValue } from '../prompts.ts';
import { waitForSignal } from './services.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerWebhookCommands(program: Command, base: BaseDeps): void {
  const webhook = program.command('webhook').description('webhooks, for testing and replays');
  webhook
    .command('listen')
    .description('a local receiver for outbound webhooks: verifies each signature and prints the event')
    .option('--port <n>', 'port on 127.0.0.1 (default 8788, beside the intake’s 8787; 0 picks a free one)')
    .option('--secret <whsec>', 'the endpoint’s secret, to verify with (repeat it for a rotated endpoint)', collect, [])
    .action(async (opts: { port?: string; secret: string[] }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const port = opts.port === undefined ? 8788 : smallInteger('--port', opts.port, 0, 65_535);
      for (const secret of opts.secret) {
        if (!/^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/.test(secret))
          throw invalidInput('--secret must be a whsec_… secret', { option: '--secret' });
      }
      const signalled = waitForSignal(deps.log);
      let listener: Listener;
      try {
        listener = await listen({
          port,
          secrets: opts.secret,
          onEvent: (event) => {
            const line = deps.globals.json
              ? toJsonText({ id: event.id, type: event.type, timestamp: event.timestamp, verified: event.verified, body: event.body })
              : `${event.verified === null ? 'unverified' : event.verified ? 'verified' : 'BAD SIGNATURE'}  ${event.id}  ${event.type ?? '?'}  ${event.raw}`;
            deps.io.stdout.write(`${line}\n`);
          },
        });
      } catch (error) {
        throw new HaatError('invalid_input', `cannot listen on 127.0.0.1:${port}: ${(error as Error).message}`, { port }, { cause: error });
      }
      deps.io.stderr.write(
        `listening on ${listener.url} (${opts.secret.length === 0 ? 'no --secret: signatures not checked' : 'verifying signatures'}); Ctrl-C stops\n`,
      );
      await signalled;
      await listener.close();
    });
  webhook
    .command('send')
    .description('sign an event with the source’s secret and POST it to the intake')
    .argument('[type]', 'event type, e.g. order.placed')
    .option('--source <source>', 'storefront, payments or logistics')
    .option('--data <json>', 'the event’s data object, as JSON')
    .option('--id <event-id>', 'webhook-id (default: a new one; reuse it to replay)')
    .option('--url <url>', 'intake URL (default: http://127.0.0.1:$PORT/webhooks/<source>)')
    .option('--at <iso-8601>', 'the event’s own timestamp (default: now); a replay must repeat the same body')
    .action(
      async (
        rawType: string | undefined,
        opts: { source?: string; data?: string; id?: string; url?: string; at?: string },
        command: Command,
      ) => {
        const deps = buildDeps(base, command, 'warn');
        const type = await requireValue(deps.prompter, rawType, { name: 'type', message: 'Event type' });
        const source = await requireValue(deps.prompter, opts.source, { name: 'source', message: 'Source' });
        if (!isSource(source)) throw invalidInput('--source must be storefront, payments or logistics', { source });
        const rawData = await requireValue(deps.prompter, opts.data, { name: 'data', message: 'Data (JSON)' });
        let data: unknown;
        try {
          data = JSON.parse(rawData);
        } catch {
          throw invalidInput('--data is not JSON');
        }
        const secret = (await loadWebhookSecrets(deps.config.home, deps.io.env))[source][0];
        if (!secret) throw invalidInput(`no secret for ${source}: set HAAT_WEBHOOK_SECRET_${source.toUpperCase()} or run haat up once`);
        const id = opts.id ?? `evt_${randomUUID()}`;
        const at = opts.at ?? new Date().toISOString();
        if (Number.isNaN(Date.parse(at))) throw invalidInput('--at must be an ISO-8601 timestamp', { at });
        const body = JSON.stringify({ type, timestamp: at, data });
        const url = opts.url ?? `http://127.0.0.1:${deps.config.port}/webhooks/${source}`;
        let response: Response;
        try {
          response = await fetch(url, {
            method: 'POST',
            headers: signedHeaders(secret, id, body),
            body,
          });
        } catch (error) {
          throw new HaatError('internal', `could not reach ${url}`, { url }, { cause: error });
        }
        const text = await response.text();
        let reply: unknown = text;
        try {
          reply = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        const result = { id, status: response.status, response: reply };
        if (response.status >= 400) {
          const code =
            response.status === 409
              ? 'idempotency_conflict'
              : response.status === 404
                ? 'not_found'
                : response.status >= 500
                  ? 'internal'
                  : 'invalid_input';
          throw new HaatError(code, `the intake answered ${response.status}: ${text}`, result);
        }
        deps.output.result(result, () => `${response.status} ${text} (webhook-id ${id})`);
      },
    );
}
