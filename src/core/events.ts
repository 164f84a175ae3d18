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
  /** Made again (`isMadeAgain`). */
  again?: true;
}

export type BookingEventType = 'booking.created' | 'booking.confirmed' | 'booking.failed' | 'booking.expired' | 'booking.cancelled';

/** A booking changed status (or was created). */
export interface BookingEvent {
  id: string;
  type: BookingEventType;
  occurredAt: number;
  booking: Readonly<Booking>;
  /** Made again (`isMadeAgain`). */
  again?: true;
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
  /** Made again (`isMadeAgain`): the end of a delivery another consumer recorded, found by the one that took its entry over (`finishedAgain`). */
  again?: true;
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
  /** Made again (`isMadeAgain`). */
  again?: true;
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

/**
 * A subscriber. It may answer a promise for the part of its work that makes the event's effect
 * durable (a shared store's webhook deliveries being logged and queued): `publishDurable` hands
 * those to the publisher; `publish` reports them if they fail. Anything else it answers is ignored.
 */
export type EventHandler = (event: DomainEvent) => unknown;

/**
 * Delivery is synchronous and in subscription order; a failing subscriber is reported and never
 * stops the publisher or the other subscribers.
 *
 * An event may be published more than once, with the same id, when the due work that made it runs
 * again (its process died, or its webhooks could not be queued, before the job was completed):
 * subscribers see the same fact again, never a different one (at-least-once).
 * @see issue 14 "kill -9"
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
    const pending = this.#dispatch(event);
    if (pending === undefined) return;
    for (const work of pending) work.catch((error: unknown) => this.#onError(error, event));
  }

  /**
   * Publishes, and answers what the publisher must await before its work counts as done (a due
   * job is completed only then): the subscribers' durable parts, rejected when one failed (the
   * job runs again). Undefined when no subscriber has any (one process in memory): nothing to await.
   */
  publishDurable(event: DomainEvent): Promise<void> | undefined {
    const pending = this.#dispatch(event);
    if (pending === undefined) return undefined;
    return Promise.all(pending).then(() => undefined);
  }

  /** Reports a failure of an event's durable effects that its publisher does not throw (a backstop job makes the event again), as `publish` reports its own. */
  report(error: unknown, event: DomainEvent): void {
    this.#onError(error, event);
  }

  #dispatch(event: DomainEvent): Array<Promise<unknown>> | undefined {
    let pending: Array<Promise<unknown>> | undefined;
    for (const handler of this.#handlers) {
      try {
        const work = handler(event);
        if (work instanceof Promise) (pending ??= []).push(work);
      } catch (error) {
        this.#onError(error, event);
      }
    }
    return pending;
  }
}

/**
 * An event made again by due work that ran again (a decision's job whose first run was cut off or
 * could not queue its webhooks, a cancel's or a refund's backstop job): the same id and the same
 * fact as the first making, told for the subscribers whose effect must be durable (webhooks, the
 * outbound event stream: at least once). Counts and feeds of this process skip it: the first
 * making was counted here, or by a process that died with its counts.
 * @see issue 14 "kill -9"
 */
export function isMadeAgain(event: DomainEvent): boolean {
  return 'again' in event && event.again === true;
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
