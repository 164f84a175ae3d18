import { describe, expect, it } from 'vitest';
import { refusalLog } from '../../src/adapters/redis/unavailable.ts';
import { CountingThrottle, type SetTimer } from '../../src/log-throttle.ts';
import { STORE_FULL_LOG_INTERVAL_MS, storeFullLog } from '../../src/plugins/app/error-shapes.ts';

/** Timers run by hand: `fire` runs those due at `now`, in order. */
function manualTimers(now: () => number) {
  const timers: Array<{ at: number; fn: () => void }> = [];
  const setTimer: SetTimer = (fn, ms) => void timers.push({ at: now() + ms, fn });
  const fire = () => {
    for (;;) {
      const due = timers.filter((t) => t.at <= now()).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) return;
      timers.splice(timers.indexOf(due), 1);
      due.fn();
    }
  };
  return { setTimer, fire, armed: () => timers.map((t) => t.at) };
}

describe('CountingThrottle', () => {
  it('answers the first occurrence at once, then at most once per interval with how many came since the last answer', () => {
    let now = 1_000;
    const throttle = new CountingThrottle(10_000, () => now);
    expect(throttle.take()).toBe(1);
    expect([throttle.take(), throttle.take()]).toEqual([undefined, undefined]);
    now += 9_999;
    expect(throttle.take()).toBeUndefined();
    now += 1;
    expect(throttle.take()).toBe(4);
    now += 60_000;
    expect(throttle.take()).toBe(1);
  });

  it('with trailing, tells the occurrences after the last line once the interval is over when none follows to tell them (before 2026-12-06 never)', () => {
    let now = 1_000;
    const timers = manualTimers(() => now);
    const told: number[] = [];
    const throttle = new CountingThrottle(10_000, () => now, (count) => told.push(count), timers.setTimer);
    expect(throttle.take()).toBe(1);
    expect(timers.armed()).toEqual([]);
    now += 2_000;
    expect([throttle.take(), throttle.take(), throttle.take()]).toEqual([undefined, undefined, undefined]);
    expect(timers.armed()).toEqual([11_000]); // one timer, at the end of the interval
    now = 10_999;
    timers.fire();
    expect(told).toEqual([]);
    now = 11_000;
    timers.fire();
    expect(told).toEqual([3]);
    // Told: the next occurrence waits out the interval from the trailing line.
    now = 12_000;
    expect(throttle.take()).toBeUndefined();
    now = 21_000;
    expect(throttle.take()).toBe(2); // told by a take of its own: the timer finds nothing left
    timers.fire();
    expect(told).toEqual([3]);
    expect(timers.armed()).toEqual([]);
  });

  it('with trailing, a timer that fires after a take told the count re-arms for the occurrences since', () => {
    let now = 0;
    const timers = manualTimers(() => now);
    const told: number[] = [];
    const throttle = new CountingThrottle(10_000, () => now, (count) => told.push(count), timers.setTimer);
    throttle.take();
    now = 5_000;
    throttle.take(); // arms for 10,000
    now = 10_500;
    expect(throttle.take()).toBe(2); // the timer is late: the take tells first
    now = 10_600;
    expect(throttle.take()).toBeUndefined();
    timers.fire(); // the old timer: one counted since, the interval from 10,500 not over
    expect(told).toEqual([]);
    expect(timers.armed()).toEqual([20_500]);
    now = 20_500;
    timers.fire();
    expect(told).toEqual([1]);
  });
});

describe('storeFullLog', () => {
  it('warns of each full store at once, then once per STORE_FULL_LOG_INTERVAL_MS with the refusals since; other problems say nothing', () => {
    let now = 0;
    const lines: unknown[][] = [];
    const log = { warn: (fields: object, message: string) => lines.push([fields, message]) } as unknown as Parameters<typeof storeFullLog>[0];
    const tell = storeFullLog(log, () => now);
    const full = (store: string) => ({ status: 503, code: 'STORE_FULL', message: `${store} is full.`, store });
    tell(full('intents'));
    tell(full('intents'));
    tell(full('bookings'));
    tell({ status: 404, code: 'NOT_FOUND', message: 'No.' });
    now += STORE_FULL_LOG_INTERVAL_MS;
    tell(full('intents'));
    expect(lines).toEqual([
      [{ store: 'intents', refused: 1 }, 'the intents store is full: requests answer 503 STORE_FULL. intents is full.'],
      [{ store: 'bookings', refused: 1 }, 'the bookings store is full: requests answer 503 STORE_FULL. bookings is full.'],
      [{ store: 'intents', refused: 2 }, 'the intents store is full: requests answer 503 STORE_FULL. intents is full.'],
    ]);
  });
});

describe('storeFullLog and refusalLog tell a last burst', () => {
  it('storeFullLog: the refusals after the last line are told once the minute is over, per store', () => {
    let now = 0;
    const timers = manualTimers(() => now);
    const lines: unknown[][] = [];
    const log = { warn: (fields: object, message: string) => lines.push([fields, message]) } as unknown as Parameters<typeof storeFullLog>[0];
    const tell = storeFullLog(log, () => now, timers.setTimer);
    const full = (store: string) => ({ status: 503, code: 'STORE_FULL', message: `${store} is full.`, store });
    tell(full('intents'));
    now = 1_000;
    tell(full('intents'));
    tell(full('intents'));
    tell(full('bookings'));
    now = STORE_FULL_LOG_INTERVAL_MS;
    timers.fire();
    expect(lines).toEqual([
      [{ store: 'intents', refused: 1 }, 'the intents store is full: requests answer 503 STORE_FULL. intents is full.'],
      [{ store: 'bookings', refused: 1 }, 'the bookings store is full: requests answer 503 STORE_FULL. bookings is full.'],
      [{ store: 'intents', refused: 2 }, 'the intents store was full: 2 more requests answered 503 STORE_FULL since the last line. intents is full.'],
    ]);
    expect(timers.armed()).toEqual([]);
  });

  it('refusalLog: the calls refused after the last line are told once the minute is over, with the hint', () => {
    let now = 0;
    const timers = manualTimers(() => now);
    const lines: unknown[][] = [];
    const log = { error: (fields: object, message: string) => lines.push([fields, message]) } as unknown as Parameters<typeof refusalLog>[0];
    const tell = refusalLog(log, () => now, timers.setTimer);
    const oom = new Error("OOM command not allowed when used memory > 'maxmemory'.");
    tell(oom);
    now = 30_000;
    tell(oom);
    expect(lines).toHaveLength(1);
    now = 60_000;
    timers.fire();
    expect(lines[1]).toEqual([{ refused: 1 }, 'Redis refused 1 more call that write since the last line (503 STORE_UNAVAILABLE); Redis is over its maxmemory: give it more memory, or lower the store bounds (README: "Redis memory")']);
  });
});
