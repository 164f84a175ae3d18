import { connect } from 'node:net';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { testApps, type TestApp } from '../helpers/app.ts';

/**
 * Every error comes back in the shape of the dialect that owns the path: validation, malformed
 * JSON, unknown routes (404), other methods (405), 413, 414, 415, unreadable URLs, load shedding
 * and shutdown (503); a request without a Host header gets a JSON 400.
 * @see issue 7 "One folder per dialect"
 */

const JSON_TYPE = 'application/json; charset=utf-8';
const JWT_SECRET = 'dialect-errors-secret';
const TRACE = { trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) };

const { app, closeAll } = testApps({ JWT_SECRET });
afterEach(closeAll);

const native = (code: string, message: string | RegExp) => ({ error: { code, message: typeof message === 'string' ? message : expect.stringMatching(message), ...TRACE } });
const bookings = (code: string, message: string | RegExp) => ({ error: typeof message === 'string' ? message : expect.stringMatching(message), code });
const paymentService = (message: string) => ({ error: message });
const fluxpay = (code: string, message: string | RegExp, result: unknown = null) => ({ isSuccess: false, code, message: typeof message === 'string' ? message : expect.stringMatching(message), result });

const USER = { 'x-user-id': 'user_test_001' };

/** Sends `request` as written over a socket of its own and answers everything the server sent until it closed the connection. */
function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

