// haat endpoints · deliveries — outbound webhooks (docs/webhooks-out.md). Endpoints are operator
// controls: written directly in one transaction with their audit row, never refused by maintenance
// mode. A secret is printed when it is made (add, rotate-secret) and never again.
import type { Command } from 'commander';
import { inTransaction } from '../../db/transaction.ts';
import {
  addEndpoint,
  disableEndpoint,
  enableEndpoint,
  findEndpoint,
  listDeliveries,
  listEndpoints,
  recoverEndpoint,
  removeEndpoint,
  retryDelivery,
  rotateSecret,
  showDelivery,
  showEndpoint,
} from '../../db/webhooks-out.ts';
import { Text } from '../../domain/catalog.ts';
import { parsePatterns } from '../../domain/events-out.ts';
import { HaatError, invalidInput, notFound } from '../../errors.ts';
import { checkDestination, parseEndpointUrl } from '../../outbox/url-rules.ts';
import { humanTime } from '../../time.ts';
import { type BaseDeps, buildDeps, type Deps } from '../context.ts';
import { IsoTime, smallInteger } from '../options.ts';
import { keyValues, table } from '../output.ts';
import { confirmOrRefuse, requireValue } from '../prompts.ts';
import { reason } from './operations.ts';

const ENDPOINT_ID = /^ep_[0-9a-f]{24}$/;
const DELIVERY_ID = /^dlv_[0-9a-f]{32}$/;
const DELIVERY_STATES = ['pending', 'held', 'delivered', 'failed'] as const;

async function endpointId(deps: Deps, raw: string | undefined): Promise<string> {
  const id = await requireValue(deps.prompter, raw, { name: 'id', message: 'Endpoint id (ep_…)' });
  // An id that cannot exist is simply not found: nothing to look up.
  if (!ENDPOINT_ID.test(id)) throw notFound('endpoint', id);
  return id;
}

async function deliveryId(deps: Deps, raw: string | undefined): Promise<string> {
  const id = await requireValue(deps.prompter, raw, { name: 'id', message: 'Delivery id (dlv_…)' });
  if (!DELIVERY_ID.test(id)) throw notFound('delivery', id);
  return id;
}

/** An ISO-8601 time as UTC, or null. A day its month does not have is refused: Date.parse rolls 2026-02-30 over to 2 March. */
function endpointLines(row: { id: string; url: string; events: readonly string[]; state: string; state_reason: string | null }) {
  return [
    ['id', row.id],
    ['url', row.url],
    ['events', row.events.join(', ')],
    ['state', row.state_reason ? `${row.state} (${row.state_reason})` : row.state],
  ] as const;
}

