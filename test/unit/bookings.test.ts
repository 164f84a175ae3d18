import { describe, expect, it, vi } from 'vitest';
import type { Booking, BookingStatus } from '../../src/core/bookings/booking.ts';
import type { Performance } from '../../src/core/bookings/performances.ts';
import { EXPIRE_JOB } from '../../src/core/bookings/service.ts';
import { LEASE_MS } from '../../src/core/scheduler.ts';
import { DomainError } from '../../src/core/errors.ts';
import { derivedId } from '../../src/core/ids.ts';
import { createRandom } from '../../src/core/random.ts';
import { settle } from '../helpers/manual-clock.ts';
import { allForUser, book, codeOf, errorOf, EVT_ID, HOLD, makeBookings, OTHER, pay, PAY_DELAY, payInput, track, ULID, USER, type BookingHarness } from './support.ts';

/**
 * The booking service (holds, cancellation, expiry, queries, bounds) over memory stores. Paying
 * and the inbox are in booking-payments.test.ts; the harness is `makeBookings` in support.ts.
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const BK_ID = new RegExp(`^bk_${ULID}$`);
const NONE: Record<BookingStatus, number> = { pending: 0, confirmed: 0, failed: 0, expired: 0, cancelled: 0 };
/** Seats of the default catalog: two halls of 200 and a theatre of 20. */
const ALL_SEATS = 420;

