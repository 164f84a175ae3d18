import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { trace } from '@opentelemetry/api';
import type { FastifyChildLoggerFactory } from 'fastify/types/logger.js';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { Bindings, ChildLoggerOptions, Logger } from 'pino';
import fp from 'fastify-plugin';
import { SHUTTING_DOWN_MESSAGE, type FieldIssue } from '../../core/errors.ts';
import { SAFE_METHODS } from './lifecycle.ts';
import { sendProblem } from '../../http/error-handler.ts';
import type { ErrorShapes } from '../../http/error-shapes.ts';
import { loggedUrl } from '../../http/logged-url.ts';
import { writeInfoLine, type FlatFields } from '../../info-line.ts';
import { routeOf } from '../../http/route-template.ts';

/**
 * Request id and trace id for every request, on every log line of it and in error bodies.
 * - `X-Request-Id` is taken from the request when it is a sane token, else generated; it is echoed.
 * - The trace id is the active OpenTelemetry span's when tracing is on, else the one in an incoming
 *   W3C `traceparent`, else a new random one, so logs and errors can always be correlated.
 * One log line per request, at completion, instead of Fastify's two. Requests that cannot be
 * served at all (an over-long URL, no `Host`, the server closing) are refused here.
 */

declare module 'fastify' {
  interface FastifyRequest {
    traceId: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/**
 * A `traceparent` as OpenTelemetry's W3C propagator takes it (so the trace id logged is the span's):
 * a version other than ff, a trace id and a parent id not all zeros; a later version may carry more
 * fields, version 00 none. Before 2026-12-07 a header the propagator refused (an all-zero parent id,
 * version ff) still gave the log line and error body its trace id, and the span another (a user test).
 * @see https://www.w3.org/TR/trace-context/#traceparent-header-field-values
 */
const TRACEPARENT = /^\s?(?!ff)([0-9a-f]{2})-(?!0{32})([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-.*)?\s?$/;
const INVALID_TRACE_ID = '00000000000000000000000000000000';

const TRACE_ID = Symbol('paysim.traceId');
const GENERATED_ID = Symbol('paysim.generatedRequestId');
type TracedMessage = IncomingMessage & { [TRACE_ID]?: string | undefined; [GENERATED_ID]?: string | undefined };

/**
 * Fastify's `childLoggerFactory`: the one child logger Fastify makes per request also carries the
 * trace id, so every line of the request has it without a second child logger. With tracing on
 * and no incoming `traceparent`, the trace id is the server span's, known only once the span has
 * started: the onRequest hook binds it then.
 */
export function childLoggerWithTraceId(tracing: boolean): FastifyChildLoggerFactory {
  return (logger, bindings, options, rawReq) => {
    const raw = rawReq as TracedMessage;
    // A generated request id is 122 random bits already: its hex digits are a fine new trace id (one random draw, not two).
    const traceId = traceIdFromHeader(raw.headers.traceparent) ?? (tracing ? undefined : (raw[GENERATED_ID] === undefined ? newTraceId() : hexOfUuid(raw[GENERATED_ID])));
    raw[TRACE_ID] = traceId;
    if (traceId !== undefined) bindings.trace_id = traceId;
    // A route's own level or serializers: a real child at once (no route of this service has them).
    if (options.level !== undefined || options.serializers !== undefined) return logger.child(bindings, options);
    return new RequestLogger(logger, bindings);
  };
}

/**
 * A request's logger, as pino's child of the app's logger with the request's bindings would be,
 * except that the child is made only when a line is logged through it. Most requests log only
 * their completion line, which `logRequestLine` writes through the app's logger with the same
 * bindings as its first fields: the same line, without making (and serialising the bindings of) a
 * child logger per request.
 */
class RequestLogger {
  readonly parent: FastifyBaseLogger;
  readonly bindings: Bindings;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings) {
    this.parent = parent;
    this.bindings = bindings;
  }

  /** The child logger, made on first use. */
  get logger(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.bindings));
  }

  /** Whether the child logger has been made (a line was logged through it, or it was asked for). */
  get made(): boolean {
    return this.#child !== undefined;
  }

