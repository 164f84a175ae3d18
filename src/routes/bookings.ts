import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Booking, InboxEvent } from '../core/bookings.ts';
import { DomainError, type ErrorCode } from '../core/errors.ts';
import type { LedgerEntry } from '../core/ledger.ts';
import type { Performance } from '../core/performances.ts';
import { idempotencyHooks } from '../http/idempotency.ts';
import { contentProblem, validationIssues } from '../http/validation.ts';
import {
  BookingIdQuery,
  BookingList,
  BookingsErrorBody,
  CancelBookingBody,
  CreateBookingBody,
  CreateBookingResponse,
  ExecutePaymentBody,
  ExecutePaymentResponse,
  InboxEventList,
  LedgerBalances,
  LedgerEntryList,
  MessageBody,
  PerformanceList,
  PerformanceParams,
  SeatMap,
  UserAndIdempotencyHeaders,
  UserIdHeader,
} from '../schemas/bookings.ts';

/**
 * The bookings API (source document 003): `/bookings`, `/payments/execute`, `/bookings/my` and
 * the inspection routes, camelCase, every route behind `x-user-id`, with its own error shape
 * `{"error": "<message>", "code": "<CODE>"}`.
 * @see issue 4 "The bookings API", ../../shared/seeds/003_2d28ecb358825d26.txt
 */

export const BOOKING_CREATED_MESSAGE = 'Booking and payment intent created. Please proceed to payment execution.';
export const BOOKING_CANCELLED_MESSAGE = 'Booking cancelled successfully.';
const MAX_USER_ID = 128;

/** Core codes and this API's statuses. Codes of other APIs' rules never get here; one that did would be a 500. */
const STATUS_OF: { [C in ErrorCode]?: number } = {
  VALIDATION_FAILED: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SOLD_OUT: 409,
  PAYMENT_ALREADY_PROCESSED: 409,
  INVALID_STATE: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  BOOKING_EXPIRED: 410,
  IDEMPOTENCY_KEY_MISMATCH: 422,
};

export function sendBookingsError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error: message, code });
}

function bookingsErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof DomainError && STATUS_OF[error.code] !== undefined) {
    // The core's field rules (quantity, cvv, card number) are all about the body: said as Ajv's are.
    const message = error.code === 'VALIDATION_FAILED' ? `body ${error.message}` : error.message;
    return sendBookingsError(reply, STATUS_OF[error.code] as number, error.code, message);
  }
  if (error.validation !== undefined) {
    const first = validationIssues(error)[0];
    return sendBookingsError(reply, 400, 'VALIDATION_FAILED', first === undefined ? 'The request is invalid.' : `${first.in} ${first.field}: ${first.message}`);
  }
  const problem = contentProblem(error);
  if (problem?.kind === 'PAYLOAD_TOO_LARGE') return sendBookingsError(reply, 413, 'PAYLOAD_TOO_LARGE', 'The request body is larger than the limit (BODY_LIMIT_BYTES).');
  if (problem?.kind === 'UNSUPPORTED_MEDIA_TYPE') return sendBookingsError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.');
  if (problem?.kind === 'MALFORMED') return sendBookingsError(reply, 400, 'VALIDATION_FAILED', `The request body could not be read: ${error.message}`);
  request.log.error({ err: error }, 'unhandled error');
  return sendBookingsError(reply, 500, 'INTERNAL', 'Something went wrong on our side; the request may be retried.');
}

const iso = (ms: number): string => new Date(ms).toISOString();

function bookingView(booking: Booking) {
  return {
    bookingId: booking.id,
    userId: booking.userId,
    performanceId: booking.performanceId,
    quantity: booking.quantity,
    seatIds: booking.seatIds,
    totalAmount: booking.totalAmount,
    status: booking.status,
    createdAt: iso(booking.createdAt),
    expiresAt: iso(booking.expiresAt),
  };
}

