import { BOUNDS, COUNT_ALL, keepingReply, sweepScript, WALK } from './lua.ts';
import { SCHEDULE_JOB } from './scheduler.ts';

/*
 * The Lua scripts of the intents port on Redis (`intents.ts`), one per atomic operation.
 *
 * Keys (P = prefix .. 'int:'): KEYS[1] P..'all' (zset, score 0, ids in lexical = creation order),
 * KEYS[2] P..'evict' (zset: ids of final intents → createdAt). Built inside the scripts from
 * ARGV[1] = P: P..'r:'..id (the record, a hash), P..'st:'..status for each final status and
 * P..'res:'..reservationId (zsets like 'all'; the count of a final status is its zset's ZCARD).
 * PENDING has no index, as with memory: most intents are PENDING for a moment only, so keeping one
 * cost a ZADD and a ZREM for every intent, about a tenth of Redis' work on one. PENDING intents are
 * counted as 'all' less the final ones and listed by walking 'all' (or the reservation's zset),
 * at most the scan budget a page. A record hash holds `b` (the intent
 * as inserted, JSON) and, always all of them, the fields that change or that scripts read: s, fc
 * (JSON), ra, ua, da (JSON), amt, ps, pf (JSON), rid, ca; after a cancel ct (its call's token),
 * and beside it P..'rts:'..id (the call tokens of its last refunds), which tell a call sent
 * again. A change reads the whole record once (HGETALL), writes its fields with one HSET and answers the record it read with the change applied
 * (the fields the client reads, joined: `encode`):
 * every Redis call a script makes costs about a microsecond of Redis' time on top of the command,
 * and every intent is decided once (the decisions of one tick share one script run).
 * (Before 2026-12-01 a hash P..'counts' held the count of each status; it is no longer read or written.
 * Earlier versions also kept P..'st:PENDING', an index of the PENDING intents; a start unlinks it:
 * `RedisIntentStore.dropEarlierIndex`.)
 */
const PRELUDE = `
local P = ARGV[1]
local ALL, EVICT = KEYS[1], KEYS[2]
local function rec(id) return P .. 'r:' .. id end
-- A record as the client reads it: its fields b, s, fc, ra, ua and da joined by NUL bytes, one
-- string ('' for none). One string is far cheaper for the client to take from the reply than a list
-- (22 values cost ioredis about 9 µs, one string 2), and joining far cheaper for Redis than
-- cjson.encode of the list (about 5 µs a decision). No value holds a NUL: b, fc and da are JSON text
-- (JSON.stringify escapes every control character), s is a status, ra and ua are integers.
local function encode(flat, at)
  return flat[at.b] .. '\\0' .. flat[at.s] .. '\\0' .. flat[at.fc] .. '\\0' .. flat[at.ra] .. '\\0' .. flat[at.ua] .. '\\0' .. flat[at.da]
end
local function view(id)
  local r = redis.call('HMGET', rec(id), 'b', 's', 'fc', 'ra', 'ua', 'da')
  if not r[1] then return '' end
  return table.concat(r, '\\0')
end
-- The positions of the values in a record's HGETALL list, by field name.
local function positions(flat)
  local at = {}
  for i = 1, #flat, 2 do at[flat[i]] = i + 1 end
  return at
end
-- Writes {field, value, ...} to the record with one HSET and into flat, the record as read.
local function write(id, flat, at, changes)
  for i = 1, #changes, 2 do flat[at[changes[i]]] = changes[i + 1] end
  redis.call('HSET', rec(id), unpack(changes))
end
-- Moves an intent between the status indexes (the record's own 's' is written by the caller).
-- PENDING has no index (see above): leaving it adds to the eviction order instead.
local function moveStatus(id, before, after, createdAt)
  if before == after then return end
  if before == 'PENDING' then
    redis.call('ZADD', EVICT, createdAt, id)
  else
    redis.call('ZREM', P .. 'st:' .. before, id)
  end
  if after ~= 'PENDING' then redis.call('ZADD', P .. 'st:' .. after, 0, id) end
end
local function remove(id)
  redis.call('ZREM', EVICT, id)
  local r = redis.call('HMGET', rec(id), 's', 'rid')
  if not r[1] then return 0 end
  redis.call('DEL', rec(id), P .. 'rts:' .. id)
  redis.call('ZREM', ALL, id)
  redis.call('ZREM', P .. 'res:' .. r[2], id)
  redis.call('ZREM', P .. 'st:' .. r[1], id)
  return 1
end
${BOUNDS}`;

