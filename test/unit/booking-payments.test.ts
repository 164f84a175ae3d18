import { LEASE_MS } from '../../src/core/scheduler.ts';
import { describe, expect, it } from 'vitest';
import type { Booking, InboxEvent, PgMockData } from '../../src/core/bookings/booking.ts';
import { PROCESS_JOB } from '../../src/core/bookings/inbox.ts';
import { EXPIRE_JOB } from '../../src/core/bookings/service.ts';
import { MAX_ATTEMPTS } from '../../src/core/scheduler.ts';
import type { DomainEvent } from '../../src/core/events.ts';
import { derivedId } from '../../src/core/ids.ts';
import { BookingPayments } from '../../src/core/bookings/payments.ts';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { createRandom } from '../../src/core/random.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { book, BOOKING_CONFIG, codeOf, errorOf, EVT_ID, HOLD, makeBookings, OTHER, pay, PAY_DELAY, payInput, scriptedRandom, track, USER } from './support.ts';

/**
 * Paying bookings (executePayment, confirmDirect), the inbox processor and the bus events of
 * payments, over memory stores. The harness is `makeBookings` in support.ts.
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

/** One line per published event, enough to read an order of events at a glance. */
function summary(event: DomainEvent): string {
  switch (event.type) {
    case 'booking.payment_decided':
      return `${event.type} ${event.kind} ${event.isSuccess} ${event.failureCode}`;
    case 'booking.event_processed':
      return `${event.type} ${event.event.type} lag ${(event.event.processedAt as number) - event.event.createdAt}`;
    case 'booking.created':
    case 'booking.confirmed':
    case 'booking.failed':
    case 'booking.expired':
    case 'booking.cancelled':
      return `${event.type} ${event.booking.status} ${event.booking.quantity}`;
    default:
      return event.type;
  }
}

