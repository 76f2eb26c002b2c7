// haat events list · show: every accepted webhook event, its state and its outcome (docs/contract.md,
// Events). Reads only; always allowed, in maintenance too.
import type { Command } from 'commander';
import { z } from 'zod';
import { type EventFilter, eventStates, findEvent, listEvents } from '../../db/events.ts';
import { eventSchemas, sources } from '../../domain/events.ts';
import { ErrorCodes, invalidInput, notFound } from '../../errors.ts';
import { humanTime } from '../../time.ts';
import { type BaseDeps, buildDeps } from '../context.ts';
import { IsoTime, smallInteger } from '../options.ts';
import { keyValues, table } from '../output.ts';
import { requireValue } from '../prompts.ts';

const eventTypes = Object.keys(eventSchemas);
// 'unknown': events finished before outcomes were kept, their keys already purged (migration 000009).
const outcomeCodes = ['applied', 'unknown', ...Object.keys(ErrorCodes)];
const WebhookId = z.string().regex(/^[ -~]{1,255}$/, 'a webhook id is 1–255 printable ASCII characters');

function oneOf(option: string, raw: string | undefined, allowed: readonly string[]): string | undefined {
  if (raw === undefined) return undefined;
  if (!allowed.includes(raw)) throw invalidInput(`${option} must be one of ${allowed.join(', ')}`, { option, value: raw });
  return raw;
}

type ListOptions = { source?: string; type?: string; outcome?: string; state?: string; since?: string; limit?: string };

export function parseEventFilter(opts: ListOptions): EventFilter {
  const since = opts.since === undefined ? undefined : IsoTime.safeParse(opts.since);
  if (since && !since.success) throw invalidInput(`--since ${since.error.issues[0]?.message}`, { option: '--since', value: opts.since });
  const filter: { -readonly [K in keyof EventFilter]: EventFilter[K] } = {
    limit: opts.limit === undefined ? 50 : smallInteger('--limit', opts.limit, 1, 1000),
  };
  const source = oneOf('--source', opts.source, sources);
  if (source !== undefined) filter.source = source;
  const type = oneOf('--type', opts.type, eventTypes);
  if (type !== undefined) filter.type = type;
  const outcome = oneOf('--outcome', opts.outcome, outcomeCodes);
  if (outcome !== undefined) filter.outcome = outcome;
  const state = oneOf('--state', opts.state, eventStates);
  if (state !== undefined) filter.state = state as EventFilter['state'] & string;
  if (since?.success) filter.since = new Date(since.data).toISOString();
  return filter;
}

export function registerEventCommands(program: Command, base: BaseDeps): void {
  const events = program.command('events').description('accepted webhook events: state and outcome');
  events
    .command('list')
    .description('events, newest first')
    .option('--source <source>', `only this source (${sources.join(', ')})`)
    .option('--type <type>', `only this event type (${eventTypes.join(', ')})`)
    .option('--outcome <code>', 'only events with this outcome: applied, or an error code such as insufficient_stock')
    .option('--state <state>', `only events in this state (${eventStates.join(', ')})`)
    .option('--since <time>', 'only events received at or after this ISO-8601 time')
    .option('--limit <n>', 'at most this many (1–1000, default 50)')
    .action(async (opts: ListOptions, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const filter = parseEventFilter(opts);
      const rows = await deps.withDatabase((db) => listEvents(db.pool, filter));
      deps.output.result(rows, () =>
        rows.length === 0
          ? 'no events'
          : table(
              ['RECEIVED', 'SOURCE', 'ID', 'TYPE', 'STATE', 'OUTCOME', 'ORDER', 'ATTEMPTS'],
              rows.map((e) => [
                humanTime(e.received_at),
                e.source,
                e.id,
                e.type,
                e.state,
                e.outcome?.code ?? (e.last_error ? `(${e.last_error.slice(0, 60)})` : ''),
                e.order ?? '',
                String(e.attempts),
              ]),
            ),
      );
    });

  events
    .command('show')
    .description('one event: its state, outcome and the body as received')
    .argument('[source]', `where it came from (${sources.join(', ')})`)
    .argument('[id]', 'its webhook-id')
    .action(async (rawSource: string | undefined, rawId: string | undefined, _opts: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const source = oneOf(
        'source',
        await requireValue(deps.prompter, rawSource, { name: 'source', message: `Source (${sources.join(', ')})` }),
        sources,
      ) as string;
      const id = WebhookId.parse(await requireValue(deps.prompter, rawId, { name: 'id', message: 'Webhook id' }));
      const event = await deps.withDatabase((db) => findEvent(db.pool, source, id));
      if (!event) throw notFound('event', `${source}/${id}`);
      deps.output.result(event, () =>
        [
          keyValues([
            ['event', `${event.source}/${event.id}`],
            ['type', event.type],
            ['received', humanTime(event.received_at)],
            ['state', event.state],
            ['outcome', event.outcome ? `${event.outcome.code}: ${event.outcome.message}` : '—'],
            ...(event.outcome ? [['decided', humanTime(event.outcome.at)] as const] : []),
            ['order', event.order ?? '—'],
            ['attempts', String(event.attempts)],
            ...(event.last_error ? [['last error', event.last_error] as const] : []),
          ]),
          'body:',
          event.body,
        ].join('\n'),
      );
    });
}
