import type { Redis } from 'ioredis';
import { seatId, type Performance } from '../../core/bookings/performances.ts';
import type { SeatStore } from '../../core/ports.ts';
import type { HoldOutcome, SeatCounts, SeatStatus, SeatView } from '../../core/seats.ts';
import { callToken, defineScript, type Script } from './connection.ts';

/*
 * Per performance (S = prefix .. 'seats:'): S..'map:'..perf, a string of one byte per seat, row by
 * row front to back ('0' available, 'L' locked, 'R' reserved); S..'own:'..perf, a hash seat index →
 * bookingId .. '|' .. lockedUntil ('' once reserved); S..'n:'..perf, a hash of the counts (total,
 * available, held, reserved) and the row width (per). Per booking: S..'b:'..bookingId, a hash with
 * its performance, its seat indexes (comma-separated) and the call token of the hold (ct). Every script gets S as ARGV[1].
 */
/**
 * Lays out a performance of the catalog whose map or counts are missing: its map where none exists
 * (NX: one another replica laid out, and may hold seats in, stays as it is) and its counts, counted
 * from the map, where none exist or the map is new, so a map whose counts an earlier version failed
 * to write (two round trips then) is whole again. Run at the start, on each reconnect and at the end
 * of a load (LAYOUT), and by the scripts that find a performance missing: a Redis that lost its
 * data with the connections open (FLUSHALL, FLUSHDB, a key deleted) fires no reconnect (before
 * 2026-12-03 every booking then answered 404 and the seat reads 500, until a reconnect).
 */
const ENSURE = `
local function ensure(S, perf, total, per)
  local mapKey, countsKey = S .. 'map:' .. perf, S .. 'n:' .. perf
  local laid = redis.call('SET', mapKey, string.rep('0', tonumber(total)), 'NX')
  -- A new map: who held the seats of the map it replaces no longer holds any (SETTLE checks owners).
  if laid then redis.call('DEL', S .. 'own:' .. perf) end
  if not laid and redis.call('EXISTS', countsKey) == 1 then return end
  local map = redis.call('GET', mapKey)
  local _, held = string.gsub(map, 'L', '')
  local _, reserved = string.gsub(map, 'R', '')
  local size = string.len(map)
  redis.call('HSET', countsKey, 'per', per, 'total', size, 'available', size - held - reserved, 'held', held, 'reserved', reserved)
end
`;

const HOLD = `${ENSURE}
-- ARGV: S, perf, quantity, bookingId, until, call token, total and row width ('' when the catalog has no such performance)
local S, perf, quantity, booking = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local n = redis.call('HMGET', S .. 'n:' .. perf, 'per', 'available')
if not n[1] or redis.call('EXISTS', S .. 'map:' .. perf) == 0 then
  if ARGV[7] == '' then return {'unknown_performance'} end
  ensure(S, perf, ARGV[7], ARGV[8])
  n = redis.call('HMGET', S .. 'n:' .. perf, 'per', 'available')
end
local holding = redis.call('HMGET', S .. 'b:' .. booking, 'seats', 'ct')
if holding[1] then
  -- This very hold run again (its reply lost, ioredis sent it again): it answers what it held.
  if holding[2] == ARGV[6] then
    local chosen = {}
    for index in string.gmatch(holding[1], '[^,]+') do chosen[#chosen + 1] = tonumber(index) end
    return {'held', chosen}
  end
  return {'already_holding'}
end
local per, available = tonumber(n[1]), tonumber(n[2])
if quantity == nil or quantity < 1 or quantity ~= math.floor(quantity) or available < quantity then return {'sold_out', available} end
local map = redis.call('GET', S .. 'map:' .. perf)
local chosen = {}
-- The first row with a run of quantity free seats (its lowest run), else the first free seats.
local run = string.rep('0', quantity)
for start = 1, string.len(map), per do
  local at = string.find(string.sub(map, start, start + per - 1), run, 1, true)
  if at then
    for k = 0, quantity - 1 do chosen[#chosen + 1] = start - 1 + at - 1 + k end
    break
  end
end
if #chosen == 0 then
  local from = 1
  while #chosen < quantity do
    local at = string.find(map, '0', from, true)
    chosen[#chosen + 1] = at - 1
    from = at + 1
  end
end
local owner = booking .. '|' .. ARGV[5]
for _, index in ipairs(chosen) do
  redis.call('SETRANGE', S .. 'map:' .. perf, index, 'L')
  redis.call('HSET', S .. 'own:' .. perf, index, owner)
end
redis.call('HINCRBY', S .. 'n:' .. perf, 'available', -quantity)
redis.call('HINCRBY', S .. 'n:' .. perf, 'held', quantity)
redis.call('HSET', S .. 'b:' .. booking, 'perf', perf, 'seats', table.concat(chosen, ','), 'ct', ARGV[6])
return {'held', chosen}
`;