const INSERT_INTENT = `
-- ARGV: P, id, base, s, fc, ra, ua, da, amt, ps, pf, rid, ca, max, ttl, batch; 1 when stored, 0 when full,
-- 2 when there already: the id is new with each create, so that is this very insert run again (its
-- reply lost, ioredis sent it again), which must not write the intent over its decision since
local function insertIntent()
  local id, status, ca = ARGV[2], ARGV[4], ARGV[13]
  if redis.call('EXISTS', rec(id)) == 1 then return 2 end
  sweep(tonumber(ca) - tonumber(ARGV[15]), tonumber(ARGV[16]))
  if not makeRoom(tonumber(ARGV[14])) then return 0 end
  redis.call('HSET', rec(id), 'b', ARGV[3], 's', status, 'fc', ARGV[5], 'ra', ARGV[6], 'ua', ARGV[7], 'da', ARGV[8],
    'amt', ARGV[9], 'ps', ARGV[10], 'pf', ARGV[11], 'rid', ARGV[12], 'ca', ca)
  redis.call('ZADD', ALL, 0, id)
  redis.call('ZADD', P .. 'res:' .. ARGV[12], 0, id)
  if status ~= 'PENDING' then
    redis.call('ZADD', P .. 'st:' .. status, 0, id)
    redis.call('ZADD', EVICT, ca, id)
  end
  return 1
end
`;

export const INSERT = `${PRELUDE}${INSERT_INTENT}
return math.min(insertIntent(), 1)
`;

/**
 * The insert and, when it stored the intent, its job: KEYS[3..5] and ARGV[17..21] are the
 * scheduler's (RedisSchedulerStore.jobWrite); ARGV[22..23] the Idempotency-Key's entry and the
 * request's claim ('' without a key: IdempotencyNote), on which the intent's id is noted (`made`)
 * for a retry after a lost answer to resume; 3, nothing written, when the claim is no longer the entry's.
 */
export const INSERT_SCHEDULED = `${PRELUDE}${INSERT_INTENT}${SCHEDULE_JOB}
-- ARGV[22] is a key this script does not declare (the idempotency store's): fine on the one Redis
-- server paysim needs (its scripts build keys from the prefix; a Redis Cluster is refused at start).
-- Its claim no longer the key's (another request of the key took it: the client's retry on another
-- replica, this one cut off from Redis meanwhile): nothing written (a review: a second intent).
if ARGV[22] ~= '' and redis.call('HGET', ARGV[22], 'ct') ~= ARGV[23] then return 3 end
local inserted = insertIntent()
if inserted == 0 then return 0 end
-- Run again: its job was scheduled by the first run (and may have run since).
if inserted == 1 then scheduleJob(KEYS[3], KEYS[4], KEYS[5], ARGV[17], ARGV[18], ARGV[19], ARGV[20], ARGV[21]) end
if ARGV[22] ~= '' then redis.call('HSET', ARGV[22], 'made', ARGV[2]) end
return 1
`;

export const GET = `${PRELUDE}
return view(ARGV[2])
`;

export const DECIDE = `${PRELUDE}
-- ARGV: P, then id, now of each decision; answers ok (1 or 0), the record (encoded) of each, in order
local out = {}
for i = 2, #ARGV, 2 do
  local id, now = ARGV[i], ARGV[i + 1]
  local flat = redis.call('HGETALL', rec(id))
  if #flat == 0 then
    out[#out + 1] = 0
    out[#out + 1] = ''
  else
    local at = positions(flat)
    local ok = 0
    if flat[at.s] == 'PENDING' then
      local after = flat[at.ps]
      write(id, flat, at, {'fc', flat[at.pf], 'da', now, 'ua', now, 's', after})
      moveStatus(id, 'PENDING', after, flat[at.ca])
      ok = 1
    end
    out[#out + 1] = ok
    out[#out + 1] = encode(flat, at)
  end
end
return out
`;

