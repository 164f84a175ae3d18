import type { FastifyError } from 'fastify';
import { DomainError, StoreFullError, StoreUnavailableError, type ErrorCode, type FieldIssue } from '../core/errors.ts';
import { MalformedJsonError, UnreadableBodyError } from './json-body.ts';
import { validationIssues, type ValidationIssue } from './validation.ts';

/**
 * What went wrong with a request, before any dialect's wording or shape: a status, a stable
 * code, an English message, and the field issues of a validation failure. Every error the
 * service answers is first turned into a Problem (`problemOf`), then rendered by the dialect
 * that owns the path (`ErrorShape.send`).
 */
export interface Problem {
  status: number;
  code: string;
  message: string;
  details?: Array<FieldIssue | ValidationIssue> | undefined;
  /** Sent as `Retry-After` (seconds): with 429, 503, and a refusal another request in flight is about to settle (`transient`, IDEMPOTENCY_KEY_IN_USE). */
  retryAfterS?: number | undefined;
  /** Extra headers, e.g. `Allow` with a 405. */
  headers?: Record<string, string> | undefined;
  /** With STORE_FULL: which store was full. */
  store?: string | undefined;
  /** A refusal that another request in flight is about to make untrue (DomainError.transient): not kept under an Idempotency-Key. */
  transient?: boolean | undefined;
  /** With a body that is not JSON: where it broke (`message` says it too, in English). */
  malformedJson?: { position: number; line: number; column: number; reason: string; kind: 'malformed' | 'too_deep' } | undefined;
}

/** Seconds a client is told to wait after STORE_FULL. */
export const STORE_FULL_RETRY_AFTER_S = 1;

/** Seconds a client is told to wait after STORE_UNAVAILABLE: about how long Redis' client takes to reconnect. */
export const STORE_UNAVAILABLE_RETRY_AFTER_S = 1;

/**
 * Seconds a client is told to wait after a refusal another request in flight is about to settle:
 * 409 IDEMPOTENCY_KEY_IN_USE (the request holding the key, or with Redis the retry that took it
 * over, is still running; its answer is then replayed), a booking's payment in progress.
 */
export const IN_FLIGHT_RETRY_AFTER_S = 1;

/** The 414 of a path parameter longer than the router's `maxParamLength` (Fastify's default, 100). */
export const PARAMETER_TOO_LONG_MESSAGE = 'A path parameter is longer than the service accepts.';

/** Fastify's own errors about a request it could not read, as problems. */
const FASTIFY_PROBLEMS: Record<string, Omit<Problem, 'message'> & { message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'The request body is larger than the limit (BODY_LIMIT_BYTES).' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the body as application/json.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'VALIDATION_FAILED', message: 'The request body size did not match its Content-Length.' },
  FST_ERR_BAD_URL: { status: 400, code: 'BAD_URL', message: 'The request path is not a valid URL (bad percent-encoding).' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, code: 'URI_TOO_LONG', message: PARAMETER_TOO_LONG_MESSAGE },
  FST_ERR_ASYNC_CONSTRAINT: { status: 400, code: 'BAD_REQUEST', message: 'The request could not be routed.' },
};

/**
 * The problem an error thrown while handling a request stands for. `statusOf` maps the core's
 * codes to the dialect's statuses; a core code the dialect does not map, and any error that is
 * not the client's fault, is a 500 (and `internal` is true, for the log).
 */
export function problemOf(error: FastifyError | Error, statusOf: Partial<Record<ErrorCode, number>>): Problem & { internal?: true } {
  if (error instanceof DomainError) {
    if (error instanceof StoreFullError) return { status: 503, code: error.code, message: error.message, retryAfterS: STORE_FULL_RETRY_AFTER_S, store: error.store };
    if (error instanceof StoreUnavailableError) return { status: 503, code: error.code, message: error.message, retryAfterS: STORE_UNAVAILABLE_RETRY_AFTER_S };
    const status = statusOf[error.code];
    if (status !== undefined) {
      // IDEMPOTENCY_KEY_IN_USE thrown by a route (idempotencyKeyLost) is transient too.
      const retryAfterS = error.transient ? IN_FLIGHT_RETRY_AFTER_S : undefined;
      return { status, code: error.code, message: error.message, details: error.details, ...(error.transient ? { transient: true } : {}), ...(retryAfterS === undefined ? {} : { retryAfterS }) };
    }
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation !== undefined) {
    const details = validationIssues(fastifyError);
    const first = details[0];
    return { status: 400, code: 'VALIDATION_FAILED', message: first ? `${first.in} ${first.field}: ${first.message}` : 'The request is invalid.', details };
  }
  const known = fastifyError.code === undefined ? undefined : FASTIFY_PROBLEMS[fastifyError.code];
  if (known !== undefined) return { ...known, message: known.message ?? fastifyError.message };
  if (error instanceof UnreadableBodyError) return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: error.message };
  if (error instanceof MalformedJsonError) {
    const { position, line, column, reason, kind } = error;
    return { status: 400, code: 'VALIDATION_FAILED', message: error.message, malformedJson: { position, line, column, reason, kind } };
  }
  if (fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError || fastifyError.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return { status: 400, code: 'VALIDATION_FAILED', message: `The request body could not be read: ${error.message}` };
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) return { status, code: 'BAD_REQUEST', message: error.message };
  return { status: 500, code: 'INTERNAL', message: 'Something went wrong on our side; the request may be retried.', internal: true };
}
