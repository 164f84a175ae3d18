import type { Clock } from '../clock.ts';
import { DomainError, notFound, StoreUnavailableError, storeFull, validationFailed } from '../errors.ts';
import { timeOfId, type IdFactory } from '../ids.ts';
import type { BookingStore, LedgerStore, Page, PageQuery, SeatStore } from '../ports.ts';
import type { Scheduler } from '../scheduler.ts';
import type { SeatCounts, SeatView } from '../seats.ts';
import { isUnpaid, MAX_QUANTITY, type Booking, type BookingCounts, type InboxEvent } from './booking.ts';
import type { Catalog, Performance } from './performances.ts';
import { PROCESS_JOB } from './inbox.ts';
import { LapsedHolds } from './lapsed-holds.ts';
import { EXPIRE_JOB, type Settlement } from './settlement.ts';

/**
 * Bookings: seat holds, cancellation, expiry, queries and bounds. Paying is `payments.ts`;
 * applying payment results is `inbox.ts`.
 *
 * Expiry is due work: each booking schedules an `booking.expire` job at the end of its hold. A
 * booking whose payment is in flight or decided is kept (its payment ends it), so a hold that
 * lapses while a payment is being processed never loses that payment. Reads expire a lapsed
 * booking on the spot too, so what a client sees never depends on when the job ran.
 *
 * Bounded like the intent store: finished bookings older than the TTL, or beyond the maximum, are
 * evicted oldest first with their inbox events, and their ledger transactions go with them.
 * Pending bookings are never evicted: each holds at least one seat.
 * @see issue 4, issue 7, ../../../../shared/seeds/003_2d28ecb358825d26.txt
 */

export { EXPIRE_JOB };
/** Evicted bookings whose ledger removal was cut off, taken up per sweep. */
const FORGET_BATCH = 500;

export interface BookingConfig {
  /** How long booked seats stay held for payment (SEAT_HOLD_MS, default 600000). */
  seatHoldMs: number;
  /** Delay between a payment result and its processing (EVENT_PROCESSING_DELAY_MS, default 50). */
  eventProcessingDelayMs: number;
  /** Payment processing delay bounds (MOCK_MIN_DELAY_MS / MOCK_MAX_DELAY_MS, 500 / 1500; both 0: none). */
  mockMinDelayMs: number;
  mockMaxDelayMs: number;
}

export interface BookingServiceDeps {
  clock: Clock;
  ids: IdFactory;
  bookings: BookingStore;
  seats: SeatStore;
  ledger: LedgerStore;
  scheduler: Scheduler;
  settlement: Settlement;
  catalog: Catalog;
  config: BookingConfig;
  /** A cancel ended a payment in flight past its `lostAfter` (its process gone) before cancelling: for a warning. */
  onCancelTookOver?: ((event: { bookingId: string }) => void) | undefined;
}

export interface BookInput {
  userId: string;
  performanceId: string;
  quantity: number;
  paymentMethod: string;
  webhookUrl?: string | undefined;
  /** The booking's id: one from `newBookingId`, else a new one. */
  id?: string | undefined;
}

export interface CancelInput {
  userId: string;
  bookingId: string;
}

export class BookingService {
  readonly #deps: BookingServiceDeps;
  readonly #lapsedHolds: LapsedHolds;

  constructor(deps: BookingServiceDeps) {
    this.#deps = deps;
    this.#lapsedHolds = new LapsedHolds({ ...deps, free: (id, now) => this.#freeLapsed(id, now) });
    deps.scheduler.register(EXPIRE_JOB, async (id) => {
      await this.#expireJob(id);
    });
  }

  performances(): Performance[] {
    return this.#deps.catalog.all();
  }

  performance(id: string): Performance {
    const performance = this.#deps.catalog.find(id);
    if (performance === undefined) throw notFound('Performance', id);
    return performance;
  }

