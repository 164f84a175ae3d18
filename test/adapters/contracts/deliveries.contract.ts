import { describe, expect, it } from 'vitest';
import type { Delivery, DeliveryAttempt, DeliveryChange, Subject } from '../../../src/core/deliveries.ts';
import type { DeliveryLogStore, DeliveryQuery } from '../../../src/core/ports.ts';
import { aDelivery, concurrently, DAY, HOUR, MINUTE, newestFirst, pageAll, T0 } from './fixtures.ts';

export interface DeliveryLogOptions {
  /** Finished deliveries older than this (from creation) may be swept. */
  ttlMs: number;
  maxDeliveries: number;
}

export type DeliveryLogFactory = (options: DeliveryLogOptions) => Promise<DeliveryLogStore> | DeliveryLogStore;

const attempt = (at: number, statusCode: number | null = 200): DeliveryAttempt => ({ at, statusCode, durationMs: 12, error: statusCode === null ? 'ECONNREFUSED' : null });
const delivered = (at: number): DeliveryChange => ({ status: 'delivered', attempt: attempt(at), nextAttemptAt: null, failureReason: null, updatedAt: at });
const replayed = (at: number): DeliveryChange => ({ status: 'pending', nextAttemptAt: at, failureReason: null, newSeries: true, updatedAt: at });
const PAY_1: Subject = { kind: 'intent', id: 'pay_1' };
const PAY_2: Subject = { kind: 'intent', id: 'pay_2' };

