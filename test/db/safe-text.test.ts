// What the code never writes, the database refuses too: unsafe free text in a SKU's title and
// the maintenance message (migration 000011), requested items on an order not rejected (000012).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from '../../src/db/sql.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { seedCatalog } from '../helpers/seed.ts';

const db = await createTestDatabase();
await seedCatalog(db.pool, {});

const refusedBy = (constraint: string) => (error: { constraint?: string }) => error.constraint === constraint;

for (const text of ['bell\u0007', 'line\nbreak', 'rtl\u202eoverride']) {
  test(`the database refuses ${JSON.stringify(text)} as a SKU title and as the maintenance message`, async () => {
    await assert.rejects(
      db.pool.query(
        sql.unsafe`insert into skus (code, seller, price_amount, currency, title) values ('SAFE-1', 'tea-house', 1, 'INR', ${text})`,
      ),
      refusedBy('skus_title_safe'),
    );
    await assert.rejects(db.pool.query(sql.unsafe`update maintenance set message = ${text}`), refusedBy('maintenance_message_safe'));
  });
}

test('Indic text with zero-width joiners is kept', async () => {
  await db.pool.query(
    sql.unsafe`insert into skus (code, seller, price_amount, currency, title) values ('SAFE-2', 'tea-house', 1, 'INR', ${'অসমীয়া চাহ ক্\u200dষ'})`,
  );
});

test('the database refuses requested items on an order that is not rejected', async () => {
  const { mustApply } = await import('./../helpers/seed.ts');
  await mustApply(db.pool, { type: 'sku.add', payload: { code: 'SAFE-3', seller: 'tea-house', price: '100', currency: 'INR' } });
  await mustApply(db.pool, { type: 'stock.receive', payload: { sku: 'SAFE-3', qty: '1' } });
  const order = (await mustApply(db.pool, {
    type: 'order.place',
    payload: { buyer: 'b', ref: 'SAFE-P', items: [{ sku: 'SAFE-3', qty: '1' }] },
  })) as { id: string };
  await assert.rejects(
    db.pool.query(sql.unsafe`insert into order_requested_items (order_id, line, sku, qty) values (${order.id}::uuid, 1, 'X', 1)`),
    /requested items belong to a rejected order only/,
  );
});
