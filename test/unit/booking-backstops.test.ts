import { describe, expect, it } from 'vitest';
import type { Booking } from '../../src/core/bookings/booking.ts';
import { EXPIRE_JOB } from '../../src/core/bookings/settlement.ts';
import type { BookingEvent } from '../../src/core/events.ts';
import { derivedId } from '../../src/core/ids.ts';
import { book, makeBookings, pay, PAY_DELAY, track, USER, type BookingHarness } from './support.ts';

/**
 * A booking's status event on a store shared by several processes (issue 14 "kill -9"): its
 * expiry job is the event's backstop, so a process killed after the change (or a store that fails
 * then) leaves the event to that job, which makes the same event again.
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
/** The shared scheduler's lease (test/unit/support.ts `sharedScheduler`). */
const LEASE = 30_000;
const HOLD = 600_000;

/**
 * A durable part for every delivered booking event (as the webhook subscriber has with Redis): it
 * records the expiry jobs waiting and their earliest due time when the event is told, and fails
 * (as a store that is away) for the first `failing` of them, or never settles for the first
 * `hanging` (as a process killed while its webhook was being queued).
 */
function watch(h: BookingHarness, options: { failing?: number; hanging?: number } = {}) {
  const seen: Array<{ type: string; jobs: number; dueAt: number | undefined }> = [];
  let n = 0;
  h.bus.subscribe((event) => {
    if (!['booking.confirmed', 'booking.failed', 'booking.expired', 'booking.cancelled'].includes(event.type)) return undefined;
    const index = n++;
    if (index < (options.hanging ?? 0)) return new Promise<void>(() => {});
    return Promise.all([h.schedulerStore.count(EXPIRE_JOB), h.schedulerStore.nextDueAt()]).then(([jobs, dueAt]) => {
      seen.push({ type: event.type, jobs, dueAt });
      if (index < (options.failing ?? 0)) throw new Error('the delivery stream is away');
    });
  });
  return seen;
}

function settledEvent(type: BookingEvent['type'], booking: Booking): BookingEvent {
  return { id: derivedId('evt', booking.settledAt as number, booking.id), type, occurredAt: booking.settledAt as number, booking };
}

const statuses = (h: BookingHarness) => h.events.map((e) => `${e.type}${e.again === true ? ' again' : ''}`);

