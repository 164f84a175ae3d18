import { inTrace } from '../../trace-context.ts';
import type { Clock, Timer } from '../clock.ts';
import type { Scheduler } from '../scheduler.ts';
import { OUTBOX_TRACES, type OutboxEvent } from './model.ts';
import type { FluxPayStore } from './ports.ts';

/**
 * The outbox relay (document 002's "Polling Publisher"): it reads the outbox's pending events in
 * the order they were written, hands each to the publishers (the webhook subscribers), and marks
 * it published only once every publisher has taken it. So an event is never lost (a relay that
 * stops or fails between publishing and marking publishes that event again on its next run: at
 * least once, with the same eventId) and is first published only after every earlier one, within
 * an aggregate or across them (events are published one after another, a batch of them marked
 * together, and the next batch read only once they are; one whose mark failed is published again
 * on the next run, after the later ones of its batch).
 *
 * It runs when a change is written (`kick`) and as due work (`fluxpay.outbox`) on the injected
 * clock: after a failed publication it retries with a growing delay, so nothing waits for a kick
 * that will not come. When the retry job cannot be written either (the store that keeps due work is
 * away, as Redis can be), the retry is a timer of this process instead. A store that cannot be
 * read is reported once, not at every retry of the same outage.
 *
 * With an outbox shared by several processes (`pollMs` > 0, Redis), it also polls: a process
 * killed after writing a change but before its relay ran, or while its relay was between
 * publishing an event and marking it, leaves the event pending, and no kick of that process will
 * come; the other processes' polls publish it (at least once, with the same eventId). Relays of
 * several processes may publish one event at once: the delivery log sends it once per URL, and
 * only the relay whose mark changed it counts it as published (`onPublished`).
 * @see issue 11 "Transactional outbox and outbound events", issue 14 "kill -9"
 */

export const OUTBOX_JOB = 'fluxpay.outbox';
const JOB_KEY = 'relay';
/** Events read at once. */
const BATCH = 256;
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 30_000;

/**
 * What the events read together share while they are published: `once` reads something (the
 * webhook subscriptions) once for the batch, not once per event. Read after the batch, it sees every
 * change made before any of its events was written.
 */
export interface OutboxBatch {
  once<T>(key: string, read: () => Promise<T>): Promise<T>;
}

export type Publisher = (event: OutboxEvent, batch: OutboxBatch) => Promise<void>;

function outboxBatch(): OutboxBatch {
  const reads = new Map<string, Promise<unknown>>();
  return {
    once<T>(key: string, read: () => Promise<T>): Promise<T> {
      let done = reads.get(key) as Promise<T> | undefined;
      if (done === undefined) reads.set(key, (done = read()));
      return done;
    },
  };
}

export interface OutboxRelayDeps {
  store: FluxPayStore;
  scheduler: Scheduler;
  clock: Clock;
  /** Told about a publication that failed (it will be retried). */
  onError: (error: unknown, event: OutboxEvent | undefined) => void;
  /** Told about each event this relay marked published (not one another relay marked first). */
  onPublished?: (event: OutboxEvent, publishedAt: number) => void;
  /** How often to look for pending events written by other processes (0 or unset: never; an outbox of this process alone needs none). */
  pollMs?: number | undefined;
}

export class OutboxRelay {
  readonly #deps: OutboxRelayDeps;
  readonly #publishers: Publisher[] = [];
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #failures = 0;
  /**
   * Until when (on the clock) a failed publication waits for its retry: kicks and polls leave it to
   * the retry until then, and run again after, whoever ran the retry (on a shared store the retry
   * job may be another replica's to run: waiting for a run here to succeed waited for good).
   */
  #retryAt = 0;
  /** The retry of this process, when the scheduler could not take the retry job. */
  #retryTimer: Timer | undefined;
  /** Whether the last read of the outbox failed: the reads that fail after it are not reported again (one report per outage). */
  #readFailing = false;
  #pollTimer: Timer | undefined;

  constructor(deps: OutboxRelayDeps, options: { registerJob?: boolean } = {}) {
    this.#deps = deps;
    // The retry job starts the relay and ends: a run lasts as long as writes keep coming, and the
    // scheduler's batch (decisions, expiries, retries; and the booking routes that wait for it)
    // would wait for it, past the lease too (a review: a booking list waited 4.8 s, and jobs of
    // the batch ran again on other replicas). The relay reports and retries its own failures.
    if (options.registerJob !== false) {
      deps.scheduler.register(OUTBOX_JOB, () => {
        void this.run();
      });
    }
  }

  /** Adds a publisher; every pending event goes to each, in order. */
  addPublisher(publisher: Publisher): void {
    this.#publishers.push(publisher);
  }

