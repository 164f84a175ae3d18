import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, ULID, type TestApp } from '../helpers/app.ts';
import { runToExit } from '../helpers/child.ts';
import { fpGet, fpPost, resultOf, SUCCESS, type Json } from '../helpers/fluxpay.ts';
import { receiverPool } from '../helpers/receiver.ts';
import { afterAttempts, createIntent, deliveryWhen } from '../helpers/webhooks.ts';

/**
 * TIME_SCALE (issue 15, "Load-test controls") through each API on the manual clock: every
 * simulated duration is multiplied by it, and what clients are shown (expiresAt, period ends,
 * next attempts) follows. At 0.01 a 10-minute seat hold lapses after 6 s, not before.
 * @see issue 15 "Load-test controls"
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const at = (ms: number) => new Date(ms).toISOString();
const SCALE = { TIME_SCALE: '0.01' };

const apps: TestApp[] = [];
const receivers = receiverPool();
async function app(env: Record<string, string> = {}): Promise<TestApp> {
  const t = await buildTestApp({ ...SCALE, ...env });
  apps.push(t);
  return t;
}
afterEach(async () => {
  await receivers.closeAll();
  for (const t of apps.splice(0)) await t.app.close();
});

describe('bookings: the seat hold', () => {
  it('a 10-minute hold lapses after 6 s on the clock at TIME_SCALE=0.01, and is still held at 5.999 s', async () => {
    const t = await app({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' });
    const headers = { 'x-user-id': 'user_1' };
    const created = await t.app.inject({ method: 'POST', url: '/bookings', headers, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
    expect(created.statusCode).toBe(201);
    const bookingId = created.json().bookingId as string;
    expect(created.json()).toEqual({
      message: 'Booking and payment intent created. Please proceed to payment execution.',
      bookingId: expect.stringMatching(new RegExp(`^bk_${ULID}$`)),
      totalAmount: 60000,
      seatIds: ['A1', 'A2'],
      expiresAt: at(T0 + 6000),
    });
    const booking = (status: string) => ({ bookingId, userId: 'user_1', performanceId: 'perf_001', quantity: 2, seatIds: ['A1', 'A2'], totalAmount: 60000, status, createdAt: at(T0), expiresAt: at(T0 + 6000) });
    const mine = async () => (await t.app.inject({ url: '/bookings/my', headers })).json();
    const counts = async () => (await t.app.inject({ url: '/performances/perf_001/seats', headers })).json().counts;

    await t.clock.advance(5999);
    expect(await mine()).toEqual([booking('pending')]);
    expect(await counts()).toEqual({ total: 200, available: 198, held: 2, reserved: 0 });

    await t.clock.advance(1);
    expect(await mine()).toEqual([booking('expired')]);
    expect(await counts()).toEqual({ total: 200, available: 200, held: 0, reserved: 0 });
    const late = await t.app.inject({ method: 'POST', url: '/payments/execute', headers, payload: { bookingId, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' } });
    expect([late.statusCode, late.json()]).toEqual([410, { error: `Booking ${bookingId} expired at ${at(T0 + 6000)}.`, code: 'BOOKING_EXPIRED' }]);
  });
});

describe('native intents: decision delays', () => {
  it('the delay scenario is decided after DEFAULT_DELAY_DELAY_MS × scale (3000 ms → 30 ms), shown as delay_ms', async () => {
    const t = await app();
    const id = await createIntent(t, { scenario: 'delay' });
    const intent = async () => (await t.app.inject({ url: `/v1/sim/intents/${id}` })).json();
    const pending = {
      payment_intent_id: id,
      reservation_id: 'res_1',
      amount: 1000,
      currency: 'KRW',
      scenario: 'delay',
      status: 'PENDING',
      failure_code: null,
      refunded_amount: 0,
      delay_ms: 30,
      webhook_url: null,
      metadata: null,
      created_at: at(T0),
      updated_at: at(T0),
      decided_at: null,
      webhook: null,
    };
    expect(await intent()).toEqual(pending);
    await t.clock.advance(29);
    expect(await intent()).toEqual(pending);
    await t.clock.advance(1);
    expect(await intent()).toEqual({ ...pending, status: 'APPROVED', updated_at: at(T0 + 30), decided_at: at(T0 + 30) });
  });

  it('a request’s own delay_ms is scaled too (5000 → 50); 0 stays 0', async () => {
    const t = await app();
    const slow = await createIntent(t, { scenario: 'delay', delay_ms: 5000 });
    const now = await createIntent(t, { scenario: 'fail', delay_ms: 0 });
    const get = async (id: string) => (await t.app.inject({ url: `/v1/sim/intents/${id}` })).json();
    expect(await get(slow)).toMatchObject({ delay_ms: 50, status: 'PENDING' });
    await t.clock.advance(0);
    expect(await get(now)).toMatchObject({ delay_ms: 0, status: 'FAILED' });
    await t.clock.advance(49);
    expect((await get(slow)).status).toBe('PENDING');
    await t.clock.advance(1);
    expect((await get(slow)).status).toBe('APPROVED');
  });
});

describe('webhooks: retry backoff', () => {
  it('WEBHOOK_BACKOFF_MS 1000 at 0.01: the delivery log’s next attempts come 10 ms, then 20 ms after each failure (±20 % jitter)', async () => {
    const rx = await receivers.start(() => ({ status: 500, body: 'boom' }));
    const t = await app({ WEBHOOK_MAX_RPS: '0', WEBHOOK_BACKOFF_MS: '1000' });
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(2); // DEFAULT_APPROVE_DELAY_MS 200 × 0.01
    const query = `?payment_intent_id=${id}`;
    let d = await deliveryWhen(t, query, afterAttempts(1, 'retrying'), 'the first attempt');
    for (const [n, base] of [
      [1, 10],
      [2, 20],
    ] as const) {
      const last = Date.parse(d.attempts[n - 1]!.at);
      const next = Date.parse(d.next_attempt_at as string);
      expect(next - last).toBeGreaterThanOrEqual(base * 0.8);
      expect(next - last).toBeLessThanOrEqual(base * 1.2);
      await t.clock.advance(next - 1 - t.clock.now());
      expect((await deliveryWhen(t, query, () => true, 'the log')).attempts).toHaveLength(n);
      await t.clock.advance(1);
      d = await deliveryWhen(t, query, afterAttempts(n + 1, 'retrying'), `attempt ${n + 1}`);
    }
    expect(rx.requests).toHaveLength(3);
  });
});

describe('FluxPay subscriptions: plan periods', () => {
  // basic-monthly: 2026-01-15T12:00Z + 1 month = 31 days → 26,784 s at 0.01; + 2 months = 59 days → 50,976 s.
  const END_1 = T0 + 31 * 864_000;
  const END_2 = T0 + 59 * 864_000;

  it('a monthly plan renews after a month × scale, counted from the anchor', async () => {
    const t = await app({ WEBHOOK_MAX_RPS: '0' });
    const card = { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 };
    const sub = resultOf(await fpPost(t, '/api/v1/subscriptions', { userId: 'user_1', planId: 'basic-monthly', card }));
    const id = sub.subscriptionId as string;
    const invoice = (kind: string, start: number, end: number, createdAt: number): Json => ({
      invoiceId: expect.stringMatching(new RegExp(`^inv_${ULID}$`)),
      kind,
      planId: 'basic-monthly',
      amount: 9900,
      currency: 'KRW',
      periodStart: at(start),
      periodEnd: at(end),
      status: 'PAID',
      orderId: expect.stringMatching(new RegExp(`^ord_${ULID}$`)),
      paymentKey: expect.stringMatching(new RegExp(`^pk_${ULID}$`)),
      failureCode: null,
      createdAt: at(createdAt),
    });
    const first: Json = {
      subscriptionId: id,
      userId: 'user_1',
      planId: 'basic-monthly',
      status: 'ACTIVE',
      cancelAtPeriodEnd: false,
      currentPeriodStart: at(T0),
      currentPeriodEnd: at(END_1),
      pendingPlanId: null,
      nextChargeAt: at(END_1),
      dunningAttempt: 0,
      card: { last4: '4242', expMonth: 12, expYear: 2030 },
      canceledAt: null,
      expiredAt: null,
      createdAt: at(T0),
      updatedAt: at(T0),
      invoices: [invoice('INITIAL', T0, END_1, T0)],
    };
    expect(sub).toEqual(first);
    const read = async () => resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`));

    await t.clock.advance(END_1 - 1 - T0);
    await t.app.fluxpay.relay.idle();
    expect(await read()).toEqual(first);
    await t.clock.advance(1);
    await t.app.fluxpay.relay.idle();
    expect(await read()).toEqual({
      ...first,
      currentPeriodStart: at(END_1),
      currentPeriodEnd: at(END_2),
      nextChargeAt: at(END_2),
      updatedAt: at(END_1),
      invoices: [invoice('INITIAL', T0, END_1, T0), invoice('RENEWAL', END_1, END_2, END_1)],
    });
  });
});

describe('FluxPay waiting rooms: admission rate and token lifetime', () => {
  it('2 a second at 0.01 admits every 5 ms; a 60 s token lasts 600 ms; the room reads back its settings as put', async () => {
    const t = await app();
    const put = await t.app.inject({ method: 'PUT', url: '/api/v1/waiting-rooms/sale', payload: { admitPerSecond: 2, admissionTtlSeconds: 60, protectedServiceIds: ['ai-writer'] } });
    expect(put.statusCode).toBe(201);
    expect(put.json()).toEqual({
      ...SUCCESS,
      result: {
        roomId: 'sale',
        admitPerSecond: 2,
        admissionTtlSeconds: 60,
        protectedServiceIds: ['ai-writer'],
        maxActive: null,
        active: true,
        size: 0,
        entered: 0,
        admitted: 0,
        activeTokens: 0,
        used: 0,
        expired: 0,
        currentRate: 200,
        nextAdmissionAt: null,
        createdAt: at(T0),
        updatedAt: at(T0),
      },
    });
    const enter = async (userId: string) => resultOf(await fpPost(t, '/api/v1/waiting-rooms/sale/enter', { userId }));
    const ticket = async (id: string) => resultOf(await fpGet(t, `/api/v1/waiting-rooms/sale/tickets/${id}`));
    const first = await enter('u1');
    const second = await enter('u2');
    expect(first).toMatchObject({ status: 'ADMITTED', admittedAt: at(T0), expiresAt: at(T0 + 600) });
    expect(second).toMatchObject({ status: 'WAITING', position: 1, estimatedWaitSeconds: 1, admittedAt: null, expiresAt: null });
    await t.clock.advance(4);
    expect(await ticket(second.ticket as string)).toMatchObject({ status: 'WAITING', position: 1 });
    await t.clock.advance(1);
    expect(await ticket(second.ticket as string)).toMatchObject({ status: 'ADMITTED', position: 0, admittedAt: at(T0 + 5), expiresAt: at(T0 + 605) });
    await t.clock.advance(594); // T0 + 599
    expect(await ticket(first.ticket as string)).toMatchObject({ status: 'ADMITTED' });
    await t.clock.advance(1);
    expect(await ticket(first.ticket as string)).toMatchObject({ status: 'EXPIRED' });
    expect(resultOf(await fpGet(t, '/api/v1/waiting-rooms/sale'))).toMatchObject({ admitPerSecond: 2, admissionTtlSeconds: 60, currentRate: 200, admitted: 2, expired: 1 });
  });
});

describe('the process', () => {
  it.each([
    ['0', 'Invalid configuration: TIME_SCALE must be at least 0.001 (got "0")'],
    ['x', 'Invalid configuration: TIME_SCALE must be a number (got "x")'],
  ])('TIME_SCALE=%s stops the start with one line', async (value, line) => {
    const run = await runToExit({ WEBHOOK_SECRET: 'whsec_cHJvY2Vzcy10ZXN0LXNlY3JldC0xMjM0NQ==', TIME_SCALE: value });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`${line}\n`);
  });
});