async function bearer(t: TestApp): Promise<Record<string, string>> {
  const token = await new SignJWT({ userId: 'user_test_001' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(t.clock.now() / 1000) + 600).sign(new TextEncoder().encode(JWT_SECRET));
  return { authorization: `Bearer ${token}` };
}

describe('404 for an unknown route, under each prefix', () => {
  it.each([
    ['/v1/sim/nope', native('NOT_FOUND', 'No route GET /v1/sim/nope.')],
    ['/nope', native('NOT_FOUND', 'No route GET /nope.')],
    ['/bookings/nope', bookings('NOT_FOUND', 'No route GET /bookings/nope.')],
    ['/payments/nope', bookings('NOT_FOUND', 'No route GET /payments/nope.')],
    ['/ledger/nope?x=1', bookings('NOT_FOUND', 'No route GET /ledger/nope.')],
    ['/api/v1/payments/nope', paymentService('요청한 경로를 찾을 수 없습니다.')],
    ['/api/v1/payments/pk_nope', fluxpay('COMMON_404', 'No route GET /api/v1/payments/pk_nope.')],
    ['/api/v1/orders/ord_x/nope', fluxpay('COMMON_404', 'No route GET /api/v1/orders/ord_x/nope.')],
    ['/api/v1/credits/nope', fluxpay('COMMON_404', 'No route GET /api/v1/credits/nope.')],
    ['/api/v1/sagas', fluxpay('COMMON_404', 'No route GET /api/v1/sagas.')],
    ['/api/v1/waiting-rooms/r1/nope', fluxpay('COMMON_404', 'No route GET /api/v1/waiting-rooms/r1/nope.')],
    ['/api/v1/subscriptions/sub_01KBA7Q4F5R8T1W4Y7A0C3E6HJ/nope', fluxpay('COMMON_404', 'No route GET /api/v1/subscriptions/sub_01KBA7Q4F5R8T1W4Y7A0C3E6HJ/nope.')],
  ])('GET %s', async (url, body) => {
    const t = await app();
    const res = await t.app.inject({ url });
    expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([404, JSON_TYPE, body]);
  });
});

describe('405 with Allow for a known path and another method', () => {
  it.each([
    ['DELETE', '/v1/sim/intent', 'POST', native('METHOD_NOT_ALLOWED', 'DELETE is not allowed on /v1/sim/intent; use POST.')],
    ['POST', '/v1/sim/intents/pay_x', 'GET, HEAD', native('METHOD_NOT_ALLOWED', 'POST is not allowed on /v1/sim/intents/pay_x; use GET, HEAD.')],
    ['PUT', '/bookings/my', 'GET, HEAD, DELETE', bookings('METHOD_NOT_ALLOWED', 'PUT is not allowed on /bookings/my; use GET, HEAD, DELETE.')],
    ['GET', '/api/v1/payments/process', 'POST', paymentService('허용되지 않는 메서드입니다.')],
    ['GET', '/api/v1/payments', 'POST', fluxpay('COMMON_405', 'GET is not allowed on /api/v1/payments; use POST.')],
    ['PUT', '/api/v1/payments/confirm', 'POST', fluxpay('COMMON_405', 'PUT is not allowed on /api/v1/payments/confirm; use POST.')],
    ['DELETE', '/api/v1/orders', 'GET, HEAD, POST', fluxpay('COMMON_405', 'DELETE is not allowed on /api/v1/orders; use GET, HEAD, POST.')],
    ['POST', '/api/v1/reconciliation', 'GET, HEAD', fluxpay('COMMON_405', 'POST is not allowed on /api/v1/reconciliation; use GET, HEAD.')],
    ['DELETE', '/api/v1/waiting-rooms/r1', 'GET, HEAD, PUT', fluxpay('COMMON_405', 'DELETE is not allowed on /api/v1/waiting-rooms/r1; use GET, HEAD, PUT.')],
    ['DELETE', '/api/v1/subscriptions', 'GET, HEAD, POST', fluxpay('COMMON_405', 'DELETE is not allowed on /api/v1/subscriptions; use GET, HEAD, POST.')],
  ] as const)('%s %s', async (method, url, allow, body) => {
    const t = await app();
    const res = await t.app.inject({ method, url });
    expect([res.statusCode, res.headers.allow, res.json()]).toEqual([405, allow, body]);
  });
});

describe('a percent-encoded path takes the shape of the path the router sees (found by the fuzzer)', () => {
  it.each([
    ['PATCH', '/event%73?bookingId=bk_x', 405, 'GET, HEAD', bookings('METHOD_NOT_ALLOWED', 'PATCH is not allowed on /event%73; use GET, HEAD.')],
    ['GET', '/api/v%32/nope', 404, undefined, { detail: 'Not Found' }],
    ['DELETE', '/api/%762/payments', 405, 'POST', { detail: 'Method Not Allowed' }],
    ['GET', '/bookings%2Fmy', 404, undefined, native('NOT_FOUND', 'No route GET /bookings%2Fmy.')],
  ] as const)('%s %s', async (method, url, status, allow, body) => {
    const t = await app();
    const res = await t.app.inject({ method, url, headers: USER });
    expect([res.statusCode, res.headers.allow, res.json()]).toEqual([status, allow, body]);
  });
});

describe('a body no route takes does not hide the 404 or 405 (found by the fuzzer)', () => {
  it.each([
    ['POST', '/v1/sim/webhook/TEST', '{}x', 'application/json', 404, undefined, native('NOT_FOUND', 'No route POST /v1/sim/webhook/TEST.')],
    ['POST', '/nope', '\u00fe\u00ff{}', 'application/json', 404, undefined, native('NOT_FOUND', 'No route POST /nope.')],
    ['PUT', '/bookings/x', '{', 'application/json', 404, undefined, bookings('NOT_FOUND', 'No route PUT /bookings/x.')],
    ['PUT', '/bookings/my', 'a=b', 'application/x-www-form-urlencoded', 405, 'GET, HEAD, DELETE', bookings('METHOD_NOT_ALLOWED', 'PUT is not allowed on /bookings/my; use GET, HEAD, DELETE.')],
    ['OPTIONS', '/api/v1/payments/process', '{}x', 'application/json', 405, 'POST', paymentService('허용되지 않는 메서드입니다.')],
    ['DELETE', '/v1/sim/webhooks/disabled-urls;a=b', 'x'.repeat(70_000), 'application/json', 404, undefined, native('NOT_FOUND', 'No route DELETE /v1/sim/webhooks/disabled-urls;a=b.')],
  ] as const)('%s %s with a bad body', async (method, url, payload, contentType, status, allow, body) => {
    const t = await app();
    const res = await t.app.inject({ method, url, headers: { 'content-type': contentType }, payload });
    expect([res.statusCode, res.headers['content-type'], res.headers.allow, res.json()]).toEqual([status, JSON_TYPE, allow, body]);
  });
});

describe('413, 415 and malformed JSON on each dialect’s routes', () => {
  it('the native API', async () => {
    const t = await app({ BODY_LIMIT_BYTES: '1024' });
    const big = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r', amount: 1, metadata: { k: 'v'.repeat(1100) } } });
    expect([big.statusCode, big.json()]).toEqual([413, native('PAYLOAD_TOO_LARGE', 'The request body is larger than the limit (BODY_LIMIT_BYTES).')]);
    const text = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'text/plain' }, payload: 'x' });
    expect([text.statusCode, text.json()]).toEqual([415, native('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.')]);
    const broken = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'application/json' }, payload: '{"amount": 1,' });
    expect([broken.statusCode, broken.json()]).toEqual([400, native('VALIDATION_FAILED', 'Malformed JSON at position 13 (line 1, column 14): Unexpected end of input (expected a property name in double quotes)')]);
    const twoLines = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'application/json' }, payload: '{\n  "reservation_id": "r",\n  "amount": 1,}' });
    expect([twoLines.statusCode, twoLines.json()]).toEqual([400, native('VALIDATION_FAILED', 'Malformed JSON at position 41 (line 3, column 15): Unexpected token } (expected a property name in double quotes)')]);
    // Not a syntax error: refused keys still say what the parser said.
    const proto = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'application/json' }, payload: '{"__proto__": {"x": 1}}' });
    expect([proto.statusCode, proto.json()]).toEqual([400, native('VALIDATION_FAILED', /^The request body could not be read: .*prototype/)]);
  });

  it('the bookings API', async () => {
    const t = await app({ BODY_LIMIT_BYTES: '1024' });
    const big = await t.app.inject({ method: 'POST', url: '/bookings', headers: USER, payload: { performanceId: 'p'.repeat(1100), quantity: 1, paymentMethod: 'x' } });
    expect([big.statusCode, big.json()]).toEqual([413, bookings('PAYLOAD_TOO_LARGE', 'The request body is larger than the limit (BODY_LIMIT_BYTES).')]);
    const text = await t.app.inject({ method: 'POST', url: '/bookings', headers: { ...USER, 'content-type': 'text/plain' }, payload: 'x' });
    expect([text.statusCode, text.json()]).toEqual([415, bookings('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.')]);
    const broken = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { ...USER, 'content-type': 'application/json' }, payload: '{"bookingId"' });
    expect([broken.statusCode, broken.json()]).toEqual([400, bookings('VALIDATION_FAILED', "Malformed JSON at position 12 (line 1, column 13): Unexpected end of input (expected ':' after the property name)")]);
  });

  it('the payment-service API', async () => {
    const t = await app({ BODY_LIMIT_BYTES: '1024' });
    const auth = await bearer(t);
    const big = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: auth, payload: { reservationId: 'r'.repeat(1100), paymentMethod: 'kakao_pay' } });
    expect([big.statusCode, big.json()]).toEqual([413, paymentService('요청 본문이 너무 큽니다.')]);
    const text = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { ...auth, 'content-type': 'text/plain' }, payload: 'x' });
    expect([text.statusCode, text.json()]).toEqual([415, paymentService('요청 본문은 application/json 형식이어야 합니다.')]);
    const broken = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"reservationId"' });
    expect([broken.statusCode, broken.json()]).toEqual([400, paymentService('요청 본문의 JSON 형식이 올바르지 않습니다 (1행 17열, 위치 16).')]);
  });

  it('the FluxPay API (on both sides of the shared /api/v1/payments prefix)', async () => {
    const t = await app({ BODY_LIMIT_BYTES: '1024' });
    for (const url of ['/api/v1/orders', '/api/v1/payments', '/api/v1/payments/confirm']) {
      const big = await t.app.inject({ method: 'POST', url, payload: { orderName: 'o'.repeat(1100) } });
      expect([big.statusCode, big.json()], url).toEqual([413, fluxpay('COMMON_413', 'The request body is larger than the limit (BODY_LIMIT_BYTES).')]);
      const text = await t.app.inject({ method: 'POST', url, headers: { 'content-type': 'text/plain' }, payload: 'x' });
      expect([text.statusCode, text.json()], url).toEqual([415, fluxpay('COMMON_415', 'Send the body as application/json.')]);
      const broken = await t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: '{"orderId"' });
      expect([broken.statusCode, broken.json()], url).toEqual([
        400,
        fluxpay('COMMON_400', /^Malformed JSON at position 10/, { errors: [{ field: 'body', reason: "malformed JSON at line 1, column 11: Unexpected end of input (expected ':' after the property name)" }] }),
      ]);
    }
  });
});

