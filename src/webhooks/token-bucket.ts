import type { Clock } from '../core/clock.ts';

/**
 * A token bucket on the injected clock: `ratePerSecond` tokens a second, holding at most
 * `capacity`. Hand-written because it is a dozen lines that must run on the injected clock;
 * p-queue's interval cap is a fixed window, which lets twice the rate through at window edges.
 */
export class TokenBucket {
  readonly #clock: Clock;
  readonly #ratePerMs: number;
  readonly #capacity: number;
  #tokens: number;
  #at: number;

  constructor(clock: Clock, ratePerSecond: number, capacity: number) {
    this.#clock = clock;
    this.#ratePerMs = ratePerSecond / 1000;
    this.#capacity = capacity;
    this.#tokens = capacity;
    this.#at = clock.now();
  }

  /** Takes a token and returns 0, or returns how many ms until one is available. */
  tryTake(): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#at) * this.#ratePerMs);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#ratePerMs));
  }
}
