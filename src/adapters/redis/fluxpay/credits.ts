import { WALK } from '../lua.ts';

/*
 * Credits: P..'bal' (hash: userId → balance), P..'ct' (hash: userId..'\t'..charged|used|refunded →
 * running total) and P..'busers' (zset, score 0: every user with a balance, by id), never evicted
 * (users' money: a first charge for one user more than the bound is refused). Usages: P..'u:'..userId..'\n'..usageId, a record hash
 * (./records.ts: `b`, `.status`, `.refundedAt`; plain `cu` creditUsageId, `a` amount, `sid` sagaId or
 * '', `u`, `us` usageId, `sv` serviceId), P..'ua' (zset: userId..'\n'..usageId → createdAt; every
 * usage, for the bound and the snapshot) and P..'ue' (zset, the same: the usages that may go, by TTL
 * or the oldest at the bound: one of no saga at once, a saga's once the saga has ended, so that its
 * compensation finds it to refund). Credit transactions: P..'t:'..id (`b`: the
 * transaction, `u`: its user, `nb`: the user's net use, deducted minus refunded, before it),
 * P..'ut:'..userId (zset, score 0: a user's ids, for the listing), and two zsets scored by write
 * order: P..'te' (every transaction, for the TTL and the bound: the first written goes first) and
 * P..'un:'..userId (a user's, to find the first written since a time). The write order is
 * P..'tseq', the last one given: a transaction's is its createdAt × 1,000, or one more than the
 * last when that is not more (several in one millisecond, or a replica whose clock is behind), so
 * it follows the order Redis ran the scripts in, which ids from several processes do not.
 */
