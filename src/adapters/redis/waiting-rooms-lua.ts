import { keepingReply } from './lua.ts';

/*
 * The Lua scripts of the waiting-rooms port on Redis (`waiting-rooms.ts`), one per atomic operation.
 *
 * Keys (W = prefix .. 'wr:'): KEYS[1] W..'rooms' (zset: room id → creation sequence), KEYS[2]
 * W..'seq' (counter), KEYS[3] W..'tokens' (hash: admission token → ticket id), KEYS[4] W..'ended'
 * (zset: ended tickets → when they ended; a used one → its token's expiry), KEYS[5] W..'n' (tickets held). Built in the scripts
 * from ARGV[1] = W, per room: W..'room:'..id (the room hash), W..'q:'..id (zset: WAITING tickets →
 * sequence: the queue, as source document 002 keeps it), W..'act:'..id (zset: ADMITTED tickets
 * whose token holds a slot, neither spent nor expired → expiresAt; a used one until its order is written), W..'users:'..id (hash: user → their latest
 * ticket); per ticket: W..'t:'..id (the ticket hash); W..'kept:'..token (a call's reply, kept a while: lua.ts `keepingReply`).
 *
 * Room hash: id, aps, ttl, psi (JSON), ma ('' = none), act ('1' | '0'), ca, ua, ent, adm, exp, used, ac,
 * laa ('' = none), naa ('inf' | '-inf' | a number), dec (the fingerprint of the billing policy's declaration it was
 * last made or changed from; none for a room only PUT). Ticket hash: id, r, u, sq, st, ea, aa, tk, xa,
 * ua, uf ('' = null). Numbers the scripts compute are written with %.17g: times may be fractional
 * (1000 / admitPerSecond), and Lua's own number-to-string conversion keeps only 14 digits.
 */
