import { describe, expect, it } from 'vitest';
import type { RateLimitStore } from '../../../src/core/rate-limit/ports.ts';
import { concurrently, T0 } from './fixtures.ts';

export type RateLimitStoreFactory = (options: { maxKeys: number }) => Promise<RateLimitStore> | RateLimitStore;

/** The RateLimitStore port's contract (src/core/rate-limit/ports.ts), for any adapter `make` builds fresh. */
export function rateLimitStoreContract(name: string, make: RateLimitStoreFactory): void {
  describe(`RateLimitStore contract: ${name}`, () => {
    it('counts hits of a key in a fixed window that starts with the first hit; another key counts apart', async () => {
      const store = await make({ maxKeys: 100 });
      expect(await store.hit('client_a:orders', 1_000, T0)).toEqual({ current: 1, resetAt: T0 + 1_000 });
      expect(await store.hit('client_a:orders', 1_000, T0 + 400)).toEqual({ current: 2, resetAt: T0 + 1_000 });
      expect(await store.hit('client_b:orders', 1_000, T0 + 500)).toEqual({ current: 1, resetAt: T0 + 1_500 });
      expect(await store.hit('client_a:orders', 1_000, T0 + 999)).toEqual({ current: 3, resetAt: T0 + 1_000 });
    });

    it('a window that ended starts anew at the next hit', async () => {
      const store = await make({ maxKeys: 100 });
      await store.hit('k', 1_000, T0);
      await store.hit('k', 1_000, T0 + 1);
      expect(await store.hit('k', 1_000, T0 + 1_000)).toEqual({ current: 1, resetAt: T0 + 2_000 });
    });

    it('reset ends a key\'s window: its next hit starts a new one at 1; other keys keep counting; a reset of an unknown key changes nothing', async () => {
      const store = await make({ maxKeys: 100 });
      await store.hit('console-login:10.0.0.1', 60_000, T0);
      await store.hit('console-login:10.0.0.1', 60_000, T0 + 1);
      await store.hit('console-login:10.0.0.2', 60_000, T0 + 2);
      await store.reset('console-login:10.0.0.1');
      await store.reset('nobody');
      expect(await store.stats()).toEqual({ size: 1, max: 100 });
      expect(await store.hit('console-login:10.0.0.1', 60_000, T0 + 3)).toEqual({ current: 1, resetAt: T0 + 60_003 });
      expect(await store.hit('console-login:10.0.0.2', 60_000, T0 + 4)).toEqual({ current: 2, resetAt: T0 + 60_002 });
    });

    it('200 hits at once count 200, each a distinct count', async () => {
      const store = await make({ maxKeys: 100 });
      const windows = await concurrently(200, () => store.hit('burst', 60_000, T0));
      expect(windows.map((w) => w.current).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    });

    it('bounded: beyond maxKeys the oldest window goes; sweep drops ended windows', async () => {
      const store = await make({ maxKeys: 2 });
      await store.hit('a', 1_000, T0);
      await store.hit('b', 5_000, T0 + 1);
      await store.hit('c', 1_000, T0 + 2);
      expect(await store.stats()).toEqual({ size: 2, max: 2 });
      // 'a' was evicted: it starts again at 1 (and 'b', now the oldest, goes).
      expect(await store.hit('a', 1_000, T0 + 3)).toEqual({ current: 1, resetAt: T0 + 1_003 });
      expect(await store.hit('b', 5_000, T0 + 4)).toEqual({ current: 1, resetAt: T0 + 5_004 });
      // Left: 'a' (ends at +1,003) and 'b' (ends at +5,004).
      expect(await store.sweep(T0 + 1_003)).toBe(1);
      expect(await store.stats()).toEqual({ size: 1, max: 2 });
      expect(await store.hit('b', 5_000, T0 + 5)).toEqual({ current: 2, resetAt: T0 + 5_004 });
    });
  });
}
