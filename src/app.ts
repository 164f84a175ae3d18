import Fastify, {
  LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Clock } from './core/clock.ts';
import type { RandomSource } from './core/random.ts';
import bookings from './plugins/app/bookings.ts';
import core from './plugins/app/core.ts';
import lifecycle from './plugins/app/lifecycle.ts';
import metrics from './plugins/app/metrics.ts';
import webhooks from './plugins/app/webhooks.ts';
import requestContext, { childLoggerWithTraceId, requestIdFrom } from './plugins/app/request-context.ts';
import bookingsRoutes from './routes/bookings.ts';
import opsRoutes from './routes/ops.ts';
import paymentServiceRoutes from './routes/payment-service.ts';
import simRoutes, { sendSimError } from './routes/sim.ts';

/**
 * Builds the whole service as one Fastify instance. `server.ts` owns the process (signals,
 * listen, tracing); tests call `buildApp` and use `inject` or listen on a free port.
 */

export interface AppOptions {
  config: Config;
  logger?: Logger | boolean | undefined;
  clock?: Clock | undefined;
  random?: RandomSource | undefined;
  /** Registers @fastify/otel's plugin when tracing is on. */
  otelPlugin?: FastifyPluginAsync | undefined;
}

export const API_VERSION = '1.0.0';

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const app = Fastify({
    loggerInstance: typeof options.logger === 'object' ? options.logger : undefined,
    logger: typeof options.logger === 'object' ? undefined : (options.logger ?? false),
    bodyLimit: config.bodyLimitBytes,
    genReqId: requestIdFrom,
    childLoggerFactory: childLoggerWithTraceId(options.otelPlugin !== undefined),
    // One line per request, written by the request-context plugin, instead of Fastify's two.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true },
  } as FastifyServerOptions);

  setValidators(app);
  await app.register(lifecycle);

  if (options.otelPlugin !== undefined) await app.register(options.otelPlugin);
  await app.register(core, { config, clock: options.clock, random: options.random });
  await app.register(requestContext);
  await app.register(metrics);
  await app.register(webhooks);
  await app.register(bookings);
  await app.register(underPressure, {
    maxEventLoopDelay: config.overload.maxEventLoopDelayMs,
    maxHeapUsedBytes: config.overload.maxHeapUsedBytes,
    maxRssBytes: config.overload.maxRssBytes,
    retryAfter: config.overload.retryAfterS,
    pressureHandler: (_request, reply, type) => {
      reply.header('retry-after', String(config.overload.retryAfterS));
      sendSimError(reply, 503, 'OVERLOADED', `The simulator is overloaded (${type}); retry after ${config.overload.retryAfterS} s.`);
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'paysim',
        version: API_VERSION,
        description: 'A payment simulator: payment intents decided by scenario or card data, signed webhooks with retries.',
      },
      tags: [
        { name: 'intents', description: 'The native payment-intent API (/v1/sim)' },
        { name: 'webhooks', description: 'Webhook deliveries: log, replay, test sends, disabled URLs' },
        { name: 'operations', description: 'Health, readiness and metrics' },
        { name: 'bookings', description: 'The bookings API (document 003): seat holds, card payments, the events inbox and the ledger; every route needs x-user-id' },
        { name: 'payment-service', description: 'The ticketing payment-service API (document 004): /api/v1/payments/* behind a JWT, and /health' },
      ],
    },
  });
  // Swagger UI at the root: opening the simulator's address in a browser shows its API.
  await app.register(swaggerUi, { routePrefix: '/' });
  app.get('/docs', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/'));

  await app.register(opsRoutes);
  await app.register(simRoutes, { prefix: '/v1/sim' });
  await app.register(bookingsRoutes);
  await app.register(paymentServiceRoutes);

  app.setNotFoundHandler((request, reply) => sendSimError(reply, 404, 'NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}.`));
  return app;
}

/**
 * Bodies are validated strictly (no type coercion: `"amount": "100"` is a 400), while query
 * strings, params and headers, which are always strings on the wire, are coerced.
 */
function setValidators(app: FastifyInstance): void {
  const shared = { allErrors: true, useDefaults: true, removeAdditional: false, strict: false } as const;
  const strict = addFormats.default(new Ajv({ ...shared, coerceTypes: false }));
  const coercing = addFormats.default(new Ajv({ ...shared, coerceTypes: 'array' }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
}
