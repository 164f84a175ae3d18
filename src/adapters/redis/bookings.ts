import type { Redis } from 'ioredis';
import { copyPaymentIntent, type Booking, type BookingCounts, type BookingPaymentIntent, type BookingStatus, type InboxEvent, type PaymentKind } from '../../core/bookings/booking.ts';
import type { BeginPaymentOutcome, BookingStore, BookingTransition, Page, PageQuery, StoreStats } from '../../core/ports.ts';
import { SCAN_BUDGET } from '../memory/id-list.ts';
import { ABORT_PAYMENT, BEGIN_PAYMENT, COUNTS, EVENT, EVENTS, EXPIRE_IF_DUE, GET, INSERT, LIST, MARK_PROCESSED, RECORD_PAYMENT, SWEEP, TRANSITION } from './bookings-lua.ts';
import { callToken, defineScript, type Script, SWEEP_BATCH } from './connection.ts';
import { COUNT_ALL, fieldsOf } from './lua.ts';

export interface RedisBookingStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** Finished bookings older than this (from their creation) are evicted. */
  ttlMs: number;
  maxBookings: number;
}

const STATUSES: readonly BookingStatus[] = ['pending', 'confirmed', 'failed', 'expired', 'cancelled'];

/**
 * Bookings and their events inbox in Redis, shared by every replica, one Lua script per port
 * operation: of two concurrent `beginPayment` calls, on any replicas, exactly one starts; a
 * payment's result and its inbox event are written in one step, and an event is marked processed
 * once. Lists walk the creation-ordered set of all bookings, or the one of a user. The keys and
 * the scripts: `bookings-lua.ts`.
 *
 * Bounds: a booking is evictable once finished with no payment in flight and every inbox event of
 * it processed (a sorted set by creation time holds exactly those); it leaves with its events.
 * Pending bookings never go. Differences from memory: evictable bookings go in creation order
 * (memory: the order they finished); TTLs follow the callers' clock, not Redis key expiry; an
 * insert sweeps at most 500 bookings past the TTL (`sweep` takes them all).
 */
export class RedisBookingStore implements BookingStore {
  readonly #options: RedisBookingStoreOptions;
  readonly #client: Redis;
  readonly #keys: [string, string, string];
  readonly #p: string;
  readonly #scripts: Record<'insert' | 'get' | 'list' | 'begin' | 'record' | 'abort' | 'transition' | 'expire' | 'mark' | 'event' | 'events' | 'counts' | 'stats' | 'sweep', Script>;

