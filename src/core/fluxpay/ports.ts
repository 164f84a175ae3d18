import type { Page, PageQuery, StoreStats } from '../ports.ts';
import type { FluxPayAccountTotal, FluxPayTransaction } from './ledger.ts';
import type {
  CreditTransaction,
  CreditUsage,
  InboundEvent,
  Order,
  OrderStatus,
  OutboxEvent,
  Payment,
  Saga,
  SagaStepName,
  Stamp,
} from './model.ts';

/**
 * The store ports of FluxPay (issue 11), kept apart from src/core/ports.ts as the dialect's own.
 * The rules of src/core/ports.ts hold: each method is one atomic operation, records go in and
 * out as copies, stores are bounded and never evict unfinished work.
 *
 * FluxPay adds one rule, the transactional outbox: every operation that changes an order, a
 * payment or a credit balance writes, in the same step, the ledger transaction of the movement
 * and the outbox event that reports it (document 002: "Outbox 테이블에 이벤트 저장"). So a
 * change is never visible without its event and its postings, and an event is never written for
 * a change that did not happen. Saga steps are operations of the same port for the same reason:
 * a step, its effect and its events are one write.
 * @see issue 11 "Transactional outbox", DESIGN.md "Ports"
 */

export type CreateOutcome<T> = { kind: 'created'; record: T } | { kind: 'full' };

export interface OrderQuery extends PageQuery {
  userId?: string | undefined;
  status?: OrderStatus | undefined;
}

/** Stored orders by status, over all of them; `cancelledAfterPayment` is the part of `CANCELLED` that had been paid (its payment refunded). */
export type OrderCounts = Record<OrderStatus, number> & { cancelledAfterPayment: number };

export type CreatePaymentOutcome =
  | { kind: 'created'; payment: Payment }
  | { kind: 'order_not_found' }
  /** The order is not PENDING (paid, completed or cancelled already). */
  | { kind: 'order_state'; order: Order }
  | { kind: 'full' };

/** The outcome the confirm applies, decided by the scenario engine before the store step. */
export type ConfirmDecision = { status: 'APPROVED'; failureCode: null; decidedBy: Payment['decidedBy'] } | { status: 'FAILED'; failureCode: string; decidedBy: Payment['decidedBy'] };

export interface ConfirmInput {
  paymentKey: string;
  orderId: string;
  amount: number;
  decision: ConfirmDecision;
}

export type ConfirmOutcome =
  | { kind: 'approved'; payment: Payment; order: Order }
  | { kind: 'failed'; payment: Payment; order: Order }
  | { kind: 'not_found' }
  /** The payment belongs to another order. */
  | { kind: 'order_mismatch'; payment: Payment }
  | { kind: 'amount_mismatch'; payment: Payment; order: Order }
  /** The payment was decided already (PAY_003). */
  | { kind: 'already_processed'; payment: Payment }
  /** The order is not PENDING (PAY_004). */
  | { kind: 'order_state'; payment: Payment; order: Order };

export type CancelOrderOutcome =
  | { kind: 'cancelled'; order: Order; payment: Payment | null }
  | { kind: 'not_found' }
  | { kind: 'order_state'; order: Order }
  /** A usage saga holds the paid order (it is cancelled by that saga's compensation, if at all). */
  | { kind: 'in_use'; order: Order };

export type CompleteOrderOutcome = { kind: 'completed'; order: Order } | { kind: 'not_found' } | { kind: 'order_state'; order: Order };

/** FLUXPAY_MAX_CREDIT_USERS's default: users with a credit balance held at most (about 300 bytes each in memory). */
export const DEFAULT_MAX_CREDIT_USERS = 1_000_000;

export type ChargeOutcome =
  | { kind: 'charged'; order: Order; transaction: CreditTransaction; balance: number }
  | { kind: 'not_found' }
  | { kind: 'not_charge_order'; order: Order }
  | { kind: 'already_charged'; order: Order }
  | { kind: 'order_state'; order: Order }
  /** The user has no balance yet and FLUXPAY_MAX_CREDIT_USERS users have one (balances are never evicted); nothing changed. */
  | { kind: 'users_full'; order: Order; max: number };