describe('executePayment', () => {
  it('answers SUCCESS after the delay, records the event, and the processor confirms 50 ms later', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    const state = track(h.payments.executePayment(payInput(booking)));
    await h.clock.advance(PAY_DELAY - 1);
    expect(state.settled).toBe(false);
    expect(h.payments.inFlight).toBe(1);
    expect(await h.service.counts()).toMatchObject({ paymentsInFlight: 1, unprocessedEvents: 0 });
    expect(await h.service.get(booking.id)).toEqual({ ...booking, paymentInFlight: 'execute' });
    await h.clock.advance(1);
    const pgMockData: PgMockData = { isSuccess: true, failureCode: null, processedAt: T0 + PAY_DELAY };
    expect(state.value).toEqual({ finalStatus: 'SUCCESS', bookingId: booking.id, pgMockData });
    const decided: Booking = { ...booking, paymentIntent: { status: 'SUCCESS', pgMockData } };
    expect(await h.service.get(booking.id)).toEqual(decided);
    const recorded: InboxEvent = {
      eventId: expect.stringMatching(EVT_ID),
      type: 'PAYMENT_SUCCEEDED',
      bookingId: booking.id,
      details: { failureCode: null, paymentMethodToken: 'tok_visa_creditCard', paymentMethod: 'CREDIT_CARD', amount: 60000, currency: 'KRW' },
      createdAt: T0 + PAY_DELAY,
      processedAt: null,
    };
    const [event] = await h.service.events(booking.id);
    expect(event).toEqual(recorded);
    expect(JSON.stringify(await h.service.events(booking.id))).not.toMatch(/cvv|"120"/);
    expect(h.payments.inFlight).toBe(0);
    expect(await h.service.counts()).toMatchObject({ paymentsInFlight: 0, unprocessedEvents: 1 });
    expect(await h.scheduler.pending(PROCESS_JOB)).toBe(1);
    expect(await h.ledger.entries()).toEqual([]);

    await h.clock.advance(49);
    expect((await h.service.get(booking.id)).status).toBe('pending');
    await h.clock.advance(1);
    const confirmed = await h.service.get(booking.id);
    expect(confirmed).toEqual({ ...decided, status: 'confirmed', settledAt: T0 + PAY_DELAY + 50 });
    const processed = { ...event!, processedAt: T0 + PAY_DELAY + 50 };
    expect(await h.service.events(booking.id)).toEqual([processed]);
    expect((await h.seats.seatsOf('perf_001'))?.slice(0, 2).map((s) => [s.seatId, s.status, s.bookingId, s.lockedUntil])).toEqual([
      ['A1', 'reserved', booking.id, null],
      ['A2', 'reserved', booking.id, null],
    ]);
    const entries = await h.ledger.entries(booking.id);
    expect(entries.map((e) => [e.account, e.direction, e.amount, e.currency])).toEqual([
      ['CUSTOMER_PAYABLE', 'DEBIT', 60000, 'KRW'],
      ['MERCHANT_BALANCE', 'CREDIT', 60000, 'KRW'],
    ]);
    expect(entries[0]!.transactionId).toBe(entries[1]!.transactionId);
    expect(h.published).toEqual([
      { id: expect.stringMatching(EVT_ID), type: 'booking.created', occurredAt: T0, booking },
      { id: expect.stringMatching(EVT_ID), type: 'booking.payment_decided', occurredAt: T0 + PAY_DELAY, booking: decided, kind: 'execute', isSuccess: true, failureCode: null },
      { id: expect.stringMatching(EVT_ID), type: 'booking.confirmed', occurredAt: T0 + PAY_DELAY + 50, booking: confirmed },
      { id: expect.stringMatching(EVT_ID), type: 'booking.event_processed', occurredAt: T0 + PAY_DELAY + 50, event: processed },
    ]);
    expect(await h.service.counts()).toEqual({
      bookings: { pending: 0, confirmed: 1, failed: 0, expired: 0, cancelled: 0 },
      paymentsInFlight: 0,
      unprocessedEvents: 0,
      seats: { total: 420, available: 418, held: 0, reserved: 2 },
    });
    expect(await h.scheduler.pending(PROCESS_JOB)).toBe(0);
    expect(h.busErrors).toEqual([]);
    expect(h.jobErrors).toEqual([]);
  });

  it('answers FAILURE with DECLINE_<d> for a CVV ending in another digit; the processor fails the booking and frees its seats', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    const pgMockData: PgMockData = { isSuccess: false, failureCode: 'DECLINE_2', processedAt: T0 + PAY_DELAY };
    expect(await pay(h, booking, { cvv: '442' })).toEqual({ finalStatus: 'FAILURE', bookingId: booking.id, pgMockData });
    expect((await h.service.events(booking.id))[0]).toMatchObject({ type: 'PAYMENT_FAILED', details: { failureCode: 'DECLINE_2' }, processedAt: null });
    await h.clock.advance(50);
    const failed = await h.service.get(booking.id);
    expect(failed).toEqual({ ...booking, status: 'failed', paymentIntent: { status: 'FAILURE', pgMockData }, settledAt: T0 + PAY_DELAY + 50 });
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect(await h.ledger.entries()).toEqual([]);
    expect(h.published.map(summary)).toEqual([
      'booking.created pending 2',
      'booking.payment_decided execute false DECLINE_2',
      'booking.failed failed 2',
      'booking.event_processed PAYMENT_FAILED lag 50',
    ]);
    expect(h.events[1]).toEqual({ id: expect.stringMatching(EVT_ID), type: 'booking.failed', occurredAt: T0 + PAY_DELAY + 50, booking: failed });
    expect((await book(h)).seatIds).toEqual(['A1', 'A2']);
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
    const h = await makeBookings();
    const result = await pay(h, await book(h), { paymentMethodToken, cvv });
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
    const h = await makeBookings();
    const booking = await book(h);
    const error = await errorOf(() => h.payments.executePayment(payInput(booking, { paymentMethodToken, cvv })));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.details?.[0]?.field).toBe(field);
    expect(await h.service.get(booking.id)).toEqual(booking);
    expect(await h.service.counts()).toMatchObject({ paymentsInFlight: 0, unprocessedEvents: 0 });
    expect(h.published.map((e) => e.type)).toEqual(['booking.created']);
    expect((await pay(h, booking)).finalStatus).toBe('SUCCESS');
  });

  it('draws the delay uniformly from [min, max] with the injected random source', async () => {
    const random = scriptedRandom(0.5, 0, 0.999999);
    const h = await makeBookings({ config: { mockMinDelayMs: 500, mockMaxDelayMs: 1500 }, random });
    const times: number[] = [];
    for (const userId of ['u1', 'u2', 'u3']) {
      const booking = await book(h, 1, userId);
      const state = track(h.payments.executePayment(payInput(booking)));
      const start = h.clock.now();
      while (!state.settled) await h.clock.advance(1);
      times.push(h.clock.now() - start);
    }
    expect(times).toEqual([1000, 500, 1500]);
    expect(random.calls).toBe(3);
  });

  it('with both delays 0, answers without the clock moving', async () => {
    const h = await makeBookings({ config: { mockMinDelayMs: 0, mockMaxDelayMs: 0 }, random: scriptedRandom() });
    const booking = await book(h);
    const result = await h.payments.executePayment(payInput(booking));
    expect(result.pgMockData.processedAt).toBe(T0);
    expect(h.clock.now()).toBe(T0);
  });

  describe('guards', () => {
    it('NOT_FOUND for an unknown booking, FORBIDDEN for another user’s', async () => {
      const h = await makeBookings();
      const booking = await book(h);
      expect(await codeOf(() => h.payments.executePayment(payInput(booking, { bookingId: 'bk_nope' })))).toBe('NOT_FOUND');
      expect(await codeOf(() => h.payments.executePayment(payInput(booking, { userId: OTHER })))).toBe('FORBIDDEN');
      expect(await h.service.counts()).toMatchObject({ paymentsInFlight: 0 });
      expect(h.payments.inFlight).toBe(0);
    });

    it('PAYMENT_ALREADY_PROCESSED while in flight, once decided, and once confirmed or failed', async () => {
      const h = await makeBookings();
      const booking = await book(h);
      const first = h.payments.executePayment(payInput(booking));
      expect(await errorOf(() => h.payments.executePayment(payInput(booking)))).toMatchObject({
        code: 'PAYMENT_ALREADY_PROCESSED',
        message: `A payment for booking ${booking.id} is already in progress.`,
      });
      await h.clock.advance(PAY_DELAY);
      await first;
      expect(await errorOf(() => h.payments.executePayment(payInput(booking)))).toMatchObject({
        code: 'PAYMENT_ALREADY_PROCESSED',
        message: `The payment for booking ${booking.id} has already been processed (SUCCESS).`,
      });
      await h.clock.advance(50);
      expect((await errorOf(() => h.payments.executePayment(payInput(booking)))).message).toBe(
        `Booking ${booking.id} is confirmed; only a pending, unpaid booking can be paid or cancelled.`,
      );

      const failing = await book(h);
      await pay(h, failing, { cvv: '442' });
      await h.clock.advance(50);
      expect(await codeOf(() => h.payments.executePayment(payInput(failing)))).toBe('PAYMENT_ALREADY_PROCESSED');

      const cancelled = await book(h);
      await h.service.cancel({ userId: USER, bookingId: cancelled.id });
      expect(await codeOf(() => h.payments.executePayment(payInput(cancelled)))).toBe('PAYMENT_ALREADY_PROCESSED');
      expect(await h.ledger.entries()).toHaveLength(2);
      expect(h.published.filter((e) => e.type === 'booking.payment_decided')).toHaveLength(2);
    });

    it('BOOKING_EXPIRED once the hold has passed: a booking no job has expired yet is expired on the spot', async () => {
      const h = await makeBookings();
      h.scheduler.stop(); // so the payment, not the expiry job, is what finds the hold lapsed
      const booking = await book(h);
      await h.clock.advance(HOLD - 1);
      expect((await h.service.get(booking.id)).status).toBe('pending');
      await h.clock.advance(1);
      expect(await errorOf(() => h.payments.executePayment(payInput(booking)))).toMatchObject({
        code: 'BOOKING_EXPIRED',
        message: `Booking ${booking.id} expired at 2026-01-15T12:10:00.000Z.`,
      });
      const expired = { ...booking, status: 'expired', settledAt: T0 + HOLD };
      expect(h.events.slice(1)).toEqual([{ id: derivedId('evt', T0 + HOLD, booking.id), type: 'booking.expired', occurredAt: T0 + HOLD, booking: expired }]);
      expect(await h.service.get(booking.id)).toEqual(expired);
      expect((await h.seats.counts('perf_001'))?.held).toBe(0);
      expect(await codeOf(() => h.payments.executePayment(payInput(booking)))).toBe('BOOKING_EXPIRED');
      expect(h.events).toHaveLength(2);
      expect(await h.service.counts()).toMatchObject({ paymentsInFlight: 0 });
    });
  });

  it('two concurrent executions for one booking: exactly one proceeds', async () => {
    for (const delay of [0, PAY_DELAY]) {
      const h = await makeBookings({ config: { mockMinDelayMs: delay, mockMaxDelayMs: delay } });
      const booking = await book(h);
      const results = Promise.allSettled([h.payments.executePayment(payInput(booking)), h.payments.executePayment(payInput(booking, { cvv: '442' }))]);
      await h.clock.advance(delay);
      const [a, b] = await results;
      expect(a).toMatchObject({ status: 'fulfilled', value: { finalStatus: 'SUCCESS' } });
      expect(b).toMatchObject({ status: 'rejected', reason: { code: 'PAYMENT_ALREADY_PROCESSED' } });
      await h.clock.advance(50);
      expect(await h.service.events(booking.id)).toHaveLength(1);
      expect(await h.ledger.entries()).toHaveLength(2);
      expect((await h.service.get(booking.id)).status).toBe('confirmed');
      expect(h.published.map(summary)).toEqual([
        'booking.created pending 2',
        'booking.payment_decided execute true null',
        'booking.confirmed confirmed 2',
        'booking.event_processed PAYMENT_SUCCEEDED lag 50',
      ]);
    }
  });

  it('a payment submitted before the hold lapses completes even if the hold lapses during its delay', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    await h.clock.advance(HOLD - 100);
    const result = h.payments.executePayment(payInput(booking));
    await h.clock.advance(PAY_DELAY); // the expiry job runs at T0 + HOLD, while the payment is in flight: it looks again later
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);
    expect((await result).finalStatus).toBe('SUCCESS');
    await h.clock.advance(3000); // past the processor
    expect((await h.service.get(booking.id)).status).toBe('confirmed');
    await h.clock.advance(LEASE_MS); // the look again finds it confirmed
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.confirmed']);
    expect(h.jobErrors).toEqual([]);
  });

  it('a decided payment awaiting its processor keeps its booking from expiring', async () => {
    const h = await makeBookings({ config: { eventProcessingDelayMs: 5000 } });
    const booking = await book(h);
    await h.clock.advance(HOLD - PAY_DELAY - 10);
    await pay(h, booking, { cvv: '443' });
    await h.clock.advance(1000); // the expiry job ran at T0 + HOLD, and looks again a lease after the event is due
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);
    expect((await h.service.get(booking.id)).status).toBe('pending');
    expect((await h.service.listForUser(USER, { limit: 10 })).data.map((b) => b.status)).toEqual(['pending']);
    expect(await codeOf(() => h.service.cancel({ userId: USER, bookingId: booking.id }))).toBe('PAYMENT_ALREADY_PROCESSED');
    await h.clock.advance(4000);
    expect((await h.service.get(booking.id)).status).toBe('failed');
    await h.clock.advance(5000);
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.failed']);
    await h.clock.advance(LEASE_MS);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.jobErrors).toEqual([]);
  });
});

