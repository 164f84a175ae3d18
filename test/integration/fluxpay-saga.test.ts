import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import { SAGA_ADVANCE_JOB, SAGA_TIMEOUT_JOB } from '../../src/core/fluxpay/saga.ts';
import type { Job } from '../../src/core/ports.ts';
import { onRedis, ULID } from '../helpers/app.ts';
import { balanceOf, chargeCredits, errorOf, fluxpayApps, fpError, fpGet, fpPost, paidOrder, postEvent, reconciliation, resultOf, SUCCESS, usageEvent, type Json } from '../helpers/fluxpay.ts';

/**
 * The usage saga (issue 11 "The usage saga"), black-box: `POST /api/v1/events` with document
 * 002's `service.usage.*` events, the saga's record (`GET /api/v1/sagas/{id}`), and the orders,
 * payments and balances it leaves. Happy path, failure path, timeout on the injected clock, a
 * forward step that cannot run, duplicates. The random-flow property test is in
 * fluxpay-property.test.ts.
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const at = (ms = 0) => new Date(T0 + ms).toISOString();
const TIMEOUT_MS = 5000;
/** Runs of a job with the store away, in the flapping-store test: more than the scheduler's MAX_ATTEMPTS (8). */
const OUTAGES = 12;

const { app, closeAll } = fluxpayApps({ FLUXPAY_USAGE_TIMEOUT_MS: String(TIMEOUT_MS) });

