import type PQueue from 'p-queue';
import { FifoQueue } from '../core/fifo-queue.ts';

interface Lane<T> {
  waiting: FifoQueue<T>;
  active: number;
}

/**
 * Per-origin FIFO lanes in front of a shared worker pool. Each receiver origin feeds at most
 * `perOrigin` tasks into the pool at a time, so a receiver that times out can hold only that many
 * of the pool's workers while other receivers keep being served.
 */
export class Lanes<T> {
  readonly #pool: PQueue;
  readonly #perOrigin: number;
  readonly #run: (item: T) => Promise<void>;
  readonly #lanes = new Map<string, Lane<T>>();
  #waiting = 0;

  constructor(pool: PQueue, perOrigin: number, run: (item: T) => Promise<void>) {
    this.#pool = pool;
    this.#perOrigin = perOrigin;
    this.#run = run;
  }

  /** Items waiting in a lane, not yet handed to the pool. */
  get waiting(): number {
    return this.#waiting;
  }

  push(origin: string, item: T): void {
    let lane = this.#lanes.get(origin);
    if (lane === undefined) {
      lane = { waiting: new FifoQueue<T>(), active: 0 };
      this.#lanes.set(origin, lane);
    }
    lane.waiting.push(item);
    this.#waiting++;
    this.#pump(origin, lane);
  }

  /** Empties every lane (shutdown); returns what was waiting. */
  clear(): T[] {
    const left: T[] = [];
    for (const lane of this.#lanes.values()) left.push(...lane.waiting.drain());
    this.#waiting = 0;
    return left;
  }

  #pump(origin: string, lane: Lane<T>): void {
    while (lane.active < this.#perOrigin && lane.waiting.size > 0) {
      const item = lane.waiting.shift() as T;
      this.#waiting--;
      lane.active++;
      // A task the pool's clear() drops (a close with tasks still queued) rejects with an AbortError: not an error here.
      void this.#pool
        .add(() => this.#run(item))
        .finally(() => {
          lane.active--;
          this.#pump(origin, lane);
        })
        .catch((error: unknown) => {
          if (!(error instanceof Error && error.name === 'AbortError')) throw error;
        });
    }
    if (lane.active === 0 && lane.waiting.size === 0 && this.#lanes.get(origin) === lane) this.#lanes.delete(origin);
  }
}