describe('inbox.process', () => {
  it('is idempotent: the same event applied twice writes one ledger transaction and publishes once', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    await pay(h, booking);
    const [event] = await h.service.events(booking.id);
    const first = await h.inbox.process(event!.eventId);
    expect(first).toEqual({ ...event, processedAt: T0 + PAY_DELAY });
    expect((await h.service.get(booking.id)).status).toBe('confirmed');
    await h.clock.advance(50); // the scheduled run finds it processed
    expect(await h.scheduler.pending(PROCESS_JOB)).toBe(0);
    const again = await h.inbox.process(event!.eventId);
    expect(again).toEqual(first);
    expect(await h.ledger.entries()).toHaveLength(2);
    expect(new Set((await h.ledger.entries()).map((e) => e.transactionId)).size).toBe(1);
    expect(h.published.map(summary)).toEqual([
      'booking.created pending 2',
      'booking.payment_decided execute true null',
      'booking.confirmed confirmed 2',
      'booking.event_processed PAYMENT_SUCCEEDED lag 0',
    ]);
    expect(await h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 2 });
    expect(await h.service.counts()).toMatchObject({ unprocessedEvents: 0 });
    expect(h.jobErrors).toEqual([]);
  });

  it('is idempotent when applied twice at once (a retried job racing a direct call)', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    await pay(h, booking);
    const [event] = await h.service.events(booking.id);
    const [a, b] = await Promise.all([h.inbox.process(event!.eventId), h.inbox.process(event!.eventId)]);
    expect(a).toEqual({ ...event, processedAt: T0 + PAY_DELAY });
    expect(b).toEqual(a);
    expect(await h.ledger.entries()).toHaveLength(2);
    expect(h.published.map(summary)).toEqual([
      'booking.created pending 2',
      'booking.payment_decided execute true null',
      'booking.confirmed confirmed 2',
      'booking.event_processed PAYMENT_SUCCEEDED lag 0',
    ]);
    expect(await h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 2 });
  });

  it('is idempotent for failures too', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    await pay(h, booking, { cvv: '000' });
    const other = await book(h);
    await pay(h, other, { cvv: '447' });
    await h.clock.advance(50);
    const [event] = await h.service.events(other.id);
    expect(await h.inbox.process(event!.eventId)).toEqual(event);
    expect(h.events.map((e) => [e.type, e.booking.id])).toEqual([
      ['booking.created', booking.id],
      ['booking.created', other.id],
      ['booking.confirmed', booking.id],
      ['booking.failed', other.id],
    ]);
    expect(h.published.filter((e) => e.type === 'booking.event_processed')).toHaveLength(2);
    expect(await h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 2 });
  });

  it('NOT_FOUND for an unknown event', async () => {
    const h = await makeBookings();
    expect(await codeOf(() => h.inbox.process('evt_nope'))).toBe('NOT_FOUND');
  });
});