describe('bodies that are not UTF-8, in another charset, compressed, or empty under another type (2026-12-05, a user test)', () => {
  // `caf` then the byte 0xE8 (è in Latin-1): read as U+FFFD before, so `caf\xE8` and `caf\xE9` were one reservation id.
  const latin1 = (json: string) => Buffer.concat([Buffer.from(json.split('\u00e8')[0] as string), Buffer.from([0xe8]), Buffer.from(json.split('\u00e8')[1] as string)]);

  it('bytes that are not UTF-8: 400 at the byte, in each shape, and nothing stored', async () => {
    const t = await app();
    const auth = await bearer(t);
    const native1 = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'application/json' }, payload: latin1('{"reservation_id":"caf\u00e8","amount":100}') });
    expect([native1.statusCode, native1.json()]).toEqual([400, native('VALIDATION_FAILED', 'Malformed JSON at position 22 (line 1, column 23): Invalid UTF-8 (byte 0xE8): a JSON body is UTF-8 text')]);
    const v2 = await t.app.inject({ method: 'POST', url: '/api/v2/payments', headers: { 'content-type': 'application/json' }, payload: latin1('{"tx_id":"dup\u00e8","order_id":1,"user_id":1,"amount":1000}') });
    // FastAPI's answer to a body it cannot decode.
    expect([v2.statusCode, v2.json()]).toEqual([400, { detail: 'There was an error parsing the body' }]);
    const service = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { ...auth, 'content-type': 'application/json' }, payload: latin1('{"reservationId":"r\u00e8"}') });
    expect([service.statusCode, service.json()]).toEqual([400, paymentService('요청 본문의 JSON 형식이 올바르지 않습니다 (1행 20열, 위치 19).')]);
    const order = await t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'content-type': 'application/json' }, payload: latin1('{"orderName":"\u00e8"}') });
    expect([order.statusCode, order.json()]).toEqual([400, fluxpay('COMMON_400', /^Malformed JSON at position 14 .*Invalid UTF-8 \(byte 0xE8\)/, { errors: [{ field: 'body', reason: 'malformed JSON at line 1, column 15: Invalid UTF-8 (byte 0xE8): a JSON body is UTF-8 text' }] })]);
    const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers: { ...USER, 'content-type': 'application/json' }, payload: latin1('{"performanceId":"perf_00\u00e8","quantity":1}') });
    expect([booked.statusCode, booked.json()]).toEqual([400, bookings('VALIDATION_FAILED', 'Malformed JSON at position 25 (line 1, column 26): Invalid UTF-8 (byte 0xE8): a JSON body is UTF-8 text')]);
    const list = await t.app.inject({ url: '/v1/sim/intents' });
    expect(list.json()).toMatchObject({ data: [] });
    // UTF-8 itself (è as 0xC3 0xA8) is read as before.
    const utf8 = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'application/json' }, payload: Buffer.from('{"reservation_id":"caf\u00e8","amount":100}') });
    expect(utf8.statusCode).toBe(200);
    expect((await t.app.inject({ url: `/v1/sim/intents/${utf8.json().payment_intent_id}` })).json()).toMatchObject({ reservation_id: 'caf\u00e8' });
  });

  it('a UTF-16 or UTF-32 charset, or a Content-Encoding: 415 that says which, in each shape; any other charset is not read (the body must be UTF-8), nor is it on /api/v2 (FastAPI reads none)', async () => {
    const t = await app();
    const body = JSON.stringify({ reservation_id: 'r-charset', amount: 100 });
    const send = (url: string, headers: Record<string, string>, payload: string | Buffer = body) => t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload });
    const utf16 = await send('/v1/sim/intent', { 'content-type': 'application/json; charset=UTF-16LE' });
    expect([utf16.statusCode, utf16.json()]).toEqual([415, native('UNSUPPORTED_MEDIA_TYPE', "The request body's charset utf-16le is not read: send JSON as UTF-8 (application/json, or with charset=utf-8).")]);
    const gzip = await send('/v1/sim/intent', { 'content-encoding': 'gzip' });
    expect([gzip.statusCode, gzip.json()]).toEqual([415, native('UNSUPPORTED_MEDIA_TYPE', 'The request body is encoded (Content-Encoding: gzip), which is not read: send it uncompressed.')]);
    const v2gzip = await send('/api/v2/payments', { 'content-encoding': 'br' });
    expect([v2gzip.statusCode, v2gzip.json()]).toEqual([415, { detail: 'The request body is encoded (Content-Encoding: br), which is not read: send it uncompressed.' }]);
    const order = await send('/api/v1/orders', { 'content-encoding': 'gzip' });
    expect([order.statusCode, order.json()]).toEqual([415, fluxpay('COMMON_415', 'The request body is encoded (Content-Encoding: gzip), which is not read: send it uncompressed.')]);
    const booking = await send('/bookings', { ...USER, 'content-type': 'application/json;charset=utf-32' });
    expect([booking.statusCode, booking.json()]).toEqual([415, bookings('UNSUPPORTED_MEDIA_TYPE', "The request body's charset utf-32 is not read: send JSON as UTF-8 (application/json, or with charset=utf-8).")]);
    expect((await t.app.inject({ url: '/v1/sim/intents' })).json()).toMatchObject({ data: [] });
    // Spring's RestTemplate names ISO-8859-1 on UTF-8 bodies: read as UTF-8, as RFC 8259 says.
    for (const type of ['application/json; Charset="UTF-8"', 'application/json;charset=ISO-8859-1', 'application/json; charset=us-ascii']) {
      const read = await send('/v1/sim/intent', { 'content-type': type, 'content-encoding': 'identity' });
      expect([type, read.statusCode]).toEqual([type, 200]);
    }
    const v2 = await send('/api/v2/payments', { 'content-type': 'application/json; charset=utf-16' }, JSON.stringify({ tx_id: 'tx-charset', order_id: 1, user_id: 1, amount: 1000 }));
    // Read: what it says is the body's own fault (no callback_url), not its charset's.
    expect([v2.statusCode, v2.json().detail.map((d: { loc: string[] }) => d.loc)]).toEqual([422, [['body', 'callback_url']]]);
  });

  it('an empty body under a type that is not JSON (curl -d \'\', a Java client) is no body: the routes that take none answer as without one', async () => {
    const t = await app();
    const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-empty', amount: 100, scenario: 'delay' } });
    const id = created.json().payment_intent_id as string;
    const cancel = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/cancel`, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '0' } });
    expect([cancel.statusCode, cancel.json().status]).toEqual([200, 'CANCELLED']);
    // A body a route needs, sent empty under text/plain: the route says what is missing, as without a type.
    const create = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'text/plain', 'content-length': '0' } });
    const none = await t.app.inject({ method: 'POST', url: '/v1/sim/intent' });
    expect([create.statusCode, create.json().error.message]).toEqual([400, 'body /: must be object']);
    expect(create.json().error.details).toEqual(none.json().error.details);
    // Empty, named UTF-16 (a review: a 415 once the charset was checked first).
    const created2 = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-empty-2', amount: 100, scenario: 'delay' } });
    const utf16 = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${created2.json().payment_intent_id}/cancel`, headers: { 'content-type': 'application/json; charset=utf-16', 'content-length': '0' } });
    expect([utf16.statusCode, utf16.json().status]).toEqual([200, 'CANCELLED']);
    // Not empty: still 415.
    const text = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/cancel`, headers: { 'content-type': 'text/plain' }, payload: 'x' });
    expect(text.statusCode).toBe(415);
  });
});

describe('a query parameter a route does not take is refused, in FluxPay and bookings as in the native API (2026-12-05, a user test: ?userID= listed every user’s orders)', () => {
  it.each([
    ['/api/v1/orders?userID=u1&limit=100', '/userID'],
    ['/api/v1/credits/balance?userId=u1&extra=1', '/extra'],
    ['/api/v1/credits/transactions?userId=u1&extra=1', '/extra'],
    ['/api/v1/outbox?stauts=pending', '/stauts'],
    ['/api/v1/subscriptions?usrId=u1', '/usrId'],
  ])('FluxPay GET %s', async (url, field) => {
    const t = await app();
    const res = await t.app.inject({ url });
    expect([res.statusCode, res.json()]).toEqual([400, fluxpay('COMMON_400', `querystring ${field}: is not a known field`, { errors: [{ field: `query.${field.slice(1)}`, reason: 'is not a known field' }] })]);
  });

  it.each(['/performances?foo=1', '/performances/perf_001/seats?foo=1', '/ledger/balances?foo=1'])('bookings GET %s', async (url) => {
    const t = await app();
    const res = await t.app.inject({ url, headers: USER });
    expect([res.statusCode, res.json()]).toEqual([400, bookings('VALIDATION_FAILED', 'querystring /foo: is not a known field')]);
    expect((await t.app.inject({ url: url.split('?')[0] as string, headers: USER })).statusCode).toBe(200);
  });
});

describe('unreadable and over-long URLs', () => {
  it.each([
    ['bad percent-encoding, native', '/v1/sim/intents/%E0%A4%A', 400, native('BAD_URL', 'The request path is not a valid URL (bad percent-encoding).')],
    ['bad percent-encoding, bookings', '/bookings/%E0%A4%A', 400, bookings('BAD_URL', 'The request path is not a valid URL (bad percent-encoding).')],
    ['bad percent-encoding, payment service', '/api/v1/payments/%E0%A4%A', 400, paymentService('잘못된 요청입니다.')],
    ['a 150-character path parameter, native', `/v1/sim/intents/${'a'.repeat(150)}`, 414, native('URI_TOO_LONG', 'A path parameter is longer than the service accepts.')],
    ['a 9,000-character query, native', `/v1/sim/intents?reservation_id=${'r'.repeat(9000)}`, 414, native('URI_TOO_LONG', 'The request URL is longer than 8192 characters.')],
    ['a 9,000-character query, bookings', `/bookings/my?cursor=${'c'.repeat(9000)}`, 414, bookings('URI_TOO_LONG', 'The request URL is longer than 8192 characters.')],
    ['a 9,000-character query, payment service', `/api/v1/payments/methods?${'q'.repeat(9000)}`, 414, paymentService('요청 URI가 너무 깁니다.')],
    ['bad percent-encoding, FluxPay', '/api/v1/orders/%E0%A4%A', 400, fluxpay('COMMON_400', 'The request path is not a valid URL (bad percent-encoding).', { errors: [{ field: 'path', reason: 'The request path is not a valid URL (bad percent-encoding).' }] })],
    ['a 9,000-character query, FluxPay', `/api/v1/orders?userId=${'u'.repeat(9000)}`, 414, fluxpay('COMMON_414', 'The request URL is longer than 8192 characters.')],
    ['a 9,000-character query, FluxPay payments', `/api/v1/payments/pk_x?${'q'.repeat(9000)}`, 414, fluxpay('COMMON_414', 'The request URL is longer than 8192 characters.')],
  ])('%s', async (_name, url, status, body) => {
    const t = await app();
    const res = await t.app.inject({ url });
    expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([status, JSON_TYPE, body]);
  });
});

describe('503 in each dialect’s shape', () => {
  it('load shedding: OVERLOADED with Retry-After; health, readiness and metrics keep answering', async () => {
    const t = await app({ OVERLOAD_MAX_HEAP_USED_BYTES: '1', OVERLOAD_RETRY_AFTER_S: '7' });
    const auth = await bearer(t);
    let first;
    for (let i = 0; i < 100 && first?.statusCode !== 503; i++) {
      first = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r', amount: 1 } });
      if (first.statusCode !== 503) await new Promise((resolve) => setTimeout(resolve, 20)); // under-pressure samples the heap on a real timer
    }
    const cases = [
      [first, native('OVERLOADED', /overloaded/)],
      [await t.app.inject({ method: 'POST', url: '/bookings', headers: USER, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'x' } }), bookings('OVERLOADED', /overloaded/)],
      [await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: auth, payload: { reservationId: 'bk_x', paymentMethod: 'kakao_pay' } }), paymentService('서버가 과부하 상태입니다. 잠시 후 다시 시도해 주세요.')],
      [await t.app.inject({ method: 'POST', url: '/api/v1/payments/confirm', payload: {} }), fluxpay('COMMON_503', /overloaded/)],
      [await t.app.inject({ url: '/api/v1/credits/balance?userId=u' }), fluxpay('COMMON_503', /overloaded/)],
    ] as const;
    for (const [res, body] of cases) expect([res?.statusCode, res?.headers['retry-after'], res?.json()]).toEqual([503, '7', body]);
    for (const url of ['/healthz', '/readyz', '/metrics']) expect((await t.app.inject({ url })).statusCode).toBe(200);
  });

  it('while the server closes: SHUTTING_DOWN with Retry-After and Connection: close', async () => {
    const t = await app();
    t.app.lifecycle.closing = true;
    const cases = [
      ['/v1/sim/intents', native('SHUTTING_DOWN', /shutting down/)],
      ['/bookings/my', bookings('SHUTTING_DOWN', /shutting down/)],
      ['/api/v1/payments/methods', paymentService('서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.')],
      ['/api/v1/reconciliation', fluxpay('COMMON_503', /shutting down/)],
    ] as const;
    for (const [url, body] of cases) {
      const res = await t.app.inject({ url, headers: USER });
      expect([res.statusCode, res.headers['retry-after'], res.headers.connection, res.json()]).toEqual([503, '1', 'close', body]);
    }
    t.app.lifecycle.closing = false;
  });

  it('a store full of unfinished work: STORE_FULL with Retry-After, counted by store', async () => {
    const t = await app({ STORE_MAX_INTENTS: '2' });
    for (let i = 0; i < 2; i++) expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r${i}`, amount: 1, scenario: 'delay' } })).statusCode).toBe(200);
    const full = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r2', amount: 1 } });
    expect([full.statusCode, full.headers['retry-after'], full.json()]).toEqual([503, '1', native('STORE_FULL', 'The intents store is full of PENDING intents, which it keeps until each is decided: retry once some are (after their delay), or raise STORE_MAX_INTENTS.')]);
    expect((await t.app.inject({ url: '/metrics' })).body).toMatch(/^store_full_total\{store="intents"\} 1$/m);
    // Once one is decided it may go, and creation works again.
    await t.clock.advance(3000);
    expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r3', amount: 1 } })).statusCode).toBe(200);
  });
});

