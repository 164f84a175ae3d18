import { copyIntent, INTENT_STATUSES, type Intent, type IntentStatus } from '../../core/intents/intent.ts';
import type { InsertOutcome, IntentPatch, IntentQuery, IntentStore, Page, RefundOutcome, StoreStats, Transition } from '../../core/ports.ts';
import { IdList, pageOf } from './id-list.ts';
import { EvictionQueue } from './eviction-queue.ts';
import { INSERTED } from './inserted.ts';
import { KeyedIds } from './keyed-ids.ts';

export interface MemoryIntentStoreOptions {
  ttlMs: number;
  maxIntents: number;
}

/**
 * The intents port in one process's memory. Every method runs to completion synchronously (the
 * returned promise is already settled), so each is atomic.
 *
 * Bounds: PENDING intents are never evicted. Intents join an eviction queue when they leave
 * PENDING (so the queue is in the order they were decided, which is creation order give or take
 * the decision delay); a full store evicts the queue's oldest, and the TTL sweep pops it while
 * its front is past the TTL. When the bound is reached and every intent is PENDING, an insert is
 * refused (`full`). Both are O(1) amortised.
 *
 * Lists: one creation-ordered list of all ids, one per reservation and one per final status (an
 * intent's status only ever moves forward, so it enters each status list once); filters walk the
 * narrowest list, and at most `SCAN_BUDGET` entries per page.
 */
