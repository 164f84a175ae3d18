import type { ErrorDocs, Examples } from '../../http/openapi.ts';
import { MESSAGES } from './errors.ts';
import { PAYMENT_METHODS, PaymentServiceErrorBody } from './schemas.ts';

/**
 * The payment-service API's examples for the OpenAPI document, from the README's walk-through.
 * The booking id is a fixed example id; test/integration/openapi-examples.test.ts replaces it
 * with a pending booking of the token's user before sending the request example.
 */

export const EXAMPLE_BOOKING_ID = 'bk_01KBA7Q4A6J3M8P1T5W9Y2C4HG';

export const methodsResponses: Examples = { methods: { summary: 'The four payment methods', value: { methods: [...PAYMENT_METHODS] } } };

export const processRequests: Examples = { kakao_pay: { summary: 'Pay a pending booking with KakaoPay', value: { reservationId: EXAMPLE_BOOKING_ID, paymentMethod: 'kakao_pay' } } };

export const processResponses: Examples = {
  kakao_pay: {
    summary: 'Paid: the booking is confirmed, its seats reserved and the ledger written',
    value: {
      success: true,
      message: MESSAGES.paid,
      payment: { reservationId: EXAMPLE_BOOKING_ID, paymentMethod: '카카오페이', totalAmount: 90000, paidAt: '2026-11-30T09:00:02.042Z' },
      reservation: { performanceId: 'perf_002', seats: ['A1', 'A2', 'A3'] },
    },
  },
};

export const healthResponses: Examples = { ok: { summary: 'Up', value: { status: 'ok', service: 'payment-service' } } };

const error = (message: string): { summary: string; value: { error: string } } => ({ summary: message, value: { error: message } });

export const paymentServiceErrorDocs: ErrorDocs = {
  schema: PaymentServiceErrorBody,
  byStatus: {
    400: {
      description: 'A missing field (absent, empty or null), a `reservationId` that is not a booking id, an unknown method, a field besides the two (named; the original ignored them), a body that is not a JSON object, malformed JSON, or a booking that cannot be paid (already paid, expired, cancelled, failed, or a payment in flight).',
      examples: { missing: error(MESSAGES.missingFields), already_paid: error(MESSAGES.alreadyPaid) },
    },
    401: { description: 'No `Authorization: Bearer` token.', examples: { no_token: error(MESSAGES.unauthenticated) } },
    403: { description: 'The token is invalid: bad signature, expired, not HS256, or no `userId`/`sub`.', examples: { bad_token: error(MESSAGES.invalidToken) } },
    404: { description: 'No such booking, or another user’s.', examples: { not_found: error(MESSAGES.notFound) } },
    413: { description: 'The body is larger than BODY_LIMIT_BYTES.', examples: { too_large: error(MESSAGES.tooLarge) } },
    415: { description: 'The body is not `application/json`, names a UTF-16 or UTF-32 charset (any other is not read: the body is UTF-8), or is compressed (`Content-Encoding` is not decoded).', examples: { media_type: error(MESSAGES.unsupportedMediaType) } },
    500: { description: 'A fault of the simulator.', examples: { internal: error(MESSAGES.internal) } },
    503: {
      description: 'JWT_SECRET is unset, load shedding, a full store, the store unreachable (STORE=redis and Redis away) or shutting down; retry after `Retry-After` seconds when it is sent.',
      examples: { no_secret: error(MESSAGES.noSecret), overloaded: error(MESSAGES.overloaded), unavailable: error(MESSAGES.unavailable) },
    },
  },
};

/** The routes that need no token never answer 503 for a missing JWT_SECRET. */
export const unavailableWithoutAuth = {
  description: 'Load shedding, a full store, the store unreachable (STORE=redis and Redis away) or shutting down; retry after `Retry-After` seconds.',
  examples: { overloaded: error(MESSAGES.overloaded), unavailable: error(MESSAGES.unavailable) },
};
