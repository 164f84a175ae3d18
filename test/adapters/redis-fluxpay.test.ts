import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBillingStore } from '../../src/adapters/redis/fluxpay-billing.ts';
import { RedisFluxPayStore } from '../../src/adapters/redis/fluxpay.ts';
import { hasRedisServer, REDIS_SERVER_MISSING, startRedis, type TestRedis } from '../helpers/redis.ts';
import { inCi } from '../helpers/promtool.ts';
import { stampOf, type CreditTransaction, type Order, type Payment } from '../../src/core/fluxpay/model.ts';
import type { FluxPayStore } from '../../src/core/fluxpay/ports.ts';
import { reconcile } from '../../src/core/fluxpay/reconcile.ts';
import { canceled } from '../../src/core/subscriptions/subscription.ts';
import type { SubscriptionRecord } from '../../src/core/subscriptions/ports.ts';
import { aSubscription } from './contracts/billing.contract.ts';
import { concurrently, DAY, ids, T0, tally } from './contracts/fixtures.ts';
import { anOrder, aPayment, aSaga } from './contracts/fluxpay.contract.ts';
import { billingStoreContract } from './contracts/billing.contract.ts';
import { fluxPayStoreContract } from './contracts/fluxpay.contract.ts';

/**
 * FluxPay's store contracts against the Redis adapters, on a private redis-server this file starts
 * (test/helpers/redis.ts), and the races of several replicas: stores on separate connections with
 * one key prefix. Skipped without redis-server locally; in CI its absence fails.
 */

