import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { stripVTControlCharacters } from 'node:util';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { batchedStdout, loggerOptions, MAX_QUEUED_BYTES, prettyStream } from '../../src/logger.ts';

/** Both log formats share the options, redaction included; `pretty` writes human-readable lines. */

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  // Colours appear only where the runner's environment asks for them (FORCE_COLOR); the text is what counts.
  return { stream, text: () => stripVTControlCharacters(text) };
}

const SECRETS = { authorization: 'Bearer s3cr3t-token', headers: { authorization: 'Bearer s3cr3t-token' }, webhookSecret: 'whsec_s3cr3t', jwtSecret: 's3cr3t-jwt', password: 's3cr3t-pw', token: 's3cr3t-tok' };

describe('LOG_FORMAT=pretty', () => {
  it('one human-readable line per record: time, level, message, then the fields', () => {
    const out = capture();
    const logger = pino(loggerOptions({ logLevel: 'debug' }), prettyStream(out.stream));
    logger.warn({ delivery_id: 'whd_1', url: 'http://127.0.0.1:3000/hook', attempt: 2, reason: 'HTTP 503' }, 'webhook attempt failed; retry scheduled');
    logger.debug('payment intent decided');
    const lines = out.text().split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] WARN: webhook attempt failed; retry scheduled \{.*"delivery_id":"whd_1".*"attempt":2.*\}$/);
    expect(lines[1]).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] DEBUG: payment intent decided$/);
    expect(() => JSON.parse(lines[0] as string)).toThrow();
    // `service` is the same on every line: left out.
    expect(out.text()).not.toContain('paysim');
  });

  it.each(['pretty', 'json'])('%s: secrets are redacted', (format) => {
    const out = capture();
    const logger = pino(loggerOptions({ logLevel: 'info' }), format === 'pretty' ? prettyStream(out.stream) : out.stream);
    logger.info(SECRETS, 'with secrets');
    logger.info({ config: { webhookSecret: 'whsec_s3cr3t', jwtSecret: 's3cr3t-jwt' }, req: { headers: { authorization: 'Bearer s3cr3t-token' } } }, 'nested');
    expect(out.text()).toContain('with secrets');
    expect(out.text()).toContain('[redacted]');
    expect(out.text()).not.toContain('s3cr3t');
  });

  it.each(['pretty', 'json'])('%s: what errors carry is redacted too: the arguments of a Redis command (AUTH on a reconnect), the raw bytes of a request Node could not parse', (format) => {
    const out = capture();
    const logger = pino(loggerOptions({ logLevel: 'trace' }), format === 'pretty' ? prettyStream(out.stream) : out.stream);
    // As ioredis makes it when Redis refuses the password on a reconnect.
    const refused = Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), { command: { name: 'hello', args: ['3', 'AUTH', 'default', 's3cr3t-redis-pw'] } });
    logger.warn({ err: refused }, 'Redis is unreachable');
    // As Node's HTTP parser makes it for a request it cannot parse (Fastify logs it at trace).
    const packet = Buffer.from('POST /v1/sim/intent HTTP/1.1\r\nAuthorization: Bearer s3cr3t-token\r\nCookie: paysim_console=s3cr3t-session\r\nBad Header: x\r\n\r\n{"card":{"number":"4242424242424242","cvv":"123"}}');
    logger.trace({ err: Object.assign(new Error('Parse Error: Invalid header value char'), { rawPacket: packet }) }, 'client error');
    logger.info({ headers: { cookie: 'paysim_console=s3cr3t-session', 'x-csrf-token': 's3cr3t-csrf' }, body: { card: { number: '4242424242424242', cvv: '123' } } }, 'a request as a future line might log it');
    logger.info({ config: { console: { token: 's3cr3t-console', sessionKey: 's3cr3t-session-key' }, redis: { url: 'redis://:s3cr3t-redis-pw@127.0.0.1:6379' }, webhook: { previousSecret: 'whsec_s3cr3t-old' } } }, 'config');
    const text = out.text();
    expect(text).toContain('WRONGPASS');
    expect(text).toContain('Parse Error');
    expect(text).not.toContain('s3cr3t');
    expect(text).not.toContain('4242424242424242');
    // The packet is not there in any form (pino writes a Buffer as its bytes).
    expect(text).not.toContain(JSON.stringify([...packet.subarray(0, 8)]).slice(1, -1));
  });
});

