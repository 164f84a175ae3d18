import type { OutboxEventType, OutboxPayload } from '../../core/fluxpay/model.ts';
import type { CreateOutcome } from '../../core/fluxpay/ports.ts';
import type { Page, StoreStats } from '../../core/ports.ts';
import { MAX_INVOICES, type SubscriptionChange, type SubscriptionQuery, type SubscriptionRecord, type SubscriptionStore, type UpdateOutcome } from '../../core/subscriptions/ports.ts';
import type { SubscriptionStatus } from '../../core/subscriptions/subscription.ts';
import { EvictionQueue } from './eviction-queue.ts';
import { IdList, pageOf } from './id-list.ts';
import { KeyedIds } from './keyed-ids.ts';

/** Where the events of a change are written, in the same synchronous step (MemoryFluxPayStore.appendEvent). */
export interface OutboxWriter {
  appendEvent(eventId: string, eventType: OutboxEventType, aggregate: string, payload: OutboxPayload, now: number): void;
}

export interface MemoryBillingStoreOptions {
  /** FLUXPAY_MAX_BILLING_SUBSCRIPTIONS: subscriptions held at most. */
  maxSubscriptions: number;
  /** FLUXPAY_TTL_MS: an EXPIRED subscription is evicted this long after it expired. */
  ttlMs: number;
}

/**
 * FluxPay's billing subscriptions (`sub_`, issue 12) in one process's memory. Kept in their own
 * file rather than in MemoryFluxPayStore (already the largest store): the two share the outbox
 * through `OutboxWriter`, which is all the atomicity a subscription change needs, since its charge
 * is a separate, earlier operation of the engine. Every method runs to completion synchronously,
 * so a change, its invoice and its outbox event are written together, and of concurrent changes
 * computed from one version exactly one applies.
 *
 * Bounds: at most `maxSubscriptions`; EXPIRED ones are evicted `ttlMs` after they expired (or the
 * oldest expired first when a new one finds the store full). A subscription that is ACTIVE,
 * PAST_DUE or CANCELED still has work due (a renewal, a retry, its expiry) and is never evicted:
 * a create that finds no room answers `full`.
 */
export class MemoryBillingStore implements SubscriptionStore {
  readonly #options: MemoryBillingStoreOptions;
  readonly #outbox: OutboxWriter;
  readonly #records = new Map<string, SubscriptionRecord>();
  readonly #all = new IdList();
  /** Each user's subscriptions; a user leaves with the last one held. */
  readonly #byUser = new KeyedIds();
  readonly #expired = new EvictionQueue(
    (id: string) => this.#records.get(id),
    (record: SubscriptionRecord) => record.expiredAt ?? record.updatedAt,
    (record: SubscriptionRecord) => this.#remove(record),
  );
  readonly #isLive = (id: string): boolean => this.#records.has(id);

  constructor(options: MemoryBillingStoreOptions, outbox: OutboxWriter) {
    this.#options = options;
    this.#outbox = outbox;
  }

  create(record: SubscriptionRecord, eventId: string): Promise<CreateOutcome<SubscriptionRecord>> {
    this.#expired.sweep(record.createdAt - this.#options.ttlMs);
    if (this.#records.size >= this.#options.maxSubscriptions && !this.#expired.evictOne()) return ok({ kind: 'full' });
    const stored = copyRecord(record);
    this.#records.set(stored.subscriptionId, stored);
    this.#all.insert(stored.subscriptionId);
    this.#byUser.insert(stored.userId, stored.subscriptionId);
    this.#outbox.appendEvent(eventId, 'subscription.activated', `subscription:${stored.subscriptionId}`, { kind: 'subscription', subscription: copyRecord(stored) }, stored.createdAt);
    return ok({ kind: 'created', record: copyRecord(stored) });
  }

  get(subscriptionId: string): Promise<SubscriptionRecord | undefined> {
    const record = this.#records.get(subscriptionId);
    return ok(record === undefined ? undefined : copyRecord(record));
  }

  list(query: SubscriptionQuery): Promise<Page<SubscriptionRecord>> {
    const list = query.userId === undefined ? this.#all : this.#byUser.get(query.userId);
    if (list === undefined) return ok({ data: [], nextCursor: null });
    return ok(
      pageOf(
        list,
        query,
        (id) => {
          const record = this.#records.get(id);
          return record === undefined ? undefined : { id, record };
        },
        ({ record }) => copyRecord(record),
      ),
    );
  }

  update(change: SubscriptionChange): Promise<UpdateOutcome> {
    const { next } = change;
    const stored = this.#records.get(next.subscriptionId);
    if (stored === undefined) return ok({ kind: 'not_found' });
    if (stored.version !== next.version - 1) return ok({ kind: 'conflict', record: copyRecord(stored) });
    const invoices = change.invoice === null ? stored.invoices : [...stored.invoices, { ...change.invoice }].slice(-MAX_INVOICES);
    const record: SubscriptionRecord = { ...next, userId: stored.userId, subscriptionId: stored.subscriptionId, card: change.card === null ? stored.card : { ...change.card }, invoices };
    this.#records.set(record.subscriptionId, record);
    if (record.status === 'EXPIRED' && stored.status !== 'EXPIRED') this.#expired.push(record.subscriptionId);
    if (change.event !== null) {
      this.#outbox.appendEvent(change.event.eventId, change.event.eventType, `subscription:${record.subscriptionId}`, { kind: 'subscription', subscription: copyRecord(record) }, record.updatedAt);
    }
    return ok({ kind: 'updated', record: copyRecord(record) });
  }

  snapshot(): Promise<SubscriptionRecord[]> {
    return ok([...this.#records.values()].map(copyRecord));
  }

  counts(): Promise<Record<SubscriptionStatus, number>> {
    const counts = { ACTIVE: 0, PAST_DUE: 0, CANCELED: 0, EXPIRED: 0 };
    for (const record of this.#records.values()) counts[record.status]++;
    return ok(counts);
  }

  stats(): Promise<StoreStats> {
    return ok({ size: this.#records.size, max: this.#options.maxSubscriptions });
  }

  sweep(now: number): Promise<number> {
    return ok(this.#expired.sweep(now - this.#options.ttlMs));
  }

  #remove(record: SubscriptionRecord): void {
    this.#records.delete(record.subscriptionId);
    this.#all.markDead(this.#isLive);
    this.#byUser.markDead(record.userId, this.#isLive);
  }
}

function ok<T>(value: T): Promise<T> {
  return Promise.resolve(value);
}

export function copyRecord(record: SubscriptionRecord): SubscriptionRecord {
  return { ...record, card: { ...record.card }, invoices: record.invoices.map((i) => ({ ...i })) };
}
