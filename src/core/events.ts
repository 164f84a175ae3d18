import type { Booking, InboxEvent, PaymentKind } from './bookings/booking.ts';
import type { Delivery, DeliveryAttempt } from './deliveries.ts';
import type { Order, OutboxEvent, Payment } from './fluxpay/model.ts';
import type { Intent } from './intents/intent.ts';
import type { V2Payment } from './v2/payment.ts';
import type { WaitingRoomEvent } from './waiting-room/service.ts';

export type { WaitingRoomAdmittedEvent, WaitingRoomChangedEvent, WaitingRoomEvent } from './waiting-room/service.ts';

/**
 * The in-process event bus: every state change a client could observe is published here, and
 * webhooks, metrics (and later the console and the outbox) subscribe to the same facts.
 * Events carry snapshots taken when they were published, so a later change never alters what an
 * earlier event says.
 */

export type PaymentEventType = 'payment.created' | 'payment.approved' | 'payment.failed' | 'payment.cancelled' | 'payment.refunded';

/** A fact about an intent. */
export interface PaymentEvent {
  id: string;
  type: PaymentEventType;
  occurredAt: number;
  intent: Readonly<Intent>;
  /** For `payment.refunded`: the amount of this refund (the intent carries the running total). */
  refundAmount?: number;
}

export type BookingEventType = 'booking.created' | 'booking.confirmed' | 'booking.failed' | 'booking.expired' | 'booking.cancelled';

/** A booking changed status (or was created). */
export interface BookingEvent {
  id: string;
  type: BookingEventType;
  occurredAt: number;
  booking: Readonly<Booking>;
}

/** The gateway answered a booking's payment: `execute` (document 003, by card) or `direct` (document 004). */
export interface BookingPaymentEvent {
  id: string;
  type: 'booking.payment_decided';
  occurredAt: number;
  booking: Readonly<Booking>;
  kind: PaymentKind;
  isSuccess: boolean;
  failureCode: string | null;
}

/** The processor applied an inbox event for the first time; `processedAt − createdAt` is its lag. */
export interface InboxProcessedEvent {
  id: string;
  type: 'booking.event_processed';
  occurredAt: number;
  event: Readonly<InboxEvent>;
}

export type DeliveryEventType = 'webhook.accepted' | 'webhook.attempted' | 'webhook.retry_scheduled' | 'webhook.delivered' | 'webhook.failed';

/** A webhook delivery changed: accepted, attempted (with the attempt), waiting to retry, or finished. `id` is the delivery's. */
export interface DeliveryEvent {
  id: string;
  type: DeliveryEventType;
  occurredAt: number;
  delivery: Readonly<Delivery>;
  attempt?: Readonly<DeliveryAttempt>;
}

/**
 * A payment of the `/api/v2` API: created (PENDING), decided (auto-completion ran: PAYMENT_FAILED,
 * or PENDING with its `payment.completed` callback out), completed (its callback was acknowledged,
 * or it was confirmed by hand: `payment.completedBy` says which).
 */
export type V2PaymentEventType = 'v2.payment_created' | 'v2.payment_decided' | 'v2.payment_completed';

export interface V2PaymentEvent {
  id: string;
  type: V2PaymentEventType;
  occurredAt: number;
  payment: Readonly<V2Payment>;
}

/**
 * A FluxPay outbox event the relay has published (handed to every webhook subscriber and marked
 * PUBLISHED), told on the bus too so in-process watchers (the console) see FluxPay's changes.
 * `id` is the outbox event's eventId; `event` is its snapshot as published.
 */
export interface FluxPayOutboxBusEvent {
  id: string;
  type: 'fluxpay.event';
  occurredAt: number;
  event: Readonly<OutboxEvent>;
}

/**
 * FluxPay writes no outbox event when an order or a READY payment is created (document 002's
 * events start at the payment's decision), so those two are told on the bus alone.
 */
export interface FluxPayCreatedEvent {
  id: string;
  type: 'fluxpay.order_created' | 'fluxpay.payment_created';
  occurredAt: number;
  order?: Readonly<Order>;
  payment?: Readonly<Payment>;
}

export type FluxPayBusEvent = FluxPayOutboxBusEvent | FluxPayCreatedEvent;

export type DomainEvent = PaymentEvent | BookingEvent | BookingPaymentEvent | InboxProcessedEvent | DeliveryEvent | V2PaymentEvent | FluxPayBusEvent | WaitingRoomEvent;

export type EventHandler = (event: DomainEvent) => void;

/**
 * Delivery is synchronous and in subscription order; a failing subscriber is reported and never
 * stops the publisher or the other subscribers.
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

const BOOKING_STATUS_EVENTS: ReadonlySet<string> = new Set<BookingEventType>(['booking.created', 'booking.confirmed', 'booking.failed', 'booking.expired', 'booking.cancelled']);

export function isBookingEvent(event: DomainEvent): event is BookingEvent {
  return BOOKING_STATUS_EVENTS.has(event.type);
}

export function isV2PaymentEvent(event: DomainEvent): event is V2PaymentEvent {
  return event.type.startsWith('v2.');
}

export function isDeliveryEvent(event: DomainEvent): event is DeliveryEvent {
  return event.type.startsWith('webhook.');
}

export function isFluxPayEvent(event: DomainEvent): event is FluxPayBusEvent {
  return event.type.startsWith('fluxpay.');
}
