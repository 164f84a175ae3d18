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
 * How much JSON log output is gathered before it is written, and how long at most a line waits:
 * under load, one batch of lines costs a few system calls where one per line cost a measurable
 * share of each request (see batchedStdout).
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

/** The process's logger; `worker`: a cluster worker's id, on every line (`"worker":2`). */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>, worker?: number): Logger {
  const ofWorker = (logger: Logger): Logger => (worker === undefined ? logger : logger.child({ worker }));
  if (config.logFormat === 'pretty') return ofWorker(pino(loggerOptions(config), prettyStream()));
  nonBlockingStdout();
  const stream = batchedStdout(1, { noteFields: worker === undefined ? '' : `,"worker":${String(worker)}` });
  process.once('exit', () => stream.flushSync());
  return ofWorker(pino(loggerOptions(config), stream));
}

/**
 * Makes stdout's descriptor non-blocking, so that a batch's write never waits on its reader (what
 * a full pipe or terminal did not take is tried again later): opening Node's stdout stream does it
 * for a pipe or a socket (libuv), and a terminal's is set so by its handle (Node keeps a terminal
 * blocking; a review: a terminal that stopped reading, Ctrl-S or a frozen session, blocked the
 * whole service, SIGTERM included). A file's writes do not wait on a reader.
 */
function nonBlockingStdout(): void {
  const stdout = process.stdout as NodeJS.WriteStream & { _handle?: { setBlocking?: (blocking: boolean) => number } };
  if (stdout.isTTY) stdout._handle?.setBlocking?.(false);
}

/** A destination for pino whose lines can be flushed at once (`flush`) or before the process ends (`flushSync`). */
export interface BatchedStream extends DestinationStream {
  /** Queues the lines gathered so far and writes what it can; `callback` once all is written (or the destination is gone). */
  flush(callback?: (error?: Error) => void): void;
  /** Writes everything before it returns, waiting on a full pipe for EXIT_STALL_MS without progress (EXIT_MAX_MS in all) at most. */
  flushSync(): void;
}

/** At most this many bytes of batches wait for a stdout that takes none (a reader that stalls); the lines beyond are dropped and counted. */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** How soon a write that found the pipe full is tried again. */
const FULL_RETRY_MS = 10;
/** At exit: how long a pipe that takes nothing is waited on, and how long the last flush may take in all. */
const EXIT_STALL_MS = 5000;
const EXIT_MAX_MS = 10_000;
/**
 * The most a write holds: POSIX writes at most PIPE_BUF bytes (4,096 on Linux) to a pipe in one
 * piece, so pieces of whole lines no longer than that never interleave with another process's
 * writes to the same pipe (cluster workers share the primary's stdout: a review saw lines of two
 * workers spliced where one's 64 KiB write was cut short by a full pipe). A longer line goes whole,
 * on its own.
 */
const WRITE_BYTES = 4096;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export interface BatchedOptions {
  /** Where the exit flush says what it could not write (stderr). */
  errorFd?: number;
  /** JSON fields the dropped-lines note carries besides pino's (`,"worker":2`). */
  noteFields?: string;
  /** The system call (tests watch it). */
  write?: (fd: number, buffer: Buffer, offset: number, length: number) => number;
}

/**
 * JSON lines on `fd` (stdout), written in batches (about LOG_BUFFER_BYTES, and at least every
 * LOG_FLUSH_MS), not one write per line: one system call per request was a measurable share of
 * its cost. Each line is encoded into a batch buffer as it comes (while it is still in the cache);
 * a full batch is queued and written at once, synchronously, on the main thread: a pipe's
 * descriptor is non-blocking (see nonBlockingStdout), so a write takes what the pipe has room for and
 * never waits. What a full pipe did not take waits in the queue, in order, and is tried again every
 * FULL_RETRY_MS; for a reader that stalls for good the queue holds MAX_QUEUED_BYTES at most, and
 * the lines beyond are dropped and counted in a line of their own once stdout takes lines again.
 * A destination gone (a pipe whose reader closed, `EPIPE`) stops logging, as pino does.
 *
 * Until 2026-12-07 the batches went to pino's sonic-boom, whose writes run on libuv's pool: a
 * write still under way when the process exited was lost with its lines (a review: 14–80 of 1,000
 * lines of a burst to a slow reader), its flush at exit retried a closed pipe for ever (a process
 * whose reader stalled and then died never exited), and a stalled reader's lines waited without
 * bound.
 */