  /**
   * Something was written: run soon (now, or after the run in progress); not while a failed
   * publication waits for its retry, which publishes what was written meanwhile too (a kick per
   * write retried it at once, and reported each failure: a line per write under load).
   */
  kick(): void {
    if (this.#stopped || this.#deps.clock.now() < this.#retryAt) return;
    void this.run();
  }

  /** Starts polling (with `pollMs`), after a first run. */
  start(): void {
    this.kick();
    this.#armPoll();
  }

  /** The next poll, one interval after the previous one's run ended. */
  #armPoll(): void {
    const { pollMs, clock } = this.#deps;
    if (pollMs === undefined || pollMs <= 0 || this.#stopped) return;
    this.#pollTimer = clock.schedule(pollMs, () => {
      this.#pollTimer = undefined;
      // Not while a failed publication waits for its retry (scheduled with a growing delay): the
      // poll would retry it every interval, and report every failure.
      if (clock.now() < this.#retryAt) {
        this.#armPoll();
        return undefined;
      }
      // Returned for a manual clock to wait on (runs never reject).
      return this.run()
        .catch(() => undefined)
        .then(() => this.#armPoll());
    });
  }

  /** Publishes every pending event, in order; concurrent calls share one run (and one more after it). */
  run(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    const running = this.#loop();
    this.#running = running;
    return running;
  }

  /** Stops after the event in progress; what is pending stays pending for the next relay. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#retryTimer?.cancel();
    this.#retryTimer = undefined;
    this.#pollTimer?.cancel();
    this.#pollTimer = undefined;
    await this.#running;
  }

  /** Whether a run is in progress (read-only; for tests that wait for the relay to settle). */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Resolves when a run in progress has ended (for tests and the shutdown drain). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #loop(): Promise<void> {
    // Yields first, so `#running` is set before anything below can end the run.
    await Promise.resolve();
    try {
      let published: boolean;
      do {
        this.#again = false;
        published = await this.#publishAll();
        // The last check of `#again` and the end of the run (the finally) are one synchronous step:
        // a kick that came while the run was ending (it only set `#again`) runs it again, and one
        // after it starts a new run. (Checked inside `#publishAll`, the await back to here left a
        // gap in which a kick was lost, and its event stayed pending until the next write.)
      } while (published && this.#again && !this.#stopped);
    } finally {
      this.#running = undefined;
    }
  }

  /** Publishes until nothing is pending; false when it stopped early (stopped, or a failure: retried later). */
  async #publishAll(): Promise<boolean> {
    const { store, clock, onError, onPublished } = this.#deps;
    for (;;) {
      if (this.#stopped) return false;
      let batch: OutboxEvent[];
      try {
        batch = await store.pendingOutbox(BATCH);
        this.#readFailing = false;
      } catch (error) {
        if (!this.#readFailing) onError(error, undefined);
        this.#readFailing = true;
        await this.#retryLater();
        return false;
      }
      if (batch.length === 0) {
        // Nothing left to publish: an earlier failure (a read while the store was away) no longer holds the poll back.
        this.#failures = 0;
        return true;
      }
      // Each event is published in order, and those published are marked together once the batch
      // (or the run) ends: one round trip on Redis for the batch's marks, whose calls go out in one
      // write, and the webhook subscriptions read once for the batch. Before 2026-12-07 each event
      // waited for its own mark and its own read of the subscriptions, two round trips: on Redis the
      // relay published about 330 events a second under bench-fluxpay's 1,000 flows a second (2 events
      // each), and fell further behind for as long as the load lasted.
      const shared = outboxBatch();
      const published: OutboxEvent[] = [];
      let failed: { error: unknown; event: OutboxEvent } | undefined;
      for (const event of batch) {
        if (this.#stopped) break;
        try {
          // In the trace of the request that wrote it, or none: not that of whatever started this run.
          const traceparent = OUTBOX_TRACES.get(event.eventId);
          for (const publish of this.#publishers) await inTrace(traceparent, () => publish(event, shared));
          OUTBOX_TRACES.forget(event.eventId);
          published.push(event);
        } catch (error) {
          failed = { error, event };
          break;
        }
      }
      // Those published before a failure or a stop are marked too: only the failed one is published again.
      const now = clock.now();
      const marks = await Promise.allSettled(published.map((event) => store.markPublished([event.eventId], now)));
      marks.forEach((mark, i) => {
        // 0: another process's relay published it meanwhile, and counted it.
        if (mark.status === 'fulfilled' && mark.value > 0) onPublished?.(published[i] as OutboxEvent, now);
        else if (mark.status === 'rejected') failed ??= { error: mark.reason, event: published[i] as OutboxEvent };
      });
      if (failed !== undefined) {
        onError(failed.error, failed.event);
        await this.#retryLater();
        return false;
      }
      if (this.#stopped) return false;
      this.#failures = 0;
    }
  }

  async #retryLater(): Promise<void> {
    this.#failures++;
    const { scheduler, clock } = this.#deps;
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(this.#failures - 1, 20));
    this.#retryAt = clock.now() + delay;
    try {
      await scheduler.schedule(OUTBOX_JOB, JOB_KEY, clock.now() + delay);
    } catch {
      // Not reported: the failure that brought the relay here was (the store away fails both).
      if (this.#stopped) return;
      this.#retryTimer?.cancel();
      this.#retryTimer = clock.schedule(delay, () => {
        this.#retryTimer = undefined;
        void this.run();
      });
    }
  }
}
