// First: an older Node.js is told on one line before any module that needs a newer one loads.
import './node-version.ts';
import cluster from 'node:cluster';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.ts';

/**
 * The process: configuration, logger, tracing, signals and `listen`. Everything else is the app.
 * Exit codes: 0 after a clean shutdown, 1 for a bad configuration or a failed start; either of
 * those is told on one stderr line. With CLUSTER_WORKERS > 1 this process is the primary of that
 * many workers (src/cluster.ts), each of which runs `serve`.
 */

/** After the drain, requests still in flight get this long to finish before their connections are closed. */
const CLOSE_GRACE_MS = 500;
/** How long a start whose listen failed waits for its app to close before it exits. */
const START_FAILED_CLOSE_MS = 2000;

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

// The rest of the service is loaded once the configuration is known to be good: a bad one is told
// without reading the whole tree first (at load 6 on this 2-core VM a bad TIME_SCALE took 5.6 s to
// be told before 2026-12-04, most of it loading the app, the tracing and the Redis client).
const [
  { default: closeWithGrace },
  { generatedKey },
  { buildApp },
  { runPrimary },
  { createLogger },
  { QUIESCE_WAIT_MS },
  { lostDuringStart, RedisUnreachableError },
  { describeStartError, StartProblem },
  { sameStopMessage, STOP_SIGNALS, watchStopSignals },
  { startTracing },
] = await Promise.all([
    import('close-with-grace'),
    import('./adapters/redis/generated.ts'),
    import('./app.ts'),
    import('./cluster.ts'),
    import('./logger.ts'),
    import('./plugins/app/core.ts'),
    import('./plugins/app/stores.ts'),
    import('./start-error.ts'),
    import('./stop-signals.ts'),
    import('./tracing.ts'),
  ]);

// A worker's lines say which worker wrote them (the primary's lines say what happened to workers).
const logger = createLogger(config, cluster.isWorker ? cluster.worker?.id : undefined);

if (config.clusterWorkers > 1 && cluster.isPrimary) runPrimary(config.clusterWorkers, logger);
else {
  // node:cluster ends a worker whose primary is gone (killed) at once, in its own 'disconnect'
  // listener: said first, so that it is not silent (a user test: the workers vanished without a line).
  if (cluster.isWorker) {
    process.prependOnceListener('disconnect', () => {
      if (cluster.worker?.exitedAfterDisconnect !== true) logger.warn('the primary is gone: this worker exits now, without a drain (its pending work waits on Redis for the next start or another replica)');
    });
  }
  await serve(config, logger);
}

/** One process serving the whole app: build it, handle signals, listen. */
async function serve(config: Config, logger: Logger): Promise<void> {
  const tracing = startTracing(config);
  let app: FastifyInstance;
  try {
    app = await buildApp({ config, logger, otelPlugin: tracing?.plugin });
  } catch (error) {
    if (!(error instanceof RedisUnreachableError || error instanceof StartProblem)) throw error;
    process.stderr.write(`Could not start: ${error.message}\n`);
    process.exit(1);
  }

  if (config.webhookSecretGenerated) {
    // Logged on purpose: it is a throwaway secret and receivers need it to verify signatures. On
    // Redis it is the one every replica and worker of the key prefix shares (each says so).
    const shared = config.store.backend === 'redis' ? ` (kept on Redis under ${generatedKey(config.redis.keyPrefix, 'webhook-secret')}, shared by every process on that prefix)` : '';
    logger.warn({ generated_webhook_secret: config.webhookSecret }, `WEBHOOK_SECRET is not set: webhooks are signed with this generated secret${shared}; set WEBHOOK_SECRET to a stable value`);
  }

  // The stop signals are told here (src/stop-signals.ts: a process group's signal, reaching this
  // process twice, is one stop), close-with-grace's own handling of them skipped; it still runs
  // the close after an uncaught error, and bounds it.
  let stopSignal: string | undefined;
  /** The close has begun (a stop signal, or an uncaught error): a stop signal now is a second one. */
  let closeBegun = false;
  // The delay before the drain, the drain's budget, the requests' grace, the scheduler's last run at the close (at most QUIESCE_WAIT_MS), and a second for the rest of the close.
  const grace = closeWithGrace({ delay: config.shutdownDelayMs + config.shutdownTimeoutMs + CLOSE_GRACE_MS + QUIESCE_WAIT_MS + 1000, logger, skip: [...STOP_SIGNALS] }, async ({ err }) => {
    closeBegun = true;
    const signal = stopSignal;
    if (err !== undefined) logger.error({ err }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down');
    // Behind a load balancer: not ready, still serving, until its checks have taken this replica out
    // (before 2026-12-04 a stop that handed its work off ended before HAProxy's checks noticed, and
    // requests it sent meanwhile met the close: a 503 SHUTTING_DOWN or a reset connection). Not after an error.
    if (err === undefined && config.shutdownDelayMs > 0) {
      logger.info({ shutdown_delay_ms: config.shutdownDelayMs }, 'shutting down: /readyz answers 503 for SHUTDOWN_DELAY_MS while requests are served as usual, then the drain begins');
      await app.lifecycle.leave(config.shutdownDelayMs);
    }
    await app.lifecycle.drain(config.shutdownTimeoutMs);
    // Idle keep-alive connections go at once; a connection that never completed its request (or a
    // request still running) gets a short grace, then is closed, so it cannot hold the exit.
    const closing = app.close();
    app.server.closeIdleConnections();
    const force = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
    force.unref();
    await closing;
    clearTimeout(force);
    // The connections the force destroyed close in the event loop's close phase, after this: two turns
    // let their responses' close run, so a request still held gets its line (rev74d: none was logged).
    for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
    await tracing?.shutdown();
    logger.info('shutdown complete');
  });
  watchStopSignals((signal, kind) => {
    if (kind === 'first' && !closeBegun) {
      stopSignal = signal;
      void grace.close();
    } else if (kind === 'same') {
      logger.info({ signal }, sameStopMessage(signal));
    } else {
      // As at any point of the shutdown: pending work is left as a kill leaves it. A first signal
      // during the close after an uncaught error is no second one, but ends it the same way.
      logger.error({ signal }, kind === 'first' ? `${signal} during the close after an error, exiting` : `second ${signal}, exiting`);
      process.exit(1);
    }
  });

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    // Port taken, HOST not an address here, no permission: the operator's to fix, told like a bad
    // configuration (one line on stderr), not as a fatal log record with a stack.
    process.stderr.write(`${describeStartError(config.store.backend === 'redis' ? lostDuringStart(error, config.redis.url) : error, config)}\n`);
    // What the ready app set up goes (with Redis: its mark of life, which the other replicas would
    // otherwise count as alive for seconds), within a bound.
    await Promise.race([app.close().catch(() => undefined), delay(START_FAILED_CLOSE_MS, undefined, { ref: false })]);
    process.exit(1);
  }
}