export interface UseInput {
  userId: string;
  serviceId: string;
  usageId: string;
  amount: number;
  /** `cu_<ULID>` for the usage, when it is new. */
  creditUsageId: string;
}

export type UseOutcome =
  | { kind: 'deducted'; usage: CreditUsage; transaction: CreditTransaction; balance: number }
  /** The user has a usage with this usageId already (PAY_003); nothing changed. */
  | { kind: 'duplicate'; usage: CreditUsage }
  /** The balance is short (PAY_001); nothing changed. */
  | { kind: 'insufficient'; balance: number; needed: number }
  | { kind: 'full' };

export type RefundOutcome =
  | { kind: 'refunded'; usage: CreditUsage; transaction: CreditTransaction; balance: number }
  | { kind: 'not_found' }
  | { kind: 'already_refunded'; usage: CreditUsage }
  /** The usage is a saga's: only its compensation gives its credits back (a completed saga keeps them). */
  | { kind: 'saga_held'; usage: CreditUsage };

export type StartSagaOutcome =
  | { kind: 'started'; saga: Saga }
  /** The eventId was seen before with the same event: what it did. */
  | { kind: 'duplicate'; event: InboundEvent; saga: Saga | undefined }
  /** The eventId was seen before with another event. */
  | { kind: 'conflict'; event: InboundEvent }
  /** The user's usageId has a saga already (started by another event). */
  | { kind: 'usage_taken'; saga: Saga }
  | { kind: 'full' };

export type StepOutcome =
  /** The step ran now (or was skipped: it had nothing to do), and is recorded. */
  | { kind: 'done'; saga: Saga }
  /** The step was recorded before: nothing ran again. */
  | { kind: 'already'; saga: Saga }
  /** A forward step could not run (its reason is recorded; the saga is COMPENSATING). */
  | { kind: 'failed'; saga: Saga; reason: string }
  /** The saga is not in a state where this step runs (e.g. a forward step of a compensating saga). */
  | { kind: 'refused'; saga: Saga }
  | { kind: 'not_found' };

/** How a usage ends, reported by the client (`completed`, `failed`) or by the timeout. */
export type SagaResolution = { to: 'COMPLETED' } | { to: 'COMPENSATING'; reason: string };

export type ResolveOutcome =
  | { kind: 'resolved'; saga: Saga }
  | { kind: 'duplicate'; event: InboundEvent; saga: Saga | undefined }
  | { kind: 'conflict'; event: InboundEvent }
  | { kind: 'not_found' }
  /** The saga's forward steps are still running: it cannot complete yet. */
  | { kind: 'busy'; saga: Saga }
  /** Already COMPLETED, COMPENSATING or COMPENSATED, as the event (if any) says: nothing changed (the event is recorded). */
  | { kind: 'final'; saga: Saga }
  /**
   * The client's event contradicts how the saga ended (model.ts `endContradicts`: completed of a
   * saga COMPENSATING or COMPENSATED, failed of a COMPLETED one): nothing changed, and the event is
   * not recorded, so a repeat of it is answered so again. Decided in the same step as a resolution,
   * so of two contradicting events at once one resolves and the other is this.
   */
  | { kind: 'contradicted'; saga: Saga };

export interface OutboxQuery extends PageQuery {
  status?: OutboxEvent['status'] | undefined;
}

/** Everything the reconciliation compares, read in one step (so no change falls between two reads). */
export interface FluxPaySnapshot {
  orders: Order[];
  payments: Payment[];
  usages: CreditUsage[];
  sagas: Saga[];
  /** Every user's credit balance (balances are never evicted). */
  balances: Array<{ userId: string; balance: number }>;
  /** Per user: credits charged, used and refunded since the start (running totals, never evicted). */
  creditTotals: Array<{ userId: string; charged: number; used: number; refunded: number }>;
  accounts: FluxPayAccountTotal[];
  /** What evicted orders had posted, by currency: collected minus refunded. */
  evictedNetCollected: Record<string, number>;
  outbox: { pending: number; published: number };
}