describe('409 of an Idempotency-Key still in use, in each dialect’s shape (2026-12-06, from a user test: no hint when to ask again)', () => {
  it('carries Retry-After: 1, the time to ask again for the answer of the request holding the key; nothing is made', async () => {
    const t = await app();
    // Every key is held by a request still running (the twin, or with Redis a retry that took it over).
    t.app.stores.idempotency.begin = async () => ({ kind: 'in_progress' });
    const key = { 'idempotency-key': 'held-1' };
    const message = 'A request with this Idempotency-Key is still being processed; retry later.';
    const cases = [
      [await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: key, payload: { reservation_id: 'r_held', amount: 700 } }), native('IDEMPOTENCY_KEY_IN_USE', message)],
      [await t.app.inject({ method: 'POST', url: '/bookings', headers: { ...USER, ...key }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'x' } }), bookings('IDEMPOTENCY_KEY_IN_USE', message)],
      [await t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: key, payload: { userId: 'user_held', serviceId: 'chat', orderName: 'r', amount: 1000 } }), fluxpay('COMMON_409', message)],
    ] as const;
    for (const [res, body] of cases) expect([res.statusCode, res.headers['retry-after'], res.json()]).toEqual([409, '1', body]);
    expect((await t.app.stores.intents.list({ limit: 10, reservationId: 'r_held' })).data).toEqual([]);
    expect((await t.app.stores.fluxpay.listOrders({ limit: 10, userId: 'user_held' })).data).toEqual([]);
  });
});