/** The saga of a paid order holding user_1's 50 credits, compensated in full by its timeout: credits back, order cancelled. */
async function expectCompensatedByTimeout(t: Awaited<ReturnType<typeof app>>, sagaId: string, orderId: string): Promise<void> {
  const saga = resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`));
  expect([saga.status, saga.failureReason, saga.steps.map((s: Json) => `${s.step}:${s.status}`)]).toEqual([
    'COMPENSATED',
    'timeout',
    ['ORDER_RESERVED:SUCCEEDED', 'CREDITS_DEDUCTED:SUCCEEDED', 'CREDITS_RESTORED:SUCCEEDED', 'PAYMENT_CANCELLED:SUCCEEDED', 'ORDER_CANCELLED:SUCCEEDED'],
  ]);
  expect(await balanceOf(t, 'user_1')).toBe(50);
  expect(resultOf(await fpGet(t, `/api/v1/orders/${orderId}`)).status).toBe('CANCELLED');
}
afterEach(closeAll);

/** A usage (use-1) of user_1 given 50 credits, holding a paid order and deducting all 50: the saga `expectCompensatedByTimeout` expects. */
async function usageHoldingAll(t: Awaited<ReturnType<typeof app>>): Promise<{ order: Json; payment: Json; started: Json }> {
  await chargeCredits(t, 'user_1', 50);
  const { order, payment } = await paidOrder(t);
  const started = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', orderId: order.orderId, credits: 50 })));
  return { order, payment, started };
}

const step = (name: string, kind: string, status: string, reason: string | null = null, ms = 0) => ({ step: name, kind, status, at: at(ms), reason });

describe('service.usage.requested → completed', () => {
  it('with a paid order: the order is held, then COMPLETED with its payment CONFIRMED; the saga COMPLETED', async () => {
    const t = await app();
    const { order, payment } = await paidOrder(t);
    const requested = usageEvent('requested', { userId: 'user_1', usageId: 'use-1', orderId: order.orderId });
    const res = resultOf(await postEvent(t, requested));
    const sagaId = res.saga.sagaId as string;
    expect(res).toEqual({
      eventId: requested.eventId,
      type: 'service.usage.requested',
      duplicate: false,
      saga: {
        sagaId: expect.stringMatching(new RegExp(`^saga_${ULID}$`)),
        eventId: requested.eventId,
        userId: 'user_1',
        serviceId: 'ai-writer',
        usageId: 'use-1',
        orderId: order.orderId,
        credits: null,
        status: 'RUNNING',
        failureReason: null,
        steps: [step('ORDER_RESERVED', 'ACTION', 'SUCCEEDED')],
        deadlineAt: at(TIMEOUT_MS),
        createdAt: at(),
        updatedAt: at(),
        completedAt: null,
      },
    });
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toEqual({ ...order, sagaId });
    // Held by the saga: it cannot be cancelled by hand meanwhile.
    expect(errorOf(await t.app.inject({ method: 'POST', url: `/api/v1/orders/${order.orderId}/cancel` }))).toEqual([
      409,
      fpError('PAY_004', `Order ${order.orderId} is held by usage saga ${sagaId}; it is cancelled only if that usage fails.`),
    ]);

    await t.clock.advance(1000);
    const completed = usageEvent('completed', { userId: 'user_1', usageId: 'use-1' });
    const done = resultOf(await postEvent(t, completed));
    expect(done).toEqual({
      eventId: completed.eventId,
      type: 'service.usage.completed',
      duplicate: false,
      saga: { ...res.saga, status: 'COMPLETED', steps: [step('ORDER_RESERVED', 'ACTION', 'SUCCEEDED'), step('ORDER_COMPLETED', 'ACTION', 'SUCCEEDED', null, 1000)], updatedAt: at(1000), completedAt: at(1000) },
    });
    expect(resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`))).toEqual(done.saga);
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toEqual({ ...order, sagaId, status: 'COMPLETED', completedAt: at(1000), updatedAt: at(1000) });
    expect(resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`))).toEqual({ ...payment, status: 'CONFIRMED', confirmedAt: at(1000), updatedAt: at(1000) });
    // The deadline passes: nothing happens to a completed saga.
    await t.clock.advance(TIMEOUT_MS);
    expect(resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`))).toEqual(done.saga);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('with credits: deducted at the start, kept on completion', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 100);
    const res = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', credits: 30 })));
    expect(res.saga).toMatchObject({ credits: 30, status: 'RUNNING', steps: [step('CREDITS_DEDUCTED', 'ACTION', 'SUCCEEDED')] });
    expect(await balanceOf(t, 'user_1')).toBe(70);
    expect(resultOf(await postEvent(t, usageEvent('completed', { userId: 'user_1', usageId: 'use-1' }))).saga.status).toBe('COMPLETED');
    expect(await balanceOf(t, 'user_1')).toBe(70);
    // Without `credits` or an order the service's price applies (ai-writer: 10).
    expect(resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-2' }))).saga).toMatchObject({ credits: 10, orderId: null });
    expect(await balanceOf(t, 'user_1')).toBe(60);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });
});

