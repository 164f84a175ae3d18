import { keepingReply } from '../lua.ts';
import { RECORDS } from './records.ts';

/**
 * FluxPay's transactional outbox in Redis, shared with the billing store (a subscription's change
 * and its event are one script, so that script writes to this layout). Under the outbox prefix O
 * (the FluxPay store's, `<keyPrefix>fp:`):
 * - O..'e:'..eventId: the event (a record hash, ./records.ts: `b`, `.status`, `.publishedAt`; `seq`
 *   its sequence, `at` when it occurred);
 * - O..'oseq': the sequence (INCR: write order across every replica);
 * - O..'oall': every event, eventId → sequence; O..'opend': the pending ones, the same;
 * - O..'opub': the published ones, eventId → occurredAt (the oldest go first at the bound and by TTL);
 * - O..'oord:'..orderId: the events about that order (outboxOrderIds), eventId → sequence, written
 *   with the event (whose hash keeps those order ids in `oo`, newline-separated) and left with it, so
 *   the index holds exactly the events held (an earlier version's events are in none).
 */
export interface RedisOutbox {
  /** The outbox prefix O. */
  prefix: string;
  /** Events held at most (FluxPay's maxRecords): at the bound the oldest published event goes. */
  maxEvents: number;
}

/** The FluxPay store's key prefix (its outbox's too) under the service's `keyPrefix`. */
export const fluxPayPrefix = (keyPrefix: string): string => `${keyPrefix}fp:`;

/**
 * `emit` writes an event in the caller's script (payload: its JSON; orders: a table of the ids of
 * the orders it is about, the same as outboxOrderIds gives for its payload); `removeEvent` drops one
 * (1 when it was there). Needs RECORDS.
 */
const REMOVE_EVENT = `
local function removeEvent(O, id)
  local about = redis.call('HGET', O .. 'e:' .. id, 'oo')
  if about then
    for orderId in string.gmatch(about, '[^\\n]+') do redis.call('ZREM', O .. 'oord:' .. orderId, id) end
  end
  redis.call('ZREM', O .. 'oall', id)
  redis.call('ZREM', O .. 'opend', id)
  redis.call('ZREM', O .. 'opub', id)
  return redis.call('DEL', O .. 'e:' .. id)
end
-- The oldest published events go until fewer than \`room\` short of \`max\` are held (room 1: one more fits,
-- room 0: within the bound); pending ones never do (the relay has not handed them over yet), so while
-- it is behind the outbox may hold more, and the events it then publishes go at once.
local function trimPublished(O, max, room)
  local excess = redis.call('ZCARD', O .. 'oall') - max + room
  if excess <= 0 then return end
  for _, id in ipairs(redis.call('ZRANGE', O .. 'opub', 0, excess - 1)) do removeEvent(O, id) end
end
`;

export const OUTBOX = `${REMOVE_EVENT}
local function emit(O, max, eventId, eventType, aggregate, payload, now, orders)
  if eventId == nil or eventId == '' then error('no event id for ' .. eventType) end
  trimPublished(O, max, 1)
  local seq = redis.call('INCR', O .. 'oseq')
  local base = '{"eventId":' .. q(eventId) .. ',"eventType":"' .. eventType .. '","aggregate":' .. q(aggregate) .. ',"sequence":' .. n(seq)
    .. ',"occurredAt":' .. now .. ',"payload":' .. payload .. '}'
  redis.call('HSET', O .. 'e:' .. eventId, 'b', base, '.status', '"PENDING"', '.publishedAt', 'null', 'seq', seq, 'at', now)
  redis.call('ZADD', O .. 'oall', seq, eventId)
  redis.call('ZADD', O .. 'opend', seq, eventId)
  if #orders > 0 then
    redis.call('HSET', O .. 'e:' .. eventId, 'oo', table.concat(orders, '\\n'))
    for _, orderId in ipairs(orders) do redis.call('ZADD', O .. 'oord:' .. orderId, seq, eventId) end
  end
end
`;

// The outbox's own scripts. ARGV[1] = O.