if (!hasRedisServer) {
  describe('Redis FluxPay adapters', () => {
    it.skipIf(!inCi)('need redis-server (skipped: not installed)', () => undefined);
    it.runIf(inCi)('need redis-server', () => {
      throw new Error(REDIS_SERVER_MISSING);
    });
  });
} else {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  fluxPayStoreContract('redis', ({ ttlMs, maxRecords }) => new RedisFluxPayStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs, maxRecords }));
  billingStoreContract('redis', ({ maxSubscriptions, ttlMs }) => {
    const keyPrefix = redis.newPrefix();
    const fluxpay = new RedisFluxPayStore(redis.client, { keyPrefix, ttlMs, maxRecords: 100_000 });
    return { billing: new RedisBillingStore(redis.client, { keyPrefix, maxSubscriptions, ttlMs }, fluxpay.outbox), fluxpay };
  });

  const OPTIONS = { ttlMs: DAY, maxRecords: 100_000 };
  const APPROVE = { status: 'APPROVED' as const, failureCode: null, decidedBy: 'card' as const };
  const stamp = (now = T0) => stampOf(ids, now);

  /** Two stores on separate connections with one key prefix: two replicas of one service. */
  function replicas(): [RedisFluxPayStore, RedisFluxPayStore] {
    const keyPrefix = redis.newPrefix();
    return [new RedisFluxPayStore(redis.connect(), { keyPrefix, ...OPTIONS }), new RedisFluxPayStore(redis.connect(), { keyPrefix, ...OPTIONS })];
  }

  async function paid(store: FluxPayStore, overrides: Partial<Order> = {}): Promise<Order> {
    const order = anOrder(overrides);
    await store.createOrder(order);
    const payment = aPayment(order);
    await store.createPayment(payment);
    const outcome = await store.confirmPayment({ paymentKey: payment.paymentKey, orderId: order.orderId, amount: order.amount, decision: APPROVE }, stamp());
    if (outcome.kind !== 'approved') throw new Error(outcome.kind);
    return outcome.order;
  }

  async function credit(store: FluxPayStore, userId: string, credits: number): Promise<void> {
    const order = await paid(store, { userId, metadata: { kind: 'CREDIT_CHARGE', credits } });
    expect((await store.chargeCredits(userId, order.orderId, stamp())).kind).toBe('charged');
  }

  describe('RedisFluxPayStore across replicas (two connections, one prefix)', () => {
    it('200 concurrent uses of one balance split across both never take it below zero', async () => {
      const [a, b] = replicas();
      await credit(a, 'user_1', 95);
      const results = await concurrently(200, (i) => (i % 2 === 0 ? a : b).useCredits({ userId: 'user_1', serviceId: 's', usageId: `u${i}`, amount: 10, creditUsageId: ids('cu') }, stamp()));
      expect(tally(results)).toEqual({ deducted: 9, insufficient: 191 });
      expect([await a.balance('user_1'), await b.balance('user_1')]).toEqual([5, 5]);
      const report = reconcile(await b.snapshot());
      expect([report.mismatches, report.credits]).toEqual([[], { users: 1, totalBalance: 5, charged: 95, used: 90, refunded: 0 }]);
    });

    it('200 concurrent confirms of one order split across both approve once; one usageId from both deducts once', async () => {
      const [a, b] = replicas();
      const order = anOrder();
      await a.createOrder(order);
      const payments: Payment[] = Array.from({ length: 200 }, () => aPayment(order));
      for (const p of payments) await b.createPayment(p);
      const results = await concurrently(200, (i) => (i % 2 === 0 ? a : b).confirmPayment({ paymentKey: (payments[i] as Payment).paymentKey, orderId: order.orderId, amount: 1000, decision: APPROVE }, stamp()));
      expect(tally(results)).toEqual({ approved: 1, order_state: 199 });
      const winner = results.find((r) => r.kind === 'approved');
      expect(await b.getOrder(order.orderId)).toEqual({ ...order, status: 'PAID', paymentKey: winner?.kind === 'approved' ? winner.payment.paymentKey : null, paidAt: T0 });
      expect((await a.pendingOutbox(10)).map((e) => e.eventType)).toEqual(['payment.approved']);
      await credit(a, 'user_2', 100);
      const same = await concurrently(100, (i) => (i % 2 === 0 ? a : b).useCredits({ userId: 'user_2', serviceId: 's', usageId: 'same', amount: 10, creditUsageId: ids('cu') }, stamp()));
      expect(tally(same)).toEqual({ deducted: 1, duplicate: 99 });
      expect(reconcile(await a.snapshot())).toMatchObject({ mismatches: [], duplicateCharges: 0, credits: { totalBalance: 90 } });
    });

    it('the outbox is in write order across both: each deduction sees the one before it', async () => {
      const [a, b] = replicas();
      await credit(b, 'user_1', 1_000);
      const before = (await a.pendingOutbox(10)).length;
      await concurrently(100, (i) => (i % 2 === 0 ? a : b).useCredits({ userId: 'user_1', serviceId: 's', usageId: `u${i}`, amount: 7, creditUsageId: ids('cu') }, stamp()));
      const events = (await b.pendingOutbox(1_000)).slice(before);
      expect(events.map((e) => e.sequence)).toEqual(Array.from({ length: 100 }, (_, i) => before + i + 1));
      // Written in sequence order, each deduction's balance is 7 below the one before it.
      const balances = events.map((e) => (e.payload as { transaction: CreditTransaction }).transaction.balanceAfter);
      expect(balances).toEqual(Array.from({ length: 100 }, (_, i) => 1_000 - 7 * (i + 1)));
      const page = await a.listOutbox({ limit: 3 });
      expect(page.data.map((e) => e.sequence)).toEqual([before + 100, before + 99, before + 98]);
    });

    it('one usage event delivered to both starts one saga', async () => {
      const [a, b] = replicas();
      const saga = aSaga();
      const event = { eventId: saga.eventId, type: 'service.usage.requested' as const, userId: saga.userId, usageId: saga.usageId, fingerprint: 'f', sagaId: null, receivedAt: T0 };
      const results = await concurrently(50, (i) => (i % 2 === 0 ? a : b).startSaga({ ...saga, sagaId: ids('saga') }, event));
      expect(tally(results)).toEqual({ started: 1, duplicate: 49 });
      const started = results.find((r) => r.kind === 'started');
      expect(await a.inboundEvent(saga.eventId)).toEqual({ ...event, sagaId: started?.kind === 'started' ? started.saga.sagaId : '' });
    });
  });

  describe('RedisFluxPayStore records', () => {
    it('keep every field exactly through a change: nested metadata, escapes, amounts past 14 digits', async () => {
      const [store] = replicas();
      const metadata = { tags: [], nested: { list: [1, 'two', null], empty: {} }, note: 'a/b "quoted" \\ ü 한국 \n end' };
      const order = await paid(store, { amount: 123_456_789_012_345, metadata });
      expect(order).toMatchObject({ amount: 123_456_789_012_345, metadata, status: 'PAID' });
      const cancelled = await store.cancelOrder(order.orderId, 'reason with "quotes" / and \\', stamp(T0 + 1));
      expect(cancelled).toMatchObject({ kind: 'cancelled', order: { ...order, status: 'CANCELLED', cancelReason: 'reason with "quotes" / and \\', cancelledAt: T0 + 1, updatedAt: T0 + 1 } });
      const [, event] = await store.pendingOutbox(10);
      expect(event?.payload).toEqual({ kind: 'order', order: await store.getOrder(order.orderId), payment: await store.getPayment(order.paymentKey as string) });
      expect((await store.ledger(order.orderId)).map((tx) => [tx.kind, tx.entries[0]?.amount])).toEqual([
        ['PAYMENT_APPROVED', 123_456_789_012_345],
        ['PAYMENT_CANCELLED', 123_456_789_012_345],
      ]);
      expect(reconcile(await store.snapshot()).mismatches).toEqual([]);
    });
  });

  it('RedisFluxPayStore sweeps past one script batch (500 of a kind): every finished order goes, pending events stay', async () => {
    const [store] = replicas();
    const orders = Array.from({ length: 600 }, () => anOrder());
    await Promise.all(orders.map((order) => store.createOrder(order)));
    await Promise.all(orders.map((order) => store.cancelOrder(order.orderId, null, stamp())));
    expect(await store.orderCounts()).toMatchObject({ CANCELLED: 600 });
    expect(await store.sweep(T0 + DAY - 1)).toBe(0);
    expect(await store.sweep(T0 + DAY)).toBe(600);
    expect([await store.stats(), await store.orderCounts(), await store.listOrders({ limit: 10 })]).toEqual([
      { size: 0, max: OPTIONS.maxRecords },
      { PENDING: 0, PAID: 0, COMPLETED: 0, CANCELLED: 0, cancelledAfterPayment: 0 },
      { data: [], nextCursor: null },
    ]);
    expect(await store.outboxStats()).toEqual({ pending: 600, oldestPendingAt: T0, published: 0 });
  });

  describe('RedisBillingStore across replicas', () => {
    it('of concurrent changes of one version from both, one applies and writes its event to the shared outbox', async () => {
      const keyPrefix = redis.newPrefix();
      const stores = [redis.connect(), redis.connect()].map((client) => {
        const fluxpay = new RedisFluxPayStore(client, { keyPrefix, ...OPTIONS });
        return { fluxpay, billing: new RedisBillingStore(client, { keyPrefix, maxSubscriptions: 100, ttlMs: DAY }, fluxpay.outbox) };
      });
      const [a, b] = stores as [(typeof stores)[number], (typeof stores)[number]];
      const sub = aSubscription();
      await a.billing.create(sub, 'evt_a');
      await paid(b.fluxpay);
      const results = await concurrently(40, (i) => (i % 2 === 0 ? a : b).billing.update({ next: canceled(sub, T0 + i) as SubscriptionRecord, invoice: null, card: null, event: { eventId: `evt_c${i}`, eventType: 'subscription.canceled' } }));
      expect(tally(results)).toEqual({ updated: 1, conflict: 39 });
      const winner = results.findIndex((r) => r.kind === 'updated');
      expect((await b.fluxpay.pendingOutbox(10)).map((e) => [e.sequence, e.eventId])).toEqual([
        [1, 'evt_a'],
        [2, expect.stringMatching(/^evt_/)],
        [3, `evt_c${winner}`],
      ]);
      expect(await a.billing.counts()).toEqual({ ACTIVE: 0, PAST_DUE: 0, CANCELED: 1, EXPIRED: 0 });
    });
  });
}
