import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import type { ErrorCode } from '../core/errors.ts';
import type { ErrorShapes } from './error-shapes.ts';
import { problemOf, type Problem } from './problem.ts';
import { markKeyConflict, markTransient } from './transient-answers.ts';

declare module 'fastify' {
  interface FastifyInstance {
    errorShapes: ErrorShapes;
  }
}

/**
 * How one dialect answers errors: which core codes mean which status in its API, and how a
 * problem is written in its shape. Each dialect module defines one; `createErrorHandler` makes
 * its Fastify error handler, and the root handlers (404, 405, 414, 503, unreadable URLs) use the
 * shape that owns the request's path (see `ErrorShapes`).
 */
export interface ErrorShape {
  /** The dialect, for logs. */
  readonly name: string;
  /** Path prefixes the dialect owns, e.g. `/v1/sim`; matched at a segment boundary. */
  readonly prefixes: readonly string[];
  /**
   * Paths the dialect owns inside another dialect's prefix (FluxPay's `/api/v1/payments/{paymentKey}`
   * under the payment service's `/api/v1/payments`), matched against the whole decoded path
   * before any prefix.
   */
  readonly paths?: readonly RegExp[];
  /** Statuses of the core codes this dialect answers; an unmapped code is a 500. */
  readonly statusOf: Partial<Record<ErrorCode, number>>;
  /** The status of a problem when the dialect's API answers it with another (FastAPI answers bad input with 422, not 400). */
  statusFor?(problem: Problem): number;
  /** The schema of the bodies `render` writes (but for the dialect's own kinds, as FastAPI's 422): what the OpenAPI document shows for answers no route lists (a fault rule's). */
  readonly schema: TSchema;
  /** The schema of a validation problem's body where it is not `schema` (FastAPI's 422). */
  readonly validationSchema?: TSchema;
  /** Writes `problem` in the dialect's shape (status and headers are set by `sendProblem`). */
  render(reply: FastifyReply, problem: Problem): FastifyReply;
}

/** Sends a problem in a dialect's shape, with its status, `Retry-After` and any extra headers. */
export function sendProblem(reply: FastifyReply, shape: Pick<ErrorShape, 'statusFor' | 'render'>, problem: Problem): FastifyReply {
  reply.server.errorShapes?.notify(problem);
  if (problem.transient === true) markTransient(reply);
  if (problem.code === 'IDEMPOTENCY_KEY_IN_USE') markKeyConflict(reply);
  reply.code(shape.statusFor?.(problem) ?? problem.status).type('application/json; charset=utf-8');
  if (problem.retryAfterS !== undefined) reply.header('retry-after', String(problem.retryAfterS));
  // The process is closing: the client's next request goes to another instance (as refused at the door, or by a quiesced scheduler).
  if (problem.code === 'SHUTTING_DOWN') reply.header('connection', 'close');
  for (const [name, value] of Object.entries(problem.headers ?? {})) reply.header(name, value);
  return shape.render(reply, problem);
}

/**
 * The body `shape` writes for `problem`, as `sendProblem` sends it to a request with the trace id
 * `traceId` and `headers` (none by default; FastAPI's shape quotes a bad header's value): the
 * OpenAPI document's examples of answers no route schema lists (a fault rule's) are the service's own.
 */
export function renderedBody(shape: ErrorShape, problem: Problem, traceId: string, headers: Readonly<Record<string, string>> = {}): unknown {
  let body: unknown;
  const reply = {
    request: { traceId, headers },
    send(payload: unknown) {
      body = payload;
      return reply;
    },
  };
  shape.render(reply as unknown as FastifyReply, problem);
  return body;
}

/** The Fastify error handler of a dialect: every error becomes a problem in the dialect's shape; a 500 is logged, never shown. */
export function createErrorHandler(shape: ErrorShape) {
  return function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const problem = problemOf(error, shape.statusOf);
    if (problem.internal === true) request.log.error({ err: error, dialect: shape.name }, 'unhandled error');
    return sendProblem(reply, shape, problem);
  };
}