describe('book', () => {
  it('creates a pending booking holding adjacent seats for the hold time, publishes booking.created and schedules its expiry', async () => {
    const h = await makeBookings();
    const booking = await h.service.book({ userId: USER, performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' });
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
      paymentInFlight: null,
      settledAt: null,
    });
    expect((await h.seats.seatsOf('perf_001'))?.slice(0, 3)).toEqual([
      { seatId: 'A1', row: 'A', number: 1, status: 'locked', bookingId: booking.id, lockedUntil: T0 + HOLD },
      { seatId: 'A2', row: 'A', number: 2, status: 'locked', bookingId: booking.id, lockedUntil: T0 + HOLD },
      { seatId: 'A3', row: 'A', number: 3, status: 'available', bookingId: null, lockedUntil: null },
    ]);
    expect(h.published).toEqual([{ id: expect.stringMatching(EVT_ID), type: 'booking.created', occurredAt: T0, booking }]);
    expect(await h.service.get(booking.id)).toEqual(booking);
    expect(await h.service.counts()).toEqual({
      bookings: { ...NONE, pending: 1 },
      paymentsInFlight: 0,
      unprocessedEvents: 0,
      seats: { total: ALL_SEATS, available: ALL_SEATS - 2, held: 2, reserved: 0 },
    });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);
  });

  it('keeps the webhook URL and gives the next party the next adjacent seats', async () => {
    const h = await makeBookings();
    await book(h, 6);
    const second = await h.service.book({ userId: USER, performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD', webhookUrl: 'http://client/hook' });
    expect(second).toMatchObject({ seatIds: ['A7', 'A8'], webhookUrl: 'http://client/hook' });
    expect(h.events.map((e) => [e.type, e.booking.seatIds, e.booking.webhookUrl])).toEqual([
      ['booking.created', ['A1', 'A2', 'A3', 'A4', 'A5', 'A6'], null],
      ['booking.created', ['A7', 'A8'], 'http://client/hook'],
    ]);
  });

  it.each([0, 11, 1.5, -1])('refuses a quantity of %s and holds, publishes and schedules nothing', async (quantity) => {
    const h = await makeBookings();
    expect(await codeOf(() => book(h, quantity))).toBe('VALIDATION_FAILED');
    expect(await h.service.counts()).toEqual({ bookings: NONE, paymentsInFlight: 0, unprocessedEvents: 0, seats: { total: ALL_SEATS, available: ALL_SEATS, held: 0, reserved: 0 } });
    expect(h.published).toEqual([]);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
  });

  it('refuses an unknown performance with NOT_FOUND and a sold-out one with SOLD_OUT', async () => {
    const h = await makeBookings();
    expect(await codeOf(() => book(h, 1, USER, 'perf_999'))).toBe('NOT_FOUND');
    await book(h, 10, USER, 'perf_003');
    await book(h, 9, USER, 'perf_003');
    expect(await errorOf(() => book(h, 2, USER, 'perf_003'))).toMatchObject({ code: 'SOLD_OUT', message: 'perf_003 has 1 seat left; 2 requested.' });
    expect((await book(h, 1, USER, 'perf_003')).seatIds).toEqual(['B10']);
    expect(await errorOf(() => book(h, 1, USER, 'perf_003'))).toMatchObject({ code: 'SOLD_OUT', message: 'perf_003 has 0 seats left; 1 requested.' });
    expect((await h.service.counts()).bookings).toEqual({ ...NONE, pending: 3 });
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.created', 'booking.created']);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(3);
  });

  it('1,000 bookings of one seat against a 200-seat performance: exactly 200 held, 800 SOLD_OUT', async () => {
    const h = await makeBookings();
    const booked: Booking[] = [];
    const refused: string[] = [];
    for (let i = 0; i < 1000; i++) {
      try {
        booked.push(await book(h, 1, `user_${i}`));
      } catch (error) {
        refused.push((error as DomainError).code);
      }
    }
    expect(booked).toHaveLength(200);
    expect(new Set(booked.flatMap((b) => b.seatIds)).size).toBe(200);
    expect(refused).toHaveLength(800);
    expect(new Set(refused)).toEqual(new Set(['SOLD_OUT']));
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 0, held: 200, reserved: 0 });
    expect(h.events).toHaveLength(200);
  });

  it('1,000 bookings of mixed sizes: no seat twice, held seats equal booked quantities, refusals only when too few are left', async () => {
    const h = await makeBookings();
    const random = createRandom(3);
    const seen = new Set<string>();
    let held = 0;
    for (let i = 0; i < 1000; i++) {
      const quantity = 1 + Math.floor(random.next() * 10);
      const available = (await h.seats.counts('perf_001'))!.available;
      try {
        const booking = await book(h, quantity, `user_${i}`);
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
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200 - held, held, reserved: 0 });
    expect(held).toBeGreaterThan(190);
  });

  it('finding too few seats free, frees the lapsed holds and tries again, so lapsed holds count as free without waiting for the timer', async () => {
    const h = await makeBookings();
    h.scheduler.stop(); // no timer: only the booking itself can expire anything
    const old = await book(h, 10, USER, 'perf_003');
    const second = await book(h, 10, USER, 'perf_003');
    expect(await codeOf(() => book(h, 1, USER, 'perf_003'))).toBe('SOLD_OUT');
    await h.clock.advance(HOLD);
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.created']);
    const fresh = await book(h, 3, OTHER, 'perf_003');
    expect(fresh.seatIds).toEqual(['A1', 'A2', 'A3']);
    expect(h.events.map((e) => [e.type, e.booking.id, e.occurredAt])).toEqual([
      ['booking.created', old.id, T0],
      ['booking.created', second.id, T0],
      ['booking.expired', old.id, T0 + HOLD],
      ['booking.expired', second.id, T0 + HOLD],
      ['booking.created', fresh.id, T0 + HOLD],
    ]);
    expect((await h.service.get(old.id)).status).toBe('expired');
    expect(h.jobErrors).toEqual([]);
  });

  it('runs no due work when the seats asked for are free: a booking never waits for others\' work (before 2026-12-06 every booking ran it first)', async () => {
    const h = await makeBookings();
    h.scheduler.stop();
    const old = await book(h, 10, USER, 'perf_003');
    await h.clock.advance(HOLD);
    const fresh = await book(h, 3, OTHER, 'perf_003');
    expect(fresh.seatIds).toEqual(['B1', 'B2', 'B3']);
    expect(h.events.map((e) => [e.type, e.booking.id])).toEqual([
      ['booking.created', old.id],
      ['booking.created', fresh.id],
    ]);
    expect(await h.scheduler.pending('booking.expire')).toBe(2);
    // The lapsed hold's job is still due: the next run (its timer, a poll, a sold-out booking) ends it.
    await h.scheduler.runDue();
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.created', 'booking.expired']);
    expect(await h.seats.counts('perf_003')).toEqual({ total: 20, available: 17, held: 3, reserved: 0 });
  });

  it('finding too few seats free, frees this performance\'s lapsed holds only: it does not wait for a run of others\' work in progress (until 2026-12-06 it ran the whole run of due work)', async () => {
    const h = await makeBookings();
    h.scheduler.stop();
    h.scheduler.register('slow', () => new Promise<void>(() => undefined));
    const old = await book(h, 10, USER, 'perf_003');
    await book(h, 10, USER, 'perf_003');
    const elsewhere = await book(h, 2, USER, 'perf_001');
    await h.scheduler.schedule('slow', 'k', h.clock.now());
    void h.scheduler.runDue(); // a run that never ends
    await settle();
    await h.clock.advance(HOLD);
    expect((await book(h, 3, OTHER, 'perf_003')).seatIds).toEqual(['A1', 'A2', 'A3']);
    expect((await h.service.get(old.id)).status).toBe('expired');
    // perf_001's lapsed hold is left to its job.
    expect(await h.seats.counts('perf_001')).toMatchObject({ held: 2 });
    expect((await h.bookings.get(elsewhere.id))?.status).toBe('pending');
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.created', 'booking.created', 'booking.expired', 'booking.expired', 'booking.created']);
  });

  it('a call whose holds lapsed after a look already under way started frees them in a look of its own after it, not taking the first look\'s answer (a user test: SOLD_OUT, maps listing them locked)', async () => {
    const h = await makeBookings();
    h.scheduler.stop();
    const first = await book(h, 10, USER, 'perf_003');
    await h.clock.advance(1_000);
    const second = await book(h, 10, USER, 'perf_003');
    await h.clock.advance(HOLD - 1_000); // the first hold has lapsed, the second not yet
    const seatsOf = h.seats.seatsOf.bind(h.seats);
    let release!: () => void;
    let gate = new Promise<void>((resolve) => (release = resolve));
    h.seats.seatsOf = async (performanceId) => {
      const map = await seatsOf(performanceId);
      await gate;
      return map;
    };
    const under = h.service.freeLapsedHolds('perf_003');
    await settle();
    await h.clock.advance(1_000); // now the second has lapsed too
    const joined = h.service.freeLapsedHolds('perf_003');
    release();
    expect([await under, await joined]).toEqual([true, true]);
    // A call that joins a look freeing holds is told so (it read before: a review, a catalog showing them held).
    await book(h, 10, OTHER, 'perf_003');
    await book(h, 10, OTHER, 'perf_003');
    await h.clock.advance(HOLD);
    gate = new Promise<void>((resolve) => (release = resolve));
    const again = h.service.freeLapsedHolds('perf_003');
    await settle();
    expect(await h.seats.counts('perf_003')).toMatchObject({ held: 20 });
    const late = h.service.freeLapsedHolds('perf_003');
    release();
    expect([await again, await late]).toEqual([true, true]);
    expect(await h.seats.counts('perf_003')).toMatchObject({ available: 20 });
    expect([(await h.bookings.get(first.id))?.status, (await h.bookings.get(second.id))?.status]).toEqual(['expired', 'expired']);
    expect(await h.seats.counts('perf_003')).toEqual({ total: 20, available: 20, held: 0, reserved: 0 });
  });

  it('a lapsed hold kept by its payment in flight is looked at again a second later, not at every call (a review: every catalog read read the whole map while a payment was in flight)', async () => {
    const h = await makeBookings();
    h.scheduler.stop();
    const held = await book(h, 2);
    await h.clock.advance(HOLD - 500);
    const paying = track(h.payments.executePayment(payInput(held)));
    await h.clock.advance(600); // lapsed, its payment still in flight
    const seatsOf = vi.spyOn(h.seats, 'seatsOf');
    expect(await h.service.freeLapsedHolds('perf_001')).toBe(false);
    expect(await h.service.freeLapsedHolds('perf_001')).toBe(false);
    expect(seatsOf).toHaveBeenCalledTimes(1);
    await h.clock.advance(1_000);
    expect(paying.settled).toBe(true);
    expect(await h.service.freeLapsedHolds('perf_001')).toBe(false);
    expect(seatsOf).toHaveBeenCalledTimes(2);
    expect((await h.bookings.get(held.id))?.paymentIntent.status).toBe('SUCCESS');
  });

  it('a clock set back before the last look looks again (a review: the look was skipped for as long as the clock had gone back)', async () => {
    const h = await makeBookings();
    h.scheduler.stop();
    const now = h.clock.now.bind(h.clock);
    let back = 0;
    h.clock.now = () => now() - back;
    await book(h, 10, USER, 'perf_003');
    expect(await h.service.freeLapsedHolds('perf_003')).toBe(false); // quiet for a second from here
    back = 3_600_000;
    const early = await book(h, 10, USER, 'perf_003');
    await h.clock.advance(HOLD); // the second hold, made an hour back, has lapsed; the first not
    expect(await h.service.freeLapsedHolds('perf_003')).toBe(true);
    expect((await h.bookings.get(early.id))?.status).toBe('expired');
  });

  /**
   * perf_003 sold out by two holds that lapse, then a booking of 3 of its seats whose freeing of
   * them is slow (the store: a slow Redis), taking `runTakesMs` from the booking's request.
   */
  async function bookDuringSlowRun(holdMs: number, runTakesMs: number) {
    const h = await makeBookings({ config: { seatHoldMs: holdMs } });
    h.scheduler.stop();
    await book(h, 10, USER, 'perf_003');
    await book(h, 10, USER, 'perf_003');
    await h.clock.advance(holdMs); // both holds lapse
    const seatsOf = h.seats.seatsOf.bind(h.seats);
    let release!: () => void;
    h.seats.seatsOf = async (performanceId) => {
      await new Promise<void>((resolve) => (release = resolve));
      return seatsOf(performanceId);
    };
    const booking = track(book(h, 3, OTHER, 'perf_003'));
    await vi.waitFor(() => expect(release).toBeDefined());
    await h.clock.advance(runTakesMs);
    release();
    await vi.waitFor(() => expect(booking.settled).toBe(true));
    return { h, booking };
  }

  it.each([
    ['a hold longer than the wait', 10_000, 4_000],
    ['a hold shorter than the wait, whose job another replica could have run', 1_000, 1_500],
  ])('finding too few seats free, holds for SEAT_HOLD_MS from the end of a slow freeing of lapsed holds, not from the request: %s', async (_, holdMs, runTakesMs) => {
    const { h, booking } = await bookDuringSlowRun(holdMs, runTakesMs);
    const answeredAt = h.clock.now();
    expect(booking.value).toMatchObject({ seatIds: ['A1', 'A2', 'A3'], createdAt: answeredAt, expiresAt: answeredAt + holdMs });
    expect(await h.scheduler.nextDueAt()).toBe(answeredAt + holdMs);
    expect(await h.seats.counts('perf_003')).toEqual({ total: 20, available: 17, held: 3, reserved: 0 });
  });

  it('finding too few seats free after a freeing of lapsed holds slower than its hold and half a lease, holds nothing and answers 503 STORE_UNAVAILABLE (another replica may be freeing what its id holds)', async () => {
    const { h, booking } = await bookDuringSlowRun(1_000, 1_000 + LEASE_MS / 2);
    expect(booking.error).toMatchObject({ code: 'STORE_UNAVAILABLE', message: 'The store is unavailable; retry shortly.' });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0); // the two lapsed holds expired, their jobs cancelled; this one's cancelled
    expect(await h.seats.counts('perf_003')).toEqual({ total: 20, available: 20, held: 0, reserved: 0 });
    expect((await book(h, 3, OTHER, 'perf_003')).seatIds).toEqual(['A1', 'A2', 'A3']);
  });
});

