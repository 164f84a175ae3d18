import { describe, expect, it } from 'vitest';
import type { FluxPaySubscriptionStore, WebhookSubscription } from '../../../src/core/fluxpay/ports.ts';
import { concurrently, ids, T0, tally } from './fixtures.ts';

export type FluxPaySubscriptionStoreFactory = (options: { maxSubscriptions: number }) => Promise<FluxPaySubscriptionStore> | FluxPaySubscriptionStore;

function aSubscription(overrides: Partial<WebhookSubscription> = {}): WebhookSubscription {
  return { subscriptionId: ids('whs'), url: 'http://127.0.0.1:1/hooks', events: ['credit.charged'], createdAt: T0, ...overrides };
}

/** The FluxPaySubscriptionStore port's contract (src/core/fluxpay/ports.ts), for any adapter `make` builds fresh. */
export function fluxPaySubscriptionStoreContract(name: string, make: FluxPaySubscriptionStoreFactory): void {
  describe(`FluxPaySubscriptionStore contract: ${name}`, () => {
    it('adds in order up to the bound; gets, lists and removes', async () => {
      const store = await make({ maxSubscriptions: 2 });
      const a = aSubscription({ url: 'http://127.0.0.1:1/a' });
      const b = aSubscription({ url: 'http://127.0.0.1:1/b', events: [] });
      expect(await store.add(a)).toEqual({ kind: 'created', record: a });
      expect(await store.add(b)).toEqual({ kind: 'created', record: b });
      expect(await store.add(aSubscription())).toEqual({ kind: 'full' });
      // One already there (on Redis: an add run again, its reply lost) is not refused, and keeps its place.
      expect(await store.add(b)).toEqual({ kind: 'created', record: b });
      expect(await store.list()).toEqual([a, b]);
      expect(await store.get(a.subscriptionId)).toEqual(a);
      expect(await store.get('whs_unknown')).toBeUndefined();
      expect(await store.remove(a.subscriptionId)).toEqual(a);
      expect(await store.remove(a.subscriptionId)).toBeUndefined();
      expect(await store.get(a.subscriptionId)).toBeUndefined();
      expect(await store.list()).toEqual([b]);
      // A removal makes room; the newcomer goes last.
      const c = aSubscription({ createdAt: T0 + 1 });
      expect(await store.add(c)).toEqual({ kind: 'created', record: c });
      expect(await store.list()).toEqual([b, c]);
    });

    it('a remove answers the subscription as it was (a copy), frees its place under the bound, and leaves the others in their order', async () => {
      const store = await make({ maxSubscriptions: 3 });
      const [a, b, c] = [aSubscription({ url: 'http://127.0.0.1:1/a' }), aSubscription({ url: 'http://127.0.0.1:1/b', events: [] }), aSubscription({ url: 'http://127.0.0.1:1/c' })];
      for (const s of [a, b, c]) await store.add(s);
      expect(await store.add(aSubscription())).toEqual({ kind: 'full' });
      // An id never added removes nothing.
      expect(await store.remove('whs_unknown')).toBeUndefined();
      expect(await store.list()).toEqual([a, b, c]);
      const removed = await store.remove(b.subscriptionId);
      expect(removed).toEqual(b);
      (removed as WebhookSubscription).url = 'http://127.0.0.1:1/mutated';
      expect(await store.list()).toEqual([a, c]);
      expect(await store.get(b.subscriptionId)).toBeUndefined();
      // Its place is free: one more fits, then the store is full again.
      const d = aSubscription({ url: 'http://127.0.0.1:1/d' });
      expect(await store.add(d)).toEqual({ kind: 'created', record: d });
      expect(await store.add(aSubscription())).toEqual({ kind: 'full' });
      expect(await store.list()).toEqual([a, c, d]);
      // Every one removed: the store is empty, and as many fit as before.
      for (const s of [a, c, d]) expect(await store.remove(s.subscriptionId)).toEqual(s);
      expect(await store.list()).toEqual([]);
      const again = [aSubscription(), aSubscription(), aSubscription()];
      for (const s of again) expect((await store.add(s)).kind).toBe('created');
      expect(await store.list()).toEqual(again);
    });

    it('of 20 concurrent removes of one subscription exactly one answers it', async () => {
      const store = await make({ maxSubscriptions: 10 });
      const a = aSubscription();
      await store.add(a);
      const removed = await concurrently(20, () => store.remove(a.subscriptionId));
      expect(removed.filter((r) => r !== undefined)).toEqual([a]);
      expect(await store.list()).toEqual([]);
    });

    it('lists in creation order, not in id order', async () => {
      const store = await make({ maxSubscriptions: 10 });
      const lowerId = aSubscription();
      const higherId = aSubscription();
      // Added in the other order than their ids sort.
      await store.add(higherId);
      await store.add(lowerId);
      expect((await store.list()).map((s) => s.subscriptionId)).toEqual([higherId.subscriptionId, lowerId.subscriptionId]);
    });

    it('records go in and come out as copies', async () => {
      const store = await make({ maxSubscriptions: 10 });
      const subscription = aSubscription({ events: ['credit.charged', 'order.paid'] });
      const expected = structuredClone(subscription);
      const added = await store.add(subscription);
      subscription.url = 'http://127.0.0.1:1/changed';
      (subscription.events as string[]).push('order.cancelled');
      if (added.kind !== 'created') throw new Error(added.kind);
      added.record.url = 'http://127.0.0.1:1/mutated';
      const got = (await store.get(subscription.subscriptionId)) as WebhookSubscription;
      got.createdAt = 0;
      try {
        (got.events as string[]).push('x');
      } catch {
        // A store may hand out a frozen event list: then the change is refused outright.
      }
      ((await store.list())[0] as WebhookSubscription).url = 'http://127.0.0.1:1/listed';
      expect(await store.get(subscription.subscriptionId)).toEqual(expected);
      expect(await store.list()).toEqual([expected]);
    });

    it('of 50 concurrent adds to a store of 10 exactly 10 are created', async () => {
      const store = await make({ maxSubscriptions: 10 });
      const outcomes = await concurrently(50, () => store.add(aSubscription()));
      expect(tally(outcomes)).toEqual({ created: 10, full: 40 });
      expect(await store.list()).toHaveLength(10);
    });
  });
}