describe('a request without a Host header', () => {
  it('gets a JSON 400 in the shape of its path, not an empty 400 from the HTTP parser', async () => {
    const t = await app();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    const raw = (path: string): Promise<string> => rawRequest(port, `GET ${path} HTTP/1.1\r\nConnection: close\r\n\r\n`);
    const message = 'An HTTP/1.1 request needs a Host header.';
    const missing = 'is required in an HTTP/1.1 request';
    // The header is named where a dialect names fields: native's details, FluxPay's result.errors (header.<name>).
    const nativeBody = native('BAD_REQUEST', message);
    for (const [path, body] of [
      ['/v1/sim/intents', { error: { ...nativeBody.error, details: [{ in: 'headers', field: '/host', rule: 'required', message: missing }] } }],
      ['/bookings/my', bookings('BAD_REQUEST', message)],
      ['/api/v1/credits/balance?userId=user_1', { isSuccess: false, code: 'COMMON_400', message, result: { errors: [{ field: 'header.host', reason: missing }] } }],
    ] as const) {
      const text = await raw(path);
      expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(text).toMatch(/\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
      expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual(body);
    }
  });
});

describe('what the HTTP parser refuses (headers over 16 KiB, bytes that are not HTTP), in the shape of the path it names', () => {
  it('431 for a request line and headers over 16 KiB, 400 for a header line that is not one; the connection closed after (before, Fastify’s own {"error","message","statusCode"})', async () => {
    const t = await app();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    const raw = (request: string): Promise<string> => rawRequest(port, request);
    const answer = (text: string) => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      return { statusLine, type: headers['content-type'], connection: headers.connection, length: Number(headers['content-length']), body: JSON.parse(body) as unknown, bytes: Buffer.byteLength(body) };
    };
    const tooLarge = 'The request line and headers are larger than the server reads (16 KiB).';
    const long = 'x'.repeat(20_000);
    for (const [request, status, body] of [
      [`GET /v1/sim/intents/${long} HTTP/1.1\r\nHost: a\r\n\r\n`, '431 Request Header Fields Too Large', native('HEADERS_TOO_LARGE', tooLarge)],
      [`GET /bookings/my HTTP/1.1\r\nHost: a\r\nX-User-Id: u\r\nCookie: ${long}\r\n\r\n`, '431 Request Header Fields Too Large', bookings('HEADERS_TOO_LARGE', tooLarge)],
      [`GET /api/v1/orders/${long} HTTP/1.1\r\nHost: a\r\n\r\n`, '431 Request Header Fields Too Large', fluxpay('COMMON_431', tooLarge)],
      [`GET /api/v2/payments/${long} HTTP/1.1\r\nHost: a\r\n\r\n`, '431 Request Header Fields Too Large', { detail: tooLarge }],
      [`GET /api/v1/payments/methods HTTP/1.1\r\nHost: a\r\nCookie: ${long}\r\n\r\n`, '431 Request Header Fields Too Large', paymentService('요청 헤더가 너무 큽니다.')],
      [`GET /nowhere/${long} HTTP/1.1\r\nHost: a\r\n\r\n`, '431 Request Header Fields Too Large', native('HEADERS_TOO_LARGE', tooLarge)],
      ['GET /bookings/my HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n', '400 Bad Request', bookings('BAD_REQUEST', 'The request is not valid HTTP/1.1 (HPE_INVALID_HEADER_TOKEN).')],
    ] as const) {
      const got = answer(await raw(request));
      expect(got, request.slice(0, 40)).toEqual({ statusLine: `HTTP/1.1 ${status}`, type: JSON_TYPE, connection: 'close', length: got.bytes, body, bytes: got.bytes });
    }
  });
  it('behind an answer already under way on the connection (the console’s event stream), an oversized pipelined request closes the connection without writing into that answer (before, its 431 landed in the stream’s body)', async () => {
    const t = await app();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /console/events HTTP/1.1\r\nHost: a\r\n\r\n'));
      let received = '';
      let sent = false;
      socket.setEncoding('latin1').on('data', (chunk: string) => {
        received += chunk;
        if (sent || !received.includes('event: hello')) return;
        sent = true;
        socket.write(`GET /v1/sim/intents HTTP/1.1\r\nHost: a\r\nCookie: ${'x'.repeat(20_000)}\r\n\r\n`);
      });
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
    });
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head).toMatch(/\r\ncontent-type: text\/event-stream; charset=utf-8\r\n/i);
    // The stream's first chunk, and nothing after it: no second status line, no error body.
    expect(text.slice(head.length + 4)).toBe('23\r\nretry: 2000\nevent: hello\ndata: {}\n\n\r\n');
  });
});

