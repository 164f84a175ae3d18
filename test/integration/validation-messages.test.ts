import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORMAT_DESCRIPTIONS, PATTERN_DESCRIPTION } from '../../src/http/validation.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/**
 * Validation messages say the rule in words, in each dialect's shape: an enum names its allowed
 * values (`must be one of approve, fail, delay, random, mix`), a pattern is described
 * (`must be visible ASCII characters only (no spaces)`) and a format too
 * (`must be an absolute http(s) URL`, `must be an ISO 4217 currency code such as KRW, USD or EUR`), never a regular expression. The payment-service API keeps
 * the Korean messages of its document.
 * @see issue 8 "Small things that cost a newcomer time"
 */

const JWT_SECRET = 'validation-messages-secret';
const USER = { 'x-user-id': 'user_test_001' };

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ JWT_SECRET });
});
afterAll(async () => {
  await t.app.close();
});

interface Case {
  name: string;
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  payload?: Record<string, unknown>;
  /** `in`, field, rule and message of the one issue. */
  issue: [string, string, string, string];
}

const NATIVE: Case[] = [
  {
    name: 'an unknown scenario (enum)',
    method: 'POST',
    url: '/v1/sim/intent',
    payload: { reservation_id: 'r', amount: 1, scenario: 'explode' },
    issue: ['body', '/scenario', 'enum', 'must be one of approve, fail, delay, random, mix'],
  },
  {
    name: 'a lower-case currency (format)',
    method: 'POST',
    url: '/v1/sim/intent',
    payload: { reservation_id: 'r', amount: 1, currency: 'krw' },
    issue: ['body', '/currency', 'format', 'must be an ISO 4217 currency code such as KRW, USD or EUR'],
  },
  {
    // 2026-12-05: any three upper-case letters were taken, and XYZ made a payment.
    name: 'a currency that is no ISO 4217 code (format)',
    method: 'POST',
    url: '/v1/sim/intent',
    payload: { reservation_id: 'r', amount: 1, currency: 'XYZ' },
    issue: ['body', '/currency', 'format', 'must be an ISO 4217 currency code such as KRW, USD or EUR'],
  },
  {
    name: 'an ftp webhook_url (format)',
    method: 'POST',
    url: '/v1/sim/intent',
    payload: { reservation_id: 'r', amount: 1, webhook_url: 'ftp://x.example/h' },
    issue: ['body', '/webhook_url', 'format', 'must be an absolute http(s) URL'],
  },
  {
    name: 'a test webhook of an unknown type (enum)',
    method: 'POST',
    url: '/v1/sim/webhook/test',
    payload: { payment_intent_id: 'pay_x', type: 'payment.exploded', webhook_url: 'http://127.0.0.1:1/h' },
    issue: ['body', '/type', 'enum', 'must be one of payment.approved, payment.failed'],
  },
  {
    name: 'an unknown status filter (enum, querystring)',
    method: 'GET',
    url: '/v1/sim/intents?status=DONE',
    issue: ['querystring', '/status', 'enum', 'must be one of PENDING, APPROVED, FAILED, CANCELLED, PARTIALLY_REFUNDED, REFUNDED'],
  },
  {
    name: 'a cursor that is not an intent id (pattern, querystring)',
    method: 'GET',
    url: '/v1/sim/intents?cursor=abc',
    issue: ['querystring', '/cursor', 'pattern', 'must be pay_ followed by a 26-character ULID'],
  },
  {
    name: 'a delivery cursor that is not a delivery id (pattern, querystring)',
    method: 'GET',
    url: '/v1/sim/webhooks/deliveries?cursor=pay_01JD0000000000000000000000',
    issue: ['querystring', '/cursor', 'pattern', 'must be whd_ followed by a 26-character ULID'],
  },
  {
    name: 'an Idempotency-Key with a space (pattern, headers)',
    method: 'POST',
    url: '/v1/sim/intent',
    headers: { 'idempotency-key': 'has space' },
    payload: { reservation_id: 'r', amount: 1 },
    issue: ['headers', '/idempotency-key', 'pattern', 'must be visible ASCII characters only (no spaces)'],
  },
];

describe('the native API: message and details say the rule in words', () => {
  it.each(NATIVE)('$name', async ({ method, url, headers, payload, issue }) => {
    const res = await t.app.inject({ method, url, ...(headers === undefined ? {} : { headers }), ...(payload === undefined ? {} : { payload }) });
    const [where, field, rule, message] = issue;
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'VALIDATION_FAILED', message: `${where} ${field}: ${message}`, details: [{ in: where, field, rule, message }], trace_id: expect.any(String) },
    });
  });
});

