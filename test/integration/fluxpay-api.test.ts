import { afterEach, describe, expect, it } from 'vitest';
import { ULID, untilScheduled } from '../helpers/app.ts';
import { metricSample } from '../helpers/webhooks.ts';
import {
  balanceOf,
  chargeCredits,
  confirm,
  createOrder,
  createPayment,
  errorOf,
  fpError,
  fpGet,
  fluxpayApps,
  fpPost,
  paidOrder,
  postEvent,
  reconciliation,
  resultOf,
  SUCCESS,
  usageEvent,
  type Json,
} from '../helpers/fluxpay.ts';

/**
 * The FluxPay API (source document 002, issue 11), black-box through `inject`: every route, every
 * state an order, a payment and a usage can reach, every code, and the state after each call
 * (including after refusals: nothing changed). Sagas, the outbox and races have files of their own.
 * @see issue 11
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const AT = new Date(T0).toISOString();
const id = (prefix: string) => expect.stringMatching(new RegExp(`^${prefix}_${ULID}$`));

const { app, closeAll } = fluxpayApps();
afterEach(closeAll);

const orderBody = { userId: 'user_1', serviceId: 'ai-writer', orderName: 'AI Writer report', amount: 15000 };

function expectedOrder(overrides: Json = {}): Json {
  return {
    orderId: id('ord'),
    userId: 'user_1',
    serviceId: 'ai-writer',
    orderName: 'AI Writer report',
    amount: 15000,
    currency: 'KRW',
    metadata: null,
    status: 'PENDING',
    paymentKey: null,
    sagaId: null,
    chargedCredits: null,
    cancelReason: null,
    createdAt: AT,
    updatedAt: AT,
    paidAt: null,
    completedAt: null,
    cancelledAt: null,
    ...overrides,
  };
}

function expectedPayment(orderId: string, overrides: Json = {}): Json {
  return {
    paymentKey: id('pk'),
    orderId,
    userId: 'user_1',
    amount: 15000,
    currency: 'KRW',
    method: 'CARD',
    card: { last4: '4242', expMonth: null, expYear: null },
    easyPay: null,
    status: 'READY',
    failureCode: null,
    decidedBy: null,
    createdAt: AT,
    updatedAt: AT,
    approvedAt: null,
    confirmedAt: null,
    failedAt: null,
    cancelledAt: null,
    ...overrides,
  };
}

describe('orders', () => {
  it('POST /api/v1/orders creates a PENDING order in the wrapper; GET reads it back', async () => {
    const t = await app();
    const res = await fpPost(t, '/api/v1/orders', { ...orderBody, currency: 'KRW', metadata: { reportId: 'rpt-42' } });
    expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([200, 'application/json; charset=utf-8', { ...SUCCESS, result: expectedOrder({ metadata: { reportId: 'rpt-42' } }) }]);
    const order = res.json().result;
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toEqual(order);
  });

  it('bad input is COMMON_400 with result.errors, and nothing is stored', async () => {
    const t = await app();
    const cases: Array<[Json, Json[]]> = [
      [{ ...orderBody, amount: 0 }, [{ field: 'amount', reason: 'must be >= 1' }]],
      [{ ...orderBody, amount: 1.5 }, [{ field: 'amount', reason: 'must be integer' }]],
      [{ ...orderBody, currency: 'krw' }, [{ field: 'currency', reason: 'must be an ISO 4217 currency code such as KRW, USD or EUR' }]],
      [{ ...orderBody, currency: 'XYZ' }, [{ field: 'currency', reason: 'must be an ISO 4217 currency code such as KRW, USD or EUR' }]],
      [{ ...orderBody, extra: 1 }, [{ field: 'extra', reason: 'is not a known field' }]],
      // It is the run report's reference of a FluxPay row, as a native reservation_id is (2026-12-05, a review).
      [{ ...orderBody, orderName: 'Plan\r\n=HYPERLINK("x")' }, [{ field: 'orderName', reason: 'must be free of control characters' }]],
      [{ userId: 'user_1' }, [{ field: 'serviceId', reason: "must have required property 'serviceId'" }, { field: 'orderName', reason: "must have required property 'orderName'" }, { field: 'amount', reason: "must have required property 'amount'" }]],
      [{ ...orderBody, metadata: { kind: 'CREDIT_CHARGE', credits: -5 } }, [{ field: 'metadata.credits', reason: 'must be a whole number of credits from 1 to 1000000000' }]],
      // As the API's other credit figures (2026-12-06: Redis adds charges up in 64-bit counters, and one that overflowed them was half written, a review).
      [{ ...orderBody, metadata: { kind: 'CREDIT_CHARGE', credits: 1_000_000_001 } }, [{ field: 'metadata.credits', reason: 'must be a whole number of credits from 1 to 1000000000' }]],
      [{ ...orderBody, metadata: { kind: 'CREDIT_CHARGE', credits: Number.MAX_SAFE_INTEGER } }, [{ field: 'metadata.credits', reason: 'must be a whole number of credits from 1 to 1000000000' }]],
    ];
    for (const [body, errors] of cases) {
      const [status, answer] = errorOf(await fpPost(t, '/api/v1/orders', body));
      expect([status, answer], JSON.stringify(body)).toEqual([400, fpError('COMMON_400', expect.any(String), { errors })]);
    }
    // A figure JSON.parse makes Infinity would be kept and answered as null (a user test, 2026-12-07: a 5,000-digit figure came back null).
    for (const figure of ['1e400', `-${'9'.repeat(400)}`]) {
      const huge = await t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'content-type': 'application/json' }, payload: `{"userId":"user_1","serviceId":"svc_1","orderName":"Plan","amount":1000,"metadata":{"a":{"b":[1,${figure}]}}}` });
      expect(errorOf(huge)).toEqual([400, fpError('COMMON_400', expect.any(String), { errors: [{ field: 'metadata.a.b.1', reason: 'must be a number JSON can hold (at most about 1.8e308): it would be kept as null' }] })]);
    }
    expect(resultOf(await fpGet(t, '/api/v1/orders'))).toEqual({ items: [], nextCursor: null });
    const most = { kind: 'CREDIT_CHARGE', credits: 1_000_000_000 };
    expect(resultOf(await fpPost(t, '/api/v1/orders', { ...orderBody, metadata: most }))).toEqual(expectedOrder({ metadata: most }));
  });

  it('malformed JSON and a form body are COMMON_400 and COMMON_415', async () => {
    const t = await app();
    const broken = await t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'content-type': 'application/json' }, payload: '{"userId":' });
    expect(errorOf(broken)).toEqual([400, fpError('COMMON_400', expect.any(String), { errors: [{ field: 'body', reason: expect.stringMatching(/^malformed JSON at line 1, column 11/) }] })]);
    const form = await t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'userId=1' });
    expect(errorOf(form)).toEqual([415, fpError('COMMON_415', 'Send the body as application/json.')]);
  });

  it('GET an unknown order is COMMON_404; a malformed id is COMMON_400', async () => {
    const t = await app();
    expect(errorOf(await fpGet(t, '/api/v1/orders/ord_01KBA7Q4A6J3M8P1T5W9Y2C4HD'))).toEqual([404, fpError('COMMON_404', 'Order ord_01KBA7Q4A6J3M8P1T5W9Y2C4HD was not found.')]);
    expect(errorOf(await fpGet(t, '/api/v1/orders/nope'))).toEqual([400, fpError('COMMON_400', expect.any(String), { errors: [{ field: 'path.orderId', reason: 'must be ord_ followed by a 26-character ULID' }] })]);
  });

  it('GET /api/v1/orders pages newest first, by user and status', async () => {
    const t = await app();
    const a = await createOrder(t);
    const b = await createOrder(t, { userId: 'user_2' });
    const c = await createOrder(t);
    await paidOrder(t, { userId: 'user_3' });
    const first = resultOf(await fpGet(t, '/api/v1/orders?userId=user_1&limit=1'));
    expect(first).toEqual({ items: [c], nextCursor: c.orderId });
    expect(resultOf(await fpGet(t, `/api/v1/orders?userId=user_1&limit=1&cursor=${first.nextCursor}`))).toEqual({ items: [a], nextCursor: null });
    expect(resultOf(await fpGet(t, `/api/v1/orders?userId=user_1&limit=1&cursor=${a.orderId}`))).toEqual({ items: [], nextCursor: null });
    expect(resultOf(await fpGet(t, '/api/v1/orders?userId=user_2')).items).toEqual([b]);
    expect(resultOf(await fpGet(t, '/api/v1/orders?status=PAID')).items.map((o: Json) => o.userId)).toEqual(['user_3']);
    expect(resultOf(await fpGet(t, '/api/v1/orders')).items).toHaveLength(4);
    expect(errorOf(await fpGet(t, '/api/v1/orders?limit=101'))[1].code).toBe('COMMON_400');
    expect(errorOf(await fpGet(t, '/api/v1/orders?status=DONE'))[1].result.errors).toEqual([{ field: 'query.status', reason: 'must be one of PENDING, PAID, COMPLETED, CANCELLED' }]);
  });

  it('cancel: PENDING → CANCELLED; again → PAY_004; unknown → COMMON_404', async () => {
    const t = await app();
    const order = await createOrder(t);
    const res = await fpPost(t, `/api/v1/orders/${order.orderId}/cancel`, { reason: 'changed my mind' });
    expect(resultOf(res)).toEqual({ order: { ...order, status: 'CANCELLED', cancelReason: 'changed my mind', cancelledAt: AT }, payment: null });
    expect(errorOf(await fpPost(t, `/api/v1/orders/${order.orderId}/cancel`, {}))).toEqual([409, fpError('PAY_004', `Order ${order.orderId} is CANCELLED; only a PENDING or PAID order can be cancelled.`)]);
    expect(errorOf(await fpPost(t, '/api/v1/orders/ord_01KBA7Q4A6J3M8P1T5W9Y2C4HD/cancel', {}))[0]).toBe(404);
    // No body at all is a cancel without a reason.
    const other = await createOrder(t);
    const bare = await t.app.inject({ method: 'POST', url: `/api/v1/orders/${other.orderId}/cancel` });
    expect(resultOf(bare).order).toMatchObject({ status: 'CANCELLED', cancelReason: null });
    // A READY payment of a cancelled order stays READY (as the README and the operation say) and can no longer be confirmed.
    const third = await createOrder(t);
    const ready = await createPayment(t, third.orderId);
    expect(resultOf(await fpPost(t, `/api/v1/orders/${third.orderId}/cancel`, {})).payment).toBeNull();
    expect(errorOf(await confirm(t, ready))).toEqual([409, fpError('PAY_004', `Order ${third.orderId} is CANCELLED; only a PENDING order can be paid.`)]);
    expect(resultOf(await fpGet(t, `/api/v1/payments/${ready.paymentKey}`))).toEqual(ready);
  });

  it('a payment’s read is counted and logged under its route as the OpenAPI document names it, not the router’s pattern with its expression (before 2026-12-06 a dashboard selecting the route found nothing)', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const t = await app({}, { logs });
    const payment = await createPayment(t, (await createOrder(t)).orderId);
    expect((await fpGet(t, `/api/v1/payments/${payment.paymentKey}`)).statusCode).toBe(200);
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metrics.split('\n').filter((line) => line.startsWith('http_requests_total{method="GET",route="/api/v1/payments'))).toEqual(['http_requests_total{method="GET",route="/api/v1/payments/:paymentKey",status_code="200"} 1']);
    expect(logs.filter((l) => l.msg === 'request completed' && l.method === 'GET' && l.route !== '/metrics').map((l) => [l.route, l.status_code])).toEqual([['/api/v1/payments/:paymentKey', 200]]);
  });

  it('cancel of a PAID order refunds its payment (CANCELLED) and reverses the ledger', async () => {
    const t = await app();
    const { order, payment } = await paidOrder(t);
    const result = resultOf(await fpPost(t, `/api/v1/orders/${order.orderId}/cancel`, {}));
    expect(result).toEqual({ order: { ...order, status: 'CANCELLED', cancelledAt: AT }, payment: { ...payment, status: 'CANCELLED', cancelledAt: AT } });
    const report = await reconciliation(t);
    expect(report.ledger.accounts).toEqual([
      { account: 'CUSTOMER_PAYMENTS', unit: 'KRW', debits: 15000, credits: 15000, balance: 0 },
      { account: 'MERCHANT_BALANCE', unit: 'KRW', debits: 15000, credits: 15000, balance: 0 },
    ]);
    expect(report.mismatches).toEqual([]);
    // A COMPLETED order cannot be cancelled.
    const credits = await chargeCredits(t, 'user_9', 100);
    expect(errorOf(await fpPost(t, `/api/v1/orders/${credits.orderId}/cancel`, {}))).toEqual([409, fpError('PAY_004', `Order ${credits.orderId} is COMPLETED; only a PENDING or PAID order can be cancelled.`)]);
  });
});

describe('payments', () => {
  it('POST /api/v1/payments: READY with a paymentKey; the card is not kept, only its last four digits', async () => {
    const t = await app();
    const order = await createOrder(t);
    const res = await fpPost(t, '/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } });
    const payment = resultOf(res);
    expect(payment).toEqual(expectedPayment(order.orderId, { card: { last4: '4242', expMonth: 12, expYear: 2030 } }));
    expect(res.body).not.toContain('424242424242');
    expect(res.body).not.toContain('"123"');
    expect(resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`))).toEqual(payment);
    const easy = resultOf(await fpPost(t, '/api/v1/payments', { orderId: order.orderId, method: 'EASY_PAY', easyPay: { provider: 'TOSSPAY' } }));
    expect(easy).toEqual(expectedPayment(order.orderId, { method: 'EASY_PAY', card: null, easyPay: { provider: 'TOSSPAY' } }));
  });

  it('refusals: unknown order (404), order not PENDING (PAY_004), card and method disagree, a card that fails the Luhn check (COMMON_400)', async () => {
    const t = await app();
    expect(errorOf(await fpPost(t, '/api/v1/payments', { orderId: 'ord_01KBA7Q4A6J3M8P1T5W9Y2C4HD', method: 'EASY_PAY', easyPay: { provider: 'X' } }))[0]).toBe(404);
    const { order } = await paidOrder(t);
    expect(errorOf(await fpPost(t, '/api/v1/payments', { orderId: order.orderId, method: 'EASY_PAY', easyPay: { provider: 'X' } }))).toEqual([
      409,
      fpError('PAY_004', `Order ${order.orderId} is PAID; a payment can be made only for a PENDING order.`),
    ]);
    const pending = await createOrder(t);
    const cases: Array<[Json, Json[]]> = [
      [{ method: 'CARD' }, [{ field: 'card', reason: 'is required when method is CARD' }]],
      [{ method: 'EASY_PAY' }, [{ field: 'easyPay', reason: 'is required when method is EASY_PAY' }]],
      [{ method: 'EASY_PAY', easyPay: { provider: 'X' }, card: { number: '4242424242424242' } }, [{ field: 'card', reason: 'is only for method CARD' }]],
      [{ method: 'CARD', card: { number: '4242424242424241' } }, [{ field: 'card.number', reason: 'must be 12 to 19 digits passing the Luhn check' }]],
      [{ method: 'CARD', card: { number: '4242424242424242', expMonth: 12 } }, [{ field: 'card.expYear', reason: 'exp_month and exp_year are given together' }]],
      [{ method: 'PAYPAL' }, [{ field: 'method', reason: 'must be one of CARD, EASY_PAY' }]],
    ];
    for (const [body, errors] of cases) {
      expect(errorOf(await fpPost(t, '/api/v1/payments', { orderId: pending.orderId, ...body })), JSON.stringify(body)).toEqual([400, fpError('COMMON_400', expect.any(String), { errors })]);
    }
    expect((await reconciliation(t)).payments.total).toBe(1);
  });

  it('confirm approves: payment APPROVED, order PAID, the ledger posts the amount', async () => {
    const t = await app();
    const order = await createOrder(t);
    const payment = await createPayment(t, order.orderId);
    const approved = resultOf(await confirm(t, payment));
    expect(approved).toEqual({ ...payment, status: 'APPROVED', decidedBy: 'card', approvedAt: AT });
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toEqual({ ...order, status: 'PAID', paymentKey: payment.paymentKey, paidAt: AT });
    const report = await reconciliation(t);
    expect(report).toMatchObject({ consistent: true, duplicateCharges: 0, orders: { PAID: 1 }, payments: { APPROVED: 1 } });
    expect(report.ledger.accounts).toEqual([
      { account: 'CUSTOMER_PAYMENTS', unit: 'KRW', debits: 15000, credits: 0, balance: 15000 },
      { account: 'MERCHANT_BALANCE', unit: 'KRW', debits: 0, credits: 15000, balance: -15000 },
    ]);
  });

  it('confirm declines by the CVV rule: PAY_002 with the failure code, payment FAILED, order still PENDING and payable again', async () => {
    const t = await app();
    const order = await createOrder(t);
    const payment = await createPayment(t, order.orderId, { card: { number: '4111111111111111', cvv: '442' } });
    expect(errorOf(await confirm(t, payment))).toEqual([402, fpError('PAY_002', 'Payment approval failed: DECLINE_2.')]);
    expect(resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`))).toEqual({ ...payment, card: { last4: '1111', expMonth: null, expYear: null }, status: 'FAILED', failureCode: 'DECLINE_2', decidedBy: 'card', failedAt: AT });
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`)).status).toBe('PENDING');
    // Confirming the failed one again: already processed.
    expect(errorOf(await confirm(t, payment))).toEqual([409, fpError('PAY_003', `Payment ${payment.paymentKey} was already processed: FAILED (DECLINE_2), CARD, amount 15000 KRW, order ${order.orderId}.`)]);
    // Another payment of the same order goes through.
    expect(resultOf(await confirm(t, await createPayment(t, order.orderId))).status).toBe('APPROVED');
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('expired cards and Stripe test numbers have their outcomes; X-Sim-Scenario overrides the card', async () => {
    const t = await app();
    const cases: Array<[Json, Record<string, string>, number, string]> = [
      [{ number: '4242424242424242', expMonth: 1, expYear: 2020 }, {}, 402, 'Payment approval failed: expired_card.'],
      [{ number: '4000000000000002' }, {}, 402, 'Payment approval failed: card_declined.'],
      [{ number: '4000000000009995' }, {}, 402, 'Payment approval failed: insufficient_funds.'],
      [{ number: '4111111111111111', cvv: '442' }, { 'x-sim-scenario': 'approve' }, 200, ''],
      [{ number: '4242424242424242', cvv: '120' }, { 'x-sim-scenario': 'fail' }, 402, 'Payment approval failed: card_declined.'],
    ];
    for (const [card, headers, status, message] of cases) {
      const order = await createOrder(t);
      const res = await confirm(t, await createPayment(t, order.orderId, { card }), headers);
      expect(res.statusCode, JSON.stringify(card)).toBe(status);
      if (status === 402) expect(res.json()).toEqual(fpError('PAY_002', message));
      else expect(res.json().result).toMatchObject({ status: 'APPROVED', decidedBy: 'approve' });
    }
  });

  it('X-Sim-Scenario: delay answers after DEFAULT_DELAY_DELAY_MS on the clock, approved', async () => {
    const t = await app({ DEFAULT_DELAY_DELAY_MS: '3000' });
    const order = await createOrder(t);
    const payment = await createPayment(t, order.orderId);
    let done = false;
    const before = t.clock.pendingTimers;
    const pending = confirm(t, payment, { 'x-sim-scenario': 'delay' }).finally(() => (done = true));
    await untilScheduled(t, before);
    await t.clock.advance(2999);
    expect(done).toBe(false);
    await t.clock.advance(1);
    const res = await pending;
    expect(resultOf(res)).toMatchObject({ status: 'APPROVED', decidedBy: 'delay', approvedAt: new Date(T0 + 3000).toISOString() });
  });

  it('a confirm the store would refuse is refused at once with X-Sim-Scenario too: no delay waited out, no random draw spent (2026-12-07, a user test: PAY_005 after 3 s, and the seeded outcomes after it shifted)', async () => {
    const t = await app({ DEFAULT_DELAY_DELAY_MS: '3000' });
    const order = await createOrder(t);
    const payment = await createPayment(t, order.orderId);
    const timers = t.clock.pendingTimers;
    // Answered without the clock moving: nothing waits on it.
    expect(errorOf(await fpPost(t, '/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: order.orderId, amount: 1 }, { 'x-sim-scenario': 'delay' }))).toEqual([
      400,
      fpError('PAY_005', `amount 1 does not match order ${order.orderId}'s amount 15000.`),
    ]);
    expect(t.clock.pendingTimers).toBe(timers);
    expect(resultOf(await confirm(t, payment))).toMatchObject({ status: 'APPROVED', decidedBy: 'card' });
    expect(errorOf(await confirm(t, payment, { 'x-sim-scenario': 'delay' }))[1]).toMatchObject({ code: 'PAY_003' });
    expect(t.clock.pendingTimers).toBe(timers);

    // With RANDOM_SEED, refused confirms in between leave the random outcomes of the others as they were.
    const outcomes = async (refusals: boolean): Promise<string[]> => {
      const seeded = await app({ RANDOM_SEED: '7', RANDOM_APPROVE_RATE: '0.5' });
      const out: string[] = [];
      for (let i = 0; i < 10; i++) {
        const p = await createPayment(seeded, (await createOrder(seeded)).orderId);
        if (refusals) {
          expect(errorOf(await fpPost(seeded, '/api/v1/payments/confirm', { paymentKey: p.paymentKey, orderId: p.orderId, amount: 2 }, { 'x-sim-scenario': 'random' }))[0]).toBe(400);
        }
        const res = await confirm(seeded, p, { 'x-sim-scenario': 'random' });
        out.push(res.statusCode === 200 ? 'APPROVED' : 'DECLINED');
        if (refusals) expect(errorOf(await confirm(seeded, p, { 'x-sim-scenario': 'random' }))[1]).toMatchObject({ code: 'PAY_003' });
      }
      return out;
    };
    const plain = await outcomes(false);
    expect(new Set(plain)).toEqual(new Set(['APPROVED', 'DECLINED']));
    expect(await outcomes(true)).toEqual(plain);

    // Two confirms of one payment at once, each drawing a mix's pick (delay) and waiting it out: the store confirms one
    // and refuses the other (PAY_003), whose draw goes back, so the random payment after them ends as it would without it.
    const racing = async (twice: boolean): Promise<string[]> => {
      const seeded = await app({ RANDOM_SEED: '11', RANDOM_APPROVE_RATE: '0.5', DEFAULT_DELAY_DELAY_MS: '1000' });
      const out: string[] = [];
      for (let i = 0; i < 6; i++) {
        const p = await createPayment(seeded, (await createOrder(seeded)).orderId);
        const before = seeded.clock.pendingTimers;
        const confirms = (twice ? [1, 2] : [1]).map(() => confirm(seeded, p, { 'x-sim-scenario': 'mix', 'x-sim-mix': 'delay:1' }));
        await untilScheduled(seeded, before + confirms.length - 1);
        await seeded.clock.advance(1000);
        const answers = await Promise.all(confirms);
        expect(answers.map((res) => res.statusCode).sort()).toEqual(twice ? [200, 409] : [200]);
        const next = await createPayment(seeded, (await createOrder(seeded)).orderId);
        out.push((await confirm(seeded, next, { 'x-sim-scenario': 'random' })).statusCode === 200 ? 'APPROVED' : 'DECLINED');
      }
      return out;
    };
    const alone = await racing(false);
    expect(new Set(alone)).toEqual(new Set(['APPROVED', 'DECLINED']));
    expect(await racing(true)).toEqual(alone);
  });

  it('PAY_005 when the amount is not the order’s, PAY_004 when the order was paid by another payment, PAY_003 on a second confirm; nothing changes', async () => {
    const t = await app();
    const order = await createOrder(t);
    const first = await createPayment(t, order.orderId);
    const second = await createPayment(t, order.orderId);
    expect(errorOf(await fpPost(t, '/api/v1/payments/confirm', { paymentKey: first.paymentKey, orderId: order.orderId, amount: 10000 }))).toEqual([
      400,
      fpError('PAY_005', `amount 10000 does not match order ${order.orderId}'s amount 15000.`),
    ]);
    expect(resultOf(await fpGet(t, `/api/v1/payments/${first.paymentKey}`)).status).toBe('READY');
    expect(resultOf(await confirm(t, first)).status).toBe('APPROVED');
    expect(errorOf(await confirm(t, first))).toEqual([409, fpError('PAY_003', `Payment ${first.paymentKey} was already processed: APPROVED, CARD, amount 15000 KRW, order ${order.orderId}.`)]);
    expect(errorOf(await confirm(t, second))).toEqual([409, fpError('PAY_004', `Order ${order.orderId} is PAID; only a PENDING order can be paid.`)]);
    expect(resultOf(await fpGet(t, `/api/v1/payments/${second.paymentKey}`)).status).toBe('READY');
    const other = await createOrder(t);
    expect(errorOf(await fpPost(t, '/api/v1/payments/confirm', { paymentKey: second.paymentKey, orderId: other.orderId, amount: 15000 }))).toEqual([
      400,
      fpError('COMMON_400', `orderId: does not match payment ${second.paymentKey}`, { errors: [{ field: 'orderId', reason: `does not match payment ${second.paymentKey}` }] }),
    ]);
    expect(errorOf(await fpPost(t, '/api/v1/payments/confirm', { paymentKey: 'pk_01KBA7Q4B1K4N9Q2V6X0Z3D5JE', orderId: other.orderId, amount: 15000 }))).toEqual([
      404,
      fpError('COMMON_404', 'Payment pk_01KBA7Q4B1K4N9Q2V6X0Z3D5JE was not found.'),
    ]);
    const report = await reconciliation(t);
    expect([report.duplicateCharges, report.payments.APPROVED, report.mismatches]).toEqual([0, 1, []]);
  });

  it('payments are bounded by FLUXPAY_MAX_RECORDS: one past it while an open order holds them all is 503 COMMON_503 with Retry-After (as a full store of orders answers), nothing stored; once that order is finished it makes room', async () => {
    const t = await app({ FLUXPAY_MAX_RECORDS: '3' });
    const order = await createOrder(t);
    // Declined by the CVV rule: the order stays PENDING, payable again (a load test retrying payments).
    for (let i = 0; i < 3; i++) {
      const payment = await createPayment(t, order.orderId, { card: { number: '4111111111111111', cvv: '442' } });
      expect(errorOf(await confirm(t, payment))[0]).toBe(402);
    }
    const full = await fpPost(t, '/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123' } });
    expect([full.statusCode, full.headers, full.json()]).toEqual([
      503,
      {
        'x-request-id': expect.any(String),
        'ratelimit-limit': '100000',
        'ratelimit-remaining': '99993',
        'ratelimit-reset': '1',
        'content-type': 'application/json; charset=utf-8',
        'retry-after': '1',
        'content-length': '310',
        date: expect.any(String),
        connection: 'keep-alive',
      },
      fpError('COMMON_503', 'The fluxpay store is full of open work, which it keeps until it ends: PENDING or PAID orders with their payments (complete or cancel them) and running usage sagas; retrying alone does not make room until some end (or raise FLUXPAY_MAX_RECORDS).'),
    ]);
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^store_full_total\{store="fluxpay"\} 1$/m);
    // Each of the two bounds has its fill: one order, three payments, of three each.
    const fill = (text: string) => ['records', 'capacity'].flatMap((family) => ['fluxpay', 'fluxpay_payments'].map((store) => metricSample(text, `store_${family}{store="${store}"}`)));
    expect(fill(metrics)).toEqual([1, 3, 3, 3]);
    expect(metricSample(metrics, 'store_fill_ratio{store="fluxpay_payments"}')).toBe(1);
    expect((await reconciliation(t)).payments.total).toBe(3);
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`)).status).toBe('PENDING');
    // Cancelled, the order is finished: the next payment evicts it with its three.
    resultOf(await fpPost(t, `/api/v1/orders/${order.orderId}/cancel`, {}));
    const other = await createOrder(t);
    expect(await createPayment(t, other.orderId)).toEqual(expectedPayment(other.orderId));
    expect(errorOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))[0]).toBe(404);
    expect((await reconciliation(t)).payments.total).toBe(1);
    expect(fill((await t.app.inject({ url: '/metrics' })).body)).toEqual([1, 1, 3, 3]);
  });

  it('GET an unknown payment key is COMMON_404', async () => {
    const t = await app();
    expect(errorOf(await fpGet(t, '/api/v1/payments/pk_01KBA7Q4B1K4N9Q2V6X0Z3D5JE'))).toEqual([404, fpError('COMMON_404', 'Payment pk_01KBA7Q4B1K4N9Q2V6X0Z3D5JE was not found.')]);
  });
});

describe('credits', () => {
  it('balance of a new user is 0; charge adds metadata.credits once, completes the order and confirms its payment', async () => {
    const t = await app();
    expect(resultOf(await fpGet(t, '/api/v1/credits/balance?userId=user_1'))).toEqual({ userId: 'user_1', balance: 0 });
    const { order, payment } = await paidOrder(t, { orderName: '1,000 credits', amount: 10000, metadata: { kind: 'CREDIT_CHARGE', credits: 1000 } });
    const charged = resultOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_1', orderId: order.orderId }));
    expect(charged).toEqual({
      userId: 'user_1',
      orderId: order.orderId,
      credits: 1000,
      balance: 1000,
      transaction: { transactionId: id('tx'), userId: 'user_1', type: 'CHARGE', amount: 1000, balanceAfter: 1000, orderId: order.orderId, usageId: null, serviceId: 'ai-writer', createdAt: AT },
    });
    expect(await balanceOf(t, 'user_1')).toBe(1000);
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toEqual({ ...order, status: 'COMPLETED', chargedCredits: 1000, completedAt: AT });
    expect(resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`))).toEqual({ ...payment, status: 'CONFIRMED', confirmedAt: AT });
    expect(errorOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_1', orderId: order.orderId }))).toEqual([409, fpError('PAY_003', `Order ${order.orderId} was already charged: 1000 credits.`)]);
    expect(await balanceOf(t, 'user_1')).toBe(1000);
  });

  it('charge without metadata.credits adds the amount; refusals: another user’s (404), not a charge order, not PAID (PAY_004, each saying which); a usage saga does not take a charge order from its credits', async () => {
    const t = await app();
    const { order } = await paidOrder(t, { amount: 500, metadata: { kind: 'CREDIT_CHARGE' } });
    expect(errorOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_2', orderId: order.orderId }))).toEqual([404, fpError('COMMON_404', `Order ${order.orderId} of user user_2 was not found.`)]);
    expect(resultOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_1', orderId: order.orderId })).credits).toBe(500);
    const plain = await paidOrder(t);
    expect(errorOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_1', orderId: plain.order.orderId }))).toEqual([
      409,
      fpError('PAY_004', `Order ${plain.order.orderId} is not a credit charge (metadata.kind is not CREDIT_CHARGE).`),
    ]);
    const unpaid = await createOrder(t, { metadata: { kind: 'CREDIT_CHARGE', credits: 5 } });
    expect(errorOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_1', orderId: unpaid.orderId }))).toEqual([409, fpError('PAY_004', `Order ${unpaid.orderId} is PENDING; credits are charged from a PAID order.`)]);
    // A usage saga naming a PAID charge order fails its first step (PAY_004): the order stays the user's to charge.
    const charge = await paidOrder(t, { metadata: { kind: 'CREDIT_CHARGE', credits: 5 } });
    const requested = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'held', orderId: charge.order.orderId })));
    expect([requested.saga.status, requested.saga.failureReason]).toEqual(['COMPENSATED', 'PAY_004']);
    expect(resultOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_1', orderId: charge.order.orderId })).credits).toBe(5);
    expect(await balanceOf(t, 'user_1')).toBe(505);
  });

  it('FLUXPAY_MAX_CREDIT_USERS: a first charge for one user more is COMMON_409 with nothing changed (the order stays PAID); users with a balance are charged on; /metrics shows the fill', async () => {
    const t = await app({ FLUXPAY_MAX_CREDIT_USERS: '1' });
    await chargeCredits(t, 'user_1', 100);
    const { order, payment } = await paidOrder(t, { userId: 'user_2', metadata: { kind: 'CREDIT_CHARGE', credits: 50 } });
    const paymentBefore = resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`));
    const message =
      "No credits were charged: FLUXPAY_MAX_CREDIT_USERS (1) users hold credit balances already, and balances are never evicted (they are users' money). Charge users who have a balance, or raise FLUXPAY_MAX_CREDIT_USERS; the order stays PAID.";
    expect(errorOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_2', orderId: order.orderId }))).toEqual([409, fpError('COMMON_409', message)]);
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toEqual(order);
    expect(resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`))).toEqual(paymentBefore);
    expect(await balanceOf(t, 'user_2')).toBe(0);
    expect(resultOf(await fpGet(t, '/api/v1/credits/transactions?userId=user_2'))).toEqual({ items: [], nextCursor: null });
    await chargeCredits(t, 'user_1', 20);
    expect(await balanceOf(t, 'user_1')).toBe(120);
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(['records', 'capacity', 'fill_ratio'].map((family) => metricSample(metrics, `store_${family}{store="fluxpay_credit_users"}`))).toEqual([1, 1, 1]);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('use deducts the amount or the policy price; PAY_001 when short (nothing changes); PAY_003 for a usageId again; refund once', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 100);
    const used = resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u-1' }));
    expect(used).toEqual({ creditUsageId: id('cu'), usageId: 'u-1', userId: 'user_1', serviceId: 'ai-writer', amount: 10, status: 'DEDUCTED', sagaId: null, balance: 90, createdAt: AT, refundedAt: null });
    expect(resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'image-studio', usageId: 'u-2' })).balance).toBe(60);
    expect(resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'anything', usageId: 'u-3', amount: 50 })).balance).toBe(10);
    expect(errorOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u-4', amount: 11 }))).toEqual([409, fpError('PAY_001', 'Insufficient credit balance: 10, needed 11.')]);
    expect(errorOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u-1' }))).toEqual([
      409,
      fpError('PAY_003', `Usage u-1 of user user_1 was already processed (${used.creditUsageId}, 10 credits, DEDUCTED).`),
    ]);
    expect(errorOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'unpriced', usageId: 'u-5' }))).toEqual([
      400,
      fpError('COMMON_400', 'serviceId: unpriced has no price in the billing policy; send amount', { errors: [{ field: 'serviceId', reason: 'unpriced has no price in the billing policy; send amount' }] }),
    ]);
    expect(await balanceOf(t, 'user_1')).toBe(10);
    const refunded = resultOf(await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'u-1' }));
    expect(refunded).toEqual({ ...used, status: 'REFUNDED', balance: 20, refundedAt: AT });
    expect(errorOf(await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'u-1' }))).toEqual([409, fpError('PAY_003', 'Usage u-1 was already refunded.')]);
    expect(errorOf(await fpPost(t, '/api/v1/credits/refund', { userId: 'user_2', usageId: 'u-1' }))).toEqual([404, fpError('COMMON_404', 'Usage u-1 of user user_2 was not found.')]);
    expect(await balanceOf(t, 'user_1')).toBe(20);
    const report = await reconciliation(t);
    expect([report.consistent, report.credits]).toEqual([true, { users: 1, totalBalance: 20, charged: 100, used: 90, refunded: 10 }]);
    expect(report.ledger.accounts.filter((a: Json) => a.unit === 'CREDIT')).toEqual([
      { account: 'MERCHANT_BALANCE', unit: 'CREDIT', debits: 100, credits: 0, balance: 100 },
      { account: 'CREDIT_LIABILITY', unit: 'CREDIT', debits: 90, credits: 110, balance: -20 },
      { account: 'REVENUE', unit: 'CREDIT', debits: 10, credits: 90, balance: -80 },
    ]);
  });

  it('transactions: newest first, paged, each with the balance after it', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 100);
    await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u-1' });
    await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'u-1' });
    const all = resultOf(await fpGet(t, '/api/v1/credits/transactions?userId=user_1'));
    expect(all.items.map((x: Json) => [x.type, x.amount, x.balanceAfter, x.usageId])).toEqual([
      ['REFUND', 10, 100, 'u-1'],
      ['USE', 10, 90, 'u-1'],
      ['CHARGE', 100, 100, null],
    ]);
    expect(all.nextCursor).toBeNull();
    const page = resultOf(await fpGet(t, '/api/v1/credits/transactions?userId=user_1&limit=2'));
    expect(page).toEqual({ items: all.items.slice(0, 2), nextCursor: all.items[1].transactionId });
    expect(resultOf(await fpGet(t, `/api/v1/credits/transactions?userId=user_1&cursor=${page.nextCursor}`))).toEqual({ items: all.items.slice(2), nextCursor: null });
    expect(resultOf(await fpGet(t, '/api/v1/credits/transactions?userId=nobody'))).toEqual({ items: [], nextCursor: null });
    expect(errorOf(await fpGet(t, '/api/v1/credits/transactions'))[1].result.errors).toEqual([{ field: 'query.userId', reason: "must have required property 'userId'" }]);
  });
});

describe('the billing policy', () => {
  it('FLUXPAY_POLICY_FILE prices uses; a bad file stops the start with one line naming it', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadConfig } = await import('../../src/config.ts');
    const dir = mkdtempSync(join(tmpdir(), 'fluxpay-policy-'));
    const good = join(dir, 'policy.yaml');
    writeFileSync(good, 'services:\n  chat:\n    name: Chat\n    creditsPerUse: 7\n');
    const t = await app({ FLUXPAY_POLICY_FILE: good });
    await chargeCredits(t, 'user_1', 20);
    expect(resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'chat', usageId: 'c-1' })).amount).toBe(7);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'services:\n  chat:\n    creditsPerUse: -1\n');
    expect(() => loadConfig({ FLUXPAY_POLICY_FILE: bad })).toThrow(`Invalid configuration: FLUXPAY_POLICY_FILE: ${bad}: services.chat.creditsPerUse must be a whole number from 1 to 1000000000 (got -1)`);
    // A plan's currency is an ISO 4217 code in use (2026-12-05: any three upper-case letters were taken).
    writeFileSync(bad, 'services:\n  chat:\n    creditsPerUse: 1\nplans:\n  p1:\n    name: P\n    price: 100\n    currency: XYZ\n    period: P1M\n    credits: 10\n');
    expect(() => loadConfig({ FLUXPAY_POLICY_FILE: bad })).toThrow(`Invalid configuration: FLUXPAY_POLICY_FILE: ${bad}: plans.p1.currency must be an ISO 4217 currency code such as KRW`);
    writeFileSync(bad, 'services: [oops');
    expect(() => loadConfig({ FLUXPAY_POLICY_FILE: bad })).toThrow(/^Invalid configuration: FLUXPAY_POLICY_FILE: .* is not valid YAML: [^\n]+ at line \d+, column \d+$/);
    expect(() => loadConfig({ FLUXPAY_POLICY_FILE: join(dir, 'missing.yaml') })).toThrow(/^Invalid configuration: FLUXPAY_POLICY_FILE: cannot read /);
  });
});

describe('idempotency and the shared prefix', () => {
  it('Idempotency-Key on a POST replays the first answer and creates nothing twice', async () => {
    const t = await app();
    const headers = { 'idempotency-key': 'order-1' };
    const first = await fpPost(t, '/api/v1/orders', orderBody, headers);
    const again = await fpPost(t, '/api/v1/orders', orderBody, headers);
    expect([again.statusCode, again.headers['idempotent-replayed'], again.body]).toEqual([200, 'true', first.body]);
    expect(resultOf(await fpGet(t, '/api/v1/orders')).items).toHaveLength(1);
    expect(errorOf(await fpPost(t, '/api/v1/orders', { ...orderBody, amount: 1 }, headers))).toEqual([422, fpError('COMMON_422', 'This Idempotency-Key was used with a different request body.')]);
  });

  it('a confirm held 20 minutes by the delay scenario keeps its Idempotency-Key past a 1 s IDEMPOTENCY_TTL_MS: a twin is refused, not run beside it', async () => {
    // 600 s of delay × TIME_SCALE 2: longer than the margin of 15 minutes alone.
    const t = await app({ IDEMPOTENCY_TTL_MS: '1000', DEFAULT_DELAY_DELAY_MS: '600000', TIME_SCALE: '2' });
    const payment = await createPayment(t, (await createOrder(t)).orderId);
    const headers = { 'idempotency-key': 'confirm-1', 'x-sim-scenario': 'delay' };
    const before = t.clock.pendingTimers;
    const first = confirm(t, payment, headers);
    await untilScheduled(t, before);
    await t.clock.advance(20 * 60_000 - 1);
    const twin = await confirm(t, payment, headers);
    expect(errorOf(twin)).toEqual([409, fpError('COMMON_409', 'A request with this Idempotency-Key is still being processed; retry later.')]);
    expect(twin.headers['retry-after']).toBe('1');
    await t.clock.advance(1);
    expect(resultOf(await first)).toMatchObject({ status: 'APPROVED', decidedBy: 'delay' });
  });

  it('under /api/v1/payments: FluxPay answers its own paths, the payment service (document 004) every other one', async () => {
    const t = await app();
    expect(errorOf(await t.app.inject({ method: 'GET', url: '/api/v1/payments' }))).toEqual([405, fpError('COMMON_405', 'GET is not allowed on /api/v1/payments; use POST.')]);
    expect(errorOf(await t.app.inject({ method: 'GET', url: '/api/v1/payments/confirm' }))).toEqual([405, fpError('COMMON_405', 'GET is not allowed on /api/v1/payments/confirm; use POST.')]);
    expect(errorOf(await fpGet(t, '/api/v1/payments/pk_short'))).toEqual([404, fpError('COMMON_404', 'No route GET /api/v1/payments/pk_short.')]);
    expect(errorOf(await fpGet(t, '/api/v1/payments/unknown'))).toEqual([404, { error: '요청한 경로를 찾을 수 없습니다.' }]);
    expect(errorOf(await fpGet(t, '/api/v1/payments/process'))).toEqual([405, { error: '허용되지 않는 메서드입니다.' }]);
    const methods = await fpGet(t, '/api/v1/payments/methods');
    expect([methods.statusCode, Object.keys(methods.json())]).toEqual([200, ['methods']]);
  });
});
