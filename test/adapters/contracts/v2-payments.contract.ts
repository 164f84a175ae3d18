import { describe, expect, it } from 'vitest';
import type { Page, V2PaymentStore } from '../../../src/core/ports.ts';
import type { V2Payment } from '../../../src/core/v2/payment.ts';
import { aV2Payment, concurrently, DAY, HOUR, MINUTE, T0, tally } from './fixtures.ts';

export interface V2PaymentStoreOptions {
  /** Finished payments older than this (from creation) may be swept. */
  ttlMs: number;
  maxPayments: number;
}

export type V2PaymentStoreFactory = (options: V2PaymentStoreOptions) => Promise<V2PaymentStore> | V2PaymentStore;

const ROOMY: V2PaymentStoreOptions = { ttlMs: DAY, maxPayments: 100_000 };
const FAILS = { status: 'PAYMENT_FAILED' as const, failureCode: 'card_declined' };

/** The V2PaymentStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function v2PaymentStoreContract(name: string, make: V2PaymentStoreFactory): void {
  async function storeWith(options: V2PaymentStoreOptions, ...payments: V2Payment[]): Promise<V2PaymentStore> {
    const store = await make(options);
    for (const payment of payments) expect(await store.begin(payment)).toEqual({ kind: 'created', payment });
    return store;
  }

  const ids = (payments: readonly V2Payment[] | Page<V2Payment>) => ('data' in payments ? payments.data : payments).map((p) => p.id);

  describe(`V2PaymentStore contract: ${name}`, () => {
    describe('begin', () => {
      it('stores a new tx_id and hands back the whole payment; get reads it; an unknown id is undefined', async () => {
        const payment = aV2Payment();
        const store = await storeWith(ROOMY, payment);
        expect(await store.get(payment.id)).toEqual(payment);
        expect(await store.get('pay_unknown')).toBeUndefined();
      });

      it('keeps the mark of a payment a fault rule decided, through get and decide; one without it (as every one stored before 2026-12-04) reads without it', async () => {
        const ruled = aV2Payment({ txId: 'tx_ruled', id: 'pay_tx_ruled', decidedByRule: true });
        const plain = aV2Payment({ txId: 'tx_plain', id: 'pay_tx_plain' });
        const store = await storeWith(ROOMY, ruled, plain);
        expect(await store.get(ruled.id)).toEqual(ruled);
        expect((await store.get(ruled.id))?.decidedByRule).toBe(true);
        expect('decidedByRule' in ((await store.get(plain.id)) as V2Payment)).toBe(false);
      });

      it('the same request again finds the payment as it is now; another request with the tx_id is a conflict', async () => {
        const payment = aV2Payment();
        const store = await storeWith(ROOMY, payment);
        await store.decide(payment.id, T0 + 10);
        const now = { ...payment, decidedAt: T0 + 10 };
        // A repeat made later (its own createdAt, scenario and plan) is still the same request.
        expect(await store.begin({ ...payment, createdAt: T0 + 99, scenario: 'fail', planned: FAILS })).toEqual({ kind: 'existing', payment: now });
        for (const other of [{ amount: 1001 }, { orderId: 124 }, { userId: 2 }, { callbackUrl: 'https://ops.example/other' }]) {
          expect(await store.begin({ ...payment, ...other })).toEqual({ kind: 'conflict', payment: now });
        }
        expect(await store.get(payment.id)).toEqual(now);
        expect((await store.stats()).size).toBe(1);
      });

      it('of 200 concurrent begins of one tx_id exactly one creates (and a different body conflicts)', async () => {
        const store = await make(ROOMY);
        const payment = aV2Payment();
        const results = await concurrently(200, (i) => store.begin(i % 10 === 9 ? { ...payment, amount: 5 } : { ...payment }));
        const counts = tally(results);
        expect(counts.created).toBe(1);
        expect((counts.existing ?? 0) + (counts.conflict ?? 0)).toBe(199);
        expect((await store.counts()).PENDING).toBe(1);
      });

      it('records go in and come out as copies', async () => {
        const payment = aV2Payment();
        const expected = structuredClone(payment);
        const store = await make(ROOMY);
        const created = await store.begin(payment);
        payment.amount = 1;
        if (created.kind !== 'created') throw new Error(created.kind);
        created.payment.status = 'PAYMENT_FAILED';
        const got = (await store.get(payment.id)) as V2Payment;
        got.orderId = 0;
        const listed = await store.list({ limit: 10 });
        (listed.data[0] as V2Payment).userId = 99;
        const decided = await store.decide(payment.id, T0 + 1);
        if (!decided.ok) throw new Error('decide refused');
        decided.record.status = 'PAYMENT_COMPLETED';
        expect(await store.get(payment.id)).toEqual({ ...expected, decidedAt: T0 + 1 });
        try {
          (got.planned as { status: string }).status = 'PAYMENT_FAILED';
        } catch {
          // A store may hand out a frozen (shared) plan: then the change is refused outright.
        }
        expect((await store.get(payment.id))?.planned).toEqual({ status: 'PAYMENT_COMPLETED', failureCode: null });
      });
    });

    describe('decide', () => {
      it('an approval stays PENDING with decidedAt (its callback is out); a decline becomes PAYMENT_FAILED with its code', async () => {
        const ok = aV2Payment();
        const ko = aV2Payment({ planned: FAILS, scenario: 'fail' });
        const store = await storeWith(ROOMY, ok, ko);
        expect(await store.decide(ok.id, T0 + 5)).toEqual({ ok: true, record: { ...ok, decidedAt: T0 + 5 } });
        expect(await store.decide(ko.id, T0 + 6)).toEqual({ ok: true, record: { ...ko, status: 'PAYMENT_FAILED', failureCode: 'card_declined', decidedAt: T0 + 6 } });
        expect(await store.counts()).toEqual({ PENDING: 1, PAYMENT_COMPLETED: 0, PAYMENT_FAILED: 1 });
      });

      it('runs once: a decided, completed or unknown payment is refused with what is there', async () => {
        const payment = aV2Payment();
        const confirmed = aV2Payment();
        const store = await storeWith(ROOMY, payment, confirmed);
        await store.decide(payment.id, T0 + 5);
        expect(await store.decide(payment.id, T0 + 9)).toEqual({ ok: false, current: { ...payment, decidedAt: T0 + 5 } });
        await store.complete(confirmed.id, 'manual', T0 + 7);
        expect(await store.decide(confirmed.id, T0 + 9)).toEqual({ ok: false, current: { ...confirmed, status: 'PAYMENT_COMPLETED', confirmedAt: T0 + 7, completedBy: 'manual' } });
        expect(await store.decide('pay_unknown', T0)).toEqual({ ok: false, current: undefined });
      });

      it('of concurrent decides exactly one applies', async () => {
        const payment = aV2Payment({ planned: FAILS });
        const store = await storeWith(ROOMY, payment);
        const results = await concurrently(20, (i) => store.decide(payment.id, T0 + i));
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        expect((await store.counts()).PAYMENT_FAILED).toBe(1);
      });
    });

    describe('complete', () => {
      it('callback: only a decided payment planned to complete; confirmedAt is the decision’s time', async () => {
        const payment = aV2Payment();
        const store = await storeWith(ROOMY, payment);
        expect(await store.complete(payment.id, 'callback', T0 + 50)).toEqual({ ok: false, current: payment });
        await store.decide(payment.id, T0 + 5);
        const done = { ...payment, status: 'PAYMENT_COMPLETED' as const, decidedAt: T0 + 5, confirmedAt: T0 + 5, completedBy: 'callback' as const };
        expect(await store.complete(payment.id, 'callback', T0 + 50)).toEqual({ ok: true, record: done });
        expect(await store.complete(payment.id, 'callback', T0 + 60)).toEqual({ ok: false, current: done });
        expect(await store.complete(payment.id, 'manual', T0 + 60)).toEqual({ ok: false, current: done });
      });

      it('a declined payment is never completed', async () => {
        const payment = aV2Payment({ planned: FAILS });
        const store = await storeWith(ROOMY, payment);
        await store.decide(payment.id, T0 + 5);
        for (const by of ['callback', 'manual'] as const) expect((await store.complete(payment.id, by, T0 + 9)).ok).toBe(false);
        expect((await store.get(payment.id))?.status).toBe('PAYMENT_FAILED');
      });

      it('manual: any PENDING payment, decided or not; confirmedAt is now', async () => {
        const undecided = aV2Payment();
        const decided = aV2Payment({ planned: FAILS });
        const store = await storeWith(ROOMY, undecided, decided);
        expect(await store.complete(undecided.id, 'manual', T0 + 30)).toEqual({ ok: true, record: { ...undecided, status: 'PAYMENT_COMPLETED', confirmedAt: T0 + 30, completedBy: 'manual' } });
        expect(await store.complete('pay_unknown', 'manual', T0)).toEqual({ ok: false, current: undefined });
        expect(await store.counts()).toEqual({ PENDING: 1, PAYMENT_COMPLETED: 1, PAYMENT_FAILED: 0 });
      });

      it('of a callback and a manual confirm at once, exactly one completes', async () => {
        const store = await make(ROOMY);
        const payments = Array.from({ length: 50 }, () => aV2Payment());
        for (const p of payments) {
          await store.begin(p);
          await store.decide(p.id, T0 + 1);
        }
        const results = await concurrently(100, (i) => store.complete((payments[i >> 1] as V2Payment).id, i % 2 === 0 ? 'callback' : 'manual', T0 + 9));
        expect(results.filter((r) => r.ok)).toHaveLength(50);
        expect(await store.counts()).toEqual({ PENDING: 0, PAYMENT_COMPLETED: 50, PAYMENT_FAILED: 0 });
      });
    });

    describe('list and counts', () => {
      it('newest first by creation, at most limit, of one status when asked; counts are of everything held', async () => {
        const [a, b, c, d, e] = Array.from({ length: 5 }, (_, i) => aV2Payment({ createdAt: T0 + i, planned: i === 1 ? FAILS : { status: 'PAYMENT_COMPLETED', failureCode: null } }));
        const store = await storeWith(ROOMY, a!, b!, c!, d!, e!);
        await store.decide(b!.id, T0 + 10);
        // Completed in another order than created: the list stays in creation order.
        for (const p of [d!, a!]) {
          await store.decide(p.id, T0 + 10);
          await store.complete(p.id, 'callback', T0 + 11);
        }
        expect(ids(await store.list({ limit: 10 }))).toEqual(ids([e!, d!, c!, b!, a!]));
        expect(ids(await store.list({ limit: 2 }))).toEqual(ids([e!, d!]));
        expect(ids(await store.list({ limit: 10, status: 'PAYMENT_COMPLETED' }))).toEqual(ids([d!, a!]));
        expect(ids(await store.list({ limit: 1, status: 'PAYMENT_COMPLETED' }))).toEqual(ids([d!]));
        expect(ids(await store.list({ limit: 10, status: 'PENDING' }))).toEqual(ids([e!, c!]));
        expect(ids(await store.list({ limit: 10, status: 'PAYMENT_FAILED' }))).toEqual(ids([b!]));
        expect(await store.counts()).toEqual({ PENDING: 2, PAYMENT_COMPLETED: 2, PAYMENT_FAILED: 1 });
        expect((await store.list({ limit: 10 })).data[1]).toEqual({ ...d!, status: 'PAYMENT_COMPLETED', decidedAt: T0 + 10, confirmedAt: T0 + 10, completedBy: 'callback' });
      });

      it('a list of thousands that moved between statuses is complete and in order', async () => {
        const store = await make(ROOMY);
        const all = Array.from({ length: 3000 }, (_, i) => aV2Payment({ createdAt: T0 + i }));
        for (const p of all) await store.begin(p);
        // Every other one completes, newest first (the worst order for an index kept sorted).
        for (let i = all.length - 1; i >= 0; i -= 2) {
          await store.decide((all[i] as V2Payment).id, T0 + 5000);
          await store.complete((all[i] as V2Payment).id, 'callback', T0 + 5001);
        }
        const completed = all.filter((_, i) => i % 2 === 1).reverse();
        const pending = all.filter((_, i) => i % 2 === 0).reverse();
        expect(ids(await store.list({ limit: 10_000, status: 'PAYMENT_COMPLETED' }))).toEqual(ids(completed));
        expect(ids(await store.list({ limit: 10_000, status: 'PENDING' }))).toEqual(ids(pending));
        expect(ids(await store.list({ limit: 10_000 }))).toEqual(ids([...all].reverse()));
      });
      it('a list of more than 5,000 is whole (the /api/v2 list asks up to 10,000, the report V2_PAYMENTS_MAX), of one status too', async () => {
        const store = await make(ROOMY);
        const all = Array.from({ length: 6000 }, (_, i) => aV2Payment({ createdAt: T0 + i, planned: i % 2 === 0 ? FAILS : { status: 'PAYMENT_COMPLETED', failureCode: null } }));
        for (const p of all) await store.begin(p);
        // Half of them leave PENDING: its list in memory keeps 3,000 dead entries among 6,000.
        for (let i = 0; i < all.length; i += 2) await store.decide((all[i] as V2Payment).id, T0 + 7000);
        const whole = await store.list({ limit: 10_000 });
        expect(ids(whole)).toEqual(ids([...all].reverse()));
        expect(whole.nextCursor).toBeNull();
        const pending = await store.list({ limit: 10_000, status: 'PENDING' });
        expect(ids(pending)).toEqual(ids(all.filter((_, i) => i % 2 === 1).reverse()));
        expect(pending.nextCursor).toBeNull();
        const page = await store.list({ limit: 5500 });
        expect(ids(page)).toEqual(ids([...all].reverse().slice(0, 5500)));
        expect(page.nextCursor).toBe(page.cursors[5499]);
      });

      it('pages from a cursor (a page\'s nextCursor, or a payment\'s own) to the oldest, every payment once, in creation order, of one status too; null after the last page', async () => {
        const store = await make(ROOMY);
        // Created out of id order, and with one creation time for several: the list follows creation.
        const all = Array.from({ length: 23 }, (_, i) => aV2Payment({ txId: `tx_${(i * 7) % 23}`, id: `pay_tx_${(i * 7) % 23}`, createdAt: T0 + Math.floor(i / 3), planned: i % 4 === 0 ? FAILS : { status: 'PAYMENT_COMPLETED', failureCode: null } }));
        for (const p of all) expect((await store.begin(p)).kind).toBe('created');
        for (const [i, p] of all.entries()) if (i % 4 === 0) await store.decide(p.id, T0 + 100);
        const walk = async (limit: number, status?: V2Payment['status']) => {
          const pages: string[][] = [];
          let cursor: string | undefined;
          for (;;) {
            const page = await store.list({ limit, status, cursor });
            pages.push(ids(page));
            expect(page.cursors).toHaveLength(page.data.length);
            if (page.nextCursor === null) return pages;
            expect(page.data).toHaveLength(limit);
            cursor = page.nextCursor;
          }
        };
        const newest = ids([...all].reverse());
        expect(await walk(5)).toEqual([0, 5, 10, 15, 20].map((i) => newest.slice(i, i + 5)));
        // A last page that is exactly full says there is no next one.
        expect(await walk(23)).toEqual([newest]);
        const failed = ids(all.filter((_, i) => i % 4 === 0).reverse());
        expect(failed).toHaveLength(6);
        expect(await walk(4, 'PAYMENT_FAILED')).toEqual([failed.slice(0, 4), failed.slice(4)]);
        const pending = ids(all.filter((_, i) => i % 4 !== 0).reverse());
        expect((await walk(7, 'PENDING')).flat()).toEqual(pending);
        // Payments made after a cursor was handed out are not on its later pages (they are newer).
        const first = await store.list({ limit: 3 });
        await store.begin(aV2Payment({ txId: 'tx_later', id: 'pay_tx_later', createdAt: T0 + 50 }));
        expect(first.nextCursor).toBe(first.cursors[2]);
        expect(ids(await store.list({ limit: 3, cursor: first.nextCursor as string }))).toEqual(newest.slice(3, 6));
        // A payment's own cursor goes on after it.
        expect(ids(await store.list({ limit: 3, cursor: first.cursors[0] }))).toEqual(newest.slice(1, 4));
      });

      it('a cursor stays valid once its payment is evicted; a string that is not a cursor is refused (RangeError)', async () => {
        const store = await make({ ttlMs: HOUR, maxPayments: 100 });
        const [a, b, c] = [aV2Payment({ createdAt: T0 }), aV2Payment({ createdAt: T0 }), aV2Payment({ createdAt: T0, planned: FAILS })];
        const d = aV2Payment({ createdAt: T0 + 2 * HOUR });
        for (const p of [a, b, c, d]) await store.begin(p);
        await store.decide(c.id, T0 + 1);
        const first = await store.list({ limit: 2 });
        expect(ids(first)).toEqual([d.id, c.id]);
        expect(await store.sweep(T0 + HOUR)).toBe(1);
        expect(await store.get(c.id)).toBeUndefined();
        expect(await store.list({ limit: 2, cursor: first.nextCursor as string })).toEqual({ data: [b, a], cursors: [expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d+$/)], nextCursor: null });
        for (const cursor of ['', 'pay_x', '-1', '1.5', '1'.repeat(16)]) await expect(store.list({ limit: 2, cursor })).rejects.toThrow(RangeError);
      });
    });

    describe('bounds', () => {
      it('beyond the maximum the oldest finished payment goes; PENDING ones never do, and a store of only PENDING ones is full', async () => {
        const store = await make({ ttlMs: DAY, maxPayments: 3 });
        const [a, b, c] = Array.from({ length: 3 }, () => aV2Payment());
        for (const p of [a!, b!, c!]) await store.begin(p);
        expect(await store.begin(aV2Payment())).toEqual({ kind: 'full' });
        await store.decide(b!.id, T0 + 1);
        await store.complete(b!.id, 'callback', T0 + 2);
        const d = aV2Payment();
        expect((await store.begin(d)).kind).toBe('created');
        expect(await store.get(b!.id)).toBeUndefined();
        expect(ids(await store.list({ limit: 10 }))).toEqual(ids([d, c!, a!]));
        expect(await store.counts()).toEqual({ PENDING: 3, PAYMENT_COMPLETED: 0, PAYMENT_FAILED: 0 });
        expect(await store.stats()).toEqual({ size: 3, max: 3 });
        // An evicted tx_id is new again: another body is no conflict (once there is room).
        await store.complete(c!.id, 'manual', T0 + 3);
        expect(await store.begin({ ...b!, amount: 7 })).toEqual({ kind: 'created', payment: { ...b!, amount: 7 } });
        expect(await store.get(c!.id)).toBeUndefined();
      });

      it('the sweep evicts finished payments older than the TTL, never PENDING ones', async () => {
        const store = await make({ ttlMs: HOUR, maxPayments: 100 });
        const old = aV2Payment({ createdAt: T0, planned: FAILS });
        const oldPending = aV2Payment({ createdAt: T0 });
        const young = aV2Payment({ createdAt: T0 + 30 * MINUTE, planned: FAILS });
        for (const p of [old, oldPending, young]) await store.begin(p);
        await store.decide(old.id, T0 + 1);
        await store.decide(young.id, T0 + 30 * MINUTE + 1);
        expect(await store.sweep(T0 + HOUR - 1)).toBe(0);
        expect(await store.sweep(T0 + HOUR)).toBe(1);
        expect(await store.get(old.id)).toBeUndefined();
        expect(await store.get(oldPending.id)).toBeDefined();
        expect(await store.sweep(T0 + 5 * HOUR)).toBe(1);
        expect(ids(await store.list({ limit: 10 }))).toEqual([oldPending.id]);
        expect(await store.counts()).toEqual({ PENDING: 1, PAYMENT_COMPLETED: 0, PAYMENT_FAILED: 0 });
        expect((await store.stats()).size).toBe(1);
      });
    });
  });
}
