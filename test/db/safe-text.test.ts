// Free text the CLI refuses is refused by the database too (migration 000011): a SKU's title and
// the maintenance message cannot carry control, line-separator or text-direction characters.
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
