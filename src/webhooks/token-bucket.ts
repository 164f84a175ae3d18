import type { Clock, Timer } from '../core/clock.ts';
import { FifoQueue } from '../core/fifo-queue.ts';

/**
 * What the dispatcher needs of its rate cap: a token per attempt, waiters served in order, and
 * every waiter let go at shutdown. This bucket is one process's; `RedisRateCap`
 * (src/adapters/redis/rate-cap.ts) is one bucket shared by every replica.
 */
export interface RateCap {
  /** Resolves when a token has been taken for the caller. */
  take(): Promise<void>;
  /** Callers waiting for a token. */
  readonly waiting: number;
  /** Releases every waiter without a token (shutdown). */
  releaseAll(): void;
}

/** A capacity of a twentieth of a second's worth keeps the measured rate within 1 % of the cap over 10 s. */
export function bucketCapacity(ratePerSecond: number): number {
  return Math.max(1, Math.ceil(ratePerSecond / 20));
}

/**
 * A token bucket on the injected clock: `ratePerSecond` tokens a second, holding at most
 * `capacity`. Callers that find it empty wait in one FIFO queue served by a single timer, so a
 * token wakes exactly one waiter (not every waiter), and waiting costs no CPU.
 * Hand-written because it must run on the injected clock; p-queue's interval cap is a fixed
 * window, which lets up to twice the rate through at window edges.
 */
export class TokenBucket implements RateCap {
  readonly #clock: Clock;
  readonly #ratePerMs: number;
  readonly #capacity: number;
  #tokens: number;
  #at: number;
  readonly #waiters = new FifoQueue<() => void>();
  #timer: Timer | undefined;

  constructor(clock: Clock, ratePerSecond: number, capacity: number) {
    this.#clock = clock;
    this.#ratePerMs = ratePerSecond / 1000;
    this.#capacity = capacity;
    this.#tokens = capacity;
    this.#at = clock.now();
  }

  /** Callers waiting for a token. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Resolves when a token has been taken for the caller; callers are served in order. */
  take(): Promise<void> {
    if (this.#waiters.size === 0) {
      this.#refill();
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return Promise.resolve();
      }
    }
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#arm();
    });
  }

  /** Releases every waiter without a token (shutdown, once the drain is over). */
  releaseAll(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    for (const wake of this.#waiters.drain()) wake();
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#at) * this.#ratePerMs);
    this.#at = now;
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(1, Math.ceil((1 - this.#tokens) / this.#ratePerMs));
    this.#timer = this.#clock.schedule(wait, () => {
      this.#timer = undefined;
      this.#refill();
      while (this.#tokens >= 1 && this.#waiters.size > 0) {
        this.#tokens -= 1;
        (this.#waiters.shift() as () => void)();
      }
      if (this.#waiters.size > 0) this.#arm();
    });
  }
}
