import type { Clock, Timer } from '../core/clock.ts';

/**
 * Keeps one receiver from flooding the log: at most `limit` warnings per key (a receiver's origin)
 * in an interval of `intervalMs` that starts with the key's first warning. The warnings beyond it
 * are only counted; when such an interval ends, `onSuppressed` is told the count once (a timer on
 * the injected clock, set only while something is being suppressed). So a dead receiver costs at
 * most `limit + 1` lines per interval, and nothing it suppressed goes untold: `flush` (at close)
 * tells the intervals still open.
 */

export interface WarningLimiterSettings {
  /** Warnings let through per key and interval (0: none, every one is counted). */
  limit: number;
  intervalMs: number;
}

/** `since`: when the interval that suppressed `count` warnings of `key` began. */
export type SuppressedHandler = (key: string, count: number, since: number) => void;

interface Window {
  startedAt: number;
  passed: number;
  suppressed: number;
  timer: Timer | undefined;
}

/** Beyond this many keys, intervals that have ended are dropped on the next warning (only keys with a recent warning stay). */
const PRUNE_ABOVE = 1000;

export class WarningLimiter {
  readonly #clock: Clock;
  readonly #settings: WarningLimiterSettings;
  readonly #onSuppressed: SuppressedHandler;
  readonly #windows = new Map<string, Window>();
  #closed = false;

  constructor(clock: Clock, settings: WarningLimiterSettings, onSuppressed: SuppressedHandler) {
    this.#clock = clock;
    this.#settings = settings;
    this.#onSuppressed = onSuppressed;
  }

  /** Keys with an open interval. */
  get size(): number {
    return this.#windows.size;
  }

  /** True: log this warning. False: it was counted, and will be told in the interval's summary. */
  allow(key: string): boolean {
    // Closed: an interval's end would come after the process, so every warning is told.
    if (this.#closed) return true;
    const now = this.#clock.now();
    let window = this.#windows.get(key);
    if (window !== undefined && now - window.startedAt >= this.#settings.intervalMs) {
      this.#end(key, window);
      window = undefined;
    }
    if (window === undefined) {
      if (this.#windows.size >= PRUNE_ABOVE) this.#prune(now);
      window = { startedAt: now, passed: 0, suppressed: 0, timer: undefined };
      this.#windows.set(key, window);
    }
    if (window.passed < this.#settings.limit) {
      window.passed++;
      return true;
    }
    window.suppressed++;
    if (window.timer === undefined) {
      const ending = window;
      ending.timer = this.#clock.schedule(ending.startedAt + this.#settings.intervalMs - now, () => this.#end(key, ending));
    }
    return false;
  }

  /** Tells what the open intervals suppressed and forgets every key (the app is closing). */
  flush(): void {
    for (const [key, window] of [...this.#windows]) this.#end(key, window);
  }

  /** `flush`, and from then on lets every warning through (the app is closing: no interval would end in time to tell its count). */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  #end(key: string, window: Window): void {
    window.timer?.cancel();
    window.timer = undefined;
    if (this.#windows.get(key) === window) this.#windows.delete(key);
    if (window.suppressed > 0) {
      const count = window.suppressed;
      window.suppressed = 0;
      this.#onSuppressed(key, count, window.startedAt);
    }
  }

  #prune(now: number): void {
    for (const [key, window] of this.#windows) {
      if (now - window.startedAt >= this.#settings.intervalMs) this.#end(key, window);
    }
  }
}
