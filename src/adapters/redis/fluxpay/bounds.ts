/**
 * The TTL sweep over every kind of evictable record (needs the removers of ./orders.ts,
 * ./credits.ts, ./sagas.ts and the outbox's). `sweepAll(cutoff)` removes, per kind, at most
 * BATCH records created (events: occurred) at or before `cutoff`, and answers {removed, the most
 * any kind looked at}: a store's `sweep` runs it again while a kind filled its batch.
 */
export const BOUNDS = `
local function sweepSet(key, cutoff, remove)
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff, 'LIMIT', 0, BATCH)
  local removed = 0
  for _, id in ipairs(ids) do removed = removed + remove(id) end
  return removed, #ids
end
local function sweepAll(cutoff)
  local kinds = {
    {P .. 'oe', removeOrder}, {P .. 'se', removeSaga}, {P .. 'ue', removeUsage}, {P .. 'ie', removeInbound},
    {P .. 'opub', function(id) return removeEvent(P, id) end},
    -- Scored by write order (./credits.ts): createdAt × 1,000 and a count within the millisecond.
    {P .. 'te', removeTransaction, cutoff * 1000 + 999},
  }
  local removed, most = 0, 0
  for _, kind in ipairs(kinds) do
    local gone, looked = sweepSet(kind[1], kind[3] or cutoff, kind[2])
    removed = removed + gone
    if looked > most then most = looked end
  end
  return {removed, most}
end
`;

export const BOUND_SCRIPTS = {
  sweep: `return sweepAll(tonumber(NOW) - TTL)`,
  stats: `return redis.call('ZCARD', P .. 'oa')`,
  /** Payments held: P..'pn', the count every insert and eviction keeps (0 before the first payment). */
  paymentStats: `return tonumber(redis.call('GET', P .. 'pn') or '0')`,
  /** Users with a credit balance (P..'bal', never evicted: ./credits.ts). */
  creditUserStats: `return redis.call('HLEN', P .. 'bal')`,
  /**
   * A store an earlier version wrote kept every usage in P..'ue' alone and every inbound event in
   * P..'ie' alone: P..'ua' and P..'ia' (all of them) are made from those, once each. It scored
   * P..'te' by createdAt and had no P..'tseq': its transactions are scored in write order's units
   * (× 1,000), once (P..'tseq' is then set, here or by the first transaction written). It kept no
   * count of payments held, P..'pn': counted from each order's list of payments, once (it is then
   * set, here or by the first payment made).
   */
  adoptEarlierLayout: `
local adopted = 0
for _, kind in ipairs({'u', 'i'}) do
  local all, evictable = P .. kind .. 'a', P .. kind .. 'e'
  if redis.call('EXISTS', all) == 0 and redis.call('EXISTS', evictable) == 1 then adopted = adopted + redis.call('ZUNIONSTORE', all, 1, evictable) end
end
if redis.call('EXISTS', P .. 'tseq') == 0 then
  local last = 0
  local scored = redis.call('ZRANGE', P .. 'te', 0, -1, 'WITHSCORES')
  for i = 1, #scored, 2 do
    last = tonumber(scored[i + 1]) * 1000
    redis.call('ZADD', P .. 'te', n(last), scored[i])
    adopted = adopted + 1
  end
  redis.call('SET', P .. 'tseq', n(last))
end
if redis.call('EXISTS', P .. 'pn') == 0 then
  local held = 0
  for _, id in ipairs(redis.call('ZRANGE', P .. 'oa', 0, -1)) do held = held + redis.call('LLEN', P .. 'op:' .. id) end
  if held > 0 then
    redis.call('SET', P .. 'pn', n(held))
    adopted = adopted + held
  end
end
return adopted
`,
  /** Everything the reconciliation compares, in one step. */
  snapshot: `
local orders, payments, usages, sagas = {}, {}, {}, {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'oa', 0, -1)) do
  orders[#orders + 1] = render(order(id))
  for _, key in ipairs(redis.call('LRANGE', P .. 'op:' .. id, 0, -1)) do payments[#payments + 1] = render(payment(key)) end
end
for _, member in ipairs(redis.call('ZRANGE', P .. 'ua', 0, -1)) do usages[#usages + 1] = render(usage(member)) end
for _, id in ipairs(redis.call('ZRANGE', P .. 'sa', 0, -1)) do sagas[#sagas + 1] = render(saga(id)) end
local pending = redis.call('ZCARD', P .. 'opend')
return {orders, payments, usages, sagas, redis.call('HGETALL', P .. 'bal'), redis.call('HGETALL', P .. 'ct'), redis.call('HGETALL', P .. 'acct'),
  redis.call('HGETALL', P .. 'evnet'), pending, redis.call('ZCARD', P .. 'oall') - pending}
`,
};
