import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CHARGE_JOB, SUBSCRIPTION_JOB } from '../../src/core/subscriptions/service.ts';
import type { TestApp } from '../helpers/app.ts';
import { chargeCredits, createOrder, errorOf, fluxpayApps, fpError, fpGet, fpPost, paidOrder, resultOf, SUCCESS, type Json } from '../helpers/fluxpay.ts';
import { eventually, receiverPool } from '../helpers/receiver.ts';
import { metricSample } from '../helpers/webhooks.ts';

/**
 * Billing subscriptions over HTTP (issue 12 "Subscriptions"), black box: every route and code,
 * whole bodies, time driven by the manual clock. Charges are orders and payments of the FluxPay
 * engine; declines are injected the way a user would cause them: a card that declines (Stripe's
 * test number 4000000000000002), put on file with `POST /subscriptions/{id}/card`.
 */

const { app, closeAll } = fluxpayApps({ WEBHOOK_MAX_RPS: '0', WEBHOOK_ORIGIN_CONCURRENCY: '1' });
const receivers = receiverPool();
afterEach(async () => {
  await receivers.closeAll();
  await closeAll();
});

const at = (iso: string): number => Date.parse(iso);
const GOOD = { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 };
const DECLINES = { number: '4000000000000002', expMonth: 12, expYear: 2030 };
const SUB = expect.stringMatching(/^sub_[0-9A-HJKMNP-TV-Z]{26}$/) as unknown as string;
const INV = expect.stringMatching(/^inv_[0-9A-HJKMNP-TV-Z]{26}$/) as unknown as string;
const ORD = expect.stringMatching(/^ord_[0-9A-HJKMNP-TV-Z]{26}$/) as unknown as string;
const PK = expect.stringMatching(/^pk_[0-9A-HJKMNP-TV-Z]{26}$/) as unknown as string;

async function advanceTo(t: TestApp, iso: string): Promise<void> {
  await t.clock.advance(at(iso) - t.clock.now());
  await t.app.fluxpay.relay.idle();
}

function subscribe(t: TestApp, body: Json = {}, headers: Record<string, string> = {}) {
  return fpPost(t, '/api/v1/subscriptions', { userId: 'user_1', planId: 'basic-monthly', card: GOOD, ...body }, headers);
}

function invoice(kind: string, amount: number, periodStart: string, periodEnd: string, createdAt: string, overrides: Json = {}): Json {
  return { invoiceId: INV, kind, planId: 'basic-monthly', amount, currency: 'KRW', periodStart, periodEnd, status: 'PAID', orderId: ORD, paymentKey: PK, failureCode: null, createdAt, ...overrides };
}

function subscription(overrides: Json = {}): Json {
  return {
    subscriptionId: SUB,
    userId: 'user_1',
    planId: 'basic-monthly',
    status: 'ACTIVE',
    cancelAtPeriodEnd: false,
    currentPeriodStart: '2026-01-15T12:00:00.000Z',
    currentPeriodEnd: '2026-02-15T12:00:00.000Z',
    pendingPlanId: null,
    nextChargeAt: '2026-02-15T12:00:00.000Z',
    dunningAttempt: 0,
    card: { last4: '4242', expMonth: 12, expYear: 2030 },
    canceledAt: null,
    expiredAt: null,
    createdAt: '2026-01-15T12:00:00.000Z',
    updatedAt: '2026-01-15T12:00:00.000Z',
    invoices: [invoice('INITIAL', 9900, '2026-01-15T12:00:00.000Z', '2026-02-15T12:00:00.000Z', '2026-01-15T12:00:00.000Z')],
    ...overrides,
  };
}

async function reconciled(t: TestApp): Promise<Json> {
  const report = resultOf(await fpGet(t, '/api/v1/reconciliation'));
  expect(report.mismatches).toEqual([]);
  expect(report.consistent).toBe(true);
  return report;
}

