import type { Delivery } from '../core/deliveries.ts';
import type { DeliveryLogStore, DeliveryQueue } from '../core/ports.ts';
import type { QueueHoldings } from './holdings.ts';
import type { RateCap } from './token-bucket.ts';

/** Beside an attempt's time-out, what a drain keeps to record an attempt that ended (`reserveMs`). */
const DRAIN_RECORD_MARGIN_MS = 500;
/** How many unfinished deliveries the drain reads back at once when its budget ends. */
const READ_BATCH = 200;

export interface DrainDeps {
  log: DeliveryLogStore;
  queue: DeliveryQueue;
  /** What this process holds of a shared queue (the dispatcher's). */
  holdings: QueueHoldings;
  rateCap: RateCap | undefined;
  /** The longest an attempt takes (WEBHOOK_TIMEOUT_MS). */
  timeoutMs: number;
}

/**
 * A dispatcher's drain: the deliveries it waits for before the close, and, with a shared queue
 * (Redis), the time after which an attempt of a delivery taken from it is not begun but handed back
 * unmade (`endsAt`), so that the close cuts none, and the queue is read no more. The dispatcher
 * counts and settles the deliveries, and asks before each such attempt (`tooLateToBegin`).
 */
export class Drain {
  readonly #deps: DrainDeps;
  readonly #shared: boolean;
  /** Real time after which an attempt of a delivery taken from a shared queue is not begun but handed back (set by `endsAt`). */
  #beginBy = Number.POSITIVE_INFINITY;
  #beginByTimer: NodeJS.Timeout | undefined;
  /** The shared queue's reader stopped (`#stopTaking`). */
  #stoppedTaking: Promise<void> | undefined;
  /**
   * What the drain waits for. Memory: the deliveries this process accepted that have not finished
   * (waiting, in flight, or waiting to retry). Shared queue: the deliveries it took and has not
   * acknowledged (the others are in the queue or on the shared scheduler, for any replica).
   */
  readonly #unfinished = new Set<string>();
  /**
   * With a shared queue: the deliveries whose last attempt here, in the drain, failed on the store
   * (its result, or the check before it, not recorded), so that another replica (or the next start)
   * takes each over and sends it, again if that attempt had reached the receiver; the drain's end
   * line names them. An attempt made and recorded here since (the delivery read again) takes it off.
   */
  readonly #unrecorded = new Set<string>();
  #idleWaiters: Array<() => void> = [];

  constructor(deps: DrainDeps) {
    this.#deps = deps;
    this.#shared = deps.queue.shared;
  }

  /** The delivery is this process's to finish: the drain waits for it. */
  add(id: string): void {
    this.#unfinished.add(id);
  }

  has(id: string): boolean {
    return this.#unfinished.has(id);
  }

  /** This process is done with the delivery: the drain no longer waits for it. */
  settle(id: string): void {
    this.#unfinished.delete(id);
    if (this.#unfinished.size > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** An attempt of a delivery taken from a shared queue failed on the store: counted in `#unrecorded` when it was in the drain. */
  unrecorded(id: string): void {
    if (this.#beginBy !== Number.POSITIVE_INFINITY) this.#unrecorded.add(id);
  }

  /** An attempt of the delivery was made and recorded here: no longer another's to send. */
  recorded(id: string): void {
    this.#unrecorded.delete(id);
  }

  /** The real time after which an attempt of a delivery taken from a shared queue is not begun (`endsAt`). */
  get beginBy(): number {
    return this.#beginBy;
  }

  /** A delivery taken from a shared queue whose attempt, begun now, might not end before the drain's close (`endsAt`). */
  tooLateToBegin(id: string): boolean {
    return this.#deps.holdings.holds(id) && Date.now() >= this.#beginBy;
  }

  /**
   * What a drain with a shared queue keeps of its budget for the attempts it has begun: the
   * longest an attempt takes (WEBHOOK_TIMEOUT_MS) and a margin to record it. The lifecycle ends
   * the producers' phase that much before the budget's end (at most half of it goes so).
   */
  get reserveMs(): number {
    return this.#shared ? this.#deps.timeoutMs + DRAIN_RECORD_MARGIN_MS : 0;
  }

  /**
   * A shared queue, as a drain that ends at `deadline` (real time) begins: from then on an attempt
   * of a delivery taken from it begins only while it can end before the deadline (else it is
   * handed back), whichever phase of the drain it comes in.
   */
  endsAt(deadline: number): void {
    if (!this.#shared || deadline - this.reserveMs >= this.#beginBy) return;
    this.#beginBy = deadline - this.reserveMs;
    // From then on it reads nothing (all it read would go back), and deliveries waiting for a rate-cap
    // token go back without one (the token is every replica's: the others send them).
    clearTimeout(this.#beginByTimer);
    this.#beginByTimer = setTimeout(() => {
      // A timer can fire a little before the wall clock reads its time (libuv counts from a cached
      // millisecond): the attempts it wakes must find it too late all the same (before 2026-12-04 one
      // woken then went out, and the close could cut it).
      this.#beginBy = Math.min(this.#beginBy, Date.now());
      void this.#stopTaking();
      this.#deps.rateCap?.releaseAll();
    }, Math.max(0, this.#beginBy - Date.now()));
    this.#beginByTimer.unref();
  }

  /** Stops reading from a shared queue (once): what it has not read is the other replicas' (or the next start's). */
  #stopTaking(): Promise<void> {
    this.#stoppedTaking ??= this.#deps.queue.stop();
    return this.#stoppedTaking;
  }

  /**
   * Waits until every delivery counted here has finished, or `budgetMs` of real time has passed.
   * Returns the deliveries still unfinished then.
   */
  async run(budgetMs: number): Promise<Delivery[]> {
    const endAt = Date.now() + budgetMs;
    if (this.#shared) {
      // A shared queue keeps what this process has not taken for the other replicas (or the next
      // start), and an attempt begins only while it can end within the budget: one the close would
      // cut is sent twice (before 2026-12-03 a rolling restart under load did so 24–64 times a stop).
      this.endsAt(endAt);
      await this.#stopTaking();
    }
    if (this.#unfinished.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        // The budget counts from the drain's call: a slow stop of the reader (CLIENT UNBLOCK refused) is part of it.
        timer = setTimeout(resolve, Math.max(0, endAt - Date.now()));
        timer.unref();
        this.#idleWaiters.push(resolve);
      });
      clearTimeout(timer);
    }
    // Read in batches of concurrent reads (one round trip each on Redis, not one per delivery: a
    // close may leave thousands unfinished, and each read came out of the shutdown's grace).
    const ids = [...this.#unfinished];
    const left: Delivery[] = [];
    for (let i = 0; i < ids.length; i += READ_BATCH) {
      for (const delivery of await Promise.all(ids.slice(i, i + READ_BATCH).map((id) => this.#deps.log.get(id)))) {
        if (delivery !== undefined) left.push(delivery);
      }
    }
    return left;
  }

  /** The deliveries counted in `#unrecorded` (at most `limit` ids) and how many there were. */
  unrecordedInDrain(limit: number): { count: number; ids: string[] } {
    return { count: this.#unrecorded.size, ids: [...this.#unrecorded].slice(0, limit) };
  }

  /** The close: no attempt is to begin any more, so the timer that would stop them goes. */
  close(): void {
    clearTimeout(this.#beginByTimer);
  }
}
