import type { Redis } from 'ioredis';
import type { BeginResult, IdempotencyNote, StoredResponse } from '../../core/idempotency.ts';
import type { IdempotencyStore, StoreStats } from '../../core/ports.ts';
import { ENTRY_OVERHEAD_BYTES } from '../memory/idempotency.ts';
import { callToken, defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';
import { isRedisUnavailable } from './unavailable.ts';

export interface RedisIdempotencyOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  ttlMs: number;
  maxKeys: number;
  /** A key whose request still runs is kept at least this long after its begin (core/idempotency.ts `inFlightHoldMs`). */
  inFlightHoldMs: number;
  /** How long this process's mark of life lasts unless renewed (REPLICA_ALIVE_MS; tests shorten it). */
  aliveMs?: number | undefined;
  /** The app closes: the mark is no longer renewed. */
  closed?: AbortSignal | undefined;
}

/**
 * How long a replica's mark of life (`<prefix>idem:alive:<replica>`) lasts unless renewed. While
 * a request with a key runs, its replica renews the mark every third of this; a key begun by a
 * replica whose mark has lapsed (killed, or cut off from Redis that long) is free for the client's
 * retry, instead of held until its TTL (24 h by default) or hold.
 */
export const REPLICA_ALIVE_MS = 15_000;


// Keys: KEYS[1] order (zset: entry id → expiresAt; an in-flight key found expired there moves to its
// hold), KEYS[2] done (zset: completed entry ids → expiresAt), KEYS[3] bytes (counter); ARGV[1] the
// prefix of entry hashes. An entry hash holds fp, exp, hold (begin + max(TTL, the in-flight hold)),
// bytes, ct (the call token of the begin that made it), rp (the replica it runs on, whose mark of
// life is <prefix>idem:alive:<rp>) and, once completed, resp (the stored response as JSON).
const SWEEP = `
local function forget(id)
  local bytes = redis.call('HGET', ARGV[1] .. id, 'bytes')
  redis.call('DEL', ARGV[1] .. id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  -- Last: Redis over its maxmemory refuses a script's first write if it needs memory (DECRBY may),
  -- and lets one that has written go on, so a sweep still frees room on a full Redis.
  if bytes then redis.call('DECRBY', KEYS[3], bytes) end
end
-- From the offset-th expired entry (those before it were left in place by this sweep's earlier runs).
local function sweep(now, batch, offset)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', offset, batch)
  local removed, held = 0, {}
  for _, id in ipairs(ids) do
    local hold = tonumber(redis.call('HGET', ARGV[1] .. id, 'hold') or '0')
    if hold > tonumber(now) and not redis.call('ZSCORE', KEYS[2], id) then
      held[#held + 1] = hold
      held[#held + 1] = id
    else
      forget(id)
      removed = removed + 1
    end
  end
  -- Running requests' keys move to their hold after the deletes, so that a full Redis, which
  -- refuses a script's first write if it needs memory, lets the moves through once a delete has
  -- gone first. A batch of running requests' keys only cannot move them there: they are left in
  -- place (pcall: that refusal alone), counted, and the sweep's next run starts past them, so it
  -- frees what follows. Any other error is the script's as before.
  local left = 0
  for i = 1, #held, 2 do
    local moved = redis.pcall('ZADD', KEYS[1], held[i], held[i + 1])
    if type(moved) == 'table' and moved.err then
      if string.sub(moved.err, 1, 3) ~= 'OOM' then error(moved) end
      left = left + 1
    end
  end
  return {removed, #ids, left}
end
`;