describe('the bookings API: {"error": "<in> <field>: <rule in words>", "code"}', () => {
  it.each([
    ['a webhookUrl that is not http(s) (format)', 'POST', '/bookings', { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CARD', webhookUrl: 'mailto:x@example.com' }, {}, 'body /webhookUrl: must be an absolute http(s) URL'],
    ['a cursor that is not a booking id (pattern)', 'GET', '/bookings/my?cursor=pay_01JD0000000000000000000000', undefined, {}, 'querystring /cursor: must be bk_ followed by a 26-character ULID'],
    [
      'an Idempotency-Key with a space (pattern)',
      'POST',
      '/bookings',
      { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CARD' },
      { 'idempotency-key': 'has space' },
      'headers /idempotency-key: must be visible ASCII characters only (no spaces)',
    ],
  ] as const)('%s', async (_name, method, url, payload, headers, error) => {
    const res = await t.app.inject({ method, url, headers: { ...USER, ...headers }, ...(payload === undefined ? {} : { payload }) });
    expect([res.statusCode, res.json()]).toEqual([400, { error, code: 'VALIDATION_FAILED' }]);
  });
});

describe('the payment-service API keeps its Korean messages', () => {
  it.each([
    ['an unknown paymentMethod (enum)', { reservationId: 'bk_01JD0000000000000000000000', paymentMethod: 'bitcoin' }, '지원하지 않는 결제 수단입니다.'],
    ['a reservationId that is not a booking id (pattern)', { reservationId: 'res_1', paymentMethod: 'kakao_pay' }, '유효하지 않은 예약 ID입니다.'],
  ])('%s', async (_name, payload, error) => {
    const token = await new SignJWT({ userId: 'user_test_001' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(t.clock.now() / 1000) + 600).sign(new TextEncoder().encode(JWT_SECRET));
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { authorization: `Bearer ${token}` }, payload });
    expect([res.statusCode, res.json()]).toEqual([400, { error }]);
  });
});

describe('every rule of a request has its words', () => {
  /** Every schema of a request in the OpenAPI document: parameters (query, path, headers) and bodies. */
  function requestSchemas(doc: { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string; schema?: unknown }>; requestBody?: { content?: Record<string, { schema?: unknown }> } }>> }): Array<[string, unknown]> {
    const found: Array<[string, unknown]> = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        for (const p of op.parameters ?? []) found.push([`${method.toUpperCase()} ${path} ${p.in} ${p.name}`, p.schema]);
        for (const [type, content] of Object.entries(op.requestBody?.content ?? {})) found.push([`${method.toUpperCase()} ${path} body ${type}`, content.schema]);
      }
    }
    return found;
  }

  /** Where a `pattern` has no `x-pattern-description`, or a `format` no words. */
  function undescribed(where: string, schema: unknown, out: string[]): void {
    if (Array.isArray(schema)) {
      schema.forEach((item, i) => undescribed(`${where}/${i}`, item, out));
      return;
    }
    if (typeof schema !== 'object' || schema === null) return;
    const s = schema as Record<string, unknown>;
    if (typeof s.pattern === 'string' && typeof s[PATTERN_DESCRIPTION] !== 'string') out.push(`${where}: pattern ${s.pattern}`);
    if (typeof s.format === 'string' && FORMAT_DESCRIPTIONS[s.format] === undefined) out.push(`${where}: format ${s.format}`);
    for (const [key, value] of Object.entries(s)) if (key !== 'examples' && key !== 'example' && key !== 'default') undescribed(`${where}/${key}`, value, out);
  }

  it('each pattern of a request schema carries x-pattern-description (kept in the OpenAPI document), and each format is in FORMAT_DESCRIPTIONS', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json();
    const schemas = requestSchemas(doc);
    expect(schemas.length).toBeGreaterThan(10);
    // Not vacuous: the cursors, the Idempotency-Key and the payment service's reservationId at least.
    expect(JSON.stringify(schemas).match(/"pattern":/g)?.length).toBeGreaterThanOrEqual(5);
    const missing: string[] = [];
    for (const [where, schema] of schemas) undescribed(where, schema, missing);
    expect(missing).toEqual([]);
    expect(JSON.stringify(doc)).toContain('"x-pattern-description":"visible ASCII characters only (no spaces)"');
  });
});
