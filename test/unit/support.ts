import { MemoryBookingStore, type MemoryBookingStoreOptions } from '../../src/adapters/memory/bookings.ts';
import { MemoryIntentStore, type MemoryIntentStoreOptions } from '../../src/adapters/memory/intents.ts';
import { MemoryLedgerStore } from '../../src/adapters/memory/ledger.ts';
import { MemorySchedulerStore } from '../../src/adapters/memory/scheduler.ts';
import { MemorySeatStore } from '../../src/adapters/memory/seats.ts';
import type { Booking } from '../../src/core/bookings/booking.ts';
import { InboxProcessor } from '../../src/core/bookings/inbox.ts';
import { BookingPayments, type ExecutePaymentInput, type ExecutePaymentResult } from '../../src/core/bookings/payments.ts';
import { Catalog, DEFAULT_PERFORMANCES, type Performance } from '../../src/core/bookings/performances.ts';
import { BookingService, type BookingConfig, type BookingServiceDeps } from '../../src/core/bookings/service.ts';
import { Settlement } from '../../src/core/bookings/settlement.ts';
import { DomainError } from '../../src/core/errors.ts';
import { EventBus, isBookingEvent, isPaymentEvent, type BookingEvent, type DomainEvent, type PaymentEvent } from '../../src/core/events.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import type { Intent } from '../../src/core/intents/intent.ts';
import { IntentService, refundJobKey } from '../../src/core/intents/service.ts';
import type { Job, RefundOutcome, Transition } from '../../src/core/ports.ts';
import { createRandom, type RandomSource } from '../../src/core/random.ts';
import { Scheduler } from '../../src/core/scheduler.ts';
import type { ScenarioConfig } from '../../src/core/scenario.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

/** Shared fixtures for the unit tests (not a test file itself). */

export const SCENARIOS: ScenarioConfig = { approveDelayMs: 200, failDelayMs: 100, delayDelayMs: 3000, randomApproveRate: 0.8 };

/** The DomainError `fn` throws (or its promise rejects with); any other error is rethrown, and none at all fails the test. */
export async function errorOf(fn: () => unknown): Promise<DomainError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a DomainError');
}

/** The code of the DomainError `fn` throws. */
export async function codeOf(fn: () => unknown): Promise<string> {
  return (await errorOf(fn)).code;
}

export const ULID = '[0-9A-HJKMNP-TV-Z]{26}';
export const PAY_ID = new RegExp(`^pay_${ULID}$`);
export const EVT_ID = new RegExp(`^evt_${ULID}$`);

/** A random source that always returns the given values, in order, then fails the test. */
export function scriptedRandom(...values: number[]): RandomSource & { calls: number } {
  const source = {
    calls: 0,
    next(): number {
      const value = values[source.calls++];
      if (value === undefined) throw new Error('scriptedRandom: no more values');
      return value;
    },
  };
  return source;
}

/** A scheduler over an in-memory store on `clock`, started; errors of its jobs are collected. */
export async function startedScheduler(clock: ManualClock): Promise<{ scheduler: Scheduler; store: MemorySchedulerStore; errors: unknown[] }> {
  const store = new MemorySchedulerStore();
  const errors: unknown[] = [];
  const scheduler = new Scheduler({ clock, store, onError: (error) => errors.push(error) });
  await scheduler.start();
  return { scheduler, store, errors };
}

/** Makes `store.decide` run twice and answer the second run, as a client that sends a script again after its reply was lost (ioredis after a reconnect). */
export function decidingTwice<T>(store: { decide(id: string, now: number): Promise<T> }): void {
  const decide = store.decide.bind(store);
  store.decide = async (id, now) => {
    await decide(id, now);
    return decide(id, now);
  };
}

/** `startedScheduler` as a store shared by several processes has it: polling every second, a 30 s lease. */
export async function sharedScheduler(clock: ManualClock): Promise<{ scheduler: Scheduler; store: MemorySchedulerStore; errors: unknown[] }> {
  const store = new MemorySchedulerStore();
  const errors: unknown[] = [];
  const scheduler = new Scheduler({ clock, store, onError: (error) => errors.push(error), pollMs: 1000, leaseMs: 30_000 });
  await scheduler.start();
  return { scheduler, store, errors };
}

