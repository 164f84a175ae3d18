import type { StoreStats } from '../../core/ports.ts';
import type { RateLimitStore, RateLimitWindow } from '../../core/rate-limit/ports.ts';

export interface MemoryRateLimitStoreOptions {
  /** Keys (client and route group) held at once; beyond it the least recently started window goes first. */
  maxKeys: number;
}

/**
 * Rate-limit windows in one process's memory: a Map in the order windows started (a window that
 * starts anew moves to the end), so the first entries are the oldest, for eviction and sweeping.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly #windows = new Map<string, RateLimitWindow>();
  readonly #options: MemoryRateLimitStoreOptions;

  constructor(options: MemoryRateLimitStoreOptions) {
    this.#options = options;
  }

  hit(key: string, windowMs: number, now: number): Promise<RateLimitWindow> {
    const window = this.#windows.get(key);
    if (window !== undefined && window.resetAt > now) {
      window.current += 1;
      return Promise.resolve({ ...window });
    }
    if (window !== undefined) this.#windows.delete(key);
    else if (this.#windows.size >= this.#options.maxKeys) this.#windows.delete(this.#windows.keys().next().value as string);
    const started = { current: 1, resetAt: now + windowMs };
    this.#windows.set(key, started);
    return Promise.resolve({ ...started });
  }

  reset(key: string): Promise<void> {
    this.#windows.delete(key);
    return Promise.resolve();
  }

  stats(): Promise<StoreStats> {
    return Promise.resolve({ size: this.#windows.size, max: this.#options.maxKeys });
  }

  sweep(now: number): Promise<number> {
    let swept = 0;
    // Windows end in the order they started only when every window has the same length, so the
    // whole map is walked; a sweep runs once a minute, over at most `maxKeys` entries.
    for (const [key, window] of this.#windows) {
      if (window.resetAt <= now) {
        this.#windows.delete(key);
        swept++;
      }
    }
    return Promise.resolve(swept);
  }
}
