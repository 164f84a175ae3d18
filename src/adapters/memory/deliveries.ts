import { copyDelivery, isFinished, subjectKey, type Delivery, type DeliveryChange, type Subject } from '../../core/deliveries.ts';
import { FifoQueue } from '../../core/fifo-queue.ts';
import type { DeliveryExpectation, DeliveryLogStore, DeliveryQuery, InsertOnceOutcome, InsertOutcome, Page, StoreStats } from '../../core/ports.ts';
import { IdList, pageOf } from './id-list.ts';
import { INSERTED } from './inserted.ts';
import { KeyedIds } from './keyed-ids.ts';

export interface MemoryDeliveryLogOptions {
  ttlMs: number;
  maxDeliveries: number;
}

interface Record {
  delivery: Delivery;
  /** In the eviction queue now (so it is queued once). */
  queued: boolean;
}

/**
 * The webhook delivery log in one process's memory. Only finished deliveries (delivered or
 * failed) are ever evicted: they join the eviction queue when they finish, in that order; a
 * replayed delivery leaves it by being unfinished and joins again when it finishes. A log full of
 * unfinished deliveries refuses new ones (`full`), and the dispatcher fails such a delivery
 * (`log_full`, logged at error by the event-logs plugin) rather than drop one it already accepted.
 * Lists walk the creation-ordered list of all deliveries, or the one of a subject or of an event.
 */
export class MemoryDeliveryLog implements DeliveryLogStore {
  readonly #records = new Map<string, Record>();
  readonly #order = new IdList();
  readonly #bySubject = new KeyedIds();
  readonly #byEvent = new KeyedIds();
  readonly #finished = new FifoQueue<string>();
  readonly #options: MemoryDeliveryLogOptions;
  readonly #isLive = (id: string): boolean => this.#records.has(id);

  constructor(options: MemoryDeliveryLogOptions) {
    this.#options = options;
  }

