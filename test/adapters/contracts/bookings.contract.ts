import { describe, expect, it } from 'vitest';
import type { Booking, BookingCounts, BookingPaymentIntent, InboxEvent } from '../../../src/core/bookings/booking.ts';
import type { BookingStore } from '../../../src/core/ports.ts';
import { aBooking, anInboxEvent, concurrently, DAY, HOUR, MINUTE, newestFirst, pageAll, T0, tally } from './fixtures.ts';

export interface BookingStoreOptions {
  /** Finished bookings older than this (from creation) may be swept. */
  ttlMs: number;
  maxBookings: number;
}

export type BookingStoreFactory = (options: BookingStoreOptions) => Promise<BookingStore> | BookingStore;

/** When the tests' transitions settle a booking: it is kept as its `settledAt`. */
const SETTLED = T0 + 5;
const PAID: BookingPaymentIntent = { status: 'SUCCESS', pgMockData: { isSuccess: true, failureCode: null, processedAt: T0 + MINUTE } };

function counts(partial: Partial<BookingCounts['bookings']>, paymentsInFlight = 0, unprocessedEvents = 0): BookingCounts {
  return { bookings: { pending: 0, confirmed: 0, failed: 0, expired: 0, cancelled: 0, ...partial }, paymentsInFlight, unprocessedEvents };
}

