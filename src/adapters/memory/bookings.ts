import {
  copyBooking,
  copyPaymentIntent,
  copyEvent,
  isUnpaid,
  type Booking,
  type BookingCounts,
  type BookingPaymentIntent,
  type BookingStatus,
  type InboxEvent,
  type PaymentKind,
} from '../../core/bookings/booking.ts';
import { FifoQueue } from '../../core/fifo-queue.ts';
import type { BeginPaymentOutcome, BookingStore, BookingTransition, Page, PageQuery, StoreStats } from '../../core/ports.ts';
import { IdList, pageOf } from './id-list.ts';
import { KeyedIds } from './keyed-ids.ts';

export interface MemoryBookingStoreOptions {
  /** Finished bookings older than this (from their creation) are evicted. */
  ttlMs: number;
  maxBookings: number;
}

interface Record {
  booking: Booking;
  /** Ids of its inbox events, in the order written. */
  events: string[];
  unprocessed: number;
  /** In the eviction queue now (so it is queued once). */
  queued: boolean;
  /** The token the payment in flight was begun with (`abortPayment`'s `begunWith`). */
  paymentToken?: string | undefined;
  /** When the payment in flight is taken for lost (its `beginPayment`'s `lostAfter`; never when unset). */
  paymentLostAfter?: number | undefined;
}

/**
 * Bookings and their events inbox in one process's memory. Every method runs to completion
 * synchronously, so each is atomic: of two concurrent `beginPayment` calls exactly one starts.
 *
 * Bounds: a booking joins the eviction queue when it finishes (confirmed, failed, expired,
 * cancelled). It can go once no payment is in flight and every inbox event of it is processed;
 * it leaves with its inbox events. Pending bookings never go (each holds a seat). Eviction order
 * is the order bookings finished; the TTL counts from creation.
 */
export class MemoryBookingStore implements BookingStore {
  /** Evicted bookings whose ledger transactions may still be there (`toForget`). */
  readonly #toForget = new Set<string>();
  readonly #records = new Map<string, Record>();
  readonly #byUser = new KeyedIds();
  /** Every booking's id, in creation order (for listRecent). */
  readonly #order = new IdList();
  readonly #events = new Map<string, InboxEvent>();
  readonly #finished = new FifoQueue<string>();
  readonly #statusCounts: { [S in BookingStatus]: number } = { pending: 0, confirmed: 0, failed: 0, expired: 0, cancelled: 0 };
  #inFlight = 0;
  #unprocessed = 0;
  readonly #options: MemoryBookingStoreOptions;
  readonly #isLive = (id: string): boolean => this.#records.has(id);

  constructor(options: MemoryBookingStoreOptions) {
    this.#options = options;
  }

  insert(booking: Booking): Promise<{ ok: true; evicted: string[] } | { ok: false; reason: 'full' }> {
    // Past the TTL first (O(1) when nothing is), then the oldest finished beyond the bound.
    const evicted = this.#sweep(booking.createdAt);
    while (this.#records.size >= this.#options.maxBookings) {
      const id = this.#evictOne(() => true);
      if (id === undefined) return Promise.resolve({ ok: false, reason: 'full' });
      evicted.push(id);
    }
    const record: Record = { booking: copyBooking(booking), events: [], unprocessed: 0, queued: false };
    this.#records.set(booking.id, record);
    this.#byUser.insert(booking.userId, booking.id);
    this.#order.insert(booking.id);
    this.#statusCounts[record.booking.status] += 1;
    if (record.booking.paymentInFlight !== null) this.#inFlight++;
    this.#queueIfFinished(record);
    return Promise.resolve({ ok: true, evicted });
  }

  get(id: string): Promise<Booking | undefined> {
    const record = this.#records.get(id);
    return Promise.resolve(record === undefined ? undefined : copyBooking(record.booking));
  }