/** Whether `booking` still owns seat `index` of the performance whose owners are `ownKey` (its entry there is `booking|…`). */
const OWNS = `
local function owns(ownKey, index, booking)
  local own = redis.call('HGET', ownKey, index)
  return own ~= false and string.sub(own, 1, #booking + 1) == booking .. '|'
end
`;

/**
 * Frees (ARGV[3] = 'release'), frees the locked ones of (ARGV[3] = 'release_held') or reserves
 * (ARGV[3] = 'reserve') a booking's seats; answers {perf, indexes}: the seats freed, or all its seats.
 * Only the seats the booking still owns (S..'own:'..perf) count: a map laid out anew after Redis
 * lost it (`ensure`) may have given them to another booking since.
 */
const SETTLE = `${OWNS}
-- ARGV: S, bookingId, what
local S, booking, what = ARGV[1], ARGV[2], ARGV[3]
local b = redis.call('HMGET', S .. 'b:' .. booking, 'perf', 'seats')
if not b[1] then return {} end
local perf = b[1]
local mapKey, ownKey, countsKey = S .. 'map:' .. perf, S .. 'own:' .. perf, S .. 'n:' .. perf
-- The map lost (Redis lost it alone): the booking holds nothing any more, and the owners of the lost
-- map go; the next hold or read lays the map out anew. (A SETRANGE here would make a short map padded with NULs.)
if redis.call('EXISTS', mapKey) == 0 then
  redis.call('DEL', S .. 'b:' .. booking, ownKey)
  return {}
end
local owner = booking .. '|'
local indexes = {}
for index in string.gmatch(b[2], '[^,]+') do
  if owns(ownKey, index, booking) then indexes[#indexes + 1] = tonumber(index) end
end
if what == 'reserve' then
  for _, index in ipairs(indexes) do
    if redis.call('GETRANGE', mapKey, index, index) == 'L' then
      redis.call('SETRANGE', mapKey, index, 'R')
      redis.call('HSET', ownKey, index, owner)
      redis.call('HINCRBY', countsKey, 'held', -1)
      redis.call('HINCRBY', countsKey, 'reserved', 1)
    end
  end
  return {perf, indexes}
end
local freed, kept = {}, {}
for _, index in ipairs(indexes) do
  local status = redis.call('GETRANGE', mapKey, index, index)
  if what == 'release' or status == 'L' then
    if status == 'L' then redis.call('HINCRBY', countsKey, 'held', -1) elseif status == 'R' then redis.call('HINCRBY', countsKey, 'reserved', -1) end
    redis.call('SETRANGE', mapKey, index, '0')
    redis.call('HDEL', ownKey, index)
    freed[#freed + 1] = index
  else
    kept[#kept + 1] = index
  end
end
if #freed > 0 then redis.call('HINCRBY', countsKey, 'available', #freed) end
if #kept == 0 then redis.call('DEL', S .. 'b:' .. booking) else redis.call('HSET', S .. 'b:' .. booking, 'seats', table.concat(kept, ',')) end
return {perf, freed}
`;

