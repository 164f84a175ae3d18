import { describe, expect, it } from 'vitest';
import type { DisabledUrlStore } from '../../../src/core/ports.ts';
import { concurrently, T0 } from './fixtures.ts';

export interface DisabledUrlStoreOptions {
  /** URLs held at most (WEBHOOK_MAX_DISABLED_URLS). */
  maxUrls: number;
}

export type DisabledUrlStoreFactory = (options: DisabledUrlStoreOptions) => Promise<DisabledUrlStore> | DisabledUrlStore;

const ROOMY: DisabledUrlStoreOptions = { maxUrls: 1000 };

const A = 'https://a.example/hooks';
const B = 'https://b.example/hooks?tenant=1';

/** Sorted by URL, where a test is not about the order. */
async function listed(store: DisabledUrlStore): Promise<Array<{ url: string; disabledAt: number }>> {
  return (await store.list()).sort((x, y) => x.url.localeCompare(y.url));
}

/** The DisabledUrlStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function disabledUrlStoreContract(name: string, make: DisabledUrlStoreFactory): void {
  describe(`DisabledUrlStore contract: ${name}`, () => {
    it('disables URLs and lists them with when they were disabled', async () => {
      const store = await make(ROOMY);
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

    it('lists them in the order they were disabled, long URLs and hundreds of them too (before 2026-12-06 Redis answered its hash’s order, which is none past 64-byte values or 512 entries)', async () => {
      const store = await make(ROOMY);
      const urls = [
        ...['31', '24', '263'].map((n) => `http://127.0.0.1:9/api/orders/payment/webhook/v2/${n}?tx_id=tx_0123456789abcdef0123456789`),
        ...Array.from({ length: 600 }, (_, i) => `https://h${(i * 7919) % 600}.example/hooks`),
      ];
      for (const [i, url] of urls.entries()) await store.disable(url, T0 + i);
      expect(await store.list()).toEqual(urls.map((url, i) => ({ url, disabledAt: T0 + i })));
    });

    it('disabling twice keeps the first time', async () => {
      const store = await make(ROOMY);
      await store.disable(A, T0);
      await store.disable(A, T0 + 1_000);
      expect(await store.list()).toEqual([{ url: A, disabledAt: T0 }]);
    });

    it('enable re-enables a disabled URL and says whether it was disabled', async () => {
      const store = await make(ROOMY);
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
      const store = await make(ROOMY);
      await store.disable(A, T0);
      const [entry] = await store.list();
      if (entry !== undefined) entry.disabledAt = 0;
      expect(await store.list()).toEqual([{ url: A, disabledAt: T0 }]);
    });

    it('of concurrent enables of one URL exactly one finds it disabled; concurrent disables keep one time', async () => {
      const store = await make(ROOMY);
      await concurrently(50, (i) => store.disable(A, T0 + i));
      expect(await store.list()).toHaveLength(1);
      const results = await concurrently(50, () => store.enable(A));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.list()).toEqual([]);
    });

    /*
     * /api/v2 callback URLs name their transaction, so each payment that met a 410 disabled one
     * URL more; before 2026-12-04 they were kept until re-enabled by hand, without a bound.
     */
    it('holds at most maxUrls: a new URL past it re-enables the URL disabled first (whatever its time); a second disable keeps its place; an enabled URL leaves it', async () => {
      const store = await make({ maxUrls: 3 });
      const url = (name: string) => `https://receiver.example/webhook/v2/${name}`;
      // Each disable answers the URLs it re-enabled: none until the bound.
      expect(await store.disable(url('a'), T0 + 5)).toEqual([]);
      expect(await store.disable(url('b'), T0)).toEqual([]);
      expect(await store.disable(url('c'), T0 + 10)).toEqual([]);
      expect(await store.disable(url('a'), T0 + 20)).toEqual([]);
      expect(await store.disable(url('d'), T0 + 30)).toEqual([url('a')]);
      expect(await store.isDisabled(url('a'))).toBe(false);
      expect(await listed(store)).toEqual([
        { url: url('b'), disabledAt: T0 },
        { url: url('c'), disabledAt: T0 + 10 },
        { url: url('d'), disabledAt: T0 + 30 },
      ]);
      // Enabled, c leaves room: e evicts nothing; f then evicts b, and a disabled again evicts d.
      expect(await store.enable(url('c'))).toBe(true);
      expect(await store.disable(url('e'), T0 + 40)).toEqual([]);
      expect(await store.isDisabled(url('b'))).toBe(true);
      expect(await store.disable(url('f'), T0 + 50)).toEqual([url('b')]);
      expect(await store.disable(url('a'), T0 + 60)).toEqual([url('d')]);
      expect(await listed(store)).toEqual([
        { url: url('a'), disabledAt: T0 + 60 },
        { url: url('e'), disabledAt: T0 + 40 },
        { url: url('f'), disabledAt: T0 + 50 },
      ]);
      // An evicted URL is enabled: there is nothing left to enable.
      expect(await store.enable(url('b'))).toBe(false);
    });

    it('holds at most maxUrls under concurrent disables of distinct URLs', async () => {
      const store = await make({ maxUrls: 10 });
      const reenabled = await concurrently(200, (i) => store.disable(`https://receiver.example/webhook/v2/tx_${i}`, T0 + i));
      const held = await store.list();
      expect(held).toHaveLength(10);
      // Every URL but those held was re-enabled by exactly one disable, which said so.
      expect(reenabled.flat().sort()).toEqual(Array.from({ length: 200 }, (_, i) => `https://receiver.example/webhook/v2/tx_${i}`).filter((u) => !held.some((h) => h.url === u)).sort());
      for (const { url } of held) expect(await store.isDisabled(url)).toBe(true);
    });
  });
}
