/** Runs `fn` after `ms` without keeping the process alive for it. */
export type SetTimer = (fn: () => void, ms: number) => void;

/**
 * How long no occurrence must come before the occurrences after the last line are told as a tail:
 * well above the cadences of a stream still going (a client retrying at `Retry-After: 1`, a failed
 * run of due work retried a second later), which a second's quiet took for an end (a review).
 */
const QUIET_MS = 5_000;

const unrefTimer: SetTimer = (fn, ms) => {
  setTimeout(fn, ms).unref();
};

/**
 * For a log line that may come thousands of times a second (each call while Redis refuses writes,
 * each due job while the store is unavailable): `take` counts each occurrence and answers how many
 * there have been since the last line, at most once per `intervalMs` (the first at once), else
 * undefined (this one is only counted).
 *
 * With `trailing`, the occurrences counted after the last line are told too when no further one
 * comes to tell them: `trailing(count)` runs once the interval since that line is over and none
 * has come for QUIET_MS (a timer armed by the first of them; `flush` tells them at once, at
 * a close). While they go on coming, the next `take` tells them, in the line's own words. A tail
 * is no line of its own: the next occurrence after it (a new outage) is told at once if the
 * interval since the last line is over. Without it, a last burst was never told (before 2026-12-06).
 */
export class CountingThrottle {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #trailing: ((count: number) => void) | undefined;
  readonly #setTimer: SetTimer;
  #lastAt = Number.NEGATIVE_INFINITY;
  #lastSeenAt = Number.NEGATIVE_INFINITY;
  #count = 0;
  #armed = false;

  constructor(intervalMs: number, now: () => number, trailing?: (count: number) => void, setTimer: SetTimer = unrefTimer) {
    this.#intervalMs = intervalMs;
    this.#now = now;
    this.#trailing = trailing;
    this.#setTimer = setTimer;
  }

  take(): number | undefined {
    this.#count++;
    const at = this.#now();
    this.#lastSeenAt = at;
    if (at - this.#lastAt < this.#intervalMs) {
      this.#arm(this.#lastAt + this.#intervalMs - at);
      return undefined;
    }
    this.#lastAt = at;
    return this.#drain();
  }

  /** Tells the occurrences counted since the last line, if any, through `trailing` now (a close). */
  flush(): void {
    if (this.#count === 0 || this.#trailing === undefined) return;
    this.#trailing(this.#drain());
  }

  /** The occurrences counted since the last line, the count starting again. */
  #drain(): number {
    const count = this.#count;
    this.#count = 0;
    return count;
  }

  #arm(ms: number): void {
    if (this.#trailing === undefined || this.#armed) return;
    this.#armed = true;
    this.#setTimer(() => {
      this.#armed = false;
      const at = this.#now();
      // Told meanwhile by a take of its own, or the timer early: nothing, or wait the rest.
      if (this.#count === 0) return;
      if (at - this.#lastAt < this.#intervalMs) return this.#arm(this.#lastAt + this.#intervalMs - at);
      // Still coming: the next take tells them in the line's own words (a review: a steady stream
      // was told by tails alone, "was full" while it was full); a burst that has ended, once quiet.
      const quietMs = Math.min(QUIET_MS, this.#intervalMs);
      if (at - this.#lastSeenAt < quietMs) return this.#arm(this.#lastSeenAt + quietMs - at);
      // Not a line of its own (#lastAt stays): a new outage after it is told at once.
      this.flush();
    }, ms);
  }
}