/** The DeliveryLogStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function deliveryLogContract(name: string, make: DeliveryLogFactory): void {
  async function storeWith(...deliveries: Delivery[]): Promise<DeliveryLogStore> {
    const store = await make({ ttlMs: DAY, maxDeliveries: 100_000 });
    for (const delivery of deliveries) expect(await store.insert(delivery)).toEqual({ ok: true });
    return store;
  }

  describe(`DeliveryLogStore contract: ${name}`, () => {
    it('get returns the whole logged delivery; an unknown id is undefined', async () => {
      const delivery = aDelivery({ subject: null, test: true });
      const store = await storeWith(delivery);
      expect(await store.get(delivery.id)).toEqual(delivery);
      expect(await store.get('whd_unknown')).toBeUndefined();
      expect(await store.stats()).toEqual({ size: 1, max: 100_000 });
    });

    it('update applies a change and appends its attempt; unknown ids are undefined', async () => {
      const delivery = aDelivery();
      const store = await storeWith(delivery);
      const retry: DeliveryChange = { status: 'retrying', attempt: attempt(T0 + 1, null), nextAttemptAt: T0 + 1_001, failureReason: null, updatedAt: T0 + 1 };
      const retrying: Delivery = { ...delivery, status: 'retrying', attempts: [attempt(T0 + 1, null)], nextAttemptAt: T0 + 1_001, updatedAt: T0 + 1 };
      expect(await store.update(delivery.id, retry)).toEqual(retrying);
      const done: Delivery = { ...retrying, status: 'delivered', attempts: [attempt(T0 + 1, null), attempt(T0 + 1_001)], nextAttemptAt: null, updatedAt: T0 + 1_001 };
      expect(await store.update(delivery.id, delivered(T0 + 1_001))).toEqual(done);
      expect(await store.get(delivery.id)).toEqual(done);
      expect(await store.update('whd_unknown', delivered(T0))).toBeUndefined();
    });

    it('a replay starts a new series at the attempts made so far', async () => {
      const delivery = aDelivery({ status: 'failed', attempts: [attempt(T0, 500), attempt(T0 + 1, 500)], failureReason: 'http_500' });
      const store = await storeWith(delivery);
      const pending: Delivery = { ...delivery, status: 'pending', seriesStart: 2, nextAttemptAt: T0 + HOUR, failureReason: null, updatedAt: T0 + HOUR };
      expect(await store.update(delivery.id, replayed(T0 + HOUR))).toEqual(pending);
      const retried = await store.update(delivery.id, { ...delivered(T0 + HOUR + 5), newSeries: true });
      expect(retried).toEqual({ ...pending, status: 'delivered', seriesStart: 2, attempts: [...delivery.attempts, attempt(T0 + HOUR + 5)], nextAttemptAt: null, updatedAt: T0 + HOUR + 5 });
    });

    it('a replay drops the first series’ drop_attempts plan (also of a delivery that failed before any attempt); other changes keep it', async () => {
      const dropAttempts = { ruleId: 'rule_file-1.x', n: 2 };
      const delivery = aDelivery({ status: 'pending', dropAttempts });
      const store = await storeWith(delivery);
      const failed = await store.update(delivery.id, { status: 'failed', nextAttemptAt: null, failureReason: 'endpoint_disabled', updatedAt: T0 + 1 });
      expect(failed).toEqual({ ...delivery, status: 'failed', failureReason: 'endpoint_disabled', updatedAt: T0 + 1 });
      const { dropAttempts: _plan, ...plain } = delivery;
      const pending: Delivery = { ...plain, status: 'pending', seriesStart: 0, nextAttemptAt: T0 + HOUR, failureReason: null, updatedAt: T0 + HOUR };
      expect(await store.update(delivery.id, replayed(T0 + HOUR))).toEqual(pending);
      expect(await store.get(delivery.id)).toEqual(pending);
      expect(await store.update(delivery.id, delivered(T0 + HOUR + 5))).toEqual({ ...pending, status: 'delivered', attempts: [attempt(T0 + HOUR + 5)], nextAttemptAt: null, updatedAt: T0 + HOUR + 5 });
    });

    it('updateIf changes a delivery only while it has one of the statuses and the attempts expected; of 20 calls at once that read it alike, one does', async () => {
      const delivery = aDelivery({ status: 'failed', attempts: [attempt(T0, 500)], failureReason: 'http_500' });
      const store = await storeWith(delivery);
      const pending: Delivery = { ...delivery, status: 'pending', seriesStart: 1, nextAttemptAt: T0 + HOUR, failureReason: null, updatedAt: T0 + HOUR };
      // Another status, or as many attempts as not: nothing changed, the delivery as it is.
      expect(await store.updateIf(delivery.id, { statuses: ['retrying'], attempts: 1 }, replayed(T0 + HOUR))).toEqual({ delivery, changed: false });
      expect(await store.updateIf(delivery.id, { statuses: ['delivered', 'failed'], attempts: 2 }, replayed(T0 + HOUR))).toEqual({ delivery, changed: false });
      expect(await store.get(delivery.id)).toEqual(delivery);
      const outcomes = await concurrently(20, () => store.updateIf(delivery.id, { statuses: ['delivered', 'failed'], attempts: 1 }, replayed(T0 + HOUR)));
      expect(outcomes.filter((o) => o?.changed === true)).toEqual([{ delivery: pending, changed: true }]);
      expect(outcomes.filter((o) => o?.changed === false)).toEqual(Array(19).fill({ delivery: pending, changed: false }));
      expect(await store.get(delivery.id)).toEqual(pending);
      expect(await store.updateIf('whd_unknown', { statuses: ['pending'], attempts: 0 }, delivered(T0))).toBeUndefined();
    });

    it('records go in and come out as copies', async () => {
      const delivery = aDelivery();
      const expected = structuredClone(delivery);
      const store = await storeWith(delivery);
      delivery.status = 'failed';
      (delivery.attempts as DeliveryAttempt[]).push(attempt(T0));
      const got = (await store.get(delivery.id)) as Delivery;
      (got.attempts as DeliveryAttempt[]).push(attempt(T0));
      got.body = 'changed';
      ((await store.list({ limit: 1 })).data[0] as Delivery).status = 'delivered';
      ((await store.latestFor(PAY_1)) as Delivery).url = 'https://elsewhere.example';
      ((await store.update(delivery.id, replayed(T0 + 1))) as Delivery).seriesStart = 9;
      expect(await store.get(delivery.id)).toEqual({ ...expected, nextAttemptAt: T0 + 1, updatedAt: T0 + 1 });
    });

    it('the subject of a record passed in or handed out is a copy too', async () => {
      const delivery = aDelivery({ subject: { kind: 'intent', id: 'pay_1' } });
      const store = await storeWith(delivery);
      (delivery.subject as Subject).id = 'pay_changed_by_caller';
      ((await store.get(delivery.id)) as Delivery).subject = null;
      (((await store.get(delivery.id)) as Delivery).subject as Subject).kind = 'booking';
      expect((await store.get(delivery.id))?.subject).toEqual(PAY_1);
      expect((await store.list({ limit: 5, subject: PAY_1 })).data.map((d) => d.subject)).toEqual([PAY_1]);
    });

    it('latestFor gives a subject’s newest delivery that is not a test send', async () => {
      const older = aDelivery();
      const newer = aDelivery({ status: 'delivered' });
      const testSend = aDelivery({ test: true });
      const other = aDelivery({ subject: PAY_2, test: true });
      const store = await storeWith(older, newer, testSend, other);
      expect(await store.latestFor(PAY_1)).toEqual(newer);
      expect(await store.latestFor(PAY_2)).toBeUndefined();
      expect(await store.latestFor({ kind: 'booking', id: 'pay_1' })).toBeUndefined();
    });

    describe('insertOnce', () => {
      it('logs a new delivery; another of the same event to the same URL is not logged, and answers the first as it is now', async () => {
        const first = aDelivery({ eventId: 'evt_once', url: 'https://a.example/hooks' });
        const store = await storeWith();
        expect(await store.insertOnce(first)).toEqual({ ok: true });
        const now: Delivery = { ...first, status: 'retrying', attempts: [attempt(T0 + 1, 503)], nextAttemptAt: T0 + 1_001, updatedAt: T0 + 1 };
        await store.update(first.id, { status: 'retrying', attempt: attempt(T0 + 1, 503), nextAttemptAt: T0 + 1_001, failureReason: null, updatedAt: T0 + 1 });
        const again = aDelivery({ eventId: 'evt_once', url: 'https://a.example/hooks', createdAt: T0 + 5 });
        expect(await store.insertOnce(again)).toEqual({ ok: false, reason: 'exists', existing: now });
        expect(await store.get(again.id)).toBeUndefined();
        expect((await store.list({ limit: 10, eventId: 'evt_once' })).data).toEqual([now]);
        expect(await store.stats()).toEqual({ size: 1, max: 100_000 });
      });

      it('the same event to another URL, another event to the same URL, and `insert` (a duplicate fault rule’s copy) are logged', async () => {
        const first = aDelivery({ eventId: 'evt_once', url: 'https://a.example/hooks' });
        const otherUrl = aDelivery({ eventId: 'evt_once', url: 'https://b.example/hooks' });
        const otherEvent = aDelivery({ eventId: 'evt_other', url: 'https://a.example/hooks' });
        const copy = aDelivery({ eventId: 'evt_once', url: 'https://a.example/hooks' });
        const store = await storeWith();
        for (const d of [first, otherUrl, otherEvent]) expect(await store.insertOnce(d)).toEqual({ ok: true });
        expect(await store.insert(copy)).toEqual({ ok: true });
        expect((await store.list({ limit: 10 })).data).toEqual([copy, otherEvent, otherUrl, first]);
        // With two deliveries of the event to the URL, either one is the one found.
        const found = await store.insertOnce(aDelivery({ eventId: 'evt_once', url: 'https://a.example/hooks' }));
        expect(found).toEqual({ ok: false, reason: 'exists', existing: expect.objectContaining({ eventId: 'evt_once', url: 'https://a.example/hooks' }) });
        expect([first.id, copy.id]).toContain((found as { existing: Delivery }).existing.id);
      });

      it('a log full of unfinished deliveries refuses it (full), and an existing one is found even then', async () => {
        const store = await make({ ttlMs: HOUR, maxDeliveries: 1 });
        const kept = aDelivery({ eventId: 'evt_kept' });
        expect(await store.insertOnce(kept)).toEqual({ ok: true });
        expect(await store.insertOnce(aDelivery())).toEqual({ ok: false, reason: 'full' });
        expect(await store.insertOnce(aDelivery({ eventId: 'evt_kept' }))).toEqual({ ok: false, reason: 'exists', existing: kept });
      });

      it('50 concurrent calls for one event and URL log exactly one delivery; the others find it', async () => {
        const store = await storeWith();
        const tries = Array.from({ length: 50 }, () => aDelivery({ eventId: 'evt_race', url: 'https://a.example/hooks' }));
        const results = await concurrently(50, (i) => store.insertOnce(tries[i] as Delivery));
        const logged = results.flatMap((r, i) => (r.ok ? [tries[i] as Delivery] : []));
        expect(logged).toHaveLength(1);
        expect(results.filter((r) => !r.ok)).toEqual(Array(49).fill({ ok: false, reason: 'exists', existing: logged[0] }));
        expect((await store.list({ limit: 100, eventId: 'evt_race' })).data).toEqual(logged);
      });
    });

    describe('list', () => {
      it('lists newest first and pages through every delivery exactly once', async () => {
        const deliveries = Array.from({ length: 23 }, (_, i) => aDelivery({ createdAt: T0 + i, subject: i % 3 === 0 ? null : PAY_1 }));
        const store = await storeWith(...deliveries);
        expect((await store.list({ limit: 5 })).data).toEqual(newestFirst(deliveries).slice(0, 5));
        const { records, pages } = await pageAll(5, (page) => store.list(page));
        expect(records).toEqual(newestFirst(deliveries));
        expect(pages).toBe(5);
      });

      it('filters by subject, event and status, alone or together', async () => {
        const a = aDelivery({ eventId: 'evt_a', status: 'delivered' });
        const b = aDelivery({ eventId: 'evt_a', subject: PAY_2 });
        const c = aDelivery({ eventId: 'evt_c', status: 'failed', failureReason: 'http_410' });
        const d = aDelivery({ eventId: 'evt_a', subject: null, test: true, status: 'delivered' });
        const store = await storeWith(a, b, c, d);
        const all = async (query: Omit<DeliveryQuery, 'limit' | 'cursor'>) => (await pageAll(2, (page) => store.list({ ...page, ...query }))).records;
        expect(await all({ subject: PAY_1 })).toEqual([c, a]);
        expect(await all({ eventId: 'evt_a' })).toEqual([d, b, a]);
        expect(await all({ status: 'delivered' })).toEqual([d, a]);
        expect(await all({ subject: PAY_1, eventId: 'evt_a' })).toEqual([a]);
        expect(await all({ subject: PAY_1, status: 'failed' })).toEqual([c]);
        expect(await all({ eventId: 'evt_a', status: 'pending' })).toEqual([b]);
        expect(await all({ subject: PAY_2, eventId: 'evt_a', status: 'delivered' })).toEqual([]);
        expect(await all({ eventId: 'evt_none' })).toEqual([]);
        expect(await all({ subject: { kind: 'booking', id: 'bk_none' } })).toEqual([]);
      });

      it('a filter that matches rarely over 12,000 deliveries finds exactly its matches by paging until the end', async () => {
        const rare = new Set([2_000, 9_000]);
        const deliveries = Array.from({ length: 12_000 }, (_, i) =>
          rare.has(i) ? aDelivery({ status: 'failed', failureReason: 'http_410' }) : aDelivery({ status: 'delivered', attempts: [attempt(T0)] }),
        );
        const store = await make({ ttlMs: DAY, maxDeliveries: 12_000 });
        await Promise.all(deliveries.map((d) => store.insert(d)));
        const { records } = await pageAll(10, (page) => store.list({ ...page, subject: PAY_1, status: 'failed' }));
        expect(records).toEqual([deliveries[9_000], deliveries[2_000]]);
      });
    });

    describe('bounds and TTL', () => {
      it('a log full of unfinished deliveries refuses new ones', async () => {
        const store = await make({ ttlMs: HOUR, maxDeliveries: 2 });
        const kept = [aDelivery(), aDelivery({ status: 'retrying', nextAttemptAt: T0 + 1 })];
        for (const d of kept) await store.insert(d);
        expect(await store.insert(aDelivery())).toEqual({ ok: false, reason: 'full' });
        expect(await store.sweep(T0 + DAY)).toBe(0);
        for (const d of kept) expect(await store.get(d.id)).toEqual(d);
        expect(await store.stats()).toEqual({ size: 2, max: 2 });
      });

      it('at the bound the oldest finished delivery makes room', async () => {
        const store = await make({ ttlMs: DAY, maxDeliveries: 3 });
        const [a, b, c] = [aDelivery(), aDelivery(), aDelivery()];
        for (const d of [a, b, c]) await store.insert(d);
        await store.update(a.id, { status: 'failed', nextAttemptAt: null, failureReason: 'http_410', updatedAt: T0 + 1 });
        await store.update(c.id, delivered(T0 + 2));
        const d = aDelivery();
        expect(await store.insert(d)).toEqual({ ok: true });
        expect(await store.get(a.id)).toBeUndefined();
        expect((await store.list({ limit: 10 })).data.map((x) => x.id)).toEqual([d.id, c.id, b.id]);
      });

      it('a delivery replayed to pending is not evicted until it finishes again', async () => {
        const store = await make({ ttlMs: HOUR, maxDeliveries: 2 });
        const a = aDelivery({ status: 'failed', failureReason: 'http_500' });
        const b = aDelivery();
        await store.insert(a);
        await store.insert(b);
        await store.update(a.id, replayed(T0 + 1));
        expect(await store.insert(aDelivery())).toEqual({ ok: false, reason: 'full' });
        expect(await store.sweep(T0 + DAY)).toBe(0);
        expect(await store.get(a.id)).toMatchObject({ status: 'pending', seriesStart: 0 });
        await store.update(a.id, delivered(T0 + 2));
        const c = aDelivery({ createdAt: T0 + 3 });
        expect(await store.insert(c)).toEqual({ ok: true });
        expect(await store.get(a.id)).toBeUndefined();
      });

      it('sweep evicts finished deliveries older than the TTL from creation, and counts them', async () => {
        const store = await make({ ttlMs: HOUR, maxDeliveries: 100 });
        const old = aDelivery({ status: 'delivered' });
        const oldPending = aDelivery();
        const younger = aDelivery({ createdAt: T0 + 30 * MINUTE, status: 'failed', failureReason: 'http_410' });
        for (const d of [old, oldPending, younger]) await store.insert(d);
        expect(await store.sweep(T0 + HOUR - 1)).toBe(0);
        expect(await store.sweep(T0 + HOUR + 1)).toBe(1);
        expect(await store.get(old.id)).toBeUndefined();
        expect(await store.sweep(T0 + 90 * MINUTE + 1)).toBe(1);
        expect((await store.list({ limit: 10 })).data).toEqual([oldPending]);
        expect((await store.list({ limit: 10, subject: PAY_1, status: 'delivered' })).data).toEqual([]);
        expect(await store.latestFor(PAY_1)).toEqual(oldPending);
        expect(await store.stats()).toEqual({ size: 1, max: 100 });
      });
    });

    describe('under concurrent calls', () => {
      it('50 inserts into room for 10 unfinished deliveries: exactly 10 go in', async () => {
        const store = await make({ ttlMs: DAY, maxDeliveries: 10 });
        const results = await concurrently(50, () => store.insert(aDelivery()));
        expect(results.filter((r) => r.ok)).toHaveLength(10);
        expect(results.filter((r) => !r.ok)).toEqual(Array(40).fill({ ok: false, reason: 'full' }));
        expect(await store.stats()).toEqual({ size: 10, max: 10 });
      });

      it('100 updates at once append 100 attempts, none lost', async () => {
        const delivery = aDelivery();
        const store = await storeWith(delivery);
        await concurrently(100, (i) => store.update(delivery.id, { status: 'retrying', attempt: attempt(T0 + i, 503), nextAttemptAt: T0 + i + 1, failureReason: null, updatedAt: T0 + i }));
        const after = (await store.get(delivery.id)) as Delivery;
        expect(after.attempts).toHaveLength(100);
        expect(new Set(after.attempts.map((a) => a.at)).size).toBe(100);
      });
    });
  });
}
