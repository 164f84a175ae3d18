import { beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisBillingStore } from '../../src/adapters/redis/fluxpay-billing.ts';
import { MemoryFluxPayStore } from '../../src/adapters/memory/fluxpay.ts';
import { RESENT_WITHIN_MS } from '../../src/adapters/redis/connection.ts';
import { RedisFluxPayStore } from '../../src/adapters/redis/fluxpay.ts';
import { BACKFILL_USERS } from '../../src/adapters/redis/fluxpay/credits.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { createRandom } from '../../src/core/random.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { sentTwice, type TestRedis, withRedisServer } from '../helpers/redis.ts';
import { compensationsLeft, SAGA_STEPS, sagaDid, stampOf, type SagaStepName, type CreditTransaction, type InboundEvent, type Order, type Payment, type Saga, type Stamp } from '../../src/core/fluxpay/model.ts';
import type { FluxPayStore } from '../../src/core/fluxpay/ports.ts';
import { reconcile } from '../../src/core/fluxpay/reconcile.ts';
import { canceled } from '../../src/core/subscriptions/subscription.ts';
import type { SubscriptionRecord } from '../../src/core/subscriptions/ports.ts';
import { aSubscription } from './contracts/billing.contract.ts';
import { concurrently, DAY, ids, T0, tally } from './contracts/fixtures.ts';
import { anOrder, aPayment, aSaga, deducted, usedSince } from './contracts/fluxpay.contract.ts';
import { billingStoreContract } from './contracts/billing.contract.ts';
import { fluxPayStoreContract } from './contracts/fluxpay.contract.ts';

/**
 * FluxPay's store contracts against the Redis adapters, on a private redis-server this file starts
 * (test/helpers/redis.ts), and the races of several replicas: stores on separate connections with
 * one key prefix. Skipped without redis-server locally; in CI its absence fails.
 */

