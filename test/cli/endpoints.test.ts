// haat endpoints · deliveries · webhook listen through the real CLI on a real PostgreSQL (CONTRACT
// §7): what each command prints, the audit row each change writes, that a secret is printed by add
// and rotate-secret only (never by show, list or the audit log), and that every bad input is refused
// with its stable code and exit code and writes nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { sql } from '../../src/db/sql.ts';
import { newSecret } from '../../src/intake/secrets.ts';
import { type CliResult, haatBin, repoRoot, runCli, spawnCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { BAD_ENDPOINT_URLS, PRIVATE_ENDPOINT_URLS } from '../helpers/endpoint-urls.ts';
import { footprint } from '../helpers/footprint.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { mustApply, seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, { 'TEA-1KG': 100 });
const receiver = await startReceiver();
after(() => receiver.close());
const env = { DATABASE_URL: db.url, HAAT_WAIT_FOR_WORKER_MS: '0' };
const cli = (...argv: string[]) => runCli(argv, { env });
const LOCAL_URL = `http://127.0.0.1:${receiver.port}/x`;
const SECRET = /^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/;

type Endpoint = { id: string; url: string; events: string[]; state: string; state_reason: string | null; secret?: string };
type Shown = Endpoint & {
  deliveries: Record<'pending' | 'held' | 'delivered' | 'failed', number>;
  secrets: { created_at: string; expires_at: string | null }[];
};
type AuditEntry = { actor: string; action: string; target: string; old_value: unknown; new_value: unknown; reason: string };

function parsed<T>(result: CliResult, what: string): T {
  assert.equal(result.code, 0, `${what}\n${result.stdout}${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

async function addEndpoint(...extra: string[]): Promise<Endpoint & { secret: string }> {
  return parsed(await cli('endpoints', 'add', LOCAL_URL, '--allow-private', ...extra, '--json'), 'endpoints add');
}

const show = async (id: string) => parsed<Shown>(await cli('endpoints', 'show', id, '--json'), 'endpoints show');
const auditOf = async (target: string) => parsed<AuditEntry[]>(await cli('audit', '--target', target, '--json'), 'audit');

let orders = 0;
/** An order placed through the write path: its order.pending event fans out to every endpoint. */
async function placeOrder(): Promise<string> {
  const ref = `EP-${++orders}`;
  await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b-1', ref, items: [{ sku: 'TEA-1KG', qty: '1' }] } });
  return ref;
}

const Counts = z.object({ endpoints: z.number(), secrets: z.number(), audit: z.number(), deliveries: z.number() });
const counts = () =>
  db.pool.one(sql.type(Counts)`
    select (select count(*)::int from webhook_endpoints) as endpoints,
           (select count(*)::int from webhook_endpoint_secrets) as secrets,
           (select count(*)::int from audit_log) as audit,
           (select count(*)::int from webhook_deliveries) as deliveries`);

type Expect = { readonly exit: number; readonly code: string };
const invalid: Expect = { exit: 2, code: 'invalid_input' };
const notAllowed: Expect = { exit: 2, code: 'address_not_allowed' };
const notFound: Expect = { exit: 4, code: 'not_found' };
const conflict: Expect = { exit: 3, code: 'conflict' };

/** Runs a command that must be refused: its code, its exit code, and not one row changed anywhere. */
async function refused(argv: readonly string[], expect: Expect): Promise<void> {
  const before = { counts: await counts(), footprint: await footprint(db.pool) };
  const result = await cli(...argv, '--json');
  const what = `${argv.map((a) => JSON.stringify(a)).join(' ')}\n${result.stdout}${result.stderr}`;
  assert.equal(result.code, expect.exit, what);
  assert.equal((JSON.parse(result.stdout) as { error: { code: string } }).error.code, expect.code, what);
  assert.deepEqual(await counts(), before.counts, `nothing written: ${what}`);
  assert.deepEqual(await footprint(db.pool), before.footprint, `no row changed: ${what}`);
}

describe('haat endpoints', () => {
  test('add prints the endpoint and its secret; default events *; --events kept in order; audited without the secret', async () => {
    const plain = await addEndpoint();
    assert.match(plain.id, /^ep_[0-9a-f]{24}$/);
    assert.equal(plain.url, LOCAL_URL);
    assert.deepEqual(plain.events, ['*']);
    assert.equal(plain.state, 'enabled');
    assert.match(plain.secret, SECRET);

    const picky = await addEndpoint('--events', 'payment.unapplied,order.*', '--description', 'ledger sync');
    assert.deepEqual(picky.events, ['payment.unapplied', 'order.*'], 'the order given is kept');
    assert.notEqual(picky.secret, plain.secret);
    const stored = await db.pool.oneFirst(
      sql.type(z.object({ secret: z.string() }))`select secret from webhook_endpoint_secrets where endpoint_id = ${picky.id}`,
    );
    assert.equal(stored, picky.secret, 'the printed secret is the one that signs');

    const [entry, ...more] = await auditOf(plain.id);
    assert.equal(more.length, 0);
    assert.ok(entry, 'an audit row');
    assert.deepEqual([entry.action, entry.actor, entry.target], ['endpoint.add', 'test', plain.id]);
    assert.deepEqual((entry.new_value as { url: string; events: string[] }).events, ['*']);
    const everything = (await cli('audit', '--limit', '10000', '--json')).stdout;
    for (const secret of [plain.secret, picky.secret]) assert.ok(!everything.includes(secret), 'the audit log never holds a secret');
    assert.doesNotMatch(everything, /whsec_/);

    const human = await cli('endpoints', 'add', LOCAL_URL, '--allow-private', '--events', 'order.confirmed');
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^secret: +whsec_\S+ +\(shown once/m);
  });

  test('list and show print the endpoints, deliveries by state and secrets’ dates, never a secret', async () => {
    const endpoint = await addEndpoint('--events', 'order.*');
    await placeOrder();
    const listed = parsed<Endpoint[]>(await cli('endpoints', 'list', '--json'), 'endpoints list');
    const mine = listed.find((e) => e.id === endpoint.id);
    assert.deepEqual([mine?.url, mine?.events, mine?.state], [LOCAL_URL, ['order.*'], 'enabled']);
    const shown = await show(endpoint.id);
    assert.deepEqual([shown.id, shown.url, shown.state], [endpoint.id, LOCAL_URL, 'enabled']);
    assert.deepEqual(shown.deliveries, { pending: 1, held: 0, delivered: 0, failed: 0 });
    assert.equal(shown.secrets.length, 1);
    assert.equal(shown.secrets[0]?.expires_at, null);
    assert.ok(!Number.isNaN(Date.parse(shown.secrets[0]?.created_at ?? '')));
    for (const argv of [
      ['endpoints', 'list', '--json'],
      ['endpoints', 'list'],
      ['endpoints', 'list', '--all', '--json'],
      ['endpoints', 'show', endpoint.id, '--json'],
      ['endpoints', 'show', endpoint.id],
    ]) {
      const out = await cli(...argv);
      assert.equal(out.code, 0, argv.join(' '));
      assert.ok(!out.stdout.includes(endpoint.secret), `${argv.join(' ')} prints no secret`);
      assert.doesNotMatch(out.stdout, /whsec_/, argv.join(' '));
    }
  });

  test('disable and enable change the state with their reason, audited; doing it again changes nothing', async () => {
    const endpoint = await addEndpoint();
    const disabled = parsed<Endpoint>(await cli('endpoints', 'disable', endpoint.id, '--reason', 'receiver down', '--json'), 'disable');
    assert.deepEqual([disabled.state, disabled.state_reason], ['disabled', 'receiver down']);
    assert.equal((await show(endpoint.id)).state, 'disabled');
    await placeOrder();
    assert.deepEqual((await show(endpoint.id)).deliveries, { pending: 0, held: 1, delivered: 0, failed: 0 }, 'held while disabled');

    const before = await counts();
    assert.equal(
      parsed<Endpoint>(await cli('endpoints', 'disable', endpoint.id, '--reason', 'again', '--json'), 'again').state,
      'disabled',
    );
    assert.equal((await counts()).audit, before.audit, 'no change, no audit row');

    const enabled = parsed<Endpoint>(await cli('endpoints', 'enable', endpoint.id, '--reason', 'receiver back', '--json'), 'enable');
    assert.deepEqual([enabled.state, enabled.state_reason], ['enabled', 'receiver back']);
    assert.deepEqual((await show(endpoint.id)).deliveries, { pending: 1, held: 0, delivered: 0, failed: 0 }, 'the held one is sent');
    assert.deepEqual(
      (await auditOf(endpoint.id)).map((e) => [e.action, e.reason, e.actor]),
      [
        ['endpoint.enable', 'receiver back', 'test'],
        ['endpoint.disable', 'receiver down', 'test'],
        ['endpoint.add', 'endpoint added', 'test'],
      ],
    );
  });

  test('rotate-secret prints a new secret; the old one signs beside it until 24 h later by the database clock', async () => {
    const endpoint = await addEndpoint();
    const rotated = parsed<{ id: string; secret: string; previous_secret_expires_at: string }>(
      await cli('endpoints', 'rotate-secret', endpoint.id, '--reason', 'leaked in a log', '--json'),
      'rotate-secret',
    );
    assert.equal(rotated.id, endpoint.id);
    assert.match(rotated.secret, SECRET);
    assert.notEqual(rotated.secret, endpoint.secret);

    const shown = await show(endpoint.id);
    assert.equal(shown.secrets.length, 2, 'two live secrets');
    const [current, previous] = [shown.secrets.filter((s) => s.expires_at === null), shown.secrets.filter((s) => s.expires_at !== null)];
    assert.equal(current.length, 1);
    assert.equal(previous.length, 1);
    assert.equal(Date.parse(previous[0]?.expires_at ?? ''), Date.parse(rotated.previous_secret_expires_at));

    const stored = await db.pool.any(sql.type(
      z.object({ secret: z.string(), expires_at: z.string().nullable(), ahead: z.number().nullable() }),
    )`
      select secret, expires_at, extract(epoch from expires_at - now())::float8 as ahead
      from webhook_endpoint_secrets where endpoint_id = ${endpoint.id} order by expires_at nulls first`);
    assert.deepEqual(
      stored.map((s) => [s.secret, s.expires_at === null]),
      [
        [rotated.secret, true],
        [endpoint.secret, false],
      ],
      'the new secret is current; the old one expires',
    );
    const ahead = stored[1]?.ahead ?? 0;
    assert.ok(ahead > 24 * 3600 - 300 && ahead <= 24 * 3600, `the old secret expires 24 h after the rotation (${ahead} s from now)`);
    assert.equal(Date.parse(stored[1]?.expires_at ?? ''), Date.parse(rotated.previous_secret_expires_at));

    const [entry] = await auditOf(endpoint.id);
    assert.deepEqual([entry?.action, entry?.reason], ['endpoint.rotate_secret', 'leaked in a log']);
    const text = JSON.stringify(entry);
    assert.ok(!text.includes(rotated.secret) && !text.includes(endpoint.secret), 'no secret in the audit row');

    const human = await cli('endpoints', 'show', endpoint.id);
    assert.match(human.stdout, /current; rotated, signs until /);
    assert.doesNotMatch(human.stdout, /whsec_/);
  });

  test('remove fails its pending deliveries and is audited; removing again is a conflict that writes nothing', async () => {
    const endpoint = await addEndpoint();
    await placeOrder();
    const removed = parsed<Endpoint>(
      await cli('endpoints', 'remove', endpoint.id, '--reason', 'receiver retired', '--yes', '--json'),
      'endpoints remove',
    );
    assert.deepEqual([removed.state, removed.state_reason], ['removed', 'receiver retired']);
    const shown = await show(endpoint.id);
    assert.equal(shown.state, 'removed');
    assert.deepEqual(shown.deliveries, { pending: 0, held: 0, delivered: 0, failed: 1 });
    const [entry] = await auditOf(endpoint.id);
    assert.deepEqual([entry?.action, entry?.reason], ['endpoint.remove', 'receiver retired']);
    const listed = parsed<Endpoint[]>(await cli('endpoints', 'list', '--json'), 'list');
    assert.ok(!listed.some((e) => e.id === endpoint.id), 'list leaves removed endpoints out');
    const all = parsed<Endpoint[]>(await cli('endpoints', 'list', '--all', '--json'), 'list --all');
    assert.equal(all.find((e) => e.id === endpoint.id)?.state, 'removed');

    await placeOrder();
    assert.deepEqual((await show(endpoint.id)).deliveries.failed, 1, 'a removed endpoint gets no new deliveries');

    await refused(['endpoints', 'remove', endpoint.id, '--reason', 'again', '--yes'], conflict);
    for (const argv of [
      ['disable', endpoint.id, '--reason', 'r'],
      ['enable', endpoint.id, '--reason', 'r'],
      ['rotate-secret', endpoint.id, '--reason', 'r'],
      ['recover', endpoint.id, '--since', '2026-01-01T00:00:00Z'],
    ]) {
      await refused(['endpoints', ...argv], conflict);
    }
  });

  test('recover gives the endpoint every matching event since then, those from before it existed too; audited', async () => {
    const ref = await placeOrder();
    await mustApply(db.pool, { type: 'order.cancel', payload: { order: ref, reason: 'test' } });
    const endpoint = await addEndpoint('--events', 'order.cancelled');
    const cancelled = await db.pool.oneFirst(
      sql.type(z.object({ n: z.number() }))`select count(*)::int as n from outbound_events where type = 'order.cancelled'`,
    );
    assert.ok(cancelled >= 1);
    const result = parsed<{ endpoint: string; events: number; created: number }>(
      await cli('endpoints', 'recover', endpoint.id, '--since', '2000-01-01T00:00:00Z', '--json'),
      'recover',
    );
    assert.deepEqual(result, { endpoint: endpoint.id, since: '2000-01-01T00:00:00.000Z', events: cancelled, created: cancelled });
    assert.deepEqual((await show(endpoint.id)).deliveries, { pending: cancelled, held: 0, delivered: 0, failed: 0 });
    const [entry] = await auditOf(endpoint.id);
    assert.equal(entry?.action, 'endpoint.recover');
    const later = parsed<{ events: number; created: number }>(
      await cli('endpoints', 'recover', endpoint.id, '--since', '2096-02-29T00:00:00Z', '--json'),
      'recover from a leap day to come',
    );
    assert.deepEqual([later.events, later.created], [0, 0]);
  });
});

describe('haat deliveries', () => {
  test('list, show and retry a delivery; retry while its endpoint is disabled is a conflict that writes nothing', async () => {
    const endpoint = await addEndpoint('--events', 'order.pending');
    const ref = await placeOrder();
    type Delivery = { id: string; endpoint: string; event: { id: string; type: string }; state: string; attempts: number };
    const [delivery, ...others] = parsed<Delivery[]>(await cli('deliveries', 'list', '--endpoint', endpoint.id, '--json'), 'list');
    assert.equal(others.length, 0);
    assert.ok(delivery);
    assert.deepEqual(
      [delivery.endpoint, delivery.event.type, delivery.state, delivery.attempts],
      [endpoint.id, 'order.pending', 'pending', 0],
    );
    const event = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
      select e.id from outbound_events e join orders o on o.id = e.order_id where o.ref = ${ref} and e.type = 'order.pending'`);
    assert.equal(delivery.event.id, event);
    const shown = parsed<Delivery & { attempts: unknown[]; attempt_count: number }>(
      await cli('deliveries', 'show', delivery.id, '--json'),
      'deliveries show',
    );
    assert.deepEqual([shown.id, shown.attempts, shown.attempt_count], [delivery.id, [], 0]);
    const held = parsed<Delivery[]>(await cli('deliveries', 'list', '--endpoint', endpoint.id, '--state', 'held', '--json'), 'held');
    assert.deepEqual(held, []);

    assert.equal((await cli('endpoints', 'disable', endpoint.id, '--reason', 'maintenance window')).code, 0);
    const nowHeld = parsed<Delivery[]>(await cli('deliveries', 'list', '--endpoint', endpoint.id, '--state', 'held', '--json'), 'held');
    assert.deepEqual(
      nowHeld.map((d) => d.id),
      [delivery.id],
    );
    await refused(['deliveries', 'retry', delivery.id, '--reason', 'try now'], conflict);

    assert.equal((await cli('endpoints', 'enable', endpoint.id, '--reason', 'window over')).code, 0);
    const retried = parsed<Delivery>(await cli('deliveries', 'retry', delivery.id, '--reason', 'try now', '--json'), 'retry');
    assert.equal(retried.state, 'pending');
    const [entry] = await auditOf(delivery.id);
    assert.deepEqual([entry?.action, entry?.reason], ['delivery.retry', 'try now']);
  });
});

