import type { Clock } from '../clock.ts';
import { storeFull } from '../errors.ts';
import type { EventBus } from '../events.ts';
import type { Page } from '../ports.ts';
import { returnable, type RandomSource, type ReturnableRandom } from '../random.ts';
import { cardIssues, cardOutcome, decide, forcedOutcome, markApplied, type OutcomeRequest, type ScenarioConfig } from '../scenario.ts';
import { creditUserLimit, FluxPayError, invalid, notFound, subscriptionLimit } from './errors.ts';
import type { OutboxRelay } from './outbox.ts';
import { isCreditChargeOrder, type CardSummary, type CreditTransaction, type CreditUsage, type FluxPayIds, type Metadata, type Order, type OrderStatus, type OutboxEvent, type Payment, type PaymentMethod, type Saga, stampOf, OUTBOX_EVENT_TYPES } from './model.ts';
import { MAX_CREDITS, priceOf, type BillingPolicy } from './policy.ts';
import type { ConfirmDecision, ConfirmOutcome, CreditsUsed, FluxPayStore, FluxPaySubscriptionStore, OrderCounts, OutboxQuery, WebhookSubscription } from './ports.ts';
import { reconcile, type ReconciliationReport } from './reconcile.ts';
import type { UsageSagas } from './saga.ts';
import { UsageEvents, type EventResult, type UsageEvent } from './usage-events.ts';
import type { SubscriptionRecord } from '../subscriptions/ports.ts';

/**
 * FluxPay's engine (source document 002): orders, PG payments confirmed by the scenario engine,
 * prepaid credits priced by the billing policy, usage events that run sagas (./usage-events.ts),
 * the outbox and its subscribers, and the reconciliation. Every change is one store operation that writes its
 * ledger transaction and outbox event with it; after each, the outbox relay is kicked.
 * Refusals are FluxPayErrors with the document's codes.
 * @see issue 11, ../../../../shared/seeds/002_38de3c186cddda84.txt
 */

export interface FluxPaySettings {
  /** FLUXPAY_USAGE_TIMEOUT_MS: a usage saga compensates unless completed within it. */
  usageTimeoutMs: number;
  scenarios: ScenarioConfig;
  policy: BillingPolicy;
  /** FLUXPAY_MAX_SUBSCRIPTIONS: webhook subscriptions held at once (named in the refusal of one more). */
  maxSubscriptions: number;
}

export interface FluxPayDeps {
  store: FluxPayStore;
  subscriptions: FluxPaySubscriptionStore;
  sagas: UsageSagas;
  relay: OutboxRelay;
  clock: Clock;
  random: RandomSource;
  ids: FluxPayIds;
  settings: FluxPaySettings;
  /** Told of each order and READY payment created (they write no outbox event); the relay tells the rest. */
  bus?: EventBus | undefined;
}

export interface CreateOrderInput {
  userId: string;
  serviceId: string;
  orderName: string;
  amount: number;
  currency?: string | undefined;
  metadata?: Metadata | undefined;
}

export interface CardInput {
  number: string;
  cvv?: string | undefined;
  expMonth?: number | undefined;
  expYear?: number | undefined;
}

export interface CreatePaymentInput {
  orderId: string;
  method: PaymentMethod;
  card?: CardInput | undefined;
  easyPay?: { provider: string } | undefined;
}

export interface ConfirmInput {
  paymentKey: string;
  orderId: string;
  amount: number;
}

const DEFAULT_CURRENCY = 'KRW';
/** Payments whose outcome is decided when confirmed: one shared frozen object each. */
const APPROVES = Object.freeze({ status: 'APPROVED' as const, failureCode: null });

export class FluxPayService {
  readonly #deps: FluxPayDeps;
  readonly #usageEvents: UsageEvents;
  /** The deps' source, whose draws a confirm that is refused gives back (it decided no payment). */
  readonly #random: ReturnableRandom;

