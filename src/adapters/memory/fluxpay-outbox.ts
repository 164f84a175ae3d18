import { FifoQueue } from '../../core/fifo-queue.ts';
import { outboxOrderIds, type OutboxEvent, type OutboxEventType, type OutboxPayload } from '../../core/fluxpay/model.ts';
import type { OutboxQuery } from '../../core/fluxpay/ports.ts';
import type { Page } from '../../core/ports.ts';
import { EvictionQueue } from './eviction-queue.ts';
import { IdList, pageOf } from './id-list.ts';

/** Outbox keys that sort as strings in write order. */
const seqKey = (sequence: number): string => sequence.toString(36).padStart(11, '0');

/**
 * FluxPay's transactional outbox in one process's memory, written by MemoryFluxPayStore (and the
 * billing store) inside their own synchronous steps, so a change and its events are one write.
 * Events are numbered in write order; the relay takes the pending ones in that order and marks
 * them published. Bounds: at `maxEvents` the oldest published event goes, and published events go
 * by TTL; pending ones never do (the relay has not handed them over yet), so a relay that cannot
 * publish for long lets them grow (see the outbox depth gauge). Each event is also listed under the
 * orders it is about (outboxOrderIds) while it is held, so an order's events are read directly.
 */
export class MemoryFluxPayOutbox {
  readonly #maxEvents: number;
  readonly #events = new Map<string, OutboxEvent>();
  readonly #bySeq = new Map<string, OutboxEvent>();
  readonly #list = new IdList();
  /** Event ids in write order; published ones leave from the head as the relay asks. */
  readonly #pending = new FifoQueue<string>();
  /** orderId → the ids of the events about it, in write order; an event leaves with its removal. */
  readonly #byOrder = new Map<string, string[]>();
  #pendingCount = 0;
  #sequence = 0;
  readonly #published = new EvictionQueue(
    (id: string) => this.#events.get(id),
    (event: OutboxEvent) => event.occurredAt,
    (event: OutboxEvent) => this.#remove(event),
  );
  readonly #isLive = (key: string): boolean => this.#bySeq.has(key);

  constructor(maxEvents: number) {
    this.#maxEvents = maxEvents;
  }

  /** Writes one PENDING event, synchronously, inside the caller's step. */
  append(eventId: string, eventType: OutboxEventType, aggregate: string, payload: OutboxPayload, now: number): void {
    while (this.#events.size >= this.#maxEvents && this.#published.evictOne());
    const event: OutboxEvent = { eventId, eventType, aggregate, sequence: ++this.#sequence, status: 'PENDING', occurredAt: now, publishedAt: null, payload };
    this.#events.set(eventId, event);
    const key = seqKey(event.sequence);
    this.#bySeq.set(key, event);
    this.#list.insert(key);
    this.#pending.push(eventId);
    this.#pendingCount++;
    for (const orderId of outboxOrderIds(payload)) {
      const ids = this.#byOrder.get(orderId);
      if (ids === undefined) this.#byOrder.set(orderId, [eventId]);
      else ids.push(eventId);
    }
  }

  /** The newest `limit` events about an order, oldest first, and how many are held. */
  ofOrder(orderId: string, limit: number): { events: OutboxEvent[]; total: number } {
    const ids = this.#byOrder.get(orderId) ?? [];
    const events: OutboxEvent[] = [];
    for (const id of ids.slice(Math.max(0, ids.length - limit))) {
      const event = this.#events.get(id);
      if (event !== undefined) events.push(copyOutbox(event));
    }
    return { events, total: ids.length };
  }

  pending(limit: number): OutboxEvent[] {
    const out: OutboxEvent[] = [];
    // Published ones at the head leave the queue; the rest stay in write order.
    for (;;) {
      const head = this.#pending.peek();
      if (head === undefined || this.#events.get(head)?.status === 'PENDING') break;
      this.#pending.shift();
    }
    for (const id of this.#pending) {
      if (out.length === limit) break;
      const event = this.#events.get(id);
      if (event?.status === 'PENDING') out.push(copyOutbox(event));
    }
    return out;
  }

  markPublished(eventIds: readonly string[], now: number): number {
    let marked = 0;
    for (const id of eventIds) {
      const event = this.#events.get(id);
      if (event?.status !== 'PENDING') continue;
      event.status = 'PUBLISHED';
      event.publishedAt = now;
      this.#pendingCount--;
      this.#published.push(id);
      marked++;
    }
    // Written while the relay was behind (pending events never go), more than the bound may be held: once published they go.
    while (this.#events.size > this.#maxEvents && this.#published.evictOne());
    return marked;
  }

  list(query: OutboxQuery): Page<OutboxEvent> {
    const cursorEvent = query.cursor === undefined ? undefined : this.#events.get(query.cursor);
    // An unknown cursor (evicted, or never an id) starts from the oldest end: an empty page.
    const cursor = query.cursor === undefined ? undefined : cursorEvent === undefined ? '' : seqKey(cursorEvent.sequence);
    const { status } = query;
    const page = pageOf(
      this.#list,
      { limit: query.limit, cursor },
      (key) => {
        const event = this.#bySeq.get(key);
        return event === undefined ? undefined : { id: key, event };
      },
      ({ event }) => copyOutbox(event),
      status === undefined ? undefined : ({ event }) => event.status === status,
    );
    const next = page.nextCursor === null ? null : (this.#bySeq.get(page.nextCursor)?.eventId ?? null);
    return { data: page.data, nextCursor: next };
  }

  stats(): { pending: number; oldestPendingAt: number | null; published: number } {
    let oldest: number | null = null;
    for (const id of this.#pending) {
      const event = this.#events.get(id);
      if (event?.status === 'PENDING') {
        oldest = event.occurredAt;
        break;
      }
    }
    return { pending: this.#pendingCount, oldestPendingAt: oldest, published: this.#events.size - this.#pendingCount };
  }

  counts(): { pending: number; published: number } {
    return { pending: this.#pendingCount, published: this.#events.size - this.#pendingCount };
  }

  /** Evicts published events that occurred at or before `cutoff`; returns how many. */
  sweep(cutoff: number): number {
    return this.#published.sweep(cutoff);
  }

  #remove(event: OutboxEvent): void {
    this.#events.delete(event.eventId);
    this.#bySeq.delete(seqKey(event.sequence));
    this.#list.markDead(this.#isLive);
    for (const orderId of outboxOrderIds(event.payload)) {
      const ids = this.#byOrder.get(orderId);
      const at = ids?.indexOf(event.eventId) ?? -1;
      if (ids === undefined || at < 0) continue;
      ids.splice(at, 1);
      if (ids.length === 0) this.#byOrder.delete(orderId);
    }
  }
}

function copyOutbox(event: OutboxEvent): OutboxEvent {
  // Payloads are copies made when the event was written and never changed: shared.
  return { ...event };
}
