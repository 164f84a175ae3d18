import type { ReconciliationReport } from '../../core/fluxpay/reconcile.ts';
import type { CreditTransaction, CreditUsage, Order, OutboxEvent, OutboxPayload, Payment, Saga } from '../../core/fluxpay/model.ts';
import type { WebhookSubscription } from '../../core/fluxpay/ports.ts';
import type { RoomView, TicketView } from '../../core/waiting-room/service.ts';
import type { PlanPolicy } from '../../core/fluxpay/policy.ts';
import type { Invoice, SubscriptionRecord } from '../../core/subscriptions/ports.ts';
import type { Entitlements } from '../../core/subscriptions/service.ts';

/** How the FluxPay API shows its records: camelCase, ISO 8601 UTC times, never the planned outcome or card data. */

export const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** The success wrapper of document 002. */
export function ok<T>(result: T) {
  return { isSuccess: true as const, code: 'SUCCESS' as const, message: 'Request succeeded.', result };
}

export function orderView(order: Order) {
  return {
    orderId: order.orderId,
    userId: order.userId,
    serviceId: order.serviceId,
    orderName: order.orderName,
    amount: order.amount,
    currency: order.currency,
    metadata: order.metadata === null ? null : { ...order.metadata },
    status: order.status,
    paymentKey: order.paymentKey,
    sagaId: order.sagaId,
    chargedCredits: order.chargedCredits,
    cancelReason: order.cancelReason,
    createdAt: iso(order.createdAt),
    updatedAt: iso(order.updatedAt),
    paidAt: isoOrNull(order.paidAt),
    completedAt: isoOrNull(order.completedAt),
    cancelledAt: isoOrNull(order.cancelledAt),
  };
}

export function paymentView(payment: Payment) {
  return {
    paymentKey: payment.paymentKey,
    orderId: payment.orderId,
    userId: payment.userId,
    amount: payment.amount,
    currency: payment.currency,
    method: payment.method,
    card: payment.card === null ? null : { ...payment.card },
    easyPay: payment.easyPay === null ? null : { ...payment.easyPay },
    status: payment.status,
    failureCode: payment.failureCode,
    decidedBy: payment.decidedBy,
    createdAt: iso(payment.createdAt),
    updatedAt: iso(payment.updatedAt),
    approvedAt: isoOrNull(payment.approvedAt),
    confirmedAt: isoOrNull(payment.confirmedAt),
    failedAt: isoOrNull(payment.failedAt),
    cancelledAt: isoOrNull(payment.cancelledAt),
  };
}

export function transactionView(tx: CreditTransaction) {
  return { ...tx, createdAt: iso(tx.createdAt) };
}

export function usageView(usage: CreditUsage, balance: number) {
  return {
    creditUsageId: usage.creditUsageId,
    usageId: usage.usageId,
    userId: usage.userId,
    serviceId: usage.serviceId,
    amount: usage.amount,
    status: usage.status,
    sagaId: usage.sagaId,
    balance,
    createdAt: iso(usage.createdAt),
    refundedAt: isoOrNull(usage.refundedAt),
  };
}

export function sagaView(saga: Saga) {
  return {
    sagaId: saga.sagaId,
    eventId: saga.eventId,
    userId: saga.userId,
    serviceId: saga.serviceId,
    usageId: saga.usageId,
    orderId: saga.orderId,
    credits: saga.credits,
    status: saga.status,
    failureReason: saga.failureReason,
    steps: saga.steps.map((s) => ({ step: s.step, kind: s.kind, status: s.status, at: iso(s.at), reason: s.reason })),
    deadlineAt: iso(saga.deadlineAt),
    createdAt: iso(saga.createdAt),
    updatedAt: iso(saga.updatedAt),
    completedAt: isoOrNull(saga.completedAt),
  };
}

