import { expect } from 'vitest';
import type { Booking, InboxEvent } from '../../../src/core/bookings/booking.ts';
import type { Delivery } from '../../../src/core/deliveries.ts';
import { createIdFactory, type IdFactory } from '../../../src/core/ids.ts';
import type { Intent } from '../../../src/core/intents/intent.ts';
import type { Page, PageQuery } from '../../../src/core/ports.ts';
import type { V2Payment } from '../../../src/core/v2/payment.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

/** Shared record builders for the contract suites (not a test file itself). */

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/**
 * One factory for the whole run, on a clock that never moves: its ULIDs are monotonic, so an id
 * made later always sorts later, which is the creation order the stores' cursors rely on.
 */
export const ids: IdFactory = createIdFactory(new ManualClock(T0));

export function anIntent(overrides: Partial<Intent> = {}): Intent {
  return {
    id: ids('pay'),
    reservationId: 'res_1',
    amount: 50_000,
    currency: 'KRW',
    scenario: 'approve',
    status: 'PENDING',
    failureCode: null,
    refundedAmount: 0,
    delayMs: 200,
    webhookUrl: 'https://client.example/hooks',
    metadata: Object.freeze({ order: 'o-1' }),
    createdAt: T0,
    updatedAt: T0,
    decidedAt: null,
    planned: { status: 'APPROVED', failureCode: null },
    ...overrides,
  };
}

export function aBooking(overrides: Partial<Booking> = {}): Booking {
  return {
    id: ids('bk'),
    userId: 'user_1',
    performanceId: 'perf_001',
    quantity: 2,
    seatIds: ['A1', 'A2'],
    totalAmount: 60_000,
    currency: 'KRW',
    status: 'pending',
    paymentMethod: 'CARD',
    webhookUrl: null,
    createdAt: T0,
    expiresAt: T0 + 10 * MINUTE,
    paymentIntent: { status: 'PENDING', pgMockData: null },
    paymentInFlight: null,
    settledAt: null,
    ...overrides,
  };
}

export function anInboxEvent(bookingId: string, overrides: Partial<InboxEvent> = {}): InboxEvent {
  return {
    eventId: ids('evt'),
    type: 'PAYMENT_SUCCEEDED',
    bookingId,
    details: { failureCode: null, paymentMethodToken: 'tok_visa', paymentMethod: 'CARD', amount: 60_000, currency: 'KRW' },
    createdAt: T0 + MINUTE,
    processedAt: null,
    ...overrides,
  };
}

export function aDelivery(overrides: Partial<Delivery> = {}): Delivery {
  return {
    id: ids('whd'),
    eventId: ids('evt'),
    type: 'payment.approved',
    url: 'https://client.example/hooks',
    subject: { kind: 'intent', id: 'pay_1' },
    test: false,
    body: '{"type":"payment.approved"}',
    extraHeaders: { 'x-event-type': 'payment.approved' },
    schemes: ['standard'],
    status: 'pending',
    attempts: [],
    seriesStart: 0,
    nextAttemptAt: null,
    failureReason: null,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

let v2Seq = 0;

/** A new PENDING, undecided v2 payment (a fresh tx_id unless given), planned to complete. */
export function aV2Payment(overrides: Partial<V2Payment> = {}): V2Payment {
  const txId = overrides.txId ?? `tx_${++v2Seq}`;
  return {
    id: `pay_${txId}`,
    txId,
    orderId: 123,
    userId: 1,
    amount: 1000,
    callbackUrl: 'https://ops.example/api/orders/payment/webhook/v2',
    status: 'PENDING',
    failureCode: null,
    scenario: 'approve',
    createdAt: T0,
    decidedAt: null,
    confirmedAt: null,
    completedBy: null,
    planned: { status: 'PAYMENT_COMPLETED', failureCode: null },
    ...overrides,
  };
}

/** Newest first, as every list answers. */
export const newestFirst = <T>(records: readonly T[]): T[] => [...records].reverse();

/**
 * Follows `nextCursor` until it is null. Holds the paging contract on the way: no page is longer
 * than the limit, and a cursor always moves on (a store repeating one would page forever).
 */
export async function pageAll<T>(limit: number, fetchPage: (query: PageQuery) => Promise<Page<T>>): Promise<{ records: T[]; pages: number }> {
  const records: T[] = [];
  let cursor: string | undefined;
  const seen = new Set<string>();
  for (let pages = 1; ; pages++) {
    const page = await fetchPage({ limit, cursor });
    expect(page.data.length).toBeLessThanOrEqual(limit);
    records.push(...page.data);
    if (page.nextCursor === null) return { records, pages };
    expect(seen.has(page.nextCursor), `cursor ${page.nextCursor} came back`).toBe(false);
    seen.add(page.nextCursor);
    cursor = page.nextCursor;
  }
}

/** Starts every call before awaiting any, so an adapter that reads, awaits, then writes is caught. */
export function concurrently<T>(count: number, call: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => call(i)));
}

/** How many results are of each kind. */
export function tally<T extends { kind: string }>(results: readonly T[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
  return counts;
}