describe('confirmDirect', () => {
  it('after the delay confirms, reserves, writes the ledger and records a processed event in one step', async () => {
    const h = await makeBookings();
    const booking = await book(h, 3);
    const state = track(h.payments.confirmDirect({ userId: USER, bookingId: booking.id, paymentMethod: 'kakao_pay' }));
    await h.clock.advance(PAY_DELAY - 1);
    expect(state.settled).toBe(false);
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'pending', paymentInFlight: 'direct' });
    await h.clock.advance(1);
    const pgMockData: PgMockData = { isSuccess: true, failureCode: null, processedAt: T0 + PAY_DELAY };
    const decided: Booking = { ...booking, paymentMethod: 'kakao_pay', paymentIntent: { status: 'SUCCESS', pgMockData } };
    const confirmed = state.value!;
    expect(confirmed).toEqual({ ...decided, status: 'confirmed', settledAt: T0 + PAY_DELAY });
    expect(await h.service.get(booking.id)).toEqual(confirmed);
    expect(await h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 3 });
    expect(await h.ledger.balances()).toEqual([
      { account: 'CUSTOMER_PAYABLE', currency: 'KRW', debits: 90000, credits: 0, balance: 90000 },
      { account: 'MERCHANT_BALANCE', currency: 'KRW', debits: 0, credits: 90000, balance: -90000 },
    ]);
    expect(await h.service.events(booking.id)).toEqual([
      {
        eventId: expect.stringMatching(EVT_ID),
        type: 'PAYMENT_SUCCEEDED',
        bookingId: booking.id,
        details: { failureCode: null, paymentMethodToken: null, paymentMethod: 'kakao_pay', amount: 90000, currency: 'KRW' },
        createdAt: T0 + PAY_DELAY,
        processedAt: T0 + PAY_DELAY,
      },
    ]);
    expect(h.published).toEqual([
      { id: expect.stringMatching(EVT_ID), type: 'booking.created', occurredAt: T0, booking },
      { id: expect.stringMatching(EVT_ID), type: 'booking.payment_decided', occurredAt: T0 + PAY_DELAY, booking: decided, kind: 'direct', isSuccess: true, failureCode: null },
      { id: expect.stringMatching(EVT_ID), type: 'booking.confirmed', occurredAt: T0 + PAY_DELAY, booking: confirmed },
    ]);
    expect(await h.service.counts()).toMatchObject({ paymentsInFlight: 0, unprocessedEvents: 0 });
    await h.clock.advance(10_000);
    expect(await h.ledger.entries()).toHaveLength(2);
    expect(h.published).toHaveLength(3);
  });

  it('answers NOT_FOUND for an unknown booking and for another user’s', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    expect(await codeOf(() => h.payments.confirmDirect({ userId: USER, bookingId: 'bk_nope', paymentMethod: 'naver_pay' }))).toBe('NOT_FOUND');
    expect(await codeOf(() => h.payments.confirmDirect({ userId: OTHER, bookingId: booking.id, paymentMethod: 'naver_pay' }))).toBe('NOT_FOUND');
    expect(await h.service.get(booking.id)).toEqual(booking);
  });

  it('answers BOOKING_EXPIRED after the hold and PAYMENT_ALREADY_PROCESSED once paid', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    const paid = h.payments.confirmDirect({ userId: USER, bookingId: booking.id, paymentMethod: 'bank_transfer' });
    await h.clock.advance(PAY_DELAY);
    await paid;
    expect(await codeOf(() => h.payments.confirmDirect({ userId: USER, bookingId: booking.id, paymentMethod: 'bank_transfer' }))).toBe('PAYMENT_ALREADY_PROCESSED');
    expect(await codeOf(() => h.payments.executePayment(payInput(booking)))).toBe('PAYMENT_ALREADY_PROCESSED');
    const late = await book(h);
    await h.clock.advance(HOLD);
    expect(await codeOf(() => h.payments.confirmDirect({ userId: USER, bookingId: late.id, paymentMethod: 'bank_transfer' }))).toBe('BOOKING_EXPIRED');
    expect((await h.service.get(late.id)).status).toBe('expired');
    expect(await h.ledger.entries()).toHaveLength(2);
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.confirmed', 'booking.created', 'booking.expired']);
  });

  it('two concurrent calls: exactly one succeeds, and it also excludes a concurrent executePayment', async () => {
    for (const delay of [0, PAY_DELAY]) {
      const h = await makeBookings({ config: { mockMinDelayMs: delay, mockMaxDelayMs: delay } });
      const booking = await book(h);
      const input = { userId: USER, bookingId: booking.id, paymentMethod: 'naver_pay' };
      const all = Promise.allSettled([h.payments.confirmDirect(input), h.payments.confirmDirect(input), h.payments.executePayment(payInput(booking))]);
      await h.clock.advance(delay);
      const [a, b, c] = await all;
      expect(a.status).toBe('fulfilled');
      expect(b).toMatchObject({ status: 'rejected', reason: { code: 'PAYMENT_ALREADY_PROCESSED' } });
      expect(c).toMatchObject({ status: 'rejected', reason: { code: 'PAYMENT_ALREADY_PROCESSED' } });
      expect(await h.ledger.entries()).toHaveLength(2);
      expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.confirmed']);
      expect(h.published.filter((e) => e.type === 'booking.payment_decided')).toHaveLength(1);
    }
  });
});

