import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { untilScheduled, type TestApp } from '../helpers/app.ts';
import { closedPort } from '../helpers/receiver.ts';
import { confirmV2, createV2, getV2, ISO_MS, paymentOf, v2Body, v2Deliveries, v2DeliveryWhen } from '../helpers/v2.ts';
import { metricSample, webhookFixtures } from '../helpers/webhooks.ts';

/**
 * The Payment Server v3 API (`/api/v2`, source document 001), black-box through `inject` with
 * real callback receivers on 127.0.0.1: every route, status and outcome, and the state after
 * each call. The callback's bytes and signature, retries and the tx_id race have files of their own.
 * @see issue 10 "Endpoints", "Outcome", "Idempotency"
 */

const JSON_TYPE = 'application/json; charset=utf-8';
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

const { app, receiver, closeAll } = webhookFixtures({ WEBHOOK_MAX_RPS: '0' });
afterEach(closeAll);

/**
 * Lets `inject` run a while, and says whether it answered meanwhile. Where the handler must first
 * reach its wait on the manual clock, `untilScheduled` waits for that (before 2026-12-06 these 40 ms
 * alone, which a slow Redis could outlast: a review).
 */
async function settled<T>(promise: Promise<T>): Promise<{ done: boolean; value?: T }> {
  let done = false;
  let value: T | undefined;
  void promise.then((v) => {
    done = true;
    value = v;
  });
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 2));
  return done ? { done, value: value as T } : { done };
}

