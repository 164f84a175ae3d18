import { PassThrough } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions, prettyStream } from '../../src/logger.ts';

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
});