describe('bad input: refused with its code, nothing written', () => {
  let existing: Endpoint;
  before(async () => {
    existing = await addEndpoint();
  });
  const unknownIds = () => [`ep_${'0'.repeat(24)}`, 'ep_nope', `EP_${'A'.repeat(24)}`, `${existing.id}0`];

  test('endpoints add: a URL that is not http(s), has credentials or a fragment, or is too long', async () => {
    for (const url of BAD_ENDPOINT_URLS) {
      await refused(['endpoints', 'add', url], invalid);
      await refused(['endpoints', 'add', url, '--allow-private'], invalid);
    }
  });

  test('endpoints add: a loopback, private, link-local or otherwise not public address, without --allow-private', async () => {
    for (const url of [LOCAL_URL, ...PRIVATE_ENDPOINT_URLS]) {
      await refused(['endpoints', 'add', url], notAllowed);
    }
  });

  test('endpoints add: an unknown event pattern, an empty one, a bad description', async () => {
    for (const events of ['order.teleported', 'foo.*', '', ',', 'order.*,', 'order.', '*.*', 'ORDER.*', 'order.**', 'order', ' ']) {
      await refused(['endpoints', 'add', LOCAL_URL, '--allow-private', '--events', events], invalid);
    }
    const many = Array.from({ length: 51 }, (_, i) => (i % 2 === 0 ? 'order.*' : 'order.pending')).join(',');
    assert.equal(
      parsed<Endpoint>(await cli('endpoints', 'add', LOCAL_URL, '--allow-private', '--events', many, '--json'), 'duplicates').events.length,
      2,
      'duplicate patterns are dropped, not counted',
    );
    for (const description of ['bell\u0007', 'line\nbreak', 'rtl\u202eoverride', 'd'.repeat(501)]) {
      await refused(['endpoints', 'add', LOCAL_URL, '--allow-private', '--description', description], invalid);
    }
    await refused(['endpoints', 'add'], invalid);
    await refused(['endpoints', 'add', LOCAL_URL, '--allow-private', '--reason', 'line\nbreak'], invalid);
  });

  test('an unknown endpoint id, well-formed or not: not found for show, disable, enable, remove, rotate-secret, recover', async () => {
    for (const id of unknownIds()) {
      await refused(['endpoints', 'show', id], notFound);
      await refused(['endpoints', 'disable', id, '--reason', 'r'], notFound);
      await refused(['endpoints', 'enable', id, '--reason', 'r'], notFound);
      await refused(['endpoints', 'remove', id, '--reason', 'r', '--yes'], notFound);
      await refused(['endpoints', 'rotate-secret', id, '--reason', 'r'], notFound);
      await refused(['endpoints', 'recover', id, '--since', '2026-01-01T00:00:00Z'], notFound);
      await refused(['deliveries', 'list', '--endpoint', id], notFound);
    }
  });

  test('a missing id, --reason or confirmation (no terminal)', async () => {
    for (const verb of ['show', 'disable', 'enable', 'remove', 'rotate-secret', 'recover']) {
      await refused(['endpoints', verb], invalid);
    }
    for (const verb of ['disable', 'enable', 'rotate-secret']) {
      await refused(['endpoints', verb, existing.id], invalid);
      await refused(['endpoints', verb, existing.id, '--reason', ''], invalid);
      await refused(['endpoints', verb, existing.id, '--reason', 'bell\u0007'], invalid);
    }
    await refused(['endpoints', 'remove', existing.id, '--yes'], invalid);
    await refused(['endpoints', 'remove', existing.id, '--reason', 'r'], invalid);
    await refused(['endpoints', 'recover', existing.id], invalid);
    await refused(['deliveries', 'show'], invalid);
    await refused(['deliveries', 'retry'], invalid);
    await refused(['endpoints', 'show', existing.id, '--nope'], invalid);
    assert.equal((await show(existing.id)).state, 'enabled');
  });

  test('recover with a --since that is not an ISO-8601 time', async () => {
    for (const since of [
      'yesterday',
      '',
      '1700000000',
      '2026-13-01T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2026-02-29T00:00:00Z',
      '2026-04-31',
      '2026-12-01T25:00:00Z',
      '2026-12-01T10:00:00+25:00',
      'now',
    ]) {
      await refused(['endpoints', 'recover', existing.id, '--since', since], invalid);
    }
  });

  test('deliveries: a bad --state or --limit, an unknown delivery', async () => {
    for (const state of ['bogus', '', 'Pending', 'retrying']) await refused(['deliveries', 'list', '--state', state], invalid);
    for (const limit of ['0', '-1', '1.5', '10001', 'abc', '']) await refused(['deliveries', 'list', '--limit', limit], invalid);
    for (const id of [`dlv_${'0'.repeat(32)}`, 'dlv_nope', `DLV_${'A'.repeat(32)}`, 'nope']) {
      await refused(['deliveries', 'show', id], notFound);
      await refused(['deliveries', 'retry', id, '--reason', 'r'], notFound);
    }
  });
});

