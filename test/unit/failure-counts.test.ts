import { describe, expect, it } from 'vitest';
import { MemorySchedulerStore } from '../../src/adapters/memory/scheduler.ts';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import { FailureCounts } from '../../src/core/failure-counts.ts';
import type { FluxPayStore } from '../../src/core/fluxpay/ports.ts';
import type { SchedulerStore } from '../../src/core/ports.ts';
import { SAGA_ADVANCE_JOB, UsageSagas } from '../../src/core/fluxpay/saga.ts';
import { MAX_ATTEMPTS, Scheduler } from '../../src/core/scheduler.ts';
import { aSaga } from '../adapters/contracts/fluxpay.contract.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

const MINUTE = 60_000;

/** A scheduler store that refuses every call as unreachable while `away.now`, and the jobs behind it. */
function refusingStore(): { jobs: MemorySchedulerStore; store: SchedulerStore; away: { now: boolean } } {
  const jobs = new MemorySchedulerStore();
  const away = { now: false };
  const reachable = <T>(call: () => Promise<T>): Promise<T> => (away.now ? Promise.reject(new StoreUnavailableError()) : call());
  const store: SchedulerStore = {
    schedule: (job) => reachable(() => jobs.schedule(job)),
    cancel: (kind, key) => reachable(() => jobs.cancel(kind, key)),
    claimDue: (now, limit, leaseMs) => reachable(() => jobs.claimDue(now, limit, leaseMs)),
    complete: (claimed) => reachable(() => jobs.complete(claimed)),
    release: (claimed) => reachable(() => jobs.release(claimed)),
    nextDueAt: () => reachable(() => jobs.nextDueAt()),
    count: (kind) => reachable(() => jobs.count(kind)),
    keys: (kind, limit) => reachable(() => jobs.keys(kind, limit)),
  };
  return { jobs, store, away };
}

describe('FailureCounts', () => {
  it('keeps an item’s failures until forgetAfterMs after its last one; a later failure of another item drops it', () => {
    const counts = new FailureCounts<number>(1_000);
    counts.set('a', 1, 0);
    counts.set('b', 1, 500);
    counts.set('a', 2, 900);
    expect([counts.get('a', 1_899), counts.get('b', 1_499), counts.size]).toEqual([2, 1, 2]);
    // Read past its time, an item has none, though it is still held until a failure sweeps.
    expect([counts.get('b', 1_500), counts.size]).toEqual([undefined, 2]);
    // A failure drops every stale item ('b', last failed at 500), not one failed since ('a', at 900).
    counts.set('c', 1, 1_500);
    expect([counts.size, counts.get('a', 1_500), counts.get('b', 1_500)]).toEqual([2, 2, undefined]);
    counts.set('c', 2, 1_900);
    expect([counts.size, counts.get('c', 1_900)]).toEqual([1, 2]);
    counts.delete('c');
    counts.delete('never');
    expect(counts.size).toBe(0);
  });

  it('keepAll holds every item’s failures as of now, so they age from then', () => {
    const counts = new FailureCounts<number>(1_000);
    counts.set('a', 3, 0);
    counts.set('b', 1, 200);
    counts.keepAll(900);
    counts.set('c', 1, 1_800);
    expect([counts.size, counts.get('a', 1_899), counts.get('b', 1_899), counts.get('a', 1_900)]).toEqual([3, 3, 1, undefined]);
  });

  it('keepAll does not bring back an item forgotten before it (past forgetAfterMs, still held until a failure swept)', () => {
    const counts = new FailureCounts<number>(1_000);
    counts.set('old', 7, 0);
    counts.set('recent', 2, 500);
    counts.keepAll(1_200);
    expect([counts.size, counts.get('old', 1_200), counts.get('recent', 2_199)]).toEqual([1, undefined, 2]);
  });
});