/** A user's credit balance with its running totals (the console's credits panel). */
export interface CreditBalance {
  userId: string;
  balance: number;
  charged: number;
  used: number;
  refunded: number;
}

/** A user's net use of credits (deducted minus refunded): of all time, and since a time. */
export interface CreditsUsed {
  total: number;
  since: number;
}

export interface FluxPayStore {
  // ── orders and payments ──
  createOrder(order: Order): Promise<CreateOutcome<Order>>;
  getOrder(orderId: string): Promise<Order | undefined>;
  /** Newest first; with `userId`, that user's orders. */
  listOrders(query: OrderQuery): Promise<Page<Order>>;
  /** Orders by status (kept as they change: cheap). */
  orderCounts(): Promise<OrderCounts>;
  /** PENDING → CANCELLED; PAID → CANCELLED with its payment refunded (CANCELLED, ledger reversed), with `order.cancelled`. */
  cancelOrder(orderId: string, reason: string | null, stamp: Stamp): Promise<CancelOrderOutcome>;
  /** A READY payment of a PENDING order. */
  createPayment(payment: Payment): Promise<CreatePaymentOutcome>;
  getPayment(paymentKey: string): Promise<Payment | undefined>;
  /**
   * Applies the decision to a READY payment of a PENDING order whose amount matches, in one step:
   * approved (payment APPROVED, order PAID, ledger, `payment.approved`) or failed (payment FAILED,
   * `payment.failed`). Of concurrent confirms of one order, at most one approves.
   */
  confirmPayment(input: ConfirmInput, stamp: Stamp): Promise<ConfirmOutcome>;

  /** A PAID order that no saga holds and that buys no credits (a subscription's charge) → COMPLETED, its payment CONFIRMED, with `order.completed`. */
  completeOrder(orderId: string, stamp: Stamp): Promise<CompleteOrderOutcome>;

  // ── credits ──
  balance(userId: string): Promise<number>;
  /** A PAID CREDIT_CHARGE order of the user: its credits (`chargeableCredits`) added once, order COMPLETED, payment CONFIRMED, `credit.charged` and `order.completed`. */
  chargeCredits(userId: string, orderId: string, stamp: Stamp): Promise<ChargeOutcome>;
  /** Deducts once per user and usageId, never below zero, with `credit.deducted`. */
  useCredits(input: UseInput, stamp: Stamp): Promise<UseOutcome>;
  /** Restores a DEDUCTED usage once, with `credit.refunded`. */
  refundCredits(userId: string, usageId: string, stamp: Stamp): Promise<RefundOutcome>;
  /** A user's credit transactions, newest first. */
  transactions(userId: string, page: PageQuery): Promise<Page<CreditTransaction>>;
  /**
   * The user's credits deducted minus refunded, in one step and without walking the transactions
   * (a subscription's entitlements ask on every check): `total`, of all time (the running totals,
   * never evicted), and `since`, by the credit transactions held that were created at or after
   * `since` (what a walk of `transactions` back to it would sum). "After" is the order the store
   * wrote them in: one stamped earlier than a transaction written before it (a clock stepped back, a
   * replica's clock behind another's) counts as of that one. Transactions are evicted in that order
   * too, so those held are always the last ones written.
   */
  creditsUsed(userId: string, since: number): Promise<CreditsUsed>;
  /** The balances of the first `limit` users by id (of every user with one), and how many users have one; reads balances only, never the records. */
  creditBalances(limit: number): Promise<{ total: number; users: CreditBalance[] }>;