describe('LOG_FORMAT=json: lines gathered in batches', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  /** `batchedStdout` on a file's descriptor, and the file's text. */
  function batchedToFile() {
    const dir = mkdtempSync(join(tmpdir(), 'paysim-log-'));
    const path = join(dir, 'out.log');
    const fd = openSync(path, 'a');
    cleanups.push(() => {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    });
    return { stream: batchedStdout(fd), text: () => readFileSync(path, 'utf8') };
  }

  /** Waits until the file holds `bytes` bytes (the destination's writes run on libuv's pool). */
  async function written(text: () => string, bytes: number): Promise<string> {
    const deadline = Date.now() + 5000;
    while (Buffer.byteLength(text()) < bytes && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return text();
  }

  it('writes every line, in order and byte for byte (UTF-8, a line longer than a batch, batch boundaries)', async () => {
    const { stream, text } = batchedToFile();
    const lines = [
      ...Array.from({ length: 600 }, (_, i) => `{"n":${i},"text":"café 💳 ${'x'.repeat(i % 300)}"}\n`),
      `{"long":"${'é'.repeat(70_000)}"}\n`,
      '{"last":true}\n',
    ];
    for (const line of lines) stream.write(line);
    // The last line is still in the batch: flush hands it over.
    stream.flush();
    const expected = lines.join('');
    expect(await written(text, Buffer.byteLength(expected))).toBe(expected);
  });

  it('flushSync writes the lines still in the batch before it returns (pino calls it when the process exits)', async () => {
    const { stream, text } = batchedToFile();
    // Less than a batch: nothing has been handed over, so no write is on its way.
    stream.write('{"first":"ünïcode"}\n');
    stream.write('{"second":2}\n');
    expect(text()).toBe('');
    stream.flushSync();
    expect(text()).toBe('{"first":"ünïcode"}\n{"second":2}\n');
  });

  it('a line waits at most LOG_FLUSH_MS (100 ms) when no batch fills up', async () => {
    const { stream, text } = batchedToFile();
    stream.write('{"alone":true}\n');
    expect(text()).toBe('');
    // Polled for (5 s at most; a fixed 400 ms before 2026-12-06, which a stall could outlast before the write landed: a review): without the timer's flush nothing comes.
    expect(await written(text, Buffer.byteLength('{"alone":true}\n'))).toBe('{"alone":true}\n');
  });
});

