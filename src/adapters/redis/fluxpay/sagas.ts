import { COMPENSATIONS } from '../../../core/fluxpay/model.ts';

/*
 * Sagas: P..'s:'..sagaId, a record hash (./records.ts: `b`, `.status`, `.steps`, `.failureReason`,
 * `.updatedAt`, `.completedAt`; plain `u`, `us` usageId, `sv` serviceId, `o` orderId or '', `cr`
 * credits or '', `plan` (its forward steps, comma-separated), `sd` (',' then step:status, for each
 * recorded step, each followed by ','), `ca`), P..'sa' (zset, score 0: every saga), P..'se' (zset:
 * finished sagas → createdAt), P..'su' (hash: userId..'\n'..usageId → sagaId). Inbound events:
 * P..'i:'..eventId (`b`, `.sagaId`; plain `fp`, its fingerprint), P..'ia' (zset: eventId →
 * receivedAt; every one, for the bound), P..'ie' (zset, the same: those that may go, by TTL or the
 * oldest at the bound: the events of sagas that have ended) and P..'sh:'..sagaId (set: the events
 * recorded for a saga that has not ended, moved to P..'ie' when it ends).
 */
export const SAGAS = `
local function saga(id) return P .. 's:' .. id end
local function inbound(eventId) return P .. 'i:' .. eventId end
local function did(id, step) return string.find(redis.call('HGET', saga(id), 'sd'), ',' .. step .. ':SUCCEEDED,', 1, true) ~= nil end
-- Over (succeeded or skipped): never run again.
local function settled(id, step)
  local sd = redis.call('HGET', saga(id), 'sd')
  return string.find(sd, ',' .. step .. ':SUCCEEDED,', 1, true) ~= nil or string.find(sd, ',' .. step .. ':SKIPPED,', 1, true) ~= nil
end
local COMPENSATIONS = {${COMPENSATIONS.map((step) => `'${step}'`).join(', ')}}
local function nextCompensation(id)
  for _, step in ipairs(COMPENSATIONS) do if not settled(id, step) then return step end end
  return nil
end
-- reason is JSON.
local function recordStep(id, step, kind, status, reason, now)
  local r = redis.call('HMGET', saga(id), '.steps', 'sd')
  local item = '{"step":"' .. step .. '","kind":"' .. kind .. '","status":"' .. status .. '","at":' .. now .. ',"reason":' .. reason .. '}'
  redis.call('HSET', saga(id), '.steps', append(r[1], item), 'sd', r[2] .. step .. ':' .. status .. ',', '.updatedAt', now)
end
local function removeInbound(eventId)
  redis.call('ZREM', P .. 'ie', eventId)
  redis.call('ZREM', P .. 'ia', eventId)
  return redis.call('DEL', inbound(eventId))
end
-- What an event id seen before did ({'conflict', event} for another body), or nil: it is new.
local function seen(eventId, fingerprint)
  local r = redis.call('HMGET', inbound(eventId), 'fp', '.sagaId')
  if not r[1] then return nil end
  if r[1] ~= fingerprint then return {'conflict', render(inbound(eventId))} end
  local of = ''
  if r[2] ~= 'null' then of = render(saga(unq(r[2]))) or '' end
  return {'duplicate', render(inbound(eventId)), of}
end
-- At the bound the oldest event that may go does (a saga's end is never refused for want of room to
-- remember it). The event itself may go once its saga has ended (finishSaga).
local function recordEvent(eventId, base, fingerprint, receivedAt, sagaId)
  room(P .. 'ia', P .. 'ie', removeInbound)
  redis.call('HSET', inbound(eventId), 'b', base, '.sagaId', q(sagaId), 'fp', fingerprint)
  redis.call('ZADD', P .. 'ia', receivedAt, eventId)
  local status = redis.call('HGET', saga(sagaId), '.status')
  if not status or status == '"COMPLETED"' or status == '"COMPENSATED"' then redis.call('ZADD', P .. 'ie', receivedAt, eventId)
  else redis.call('SADD', P .. 'sh:' .. sagaId, eventId) end
end
-- ORDER_RESERVED: the user's PAID order of the saga's service, held by no other saga and not one
-- that buys credits (cc), is now this saga's; the failure's code otherwise.
local function reserveOrder(id)
  local s = redis.call('HMGET', saga(id), 'o', 'u', '.updatedAt', 'sv')
  local o = {}
  if s[1] ~= '' then o = redis.call('HMGET', order(s[1]), 'u', '.status', '.sagaId', '.chargedCredits', 'cc', 'sv') end
  if s[1] == '' or o[1] ~= s[2] then return 'COMMON_404' end
  if o[2] ~= '"PAID"' or (o[3] ~= 'null' and o[3] ~= q(id)) or o[4] ~= 'null' or o[5] ~= '' or o[6] ~= s[4] then return 'PAY_004' end
  redis.call('HSET', order(s[1]), '.sagaId', q(id), '.updatedAt', s[3])
  return nil
end
-- CREDITS_DEDUCTED: the saga's credits from the user's balance, once per usageId; the failure's code otherwise.
local function deductForSaga(id, now, creditUsageId)
  local s = redis.call('HMGET', saga(id), 'u', 'us', 'sv', 'cr')
  local amount = tonumber(s[4]) or 0
  local holder = redis.call('HGET', usage(s[1] .. '\\n' .. s[2]), 'sid')
  if holder then
    if holder == id then return nil end
    return 'PAY_003'
  end
  if tonumber(redis.call('HGET', P .. 'bal', s[1]) or '0') < amount then return 'PAY_001' end
  wholeAmount('CREDIT_USED', amount)
  if not usageRoom() then return 'COMMON_503' end
  deduct(creditUsageId, s[1], s[3], s[2], amount, id, now, EV[1])
  return nil
end
-- Runs a compensation; answers why it was skipped (nothing to undo), or nil when it undid something.
local function compensate(id, step, now)
  local s = redis.call('HMGET', saga(id), 'u', 'us', 'o', '.failureReason')
  if step == 'CREDITS_RESTORED' then
    if not did(id, 'CREDITS_DEDUCTED') then return 'nothing deducted' end
    local member = s[1] .. '\\n' .. s[2]
    local status = redis.call('HGET', usage(member), '.status')
    if not status or status == '"REFUNDED"' then return 'already refunded' end
    refund(member, now, EV[1])
    return nil
  end
  if not did(id, 'ORDER_RESERVED') then return 'no order reserved' end
  local o = redis.call('HMGET', order(s[3]), '.status', '.paymentKey')
  if step == 'PAYMENT_CANCELLED' then
    if not o[1] or o[2] == 'null' or redis.call('HGET', payment(unq(o[2])), '.status') ~= '"APPROVED"' then return 'no approved payment' end
    cancelPayment(s[3], unq(o[2]), now)
    return nil
  end
  if not o[1] or o[1] == '"CANCELLED"' then return 'already cancelled' end
  local why = 'unknown'
  if s[4] ~= 'null' then why = unq(s[4]) end
  cancelOrder(s[3], q('usage ' .. s[2] .. ' failed: ' .. why), now, EV[2])
  return nil
end
local function finishSaga(id, status, now)
  redis.call('HSET', saga(id), '.status', status, '.completedAt', now, '.updatedAt', now)
  local s = redis.call('HMGET', saga(id), 'ca', 'o', 'u', 'us')
  redis.call('ZADD', P .. 'se', s[1], id)
  -- Its inbound events, its usage and its order may go now that no running saga holds them.
  for _, eventId in ipairs(redis.call('SMEMBERS', P .. 'sh:' .. id)) do
    local receivedAt = redis.call('ZSCORE', P .. 'ia', eventId)
    if receivedAt then redis.call('ZADD', P .. 'ie', receivedAt, eventId) end
  end
  redis.call('DEL', P .. 'sh:' .. id)
  usageOfSagaEnded(s[3] .. '\\n' .. s[4], id)
  if s[2] ~= '' then
    local o = redis.call('HMGET', order(s[2]), '.sagaId', '.status')
    if o[1] == q(id) and (o[2] == '"COMPLETED"' or o[2] == '"CANCELLED"') then evictable(s[2]) end
  end
end
local function removeSaga(id)
  redis.call('ZREM', P .. 'se', id)
  local s = redis.call('HMGET', saga(id), 'u', 'us')
  if not s[1] then return 0 end
  redis.call('DEL', saga(id), P .. 'sh:' .. id)
  redis.call('ZREM', P .. 'sa', id)
  local member = s[1] .. '\\n' .. s[2]
  if redis.call('HGET', P .. 'su', member) == id then redis.call('HDEL', P .. 'su', member) end
  return 1
end
`;