export const PENDING = `${RECORDS}
-- ARGV: O, limit
local O, limit = ARGV[1], tonumber(ARGV[2])
if limit < 1 then return {} end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', O .. 'opend', 0, limit - 1)) do out[#out + 1] = render(O .. 'e:' .. id) end
return out
`;

/*
 * An event marked keeps the call's token (mk): the same call run again (its reply lost, sent again
 * by ioredis after a reconnect) counts the events it marked, as the first run did, instead of
 * answering that another relay marked them (which would leave them counted by no relay).
 */
const MARK_BODY = `-- ARGV: O, now, call token, the most events held, eventId...
local O, now, token, max, marked = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), 0
for i = 5, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', O .. 'opend', id) == 1 then
    redis.call('HSET', O .. 'e:' .. id, '.status', '"PUBLISHED"', '.publishedAt', now, 'mk', token)
    redis.call('ZADD', O .. 'opub', redis.call('HGET', O .. 'e:' .. id, 'at'), id)
    marked = marked + 1
  elseif redis.call('HGET', O .. 'e:' .. id, 'mk') == token then
    marked = marked + 1
  end
end
-- Events written while the relay was behind (pending ones never go) may have left more than the
-- bound: once published they go, oldest first (before 2026-12-07 each new event took at most one
-- away, so a burst left the excess for FLUXPAY_TTL_MS: a user test).
trimPublished(O, max, 0)
return marked
`;

/**
 * MARK, its reply kept under the call's token (RESENT_WITHIN_MS): its trim may remove an event it
 * has just marked (the relay behind, the oldest published first), with its `mk`, so a run sent again
 * after a lost reply would count 0 where the first counted it (rev74c).
 */
export const MARK = `${REMOVE_EVENT}${keepingReply("ARGV[1] .. 'reply:'", MARK_BODY, 'reply > 0', 'ARGV[3]')}`;

/** Newest first by sequence after the cursor's event (an unknown cursor: an empty page, as memory), at most `budget` events looked at. */
export const LIST = `${RECORDS}
-- ARGV: O, limit, cursor ('' = from the newest), status ('' = any), scan budget
local O, limit, cursor, status, budget = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local max = '+inf'
if cursor ~= '' then
  local seq = redis.call('ZSCORE', O .. 'oall', cursor)
  if not seq then return {'', {}} end
  max = '(' .. seq
end
local data, last, previous, examined = {}, '', '', 0
while true do
  local page = redis.call('ZREVRANGEBYSCORE', O .. 'oall', max, '-inf', 'WITHSCORES', 'LIMIT', 0, 500)
  if #page == 0 then return {'', data} end
  for i = 1, #page, 2 do
    local id = page[i]
    if examined == budget then return {previous, data} end
    examined = examined + 1
    if status == '' or redis.call('HGET', O .. 'e:' .. id, '.status') == status then
      if #data == limit then return {last, data} end
      data[#data + 1] = render(O .. 'e:' .. id)
      last = id
    end
    previous = id
  end
  max = '(' .. page[#page]
end
`;

/** An order's events: {how many the index holds, the newest `limit` of them oldest first}. */
export const OF_ORDER = `${RECORDS}
-- ARGV: O, orderId, limit
local O, key, limit = ARGV[1], ARGV[1] .. 'oord:' .. ARGV[2], tonumber(ARGV[3])
local total, out = redis.call('ZCARD', key), {}
if limit < 1 then return {total, out} end
for _, id in ipairs(redis.call('ZRANGE', key, -limit, -1)) do out[#out + 1] = render(O .. 'e:' .. id) end
return {total, out}
`;

export const STATS = `
-- ARGV: O. Answers pending, when the oldest pending occurred ('' with none), published.
local O = ARGV[1]
local pending = redis.call('ZCARD', O .. 'opend')
local first = redis.call('ZRANGE', O .. 'opend', 0, 0)[1]
local oldest = ''
if first then oldest = redis.call('HGET', O .. 'e:' .. first, 'at') end
return {pending, oldest, redis.call('ZCARD', O .. 'oall') - pending}
`;