describe('cancel', () => {
  it('cancels the caller’s pending booking, frees its seats and drops its expiry job', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    await h.clock.advance(10);
    const cancelled = await h.service.cancel({ userId: USER, bookingId: booking.id });
    expect(cancelled).toEqual({ ...booking, status: 'cancelled', settledAt: T0 + 10 });
    expect(await h.service.get(booking.id)).toEqual(cancelled);
    expect((await h.seats.counts('perf_001'))?.held).toBe(0);
    expect(h.events.slice(1)).toEqual([{ id: derivedId('evt', T0 + 10, booking.id), type: 'booking.cancelled', occurredAt: T0 + 10, booking: cancelled }]);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect((await book(h)).seatIds).toEqual(['A1', 'A2']);
    expect((await h.service.counts()).bookings).toEqual({ ...NONE, pending: 1, cancelled: 1 });
  });

  it('refuses anything else', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    expect(await codeOf(() => h.service.cancel({ userId: USER, bookingId: 'bk_nope' }))).toBe('NOT_FOUND');
    expect(await codeOf(() => h.service.cancel({ userId: OTHER, bookingId: booking.id }))).toBe('FORBIDDEN');

    const inFlight = h.payments.executePayment(payInput(booking));
    expect(await errorOf(() => h.service.cancel({ userId: USER, bookingId: booking.id }))).toMatchObject({
      code: 'PAYMENT_ALREADY_PROCESSED',
      message: `A payment for booking ${booking.id} is already in progress.`,
    });
    await h.clock.advance(PAY_DELAY);
    await inFlight;
    expect(await errorOf(() => h.service.cancel({ userId: USER, bookingId: booking.id }))).toMatchObject({
      code: 'PAYMENT_ALREADY_PROCESSED',
      message: `The payment for booking ${booking.id} has already been processed (SUCCESS).`,
    });
    await h.clock.advance(50);
    expect(await codeOf(() => h.service.cancel({ userId: USER, bookingId: booking.id }))).toBe('PAYMENT_ALREADY_PROCESSED');

    const twice = await book(h);
    await h.service.cancel({ userId: USER, bookingId: twice.id });
    expect(await codeOf(() => h.service.cancel({ userId: USER, bookingId: twice.id }))).toBe('INVALID_STATE');

    const lapsed = await book(h);
    await h.clock.advance(HOLD);
    expect(await errorOf(() => h.service.cancel({ userId: USER, bookingId: lapsed.id }))).toMatchObject({
      code: 'BOOKING_EXPIRED',
      message: `Booking ${lapsed.id} expired at 2026-01-15T12:10:01.050Z.`,
    });
    expect(h.events.map((e) => [e.type, e.booking.id])).toEqual([
      ['booking.created', booking.id],
      ['booking.confirmed', booking.id],
      ['booking.created', twice.id],
      ['booking.cancelled', twice.id],
      ['booking.created', lapsed.id],
      ['booking.expired', lapsed.id],
    ]);
  });
});

