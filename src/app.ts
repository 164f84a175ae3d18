import { createServer, type IncomingMessage, type ServerOptions, type ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { LiveFeed } from './console/feed.ts';
import type { Clock } from './core/clock.ts';
import type { Stores } from './core/ports.ts';
import { namespaceSeed, type RandomSource } from './core/random.ts';
import { DEFAULT_NAMESPACE } from './core/faults/service.ts';
import consolePlugin from './console/index.ts';
import bookingsDialect from './dialects/bookings/index.ts';
import fluxpayDialect from './dialects/fluxpay/index.ts';
import nativeDialect from './dialects/native/index.ts';
import paymentServerV2Dialect from './dialects/payment-server-v2/index.ts';
import paymentServiceDialect from './dialects/payment-service/index.ts';
import cors from '@fastify/cors';
import { clientErrorHandler } from './http/client-errors.ts';
import { corsOptions } from './http/cors.ts';
import { sendProblem } from './http/error-handler.ts';
import { ErrorShapes } from './http/error-shapes.ts';
import { coalesceWrites } from './http/coalesced-writes.ts';
import { refuseUnreadableBodies, useJsonBodies } from './http/json-body.ts';
import { problemOf } from './http/problem.ts';
import { useSerializers } from './http/serializers.ts';
import { useValidators } from './http/validators.ts';
import bookings from './plugins/app/bookings.ts';
import core from './plugins/app/core.ts';
import errorShapes from './plugins/app/error-shapes.ts';
import eventLogs from './plugins/app/event-logs.ts';
import eventStream from './plugins/app/event-stream.ts';
import type { FaultWait } from './plugins/app/fault-hooks.ts';
import faults from './plugins/app/faults.ts';
import fluxpay from './plugins/app/fluxpay.ts';
import lifecycle from './plugins/app/lifecycle.ts';
import metrics from './plugins/app/metrics.ts';
import { namespaceKeyPrefix } from './adapters/redis/namespace-list.ts';
import namespacesPlugin, { NAMESPACE_HEADER, type Namespaces } from './plugins/app/namespaces.ts';
import opsRoutes from './plugins/app/ops.ts';
import requestContext, { bindRequestContext, childLoggerWithTraceId, requestIdFrom } from './plugins/app/request-context.ts';
import stores from './plugins/app/stores.ts';
import v2Payments from './plugins/app/v2-payments.ts';
import waitingRooms from './plugins/app/waiting-rooms.ts';
import webhooks from './plugins/app/webhooks.ts';
import { registerSwagger } from './plugins/external/swagger.ts';
import { registerUnderPressure, shedLoadAsRoot } from './plugins/external/under-pressure.ts';
import { lostDuringStart } from './adapters/redis/start-refusals.ts';
import { openRedis } from './adapters/redis/watched-client.ts';
import { checkRateCapClock, checkRedisServer } from './adapters/redis/server-check.ts';

/**
 * Builds the whole service as one Fastify instance. `serve.ts` owns the process (signals,
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
  /**
   * Wraps the root app's stores, whichever back end made them, before any service takes them (the
   * fuzzer counts every store operation that changed something, on memory and on Redis).
   */
  wrapStores?: ((stores: Stores) => Stores) | undefined;
  /** Registers @fastify/otel's plugin when tracing is on. */
  otelPlugin?: FastifyPluginAsync | undefined;
  /** How fault rules wait (latency, timeout); tests record the planned delays instead of waiting. */
  faultWait?: FaultWait | undefined;
  /** Told the console's live feed (tests look whether it is subscribed to the bus). */
  onConsoleFeed?: ((feed: LiveFeed) => void) | undefined;
  /** How often the root app reads the shared list of namespaces (STORE=redis; 1 s by default): tests lengthen it. */
  namespaceSyncMs?: number | undefined;
  /** How often the root app looks for a loss of Redis' data and of its generated values (STORE=redis; 5 s by default): tests shorten it. */
  redisChecksMs?: number | undefined;
  /** Set by the root app when it builds a namespace's app (X-Sim-Namespace); never by callers. */
  namespace?: NamespaceParent | undefined;
}