describe('POST /api/v2/payments', () => {
  it('the document’s request: auto-completed at once, the callback acknowledged → PAYMENT_COMPLETED', async () => {
    const rx = await receiver();
    const t = await app();
    const res = await createV2(t, v2Body('tx_1001', rx.url('/api/orders/payment/webhook/v2/tx_1001')));
    expect([res.statusCode, res.headers['content-type'], res.headers['idempotent-replayed'], res.json()]).toEqual([
      200,
      JSON_TYPE,
      undefined,
      { ok: true, tx_id: 'tx_1001', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_1001' },
    ]);
    expect(res.headers['x-request-id']).toBeTruthy();
    // The callback was made before the answer: the receiver has it already.
    expect(rx.requests).toHaveLength(1);
    expect(await paymentOf(t, 'pay_tx_1001')).toEqual({
      payment_id: 'pay_tx_1001',
      order_id: 123,
      tx_id: 'tx_1001',
      user_id: 1,
      amount: 1000,
      status: 'PAYMENT_COMPLETED',
      created_at: ISO_MS(T0),
      confirmed_at: ISO_MS(T0),
      callback_url: rx.url('/api/orders/payment/webhook/v2/tx_1001'),
      failure_code: null,
    });
  });

  it('`version` may be left out', async () => {
    const rx = await receiver();
    const t = await app();
    const { version: _version, ...body } = v2Body('tx_nov', rx.url());
    const res = await createV2(t, body);
    expect([res.statusCode, res.json()]).toEqual([200, { ok: true, tx_id: 'tx_nov', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_nov' }]);
  });

  it('the callback’s first attempt fails (500) → PENDING, the callback retrying', async () => {
    const rx = await receiver(() => ({ status: 500 }));
    const t = await app();
    const res = await createV2(t, v2Body('tx_500', rx.url()));
    expect([res.statusCode, res.json()]).toEqual([200, { ok: true, tx_id: 'tx_500', status: 'PENDING', payment_id: 'pay_tx_500' }]);
    expect(await paymentOf(t, 'pay_tx_500')).toMatchObject({ status: 'PENDING', confirmed_at: null, failure_code: null });
    const d = await v2DeliveryWhen(t, 'pay_tx_500', (x) => x.status === 'retrying', 'the callback retrying');
    expect(d).toMatchObject({ type: 'payment.completed', attempts: [{ status_code: 500 }], failure_reason: null });
  });

  it('the callback’s receiver is down → PENDING', async () => {
    const t = await app();
    const res = await createV2(t, v2Body('tx_down', `http://127.0.0.1:${await closedPort()}/hook`));
    expect([res.statusCode, res.json()]).toEqual([200, { ok: true, tx_id: 'tx_down', status: 'PENDING', payment_id: 'pay_tx_down' }]);
  });

  it('the answer waits at most WEBHOOK_TIMEOUT_MS for a receiver that never answers → PENDING', async () => {
    const rx = await receiver(() => ({ hang: true }));
    const t = await app({ WEBHOOK_TIMEOUT_MS: '300' });
    const started = Date.now();
    const res = await createV2(t, v2Body('tx_hang', rx.url()));
    expect([res.statusCode, res.json()]).toEqual([200, { ok: true, tx_id: 'tx_hang', status: 'PENDING', payment_id: 'pay_tx_hang' }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(rx.requests).toHaveLength(1);
  });

  it('X-Sim-Scenario: fail → PAYMENT_FAILED with card_declined, and a payment.failed callback', async () => {
    const rx = await receiver();
    const t = await app();
    const res = await createV2(t, v2Body('tx_fail', rx.url()), { 'x-sim-scenario': 'fail' });
    expect([res.statusCode, res.json()]).toEqual([200, { ok: true, tx_id: 'tx_fail', status: 'PAYMENT_FAILED', payment_id: 'pay_tx_fail' }]);
    expect(await paymentOf(t, 'pay_tx_fail')).toMatchObject({ status: 'PAYMENT_FAILED', confirmed_at: null, failure_code: 'card_declined' });
    expect(rx.requests.map((r) => r.headers['x-payment-event'])).toEqual(['payment.failed']);
  });

  it('V2_DEFAULT_SCENARIO decides without the header; the header wins over it', async () => {
    const rx = await receiver();
    const t = await app({ V2_DEFAULT_SCENARIO: 'fail' });
    expect((await createV2(t, v2Body('tx_d1', rx.url()))).json().status).toBe('PAYMENT_FAILED');
    expect((await createV2(t, v2Body('tx_d2', rx.url()), { 'x-sim-scenario': 'approve' })).json().status).toBe('PAYMENT_COMPLETED');
  });

  it('random follows RANDOM_APPROVE_RATE', async () => {
    const rx = await receiver();
    const never = await app({ RANDOM_APPROVE_RATE: '0' });
    const always = await app({ RANDOM_APPROVE_RATE: '1' });
    for (let i = 0; i < 3; i++) {
      expect((await createV2(never, v2Body(`tx_r${i}`, rx.url()), { 'x-sim-scenario': 'random' })).json().status).toBe('PAYMENT_FAILED');
      expect((await createV2(always, v2Body(`tx_r${i}`, rx.url()), { 'x-sim-scenario': 'random' })).json().status).toBe('PAYMENT_COMPLETED');
    }
  });

  it('RANDOM_SEED: a tx_id sent again (the same request, or another with it: 409) draws nothing, so every later random payment ends as it would without it (2026-12-07, a user test: one retry shifted them all)', async () => {
    const rx = await receiver();
    const statuses = async (again: boolean): Promise<string[]> => {
      const t = await app({ RANDOM_SEED: '7', RANDOM_APPROVE_RATE: '0.5' });
      const random = { 'x-sim-scenario': 'random' };
      const out: string[] = [];
      for (let i = 1; i <= 12; i++) {
        out.push((await createV2(t, v2Body(`tx_s${i}`, rx.url()), random)).json().status as string);
        if (!again || i !== 1) continue;
        for (let k = 0; k < 3; k++) expect((await createV2(t, v2Body('tx_s1', rx.url()), random)).headers['idempotent-replayed']).toBe('true');
        expect((await createV2(t, { ...v2Body('tx_s1', rx.url()), amount: 101 }, random)).statusCode).toBe(409);
      }
      return out;
    };
    const plain = await statuses(false);
    expect(new Set(plain)).toEqual(new Set(['PAYMENT_COMPLETED', 'PAYMENT_FAILED']));
    expect(await statuses(true)).toEqual(plain);
  });

  it('V2_COMPLETE_DELAY_MS: the answer waits for the decision on the clock (the original slept 2 s)', async () => {
    const rx = await receiver();
    const t = await app({ V2_COMPLETE_DELAY_MS: '2000' });
    const before = t.clock.pendingTimers;
    const answer = createV2(t, v2Body('tx_slow', rx.url()));
    await untilScheduled(t, before);
    expect((await settled(answer)).done).toBe(false);
    expect(await paymentOf(t, 'pay_tx_slow')).toMatchObject({ status: 'PENDING', confirmed_at: null });
    await t.clock.advance(1999);
    expect((await settled(answer)).done).toBe(false);
    expect(rx.requests).toHaveLength(0);
    await t.clock.advance(1);
    const res = await answer;
    expect([res.statusCode, res.json()]).toEqual([200, { ok: true, tx_id: 'tx_slow', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_slow' }]);
    expect(await paymentOf(t, 'pay_tx_slow')).toMatchObject({ created_at: ISO_MS(T0), confirmed_at: ISO_MS(T0 + 2000) });
  });

  it('delay: completes after DEFAULT_DELAY_DELAY_MS', async () => {
    const rx = await receiver();
    const t = await app({ DEFAULT_DELAY_DELAY_MS: '3000' });
    const before = t.clock.pendingTimers;
    const answer = createV2(t, v2Body('tx_delay', rx.url()), { 'x-sim-scenario': 'delay' });
    await untilScheduled(t, before);
    expect((await settled(answer)).done).toBe(false);
    await t.clock.advance(2999);
    expect((await settled(answer)).done).toBe(false);
    await t.clock.advance(1);
    expect((await answer).json()).toEqual({ ok: true, tx_id: 'tx_delay', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_delay' });
  });

  describe('the same tx_id again', () => {
    it('with the same body: the same answer, Idempotent-Replayed, no second payment nor callback', async () => {
      const rx = await receiver();
      const t = await app();
      const body = v2Body('tx_1001', rx.url());
      const first = await createV2(t, body);
      // Key order and a missing `version` do not make another request.
      const { version: _v, ...reordered } = Object.fromEntries(Object.entries(body).reverse());
      for (const again of [body, reordered]) {
        const res = await createV2(t, again);
        expect([res.statusCode, res.headers['idempotent-replayed'], res.body]).toEqual([200, 'true', first.body]);
      }
      expect(rx.requests).toHaveLength(1);
      expect(await v2Deliveries(t, 'pay_tx_1001')).toHaveLength(1);
      expect((await t.app.inject({ url: '/api/v2/pending-payments' })).json()).toMatchObject({ pending_count: 0, completed_count: 1, failed_count: 0 });
    });

    it('answers the payment’s current status: PENDING while its callback fails, then PAYMENT_COMPLETED once confirmed', async () => {
      const rx = await receiver(() => ({ status: 503 }));
      const t = await app();
      const body = v2Body('tx_now', rx.url());
      expect((await createV2(t, body)).json().status).toBe('PENDING');
      expect((await createV2(t, body)).json()).toEqual({ ok: true, tx_id: 'tx_now', status: 'PENDING', payment_id: 'pay_tx_now' });
      expect((await confirmV2(t, 'pay_tx_now')).statusCode).toBe(200);
      const res = await createV2(t, body);
      expect([res.headers['idempotent-replayed'], res.json()]).toEqual(['true', { ok: true, tx_id: 'tx_now', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_now' }]);
      expect(rx.requests).toHaveLength(1);
    });

    it.each([
      ['amount', { amount: 2000 }],
      ['order_id', { order_id: 124 }],
      ['user_id', { user_id: 2 }],
      ['callback_url', { callback_url: 'http://127.0.0.1:9/other' }],
    ])('with another %s: 409 in FastAPI’s shape, and nothing changes', async (_field, change) => {
      const rx = await receiver();
      const t = await app();
      await createV2(t, v2Body('tx_1001', rx.url()));
      const before = await paymentOf(t, 'pay_tx_1001');
      const res = await createV2(t, v2Body('tx_1001', rx.url(), change));
      expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([409, JSON_TYPE, { detail: 'tx_id tx_1001 was already used with a different request' }]);
      expect(await paymentOf(t, 'pay_tx_1001')).toEqual(before);
      expect(rx.requests).toHaveLength(1);
    });
  });

  describe('Idempotency-Key, as in the other dialects', () => {
    it('the same key and body replays the stored answer; another body with the key is 422 idempotency_key_mismatch', async () => {
      const rx = await receiver();
      const t = await app();
      const headers = { 'idempotency-key': 'order-123-pay' };
      const first = await createV2(t, v2Body('tx_k1', rx.url()), headers);
      const again = await createV2(t, v2Body('tx_k1', rx.url()), headers);
      expect([again.statusCode, again.headers['idempotent-replayed'], again.body]).toEqual([200, 'true', first.body]);
      const other = await createV2(t, v2Body('tx_k2', rx.url()), headers);
      expect([other.statusCode, other.json()]).toEqual([
        422,
        { detail: [{ type: 'idempotency_key_mismatch', loc: ['header', 'idempotency-key'], msg: 'This Idempotency-Key was used with a different request body.', input: 'order-123-pay' }] },
      ]);
      expect((await getV2(t, 'pay_tx_k2')).statusCode).toBe(404);
      expect(rx.requests).toHaveLength(1);
    });
  });

  describe('bad input: 422 with one item per problem, pydantic’s words, and nothing stored', () => {
    const URL = 'http://127.0.0.1:9/cb';
    it.each([
      [
        'every field wrong at once',
        { version: 1, tx_id: '', order_id: -1, user_id: 1.5, amount: '1000', callback_url: 'ftp://ops/cb', extra: true },
        [
          { type: 'extra_forbidden', loc: ['body', 'extra'], msg: 'Extra inputs are not permitted', input: true },
          { type: 'literal_error', loc: ['body', 'version'], msg: "Input should be 'v2'", input: 1, ctx: { expected: "'v2'" } },
          { type: 'string_too_short', loc: ['body', 'tx_id'], msg: 'String should have at least 1 character', input: '', ctx: { min_length: 1 } },
          { type: 'greater_than_equal', loc: ['body', 'order_id'], msg: 'Input should be greater than or equal to 0', input: -1, ctx: { ge: 0 } },
          { type: 'int_from_float', loc: ['body', 'user_id'], msg: 'Input should be a valid integer, got a number with a fractional part', input: 1.5 },
          { type: 'int_type', loc: ['body', 'amount'], msg: 'Input should be a valid integer', input: '1000' },
          { type: 'url_scheme', loc: ['body', 'callback_url'], msg: "URL scheme should be 'http' or 'https'", input: 'ftp://ops/cb', ctx: { expected_schemes: "'http' or 'https'" } },
        ],
      ],
      [
        'missing fields',
        { tx_id: 'tx_1', amount: 1000 },
        ['order_id', 'user_id', 'callback_url'].map((f) => ({ type: 'missing', loc: ['body', f], msg: 'Field required', input: { tx_id: 'tx_1', amount: 1000 } })),
      ],
      [
        'amount 0 and too large, a 129-character tx_id, a relative URL',
        { tx_id: 't'.repeat(129), order_id: 1, user_id: 1, amount: 0, callback_url: '/relative' },
        [
          { type: 'string_too_long', loc: ['body', 'tx_id'], msg: 'String should have at most 128 characters', input: 't'.repeat(129), ctx: { max_length: 128 } },
          { type: 'greater_than_equal', loc: ['body', 'amount'], msg: 'Input should be greater than or equal to 1', input: 0, ctx: { ge: 1 } },
          { type: 'url_parsing', loc: ['body', 'callback_url'], msg: 'Input should be a valid URL, relative URL without a base', input: '/relative', ctx: { error: 'relative URL without a base' } },
        ],
      ],
      [
        'a tx_id with a control character (2026-12-05: it was taken)',
        { tx_id: 'tx\t1', order_id: 1, user_id: 1, amount: 1000, callback_url: URL },
        [{ type: 'string_pattern_mismatch', loc: ['body', 'tx_id'], msg: "String should match pattern '^[^\\u0000-\\u001F\\u007F-\\u009F]*$'", input: 'tx\t1', ctx: { pattern: '^[^\\u0000-\\u001F\\u007F-\\u009F]*$' } }],
      ],
      [
        'a callback_url over 2,048 characters (README: url_too_long)',
        { tx_id: 'tx_1', order_id: 1, user_id: 1, amount: 1000, callback_url: `${URL}/${'a'.repeat(2048)}` },
        [{ type: 'url_too_long', loc: ['body', 'callback_url'], msg: 'URL should have at most 2048 characters', input: `${URL}/${'a'.repeat(2048)}`, ctx: { max_length: 2048 } }],
      ],
      [
        'an amount over 100,000,000,000, a version of another value, a string user_id',
        { version: 'v1', tx_id: 'tx_1', order_id: 1, user_id: '1', amount: 100_000_000_001, callback_url: URL },
        [
          { type: 'literal_error', loc: ['body', 'version'], msg: "Input should be 'v2'", input: 'v1', ctx: { expected: "'v2'" } },
          { type: 'int_type', loc: ['body', 'user_id'], msg: 'Input should be a valid integer', input: '1' },
          { type: 'less_than_equal', loc: ['body', 'amount'], msg: 'Input should be less than or equal to 100000000000', input: 100_000_000_001, ctx: { le: 100_000_000_000 } },
        ],
      ],
    ])('%s', async (_name, body, detail) => {
      const t = await app();
      const res = await createV2(t, body);
      expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([422, JSON_TYPE, { detail }]);
      expect((await t.app.stores.v2Payments.stats()).size).toBe(0);
    });

    it('a bad X-Sim-Scenario is a header problem', async () => {
      const t = await app();
      const res = await createV2(t, v2Body('tx_1', URL), { 'x-sim-scenario': 'maybe' });
      expect([res.statusCode, res.json()]).toEqual([
        422,
        { detail: [{ type: 'literal_error', loc: ['header', 'x-sim-scenario'], msg: "Input should be 'approve', 'fail', 'delay', 'random' or 'mix'", input: 'maybe', ctx: { expected: "'approve', 'fail', 'delay', 'random' or 'mix'" } }] },
      ]);
    });

    it('X-Sim-Scenario: mix without weights (no X-Sim-Mix, no MIX) is a header problem with the header as its input', async () => {
      const t = await app();
      const res = await createV2(t, v2Body('tx_1', URL), { 'x-sim-scenario': 'mix' });
      expect([res.statusCode, res.json()]).toEqual([422, { detail: [{ type: 'mix_needs_weights', loc: ['header', 'x-sim-scenario'], msg: 'mix needs weights such as approve:90,fail:7,delay:3: send them with the request (the mix field, or the X-Sim-Mix header) or set MIX', input: 'mix' }] }]);
      expect((await t.app.stores.v2Payments.stats()).size).toBe(0);
    });

    it.each([
      ['malformed JSON: json_invalid at the position where it broke', '{"tx_id": "t",', [{ type: 'json_invalid', loc: ['body', 14], msg: 'JSON decode error', input: {}, ctx: { error: 'Unexpected end of input (expected a property name in double quotes)' } }]],
      ['no body', '', [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }]],
      ['a body that is not an object', '[1]', [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: [1] }]],
    ])('%s', async (_name, payload, detail) => {
      const t = await app();
      const res = await t.app.inject({ method: 'POST', url: '/api/v2/payments', headers: { 'content-type': 'application/json' }, payload });
      expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([422, JSON_TYPE, { detail }]);
    });

    it('a body without Content-Type, or application/…+json, is read as JSON, as FastAPI reads it; another type is 415', async () => {
      const t = await app();
      const sent = (txId: string, headers: Record<string, string>, payload = JSON.stringify(v2Body(txId, URL))) =>
        t.app.inject({ method: 'POST', url: '/api/v2/payments', headers: { 'x-sim-scenario': 'fail', ...headers }, payload });
      for (const [txId, headers] of [
        ['tx_none', {}],
        ['tx_merge', { 'content-type': 'application/merge-patch+json' }],
        ['tx_charset', { 'content-type': 'Application/JSON; charset=UTF-8' }],
      ] as const) {
        const res = await sent(txId, headers);
        expect([res.statusCode, res.json()], txId).toEqual([200, expect.objectContaining({ tx_id: txId, status: 'PAYMENT_FAILED' })]);
        expect((await t.app.stores.v2Payments.get(`pay_${txId}`))?.status, txId).toBe('PAYMENT_FAILED');
      }
      const broken = await sent('tx_broken', {}, '{"tx_id": ');
      expect([broken.statusCode, broken.json()]).toEqual([422, { detail: [{ type: 'json_invalid', loc: ['body', 10], msg: 'JSON decode error', input: {}, ctx: { error: 'Unexpected end of input (expected a value)' } }] }]);
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx']) {
        const refused = await sent('tx_refused', { 'content-type': type });
        expect([refused.statusCode, refused.json()], type).toEqual([415, { detail: 'Send the body as application/json.' }]);
      }
      expect((await t.app.stores.v2Payments.stats()).size).toBe(3);
    });

    it('413 and 415 in FastAPI’s shape', async () => {
      const t = await app({ BODY_LIMIT_BYTES: '1024' });
      const big = await createV2(t, v2Body('t'.repeat(2000), URL));
      expect([big.statusCode, big.json()]).toEqual([413, { detail: 'The request body is larger than the limit (BODY_LIMIT_BYTES).' }]);
      const text = await t.app.inject({ method: 'POST', url: '/api/v2/payments', headers: { 'content-type': 'text/plain' }, payload: 'tx_id=1' });
      expect([text.statusCode, text.json()]).toEqual([415, { detail: 'Send the body as application/json.' }]);
    });
  });

  it('a store full of PENDING payments: 503 with Retry-After, counted; room again once one completes', async () => {
    const rx = await receiver(() => ({ status: 500 }));
    const t = await app({ V2_PAYMENTS_MAX: '2' });
    for (const tx of ['tx_a', 'tx_b']) expect((await createV2(t, v2Body(tx, rx.url()))).json().status).toBe('PENDING');
    const full = await createV2(t, v2Body('tx_c', rx.url()));
    expect([full.statusCode, full.headers['retry-after'], full.json()]).toEqual([503, '1', { detail: 'The v2_payments store is full of PENDING payments, which it keeps until each is finished: confirm them (POST /api/v2/confirm-payment) or let their callbacks be acknowledged, or raise V2_PAYMENTS_MAX; retrying alone does not make room until some finish.' }]);
    expect(metricSample((await t.app.inject({ url: '/metrics' })).body, 'store_full_total{store="v2_payments"}')).toBe(1);
    expect((await confirmV2(t, 'pay_tx_a')).statusCode).toBe(200);
    expect((await createV2(t, v2Body('tx_c', rx.url()))).statusCode).toBe(200);
    expect((await getV2(t, 'pay_tx_a')).statusCode).toBe(404);
  });
});

describe('POST /api/v2/payments on the real clock (its wait reads the payment once overdue)', () => {
  it('a declined payment answers once its callback’s first attempt is over, not at the first read that finds it PAYMENT_FAILED', async () => {
    const rx = await receiver(() => ({ hang: true }));
    const real = await buildApp({ config: loadConfig({ WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==', WEBHOOK_TIMEOUT_MS: '1000', WEBHOOK_MAX_RPS: '0', SHUTDOWN_TIMEOUT_MS: '0' }), logger: false });
    try {
      await real.ready();
      const started = Date.now();
      const res = await real.inject({ method: 'POST', url: '/api/v2/payments', headers: { 'x-sim-scenario': 'fail' }, payload: v2Body('tx_real_fail', rx.url()) });
      expect([res.statusCode, res.json()]).toEqual([200, { ok: true, tx_id: 'tx_real_fail', status: 'PAYMENT_FAILED', payment_id: 'pay_tx_real_fail' }]);
      // The attempt's time-out is 1 s; the first read comes a quarter second after the decision (answered then in a first version of it).
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(rx.requests).toHaveLength(1);
    } finally {
      await real.close();
    }
  });
});

describe('an Idempotency-Key held by a create that waits', () => {
  it('a create held 20 minutes by V2_COMPLETE_DELAY_MS keeps its key past a 1 s IDEMPOTENCY_TTL_MS: another body with it is refused, not run', async () => {
    const rx = await receiver();
    // 600 s × TIME_SCALE 2, then the callback's first attempt: longer than the margin of 15 minutes alone.
    const t = await app({ IDEMPOTENCY_TTL_MS: '1000', V2_COMPLETE_DELAY_MS: '600000', TIME_SCALE: '2' });
    const headers = { 'idempotency-key': 'order-1-pay' };
    const before = t.clock.pendingTimers;
    const first = createV2(t, v2Body('tx_a', rx.url()), headers);
    await untilScheduled(t, before);
    await t.clock.advance(16 * 60_000);
    const twin = await createV2(t, v2Body('tx_b', rx.url()), headers);
    expect([twin.statusCode, twin.json()]).toEqual([
      422,
      { detail: [{ type: 'idempotency_key_mismatch', loc: ['header', 'idempotency-key'], msg: 'This Idempotency-Key was used with a different request body.', input: 'order-1-pay' }] },
    ]);
    await t.clock.advance(5 * 60_000);
    expect([(await first).statusCode, (await getV2(t, 'pay_tx_b')).statusCode]).toEqual([200, 404]);
  });
});

describe('POST /api/v2/confirm-payment', () => {
  it('a PENDING payment: 200 with confirmed_at; PAYMENT_COMPLETED; no second callback', async () => {
    const rx = await receiver(() => ({ status: 500 }));
    const t = await app();
    await createV2(t, v2Body('tx_1002', rx.url()));
    await t.clock.advance(60_000);
    const res = await confirmV2(t, 'pay_tx_1002');
    expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([
      200,
      JSON_TYPE,
      { ok: true, payment_id: 'pay_tx_1002', status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0 + 60_000) },
    ]);
    expect(await paymentOf(t, 'pay_tx_1002')).toMatchObject({ status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0 + 60_000) });
    // Only the first callback's own retries: one delivery, one event id.
    const deliveries = await v2Deliveries(t, 'pay_tx_1002');
    expect(deliveries.map((d) => d.type)).toEqual(['payment.completed']);
    expect(new Set(rx.requests.map((r) => r.headers['x-payment-webhook-id'])).size).toBe(1);
  });

  it('before auto-completion (a long V2_COMPLETE_DELAY_MS): completed by hand, then never decided nor called back', async () => {
    const rx = await receiver();
    const t = await app({ V2_COMPLETE_DELAY_MS: '60000' });
    const before = t.clock.pendingTimers;
    const answer = createV2(t, v2Body('tx_hand', rx.url()));
    await untilScheduled(t, before);
    expect((await settled(answer)).done).toBe(false);
    await t.clock.advance(1000);
    expect((await confirmV2(t, 'pay_tx_hand')).json()).toEqual({ ok: true, payment_id: 'pay_tx_hand', status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0 + 1000) });
    // The create that was waiting answers now.
    expect((await answer).json()).toEqual({ ok: true, tx_id: 'tx_hand', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_hand' });
    await t.clock.advance(120_000);
    expect(rx.requests).toHaveLength(0);
    expect(await v2Deliveries(t, 'pay_tx_hand')).toEqual([]);
  });

  it.each([
    ['completed', {}, 'PAYMENT_COMPLETED'],
    ['failed', { 'x-sim-scenario': 'fail' }, 'PAYMENT_FAILED'],
  ])('a %s payment: 400, and nothing changes', async (_name, headers, status) => {
    const rx = await receiver();
    const t = await app();
    await createV2(t, v2Body('tx_x', rx.url()), headers);
    const before = await paymentOf(t, 'pay_tx_x');
    const res = await confirmV2(t, 'pay_tx_x');
    expect([res.statusCode, res.json()]).toEqual([400, { detail: `Payment pay_tx_x is ${status}; only a PENDING payment can be confirmed` }]);
    expect(await paymentOf(t, 'pay_tx_x')).toEqual(before);
  });

  it('an unknown payment: 404 {"detail": "Payment not found"}', async () => {
    const t = await app();
    const res = await confirmV2(t, 'pay_nope');
    expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([404, JSON_TYPE, { detail: 'Payment not found' }]);
  });

  it('bad input: 422', async () => {
    const t = await app();
    const res = await t.app.inject({ method: 'POST', url: '/api/v2/confirm-payment', payload: { paymentId: 'pay_x' } });
    expect([res.statusCode, res.json()]).toEqual([
      422,
      {
        detail: [
          { type: 'missing', loc: ['body', 'payment_id'], msg: 'Field required', input: { paymentId: 'pay_x' } },
          { type: 'extra_forbidden', loc: ['body', 'paymentId'], msg: 'Extra inputs are not permitted', input: 'pay_x' },
        ],
      },
    ]);
  });
});

describe('GET /api/v2/pending-payments', () => {
  async function seeded(): Promise<TestApp> {
    const ok = await receiver();
    const down = `http://127.0.0.1:${await closedPort()}/cb`;
    const t = await app();
    await createV2(t, v2Body('tx_1', ok.url()));
    await t.clock.advance(1);
    await createV2(t, v2Body('tx_2', down));
    await t.clock.advance(1);
    await createV2(t, v2Body('tx_3', ok.url()), { 'x-sim-scenario': 'fail' });
    await t.clock.advance(1);
    await createV2(t, v2Body('tx_4', down, { amount: 4000 }));
    return t;
  }

  it('counts of every payment, and every payment by id, newest first', async () => {
    const t = await seeded();
    const res = await t.app.inject({ url: '/api/v2/pending-payments' });
    expect([res.statusCode, res.headers['content-type']]).toEqual([200, JSON_TYPE]);
    const body = res.json();
    expect({ ...body, payments: undefined }).toEqual({ pending_count: 2, completed_count: 1, failed_count: 1, payments: undefined });
    expect(Object.keys(body.payments)).toEqual(['pay_tx_4', 'pay_tx_3', 'pay_tx_2', 'pay_tx_1']);
    expect(body.payments.pay_tx_4).toEqual({
      payment_id: 'pay_tx_4',
      order_id: 123,
      tx_id: 'tx_4',
      user_id: 1,
      amount: 4000,
      status: 'PENDING',
      created_at: ISO_MS(T0 + 3),
      confirmed_at: null,
      callback_url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/cb$/),
      failure_code: null,
    });
    expect(body.payments.pay_tx_3).toMatchObject({ status: 'PAYMENT_FAILED', failure_code: 'card_declined', confirmed_at: null });
    expect(body.payments.pay_tx_1).toMatchObject({ status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0) });
  });

  it('status filters the map, limit bounds it; the counts stay totals; unknown parameters are ignored, as FastAPI does', async () => {
    const t = await seeded();
    const pending = (await t.app.inject({ url: '/api/v2/pending-payments?status=PENDING&utm=x' })).json();
    expect(Object.keys(pending.payments)).toEqual(['pay_tx_4', 'pay_tx_2']);
    expect(pending).toMatchObject({ pending_count: 2, completed_count: 1, failed_count: 1 });
    expect(Object.keys((await t.app.inject({ url: '/api/v2/pending-payments?limit=1' })).json().payments)).toEqual(['pay_tx_4']);
    expect(Object.keys((await t.app.inject({ url: '/api/v2/pending-payments?status=PAYMENT_COMPLETED&limit=10' })).json().payments)).toEqual(['pay_tx_1']);
  });

  it('a parameter given twice is its last value, as FastAPI reads it (before: a 422 refusing the value it named as allowed)', async () => {
    const t = await seeded();
    const failed = await t.app.inject({ url: '/api/v2/pending-payments?status=PENDING&status=PAYMENT_FAILED' });
    expect(failed.statusCode).toBe(200);
    expect(Object.keys(failed.json().payments)).toEqual(['pay_tx_3']);
    const limited = await t.app.inject({ url: '/api/v2/pending-payments?limit=1&limit=3' });
    expect(limited.statusCode).toBe(200);
    expect(Object.keys(limited.json().payments)).toEqual(['pay_tx_4', 'pay_tx_3', 'pay_tx_2']);
    const bad = await t.app.inject({ url: '/api/v2/pending-payments?limit=3&limit=ten' });
    expect([bad.statusCode, bad.json()]).toEqual([
      422,
      { detail: [{ type: 'int_parsing', loc: ['query', 'limit'], msg: 'Input should be a valid integer, unable to parse string as an integer', input: 'ten' }] },
    ]);
  });

  it('limit defaults to 1,000', async () => {
    const t = await app();
    for (let i = 0; i < 1001; i++) {
      await t.app.stores.v2Payments.begin({
        id: `pay_bulk_${i}`, txId: `bulk_${i}`, orderId: i, userId: 1, amount: 1, callbackUrl: 'http://127.0.0.1:9/cb', status: 'PENDING', failureCode: null, scenario: 'approve',
        createdAt: T0 + i, decidedAt: null, confirmedAt: null, completedBy: null, planned: { status: 'PAYMENT_COMPLETED', failureCode: null },
      });
    }
    const body = (await t.app.inject({ url: '/api/v2/pending-payments' })).json();
    expect(body.pending_count).toBe(1001);
    const ids = Object.keys(body.payments);
    expect([ids.length, ids[0], ids.at(-1)]).toEqual([1000, 'pay_bulk_1000', 'pay_bulk_1']);
  });

  it.each([
    ['limit=0', [{ type: 'greater_than_equal', loc: ['query', 'limit'], msg: 'Input should be greater than or equal to 1', input: '0', ctx: { ge: 1 } }]],
    ['limit=10001', [{ type: 'less_than_equal', loc: ['query', 'limit'], msg: 'Input should be less than or equal to 10000', input: '10001', ctx: { le: 10000 } }]],
    ['limit=ten', [{ type: 'int_parsing', loc: ['query', 'limit'], msg: 'Input should be a valid integer, unable to parse string as an integer', input: 'ten' }]],
    [
      'status=DONE',
      [{ type: 'literal_error', loc: ['query', 'status'], msg: "Input should be 'PENDING', 'PAYMENT_COMPLETED' or 'PAYMENT_FAILED'", input: 'DONE', ctx: { expected: "'PENDING', 'PAYMENT_COMPLETED' or 'PAYMENT_FAILED'" } }],
    ],
  ])('?%s: 422', async (query, detail) => {
    const t = await app();
    const res = await t.app.inject({ url: `/api/v2/pending-payments?${query}` });
    expect([res.statusCode, res.json()]).toEqual([422, { detail }]);
  });
});

describe('GET /api/v2/payments/{payment_id}', () => {
  it('one payment; 404 for an unknown one', async () => {
    const rx = await receiver();
    const t = await app();
    await createV2(t, v2Body('tx_1001', rx.url()));
    const res = await t.app.inject({ url: '/api/v2/payments/pay_tx_1001' });
    expect([res.statusCode, res.headers['content-type'], res.json().status]).toEqual([200, JSON_TYPE, 'PAYMENT_COMPLETED']);
    const missing = await t.app.inject({ url: '/api/v2/payments/pay_tx_9999' });
    expect([missing.statusCode, missing.json()]).toEqual([404, { detail: 'Payment not found' }]);
    // A trailing slash is the create's path (POST only), as FastAPI redirects it there.
    const empty = await t.app.inject({ url: '/api/v2/payments/' });
    expect([empty.statusCode, empty.headers.allow, empty.json()]).toEqual([405, 'POST', { detail: 'Method Not Allowed' }]);
  });

  it('a tx_id of 128 characters, non-ASCII and with a slash, is found (over 100 characters in the URL)', async () => {
    const rx = await receiver();
    const t = await app();
    const txId = `주문/${'é'.repeat(125)}`;
    expect(txId).toHaveLength(128);
    expect((await createV2(t, v2Body(txId, rx.url()))).json().status).toBe('PAYMENT_COMPLETED');
    const res = await getV2(t, `pay_${txId}`);
    expect([res.statusCode, res.json().tx_id]).toEqual([200, txId]);
    expect((await confirmV2(t, `pay_${txId}`)).statusCode).toBe(400);
  });
});

describe('errors answered before a route runs, in FastAPI’s shape', () => {
  it('an unknown route under /api/v2: 404 {"detail": "Not Found"}', async () => {
    const t = await app();
    for (const url of ['/api/v2/nope', '/api/v2', '/api/v2/nope/x?q=1']) {
      const res = await t.app.inject({ url });
      expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([404, JSON_TYPE, { detail: 'Not Found' }]);
    }
    const post = await t.app.inject({ method: 'POST', url: '/api/v2/nope', headers: { 'content-type': 'application/json' }, payload: '{' });
    expect([post.statusCode, post.json()]).toEqual([404, { detail: 'Not Found' }]);
  });

  it('another method: 405 {"detail": "Method Not Allowed"} with Allow', async () => {
    const t = await app();
    for (const [method, url, allow] of [
      ['GET', '/api/v2/payments', 'POST'],
      ['DELETE', '/api/v2/confirm-payment', 'POST'],
      ['POST', '/api/v2/pending-payments', 'GET, HEAD'],
    ] as const) {
      const res = await t.app.inject({ method, url });
      expect([res.statusCode, res.headers.allow, res.json()]).toEqual([405, allow, { detail: 'Method Not Allowed' }]);
    }
  });

  it('load shedding: 503 with Retry-After', async () => {
    const t = await app({ OVERLOAD_MAX_HEAP_USED_BYTES: '1', OVERLOAD_RETRY_AFTER_S: '7' });
    let res;
    for (let i = 0; i < 100 && res?.statusCode !== 503; i++) {
      res = await t.app.inject({ url: '/api/v2/pending-payments' });
      if (res.statusCode !== 503) await new Promise((resolve) => setTimeout(resolve, 20)); // under-pressure samples the heap on a real timer
    }
    expect([res?.statusCode, res?.headers['retry-after'], res?.json()]).toEqual([503, '7', { detail: expect.stringMatching(/^The simulator is overloaded \(heapUsedBytes\); retry after 7 s\.$/) }]);
  });

  it('while the server closes: 503 with Retry-After', async () => {
    const t = await app();
    t.app.lifecycle.closing = true;
    const res = await t.app.inject({ url: '/api/v2/pending-payments' });
    t.app.lifecycle.closing = false;
    expect([res.statusCode, res.headers['retry-after'], res.json()]).toEqual([503, '1', { detail: 'The simulator is shutting down; retry on another instance.' }]);
  });
});

describe('V2_REQUIRE_AUTH=true: callers need Authorization: Bearer <SERVICE_AUTH_TOKEN>', () => {
  const TOKEN = 'ops-service-token';

  it.each([
    ['no Authorization', {}],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
    ['another token', { authorization: 'Bearer ops-service-tokem' }],
    ['a prefix of the token', { authorization: 'Bearer ops-service' }],
  ])('%s: 401 {"detail": "Not authenticated"} with WWW-Authenticate, on every route, before the body is read', async (_name, headers) => {
    const rx = await receiver();
    const t = await app({ SERVICE_AUTH_TOKEN: TOKEN, V2_REQUIRE_AUTH: 'true' });
    for (const res of [
      await createV2(t, v2Body('tx_1', rx.url()), headers),
      await t.app.inject({ method: 'POST', url: '/api/v2/payments', headers: { ...headers, 'content-type': 'application/json' }, payload: '{' }),
      await confirmV2(t, 'pay_tx_1', headers),
      await t.app.inject({ url: '/api/v2/pending-payments', headers }),
      await t.app.inject({ url: '/api/v2/payments/pay_tx_1', headers }),
    ]) {
      expect([res.statusCode, res.headers['www-authenticate'], res.json()]).toEqual([401, 'Bearer', { detail: 'Not authenticated' }]);
    }
    expect((await t.app.stores.v2Payments.stats()).size).toBe(0);
    expect(rx.requests).toHaveLength(0);
  });

  it('the token: served as usual', async () => {
    const rx = await receiver();
    const t = await app({ SERVICE_AUTH_TOKEN: TOKEN, V2_REQUIRE_AUTH: 'true' });
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await createV2(t, v2Body('tx_1', rx.url()), auth)).json().status).toBe('PAYMENT_COMPLETED');
    expect((await t.app.inject({ url: '/api/v2/payments/pay_tx_1', headers: { authorization: `bearer  ${TOKEN}` } })).statusCode).toBe(200);
    // The other APIs are not behind it.
    expect((await t.app.inject({ url: '/v1/sim/intents' })).statusCode).toBe(200);
  });

  it('without V2_REQUIRE_AUTH no token is needed, even when SERVICE_AUTH_TOKEN is set', async () => {
    const rx = await receiver();
    const t = await app({ SERVICE_AUTH_TOKEN: TOKEN });
    expect((await createV2(t, v2Body('tx_1', rx.url()))).statusCode).toBe(200);
  });
});

describe('metrics', () => {
  it('v2_payments_total{status}, the callbacks through the dispatcher’s metrics, and the store’s fill', async () => {
    const ok = await receiver();
    const failing = await receiver(() => ({ status: 500 }));
    const t = await app({ V2_PAYMENTS_MAX: '50' });
    const metrics = async () => (await t.app.inject({ url: '/metrics' })).body;
    const before = await metrics();
    for (const status of ['PENDING', 'PAYMENT_COMPLETED', 'PAYMENT_FAILED']) expect(metricSample(before, `v2_payments_total{status="${status}"}`), status).toBe(0);
    await createV2(t, v2Body('tx_1', ok.url()));
    await createV2(t, v2Body('tx_2', ok.url()), { 'x-sim-scenario': 'fail' });
    await createV2(t, v2Body('tx_3', failing.url()));
    await createV2(t, v2Body('tx_4', failing.url()));
    await confirmV2(t, 'pay_tx_3');
    expect((await createV2(t, v2Body('tx_1', ok.url()))).headers['idempotent-replayed']).toBe('true');
    expect((await createV2(t, v2Body('tx_2', ok.url(), { amount: 5 }), { 'x-sim-scenario': 'fail' })).statusCode).toBe(409);
    const text = await metrics();
    expect(['PENDING', 'PAYMENT_COMPLETED', 'PAYMENT_FAILED'].map((s) => metricSample(text, `v2_payments_total{status="${s}"}`))).toEqual([4, 2, 1]);
    // The tx_id is this API's idempotency key: its replay and its conflict count as the header's do.
    expect([metricSample(text, 'idempotency_replays_total'), metricSample(text, 'idempotency_conflicts_total')]).toEqual([1, 1]);
    expect(metricSample(text, 'webhook_attempts_total{outcome="success"}')).toBe(2);
    expect(metricSample(text, 'webhook_attempts_total{outcome="http_error"}')).toBe(2);
    expect(metricSample(text, 'webhook_deliveries_total{result="delivered"}')).toBe(2);
    expect(metricSample(text, 'store_records{store="v2_payments"}')).toBe(4);
    expect(metricSample(text, 'store_capacity{store="v2_payments"}')).toBe(50);
  });
});
