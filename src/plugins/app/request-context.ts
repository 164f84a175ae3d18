import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { trace } from '@opentelemetry/api';
import type { FastifyChildLoggerFactory } from 'fastify/types/logger.js';
import fp from 'fastify-plugin';

/**
 * Request id and trace id for every request, on every log line of it and in error bodies.
 * - `X-Request-Id` is taken from the request when it is a sane token, else generated; it is echoed.
 * - The trace id is the active OpenTelemetry span's when tracing is on, else the one in an incoming
 *   W3C `traceparent`, else a new random one, so logs and errors can always be correlated.
 * One log line per request, at completion, instead of Fastify's two.
 */

declare module 'fastify' {
  interface FastifyRequest {
    traceId: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** @see https://www.w3.org/TR/trace-context/#traceparent-header-field-values */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
const INVALID_TRACE_ID = '00000000000000000000000000000000';

const TRACE_ID = Symbol('paysim.traceId');
type TracedMessage = IncomingMessage & { [TRACE_ID]?: string | undefined };

/**
 * Fastify's `childLoggerFactory`: the one child logger Fastify makes per request also carries the
 * trace id, so every line of the request has it without a second child logger. With tracing on
 * and no incoming `traceparent`, the trace id is the server span's, known only once the span has
 * started: the onRequest hook binds it then.
 */
export function childLoggerWithTraceId(tracing: boolean): FastifyChildLoggerFactory {
  return (logger, bindings, options, rawReq) => {
    const traceId = traceIdFromHeader((rawReq as TracedMessage).headers.traceparent) ?? (tracing ? undefined : newTraceId());
    (rawReq as TracedMessage)[TRACE_ID] = traceId;
    return logger.child(traceId === undefined ? bindings : { ...bindings, trace_id: traceId }, options);
  };
}

export function requestIdFrom(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export default fp(
  async (app) => {
    app.decorateRequest('traceId', '');

    app.addHook('onRequest', (request, reply, done) => {
      // The request's logger was made with the traceparent's (or a new) trace id; a tracing span
      // that started a new trace replaces it here.
      const bound = (request.raw as TracedMessage)[TRACE_ID];
      request.traceId = bound ?? activeTraceId() ?? newTraceId();
      if (bound === undefined) request.log = request.log.child({ trace_id: request.traceId });
      reply.header('x-request-id', request.id);
      done();
    });

    app.addHook('onResponse', (request, reply, done) => {
      request.log.info(
        { method: request.method, url: request.url, route: request.routeOptions.url, status_code: reply.statusCode, duration_ms: Math.round(reply.elapsedTime * 100) / 100 },
        'request completed',
      );
      done();
    });
  },
  { name: 'paysim-request-context' },
);

function activeTraceId(): string | undefined {
  const active = trace.getActiveSpan()?.spanContext().traceId;
  return active !== undefined && active !== INVALID_TRACE_ID ? active : undefined;
}

function traceIdFromHeader(traceparent: string | string[] | undefined): string | undefined {
  const match = typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent) : null;
  return match?.[1] !== undefined && match[1] !== INVALID_TRACE_ID ? match[1] : undefined;
}

/** randomUUID draws from a pooled entropy cache: cheaper per request than randomBytes(16). */
function newTraceId(): string {
  return randomUUID().replaceAll('-', '');
}
