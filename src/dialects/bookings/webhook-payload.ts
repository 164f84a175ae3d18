import type { Booking } from '../../core/bookings/booking.ts';
import type { BookingEvent, BookingEventType } from '../../core/events.ts';
import type { WebhookRequest } from '../../webhooks/dispatcher.ts';

/**
 * The bookings API's webhook: camelCase like that API, one body per booking event
 * (`booking.confirmed`, `booking.failed`, `booking.expired`, `booking.cancelled`) of a booking
 * created with a `webhookUrl`. `id` is the event id, the same on every retry and replay, for
 * de-duplication; the rest is the booking as the event saw it, so a receiver can act without a
 * second call. Signed with WEBHOOK_SIGNATURE_SCHEMES, retried by the one dispatcher.
 * @see issue 4 "Core" (domain events for bookings)
 */

export const DELIVERED_BOOKING_EVENTS: ReadonlySet<BookingEventType> = new Set(['booking.confirmed', 'booking.failed', 'booking.expired', 'booking.cancelled']);

export function bookingPayload(eventId: string, type: string, occurredAt: number, booking: Readonly<Booking>): string {
  return JSON.stringify({
    id: eventId,
    type,
    createdAt: new Date(occurredAt).toISOString(),
    bookingId: booking.id,
    userId: booking.userId,
    performanceId: booking.performanceId,
    quantity: booking.quantity,
    seatIds: booking.seatIds,
    totalAmount: booking.totalAmount,
    currency: booking.currency,
    status: booking.status,
    paymentStatus: booking.paymentIntent.status,
    paymentMethod: booking.paymentMethod,
    failureCode: booking.paymentIntent.pgMockData?.failureCode ?? null,
  });
}

/** The delivery for a booking event, or undefined when it is not delivered or the booking has no webhook URL. */
export function bookingWebhookOf(event: BookingEvent, schemes: readonly string[]): WebhookRequest | undefined {
  if (!DELIVERED_BOOKING_EVENTS.has(event.type) || event.booking.webhookUrl === null) return undefined;
  return {
    eventId: event.id,
    type: event.type,
    url: event.booking.webhookUrl,
    body: bookingPayload(event.id, event.type, event.occurredAt, event.booking),
    subject: { kind: 'booking', id: event.booking.id },
    schemes,
  };
}
