/**
 * Time as the core sees it. Everything that waits (decision delays, TTL sweeps, seat holds) goes
 * through a Clock so tests can advance time instead of sleeping.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Runs `fn` once after `delayMs`. Real timers are unref'd: pending work never keeps the process
   * alive. `fn` may return the promise of the work it started: real timers ignore it, the tests'
   * manual clock waits for it before it fires the next timer (work over a Redis store takes round
   * trips, not just a turn of the event loop). Such a promise must never reject.
   */
  schedule(delayMs: number, fn: () => void | Promise<void>): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(delayMs, fn) {
    const handle = setTimeout(fn, delayMs);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