describe('the expiry job', () => {
  it('expires each unpaid booking exactly at its expiresAt, with no read in between: one booking.expired each, seats freed', async () => {
    const h = await makeBookings();
    const first = await book(h);
    await h.clock.advance(500);
    const second = await book(h, 1, OTHER);
    await h.clock.advance(HOLD - 501);
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.created']);
    expect((await h.seats.counts('perf_001'))?.held).toBe(3);
    await h.clock.advance(1); // T0 + HOLD
    expect(h.events.slice(2)).toEqual([{ id: derivedId('evt', T0 + HOLD, first.id), type: 'booking.expired', occurredAt: T0 + HOLD, booking: { ...first, status: 'expired', settledAt: T0 + HOLD } }]);
    expect((await h.seats.counts('perf_001'))?.held).toBe(1);
    await h.clock.advance(499);
    expect(h.events).toHaveLength(3);
    await h.clock.advance(1); // T0 + 500 + HOLD
    expect(h.events.slice(3)).toEqual([
      { id: derivedId('evt', T0 + 500 + HOLD, second.id), type: 'booking.expired', occurredAt: T0 + 500 + HOLD, booking: { ...second, status: 'expired', settledAt: T0 + 500 + HOLD } },
    ]);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect((await h.service.counts()).bookings).toEqual({ ...NONE, expired: 2 });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    await h.clock.advance(HOLD);
    expect(h.events).toHaveLength(4);
    expect(h.jobErrors).toEqual([]);
  });

  it('one job per booking until it is settled: cancelling, confirming and expiring on a read drop it; with no job run, a read still expires on the spot', async () => {
    const h = await makeBookings();
    const cancelled = await book(h);
    const paid = await book(h);
    const lapsed = await book(h);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(3);
    await h.service.cancel({ userId: USER, bookingId: cancelled.id });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(2);
    const direct = h.payments.confirmDirect({ userId: USER, bookingId: paid.id, paymentMethod: 'kakao_pay' });
    await h.clock.advance(PAY_DELAY);
    expect((await direct).status).toBe('confirmed');
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);

    h.scheduler.stop();
    await h.clock.advance(HOLD);
    expect(h.events.filter((e) => e.type === 'booking.expired')).toEqual([]);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);
    const read = await h.service.get(lapsed.id);
    expect(read).toEqual({ ...lapsed, status: 'expired', settledAt: T0 + PAY_DELAY + HOLD });
    expect(h.events.filter((e) => e.type === 'booking.expired')).toEqual([
      { id: derivedId('evt', T0 + PAY_DELAY + HOLD, lapsed.id), type: 'booking.expired', occurredAt: T0 + PAY_DELAY + HOLD, booking: read },
    ]);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect((await h.seats.counts('perf_001'))?.held).toBe(0);

    await h.scheduler.start();
    await h.clock.advance(0); // no job is left to run
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.events.filter((e) => e.type === 'booking.expired')).toHaveLength(1);
    expect((await h.service.get(paid.id)).status).toBe('confirmed');
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 198, held: 0, reserved: 2 });
    expect(h.jobErrors).toEqual([]);
  });

  it('expire(id) called directly: nothing before expiresAt, the expired booking at it, nothing after; its job then does nothing', async () => {
    const h = await makeBookings();
    h.scheduler.stop();
    const booked: Booking[] = [];
    for (let i = 0; i < 5; i++) booked.push(await book(h, 1, `user_${i}`));
    for (const b of booked) expect(await h.service.expire(b.id)).toBeUndefined();
    await h.clock.advance(HOLD - 1);
    for (const b of booked) expect(await h.service.expire(b.id)).toBeUndefined();
    await h.clock.advance(1);
    for (const b of booked) expect(await h.service.expire(b.id)).toEqual({ ...b, status: 'expired', settledAt: T0 + HOLD });
    for (const b of booked) expect(await h.service.expire(b.id)).toBeUndefined();
    expect(await h.service.expire('bk_nope')).toBeUndefined();
    expect(h.events.filter((e) => e.type === 'booking.expired').map((e) => e.booking.id)).toEqual(booked.map((b) => b.id));
    expect((await h.seats.counts('perf_001'))?.held).toBe(0);
    await h.scheduler.start();
    await h.clock.advance(0);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.events).toHaveLength(10);
    expect(h.jobErrors).toEqual([]);
  });

  it('leaves a booking whose payment is in flight or decided when its hold lapses; the payment ends it', async () => {
    const h = await makeBookings({ config: { eventProcessingDelayMs: 5000 } });
    const flying = await book(h);
    const decided = await book(h);
    await h.clock.advance(HOLD - PAY_DELAY - 10);
    expect((await pay(h, decided)).finalStatus).toBe('SUCCESS'); // its event is processed at T0 + HOLD + 4990
    const direct = h.payments.confirmDirect({ userId: USER, bookingId: flying.id, paymentMethod: 'kakao_pay' }); // answers at T0 + HOLD + 990
    await h.clock.advance(10); // T0 + HOLD: both jobs run, and look again later (a payment in flight; an event not processed yet)
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(2);
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.created']);
    expect(await h.service.get(flying.id)).toMatchObject({ status: 'pending', paymentInFlight: 'direct' });
    expect(await h.service.get(decided.id)).toMatchObject({ status: 'pending', paymentInFlight: null, paymentIntent: { status: 'SUCCESS' } });
    await h.clock.advance(PAY_DELAY);
    expect((await direct).status).toBe('confirmed');
    await h.clock.advance(4000);
    expect((await h.service.get(decided.id)).status).toBe('confirmed');
    expect(h.events.map((e) => [e.type, e.booking.id, e.occurredAt])).toEqual([
      ['booking.created', flying.id, T0],
      ['booking.created', decided.id, T0],
      ['booking.confirmed', flying.id, T0 + HOLD + 990],
      ['booking.confirmed', decided.id, T0 + HOLD + 4990],
    ]);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 196, held: 0, reserved: 4 });
    await h.clock.advance(PAY_DELAY + LEASE_MS); // the look again finds it confirmed: nothing to do
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.events).toHaveLength(4);
    expect(h.jobErrors).toEqual([]);
  });
});

