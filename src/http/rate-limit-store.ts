import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Clock } from '../core/clock.ts';
import type { RateLimitStore } from '../core/rate-limit/ports.ts';

/**
 * @fastify/rate-limit keeps its counters in a store it constructs itself (`store: <class>`); this
 * makes that class over the RateLimitStore port, so the counters live where every other piece of
 * state lives (memory, or Redis shared by replicas) and windows follow the injected clock.
 * Every route shares the one port: the plugin puts the route group (`groupId`) in the key.
 */
export function rateLimitStoreClass(port: RateLimitStore, clock: Clock): FastifyRateLimitStoreCtor {
  class PortStore implements FastifyRateLimitStore {
    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number): void {
      const now = clock.now();
      port.hit(key, timeWindow, now).then(
        (window) => callback(null, { current: window.current, ttl: window.resetAt - now }),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    }

    child(): FastifyRateLimitStore {
      return this;
    }
  }
  return PortStore;
}