export const CREDITS = `
local function usage(member) return P .. 'u:' .. member end
local TOTAL = {CHARGE = 'charged', USE = 'used', REFUND = 'refunded'}
local POSTING = {CHARGE = 'CREDIT_CHARGED', USE = 'CREDIT_USED', REFUND = 'CREDIT_REFUNDED'}
local function removeTransaction(id)
  redis.call('ZREM', P .. 'te', id)
  local user = redis.call('HGET', P .. 't:' .. id, 'u')
  if not user then return 0 end
  redis.call('DEL', P .. 't:' .. id)
  redis.call('ZREM', P .. 'ut:' .. user, id)
  redis.call('ZREM', P .. 'un:' .. user, id)
  return 1
end
-- ULID-keyed ids (tx_<10 characters of time, 16 of randomness>, Crockford base32).
local CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
local function idTime(id)
  local t = 0
  for i = 4, 13 do t = t * 32 + ((CROCKFORD:find(id:sub(i, i), 1, true) or 1) - 1) end
  return t
end
local function withTime(id, t)
  local chars = {}
  for i = 10, 1, -1 do
    local d = t % 32
    chars[i] = CROCKFORD:sub(d + 1, d + 1)
    t = (t - d) / 32
  end
  return id:sub(1, 3) .. table.concat(chars) .. id:sub(14)
end
-- A credit movement: the balance, the running total, the ledger transaction and the credit transaction
-- (both TX); the about* arguments are JSON. Answers the transaction's JSON and the balance after.
-- A user's transactions are listed by id, so TX must sort after the user's others: an id made by a
-- replica whose clock is behind, or in the same millisecond on another replica, would otherwise be
-- listed before changes it followed. Such an id takes the time of the user's greatest one millisecond
-- on (its own randomness kept, so it is no other id), and the list is in the order Redis applied the
-- changes.
local function moveCredits(kind, userId, amount, now, aboutOrder, aboutUsage, aboutService, reference)
  local greatest = redis.call('ZREVRANGEBYLEX', P .. 'ut:' .. userId, '+', '-', 'LIMIT', 0, 1)[1]
  if greatest and TX <= greatest then TX = withTime(TX, idTime(greatest) + 1) end
  local a = wholeAmount(POSTING[kind], amount)
  local signed = a
  if kind == 'USE' then signed = -a end
  local after = redis.call('HINCRBY', P .. 'bal', userId, n(signed))
  redis.call('ZADD', P .. 'busers', 'NX', 0, userId)
  local totals = redis.call('HMGET', P .. 'ct', userId .. '\\tused', userId .. '\\trefunded')
  local usedBefore = tonumber(totals[1] or '0') - tonumber(totals[2] or '0')
  redis.call('HINCRBY', P .. 'ct', userId .. '\\t' .. TOTAL[kind], n(a))
  post(POSTING[kind], TX, reference, a, CREDIT, now)
  local json = '{"transactionId":' .. q(TX) .. ',"userId":' .. q(userId) .. ',"type":"' .. kind .. '","amount":' .. n(a) .. ',"balanceAfter":' .. n(after)
    .. ',"orderId":' .. aboutOrder .. ',"usageId":' .. aboutUsage .. ',"serviceId":' .. aboutService .. ',"createdAt":' .. now .. '}'
  room(P .. 'te', P .. 'te', removeTransaction)
  local seq = n(math.max(tonumber(now) * 1000, tonumber(redis.call('GET', P .. 'tseq') or '0') + 1))
  redis.call('SET', P .. 'tseq', seq)
  redis.call('HSET', P .. 't:' .. TX, 'b', json, 'u', userId, 'nb', n(usedBefore))
  redis.call('ZADD', P .. 'ut:' .. userId, 0, TX)
  redis.call('ZADD', P .. 'un:' .. userId, seq, TX)
  redis.call('ZADD', P .. 'te', seq, TX)
  return json, after
end
local function creditPayload(tx, member) return '{"kind":"credit","transaction":' .. tx .. ',"usage":' .. render(usage(member)) .. '}' end
-- A new DEDUCTED usage and its movement, with credit.deducted; sagaId '' for none.
local function deduct(cuid, userId, serviceId, usageId, amount, sagaId, now, eventId)
  local member = userId .. '\\n' .. usageId
  local sid = 'null'
  if sagaId ~= '' then sid = q(sagaId) end
  local base = '{"creditUsageId":' .. q(cuid) .. ',"usageId":' .. q(usageId) .. ',"userId":' .. q(userId) .. ',"serviceId":' .. q(serviceId)
    .. ',"amount":' .. n(amount) .. ',"sagaId":' .. sid .. ',"createdAt":' .. now .. '}'
  redis.call('HSET', usage(member), 'b', base, '.status', '"DEDUCTED"', '.refundedAt', 'null', 'cu', cuid, 'a', n(amount), 'sid', sagaId,
    'u', userId, 'us', usageId, 'sv', serviceId)
  redis.call('ZADD', P .. 'ua', now, member)
  if sagaId == '' then redis.call('ZADD', P .. 'ue', now, member) end
  local tx, after = moveCredits('USE', userId, amount, now, 'null', q(usageId), q(serviceId), cuid)
  emit(P, MAX, eventId, 'credit.deducted', 'credit:' .. userId, creditPayload(tx, member), now, {})
  return tx, after
end
-- A DEDUCTED usage → REFUNDED, its credits back, with credit.refunded.
local function refund(member, now, eventId)
  redis.call('HSET', usage(member), '.status', '"REFUNDED"', '.refundedAt', now)
  local r = redis.call('HMGET', usage(member), 'u', 'a', 'cu', 'us', 'sv')
  local tx, after = moveCredits('REFUND', r[1], r[2], now, 'null', q(r[4]), q(r[5]), r[3])
  emit(P, MAX, eventId, 'credit.refunded', 'credit:' .. r[1], creditPayload(tx, member), now, {})
  return tx, after
end
local function removeUsage(member)
  redis.call('ZREM', P .. 'ue', member)
  redis.call('ZREM', P .. 'ua', member)
  local cu = redis.call('HGET', usage(member), 'cu')
  if not cu then return 0 end
  redis.call('DEL', usage(member), P .. 'l:' .. cu)
  return 1
end
local function usageRoom() return room(P .. 'ua', P .. 'ue', removeUsage) end
-- The saga sagaId of member has ended: its usage, if it made one, may go from now on.
local function usageOfSagaEnded(member, sagaId)
  if redis.call('HGET', usage(member), 'sid') ~= sagaId then return end
  local createdAt = redis.call('ZSCORE', P .. 'ua', member)
  if createdAt then redis.call('ZADD', P .. 'ue', createdAt, member) end
end
`;

/** Users of an earlier version's balances a read of `balances` indexes at most (about 2 ms of Redis). */
export const BACKFILL_USERS = 1_000;