/** What an event says about its aggregate: the webhook's `data` and the outbox listing's. */
export function eventData(payload: OutboxPayload): Record<string, unknown> {
  switch (payload.kind) {
    case 'payment':
      return paymentView(payload.payment);
    case 'order':
      return { ...orderView(payload.order), payment: payload.payment === null ? null : paymentView(payload.payment) };
    case 'credit':
      return {
        ...transactionView(payload.transaction),
        creditUsageId: payload.usage?.creditUsageId ?? null,
        balance: payload.transaction.balanceAfter,
      };
    case 'subscription':
      return { ...billingSummaryView(payload.subscription), latestInvoice: payload.subscription.invoices.length === 0 ? null : invoiceView(payload.subscription.invoices.at(-1) as Invoice) };
  }
}

export function outboxView(event: OutboxEvent) {
  return {
    eventId: event.eventId,
    eventType: event.eventType,
    aggregate: event.aggregate,
    sequence: event.sequence,
    status: event.status,
    occurredAt: iso(event.occurredAt),
    publishedAt: isoOrNull(event.publishedAt),
    data: eventData(event.payload),
  };
}

export function subscriptionView(subscription: WebhookSubscription) {
  return { subscriptionId: subscription.subscriptionId, url: subscription.url, events: [...subscription.events], createdAt: iso(subscription.createdAt) };
}

// ── billing subscriptions (issue 12) ──

export function planView(plan: PlanPolicy) {
  return { planId: plan.planId, name: plan.name, price: plan.price, currency: plan.currency, period: plan.period, credits: plan.credits, features: [...plan.features] };
}

export function invoiceView(invoice: Invoice) {
  return { ...invoice, periodStart: iso(invoice.periodStart), periodEnd: iso(invoice.periodEnd), createdAt: iso(invoice.createdAt) };
}

/** A subscription without its invoices (lists and events). */
export function billingSummaryView(sub: SubscriptionRecord) {
  const nextChargeAt = sub.status === 'ACTIVE' ? sub.currentPeriodEnd : sub.status === 'PAST_DUE' ? sub.nextRetryAt : null;
  return {
    subscriptionId: sub.subscriptionId,
    userId: sub.userId,
    planId: sub.planId,
    status: sub.status,
    cancelAtPeriodEnd: sub.status === 'CANCELED',
    currentPeriodStart: iso(sub.currentPeriodStart),
    currentPeriodEnd: iso(sub.currentPeriodEnd),
    pendingPlanId: sub.pendingPlanId,
    nextChargeAt: isoOrNull(nextChargeAt),
    dunningAttempt: sub.dunningAttempt,
    card: { last4: sub.card.last4, expMonth: sub.card.expMonth, expYear: sub.card.expYear },
    canceledAt: isoOrNull(sub.canceledAt),
    expiredAt: isoOrNull(sub.expiredAt),
    createdAt: iso(sub.createdAt),
    updatedAt: iso(sub.updatedAt),
  };
}

export function billingView(sub: SubscriptionRecord) {
  return { ...billingSummaryView(sub), invoices: sub.invoices.map(invoiceView) };
}

export function entitlementsView(e: Entitlements) {
  return { ...e, periodStart: iso(e.periodStart), periodEnd: iso(e.periodEnd), features: [...e.features], credits: { ...e.credits } };
}

export function reconciliationView(report: ReconciliationReport) {
  return report;
}

export function roomView(room: RoomView) {
  return { ...room, protectedServiceIds: [...room.protectedServiceIds], nextAdmissionAt: isoOrNull(room.nextAdmissionAt), createdAt: iso(room.createdAt), updatedAt: iso(room.updatedAt) };
}

export function ticketView(ticket: TicketView) {
  return {
    ...ticket,
    enteredAt: iso(ticket.enteredAt),
    admittedAt: isoOrNull(ticket.admittedAt),
    expiresAt: isoOrNull(ticket.expiresAt),
    usedAt: isoOrNull(ticket.usedAt),
  };
}