  listForUser(userId: string, page: PageQuery): Promise<Page<Booking>> {
    const mine = this.#byUser.get(userId);
    if (mine === undefined) return Promise.resolve({ data: [], nextCursor: null });
    return Promise.resolve(pageOf(mine, page, (id) => this.#records.get(id)?.booking, copyBooking));
  }

  listRecent(page: PageQuery): Promise<Page<Booking>> {
    return Promise.resolve(pageOf(this.#order, page, (id) => this.#records.get(id)?.booking, copyBooking));
  }

  beginPayment(id: string, userId: string, kind: PaymentKind, now: number, token?: string, lostAfter?: number): Promise<BeginPaymentOutcome> {
    const record = this.#records.get(id);
    if (record === undefined) return Promise.resolve({ kind: 'not_found' });
    const { booking } = record;
    if (booking.userId !== userId) return Promise.resolve({ kind: 'forbidden', booking: copyBooking(booking) });
    if (booking.status === 'expired') return Promise.resolve({ kind: 'expired', booking: copyBooking(booking) });
    // A payment in flight whose process is gone (past its `lostAfter`): ended, then judged as any.
    const tookOver = this.#endLost(record, now);
    if (!isUnpaid(booking)) return Promise.resolve({ kind: 'already_processed', booking: copyBooking(booking) });
    if (now >= booking.expiresAt) {
      this.#setStatus(record, 'expired', now);
      return Promise.resolve({ kind: 'expired_now', booking: copyBooking(booking) });
    }
    booking.paymentInFlight = kind;
    record.paymentToken = token;
    record.paymentLostAfter = lostAfter;
    this.#inFlight++;
    return Promise.resolve({ kind: 'started', booking: copyBooking(booking), ...(tookOver ? { tookOver: true as const } : {}) });
  }

  recordPayment(id: string, paymentIntent: BookingPaymentIntent, event: InboxEvent, paymentMethod?: string, begunWith?: string): Promise<Booking | undefined> {
    const record = this.#records.get(id);
    if (record === undefined || record.booking.status !== 'pending' || record.booking.paymentInFlight === null) return Promise.resolve(undefined);
    if (begunWith !== undefined && record.paymentToken !== begunWith) return Promise.resolve(undefined);
    const { booking } = record;
    booking.paymentInFlight = null;
    this.#inFlight--;
    booking.paymentIntent = copyPaymentIntent(paymentIntent);
    if (paymentMethod !== undefined) booking.paymentMethod = paymentMethod;
    const stored = copyEvent(event);
    this.#events.set(stored.eventId, stored);
    record.events.push(stored.eventId);
    if (stored.processedAt === null) {
      record.unprocessed++;
      this.#unprocessed++;
    }
    return Promise.resolve(copyBooking(booking));
  }

  abortPayment(id: string, begunWith?: string): Promise<void> {
    const record = this.#records.get(id);
    if (record !== undefined && record.booking.paymentInFlight !== null && (begunWith === undefined || record.paymentToken === begunWith)) {
      record.booking.paymentInFlight = null;
      this.#inFlight--;
      this.#queueIfFinished(record);
    }
    return Promise.resolve();
  }

  transition(id: string, from: readonly BookingStatus[], to: BookingStatus, at: number, options: { unpaid?: boolean } = {}): Promise<BookingTransition> {
    const record = this.#records.get(id);
    if (record === undefined) return Promise.resolve({ ok: false, current: undefined });
    const { booking } = record;
    // A cancel: a payment in flight whose process is gone (past its `lostAfter`) is ended first, as a begin would.
    const tookOver = options.unpaid === true && from.includes(booking.status) && this.#endLost(record, at);
    const taken = tookOver ? { tookOver: true as const } : {};
    const allowed = from.includes(booking.status) && booking.paymentInFlight === null && (options.unpaid !== true || isUnpaid(booking));
    if (!allowed) return Promise.resolve({ ok: false, current: copyBooking(booking), ...taken });
    // A cancel once the hold has lapsed (the payment it ended kept the booking from expiring): expired, as a begin would.
    if (options.unpaid === true && at >= booking.expiresAt) {
      this.#setStatus(record, 'expired', at);
      return Promise.resolve({ ok: false, current: copyBooking(booking), expiredNow: true, ...taken });
    }
    this.#setStatus(record, to, at);
    return Promise.resolve({ ok: true, record: copyBooking(booking), ...taken });
  }

  expireIfDue(id: string, now: number): Promise<Booking | undefined> {
    const record = this.#records.get(id);
    if (record === undefined || !isUnpaid(record.booking) || now < record.booking.expiresAt) return Promise.resolve(undefined);
    this.#setStatus(record, 'expired', now);
    return Promise.resolve(copyBooking(record.booking));
  }

  markEventProcessed(eventId: string, now: number): Promise<{ first: boolean; event: InboxEvent } | undefined> {
    const event = this.#events.get(eventId);
    if (event === undefined) return Promise.resolve(undefined);
    if (event.processedAt !== null) return Promise.resolve({ first: false, event: copyEvent(event) });
    event.processedAt = now;
    this.#unprocessed--;
    const record = this.#records.get(event.bookingId);
    if (record !== undefined) {
      record.unprocessed--;
      this.#queueIfFinished(record);
    }
    return Promise.resolve({ first: true, event: copyEvent(event) });
  }

  event(eventId: string): Promise<InboxEvent | undefined> {
    const event = this.#events.get(eventId);
    return Promise.resolve(event === undefined ? undefined : copyEvent(event));
  }

  events(bookingId: string): Promise<InboxEvent[]> {
    const record = this.#records.get(bookingId);
    return Promise.resolve((record?.events ?? []).map((id) => copyEvent(this.#events.get(id) as InboxEvent)));
  }

  counts(): Promise<BookingCounts> {
    return Promise.resolve({ bookings: { ...this.#statusCounts }, paymentsInFlight: this.#inFlight, unprocessedEvents: this.#unprocessed });
  }

  stats(): Promise<StoreStats> {
    return Promise.resolve({ size: this.#records.size, max: this.#options.maxBookings });
  }


  sweep(now: number): Promise<string[]> {
    return Promise.resolve(this.#sweep(now));
  }

  toForget(limit: number): Promise<string[]> {
    const ids: string[] = [];
    for (const id of this.#toForget) {
      if (ids.length >= limit) break;
      ids.push(id);
    }
    return Promise.resolve(ids);
  }

  forgotten(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.#toForget.delete(id);
    return Promise.resolve();
  }

  #sweep(now: number): string[] {
    const cutoff = now - this.#options.ttlMs;
    const evicted: string[] = [];
    for (;;) {
      const id = this.#evictOne((booking) => booking.createdAt <= cutoff);
      if (id === undefined) break;
      evicted.push(id);
    }
    return evicted;
  }

  /** Ends the payment in flight if it is past its `lostAfter` at `now` (its process gone); whether it did. */
  #endLost(record: Record, now: number): boolean {
    if (record.booking.paymentInFlight === null || record.paymentLostAfter === undefined || now <= record.paymentLostAfter) return false;
    record.booking.paymentInFlight = null;
    this.#inFlight--;
    return true;
  }

  /** Every status change leaves pending, at `at`. */
  #setStatus(record: Record, status: BookingStatus, at: number): void {
    this.#statusCounts[record.booking.status] -= 1;
    this.#statusCounts[status] += 1;
    record.booking.status = status;
    record.booking.settledAt = at;
    this.#queueIfFinished(record);
  }

  #queueIfFinished(record: Record): void {
    if (record.queued || !evictable(record)) return;
    record.queued = true;
    this.#finished.push(record.booking.id);
  }

  /**
   * Evicts the queue's oldest booking if `eligible` accepts it; its id, else undefined. Queue
   * entries of bookings that left (or that are no longer evictable) are dropped on the way; they
   * are queued again when they become evictable.
   */
  #evictOne(eligible: (booking: Booking) => boolean): string | undefined {
    for (;;) {
      const id = this.#finished.peek();
      if (id === undefined) return undefined;
      const record = this.#records.get(id);
      if (record !== undefined && evictable(record) && !eligible(record.booking)) return undefined;
      this.#finished.shift();
      if (record === undefined) continue;
      record.queued = false;
      if (!evictable(record)) continue;
      this.#remove(record);
      return id;
    }
  }

  #remove(record: Record): void {
    const { booking } = record;
    this.#records.delete(booking.id);
    this.#toForget.add(booking.id);
    this.#byUser.markDead(booking.userId, this.#isLive);
    this.#order.markDead(this.#isLive);
    for (const eventId of record.events) this.#events.delete(eventId);
    this.#statusCounts[booking.status] -= 1;
  }
}

/** Finished, with no payment in flight and every inbox event processed. */
function evictable(record: Record): boolean {
  return record.booking.status !== 'pending' && record.booking.paymentInFlight === null && record.unprocessed === 0;
}
