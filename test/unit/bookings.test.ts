import { describe, expect, it } from 'vitest';
import {
  BookingService,
  type Booking,
  type BookingConfig,
  type BookingStatus,
  type ExecutePaymentInput,
} from '../../src/core/bookings.ts';
import { DomainError } from '../../src/core/errors.ts';
import { EventBus, isBookingEvent, type BookingEvent } from '../../src/core/events.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { Ledger } from '../../src/core/ledger.ts';
import { DEFAULT_PERFORMANCES, type Performance } from '../../src/core/performances.ts';
import { createRandom, type RandomSource } from '../../src/core/random.ts';
import { SeatInventory } from '../../src/core/seats.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { codeOf, EVT_ID, scriptedRandom, ULID } from './support.ts';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const HOLD = 600_000;
const PAY_DELAY = 1000;
/** A fixed processing delay (min = max, so nothing is drawn) keeps most tests on exact times. */
const CONFIG: BookingConfig = { seatHoldMs: HOLD, eventProcessingDelayMs: 50, mockMinDelayMs: PAY_DELAY, mockMaxDelayMs: PAY_DELAY };
const BK_ID = new RegExp(`^bk_${ULID}$`);
const USER = 'user_test_001';
const OTHER = 'user_test_002';

interface Harness {
  clock: ManualClock;
  seats: SeatInventory;
  ledger: Ledger;
  service: BookingService;
  events: BookingEvent[];
  busErrors: unknown[];
  timerErrors: Array<{ error: unknown; context: string }>;
}

function makeBookings(options: { config?: Partial<BookingConfig>; random?: RandomSource; performances?: readonly Performance[] } = {}): Harness {
  const clock = new ManualClock(T0);
  const busErrors: unknown[] = [];
  const bus = new EventBus((error) => busErrors.push(error));
  const events: BookingEvent[] = [];
  bus.subscribe((event) => {
    if (isBookingEvent(event)) events.push(event);
  });
  const ids = createIdFactory(clock);
  const performances = options.performances ?? DEFAULT_PERFORMANCES;
  const seats = new SeatInventory(performances);
  const ledger = new Ledger({ clock, ids });
  const timerErrors: Harness['timerErrors'] = [];
  const service = new BookingService({
    clock,
    random: options.random ?? createRandom(1),
    ids,
    bus,
    seats,
    ledger,
    performances,
    config: { ...CONFIG, ...options.config },
    onError: (error, context) => timerErrors.push({ error, context }),
  });
  return { clock, seats, ledger, service, events, busErrors, timerErrors };
}

