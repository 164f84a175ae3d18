/**
 * Bookings and their events inbox, as plain data.
 *
 * Booking: pending → confirmed | failed | expired | cancelled.
 * Its payment intent (one per booking): PENDING → SUCCESS | FAILURE.
 * @see issue 4, ../../../../shared/seeds/003_2d28ecb358825d26.txt
 */

export const BOOKING_STATUSES = ['pending', 'confirmed', 'failed', 'expired', 'cancelled'] as const;
export type BookingStatus = (typeof BOOKING_STATUSES)[number];
export type BookingPaymentStatus = 'PENDING' | 'SUCCESS' | 'FAILURE';

/** `execute`: document 003's card payment; `direct`: document 004's one-step payment. */
export type PaymentKind = 'execute' | 'direct';

export const MAX_QUANTITY = 10;

/** What the simulated payment gateway answered (document 003's `pgMockData`). */
export interface PgMockData {
  isSuccess: boolean;
  failureCode: string | null;
  /** Epoch ms. */
  processedAt: number;
}

export interface BookingPaymentIntent {
  status: BookingPaymentStatus;
  pgMockData: PgMockData | null;
  /**
   * true when a fault rule's `outcome` decided the payment (issue 15), whatever the token and CVV
   * said; absent otherwise, and in records stored before 2026-12-04. Never shown by the bookings
   * API; the run report's `decided_by` reads it.
   */
  decidedByRule?: true;
}

export interface Booking {
  /** `bk_<ULID>` */
  id: string;
  userId: string;
  performanceId: string;
  quantity: number;
  /** The seats the booking was given, in seat order. Kept after the seats are released, for the record. */
  seatIds: readonly string[];
  /** `quantity × priceMinor`, in minor units of `currency`. */
  totalAmount: number;
  currency: string;
  status: BookingStatus;
  paymentMethod: string;
  webhookUrl: string | null;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms: when the seat hold lapses (`createdAt + seatHoldMs`), the seats' `lockedUntil`. */
  expiresAt: number;
  paymentIntent: BookingPaymentIntent;
  /**
   * A payment between its call and the end of its processing delay. While set, nothing else may
   * pay, cancel or expire the booking: of two concurrent payments exactly one proceeds.
   */
  paymentInFlight: PaymentKind | null;
  /**
   * Epoch ms: when it left pending (confirmed, failed, expired or cancelled); null while pending.
   * Its status event's id and time are derived from it, so the event made again (a backstop job,
   * a settlement run again) is the same event.
   */
  settledAt: number | null;
}

export type InboxEventType = 'PAYMENT_SUCCEEDED' | 'PAYMENT_FAILED';

/** A payment result in the events inbox. */
export interface InboxEvent {
  /** `evt_<ULID>` */
  eventId: string;
  type: InboxEventType;
  bookingId: string;
  details: {
    failureCode: string | null;
    /** The token `executePayment` was given, a card number masked (`maskedToken`); null for the one-step payment. Never the CVV. */
    paymentMethodToken: string | null;
    paymentMethod: string;
    amount: number;
    currency: string;
  };
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms when the processor applied it; null until then. */
  processedAt: number | null;
}

/** Bookings kept, by status, with payments in flight and inbox events not processed yet. */
export interface BookingCounts {
  bookings: Record<BookingStatus, number>;
  paymentsInFlight: number;
  unprocessedEvents: number;
}

export function copyBooking(booking: Booking): Booking {
  return { ...booking, seatIds: [...booking.seatIds], paymentIntent: copyPaymentIntent(booking.paymentIntent) };
}

/** A copy of a booking's payment intent: its gateway answer copied, the rule mark kept when set. */
export function copyPaymentIntent(paymentIntent: BookingPaymentIntent): BookingPaymentIntent {
  const { status, pgMockData, decidedByRule } = paymentIntent;
  return { status, pgMockData: pgMockData === null ? null : { ...pgMockData }, ...(decidedByRule === true ? { decidedByRule } : {}) };
}

/**
 * A card number given as the token, as it is kept: its last four digits, the rest masked
 * (`************4242`); any other token as given. The whole number is never stored, published
 * or shown, as FluxPay keeps only a card's last four digits.
 */
export function maskedToken(token: string | null): string | null {
  if (token === null) return null;
  const digits = token.replace(/[ -]/g, '');
  return /^\d{8,}$/.test(digits) ? `${'*'.repeat(digits.length - 4)}${digits.slice(-4)}` : token;
}

export function copyEvent(event: InboxEvent): InboxEvent {
  return { ...event, details: { ...event.details } };
}

/** Still waiting for its payment: pending, unpaid, and no payment in flight. */
export function isUnpaid(booking: Booking): boolean {
  return booking.status === 'pending' && booking.paymentIntent.status === 'PENDING' && booking.paymentInFlight === null;
}
