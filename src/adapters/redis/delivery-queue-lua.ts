/*
 * The Lua scripts of the webhook delivery queue on Redis (`delivery-queue.ts`), one per atomic
 * operation on the delivery stream and its consumer group.
 */

/** Lua: `ownerOf(stream, group, id)`, the consumer that holds entry `id` in the group (nil when none does). */
const OWNER_OF = `
local function ownerOf(stream, group, id)
  local held = redis.call('XPENDING', stream, group, id, id, 1)
  if #held == 0 then return nil end
  return held[1][2]
end
`;

/*
 * Lua: `waitingOf(stream, group, busySuffix, repair)`, the deliveries waiting to start in the group:
 * not yet read (the group's lag), or read and not started (pending, less what the consumers named
 * `…<busy suffix>` hold: attempts in flight, which memory does not count either); and, second, the
 * id below which every entry has been acknowledged (older than both the oldest pending entry and
 * the last entry read). An error reply (NOGROUP) when the stream or its group is missing. With
 * `repair`, a lag found wrong (the group has read the last entry, and Redis still counts some
 * unread) is set right in Redis (XGROUP SETID … ENTRIESREAD), so it counts right from there.
 */
const WAITING_OF = `
-- Whether stream id a comes before b ('<ms>-<seq>'), the parts compared as digit strings (no
-- leading zeros): as numbers, parts past 2^53 would compare equal.
local function idBefore(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  local function lt(x, y) return #x < #y or (#x == #y and x < y) end
  return lt(am, bm) or (am == bm and lt(as, bs))
end
local function waitingOf(stream, group, suffix, repair)
  -- A stream deleted (its key alone, or a flush): XINFO would say 'no such key'; the caller makes the group again on NOGROUP.
  if redis.call('EXISTS', stream) == 0 then return redis.error_reply('NOGROUP the delivery stream does not exist') end
  local found
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    if g[2] == group then found = g end
  end
  if not found then return redis.error_reply('NOGROUP the delivery stream has no group ' .. group) end
  local info = {}
  for i = 1, #found, 2 do info[found[i]] = found[i + 1] end
  local pending, lag = info['pending'], info['lag']
  -- Lag is unknown after some deletions: then the whole stream counts as waiting (erring towards
  -- refusing). Nor is it ever more than the stream holds (read entries it still keeps, since the
  -- oldest one held, then count too: README), nor anything once the group has read its last entry:
  -- after each restart from the append-only file, Redis 7.0 grew it by what it had read
  -- (a user test: 15,393 on an idle queue of a few entries, so a WEBHOOK_QUEUE_MAX of 5,000 refused
  -- new deliveries as queue_full with nothing waiting).
  local length = redis.call('XLEN', stream)
  if not lag or lag > length then lag = length end
  if lag > 0 then
    local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
    if last and not idBefore(info['last-delivered-id'], last[1]) then
      lag = 0
      -- Read all there is: read as many as were ever added. Without this the wrong lag stayed, and
      -- while any entry was unread the count was the stream's whole length (a review: 2,002 for one).
      if repair then
        local added
        local stream_info = redis.call('XINFO', 'STREAM', stream)
        for i = 1, #stream_info, 2 do
          if stream_info[i] == 'entries-added' then added = stream_info[i + 1] end
        end
        if added then redis.call('XGROUP', 'SETID', stream, group, info['last-delivered-id'], 'ENTRIESREAD', added) end
      end
    end
  end
  local floor = info['last-delivered-id']
  if pending > 0 then
    local summary = redis.call('XPENDING', stream, group)
    floor = summary[2]
    for _, c in ipairs(summary[4]) do
      if string.sub(c[1], -#suffix) == suffix then pending = pending - tonumber(c[2]) end
    end
  end
  return lag + pending, floor
end
`;