  /**
   * Creates a pending booking holding `quantity` seats until now + seatHoldMs.
   * VALIDATION_FAILED for a quantity outside 1–10; NOT_FOUND for an unknown performance; SOLD_OUT
   * when not enough seats are left; STORE_FULL when the bound is reached and nothing can go.
   * Lapsed holds count as free: when the seats asked for are not free, the performance's lapsed
   * holds are freed (`freeLapsedHolds`) and the hold is tried once more. Only then, and only
   * those: before 2026-12-06 every booking waited for a whole run of due work first, and until
   * 2026-12-06 a sold-out one did, decisions and deliveries of others included (seconds under a
   * slow Redis, and part of every booking's latency under load).
   */
  async book(input: BookInput): Promise<Booking> {
    const { clock, ids, seats, bookings, scheduler, settlement, config } = this.#deps;
    if (!Number.isSafeInteger(input.quantity) || input.quantity < 1 || input.quantity > MAX_QUANTITY) {
      throw validationFailed([{ in: 'body', field: '/quantity', rule: 'range', message: `must be a whole number from 1 to ${MAX_QUANTITY}` }]);
    }
    const performance = this.performance(input.performanceId);
    let now = clock.now();
    const id = input.id ?? ids('bk');
    let expiresAt = now + config.seatHoldMs;
    // The expiry is scheduled before the hold, so seats are never held without a job to free them,
    // even when the process stops (or the store goes away) before the booking is written.
    await scheduler.schedule(EXPIRE_JOB, id, expiresAt);
    let hold = await seats.hold(performance.id, input.quantity, id, expiresAt);
    if (hold.kind === 'sold_out') {
      // Refused (the store away, or the process closing): nothing held, nothing left due.
      await this.freeLapsedHolds(performance.id).catch(async (error: unknown) => {
        await scheduler.cancel(EXPIRE_JOB, id).catch(() => undefined);
        throw error;
      });
      // Tried again whatever this call freed: holds freed since the first try, by another request or
      // their jobs, count as free too (a review: 19 of 20 concurrent bookings told SOLD_OUT).
      // Timed from now: freeing may have taken seconds (a slow Redis), even a whole hold, whose job
      // another replica may have run and found no booking for (a review: answered already lapsed, its seats held a lease on).
      now = clock.now();
      // So slow that another replica may have run the expiry job it scheduled first, found no
      // booking a lease after the hold that job was for, and be about to free whatever this id
      // holds (#expireJob times that from the id): no hold under this id now (a review: a seat sold twice).
      if (now >= (timeOfId(id) ?? 0) + config.seatHoldMs + scheduler.leaseMs / 2) {
        await scheduler.cancel(EXPIRE_JOB, id).catch(() => undefined);
        throw new StoreUnavailableError();
      }
      expiresAt = now + config.seatHoldMs;
      await scheduler.schedule(EXPIRE_JOB, id, expiresAt);
      hold = await seats.hold(performance.id, input.quantity, id, expiresAt);
    }
    if (hold.kind !== 'held') {
      // Tidiness only: a job left behind finds no booking and nothing held for it, and does nothing.
      await scheduler.cancel(EXPIRE_JOB, id).catch(() => undefined);
      if (hold.kind === 'sold_out') {
        throw new DomainError('SOLD_OUT', `${performance.id} has ${hold.available} seat${hold.available === 1 ? '' : 's'} left; ${input.quantity} requested.`);
      }
      throw notFound('Performance', performance.id);
    }
    const booking: Booking = {
      id,
      userId: input.userId,
      performanceId: performance.id,
      quantity: input.quantity,
      seatIds: hold.seatIds,
      totalAmount: performance.priceMinor * input.quantity,
      currency: performance.currency,
      status: 'pending',
      paymentMethod: input.paymentMethod,
      webhookUrl: input.webhookUrl ?? null,
      createdAt: now,
      expiresAt,
      paymentIntent: { status: 'PENDING', pgMockData: null },
      paymentInFlight: null,
      settledAt: null,
    };
    const inserted = await bookings.insert(booking);
    if (!inserted.ok) {
      await seats.release(id);
      await scheduler.cancel(EXPIRE_JOB, id);
      throw storeFull('bookings');
    }
    // Best effort: what an eviction leaves is kept to forget, and the next sweep removes it.
    await this.#forgetLedger(inserted.evicted).catch(() => undefined);
    settlement.created(booking);
    return booking;
  }

