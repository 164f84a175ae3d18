import { FifoQueue } from '../../core/fifo-queue.ts';
import type { ClaimedJob, Job, SchedulerStore } from '../../core/ports.ts';

interface Entry {
  kind: string;
  key: string;
  dueAt: number;
  /** The job's trace (`Job.trace`), given back with its claims. */
  trace: string | undefined;
  /** Tie-breaker: entries due at the same time come out in the order they were scheduled. */
  seq: number;
  /** Set while claimed: the token `complete` must present. */
  token: string | null;
  /** While claimed: when the lease lapses and the job is due again. */
  leaseEnd: number;
  /** The map of its kind, where it is live while it is that map's entry for its key. */
  jobs: Map<string, Entry>;
}

/**
 * Due work in one process's memory: a binary min-heap ordered by due time (then by scheduling
 * order), and per kind a map from key to the live entry. Rescheduling or cancelling replaces or
 * drops the map's entry and leaves the old one in the heap, skipped when it surfaces (lazy
 * deletion), so every operation is O(log n).
 *
 * A claimed job leaves the heap for a FIFO of claims: every lease is as long as the next, so the
 * FIFO is in lease-end order and its front is the first claim to lapse. A claim that is never
 * completed comes back from there, as it would from a shared store.
 */
export class MemorySchedulerStore implements SchedulerStore {
  readonly #heap: Entry[] = [];
  readonly #claims = new FifoQueue<Entry>();
  /** kind → key → live entry (a map per kind: no string is built per operation). */
  readonly #live = new Map<string, Map<string, Entry>>();
  #liveCount = 0;
  #seq = 0;

  schedule(job: Job, options?: { earliest?: boolean }): Promise<void> {
    const jobs = this.#kind(job.kind);
    const waiting = jobs.get(job.key);
    if (options?.earliest === true && waiting !== undefined && waiting.token === null && waiting.dueAt <= job.dueAt) return Promise.resolve();
    const entry: Entry = { kind: job.kind, key: job.key, dueAt: job.dueAt, trace: job.trace, seq: this.#seq++, token: null, leaseEnd: 0, jobs };
    if (!jobs.has(job.key)) this.#liveCount++;
    jobs.set(job.key, entry);
    this.#push(entry);
    // Replaced and cancelled entries wait in the heap until they surface; rebuild once they are most of it.
    if (this.#heap.length > 1024 && this.#heap.length > 3 * this.#liveCount) this.#rebuild();
    return Promise.resolve();
  }

  cancel(kind: string, key: string): Promise<boolean> {
    const removed = this.#live.get(kind)?.delete(key) ?? false;
    if (removed) this.#liveCount--;
    return Promise.resolve(removed);
  }

  claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
    const claimed: ClaimedJob[] = [];
    while (claimed.length < limit) {
      const lapsed = this.#lapsedClaim(now);
      const top = lapsed === undefined ? this.#top() : undefined;
      const entry = lapsed ?? (top !== undefined && top.dueAt <= now ? top : undefined);
      if (entry === undefined) break;
      if (lapsed !== undefined) this.#claims.shift();
      else this.#pop();
      entry.token = String(this.#seq++);
      entry.leaseEnd = now + leaseMs;
      this.#claims.push(entry);
      const job: ClaimedJob = { kind: entry.kind, key: entry.key, dueAt: entry.dueAt, token: entry.token };
      if (entry.trace !== undefined) job.trace = entry.trace;
      claimed.push(job);
    }
    return Promise.resolve(claimed);
  }

  complete(claims: readonly ClaimedJob[]): Promise<void> {
    for (const job of claims) {
      const jobs = this.#live.get(job.kind);
      if (jobs?.get(job.key)?.token === job.token && jobs.delete(job.key)) this.#liveCount--;
    }
    return Promise.resolve();
  }

  async release(claims: readonly ClaimedJob[]): Promise<void> {
    for (const job of claims) if (this.#live.get(job.kind)?.get(job.key)?.token === job.token) await this.schedule(job);
  }

  nextDueAt(): Promise<number | undefined> {
    const top = this.#top()?.dueAt;
    const lease = this.#firstLiveClaim()?.leaseEnd;
    if (top === undefined) return Promise.resolve(lease);
    return Promise.resolve(lease === undefined ? top : Math.min(top, lease));
  }

  count(kind: string): Promise<number> {
    return Promise.resolve(this.#live.get(kind)?.size ?? 0);
  }

  keys(kind: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    for (const key of this.#live.get(kind)?.keys() ?? []) {
      if (keys.length >= limit) break;
      keys.push(key);
    }
    return Promise.resolve(keys);
  }

  #kind(kind: string): Map<string, Entry> {
    let jobs = this.#live.get(kind);
    if (jobs === undefined) {
      jobs = new Map();
      this.#live.set(kind, jobs);
    }
    return jobs;
  }

  #isLive(entry: Entry): boolean {
    return entry.jobs.get(entry.key) === entry;
  }

  /** The front claim if it is live and its lease has lapsed. */
  #lapsedClaim(now: number): Entry | undefined {
    const front = this.#firstLiveClaim();
    return front !== undefined && front.leaseEnd <= now ? front : undefined;
  }

  /** The oldest claim still live (completed or rescheduled ones are dropped on the way). */
  #firstLiveClaim(): Entry | undefined {
    for (;;) {
      const front = this.#claims.peek();
      if (front === undefined || (front.token !== null && this.#isLive(front))) return front;
      this.#claims.shift();
    }
  }

  /** The earliest live, unclaimed entry of the heap, dropping stale ones above it. */
  #top(): Entry | undefined {
    const heap = this.#heap;
    while (heap.length > 0) {
      const top = heap[0] as Entry;
      if (top.token === null && this.#isLive(top)) return top;
      this.#pop();
    }
    return undefined;
  }

  #rebuild(): void {
    const waiting: Entry[] = [];
    for (const jobs of this.#live.values()) for (const entry of jobs.values()) if (entry.token === null) waiting.push(entry);
    // A sorted array is a valid heap.
    waiting.sort((a, b) => (before(a, b) ? -1 : 1));
    this.#heap.length = 0;
    for (const entry of waiting) this.#heap.push(entry);
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent] as Entry)) break;
      heap[i] = heap[parent] as Entry;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop() as Entry;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right] as Entry, heap[left] as Entry) ? right : left;
      if (!before(heap[child] as Entry, last)) break;
      heap[i] = heap[child] as Entry;
      i = child;
    }
    heap[i] = last;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.seq < b.seq);
}