  insert(delivery: Delivery): Promise<InsertOutcome> {
    this.#sweep(delivery.createdAt);
    while (this.#records.size >= this.#options.maxDeliveries) {
      if (!this.#evictOne(() => true)) return Promise.resolve({ ok: false, reason: 'full' });
    }
    const record: Record = { delivery: copyDelivery(delivery), queued: false };
    this.#records.set(delivery.id, record);
    this.#order.insert(delivery.id);
    if (delivery.subject !== null) this.#bySubject.insert(subjectKey(delivery.subject), delivery.id);
    this.#byEvent.insert(delivery.eventId, delivery.id);
    this.#queueIfFinished(record);
    return INSERTED;
  }

  insertOnce(delivery: Delivery): Promise<InsertOnceOutcome> {
    const found = this.#byEvent.get(delivery.eventId);
    if (found !== undefined) {
      // An event has one delivery per URL, or two with a `duplicate` fault rule: few to look at.
      const { ids, start } = found.walkFrom(undefined);
      for (let i = start; i >= 0; i--) {
        const existing = this.#records.get(ids[i] as string)?.delivery;
        if (existing?.url === delivery.url) return Promise.resolve({ ok: false, reason: 'exists', existing: copyDelivery(existing) });
      }
    }
    return this.insert(delivery);
  }

  get(id: string): Promise<Delivery | undefined> {
    const record = this.#records.get(id);
    return Promise.resolve(record === undefined ? undefined : copyDelivery(record.delivery));
  }

  update(id: string, change: DeliveryChange): Promise<Delivery | undefined> {
    const record = this.#records.get(id);
    return Promise.resolve(record === undefined ? undefined : this.#apply(record, change));
  }

  updateIf(id: string, expect: DeliveryExpectation, change: DeliveryChange): Promise<{ delivery: Delivery; changed: boolean } | undefined> {
    const record = this.#records.get(id);
    if (record === undefined) return Promise.resolve(undefined);
    const { delivery } = record;
    if (!expect.statuses.includes(delivery.status) || delivery.attempts.length !== expect.attempts) return Promise.resolve({ delivery: copyDelivery(delivery), changed: false });
    return Promise.resolve({ delivery: this.#apply(record, change), changed: true });
  }

  #apply(record: Record, change: DeliveryChange): Delivery {
    const { delivery } = record;
    if (change.newSeries === true) {
      delivery.seriesStart = delivery.attempts.length;
      // A replay's attempts go out: the `drop_attempts` plan was the first series'.
      delete delivery.dropAttempts;
    }
    if (change.attempt !== undefined) delivery.attempts = [...delivery.attempts, { ...change.attempt }];
    delivery.status = change.status;
    delivery.nextAttemptAt = change.nextAttemptAt;
    delivery.failureReason = change.failureReason;
    delivery.updatedAt = change.updatedAt;
    this.#queueIfFinished(record);
    return copyDelivery(delivery);
  }

  latestFor(subject: Subject): Promise<Delivery | undefined> {
    const list = this.#bySubject.get(subjectKey(subject));
    if (list === undefined) return Promise.resolve(undefined);
    const { ids, start } = list.walkFrom(undefined);
    for (let i = start; i >= 0; i--) {
      const delivery = this.#records.get(ids[i] as string)?.delivery;
      if (delivery !== undefined && !delivery.test) return Promise.resolve(copyDelivery(delivery));
    }
    return Promise.resolve(undefined);
  }

  list(query: DeliveryQuery): Promise<Page<Delivery>> {
    const { status, subject, eventId } = query;
    const key = subject === undefined ? undefined : subjectKey(subject);
    // Walk the narrower index; check the other filters on each record.
    const list = eventId !== undefined ? this.#byEvent.get(eventId) : key !== undefined ? this.#bySubject.get(key) : this.#order;
    if (list === undefined) return Promise.resolve({ data: [], nextCursor: null });
    const filter =
      status === undefined && (eventId === undefined || key === undefined)
        ? undefined
        : (d: Delivery) => (status === undefined || d.status === status) && (key === undefined || (d.subject !== null && subjectKey(d.subject) === key));
    return Promise.resolve(pageOf(list, query, (id) => this.#records.get(id)?.delivery, copyDelivery, filter));
  }

  stats(): Promise<StoreStats> {
    return Promise.resolve({ size: this.#records.size, max: this.#options.maxDeliveries });
  }

  sweep(now: number): Promise<number> {
    return Promise.resolve(this.#sweep(now));
  }

  /** O(1) when nothing is past the TTL, so inserts do it too. */
  #sweep(now: number): number {
    const cutoff = now - this.#options.ttlMs;
    let evicted = 0;
    while (this.#evictOne((delivery) => delivery.createdAt <= cutoff)) evicted++;
    return evicted;
  }

  #queueIfFinished(record: Record): void {
    if (record.queued || !isFinished(record.delivery)) return;
    record.queued = true;
    this.#finished.push(record.delivery.id);
  }

  /** Evicts the queue's oldest delivery if it is finished and `eligible`; false when none went. */
  #evictOne(eligible: (delivery: Delivery) => boolean): boolean {
    for (;;) {
      const id = this.#finished.peek();
      if (id === undefined) return false;
      const record = this.#records.get(id);
      if (record !== undefined && isFinished(record.delivery) && !eligible(record.delivery)) return false;
      this.#finished.shift();
      if (record === undefined) continue;
      record.queued = false;
      // Replayed since it was queued: it is queued again when it finishes.
      if (!isFinished(record.delivery)) continue;
      this.#remove(record);
      return true;
    }
  }

  #remove(record: Record): void {
    const { delivery } = record;
    this.#records.delete(delivery.id);
    this.#order.markDead(this.#isLive);
    if (delivery.subject !== null) this.#bySubject.markDead(subjectKey(delivery.subject), this.#isLive);
    this.#byEvent.markDead(delivery.eventId, this.#isLive);
  }
}
