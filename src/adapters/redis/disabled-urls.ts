import type { Redis } from 'ioredis';
import type { DisabledUrlStore } from '../../core/ports.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { keepingReply } from './lua.ts';

/*
 * KEYS[1] the hash (URL → when it was disabled), KEYS[2] the order (URL → a sequence number, in
 * the order they were disabled). An earlier version kept no order, and one still running during
 * an upgrade disables and enables without it. `placeUnordered` mends that: it drops from the order
 * the URLs no longer disabled and places the disabled ones it lacks before all others, oldest
 * disabledAt first. A disable runs it when the two differ in size, and when the bound takes a URL
 * that was no longer disabled (then as many may be missing from the order as it had extra).
 */
const ORDER = `
local function placeUnordered()
  for _, url in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if redis.call('HEXISTS', KEYS[1], url) == 0 then redis.call('ZREM', KEYS[2], url) end
  end
  local flat, missing = redis.call('HGETALL', KEYS[1]), {}
  for i = 1, #flat, 2 do
    if not redis.call('ZSCORE', KEYS[2], flat[i]) then missing[#missing + 1] = {flat[i], tonumber(flat[i + 1])} end
  end
  table.sort(missing, function(a, b) if a[2] ~= b[2] then return a[2] < b[2] end return a[1] < b[1] end)
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
  local before = (tonumber(first) or 1) - #missing - 1
  for i, m in ipairs(missing) do redis.call('ZADD', KEYS[2], before + i, m[1]) end
end
`;

/**
 * A disable and an enable keep their replies under their call's token (lua.ts `keepingReply`, in
 * `<prefix>disabled-urls:kept:<token>`): sent again after a lost reply (ioredis sends every
 * unanswered command again after a reconnect), a disable would undo an operator's enable made
 * meanwhile, and an enable a 410 that came since.
 */
// ARGV: url, at, maxUrls, token.
const DISABLE = keepingReply(
  "KEYS[1] .. ':kept:'",
  `${ORDER}
if redis.call('HLEN', KEYS[1]) ~= redis.call('ZCARD', KEYS[2]) then placeUnordered() end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {} end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
redis.call('ZADD', KEYS[2], (tonumber(last) or 0) + 1, ARGV[1])
local max, reenabled = tonumber(ARGV[3]), {}
while redis.call('HLEN', KEYS[1]) > max do
  local first = redis.call('ZPOPMIN', KEYS[2])[1]
  if not first then break end
  if redis.call('HDEL', KEYS[1], first) == 0 then placeUnordered() else reenabled[#reenabled + 1] = first end
end
return reenabled`,
);
// ARGV: url, token.
const ENABLE = keepingReply(
  "KEYS[1] .. ':kept:'",
  `redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])`,
);

/**
 * Every disabled URL with its time, in the order they were disabled (memory's), then any the order
 * lacks (an earlier version's). Before 2026-12-06 the hash's own order, which is none once a URL is
 * over 64 bytes or there are over 512 (a review).
 */
const LIST = `
local out, seen = {}, {}
for _, url in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local at = redis.call('HGET', KEYS[1], url)
  if at then
    out[#out + 1] = url
    out[#out + 1] = at
    seen[url] = true
  end
end
if #out / 2 < redis.call('HLEN', KEYS[1]) then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if not seen[all[i]] then
      out[#out + 1] = all[i]
      out[#out + 1] = all[i + 1]
    end
  end
end
return out
`;

/**
 * URLs that answered 410 Gone, shared by every replica: one hash, URL → when it was disabled, and
 * a sorted set of the order they were disabled in. A disable keeps the first time (HSETNX) and,
 * past `maxUrls`, re-enables the URLs disabled first, which it answers; an enable says whether the URL was there
 * (HDEL); each is one script that keeps its reply (above).
 */
export class RedisDisabledUrls implements DisabledUrlStore {
  readonly #client: Redis;
  readonly #keys: [string, string];
  readonly #maxUrls: number;
  readonly #disable: Script;
  readonly #enable: Script;
  readonly #list: Script;

  constructor(client: Redis, options: { keyPrefix: string; maxUrls: number }) {
    this.#client = client;
    this.#keys = [`${options.keyPrefix}disabled-urls`, `${options.keyPrefix}disabled-urls:order`];
    this.#maxUrls = options.maxUrls;
    this.#disable = defineScript(client, 'paysimUrlsDisable', DISABLE);
    this.#enable = defineScript(client, 'paysimUrlsEnable', ENABLE);
    this.#list = defineScript(client, 'paysimUrlsList', LIST);
  }

  async disable(url: string, at: number): Promise<string[]> {
    const reply: unknown = await this.#disable(this.#keys, [url, at, this.#maxUrls, callToken()]);
    // A number: the kept reply of a version before 2026-12-07 (0 or 1), which named none.
    return Array.isArray(reply) ? (reply as string[]) : [];
  }

  async enable(url: string): Promise<boolean> {
    return (await this.#enable(this.#keys, [url, callToken()])) === 1;
  }

  async isDisabled(url: string): Promise<boolean> {
    return (await this.#client.hexists(this.#keys[0], url)) === 1;
  }

  async list(): Promise<Array<{ url: string; disabledAt: number }>> {
    const flat = (await this.#list(this.#keys, [])) as string[];
    const urls: Array<{ url: string; disabledAt: number }> = [];
    for (let i = 0; i < flat.length; i += 2) urls.push({ url: flat[i] as string, disabledAt: Number(flat[i + 1]) });
    return urls;
  }
}