describe('plans and subscribing', () => {
  it('GET /subscriptions/plans lists the policy’s plans', async () => {
    const t = await app();
    expect((await fpGet(t, '/api/v1/subscriptions/plans')).json()).toEqual({
      ...SUCCESS,
      result: {
        items: [
          { planId: 'basic-monthly', name: 'Basic', price: 9900, currency: 'KRW', period: 'P1M', credits: 1000, features: ['summarize', 'translate'] },
          { planId: 'pro-monthly', name: 'Pro', price: 19900, currency: 'KRW', period: 'P1M', credits: 5000, features: ['summarize', 'translate', 'upscale', 'background-removal'] },
          { planId: 'pro-yearly', name: 'Pro (yearly)', price: 99000, currency: 'KRW', period: 'P1Y', credits: 15000, features: ['summarize', 'translate', 'upscale', 'background-removal'] },
        ],
      },
    });
  });

  it('subscribe: the first period charged through the engine (order COMPLETED, payment CONFIRMED) → ACTIVE, subscription.activated', async () => {
    const t = await app();
    const res = await subscribe(t);
    expect(res.json()).toEqual({ ...SUCCESS, result: subscription() });
    const sub = res.json().result as Json;
    const inv = sub.invoices[0] as Json;
    expect(resultOf(await fpGet(t, `/api/v1/orders/${inv.orderId}`))).toMatchObject({
      userId: 'user_1',
      serviceId: 'subscriptions',
      orderName: 'Basic subscription (initial)',
      amount: 9900,
      status: 'COMPLETED',
      paymentKey: inv.paymentKey,
      metadata: { kind: 'SUBSCRIPTION', subscriptionId: sub.subscriptionId, invoiceId: inv.invoiceId, invoiceKind: 'INITIAL', planId: 'basic-monthly' },
    });
    expect(resultOf(await fpGet(t, `/api/v1/payments/${inv.paymentKey}`))).toMatchObject({ status: 'CONFIRMED', decidedBy: 'card', card: { last4: '4242', expMonth: 12, expYear: 2030 } });
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${sub.subscriptionId}`))).toEqual(sub);
    await t.app.fluxpay.relay.idle();
    const events = resultOf(await fpGet(t, '/api/v1/outbox?limit=10')).items as Json[];
    expect(events.map((e) => [e.eventType, e.aggregate]).reverse()).toEqual([
      ['payment.approved', `payment:${inv.paymentKey}`],
      ['subscription.activated', `subscription:${sub.subscriptionId}`],
      ['order.completed', `order:${inv.orderId}`],
    ]);
    const { invoices, ...summary } = sub;
    expect(events[1]?.data).toEqual({ ...summary, latestInvoice: invoices[0] });
    await reconciled(t);
  });

  it('a declined first charge → 402 PAY_002, nothing active (the order CANCELLED, its payment FAILED); X-Sim-Scenario decides like a confirm', async () => {
    const t = await app();
    expect(errorOf(await subscribe(t, { card: DECLINES }))).toEqual([402, fpError('PAY_002', 'Payment approval failed: card_declined.')]);
    expect(errorOf(await subscribe(t, { card: { number: '4111111111111111', cvv: '125' } }))).toEqual([402, fpError('PAY_002', 'Payment approval failed: DECLINE_5.')]);
    expect(errorOf(await subscribe(t, {}, { 'x-sim-scenario': 'fail' }))).toEqual([402, fpError('PAY_002', 'Payment approval failed: card_declined.')]);
    expect(resultOf(await fpGet(t, '/api/v1/subscriptions?userId=user_1'))).toEqual({ items: [], nextCursor: null });
    const orders = resultOf(await fpGet(t, '/api/v1/orders?userId=user_1')).items as Json[];
    expect(orders.map((o) => [o.status, o.cancelReason])).toEqual([
      ['CANCELLED', 'payment declined'],
      ['CANCELLED', 'payment declined'],
      ['CANCELLED', 'payment declined'],
    ]);
    const report = await reconciled(t);
    expect(report.payments).toMatchObject({ FAILED: 3, APPROVED: 0, CONFIRMED: 0 });
    expect(report.subscriptions).toEqual({ total: 0, ACTIVE: 0, PAST_DUE: 0, CANCELED: 0, EXPIRED: 0, invoices: { PAID: 0, DECLINED: 0, REFUNDED: 0 } });
  });

  it('bad input is COMMON_400, an unknown plan SUB_001, an unknown subscription COMMON_404; nothing is stored', async () => {
    const t = await app();
    expect(errorOf(await fpPost(t, '/api/v1/subscriptions', { userId: 'user_1', planId: 'basic-monthly' }))).toEqual([
      400,
      fpError('COMMON_400', "body /card: must have required property 'card'", { errors: [{ field: 'card', reason: "must have required property 'card'" }] }),
    ]);
    expect(errorOf(await subscribe(t, { card: { number: '4242424242424241' } }))).toEqual([
      400,
      fpError('COMMON_400', 'card.number: must be 12 to 19 digits passing the Luhn check', { errors: [{ field: 'card.number', reason: 'must be 12 to 19 digits passing the Luhn check' }] }),
    ]);
    expect(errorOf(await subscribe(t, { extra: 1 }))).toEqual([400, fpError('COMMON_400', 'body /extra: is not a known field', { errors: [{ field: 'extra', reason: 'is not a known field' }] })]);
    expect(errorOf(await subscribe(t, { planId: 'gold-monthly' }))).toEqual([404, fpError('SUB_001', 'Plan gold-monthly does not exist (plans: basic-monthly, pro-monthly, pro-yearly).')]);
    const unknown = 'sub_01KBA7Q4F5R8T1W4Y7A0C3E6HJ';
    for (const path of ['', '/entitlements']) expect(errorOf(await fpGet(t, `/api/v1/subscriptions/${unknown}${path}`))).toEqual([404, fpError('COMMON_404', `Subscription ${unknown} was not found.`)]);
    expect(errorOf(await fpPost(t, `/api/v1/subscriptions/${unknown}/cancel`, {}))).toEqual([404, fpError('COMMON_404', `Subscription ${unknown} was not found.`)]);
    expect(errorOf(await fpPost(t, `/api/v1/subscriptions/${unknown}/change-plan`, { planId: 'pro-monthly' }))).toEqual([404, fpError('COMMON_404', `Subscription ${unknown} was not found.`)]);
    expect(errorOf(await fpPost(t, `/api/v1/subscriptions/${unknown}/card`, { card: GOOD }))).toEqual([404, fpError('COMMON_404', `Subscription ${unknown} was not found.`)]);
    expect(errorOf(await fpGet(t, '/api/v1/subscriptions/sub_x'))).toEqual([
      400,
      fpError('COMMON_400', 'params /subscriptionId: must be sub_ followed by a 26-character ULID', { errors: [{ field: 'path.subscriptionId', reason: 'must be sub_ followed by a 26-character ULID' }] }),
    ]);
    expect(resultOf(await fpGet(t, '/api/v1/subscriptions'))).toEqual({ items: [], nextCursor: null });
    expect(resultOf(await fpGet(t, '/api/v1/orders'))).toEqual({ items: [], nextCursor: null });
  });
});

describe('cancel, change of plan, card, reads', () => {
  it('cancel: CANCELED until the period ends, then EXPIRED without a charge; SUB_002 for what the state forbids', async () => {
    // Published events are kept 60 days here (1 day by default), so the whole story is listed.
    const t = await app({ FLUXPAY_TTL_MS: String(60 * 86_400_000) });
    const sub = resultOf(await subscribe(t));
    const id = sub.subscriptionId as string;
    await advanceTo(t, '2026-01-20T00:00:00.000Z');
    const canceled = subscription({ status: 'CANCELED', cancelAtPeriodEnd: true, nextChargeAt: null, canceledAt: '2026-01-20T00:00:00.000Z', updatedAt: '2026-01-20T00:00:00.000Z' });
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/subscriptions/${id}/cancel` })).json()).toEqual({ ...SUCCESS, result: canceled });
    expect(errorOf(await fpPost(t, `/api/v1/subscriptions/${id}/cancel`, {}))).toEqual([409, fpError('SUB_002', `Subscription ${id} is CANCELED; only an ACTIVE or PAST_DUE subscription can be canceled.`)]);
    expect(errorOf(await fpPost(t, `/api/v1/subscriptions/${id}/change-plan`, { planId: 'pro-monthly' }))).toEqual([409, fpError('SUB_002', `Subscription ${id} is CANCELED; only an ACTIVE subscription can be changed to another plan.`)]);
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}/entitlements`))).toMatchObject({ status: 'CANCELED', entitled: true });
    await advanceTo(t, '2026-02-15T11:59:59.999Z');
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`)).status).toBe('CANCELED');
    await advanceTo(t, '2026-02-15T12:00:00.000Z');
    const expired = { ...canceled, status: 'EXPIRED', cancelAtPeriodEnd: false, expiredAt: '2026-02-15T12:00:00.000Z', updatedAt: '2026-02-15T12:00:00.000Z' };
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`))).toEqual(expired);
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}/entitlements`))).toMatchObject({ status: 'EXPIRED', entitled: false });
    expect(errorOf(await fpPost(t, `/api/v1/subscriptions/${id}/card`, { card: GOOD }))).toEqual([409, fpError('SUB_002', `Subscription ${id} is EXPIRED; only an ACTIVE, PAST_DUE or CANCELED subscription can be given a new card.`)]);
    const types = (resultOf(await fpGet(t, '/api/v1/outbox?limit=20')).items as Json[]).map((e) => e.eventType).reverse();
    expect(types).toEqual(['payment.approved', 'subscription.activated', 'order.completed', 'subscription.canceled', 'subscription.expired']);
    await reconciled(t);
  });

  it('upgrade: applied at once for the hand-computed proration; downgrade: at the next renewal, charged the lower price', async () => {
    const t = await app({}, { clockStart: at('2026-04-01T00:00:00.000Z') });
    const id = resultOf(await subscribe(t)).subscriptionId as string;
    // April has 30 days; at 04-11 06:00 there are 19 d 18 h = 19.75 days left:
    // (19,900 − 9,900) × 19.75 / 30 = 6,583.33… → 6,583.
    await advanceTo(t, '2026-04-11T06:00:00.000Z');
    const up = resultOf(await fpPost(t, `/api/v1/subscriptions/${id}/change-plan`, { planId: 'pro-monthly' }));
    const initial = invoice('INITIAL', 9900, '2026-04-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z');
    const proration = invoice('PRORATION', 6583, '2026-04-11T06:00:00.000Z', '2026-05-01T00:00:00.000Z', '2026-04-11T06:00:00.000Z', { planId: 'pro-monthly' });
    expect(up).toEqual(
      subscription({
        planId: 'pro-monthly',
        currentPeriodStart: '2026-04-01T00:00:00.000Z',
        currentPeriodEnd: '2026-05-01T00:00:00.000Z',
        nextChargeAt: '2026-05-01T00:00:00.000Z',
        createdAt: '2026-04-01T00:00:00.000Z',
        updatedAt: '2026-04-11T06:00:00.000Z',
        invoices: [initial, proration],
      }),
    );
    expect(resultOf(await fpGet(t, `/api/v1/orders/${up.invoices[1].orderId}`))).toMatchObject({ amount: 6583, status: 'COMPLETED', orderName: 'Pro subscription (proration)' });
    // The same plan again: nothing to do. Basic: a downgrade, at the next renewal.
    expect(resultOf(await fpPost(t, `/api/v1/subscriptions/${id}/change-plan`, { planId: 'pro-monthly' }))).toEqual(up);
    await advanceTo(t, '2026-04-20T00:00:00.000Z');
    const down = resultOf(await fpPost(t, `/api/v1/subscriptions/${id}/change-plan`, { planId: 'basic-monthly' }));
    expect(down).toEqual({ ...up, pendingPlanId: 'basic-monthly', updatedAt: '2026-04-20T00:00:00.000Z' });
    await advanceTo(t, '2026-05-01T00:00:00.000Z');
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`))).toEqual({
      ...down,
      planId: 'basic-monthly',
      pendingPlanId: null,
      currentPeriodStart: '2026-05-01T00:00:00.000Z',
      currentPeriodEnd: '2026-06-01T00:00:00.000Z',
      nextChargeAt: '2026-06-01T00:00:00.000Z',
      updatedAt: '2026-05-01T00:00:00.000Z',
      invoices: [initial, proration, invoice('RENEWAL', 9900, '2026-05-01T00:00:00.000Z', '2026-06-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z')],
    });
    // A declined proration changes nothing.
    expect(errorOf(await fpPost(t, `/api/v1/subscriptions/${id}/change-plan`, { planId: 'pro-monthly' }, { 'x-sim-scenario': 'fail' }))).toEqual([402, fpError('PAY_002', 'Payment approval failed: card_declined.')]);
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`))).toMatchObject({ planId: 'basic-monthly', updatedAt: '2026-05-01T00:00:00.000Z' });
    const report = await reconciled(t);
    expect(report.ledger.accounts.find((a: Json) => a.account === 'CUSTOMER_PAYMENTS' && a.unit === 'KRW')).toEqual({ account: 'CUSTOMER_PAYMENTS', unit: 'KRW', debits: 9900 + 6583 + 9900, credits: 0, balance: 26383 });
  });

  it('concurrent upgrades: one applies and is charged; the others are refunded or see nothing to do', async () => {
    const t = await app({}, { clockStart: at('2026-04-01T00:00:00.000Z') });
    const id = resultOf(await subscribe(t)).subscriptionId as string;
    await advanceTo(t, '2026-04-16T00:00:00.000Z');
    const answers = await Promise.all(Array.from({ length: 5 }, () => fpPost(t, `/api/v1/subscriptions/${id}/change-plan`, { planId: 'pro-monthly' })));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 200, 200]);
    const sub = resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`));
    // Half of April left: (19,900 − 9,900) / 2 = 5,000, charged once.
    expect(sub.invoices.map((i: Json) => [i.kind, i.amount, i.status])).toEqual([
      ['INITIAL', 9900, 'PAID'],
      ['PRORATION', 5000, 'PAID'],
    ]);
    const report = await reconciled(t);
    expect(report.ledger.accounts.find((a: Json) => a.account === 'CUSTOMER_PAYMENTS' && a.unit === 'KRW')?.balance).toBe(14900);
  });

  it('lists by user, newest first, without invoices; entitlements count the credits used this period', async () => {
    const t = await app();
    const a = resultOf(await subscribe(t));
    const b = resultOf(await subscribe(t, { planId: 'pro-monthly' }));
    const c = resultOf(await subscribe(t, { userId: 'user_2' }));
    const summary = ({ invoices: _, ...rest }: Json): Json => rest;
    expect(resultOf(await fpGet(t, '/api/v1/subscriptions?userId=user_1'))).toEqual({ items: [summary(b), summary(a)], nextCursor: null });
    expect(resultOf(await fpGet(t, '/api/v1/subscriptions?limit=1'))).toEqual({ items: [summary(c)], nextCursor: c.subscriptionId });
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions?limit=5&cursor=${c.subscriptionId}`))).toEqual({ items: [summary(b), summary(a)], nextCursor: null });
    // Credits: 100 bought, 10 + 8 used, 8 refunded → 10 used this period.
    const { order } = await paidOrder(t, { userId: 'user_1', orderName: '100 credits', amount: 1000, metadata: { kind: 'CREDIT_CHARGE', credits: 100 } });
    resultOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_1', orderId: order.orderId }));
    resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u1' }));
    resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u2', amount: 8 }));
    resultOf(await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'u2' }));
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${a.subscriptionId}/entitlements`))).toEqual({
      subscriptionId: a.subscriptionId,
      userId: 'user_1',
      planId: 'basic-monthly',
      status: 'ACTIVE',
      entitled: true,
      periodStart: '2026-01-15T12:00:00.000Z',
      periodEnd: '2026-02-15T12:00:00.000Z',
      features: ['summarize', 'translate'],
      credits: { included: 1000, used: 10, remaining: 990 },
    });
    // The next period starts from nothing used.
    await advanceTo(t, '2026-02-15T12:00:00.000Z');
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${a.subscriptionId}/entitlements`)).credits).toEqual({ included: 1000, used: 0, remaining: 1000 });
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect([metricSample(metrics, 'fluxpay_subscriptions{status="ACTIVE"}'), metricSample(metrics, 'store_records{store="fluxpay_billing_subscriptions"}'), metricSample(metrics, 'store_capacity{store="fluxpay_billing_subscriptions"}')]).toEqual([3, 3, 50_000]);
  });

  it('entitlements count every credit used in the period though its transactions were evicted (FLUXPAY_MAX_RECORDS); a record without the period base counts those held', async () => {
    const t = await app({ FLUXPAY_MAX_RECORDS: '5' }, { clockStart: at('2026-01-15T11:00:00.000Z') });
    await chargeCredits(t, 'user_1', 100);
    const use = async (from: number, count: number) => {
      for (let i = from; i < from + count; i++) resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: `u${i}`, amount: 1 }));
    };
    // Used before the subscription: not counted.
    await use(0, 3);
    await advanceTo(t, '2026-01-15T12:00:00.000Z');
    const id = resultOf(await subscribe(t)).subscriptionId as string;
    await advanceTo(t, '2026-01-20T00:00:00.000Z');
    await use(3, 20);
    expect((resultOf(await fpGet(t, '/api/v1/credits/transactions?userId=user_1&limit=100')).items as Json[]).length).toBe(5);
    const entitlements = () => fpGet(t, `/api/v1/subscriptions/${id}/entitlements`);
    expect(resultOf(await entitlements()).credits).toEqual({ included: 1000, used: 20, remaining: 980 });
    // The next period counts from its own start.
    await advanceTo(t, '2026-02-15T12:00:00.000Z');
    await use(23, 7);
    expect(resultOf(await entitlements()).credits).toEqual({ included: 1000, used: 7, remaining: 993 });
    // A record an earlier version wrote has no base: the credit transactions held since the period began (5 of the 7).
    const stored = (await t.app.core.stores.billing.get(id)) as Json;
    const { creditsUsedBefore: _base, ...earlier } = stored;
    vi.spyOn(t.app.core.stores.billing, 'get').mockResolvedValueOnce(earlier as never);
    expect(resultOf(await entitlements()).credits).toEqual({ included: 1000, used: 5, remaining: 995 });
    expect(resultOf(await entitlements()).credits).toEqual({ included: 1000, used: 7, remaining: 993 });
  });

  it('a period a paid dunning retry starts days after it began counts the credits used since its start, though their transactions were swept', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 100);
    const id = resultOf(await subscribe(t)).subscriptionId as string;
    resultOf(await fpPost(t, `/api/v1/subscriptions/${id}/card`, { card: DECLINES }));
    const entitlements = async () => resultOf(await fpGet(t, `/api/v1/subscriptions/${id}/entitlements`));
    // 02-15 12:00: the renewal is declined (PAST_DUE; retries 02-16 and 02-18). 10 credits used after it, while still entitled.
    await advanceTo(t, '2026-02-15T13:00:00.000Z');
    for (let i = 0; i < 10; i++) resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: `u${i}`, amount: 1 }));
    expect(await entitlements()).toMatchObject({ status: 'PAST_DUE', periodStart: '2026-01-15T12:00:00.000Z', credits: { used: 10 } });
    // The first retry is declined; the transactions go after FLUXPAY_TTL_MS (1 day); the card is fixed.
    await advanceTo(t, '2026-02-17T00:00:00.000Z');
    await t.app.core.stores.fluxpay.sweep(t.clock.now());
    expect(resultOf(await fpGet(t, '/api/v1/credits/transactions?userId=user_1')).items).toEqual([]);
    resultOf(await fpPost(t, `/api/v1/subscriptions/${id}/card`, { card: GOOD }));
    // 02-18: the retry is paid; the new period starts where the unpaid one ended, and holds the 10.
    await advanceTo(t, '2026-02-18T13:00:00.000Z');
    resultOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u10', amount: 2 }));
    expect(await entitlements()).toMatchObject({ status: 'ACTIVE', periodStart: '2026-02-15T12:00:00.000Z', credits: { included: 1000, used: 12, remaining: 988 } });
  });

  it('a full store answers 503 COMMON_503 and refunds the charge it had collected (the ledger nets to zero)', async () => {
    const t = await app({ FLUXPAY_MAX_BILLING_SUBSCRIPTIONS: '1' });
    resultOf(await subscribe(t));
    const res = await subscribe(t, { userId: 'user_2' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.json()).toEqual(fpError('COMMON_503', 'The fluxpay_billing_subscriptions store is full of subscriptions that have not expired, which it keeps: cancel some and let them expire, or raise FLUXPAY_MAX_BILLING_SUBSCRIPTIONS; retrying alone does not make room until some expire.'));
    const [refunded] = resultOf(await fpGet(t, '/api/v1/orders?userId=user_2')).items as Json[];
    expect(refunded).toMatchObject({ status: 'CANCELLED', cancelReason: 'subscription refused: the store is full', amount: 9900 });
    expect(resultOf(await fpGet(t, `/api/v1/payments/${refunded?.paymentKey}`)).status).toBe('CANCELLED');
    const report = await reconciled(t);
    expect(report.ledger.accounts.find((a: Json) => a.account === 'CUSTOMER_PAYMENTS' && a.unit === 'KRW')).toEqual({ account: 'CUSTOMER_PAYMENTS', unit: 'KRW', debits: 19800, credits: 9900, balance: 9900 });
  });
});

