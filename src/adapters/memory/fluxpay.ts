import type { FluxPayTransaction } from '../../core/fluxpay/ledger.ts';
import {
  chargeableCredits,
  compensationsLeft,
  copyOrder,
  copyPayment,
  copySaga,
  isCreditChargeOrder,
  sagaDid,
  sagaSettled,
  type CreditTransaction,
  type CreditUsage,
  type InboundEvent,
  type Order,
  type OrderStatus,
  type OutboxEvent,
  type OutboxEventType,
  type OutboxPayload,
  type Payment,
  type Saga,
  type SagaStep,
  type SagaStepName,
  type Stamp,
} from '../../core/fluxpay/model.ts';
import type {
  CancelOrderOutcome,
  CompleteOrderOutcome,
  ChargeOutcome,
  ConfirmInput,
  ConfirmOutcome,
  CreateOutcome,
  CreditBalance,
  CreatePaymentOutcome,
  FluxPaySnapshot,
  FluxPayStore,
  OrderCounts,
  OrderQuery,
  OutboxQuery,
  RefundOutcome,
  ResolveOutcome,
  SagaResolution,
  StartSagaOutcome,
  StepOutcome,
  UseInput,
  UseOutcome,
} from '../../core/fluxpay/ports.ts';
import type { Page, PageQuery, StoreStats } from '../../core/ports.ts';
import { EvictionQueue } from './eviction-queue.ts';
import { MemoryCreditBook } from './fluxpay-credits.ts';
import { MemoryFluxPayLedger } from './fluxpay-ledger.ts';
import { MemoryFluxPayOutbox } from './fluxpay-outbox.ts';
import { byId, IdList, pageOf } from './id-list.ts';

export interface MemoryFluxPayStoreOptions {
  /** Finished records older than this (from their creation) are evicted. */
  ttlMs: number;
  /** Orders held at most; also the bound of sagas, usages, inbound events and outbox events, each. */
  maxRecords: number;
}

const usageKey = (userId: string, usageId: string): string => `${userId}\n${usageId}`;

/**
 * FluxPay's store in one process's memory. Every method runs to completion synchronously (the
 * promise it returns is already settled), so each is atomic: a change, its ledger transaction
 * and its outbox event are written together or not at all, and of any number of concurrent
 * operations on one record each sees the others' whole effect or none of it. Orders, payments,
 * usages, sagas and inbound events are kept here; the ledger (./fluxpay-ledger.ts), the credit
 * balances and transactions (./fluxpay-credits.ts) and the outbox (./fluxpay-outbox.ts) are parts
 * it writes within the same step.
 *
 * Bounds: an order joins the eviction queue when it is final (COMPLETED or CANCELLED) and no
 * running saga holds it; it leaves with its payments and its ledger transactions (their net is
 * kept per currency, so the ledger totals still reconcile). Sagas go when final, usages and
 * inbound events by TTL (or the oldest at the bound), outbox events once published (the oldest
 * published at the bound). Credit balances and their running totals are never evicted (they are
 * users' money), nor are pending outbox events: while the relay publishes, they stay few; a relay
 * that cannot publish for long lets them grow (see the outbox depth gauge). An insert of an order,
 * a usage or a saga that finds no room and nothing evictable answers `full`.
 */
export class MemoryFluxPayStore implements FluxPayStore {
  readonly #options: MemoryFluxPayStoreOptions;

  readonly #orders = new Map<string, Order>();
  readonly #allOrders = new IdList();
  readonly #ordersByUser = new Map<string, IdList>();
  readonly #payments = new Map<string, Payment>();
  readonly #paymentsByOrder = new Map<string, string[]>();
  /** Stored orders per status, kept as they change (#setOrderStatus). */
  readonly #orderCounts: OrderCounts = { PENDING: 0, PAID: 0, COMPLETED: 0, CANCELLED: 0, cancelledAfterPayment: 0 };

  readonly #ledger = new MemoryFluxPayLedger();
  readonly #credits = new MemoryCreditBook(this.#ledger);
  readonly #usages = new Map<string, CreditUsage>();

  readonly #sagas = new Map<string, Saga>();
  readonly #sagaByUsage = new Map<string, string>();
  readonly #inbound = new Map<string, InboundEvent>();