export interface Harness {
  clock: ManualClock;
  bus: EventBus;
  store: MemoryIntentStore;
  scheduler: Scheduler;
  /** The scheduler's store, for a stand-in that writes jobs itself. */
  schedulerStore: MemorySchedulerStore;
  service: IntentService;
  events: PaymentEvent[];
  busErrors: Array<{ error: unknown; event: DomainEvent }>;
}

/**
 * A memory intent store with the `cancelScheduled` and `refundScheduled` of a store shared with the
 * scheduler's (the Redis one's scripts): the change, then its job when it was made.
 */
export class JobWritingIntentStore extends MemoryIntentStore {
  readonly #jobs: MemorySchedulerStore;

  constructor(options: MemoryIntentStoreOptions, jobs: MemorySchedulerStore) {
    super(options);
    this.#jobs = jobs;
  }

  readonly cancelScheduled = async (id: string, now: number, job: Job): Promise<Transition<Intent>> => {
    const result = await this.transition(id, ['PENDING'], { status: 'CANCELLED', updatedAt: now });
    if (result.ok) await this.#jobs.schedule(job);
    return result;
  };

  readonly refundScheduled = async (id: string, amount: number | undefined, now: number, job: Job): Promise<RefundOutcome> => {
    const result = await this.refund(id, amount, now);
    if (result.kind === 'refunded') await this.#jobs.schedule({ ...job, key: refundJobKey(job.key, result.intent.refundedAmount, result.amount, now) });
    return result;
  };
}

/** `shared`: the scheduler of a store shared by several processes (it polls, 30 s lease) and a store that writes its jobs (`JobWritingIntentStore`). */
export async function makeService(
  options: { scenarios?: Partial<ScenarioConfig>; store?: Partial<MemoryIntentStoreOptions>; random?: RandomSource; seed?: number; shared?: boolean } = {},
): Promise<Harness> {
  const clock = new ManualClock();
  const busErrors: Harness['busErrors'] = [];
  const bus = new EventBus((error, event) => busErrors.push({ error, event }));
  const events: PaymentEvent[] = [];
  bus.subscribe((event) => {
    if (isPaymentEvent(event)) events.push(event);
  });
  const storeOptions = { ttlMs: 86_400_000, maxIntents: 1_000_000, ...options.store };
  const { scheduler, store: schedulerStore } = options.shared === true ? await sharedScheduler(clock) : await startedScheduler(clock);
  const store = options.shared === true ? new JobWritingIntentStore(storeOptions, schedulerStore) : new MemoryIntentStore(storeOptions);
  const service = new IntentService({
    store,
    scheduler,
    bus,
    clock,
    random: options.random ?? createRandom(options.seed ?? 1),
    ids: createIdFactory(clock),
    scenarios: { ...SCENARIOS, ...options.scenarios },
  });
  return { clock, bus, store, scheduler, schedulerStore, service, events, busErrors };
}

// ── bookings ─────────────────────────────────────────────────────────────────────────────────

export const HOLD = 600_000;
export const PAY_DELAY = 1000;
/** A fixed processing delay (min = max, so nothing is drawn) keeps most booking tests on exact times. */
export const BOOKING_CONFIG: BookingConfig = { seatHoldMs: HOLD, eventProcessingDelayMs: 50, mockMinDelayMs: PAY_DELAY, mockMaxDelayMs: PAY_DELAY };
export const USER = 'user_test_001';
export const OTHER = 'user_test_002';

