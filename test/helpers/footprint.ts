// Everything the database holds, as one comparable value: for every table of haat and of the job
// queue, its row count and a hash of all its rows. Two equal footprints mean nothing was inserted,
// updated or deleted anywhere in between (sequences may have moved: they are not data).
import { z } from 'zod';
import type { Queryable } from '../../src/db/pool.ts';
import { sql } from '../../src/db/sql.ts';

export type Footprint = Readonly<Record<string, string>>;

export async function footprint(db: Queryable): Promise<Footprint> {
  const tables = await db.any(sql.type(z.object({ schema: z.string(), name: z.string() }))`
    select table_schema as schema, table_name as name from information_schema.tables
    where table_type = 'BASE TABLE' and table_schema in ('public', 'graphile_worker')
    order by 1, 2`);
  if (tables.length < 10) throw new Error(`only ${tables.length} tables: is this database migrated?`);
  const parts = tables.map(
    (t) => sql.fragment`select ${`${t.schema}.${t.name}`}::text as t,
      count(*)::text || ' rows ' || coalesce(md5(string_agg(to_jsonb(x)::text, '|' order by to_jsonb(x)::text)), '-') as h
      from ${sql.identifier([t.schema, t.name])} x`,
  );
  const rows = await db.any(sql.type(z.object({ t: z.string(), h: z.string() }))`${sql.join(parts, sql.fragment` union all `)}`);
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}
