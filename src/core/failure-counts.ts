/**
 * Failed runs per item (a scheduled job, a saga) that one process keeps for its retries: the
 * delay grows with them, and a job gives up after so many. An item is forgotten when its run
 * succeeds here; one that stops failing elsewhere never tells this process: another replica on
 * the same store ran it to the end, or it was cancelled or went with its record. So an entry whose
 * last failure is older than `forgetAfterMs` (longer than any retry here waits, plus the lease
 * another process holds it under) goes too, and a later failure of the same item counts from one.
 * Counts age only while the store answers: a run that cannot reach it keeps them all (`keepAll`),
 * so an outage, however long, neither resets a job's attempts nor its delay.
 * Without that, such entries stayed for the process's life, and an item of the same name failing
 * again much later carried the old count (a job given up at its first failure).
 *
 * Entries are kept in the order of their last failure (a failure moves its entry to the end), so
 * the stale ones are at the front and each failure drops them in passing; growth needs failures,
 * which sweep.
 */
export class FailureCounts<T> {
  readonly #forgetAfterMs: number;
  readonly #entries = new Map<string, { value: T; at: number }>();

  constructor(forgetAfterMs: number) {
    this.#forgetAfterMs = forgetAfterMs;
  }

  /** Items with failures kept. */
  get size(): number {
    return this.#entries.size;
  }

  /** The item's failures, unless it has none or its last failure is older than `forgetAfterMs`. */
  get(id: string, now: number): T | undefined {
    const entry = this.#entries.get(id);
    return entry === undefined || entry.at <= now - this.#forgetAfterMs ? undefined : entry.value;
  }

  /** Records the item's failures as of `now`, and forgets every item whose last failure is older than `forgetAfterMs`. */
  set(id: string, value: T, now: number): void {
    this.#entries.delete(id);
    this.#entries.set(id, { value, at: now });
    const before = now - this.#forgetAfterMs;
    for (const [key, entry] of this.#entries) {
      if (entry.at > before) break;
      this.#entries.delete(key);
    }
  }

  /**
   * Every item's failures as of `now` (no item can have run meanwhile: the store could not be
   * reached), but for those already past `forgetAfterMs`, which go: an outage keeps counts, it
   * does not bring back those forgotten before it.
   */
  keepAll(now: number): void {
    const before = now - this.#forgetAfterMs;
    for (const [key, entry] of this.#entries) {
      if (entry.at <= before) this.#entries.delete(key);
      else entry.at = now;
    }
  }

  delete(id: string): void {
    if (this.#entries.size > 0) this.#entries.delete(id);
  }
}
