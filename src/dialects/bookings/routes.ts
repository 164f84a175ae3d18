import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { DomainError, StoreFullError, StoreUnavailableError } from '../../core/errors.ts';
import { countsOf, type SeatCounts } from '../../core/seats.ts';
import { sendProblem } from '../../http/error-handler.ts';
import { noteMaking, resumedMade, type IdempotencyHooks } from '../../http/idempotency.ts';
import { documented, errorResponses, IDEMPOTENT, SECURITY, withExamples } from '../../http/openapi.ts';
import { problemOf } from '../../http/problem.ts';
import { TAKES_OUTCOME } from '../../http/scenario.ts';
import { bookingsErrors } from './errors.ts';
import * as ex from './examples.ts';
import {
  BookingIdQuery,
  BookingList,
  CancelBookingBody,
  CreateBookingBody,
  CreateBookingResponse,
  ExecutePaymentBody,
  ExecutePaymentResponse,
  InboxEventList,
  LedgerBalances,
  LedgerEntryList,
  MessageBody,
  MyBookingsQuery,
  NoQuery,
  PerformanceList,
  PerformanceParams,
  SeatMap,
  UserAndIdempotencyHeaders,
  UserIdHeader,
} from './schemas.ts';
import { bookingView, entryView, eventView, iso, performanceView } from './views.ts';

/**
 * The bookings API's routes (source document 003): `/bookings`, `/payments/execute`,
 * `/bookings/my` and the inspection routes, camelCase, every route behind `x-user-id`.
 * @see issue 4 "The bookings API", ../../../../shared/seeds/003_2d28ecb358825d26.txt
 */

export const BOOKING_CREATED_MESSAGE = 'Booking and payment intent created. Please proceed to payment execution.';
export const BOOKING_CANCELLED_MESSAGE = 'Booking cancelled successfully.';
export const DEFAULT_PAGE_SIZE = 100;

export interface BookingRoutesOptions {
  idempotent: IdempotencyHooks;
  /** The caller, checked by the dialect's onRequest hook before anything else runs. */
  userOf: (request: FastifyRequest) => string;
}

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.bookingsErrorDocs, statuses, options);
/** Every route of this API needs the caller's `x-user-id`. */
const security = [{ [SECURITY.user]: [] }];

