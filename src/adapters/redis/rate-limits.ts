import type { Redis } from 'ioredis';
import type { StoreStats } from '../../core/ports.ts';
import type { RateLimitStore, RateLimitWindow } from '../../core/rate-limit/ports.ts';
import { callToken, defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';

export interface RedisRateLimitStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** Keys (client and route group) held at once; beyond it the least recently started window goes first. */
  maxKeys: number;
}

/*
 * Keys (R = prefix .. 'rl:'): KEYS[1] R..'n' (hash: key → requests in its window), KEYS[2] R..'ends'
 * (zset: key → when its window ends), KEYS[3] R..'starts' (zset: key → the sequence number of its
 * window's start, for eviction), KEYS[4] R..'seq' (counter), KEYS[5] R..'tok' (hash: key → the call
 * token of its last hit).
 */
const FORGET = `
local function forget(key)
  redis.call('HDEL', KEYS[1], key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
  redis.call('HDEL', KEYS[5], key)
end
`;

/*
 * ARGV: key, windowMs, now, maxKeys, token. Answers {count, resetAt} (resetAt as a string: a Lua
 * number would come back truncated). A hit sent again after a lost reply (ioredis sends it again on
 * its next connection) finds its token as the key's last and answers the count as it is, not the
 * next one: before 2026-12-04 it counted its request twice, and a client was refused a request
 * early. Only the last hit's token is kept (one field per key, no key per call): any other hit of the
 * same key in between makes the second run count again, another replica's or this replica's own
 * sent with it (a review; keeping the last 8 hits' tokens made every hit 0.77× as fast: README).
 */
const HIT = `${FORGET}
local key, now, token = ARGV[1], tonumber(ARGV[3]), ARGV[5]
local ends = redis.call('ZSCORE', KEYS[2], key)
if ends and tonumber(ends) > now then
  if redis.call('HGET', KEYS[5], key) == token then return {tonumber(redis.call('HGET', KEYS[1], key)), ends} end
  redis.call('HSET', KEYS[5], key, token)
  return {redis.call('HINCRBY', KEYS[1], key, 1), ends}
end
if ends then
  forget(key)
elseif redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then
  forget(redis.call('ZRANGE', KEYS[3], 0, 0)[1])
end
local resetAt = string.format('%.17g', now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], key, 1)
redis.call('HSET', KEYS[5], key, token)
redis.call('ZADD', KEYS[2], resetAt, key)
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), key)
return {1, resetAt}
`;

const SWEEP = `${FORGET}
-- ARGV: now, batch. Windows that ended at or before now; answers {removed, looked at} (the same here).
local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, key in ipairs(keys) do forget(key) end
return {#keys, #keys}
`;

const STATS = `return redis.call('ZCARD', KEYS[3])`;

// ARGV: key. Its window ends: the next hit starts a new one.
const RESET = `${FORGET}
forget(ARGV[1])
return 1
`;

/**
 * Rate-limit windows in Redis, shared by every replica, so N replicas enforce one limit, not N.
 * `hit` counts a request, or starts the key's window anew when it ended (evicting the least
 * recently started window at the bound), in one Lua script: concurrent hits, on any replicas, each
 * get a distinct count. Windows end on the callers' clock (`now`), not by Redis key expiry, as
 * every adapter's TTLs do; the sweep drops ended windows. Differences from memory: a hit sent again
 * after a lost reply may count again (HIT).
 */
export class RedisRateLimitStore implements RateLimitStore {
  readonly #options: RedisRateLimitStoreOptions;
  readonly #keys: string[];
  readonly #hit: Script;
  readonly #sweep: Script;
  readonly #stats: Script;
  readonly #reset: Script;

  constructor(client: Redis, options: RedisRateLimitStoreOptions) {
    this.#options = options;
    const r = `${options.keyPrefix}rl:`;
    this.#keys = ['n', 'ends', 'starts', 'seq', 'tok'].map((name) => r + name);
    this.#hit = defineScript(client, 'paysimRateLimitHit', HIT);
    this.#sweep = defineScript(client, 'paysimRateLimitSweep', SWEEP);
    this.#stats = defineScript(client, 'paysimRateLimitStats', STATS);
    this.#reset = defineScript(client, 'paysimRateLimitReset', RESET);
  }

  async hit(key: string, windowMs: number, now: number): Promise<RateLimitWindow> {
    const [current, resetAt] = (await this.#hit(this.#keys, [key, windowMs, now, this.#options.maxKeys, callToken()])) as [number, string];
    return { current, resetAt: Number(resetAt) };
  }

  async reset(key: string): Promise<void> {
    await this.#reset(this.#keys, [key]);
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#stats(this.#keys, [])), max: this.#options.maxKeys };
  }

  async sweep(now: number): Promise<number> {
    return sweepInBatches(async () => (await this.#sweep(this.#keys, [now, SWEEP_BATCH])) as [number, number]);
  }
}
