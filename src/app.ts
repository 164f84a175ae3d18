import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { LiveFeed } from './console/feed.ts';
import type { Clock } from './core/clock.ts';
import type { Stores } from './core/ports.ts';
import type { RandomSource } from './core/random.ts';
import consolePlugin from './console/index.ts';
import bookingsDialect from './dialects/bookings/index.ts';
import fluxpayDialect from './dialects/fluxpay/index.ts';
import nativeDialect from './dialects/native/index.ts';
import paymentServerV2Dialect from './dialects/payment-server-v2/index.ts';
import paymentServiceDialect from './dialects/payment-service/index.ts';
import { sendProblem } from './http/error-handler.ts';
import { ErrorShapes } from './http/error-shapes.ts';
import { useJsonBodies } from './http/json-body.ts';
import { problemOf } from './http/problem.ts';
import { useValidators } from './http/validators.ts';
import bookings from './plugins/app/bookings.ts';
import core from './plugins/app/core.ts';
import errorShapes from './plugins/app/error-shapes.ts';
import eventLogs from './plugins/app/event-logs.ts';
import eventStream from './plugins/app/event-stream.ts';
import faults, { type FaultWait } from './plugins/app/faults.ts';
import fluxpay from './plugins/app/fluxpay.ts';
import lifecycle from './plugins/app/lifecycle.ts';
import metrics from './plugins/app/metrics.ts';
import opsRoutes from './plugins/app/ops.ts';
import requestContext, { bindRequestContext, childLoggerWithTraceId, requestIdFrom } from './plugins/app/request-context.ts';
import stores from './plugins/app/stores.ts';
import v2Payments from './plugins/app/v2-payments.ts';
import waitingRooms from './plugins/app/waiting-rooms.ts';
import webhooks from './plugins/app/webhooks.ts';
import { registerSwagger } from './plugins/external/swagger.ts';
import { registerUnderPressure } from './plugins/external/under-pressure.ts';

/**
 * Builds the whole service as one Fastify instance. `server.ts` owns the process (signals,
 * listen, tracing); tests call `buildApp` and use `inject` or listen on a free port.
 * Each API dialect is one plugin, registered with one line below; dialects never import each other.
 */

export interface AppOptions {
  config: Config;
  logger?: Logger | boolean | undefined;
  clock?: Clock | undefined;
  random?: RandomSource | undefined;
  /** Stores to use instead of the configured back end. */
  stores?: Stores | undefined;
  /** Registers @fastify/otel's plugin when tracing is on. */
  otelPlugin?: FastifyPluginAsync | undefined;
  /** How fault rules wait (latency, timeout); tests record the planned delays instead of waiting. */
  faultWait?: FaultWait | undefined;
  /** Told the console's live feed (tests look whether it is subscribed to the bus). */
  onConsoleFeed?: ((feed: LiveFeed) => void) | undefined;
}

export { API_VERSION } from './plugins/external/swagger.ts';

const IGNORE_TRAILING_SLASH = true;

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const shapes = new ErrorShapes();
  const app = Fastify({
    loggerInstance: typeof options.logger === 'object' ? options.logger : undefined,
    logger: typeof options.logger === 'object' ? undefined : (options.logger ?? false),
    bodyLimit: config.bodyLimitBytes,
    genReqId: requestIdFrom,
    childLoggerFactory: childLoggerWithTraceId(options.otelPlugin !== undefined),
    // One line per request, written by the request-context plugin, instead of Fastify's two.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    // The error-shapes plugin answers 503 while closing, in the dialect's shape.
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: IGNORE_TRAILING_SLASH },
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    connectionTimeout: config.http.connectionTimeoutMs,
    // A request without Host reaches the app, which answers a JSON 400 instead of Node's empty one.
    http: { requireHostHeader: false, headersTimeout: config.http.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, config.http.headersTimeoutMs) },
    // Unreadable URLs (bad percent-encoding, over-long parameters) in the shape of the path's dialect.
    frameworkErrors: (error, request, reply) => {
      bindRequestContext(request, reply);
      sendProblem(reply, shapes.forUrl(request.url), problemOf(error, {}));
    },
  } as FastifyServerOptions);

  useValidators(app);
  useJsonBodies(app);
  await app.register(lifecycle);
  if (options.otelPlugin !== undefined) await app.register(options.otelPlugin);
  // Before the error shapes: what they answer carries the request's trace id.
  await app.register(requestContext, { shapes });
  await app.register(errorShapes, { shapes, ignoreTrailingSlash: IGNORE_TRAILING_SLASH });
  await app.register(stores, { config, stores: options.stores });
  await app.register(core, { config, clock: options.clock, random: options.random });
  await app.register(metrics);
  await app.register(faults, { wait: options.faultWait });
  // STORE=redis: deliveries wait in the shared stream, the rate cap is shared, and every event is
  // also appended to the outbound events stream.
  const shared = app.redis === undefined ? undefined : { client: app.redis, keyPrefix: config.redis.keyPrefix };
  await app.register(webhooks, { redis: shared });
  if (shared !== undefined) await app.register(eventStream, shared);
  await app.register(eventLogs);
  await app.register(bookings);
  await app.register(v2Payments);
  await app.register(fluxpay);
  await app.register(waitingRooms);
  await registerUnderPressure(app, config);
  await registerSwagger(app, { publicUrl: config.publicUrl });
  await app.register(opsRoutes);

  await app.register(nativeDialect);
  await app.register(bookingsDialect);
  await app.register(paymentServiceDialect);
  await app.register(paymentServerV2Dialect);
  await app.register(fluxpayDialect);
  // The web console reads and acts through the services above; encapsulated, so its CSP and
  // form parsing stay under /console.
  if (config.console.enabled) await app.register(consolePlugin, { prefix: '/console', token: config.console.token, onFeed: options.onConsoleFeed });
  return app;
}