  get level(): string {
    return this.#child?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.logger.level = level;
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options);
  }

  // Methods, not fields: nothing is allocated per request for them.
  fatal(...args: unknown[]): void {
    logThrough(this.logger, 'fatal', args);
  }

  error(...args: unknown[]): void {
    logThrough(this.logger, 'error', args);
  }

  warn(...args: unknown[]): void {
    logThrough(this.logger, 'warn', args);
  }

  info(...args: unknown[]): void {
    logThrough(this.logger, 'info', args);
  }

  debug(...args: unknown[]): void {
    logThrough(this.logger, 'debug', args);
  }

  trace(...args: unknown[]): void {
    logThrough(this.logger, 'trace', args);
  }

  silent(...args: unknown[]): void {
    logThrough(this.logger, 'silent', args);
  }
}

function logThrough(logger: FastifyBaseLogger, method: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent', args: unknown[]): void {
  (logger[method] as (...a: unknown[]) => void).apply(logger, args);
}

/**
 * A request's completion line (or any line of it) through its logger: when the request's child
 * logger was never made, written for the app's logger with the request's bindings first, which
 * is the same line (by `writeInfoLine`'s template where pino would write what it writes).
 */
export function logRequestLine(log: FastifyBaseLogger, fields: FlatFields, message: string): void {
  if (log instanceof RequestLogger && !log.made) writeInfoLine(log.parent as Logger, log.bindings as FlatFields, fields, message);
  else log.info(fields, message);
}

export function requestIdFrom(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && REQUEST_ID.test(given)) return given;
  const generated = randomUUID();
  (req as TracedMessage)[GENERATED_ID] = generated;
  return generated;
}

/**
 * Gives a request its trace id and echoes its request id. The onRequest hook does it for every
 * routed request; errors answered before routing (an unreadable URL) call it themselves.
 */
export function bindRequestContext(request: FastifyRequest, reply: FastifyReply): void {
  // A request Fastify built before routing (an unreadable URL) lacks the decoration: undefined, not ''.
  if (request.traceId) return;
  // The request's logger was made with the traceparent's (or a new) trace id; a tracing span
  // that started a new trace replaces it here.
  const bound = (request.raw as TracedMessage)[TRACE_ID];
  request.traceId = bound ?? activeTraceId() ?? newTraceId();
  if (bound === undefined) request.log = request.log.child({ trace_id: request.traceId });
  reply.header('x-request-id', request.id);
}

export interface RequestContextOptions {
  /** For the requests refused at the door: in the shape of the dialect that owns the path (a page under the console's). */
  shapes: ErrorShapes;
}

/** nginx's status for a request its client closed before the answer: what a request closed unanswered is logged and counted with. */
export const CLIENT_CLOSED_REQUEST = 499;
/** The request line of a request closed before its answer ended, and its trace span's status message. */
export const CLOSED_UNANSWERED = 'request closed before its answer ended';

/**
 * Requests whose line is written, or is another's to write: one gets a single line whichever of its
 * close and onResponse comes first, and none here when it was hijacked by code that writes its own
 * (`lineWrittenElsewhere`).
 */
const LINE_WRITTEN = new WeakSet<object>();

/**
 * The request's line is another's to write: a fault rule's `timeout`, which hijacks it and writes
 * its own, or a namespace's app it is handed over to (its own hooks write it).
 */
export function lineWrittenElsewhere(request: FastifyRequest): void {
  LINE_WRITTEN.add(request);
}

/** A `response_lost` fault rule shaped the request: its answer goes to no one (a 499). */
export function lostByRule(request: FastifyRequest): boolean {
  return request.faultPlan?.response?.action.type === 'response_lost';
}

/** Longer URLs get 414; well under Node's 16 KiB header limit, past which the parser refuses the request (431, answered by src/http/client-errors.ts). */
export const MAX_URL_LENGTH = 8192;

/** The issue of an HTTP/1.1 request without `Host`, as a schema's required header would be reported. */
const HOST_MISSING: FieldIssue = Object.freeze({ in: 'headers', field: '/host', rule: 'required', message: 'is required in an HTTP/1.1 request' });