  readonly #outbox: MemoryFluxPayOutbox;

  readonly #finishedOrders = new EvictionQueue(
    (id: string) => this.#orders.get(id),
    (order: Order) => order.createdAt,
    (order: Order) => this.#removeOrder(order),
  );
  readonly #finishedSagas = new EvictionQueue(
    (id: string) => this.#sagas.get(id),
    (saga: Saga) => saga.createdAt,
    (saga: Saga) => this.#removeSaga(saga),
  );
  readonly #usageQueue = new EvictionQueue(
    (key: string) => this.#usages.get(key),
    (usage: CreditUsage) => usage.createdAt,
    (usage: CreditUsage) => {
      this.#usages.delete(usageKey(usage.userId, usage.usageId));
      this.#ledger.forget(usage.creditUsageId);
    },
  );
  readonly #inboundQueue = new EvictionQueue(
    (id: string) => this.#inbound.get(id),
    (event: InboundEvent) => event.receivedAt,
    (event: InboundEvent) => this.#inbound.delete(event.eventId),
  );
  readonly #isLiveOrder = (id: string): boolean => this.#orders.has(id);

  constructor(options: MemoryFluxPayStoreOptions) {
    this.#options = options;
    this.#outbox = new MemoryFluxPayOutbox(options.maxRecords);
  }

  // ── orders and payments ──────────────────────────────────────────────────────────────────

  createOrder(order: Order): Promise<CreateOutcome<Order>> {
    this.#sweepBefore(order.createdAt);
    if (!this.#room(this.#orders.size, this.#finishedOrders)) return ok({ kind: 'full' });
    const stored = copyOrder(order);
    this.#orders.set(stored.orderId, stored);
    this.#countOrder(stored, 1);
    this.#allOrders.insert(stored.orderId);
    let mine = this.#ordersByUser.get(stored.userId);
    if (mine === undefined) this.#ordersByUser.set(stored.userId, (mine = new IdList()));
    mine.insert(stored.orderId);
    return ok({ kind: 'created', record: copyOrder(stored) });
  }

  getOrder(orderId: string): Promise<Order | undefined> {
    const order = this.#orders.get(orderId);
    return ok(order === undefined ? undefined : copyOrder(order));
  }

  listOrders(query: OrderQuery): Promise<Page<Order>> {
    const list = query.userId === undefined ? this.#allOrders : this.#ordersByUser.get(query.userId);
    if (list === undefined) return ok({ data: [], nextCursor: null });
    const { status } = query;
    return ok(
      pageOf(
        list,
        query,
        (id) => {
          const order = this.#orders.get(id);
          return order === undefined ? undefined : { id, order };
        },
        ({ order }) => copyOrder(order),
        status === undefined ? undefined : ({ order }) => order.status === status,
      ),
    );
  }

  orderCounts(): Promise<OrderCounts> {
    return ok({ ...this.#orderCounts });
  }

  cancelOrder(orderId: string, reason: string | null, stamp: Stamp): Promise<CancelOrderOutcome> {
    const order = this.#orders.get(orderId);
    if (order === undefined) return ok({ kind: 'not_found' });
    if (order.status !== 'PENDING' && order.status !== 'PAID') return ok({ kind: 'order_state', order: copyOrder(order) });
    if (order.sagaId !== null) return ok({ kind: 'in_use', order: copyOrder(order) });
    const payment = this.#cancelOrder(order, reason, stamp, 0);
    return ok({ kind: 'cancelled', order: copyOrder(order), payment: payment === null ? null : copyPayment(payment) });
  }

  createPayment(payment: Payment): Promise<CreatePaymentOutcome> {
    const order = this.#orders.get(payment.orderId);
    if (order === undefined) return ok({ kind: 'order_not_found' });
    if (order.status !== 'PENDING') return ok({ kind: 'order_state', order: copyOrder(order) });
    const stored = copyPayment(payment);
    this.#payments.set(stored.paymentKey, stored);
    const keys = this.#paymentsByOrder.get(stored.orderId);
    if (keys === undefined) this.#paymentsByOrder.set(stored.orderId, [stored.paymentKey]);
    else keys.push(stored.paymentKey);
    return ok({ kind: 'created', payment: copyPayment(stored) });
  }

  getPayment(paymentKey: string): Promise<Payment | undefined> {
    const payment = this.#payments.get(paymentKey);
    return ok(payment === undefined ? undefined : copyPayment(payment));
  }

  confirmPayment(input: ConfirmInput, stamp: Stamp): Promise<ConfirmOutcome> {
    const payment = this.#payments.get(input.paymentKey);
    if (payment === undefined) return ok({ kind: 'not_found' });
    if (payment.orderId !== input.orderId) return ok({ kind: 'order_mismatch', payment: copyPayment(payment) });
    const order = this.#orders.get(payment.orderId);
    // A payment lives exactly as long as its order.
    if (order === undefined) return ok({ kind: 'not_found' });
    if (input.amount !== order.amount) return ok({ kind: 'amount_mismatch', payment: copyPayment(payment), order: copyOrder(order) });
    if (payment.status !== 'READY') return ok({ kind: 'already_processed', payment: copyPayment(payment) });
    if (order.status !== 'PENDING') return ok({ kind: 'order_state', payment: copyPayment(payment), order: copyOrder(order) });
    const { now } = stamp;
    const { decision } = input;
    payment.decidedBy = decision.decidedBy;
    payment.updatedAt = now;
    if (decision.status === 'FAILED') {
      payment.status = 'FAILED';
      payment.failureCode = decision.failureCode;
      payment.failedAt = now;
      this.#emit(stamp, 0, 'payment.failed', `payment:${payment.paymentKey}`, { kind: 'payment', payment: copyPayment(payment) });
      return ok({ kind: 'failed', payment: copyPayment(payment), order: copyOrder(order) });
    }
    payment.status = 'APPROVED';
    payment.approvedAt = now;
    this.#setOrderStatus(order, 'PAID');
    order.paymentKey = payment.paymentKey;
    order.paidAt = now;
    order.updatedAt = now;
    this.#ledger.post('PAYMENT_APPROVED', stamp.transactionId, order.orderId, order.amount, order.currency, now);
    this.#emit(stamp, 0, 'payment.approved', `payment:${payment.paymentKey}`, { kind: 'payment', payment: copyPayment(payment) });
    return ok({ kind: 'approved', payment: copyPayment(payment), order: copyOrder(order) });
  }

  completeOrder(orderId: string, stamp: Stamp): Promise<CompleteOrderOutcome> {
    const order = this.#orders.get(orderId);
    if (order === undefined) return ok({ kind: 'not_found' });
    if (order.status !== 'PAID' || order.sagaId !== null || isCreditChargeOrder(order)) return ok({ kind: 'order_state', order: copyOrder(order) });
    const payment = this.#completeOrder(order, stamp.now);
    this.#emit(stamp, 0, 'order.completed', `order:${orderId}`, { kind: 'order', order: copyOrder(order), payment: payment === null ? null : copyPayment(payment) });
    return ok({ kind: 'completed', order: copyOrder(order) });
  }

  // ── credits ──────────────────────────────────────────────────────────────────────────────

  balance(userId: string): Promise<number> {
    return ok(this.#credits.balance(userId));
  }

  chargeCredits(userId: string, orderId: string, stamp: Stamp): Promise<ChargeOutcome> {
    const order = this.#orders.get(orderId);
    if (order?.userId !== userId) return ok({ kind: 'not_found' });
    if (!isCreditChargeOrder(order)) return ok({ kind: 'not_charge_order', order: copyOrder(order) });
    if (order.chargedCredits !== null) return ok({ kind: 'already_charged', order: copyOrder(order) });
    if (order.status !== 'PAID' || order.sagaId !== null) return ok({ kind: 'order_state', order: copyOrder(order) });
    const { now } = stamp;
    const credits = chargeableCredits(order);
    const transaction = this.#credits.move('CHARGE', userId, credits, stamp, { orderId, usageId: null, serviceId: order.serviceId });
    order.chargedCredits = credits;
    const payment = this.#completeOrder(order, now);
    this.#emit(stamp, 0, 'credit.charged', `credit:${userId}`, { kind: 'credit', transaction: { ...transaction }, usage: null });
    this.#emit(stamp, 1, 'order.completed', `order:${orderId}`, { kind: 'order', order: copyOrder(order), payment: payment === null ? null : copyPayment(payment) });
    return ok({ kind: 'charged', order: copyOrder(order), transaction: { ...transaction }, balance: transaction.balanceAfter });
  }

  useCredits(input: UseInput, stamp: Stamp): Promise<UseOutcome> {
    const key = usageKey(input.userId, input.usageId);
    const existing = this.#usages.get(key);
    if (existing !== undefined) return ok({ kind: 'duplicate', usage: { ...existing } });
    const balance = this.#credits.balance(input.userId);
    if (balance < input.amount) return ok({ kind: 'insufficient', balance, needed: input.amount });
    this.#sweepBefore(stamp.now);
    if (!this.#room(this.#usages.size, this.#usageQueue)) return ok({ kind: 'full' });
    const { usage, transaction } = this.#deduct(input, null, stamp);
    return ok({ kind: 'deducted', usage: { ...usage }, transaction: { ...transaction }, balance: transaction.balanceAfter });
  }

  refundCredits(userId: string, usageId: string, stamp: Stamp): Promise<RefundOutcome> {
    const usage = this.#usages.get(usageKey(userId, usageId));
    if (usage === undefined) return ok({ kind: 'not_found' });
    if (usage.status === 'REFUNDED') return ok({ kind: 'already_refunded', usage: { ...usage } });
    const transaction = this.#refund(usage, stamp, 0);
    return ok({ kind: 'refunded', usage: { ...usage }, transaction: { ...transaction }, balance: transaction.balanceAfter });
  }

  transactions(userId: string, page: PageQuery): Promise<Page<CreditTransaction>> {
    return ok(this.#credits.transactions(userId, page));
  }

  // ── sagas ────────────────────────────────────────────────────────────────────────────────

  startSaga(saga: Saga, event: InboundEvent): Promise<StartSagaOutcome> {
    const seen = this.#seen(event);
    if (seen !== undefined) return ok(seen);
    const taken = this.#sagaByUsage.get(usageKey(saga.userId, saga.usageId));
    const other = taken === undefined ? undefined : this.#sagas.get(taken);
    if (other !== undefined) return ok({ kind: 'usage_taken', saga: copySaga(other) });
    this.#sweepBefore(saga.createdAt);
    if (!this.#room(this.#sagas.size, this.#finishedSagas) || !this.#room(this.#inbound.size, this.#inboundQueue)) return ok({ kind: 'full' });
    const stored = copySaga(saga);
    this.#sagas.set(stored.sagaId, stored);
    this.#sagaByUsage.set(usageKey(stored.userId, stored.usageId), stored.sagaId);
    this.#record({ ...event, sagaId: stored.sagaId });
    return ok({ kind: 'started', saga: copySaga(stored) });
  }

  creditBalances(limit: number): Promise<{ total: number; users: CreditBalance[] }> {
    return ok(this.#credits.balances(limit));
  }

  recentSagas(limit: number): Promise<{ total: number; sagas: Saga[] }> {
    const newest = [...this.#sagas.values()].sort((a, b) => b.createdAt - a.createdAt || byId(b.sagaId, a.sagaId)).slice(0, limit);
    return ok({ total: this.#sagas.size, sagas: newest.map(copySaga) });
  }

  getSaga(sagaId: string): Promise<Saga | undefined> {
    const saga = this.#sagas.get(sagaId);
    return ok(saga === undefined ? undefined : copySaga(saga));
  }

  sagaOfUsage(userId: string, usageId: string): Promise<Saga | undefined> {
    const id = this.#sagaByUsage.get(usageKey(userId, usageId));
    const saga = id === undefined ? undefined : this.#sagas.get(id);
    return ok(saga === undefined ? undefined : copySaga(saga));
  }

  runSagaStep(sagaId: string, step: SagaStepName, stamp: Stamp, creditUsageId: string): Promise<StepOutcome> {
    const saga = this.#sagas.get(sagaId);
    if (saga === undefined) return ok({ kind: 'not_found' });
    if (sagaSettled(saga, step)) return ok({ kind: 'already', saga: copySaga(saga) });
    const { now } = stamp;
    const record = (status: SagaStep['status'], reason: string | null, kind: SagaStep['kind']): void => {
      saga.steps.push({ step, kind, status, at: now, reason });
      saga.updatedAt = now;
    };

    if (step === 'ORDER_RESERVED' || step === 'CREDITS_DEDUCTED') {
      const index = saga.plan.indexOf(step);
      if (saga.status !== 'RUNNING' || index < 0 || saga.plan.slice(0, index).some((s) => !sagaDid(saga, s))) return ok({ kind: 'refused', saga: copySaga(saga) });
      const reason = step === 'ORDER_RESERVED' ? this.#reserveOrder(saga) : this.#deductForSaga(saga, stamp, creditUsageId);
      if (reason !== null) {
        record('FAILED', reason, 'ACTION');
        saga.status = 'COMPENSATING';
        saga.failureReason = reason;
        return ok({ kind: 'failed', saga: copySaga(saga), reason });
      }
      record('SUCCEEDED', null, 'ACTION');
      return ok({ kind: 'done', saga: copySaga(saga) });
    }

    if (step === 'ORDER_COMPLETED') return ok({ kind: 'refused', saga: copySaga(saga) });
    // A compensation: only of a compensating saga, and only the next one due.
    if (saga.status !== 'COMPENSATING' || compensationsLeft(saga)[0] !== step) return ok({ kind: 'refused', saga: copySaga(saga) });
    const skipped = this.#compensate(saga, step, stamp);
    record(skipped === null ? 'SUCCEEDED' : 'SKIPPED', skipped, 'COMPENSATION');
    if (compensationsLeft(saga).length === 0) this.#finishSaga(saga, 'COMPENSATED', now);
    return ok({ kind: 'done', saga: copySaga(saga) });
  }

  resolveSaga(sagaId: string, resolution: SagaResolution, event: InboundEvent | null, stamp: Stamp): Promise<ResolveOutcome> {
    if (event !== null) {
      const seen = this.#seen(event);
      if (seen !== undefined) return ok(seen.kind === 'conflict' ? seen : { kind: 'duplicate', event: seen.event, saga: seen.saga });
    }
    const saga = this.#sagas.get(sagaId);
    if (saga === undefined) return ok({ kind: 'not_found' });
    const { now } = stamp;
    if (saga.status !== 'RUNNING') {
      if (event !== null) this.#record({ ...event, sagaId });
      return ok({ kind: 'final', saga: copySaga(saga) });
    }
    if (resolution.to === 'COMPENSATING') {
      saga.status = 'COMPENSATING';
      saga.failureReason = resolution.reason;
      saga.updatedAt = now;
      if (event !== null) this.#record({ ...event, sagaId });
      return ok({ kind: 'resolved', saga: copySaga(saga) });
    }
    if (!saga.plan.every((s) => sagaDid(saga, s))) return ok({ kind: 'busy', saga: copySaga(saga) });
    if (saga.orderId !== null) {
      const order = this.#orders.get(saga.orderId);
      if (order?.status === 'PAID' && order.sagaId === sagaId) {
        const payment = this.#completeOrder(order, now);
        this.#emit(stamp, 0, 'order.completed', `order:${order.orderId}`, { kind: 'order', order: copyOrder(order), payment: payment === null ? null : copyPayment(payment) });
      }
      saga.steps.push({ step: 'ORDER_COMPLETED', kind: 'ACTION', status: 'SUCCEEDED', at: now, reason: null });
    }
    this.#finishSaga(saga, 'COMPLETED', now);
    if (event !== null) this.#record({ ...event, sagaId });
    return ok({ kind: 'resolved', saga: copySaga(saga) });
  }

  inboundEvent(eventId: string): Promise<InboundEvent | undefined> {
    const event = this.#inbound.get(eventId);
    return ok(event === undefined ? undefined : { ...event });
  }

  // ── outbox ───────────────────────────────────────────────────────────────────────────────

  pendingOutbox(limit: number): Promise<OutboxEvent[]> {
    return ok(this.#outbox.pending(limit));
  }

  markPublished(eventIds: readonly string[], now: number): Promise<number> {
    return ok(this.#outbox.markPublished(eventIds, now));
  }

  listOutbox(query: OutboxQuery): Promise<Page<OutboxEvent>> {
    return ok(this.#outbox.list(query));
  }

  outboxStats(): Promise<{ pending: number; oldestPendingAt: number | null; published: number }> {
    return ok(this.#outbox.stats());
  }

  // ── ledger, reconciliation, bounds ───────────────────────────────────────────────────────

  ledger(reference: string): Promise<FluxPayTransaction[]> {
    return ok(this.#ledger.of(reference));
  }

  snapshot(): Promise<FluxPaySnapshot> {
    return ok({
      orders: [...this.#orders.values()].map(copyOrder),
      payments: [...this.#payments.values()].map(copyPayment),
      usages: [...this.#usages.values()].map((u) => ({ ...u })),
      sagas: [...this.#sagas.values()].map(copySaga),
      ...this.#credits.snapshot(),
      accounts: this.#ledger.accounts(),
      evictedNetCollected: this.#ledger.evictedNet(),
      outbox: this.#outbox.counts(),
    });
  }

  stats(): Promise<StoreStats> {
    return ok({ size: this.#orders.size, max: this.#options.maxRecords });
  }

  sweep(now: number): Promise<number> {
    return ok(this.#sweepBefore(now));
  }

  // ── inside ───────────────────────────────────────────────────────────────────────────────

  #sweepBefore(now: number): number {
    const cutoff = now - this.#options.ttlMs;
    return (
      this.#finishedOrders.sweep(cutoff) +
      this.#finishedSagas.sweep(cutoff) +
      this.#usageQueue.sweep(cutoff) +
      this.#inboundQueue.sweep(cutoff) +
      this.#outbox.sweep(cutoff) +
      this.#credits.sweep(cutoff)
    );
  }

  /** Whether one more record fits, evicting the oldest finished one when the bound is reached. */
  #room<R>(size: number, queue: EvictionQueue<R>): boolean {
    return size < this.#options.maxRecords || queue.evictOne();
  }

  /** The outcome of an event id seen before (or undefined: it is new). */
  #seen(event: InboundEvent): { kind: 'duplicate'; event: InboundEvent; saga: Saga | undefined } | { kind: 'conflict'; event: InboundEvent } | undefined {
    const seen = this.#inbound.get(event.eventId);
    if (seen === undefined) return undefined;
    if (seen.fingerprint !== event.fingerprint) return { kind: 'conflict', event: { ...seen } };
    const saga = seen.sagaId === null ? undefined : this.#sagas.get(seen.sagaId);
    return { kind: 'duplicate', event: { ...seen }, saga: saga === undefined ? undefined : copySaga(saga) };
  }

  #record(event: InboundEvent): void {
    // At the bound the oldest event goes (a saga's end is never refused for want of room to remember it).
    if (this.#inbound.size >= this.#options.maxRecords) this.#inboundQueue.evictOne();
    this.#inbound.set(event.eventId, { ...event });
    this.#inboundQueue.push(event.eventId);
  }

  /** ORDER_RESERVED: the user's PAID order, held by no other saga, is now this saga's; the failure's code otherwise. */
  #reserveOrder(saga: Saga): string | null {
    const order = saga.orderId === null ? undefined : this.#orders.get(saga.orderId);
    if (order?.userId !== saga.userId) return 'COMMON_404';
    if (order.status !== 'PAID' || (order.sagaId !== null && order.sagaId !== saga.sagaId) || order.chargedCredits !== null) return 'PAY_004';
    order.sagaId = saga.sagaId;
    order.updatedAt = saga.updatedAt;
    return null;
  }

  /** CREDITS_DEDUCTED: the saga's credits from the user's balance, once per usageId; the failure's code otherwise. */
  #deductForSaga(saga: Saga, stamp: Stamp, creditUsageId: string): string | null {
    const amount = saga.credits ?? 0;
    const existing = this.#usages.get(usageKey(saga.userId, saga.usageId));
    if (existing !== undefined) return existing.sagaId === saga.sagaId ? null : 'PAY_003';
    if (this.#credits.balance(saga.userId) < amount) return 'PAY_001';
    if (!this.#room(this.#usages.size, this.#usageQueue)) return 'COMMON_503';
    this.#deduct({ userId: saga.userId, serviceId: saga.serviceId, usageId: saga.usageId, amount, creditUsageId }, saga.sagaId, stamp);
    return null;
  }

  /** Runs a compensation; returns why it was skipped (nothing to undo), or null when it undid something. */
  #compensate(saga: Saga, step: SagaStepName, stamp: Stamp): string | null {
    switch (step) {
      case 'CREDITS_RESTORED': {
        if (!sagaDid(saga, 'CREDITS_DEDUCTED')) return 'nothing deducted';
        const usage = this.#usages.get(usageKey(saga.userId, saga.usageId));
        if (usage === undefined || usage.status === 'REFUNDED') return 'already refunded';
        this.#refund(usage, stamp, 0);
        return null;
      }
      case 'PAYMENT_CANCELLED': {
        if (!sagaDid(saga, 'ORDER_RESERVED')) return 'no order reserved';
        const order = this.#orders.get(saga.orderId as string);
        const payment = order?.paymentKey == null ? undefined : this.#payments.get(order.paymentKey);
        if (order === undefined || payment?.status !== 'APPROVED') return 'no approved payment';
        this.#cancelPayment(order, payment, stamp.transactionId, stamp.now);
        return null;
      }
      case 'ORDER_CANCELLED': {
        if (!sagaDid(saga, 'ORDER_RESERVED')) return 'no order reserved';
        const order = this.#orders.get(saga.orderId as string);
        if (order === undefined || order.status === 'CANCELLED') return 'already cancelled';
        this.#cancelOrder(order, `usage ${saga.usageId} failed: ${saga.failureReason ?? 'unknown'}`, stamp, 1);
        return null;
      }
      default:
        return 'not a compensation';
    }
  }

  #finishSaga(saga: Saga, status: 'COMPLETED' | 'COMPENSATED', now: number): void {
    saga.status = status;
    saga.completedAt = now;
    saga.updatedAt = now;
    this.#finishedSagas.push(saga.sagaId);
    // Its order may go now that no running saga holds it.
    const order = saga.orderId === null ? undefined : this.#orders.get(saga.orderId);
    if (order !== undefined && order.sagaId === saga.sagaId && (order.status === 'COMPLETED' || order.status === 'CANCELLED')) this.#finishedOrders.push(order.orderId);
  }

  /** Order → COMPLETED, its payment → CONFIRMED. */
  #completeOrder(order: Order, now: number): Payment | null {
    this.#setOrderStatus(order, 'COMPLETED');
    order.completedAt = now;
    order.updatedAt = now;
    const payment = order.paymentKey === null ? undefined : this.#payments.get(order.paymentKey);
    if (payment !== undefined && payment.status === 'APPROVED') {
      payment.status = 'CONFIRMED';
      payment.confirmedAt = now;
      payment.updatedAt = now;
    }
    if (order.sagaId === null) this.#finishedOrders.push(order.orderId);
    return payment ?? null;
  }

  /** Order → CANCELLED (a paid one with its payment refunded), with `order.cancelled` (event slot `slot`). */
  #cancelOrder(order: Order, reason: string | null, stamp: Stamp, slot: number): Payment | null {
    const { now } = stamp;
    const payment = order.paymentKey === null ? undefined : this.#payments.get(order.paymentKey);
    if (payment?.status === 'APPROVED') this.#cancelPayment(order, payment, stamp.transactionId, now);
    this.#setOrderStatus(order, 'CANCELLED');
    order.cancelReason = reason;
    order.cancelledAt = now;
    order.updatedAt = now;
    this.#emit(stamp, slot, 'order.cancelled', `order:${order.orderId}`, { kind: 'order', order: copyOrder(order), payment: payment === undefined ? null : copyPayment(payment) });
    if (order.sagaId === null || this.#sagas.get(order.sagaId)?.status !== 'RUNNING') this.#finishedOrders.push(order.orderId);
    return payment ?? null;
  }

  #cancelPayment(order: Order, payment: Payment, transactionId: string, now: number): void {
    payment.status = 'CANCELLED';
    payment.cancelledAt = now;
    payment.updatedAt = now;
    this.#ledger.post('PAYMENT_CANCELLED', transactionId, order.orderId, order.amount, order.currency, now);
  }

  #deduct(input: UseInput, sagaId: string | null, stamp: Stamp): { usage: CreditUsage; transaction: CreditTransaction } {
    const usage: CreditUsage = {
      creditUsageId: input.creditUsageId,
      usageId: input.usageId,
      userId: input.userId,
      serviceId: input.serviceId,
      amount: input.amount,
      status: 'DEDUCTED',
      sagaId,
      createdAt: stamp.now,
      refundedAt: null,
    };
    const key = usageKey(input.userId, input.usageId);
    this.#usages.set(key, usage);
    this.#usageQueue.push(key);
    const transaction = this.#credits.move('USE', input.userId, input.amount, stamp, { orderId: null, usageId: input.usageId, serviceId: input.serviceId }, usage.creditUsageId);
    this.#emit(stamp, 0, 'credit.deducted', `credit:${input.userId}`, { kind: 'credit', transaction: { ...transaction }, usage: { ...usage } });
    return { usage, transaction };
  }

  #refund(usage: CreditUsage, stamp: Stamp, slot: number): CreditTransaction {
    usage.status = 'REFUNDED';
    usage.refundedAt = stamp.now;
    const transaction = this.#credits.move('REFUND', usage.userId, usage.amount, stamp, { orderId: null, usageId: usage.usageId, serviceId: usage.serviceId }, usage.creditUsageId);
    this.#emit(stamp, slot, 'credit.refunded', `credit:${usage.userId}`, { kind: 'credit', transaction: { ...transaction }, usage: { ...usage } });
    return transaction;
  }

  /**
   * Writes one outbox event, synchronously, inside the caller's step: for memory stores that share
   * this outbox (billing subscriptions, ./fluxpay-billing.ts), so their change and its event are
   * one write and the relay publishes every FluxPay event in one order.
   */
  appendEvent(eventId: string, eventType: OutboxEventType, aggregate: string, payload: OutboxPayload, now: number): void {
    this.#outbox.append(eventId, eventType, aggregate, payload, now);
  }

  /** Writes an outbox event with the change (the `slot`-th event id of the stamp). */
  #emit(stamp: Stamp, slot: number, eventType: OutboxEventType, aggregate: string, payload: OutboxPayload): void {
    const eventId = stamp.eventIds[slot];
    if (eventId === undefined) throw new Error(`the stamp has no event id in slot ${slot}`);
    this.#outbox.append(eventId, eventType, aggregate, payload, stamp.now);
  }

  #countOrder(order: Order, by: 1 | -1): void {
    this.#orderCounts[order.status] += by;
    if (order.status === 'CANCELLED' && order.paymentKey !== null) this.#orderCounts.cancelledAfterPayment += by;
  }

  #setOrderStatus(order: Order, status: OrderStatus): void {
    this.#countOrder(order, -1);
    order.status = status;
    this.#countOrder(order, 1);
  }

  #removeOrder(order: Order): void {
    this.#orders.delete(order.orderId);
    this.#countOrder(order, -1);
    this.#allOrders.markDead(this.#isLiveOrder);
    this.#ordersByUser.get(order.userId)?.markDead(this.#isLiveOrder);
    for (const key of this.#paymentsByOrder.get(order.orderId) ?? []) this.#payments.delete(key);
    this.#paymentsByOrder.delete(order.orderId);
    // Its money postings leave with it; their net is kept, so the ledger's totals still reconcile.
    this.#ledger.forgetOrder(order.orderId);
  }

  #removeSaga(saga: Saga): void {
    this.#sagas.delete(saga.sagaId);
    const key = usageKey(saga.userId, saga.usageId);
    if (this.#sagaByUsage.get(key) === saga.sagaId) this.#sagaByUsage.delete(key);
  }
}

function ok<T>(value: T): Promise<T> {
  return Promise.resolve(value);
}
