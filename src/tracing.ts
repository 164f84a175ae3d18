import { FastifyOtelInstrumentation } from '@fastify/otel';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { FastifyPluginAsync } from 'fastify';
import type { Config } from './config.ts';

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
  const instrumentation = new FastifyOtelInstrumentation({ instrumentHooks: false });
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
