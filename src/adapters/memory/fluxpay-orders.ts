import { copyOrder, copyPayment, type Order, type OrderStatus, type Payment, type Stamp } from '../../core/fluxpay/model.ts';
import type { OrderCounts, OrderQuery } from '../../core/fluxpay/ports.ts';
import type { Page } from '../../core/ports.ts';
import { EvictionQueue } from './eviction-queue.ts';
import type { MemoryFluxPayLedger } from './fluxpay-ledger.ts';
import { IdList, pageOf } from './id-list.ts';
import { KeyedIds } from './keyed-ids.ts';

/**
 * FluxPay's orders and their payments in one process's memory, changed by MemoryFluxPayStore inside
 * its own synchronous steps (./fluxpay.ts), which checks what a change may do and writes its outbox
 * events; this part keeps the records, their indexes (all orders and each user's, listed newest
 * first; the payments of each order), the counts per status and the eviction order, and posts a
 * payment's money to the ledger (./fluxpay-ledger.ts, which keeps the postings).
 *
 * Records handed out by `get` and `payment` are the stored ones, for the store to change within its
 * step (through `setStatus` for the status, so the counts follow); the store copies them out.
 * Bounds: an order joins the eviction queue once it is final and no running saga holds it
 * (`finished`); it leaves with its payments and its ledger postings (their net kept per currency).
 * Orders and payments are bounded each (`room`, `paymentRoom`): a PENDING order takes any number
 * of payments (a declined one leaves it PENDING), which must not grow without limit.
 */
