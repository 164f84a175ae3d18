import type { FluxPayTransaction } from '../../core/fluxpay/ledger.ts';
import {
  chargeableCredits,
  compensationsLeft,
  copyOrder,
  copyPayment,
  copySaga,
  endContradicts,
  isCreditChargeOrder,
  sagaDid,
  sagaSettled,
  type CreditTransaction,
  type CreditUsage,
  type InboundEvent,
  type Order,
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
  CreditsUsed,
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
import { DEFAULT_MAX_CREDIT_USERS } from '../../core/fluxpay/ports.ts';
import type { Page, PageQuery, StoreStats } from '../../core/ports.ts';
import { MemoryCreditBook } from './fluxpay-credits.ts';
import { MemoryFluxPayLedger } from './fluxpay-ledger.ts';
import { MemoryOrderBook } from './fluxpay-orders.ts';
import { MemoryFluxPayOutbox } from './fluxpay-outbox.ts';
import { MemorySagaBook } from './fluxpay-sagas.ts';

export interface MemoryFluxPayStoreOptions {
  /** Finished records older than this (from their creation) are evicted. */
  ttlMs: number;
  /** Orders held at most; also the bound of payments, sagas, usages, inbound events and outbox events, each. */
  maxRecords: number;
  /** Users with a credit balance held at most (FLUXPAY_MAX_CREDIT_USERS; DEFAULT_MAX_CREDIT_USERS when not given). */
  maxCreditUsers?: number;
}

/**
 * FluxPay's store in one process's memory. Every method runs to completion synchronously (the
 * promise it returns is already settled), so each is atomic: a change, its ledger transaction
 * and its outbox event are written together or not at all, and of any number of concurrent
 * operations on one record each sees the others' whole effect or none of it. This class checks
 * what each operation may do and runs the steps that span records (a saga's steps and their
 * compensations, a credit charge that completes its order) with their outbox events; the records
 * are kept by its parts, all written within the same step: orders and payments
 * (./fluxpay-orders.ts), credit balances, transactions and usages (./fluxpay-credits.ts), sagas and
 * inbound events (./fluxpay-sagas.ts), the ledger (./fluxpay-ledger.ts) and the outbox
 * (./fluxpay-outbox.ts).
 *
 * Bounds: an order joins the eviction queue when it is final (COMPLETED or CANCELLED) and no
 * running saga holds it; it leaves with its payments and its ledger transactions (their net is
 * kept per currency, so the ledger totals still reconcile). Sagas go when final, usages and
 * inbound events (a saga's once the saga has ended) and credit transactions by TTL (or the oldest
 * at the bound), outbox events once published (the oldest published at the bound). Credit balances and their running totals are never evicted (they are
 * users' money: a first charge for one user more than `maxCreditUsers` answers `users_full`), nor are pending outbox events: while the relay publishes, they stay few; a relay
 * that cannot publish for long lets them grow (see the outbox depth gauge). An insert of an order,
 * a payment, a usage or a saga that finds no room and nothing evictable answers `full` (a payment
 * makes room by evicting the oldest finished orders, which take their payments with them).
 */
export class MemoryFluxPayStore implements FluxPayStore {
  readonly #options: MemoryFluxPayStoreOptions;
  readonly #ledger = new MemoryFluxPayLedger();
  readonly #orders: MemoryOrderBook;
  readonly #credits: MemoryCreditBook;
  readonly #sagas: MemorySagaBook;
  readonly #outbox: MemoryFluxPayOutbox;

  constructor(options: MemoryFluxPayStoreOptions) {
    this.#options = options;
    this.#orders = new MemoryOrderBook(this.#ledger, options.maxRecords);
    this.#credits = new MemoryCreditBook(this.#ledger, options.maxRecords);
    this.#sagas = new MemorySagaBook(options.maxRecords);
    this.#outbox = new MemoryFluxPayOutbox(options.maxRecords);
  }

  // ── orders and payments ──────────────────────────────────────────────────────────────────

  createOrder(order: Order): Promise<CreateOutcome<Order>> {
    this.#sweepBefore(order.createdAt);
    if (!this.#orders.room()) return ok({ kind: 'full' });
    return ok({ kind: 'created', record: copyOrder(this.#orders.insert(order)) });
  }

  getOrder(orderId: string): Promise<Order | undefined> {
    const order = this.#orders.get(orderId);
    return ok(order === undefined ? undefined : copyOrder(order));
  }

  listOrders(query: OrderQuery): Promise<Page<Order>> {
    return ok(this.#orders.list(query));
  }

  orderCounts(): Promise<OrderCounts> {
    return ok(this.#orders.counts());
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
    if (!this.#orders.paymentRoom()) return ok({ kind: 'full' });
    return ok({ kind: 'created', payment: copyPayment(this.#orders.insertPayment(payment)) });
  }

  getPayment(paymentKey: string): Promise<Payment | undefined> {
    const payment = this.#orders.payment(paymentKey);
    return ok(payment === undefined ? undefined : copyPayment(payment));
  }

  confirmPayment(input: ConfirmInput, stamp: Stamp): Promise<ConfirmOutcome> {
    const payment = this.#orders.payment(input.paymentKey);
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
    this.#orders.pay(order, payment, stamp);
    this.#emit(stamp, 0, 'payment.approved', `payment:${payment.paymentKey}`, { kind: 'payment', payment: copyPayment(payment) });
    return ok({ kind: 'approved', payment: copyPayment(payment), order: copyOrder(order) });
  }

  completeOrder(orderId: string, stamp: Stamp): Promise<CompleteOrderOutcome> {
    const order = this.#orders.get(orderId);
    if (order === undefined) return ok({ kind: 'not_found' });
    if (order.status !== 'PAID' || order.sagaId !== null || isCreditChargeOrder(order)) return ok({ kind: 'order_state', order: copyOrder(order) });
    this.#completeOrder(order, stamp, 0);
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
    const maxUsers = this.#options.maxCreditUsers ?? DEFAULT_MAX_CREDIT_USERS;
    if (!this.#credits.hasBalance(userId) && this.#credits.users >= maxUsers) return ok({ kind: 'users_full', order: copyOrder(order), max: maxUsers });
    const credits = chargeableCredits(order);
    const transaction = this.#credits.move('CHARGE', userId, credits, stamp, { orderId, usageId: null, serviceId: order.serviceId });
    order.chargedCredits = credits;
    this.#emit(stamp, 0, 'credit.charged', `credit:${userId}`, { kind: 'credit', transaction: { ...transaction }, usage: null });
    this.#completeOrder(order, stamp, 1);
    return ok({ kind: 'charged', order: copyOrder(order), transaction: { ...transaction }, balance: transaction.balanceAfter });
  }

  useCredits(input: UseInput, stamp: Stamp): Promise<UseOutcome> {
    const existing = this.#credits.usage(input.userId, input.usageId);
    if (existing !== undefined) return ok({ kind: 'duplicate', usage: { ...existing } });
    const balance = this.#credits.balance(input.userId);
    if (balance < input.amount) return ok({ kind: 'insufficient', balance, needed: input.amount });
    this.#sweepBefore(stamp.now);
    if (!this.#credits.usageRoom()) return ok({ kind: 'full' });
    const { usage, transaction } = this.#deduct(input, null, stamp);
    return ok({ kind: 'deducted', usage: { ...usage }, transaction: { ...transaction }, balance: transaction.balanceAfter });
  }

  refundCredits(userId: string, usageId: string, stamp: Stamp): Promise<RefundOutcome> {
    const usage = this.#credits.usage(userId, usageId);
    if (usage === undefined) return ok({ kind: 'not_found' });
    if (usage.status === 'REFUNDED') return ok({ kind: 'already_refunded', usage: { ...usage } });
    if (usage.sagaId !== null) return ok({ kind: 'saga_held', usage: { ...usage } });
    const transaction = this.#refund(usage, stamp);
    return ok({ kind: 'refunded', usage: { ...usage }, transaction: { ...transaction }, balance: transaction.balanceAfter });
  }

  transactions(userId: string, page: PageQuery): Promise<Page<CreditTransaction>> {
    return ok(this.#credits.transactions(userId, page));
  }

  creditsUsed(userId: string, since: number): Promise<CreditsUsed> {
    return ok(this.#credits.used(userId, since));
  }

  creditBalances(limit: number): Promise<{ total: number; users: CreditBalance[] }> {
    return ok(this.#credits.balances(limit));
  }

  // ── sagas ────────────────────────────────────────────────────────────────────────────────

  startSaga(saga: Saga, event: InboundEvent): Promise<StartSagaOutcome> {
    const seen = this.#sagas.seen(event);
    if (seen !== undefined) return ok(seen);
    const other = this.#sagas.ofUsage(saga.userId, saga.usageId);
    if (other !== undefined) return ok({ kind: 'usage_taken', saga: copySaga(other) });
    this.#sweepBefore(saga.createdAt);
    if (!this.#sagas.room()) return ok({ kind: 'full' });
    const stored = this.#sagas.insert(saga);
    this.#sagas.record({ ...event, sagaId: stored.sagaId });
    return ok({ kind: 'started', saga: copySaga(stored) });
  }

  recentSagas(limit: number): Promise<{ total: number; sagas: Saga[] }> {
    return ok(this.#sagas.recent(limit));
  }

  getSaga(sagaId: string): Promise<Saga | undefined> {
    const saga = this.#sagas.get(sagaId);
    return ok(saga === undefined ? undefined : copySaga(saga));
  }

  sagaOfUsage(userId: string, usageId: string): Promise<Saga | undefined> {
    const saga = this.#sagas.ofUsage(userId, usageId);
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
      const seen = this.#sagas.seen(event);
      if (seen !== undefined) return ok(seen.kind === 'conflict' ? seen : { kind: 'duplicate', event: seen.event, saga: seen.saga });
    }
    const saga = this.#sagas.get(sagaId);
    if (saga === undefined) return ok({ kind: 'not_found' });
    const { now } = stamp;
    if (saga.status !== 'RUNNING') {
      if (event === null) return ok({ kind: 'final', saga: copySaga(saga) });
      if (endContradicts(resolution.to, saga.status)) return ok({ kind: 'contradicted', saga: copySaga(saga) });
      this.#sagas.record({ ...event, sagaId });
      return ok({ kind: 'final', saga: copySaga(saga) });
    }
    if (resolution.to === 'COMPENSATING') {
      saga.status = 'COMPENSATING';
      saga.failureReason = resolution.reason;
      saga.updatedAt = now;
      if (event !== null) this.#sagas.record({ ...event, sagaId });
      return ok({ kind: 'resolved', saga: copySaga(saga) });
    }
    if (!saga.plan.every((s) => sagaDid(saga, s))) return ok({ kind: 'busy', saga: copySaga(saga) });
    if (saga.orderId !== null) {
      const order = this.#orders.get(saga.orderId);
      if (order?.status === 'PAID' && order.sagaId === sagaId) this.#completeOrder(order, stamp, 0);
      saga.steps.push({ step: 'ORDER_COMPLETED', kind: 'ACTION', status: 'SUCCEEDED', at: now, reason: null });
    }
    this.#finishSaga(saga, 'COMPLETED', now);
    if (event !== null) this.#sagas.record({ ...event, sagaId });
    return ok({ kind: 'resolved', saga: copySaga(saga) });
  }

  inboundEvent(eventId: string): Promise<InboundEvent | undefined> {
    return ok(this.#sagas.inbound(eventId));
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

  orderOutbox(orderId: string, limit: number): Promise<{ events: OutboxEvent[]; total: number }> {
    return ok(this.#outbox.ofOrder(orderId, limit));
  }

  /**
   * Writes one outbox event, synchronously, inside the caller's step: for memory stores that share
   * this outbox (billing subscriptions, ./fluxpay-billing.ts), so their change and its event are
   * one write and the relay publishes every FluxPay event in one order.
   */
  appendEvent(eventId: string, eventType: OutboxEventType, aggregate: string, payload: OutboxPayload, now: number): void {
    this.#outbox.append(eventId, eventType, aggregate, payload, now);
  }

  // ── ledger, reconciliation, bounds ───────────────────────────────────────────────────────

  ledger(reference: string): Promise<FluxPayTransaction[]> {
    return ok(this.#ledger.of(reference));
  }

  snapshot(): Promise<FluxPaySnapshot> {
    const { orders, payments } = this.#orders.snapshot();
    const { usages, balances, creditTotals } = this.#credits.snapshot();
    return ok({
      orders,
      payments,
      usages,
      sagas: this.#sagas.snapshot(),
      balances,
      creditTotals,
      accounts: this.#ledger.accounts(),
      evictedNetCollected: this.#ledger.evictedNet(),
      outbox: this.#outbox.counts(),
    });
  }

  stats(): Promise<StoreStats> {
    return ok({ size: this.#orders.size, max: this.#options.maxRecords });
  }

  paymentStats(): Promise<StoreStats> {
    return ok({ size: this.#orders.paymentCount, max: this.#options.maxRecords });
  }

  creditUserStats(): Promise<StoreStats> {
    return ok({ size: this.#credits.users, max: this.#options.maxCreditUsers ?? DEFAULT_MAX_CREDIT_USERS });
  }

  sweep(now: number): Promise<number> {
    return ok(this.#sweepBefore(now));
  }

  // ── inside: the steps that span orders, credits and sagas, each with its outbox events ──────

  #sweepBefore(now: number): number {
    const cutoff = now - this.#options.ttlMs;
    return this.#orders.sweep(cutoff) + this.#sagas.sweep(cutoff) + this.#outbox.sweep(cutoff) + this.#credits.sweep(cutoff);
  }

  /**
   * ORDER_RESERVED: the user's PAID order, held by no other saga, is now this saga's; the failure's
   * code otherwise. An order that buys credits (CREDIT_CHARGE) pays for its credits, not for a usage:
   * a saga completing it would leave it COMPLETED with its credits never added. An order of another
   * service paid for that service's use, not this one's (2026-12-05).
   */
  #reserveOrder(saga: Saga): string | null {
    const order = saga.orderId === null ? undefined : this.#orders.get(saga.orderId);
    if (order?.userId !== saga.userId) return 'COMMON_404';
    if (order.status !== 'PAID' || (order.sagaId !== null && order.sagaId !== saga.sagaId) || order.chargedCredits !== null || isCreditChargeOrder(order) || order.serviceId !== saga.serviceId) return 'PAY_004';
    order.sagaId = saga.sagaId;
    order.updatedAt = saga.updatedAt;
    return null;
  }

  /** CREDITS_DEDUCTED: the saga's credits from the user's balance, once per usageId; the failure's code otherwise. */
  #deductForSaga(saga: Saga, stamp: Stamp, creditUsageId: string): string | null {
    const amount = saga.credits ?? 0;
    const existing = this.#credits.usage(saga.userId, saga.usageId);
    if (existing !== undefined) return existing.sagaId === saga.sagaId ? null : 'PAY_003';
    if (this.#credits.balance(saga.userId) < amount) return 'PAY_001';
    if (!this.#credits.usageRoom()) return 'COMMON_503';
    this.#deduct({ userId: saga.userId, serviceId: saga.serviceId, usageId: saga.usageId, amount, creditUsageId }, saga.sagaId, stamp);
    return null;
  }

  /** Runs a compensation; returns why it was skipped (nothing to undo), or null when it undid something. */
  #compensate(saga: Saga, step: SagaStepName, stamp: Stamp): string | null {
    switch (step) {
      case 'CREDITS_RESTORED': {
        if (!sagaDid(saga, 'CREDITS_DEDUCTED')) return 'nothing deducted';
        const usage = this.#credits.usage(saga.userId, saga.usageId);
        if (usage === undefined || usage.status === 'REFUNDED') return 'already refunded';
        this.#refund(usage, stamp);
        return null;
      }
      case 'PAYMENT_CANCELLED': {
        if (!sagaDid(saga, 'ORDER_RESERVED')) return 'no order reserved';
        const order = this.#orders.get(saga.orderId as string);
        const payment = order === undefined ? undefined : this.#orders.payment(order.paymentKey);
        if (order === undefined || payment?.status !== 'APPROVED') return 'no approved payment';
        this.#orders.refund(order, payment, stamp.transactionId, stamp.now);
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
    this.#sagas.finish(saga, status, now);
    // Its usage and its order may go now that no running saga holds them.
    this.#credits.sagaEnded(saga.userId, saga.usageId, saga.sagaId);
    const order = saga.orderId === null ? undefined : this.#orders.get(saga.orderId);
    if (order !== undefined && order.sagaId === saga.sagaId && (order.status === 'COMPLETED' || order.status === 'CANCELLED')) this.#orders.finished(order.orderId);
  }

  /** Order → COMPLETED, its payment → CONFIRMED, with `order.completed` (event slot `slot`). */
  #completeOrder(order: Order, stamp: Stamp, slot: number): void {
    const payment = this.#orders.complete(order, stamp.now);
    this.#emit(stamp, slot, 'order.completed', `order:${order.orderId}`, { kind: 'order', order: copyOrder(order), payment: payment === null ? null : copyPayment(payment) });
  }

  /** Order → CANCELLED (a paid one with its payment refunded), with `order.cancelled` (event slot `slot`). */
  #cancelOrder(order: Order, reason: string | null, stamp: Stamp, slot: number): Payment | null {
    const held = order.sagaId !== null && this.#sagas.get(order.sagaId)?.status === 'RUNNING';
    const payment = this.#orders.cancel(order, reason, stamp, held);
    this.#emit(stamp, slot, 'order.cancelled', `order:${order.orderId}`, { kind: 'order', order: copyOrder(order), payment: payment === null ? null : copyPayment(payment) });
    return payment;
  }

  /** A usage and its deduction, with `credit.deducted` (event slot 0). */
  #deduct(input: UseInput, sagaId: string | null, stamp: Stamp): { usage: CreditUsage; transaction: CreditTransaction } {
    const deducted = this.#credits.deduct(input, sagaId, stamp);
    this.#emit(stamp, 0, 'credit.deducted', `credit:${input.userId}`, { kind: 'credit', transaction: { ...deducted.transaction }, usage: { ...deducted.usage } });
    return deducted;
  }

  /** A usage refunded, with `credit.refunded` (event slot 0). */
  #refund(usage: CreditUsage, stamp: Stamp): CreditTransaction {
    const transaction = this.#credits.refund(usage, stamp);
    this.#emit(stamp, 0, 'credit.refunded', `credit:${usage.userId}`, { kind: 'credit', transaction: { ...transaction }, usage: { ...usage } });
    return transaction;
  }

  /** Writes an outbox event with the change (the `slot`-th event id of the stamp). */
  #emit(stamp: Stamp, slot: number, eventType: OutboxEventType, aggregate: string, payload: OutboxPayload): void {
    const eventId = stamp.eventIds[slot];
    if (eventId === undefined) throw new Error(`the stamp has no event id in slot ${slot}`);
    this.#outbox.append(eventId, eventType, aggregate, payload, stamp.now);
  }
}

function ok<T>(value: T): Promise<T> {
  return Promise.resolve(value);
}