  /**
   * Frees the seats of `performanceId` whose holds have lapsed, as their expiry jobs would and
   * without waiting for them: each such booking expired now (`booking.expired`; one with a
   * payment in flight keeps its seats, its payment ends it), and a hold whose booking was never
   * written freed a lease after its end. `seatsRead`: the performance's seat map as just read.
   * True when `seatsRead` is out of date (it shows a lapsed hold, or a seat was freed since):
   * read it again. Nothing else runs: a booking that finds too few seats free and the seat reads
   * wait for this performance's lapsed holds only; calls share looks, and skip those that could
   * find nothing (`LapsedHolds`). With lapsed holds once the scheduler of a shared store is
   * quiesced (the close), a ShuttingDownError, as a run refuses.
   */
  freeLapsedHolds(performanceId: string, seatsRead?: readonly SeatView[]): Promise<boolean> {
    return this.#lapsedHolds.free(performanceId, seatsRead);
  }

  /** One lapsed hold of `freeLapsedHolds`: true when its seats are free now (freed here, or its booking settled meanwhile). */
  async #freeLapsed(id: string, now: number): Promise<boolean> {
    if ((await this.#expireIfDue(id)) !== undefined) return true;
    const booking = await this.#deps.bookings.get(id);
    if (booking !== undefined) {
      // Paid, or a payment in flight: kept, its payment ends it.
      if (booking.status === 'pending') return false;
      // Settled by another request or its job since the map was read, which may still be telling
      // its event before it frees the seats (a user test: a booking told SOLD_OUT, a map showing
      // them locked, just as holds lapsed): freed here too (releasing is idempotent; the event stays
      // with its settlement). A confirmed booking's seats are sold.
      if (booking.status !== 'confirmed') await this.#deps.seats.release(id);
      return true;
    }
    if (now < this.#unwrittenSettledAt(id)) return false;
    return (await this.#deps.seats.releaseHeld(id)).length > 0;
  }

  /** When no insert of booking `id` (never found written) can still be under way: a lease after its hold's end. */
  #unwrittenSettledAt(id: string): number {
    return (timeOfId(id) ?? 0) + this.#deps.config.seatHoldMs + this.#deps.scheduler.leaseMs;
  }

  /**
   * Cancels the caller's pending booking and releases its seats; `booking.cancelled`.
   * NOT_FOUND, FORBIDDEN (another user's), BOOKING_EXPIRED, PAYMENT_ALREADY_PROCESSED (confirmed,
   * failed, paid or a payment in flight), INVALID_STATE (already cancelled).
   *
   * A payment in flight for longer than its delay and a lease (its replica killed or stalled
   * during the delay: `BookingStore.beginPayment`'s `lostAfter`) is ended and the booking
   * cancelled, as a payment begun then would take its place; past the hold's end the booking
   * expires instead (BOOKING_EXPIRED), as it would for that payment. Before 2026-12-06 the cancel was
   * refused as in progress until the hold's backstop ended that payment (the hold and a lease).
   *
   * With a store shared by several processes, the booking's expiry job is brought forward to a
   * lease from now first (when its hold ends later): the backstop of the cancel's event (`Settlement.finish`).
   */
  async cancel(input: CancelInput): Promise<Booking> {
    const { bookings, scheduler, settlement, clock } = this.#deps;
    const found = await this.#owned(input.bookingId, input.userId);
    if (found.status === 'cancelled') throw new DomainError('INVALID_STATE', `Booking ${found.id} is already cancelled.`);
    const current = (await this.#expireIfDue(found.id)) ?? found;
    if (current.status === 'expired') throw expiredError(current);
    const now = clock.now();
    // A payment in flight too: it may be a lost one, which this cancel ends (if not, the job brought
    // forward finds it in flight and looks again when its backstop is due, as before).
    const mayCancel = isUnpaid(current) || (current.status === 'pending' && current.paymentInFlight !== null);
    if (scheduler.shared && mayCancel && now + scheduler.leaseMs < current.expiresAt) await scheduler.schedule(EXPIRE_JOB, current.id, now + scheduler.leaseMs);
    const result = await bookings.transition(current.id, ['pending'], 'cancelled', now, { unpaid: true });
    if (result.tookOver === true) this.#deps.onCancelTookOver?.({ bookingId: current.id });
    if (!result.ok) {
      if (result.current === undefined) throw notFound('Booking', current.id);
      // Expired by this very step (its hold lapsed while a lost payment kept it): finished as any expiry (`booking.expired`, its seats).
      if (result.expiredNow === true) await settlement.finish(result.current);
      if (result.current.status === 'expired') throw expiredError(result.current);
      if (result.current.status === 'cancelled') throw new DomainError('INVALID_STATE', `Booking ${current.id} is already cancelled.`);
      throw alreadyProcessed(result.current);
    }
    await settlement.finish(result.record);
    return result.record;
  }

  /** Expires one booking if it is still pending, unpaid and its hold has lapsed (the expiry job does this, and more: `#expireJob`). */
  async expire(id: string): Promise<Booking | undefined> {
    return this.#expireIfDue(id);
  }

  /**
   * The `booking.expire` job, due when the booking's hold ends. It expires the booking if it is
   * due, and otherwise finishes what a process stopped (or a store gone) between two calls left,
   * looking again later until the booking is settled, so that no seat stays locked for good and no
   * paid booking stays pending:
   * - no booking: its process stopped between the hold and the insert (or the insert failed).
   *   Once no insert can still be under way (a lease after the hold's end), the seats locked for
   *   it are freed; locked ones only, so the sold seats of a confirmed booking evicted since stay sold.
   * - confirmed, expired, failed or cancelled: what follows is done again (`Settlement.finish`:
   *   its event made again when the store is shared, its seats freed again, as releasing is idempotent).
   * - pending and unpaid before its hold ends (the job run early, to repair a payment): looked at again then.
   * - a payment in flight: looked at again once the longest processing delay and a lease have
   *   passed since the hold's end (a payment starts only within the hold); still in flight then,
   *   its process has stopped: the payment is ended without a result, and the booking looked at again.
   * - paid with an inbox event not processed: the inbox settles it; looked at again a lease after
   *   the event was due, when an event still unprocessed has its processing scheduled anew (its
   *   job may have been given up), and then at intervals that double.
   * - paid, still pending, with no inbox event left to process (a one-step payment cut off before
   *   its settlement): settled now, as the payment would have.
   * Looking again is the job scheduled anew from within its run (a new claim, which the run's end
   * leaves alone).
   */
  async #expireJob(id: string): Promise<void> {
    const { bookings, seats, scheduler, clock, settlement, config } = this.#deps;
    if ((await this.#expireIfDue(id)) !== undefined) return;
    const booking = await bookings.get(id);
    const now = clock.now();
    const lookAgainAt = (at: number): Promise<void> => scheduler.schedule(EXPIRE_JOB, id, Math.max(at, now));
    if (booking === undefined) {
      const settledAt = this.#unwrittenSettledAt(id);
      if (now < settledAt) await lookAgainAt(settledAt);
      else await seats.releaseHeld(id);
      return;
    }
    if (booking.status !== 'pending') return settlement.finish(booking, true);
    if (booking.paymentInFlight !== null) {
      const abandonedAt = booking.expiresAt + config.mockMaxDelayMs + scheduler.leaseMs;
      if (now < abandonedAt) return lookAgainAt(abandonedAt);
      await bookings.abortPayment(id);
      // Expired now; or recorded just before the abort (then its settlement is looked at, below).
      return this.#expireJob(id);
    }
    if (booking.paymentIntent.status === 'PENDING') {
      if (now < booking.expiresAt) await lookAgainAt(booking.expiresAt);
      return;
    }
    const unprocessed = (await bookings.events(id)).filter((event) => event.processedAt === null);
    if (unprocessed.length > 0) {
      const overdueAt = Math.max(...unprocessed.map((event) => event.createdAt)) + config.eventProcessingDelayMs + scheduler.leaseMs;
      if (now < overdueAt) return lookAgainAt(overdueAt);
      for (const event of unprocessed) await scheduler.schedule(PROCESS_JOB, event.eventId, now);
      // Again a lease later, and then at intervals that double (as long as the event has waited),
      // so an event whose processing keeps failing costs a run now and then, not one every lease.
      return lookAgainAt(now + Math.max(scheduler.leaseMs, now - overdueAt));
    }
    if (booking.paymentIntent.status === 'SUCCESS') await settlement.confirm(booking);
    else await settlement.fail(booking);
  }

  /** A new booking id (a keyed create notes it on its Idempotency-Key before the write). */
  newBookingId(): string {
    return this.#deps.ids('bk');
  }

  /** One booking (expired first if its hold has lapsed), if it is stored. */
  async find(id: string): Promise<Booking | undefined> {
    const booking = await this.#deps.bookings.get(id);
    return booking === undefined ? undefined : ((await this.#lazilyExpired(booking)) ?? booking);
  }

  /** One booking (expired first if its hold has lapsed); NOT_FOUND when unknown. */
  async get(id: string): Promise<Booking> {
    const booking = await this.find(id);
    if (booking === undefined) throw notFound('Booking', id);
    return booking;
  }

  /** A page of a user's bookings, newest first (lapsed holds expired first). */
  async listForUser(userId: string, page: PageQuery): Promise<Page<Booking>> {
    return this.#expiredInPage(await this.#deps.bookings.listForUser(userId, page));
  }

  /** Every booking, newest first (the console's list). */
  async listRecent(page: PageQuery): Promise<Page<Booking>> {
    return this.#expiredInPage(await this.#deps.bookings.listRecent(page));
  }

  /** A page with each lapsed hold expired as it is read (as `get` does). */
  async #expiredInPage(result: Page<Booking>): Promise<Page<Booking>> {
    const data: Booking[] = [];
    for (const booking of result.data) data.push((await this.#lazilyExpired(booking)) ?? booking);
    return { data, nextCursor: result.nextCursor };
  }

  /** Inbox events of one booking, in the order written. */
  events(bookingId: string): Promise<InboxEvent[]> {
    return this.#deps.bookings.events(bookingId);
  }

  async counts(): Promise<BookingCounts & { seats: SeatCounts }> {
    const counts = await this.#deps.bookings.counts();
    const seats = (await this.#deps.seats.counts()) as SeatCounts;
    return { ...counts, seats };
  }

  /**
   * Evicts finished bookings past their TTL, and their ledger transactions, with those of bookings
   * evicted before whose removal was cut off (a process stopped, the ledger away); returns how many went.
   */
  async sweep(now: number): Promise<number> {
    const evicted = await this.#deps.bookings.sweep(now);
    await this.#forgetLedger(evicted);
    await this.#forgetLedger(await this.#deps.bookings.toForget(FORGET_BATCH));
    return evicted.length;
  }

  /**
   * Removes evicted bookings' ledger transactions and their seats' entries (the seats stay as they
   * are: sold ones sold), then takes them off the store's list of those to forget.
   */
  async #forgetLedger(bookingIds: readonly string[]): Promise<void> {
    if (bookingIds.length === 0) return;
    for (const id of bookingIds) {
      await this.#deps.ledger.removeReference(id);
      await this.#deps.seats.forget(id);
    }
    await this.#deps.bookings.forgotten(bookingIds);
  }

  /** The caller's booking; NOT_FOUND when unknown, FORBIDDEN when another user's. */
  async #owned(bookingId: string, userId: string): Promise<Booking> {
    const booking = await this.#deps.bookings.get(bookingId);
    if (booking === undefined) throw notFound('Booking', bookingId);
    if (booking.userId !== userId) throw new DomainError('FORBIDDEN', `Booking ${bookingId} belongs to another user.`);
    return booking;
  }

  /** A booking read as still pending with its hold passed is expired now; the expired booking, else undefined. */
  #lazilyExpired(booking: Booking): Promise<Booking | undefined> | undefined {
    if (booking.status !== 'pending' || booking.expiresAt > this.#deps.clock.now()) return undefined;
    return this.#expireIfDue(booking.id);
  }

  async #expireIfDue(id: string): Promise<Booking | undefined> {
    const expired = await this.#deps.bookings.expireIfDue(id, this.#deps.clock.now());
    if (expired === undefined) return undefined;
    await this.#deps.settlement.finish(expired);
    return expired;
  }
}

export function expiredError(booking: Booking): DomainError {
  return new DomainError('BOOKING_EXPIRED', `Booking ${booking.id} expired at ${new Date(booking.expiresAt).toISOString()}.`);
}

export function alreadyProcessed(booking: Booking): DomainError {
  const message =
    booking.paymentInFlight !== null
      ? `A payment for booking ${booking.id} is already in progress.`
      : booking.status === 'pending'
        ? `The payment for booking ${booking.id} has already been processed (${booking.paymentIntent.status}).`
        : `Booking ${booking.id} is ${booking.status}; only a pending, unpaid booking can be paid or cancelled.`;
  // In progress: the payment in flight settles it soon, so a retry with the same Idempotency-Key must run again.
  return new DomainError('PAYMENT_ALREADY_PROCESSED', message, undefined, { transient: booking.paymentInFlight !== null });
}