export default fp<RequestContextOptions>(
  async (app, { shapes }) => {
    /** What a request refused for the shutdown gets, in its dialect's shape. */
    const shuttingDown = (request: FastifyRequest, reply: FastifyReply): FastifyReply =>
      sendProblem(reply, shapes.forRefusal(request.url), { status: 503, code: 'SHUTTING_DOWN', message: SHUTTING_DOWN_MESSAGE, retryAfterS: 1 });
    app.decorateRequest('traceId', '');
    const { lifecycle } = app;

    // One hook for what every request needs first: its ids, then three cheap checks whose problem
    // is built only when one fails.
    app.addHook('onRequest', (request, reply, done) => {
      bindRequestContext(request, reply);
      // /readyz says so itself, in its own shape (before 2026-12-04 its 503 schema refused the dialect's error body: a 500).
      if (lifecycle.closing && request.routeOptions.url !== '/readyz') return shuttingDown(request, reply);
      // From the drain's start nothing new is taken that the drain would have to wait for (reads are served).
      if (lifecycle.shuttingDown && !SAFE_METHODS.has(request.method)) return shuttingDown(request, reply);
      if (request.url.length > MAX_URL_LENGTH) {
        return sendProblem(reply, shapes.forRefusal(request.url), { status: 414, code: 'URI_TOO_LONG', message: `The request URL is longer than ${MAX_URL_LENGTH} characters.` });
      }
      if (request.headers.host === undefined && request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor >= 1) {
        // The header named as a schema names one it misses: native lists it in `details`, FluxPay as `header.host`.
        return sendProblem(reply, shapes.forRefusal(request.url), { status: 400, code: 'BAD_REQUEST', message: 'An HTTP/1.1 request needs a Host header.', details: [HOST_MISSING] });
      }
      done();
    });

    // A write counts for the drain once its body has arrived (a client still sending one, or stalled,
    // is nothing the drain could wait out: a reviewer saw one hold a stop for its whole budget); one
    // whose body came after the drain began is refused then.
    app.addHook('preValidation', (request, reply, done) => {
      if (SAFE_METHODS.has(request.method)) return done();
      if (lifecycle.shuttingDown) return shuttingDown(request, reply);
      lifecycle.trackWrite(reply.raw);
      done();
    });

    // A request closed before its answer ended (its client went away: a load generator's timeout, or
    // the connection a fault rule's response_lost or timeout cut) gets no onResponse, though it may
    // have done its work (an intent made): its line says so, with 499 (nginx's "client closed
    // request"), or the status of an answer begun and never ended (a stream closed by its client:
    // the console's live feed), as http_requests_total counts it. Before 2026-12-07 nothing was
    // logged for it, only counted (a user test).
    app.addHook('onRequest', (request, reply, done) => {
      reply.raw.once('close', () => {
        if (LINE_WRITTEN.has(request)) return;
        const lost = lostByRule(request);
        // Finished (its last bytes handed to the socket, not on a connection a rule reset): onResponse
        // writes its line. Ended and never finished (the socket died with it still queued: rev74d), it gets none.
        if (reply.raw.writableFinished && !lost) return;
        LINE_WRITTEN.add(request);
        logRequestLine(
          request.log,
          {
            method: request.method,
            url: loggedUrl(request.url),
            route: routeOf(request),
            status_code: reply.raw.headersSent && !lost ? reply.raw.statusCode : CLIENT_CLOSED_REQUEST,
            duration_ms: Math.round(reply.elapsedTime * 100) / 100,
          },
          CLOSED_UNANSWERED,
        );
      });
      done();
    });

    app.addHook('onResponse', (request, reply, done) => {
      if (LINE_WRITTEN.has(request)) return done();
      // Its close may come after this (an injected request's always does, a reset connection's may): logged here only.
      LINE_WRITTEN.add(request);
      logRequestLine(
        request.log,
        { method: request.method, url: loggedUrl(request.url), route: routeOf(request), status_code: reply.statusCode, duration_ms: Math.round(reply.elapsedTime * 100) / 100 },
        'request completed',
      );
      done();
    });
  },
  { name: 'paysim-request-context', dependencies: ['paysim-lifecycle'] },
);

function activeTraceId(): string | undefined {
  const active = trace.getActiveSpan()?.spanContext().traceId;
  return active !== undefined && active !== INVALID_TRACE_ID ? active : undefined;
}

function traceIdFromHeader(traceparent: string | string[] | undefined): string | undefined {
  const match = typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent) : null;
  if (match === null || (match[1] === '00' && match[3] !== undefined)) return undefined;
  return match[2];
}

/** randomUUID draws from a pooled entropy cache: cheaper per request than randomBytes(16). */
function newTraceId(): string {
  return hexOfUuid(randomUUID());
}

/** A UUID's 32 hex digits, without its dashes (by slices: a third of `replaceAll`'s cost). */
function hexOfUuid(uuid: string): string {
  return uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(14, 18) + uuid.slice(19, 23) + uuid.slice(24);
}