const BEGIN = `${SWEEP}
-- ARGV: entry prefix, id, fingerprint, now, ttlMs, maxKeys, the entry's bytes, sweep batch, in-flight hold, call token,
-- replica, prefix of marks of life, mark's life (ms)
local id, fp, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
sweep(now, tonumber(ARGV[8]), 0)
local key = ARGV[1] .. id
local entry = redis.call('HMGET', key, 'fp', 'resp', 'exp', 'hold', 'ct', 'rp')
-- This replica's mark of life, set (or set again) by each begin it starts.
local function markAlive() redis.call('SET', ARGV[12] .. ARGV[11], '1', 'PX', ARGV[13]) end
-- Expired but past the sweep's batch: gone all the same (a running request's key not before its hold).
if entry[1] and tonumber(entry[3]) <= now and (entry[2] or tonumber(entry[4] or '0') <= now) then
  forget(id)
  entry = {}
end
-- This very begin run again (its reply lost, ioredis sent it again): the request is its own, and
-- its replica alive (however late the resend, its mark is set again). A made it finds is the
-- resume's that took the key (a resent begin comes before its request writes anything): answered
-- so again, not 'started' (a review: the route then made a second payment).
if entry[1] and not entry[2] and entry[5] == ARGV[10] then
  markAlive()
  local made = redis.call('HGET', key, 'made')
  if made then return {'resume', made} end
  return {'started'}
end
-- Its request was given up (a 5xx released it: rl) or ran on another replica, no longer alive
-- (killed): nobody will settle it. What it made, when its own write noted it (made), is this
-- request's to answer (the same body only: another body is a mismatch); without it the key is free.
-- (This replica's own keys are its own to settle, whatever its mark says after an outage; entries
-- of versions before 2026-12-03 have no rp and wait for their hold.)
if entry[1] and not entry[2] and (redis.call('HEXISTS', key, 'rl') == 1 or (entry[6] and entry[6] ~= ARGV[11] and redis.call('EXISTS', ARGV[12] .. entry[6]) == 0)) then
  local made = redis.call('HGET', key, 'made')
  if made and entry[1] == fp then
    -- Running again: held past its expiry by an in-flight hold at most, never a whole TTL more
    -- (a review); out of the settled set (a released one is there) until it settles again.
    redis.call('HSET', key, 'ct', ARGV[10], 'rp', ARGV[11], 'hold', math.max(tonumber(entry[3]), now + tonumber(ARGV[9])))
    redis.call('HDEL', key, 'rl')
    redis.call('ZREM', KEYS[2], id)
    markAlive()
    return {'resume', made}
  end
  if not made then
    forget(id)
    entry = {}
  end
end
if entry[1] then
  if entry[1] ~= fp then return {'mismatch'} end
  if entry[2] then return {'replay', entry[2]} end
  return {'in_progress'}
end
-- At the bound the oldest key goes; past it (a bound lowered since the keys were stored, at a
-- restart on the same Redis), down to it, up to 1,000 keys a begin (one went, and the excess
-- stayed until its TTL: a user test).
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[6]) + 1
if excess > 0 then
  for _, oldest in ipairs(redis.call('ZRANGE', KEYS[2], 0, math.min(excess, 1000) - 1)) do forget(oldest) end
end
local expires = now + tonumber(ARGV[5])
-- Counted in JavaScript, as memory counts them (UTF-16 code units: Lua's string.len counts UTF-8
-- bytes, and a key or path that is not ASCII counted more here before 2026-12-06, a review).
local bytes = tonumber(ARGV[7])
redis.call('HSET', key, 'fp', fp, 'exp', expires, 'hold', now + math.max(tonumber(ARGV[5]), tonumber(ARGV[9])), 'bytes', bytes, 'ct', ARGV[10], 'rp', ARGV[11])
markAlive()
redis.call('ZADD', KEYS[1], expires, id)
redis.call('INCRBY', KEYS[3], bytes)
return {'started'}
`;

// A complete or release settles only the claim its begin made (ct): a claim the key's hold let go,
// taken since by another request, is that request's; so is one a release sent again late (ioredis
// resends a call whose reply was lost) would find after the client's retry began.
const COMPLETE = `${SWEEP}
-- ARGV: entry prefix, id, response JSON, body length, claim
local key = ARGV[1] .. ARGV[2]
local entry = redis.call('HMGET', key, 'fp', 'resp', 'exp', 'ct')
if not entry[1] or entry[2] or entry[4] ~= ARGV[5] then return 0 end
-- Its time is up (a sweep found it expired while its request ran and moved it to its hold): the
-- answer would be swept at once, so the key goes now, as memory's does (before 2026-12-04 it stayed
-- counted in store_records until the next sweep).
if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]) or entry[3]) ~= tonumber(entry[3]) then
  forget(ARGV[2])
  return 1
end
redis.call('HSET', key, 'resp', ARGV[3])
redis.call('HINCRBY', key, 'bytes', ARGV[4])
redis.call('INCRBY', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[2], entry[3], ARGV[2])
redis.call('ZADD', KEYS[1], entry[3], ARGV[2])
return 1
`;

const RELEASE = `
-- ARGV: entry prefix, id, claim
local key = ARGV[1] .. ARGV[2]
local entry = redis.call('HMGET', key, 'fp', 'resp', 'bytes', 'ct', 'made')
if not entry[1] or entry[2] or entry[4] ~= ARGV[3] then return 0 end
-- Its request made something (its write noted it) and answered a 5xx (Redis slow or away after the
-- write): the key stays, released (rl), for the client's retry to answer what was made (a user
-- test: deleted, the retry made a second payment). Settled as a completed key is: it expires at its
-- TTL (its hold no longer counts), and at the bound it may go as they do (a review: kept past its
-- TTL, and never evicted, such keys pushed completed ones out).
if entry[5] then
  local exp = redis.call('HGET', key, 'exp')
  redis.call('HSET', key, 'rl', '1', 'hold', exp)
  redis.call('HDEL', key, 'ct')
  redis.call('ZADD', KEYS[2], exp, ARGV[2])
  return 1
end
redis.call('DEL', key)
redis.call('ZREM', KEYS[1], ARGV[2])
-- Last, as in forget: a full Redis lets the release finish once it has deleted.
redis.call('DECRBY', KEYS[3], entry[3])
return 1
`;