/** Drops an evicted booking's entry (S..'b:'..bookingId) unless it still owns a locked seat. */
const FORGET = `${OWNS}
-- ARGV: S, bookingId
local S, booking = ARGV[1], ARGV[2]
local b = redis.call('HMGET', S .. 'b:' .. booking, 'perf', 'seats')
if not b[1] then return 0 end
local mapKey, ownKey = S .. 'map:' .. b[1], S .. 'own:' .. b[1]
for index in string.gmatch(b[2], '[^,]+') do
  if owns(ownKey, index, booking) and redis.call('GETRANGE', mapKey, index, index) == 'L' then return 0 end
end
redis.call('DEL', S .. 'b:' .. booking)
return 1
`;

const SEATS_OF = `${ENSURE}
-- ARGV: S, perf, total, row width
local S, perf = ARGV[1], ARGV[2]
local map = redis.call('GET', S .. 'map:' .. perf)
if not map then
  ensure(S, perf, ARGV[3], ARGV[4])
  map = redis.call('GET', S .. 'map:' .. perf)
end
return {map, redis.call('HGETALL', S .. 'own:' .. perf)}
`;

/** Lays out a performance (`ensure`): at the start, on each reconnect and at the end of a load. */
const LAYOUT = `${ENSURE}
-- ARGV: S, perf, total, per
ensure(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`;

/** Counts of the performances named in ARGV[2..], each followed by its total and row width (for `ensure`). */
const COUNTS = `${ENSURE}
local out = {}
for i = 2, #ARGV, 3 do
  local key = ARGV[1] .. 'n:' .. ARGV[i]
  local n = redis.call('HMGET', key, 'total', 'available', 'held', 'reserved')
  if not n[1] or redis.call('EXISTS', ARGV[1] .. 'map:' .. ARGV[i]) == 0 then
    ensure(ARGV[1], ARGV[i], ARGV[i + 1], ARGV[i + 2])
    n = redis.call('HMGET', key, 'total', 'available', 'held', 'reserved')
  end
  out[#out + 1] = {tonumber(n[1]), tonumber(n[2]), tonumber(n[3]), tonumber(n[4])}
end
return out
`;

const STATUS: Record<string, SeatStatus> = { '0': 'available', L: 'locked', R: 'reserved' };

/**
 * The seat inventory in Redis, shared by every replica: each performance's seats are one string of
 * a byte per seat, so a hold reads the whole map and picks the seats (the same rule as
 * core/seats.ts: the first row with a run of adjacent free seats, else the first free seats) and
 * locks them in one Lua script: no two bookings, on any replica, ever get one seat.
 *
 * `create` lays out the catalog's maps where they do not exist yet (a replica starting later
 * keeps what the others hold), each with its counts in one script. Differences from memory: none in behaviour; a hold costs a read of
 * the performance's map (one byte per seat) inside Redis.
 */
export class RedisSeatStore implements SeatStore {
  readonly #s: string;
  readonly #performances: ReadonlyMap<string, Performance>;
  readonly #hold: Script;
  readonly #settle: Script;
  readonly #seatsOf: Script;
  readonly #counts: Script;
  readonly #forget: Script;

  private constructor(client: Redis, keyPrefix: string, performances: readonly Performance[]) {
    this.#s = `${keyPrefix}seats:`;
    this.#performances = new Map(performances.map((p) => [p.id, p]));
    this.#hold = defineScript(client, 'paysimSeatsHold', HOLD);
    this.#settle = defineScript(client, 'paysimSeatsSettle', SETTLE);
    this.#seatsOf = defineScript(client, 'paysimSeatsOf', SEATS_OF);
    this.#counts = defineScript(client, 'paysimSeatsCounts', COUNTS);
    this.#forget = defineScript(client, 'paysimSeatsForget', FORGET);
  }

