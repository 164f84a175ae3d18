import { WALK } from '../lua.ts';

/*
 * Orders: P..'o:'..orderId, a record hash (./records.ts): `b`, `.status`, `.paymentKey`, `.sagaId`,
 * `.chargedCredits`, `.cancelReason`, `.updatedAt`, `.paidAt`, `.completedAt`, `.cancelledAt`; plain `u`
 * (userId), `a` (amount), `c` (currency), `sv` (serviceId), `cc` (the credits a CREDIT_CHARGE order
 * buys, '' for any other), `ca` (createdAt). P..'oa' (zset, score 0: every order; ULIDs sort in
 * creation order), P..'ou:'..userId (the same, a user's), P..'oe' (zset: finished orders that no
 * running saga holds → createdAt), P..'oc' (hash: status → orders, and cancelledAfterPayment).
 * Payments: P..'p:'..paymentKey (`b`, `.status`, `.failureCode`, `.decidedBy`, `.updatedAt`,
 * `.approvedAt`, `.confirmedAt`, `.failedAt`, `.cancelledAt`; plain `o`, its orderId) and
 * P..'op:'..orderId (list: its payment keys), P..'pn' (payments held, a count kept with every insert
 * and removal). A payment lives exactly as long as its order.
 */
export const ORDERS = `
local function order(id) return P .. 'o:' .. id end
local function payment(key) return P .. 'p:' .. key end
local function countOrder(status, paymentKey, by)
  redis.call('HINCRBY', P .. 'oc', unq(status), by)
  if status == '"CANCELLED"' and paymentKey ~= 'null' then redis.call('HINCRBY', P .. 'oc', 'cancelledAfterPayment', by) end
end
local function setOrderStatus(id, status)
  local r = redis.call('HMGET', order(id), '.status', '.paymentKey')
  countOrder(r[1], r[2], -1)
  redis.call('HSET', order(id), '.status', status)
  countOrder(status, r[2], 1)
end
-- The payload of an order event: the order and its payment (paymentKey is JSON: null or the key).
local function orderPayload(id, paymentKey)
  local paid = 'null'
  if paymentKey ~= 'null' then paid = render(payment(unq(paymentKey))) or 'null' end
  return '{"kind":"order","order":' .. render(order(id)) .. ',"payment":' .. paid .. '}'
end
local function evictable(id) redis.call('ZADD', P .. 'oe', redis.call('HGET', order(id), 'ca'), id) end
local function cancelPayment(orderId, key, now)
  redis.call('HSET', payment(key), '.status', '"CANCELLED"', '.cancelledAt', now, '.updatedAt', now)
  local o = redis.call('HMGET', order(orderId), 'a', 'c')
  post('PAYMENT_CANCELLED', TX, orderId, o[1], o[2], now)
end
-- Order → COMPLETED, its APPROVED payment → CONFIRMED; answers its paymentKey (JSON).
local function completeOrder(id, now)
  setOrderStatus(id, '"COMPLETED"')
  redis.call('HSET', order(id), '.completedAt', now, '.updatedAt', now)
  local r = redis.call('HMGET', order(id), '.paymentKey', '.sagaId')
  if r[1] ~= 'null' and redis.call('HGET', payment(unq(r[1])), '.status') == '"APPROVED"' then
    redis.call('HSET', payment(unq(r[1])), '.status', '"CONFIRMED"', '.confirmedAt', now, '.updatedAt', now)
  end
  if r[2] == 'null' then evictable(id) end
  return r[1]
end
-- Order → CANCELLED (a paid one with its payment refunded), with order.cancelled; reason is JSON. Answers its paymentKey (JSON).
local function cancelOrder(id, reason, now, eventId)
  local r = redis.call('HMGET', order(id), '.paymentKey', '.sagaId')
  if r[1] ~= 'null' and redis.call('HGET', payment(unq(r[1])), '.status') == '"APPROVED"' then cancelPayment(id, unq(r[1]), now) end
  setOrderStatus(id, '"CANCELLED"')
  redis.call('HSET', order(id), '.cancelReason', reason, '.cancelledAt', now, '.updatedAt', now)
  emit(P, MAX, eventId, 'order.cancelled', 'order:' .. id, orderPayload(id, r[1]), now, {id})
  if r[2] == 'null' or redis.call('HGET', P .. 's:' .. unq(r[2]), '.status') ~= '"RUNNING"' then evictable(id) end
  return r[1]
end
local NET = {PAYMENT_APPROVED = 1, PAYMENT_CANCELLED = -1}
local function removeOrder(id)
  redis.call('ZREM', P .. 'oe', id)
  local r = redis.call('HMGET', order(id), '.status', '.paymentKey', 'u')
  if not r[1] then return 0 end
  countOrder(r[1], r[2], -1)
  redis.call('DEL', order(id))
  redis.call('ZREM', P .. 'oa', id)
  redis.call('ZREM', P .. 'ou:' .. r[3], id)
  local keys = redis.call('LRANGE', P .. 'op:' .. id, 0, -1)
  for _, key in ipairs(keys) do redis.call('DEL', payment(key)) end
  if #keys > 0 then redis.call('DECRBY', P .. 'pn', #keys) end
  -- Its money postings leave with it; their net is kept, so the ledger's totals still reconcile.
  for _, json in ipairs(redis.call('LRANGE', P .. 'l:' .. id, 0, -1)) do
    local tx = cjson.decode(json)
    local sign = NET[tx.kind]
    if sign then redis.call('HINCRBY', P .. 'evnet', tx.entries[1].unit, n(sign * tx.entries[1].amount)) end
  end
  redis.call('DEL', P .. 'op:' .. id, P .. 'l:' .. id)
  return 1
end
-- Whether one more payment fits: payments count against MAX as orders do (each); at the bound the
-- oldest finished orders go, with their payments, until one fits; false when only open orders hold them.
local function paymentRoom()
  while tonumber(redis.call('GET', P .. 'pn') or '0') >= MAX do
    local oldest = redis.call('ZRANGE', P .. 'oe', 0, 0)[1]
    if not oldest then return false end
    removeOrder(oldest)
  end
  return true
end
`;

