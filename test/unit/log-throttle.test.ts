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

/** A logger whose warnings are kept as [fields, message]. */
function warnings() {
  const lines: unknown[][] = [];
  const log = { warn: (fields: object, message: string) => lines.push([fields, message]) } as unknown as Parameters<typeof storeFullLog>[0];
  return { lines, log };
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

  it('with trailing, tells the occurrences after the last line once the interval is over and none has come for 5 s; the tail is no line of its own (before 2026-12-06 never told)', () => {
    let now = 1_000;
    const timers = manualTimers(() => now);
    const told: Array<[number, number]> = [];
    const throttle = new CountingThrottle(10_000, () => now, (count) => told.push([now, count]), timers.setTimer);
    expect(throttle.take()).toBe(1);
    expect(timers.armed()).toEqual([]);
    now = 3_000;
    expect([throttle.take(), throttle.take(), throttle.take()]).toEqual([undefined, undefined, undefined]);
    expect(timers.armed()).toEqual([11_000]); // one timer, at the end of the interval
    now = 10_999;
    timers.fire();
    expect(told).toEqual([]);
    now = 11_000;
    timers.fire();
    expect(told).toEqual([[11_000, 3]]);
    // A new outage after the tail: told at once, its first line saying 1 (a review: the tail had
    // taken the interval, and the new outage was told a minute late as a tail).
    now = 12_000;
    expect(throttle.take()).toBe(1);
    expect(timers.armed()).toEqual([]);
  });

  it('with trailing, a steady stream is told by its takes in their own words, and its end by one tail (a review: every line after the first was a tail)', () => {
    let now = 0;
    const timers = manualTimers(() => now);
    const tails: Array<[number, number]> = [];
    const lines: Array<[number, number]> = [];
    const throttle = new CountingThrottle(1_000, () => now, (count) => tails.push([now, count]), timers.setTimer);
    for (now = 0; now < 3_500; now += 10) {
      timers.fire(); // the timers due before this take, as an event loop runs them
      const count = throttle.take();
      if (count !== undefined) lines.push([now, count]);
    }
    expect(lines).toEqual([
      [0, 1],
      [1_000, 100],
      [2_000, 100],
      [3_000, 100],
    ]);
    expect(tails).toEqual([]);
    now = 4_489; // the stream's last take was at 3,490: quiet for a second at 4,490 (the interval over at 4,000)
    timers.fire();
    expect(tails).toEqual([]);
    now = 4_490;
    timers.fire();
    expect(tails).toEqual([[4_490, 49]]);
    now = 10_000;
    timers.fire();
    expect(tails).toHaveLength(1);
  });

  it('flush tells the occurrences after the last line at once (a close), and nothing when there are none', () => {
    let now = 0;
    const timers = manualTimers(() => now);
    const told: number[] = [];
    const throttle = new CountingThrottle(10_000, () => now, (count) => told.push(count), timers.setTimer);
    throttle.flush();
    throttle.take();
    throttle.flush();
    expect(told).toEqual([]);
    now = 100;
    throttle.take();
    throttle.take();
    throttle.flush();
    expect(told).toEqual([2]);
    now = 20_000;
    timers.fire();
    expect(told).toEqual([2]);
  });
});

describe('storeFullLog', () => {
  it('warns of each full store at once, then once per STORE_FULL_LOG_INTERVAL_MS with the refusals since; other problems say nothing', () => {
    let now = 0;
    const { lines, log } = warnings();
    const tell = storeFullLog(log, () => now);
    const full = (store: string) => ({ status: 503, code: 'STORE_FULL', message: `${store} is full.`, store });
    tell(full('intents'));
    tell(full('intents'));
    tell(full('bookings'));
    tell({ status: 404, code: 'NOT_FOUND', message: 'No.' });
    // FluxPay's stores: its wrapper answers COMMON_503, and the line says so (a user test).
    tell(full('fluxpay'));
    now += STORE_FULL_LOG_INTERVAL_MS;
    tell(full('intents'));
    expect(lines).toEqual([
      [{ store: 'intents', refused: 1 }, 'the intents store is full: requests answer 503 STORE_FULL. intents is full.'],
      [{ store: 'bookings', refused: 1 }, 'the bookings store is full: requests answer 503 STORE_FULL. bookings is full.'],
      [{ store: 'fluxpay', refused: 1 }, 'the fluxpay store is full: requests answer 503 COMMON_503. fluxpay is full.'],
      [{ store: 'intents', refused: 2 }, 'the intents store is full: requests answer 503 STORE_FULL. intents is full.'],
    ]);
  });
});

