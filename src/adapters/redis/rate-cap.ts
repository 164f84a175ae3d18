import type { Redis } from 'ioredis';
import type { Clock, Timer } from '../../core/clock.ts';
import { FifoQueue } from '../../core/fifo-queue.ts';
import type { RateCap } from '../../webhooks/token-bucket.ts';
import { defineScript, type Script } from './connection.ts';

export interface RedisRateCapOptions {
  /** Prefix of every key this cap writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  clock: Clock;
  ratePerSecond: number;
  /** Tokens the bucket holds at most (the burst): `bucketCapacity(ratePerSecond)` for the dispatcher. */
  capacity: number;
  /** Told when taking tokens fails (the waiters wait and it is tried again). */
  onError: (error: unknown, context: string) => void;
  /**
   * The bucket counts time on Redis' own clock (`TIME`), one clock for every replica, whatever
   * theirs say; `clock` then only times the waits. False: on `clock` (an injected clock: tests).
   */
  serverTime?: boolean | undefined;
}

/*
 * KEYS[1]: the bucket (hash: t = tokens, a = when they were counted, epoch ms). ARGV: now ('':
 * Redis' own clock, TIME), rate (tokens per ms), capacity, wanted. Refills for the time since `a`
 * (never for time before it: a caller whose clock lags mints nothing), grants as many whole
 * tokens as there are up to `wanted`, and answers {granted, ms until the next token when short}.
 * On the callers' clocks, a replica whose clock runs ahead would hold the others back by the
 * difference (they mint nothing until their clocks pass its count), so the service counts on
 * Redis' clock (since 2026-12-05; before, a replica 60 s ahead left the others without a token for
 * 60 s). Restarting the count from a lagging caller's clock was tried (2026-12-05) and undone: the
 * replica ahead then refilled a whole bucket at each of the lagging one's calls (a review).
 */
const TAKE = `
local now, rate, capacity, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local b = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens, at = tonumber(b[1]), tonumber(b[2])
-- Counted ahead of Redis' clock (by a replica of an earlier version on its own clock, ahead, or
-- before a failover to a Redis whose clock is behind): counted from now on, not held until Redis'
-- clock passes it (a review: no token for 60 s after such an upgrade).
if ARGV[1] == '' and at and at > now then at = now end
if not tokens then tokens, at = capacity, now end
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'a', string.format('%d', at))
local wait = 0
if granted < wanted then wait = math.max(1, math.ceil((1 - tokens) / rate)) end
return {granted, wait}
`;

/** How long waiters wait before a failed take is tried again. */
const RETRY_AFTER_ERROR_MS = 100;

/**
 * The webhook rate cap as one token bucket for every replica: the bucket lives in Redis and one
 * Lua script refills and takes from it, so replicas together never take more than the rate (plus
 * the capacity as a burst). Behind the same `RateCap` as the process's own `TokenBucket`: callers
 * wait in one FIFO; one script call at a time asks for as many tokens as there are waiters, wakes
 * as many as it got, and when short sleeps on the injected clock until the next token is due.
 * The bucket's time is Redis' own clock (`serverTime`), or the callers' (tests), which must then agree.
 */
export class RedisRateCap implements RateCap {
  readonly #options: RedisRateCapOptions;
  readonly #key: string;
  readonly #take: Script;
  readonly #ratePerMs: number;
  readonly #waiters = new FifoQueue<() => void>();
  #calling = false;
  #timer: Timer | undefined;
  #failing = false;

  constructor(client: Redis, options: RedisRateCapOptions) {
    this.#options = options;
    this.#key = `${options.keyPrefix}ratecap:webhooks`;
    this.#ratePerMs = options.ratePerSecond / 1000;
    this.#take = defineScript(client, 'paysimRateCapTake', TAKE);
  }

  get waiting(): number {
    return this.#waiters.size;
  }

  take(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      void this.#pump();
    });
  }

  /**
   * Takes up to `wanted` tokens at `now` (Redis' own time with `serverTime`: `now` is not used; the
   * script itself, for callers that batch): how many it got, and when short, the ms until the next token.
   */
  async tryTake(wanted: number, now: number): Promise<{ granted: number; waitMs: number }> {
    const { capacity, serverTime } = this.#options;
    const [granted, waitMs] = (await this.#take([this.#key], [serverTime === true ? '' : now, this.#ratePerMs, capacity, wanted])) as [number, number];
    return { granted, waitMs };
  }

  releaseAll(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    for (const wake of this.#waiters.drain()) wake();
  }

  /** Asks for tokens when nobody is asking or sleeping; answers when that call is over (a clock that waits for timer work waits for it). */
  #pump(): Promise<void> | undefined {
    if (this.#calling || this.#timer !== undefined || this.#waiters.size === 0) return undefined;
    this.#calling = true;
    return this.tryTake(this.#waiters.size, this.#options.clock.now()).then(
      ({ granted, waitMs }) => {
        this.#calling = false;
        this.#failing = false;
        for (let i = 0; i < granted && this.#waiters.size > 0; i++) (this.#waiters.shift() as () => void)();
        // Short: wait for the next token. Served in full: waiters who came meanwhile are asked for at once.
        if (this.#waiters.size > 0) this.#sleep(waitMs);
      },
      (error: unknown) => {
        this.#calling = false;
        if (!this.#failing) this.#options.onError(error, 'taking a webhook rate-cap token');
        this.#failing = true;
        this.#sleep(RETRY_AFTER_ERROR_MS);
      },
    );
  }

  #sleep(ms: number): void {
    if (ms === 0) {
      void this.#pump();
      return;
    }
    // The call is returned to the clock: a manual clock (tests) that waits for timer work then fires
    // the next token's timer within the same advance, as the process's own bucket does.
    this.#timer = this.#options.clock.schedule(ms, () => {
      this.#timer = undefined;
      return this.#pump();
    });
  }
}