describe('what a stopped process or a failing store leaves between two calls is finished by the expiry job or the inbox', () => {
  it('the insert failing: its seats stay locked until a lease after its hold ends, then its expiry job frees them', async () => {
    const h = await makeBookings();
    const kept = await book(h, 2);
    await h.clock.advance(1000);
    const insert = vi.spyOn(h.bookings, 'insert').mockRejectedValueOnce(new Error('the store is away'));
    await expect(book(h, 3)).rejects.toThrow('the store is away');
    insert.mockRestore();
    const locked = (await h.seats.seatsOf('perf_001'))?.slice(2, 5);
    expect(locked?.map((s) => [s.seatId, s.status, s.lockedUntil])).toEqual([
      ['A3', 'locked', T0 + 1000 + HOLD],
      ['A4', 'locked', T0 + 1000 + HOLD],
      ['A5', 'locked', T0 + 1000 + HOLD],
    ]);
    const orphan = locked?.[0]?.bookingId as string;
    expect(orphan).toMatch(BK_ID);
    expect(await codeOf(() => h.service.get(orphan))).toBe('NOT_FOUND');
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(2);

    await h.clock.advance(HOLD - 1000); // the kept booking's hold ends: it expires, the orphan's seats stay
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 197, held: 3, reserved: 0 });
    // The orphan's hold ends: its job finds no booking, and looks again once no insert can be under way.
    await h.clock.advance(1000);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 197, held: 3, reserved: 0 });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);
    await h.clock.advance(LEASE_MS - 1);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 197, held: 3, reserved: 0 });
    await h.clock.advance(1);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.events.map((e) => [e.type, e.booking.id])).toEqual([
      ['booking.created', kept.id],
      ['booking.expired', kept.id],
    ]);
    expect(h.jobErrors).toEqual([]);
  });

  it('the expiry job failing to be scheduled: nothing is held', async () => {
    const h = await makeBookings();
    vi.spyOn(h.scheduler, 'schedule').mockRejectedValueOnce(new Error('the store is away'));
    await expect(book(h, 3)).rejects.toThrow('the store is away');
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.published).toEqual([]);
  });

  it('a sold-out performance leaves no job behind; one that cannot be dropped (the store away) still answers SOLD_OUT, and does nothing when due', async () => {
    const h = await makeBookings();
    await book(h, 10, USER, 'perf_003');
    await book(h, 10, USER, 'perf_003');
    expect(await codeOf(() => book(h, 1, USER, 'perf_003'))).toBe('SOLD_OUT');
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(2);
    vi.spyOn(h.scheduler, 'cancel').mockRejectedValueOnce(new Error('the store is away'));
    expect(await codeOf(() => book(h, 1, USER, 'perf_003'))).toBe('SOLD_OUT');
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(3);
    await h.clock.advance(HOLD + LEASE_MS);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.created', 'booking.expired', 'booking.expired']);
    expect(await h.seats.counts('perf_003')).toEqual({ total: 20, available: 20, held: 0, reserved: 0 });
    expect(h.jobErrors).toEqual([]);
  });

  it('a cancel whose release failed: the booking is cancelled, and its expiry job frees the seats', async () => {
    const h = await makeBookings();
    const booking = await book(h, 2);
    vi.spyOn(h.seats, 'release').mockRejectedValueOnce(new Error('the store is away'));
    await expect(h.service.cancel({ userId: USER, bookingId: booking.id })).rejects.toThrow('the store is away');
    expect((await h.service.get(booking.id)).status).toBe('cancelled');
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.cancelled']);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 198, held: 2, reserved: 0 });
    await h.clock.advance(HOLD);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.jobErrors).toEqual([]);
  });

  it('a failed payment whose release failed: the inbox’s retry finishes the settlement and frees the seats', async () => {
    const h = await makeBookings();
    const booking = await book(h, 2);
    expect((await pay(h, booking, { cvv: '442' })).finalStatus).toBe('FAILURE');
    vi.spyOn(h.seats, 'release').mockRejectedValueOnce(new Error('the store is away'));
    await h.clock.advance(50); // the inbox: failed, then the release fails
    expect((await h.service.get(booking.id)).status).toBe('failed');
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 198, held: 2, reserved: 0 });
    await h.clock.advance(100); // its retry
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect((await h.service.events(booking.id)).map((e) => [e.type, e.processedAt])).toEqual([['PAYMENT_FAILED', T0 + PAY_DELAY + 150]]);
    expect(h.events.map((e) => e.type)).toEqual(['booking.created', 'booking.failed']);
    expect(h.jobErrors.map((error) => (error as Error).message)).toEqual(['the store is away']);
  });

  it('a payment left in flight by a process that stopped: a lease after the longest delay past the hold, it is ended and the booking expires', async () => {
    const h = await makeBookings({ config: { mockMinDelayMs: 100 } });
    const booking = await book(h, 2);
    await h.clock.advance(HOLD - 10);
    // As a payment's process does before its delay; it stops then.
    expect((await h.bookings.beginPayment(booking.id, USER, 'execute', h.clock.now())).kind).toBe('started');
    await h.clock.advance(10);
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'pending', paymentInFlight: 'execute' });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);
    await h.clock.advance(PAY_DELAY + LEASE_MS - 1);
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'pending', paymentInFlight: 'execute' });
    await h.clock.advance(1);
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'expired', paymentInFlight: null, paymentIntent: { status: 'PENDING' } });
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect(h.events.map((e) => [e.type, e.occurredAt])).toEqual([
      ['booking.created', T0],
      ['booking.expired', T0 + HOLD + PAY_DELAY + LEASE_MS],
    ]);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.jobErrors).toEqual([]);
  });

  it('a one-step payment recorded but not settled (the seats’ store failing after the ledger’s write): its expiry job confirms it at once, the ledger written once', async () => {
    const h = await makeBookings();
    const booking = await book(h, 2);
    vi.spyOn(h.seats, 'reserve').mockRejectedValueOnce(new Error('the store is away'));
    const direct = h.payments.confirmDirect({ userId: USER, bookingId: booking.id, paymentMethod: 'kakao_pay' });
    const failed = expect(direct).rejects.toThrow('the store is away');
    await h.clock.advance(PAY_DELAY);
    await failed;
    await h.clock.advance(0); // the expiry job, scheduled now by the failed payment
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'confirmed', paymentInFlight: null, paymentIntent: { status: 'SUCCESS' } });
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 198, held: 0, reserved: 2 });
    expect((await h.ledger.entries(booking.id)).map((e) => [e.account, e.direction, e.amount])).toEqual([
      ['CUSTOMER_PAYABLE', 'DEBIT', booking.totalAmount],
      ['MERCHANT_BALANCE', 'CREDIT', booking.totalAmount],
    ]);
    expect(h.events.map((e) => [e.type, e.occurredAt])).toEqual([
      ['booking.created', T0],
      ['booking.confirmed', T0 + PAY_DELAY],
    ]);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.jobErrors).toEqual([]);
  });

  it('a payment that failed in flight (the store away) and was ended: its booking is still held, and expires at the end of its hold', async () => {
    const h = await makeBookings();
    const booking = await book(h, 2);
    vi.spyOn(h.bookings, 'recordPayment').mockRejectedValueOnce(new Error('the store is away'));
    const result = h.payments.executePayment(payInput(booking));
    const failed = expect(result).rejects.toThrow('the store is away');
    await h.clock.advance(PAY_DELAY);
    await failed;
    await h.clock.advance(0);
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'pending', paymentInFlight: null, paymentIntent: { status: 'PENDING' } });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);
    await h.clock.advance(HOLD - PAY_DELAY - 1);
    expect((await h.service.get(booking.id)).status).toBe('pending');
    await h.clock.advance(1);
    expect(h.events.map((e) => [e.type, e.occurredAt])).toEqual([
      ['booking.created', T0],
      ['booking.expired', T0 + HOLD],
    ]);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
  });

  it('a paid booking whose inbox job was given up (8 failed attempts): its expiry job schedules the processing anew a lease after it was due', async () => {
    const h = await makeBookings();
    const booking = await book(h, 2);
    await h.clock.advance(HOLD - PAY_DELAY - 10);
    const post = vi.spyOn(h.ledger, 'post');
    for (let i = 0; i < 8; i++) post.mockRejectedValueOnce(new Error('the ledger refuses'));
    expect((await pay(h, booking)).finalStatus).toBe('SUCCESS'); // recorded at T0 + HOLD - 10; its event due 50 ms later
    await h.clock.advance(30_000); // 8 attempts, the last one given up
    expect(h.jobErrors).toHaveLength(8);
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'pending', paymentIntent: { status: 'SUCCESS' } });
    const overdueAt = T0 + HOLD - 10 + 50 + LEASE_MS;
    await h.clock.advance(overdueAt - h.clock.now() - 1);
    expect((await h.service.get(booking.id)).status).toBe('pending');
    await h.clock.advance(1);
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'confirmed' });
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 198, held: 0, reserved: 2 });
    expect((await h.service.events(booking.id)).map((e) => e.processedAt)).toEqual([overdueAt]);
    expect((await h.ledger.entries(booking.id))).toHaveLength(2);
    await h.clock.advance(LEASE_MS); // it looks once more, and finds it confirmed
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.jobErrors).toHaveLength(8);
  });

  it('a paid booking whose processing keeps failing: its processing is scheduled anew at doubling intervals, not every lease', async () => {
    const h = await makeBookings();
    const booking = await book(h, 2);
    vi.spyOn(h.ledger, 'post').mockRejectedValue(new Error('the ledger refuses'));
    await h.clock.advance(HOLD - PAY_DELAY - 10);
    await pay(h, booking); // recorded at T0 + HOLD - 10; its event due 50 ms later, tried 8 times, given up
    const overdueAt = T0 + HOLD - 10 + 50 + LEASE_MS;
    await h.clock.advance(overdueAt - 1 - h.clock.now()); // the hold's end: the job looks again at overdueAt
    const attempts = () => h.jobErrors.length;
    expect(attempts()).toBe(8);
    // Anew at overdueAt, then a lease, a lease, 2, 4 and 8 leases later: at +0, +1, +2, +4, +8 and +16 leases.
    const at = (leases: number) => overdueAt + leases * LEASE_MS;
    await h.clock.advance(at(16) + 1 - h.clock.now());
    expect(attempts()).toBe(8 + 5 * 8 + 1); // the sixth's first attempt, at once
    await h.clock.advance(at(32) - 1 - h.clock.now());
    expect(attempts()).toBe(8 + 6 * 8); // nothing between +16 and +32 leases but the sixth's other seven
    expect(await h.service.get(booking.id)).toMatchObject({ status: 'pending', paymentIntent: { status: 'SUCCESS' } });
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(1);
  });

  it('the job of a confirmed booking evicted before its hold would have ended leaves its sold seats sold', async () => {
    const h = await makeBookings({ store: { maxBookings: 1 } });
    const confirmed = await book(h, 2);
    await pay(h, confirmed);
    await h.clock.advance(50);
    expect((await h.service.get(confirmed.id)).status).toBe('confirmed');
    const next = await book(h, 1);
    expect(await codeOf(() => h.service.get(confirmed.id))).toBe('NOT_FOUND');
    await h.clock.advance(HOLD + LEASE_MS);
    expect((await h.seats.seatsOf('perf_001'))?.slice(0, 3)).toEqual([
      { seatId: 'A1', row: 'A', number: 1, status: 'reserved', bookingId: confirmed.id, lockedUntil: null },
      { seatId: 'A2', row: 'A', number: 2, status: 'reserved', bookingId: confirmed.id, lockedUntil: null },
      { seatId: 'A3', row: 'A', number: 3, status: 'available', bookingId: null, lockedUntil: null },
    ]);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 198, held: 0, reserved: 2 });
    expect((await h.service.get(next.id)).status).toBe('expired');
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.jobErrors).toEqual([]);
  });
});

