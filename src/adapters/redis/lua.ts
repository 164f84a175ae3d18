import { RESENT_WITHIN_MS } from './connection.ts';

/**
 * Lua shared by the adapters' scripts. `walk` pages newest first through a sorted set whose
 * members all have score 0 (so they sort lexically, which for ULIDs is creation order), after
 * `cursor` ('' for the first page): `matches(id)` picks records and `view(id)` renders one. It
 * looks at `budget` members at most, as memory's lists do: a page cut short answers the last
 * member it looked at as its cursor, so the next page resumes there.
 */
export const WALK = `
local function walk(key, cursor, limit, budget, matches, view)
  local max = '+'
  if cursor ~= '' then max = '(' .. cursor end
  local data, last, previous, examined = {}, '', '', 0
  while true do
    local ids = redis.call('ZREVRANGEBYLEX', key, max, '-', 'LIMIT', 0, 500)
    if #ids == 0 then return {'', data} end
    for _, id in ipairs(ids) do
      if examined == budget then return {previous, data} end
      examined = examined + 1
      if matches(id) then
        if #data == limit then return {last, data} end
        data[#data + 1] = view(id)
        last = id
      end
      previous = id
    end
    max = '(' .. ids[#ids]
  end
end
`;

/** A record hash (HGETALL's flat field/value list) as an object. */
export function fieldsOf(flat: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
  return fields;
}

/**
 * The bounds of a store of records that may be evicted once final: `ALL` (a sorted set of every
 * record) and `EVICT` (final records by creation time) must be defined before it, and `remove(id)`
 * (1 when a record went). `sweep` removes final records created at or before `cutoff`, at most
 * `batch` of them, and answers {removed, looked at}; `makeRoom` evicts the oldest final records
 * until there is room below `max`, false when only unfinished ones are left.
 */
export const BOUNDS = `
local function sweep(cutoff, batch)
  local ids = redis.call('ZRANGEBYSCORE', EVICT, '-inf', cutoff, 'LIMIT', 0, batch)
  local evicted = 0
  for _, id in ipairs(ids) do evicted = evicted + remove(id) end
  return {evicted, #ids}
end
local function makeRoom(max)
  while redis.call('ZCARD', ALL) >= max do
    local oldest = redis.call('ZRANGE', EVICT, 0, 0)[1]
    if not oldest then return false end
    remove(oldest)
  end
  return true
end
`;

/** The script of a store's `sweep`, on its prelude (which includes `BOUNDS`). ARGV: P, cutoff, batch. */
export const sweepScript = (prelude: string): string => `${prelude}
return sweep(tonumber(ARGV[2]), tonumber(ARGV[3]))
`;

/** The script of a store's `stats`: how many records `ALL` (KEYS[1]) holds. */
export const COUNT_ALL = `return redis.call('ZCARD', KEYS[1])`;

/**
 * A script whose second run (its reply lost, ioredis sent it again after a reconnect) must answer
 * what the first did and change nothing more, where nothing on the records tells it (several calls
 * on one record may be sent again together, or the record is gone): the call's token is its last
 * argument, and `body`'s reply is kept RESENT_WITHIN_MS (Redis' own expiry) under
 * `<keyPrefix><token>`, where `keyPrefix` is a Lua expression; a run that finds it answers it. An
 * error reply is not kept (the caller may mend what it says and send the same call again). A run
 * later than that answers as `body` does. `keepIf`, a Lua expression of `reply`, keeps only the
 * replies a second run would not give again (a read that admitted tickets: a second run admits
 * none), so a script run on every poll writes a key only when it changed something. `token`, a Lua
 * expression, is where the call's token is when it is not the last argument.
 */
export function keepingReply(keyPrefix: string, body: string, keepIf = 'true', token = 'ARGV[#ARGV]'): string {
  return `
local KEPT = ${keyPrefix} .. ${token}
local kept = redis.call('GET', KEPT)
if kept then return cmsgpack.unpack(kept) end
local function run()
${body}
end
local reply = run()
if (type(reply) ~= 'table' or not reply.err) and (${keepIf}) then redis.call('SET', KEPT, cmsgpack.pack(reply), 'PX', ${RESENT_WITHIN_MS}) end
return reply
`;
}
