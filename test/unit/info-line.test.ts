import { tracingChannel } from 'node:diagnostics_channel';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeInfoLine, type FlatFields } from '../../src/info-line.ts';
import { loggerOptions } from '../../src/logger.ts';

/**
 * `writeInfoLine` writes the line pino writes, byte for byte, by its template where pino would
 * write that line, and through `logger.info` everywhere else.
 */

const TIME = ',"time":"2026-12-01T06:00:00.000Z"';

function collecting(): DestinationStream & { lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(line) };
}

/** Two loggers alike (the service's options, a fixed time), each writing to its own list. */
function pair(options: LoggerOptions = {}, child?: Record<string, unknown>) {
  const make = () => {
    const out = collecting();
    const root = pino({ ...loggerOptions({ logLevel: 'info' }), timestamp: () => TIME, ...options }, out);
    return { out, logger: (child === undefined ? root : root.child(child)) as Logger };
  };
  return { viaTemplate: make(), viaPino: make() };
}

const REQUEST = { request_id: 'req-1', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' };
const FIELDS = { method: 'POST', url: '/v1/sim/intents?limit=1&status=APPROVED', route: '/v1/sim/intents', status_code: 200, duration_ms: 1.27 };

/** Writes the line both ways; answers both lines and whether the template wrote it (pino's `info` not called). */
function both(first: FlatFields, second: FlatFields, options?: LoggerOptions, child?: Record<string, unknown>) {
  const { viaTemplate, viaPino } = pair(options, child);
  const info = vi.spyOn(viaTemplate.logger, 'info');
  writeInfoLine(viaTemplate.logger, first, second, 'request completed');
  viaPino.logger.info({ ...first, ...second }, 'request completed');
  return { template: viaTemplate.out.lines, pino: viaPino.out.lines, templated: info.mock.calls.length === 0 };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('writeInfoLine', () => {
  it('writes the request line by its template, as pino writes it', () => {
    const { template, pino: expected, templated } = both(REQUEST, FIELDS);
    expect(templated).toBe(true);
    expect(template).toEqual([
      '{"level":"info","time":"2026-12-01T06:00:00.000Z","service":"paysim","request_id":"req-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","method":"POST","url":"/v1/sim/intents?limit=1&status=APPROVED","route":"/v1/sim/intents","status_code":200,"duration_ms":1.27,"msg":"request completed"}\n',
    ]);
    expect(template).toEqual(expected);
  });

  it('leaves out undefined fields and writes non-finite numbers as null, as pino does', () => {
    const { template, pino: expected, templated } = both({ request_id: 'req-2', trace_id: undefined }, { method: 'GET', url: '/nothing', route: undefined, status_code: 404, duration_ms: Number.NaN, other: Number.POSITIVE_INFINITY });
    expect(templated).toBe(true);
    expect(template[0]).toContain('"request_id":"req-2","method":"GET","url":"/nothing","status_code":404,"duration_ms":null,"other":null,"msg"');
    expect(template).toEqual(expected);
  });

  it("carries a child logger's bindings (a namespace's, a worker's)", () => {
    const { template, pino: expected, templated } = both(REQUEST, FIELDS, {}, { namespace: 'team-a', worker: 2 });
    expect(templated).toBe(true);
    expect(template[0]).toContain('"service":"paysim","namespace":"team-a","worker":2,"request_id":"req-1"');
    expect(template).toEqual(expected);
  });

  it.each([
    ['a quote', '/v1/sim/intents?q="x"'],
    ['a backslash', '/v1/sim/intents?q=a\\b'],
    ['a control character', '/v1/sim/intents?q=a\u0001b'],
    ['a non-ASCII letter', '/v1/sim/intents?q=café'],
    ['a lone surrogate', '/v1/sim/intents?q=\ud800'],
    ['an emoji', '/v1/sim/intents?q=💳'],
  ])('a string with %s goes through pino', (_name, url) => {
    const { template, pino: expected, templated } = both(REQUEST, { ...FIELDS, url });
    expect(templated).toBe(false);
    expect(template).toEqual(expected);
    expect(template).toHaveLength(1);
  });

  it('a field in both objects goes through pino (its order and value are the spread’s)', () => {
    const { template, pino: expected, templated } = both(REQUEST, { ...FIELDS, request_id: 'replaced' });
    expect(templated).toBe(false);
    expect(template).toEqual(expected);
    expect(JSON.parse(template[0] as string).request_id).toBe('replaced');
  });

  it('a key the spread would order otherwise goes through pino: in both objects (undefined in the first), integer-like', () => {
    for (const [first, second] of [
      [{ a: undefined, b: 'x' }, { a: 'y' }],
      [REQUEST, { ...FIELDS, 404: 'not found' }],
    ] as Array<[FlatFields, FlatFields]>) {
      const { template, pino: expected, templated } = both(first, second);
      expect(templated).toBe(false);
      expect(template).toEqual(expected);
    }
  });

  it('inherited fields are left out, as the spread leaves them', () => {
    const inherited = Object.assign(Object.create({ inherited: 'no' }) as Record<string, string>, REQUEST);
    const { template, pino: expected, templated } = both(inherited, FIELDS);
    expect(templated).toBe(true);
    expect(template).toEqual(expected);
    expect(template[0]).not.toContain('inherited');
  });

  it('a redacted or serialized field goes through pino, and is redacted', () => {
    const redacted = both(REQUEST, { ...FIELDS, token: 'tok_s3cr3t' });
    expect(redacted.templated).toBe(false);
    expect(redacted.template).toEqual(redacted.pino);
    expect(redacted.template[0]).toContain('"token":"[redacted]"');
    expect(redacted.template[0]).not.toContain('s3cr3t');

    const serialized = both(REQUEST, FIELDS, { serializers: { url: (url: string) => url.split('?')[0] } });
    expect(serialized.templated).toBe(false);
    expect(serialized.template).toEqual(serialized.pino);
    expect(serialized.template[0]).toContain('"url":"/v1/sim/intents",');
  });

  it.each<[string, LoggerOptions]>([
    ['a mixin', { mixin: () => ({ region: 'eu' }) }],
    [
      'a logMethod hook',
      {
        hooks: {
          logMethod(args, method) {
            method.apply(this, [{ hooked: true, ...(args[0] as object) }, ...args.slice(1)] as Parameters<typeof method>);
          },
        },
      },
    ],
    ['a log formatter', { formatters: { level: (label) => ({ level: label }), log: (object) => ({ ...object, shaped: true }) } }],
    ['a message prefix', { msgPrefix: '[api] ' }],
    ['a nested key', { nestedKey: 'payload' }],
    ['a wildcard redaction', { redact: ['*.secret'] }],
    ['another message key', { messageKey: 'message' }],
  ])('a logger with %s writes what pino writes', (_name, options) => {
    const { template, pino: expected } = both(REQUEST, FIELDS, options);
    expect(template).toEqual(expected);
  });

  it('a logger with a mixin or a message prefix goes through pino, so the line has them', () => {
    expect(both(REQUEST, FIELDS, { mixin: () => ({ region: 'eu' }) }).template[0]).toContain('"region":"eu"');
    expect(both(REQUEST, FIELDS, { msgPrefix: '[api] ' }).template[0]).toContain('"msg":"[api] request completed"');
  });

  it('writes nothing below the logger’s level', () => {
    const out = collecting();
    const logger = pino({ ...loggerOptions({ logLevel: 'warn' }), timestamp: () => TIME }, out);
    writeInfoLine(logger, REQUEST, FIELDS, 'request completed');
    logger.level = 'info';
    writeInfoLine(logger, REQUEST, FIELDS, 'request completed');
    expect(out.lines).toHaveLength(1);
    logger.level = 'error';
    writeInfoLine(logger, REQUEST, FIELDS, 'request completed');
    expect(out.lines).toHaveLength(1);
  });

  it('goes through pino while its diagnostics channel has a subscriber, which then sees the line', () => {
    const seen: unknown[] = [];
    const channel = tracingChannel('pino_asJson');
    const subscriber = { start: (message: unknown) => void seen.push(message), end: () => undefined, asyncStart: () => undefined, asyncEnd: () => undefined, error: () => undefined };
    channel.subscribe(subscriber);
    try {
      const { template, pino: expected, templated } = both(REQUEST, FIELDS);
      expect(templated).toBe(false);
      expect(template).toEqual(expected);
      expect(seen).toHaveLength(2);
    } finally {
      channel.unsubscribe(subscriber);
    }
    expect(both(REQUEST, FIELDS).templated).toBe(true);
  });

  it('a stream that wants metadata (pino.multistream) gets it, through pino', () => {
    const out = collecting();
    const logger = pino({ ...loggerOptions({ logLevel: 'info' }), timestamp: () => TIME }, pino.multistream([{ stream: out }]));
    const info = vi.spyOn(logger, 'info');
    writeInfoLine(logger, REQUEST, FIELDS, 'request completed');
    expect(info).toHaveBeenCalledTimes(1);
    expect(JSON.parse(out.lines[0] as string)).toMatchObject({ ...REQUEST, ...FIELDS, msg: 'request completed' });
  });

  it('a logger that is not pino’s gets its info call', () => {
    const calls: unknown[][] = [];
    const logger = { info: (...args: unknown[]) => void calls.push(args), isLevelEnabled: () => true } as unknown as Logger;
    writeInfoLine(logger, REQUEST, FIELDS, 'request completed');
    expect(calls).toEqual([[{ ...REQUEST, ...FIELDS }, 'request completed']]);
  });
});
