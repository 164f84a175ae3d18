import { DeferredTraces } from '../../trace-context.ts';
import type { IdFactory } from '../ids.ts';
import type { DecisionSource } from '../scenario.ts';
import type { SubscriptionRecord } from '../subscriptions/ports.ts';

/**
 * FluxPay's records as plain data (source document 002): orders, PG payments (in the style of
 * Toss Payments), prepaid credits and their usages, usage sagas and the outbox.
 *
 * Lifecycles:
 * - Order: PENDING → PAID → COMPLETED | CANCELLED (CANCELLED also straight from PENDING).
 * - Payment: READY → APPROVED → CONFIRMED | CANCELLED (refunded); READY → FAILED.
 *   APPROVED is "the money is collected"; CONFIRMED when its order completes; CANCELLED when the
 *   order is cancelled after payment (by hand or by a saga's compensation).
 * - Credit usage: DEDUCTED → REFUNDED.
 * - Saga: RUNNING → COMPLETED, or RUNNING → COMPENSATING → COMPENSATED.
 *
 * Card data never enters a record (document 002: "결제 민감 정보 암호화 필수", PCI-DSS): the
 * outcome the card rules give is planned when the payment is created, and only the last four
 * digits are kept.
 * @see issue 11, ../../../../shared/seeds/002_38de3c186cddda84.txt
 */

