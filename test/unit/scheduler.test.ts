import { describe, expect, it } from 'vitest';
import { MemorySchedulerStore } from '../../src/adapters/memory/scheduler.ts';
import type { SchedulerStore } from '../../src/core/ports.ts';
import { BATCH, FAILED_RUN_RETRY_MS, LEASE_MS, MAX_ATTEMPTS, Scheduler } from '../../src/core/scheduler.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { startedScheduler } from './support.ts';

/** The scheduler of due work: one timer on the injected clock over the job store. @see issue 7 "Store ports" */

describe('Scheduler', () => {
  it('runs jobs at their due time, in due order, on one clock timer whatever their number', async () => {
    const clock = new ManualClock(0);
    const { scheduler } = await startedScheduler(clock);
    const ran: Array<[string, number]> = [];
    scheduler.register('test.job', (key) => void ran.push([key, clock.now()]));
    for (let i = 0; i < 100; i++) await scheduler.schedule('test.job', `k${i}`, 1000 + ((i * 37) % 100));
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(999);
    expect(ran).toEqual([]);
    await clock.advance(100);
    expect(ran).toHaveLength(100);
    expect(ran.map(([, at]) => at)).toEqual([...ran.map(([, at]) => at)].sort((a, b) => a - b));
    expect(await scheduler.pending('test.job')).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rescheduling moves a job, cancelling removes it, and an earlier job re-arms the timer', async () => {
    const clock = new ManualClock(0);
    const { scheduler } = await startedScheduler(clock);
    const ran: string[] = [];
    scheduler.register('test.job', (key) => void ran.push(`${key}@${clock.now()}`));
    await scheduler.schedule('test.job', 'a', 500);
    await scheduler.schedule('test.job', 'b', 300);
    await scheduler.schedule('test.job', 'a', 100);
    await scheduler.schedule('test.job', 'c', 200);
    expect(await scheduler.cancel('test.job', 'c')).toBe(true);
    expect(await scheduler.cancel('test.job', 'c')).toBe(false);
    await clock.advance(1000);
    expect(ran).toEqual(['a@100', 'b@300']);
  });

  it('a handler that throws is retried with a growing delay, then given up and reported as final', async () => {
    const clock = new ManualClock(0);
    const { scheduler, errors } = await startedScheduler(clock);
    const attempts: number[] = [];
    scheduler.register('test.flaky', () => {
      attempts.push(clock.now());
      if (attempts.length < 3) throw new Error(`boom ${attempts.length}`);
    });
    await scheduler.schedule('test.flaky', 'x', 0);
    await clock.advance(10_000);
    expect(attempts).toEqual([0, 100, 300]);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom 1', 'boom 2']);

    scheduler.register('test.broken', () => {
      throw new Error('always');
    });
    await scheduler.schedule('test.broken', 'y', clock.now());
    await clock.advance(600_000);
    expect(errors.filter((e) => (e as Error).message === 'always')).toHaveLength(MAX_ATTEMPTS);
    expect(await scheduler.pending('test.broken')).toBe(0);
  });

  it('more due jobs than one batch run over several timer turns, all within the same clock time', async () => {
    const clock = new ManualClock(0);
    const { scheduler } = await startedScheduler(clock);
    let ran = 0;
    scheduler.register('test.bulk', () => void ran++);
    for (let i = 0; i < BATCH * 2 + 10; i++) await scheduler.schedule('test.bulk', `k${i}`, 5);
    await clock.advance(5);
    expect(ran).toBe(BATCH * 2 + 10);
  });

  it('runDue runs what is due now without the timer, and callers during a run get a run of their own', async () => {
    const clock = new ManualClock(0);
    const { scheduler } = await startedScheduler(clock);
    scheduler.stop();
    const ran: string[] = [];
    scheduler.register('test.job', (key) => void ran.push(key));
    await scheduler.schedule('test.job', 'due', 0);
    await scheduler.schedule('test.job', 'later', 50);
    const first = scheduler.runDue();
    await scheduler.schedule('test.job', 'also-due', 0);
    const second = scheduler.runDue();
    await Promise.all([first, second]);
    expect(ran).toEqual(['due', 'also-due']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a job of a kind without a handler is reported once and dropped', async () => {
    const clock = new ManualClock(0);
    const { scheduler, errors } = await startedScheduler(clock);
    await scheduler.schedule('test.nobody', 'x', 1);
    await clock.advance(1);
    expect(errors.map((e) => (e as Error).message)).toEqual(['no handler for jobs of kind test.nobody']);
    expect(await scheduler.pending('test.nobody')).toBe(0);
  });
});

describe('Scheduler on a store shared by several processes', () => {
  it('with pollMs, a job another process scheduled runs here at the first poll after it is due; without a poll, never', async () => {
    const clock = new ManualClock(0);
    const store = new MemorySchedulerStore();
    const noError = () => undefined;
    const elsewhere = new Scheduler({ clock, store, onError: noError });
    const polling = new Scheduler({ clock, store, onError: noError, pollMs: 250 });
    const deaf = new Scheduler({ clock, store, onError: noError });
    const ran: Array<[string, number]> = [];
    const deafRan: string[] = [];
    polling.register('test.job', (key) => void ran.push([key, clock.now()]));
    deaf.register('test.job', (key) => void deafRan.push(key));
    await polling.start();
    await deaf.start();
    await clock.advance(510);
    // Scheduled through a scheduler that is not started, between two polls: nobody's timer hears of it.
    await elsewhere.schedule('test.job', 'a', 520);
    await clock.advance(239);
    expect(ran).toEqual([]);
    await clock.advance(1);
    expect(ran).toEqual([['a', 750]]);
    expect(deafRan).toEqual([]);
    expect(await store.count('test.job')).toBe(0);
    polling.stop();
    deaf.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  it('a job claimed by a process that died mid-job is run by a polling one once the lease lapses, not before', async () => {
    const clock = new ManualClock(0);
    const store = new MemorySchedulerStore();
    const noError = () => undefined;
    const dying = new Scheduler({ clock, store, onError: noError });
    const survivor = new Scheduler({ clock, store, onError: noError, pollMs: 250 });
    let claimedByDying = 0;
    // The dying process's handler never finishes: its claim is all that is left of it.
    dying.register('test.job', () => {
      claimedByDying++;
      return new Promise<void>(() => undefined);
    });
    const ran: number[] = [];
    survivor.register('test.job', () => void ran.push(clock.now()));
    await dying.start();
    await dying.schedule('test.job', 'x', 100);
    await survivor.start();
    await clock.advance(100);
    expect(claimedByDying).toBe(1);
    dying.stop();
    await clock.advance(LEASE_MS - 1);
    expect(ran).toEqual([]);
    await clock.advance(250);
    expect(ran).toHaveLength(1);
    expect(ran[0]).toBeGreaterThanOrEqual(100 + LEASE_MS);
    expect(ran[0]).toBeLessThanOrEqual(100 + LEASE_MS + 250);
    expect(await store.count('test.job')).toBe(0);
    survivor.stop();
  });

  it('with leaseMs set (SCHEDULER_LEASE_MS), a dead process’s claim lapses after that lease, not LEASE_MS', async () => {
    const clock = new ManualClock(0);
    const store = new MemorySchedulerStore();
    const noError = () => undefined;
    const dying = new Scheduler({ clock, store, onError: noError, leaseMs: 2000 });
    const survivor = new Scheduler({ clock, store, onError: noError, pollMs: 250, leaseMs: 2000 });
    dying.register('test.job', () => new Promise<void>(() => undefined));
    const ran: number[] = [];
    survivor.register('test.job', () => void ran.push(clock.now()));
    await dying.start();
    await dying.schedule('test.job', 'x', 100);
    await survivor.start();
    await clock.advance(100);
    dying.stop();
    await clock.advance(1999);
    expect(ran).toEqual([]);
    await clock.advance(250);
    expect(ran).toHaveLength(1);
    expect(ran[0]).toBeGreaterThanOrEqual(2100);
    expect(ran[0]).toBeLessThanOrEqual(2350);
    survivor.stop();
  });

  it('a run that cannot reach the store is reported, never rejects, and is tried again; the job runs once the store is back', async () => {
    const clock = new ManualClock(0);
    const healthy = new MemorySchedulerStore();
    let away = false;
    const unreachable = (): never => {
      throw new Error('connect ECONNREFUSED');
    };
    const store: SchedulerStore = {
      schedule: (job) => healthy.schedule(job),
      cancel: (kind, key) => healthy.cancel(kind, key),
      claimDue: async (...args) => (away ? unreachable() : healthy.claimDue(...args)),
      complete: (job) => healthy.complete(job),
      nextDueAt: async () => (away ? unreachable() : healthy.nextDueAt()),
      count: (kind) => healthy.count(kind),
    };
    const runErrors: string[] = [];
    const scheduler = new Scheduler({ clock, store, onError: () => undefined, onRunError: (error) => void runErrors.push((error as Error).message) });
    const ran: number[] = [];
    scheduler.register('test.job', () => void ran.push(clock.now()));
    await scheduler.start();
    await scheduler.schedule('test.job', 'x', 100);
    away = true;
    await clock.advance(100 + FAILED_RUN_RETRY_MS);
    expect(runErrors).toEqual(['connect ECONNREFUSED', 'connect ECONNREFUSED']);
    expect(ran).toEqual([]);
    await expect(scheduler.runDue()).resolves.toBeUndefined();
    away = false;
    await clock.advance(FAILED_RUN_RETRY_MS);
    expect(ran).toEqual([100 + 2 * FAILED_RUN_RETRY_MS]);
    expect(await healthy.count('test.job')).toBe(0);
    scheduler.stop();
  });
});