  constructor(deps: FluxPayDeps) {
    this.#deps = deps;
    this.#random = returnable(deps.random);
    const { store, sagas, clock, ids, settings } = deps;
    this.#usageEvents = new UsageEvents({
      store,
      sagas,
      clock,
      ids,
      usageTimeoutMs: settings.usageTimeoutMs,
      priceOf: (serviceId, amount, field) => this.priceOf(serviceId, amount, field),
      changed: () => this.#changed(),
    });
  }

  get policy(): BillingPolicy {
    return this.#deps.settings.policy;
  }

  // ── orders ─────────────────────────────────────────────────────────────────────────────────

  /** A new order id (the waiting-room guard uses the token for it before the order exists). */
  newOrderId(): string {
    return this.#deps.ids('ord');
  }

  /** `orderId`: one from `newOrderId`, else a new one. */
  async createOrder(input: CreateOrderInput, orderId?: string): Promise<Order> {
    const { store, clock, ids } = this.#deps;
    const metadata = input.metadata ?? null;
    // JSON has no number too large for a double: such a figure parses to Infinity and would be
    // kept and answered as null (a user test, 2026-12-07: a 5,000-digit figure came back null).
    const unwritable = metadata === null ? undefined : nonFinitePath(metadata, 'metadata');
    if (unwritable !== undefined) throw invalid(unwritable, 'must be a number JSON can hold (at most about 1.8e308): it would be kept as null');
    if (metadata !== null && isCreditChargeOrder({ metadata }) && metadata.credits !== undefined) {
      const credits = metadata.credits;
      // Bounded as every credit figure is: Redis adds a charge up in 64-bit counters shared by every
      // user, and one that overflowed them failed after its first writes (a review: 1,024 charges of
      // 2^53 - 1 left a balance raised with no transaction, raised again by each retry).
      if (typeof credits !== 'number' || !Number.isSafeInteger(credits) || credits < 1 || credits > MAX_CREDITS) throw invalid('metadata.credits', `must be a whole number of credits from 1 to ${MAX_CREDITS}`);
    }
    const now = clock.now();
    const order: Order = {
      orderId: orderId ?? ids('ord'),
      userId: input.userId,
      serviceId: input.serviceId,
      orderName: input.orderName,
      amount: input.amount,
      currency: input.currency ?? DEFAULT_CURRENCY,
      metadata: metadata === null ? null : Object.freeze({ ...metadata }),
      status: 'PENDING',
      paymentKey: null,
      sagaId: null,
      chargedCredits: null,
      cancelReason: null,
      createdAt: now,
      updatedAt: now,
      paidAt: null,
      completedAt: null,
      cancelledAt: null,
    };
    const created = await store.createOrder(order);
    if (created.kind === 'full') throw storeFull('fluxpay');
    this.#deps.bus?.publish({ id: created.record.orderId, type: 'fluxpay.order_created', occurredAt: now, order: created.record });
    return created.record;
  }

  /** The longest a confirm waits before it is decided (the `delay` scenario's delay, scaled). */
  get longestConfirmDelayMs(): number {
    return this.#deps.settings.scenarios.delayDelayMs;
  }

  /** One order; undefined when there is none (never created, or evicted). */
  findOrder(orderId: string): Promise<Order | undefined> {
    return this.#deps.store.getOrder(orderId);
  }

  async getOrder(orderId: string): Promise<Order> {
    const order = await this.findOrder(orderId);
    if (order === undefined) throw notFound('Order', orderId);
    return order;
  }

  listOrders(query: { userId?: string | undefined; status?: OrderStatus | undefined; cursor?: string | undefined; limit: number }): Promise<Page<Order>> {
    return this.#deps.store.listOrders(query);
  }

  /** Stored orders by status, over all of them. */
  orderCounts(): Promise<OrderCounts> {
    return this.#deps.store.orderCounts();
  }

  /** PENDING → CANCELLED, or PAID → CANCELLED with its payment refunded. */
  async cancelOrder(orderId: string, reason: string | null): Promise<{ order: Order; payment: Payment | null }> {
    const { store, clock, ids } = this.#deps;
    const outcome = await store.cancelOrder(orderId, reason, stampOf(ids, clock.now()));
    switch (outcome.kind) {
      case 'not_found':
        throw notFound('Order', orderId);
      case 'order_state':
        throw new FluxPayError('PAY_004', `Order ${orderId} is ${outcome.order.status}; only a PENDING or PAID order can be cancelled.`);
      case 'in_use':
        throw new FluxPayError('PAY_004', `Order ${orderId} is held by usage saga ${outcome.order.sagaId ?? ''}; it is cancelled only if that usage fails.`);
      case 'cancelled':
        this.#changed();
        return { order: outcome.order, payment: outcome.payment };
    }
  }

  // ── payments ───────────────────────────────────────────────────────────────────────────────

  /**
   * A READY payment (with its paymentKey) for a PENDING order; the card rules plan its outcome now,
   * and the card is not kept. `paymentKey`: one from `newPaymentKey`, else a new one.
   */
  async createPayment(input: CreatePaymentInput, paymentKey?: string): Promise<Payment> {
    if (input.method === 'CARD' && input.card === undefined) throw invalid('card', 'is required when method is CARD');
    if (input.method === 'CARD' && input.easyPay !== undefined) throw invalid('easyPay', 'is only for method EASY_PAY');
    if (input.method === 'EASY_PAY' && input.easyPay === undefined) throw invalid('easyPay', 'is required when method is EASY_PAY');
    if (input.method === 'EASY_PAY' && input.card !== undefined) throw invalid('card', 'is only for method CARD');
    const checked = input.card === undefined ? undefined : this.checkCard(input.card);
    const card = checked === undefined ? undefined : { card: { last4: checked.last4, expMonth: checked.expMonth, expYear: checked.expYear }, planned: checked.planned };
    return this.#insertPayment(input.orderId, input.method, card, input.easyPay, paymentKey);
  }

  /**
   * Checks a card (COMMON_400 naming each broken rule) and plans the outcome the card rules give
   * it now; what is kept of it is only its summary (last four digits and expiry).
   */
  checkCard(input: CardInput): CardSummary & { planned: Payment['planned'] } {
    const card = { number: input.number, cvv: input.cvv, exp_month: input.expMonth, exp_year: input.expYear };
    const issues = cardIssues(card);
    if (issues.length > 0) {
      const errors = issues.map((i) => ({ field: i.field.replace(/^\//, '').replace('/', '.').replace('exp_month', 'expMonth').replace('exp_year', 'expYear'), reason: i.message }));
      throw new FluxPayError('COMMON_400', `${errors[0]?.field ?? 'card'}: ${errors[0]?.reason ?? 'is invalid'}`, errors);
    }
    return { last4: input.number.slice(-4), expMonth: input.expMonth ?? null, expYear: input.expYear ?? null, planned: cardOutcome(card, this.#deps.clock.now()) };
  }

  /**
   * Charges a card on file (a billing key: its summary and the outcome planned when it was
   * registered, its expiry checked again now): an order, a payment and its confirmation, decided by
   * `scenario` when given, like any other FluxPay payment. Approved: the order is PAID (the caller
   * completes it, or refunds it with `cancelOrder`). Declined: the payment is FAILED and the order
   * CANCELLED, so nothing is left pending. `orderId`: the order's id, drawn by the caller (which
   * can then look after the order whatever happens to this call).
   */
  async chargeCard(
    input: CreateOrderInput,
    stored: CardSummary & { planned: Payment['planned'] },
    request: OutcomeRequest = {},
    orderId?: string,
  ): Promise<{ approved: boolean; order: Order; payment: Payment }> {
    const order = await this.createOrder(input, orderId);
    const expiry = cardOutcome({ exp_month: stored.expMonth ?? undefined, exp_year: stored.expYear ?? undefined }, this.#deps.clock.now());
    const card = { last4: stored.last4, expMonth: stored.expMonth, expYear: stored.expYear };
    const payment = await this.#insertPayment(order.orderId, 'CARD', { card, planned: expiry.status === 'FAILED' ? expiry : stored.planned }, undefined);
    try {
      return { approved: true, ...(await this.confirmPayment({ paymentKey: payment.paymentKey, orderId: order.orderId, amount: order.amount }, request)) };
    } catch (error) {
      if (!(error instanceof FluxPayError) || error.code !== 'PAY_002') throw error;
      const cancelled = await this.cancelOrder(order.orderId, 'payment declined');
      return { approved: false, order: cancelled.order, payment: await this.getPayment(payment.paymentKey) };
    }
  }

  /** A PAID order no saga holds → COMPLETED, its payment CONFIRMED (a subscription's charge, once the subscription has it). */
  async completeOrder(orderId: string): Promise<Order> {
    const { store, clock, ids } = this.#deps;
    const outcome = await store.completeOrder(orderId, stampOf(ids, clock.now()));
    switch (outcome.kind) {
      case 'not_found':
        throw notFound('Order', orderId);
      case 'order_state':
        throw new FluxPayError('PAY_004', `Order ${orderId} is ${outcome.order.status}; only a PAID order of no saga can be completed.`);
      case 'completed':
        this.#changed();
        return outcome.order;
    }
  }

  async #insertPayment(orderId: string, method: PaymentMethod, card: { card: CardSummary; planned: Payment['planned'] } | undefined, easyPay: { provider: string } | undefined, paymentKey?: string): Promise<Payment> {
    const { store, clock, ids } = this.#deps;
    const now = clock.now();
    const order = await store.getOrder(orderId);
    if (order === undefined) throw notFound('Order', orderId);
    const payment: Payment = {
      paymentKey: paymentKey ?? ids('pk'),
      orderId: order.orderId,
      userId: order.userId,
      amount: order.amount,
      currency: order.currency,
      method,
      card: card === undefined ? null : { ...card.card },
      easyPay: easyPay === undefined ? null : { provider: easyPay.provider },
      status: 'READY',
      failureCode: null,
      decidedBy: null,
      planned: card === undefined ? APPROVES : card.planned,
      createdAt: now,
      updatedAt: now,
      approvedAt: null,
      confirmedAt: null,
      failedAt: null,
      cancelledAt: null,
    };
    const created = await store.createPayment(payment);
    switch (created.kind) {
      case 'order_not_found':
        throw notFound('Order', orderId);
      case 'order_state':
        throw new FluxPayError('PAY_004', `Order ${orderId} is ${created.order.status}; a payment can be made only for a PENDING order.`);
      case 'full':
        throw storeFull('fluxpay');
      case 'created':
        this.#deps.bus?.publish({ id: created.payment.paymentKey, type: 'fluxpay.payment_created', occurredAt: now, payment: created.payment });
        return created.payment;
    }
  }

  /** A new payment key (a keyed create notes it on its Idempotency-Key before the write). */
  newPaymentKey(): string {
    return this.#deps.ids('pk');
  }

  /** The payment, if it is stored. */
  findPayment(paymentKey: string): Promise<Payment | undefined> {
    return this.#deps.store.getPayment(paymentKey);
  }

  async getPayment(paymentKey: string): Promise<Payment> {
    const payment = await this.#deps.store.getPayment(paymentKey);
    if (payment === undefined) throw notFound('Payment', paymentKey);
    return payment;
  }

  /**
   * Confirms a READY payment (Toss Payments' confirm): `X-Sim-Scenario` decides when given
   * (`delay`, named or picked by a `mix`, answers after DEFAULT_DELAY_DELAY_MS on the clock, approved), else the outcome the
   * card rules planned; a fault rule's `outcome` (`request.forced`) beats both (`decidedBy: rule`). Approved: payment
   * APPROVED, order PAID. Declined: PAY_002 with the failure code, payment FAILED (the order stays
   * PENDING for another payment).
   */
  async confirmPayment(input: ConfirmInput, request: OutcomeRequest = {}): Promise<{ payment: Payment; order: Order }> {
    const { store, clock, ids, settings } = this.#deps;
    const payment = await store.getPayment(input.paymentKey);
    // Checked before any delay: a confirm that cannot succeed answers at once.
    if (payment === undefined) throw notFound('Payment', input.paymentKey);
    let decision: ConfirmDecision;
    const { scenario, forced } = request;
    const drawn: number[] = [];
    if (scenario === undefined) {
      const planned = forced === undefined ? payment.planned : forcedOutcome(forced);
      decision = { ...planned, decidedBy: forced !== undefined ? 'rule' : payment.method === 'CARD' ? 'card' : 'approve' };
    } else {
      // A scenario draws (random, mix) and may wait (delay): a confirm the store would refuse is refused
      // first, at once and drawing nothing, as the store would (before 2026-12-07 it drew, and waited
      // out a delay, then was refused: a user test); the store checks again as it confirms.
      const refusal = confirmRefusal(input, payment, await store.getOrder(payment.orderId));
      if (refusal !== undefined) throw refused(input, refusal);
      const decided = decide({ scenario, forced }, settings.scenarios, this.#random.noting(drawn), clock.now());
      decision = { ...decided.outcome, decidedBy: forced !== undefined ? 'rule' : decided.source };
      if (decided.delayed && decided.delayMs > 0) await new Promise<void>((resolve) => clock.schedule(decided.delayMs, resolve));
    }
    const outcome = await store.confirmPayment({ ...input, decision }, stampOf(ids, clock.now()));
    switch (outcome.kind) {
      case 'not_found':
      case 'order_mismatch':
      case 'amount_mismatch':
      case 'already_processed':
      case 'order_state':
        // Refused after all (it changed meanwhile): its draws go back, as it decided no payment.
        this.#random.giveBack(drawn);
        throw refused(input, outcome);
      case 'failed':
        markApplied(forced);
        this.#changed();
        throw new FluxPayError('PAY_002', `Payment approval failed: ${outcome.payment.failureCode ?? 'declined'}.`);
      case 'approved':
        markApplied(forced);
        this.#changed();
        return { payment: outcome.payment, order: outcome.order };
    }
  }

  // ── credits ────────────────────────────────────────────────────────────────────────────────

  balance(userId: string): Promise<number> {
    return this.#deps.store.balance(userId);
  }

  async chargeCredits(userId: string, orderId: string): Promise<{ order: Order; transaction: CreditTransaction; balance: number }> {
    const { store, clock, ids } = this.#deps;
    const outcome = await store.chargeCredits(userId, orderId, stampOf(ids, clock.now()));
    switch (outcome.kind) {
      case 'not_found':
        throw notFound('Order', orderId, userId);
      case 'not_charge_order':
        throw new FluxPayError('PAY_004', `Order ${orderId} is not a credit charge (metadata.kind is not CREDIT_CHARGE).`);
      case 'already_charged':
        throw new FluxPayError('PAY_003', `Order ${orderId} was already charged: ${outcome.order.chargedCredits ?? 0} credits.`);
      case 'order_state':
        if (outcome.order.status === 'PAID' && outcome.order.sagaId !== null) {
          throw new FluxPayError('PAY_004', `Order ${orderId} is held by usage saga ${outcome.order.sagaId}; credits are charged from a PAID order that no usage saga holds.`);
        }
        throw new FluxPayError('PAY_004', `Order ${orderId} is ${outcome.order.status}; credits are charged from a PAID order.`);
      case 'users_full':
        throw creditUserLimit(outcome.max);
      case 'charged':
        this.#changed();
        return outcome;
    }
  }

  /**
   * The price of a use: `amount`, else the service's creditsPerUse from the billing policy.
   * `field`: the request's field that gives the price instead (`credits` in a usage event), for the refusal.
   */
  priceOf(serviceId: string, amount: number | undefined, field = 'amount'): number {
    if (amount !== undefined) return amount;
    const price = priceOf(this.#deps.settings.policy, serviceId);
    if (price === undefined) throw invalid('serviceId', `${serviceId} has no price in the billing policy; send ${field}`);
    return price;
  }

  async useCredits(input: { userId: string; serviceId: string; usageId: string; amount?: number | undefined }): Promise<{ usage: CreditUsage; balance: number }> {
    const { store, clock, ids } = this.#deps;
    const amount = this.priceOf(input.serviceId, input.amount);
    const outcome = await store.useCredits({ userId: input.userId, serviceId: input.serviceId, usageId: input.usageId, amount, creditUsageId: ids('cu') }, stampOf(ids, clock.now()));
    switch (outcome.kind) {
      case 'duplicate':
        throw new FluxPayError('PAY_003', `Usage ${input.usageId} of user ${input.userId} was already processed (${outcome.usage.creditUsageId}, ${outcome.usage.amount} credits, ${outcome.usage.status}).`);
      case 'insufficient':
        throw new FluxPayError('PAY_001', `Insufficient credit balance: ${outcome.balance}, needed ${outcome.needed}.`);
      case 'full':
        throw storeFull('fluxpay');
      case 'deducted':
        this.#changed();
        return { usage: outcome.usage, balance: outcome.balance };
    }
  }

  async refundCredits(userId: string, usageId: string): Promise<{ usage: CreditUsage; balance: number }> {
    const { store, clock, ids } = this.#deps;
    const outcome = await store.refundCredits(userId, usageId, stampOf(ids, clock.now()));
    switch (outcome.kind) {
      case 'not_found':
        throw notFound('Usage', usageId, userId);
      case 'already_refunded':
        throw new FluxPayError('PAY_003', `Usage ${usageId} was already refunded.`);
      case 'saga_held':
        // Refunded here, a saga completed afterwards would keep the usage delivered and its credits
        // given back (the reconciliation's "COMPLETED, but its usage is REFUNDED"), and compensated it
        // would skip its own restore: the saga alone ends its usage, either way.
        throw new FluxPayError('PAY_004', `Usage ${usageId} of user ${userId} belongs to saga ${outcome.usage.sagaId}: its credits are given back by the saga's compensation (send service.usage.failed), not by a refund.`);
      case 'refunded':
        this.#changed();
        return { usage: outcome.usage, balance: outcome.balance };
    }
  }

  transactions(userId: string, page: { cursor?: string | undefined; limit: number }): Promise<Page<CreditTransaction>> {
    return this.#deps.store.transactions(userId, page);
  }

  /** The user's credits deducted minus refunded: of all time, and since `since` by the credit transactions held (FLUXPAY_TTL_MS, FLUXPAY_MAX_RECORDS). */
  creditsUsed(userId: string, since: number): Promise<CreditsUsed> {
    return this.#deps.store.creditsUsed(userId, since);
  }

  // ── usage events and sagas ─────────────────────────────────────────────────────────────────

  /** A client service's usage event (document 002's `service.usage.*`), de-duplicated by eventId. */
  handleEvent(event: UsageEvent): Promise<EventResult> {
    return this.#usageEvents.handle(event);
  }

  async getSaga(sagaId: string): Promise<Saga> {
    const saga = await this.#deps.store.getSaga(sagaId);
    if (saga === undefined) throw notFound('Saga', sagaId);
    return saga;
  }

  // ── outbox, subscriptions, reconciliation ──────────────────────────────────────────────────

  listOutbox(query: OutboxQuery): Promise<Page<OutboxEvent>> {
    return this.#deps.store.listOutbox(query);
  }

  async subscribe(url: string, events: readonly string[]): Promise<WebhookSubscription> {
    const { subscriptions, clock, ids } = this.#deps;
    const unknown = events.find((e) => !(OUTBOX_EVENT_TYPES as readonly string[]).includes(e));
    if (unknown !== undefined) throw invalid('events', `${unknown} is not an event FluxPay sends (${OUTBOX_EVENT_TYPES.join(', ')})`);
    const added = await subscriptions.add({ subscriptionId: ids('whs'), url, events: Object.freeze([...new Set(events)]), createdAt: clock.now() });
    // Not a 503 STORE_FULL: subscriptions never expire, so only a DELETE makes room and a retry alone never succeeds.
    if (added.kind === 'full') throw subscriptionLimit(this.#deps.settings.maxSubscriptions);
    return added.record;
  }

  listSubscriptions(): Promise<WebhookSubscription[]> {
    return this.#deps.subscriptions.list();
  }

  async getSubscription(subscriptionId: string): Promise<WebhookSubscription> {
    const found = await this.#deps.subscriptions.get(subscriptionId);
    if (found === undefined) throw notFound('Webhook subscription', subscriptionId);
    return found;
  }

  /**
   * Removes a webhook subscription (one store call) and answers it as it was; COMMON_404 when there
   * is none. Events the relay publishes afterwards no longer go to it (it lists the subscribers at
   * each publication); deliveries already handed to the dispatcher keep going.
   */
  async unsubscribe(subscriptionId: string): Promise<WebhookSubscription> {
    const removed = await this.#deps.subscriptions.remove(subscriptionId);
    if (removed === undefined) throw notFound('Webhook subscription', subscriptionId);
    return removed;
  }

  /** `subscriptions`: read after this store's snapshot (see reconcile.ts). */
  async reconcile(subscriptions?: () => Promise<readonly SubscriptionRecord[]>): Promise<ReconciliationReport> {
    const snapshot = await this.#deps.store.snapshot();
    return reconcile(snapshot, subscriptions === undefined ? [] : await subscriptions());
  }

  #changed(): void {
    this.#deps.relay.kick();
  }
}

/** The path (`metadata.a.0`) of the first number in `value` that is not finite, or undefined. */
function nonFinitePath(value: unknown, path: string): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const found = nonFinitePath(inner, `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

type ConfirmRefusal = Extract<ConfirmOutcome, { kind: 'not_found' | 'order_mismatch' | 'amount_mismatch' | 'already_processed' | 'order_state' }>;

/**
 * Why the store would refuse to confirm `payment` for `input`, checked in the store's order (its
 * confirmPayment): undefined when it would confirm it. `order` is the payment's, if stored.
 */
function confirmRefusal(input: ConfirmInput, payment: Payment, order: Order | undefined): ConfirmRefusal | undefined {
  if (payment.orderId !== input.orderId) return { kind: 'order_mismatch', payment };
  if (order === undefined) return { kind: 'not_found' };
  if (input.amount !== order.amount) return { kind: 'amount_mismatch', payment, order };
  if (payment.status !== 'READY') return { kind: 'already_processed', payment };
  if (order.status !== 'PENDING') return { kind: 'order_state', payment, order };
  return undefined;
}

/** A refused confirm's error: COMMON_404, COMMON_400 (`orderId`), PAY_005, PAY_003 or PAY_004. */
function refused(input: ConfirmInput, refusal: ConfirmRefusal): Error {
  switch (refusal.kind) {
    case 'not_found':
      return notFound('Payment', input.paymentKey);
    case 'order_mismatch':
      return invalid('orderId', `does not match payment ${input.paymentKey}`);
    case 'amount_mismatch':
      return new FluxPayError('PAY_005', `amount ${input.amount} does not match order ${refusal.order.orderId}'s amount ${refusal.order.amount}.`);
    case 'already_processed': {
      const p = refusal.payment;
      return new FluxPayError('PAY_003', `Payment ${p.paymentKey} was already processed: ${p.status}${p.failureCode === null ? '' : ` (${p.failureCode})`}, ${p.method}, amount ${p.amount} ${p.currency}, order ${p.orderId}.`);
    }
    case 'order_state':
      return new FluxPayError('PAY_004', `Order ${refusal.order.orderId} is ${refusal.order.status}; only a PENDING order can be paid.`);
  }
}
