import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { DomainError, isStoreUnavailable, notFound, storeCallMayHaveRun, validationFailed, type FieldIssue } from '../errors.ts';
import type { EventBus } from '../events.ts';
import type { IdFactory } from '../ids.ts';
import type { BookingStore, SeatStore } from '../ports.ts';
import type { RandomSource } from '../random.ts';
import type { Scheduler } from '../scheduler.ts';
import { cardIssues, cardOutcome, cvvOutcome, forcedOutcome, markApplied, type ForcedOutcome, type Outcome } from '../scenario.ts';
import { maskedToken, type Booking, type InboxEvent, type PaymentKind, type PgMockData } from './booking.ts';
import { PROCESS_JOB } from './inbox.ts';
import { alreadyProcessed, EXPIRE_JOB, expiredError, type BookingConfig } from './service.ts';
import type { Settlement } from './settlement.ts';

/**
 * Paying a booking, two ways, one per API:
 * - `executePayment` (document 003): after the processing delay the outcome is recorded on the
 *   booking's payment intent and written to the events inbox; the inbox processor applies it
 *   `eventProcessingDelayMs` later (confirm, or fail and free the seats).
 * - `confirmDirect` (document 004): after the processing delay, the booking is confirmed at once;
 *   the inbox gets an already-processed PAYMENT_SUCCEEDED event for the record.
 *
 * The call marks the payment in flight in one store operation with its guards (the caller's,
 * pending, unpaid, hold not lapsed), so of two concurrent payments exactly one proceeds, and
 * nothing may cancel or expire the booking meanwhile (short of the expiry job ending a payment
 * still in flight a lease after the longest delay past the hold: its process died). A payment in
 * flight past its `lostAfter` (its longest delay and a lease after its begin) lost its process too:
 * a new one ends it and begins in its place, and the old one, should its process wake, records
 * nothing (its result names its token). Expiry is judged when the payment is submitted: a hold that lapses
 * during the delay does not fail it.
 * @see issue 4, ../../../../shared/seeds/003_2d28ecb358825d26.txt, ../../../../shared/seeds/004_bd5a7b9162ab823c.decoded.txt
 */

export interface BookingPaymentsDeps {
  clock: Clock;
  random: RandomSource;
  ids: IdFactory;
  bus: EventBus;
  bookings: BookingStore;
  seats: SeatStore;
  scheduler: Scheduler;
  settlement: Settlement;
  config: BookingConfig;
  /**
   * Tries a write the store could not take (it is unavailable) again later, until it can (the
   * app's `LateSettles`); false when it cannot wait. Unset: such a write is not tried again.
   */
  retryWhenStoreIsBack?: ((write: () => Promise<void>) => boolean) | undefined;
  /**
   * Told when a payment's begin ended another payment in flight that had lost its replica (past its
   * `lostAfter`), and when this process's payment, woken late, finds another begun in its place: a
   * log line each. Unset: not told.
   */
  onTakeOver?: ((event: { bookingId: string; side: 'took_over' | 'taken_over' }) => void) | undefined;
}

export interface ExecutePaymentInput {
  userId: string;
  bookingId: string;
  paymentMethodToken: string;
  cvv: string;
  /** A fault rule's `outcome` (issue 15): decides the payment whatever the token and CVV say (they are still checked). */
  forced?: ForcedOutcome | undefined;
}

export interface ExecutePaymentResult {
  finalStatus: 'SUCCESS' | 'FAILURE';
  bookingId: string;
  pgMockData: PgMockData;
}

export interface ConfirmDirectInput {
  userId: string;
  bookingId: string;
  paymentMethod: string;
}

/** Test-card tokens (Stripe's names) and what they do; `null` means "the CVV rule decides". */
const TEST_TOKENS: ReadonlyMap<string, Outcome | null> = new Map<string, Outcome | null>([
  ['tok_visa', null],
  ['tok_mastercard', null],
  ['tok_chargeDeclined', { status: 'FAILED', failureCode: 'card_declined' }],
  ['tok_chargeDeclinedInsufficientFunds', { status: 'FAILED', failureCode: 'insufficient_funds' }],
]);

