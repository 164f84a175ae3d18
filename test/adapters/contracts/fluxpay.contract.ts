import { describe, expect, it } from 'vitest';
import { outboxOrderIds, stampOf, type InboundEvent, type Order, type OutboxEvent, type Payment, type Saga, type Stamp } from '../../../src/core/fluxpay/model.ts';
import type { FluxPayStore, UseOutcome } from '../../../src/core/fluxpay/ports.ts';
import { reconcile } from '../../../src/core/fluxpay/reconcile.ts';
import { createRandom } from '../../../src/core/random.ts';
import { concurrently, DAY, ids, T0, tally } from './fixtures.ts';

export interface FluxPayStoreOptions {
  ttlMs: number;
  maxRecords: number;
  maxCreditUsers?: number;
}

export type FluxPayStoreFactory = (options: FluxPayStoreOptions) => Promise<FluxPayStore> | FluxPayStore;

const ROOMY: FluxPayStoreOptions = { ttlMs: DAY, maxRecords: 100_000 };
const stamp = (now = T0): Stamp => stampOf(ids, now);

export function anOrder(overrides: Partial<Order> = {}): Order {
  return {
    orderId: ids('ord'),
    userId: 'user_1',
    serviceId: 'ai-writer',
    orderName: 'report',
    amount: 1000,
    currency: 'KRW',
    metadata: null,
    status: 'PENDING',
    paymentKey: null,
    sagaId: null,
    chargedCredits: null,
    cancelReason: null,
    createdAt: T0,
    updatedAt: T0,
    paidAt: null,
    completedAt: null,
    cancelledAt: null,
    ...overrides,
  };
}

export function aPayment(order: Order, overrides: Partial<Payment> = {}): Payment {
  return {
    paymentKey: ids('pk'),
    orderId: order.orderId,
    userId: order.userId,
    amount: order.amount,
    currency: order.currency,
    method: 'CARD',
    card: { last4: '4242', expMonth: null, expYear: null },
    easyPay: null,
    status: 'READY',
    failureCode: null,
    decidedBy: null,
    planned: { status: 'APPROVED', failureCode: null },
    createdAt: T0,
    updatedAt: T0,
    approvedAt: null,
    confirmedAt: null,
    failedAt: null,
    cancelledAt: null,
    ...overrides,
  };
}

export function aSaga(overrides: Partial<Saga> = {}): Saga {
  return {
    sagaId: ids('saga'),
    eventId: `e-${ids('evt')}`,
    userId: 'user_1',
    serviceId: 'ai-writer',
    usageId: `u-${ids('cu')}`,
    orderId: null,
    credits: 10,
    status: 'RUNNING',
    plan: ['CREDITS_DEDUCTED'],
    steps: [],
    failureReason: null,
    deadlineAt: T0 + 30_000,
    createdAt: T0,
    updatedAt: T0,
    completedAt: null,
    ...overrides,
  };
}

const inbound = (saga: Saga, fingerprint = 'f1', type: InboundEvent['type'] = 'service.usage.requested'): InboundEvent => ({
  eventId: saga.eventId,
  type,
  userId: saga.userId,
  usageId: saga.usageId,
  fingerprint,
  sagaId: null,
  receivedAt: T0,
});

const APPROVE = { status: 'APPROVED' as const, failureCode: null, decidedBy: 'card' as const };
const NO_ORDERS = { PENDING: 0, PAID: 0, COMPLETED: 0, CANCELLED: 0, cancelledAfterPayment: 0 };

/** A use of `amount` credits by `userId` at `at` (a time, or a whole stamp), which must be deducted. */
export async function deducted(store: FluxPayStore, userId: string, usageId: string, amount: number, at: number | Stamp = T0): Promise<void> {
  const s = typeof at === 'number' ? stamp(at) : at;
  expect((await store.useCredits({ userId, serviceId: 's', usageId, amount, creditUsageId: ids('cu') }, s)).kind).toBe('deducted');
}

/** creditsUsed's `since` part. */
export async function usedSince(store: FluxPayStore, userId: string, since: number): Promise<number> {
  return (await store.creditsUsed(userId, since)).since;
}