  constructor(client: Redis, options: RedisBookingStoreOptions) {
    this.#options = options;
    this.#client = client;
    this.#p = `${options.keyPrefix}bk:`;
    this.#keys = [`${this.#p}all`, `${this.#p}counts`, `${this.#p}evict`];
    this.#scripts = {
      insert: defineScript(client, 'paysimBookingInsert', INSERT),
      get: defineScript(client, 'paysimBookingGet', GET),
      list: defineScript(client, 'paysimBookingList', LIST),
      begin: defineScript(client, 'paysimBookingBeginPayment', BEGIN_PAYMENT),
      record: defineScript(client, 'paysimBookingRecordPayment', RECORD_PAYMENT),
      abort: defineScript(client, 'paysimBookingAbortPayment', ABORT_PAYMENT),
      transition: defineScript(client, 'paysimBookingTransition', TRANSITION),
      expire: defineScript(client, 'paysimBookingExpireIfDue', EXPIRE_IF_DUE),
      mark: defineScript(client, 'paysimBookingMarkProcessed', MARK_PROCESSED),
      event: defineScript(client, 'paysimBookingEvent', EVENT),
      events: defineScript(client, 'paysimBookingEvents', EVENTS),
      counts: defineScript(client, 'paysimBookingCounts', COUNTS),
      stats: defineScript(client, 'paysimBookingStats', COUNT_ALL),
      sweep: defineScript(client, 'paysimBookingSweep', SWEEP),
    };
  }

  async insert(booking: Booking): Promise<{ ok: true; evicted: string[] } | { ok: false; reason: 'full' }> {
    const { ttlMs, maxBookings } = this.#options;
    const [inserted, evicted] = (await this.#scripts.insert(this.#keys, [
      this.#p,
      booking.id,
      JSON.stringify(booking),
      booking.status,
      booking.paymentInFlight ?? '',
      booking.paymentIntent.status,
      JSON.stringify(booking.paymentIntent),
      booking.paymentMethod,
      booking.userId,
      booking.createdAt,
      booking.expiresAt,
      maxBookings,
      ttlMs,
      SWEEP_BATCH,
    ])) as [number, string[]?];
    return inserted === 1 ? { ok: true, evicted: evicted ?? [] } : { ok: false, reason: 'full' };
  }

  async get(id: string): Promise<Booking | undefined> {
    return decodeBooking((await this.#scripts.get(this.#keys, [this.#p, id])) as string[]);
  }

  listForUser(userId: string, page: PageQuery): Promise<Page<Booking>> {
    return this.#list(page, userId);
  }

  listRecent(page: PageQuery): Promise<Page<Booking>> {
    return this.#list(page);
  }

  async beginPayment(id: string, userId: string, kind: PaymentKind, now: number, token: string = callToken(), lostAfter?: number): Promise<BeginPaymentOutcome> {
    const [outcome, flat, tookOver] = (await this.#scripts.begin(this.#keys, [this.#p, id, userId, kind, now, token, lostAfter ?? ''])) as [BeginPaymentOutcome['kind'], string[]?, string?];
    if (outcome === 'not_found') return { kind: outcome };
    const booking = decodeBooking(flat as string[]) as Booking;
    return outcome === 'started' && tookOver === 'took_over' ? { kind: outcome, booking, tookOver: true } : { kind: outcome, booking };
  }

  async recordPayment(id: string, paymentIntent: BookingPaymentIntent, event: InboxEvent, paymentMethod?: string, begunWith?: string): Promise<Booking | undefined> {
    const intent: BookingPaymentIntent = copyPaymentIntent(paymentIntent);
    const args = [this.#p, id, intent.status, JSON.stringify(intent), paymentMethod ?? '', event.eventId, JSON.stringify(event), event.processedAt ?? '', callToken(), begunWith ?? ''];
    return decodeBooking((await this.#scripts.record(this.#keys, args)) as string[]);
  }

  async abortPayment(id: string, begunWith?: string): Promise<void> {
    await this.#scripts.abort(this.#keys, [this.#p, id, begunWith ?? '', callToken()]);
  }

  async transition(id: string, from: readonly BookingStatus[], to: BookingStatus, at: number, options: { unpaid?: boolean } = {}): Promise<BookingTransition> {
    const [ok, flat, tookOver, expiredNow] = (await this.#scripts.transition(this.#keys, [this.#p, id, to, options.unpaid === true ? '1' : '0', at, callToken(), ...from])) as [number, string[], string?, string?];
    const booking = decodeBooking(flat);
    const taken = tookOver === 'took_over' ? { tookOver: true as const } : {};
    if (expiredNow === 'expired_now') return { ok: false, current: booking as Booking, expiredNow: true, ...taken };
    return ok === 1 ? { ok: true, record: booking as Booking, ...taken } : { ok: false, current: booking, ...taken };
  }

  async expireIfDue(id: string, now: number): Promise<Booking | undefined> {
    return decodeBooking((await this.#scripts.expire(this.#keys, [this.#p, id, now, callToken()])) as string[]);
  }

  async markEventProcessed(eventId: string, now: number): Promise<{ first: boolean; event: InboxEvent } | undefined> {
    const [first, flat] = (await this.#scripts.mark(this.#keys, [this.#p, eventId, now, callToken()])) as [number, string[]];
    const event = decodeEvent(flat);
    return event === undefined ? undefined : { first: first === 1, event };
  }

  async event(eventId: string): Promise<InboxEvent | undefined> {
    return decodeEvent((await this.#scripts.event(this.#keys, [this.#p, eventId])) as string[]);
  }

  async events(bookingId: string): Promise<InboxEvent[]> {
    return ((await this.#scripts.events(this.#keys, [this.#p, bookingId])) as string[][]).map((flat) => decodeEvent(flat) as InboxEvent);
  }

  async counts(): Promise<BookingCounts> {
    const fields = fieldsOf((await this.#scripts.counts(this.#keys, [])) as string[]);
    const bookings = Object.fromEntries(STATUSES.map((status) => [status, Number(fields[status] ?? 0)])) as Record<BookingStatus, number>;
    return { bookings, paymentsInFlight: Number(fields.inflight ?? 0), unprocessedEvents: Number(fields.unprocessed ?? 0) };
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#scripts.stats(this.#keys, [])), max: this.#options.maxBookings };
  }

  async sweep(now: number): Promise<string[]> {
    const evicted: string[] = [];
    for (;;) {
      const [ids, looked] = (await this.#scripts.sweep(this.#keys, [this.#p, now - this.#options.ttlMs, SWEEP_BATCH])) as [string[], number];
      evicted.push(...ids);
      if (looked < SWEEP_BATCH) return evicted;
    }
  }

  async toForget(limit: number): Promise<string[]> {
    return this.#client.srandmember(`${this.#p}forget`, limit);
  }

  async forgotten(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.#client.srem(`${this.#p}forget`, ...ids);
  }

  async #list(page: PageQuery, userId?: string): Promise<Page<Booking>> {
    const args = [this.#p, page.limit, page.cursor ?? '', SCAN_BUDGET];
    if (userId !== undefined) args.push(userId);
    const [cursor, records] = (await this.#scripts.list(this.#keys, args)) as [string, string[][]];
    return { data: records.map((flat) => decodeBooking(flat) as Booking), nextCursor: cursor === '' ? null : cursor };
  }
}

/** A booking hash (HGETALL's flat list) as a booking; undefined for an empty one. */
function decodeBooking(flat: readonly string[]): Booking | undefined {
  if (flat.length === 0) return undefined;
  const fields = fieldsOf(flat);
  const base = JSON.parse(fields.b as string) as Booking;
  return {
    ...base,
    status: fields.s as BookingStatus,
    paymentMethod: fields.pm as string,
    paymentIntent: JSON.parse(fields.pi as string) as BookingPaymentIntent,
    paymentInFlight: fields.f === '' ? null : (fields.f as PaymentKind),
    // A record written before settledAt was kept has none (nor one in `b`): null.
    settledAt: fields.sa === undefined ? null : Number(fields.sa),
  };
}

/** An event hash as an inbox event; undefined for an empty one. */
function decodeEvent(flat: readonly string[]): InboxEvent | undefined {
  if (flat.length === 0) return undefined;
  const fields = fieldsOf(flat);
  return { ...(JSON.parse(fields.b as string) as InboxEvent), processedAt: fields.pa === '' ? null : Number(fields.pa) };
}
