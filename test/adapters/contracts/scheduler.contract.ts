import { describe, expect, it } from 'vitest';
import type { ClaimedJob, Job, SchedulerStore } from '../../../src/core/ports.ts';
import { concurrently, T0 } from './fixtures.ts';

export type SchedulerStoreFactory = () => Promise<SchedulerStore> | SchedulerStore;

const LEASE = 30_000;
const DECIDE = 'intent.decide';
const EXPIRE = 'booking.expire';

const job = (key: string, dueAt: number, kind = DECIDE): Job => ({ kind, key, dueAt });
/** A claim of `j` as the port hands it out: the job plus a token only the store interprets. */
const claimOf = (j: Job) => ({ ...j, token: expect.any(String) });
const keys = (jobs: readonly ClaimedJob[]) => jobs.map((j) => `${j.kind}:${j.key}`);

/** The SchedulerStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function schedulerStoreContract(name: string, make: SchedulerStoreFactory): void {
  async function storeWith(...jobs: Job[]): Promise<SchedulerStore> {
    const store = await make();
    for (const j of jobs) await store.schedule(j);
    return store;
  }

  describe(`SchedulerStore contract: ${name}`, () => {
    it('claims the jobs due by now, earliest first, ties in scheduling order, at most `limit`', async () => {
      const later = job('pay_later', T0 + 1_000);
      const tie1 = job('pay_tie1', T0 + 10);
      const first = job('pay_first', T0);
      const tie2 = job('bk_tie2', T0 + 10, EXPIRE);
      const due = job('pay_due_now', T0 + 20);
      const store = await storeWith(later, tie1, first, tie2, due);
      expect(await store.claimDue(T0 - 1, 10, LEASE)).toEqual([]);
      expect(await store.claimDue(T0 + 20, 3, LEASE)).toEqual([claimOf(first), claimOf(tie1), claimOf(tie2)]);
      expect(await store.claimDue(T0 + 20, 3, LEASE)).toEqual([claimOf(due)]);
      expect(await store.claimDue(T0 + 20, 3, LEASE)).toEqual([]);
    });

    it('keys: up to `limit` keys of a kind, claimed or not, each once; none of other kinds, completed or cancelled jobs', async () => {
      const store = await storeWith(job('pay_1', T0), job('pay_2', T0 + 5), job('pay_3', T0 + 100), job('pay_1', T0 + 1), job('bk_1', T0, EXPIRE));
      expect((await store.keys(DECIDE, 10)).sort()).toEqual(['pay_1', 'pay_2', 'pay_3']);
      expect(await store.keys(EXPIRE, 10)).toEqual(['bk_1']);
      expect(await store.keys('none', 10)).toEqual([]);
      const two = await store.keys(DECIDE, 2);
      expect([two.length, new Set(two).size, two.every((k) => ['pay_1', 'pay_2', 'pay_3'].includes(k))]).toEqual([2, 2, true]);
      expect(await store.keys(DECIDE, 0)).toEqual([]);
      const claimed = await store.claimDue(T0 + 1, 10, LEASE);
      expect(keys(claimed)).toEqual([`${EXPIRE}:bk_1`, `${DECIDE}:pay_1`]);
      expect((await store.keys(DECIDE, 10)).sort()).toEqual(['pay_1', 'pay_2', 'pay_3']);
      await store.complete(claimed);
      await store.cancel(DECIDE, 'pay_3');
      expect([await store.keys(DECIDE, 10), await store.keys(EXPIRE, 10)]).toEqual([['pay_2'], []]);
    });

    it('keys reads a large kind a page at a time, up to `limit`', async () => {
      const store = await make();
      for (let i = 0; i < 2_500; i++) await store.schedule(job(`pay_${i}`, T0 + i));
      const some = await store.keys(DECIDE, 100);
      expect([some.length, new Set(some).size]).toEqual([100, 100]);
      const all = await store.keys(DECIDE, 5_000);
      expect([all.length, new Set(all).size]).toEqual([2_500, 2_500]);
    });

    it('schedule with earliest keeps a job waiting to run by its time, moves a later one, and replaces a claimed one', async () => {
      const store = await storeWith(job('pay_1', T0 + 100), job('pay_2', T0 + 100), job('pay_3', T0));
      await store.schedule(job('pay_1', T0 + 500), { earliest: true }); // kept at +100
      await store.schedule(job('pay_2', T0 + 50), { earliest: true }); // moved to +50
      const [claimed] = await store.claimDue(T0, 10, LEASE);
      expect(claimed).toEqual(claimOf(job('pay_3', T0)));
      await store.schedule(job('pay_3', T0 + 300), { earliest: true }); // claimed (running): scheduled anew
      await store.schedule(job('pay_4', T0 + 200), { earliest: true }); // none yet: added
      expect(await store.count(DECIDE)).toBe(4);
      expect(await store.claimDue(T0 + 1_000, 10, LEASE)).toEqual([claimOf(job('pay_2', T0 + 50)), claimOf(job('pay_1', T0 + 100)), claimOf(job('pay_4', T0 + 200)), claimOf(job('pay_3', T0 + 300))]);
    });

    it('schedule upserts by kind and key: rescheduling moves the job', async () => {
      const store = await storeWith(job('pay_1', T0), job('pay_2', T0 + 5), job('pay_1', T0 + 100), job('pay_1', T0, EXPIRE));
      expect(await store.count(DECIDE)).toBe(2);
      expect(await store.count(EXPIRE)).toBe(1);
      expect(await store.claimDue(T0 + 99, 10, LEASE)).toEqual([claimOf(job('pay_1', T0, EXPIRE)), claimOf(job('pay_2', T0 + 5))]);
      expect(await store.claimDue(T0 + 100, 10, LEASE)).toEqual([claimOf(job('pay_1', T0 + 100))]);
    });

    it('a job’s trace comes back with each claim of it: the first, a retry given back, a lapsed lease’s; a job without one has none', async () => {
      const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const store = await storeWith({ ...job('traced', T0), trace }, job('plain', T0));
      const first = await store.claimDue(T0, 10, LEASE);
      expect(first).toEqual([{ ...claimOf(job('traced', T0)), trace }, claimOf(job('plain', T0))]);
      expect('trace' in (first[1] as ClaimedJob)).toBe(false);
      // Given back for a retry (as the scheduler does, with the claim it holds), then its lease left to lapse.
      await store.release(first.map((claimed) => ({ ...claimed, dueAt: T0 + 5 })));
      expect(await store.claimDue(T0 + 5, 10, LEASE)).toEqual([{ ...claimOf(job('traced', T0 + 5)), trace }, claimOf(job('plain', T0 + 5))]);
      const lapsed = await store.claimDue(T0 + 5 + LEASE, 10, LEASE);
      expect(lapsed).toEqual([{ ...claimOf(job('traced', T0 + 5)), trace }, claimOf(job('plain', T0 + 5))]);
      expect('trace' in (lapsed[1] as ClaimedJob)).toBe(false);
      // Rescheduled without one (a later request's schedule, untraced): none.
      await store.complete(lapsed.slice(1));
      await store.schedule(job('traced', T0 + 10));
      expect(await store.claimDue(T0 + 10 + 2 * LEASE, 1, LEASE)).toEqual([claimOf(job('traced', T0 + 10))]);
    });

    it('a rescheduled job goes behind the jobs already due at the same time', async () => {
      const store = await storeWith(job('a', T0), job('b', T0));
      await store.schedule(job('a', T0));
      expect(keys(await store.claimDue(T0, 10, LEASE))).toEqual([`${DECIDE}:b`, `${DECIDE}:a`]);
    });

    it('cancel removes a job, claimed or not, and says whether there was one', async () => {
      const store = await storeWith(job('a', T0), job('b', T0), job('c', T0 + 5));
      await store.claimDue(T0, 1, LEASE);
      expect(await store.cancel(DECIDE, 'a')).toBe(true);
      expect(await store.cancel(DECIDE, 'c')).toBe(true);
      expect(await store.cancel(DECIDE, 'c')).toBe(false);
      expect(await store.cancel(EXPIRE, 'b')).toBe(false);
      expect(await store.count(DECIDE)).toBe(1);
      expect(await store.claimDue(T0 + LEASE, 10, LEASE)).toEqual([claimOf(job('b', T0))]);
    });

    it('a claimed job is nobody else’s until its lease lapses, then it is claimed again under a new token', async () => {
      const store = await storeWith(job('a', T0));
      const [claim] = await store.claimDue(T0 + 7, 10, LEASE);
      expect(claim).toEqual(claimOf(job('a', T0)));
      expect(await store.claimDue(T0 + 7 + LEASE - 1, 10, LEASE)).toEqual([]);
      const [again] = await store.claimDue(T0 + 7 + LEASE, 10, LEASE);
      expect(again).toMatchObject({ kind: DECIDE, key: 'a' });
      expect(again?.token).not.toBe(claim?.token);
      // The first worker finishing late must not remove the job the second one now holds.
      await store.complete([claim as ClaimedJob]);
      expect(await store.count(DECIDE)).toBe(1);
      await store.complete([again as ClaimedJob]);
      expect(await store.count(DECIDE)).toBe(0);
    });

    it('complete removes a claimed job for good', async () => {
      const store = await storeWith(job('a', T0), job('b', T0 + 1));
      const claimed = await store.claimDue(T0 + 1, 10, LEASE);
      await store.complete([claimed[0] as ClaimedJob]);
      expect(await store.count(DECIDE)).toBe(1);
      expect(await store.claimDue(T0 + 10 * LEASE, 10, LEASE)).toEqual([claimOf({ ...job('b', T0 + 1), dueAt: expect.any(Number) })]);
    });

    it('complete with a stale token (the job was rescheduled after the claim) keeps the new schedule', async () => {
      const store = await storeWith(job('a', T0));
      const [claim] = await store.claimDue(T0, 10, LEASE);
      await store.schedule(job('a', T0 + 500));
      await store.complete([claim as ClaimedJob]);
      expect(await store.count(DECIDE)).toBe(1);
      expect(await store.nextDueAt()).toBe(T0 + 500);
      expect(await store.claimDue(T0 + 500, 10, LEASE)).toEqual([claimOf(job('a', T0 + 500))]);
    });

    it('complete takes a batch: each job whose claim is still current goes, the others stay as they are', async () => {
      const store = await storeWith(job('again', T0 - 1), job('kept', T0), job('moved', T0), job('other', T0, EXPIRE), job('waiting', T0 + 5));
      const [first] = await store.claimDue(T0 - 1, 1, 10);
      const claims = await store.claimDue(T0, 10, LEASE);
      expect(keys(claims)).toEqual([`${DECIDE}:kept`, `${DECIDE}:moved`, `${EXPIRE}:other`]);
      // 'again' is claimed anew once its first lease lapsed, and 'moved' is rescheduled: both first claims are stale.
      const [second] = await store.claimDue(T0 + 9, 1, LEASE);
      expect(second).toEqual(claimOf(job('again', T0 - 1)));
      expect(second?.token).not.toBe(first?.token);
      await store.schedule(job('moved', T0 + 50));
      await store.complete([first as ClaimedJob, ...claims]);
      expect(await store.count(DECIDE)).toBe(3);
      expect(await store.count(EXPIRE)).toBe(0);
      const later = await store.claimDue(T0 + 50, 10, LEASE);
      expect(later).toEqual([claimOf(job('waiting', T0 + 5)), claimOf(job('moved', T0 + 50))]);
      await store.complete([second as ClaimedJob, ...later]);
      expect(await store.count(DECIDE)).toBe(0);
      expect(await store.nextDueAt()).toBeUndefined();
    });

    it('release gives claimed jobs back, each due at its dueAt (as claimed, or later) and free for the next claim at once', async () => {
      const store = await storeWith(job('a', T0), job('b', T0), job('c', T0 + 5));
      const claims = await store.claimDue(T0, 10, LEASE);
      expect(keys(claims)).toEqual([`${DECIDE}:a`, `${DECIDE}:b`]);
      await store.release([claims[0] as ClaimedJob, { ...(claims[1] as ClaimedJob), dueAt: T0 + 100 }]);
      expect(await store.count(DECIDE)).toBe(3);
      expect(await store.nextDueAt()).toBe(T0);
      const again = await store.claimDue(T0, 10, LEASE);
      expect(again).toEqual([claimOf(job('a', T0))]);
      expect(again[0]?.token).not.toBe(claims[0]?.token);
      expect(await store.claimDue(T0 + 100, 10, LEASE)).toEqual([claimOf(job('c', T0 + 5)), claimOf(job('b', T0 + 100))]);
    });

    it('release leaves a job cancelled, rescheduled or claimed again since its claim as that left it; sent again, it changes nothing', async () => {
      const store = await storeWith(job('again', T0 - 1), job('cancelled', T0), job('moved', T0), job('twice', T0));
      const [first] = await store.claimDue(T0 - 1, 1, 10);
      const claims = await store.claimDue(T0, 10, LEASE);
      expect(keys(claims)).toEqual([`${DECIDE}:cancelled`, `${DECIDE}:moved`, `${DECIDE}:twice`]);
      // 'again' is claimed anew once its first lease lapsed; 'cancelled' goes, 'moved' is rescheduled.
      const [second] = await store.claimDue(T0 + 9, 1, LEASE);
      expect(second).toEqual(claimOf(job('again', T0 - 1)));
      expect(await store.cancel(DECIDE, 'cancelled')).toBe(true);
      await store.schedule(job('moved', T0 + 500));
      await store.release([first as ClaimedJob, ...claims]);
      expect(await store.count(DECIDE)).toBe(3);
      // Only 'twice' is free now: 'again' is the second claim's, 'moved' due later.
      const [third, ...none] = await store.claimDue(T0 + 9, 10, LEASE);
      expect([third, ...none]).toEqual([claimOf(job('twice', T0))]);
      // The release sent again (its reply lost): 'twice' stays the third claim's.
      await store.release([claims[2] as ClaimedJob]);
      expect(await store.claimDue(T0 + 499, 10, LEASE)).toEqual([]);
      const [moved] = await store.claimDue(T0 + 500, 10, LEASE);
      expect(moved).toEqual(claimOf(job('moved', T0 + 500)));
      await store.complete([second, third, moved] as ClaimedJob[]);
      expect(await store.count(DECIDE)).toBe(0);
      expect(await store.nextDueAt()).toBeUndefined();
    });

    it('claims and completes a batch of 2,500 jobs at once, in order', async () => {
      const store = await make();
      await concurrently(2500, (i) => store.schedule(job(`pay_${String(i).padStart(4, '0')}`, T0 + Math.floor(i / 100))));
      const claims = await store.claimDue(T0 + 100, 2500, LEASE);
      expect(claims.map((c) => c.key)).toEqual(Array.from({ length: 2500 }, (_, i) => `pay_${String(i).padStart(4, '0')}`));
      expect(claims.map((c) => c.dueAt)).toEqual(Array.from({ length: 2500 }, (_, i) => T0 + Math.floor(i / 100)));
      expect(await store.claimDue(T0 + 100, 10, LEASE)).toEqual([]);
      await store.complete(claims);
      expect(await store.count(DECIDE)).toBe(0);
      expect(await store.nextDueAt()).toBeUndefined();
    });

    it('a key may hold any character, spaces and newlines included', async () => {
      const odd = ['a b', 'line\nbreak', ' lead', 'https://127.0.0.1:9/hook?x=1 2'];
      const store = await storeWith(...odd.map((key, i) => job(key, T0 + i, i % 2 === 0 ? DECIDE : EXPIRE)));
      const claims = await store.claimDue(T0 + 10, 10, LEASE);
      expect(claims).toEqual(odd.map((key, i) => claimOf(job(key, T0 + i, i % 2 === 0 ? DECIDE : EXPIRE))));
      await store.complete(claims);
      expect(await store.count(DECIDE)).toBe(0);
      expect(await store.count(EXPIRE)).toBe(0);
    });

    it('nextDueAt is the earliest due time, a claimed job counting at the end of its lease', async () => {
      const store = await make();
      expect(await store.nextDueAt()).toBeUndefined();
      await store.schedule(job('b', T0 + 100));
      await store.schedule(job('a', T0 + 10));
      expect(await store.nextDueAt()).toBe(T0 + 10);
      await store.claimDue(T0 + 10, 1, LEASE);
      expect(await store.nextDueAt()).toBe(T0 + 100);
      await store.cancel(DECIDE, 'b');
      expect(await store.nextDueAt()).toBe(T0 + 10 + LEASE);
      await store.cancel(DECIDE, 'a');
      expect(await store.nextDueAt()).toBeUndefined();
    });

    it('count counts a kind’s jobs, claimed or not', async () => {
      const store = await storeWith(job('a', T0), job('b', T0 + 5), job('c', T0, EXPIRE));
      await store.claimDue(T0, 1, LEASE);
      expect(await store.count(DECIDE)).toBe(2);
      expect(await store.count(EXPIRE)).toBe(1);
      expect(await store.count('unknown.kind')).toBe(0);
    });

    it('what it hands out does not alias what it holds', async () => {
      const scheduled = job('a', T0);
      const store = await storeWith(scheduled);
      scheduled.dueAt = T0 + 1_000_000;
      const [claim] = await store.claimDue(T0, 10, LEASE);
      expect(claim).toEqual(claimOf(job('a', T0)));
      (claim as ClaimedJob).key = 'b';
      expect(await store.count(DECIDE)).toBe(1);
      await store.complete([{ ...(claim as ClaimedJob), key: 'a' }]);
      expect(await store.count(DECIDE)).toBe(0);
    });

    describe('under concurrent calls', () => {
      it('concurrent claims never return the same job twice, and together return every due one', async () => {
        const jobs = Array.from({ length: 300 }, (_, i) => job(`pay_${i}`, T0 + (i % 7)));
        const store = await storeWith(...jobs);
        const batches = await concurrently(40, () => store.claimDue(T0 + 10, 10, LEASE));
        const claimed = batches.flat();
        expect(claimed).toHaveLength(300);
        expect(new Set(keys(claimed)).size).toBe(300);
        for (const batch of batches) expect(batch.length).toBeLessThanOrEqual(10);
        expect(await store.claimDue(T0 + 10, 1_000, LEASE)).toEqual([]);
      });

      it('a job scheduled 100 times at once is one job', async () => {
        const store = await make();
        await concurrently(100, (i) => store.schedule(job('a', T0 + i)));
        expect(await store.count(DECIDE)).toBe(1);
        expect(await store.claimDue(T0 + 1_000, 10, LEASE)).toHaveLength(1);
      });

      it('of concurrent completes and reschedules of one claim, the reschedule survives', async () => {
        const store = await storeWith(job('a', T0));
        const [claim] = await store.claimDue(T0, 1, LEASE);
        await concurrently(20, (i) => (i === 0 ? store.schedule(job('a', T0 + 50)) : store.complete([claim as ClaimedJob])));
        expect(await store.count(DECIDE)).toBe(1);
        expect(await store.nextDueAt()).toBe(T0 + 50);
      });
    });
  });
}