const PRELUDE = `
local W = ARGV[1]
local INF = math.huge
local function num(x)
  if x == INF then return 'inf' elseif x == -INF then return '-inf' end
  return string.format('%.17g', x)
end
local function parse(s)
  if s == 'inf' then return INF elseif s == '-inf' then return -INF end
  return tonumber(s)
end
local function orNil(s) if s == '' then return nil end return parse(s) end
local function orEmpty(x) if x == nil then return '' end return num(x) end
local function tkey(id) return W .. 't:' .. id end
local function ticketView(id) return redis.call('HGETALL', tkey(id)) end
local function views(ids)
  local out = {}
  for _, id in ipairs(ids) do out[#out + 1] = ticketView(id) end
  return out
end

local function loadRoom(roomId)
  local flat = redis.call('HGETALL', W .. 'room:' .. roomId)
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return {
    id = roomId, aps = tonumber(h.aps), ttl = tonumber(h.ttl), psi = h.psi, ma = orNil(h.ma), act = h.act == '1',
    ca = h.ca, ua = h.ua, ent = tonumber(h.ent), adm = tonumber(h.adm), exp = tonumber(h.exp), used = tonumber(h.used),
    ac = tonumber(h.ac), laa = orNil(h.laa), naa = parse(h.naa),
    q = W .. 'q:' .. roomId, active = W .. 'act:' .. roomId,
  }
end
local function saveRoom(R)
  redis.call('HSET', W .. 'room:' .. R.id, 'ua', R.ua, 'ent', num(R.ent), 'adm', num(R.adm), 'exp', num(R.exp), 'used', num(R.used),
    'ac', num(R.ac), 'laa', orEmpty(R.laa), 'naa', num(R.naa))
end
local function roomView(roomId) return redis.call('HGETALL', W .. 'room:' .. roomId) end
local function interval(R)
  if R.act and R.aps > 0 then return 1000 / R.aps end
  return INF
end

-- The admitted token holding a slot (neither spent nor expired) that expires first: {id, expiresAt}, or nil.
local function firstToExpire(R)
  local first = redis.call('ZRANGE', R.active, 0, 0, 'WITHSCORES')
  if #first == 0 then return nil end
  return {first[1], tonumber(first[2])}
end
local function ended(id, at) redis.call('ZADD', KEYS[4], num(at), id) end
local function expireUntil(R, at)
  while true do
    local first = firstToExpire(R)
    if not first or first[2] > at then return end
    redis.call('ZREM', R.active, first[1])
    R.ac = R.ac - 1
    -- room.ts expireTicket: used for an order never said written, its slot frees and it stays used.
    -- (a used ticket evicted since it ended, before its room caught up: its hash is gone, nothing more)
    if redis.call('HGET', tkey(first[1]), 'ua') == '' then
      redis.call('HSET', tkey(first[1]), 'st', 'EXPIRED')
      ended(first[1], first[2])
      R.exp = R.exp + 1
    end
  end
end

-- room.ts admitDue, on the room's sorted sets: the same rule, step for step. Answers the ids admitted.
local function admitDue(R, now)
  local admitted = {}
  local every = interval(R)
  while true do
    local head = redis.call('ZRANGE', R.q, 0, 0)[1]
    if not head or every == INF then break end
    local at = math.max(tonumber(redis.call('HGET', tkey(head), 'ea')), R.naa)
    if at > now then break end
    expireUntil(R, at)
    local blocked = false
    while R.ma ~= nil and R.ac >= R.ma do
      local first = firstToExpire(R)
      if not first or first[2] > now then blocked = true break end
      at = math.max(at, first[2])
      expireUntil(R, at)
    end
    if blocked then break end
    local expiresAt = at + R.ttl * 1000
    redis.call('HSET', tkey(head), 'st', 'ADMITTED', 'aa', num(at), 'xa', num(expiresAt))
    redis.call('ZREM', R.q, head)
    redis.call('ZADD', R.active, num(expiresAt), head)
    R.adm = R.adm + 1
    R.ac = R.ac + 1
    R.laa = at
    R.naa = at + every
    admitted[#admitted + 1] = head
  end
  expireUntil(R, now)
  return admitted
end

-- room.ts nextAdmissionDue: '' when nobody waits or admission is paused.
local function nextDue(R, now)
  local head = redis.call('ZRANGE', R.q, 0, 0)[1]
  if not head or interval(R) == INF then return '' end
  local at = math.max(now, tonumber(redis.call('HGET', tkey(head), 'ea')), R.naa)
  if R.ma == nil or R.ac < R.ma then return num(at) end
  local first = firstToExpire(R)
  if not first then return '' end
  return num(math.max(at, first[2]))
end

local function result(R, admitted, now) return {roomView(R.id), views(admitted), nextDue(R, now)} end

-- room.ts ticketStatusAt.
local function statusAt(t, now)
  if t.st == 'ADMITTED' and t.ua == '' and tonumber(t.xa) <= now then return 'EXPIRED' end
  return t.st
end
local function loadTicket(id)
  if not id then return nil end
  local r = redis.call('HMGET', tkey(id), 'r', 'u', 'st', 'xa', 'ua', 'uf', 'tk')
  if not r[1] then return nil end
  return {id = id, r = r[1], u = r[2], st = r[3], xa = r[4], ua = r[5], uf = r[6], tk = r[7]}
end

local function removeTicket(id)
  local t = loadTicket(id)
  redis.call('ZREM', KEYS[4], id)
  if not t then return 0 end
  redis.call('DEL', tkey(id))
  redis.call('HDEL', KEYS[3], t.tk)
  local users = W .. 'users:' .. t.r
  if redis.call('HGET', users, t.u) == id then redis.call('HDEL', users, t.u) end
  redis.call('DECR', KEYS[5])
  return 1
end
local function sweep(cutoff, batch)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', num(cutoff), 'LIMIT', 0, batch)
  local removed = 0
  for _, id in ipairs(ids) do removed = removed + removeTicket(id) end
  return {removed, #ids}
end
local function protects(R, serviceId)
  if not R.act then return false end
  for _, id in ipairs(cjson.decode(R.psi)) do if id == serviceId then return true end end
  return false
end
`;

