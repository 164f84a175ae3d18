import { CREDIT_UNIT, type FluxPayAccount, type FluxPayAccountTotal } from './ledger.ts';
import type { Order, Payment, PaymentStatus } from './model.ts';
import type { FluxPaySnapshot } from './ports.ts';
import { MAX_INVOICES, type SubscriptionRecord } from '../subscriptions/ports.ts';

/**
 * The reconciliation: orders, payments, credits, sagas and the ledger compared with each other,
 * every disagreement listed. Document 002's target is "데이터 정합성 100% (주문-결제-크레딧 일치)":
 * after any run the list is empty. Pure: it reads one snapshot the store took in one step.
 *
 * What must hold:
 * - the ledger balances: in every unit, debits equal credits;
 * - CREDIT_LIABILITY (in CREDIT) equals the sum of users' balances, and no balance is negative;
 * - each user's balance equals charged − used + refunded;
 * - REVENUE (in CREDIT) equals credits used minus credits refunded; MERCHANT_BALANCE (in CREDIT)
 *   has issued exactly the credits charged;
 * - CUSTOMER_PAYMENTS (per currency) equals what held orders' payments collected and kept
 *   (APPROVED or CONFIRMED), plus the net of evicted orders, and MERCHANT_BALANCE owes the same;
 * - each order agrees with its payments: PENDING has none approved, PAID has its APPROVED payment,
 *   COMPLETED a CONFIRMED one (or none, never paid), CANCELLED none still collected; no order has
 *   more than one payment that was ever approved (a duplicate charge);
 * - each saga agrees with its order and usage: COMPLETED → order COMPLETED and usage DEDUCTED;
 *   COMPENSATED → order (if it reserved one) CANCELLED and usage (if it deducted) REFUNDED;
 * - billing subscriptions (issue 12) agree with their orders: a PAID invoice's order (while held)
 *   is PAID or COMPLETED for the invoice's amount, a DECLINED or REFUNDED one's is CANCELLED, and
 *   no COMPLETED subscription order lacks its PAID invoice (a charge collected for nothing).
 *   The subscriptions are read after the FluxPay snapshot: a subscription's order is completed
 *   only after the subscription recorded its invoice, so an order read COMPLETED has its invoice.
 * @see issue 11 "Transactional outbox and outbound events" (reconciliation)
 */

export interface Mismatch {
  /** What disagrees: `ledger`, `credits`, `order`, `payment`, `saga`. */
  kind: string;
  /** The record or account it is about. */
  subject: string;
  message: string;
}

export interface ReconciliationReport {
  consistent: boolean;
  orders: Record<Order['status'], number> & { total: number };
  payments: Record<PaymentStatus, number> & { total: number };
  credits: { users: number; totalBalance: number; charged: number; used: number; refunded: number };
  sagas: { total: number; running: number; completed: number; compensating: number; compensated: number };
  ledger: { accounts: FluxPayAccountTotal[]; debits: Record<string, number>; credits: Record<string, number> };
  /** Orders with more than one payment that was ever approved: must be 0 (document 002: "중복 결제 0건"). */
  duplicateCharges: number;
  outbox: { pending: number; published: number };
  subscriptions: { total: number; ACTIVE: number; PAST_DUE: number; CANCELED: number; EXPIRED: number; invoices: { PAID: number; DECLINED: number; REFUNDED: number } };
  mismatches: Mismatch[];
}

/** Payments whose money is (still) collected. */
const COLLECTED: ReadonlySet<PaymentStatus> = new Set(['APPROVED', 'CONFIRMED']);

function accountBalance(accounts: readonly FluxPayAccountTotal[], account: FluxPayAccount, unit: string): number {
  return accounts.find((a) => a.account === account && a.unit === unit)?.balance ?? 0;
}