describe('storeFullLog and refusalLog tell a last burst', () => {
  it('storeFullLog: the refusals after the last line are told once the minute is over, per store', () => {
    let now = 0;
    const timers = manualTimers(() => now);
    const { lines, log } = warnings();
    const tell = storeFullLog(log, () => now, timers.setTimer);
    const full = (store: string) => ({ status: 503, code: 'STORE_FULL', message: `${store} is full.`, store });
    tell(full('intents'));
    now = 1_000;
    tell(full('intents'));
    tell(full('intents'));
    tell(full('bookings'));
    tell({ status: 404, code: 'NOT_FOUND', message: 'No.' });
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
    expect(lines[1]).toEqual([{ redis_error: oom.message, refused: 1 }, 'Redis refused 1 more call that writes since the last line (503 STORE_UNAVAILABLE); Redis is over its maxmemory: give it more memory, or lower the store bounds (README: "Redis memory")']);
    // Another outage later: its first line at once, in its own words.
    now = 70_000;
    tell(oom);
    tell(oom);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toEqual([{ redis_error: oom.message, refused: 1 }, 'Redis refuses writes: calls that write answer 503 STORE_UNAVAILABLE until it takes them again; Redis is over its maxmemory: give it more memory, or lower the store bounds (README: "Redis memory")']);
    tell.flush(); // the close
    expect(lines[3]).toEqual([{ redis_error: oom.message, refused: 1 }, 'Redis refused 1 more call that writes since the last line (503 STORE_UNAVAILABLE); Redis is over its maxmemory: give it more memory, or lower the store bounds (README: "Redis memory")']);
  });

  it('storeFullLog: a store full for minutes is told as full each minute, never as was full while it is', () => {
    let now = 0;
    const timers = manualTimers(() => now);
    const { lines, log } = warnings();
    const tell = storeFullLog(log, () => now, timers.setTimer);
    for (now = 0; now < 3 * STORE_FULL_LOG_INTERVAL_MS; now += 100) {
      timers.fire();
      tell({ status: 503, code: 'STORE_FULL', message: 'full.', store: 'intents' });
    }
    expect(lines.map(([fields]) => fields)).toEqual([
      { store: 'intents', refused: 1 },
      { store: 'intents', refused: 600 },
      { store: 'intents', refused: 600 },
    ]);
    expect(lines.every(([, message]) => String(message).startsWith('the intents store is full: '))).toBe(true);
    tell.flush();
    expect(lines[3]).toEqual([{ store: 'intents', refused: 599 }, 'the intents store was full: 599 more requests answered 503 STORE_FULL since the last line. full.']);
  });

  it('storeFullLog: a client retrying at its Retry-After (1 s) is a stream still going, told as full each minute (a review: a second of quiet was taken for its end)', () => {
    let now = 0;
    const timers = manualTimers(() => now);
    const { lines, log } = warnings();
    const tell = storeFullLog(log, () => now, timers.setTimer);
    for (let at = 0; at < 3 * STORE_FULL_LOG_INTERVAL_MS; at += 1_005) {
      now = at;
      timers.fire();
      tell({ status: 503, code: 'STORE_FULL', message: 'full.', store: 'intents' });
    }
    expect(lines.map(([fields, message]) => [(fields as { refused: number }).refused, String(message).slice(0, 26)])).toEqual([
      [1, 'the intents store is full:'],
      [60, 'the intents store is full:'],
      [60, 'the intents store is full:'],
    ]);
  });
});