/** Its reply kept under its call's token (lua.ts `keepingReply`): a second run would answer `updated` (200) to the PUT that made the room, and no admissions. */
export const PUT_ROOM = `${PRELUDE}${keepingReply("W .. 'kept:'", `
-- ARGV: W, roomId, now, maxRooms, aps, ttl, psi (JSON), ma ('' = none), active ('1' | '0'),
-- mode ('' a PUT, 'create' create only, 'declare' the billing policy's at a start), declaration ('' none), call token
local roomId, now, mode, declared = ARGV[2], tonumber(ARGV[3]), ARGV[10], ARGV[11]
local key = W .. 'room:' .. roomId
local R = loadRoom(roomId)
if R and mode == 'create' then return {'exists'} end
if R and mode == 'declare' and redis.call('HGET', key, 'dec') == declared then return {'kept'} end
if not R then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return {'full'} end
  local paused = not (ARGV[9] == '1' and tonumber(ARGV[5]) > 0)
  local naa = '-inf'
  if paused then naa = 'inf' end
  redis.call('HSET', key, 'id', roomId, 'aps', ARGV[5], 'ttl', ARGV[6], 'psi', ARGV[7], 'ma', ARGV[8], 'act', ARGV[9], 'ca', ARGV[3], 'ua', ARGV[3],
    'ent', 0, 'adm', 0, 'exp', 0, 'used', 0, 'ac', 0, 'laa', '', 'naa', naa)
  if declared ~= '' then redis.call('HSET', key, 'dec', declared) end
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), roomId)
  local created = loadRoom(roomId)
  local out = result(created, {}, now)
  return {'created', out[1], out[2], out[3]}
end
local admitted = admitDue(R, now)
-- room.ts applySettings
redis.call('HSET', key, 'aps', ARGV[5], 'ttl', ARGV[6], 'psi', ARGV[7], 'ma', ARGV[8], 'act', ARGV[9])
if declared ~= '' then redis.call('HSET', key, 'dec', declared) end
R.aps, R.ttl, R.psi, R.ma, R.act, R.ua = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], orNil(ARGV[8]), ARGV[9] == '1', ARGV[3]
local every = interval(R)
if every == INF then
  R.naa = INF
elseif R.laa == nil then
  R.naa = now
else
  R.naa = math.max(now, R.laa + every)
