import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config.ts';

/**
 * The process's logger. Both formats share every option, redaction included: records are redacted
 * by pino before they are serialised, so what pino-pretty prints has already lost its secrets.
 * - `json` (the default): one JSON line per record on stdout, written in batches.
 * - `pretty` (`LOG_FORMAT=pretty`, for local use): pino-pretty's one-line human-readable records,
 *   written synchronously on the main thread (no worker, nothing to flush at exit).
 */

/** How much JSON log output is gathered before it is written, and how long at most a line waits. */
const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 100;

export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    base: { service: 'paysim' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Nothing that could carry a secret reaches the log, even if a future line logs headers or config.
    redact: {
      // Explicit paths only: pino compiles them into a direct lookup, where wildcards cost a walk of
      // every logged object (a measurable share of each request's time under load).
      paths: ['authorization', 'headers.authorization', 'req.headers.authorization', 'err.headers.authorization', 'webhookSecret', 'config.webhookSecret', 'jwtSecret', 'config.jwtSecret', 'config.v2.webhookSecret', 'config.v2.serviceAuthToken', 'serviceAuthToken', 'password', 'token'],
      censor: '[redacted]',
    },
  };
}

/**
 * pino-pretty's stream: one line per record (`[12:00:00.200] WARN: message key=value…`), colours
 * only on a terminal that supports them; `destination` defaults to stdout.
 */
export function prettyStream(destination?: NodeJS.WritableStream): DestinationStream {
  return pretty({
    sync: true,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'service',
    ...(destination === undefined ? {} : { destination }),
  });
}

export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Logger {
  const destination =
    config.logFormat === 'pretty'
      ? prettyStream()
      : // Lines are written in batches (up to LOG_BUFFER_BYTES, and at least every LOG_FLUSH_MS), not
        // one write per line: one system call per request was a measurable share of its cost. pino
        // flushes what is left when the process exits.
        pino.destination({ dest: 1, minLength: LOG_BUFFER_BYTES, sync: false, periodicFlush: LOG_FLUSH_MS });
  return pino(loggerOptions(config), destination);
}
