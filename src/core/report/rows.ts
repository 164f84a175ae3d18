import { BOOKING_STATUSES, type Booking } from '../bookings/booking.ts';
import type { Delivery } from '../deliveries.ts';
import { ORDER_STATUSES, type Order, type Payment } from '../fluxpay/model.ts';
import { INTENT_STATUSES, type Intent } from '../intents/intent.ts';
import { V2_STATUSES, type V2Payment } from '../v2/payment.ts';

/**
 * The rows of the run report (`GET /v1/sim/report`, issue 15 "Load-test controls"): one per
 * payment of every dialect, with its final state and what its webhook deliveries did. Plain data
 * built from the stores' records; the dialect renders it as JSON or CSV.
 * @see issue 15 "Load-test controls"
 */

/** The dialects that keep payments. The payment-service API (`/api/v1/payments/process`) pays bookings: its payments are `bookings` rows. */
export const REPORT_DIALECTS = ['native', 'payment-server-v2', 'bookings', 'fluxpay'] as const;
export type ReportDialect = (typeof REPORT_DIALECTS)[number];

/** The final states a row of each dialect can be in (`status`): an intent's, a v2 payment's, a booking's, a FluxPay order's. */
export const REPORT_STATUSES: Readonly<Record<ReportDialect, readonly string[]>> = {
  native: INTENT_STATUSES,
  'payment-server-v2': V2_STATUSES,
  bookings: BOOKING_STATUSES,
  fluxpay: ORDER_STATUSES,
};

/** What the delivery log holds for one payment (test sends left out). */
export interface DeliverySummary {
  count: number;
  delivered: number;
  failed: number;
  /** Pending or retrying: not finished yet. */
  pending: number;
  /** Attempts over all its deliveries. */
  attempts: number;
  /** The status code of the newest attempt (null: none yet, or it got no answer). */
  lastStatusCode: number | null;
}

export interface ReportRow {
  dialect: ReportDialect;
  id: string;
  /** The client's reference: the reservation id (native), `tx_id` (v2), the performance (bookings), the order name (FluxPay). */
  reference: string;
  amount: number;
  currency: string;
  /** The final state, in the dialect's own words. */
  status: string;
  /** The money was collected at some point (refunded or cancelled later or not). */
  approved: boolean;
  failureCode: string | null;
  /**
   * What decided it: `rule` when a fault rule's `outcome` did (every dialect; once the payment is
   * decided), else the scenario, `card` or `mix` (native and v2 name it before the decision too);
   * FluxPay's own `decidedBy`; null for bookings a rule did not decide (their CVV rule decides)
   * and where nothing decided yet.
   */
  decidedBy: string | null;
  createdAt: number;
  decidedAt: number | null;
  deliveries: DeliverySummary;
}

export const NO_DELIVERIES: DeliverySummary = Object.freeze({ count: 0, delivered: 0, failed: 0, pending: 0, attempts: 0, lastStatusCode: null });

/** Sums the deliveries of one payment; the newest attempt (by time, then log order) gives the last status code. */
export function summariseDeliveries(deliveries: Iterable<Delivery>): DeliverySummary {
  const summary = { ...NO_DELIVERIES };
  let lastAt = -Infinity;
  for (const delivery of deliveries) {
    if (delivery.test) continue;
    summary.count++;
    if (delivery.status === 'delivered') summary.delivered++;
    else if (delivery.status === 'failed') summary.failed++;
    else summary.pending++;
    summary.attempts += delivery.attempts.length;
    for (const attempt of delivery.attempts) {
      if (attempt.at >= lastAt) {
        lastAt = attempt.at;
        summary.lastStatusCode = attempt.statusCode;
      }
    }
  }
  return summary;
}

const APPROVED_INTENT = new Set<Intent['status']>(['APPROVED', 'PARTIALLY_REFUNDED', 'REFUNDED']);

export function intentRow(intent: Intent, deliveries: DeliverySummary): ReportRow {
  return {
    dialect: 'native',
    id: intent.id,
    reference: intent.reservationId,
    amount: intent.amount,
    currency: intent.currency,
    status: intent.status,
    approved: APPROVED_INTENT.has(intent.status),
    failureCode: intent.failureCode,
    decidedBy: intent.decidedByRule === true && intent.decidedAt !== null ? 'rule' : intent.scenario,
    createdAt: intent.createdAt,
    decidedAt: intent.decidedAt,
    deliveries,
  };
}

/** The document's payments are in won. */
const V2_CURRENCY = 'KRW';

export function v2Row(payment: V2Payment, deliveries: DeliverySummary): ReportRow {
  return {
    dialect: 'payment-server-v2',
    id: payment.id,
    reference: payment.txId,
    amount: payment.amount,
    currency: V2_CURRENCY,
    status: payment.status,
    approved: payment.status === 'PAYMENT_COMPLETED',
    failureCode: payment.failureCode,
    // A manual confirm of an undecided payment completes it without its planned outcome: not the rule's.
    decidedBy: payment.decidedByRule === true && payment.decidedAt !== null ? 'rule' : payment.scenario,
    createdAt: payment.createdAt,
    // A manual confirm of an undecided payment decides it.
    decidedAt: payment.decidedAt ?? payment.confirmedAt,
    deliveries,
  };
}

export function bookingRow(booking: Booking, deliveries: DeliverySummary): ReportRow {
  const pg = booking.paymentIntent.pgMockData;
  return {
    dialect: 'bookings',
    id: booking.id,
    reference: booking.performanceId,
    amount: booking.totalAmount,
    currency: booking.currency,
    status: booking.status,
    approved: booking.paymentIntent.status === 'SUCCESS',
    failureCode: pg?.failureCode ?? null,
    decidedBy: booking.paymentIntent.decidedByRule === true ? 'rule' : null,
    createdAt: booking.createdAt,
    decidedAt: pg?.processedAt ?? null,
    deliveries,
  };
}

/** An order with its latest PG payment (the one that paid it, else the latest attempt the outbox told of; null when none was made). */
export function fluxpayRow(order: Order, payment: Payment | null, deliveries: DeliverySummary): ReportRow {
  return {
    dialect: 'fluxpay',
    id: order.orderId,
    reference: order.orderName,
    amount: order.amount,
    currency: order.currency,
    status: order.status,
    approved: payment?.approvedAt != null,
    failureCode: payment?.failureCode ?? null,
    decidedBy: payment?.decidedBy ?? null,
    createdAt: order.createdAt,
    decidedAt: payment === null ? null : (payment.approvedAt ?? payment.failedAt),
    deliveries,
  };
}