describe('a request not received in full within HTTP_REQUEST_TIMEOUT_MS', () => {
  it('gets a JSON 408 REQUEST_TIMEOUT (the parser has no request line to go by: the default shape) and the connection is closed', async () => {
    const t = await app({ HTTP_REQUEST_TIMEOUT_MS: '300', HTTP_HEADERS_TIMEOUT_MS: '300' });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    // Headers begun, never ended.
    const text = await rawRequest(port, 'GET /bookings/my HTTP/1.1\r\nHost: a\r\nX-User-Id: u\r\n');
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\nContent-Type: application\/json; charset=utf-8\r\nContent-Length: \d+\r\nConnection: close\r\n\r\n/);
    expect(JSON.parse(body)).toEqual(native('REQUEST_TIMEOUT', 'The request was not received in time (its headers within HTTP_HEADERS_TIMEOUT_MS, all of it within HTTP_REQUEST_TIMEOUT_MS).'));
  });
  it('whose headers arrived but not all of its body: in the shape of the dialect its request line names (before, the default shape)', async () => {
    const t = await app({ HTTP_REQUEST_TIMEOUT_MS: '300', HTTP_HEADERS_TIMEOUT_MS: '300' });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    const message = 'The request was not received in time (its headers within HTTP_HEADERS_TIMEOUT_MS, all of it within HTTP_REQUEST_TIMEOUT_MS).';
    for (const [head, body] of [
      ['POST /api/v2/payments HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n', { detail: message }],
      ['POST /bookings HTTP/1.1\r\nHost: a\r\nX-User-Id: u\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n', bookings('REQUEST_TIMEOUT', message)],
      [`POST /api/v1/payments/process HTTP/1.1\r\nHost: a\r\nAuthorization: ${(await bearer(t)).authorization}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`, paymentService('요청을 제시간에 받지 못했습니다. 다시 시도해 주세요.')],
    ] as const) {
      // Its body begun, never ended.
      const text = await rawRequest(port, `${head}{"tx_id":`);
      expect(text, head.slice(0, 30)).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\nContent-Type: application\/json; charset=utf-8\r\nContent-Length: \d+\r\nConnection: close\r\n\r\n/);
      expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), head.slice(0, 30)).toEqual(body);
    }
  });
});