const bookingRoutes: FastifyPluginAsync<BookingRoutesOptions> = async (fastify, { idempotent, userOf }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { service, payments } = app.bookings;
  const { seats, ledger } = app.core.stores;

  app.post(
    '/bookings',
    {
      schema: {
        operationId: 'createBooking',
        summary: 'Book seats: a pending booking holding the seats, and its payment intent',
        description:
          'Holds `quantity` best-available seats (adjacent in one row where possible) until `expiresAt` (SEAT_HOLD_MS); pay with `POST /payments/execute` (or `POST /api/v1/payments/process`) before then. With a `webhookUrl`, the booking’s outcome is delivered there.',
        tags: ['bookings'],
        security,
        headers: UserAndIdempotencyHeaders,
        body: withExamples(CreateBookingBody, ex.createBookingRequests),
        response: {
          201: documented(CreateBookingResponse, { description: 'Booked: pending, the seats held.', examples: ex.createBookingResponses, headers: IDEMPOTENT }),
          ...errors([400, 401, 404, 409, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 404: ex.performanceNotFound, 409: ex.bookConflict } }),
        },
      },
      ...idempotent,
    },
    async (request, reply) => {
      const b = request.body;
      // An earlier request under this Idempotency-Key booked and never answered (its replica was
      // killed, or Redis failed it after the write): that booking is the answer (pending, or paid
      // since: a review saw a second one booked), not a second one. Never written, or its hold
      // lapsed or cancelled since (a review saw an expired one answered as booked): a new booking,
      // noted in its place. Seats the earlier request held for one it never wrote are freed by that
      // booking's expiry job, as ever.
      let booking = (await resumedMade(request, (id) => service.find(id))).record;
      if (booking === undefined || booking.status === 'expired' || booking.status === 'cancelled') {
        const id = service.newBookingId();
        await noteMaking(request, id);
        booking = await service.book({ userId: userOf(request), performanceId: b.performanceId, quantity: b.quantity, paymentMethod: b.paymentMethod, webhookUrl: b.webhookUrl, id });
      }
      return reply.code(201).send({
        message: BOOKING_CREATED_MESSAGE,
        bookingId: booking.id,
        totalAmount: booking.totalAmount,
        seatIds: [...booking.seatIds],
        expiresAt: iso(booking.expiresAt),
      });
    },
  );

  app.post(
    '/payments/execute',
    {
      schema: {
        operationId: 'executePayment',
        summary: 'Pay a pending booking by card (simulated)',
        description:
          'Answers after the processing delay (MOCK_MIN_DELAY_MS…MOCK_MAX_DELAY_MS) with the gateway result; the result goes to the events inbox and the booking becomes confirmed or failed when the processor applies it, EVENT_PROCESSING_DELAY_MS later. The token and the CVV decide: `tok_visa`/`tok_mastercard` or any other token follow the CVV rule (last digit 0, 1, 9 approves; d fails with `DECLINE_<d>`), `tok_chargeDeclined` → `card_declined`, `tok_chargeDeclinedInsufficientFunds` → `insufficient_funds`.',
        tags: ['bookings'],
        security,
        headers: UserAndIdempotencyHeaders,
        body: withExamples(ExecutePaymentBody, ex.executePaymentRequests),
        response: {
          200: documented(ExecutePaymentResponse, { description: 'The gateway’s answer: SUCCESS or FAILURE.', examples: ex.executePaymentResponses, headers: IDEMPOTENT }),
          ...errors([400, 401, 403, 404, 409, 410, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 400: ex.executeInvalid, 409: ex.executeConflict } }),
        },
      },
      ...idempotent,
      ...TAKES_OUTCOME,
    },
    async (request) => {
      const b = request.body;
      const result = await payments.executePayment({ userId: userOf(request), bookingId: b.bookingId, paymentMethodToken: b.paymentMethodToken, cvv: b.cvv, forced: request.faultPlan?.outcome ?? undefined });
      const { pgMockData } = result;
      return {
        message: `Payment simulation finished with status: ${result.finalStatus}`,
        finalStatus: result.finalStatus,
        bookingId: result.bookingId,
        pgMockData: { isSuccess: pgMockData.isSuccess, failureCode: pgMockData.failureCode, processedAt: iso(pgMockData.processedAt) },
      };
    },
  );

  app.get(
    '/bookings/my',
    {
      schema: {
        operationId: 'listMyBookings',
        summary: "The caller's bookings, newest first, a page at a time",
        description: 'At most `limit` (default 100) a page; when there are more, `X-Next-Cursor` (and a `Link` header with rel="next") names the next page.',
        tags: ['bookings'],
        security,
        headers: UserIdHeader,
        querystring: MyBookingsQuery,
        response: { 200: documented(BookingList, { description: 'A page of bookings.', examples: ex.myBookingsResponses, headers: ['X-Next-Cursor', 'Link'] }), ...errors([400, 401, 500, 503], { overrides: { 400: ex.badListQuery } }) },
      },
    },
    async (request, reply) => {
      const limit = request.query.limit ?? DEFAULT_PAGE_SIZE;
      const page = await service.listForUser(userOf(request), { limit, cursor: request.query.cursor });
      if (page.nextCursor !== null) {
        reply.header('x-next-cursor', page.nextCursor);
        reply.header('link', `</bookings/my?limit=${limit}&cursor=${page.nextCursor}>; rel="next"`);
      }
      return page.data.map(bookingView);
    },
  );

  app.delete(
    '/bookings/my',
    {
      schema: {
        operationId: 'cancelMyBooking',
        summary: "Cancel one of the caller's pending bookings",
        description:
          'Releases its seats. 400 for anything but a pending, unpaid booking of the caller; `code` says why. A payment in flight refuses it (`PAYMENT_ALREADY_PROCESSED`, already in progress) until that payment has been in flight for longer than its longest processing delay and a lease (MOCK_MAX_DELAY_MS, scaled by TIME_SCALE, + SCHEDULER_LEASE_MS, not scaled: 31.5 s by default; its replica was killed or stalled); then the payment is ended without a result and the booking cancelled, or, past the hold’s end, expired (`BOOKING_EXPIRED`). With a `webhookUrl`, `booking.cancelled` is delivered (`booking.expired` for a booking that expired instead).',
        tags: ['bookings'],
        security,
        headers: UserIdHeader,
        body: withExamples(CancelBookingBody, ex.cancelBookingRequests),
        response: {
          200: documented(MessageBody, { description: 'Cancelled.', examples: ex.cancelBookingResponses }),
          ...errors([400, 401, 413, 415, 500, 503], { overrides: { 400: ex.cancelBookingInvalid } }),
        },
      },
    },
    async (request, reply) => {
      try {
        await service.cancel({ userId: userOf(request), bookingId: request.body.bookingId });
      } catch (error) {
        // Document 003 answers 400 whatever the reason; the code keeps the reason.
        // The store full or away, or the process closing, stay 503s.
        if (error instanceof DomainError && !(error instanceof StoreFullError || error instanceof StoreUnavailableError)) return sendProblem(reply, bookingsErrors, { ...problemOf(error, bookingsErrors.statusOf), status: 400 });
        throw error;
      }
      return { message: BOOKING_CANCELLED_MESSAGE };
    },
  );

  app.get(
    '/performances',
    {
      schema: {
        operationId: 'listPerformances',
        summary: 'The performance catalog, with seat counts',
        description: 'Every performance (PERFORMANCES_FILE, else the built-in three) with its live seat counts: lapsed holds count as available.',
        tags: ['bookings'],
        security,
        headers: UserIdHeader,
        querystring: NoQuery,
        response: { 200: documented(PerformanceList, { description: 'The catalog.', examples: ex.performancesResponses }), ...errors([400, 401, 500, 503], { overrides: { 400: ex.unknownQuery } }) },
      },
    },
    async () => {
      const list = [];
      for (const p of service.performances()) {
        // Lapsed holds count as available, as a booking that finds too few seats free counts them.
        let counts = (await seats.counts(p.id)) as SeatCounts;
        if (counts.held > 0 && (await service.freeLapsedHolds(p.id))) counts = (await seats.counts(p.id)) as SeatCounts;
        list.push(performanceView(p, counts));
      }
      return list;
    },
  );

  app.get(
    '/performances/:id/seats',
    {
      schema: {
        operationId: 'getSeatMap',
        summary: "A performance's seat map: each seat's state, booking and lock expiry",
        description: 'Front row first, seats by number: `available`, `locked` (held by a pending booking until `lockedUntil`) or `reserved` (sold).',
        tags: ['bookings'],
        security,
        headers: UserIdHeader,
        params: PerformanceParams,
        querystring: NoQuery,
        response: { 200: documented(SeatMap, { description: 'The seat map.', examples: ex.seatMapResponses }), ...errors([400, 401, 404, 500, 503], { overrides: { 400: ex.seatMapInvalid, 404: ex.performanceNotFound } }) },
      },
    },
    async (request) => {
      const { id } = service.performance(request.params.id);
      // Lapsed holds show as available, as a booking that finds too few seats free counts them.
      let map = (await seats.seatsOf(id)) ?? [];
      if (await service.freeLapsedHolds(id, map)) map = (await seats.seatsOf(id)) ?? [];
      const list = map.map((s) => ({ ...s, lockedUntil: s.lockedUntil === null ? null : iso(s.lockedUntil) }));
      // Counted from the map itself, so the two always agree (a user test: read apart, they could differ).
      return { performanceId: id, counts: countsOf(map), seats: list };
    },
  );

  /** The caller's booking: 404 when unknown (or evicted), 403 when another user's. */
  const ownBookingId = async (request: FastifyRequest, bookingId: string): Promise<string> => {
    const booking = await service.get(bookingId);
    if (booking.userId !== userOf(request)) throw new DomainError('FORBIDDEN', `Booking ${bookingId} belongs to another user.`);
    return booking.id;
  };

  app.get(
    '/events',
    {
      schema: {
        operationId: 'listBookingEvents',
        summary: "The events inbox of one of the caller's bookings",
        description: 'Payment results (`PAYMENT_SUCCEEDED`, `PAYMENT_FAILED`) in the order they arrived, and when the processor applied each (`processedAt`, null until then).',
        tags: ['bookings'],
        security,
        headers: UserIdHeader,
        querystring: BookingIdQuery,
        response: { 200: documented(InboxEventList, { description: 'The booking’s events.', examples: ex.eventsResponses }), ...errors([400, 401, 403, 404, 500, 503], { overrides: { 400: ex.bookingIdRequired } }) },
      },
    },
    async (request) => (await service.events(await ownBookingId(request, request.query.bookingId))).map(eventView),
  );

  app.get(
    '/ledger',
    {
      schema: {
        operationId: 'listLedgerEntries',
        summary: "The ledger entries of one of the caller's bookings",
        description: 'A confirmed booking has one transaction: a CUSTOMER_PAYABLE debit and a MERCHANT_BALANCE credit of its amount, sharing a transactionId.',
        tags: ['bookings'],
        security,
        headers: UserIdHeader,
        querystring: BookingIdQuery,
        response: { 200: documented(LedgerEntryList, { description: 'The booking’s entries.', examples: ex.ledgerResponses }), ...errors([400, 401, 403, 404, 500, 503], { overrides: { 400: ex.bookingIdRequired } }) },
      },
    },
    async (request) => (await ledger.entries(await ownBookingId(request, request.query.bookingId))).map(entryView),
  );

  app.get(
    '/ledger/balances',
    {
      schema: {
        operationId: 'getLedgerBalances',
        summary: 'Ledger balances per account and currency',
        description: 'Debit and credit totals and the balance of each account and currency, over the bookings still kept; `imbalance` (total debits − total credits) is always 0.',
        tags: ['bookings'],
        security,
        headers: UserIdHeader,
        querystring: NoQuery,
        response: { 200: documented(LedgerBalances, { description: 'The balances.', examples: ex.balancesResponses }), ...errors([400, 401, 500, 503], { overrides: { 400: ex.unknownQuery } }) },
      },
    },
    async () => ({ balances: await ledger.balances(), imbalance: await ledger.imbalance() }),
  );
};

export default bookingRoutes;