describe('LOG_FORMAT=json: a reader that is slow, stalls or goes away', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  /**
   * `cat` reading a non-blocking pipe (as stdout is once Node opens its stream) into a file, after
   * `startAfterMs`: the destination writes to the pipe's descriptor, the test stops and resumes the
   * reader with SIGSTOP and SIGCONT.
   */
  function catReader(startAfterMs = 0) {
    const dir = mkdtempSync(join(tmpdir(), 'paysim-log-'));
    const path = join(dir, 'out.log');
    const out = openSync(path, 'w');
    const child = spawn('sh', ['-c', `sleep ${startAfterMs / 1000}; exec cat`], { stdio: ['pipe', out, 'ignore'] });
    closeSync(out);
    const stdin = child.stdin;
    if (stdin === null) throw new Error('cat has no stdin');
    const fd = (stdin as unknown as { _handle: { fd: number } })._handle.fd;
    const errors = join(dir, 'err.log');
    const errorFd = openSync(errors, 'w');
    cleanups.push(() => {
      child.kill('SIGKILL');
      closeSync(errorFd);
      rmSync(dir, { recursive: true, force: true });
    });
    return {
      child,
      stream: batchedStdout(fd, { errorFd }),
      text: () => readFileSync(path, 'utf8'),
      errors: () => readFileSync(errors, 'utf8'),
      /** Closes the pipe and waits for `cat` to have written everything. */
      async end() {
        const exited = once(child, 'exit');
        stdin.destroy();
        await exited;
      },
    };
  }

  const numbered = (count: number, size: number) => Array.from({ length: count }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(size - 20 - String(i).length)}"}\n`);

  async function until(check: () => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!check() && Date.now() < deadline) await delay(10);
  }

  it('a full pipe: the lines wait and are written, in order and whole, once the reader reads again (before 2026-12-07, in sonic-boom, without bound)', async () => {
    const reader = catReader();
    reader.child.kill('SIGSTOP');
    const lines = numbered(8000, 300);
    for (const line of lines) reader.stream.write(line);
    reader.stream.flush();
    await delay(100);
    // The pipe took what it had room for, no more: the rest waits.
    expect(Buffer.byteLength(reader.text())).toBeLessThan(Buffer.byteLength(lines.join('')));
    reader.child.kill('SIGCONT');
    const expected = lines.join('');
    await until(() => reader.text().length === expected.length);
    expect(reader.text()).toBe(expected);
  });

  it(`a reader that stalls for good: ${MAX_QUEUED_BYTES} bytes wait at most; the lines beyond are dropped, and a line says how many where they are missing`, async () => {
    const reader = catReader();
    reader.child.kill('SIGSTOP');
    const lines = numbered(20_000, 1000);
    for (const line of lines) reader.stream.write(line);
    reader.stream.flush();
    reader.child.kill('SIGCONT');
    // Once the queue is written, the note comes; lines after it are written again.
    await until(() => reader.text().includes('"dropped_log_lines"'));
    reader.stream.write('{"after":true}\n');
    reader.stream.flush();
    await until(() => reader.text().endsWith('{"after":true}\n'));
    const written = reader.text().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    const kept = written.findIndex((line) => line.n === undefined);
    // Every line up to the bound, in order, then the note, then what came after.
    expect(written.slice(0, kept).map((line) => line.n)).toEqual(lines.slice(0, kept).map((_, i) => i));
    expect(kept * 1000).toBeGreaterThan(MAX_QUEUED_BYTES - 2 * 65_536);
    expect(written.slice(kept)).toEqual([
      { level: 'warn', time: expect.any(String), service: 'paysim', dropped_log_lines: 20_000 - kept, msg: 'log lines dropped: stdout took none while 16 MiB of them waited' },
      { after: true },
    ]);
  });

  it('a reader gone (EPIPE): logging stops, nothing is thrown, and the flush at exit returns at once (before 2026-12-07 it retried for ever when the reader stalled first)', async () => {
    const reader = catReader();
    reader.child.kill('SIGSTOP');
    for (const line of numbered(4000, 300)) reader.stream.write(line);
    reader.stream.flush();
    const exited = once(reader.child, 'exit');
    reader.child.kill('SIGKILL');
    await exited;
    for (const line of numbered(4000, 300)) reader.stream.write(line);
    const startedAt = Date.now();
    reader.stream.flushSync();
    expect(Date.now() - startedAt).toBeLessThan(1000);
    expect(reader.errors()).toBe('');
  });

  it('the flush at exit waits for a reader that is slow to read, and writes every line (before 2026-12-07 the write under way was lost)', async () => {
    const reader = catReader(500);
    const lines = numbered(4000, 300);
    for (const line of lines) reader.stream.write(line);
    reader.stream.flushSync();
    await reader.end();
    expect(reader.text()).toBe(lines.join(''));
    expect(reader.errors()).toBe('');
  });

  it('the flush at exit gives up on a reader that takes nothing for 5 s, and says so on stderr', async () => {
    const reader = catReader();
    reader.child.kill('SIGSTOP');
    for (const line of numbered(8000, 300)) reader.stream.write(line);
    const startedAt = Date.now();
    reader.stream.flushSync();
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(5000);
    expect(reader.errors()).toMatch(/^paysim: \d+ bytes of log lines were not written at exit: stdout took none for \d{4,5} ms\n$/);
  }, 15_000);

  it('writes whole lines in pieces of at most 4,096 bytes (PIPE_BUF: a pipe takes each in one piece, so lines of processes sharing it never splice; a review saw two workers\' lines spliced), a longer line whole on its own', () => {
    const writes: string[] = [];
    const stream = batchedStdout(1, { write: (_fd, buffer, offset, length) => (writes.push(buffer.toString('utf8', offset, offset + length)), length) });
    const lines = [...numbered(600, 300), `{"long":"${'x'.repeat(9000)}"}\n`, ...numbered(300, 250)];
    for (const line of lines) stream.write(line);
    stream.flushSync();
    expect(writes.join('')).toBe(lines.join(''));
    for (const piece of writes) {
      expect(piece.endsWith('\n')).toBe(true);
      if (Buffer.byteLength(piece) > 4096) expect(piece).toBe(lines[600]);
    }
    expect(writes).toContain(lines[600]);
  });

  it('a write that takes nothing without an error is tried again later, not at once for ever (a review: the loop spun)', () => {
    let calls = 0;
    const stream = batchedStdout(1, { errorFd: -1, write: () => ((calls += 1), 0) });
    for (const line of numbered(300, 300)) stream.write(line);
    stream.flush();
    expect(calls).toBe(1);
  });
});
