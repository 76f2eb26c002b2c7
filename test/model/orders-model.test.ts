// Model-based test (fast-check commands): a tiny in-memory model of stock and orders runs beside
// the real system on a real PostgreSQL. After every command the two agree and the invariants hold.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { z } from 'zod';
import { inventoryViolations } from '../../src/db/inventory.ts';
import { orderViolations } from '../../src/db/orders.ts';
import { sql } from '../../src/db/sql.ts';
import type { Outcome } from '../../src/domain/commands.ts';
import { expireReservations } from '../../src/worker/tasks/expire-reservations.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { apply, mustApply, silent } from '../helpers/seed.ts';

const db = await createTestDatabase();
await mustApply(db.pool, { type: 'seller.add', payload: { handle: 'model', name: 'Model' } });

type Order = { sku: string; qty: number; state: string; total: number };
type Stock = { onHand: number; reserved: number };
type Model = {
  skus: Record<string, Stock>;
  orders: Record<string, Order>;
  lastKey?: { key: string; input: { type: string; payload: unknown } };
};
type Real = { run: number };

let runs = 0;
let keys = 0;
const SKUS = ['X', 'Y'];
const sku = (run: number, s: string) => `M${run}-${s}`;

async function send(model: Model, input: { type: string; payload: unknown }): Promise<Outcome | Error> {
  const key = `model-${++keys}`;
  model.lastKey = { key, input };
  return apply(db.pool, input, key).catch((e: unknown) => e as Error);
}
const ok = (r: Outcome | Error) => !(r instanceof Error) && r.ok;

async function agree(model: Model, real: Real): Promise<void> {
  for (const s of SKUS) {
    const row = await db.pool.one(
      sql.type(
        z.object({ on_hand: z.bigint(), reserved: z.bigint() }),
      )`select on_hand, reserved from inventory where sku = ${sku(real.run, s)}`,
    );
    assert.deepEqual({ onHand: Number(row.on_hand), reserved: Number(row.reserved) }, model.skus[s], `stock of ${s}`);
  }
  for (const [ref, order] of Object.entries(model.orders)) {
    const state = await db.pool.oneFirst(sql.type(z.object({ state: z.string() }))`select state from orders where ref = ${ref}`);
    assert.equal(state, order.state, `state of ${ref}`);
  }
  assert.deepEqual(await inventoryViolations(db.pool), []);
  assert.deepEqual(await orderViolations(db.pool), []);
}

class Receive implements fc.AsyncCommand<Model, Real> {
  readonly s: string;
  readonly qty: number;
  constructor(s: string, qty: number) {
    this.s = s;
    this.qty = qty;
  }
  check = () => true;
  async run(m: Model, r: Real) {
    assert.ok(ok(await send(m, { type: 'stock.receive', payload: { sku: sku(r.run, this.s), qty: String(this.qty) } })));
    (m.skus[this.s] as Stock).onHand += this.qty;
    await agree(m, r);
  }
  toString = () => `receive(${this.s}, ${this.qty})`;
}

class Place implements fc.AsyncCommand<Model, Real> {
  readonly s: string;
  readonly qty: number;
  constructor(s: string, qty: number) {
    this.s = s;
    this.qty = qty;
  }
  check = () => true;
  async run(m: Model, r: Real) {
    const ref = `M${r.run}-O${Object.keys(m.orders).length + 1}`;
    const result = await send(m, {
      type: 'order.place',
      payload: { buyer: 'b', ref, items: [{ sku: sku(r.run, this.s), qty: String(this.qty) }] },
    });
    const stock = m.skus[this.s] as Stock;
    const fits = stock.onHand - stock.reserved >= this.qty;
    assert.equal(ok(result), fits, `place ${this.qty} of ${this.s}`);
    if (fits) stock.reserved += this.qty;
    m.orders[ref] = { sku: this.s, qty: this.qty, state: fits ? 'pending' : 'rejected', total: this.qty * 100 };
    await agree(m, r);
  }
  toString = () => `place(${this.s}, ${this.qty})`;
}

class Move implements fc.AsyncCommand<Model, Real> {
  readonly pick: number;
  readonly to: 'confirmed' | 'cancelled' | 'expired';
  constructor(pick: number, to: 'confirmed' | 'cancelled' | 'expired') {
    this.pick = pick;
    this.to = to;
  }
  check = (m: Readonly<Model>) => Object.keys(m.orders).length > 0;
  async run(m: Model, r: Real) {
    const refs = Object.keys(m.orders);
    const ref = refs[this.pick % refs.length] as string;
    const order = m.orders[ref] as Order;
    const stock = m.skus[order.sku] as Stock;
    if (this.to === 'expired') {
      await db.pool.query(sql.unsafe`update orders set expires_at = now() - interval '1 second' where ref = ${ref} and state = 'pending'`);
      await expireReservations(db.pool, silent);
      if (order.state === 'pending') {
        order.state = 'expired';
        stock.reserved -= order.qty;
      }
    } else {
      const result =
        this.to === 'confirmed'
          ? await send(m, {
              type: 'order.confirm',
              payload: { order: ref, payment_ref: `pay-${ref}-${keys}`, amount: String(order.total) },
            })
          : await send(m, { type: 'order.cancel', payload: { order: ref, reason: 'model' } });
      const allowed = this.to === 'confirmed' ? order.state === 'pending' : order.state === 'pending' || order.state === 'confirmed';
      assert.equal(ok(result), allowed, `${order.state} -> ${this.to}`);
      if (allowed) {
        if (this.to === 'confirmed') {
          stock.onHand -= order.qty;
          stock.reserved -= order.qty;
        } else if (order.state === 'pending') stock.reserved -= order.qty;
        else stock.onHand += order.qty;
        order.state = this.to;
      }
    }
    await agree(m, r);
  }
  toString = () => `${this.to}(#${this.pick})`;
}

class Replay implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => m.lastKey !== undefined;
  async run(m: Model, r: Real) {
    const last = m.lastKey as { key: string; input: { type: string; payload: unknown } };
    await apply(db.pool, last.input, last.key).catch(() => undefined);
    await agree(m, r);
  }
  toString = () => 'replay(last key)';
}

describe('the model and the real system', () => {
  test('agree after every command of 200 random sequences, and the invariants hold', async () => {
    const commands = [
      fc.tuple(fc.constantFrom(...SKUS), fc.integer({ min: 1, max: 5 })).map(([s, q]) => new Receive(s, q)),
      fc.tuple(fc.constantFrom(...SKUS), fc.integer({ min: 1, max: 4 })).map(([s, q]) => new Place(s, q)),
      fc.tuple(fc.nat(), fc.constantFrom('confirmed' as const, 'cancelled' as const, 'expired' as const)).map(([p, to]) => new Move(p, to)),
      fc.constant(new Replay()),
    ];
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 12 }), async (cmds) => {
        const run = ++runs;
        for (const s of SKUS)
          await mustApply(db.pool, { type: 'sku.add', payload: { code: sku(run, s), seller: 'model', price: '100', currency: 'INR' } });
        const model: Model = { skus: Object.fromEntries(SKUS.map((s) => [s, { onHand: 0, reserved: 0 }])), orders: {} };
        await fc.asyncModelRun(() => ({ model, real: { run } }), cmds);
      }),
      { numRuns: 200 },
    );
  });
});
