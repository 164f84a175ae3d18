import { FifoQueue } from '../../core/fifo-queue.ts';

/**
 * The order in which a memory store evicts its finished records: oldest finished first.
 *
 * Ids go in when their record reaches a final state; a record removed by other means leaves a
 * stale id behind, skipped when it reaches the head. One queue serves both bounds of a store:
 * the TTL (`sweep`, O(1) when nothing is due, so a store may call it on every insert) and the
 * size cap (`evictOne`).
 */
export class EvictionQueue<R> {
  readonly #ids = new FifoQueue<string>();
  readonly #lookup: (id: string) => R | undefined;
  readonly #createdAt: (record: R) => number;
  readonly #remove: (record: R) => void;

  /** `lookup` finds a live record by id, `createdAt` dates it, `remove` drops it from the store. */
  constructor(lookup: (id: string) => R | undefined, createdAt: (record: R) => number, remove: (record: R) => void) {
    this.#lookup = lookup;
    this.#createdAt = createdAt;
    this.#remove = remove;
  }

  push(id: string): void {
    this.#ids.push(id);
  }

  /** Removes every queued record created at or before `cutoff`, oldest first; returns how many. */
  sweep(cutoff: number): number {
    let evicted = 0;
    for (;;) {
      const id = this.#ids.peek();
      if (id === undefined) break;
      const record = this.#lookup(id);
      if (record !== undefined && this.#createdAt(record) > cutoff) break;
      this.#ids.shift();
      if (record !== undefined) {
        this.#remove(record);
        evicted++;
      }
    }
    return evicted;
  }

  /** Removes the oldest queued record; false when none is queued (every record is still open). */
  evictOne(): boolean {
    for (;;) {
      const id = this.#ids.shift();
      if (id === undefined) return false;
      const record = this.#lookup(id);
      if (record === undefined) continue;
      this.#remove(record);
      return true;
    }
  }
}