describe('bus events of payments', () => {
  it('booking.payment_decided for every decided payment and booking.event_processed for every inbox event processed, with its lag; a throwing subscriber breaks nothing', async () => {
    const h = await makeBookings();
    h.bus.subscribe((event) => {
      if (event.type === 'booking.event_processed') throw new Error('subscriber bug');
    });
    const a = await book(h, 2);
    const b = await book(h, 1);
    const paying = h.payments.executePayment(payInput(a, { cvv: '442' }));
    await h.clock.advance(PAY_DELAY);
    await paying;
    await h.clock.advance(50);
    const direct = h.payments.confirmDirect({ userId: USER, bookingId: b.id, paymentMethod: 'kakao_pay' });
    await h.clock.advance(PAY_DELAY);
    await direct;
    expect(h.published.map(summary)).toEqual([
      'booking.created pending 2',
      'booking.created pending 1',
      'booking.payment_decided execute false DECLINE_2',
      'booking.failed failed 2',
      'booking.event_processed PAYMENT_FAILED lag 50',
      'booking.payment_decided direct true null',
      'booking.confirmed confirmed 1',
    ]);
    const [failedEvent] = await h.service.events(a.id);
    expect(failedEvent).toMatchObject({ createdAt: T0 + PAY_DELAY, processedAt: T0 + PAY_DELAY + 50 });
    const directAt = T0 + 2 * PAY_DELAY + 50;
    expect(h.published.filter((e) => e.type === 'booking.payment_decided' || e.type === 'booking.event_processed')).toEqual([
      {
        id: expect.stringMatching(EVT_ID),
        type: 'booking.payment_decided',
        occurredAt: T0 + PAY_DELAY,
        booking: { ...a, paymentIntent: { status: 'FAILURE', pgMockData: { isSuccess: false, failureCode: 'DECLINE_2', processedAt: T0 + PAY_DELAY } } },
        kind: 'execute',
        isSuccess: false,
        failureCode: 'DECLINE_2',
      },
      { id: expect.stringMatching(EVT_ID), type: 'booking.event_processed', occurredAt: T0 + PAY_DELAY + 50, event: failedEvent },
      {
        id: expect.stringMatching(EVT_ID),
        type: 'booking.payment_decided',
        occurredAt: directAt,
        booking: { ...b, paymentMethod: 'kakao_pay', paymentIntent: { status: 'SUCCESS', pgMockData: { isSuccess: true, failureCode: null, processedAt: directAt } } },
        kind: 'direct',
        isSuccess: true,
        failureCode: null,
      },
    ]);
    expect((await h.service.get(a.id)).status).toBe('failed');
    expect((await h.service.get(b.id)).status).toBe('confirmed');
    expect(h.busErrors.map(({ error, event }) => [event.type, (error as Error).message])).toEqual([['booking.event_processed', 'subscriber bug']]);
    expect(h.jobErrors).toEqual([]);
  });
});

describe('the inbox job of an event not stored (yet)', () => {
  it('is retried with backoff rather than completed (another replica may still be writing the event), and given up after the last attempt', async () => {
    const h = await makeBookings();
    await h.scheduler.schedule(PROCESS_JOB, 'evt_not_written_yet', h.clock.now());
    await h.clock.advance(0);
    expect(h.jobErrors.map((error) => (error as Error).message)).toEqual(['inbox event evt_not_written_yet is not stored (yet): its processing is retried']);
    expect(await h.scheduler.pending(PROCESS_JOB)).toBe(1);
    await h.clock.advance(600_000);
    expect(h.jobErrors).toHaveLength(MAX_ATTEMPTS);
    expect(await h.scheduler.pending(PROCESS_JOB)).toBe(0);
  });
});

/** `target` with some methods replaced; the others called on it (its private fields need it as `this`). */
function withMethods<T extends object>(target: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(object, key) {
      if (Object.hasOwn(overrides, key)) return overrides[key as keyof T];
      const value: unknown = Reflect.get(object, key, object);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(object) : value;
    },
  });
}

