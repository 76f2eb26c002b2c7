// Reconcile at scale: ~2.3 million rows loaded set-based in a scratch database, then every invariant
// checked, then one broken row that must be found, and only it.
import pg from 'pg';
import { z } from 'zod';
import { migrateDatabase } from '../../src/db/migrate.ts';
import { createDatabasePool } from '../../src/db/pool.ts';
import { reconcile } from '../../src/db/reconcile.ts';
import { sql } from '../../src/db/sql.ts';
import { snapshotHash } from '../../src/domain/snapshot.ts';
import { createLogger } from '../../src/log.ts';
import { createScratchDatabase } from '../scratch-database.ts';

export type ReconcileBenchOptions = { readonly orders: number; readonly skus: number; readonly movements: number };

export async function benchReconcile(options: ReconcileBenchOptions): Promise<Record<string, unknown>> {
  const ORDERS = options.orders;
  const SKUS = options.skus;
  const MOVEMENTS = options.movements;
  const SELLERS = 100;
  const BPS = 1000;
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');

  const scratch = await createScratchDatabase('haat_bench', log);
  const url = scratch.url;

  const timed = async <T>(label: string, work: () => Promise<T>): Promise<[T, number]> => {
    const started = process.hrtime.bigint();
    const result = await work();
    const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
    console.error(`${label}: ${ms} ms`);
    return [result, ms];
  };

  let pool: Awaited<ReturnType<typeof createDatabasePool>> | undefined;
  try {
    await migrateDatabase(url, log);
    const db = new pg.Client({ connectionString: url });
    db.on('error', () => undefined); // the database is dropped under it on failure
    await db.connect();
    const [, loadMs] = await timed('load', async () => {
      await db.query('begin');
      // Bulk load only: no triggers, so rows can be written in their final state at once.
      await db.query(`set local session_replication_role = replica`);
      await db.query(`insert into sellers (handle, name) select 's-' || g, 'Seller ' || g from generate_series(1, ${SELLERS}) g`);
      await db.query(`insert into skus (code, seller, price_amount, currency)
      select 'B-' || lpad(g::text, 7, '0'), 's-' || (g % ${SELLERS} + 1), (g % 500 + 1) * 10, 'INR' from generate_series(1, ${SKUS}) g`);
      // Orders: one or two items; states in fixed proportions.
      await db.query(`create temp table o as
      select g, gen_random_uuid() as id, 'BO-' || g as ref,
             (array['pending','confirmed','confirmed','shipped','delivered','cancelled','expired','rejected','refunded','confirmed'])[g % 10 + 1] as state
      from generate_series(1, ${ORDERS}) g`);
      await db.query(`create temp table i as
      select distinct on (o.id, s.code) o.id as order_id, o.g, s.code as sku, (o.g % 3 + 1)::bigint as qty, s.price_amount as unit_price, s.seller
      from o cross join lateral (values (o.g % ${SKUS} + 1), ((o.g * 7) % ${SKUS} + 1)) v(n)
      join skus s on s.code = 'B-' || lpad(v.n::text, 7, '0')`);
      await db.query('create index on i (order_id)');
      await db.query(`insert into orders (id, ref, buyer, currency, state, total_amount, reject_reason, expires_at, payment_ref, commission_bps, created_at, updated_at)
      select o.id, o.ref, 'b-' || (o.g % 1000), 'INR', o.state, (select sum(qty * unit_price) from i where i.order_id = o.id),
             case when o.state = 'rejected' then 'insufficient_stock' end,
             case when o.state = 'pending' then now() + interval '15 minutes' else now() - interval '1 day' end,
             case when o.state in ('confirmed','shipped','delivered','refunded') then 'pay-' || o.g end, ${BPS}, now(), now()
      from o`);
      // Per-line counts as the lifecycle keeps them: cancelled whole (while pending), shipped, delivered.
      await db.query(
        `insert into order_items (order_id, sku, qty, unit_price, total, cancelled, shipped, delivered)
      select i.order_id, i.sku, i.qty, i.unit_price, i.qty * i.unit_price,
             case when o.state = 'cancelled' then i.qty else 0 end,
             case when o.state in ('shipped','delivered','refunded') then i.qty else 0 end,
             case when o.state in ('delivered','refunded') then i.qty else 0 end
      from i join o on o.id = i.order_id`,
      );
      // Transitions: the path from (new) to each state.
      await db.query(`insert into order_transitions (order_id, from_state, to_state, actor)
      select o.id, p.from_state, p.to_state, 'bench' from o cross join lateral (
        select * from (values
          (1, null, case when o.state = 'rejected' then 'rejected' else 'pending' end),
          (2, 'pending', case when o.state in ('cancelled','expired') then o.state when o.state in ('confirmed','shipped','delivered','refunded') then 'confirmed' end),
          (3, 'confirmed', case when o.state in ('shipped','delivered','refunded') then 'shipped' end),
          (4, 'shipped', case when o.state in ('delivered','refunded') then 'delivered' end),
          (5, 'delivered', case when o.state = 'refunded' then 'refunded' end)
        ) t(step, from_state, to_state) where t.to_state is not null
      ) p order by o.g, p.step`);
      // Their outbound events, as the outbox trigger writes them (triggers are off for the load).
      await db.query(`insert into outbound_events (id, type, order_id, sequence, transition_id, data)
      select outbox_id('evt_'), 'order.' || t.to_state, t.order_id, row_number() over (partition by t.order_id order by t.id), t.id,
             jsonb_build_object('order', outbox_order_state(ord) || jsonb_build_object('state', t.to_state))
      from order_transitions t join orders ord on ord.id = t.order_id`);
      // Reservations: one per item of every order that was ever pending.
      await db.query(`insert into reservations (holder, sku, qty, state, closed_at)
      select i.order_id::text, i.sku, i.qty,
             case o.state when 'pending' then 'active' when 'cancelled' then 'released' when 'expired' then 'expired' else 'finalized' end,
             case when o.state = 'pending' then null else now() end
      from i join o on o.id = i.order_id where o.state <> 'rejected'`);
      // Movements: a receive per SKU big enough for its orders, then each reservation's movements,
      // then single-unit receives until the requested number of movements.
      await db.query(`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reason)
      select s.code, 'receive', coalesce((select sum(r.qty) from reservations r where r.sku = s.code), 0) + 1000, 0, 'bench' from skus s`);
      await db.query(`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reservation_id)
      select r.sku, 'reserve', 0, r.qty, r.id from reservations r`);
      await db.query(`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reservation_id)
      select r.sku, case r.state when 'finalized' then 'finalize' when 'released' then 'release' else 'expire' end,
             case when r.state = 'finalized' then -r.qty else 0 end, -r.qty, r.id
      from reservations r where r.state <> 'active'`);
      const { rows } = await db.query('select count(*)::int as n from inventory_movements');
      const more = Math.max(0, MOVEMENTS - (rows[0] as { n: number }).n);
      await db.query(`insert into inventory_movements (sku, kind, on_hand_delta, reserved_delta, reason)
      select 'B-' || lpad((g % ${SKUS} + 1)::text, 7, '0'), 'receive', 1, 0, 'bench' from generate_series(1, ${more}) g`);
      await db.query(`insert into inventory (sku, on_hand, reserved)
      select sku, sum(on_hand_delta), sum(reserved_delta) from inventory_movements group by sku`);
      // Money: splits (commission = 10% exactly: every price is a multiple of 10) and a capture
      // entry for every paid order; a cancellation-style reversal for refunded ones.
      // Captured whole when paid; a refunded order refunded whole (reversed by one entry, as before
      // refunds were recorded) and keeping no commission.
      await db.query(`insert into order_seller_splits (order_id, seller, subtotal, commission, payout, captured, refunded, commission_kept)
      select i.order_id, i.seller, sum(i.qty * i.unit_price), sum(i.qty * i.unit_price) * ${BPS} / 10000, sum(i.qty * i.unit_price) - sum(i.qty * i.unit_price) * ${BPS} / 10000,
             case when o.state in ('confirmed','shipped','delivered','refunded') then sum(i.qty * i.unit_price) else 0 end,
             case when o.state = 'refunded' then sum(i.qty * i.unit_price) else 0 end,
             case when o.state in ('confirmed','shipped','delivered') then sum(i.qty * i.unit_price) * ${BPS} / 10000 else 0 end
      from i join o on o.id = i.order_id group by i.order_id, i.seller, o.state`);
      // One parcel per shipped order (delivered when the order was), its history and its events.
      await db.query(`insert into shipments (order_id, ref, courier, state)
      select o.id, 'BS-' || o.g, 'default', case when o.state = 'shipped' then 'dispatched' else 'delivered' end
      from o where o.state in ('shipped','delivered','refunded')`);
      await db.query(`insert into shipment_items (shipment_id, sku, qty)
      select s.id, i.sku, i.qty from shipments s join i on i.order_id = s.order_id`);
      await db.query(`insert into shipment_transitions (shipment_id, from_state, to_state, actor)
      select s.id, t.from_state, t.to_state, 'bench' from shipments s cross join lateral (
        select * from (values (1, null, 'dispatched'), (2, 'dispatched', case when s.state = 'delivered' then 'delivered' end)) v(step, from_state, to_state)
        where v.to_state is not null
      ) t order by s.ref, t.step`);
      await db.query(`insert into outbound_events (id, type, order_id, sequence, shipment_transition_id, data)
      select outbox_id('evt_'), 'shipment.' || t.to_state, s.order_id,
             (select max(e.sequence) from outbound_events e where e.order_id = s.order_id) + row_number() over (partition by s.order_id order by t.id),
             t.id, jsonb_build_object('shipment', lifecycle_shipment(s) || jsonb_build_object('state', t.to_state))
      from shipment_transitions t join shipments s on s.id = t.shipment_id`);
      await db.query(`create temp table paid as
      select o.id, o.state, row_number() over (order by o.g) as n from o where o.state in ('confirmed','shipped','delivered','refunded')`);
      await db.query(`insert into journal_entries (order_id, kind) select id, 'capture' from paid order by n`);
      await db.query(`insert into journal_entries (order_id, kind) select id, 'refund' from paid where state = 'refunded' order by n`);
      await db.query(`insert into postings (entry_id, account, amount, currency)
      select e.id, p.account, case when e.kind = 'capture' then p.amount else -p.amount end, 'INR'
      from journal_entries e cross join lateral (
        select 'psp_clearing' as account, sum(s.subtotal) as amount from order_seller_splits s where s.order_id = e.order_id
        union all select 'seller_payable:' || s.seller, -s.payout from order_seller_splits s where s.order_id = e.order_id
        union all select 'platform_commission', -sum(s.commission) from order_seller_splits s where s.order_id = e.order_id
      ) p where p.amount <> 0`);
      await db.query('commit');
    });

    // Snapshot hashes of every non-pending order, computed by the one function reconcile uses.
    const reader = await createDatabasePool(url, { maxPoolSize: 4 });
    pool = reader;
    await timed('snapshot hashes', async () => {
      let after = '';
      for (;;) {
        const { rows } = await db.query<{ id: string; ref: string; total: string; items: string; splits: string }>(
          `select o.id, o.ref, o.total_amount::text as total,
           (select json_agg(json_build_object('sku', i.sku, 'qty', i.qty::text, 'unit_price', i.unit_price::text, 'total', i.total::text) order by i.sku) from order_items i where i.order_id = o.id)::text as items,
           (select json_agg(json_build_object('seller', s.seller, 'subtotal', s.subtotal::text, 'commission', s.commission::text, 'payout', s.payout::text) order by s.seller) from order_seller_splits s where s.order_id = o.id)::text as splits
         from orders o where o.state not in ('pending', 'rejected') and o.ref > $1 order by o.ref limit 5000`,
          [after],
        );
        if (rows.length === 0) break;
        const hashes = rows.map((o) =>
          snapshotHash({
            currency: 'INR',
            total: BigInt(o.total),
            commissionBps: BPS,
            items: (JSON.parse(o.items) as { sku: string; qty: string; unit_price: string; total: string }[]).map((i) => ({
              sku: i.sku,
              qty: BigInt(i.qty),
              unitPrice: BigInt(i.unit_price),
              total: BigInt(i.total),
            })),
            splits: (JSON.parse(o.splits) as { seller: string; subtotal: string; commission: string; payout: string }[]).map((s) => ({
              seller: s.seller,
              subtotal: BigInt(s.subtotal),
              commission: BigInt(s.commission),
              payout: BigInt(s.payout),
            })),
          }),
        );
        await db.query('begin');
        await db.query('set local session_replication_role = replica'); // money is frozen once confirmed
        await db.query('update orders o set snapshot_hash = h.hash from unnest($1::uuid[], $2::text[]) h(id, hash) where o.id = h.id', [
          rows.map((r) => r.id),
          hashes,
        ]);
        await db.query('commit');
        after = rows.at(-1)?.ref ?? after;
      }
    });
    await db.query('analyze');

    const { rows: sizes } = await db.query<{ t: string; n: string }>(`
    select relname as t, n_live_tup::text as n from pg_stat_user_tables
    where relname in ('inventory','inventory_movements','reservations','orders','order_items','order_transitions','order_seller_splits','journal_entries','postings','outbound_events','shipments','shipment_items','shipment_transitions')
    order by relname`);
    const [checks, reconcileMs] = await timed('reconcile', () => reconcile(reader));
    const failing = checks.filter((c) => !c.ok);
    if (failing.length > 0)
      throw new Error(
        `reconcile found violations in a consistent load: ${JSON.stringify(failing.map((c) => [c.name, c.violations.slice(0, 3)]))}`,
      );

    // One broken row (a unit appears without a movement) must be found, and only it.
    const victim = 'B-0000001';
    await db.query(`update inventory set on_hand = on_hand + 1 where sku = $1`, [victim]);
    const [broken, brokenMs] = await timed('reconcile with one broken row', () => reconcile(reader));
    const found = broken.filter((c) => !c.ok).flatMap((c) => c.violations.map((v) => `${c.name}:${String(v.sku)}`));
    if (found.join() !== `on_hand_is_movements:${victim}`) throw new Error(`expected exactly the broken SKU, found ${found.join(', ')}`);

    const version = (await reader.oneFirst(sql.type(z.object({ v: z.string() }))`select current_setting('server_version') as v`)) as string;
    await db.end();
    return {
      benchmark: 'haat reconcile (invariants 1-10, set-based)',
      postgres: version,
      rows: Object.fromEntries(sizes.map((r) => [r.t, Number(r.n)])),
      load_ms: loadMs,
      reconcile_ms: reconcileMs,
      query_ms_by_check: Object.fromEntries(checks.map((c) => [`${c.invariant} ${c.name}`, c.ms])),
      reconcile_with_one_broken_row_ms: brokenMs,
      found_the_broken_row: true,
    };
  } finally {
    await pool?.end();
    await scratch.drop();
  }
}