const TRANSITION_INTENT = `
-- Sets status (and fc, da when not '') and ua if the intent's status is a key of 'from'; answers {ok, the record encoded}.
local function transitionIntent(id, status, fc, da, ua, from)
  local flat = redis.call('HGETALL', rec(id))
  if #flat == 0 then return {0, ''} end
  local at = positions(flat)
  local before = flat[at.s]
  if not from[before] then return {0, encode(flat, at)} end
  local changes = {'ua', ua, 's', status}
  if fc ~= '' then changes[#changes + 1] = 'fc'; changes[#changes + 1] = fc end
  if da ~= '' then changes[#changes + 1] = 'da'; changes[#changes + 1] = da end
  write(id, flat, at, changes)
  moveStatus(id, before, status, flat[at.ca])
  return {1, encode(flat, at)}
end
`;

export const TRANSITION = `${PRELUDE}${TRANSITION_INTENT}
-- ARGV: P, id, status, fc ('' = keep), da ('' = keep), ua, from...
local from = {}
for i = 7, #ARGV do from[ARGV[i]] = true end
return transitionIntent(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], from)
`;

/**
 * A cancel's and a refund's reply is also kept RESENT_WITHIN_MS under the call's token
 * (`P..'kept:'..token`): the token on the record goes with it when the intent is evicted, which at
 * the bound can be at once (a final intent is the oldest, evicted by the next insert), and the
 * call sent again then answered not found, its event never sent (before 2026-12-06, a review).
 */
const KEPT_UNDER = "P .. 'kept:'";

/** PENDING → CANCELLED and, when it was PENDING, the backstop job: KEYS[3..5] and ARGV[5..9] are the scheduler's (RedisSchedulerStore.jobWrite). */
export const CANCEL_SCHEDULED = `${PRELUDE}${TRANSITION_INTENT}${SCHEDULE_JOB}${keepingReply(
  KEPT_UNDER,
  `
