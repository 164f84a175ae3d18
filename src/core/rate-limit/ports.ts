import type { StoreStats } from '../ports.ts';

/**
 * Counters of the rate limiter (issue 12 "Rate limiting"): fixed windows per key (a client and a
 * route group). `hit` counts one request and says where the window stands, in one atomic step
 * (one INCR with its expiry for Redis), so several replicas share one limit.
 * @see src/http/rate-limit-store.ts (the bridge to @fastify/rate-limit)
 */
export interface RateLimitStore {
  /**
   * Counts one request of `key` at `now`: a window that ended (or none) starts anew at `now` and
   * lasts `windowMs`. Returns the count in the current window, and when that window ends.
   */
  hit(key: string, windowMs: number, now: number): Promise<RateLimitWindow>;
  /** Ends `key`'s window: its next hit starts a new one at 1 (the console's login, after a success). */
  reset(key: string): Promise<void>;
  stats(): Promise<StoreStats>;
  /** Drops windows that ended before `now`; returns how many. */
  sweep(now: number): Promise<number>;
}

export interface RateLimitWindow {
  /** Requests counted in this window, this one included. */
  current: number;
  /** When the window ends (epoch ms). */
  resetAt: number;
}
