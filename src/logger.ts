import { writeSync } from 'node:fs';
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

/**
 * How much JSON log output is gathered before it is written, and how long at most a line waits.
 * Each write is handed to a thread of libuv's pool, and waking it costs the event loop far more
 * than the bytes do: under load, fewer and larger writes (a 64 KiB pipe buffer's worth).
 */
const LOG_BUFFER_BYTES = 65_536;
const LOG_FLUSH_MS = 100;

let isoTimeMs = Number.NaN;
let isoTimeField = '';

/**
 * pino's `stdTimeFunctions.isoTime` (`,"time":"<ISO 8601>"`, from `Date.now()`), formatted once per
 * millisecond: under load, several lines share a millisecond, and formatting the date was a
 * measurable share of each line's cost.
 */
export function isoTime(): string {
  const now = Date.now();
  if (now !== isoTimeMs) {
    isoTimeMs = now;
    isoTimeField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return isoTimeField;
}

export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    base: { service: 'paysim' },
    timestamp: isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Nothing that could carry a secret reaches the log, even if a future line logs headers or config.
    redact: {
      // Explicit paths only: pino compiles them into a direct lookup, where wildcards cost a walk of
      // every logged object (a measurable share of each request's time under load).
      paths: [
        'authorization',
        'headers.authorization',
        'headers.Authorization',
        'headers.cookie',
        'headers["x-csrf-token"]',
        'req.headers.authorization',
        'req.headers.cookie',
        'request.headers.authorization',
        'request.headers.cookie',
        'err.headers.authorization',
        // ioredis puts the command of an error reply on the error: its arguments are a script's
        // (webhook URLs, bodies) or AUTH's (the password, when Redis refuses it on a reconnect).
        'err.command.args',
        'error.command.args',
        // Node's HTTP parser puts the raw bytes of a request it cannot parse on its error (Fastify
        // logs it at trace): the headers and body, Authorization and Cookie included.
        'err.rawPacket',
        'webhookSecret',
        'config.webhookSecret',
        'config.webhook.previousSecret',
        'jwtSecret',
        'config.jwtSecret',
        'config.v2.webhookSecret',
        'config.v2.serviceAuthToken',
        'config.console.token',
        'config.console.sessionKey',
        'sessionKey',
        'config.redis.url',
        'config.fluxpay.webhookUrl',
        'serviceAuthToken',
        'password',
        'token',
        'body.card.number',
        'body.card.cvv',
        'body.cvv',
      ],
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
  return pino(loggerOptions(config), config.logFormat === 'pretty' ? prettyStream() : batchedStdout());
}

/** sonic-boom as it is at run time: `minLength`, `destroyed` and `_writing` (a write under way) are plain properties its types leave out. */
type SonicBoom = ReturnType<typeof pino.destination> & { fd: number; minLength: number; destroyed?: boolean; _writing?: boolean };

const noop = (): void => undefined;

/**
 * Writes `data` to `fd` at once, as much as it takes: how much was written, and whether the
 * destination is gone (a closed pipe, `EPIPE`, or any other failure but a full pipe's `EAGAIN`).
 */
function writeNow(fd: number, data: Buffer): { written: number; gone: boolean } {
  let written = 0;
  while (written < data.length) {
    try {
      written += writeSync(fd, data, written, data.length - written);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { written, gone: code !== 'EAGAIN' && code !== 'EBUSY' };
    }
  }
  return { written, gone: false };
}

/**
 * JSON lines on stdout, written in batches (about LOG_BUFFER_BYTES, and at least every
 * LOG_FLUSH_MS), not one write per line: one system call per request was a measurable share of
 * its cost. Each line is encoded into a batch buffer as it comes (while it is still in the
 * cache), and full batches are handed to pino's asynchronous destination (sonic-boom in buffer
 * mode, one write in flight), which writes what it is given at once. Gathering them in sonic-boom
 * itself (its `minLength`) measured the byte length of the whole pending batch again for every
 * line, which cost more per line than formatting it; gathering the strings and joining them for
 * each batch cost ~1 µs a line under load (the join, then the string's encoding for the write).
 * Every flush of the destination takes the gathered lines with it: `logger.flush()`, and pino's
 * synchronous flush when the process exits.
 */
export function batchedStdout(out = pino.destination({ dest: 1, minLength: 0, sync: false, contentMode: 'buffer' }) as SonicBoom): DestinationStream {
  /** Room for a full batch and the longest line that can still start one (3 bytes per UTF-16 unit at most). */
  const capacity = 2 * LOG_BUFFER_BYTES;
  const batch = Buffer.allocUnsafe(capacity);
  let used = 0;
  const handOver = (): void => {
    if (used === 0) return;
    // A copy of the bytes used, not the batch: a write queued behind a slow stdout holds its
    // bytes only, and the batch is filled again at once.
    const data = Buffer.allocUnsafe(used);
    batch.copy(data, 0, 0, used);
    used = 0;
    out.write(data as unknown as string);
  };
  const { flush, flushSync } = out;
  out.flush = (cb) => {
    handOver();
    flush.call(out, cb);
  };
  out.flushSync = () => {
    // With no write under way, the batch is written here first: a destination gone (stdout a pipe
    // whose reader closed) is found so, and logging stops, as pino stops it when an asynchronous
    // write finds it. sonic-boom's own flushSync retries such a write for ever, every 100 ms: a
    // process whose pipe closed while it had nothing to write never exited, whatever the signals
    // (a user test: 14 minutes, until SIGKILL).
    if (used > 0 && out._writing !== true && out.fd >= 0) {
      const { written, gone } = writeNow(out.fd, batch.subarray(0, used));
      batch.copy(batch, 0, written, used);
      used -= written;
      if (gone) {
        used = 0;
        out.write = noop as unknown as typeof out.write;
        out.flushSync = noop;
        out.flush = noop as unknown as typeof out.flush;
        out.end = noop as unknown as typeof out.end;
        return;
      }
    }
    // Handed over without starting an asynchronous write (an exiting process would never see it
    // end): sonic-boom's flushSync then writes it with the rest, synchronously.
    const { minLength } = out;
    out.minLength = Number.POSITIVE_INFINITY;
    try {
      handOver();
    } finally {
      out.minLength = minLength;
    }
    flushSync.call(out);
  };
  // Once pino's flush at exit has closed the destination, there is nothing to write to.
  setInterval(() => {
    if (out.destroyed !== true) handOver();
  }, LOG_FLUSH_MS).unref();
  return {
    write(line: string) {
      if (used + 3 * line.length > capacity) {
        handOver();
        // A line longer than a batch goes on its own.
        if (3 * line.length > capacity) {
          out.write(Buffer.from(line, 'utf8') as unknown as string);
          return;
        }
      }
      used += batch.write(line, used, 'utf8');
      if (used >= LOG_BUFFER_BYTES) handOver();
    },
    flush: out.flush,
    flushSync: out.flushSync,
  } as DestinationStream;
}
