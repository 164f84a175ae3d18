import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { batchedStdout, loggerOptions, prettyStream } from '../../src/logger.ts';

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

  /** `batchedStdout` over sonic-boom in buffer mode on a file (as it makes it on stdout), and the file's text. */
  async function batchedToFile() {
    const dir = mkdtempSync(join(tmpdir(), 'paysim-log-'));
    const path = join(dir, 'out.log');
    const out = pino.destination({ dest: path, minLength: 0, sync: false, contentMode: 'buffer' });
    await once(out, 'ready');
    cleanups.push(() => {
      out.destroy();
      rmSync(dir, { recursive: true, force: true });
    });
    const stream = batchedStdout(out as Parameters<typeof batchedStdout>[0]) as ReturnType<typeof batchedStdout> & { flush(): void; flushSync(): void };
    return { stream, text: () => readFileSync(path, 'utf8') };
  }

  /** Waits until the file holds `bytes` bytes (the destination's writes run on libuv's pool). */
  async function written(text: () => string, bytes: number): Promise<string> {
    const deadline = Date.now() + 5000;
    while (Buffer.byteLength(text()) < bytes && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return text();
  }

  it('writes every line, in order and byte for byte (UTF-8, a line longer than a batch, batch boundaries)', async () => {
    const { stream, text } = await batchedToFile();
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
    const { stream, text } = await batchedToFile();
    // Less than a batch: nothing has been handed over, so no write is on its way.
    stream.write('{"first":"ünïcode"}\n');
    stream.write('{"second":2}\n');
    expect(text()).toBe('');
    stream.flushSync();
    expect(text()).toBe('{"first":"ünïcode"}\n{"second":2}\n');
  });

  it('a line waits at most LOG_FLUSH_MS (100 ms) when no batch fills up', async () => {
    const { stream, text } = await batchedToFile();
    stream.write('{"alone":true}\n');
    expect(text()).toBe('');
    // Polled for (5 s at most; a fixed 400 ms before 2026-12-06, which a stall could outlast before the write landed: a review): without the timer's flush nothing comes.
    expect(await written(text, Buffer.byteLength('{"alone":true}\n'))).toBe('{"alone":true}\n');
  });
});
