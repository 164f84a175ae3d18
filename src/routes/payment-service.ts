import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { jwtVerify } from 'jose';
import { DomainError } from '../core/errors.ts';
import { contentProblem } from '../http/validation.ts';
import {
  BearerHeader,
  Health,
  PAYMENT_METHODS,
  PaymentMethodList,
  PaymentServiceErrorBody,
  ProcessPaymentBody,
  ProcessPaymentResponse,
  type PaymentMethodId,
} from '../schemas/payment-service.ts';

/**
 * The ticketing payment-service API (source document 004): `/api/v1/payments/methods`,
 * `/api/v1/payments/process` behind a JWT, and `/health`. Errors are `{"error": "<message>"}`
 * in Korean, as that service answered. It pays bookings made through the bookings API, in one
 * step after the processing delay (booking confirmed, seats reserved, ledger written).
 * @see issue 4 "The ticketing payment-service API", ../../shared/seeds/004_bd5a7b9162ab823c.decoded.txt
 */

export const MESSAGES = {
  paid: '결제가 완료되었습니다.',
  unauthenticated: '인증이 필요합니다.',
  invalidToken: '유효하지 않은 토큰입니다.',
  noSecret: 'JWT_SECRET이 설정되지 않아 결제 서비스를 사용할 수 없습니다. 환경변수 JWT_SECRET을 설정하세요.',
  missingFields: '예약 ID와 결제 수단은 필수입니다.',
  badReservationId: '유효하지 않은 예약 ID입니다.',
  unknownMethod: '지원하지 않는 결제 수단입니다.',
  unknownField: '알 수 없는 필드가 포함되어 있습니다',
  badRequest: '잘못된 요청입니다.',
  notFound: '예약을 찾을 수 없습니다.',
  alreadyPaid: '이미 결제된 예약입니다.',
  inProgress: '이미 결제가 진행 중인 예약입니다.',
  expired: '만료된 예약입니다.',
  cancelled: '취소된 예약입니다.',
  failed: '결제에 실패한 예약입니다. 다시 예약해 주세요.',
  tooLarge: '요청 본문이 너무 큽니다.',
  unsupportedMediaType: '요청 본문은 application/json 형식이어야 합니다.',
  internal: '결제 처리 중 오류가 발생했습니다.',
} as const;

const METHOD_NAMES: ReadonlyMap<string, string> = new Map(PAYMENT_METHODS.map((m) => [m.id, m.name]));
const MAX_USER_ID = 128;

function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error: message });
}

/** Validation errors in document 004's words: missing fields first, then the id, then the method. */
function validationMessage(error: FastifyError): string {
  const issues = error.validation ?? [];
  if (error.validationContext !== 'body') return MESSAGES.badRequest;
  if (issues.some((v) => v.keyword === 'required' || v.keyword === 'minLength')) return MESSAGES.missingFields;
  if (issues.some((v) => v.instancePath === '/reservationId')) return MESSAGES.badReservationId;
  if (issues.some((v) => v.instancePath === '/paymentMethod')) return MESSAGES.unknownMethod;
  const extra = issues.find((v) => v.keyword === 'additionalProperties');
  if (extra !== undefined) return `${MESSAGES.unknownField}: ${String((extra.params as { additionalProperty?: unknown }).additionalProperty)}`;
  return MESSAGES.badRequest;
}

function paymentServiceErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation !== undefined) return sendError(reply, 400, validationMessage(error));
  if (error instanceof DomainError && error.code === 'VALIDATION_FAILED') return sendError(reply, 400, MESSAGES.badRequest);
  const problem = contentProblem(error);
  if (problem?.kind === 'PAYLOAD_TOO_LARGE') return sendError(reply, 413, MESSAGES.tooLarge);
  if (problem?.kind === 'UNSUPPORTED_MEDIA_TYPE') return sendError(reply, 415, MESSAGES.unsupportedMediaType);
  if (problem?.kind === 'MALFORMED') return sendError(reply, 400, MESSAGES.badRequest);
  request.log.error({ err: error }, 'unhandled error');
  return sendError(reply, 500, MESSAGES.internal);
}

/** `Bearer <token>` → the token; anything else → undefined (document 004: no token, 401). */
function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** The user a token names: its `userId` claim, else `sub`; a string (or an integer, as some issuers write ids). */
function userOfClaims(payload: Record<string, unknown>): string | undefined {
  const claim = payload.userId ?? payload.sub;
  const user = typeof claim === 'string' ? claim : Number.isSafeInteger(claim) ? String(claim) : undefined;
  return user !== undefined && user.length > 0 && user.length <= MAX_USER_ID ? user : undefined;
}

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, PaymentServiceErrorBody]));

const paymentServiceRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { service } = app.bookings;
  const { clock, config } = app.core;
  const secret = config.jwtSecret === undefined ? undefined : new TextEncoder().encode(config.jwtSecret);
  const users = new WeakMap<FastifyRequest, string>();

  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(paymentServiceErrorHandler);

  /** Runs before the body is read: document 004 checks the token before anything else. */
  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (secret === undefined) return sendError(reply, 503, MESSAGES.noSecret);
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) return sendError(reply, 401, MESSAGES.unauthenticated);
    let user: string | undefined;
    try {
      // Expiry is judged on the injected clock, like every other time rule of the simulator.
      const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], currentDate: new Date(clock.now()) });
      user = userOfClaims(payload);
    } catch {
      user = undefined;
    }
    if (user === undefined) return sendError(reply, 403, MESSAGES.invalidToken);
    users.set(request, user);
    return undefined;
  }

  app.get(
    '/api/v1/payments/methods',
    { schema: { summary: 'Payment methods (no authentication)', tags: ['payment-service'], response: { 200: PaymentMethodList, ...errors(500, 503) } } },
    async () => ({ methods: [...PAYMENT_METHODS] }),
  );

  app.post(
    '/api/v1/payments/process',
    {
      schema: {
        summary: 'Pay a pending booking in one step (JWT)',
        description:
          'After the processing delay (MOCK_MIN_DELAY_MS…MOCK_MAX_DELAY_MS) the booking is confirmed, its seats reserved and the ledger written, in one atomic step. Of two concurrent calls for one booking exactly one succeeds. 503 while JWT_SECRET is unset.',
        tags: ['payment-service'],
        headers: BearerHeader,
        body: ProcessPaymentBody,
        response: { 200: ProcessPaymentResponse, ...errors(400, 401, 403, 404, 413, 415, 500, 503) },
      },
      onRequest: authenticate,
    },
    async (request, reply) => {
      const { reservationId, paymentMethod } = request.body;
      const userId = users.get(request) as string;
      let booking;
      try {
        booking = await service.confirmDirect({ userId, bookingId: reservationId, paymentMethod });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        if (error.code === 'NOT_FOUND') return sendError(reply, 404, MESSAGES.notFound);
        if (error.code === 'BOOKING_EXPIRED') return sendError(reply, 400, MESSAGES.expired);
        if (error.code === 'PAYMENT_ALREADY_PROCESSED') return sendError(reply, 400, alreadyProcessedMessage(reservationId));
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
        reservation: { performanceId: booking.performanceId, seats: booking.seatIds },
      };
    },
  );

  /** Why a booking cannot be paid, in the caller's terms. */
  function alreadyProcessedMessage(bookingId: string): string {
    const booking = service.get(bookingId);
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
    { schema: { summary: 'Liveness of the payment service (document 004)', tags: ['payment-service'], response: { 200: Health } } },
    async () => ({ status: 'ok' as const, service: 'payment-service' as const }),
  );
};

export default paymentServiceRoutes;
