/**
 * For a log line that may come thousands of times a second (each call while Redis refuses writes,
 * each due job while the store is unavailable): `take` counts each occurrence and answers how many
 * there have been since the last line, at most once per `intervalMs` (the first at once), else
 * undefined (this one is only counted).
 */
export class CountingThrottle {
  readonly #intervalMs: number;
  readonly #now: () => number;
  #lastAt = Number.NEGATIVE_INFINITY;
  #count = 0;

  constructor(intervalMs: number, now: () => number) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  take(): number | undefined {
    this.#count++;
    const at = this.#now();
    if (at - this.#lastAt < this.#intervalMs) return undefined;
    this.#lastAt = at;
    const count = this.#count;
    this.#count = 0;
    return count;
  }
}