export function batchedStdout(fd = 1, { errorFd = 2, noteFields = '', write = writeSync }: BatchedOptions = {}): BatchedStream {
  /** Room for a full batch and the longest line that can still start one (3 bytes per UTF-16 unit at most). */
  const capacity = 2 * LOG_BUFFER_BYTES;
  const batch = Buffer.allocUnsafe(capacity);
  let used = 0;
  let batchLines = 0;
  const queue: Buffer[] = [];
  /** Bytes of `queue[0]` already written. */
  let headWritten = 0;
  /** Bytes queued and not written yet. */
  let queuedBytes = 0;
  let droppedLines = 0;
  let gone = false;
  let retry: NodeJS.Timeout | undefined;
  const flushed: Array<(error?: Error) => void> = [];

  const push = (data: Buffer): void => {
    queue.push(data);
    queuedBytes += data.length;
  };
  /** Queues the line that says how many lines were dropped, where they are missing (none when none were). */
  const noteDropped = (): void => {
    if (droppedLines === 0) return;
    push(droppedNote(droppedLines, noteFields));
    droppedLines = 0;
  };
  const enqueue = (data: Buffer, lines: number): void => {
    // Once lines are dropped, until half the queue is written: not every other batch as room comes and goes.
    if (droppedLines > 0 ? queuedBytes > MAX_QUEUED_BYTES / 2 : queuedBytes + data.length > MAX_QUEUED_BYTES) {
      droppedLines += lines;
      return;
    }
    noteDropped();
    push(data);
  };
  const handOver = (): void => {
    if (used === 0) return;
    // A copy of the bytes used: the batch is filled again at once.
    enqueue(Buffer.from(batch.subarray(0, used)), batchLines);
    used = 0;
    batchLines = 0;
  };
  const stop = (): void => {
    gone = true;
    used = 0;
    queue.length = 0;
    queuedBytes = 0;
    droppedLines = 0;
  };
  /** Writes what is queued, as far as `fd` takes it now: `full` when a write found no room. */
  const writeQueued = (): 'done' | 'full' => {
    for (;;) {
      if (queue.length === 0) {
        if (droppedLines === 0) return 'done';
        noteDropped();
      }
      const head = queue[0]!;
      let end = head.length;
      if (end - headWritten > WRITE_BYTES) {
        // The whole lines that fit in one piece, or the one line longer than that, whole.
        const lastNewline = head.lastIndexOf(0x0a, headWritten + WRITE_BYTES - 1);
        end = lastNewline >= headWritten ? lastNewline + 1 : head.indexOf(0x0a, headWritten) + 1 || head.length;
      }
      try {
        const n = write(fd, head, headWritten, end - headWritten);
        // Nothing taken without an error (no descriptor paysim writes to does so): as if full, retried later.
        if (n === 0) return 'full';
        headWritten += n;
        queuedBytes -= n;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EBUSY') return 'full';
        stop();
        return 'done';
      }
      if (headWritten === head.length) {
        queue.shift();
        headWritten = 0;
      }
    }
  };
  const pump = (): void => {
    retry = undefined;
    if (!gone && writeQueued() === 'full') {
      retry = setTimeout(pump, FULL_RETRY_MS);
      retry.unref();
      return;
    }
    for (const callback of flushed.splice(0)) callback();
  };
  const send = (): void => {
    handOver();
    // While a retry is pending, the queue waits for it (in order).
    if (retry === undefined) pump();
  };
  setInterval(() => {
    if (used > 0) send();
  }, LOG_FLUSH_MS).unref();

  return {
    write(line: string) {
      if (gone) return;
      if (used + 3 * line.length > capacity) {
        handOver();
        // A line longer than a batch goes on its own.
        if (3 * line.length > capacity) {
          enqueue(Buffer.from(line, 'utf8'), 1);
          send();
          return;
        }
      }
      used += batch.write(line, used, 'utf8');
      batchLines += 1;
      if (used >= LOG_BUFFER_BYTES) send();
    },
    flush(callback) {
      if (callback !== undefined) flushed.push(callback);
      send();
    },
    flushSync() {
      if (retry !== undefined) clearTimeout(retry);
      retry = undefined;
      handOver();
      const started = Date.now();
      let progressAt = started;
      let left = queuedBytes;
      while (!gone && writeQueued() === 'full') {
        const now = Date.now();
        if (queuedBytes < left) {
          left = queuedBytes;
          progressAt = now;
        }
        if (now - progressAt >= EXIT_STALL_MS || now - started >= EXIT_MAX_MS) {
          const why = now - progressAt >= EXIT_STALL_MS ? `stdout took none for ${now - progressAt} ms` : `stdout took them too slowly to end within ${EXIT_MAX_MS} ms`;
          tellStderr(errorFd, `paysim: ${queuedBytes} bytes of log lines were not written at exit: ${why}\n`);
          stop();
          break;
        }
        Atomics.wait(sleeper, 0, 0, FULL_RETRY_MS);
      }
      for (const callback of flushed.splice(0)) callback();
    },
  };
}

/** The line that says how many lines a stalled stdout made the logger drop, as pino would write it. */
function droppedNote(lines: number, fields: string): Buffer {
  return Buffer.from(
    `{"level":"warn"${isoTime()},"service":"paysim"${fields},"dropped_log_lines":${lines},"msg":"log lines dropped: stdout took none while ${MAX_QUEUED_BYTES / 1_048_576} MiB of them waited"}\n`,
  );
}

/** One line on stderr (`fd`) if it takes it at once, nothing if not (it may be the same stalled pipe). */
function tellStderr(fd: number, text: string): void {
  try {
    writeSync(fd, text);
  } catch {
    // Nowhere else to say it.
  }
}
