import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { sample } from '../../src/core/faults/distributions.ts';
import type { FaultRule } from '../../src/core/faults/model.ts';
import { createStreams } from '../../src/core/random.ts';
import { buildTestApp, storedIntents, type TestApp } from '../helpers/app.ts';
import { eventually } from '../helpers/receiver.ts';

/**
 * Request fault rules (issue 15) applied to every dialect: matching, latency, error, timeout,
 * response_lost, outcome, X-Sim-Rule and the hits metric. Connection resets are observed by a real
 * client (undici) on a listening server; waits go through the app's `faultWait` seam, which
 * records the planned delays and returns at once, so nothing here depends on timing.
 */

let t: TestApp;
/** Every wait a rule asked for, in ms, in order. */
let waits: number[];
let agent: Agent | undefined;

async function start(env: Record<string, string> = {}): Promise<void> {
  waits = [];
  t = await buildTestApp(env, { faultWait: async (ms) => void waits.push(ms) });
}
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await t.app.close();
});

async function rule(body: unknown): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: body as object });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id;
}
const intent = (body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'rsv_f', amount: 15000, ...body }, headers });
const ruleView = async (id: string) => (await t.app.inject({ url: `/v1/sim/rules/${id}` })).json();

async function listen(): Promise<string> {
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  agent = new Agent({ connections: 2, headersTimeout: 10_000, bodyTimeout: 10_000 });
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}
/** The error a client sees when the server resets the connection instead of answering. */
async function resetSeen(promise: Promise<unknown>): Promise<string> {
  const error = (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as (Error & { code?: string; cause?: { code?: string } }) | undefined;
  expect(error, 'the request failed').toBeDefined();
  return error?.code ?? error?.cause?.code ?? String(error);
}

describe('error: the status, Retry-After and a body in the dialect’s own shape; nothing committed', () => {
  it.each([
    ['native', 'POST', '/v1/sim/intent', 503, 2, { error: { code: 'SERVICE_UNAVAILABLE', message: 'The payment gateway is unavailable; retry after Retry-After seconds.', trace_id: expect.any(String) } }],
    ['bookings', 'GET', '/performances', 429, null, { error: 'Too many requests; retry after Retry-After seconds.', code: 'RATE_LIMITED' }],
    ['payment-service', 'GET', '/api/v1/payments/methods', 500, null, { error: '결제 처리 중 오류가 발생했습니다.' }],
    ['payment-server-v2', 'GET', '/api/v2/pending-payments', 502, 5, { detail: 'The payment gateway answered badly; the request may be retried.' }],
    ['fluxpay', 'GET', '/api/v1/orders/:orderId', 504, null, { isSuccess: false, code: 'COMMON_504', message: 'The payment gateway did not answer in time; the request may be retried.', result: null }],
  ] as const)('%s', async (dialect, method, route, status, retryAfter, body) => {
    await start();
    const id = await rule({ match: { dialect, method, route }, action: { type: 'error', status, retry_after_seconds: retryAfter } });
    const url = route.replace(':orderId', 'ord_missing');
    const res = await t.app.inject({ method, url, headers: { 'x-user-id': 'u1' }, ...(method === 'POST' ? { payload: { reservation_id: 'r', amount: 1 } } : {}) });
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['x-sim-rule']).toBe(id);
    expect(res.headers['retry-after']).toBe(retryAfter === null ? (status === 429 ? '1' : undefined) : String(retryAfter));
    expect(res.json()).toEqual(body);
  });

  it('a 503 without retry_after_seconds carries Retry-After: 1 in every dialect, as a 429 does (its body says to use it); a 500, 502 or 504 without one carries none, and no body names it', async () => {
    await start();
    const routes = [
      ['native', '/v1/sim/intents'],
      ['bookings', '/performances'],
      ['payment-service', '/api/v1/payments/methods'],
      ['payment-server-v2', '/api/v2/pending-payments'],
      ['fluxpay', '/api/v1/orders/ord_01KBA7Q4C8D2F6H0J4M8P2R6T0'],
    ] as const;
    const unavailable = 'The payment gateway is unavailable; retry after Retry-After seconds.';
    const bodies = (code: string, message: string, korean: string) => [
      { error: { code, message, trace_id: expect.any(String) } },
      { error: message, code },
      { error: korean },
      { detail: message },
      { isSuccess: false, code: `COMMON_${code === 'SERVICE_UNAVAILABLE' ? 503 : code === 'BAD_GATEWAY' ? 502 : 504}`, message, result: null },
    ];
    const cases = [
      [503, '1', bodies('SERVICE_UNAVAILABLE', unavailable, '서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.')],
      [502, undefined, bodies('BAD_GATEWAY', 'The payment gateway answered badly; the request may be retried.', '결제 처리 중 오류가 발생했습니다.')],
      [504, undefined, bodies('GATEWAY_TIMEOUT', 'The payment gateway did not answer in time; the request may be retried.', '결제 처리 중 오류가 발생했습니다.')],
    ] as const;
    for (const [status, retryAfter, expected] of cases) {
      const id = await rule({ match: { headers: { 'x-test-case': `f${status}` } }, action: { type: 'error', status } });
      expect((await ruleView(id)).action).toEqual({ type: 'error', status, retry_after_seconds: retryAfter === undefined ? null : 1 });
      const seen = [];
      for (const [, url] of routes) {
        const res = await t.app.inject({ url, headers: { 'x-test-case': `f${status}`, 'x-user-id': 'u1' } });
        seen.push([res.statusCode, res.headers['content-type'], res.headers['x-sim-rule'], res.headers['retry-after'], res.json()]);
      }
      expect(seen).toEqual(expected.map((body) => [status, 'application/json; charset=utf-8', id, retryAfter, body]));
      expect((await t.app.inject({ url: '/metrics' })).body).toContain(`fault_rule_hits_total{rule_id="${id}",action="error",sim_namespace="default"} 5\n`);
    }
    // A 503 rule stored without one (by a version before 2026-12-04, kept in Redis or from FAULTS_FILE) is sent and shown with 1 too.
    await t.app.inject({ method: 'DELETE', url: '/v1/sim/rules' });
    const earlier = await t.app.stores.faultRules.create('default', { id: 'rule_earlier', createdAt: t.clock.now(), enabled: true, name: null, target: 'request', match: { dialect: null, method: null, route: null, headers: {}, body: {} }, probability: 1, count: null, window: { from: null, until: null }, action: { type: 'error', status: 503, retryAfterSeconds: null } } satisfies FaultRule);
    expect(earlier).toMatchObject({ ok: true });
    const res = await t.app.inject({ url: '/v1/sim/intents' });
    expect([res.statusCode, res.headers['x-sim-rule'], res.headers['retry-after'], res.json()]).toEqual([503, 'rule_earlier', '1', { error: { code: 'SERVICE_UNAVAILABLE', message: unavailable, trace_id: expect.any(String) } }]);
    expect((await ruleView('rule_earlier')).action).toEqual({ type: 'error', status: 503, retry_after_seconds: 1 });
  });

  it('payment-service: a 429 says so, in Korean as its other messages (before: the 400 "잘못된 요청입니다.")', async () => {
    await start();
    const id = await rule({ match: { dialect: 'payment-service', headers: { 'x-test-case': 'f4' } }, action: { type: 'error', status: 429 } });
    const res = await t.app.inject({ url: '/api/v1/payments/methods', headers: { 'x-test-case': 'f4' } });
    expect([res.statusCode, res.headers['content-type'], res.headers['x-sim-rule'], res.headers['retry-after']]).toEqual([429, 'application/json; charset=utf-8', id, '1']);
    expect(res.json()).toEqual({ error: '요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.' });
    expect((await t.app.inject({ url: '/metrics' })).body.split('\n').filter((line) => line.startsWith('fault_rule_hits_total{'))).toEqual([`fault_rule_hits_total{rule_id="${id}",action="error",sim_namespace="default"} 1`]);
  });

  it('creates nothing: a native create answered 503 stored no intent, and a rule on /v1/sim/** leaves the rules API alone', async () => {
    await start();
    const id = await rule({ match: { route: '/v1/sim/**' }, action: { type: 'error', status: 503 } });
    expect((await intent()).statusCode).toBe(503);
    expect(await storedIntents(t)).toBe(0);
    expect((await ruleView(id)).hits).toBe(1);
    const del = await t.app.inject({ method: 'DELETE', url: '/v1/sim/rules' });
    expect(del.json()).toEqual({ deleted: 1 });
    expect((await intent()).statusCode).toBe(200);
  });

  it('beside an outcome rule (and a latency rule), the error is the answer and nothing is committed: the route never runs, the outcome’s hit is given back (a user test: the payment was made behind the 502, the route answered too)', async () => {
    await start();
    const logs: string[] = [];
    t.app.log.warn = ((...args: unknown[]) => void logs.push(JSON.stringify(args))) as typeof t.app.log.warn;
    const lat = await rule({ id: 'lat', match: { route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'fixed', params: { ms: 100 } } });
    const out = await rule({ id: 'out', match: { route: '/v1/sim/intent' }, count: 5, action: { type: 'outcome', failure_code: 'insufficient_funds' } });
    const e502 = await rule({ id: 'e502', match: { route: '/v1/sim/intent' }, action: { type: 'error', status: 502 } });
    const res = await intent({ reservation_id: 'r-err-out' });
    expect([res.statusCode, res.headers['x-sim-rule'], res.json().error.code]).toEqual([502, `${lat}, ${e502}`, 'BAD_GATEWAY']);
    // Given time for a route that ran behind the answer to store its intent.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await storedIntents(t)).toBe(0);
    expect(await ruleView(out)).toMatchObject({ hits: 0, matched: 1, remaining: 5 });
    // /api/v2 likewise: no payment, no callback.
    const v2Out = await rule({ match: { dialect: 'payment-server-v2', route: '/api/v2/payments' }, action: { type: 'outcome', failure_code: 'card_declined' } });
    const v2Err = await rule({ match: { dialect: 'payment-server-v2', route: '/api/v2/payments' }, action: { type: 'error', status: 503 } });
    const v2 = await t.app.inject({ method: 'POST', url: '/api/v2/payments', payload: { tx_id: 'tx_e2', order_id: 1, user_id: 1, amount: 1000, callback_url: 'http://127.0.0.1:9/cb' } });
    expect([v2.statusCode, v2.headers['x-sim-rule']]).toEqual([503, v2Err]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await t.app.inject({ url: '/api/v2/payments/pay_tx_e2' })).statusCode).toBe(404);
    expect(await ruleView(v2Out)).toMatchObject({ hits: 0, matched: 1 });
    expect(logs.filter((line) => line.includes('Reply was already sent'))).toEqual([]);
  });

  it('a rule on /v1/sim/** leaves the simulator’s own routes alone: the webhook delivery log, replays, test sends, disabled URLs, the report and the namespaces answer as without it', async () => {
    await start();
    const id = await rule({ match: { route: '/v1/sim/**' }, action: { type: 'error', status: 503 } });
    expect((await t.app.inject({ url: '/v1/sim/intents' })).statusCode).toBe(503);
    const answers = async () => {
      const got: Array<[string, number, unknown, string | undefined]> = [];
      for (const [method, url, payload] of [
        ['GET', '/v1/sim/webhooks/deliveries', undefined],
        ['GET', '/v1/sim/webhooks/disabled-urls', undefined],
        ['DELETE', '/v1/sim/webhooks/disabled-urls?url=http%3A%2F%2F127.0.0.1%3A9%2Fhooks', undefined],
        ['POST', '/v1/sim/webhooks/deliveries/whd_01KBA7Q4B1K4N9Q2V6X0Z3D5JE/replay', {}],
        ['POST', '/v1/sim/webhook/test', { payment_intent_id: 'pay_01KBA7Q4B1K4N9Q2V6X0Z3D5JE', type: 'payment.approved', webhook_url: 'http://127.0.0.1:9/hooks' }],
        ['GET', '/v1/sim/namespaces', undefined],
      ] as const) {
        const res = await t.app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
        got.push([`${method} ${url}`, res.statusCode, res.json(), res.headers['x-sim-rule'] as string | undefined]);
      }
      return got;
    };
    const shaped = await answers();
    expect(shaped.map(([, , , rule]) => rule)).toEqual(shaped.map(() => undefined));
    const docs = await Promise.all(['/openapi.json', '/docs', '/healthz', '/metrics'].map(async (url) => (await t.app.inject({ url })).statusCode));
    expect(docs).toEqual([200, 302, 200, 200]);
    expect((await ruleView(id)).matched).toBe(1);
    // The same answers as with no rule at all (ids and trace ids aside).
    await t.app.inject({ method: 'DELETE', url: '/v1/sim/rules' });
    const plain = (answers: Array<[string, number, unknown, string | undefined]>) => JSON.stringify(answers).replace(/"trace_id":"[^"]*"/g, '');
    expect(plain(shaped)).toBe(plain(await answers()));
    expect(shaped.map(([what, status]) => [what, status])).toEqual([
      ['GET /v1/sim/webhooks/deliveries', 200],
      ['GET /v1/sim/webhooks/disabled-urls', 200],
      ['DELETE /v1/sim/webhooks/disabled-urls?url=http%3A%2F%2F127.0.0.1%3A9%2Fhooks', 404],
      ['POST /v1/sim/webhooks/deliveries/whd_01KBA7Q4B1K4N9Q2V6X0Z3D5JE/replay', 404],
      ['POST /v1/sim/webhook/test', 404],
      ['GET /v1/sim/namespaces', 200],
    ]);
  });
});

