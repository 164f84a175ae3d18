import type { Booking } from '../bookings/booking.ts';
import type { Delivery, Subject } from '../deliveries.ts';
import type { OutboxEvent } from '../fluxpay/model.ts';
import type { FluxPayStore } from '../fluxpay/ports.ts';
import type { DeliveryLogStore, IntentStore, Page, PageQuery, V2PaymentStore } from '../ports.ts';
import { bookingRow, fluxpayRow, intentRow, NO_DELIVERIES, summariseDeliveries, v2Row, type DeliverySummary, type ReportRow } from './rows.ts';

/**
 * Reads every payment of every dialect through the store ports, in batches, for the run report:
 * a generator of row batches, so the caller renders and sends one batch before the next is read
 * and memory stays bounded by the batch, whatever the stores hold. Lists are newest first, so a
 * `since` ends a dialect's listing at its first older payment.
 *
 * What is read at once, beyond a batch: the /api/v2 payments (their port lists without a cursor:
 * one call of at most V2_PAYMENTS_MAX, sliced into batches) and, for FluxPay, a map of order id to
 * its outbox events (FluxPay delivers per outbox event, so an order's deliveries are those of its
 * events; the outbox is bounded by FLUXPAY_MAX_RECORDS).
 * @see issue 15 "Load-test controls"
 */

/**
 * The subject kinds the dialects give their deliveries (each dialect's webhook-payload.ts; core
 * cannot import dialects). test/integration/report.test.ts counts each dialect's deliveries, so a
 * kind that drifts fails it.
 */
export const SUBJECT_KINDS = { native: 'intent', v2: 'v2_payment', bookings: 'booking', fluxpay: 'fluxpay_event' } as const;

/** Payments read per port call, and rows per batch handed to the caller. */
export const REPORT_BATCH = 500;
/** Deliveries read per call when listing one subject's. */
const DELIVERY_PAGE = 100;

export interface ReportSources {
  intents: IntentStore;
  v2Payments: V2PaymentStore;
  /** The bookings service's listing, which expires lapsed holds as it reads (as every read of the bookings API does). */
  listBookings: (page: PageQuery) => Promise<Page<Booking>>;
  fluxpay: FluxPayStore;
  deliveries: DeliveryLogStore;
  /** How many /api/v2 payments the store holds at most (V2_PAYMENTS_MAX). */
  v2Max: number;
}

export interface ReportFilter {
  /** Epoch ms: only payments created at or after it. */
  since?: number | undefined;
}

async function deliveriesOf(store: DeliveryLogStore, subjects: readonly Subject[]): Promise<DeliverySummary> {
  const all: Delivery[] = [];
  for (const subject of subjects) {
    let cursor: string | undefined;
    do {
      const page = await store.list({ subject, limit: DELIVERY_PAGE, cursor });
      all.push(...page.data);
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }
  return all.length === 0 ? NO_DELIVERIES : summariseDeliveries(all);
}

/** Pages through a newest-first listing, stopping at the first record created before `since`. */
async function* pages<T>(list: (page: PageQuery) => Promise<Page<T>>, createdAt: (record: T) => number, since: number): AsyncGenerator<T[]> {
  let cursor: string | undefined;
  do {
    const page = await list({ limit: REPORT_BATCH, cursor });
    const fresh = page.data.filter((record) => createdAt(record) >= since);
    if (fresh.length > 0) yield fresh;
    if (fresh.length < page.data.length) return;
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
}

interface OrderEvents {
  eventIds: string[];
  /** The newest payment the outbox told of (a failed payment is not on its order). */
  paymentKey: string | null;
}

function orderOf(event: OutboxEvent): { orderId: string; paymentKey: string | null } | undefined {
  const p = event.payload;
  switch (p.kind) {
    case 'payment':
      return { orderId: p.payment.orderId, paymentKey: p.payment.paymentKey };
    case 'order':
      return { orderId: p.order.orderId, paymentKey: p.payment?.paymentKey ?? null };
    case 'credit':
      return p.transaction.orderId === null ? undefined : { orderId: p.transaction.orderId, paymentKey: null };
    case 'subscription':
      return undefined;
  }
}

/** Every order's outbox events (newest first) and latest payment key, in one pass over the outbox. */
async function fluxpayEvents(store: FluxPayStore): Promise<Map<string, OrderEvents>> {
  const byOrder = new Map<string, OrderEvents>();
  let cursor: string | undefined;
  do {
    const page = await store.listOutbox({ limit: REPORT_BATCH, cursor });
    for (const event of page.data) {
      const about = orderOf(event);
      if (about === undefined) continue;
      let entry = byOrder.get(about.orderId);
      if (entry === undefined) byOrder.set(about.orderId, (entry = { eventIds: [], paymentKey: null }));
      entry.eventIds.push(event.eventId);
      entry.paymentKey ??= about.paymentKey;
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return byOrder;
}

/** The report's rows, a batch at a time: native intents, /api/v2 payments, bookings, FluxPay orders; each newest first. */
export async function* reportBatches(sources: ReportSources, filter: ReportFilter = {}): AsyncGenerator<ReportRow[]> {
  const since = filter.since ?? -Infinity;
  const { deliveries } = sources;
  const subject = (kind: string, id: string): Subject[] => [{ kind, id }];

  for await (const intents of pages((q) => sources.intents.list(q), (i) => i.createdAt, since)) {
    const rows: ReportRow[] = [];
    for (const intent of intents) rows.push(intentRow(intent, await deliveriesOf(deliveries, subject(SUBJECT_KINDS.native, intent.id))));
    yield rows;
  }

  const v2 = (await sources.v2Payments.list({ limit: sources.v2Max })).data.filter((p) => p.createdAt >= since);
  for (let start = 0; start < v2.length; start += REPORT_BATCH) {
    const rows: ReportRow[] = [];
    for (const payment of v2.slice(start, start + REPORT_BATCH)) rows.push(v2Row(payment, await deliveriesOf(deliveries, subject(SUBJECT_KINDS.v2, payment.id))));
    yield rows;
  }
  v2.length = 0;

  for await (const bookings of pages(sources.listBookings, (b) => b.createdAt, since)) {
    const rows: ReportRow[] = [];
    for (const booking of bookings) rows.push(bookingRow(booking, await deliveriesOf(deliveries, subject(SUBJECT_KINDS.bookings, booking.id))));
    yield rows;
  }

  let events: Map<string, OrderEvents> | undefined;
  for await (const orders of pages((q) => sources.fluxpay.listOrders(q), (o) => o.createdAt, since)) {
    events ??= await fluxpayEvents(sources.fluxpay);
    const rows: ReportRow[] = [];
    for (const order of orders) {
      const known = events.get(order.orderId);
      const paymentKey = order.paymentKey ?? known?.paymentKey ?? null;
      const payment = paymentKey === null ? null : ((await sources.fluxpay.getPayment(paymentKey)) ?? null);
      const subjects = (known?.eventIds ?? []).map((id) => ({ kind: SUBJECT_KINDS.fluxpay, id }));
      rows.push(fluxpayRow(order, payment, await deliveriesOf(deliveries, subjects)));
    }
    yield rows;
  }
}