  // ── usage sagas ──
  /** The newest `limit` sagas, newest first, and how many sagas are held. */
  recentSagas(limit: number): Promise<{ total: number; sagas: Saga[] }>;
  /** Records the `service.usage.requested` event and creates its saga, in one step (de-duplicated by eventId). */
  startSaga(saga: Saga, event: InboundEvent): Promise<StartSagaOutcome>;
  getSaga(sagaId: string): Promise<Saga | undefined>;
  /** The saga of a user's usage. */
  sagaOfUsage(userId: string, usageId: string): Promise<Saga | undefined>;
  /**
   * Runs one step of a saga with its effect, its events and its record, in one step; idempotent
   * (a step recorded before is not run again). `creditUsageId` names the usage CREDITS_DEDUCTED makes.
   */
  runSagaStep(sagaId: string, step: SagaStepName, stamp: Stamp, creditUsageId: string): Promise<StepOutcome>;
  /**
   * Ends a RUNNING saga as the client reported (with its event, de-duplicated by eventId) or as
   * the timeout decided (no event). COMPLETED also completes the order and confirms its payment
   * (`order.completed`), in the same step.
   */
  resolveSaga(sagaId: string, resolution: SagaResolution, event: InboundEvent | null, stamp: Stamp): Promise<ResolveOutcome>;
  /** Events recorded by eventId (to answer a repeat). */
  inboundEvent(eventId: string): Promise<InboundEvent | undefined>;

  // ── outbox ──
  /** Pending events in write order, at most `limit`. */
  pendingOutbox(limit: number): Promise<OutboxEvent[]>;
  /** Marks events published (those still pending); returns how many it marked. */
  markPublished(eventIds: readonly string[], now: number): Promise<number>;
  /** Newest first; cursor is an eventId. */
  listOutbox(query: OutboxQuery): Promise<Page<OutboxEvent>>;
  /**
   * The events about one order (outboxOrderIds), read from an index the outbox keeps with each
   * write and loses with each event it drops (bound, TTL): the newest `limit` of them, oldest
   * first, and how many it holds for the order.
   */
  orderOutbox(orderId: string, limit: number): Promise<{ events: OutboxEvent[]; total: number }>;
  /** Pending events and when the oldest of them was written (for the publish-lag gauge). */
  outboxStats(): Promise<{ pending: number; oldestPendingAt: number | null; published: number }>;

  // ── ledger, reconciliation, bounds ──
  /** A reference's ledger transactions, in the order written. */
  ledger(reference: string): Promise<FluxPayTransaction[]>;
  snapshot(): Promise<FluxPaySnapshot>;
  /** Orders held, and their bound (FLUXPAY_MAX_RECORDS). */
  stats(): Promise<StoreStats>;
  /** Payments held, and their bound (FLUXPAY_MAX_RECORDS, the same as orders'). */
  paymentStats(): Promise<StoreStats>;
  /** Users with a credit balance, and their bound (FLUXPAY_MAX_CREDIT_USERS). */
  creditUserStats(): Promise<StoreStats>;
  /** Evicts finished records older than the TTL (orders with their payments, sagas, usages, events; published outbox events); returns how many. */
  sweep(now: number): Promise<number>;
}

export interface WebhookSubscription {
  /** `whs_<ULID>` (webhook subscription; `sub_` is a billing subscription) */
  subscriptionId: string;
  url: string;
  /** Event types it receives (empty: every type). */
  events: readonly string[];
  createdAt: number;
}

export interface FluxPaySubscriptionStore {
  /** Adds a subscription; full when the bound is reached (a removal makes room). */
  add(subscription: WebhookSubscription): Promise<CreateOutcome<WebhookSubscription>>;
  get(subscriptionId: string): Promise<WebhookSubscription | undefined>;
  /** In creation order. */
  list(): Promise<WebhookSubscription[]>;
  /** Removes a subscription in one step and answers it as it was; undefined when there is none (never was, or removed already). */
  remove(subscriptionId: string): Promise<WebhookSubscription | undefined>;
}
