import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { DomainError } from '../../core/errors.ts';
import { bearerAuth } from '../../http/bearer-auth.ts';
import { createErrorHandler, sendProblem } from '../../http/error-handler.ts';
import { documented, errorResponses, SECURITY, withExamples } from '../../http/openapi.ts';
import { MESSAGES, paymentServiceErrors } from './errors.ts';
import * as ex from './examples.ts';
import { Health, PAYMENT_METHODS, PaymentMethodList, BearerHeader, ProcessPaymentBody, ProcessPaymentResponse, type PaymentMethodId } from './schemas.ts';

/**
 * The ticketing payment-service API (source document 004): `/api/v1/payments/methods`,
 * `/api/v1/payments/process` behind a JWT, and `/health`. Errors are `{"error": "<message>"}`
 * in Korean, as that service answered. It pays bookings made through the bookings API, in one
 * step after the processing delay (booking confirmed, seats reserved, ledger written).
 * @see issue 4 "The ticketing payment-service API", ../../../../shared/seeds/004_bd5a7b9162ab823c.decoded.txt
 */

const METHOD_NAMES: ReadonlyMap<string, string> = new Map(PAYMENT_METHODS.map((m) => [m.id, m.name]));
const MAX_USER_ID = 128;

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.paymentServiceErrorDocs, statuses, options);

function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error: message });
}

/**
 * A field sent as `null` is a missing one, as document 004's `!reservationId || !paymentMethod`
 * check took it (예약 ID와 결제 수단은 필수입니다.), not a reservation id or method of the wrong type.
 */
async function nullFieldsMissing(request: FastifyRequest): Promise<void> {
  const body = request.body as Record<string, unknown> | null;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
  for (const field of ['reservationId', 'paymentMethod']) if (body[field] === null) delete body[field];
}

const paymentService: FastifyPluginAsync = async (fastify) => {
  fastify.errorShapes.register(paymentServiceErrors);
  fastify.setErrorHandler(createErrorHandler(paymentServiceErrors));
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { payments, service } = app.bookings;
  const { clock, config } = app.core;
  const auth = config.jwtSecret === undefined ? undefined : bearerAuth(config.jwtSecret, clock, { maxUserIdLength: MAX_USER_ID });
  const users = new WeakMap<FastifyRequest, string>();

  /** Runs before the body is read: document 004 checks the token before anything else. */
  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (auth === undefined) return sendError(reply, 503, MESSAGES.noSecret);
    const result = await auth.authenticate(request.headers.authorization);
    if (result.kind === 'missing') return sendProblem(reply, paymentServiceErrors, { status: 401, code: 'UNAUTHENTICATED', message: 'A bearer token is required.' });
    if (result.kind === 'invalid') return sendProblem(reply, paymentServiceErrors, { status: 403, code: 'FORBIDDEN', message: 'The bearer token is not valid.' });
    users.set(request, result.userId);
    return undefined;
  }

  app.get(
    '/api/v1/payments/methods',
    {
      schema: {
        operationId: 'listPaymentMethods',
        summary: 'Payment methods (no authentication)',
        description: 'The four methods `POST /api/v1/payments/process` accepts, with their Korean display names.',
        tags: ['payment-service'],
        response: { 200: documented(PaymentMethodList, { description: 'The methods.', examples: ex.methodsResponses }), ...errors([500, 503], { overrides: { 503: ex.unavailableWithoutAuth } }) },
      },
    },
    async () => ({ methods: [...PAYMENT_METHODS] }),
  );

  app.post(
    '/api/v1/payments/process',
    {
      schema: {
        operationId: 'processPayment',
        summary: 'Pay a pending booking in one step (JWT)',
        description:
          'Pays a booking made with `POST /bookings` by the token’s user. After the processing delay (MOCK_MIN_DELAY_MS…MOCK_MAX_DELAY_MS) the booking is confirmed, its seats reserved and the ledger written. Of two concurrent calls for one booking exactly one succeeds. 503 while JWT_SECRET is unset. `make token USER=user_test_001` prints a token for "Authorize".',
        tags: ['payment-service'],
        security: [{ [SECURITY.bearer]: [] }],
        headers: BearerHeader,
        body: withExamples(ProcessPaymentBody, ex.processRequests),
        response: { 200: documented(ProcessPaymentResponse, { description: 'Paid.', examples: ex.processResponses }), ...errors([400, 401, 403, 404, 413, 415, 500, 503]) },
      },
      onRequest: authenticate,
      preValidation: nullFieldsMissing,
    },
    async (request, reply) => {
      const { reservationId, paymentMethod } = request.body;
      const userId = users.get(request) as string;
      let booking;
      try {
        booking = await payments.confirmDirect({ userId, bookingId: reservationId, paymentMethod });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        if (error.code === 'NOT_FOUND') return sendError(reply, 404, MESSAGES.notFound);
        if (error.code === 'BOOKING_EXPIRED') return sendError(reply, 400, MESSAGES.expired);
        if (error.code === 'PAYMENT_ALREADY_PROCESSED') return sendError(reply, 400, await alreadyProcessedMessage(reservationId));
        throw error;
      }
      return {
        success: true as const,
        message: MESSAGES.paid,
        payment: {
          reservationId: booking.id,
          paymentMethod: METHOD_NAMES.get(paymentMethod as PaymentMethodId) ?? paymentMethod,
          totalAmount: booking.totalAmount,
          paidAt: new Date(booking.paymentIntent.pgMockData?.processedAt ?? clock.now()).toISOString(),
        },
        reservation: { performanceId: booking.performanceId, seats: [...booking.seatIds] },
      };
    },
  );

  /** Why a booking cannot be paid, in the caller's terms. */
  async function alreadyProcessedMessage(bookingId: string): Promise<string> {
    const booking = await service.get(bookingId);
    switch (booking.status) {
      case 'confirmed':
        return MESSAGES.alreadyPaid;
      case 'cancelled':
        return MESSAGES.cancelled;
      case 'failed':
        return MESSAGES.failed;
      case 'expired':
        return MESSAGES.expired;
      default:
        // Pending: a payment is in flight, or decided and waiting for its processor.
        return booking.paymentIntent.status === 'SUCCESS' ? MESSAGES.alreadyPaid : MESSAGES.inProgress;
    }
  }

  app.get(
    '/health',
    {
      schema: {
        operationId: 'getPaymentServiceHealth',
        summary: 'Liveness of the payment service (document 004)',
        description: 'Always `ok` while the process serves requests.',
        tags: ['payment-service'],
        response: { 200: documented(Health, { description: 'Up.', examples: ex.healthResponses }) },
      },
    },
    async () => ({ status: 'ok' as const, service: 'payment-service' as const }),
  );
};

export default paymentService;