describe('a lone surrogate in a JSON string is a 400 in each dialect (found by the fuzzer: was a 500)', () => {
  it('native, bookings (with an Idempotency-Key) and payment-service', async () => {
    const t = await app();
    const body = '{"reservation_id":"r-\\udc00","amount":100}';
    const a = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'content-type': 'application/json', 'idempotency-key': 'k1' }, payload: body });
    expect([a.statusCode, a.json()]).toEqual([400, native('VALIDATION_FAILED', 'Malformed JSON at position 21 (line 1, column 22): Lone surrogate \\udc00 in a string (a low surrogate without a high one before it is not Unicode text)')]);
    const b = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { ...USER, 'content-type': 'application/json', 'idempotency-key': 'k2' }, payload: '{"bookingId":"bk_01KF0RDQG0RYP4MTN866DMCFWX","paymentMethodToken":"tok","cvv":"\\udc00x"}' });
    expect([b.statusCode, b.json()]).toEqual([400, bookings('VALIDATION_FAILED', /^Malformed JSON at position 79 \(line 1, column 80\): Lone surrogate/)]);
    const c = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { ...(await bearer(t)), 'content-type': 'application/json' }, payload: '{"reservationId":"\\ud800"}' });
    expect([c.statusCode, c.json()]).toEqual([400, paymentService('요청 본문의 JSON 형식이 올바르지 않습니다 (1행 19열, 위치 18).')]);
    expect((await t.app.inject({ url: '/v1/sim/intents' })).json().data).toEqual([]);
  });
});