describe('failures counted by one process of several on a shared store', () => {
  it('a job that failed here and was then done by another process does not carry its failures into a later run of the same job', async () => {
    const clock = new ManualClock(0);
    const store = new MemorySchedulerStore();
    const finals: boolean[] = [];
    const here = new Scheduler({ clock, store, onError: (_error, _job, final) => finals.push(final) });
    const elsewhere = new Scheduler({ clock, store, onError: () => undefined });
    let failing = true;
    here.register('test.job', () => {
      if (failing) throw new Error('the receiver is down');
    });
    const doneElsewhere: string[] = [];
    elsewhere.register('test.job', (key) => void doneElsewhere.push(key));
    await here.start();
    await here.schedule('test.job', 'k', 0);
    // One failure short of giving up: 0, 100, 300, …, 6,300 ms.
    await clock.advance(6_300);
    expect(finals).toEqual(Array.from({ length: MAX_ATTEMPTS - 1 }, () => false));
    // This process stops; another one runs the job to the end when it is due.
    here.stop();
    await clock.advance(6_400);
    await elsewhere.runDue();
    expect(doneElsewhere).toEqual(['k']);
    expect(await store.count('test.job')).toBe(0);
    // Minutes later the job's name comes back (a delivery's retry is keyed by the delivery), and fails here once.
    await clock.advance(5 * MINUTE);
    await here.start();
    await here.schedule('test.job', 'k', clock.now());
    await clock.advance(0);
    // Its first failure of this run: retried, not given up for the seven of minutes ago.
    expect(finals.slice(MAX_ATTEMPTS - 1)).toEqual([false]);
    expect(await store.nextDueAt()).toBe(clock.now() + 100);
    failing = false;
    await clock.advance(100);
    expect(await store.count('test.job')).toBe(0);
    here.stop();
  });

  it('a store that cannot be reached for minutes keeps a job’s failures: one short of MAX_ATTEMPTS, it is given up at its next failure after the outage', async () => {
    const clock = new ManualClock(0);
    const { store, away } = refusingStore();
    const finals: boolean[] = [];
    let failedRuns = 0;
    const scheduler = new Scheduler({ clock, store, onError: (_error, _job, final) => finals.push(final), onRunError: () => failedRuns++ });
    scheduler.register('test.job', () => {
      throw new Error('a bug in the handler');
    });
    await scheduler.start();
    await scheduler.schedule('test.job', 'k', 0);
    await clock.advance(6_300);
    expect(finals).toEqual(Array.from({ length: MAX_ATTEMPTS - 1 }, () => false));
    away.now = true;
    await clock.advance(3 * MINUTE);
    // A run a second, each refused.
    expect(failedRuns).toBeGreaterThanOrEqual(170);
    away.now = false;
    await clock.advance(15_000);
    expect(finals.slice(MAX_ATTEMPTS - 1)).toEqual([true]);
    expect(await store.count('test.job')).toBe(0);
    scheduler.stop();
  });

  it('a job done elsewhere, then minutes later a run that cannot reach the store: the job’s old failures stay forgotten', async () => {
    const clock = new ManualClock(0);
    const { jobs, store, away } = refusingStore();
    const finals: boolean[] = [];
    const here = new Scheduler({ clock, store, onError: (_error, _job, final) => finals.push(final), onRunError: () => undefined });
    let failing = true;
    here.register('test.job', () => {
      if (failing) throw new Error('the receiver is down');
    });
    await here.start();
    await here.schedule('test.job', 'k', 0);
    await clock.advance(6_300);
    expect(finals).toEqual(Array.from({ length: MAX_ATTEMPTS - 1 }, () => false));
    // Taken off here (done by another process, or cancelled); five quiet minutes; then one run refused.
    await jobs.cancel('test.job', 'k');
    await clock.advance(5 * MINUTE);
    away.now = true;
    await here.runDue();
    away.now = false;
    await here.schedule('test.job', 'k', clock.now());
    await clock.advance(0);
    expect(finals.slice(MAX_ATTEMPTS - 1)).toEqual([false]);
    failing = false;
    await clock.advance(100);
    expect(await jobs.count('test.job')).toBe(0);
    here.stop();
  });

  it('a saga whose advance failed here and that another process advanced, or that went, starts its retry delay afresh', async () => {
    const clock = new ManualClock(0);
    const jobs = new MemorySchedulerStore();
    const ended = aSaga({ status: 'COMPLETED' });
    let answer: 'away' | 'saga' | 'gone' = 'away';
    const store = {
      getSaga: () => {
        if (answer === 'away') return Promise.reject(new StoreUnavailableError());
        return Promise.resolve(answer === 'saga' ? ended : undefined);
      },
    } as unknown as FluxPayStore;
    const sagas = (scheduler: Scheduler) => new UsageSagas({ store, scheduler, clock, ids: (prefix) => `${prefix}_1`, onChange: () => undefined, onRetry: () => undefined });
    const here = sagas(new Scheduler({ clock, store: jobs, onError: () => undefined }));
    const elsewhere = sagas(new Scheduler({ clock, store: jobs, onError: () => undefined }));
    /** When this process's failed advance schedules the next one, after it. */
    const retryIn = async (): Promise<number | undefined> => {
      await here.advance(ended.sagaId);
      const due = await jobs.nextDueAt();
      await jobs.cancel(SAGA_ADVANCE_JOB, ended.sagaId);
      return due === undefined ? undefined : due - clock.now();
    };
    expect([await retryIn(), await retryIn()]).toEqual([50, 100]);
    // Another process advances it to its end; minutes later this process's advance of it fails again.
    answer = 'saga';
    expect(await elsewhere.advance(ended.sagaId)).toEqual(ended);
    await clock.advance(5 * MINUTE);
    answer = 'away';
    expect(await retryIn()).toBe(50);
    // A saga that went (evicted, or its namespace reset) leaves no failures behind either.
    answer = 'gone';
    expect(await retryIn()).toBeUndefined();
    answer = 'away';
    expect(await retryIn()).toBe(50);
  });
});