/** A token made of digits (spaces and dashes allowed between them), at least 8 digits: a card number. */
const CARD_NUMBER_TOKEN = /^\d[\d -]*\d$/;

export class BookingPayments {
  readonly #deps: BookingPaymentsDeps;
  #inFlight = 0;

  constructor(deps: BookingPaymentsDeps) {
    this.#deps = deps;
  }

  /** Payments of this process between their call and the end of their delay. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Simulates the card payment of a pending booking (document 003). Resolves after the processing
   * delay with the gateway's answer; the booking itself changes when the processor applies the
   * inbox event. Rejects with VALIDATION_FAILED (a bad CVV or card number), NOT_FOUND, FORBIDDEN
   * (another user's booking), BOOKING_EXPIRED, PAYMENT_ALREADY_PROCESSED (not pending, already
   * paid, or a payment in flight).
   */
  async executePayment(input: ExecutePaymentInput): Promise<ExecutePaymentResult> {
    const natural = this.#paymentOutcome(input.paymentMethodToken, input.cvv);
    const outcome = input.forced === undefined ? natural : forcedOutcome(input.forced);
    const { booking, token } = await this.#begin(input.bookingId, input.userId, 'execute');
    const { clock, ids, bus, scheduler, config } = this.#deps;
    return this.#afterProcessingDelay(booking, token, async () => {
      const now = clock.now();
      const pgMockData: PgMockData = { isSuccess: outcome.status === 'APPROVED', failureCode: outcome.failureCode, processedAt: now };
      const event: InboxEvent = {
        eventId: ids('evt'),
        type: pgMockData.isSuccess ? 'PAYMENT_SUCCEEDED' : 'PAYMENT_FAILED',
        bookingId: booking.id,
        details: { failureCode: outcome.failureCode, paymentMethodToken: maskedToken(input.paymentMethodToken), paymentMethod: booking.paymentMethod, amount: booking.totalAmount, currency: booking.currency },
        createdAt: now,
        processedAt: null,
      };
      // Scheduled before it is written (a record whose answer is lost still has its job); refused, it goes.
      await scheduler.schedule(PROCESS_JOB, event.eventId, now + config.eventProcessingDelayMs);
      const recorded = await this.#record(booking, token, { status: pgMockData.isSuccess ? 'SUCCESS' : 'FAILURE', pgMockData, ...(input.forced === undefined ? {} : { decidedByRule: true }) }, event).catch(async (error: unknown) => {
        // Its event never written: the job would retry a record that is not there, then log it given up (a review).
        if (error instanceof PaymentTakenOver) await scheduler.cancel(PROCESS_JOB, event.eventId).catch(() => undefined);
        throw error;
      });
      markApplied(input.forced);
      bus.publish({ id: ids('evt'), type: 'booking.payment_decided', occurredAt: now, booking: recorded, kind: 'execute', isSuccess: pgMockData.isSuccess, failureCode: pgMockData.failureCode });
      return { finalStatus: pgMockData.isSuccess ? 'SUCCESS' : 'FAILURE', bookingId: booking.id, pgMockData };
    });
  }

  /**
   * Pays a pending booking in one step (document 004): after the processing delay the booking is
   * confirmed, its seats reserved and the ledger written. NOT_FOUND (unknown, or another user's),
   * BOOKING_EXPIRED, PAYMENT_ALREADY_PROCESSED. Of two concurrent calls exactly one succeeds.
   */
  async confirmDirect(input: ConfirmDirectInput): Promise<Booking> {
    const { booking, token } = await this.#begin(input.bookingId, input.userId, 'direct');
    const { clock, ids, bus, scheduler, settlement } = this.#deps;
    return this.#afterProcessingDelay(booking, token, async () => {
      const now = clock.now();
      // With a shared store, its expiry job is brought forward to a lease from now: it settles a
      // payment recorded but not settled, and makes the confirmation's event again (Settlement.finish).
      if (scheduler.shared) await scheduler.schedule(EXPIRE_JOB, booking.id, now + scheduler.leaseMs);
      const pgMockData: PgMockData = { isSuccess: true, failureCode: null, processedAt: now };
      const event: InboxEvent = {
        eventId: ids('evt'),
        type: 'PAYMENT_SUCCEEDED',
        bookingId: booking.id,
        details: { failureCode: null, paymentMethodToken: null, paymentMethod: input.paymentMethod, amount: booking.totalAmount, currency: booking.currency },
        createdAt: now,
        processedAt: now,
      };
      const recorded = await this.#record(booking, token, { status: 'SUCCESS', pgMockData }, event, input.paymentMethod);
      bus.publish({ id: ids('evt'), type: 'booking.payment_decided', occurredAt: now, booking: recorded, kind: 'direct', isSuccess: true, failureCode: null });
      const confirmed = await settlement.confirm(recorded);
      if (confirmed?.status !== 'confirmed') throw alreadyProcessed(confirmed ?? recorded);
      return confirmed;
    });
  }

  /**
   * Begins the payment: the guards of its call and its in-flight mark in one store operation, with a
   * token of its own (what its abort and its record name, `#afterProcessingDelay`, `#record`).
   */
  async #begin(bookingId: string, userId: string, kind: PaymentKind): Promise<{ booking: Booking; token: string }> {
    const { bookings, clock, settlement, scheduler, config } = this.#deps;
    const token = randomUUID();
    const now = clock.now();
    // Still in flight past the longest delay and a lease (the scheduler's bound on a run whose
    // process may have died), as this process judges it, it lost its process (a replica killed
    // during its delay): a later payment ends it and begins in its place. Before 2026-12-06 the
    // client's retry was refused as in progress until the hold and a lease had passed.
    const lostAfter = now + config.mockMaxDelayMs + scheduler.leaseMs;
    let begun: Awaited<ReturnType<typeof bookings.beginPayment>>;
    try {
      begun = await bookings.beginPayment(bookingId, userId, kind, now, token, lostAfter);
    } catch (error) {
      // The store went away with the begin sent (Redis): it may have run, its answer lost, leaving
      // the payment in flight with nobody to end it, so the client's retry was refused as in progress
      // until the hold and a lease had passed (a user test). Its abort is tried until the store takes
      // it; it names this begin's token, so it ends nothing if the begin never ran, nor a later payment.
      // A begin the store surely never ran (refused before it was sent, as every call is during an
      // outage) queues nothing: a late abort for each filled the late writes' room (a review). Not
      // waited for: the client's 503 goes at once, not after the abort's first try.
      if (storeCallMayHaveRun(error)) void this.#writeOrLater(() => bookings.abortPayment(bookingId, token)).catch(() => undefined);
      throw error;
    }
    switch (begun.kind) {
      case 'started':
        if (begun.tookOver === true) this.#deps.onTakeOver?.({ bookingId, side: 'took_over' });
        return { booking: begun.booking, token };
      case 'not_found':
        throw notFound('Booking', bookingId);
      case 'forbidden':
        // Document 004 does not tell another user's booking from a missing one.
        if (kind === 'direct') throw notFound('Booking', bookingId);
        throw new DomainError('FORBIDDEN', `Booking ${bookingId} belongs to another user.`);
      case 'expired_now':
        await settlement.finish(begun.booking);
        throw expiredError(begun.booking);
      case 'expired':
        throw expiredError(begun.booking);
      case 'already_processed':
        throw alreadyProcessed(begun.booking);
    }
  }

  /**
   * Ends this payment (begun with `token`) with its result; PAYMENT_ALREADY_PROCESSED (as
   * `PaymentTakenOver`) if it is no longer the payment in flight: another began in its place, this
   * process having stalled past the payment's `lostAfter`, or the hold's backstop ended it.
   */
  async #record(booking: Booking, token: string, paymentIntent: Booking['paymentIntent'], event: InboxEvent, paymentMethod?: string): Promise<Booking> {
    const { bookings } = this.#deps;
    const recorded = await bookings.recordPayment(booking.id, paymentIntent, event, paymentMethod, token);
    if (recorded !== undefined) return recorded;
    this.#deps.onTakeOver?.({ bookingId: booking.id, side: 'taken_over' });
    // Said as the booking is now (paid by the payment that took over, say), not as it was at the begin.
    const current = (await bookings.get(booking.id).catch(() => undefined)) ?? booking;
    throw new PaymentTakenOver(alreadyProcessed(current));
  }

  /**
   * Runs `fn` after a delay drawn uniformly from [mockMinDelayMs, mockMaxDelayMs] on the injected
   * clock; with no delay, at once. If `fn` fails, the payment in flight is ended without a result
   * and the booking's expiry job runs at once (it finishes a payment recorded but not settled, and
   * looks again at the end of the hold), so the booking can never stay held forever. When the store
   * cannot take that either (Redis went away during the payment: the client gets 503 and retries),
   * it is tried again until it can (`retryWhenStoreIsBack`): before 2026-12-03 the payment stayed
   * in flight, and each retry was refused as in progress, until the hold had passed.
   */
  async #afterProcessingDelay<T>(booking: Booking, token: string, fn: () => Promise<T>): Promise<T> {
    const { mockMinDelayMs: min, mockMaxDelayMs: max } = this.#deps.config;
    const delayMs = max <= min ? min : min + Math.floor(this.#deps.random.next() * (max - min + 1));
    this.#inFlight++;
    try {
      if (delayMs > 0) await new Promise<void>((resolve) => this.#deps.clock.schedule(delayMs, resolve));
      return await fn();
    } catch (error) {
      // Another payment in its place (or the booking changed): nothing of this one to end, and the
      // booking's expiry job is that payment's business (a review: run now, it told the booking's
      // confirmation a second time).
      if (error instanceof PaymentTakenOver) throw error.refusal;
      // This payment's abort only (its begin's token): a try made again, however late (its answer
      // lost, or Redis away meanwhile), never ends the client's next payment, begun since.
      await this.#writeOrLater(
        () => this.#deps.bookings.abortPayment(booking.id, token),
        // Its expiry job now: it settles a payment recorded but not settled at once, and looks again at the hold's end.
        () => this.#deps.scheduler.schedule(EXPIRE_JOB, booking.id, this.#deps.clock.now()),
      );
      throw error;
    } finally {
      this.#inFlight--;
    }
  }

  /**
   * Runs `write`, then `next`; one that the store cannot take now (unavailable) is tried again until
   * it can (`retryWhenStoreIsBack`), each on its own, so one done is not done again because the next
   * failed. Rejects with any other failure, or when a write cannot wait.
   */
  async #writeOrLater(write: () => Promise<void>, next?: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      let written = false;
      const later = async (): Promise<void> => {
        // Tried again whole when `next` cannot wait on its own: `write`, once done, is not done again.
        if (!written) await write();
        written = true;
        if (next !== undefined) await this.#writeOrLater(next);
      };
      if (!isStoreUnavailable(error) || this.#deps.retryWhenStoreIsBack?.(later) !== true) throw error;
      return;
    }
    if (next !== undefined) await this.#writeOrLater(next);
  }

  /**
   * Decides a card payment from the token and CVV, before any delay (bad input changes nothing):
   * a test-card token, a card number (validated, then the card rules), or any other token (the
   * CVV rule). The CVV must be 3 or 4 digits.
   */
  #paymentOutcome(token: string, cvv: string): Outcome {
    const compact = token.replace(/[ -]/g, '');
    const number = CARD_NUMBER_TOKEN.test(token) && compact.length >= 8 ? compact : undefined;
    const issues: FieldIssue[] = cardIssues({ number, cvv }).map((issue) => ({
      ...issue,
      field: issue.field === '/card/number' ? '/paymentMethodToken' : issue.field === '/card/cvv' ? '/cvv' : issue.field,
    }));
    if (issues.length > 0) throw validationFailed(issues);
    if (number !== undefined) return cardOutcome({ number, cvv }, this.#deps.clock.now());
    const fixed = TEST_TOKENS.get(token);
    return fixed ?? cvvOutcome(cvv);
  }
}

/** This process's payment, at its record, found no longer in flight: another began in its place (`lostAfter`). */
class PaymentTakenOver extends Error {
  override name = 'PaymentTakenOver';
  readonly refusal: DomainError;

  constructor(refusal: DomainError) {
    super(refusal.message);
    this.refusal = refusal;
  }
}
