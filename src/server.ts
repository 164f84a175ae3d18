import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { startTracing } from './tracing.ts';

/**
 * The process: configuration, logger, tracing, signals and `listen`. Everything else is the app.
 * Exit codes: 0 after a clean shutdown, 1 for a bad configuration or a failed start.
 */

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
});

const tracing = startTracing(config);
const app = await buildApp({ config, logger, otelPlugin: tracing?.plugin });

if (config.webhookSecretGenerated) {
  // Logged once, on purpose: it is a throwaway secret and receivers need it to verify signatures.
  logger.warn({ generated_webhook_secret: config.webhookSecret }, 'WEBHOOK_SECRET is not set: webhooks are signed with this generated secret; set WEBHOOK_SECRET to a stable value');
}

closeWithGrace({ delay: config.shutdownTimeoutMs + 1000, logger }, async ({ signal, err }) => {
  if (err !== undefined) logger.error({ err }, 'shutting down after an error');
  else logger.info({ signal }, 'shutting down');
  await app.lifecycle.drain(config.shutdownTimeoutMs);
  await app.close();
  await tracing?.shutdown();
  logger.info('shutdown complete');
});

try {
  await app.listen({ port: config.port, host: config.host });
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  process.exit(1);
}
