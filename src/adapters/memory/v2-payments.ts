import type { StoreStats, Transition, V2BeginOutcome, V2PaymentPage, V2PaymentQuery, V2PaymentStore } from '../../core/ports.ts';
import { copyV2Payment, sameRequest, v2CursorSeq, V2_STATUSES, type V2Completion, type V2Payment, type V2Status } from '../../core/v2/payment.ts';
import { IdList } from './id-list.ts';
import { EvictionQueue } from './eviction-queue.ts';

export interface MemoryV2PaymentStoreOptions {
  /** Finished payments older than this (from their creation) are evicted. */
  ttlMs: number;
  maxPayments: number;
}

interface Entry {
  payment: V2Payment;
  /** Its place in creation order: payment ids (`pay_<tx_id>`) say nothing about when they were made. */
  key: string;
}

/** Creation-order keys that sort as strings: a counter in base 36, zero-padded (a list cursor is the counter in decimal). */
const KEY_WIDTH = 11;
const keyOf = (seq: number): string => seq.toString(36).padStart(KEY_WIDTH, '0');

/**
 * The v2 payments port in one process's memory. Every method runs to completion synchronously
 * (the returned promise is already settled), so each is atomic: `begin` checks the tx_id and
 * stores in one step, so of 200 concurrent identical requests exactly one creates.
 *
 * Bounds: PENDING payments are never evicted (each is waiting for its callback or a manual
 * confirm). A payment joins the eviction queue when it finishes (completed or failed); a full
 * store evicts the queue's oldest, and the TTL sweep pops it while its front is past the TTL (by
 * creation). When the bound is reached and every payment is PENDING, `begin` answers `full`.
 *
 * Lists: one creation-ordered list of all entries and one per status (an entry enters a status's
 * list when it reaches that status and dies in the one it left); a listing walks the narrowest,
 * newest first, from a cursor (the creation counter of the previous page's last payment). Dead
 * entries are at most half of each list (see IdList), so the entries a page steps over are bounded
 * by half the list, not by `limit` (a run of dead entries may lie between two live ones).
 */