/** Arguments of an inbound event (eventId, base, fingerprint, receivedAt) start here in `start` and `resolve`. */
export const SAGA_SCRIPTS = {
  start: `
-- arg: sagaId, userId, usageId, createdAt, eventId, event base, fingerprint, receivedAt, then the saga's fields
local id, userId, usageId = arg(1), arg(2), arg(3)
-- The saga id is new with each start: the event recorded for it is this very start run again (its
-- reply lost, ioredis sent it again), which started the saga.
local recorded = redis.call('HMGET', inbound(arg(5)), '.sagaId', 'fp')
if recorded[1] == q(id) and recorded[2] == arg(7) then return {'started'} end
local earlier = seen(arg(5), arg(7))
if earlier then return earlier end
local member = userId .. '\\n' .. usageId
local taken = redis.call('HGET', P .. 'su', member)
if taken then
  local other = render(saga(taken))
  if other then return {'usage_taken', other} end
end
sweepAll(tonumber(arg(4)) - TTL)
if not room(P .. 'sa', P .. 'se', removeSaga) or not room(P .. 'ia', P .. 'ie', removeInbound) then return {'full'} end
redis.call('HSET', saga(id), unpack(ARGV, ${9 + 9}))
redis.call('ZADD', P .. 'sa', 0, id)
redis.call('HSET', P .. 'su', member, id)
recordEvent(arg(5), arg(6), arg(7), arg(8), id)
return {'started'}
`,
  getSaga: `return render(saga(arg(1))) or ''`,
  recent: `
-- arg: limit. Ids are saga_<ULID> under score 0: lexical order is creation order.
local out = {}
for _, id in ipairs(redis.call('ZREVRANGEBYLEX', P .. 'sa', '+', '-', 'LIMIT', 0, tonumber(arg(1)))) do out[#out + 1] = render(saga(id)) end
return {redis.call('ZCARD', P .. 'sa'), out}
`,
  ofUsage: `
-- arg: userId, usageId
local id = redis.call('HGET', P .. 'su', arg(1) .. '\\n' .. arg(2))
if not id then return '' end
return render(saga(id)) or ''
`,
  step: `
-- arg: sagaId, step, creditUsageId
local id, step = arg(1), arg(2)
local s = redis.call('HMGET', saga(id), '.status', 'plan')
if not s[1] then return {'not_found'} end
if settled(id, step) then return {'already', render(saga(id))} end
if step == 'ORDER_RESERVED' or step == 'CREDITS_DEDUCTED' then
  local planned, ready = false, true
  for forward in string.gmatch(s[2], '[^,]+') do
    if forward == step then
      planned = true
      break
    end
    if not did(id, forward) then ready = false end
  end
  if s[1] ~= '"RUNNING"' or not planned or not ready then return {'refused', render(saga(id))} end
  local reason
  if step == 'ORDER_RESERVED' then reason = reserveOrder(id) else reason = deductForSaga(id, NOW, arg(3)) end
  if reason then
    recordStep(id, step, 'ACTION', 'FAILED', q(reason), NOW)
    redis.call('HSET', saga(id), '.status', '"COMPENSATING"', '.failureReason', q(reason))
    return {'failed', render(saga(id)), reason}
  end
  recordStep(id, step, 'ACTION', 'SUCCEEDED', 'null', NOW)
  return {'done', render(saga(id))}
end
-- A compensation: only of a compensating saga, and only the next one due.
if step == 'ORDER_COMPLETED' or s[1] ~= '"COMPENSATING"' or nextCompensation(id) ~= step then return {'refused', render(saga(id))} end
local skipped = compensate(id, step, NOW)
if skipped then recordStep(id, step, 'COMPENSATION', 'SKIPPED', q(skipped), NOW) else recordStep(id, step, 'COMPENSATION', 'SUCCEEDED', 'null', NOW) end
if not nextCompensation(id) then finishSaga(id, '"COMPENSATED"', NOW) end
return {'done', render(saga(id))}
`,
  resolve: `
-- arg: sagaId, to (COMPLETED | COMPENSATING), reason (JSON), with an event ('1' or ''), eventId, event base, fingerprint, receivedAt
local id, withEvent = arg(1), arg(4) == '1'
if withEvent then
  local earlier = seen(arg(5), arg(7))
  if earlier then return earlier end
end
local s = redis.call('HMGET', saga(id), '.status', 'plan', 'o')
if not s[1] then return {'not_found'} end
local function remember() if withEvent then recordEvent(arg(5), arg(6), arg(7), arg(8), id) end end
if s[1] ~= '"RUNNING"' then
  -- The client's end contradicts how the saga ended (completed of a compensating or compensated
  -- saga, failed of a completed one): nothing changes, the event is not recorded (model.ts endContradicts).
  if withEvent and ((arg(2) == 'COMPLETED') ~= (s[1] == '"COMPLETED"')) then return {'contradicted', render(saga(id))} end
  remember()
  return {'final', render(saga(id))}
end
if arg(2) == 'COMPENSATING' then
  redis.call('HSET', saga(id), '.status', '"COMPENSATING"', '.failureReason', arg(3), '.updatedAt', NOW)
  remember()
  return {'resolved', render(saga(id))}
end
for forward in string.gmatch(s[2], '[^,]+') do
  if not did(id, forward) then return {'busy', render(saga(id))} end
end
if s[3] ~= '' then
  local o = redis.call('HMGET', order(s[3]), '.status', '.sagaId')
  if o[1] == '"PAID"' and o[2] == q(id) then
    local key = completeOrder(s[3], NOW)
    emit(P, MAX, EV[1], 'order.completed', 'order:' .. s[3], orderPayload(s[3], key), NOW, {s[3]})
  end
  recordStep(id, 'ORDER_COMPLETED', 'ACTION', 'SUCCEEDED', 'null', NOW)
end
finishSaga(id, '"COMPLETED"', NOW)
remember()
return {'resolved', render(saga(id))}
`,
  inbound: `return render(inbound(arg(1))) or ''`,
};