// KEYS[1] the key's entry; ARGV: the request's claim, what it is about to make.
const NOTE = `
if redis.call('HGET', KEYS[1], 'ct') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'made', ARGV[2])
return 1
`;

const SWEEP_ONLY = `${SWEEP}
-- ARGV: entry prefix, now, batch, offset
return sweep(tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))  -- {removed, looked at, left in place}
`;

const STATS = `
return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('GET', KEYS[3]) or '0')}
`;

/**
 * Idempotency keys in Redis, one Lua script per port operation. Each key is a hash; a sorted set
 * orders every key by expiry (one TTL for all, so that is begin order) and a second one holds the
 * completed keys in the same order: at the bound the first of it goes, never an in-progress key.
 * An in-progress key the sweep finds expired (a TTL shorter than its request) is moved to its hold,
 * `inFlightHoldMs` after its begin, and back to its expiry when its response is stored.
 *
 * A replica killed mid-request never settles its keys. Each begin notes its replica on the key,
 * and while this process has a request with a key running it keeps a mark of life
 * (`<prefix>idem:alive:<replica>`, REPLICA_ALIVE_MS, renewed every third of it on real time); a
 * begin that finds a key in progress whose replica's mark has lapsed takes the key, so the client's
 * retry runs within about 15 s of the kill instead of waiting for the key's TTL. A replica whose
 * event loop stalls, or that is cut off from Redis, for that long loses its claims the same way:
 * the retry may then run beside it (its own settle is then a no-op, being another claim's key).
 *
 * Differences from memory: expiry follows the callers' clock (`now`), not Redis's own key TTLs
 * (a test clock may sit anywhere in time), so expired keys go when a `begin` or `sweep` runs
 * (a `begin` removes at most 500 of them; the one it asks about is always checked itself). Keys
 * begun in the same millisecond tie in the sorted sets and are then ordered by scope and key, not
 * by arrival. `bytes` counts the same estimate as memory (strings plus a fixed overhead), which
 * is not what Redis itself spends.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #options: RedisIdempotencyOptions;
  readonly #keys: [string, string, string];
  readonly #entryPrefix: string;
  readonly #begin: Script;
  readonly #complete: Script;
  readonly #release: Script;
  readonly #note: Script;
  readonly #sweep: Script;
  readonly #stats: Script;
  readonly #client: Redis;
  /** This process's name on the keys it begins, and its mark of life. */
  readonly #replica = callToken();
  readonly #alivePrefix: string;
  readonly #aliveMs: number;
  /** Claims of requests still running here (begun, not yet settled): the mark of life is renewed while there are any. */
  readonly #running = new Set<string>();
  #renewal: NodeJS.Timeout | undefined;

  constructor(client: Redis, options: RedisIdempotencyOptions) {
    this.#options = options;
    this.#client = client;
    const p = `${options.keyPrefix}idem:`;
    this.#keys = [`${p}order`, `${p}done`, `${p}bytes`];
    this.#entryPrefix = `${p}e:`;
    this.#alivePrefix = `${p}alive:`;
    this.#aliveMs = options.aliveMs ?? REPLICA_ALIVE_MS;
    options.closed?.addEventListener('abort', () => this.#stopRenewal(), { once: true });
    this.#begin = defineScript(client, 'paysimIdemBegin', BEGIN);
    this.#complete = defineScript(client, 'paysimIdemComplete', COMPLETE);
    this.#release = defineScript(client, 'paysimIdemRelease', RELEASE);
    this.#note = defineScript(client, 'paysimIdemNote', NOTE);
    this.#sweep = defineScript(client, 'paysimIdemSweep', SWEEP_ONLY);
    this.#stats = defineScript(client, 'paysimIdemStats', STATS);
  }

  async begin(scope: string, key: string, fingerprint: string, now: number): Promise<BeginResult> {
    const { ttlMs, maxKeys, inFlightHoldMs } = this.#options;
    // The begin's call token is its claim: a begin sent again finds it and is started too.
    const claim = callToken();
    const id = entryId(scope, key);
    const reply = (await this.#begin(this.#keys, [this.#entryPrefix, id, fingerprint, now, ttlMs, maxKeys, id.length + fingerprint.length + ENTRY_OVERHEAD_BYTES, SWEEP_BATCH, inFlightHoldMs, claim, this.#replica, this.#alivePrefix, this.#aliveMs])) as [string, string?];
    const [kind, response] = reply;
    if (kind === 'replay') return { kind: 'replay', response: JSON.parse(response as string) as StoredResponse };
    if (kind === 'started') {
      this.#run(claim);
      return { kind, claim };
    }
    if (kind === 'resume') {
      this.#run(claim);
      return { kind, claim, made: response as string };
    }
    return { kind: kind as 'mismatch' | 'in_progress' };
  }

  complete(scope: string, key: string, claim: string, response: StoredResponse): Promise<void> {
    const stored: StoredResponse = response.headers === undefined ? { statusCode: response.statusCode, body: response.body } : { statusCode: response.statusCode, body: response.body, headers: response.headers };
    return this.#settled(claim, this.#complete(this.#keys, [this.#entryPrefix, entryId(scope, key), JSON.stringify(stored), response.body.length, claim]));
  }

  /** The key's entry and the claim, for a write on this Redis that notes what the request made (`made`, if the claim is still the entry's). */
  noteOf(scope: string, key: string, claim: string): IdempotencyNote {
    return { entry: this.#entryPrefix + entryId(scope, key), claim };
  }

  async note(note: IdempotencyNote, made: string): Promise<boolean> {
    return (await this.#note([note.entry], [note.claim, made])) === 1;
  }

  release(scope: string, key: string, claim: string): Promise<void> {
    return this.#settled(claim, this.#release(this.#keys, [this.#entryPrefix, entryId(scope, key), claim]));
  }

  /**
   * The claim's settle was given up (LateSettles could not keep it): it stops counting as running
   * here, so the mark of life is no longer renewed for it. Its key stays begun until its TTL, or
   * until this replica's mark lapses (its other requests settled, or the process gone).
   */
  abandon(claim: string): void {
    this.#done(claim);
  }

  /**
   * Redis serves again (a reconnect, or the end of a load): after an outage the mark may have
   * lapsed, so it is set again at once while requests with a key run here, not at the next renewal.
   */
  servedAgain(): void {
    if (this.#running.size > 0 && this.#options.closed?.aborted !== true) this.#renew();
  }

  /** Requests with a key running here (begun on this store, not yet settled). */
  get running(): number {
    return this.#running.size;
  }

  /** A request with a key runs here: the mark of life is renewed until it is settled. */
  #run(claim: string): void {
    this.#running.add(claim);
    if (this.#renewal !== undefined || this.#options.closed?.aborted === true) return;
    this.#renewal = setInterval(() => this.#renew(), Math.max(1, Math.floor(this.#aliveMs / 3)));
    this.#renewal.unref();
  }

  #renew(): void {
    void this.#client.set(this.#alivePrefix + this.#replica, '1', 'PX', this.#aliveMs).catch(() => undefined);
  }

  /**
   * A settle's call: once the store took it (or refused it for good), the claim no longer runs
   * here. One Redis could not take is tried again (LateSettles) and stays this replica's meanwhile
   * (its mark renewed as Redis answers), so the client's retry waits for the answer rather than
   * running the operation again.
   */
  async #settled(claim: string, call: Promise<unknown>): Promise<void> {
    try {
      await call;
    } catch (error) {
      if (!isRedisUnavailable(error)) this.#done(claim);
      throw error;
    }
    this.#done(claim);
  }

  #done(claim: string): void {
    if (!this.#running.delete(claim) || this.#running.size > 0) return;
    this.#stopRenewal();
  }

  #stopRenewal(): void {
    clearInterval(this.#renewal);
    this.#renewal = undefined;
  }

  async stats(): Promise<StoreStats & { bytes: number }> {
    const [size, bytes] = (await this.#stats(this.#keys, [])) as [number, number];
    return { size, max: this.#options.maxKeys, bytes };
  }

  async sweep(now: number): Promise<number> {
    // Past the keys a run left in place (running requests' keys a full Redis would not let it move).
    let offset = 0;
    return sweepInBatches(async () => {
      const [removed, looked, left] = (await this.#sweep(this.#keys, [this.#entryPrefix, now, SWEEP_BATCH, offset])) as [number, number, number];
      offset += left;
      return [removed, looked];
    });
  }
}

/** As in memory: a newline cannot occur in a header value nor in a scope. */
function entryId(scope: string, key: string): string {
  return `${scope}\n${key}`;
}
