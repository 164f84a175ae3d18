import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.ts';
import { randomBytes } from 'node:crypto';
import { CONSOLE_SESSION_KEY, GENERATED_SECRET_MARK, runPrimary } from './cluster.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './logger.ts';
import { RedisUnreachableError } from './plugins/app/stores.ts';
import { describeStartError } from './start-error.ts';
import { startTracing } from './tracing.ts';

/**
 * The process: configuration, logger, tracing, signals and `listen`. Everything else is the app.
 * Exit codes: 0 after a clean shutdown, 1 for a bad configuration or a failed start; either of
 * those is told on one stderr line. With CLUSTER_WORKERS > 1 this process is the primary of that
 * many workers (src/cluster.ts), each of which runs `serve`.
 */

/** After the drain, requests still in flight get this long to finish before their connections are closed. */
const CLOSE_GRACE_MS = 500;

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

// A worker's lines say which worker wrote them (the primary's lines say what happened to workers).
const logger = cluster.isWorker && cluster.worker !== undefined ? createLogger(config).child({ worker: cluster.worker.id }) : createLogger(config);

// A worker of a primary that generated the webhook secret: the secret it got as WEBHOOK_SECRET is still a generated one.
if (cluster.isWorker && process.env[GENERATED_SECRET_MARK] === '1') config = { ...config, webhookSecretGenerated: true };
// A worker's console sessions are signed with its primary's key (without CONSOLE_TOKEN).
const sessionKey = cluster.isWorker ? process.env[CONSOLE_SESSION_KEY] : undefined;
if (sessionKey !== undefined && sessionKey !== '') config = { ...config, console: { ...config.console, sessionKey } };

if (config.clusterWorkers > 1 && cluster.isPrimary) {
  warnOfGeneratedSecret(config, logger);
  // One generated secret for all the workers: each would draw its own, and a receiver would get webhooks signed with either.
  // The mark is always set, so that a value inherited from the primary's own environment never counts.
  runPrimary(config.clusterWorkers, logger, {
    ...(config.webhookSecretGenerated ? { WEBHOOK_SECRET: config.webhookSecret, [GENERATED_SECRET_MARK]: '1' } : { [GENERATED_SECRET_MARK]: '0' }),
    // One key for the console sessions of every worker: a session (and its CSRF token) one issued is good on the others.
    [CONSOLE_SESSION_KEY]: config.console.token === undefined ? randomBytes(32).toString('base64') : '',
  });
} else await serve(config, logger);

/** Says once per service (by the primary of workers) that the webhook secret was generated, and what it is. */
function warnOfGeneratedSecret(config: Config, logger: Logger): void {
  // Logged on purpose: it is a throwaway secret and receivers need it to verify signatures.
  if (config.webhookSecretGenerated) logger.warn({ generated_webhook_secret: config.webhookSecret }, 'WEBHOOK_SECRET is not set: webhooks are signed with this generated secret; set WEBHOOK_SECRET to a stable value');
}

/** One process serving the whole app: build it, handle signals, listen. */
async function serve(config: Config, logger: Logger): Promise<void> {
  const tracing = startTracing(config);
  let app: FastifyInstance;
  try {
    app = await buildApp({ config, logger, otelPlugin: tracing?.plugin });
  } catch (error) {
    if (!(error instanceof RedisUnreachableError)) throw error;
    process.stderr.write(`Could not start: ${error.message}\n`);
    process.exit(1);
  }

  if (!cluster.isWorker) warnOfGeneratedSecret(config, logger);

  closeWithGrace({ delay: config.shutdownTimeoutMs + CLOSE_GRACE_MS + 1000, logger }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down');
    await app.lifecycle.drain(config.shutdownTimeoutMs);
    // Idle keep-alive connections go at once; a connection that never completed its request (or a
    // request still running) gets a short grace, then is closed, so it cannot hold the exit.
    const closing = app.close();
    app.server.closeIdleConnections();
    const force = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
    force.unref();
    await closing;
    clearTimeout(force);
    await tracing?.shutdown();
    logger.info('shutdown complete');
  });

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    // Port taken, HOST not an address here, no permission: the operator's to fix, told like a bad
    // configuration (one line on stderr), not as a fatal log record with a stack.
    process.stderr.write(`${describeStartError(error, config)}\n`);
    process.exit(1);
  }
}