/** A card number given as the token is shown as its last four digits only. */
function maskToken(token: string | null): string | null {
  if (token === null) return null;
  const digits = token.replace(/[ -]/g, '');
  return /^\d{8,}$/.test(digits) ? `${'*'.repeat(digits.length - 4)}${digits.slice(-4)}` : token;
}

function eventView(event: InboxEvent) {
  return {
    eventId: event.eventId,
    type: event.type,
    bookingId: event.bookingId,
    details: { ...event.details, paymentMethodToken: maskToken(event.details.paymentMethodToken) },
    createdAt: iso(event.createdAt),
    processedAt: event.processedAt === null ? null : iso(event.processedAt),
  };
}

function entryView(entry: LedgerEntry) {
  return { ...entry, createdAt: iso(entry.createdAt) };
}

/** The caller, checked by the onRequest hook before anything else runs. */
function userOf(request: FastifyRequest): string {
  return request.headers['x-user-id'] as string;
}

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, BookingsErrorBody]));

const bookingsRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { service, seats, ledger } = app.bookings;

  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(bookingsErrorHandler);

  // Before parsing and validation: without a caller nothing else is worth looking at.
  app.addHook('onRequest', async (request, reply) => {
    const user = request.headers['x-user-id'];
    if (typeof user !== 'string' || user.length === 0 || user.length > MAX_USER_ID) {
      return sendBookingsError(reply, 401, 'UNAUTHENTICATED', `The x-user-id header is required (1–${MAX_USER_ID} characters).`);
    }
  });

  // Keys are scoped to the caller too: another user's key (and so another user's booking) is never replayed.
  const idempotent = idempotencyHooks({
    store: app.core.idempotency,
    sendConflict: (reply, conflict, message) => sendBookingsError(reply, conflict === 'IDEMPOTENCY_KEY_MISMATCH' ? 422 : 409, conflict, message),
    onReplay: () => app.metrics.idempotencyReplays.inc(),
    onConflict: () => app.metrics.idempotencyConflicts.inc(),
    scopeOf: userOf,
  });

  app.post(
    '/bookings',
    {
      schema: {
        summary: 'Book seats: a pending booking holding the seats, and its payment intent',
        description: 'Holds `quantity` best-available seats (adjacent in one row where possible) until `expiresAt` (SEAT_HOLD_MS).',
        tags: ['bookings'],
        headers: UserAndIdempotencyHeaders,
        body: CreateBookingBody,
        response: { 201: CreateBookingResponse, ...errors(400, 401, 404, 409, 413, 415, 422, 500, 503) },
      },
      ...idempotent,
    },
    async (request, reply) => {
      const b = request.body;
      const booking = service.book({ userId: userOf(request), performanceId: b.performanceId, quantity: b.quantity, paymentMethod: b.paymentMethod, webhookUrl: b.webhookUrl });
      return reply.code(201).send({
        message: BOOKING_CREATED_MESSAGE,
        bookingId: booking.id,
        totalAmount: booking.totalAmount,
        seatIds: booking.seatIds,
        expiresAt: iso(booking.expiresAt),
      });
    },
  );

  app.post(
    '/payments/execute',
    {
      schema: {
        summary: 'Pay a pending booking by card (simulated)',
        description:
          'Answers after the processing delay (MOCK_MIN_DELAY_MS…MOCK_MAX_DELAY_MS) with the gateway result; the result goes to the events inbox and the booking becomes confirmed or failed when the processor applies it, EVENT_PROCESSING_DELAY_MS later.',
        tags: ['bookings'],
        headers: UserAndIdempotencyHeaders,
        body: ExecutePaymentBody,
        response: { 200: ExecutePaymentResponse, ...errors(400, 401, 403, 404, 409, 410, 413, 415, 422, 500, 503) },
      },
      ...idempotent,
    },
    async (request) => {
      const b = request.body;
      const result = await service.executePayment({ userId: userOf(request), bookingId: b.bookingId, paymentMethodToken: b.paymentMethodToken, cvv: b.cvv });
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
        summary: "The caller's bookings, newest first",
        tags: ['bookings'],
        headers: UserIdHeader,
        response: { 200: BookingList, ...errors(401, 500, 503) },
      },
    },
    async (request) => service.listForUser(userOf(request)).map(bookingView),
  );

  app.delete(
    '/bookings/my',
    {
      schema: {
        summary: "Cancel one of the caller's pending bookings",
        description: 'Releases its seats. 400 for anything but a pending, unpaid booking of the caller; `code` says why.',
        tags: ['bookings'],
        headers: UserIdHeader,
        body: CancelBookingBody,
        response: { 200: MessageBody, ...errors(400, 401, 413, 415, 500, 503) },
      },
    },
    async (request, reply) => {
      try {
        service.cancel({ userId: userOf(request), bookingId: request.body.bookingId });
      } catch (error) {
        // Document 003 answers 400 whatever the reason; the code keeps the reason.
        if (error instanceof DomainError) return sendBookingsError(reply, 400, error.code, error.message);
        throw error;
      }
      return { message: BOOKING_CANCELLED_MESSAGE };
    },
  );

  const performanceView = (p: Performance) => ({
    performanceId: p.id,
    title: p.title,
    venue: p.venue,
    startsAt: p.startsAt,
    rows: p.rows,
    seatsPerRow: p.seatsPerRow,
    pricePerSeat: p.priceMinor,
    currency: p.currency,
    seats: seats.counts(p.id),
  });

  app.get(
    '/performances',
    { schema: { summary: 'The performance catalog, with seat counts', tags: ['bookings'], headers: UserIdHeader, response: { 200: PerformanceList, ...errors(401, 500, 503) } } },
    async () => service.performances().map(performanceView),
  );

  app.get(
    '/performances/:id/seats',
    {
      schema: {
        summary: "A performance's seat map: each seat's state, booking and lock expiry",
        tags: ['bookings'],
        headers: UserIdHeader,
        params: PerformanceParams,
        response: { 200: SeatMap, ...errors(400, 401, 404, 500, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      service.sweep(); // lapsed holds show as available, as the next booking would find them
      const list = seats.seatsOf(id).map((s) => ({ ...s, lockedUntil: s.lockedUntil === null ? null : iso(s.lockedUntil) }));
      return { performanceId: id, counts: seats.counts(id), seats: list };
    },
  );

  /** The caller's booking: 404 when unknown (or evicted), 403 when another user's. */
  const ownBooking = (request: FastifyRequest, bookingId: string): Booking => {
    const booking = service.get(bookingId);
    if (booking.userId !== userOf(request)) throw new DomainError('FORBIDDEN', `Booking ${bookingId} belongs to another user.`);
    return booking;
  };

  app.get(
    '/events',
    {
      schema: {
        summary: "The events inbox of one of the caller's bookings: payment results and when they were processed",
        tags: ['bookings'],
        headers: UserIdHeader,
        querystring: BookingIdQuery,
        response: { 200: InboxEventList, ...errors(400, 401, 403, 404, 500, 503) },
      },
    },
    async (request) => service.events(ownBooking(request, request.query.bookingId).id).map(eventView),
  );

  app.get(
    '/ledger',
    {
      schema: {
        summary: "The ledger entries of one of the caller's bookings",
        description: 'A confirmed booking has one transaction: a CUSTOMER_PAYABLE debit and a MERCHANT_BALANCE credit of its amount, sharing a transactionId.',
        tags: ['bookings'],
        headers: UserIdHeader,
        querystring: BookingIdQuery,
        response: { 200: LedgerEntryList, ...errors(400, 401, 403, 404, 500, 503) },
      },
    },
    async (request) => ledger.entries(ownBooking(request, request.query.bookingId).id).map(entryView),
  );

  app.get(
    '/ledger/balances',
    {
      schema: {
        summary: 'Ledger balances per account and currency, with their debit and credit totals',
        tags: ['bookings'],
        headers: UserIdHeader,
        response: { 200: LedgerBalances, ...errors(401, 500, 503) },
      },
    },
    async () => ({ balances: ledger.balances(), imbalance: ledger.imbalance() }),
  );
};

export default bookingsRoutes;