describe('a payment whose process is gone (a replica killed, or stalled, during its delay)', () => {
  it('the booking can be paid again once the longest delay and a lease have passed since it began; before 2026-12-06 it was refused as in progress until the hold and a lease had', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    // Begun by a process that then died (lost after its longest delay and a lease, as this service begins them): nothing of this one runs it.
    await h.bookings.beginPayment(booking.id, USER, 'execute', h.clock.now(), 'tok_dead', h.clock.now() + BOOKING_CONFIG.mockMaxDelayMs + h.scheduler.leaseMs);
    await h.clock.advance(BOOKING_CONFIG.mockMaxDelayMs + h.scheduler.leaseMs);
    const early = track(h.payments.executePayment(payInput(booking)));
    await h.clock.advance(0);
    expect((early.error as { code?: string } | undefined)?.code).toBe('PAYMENT_ALREADY_PROCESSED');
    await h.clock.advance(1);
    const paid = track(h.payments.executePayment(payInput(booking)));
    await h.clock.advance(PAY_DELAY);
    expect((paid.value as { finalStatus: string } | undefined)?.finalStatus).toBe('SUCCESS');
    expect((await h.bookings.counts()).paymentsInFlight).toBe(0);
  });

  it('one that only stalled and wakes after another began in its place records nothing: the booking keeps the payment that took over', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    // The stalled process: its own clock, which stands still while the service's moves on.
    const stalledClock = new ManualClock();
    // Each side tells its part (the service logs a warning for each).
    const told: string[] = [];
    const onTakeOver = ({ side }: { side: string }) => void told.push(side);
    const stalled = new BookingPayments({ clock: stalledClock, random: createRandom(1), ids: createIdFactory(stalledClock), bus: h.bus, bookings: h.bookings, seats: h.seats, scheduler: h.scheduler, settlement: h.settlement, config: BOOKING_CONFIG, onTakeOver });
    const taker = new BookingPayments({ clock: h.clock, random: createRandom(1), ids: createIdFactory(h.clock), bus: h.bus, bookings: h.bookings, seats: h.seats, scheduler: h.scheduler, settlement: h.settlement, config: BOOKING_CONFIG, onTakeOver });
    const first = track(stalled.executePayment(payInput(booking, { paymentMethodToken: 'tok_chargeDeclined' })));
    await stalledClock.advance(0);
    await h.clock.advance(BOOKING_CONFIG.mockMaxDelayMs + h.scheduler.leaseMs + 1);
    const second = track(taker.executePayment(payInput(booking)));
    await h.clock.advance(PAY_DELAY / 2);
    // It wakes while the payment that took its place is in its delay: its decline is not recorded as that payment's result.
    await stalledClock.advance(PAY_DELAY);
    expect((first.error as { code?: string } | undefined)?.code).toBe('PAYMENT_ALREADY_PROCESSED');
    expect((await h.bookings.get(booking.id))?.paymentInFlight).toBe('execute');
    // Its event's processing job, scheduled before the record, went with it (a review: it failed 8 times, then logged an error).
    expect([await h.schedulerStore.count(PROCESS_JOB), told]).toEqual([0, ['took_over', 'taken_over']]);
    await h.clock.advance(PAY_DELAY / 2);
    expect((second.value as { finalStatus: string } | undefined)?.finalStatus).toBe('SUCCESS');
    const stored = await h.bookings.get(booking.id);
    expect([stored?.paymentIntent.status, stored?.paymentInFlight, (await h.bookings.events(booking.id)).map((e) => e.type)]).toEqual(['SUCCESS', null, ['PAYMENT_SUCCEEDED']]);
  });
});

