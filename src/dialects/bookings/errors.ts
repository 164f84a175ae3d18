import type { ErrorShape } from '../../http/error-handler.ts';
import { BookingsErrorBody } from './schemas.ts';

/**
 * The bookings API's error shape (document 003): `{"error": "<message>", "code": "<CODE>"}`.
 * The core's field rules (quantity, cvv, card number) are about the body, and are said as the
 * schema's are (`body /cvv: …`).
 * @see issue 4 "The bookings API", ../../../../shared/seeds/003_2d28ecb358825d26.txt
 */
export const bookingsErrors: ErrorShape = {
  schema: BookingsErrorBody,
  name: 'bookings',
  prefixes: ['/bookings', '/payments', '/performances', '/events', '/ledger'],
  statusOf: {
    VALIDATION_FAILED: 400,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    SOLD_OUT: 409,
    PAYMENT_ALREADY_PROCESSED: 409,
    INVALID_STATE: 409,
    IDEMPOTENCY_KEY_IN_USE: 409,
    BOOKING_EXPIRED: 410,
    IDEMPOTENCY_KEY_MISMATCH: 422,
  },
  render(reply, problem) {
    return reply.send({ error: problem.message, code: problem.code });
  },
};