export function registerEndpointCommands(program: Command, base: BaseDeps): void {
  /** The action of a change to one endpoint: its id (argument or prompt) and a --reason, then `run`. */
  const changeOf =
    (run: (deps: Deps, id: string, why: string) => Promise<void>) =>
    async (raw: string | undefined, _o: unknown, command: Command): Promise<void> => {
      const deps = buildDeps(base, command, 'warn');
      const id = await endpointId(deps, raw);
      await run(deps, id, await reason(deps));
    };
  const endpoints = program.command('endpoints').description('outbound webhook endpoints: where haat tells upstream what happened');
  endpoints
    .command('add')
    .description('add an endpoint; prints its signing secret (once)')
    .argument('[url]', 'http or https URL')
    .option('--events <patterns>', 'comma-separated: *, order.*, order.confirmed, payment.unapplied… (default *)')
    .option('--description <text>', 'what it is for')
    .option('--allow-private', 'allow a loopback, private or link-local address (for local receivers)')
    .action(async (raw: string | undefined, opts: { events?: string; description?: string; allowPrivate?: boolean }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const text = await requireValue(deps.prompter, raw, { name: 'url', message: 'Endpoint URL' });
      const url = parseEndpointUrl(text);
      if (!(url instanceof URL)) throw new HaatError(url.code, url.message, { url: text });
      const patterns = parsePatterns(opts.events ?? '*');
      if (!patterns.ok) throw invalidInput(patterns.message, { option: '--events', events: opts.events });
      const description = opts.description === undefined ? null : Text(500).safeParse(opts.description);
      if (description && !description.success) {
        throw invalidInput(`--description ${description.error.issues[0]?.message}`, { option: '--description' });
      }
      const allowPrivate = opts.allowPrivate === true;
      const refusal = await checkDestination(url, allowPrivate);
      if (refusal) throw new HaatError(refusal.code, refusal.message, { url: text });
      const why = deps.globals.reason ?? 'endpoint added';
      const row = await deps.withDatabase((db) =>
        inTransaction(db.pool, (tx) =>
          addEndpoint(
            tx,
            { url: url.href, events: patterns.patterns, description: description?.data ?? null, allowPrivate },
            { actor: deps.globals.actor, reason: why },
          ),
        ),
      );
      deps.output.result(row, () => keyValues([...endpointLines(row), ['secret', `${row.secret}  (shown once: give it to the receiver)`]]));
    });
  endpoints
    .command('list')
    .description('every endpoint (removed ones with --all)')
    .option('--all', 'include removed endpoints')
    .action(async (opts: { all?: boolean }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const rows = await deps.withDatabase((db) => listEndpoints(db.pool, { includeRemoved: opts.all === true }));
      deps.output.result(rows, () =>
        rows.length === 0
          ? 'no endpoints (add one: haat endpoints add <url>)'
          : table(
              ['ID', 'STATE', 'EVENTS', 'URL'],
              rows.map((r) => [r.id, r.state, r.events.join(','), r.url]),
            ),
      );
    });
  endpoints
    .command('show')
    .description('one endpoint: its deliveries by state and its live secrets’ dates')
    .argument('[id]', 'endpoint id')
    .action(async (raw: string | undefined, _o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const id = await endpointId(deps, raw);
      const row = await deps.withDatabase((db) => showEndpoint(db.pool, id));
      deps.output.result(row, () =>
        keyValues([
          ...endpointLines(row),
          ['allow private', String(row.allow_private)],
          ...(row.description ? [['description', row.description] as const] : []),
          ['failing since', row.failing_since ? humanTime(row.failing_since) : '-'],
          [
            'deliveries',
            `${row.deliveries.pending} pending, ${row.deliveries.held} held, ${row.deliveries.delivered} delivered, ${row.deliveries.failed} failed`,
          ],
          ['secrets', row.secrets.map((s) => (s.expires_at ? `rotated, signs until ${humanTime(s.expires_at)}` : 'current')).join('; ')],
          ['added', humanTime(row.created_at)],
        ]),
      );
    });
  endpoints
    .command('disable')
    .description('stop sending (events are held until enabled; needs --reason)')
    .argument('[id]', 'endpoint id')
    .action(
      changeOf(async (deps, id, why) => {
        const row = await deps.withDatabase((db) =>
          inTransaction(db.pool, (tx) => disableEndpoint(tx, id, { actor: deps.globals.actor, reason: why })),
        );
        deps.output.result(row, () => `${row.id}: ${row.state}`);
      }),
    );
  endpoints
    .command('enable')
    .description('send again, held deliveries first (needs --reason)')
    .argument('[id]', 'endpoint id')
    .action(
      changeOf(async (deps, id, why) => {
        const row = await deps.withDatabase((db) => enableEndpoint(db.pool, id, { actor: deps.globals.actor, reason: why }));
        deps.output.result(row, () => `${row.id}: ${row.state}, ${row.released} held deliveries sent again`);
      }),
    );
  endpoints
    .command('remove')
    .description('remove an endpoint: no more deliveries; pending and held ones are failed (asks to confirm; needs --reason)')
    .argument('[id]', 'endpoint id')
    .action(
      changeOf(async (deps, id, why) => {
        const existing = await deps.withDatabase((db) => findEndpoint(db.pool, id));
        if (!existing) throw notFound('endpoint', id);
        await confirmOrRefuse(
          deps.prompter,
          deps.globals.yes,
          `Remove endpoint ${id} (${existing.url})? Its pending deliveries are failed.`,
        );
        const row = await deps.withDatabase((db) =>
          inTransaction(db.pool, (tx) => removeEndpoint(tx, id, { actor: deps.globals.actor, reason: why })),
        );
        deps.output.result(row, () => `${row.id}: removed`);
      }),
    );
  endpoints
    .command('rotate-secret')
    .description('a new signing secret; the old one keeps signing beside it for 24 h (needs --reason)')
    .argument('[id]', 'endpoint id')
    .action(
      changeOf(async (deps, id, why) => {
        const row = await deps.withDatabase((db) =>
          inTransaction(db.pool, (tx) => rotateSecret(tx, id, { actor: deps.globals.actor, reason: why })),
        );
        deps.output.result(row, () =>
          keyValues([
            ['id', row.id],
            ['secret', `${row.secret}  (shown once)`],
            ['previous secret', `signs too until ${humanTime(row.previous_secret_expires_at)}`],
          ]),
        );
      }),
    );
  endpoints
    .command('recover')
    .description('send again every event since a time (deliveries it missed included)')
    .argument('[id]', 'endpoint id')
    .option('--since <iso-8601>', 'events written at or after this time')
    .action(async (raw: string | undefined, opts: { since?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const id = await endpointId(deps, raw);
      const since = await requireValue(deps.prompter, opts.since, { name: 'since', message: 'Since (ISO-8601)' });
      const parsed = IsoTime.safeParse(since);
      if (!parsed.success) throw invalidInput(`--since ${parsed.error.issues[0]?.message}`, { option: '--since', value: since });
      const at = new Date(parsed.data).toISOString();
      const why = deps.globals.reason ?? `recover since ${at}`;
      const result = await deps.withDatabase((db) =>
        inTransaction(db.pool, (tx) => recoverEndpoint(tx, id, at, { actor: deps.globals.actor, reason: why })),
      );
      deps.output.result(
        result,
        () => `${id}: ${result.events} events since ${humanTime(at)} to send again (${result.created} it had never had)`,
      );
    });

  const deliveries = program.command('deliveries').description('outbound webhook deliveries and their attempts');
  deliveries
    .command('list')
    .description('deliveries, newest first')
    .option('--endpoint <id>', 'only this endpoint')
    .option('--state <state>', DELIVERY_STATES.join(' | '))
    .option('--limit <n>', 'at most this many (1–10000, default 50)')
    .action(async (opts: { endpoint?: string; state?: string; limit?: string }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      if (opts.state !== undefined && !(DELIVERY_STATES as readonly string[]).includes(opts.state)) {
        throw invalidInput(`--state must be one of ${DELIVERY_STATES.join(', ')}`, { option: '--state', state: opts.state });
      }
      const limit = opts.limit === undefined ? 50 : smallInteger('--limit', opts.limit, 1, 10_000);
      const endpoint = opts.endpoint === undefined ? undefined : await endpointId(deps, opts.endpoint);
      const rows = await deps.withDatabase(async (db) => {
        if (endpoint !== undefined && !(await findEndpoint(db.pool, endpoint))) throw notFound('endpoint', endpoint);
        return listDeliveries(db.pool, {
          limit,
          ...(endpoint === undefined ? {} : { endpoint }),
          ...(opts.state === undefined ? {} : { state: opts.state }),
        });
      });
      deps.output.result(rows, () =>
        rows.length === 0
          ? 'no deliveries'
          : table(
              ['ID', 'ENDPOINT', 'EVENT', 'STATE', 'ATTEMPTS', 'NEXT', 'LAST'],
              rows.map((r) => [
                r.id,
                r.endpoint,
                r.event.type,
                r.state,
                String(r.attempts),
                r.next_attempt_at ? humanTime(r.next_attempt_at) : '-',
                r.last_status !== null ? String(r.last_status) : (r.last_error ?? '-'),
              ]),
            ),
      );
    });
  deliveries
    .command('show')
    .description('one delivery with every attempt')
    .argument('[id]', 'delivery id')
    .action(async (raw: string | undefined, _o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const id = await deliveryId(deps, raw);
      const row = await deps.withDatabase((db) => showDelivery(db.pool, id));
      // `attempts` is every attempt here (the list's count is attempt_count).
      const { attempt_log: attemptLog, ...delivery } = row;
      const document = { ...delivery, attempts: attemptLog, attempt_count: row.attempts };
      deps.output.result(document, () =>
        [
          keyValues([
            ['id', row.id],
            ['endpoint', row.endpoint],
            ['event', `${row.event.id} (${row.event.type})`],
            ['state', row.state],
            ['attempts', String(row.attempts)],
            ['next attempt', row.next_attempt_at ? humanTime(row.next_attempt_at) : '-'],
          ]),
          row.attempt_log.length === 0
            ? 'no attempts yet'
            : table(
                ['AT', 'STATUS', 'MS', 'ERROR', 'REPLY'],
                row.attempt_log.map((a) => [
                  humanTime(a.at),
                  a.status === null ? '-' : String(a.status),
                  String(a.duration_ms),
                  a.error ?? '',
                  (a.excerpt ?? '').slice(0, 60),
                ]),
              ),
        ].join('\n'),
      );
    });
  deliveries
    .command('retry')
    .description('send a delivery again now (a new round of retries)')
    .argument('[id]', 'delivery id')
    .action(async (raw: string | undefined, _o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const id = await deliveryId(deps, raw);
      const why = deps.globals.reason ?? 'retry';
      const row = await deps.withDatabase((db) =>
        inTransaction(db.pool, (tx) => retryDelivery(tx, id, { actor: deps.globals.actor, reason: why })),
      );
      deps.output.result(row, () => `${row.id}: ${row.state}, next attempt ${row.next_attempt_at ? humanTime(row.next_attempt_at) : '-'}`);
    });
}