async function rejection(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

/** Follows a promise without awaiting it, so a test can look at it between clock steps. */
function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function payInput(booking: Booking, overrides: Partial<ExecutePaymentInput> = {}): ExecutePaymentInput {
  return { userId: booking.userId, bookingId: booking.id, paymentMethodToken: 'tok_visa_creditCard', cvv: '120', ...overrides };
}

/** Executes a payment through its delay and returns the gateway's answer (the event is not processed yet). */
async function pay(h: Harness, booking: Booking, overrides: Partial<ExecutePaymentInput> = {}) {
  const result = h.service.executePayment(payInput(booking, overrides));
  h.clock.advance(PAY_DELAY);
  return result;
}

function book(h: Harness, quantity = 2, userId = USER, performanceId = 'perf_001'): Booking {
  return h.service.book({ userId, performanceId, quantity, paymentMethod: 'CREDIT_CARD' });
}

describe('book', () => {
  it('creates a pending booking holding adjacent seats for the hold time', () => {
    const h = makeBookings();
    const booking = h.service.book({ userId: USER, performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' });
    expect(booking).toEqual({
      id: expect.stringMatching(BK_ID),
      userId: USER,
      performanceId: 'perf_001',
      quantity: 2,
      seatIds: ['A1', 'A2'],
      totalAmount: 60000,
      currency: 'KRW',
      status: 'pending',
      paymentMethod: 'CREDIT_CARD',
      webhookUrl: null,
      createdAt: T0,
      expiresAt: T0 + HOLD,
      paymentIntent: { status: 'PENDING', pgMockData: null },
    });
    expect(h.seats.seatsOf('perf_001').slice(0, 3)).toEqual([
      { seatId: 'A1', row: 'A', number: 1, status: 'locked', bookingId: booking.id, lockedUntil: T0 + HOLD },
      { seatId: 'A2', row: 'A', number: 2, status: 'locked', bookingId: booking.id, lockedUntil: T0 + HOLD },
      { seatId: 'A3', row: 'A', number: 3, status: 'available', bookingId: null, lockedUntil: null },
    ]);
    expect(h.events).toEqual([]);
    expect(h.service.counts()).toMatchObject({ bookings: { pending: 1 }, seats: { held: 2, reserved: 0 } });
  });

  it('keeps the webhook URL and gives the next party the next adjacent seats', () => {
    const h = makeBookings();
    book(h, 6);
    const second = h.service.book({ userId: USER, performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD', webhookUrl: 'http://client/hook' });
    expect(second).toMatchObject({ seatIds: ['A7', 'A8'], webhookUrl: 'http://client/hook' });
  });

  it.each([0, 11, 1.5, -1])('refuses a quantity of %s and holds nothing', (quantity) => {
    const h = makeBookings();
    expect(codeOf(() => book(h, quantity))).toBe('VALIDATION_FAILED');
    expect(h.seats.counts().held).toBe(0);
    expect(h.service.counts().bookings.pending).toBe(0);
  });

  it('refuses an unknown performance with NOT_FOUND and a sold-out one with SOLD_OUT', () => {
    const h = makeBookings();
    expect(codeOf(() => book(h, 1, USER, 'perf_999'))).toBe('NOT_FOUND');
    book(h, 10, USER, 'perf_003');
    book(h, 9, USER, 'perf_003');
    expect(codeOf(() => book(h, 2, USER, 'perf_003'))).toBe('SOLD_OUT');
    expect(book(h, 1, USER, 'perf_003').seatIds).toEqual(['B10']);
    expect(codeOf(() => book(h, 1, USER, 'perf_003'))).toBe('SOLD_OUT');
    expect(h.service.counts().bookings.pending).toBe(3);
  });

  it('1,000 bookings of one seat against a 200-seat performance: exactly 200 held, 800 SOLD_OUT', () => {
    const h = makeBookings();
    const booked: Booking[] = [];
    const refused: string[] = [];
    for (let i = 0; i < 1000; i++) {
      try {
        booked.push(book(h, 1, `user_${i}`));
      } catch (error) {
        refused.push((error as DomainError).code);
      }
    }
    expect(booked).toHaveLength(200);
    expect(new Set(booked.flatMap((b) => b.seatIds)).size).toBe(200);
    expect(refused).toHaveLength(800);
    expect(new Set(refused)).toEqual(new Set(['SOLD_OUT']));
    expect(h.seats.counts('perf_001')).toEqual({ total: 200, available: 0, held: 200, reserved: 0 });
  });

  it('1,000 bookings of mixed sizes: no seat twice, held seats equal booked quantities, refusals only when too few are left', () => {
    const h = makeBookings();
    const random = createRandom(3);
    const seen = new Set<string>();
    let held = 0;
    for (let i = 0; i < 1000; i++) {
      const quantity = 1 + Math.floor(random.next() * 10);
      const available = h.seats.counts('perf_001').available;
      try {
        const booking = book(h, quantity, `user_${i}`);
        for (const id of booking.seatIds) {
          expect(seen.has(id)).toBe(false);
          seen.add(id);
        }
        held += quantity;
      } catch (error) {
        expect((error as DomainError).code).toBe('SOLD_OUT');
        expect(available).toBeLessThan(quantity);
      }
    }
    expect(h.seats.counts('perf_001')).toEqual({ total: 200, available: 200 - held, held, reserved: 0 });
    expect(held).toBeGreaterThan(190);
  });

  it('frees lapsed holds before allocating, without waiting for the sweeper', () => {
    const h = makeBookings();
    const old = book(h, 10, USER, 'perf_003');
    book(h, 10, USER, 'perf_003');
    expect(codeOf(() => book(h, 1, USER, 'perf_003'))).toBe('SOLD_OUT');
    h.clock.advance(HOLD);
    const fresh = book(h, 3, OTHER, 'perf_003');
    expect(fresh.seatIds).toEqual(['A1', 'A2', 'A3']);
    expect(h.service.get(old.id).status).toBe('expired');
    expect(h.events.map((e) => [e.type, e.booking.id])).toEqual([
      ['booking.expired', old.id],
      ['booking.expired', expect.any(String)],
    ]);
  });
});

describe('executePayment', () => {
  it('answers SUCCESS after the delay, records the event, and the processor confirms 50 ms later', async () => {
    const h = makeBookings();
    const booking = book(h);
    const state = track(h.service.executePayment(payInput(booking)));
    h.clock.advance(PAY_DELAY - 1);
    await flush();
    expect(state.settled).toBe(false);
    expect(h.service.counts().paymentsInFlight).toBe(1);
    h.clock.advance(1);
    await flush();
    expect(state.value).toEqual({
      finalStatus: 'SUCCESS',
      bookingId: booking.id,
      pgMockData: { isSuccess: true, failureCode: null, processedAt: T0 + PAY_DELAY },
    });
    expect(h.service.get(booking.id)).toMatchObject({
      status: 'pending',
      paymentIntent: { status: 'SUCCESS', pgMockData: { isSuccess: true, failureCode: null, processedAt: T0 + PAY_DELAY } },
    });
    const [event] = h.service.events(booking.id);
    expect(event).toEqual({
      eventId: expect.stringMatching(EVT_ID),
      type: 'PAYMENT_SUCCEEDED',
      bookingId: booking.id,
      details: { failureCode: null, paymentMethodToken: 'tok_visa_creditCard', paymentMethod: 'CREDIT_CARD', amount: 60000, currency: 'KRW' },
      createdAt: T0 + PAY_DELAY,
      processedAt: null,
    });
    expect(JSON.stringify(h.service.events())).not.toMatch(/cvv|"120"/);
    expect(h.service.counts()).toMatchObject({ paymentsInFlight: 0, unprocessedEvents: 1 });
    expect(h.ledger.entries()).toEqual([]);

    h.clock.advance(49);
    expect(h.service.get(booking.id).status).toBe('pending');
    h.clock.advance(1);
    const confirmed = h.service.get(booking.id);
    expect(confirmed.status).toBe('confirmed');
    expect(h.service.events(booking.id)[0]!.processedAt).toBe(T0 + PAY_DELAY + 50);
    expect(h.seats.seatsOf('perf_001').slice(0, 2).map((s) => [s.seatId, s.status, s.bookingId])).toEqual([
      ['A1', 'reserved', booking.id],
      ['A2', 'reserved', booking.id],
    ]);
    const entries = h.ledger.entries(booking.id);
    expect(entries.map((e) => [e.account, e.direction, e.amount, e.currency])).toEqual([
      ['CUSTOMER_PAYABLE', 'DEBIT', 60000, 'KRW'],
      ['MERCHANT_BALANCE', 'CREDIT', 60000, 'KRW'],
    ]);
    expect(entries[0]!.transactionId).toBe(entries[1]!.transactionId);
    expect(h.events).toEqual([
      { id: expect.stringMatching(EVT_ID), type: 'booking.confirmed', occurredAt: T0 + PAY_DELAY + 50, booking: confirmed },
    ]);
    expect(h.service.counts()).toMatchObject({ bookings: { pending: 0, confirmed: 1 }, seats: { held: 0, reserved: 2 }, unprocessedEvents: 0 });
    expect(h.busErrors).toEqual([]);
    expect(h.timerErrors).toEqual([]);
  });

  it('answers FAILURE with DECLINE_<d> for a CVV ending in another digit; the processor fails the booking and frees its seats', async () => {
    const h = makeBookings();
    const booking = book(h);
    expect(await pay(h, booking, { cvv: '442' })).toEqual({
      finalStatus: 'FAILURE',
      bookingId: booking.id,
      pgMockData: { isSuccess: false, failureCode: 'DECLINE_2', processedAt: T0 + PAY_DELAY },
    });
    expect(h.service.events(booking.id)[0]).toMatchObject({ type: 'PAYMENT_FAILED', details: { failureCode: 'DECLINE_2' }, processedAt: null });
    h.clock.advance(50);
    expect(h.service.get(booking.id)).toMatchObject({ status: 'failed', seatIds: ['A1', 'A2'], paymentIntent: { status: 'FAILURE' } });
    expect(h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect(h.ledger.entries()).toEqual([]);
    expect(h.events.map((e) => [e.type, e.booking.status])).toEqual([['booking.failed', 'failed']]);
    expect(book(h).seatIds).toEqual(['A1', 'A2']);
  });

  it.each([
    ['tok_visa_creditCard', '120', null],
    ['tok_visa_creditCard', '129', null],
    ['tok_visa_creditCard', '4441', null],
    ['tok_visa_creditCard', '445', 'DECLINE_5'],
    ['tok_visa', '111', null],
    ['tok_visa', '442', 'DECLINE_2'],
    ['tok_mastercard', '109', null],
    ['tok_mastercard', '448', 'DECLINE_8'],
    ['tok_chargeDeclined', '120', 'card_declined'],
    ['tok_chargeDeclinedInsufficientFunds', '120', 'insufficient_funds'],
    ['4242424242424242', '442', null],
    ['4000000000000002', '120', 'card_declined'],
    ['4000000000009995', '120', 'insufficient_funds'],
    ['4111 1111 1111 1111', '442', 'DECLINE_2'],
    ['4111-1111-1111-1111', '121', null],
  ])('token %s with CVV %s → failureCode %s', async (paymentMethodToken, cvv, failureCode) => {
    const h = makeBookings();
    const result = await pay(h, book(h), { paymentMethodToken, cvv });
    expect(result.pgMockData.failureCode).toBe(failureCode);
    expect(result.finalStatus).toBe(failureCode === null ? 'SUCCESS' : 'FAILURE');
  });

  it.each([
    ['tok_visa', '12', '/cvv'],
    ['tok_visa', '12a', '/cvv'],
    ['tok_visa', '', '/cvv'],
    ['4111111111111112', '120', '/paymentMethodToken'],
    ['12345678', '120', '/paymentMethodToken'],
  ])('refuses token %s with CVV %j as VALIDATION_FAILED on %s, changing nothing', async (paymentMethodToken, cvv, field) => {
    const h = makeBookings();
    const booking = book(h);
    const error = await rejection(h.service.executePayment(payInput(booking, { paymentMethodToken, cvv })));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.details?.[0]?.field).toBe(field);
    expect(h.service.counts().paymentsInFlight).toBe(0);
    expect((await pay(h, booking)).finalStatus).toBe('SUCCESS');
  });

  it('draws the delay uniformly from [min, max] with the injected random source', async () => {
    const random = scriptedRandom(0.5, 0, 0.999999);
    const h = makeBookings({ config: { mockMinDelayMs: 500, mockMaxDelayMs: 1500 }, random });
    const times: number[] = [];
    for (const userId of ['u1', 'u2', 'u3']) {
      const booking = book(h, 1, userId);
      const state = track(h.service.executePayment(payInput(booking)));
      const start = h.clock.now();
      while (!state.settled) {
        h.clock.advance(1);
        await flush();
      }
      times.push(h.clock.now() - start);
    }
    expect(times).toEqual([1000, 500, 1500]);
    expect(random.calls).toBe(3);
  });

  it('with both delays 0, answers on the next microtask without the clock moving', async () => {
    const h = makeBookings({ config: { mockMinDelayMs: 0, mockMaxDelayMs: 0 }, random: scriptedRandom() });
    const booking = book(h);
    const result = await h.service.executePayment(payInput(booking));
    expect(result.pgMockData.processedAt).toBe(T0);
    expect(h.clock.now()).toBe(T0);
  });

  describe('guards', () => {
    it('NOT_FOUND for an unknown booking, FORBIDDEN for another user’s', async () => {
      const h = makeBookings();
      const booking = book(h);
      expect((await rejection(h.service.executePayment(payInput(booking, { bookingId: 'bk_nope' })))).code).toBe('NOT_FOUND');
      expect((await rejection(h.service.executePayment(payInput(booking, { userId: OTHER })))).code).toBe('FORBIDDEN');
      expect(h.service.counts().paymentsInFlight).toBe(0);
    });

    it('PAYMENT_ALREADY_PROCESSED while in flight, once decided, and once confirmed or failed', async () => {
      const h = makeBookings();
      const booking = book(h);
      const first = h.service.executePayment(payInput(booking));
      const second = await rejection(h.service.executePayment(payInput(booking)));
      expect(second).toMatchObject({ code: 'PAYMENT_ALREADY_PROCESSED', message: `A payment for booking ${booking.id} is already in progress.` });
      h.clock.advance(PAY_DELAY);
      await first;
      const decided = await rejection(h.service.executePayment(payInput(booking)));
      expect(decided).toMatchObject({ code: 'PAYMENT_ALREADY_PROCESSED', message: `The payment for booking ${booking.id} has already been processed (SUCCESS).` });
      h.clock.advance(50);
      const confirmed = await rejection(h.service.executePayment(payInput(booking)));
      expect(confirmed.message).toBe(`Booking ${booking.id} is confirmed; only a pending, unpaid booking can be paid or cancelled.`);

      const failing = book(h);
      await pay(h, failing, { cvv: '442' });
      h.clock.advance(50);
      expect((await rejection(h.service.executePayment(payInput(failing)))).code).toBe('PAYMENT_ALREADY_PROCESSED');

      const cancelled = book(h);
      h.service.cancel({ userId: USER, bookingId: cancelled.id });
      expect((await rejection(h.service.executePayment(payInput(cancelled)))).code).toBe('PAYMENT_ALREADY_PROCESSED');
      expect(h.ledger.entries()).toHaveLength(2);
    });

    it('BOOKING_EXPIRED once the hold has passed: the booking is expired on the spot', async () => {
      const h = makeBookings();
      const booking = book(h);
      h.clock.advance(HOLD - 1);
      expect(h.service.get(booking.id).status).toBe('pending');
      h.clock.advance(1);
      const error = await rejection(h.service.executePayment(payInput(booking)));
      expect(error).toMatchObject({ code: 'BOOKING_EXPIRED', message: `Booking ${booking.id} expired at 2026-01-15T12:10:00.000Z.` });
      expect(h.events.map((e) => [e.type, e.booking.id, e.booking.status])).toEqual([['booking.expired', booking.id, 'expired']]);
      expect(h.seats.counts('perf_001').held).toBe(0);
      expect((await rejection(h.service.executePayment(payInput(booking)))).code).toBe('BOOKING_EXPIRED');
      expect(h.events).toHaveLength(1);
    });
  });

  it('two concurrent executions for one booking: exactly one proceeds', async () => {
    for (const delay of [0, PAY_DELAY]) {
      const h = makeBookings({ config: { mockMinDelayMs: delay, mockMaxDelayMs: delay } });
      const booking = book(h);
      const results = Promise.allSettled([h.service.executePayment(payInput(booking)), h.service.executePayment(payInput(booking, { cvv: '442' }))]);
      h.clock.advance(delay);
      const [a, b] = await results;
      expect(a).toMatchObject({ status: 'fulfilled', value: { finalStatus: 'SUCCESS' } });
      expect(b).toMatchObject({ status: 'rejected', reason: { code: 'PAYMENT_ALREADY_PROCESSED' } });
      h.clock.advance(50);
      expect(h.service.events(booking.id)).toHaveLength(1);
      expect(h.ledger.entries()).toHaveLength(2);
      expect(h.service.get(booking.id).status).toBe('confirmed');
    }
  });

  it('a payment submitted before the hold lapses completes even if the hold lapses during its delay', async () => {
    const h = makeBookings();
    h.service.start();
    const booking = book(h);
    h.clock.advance(HOLD - 100);
    const result = h.service.executePayment(payInput(booking));
    h.clock.advance(PAY_DELAY); // the sweeper runs at T0 + HOLD, while the payment is in flight
    expect((await result).finalStatus).toBe('SUCCESS');
    h.clock.advance(3000); // past the processor and several sweeps
    expect(h.service.get(booking.id).status).toBe('confirmed');
    expect(h.events.map((e) => e.type)).toEqual(['booking.confirmed']);
    h.service.stop();
  });

  it('a decided payment awaiting its processor keeps its booking from expiring', async () => {
    const h = makeBookings({ config: { eventProcessingDelayMs: 5000 } });
    h.service.start();
    const booking = book(h);
    h.clock.advance(HOLD - PAY_DELAY - 10);
    await pay(h, booking, { cvv: '443' });
    h.clock.advance(1000);
    expect(h.service.get(booking.id).status).toBe('pending');
    expect(h.service.listForUser(USER)[0]!.status).toBe('pending');
    expect(codeOf(() => h.service.cancel({ userId: USER, bookingId: booking.id }))).toBe('PAYMENT_ALREADY_PROCESSED');
    h.clock.advance(4000);
    expect(h.service.get(booking.id).status).toBe('failed');
    h.clock.advance(5000);
    expect(h.events.map((e) => e.type)).toEqual(['booking.failed']);
    h.service.stop();
  });
});

describe('processEvent', () => {
  it('is idempotent: the same event applied twice writes one ledger transaction and one bus event', async () => {
    const h = makeBookings();
    const booking = book(h);
    await pay(h, booking);
    const [event] = h.service.events(booking.id);
    const first = h.service.processEvent(event!.eventId);
    expect(first.processedAt).toBe(T0 + PAY_DELAY);
    expect(h.service.get(booking.id).status).toBe('confirmed');
    h.clock.advance(50); // the scheduled run
    const again = h.service.processEvent(event!.eventId);
    expect(again).toEqual(first);
    expect(h.ledger.entries()).toHaveLength(2);
    expect(new Set(h.ledger.entries().map((e) => e.transactionId)).size).toBe(1);
    expect(h.events.map((e) => e.type)).toEqual(['booking.confirmed']);
    expect(h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 2 });
    expect(h.service.counts().unprocessedEvents).toBe(0);
  });

  it('is idempotent for failures too', async () => {
    const h = makeBookings();
    const booking = book(h);
    await pay(h, booking, { cvv: '000' });
    const other = book(h);
    await pay(h, other, { cvv: '447' });
    h.clock.advance(50);
    const [event] = h.service.events(other.id);
    h.service.processEvent(event!.eventId);
    expect(h.events.map((e) => [e.type, e.booking.id])).toEqual([
      ['booking.confirmed', booking.id],
      ['booking.failed', other.id],
    ]);
    expect(h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 2 });
  });

  it('NOT_FOUND for an unknown event', () => {
    const h = makeBookings();
    expect(codeOf(() => h.service.processEvent('evt_nope'))).toBe('NOT_FOUND');
  });
});

describe('confirmDirect', () => {
  it('after the delay confirms, reserves, writes the ledger and records a processed event in one step', async () => {
    const h = makeBookings();
    const booking = book(h, 3);
    const state = track(h.service.confirmDirect({ userId: USER, bookingId: booking.id, paymentMethod: 'kakao_pay' }));
    h.clock.advance(PAY_DELAY - 1);
    await flush();
    expect(state.settled).toBe(false);
    expect(h.service.get(booking.id).status).toBe('pending');
    h.clock.advance(1);
    await flush();
    const confirmed = state.value!;
    expect(confirmed).toMatchObject({
      id: booking.id,
      status: 'confirmed',
      paymentMethod: 'kakao_pay',
      paymentIntent: { status: 'SUCCESS', pgMockData: { isSuccess: true, failureCode: null, processedAt: T0 + PAY_DELAY } },
    });
    expect(h.service.get(booking.id)).toEqual(confirmed);
    expect(h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 3 });
    expect(h.ledger.balances()).toEqual([
      { account: 'CUSTOMER_PAYABLE', currency: 'KRW', debits: 90000, credits: 0, balance: 90000 },
      { account: 'MERCHANT_BALANCE', currency: 'KRW', debits: 0, credits: 90000, balance: -90000 },
    ]);
    expect(h.service.events(booking.id)).toEqual([
      {
        eventId: expect.stringMatching(EVT_ID),
        type: 'PAYMENT_SUCCEEDED',
        bookingId: booking.id,
        details: { failureCode: null, paymentMethodToken: null, paymentMethod: 'kakao_pay', amount: 90000, currency: 'KRW' },
        createdAt: T0 + PAY_DELAY,
        processedAt: T0 + PAY_DELAY,
      },
    ]);
    expect(h.events).toEqual([{ id: expect.stringMatching(EVT_ID), type: 'booking.confirmed', occurredAt: T0 + PAY_DELAY, booking: confirmed }]);
    h.clock.advance(10_000);
    expect(h.ledger.entries()).toHaveLength(2);
  });

  it('answers NOT_FOUND for an unknown booking and for another user’s', async () => {
    const h = makeBookings();
    const booking = book(h);
    expect((await rejection(h.service.confirmDirect({ userId: USER, bookingId: 'bk_nope', paymentMethod: 'naver_pay' }))).code).toBe('NOT_FOUND');
    expect((await rejection(h.service.confirmDirect({ userId: OTHER, bookingId: booking.id, paymentMethod: 'naver_pay' }))).code).toBe('NOT_FOUND');
  });

  it('answers BOOKING_EXPIRED after the hold and PAYMENT_ALREADY_PROCESSED once paid', async () => {
    const h = makeBookings();
    const booking = book(h);
    const paid = h.service.confirmDirect({ userId: USER, bookingId: booking.id, paymentMethod: 'bank_transfer' });
    h.clock.advance(PAY_DELAY);
    await paid;
    expect((await rejection(h.service.confirmDirect({ userId: USER, bookingId: booking.id, paymentMethod: 'bank_transfer' }))).code).toBe(
      'PAYMENT_ALREADY_PROCESSED',
    );
    expect((await rejection(h.service.executePayment(payInput(booking)))).code).toBe('PAYMENT_ALREADY_PROCESSED');
    const late = book(h);
    h.clock.advance(HOLD);
    expect((await rejection(h.service.confirmDirect({ userId: USER, bookingId: late.id, paymentMethod: 'bank_transfer' }))).code).toBe('BOOKING_EXPIRED');
    expect(h.service.get(late.id).status).toBe('expired');
    expect(h.ledger.entries()).toHaveLength(2);
  });

  it('two concurrent calls: exactly one succeeds, and it also excludes a concurrent executePayment', async () => {
    for (const delay of [0, PAY_DELAY]) {
      const h = makeBookings({ config: { mockMinDelayMs: delay, mockMaxDelayMs: delay } });
      const booking = book(h);
      const input = { userId: USER, bookingId: booking.id, paymentMethod: 'naver_pay' };
      const all = Promise.allSettled([h.service.confirmDirect(input), h.service.confirmDirect(input), h.service.executePayment(payInput(booking))]);
      h.clock.advance(delay);
      const [a, b, c] = await all;
      expect(a.status).toBe('fulfilled');
      expect(b).toMatchObject({ status: 'rejected', reason: { code: 'PAYMENT_ALREADY_PROCESSED' } });
      expect(c).toMatchObject({ status: 'rejected', reason: { code: 'PAYMENT_ALREADY_PROCESSED' } });
      expect(h.ledger.entries()).toHaveLength(2);
      expect(h.events.map((e) => e.type)).toEqual(['booking.confirmed']);
    }
  });
});

describe('cancel', () => {
  it('cancels the caller’s pending booking and frees its seats', () => {
    const h = makeBookings();
    const booking = book(h);
    h.clock.advance(10);
    const cancelled = h.service.cancel({ userId: USER, bookingId: booking.id });
    expect(cancelled).toMatchObject({ id: booking.id, status: 'cancelled', seatIds: ['A1', 'A2'] });
    expect(h.seats.counts('perf_001').held).toBe(0);
    expect(h.events).toEqual([{ id: expect.stringMatching(EVT_ID), type: 'booking.cancelled', occurredAt: T0 + 10, booking: cancelled }]);
    expect(book(h).seatIds).toEqual(['A1', 'A2']);
    expect(h.service.counts().bookings).toEqual({ pending: 1, confirmed: 0, failed: 0, expired: 0, cancelled: 1 });
  });

  it('refuses anything else', async () => {
    const h = makeBookings();
    const booking = book(h);
    expect(codeOf(() => h.service.cancel({ userId: USER, bookingId: 'bk_nope' }))).toBe('NOT_FOUND');
    expect(codeOf(() => h.service.cancel({ userId: OTHER, bookingId: booking.id }))).toBe('FORBIDDEN');

    const inFlight = h.service.executePayment(payInput(booking));
    expect(codeOf(() => h.service.cancel({ userId: USER, bookingId: booking.id }))).toBe('PAYMENT_ALREADY_PROCESSED');
    h.clock.advance(PAY_DELAY + 50);
    await inFlight;
    expect(codeOf(() => h.service.cancel({ userId: USER, bookingId: booking.id }))).toBe('PAYMENT_ALREADY_PROCESSED');

    const twice = book(h);
    h.service.cancel({ userId: USER, bookingId: twice.id });
    expect(codeOf(() => h.service.cancel({ userId: USER, bookingId: twice.id }))).toBe('INVALID_STATE');

    const lapsed = book(h);
    h.clock.advance(HOLD);
    expect(codeOf(() => h.service.cancel({ userId: USER, bookingId: lapsed.id }))).toBe('BOOKING_EXPIRED');
    expect(h.events.map((e) => e.type)).toEqual(['booking.confirmed', 'booking.cancelled', 'booking.expired']);
  });
});

describe('the expiry sweeper', () => {
  it('expires unpaid bookings once their hold has passed, on the injected clock', () => {
    const h = makeBookings();
    h.service.start();
    const first = book(h);
    h.clock.advance(500);
    const second = book(h, 1, OTHER);
    h.clock.advance(HOLD - 501);
    expect(h.events).toEqual([]);
    h.clock.advance(1); // T0 + HOLD: a sweep tick
    expect(h.events.map((e) => [e.type, e.booking.id, e.occurredAt])).toEqual([['booking.expired', first.id, T0 + HOLD]]);
    expect(h.seats.counts('perf_001').held).toBe(1);
    h.clock.advance(1000);
    expect(h.events.map((e) => e.booking.id)).toEqual([first.id, second.id]);
    expect(h.events[1]!.occurredAt).toBe(T0 + HOLD + 1000);
    expect(h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect(h.service.counts().bookings.expired).toBe(2);
    h.service.stop();
  });

  it('honours sweepIntervalMs, starts once and stops', () => {
    const h = makeBookings({ config: { sweepIntervalMs: 250 } });
    h.service.start();
    h.service.start();
    expect(h.clock.pendingTimers).toBe(1);
    const booking = book(h);
    h.clock.advance(HOLD + 250);
    expect(h.events.map((e) => [e.booking.id, e.occurredAt])).toEqual([[booking.id, T0 + HOLD]]);
    h.service.stop();
    expect(h.clock.pendingTimers).toBe(0);
    const later = book(h);
    h.clock.advance(HOLD + 5000);
    expect(h.events).toHaveLength(1);
    expect(h.service.get(later.id).status).toBe('expired'); // lazily, on read
    expect(h.events).toHaveLength(2);
  });

  it('sweep() can be called directly and expires each booking once', () => {
    const h = makeBookings();
    for (let i = 0; i < 5; i++) book(h, 1, `user_${i}`);
    expect(h.service.sweep()).toBe(0);
    h.clock.advance(HOLD);
    expect(h.service.sweep()).toBe(5);
    expect(h.service.sweep()).toBe(0);
    expect(h.events).toHaveLength(5);
  });
});

describe('bounds: eviction of finished bookings', () => {
  /** A confirmed booking (paid and processed), a failed one, a cancelled one and one left pending. */
  async function mixed(h: Harness) {
    const confirmed = book(h, 2);
    await pay(h, confirmed);
    h.clock.advance(50);
    const failed = book(h, 1);
    await pay(h, failed, { cvv: '442' });
    h.clock.advance(50);
    const cancelled = book(h, 1, OTHER);
    h.service.cancel({ userId: OTHER, bookingId: cancelled.id });
    return { confirmed, failed, cancelled };
  }

  it('evicts finished bookings past bookingTtlMs with their events and ledger transaction; debits still equal credits', async () => {
    const h = makeBookings({ config: { bookingTtlMs: 60_000, seatHoldMs: 3_600_000 } });
    const { confirmed, failed, cancelled } = await mixed(h);
    const pending = book(h, 3);
    expect(h.ledger.size).toBe(2);
    expect(h.service.events()).toHaveLength(2);
    expect(h.service.size).toBe(4);

    h.clock.advance(60_000 - 2 * PAY_DELAY - 100 - 1);
    expect(h.service.evict()).toBe(0);
    h.clock.advance(1); // confirmed was created exactly bookingTtlMs ago
    expect(h.service.evict()).toBe(1);
    expect(codeOf(() => h.service.get(confirmed.id))).toBe('NOT_FOUND');
    expect(h.ledger.entries()).toEqual([]);
    expect(h.ledger.balances()).toEqual([]);
    expect(h.ledger.imbalance()).toBe(0);
    expect(h.service.events(confirmed.id)).toEqual([]);
    expect(h.service.events().map((e) => e.bookingId)).toEqual([failed.id]);
    // The seats it bought stay sold.
    expect(h.seats.counts('perf_001')).toMatchObject({ reserved: 2, held: 3 });

    h.clock.advance(10_000);
    expect(h.service.sweep()).toBe(0); // the sweeper evicts too (nothing expired)
    expect(h.service.size).toBe(1);
    expect(h.service.events()).toEqual([]);
    expect(codeOf(() => h.service.get(failed.id))).toBe('NOT_FOUND');
    expect(codeOf(() => h.service.get(cancelled.id))).toBe('NOT_FOUND');
    expect(h.service.listForUser(OTHER)).toEqual([]);
    // A pending booking is never evicted, however old.
    expect(h.service.listForUser(USER).map((b) => [b.id, b.status])).toEqual([[pending.id, 'pending']]);
    expect(h.service.counts().bookings).toEqual({ pending: 1, confirmed: 0, failed: 0, expired: 0, cancelled: 0 });
  });

  it('keeps at most maxBookings: the oldest finished booking makes room, pending ones are never dropped', async () => {
    const h = makeBookings({ config: { maxBookings: 3 } });
    const { confirmed, failed, cancelled } = await mixed(h);
    const fourth = book(h, 1);
    expect(h.service.size).toBe(3);
    expect(codeOf(() => h.service.get(confirmed.id))).toBe('NOT_FOUND');
    expect(h.ledger.size).toBe(0);
    expect(h.ledger.imbalance()).toBe(0);
    const fifth = book(h, 1);
    expect(codeOf(() => h.service.get(failed.id))).toBe('NOT_FOUND');
    const sixth = book(h, 1);
    expect(codeOf(() => h.service.get(cancelled.id))).toBe('NOT_FOUND');
    // Three pending bookings: nothing finished is left to evict, so a fourth is kept beyond the bound.
    const seventh = book(h, 1);
    expect(h.service.size).toBe(4);
    expect([fourth, fifth, sixth, seventh].map((b) => h.service.get(b.id).status)).toEqual(['pending', 'pending', 'pending', 'pending']);
    expect(h.service.counts().bookings).toEqual({ pending: 4, confirmed: 0, failed: 0, expired: 0, cancelled: 0 });
  });

  it('keeps a finished booking while a payment is in flight or an event is unprocessed', async () => {
    const h = makeBookings({ config: { bookingTtlMs: 0, maxBookings: 1 } });
    const booking = book(h, 1);
    const paid = pay(h, booking); // decided: the booking is pending until its event is processed
    await paid;
    expect(h.service.counts().unprocessedEvents).toBe(1);
    const other = book(h, 1, OTHER);
    h.service.cancel({ userId: OTHER, bookingId: other.id });
    expect(h.service.size).toBe(2);
    h.clock.advance(50); // processed: confirmed, and now evictable (TTL 0, max 1)
    expect(h.service.get(booking.id).status).toBe('confirmed');
    expect(h.service.evict()).toBe(2);
    expect(h.service.size).toBe(0);
    expect(h.ledger.size).toBe(0);
    expect(h.timerErrors).toEqual([]);
  });

  it('a random mix with tight bounds: the ledger holds exactly the kept confirmed bookings and stays balanced', async () => {
    const h = makeBookings({ config: { bookingTtlMs: 30_000, maxBookings: 40, seatHoldMs: 10_000, mockMinDelayMs: 0, mockMaxDelayMs: 0, eventProcessingDelayMs: 10 } });
    h.service.start();
    const rng = createRandom(7);
    const users = ['u0', 'u1', 'u2'];
    const kept = (): Booking[] => users.flatMap((u) => h.service.listForUser(u));
    for (let step = 0; step < 1500; step++) {
      const roll = rng.next();
      const pending = kept().filter((b) => b.status === 'pending');
      if (roll < 0.35 || pending.length === 0) {
        try {
          book(h, 1 + Math.floor(rng.next() * 4), users[Math.floor(rng.next() * users.length)]!);
        } catch (error) {
          expect((error as DomainError).code).toBe('SOLD_OUT');
        }
      } else if (roll < 0.7) {
        const target = pending[Math.floor(rng.next() * pending.length)]!;
        await h.service.executePayment(payInput(target, { cvv: `12${Math.floor(rng.next() * 10)}` })).catch(() => undefined);
      } else if (roll < 0.8) {
        const target = pending[Math.floor(rng.next() * pending.length)]!;
        try {
          h.service.cancel({ userId: target.userId, bookingId: target.id });
        } catch {
          // a payment in flight or decided
        }
      } else {
        h.clock.advance(Math.floor(rng.next() * 4000));
      }
      await flush();
      const all = kept();
      const confirmed = all.filter((b) => b.status === 'confirmed');
      expect(h.ledger.imbalance()).toBe(0);
      expect(h.ledger.size).toBe(2 * confirmed.length);
      const merchant = h.ledger.balances().find((b) => b.account === 'MERCHANT_BALANCE');
      expect(merchant?.credits ?? 0).toBe(confirmed.reduce((sum, b) => sum + b.totalAmount, 0));
      expect(h.service.size).toBe(all.length);
      expect(all.length).toBeLessThanOrEqual(40 + all.filter((b) => b.status === 'pending').length);
      expect(h.service.events().every((e) => all.some((b) => b.id === e.bookingId))).toBe(true);
    }
    h.service.stop();
    expect(h.timerErrors).toEqual([]);
  });
});

describe('observer', () => {
  it('is told about bookings, decided payments and processed events; a throwing observer breaks nothing', async () => {
    const seen: string[] = [];
    const h = makeBookings();
    const errors: Array<{ error: unknown; context: string }> = [];
    const clock = h.clock;
    const ids = createIdFactory(clock);
    const seats = new SeatInventory(DEFAULT_PERFORMANCES);
    const ledger = new Ledger({ clock, ids });
    const service = new BookingService({
      clock,
      random: createRandom(1),
      ids,
      bus: new EventBus(),
      seats,
      ledger,
      performances: DEFAULT_PERFORMANCES,
      config: CONFIG,
      onError: (error, context) => errors.push({ error, context }),
      observer: {
        onBooked: (b) => seen.push(`booked ${b.status} ${b.quantity}`),
        onPayment: (p) => seen.push(`payment ${p.kind} ${p.isSuccess} ${p.failureCode}`),
        onEventProcessed: (e) => {
          seen.push(`processed ${e.type} lag ${(e.processedAt as number) - e.createdAt}`);
          throw new Error('observer bug');
        },
      },
    });
    const a = service.book({ userId: USER, performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' });
    const b = service.book({ userId: USER, performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' });
    const paying = service.executePayment(payInput(a, { cvv: '442' }));
    clock.advance(PAY_DELAY);
    await paying;
    clock.advance(50);
    const direct = service.confirmDirect({ userId: USER, bookingId: b.id, paymentMethod: 'kakao_pay' });
    clock.advance(PAY_DELAY);
    await direct;
    expect(seen).toEqual(['booked pending 2', 'booked pending 1', 'payment execute false DECLINE_2', 'processed PAYMENT_FAILED lag 50', 'payment direct true null']);
    expect(service.get(a.id).status).toBe('failed');
    expect(service.get(b.id).status).toBe('confirmed');
    expect(errors.map((e) => e.context)).toEqual(['booking observer onEventProcessed']);
  });
});

describe('queries', () => {
  it('get: NOT_FOUND for an unknown id; returns copies', () => {
    const h = makeBookings();
    expect(codeOf(() => h.service.get('bk_nope'))).toBe('NOT_FOUND');
    const booking = book(h);
    const copy = h.service.get(booking.id);
    copy.seatIds.push('Z9');
    copy.status = 'confirmed';
    expect(h.service.get(booking.id)).toEqual(booking);
  });

  it('listForUser: the user’s bookings, newest first, lapsed holds expired', () => {
    const h = makeBookings();
    const a = book(h, 1);
    h.clock.advance(1000);
    const b = book(h, 2);
    book(h, 1, OTHER);
    h.clock.advance(HOLD - 500);
    expect(h.service.listForUser(USER).map((x) => [x.id, x.status])).toEqual([
      [b.id, 'pending'],
      [a.id, 'expired'],
    ]);
    expect(h.service.listForUser('nobody')).toEqual([]);
  });

  it('events: all of them in order, or one booking’s', async () => {
    const h = makeBookings();
    const a = book(h);
    const b = book(h);
    await pay(h, a);
    await pay(h, b, { cvv: '442' });
    expect(h.service.events().map((e) => [e.bookingId, e.type])).toEqual([
      [a.id, 'PAYMENT_SUCCEEDED'],
      [b.id, 'PAYMENT_FAILED'],
    ]);
    expect(h.service.events(b.id)).toHaveLength(1);
    expect(h.service.events('bk_nope')).toEqual([]);
  });

  it('performances: the catalog, NOT_FOUND for an unknown one', () => {
    const h = makeBookings();
    expect(h.service.performances().map((p) => p.id)).toEqual(['perf_001', 'perf_002', 'perf_003']);
    expect(h.service.performance('perf_003')).toMatchObject({ seatsPerRow: 10 });
    expect(codeOf(() => h.service.performance('perf_999'))).toBe('NOT_FOUND');
  });
});

describe('invariants under a random mix of operations', () => {
  const CATALOG: Performance[] = [
    { id: 'big', title: 'Big', venue: 'Hall', startsAt: '2026-03-01T10:00:00.000Z', rows: [...'ABCDEFGHIJKLMNOPQRST'], seatsPerRow: 60, priceMinor: 30000, currency: 'KRW' },
    { id: 'mid', title: 'Mid', venue: 'Hall', startsAt: '2026-03-01T10:00:00.000Z', rows: ['A', 'B', 'C', 'D', 'E'], seatsPerRow: 20, priceMinor: 45000, currency: 'KRW' },
    { id: 'small', title: 'Small', venue: 'Hall', startsAt: '2026-03-01T10:00:00.000Z', rows: ['A', 'B'], seatsPerRow: 10, priceMinor: 20000, currency: 'KRW' },
  ];
  const USERS = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];

  it.each([
    ['with processing delays', { mockMinDelayMs: 100, mockMaxDelayMs: 900, eventProcessingDelayMs: 50 }],
    ['without processing delays', { mockMinDelayMs: 0, mockMaxDelayMs: 0, eventProcessingDelayMs: 0 }],
  ])('3,000+ operations %s keep debits = credits, seats consistent with bookings, and sales = merchant credits', async (_name, config) => {
    const h = makeBookings({ config: { ...config, seatHoldMs: 20_000 }, performances: CATALOG, random: createRandom(99) });
    h.service.start();
    const rng = createRandom(2026);
    const pick = <T,>(items: readonly T[]): T => items[Math.floor(rng.next() * items.length)] as T;
    /** The last known state of every booking, from `book` and from the bus: no reads that could expire anything. */
    const mirror = new Map<string, Booking>();
    const busMirror = (event: BookingEvent): void => void mirror.set(event.booking.id, event.booking);
    let seen = 0;
    const tally: Record<string, number> = {};
    const count = (key: string): void => void (tally[key] = (tally[key] ?? 0) + 1);
    const pendingIds = (): string[] => [...mirror.values()].filter((b) => b.status === 'pending').map((b) => b.id);

    const check = (): void => {
      for (; seen < h.events.length; seen++) busMirror(h.events[seen]!);
      expect(h.ledger.imbalance()).toBe(0);
      const byStatus: Record<BookingStatus, number> = { pending: 0, confirmed: 0, failed: 0, expired: 0, cancelled: 0 };
      let heldSeats = 0;
      let reservedSeats = 0;
      let sold = 0;
      const owner = new Map<string, Booking>();
      for (const b of mirror.values()) {
        byStatus[b.status] += 1;
        if (b.status === 'pending') heldSeats += b.quantity;
        if (b.status === 'confirmed') {
          reservedSeats += b.quantity;
          sold += b.totalAmount;
        }
        if (b.status === 'pending' || b.status === 'confirmed') {
          for (const seat of b.seatIds) owner.set(`${b.performanceId}/${seat}`, b);
        }
      }
      expect(h.service.counts().bookings).toEqual(byStatus);
      expect(h.service.counts().seats).toMatchObject({ held: heldSeats, reserved: reservedSeats });
      // Every seat is in exactly the state its (single) owning booking implies: plain comparisons, one expect.
      const wrong: string[] = [];
      for (const p of CATALOG) {
        for (const seat of h.seats.seatsOf(p.id)) {
          const b = owner.get(`${p.id}/${seat.seatId}`);
          const want =
            b === undefined
              ? ['available', null, null]
              : b.status === 'pending'
                ? ['locked', b.id, b.expiresAt]
                : ['reserved', b.id, null];
          if (seat.status !== want[0] || seat.bookingId !== want[1] || seat.lockedUntil !== want[2]) {
            wrong.push(`${p.id}/${seat.seatId}: ${seat.status} ${seat.bookingId} ${seat.lockedUntil}, expected ${want.join(' ')}`);
          }
        }
      }
      expect(wrong).toEqual([]);
      const balances = h.ledger.balances();
      const merchant = balances.find((x) => x.account === 'MERCHANT_BALANCE');
      const payable = balances.find((x) => x.account === 'CUSTOMER_PAYABLE');
      expect(merchant?.credits ?? 0).toBe(sold);
      expect(payable?.debits ?? 0).toBe(sold);
      expect(h.ledger.size).toBe(2 * byStatus.confirmed);
    };

    const inFlight: Array<Promise<unknown>> = [];
    const swallow = (promise: Promise<unknown>, label: string): void => {
      inFlight.push(
        promise.then(
          () => count(`${label}:ok`),
          (error: unknown) => count(`${label}:${error instanceof DomainError ? error.code : 'other'}`),
        ),
      );
    };

    for (let step = 0; step < 3200; step++) {
      const roll = rng.next();
      const pending = pendingIds();
      if (roll < 0.3 || pending.length === 0) {
        try {
          const booking = h.service.book({ userId: pick(USERS), performanceId: pick(CATALOG).id, quantity: 1 + Math.floor(rng.next() * 6), paymentMethod: 'CREDIT_CARD' });
          mirror.set(booking.id, booking);
          count('book:ok');
        } catch (error) {
          count(`book:${(error as DomainError).code}`);
        }
      } else if (roll < 0.55) {
        const target = mirror.get(pick(pending))!;
        const userId = rng.next() < 0.05 ? 'intruder' : target.userId;
        const cvv = `12${Math.floor(rng.next() * 10)}`;
        const paymentMethodToken = pick(['tok_visa', 'tok_mastercard', 'tok_chargeDeclined', 'tok_visa_creditCard', '4242424242424242']);
        swallow(h.service.executePayment({ userId, bookingId: target.id, paymentMethodToken, cvv }), 'execute');
        if (rng.next() < 0.1) swallow(h.service.executePayment({ userId, bookingId: target.id, paymentMethodToken, cvv }), 'execute-again');
      } else if (roll < 0.65) {
        const target = mirror.get(pick(pending))!;
        swallow(h.service.confirmDirect({ userId: target.userId, bookingId: target.id, paymentMethod: 'kakao_pay' }), 'direct');
      } else if (roll < 0.75) {
        const target = mirror.get(pick(pending))!;
        try {
          h.service.cancel({ userId: target.userId, bookingId: target.id });
          count('cancel:ok');
        } catch (error) {
          count(`cancel:${(error as DomainError).code}`);
        }
      } else if (roll < 0.97) {
        h.clock.advance(Math.floor(rng.next() * 1500));
      } else {
        h.clock.advance(20_000); // every hold lapses
      }
      await flush();
      check();
    }
    h.clock.advance(25_000);
    await flush();
    await Promise.all(inFlight);
    check();
    h.service.stop();

    const counts = h.service.counts();
    expect(counts).toMatchObject({ paymentsInFlight: 0, unprocessedEvents: 0, bookings: { pending: 0 } });
    for (const status of ['confirmed', 'failed', 'expired', 'cancelled'] as const) expect(counts.bookings[status]).toBeGreaterThan(20);
    for (const key of ['book:ok', 'book:SOLD_OUT', 'execute:ok', 'execute:FORBIDDEN', 'execute:PAYMENT_ALREADY_PROCESSED', 'direct:ok', 'cancel:ok']) {
      expect(tally[key], key).toBeGreaterThan(0);
    }
    expect(h.busErrors).toEqual([]);
    expect(h.timerErrors).toEqual([]);
  });
});
