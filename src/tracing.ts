import { FastifyOtelInstrumentation } from '@fastify/otel';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { FastifyPluginAsync } from 'fastify';
import type { Span } from '@opentelemetry/api';
import type { Config } from './config.ts';
import { loggedUrl } from './http/logged-url.ts';
import { routeOf } from './http/route-template.ts';

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
  const instrumentation = new FastifyOtelInstrumentation({ instrumentHooks: false, requestHook: describeRequestSpan });
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
export function describeRequestSpan(span: Span, request: { method: string; url: string; routeOptions: { url?: string | undefined } }): void {
  const route = routeOf(request);
  span.updateName(route === undefined ? request.method : `${request.method} ${route}`);
  const mark = request.url.indexOf('?');
  if (mark === -1) return;
  span.setAttribute('url.path', request.url.slice(0, mark));
  span.setAttribute('url.query', loggedUrl(request.url).slice(mark + 1));
}