withRedisServer('Redis FluxPay adapters', (server) => {
  let redis: TestRedis;
  beforeAll(() => {
    redis = server();
  });

  fluxPayStoreContract('redis', (options) => new RedisFluxPayStore(redis.client, { keyPrefix: redis.newPrefix(), ...options }));
  billingStoreContract('redis', ({ maxSubscriptions, ttlMs }) => {
    const keyPrefix = redis.newPrefix();
    const fluxpay = new RedisFluxPayStore(redis.client, { keyPrefix, ttlMs, maxRecords: 100_000 });
    return { billing: new RedisBillingStore(redis.client, { keyPrefix, maxSubscriptions, ttlMs }, fluxpay.outbox), fluxpay };
  });

  const OPTIONS = { ttlMs: DAY, maxRecords: 100_000 };
  const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  /** The millisecond time of a `tx_<ULID>` id, and the id with another time (its randomness kept). */
  const ulidTime = (id: string) => [...id.slice(3, 13)].reduce((t, c) => t * 32 + CROCKFORD.indexOf(c), 0);
  const ulidWithTime = (id: string, time: number) => `tx_${time.toString(32).padStart(10, '0').toUpperCase().replace(/[A-V]/g, (c) => CROCKFORD[parseInt(c, 32)] as string)}${id.slice(13)}`;
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

    it('a user’s credit transactions are listed in the order they were applied, also when a replica’s ids are behind (its clock, or the same millisecond): such an id takes the time after the user’s newest, its randomness kept (before, it was listed below changes it followed)', async () => {
      const [a, b] = replicas();
      await credit(a, 'user_1', 100);
      const charged = (await a.transactions('user_1', { limit: 10 })).data[0] as CreditTransaction;
      // b's id: a ULID of 1970 (a clock far behind), with randomness of its own.
      const behind = `tx_0000000000${'R'.repeat(16)}`;
      const used = await b.useCredits({ userId: 'user_1', serviceId: 's', usageId: 'u-b', amount: 10, creditUsageId: ids('cu') }, { ...stamp(), transactionId: behind });
      expect(used.kind).toBe('deducted');
      await a.useCredits({ userId: 'user_1', serviceId: 's', usageId: 'u-a', amount: 10, creditUsageId: ids('cu') }, stamp());
      const listed = (await b.transactions('user_1', { limit: 10 })).data;
      expect(listed.map((tx) => [tx.type, tx.balanceAfter])).toEqual([
        ['USE', 80],
        ['USE', 90],
        ['CHARGE', 100],
      ]);
      const moved = listed[1] as CreditTransaction;
      expect(moved.transactionId).toBe(ulidWithTime(behind, ulidTime(charged.transactionId) + 1));
      expect(moved.transactionId.endsWith('R'.repeat(16))).toBe(true);
      // Every id once, and the books agree.
      expect(new Set(listed.map((tx) => tx.transactionId)).size).toBe(3);
      expect(reconcile(await a.snapshot()).mismatches).toEqual([]);
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

  it('RedisFluxPayStore.creditBalances reads the first users from an index, not every user (the console reads it on each live update; before 2026-12-06 every balance and total, sorted in JavaScript), and indexes the users an earlier version charged a bounded number a read', async () => {
    const keyPrefix = redis.newPrefix();
    const store = new RedisFluxPayStore(redis.client, { keyPrefix, ...OPTIONS });
    // 3,000 users as an earlier version left them: balances and totals, no index.
    const users = Array.from({ length: 3_000 }, (_, i) => `user_${String((i * 7) % 3_000).padStart(4, '0')}`);
    await redis.client.hset(`${keyPrefix}fp:bal`, Object.fromEntries(users.map((u, i) => [u, String(i)])));
    await redis.client.hset(`${keyPrefix}fp:ct`, Object.fromEntries(users.map((u, i) => [`${u}\tcharged`, String(i)])));
    const indexed = () => redis.client.zcard(`${keyPrefix}fp:busers`);
    // Each read indexes about BACKFILL_USERS of them (HSCAN's COUNT is a hint), never all at once.
    const sizes: number[] = [];
    for (let read = 0; read < 10 && (sizes.at(-1) ?? 0) < 3_000; read++) {
      expect((await store.creditBalances(2)).total).toBe(3_000);
      sizes.push(await indexed());
    }
    expect(sizes.length).toBeGreaterThanOrEqual(3);
    expect(sizes[0]).toBeLessThanOrEqual(2 * BACKFILL_USERS);
    expect(sizes.at(-1)).toBe(3_000);
    const first = { total: 3_000, users: ['user_0000', 'user_0001'].map((u) => ({ userId: u, balance: users.indexOf(u), charged: users.indexOf(u), used: 0, refunded: 0 })) };
    const calls = async () => {
      const stats = await redis.client.info('commandstats');
      return ['hgetall', 'hscan', 'hkeys'].map((command) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0));
    };
    const before = await calls();
    expect(await store.creditBalances(2)).toEqual(first);
    expect(await calls()).toEqual(before);
    expect(await store.creditBalances(0)).toEqual({ total: 3_000, users: [] });
  });

  it('markPublished sent twice past the bound (the relay behind: the event it marks is trimmed at once) still counts what it marked (rev74c: the second run counted 0)', async () => {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const store = new RedisFluxPayStore(client, { keyPrefix, ttlMs: DAY, maxRecords: 2 });
    // Each order cancelled (finished) before the next: the bound of two orders evicts the oldest, while its event stays pending.
    for (const order of [anOrder(), anOrder(), anOrder()]) {
      expect((await store.createOrder(order)).kind).toBe('created');
      await store.cancelOrder(order.orderId, null, stamp());
    }
    const pending = (await store.pendingOutbox(10)).map((event) => event.eventId);
    expect(pending).toHaveLength(3);
    expect(await sentTwice(client, () => store.markPublished(pending.slice(0, 1), T0 + 5))).toBe(1);
    expect(await store.outboxStats()).toEqual({ pending: 2, oldestPendingAt: expect.any(Number), published: 0 });
  });

  it('RedisFluxPayStore.markPublished whose script the client sent twice (its reply lost, sent again after a reconnect) counts what it marked; another relay’s mark of the same events counts none', async () => {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const [store, other] = [new RedisFluxPayStore(client, { keyPrefix, ...OPTIONS }), new RedisFluxPayStore(redis.connect(), { keyPrefix, ...OPTIONS })];
    const orders = [anOrder(), anOrder()];
    for (const order of orders) await store.createOrder(order);
    for (const order of orders) await store.cancelOrder(order.orderId, null, stamp());
    const events = (await store.pendingOutbox(10)).map((event) => event.eventId);
    expect(events).toHaveLength(2);
    expect(await sentTwice(client, () => store.markPublished(events, T0 + 5))).toBe(2);
    expect(await other.markPublished(events, T0 + 6)).toBe(0);
    expect(await store.markPublished(events, T0 + 7)).toBe(0);
    expect(await store.outboxStats()).toEqual({ pending: 0, oldestPendingAt: null, published: 2 });
    expect((await store.listOutbox({ limit: 10 })).data.map((event) => [event.status, event.publishedAt])).toEqual([
      ['PUBLISHED', T0 + 5],
      ['PUBLISHED', T0 + 5],
    ]);
    client.disconnect();
  });

  it('RedisFluxPayStore: a create, confirm, complete, cancel, credit charge, use, refund and saga start whose script the client sent twice (its reply lost, sent again after a reconnect) is applied once and answered as the first run; the same call made again is its own', async () => {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const store = new RedisFluxPayStore(client, { keyPrefix, ...OPTIONS });
    const order = anOrder({ userId: 'user_1', amount: 1000, metadata: { kind: 'CREDIT_CHARGE', credits: 50 } });
    expect(await sentTwice(client, () => store.createOrder(order))).toEqual({ kind: 'created', record: order });
    expect(await store.orderCounts()).toMatchObject({ PENDING: 1 });
    const payment = aPayment(order);
    await store.createPayment(payment);
    const confirm = { paymentKey: payment.paymentKey, orderId: order.orderId, amount: 1000, decision: APPROVE };
    const confirmed = await sentTwice(client, () => store.confirmPayment(confirm, stamp(T0 + 1)));
    expect(confirmed).toMatchObject({ kind: 'approved', payment: { status: 'APPROVED' }, order: { status: 'PAID' } });
    expect(await store.confirmPayment(confirm, stamp(T0 + 2))).toMatchObject({ kind: 'already_processed' });
    const charged = await sentTwice(client, () => store.chargeCredits('user_1', order.orderId, stamp(T0 + 3)));
    expect(charged).toMatchObject({ kind: 'charged', balance: 50, order: { status: 'COMPLETED' } });
    expect(await store.chargeCredits('user_1', order.orderId, stamp(T0 + 4))).toMatchObject({ kind: 'already_charged' });
    const use = { userId: 'user_1', serviceId: 's', usageId: 'u1', amount: 10, creditUsageId: ids('cu') };
    expect(await sentTwice(client, () => store.useCredits(use, stamp(T0 + 5)))).toMatchObject({ kind: 'deducted', balance: 40 });
    expect(await store.useCredits(use, stamp(T0 + 6))).toMatchObject({ kind: 'duplicate' });
    expect(await sentTwice(client, () => store.refundCredits('user_1', 'u1', stamp(T0 + 7)))).toMatchObject({ kind: 'refunded', balance: 50 });
    expect(await store.refundCredits('user_1', 'u1', stamp(T0 + 8))).toMatchObject({ kind: 'already_refunded' });
    expect(await store.balance('user_1')).toBe(50);

    const plain = anOrder({ userId: 'user_2', amount: 500 });
    await store.createOrder(plain);
    const plainPayment = aPayment(plain);
    await store.createPayment(plainPayment);
    await store.confirmPayment({ paymentKey: plainPayment.paymentKey, orderId: plain.orderId, amount: 500, decision: APPROVE }, stamp(T0 + 9));
    expect(await sentTwice(client, () => store.completeOrder(plain.orderId, stamp(T0 + 10)))).toMatchObject({ kind: 'completed', order: { status: 'COMPLETED' } });
    expect(await store.completeOrder(plain.orderId, stamp(T0 + 11))).toMatchObject({ kind: 'order_state' });
    const cancelled = anOrder({ userId: 'user_3' });
    await store.createOrder(cancelled);
    expect(await sentTwice(client, () => store.cancelOrder(cancelled.orderId, 'changed my mind', stamp(T0 + 12)))).toMatchObject({ kind: 'cancelled', order: { status: 'CANCELLED' }, payment: null });
    expect(await store.cancelOrder(cancelled.orderId, null, stamp(T0 + 13))).toMatchObject({ kind: 'order_state' });

    // Each change wrote its event once, and the ledger balances.
    expect((await store.pendingOutbox(20)).map((e) => e.eventType)).toEqual(['payment.approved', 'credit.charged', 'order.completed', 'credit.deducted', 'credit.refunded', 'payment.approved', 'order.completed', 'order.cancelled']);
    expect(reconcile(await store.snapshot())).toMatchObject({ mismatches: [], duplicateCharges: 0, credits: { totalBalance: 50, charged: 50, used: 10, refunded: 10 } });
    // A usage saga's start: started once; the same event again is a duplicate.
    const saga = aSaga();
    const event = { eventId: saga.eventId, type: 'service.usage.requested' as const, userId: saga.userId, usageId: saga.usageId, fingerprint: 'f', sagaId: null, receivedAt: T0 };
    expect(await sentTwice(client, () => store.startSaga(saga, event))).toMatchObject({ kind: 'started', saga: { sagaId: saga.sagaId } });
    expect(await store.startSaga({ ...saga, sagaId: ids('saga') }, event)).toMatchObject({ kind: 'duplicate' });
    // One reply kept per call of those kinds (13, refusals included), each going by itself.
    const kept = await client.keys(`${keyPrefix}fp:reply:*`);
    expect(kept).toHaveLength(13);
    for (const key of kept) expect(await client.pttl(key)).toBeGreaterThan(RESENT_WITHIN_MS - 5_000);
    client.disconnect();
  });

  it('RedisFluxPayStore.createPayment whose script the client sent twice (its reply lost, sent again after a reconnect) is made and counted once, and answered created even when that run filled the bound', async () => {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const store = new RedisFluxPayStore(client, { keyPrefix, ttlMs: DAY, maxRecords: 2 });
    const held = async (): Promise<[string | null, number]> => [await client.get(`${keyPrefix}fp:pn`), (await store.snapshot()).payments.length];
    const order = anOrder();
    await store.createOrder(order);
    const first = aPayment(order);
    expect(await sentTwice(client, () => store.createPayment(first))).toEqual({ kind: 'created', payment: first });
    expect(await held()).toEqual(['1', 1]);
    expect(await client.lrange(`${keyPrefix}fp:op:${order.orderId}`, 0, -1)).toEqual([first.paymentKey]);
    // The second payment fills the bound (2): its second run is the same payment, not one past it.
    const second = aPayment(order);
    expect(await sentTwice(client, () => store.createPayment(second))).toEqual({ kind: 'created', payment: second });
    expect(await held()).toEqual(['2', 2]);
    expect(await store.createPayment(aPayment(order))).toEqual({ kind: 'full' });
    // Cancelled and swept, the order takes its two payments out of the count; a new one fits.
    await store.cancelOrder(order.orderId, null, stamp());
    expect(await store.sweep(T0 + DAY)).toBe(1);
    expect(await held()).toEqual(['0', 0]);
    const later = anOrder({ createdAt: T0 + DAY, updatedAt: T0 + DAY });
    await store.createOrder(later);
    expect((await sentTwice(client, () => store.createPayment(aPayment(later)))).kind).toBe('created');
    expect(await held()).toEqual(['1', 1]);
    client.disconnect();
  });

  it('RedisFluxPayStore adopts the payments an earlier layout held without counting them (a Redis kept across an upgrade): counted at the bound, once', async () => {
    const keyPrefix = redis.newPrefix();
    const store = new RedisFluxPayStore(redis.client, { keyPrefix, ttlMs: DAY, maxRecords: 3 });
    const orders = [anOrder(), anOrder()];
    for (const order of orders) await store.createOrder(order);
    for (const order of [orders[0], orders[0], orders[1]] as Order[]) expect((await store.createPayment(aPayment(order))).kind).toBe('created');
    // As an earlier version left them: no count of payments held.
    await redis.client.del(`${keyPrefix}fp:pn`);
    expect(await store.adoptEarlierLayout()).toBe(3);
    expect(await redis.client.get(`${keyPrefix}fp:pn`)).toBe('3');
    expect(await store.adoptEarlierLayout()).toBe(0);
    expect(await store.createPayment(aPayment(orders[1] as Order))).toEqual({ kind: 'full' });
  });

  it('RedisFluxPayStore: a saga step and a saga resolution whose script the client sent twice answer as the first run (failed, resolved), not refused or duplicate (the service counts a saga as finished by the call whose step ended it)', async () => {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const store = new RedisFluxPayStore(client, { keyPrefix, ...OPTIONS });
    const usage = (saga: Saga, type: InboundEvent['type'], eventId = saga.eventId): InboundEvent => ({ eventId, type, userId: saga.userId, usageId: saga.usageId, fingerprint: `f-${eventId}`, sagaId: null, receivedAt: T0 });
    // No credits: its one forward step fails, and the saga compensates.
    const failing = aSaga({ userId: 'user_poor', plan: ['CREDITS_DEDUCTED'] });
    await store.startSaga(failing, usage(failing, 'service.usage.requested'));
    const step = await sentTwice(client, () => store.runSagaStep(failing.sagaId, 'CREDITS_DEDUCTED', stamp(T0 + 1), ids('cu')));
    expect(step).toMatchObject({ kind: 'failed', reason: 'PAY_001', saga: { status: 'COMPENSATING', steps: [{ step: 'CREDITS_DEDUCTED', status: 'FAILED' }] } });
    expect((await store.runSagaStep(failing.sagaId, 'CREDITS_DEDUCTED', stamp(T0 + 2), ids('cu'))).kind).toBe('refused');
    // The client says the usage failed: resolved once, its event remembered.
    const ended = aSaga({ userId: 'user_poor', plan: ['CREDITS_DEDUCTED'] });
    await store.startSaga(ended, usage(ended, 'service.usage.requested'));
    const end = usage(ended, 'service.usage.failed', `end-${ended.sagaId}`);
    const resolved = await sentTwice(client, () => store.resolveSaga(ended.sagaId, { to: 'COMPENSATING', reason: 'client_failed' }, end, stamp(T0 + 3)));
    expect(resolved).toMatchObject({ kind: 'resolved', saga: { sagaId: ended.sagaId, status: 'COMPENSATING', failureReason: 'client_failed' } });
    expect(await store.resolveSaga(ended.sagaId, { to: 'COMPENSATING', reason: 'client_failed' }, end, stamp(T0 + 4))).toMatchObject({ kind: 'duplicate', event: { eventId: end.eventId, sagaId: ended.sagaId } });
    // A saga already ended told of by another event of the client's that agrees: final, not a duplicate of itself.
    const late = usage(ended, 'service.usage.failed', `late-${ended.sagaId}`);
    expect(await sentTwice(client, () => store.resolveSaga(ended.sagaId, { to: 'COMPENSATING', reason: 'client_failed' }, late, stamp(T0 + 5)))).toMatchObject({ kind: 'final', saga: { sagaId: ended.sagaId, status: 'COMPENSATING' } });
    // One that contradicts it: contradicted, each run alike (nothing recorded).
    const contradicting = usage(ended, 'service.usage.completed', `contra-${ended.sagaId}`);
    expect(await sentTwice(client, () => store.resolveSaga(ended.sagaId, { to: 'COMPLETED' }, contradicting, stamp(T0 + 5)))).toMatchObject({ kind: 'contradicted', saga: { sagaId: ended.sagaId, status: 'COMPENSATING' } });
    // Kept: the failed step, the resolution and the late event's final; a run that changed nothing
    // (the refused step, the duplicate, the contradicted end, a step refused again) keeps nothing.
    expect(await sentTwice(client, () => store.runSagaStep(failing.sagaId, 'CREDITS_DEDUCTED', stamp(T0 + 6), ids('cu')))).toMatchObject({ kind: 'refused' });
    expect(await sentTwice(client, () => store.resolveSaga(ended.sagaId, { to: 'COMPLETED' }, null, stamp(T0 + 7)))).toMatchObject({ kind: 'final' });
    expect(await client.keys(`${keyPrefix}fp:reply:*`)).toHaveLength(3);
    client.disconnect();
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

  it('RedisFluxPayStore adopts the usages and inbound events an earlier layout kept (a Redis kept across an upgrade): counted at the bound and listed, once', async () => {
    const keyPrefix = redis.newPrefix();
    const store = new RedisFluxPayStore(redis.client, { keyPrefix, ttlMs: DAY, maxRecords: 2 });
    await credit(store, 'user_1', 100);
    const use = (usageId: string) => store.useCredits({ userId: 'user_1', serviceId: 's', usageId, amount: 1, creditUsageId: ids('cu') }, stamp());
    for (const usageId of ['u1', 'u2']) expect((await use(usageId)).kind).toBe('deducted');
    const saga = aSaga();
    const event: InboundEvent = { eventId: saga.eventId, type: 'service.usage.requested', userId: saga.userId, usageId: saga.usageId, fingerprint: 'f1', sagaId: null, receivedAt: T0 };
    expect((await store.startSaga(saga, event)).kind).toBe('started');
    // As an earlier version left them: usages and inbound events in the sets of those that may go,
    // no sets of all of them (and no saga's set of held events).
    const [usagesAll, eventsAll] = [`${keyPrefix}fp:ua`, `${keyPrefix}fp:ia`];
    expect([await redis.client.zrange(usagesAll, '0', '-1'), await redis.client.zrange(eventsAll, '0', '-1')]).toEqual([['user_1\nu1', 'user_1\nu2'], [saga.eventId]]);
    await redis.client.del(usagesAll, eventsAll, `${keyPrefix}fp:sh:${saga.sagaId}`);
    await redis.client.zadd(`${keyPrefix}fp:ie`, T0, saga.eventId);
    expect((await store.snapshot()).usages).toEqual([]);
    expect(await store.adoptEarlierLayout()).toBe(3);
    expect((await store.snapshot()).usages.map((u) => u.usageId)).toEqual(['u1', 'u2']);
    expect(await redis.client.zrange(eventsAll, '0', '-1')).toEqual([saga.eventId]);
    expect(await store.adoptEarlierLayout()).toBe(0);
    // The adopted event counts at the bound again, and may go (as the earlier version had it).
    const second = aSaga();
    expect((await store.startSaga(second, { ...event, eventId: second.eventId, usageId: second.usageId })).kind).toBe('started');
    expect(await redis.client.zcard(eventsAll)).toBe(2);
    expect(await redis.client.zrange(`${keyPrefix}fp:ie`, '0', '-1')).toEqual([saga.eventId]);
    // At the bound again: a third usage evicts the oldest.
    expect((await use('u3')).kind).toBe('deducted');
    expect((await store.snapshot()).usages.map((u) => u.usageId)).toEqual(['u2', 'u3']);
    expect(reconcile(await store.snapshot()).mismatches).toEqual([]);
    // A store with no usages, or written by this version, has nothing to adopt.
    expect(await new RedisFluxPayStore(redis.client, { keyPrefix: redis.newPrefix(), ...OPTIONS }).adoptEarlierLayout()).toBe(0);
  });

  it('RedisFluxPayStore counts the credits used since a time by walking the transactions of a user some of which an earlier version wrote (not indexed by time)', async () => {
    const keyPrefix = redis.newPrefix();
    const store = new RedisFluxPayStore(redis.client, { keyPrefix, ttlMs: DAY, maxRecords: 100 });
    await credit(store, 'user_1', 100);
    await credit(store, 'user_2', 100);
    await deducted(store, 'user_1', 'u1', 10, T0 + 1000);
    await deducted(store, 'user_2', 'u1', 4, T0 + 1000);
    // As an earlier version left user_1's first transactions: no `nb`, not in the time index.
    const early = (await store.transactions('user_1', { limit: 10 })).data.map((t) => t.transactionId);
    await redis.client.del(`${keyPrefix}fp:un:user_1`);
    for (const id of early) await redis.client.hdel(`${keyPrefix}fp:t:${id}`, 'nb');
    await deducted(store, 'user_1', 'u2', 5, T0 + 2000);
    expect(await store.refundCredits('user_1', 'u1', stamp(T0 + 3000))).toMatchObject({ kind: 'refunded' });
    const times = [T0, T0 + 1001, T0 + 2001, T0 + 3001];
    expect(await Promise.all(times.map((t) => usedSince(store, 'user_1', t)))).toEqual([5, -5, -10, 0]);
    expect(await Promise.all(times.map((t) => usedSince(store, 'user_2', t)))).toEqual([4, 0, 0, 0]);
    // Once the earlier ones have gone (TTL), the index answers alone.
    expect(await store.sweep(T0 + 1000 + DAY)).toBeGreaterThan(0);
    expect(await redis.client.zcard(`${keyPrefix}fp:un:user_1`)).toBe(2);
    expect(await Promise.all(times.map((t) => usedSince(store, 'user_1', t)))).toEqual([-5, -5, -10, 0]);
  });

  it('RedisFluxPayStore counts and evicts credit transactions in the order written, not in id order: two workers in one millisecond, as memory does', async () => {
    // Two processes' ids minted in one millisecond: which sorts first is chance, not write order.
    const T1 = T0 + 60_000;
    const [a, b] = [createIdFactory(new ManualClock(T1))('tx'), createIdFactory(new ManualClock(T1))('tx')];
    const [first, second] = a > b ? [a, b] : [b, a];
    const byWorker = (transactionId: string, now: number): Stamp => ({ ...stamp(now), transactionId });
    for (const maxRecords of [1_000, 2]) {
      const stores: FluxPayStore[] = [new RedisFluxPayStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs: DAY, maxRecords }), new MemoryFluxPayStore({ ttlMs: DAY, maxRecords })];
      const answers = [];
      for (const store of stores) {
        await credit(store, 'user_1', 100);
        for (const [usageId, amount, s] of [['u1', 10, byWorker(first, T1)], ['u2', 3, byWorker(second, T1)], ['u3', 1, stamp(T1 + 1_000)]] as const) await deducted(store, 'user_1', usageId, amount, s);
        answers.push([await usedSince(store, 'user_1', T0 + 1), (await store.transactions('user_1', { limit: 10 })).data.map((t) => t.amount).sort()]);
      }
      // Roomy: all three uses. At a bound of 2: the charge and u1, the first two written, went.
      expect(answers).toEqual(maxRecords === 2 ? [[4, [1, 3]], [4, [1, 3]]] : [[14, [1, 10, 100, 3]], [14, [1, 10, 100, 3]]]);
    }
  });

  it('RedisFluxPayStore.creditsUsed walking an earlier layout: a use written during the walk is counted in both parts or in neither', async () => {
    const keyPrefix = redis.newPrefix();
    const store = new RedisFluxPayStore(redis.client, { keyPrefix, ttlMs: DAY, maxRecords: 100 });
    await credit(store, 'user_1', 100);
    await deducted(store, 'user_1', 'u1', 10, T0 + 1_000);
    // As an earlier version left them: not in the time index, no `nb`; so creditsUsed walks them.
    for (const tx of (await store.transactions('user_1', { limit: 10 })).data) await redis.client.hdel(`${keyPrefix}fp:t:${tx.transactionId}`, 'nb');
    await redis.client.del(`${keyPrefix}fp:un:user_1`);
    // Another request's use of 7 lands while the walk reads its first page.
    const walk = store.transactions.bind(store);
    let raced = false;
    vi.spyOn(store, 'transactions').mockImplementation(async (userId, page) => {
      if (!raced) {
        raced = true;
        await deducted(store, 'user_1', 'u2', 7, T0 + 5_000);
      }
      return walk(userId, page);
    });
    // A period starting at T0 + 5 s: its base (total − since) is the 10 used before it.
    expect(await store.creditsUsed('user_1', T0 + 5_000)).toEqual({ total: 17, since: 7 });
  });

  it('RedisFluxPayStore: a transaction an earlier version swept without its time index entry is dropped from it, not an error', async () => {
    const keyPrefix = redis.newPrefix();
    const P = `${keyPrefix}fp:`;
    const store = new RedisFluxPayStore(redis.client, { keyPrefix, ttlMs: DAY, maxRecords: 1_000 });
    await credit(store, 'user_1', 100);
    await deducted(store, 'user_1', 'u1', 5, T0 + 1_000);
    // The earlier version's removeTransaction, as its TTL sweep ran it on the oldest (the charge): no ZREM of P..'un:'.
    const charge = (await redis.client.zrange(`${P}te`, '0', '0'))[0] as string;
    const earlierRemove = `local P, id = ARGV[1], ARGV[2]
redis.call('ZREM', P .. 'te', id)
local user = redis.call('HGET', P .. 't:' .. id, 'u')
redis.call('DEL', P .. 't:' .. id)
redis.call('ZREM', P .. 'ut:' .. user, id)
return 1`;
    expect(await redis.client.eval(earlierRemove, 0, P, charge)).toBe(1);
    expect(await redis.client.zcard(`${P}un:user_1`)).toBe(2);
    expect(await usedSince(store, 'user_1', T0 - DAY)).toBe(5);
    expect(await redis.client.zrange(`${P}un:user_1`, '0', '-1')).toEqual([(await store.transactions('user_1', { limit: 1 })).data[0]?.transactionId]);
  });

  it('RedisFluxPayStore adopts credit transactions an earlier version scored by createdAt: scored in write order, once, and swept by their TTL as before', async () => {
    const keyPrefix = redis.newPrefix();
    const P = `${keyPrefix}fp:`;
    const store = new RedisFluxPayStore(redis.client, { keyPrefix, ttlMs: DAY, maxRecords: 1_000 });
    await credit(store, 'user_1', 100);
    await deducted(store, 'user_1', 'u1', 5, T0 + 1_000);
    // As the earlier version left them: scored by createdAt, no P..'tseq'.
    const scored = await redis.client.zrange(`${P}te`, '0', '-1', 'WITHSCORES');
    expect(scored.filter((_, i) => i % 2 === 1)).toEqual([String(T0 * 1000), String((T0 + 1_000) * 1000)]);
    for (let i = 0; i < scored.length; i += 2) await redis.client.zadd(`${P}te`, Number(scored[i + 1]) / 1000, scored[i] as string);
    await redis.client.del(`${P}tseq`);
    expect(await store.adoptEarlierLayout()).toBe(2);
    expect(await redis.client.zrange(`${P}te`, '0', '-1', 'WITHSCORES')).toEqual(scored);
    expect(await store.adoptEarlierLayout()).toBe(0);
    expect(await store.sweep(T0 + 1_000 + DAY - 1)).toBeGreaterThan(0);
    expect((await store.transactions('user_1', { limit: 10 })).data.map((t) => t.type)).toEqual(['USE']);
  });

  it('RedisFluxPayStore answers 1,500 seeded random operations exactly as MemoryFluxPayStore does', async () => {
    const memory = new MemoryFluxPayStore(OPTIONS);
    const [store] = replicas();
    const random = createRandom(14);
    const chance = (p: number): boolean => random.next() < p;
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random.next() * items.length)] as T;
    const users = ['user_1', 'user_2', 'user_3'];
    const usageIds = Array.from({ length: 30 }, (_, i) => `u${i}`);
    const eventIds = Array.from({ length: 80 }, (_, i) => `e${i}`);
    const orders: Order[] = [];
    const payments: Payment[] = [];
    const paid: Order[] = [];
    const sagas: Saga[] = [];
    const outcomes = new Set<string>();
    let now = T0;
    const event = (type: InboundEvent['type'], userId: string, usageId: string): InboundEvent => ({ eventId: pick(eventIds), type, userId, usageId, fingerprint: chance(0.9) ? 'f1' : 'f2', sagaId: null, receivedAt: now });
    /** The step a saga would run next (sometimes any step: refusals are compared too). */
    const stepOf = (saga: Saga): SagaStepName => {
      if (chance(0.2)) return pick(SAGA_STEPS);
      if (saga.status === 'RUNNING') return saga.plan.find((step) => !sagaDid(saga, step)) ?? pick(SAGA_STEPS);
      return compensationsLeft(saga)[0] ?? pick(SAGA_STEPS);
    };
    // Each operation's inputs are drawn once, from what memory answered so far; both stores then run it.
    for (let i = 0; i < 1_500; i++) {
      now += Math.floor(random.next() * 1_000);
      const s = stamp(now);
      const r = random.next();
      let operation: (on: FluxPayStore) => Promise<unknown>;
      if (r < 0.1 || orders.length === 0) {
        const order = anOrder({ userId: pick(users), amount: 100 + Math.floor(random.next() * 900), createdAt: now, updatedAt: now, metadata: chance(0.4) ? { kind: 'CREDIT_CHARGE', credits: 30 } : null });
        orders.push(order);
        operation = (on) => on.createOrder(order);
      } else if (r < 0.2) {
        const payment = aPayment(pick(orders.slice(-10)), { createdAt: now, updatedAt: now });
        payments.push(payment);
        operation = (on) => on.createPayment(payment);
      } else if (r < 0.3 && payments.length > 0) {
        const payment = pick(payments.slice(-10));
        const decision = chance(0.85) ? APPROVE : { status: 'FAILED' as const, failureCode: 'DECLINE_2', decidedBy: 'card' as const };
        const amount = chance(0.95) ? payment.amount : payment.amount + 1;
        operation = (on) => on.confirmPayment({ paymentKey: payment.paymentKey, orderId: payment.orderId, amount, decision }, s);
      } else if (r < 0.34) {
        const [order, reason] = [pick(orders), pick([null, 'changed my mind'])];
        operation = (on) => on.cancelOrder(order.orderId, reason, s);
      } else if (r < 0.38) {
        const order = pick(paid.length > 0 && chance(0.8) ? paid : orders);
        operation = (on) => on.completeOrder(order.orderId, s);
      } else if (r < 0.46) {
        const order = pick(paid.length > 0 && chance(0.8) ? paid : orders);
        operation = (on) => on.chargeCredits(order.userId, order.orderId, s);
      } else if (r < 0.56) {
        const input = { userId: pick(users), serviceId: 's', usageId: pick(usageIds), amount: 1 + Math.floor(random.next() * 10), creditUsageId: ids('cu') };
        operation = (on) => on.useCredits(input, s);
      } else if (r < 0.6) {
        const [userId, usageId] = [pick(users), pick(usageIds)];
        operation = (on) => on.refundCredits(userId, usageId, s);
      } else if (r < 0.7) {
        const userId = pick(users);
        const mine = paid.filter((o) => o.userId === userId && o.metadata === null);
        const order = chance(0.6) ? (mine.length > 0 && chance(0.8) ? pick(mine) : pick(orders)) : null;
        const credits = order === null || chance(0.5) ? 1 + Math.floor(random.next() * 15) : null;
        const plan = [...(order === null ? [] : (['ORDER_RESERVED'] as const)), ...(credits === null ? [] : (['CREDITS_DEDUCTED'] as const))];
        const saga = aSaga({ userId, usageId: pick(usageIds), orderId: order?.orderId ?? null, credits, plan, createdAt: now, updatedAt: now, deadlineAt: now + 30_000 });
        const requested = event('service.usage.requested', userId, saga.usageId);
        operation = (on) => on.startSaga(saga, requested);
      } else if (r < 0.85 && sagas.length > 0) {
        const saga = pick(sagas.slice(-8));
        const [step, cu] = [stepOf(saga), ids('cu')];
        operation = (on) => on.runSagaStep(saga.sagaId, step, s, cu);
      } else if (r < 0.92 && sagas.length > 0) {
        const saga = pick(sagas.slice(-8));
        const resolution = chance(0.6) ? ({ to: 'COMPLETED' } as const) : ({ to: 'COMPENSATING', reason: 'service.usage.failed' } as const);
        const reported = chance(0.7) ? event(resolution.to === 'COMPLETED' ? 'service.usage.completed' : 'service.usage.failed', saga.userId, saga.usageId) : null;
        operation = (on) => on.resolveSaga(saga.sagaId, resolution, reported, s);
      } else if (r < 0.94) {
        const [userId, since] = [pick(users), now - Math.floor(random.next() * 60_000)];
        operation = (on) => on.creditsUsed(userId, since);
      } else {
        const [limit, at] = [1 + Math.floor(random.next() * 5), now];
        operation = async (on) => on.markPublished((await on.pendingOutbox(limit)).map((e) => e.eventId), at);
      }
      const expected = (await operation(memory)) as { kind?: string; order?: Order; saga?: Saga } | number;
      expect(await operation(store), `operation ${i}`).toEqual(expected);
      if (typeof expected === 'number') continue;
      outcomes.add(`${expected.kind}${expected.saga === undefined ? '' : ` ${expected.saga.status}`}`);
      if (expected.kind === 'approved' && expected.order !== undefined) paid.push(expected.order);
      if (expected.saga !== undefined) {
        const known = sagas.findIndex((x) => x.sagaId === expected.saga?.sagaId);
        if (known >= 0) sagas.splice(known, 1);
        sagas.push(expected.saga);
      }
    }
    // The run went through every kind of change (so the comparison is of something).
    const covered = ['approved', 'failed', 'cancelled', 'completed', 'charged', 'deducted', 'refunded', 'started RUNNING', 'done COMPENSATED', 'resolved COMPLETED', 'failed COMPENSATING', 'duplicate RUNNING', 'conflict', 'usage_taken RUNNING', 'insufficient'];
    expect([...outcomes]).toEqual(expect.arrayContaining(covered));
    const byId = <T>(records: T[], id: (r: T) => string): T[] => [...records].sort((a, b) => (id(a) < id(b) ? -1 : 1));
    const comparable = async (on: FluxPayStore) => {
      const snap = await on.snapshot();
      return {
        ...snap,
        payments: byId(snap.payments, (p) => p.paymentKey),
        usages: byId(snap.usages, (u) => u.creditUsageId),
        balances: byId(snap.balances, (b) => b.userId),
        creditTotals: byId(snap.creditTotals, (t) => t.userId),
        counts: await on.orderCounts(),
        outbox: [await on.outboxStats(), await on.listOutbox({ limit: 10_000 })],
        transactions: await Promise.all(users.map((u) => on.transactions(u, { limit: 10_000 }))),
        ledgers: await Promise.all(orders.map((o) => on.ledger(o.orderId))),
        orderOutbox: await Promise.all(orders.map((o) => on.orderOutbox(o.orderId, 200))),
      };
    };
    const before = await comparable(memory);
    expect(await comparable(store)).toEqual(before);
    expect(await store.sweep(now + DAY)).toBe(await memory.sweep(now + DAY));
    expect(await comparable(store)).toEqual(await comparable(memory));
  });

  it('RedisBillingStore: a create and an update whose script the client sent twice (their replies lost, sent again after a reconnect) are applied once, counted once, their events written once, and answered as the first run', async () => {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const fluxpay = new RedisFluxPayStore(client, { keyPrefix, ...OPTIONS });
    const billing = new RedisBillingStore(client, { keyPrefix, maxSubscriptions: 100, ttlMs: DAY }, fluxpay.outbox);
    const sub = aSubscription();
    expect(await sentTwice(client, () => billing.create(sub, 'evt_created'))).toEqual({ kind: 'created', record: sub });
    const next = canceled(sub, T0 + 1) as SubscriptionRecord;
    const update = { next, invoice: null, card: null, event: { eventId: 'evt_canceled', eventType: 'subscription.canceled' as const } };
    expect(await sentTwice(client, () => billing.update(update))).toEqual({ kind: 'updated', record: next });
    expect(await billing.counts()).toEqual({ ACTIVE: 0, PAST_DUE: 0, CANCELED: 1, EXPIRED: 0 });
    expect((await fluxpay.pendingOutbox(10)).map((e) => [e.sequence, e.eventId])).toEqual([
      [1, 'evt_created'],
      [2, 'evt_canceled'],
    ]);
    // Another update of that version (its own call) is a conflict.
    expect(await billing.update({ ...update, event: { eventId: 'evt_again', eventType: 'subscription.canceled' } })).toEqual({ kind: 'conflict', record: next });
    client.disconnect();
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
});
