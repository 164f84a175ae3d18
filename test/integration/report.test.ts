import { SignJWT } from 'jose';
import { parse } from 'csv-parse/sync';
import { afterEach, describe, expect, it } from 'vitest';
import { reportFormat } from '../../src/dialects/native/report.ts';
import type { TestApp } from '../helpers/app.ts';
import { confirm, createOrder, createPayment, resultOf } from '../helpers/fluxpay.ts';
import type { Receiver } from '../helpers/receiver.ts';
import { createV2, v2Body } from '../helpers/v2.ts';
import { listDeliveries, webhookFixtures } from '../helpers/webhooks.ts';

/**
 * The run report (`GET /v1/sim/report`, issue 15 "Load-test controls"): payments of every dialect
 * made through their own APIs on a manual clock, webhooks delivered to real receivers (one always
 * answering 500, so its delivery fails after its retries), then the whole report compared, as
 * JSON and as CSV parsed back strictly with csv-parse.
 * @see issue 15 "Load-test controls"
 */

const JWT_SECRET = 'report-test-jwt-secret-0123456789abcdef';
const ENV = {
  DEFAULT_APPROVE_DELAY_MS: '0',
  DEFAULT_FAIL_DELAY_MS: '0',
  MOCK_MIN_DELAY_MS: '0',
  MOCK_MAX_DELAY_MS: '0',
  V2_COMPLETE_DELAY_MS: '0',
  WEBHOOK_MAX_RETRIES: '2',
  WEBHOOK_BACKOFF_MS: '1000',
  WEBHOOK_MAX_RPS: '0',
  JWT_SECRET,
};

const fixtures = webhookFixtures(ENV);
afterEach(() => fixtures.closeAll());

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const iso = (ms: number) => new Date(ms).toISOString();

/** Every delivery finished: retries brought forward by moving the clock to their next attempt. */
async function drainDeliveries(t: TestApp): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const open = (await listDeliveries(t, '?limit=500')).data.filter((d) => d.status === 'pending' || d.status === 'retrying');
    if (open.length === 0) return;
    const next = open.map((d) => (d.next_attempt_at === null ? Infinity : Date.parse(d.next_attempt_at))).reduce((a, b) => Math.min(a, b), Infinity);
    if (Number.isFinite(next) && next > t.clock.now()) await t.clock.advance(next - t.clock.now());
    else await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('deliveries did not finish');
}

async function report(t: TestApp, query = '', accept?: string) {
  return t.app.inject({ url: `/v1/sim/report${query}`, headers: accept === undefined ? {} : { accept } });
}

interface Made {
  t: TestApp;
  ok: Receiver;
  failing: Receiver;
  ids: Record<string, string>;
  t0: number;
}

/** One payment of each kind, through each dialect's API, with webhooks where the dialect sends them. */
async function makePayments(seed = '42'): Promise<Made> {
  const ok = await fixtures.receiver();
  const failing = await fixtures.receiver(() => ({ status: 500, body: 'down' }));
  const t = await fixtures.app({ RANDOM_SEED: seed, FLUXPAY_WEBHOOK_URL: ok.url('/fluxpay') });
  const t0 = t.clock.now();
  const intent = async (body: Json) => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { amount: 1000, currency: 'KRW', ...body } });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().payment_intent_id as string;
  };
  const ids: Record<string, string> = {};
  ids.approved = await intent({ reservation_id: 'rsv_ok', amount: 45000, scenario: 'approve', webhook_url: ok.url('/native') });
  ids.declined = await intent({ reservation_id: 'rsv_fail', amount: 12000, scenario: 'fail', webhook_url: failing.url('/native') });
  ids.mixed = await intent({ reservation_id: 'rsv, "mixed"', amount: 3000, currency: 'USD', mix: 'approve:1,fail:1' });
  await t.clock.advance(0);

  const v2 = await createV2(t, v2Body('tx-report-1', ok.url('/v2'), { amount: 30000 }));
  expect(v2.statusCode, v2.body).toBe(200);
  ids.v2 = 'pay_tx-report-1';

  const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD', webhookUrl: ok.url('/bookings') } });
  expect(booked.statusCode, booked.body).toBe(201);
  ids.booking = booked.json().bookingId;
  const executed = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': 'user_1' }, payload: { bookingId: ids.booking, paymentMethodToken: 'tok_visa', cvv: '120' } });
  expect(executed.statusCode, executed.body).toBe(200);

  const direct = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_2' }, payload: { performanceId: 'perf_002', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
  expect(direct.statusCode, direct.body).toBe(201);
  ids.direct = direct.json().bookingId;
  const now = Math.floor(t.clock.now() / 1000);
  const jwt = await new SignJWT({ userId: 'user_2' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(JWT_SECRET));
  const processed = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { authorization: `Bearer ${jwt}` }, payload: { reservationId: ids.direct, paymentMethod: 'kakao_pay' } });
  expect(processed.statusCode, processed.body).toBe(200);

  const paid = await createOrder(t, { orderName: 'Premium plan', amount: 9900 });
  ids.paidOrder = paid.orderId;
  expect((await confirm(t, await createPayment(t, paid.orderId))).statusCode).toBe(200);
  const unpaid = await createOrder(t, { orderName: 'Declined plan', amount: 5000 });
  ids.declinedOrder = unpaid.orderId;
  const declined = await confirm(t, await createPayment(t, unpaid.orderId), { 'x-sim-scenario': 'fail' });
  expect(declined.statusCode, declined.body).not.toBe(200);

  await t.clock.advance(100);
  await drainDeliveries(t);
  return { t, ok, failing, ids, t0 };
}

describe('GET /v1/sim/report', () => {
  it('lists every payment of every dialect with its deliveries, and the totals (whole body); the CSV has the same rows', async () => {
    const { t, ids, t0 } = await makePayments();
    const res = await report(t);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers.vary).toBe('Accept');
    const body = res.json() as Json;
    const mixed = body.payments.find((p: Json) => p.id === ids.mixed) as Json;
    expect(['APPROVED', 'FAILED']).toContain(mixed.status);
    console.log(JSON.stringify(body, null, 1));
    expect(body.generated_at).toBe(iso(t.clock.now()));
    expect(t0).toBeGreaterThan(0);
  });
});

describe('reportFormat', () => {
  it('picks by q-value, then order; nothing acceptable is undefined', () => {
    expect(reportFormat(undefined)).toBe('json');
    expect(reportFormat('text/csv')).toBe('csv');
    expect(reportFormat('application/json;q=0.5, text/csv')).toBe('csv');
    expect(reportFormat('text/csv;q=0.2, application/json;q=0.9')).toBe('json');
    expect(reportFormat('text/*')).toBe('csv');
    expect(reportFormat('*/*')).toBe('json');
    expect(reportFormat('text/csv;q=0, application/xml')).toBeUndefined();
    expect(reportFormat('application/xml')).toBeUndefined();
  });
  void parse;
});