describe('bounds: eviction of finished bookings', () => {
  /** A confirmed booking (paid and processed), a failed one and a cancelled one. */
  async function mixed(h: BookingHarness): Promise<{ confirmed: Booking; failed: Booking; cancelled: Booking }> {
    const confirmed = await book(h, 2);
    await pay(h, confirmed);
    await h.clock.advance(50);
    const failed = await book(h, 1);
    await pay(h, failed, { cvv: '442' });
    await h.clock.advance(50);
    const cancelled = await book(h, 1, OTHER);
    await h.service.cancel({ userId: OTHER, bookingId: cancelled.id });
    return { confirmed, failed, cancelled };
  }

  async function eventIdOf(h: BookingHarness, bookingId: string): Promise<string> {
    const [event] = await h.service.events(bookingId);
    return event!.eventId;
  }

  it('sweep(now) evicts finished bookings past the TTL with their inbox events and ledger transaction; debits still equal credits', async () => {
    const h = await makeBookings({ store: { ttlMs: 60_000 }, config: { seatHoldMs: 3_600_000 } });
    const { confirmed, failed, cancelled } = await mixed(h);
    const pending = await book(h, 3);
    const confirmedEvent = await eventIdOf(h, confirmed.id);
    const failedEvent = await eventIdOf(h, failed.id);
    expect((await h.ledger.entries()).length).toBe(2);
    expect(await h.ledger.entries(confirmed.id)).toHaveLength(2);
    expect((await h.bookings.stats()).size).toBe(4);

    await h.clock.advance(60_000 - 2 * PAY_DELAY - 100 - 1);
    expect(await h.service.sweep(h.clock.now())).toBe(0);
    await h.clock.advance(1); // confirmed was created exactly ttlMs ago
    expect(await h.service.sweep(h.clock.now())).toBe(1);
    expect(await codeOf(() => h.service.get(confirmed.id))).toBe('NOT_FOUND');
    expect(await h.ledger.entries(confirmed.id)).toEqual([]);
    expect(await h.ledger.entries()).toEqual([]);
    expect(await h.ledger.balances()).toEqual([]);
    expect(await h.ledger.imbalance()).toBe(0);
    expect(await h.service.events(confirmed.id)).toEqual([]);
    expect(await h.bookings.event(confirmedEvent)).toBeUndefined();
    expect(await h.service.events(failed.id)).toHaveLength(1);
    // The seats it bought stay sold.
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 195, held: 3, reserved: 2 });

    await h.clock.advance(10_000);
    expect(await h.service.sweep(h.clock.now())).toBe(2);
    expect((await h.bookings.stats()).size).toBe(1);
    expect(await codeOf(() => h.service.get(failed.id))).toBe('NOT_FOUND');
    expect(await codeOf(() => h.service.get(cancelled.id))).toBe('NOT_FOUND');
    expect(await h.service.events(failed.id)).toEqual([]);
    expect(await h.bookings.event(failedEvent)).toBeUndefined();
    expect(await h.service.listForUser(OTHER, { limit: 10 })).toEqual({ data: [], nextCursor: null });
    // A pending booking is never evicted, however old.
    expect((await allForUser(h, USER)).map((b) => [b.id, b.status])).toEqual([[pending.id, 'pending']]);
    expect(await h.service.counts()).toMatchObject({ bookings: { ...NONE, pending: 1 }, unprocessedEvents: 0 });
    expect(await h.service.sweep(h.clock.now())).toBe(0);
  });

  it('a booking inserted past the TTL of finished ones evicts them, ledger transaction and all', async () => {
    const h = await makeBookings({ store: { ttlMs: 60_000 } });
    const { confirmed, failed, cancelled } = await mixed(h);
    await h.clock.advance(60_000 - 2 * PAY_DELAY - 100); // T0 + 60 s: only the confirmed one is that old
    expect((await h.ledger.entries()).length).toBe(2);
    const next = await book(h, 1);
    expect(await codeOf(() => h.service.get(confirmed.id))).toBe('NOT_FOUND');
    expect(await h.ledger.entries(confirmed.id)).toEqual([]);
    expect((await h.ledger.entries()).length).toBe(0);
    expect(await h.ledger.imbalance()).toBe(0);
    expect((await h.service.get(failed.id)).status).toBe('failed');
    expect((await h.service.get(cancelled.id)).status).toBe('cancelled');
    expect((await h.service.get(next.id)).status).toBe('pending');
    expect((await h.bookings.stats()).size).toBe(3);
  });

  it('keeps at most maxBookings: the oldest finished booking makes room (its ledger transaction goes too); STORE_FULL when only pending ones are left', async () => {
    const h = await makeBookings({ store: { maxBookings: 3 } });
    const { confirmed, failed, cancelled } = await mixed(h);
    const fourth = await book(h, 1);
    expect((await h.bookings.stats()).size).toBe(3);
    expect(await codeOf(() => h.service.get(confirmed.id))).toBe('NOT_FOUND');
    expect(await h.ledger.entries(confirmed.id)).toEqual([]);
    expect((await h.ledger.entries()).length).toBe(0);
    expect(await h.ledger.imbalance()).toBe(0);
    const fifth = await book(h, 1);
    expect(await codeOf(() => h.service.get(failed.id))).toBe('NOT_FOUND');
    const sixth = await book(h, 1);
    expect(await codeOf(() => h.service.get(cancelled.id))).toBe('NOT_FOUND');

    // Three pending bookings: nothing finished is left to evict, and nothing is held for a booking that was not kept.
    const seats = await h.seats.counts();
    const jobs = await h.scheduler.pending(EXPIRE_JOB);
    const published = h.published.length;
    expect(await errorOf(() => book(h, 1))).toMatchObject({ code: 'STORE_FULL', store: 'bookings' });
    expect((await h.bookings.stats()).size).toBe(3);
    expect(await h.seats.counts()).toEqual(seats);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(jobs);
    expect(h.published).toHaveLength(published);
    expect(await Promise.all([fourth, fifth, sixth].map(async (b) => (await h.service.get(b.id)).status))).toEqual(['pending', 'pending', 'pending']);
    expect((await h.service.counts()).bookings).toEqual({ ...NONE, pending: 3 });
  });

  it('an eviction whose ledger removal failed: the new booking is still made, and the next sweep removes the evicted one’s ledger transaction', async () => {
    const h = await makeBookings({ store: { maxBookings: 3 } });
    const { confirmed } = await mixed(h);
    expect(await h.ledger.entries(confirmed.id)).toHaveLength(2);
    vi.spyOn(h.ledger, 'removeReference').mockRejectedValueOnce(new Error('the store is away'));
    const fourth = await book(h, 1);
    expect(await codeOf(() => h.service.get(confirmed.id))).toBe('NOT_FOUND');
    expect((await h.service.get(fourth.id)).status).toBe('pending');
    expect(await h.ledger.entries(confirmed.id)).toHaveLength(2);
    expect(await h.bookings.toForget(10)).toEqual([confirmed.id]);
    expect(await h.service.sweep(h.clock.now())).toBe(0);
    expect(await h.ledger.entries(confirmed.id)).toEqual([]);
    expect(await h.ledger.entries()).toEqual([]);
    expect(await h.ledger.imbalance()).toBe(0);
    expect(await h.bookings.toForget(10)).toEqual([]);
  });

  it('keeps a booking while its payment is in flight or its event is unprocessed; then it can go, ledger transaction and all', async () => {
    const h = await makeBookings({ store: { ttlMs: 0, maxBookings: 2 } });
    const decided = await book(h, 1);
    await pay(h, decided); // decided: pending until its event is processed at T0 + 1050
    const flying = await book(h, 1, OTHER);
    const paying = h.payments.executePayment(payInput(flying)); // decided at T0 + 2000
    expect(await h.service.counts()).toMatchObject({ paymentsInFlight: 1, unprocessedEvents: 1 });
    expect(await h.service.sweep(h.clock.now())).toBe(0);
    expect(await codeOf(() => book(h, 1))).toBe('STORE_FULL');

    await h.clock.advance(50); // processed: confirmed, and now evictable (TTL 0)
    expect((await h.service.get(decided.id)).status).toBe('confirmed');
    expect((await h.ledger.entries()).length).toBe(2);
    expect(await h.service.sweep(h.clock.now())).toBe(1);
    expect(await h.ledger.entries(decided.id)).toEqual([]);
    expect((await h.bookings.stats()).size).toBe(1);

    await h.clock.advance(PAY_DELAY - 50);
    expect((await paying).finalStatus).toBe('SUCCESS');
    expect(await h.service.sweep(h.clock.now())).toBe(0);
    await h.clock.advance(50);
    expect((await h.service.get(flying.id)).status).toBe('confirmed');
    expect((await h.ledger.entries()).length).toBe(2);
    expect(await h.service.sweep(h.clock.now())).toBe(1);
    expect((await h.bookings.stats()).size).toBe(0);
    expect((await h.ledger.entries()).length).toBe(0);
    expect(await h.ledger.imbalance()).toBe(0);
    expect(await h.seats.counts('perf_001')).toEqual({ total: 200, available: 198, held: 0, reserved: 2 });
    expect(h.jobErrors).toEqual([]);
  });

  it('a random mix with tight bounds: the ledger holds exactly the kept confirmed bookings and stays balanced', async () => {
    const h = await makeBookings({
      store: { ttlMs: 30_000, maxBookings: 40 },
      config: { seatHoldMs: 10_000, mockMinDelayMs: 0, mockMaxDelayMs: 0, eventProcessingDelayMs: 10 },
    });
    const rng = createRandom(7);
    const users = ['u0', 'u1', 'u2'];
    const kept = async (): Promise<Booking[]> => (await Promise.all(users.map((u) => allForUser(h, u)))).flat();
    /** Every inbox event seen, with its booking: stored exactly while its booking is kept. */
    const eventOf = new Map<string, string>();
    /** Evicted by the sweep, and by inserts that made room: both must happen for the test to mean anything. */
    let swept = 0;
    let madeRoom = 0;
    let largest = 0;
    for (let step = 0; step < 1500; step++) {
      const size = (await h.bookings.stats()).size;
      const roll = rng.next();
      const pending = (await kept()).filter((b) => b.status === 'pending');
      if (roll < 0.35 || pending.length === 0) {
        try {
          await book(h, 1 + Math.floor(rng.next() * 4), users[Math.floor(rng.next() * users.length)]!);
          if ((await h.bookings.stats()).size <= size) madeRoom++;
        } catch (error) {
          expect(['SOLD_OUT', 'STORE_FULL']).toContain((error as DomainError).code);
        }
      } else if (roll < 0.7) {
        const target = pending[Math.floor(rng.next() * pending.length)]!;
        await h.payments.executePayment(payInput(target, { cvv: `12${Math.floor(rng.next() * 10)}` })).catch(() => undefined);
      } else if (roll < 0.8) {
        const target = pending[Math.floor(rng.next() * pending.length)]!;
        try {
          await h.service.cancel({ userId: target.userId, bookingId: target.id });
        } catch {
          // a payment in flight or decided
        }
      } else {
        await h.clock.advance(Math.floor(rng.next() * 4000));
        swept += await h.service.sweep(h.clock.now()); // the app's periodic sweep
      }
      await settle();
      const all = await kept();
      const confirmed = all.filter((b) => b.status === 'confirmed');
      expect(await h.ledger.imbalance()).toBe(0);
      expect((await h.ledger.entries()).length).toBe(2 * confirmed.length);
      const merchant = (await h.ledger.balances()).find((b) => b.account === 'MERCHANT_BALANCE');
      expect(merchant?.credits ?? 0).toBe(confirmed.reduce((sum, b) => sum + b.totalAmount, 0));
      expect((await h.bookings.stats()).size).toBe(all.length);
      expect(Object.values((await h.service.counts()).bookings).reduce((a, b) => a + b, 0)).toBe(all.length);
      expect(all.length).toBeLessThanOrEqual(40);
      largest = Math.max(largest, all.length);
      for (const b of all) for (const e of await h.service.events(b.id)) eventOf.set(e.eventId, b.id);
      const wrong: string[] = [];
      for (const [eventId, bookingId] of eventOf) {
        const live = all.some((b) => b.id === bookingId);
        const stored = (await h.bookings.event(eventId)) !== undefined;
        if (stored !== live) wrong.push(`${eventId} of ${bookingId}: stored ${stored}, booking kept ${live}`);
        if (!live) eventOf.delete(eventId);
      }
      expect(wrong).toEqual([]);
    }
    expect(swept).toBeGreaterThan(0);
    expect(madeRoom).toBeGreaterThan(0);
    expect(largest).toBe(40);
    expect(h.jobErrors).toEqual([]);
    expect(h.busErrors).toEqual([]);
  });
});