/** The scripts' own parts (after the prelude); arguments from arg(1). */
export const ORDER_SCRIPTS = {
  create: `
-- arg: orderId, userId, paymentKey (JSON), status (JSON), then the record's fields
local id = arg(1)
-- The id is new with each order: there already, it is this very create run again (its reply lost,
-- ioredis sent it again), which must not count it twice.
if redis.call('EXISTS', order(id)) == 1 then return 1 end
sweepAll(tonumber(NOW) - TTL)
if not room(P .. 'oa', P .. 'oe', removeOrder) then return 0 end
redis.call('HSET', order(id), unpack(ARGV, ${9 + 5}))
redis.call('ZADD', P .. 'oa', 0, id)
redis.call('ZADD', P .. 'ou:' .. arg(2), 0, id)
countOrder(arg(4), arg(3), 1)
return 1
`,
  getOrder: `return render(order(arg(1))) or ''`,
  list: `${WALK}
-- arg: limit, cursor, userId, status (JSON), scan budget ('' = no such filter or cursor)
local limit, cursor, user, status, budget = tonumber(arg(1)), arg(2), arg(3), arg(4), tonumber(arg(5))
local key = P .. 'oa'
if user ~= '' then key = P .. 'ou:' .. user end
return walk(key, cursor, limit, budget, function(id)
  local s = redis.call('HGET', order(id), '.status')
  return s and (status == '' or s == status)
end, function(id) return render(order(id)) end)
`,
  counts: `return redis.call('HGETALL', P .. 'oc')`,
  cancel: `
-- arg: orderId, reason (JSON)
local id = arg(1)
local r = redis.call('HMGET', order(id), '.status', '.sagaId')
if not r[1] then return {'not_found'} end
if r[1] ~= '"PENDING"' and r[1] ~= '"PAID"' then return {'order_state', render(order(id))} end
if r[2] ~= 'null' then return {'in_use', render(order(id))} end
local key = cancelOrder(id, arg(2), NOW, EV[1])
local paid = ''
if key ~= 'null' then paid = render(payment(unq(key))) or '' end
return {'cancelled', render(order(id)), paid}
`,
  createPayment: `
-- arg: orderId, paymentKey, then the record's fields
local orderId, key = arg(1), arg(2)
-- The key is new with each payment: there already, it is this very create run again (its reply
-- lost, ioredis sent it again), which must neither count it twice nor answer otherwise.
if redis.call('EXISTS', payment(key)) == 1 then return {'created'} end
local status = redis.call('HGET', order(orderId), '.status')
if not status then return {'order_not_found'} end
if status ~= '"PENDING"' then return {'order_state', render(order(orderId))} end
if not paymentRoom() then return {'full'} end
redis.call('RPUSH', P .. 'op:' .. orderId, key)
redis.call('HSET', payment(key), unpack(ARGV, ${9 + 3}))
redis.call('INCR', P .. 'pn')
return {'created'}
`,
  getPayment: `return render(payment(arg(1))) or ''`,
  confirm: `
-- arg: paymentKey, orderId, amount, status (APPROVED | FAILED), failureCode (JSON), decidedBy (JSON)
local key, orderId, amount = arg(1), arg(2), tonumber(arg(3))
local p = redis.call('HMGET', payment(key), 'o', '.status')
if not p[1] then return {'not_found'} end
if p[1] ~= orderId then return {'order_mismatch', render(payment(key))} end
local o = redis.call('HMGET', order(orderId), 'a', '.status', 'c')
if not o[1] then return {'not_found'} end
if amount ~= tonumber(o[1]) then return {'amount_mismatch', render(payment(key)), render(order(orderId))} end
if p[2] ~= '"READY"' then return {'already_processed', render(payment(key))} end
if o[2] ~= '"PENDING"' then return {'order_state', render(payment(key)), render(order(orderId))} end
-- An amount that cannot be posted stops the script before it writes anything.
if arg(4) ~= 'FAILED' then wholeAmount('PAYMENT_APPROVED', o[1]) end
redis.call('HSET', payment(key), '.decidedBy', arg(6), '.updatedAt', NOW)
if arg(4) == 'FAILED' then
  redis.call('HSET', payment(key), '.status', '"FAILED"', '.failureCode', arg(5), '.failedAt', NOW)
  emit(P, MAX, EV[1], 'payment.failed', 'payment:' .. key, '{"kind":"payment","payment":' .. render(payment(key)) .. '}', NOW, {orderId})
  return {'failed', render(payment(key)), render(order(orderId))}
end
redis.call('HSET', payment(key), '.status', '"APPROVED"', '.approvedAt', NOW)
setOrderStatus(orderId, '"PAID"')
redis.call('HSET', order(orderId), '.paymentKey', q(key), '.paidAt', NOW, '.updatedAt', NOW)
post('PAYMENT_APPROVED', TX, orderId, o[1], o[3], NOW)
emit(P, MAX, EV[1], 'payment.approved', 'payment:' .. key, '{"kind":"payment","payment":' .. render(payment(key)) .. '}', NOW, {orderId})
return {'approved', render(payment(key)), render(order(orderId))}
`,
  complete: `
-- arg: orderId
local id = arg(1)
local r = redis.call('HMGET', order(id), '.status', '.sagaId', 'cc')
if not r[1] then return {'not_found'} end
if r[1] ~= '"PAID"' or r[2] ~= 'null' or r[3] ~= '' then return {'order_state', render(order(id))} end
local key = completeOrder(id, NOW)
emit(P, MAX, EV[1], 'order.completed', 'order:' .. id, orderPayload(id, key), NOW, {id})
return {'completed', render(order(id))}
`,
};