/** The FluxPayStore port's contract (src/core/fluxpay/ports.ts), for any adapter `make` builds fresh. */
export function fluxPayStoreContract(name: string, make: FluxPayStoreFactory): void {
  /** A PAID order (and its APPROVED payment) in `store`. */
  async function paid(store: FluxPayStore, overrides: Partial<Order> = {}): Promise<{ order: Order; payment: Payment }> {
    const order = anOrder(overrides);
    expect(await store.createOrder(order)).toEqual({ kind: 'created', record: order });
    const payment = aPayment(order);
    expect((await store.createPayment(payment)).kind).toBe('created');
    const confirmed = await store.confirmPayment({ paymentKey: payment.paymentKey, orderId: order.orderId, amount: order.amount, decision: APPROVE }, stamp());
    if (confirmed.kind !== 'approved') throw new Error(`not approved: ${confirmed.kind}`);
    return { order: confirmed.order, payment: confirmed.payment };
  }

  async function credited(store: FluxPayStore, userId: string, credits: number, at = T0): Promise<void> {
    const { order } = await paid(store, { userId, metadata: { kind: 'CREDIT_CHARGE', credits } });
    expect((await store.chargeCredits(userId, order.orderId, stamp(at))).kind).toBe('charged');
  }

  /** What creditsUsed's `since` must be, the long way: a walk of the user's transactions, newest first, back to `since`. */
  async function walkedUsedSince(store: FluxPayStore, userId: string, since: number): Promise<number> {
    let used = 0;
    for (const tx of (await store.transactions(userId, { limit: 100_000 })).data) {
      if (tx.createdAt < since) break;
      used += tx.type === 'USE' ? tx.amount : tx.type === 'REFUND' ? -tx.amount : 0;
    }
    return used;
  }

  async function consistent(store: FluxPayStore): Promise<void> {
    expect(reconcile(await store.snapshot()).mismatches).toEqual([]);
  }

  describe(`FluxPayStore contract: ${name}`, () => {
    describe('orders and payments', () => {
      it('stores orders and payments as copies; an unknown id is undefined', async () => {
        const store = await make(ROOMY);
        const order = anOrder({ metadata: { a: 1 } });
        await store.createOrder(order);
        (order as { orderName: string }).orderName = 'changed';
        const read = await store.getOrder(order.orderId);
        expect(read?.orderName).toBe('report');
        (read as Order).status = 'PAID';
        expect((await store.getOrder(order.orderId))?.status).toBe('PENDING');
        expect(await store.getOrder('ord_unknown')).toBeUndefined();
        expect(await store.getPayment('pk_unknown')).toBeUndefined();
      });

      it('a payment only for a PENDING order; confirm approves it in one step with its ledger transaction and event', async () => {
        const store = await make(ROOMY);
        expect((await store.createPayment(aPayment(anOrder()))).kind).toBe('order_not_found');
        const { order, payment } = await paid(store);
        expect([order.status, order.paymentKey, payment.status, payment.approvedAt]).toEqual(['PAID', payment.paymentKey, 'APPROVED', T0]);
        expect(await store.createPayment(aPayment(order))).toEqual({ kind: 'order_state', order });
        const pending = await store.pendingOutbox(10);
        expect(pending.map((e) => [e.eventType, e.aggregate, e.sequence, e.status])).toEqual([['payment.approved', `payment:${payment.paymentKey}`, 1, 'PENDING']]);
        expect((await store.ledger(order.orderId)).map((tx) => [tx.kind, tx.entries.map((e) => `${e.direction} ${e.account} ${e.amount} ${e.unit}`)])).toEqual([
          ['PAYMENT_APPROVED', ['DEBIT CUSTOMER_PAYMENTS 1000 KRW', 'CREDIT MERCHANT_BALANCE 1000 KRW']],
        ]);
        await consistent(store);
      });

      it('confirm refuses, changing nothing: other order, other amount, decided already, order not PENDING', async () => {
        const store = await make(ROOMY);
        const order = anOrder();
        await store.createOrder(order);
        const a = aPayment(order);
        const b = aPayment(order);
        await store.createPayment(a);
        await store.createPayment(b);
        expect((await store.confirmPayment({ paymentKey: a.paymentKey, orderId: 'ord_other', amount: 1000, decision: APPROVE }, stamp())).kind).toBe('order_mismatch');
        expect((await store.confirmPayment({ paymentKey: a.paymentKey, orderId: order.orderId, amount: 999, decision: APPROVE }, stamp())).kind).toBe('amount_mismatch');
        expect((await store.confirmPayment({ paymentKey: 'pk_x', orderId: order.orderId, amount: 1000, decision: APPROVE }, stamp())).kind).toBe('not_found');
        expect(await store.pendingOutbox(10)).toEqual([]);
        const failed = await store.confirmPayment({ paymentKey: a.paymentKey, orderId: order.orderId, amount: 1000, decision: { status: 'FAILED', failureCode: 'DECLINE_2', decidedBy: 'card' } }, stamp());
        expect(failed).toMatchObject({ kind: 'failed', payment: { status: 'FAILED', failureCode: 'DECLINE_2' }, order: { status: 'PENDING' } });
        expect((await store.confirmPayment({ paymentKey: a.paymentKey, orderId: order.orderId, amount: 1000, decision: APPROVE }, stamp())).kind).toBe('already_processed');
        expect((await store.confirmPayment({ paymentKey: b.paymentKey, orderId: order.orderId, amount: 1000, decision: APPROVE }, stamp())).kind).toBe('approved');
        const c = aPayment(order);
        expect((await store.createPayment(c)).kind).toBe('order_state');
        expect((await store.pendingOutbox(10)).map((e) => e.eventType)).toEqual(['payment.failed', 'payment.approved']);
        await consistent(store);
      });

      it('of 200 concurrent confirms of one order’s payments exactly one approves', async () => {
        const store = await make(ROOMY);
        const order = anOrder();
        await store.createOrder(order);
        const payments = Array.from({ length: 200 }, () => aPayment(order));
        for (const p of payments) await store.createPayment(p);
        const results = await concurrently(200, (i) => store.confirmPayment({ paymentKey: (payments[i] as Payment).paymentKey, orderId: order.orderId, amount: 1000, decision: APPROVE }, stamp()));
        expect(tally(results)).toEqual({ approved: 1, order_state: 199 });
        expect(reconcile(await store.snapshot()).duplicateCharges).toBe(0);
      });

      it('cancel: PENDING → CANCELLED; PAID → CANCELLED with its payment refunded; never twice', async () => {
        const store = await make(ROOMY);
        const order = anOrder();
        await store.createOrder(order);
        expect(await store.cancelOrder(order.orderId, 'r', stamp())).toMatchObject({ kind: 'cancelled', order: { status: 'CANCELLED', cancelReason: 'r' }, payment: null });
        expect((await store.cancelOrder(order.orderId, null, stamp())).kind).toBe('order_state');
        const { order: p } = await paid(store);
        expect(await store.cancelOrder(p.orderId, null, stamp())).toMatchObject({ kind: 'cancelled', payment: { status: 'CANCELLED' } });
        expect((await store.cancelOrder('ord_x', null, stamp())).kind).toBe('not_found');
        expect((await store.pendingOutbox(10)).map((e) => e.eventType)).toEqual(['order.cancelled', 'payment.approved', 'order.cancelled']);
        await consistent(store);
      });

      it('counts orders by status through every change, the cancelled ones split by whether they had been paid', async () => {
        const store = await make(ROOMY);
        expect(await store.orderCounts()).toEqual(NO_ORDERS);
        const [pending, unpaid] = [anOrder(), anOrder()];
        for (const o of [pending, unpaid]) await store.createOrder(o);
        const { order: p } = await paid(store);
        const { order: charge } = await paid(store, { metadata: { kind: 'CREDIT_CHARGE', credits: 5 } });
        expect(await store.orderCounts()).toEqual({ ...NO_ORDERS, PENDING: 2, PAID: 2 });
        await store.cancelOrder(unpaid.orderId, null, stamp());
        await store.cancelOrder(p.orderId, null, stamp());
        await store.chargeCredits('user_1', charge.orderId, stamp());
        const after = { ...NO_ORDERS, PENDING: 1, COMPLETED: 1, CANCELLED: 2, cancelledAfterPayment: 1 };
        expect(await store.orderCounts()).toEqual(after);
        // Refused changes count nothing.
        expect((await store.cancelOrder(p.orderId, null, stamp())).kind).toBe('order_state');
        expect((await store.chargeCredits('user_1', charge.orderId, stamp())).kind).toBe('already_charged');
        expect(await store.orderCounts()).toEqual(after);
      });

      it('complete: a PAID order of no saga that buys no credits → COMPLETED, its payment CONFIRMED, with order.completed; once', async () => {
        const store = await make(ROOMY);
        const { order, payment } = await paid(store);
        const s = stamp(T0 + 5);
        const done = await store.completeOrder(order.orderId, s);
        expect(done).toEqual({ kind: 'completed', order: { ...order, status: 'COMPLETED', completedAt: T0 + 5, updatedAt: T0 + 5 } });
        expect(await store.getPayment(payment.paymentKey)).toMatchObject({ status: 'CONFIRMED', confirmedAt: T0 + 5 });
        expect((await store.completeOrder(order.orderId, stamp())).kind).toBe('order_state');
        expect((await store.completeOrder('ord_x', stamp())).kind).toBe('not_found');
        const pending = anOrder();
        await store.createOrder(pending);
        expect((await store.completeOrder(pending.orderId, stamp())).kind).toBe('order_state');
        const { order: credit } = await paid(store, { metadata: { kind: 'CREDIT_CHARGE' } });
        expect((await store.completeOrder(credit.orderId, stamp())).kind).toBe('order_state');
        const events = await store.pendingOutbox(10);
        expect(events.map((e) => e.eventType)).toEqual(['payment.approved', 'order.completed', 'payment.approved']);
        expect(events[1]).toMatchObject({ eventId: s.eventIds[0], aggregate: `order:${order.orderId}` });
        await consistent(store);
      });

      it('lists orders newest first, by user and status, with cursors', async () => {
        const store = await make(ROOMY);
        const a = anOrder();
        const b = anOrder({ userId: 'user_2' });
        const c = anOrder();
        for (const o of [a, b, c]) await store.createOrder(o);
        expect(await store.listOrders({ limit: 10 })).toEqual({ data: [c, b, a], nextCursor: null });
        expect(await store.listOrders({ limit: 1, userId: 'user_1' })).toEqual({ data: [c], nextCursor: c.orderId });
        expect(await store.listOrders({ limit: 1, userId: 'user_1', cursor: c.orderId })).toEqual({ data: [a], nextCursor: null });
        expect(await store.listOrders({ limit: 10, status: 'PAID' })).toEqual({ data: [], nextCursor: null });
        expect(await store.listOrders({ limit: 10, userId: 'nobody' })).toEqual({ data: [], nextCursor: null });
      });
    });

    describe('credits', () => {
      it('charge adds a CREDIT_CHARGE order’s credits once and completes it', async () => {
        const store = await make(ROOMY);
        const { order } = await paid(store, { metadata: { kind: 'CREDIT_CHARGE', credits: 50 } });
        const charged = await store.chargeCredits('user_1', order.orderId, stamp());
        expect(charged).toMatchObject({ kind: 'charged', balance: 50, order: { status: 'COMPLETED', chargedCredits: 50 }, transaction: { type: 'CHARGE', amount: 50, balanceAfter: 50 } });
        expect((await store.chargeCredits('user_1', order.orderId, stamp())).kind).toBe('already_charged');
        expect((await store.chargeCredits('user_2', order.orderId, stamp())).kind).toBe('not_found');
        const plain = await paid(store);
        expect((await store.chargeCredits('user_1', plain.order.orderId, stamp())).kind).toBe('not_charge_order');
        const unpaid = anOrder({ metadata: { kind: 'CREDIT_CHARGE' } });
        await store.createOrder(unpaid);
        expect((await store.chargeCredits('user_1', unpaid.orderId, stamp())).kind).toBe('order_state');
        expect(await store.balance('user_1')).toBe(50);
        await consistent(store);
      });

      it('use never goes below zero and deducts once per usageId; refund restores once', async () => {
        const store = await make(ROOMY);
        await credited(store, 'user_1', 30);
        const use = (usageId: string, amount: number) => store.useCredits({ userId: 'user_1', serviceId: 's', usageId, amount, creditUsageId: ids('cu') }, stamp());
        expect(await use('u1', 31)).toEqual({ kind: 'insufficient', balance: 30, needed: 31 });
        expect(await use('u1', 30)).toMatchObject({ kind: 'deducted', balance: 0, usage: { status: 'DEDUCTED', amount: 30 } });
        expect((await use('u1', 1)).kind).toBe('duplicate');
        expect(await store.refundCredits('user_1', 'u1', stamp())).toMatchObject({ kind: 'refunded', balance: 30, usage: { status: 'REFUNDED' } });
        expect((await store.refundCredits('user_1', 'u1', stamp())).kind).toBe('already_refunded');
        expect((await store.refundCredits('user_1', 'nope', stamp())).kind).toBe('not_found');
        const txs = await store.transactions('user_1', { limit: 10 });
        expect(txs.data.map((t) => [t.type, t.amount, t.balanceAfter])).toEqual([
          ['REFUND', 30, 30],
          ['USE', 30, 0],
          ['CHARGE', 30, 30],
        ]);
        await consistent(store);
      });

      it('creditsUsed: the credits deducted minus refunded by the transactions since a time, as a walk of them sums', async () => {
        const store = await make(ROOMY);
        await credited(store, 'user_1', 100);
        await credited(store, 'user_2', 100);
        await deducted(store, 'user_1', 'u1', 10, T0 + 1000);
        await deducted(store, 'user_2', 'u1', 7, T0 + 1500);
        await deducted(store, 'user_1', 'u2', 5, T0 + 2000);
        expect((await store.refundCredits('user_1', 'u1', stamp(T0 + 3000))).kind).toBe('refunded');
        await deducted(store, 'user_1', 'u3', 3, T0 + 3000);
        const times = [T0 - 1, T0, T0 + 1000, T0 + 1001, T0 + 2000, T0 + 2001, T0 + 3000, T0 + 3001];
        const usedAt = (userId: string) => Promise.all(times.map((t) => usedSince(store, userId, t)));
        // A refund of a use from before `since` counts against it: the net use can be negative.
        expect(await usedAt('user_1')).toEqual([8, 8, 8, -2, -2, -7, -7, 0]);
        expect(await usedAt('user_2')).toEqual([7, 7, 7, 7, 0, 0, 0, 0]);
        for (const userId of ['user_1', 'user_2']) expect(await usedAt(userId)).toEqual(await Promise.all(times.map((t) => walkedUsedSince(store, userId, t))));
        // The total: of all time, whatever `since`.
        expect([await store.creditsUsed('user_1', T0 + 3001), await store.creditsUsed('user_3', T0)]).toEqual([
          { total: 8, since: 0 },
          { total: 0, since: 0 },
        ]);
      });

      it('creditsUsed goes by the order transactions were written: one stamped earlier than the last (a clock stepped back) counts as of the last', async () => {
        const store = await make(ROOMY);
        await credited(store, 'user_1', 100);
        for (const [usageId, amount, at] of [['u1', 1, T0 + 100], ['u2', 5, T0 + 90], ['u3', 7, T0 + 95]] as const) await deducted(store, 'user_1', usageId, amount, at);
        const times = [T0 + 1, T0 + 91, T0 + 96, T0 + 100, T0 + 101];
        expect(await Promise.all(times.map((t) => usedSince(store, 'user_1', t)))).toEqual([13, 13, 13, 13, 0]);
      });

      it('creditsUsed agrees with a walk of the transactions held through 300 seeded uses, refunds, charges, evictions at the bound and sweeps', async () => {
        const store = await make({ ttlMs: 20_000, maxRecords: 12 });
        const random = createRandom(2026);
        const pick = <T>(items: readonly T[]): T => items[Math.floor(random.next() * items.length)] as T;
        const users = ['user_1', 'user_2', 'user_3'];
        let now = T0;
        for (const userId of users) await credited(store, userId, 1_000, now);
        const kinds = new Set<string>();
        for (let i = 0; i < 300; i++) {
          now += Math.floor(random.next() * 1_500);
          const [r, userId, usageId] = [random.next(), pick(users), `u${Math.floor(random.next() * 40)}`];
          if (r < 0.6) kinds.add((await store.useCredits({ userId, serviceId: 's', usageId, amount: 1 + Math.floor(random.next() * 5), creditUsageId: ids('cu') }, stamp(now))).kind);
          else if (r < 0.85) kinds.add((await store.refundCredits(userId, usageId, stamp(now))).kind);
          else if (r < 0.92) await credited(store, userId, 20, now);
          else kinds.add(`swept ${Math.sign(await store.sweep(now))}`);
          for (const since of [now - Math.floor(random.next() * 30_000), now - Math.floor(random.next() * 3_000), now, now + 1]) {
            expect(await usedSince(store, userId, since), `operation ${i}, since now − ${now - since}`).toBe(await walkedUsedSince(store, userId, since));
          }
        }
        // The run went through what it is meant to compare (and the bound held: at most 12 transactions).
        expect([...kinds]).toEqual(expect.arrayContaining(['deducted', 'duplicate', 'not_found', 'refunded', 'swept 1']));
        const held = await Promise.all(users.map(async (u) => (await store.transactions(u, { limit: 100 })).data.length));
        expect(held.reduce((a, b) => a + b)).toBeLessThanOrEqual(12);
        await consistent(store);
      });

      it('200 concurrent uses of one balance: never below zero; 200 with one usageId: once', async () => {
        const store = await make(ROOMY);
        await credited(store, 'user_1', 95);
        const many = await concurrently(200, (i) => store.useCredits({ userId: 'user_1', serviceId: 's', usageId: `u${i}`, amount: 10, creditUsageId: ids('cu') }, stamp()));
        expect(tally(many)).toEqual({ deducted: 9, insufficient: 191 });
        expect(await store.balance('user_1')).toBe(5);
        await credited(store, 'user_2', 100);
        const one = await concurrently(200, () => store.useCredits({ userId: 'user_2', serviceId: 's', usageId: 'same', amount: 10, creditUsageId: ids('cu') }, stamp()));
        expect(tally(one)).toEqual({ deducted: 1, duplicate: 199 });
        expect(await store.balance('user_2')).toBe(90);
        await consistent(store);
      });
    });

    describe('what the console lists', () => {
      it('credit balances: the first users by id with their running totals, and how many users have one', async () => {
        const store = await make(ROOMY);
        expect(await store.creditBalances(10)).toEqual({ total: 0, users: [] });
        await credited(store, 'user_b', 100);
        await credited(store, 'user_a', 50);
        await credited(store, 'user_c', 7);
        expect((await store.useCredits({ userId: 'user_b', serviceId: 's', usageId: 'u-1', amount: 30, creditUsageId: ids('cu') }, stamp())).kind).toBe('deducted');
        expect((await store.refundCredits('user_b', 'u-1', stamp())).kind).toBe('refunded');
        expect((await store.useCredits({ userId: 'user_b', serviceId: 's', usageId: 'u-2', amount: 20, creditUsageId: ids('cu') }, stamp())).kind).toBe('deducted');
        expect(await store.creditBalances(2)).toEqual({
          total: 3,
          users: [
            { userId: 'user_a', balance: 50, charged: 50, used: 0, refunded: 0 },
            { userId: 'user_b', balance: 80, charged: 100, used: 50, refunded: 30 },
          ],
        });
      });

      it('recent sagas: the newest first, at most the limit, and how many are held', async () => {
        const store = await make(ROOMY);
        expect(await store.recentSagas(5)).toEqual({ total: 0, sagas: [] });
        const started: Saga[] = [];
        for (let i = 0; i < 4; i++) {
          const saga = aSaga();
          expect((await store.startSaga(saga, inbound(saga))).kind).toBe('started');
          started.push(saga);
        }
        expect(await store.recentSagas(3)).toEqual({ total: 4, sagas: started.slice(1).reverse() });
      });
    });

    describe('sagas', () => {
      it('start records the event and the saga in one step; a repeat is a duplicate, another body a conflict, the usage taken', async () => {
        const store = await make(ROOMY);
        const saga = aSaga();
        expect(await store.startSaga(saga, inbound(saga))).toEqual({ kind: 'started', saga });
        expect(await store.startSaga({ ...saga, sagaId: ids('saga') }, inbound(saga))).toEqual({ kind: 'duplicate', event: { ...inbound(saga), sagaId: saga.sagaId }, saga });
        expect((await store.startSaga(saga, inbound(saga, 'other'))).kind).toBe('conflict');
        const twin = aSaga({ usageId: saga.usageId });
        expect(await store.startSaga(twin, inbound(twin))).toEqual({ kind: 'usage_taken', saga });
        expect(await store.sagaOfUsage('user_1', saga.usageId)).toEqual(saga);
        expect(await store.inboundEvent(saga.eventId)).toEqual({ ...inbound(saga), sagaId: saga.sagaId });
      });

      it('steps run once each, in order; a failed forward step compensates; compensations in reverse order end COMPENSATED', async () => {
        const store = await make(ROOMY);
        await credited(store, 'user_1', 5);
        const { order } = await paid(store);
        const saga = aSaga({ orderId: order.orderId, credits: 10, plan: ['ORDER_RESERVED', 'CREDITS_DEDUCTED'] });
        await store.startSaga(saga, inbound(saga));
        expect((await store.runSagaStep(saga.sagaId, 'CREDITS_DEDUCTED', stamp(), ids('cu'))).kind).toBe('refused');
        expect((await store.runSagaStep(saga.sagaId, 'PAYMENT_CANCELLED', stamp(), ids('cu'))).kind).toBe('refused');
        expect(await store.runSagaStep(saga.sagaId, 'ORDER_RESERVED', stamp(), ids('cu'))).toMatchObject({ kind: 'done', saga: { status: 'RUNNING' } });
        expect((await store.runSagaStep(saga.sagaId, 'ORDER_RESERVED', stamp(), ids('cu'))).kind).toBe('already');
        expect((await store.getOrder(order.orderId))?.sagaId).toBe(saga.sagaId);
        expect(await store.runSagaStep(saga.sagaId, 'CREDITS_DEDUCTED', stamp(), ids('cu'))).toMatchObject({ kind: 'failed', reason: 'PAY_001', saga: { status: 'COMPENSATING', failureReason: 'PAY_001' } });
        expect((await store.runSagaStep(saga.sagaId, 'ORDER_CANCELLED', stamp(), ids('cu'))).kind).toBe('refused');
        for (const step of ['CREDITS_RESTORED', 'PAYMENT_CANCELLED', 'ORDER_CANCELLED'] as const) expect((await store.runSagaStep(saga.sagaId, step, stamp(), ids('cu'))).kind).toBe('done');
        const done = await store.getSaga(saga.sagaId);
        expect([done?.status, done?.steps.map((s) => `${s.step} ${s.status}`)]).toEqual([
          'COMPENSATED',
          ['ORDER_RESERVED SUCCEEDED', 'CREDITS_DEDUCTED FAILED', 'CREDITS_RESTORED SKIPPED', 'PAYMENT_CANCELLED SUCCEEDED', 'ORDER_CANCELLED SUCCEEDED'],
        ]);
        expect((await store.getOrder(order.orderId))?.status).toBe('CANCELLED');
        expect((await store.runSagaStep('saga_x', 'ORDER_RESERVED', stamp(), ids('cu'))).kind).toBe('not_found');
        await consistent(store);
      });

      it('resolve: COMPLETED completes the order in the same step; not before the steps are done; an ended saga is final', async () => {
        const store = await make(ROOMY);
        const { order, payment } = await paid(store);
        const saga = aSaga({ orderId: order.orderId, credits: null, plan: ['ORDER_RESERVED'] });
        await store.startSaga(saga, inbound(saga));
        const end = { ...inbound(saga, 'f2', 'service.usage.completed'), eventId: 'end-1' };
        expect((await store.resolveSaga(saga.sagaId, { to: 'COMPLETED' }, end, stamp())).kind).toBe('busy');
        await store.runSagaStep(saga.sagaId, 'ORDER_RESERVED', stamp(), ids('cu'));
        expect(await store.resolveSaga(saga.sagaId, { to: 'COMPLETED' }, end, stamp())).toMatchObject({ kind: 'resolved', saga: { status: 'COMPLETED' } });
        expect((await store.resolveSaga(saga.sagaId, { to: 'COMPLETED' }, end, stamp())).kind).toBe('duplicate');
        expect((await store.resolveSaga(saga.sagaId, { to: 'COMPENSATING', reason: 'timeout' }, null, stamp())).kind).toBe('final');
        expect([(await store.getOrder(order.orderId))?.status, (await store.getPayment(payment.paymentKey))?.status]).toEqual(['COMPLETED', 'CONFIRMED']);
        expect((await store.pendingOutbox(10)).map((e) => e.eventType)).toEqual(['payment.approved', 'order.completed']);
        await consistent(store);
      });

      it('resolve an ended saga: an end that agrees is final and recorded; one that contradicts it is contradicted, changes nothing and is not recorded', async () => {
        const store = await make(ROOMY);
        const event = (s: Saga, eventId: string, type: InboundEvent['type']): InboundEvent => ({ ...inbound(s, eventId, type), eventId });
        // A completed saga: a failure contradicts it, another completion agrees.
        const { order } = await paid(store);
        const completed = aSaga({ orderId: order.orderId, credits: null, plan: ['ORDER_RESERVED'] });
        await store.startSaga(completed, inbound(completed));
        await store.runSagaStep(completed.sagaId, 'ORDER_RESERVED', stamp(), ids('cu'));
        await store.resolveSaga(completed.sagaId, { to: 'COMPLETED' }, event(completed, 'c-1', 'service.usage.completed'), stamp());
        const done = await store.getSaga(completed.sagaId);
        const failure = event(completed, 'c-2', 'service.usage.failed');
        for (let i = 0; i < 2; i++) expect(await store.resolveSaga(completed.sagaId, { to: 'COMPENSATING', reason: 'service.usage.failed' }, failure, stamp())).toEqual({ kind: 'contradicted', saga: done });
        expect([await store.inboundEvent('c-2'), await store.getSaga(completed.sagaId), (await store.getOrder(order.orderId))?.status]).toEqual([undefined, done, 'COMPLETED']);
        expect(await store.resolveSaga(completed.sagaId, { to: 'COMPLETED' }, event(completed, 'c-3', 'service.usage.completed'), stamp())).toEqual({ kind: 'final', saga: done });
        expect((await store.inboundEvent('c-3'))?.sagaId).toBe(completed.sagaId);
        // A compensating saga (and then compensated): a completion contradicts it, a failure agrees.
        const compensating = aSaga();
        await store.startSaga(compensating, inbound(compensating));
        await store.resolveSaga(compensating.sagaId, { to: 'COMPENSATING', reason: 'timeout' }, null, stamp());
        const late = event(compensating, 'k-1', 'service.usage.completed');
        expect(await store.resolveSaga(compensating.sagaId, { to: 'COMPLETED' }, late, stamp())).toMatchObject({ kind: 'contradicted', saga: { status: 'COMPENSATING', failureReason: 'timeout' } });
        for (const step of ['CREDITS_RESTORED', 'PAYMENT_CANCELLED', 'ORDER_CANCELLED'] as const) await store.runSagaStep(compensating.sagaId, step, stamp(), ids('cu'));
        expect(await store.resolveSaga(compensating.sagaId, { to: 'COMPLETED' }, late, stamp())).toMatchObject({ kind: 'contradicted', saga: { status: 'COMPENSATED', failureReason: 'timeout' } });
        expect(await store.inboundEvent('k-1')).toBeUndefined();
        expect(await store.resolveSaga(compensating.sagaId, { to: 'COMPENSATING', reason: 'service.usage.failed' }, event(compensating, 'k-2', 'service.usage.failed'), stamp())).toMatchObject({
          kind: 'final',
          saga: { status: 'COMPENSATED', failureReason: 'timeout' },
        });
        await consistent(store);
      });
    });

    describe('outbox', () => {
      it('pending in write order; marked published once; listed newest first with cursors; stats', async () => {
        const store = await make(ROOMY);
        await credited(store, 'user_1', 10);
        const pending = await store.pendingOutbox(10);
        expect(pending.map((e) => e.sequence)).toEqual([1, 2, 3]);
        expect(await store.outboxStats()).toEqual({ pending: 3, oldestPendingAt: T0, published: 0 });
        expect(await store.markPublished([(pending[1] as { eventId: string }).eventId], T0 + 5)).toBe(1);
        expect(await store.markPublished([(pending[1] as { eventId: string }).eventId], T0 + 6)).toBe(0);
        expect((await store.pendingOutbox(10)).map((e) => e.sequence)).toEqual([1, 3]);
        expect((await store.listOutbox({ limit: 10, status: 'PUBLISHED' })).data.map((e) => [e.sequence, e.publishedAt])).toEqual([[2, T0 + 5]]);
        const first = await store.listOutbox({ limit: 2 });
        expect([first.data.map((e) => e.sequence), first.nextCursor]).toEqual([[3, 2], (first.data[1] as { eventId: string }).eventId]);
        expect((await store.listOutbox({ limit: 2, cursor: first.nextCursor as string })).data.map((e) => e.sequence)).toEqual([1]);
      });

      it("an order's events by its index: exactly those about it, in write order, as listed; the newest `limit` and how many", async () => {
        const store = await make(ROOMY);
        const a = await paid(store);
        const b = await paid(store);
        await credited(store, 'user_1', 10);
        const c = (await store.listOutbox({ limit: 1 })).data[0]?.payload;
        const charged = c?.kind === 'order' ? c.order.orderId : '';
        await deducted(store, 'user_1', 'u1', 3);
        expect((await store.cancelOrder(a.order.orderId, 'changed mind', stamp())).kind).toBe('cancelled');
        await store.markPublished([(await store.pendingOutbox(1))[0]?.eventId ?? ''], T0 + 5);
        const all = (await store.listOutbox({ limit: 100 })).data.reverse();
        const about = (orderId: string): OutboxEvent[] => all.filter((e) => outboxOrderIds(e.payload).includes(orderId));
        const types = async (orderId: string, limit = 200): Promise<[string[], number]> => {
          const { events, total } = await store.orderOutbox(orderId, limit);
          return [events.map((e) => e.eventType), total];
        };
        expect(await types(a.order.orderId)).toEqual([['payment.approved', 'order.cancelled'], 2]);
        expect(await types(b.order.orderId)).toEqual([['payment.approved'], 1]);
        expect(await types(charged)).toEqual([['payment.approved', 'credit.charged', 'order.completed'], 3]);
        // Whole events, as the listing gives them (the first one published since).
        for (const orderId of [a.order.orderId, b.order.orderId, charged]) expect(await store.orderOutbox(orderId, 200)).toEqual({ events: about(orderId), total: about(orderId).length });
        expect((await store.orderOutbox(a.order.orderId, 200)).events[0]).toMatchObject({ status: 'PUBLISHED', publishedAt: T0 + 5 });
        // credit.deducted is about no order.
        expect(all.map((e) => e.eventType).filter((t) => t === 'credit.deducted')).toHaveLength(1);
        expect(all.filter((e) => outboxOrderIds(e.payload).length === 0).map((e) => e.eventType)).toEqual(['credit.deducted']);
        expect(await types(charged, 2)).toEqual([['credit.charged', 'order.completed'], 3]);
        expect(await types(charged, 0)).toEqual([[], 3]);
        expect(await store.orderOutbox('ord_unknown', 200)).toEqual({ events: [], total: 0 });
      });
    });

    describe('bounds', () => {
      it('holds balances of at most maxCreditUsers users: a first charge for one more changes nothing; those who have one are charged on', async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 100, maxCreditUsers: 2 });
        expect(await store.creditUserStats()).toEqual({ size: 0, max: 2 });
        await credited(store, 'user_1', 10);
        await credited(store, 'user_2', 5);
        const { order } = await paid(store, { userId: 'user_3', metadata: { kind: 'CREDIT_CHARGE', credits: 7 } });
        const outboxBefore = await store.outboxStats();
        expect(await store.chargeCredits('user_3', order.orderId, stamp())).toEqual({ kind: 'users_full', order, max: 2 });
        expect(await store.chargeCredits('user_3', order.orderId, stamp())).toEqual({ kind: 'users_full', order, max: 2 });
        expect(await store.getOrder(order.orderId)).toEqual(order);
        expect(await store.balance('user_3')).toBe(0);
        expect((await store.transactions('user_3', { limit: 10 })).data).toEqual([]);
        expect(await store.outboxStats()).toEqual(outboxBefore);
        expect(await store.creditUserStats()).toEqual({ size: 2, max: 2 });
        // A user who has a balance takes no room, even one spent to 0.
        await store.useCredits({ userId: 'user_2', serviceId: 's', usageId: 'all', amount: 5, creditUsageId: ids('cu') }, stamp());
        expect(await store.balance('user_2')).toBe(0);
        await credited(store, 'user_2', 3);
        expect(await store.balance('user_2')).toBe(3);
        expect((await store.creditBalances(10)).total).toBe(2);
        await consistent(store);
      });

      it('the outbox keeps at most the bound of events: the oldest published go; pending ones never do', async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 4 });
        await credited(store, 'user_1', 10);
        await store.markPublished((await store.pendingOutbox(10)).map((e) => e.eventId), T0);
        for (const usageId of ['u1', 'u2']) {
          await store.useCredits({ userId: 'user_1', serviceId: 's', usageId, amount: 1, creditUsageId: ids('cu') }, stamp());
          await store.refundCredits('user_1', usageId, stamp());
        }
        const all = (await store.listOutbox({ limit: 100 })).data;
        expect(all.map((e) => [e.sequence, e.status])).toEqual([
          [7, 'PENDING'],
          [6, 'PENDING'],
          [5, 'PENDING'],
          [4, 'PENDING'],
        ]);
        expect((await store.outboxStats()).pending).toBe(4);
        await consistent(store);
      });

      it('events written while the relay is behind (all pending) may pass the bound; once published, the oldest go, down to it (2026-12-07, a user test: on Redis the excess stayed for the TTL)', async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 4 });
        await credited(store, 'user_1', 10);
        for (const usageId of ['u1', 'u2']) {
          await store.useCredits({ userId: 'user_1', serviceId: 's', usageId, amount: 1, creditUsageId: ids('cu') }, stamp());
          await store.refundCredits('user_1', usageId, stamp());
        }
        expect((await store.outboxStats()).pending).toBe(7);
        const pending = (await store.pendingOutbox(10)).map((e) => e.eventId);
        expect(await store.markPublished(pending.slice(0, 2), T0)).toBe(2);
        // Five pending and two published: the two go (the pending ones are still more than the bound).
        expect((await store.listOutbox({ limit: 100 })).data.map((e) => [e.sequence, e.status])).toEqual([7, 6, 5, 4, 3].map((sequence) => [sequence, 'PENDING']));
        expect(await store.markPublished(pending.slice(2), T0)).toBe(5);
        expect((await store.listOutbox({ limit: 100 })).data.map((e) => [e.sequence, e.status])).toEqual([7, 6, 5, 4].map((sequence) => [sequence, 'PUBLISHED']));
        expect(await store.outboxStats()).toEqual({ pending: 0, oldestPendingAt: null, published: 4 });
        await consistent(store);
      });

      it("an order's index loses its events as the outbox drops them, at the bound and by the TTL sweep; pending ones stay", async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 4 });
        await credited(store, 'user_1', 10);
        const first = await store.pendingOutbox(10);
        const charged = first[0]?.payload.kind === 'payment' ? first[0].payload.payment.orderId : '';
        await store.markPublished(first.map((e) => e.eventId), T0);
        const of = async (): Promise<[string[], number]> => {
          const { events, total } = await store.orderOutbox(charged, 200);
          return [events.map((e) => e.eventId), total];
        };
        expect(await of()).toEqual([first.map((e) => e.eventId), 3]);
        // Each event past the bound (4) drops the oldest published one, the order's here.
        const expected: Array<[string[], number]> = [
          [first.map((e) => e.eventId), 3],
          [first.slice(1).map((e) => e.eventId), 2],
          [first.slice(2).map((e) => e.eventId), 1],
          [[], 0],
        ];
        for (const [i, usageId] of ['u1', 'u2'].entries()) {
          await store.useCredits({ userId: 'user_1', serviceId: 's', usageId, amount: 1, creditUsageId: ids('cu') }, stamp());
          expect(await of()).toEqual(expected[i * 2]);
          await store.refundCredits('user_1', usageId, stamp());
          expect(await of()).toEqual(expected[i * 2 + 1]);
        }
        // By TTL: a published event goes with the sweep, a pending one stays (and stays indexed).
        const roomy = await make(ROOMY);
        const swept = await paid(roomy);
        const kept = await paid(roomy);
        const [published] = await roomy.pendingOutbox(1);
        await roomy.markPublished([published?.eventId ?? ''], T0);
        expect([(await roomy.orderOutbox(swept.order.orderId, 200)).total, (await roomy.orderOutbox(kept.order.orderId, 200)).total]).toEqual([1, 1]);
        expect(await roomy.sweep(T0 + DAY)).toBe(1);
        expect(await roomy.orderOutbox(swept.order.orderId, 200)).toEqual({ events: [], total: 0 });
        expect((await roomy.orderOutbox(kept.order.orderId, 200)).events.map((e) => [e.eventType, e.status])).toEqual([['payment.approved', 'PENDING']]);
      });

      it('a usage of a saga that has not ended never goes, at the bound or by TTL, so its compensation refunds it; once the saga ends it goes as the others do', async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 2 });
        await credited(store, 'user_1', 100);
        const saga = aSaga({ credits: 10 });
        await store.startSaga(saga, inbound(saga));
        expect((await store.runSagaStep(saga.sagaId, 'CREDITS_DEDUCTED', stamp(), ids('cu'))).kind).toBe('done');
        const use = (usageId: string): Promise<UseOutcome> => store.useCredits({ userId: 'user_1', serviceId: 's', usageId, amount: 1, creditUsageId: ids('cu') }, stamp());
        const usages = async (): Promise<string[]> => (await store.snapshot()).usages.map((u) => u.usageId).sort();
        // At the bound (2) each new usage makes room by evicting a plain one, never the saga's.
        for (const usageId of ['u1', 'u2', 'u3']) expect((await use(usageId)).kind).toBe('deducted');
        expect(await usages()).toEqual([saga.usageId, 'u3'].sort());
        // By TTL the same: the saga's usage stays while the saga has not ended.
        expect(await store.sweep(T0 + DAY)).toBeGreaterThan(0);
        expect(await usages()).toEqual([saga.usageId]);
        expect((await store.resolveSaga(saga.sagaId, { to: 'COMPENSATING', reason: 'timeout' }, null, stamp())).kind).toBe('resolved');
        expect(await store.sweep(T0 + DAY)).toBe(0);
        for (const step of ['CREDITS_RESTORED', 'PAYMENT_CANCELLED', 'ORDER_CANCELLED'] as const) expect((await store.runSagaStep(saga.sagaId, step, stamp(), ids('cu'))).kind).toBe('done');
        const ended = await store.getSaga(saga.sagaId);
        expect([ended?.status, ended?.steps.map((s) => `${s.step} ${s.status}`)]).toEqual([
          'COMPENSATED',
          ['CREDITS_DEDUCTED SUCCEEDED', 'CREDITS_RESTORED SUCCEEDED', 'PAYMENT_CANCELLED SKIPPED', 'ORDER_CANCELLED SKIPPED'],
        ]);
        expect(await store.balance('user_1')).toBe(97);
        await consistent(store);
        // Ended: its usage goes by TTL (and at the bound) like any other.
        expect(await store.sweep(T0 + DAY)).toBeGreaterThan(0);
        expect(await usages()).toEqual([]);
        // Full when only usages of running sagas are left.
        const tight = await make({ ttlMs: DAY, maxRecords: 1 });
        await credited(tight, 'user_1', 100);
        const running = aSaga({ credits: 10 });
        await tight.startSaga(running, inbound(running));
        expect((await tight.runSagaStep(running.sagaId, 'CREDITS_DEDUCTED', stamp(), ids('cu'))).kind).toBe('done');
        expect(await tight.useCredits({ userId: 'user_1', serviceId: 's', usageId: 'u9', amount: 1, creditUsageId: ids('cu') }, stamp())).toEqual({ kind: 'full' });
        expect(await tight.balance('user_1')).toBe(90);
        expect((await tight.snapshot()).usages.map((u) => u.usageId)).toEqual([running.usageId]);
      });

      it('the inbound events of a saga that has not ended never go, at the bound or by TTL, so a repeat is still a duplicate; once the saga ends they go as the others do', async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 2 });
        const [saga, other] = [aSaga(), aSaga()];
        for (const s of [saga, other]) expect((await store.startSaga(s, inbound(s))).kind).toBe('started');
        // A resolution's event at the bound is remembered (never refused), evicting no event of a saga that has not ended.
        const failed = { ...inbound(saga, 'f2', 'service.usage.failed'), eventId: 'failed-1' };
        expect((await store.resolveSaga(saga.sagaId, { to: 'COMPENSATING', reason: 'USAGE_FAILED' }, failed, stamp())).kind).toBe('resolved');
        const repeat = async (s: Saga): Promise<string> => (await store.startSaga({ ...s, sagaId: ids('saga') }, inbound(s))).kind;
        expect([await repeat(saga), await repeat(other)]).toEqual(['duplicate', 'duplicate']);
        await store.sweep(T0 + DAY);
        expect([await repeat(saga), await repeat(other)]).toEqual(['duplicate', 'duplicate']);
        expect((await store.resolveSaga(saga.sagaId, { to: 'COMPENSATING', reason: 'again' }, failed, stamp())).kind).toBe('duplicate');
        // The saga ends: its events go by TTL with it; the other saga's stays.
        for (const step of ['CREDITS_RESTORED', 'PAYMENT_CANCELLED', 'ORDER_CANCELLED'] as const) expect((await store.runSagaStep(saga.sagaId, step, stamp(), ids('cu'))).kind).toBe('done');
        expect((await store.getSaga(saga.sagaId))?.status).toBe('COMPENSATED');
        expect(await store.inboundEvent(failed.eventId)).toEqual({ ...failed, sagaId: saga.sagaId });
        expect(await store.sweep(T0 + DAY)).toBe(3);
        expect([await store.inboundEvent(saga.eventId), await store.inboundEvent(failed.eventId), await store.getSaga(saga.sagaId)]).toEqual([undefined, undefined, undefined]);
        expect(await repeat(other)).toBe('duplicate');
      });

      it('credit transactions: at most the bound, the oldest first (at the bound and by TTL); balances and totals stay; creditsUsed counts those held', async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 4 });
        await credited(store, 'user_1', 100);
        for (let i = 1; i <= 5; i++) await deducted(store, 'user_1', `u${i}`, i, T0 + i * 1000);
        const held = async () => (await store.transactions('user_1', { limit: 100 })).data.map((t) => [t.type, t.amount, t.balanceAfter]);
        // Six movements, four held: the charge and the first use went.
        expect(await held()).toEqual([
          ['USE', 5, 85],
          ['USE', 4, 90],
          ['USE', 3, 94],
          ['USE', 2, 97],
        ]);
        expect([await usedSince(store, 'user_1', T0), await usedSince(store, 'user_1', T0 + 4000)]).toEqual([14, 9]);
        // By TTL: the two created at or before T0 + 3 s.
        expect(await store.sweep(T0 + 3000 + DAY)).toBeGreaterThan(0);
        expect(await held()).toEqual([
          ['USE', 5, 85],
          ['USE', 4, 90],
        ]);
        expect([await usedSince(store, 'user_1', T0), await usedSince(store, 'user_1', T0 + 5001)]).toEqual([9, 0]);
        // The money is never evicted: the balance and the running totals.
        expect(await store.balance('user_1')).toBe(85);
        expect(await store.creditBalances(10)).toEqual({ total: 1, users: [{ userId: 'user_1', balance: 85, charged: 100, used: 15, refunded: 0 }] });
        expect(await store.creditsUsed('user_1', T0)).toEqual({ total: 15, since: 9 });
        await consistent(store);
      });

      it('payments count against the bound as orders do: past it a payment is full while open orders hold them all; an order finished and evicted (at the bound or by TTL) takes its payments along, and payments are made again', async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 10 });
        const DECLINE = { status: 'FAILED' as const, failureCode: 'DECLINE_2', decidedBy: 'card' as const };
        // Orders and payments in the snapshot, then as stats() and paymentStats() count them.
        const held = async (): Promise<[number, number, number, number]> => {
          const snapshot = await store.snapshot();
          return [snapshot.orders.length, snapshot.payments.length, (await store.stats()).size, (await store.paymentStats()).size];
        };
        // A declined payment leaves its order PENDING, payable again (a load test retrying payments).
        const open = anOrder();
        await store.createOrder(open);
        const made: Payment[] = [];
        for (let i = 0; i < 10; i++) {
          const payment = aPayment(open);
          expect((await store.createPayment(payment)).kind).toBe('created');
          expect((await store.confirmPayment({ paymentKey: payment.paymentKey, orderId: open.orderId, amount: open.amount, decision: DECLINE }, stamp())).kind).toBe('failed');
          made.push(payment);
        }
        const refused = aPayment(open);
        expect(await store.createPayment(refused)).toEqual({ kind: 'full' });
        expect(await store.getPayment(refused.paymentKey)).toBeUndefined();
        // Orders still fit (two of ten), but not their payments: only an open order holds them.
        const other = anOrder();
        expect((await store.createOrder(other)).kind).toBe('created');
        expect(await store.createPayment(aPayment(other))).toEqual({ kind: 'full' });
        expect(await held()).toEqual([2, 10, 2, 10]);
        expect(await store.stats()).toEqual({ size: 2, max: 10 });
        expect(await store.paymentStats()).toEqual({ size: 10, max: 10 });
        // Cancelled, the order holding them is finished: the next payment evicts it with its ten.
        expect((await store.cancelOrder(open.orderId, null, stamp())).kind).toBe('cancelled');
        const next = aPayment(other);
        expect(await store.createPayment(next)).toEqual({ kind: 'created', payment: next });
        expect([await store.getOrder(open.orderId), await store.getPayment(made[0]?.paymentKey ?? '')]).toEqual([undefined, undefined]);
        expect(await held()).toEqual([1, 1, 1, 1]);
        expect(await store.orderCounts()).toEqual({ ...NO_ORDERS, PENDING: 1 });
        // Nine more fit, then full again.
        for (let i = 0; i < 9; i++) expect((await store.createPayment(aPayment(other))).kind).toBe('created');
        expect(await store.createPayment(aPayment(other))).toEqual({ kind: 'full' });
        expect(await held()).toEqual([1, 10, 1, 10]);
        // By TTL: paid and completed, the order is swept with its ten payments.
        expect((await store.confirmPayment({ paymentKey: next.paymentKey, orderId: other.orderId, amount: other.amount, decision: APPROVE }, stamp())).kind).toBe('approved');
        expect((await store.completeOrder(other.orderId, stamp())).kind).toBe('completed');
        expect(await store.sweep(T0 + DAY)).toBeGreaterThan(0);
        expect(await held()).toEqual([0, 0, 0, 0]);
        const later = anOrder({ createdAt: T0 + DAY, updatedAt: T0 + DAY });
        await store.createOrder(later);
        for (let i = 0; i < 10; i++) expect((await store.createPayment(aPayment(later))).kind).toBe('created');
        expect(await store.createPayment(aPayment(later))).toEqual({ kind: 'full' });
        expect(await held()).toEqual([1, 10, 1, 10]);
        expect(await store.stats()).toEqual({ size: 1, max: 10 });
        await consistent(store);
      });

      it('finished orders go after the TTL with their payments (the ledger still reconciles); open ones never; full when only open ones are left', async () => {
        const store = await make({ ttlMs: DAY, maxRecords: 2 });
        const { order } = await paid(store);
        await store.cancelOrder(order.orderId, null, stamp());
        const open = anOrder();
        await store.createOrder(open);
        // Room is made by evicting the cancelled order.
        expect((await store.createOrder(anOrder())).kind).toBe('created');
        expect(await store.getOrder(order.orderId)).toBeUndefined();
        expect(await store.orderCounts()).toEqual({ ...NO_ORDERS, PENDING: 2 });
        expect((await store.createOrder(anOrder())).kind).toBe('full');
        expect(await store.orderCounts()).toEqual({ ...NO_ORDERS, PENDING: 2 });
        expect(await store.getOrder(open.orderId)).toBeDefined();
        await consistent(store);
        const swept = await make({ ttlMs: DAY, maxRecords: 100 });
        const p = await paid(swept, { metadata: { kind: 'CREDIT_CHARGE', credits: 5 } });
        await swept.chargeCredits('user_1', p.order.orderId, stamp());
        await swept.markPublished((await swept.pendingOutbox(10)).map((e) => e.eventId), T0);
        expect(await swept.sweep(T0 + DAY - 1)).toBe(0);
        expect(await swept.sweep(T0 + DAY)).toBeGreaterThan(0);
        expect(await swept.getOrder(p.order.orderId)).toBeUndefined();
        expect(await swept.orderCounts()).toEqual(NO_ORDERS);
        expect(await swept.balance('user_1')).toBe(5);
        expect((await swept.outboxStats()).published).toBe(0);
        await consistent(swept);
      });
    });
  });
}