describe('haat webhook listen', () => {
  test('verifies each signature: prints verified and answers 204, or BAD SIGNATURE and 401; SIGTERM ends it with exit 0', async () => {
    const secret = newSecret();
    const rotated = newSecret();
    const child = spawn(process.execPath, [haatBin, 'webhook', 'listen', '--port', '0', '--secret', secret, '--secret', rotated], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const until = async (what: string, ok: () => boolean) => {
        for (const deadline = Date.now() + 30_000; !ok(); await new Promise((r) => setTimeout(r, 20))) {
          if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${what}: ${stdout}${stderr}`);
        }
      };
      await until('listening line on stderr', () => /listening on http:\/\/127\.0\.0\.1:\d+\//.test(stderr));
      const url = /listening on (http:\/\/127\.0\.0\.1:(\d+)\/)/.exec(stderr)?.[1] as string;
      assert.notEqual(url, 'http://127.0.0.1:0/');

      const post = async (id: string, body: string, signer: string) => {
        const at = new Date();
        const response = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'webhook-id': id,
            'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
            'webhook-signature': new Webhook(signer).sign(id, at, body),
          },
          body,
        });
        await response.arrayBuffer();
        return response.status;
      };
      const body = (type: string) => JSON.stringify({ type, timestamp: new Date().toISOString(), data: { sequence: 1 } });

      assert.equal(await post('evt_good', body('order.confirmed'), secret), 204);
      await until('a verified line', () => stdout.includes('evt_good'));
      assert.match(stdout, /^verified {2}evt_good {2}order\.confirmed {2}\{/m);

      assert.equal(await post('evt_forged', body('order.refunded'), newSecret()), 401);
      await until('a BAD SIGNATURE line', () => stdout.includes('evt_forged'));
      assert.match(stdout, /^BAD SIGNATURE {2}evt_forged {2}order\.refunded/m);

      assert.equal(await post('evt_rotated', body('order.shipped'), rotated), 204, 'any of the secrets given verifies');
      await until('the third line', () => stdout.includes('evt_rotated'));
      assert.match(stdout, /^verified {2}evt_rotated {2}order\.shipped/m);
      assert.equal(stdout.trim().split('\n').length, 3, stdout);

      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  test('a bad --secret or --port is invalid_input (exit 2); a port in use cannot be listened on', async () => {
    for (const argv of [
      ['--secret', 'nope'],
      ['--secret', 'whsec_short'],
      ['--secret', ''],
      ['--secret', `${newSecret()} `],
      ['--secret', newSecret(), '--secret', 'whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'],
      ['--port', '65536'],
      ['--port', '-1'],
      ['--port', 'abc'],
    ]) {
      const result = await cli('webhook', 'listen', ...argv, '--json');
      assert.equal(result.code, 2, `${argv.join(' ')}\n${result.stdout}${result.stderr}`);
      assert.equal(JSON.parse(result.stdout).error.code, 'invalid_input', argv.join(' '));
    }
    const busy = await spawnCli(['webhook', 'listen', '--port', String(receiver.port), '--json'], { timeoutMs: 30_000 });
    assert.equal(busy.code, 2, busy.stdout + busy.stderr);
    assert.equal(JSON.parse(busy.stdout).error.code, 'invalid_input');
  });
});