export const CREDIT_SCRIPTS = {
  /**
   * The first `limit` users by id (P..'busers', score 0: in byte order) with their balances and
   * running totals, and how many users there are: what the console's panel shows on each live update
   * (before 2026-12-06 every user's, sorted in the store: a review measured 631 ms of Redis for
   * 200,000 users, each refresh). Users an earlier version charged, not in the index, go in
   * BACKFILL_USERS a read (HSCAN from the cursor in P..'busers:scan'), so no read holds Redis for
   * all of them (a review: 0.4 s for 200,000 in one go, at each read while an older replica still
   * charged new users); until then the first users shown may lack some of them.
   */
  balances: `
-- arg: limit
local total = redis.call('HLEN', P .. 'bal')
if redis.call('ZCARD', P .. 'busers') < total then
  local scan = redis.call('HSCAN', P .. 'bal', redis.call('GET', P .. 'busers:scan') or '0', 'COUNT', ${BACKFILL_USERS})
  for i = 1, #scan[2], 2 do redis.call('ZADD', P .. 'busers', 'NX', 0, scan[2][i]) end
  redis.call('SET', P .. 'busers:scan', scan[1])
end
local rows = {}
local limit = tonumber(arg(1))
if limit < 1 then return {total, rows} end
for _, userId in ipairs(redis.call('ZRANGE', P .. 'busers', 0, limit - 1)) do
  local t = redis.call('HMGET', P .. 'ct', userId .. '\\tcharged', userId .. '\\tused', userId .. '\\trefunded')
  rows[#rows + 1] = {userId, redis.call('HGET', P .. 'bal', userId) or '0', t[1] or '0', t[2] or '0', t[3] or '0'}
end
return {total, rows}
`,
  charge: `
-- arg: userId, orderId, the most users with a balance (balances never go: a first charge for one more is refused)
local userId, id = arg(1), arg(2)
local r = redis.call('HMGET', order(id), 'u', 'cc', '.chargedCredits', '.status', '.sagaId', 'sv')
if not r[1] or r[1] ~= userId then return {'not_found'} end
if r[2] == '' then return {'not_charge_order', render(order(id))} end
if r[3] ~= 'null' then return {'already_charged', render(order(id))} end
if r[4] ~= '"PAID"' or r[5] ~= 'null' then return {'order_state', render(order(id))} end
if redis.call('HEXISTS', P .. 'bal', userId) == 0 and redis.call('HLEN', P .. 'bal') >= tonumber(arg(3)) then return {'users_full', render(order(id))} end
local tx, after = moveCredits('CHARGE', userId, r[2], NOW, q(id), 'null', q(r[6]), id)
redis.call('HSET', order(id), '.chargedCredits', r[2])
local key = completeOrder(id, NOW)
emit(P, MAX, EV[1], 'credit.charged', 'credit:' .. userId, '{"kind":"credit","transaction":' .. tx .. ',"usage":null}', NOW, {id})
emit(P, MAX, EV[2], 'order.completed', 'order:' .. id, orderPayload(id, key), NOW, {id})
return {'charged', render(order(id)), tx, after}
`,
  use: `
-- arg: userId, serviceId, usageId, amount, creditUsageId
local userId, usageId, amount = arg(1), arg(3), tonumber(arg(4))
local member = userId .. '\\n' .. usageId
local existing = render(usage(member))
if existing then return {'duplicate', existing} end
local balance = tonumber(redis.call('HGET', P .. 'bal', userId) or '0')
if balance < amount then return {'insufficient', balance} end
wholeAmount('CREDIT_USED', amount)
sweepAll(tonumber(NOW) - TTL)
if not usageRoom() then return {'full'} end
local tx, after = deduct(arg(5), userId, arg(2), usageId, amount, '', NOW, EV[1])
return {'deducted', render(usage(member)), tx, after}
`,
  refund: `
-- arg: userId, usageId
local member = arg(1) .. '\\n' .. arg(2)
local status = redis.call('HGET', usage(member), '.status')
if not status then return {'not_found'} end
if status == '"REFUNDED"' then return {'already_refunded', render(usage(member))} end
local sagaId = redis.call('HGET', usage(member), 'sid')
if sagaId and sagaId ~= '' then return {'saga_held', render(usage(member))} end
local tx, after = refund(member, NOW, EV[1])
return {'refunded', render(usage(member)), tx, after}
`,
  /**
   * The net use of all time and since a time (the store's creditsUsed): {'used', total, total less
   * `nb` of the user's first transaction written since then}; {'walk', total, the credits moved in
   * all (charged + used + refunded: grows with every movement)} when the user has transactions an
   * earlier version wrote (not in P..'un:', or without `nb`: the store then walks them). A member
   * whose transaction is gone (an earlier version's sweep removed it without its P..'un:' entry) is
   * dropped.
   */
  usedSince: `
-- arg: userId, since
local user = arg(1)
local index = P .. 'un:' .. user
local totals = redis.call('HMGET', P .. 'ct', user .. '\\tused', user .. '\\trefunded', user .. '\\tcharged')
local used, refunded, charged = tonumber(totals[1] or '0'), tonumber(totals[2] or '0'), tonumber(totals[3] or '0')
local total = used - refunded
local function walk() return {'walk', total, used + refunded + charged} end
if redis.call('ZCARD', index) < redis.call('ZCARD', P .. 'ut:' .. user) then return walk() end
for _ = 1, 1000 do
  local first = redis.call('ZRANGEBYSCORE', index, tonumber(arg(2)) * 1000, '+inf', 'LIMIT', 0, 1)[1]
  if not first then return {'used', total, 0} end
  local before = redis.call('HGET', P .. 't:' .. first, 'nb')
  if before then return {'used', total, total - tonumber(before)} end
  if redis.call('EXISTS', P .. 't:' .. first) == 1 then return walk() end
  redis.call('ZREM', index, first)
end
return walk()
`,
  transactions: `${WALK}
-- arg: userId, limit, cursor, scan budget
return walk(P .. 'ut:' .. arg(1), arg(3), tonumber(arg(2)), tonumber(arg(4)), function(id) return redis.call('EXISTS', P .. 't:' .. id) == 1 end,
  function(id) return redis.call('HGET', P .. 't:' .. id, 'b') end)
`,
};