export function reconcile(snapshot: FluxPaySnapshot, subscriptions: readonly SubscriptionRecord[] = []): ReconciliationReport {
  const mismatches: Mismatch[] = [];
  const miss = (kind: string, subject: string, message: string): void => void mismatches.push({ kind, subject, message });
  const { accounts } = snapshot;

  // The ledger balances in every unit.
  const debits: Record<string, number> = {};
  const credits: Record<string, number> = {};
  for (const a of accounts) {
    debits[a.unit] = (debits[a.unit] ?? 0) + a.debits;
    credits[a.unit] = (credits[a.unit] ?? 0) + a.credits;
  }
  for (const unit of Object.keys(debits)) {
    if (debits[unit] !== credits[unit]) miss('ledger', unit, `debits ${debits[unit]} ≠ credits ${credits[unit]} in ${unit}`);
  }

  // Credits: balances, their history, and the ledger's credit accounts.
  const totalsByUser = new Map(snapshot.creditTotals.map((t) => [t.userId, t]));
  let totalBalance = 0;
  for (const { userId, balance } of snapshot.balances) {
    totalBalance += balance;
    if (balance < 0) miss('credits', userId, `balance ${balance} is below zero`);
    const t = totalsByUser.get(userId);
    const expected = t === undefined ? 0 : t.charged - t.used + t.refunded;
    if (balance !== expected) miss('credits', userId, `balance ${balance} ≠ charged − used + refunded = ${expected}`);
  }
  const charged = snapshot.creditTotals.reduce((n, t) => n + t.charged, 0);
  const used = snapshot.creditTotals.reduce((n, t) => n + t.used, 0);
  const refunded = snapshot.creditTotals.reduce((n, t) => n + t.refunded, 0);
  const liability = -accountBalance(accounts, 'CREDIT_LIABILITY', CREDIT_UNIT);
  if (liability !== totalBalance) miss('ledger', 'CREDIT_LIABILITY', `credit liability ${liability} ≠ sum of balances ${totalBalance}`);
  const revenue = -accountBalance(accounts, 'REVENUE', CREDIT_UNIT);
  if (revenue !== used - refunded) miss('ledger', 'REVENUE', `revenue ${revenue} CREDIT ≠ used − refunded = ${used - refunded}`);
  const issued = accountBalance(accounts, 'MERCHANT_BALANCE', CREDIT_UNIT);
  if (issued !== charged) miss('ledger', 'MERCHANT_BALANCE', `credits issued ${issued} ≠ credits charged ${charged}`);

  // Orders and their payments.
  const paymentsByOrder = new Map<string, Payment[]>();
  for (const p of snapshot.payments) {
    const list = paymentsByOrder.get(p.orderId);
    if (list === undefined) paymentsByOrder.set(p.orderId, [p]);
    else list.push(p);
  }
  const ordersById = new Map(snapshot.orders.map((o) => [o.orderId, o]));
  const collected = new Map<string, number>(Object.entries(snapshot.evictedNetCollected));
  let duplicateCharges = 0;
  for (const order of snapshot.orders) {
    const payments = paymentsByOrder.get(order.orderId) ?? [];
    const everApproved = payments.filter((p) => p.approvedAt !== null);
    if (everApproved.length > 1) {
      duplicateCharges++;
      miss('order', order.orderId, `${everApproved.length} payments were approved for one order`);
    }
    for (const p of payments) {
      if (COLLECTED.has(p.status)) collected.set(order.currency, (collected.get(order.currency) ?? 0) + p.amount);
      if (p.amount !== order.amount) miss('payment', p.paymentKey, `amount ${p.amount} ≠ its order's ${order.amount}`);
    }
    const paid = order.paymentKey === null ? undefined : payments.find((p) => p.paymentKey === order.paymentKey);
    switch (order.status) {
      case 'PENDING':
        if (everApproved.length > 0) miss('order', order.orderId, 'PENDING, but a payment was approved');
        break;
      case 'PAID':
        if (paid?.status !== 'APPROVED') miss('order', order.orderId, `PAID, but its payment is ${paid?.status ?? 'missing'}`);
        break;
      case 'COMPLETED':
        if (paid?.status !== 'CONFIRMED') miss('order', order.orderId, `COMPLETED, but its payment is ${paid?.status ?? 'missing'}`);
        break;
      case 'CANCELLED':
        if (paid !== undefined && paid.status !== 'CANCELLED') miss('order', order.orderId, `CANCELLED, but its payment is ${paid.status}`);
        break;
    }
  }
  for (const p of snapshot.payments) if (!ordersById.has(p.orderId)) miss('payment', p.paymentKey, `its order ${p.orderId} is missing`);
  const currencies = new Set([...collected.keys(), ...accounts.filter((a) => a.unit !== CREDIT_UNIT).map((a) => a.unit)]);
  for (const currency of currencies) {
    const held = accountBalance(accounts, 'CUSTOMER_PAYMENTS', currency);
    const owed = -accountBalance(accounts, 'MERCHANT_BALANCE', currency);
    const expected = collected.get(currency) ?? 0;
    if (held !== expected) miss('ledger', `CUSTOMER_PAYMENTS ${currency}`, `customer payments ${held} ≠ payments collected ${expected}`);
    if (owed !== expected) miss('ledger', `MERCHANT_BALANCE ${currency}`, `merchant balance ${owed} ≠ payments collected ${expected}`);
  }

  // Sagas against their orders and usages.
  const usages = new Map(snapshot.usages.map((u) => [`${u.userId}\n${u.usageId}`, u]));
  const sagaCounts = { total: 0, running: 0, completed: 0, compensating: 0, compensated: 0 };
  for (const saga of snapshot.sagas) {
    sagaCounts.total++;
    sagaCounts[saga.status.toLowerCase() as 'running'] += 1;
    const order = saga.orderId === null ? undefined : ordersById.get(saga.orderId);
    const usage = usages.get(`${saga.userId}\n${saga.usageId}`);
    const reserved = saga.steps.some((s) => s.step === 'ORDER_RESERVED' && s.status === 'SUCCEEDED');
    const deducted = saga.steps.some((s) => s.step === 'CREDITS_DEDUCTED' && s.status === 'SUCCEEDED');
    if (saga.status === 'COMPLETED') {
      if (saga.orderId !== null && order !== undefined && order.status !== 'COMPLETED') miss('saga', saga.sagaId, `COMPLETED, but its order is ${order.status}`);
      if (saga.credits !== null && usage !== undefined && usage.sagaId === saga.sagaId && usage.status !== 'DEDUCTED') miss('saga', saga.sagaId, `COMPLETED, but its usage is ${usage.status}`);
    }
    if (saga.status === 'COMPENSATED') {
      if (reserved && order !== undefined && order.status !== 'CANCELLED') miss('saga', saga.sagaId, `COMPENSATED, but its order is ${order.status}`);
      if (deducted && usage !== undefined && usage.status !== 'REFUNDED') miss('saga', saga.sagaId, `COMPENSATED, but its usage is ${usage.status}`);
    }
    if (saga.status === 'RUNNING' && reserved && order !== undefined && (order.status !== 'PAID' || order.sagaId !== saga.sagaId)) {
      miss('saga', saga.sagaId, `RUNNING with its order reserved, but the order is ${order.status}`);
    }
  }

  const subscriptionCounts = reconcileSubscriptions(subscriptions, ordersById, paymentsByOrder, miss);

  const orderCounts = { total: snapshot.orders.length, PENDING: 0, PAID: 0, COMPLETED: 0, CANCELLED: 0 };
  for (const o of snapshot.orders) orderCounts[o.status]++;
  const paymentCounts = { total: snapshot.payments.length, READY: 0, APPROVED: 0, CONFIRMED: 0, FAILED: 0, CANCELLED: 0 };
  for (const p of snapshot.payments) paymentCounts[p.status]++;

  return {
    consistent: mismatches.length === 0,
    orders: orderCounts,
    payments: paymentCounts,
    credits: { users: snapshot.balances.length, totalBalance, charged, used, refunded },
    sagas: sagaCounts,
    ledger: { accounts, debits, credits },
    duplicateCharges,
    outbox: snapshot.outbox,
    subscriptions: subscriptionCounts,
    mismatches,
  };
}

