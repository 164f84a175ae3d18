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

/**
 * The longest delay a Node timer takes (2^31 − 1 ms, about 24.8 days): beyond it Node warns
 * (TimeoutOverflowWarning) and fires after 1 ms. A longer delay fires at this bound instead. The
 * scheduler, whose next job can be a month away (a subscription's renewal), runs what is due when
 * its timer fires and arms again for the rest, so it wakes once per bound; before 2026-12-05 it
 * woke every millisecond, with a warning each time. Other timers wait far less.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(delayMs, fn) {
    const handle = setTimeout(fn, Math.min(delayMs, MAX_TIMER_MS));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