export interface BookingHarness {
  clock: ManualClock;
  bus: EventBus;
  bookings: MemoryBookingStore;
  seats: MemorySeatStore;
  ledger: MemoryLedgerStore;
  scheduler: Scheduler;
  /** The scheduler's store, to look at the jobs. */
  schedulerStore: MemorySchedulerStore;
  settlement: Settlement;
  service: BookingService;
  payments: BookingPayments;
  inbox: InboxProcessor;
  /** Booking status events (created, confirmed, failed, expired, cancelled), in order. */
  events: BookingEvent[];
  /** Everything published on the bus, in order. */
  published: DomainEvent[];
  busErrors: Array<{ error: unknown; event: DomainEvent }>;
  /** Errors of the scheduler's jobs. */
  jobErrors: unknown[];
}

/**
 * The booking services wired as src/plugins/app/bookings.ts wires them, over memory stores, a
 * manual clock and a started scheduler (`shared`: one polling as a store shared by several processes does).
 */
export async function makeBookings(
  options: {
    config?: Partial<BookingConfig>;
    store?: Partial<MemoryBookingStoreOptions>;
    random?: RandomSource;
    performances?: readonly Performance[];
    shared?: boolean;
    onCancelTookOver?: BookingServiceDeps['onCancelTookOver'];
  } = {},
): Promise<BookingHarness> {
  const clock = new ManualClock();
  const busErrors: BookingHarness['busErrors'] = [];
  const bus = new EventBus((error, event) => busErrors.push({ error, event }));
  const events: BookingEvent[] = [];
  const published: DomainEvent[] = [];
  bus.subscribe((event) => {
    published.push(event);
    if (isBookingEvent(event)) events.push(event);
  });
  const ids = createIdFactory(clock);
  const performances = options.performances ?? DEFAULT_PERFORMANCES;
  const bookings = new MemoryBookingStore({ ttlMs: 86_400_000, maxBookings: 1_000_000, ...options.store });
  const seats = new MemorySeatStore(performances);
  const ledger = new MemoryLedgerStore();
  const { scheduler, store: schedulerStore, errors: jobErrors } = options.shared === true ? await sharedScheduler(clock) : await startedScheduler(clock);
  const config = { ...BOOKING_CONFIG, ...options.config };
  const settlement = new Settlement({ clock, ids, bus, bookings, seats, ledger, scheduler });
  const service = new BookingService({ clock, ids, bookings, seats, ledger, scheduler, settlement, catalog: new Catalog(performances), config, onCancelTookOver: options.onCancelTookOver });
  const random = options.random ?? createRandom(1);
  const payments = new BookingPayments({ clock, random, ids, bus, bookings, seats, scheduler, settlement, config });
  const inbox = new InboxProcessor({ clock, ids, bus, bookings, scheduler, settlement });
  return { clock, bus, bookings, seats, ledger, scheduler, schedulerStore, settlement, service, payments, inbox, events, published, busErrors, jobErrors };
}

export function book(h: BookingHarness, quantity = 2, userId = USER, performanceId = 'perf_001'): Promise<Booking> {
  return h.service.book({ userId, performanceId, quantity, paymentMethod: 'CREDIT_CARD' });
}

export function payInput(booking: Booking, overrides: Partial<ExecutePaymentInput> = {}): ExecutePaymentInput {
  return { userId: booking.userId, bookingId: booking.id, paymentMethodToken: 'tok_visa_creditCard', cvv: '120', ...overrides };
}

/** Executes a payment through its delay and returns the gateway's answer (the inbox event is not processed yet). */
export async function pay(h: BookingHarness, booking: Booking, overrides: Partial<ExecutePaymentInput> = {}): Promise<ExecutePaymentResult> {
  const result = h.payments.executePayment(payInput(booking, overrides));
  await h.clock.advance(PAY_DELAY);
  return result;
}

/** Follows a promise without awaiting it, so a test can look at it between clock steps. */
export function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** Every booking of a user, newest first, page by page. */
export async function allForUser(h: BookingHarness, userId: string): Promise<Booking[]> {
  const all: Booking[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await h.service.listForUser(userId, { limit: 100, cursor });
    all.push(...page.data);
    if (page.nextCursor === null) return all;
    cursor = page.nextCursor;
  }
}
