import { describe, expect, it } from 'vitest';
import type { Intent } from '../../../src/core/intents/intent.ts';
import type { IntentPatch, IntentQuery, IntentStore } from '../../../src/core/ports.ts';
import { anIntent, concurrently, DAY, HOUR, MINUTE, newestFirst, pageAll, T0, tally } from './fixtures.ts';

// A patch never names PENDING: an intent does not go back to it, and both stores' eviction order
// counts on that (an intent joins it when it leaves PENDING). `make lint` checks this line.
// @ts-expect-error PENDING is not a patch's status
void ({ status: 'PENDING', updatedAt: T0 } satisfies IntentPatch);

export interface IntentStoreOptions {
  /** Final intents older than this (from creation) may be swept. */
  ttlMs: number;
  maxIntents: number;
}

export type IntentStoreFactory = (options: IntentStoreOptions) => Promise<IntentStore> | IntentStore;

const ROOMY: IntentStoreOptions = { ttlMs: DAY, maxIntents: 100_000 };

/** The IntentStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function intentStoreContract(name: string, make: IntentStoreFactory): void {
  async function storeWith(...intents: Intent[]): Promise<IntentStore> {
    const store = await make(ROOMY);
    for (const intent of intents) expect(await store.insert(intent)).toEqual({ ok: true });
    return store;
  }

  const approved = (overrides: Partial<Intent> = {}): Intent =>
    anIntent({ status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200, amount: 500, ...overrides });

  describe(`IntentStore contract: ${name}`, () => {
    it('get returns the whole inserted intent; an unknown id is undefined', async () => {
      const intent = anIntent();
      const store = await storeWith(intent);
      expect(await store.get(intent.id)).toEqual(intent);
      expect(await store.get('pay_unknown')).toBeUndefined();
    });

    it('keeps the mark of an intent a fault rule decided, through get, decide and list; an intent without it (as every one stored before 2026-12-04) reads without it', async () => {
      const ruled = anIntent({ id: 'pay_ruled', decidedByRule: true });
      const plain = anIntent({ id: 'pay_plain' });
      const store = await storeWith(ruled, plain);
      expect(await store.get(ruled.id)).toEqual(ruled);
      expect(await store.decide(ruled.id, T0 + 100)).toEqual({ ok: true, record: { ...ruled, status: 'APPROVED', updatedAt: T0 + 100, decidedAt: T0 + 100 } });
      const listed = (await store.list({ limit: 10 })).data;
      expect(listed.map((i) => [i.id, i.decidedByRule]).sort()).toEqual([
        ['pay_plain', undefined],
        ['pay_ruled', true],
      ]);
      expect('decidedByRule' in ((await store.get(plain.id)) as Intent)).toBe(false);
    });

    it('text of any kind comes back as it went in, through get, list, decide, transition and refund', async () => {
      // Quotes, backslashes, slashes, control characters, NUL, non-Latin text and an astral emoji.
      const odd = 'a"b\\c/d\u0000e\u001ff\n\tg — 결제 ✓ 🎟️ </script>';
      const intent = anIntent({ reservationId: `res_${odd}`, metadata: { [odd]: odd, note: '{"json":[1,2]}' }, webhookUrl: `http://127.0.0.1:9/h?q=${encodeURIComponent(odd)}`, planned: { status: 'FAILED', failureCode: odd } });
      const store = await storeWith(intent);
      expect(await store.get(intent.id)).toEqual(intent);
      expect((await store.list({ limit: 1, reservationId: intent.reservationId })).data).toEqual([intent]);
      const decided = await store.decide(intent.id, T0 + 200);
      const failed = { ...intent, status: 'FAILED' as const, failureCode: odd, decidedAt: T0 + 200, updatedAt: T0 + 200 };
      expect(decided).toEqual({ ok: true, record: failed });
      expect(await store.transition(intent.id, ['PENDING'], { status: 'CANCELLED', updatedAt: T0 + 300 })).toEqual({ ok: false, current: failed });
      expect(await store.refund(intent.id, 1, T0 + 300)).toEqual({ kind: 'invalid_state', intent: failed });
      expect(await store.get(intent.id)).toEqual(failed);
      // A transition that applies, with odd text in its patch, and refunds that apply or exceed.
      const pending = anIntent({ reservationId: `res_${odd}`, metadata: { [odd]: odd } });
      const paid = anIntent({ reservationId: `res_${odd}`, metadata: { [odd]: odd }, status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200, amount: 500 });
      for (const record of [pending, paid]) expect(await store.insert(record)).toEqual({ ok: true });
      const cancelled = { ...pending, status: 'CANCELLED' as const, failureCode: odd, updatedAt: T0 + 400 };
      expect(await store.transition(pending.id, ['PENDING'], { status: 'CANCELLED', failureCode: odd, updatedAt: T0 + 400 })).toEqual({ ok: true, record: cancelled });
      const partly = { ...paid, status: 'PARTIALLY_REFUNDED' as const, refundedAmount: 100, updatedAt: T0 + 500 };
      expect(await store.refund(paid.id, 100, T0 + 500)).toEqual({ kind: 'refunded', intent: partly, amount: 100, at: T0 + 500 });
      expect(await store.refund(paid.id, 1_000, T0 + 600)).toEqual({ kind: 'exceeds', intent: partly, left: 400 });
      expect((await store.list({ limit: 10, reservationId: intent.reservationId })).data).toEqual([partly, cancelled, failed]);
    });

    it('records go in and come out as copies', async () => {
      const intent = anIntent({ status: 'APPROVED', amount: 500 });
      const expected = structuredClone(intent);
      const store = await storeWith(intent);
      intent.status = 'FAILED';
      intent.amount = 1;
      const got = (await store.get(intent.id)) as Intent;
      got.status = 'CANCELLED';
      const listed = await store.list({ limit: 10 });
      (listed.data[0] as Intent).refundedAmount = 99;
      const refunded = await store.refund(intent.id, 100, T0 + 1);
      if (refunded.kind !== 'refunded') throw new Error(`unexpected ${refunded.kind}`);
      refunded.intent.refundedAmount = 0;
      const moved = await store.transition(intent.id, ['PARTIALLY_REFUNDED'], { status: 'PARTIALLY_REFUNDED', updatedAt: T0 + 2 });
      if (!moved.ok) throw new Error('transition refused');
      moved.record.status = 'PENDING';
      expect(await store.get(intent.id)).toEqual({ ...expected, status: 'PARTIALLY_REFUNDED', refundedAmount: 100, updatedAt: T0 + 2 });
    });

    it('the planned outcome of a record passed in or handed out cannot be changed through it', async () => {
      const planned = { status: 'APPROVED' as 'APPROVED' | 'FAILED', failureCode: null as string | null };
      const intent = anIntent({ planned });
      const store = await storeWith(intent);
      planned.status = 'FAILED';
      const got = (await store.get(intent.id)) as Intent;
      try {
        (got.planned as { failureCode: string | null }).failureCode = 'card_declined';
      } catch {
        // A store may hand out a frozen (shared) outcome: then the change is refused outright.
      }
      expect(await store.get(intent.id)).toEqual({ ...intent, planned: { status: 'APPROVED', failureCode: null } });
      const decided = await store.decide(intent.id, T0 + 200);
      expect(decided).toEqual({ ok: true, record: expect.objectContaining({ status: 'APPROVED', failureCode: null }) });
    });

    describe('decide', () => {
      it('applies the planned outcome of a PENDING intent', async () => {
        const ok = anIntent({ planned: { status: 'APPROVED', failureCode: null } });
        const ko = anIntent({ planned: { status: 'FAILED', failureCode: 'card_declined' } });
        const store = await storeWith(ok, ko);
        const okDecided: Intent = { ...ok, status: 'APPROVED', failureCode: null, decidedAt: T0 + 200, updatedAt: T0 + 200 };
        const koDecided: Intent = { ...ko, status: 'FAILED', failureCode: 'card_declined', decidedAt: T0 + 100, updatedAt: T0 + 100 };
        expect(await store.decide(ok.id, T0 + 200)).toEqual({ ok: true, record: okDecided });
        expect(await store.decide(ko.id, T0 + 100)).toEqual({ ok: true, record: koDecided });
        expect(await store.get(ok.id)).toEqual(okDecided);
        expect(await store.get(ko.id)).toEqual(koDecided);
      });

      it('refuses an intent that is no longer PENDING, showing it as it is, and an unknown one', async () => {
        const intent = anIntent({ status: 'CANCELLED', updatedAt: T0 + 5 });
        const store = await storeWith(intent);
        expect(await store.decide(intent.id, T0 + 200)).toEqual({ ok: false, current: intent });
        expect(await store.get(intent.id)).toEqual(intent);
        expect(await store.decide('pay_unknown', T0)).toEqual({ ok: false, current: undefined });
      });

      it('300 decisions asked at once, with unknown ids and repeats among them, each answer for its own intent', async () => {
        const intents = Array.from({ length: 300 }, (_, i) => anIntent({ planned: i % 3 === 0 ? { status: 'FAILED', failureCode: `code_${i}` } : { status: 'APPROVED', failureCode: null } }));
        const store = await storeWith(...intents);
        const decided = (intent: Intent, i: number): Intent => ({ ...intent, status: intent.planned.status, failureCode: intent.planned.failureCode, decidedAt: T0 + i, updatedAt: T0 + i });
        // Each intent decided at its own time, an unknown id after every 50th, and every 7th asked twice.
        const asks: Array<{ id: string; now: number; expected: unknown }> = [];
        intents.forEach((intent, i) => {
          asks.push({ id: intent.id, now: T0 + i, expected: { ok: true, record: decided(intent, i) } });
          if (i % 50 === 0) asks.push({ id: `pay_unknown_${i}`, now: T0, expected: { ok: false, current: undefined } });
          if (i % 7 === 0) asks.push({ id: intent.id, now: T0 + 1000, expected: { ok: false, current: decided(intent, i) } });
        });
        const results = await Promise.all(asks.map(({ id, now }) => store.decide(id, now)));
        expect(results).toEqual(asks.map(({ expected }) => expected));
        expect(await store.counts()).toEqual({ PENDING: 0, APPROVED: 200, FAILED: 100, CANCELLED: 0, REFUNDED: 0, PARTIALLY_REFUNDED: 0 });
        expect(await store.get((intents[299] as Intent).id)).toEqual(decided(intents[299] as Intent, 299));
      });
    });

    describe('transition', () => {
      it('sets the patch when the status is one of `from`, leaving fields the patch omits', async () => {
        const intent = anIntent({ failureCode: null });
        const store = await storeWith(intent);
        const cancelled: Intent = { ...intent, status: 'CANCELLED', updatedAt: T0 + 50 };
        expect(await store.transition(intent.id, ['PENDING'], { status: 'CANCELLED', updatedAt: T0 + 50 })).toEqual({ ok: true, record: cancelled });
        expect(await store.get(intent.id)).toEqual(cancelled);
      });

      it('sets failureCode and decidedAt when the patch gives them, null included', async () => {
        const intent = anIntent({ status: 'PENDING', failureCode: 'stale' });
        const store = await storeWith(intent);
        const failed: Intent = { ...intent, status: 'FAILED', failureCode: null, decidedAt: T0 + 9, updatedAt: T0 + 9 };
        expect(await store.transition(intent.id, ['PENDING', 'APPROVED'], { status: 'FAILED', failureCode: null, decidedAt: T0 + 9, updatedAt: T0 + 9 })).toEqual({ ok: true, record: failed });
      });

      it('refuses from any other status, changing nothing; unknown ids have no current', async () => {
        const intent = approved();
        const store = await storeWith(intent);
        expect(await store.transition(intent.id, ['PENDING'], { status: 'CANCELLED', updatedAt: T0 + 1 })).toEqual({ ok: false, current: intent });
        expect(await store.get(intent.id)).toEqual(intent);
        expect(await store.transition('pay_unknown', ['PENDING'], { status: 'CANCELLED', updatedAt: T0 })).toEqual({ ok: false, current: undefined });
      });
    });

    describe('refund', () => {
      it('refunds part, then the rest (the default amount), ending REFUNDED', async () => {
        const intent = approved();
        const store = await storeWith(intent);
        const partial: Intent = { ...intent, status: 'PARTIALLY_REFUNDED', refundedAmount: 200, updatedAt: T0 + 1_000 };
        expect(await store.refund(intent.id, 200, T0 + 1_000)).toEqual({ kind: 'refunded', intent: partial, amount: 200, at: T0 + 1_000 });
        const full: Intent = { ...partial, status: 'REFUNDED', refundedAmount: 500, updatedAt: T0 + 2_000 };
        expect(await store.refund(intent.id, undefined, T0 + 2_000)).toEqual({ kind: 'refunded', intent: full, amount: 300, at: T0 + 2_000 });
        expect(await store.get(intent.id)).toEqual(full);
        expect(await store.refund(intent.id, 1, T0 + 3_000)).toEqual({ kind: 'invalid_state', intent: full });
      });

      it('refuses more than is left, saying how much is, and changes nothing', async () => {
        const intent = approved({ status: 'PARTIALLY_REFUNDED', refundedAmount: 450 });
        const store = await storeWith(intent);
        expect(await store.refund(intent.id, 51, T0 + 1)).toEqual({ kind: 'exceeds', intent, left: 50 });
        expect(await store.get(intent.id)).toEqual(intent);
      });

      it('refuses an intent that was not approved, and an unknown one', async () => {
        const pending = anIntent();
        const failed = anIntent({ status: 'FAILED', failureCode: 'card_declined' });
        const store = await storeWith(pending, failed);
        expect(await store.refund(pending.id, 10, T0)).toEqual({ kind: 'invalid_state', intent: pending });
        expect(await store.refund(failed.id, undefined, T0)).toEqual({ kind: 'invalid_state', intent: failed });
        expect(await store.refund('pay_unknown', 10, T0)).toEqual({ kind: 'not_found' });
      });
    });

    describe('under concurrent calls', () => {
      it('of 200 transitions out of PENDING exactly one wins', async () => {
        const intent = anIntent();
        const store = await storeWith(intent);
        const results = await concurrently(200, (i) => store.transition(intent.id, ['PENDING'], { status: 'CANCELLED', updatedAt: T0 + i }));
        const winners = results.filter((r) => r.ok);
        expect(winners).toHaveLength(1);
        const winner = winners[0] as { ok: true; record: Intent };
        expect(results.filter((r) => !r.ok)).toEqual(Array(199).fill({ ok: false, current: winner.record }));
        expect(await store.get(intent.id)).toEqual(winner.record);
      });

      it('a decision racing 100 cancels: exactly one of them applies', async () => {
        const intent = anIntent();
        const store = await storeWith(intent);
        const results = await concurrently(101, (i) =>
          i === 50 ? store.decide(intent.id, T0 + 200) : store.transition(intent.id, ['PENDING'], { status: 'CANCELLED', updatedAt: T0 + 200 }),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(1);
      });

      it('100 refunds of 10 on 500: exactly 50 succeed and 500 is refunded', async () => {
        const intent = approved({ amount: 500 });
        const store = await storeWith(intent);
        const results = await concurrently(100, (i) => store.refund(intent.id, 10, T0 + i));
        // Once all 500 is back the intent is REFUNDED, so the calls that come after are refused as such.
        expect(tally(results)).toEqual({ refunded: 50, invalid_state: 50 });
        expect(results.reduce((sum, r) => sum + (r.kind === 'refunded' ? r.amount : 0), 0)).toBe(500);
        expect(await store.get(intent.id)).toMatchObject({ status: 'REFUNDED', refundedAmount: 500 });
      });

      it('100 refunds of 30 on 500: 16 succeed, the rest exceed what is left (20)', async () => {
        const intent = approved({ amount: 500 });
        const store = await storeWith(intent);
        const results = await concurrently(100, (i) => store.refund(intent.id, 30, T0 + i));
        expect(tally(results)).toEqual({ refunded: 16, exceeds: 84 });
        for (const r of results) if (r.kind === 'exceeds') expect(r.left).toBe(20);
        expect(await store.get(intent.id)).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 480 });
      });

      it('50 inserts into room for 10 PENDING intents: exactly 10 go in', async () => {
        const store = await make({ ttlMs: DAY, maxIntents: 10 });
        const intents = Array.from({ length: 50 }, () => anIntent());
        const results = await concurrently(50, (i) => store.insert(intents[i] as Intent));
        expect(results.filter((r) => r.ok)).toHaveLength(10);
        expect(results.filter((r) => !r.ok)).toEqual(Array(40).fill({ ok: false, reason: 'full' }));
        expect(await store.stats()).toEqual({ size: 10, max: 10 });
      });
    });

    describe('list', () => {
      it('lists newest first and pages through every intent exactly once', async () => {
        const intents = Array.from({ length: 25 }, (_, i) => anIntent({ createdAt: T0 + i }));
        const store = await storeWith(...intents);
        const first = await store.list({ limit: 10 });
        expect(first.data).toEqual(newestFirst(intents).slice(0, 10));
        expect(first.nextCursor).not.toBeNull();
        const { records, pages } = await pageAll(10, (page) => store.list(page));
        expect(records).toEqual(newestFirst(intents));
        expect(pages).toBe(3);
        expect(await store.list({ limit: 25 })).toEqual({ data: newestFirst(intents), nextCursor: null });
      });

      it('filters by reservation, by status, and by both', async () => {
        const a1 = anIntent({ reservationId: 'res_a' });
        const b1 = approved({ reservationId: 'res_b' });
        const a2 = approved({ reservationId: 'res_a' });
        const a3 = anIntent({ reservationId: 'res_a', status: 'FAILED', failureCode: 'card_declined' });
        const store = await storeWith(a1, b1, a2, a3);
        const all = async (query: Omit<IntentQuery, 'limit' | 'cursor'>) => (await pageAll(2, (page) => store.list({ ...page, ...query }))).records;
        expect(await all({ reservationId: 'res_a' })).toEqual([a3, a2, a1]);
        expect(await all({ status: 'APPROVED' })).toEqual([a2, b1]);
        expect(await all({ reservationId: 'res_a', status: 'APPROVED' })).toEqual([a2]);
        expect(await all({ status: 'PENDING' })).toEqual([a1]);
        expect(await all({ reservationId: 'res_a', status: 'PENDING' })).toEqual([a1]);
        expect(await all({ reservationId: 'res_b', status: 'PENDING' })).toEqual([]);
        expect(await all({ reservationId: 'res_none' })).toEqual([]);
        expect(await all({ status: 'REFUNDED' })).toEqual([]);
      });

      it('follows status changes: an intent is listed under its current status only', async () => {
        const intent = approved();
        const store = await storeWith(intent);
        await store.refund(intent.id, 100, T0 + 1);
        await store.refund(intent.id, undefined, T0 + 2);
        expect((await store.list({ limit: 10, status: 'APPROVED' })).data).toEqual([]);
        expect((await store.list({ limit: 10, status: 'PARTIALLY_REFUNDED' })).data).toEqual([]);
        expect((await store.list({ limit: 10, status: 'REFUNDED' })).data).toEqual([{ ...intent, status: 'REFUNDED', refundedAmount: 500, updatedAt: T0 + 2 }]);
      });

      it('lists PENDING intents until they are decided or cancelled, newest first, across pages', async () => {
        const intents = Array.from({ length: 5 }, (_, i) => anIntent({ createdAt: T0 + i }));
        const earlier = approved({ createdAt: T0 + 5 });
        const store = await storeWith(...intents, earlier);
        const pending = async () => (await pageAll(2, (page) => store.list({ ...page, status: 'PENDING' }))).records;
        expect(await pending()).toEqual(newestFirst(intents));
        const [a, b] = intents as [Intent, Intent];
        const decided = await store.decide(a.id, T0 + 200);
        await store.transition(b.id, ['PENDING'], { status: 'CANCELLED', updatedAt: T0 + 300 });
        expect(await pending()).toEqual(newestFirst(intents.slice(2)));
        expect((await store.list({ limit: 10, status: 'CANCELLED' })).data).toEqual([{ ...b, status: 'CANCELLED', updatedAt: T0 + 300 }]);
        const aApproved = { ...a, status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200 };
        expect(decided).toEqual({ ok: true, record: aApproved });
        expect((await store.list({ limit: 10, status: 'APPROVED' })).data).toEqual([earlier, aApproved]);
      });

      it('a filter that matches rarely over 20,000 intents finds exactly its matches by paging until the end', async () => {
        // Both filters match half of the store and their intersection almost nothing: no index
        // narrows it, so an adapter that bounds each page's scan returns short pages here.
        const rare = new Set([3_000, 17_000]);
        const intents = Array.from({ length: 20_000 }, (_, i) =>
          i % 2 === 0 && !rare.has(i) ? approved({ reservationId: 'res_a' }) : approved({ reservationId: i % 2 === 0 ? 'res_a' : 'res_b', status: 'REFUNDED', refundedAmount: 500 }),
        );
        const store = await make({ ttlMs: DAY, maxIntents: 20_000 });
        await Promise.all(intents.map((intent) => store.insert(intent)));
        const expected = [intents[17_000], intents[3_000]];
        const both = await pageAll(10, (page) => store.list({ ...page, reservationId: 'res_a', status: 'REFUNDED' }));
        expect(both.records).toEqual(expected);
        const byStatus = await pageAll(1_000, (page) => store.list({ ...page, status: 'REFUNDED' }));
        expect(byStatus.records).toHaveLength(10_002);
        expect(byStatus.records.slice(0, 2)).toEqual([intents[19_999], intents[19_997]]);
      });
    });

    describe('counts', () => {
      const none = { PENDING: 0, APPROVED: 0, FAILED: 0, CANCELLED: 0, PARTIALLY_REFUNDED: 0, REFUNDED: 0 };

      it('counts every stored intent by its current status, through each change', async () => {
        const store = await make(ROOMY);
        expect(await store.counts()).toEqual(none);
        const [a, b, c, d] = [anIntent(), anIntent(), anIntent(), approved()] as [Intent, Intent, Intent, Intent];
        for (const intent of [a, b, c, d]) await store.insert(intent);
        expect(await store.counts()).toEqual({ ...none, PENDING: 3, APPROVED: 1 });
        await store.decide(a.id, T0 + 200);
        await store.transition(b.id, ['PENDING'], { status: 'CANCELLED', updatedAt: T0 + 300 });
        await store.refund(d.id, 100, T0 + 400);
        expect(await store.counts()).toEqual({ ...none, PENDING: 1, APPROVED: 1, CANCELLED: 1, PARTIALLY_REFUNDED: 1 });
        // Refused changes count nothing.
        await store.transition(b.id, ['PENDING'], { status: 'FAILED', updatedAt: T0 + 500 });
        await store.refund(d.id, 10_000, T0 + 500);
        await store.decide(a.id, T0 + 500);
        await store.refund(d.id, undefined, T0 + 600);
        expect(await store.counts()).toEqual({ ...none, PENDING: 1, APPROVED: 1, CANCELLED: 1, REFUNDED: 1 });
      });

      it('forgets evicted and swept intents, and counts what a full store refused not at all', async () => {
        const store = await make({ ttlMs: HOUR, maxIntents: 3 });
        const [a, b, c] = [approved(), anIntent(), anIntent()] as [Intent, Intent, Intent];
        for (const intent of [a, b, c]) await store.insert(intent);
        await store.decide(b.id, T0 + 300);
        expect(await store.insert(anIntent({ createdAt: T0 + 400 }))).toEqual({ ok: true }); // evicts a
        expect(await store.counts()).toEqual({ ...none, PENDING: 2, [b.planned.status]: 1 });
        expect(await store.insert(anIntent({ createdAt: T0 + 500 }))).toEqual({ ok: true }); // evicts b
        expect(await store.insert(anIntent({ createdAt: T0 + 600 }))).toEqual({ ok: false, reason: 'full' });
        expect(await store.counts()).toEqual({ ...none, PENDING: 3 });
        const swept = await make({ ttlMs: HOUR, maxIntents: 100 });
        for (const intent of [approved(), approved(), anIntent()]) await swept.insert(intent);
        expect(await swept.sweep(T0 + 2 * HOUR)).toBe(2);
        expect(await swept.counts()).toEqual({ ...none, PENDING: 1 });
      });
    });

    describe('bounds and TTL', () => {
      it('never evicts PENDING intents: a store full of them refuses inserts', async () => {
        const store = await make({ ttlMs: HOUR, maxIntents: 3 });
        const pending = [anIntent(), anIntent(), anIntent()];
        for (const intent of pending) expect(await store.insert(intent)).toEqual({ ok: true });
        const extra = anIntent();
        expect(await store.insert(extra)).toEqual({ ok: false, reason: 'full' });
        expect(await store.get(extra.id)).toBeUndefined();
        expect(await store.sweep(T0 + 10 * DAY)).toBe(0);
        for (const intent of pending) expect(await store.get(intent.id)).toEqual(intent);
        expect(await store.stats()).toEqual({ size: 3, max: 3 });
      });

      it('at the bound the oldest final intent makes room', async () => {
        const store = await make({ ttlMs: HOUR, maxIntents: 3 });
        const [a, b, c] = [anIntent(), anIntent(), anIntent()] as [Intent, Intent, Intent];
        for (const intent of [a, b, c]) await store.insert(intent);
        await store.decide(a.id, T0 + 200);
        await store.decide(b.id, T0 + 300);
        const d = anIntent({ createdAt: T0 + 400 });
        expect(await store.insert(d)).toEqual({ ok: true });
        expect(await store.get(a.id)).toBeUndefined();
        expect((await store.list({ limit: 10 })).data.map((i) => i.id)).toEqual([d.id, c.id, b.id]);
        expect(await store.stats()).toEqual({ size: 3, max: 3 });
      });

      it('sweep evicts only final intents older than the TTL and counts them', async () => {
        const store = await make({ ttlMs: HOUR, maxIntents: 100 });
        const old = approved();
        const oldPending = anIntent();
        const younger = approved({ createdAt: T0 + 30 * MINUTE, updatedAt: T0 + 30 * MINUTE });
        for (const intent of [old, oldPending, younger]) await store.insert(intent);
        expect(await store.sweep(T0 + HOUR - 1)).toBe(0);
        expect(await store.sweep(T0 + HOUR + 1)).toBe(1);
        expect(await store.get(old.id)).toBeUndefined();
        expect((await store.list({ limit: 10 })).data).toEqual([younger, oldPending]);
        expect(await store.sweep(T0 + 90 * MINUTE + 1)).toBe(1);
        expect((await store.list({ limit: 10 })).data).toEqual([oldPending]);
        expect((await store.list({ limit: 10, reservationId: 'res_1', status: 'APPROVED' })).data).toEqual([]);
        expect(await store.stats()).toEqual({ size: 1, max: 100 });
      });
    });
  });
}
