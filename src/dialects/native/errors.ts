import type { ErrorShape } from '../../http/error-handler.ts';
import { ErrorBody } from './schemas.ts';

/**
 * The native API's error envelope: `{"error": {"code", "message", "details"?, "trace_id"}}`.
 * It is also the shape of paths no dialect owns (`/`, `/healthz`, unknown ones).
 * @see issue 2 "Errors"
 */
export const nativeErrors: ErrorShape = {
  schema: ErrorBody,
  name: 'native',
  prefixes: ['/v1/sim'],
  statusOf: {
    VALIDATION_FAILED: 400,
    NOT_FOUND: 404,
    INVALID_STATE: 409,
    IDEMPOTENCY_KEY_IN_USE: 409,
    REFUND_EXCEEDS_AMOUNT: 422,
    IDEMPOTENCY_KEY_MISMATCH: 422,
  },
  render(reply, problem) {
    const error: Record<string, unknown> = { code: problem.code, message: problem.message };
    if (problem.details !== undefined && problem.details.length > 0) error.details = problem.details;
    if (reply.request.traceId) error.trace_id = reply.request.traceId;
    return reply.send({ error });
  },
};