describe('a cancel of a booking whose payment lost its process (its replica killed or stalled during the delay)', () => {
  it('is refused as in progress until the longest delay and a lease have passed since the payment began, then cancels the booking and frees its seats; before 2026-12-06 it was refused until the hold and a lease had passed', async () => {
    const told: string[] = [];
    const h = await makeBookings({ shared: true, onCancelTookOver: ({ bookingId }) => void told.push(bookingId) });
    const booking = await book(h);
    const stalledClock = new ManualClock();
    const stalled = new BookingPayments({ clock: stalledClock, random: createRandom(1), ids: createIdFactory(stalledClock), bus: h.bus, bookings: h.bookings, seats: h.seats, scheduler: h.scheduler, settlement: h.settlement, config: BOOKING_CONFIG });
    const first = track(stalled.executePayment(payInput(booking)));
    await stalledClock.advance(0);
    await h.clock.advance(BOOKING_CONFIG.mockMaxDelayMs + h.scheduler.leaseMs);
    await expect(h.service.cancel({ userId: USER, bookingId: booking.id })).rejects.toMatchObject({ code: 'PAYMENT_ALREADY_PROCESSED', message: `A payment for booking ${booking.id} is already in progress.` });
    expect(told).toEqual([]);
    await h.clock.advance(1);
    const cancelled = await h.service.cancel({ userId: USER, bookingId: booking.id });
    expect(cancelled).toEqual({ ...booking, status: 'cancelled', settledAt: h.clock.now() });
    expect([told, await h.service.counts()]).toEqual([
      [booking.id],
      { bookings: { pending: 0, confirmed: 0, failed: 0, expired: 0, cancelled: 1 }, paymentsInFlight: 0, unprocessedEvents: 0, seats: { total: 420, available: 420, held: 0, reserved: 0 } },
    ]);
    expect(h.events.map(summary)).toEqual(['booking.created pending 2', 'booking.cancelled cancelled 2']);
    // Had it only stalled: it wakes, records nothing, and answers as the booking is now.
    await stalledClock.advance(PAY_DELAY);
    expect([(first.error as { code?: string } | undefined)?.code, (first.error as Error | undefined)?.message]).toEqual(['PAYMENT_ALREADY_PROCESSED', `Booking ${booking.id} is cancelled; only a pending, unpaid booking can be paid or cancelled.`]);
    expect([await h.bookings.get(booking.id), await h.bookings.events(booking.id), await h.schedulerStore.count(PROCESS_JOB)]).toEqual([cancelled, [], 0]);
    // The cancel's backstop (the expiry job, brought forward) finds it settled and tells nothing new.
    await h.clock.advance(h.scheduler.leaseMs);
    expect(h.events.filter((e) => e.type === 'booking.cancelled')).toHaveLength(1);
  });
  it('past the hold’s end, expires the booking instead (BOOKING_EXPIRED, booking.expired, its seats freed), as a payment begun then would (a review: it cancelled it)', async () => {
    const h = await makeBookings({ shared: true });
    const booking = await book(h);
    // Begun 10 s before the hold's end by a process that then died: lost after the hold's end, and
    // 10 s before the hold's backstop (the expiry job's, a delay and a lease after that end).
    await h.clock.advance(HOLD - 10_000);
    await h.bookings.beginPayment(booking.id, USER, 'execute', h.clock.now(), 'tok_dead', h.clock.now() + BOOKING_CONFIG.mockMaxDelayMs + h.scheduler.leaseMs);
    await h.clock.advance(BOOKING_CONFIG.mockMaxDelayMs + h.scheduler.leaseMs + 1);
    const refused = await errorOf(() => h.service.cancel({ userId: USER, bookingId: booking.id }));
    expect([refused.code, refused.message]).toEqual(['BOOKING_EXPIRED', `Booking ${booking.id} expired at ${new Date(booking.expiresAt).toISOString()}.`]);
    expect(await h.bookings.get(booking.id)).toEqual({ ...booking, status: 'expired', settledAt: h.clock.now() });
    expect([h.events.map(summary), (await h.service.counts()).seats.held]).toEqual([['booking.created pending 2', 'booking.expired expired 2'], 0]);
  });
});

describe('a payment whose process stalled past its lostAfter and wakes once the booking is confirmed', () => {
  it('answers as the booking is now (already paid), and tells its confirmation no second time (a review: the expiry job run at once told booking.confirmed again)', async () => {
    // A store shared by replicas (the expiry job then finishes a booking it finds settled again).
    const h = await makeBookings({ shared: true });
    const booking = await book(h);
    const stalledClock = new ManualClock();
    const stalled = new BookingPayments({ clock: stalledClock, random: createRandom(1), ids: createIdFactory(stalledClock), bus: h.bus, bookings: h.bookings, seats: h.seats, scheduler: h.scheduler, settlement: h.settlement, config: BOOKING_CONFIG });
    const first = track(stalled.executePayment(payInput(booking)));
    await stalledClock.advance(0);
    await h.clock.advance(BOOKING_CONFIG.mockMaxDelayMs + h.scheduler.leaseMs + 1);
    const second = track(h.payments.executePayment(payInput(booking)));
    await h.clock.advance(PAY_DELAY + BOOKING_CONFIG.eventProcessingDelayMs);
    expect([(second.value as { finalStatus: string } | undefined)?.finalStatus, (await h.bookings.get(booking.id))?.status]).toEqual(['SUCCESS', 'confirmed']);
    await stalledClock.advance(PAY_DELAY);
    expect([(first.error as { code?: string } | undefined)?.code, (first.error as Error | undefined)?.message]).toEqual(['PAYMENT_ALREADY_PROCESSED', `Booking ${booking.id} is confirmed; only a pending, unpaid booking can be paid or cancelled.`]);
    await h.clock.advance(h.scheduler.leaseMs);
    expect(h.events.filter((e) => e.type === 'booking.confirmed')).toHaveLength(1);
  });
});