-- ARGV: P, id, now, token (the call's, unique), J, kind, key, dueAt, trace
local id, token = ARGV[2], ARGV[4]
-- This call's own cancel, run again: the client sent the script again after its reply was lost
-- (ioredis resends unanswered commands after a reconnect). The same answer, not a refusal.
if redis.call('HGET', rec(id), 'ct') == token then return {1, view(id)} end
local result = transitionIntent(id, 'CANCELLED', '', '', ARGV[3], {PENDING = true})
if result[1] == 1 then
  redis.call('HSET', rec(id), 'ct', token)
  scheduleJob(KEYS[3], KEYS[4], KEYS[5], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
end
return result
`,
  'reply[1] == 1',
  'ARGV[4]',
)}`;

/**
 * How many of an intent's last refunds a refund sent again is recognised among: the refunds that
 * can wait for their replies at once on one intent (a connection's commands are sent again together).
 */
export const REFUND_TOKENS = 16;

const REFUND_INTENT = `
-- Answers the reply ({'refunded', record, amount, time of the refund} or why not) and, when
-- refunded, the total refunded after it, and true when this was the refund run again (found by its
-- token: nothing changed now). token: the call's own (unique), or the one a request under an
-- Idempotency-Key noted on its key (its retry passes the same). A refund notes it in P..'rts:'..id,
-- a list of the intent's last REFUND_TOKENS refunds ('token amount total time', newest first), so
-- that the same call run again (the client sent the script again after its reply was lost: ioredis
-- resends unanswered commands after a reconnect, several refunds of one intent among them), or the
-- keyed retry of a request whose answer was lost, answers that refund, with the intent as it left
-- it and the refund's own time, instead of refunding twice. (Versions before 2026-12-02 kept the
-- last refund's only, on the record: rt and rl, still read; before 2026-12-05 an entry had no time.)
local function refundIntent(id, requested, now, token)
  local flat = redis.call('HGETALL', rec(id))
  if #flat == 0 then return {'not_found'} end
  local at = positions(flat)
  for _, entry in ipairs(redis.call('LRANGE', P .. 'rts:' .. id, 0, -1)) do
    local t, amount, total, when = string.match(entry, '^(%S+) (%d+) (%d+) ?(%S*)$')
    if t == token then
      if when == '' then when = now end
      -- The intent as this refund left it (later ones may have refunded more since).
      local state = 'PARTIALLY_REFUNDED'
      if total == flat[at.amt] then state = 'REFUNDED' end
      flat[at.ra], flat[at.s], flat[at.ua] = total, state, when
      return {'refunded', encode(flat, at), tonumber(amount), when}, tonumber(total), true
    end
  end
  if at.rt and flat[at.rt] == token then return {'refunded', encode(flat, at), tonumber(flat[at.rl]), now}, tonumber(flat[at.ra]), true end
  local before = flat[at.s]
  if before ~= 'APPROVED' and before ~= 'PARTIALLY_REFUNDED' then return {'invalid_state', encode(flat, at)} end
  local amount, refunded = tonumber(flat[at.amt]), tonumber(flat[at.ra])
  local left = amount - refunded
  local refund = left
  if requested ~= '' then refund = tonumber(requested) end
  if refund > left then return {'exceeds', encode(flat, at), left} end
  refunded = refunded + refund
  local after = 'PARTIALLY_REFUNDED'
  if refunded == amount then after = 'REFUNDED' end
  write(id, flat, at, {'ra', string.format('%d', refunded), 'ua', now, 's', after})
  redis.call('LPUSH', P .. 'rts:' .. id, token .. ' ' .. string.format('%d', refund) .. ' ' .. string.format('%d', refunded) .. ' ' .. now)
  redis.call('LTRIM', P .. 'rts:' .. id, 0, ${REFUND_TOKENS - 1})
  moveStatus(id, before, after, flat[at.ca])
  return {'refunded', encode(flat, at), refund, now}, refunded
end
`;

export const REFUND = `${PRELUDE}${REFUND_INTENT}${keepingReply(
  KEPT_UNDER,
  `
-- ARGV: P, id, amount ('' = all that is left), now, token
return (refundIntent(ARGV[2], ARGV[3], ARGV[4], ARGV[5]))
`,
  "reply[1] == 'refunded'",
)}`;

/**
 * The refund and, when it refunded, its backstop job under the key job key/refunded after/amount/now
 * (refundJobKey in src/core/intents/service.ts): KEYS[3..5] and ARGV[6..10] are the scheduler's.
 */
export const REFUND_SCHEDULED = `${PRELUDE}${REFUND_INTENT}${SCHEDULE_JOB}${keepingReply(
  KEPT_UNDER,
  `
-- ARGV: P, id, amount ('' = all that is left), now, token, J, kind, key, dueAt, trace
local reply, refunded, again = refundIntent(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
-- Run again, its job was scheduled by the first run (a replica may have claimed, or run, it since).
if reply[1] == 'refunded' and not again then
  local key = ARGV[8] .. '/' .. string.format('%d', refunded) .. '/' .. string.format('%d', reply[3]) .. '/' .. ARGV[4]
  scheduleJob(KEYS[3], KEYS[4], KEYS[5], ARGV[6], ARGV[7], key, ARGV[9], ARGV[10])
end
return reply
`,
  "reply[1] == 'refunded'",
  'ARGV[5]',
)}`;

export const LIST = `${PRELUDE}${WALK}
-- ARGV: P, limit, cursor, reservationId, status, scan budget ('' = no such filter or cursor)
local limit, cursor, rid, status, budget = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local key = KEYS[1]
local narrowest = nil
if rid ~= '' then narrowest = P .. 'res:' .. rid end
-- PENDING has no index: its intents are found by the walk's check of each record.
if status ~= '' and status ~= 'PENDING' then
  local byStatus = P .. 'st:' .. status
  if narrowest == nil or redis.call('ZCARD', byStatus) < redis.call('ZCARD', narrowest) then narrowest = byStatus end
end
if narrowest then key = narrowest end
return walk(key, cursor, limit, budget, function(id)
  local r = redis.call('HMGET', rec(id), 's', 'rid')
  return r[1] and (status == '' or r[1] == status) and (rid == '' or r[2] == rid)
end, view)
`;

export const COUNTS = `
-- ARGV: P, the final statuses; answers status, count, … and last 'PENDING', the intents in none of them
local out, final = {}, 0
for i = 2, #ARGV do
  local count = redis.call('ZCARD', ARGV[1] .. 'st:' .. ARGV[i])
  final = final + count
  out[#out + 1] = ARGV[i]
  out[#out + 1] = count
end
out[#out + 1] = 'PENDING'
out[#out + 1] = redis.call('ZCARD', KEYS[1]) - final
return out
`;
export const STATS = COUNT_ALL;

export const SWEEP = sweepScript(PRELUDE);