export class MemoryV2PaymentStore implements V2PaymentStore {
  readonly #byId = new Map<string, Entry>();
  readonly #byKey = new Map<string, Entry>();
  readonly #all = new IdList();
  readonly #byStatus = new Map<V2Status, IdList>(V2_STATUSES.map((status) => [status, new IdList()]));
  readonly #counts: Record<V2Status, number> = { PENDING: 0, PAYMENT_COMPLETED: 0, PAYMENT_FAILED: 0 };
  /** Ids of payments that finished, in that order; ids of evicted payments are skipped. */
  readonly #evictable = new EvictionQueue(
    (id: string) => this.#byId.get(id),
    (entry: Entry) => entry.payment.createdAt,
    (entry: Entry) => this.#remove(entry),
  );
  readonly #options: MemoryV2PaymentStoreOptions;
  #seq = 0;
  readonly #isLive = (key: string): boolean => this.#byKey.has(key);
  readonly #liveIn = new Map<V2Status, (key: string) => boolean>(V2_STATUSES.map((status) => [status, (key: string) => this.#byKey.get(key)?.payment.status === status]));

  constructor(options: MemoryV2PaymentStoreOptions) {
    this.#options = options;
  }

  begin(payment: V2Payment): Promise<V2BeginOutcome> {
    const found = this.#byId.get(payment.id);
    if (found !== undefined) {
      const kind = sameRequest(found.payment, payment) ? 'existing' : 'conflict';
      return Promise.resolve({ kind, payment: copyV2Payment(found.payment) });
    }
    this.#sweepBefore(payment.createdAt);
    while (this.#byId.size >= this.#options.maxPayments) {
      if (!this.#evictable.evictOne()) return Promise.resolve({ kind: 'full' });
    }
    const entry: Entry = { payment: copyV2Payment(payment), key: keyOf(this.#seq++) };
    this.#byId.set(payment.id, entry);
    this.#byKey.set(entry.key, entry);
    this.#all.insert(entry.key);
    this.#enter(entry, entry.payment.status);
    return Promise.resolve({ kind: 'created', payment: copyV2Payment(entry.payment) });
  }

  get(id: string): Promise<V2Payment | undefined> {
    const entry = this.#byId.get(id);
    return Promise.resolve(entry === undefined ? undefined : copyV2Payment(entry.payment));
  }

  decide(id: string, now: number): Promise<Transition<V2Payment>> {
    const entry = this.#byId.get(id);
    if (entry === undefined || entry.payment.status !== 'PENDING' || entry.payment.decidedAt !== null) return Promise.resolve(refused(entry));
    const { payment } = entry;
    payment.decidedAt = now;
    if (payment.planned.status === 'PAYMENT_FAILED') {
      payment.failureCode = payment.planned.failureCode;
      this.#setStatus(entry, 'PAYMENT_FAILED');
    }
    return Promise.resolve({ ok: true, record: copyV2Payment(payment) });
  }

  complete(id: string, by: V2Completion, now: number): Promise<Transition<V2Payment>> {
    const entry = this.#byId.get(id);
    if (entry === undefined || entry.payment.status !== 'PENDING') return Promise.resolve(refused(entry));
    const { payment } = entry;
    if (by === 'callback' && (payment.decidedAt === null || payment.planned.status !== 'PAYMENT_COMPLETED')) return Promise.resolve(refused(entry));
    payment.confirmedAt = by === 'callback' ? payment.decidedAt : now;
    payment.completedBy = by;
    this.#setStatus(entry, 'PAYMENT_COMPLETED');
    return Promise.resolve({ ok: true, record: copyV2Payment(payment) });
  }

  list(query: V2PaymentQuery): Promise<V2PaymentPage> {
    const { status, limit } = query;
    let cursor: string | undefined;
    try {
      cursor = query.cursor === undefined ? undefined : keyOf(v2CursorSeq(query.cursor));
    } catch (error) {
      return Promise.reject(error as RangeError);
    }
    const list = status === undefined ? this.#all : (this.#byStatus.get(status) as IdList);
    // No scan budget (pageOf's): a page is whole however many it asks, as Redis answers it (the
    // route asks up to 10,000, the report every payment); the dead entries it steps over are at
    // most half of the list.
    const { ids, start } = list.walkFrom(cursor);
    const data: V2Payment[] = [];
    const cursors: string[] = [];
    for (let i = start; i >= 0; i--) {
      const entry = this.#byKey.get(ids[i] as string);
      if (entry === undefined || (status !== undefined && entry.payment.status !== status)) continue;
      if (data.length === limit) return Promise.resolve({ data, cursors, nextCursor: cursors.at(-1) ?? null });
      data.push(copyV2Payment(entry.payment));
      cursors.push(String(parseInt(entry.key, 36)));
    }
    return Promise.resolve({ data, cursors, nextCursor: null });
  }

  counts(): Promise<Record<V2Status, number>> {
    return Promise.resolve({ ...this.#counts });
  }

  stats(): Promise<StoreStats> {
    return Promise.resolve({ size: this.#byId.size, max: this.#options.maxPayments });
  }

  sweep(now: number): Promise<number> {
    return Promise.resolve(this.#sweepBefore(now));
  }

  /** Evicts what is past the TTL at `now`: O(1) when nothing is due, so inserts do it too. */
  #sweepBefore(now: number): number {
    return this.#evictable.sweep(now - this.#options.ttlMs);
  }

  #enter(entry: Entry, status: V2Status): void {
    this.#counts[status] += 1;
    (this.#byStatus.get(status) as IdList).insert(entry.key);
    if (status !== 'PENDING') this.#evictable.push(entry.payment.id);
  }

  #leave(entry: Entry, status: V2Status): void {
    this.#counts[status] -= 1;
    (this.#byStatus.get(status) as IdList).markDead(this.#liveIn.get(status) as (key: string) => boolean);
  }

  #setStatus(entry: Entry, status: V2Status): void {
    const before = entry.payment.status;
    if (before === status) return;
    entry.payment.status = status;
    this.#leave(entry, before);
    this.#enter(entry, status);
  }

  #remove(entry: Entry): void {
    this.#byId.delete(entry.payment.id);
    this.#byKey.delete(entry.key);
    this.#all.markDead(this.#isLive);
    this.#leave(entry, entry.payment.status);
  }
}

function refused(entry: Entry | undefined): Transition<V2Payment> {
  return { ok: false, current: entry === undefined ? undefined : copyV2Payment(entry.payment) };
}
