import type { Clock, Timer } from './clock.ts';
import { DomainError, notFound, validationFailed, type FieldIssue } from './errors.ts';
import type { BookingEventType, EventBus } from './events.ts';
import type { IdFactory } from './ids.ts';
import type { Ledger } from './ledger.ts';
import type { Performance } from './performances.ts';
import type { RandomSource } from './random.ts';
import { cardIssues, cardOutcome, cvvOutcome, type Outcome } from './scenario.ts';
import type { SeatInventory } from './seats.ts';

/**
 * Bookings: seat holds, payment execution, the events inbox and its processor, expiry.
 *
 * Booking: pending → confirmed | failed | expired | cancelled.
 * Payment intent (one per booking): PENDING → SUCCESS | FAILURE.
 *
 * Two ways to pay, one per API:
 * - `executePayment` (document 003): after the processing delay the outcome is recorded on the
 *   payment intent and written to the inbox as an event; the processor applies it
 *   `eventProcessingDelayMs` later (confirm + reserve + ledger, or fail + release).
 * - `confirmDirect` (document 004): after the processing delay, confirm + reserve + ledger in one
 *   synchronous step; the inbox gets an already-processed PAYMENT_SUCCEEDED event for the record.
 *
 * Holds: a payment in flight (between the call and the end of its delay) and a decided payment
 * awaiting its processor both keep the booking: the sweeper, lazy expiry and cancel leave it
 * alone, so a hold that lapses while a payment is being processed never loses that payment.
 * Expiry is judged when the payment is submitted.
 *
 * Bounded like the intent store: finished bookings (confirmed, failed, expired, cancelled) older
 * than `bookingTtlMs`, or beyond `maxBookings`, are evicted oldest first, together with their inbox
 * events and their ledger transaction (both entries). Pending bookings are never evicted: each
 * holds at least one seat, so there are never more of them than seats.
 * @see issue 4, ../../shared/seeds/003_2d28ecb358825d26.txt, ../../shared/seeds/004_bd5a7b9162ab823c.decoded.txt
 */

export const BOOKING_STATUSES = ['pending', 'confirmed', 'failed', 'expired', 'cancelled'] as const;
export type BookingStatus = (typeof BOOKING_STATUSES)[number];
export type BookingPaymentStatus = 'PENDING' | 'SUCCESS' | 'FAILURE';

export const MAX_QUANTITY = 10;

/** What the simulated payment gateway answered (document 003's `pgMockData`). */
export interface PgMockData {
  isSuccess: boolean;
  failureCode: string | null;
  /** Epoch ms. */
  processedAt: number;
}

export interface BookingPaymentIntent {
  status: BookingPaymentStatus;
  pgMockData: PgMockData | null;
}

export interface Booking {
  /** `bk_<ULID>` */
  id: string;
  userId: string;
  performanceId: string;
  quantity: number;
  /** The seats the booking was given, in seat order. Kept after the seats are released, for the record. */
  seatIds: string[];
  /** `quantity × priceMinor`, in minor units of `currency`. */
  totalAmount: number;
  currency: string;
  status: BookingStatus;
  paymentMethod: string;
  webhookUrl: string | null;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms: when the seat hold lapses (`createdAt + seatHoldMs`), the seats' `lockedUntil`. */
  expiresAt: number;
  paymentIntent: BookingPaymentIntent;
}

export type InboxEventType = 'PAYMENT_SUCCEEDED' | 'PAYMENT_FAILED';

/** A payment result in the events inbox. */
export interface InboxEvent {
  /** `evt_<ULID>` */
  eventId: string;
  type: InboxEventType;
  bookingId: string;
  details: {
    failureCode: string | null;
    /** The token `executePayment` was given; null for `confirmDirect`. Never the CVV. */
    paymentMethodToken: string | null;
    paymentMethod: string;
    amount: number;
    currency: string;
  };
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms when the processor applied it; null until then. */
  processedAt: number | null;
}