describe('queries', () => {
  it('get: NOT_FOUND for an unknown id; hands out copies, and keeps none of what it handed out', async () => {
    const h = await makeBookings();
    expect(await codeOf(() => h.service.get('bk_nope'))).toBe('NOT_FOUND');
    const booking = await book(h);
    const original = structuredClone(booking);
    const copy = await h.service.get(booking.id);
    copy.status = 'confirmed';
    copy.paymentIntent.status = 'SUCCESS';
    booking.status = 'failed';
    booking.paymentIntent.pgMockData = { isSuccess: true, failureCode: null, processedAt: 0 };
    expect(await h.service.get(booking.id)).toEqual(original);
    expect(h.events[0]!.booking).toEqual(original);
    // `seatIds` is readonly only to the type checker: a caller in plain JavaScript can still push to it.
    (copy.seatIds as string[]).push('Z9');
    (booking.seatIds as string[]).push('Y1');
    expect(await h.service.get(booking.id)).toEqual(original);
    expect(h.events[0]!.booking).toEqual(original);
  });

  it('listForUser: the user’s bookings, newest first, a page at a time, lapsed holds expired on the spot', async () => {
    const h = await makeBookings();
    h.scheduler.stop(); // no job runs: the read is what expires
    const a = await book(h, 1);
    await h.clock.advance(1000);
    const b = await book(h, 2);
    await book(h, 1, OTHER);
    await h.clock.advance(HOLD - 500);
    const expired = { ...a, status: 'expired', settledAt: T0 + HOLD + 500 };
    expect(await h.service.listForUser(USER, { limit: 10 })).toEqual({ data: [b, expired], nextCursor: null });
    expect(h.events.filter((e) => e.type === 'booking.expired')).toEqual([
      { id: derivedId('evt', T0 + HOLD + 500, a.id), type: 'booking.expired', occurredAt: T0 + HOLD + 500, booking: expired },
    ]);
    expect(await h.service.listForUser(USER, { limit: 1 })).toEqual({ data: [b], nextCursor: b.id });
    expect(await h.service.listForUser(USER, { limit: 1, cursor: b.id })).toEqual({ data: [expired], nextCursor: null });
    expect(await h.service.listForUser('nobody', { limit: 10 })).toEqual({ data: [], nextCursor: null });
    expect(h.events.filter((e) => e.type === 'booking.expired')).toHaveLength(1);
  });

  it('events: one booking’s, in the order written; none for an unknown booking', async () => {
    const h = await makeBookings();
    const a = await book(h);
    const b = await book(h);
    await pay(h, a);
    await pay(h, b, { cvv: '442' });
    expect((await h.service.events(a.id)).map((e) => [e.bookingId, e.type, e.createdAt])).toEqual([[a.id, 'PAYMENT_SUCCEEDED', T0 + PAY_DELAY]]);
    expect((await h.service.events(b.id)).map((e) => [e.bookingId, e.type, e.createdAt])).toEqual([[b.id, 'PAYMENT_FAILED', T0 + 2 * PAY_DELAY]]);
    expect(await h.service.events('bk_nope')).toEqual([]);
  });

  it('performances: the catalog, NOT_FOUND for an unknown one', async () => {
    const h = await makeBookings();
    expect(h.service.performances().map((p) => p.id)).toEqual(['perf_001', 'perf_002', 'perf_003']);
    expect(h.service.performance('perf_003')).toMatchObject({ seatsPerRow: 10 });
    expect(await codeOf(() => h.service.performance('perf_999'))).toBe('NOT_FOUND');
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
    const h = await makeBookings({ config: { ...config, seatHoldMs: 20_000 }, performances: CATALOG, random: createRandom(99) });
    const rng = createRandom(2026);
    const pick = <T,>(items: readonly T[]): T => items[Math.floor(rng.next() * items.length)] as T;
    /** The last known state of every booking, from the bus alone (booking.created included): no reads that could expire anything. */
    const mirror = new Map<string, Booking>();
    let seen = 0;
    const tally: Record<string, number> = {};
    const count = (key: string): void => void (tally[key] = (tally[key] ?? 0) + 1);
    const pendingIds = (): string[] => [...mirror.values()].filter((b) => b.status === 'pending').map((b) => b.id);

    const check = async (): Promise<void> => {
      for (; seen < h.events.length; seen++) mirror.set(h.events[seen]!.booking.id, h.events[seen]!.booking);
      expect(await h.ledger.imbalance()).toBe(0);
      const byStatus: Record<BookingStatus, number> = { ...NONE };
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
      const counts = await h.service.counts();
      expect(counts.bookings).toEqual(byStatus);
      expect(counts.seats).toMatchObject({ held: heldSeats, reserved: reservedSeats });
      expect(counts.paymentsInFlight).toBe(h.payments.inFlight);
      // Every seat is in exactly the state its (single) owning booking implies: plain comparisons, one expect.
      const wrong: string[] = [];
      for (const p of CATALOG) {
        for (const seat of (await h.seats.seatsOf(p.id))!) {
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
      const balances = await h.ledger.balances();
      const merchant = balances.find((x) => x.account === 'MERCHANT_BALANCE');
      const payable = balances.find((x) => x.account === 'CUSTOMER_PAYABLE');
      expect(merchant?.credits ?? 0).toBe(sold);
      expect(payable?.debits ?? 0).toBe(sold);
      expect((await h.ledger.entries()).length).toBe(2 * byStatus.confirmed);
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
          await h.service.book({ userId: pick(USERS), performanceId: pick(CATALOG).id, quantity: 1 + Math.floor(rng.next() * 6), paymentMethod: 'CREDIT_CARD' });
          count('book:ok');
        } catch (error) {
          count(`book:${(error as DomainError).code}`);
        }
      } else if (roll < 0.55) {
        const target = mirror.get(pick(pending))!;
        const userId = rng.next() < 0.05 ? 'intruder' : target.userId;
        const cvv = `12${Math.floor(rng.next() * 10)}`;
        const paymentMethodToken = pick(['tok_visa', 'tok_mastercard', 'tok_chargeDeclined', 'tok_visa_creditCard', '4242424242424242']);
        swallow(h.payments.executePayment({ userId, bookingId: target.id, paymentMethodToken, cvv }), 'execute');
        if (rng.next() < 0.1) swallow(h.payments.executePayment({ userId, bookingId: target.id, paymentMethodToken, cvv }), 'execute-again');
      } else if (roll < 0.65) {
        const target = mirror.get(pick(pending))!;
        swallow(h.payments.confirmDirect({ userId: target.userId, bookingId: target.id, paymentMethod: 'kakao_pay' }), 'direct');
      } else if (roll < 0.75) {
        const target = mirror.get(pick(pending))!;
        try {
          await h.service.cancel({ userId: target.userId, bookingId: target.id });
          count('cancel:ok');
        } catch (error) {
          count(`cancel:${(error as DomainError).code}`);
        }
      } else if (roll < 0.97) {
        await h.clock.advance(Math.floor(rng.next() * 1500));
      } else {
        await h.clock.advance(20_000); // every hold lapses
      }
      await settle();
      await check();
    }
    await h.clock.advance(25_000);
    await Promise.all(inFlight);
    await check();

    const counts = await h.service.counts();
    expect(counts).toMatchObject({ paymentsInFlight: 0, unprocessedEvents: 0, bookings: { pending: 0 } });
    for (const status of ['confirmed', 'failed', 'expired', 'cancelled'] as const) expect(counts.bookings[status]).toBeGreaterThan(20);
    for (const key of ['book:ok', 'book:SOLD_OUT', 'execute:ok', 'execute:FORBIDDEN', 'execute:PAYMENT_ALREADY_PROCESSED', 'direct:ok', 'cancel:ok']) {
      expect(tally[key], key).toBeGreaterThan(0);
    }
    expect(h.events.filter((e) => e.type === 'booking.created')).toHaveLength(tally['book:ok']!);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    expect(h.busErrors).toEqual([]);
    expect(h.jobErrors).toEqual([]);
  });
});
