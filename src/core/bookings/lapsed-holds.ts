import type { Clock } from '../clock.ts';
import type { SeatStore } from '../ports.ts';
import type { Scheduler } from '../scheduler.ts';
import type { SeatView } from '../seats.ts';

/**
 * The looks for a performance's lapsed seat holds that bookings and the seat reads make instead of
 * waiting for the expiry jobs (`BookingService.freeLapsedHolds`): what is shared between calls and
 * what is skipped. Calls for one performance share looks: one under way, and one queued behind it
 * for the calls that came after it started (a look sees the holds lapsed by its start only: a user
 * test, a joiner's own lapsed holds left locked). A call without a seat map of its own before the
 * earliest hold's end the last look saw (at most LOOK_AGAIN_MS on) reads nothing. Each lapsed hold
 * is freed by `free`, the booking service's (true when its seats are free now). Process-local.
 */

/** Lapsed holds of one performance freed at once (each a few store calls). */
const FREE_BATCH = 32;
/**
 * The longest a look for lapsed holds of a performance is skipped after one found the earliest
 * hold's end further off: another replica's holds (its own SEAT_HOLD_MS, its clock) are seen within it.
 */
const LOOK_AGAIN_MS = 1000;

export interface LapsedHoldsDeps {
  clock: Clock;
  seats: SeatStore;
  scheduler: Scheduler;
  config: { seatHoldMs: number };
  /** Frees one lapsed hold (its booking's id) as of `now`: true when its seats are free now. */
  free: (bookingId: string, now: number) => Promise<boolean>;
}

export class LapsedHolds {
  readonly #deps: LapsedHoldsDeps;
  /** Per performance, the look for lapsed holds under way. */
  readonly #looking = new Map<string, Promise<boolean>>();
  /** Per performance, the look queued behind it, shared by every caller that came after it started. */
  readonly #nextLook = new Map<string, Promise<boolean>>();
  /**
   * Per performance, as of the last look: from its start until `until` no hold of it can lapse
   * that a look could free (a clock set back before `from` looks again).
   */
  readonly #quiet = new Map<string, { from: number; until: number }>();

  constructor(deps: LapsedHoldsDeps) {
    this.#deps = deps;
  }

  /** `BookingService.freeLapsedHolds`. */
  async free(performanceId: string, seatsRead?: readonly SeatView[]): Promise<boolean> {
    const now = this.#deps.clock.now();
    if (seatsRead === undefined && this.#isQuiet(performanceId, now)) return false;
    const stale = seatsRead?.some((seat) => seat.status === 'locked' && seat.lockedUntil !== null && seat.lockedUntil <= now) ?? false;
    return (await this.#queueLook(performanceId, seatsRead)) || stale;
  }

  /** A look for lapsed holds that starts now, or once the one under way has ended (shared by every caller meanwhile). */
  #queueLook(performanceId: string, seatsRead: readonly SeatView[] | undefined): Promise<boolean> {
    const under = this.#looking.get(performanceId);
    if (under === undefined) {
      const look = this.#look(performanceId, seatsRead).finally(() => this.#looking.delete(performanceId));
      this.#looking.set(performanceId, look);
      return look;
    }
    let next = this.#nextLook.get(performanceId);
    if (next === undefined) {
      // What the look under way changed is news to its joiners too (a review: a catalog read made
      // while it freed holds answered the counts read before); one that failed, maybe some.
      next = under.then(
        (changed) => changed,
        () => true,
      ).then(async (underChanged) => {
        this.#nextLook.delete(performanceId);
        // Nothing can have lapsed since the look before started (it found none lapsed, and the
        // earliest hold ends later): no second read.
        if (this.#isQuiet(performanceId, this.#deps.clock.now())) return underChanged;
        return (await this.#queueLook(performanceId, undefined)) || underChanged;
      });
      this.#nextLook.set(performanceId, next);
    }
    return next;
  }

  async #look(performanceId: string, seatsRead: readonly SeatView[] | undefined): Promise<boolean> {
    const { seats, clock, scheduler, config, free } = this.#deps;
    const now = clock.now();
    const map = seatsRead ?? (await seats.seatsOf(performanceId)) ?? [];
    const lapsed = new Set<string>();
    // A hold made after this look ends SEAT_HOLD_MS after it at the earliest.
    let quietUntil = now + Math.min(config.seatHoldMs, LOOK_AGAIN_MS);
    for (const seat of map) {
      if (seat.status !== 'locked' || seat.bookingId === null || seat.lockedUntil === null) continue;
      if (seat.lockedUntil <= now) lapsed.add(seat.bookingId);
      else quietUntil = Math.min(quietUntil, seat.lockedUntil);
    }
    let changed = false;
    if (lapsed.size > 0) {
      scheduler.refuseWhenQuiesced();
      const ids = [...lapsed];
      for (let i = 0; i < ids.length; i += FREE_BATCH) {
        const results = await Promise.all(ids.slice(i, i + FREE_BATCH).map((id) => free(id, now)));
        changed ||= results.includes(true);
      }
    }
    // Each lapsed hold freed, or kept (a payment in flight, which ends it: a review, kept holds had
    // every catalog read read the map while they lasted); looked at again by LOOK_AGAIN_MS at the latest.
    this.#quiet.set(performanceId, { from: now, until: quietUntil });
    return changed;
  }

  #isQuiet(performanceId: string, now: number): boolean {
    const quiet = this.#quiet.get(performanceId);
    return quiet !== undefined && quiet.from <= now && now < quiet.until;
  }
}