/*
 * KEYS[1]: the stream (P .. 'whq'). ARGV: group, max (0: no bound), the delivery (JSON), the busy
 * suffix (run alone, a call token too: delivery-queue.ts wraps it in `keepingReply`, so a retry sent
 * again is not queued twice; ACCEPT, which embeds it, has a guard of its own). Refuses (0) when
 * `max` deliveries wait to start (`waitingOf`). Trims, with the same XADD, the entries below
 * `waitingOf`'s floor: those have all been acknowledged, so trimming never drops a delivery that
 * is waiting or held (`~`: only whole nodes go, cheaply).
 */
export const ENQUEUE = `${WAITING_OF}
local waiting, floor = waitingOf(KEYS[1], ARGV[1], ARGV[4], true)
if type(waiting) == 'table' then return waiting end
local max = tonumber(ARGV[2])
if max > 0 and waiting >= max then return 0 end
redis.call('XADD', KEYS[1], 'MINID', '~', floor, '*', 'd', ARGV[3])
return 1
`;

/*
 * KEYS[1]: the stream. ARGV: group, the busy suffix. Reads only: the deliveries waiting to start
 * (`waitingOf`, what ENQUEUE bounds), 0 when the stream or its group is missing (nothing waits).
 */
export const WAITING = `${WAITING_OF}
local waiting = waitingOf(KEYS[1], ARGV[1], ARGV[2], false)
if type(waiting) == 'table' then return 0 end
return waiting
`;

/*
 * KEYS[1]: the stream. ARGV: group, idle (ms). Removes the consumers that hold nothing and have not
 * read for `idle` (replicas gone: each start is a new consumer), in one step, so none can take an
 * entry between the check and the removal. A live consumer removed while idle is made again by its
 * next read. Answers how many went.
 */
export const FORGET_CONSUMERS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOGROUP the delivery stream does not exist') end
local gone = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    gone = gone + 1
  end
end
return gone
`;

/*
 * KEYS[1]: the stream. ARGV: group, entry id, consumer, its busy consumer. Hands an entry the
 * consumer holds back to the group: acknowledges it and appends its delivery again (field `h`:
 * whoever reads it checks the log first, as for a takeover), in one step, so the entry is never
 * both gone and not re-added. An entry another consumer has taken over meanwhile is left to it.
 * Answers 1 when handed back.
 */
export const HAND_BACK = `${OWNER_OF}
local owner = ownerOf(KEYS[1], ARGV[1], ARGV[2])
if owner ~= ARGV[3] and owner ~= ARGV[4] then return 0 end
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if #entry == 0 then return 0 end
local fields = entry[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'd' then
    redis.call('XADD', KEYS[1], '*', 'd', fields[i + 1], 'h', '1')
    return 1
  end
end
return 0
`;

/*
 * KEYS[1]: the stream. ARGV: group, consumer, its busy consumer, entry ids. Resets the idle time of
 * each entry still held by the consumer or its busy consumer (XCLAIM to the same owner, JUSTID: the
 * delivery count stays), so no other consumer takes over an entry a live consumer holds however long
 * it waits for its attempt (its read loop stopped with its read-ahead full, a rate-cap token, a slow
 * origin). An entry another consumer has taken over meanwhile is left to it. Answers how many.
 */
export const REFRESH = `${OWNER_OF}
local refreshed = 0
for i = 4, #ARGV do
  local owner = ownerOf(KEYS[1], ARGV[1], ARGV[i])
  if owner == ARGV[2] or owner == ARGV[3] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], owner, 0, ARGV[i], 'JUSTID')
    refreshed = refreshed + 1
  end
end
return refreshed
`;

/*
 * KEYS[1]: the stream. ARGV: group, entry id, consumer, its busy consumer. The entry's attempt
 * starts: it moves to the busy consumer, if the consumer still holds it (one another consumer took
 * over stays with that one). Answers 1 when moved.
 */
export const BEGIN = `${OWNER_OF}
if ownerOf(KEYS[1], ARGV[1], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[4], 0, ARGV[2], 'JUSTID')
return 1
`;