describe('matching', () => {
  it('by dialect, method, route, header and body fields (numeric range, prefix); others pass untouched', async () => {
    await start();
    const id = await rule({ match: { dialect: 'native', method: 'POST', route: '/v1/sim/intent', headers: { 'x-test-case': { prefix: 'big-' } }, body: { amount: { gte: 1_000_000 }, currency: 'KRW' } }, action: { type: 'error', status: 500 } });
    const big = { amount: 1_000_000, currency: 'KRW' };
    expect((await intent(big, { 'x-test-case': 'big-1' })).statusCode).toBe(500);
    expect((await intent({ amount: 999_999, currency: 'KRW' }, { 'x-test-case': 'big-1' })).statusCode).toBe(200);
    expect((await intent({ ...big, currency: 'USD' }, { 'x-test-case': 'big-1' })).statusCode).toBe(200);
    expect((await intent(big, { 'x-test-case': 'small-1' })).statusCode).toBe(200);
    expect((await intent(big)).statusCode).toBe(200);
    const other = await t.app.inject({ url: '/v1/sim/intents?reservation_id=rsv_f', headers: { 'x-test-case': 'big-1' } });
    expect(other.statusCode).toBe(200);
    expect(other.headers['x-sim-rule']).toBeUndefined();
    expect(await ruleView(id)).toMatchObject({ hits: 1, matched: 1 });
  });

  it('probability with RANDOM_SEED: the same requests pick the same matches, from the faults:default stream; count stops at N; the metric counts hits and leaves with the rule', async () => {
    await start({ RANDOM_SEED: '7' });
    const id = await rule({ match: { route: '/performances' }, probability: 0.3, count: 4, action: { type: 'error', status: 503 } });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await t.app.inject({ url: '/performances', headers: { 'x-user-id': 'u1' } })).statusCode);
    // The stream the rules draw from, drawn the same way: one number per match of a rule with 0 < p < 1.
    const stream = createStreams(7)('faults:default');
    const expected: number[] = [];
    let hits = 0;
    for (let i = 0; i < 40; i++) {
      const sampled = stream.next() < 0.3;
      const applied = sampled && hits < 4;
      if (applied) hits++;
      expected.push(applied ? 503 : 200);
    }
    expect(statuses).toEqual(expected);
    expect(statuses.filter((s) => s === 503)).toHaveLength(4);
    expect(await ruleView(id)).toMatchObject({ hits: 4, matched: 40, remaining: 0, last_hit_at: expect.any(String) });
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain(`fault_rule_hits_total{rule_id="${id}",action="error",sim_namespace="default"} 4`);
    await t.app.inject({ method: 'DELETE', url: `/v1/sim/rules/${id}` });
    expect((await t.app.inject({ url: '/metrics' })).body).not.toContain(id);
  });

  it('a header named like an Object property (`constructor`) is a header like any other (2026-12-05: refused as "given twice", and a request without it would have read the prototype)', async () => {
    await start();
    const id = await rule({ match: { dialect: 'native', headers: { constructor: { prefix: 'f' }, toString: 'x' } }, action: { type: 'error', status: 502 } });
    const plain = await intent();
    expect([plain.statusCode, plain.headers['x-sim-rule']]).toEqual([200, undefined]);
    const half = await intent({}, { constructor: 'foo' });
    expect([half.statusCode, half.headers['x-sim-rule']]).toEqual([200, undefined]);
    const both = await intent({}, { constructor: 'foo', tostring: 'x' });
    expect([both.statusCode, both.headers['x-sim-rule']]).toEqual([502, id]);
  });

  it('a rule on Content-Type matches a bodyless POST that names one, as sent (a review of 17c237e, which took an empty body’s type off its headers: the cancel went through)', async () => {
    await start();
    const made = await intent({ scenario: 'delay' });
    const paymentId = made.json().payment_intent_id as string;
    const id = await rule({ match: { method: 'POST', route: '/v1/sim/intents/:id/cancel', headers: { 'content-type': { prefix: 'application/json' } } }, action: { type: 'error', status: 503, retry_after_seconds: 1 } });
    const cancel = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${paymentId}/cancel`, headers: { 'content-type': 'application/json', 'content-length': '0' } });
    expect([cancel.statusCode, cancel.headers['x-sim-rule']]).toEqual([503, id]);
    expect((await t.app.inject({ url: `/v1/sim/intents/${paymentId}` })).json().status).toBe('PENDING');
  });

  it('a header value beyond ASCII matches what a client sends over HTTP, its UTF-8 bytes (a user test: before 2026-12-05 `x-name: 결제` never matched)', async () => {
    await start();
    const id = await rule({ match: { dialect: 'native', headers: { 'x-name': '결제' } }, action: { type: 'error', status: 502 } });
    const base = await listen();
    // node:http writes a latin1 string byte for byte: these are the UTF-8 bytes of the value, as curl sends them.
    const send = (value: string) =>
      new Promise<{ status: number; rule: string | undefined }>((resolve, reject) => {
        const req = httpRequest(`${base}/v1/sim/intents/pay_x`, { headers: { 'x-name': Buffer.from(value, 'utf8').toString('latin1') } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, rule: res.headers['x-sim-rule'] as string | undefined }));
        });
        req.on('error', reject);
        req.end();
      });
    expect(await send('결제')).toEqual({ status: 502, rule: id });
    expect(await send('취소')).toEqual({ status: 404, rule: undefined });
    expect((await ruleView(id)).hits).toBe(1);
  });

  it('a time window: before, inside and after it (on the app’s clock)', async () => {
    await start();
    await rule({ match: { route: '/api/v2/pending-payments' }, window: { from: 1000, until: 2000 }, action: { type: 'error', status: 503 } });
    const status = async () => (await t.app.inject({ url: '/api/v2/pending-payments' })).statusCode;
    expect(await status()).toBe(200);
    await t.clock.advance(1000);
    expect(await status()).toBe(503);
    await t.clock.advance(1000);
    expect(await status()).toBe(200);
  });
});

describe('latency', () => {
  it('waits the sampled delay before the handler, and marks the answer with X-Sim-Rule', async () => {
    await start();
    const id = await rule({ match: { route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'fixed', params: { ms: 250 } } });
    const res = await intent();
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-sim-rule']).toBe(id);
    expect(waits).toEqual([250]);
  });

  it('lognormal p50 200 / p99 2000 with RANDOM_SEED: 5,000 requests get the seeded samples, p50 and p99 within ±10 %', async () => {
    await start({ RANDOM_SEED: '42' });
    const distribution = { p50: 200, p99: 2000 };
    await rule({ match: { dialect: 'bookings', route: '/performances' }, action: { type: 'latency', distribution: 'lognormal', params: distribution } });
    for (let i = 0; i < 5000; i++) await t.app.inject({ url: '/performances', headers: { 'x-user-id': 'u1' } });
    const stream = createStreams(42)('faults:default');
    const expected = Array.from({ length: 5000 }, () => sample({ kind: 'lognormal', ...distribution }, stream));
    expect(waits).toEqual(expected);
    const sorted = [...waits].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.ceil(q * sorted.length) - 1] as number;
    expect(Math.abs(at(0.5) - 200) / 200).toBeLessThan(0.1);
    expect(Math.abs(at(0.99) - 2000) / 2000).toBeLessThan(0.1);
  }, 120_000);

  it('in real time (no seam): a client that gives up before the delay ends does not cut it short; the payment is made when the delay ends, as a slow gateway carries out a request whose client gave up', async () => {
    t = await buildTestApp();
    await rule({ match: { route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'fixed', params: { ms: 800 } } });
    const base = await listen();
    const sentAt = Date.now();
    const body = JSON.stringify({ reservation_id: 'rsv_gone', amount: 15000 });
    const sent = request(`${base}/v1/sim/intent`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(100) });
    await expect(sent).rejects.toThrow();
    // Well before the delay ends (from the send), nothing is made: the client's leaving did not end the wait.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, sentAt + 400 - Date.now())));
    expect(await storedIntents(t)).toBe(0);
    await eventually(async () => ((await storedIntents(t)) === 1 ? true : undefined), 'the intent made when the delay ended', 5000);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(800);
  });
});

describe('outcome: the core decision of matching payments', () => {
  it('native intents: a forced failure code beats scenario approve; a forced approval beats a declining card', async () => {
    await start();
    await rule({ match: { route: '/v1/sim/intent', headers: { 'x-test-case': 'declines' } }, action: { type: 'outcome', failure_code: 'insufficient_funds' } });
    await rule({ match: { route: '/v1/sim/intent', headers: { 'x-test-case': 'approves' } }, action: { type: 'outcome', approve: true } });
    const declined = (await intent({ scenario: 'approve' }, { 'x-test-case': 'declines' })).json().payment_intent_id;
    const approved = (await intent({ card: { number: '4000000000000002' } }, { 'x-test-case': 'approves' })).json().payment_intent_id;
    const untouched = (await intent({ scenario: 'approve' })).json().payment_intent_id;
    await t.clock.advance(1000);
    const read = async (id: string) => (await t.app.inject({ url: `/v1/sim/intents/${id}` })).json();
    expect(await read(declined)).toMatchObject({ status: 'FAILED', failure_code: 'insufficient_funds', scenario: 'approve' });
    expect(await read(approved)).toMatchObject({ status: 'APPROVED', failure_code: null, scenario: 'card' });
    expect(await read(untouched)).toMatchObject({ status: 'APPROVED', failure_code: null });
  });

  it('bookings: a forced failure code declines a payment whose CVV approves', async () => {
    await start({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' });
    const user = { 'x-user-id': 'user_forced' };
    const booking = await t.app.inject({ method: 'POST', url: '/bookings', headers: user, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
    expect(booking.statusCode, booking.body).toBe(201);
    const id = await rule({ match: { dialect: 'bookings', route: '/payments/execute' }, action: { type: 'outcome', failure_code: 'insufficient_funds' } });
    const paid = t.app.inject({ method: 'POST', url: '/payments/execute', headers: user, payload: { bookingId: booking.json().bookingId, paymentMethodToken: 'tok_visa', cvv: '120' } });
    await t.clock.advance(0);
    const res = await paid;
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['x-sim-rule']).toBe(id);
    expect(res.json()).toMatchObject({ finalStatus: 'FAILURE', pgMockData: { isSuccess: false, failureCode: 'insufficient_funds' } });
  });

  it('/api/v2 payments: a forced failure fails the payment the scenario would complete', async () => {
    await start();
    const id = await rule({ match: { dialect: 'payment-server-v2', route: '/api/v2/payments' }, action: { type: 'outcome', failure_code: 'card_declined' } });
    const res = await t.app.inject({ method: 'POST', url: '/api/v2/payments', payload: { tx_id: 'tx_forced', order_id: 1, user_id: 1, amount: 1000, callback_url: 'http://127.0.0.1:9/cb' } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['x-sim-rule']).toBe(id);
    expect(res.json().status).toBe('PAYMENT_FAILED');
  });

  it('FluxPay: a forced failure declines a confirm the card rules approve; a forced approval beats X-Sim-Scenario: fail; a subscription charge is forced too', async () => {
    await start();
    const post = (url: string, payload: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> => t.app.inject({ method: 'POST', url, payload: payload as object, headers });
    const payFor = async (cvv: string) => {
      const order = (await post('/api/v1/orders', { userId: 'user_forced', serviceId: 'image-studio', orderName: 'Forced', amount: 5000, currency: 'KRW' })).json().result;
      const payment = (await post('/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4111111111111111', cvv, expMonth: 12, expYear: 2030 } })).json().result;
      return { paymentKey: payment.paymentKey as string, orderId: order.orderId as string, amount: 5000 };
    };
    const declines = await rule({ match: { dialect: 'fluxpay', route: '/api/v1/payments/confirm', headers: { 'x-test-case': 'declines' } }, action: { type: 'outcome', failure_code: 'insufficient_funds' } });
    const approves = await rule({ match: { dialect: 'fluxpay', route: '/api/v1/payments/confirm', headers: { 'x-test-case': 'approves' } }, action: { type: 'outcome', approve: true } });
    const declined = await post('/api/v1/payments/confirm', await payFor('120'), { 'x-test-case': 'declines' });
    expect([declined.statusCode, declined.headers['x-sim-rule'], declined.json().code, declined.json().message]).toEqual([402, declines, 'PAY_002', expect.stringContaining('insufficient_funds')]);
    const approved = await post('/api/v1/payments/confirm', await payFor('123'), { 'x-test-case': 'approves', 'x-sim-scenario': 'fail' });
    expect([approved.statusCode, approved.headers['x-sim-rule']]).toEqual([200, approves]);
    expect(approved.json().result).toMatchObject({ status: 'APPROVED', failureCode: null, decidedBy: 'rule' });
    const untouched = await post('/api/v1/payments/confirm', await payFor('120'));
    expect([untouched.statusCode, untouched.headers['x-sim-rule'], untouched.json().result.status]).toEqual([200, undefined, 'APPROVED']);

    const plan = (await t.app.inject({ url: '/api/v1/subscriptions/plans' })).json().result.items[0];
    const charged = await rule({ match: { dialect: 'fluxpay', route: '/api/v1/subscriptions' }, action: { type: 'outcome', failure_code: 'do_not_honor' } });
    const subscribed = await post('/api/v1/subscriptions', { userId: 'user_forced', planId: plan.planId, card: { number: '4111111111111111', cvv: '120', expMonth: 12, expYear: 2030 } });
    expect([subscribed.statusCode, subscribed.headers['x-sim-rule'], subscribed.json().code, subscribed.json().message]).toEqual([402, charged, 'PAY_002', expect.stringContaining('do_not_honor')]);
  });

  it('FluxPay: a payment a rule decided reads decidedBy "rule", declined over an approving 4242 card or approved over X-Sim-Scenario: fail; without the rule the card decides', async () => {
    await start();
    const post = (url: string, payload: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> => t.app.inject({ method: 'POST', url, payload: payload as object, headers });
    const payFor = async () => {
      const order = (await post('/api/v1/orders', { userId: 'user_f7', serviceId: 'image-studio', orderName: 'F7', amount: 5000, currency: 'KRW' })).json().result;
      const payment = (await post('/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } })).json().result;
      return { paymentKey: payment.paymentKey as string, orderId: order.orderId as string, amount: 5000 };
    };
    const read = async (paymentKey: string) => (await t.app.inject({ url: `/api/v1/payments/${paymentKey}` })).json();
    const viewOf = (p: { paymentKey: string; orderId: string }, status: string, failureCode: string | null, decidedBy: string) => ({
      isSuccess: true,
      code: 'SUCCESS',
      message: 'Request succeeded.',
      result: {
        paymentKey: p.paymentKey,
        orderId: p.orderId,
        userId: 'user_f7',
        amount: 5000,
        currency: 'KRW',
        method: 'CARD',
        card: { last4: '4242', expMonth: 12, expYear: 2030 },
        easyPay: null,
        status,
        failureCode,
        decidedBy,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
        approvedAt: status === 'APPROVED' ? expect.any(String) : null,
        confirmedAt: null,
        failedAt: status === 'FAILED' ? expect.any(String) : null,
        cancelledAt: null,
      },
    });
    const declines = await rule({ match: { dialect: 'fluxpay', headers: { 'x-test-case': 'f7' } }, action: { type: 'outcome', failure_code: 'card_declined' } });
    const approves = await rule({ match: { dialect: 'fluxpay', headers: { 'x-test-case': 'f7-approve' } }, action: { type: 'outcome', approve: true } });

    const first = await payFor();
    const declined = await post('/api/v1/payments/confirm', first, { 'x-test-case': 'f7' });
    expect([declined.statusCode, declined.headers['x-sim-rule'], declined.json()]).toEqual([402, declines, { isSuccess: false, code: 'PAY_002', message: 'Payment approval failed: card_declined.', result: null }]);
    expect(await read(first.paymentKey)).toEqual(viewOf(first, 'FAILED', 'card_declined', 'rule'));

    const second = await payFor();
    const approved = await post('/api/v1/payments/confirm', second, { 'x-test-case': 'f7-approve', 'x-sim-scenario': 'fail' });
    expect([approved.statusCode, approved.headers['x-sim-rule']]).toEqual([200, approves]);
    expect(approved.json()).toEqual(viewOf(second, 'APPROVED', null, 'rule'));
    expect(await read(second.paymentKey)).toEqual(viewOf(second, 'APPROVED', null, 'rule'));

    const third = await payFor();
    const untouched = await post('/api/v1/payments/confirm', third);
    expect([untouched.statusCode, untouched.headers['x-sim-rule']]).toEqual([200, undefined]);
    expect(await read(third.paymentKey)).toEqual(viewOf(third, 'APPROVED', null, 'card'));
  });
});

describe('outcome rules match only the routes that take an outcome', () => {
  const metricOf = async (id: string) => (await t.app.inject({ url: '/metrics' })).body.match(new RegExp(`^fault_rule_hits_total\\{rule_id="${id}",action="outcome",sim_namespace="default"\\} .*$`, 'm'))?.[0];
  const unspent = (id: string, match: unknown, failureCode: string, count: number | null) => ({
    id,
    name: null,
    enabled: true,
    target: 'request',
    match,
    probability: 1,
    count,
    window: { from: null, until: null },
    action: { type: 'outcome', failure_code: failureCode },
    hits: 0,
    matched: 0,
    remaining: count,
    created_at: expect.any(String),
    last_hit_at: null,
  });

  it('a rule deleted while a request it decides is still held (a latency rule beside it) takes its series with it: the payment stored after the delete does not bring the series back; made again with its id, it counts again (a user test)', async () => {
    for (const remove of ['one', 'all'] as const) {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let heldNow!: () => void;
      const entered = new Promise<void>((resolve) => (heldNow = resolve));
      t = await buildTestApp({}, { faultWait: () => (heldNow(), held) });
      const id = await rule({ id: 'oc-mid', match: { route: '/v1/sim/intent' }, action: { type: 'outcome', failure_code: 'card_declined' } });
      await rule({ id: 'lat-mid', match: { route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'fixed', params: { ms: 1000 } } });
      const pending = intent();
      await entered;
      if (remove === 'one') expect((await t.app.inject({ method: 'DELETE', url: `/v1/sim/rules/${id}` })).statusCode).toBe(200);
      else expect((await t.app.inject({ method: 'DELETE', url: '/v1/sim/rules' })).json()).toEqual({ deleted: 2 });
      release();
      expect((await pending).statusCode).toBe(200);
      expect([remove, await metricOf(id)]).toEqual([remove, undefined]);
      // The same id made again: its hits count from 0.
      if (remove === 'all') {
        await rule({ id: 'oc-mid', match: { route: '/v1/sim/intent' }, action: { type: 'outcome', failure_code: 'card_declined' } });
        expect((await intent({ reservation_id: 'rsv_again' })).statusCode).toBe(200);
        expect(await metricOf(id)).toBe('fault_rule_hits_total{rule_id="oc-mid",action="outcome",sim_namespace="default"} 1');
      }
      await t.app.close();
    }
    t = await buildTestApp();
  });

  it('a hit decided by rules whose load a change here overtook is counted all the same (a review: a first mend of the series above dropped it, the rule unknown to the rules last reported)', async () => {
    t = await buildTestApp({}, { faultWait: async () => undefined });
    await rule({ id: 'lat', match: { route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'fixed', params: { ms: 1 } } });
    expect((await intent()).statusCode).toBe(200);
    await rule({ id: 'err', match: { route: '/v1/sim/intent' }, action: { type: 'error', status: 502 } });
    // The next request's load of the rules is held after it read them; a change made meanwhile overtakes it (it is not kept).
    const store = t.app.stores.faultRules;
    const list = store.list.bind(store);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let listed!: () => void;
    const read = new Promise<void>((resolve) => (listed = resolve));
    store.list = async (namespace: string) => {
      const rules = await list(namespace);
      listed();
      await held;
      return rules;
    };
    const pending = intent({ reservation_id: 'rsv_held' });
    await read;
    store.list = list;
    await rule({ id: 'hook', match: { url_prefix: 'http://127.0.0.1:1/' }, action: { type: 'duplicate' } });
    release();
    expect([(await pending).statusCode, (await pending).headers['x-sim-rule']]).toEqual([502, 'lat, err']);
    expect((await ruleView('err')).hits).toBe(1);
    expect((await t.app.inject({ url: '/metrics' })).body).toContain('fault_rule_hits_total{rule_id="err",action="error",sim_namespace="default"} 1\n');
  });

  it('bookings: POST /bookings is not matched (no X-Sim-Rule, count kept); the payment it then executes is decided by the rule', async () => {
    await start({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' });
    const match = { dialect: 'bookings', method: null, route: null, headers: { 'x-test-case': 'f1' }, body: {} };
    const id = await rule({ match: { dialect: 'bookings', headers: { 'x-test-case': 'f1' } }, count: 1, action: { type: 'outcome', failure_code: 'card_declined' } });
    const headers = { 'x-user-id': 'u_f1', 'x-test-case': 'f1' };
    const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers, payload: { performanceId: 'perf_002', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
    expect([booked.statusCode, booked.headers['x-sim-rule']]).toEqual([201, undefined]);
    const bookingId = booked.json().bookingId as string;
    expect(booked.json()).toEqual({ message: 'Booking and payment intent created. Please proceed to payment execution.', bookingId, totalAmount: 30000, seatIds: ['A1'], expiresAt: expect.any(String) });
    expect(await ruleView(id)).toEqual(unspent(id, match, 'card_declined', 1));
    expect(await metricOf(id)).toBeUndefined();

    const paid = t.app.inject({ method: 'POST', url: '/payments/execute', headers, payload: { bookingId, paymentMethodToken: 'tok_visa', cvv: '120' } });
    await t.clock.advance(0);
    const res = await paid;
    expect([res.statusCode, res.headers['x-sim-rule']]).toEqual([200, id]);
    expect(res.json()).toEqual({ message: 'Payment simulation finished with status: FAILURE', finalStatus: 'FAILURE', bookingId, pgMockData: { isSuccess: false, failureCode: 'card_declined', processedAt: expect.any(String) } });
    expect(await ruleView(id)).toEqual({ ...unspent(id, match, 'card_declined', 1), hits: 1, matched: 1, remaining: 0, last_hit_at: expect.any(String) });
    expect(await metricOf(id)).toBe(`fault_rule_hits_total{rule_id="${id}",action="outcome",sim_namespace="default"} 1`);
  });

  it('native: GET /v1/sim/intents is not matched; the next POST /v1/sim/intent is declined by the rule', async () => {
    await start();
    const match = { dialect: 'native', method: null, route: null, headers: {}, body: {} };
    const id = await rule({ match: { dialect: 'native' }, count: 1, action: { type: 'outcome', failure_code: 'insufficient_funds' } });
    const list = await t.app.inject({ url: '/v1/sim/intents' });
    expect([list.statusCode, list.headers['x-sim-rule']]).toEqual([200, undefined]);
    expect(list.json().data).toEqual([]);
    expect(await ruleView(id)).toEqual(unspent(id, match, 'insufficient_funds', 1));
    expect(await metricOf(id)).toBeUndefined();

    const created = await intent({ scenario: 'approve' });
    expect([created.statusCode, created.headers['x-sim-rule']]).toEqual([200, id]);
    await t.clock.advance(1000);
    const read = (await t.app.inject({ url: `/v1/sim/intents/${created.json().payment_intent_id}` })).json();
    expect(read).toMatchObject({ status: 'FAILED', failure_code: 'insufficient_funds', scenario: 'approve' });
    expect(await ruleView(id)).toEqual({ ...unspent(id, match, 'insufficient_funds', 1), hits: 1, matched: 1, remaining: 0, last_hit_at: expect.any(String) });
    expect(await metricOf(id)).toBe(`fault_rule_hits_total{rule_id="${id}",action="outcome",sim_namespace="default"} 1`);
  });

  it('a request that stores no payment (refused by validation or by the route, an idempotent replay) gives the hit back: the count is spent on payments only, and its answer does not name the rule (before, a 400 or a replay used it up)', async () => {
    await start();
    const match = { dialect: 'native', method: null, route: '/v1/sim/intent', headers: { 'x-test-case': 'cnt' }, body: {} };
    const id = await rule({ match: { dialect: 'native', route: '/v1/sim/intent', headers: { 'x-test-case': 'cnt' } }, count: 1, action: { type: 'outcome', failure_code: 'insufficient_funds' } });
    const headers = { 'x-test-case': 'cnt' };
    // Refused by validation: no X-Sim-Rule, the count kept (matched once), no hit in the metric.
    const refused = await intent({ amount: '12' }, headers);
    expect([refused.statusCode, refused.json().error.code, refused.headers['x-sim-rule']]).toEqual([400, 'VALIDATION_FAILED', undefined]);
    expect(await ruleView(id)).toEqual({ ...unspent(id, match, 'insufficient_funds', 1), matched: 1, last_hit_at: expect.any(String) });
    expect(await metricOf(id)).toBeUndefined();
    // The next payment is the one the rule declines, and an idempotent replay of it takes nothing.
    const first = await intent({ scenario: 'approve' }, { ...headers, 'idempotency-key': 'k-cnt' });
    expect([first.statusCode, first.headers['x-sim-rule']]).toEqual([200, id]);
    const replay = await intent({ scenario: 'approve' }, { ...headers, 'idempotency-key': 'k-cnt' });
    expect([replay.statusCode, replay.headers['idempotent-replayed'], replay.json()]).toEqual([200, 'true', first.json()]);
    expect(await ruleView(id)).toEqual({ ...unspent(id, match, 'insufficient_funds', 1), hits: 1, matched: 3, remaining: 0, last_hit_at: expect.any(String) });
    expect(await metricOf(id)).toBe(`fault_rule_hits_total{rule_id="${id}",action="outcome",sim_namespace="default"} 1`);
    await t.clock.advance(1000);
    expect((await t.app.inject({ url: `/v1/sim/intents/${first.json().payment_intent_id}` })).json()).toMatchObject({ status: 'FAILED', failure_code: 'insufficient_funds' });

    // /api/v2: a tx_id sent again is answered again, deciding nothing: the rule's next payment is still to come.
    const v2 = await rule({ match: { dialect: 'payment-server-v2', route: '/api/v2/payments' }, count: 2, action: { type: 'outcome', failure_code: 'card_declined' } });
    const pay = (txId: string) => t.app.inject({ method: 'POST', url: '/api/v2/payments', payload: { tx_id: txId, order_id: 1, user_id: 1, amount: 1000, callback_url: 'http://127.0.0.1:9/cb' } });
    expect((await pay('tx_a')).json().status).toBe('PAYMENT_FAILED');
    const again = await pay('tx_a');
    expect([again.headers['idempotent-replayed'], again.headers['x-sim-rule']]).toEqual(['true', undefined]);
    const second = await pay('tx_b');
    expect([second.json().status, second.headers['x-sim-rule']]).toEqual(['PAYMENT_FAILED', v2]);
    expect(await ruleView(v2)).toMatchObject({ hits: 2, matched: 3, remaining: 0 });

    // FluxPay: a confirm the route refuses (PAY_005, the amount) decides nothing; the one after is declined by the rule.
    const fp = await rule({ match: { dialect: 'fluxpay', route: '/api/v1/payments/confirm' }, count: 1, action: { type: 'outcome', failure_code: 'insufficient_funds' } });
    const post = (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, payload: payload as object });
    const order = (await post('/api/v1/orders', { userId: 'user_cnt', serviceId: 'image-studio', orderName: 'Count', amount: 5000, currency: 'KRW' })).json().result;
    const payment = (await post('/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4111111111111111', cvv: '123', expMonth: 12, expYear: 2030 } })).json().result;
    const wrong = await post('/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: order.orderId, amount: 4999 });
    expect([wrong.statusCode, wrong.json().code, wrong.headers['x-sim-rule']]).toEqual([400, 'PAY_005', undefined]);
    const declined = await post('/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: order.orderId, amount: 5000 });
    expect([declined.statusCode, declined.json().code, declined.headers['x-sim-rule']]).toEqual([402, 'PAY_002', fp]);
    expect(await ruleView(fp)).toMatchObject({ hits: 1, matched: 2, remaining: 0 });
  });

  it('payment-service: /api/v1/payments/process always pays (document 004 has no decline), so an outcome rule never matches it (one is refused since 2026-12-04; one stored before is kept, unmatched); a latency rule beside it still applies', async () => {
    const secret = 'a-secret-of-the-payment-service-test';
    await start({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0', JWT_SECRET: secret });
    const match = { dialect: 'payment-service', method: null, route: null, headers: {}, body: {} };
    const refused = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match: { dialect: 'payment-service' }, action: { type: 'outcome', failure_code: 'card_declined' } } });
    expect([refused.statusCode, refused.json().error.details]).toEqual([400, [{ field: '/match', rule: 'outcome_route', message: expect.stringMatching(/^matches none of the routes an outcome rule applies on/), in: 'body' }]]);
    // As a version before 2026-12-04 stored it (kept in Redis, or made from FAULTS_FILE).
    const id = 'rule_earlier';
    const stored = await t.app.stores.faultRules.create('default', { id, createdAt: t.clock.now(), enabled: true, name: null, target: 'request', match: { ...match, dialect: 'payment-service' }, probability: 1, count: null, window: { from: null, until: null }, action: { type: 'outcome', failureCode: 'card_declined' } } satisfies FaultRule);
    expect(stored).toMatchObject({ ok: true });
    const slow = await rule({ match: { dialect: 'payment-service' }, action: { type: 'latency', distribution: 'fixed', params: { ms: 7 } } });
    const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'u_ps' }, payload: { performanceId: 'perf_002', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
    const bookingId = booked.json().bookingId as string;
    const now = Math.floor(t.clock.now() / 1000);
    const token = await new SignJWT({ userId: 'u_ps' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(secret));
    const paid = t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { authorization: `Bearer ${token}` }, payload: { reservationId: bookingId, paymentMethod: 'naver_pay' } });
    await t.clock.advance(0);
    const res = await paid;
    expect([res.statusCode, res.headers['x-sim-rule'], waits]).toEqual([200, slow, [7]]);
    expect(res.json()).toEqual({ success: true, message: '결제가 완료되었습니다.', payment: { reservationId: bookingId, paymentMethod: '네이버페이', totalAmount: 30000, paidAt: expect.any(String) }, reservation: { performanceId: 'perf_002', seats: ['A1'] } });
    expect(await ruleView(id)).toEqual(unspent(id, match, 'card_declined', null));
    expect(await metricOf(id)).toBeUndefined();
  });
});

describe('connection resets, seen by a real client', () => {
  it('response_lost: the intent is committed, the client sees a reset, and its retry with the same Idempotency-Key gets the intent', async () => {
    await start();
    const base = await listen();
    const id = await rule({ match: { route: '/v1/sim/intent' }, count: 1, action: { type: 'response_lost' } });
    const send = () =>
      request(`${base}/v1/sim/intent`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'lost-1' }, body: JSON.stringify({ reservation_id: 'rsv_lost', amount: 5000 }) });
    expect(await resetSeen(send())).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    const list = await request(`${base}/v1/sim/intents?reservation_id=rsv_lost`, { dispatcher: agent });
    const { data } = (await list.body.json()) as { data: Array<{ payment_intent_id: string; status: string }> };
    expect(data).toHaveLength(1);
    expect(data[0]?.status).toBe('PENDING');
    const retry = await send();
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await retry.body.json()).toEqual({ payment_intent_id: data[0]?.payment_intent_id, status: 'PENDING', next: 'poll' });
    expect(await ruleView(id)).toMatchObject({ hits: 1, remaining: 0 });
  });

  it('response_lost loses any answer: a body validation refuses loses its 400 and spends the count, committing nothing (as the README says)', async () => {
    await start();
    const base = await listen();
    const id = await rule({ match: { route: '/v1/sim/intent' }, count: 1, action: { type: 'response_lost' } });
    const send = (amount: unknown) =>
      request(`${base}/v1/sim/intent`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reservation_id: 'rsv_refused', amount }) });
    expect(await resetSeen(send('five'))).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    expect(await ruleView(id)).toMatchObject({ hits: 1, remaining: 0 });
    const list = await request(`${base}/v1/sim/intents?reservation_id=rsv_refused`, { dispatcher: agent });
    expect(((await list.body.json()) as { data: unknown[] }).data).toEqual([]);
    // Spent: the next request is answered.
    const next = await send(5000);
    expect([next.statusCode, next.headers['x-sim-rule']]).toEqual([200, undefined]);
    await next.body.dump();
  });

  it('response_lost on /api/v2: the payment exists afterwards', async () => {
    await start();
    const base = await listen();
    await rule({ match: { dialect: 'payment-server-v2', method: 'POST' }, count: 1, action: { type: 'response_lost' } });
    const sent = request(`${base}/api/v2/payments`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tx_id: 'tx_lost', order_id: 1, user_id: 1, amount: 1000, callback_url: 'http://127.0.0.1:9/cb' }) });
    expect(await resetSeen(sent)).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    const read = await request(`${base}/api/v2/payments/pay_tx_lost`, { dispatcher: agent });
    expect(read.statusCode).toBe(200);
    expect(await read.body.json()).toMatchObject({ payment_id: 'pay_tx_lost', tx_id: 'tx_lost' });
  });

  it('timeout: the connection is held the rule’s ms, then reset; nothing is committed', async () => {
    await start();
    const base = await listen();
    const id = await rule({ match: { method: 'POST', route: '/api/v1/orders' }, action: { type: 'timeout', ms: 1500 } });
    const sent = request(`${base}/api/v1/orders`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'u-timeout', serviceId: 'ai-writer', orderName: 'x', amount: 1000 }) });
    expect(await resetSeen(sent)).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    expect(waits).toEqual([1500]);
    const list = await request(`${base}/api/v1/orders?userId=u-timeout`, { dispatcher: agent });
    expect(await list.body.json()).toEqual({ isSuccess: true, code: 'SUCCESS', message: 'Request succeeded.', result: { items: [], nextCursor: null } });
    expect(await ruleView(id)).toMatchObject({ hits: 1 });
  });

  it('timeout beside an outcome rule: the route never runs, so the outcome’s hit is given back (the answer’s onSend never runs) while the timeout’s counts', async () => {
    await start();
    const base = await listen();
    const outcome = await rule({ match: { route: '/v1/sim/intent' }, count: 1, action: { type: 'outcome', failure_code: 'card_declined' } });
    const timeout = await rule({ match: { route: '/v1/sim/intent' }, count: 1, action: { type: 'timeout', ms: 10 } });
    const sent = request(`${base}/v1/sim/intent`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reservation_id: 'r-to', amount: 100 }) });
    expect(await resetSeen(sent)).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    expect([await ruleView(outcome), await ruleView(timeout)]).toMatchObject([
      { hits: 0, matched: 1, remaining: 1 },
      { hits: 1, remaining: 0 },
    ]);
    // The next payment is the rule's.
    const next = await intent({ scenario: 'approve' });
    expect([next.statusCode, next.headers['x-sim-rule']]).toEqual([200, outcome]);
  });
});
