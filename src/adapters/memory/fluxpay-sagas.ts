import { copySaga, type InboundEvent, type Saga } from '../../core/fluxpay/model.ts';
import { EvictionQueue } from './eviction-queue.ts';
import { usageKey } from './fluxpay-credits.ts';
import { byId } from './id-list.ts';

/** What an inbound event id seen before answers: the same event again, or another under its id. */
export type Seen = { kind: 'duplicate'; event: InboundEvent; saga: Saga | undefined } | { kind: 'conflict'; event: InboundEvent };

/**
 * FluxPay's sagas and the inbound events that started or resolved them, in one process's memory,
 * changed by MemoryFluxPayStore inside its own synchronous steps (./fluxpay.ts), which runs their
 * steps against orders and credits; this part keeps the records, the saga of each user's usageId,
 * and the eviction order. Records handed out by `get` and `ofUsage` are the stored ones, for the
 * store to change within its step; the store copies them out.
 *
 * Bounds: a saga joins the eviction queue when final (`finish`), and so do the inbound events
 * recorded for it (at once for a saga that has already ended): while a saga runs or compensates, a
 * repeat of its events must still be found a duplicate. Those in the queue go by TTL, or the oldest
 * at the bound.
 */
export class MemorySagaBook {
  readonly #maxRecords: number;
  readonly #sagas = new Map<string, Saga>();
  readonly #byUsage = new Map<string, string>();
  readonly #inbound = new Map<string, InboundEvent>();
  /** The ids of the inbound events recorded for each saga that has not ended (not evictable yet). */
  readonly #held = new Map<string, string[]>();
  readonly #finished = new EvictionQueue(
    (id: string) => this.#sagas.get(id),
    (saga: Saga) => saga.createdAt,
    (saga: Saga) => this.#remove(saga),
  );
  readonly #inboundQueue = new EvictionQueue(
    (id: string) => this.#inbound.get(id),
    (event: InboundEvent) => event.receivedAt,
    (event: InboundEvent) => this.#inbound.delete(event.eventId),
  );

  /** `maxRecords`: the bound of sagas and of inbound events, each. */
  constructor(maxRecords: number) {
    this.#maxRecords = maxRecords;
  }

  get size(): number {
    return this.#sagas.size;
  }

  /** Whether one more saga and its inbound event fit, evicting the oldest finished saga, or the oldest inbound event, at a bound. */
  room(): boolean {
    return (this.#sagas.size < this.#maxRecords || this.#finished.evictOne()) && (this.#inbound.size < this.#maxRecords || this.#inboundQueue.evictOne());
  }

  /** Stores a copy of `saga` (the caller has made room); answers the stored record. */
  insert(saga: Saga): Saga {
    const stored = copySaga(saga);
    this.#sagas.set(stored.sagaId, stored);
    this.#byUsage.set(usageKey(stored.userId, stored.usageId), stored.sagaId);
    return stored;
  }

  get(sagaId: string): Saga | undefined {
    return this.#sagas.get(sagaId);
  }

  /** The saga of `usageId` by `userId`, while it is stored. */
  ofUsage(userId: string, usageId: string): Saga | undefined {
    const id = this.#byUsage.get(usageKey(userId, usageId));
    return id === undefined ? undefined : this.#sagas.get(id);
  }

  /** The `limit` newest sagas (copies) and how many are stored. */
  recent(limit: number): { total: number; sagas: Saga[] } {
    const newest = [...this.#sagas.values()].sort((a, b) => b.createdAt - a.createdAt || byId(b.sagaId, a.sagaId)).slice(0, limit);
    return { total: this.#sagas.size, sagas: newest.map(copySaga) };
  }

  /** A saga → COMPLETED or COMPENSATED; from now on it may be evicted, and so may its inbound events. */
  finish(saga: Saga, status: 'COMPLETED' | 'COMPENSATED', now: number): void {
    saga.status = status;
    saga.completedAt = now;
    saga.updatedAt = now;
    this.#finished.push(saga.sagaId);
    for (const eventId of this.#held.get(saga.sagaId) ?? []) this.#inboundQueue.push(eventId);
    this.#held.delete(saga.sagaId);
  }

  /** An inbound event (a copy). */
  inbound(eventId: string): InboundEvent | undefined {
    const event = this.#inbound.get(eventId);
    return event === undefined ? undefined : { ...event };
  }

  /** The outcome of an event id seen before (copies), or undefined: it is new. */
  seen(event: InboundEvent): Seen | undefined {
    const seen = this.#inbound.get(event.eventId);
    if (seen === undefined) return undefined;
    if (seen.fingerprint !== event.fingerprint) return { kind: 'conflict', event: { ...seen } };
    const saga = seen.sagaId === null ? undefined : this.#sagas.get(seen.sagaId);
    return { kind: 'duplicate', event: { ...seen }, saga: saga === undefined ? undefined : copySaga(saga) };
  }

  /**
   * Remembers an inbound event (a copy) of the saga `event.sagaId`; at the bound the oldest that may
   * go does (a saga's end is never refused for want of room to remember it). It may go itself once
   * its saga has ended.
   */
  record(event: InboundEvent): void {
    if (this.#inbound.size >= this.#maxRecords) this.#inboundQueue.evictOne();
    this.#inbound.set(event.eventId, { ...event });
    const saga = event.sagaId === null ? undefined : this.#sagas.get(event.sagaId);
    if (saga === undefined || saga.status === 'COMPLETED' || saga.status === 'COMPENSATED') this.#inboundQueue.push(event.eventId);
    else {
      const held = this.#held.get(saga.sagaId);
      if (held === undefined) this.#held.set(saga.sagaId, [event.eventId]);
      else held.push(event.eventId);
    }
  }

  /** Evicts finished sagas and inbound events dated at or before `cutoff`; returns how many. */
  sweep(cutoff: number): number {
    return this.#finished.sweep(cutoff) + this.#inboundQueue.sweep(cutoff);
  }

  /** Every saga (copies), for FluxPaySnapshot. */
  snapshot(): Saga[] {
    return [...this.#sagas.values()].map(copySaga);
  }

  #remove(saga: Saga): void {
    this.#sagas.delete(saga.sagaId);
    const key = usageKey(saga.userId, saga.usageId);
    if (this.#byUsage.get(key) === saga.sagaId) this.#byUsage.delete(key);
  }
}