export class MemoryOrderBook {
  readonly #ledger: MemoryFluxPayLedger;
  readonly #maxOrders: number;
  readonly #orders = new Map<string, Order>();
  readonly #all = new IdList();
  /** Each user's orders; a user leaves with the last one held. */
  readonly #byUser = new KeyedIds();
  readonly #payments = new Map<string, Payment>();
  readonly #paymentsByOrder = new Map<string, string[]>();
  /** Stored orders per status, kept as they change (setStatus). */
  readonly #counts: OrderCounts = { PENDING: 0, PAID: 0, COMPLETED: 0, CANCELLED: 0, cancelledAfterPayment: 0 };
  readonly #finished = new EvictionQueue(
    (id: string) => this.#orders.get(id),
    (order: Order) => order.createdAt,
    (order: Order) => this.#remove(order),
  );
  readonly #isLive = (id: string): boolean => this.#orders.has(id);

  /** `maxOrders`: the bound of orders held, and of payments held. */
  constructor(ledger: MemoryFluxPayLedger, maxOrders: number) {
    this.#ledger = ledger;
    this.#maxOrders = maxOrders;
  }

  get size(): number {
    return this.#orders.size;
  }

  /** Payments held (bounded by `maxOrders` too). */
  get paymentCount(): number {
    return this.#payments.size;
  }

  /** Whether one more order fits, evicting the oldest finished one at the bound. */
  room(): boolean {
    return this.#orders.size < this.#maxOrders || this.#finished.evictOne();
  }

  /** Stores a copy of `order` (the caller has made room); answers the stored record. */
  insert(order: Order): Order {
    const stored = copyOrder(order);
    this.#orders.set(stored.orderId, stored);
    this.#count(stored, 1);
    this.#all.insert(stored.orderId);
    this.#byUser.insert(stored.userId, stored.orderId);
    return stored;
  }

  get(orderId: string): Order | undefined {
    return this.#orders.get(orderId);
  }

  list(query: OrderQuery): Page<Order> {
    const list = query.userId === undefined ? this.#all : this.#byUser.get(query.userId);
    if (list === undefined) return { data: [], nextCursor: null };
    const { status } = query;
    return pageOf(
      list,
      query,
      (id) => {
        const order = this.#orders.get(id);
        return order === undefined ? undefined : { id, order };
      },
      ({ order }) => copyOrder(order),
      status === undefined ? undefined : ({ order }) => order.status === status,
    );
  }

  counts(): OrderCounts {
    return { ...this.#counts };
  }

  setStatus(order: Order, status: OrderStatus): void {
    this.#count(order, -1);
    order.status = status;
    this.#count(order, 1);
  }

  /**
   * Whether one more payment fits: payments held count against the same bound as orders (each), so
   * at the bound the oldest finished orders go, with their payments, until one fits; false when only
   * open orders hold payments. The payments held are the map's size: no scan below the bound.
   */
  paymentRoom(): boolean {
    while (this.#payments.size >= this.#maxOrders) if (!this.#finished.evictOne()) return false;
    return true;
  }

  /** Stores a copy of `payment` under its order (which the caller has found PENDING and made room for); answers the stored record. */
  insertPayment(payment: Payment): Payment {
    const stored = copyPayment(payment);
    this.#payments.set(stored.paymentKey, stored);
    const keys = this.#paymentsByOrder.get(stored.orderId);
    if (keys === undefined) this.#paymentsByOrder.set(stored.orderId, [stored.paymentKey]);
    else keys.push(stored.paymentKey);
    return stored;
  }

  payment(paymentKey: string | null): Payment | undefined {
    return paymentKey === null ? undefined : this.#payments.get(paymentKey);
  }

  /** An approved payment: the order PAID by it, and the money's ledger posting. */
  pay(order: Order, payment: Payment, stamp: Stamp): void {
    const { now } = stamp;
    payment.status = 'APPROVED';
    payment.approvedAt = now;
    this.setStatus(order, 'PAID');
    order.paymentKey = payment.paymentKey;
    order.paidAt = now;
    order.updatedAt = now;
    this.#ledger.post('PAYMENT_APPROVED', stamp.transactionId, order.orderId, order.amount, order.currency, now);
  }

  /** Order → COMPLETED, its approved payment → CONFIRMED, the order queued for eviction unless a saga holds it; answers the order's payment. */
  complete(order: Order, now: number): Payment | null {
    this.setStatus(order, 'COMPLETED');
    order.completedAt = now;
    order.updatedAt = now;
    const payment = this.payment(order.paymentKey);
    if (payment !== undefined && payment.status === 'APPROVED') {
      payment.status = 'CONFIRMED';
      payment.confirmedAt = now;
      payment.updatedAt = now;
    }
    if (order.sagaId === null) this.#finished.push(order.orderId);
    return payment ?? null;
  }

  /**
   * Order → CANCELLED, an approved payment of it refunded (CANCELLED, ledger reversed); answers the
   * order's payment. `held`: a running saga holds the order, which then stays until the saga ends
   * (no operation does so today: a cancel refuses an order a saga holds, and a saga cancels its order
   * only as a compensation, once it is no longer running).
   */
  cancel(order: Order, reason: string | null, stamp: Stamp, held: boolean): Payment | null {
    const { now } = stamp;
    const payment = this.payment(order.paymentKey);
    if (payment?.status === 'APPROVED') this.refund(order, payment, stamp.transactionId, now);
    this.setStatus(order, 'CANCELLED');
    order.cancelReason = reason;
    order.cancelledAt = now;
    order.updatedAt = now;
    if (!held) this.#finished.push(order.orderId);
    return payment ?? null;
  }

  /** An approved payment → CANCELLED, with the ledger's reversal of its money. */
  refund(order: Order, payment: Payment, transactionId: string, now: number): void {
    payment.status = 'CANCELLED';
    payment.cancelledAt = now;
    payment.updatedAt = now;
    this.#ledger.post('PAYMENT_CANCELLED', transactionId, order.orderId, order.amount, order.currency, now);
  }

  /** A final order that no running saga holds any more may now be evicted. */
  finished(orderId: string): void {
    this.#finished.push(orderId);
  }

  /** Evicts finished orders created at or before `cutoff`; returns how many. */
  sweep(cutoff: number): number {
    return this.#finished.sweep(cutoff);
  }

  /** Every order and payment (copies), for FluxPaySnapshot. */
  snapshot(): { orders: Order[]; payments: Payment[] } {
    return { orders: [...this.#orders.values()].map(copyOrder), payments: [...this.#payments.values()].map(copyPayment) };
  }

  #count(order: Order, by: 1 | -1): void {
    this.#counts[order.status] += by;
    if (order.status === 'CANCELLED' && order.paymentKey !== null) this.#counts.cancelledAfterPayment += by;
  }

  #remove(order: Order): void {
    this.#orders.delete(order.orderId);
    this.#count(order, -1);
    this.#all.markDead(this.#isLive);
    this.#byUser.markDead(order.userId, this.#isLive);
    for (const key of this.#paymentsByOrder.get(order.orderId) ?? []) this.#payments.delete(key);
    this.#paymentsByOrder.delete(order.orderId);
    // Its money postings leave with it; their net is kept, so the ledger's totals still reconcile.
    this.#ledger.forgetOrder(order.orderId);
  }
}
