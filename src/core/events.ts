import type { Booking } from './bookings.ts';
import type { Intent } from './intents.ts';

export type PaymentEventType = 'payment.created' | 'payment.approved' | 'payment.failed' | 'payment.cancelled' | 'payment.refunded';

/**
 * A fact about an intent. `intent` is a snapshot taken when the event was published, so a later
 * transition never changes what an earlier event says.
 */
export interface PaymentEvent {
  id: string;
  type: PaymentEventType;
  occurredAt: number;
  intent: Readonly<Intent>;
  /** For `payment.refunded`: the amount of this refund (the intent carries the running total). */
  refundAmount?: number;
}

export type BookingEventType = 'booking.confirmed' | 'booking.failed' | 'booking.expired' | 'booking.cancelled';

/** A fact about a booking; `booking` is a snapshot taken when the event was published. */
export interface BookingEvent {
  id: string;
  type: BookingEventType;
  occurredAt: number;
  booking: Readonly<Booking>;
}

export type DomainEvent = PaymentEvent | BookingEvent;

export type EventHandler = (event: DomainEvent) => void;

/**
 * The in-process bus every observable state change goes through. Delivery is synchronous and in
 * subscription order; a failing subscriber is reported and never stops the publisher or the
 * other subscribers.
 */
export class EventBus {
  readonly #handlers = new Set<EventHandler>();
  readonly #onError: (error: unknown, event: DomainEvent) => void;

  constructor(onError: (error: unknown, event: DomainEvent) => void = () => {}) {
    this.#onError = onError;
  }

  subscribe(handler: EventHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  publish(event: DomainEvent): void {
    for (const handler of this.#handlers) {
      try {
        handler(event);
      } catch (error) {
        this.#onError(error, event);
      }
    }
  }
}

export function isPaymentEvent(event: DomainEvent): event is PaymentEvent {
  return event.type.startsWith('payment.');
}

export function isBookingEvent(event: DomainEvent): event is BookingEvent {
  return event.type.startsWith('booking.');
}
