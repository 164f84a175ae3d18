import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { startTracing } from './tracing.ts';

/**
 * The process: configuration, logger, tracing, signals and `listen`. Everything else is the app.
 * Exit codes: 0 after a clean shutdown, 1 for a bad configuration or a failed start.
 */

/** How much log output is gathered before it is written, and how long at most a line waits. */
const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 100;

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

const logger = pino({
  level: config.logLevel,
  base: { service: 'paysim' },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
  // Nothing that could carry a secret reaches the log, even if a future line logs headers or config.
  redact: {
    // Explicit paths only: pino compiles them into a direct lookup, where wildcards cost a walk of
    // every logged object (a measurable share of each request's time under load).
    paths: ['authorization', 'headers.authorization', 'req.headers.authorization', 'err.headers.authorization', 'webhookSecret', 'config.webhookSecret', 'jwtSecret', 'config.jwtSecret', 'password', 'token'],
    censor: '[redacted]',
  },
  // Lines are written in batches (up to LOG_BUFFER_BYTES, and at least every LOG_FLUSH_MS), not one
  // write per line: one system call per request was a measurable share of its cost. pino flushes
  // what is left when the process exits.
}, pino.destination({ dest: 1, minLength: LOG_BUFFER_BYTES, sync: false, periodicFlush: LOG_FLUSH_MS }));

const tracing = startTracing(config);
const app = await buildApp({ config, logger, otelPlugin: tracing?.plugin });

if (config.webhookSecretGenerated) {
  // Logged once, on purpose: it is a throwaway secret and receivers need it to verify signatures.
  logger.warn({ generated_webhook_secret: config.webhookSecret }, 'WEBHOOK_SECRET is not set: webhooks are signed with this generated secret; set WEBHOOK_SECRET to a stable value');
}

/** After the drain, requests still in flight get this long to finish before their connections are closed. */
const CLOSE_GRACE_MS = 500;

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
  logger.fatal({ err: error }, 'could not start');
  process.exit(1);
}
