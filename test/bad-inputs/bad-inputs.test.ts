// The bad-input suite (the refusals of docs/contract.md): one table of cases across the CLI and the
// webhook intake, each with the exit code or HTTP status and the error code it must get. Every case
// runs against the same seeded database and must leave it exactly as it was: no row inserted, updated
// or deleted in any table of haat or of the job queue (so: nothing stored, nothing enqueued, no audit
// row). The CLI cases run twice, with --json (one error document on stdout) and without (a message on
// stderr); neither may show a stack trace.
//
// Some bad inputs are recorded by design and so are not here: a payment for the wrong amount or
// currency, or for an order that is no longer pending, is kept as an unapplied payment; an accepted
// webhook whose command is refused (unknown SKU, too little stock) records that outcome. They have
// their own tests (test/db/money.test.ts, test/intake/webhooks.test.ts).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import { applyCommand } from '../../src/commands/apply-command.ts';
import { sql } from '../../src/db/sql.ts';
import { newSecret } from '../../src/intake/secrets.ts';
import { signedHeaders } from '../../src/intake/sign.ts';
import { expireReservations } from '../../src/worker/tasks/expire-reservations.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { BAD_ENDPOINT_URLS, PRIVATE_ENDPOINT_URLS } from '../helpers/endpoint-urls.ts';
import { footprint } from '../helpers/footprint.ts';
import { startTestIntake } from '../helpers/intake.ts';
import { apply, mustApply, seedCatalog, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
const intake = await startTestIntake(db.pool);
const secret = intake.secret;
const cliEnv = { DATABASE_URL: db.url, HAAT_WAIT_FOR_WORKER_MS: '0' };

// ---- the seeded world every case starts from -------------------------------------------------
// TEA-1KG: 11 on hand (10 + 1 under the key `used-key`), 3 reserved (2 by the pending order P-1,
// 1 by W-1, placed by the webhook evt_seen). RICE-5KG: C-1 confirmed, D-1 delivered. Orders in
// every terminal state: X-CANCELLED, X-EXPIRED, X-REJECTED, X-REFUNDED.
await seedCatalog(db.pool, { 'TEA-1KG': 10, 'RICE-5KG': 10 });
{
  const used = await runCli(['stock', 'receive', 'TEA-1KG', '1', '--idempotency-key', 'used-key'], { env: cliEnv });
  assert.equal(used.code, 0, used.stderr);
}
await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b-1', ref: 'P-1', items: [{ sku: 'TEA-1KG', qty: '2' }] } });
for (const ref of ['C-1', 'D-1']) {
  await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b-2', ref, items: [{ sku: 'RICE-5KG', qty: '1' }] } });
  await mustApply(db.pool, { type: 'order.confirm', payload: { order: ref, payment_ref: `pay-${ref}`, amount: '12999' } });
}
await mustApply(db.pool, { type: 'order.ship', payload: { order: 'D-1', tracking: 'AWB1' } });
await mustApply(db.pool, { type: 'order.deliver', payload: { order: 'D-1' } });
{
  const placeRice = (ref: string, qty = '1') =>
    mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b-3', ref, items: [{ sku: 'RICE-5KG', qty }] } });
  await placeRice('X-CANCELLED');
  await mustApply(db.pool, { type: 'order.cancel', payload: { order: 'X-CANCELLED', reason: 'changed mind' } });
  await placeRice('X-EXPIRED');
  await db.pool.query(sql.unsafe`update orders set expires_at = now() - interval '1 second' where ref = 'X-EXPIRED'`);
  assert.deepEqual(await expireReservations(db.pool, silent), ['X-EXPIRED']);
  const rejected = await apply(db.pool, {
    type: 'order.place',
    payload: { buyer: 'b-3', ref: 'X-REJECTED', items: [{ sku: 'RICE-5KG', qty: '999' }] },
  });
  assert.equal(rejected.ok, false);
  await placeRice('X-REFUNDED');
  await mustApply(db.pool, { type: 'order.confirm', payload: { order: 'X-REFUNDED', payment_ref: 'pay-x-refunded', amount: '12999' } });
  await mustApply(db.pool, { type: 'order.ship', payload: { order: 'X-REFUNDED', tracking: 'AWB2' } });
  await mustApply(db.pool, { type: 'order.deliver', payload: { order: 'X-REFUNDED' } });
  await mustApply(db.pool, { type: 'order.refund', payload: { order: 'X-REFUNDED', reason: 'damaged' } });
}
// The lifecycle (CONTRACT §8), on SKUs of their own (DAL-1KG at 50.00, SALT-1KG at 20.00) so the
// TEA-1KG and RICE-5KG counts above stay as they are. L-PART: prepaid, DAL×3 SALT×2, DAL×2 sent as
// SH-L1 (AWB-L1): partially_shipped. L-DELIV: prepaid, DAL×2 delivered (SH-L2), DAL×1 awaiting
// return RT-L2, DAL×1 asked back as RT-L2X and rejected. L-COD: cash on delivery, DAL×1 sent as
// SH-L3 (AWB-L3), not delivered: nothing collected.
for (const [code, price] of [
  ['DAL-1KG', '5000'],
  ['SALT-1KG', '2000'],
] as const) {
  await mustApply(db.pool, { type: 'sku.add', payload: { code, seller: 'tea-house', price, currency: 'INR' } });
  await mustApply(db.pool, { type: 'stock.receive', payload: { sku: code, qty: '50' } });
}
{
  const lines = (...items: [string, number][]) => items.map(([sku, qty]) => ({ sku, qty: String(qty) }));
  const placeAndPay = async (ref: string, items: [string, number][], amount: string) => {
    await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b-5', ref, items: lines(...items) } });
    await mustApply(db.pool, { type: 'order.confirm', payload: { order: ref, payment_ref: `pay-${ref}`, amount } });
  };
  await placeAndPay(
    'L-PART',
    [
      ['DAL-1KG', 3],
      ['SALT-1KG', 2],
    ],
    '19000',
  );
  await mustApply(db.pool, {
    type: 'order.ship',
    payload: { order: 'L-PART', items: lines(['DAL-1KG', 2]), tracking: 'AWB-L1', shipment_ref: 'SH-L1' },
  });
  await placeAndPay('L-DELIV', [['DAL-1KG', 2]], '10000');
  await mustApply(db.pool, { type: 'order.ship', payload: { order: 'L-DELIV', tracking: 'AWB-L2', shipment_ref: 'SH-L2' } });
  await mustApply(db.pool, { type: 'shipment.deliver', payload: { shipment: 'SH-L2' } });
  for (const ref of ['RT-L2', 'RT-L2X']) {
    await mustApply(db.pool, { type: 'return.request', payload: { order: 'L-DELIV', items: lines(['DAL-1KG', 1]), reason: 'torn', ref } });
  }
  await mustApply(db.pool, { type: 'return.reject', payload: { return: 'RT-L2X', reason: 'past the window' } });
  await mustApply(db.pool, {
    type: 'order.place',
    payload: { buyer: 'b-5', ref: 'L-COD', items: lines(['DAL-1KG', 1]), payment_method: 'cod' },
  });
  await mustApply(db.pool, { type: 'order.confirm_cod', payload: { order: 'L-COD' } });
  await mustApply(db.pool, {
    type: 'order.ship',
    payload: { order: 'L-COD', tracking: 'AWB-L3', shipment_ref: 'SH-L3', courier: 'bluedart' },
  });
}

const NOW = () => new Date().toISOString();
const eventText = (type: string, data: unknown) => JSON.stringify({ type, timestamp: NOW(), data });
const placed = (items: unknown = [{ sku: 'TEA-1KG', qty: 1 }], extra: Record<string, unknown> = {}) =>
  eventText('order.placed', { ref: 'W-9', buyer: 'b-9', currency: 'INR', items, ...extra });
const captured = (amount: unknown = 25998, extra: Record<string, unknown> = {}) =>
  eventText('payment.captured', { order_ref: 'P-1', payment_ref: 'pay-9', amount, currency: 'INR', ...extra });
/** An event whose JSON carries a number literal exactly as written (1e3, 2.0, 2^63 …). */
const withLiteral = (text: string, literal: string) => text.replace('"§"', literal);

const SEEN_BODY = placed([{ sku: 'TEA-1KG', qty: 1 }], { ref: 'W-1' });
assert.equal(await intake.send('storefront', 'evt_seen', SEEN_BODY), 202);
await applyCommand(db.pool, 'webhook:storefront', 'evt_seen', silent);

// Outbound webhooks: ENDPOINT enabled; REMOVED removed; DISABLED disabled, holding the deliveries
// (HELD is one) of the order E-1, placed and cancelled after it was added (stock as it was).
async function endpointAdd(...argv: string[]): Promise<string> {
  const added = await runCli(['endpoints', 'add', 'http://127.0.0.1:9/hook', '--allow-private', ...argv, '--json'], { env: cliEnv });
  assert.equal(added.code, 0, added.stdout);
  return (JSON.parse(added.stdout) as { id: string }).id;
}
const ENDPOINT = await endpointAdd('--events', 'payment.unapplied');
const REMOVED = await endpointAdd();
assert.equal((await runCli(['endpoints', 'remove', REMOVED, '--reason', 'retired', '--yes'], { env: cliEnv })).code, 0);
const DISABLED = await endpointAdd('--events', 'order.*');
await mustApply(db.pool, { type: 'order.place', payload: { buyer: 'b-4', ref: 'E-1', items: [{ sku: 'RICE-5KG', qty: '1' }] } });
await mustApply(db.pool, { type: 'order.cancel', payload: { order: 'E-1', reason: 'changed mind' } });
assert.equal((await runCli(['endpoints', 'disable', DISABLED, '--reason', 'receiver down'], { env: cliEnv })).code, 0);
const HELD = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
  select id from webhook_deliveries where endpoint_id = ${DISABLED} and state = 'held' order by id limit 1`);

// ---- the table ---------------------------------------------------------------------------------
type Cli = { readonly cli: readonly string[]; readonly env?: Readonly<Record<string, string>> };
type Http = {
  readonly http: {
    readonly source?: string;
    readonly method?: string;
    readonly body: string | Buffer;
    readonly id?: string;
    /**
     * What the signature covers, when it is not what is sent; `ageMs` dates the signature that long
     * before the moment the request is sent (negative: in the future), not before the table was
     * built, minutes earlier; `timestamp` is a raw header value, signed as it is (so a case about
     * the timestamp cannot pass on a bad signature).
     */
    readonly signed?: { readonly body?: string; readonly secret?: string; readonly ageMs?: number; readonly timestamp?: string };
    /** Header overrides; null removes the header. */
    readonly headers?: Readonly<Record<string, string | null>>;
  };
};
type Expect = { readonly exit: number; readonly code: string } | { readonly status: number; readonly code: string | null };
type Case = { readonly kind: string; readonly input: string; readonly expect: Expect; readonly during?: 'maintenance' } & (Cli | Http);

const invalid = { exit: 2, code: 'invalid_input' } as const;
const notFound = { exit: 4, code: 'not_found' } as const;
const badRequest = { status: 400, code: 'invalid_input' } as const;
const unauthorized = { status: 401, code: 'unauthorized' } as const;

const BAD_COUNTS = [
  '0',
  '-1',
  '1.5',
  '1e3',
  '0x10',
  ' 2',
  '2 ',
  '+2',
  '',
  '１２',
  '١٢',
  '२',
  '1000001',
  '9223372036854775808',
  '99999999999999999999999',
  '1'.repeat(400),
  'NaN',
  'null',
];
const BAD_MONEY = [
  '10.5',
  '10.50',
  '"10.50"',
  '₹10',
  '10 INR',
  'NaN',
  'Infinity',
  '-1',
  '1e3',
  '1000000000001',
  '9223372036854775808',
  '',
  'null',
];
const BAD_KEYS: readonly [string, string][] = [
  ['empty', ''],
  ['256 characters', 'k'.repeat(256)],
  ['a tab', 'key\twith-tab'],
  ['a newline', 'key\nline'],
  ['DEL', 'key\u007f'],
  ['Cyrillic', 'ключ'],
  ['an emoji', 'key-🔑'],
];
const BAD_JSON_COUNTS = ['0', '-1', '1.5', '1e3', '2.0', '1E0', '"2"', 'null', 'true', '[1]', '1000001', '9223372036854775808', '1e400'];
const BAD_JSON_MONEY = ['10.5', '25998.0', '2.5998e4', '"25998"', '"₹259.98"', 'null', '-25998', '0x6590', '1000000000001', '1e400'];
const BAD_EVENT_PATTERNS = ['order.teleported', 'foo.*', '', ',', 'order.*,', 'order.', '*.*', 'ORDER.*', 'order'];
const UNKNOWN_ENDPOINTS = [`ep_${'0'.repeat(24)}`, 'ep_nope'];
const UNKNOWN_DELIVERIES = [`dlv_${'0'.repeat(32)}`, 'dlv_nope'];
// The lifecycle's options (CONTRACT §8): quantities where units are shipped, cancelled, returned or
// refunded; amounts of a refund; courier handles; shipment and return refs; shipment keys.
const LIFECYCLE_BAD_COUNTS = ['0', '-1', '1.5', '1e3', '', '+1', '1000001', '9223372036854775808'];
const BAD_REFUND_AMOUNTS = ['0', '-5', '1.5', '10.50', '', 'abc', '1e3', '₹10', '00', '1000000000001', '9223372036854775808'];
const BAD_COURIERS = ['Blue Dart', 'BLUEDART', '', '-bluedart', 'blue_dart', 'bluedart:x', 'c'.repeat(64), 'ब्लूडार्ट', 'blue\u0007'];
const BAD_LIFECYCLE_REFS = ['', ' SH-9', 'SH 9', '-SH', 'SH/9', 'S'.repeat(65), 'SH-9\u0007', 'एस-9'];
const BAD_SHIPMENT_KEYS = ['', 'x'.repeat(201), 'AWB\u0007', 'AWB\n1', 'AWB-१'];
const UNKNOWN_SHIPMENTS = ['NO-SUCH-SHIPMENT', '00000000-0000-4000-8000-000000000000'];
const UNKNOWN_RETURNS = ['NO-SUCH-RETURN', '00000000-0000-4000-8000-000000000000'];
const SHIPMENT_VERBS: readonly (readonly string[])[] = [['deliver'], ['fail', '--reason', 'r'], ['reattempt'], ['rto'], ['rto-receive']];

// Bulk import files (docs/contract.md, Bulk import): each refused whole, with its rows, and nothing
// written.
const importDir = await fs.mkdtemp(path.join(os.tmpdir(), 'haat-bad-import-'));
after(() => fs.rm(importDir, { recursive: true, force: true }));
let importFiles = 0;
async function importFile(content: string | Uint8Array): Promise<string> {
  const file = path.join(importDir, `f${++importFiles}.csv`);
  await fs.writeFile(file, content);
  return file;
}
const SKUS_HEADER = 'code,seller,price,currency,title\n';
const bigImport = path.join(importDir, 'big.csv');
await fs.writeFile(bigImport, `sku,qty\n${'TEA-1KG,1\n'.repeat(5_300_000)}`);
const IMPORT_FILES: readonly (readonly [string, 'skus' | 'stock', string | Uint8Array])[] = [
  ['a wrong header', 'skus', 'code,seller,cost,currency\nNEW-1,tea-house,1,INR\n'],
  ['a duplicated column', 'stock', 'sku,qty,qty\nTEA-1KG,1,1\n'],
  ['an empty file', 'stock', ''],
  ['a file of blank lines', 'stock', '\r\n\r\n'],
  ['invalid UTF-8', 'stock', Buffer.concat([Buffer.from('sku,qty\nTEA-1KG,1\nTEA'), Buffer.from([0xff]), Buffer.from(',1\n')])],
  ['UTF-16', 'stock', Buffer.from('\ufeffsku,qty\nTEA-1KG,1\n', 'utf16le')],
  ['a NUL byte', 'stock', 'sku,qty,reason\nTEA-1KG,1,a\u0000\n'],
  ['a duplicate row', 'stock', 'sku,qty\nTEA-1KG,1\nRICE-5KG,1\nTEA-1KG,1\n'],
  ['a row whose SKU another row creates', 'skus', `${SKUS_HEADER}NEW-1,tea-house,1,INR,a\nNEW-1,tea-house,2,INR,b\n`],
  ['CRLF endings and one bad price', 'skus', `${SKUS_HEADER}NEW-1,tea-house,100,INR,a\r\nNEW-2,tea-house,1.5,INR,b\r\n`],
  ['a comma not quoted', 'skus', `${SKUS_HEADER}NEW-1,tea-house,100,INR,Tea, 1 kg\n`],
  ['quoted commas and a bad currency', 'skus', `${SKUS_HEADER}NEW-1,tea-house,100,INR,"Tea, 1 kg"\nNEW-2,tea-house,100,inr,"Rice, 5 kg"\n`],
  ['a stray quote', 'stock', 'sku,qty\n"TEA-1KG,1\nRICE-5KG,1\n'],
  ['a bad quantity', 'stock', 'sku,qty\nTEA-1KG,1\nRICE-5KG,0\n'],
  ['a non-canonical SKU code', 'skus', `${SKUS_HEADER}new-1,tea-house,100,INR,a\n`],
  ['an unknown seller', 'skus', `${SKUS_HEADER}NEW-1,nobody,100,INR,a\n`],
  ['a SKU that exists', 'skus', `${SKUS_HEADER}TEA-1KG,tea-house,100,INR,a\n`],
  ['an unknown SKU', 'stock', 'sku,qty\nTEA-1KG,1\nNOPE-1,1\n'],
];
const validStock = await importFile('sku,qty\nTEA-1KG,1\n');
const IMPORT_CASES: readonly Case[] = [
  ...(await Promise.all(
    IMPORT_FILES.map(
      async ([input, kind, content]): Promise<Case> => ({
        kind: 'import',
        input: `import ${kind}: ${input}`,
        cli: ['import', kind, await importFile(content)],
        expect: invalid,
      }),
    ),
  )),
  { kind: 'import', input: 'import stock: a 50 MB file', cli: ['import', 'stock', bigImport], expect: invalid },
  {
    kind: 'import',
    input: 'import stock --skip-invalid, every row invalid',
    cli: ['import', 'stock', await importFile('sku,qty\nNOPE-1,1\nTEA-1KG,1.5\n'), '--skip-invalid'],
    expect: { exit: 3, code: 'import_incomplete' },
  },
  {
    kind: 'import',
    input: 'import stock --dry-run of a valid file',
    cli: ['import', 'stock', validStock, '--dry-run'],
    expect: { exit: 0, code: '' },
  },
  {
    kind: 'import',
    input: 'import stock --reason (rows carry their reasons)',
    cli: ['import', 'stock', validStock, '--reason', 'delivery'],
    expect: invalid,
  },
  {
    kind: 'maintenance',
    input: 'import stock during maintenance',
    cli: ['import', 'stock', validStock],
    during: 'maintenance',
    expect: { exit: 5, code: 'maintenance_mode' },
  },
];

const cases: readonly Case[] = [
  // haat events: every filter is checked before anything is read; an unknown event is not found.
  ...(
    [
      ['--source', 'bank'],
      ['--source', 'Storefront'],
      ['--type', 'order.exploded'],
      ['--outcome', 'sort_of'],
      ['--outcome', ''],
      ['--state', 'lost'],
      ['--since', 'yesterday'],
      ['--since', '2026-12-01T10:00:00'],
      ['--since', '2026-13-01T00:00:00Z'],
      ['--limit', '0'],
      ['--limit', '1001'],
      ['--limit', '1e3'],
      ['--limit', ' 2'],
    ] as const
  ).map(
    ([option, value]): Case => ({
      kind: 'events',
      input: `events list ${option} ${JSON.stringify(value)}`,
      cli: ['events', 'list', option, value],
      expect: invalid,
    }),
  ),
  { kind: 'events', input: 'events show with no id (no terminal)', cli: ['events', 'show', 'storefront'], expect: invalid },
  { kind: 'events', input: 'events show from an unknown source', cli: ['events', 'show', 'bank', 'evt_seen'], expect: invalid },
  { kind: 'events', input: 'events show with a control character', cli: ['events', 'show', 'storefront', 'evt\u0007'], expect: invalid },
  ...['bell\u0007', 'line\nbreak', 'rtl\u202eoverride', 'nul\u0000'].map(
    (title): Case => ({
      kind: 'sku code',
      input: `sku add --title ${JSON.stringify(title)}`,
      cli: ['sku', 'add', 'TITLED-1', '--seller', 'tea-house', '--price', '100', '--currency', 'INR', '--title', title],
      expect: invalid,
    }),
  ),
  { kind: 'events', input: 'events show of an id never received', cli: ['events', 'show', 'storefront', 'evt_never'], expect: notFound },
  { kind: 'events', input: 'events show from the wrong source', cli: ['events', 'show', 'payments', 'evt_seen'], expect: notFound },
  // Quantities: only plain ASCII integers in range parse, wherever a quantity enters.
  ...BAD_COUNTS.map(
    (q): Case => ({
      kind: 'quantity',
      input: `stock receive ${JSON.stringify(q)}`,
      cli: ['stock', 'receive', 'TEA-1KG', q],
      expect: invalid,
    }),
  ),
  ...BAD_COUNTS.map(
    (q): Case => ({
      kind: 'quantity',
      input: `order place --item TEA-1KG:${JSON.stringify(q)}`,
      cli: ['order', 'place', '--buyer', 'b', '--item', `TEA-1KG:${q}`],
      expect: invalid,
    }),
  ),
  ...['0', '1.5', '+1', '--1', '-1e3', '', '1000001', '-1000001', '-9223372036854775809'].map(
    (d): Case => ({
      kind: 'quantity',
      input: `stock adjust ${JSON.stringify(d)}`,
      cli: ['stock', 'adjust', 'TEA-1KG', '--reason', 'count', '--', d],
      expect: invalid,
    }),
  ),
  ...BAD_JSON_COUNTS.map(
    (q): Case => ({
      kind: 'quantity',
      input: `order.placed qty ${q}`,
      http: { source: 'storefront', body: withLiteral(placed([{ sku: 'TEA-1KG', qty: '§' }]), q) },
      expect: badRequest,
    }),
  ),
  // Money: an integer count of minor units, in range, or nothing.
  ...BAD_MONEY.map(
    (p): Case => ({
      kind: 'money',
      input: `sku add --price ${JSON.stringify(p)}`,
      cli: ['sku', 'add', 'NEW-1', '--seller', 'tea-house', '--price', p, '--currency', 'INR'],
      expect: invalid,
    }),
  ),
  ...BAD_MONEY.map(
    (a): Case => ({
      kind: 'money',
      input: `order confirm --amount ${JSON.stringify(a)}`,
      cli: ['order', 'confirm', 'P-1', '--payment-ref', 'pay-x', '--amount', a],
      expect: invalid,
    }),
  ),
  ...BAD_JSON_MONEY.map(
    (a): Case => ({
      kind: 'money',
      input: `payment.captured amount ${a}`,
      http: { source: 'payments', body: withLiteral(captured('§'), a) },
      expect: badRequest,
    }),
  ),
  ...['inr', 'XYZ', 'RUPEE', '', 'IN'].map(
    (c): Case => ({
      kind: 'currency',
      input: `sku add --currency ${JSON.stringify(c)}`,
      cli: ['sku', 'add', 'NEW-1', '--seller', 'tea-house', '--price', '100', '--currency', c],
      expect: invalid,
    }),
  ),
  ...['inr', 'XYZ', '', 5].map(
    (c): Case => ({
      kind: 'currency',
      input: `order.placed currency ${JSON.stringify(c)}`,
      http: { source: 'storefront', body: placed(undefined, { currency: c }) },
      expect: badRequest,
    }),
  ),
  ...['usd', 'RUPEE'].map(
    (c): Case => ({
      kind: 'currency',
      input: `payment.captured currency ${JSON.stringify(c)}`,
      http: { source: 'payments', body: captured(25998, { currency: c }) },
      expect: badRequest,
    }),
  ),
  // A price or total supplied by a client is refused: the catalog price is the price.
  {
    kind: 'client price',
    input: 'order place --price 1',
    cli: ['order', 'place', '--buyer', 'b', '--item', 'TEA-1KG:1', '--price', '1'],
    expect: invalid,
  },
  {
    kind: 'client price',
    input: 'order place --item TEA-1KG:1:100',
    cli: ['order', 'place', '--buyer', 'b', '--item', 'TEA-1KG:1:100'],
    expect: invalid,
  },
  {
    kind: 'client price',
    input: 'order.placed items[].unit_price',
    http: { source: 'storefront', body: placed([{ sku: 'TEA-1KG', qty: 1, unit_price: 1 }]) },
    expect: badRequest,
  },
  {
    kind: 'client price',
    input: 'order.placed data.total',
    http: { source: 'storefront', body: placed(undefined, { total: { amount: 1, currency: 'INR' } }) },
    expect: badRequest,
  },

  // Catalog and inventory.
  { kind: 'unknown', input: 'stock receive of an unknown SKU', cli: ['stock', 'receive', 'NOPE-1', '1'], expect: notFound },
  { kind: 'unknown', input: 'stock show of an unknown SKU', cli: ['stock', 'show', 'NOPE-1'], expect: notFound },
  { kind: 'unknown', input: 'order show of an unknown order', cli: ['order', 'show', 'NO-SUCH-ORDER'], expect: notFound },
  { kind: 'unknown', input: 'stock adjust of an unknown SKU', cli: ['stock', 'adjust', 'NOPE-1', '1', '--reason', 'r'], expect: notFound },
  {
    kind: 'unknown',
    input: 'order place with an unknown SKU',
    cli: ['order', 'place', '--buyer', 'b', '--item', 'TEA-1KG:1', '--item', 'NOPE-1:1'],
    expect: notFound,
  },
  {
    kind: 'unknown',
    input: 'sku add for an unknown seller',
    cli: ['sku', 'add', 'NEW-1', '--seller', 'nobody', '--price', '100', '--currency', 'INR'],
    expect: notFound,
  },
  ...[
    ['confirm', '--payment-ref', 'pay-x', '--amount', '100'],
    ['ship'],
    ['deliver'],
    ['cancel', '--reason', 'r'],
    ['refund', '--reason', 'r'],
  ].map(
    ([verb, ...rest]): Case => ({
      kind: 'unknown',
      input: `order ${verb} of an unknown order`,
      cli: ['order', verb as string, 'NO-SUCH-ORDER', ...rest],
      expect: notFound,
    }),
  ),
  ...['tea-1kg', 'TEA 1KG', ' TEA-2', 'TEA-1KG ', 'ЧАЙ-1', '-TEA', 'A'.repeat(65), 'TEA/1'].map(
    (code): Case => ({
      kind: 'sku code',
      input: `sku add ${JSON.stringify(code)}`,
      cli: ['sku', 'add', code, '--seller', 'tea-house', '--price', '100', '--currency', 'INR'],
      expect: invalid,
    }),
  ),
  {
    kind: 'sku code',
    input: 'order place --item tea-1kg:1 (not mapped to TEA-1KG)',
    cli: ['order', 'place', '--buyer', 'b', '--item', 'tea-1kg:1'],
    expect: invalid,
  },
  {
    kind: 'sku code',
    input: 'sku add of a code that exists',
    cli: ['sku', 'add', 'TEA-1KG', '--seller', 'tea-house', '--price', '100', '--currency', 'INR'],
    expect: { exit: 3, code: 'conflict' },
  },
  ...['Tea-House', 'tea house', '', '-tea'].map(
    (h): Case => ({
      kind: 'seller handle',
      input: `seller add ${JSON.stringify(h)}`,
      cli: ['seller', 'add', h, '--name', 'X'],
      expect: invalid,
    }),
  ),
  {
    kind: 'seller handle',
    input: 'seller add of a handle that exists',
    cli: ['seller', 'add', 'tea-house', '--name', 'X'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'below reserved',
    input: 'stock adjust 11 on hand, 3 reserved, by -9 (one below what is reserved)',
    cli: ['stock', 'adjust', 'TEA-1KG', '--reason', 'count', '--', '-9'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'below reserved',
    input: 'stock adjust below zero',
    cli: ['stock', 'adjust', 'RICE-5KG', '--reason', 'count', '--', '-100'],
    expect: { exit: 3, code: 'conflict' },
  },

  // Orders and state: moves the table does not allow, moves out of terminal states.
  { kind: 'transition', input: 'ship a pending order', cli: ['order', 'ship', 'P-1'], expect: { exit: 3, code: 'transition_not_allowed' } },
  {
    kind: 'transition',
    input: 'deliver a confirmed order',
    cli: ['order', 'deliver', 'C-1'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },
  {
    kind: 'transition',
    input: 'refund a pending order',
    cli: ['order', 'refund', 'P-1', '--reason', 'r'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },
  {
    kind: 'transition',
    input: 'cancel a delivered order',
    cli: ['order', 'cancel', 'D-1', '--reason', 'r'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },
  {
    kind: 'transition',
    input: 'ship a delivered order',
    cli: ['order', 'ship', 'D-1'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },
  ...(
    [
      ['X-CANCELLED', 'ship'],
      ['X-CANCELLED', 'cancel'],
      ['X-CANCELLED', 'refund'],
      ['X-EXPIRED', 'ship'],
      ['X-EXPIRED', 'cancel'],
      ['X-REJECTED', 'ship'],
      ['X-REJECTED', 'cancel'],
      ['X-REFUNDED', 'refund'],
      ['X-REFUNDED', 'cancel'],
      ['X-REFUNDED', 'deliver'],
    ] as const
  ).map(
    ([order, verb]): Case => ({
      kind: 'transition',
      input: `${verb} ${order.slice(2).toLowerCase()} (terminal)`,
      cli: ['order', verb, order, ...(verb === 'cancel' || verb === 'refund' ? ['--reason', 'r'] : [])],
      expect: { exit: 3, code: 'transition_not_allowed' },
    }),
  ),
  {
    kind: 'order input',
    input: 'order place with 101 SKUs',
    cli: ['order', 'place', '--buyer', 'b', ...Array.from({ length: 101 }, (_, i) => ['--item', `S-${i}:1`]).flat()],
    expect: invalid,
  },
  { kind: 'order input', input: 'order place without items', cli: ['order', 'place', '--buyer', 'b'], expect: invalid },
  ...['TEA-1KG', ':1', 'TEA-1KG:', 'TEA-1KG=1', 'TEA-1KG:1:'].map(
    (item): Case => ({
      kind: 'order input',
      input: `order place --item ${JSON.stringify(item)}`,
      cli: ['order', 'place', '--buyer', 'b', '--item', item],
      expect: invalid,
    }),
  ),
  {
    kind: 'order input',
    input: 'order place with an empty buyer',
    cli: ['order', 'place', '--buyer', ' ', '--item', 'TEA-1KG:1'],
    expect: invalid,
  },
  {
    kind: 'order input',
    input: 'order cancel with a control character in the reason',
    cli: ['order', 'cancel', 'P-1', '--reason', 'oops\u0007'],
    expect: invalid,
  },
  {
    kind: 'order input',
    input: 'order cancel with a right-to-left override in the reason',
    cli: ['order', 'cancel', 'P-1', '--reason', 'ok\u202Egnp.exe'],
    expect: invalid,
  },
  {
    kind: 'order input',
    input: 'order cancel with a line separator in the reason',
    cli: ['order', 'cancel', 'P-1', '--reason', 'ok\u2028forged line'],
    expect: invalid,
  },
  { kind: 'order input', input: 'order list --state nonsense', cli: ['order', 'list', '--state', 'nonsense'], expect: invalid },
  ...['0', '-1', 'abc', '1.5', '100001'].map(
    (n): Case => ({ kind: 'order input', input: `order list --limit ${n}`, cli: ['order', 'list', '--limit', n], expect: invalid }),
  ),

  // Idempotency keys.
  {
    kind: 'idempotency',
    input: 'a used key with another command',
    cli: ['stock', 'receive', 'TEA-1KG', '2', '--idempotency-key', 'used-key'],
    expect: { exit: 3, code: 'idempotency_conflict' },
  },
  {
    kind: 'idempotency',
    input: 'a used key with another kind of command',
    cli: ['stock', 'adjust', 'TEA-1KG', '1', '--reason', 'r', '--idempotency-key', 'used-key'],
    expect: { exit: 3, code: 'idempotency_conflict' },
  },
  {
    kind: 'idempotency',
    input: 'a used key, same command: a replay, no second effect',
    cli: ['stock', 'receive', 'TEA-1KG', '1', '--idempotency-key', 'used-key'],
    expect: { exit: 0, code: '' },
  },
  ...BAD_KEYS.map(
    ([name, key]): Case => ({
      kind: 'idempotency',
      input: `a key with ${name}`,
      cli: ['stock', 'receive', 'TEA-1KG', '1', '--idempotency-key', key],
      expect: invalid,
    }),
  ),

  // Usage.
  { kind: 'usage', input: 'an unknown command', cli: ['stok', 'receive'], expect: invalid },
  {
    kind: 'usage',
    input: 'an unknown option',
    cli: ['stock', 'receive', 'TEA-1KG', '1', '--qty', '3'],
    expect: invalid,
  },
  { kind: 'usage', input: 'a missing argument (no TTY)', cli: ['stock', 'receive', 'TEA-1KG'], expect: invalid },
  { kind: 'usage', input: 'a missing required option (no TTY)', cli: ['stock', 'adjust', 'TEA-1KG', '1'], expect: invalid },
  {
    kind: 'usage',
    input: '--bypass-maintenance without --reason',
    cli: ['stock', 'receive', 'TEA-1KG', '1', '--bypass-maintenance'],
    expect: invalid,
  },
  {
    kind: 'usage',
    input: 'HAAT_ACTOR with a newline',
    cli: ['stock', 'receive', 'TEA-1KG', '1'],
    env: { HAAT_ACTOR: 'ops\nroot' },
    expect: invalid,
  },
  {
    kind: 'usage',
    input: '--actor with 201 characters',
    cli: ['stock', 'receive', 'TEA-1KG', '1', '--actor', 'a'.repeat(201)],
    expect: invalid,
  },

  // Operator controls: a refused change writes no setting and no audit row.
  ...[
    ['reservation_ttl_seconds', '-5'],
    ['reservation_ttl_seconds', '9'],
    ['reservation_ttl_seconds', '1.5'],
    ['commission_bps', '10001'],
    ['commission_bps', '"100"'],
    ['commission_bps', ''],
  ].map(
    ([key, value]): Case => ({
      kind: 'settings',
      input: `settings set ${key} ${JSON.stringify(value)}`,
      cli: ['settings', 'set', key as string, value as string, '--reason', 'r'],
      expect: invalid,
    }),
  ),
  {
    kind: 'settings',
    input: 'settings set of an unknown key',
    cli: ['settings', 'set', 'no_such_setting', '1', '--reason', 'r'],
    expect: notFound,
  },
  { kind: 'settings', input: 'settings set without --reason', cli: ['settings', 'set', 'commission_bps', '500'], expect: invalid },
  {
    kind: 'settings',
    input: 'flags enable of an unknown flag',
    cli: ['flags', 'enable', 'no_such_flag', '--reason', 'r'],
    expect: notFound,
  },
  { kind: 'settings', input: 'maintenance on without --reason', cli: ['maintenance', 'on'], expect: invalid },
  ...['forged\nline', 'bell\u0007', 'rtl\u202e'].map(
    (message): Case => ({
      kind: 'settings',
      input: `maintenance on --message ${JSON.stringify(message)}`,
      cli: ['maintenance', 'on', '--reason', 'r', '--yes', '--message', message],
      expect: invalid,
    }),
  ),

  // Maintenance: domain writes are refused (exit 5) and leave nothing behind.
  {
    kind: 'maintenance',
    input: 'stock receive during maintenance',
    cli: ['stock', 'receive', 'TEA-1KG', '1'],
    during: 'maintenance',
    expect: { exit: 5, code: 'maintenance_mode' },
  },
  {
    kind: 'maintenance',
    input: 'order cancel during maintenance',
    cli: ['order', 'cancel', 'P-1', '--reason', 'r'],
    during: 'maintenance',
    expect: { exit: 5, code: 'maintenance_mode' },
  },

  // Outbound webhooks (CONTRACT §7): endpoints and deliveries.
  ...BAD_ENDPOINT_URLS.flatMap((url): Case[] => [
    { kind: 'endpoint url', input: `endpoints add ${JSON.stringify(url)}`, cli: ['endpoints', 'add', url], expect: invalid },
    {
      kind: 'endpoint url',
      input: `endpoints add ${JSON.stringify(url)} --allow-private`,
      cli: ['endpoints', 'add', url, '--allow-private'],
      expect: invalid,
    },
  ]),
  ...PRIVATE_ENDPOINT_URLS.map(
    (url): Case => ({
      kind: 'endpoint address',
      input: `endpoints add ${url} without --allow-private`,
      cli: ['endpoints', 'add', url],
      expect: { exit: 2, code: 'address_not_allowed' },
    }),
  ),
  ...BAD_EVENT_PATTERNS.map(
    (events): Case => ({
      kind: 'endpoints',
      input: `endpoints add --events ${JSON.stringify(events)}`,
      cli: ['endpoints', 'add', 'http://127.0.0.1:9/hook', '--allow-private', '--events', events],
      expect: invalid,
    }),
  ),
  {
    kind: 'endpoints',
    input: 'endpoints add --description with a control character',
    cli: ['endpoints', 'add', 'http://127.0.0.1:9/hook', '--allow-private', '--description', 'bell\u0007'],
    expect: invalid,
  },
  { kind: 'endpoints', input: 'endpoints add with no URL (no TTY)', cli: ['endpoints', 'add'], expect: invalid },
  ...UNKNOWN_ENDPOINTS.flatMap((id) =>
    [
      ['show'],
      ['disable', '--reason', 'r'],
      ['enable', '--reason', 'r'],
      ['remove', '--reason', 'r', '--yes'],
      ['rotate-secret', '--reason', 'r'],
      ['recover', '--since', '2026-01-01T00:00:00Z'],
    ].map(
      ([verb, ...rest]): Case => ({
        kind: 'unknown',
        input: `endpoints ${verb} of an unknown endpoint ${id}`,
        cli: ['endpoints', verb as string, id, ...rest],
        expect: notFound,
      }),
    ),
  ),
  ...['disable', 'enable', 'remove', 'rotate-secret'].map(
    (verb): Case => ({
      kind: 'endpoints',
      input: `endpoints ${verb} without --reason (no TTY)`,
      cli: ['endpoints', verb, ENDPOINT, ...(verb === 'remove' ? ['--yes'] : [])],
      expect: invalid,
    }),
  ),
  {
    kind: 'endpoints',
    input: 'endpoints remove without --yes (no TTY)',
    cli: ['endpoints', 'remove', ENDPOINT, '--reason', 'r'],
    expect: invalid,
  },
  { kind: 'endpoints', input: 'endpoints recover without --since (no TTY)', cli: ['endpoints', 'recover', ENDPOINT], expect: invalid },
  ...['yesterday', '', '1700000000', '2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-12-01T10:00:00+25:00'].map(
    (since): Case => ({
      kind: 'endpoints',
      input: `endpoints recover --since ${JSON.stringify(since)}`,
      cli: ['endpoints', 'recover', ENDPOINT, '--since', since],
      expect: invalid,
    }),
  ),
  ...[
    ['remove', '--reason', 'again', '--yes'],
    ['disable', '--reason', 'r'],
    ['enable', '--reason', 'r'],
    ['rotate-secret', '--reason', 'r'],
    ['recover', '--since', '2026-01-01T00:00:00Z'],
  ].map(
    ([verb, ...rest]): Case => ({
      kind: 'endpoints',
      input: `endpoints ${verb} of a removed endpoint`,
      cli: ['endpoints', verb as string, REMOVED, ...rest],
      expect: { exit: 3, code: 'conflict' },
    }),
  ),
  ...['bogus', '', 'Pending'].map(
    (state): Case => ({
      kind: 'deliveries',
      input: `deliveries list --state ${JSON.stringify(state)}`,
      cli: ['deliveries', 'list', '--state', state],
      expect: invalid,
    }),
  ),
  ...['0', '1.5', '10001'].map(
    (n): Case => ({
      kind: 'deliveries',
      input: `deliveries list --limit ${n}`,
      cli: ['deliveries', 'list', '--limit', n],
      expect: invalid,
    }),
  ),
  ...UNKNOWN_ENDPOINTS.map(
    (id): Case => ({
      kind: 'unknown',
      input: `deliveries list --endpoint ${id} (unknown)`,
      cli: ['deliveries', 'list', '--endpoint', id],
      expect: notFound,
    }),
  ),
  ...UNKNOWN_DELIVERIES.flatMap((id): Case[] => [
    { kind: 'unknown', input: `deliveries show of an unknown delivery ${id}`, cli: ['deliveries', 'show', id], expect: notFound },
    {
      kind: 'unknown',
      input: `deliveries retry of an unknown delivery ${id}`,
      cli: ['deliveries', 'retry', id, '--reason', 'r'],
      expect: notFound,
    },
  ]),
  {
    kind: 'deliveries',
    input: 'deliveries retry of a delivery held by a disabled endpoint',
    cli: ['deliveries', 'retry', HELD, '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  ...[
    ['--secret', 'nope'],
    ['--secret', 'whsec_short'],
    ['--secret', ''],
    ['--port', '65536'],
    ['--port', 'abc'],
  ].map(
    (argv): Case => ({
      kind: 'webhook listen',
      input: `webhook listen ${argv.map((a) => JSON.stringify(a)).join(' ')}`,
      cli: ['webhook', 'listen', ...argv],
      expect: invalid,
    }),
  ),

  // The database down: exit 1, a clear code, nothing half-written.
  {
    kind: 'database down',
    input: 'stock receive with the database unreachable',
    cli: ['stock', 'receive', 'TEA-1KG', '1'],
    env: { DATABASE_URL: 'postgres://haat@127.0.0.1:1/haat' },
    expect: { exit: 1, code: 'database_unavailable' },
  },
  {
    kind: 'database down',
    input: 'endpoints add with the database unreachable',
    cli: ['endpoints', 'add', 'http://127.0.0.1:9/hook', '--allow-private'],
    env: { DATABASE_URL: 'postgres://haat@127.0.0.1:1/haat' },
    expect: { exit: 1, code: 'database_unavailable' },
  },

  // Webhooks: signatures and timestamps.
  { kind: 'signature', input: 'wrong secret', http: { body: placed(), signed: { secret: newSecret() } }, expect: unauthorized },
  {
    kind: 'signature',
    input: 'tampered body',
    http: { body: placed([{ sku: 'TEA-1KG', qty: 9 }]), signed: { body: placed() } },
    expect: unauthorized,
  },
  {
    kind: 'signature',
    input: 're-serialised body (same JSON, other bytes)',
    http: { body: `${placed()} `, signed: { body: placed() } },
    expect: unauthorized,
  },
  {
    kind: 'signature',
    input: 'truncated signature',
    http: { body: placed(), headers: { 'webhook-signature': 'v1,AAAAAAAAAAAAAAAAAAAA' } },
    expect: unauthorized,
  },
  {
    kind: 'signature',
    input: 'wrong-length signature',
    http: { body: placed(), headers: { 'webhook-signature': 'v1,AAAA' } },
    expect: unauthorized,
  },
  { kind: 'signature', input: 'not base64', http: { body: placed(), headers: { 'webhook-signature': 'v1,!!!!' } }, expect: unauthorized },
  {
    kind: 'signature',
    input: 'unknown version',
    http: { body: placed(), headers: { 'webhook-signature': 'v9,AAAA' } },
    expect: unauthorized,
  },
  { kind: 'signature', input: 'empty signature', http: { body: placed(), headers: { 'webhook-signature': '' } }, expect: unauthorized },
  { kind: 'signature', input: 'missing signature', http: { body: placed(), headers: { 'webhook-signature': null } }, expect: unauthorized },
  { kind: 'signature', input: 'missing webhook-id', http: { body: placed(), headers: { 'webhook-id': null } }, expect: badRequest },
  {
    kind: 'signature',
    input: 'missing webhook-timestamp',
    http: { body: placed(), headers: { 'webhook-timestamp': null } },
    expect: badRequest,
  },
  { kind: 'signature', input: 'webhook-id with non-ASCII', http: { body: placed(), id: 'évt-1' }, expect: badRequest },
  { kind: 'signature', input: 'webhook-id empty', http: { body: placed(), id: '' }, expect: badRequest },
  { kind: 'signature', input: 'webhook-id with a tab', http: { body: placed(), id: 'evt\t1' }, expect: badRequest },
  { kind: 'signature', input: 'webhook-id of 256 characters', http: { body: placed(), id: 'e'.repeat(256) }, expect: badRequest },
  {
    kind: 'timestamp',
    input: '6 minutes old',
    http: { body: placed(), signed: { ageMs: 6 * 60_000 } },
    expect: unauthorized,
  },
  {
    kind: 'timestamp',
    input: '6 minutes in the future',
    http: { body: placed(), signed: { ageMs: -6 * 60_000 } },
    expect: unauthorized,
  },
  {
    kind: 'timestamp',
    input: 'a year old',
    http: { body: placed(), signed: { ageMs: 365 * 86_400_000 } },
    expect: unauthorized,
  },
  {
    kind: 'timestamp',
    input: 'webhook-timestamp empty',
    http: { body: placed(), headers: { 'webhook-timestamp': '' } },
    expect: badRequest,
  },
  ...['soon', '1.7e9', '-1', '0', '99999999999999999999', `${Math.floor(Date.now() / 1000)}.5`].map(
    (ts): Case => ({
      kind: 'timestamp',
      input: `webhook-timestamp ${JSON.stringify(ts)}, correctly signed`,
      http: { body: placed(), signed: { timestamp: ts } },
      expect: unauthorized,
    }),
  ),
  // Webhooks: ids seen before.
  {
    kind: 'duplicate',
    input: 'same id and body again: 200 duplicate, no second effect',
    http: { body: SEEN_BODY, id: 'evt_seen' },
    expect: { status: 200, code: null },
  },
  {
    kind: 'duplicate',
    input: 'same id, other body: 409, the original kept',
    http: { body: placed([{ sku: 'TEA-1KG', qty: 2 }], { ref: 'W-1' }), id: 'evt_seen' },
    expect: { status: 409, code: 'idempotency_conflict' },
  },
  // Webhooks: the request itself.
  {
    kind: 'request',
    input: 'body over 256 KiB',
    http: { body: placed(undefined, { buyer: 'b'.repeat(300 * 1024) }) },
    expect: { status: 413, code: 'payload_too_large' },
  },
  {
    kind: 'request',
    input: 'text/plain',
    http: { body: placed(), headers: { 'content-type': 'text/plain' } },
    expect: { status: 415, code: 'unsupported_media_type' },
  },
  {
    kind: 'request',
    input: 'no content-type',
    http: { body: placed(), headers: { 'content-type': null } },
    expect: { status: 415, code: 'unsupported_media_type' },
  },
  { kind: 'request', input: 'unknown source', http: { source: 'bank', body: placed() }, expect: { status: 404, code: 'not_found' } },
  { kind: 'request', input: 'GET', http: { method: 'GET', body: '' }, expect: { status: 405, code: 'method_not_allowed' } },
  ...['', 'not json', '{"type":', '{"type":"order.placed"}}', 'null', '[]', '"order.placed"', `\ufeff${placed()}`].map(
    (body): Case => ({ kind: 'not JSON or no envelope', input: JSON.stringify(body), http: { body }, expect: badRequest }),
  ),
  {
    kind: 'not JSON or no envelope',
    input: 'invalid UTF-8',
    http: {
      body: Buffer.concat([
        Buffer.from('{"type":"order.placed","timestamp":"2026-01-01T00:00:00Z","data":{"ref":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}}'),
      ]),
    },
    expect: badRequest,
  },
  // A key twice in one object, anywhere: the sender's own parser may read either value.
  ...[
    ['qty twice in an item', placed().replace('"qty":1', '"qty":1,"qty":1000000')],
    ['type twice in the envelope', placed().replace('{"type":"order.placed"', '{"type":"order.placed","type":"order.placed"')],
    ['a key twice, spelled with an escape', placed().replace('"qty":1', '"qty":1,"q\\u0074y":5')],
    ['ref twice in data', placed().replace('"buyer"', '"ref":"W-9","buyer"')],
  ].map(
    ([input, body]) =>
      ({ kind: 'not JSON or no envelope', input: `duplicate key: ${input}`, http: { body: body as string }, expect: badRequest }) as Case,
  ),
  // Webhooks: the event's schema.
  { kind: 'schema', input: 'unknown event type', http: { body: eventText('order.shipped', { order_ref: 'P-1' }) }, expect: badRequest },
  { kind: 'schema', input: 'an event from the wrong source', http: { source: 'logistics', body: captured() }, expect: badRequest },
  {
    kind: 'schema',
    input: 'envelope timestamp not ISO-8601',
    http: { body: placed().replace(/"timestamp":"[^"]+"/, '"timestamp":"yesterday"') },
    expect: badRequest,
  },
  { kind: 'schema', input: 'data missing', http: { body: JSON.stringify({ type: 'order.placed', timestamp: NOW() }) }, expect: badRequest },
  { kind: 'schema', input: 'an extra field in data', http: { body: placed(undefined, { coupon: 'FREE' }) }, expect: badRequest },
  { kind: 'schema', input: 'no items', http: { body: placed([]) }, expect: badRequest },
  {
    kind: 'schema',
    input: '101 items',
    http: { body: placed(Array.from({ length: 101 }, (_, i) => ({ sku: `S-${i}`, qty: 1 }))) },
    expect: badRequest,
  },
  { kind: 'schema', input: 'a non-canonical SKU', http: { body: placed([{ sku: 'tea-1kg', qty: 1 }]) }, expect: badRequest },
  {
    kind: 'schema',
    input: 'an empty order ref',
    http: { source: 'logistics', body: eventText('shipment.delivered', { order_ref: '' }) },
    expect: badRequest,
  },
  {
    kind: 'schema',
    input: 'a ref of 65 characters',
    http: { source: 'logistics', body: eventText('shipment.delivered', { order_ref: 'R'.repeat(65) }) },
    expect: badRequest,
  },
  {
    kind: 'schema',
    input: 'payment.failed without a reason',
    http: { source: 'payments', body: eventText('payment.failed', { order_ref: 'P-1', payment_ref: 'p' }) },
    expect: badRequest,
  },
  // The lifecycle (CONTRACT §8): shipping. Units beyond what a line has left to send, SKUs not in
  // the order, bad quantities, couriers and refs; a ref already taken.
  {
    kind: 'ship',
    input: 'order ship --item DAL-1KG:2 with 1 left to send (over-shipping)',
    cli: ['order', 'ship', 'L-PART', '--item', 'DAL-1KG:2'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'ship',
    input: 'order ship --item SALT-1KG:3 of a line of 2',
    cli: ['order', 'ship', 'L-PART', '--item', 'SALT-1KG:3'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'ship',
    input: 'order ship --item DAL-1KG:1 twice (2 in all, 1 left)',
    cli: ['order', 'ship', 'L-PART', '--item', 'DAL-1KG:1', '--item', 'DAL-1KG:1'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'ship',
    input: 'order ship: one line fits, one does not (nothing sent)',
    cli: ['order', 'ship', 'L-PART', '--item', 'DAL-1KG:1', '--item', 'SALT-1KG:3'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'ship',
    input: 'order ship --item of a SKU not in the order',
    cli: ['order', 'ship', 'L-PART', '--item', 'TEA-1KG:1'],
    expect: invalid,
  },
  {
    kind: 'ship',
    input: 'order ship --item of a SKU that does not exist',
    cli: ['order', 'ship', 'L-PART', '--item', 'NOPE-1:1'],
    expect: invalid,
  },
  {
    kind: 'ship',
    input: 'order ship --shipment-ref of a shipment that exists',
    cli: ['order', 'ship', 'L-PART', '--item', 'DAL-1KG:1', '--shipment-ref', 'SH-L1'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'ship',
    input: 'order ship --tracking of 201 characters',
    cli: ['order', 'ship', 'L-PART', '--tracking', 'T'.repeat(201)],
    expect: invalid,
  },
  {
    kind: 'ship',
    input: 'order ship --tracking with a newline',
    cli: ['order', 'ship', 'L-PART', '--tracking', 'AWB\n1'],
    expect: invalid,
  },
  ...LIFECYCLE_BAD_COUNTS.map(
    (q): Case => ({
      kind: 'quantity',
      input: `order ship --item DAL-1KG:${JSON.stringify(q)}`,
      cli: ['order', 'ship', 'L-PART', '--item', `DAL-1KG:${q}`],
      expect: invalid,
    }),
  ),
  ...BAD_COURIERS.map(
    (courier): Case => ({
      kind: 'ship',
      input: `order ship --courier ${JSON.stringify(courier)}`,
      cli: ['order', 'ship', 'L-PART', '--courier', courier],
      expect: invalid,
    }),
  ),
  ...BAD_LIFECYCLE_REFS.map(
    (ref): Case => ({
      kind: 'ship',
      input: `order ship --shipment-ref ${JSON.stringify(ref)}`,
      cli: ['order', 'ship', 'L-PART', '--shipment-ref', ref],
      expect: invalid,
    }),
  ),
  {
    kind: 'transition',
    input: 'ship part of a pending order',
    cli: ['order', 'ship', 'P-1', '--item', 'TEA-1KG:1'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },
  {
    kind: 'transition',
    input: 'ship a shipped order (every unit sent)',
    cli: ['order', 'ship', 'L-COD'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },

  // Cancelling part of an order: only units not yet dispatched, only past confirmation.
  {
    kind: 'partial cancel',
    input: 'order cancel --item DAL-1KG:2 with 2 of 3 dispatched (cancelling dispatched units)',
    cli: ['order', 'cancel', 'L-PART', '--item', 'DAL-1KG:2', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'partial cancel',
    input: 'order cancel --item SALT-1KG:3 of a line of 2',
    cli: ['order', 'cancel', 'L-PART', '--item', 'SALT-1KG:3', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'partial cancel',
    input: 'order cancel --item of a SKU not in the order',
    cli: ['order', 'cancel', 'L-PART', '--item', 'TEA-1KG:1', '--reason', 'r'],
    expect: invalid,
  },
  {
    kind: 'partial cancel',
    input: 'order cancel --item: part of a pending order',
    cli: ['order', 'cancel', 'P-1', '--item', 'TEA-1KG:1', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'partial cancel',
    input: 'order cancel --item: all of a pending order, still by --item',
    cli: ['order', 'cancel', 'P-1', '--item', 'TEA-1KG:2', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'partial cancel',
    input: 'order cancel --item without --reason (no TTY)',
    cli: ['order', 'cancel', 'L-PART', '--item', 'DAL-1KG:1'],
    expect: invalid,
  },
  ...LIFECYCLE_BAD_COUNTS.map(
    (q): Case => ({
      kind: 'quantity',
      input: `order cancel --item DAL-1KG:${JSON.stringify(q)}`,
      cli: ['order', 'cancel', 'L-PART', '--item', `DAL-1KG:${q}`, '--reason', 'r'],
      expect: invalid,
    }),
  ),
  {
    kind: 'transition',
    input: 'cancel a shipped order (every unit dispatched)',
    cli: ['order', 'cancel', 'L-COD', '--reason', 'r'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },

  // Returns: only delivered units not returned or awaiting return; a return is received
  // (--restock or --write-off, exactly one) or rejected once.
  {
    kind: 'return',
    input: 'return request of units not delivered yet',
    cli: ['return', 'request', 'L-PART', '--item', 'DAL-1KG:1', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'return',
    input: 'return request of more than delivered (3 of 2)',
    cli: ['return', 'request', 'L-DELIV', '--item', 'DAL-1KG:3', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'return',
    input: 'return request of more than delivered minus awaiting return (2 of 2, 1 requested)',
    cli: ['return', 'request', 'L-DELIV', '--item', 'DAL-1KG:2', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'return',
    input: 'return request of a SKU not in the order',
    cli: ['return', 'request', 'L-DELIV', '--item', 'SALT-1KG:1', '--reason', 'r'],
    expect: invalid,
  },
  {
    kind: 'return',
    input: 'return request --return-ref of a return that exists',
    cli: ['return', 'request', 'L-DELIV', '--item', 'DAL-1KG:1', '--reason', 'r', '--return-ref', 'RT-L2'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'return',
    input: 'return request without --item (no TTY)',
    cli: ['return', 'request', 'L-DELIV', '--reason', 'r'],
    expect: invalid,
  },
  {
    kind: 'return',
    input: 'return request without --reason (no TTY)',
    cli: ['return', 'request', 'L-DELIV', '--item', 'DAL-1KG:1'],
    expect: invalid,
  },
  ...BAD_LIFECYCLE_REFS.map(
    (ref): Case => ({
      kind: 'return',
      input: `return request --return-ref ${JSON.stringify(ref)}`,
      cli: ['return', 'request', 'L-DELIV', '--item', 'DAL-1KG:1', '--reason', 'r', '--return-ref', ref],
      expect: invalid,
    }),
  ),
  ...LIFECYCLE_BAD_COUNTS.map(
    (q): Case => ({
      kind: 'quantity',
      input: `return request --item DAL-1KG:${JSON.stringify(q)}`,
      cli: ['return', 'request', 'L-DELIV', '--item', `DAL-1KG:${q}`, '--reason', 'r'],
      expect: invalid,
    }),
  ),
  {
    kind: 'return',
    input: 'return receive with both --restock and --write-off',
    cli: ['return', 'receive', 'RT-L2', '--restock', '--write-off', '--reason', 'r'],
    expect: invalid,
  },
  {
    kind: 'return',
    input: 'return receive with neither --restock nor --write-off',
    cli: ['return', 'receive', 'RT-L2', '--reason', 'r'],
    expect: invalid,
  },
  { kind: 'return', input: 'return receive without --reason (no TTY)', cli: ['return', 'receive', 'RT-L2', '--restock'], expect: invalid },
  { kind: 'return', input: 'return reject without --reason (no TTY)', cli: ['return', 'reject', 'RT-L2'], expect: invalid },
  ...['bell\u0007', 'x'.repeat(201)].map(
    (key): Case => ({
      kind: 'return',
      input: `return receive ${JSON.stringify(key.slice(0, 12))}… (not a return key)`,
      cli: ['return', 'receive', key, '--restock', '--reason', 'r'],
      expect: invalid,
    }),
  ),
  {
    kind: 'transition',
    input: 'receive a rejected return',
    cli: ['return', 'receive', 'RT-L2X', '--restock', '--reason', 'r'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },
  {
    kind: 'transition',
    input: 'reject a rejected return',
    cli: ['return', 'reject', 'RT-L2X', '--reason', 'r'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },
  ...UNKNOWN_RETURNS.flatMap((key) =>
    [['receive', '--restock', '--reason', 'r'], ['reject', '--reason', 'r'], ['show']].map(
      ([verb, ...rest]): Case => ({
        kind: 'unknown',
        input: `return ${verb} of an unknown return ${key}`,
        cli: ['return', verb as string, key, ...rest],
        expect: notFound,
      }),
    ),
  ),
  {
    kind: 'unknown',
    input: 'return request of an unknown order',
    cli: ['return', 'request', 'NO-SUCH-ORDER', '--item', 'DAL-1KG:1', '--reason', 'r'],
    expect: notFound,
  },

  // Refunds: never more than captured and not yet refunded, by items only what was paid and reached
  // the buyer (or came back), amounts positive integers of minor units.
  {
    kind: 'refund',
    input: 'order refund of a COD order never delivered (nothing collected)',
    cli: ['order', 'refund', 'L-COD', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'refund',
    input: 'order refund --amount 1 of a COD order never delivered',
    cli: ['order', 'refund', 'L-COD', '--amount', '1', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'refund',
    input: 'order refund --item of a COD order never delivered',
    cli: ['order', 'refund', 'L-COD', '--item', 'DAL-1KG:1', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'refund',
    input: 'order refund --amount over captured (10001 of 10000)',
    cli: ['order', 'refund', 'L-DELIV', '--amount', '10001', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'refund',
    input: 'order refund --item of more units than delivered',
    cli: ['order', 'refund', 'L-DELIV', '--item', 'DAL-1KG:3', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'refund',
    input: "order refund --item --amount over the items' value",
    cli: ['order', 'refund', 'L-DELIV', '--item', 'DAL-1KG:1', '--amount', '5001', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'refund',
    input: 'order refund --item of units dispatched, not delivered (prepaid)',
    cli: ['order', 'refund', 'L-PART', '--item', 'DAL-1KG:1', '--reason', 'r'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'refund',
    input: 'order refund --item of a SKU not in the order',
    cli: ['order', 'refund', 'L-DELIV', '--item', 'SALT-1KG:1', '--reason', 'r'],
    expect: invalid,
  },
  {
    kind: 'refund',
    input: 'order refund --amount without --reason (no TTY)',
    cli: ['order', 'refund', 'L-DELIV', '--amount', '100'],
    expect: invalid,
  },
  ...BAD_REFUND_AMOUNTS.map(
    (a): Case => ({
      kind: 'money',
      input: `order refund --amount ${JSON.stringify(a)}`,
      cli: ['order', 'refund', 'L-DELIV', '--amount', a, '--reason', 'r'],
      expect: invalid,
    }),
  ),
  ...LIFECYCLE_BAD_COUNTS.map(
    (q): Case => ({
      kind: 'quantity',
      input: `order refund --item DAL-1KG:${JSON.stringify(q)}`,
      cli: ['order', 'refund', 'L-DELIV', '--item', `DAL-1KG:${q}`, '--reason', 'r'],
      expect: invalid,
    }),
  ),
  {
    kind: 'transition',
    input: 'refund a confirmed order (nothing sent)',
    cli: ['order', 'refund', 'C-1', '--amount', '1', '--reason', 'r'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },

  // Cash on delivery: confirmed without a payment, only an order placed so, only while pending.
  {
    kind: 'cash on delivery',
    input: 'order confirm --cod with --amount',
    cli: ['order', 'confirm', 'P-1', '--cod', '--amount', '25998'],
    expect: invalid,
  },
  {
    kind: 'cash on delivery',
    input: 'order confirm --cod with --payment-ref',
    cli: ['order', 'confirm', 'P-1', '--cod', '--payment-ref', 'pay-x'],
    expect: invalid,
  },
  {
    kind: 'cash on delivery',
    input: 'order confirm --cod of a prepaid order',
    cli: ['order', 'confirm', 'P-1', '--cod'],
    expect: { exit: 3, code: 'conflict' },
  },
  {
    kind: 'transition',
    input: 'confirm --cod a COD order already shipped',
    cli: ['order', 'confirm', 'L-COD', '--cod'],
    expect: { exit: 3, code: 'transition_not_allowed' },
  },
  {
    kind: 'unknown',
    input: 'order confirm --cod of an unknown order',
    cli: ['order', 'confirm', 'NO-SUCH-ORDER', '--cod'],
    expect: notFound,
  },

  // Shipments named by id, ref or tracking number: unknown ones are not found; the machine refuses
  // what it does not allow; a failed delivery needs its reason.
  ...UNKNOWN_SHIPMENTS.flatMap((key) =>
    [...SHIPMENT_VERBS, ['show']].map(
      ([verb, ...rest]): Case => ({
        kind: 'unknown',
        input: `shipment ${verb} of an unknown shipment ${key}`,
        cli: ['shipment', verb as string, key, ...rest],
        expect: notFound,
      }),
    ),
  ),
  {
    kind: 'unknown',
    input: 'shipment deliver --order of an unknown order',
    cli: ['shipment', 'deliver', 'SH-L1', '--order', 'NO-SUCH-ORDER'],
    expect: notFound,
  },
  {
    kind: 'unknown',
    input: 'shipment deliver --order of another order',
    cli: ['shipment', 'deliver', 'AWB-L1', '--order', 'L-DELIV'],
    expect: notFound,
  },
  { kind: 'shipment', input: 'shipment fail without --reason (no TTY)', cli: ['shipment', 'fail', 'SH-L1'], expect: invalid },
  {
    kind: 'shipment',
    input: 'shipment deliver --order that is not an order key',
    cli: ['shipment', 'deliver', 'SH-L1', '--order', 'no such order!'],
    expect: invalid,
  },
  ...BAD_SHIPMENT_KEYS.map(
    (key): Case => ({
      kind: 'shipment',
      input: `shipment deliver ${JSON.stringify(key.slice(0, 12))}${key.length > 12 ? '…' : ''} (not a shipment key)`,
      cli: ['shipment', 'deliver', key],
      expect: invalid,
    }),
  ),
  ...(
    [
      ['SH-L1', 'reattempt', 'a dispatched shipment'],
      ['SH-L1', 'rto-receive', 'a dispatched shipment'],
      ['SH-L2', 'deliver', 'a delivered shipment'],
      ['SH-L2', 'fail', 'a delivered shipment'],
      ['SH-L2', 'rto', 'a delivered shipment'],
      ['AWB-L2', 'reattempt', 'a delivered shipment, by tracking'],
    ] as const
  ).map(
    ([key, verb, what]): Case => ({
      kind: 'transition',
      input: `shipment ${verb} of ${what}`,
      cli: ['shipment', verb, key, ...(verb === 'fail' ? ['--reason', 'r'] : [])],
      expect: { exit: 3, code: 'transition_not_allowed' },
    }),
  ),
  ...(
    [
      ['order ship', ['order', 'ship', 'L-PART']],
      ['shipment deliver', ['shipment', 'deliver', 'SH-L1']],
      ['return request', ['return', 'request', 'L-DELIV', '--item', 'DAL-1KG:1', '--reason', 'r']],
      ['order refund', ['order', 'refund', 'L-DELIV', '--amount', '1', '--reason', 'r']],
    ] as const
  ).map(
    ([what, cli]): Case => ({
      kind: 'maintenance',
      input: `${what} during maintenance`,
      cli,
      during: 'maintenance',
      expect: { exit: 5, code: 'maintenance_mode' },
    }),
  ),

  // The lifecycle's webhooks: their schemas.
  ...(
    [
      [
        'shipment.dispatched with qty 0',
        'shipment.dispatched',
        { order_ref: 'L-PART', tracking: 'T-9', items: [{ sku: 'DAL-1KG', qty: 0 }] },
      ],
      [
        'shipment.dispatched with qty -1',
        'shipment.dispatched',
        { order_ref: 'L-PART', tracking: 'T-9', items: [{ sku: 'DAL-1KG', qty: -1 }] },
      ],
      ['shipment.dispatched with no items (an empty list)', 'shipment.dispatched', { order_ref: 'L-PART', tracking: 'T-9', items: [] }],
      ['shipment.dispatched with a bad courier', 'shipment.dispatched', { order_ref: 'L-PART', tracking: 'T-9', courier: 'Blue Dart' }],
      [
        'shipment.dispatched with a bad shipment_ref',
        'shipment.dispatched',
        { order_ref: 'L-PART', tracking: 'T-9', shipment_ref: 'SH 9' },
      ],
      ['shipment.dispatched without tracking', 'shipment.dispatched', { order_ref: 'L-PART' }],
      ['shipment.delivered with an empty tracking', 'shipment.delivered', { order_ref: 'L-PART', tracking: '' }],
      ['shipment.failed without a reason', 'shipment.failed', { order_ref: 'L-PART', tracking: 'AWB-L1' }],
      ['shipment.rto_initiated without tracking', 'shipment.rto_initiated', { order_ref: 'L-PART' }],
      ['shipment.rto_delivered with a price', 'shipment.rto_delivered', { order_ref: 'L-PART', tracking: 'AWB-L1', price: 1 }],
    ] as const
  ).map(
    ([input, type, data]): Case => ({
      kind: 'schema',
      input,
      http: { source: 'logistics', body: eventText(type, data) },
      expect: badRequest,
    }),
  ),
  ...(
    [
      ['return.requested without items', 'return.requested', { order_ref: 'L-DELIV', return_ref: 'RT-9', reason: 'r' }],
      [
        'return.requested with qty 0',
        'return.requested',
        { order_ref: 'L-DELIV', return_ref: 'RT-9', items: [{ sku: 'DAL-1KG', qty: 0 }], reason: 'r' },
      ],
      [
        'return.requested without return_ref',
        'return.requested',
        { order_ref: 'L-DELIV', items: [{ sku: 'DAL-1KG', qty: 1 }], reason: 'r' },
      ],
      [
        'return.requested with a bad return_ref',
        'return.requested',
        { order_ref: 'L-DELIV', return_ref: 'RT 9', items: [{ sku: 'DAL-1KG', qty: 1 }], reason: 'r' },
      ],
      [
        'return.requested without a reason',
        'return.requested',
        { order_ref: 'L-DELIV', return_ref: 'RT-9', items: [{ sku: 'DAL-1KG', qty: 1 }] },
      ],
      ['order.confirmed with an amount', 'order.confirmed', { order_ref: 'P-1', amount: 25998 }],
      [
        'order.placed with payment_method card',
        'order.placed',
        { ref: 'W-9', buyer: 'b-9', currency: 'INR', items: [{ sku: 'TEA-1KG', qty: 1 }], payment_method: 'card' },
      ],
    ] as const
  ).map(
    ([input, type, data]): Case => ({
      kind: 'schema',
      input,
      http: { source: 'storefront', body: eventText(type, data) },
      expect: badRequest,
    }),
  ),
  ...IMPORT_CASES,
];

// ---- running a case ------------------------------------------------------------------------------
let ids = 0;

async function runHttp(c: Http['http']): Promise<{ status: number; text: string }> {
  const id = c.id ?? `evt_bad_${++ids}`;
  // A sender signs what the standardwebhooks library signs: the body as a (UTF-8 decoded) string.
  const text = typeof c.body === 'string' ? c.body : c.body.toString('utf8');
  const at = c.signed?.ageMs === undefined ? undefined : new Date(Date.now() - c.signed.ageMs);
  const headers: Record<string, string> = { ...signedHeaders(c.signed?.secret ?? secret, id, c.signed?.body ?? text, at) };
  if (c.signed?.timestamp !== undefined) {
    headers['webhook-timestamp'] = c.signed.timestamp;
    headers['webhook-signature'] = signRaw(c.signed.secret ?? secret, id, c.signed.timestamp, c.signed.body ?? text);
  }
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    if (value === null) delete headers[name];
    else headers[name] = value;
  }
  const method = c.method ?? 'POST';
  const response = await fetch(`${intake.url}/webhooks/${c.source ?? 'storefront'}`, {
    method,
    headers,
    ...(method === 'GET' ? {} : { body: c.body }),
  });
  return { status: response.status, text: await response.text() };
}

async function maintenance(to: 'on' | 'off'): Promise<void> {
  const result = await runCli(['maintenance', to, '--reason', 'bad-input suite', '--yes'], { env: cliEnv });
  assert.equal(result.code, 0, result.stderr);
}

/** A stack frame, printed or inside a JSON string (escaped newline). */
const STACK = /(\n|\\n)\s+at \S|\bat \S+ \(?(file|node):[^)]*:\d+:\d+/;
const noStack = (text: string, what: string) => assert.doesNotMatch(text, STACK, `${what} shows a stack trace`);

/** Standard Webhooks by hand: v1 = base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" under the secret's key. */
function signRaw(secretText: string, id: string, timestamp: string, body: string): string {
  const key = Buffer.from(secretText.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

async function check(c: Case): Promise<void> {
  if ('cli' in c) {
    const expect = c.expect as { exit: number; code: string };
    const env = { ...cliEnv, ...c.env };
    // --json goes before a `--` that ends the options (stock adjust … -- -10).
    const end = c.cli.indexOf('--');
    const argv = end === -1 ? [...c.cli, '--json'] : [...c.cli.slice(0, end), '--json', ...c.cli.slice(end)];
    const json = await runCli(argv, { env });
    assert.equal(json.code, expect.exit, `exit code\n${json.stdout}${json.stderr}`);
    noStack(json.stdout + json.stderr, 'the --json run');
    if (expect.exit !== 0) {
      const doc = JSON.parse(json.stdout) as { error: { code: string; message: string } };
      assert.equal(doc.error.code, expect.code, json.stdout);
      assert.ok(doc.error.message.length > 0, 'a message says what is wrong');
    }
    const human = await runCli(c.cli, { env });
    assert.equal(human.code, expect.exit, `exit code (human)\n${human.stdout}${human.stderr}`);
    noStack(human.stdout + human.stderr, 'the human run');
    if (expect.exit !== 0) assert.match(human.stderr, /\S/, 'the error is said on stderr');
  } else {
    const expect = c.expect as { status: number; code: string | null };
    const { status, text } = await runHttp(c.http);
    assert.equal(status, expect.status, text);
    assert.ok(status < 500, 'never a 5xx for bad input');
    noStack(text, 'the response');
    const body = JSON.parse(text) as { error?: { code: string; message: string }; duplicate?: boolean };
    if (expect.code === null) assert.equal(body.duplicate, true, text);
    else assert.equal(body.error?.code, expect.code, text);
  }
}

describe('bad input, from one table across the CLI and the webhook intake: refused with its code, nothing written', () => {
  const kinds = [...new Set(cases.map((c) => c.kind))];
  for (const kind of kinds) {
    test(`${kind} (${cases.filter((c) => c.kind === kind).length} cases)`, async (t) => {
      for (const c of cases.filter((x) => x.kind === kind)) {
        await t.test(c.input, async () => {
          if (c.during === 'maintenance') await maintenance('on');
          try {
            const before = await footprint(db.pool);
            await check(c);
            assert.deepEqual(await footprint(db.pool), before, 'nothing was written');
          } finally {
            if (c.during === 'maintenance') await maintenance('off');
          }
        });
      }
    });
  }

  test('the table covers every family of bad input that reaches each surface', () => {
    assert.ok(cases.length >= 230, `${cases.length} cases`);
    const cli = new Set(cases.filter((c) => 'cli' in c).map((c) => c.kind));
    const http = new Set(cases.filter((c) => 'http' in c).map((c) => c.kind));
    // Values enter through both surfaces.
    for (const kind of ['quantity', 'money', 'currency', 'client price'])
      assert.ok(cli.has(kind) && http.has(kind), `${kind} on both surfaces`);
    // Catalog, orders, keys and operator controls are the CLI's (a webhook naming an unknown SKU or
    // order, or asking a move the table refuses, is accepted and its refusal recorded as its outcome).
    for (const kind of [
      'unknown',
      'sku code',
      'seller handle',
      'below reserved',
      'transition',
      'idempotency',
      'usage',
      'settings',
      'maintenance',
      'database down',
      'events',
      'endpoint url',
      'endpoint address',
      'endpoints',
      'deliveries',
      'webhook listen',
      'ship',
      'partial cancel',
      'return',
      'refund',
      'cash on delivery',
      'shipment',
    ])
      assert.ok(cli.has(kind), `${kind} on the CLI`);
    for (const kind of ['signature', 'timestamp', 'duplicate', 'request', 'not JSON or no envelope', 'schema'])
      assert.ok(http.has(kind), `${kind} on the intake`);
  });

  test('the hand-made signature used by the timestamp cases is the standard one (it is accepted when the timestamp is)', () => {
    const at = new Date();
    const body = placed();
    const library = signedHeaders(secret, 'evt_probe', body, at);
    assert.equal(signRaw(secret, 'evt_probe', library['webhook-timestamp'], body), library['webhook-signature']);
  });
});

describe('a command that failed validation, then corrected with the same key', () => {
  test('the corrected one runs, once', async () => {
    const key = 'corrected-key';
    const onHand = async () =>
      (JSON.parse((await runCli(['stock', 'show', 'RICE-5KG', '--json'], { env: cliEnv })).stdout) as { on_hand: number }).on_hand;
    const start = await onHand();
    const bad = await runCli(['stock', 'receive', 'RICE-5KG', '1.5', '--idempotency-key', key, '--json'], { env: cliEnv });
    assert.equal(bad.code, 2);
    const good = await runCli(['stock', 'receive', 'RICE-5KG', '2', '--idempotency-key', key, '--json'], { env: cliEnv });
    assert.equal(good.code, 0, good.stdout);
    assert.equal((JSON.parse(good.stdout) as { on_hand: number }).on_hand, start + 2);
    const again = await runCli(['stock', 'receive', 'RICE-5KG', '2', '--idempotency-key', key, '--json'], { env: cliEnv });
    assert.equal(again.code, 0);
    assert.equal((JSON.parse(again.stdout) as { on_hand: number }).on_hand, start + 2, 'a replay: the original outcome');
    assert.equal(await onHand(), start + 2, 'added once');
  });
});
