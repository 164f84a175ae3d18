/**
 * A first-in-first-out queue with O(1) amortised `push` and `shift`, optionally bounded.
 *
 * Items live in an array read from a head index; the consumed prefix is dropped once it is both
 * larger than `COMPACT_AT` and at least half the array, so the queue never holds more than twice
 * its live items and `shift` never moves the whole array on each call (as `Array#shift` does).
 * One utility for every queue of the service: webhook lanes, rate-cap waiters, store orders.
 */

const COMPACT_AT = 1024;

export class FifoQueue<T> {
  #items: Array<T | undefined> = [];
  #head = 0;
  readonly #max: number;

  /** `max`: `push` refuses items beyond it (default: unbounded). */
  constructor(max = Number.POSITIVE_INFINITY) {
    this.#max = max;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  get full(): boolean {
    return this.size >= this.#max;
  }

  /** Appends `item`; false (and nothing changes) when the queue is at its bound. */
  push(item: T): boolean {
    if (this.size >= this.#max) return false;
    this.#items.push(item);
    return true;
  }

  /** The oldest item, without removing it. */
  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head++;
    this.#compact();
    return item;
  }

  /** Removes every item and returns them, oldest first. */
  drain(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return items;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }

  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_AT && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