/** What a namespace's app takes from the root app. */
interface NamespaceParent {
  name: string;
  root: FastifyInstance;
  registry: Namespaces;
  /** STORE=redis: the root's client and health. */
  redis?: { client: Redis; storeUnavailable(): string | undefined; othersMayServe(): boolean } | undefined;
}

export { API_VERSION } from './plugins/external/swagger.ts';

const IGNORE_TRAILING_SLASH = true;

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const parent = options.namespace;
  const config = parent === undefined ? options.config : namespaceConfig(options.config, parent.name);
  const shapes = new ErrorShapes();
  /** The root app's namespace registry, known once it is registered; the server hands namespaced requests to it. */
  let namespaces: Namespaces | undefined;
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
    trustProxy: config.http.trustProxy,
    // A request without Host reaches the app, which answers a JSON 400 instead of Node's empty one.
    http: { requireHostHeader: false, headersTimeout: config.http.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, config.http.headersTimeoutMs) },
    // The root app's server: a request naming a namespace (X-Sim-Namespace) goes to that namespace's app.
    serverFactory: parent === undefined ? namespacedServer(() => namespaces) : undefined,
    // What Node's parser refuses (headers over 16 KiB, a request too slow, bytes that are not HTTP) in the shape of the path's dialect.
    clientErrorHandler: clientErrorHandler(shapes, config.http.corsOrigins),
    // Unreadable URLs (bad percent-encoding, over-long parameters) in the shape of the path's dialect.
    frameworkErrors: (error, request, reply) => {
      bindRequestContext(request, reply);
      sendProblem(reply, shapes.forRefusal(request.url), problemOf(error, {}));
    },
  } as FastifyServerOptions);

  try {
    app.decorate('namespace', parent?.name ?? DEFAULT_NAMESPACE);
    useValidators(app);
    useSerializers(app);
    useJsonBodies(app);
    await app.register(lifecycle);
    if (options.otelPlugin !== undefined) await app.register(options.otelPlugin);
    // Browsers' cross-origin calls, only with CORS_ORIGINS; first, so answers at the door carry its headers too.
    if (config.http.corsOrigins !== undefined) await app.register(cors, corsOptions(config.http.corsOrigins));
    // Before the error shapes: what they answer carries the request's trace id.
    await app.register(requestContext, { shapes });
    app.addHook('onRequest', refuseUnreadableBodies);
    await app.register(errorShapes, { shapes, ignoreTrailingSlash: IGNORE_TRAILING_SLASH });
    // The root's Redis client, opened and waited for here, outside any plugin: a start waits for a
    // Redis loading its data set however long it takes, past Fastify's 10 s for a plugin's start.
    // Closed with the app, after what uses it (hooks run in reverse), and at a start that fails.
    const connection = parent === undefined && options.stores === undefined && config.store.backend === 'redis' ? await openRedis(config.redis, app.log) : undefined;
    if (connection !== undefined) {
      app.addHook('onClose', () => connection.close());
      await checkRedisServer(connection.client, connection.where, app.log);
      if (config.webhook.maxRps > 0) await checkRateCapClock(connection.client, connection.where, app.log);
    }
    await app.register(stores, { config, stores: parent === undefined ? options.stores : undefined, wrap: parent === undefined ? options.wrapStores : undefined, shared: parent?.redis, connection, redisChecksMs: options.redisChecksMs });
    await app.register(core, { config, clock: options.clock, random: parent === undefined ? options.random : undefined });
    if (parent === undefined) {
      const redis = app.redis === undefined ? undefined : { client: app.redis, keyPrefix: config.redis.keyPrefix };
      const shared = app.redis === undefined ? undefined : { client: app.redis, storeUnavailable: () => app.storeUnavailable(), othersMayServe: () => app.othersMayServe() };
      await app.register(namespacesPlugin, {
        max: config.namespaces.max,
        redis,
        syncMs: options.namespaceSyncMs,
        build: (name) => buildApp({ ...options, logger: namespaceLogger(options.logger, name), namespace: { name, root: app, registry: app.namespaces, redis: shared } }),
      });
      namespaces = app.namespaces;
    } else app.decorate('namespaces', parent.registry);
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
    if (parent === undefined) await registerUnderPressure(app, config);
    else shedLoadAsRoot(app, parent.root, config);
    // A namespace's app serves only the dialects' paths: the docs, health and metrics are the root's.
    if (parent === undefined) {
      await registerSwagger(app, { publicUrl: config.publicUrl, namespacesMax: config.namespaces.max });
      await app.register(opsRoutes);
    } else app.decorate('apiDocs', { webhook: () => undefined });

    await app.register(nativeDialect);
    await app.register(bookingsDialect);
    await app.register(paymentServiceDialect);
    await app.register(paymentServerV2Dialect);
    await app.register(fluxpayDialect);
    // Every dialect's routes are known: FAULTS_FILE is checked against them and its rules made, before any onReady hook.
    if (app.faults !== null) await app.faults.loadFile();
    // The web console reads and acts through the services above; encapsulated, so its CSP and
    // form parsing stay under /console.
    if (config.console.enabled && parent === undefined) await app.register(consolePlugin, { prefix: '/console', token: config.console.token, sessionKey: config.console.sessionKey, sessionTtlMs: config.console.sessionTtlMs, maxLoginFailures: config.console.maxLoginFailures, onFeed: options.onConsoleFeed });
    // Added last, so it runs after every other onReady hook (the scheduler's first run among them;
    // each is the root's, added by a fastify-plugin plugin: an encapsulated plugin's would run after
    // this one): the start is over, and an outage of Redis is the service's to report from now on.
    if (connection !== undefined) app.addHook('onReady', async () => connection.started());
  } catch (error) {
    // A start that failed part way: what its plugins set up so far goes with it (their onClose
    // hooks: a namespace's listeners on the shared Redis client, the root's client).
    await app.close().catch(() => undefined);
    throw parent === undefined && config.store.backend === 'redis' ? lostDuringStart(error, config.redis.url) : error;
  }
  return app;
}

