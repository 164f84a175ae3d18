import { FastifyOtelInstrumentation } from '@fastify/otel';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import { SpanStatusCode, type Span, type SpanStatus } from '@opentelemetry/api';
import type { Config } from './config.ts';
import { loggedUrl } from './http/logged-url.ts';
import { routeOf } from './http/route-template.ts';
import { CLOSED_UNANSWERED } from './plugins/app/request-context.ts';

/**
 * OpenTelemetry tracing, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set. Spans are exported in
 * batches off the request path, so an unreachable collector costs neither latency nor log lines
 * (the SDK's diagnostics stay silent unless OTEL_LOG_LEVEL asks for them). The SDK registers the
 * W3C trace-context propagator, so an incoming `traceparent` is honoured.
 */

export interface Tracing {
  /** @fastify/otel's plugin, to register before the routes. */
  plugin: FastifyPluginAsync;
  shutdown(): Promise<void>;
}

export function startTracing(config: Config): Tracing | undefined {
  if (config.otel.endpoint === undefined) return undefined;
  const instrumentation = new FastifyOtelInstrumentation({ instrumentHooks: false, instrumentHandler: false, requestHook: describeRequestSpan });
  const sdk = new NodeSDK({
    serviceName: config.otel.serviceName,
    traceExporter: new OTLPTraceExporter({ url: config.otel.endpoint, timeoutMillis: 2000 }),
    instrumentations: [instrumentation],
  });
  sdk.start();
  return {
    plugin: instrumentation.plugin() as unknown as FastifyPluginAsync,
    shutdown: () => sdk.shutdown().catch(() => undefined),
  };
}

/**
 * A request's span as OpenTelemetry's HTTP conventions name it (`POST /v1/sim/intents/:id`, the
 * route's template: @fastify/otel names every one `request`), with `url.path` the path alone and
 * `url.query` the query as the request line logs it, its secrets left out (@fastify/otel put the
 * whole URL, query and all, in `url.path`: a user test found a token there that the log redacts).
 */
export function describeRequestSpan(span: Span, request: { method: string; url: string; routeOptions: { url?: string | undefined }; raw: IncomingMessage }): void {
  errorFor5xxOrCut(span, request.raw);
  const route = routeOf(request);
  span.updateName(route === undefined ? request.method : `${request.method} ${route}`);
  const mark = request.url.indexOf('?');
  if (mark === -1) return;
  span.setAttribute('url.path', request.url.slice(0, mark));
  span.setAttribute('url.query', loggedUrl(request.url).slice(mark + 1));
}

/**
 * A request's span is an error for a 5xx answer, or when its connection was cut before the answer
 * ended (the client went away, a fault rule's `timeout`), and for nothing else: OpenTelemetry's HTTP
 * conventions leave a server span's status unset for a 4xx, the client's mistake. @fastify/otel
 * (0.21.2) marks ERROR, with an exception event, every error a route throws, a validation 400 or an
 * unknown id's 404 among them, but not a 4xx answered as is (a 401, a 405, an unmatched 404), so a
 * refusal's span status depended on the path it took (a user test, 2026-12-07); its handler spans
 * are off (`instrumentHandler: false`), which marked the same errors one level down. What it records
 * of an error is held until the span ends, when the answer's status is on it (it sets
 * `http.response.status_code` with `setAttributes` just before), and kept only as said. A connection
 * cut before any answer is sent ends no @fastify/otel hook (a fault rule's `timeout` left its span
 * open for good: a review): the span ends, an error, when the socket closes. One `close` listener per
 * socket ends every span still open on it (`OPEN_ON`): a listener per request put 11 on a socket
 * carrying 11 pipelined requests, and Node printed a MaxListenersExceededWarning to stderr, outside
 * the JSON log (a user test, 2026-12-07).
 */
/** The ends of the spans still open on each socket, called by its one `close` listener. */
const OPEN_ON = new WeakMap<Socket, Set<() => void>>();

function endsAtClose(socket: Socket, end: () => void): void {
  let open = OPEN_ON.get(socket);
  if (open === undefined) {
    const ends = (open = new Set());
    OPEN_ON.set(socket, ends);
    socket.once('close', () => {
      for (const close of ends) close();
    });
  }
  open.add(end);
}

function errorFor5xxOrCut(span: Span, raw: IncomingMessage): void {
  const setStatus = span.setStatus.bind(span);
  const recordException = span.recordException.bind(span);
  const setAttributes = span.setAttributes.bind(span);
  const end = span.end.bind(span);
  let error: SpanStatus | undefined;
  const exceptions: Array<Parameters<Span['recordException']>> = [];
  let answered: number | undefined;
  let ended = false;
  const socket = raw.socket as Socket | null;
  const onClose = (): void => span.end();
  if (socket !== null) endsAtClose(socket, onClose);
  span.setStatus = (status) => {
    if (status.code === SpanStatusCode.ERROR) error = status;
    else setStatus(status);
    return span;
  };
  // Timed when recorded, not when replayed at the end.
  span.recordException = (exception, time) => void exceptions.push([exception, time ?? new Date()]);
  span.setAttributes = (attributes) => {
    const code = attributes['http.response.status_code'];
    if (typeof code === 'number') answered = code;
    return setAttributes(attributes);
  };
  const setAttribute = span.setAttribute.bind(span);
  span.setAttribute = (key, value) => {
    if (key === 'http.response.status_code' && typeof value === 'number') answered = value;
    return setAttribute(key, value);
  };
  span.end = (endTime) => {
    if (ended) return;
    ended = true;
    if (socket !== null) OPEN_ON.get(socket)?.delete(onClose);
    // Cut: the body never came whole, or the connection is gone (the log line's 499).
    const cut = raw.readableAborted || socket?.destroyed === true;
    if (cut) setStatus({ code: SpanStatusCode.ERROR, message: CLOSED_UNANSWERED });
    else if (answered !== undefined && answered >= 500 && error !== undefined) setStatus(error);
    if (cut || (answered !== undefined && answered >= 500)) for (const args of exceptions) recordException(...args);
    end(endTime);
  };
}
