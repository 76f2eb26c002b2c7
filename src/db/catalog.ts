// SQL for sellers and SKUs. A SKU is created with its inventory row (0 on hand) in one statement.
import { z } from 'zod';
import { registerConstraint } from './errors.ts';
import type { Queryable } from './pool.ts';
import { sql } from './sql.ts';

registerConstraint('sellers_pkey', 'conflict');
registerConstraint('skus_pkey', 'conflict');

export const SellerRow = z.object({ handle: z.string(), name: z.string(), created_at: z.string() });
export type SellerRow = z.infer<typeof SellerRow>;

export const SkuRow = z.object({
  code: z.string(),
  seller: z.string(),
  title: z.string(),
  price_amount: z.bigint(),
  currency: z.string(),
  created_at: z.string(),
});
export type SkuRow = z.infer<typeof SkuRow>;

export async function findSeller(db: Queryable, handle: string): Promise<SellerRow | null> {
  return db.maybeOne(sql.type(SellerRow)`select handle, name, created_at from sellers where handle = ${handle}`);
}

export async function insertSeller(db: Queryable, seller: { handle: string; name: string }): Promise<SellerRow> {
  return db.one(sql.type(SellerRow)`
    insert into sellers (handle, name) values (${seller.handle}, ${seller.name}) returning handle, name, created_at`);
}

export async function findSku(db: Queryable, code: string): Promise<SkuRow | null> {
  return db.maybeOne(sql.type(SkuRow)`select code, seller, title, price_amount, currency, created_at from skus where code = ${code}`);
}

export async function insertSku(
  db: Queryable,
  sku: { code: string; seller: string; title: string; priceAmount: bigint; currency: string },
): Promise<SkuRow> {
  return db.one(sql.type(SkuRow)`
    with created as (
      insert into skus (code, seller, title, price_amount, currency)
      values (${sku.code}, ${sku.seller}, ${sku.title}, ${sku.priceAmount}, ${sku.currency})
      returning code, seller, title, price_amount, currency, created_at
    ), stock as (
      insert into inventory (sku) select code from created
    )
    select * from created`);
}

export async function knownCurrencies(db: Queryable): Promise<readonly { code: string; exponent: number }[]> {
  return db.any(sql.type(z.object({ code: z.string(), exponent: z.number() }))`select code, exponent from currencies order by code`);
}