export class MemoryIntentStore implements IntentStore {
  readonly #byId = new Map<string, Intent>();
  readonly #order = new IdList();
  readonly #byReservation = new KeyedIds();
  readonly #byStatus = new Map<IntentStatus, IdList>();
  /** Stored intents per status, kept as they change. */
  readonly #counts = Object.fromEntries(INTENT_STATUSES.map((status) => [status, 0])) as Record<IntentStatus, number>;
  /** Ids of intents that left PENDING, in that order; ids of evicted intents are skipped. */
  readonly #evictable = new EvictionQueue(
    (id: string) => this.#byId.get(id),
    (record: Intent) => record.createdAt,
    (record: Intent) => this.#remove(record),
  );
  readonly #options: MemoryIntentStoreOptions;
  readonly #isLive = (id: string): boolean => this.#byId.has(id);

  constructor(options: MemoryIntentStoreOptions) {
    this.#options = options;
  }

  insert(intent: Intent): Promise<InsertOutcome> {
    this.#sweepBefore(intent.createdAt);
    while (this.#byId.size >= this.#options.maxIntents) {
      if (!this.#evictable.evictOne()) return Promise.resolve({ ok: false, reason: 'full' });
    }
    const record = copyIntent(intent);
    this.#byId.set(record.id, record);
    this.#order.insert(record.id);
    this.#byReservation.insert(record.reservationId, record.id);
    this.#counts[record.status] += 1;
    if (record.status !== 'PENDING') {
      this.#statusList(record.status).insert(record.id);
      this.#evictable.push(record.id);
    }
    return INSERTED;
  }

  get(id: string): Promise<Intent | undefined> {
    const record = this.#byId.get(id);
    return Promise.resolve(record === undefined ? undefined : copyIntent(record));
  }

  decide(id: string, now: number): Promise<Transition<Intent>> {
    const record = this.#byId.get(id);
    if (record === undefined || record.status !== 'PENDING') return Promise.resolve({ ok: false, current: record && copyIntent(record) });
    record.failureCode = record.planned.failureCode;
    record.decidedAt = now;
    record.updatedAt = now;
    this.#setStatus(record, record.planned.status);
    return Promise.resolve({ ok: true, record: copyIntent(record) });
  }

  transition(id: string, from: readonly IntentStatus[], patch: IntentPatch): Promise<Transition<Intent>> {
    const record = this.#byId.get(id);
    if (record === undefined || !from.includes(record.status)) return Promise.resolve({ ok: false, current: record && copyIntent(record) });
    if (patch.failureCode !== undefined) record.failureCode = patch.failureCode;
    if (patch.decidedAt !== undefined) record.decidedAt = patch.decidedAt;
    record.updatedAt = patch.updatedAt;
    this.#setStatus(record, patch.status);
    return Promise.resolve({ ok: true, record: copyIntent(record) });
  }

  refund(id: string, amount: number | undefined, now: number): Promise<RefundOutcome> {
    const record = this.#byId.get(id);
    if (record === undefined) return Promise.resolve({ kind: 'not_found' });
    if (record.status !== 'APPROVED' && record.status !== 'PARTIALLY_REFUNDED') return Promise.resolve({ kind: 'invalid_state', intent: copyIntent(record) });
    const left = record.amount - record.refundedAmount;
    const refund = amount ?? left;
    if (refund > left) return Promise.resolve({ kind: 'exceeds', intent: copyIntent(record), left });
    record.refundedAmount += refund;
    record.updatedAt = now;
    this.#setStatus(record, record.refundedAmount === record.amount ? 'REFUNDED' : 'PARTIALLY_REFUNDED');
    return Promise.resolve({ kind: 'refunded', intent: copyIntent(record), amount: refund, at: now });
  }

  list(query: IntentQuery): Promise<Page<Intent>> {
    const { reservationId, status } = query;
    const byReservation = reservationId === undefined ? undefined : this.#byReservation.get(reservationId);
    if (reservationId !== undefined && byReservation === undefined) return Promise.resolve({ data: [], nextCursor: null });
    // PENDING intents have no list of their own (most intents are PENDING for a moment only, so
    // one would cost an insert and a removal each): they are the newest, where the walk starts.
    const byStatus = status === undefined || status === 'PENDING' ? undefined : this.#byStatus.get(status);
    if (status !== undefined && status !== 'PENDING' && byStatus === undefined) return Promise.resolve({ data: [], nextCursor: null });
    // Walk the narrowest list; check the other filter on each record.
    let list = byReservation ?? byStatus ?? this.#order;
    if (byReservation !== undefined && byStatus !== undefined && byStatus.size < byReservation.size) list = byStatus;
    const filter =
      status === undefined && reservationId === undefined
        ? undefined
        : (intent: Intent) => (status === undefined || intent.status === status) && (reservationId === undefined || intent.reservationId === reservationId);
    return Promise.resolve(pageOf(list, query, (id) => this.#byId.get(id), copyIntent, filter));
  }

  counts(): Promise<Record<IntentStatus, number>> {
    return Promise.resolve({ ...this.#counts });
  }

  stats(): Promise<StoreStats> {
    return Promise.resolve({ size: this.#byId.size, max: this.#options.maxIntents });
  }

  sweep(now: number): Promise<number> {
    return Promise.resolve(this.#sweepBefore(now));
  }

  /** Evicts what is past the TTL at `now`: O(1) when nothing is due, so inserts do it too. */
  #sweepBefore(now: number): number {
    return this.#evictable.sweep(now - this.#options.ttlMs);
  }

  #statusList(status: IntentStatus): IdList {
    let list = this.#byStatus.get(status);
    if (list === undefined) {
      list = new IdList();
      this.#byStatus.set(status, list);
    }
    return list;
  }

  #setStatus(record: Intent, status: IntentStatus): void {
    const before = record.status;
    if (before === status) return;
    record.status = status;
    this.#counts[before] -= 1;
    this.#counts[status] += 1;
    if (before === 'PENDING') this.#evictable.push(record.id);
    else this.#byStatus.get(before)?.markDead((id) => this.#byId.get(id)?.status === before);
    this.#statusList(status).insert(record.id);
  }

  #remove(record: Intent): void {
    this.#byId.delete(record.id);
    this.#counts[record.status] -= 1;
    this.#order.markDead(this.#isLive);
    this.#byReservation.markDead(record.reservationId, this.#isLive);
    const status = record.status;
    if (status !== 'PENDING') this.#byStatus.get(status)?.markDead((id) => this.#byId.get(id)?.status === status);
  }
}
