import type { FastifyBaseLogger } from 'fastify';
import type { Clock, Timer } from '../core/clock.ts';
import { isStoreUnavailable } from '../core/errors.ts';

/** The first retry of a settle the store could not take; each next one waits twice as long, up to LATE_SETTLE_MAX_MS. */
export const LATE_SETTLE_FIRST_MS = 250;
/**
 * At most a second between tries: once the store is back a late write is taken within a second (a
 * keyed retry runs, a cut booking payment's retry is taken). A try while Redis is away costs next to
 * nothing (not sent: `RedisNotServingError`), and the next try of a write that ran but whose answer
 * was lost comes well within the kept reply's 10 s (`RESENT_WITHIN_MS`). 5 s before 2026-12-03.
 */
export const LATE_SETTLE_MAX_MS = 1_000;
/**
 * Settles waiting at once, at most. Only a request whose key was taken before the store went
 * away, and that ended while it was away, waits (during the outage a begin is refused, 503, and
 * takes nothing), and a booking payment's begin sent as it went (`storeCallMayHaveRun`), so they are
 * about as many as requests were in flight then.
 */
export const LATE_SETTLES_MAX = 1_000;

/** What a late write is, for its log lines: when it cannot wait, and when a try fails for another reason than the store's absence. */
export interface LateWriteKind {
  dropped: string;
  failed: string;
}

/** An Idempotency-Key's settle (the default kind). */
export const IDEMPOTENCY_SETTLE: LateWriteKind = {
  dropped: 'an Idempotency-Key the store could not settle is not tried again: too many wait; it stays begun until its TTL, or with Redis until this replica’s mark of life lapses',
  failed: 'an Idempotency-Key settle tried again failed; the key stays begun until its TTL, or with Redis until this replica’s mark of life lapses',
};

/** The end of a booking payment that the store's outage cut short (src/core/bookings/payments.ts). */
export const BOOKING_PAYMENT_ABANDON: LateWriteKind = {
  dropped: 'a booking payment that the store’s outage cut short is not ended later: too many writes wait; its booking stays in payment until its hold has passed',
  failed: 'ending a booking payment that the store’s outage cut short failed; its booking stays in payment until its hold has passed',
};

/**
 * Writes the store refused because it could not be reached (Redis away), tried again: chiefly
 * Idempotency-Key settles (a request's answer stored, or its key given back after a 5xx), and the
 * end of a booking payment an outage cut short (`BOOKING_PAYMENT_ABANDON`). Those the
 * store refused because it could not be reached (Redis away): each is tried again, 250 ms later
 * and then at doubling intervals of at most 1 s, until the store takes it or the app closes. A late
 * settle is safe: it touches only its own request's claim of the key (`IdempotencyStore`), never
 * one another request made since. Without it the key stayed begun, and the client's retry with it
 * (what a 503 asks for) was refused 409 IDEMPOTENCY_KEY_IN_USE until the key's TTL (24 h by default)
 * or its hold had passed. A settle still waiting when the app closes is dropped, as is one beyond
 * LATE_SETTLES_MAX (logged): its key stays begun until its TTL with one process, and with Redis
 * until another replica takes it once this one's mark of life has lapsed.
 */
export class LateSettles {
  readonly #clock: Clock;
  readonly #log: FastifyBaseLogger;
  readonly #timers = new Set<Timer>();
  /** Settles whose try is out (a call to the store not answered yet). */
  #trying = 0;
  #closed = false;

  constructor(clock: Clock, log: FastifyBaseLogger) {
    this.#clock = clock;
    this.#log = log;
  }

  /** Settles waiting for their next try, or for the answer to this one. */
  get pending(): number {
    return this.#timers.size + this.#trying;
  }

  /** Tries `settle` again later, until it is taken; false when it cannot wait (the app closes, or too many wait). */
  add(settle: () => Promise<void>, kind: LateWriteKind = IDEMPOTENCY_SETTLE): boolean {
    if (this.#closed) return false;
    if (this.pending >= LATE_SETTLES_MAX) {
      this.#log.warn({ waiting: this.pending }, kind.dropped);
      return false;
    }
    this.#wait(settle, LATE_SETTLE_FIRST_MS, kind);
    return true;
  }

  /** Drops every settle still waiting (the app closes); a try already out ends as it will, and is not tried again. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) timer.cancel();
    this.#timers.clear();
  }

  #wait(settle: () => Promise<void>, delayMs: number, kind: LateWriteKind): void {
    const timer = this.#clock.schedule(delayMs, () => {
      this.#timers.delete(timer);
      if (this.#closed) return;
      this.#trying++;
      return settle().then(
        () => {
          this.#trying--;
        },
        (error: unknown) => {
          this.#trying--;
          if (this.#closed) return;
          if (isStoreUnavailable(error)) this.#wait(settle, Math.min(LATE_SETTLE_MAX_MS, delayMs * 2), kind);
          else this.#log.error({ err: error }, kind.failed);
        },
      );
    });
    this.#timers.add(timer);
  }
}
