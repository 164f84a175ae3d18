import type { Clock, Timer } from '../../src/core/clock.ts';

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void | Promise<void>;
  cancelled: boolean;
}

/** Lets the work a timer started run to its end: promise chains over in-memory stores settle within one macrotask turn. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A clock that only moves when a test says so. `advance` fires every timer that falls due, in
 * due-time order, including timers scheduled by the timers it fires; after each one it lets the
 * asynchronous work the timer started settle (the scheduler's jobs run over async store ports),
 * and with `awaitWork` waits for the promise the timer returned, if any (the scheduler's run), so
 * what a timer at T schedules for T + d fires within the same `advance` when d fits.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Scheduled[] = [];

  readonly #awaitWork: boolean;

  /**
   * `awaitWork`: after each timer, also wait for the promise it returned (the scheduler's run),
   * for apps on Redis, whose runs take round trips rather than one turn of the event loop. Off by
   * default: a test may leave a job's handler hanging on purpose (a process that died mid-job),
   * and over memory one turn is enough.
   */
  constructor(start = Date.UTC(2026, 0, 15, 12, 0, 0), options: { awaitWork?: boolean } = {}) {
    this.#now = start;
    this.#awaitWork = options.awaitWork === true;
  }

  now(): number {
    return this.#now;
  }

  schedule(delayMs: number, fn: () => void | Promise<void>): Timer {
    const entry: Scheduled = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(entry);
    return { cancel: () => void (entry.cancelled = true) };
  }

  /** Timers not yet fired nor cancelled. */
  get pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /**
   * Moves the clock `ms` on, firing what falls due. `afterEach`, when given, is awaited after each
   * timer's work with the clock still at that timer's time: for work the timer set off that ends
   * in real I/O (a webhook attempt, whose failure schedules its retry from the time it ended).
   */
  async advance(ms: number, afterEach?: () => Promise<void>): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#nextDue(target);
      if (next === undefined) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = next.at;
      const work = next.fn();
      await settle();
      if (this.#awaitWork && work !== undefined) await work;
      if (afterEach !== undefined) await afterEach();
    }
    this.#now = target;
  }

  #nextDue(limit: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    for (const t of this.#timers) {
      if (t.at > limit) continue;
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