/** The BookingStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function bookingStoreContract(name: string, make: BookingStoreFactory): void {
  async function storeWith(...bookings: Booking[]): Promise<BookingStore> {
    const store = await make({ ttlMs: DAY, maxBookings: 1_000 });
    for (const booking of bookings) expect(await store.insert(booking)).toEqual({ ok: true, evicted: [] });
    return store;
  }

  /** Takes a booking through a payment to its recorded result; the inbox event written. */
  async function pay(store: BookingStore, booking: Booking, event = anInboxEvent(booking.id)): Promise<InboxEvent> {
    expect((await store.beginPayment(booking.id, booking.userId, 'execute', T0 + 1)).kind).toBe('started');
    expect(await store.recordPayment(booking.id, PAID, event)).toBeDefined();
    return event;
  }

  describe(`BookingStore contract: ${name}`, () => {
    it('get returns the whole inserted booking; an unknown id is undefined', async () => {
      const booking = aBooking();
      const store = await storeWith(booking);
      expect(await store.get(booking.id)).toEqual(booking);
      expect(await store.get('bk_unknown')).toBeUndefined();
      expect(await store.stats()).toEqual({ size: 1, max: 1_000 });
    });

    it('records go in and come out as copies', async () => {
      const booking = aBooking();
      const expected = structuredClone(booking);
      const store = await storeWith(booking);
      booking.status = 'cancelled';
      booking.paymentIntent.status = 'FAILURE';
      const got = (await store.get(booking.id)) as Booking;
      got.paymentIntent.status = 'SUCCESS';
      ((await store.listForUser('user_1', { limit: 5 })).data[0] as Booking).status = 'failed';
      const begun = await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1);
      if (begun.kind !== 'started') throw new Error(`unexpected ${begun.kind}`);
      begun.booking.paymentInFlight = null;
      const event = anInboxEvent(booking.id);
      const recorded = (await store.recordPayment(booking.id, PAID, event)) as Booking;
      (recorded.paymentIntent.pgMockData as { isSuccess: boolean }).isSuccess = false;
      const eventExpected = structuredClone(event);
      event.details.amount = 1;
      ((await store.events(booking.id))[0] as InboxEvent).details.currency = 'USD';
      ((await store.event(event.eventId)) as InboxEvent).processedAt = 5;
      expect(await store.get(booking.id)).toEqual({ ...expected, paymentIntent: PAID });
      expect(await store.events(booking.id)).toEqual([eventExpected]);
    });

    it('listForUser lists a user’s bookings newest first and pages through each once', async () => {
      const mine = Array.from({ length: 7 }, (_, i) => aBooking({ createdAt: T0 + i }));
      const theirs = aBooking({ userId: 'user_2' });
      const store = await storeWith(...mine.slice(0, 4), theirs, ...mine.slice(4));
      expect(await store.listForUser('user_1', { limit: 3 })).toEqual({ data: newestFirst(mine).slice(0, 3), nextCursor: expect.any(String) });
      expect((await pageAll(3, (page) => store.listForUser('user_1', page))).records).toEqual(newestFirst(mine));
      expect(await store.listForUser('user_2', { limit: 3 })).toEqual({ data: [theirs], nextCursor: null });
      expect(await store.listForUser('nobody', { limit: 3 })).toEqual({ data: [], nextCursor: null });
    });

    it('listRecent lists every booking newest first, whoever its user and whatever its status, and pages through each once', async () => {
      const all = Array.from({ length: 7 }, (_, i) => aBooking({ createdAt: T0 + i, userId: `user_${i % 3}` }));
      const store = await storeWith(...all);
      await store.transition(all[2]!.id, ['pending'], 'cancelled', SETTLED);
      const expected = newestFirst(all).map((b) => (b.id === all[2]!.id ? { ...b, status: 'cancelled' as const, settledAt: SETTLED } : b));
      expect(await store.listRecent({ limit: 3 })).toEqual({ data: expected.slice(0, 3), nextCursor: expect.any(String) });
      expect((await pageAll(3, (page) => store.listRecent(page))).records).toEqual(expected);
      expect(await (await make({ ttlMs: DAY, maxBookings: 10 })).listRecent({ limit: 3 })).toEqual({ data: [], nextCursor: null });
    });

    describe('beginPayment', () => {
      it('starts a payment on the caller’s pending, unpaid booking', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        const inFlight: Booking = { ...booking, paymentInFlight: 'direct' };
        expect(await store.beginPayment(booking.id, 'user_1', 'direct', T0 + 1)).toEqual({ kind: 'started', booking: inFlight });
        expect(await store.get(booking.id)).toEqual(inFlight);
        expect(await store.counts()).toEqual(counts({ pending: 1 }, 1));
      });

      it('refuses an unknown booking, and another user’s whatever its state', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        expect(await store.beginPayment('bk_unknown', 'user_1', 'execute', T0)).toEqual({ kind: 'not_found' });
        expect(await store.beginPayment(booking.id, 'user_2', 'execute', T0 + DAY)).toEqual({ kind: 'forbidden', booking });
        expect(await store.get(booking.id)).toEqual(booking);
      });

      it('expires a booking whose hold has lapsed (now >= expiresAt), then says it is expired', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        const expired: Booking = { ...booking, status: 'expired', settledAt: booking.expiresAt };
        expect(await store.beginPayment(booking.id, 'user_1', 'execute', booking.expiresAt)).toEqual({ kind: 'expired_now', booking: expired });
        expect(await store.get(booking.id)).toEqual(expired);
        expect(await store.beginPayment(booking.id, 'user_1', 'execute', booking.expiresAt)).toEqual({ kind: 'expired', booking: expired });
        expect(await store.counts()).toEqual(counts({ expired: 1 }));
      });

      it('is already processed while a payment is in flight and once paid', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1);
        expect(await store.beginPayment(booking.id, 'user_1', 'direct', T0 + 2)).toEqual({ kind: 'already_processed', booking: { ...booking, paymentInFlight: 'execute' } });
        await store.recordPayment(booking.id, PAID, anInboxEvent(booking.id));
        const paid: Booking = { ...booking, paymentIntent: PAID };
        expect(await store.beginPayment(booking.id, 'user_1', 'direct', T0 + 3)).toEqual({ kind: 'already_processed', booking: paid });
        await store.transition(booking.id, ['pending'], 'confirmed', SETTLED);
        expect(await store.beginPayment(booking.id, 'user_1', 'direct', T0 + 4)).toEqual({ kind: 'already_processed', booking: { ...paid, status: 'confirmed', settledAt: SETTLED } });
      });
    });

    describe('a payment in flight whose process is gone (lostAfter)', () => {
      it('is ended by a begin made past its own lostAfter, which starts in its place; the gone payment can record nothing, the new one can', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        expect((await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 10, 'tok_gone', T0 + 20)).kind).toBe('started');
        // Not past T0 + 20 yet: still in flight, whatever the later begin's own lostAfter.
        expect(await store.beginPayment(booking.id, 'user_1', 'direct', T0 + 20, 'tok_new', T0 + 21)).toEqual({ kind: 'already_processed', booking: { ...booking, paymentInFlight: 'execute' } });
        expect(await store.beginPayment(booking.id, 'user_1', 'direct', T0 + 21, 'tok_new', T0 + 100)).toEqual({ kind: 'started', booking: { ...booking, paymentInFlight: 'direct' }, tookOver: true });
        expect(await store.counts()).toEqual(counts({ pending: 1 }, 1));
        // The gone payment's process, had it only stalled: its result is not this payment's, nor is its abort.
        const late = anInboxEvent(booking.id, { eventId: 'evt_late' });
        expect(await store.recordPayment(booking.id, PAID, late, undefined, 'tok_gone')).toBeUndefined();
        await store.abortPayment(booking.id, 'tok_gone');
        expect([await store.get(booking.id), await store.event(late.eventId)]).toEqual([{ ...booking, paymentInFlight: 'direct' }, undefined]);
        // The new one is judged by its own lostAfter (T0 + 100).
        expect((await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 100, 'tok_third', T0 + 200)).kind).toBe('already_processed');
        const event = anInboxEvent(booking.id);
        expect(await store.recordPayment(booking.id, PAID, event, 'KAKAO_PAY', 'tok_new')).toEqual({ ...booking, paymentIntent: PAID, paymentMethod: 'KAKAO_PAY' });
        expect([await store.events(booking.id), await store.counts()]).toEqual([[event], counts({ pending: 1 }, 0, 1)]);
      });

      it('one begun without lostAfter (as by an earlier version) is never taken over, even on a booking an earlier payment of which had one', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1, 'tok_first', T0 + 2);
        await store.abortPayment(booking.id, 'tok_first');
        expect((await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 3, 'tok_old')).kind).toBe('started');
        expect(await store.beginPayment(booking.id, 'user_1', 'direct', T0 + DAY / 2, 'tok_new', T0 + DAY)).toEqual({ kind: 'already_processed', booking: { ...booking, paymentInFlight: 'execute' } });
      });

      it('is ended by a cancel (`transition` with `unpaid`) made past its lostAfter, which cancels the booking; the gone payment can record nothing', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 10, 'tok_gone', T0 + 20);
        const inFlight: Booking = { ...booking, paymentInFlight: 'execute' };
        expect(await store.transition(booking.id, ['pending'], 'cancelled', T0 + 20, { unpaid: true })).toEqual({ ok: false, current: inFlight });
        // A settlement's transition (no `unpaid`) never ends it, past its lostAfter or not.
        expect(await store.transition(booking.id, ['pending'], 'failed', T0 + 21)).toEqual({ ok: false, current: inFlight });
        expect(await store.counts()).toEqual(counts({ pending: 1 }, 1));
        const cancelled: Booking = { ...booking, status: 'cancelled', settledAt: T0 + 21 };
        expect(await store.transition(booking.id, ['pending'], 'cancelled', T0 + 21, { unpaid: true })).toEqual({ ok: true, record: cancelled, tookOver: true });
        expect(await store.counts()).toEqual(counts({ cancelled: 1 }));
        const late = anInboxEvent(booking.id, { eventId: 'evt_late' });
        expect(await store.recordPayment(booking.id, PAID, late, undefined, 'tok_gone')).toBeUndefined();
        await store.abortPayment(booking.id, 'tok_gone');
        expect([await store.get(booking.id), await store.event(late.eventId), await store.counts()]).toEqual([cancelled, undefined, counts({ cancelled: 1 })]);
      });

      it('a cancel that ends it on a booking whose hold has lapsed expires the booking instead, refused with expiredNow, as a begin would', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1, 'tok_gone', T0 + 2);
        const expired: Booking = { ...booking, status: 'expired', settledAt: booking.expiresAt + 1 };
        expect(await store.transition(booking.id, ['pending'], 'cancelled', booking.expiresAt + 1, { unpaid: true })).toEqual({ ok: false, current: expired, expiredNow: true, tookOver: true });
        expect([await store.get(booking.id), await store.counts()]).toEqual([expired, counts({ expired: 1 })]);
        // And an unpaid booking cancelled at its hold's end, whatever ran before.
        const lapsed = aBooking();
        await store.insert(lapsed);
        expect(await store.transition(lapsed.id, ['pending'], 'cancelled', lapsed.expiresAt, { unpaid: true })).toEqual({ ok: false, current: { ...lapsed, status: 'expired', settledAt: lapsed.expiresAt }, expiredNow: true });
        expect(await store.counts()).toEqual(counts({ expired: 2 }));
      });

      it('one begun without lostAfter is never ended by a cancel either', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1, 'tok_old');
        expect(await store.transition(booking.id, ['pending'], 'cancelled', T0 + DAY / 2, { unpaid: true })).toEqual({ ok: false, current: { ...booking, paymentInFlight: 'execute' } });
      });

      it('a begin that ends it on a booking whose hold has lapsed expires the booking, as with none in flight', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1, 'tok_gone', T0 + 2);
        const expired: Booking = { ...booking, status: 'expired', settledAt: booking.expiresAt };
        expect(await store.beginPayment(booking.id, 'user_1', 'execute', booking.expiresAt, 'tok_new', booking.expiresAt + 1)).toEqual({ kind: 'expired_now', booking: expired });
        expect(await store.counts()).toEqual(counts({ expired: 1 }));
      });
    });

    describe('recordPayment and abortPayment', () => {
      it('recordPayment ends the payment in flight, records its result and method, and writes its inbox event', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.beginPayment(booking.id, 'user_1', 'direct', T0 + 1);
        const event = anInboxEvent(booking.id, { details: { failureCode: null, paymentMethodToken: null, paymentMethod: 'KAKAO_PAY', amount: 60_000, currency: 'KRW' } });
        const paid: Booking = { ...booking, paymentIntent: PAID, paymentMethod: 'KAKAO_PAY' };
        expect(await store.recordPayment(booking.id, PAID, event, 'KAKAO_PAY')).toEqual(paid);
        expect(await store.get(booking.id)).toEqual(paid);
        expect(await store.event(event.eventId)).toEqual(event);
        expect(await store.events(booking.id)).toEqual([event]);
        expect(await store.counts()).toEqual(counts({ pending: 1 }, 0, 1));
      });

      it('recordPayment keeps the mark of a payment a fault rule decided; one without it (as every one stored before 2026-12-04) reads without it', async () => {
        const ruled = aBooking({ id: 'bk_ruled' });
        const plain = aBooking({ id: 'bk_plain' });
        const store = await storeWith(ruled, plain);
        for (const booking of [ruled, plain]) await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1);
        const byRule = { ...PAID, decidedByRule: true as const };
        expect((await store.recordPayment(ruled.id, byRule, anInboxEvent(ruled.id)))?.paymentIntent).toEqual(byRule);
        expect((await store.get(ruled.id))?.paymentIntent).toEqual(byRule);
        await store.recordPayment(plain.id, PAID, anInboxEvent(plain.id));
        expect((await store.get(plain.id))?.paymentIntent).toEqual(PAID);
        expect('decidedByRule' in ((await store.get(plain.id)) as Booking).paymentIntent).toBe(false);
      });

      it('recordPayment does nothing without a payment in flight', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        const event = anInboxEvent(booking.id);
        expect(await store.recordPayment(booking.id, PAID, event)).toBeUndefined();
        expect(await store.recordPayment('bk_unknown', PAID, anInboxEvent('bk_unknown'))).toBeUndefined();
        expect(await store.get(booking.id)).toEqual(booking);
        expect(await store.event(event.eventId)).toBeUndefined();
        expect(await store.events(booking.id)).toEqual([]);
      });

      it('an event written already processed does not count as unprocessed', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        const event = await pay(store, booking, anInboxEvent(booking.id, { processedAt: T0 + MINUTE }));
        expect(await store.counts()).toEqual(counts({ pending: 1 }));
        expect(await store.markEventProcessed(event.eventId, T0 + HOUR)).toEqual({ first: false, event });
      });

      it('abortPayment ends a payment in flight without a result, so another may start', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.abortPayment(booking.id);
        await store.abortPayment('bk_unknown');
        await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1);
        await store.abortPayment(booking.id);
        expect(await store.get(booking.id)).toEqual(booking);
        expect(await store.counts()).toEqual(counts({ pending: 1 }));
        expect((await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 2)).kind).toBe('started');
      });
    });

    describe('transition and expireIfDue', () => {
      it('transition sets `to` from an allowed status, and refuses any other', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        expect(await store.transition(booking.id, ['confirmed'], 'cancelled', SETTLED)).toEqual({ ok: false, current: booking });
        const cancelled: Booking = { ...booking, status: 'cancelled', settledAt: SETTLED };
        expect(await store.transition(booking.id, ['pending'], 'cancelled', SETTLED)).toEqual({ ok: true, record: cancelled });
        expect(await store.get(booking.id)).toEqual(cancelled);
        expect(await store.transition('bk_unknown', ['pending'], 'cancelled', SETTLED)).toEqual({ ok: false, current: undefined });
        expect(await store.counts()).toEqual(counts({ cancelled: 1 }));
      });

      it('transition refuses while a payment is in flight, and with `unpaid` once paid', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        await store.beginPayment(booking.id, 'user_1', 'execute', T0 + 1);
        expect(await store.transition(booking.id, ['pending'], 'cancelled', SETTLED)).toEqual({ ok: false, current: { ...booking, paymentInFlight: 'execute' } });
        await store.recordPayment(booking.id, PAID, anInboxEvent(booking.id));
        const paid: Booking = { ...booking, paymentIntent: PAID };
        expect(await store.transition(booking.id, ['pending'], 'cancelled', SETTLED, { unpaid: true })).toEqual({ ok: false, current: paid });
        expect(await store.transition(booking.id, ['pending'], 'confirmed', SETTLED)).toEqual({ ok: true, record: { ...paid, status: 'confirmed', settledAt: SETTLED } });
        const unpaid = aBooking();
        await store.insert(unpaid);
        expect(await store.transition(unpaid.id, ['pending'], 'cancelled', SETTLED, { unpaid: true })).toEqual({ ok: true, record: { ...unpaid, status: 'cancelled', settledAt: SETTLED } });
      });

      it('expireIfDue expires a pending, unpaid booking once its hold has lapsed, only then', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        expect(await store.expireIfDue(booking.id, booking.expiresAt - 1)).toBeUndefined();
        const expired: Booking = { ...booking, status: 'expired', settledAt: booking.expiresAt };
        expect(await store.expireIfDue(booking.id, booking.expiresAt)).toEqual(expired);
        expect(await store.get(booking.id)).toEqual(expired);
        expect(await store.expireIfDue(booking.id, booking.expiresAt + 1)).toBeUndefined();
        expect(await store.expireIfDue('bk_unknown', booking.expiresAt)).toBeUndefined();
      });

      it('expireIfDue leaves a booking with a payment in flight or paid', async () => {
        const inFlight = aBooking();
        const paid = aBooking();
        const store = await storeWith(inFlight, paid);
        await store.beginPayment(inFlight.id, 'user_1', 'execute', T0 + 1);
        await pay(store, paid);
        expect(await store.expireIfDue(inFlight.id, T0 + DAY)).toBeUndefined();
        expect(await store.expireIfDue(paid.id, T0 + DAY)).toBeUndefined();
        expect(await store.counts()).toEqual(counts({ pending: 2 }, 1, 1));
      });
    });

    describe('inbox events', () => {
      it('markEventProcessed marks an event once: first true, then false; unknown is undefined', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        const event = await pay(store, booking);
        const processed: InboxEvent = { ...event, processedAt: T0 + 2 * MINUTE };
        expect(await store.markEventProcessed(event.eventId, T0 + 2 * MINUTE)).toEqual({ first: true, event: processed });
        expect(await store.markEventProcessed(event.eventId, T0 + 3 * MINUTE)).toEqual({ first: false, event: processed });
        expect(await store.event(event.eventId)).toEqual(processed);
        expect(await store.markEventProcessed('evt_unknown', T0)).toBeUndefined();
        expect(await store.event('evt_unknown')).toBeUndefined();
        expect(await store.counts()).toEqual(counts({ pending: 1 }));
      });

      it('events lists a booking’s own events', async () => {
        const [a, b] = [aBooking(), aBooking()];
        const store = await storeWith(a, b);
        const failed = anInboxEvent(a.id, { type: 'PAYMENT_FAILED', processedAt: T0 + 5 });
        await store.beginPayment(a.id, 'user_1', 'execute', T0 + 1);
        await store.recordPayment(a.id, { status: 'FAILURE', pgMockData: null }, failed);
        const succeeded = await pay(store, b);
        expect(await store.events(a.id)).toEqual([failed]);
        expect(await store.events(b.id)).toEqual([succeeded]);
        expect(await store.events('bk_unknown')).toEqual([]);
        expect(await store.counts()).toEqual(counts({ pending: 2 }, 0, 1));
      });
    });

    describe('under concurrent calls', () => {
      it('of 200 beginPayment calls on one booking exactly one starts', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        const results = await concurrently(200, (i) => store.beginPayment(booking.id, 'user_1', i % 2 === 0 ? 'execute' : 'direct', T0 + 1));
        expect(tally(results)).toEqual({ started: 1, already_processed: 199 });
        expect(await store.counts()).toEqual(counts({ pending: 1 }, 1));
      });

      it('a payment racing cancels and expiries: exactly one of them changes the booking', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        const results = await concurrently(150, (i) =>
          i % 3 === 0
            ? store.beginPayment(booking.id, 'user_1', 'execute', booking.expiresAt - 1).then((r) => r.kind === 'started')
            : i % 3 === 1
              ? store.transition(booking.id, ['pending'], 'cancelled', SETTLED, { unpaid: true }).then((r) => r.ok)
              : store.expireIfDue(booking.id, booking.expiresAt).then((r) => r !== undefined),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('of 100 markEventProcessed calls on one event exactly one is first', async () => {
        const booking = aBooking();
        const store = await storeWith(booking);
        const event = await pay(store, booking);
        const results = await concurrently(100, (i) => store.markEventProcessed(event.eventId, T0 + i));
        expect(results.filter((r) => r?.first === true)).toHaveLength(1);
        expect((await store.counts()).unprocessedEvents).toBe(0);
      });
    });

    describe('bounds and TTL', () => {
      it('never evicts pending bookings: a store full of them refuses inserts', async () => {
        const store = await make({ ttlMs: HOUR, maxBookings: 2 });
        const [a, b] = [aBooking(), aBooking()];
        await store.insert(a);
        await store.insert(b);
        await store.beginPayment(b.id, 'user_1', 'execute', T0 + 1);
        expect(await store.insert(aBooking())).toEqual({ ok: false, reason: 'full' });
        expect(await store.sweep(T0 + DAY)).toEqual([]);
        expect(await store.stats()).toEqual({ size: 2, max: 2 });
      });

      it('at the bound the oldest finished booking goes, with its events, and its id is returned', async () => {
        const store = await make({ ttlMs: DAY, maxBookings: 2 });
        const [a, b] = [aBooking(), aBooking()];
        await store.insert(a);
        await store.insert(b);
        const event = await pay(store, a, anInboxEvent(a.id, { processedAt: T0 + MINUTE }));
        await store.transition(a.id, ['pending'], 'confirmed', SETTLED);
        await store.transition(b.id, ['pending'], 'cancelled', SETTLED);
        const c = aBooking();
        expect(await store.insert(c)).toEqual({ ok: true, evicted: [a.id] });
        expect(await store.get(a.id)).toBeUndefined();
        expect(await store.event(event.eventId)).toBeUndefined();
        expect(await store.events(a.id)).toEqual([]);
        expect((await store.listForUser('user_1', { limit: 10 })).data).toEqual([c, { ...b, status: 'cancelled', settledAt: SETTLED }]);
        expect((await store.listRecent({ limit: 10 })).data).toEqual([c, { ...b, status: 'cancelled', settledAt: SETTLED }]);
        expect(await store.counts()).toEqual(counts({ pending: 1, cancelled: 1 }));
      });

      it('evicted ids are kept to forget, by insert and by sweep, until forgotten', async () => {
        const store = await make({ ttlMs: HOUR, maxBookings: 2 });
        const [a, b] = [aBooking(), aBooking()];
        await store.insert(a);
        await store.insert(b);
        expect(await store.toForget(10)).toEqual([]);
        await store.transition(a.id, ['pending'], 'cancelled', SETTLED);
        const c = aBooking();
        expect(await store.insert(c)).toEqual({ ok: true, evicted: [a.id] });
        expect(await store.toForget(10)).toEqual([a.id]);
        await store.transition(b.id, ['pending'], 'cancelled', SETTLED);
        expect(await store.sweep(T0 + DAY)).toEqual([b.id]);
        expect((await store.toForget(10)).sort()).toEqual([a.id, b.id].sort());
        expect(await store.toForget(1)).toHaveLength(1);
        await store.forgotten([a.id, 'bk_unknown']);
        expect(await store.toForget(10)).toEqual([b.id]);
        await store.forgotten([b.id]);
        await store.forgotten([]);
        expect(await store.toForget(10)).toEqual([]);
      });

      it('a finished booking with an unprocessed event stays until the event is processed', async () => {
        const store = await make({ ttlMs: HOUR, maxBookings: 1 });
        const a = aBooking();
        await store.insert(a);
        const event = await pay(store, a);
        await store.transition(a.id, ['pending'], 'confirmed', SETTLED);
        expect(await store.insert(aBooking())).toEqual({ ok: false, reason: 'full' });
        expect(await store.sweep(T0 + DAY)).toEqual([]);
        await store.markEventProcessed(event.eventId, T0 + 2 * MINUTE);
        const b = aBooking();
        expect(await store.insert(b)).toEqual({ ok: true, evicted: [a.id] });
      });

      it('sweep evicts finished bookings older than the TTL from creation, and returns their ids', async () => {
        const store = await make({ ttlMs: HOUR, maxBookings: 100 });
        const old = aBooking();
        const oldPending = aBooking();
        const younger = aBooking({ createdAt: T0 + 30 * MINUTE, expiresAt: T0 + 40 * MINUTE });
        for (const booking of [old, oldPending, younger]) await store.insert(booking);
        await store.transition(old.id, ['pending'], 'cancelled', SETTLED);
        await store.expireIfDue(younger.id, T0 + 40 * MINUTE);
        expect(await store.sweep(T0 + HOUR - 1)).toEqual([]);
        expect(await store.sweep(T0 + HOUR + 1)).toEqual([old.id]);
        expect(await store.get(old.id)).toBeUndefined();
        expect(await store.sweep(T0 + 90 * MINUTE + 1)).toEqual([younger.id]);
        expect((await store.listForUser('user_1', { limit: 10 })).data).toEqual([oldPending]);
        expect((await store.listRecent({ limit: 10 })).data).toEqual([oldPending]);
        expect(await store.counts()).toEqual(counts({ pending: 1 }));
        expect(await store.stats()).toEqual({ size: 1, max: 100 });
      });
    });
  });
}