  static async create(client: Redis, options: { keyPrefix: string }, performances: readonly Performance[]): Promise<RedisSeatStore> {
    const store = new RedisSeatStore(client, options.keyPrefix, performances);
    const layout = defineScript(client, 'paysimSeatsLayout', LAYOUT);
    for (const p of performances) await layout([], [store.#s, p.id, ...layoutOf(p)]);
    return store;
  }

  async hold(performanceId: string, quantity: number, bookingId: string, until: number): Promise<HoldOutcome> {
    const p = this.#performances.get(performanceId);
    const layout = p === undefined ? ['', ''] : layoutOf(p);
    const [kind, figure] = (await this.#hold([], [this.#s, performanceId, quantity, bookingId, until, callToken(), ...layout])) as [string, (number | number[])?];
    if (kind === 'held') return { kind, seatIds: this.#ids(performanceId, figure as number[]) };
    if (kind === 'sold_out') return { kind, available: figure as number };
    return { kind: kind as 'unknown_performance' | 'already_holding' };
  }

  release(bookingId: string): Promise<string[]> {
    return this.#settleAs(bookingId, 'release');
  }

  releaseHeld(bookingId: string): Promise<string[]> {
    return this.#settleAs(bookingId, 'release_held');
  }

  reserve(bookingId: string): Promise<string[]> {
    return this.#settleAs(bookingId, 'reserve');
  }

  async forget(bookingId: string): Promise<void> {
    await this.#forget([], [this.#s, bookingId]);
  }

  async seatsOf(performanceId: string): Promise<SeatView[] | undefined> {
    const performance = this.#performances.get(performanceId);
    if (performance === undefined) return undefined;
    const reply = (await this.#seatsOf([], [this.#s, performanceId, ...layoutOf(performance)])) as [string, string[]];
    const [map, owners] = reply;
    const ownerOf = new Map<number, string>();
    for (let i = 0; i < owners.length; i += 2) ownerOf.set(Number(owners[i]), owners[i + 1] as string);
    return Array.from(map, (byte, index) => {
      const row = performance.rows[Math.floor(index / performance.seatsPerRow)] as string;
      const number = (index % performance.seatsPerRow) + 1;
      const [bookingId, until] = (ownerOf.get(index) ?? '|').split('|') as [string, string];
      const status = STATUS[byte] as SeatStatus;
      return { seatId: seatId(row, number), row, number, status, bookingId: bookingId === '' ? null : bookingId, lockedUntil: status === 'locked' ? Number(until) : null };
    });
  }

  async counts(performanceId?: string): Promise<SeatCounts | undefined> {
    if (performanceId !== undefined && !this.#performances.has(performanceId)) return undefined;
    const ids = performanceId === undefined ? [...this.#performances.keys()] : [performanceId];
    const named = ids.flatMap((id) => [id, ...layoutOf(this.#performances.get(id) as Performance)]);
    const rows = (await this.#counts([], [this.#s, ...named])) as Array<[number, number, number, number]>;
    const sum: SeatCounts = { total: 0, available: 0, held: 0, reserved: 0 };
    for (const [total, available, held, reserved] of rows) {
      sum.total += total;
      sum.available += available;
      sum.held += held;
      sum.reserved += reserved;
    }
    return sum;
  }

  async #settleAs(bookingId: string, what: 'release' | 'release_held' | 'reserve'): Promise<string[]> {
    const reply = (await this.#settle([], [this.#s, bookingId, what])) as [string, number[]] | [];
    return reply.length === 0 ? [] : this.#ids(reply[0], reply[1]);
  }

  #ids(performanceId: string, indexes: readonly number[]): string[] {
    const performance = this.#performances.get(performanceId) as Performance;
    return indexes.map((index) => seatId(performance.rows[Math.floor(index / performance.seatsPerRow)] as string, (index % performance.seatsPerRow) + 1));
  }
}

/** A performance's layout as the scripts take it (`ensure`): its number of seats and its row width. */
function layoutOf(p: Performance): [number, number] {
  return [p.rows.length * p.seatsPerRow, p.seatsPerRow];
}