describe('a booking’s status event on a shared store (issue 14 "kill -9")', () => {
  it('a cancel brings the expiry job forward to a lease from now, tells booking.cancelled once its webhook is queued (id from the booking and settledAt), then drops the job', async () => {
    const h = await makeBookings({ shared: true });
    const seen = watch(h);
    const booking = await book(h);
    await h.clock.advance(10);
    const cancelled = await h.service.cancel({ userId: USER, bookingId: booking.id });
    expect(cancelled).toEqual({ ...booking, status: 'cancelled', settledAt: T0 + 10 });
    // The job, still there and due a lease after the cancel (not at the hold's end), while the webhook was being queued.
    expect(seen).toEqual([{ type: 'booking.cancelled', jobs: 1, dueAt: T0 + 10 + LEASE }]);
    expect(await h.schedulerStore.count(EXPIRE_JOB)).toBe(0);
    expect(h.events.slice(1)).toEqual([settledEvent('booking.cancelled', cancelled)]);
    await h.clock.advance(HOLD);
    expect(statuses(h)).toEqual(['booking.created', 'booking.cancelled']);
    expect((await h.seats.counts('perf_001'))?.held).toBe(0);
    expect(h.busErrors).toEqual([]);
    expect(h.jobErrors).toEqual([]);
  });

  it('a cancel whose webhook cannot be queued still answers the cancelled booking; a lease later its job makes the same event again, marked again, once', async () => {
    const h = await makeBookings({ shared: true });
    watch(h, { failing: 1 });
    const booking = await book(h);
    await h.clock.advance(10);
    const cancelled = await h.service.cancel({ userId: USER, bookingId: booking.id });
    expect(cancelled.status).toBe('cancelled');
    expect(h.busErrors.map((e) => [String(e.error), e.event.type])).toEqual([['Error: the delivery stream is away', 'booking.cancelled']]);
    expect((await h.seats.counts('perf_001'))?.held).toBe(0);
    expect(await h.schedulerStore.count(EXPIRE_JOB)).toBe(1);
    await h.clock.advance(LEASE - 1);
    expect(statuses(h)).toEqual(['booking.created', 'booking.cancelled']);
    await h.clock.advance(1);
    expect(h.events.slice(1)).toEqual([settledEvent('booking.cancelled', cancelled), { ...settledEvent('booking.cancelled', cancelled), again: true }]);
    expect(await h.schedulerStore.count(EXPIRE_JOB)).toBe(0);
    await h.clock.advance(HOLD);
    expect(h.events).toHaveLength(3);
    expect(h.jobErrors).toEqual([]);
  });

  it('a process killed while the cancel’s webhook was being queued: the job brought forward before the change makes the event a lease later', async () => {
    const h = await makeBookings({ shared: true });
    watch(h, { hanging: 1 });
    const booking = await book(h);
    const request = track(h.service.cancel({ userId: USER, bookingId: booking.id }));
    await h.clock.advance(LEASE);
    expect(request.settled).toBe(false);
    const stored = await h.bookings.get(booking.id);
    expect(stored).toEqual({ ...booking, status: 'cancelled', settledAt: T0 });
    expect(h.events.slice(1)).toEqual([settledEvent('booking.cancelled', stored!), { ...settledEvent('booking.cancelled', stored!), again: true }]);
    // Its seats, never freed by the cut-off request, are freed by the job.
    expect((await h.seats.counts('perf_001'))?.held).toBe(0);
    expect(await h.schedulerStore.count(EXPIRE_JOB)).toBe(0);
  });

  it('a refused cancel (a payment in flight) leaves the booking to its payment; the job brought forward looks again and changes nothing', async () => {
    const h = await makeBookings({ shared: true });
    const booking = await book(h);
    const payment = track(pay(h, booking));
    expect((await h.bookings.get(booking.id))?.paymentInFlight).toBe('execute');
    await expect(h.service.cancel({ userId: USER, bookingId: booking.id })).rejects.toMatchObject({ code: 'PAYMENT_ALREADY_PROCESSED' });
    await h.clock.advance(PAY_DELAY + 50);
    expect(payment.value?.finalStatus).toBe('SUCCESS');
    expect(statuses(h)).toEqual(['booking.created', 'booking.confirmed']);
    await h.clock.advance(HOLD);
    expect(statuses(h)).toEqual(['booking.created', 'booking.confirmed']);
    expect(h.jobErrors).toEqual([]);
  });

  it('an inbox settlement whose webhook cannot be queued: confirmed all the same, and its expiry job, brought forward to a lease later, makes booking.confirmed again once', async () => {
    const h = await makeBookings({ shared: true });
    const seen = watch(h, { failing: 1 });
    const booking = await book(h);
    await pay(h, booking);
    await h.clock.advance(50);
    const confirmed = await h.bookings.get(booking.id);
    expect(confirmed).toMatchObject({ status: 'confirmed', settledAt: T0 + PAY_DELAY + 50 });
    expect(seen.map((s) => [s.type, s.jobs])).toEqual([['booking.confirmed', 1]]);
    expect((await h.service.events(booking.id))[0]?.processedAt).toBe(T0 + PAY_DELAY + 50);
    await h.clock.advance(LEASE);
    expect(h.events.slice(1)).toEqual([settledEvent('booking.confirmed', confirmed!), { ...settledEvent('booking.confirmed', confirmed!), again: true }]);
    expect(await h.schedulerStore.count(EXPIRE_JOB)).toBe(0);
    expect(await h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 2 });
    expect(h.jobErrors).toEqual([]);
  });

  it('a one-step payment brings the expiry job forward before it records: a process killed after recording leaves the settlement to the job, a lease later, as the first making', async () => {
    const h = await makeBookings({ shared: true });
    watch(h);
    const booking = await book(h);
    // The first ledger post never returns: the process is gone after the payment was recorded.
    const post = h.ledger.post.bind(h.ledger);
    let posts = 0;
    h.ledger.post = (transaction) => (posts++ === 0 ? new Promise(() => {}) : post(transaction));
    const request = track(h.payments.confirmDirect({ userId: USER, bookingId: booking.id, paymentMethod: 'kakao_pay' }));
    await h.clock.advance(PAY_DELAY);
    expect(await h.bookings.get(booking.id)).toMatchObject({ status: 'pending', paymentIntent: { status: 'SUCCESS' } });
    await h.clock.advance(LEASE - 1);
    expect(statuses(h)).toEqual(['booking.created']);
    await h.clock.advance(1);
    const confirmed = await h.bookings.get(booking.id);
    expect(confirmed).toMatchObject({ status: 'confirmed', settledAt: T0 + PAY_DELAY + LEASE });
    expect(h.events.slice(1)).toEqual([settledEvent('booking.confirmed', confirmed!)]);
    expect(request.settled).toBe(false);
    expect(await h.schedulerStore.count(EXPIRE_JOB)).toBe(0);
    expect(await h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 2 });
  });

  it('a settlement run again (its job’s process died after the change) makes the event again, marked again', async () => {
    const h = await makeBookings({ shared: true });
    const booking = await book(h);
    await pay(h, booking);
    await h.clock.advance(50);
    const confirmed = await h.bookings.get(booking.id);
    await h.clock.advance(5);
    await h.settlement.confirm(confirmed!);
    expect(h.events.slice(1)).toEqual([settledEvent('booking.confirmed', confirmed!), { ...settledEvent('booking.confirmed', confirmed!), again: true }]);
    expect(await h.ledger.entries()).toHaveLength(2);
    expect(await h.seats.counts('perf_001')).toMatchObject({ held: 0, reserved: 2 });
  });

  it('a lapsed hold expired by a read tells booking.expired and drops the job; when its webhook cannot be queued the job makes it again a lease later', async () => {
    const h = await makeBookings({ shared: true });
    watch(h, { failing: 1 });
    h.scheduler.stop();
    const first = await book(h, 1);
    const second = await book(h, 1);
    await h.clock.advance(HOLD);
    const failing = await h.service.get(first.id);
    const told = await h.service.get(second.id);
    expect([failing.status, told.status]).toEqual(['expired', 'expired']);
    expect(h.busErrors.map((e) => e.event.id)).toEqual([derivedId('evt', T0 + HOLD, first.id)]);
    await h.scheduler.start();
    await h.clock.advance(LEASE);
    expect(h.events.slice(2)).toEqual([settledEvent('booking.expired', failing), settledEvent('booking.expired', told), { ...settledEvent('booking.expired', failing), again: true }]);
    expect(await h.schedulerStore.count(EXPIRE_JOB)).toBe(0);
    expect((await h.seats.counts('perf_001'))?.held).toBe(0);
    expect(h.jobErrors).toEqual([]);
  });

  it('memory (a scheduler of this process alone): nothing is made again, and a settled booking’s job is dropped', async () => {
    const h = await makeBookings();
    const booking = await book(h);
    await pay(h, booking);
    await h.clock.advance(50);
    expect(await h.scheduler.pending(EXPIRE_JOB)).toBe(0);
    const confirmed = await h.bookings.get(booking.id);
    await h.settlement.confirm(confirmed!);
    await h.clock.advance(HOLD);
    expect(h.events.slice(1)).toEqual([settledEvent('booking.confirmed', confirmed!)]);
  });
});