describe('a body nested deeper than 64 arrays and objects is a 400 in each dialect, and stores nothing (2026-12-05, a security review)', () => {
  const nested = (depth: number) => '['.repeat(depth) + '1' + ']'.repeat(depth);
  const json = { 'content-type': 'application/json' };

  it('native, bookings, payment-service and /api/v2', async () => {
    const t = await app();
    const a = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: json, payload: `{"reservation_id":"r1","amount":100,"metadata":${nested(64)}}` });
    expect([a.statusCode, a.json()]).toEqual([400, native('VALIDATION_FAILED', 'JSON nested too deeply at position 110 (line 1, column 111): more than 64 arrays and objects inside one another')]);
    const b = await t.app.inject({ method: 'POST', url: '/bookings', headers: { ...USER, ...json }, payload: `{"performanceId":"perf_001","seatIds":${nested(64)}}` });
    expect([b.statusCode, b.json()]).toEqual([400, bookings('VALIDATION_FAILED', 'JSON nested too deeply at position 101 (line 1, column 102): more than 64 arrays and objects inside one another')]);
    const c = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { ...(await bearer(t)), ...json }, payload: `{"reservationId":${nested(70)}}` });
    expect([c.statusCode, c.json()]).toEqual([400, paymentService('요청 본문의 JSON이 너무 깊게 중첩되어 있습니다 (1행 81열, 위치 80).')]);
    // Before, /api/v2 answered a 500 at 6,000 levels: its 422 echoes the input, which ran the stack out.
    const d = await t.app.inject({ method: 'POST', url: '/api/v2/payments', headers: json, payload: nested(6_000) });
    expect([d.statusCode, d.json()]).toEqual([422, { detail: [{ type: 'json_invalid', loc: ['body', 64], msg: 'JSON decode error', input: {}, ctx: { error: 'more than 64 arrays and objects inside one another' } }] }]);
    expect((await t.app.inject({ url: '/v1/sim/intents' })).json().data).toEqual([]);
    expect((await t.app.inject({ url: '/bookings/my', headers: USER })).json()).toEqual([]);
  });

  it('FluxPay: an order with metadata too deep is refused, one at the limit is stored and served (before, 5,000 levels stored an order every read of it, the list and the outbox failed on)', async () => {
    const t = await app();
    const order = (metadata: string) => t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: json, payload: `{"userId":"user_1","serviceId":"ai-writer","orderName":"x","amount":100,"metadata":{"extra":${metadata}}}` });
    const deep = await order(nested(63));
    expect([deep.statusCode, deep.json()]).toEqual([
      400,
      fluxpay('COMMON_400', 'JSON nested too deeply at position 154 (line 1, column 155): more than 64 arrays and objects inside one another', {
        errors: [{ field: 'body', reason: 'JSON nested too deeply at line 1, column 155: more than 64 arrays and objects inside one another' }],
      }),
    ]);
    expect((await t.app.inject({ url: '/api/v1/orders?userId=user_1' })).json().result.items).toEqual([]);
    const atLimit = await order(nested(62));
    expect(atLimit.statusCode).toBe(200);
    const { orderId } = atLimit.json().result;
    const read = await t.app.inject({ url: `/api/v1/orders/${orderId}` });
    expect([read.statusCode, read.json().result.metadata]).toEqual([200, { extra: JSON.parse(nested(62)) }]);
    expect((await t.app.inject({ url: '/api/v1/orders?userId=user_1' })).json().result.items.map((o: { orderId: string }) => o.orderId)).toEqual([orderId]);
  });
});

describe('a percent-encoded path takes the shape of the path the router matched (found by make fuzz)', () => {
  it.each([
    ['PATCH', '/booking%73/my', 405, 'GET, HEAD, DELETE', bookings('METHOD_NOT_ALLOWED', 'PATCH is not allowed on /booking%73/my; use GET, HEAD, DELETE.')],
    ['GET', '/performance%73/x/y', 404, undefined, bookings('NOT_FOUND', 'No route GET /performance%73/x/y.')],
    ['GET', '/api/%761/payments/nope', 404, undefined, paymentService('요청한 경로를 찾을 수 없습니다.')],
    ['GET', '/v1/sim/%2Fnope', 404, undefined, native('NOT_FOUND', 'No route GET /v1/sim/%2Fnope.')],
  ] as const)('%s %s', async (method, url, status, allow, body) => {
    const t = await app();
    const res = await t.app.inject({ method, url, headers: USER });
    expect([res.statusCode, res.headers.allow, res.json()]).toEqual([status, allow, body]);
  });
});

describe('FluxPay: a store full of unfinished work, a fault, a request without Host', () => {
  it('COMMON_503 with Retry-After when the store holds only open orders; COMMON_500 without internals', async () => {
    const t = await app({ FLUXPAY_MAX_RECORDS: '1' });
    const order = { userId: 'u', serviceId: 's', orderName: 'o', amount: 1 };
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/orders', payload: order })).statusCode).toBe(200);
    const full = await t.app.inject({ method: 'POST', url: '/api/v1/orders', payload: order });
    expect([full.statusCode, full.headers['retry-after'], full.json()]).toEqual([503, '1', fluxpay('COMMON_503', 'The fluxpay store is full of open work, which it keeps until it ends: PENDING or PAID orders with their payments (complete or cancel them) and running usage sagas; retrying alone does not make room until some end (or raise FLUXPAY_MAX_RECORDS).')]);
    expect((await t.app.inject({ url: '/metrics' })).body).toMatch(/^store_full_total\{store="fluxpay"\} 1$/m);
    t.app.stores.fluxpay.snapshot = () => Promise.reject(new Error('secret internals: db password'));
    const fault = await t.app.inject({ url: '/api/v1/reconciliation' });
    expect([fault.statusCode, fault.json()]).toEqual([500, fluxpay('COMMON_500', 'Something went wrong on our side; the request may be retried.')]);
    expect(fault.body).not.toContain('secret');
  });
});
