import { maskedToken, type Booking, type InboxEvent } from '../../core/bookings/booking.ts';
import type { Performance } from '../../core/bookings/performances.ts';
import type { LedgerEntry } from '../../core/ledger.ts';
import type { SeatCounts } from '../../core/seats.ts';

/** How the bookings API shows its records: camelCase, ISO 8601 times, card numbers masked. */

export const iso = (ms: number): string => new Date(ms).toISOString();

export function bookingView(booking: Booking) {
  return {
    bookingId: booking.id,
    userId: booking.userId,
    performanceId: booking.performanceId,
    quantity: booking.quantity,
    seatIds: [...booking.seatIds],
    totalAmount: booking.totalAmount,
    status: booking.status,
    createdAt: iso(booking.createdAt),
    expiresAt: iso(booking.expiresAt),
  };
}

export function eventView(event: InboxEvent) {
  return {
    eventId: event.eventId,
    type: event.type,
    bookingId: event.bookingId,
    // Masked again for events stored whole before 2026-12-05.
    details: { ...event.details, paymentMethodToken: maskedToken(event.details.paymentMethodToken) },
    createdAt: iso(event.createdAt),
    processedAt: event.processedAt === null ? null : iso(event.processedAt),
  };
}

export function entryView(entry: LedgerEntry) {
  const { reference, ...rest } = entry;
  return { ...rest, bookingId: reference, createdAt: iso(entry.createdAt) };
}

export function performanceView(p: Performance, seats: SeatCounts) {
  return {
    performanceId: p.id,
    title: p.title,
    venue: p.venue,
    startsAt: p.startsAt,
    rows: p.rows,
    seatsPerRow: p.seatsPerRow,
    pricePerSeat: p.priceMinor,
    currency: p.currency,
    seats,
  };
}
