import type { Redis } from 'ioredis';
import type { Clock, Timer } from '../../core/clock.ts';
import { FifoQueue } from '../../core/fifo-queue.ts';
import { TokenBucket, type RateCap } from '../../webhooks/token-bucket.ts';
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
  /** How far ahead of their time a call may take tokens (ms); default RATE_CAP_AHEAD_MS. 0: only those there are. */
  aheadMs?: number | undefined;
}

/**
 * How far ahead a call may take tokens: a round trip to Redis up to this long still lets the cap's
 * rate through. What a replica took ahead and did not use (it closed meanwhile) is lost to the
 * others for at most this long.
 */
export const RATE_CAP_AHEAD_MS = 1000;

/** A caller whose token was taken ahead of its time: woken at `at` (on the injected clock). */
interface Reserved {
  at: number;
  wake: () => void;
}

/** Where `at` goes in `list`, ordered by time (after those of the same time). */
function insertionIndex(list: readonly Reserved[], at: number): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((list[mid] as Reserved).at <= at) low = mid + 1;
    else high = mid;
  }
  return low;
}

/*
 * KEYS[1]: the bucket (hash: t = tokens, a = when they were counted, epoch ms), `ratecap:webhooks:v2`
 * since tokens may be taken ahead: the script before read a count below zero as a grant below zero
 * and set it back to zero, so during a rolling upgrade its replicas would have wiped every token the
 * new ones had taken ahead (a review measured 3.5 times the cap); on a key of their own, the old and
 * the new replicas each have a bucket until all are upgraded (at most twice the cap meanwhile). ARGV: now ('':
 * Redis' own clock, TIME), rate (tokens per ms), capacity, wanted, ahead (ms). Refills for the time
 * since `a` (never for time before it: a caller whose clock lags mints nothing), then grants up to
 * `wanted` whole tokens: those there are, and those that will be there within `ahead` ms, taken
 * ahead of time (the count goes below zero; each such token is its caller's once its time comes).
 * Answers {granted, ms until the next token may be taken when short, the tokens there were before
 * the grant, the time the bucket was counted at}, from which the caller times each token it got: the
 * i-th is there `(i - before) / rate` ms after that time, or at once. Before 2026-12-06 only the tokens there were could be taken, at
 * most `capacity` (a twentieth of a second's worth) per call, and a replica asks once its previous
 * call has answered: with a round trip over 50 ms (Redis far away, or a busy event loop) the cap
 * let through `capacity` per round trip, not its rate (a measured 100 ms round trip: a quarter of
 * the cap). Taking ahead keeps the rate whatever the round trip, up to `ahead`. The bucket's bound
 * is the same: no more than `capacity` plus the rate times the time go in any window.
 * On the callers' clocks, a replica whose clock runs ahead would hold the others back by the
 * difference (they mint nothing until their clocks pass its count), so the service counts on
 * Redis' clock (since 2026-12-05; before, a replica 60 s ahead left the others without a token for
 * 60 s). Restarting the count from a lagging caller's clock was tried (2026-12-05) and undone: the
 * replica ahead then refilled a whole bucket at each of the lagging one's calls (a review).
 */
const TAKE = `
local now, rate, capacity, wanted, ahead = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]) or 0
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
-- The lowest the count may go: the tokens of the next \`ahead\` ms, taken ahead of time.
local floor = -rate * ahead
local before = tokens
local granted = math.max(0, math.min(wanted, math.floor(tokens - floor)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'a', string.format('%d', at))
local wait = 0
if granted < wanted then wait = math.max(1, math.ceil((floor + 1 - tokens) / rate)) end
-- A string: a Lua number in a reply is cut to an integer. And the time the bucket was counted at:
-- \`now\`, or a later caller's time it was already counted at (no refill for time before it).
return {granted, wait, string.format('%.17g', before), string.format('%d', at)}
`;

/** How long waiters wait before a failed take is tried again. */
const RETRY_AFTER_ERROR_MS = 100;

/**
 * The webhook rate cap as one token bucket for every replica: the bucket lives in Redis and one
 * Lua script refills and takes from it, so replicas together never take more than the rate (plus
 * the capacity as a burst). Behind the same `RateCap` as the process's own `TokenBucket`: callers
 * wait in one FIFO; one script call at a time asks for as many tokens as there are waiters, up to
 * RATE_CAP_AHEAD_MS ahead of their time, wakes each caller it got a token for when that token's
 * time comes, and when short sleeps on the injected clock until the next token may be taken
 * (plus up to a round trip at random: replicas that asked in step split the tokens about 5 to 1 in
 * a review). Every caller it wakes also passes this process's own bucket of the same rate and
 * burst (`TokenBucket`), which a replica's share of the shared one always fits: a release timer that
 * fired late (the event loop stalled) or tokens granted out of order (a reset bucket, replies come
 * back faster than earlier ones) wake no more than a burst at once (a review saw a second's worth
 * in 50 ms). The bucket's time is Redis' own clock (`serverTime`), or the callers' (tests), which must then agree.
 */
export class RedisRateCap implements RateCap {
  readonly #options: RedisRateCapOptions;
  readonly #key: string;
  readonly #take: Script;
  readonly #ratePerMs: number;
  readonly #waiters = new FifoQueue<() => void>();
  /** Callers with a token taken ahead of its time, ordered by that time. */
  readonly #reserved: Reserved[] = [];
  /** This process's own pace: no more than a burst, then the rate, whenever the callers are woken. */
  readonly #pace: TokenBucket;
  #calling = false;
  #timer: Timer | undefined;
  #releaseTimer: Timer | undefined;
  /** When the release timer fires. */
  #releaseAt = Number.POSITIVE_INFINITY;
  #failing = false;