export interface BookingConfig {
  /** How long booked seats stay held for payment (SEAT_HOLD_MS, default 600000). */
  seatHoldMs: number;
  /** Delay between a payment result and its processing (EVENT_PROCESSING_DELAY_MS, default 50). */
  eventProcessingDelayMs: number;
  /** Payment processing delay bounds (MOCK_MIN_DELAY_MS / MOCK_MAX_DELAY_MS, 500 / 1500; both 0: none). */
  mockMinDelayMs: number;
  mockMaxDelayMs: number;
  /** How often the sweeper looks for lapsed holds; default 1000. */
  sweepIntervalMs?: number | undefined;
  /** Finished bookings older than this (from their creation) are evicted (BOOKING_TTL_MS, default 24 h). */
  bookingTtlMs?: number | undefined;
  /** At most this many bookings are kept; beyond it the oldest finished ones go (BOOKINGS_MAX, default 1,000,000). */
  maxBookings?: number | undefined;
}

/** What happened, for metrics; called synchronously, never allowed to break the operation. */
export interface BookingObserver {
  /** A booking was created (status pending). */
  onBooked?(booking: Booking): void;
  /** A payment was decided: `execute` (document 003, outcome by card) or `direct` (document 004, always a success). */
  onPayment?(payment: { kind: PaymentKind; bookingId: string; isSuccess: boolean; failureCode: string | null }): void;
  /** The processor applied an inbox event for the first time; `processedAt − createdAt` is its lag. */
  onEventProcessed?(event: InboxEvent): void;
}

export interface BookingServiceDeps {
  clock: Clock;
  random: RandomSource;
  ids: IdFactory;
  bus: EventBus;
  seats: SeatInventory;
  ledger: Ledger;
  performances: readonly Performance[];
  config: BookingConfig;
  /** Told about an error inside a timer (the processor, the sweeper) or an observer, which must never throw. */
  onError?: ((error: unknown, context: string) => void) | undefined;
  observer?: BookingObserver | undefined;
}

export interface BookInput {
  userId: string;
  performanceId: string;
  quantity: number;
  paymentMethod: string;
  webhookUrl?: string | undefined;
}

export interface ExecutePaymentInput {
  userId: string;
  bookingId: string;
  paymentMethodToken: string;
  cvv: string;
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

export interface CancelInput {
  userId: string;
  bookingId: string;
}

export interface BookingCounts {
  bookings: Record<BookingStatus, number>;
  seats: { total: number; available: number; held: number; reserved: number };
  /** Payments between their call and the end of their processing delay. */
  paymentsInFlight: number;
  /** Inbox events not processed yet. */
  unprocessedEvents: number;
}

export const DEFAULT_SWEEP_INTERVAL_MS = 1000;
export const DEFAULT_BOOKING_TTL_MS = 86_400_000;
export const DEFAULT_MAX_BOOKINGS = 1_000_000;

/** Test-card tokens (Stripe's names) and what they do; `null` means "the CVV rule decides". */
const TEST_TOKENS: ReadonlyMap<string, Outcome | null> = new Map<string, Outcome | null>([
  ['tok_visa', null],
  ['tok_mastercard', null],
  ['tok_chargeDeclined', { status: 'FAILED', failureCode: 'card_declined' }],
  ['tok_chargeDeclinedInsufficientFunds', { status: 'FAILED', failureCode: 'insufficient_funds' }],
]);

/** A token made of digits (spaces and dashes allowed between them), at least 8 digits: a card number. */
const CARD_NUMBER_TOKEN = /^\d[\d -]*\d$/;

export type PaymentKind = 'execute' | 'direct';

export class BookingService {
  readonly #deps: BookingServiceDeps;
  readonly #performances: ReadonlyMap<string, Performance>;
  readonly #bookings = new Map<string, Booking>();
  /** A user's booking ids in creation order (a Set, so eviction removes one in O(1)). */
  readonly #byUser = new Map<string, Set<string>>();
  /** Every booking id in creation order, for eviction; ids of evicted bookings are skipped, then compacted away. */
  #order: string[] = [];
  #orderHead = 0;
  readonly #events = new Map<string, InboxEvent>();
  readonly #eventsByBooking = new Map<string, string[]>();
  /** Bookings with a payment between its call and the end of its delay. */
  readonly #inFlight = new Map<string, PaymentKind>();
  readonly #statusCounts: Record<BookingStatus, number> = { pending: 0, confirmed: 0, failed: 0, expired: 0, cancelled: 0 };
  #unprocessed = 0;
  /** Pending bookings in creation order, hence (with one hold length) in expiry order. */
  #expiryQueue: string[] = [];
  #expiryHead = 0;
  /** Bookings whose hold lapsed while a payment held them; looked at again on every sweep. */
  readonly #deferred = new Set<string>();
  #sweepTimer: Timer | undefined;

