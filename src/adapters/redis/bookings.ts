import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Booking, BookingCounts, BookingPaymentIntent, BookingStatus, InboxEvent, PaymentKind } from '../../core/bookings/booking.ts';
import type { BeginPaymentOutcome, BookingStore, Page, PageQuery, StoreStats, Transition } from '../../core/ports.ts';
import { SCAN_BUDGET } from '../memory/id-list.ts';
import { BOUNDS, COUNT_ALL, fieldsOf, WALK } from './lua.ts';
import { defineScript, type Script, SWEEP_BATCH } from './connection.ts';

export interface RedisBookingStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** Finished bookings older than this (from their creation) are evicted. */
  ttlMs: number;
  maxBookings: number;
}

/*
 * Keys (P = prefix .. 'bk:'): KEYS[1] P..'all' (zset, score 0: ids in lexical = creation order),
 * KEYS[2] P..'counts' (hash: status → n, 'inflight', 'unprocessed'), KEYS[3] P..'evict' (zset:
 * evictable bookings → createdAt). Built in the scripts from ARGV[1] = P: P..'r:'..id (the booking
 * hash), P..'u:'..userId (zset like 'all'), P..'evs:'..id (list: its inbox event ids, in the order
 * written) and P..'e:'..eventId (the event hash: b = the event as written (JSON), pa = processedAt,
 * '' for none, bk = its booking). A booking hash holds `b` (the booking as inserted, JSON) and the
 * fields that change or that scripts read: s (status), f (payment in flight, '' for none), ps and
 * pi (its payment intent's status, and the intent as JSON), pm (payment method), u (user), ca, ea
 * (createdAt, expiresAt), n (its unprocessed events), sa (settledAt, once it left pending), ct (the
 * token of the last call that changed its status or payment: `callToken`). P..'forget' (set): evicted bookings whose
 * ledger transactions may still be there (`toForget`).
 */
const PRELUDE = `
local P = ARGV[1]
local ALL, EVICT = KEYS[1], KEYS[3]
local gone = {}
local function rec(id) return P .. 'r:' .. id end
local function view(id) return redis.call('HGETALL', rec(id)) end
local function eventView(eventId) return redis.call('HGETALL', P .. 'e:' .. eventId) end
local function unpaid(r) return r.s == 'pending' and r.ps == 'PENDING' and r.f == '' end
local function load(id)
  local r = redis.call('HMGET', rec(id), 's', 'f', 'ps', 'u', 'ea', 'ct')
  if not r[1] then return nil end
  return {s = r[1], f = r[2], ps = r[3], u = r[4], ea = tonumber(r[5]), ct = r[6]}
end
-- Finished, with no payment in flight and every inbox event processed: in EVICT by createdAt, else not.
local function requeue(id)
  local r = redis.call('HMGET', rec(id), 's', 'f', 'n', 'ca')
  if r[1] ~= 'pending' and r[2] == '' and r[3] == '0' then redis.call('ZADD', EVICT, r[4], id) else redis.call('ZREM', EVICT, id) end
end
local function setStatus(id, before, after, at, token)
  redis.call('HSET', rec(id), 's', after, 'sa', at, 'ct', token)
  redis.call('HINCRBY', KEYS[2], before, -1)
  redis.call('HINCRBY', KEYS[2], after, 1)
  requeue(id)
end
local function remove(id)
  redis.call('ZREM', EVICT, id)
  local r = redis.call('HMGET', rec(id), 's', 'u')
  if not r[1] then return 0 end
  for _, eventId in ipairs(redis.call('LRANGE', P .. 'evs:' .. id, 0, -1)) do redis.call('DEL', P .. 'e:' .. eventId) end
  redis.call('DEL', rec(id), P .. 'evs:' .. id)
  redis.call('ZREM', ALL, id)
  redis.call('ZREM', P .. 'u:' .. r[2], id)
  redis.call('HINCRBY', KEYS[2], r[1], -1)
  redis.call('SADD', P .. 'forget', id)
  gone[#gone + 1] = id
  return 1
end
${BOUNDS}`;

