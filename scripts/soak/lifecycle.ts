// The soak's order lifecycle traffic (docs/lifecycle.md): beside its placements and payments, some
// orders are cash on delivery (confirmed by the storefront's order.confirmed or `haat order confirm
// --cod`), some have two lines, and the confirmed ones live a story after their placement — partial
// shipments, deliveries, failed deliveries reattempted or returned to origin, a delivery reported
// after a failed attempt racing a return to origin, a partial cancel, returns received (restocked
// or written off) or rejected, and refunds by items, by amount or of everything (once in transit) —
// as logistics and storefront webhooks and as CLI writes, while the soak kills workers, terminates
// connections and toggles maintenance. Every step is sent whatever the order's state then is (a
// worker may be behind, an event may be early): refusals are outcomes like any other, and the soak's
// verdict stays conservation and `haat reconcile`. At the end `verdict` reads what the stories came
// to and names any part of the lifecycle the run never reached.
import type pg from 'pg';

type Post = (source: string, type: string, data: unknown, id?: string, body?: string) => Promise<void>;
type Cli = (args: string[]) => Promise<number>;

/** What a placement is: its items, payment method and total (every SKU costs `price`). */
export type Placement = {
  readonly items: readonly { sku: string; qty: number }[];
  readonly cod: boolean;
  readonly total: number;
  /** The story its order lives once confirmed, if any. */
  readonly story: Story | null;
};

const STORIES = ['partial', 'rto', 'reattempt', 'cancel_part', 'race', 'refund_in_transit'] as const;
type Story = (typeof STORIES)[number];

/** CLI exits a lifecycle write may end in: done, refused (conflict, transition_not_allowed), not found yet. */
const EXPECTED_EXITS = new Set([0, 3, 4]);
/** At most this many lifecycle CLI writes run at once, beside the soak's own traffic. */
const CLI_IN_FLIGHT = 6;

/** A step waits at most this long for what it acts on (asked again every iteration), then goes anyway. */
const PATIENCE_MS = 15_000;

