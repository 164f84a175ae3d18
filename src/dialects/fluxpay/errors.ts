import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { FLUXPAY_STATUS, FluxPayError, type FluxPayFieldError } from '../../core/fluxpay/errors.ts';
import { createErrorHandler, sendProblem, type ErrorShape } from '../../http/error-handler.ts';
import type { Problem } from '../../http/problem.ts';
import { ErrorBody } from './schemas.ts';

/**
 * The FluxPay API's error shape (source document 002): the wrapper
 * `{"isSuccess": false, "code", "message", "result": null}`; a validation error (COMMON_400)
 * lists its fields in `result.errors` as `{field, reason}`. Business refusals carry the
 * document's codes (PAY_001–PAY_005, thrown by the core as FluxPayErrors); everything else is
 * `COMMON_<status>`: COMMON_404 (also an unknown path under a FluxPay prefix), COMMON_405,
 * COMMON_409 (an Idempotency-Key still in use, or an admission token in use by an order still being created, both with Retry-After; a webhook subscription beyond FLUXPAY_MAX_SUBSCRIPTIONS), COMMON_413, COMMON_414, COMMON_415, COMMON_422
 * (an Idempotency-Key reused with another body), COMMON_503 (with `Retry-After`), COMMON_500
 * (never with internals).
 *
 * Which paths are FluxPay's: its own prefixes, and under the payment service's
 * `/api/v1/payments` (document 004) exactly `/api/v1/payments`, `/api/v1/payments/confirm` and
 * `/api/v1/payments/pk_…`. Every other path under `/api/v1/payments` (`/process`, `/methods`,
 * and unknown ones) stays the payment service's, so its clients see its errors unchanged.
 * @see issue 11 "Conventions of the dialect"
 */

export const FLUXPAY_PREFIXES = ['/api/v1/orders', '/api/v1/credits', '/api/v1/events', '/api/v1/sagas', '/api/v1/outbox', '/api/v1/reconciliation', '/api/v1/webhook-subscriptions', '/api/v1/waiting-rooms', '/api/v1/subscriptions'] as const;

/** FluxPay's paths under `/api/v1/payments` (a trailing slash allowed, as the router allows it). */
export const FLUXPAY_PAYMENT_PATHS: readonly RegExp[] = [/^\/api\/v1\/payments\/?$/, /^\/api\/v1\/payments\/confirm\/?$/, /^\/api\/v1\/payments\/pk_[^/]*\/?$/];

export const fluxpayErrors: ErrorShape = {
  schema: ErrorBody,
  name: 'fluxpay',
  prefixes: FLUXPAY_PREFIXES,
  paths: FLUXPAY_PAYMENT_PATHS,
  statusOf: { VALIDATION_FAILED: 400, IDEMPOTENCY_KEY_IN_USE: 409, IDEMPOTENCY_KEY_MISMATCH: 422 },
  render(reply, problem) {
    const code = problem.status === 400 && problem.code === 'VALIDATION_FAILED' ? 'COMMON_400' : problem.code.startsWith('PAY_') || problem.code.startsWith('WAIT_') || problem.code.startsWith('SUB_') || problem.code.startsWith('COMMON_') ? problem.code : `COMMON_${problem.status}`;
    return reply.send({ isSuccess: false, code, message: problem.message, result: code === 'COMMON_400' ? { errors: fieldErrors(problem) } : null });
  },
};

/** Sends a core refusal in the wrapper. */
export function sendFluxPayError(reply: FastifyReply, error: FluxPayError): FastifyReply {
  return sendProblem(reply, fluxpayErrors, {
    status: FLUXPAY_STATUS[error.code],
    code: error.code,
    message: error.message,
    details: error.errors?.map((e) => ({ field: e.field, rule: 'invalid', message: e.reason })),
    ...(error.retryAfterS === undefined ? {} : { retryAfterS: error.retryAfterS, transient: true }),
  });
}

/** The dialect's error handler: the core's refusals with their codes, everything else through the shared handler. */
export function fluxpayErrorHandler() {
  const base = createErrorHandler(fluxpayErrors);
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (error instanceof FluxPayError) return sendFluxPayError(reply, error);
    return base(error, request, reply);
  };
}

/** `/card/cvv` in the body → `card.cvv`; a query parameter → `query.limit`. */
function fieldOf(issue: { field: string; in?: string }): string {
  const path = issue.field
    .split('/')
    .filter((s) => s !== '')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
  const where = issue.in === undefined || issue.in === 'body' ? '' : issue.in === 'querystring' ? 'query' : issue.in === 'params' ? 'path' : issue.in === 'headers' ? 'header' : issue.in;
  if (where === '') return path === '' ? 'body' : path;
  return path === '' ? where : `${where}.${path}`;
}

function fieldErrors(problem: Problem): FluxPayFieldError[] {
  const broken = problem.malformedJson;
  if (broken !== undefined) return [{ field: 'body', reason: `${broken.kind === 'malformed' ? 'malformed JSON' : 'JSON nested too deeply'} at line ${broken.line}, column ${broken.column}: ${broken.reason}` }];
  const details = problem.details ?? [];
  if (details.length === 0) return [{ field: problem.code === 'BAD_URL' ? 'path' : 'body', reason: problem.message }];
  // A field given as `card.cvv` by the core stays; a JSON pointer is dotted.
  return details.map((d) => ({ field: d.field.startsWith('/') || d.in !== undefined ? fieldOf({ field: d.field.startsWith('/') ? d.field : `/${d.field}`, in: d.in }) : d.field, reason: d.message }));
}