function reconcileSubscriptions(
  subscriptions: readonly SubscriptionRecord[],
  ordersById: ReadonlyMap<string, Order>,
  paymentsByOrder: ReadonlyMap<string, Payment[]>,
  miss: (kind: string, subject: string, message: string) => void,
): ReconciliationReport['subscriptions'] {
  const counts = { total: subscriptions.length, ACTIVE: 0, PAST_DUE: 0, CANCELED: 0, EXPIRED: 0, invoices: { PAID: 0, DECLINED: 0, REFUNDED: 0 } };
  const invoiced = new Set<string>();
  const complete = new Map<string, boolean>();
  for (const sub of subscriptions) {
    counts[sub.status]++;
    complete.set(sub.subscriptionId, sub.invoices.length < MAX_INVOICES);
    if ((sub.status === 'PAST_DUE') !== (sub.nextRetryAt !== null)) miss('subscription', sub.subscriptionId, `${sub.status} with nextRetryAt ${String(sub.nextRetryAt)}`);
    for (const invoice of sub.invoices) {
      counts.invoices[invoice.status]++;
      if (invoice.status === 'PAID') invoiced.add(invoice.orderId);
      const order = ordersById.get(invoice.orderId);
      if (order === undefined) continue; // evicted after FLUXPAY_TTL_MS with its payments; its ledger net is kept
      const payment = (paymentsByOrder.get(order.orderId) ?? []).find((p) => p.paymentKey === invoice.paymentKey);
      if (order.amount !== invoice.amount) miss('subscription', invoice.invoiceId, `invoice amount ${invoice.amount} ≠ its order's ${order.amount}`);
      if (invoice.status === 'PAID' && order.status !== 'PAID' && order.status !== 'COMPLETED') miss('subscription', invoice.invoiceId, `PAID, but its order is ${order.status}`);
      if (invoice.status !== 'PAID' && order.status !== 'CANCELLED') miss('subscription', invoice.invoiceId, `${invoice.status}, but its order is ${order.status}`);
      if (invoice.status === 'DECLINED' && payment?.status !== 'FAILED') miss('subscription', invoice.invoiceId, `DECLINED, but its payment is ${payment?.status ?? 'missing'}`);
    }
  }
  for (const order of ordersById.values()) {
    const subscriptionId = order.metadata?.kind === 'SUBSCRIPTION' ? order.metadata.subscriptionId : undefined;
    if (typeof subscriptionId !== 'string' || order.status !== 'COMPLETED' || invoiced.has(order.orderId)) continue;
    // Only where the subscription is held with all its invoices (the oldest are dropped past MAX_INVOICES).
    if (complete.get(subscriptionId) === true) miss('subscription', order.orderId, `order COMPLETED for subscription ${subscriptionId}, which has no PAID invoice for it`);
  }
  return counts;
}
