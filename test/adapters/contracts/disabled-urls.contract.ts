import { describe, expect, it } from 'vitest';
import type { DisabledUrlStore } from '../../../src/core/ports.ts';
import { concurrently, T0 } from './fixtures.ts';

export type DisabledUrlStoreFactory = () => Promise<DisabledUrlStore> | DisabledUrlStore;

const A = 'https://a.example/hooks';
const B = 'https://b.example/hooks?tenant=1';

/** The port promises no order, so lists are compared sorted by URL. */
async function listed(store: DisabledUrlStore): Promise<Array<{ url: string; disabledAt: number }>> {
  return (await store.list()).sort((x, y) => x.url.localeCompare(y.url));
}

/** The DisabledUrlStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function disabledUrlStoreContract(name: string, make: DisabledUrlStoreFactory): void {
  describe(`DisabledUrlStore contract: ${name}`, () => {
    it('disables URLs and lists them with when they were disabled', async () => {
      const store = await make();
      expect(await store.list()).toEqual([]);
      expect(await store.isDisabled(A)).toBe(false);
      await store.disable(B, T0 + 5);
      await store.disable(A, T0);
      expect(await store.isDisabled(A)).toBe(true);
      expect(await store.isDisabled(B)).toBe(true);
      expect(await store.isDisabled('https://a.example/hooks/')).toBe(false);
      expect(await listed(store)).toEqual([
        { url: A, disabledAt: T0 },
        { url: B, disabledAt: T0 + 5 },
      ]);
    });

    it('disabling twice keeps the first time', async () => {
      const store = await make();
      await store.disable(A, T0);
      await store.disable(A, T0 + 1_000);
      expect(await store.list()).toEqual([{ url: A, disabledAt: T0 }]);
    });

    it('enable re-enables a disabled URL and says whether it was disabled', async () => {
      const store = await make();
      await store.disable(A, T0);
      await store.disable(B, T0);
      expect(await store.enable(A)).toBe(true);
      expect(await store.enable(A)).toBe(false);
      expect(await store.enable('https://never.example')).toBe(false);
      expect(await store.isDisabled(A)).toBe(false);
      expect(await store.list()).toEqual([{ url: B, disabledAt: T0 }]);
      await store.disable(A, T0 + 9);
      expect(await listed(store)).toEqual([
        { url: A, disabledAt: T0 + 9 },
        { url: B, disabledAt: T0 },
      ]);
    });

    it('what list hands out is a copy', async () => {
      const store = await make();
      await store.disable(A, T0);
      const [entry] = await store.list();
      if (entry !== undefined) entry.disabledAt = 0;
      expect(await store.list()).toEqual([{ url: A, disabledAt: T0 }]);
    });

    it('of concurrent enables of one URL exactly one finds it disabled; concurrent disables keep one time', async () => {
      const store = await make();
      await concurrently(50, (i) => store.disable(A, T0 + i));
      expect(await store.list()).toHaveLength(1);
      const results = await concurrently(50, () => store.enable(A));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.list()).toEqual([]);
    });
  });
}