describe('renewals on the manual clock', () => {
  // About 5 s on an idle machine; over the default 20 s twice on this one under a load of 7–14 (two helpers' runs, 2026-12-04).
  it('a year of monthly renewals with declines injected at chosen months follows the hand-computed schedule of charges', async () => {
    const t = await app({}, { clockStart: at('2026-01-31T00:00:00.000Z') });
    const id = resultOf(await subscribe(t)).subscriptionId as string;
    const card = (c: Json) => fpPost(t, `/api/v1/subscriptions/${id}/card`, { card: c });
    // March: the renewal on the 31st is declined; the card is fixed before the first retry (1 day later).
    await advanceTo(t, '2026-03-30T00:00:00.000Z');
    resultOf(await card(DECLINES));
    await advanceTo(t, '2026-03-31T00:00:00.000Z');
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`))).toMatchObject({ status: 'PAST_DUE', dunningAttempt: 1, nextChargeAt: '2026-04-01T00:00:00.000Z', card: { last4: '0002' } });
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}/entitlements`)).entitled).toBe(true);
    resultOf(await card(GOOD));
    // June: the renewal on the 30th and the first retry (07-01) are declined; the second (07-03) is paid.
    await advanceTo(t, '2026-06-29T00:00:00.000Z');
    resultOf(await card(DECLINES));
    await advanceTo(t, '2026-07-02T00:00:00.000Z');
    resultOf(await card(GOOD));
    await advanceTo(t, '2027-01-15T00:00:00.000Z');
    const sub = resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`));
    const schedule = sub.invoices.map((i: Json) => [i.createdAt.slice(0, 10), i.kind, i.amount, i.status, i.periodStart.slice(0, 10), i.periodEnd.slice(0, 10), i.failureCode]);
    expect(schedule).toEqual([
      ['2026-01-31', 'INITIAL', 9900, 'PAID', '2026-01-31', '2026-02-28', null],
      ['2026-02-28', 'RENEWAL', 9900, 'PAID', '2026-02-28', '2026-03-31', null],
      ['2026-03-31', 'RENEWAL', 9900, 'DECLINED', '2026-03-31', '2026-04-30', 'card_declined'],
      ['2026-04-01', 'RETRY', 9900, 'PAID', '2026-03-31', '2026-04-30', null],
      ['2026-04-30', 'RENEWAL', 9900, 'PAID', '2026-04-30', '2026-05-31', null],
      ['2026-05-31', 'RENEWAL', 9900, 'PAID', '2026-05-31', '2026-06-30', null],
      ['2026-06-30', 'RENEWAL', 9900, 'DECLINED', '2026-06-30', '2026-07-31', 'card_declined'],
      ['2026-07-01', 'RETRY', 9900, 'DECLINED', '2026-06-30', '2026-07-31', 'card_declined'],
      ['2026-07-03', 'RETRY', 9900, 'PAID', '2026-06-30', '2026-07-31', null],
      ['2026-07-31', 'RENEWAL', 9900, 'PAID', '2026-07-31', '2026-08-31', null],
      ['2026-08-31', 'RENEWAL', 9900, 'PAID', '2026-08-31', '2026-09-30', null],
      ['2026-09-30', 'RENEWAL', 9900, 'PAID', '2026-09-30', '2026-10-31', null],
      ['2026-10-31', 'RENEWAL', 9900, 'PAID', '2026-10-31', '2026-11-30', null],
      ['2026-11-30', 'RENEWAL', 9900, 'PAID', '2026-11-30', '2026-12-31', null],
      ['2026-12-31', 'RENEWAL', 9900, 'PAID', '2026-12-31', '2027-01-31', null],
    ]);
    expect(sub).toMatchObject({ status: 'ACTIVE', currentPeriodStart: '2026-12-31T00:00:00.000Z', currentPeriodEnd: '2027-01-31T00:00:00.000Z', nextChargeAt: '2027-01-31T00:00:00.000Z', dunningAttempt: 0 });
    // 12 periods paid, 3 declines: 12 × 9,900 = 118,800 collected, all of it through the ledger.
    const report = await reconciled(t);
    expect(report.ledger.accounts.filter((a: Json) => a.unit === 'KRW')).toEqual([
      { account: 'CUSTOMER_PAYMENTS', unit: 'KRW', debits: 118_800, credits: 0, balance: 118_800 },
      { account: 'MERCHANT_BALANCE', unit: 'KRW', debits: 0, credits: 118_800, balance: -118_800 },
    ]);
    expect(report.subscriptions).toEqual({ total: 1, ACTIVE: 1, PAST_DUE: 0, CANCELED: 0, EXPIRED: 0, invoices: { PAID: 12, DECLINED: 3, REFUNDED: 0 } });
  }, 60_000);

  it('a renewal whose order a full store refuses (open orders hold FLUXPAY_MAX_RECORDS) waits for room, past MAX_ATTEMPTS, said once every 10 s; once orders end it renews (before 2026-12-07 it was given up after 8 runs: ACTIVE, its period over, no renewal to come)', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const t = await app({ FLUXPAY_MAX_RECORDS: '3' }, { clockStart: at('2026-01-15T12:00:00.000Z'), logs });
    const id = resultOf(await subscribe(t)).subscriptionId as string;
    // Three orders left open (PENDING, never paid): the store keeps them until they end.
    const open = [];
    for (let i = 0; i < 3; i++) open.push((await createOrder(t, { userId: `other_${i}` })).orderId as string);
    await advanceTo(t, '2026-02-15T12:00:00.000Z');
    // Two minutes of retries at most 30 s apart: more runs than MAX_ATTEMPTS (8).
    for (let i = 0; i < 120; i++) await t.clock.advance(1_000);
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`))).toMatchObject({ status: 'ACTIVE', currentPeriodEnd: '2026-02-15T12:00:00.000Z', nextChargeAt: '2026-02-15T12:00:00.000Z' });
    expect(logs.filter((l) => l.msg === 'due work failed for the last time; giving up')).toEqual([]);
    const waiting = logs.filter((l) => l.msg === 'due work waits for room: the store is full of unfinished work; it will be retried');
    expect(waiting.length).toBeGreaterThanOrEqual(1);
    expect(waiting.length).toBeLessThanOrEqual(13);
    expect(waiting[0]).toMatchObject({ level: 'warn', store: 'fluxpay' });
    // Each refused run counted as a refused request is, so PaysimStoreFull fires while it waits.
    expect(metricSample((await t.app.inject({ url: '/metrics' })).body, 'store_full_total{store="fluxpay"}')).toBeGreaterThanOrEqual(8);
    // The open orders end: the next run renews.
    for (const orderId of open) resultOf(await fpPost(t, `/api/v1/orders/${orderId}/cancel`, {}));
    for (let i = 0; i < 31; i++) await t.clock.advance(1_000);
    await t.app.fluxpay.relay.idle();
    const renewed = resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`));
    expect(renewed).toMatchObject({ status: 'ACTIVE', currentPeriodStart: '2026-02-15T12:00:00.000Z', currentPeriodEnd: '2026-03-15T12:00:00.000Z' });
    expect((renewed.invoices as Json[]).map((i) => [i.kind, i.status])).toEqual([
      ['INITIAL', 'PAID'],
      ['RENEWAL', 'PAID'],
    ]);
  });

  it('dunning: declined at the renewal and after 1, 3 and 5 days → EXPIRED with subscription.expired', async () => {
    // Published events are kept 60 days here (1 day by default), so the whole story is listed.
    const t = await app({ FLUXPAY_TTL_MS: String(60 * 86_400_000) }, { clockStart: at('2026-01-31T00:00:00.000Z') });
    const id = resultOf(await subscribe(t)).subscriptionId as string;
    resultOf(await fpPost(t, `/api/v1/subscriptions/${id}/card`, { card: DECLINES }));
    await advanceTo(t, '2026-03-04T00:00:00.000Z');
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`))).toMatchObject({ status: 'PAST_DUE', dunningAttempt: 3, nextChargeAt: '2026-03-05T00:00:00.000Z' });
    await advanceTo(t, '2026-03-05T00:00:00.000Z');
    const sub = resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`));
    expect(sub).toMatchObject({ status: 'EXPIRED', expiredAt: '2026-03-05T00:00:00.000Z', nextChargeAt: null, dunningAttempt: 3 });
    expect(sub.invoices.map((i: Json) => [i.createdAt.slice(0, 10), i.kind, i.status])).toEqual([
      ['2026-01-31', 'INITIAL', 'PAID'],
      ['2026-02-28', 'RENEWAL', 'DECLINED'],
      ['2026-03-01', 'RETRY', 'DECLINED'],
      ['2026-03-03', 'RETRY', 'DECLINED'],
      ['2026-03-05', 'RETRY', 'DECLINED'],
    ]);
    const types = (resultOf(await fpGet(t, '/api/v1/outbox?limit=50')).items as Json[]).map((e) => e.eventType).filter((e) => e.startsWith('subscription.')).reverse();
    expect(types).toEqual(['subscription.activated', 'subscription.past_due', 'subscription.past_due', 'subscription.past_due', 'subscription.expired']);
    await advanceTo(t, '2026-04-30T00:00:00.000Z');
    expect(resultOf(await fpGet(t, `/api/v1/subscriptions/${id}`)).invoices).toHaveLength(5);
    await reconciled(t);
  });

  it('events go through the outbox to a webhook receiver on 127.0.0.1, in order (a PT1M plan renews every minute)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paysim-subs-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'services:\n  app:\n    creditsPerUse: 1\nplans:\n  minute:\n    name: Every minute\n    price: 100\n    period: PT1M\n');
    const receiver = await receivers.start();
    const t = await app({ FLUXPAY_POLICY_FILE: policy, FLUXPAY_DUNNING_DELAYS: 'PT10S' }, { clockStart: Date.now() });
    resultOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: receiver.url('/subs'), events: ['subscription.activated', 'subscription.renewed', 'subscription.past_due', 'subscription.expired'] }));
    const id = resultOf(await subscribe(t, { planId: 'minute' })).subscriptionId as string;
    await t.clock.advance(60_000);
    resultOf(await fpPost(t, `/api/v1/subscriptions/${id}/card`, { card: DECLINES }));
    await t.clock.advance(60_000);
    await t.clock.advance(10_000);
    await t.app.fluxpay.relay.idle();
    const received = await receiver.waitFor(4);
    const bodies = received.map((r) => JSON.parse(r.body) as Json);
    expect(bodies.map((b) => [b.eventType, b.data.subscriptionId, b.data.status, b.data.latestInvoice.kind, b.data.latestInvoice.status])).toEqual([
      ['subscription.activated', id, 'ACTIVE', 'INITIAL', 'PAID'],
      ['subscription.renewed', id, 'ACTIVE', 'RENEWAL', 'PAID'],
      ['subscription.past_due', id, 'PAST_DUE', 'RENEWAL', 'DECLINED'],
      ['subscription.expired', id, 'EXPIRED', 'RETRY', 'DECLINED'],
    ]);
    const outbox = (resultOf(await fpGet(t, '/api/v1/outbox?limit=50')).items as Json[]).filter((e) => e.eventType.startsWith('subscription.')).reverse();
    expect(bodies.map((b) => b.eventId)).toEqual(outbox.map((e) => e.eventId));
    await eventually(() => (receiver.requests.length === 4 ? true : undefined), 'no fifth delivery');
    await reconciled(t);
  });
});

describe('a subscription cut off between its calls (a process stopped, the store failing): each charge’s guard settles its order once no charge can be under way', () => {
  /** The guard's delay: the longest confirm (DEFAULT_DELAY_DELAY_MS, 3 s) and a lease (30 s). */
  const GUARD = 3000 + 30_000;
  const ordersOf = async (t: TestApp): Promise<Array<[string, string, string | null]>> => {
    const page = resultOf(await fpGet(t, '/api/v1/orders?userId=user_1&limit=100')) as Json;
    return (page.items as Json[]).map((o): [string, string, string | null] => [o.metadata.invoiceKind as string, o.status as string, o.cancelReason as string | null]).reverse();
  };

  it('a renewal charged and not recorded: the job runs again and charges once more; the first charge is refunded by its guard', async () => {
    const t = await app();
    const sub = resultOf(await subscribe(t)) as Json;
    vi.spyOn(t.app.core.stores.billing, 'update').mockRejectedValueOnce(new Error('the store is away'));
    await advanceTo(t, '2026-02-15T12:00:00.100Z'); // the renewal, its update failing, and its retry 100 ms later
    const renewed = resultOf(await fpGet(t, `/api/v1/subscriptions/${sub.subscriptionId}`)) as Json;
    expect(renewed.invoices.map((i: Json) => [i.kind, i.status])).toEqual([
      ['INITIAL', 'PAID'],
      ['RENEWAL', 'PAID'],
    ]);
    // The initial order, finished a month ago, is past FLUXPAY_TTL_MS and gone.
    expect(await ordersOf(t)).toEqual([
      ['RENEWAL', 'PAID', null],
      ['RENEWAL', 'COMPLETED', null],
    ]);
    await t.clock.advance(GUARD - 101);
    expect((await ordersOf(t))[0]).toEqual(['RENEWAL', 'PAID', null]);
    await t.clock.advance(1);
    await t.app.fluxpay.relay.idle();
    expect(await ordersOf(t)).toEqual([
      ['RENEWAL', 'CANCELLED', 'subscription charge not recorded: refunded'],
      ['RENEWAL', 'COMPLETED', null],
    ]);
    await reconciled(t);
  });

  it('a subscription written and its request failed after: its order is completed by the guard, and it renews', async () => {
    const t = await app();
    const { billing } = t.app.core.stores;
    const create = billing.create.bind(billing);
    vi.spyOn(billing, 'create').mockImplementationOnce(async (...args) => {
      await create(...args);
      throw new Error('the store is away');
    });
    expect((await subscribe(t)).statusCode).toBe(500);
    const [sub] = (resultOf(await fpGet(t, '/api/v1/subscriptions?userId=user_1')) as Json).items as [Json];
    expect(sub).toMatchObject({ status: 'ACTIVE', nextChargeAt: '2026-02-15T12:00:00.000Z' });
    expect(await ordersOf(t)).toEqual([['INITIAL', 'PAID', null]]);
    await t.clock.advance(GUARD);
    expect(await ordersOf(t)).toEqual([['INITIAL', 'COMPLETED', null]]);
    await advanceTo(t, '2026-02-15T12:00:00.000Z');
    expect(await ordersOf(t)).toEqual([['RENEWAL', 'COMPLETED', null]]); // the initial one past FLUXPAY_TTL_MS
    expect(((resultOf(await fpGet(t, `/api/v1/subscriptions/${sub.subscriptionId}`)) as Json).invoices as Json[]).map((i) => i.kind)).toEqual(['INITIAL', 'RENEWAL']);
    await reconciled(t);
  });

  it('a delayed charge slower than a lease (X-Sim-Scenario: delay) is not taken for a cut-off one: subscribed, its order completed, for good', async () => {
    const t = await app({ DEFAULT_DELAY_DELAY_MS: '45000' });
    let done = false;
    const answer = subscribe(t, {}, { 'x-sim-scenario': 'delay' }).finally(() => (done = true));
    // The clock on by a second at a time until the confirm's 45 s delay has passed and it answers:
    // bounded by real time (10 s), not by 60 steps, which a slow Redis could use up before the delay was set (a review).
    for (const until = Date.now() + 10_000; !done && Date.now() < until; ) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await t.clock.advance(1000);
    }
    const sub = resultOf(await answer) as Json;
    expect(sub).toMatchObject({ status: 'ACTIVE', invoices: [{ kind: 'INITIAL', status: 'PAID' }] });
    expect(await ordersOf(t)).toEqual([['INITIAL', 'COMPLETED', null]]);
    await t.clock.advance(45_000 + 30_000);
    expect(await ordersOf(t)).toEqual([['INITIAL', 'COMPLETED', null]]);
    expect(await t.app.core.scheduler.pending(CHARGE_JOB)).toBe(0);
    await reconciled(t);
  });

  it('a subscription charged and never written: the charge is refunded by its guard, and its due work does nothing', async () => {
    const t = await app();
    vi.spyOn(t.app.core.stores.billing, 'create').mockRejectedValueOnce(new Error('the store is away'));
    expect((await subscribe(t)).statusCode).toBe(500);
    expect((resultOf(await fpGet(t, '/api/v1/subscriptions?userId=user_1')) as Json).items).toEqual([]);
    expect(await ordersOf(t)).toEqual([['INITIAL', 'PAID', null]]);
    await t.clock.advance(GUARD);
    expect(await ordersOf(t)).toEqual([['INITIAL', 'CANCELLED', 'subscription charge not recorded: refunded']]);
    expect(await t.app.core.scheduler.pending(SUBSCRIPTION_JOB, CHARGE_JOB)).toBe(1); // the due work of the subscription never written
    await advanceTo(t, '2026-03-15T12:00:00.000Z');
    expect(await t.app.core.scheduler.pending(SUBSCRIPTION_JOB, CHARGE_JOB)).toBe(0);
    await reconciled(t);
  });
});
