import { describe, expect, it } from 'vitest';
import type { RevokedSessionStore } from '../../../src/core/ports.ts';
import { HOUR, T0 } from './fixtures.ts';

export type RevokedSessionStoreFactory = (options: { max: number }) => Promise<RevokedSessionStore> | RevokedSessionStore;

/** The RevokedSessionStore port's contract (src/core/ports.ts: the console's logged-out sessions), for any adapter `make` builds fresh. */
export function revokedSessionStoreContract(name: string, make: RevokedSessionStoreFactory): void {
  describe(`RevokedSessionStore contract: ${name}`, () => {
    it('a revoked id is revoked until its `until`, then not; another id never was; a revoke sent twice keeps the first', async () => {
      const store = await make({ max: 100 });
      await store.revoke('s1', T0 + HOUR);
      await store.revoke('s1', T0 + 2 * HOUR);
      expect([await store.isRevoked('s1', T0), await store.isRevoked('s1', T0 + HOUR - 1), await store.isRevoked('s1', T0 + HOUR), await store.isRevoked('s2', T0)]).toEqual([true, true, false, false]);
      expect(await store.stats()).toEqual({ size: 1, max: 100 });
    });

    it('sweep forgets the ids past their `until`; bounded: past max the one that expires first goes', async () => {
      const store = await make({ max: 2 });
      await store.revoke('a', T0 + HOUR);
      await store.revoke('b', T0 + 2 * HOUR);
      await store.revoke('c', T0 + 3 * HOUR);
      expect(await store.stats()).toEqual({ size: 2, max: 2 });
      expect([await store.isRevoked('a', T0), await store.isRevoked('b', T0), await store.isRevoked('c', T0)]).toEqual([false, true, true]);
      expect(await store.sweep(T0 + 2 * HOUR)).toBe(1);
      expect(await store.stats()).toEqual({ size: 1, max: 2 });
      expect([await store.isRevoked('b', T0), await store.isRevoked('c', T0)]).toEqual([false, true]);
    });
  });
}
