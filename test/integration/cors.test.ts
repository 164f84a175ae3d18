import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { testApps } from '../helpers/app.ts';

/**
 * Browsers' cross-origin calls (CORS_ORIGINS, @fastify/cors): off by default; with origins listed,
 * preflights answered and every answer, the errors answered at the door included, readable by
 * those origins' pages, with the headers a client reads (Idempotent-Replayed, Retry-After, …).
 * A real browser's side is test/browser/cors.test.ts.
 */

const { app, closeAll } = testApps();
afterEach(closeAll);

const FRONT = 'http://localhost:3000';
const USER = { 'x-user-id': 'user_test_001' };
const EXPOSED = 'Idempotent-Replayed, Retry-After, X-Request-Id, X-Next-Cursor, Link, X-Sim-Rule, Allow, WWW-Authenticate';
/** The CORS headers of an answer (and Vary). */
const corsOf = (headers: Record<string, unknown>) => Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('access-control-') || name === 'vary'));

describe('CORS_ORIGINS', () => {
  it('unset (the default): no CORS header on any answer, and a preflight is the 405 it always was, in the dialect’s shape', async () => {
    const t = await app();
    const pre = await t.app.inject({ method: 'OPTIONS', url: '/bookings', headers: { origin: FRONT, 'access-control-request-method': 'POST' } });
    expect([pre.statusCode, pre.json(), corsOf(pre.headers)]).toEqual([405, { error: 'OPTIONS is not allowed on /bookings; use POST.', code: 'METHOD_NOT_ALLOWED' }, {}]);
    expect(corsOf((await t.app.inject({ url: '/healthz', headers: { origin: FRONT } })).headers)).toEqual({});
  });

  it('listed origins: a preflight is answered 204 with the methods, the request’s headers and a max age; the answers (an error at the door too) let the page read them and the exposed headers; another origin is not allowed', async () => {
    const t = await app({ CORS_ORIGINS: `${FRONT}, https://tickets.example` });
    const pre = await t.app.inject({ method: 'OPTIONS', url: '/bookings', headers: { origin: FRONT, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-user-id,idempotency-key' } });
    expect([pre.statusCode, pre.body, corsOf(pre.headers)]).toEqual([
      204,
      '',
      {
        vary: 'Origin, Access-Control-Request-Headers',
        'access-control-allow-origin': FRONT,
        'access-control-expose-headers': EXPOSED,
        'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE',
        'access-control-allow-headers': 'content-type,x-user-id,idempotency-key',
        'access-control-max-age': '600',
      },
    ]);
    const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers: { origin: 'https://tickets.example', ...USER }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
    expect([booked.statusCode, corsOf(booked.headers)]).toEqual([201, { vary: 'Origin', 'access-control-allow-origin': 'https://tickets.example', 'access-control-expose-headers': EXPOSED }]);
    // Refused at the door (414), before any route: still readable by the page.
    const long = await t.app.inject({ url: `/v1/sim/intents?reservation_id=${'r'.repeat(9000)}`, headers: { origin: FRONT } });
    expect([long.statusCode, long.json().error.code, corsOf(long.headers)]).toEqual([414, 'URI_TOO_LONG', { vary: 'Origin', 'access-control-allow-origin': FRONT, 'access-control-expose-headers': EXPOSED }]);
    // Another origin: no Access-Control-Allow-Origin, so its page cannot read the answer.
    expect(corsOf((await t.app.inject({ url: '/healthz', headers: { origin: 'http://evil.test' } })).headers)['access-control-allow-origin']).toBeUndefined();
    // With CORS on, an OPTIONS without a preflight's headers is answered as one (204), not 405.
    expect((await t.app.inject({ method: 'OPTIONS', url: '/v1/sim/intent' })).statusCode).toBe(204);
  });

  it('`*`: any origin may read the answers (no credentials: the console’s cookie is never sent cross-origin)', async () => {
    const t = await app({ CORS_ORIGINS: '*' });
    const res = await t.app.inject({ url: '/healthz', headers: { origin: 'http://anywhere.test' } });
    expect(corsOf(res.headers)).toEqual({ 'access-control-allow-origin': '*', 'access-control-expose-headers': EXPOSED });
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('what the HTTP parser refuses (a 431, a 408 while the body arrives) carries the CORS headers for a listed origin, so the page reads the error instead of a network failure (before, none)', async () => {
    const t = await app({ CORS_ORIGINS: FRONT, HTTP_REQUEST_TIMEOUT_MS: '300', HTTP_HEADERS_TIMEOUT_MS: '300' });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    /** The status line and headers the server wrote before closing the connection. */
    const head = (request: string) =>
      new Promise<{ status: string; headers: Record<string, string> }>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(request));
        let text = '';
        socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
        socket.on('close', () => {
          const [status = '', ...lines] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
          resolve({ status, headers: Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()])) });
        });
        socket.on('error', reject);
      });
    const cookie = `Cookie: ${'x'.repeat(20_000)}\r\n`;
    const readable = { vary: 'Origin', 'access-control-allow-origin': FRONT, 'access-control-expose-headers': EXPOSED };
    const tooLarge = await head(`GET /bookings/my HTTP/1.1\r\nHost: a\r\nOrigin: ${FRONT}\r\nX-User-Id: u\r\n${cookie}\r\n`);
    expect([tooLarge.status, corsOf(tooLarge.headers)]).toEqual(['HTTP/1.1 431 Request Header Fields Too Large', readable]);
    // Another origin, or none: no CORS header.
    const other = await head(`GET /bookings/my HTTP/1.1\r\nHost: a\r\nOrigin: http://evil.test\r\n${cookie}\r\n`);
    expect([other.status, corsOf(other.headers)]).toEqual(['HTTP/1.1 431 Request Header Fields Too Large', {}]);
    expect(corsOf((await head(`GET /bookings/my HTTP/1.1\r\nHost: a\r\n${cookie}\r\n`)).headers)).toEqual({});
    // Its headers read, its body never ended: the origin is the parser's.
    const slow = await head(`POST /api/v2/payments HTTP/1.1\r\nHost: a\r\nOrigin: ${FRONT}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"tx_id":`);
    expect([slow.status, corsOf(slow.headers)]).toEqual(['HTTP/1.1 408 Request Timeout', readable]);
  });

  it('a value that is not * or origins stops the start with one line naming it', () => {
    for (const bad of ['http://localhost:3000/', 'localhost:3000', 'ftp://x.test', 'http://a.test/path', 'http://a.test, *']) {
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(ConfigError);
    }
    expect(() => loadConfig({ CORS_ORIGINS: 'http://localhost:3000/' })).toThrow(
      'Invalid configuration: CORS_ORIGINS must be * or origins such as http://localhost:3000 (scheme, host and port, no path or trailing slash) separated by commas (got "http://localhost:3000/")',
    );
    expect(loadConfig({ CORS_ORIGINS: ' http://localhost:3000 ,https://a.example:8443' }).http.corsOrigins).toEqual(['http://localhost:3000', 'https://a.example:8443']);
    expect(loadConfig({}).http.corsOrigins).toBeUndefined();
  });
});