end
for _, id in ipairs(admitDue(R, now)) do admitted[#admitted + 1] = id end
saveRoom(R)
local out = result(R, admitted, now)
return {'updated', out[1], out[2], out[3]}
`)}`;

/** Its reply kept under its call's token when it admitted tickets (a second run admits none, so they would go unpublished). */
export const GET_ROOM = `${PRELUDE}${keepingReply("W .. 'kept:'", `
-- ARGV: W, roomId, now, call token
local now = tonumber(ARGV[3])
local R = loadRoom(ARGV[2])
if not R then return {} end
local admitted = admitDue(R, now)
saveRoom(R)
return result(R, admitted, now)
`, '#reply > 0 and #reply[2] > 0')}`;

/** Kept as GET_ROOM's, when it admitted tickets. */
export const LIST_ROOMS = `${PRELUDE}${keepingReply("W .. 'kept:'", `
-- ARGV: W, now, call token. Admitted tickets as they were right after their room's admissions (memory copies them then).
local now = tonumber(ARGV[2])
local rooms, admitted = {}, {}
for _, roomId in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local R = loadRoom(roomId)
  for _, view in ipairs(views(admitDue(R, now))) do admitted[#admitted + 1] = view end
  saveRoom(R)
  rooms[#rooms + 1] = roomView(roomId)
end
return {rooms, admitted}
`, '#reply[2] > 0')}`;

/**
 * Kept as GET_ROOM's, when it admitted tickets, and whenever it answers `entered`: run again, the
 * entry finds its own new ticket and answers `entered` too, but the ticket may be gone by then (ended
 * and evicted at the bound: before 2026-12-06 such an entry run again answered full, or made the
 * ticket again, a review).
 */
export const ENTER = `${PRELUDE}${keepingReply("W .. 'kept:'", `
-- ARGV: W, roomId, userId, ticketId, token, now, maxTickets, ttl, batch, call token
local roomId, userId, ticketId, token, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local R = loadRoom(roomId)
if not R then return {'no_room'} end
local admitted = admitDue(R, now)
-- Rendered now: the sweep and the bound below may remove a ticket this very call admitted and ended
-- (a backlog nobody asked about for longer than the TTL), whose admission is published all the same.
local shown = views(admitted)
-- This very entry run again (its reply lost, ioredis sent it again): a ticket id is new with each
-- entry, so a ticket under it is its own, whatever became of it since. Before 2026-12-06 only a live
-- one was found; one admitted and expired meanwhile was made again under its id (a review: the
-- tickets' count off for good, and the ticket made again evicted at the bound while admitted).
if loadTicket(ticketId) then
  saveRoom(R)
  return {'entered', roomView(R.id), shown, nextDue(R, now), ticketView(ticketId)}
end
local users = W .. 'users:' .. roomId
local existing = loadTicket(redis.call('HGET', users, userId) or nil)
if existing and existing.ua == '' and statusAt(existing, now) ~= 'EXPIRED' then
  saveRoom(R)
  return {'existing', roomView(R.id), shown, nextDue(R, now), ticketView(existing.id)}
end
sweep(now - tonumber(ARGV[8]), tonumber(ARGV[9]))
while tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[7]) do
  -- Only tickets ended by now: a used one waits for its token's expiry (it may be given back until then).
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[6], 'LIMIT', 0, 1)[1]
  if not oldest then
    -- Refused, but what fell due was admitted: answered as a room's reply (and kept) for the service to publish.
    saveRoom(R)
    return {'full', roomView(R.id), shown, nextDue(R, now)}
  end
  removeTicket(oldest)
end
R.ent = R.ent + 1
redis.call('HSET', tkey(ticketId), 'id', ticketId, 'r', roomId, 'u', userId, 'sq', num(R.ent), 'st', 'WAITING', 'ea', ARGV[6], 'aa', '',
  'tk', token, 'xa', '', 'ua', '', 'uf', '')
redis.call('HSET', users, userId, ticketId)
redis.call('HSET', KEYS[3], token, ticketId)
redis.call('ZADD', R.q, num(R.ent), ticketId)
redis.call('INCR', KEYS[5])
for _, id in ipairs(admitDue(R, now)) do shown[#shown + 1] = ticketView(id) end
saveRoom(R)
return {'entered', roomView(R.id), shown, nextDue(R, now), ticketView(ticketId)}
`, "reply[1] == 'entered' or (reply[3] ~= nil and #reply[3] > 0)")}`;

/** Kept as GET_ROOM's, when it admitted tickets. */
export const GET_TICKET = `${PRELUDE}${keepingReply("W .. 'kept:'", `
-- ARGV: W, roomId, ticketId, now, call token
local now = tonumber(ARGV[4])
local R = loadRoom(ARGV[2])
local t = loadTicket(ARGV[3])
if not R or not t or t.r ~= ARGV[2] then return {} end
local admitted = admitDue(R, now)
saveRoom(R)
local out = result(R, admitted, now)
return {out[1], out[2], out[3], ticketView(t.id)}
`, '#reply > 0 and #reply[2] > 0')}`;

/**
 * Kept as GET_ROOM's, when it admitted tickets, and whenever it answers `used`: run again, a use for
 * its own order finds its ticket and answers `used` too, but the ticket may be gone by then (ended
 * at its token's expiry, it may be evicted at the bound at once: before 2026-12-06 such a use run
 * again answered `invalid`, and the order was refused, a review).
 */
export const USE_TOKEN = `${PRELUDE}${keepingReply("W .. 'kept:'", `
-- ARGV: W, serviceId, has token ('1' | '0'), token, orderId, now, call token
local serviceId, token, orderId, now = ARGV[2], ARGV[4], ARGV[5], tonumber(ARGV[6])
local roomIds, admitted, loaded = {}, {}, {}
for _, roomId in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local R = loadRoom(roomId)
  if protects(R, serviceId) then
    roomIds[#roomIds + 1] = roomId
    loaded[roomId] = R
    for _, view in ipairs(views(admitDue(R, now))) do admitted[#admitted + 1] = view end
    saveRoom(R)
  end
end
if #roomIds == 0 then return {'unprotected'} end
if ARGV[3] ~= '1' then return {'missing', roomIds, admitted} end
local t = loadTicket(redis.call('HGET', KEYS[3], token) or nil)
if not t or not loaded[t.r] or t.st == 'WAITING' then return {'invalid', roomIds, admitted} end
if t.ua ~= '' then
  -- Used for this very order (its id is new with each order): this use run again (its reply lost,
  -- ioredis sent it again) answers what it did.
  if t.uf == orderId then return {'used', roomIds, admitted, ticketView(t.id), nextDue(loaded[t.r], now)} end
  -- Still holding its slot (room.ts holdsSlot; the room brought up to now above): its order is not written yet.
  local pending = redis.call('ZSCORE', loaded[t.r].active, t.id) and 1 or 0
  return {'already_used', roomIds, admitted, ticketView(t.id), pending}
end
if statusAt(t, now) == 'EXPIRED' then return {'expired', roomIds, admitted, ticketView(t.id)} end
-- room.ts useAdmission: it holds its slot (in R.active) until its order is written (SPEND_TOKEN) or it expires.
local R = loaded[t.r]
redis.call('HSET', tkey(t.id), 'ua', ARGV[6], 'uf', orderId)
-- Ends, for the bounds, when its token would have expired: until then the order guard may give it back.
ended(t.id, parse(t.xa))
R.used = R.used + 1
saveRoom(R)
return {'used', roomIds, admitted, ticketView(t.id), nextDue(R, now)}
`, "reply[1] == 'used' or (reply[3] ~= nil and #reply[3] > 0)")}`;

/** Kept when it spent the token: run again (its reply lost), it would find the slot free already and answer not spent, and no admissions. */
export const SPEND_TOKEN = `${PRELUDE}${keepingReply("W .. 'kept:'", `
-- ARGV: W, token, orderId, now, call token; answers {spent (1 | 0), admitted views, next due ('' = none), room id ('' = none)}
local now = tonumber(ARGV[4])
local t = loadTicket(redis.call('HGET', KEYS[3], ARGV[2]) or nil)
if not t or t.ua == '' or t.uf ~= ARGV[3] then return {0, {}, '', ''} end
local R = loadRoom(t.r)
if not R then return {0, {}, '', ''} end
local admitted = admitDue(R, now)
-- room.ts spendAdmission; spent already, or its time over while its order was written: nothing.
local spent = 0
if redis.call('ZSCORE', R.active, t.id) then
  redis.call('ZREM', R.active, t.id)
  R.ac = R.ac - 1
  R.naa = math.max(R.naa, now)
  spent = 1
end
for _, id in ipairs(admitDue(R, now)) do admitted[#admitted + 1] = id end
saveRoom(R)
return {spent, views(admitted), nextDue(R, now), t.r}
`, 'reply[1] == 1 or #reply[2] > 0')}`;

/** Its reply kept under its call's token: a second run would answer not released to the call that gave the token back, and no admissions. */
export const RELEASE_TOKEN = `${PRELUDE}${keepingReply("W .. 'kept:'", `
-- ARGV: W, token, orderId, now, call token
local now = tonumber(ARGV[4])
local t = loadTicket(redis.call('HGET', KEYS[3], ARGV[2]) or nil)
if not t or t.ua == '' or t.uf ~= ARGV[3] then return {0, {}} end
local R = loadRoom(t.r)
if not R then return {0, {}} end
local admitted = admitDue(R, now)
-- room.ts releaseAdmission: unused until its own expiry (expired at once below if that has passed);
-- a slot taken again if its own was freed meanwhile (spent, or its time over while used).
redis.call('HSET', tkey(t.id), 'ua', '', 'uf', '')
redis.call('ZREM', KEYS[4], t.id)
if not redis.call('ZSCORE', R.active, t.id) then
  redis.call('ZADD', R.active, t.xa, t.id)
  R.ac = R.ac + 1
end
R.used = R.used - 1
for _, id in ipairs(admitDue(R, now)) do admitted[#admitted + 1] = id end
saveRoom(R)
return {1, views(admitted)}
`)}`;

export const SWEEP = `${PRELUDE}
-- ARGV: W, cutoff, batch
return sweep(tonumber(ARGV[2]), tonumber(ARGV[3]))
`;

export const STATS = `return tonumber(redis.call('GET', KEYS[5]) or '0')`;