describe('compensation', () => {
  it('service.usage.failed: credits restored, payment cancelled (refunded), order CANCELLED, in reverse order; saga COMPENSATED', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 100);
    const { order, payment } = await paidOrder(t);
    const started = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', orderId: order.orderId, credits: 40 })));
    expect(started.saga.steps).toEqual([step('ORDER_RESERVED', 'ACTION', 'SUCCEEDED'), step('CREDITS_DEDUCTED', 'ACTION', 'SUCCEEDED')]);
    expect(await balanceOf(t, 'user_1')).toBe(60);
    await t.clock.advance(250);
    const failed = resultOf(await postEvent(t, usageEvent('failed', { userId: 'user_1', usageId: 'use-1' })));
    expect(failed.saga).toEqual({
      ...started.saga,
      status: 'COMPENSATED',
      failureReason: 'service.usage.failed',
      steps: [
        step('ORDER_RESERVED', 'ACTION', 'SUCCEEDED'),
        step('CREDITS_DEDUCTED', 'ACTION', 'SUCCEEDED'),
        step('CREDITS_RESTORED', 'COMPENSATION', 'SUCCEEDED', null, 250),
        step('PAYMENT_CANCELLED', 'COMPENSATION', 'SUCCEEDED', null, 250),
        step('ORDER_CANCELLED', 'COMPENSATION', 'SUCCEEDED', null, 250),
      ],
      updatedAt: at(250),
      completedAt: at(250),
    });
    expect(await balanceOf(t, 'user_1')).toBe(100);
    const sagaId = started.saga.sagaId;
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toEqual({
      ...order,
      sagaId,
      status: 'CANCELLED',
      cancelReason: 'usage use-1 failed: service.usage.failed',
      cancelledAt: at(250),
      updatedAt: at(250),
    });
    expect(resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`))).toEqual({ ...payment, status: 'CANCELLED', cancelledAt: at(250), updatedAt: at(250) });
    // A completion after the compensation is refused and changes nothing.
    expect(errorOf(await postEvent(t, usageEvent('completed', { userId: 'user_1', usageId: 'use-1' })))).toEqual([
      409,
      fpError('PAY_004', `Usage use-1 of user user_1 cannot be completed: its saga ${sagaId} is COMPENSATED (service.usage.failed), its charge undone.`),
    ]);
    expect(resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`))).toEqual(failed.saga);
    const report = await reconciliation(t);
    expect([report.consistent, report.sagas, report.orders.CANCELLED, report.payments.CANCELLED]).toEqual([true, { total: 1, running: 0, completed: 0, compensating: 0, compensated: 1 }, 1, 1]);
  });

  it('no completion within FLUXPAY_USAGE_TIMEOUT_MS: compensated by the timeout, on the injected clock', async () => {
    const t = await app();
    const { order, started } = await usageHoldingAll(t);
    expect(await balanceOf(t, 'user_1')).toBe(0);
    await t.clock.advance(TIMEOUT_MS - 1);
    expect(resultOf(await fpGet(t, `/api/v1/sagas/${started.saga.sagaId}`)).status).toBe('RUNNING');
    await t.clock.advance(1);
    const saga = resultOf(await fpGet(t, `/api/v1/sagas/${started.saga.sagaId}`));
    expect([saga.status, saga.failureReason, saga.completedAt, saga.steps.map((s: Json) => `${s.step}:${s.status}@${s.at}`)]).toEqual([
      'COMPENSATED',
      'timeout',
      at(TIMEOUT_MS),
      [`ORDER_RESERVED:SUCCEEDED@${at()}`, `CREDITS_DEDUCTED:SUCCEEDED@${at()}`, `CREDITS_RESTORED:SUCCEEDED@${at(TIMEOUT_MS)}`, `PAYMENT_CANCELLED:SUCCEEDED@${at(TIMEOUT_MS)}`, `ORDER_CANCELLED:SUCCEEDED@${at(TIMEOUT_MS)}`],
    ]);
    expect(await balanceOf(t, 'user_1')).toBe(50);
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`)).status).toBe('CANCELLED');
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('the timeout’s compensation cut by a failing store whose retry cannot be scheduled either: the timeout job runs again and the saga ends COMPENSATED', async () => {
    const t = await app();
    const { order, started } = await usageHoldingAll(t);
    const { fluxpay, scheduler } = t.app.core.stores;
    vi.spyOn(fluxpay, 'runSagaStep').mockRejectedValueOnce(new Error('the store is away'));
    const schedule = scheduler.schedule.bind(scheduler);
    let refused = 0;
    vi.spyOn(scheduler, 'schedule').mockImplementation((job: Job) => (job.kind === SAGA_ADVANCE_JOB && refused++ === 0 ? Promise.reject(new Error('the store is away')) : schedule(job)));
    await t.clock.advance(TIMEOUT_MS);
    expect(refused).toBe(1);
    expect(resultOf(await fpGet(t, `/api/v1/sagas/${started.saga.sagaId}`)).status).toBe('COMPENSATING');
    await t.clock.advance(100); // the timeout job's retry
    await expectCompensatedByTimeout(t, started.saga.sagaId, order.orderId);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('a flapping store (twelve runs of the timeout job, more than MAX_ATTEMPTS, with the store away): the job is not given up, and the saga ends COMPENSATED', async () => {
    const t = await app();
    const { order, started } = await usageHoldingAll(t);
    const { fluxpay, scheduler } = t.app.core.stores;
    const runSagaStep = fluxpay.runSagaStep.bind(fluxpay);
    let away = 0;
    vi.spyOn(fluxpay, 'runSagaStep').mockImplementation((...args) => (away < OUTAGES ? Promise.reject(new StoreUnavailableError()) : runSagaStep(...args)));
    const schedule = scheduler.schedule.bind(scheduler);
    vi.spyOn(scheduler, 'schedule').mockImplementation((job: Job) => (job.kind === SAGA_ADVANCE_JOB && away < OUTAGES ? (away++, Promise.reject(new StoreUnavailableError())) : schedule(job)));
    await t.clock.advance(TIMEOUT_MS);
    // The job's retries come 100 ms, 200 ms, … at most 30 s apart: twelve of them within 150 s.
    for (let s = 0; s < 150; s++) await t.clock.advance(1000);
    expect(away).toBe(OUTAGES);
    await expectCompensatedByTimeout(t, started.saga.sagaId, order.orderId);
    expect(await scheduler.count(SAGA_TIMEOUT_JOB)).toBe(0);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('a saga written by a request that failed right after (its process stopped, the store away): its deadline was armed first, and compensates it', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 50);
    const { order } = await paidOrder(t);
    const { fluxpay, scheduler } = t.app.core.stores;
    const startSaga = fluxpay.startSaga.bind(fluxpay);
    vi.spyOn(fluxpay, 'startSaga').mockImplementationOnce(async (...args) => {
      await startSaga(...args);
      throw new Error('the store is away');
    });
    const failed = await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', orderId: order.orderId, credits: 50 }));
    expect(failed.statusCode).toBe(500);
    const sagaId = (await fluxpay.sagaOfUsage('user_1', 'use-1'))?.sagaId as string;
    expect(resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`))).toMatchObject({ status: 'RUNNING', steps: [] });
    expect(await scheduler.count(SAGA_TIMEOUT_JOB)).toBe(1);
    await t.clock.advance(TIMEOUT_MS);
    const saga = resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`));
    expect([saga.status, saga.failureReason, saga.steps.map((s: Json) => `${s.step}:${s.status}`)]).toEqual(['COMPENSATED', 'timeout', ['CREDITS_RESTORED:SKIPPED', 'PAYMENT_CANCELLED:SKIPPED', 'ORDER_CANCELLED:SKIPPED']]);
    expect(await balanceOf(t, 'user_1')).toBe(50);
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`)).status).toBe('PAID');
    expect(await scheduler.count(SAGA_TIMEOUT_JOB)).toBe(0);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('a forward step that cannot run (PAY_001, PAY_004) compensates at once; what was not done is SKIPPED', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 5);
    const { order } = await paidOrder(t);
    const short = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', orderId: order.orderId, credits: 6 })));
    expect([short.saga.status, short.saga.failureReason, short.saga.steps]).toEqual([
      'COMPENSATED',
      'PAY_001',
      [
        step('ORDER_RESERVED', 'ACTION', 'SUCCEEDED'),
        step('CREDITS_DEDUCTED', 'ACTION', 'FAILED', 'PAY_001'),
        step('CREDITS_RESTORED', 'COMPENSATION', 'SKIPPED', 'nothing deducted'),
        step('PAYMENT_CANCELLED', 'COMPENSATION', 'SUCCEEDED'),
        step('ORDER_CANCELLED', 'COMPENSATION', 'SUCCEEDED'),
      ],
    ]);
    expect(await balanceOf(t, 'user_1')).toBe(5);
    // The order is CANCELLED now: a usage that wants it fails at its first step.
    const cancelled = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-2', orderId: order.orderId })));
    expect([cancelled.saga.status, cancelled.saga.failureReason, cancelled.saga.steps.map((s: Json) => `${s.step}:${s.status}`)]).toEqual([
      'COMPENSATED',
      'PAY_004',
      ['ORDER_RESERVED:FAILED', 'CREDITS_RESTORED:SKIPPED', 'PAYMENT_CANCELLED:SKIPPED', 'ORDER_CANCELLED:SKIPPED'],
    ]);
    // Another user's order is not found for this user.
    const other = await paidOrder(t, { userId: 'user_2' });
    const foreign = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-3', orderId: other.order.orderId })));
    expect([foreign.saga.failureReason, resultOf(await fpGet(t, `/api/v1/orders/${other.order.orderId}`)).status]).toEqual(['COMMON_404', 'PAID']);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('an order that buys credits (CREDIT_CHARGE) is not held by a usage: PAY_004, and it stays PAID for its credits (before, the saga completed it and its credits could never be charged)', async () => {
    const t = await app();
    const { order } = await paidOrder(t, { orderName: '100 credits', amount: 1000, metadata: { kind: 'CREDIT_CHARGE', credits: 100 } });
    const refused = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', orderId: order.orderId })));
    expect([refused.saga.status, refused.saga.failureReason, refused.saga.steps.map((s: Json) => `${s.step}:${s.status}:${s.reason}`)]).toEqual([
      'COMPENSATED',
      'PAY_004',
      ['ORDER_RESERVED:FAILED:PAY_004', 'CREDITS_RESTORED:SKIPPED:nothing deducted', 'PAYMENT_CANCELLED:SKIPPED:no order reserved', 'ORDER_CANCELLED:SKIPPED:no order reserved'],
    ]);
    // Its completion is refused as for any compensated saga, and the order is still the user's to charge.
    expect(errorOf(await postEvent(t, usageEvent('completed', { userId: 'user_1', usageId: 'use-1' })))[1].code).toBe('PAY_004');
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toMatchObject({ status: 'PAID', sagaId: null, chargedCredits: null });
    const charged = resultOf(await fpPost(t, '/api/v1/credits/charge', { userId: 'user_1', orderId: order.orderId }));
    expect([charged.balance, await balanceOf(t, 'user_1')]).toEqual([100, 100]);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('an order of another service is not held by a usage: PAY_004, and it stays PAID for its own service (2026-12-05: before, any service’s usage took it)', async () => {
    const t = await app();
    const { order } = await paidOrder(t);
    expect(order.serviceId).toBe('ai-writer');
    const refused = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', serviceId: 'image-studio', usageId: 'use-1', orderId: order.orderId })));
    expect([refused.saga.status, refused.saga.failureReason, refused.saga.steps.map((s: Json) => `${s.step}:${s.status}`)]).toEqual([
      'COMPENSATED',
      'PAY_004',
      ['ORDER_RESERVED:FAILED', 'CREDITS_RESTORED:SKIPPED', 'PAYMENT_CANCELLED:SKIPPED', 'ORDER_CANCELLED:SKIPPED'],
    ]);
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`))).toMatchObject({ status: 'PAID', sagaId: null });
    const taken = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-2', orderId: order.orderId })));
    expect([taken.saga.status, resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`)).sagaId]).toEqual(['RUNNING', taken.saga.sagaId]);
    resultOf(await postEvent(t, usageEvent('completed', { userId: 'user_1', usageId: 'use-2' })));
    expect(resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`)).status).toBe('COMPLETED');
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });
});

describe('events', () => {
  it('de-duplicated by eventId: a repeat does nothing and says so; the same eventId with another body is PAY_003', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 100);
    const requested = usageEvent('requested', { userId: 'user_1', usageId: 'use-1', credits: 10 });
    const first = resultOf(await postEvent(t, requested));
    const again = resultOf(await postEvent(t, requested));
    expect(again).toEqual({ ...first, duplicate: true });
    expect(await balanceOf(t, 'user_1')).toBe(90);
    expect(errorOf(await postEvent(t, { ...requested, credits: 20 }))).toEqual([409, fpError('PAY_003', `Event ${requested.eventId} was already received with another body (service.usage.requested).`)]);
    // Another event for a usage that already has a saga.
    expect(errorOf(await postEvent(t, { ...requested, eventId: 'evt-other' }))).toEqual([409, fpError('PAY_003', `Usage use-1 of user user_1 already has saga ${first.saga.sagaId}.`)]);
    const completed = usageEvent('completed', { userId: 'user_1', usageId: 'use-1' });
    const done = resultOf(await postEvent(t, completed));
    expect(resultOf(await postEvent(t, completed))).toEqual({ ...done, duplicate: true });
    expect(await balanceOf(t, 'user_1')).toBe(90);
  });

  it('the end of an unknown usage is COMMON_404 (and is not recorded); an unknown saga is COMMON_404; bad events are COMMON_400', async () => {
    const t = await app();
    const completed = usageEvent('completed', { userId: 'user_1', usageId: 'nope' });
    expect(errorOf(await postEvent(t, completed))).toEqual([404, fpError('COMMON_404', 'The saga of usage nope of user user_1 was not found.')]);
    expect(errorOf(await postEvent(t, completed))[0]).toBe(404);
    expect(errorOf(await fpGet(t, '/api/v1/sagas/saga_01KBA7Q4C2N5R8V1X4Z7B0D3FG'))).toEqual([404, fpError('COMMON_404', 'Saga saga_01KBA7Q4C2N5R8V1X4Z7B0D3FG was not found.')]);
    expect(errorOf(await postEvent(t, { ...completed, type: 'service.usage.started' }))[1].result.errors).toEqual([
      { field: 'type', reason: 'must be one of service.usage.requested, service.usage.completed, service.usage.failed' },
    ]);
    expect(errorOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'u', serviceId: 'unpriced' })))).toEqual([
      400,
      // The field of an event that gives the price is `credits` (`amount` is /api/v1/credits/use's).
      fpError('COMMON_400', 'serviceId: unpriced has no price in the billing policy; send credits', { errors: [{ field: 'serviceId', reason: 'unpriced has no price in the billing policy; send credits' }] }),
    ]);
    expect((await reconciliation(t)).sagas.total).toBe(0);
  });
});

describe('a saga’s usage and POST /api/v1/credits/refund', () => {
  // A user test (two replicas on Redis, 2026-12-07): the refund was taken, the saga then completed,
  // and the reconciliation found "COMPLETED, but its usage is REFUNDED": the usage delivered, its credits back.
  it('is refused PAY_004 while the saga runs and after it completed, changing nothing; its compensation alone restores it', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 100);
    const kept = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', credits: 30 }))).saga;
    const refused = (usageId: string, sagaId: string) => [
      409,
      fpError('PAY_004', `Usage ${usageId} of user user_1 belongs to saga ${sagaId}: its credits are given back by the saga's compensation (send service.usage.failed), not by a refund.`),
    ];
    expect(errorOf(await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'use-1' }))).toEqual(refused('use-1', kept.sagaId));
    expect(await balanceOf(t, 'user_1')).toBe(70);
    expect(resultOf(await postEvent(t, usageEvent('completed', { userId: 'user_1', usageId: 'use-1' }))).saga.status).toBe('COMPLETED');
    expect(errorOf(await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'use-1' }))).toEqual(refused('use-1', kept.sagaId));

    const undone = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-2', credits: 20 }))).saga;
    expect(errorOf(await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'use-2' }))).toEqual(refused('use-2', undone.sagaId));
    const failed = resultOf(await postEvent(t, usageEvent('failed', { userId: 'user_1', usageId: 'use-2' }))).saga;
    expect(failed.steps.map((s: Json) => `${s.step}:${s.status}`)).toEqual(['CREDITS_DEDUCTED:SUCCEEDED', 'CREDITS_RESTORED:SUCCEEDED', 'PAYMENT_CANCELLED:SKIPPED', 'ORDER_CANCELLED:SKIPPED']);
    expect(errorOf(await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'use-2' }))).toEqual([409, fpError('PAY_003', 'Usage use-2 was already refunded.')]);

    expect(await balanceOf(t, 'user_1')).toBe(70);
    const types = resultOf(await fpGet(t, '/api/v1/credits/transactions?userId=user_1&limit=10')).items.map((x: Json) => x.type);
    expect(types).toEqual(['REFUND', 'USE', 'USE', 'CHARGE']);
    const rec = await reconciliation(t);
    expect([rec.consistent, rec.mismatches]).toEqual([true, []]);
  });
});