const INSERT = `${PRELUDE}
-- ARGV: P, id, base, status, inFlight, payment status, payment intent, payment method, user, createdAt, expiresAt, max, ttl, batch
local id, status, inFlight, user, ca = ARGV[2], ARGV[4], ARGV[5], ARGV[9], ARGV[10]
sweep(tonumber(ca) - tonumber(ARGV[13]), tonumber(ARGV[14]))
if not makeRoom(tonumber(ARGV[12])) then return {0} end
redis.call('HSET', rec(id), 'b', ARGV[3], 's', status, 'f', inFlight, 'ps', ARGV[6], 'pi', ARGV[7], 'pm', ARGV[8], 'u', user, 'ca', ca, 'ea', ARGV[11], 'n', 0)
redis.call('ZADD', ALL, 0, id)
redis.call('ZADD', P .. 'u:' .. user, 0, id)
redis.call('HINCRBY', KEYS[2], status, 1)
if inFlight ~= '' then redis.call('HINCRBY', KEYS[2], 'inflight', 1) end
requeue(id)
return {1, gone}
`;

const GET = `${PRELUDE}
return view(ARGV[2])
`;

const LIST = `${PRELUDE}${WALK}
-- ARGV: P, limit, cursor ('' = first page), scan budget, userId (absent: every booking)
local key = ALL
if ARGV[5] then key = P .. 'u:' .. ARGV[5] end
return walk(key, ARGV[3], tonumber(ARGV[2]), tonumber(ARGV[4]), function(id) return true end, view)
`;

const BEGIN_PAYMENT = `${PRELUDE}
-- ARGV: P, id, userId, kind, now, call token
local id = ARGV[2]
local r = load(id)
if not r then return {'not_found'} end
-- This call, run again (its reply lost): what it did.
if r.ct == ARGV[6] and r.s == 'expired' then return {'expired_now', view(id)} end
if r.ct == ARGV[6] and r.f == ARGV[4] then return {'started', view(id)} end
if r.u ~= ARGV[3] then return {'forbidden', view(id)} end
if r.s == 'expired' then return {'expired', view(id)} end
if not unpaid(r) then return {'already_processed', view(id)} end
if tonumber(ARGV[5]) >= r.ea then
  setStatus(id, r.s, 'expired', ARGV[5], ARGV[6])
  return {'expired_now', view(id)}
end
redis.call('HSET', rec(id), 'f', ARGV[4], 'ct', ARGV[6])
redis.call('HINCRBY', KEYS[2], 'inflight', 1)
return {'started', view(id)}
`;

const RECORD_PAYMENT = `${PRELUDE}
-- ARGV: P, id, payment status, payment intent, payment method ('' = keep), eventId, event, processedAt ('' = not yet), call token
local id, eventId, processedAt = ARGV[2], ARGV[6], ARGV[8]
local r = load(id)
if r and r.ct == ARGV[9] then return view(id) end
if not r or r.s ~= 'pending' or r.f == '' then return {} end
redis.call('HSET', rec(id), 'f', '', 'ps', ARGV[3], 'pi', ARGV[4], 'ct', ARGV[9])
if ARGV[5] ~= '' then redis.call('HSET', rec(id), 'pm', ARGV[5]) end
redis.call('HINCRBY', KEYS[2], 'inflight', -1)
redis.call('HSET', P .. 'e:' .. eventId, 'b', ARGV[7], 'pa', processedAt, 'bk', id)
redis.call('RPUSH', P .. 'evs:' .. id, eventId)
if processedAt == '' then
  redis.call('HINCRBY', rec(id), 'n', 1)
  redis.call('HINCRBY', KEYS[2], 'unprocessed', 1)
end
return view(id)
`;

const ABORT_PAYMENT = `${PRELUDE}
-- ARGV: P, id
local r = load(ARGV[2])
if not r or r.f == '' then return 0 end
redis.call('HSET', rec(ARGV[2]), 'f', '')
redis.call('HINCRBY', KEYS[2], 'inflight', -1)
requeue(ARGV[2])
return 1
`;

const TRANSITION = `${PRELUDE}
-- ARGV: P, id, to, unpaid ('1'), at, call token, from...
local id = ARGV[2]
local r = load(id)
if not r then return {0, {}} end
if r.ct == ARGV[6] then return {1, view(id)} end
local allowed = false
for i = 7, #ARGV do if ARGV[i] == r.s then allowed = true end end
if not allowed or r.f ~= '' or (ARGV[4] == '1' and not unpaid(r)) then return {0, view(id)} end
setStatus(id, r.s, ARGV[3], ARGV[5], ARGV[6])
return {1, view(id)}
`;

const EXPIRE_IF_DUE = `${PRELUDE}
-- ARGV: P, id, now, call token
local id = ARGV[2]
local r = load(id)
if r and r.ct == ARGV[4] then return view(id) end
if not r or not unpaid(r) or tonumber(ARGV[3]) < r.ea then return {} end
setStatus(id, r.s, 'expired', ARGV[3], ARGV[4])
return view(id)
`;

