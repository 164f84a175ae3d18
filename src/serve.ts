import { setTimeout as delay } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { generatedKey } from './adapters/redis/generated.ts';
import { buildApp } from './app.ts';
import type { Config } from './config.ts';
import { QUIESCE_WAIT_MS } from './plugins/app/core.ts';
import { lostDuringStart, RedisUnreachableError } from './plugins/app/stores.ts';
import { describeStartError, StartProblem } from './start-error.ts';
import { sameStopMessage, STOP_SIGNALS, watchStopSignals } from './stop-signals.ts';
import { startTracing } from './tracing.ts';

/**
 * A process that serves: a single one, or a worker of CLUSTER_WORKERS (src/server.ts loads this
 * module in those only, never in a cluster's primary). Tracing, the app, signals and `listen`.
 */

/** After the drain, requests still in flight get this long to finish before their connections are closed. */
const CLOSE_GRACE_MS = 500;
/** How long a start whose listen failed waits for its app to close before it exits. */
const START_FAILED_CLOSE_MS = 2000;

/** One process serving the whole app: build it, handle signals, listen. */
export async function serve(config: Config, logger: Logger): Promise<void> {
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