describe('an end event that contradicts how the saga ended', () => {
  it('service.usage.completed after the timeout compensated the saga is PAY_004 and changes nothing, sent again too; a failed then agrees and is answered as before', async () => {
    const t = await app();
    const { order, payment, started } = await usageHoldingAll(t);
    const sagaId = started.saga.sagaId as string;
    await t.clock.advance(TIMEOUT_MS);
    await expectCompensatedByTimeout(t, sagaId, order.orderId);
    const compensated = resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`));
    const late = usageEvent('completed', { userId: 'user_1', usageId: 'use-1' });
    const refusal = [409, fpError('PAY_004', `Usage use-1 of user user_1 cannot be completed: its saga ${sagaId} is COMPENSATED (timeout), its charge undone.`)];
    expect(errorOf(await postEvent(t, late))).toEqual(refusal);
    // The same event again: refused again (not a duplicate's success).
    expect(errorOf(await postEvent(t, late))).toEqual(refusal);
    expect(resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`))).toEqual(compensated);
    expect(resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`)).status).toBe('CANCELLED');
    await expectCompensatedByTimeout(t, sagaId, order.orderId);
    // A failure agrees with the outcome: answered as it was, the saga as it is.
    const failed = usageEvent('failed', { userId: 'user_1', usageId: 'use-1' });
    const agreed = await postEvent(t, failed);
    expect(agreed.json()).toEqual({ ...SUCCESS, result: { eventId: failed.eventId, type: 'service.usage.failed', duplicate: false, saga: compensated } });
    expect((await postEvent(t, failed)).json()).toEqual({ ...SUCCESS, result: { eventId: failed.eventId, type: 'service.usage.failed', duplicate: true, saga: compensated } });
    // Another completion of a saga whose forward step could not run (PAY_001): refused as well.
    const short = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-2', credits: 51 })));
    expect(errorOf(await postEvent(t, usageEvent('completed', { userId: 'user_1', usageId: 'use-2' })))).toEqual([
      409,
      fpError('PAY_004', `Usage use-2 of user user_1 cannot be completed: its saga ${short.saga.sagaId} is COMPENSATED (PAY_001), its charge undone.`),
    ]);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('service.usage.failed after completed is PAY_004 and changes nothing, sent again too; another completion agrees and is answered as before', async () => {
    const t = await app();
    const { order, payment } = await paidOrder(t);
    const started = resultOf(await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', orderId: order.orderId })));
    const sagaId = started.saga.sagaId as string;
    const done = resultOf(await postEvent(t, usageEvent('completed', { userId: 'user_1', usageId: 'use-1' }))).saga as Json;
    expect(done.status).toBe('COMPLETED');
    const failed = usageEvent('failed', { userId: 'user_1', usageId: 'use-1' });
    const refusal = [409, fpError('PAY_004', `Usage use-1 of user user_1 cannot fail: its saga ${sagaId} is COMPLETED, its charge kept.`)];
    expect(errorOf(await postEvent(t, failed))).toEqual(refusal);
    expect(errorOf(await postEvent(t, failed))).toEqual(refusal);
    expect(resultOf(await fpGet(t, `/api/v1/sagas/${sagaId}`))).toEqual(done);
    expect([resultOf(await fpGet(t, `/api/v1/orders/${order.orderId}`)).status, resultOf(await fpGet(t, `/api/v1/payments/${payment.paymentKey}`)).status]).toEqual(['COMPLETED', 'CONFIRMED']);
    // A second completion (its own eventId) agrees: answered as before, a success that changed nothing.
    const again = usageEvent('completed', { userId: 'user_1', usageId: 'use-1' });
    expect((await postEvent(t, again)).json()).toEqual({ ...SUCCESS, result: { eventId: again.eventId, type: 'service.usage.completed', duplicate: false, saga: done } });
    expect((await postEvent(t, again)).json()).toEqual({ ...SUCCESS, result: { eventId: again.eventId, type: 'service.usage.completed', duplicate: true, saga: done } });
    // The refused event was not recorded (a 4xx changes nothing): its id is free.
    expect((await postEvent(t, { ...failed, type: 'service.usage.completed' })).json()).toEqual({ ...SUCCESS, result: { eventId: failed.eventId, type: 'service.usage.completed', duplicate: false, saga: done } });
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it(`completed and failed at once${onRedis ? ', on two replicas of one Redis prefix' : ''}: exactly one succeeds, the other is PAY_004; the order and payment agree with the one that did`, async () => {
    const a = await app();
    const b = onRedis ? await app({ REDIS_KEY_PREFIX: a.config.redis.keyPrefix }) : a;
    for (let k = 0; k < 6; k++) {
      const { order, payment } = await paidOrder(a);
      const usageId = `use-${k}`;
      const sagaId = resultOf(await postEvent(a, usageEvent('requested', { userId: 'user_1', usageId, orderId: order.orderId }))).saga.sagaId as string;
      const completed = usageEvent('completed', { userId: 'user_1', usageId });
      const failed = usageEvent('failed', { userId: 'user_1', usageId });
      // Each event in turn on each replica.
      const [onA, onB] = k % 2 === 0 ? [completed, failed] : [failed, completed];
      const answers = await Promise.all([postEvent(a, onA), postEvent(b, onB)]);
      const byEvent = new Map([onA, onB].map((event, i) => [event.type as string, answers[i] as (typeof answers)[number]]));
      const won = [...byEvent].filter(([, res]) => res.statusCode === 200);
      expect(won, answers.map((res) => res.body).join('\n')).toHaveLength(1);
      const [winner] = won[0] as [string, (typeof answers)[number]];
      const saga = resultOf(await fpGet(a, `/api/v1/sagas/${sagaId}`));
      const orderNow = resultOf(await fpGet(b, `/api/v1/orders/${order.orderId}`)).status;
      const paymentNow = resultOf(await fpGet(b, `/api/v1/payments/${payment.paymentKey}`)).status;
      if (winner === 'service.usage.completed') {
        expect((byEvent.get(winner) as (typeof answers)[number]).json()).toEqual({ ...SUCCESS, result: { eventId: completed.eventId, type: winner, duplicate: false, saga } });
        expect(errorOf(byEvent.get('service.usage.failed') as (typeof answers)[number])).toEqual([409, fpError('PAY_004', `Usage ${usageId} of user user_1 cannot fail: its saga ${sagaId} is COMPLETED, its charge kept.`)]);
        expect([saga.status, orderNow, paymentNow]).toEqual(['COMPLETED', 'COMPLETED', 'CONFIRMED']);
      } else {
        expect((byEvent.get(winner) as (typeof answers)[number]).json()).toEqual({ ...SUCCESS, result: { eventId: failed.eventId, type: winner, duplicate: false, saga } });
        // Refused as soon as the failure was decided: the compensation may not have ended yet.
        expect(errorOf(byEvent.get('service.usage.completed') as (typeof answers)[number])).toEqual([
          409,
          fpError('PAY_004', new RegExp(`^Usage ${usageId} of user user_1 cannot be completed: its saga ${sagaId} is COMPENSAT(ING|ED) \\(service\\.usage\\.failed\\), its charge undone\\.$`)),
        ]);
        expect([saga.status, orderNow, paymentNow]).toEqual(['COMPENSATED', 'CANCELLED', 'CANCELLED']);
      }
    }
    expect((await reconciliation(a)).mismatches).toEqual([]);
  });
});
