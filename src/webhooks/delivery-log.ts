import { OrderedStore } from '../core/ordered-store.ts';

/**
 * The delivery log: every webhook the dispatcher accepted, with each attempt, until it is
 * delivered or has failed for a stated reason. Bounded like the intent store (TTL, maximum size;
 * finished deliveries are evicted first).
 */

export const DELIVERY_STATUSES = ['pending', 'retrying', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface DeliveryAttempt {
  at: number;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

export interface Delivery {
  id: string;
  eventId: string;
  type: string;
  url: string;
  intentId: string | null;
  bookingId: string | null;
  /** Sent by POST /v1/sim/webhook/test rather than by an event of the intent. */
  test: boolean;
  /** Serialised once: every attempt sends these exact bytes. */
  body: string;
  /** Headers of the API that produced the event (e.g. an event-type header), sent on every attempt. */
  extraHeaders: Record<string, string>;
  status: DeliveryStatus;
  attempts: DeliveryAttempt[];
  /** Index in `attempts` where the current attempt series (first try or a replay) started. */
  seriesStart: number;
  nextAttemptAt: number | null;
  failureReason: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface DeliveryQuery {
  intentId?: string | undefined;
  eventId?: string | undefined;
  status?: DeliveryStatus | undefined;
  limit: number;
  cursor?: string | undefined;
}

export class DeliveryLog {
  readonly #records: OrderedStore<Delivery, 'intent' | 'event'>;

  constructor(options: { ttlMs: number; maxDeliveries: number }) {
    this.#records = new OrderedStore<Delivery, 'intent' | 'event'>({
      ttlMs: options.ttlMs,
      maxRecords: options.maxDeliveries,
      isFinal: (delivery) => delivery.status === 'delivered' || delivery.status === 'failed',
      indexes: { intent: (delivery) => delivery.intentId, event: (delivery) => delivery.eventId },
    });
  }

  get size(): number {
    return this.#records.size;
  }

  insert(delivery: Delivery): void {
    this.#records.insert(delivery);
  }

  get(id: string): Delivery | undefined {
    return this.#records.get(id);
  }

  /** The newest delivery of an intent's events (test sends are not the intent's webhook). */
  latestForIntent(intentId: string): Delivery | undefined {
    return this.#records.latest('intent', intentId, (delivery) => !delivery.test);
  }

  list(query: DeliveryQuery) {
    const { status, intentId, eventId } = query;
    // Walk the narrower index; check the other filters on each record.
    const index = eventId !== undefined ? { name: 'event' as const, key: eventId } : intentId !== undefined ? { name: 'intent' as const, key: intentId } : undefined;
    const filter =
      status === undefined && (eventId === undefined || intentId === undefined)
        ? undefined
        : (d: Delivery) => (status === undefined || d.status === status) && (intentId === undefined || d.intentId === intentId);
    return this.#records.list({ limit: query.limit, cursor: query.cursor, index, filter });
  }

  sweep(now: number): number {
    return this.#records.sweep(now);
  }
}