export function createLifecycleTraffic(options: {
  db: pg.Client;
  post: Post;
  cli: Cli;
  skus: readonly string[];
  price: number;
  violations: string[];
}) {
  const { db, post, cli, skus, price, violations } = options;
  const agenda = new Map<number, (() => Promise<void>)[]>();
  /** The iteration being run. */
  let now = 0;
  const inFlight = new Set<Promise<void>>();
  /** Bumped before and after every fault the soak injects (terminations, maintenance). */
  let faults = 0;
  let webhooks = 0;
  const figures = {
    stories: Object.fromEntries(STORIES.map((s) => [s, 0])) as Record<Story, number>,
    cod_orders: 0,
    two_line_orders: 0,
    lifecycle_webhooks: 0,
    lifecycle_duplicates: 0,
    cli_writes: 0,
    cli_exits: {} as Record<string, number>,
    cli_hit_by_faults: 0,
    /** Steps that went before what they act on was there (a worker behind, a step refused before), by story and step. */
    steps_gone_early: {} as Record<string, number>,
  };

  const later = (at: number, action: () => Promise<void>) => agenda.set(at, [...(agenda.get(at) ?? []), action]);
  /** Whether a query's one boolean is true now. */
  const holds = async (text: string, values: unknown[]) => (await db.query(text, values)).rows[0]?.ok === true;
  const orderIn =
    (ref: string, ...states: string[]) =>
    () =>
      holds('select state = any($2) as ok from orders where ref = $1', [ref, states]);
  const shipmentIn =
    (tracking: string, ...states: string[]) =>
    () =>
      holds('select state = any($2) as ok from shipments where tracking = $1', [tracking, states]);
  const returnable = (ref: string) => () =>
    holds(
      'select exists (select 1 from order_items i join orders o on o.id = i.order_id where o.ref = $1 and i.delivered > i.returned) as ok',
      [ref],
    );
  const returnIn = (ref: string, state: string) => () => holds('select state = $2 as ok from returns where ref = $1', [ref, state]);
  const refundedSome = (ref: string) => () =>
    holds('select exists (select 1 from refunds f join orders o on o.id = f.order_id where o.ref = $1) as ok', [ref]);

  /** A lifecycle webhook; every fifth is delivered twice (the same id and body). */
  const send = async (source: 'logistics' | 'storefront', type: string, data: unknown) => {
    figures.lifecycle_webhooks++;
    const id = `evt_life_${++webhooks}`;
    const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data });
    await post(source, type, null, id, body);
    if (webhooks % 5 === 0) {
      figures.lifecycle_duplicates++;
      await post(source, type, null, id, body);
    }
  };

  /**
   * A CLI write (--no-wait) run beside the soak's traffic. It must exit 0, 3 or 4; 1 or 5 only when
   * a fault the soak injected (a terminated connection, maintenance) came while it ran.
   */
  const write = async (args: string[]) => {
    figures.cli_writes++;
    const before = faults;
    const run = cli([...args, '--no-wait']).then((code) => {
      figures.cli_exits[code] = (figures.cli_exits[code] ?? 0) + 1;
      if (EXPECTED_EXITS.has(code)) return;
      if (faults !== before && (code === 1 || code === 5)) figures.cli_hit_by_faults++;
      else violations.push(`lifecycle: haat ${args.join(' ')} exited ${code}`);
    });
    inFlight.add(run);
    void run.finally(() => inFlight.delete(run));
    while (inFlight.size >= CLI_IN_FLIGHT) await Promise.race(inFlight);
  };

  /**
   * Order n's placement: COD one in five, two lines for the stories that send part of them (and one
   * in four). Orders 1 mod 3 are shipped whole by the soak's own traffic; the others that will be
   * confirmed (paid, `paid` says, or COD) live a story.
   */
  function placement(n: number, sku: string, paid: boolean): Placement {
    const unpriced = n % 11 === 0 || n % 13 === 0;
    const cod = n % 5 === 2 && !unpriced;
    const story = n % 3 === 1 || unpriced || !(paid || cod) ? null : (STORIES[Math.floor(n / 3) % STORIES.length] as Story);
    const other = skus[(skus.indexOf(sku) + 1) % skus.length] as string;
    const twoLines = story === 'partial' || story === 'cancel_part' || n % 4 === 1;
    const items = [{ sku, qty: 1 + (n % 3) }, ...(twoLines ? [{ sku: other, qty: 1 }] : [])];
    if (cod) figures.cod_orders++;
    if (twoLines) figures.two_line_orders++;
    return { items, cod, story, total: items.reduce((s, i) => s + i.qty * price, 0) };
  }

  /**
   * A COD order's confirmation (instead of a payment): the storefront's order.confirmed, or `haat
   * order confirm --cod` for every other one; when the soak sends the payment first (an early
   * event), the confirmation comes first too.
   */
  async function confirmCod(n: number, ref: string, placed: () => Promise<void>) {
    if (n % 20 === 7) {
      await send('storefront', 'order.confirmed', { order_ref: ref });
      await placed();
      return;
    }
    await placed();
    if (n % 20 === 12) await write(['order', 'confirm', ref, '--cod']);
    else await send('storefront', 'order.confirmed', { order_ref: ref });
  }

  /** Schedules order n's story, from iteration n on. */
  function schedule(n: number, ref: string, p: Placement) {
    if (!p.story) return;
    figures.stories[p.story]++;
    const [first, second] = p.items as [{ sku: string; qty: number }, { sku: string; qty: number } | undefined];
    const awb = (k: number) => `AWB-${n}-${k}`;
    // A story's orders are 3(6j + k) and 3(6j + k) + 2: every other j goes the other way.
    const alt = Math.floor(n / (3 * STORIES.length)) % 2 === 1;
    const courier = alt ? { courier: 'swift' } : {};
    const dispatch = (k: number, items?: { sku: string; qty: number }[]) =>
      send('logistics', 'shipment.dispatched', {
        order_ref: ref,
        tracking: awb(k),
        shipment_ref: `SH-${n}-${k}`,
        ...courier,
        ...(items ? { items } : {}),
      });
    /**
     * A step at iteration n + k, once `ready` holds (what it acts on is there: workers may be behind,
     * killed or held by maintenance), asked again every iteration; after PATIENCE_MS it goes anyway
     * (and is most likely refused, an outcome like any other).
     */
    const at = (k: number, action: () => Promise<void>, ready?: () => Promise<boolean>) => {
      let giveUpAt: number | undefined;
      const attempt = async () => {
        if (ready && !(await ready())) {
          giveUpAt ??= Date.now() + PATIENCE_MS;
          if (Date.now() < giveUpAt) return void later(now + 1, attempt);
          const step = `${p.story}+${k}`;
          figures.steps_gone_early[step] = (figures.steps_gone_early[step] ?? 0) + 1;
        }
        await action();
      };
      later(n + k, attempt);
    };
    const confirmed = orderIn(ref, 'confirmed', 'partially_shipped');
    const delivered = (k?: number) => send('logistics', 'shipment.delivered', { order_ref: ref, ...(k ? { tracking: awb(k) } : {}) });
    const failed = (k: number) => send('logistics', 'shipment.failed', { order_ref: ref, tracking: awb(k), reason: 'buyer not at home' });
    const reason = ['--reason', `soak: ${p.story} of ${ref}`];
    switch (p.story) {
      case 'partial':
        at(3, () => dispatch(1, [{ sku: first.sku, qty: 1 }]), confirmed);
        at(5, () => dispatch(2), orderIn(ref, 'partially_shipped'));
        at(7, () => delivered(1), shipmentIn(awb(1), 'dispatched'));
        at(8, () => delivered(), shipmentIn(awb(2), 'dispatched'));
        at(
          10,
          () =>
            send('storefront', 'return.requested', {
              order_ref: ref,
              return_ref: `RT-${n}`,
              items: [{ sku: first.sku, qty: 1 }],
              reason: 'too big',
            }),
          returnable(ref),
        );
        at(
          12,
          () => write(['return', 'receive', `RT-${n}`, n % 4 === 0 ? '--restock' : '--write-off', ...reason]),
          returnIn(`RT-${n}`, 'requested'),
        );
        at(14, () => write(['order', 'refund', ref, '--item', `${first.sku}:1`, ...reason]), returnIn(`RT-${n}`, 'received'));
        break;
      case 'rto':
        at(3, () => dispatch(1), confirmed);
        at(5, () => failed(1), shipmentIn(awb(1), 'dispatched'));
        at(
          6,
          () => send('logistics', 'shipment.rto_initiated', { order_ref: ref, tracking: awb(1) }),
          shipmentIn(awb(1), 'delivery_failed'),
        );
        at(8, () => send('logistics', 'shipment.rto_delivered', { order_ref: ref, tracking: awb(1) }), shipmentIn(awb(1), 'rto_initiated'));
        // Prepaid: the units back are refunded; COD: nothing was collected (refused, conflict).
        at(10, () => write(['order', 'refund', ref, ...reason]), orderIn(ref, 'returned_to_origin'));
        break;
      case 'reattempt':
        // One in four: the delivery is reported before the dispatch (an early event: it waits).
        if (n % 4 === 0) at(2, () => delivered(1));
        at(3, () => dispatch(1), confirmed);
        at(5, () => failed(1), shipmentIn(awb(1), 'dispatched'));
        // Sent again: by the operator, or by logistics dispatching the same tracking number again.
        at(6, () => (alt ? write(['shipment', 'reattempt', awb(1)]) : dispatch(1)), shipmentIn(awb(1), 'delivery_failed'));
        if (n % 4 !== 0) at(8, () => delivered(1), shipmentIn(awb(1), 'dispatched'));
        at(10, () => write(['order', 'refund', ref, '--amount', '500', ...reason]), orderIn(ref, 'delivered'));
        break;
      case 'cancel_part':
        at(3, () => dispatch(1, second ? [{ sku: second.sku, qty: 1 }] : undefined), confirmed);
        at(4, () => write(['order', 'cancel', ref, '--item', `${first.sku}:1`, ...reason]), orderIn(ref, 'partially_shipped'));
        at(6, () => delivered(), shipmentIn(awb(1), 'dispatched'));
        // The rest of the first line (none when it had one unit: refused, conflict).
        at(7, () => dispatch(2), shipmentIn(awb(1), 'delivered'));
        at(9, () => delivered(2), shipmentIn(awb(2), 'dispatched'));
        at(
          10,
          () =>
            send('storefront', 'return.requested', {
              order_ref: ref,
              return_ref: `RT-${n}`,
              items: [{ sku: second?.sku ?? first.sku, qty: 1 }],
              reason: 'not as described',
            }),
          returnable(ref),
        );
        at(12, () => write(['return', 'reject', `RT-${n}`, ...reason]), returnIn(`RT-${n}`, 'requested'));
        break;
      case 'race':
        // Reported delivered after a failed attempt, and returned to origin at once: one of them wins.
        at(3, () => dispatch(1), confirmed);
        at(5, () => failed(1), shipmentIn(awb(1), 'dispatched'));
        at(
          6,
          async () => {
            await delivered(1);
            await send('logistics', 'shipment.rto_initiated', { order_ref: ref, tracking: awb(1) });
          },
          shipmentIn(awb(1), 'delivery_failed'),
        );
        at(8, () => write(['shipment', 'rto-receive', awb(1)]), shipmentIn(awb(1), 'rto_initiated', 'delivered'));
        break;
      case 'refund_in_transit':
        // Refunded in full while on its way (prepaid), then delivered: it ends refunded. (COD: nothing to refund.)
        at(3, () => dispatch(1), confirmed);
        at(5, () => write(['order', 'refund', ref, ...reason]), orderIn(ref, 'shipped'));
        at(7, () => delivered(1), refundedSome(ref));
        break;
    }
  }

  /** Runs what is due at iteration n. */
  async function tick(n: number) {
    now = n;
    for (const action of agenda.get(n) ?? []) await action();
    agenda.delete(n);
  }

  /** Wraps a fault the soak injects, so a CLI write it cuts short is known for what it is. */
  async function fault<T>(inject: () => Promise<T>): Promise<T> {
    faults++;
    try {
      return await inject();
    } finally {
      faults++;
    }
  }

  /** Waits for the CLI writes still running (the stories' later steps are dropped with the load). */
  async function settle() {
    agenda.clear();
    await Promise.all(inFlight);
  }

  /**
   * What the stories came to, from the database; in a run long enough for them (30 s or more),
   * every part of the lifecycle must have happened at least once, or the traffic has a hole.
   */
  async function verdict(db: pg.Client, durationMs: number) {
    const { rows } = await db.query(`
      select
        (select coalesce(json_object_agg(state, n), '{}') from (select state, count(*)::int as n from shipments group by 1) s) as shipments,
        (select coalesce(json_object_agg(state, n), '{}') from (select state, count(*)::int as n from returns group by 1) s) as returns,
        (select coalesce(json_object_agg(coalesce(disposition, '-'), n), '{}') from (select disposition, count(*)::int as n from returns where state = 'received' group by 1) s) as dispositions,
        (select coalesce(json_object_agg(kind, n), '{}') from (select kind, count(*)::int as n from refunds group by 1) s) as refunds,
        (select coalesce(json_object_agg(state, n), '{}') from (select state, count(*)::int as n from orders group by 1) s) as orders,
        (select count(*)::int from shipment_transitions where from_state = 'delivery_failed' and to_state = 'dispatched') as reattempts,
        (select count(*)::int from order_transitions where to_state = 'partially_shipped') as partially_shipped,
        (select count(*)::int from order_transitions where from_state in ('delivered', 'returned_to_origin') and to_state = 'refunded') as refunded_orders,
        (select count(*)::int from journal_entries where kind = 'delivery') as cod_deliveries,
        (select count(*)::int from orders where payment_method = 'cod' and state not in ('pending', 'rejected', 'expired')) as cod_confirmed,
        (select count(*)::int from inventory_movements where kind = 'rto_restock') as rto_restocks,
        (select count(*)::int from inventory_movements where kind = 'return_restock') as return_restocks,
        (select count(*)::int from inventory_movements where kind = 'restock' and order_id is not null) as cancel_restocks,
        -- Events still within their out-of-order window (e.g. a delivery reported with nothing on its way yet): live jobs.
        (select coalesce(json_object_agg(event_type, n), '{}') from (
           select e.event_type, count(*)::int as n from webhook_events e
           where not exists (select 1 from webhook_event_outcomes o where o.source = e.source and o.webhook_id = e.webhook_id)
           group by 1) w) as waiting_events`);
    const r = rows[0];
    const result = { ...figures, cli_exits: figures.cli_exits, ...r };
    if (durationMs >= 30_000) {
      const reached: [string, boolean][] = [
        ['a shipment delivered', (r.shipments.delivered ?? 0) > 0],
        ['a shipment back at origin (rto_received)', (r.shipments.rto_received ?? 0) > 0],
        ['a failed delivery sent again', r.reattempts > 0],
        ['an order partially shipped', r.partially_shipped > 0],
        ['a return received and restocked', (r.dispositions.restock ?? 0) > 0],
        ['a return received and written off', (r.dispositions.write_off ?? 0) > 0],
        ['a return rejected', (r.returns.rejected ?? 0) > 0],
        ['a refund', (r.refunds.refund ?? 0) > 0],
        ['a cancellation refund (part of a paid order cancelled)', (r.refunds.cancellation ?? 0) > 0],
        ['an order refunded in full', r.refunded_orders > 0],
        ['a COD order confirmed', r.cod_confirmed > 0],
        ['a COD delivery owed by its courier', r.cod_deliveries > 0],
        ['units back on hand from RTO', r.rto_restocks > 0],
      ];
      for (const [what, ok] of reached) if (!ok) violations.push(`lifecycle: the run never reached ${what}`);
    }
    return result;
  }

  return { placement, confirmCod, schedule, tick, fault, settle, verdict };
}