  constructor(deps: BookingServiceDeps) {
    this.#deps = deps;
    this.#performances = new Map(deps.performances.map((p) => [p.id, p]));
  }

  // ── catalog ────────────────────────────────────────────────────────────────────────────────

  performances(): Performance[] {
    return [...this.#performances.values()].map((p) => ({ ...p, rows: [...p.rows] }));
  }

  performance(id: string): Performance {
    const performance = this.#performances.get(id);
    if (performance === undefined) throw notFound('Performance', id);
    return { ...performance, rows: [...performance.rows] };
  }

  // ── operations ─────────────────────────────────────────────────────────────────────────────

  /**
   * Creates a pending booking holding `quantity` seats until now + seatHoldMs.
   * VALIDATION_FAILED for a quantity outside 1–10; NOT_FOUND for an unknown performance; SOLD_OUT
   * when not enough seats are left. Lapsed holds are expired first, so their seats count as free.
   */
  book(input: BookInput): Booking {
    const { clock, ids, seats, config } = this.#deps;
    if (!Number.isSafeInteger(input.quantity) || input.quantity < 1 || input.quantity > MAX_QUANTITY) {
      throw validationFailed([{ field: '/quantity', rule: 'range', message: `must be a whole number from 1 to ${MAX_QUANTITY}` }]);
    }
    const performance = this.#performances.get(input.performanceId);
    if (performance === undefined) throw notFound('Performance', input.performanceId);
    this.sweep();
    const now = clock.now();
    const id = ids('bk');
    const expiresAt = now + config.seatHoldMs;
    const seatIds = seats.hold(performance.id, input.quantity, id, expiresAt);
    const booking: Booking = {
      id,
      userId: input.userId,
      performanceId: performance.id,
      quantity: input.quantity,
      seatIds,
      totalAmount: performance.priceMinor * input.quantity,
      currency: performance.currency,
      status: 'pending',
      paymentMethod: input.paymentMethod,
      webhookUrl: input.webhookUrl ?? null,
      createdAt: now,
      expiresAt,
      paymentIntent: { status: 'PENDING', pgMockData: null },
    };
    while (this.#bookings.size >= this.#maxBookings && this.#evictOldest()) {
      // make room: the oldest finished booking goes first
    }
    this.#bookings.set(id, booking);
    this.#order.push(id);
    const mine = this.#byUser.get(input.userId);
    if (mine === undefined) this.#byUser.set(input.userId, new Set([id]));
    else mine.add(id);
    this.#statusCounts.pending += 1;
    this.#expiryQueue.push(id);
    const created = snapshot(booking);
    this.#observe('onBooked', (o) => o.onBooked?.(created));
    return created;
  }

  /**
   * Simulates the card payment of a pending booking (document 003). Resolves after the processing
   * delay with the gateway's answer; the booking itself changes when the processor applies the
   * inbox event, `eventProcessingDelayMs` later.
   *
   * Rejects with VALIDATION_FAILED (a bad CVV or card number), NOT_FOUND, FORBIDDEN (another
   * user's booking), BOOKING_EXPIRED (the hold has lapsed), PAYMENT_ALREADY_PROCESSED (not
   * pending, already paid, or a payment in flight). The guards run at the call and again after
   * the delay; the call marks the payment in flight synchronously, so of two concurrent calls
   * exactly one proceeds.
   */
  async executePayment(input: ExecutePaymentInput): Promise<ExecutePaymentResult> {
    const outcome = this.#paymentOutcome(input.paymentMethodToken, input.cvv);
    const booking = this.#payable(input.bookingId, input.userId, 'FORBIDDEN');
    this.#inFlight.set(booking.id, 'execute');
    return this.#afterProcessingDelay(() => {
      this.#inFlight.delete(booking.id);
      const current = this.#payableAfterDelay(booking.id);
      const { clock, ids, config } = this.#deps;
      const now = clock.now();
      const pgMockData: PgMockData = { isSuccess: outcome.status === 'APPROVED', failureCode: outcome.failureCode, processedAt: now };
      current.paymentIntent = { status: pgMockData.isSuccess ? 'SUCCESS' : 'FAILURE', pgMockData };
      this.#observe('onPayment', (o) => o.onPayment?.({ kind: 'execute', bookingId: current.id, isSuccess: pgMockData.isSuccess, failureCode: pgMockData.failureCode }));
      const event = this.#writeEvent({
        eventId: ids('evt'),
        type: pgMockData.isSuccess ? 'PAYMENT_SUCCEEDED' : 'PAYMENT_FAILED',
        bookingId: current.id,
        details: {
          failureCode: outcome.failureCode,
          paymentMethodToken: input.paymentMethodToken,
          paymentMethod: current.paymentMethod,
          amount: current.totalAmount,
          currency: current.currency,
        },
        createdAt: now,
        processedAt: null,
      });
      clock.schedule(config.eventProcessingDelayMs, () => {
        try {
          this.processEvent(event.eventId);
        } catch (error) {
          // The event stays unprocessed (visible in `events()` and `counts()`); a timer must not throw.
          this.#deps.onError?.(error, `processing event ${event.eventId}`);
        }
      });
      return { finalStatus: pgMockData.isSuccess ? 'SUCCESS' : 'FAILURE', bookingId: current.id, pgMockData: { ...pgMockData } };
    });
  }

  /**
   * Applies an inbox event. Idempotent: an event already processed changes nothing and is
   * returned as it is. Success → booking confirmed, seats reserved, one ledger transaction,
   * `booking.confirmed`; failure → booking failed, seats released, `booking.failed`.
   * When the booking is no longer pending (it cannot be, through this service: a decided payment
   * holds its booking until processed), the event is marked processed and nothing else changes:
   * no confirmation, no ledger entries, no bus event. NOT_FOUND for an unknown event.
   */
  processEvent(eventId: string): InboxEvent {
    const event = this.#events.get(eventId);
    if (event === undefined) throw notFound('Event', eventId);
    if (event.processedAt !== null) return copyEvent(event);
    event.processedAt = this.#deps.clock.now();
    this.#unprocessed -= 1;
    const processed = copyEvent(event);
    this.#observe('onEventProcessed', (o) => o.onEventProcessed?.(processed));
    const booking = this.#bookings.get(event.bookingId);
    if (booking === undefined || booking.status !== 'pending') return copyEvent(event);
    if (event.type === 'PAYMENT_SUCCEEDED') this.#confirm(booking);
    else {
      this.#deps.seats.release(booking.id);
      this.#setStatus(booking, 'failed');
      this.#publish('booking.failed', booking);
    }
    return copyEvent(event);
  }

  /**
   * Pays a pending booking in one step (document 004): after the processing delay the booking is
   * confirmed, its seats reserved, the ledger written and the payment intent set to SUCCESS, all
   * synchronously; `booking.confirmed` is published. NOT_FOUND for an unknown booking and for
   * another user's (document 004 answers 404 there); BOOKING_EXPIRED; PAYMENT_ALREADY_PROCESSED
   * when not pending, already paid or a payment is in flight. Of two concurrent calls exactly one succeeds.
   */
  async confirmDirect(input: ConfirmDirectInput): Promise<Booking> {
    const booking = this.#payable(input.bookingId, input.userId, 'NOT_FOUND');
    this.#inFlight.set(booking.id, 'direct');
    return this.#afterProcessingDelay(() => {
      this.#inFlight.delete(booking.id);
      const current = this.#payableAfterDelay(booking.id);
      const { clock, ids } = this.#deps;
      const now = clock.now();
      current.paymentMethod = input.paymentMethod;
      current.paymentIntent = { status: 'SUCCESS', pgMockData: { isSuccess: true, failureCode: null, processedAt: now } };
      this.#observe('onPayment', (o) => o.onPayment?.({ kind: 'direct', bookingId: current.id, isSuccess: true, failureCode: null }));
      this.#writeEvent({
        eventId: ids('evt'),
        type: 'PAYMENT_SUCCEEDED',
        bookingId: current.id,
        details: { failureCode: null, paymentMethodToken: null, paymentMethod: input.paymentMethod, amount: current.totalAmount, currency: current.currency },
        createdAt: now,
        processedAt: now,
      });
      this.#confirm(current);
      return snapshot(current);
    });
  }

  /**
   * Cancels the caller's pending booking and releases its seats; `booking.cancelled`.
   * NOT_FOUND, FORBIDDEN (another user's), BOOKING_EXPIRED, PAYMENT_ALREADY_PROCESSED (confirmed,
   * failed, paid or a payment in flight), INVALID_STATE (already cancelled).
   */
  cancel(input: CancelInput): Booking {
    const booking = this.#owned(input.bookingId, input.userId, 'FORBIDDEN');
    if (booking.status === 'cancelled') throw new DomainError('INVALID_STATE', `Booking ${booking.id} is already cancelled.`);
    this.#assertPayable(booking);
    this.#deps.seats.release(booking.id);
    this.#setStatus(booking, 'cancelled');
    this.#publish('booking.cancelled', booking);
    return snapshot(booking);
  }

  // ── expiry ─────────────────────────────────────────────────────────────────────────────────

  /** Starts the repeating sweep on the injected clock (a no-op when running). */
  start(): void {
    if (this.#sweepTimer !== undefined) return;
    const interval = this.#deps.config.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    const tick = (): void => {
      try {
        this.sweep();
      } catch (error) {
        this.#deps.onError?.(error, 'sweeping expired bookings');
      } finally {
        if (this.#sweepTimer !== undefined) this.#sweepTimer = this.#deps.clock.schedule(interval, tick);
      }
    };
    this.#sweepTimer = this.#deps.clock.schedule(interval, tick);
  }

  stop(): void {
    this.#sweepTimer?.cancel();
    this.#sweepTimer = undefined;
  }

  /**
   * Expires every pending booking whose hold has lapsed and that no payment holds: status
   * `expired`, seats released, `booking.expired`. Then evicts finished bookings past their TTL
   * (see `evict`). Returns how many it expired.
   */
  sweep(): number {
    const now = this.#deps.clock.now();
    let expired = 0;
    for (const id of this.#deferred) {
      const booking = this.#bookings.get(id);
      if (booking === undefined || booking.status !== 'pending') this.#deferred.delete(id);
      else if (this.#expireIfDue(booking, now)) {
        this.#deferred.delete(id);
        expired++;
      }
    }
    while (this.#expiryHead < this.#expiryQueue.length) {
      const booking = this.#bookings.get(this.#expiryQueue[this.#expiryHead] as string);
      if (booking !== undefined && booking.status === 'pending' && booking.expiresAt > now) break;
      this.#expiryHead++;
      if (booking === undefined || booking.status !== 'pending') continue;
      if (this.#expireIfDue(booking, now)) expired++;
      else this.#deferred.add(booking.id);
    }
    if (this.#expiryHead >= 1024 && this.#expiryHead * 2 >= this.#expiryQueue.length) {
      this.#expiryQueue = this.#expiryQueue.slice(this.#expiryHead);
      this.#expiryHead = 0;
    }
    this.evict(now);
    return expired;
  }

  // ── bounds ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Evicts finished bookings created at or before `now − bookingTtlMs`, oldest first, and then,
   * while more than `maxBookings` are kept, the oldest finished ones. An evicted booking leaves
   * with its inbox events and its ledger entries (whole transactions, so debits still equal
   * credits); the seats of a confirmed booking stay sold. A booking with a payment in flight or an
   * unprocessed event is kept until they are done. Returns how many it evicted.
   */
  evict(now: number = this.#deps.clock.now()): number {
    const cutoff = now - (this.#deps.config.bookingTtlMs ?? DEFAULT_BOOKING_TTL_MS);
    let evicted = 0;
    for (let i = this.#orderHead; i < this.#order.length; i++) {
      const booking = this.#bookings.get(this.#order[i] as string);
      if (booking !== undefined && booking.createdAt > cutoff) break;
      if (booking !== undefined && this.#evictable(booking)) {
        this.#remove(booking);
        evicted++;
      }
      if (i === this.#orderHead && !this.#bookings.has(this.#order[i] as string)) this.#orderHead++;
    }
    while (this.#bookings.size > this.#maxBookings && this.#evictOldest()) evicted++;
    this.#compactOrder();
    return evicted;
  }

  /** How many bookings are kept (every status). */
  get size(): number {
    return this.#bookings.size;
  }

  // ── queries ────────────────────────────────────────────────────────────────────────────────

  /** One booking (expired first if its hold has lapsed); NOT_FOUND when unknown. */
  get(id: string): Booking {
    const booking = this.#bookings.get(id);
    if (booking === undefined) throw notFound('Booking', id);
    this.#expireIfDue(booking, this.#deps.clock.now());
    return snapshot(booking);
  }

  /** A user's bookings, newest first (lapsed holds expired first). */
  listForUser(userId: string): Booking[] {
    const now = this.#deps.clock.now();
    const ids = [...(this.#byUser.get(userId) ?? [])];
    const list: Booking[] = [];
    for (let i = ids.length - 1; i >= 0; i--) {
      const booking = this.#bookings.get(ids[i] as string);
      if (booking === undefined) continue;
      this.#expireIfDue(booking, now);
      list.push(snapshot(booking));
    }
    return list;
  }

  /** Inbox events in the order they were written, all of them or one booking's. */
  events(bookingId?: string): InboxEvent[] {
    if (bookingId === undefined) return [...this.#events.values()].map(copyEvent);
    return (this.#eventsByBooking.get(bookingId) ?? []).map((id) => copyEvent(this.#events.get(id) as InboxEvent));
  }

  /** Bookings kept, by status (evicted ones no longer count), seats, payments in flight, unprocessed events. */
  counts(): BookingCounts {
    const seats = this.#deps.seats.counts();
    return {
      bookings: { ...this.#statusCounts },
      seats,
      paymentsInFlight: this.#inFlight.size,
      unprocessedEvents: this.#unprocessed,
    };
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────

  /** The caller's booking; another user's is `otherUser` (FORBIDDEN or, for document 004, NOT_FOUND). */
  #owned(bookingId: string, userId: string, otherUser: 'FORBIDDEN' | 'NOT_FOUND'): Booking {
    const booking = this.#bookings.get(bookingId);
    if (booking === undefined) throw notFound('Booking', bookingId);
    if (booking.userId !== userId) {
      if (otherUser === 'NOT_FOUND') throw notFound('Booking', bookingId);
      throw new DomainError('FORBIDDEN', `Booking ${bookingId} belongs to another user.`);
    }
    return booking;
  }

  /** The guards every payment runs at its call; a lapsed hold is expired on the spot. */
  #payable(bookingId: string, userId: string, otherUser: 'FORBIDDEN' | 'NOT_FOUND'): Booking {
    const booking = this.#owned(bookingId, userId, otherUser);
    this.#assertPayable(booking);
    return booking;
  }

  #assertPayable(booking: Booking): void {
    if (booking.status === 'expired') throw expiredError(booking);
    if (booking.status !== 'pending' || booking.paymentIntent.status !== 'PENDING' || this.#inFlight.has(booking.id)) {
      throw alreadyProcessed(booking, this.#inFlight.has(booking.id));
    }
    if (this.#expireIfDue(booking, this.#deps.clock.now())) throw expiredError(booking);
  }

  /**
   * The guards again, after the delay. The payment held the booking meanwhile, so they only fail
   * if something outside this service changed it; the hold lapsing during the delay is not a
   * reason to fail (expiry was judged at the call).
   */
  #payableAfterDelay(bookingId: string): Booking {
    const booking = this.#bookings.get(bookingId);
    if (booking === undefined) throw notFound('Booking', bookingId);
    if (booking.status !== 'pending' || booking.paymentIntent.status !== 'PENDING') throw alreadyProcessed(booking, false);
    return booking;
  }

  /** Expires a pending, unpaid booking whose hold has lapsed; true if it did. */
  #expireIfDue(booking: Booking, now: number): boolean {
    if (booking.status !== 'pending' || booking.paymentIntent.status !== 'PENDING' || this.#inFlight.has(booking.id)) return false;
    if (now < booking.expiresAt) return false;
    this.#deps.seats.release(booking.id);
    this.#setStatus(booking, 'expired');
    this.#publish('booking.expired', booking);
    return true;
  }

  /** Ledger first: it is the step that validates, so a refusal leaves seats and status untouched. */
  #confirm(booking: Booking): void {
    const { seats, ledger } = this.#deps;
    ledger.post({ bookingId: booking.id, amount: booking.totalAmount, currency: booking.currency });
    seats.reserve(booking.id);
    this.#setStatus(booking, 'confirmed');
    this.#publish('booking.confirmed', booking);
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

  /**
   * Runs `fn` after a delay drawn uniformly from [mockMinDelayMs, mockMaxDelayMs] on the injected
   * clock; with no delay, on the next microtask. `fn` runs inside the timer, so its state change
   * is complete when the timer fires, before anyone awaits the result.
   */
  #afterProcessingDelay<T>(fn: () => T): Promise<T> {
    const { mockMinDelayMs: min, mockMaxDelayMs: max } = this.#deps.config;
    const delayMs = max <= min ? min : min + Math.floor(this.#deps.random.next() * (max - min + 1));
    if (delayMs <= 0) return Promise.resolve().then(fn);
    return new Promise<T>((resolve, reject) => {
      this.#deps.clock.schedule(delayMs, () => {
        try {
          resolve(fn());
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  #writeEvent(event: InboxEvent): InboxEvent {
    this.#events.set(event.eventId, event);
    const list = this.#eventsByBooking.get(event.bookingId);
    if (list === undefined) this.#eventsByBooking.set(event.bookingId, [event.eventId]);
    else list.push(event.eventId);
    if (event.processedAt === null) this.#unprocessed += 1;
    return event;
  }

  #setStatus(booking: Booking, status: BookingStatus): void {
    this.#statusCounts[booking.status] -= 1;
    this.#statusCounts[status] += 1;
    booking.status = status;
  }

  #publish(type: BookingEventType, booking: Booking): void {
    const { bus, clock, ids } = this.#deps;
    bus.publish({ id: ids('evt'), type, occurredAt: clock.now(), booking: snapshot(booking) });
  }

  #observe(hook: keyof BookingObserver, call: (observer: BookingObserver) => void): void {
    const { observer } = this.#deps;
    if (observer === undefined) return;
    try {
      call(observer);
    } catch (error) {
      this.#deps.onError?.(error, `booking observer ${hook}`);
    }
  }

  get #maxBookings(): number {
    return this.#deps.config.maxBookings ?? DEFAULT_MAX_BOOKINGS;
  }

  /** Finished, with no payment in flight and every inbox event processed. */
  #evictable(booking: Booking): boolean {
    if (booking.status === 'pending' || this.#inFlight.has(booking.id)) return false;
    for (const eventId of this.#eventsByBooking.get(booking.id) ?? []) {
      if (this.#events.get(eventId)?.processedAt === null) return false;
    }
    return true;
  }

  /** Evicts the oldest evictable booking; false when there is none. */
  #evictOldest(): boolean {
    for (let i = this.#orderHead; i < this.#order.length; i++) {
      const booking = this.#bookings.get(this.#order[i] as string);
      if (booking === undefined) {
        if (i === this.#orderHead) this.#orderHead++;
        continue;
      }
      if (!this.#evictable(booking)) continue;
      this.#remove(booking);
      if (i === this.#orderHead) this.#orderHead++;
      return true;
    }
    return false;
  }

  #remove(booking: Booking): void {
    const { id } = booking;
    this.#bookings.delete(id);
    const mine = this.#byUser.get(booking.userId);
    mine?.delete(id);
    if (mine?.size === 0) this.#byUser.delete(booking.userId);
    for (const eventId of this.#eventsByBooking.get(id) ?? []) this.#events.delete(eventId);
    this.#eventsByBooking.delete(id);
    this.#deps.ledger.removeBooking(id);
    this.#deferred.delete(id);
    this.#statusCounts[booking.status] -= 1;
  }

  #compactOrder(): void {
    if (this.#orderHead >= 1024 && this.#orderHead * 2 >= this.#order.length) {
      this.#order = this.#order.slice(this.#orderHead);
      this.#orderHead = 0;
    }
  }
}

function snapshot(booking: Booking): Booking {
  const { pgMockData } = booking.paymentIntent;
  return {
    ...booking,
    seatIds: [...booking.seatIds],
    paymentIntent: { status: booking.paymentIntent.status, pgMockData: pgMockData === null ? null : { ...pgMockData } },
  };
}

function copyEvent(event: InboxEvent): InboxEvent {
  return { ...event, details: { ...event.details } };
}

function expiredError(booking: Booking): DomainError {
  return new DomainError('BOOKING_EXPIRED', `Booking ${booking.id} expired at ${new Date(booking.expiresAt).toISOString()}.`);
}

function alreadyProcessed(booking: Booking, inFlight: boolean): DomainError {
  const message = inFlight
    ? `A payment for booking ${booking.id} is already in progress.`
    : booking.status === 'pending'
      ? `The payment for booking ${booking.id} has already been processed (${booking.paymentIntent.status}).`
      : `Booking ${booking.id} is ${booking.status}; only a pending, unpaid booking can be paid or cancelled.`;
  return new DomainError('PAYMENT_ALREADY_PROCESSED', message);
}