const MARK_PROCESSED = `${PRELUDE}
-- ARGV: P, eventId, now
local key = P .. 'e:' .. ARGV[2]
local e = redis.call('HMGET', key, 'pa', 'bk')
if not e[1] then return {0, {}} end
if e[1] ~= '' then return {0, eventView(ARGV[2])} end
redis.call('HSET', key, 'pa', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'unprocessed', -1)
if redis.call('EXISTS', rec(e[2])) == 1 then
  redis.call('HINCRBY', rec(e[2]), 'n', -1)
  requeue(e[2])
end
return {1, eventView(ARGV[2])}
`;

const EVENT = `${PRELUDE}
return eventView(ARGV[2])
`;

const EVENTS = `${PRELUDE}
local out = {}
for _, eventId in ipairs(redis.call('LRANGE', P .. 'evs:' .. ARGV[2], 0, -1)) do out[#out + 1] = eventView(eventId) end
return out
`;

const COUNTS = `return redis.call('HGETALL', KEYS[2])`;

const SWEEP = `${PRELUDE}
-- ARGV: P, cutoff, batch
local swept = sweep(tonumber(ARGV[2]), tonumber(ARGV[3]))
return {gone, swept[2]}
`;

const STATUSES: readonly BookingStatus[] = ['pending', 'confirmed', 'failed', 'expired', 'cancelled'];

/**
 * Bookings and their events inbox in Redis, shared by every replica, one Lua script per port
 * operation: of two concurrent `beginPayment` calls, on any replicas, exactly one starts; a
 * payment's result and its inbox event are written in one step, and an event is marked processed
 * once. Lists walk the creation-ordered set of all bookings, or the one of a user.
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

  async beginPayment(id: string, userId: string, kind: PaymentKind, now: number): Promise<BeginPaymentOutcome> {
    const [outcome, flat] = (await this.#scripts.begin(this.#keys, [this.#p, id, userId, kind, now, callToken()])) as [BeginPaymentOutcome['kind'], string[]?];
    if (outcome === 'not_found') return { kind: outcome };
    return { kind: outcome, booking: decodeBooking(flat as string[]) as Booking };
  }

  async recordPayment(id: string, paymentIntent: BookingPaymentIntent, event: InboxEvent, paymentMethod?: string): Promise<Booking | undefined> {
    const intent: BookingPaymentIntent = { status: paymentIntent.status, pgMockData: paymentIntent.pgMockData === null ? null : { ...paymentIntent.pgMockData } };
    const args = [this.#p, id, intent.status, JSON.stringify(intent), paymentMethod ?? '', event.eventId, JSON.stringify(event), event.processedAt ?? '', callToken()];
    return decodeBooking((await this.#scripts.record(this.#keys, args)) as string[]);
  }

  async abortPayment(id: string): Promise<void> {
    await this.#scripts.abort(this.#keys, [this.#p, id]);
  }

  async transition(id: string, from: readonly BookingStatus[], to: BookingStatus, at: number, options: { unpaid?: boolean } = {}): Promise<Transition<Booking>> {
    const [ok, flat] = (await this.#scripts.transition(this.#keys, [this.#p, id, to, options.unpaid === true ? '1' : '0', at, callToken(), ...from])) as [number, string[]];
    const booking = decodeBooking(flat);
    return ok === 1 ? { ok: true, record: booking as Booking } : { ok: false, current: booking };
  }

  async expireIfDue(id: string, now: number): Promise<Booking | undefined> {
    return decodeBooking((await this.#scripts.expire(this.#keys, [this.#p, id, now, callToken()])) as string[]);
  }

  async markEventProcessed(eventId: string, now: number): Promise<{ first: boolean; event: InboxEvent } | undefined> {
    const [first, flat] = (await this.#scripts.mark(this.#keys, [this.#p, eventId, now])) as [number, string[]];
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

/**
 * A token of one call that changes a booking (begin, record, transition, expire), kept on the
 * record when it changes it: the same call run again, as ioredis sends a command again whose reply
 * a dropped connection lost, finds its token and answers what it did (started, recorded, moved,
 * expired) instead of refusing its own change (which would answer a client 409 for its own cancel
 * or payment, and leave its event to the backstop job). Another call has a token of its own.
 */
function callToken(): string {
  return randomUUID();
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