export const ORDER_STATUSES = ['PENDING', 'PAID', 'COMPLETED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const PAYMENT_STATUSES = ['READY', 'APPROVED', 'CONFIRMED', 'FAILED', 'CANCELLED'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const PAYMENT_METHODS = ['CARD', 'EASY_PAY'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

export const USAGE_STATUSES = ['DEDUCTED', 'REFUNDED'] as const;
export type UsageStatus = (typeof USAGE_STATUSES)[number];

export const SAGA_STATUSES = ['RUNNING', 'COMPLETED', 'COMPENSATING', 'COMPENSATED'] as const;
export type SagaStatus = (typeof SAGA_STATUSES)[number];

/** `metadata.kind` of an order that buys credits (`POST /api/v1/credits/charge`). */
export const CREDIT_CHARGE_KIND = 'CREDIT_CHARGE';

/** Ids: a prefix and a ULID. `tx_` names a ledger transaction (a credit transaction is one). */
export type FluxPayIdPrefix = 'ord' | 'pk' | 'cu' | 'saga' | 'evt' | 'tx' | 'whs' | 'sub' | 'inv';
export type FluxPayIds = (prefix: FluxPayIdPrefix) => string;

/** The app's monotonic id factory, for FluxPay's prefixes. */
export function fluxPayIds(ids: IdFactory): FluxPayIds {
  return ids;
}

export type Metadata = Readonly<Record<string, unknown>>;

export interface Order {
  orderId: string;
  userId: string;
  serviceId: string;
  orderName: string;
  amount: number;
  currency: string;
  metadata: Metadata | null;
  status: OrderStatus;
  /** The payment that paid it; null until PAID. */
  paymentKey: string | null;
  /** The saga that holds it (a usage paid by this order); null when none. */
  sagaId: string | null;
  /** Credits added by `POST /credits/charge` (CREDIT_CHARGE orders); null until charged. */
  chargedCredits: number | null;
  cancelReason: string | null;
  createdAt: number;
  updatedAt: number;
  paidAt: number | null;
  completedAt: number | null;
  cancelledAt: number | null;
}

export interface CardSummary {
  last4: string;
  expMonth: number | null;
  expYear: number | null;
}

/** What decides a payment: a scenario, the card rules, or a fault rule's `outcome` (issue 15), which beats both. */
export type PaymentDecisionSource = DecisionSource | 'rule';

export interface Payment {
  paymentKey: string;
  orderId: string;
  userId: string;
  amount: number;
  currency: string;
  method: PaymentMethod;
  card: CardSummary | null;
  easyPay: { provider: string } | null;
  status: PaymentStatus;
  /** Why it failed (`card_declined`, `DECLINE_2`, …); null otherwise. */
  failureCode: string | null;
  /** What decided the outcome: a fault rule's `outcome` (`rule`), else `X-Sim-Scenario`, else the card rules (`card`; `approve` for EASY_PAY); null until decided. */
  decidedBy: PaymentDecisionSource | null;
  /** The outcome the card rules gave at creation (applied at confirm unless `X-Sim-Scenario` says otherwise). Never shown. */
  planned: Readonly<{ status: 'APPROVED'; failureCode: null } | { status: 'FAILED'; failureCode: string }>;
  createdAt: number;
  updatedAt: number;
  approvedAt: number | null;
  confirmedAt: number | null;
  failedAt: number | null;
  cancelledAt: number | null;
}

export interface CreditUsage {
  /** `cu_<ULID>` */
  creditUsageId: string;
  /** The client's id of the usage: one deduction per user and usageId. */
  usageId: string;
  userId: string;
  serviceId: string;
  amount: number;
  status: UsageStatus;
  /** The saga that deducted it; null for `POST /credits/use`. */
  sagaId: string | null;
  createdAt: number;
  refundedAt: number | null;
}

export const CREDIT_TRANSACTION_TYPES = ['CHARGE', 'USE', 'REFUND'] as const;
export type CreditTransactionType = (typeof CREDIT_TRANSACTION_TYPES)[number];

/** One movement of a user's credits; it is also the ledger transaction that records it (same id). */
export interface CreditTransaction {
  /** `tx_<ULID>` */
  transactionId: string;
  userId: string;
  type: CreditTransactionType;
  /** Credits moved, always positive; `type` gives the direction. */
  amount: number;
  balanceAfter: number;
  orderId: string | null;
  usageId: string | null;
  serviceId: string | null;
  createdAt: number;
}

export const SAGA_STEPS = ['ORDER_RESERVED', 'CREDITS_DEDUCTED', 'ORDER_COMPLETED', 'CREDITS_RESTORED', 'PAYMENT_CANCELLED', 'ORDER_CANCELLED'] as const;
export type SagaStepName = (typeof SAGA_STEPS)[number];

/** The forward steps, in order, and the compensations, in the order they run (the reverse of what they undo). */
export const FORWARD_STEPS: readonly SagaStepName[] = ['ORDER_RESERVED', 'CREDITS_DEDUCTED'];
export const COMPENSATIONS: readonly SagaStepName[] = ['CREDITS_RESTORED', 'PAYMENT_CANCELLED', 'ORDER_CANCELLED'];

export interface SagaStep {
  step: SagaStepName;
  kind: 'ACTION' | 'COMPENSATION';
  status: 'SUCCEEDED' | 'FAILED' | 'SKIPPED';
  /** Epoch ms. */
  at: number;
  /** For FAILED: the code (`PAY_001`, `PAY_004`, …); for SKIPPED: why. */
  reason: string | null;
}

export interface Saga {
  /** `saga_<ULID>` */
  sagaId: string;
  /** The `service.usage.requested` event that started it. */
  eventId: string;
  userId: string;
  serviceId: string;
  usageId: string;
  orderId: string | null;
  /** Credits to deduct; null when the usage is paid by its order alone. */
  credits: number | null;
  status: SagaStatus;
  /** The forward steps this saga runs (ORDER_RESERVED with an order, CREDITS_DEDUCTED with credits). */
  plan: readonly SagaStepName[];
  steps: SagaStep[];
  /** Why it compensates: `service.usage.failed`, `timeout`, or the code of the step that failed. */
  failureReason: string | null;
  /** When it compensates unless completed (FLUXPAY_USAGE_TIMEOUT_MS after the start). */
  deadlineAt: number;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
}

export const USAGE_EVENT_TYPES = ['service.usage.requested', 'service.usage.completed', 'service.usage.failed'] as const;
export type UsageEventType = (typeof USAGE_EVENT_TYPES)[number];

/** An event a client service reported (`POST /api/v1/events`), kept to de-duplicate by eventId. */
export interface InboundEvent {
  eventId: string;
  type: UsageEventType;
  userId: string;
  usageId: string;
  /** A digest of the whole event: the same eventId with another body is refused. */
  fingerprint: string;
  sagaId: string | null;
  receivedAt: number;
}

export const OUTBOX_EVENT_TYPES = [
  'payment.approved',
  'payment.failed',
  'credit.charged',
  'credit.deducted',
  'credit.refunded',
  'order.completed',
  'order.cancelled',
  // Billing subscriptions (issue 12): document 002 names `subscription.activated` and `subscription.expired`.
  'subscription.activated',
  'subscription.renewed',
  'subscription.past_due',
  'subscription.canceled',
  'subscription.plan_changed',
  'subscription.expired',
] as const;
export type OutboxEventType = (typeof OUTBOX_EVENT_TYPES)[number];

export type OutboxPayload =
  | { kind: 'payment'; payment: Payment }
  | { kind: 'order'; order: Order; payment: Payment | null }
  | { kind: 'credit'; transaction: CreditTransaction; usage: CreditUsage | null }
  | { kind: 'subscription'; subscription: SubscriptionRecord };

/**
 * The orders an outbox event is about, from its payload alone (so a store indexes the event under
 * them when it writes it): a payment's order, an order event's order, the order a credit charge
 * bought (credit.deducted and credit.refunded name none: a usage is not an order), and the orders
 * of the invoices a subscription event's record carries (the newest MAX_INVOICES).
 */
export function outboxOrderIds(payload: OutboxPayload): string[] {
  switch (payload.kind) {
    case 'payment':
      return [payload.payment.orderId];
    case 'order':
      return [payload.order.orderId];
    case 'credit':
      return payload.transaction.orderId === null ? [] : [payload.transaction.orderId];
    case 'subscription':
      return [...new Set(payload.subscription.invoices.map((invoice) => invoice.orderId))];
  }
}

/** An event written with the state change it reports, published later by the relay. */
export interface OutboxEvent {
  /** `evt_<ULID>` */
  eventId: string;
  eventType: OutboxEventType;
  /** `order:<id>`, `payment:<key>`, `credit:<userId>`, `subscription:<id>`: events of one aggregate are published in the order written. */
  aggregate: string;
  /** The store's write order, from 1: the relay publishes in this order. */
  sequence: number;
  status: 'PENDING' | 'PUBLISHED';
  occurredAt: number;
  publishedAt: number | null;
  payload: OutboxPayload;
}

/** What a store operation needs besides its input: the time, and ids for the events and the ledger transaction it may write. */
export interface Stamp {
  now: number;
  /** Ids for the events an operation writes (at most three). */
  eventIds: readonly string[];
  /** Id of the ledger transaction an operation writes (at most one). */
  transactionId: string;
}

export function stampOf(ids: FluxPayIds, now: number): Stamp {
  const eventIds = [ids('evt'), ids('evt'), ids('evt')];
  // The events the operation writes are published by the relay later, in its own run: in this trace.
  OUTBOX_TRACES.capture(...eventIds);
  return { now, eventIds, transactionId: ids('tx') };
}

/**
 * The trace of each outbox event this process wrote (an event's record carries none), until the
 * relay publishes it (see trace-context.ts): an event another replica publishes, or an id the
 * operation did not use, has none there and ages out of the bound.
 */
export const OUTBOX_TRACES = new DeferredTraces(30_000);

export function copyOrder(order: Order): Order {
  return { ...order };
}

export function copyPayment(payment: Payment): Payment {
  return { ...payment, card: payment.card === null ? null : { ...payment.card }, easyPay: payment.easyPay === null ? null : { ...payment.easyPay } };
}

export function copySaga(saga: Saga): Saga {
  return { ...saga, steps: saga.steps.map((s) => ({ ...s })) };
}

/** Whether a saga has a step that succeeded. */
export function sagaDid(saga: Pick<Saga, 'steps'>, step: SagaStepName): boolean {
  return saga.steps.some((s) => s.step === step && s.status === 'SUCCEEDED');
}

/** Whether a saga's step is over (succeeded or skipped): it is never run again. */
export function sagaSettled(saga: Pick<Saga, 'steps'>, step: SagaStepName): boolean {
  return saga.steps.some((s) => s.step === step && s.status !== 'FAILED');
}

/**
 * Whether an end reported for a saga that has ended contradicts how it ended: a completion of a
 * saga COMPENSATING or COMPENSATED (its charge undone), a failure of a COMPLETED one (its charge
 * kept). The outcome never changes once decided (COMPENSATING only goes on to COMPENSATED).
 */
export function endContradicts(to: 'COMPLETED' | 'COMPENSATING', status: SagaStatus): boolean {
  if (status === 'RUNNING') return false;
  return to === 'COMPLETED' ? status !== 'COMPLETED' : status === 'COMPLETED';
}

/** The compensations a compensating saga still has to run, in order. */
export function compensationsLeft(saga: Pick<Saga, 'steps' | 'orderId'>): SagaStepName[] {
  return COMPENSATIONS.filter((step) => !sagaSettled(saga, step));
}

/** The credits a CREDIT_CHARGE order adds: `metadata.credits` when it is a positive whole number, else its amount. */
export function chargeableCredits(order: Pick<Order, 'amount' | 'metadata'>): number {
  const credits = order.metadata?.credits;
  return typeof credits === 'number' && Number.isSafeInteger(credits) && credits > 0 ? credits : order.amount;
}

export function isCreditChargeOrder(order: Pick<Order, 'metadata'>): boolean {
  return order.metadata?.kind === CREDIT_CHARGE_KIND;
}
