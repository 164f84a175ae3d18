import { BOUNDS, keepingReply, WALK } from './lua.ts';

/*
 * The Lua scripts of the bookings port on Redis (`bookings.ts`), one per atomic operation.
 *
 * Keys (P = prefix .. 'bk:'): KEYS[1] P..'all' (zset, score 0: ids in lexical = creation order),
 * KEYS[2] P..'counts' (hash: status → n, 'inflight', 'unprocessed'), KEYS[3] P..'evict' (zset:
 * evictable bookings → createdAt). Built in the scripts from ARGV[1] = P: P..'r:'..id (the booking
 * hash), P..'u:'..userId (zset like 'all'), P..'evs:'..id (list: its inbox event ids, in the order
 * written) and P..'e:'..eventId (the event hash: b = the event as written (JSON), pa = processedAt,
 * '' for none, bk = its booking). A booking hash holds `b` (the booking as inserted, JSON) and the
 * fields that change or that scripts read: s (status), f (payment in flight, '' for none), ps and
 * pi (its payment intent's status, and the intent as JSON), pm (payment method), u (user), ca, ea
 * (createdAt, expiresAt), n (its unprocessed events), sa (settledAt, once it left pending), ct (the
 * token of the last call that changed its status or payment: `callToken`), fl and ft (when the
 * payment begun with token ft is taken for lost, its `lostAfter`: only while ft is the payment in
 * flight's, ct; none from versions before 2026-12-06), rt (the call token of the record that ended
 * the last payment: that record sent again answers what it did, whatever changed since), tk (the
 * call token of the last begin or cancel that took a lost payment over: that call sent again says
 * so too; none before 2026-12-06, when such a call sent again left it out). P..'forget' (set):
 * evicted bookings whose ledger transactions may still be there (`toForget`).
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
  local r = redis.call('HMGET', rec(id), 's', 'f', 'ps', 'u', 'ea', 'ct', 'fl', 'ft', 'rt', 'tk')
  if not r[1] then return nil end
  return {s = r[1], f = r[2], ps = r[3], u = r[4], ea = tonumber(r[5]), ct = r[6], fl = tonumber(r[7]), ft = r[8], rt = r[9], tk = r[10]}
end
-- Finished, with no payment in flight and every inbox event processed: in EVICT by createdAt, else not.
local function requeue(id)
  local r = redis.call('HMGET', rec(id), 's', 'f', 'n', 'ca')
  if r[1] ~= 'pending' and r[2] == '' and r[3] == '0' then redis.call('ZADD', EVICT, r[4], id) else redis.call('ZREM', EVICT, id) end
end
-- Ends the payment in flight of r (as load read it) if it is past its own 'lost after', set with
-- its token (its process gone: a replica killed during its delay); whether it did.
local function endLost(id, r, now)
  if r.f == '' or not r.fl or r.ft ~= r.ct or now <= r.fl then return false end
  redis.call('HSET', rec(id), 'f', '')
  redis.call('HINCRBY', KEYS[2], 'inflight', -1)
  r.f = ''
  return true
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

export const INSERT = `${PRELUDE}
-- ARGV: P, id, base, status, inFlight, payment status, payment intent, payment method, user, createdAt, expiresAt, max, ttl, batch
local id, status, inFlight, user, ca = ARGV[2], ARGV[4], ARGV[5], ARGV[9], ARGV[10]
-- The id is new with each create: there already, this is that very insert run again (its reply
-- lost, ioredis sent it again), which must neither count the booking twice nor, at the bound, refuse
-- the booking it stored (the caller would free its seats). Its evictions are in P..'forget'.
if redis.call('EXISTS', rec(id)) == 1 then return {1, {}} end
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

export const GET = `${PRELUDE}
return view(ARGV[2])
`;

export const LIST = `${PRELUDE}${WALK}
-- ARGV: P, limit, cursor ('' = first page), scan budget, userId (absent: every booking)
local key = ALL
if ARGV[5] then key = P .. 'u:' .. ARGV[5] end
return walk(key, ARGV[3], tonumber(ARGV[2]), tonumber(ARGV[4]), function(id) return true end, view)
`;

export const BEGIN_PAYMENT = `${PRELUDE}
-- ARGV: P, id, userId, kind, now, call token, lost after ('' = never)
local id = ARGV[2]
local r = load(id)
if not r then return {'not_found'} end
-- This call, run again (its reply lost): what it did.
if r.ct == ARGV[6] and r.s == 'expired' then return {'expired_now', view(id)} end
if r.ct == ARGV[6] and r.f == ARGV[4] then
  if r.tk == ARGV[6] then return {'started', view(id), 'took_over'} end
  return {'started', view(id)}
end
if r.u ~= ARGV[3] then return {'forbidden', view(id)} end
if r.s == 'expired' then return {'expired', view(id)} end
-- A payment in flight whose process is gone (past its own 'lost after', set with its token): ended, then judged as any.
local tookOver = endLost(id, r, tonumber(ARGV[5]))
if not unpaid(r) then return {'already_processed', view(id)} end
if tonumber(ARGV[5]) >= r.ea then
  setStatus(id, r.s, 'expired', ARGV[5], ARGV[6])
  return {'expired_now', view(id)}
end
redis.call('HSET', rec(id), 'f', ARGV[4], 'ct', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', rec(id), 'fl', ARGV[7], 'ft', ARGV[6]) else redis.call('HDEL', rec(id), 'fl', 'ft') end
redis.call('HINCRBY', KEYS[2], 'inflight', 1)
if tookOver then
  redis.call('HSET', rec(id), 'tk', ARGV[6])
  return {'started', view(id), 'took_over'}
end
return {'started', view(id)}
`;

export const RECORD_PAYMENT = `${PRELUDE}
-- ARGV: P, id, payment status, payment intent, payment method ('' = keep), eventId, event, processedAt ('' = not yet), call token,
-- the token the payment was begun with ('' = whichever is in flight)
local id, eventId, processedAt = ARGV[2], ARGV[6], ARGV[8]
local r = load(id)
-- This record sent again (its reply lost): what it did, whatever changed since (the inbox may have confirmed the booking).
if r and (r.ct == ARGV[9] or r.rt == ARGV[9]) then return view(id) end
if not r or r.s ~= 'pending' or r.f == '' then return {} end
-- Another payment than this one (begun in its place, its process taken for gone): the begin's token is kept in ct while it is in flight.
if ARGV[10] ~= '' and r.ct ~= ARGV[10] then return {} end
redis.call('HSET', rec(id), 'f', '', 'ps', ARGV[3], 'pi', ARGV[4], 'ct', ARGV[9], 'rt', ARGV[9])
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

export const ABORT_PAYMENT = `${PRELUDE}${keepingReply("P .. 'kept:'", `
-- ARGV: P, id, the token the payment was begun with ('' = whichever is in flight), call token
local r = load(ARGV[2])
if not r or r.f == '' then return 0 end
-- Another payment than the one meant: the begin's token is kept in ct while it is in flight.
if ARGV[3] ~= '' and r.ct ~= ARGV[3] then return 0 end
redis.call('HSET', rec(ARGV[2]), 'f', '')
redis.call('HINCRBY', KEYS[2], 'inflight', -1)
requeue(ARGV[2])
return 1
`)}`;

export const TRANSITION = `${PRELUDE}
-- ARGV: P, id, to, unpaid ('1': a cancel), at, call token, from...
local id = ARGV[2]
local r = load(id)
if not r then return {0, {}} end
-- This call, run again (its reply lost): what it did, the payment it took over too.
if r.ct == ARGV[6] then
  local again = ''
  if r.tk == ARGV[6] then again = 'took_over' end
  if ARGV[4] == '1' and r.s == 'expired' then return {0, view(id), again, 'expired_now'} end
  return {1, view(id), again}
end
local allowed = false
for i = 7, #ARGV do if ARGV[i] == r.s then allowed = true end end
-- A cancel: a payment in flight whose process is gone is ended first, as a begin would.
local tookOver = ''
if allowed and ARGV[4] == '1' and endLost(id, r, tonumber(ARGV[5])) then tookOver = 'took_over' end
if not allowed or r.f ~= '' or (ARGV[4] == '1' and not unpaid(r)) then return {0, view(id), tookOver} end
-- Its token noted with the takeover, so that this call run again says so too.
if tookOver ~= '' then redis.call('HSET', rec(id), 'tk', ARGV[6]) end
-- A cancel once the hold has lapsed (the payment it ended kept the booking from expiring): expired, as a begin would.
if ARGV[4] == '1' and tonumber(ARGV[5]) >= r.ea then
  setStatus(id, r.s, 'expired', ARGV[5], ARGV[6])
  return {0, view(id), tookOver, 'expired_now'}
end
setStatus(id, r.s, ARGV[3], ARGV[5], ARGV[6])
return {1, view(id), tookOver}
`;

export const EXPIRE_IF_DUE = `${PRELUDE}
-- ARGV: P, id, now, call token
local id = ARGV[2]
local r = load(id)
if r and r.ct == ARGV[4] then return view(id) end
if not r or not unpaid(r) or tonumber(ARGV[3]) < r.ea then return {} end
setStatus(id, r.s, 'expired', ARGV[3], ARGV[4])
return view(id)
`;

export const MARK_PROCESSED = `${PRELUDE}
-- ARGV: P, eventId, now, token (the call's: a mark run again, its reply lost, answers first as the
-- first run did, else booking.event_processed would never be published)
local key = P .. 'e:' .. ARGV[2]
local e = redis.call('HMGET', key, 'pa', 'bk', 'mt')
if not e[1] then return {0, {}} end
if e[1] ~= '' then
  if e[3] == ARGV[4] then return {1, eventView(ARGV[2])} end
  return {0, eventView(ARGV[2])}
end
redis.call('HSET', key, 'pa', ARGV[3], 'mt', ARGV[4])
redis.call('HINCRBY', KEYS[2], 'unprocessed', -1)
if redis.call('EXISTS', rec(e[2])) == 1 then
  redis.call('HINCRBY', rec(e[2]), 'n', -1)
  requeue(e[2])
end
return {1, eventView(ARGV[2])}
`;

export const EVENT = `${PRELUDE}
return eventView(ARGV[2])
`;

export const EVENTS = `${PRELUDE}
local out = {}
for _, eventId in ipairs(redis.call('LRANGE', P .. 'evs:' .. ARGV[2], 0, -1)) do out[#out + 1] = eventView(eventId) end
return out
`;

export const COUNTS = `return redis.call('HGETALL', KEYS[2])`;

export const SWEEP = `${PRELUDE}
-- ARGV: P, cutoff, batch
local swept = sweep(tonumber(ARGV[2]), tonumber(ARGV[3]))
return {gone, swept[2]}
`;