/** A namespace's configuration: the root's, with its own random stream and (Redis) its own keys. */
function namespaceConfig(config: Config, name: string): Config {
  return {
    ...config,
    randomSeed: namespaceSeed(config.randomSeed, name),
    redis: { ...config.redis, keyPrefix: namespaceKeyPrefix(config.redis.keyPrefix, name) },
  };
}

/** A namespace's log lines carry its name. */
function namespaceLogger(logger: AppOptions['logger'], name: string): AppOptions['logger'] {
  return typeof logger === 'object' ? logger.child({ namespace: name }) : logger;
}

/**
 * The root app's HTTP server, as Fastify would make it (its timeouts included), whose request
 * listener first offers each request to the namespace registry: only a request with an
 * `X-Sim-Namespace` header costs more than one property read.
 */
function namespacedServer(registry: () => Namespaces | undefined): NonNullable<FastifyServerOptions['serverFactory']> {
  return (handler, options) => {
    const settings = options as FastifyServerOptions & { http?: ServerOptions };
    const listener = (req: IncomingMessage, res: ServerResponse): void => {
      if (req.headers[NAMESPACE_HEADER] === undefined || registry()?.route(req, res, handler) !== true) handler(req, res);
    };
    const server = createServer(settings.http ?? {}, listener);
    // The answers of one event-loop turn are written together at its end (README "Performance").
    coalesceWrites(server);
    if (settings.keepAliveTimeout !== undefined) server.keepAliveTimeout = settings.keepAliveTimeout;
    if (settings.requestTimeout !== undefined) server.requestTimeout = settings.requestTimeout;
    if (settings.connectionTimeout !== undefined) server.setTimeout(settings.connectionTimeout);
    return server;
  };
}