  constructor(client: Redis, options: RedisRateCapOptions) {
    this.#options = options;
    this.#key = `${options.keyPrefix}ratecap:webhooks:v2`;
    this.#ratePerMs = options.ratePerSecond / 1000;
    this.#pace = new TokenBucket(options.clock, options.ratePerSecond, options.capacity);
    this.#take = defineScript(client, 'paysimRateCapTake', TAKE);
  }

  /** Callers waiting for a token, or for the time of the token taken for them. */
  get waiting(): number {
    return this.#waiters.size + this.#reserved.length + this.#pace.waiting;
  }

  take(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      void this.#pump();
    });
  }

  /**
   * Takes up to `wanted` tokens at `now` (Redis' own time with `serverTime`: `now` is not used; the
   * script itself, for callers that batch), those to come within `aheadMs` included: how many it
   * got; the tokens there were before (the i-th granted is there `(i - before) / rate` ms after the
   * call, at once when `before` ≥ i; below zero, others were taken ahead); and when short, the ms
   * until the next token may be taken; and the time the bucket was counted at (`now`, or the later
   * time of another caller's call that had counted it already; undefined on Redis' clock, which this
   * process cannot read).
   */
  async tryTake(wanted: number, now: number): Promise<{ granted: number; waitMs: number; before: number; at: number | undefined }> {
    const { capacity, serverTime, aheadMs = RATE_CAP_AHEAD_MS } = this.#options;
    const onRedisClock = serverTime === true;
    const [granted, waitMs, before, countedAt] = (await this.#take([this.#key], [onRedisClock ? '' : now, this.#ratePerMs, capacity, wanted, aheadMs])) as [number, number, string, string | undefined];
    // On the callers' clock, the script's time: `now`, or a later time another caller's call had
    // counted the bucket at (a review: timed from an earlier `now`, tokens were woken up to a round trip early).
    return { granted, waitMs, before: Number(before), at: onRedisClock ? undefined : countedAt === undefined ? now : Number(countedAt) };
  }

  releaseAll(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#releaseTimer?.cancel();
    this.#releaseTimer = undefined;
    this.#releaseAt = Number.POSITIVE_INFINITY;
    // Every caller goes: those passing the pace, those whose tokens' time had not come, the rest.
    this.#pace.releaseAll();
    for (const { wake } of this.#reserved.splice(0)) wake();
    for (const wake of this.#waiters.drain()) wake();
  }

  /** Asks for tokens when nobody is asking or sleeping; answers when that call is over (a clock that waits for timer work waits for it). */
  #pump(): Promise<void> | undefined {
    if (this.#calling || this.#timer !== undefined || this.#waiters.size === 0) return undefined;
    this.#calling = true;
    const askedAt = this.#options.clock.now();
    return this.tryTake(this.#waiters.size, askedAt).then(
      ({ granted, waitMs, before, at: countedAt }) => {
        this.#calling = false;
        this.#failing = false;
        // Timed from the bucket's time: on Redis' clock, not known here, so from the answer, which
        // came after the script ran (never before the token's time, up to a round trip after it);
        // on an injected clock, the time the script was given (the clock may have moved on
        // meanwhile: a token timed from the answer came a window late, none in the window it was
        // taken for, and the shared cap's test failed about 1 run in 25).
        const now = this.#options.clock.now();
        const from = countedAt ?? now;
        for (let i = 1; i <= granted && this.#waiters.size > 0; i++) {
          const wake = this.#waiters.shift() as () => void;
          // Less a millionth of a ms: (1 + 8.5) / 0.01 is 950.0000000000001, not a token 951 ms on.
          const at = from + Math.ceil((i - before) / this.#ratePerMs - 1e-6);
          if (at <= now) this.#wake(wake);
          else this.#reserve(at, wake);
        }
        this.#armRelease();
        // Short: wait for the next token, and then up to a round trip (or as long again) at random:
        // replicas asking in step would split the tokens unevenly for good, each getting what came
        // since the other's call. Served in full: waiters who came meanwhile are asked for at once.
        if (this.#waiters.size > 0) this.#sleep(waitMs === 0 ? 0 : waitMs + Math.floor(Math.random() * Math.max(waitMs, now - askedAt)));
      },
      (error: unknown) => {
        this.#calling = false;
        if (!this.#failing) this.#options.onError(error, 'taking a webhook rate-cap token');
        this.#failing = true;
        this.#sleep(RETRY_AFTER_ERROR_MS);
      },
    );
  }

  /** Wakes a caller through this process's pace. */
  #wake(wake: () => void): void {
    void this.#pace.take().then(wake);
  }

  /** Keeps a caller until `at`, in time order (a later call's tokens may come before an earlier one's). */
  #reserve(at: number, wake: () => void): void {
    const last = this.#reserved.at(-1);
    if (last === undefined || last.at <= at) this.#reserved.push({ at, wake });
    else this.#reserved.splice(insertionIndex(this.#reserved, at), 0, { at, wake });
  }

  /** Wakes the callers whose tokens' time has come, and arms for the next one (earlier than the one armed: again). */
  #armRelease(): void {
    const next = this.#reserved[0];
    if (next === undefined || next.at >= this.#releaseAt) return;
    this.#releaseTimer?.cancel();
    const { clock } = this.#options;
    this.#releaseAt = next.at;
    this.#releaseTimer = clock.schedule(Math.max(0, next.at - clock.now()), () => {
      this.#releaseTimer = undefined;
      this.#releaseAt = Number.POSITIVE_INFINITY;
      const now = clock.now();
      let due = 0;
      while (due < this.#reserved.length && (this.#reserved[due] as Reserved).at <= now) due++;
      for (const { wake } of this.#reserved.splice(0, due)) this.#wake(wake);
      this.#armRelease();
    });
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