describe('a payment cut short while the store is unavailable (Redis away)', () => {
  /**
   * The harness's store, its recordPayment failing STORE_UNAVAILABLE while `away`, and its
   * abortPayment as a store whose answers can be lost: `lose` runs the next abort and fails its
   * answer; while `away`, an abort runs and fails its answer too.
   */
  function outage(h: Awaited<ReturnType<typeof makeBookings>>) {
    const store = h.bookings;
    const state = { away: true, lose: false, loseBegin: undefined as StoreUnavailableError | undefined, aborts: [] as Array<string | undefined>, failSchedule: false, queueFull: false };
    const bookings = withMethods(store, {
      // The next begin fails with `loseBegin`: after it ran when it says it may have, before otherwise.
      beginPayment: async (...args: Parameters<typeof store.beginPayment>) => {
        const lost = state.loseBegin;
        state.loseBegin = undefined;
        if (lost !== undefined && !lost.mayHaveRun) throw lost;
        const begun = await store.beginPayment(...args);
        if (lost !== undefined) throw lost;
        return begun;
      },
      recordPayment: (...args: Parameters<typeof store.recordPayment>) => (state.away ? Promise.reject(new StoreUnavailableError()) : store.recordPayment(...args)),
      abortPayment: async (id: string, begunWith?: string) => {
        state.aborts.push(begunWith);
        await store.abortPayment(id, begunWith);
        if (state.lose) {
          state.lose = false;
          throw new StoreUnavailableError();
        }
        if (state.away) throw new StoreUnavailableError();
      },
    });
    const scheduler = withMethods(h.scheduler, {
      schedule: (...args: Parameters<typeof h.scheduler.schedule>) => (state.failSchedule ? Promise.reject(new StoreUnavailableError()) : h.scheduler.schedule(...args)),
    });
    const late: Array<() => Promise<void>> = [];
    const payments = new BookingPayments({
      clock: h.clock,
      random: createRandom(1),
      ids: createIdFactory(h.clock),
      bus: h.bus,
      bookings,
      seats: h.seats,
      scheduler,
      settlement: h.settlement,
      config: { ...BOOKING_CONFIG, mockMinDelayMs: PAY_DELAY, mockMaxDelayMs: PAY_DELAY },
      retryWhenStoreIsBack: (write) => !state.queueFull && late.push(write) > 0,
    });
    return { state, late, payments, store };
  }

  it('its abort ran but its answer was lost: the try again later does not end the client’s next payment, begun meanwhile', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    const { state, late, payments, store } = outage(h);
    state.lose = true;
    const cut = track(payments.executePayment(payInput(booking)));
    await h.clock.advance(PAY_DELAY);
    expect([cut.settled, (cut.error as { code?: string }).code]).toEqual([true, 'STORE_UNAVAILABLE']);
    expect(late).toHaveLength(1);
    // Back: the abort had run, so the client's retry begins.
    state.away = false;
    const retried = track(payments.executePayment(payInput(booking)));
    await h.clock.advance(PAY_DELAY / 2);
    expect((await store.get(booking.id))?.paymentInFlight).toBe('execute');
    await late[0]!();
    // Before, the later try ended the retry's payment (a third could begin beside it): each try had
    // a new token, and then one kept by Redis for 10 s only. Now it names the payment it ends.
    expect((await store.get(booking.id))?.paymentInFlight).toBe('execute');
    expect(state.aborts).toHaveLength(2);
    expect(new Set(state.aborts).size).toBe(1);
    await h.clock.advance(PAY_DELAY / 2);
    expect((retried.value as { finalStatus: string } | undefined)?.finalStatus).toBe('SUCCESS');
  });

  it('its begin ran but its answer was lost (Redis gone silent with it sent): the payment is ended once the store is back, so the client’s retry begins, not refused as in progress for the hold and a lease (a user test)', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    const { state, late, payments, store } = outage(h);
    state.loseBegin = new StoreUnavailableError({ mayHaveRun: true });
    const cut = track(payments.executePayment(payInput(booking)));
    await h.clock.advance(0);
    expect([cut.settled, (cut.error as { code?: string }).code]).toEqual([true, 'STORE_UNAVAILABLE']);
    // Its abort, naming its begin's token, tried at once (its answer lost: away), then again once the store is back.
    expect([state.aborts.length, late.length]).toEqual([1, 1]);
    state.away = false;
    await late[0]!();
    expect((await store.get(booking.id))?.paymentInFlight).toBeNull();
    expect(state.aborts).toHaveLength(2);
    expect(new Set(state.aborts).size).toBe(1);
    const retried = track(payments.executePayment(payInput(booking)));
    await h.clock.advance(PAY_DELAY);
    expect((retried.value as { finalStatus: string } | undefined)?.finalStatus).toBe('SUCCESS');
  });

  it('its begin refused before it was sent (as every call is while Redis is known away): nothing is tried later, so retries during an outage do not fill the late writes’ room (a review: 1,000 filled, real aborts dropped)', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    const { state, late, payments, store } = outage(h);
    for (let i = 0; i < 3; i++) {
      state.loseBegin = new StoreUnavailableError();
      const refused = track(payments.executePayment(payInput(booking)));
      await h.clock.advance(0);
      expect([refused.settled, (refused.error as { code?: string }).code]).toEqual([true, 'STORE_UNAVAILABLE']);
    }
    expect([state.aborts, late, (await store.get(booking.id))?.paymentInFlight]).toEqual([[], [], null]);
  });

  it('its abort taken and its expiry job not: only the job is tried again', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    const { state, late, payments, store } = outage(h);
    state.away = false;
    state.failSchedule = true;
    const cut = track(payments.executePayment({ ...payInput(booking) }));
    // recordPayment fails once (away at its time), then the store is back but the scheduler's write is not.
    state.away = true;
    await h.clock.advance(PAY_DELAY);
    expect((cut.error as { code?: string }).code).toBe('STORE_UNAVAILABLE');
    expect(late).toHaveLength(1);
    state.away = false;
    await late[0]!();
    state.failSchedule = false;
    expect(late).toHaveLength(2);
    await late[1]!();
    expect(state.aborts).toHaveLength(2);
    expect((await store.get(booking.id))?.paymentInFlight).toBeNull();
  });

  it('its abort taken and its expiry job not, with no room to wait on its own: tried again whole, the abort not done again', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    const { state, late, payments } = outage(h);
    state.away = false;
    state.failSchedule = true;
    const cut = track(payments.executePayment(payInput(booking)));
    state.away = true;
    await h.clock.advance(PAY_DELAY);
    expect((cut.error as { code?: string }).code).toBe('STORE_UNAVAILABLE');
    expect(late).toHaveLength(1);
    state.away = false;
    state.queueFull = true;
    // The abort is taken; the job is refused and cannot wait on its own: the whole write is tried again.
    await expect(late[0]!()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(late[0]!()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    state.failSchedule = false;
    await late[0]!();
    // Before, each try ran the abort again (then, past Redis' 10 s, for real: a payment begun since).
    expect(state.aborts).toHaveLength(2);
  });
});
