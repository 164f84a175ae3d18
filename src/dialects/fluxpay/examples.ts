import type { ErrorDocs, Example, Examples } from '../../http/openapi.ts';
import { admissionTokenInUse, creditUserLimit, subscriptionLimit } from '../../core/fluxpay/errors.ts';
import { ADMIT_PER_SECOND_RULE } from '../../core/waiting-room/room.ts';
import { EXAMPLE_WEBHOOK_SECRET, EXAMPLE_WEBHOOK_TIME } from '../../plugins/external/swagger.ts';
import { standardSigner } from '../../webhooks/signers/standard.ts';
import { ErrorBody } from './schemas.ts';

/**
 * The FluxPay API's examples for the OpenAPI document. Ids are fixed example values;
 * test/integration/openapi-examples.test.ts replaces each with a real one made for the request
 * (a PENDING order, a READY payment, a running usage, …) before sending it.
 */

export const EXAMPLE_USER = 'user_1001';
export const EXAMPLE_IDS = {
  /** A PENDING order (read, paid, cancelled by the examples). */
  pendingOrder: 'ord_01KBA7Q4A6J3M8P1T5W9Y2C4HD',
  /** A PAID CREDIT_CHARGE order of EXAMPLE_USER (charged by the example). */
  chargeOrder: 'ord_01KBA7Q4A6J3M8P1T5W9Y2C4HE',
  /** A READY payment of the PENDING order `pendingOrder` (made by the create example, confirmed by the confirm example). */
  readyPayment: 'pk_01KBA7Q4B1K4N9Q2V6X0Z3D5JE',
  /** An APPROVED payment (read by the example). */
  approvedPayment: 'pk_01KBA7Q4B1K4N9Q2V6X0Z3D5JF',
  saga: 'saga_01KBA7Q4C2N5R8V1X4Z7B0D3FG',
  /** A new usage id (each request gets its own). */
  newUsage: 'usage-7f3a',
  /** A usage of EXAMPLE_USER that was deducted (refunded by the example). */
  deductedUsage: 'usage-5b21',
  /** A usage of EXAMPLE_USER whose saga runs (completed by the example). */
  runningUsage: 'usage-9c40',
  /** A new event id (the requesting event of the example saga). */
  newEvent: 'evt-client-0001',
  /** New event ids of the completion and the failure examples: each event has its own id (the same id with another body is PAY_003). */
  completedEvent: 'evt-client-0002',
  failedEvent: 'evt-client-0003',
  event: 'evt_01KBA7Q4D3P6S9W2Y5A8C1E4GH',
  transaction: 'tx_01KBA7Q4D3P6S9W2Y5A8C1E4GJ',
  usage: 'cu_01KBA7Q4D3P6S9W2Y5A8C1E4GK',
  subscription: 'whs_01KBA7Q4D3P6S9W2Y5A8C1E4GM',
  /** An ACTIVE billing subscription of EXAMPLE_USER on basic-monthly (each request gets its own). */
  billingSubscription: 'sub_01KBA7Q4F5R8T1W4Y7A0C3E6HJ',
} as const;

/** A room that exists (read, entered, its tickets polled by the examples). */
export const EXAMPLE_ROOM = 'concert-2026';
/** A room the PUT examples create (`created`, 201) and then change (`updated`, 200). */
export const EXAMPLE_NEW_ROOM = 'summer-sale';
/** A ticket of EXAMPLE_ROOM, WAITING. */
export const EXAMPLE_TICKET = 'wrt_01KBA7Q4E4Q7T0X3Z6B9D2F5HJ';
/** The service the example rooms protect: one of the built-in billing policy's, not one the order examples order. */
const PROTECTED = 'image-studio';

/** A subscriber's URL, on a local receiver. */
export const EXAMPLE_SUBSCRIBER_URL = 'http://127.0.0.1:4000/fluxpay/events';

const T = '2026-11-30T09:00:00.000Z';
const T1 = '2026-11-30T09:00:01.000Z';
const T2 = '2026-11-30T09:00:02.000Z';

const wrap = (result: unknown) => ({ isSuccess: true, code: 'SUCCESS', message: 'Request succeeded.', result });
const ex = (summary: string, value: unknown): Example => ({ summary, value });

const order = {
  orderId: EXAMPLE_IDS.pendingOrder,
  userId: EXAMPLE_USER,
  serviceId: 'ai-writer',
  orderName: 'AI Writer — monthly report',
  amount: 15000,
  currency: 'KRW',
  metadata: { reportId: 'rpt-42' },
  status: 'PENDING',
  paymentKey: null,
  sagaId: null,
  chargedCredits: null,
  cancelReason: null,
  createdAt: T,
  updatedAt: T,
  paidAt: null,
  completedAt: null,
  cancelledAt: null,
};

const payment = {
  paymentKey: EXAMPLE_IDS.readyPayment,
  orderId: EXAMPLE_IDS.pendingOrder,
  userId: EXAMPLE_USER,
  amount: 15000,
  currency: 'KRW',
  method: 'CARD',
  card: { last4: '4242', expMonth: 12, expYear: 2030 },
  easyPay: null,
  status: 'READY',
  failureCode: null,
  decidedBy: null,
  createdAt: T1,
  updatedAt: T1,
  approvedAt: null,
  confirmedAt: null,
  failedAt: null,
  cancelledAt: null,
};
const approved = { ...payment, paymentKey: EXAMPLE_IDS.approvedPayment, status: 'APPROVED', decidedBy: 'card', updatedAt: T2, approvedAt: T2 };

// ── orders ──

export const createOrderRequests: Examples = {
  order: ex('An order for one paid use of a service', { userId: EXAMPLE_USER, serviceId: 'ai-writer', orderName: 'AI Writer — monthly report', amount: 15000, currency: 'KRW', metadata: { reportId: 'rpt-42' } }),
  credit_charge: ex('An order that buys 1,000 credits', { userId: EXAMPLE_USER, serviceId: 'ai-writer', orderName: '1,000 credits', amount: 10000, metadata: { kind: 'CREDIT_CHARGE', credits: 1000 } }),
};
export const createOrderResponses: Examples = {
  order: ex('PENDING, waiting for its payment', wrap(order)),
  credit_charge: ex('PENDING', wrap({ ...order, orderName: '1,000 credits', amount: 10000, metadata: { kind: 'CREDIT_CHARGE', credits: 1000 } })),
};
export const getOrderResponses: Examples = { pending: ex('A PENDING order', wrap(order)) };
export const listOrderResponses: Examples = { page: ex('The user’s orders, newest first', wrap({ items: [order], nextCursor: null })) };
export const cancelRequests: Examples = { cancel: ex('Cancel a PENDING order', { reason: 'changed my mind' }) };
export const cancelResponses: Examples = {
  cancel: ex('CANCELLED (a PAID order’s payment is refunded: CANCELLED)', wrap({ order: { ...order, status: 'CANCELLED', cancelReason: 'changed my mind', updatedAt: T1, cancelledAt: T1 }, payment: null })),
};

// ── payments ──

export const createPaymentRequests: Examples = {
  card: ex('Pay by card (Stripe’s test number 4242… approves, whatever the CVV)', { orderId: EXAMPLE_IDS.pendingOrder, method: 'CARD', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } }),
  easy_pay: ex('Pay with an easy-pay provider', { orderId: EXAMPLE_IDS.pendingOrder, method: 'EASY_PAY', easyPay: { provider: 'TOSSPAY' } }),
};
export const createPaymentResponses: Examples = {
  card: ex('READY, with the paymentKey a checkout widget hands the client', wrap(payment)),
  easy_pay: ex('READY', wrap({ ...payment, method: 'EASY_PAY', card: null, easyPay: { provider: 'TOSSPAY' } })),
};
export const confirmRequests: Examples = { approve: ex('Confirm the payment of the order’s amount', { paymentKey: EXAMPLE_IDS.readyPayment, orderId: EXAMPLE_IDS.pendingOrder, amount: 15000 }) };
export const confirmResponses: Examples = { approve: ex('APPROVED; the order is PAID (event payment.approved)', wrap({ ...approved, paymentKey: EXAMPLE_IDS.readyPayment })) };
export const getPaymentResponses: Examples = { approved: ex('An APPROVED payment', wrap(approved)) };

// ── credits ──

const transaction = { transactionId: EXAMPLE_IDS.transaction, userId: EXAMPLE_USER, type: 'CHARGE', amount: 1000, balanceAfter: 1000, orderId: EXAMPLE_IDS.chargeOrder, usageId: null, serviceId: 'ai-writer', createdAt: T2 };
const usage = { creditUsageId: EXAMPLE_IDS.usage, usageId: EXAMPLE_IDS.newUsage, userId: EXAMPLE_USER, serviceId: 'ai-writer', amount: 10, status: 'DEDUCTED', sagaId: null, balance: 990, createdAt: T2, refundedAt: null };

export const balanceResponses: Examples = { balance: ex('The user’s credits', wrap({ userId: EXAMPLE_USER, balance: 990 })) };
export const chargeRequests: Examples = { charge: ex('Add the credits of a PAID CREDIT_CHARGE order', { userId: EXAMPLE_USER, orderId: EXAMPLE_IDS.chargeOrder }) };
export const chargeResponses: Examples = { charge: ex('Charged once; the order is COMPLETED (events credit.charged, order.completed)', wrap({ userId: EXAMPLE_USER, orderId: EXAMPLE_IDS.chargeOrder, credits: 1000, balance: 1000, transaction })) };
export const useRequests: Examples = {
  priced: ex('One use at the service’s price (billing policy: ai-writer costs 10)', { userId: EXAMPLE_USER, serviceId: 'ai-writer', usageId: EXAMPLE_IDS.newUsage }),
  amount: ex('A use of a given number of credits', { userId: EXAMPLE_USER, serviceId: 'image-studio', usageId: EXAMPLE_IDS.newUsage, amount: 25 }),
};
export const useResponses: Examples = {
  priced: ex('Deducted (event credit.deducted)', wrap(usage)),
  amount: ex('Deducted', wrap({ ...usage, serviceId: 'image-studio', amount: 25, balance: 975 })),
};
export const refundRequests: Examples = { refund: ex('Restore a usage', { userId: EXAMPLE_USER, usageId: EXAMPLE_IDS.deductedUsage }) };
export const refundResponses: Examples = { refund: ex('Restored once (event credit.refunded)', wrap({ ...usage, usageId: EXAMPLE_IDS.deductedUsage, status: 'REFUNDED', balance: 1000, refundedAt: T2 })) };
export const transactionResponses: Examples = {
  page: ex('Newest first', wrap({ items: [{ ...transaction, transactionId: 'tx_01KBA7Q4D3P6S9W2Y5A8C1E4GN', type: 'USE', amount: 10, balanceAfter: 990, orderId: null, usageId: EXAMPLE_IDS.newUsage }, transaction], nextCursor: null })),
};

// ── usage events and sagas ──

const saga = {
  sagaId: EXAMPLE_IDS.saga,
  eventId: EXAMPLE_IDS.newEvent,
  userId: EXAMPLE_USER,
  serviceId: 'ai-writer',
  usageId: EXAMPLE_IDS.newUsage,
  orderId: null,
  credits: 10,
  status: 'RUNNING',
  failureReason: null,
  steps: [{ step: 'CREDITS_DEDUCTED', kind: 'ACTION', status: 'SUCCEEDED', at: T, reason: null }],
  deadlineAt: '2026-11-30T09:00:30.000Z',
  createdAt: T,
  updatedAt: T,
  completedAt: null,
};
export const eventRequests: Examples = {
  requested: ex('A usage starts: credits are deducted (or the paid order is held)', { eventId: EXAMPLE_IDS.newEvent, type: 'service.usage.requested', userId: EXAMPLE_USER, serviceId: 'ai-writer', usageId: EXAMPLE_IDS.newUsage, credits: 10 }),
  completed: ex('The usage succeeded: the saga completes', { eventId: EXAMPLE_IDS.completedEvent, type: 'service.usage.completed', userId: EXAMPLE_USER, serviceId: 'ai-writer', usageId: EXAMPLE_IDS.runningUsage }),
  failed: ex('The usage failed: the saga compensates', { eventId: EXAMPLE_IDS.failedEvent, type: 'service.usage.failed', userId: EXAMPLE_USER, serviceId: 'ai-writer', usageId: EXAMPLE_IDS.runningUsage }),
};
export const eventResponses: Examples = {
  requested: ex('The saga, waiting for the usage’s end', wrap({ eventId: EXAMPLE_IDS.newEvent, type: 'service.usage.requested', duplicate: false, saga })),
  completed: ex('COMPLETED', wrap({ eventId: EXAMPLE_IDS.completedEvent, type: 'service.usage.completed', duplicate: false, saga: { ...saga, usageId: EXAMPLE_IDS.runningUsage, status: 'COMPLETED', updatedAt: T1, completedAt: T1 } })),
  failed: ex('COMPENSATED: the credits are restored', wrap({
    eventId: EXAMPLE_IDS.failedEvent,
    type: 'service.usage.failed',
    duplicate: false,
    saga: {
      ...saga,
      usageId: EXAMPLE_IDS.runningUsage,
      status: 'COMPENSATED',
      failureReason: 'service.usage.failed',
      steps: [
        ...saga.steps,
        { step: 'CREDITS_RESTORED', kind: 'COMPENSATION', status: 'SUCCEEDED', at: T1, reason: null },
        { step: 'PAYMENT_CANCELLED', kind: 'COMPENSATION', status: 'SKIPPED', at: T1, reason: 'no order reserved' },
        { step: 'ORDER_CANCELLED', kind: 'COMPENSATION', status: 'SKIPPED', at: T1, reason: 'no order reserved' },
      ],
      updatedAt: T1,
      completedAt: T1,
    },
  })),
};
export const sagaResponses: Examples = { running: ex('A saga and its steps', wrap(saga)) };

// ── outbox, subscriptions, reconciliation ──

const outboxEvent = {
  eventId: EXAMPLE_IDS.event,
  eventType: 'credit.deducted',
  aggregate: `credit:${EXAMPLE_USER}`,
  sequence: 7,
  status: 'PUBLISHED',
  occurredAt: T,
  publishedAt: T,
  data: { ...transaction, type: 'USE', amount: 10, balanceAfter: 990, orderId: null, usageId: EXAMPLE_IDS.newUsage, creditUsageId: EXAMPLE_IDS.usage, balance: 990 },
};
export const outboxResponses: Examples = { page: ex('Newest first', wrap({ items: [outboxEvent], nextCursor: null })) };
export const subscriptionRequests: Examples = { credits: ex('Credit events to one receiver', { url: EXAMPLE_SUBSCRIBER_URL, events: ['credit.charged', 'credit.deducted', 'credit.refunded'] }) };
const subscription = { subscriptionId: EXAMPLE_IDS.subscription, url: EXAMPLE_SUBSCRIBER_URL, events: ['credit.charged', 'credit.deducted', 'credit.refunded'], createdAt: T };
export const subscriptionResponses: Examples = { credits: ex('Subscribed', wrap(subscription)) };
export const subscriptionListResponses: Examples = { list: ex('Every subscription, and FLUXPAY_WEBHOOK_URL', wrap({ items: [subscription], defaultUrl: null })) };
export const getSubscriptionResponses: Examples = { subscription: ex('The subscription', wrap(subscription)) };
export const deleteSubscriptionResponses: Examples = { deleted: ex('Deleted: the subscription as it was', wrap(subscription)) };
export const reconciliationResponses: Examples = {
  consistent: ex(
    'Everything agrees',
    wrap({
      consistent: true,
      orders: { total: 2, PENDING: 0, PAID: 0, COMPLETED: 2, CANCELLED: 0 },
      payments: { total: 2, READY: 0, APPROVED: 0, CONFIRMED: 2, FAILED: 0, CANCELLED: 0 },
      credits: { users: 1, totalBalance: 990, charged: 1000, used: 10, refunded: 0 },
      sagas: { total: 1, running: 0, completed: 1, compensating: 0, compensated: 0 },
      ledger: {
        accounts: [
          { account: 'MERCHANT_BALANCE', unit: 'CREDIT', debits: 1000, credits: 0, balance: 1000 },
          { account: 'CREDIT_LIABILITY', unit: 'CREDIT', debits: 10, credits: 1000, balance: -990 },
          { account: 'REVENUE', unit: 'CREDIT', debits: 0, credits: 10, balance: -10 },
          { account: 'CUSTOMER_PAYMENTS', unit: 'KRW', debits: 25000, credits: 0, balance: 25000 },
          { account: 'MERCHANT_BALANCE', unit: 'KRW', debits: 0, credits: 25000, balance: -25000 },
        ],
        debits: { CREDIT: 1010, KRW: 25000 },
        credits: { CREDIT: 1010, KRW: 25000 },
      },
      duplicateCharges: 0,
      outbox: { pending: 0, published: 6 },
      subscriptions: { total: 0, ACTIVE: 0, PAST_DUE: 0, CANCELED: 0, EXPIRED: 0, invoices: { PAID: 0, DECLINED: 0, REFUNDED: 0 } },
      mismatches: [],
    }),
  ),
};

// ── billing subscriptions (issue 12) ──

const SUB_T = '2026-11-30T09:00:00.000Z';
const SUB_END = '2026-12-30T09:00:00.000Z';
const SUB_NEXT = '2027-01-30T09:00:00.000Z';
const plans = [
  { planId: 'basic-monthly', name: 'Basic', price: 9900, currency: 'KRW', period: 'P1M', credits: 1000, features: ['summarize', 'translate'] },
  { planId: 'pro-monthly', name: 'Pro', price: 19900, currency: 'KRW', period: 'P1M', credits: 5000, features: ['summarize', 'translate', 'upscale', 'background-removal'] },
  { planId: 'pro-yearly', name: 'Pro (yearly)', price: 99000, currency: 'KRW', period: 'P1Y', credits: 15000, features: ['summarize', 'translate', 'upscale', 'background-removal'] },
];
const invoice = {
  invoiceId: 'inv_01KBA7Q4F5R8T1W4Y7A0C3E6HK',
  kind: 'INITIAL',
  planId: 'basic-monthly',
  amount: 9900,
  currency: 'KRW',
  periodStart: SUB_T,
  periodEnd: SUB_END,
  status: 'PAID',
  orderId: 'ord_01KBA7Q4F5R8T1W4Y7A0C3E6HM',
  paymentKey: 'pk_01KBA7Q4F5R8T1W4Y7A0C3E6HN',
  failureCode: null,
  createdAt: SUB_T,
};
const billingSummary = {
  subscriptionId: EXAMPLE_IDS.billingSubscription,
  userId: EXAMPLE_USER,
  planId: 'basic-monthly',
  status: 'ACTIVE',
  cancelAtPeriodEnd: false,
  currentPeriodStart: SUB_T,
  currentPeriodEnd: SUB_END,
  pendingPlanId: null,
  nextChargeAt: SUB_END,
  dunningAttempt: 0,
  card: { last4: '4242', expMonth: 12, expYear: 2030 },
  canceledAt: null,
  expiredAt: null,
  createdAt: SUB_T,
  updatedAt: SUB_T,
};
const billing = { ...billingSummary, invoices: [invoice] };
const card = { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 };
export const planListResponses: Examples = { plans: ex('The plans of the billing policy', wrap({ items: plans })) };
export const subscribeRequests: Examples = { basic: ex('Basic, monthly, with a test card that approves', { userId: EXAMPLE_USER, planId: 'basic-monthly', card }) };
export const subscribeResponses: Examples = { basic: ex('ACTIVE: the first month is paid', wrap(billing)) };
export const billingListResponses: Examples = { page: ex('A user’s subscriptions, newest first', wrap({ items: [billingSummary], nextCursor: null })) };
export const billingResponses: Examples = { active: ex('With its invoices', wrap(billing)) };
export const cancelSubscriptionRequests: Examples = { canceled: ex('No body needed', {}) };
export const cancelSubscriptionResponses: Examples = {
  canceled: ex('Canceled: usable until the period ends, then EXPIRED', wrap({ ...billing, status: 'CANCELED', cancelAtPeriodEnd: true, nextChargeAt: null, canceledAt: T1, updatedAt: T1 })),
};
export const changePlanRequests: Examples = { upgrade: ex('Upgrade to Pro (charged now, prorated)', { planId: 'pro-monthly' }) };
export const changePlanResponses: Examples = {
  upgrade: ex(
    'Upgraded at once: the rest of the period at the difference of the rates, rounded half up',
    wrap({
      ...billing,
      planId: 'pro-monthly',
      updatedAt: T1,
      invoices: [invoice, { ...invoice, invoiceId: 'inv_01KBA7Q4F5R8T1W4Y7A0C3E6HP', kind: 'PRORATION', planId: 'pro-monthly', amount: 10000, periodStart: T1, orderId: 'ord_01KBA7Q4F5R8T1W4Y7A0C3E6HQ', paymentKey: 'pk_01KBA7Q4F5R8T1W4Y7A0C3E6HR', createdAt: T1 }],
    }),
  ),
};
export const updateCardRequests: Examples = { card: ex('Renewals are charged to this card from now on', { card: { number: '4000000000000002', expMonth: 12, expYear: 2030 } }) };
export const updateCardResponses: Examples = { card: ex('The new card (its last four digits)', wrap({ ...billing, card: { last4: '0002', expMonth: 12, expYear: 2030 }, updatedAt: T1 })) };
export const entitlementsResponses: Examples = {
  basic: ex(
    'Basic: two features, 1,000 credits a period, 10 used',
    wrap({ subscriptionId: EXAMPLE_IDS.billingSubscription, userId: EXAMPLE_USER, planId: 'basic-monthly', status: 'ACTIVE', entitled: true, periodStart: SUB_T, periodEnd: SUB_END, features: ['summarize', 'translate'], credits: { included: 1000, used: 10, remaining: 990 } }),
  ),
};
const subscriptionEvent = { ...billingSummary, latestInvoice: invoice };

// ── the webhook ──

export const FLUXPAY_WEBHOOK_EXAMPLES: Record<string, { summary: string; description: string; data: Record<string, unknown> }> = {
  'payment.approved': { summary: 'A payment was approved (FluxPay)', description: 'POST /api/v1/payments/confirm approved the payment; its order is PAID. `data` is the payment.', data: approved },
  'payment.failed': {
    summary: 'A payment was declined (FluxPay)',
    description: 'The confirm was declined (PAY_002); the payment is FAILED and its order stays PENDING. `data` is the payment.',
    data: { ...approved, status: 'FAILED', failureCode: 'DECLINE_2', approvedAt: null, failedAt: T2 },
  },
  'credit.charged': { summary: 'Credits were charged (FluxPay)', description: 'A PAID CREDIT_CHARGE order’s credits were added. `data` is the credit transaction and the balance.', data: { ...transaction, creditUsageId: null, balance: 1000 } },
  'credit.deducted': { summary: 'Credits were deducted (FluxPay)', description: 'A usage deducted credits (POST /api/v1/credits/use or a usage saga).', data: outboxEvent.data },
  'credit.refunded': {
    summary: 'Credits were refunded (FluxPay)',
    description: 'A usage was restored (POST /api/v1/credits/refund or a saga’s compensation).',
    data: { ...outboxEvent.data, transactionId: 'tx_01KBA7Q4D3P6S9W2Y5A8C1E4GP', type: 'REFUND', balanceAfter: 1000, balance: 1000 },
  },
  'order.completed': { summary: 'An order completed (FluxPay)', description: 'Its usage completed (or its credits were charged); its payment is CONFIRMED. `data` is the order with its payment.', data: { ...order, status: 'COMPLETED', paymentKey: EXAMPLE_IDS.approvedPayment, paidAt: T2, completedAt: T2, updatedAt: T2, payment: { ...approved, status: 'CONFIRMED', confirmedAt: T2 } } },
  'order.cancelled': {
    summary: 'An order was cancelled (FluxPay)',
    description: 'Cancelled by hand, or by a usage saga’s compensation; a paid order’s payment is refunded (CANCELLED). `data` is the order with its payment.',
    data: { ...order, status: 'CANCELLED', paymentKey: EXAMPLE_IDS.approvedPayment, cancelReason: 'usage usage-9c40 failed: timeout', paidAt: T1, cancelledAt: T2, updatedAt: T2, payment: { ...approved, status: 'CANCELLED', cancelledAt: T2 } },
  },
  'subscription.activated': { summary: 'A subscription started (FluxPay)', description: 'Its first period was paid. `data` is the subscription with `latestInvoice`.', data: subscriptionEvent },
  'subscription.renewed': {
    summary: 'A subscription renewed (FluxPay)',
    description: 'The renewal (or a dunning retry) was paid: the next period started. `data` is the subscription with `latestInvoice`.',
    data: { ...subscriptionEvent, currentPeriodStart: SUB_END, currentPeriodEnd: SUB_NEXT, nextChargeAt: SUB_NEXT, updatedAt: SUB_END, latestInvoice: { ...invoice, kind: 'RENEWAL', periodStart: SUB_END, periodEnd: SUB_NEXT, createdAt: SUB_END } },
  },
  'subscription.past_due': {
    summary: 'A renewal was declined (FluxPay)',
    description: 'The subscription is PAST_DUE: the charge is retried at `nextChargeAt` (FLUXPAY_DUNNING_DELAYS after the period end); when the last retry is declined it EXPIRES.',
    data: { ...subscriptionEvent, status: 'PAST_DUE', nextChargeAt: '2026-12-31T09:00:00.000Z', dunningAttempt: 1, updatedAt: SUB_END, latestInvoice: { ...invoice, kind: 'RENEWAL', status: 'DECLINED', failureCode: 'card_declined', periodStart: SUB_END, periodEnd: SUB_NEXT, createdAt: SUB_END } },
  },
  'subscription.canceled': {
    summary: 'A subscription was canceled (FluxPay)',
    description: 'It stays usable until `currentPeriodEnd`, then EXPIRES without a charge.',
    data: { ...subscriptionEvent, status: 'CANCELED', cancelAtPeriodEnd: true, nextChargeAt: null, canceledAt: T1, updatedAt: T1 },
  },
  'subscription.plan_changed': {
    summary: 'A subscription changed plan (FluxPay)',
    description: 'An upgrade (applied now, `latestInvoice` its prorated charge) or a downgrade scheduled for the next renewal (`pendingPlanId`).',
    data: { ...subscriptionEvent, planId: 'pro-monthly', pendingPlanId: 'basic-monthly', updatedAt: T1 },
  },
  'subscription.expired': {
    summary: 'A subscription expired (FluxPay)',
    description: 'A canceled subscription reached its period end, the last dunning retry was declined, or a PAST_DUE one was canceled.',
    data: { ...subscriptionEvent, status: 'EXPIRED', nextChargeAt: null, canceledAt: T1, expiredAt: SUB_END, updatedAt: SUB_END },
  },
};

export function exampleEnvelope(type: string): { eventId: string; eventType: string; occurredAt: string; data: Record<string, unknown> } {
  return { eventId: EXAMPLE_IDS.event, eventType: type, occurredAt: T2, data: FLUXPAY_WEBHOOK_EXAMPLES[type]?.data ?? {} };
}

/** Standard Webhooks headers of an example envelope: real signatures of its exact bytes with the example secret. */
export function exampleWebhookHeaders(type: string): Record<string, string> {
  return standardSigner([EXAMPLE_WEBHOOK_SECRET]).headers(EXAMPLE_IDS.event, JSON.stringify(exampleEnvelope(type)), EXAMPLE_WEBHOOK_TIME);
}

// ── errors ──

/** An example of an error answer in FluxPay's wrapper (also the rate-limit plugin's 429 of each route). */
export const err = (code: string, message: string, result: unknown = null): Example => ({ summary: message, value: { isSuccess: false, code, message, result } });
const IN_USE_TEXT = 'COMMON_409: a request with this Idempotency-Key is still being processed, or (with Redis) took the key over from this one, which then did nothing';
const IN_USE = err('COMMON_409', 'A request with this Idempotency-Key is still being processed; retry later.');

export const fluxpayErrorDocs: ErrorDocs = {
  schema: ErrorBody,
  byStatus: {
    400: {
      description: 'COMMON_400: a field breaks its rule (`result.errors` lists each).',
      examples: { validation_failed: err('COMMON_400', 'body /amount: must be >= 1', { errors: [{ field: 'amount', reason: 'must be >= 1' }] }) },
    },
    402: { description: 'PAY_002: the payment was declined (the payment is FAILED; the order stays PENDING, or, for a subscription’s charge, is CANCELLED and nothing changes).', examples: { declined: err('PAY_002', 'Payment approval failed: DECLINE_2.') } },
    404: {
      description: 'COMMON_404: no such record (or it was evicted after FLUXPAY_TTL_MS), or no such route.',
      examples: { not_found: err('COMMON_404', `Order ${EXAMPLE_IDS.pendingOrder} was not found.`) },
    },
    403: {
      description: 'WAIT_001: the order’s service is protected by an active waiting room and the X-Admission-Token is missing, not one of its tokens, expired or already used.',
      examples: {
        missing: err('WAIT_001', `Service ${PROTECTED} is behind waiting room ${EXAMPLE_ROOM}: send the X-Admission-Token of an admitted ticket.`),
        used: err('WAIT_001', `This admission token was already used (for order ${EXAMPLE_IDS.pendingOrder}); enter waiting room ${EXAMPLE_ROOM} again.`),
      },
    },
    405: { description: 'COMMON_405: the path exists with other methods (see `Allow`).', examples: { method: err('COMMON_405', 'DELETE is not allowed on /api/v1/orders; use GET, POST.') } },
    409: { description: `${IN_USE_TEXT}.`, examples: { in_use: IN_USE } },
    413: { description: 'COMMON_413: the body is larger than BODY_LIMIT_BYTES.', examples: { too_large: err('COMMON_413', 'The request body is larger than the limit (BODY_LIMIT_BYTES).') } },
    415: {
      description: 'COMMON_415: the body is not `application/json`, names a UTF-16 or UTF-32 charset (any other is not read: the body is UTF-8), or is compressed (`Content-Encoding` is not decoded). An empty body is no body, whatever its (well-formed) type.',
      examples: { media_type: err('COMMON_415', 'Send the body as application/json.'), encoded: err('COMMON_415', 'The request body is encoded (Content-Encoding: gzip), which is not read: send it uncompressed.') },
    },
    422: { description: 'COMMON_422: this Idempotency-Key was used with another body.', examples: { key_reused: err('COMMON_422', 'This Idempotency-Key was used with a different request body.') } },
    429: {
      description: 'COMMON_429: this client (X-Client-Id, else its address) sent more requests of this route group than the billing policy’s `rateLimits` allow; retry after `Retry-After` seconds.',
      examples: { rate_limited: err('COMMON_429', 'Rate limit exceeded: 100 requests per 1 s for orders; retry in 1 s.') },
    },
    500: { description: 'COMMON_500: a fault of the simulator (no internals); the request may be retried.', examples: { internal: err('COMMON_500', 'Something went wrong on our side; the request may be retried.') } },
    503: {
      description: 'COMMON_503: load shedding, a full store, the store unreachable (STORE=redis and Redis away) or shutting down; retry after `Retry-After` seconds.',
      examples: {
        overloaded: err('COMMON_503', 'The simulator is overloaded (eventLoopDelay); retry after 1 s.'),
        store_full: err('COMMON_503', 'The fluxpay store is full of open work, which it keeps until it ends: PENDING or PAID orders with their payments (complete or cancel them) and running usage sagas; retrying alone does not make room until some end (or raise FLUXPAY_MAX_RECORDS).'),
        store_unavailable: err('COMMON_503', 'The store is unavailable; retry shortly.'),
      },
    },
  },
};

// ── each operation's own 400, 404 and 409: only what it can answer, in the words the service sends ──

/** Where a schema rule was broken, and how `result.errors` names the field there. */
const FIELD_PREFIX = { body: '', querystring: 'query.', params: 'path.' } as const;

/** A schema rule broken: `body /amount: must be >= 1` (field `amount`), `querystring /limit: …` (`query.limit`), `params /orderId: …` (`path.orderId`). */
function broken(where: keyof typeof FIELD_PREFIX, field: string, reason: string): Example {
  return err('COMMON_400', `${where} /${field}: ${reason}`, { errors: [{ field: `${FIELD_PREFIX[where]}${field}`, reason }] });
}

/** One of the service's own checks: `card: is required when method is CARD` (the field as the check names it). */
function refused(field: string, reason: string): Example {
  return err('COMMON_400', `${field}: ${reason}`, { errors: [{ field, reason }] });
}

const idBroken = (param: string, prefix: string): Example => broken('params', param, `must be ${prefix}_ followed by a 26-character ULID`);

interface ErrorDoc {
  description: string;
  examples: Examples;
}
const badRequest = (what: string, examples: Examples): ErrorDoc => ({ description: `COMMON_400: ${what} (\`result.errors\` lists each broken field).`, examples });
const notFound = (message: string, description: string): ErrorDoc => ({ description: `COMMON_404: ${description}.`, examples: { not_found: err('COMMON_404', message) } });
/** The operation's own 409 codes (none: only COMMON_409), each with an example, then COMMON_409. */
const conflict = (codes?: string, examples: Examples = {}): ErrorDoc => ({ description: codes === undefined ? `${IN_USE_TEXT}.` : `${codes}; ${IN_USE_TEXT}.`, examples: { ...examples, in_use: IN_USE } });

const EVICTED = 'or it was evicted after FLUXPAY_TTL_MS';
const LIST_400 = badRequest('a query parameter breaks its rule (unknown parameters too)', { validation_failed: broken('querystring', 'limit', 'must be <= 100') });
const USER_400 = badRequest('`userId` is missing or breaks its rule (unknown parameters too)', { validation_failed: broken('querystring', 'userId', "must have required property 'userId'") });
const ORDER_404 = notFound(`Order ${EXAMPLE_IDS.pendingOrder} was not found.`, `no such order (${EVICTED})`);
const SUBSCRIPTION_404 = notFound(`Subscription ${EXAMPLE_IDS.billingSubscription} was not found.`, 'no such subscription (an EXPIRED one is evicted FLUXPAY_TTL_MS after it expired)');
const SUBSCRIPTION_400 = badRequest('`subscriptionId` is not a subscription id (`sub_<ULID>`)', { bad_id: idBroken('subscriptionId', 'sub') });
const WEBHOOK_SUBSCRIPTION_404 = notFound(`Webhook subscription ${EXAMPLE_IDS.subscription} was not found.`, 'no such webhook subscription (never created, or deleted)');
const WEBHOOK_SUBSCRIPTION_400 = badRequest('`subscriptionId` is not a webhook subscription id (`whs_<ULID>`)', { bad_id: idBroken('subscriptionId', 'whs') });
const CARD_400 = refused('card.number', 'must be 12 to 19 digits passing the Luhn check');
const UNKNOWN_PLAN = err('SUB_001', 'Plan gold-monthly does not exist (plans: basic-monthly, pro-monthly, pro-yearly).');
const ROOM_404 = notFound('Waiting room nope-room was not found.', 'no such waiting room');
const ROOM_400 = broken('params', 'roomId', 'must be 1–64 letters, digits, ., _ or -, starting with a letter or digit');
/** A SUB_002 of the operation (its own message) and SUB_003, with COMMON_409. */
const subscriptionConflict = (when: string, message: string): ErrorDoc =>
  conflict(`SUB_002: ${when}; SUB_003: the subscription kept changing under the request (send it again)`, {
    subscription_state: err('SUB_002', `Subscription ${EXAMPLE_IDS.billingSubscription} is ${message}`),
    subscription_busy: err('SUB_003', `Subscription ${EXAMPLE_IDS.billingSubscription} is being changed by other requests; try again.`),
  });

/** Per operation (by operationId): the 400, 404 and 409 it can answer, for `errorResponses`' overrides. */
export const fluxpayOverrides = {
  createFluxPayOrder: {
    400: badRequest('a field breaks its rule, or a CREDIT_CHARGE order’s `metadata.credits` is not a positive whole number', { validation_failed: broken('body', 'amount', 'must be >= 1') }),
    409: conflict('COMMON_409: the X-Admission-Token is in use by another order still being created (with `Retry-After`: send the order again then; if that order is not created the token is given back, else this is 403 WAIT_001)', {
      token_in_use: err('COMMON_409', admissionTokenInUse(EXAMPLE_IDS.pendingOrder).message),
    }),
  },
  listFluxPayOrders: { 400: badRequest('a query parameter breaks its rule (unknown parameters too; `cursor` is an order id)', { validation_failed: broken('querystring', 'limit', 'must be <= 100'), bad_cursor: broken('querystring', 'cursor', 'must be ord_ followed by a 26-character ULID') }) },
  getFluxPayOrder: { 400: badRequest('`orderId` is not an order id (`ord_<ULID>`)', { bad_id: idBroken('orderId', 'ord') }), 404: ORDER_404 },
  cancelFluxPayOrder: {
    400: badRequest('`orderId` is not an order id, or the body breaks its rule (`reason` 1–200 characters, no other field)', { bad_id: idBroken('orderId', 'ord'), unknown_field: broken('body', 'note', 'is not a known field') }),
    404: ORDER_404,
    409: conflict('PAY_004: the order is COMPLETED or CANCELLED already, or a usage saga holds it', { order_state: err('PAY_004', `Order ${EXAMPLE_IDS.pendingOrder} is COMPLETED; only a PENDING or PAID order can be cancelled.`) }),
  },
  createFluxPayPayment: {
    400: badRequest('a field breaks its rule, `card` or `easyPay` does not go with `method`, or the card is invalid (its number 12–19 digits passing the Luhn check, its CVV 3 or 4 digits, expMonth with expYear)', {
      card_required: refused('card', 'is required when method is CARD'),
      card_number: CARD_400,
    }),
    404: ORDER_404,
    409: conflict('PAY_004: the order is not PENDING', { order_state: err('PAY_004', `Order ${EXAMPLE_IDS.pendingOrder} is PAID; a payment can be made only for a PENDING order.`) }),
  },
  confirmFluxPayPayment: {
    400: {
      description: 'COMMON_400: a field breaks its rule, or `orderId` is not the payment’s order (`result.errors` lists each broken field); PAY_005: `amount` is not the order’s amount.',
      examples: {
        order_mismatch: refused('orderId', `does not match payment ${EXAMPLE_IDS.readyPayment}`),
        amount_mismatch: err('PAY_005', `amount 10000 does not match order ${EXAMPLE_IDS.pendingOrder}'s amount 15000.`),
      },
    },
    404: notFound(`Payment ${EXAMPLE_IDS.readyPayment} was not found.`, `no such payment (${EVICTED})`),
    409: conflict('PAY_003: the payment was decided already (the message says how); PAY_004: the order is not PENDING (cancelled, or paid by another payment)', {
      already_processed: err('PAY_003', `Payment ${EXAMPLE_IDS.approvedPayment} was already processed: APPROVED, CARD, amount 15000 KRW, order ${EXAMPLE_IDS.pendingOrder}.`),
      order_state: err('PAY_004', `Order ${EXAMPLE_IDS.pendingOrder} is CANCELLED; only a PENDING order can be paid.`),
    }),
  },
  getFluxPayPayment: {
    400: badRequest('the path has bad percent-encoding (`%ZZ`)', { bad_url: err('COMMON_400', 'The request path is not a valid URL (bad percent-encoding).', { errors: [{ field: 'path', reason: 'The request path is not a valid URL (bad percent-encoding).' }] }) }),
    404: notFound(`Payment ${EXAMPLE_IDS.approvedPayment} was not found.`, `no such payment (${EVICTED}); a key that starts with \`pk_\` but is not \`pk_<ULID>\` is no route (\`No route GET …\`); any other key is a path of the payment service's, which shares \`/api/v1/payments\` and answers \`404 {"error": "요청한 경로를 찾을 수 없습니다."}\` in its own shape`) },
  getFluxPayCreditBalance: { 400: USER_400 },
  chargeFluxPayCredits: {
    400: badRequest('a field breaks its rule', { validation_failed: broken('body', 'orderId', 'must be ord_ followed by a 26-character ULID') }),
    404: notFound(`Order ${EXAMPLE_IDS.chargeOrder} of user ${EXAMPLE_USER} was not found.`, `the user has no such order (another user’s order too; ${EVICTED})`),
    409: conflict(
      'PAY_003: the order’s credits were charged already; PAY_004: not a CREDIT_CHARGE order, or not PAID (a usage saga never holds one: it refuses a CREDIT_CHARGE order); COMMON_409: the user has no balance yet and `FLUXPAY_MAX_CREDIT_USERS` users have one (balances are never evicted; nothing changes, the order stays PAID)',
      {
        already_charged: err('PAY_003', `Order ${EXAMPLE_IDS.chargeOrder} was already charged: 1000 credits.`),
        order_state: err('PAY_004', `Order ${EXAMPLE_IDS.chargeOrder} is PENDING; credits are charged from a PAID order.`),
        credit_user_limit: err('COMMON_409', creditUserLimit(1_000_000).message),
      },
    ),
  },
  useFluxPayCredits: {
    400: badRequest('a field breaks its rule, or without `amount` the service has no price in the billing policy', { no_price: refused('serviceId', 'translate-pro has no price in the billing policy; send amount') }),
    409: conflict('PAY_001: the balance is short (nothing changes); PAY_003: this usage of the user was deducted already', {
      insufficient: err('PAY_001', 'Insufficient credit balance: 5, needed 10.'),
      already_processed: err('PAY_003', `Usage ${EXAMPLE_IDS.newUsage} of user ${EXAMPLE_USER} was already processed (${EXAMPLE_IDS.usage}, 10 credits, DEDUCTED).`),
    }),
  },
  refundFluxPayCredits: {
    400: badRequest('a field breaks its rule', { validation_failed: broken('body', 'usageId', "must have required property 'usageId'") }),
    404: notFound(`Usage usage-none of user ${EXAMPLE_USER} was not found.`, 'the user has no usage with this id'),
    409: conflict('PAY_003: the usage was refunded already; PAY_004: the usage is a usage saga’s (its compensation alone gives the credits back)', {
      already_refunded: err('PAY_003', `Usage ${EXAMPLE_IDS.deductedUsage} was already refunded.`),
      saga_usage: err('PAY_004', `Usage ${EXAMPLE_IDS.runningUsage} of user ${EXAMPLE_USER} belongs to saga ${EXAMPLE_IDS.saga}: its credits are given back by the saga's compensation (send service.usage.failed), not by a refund.`),
    }),
  },
  listFluxPayCreditTransactions: { 400: USER_400 },
  postFluxPayUsageEvent: {
    400: badRequest('a field breaks its rule, or a `service.usage.requested` without `credits` or `orderId` is for a service with no price in the billing policy', { validation_failed: broken('body', 'credits', 'must be >= 1') }),
    404: notFound(`The saga of usage usage-none of user ${EXAMPLE_USER} was not found.`, 'the end (`service.usage.completed` or `.failed`) of a usage that has no saga'),
    409: conflict(
      'PAY_003: this eventId was received with another body, or the usage already has a saga; PAY_004: the saga is still running its steps (send the completion again shortly), or the event contradicts how the saga ended (`completed` of a compensated saga: its charge was undone, do not deliver the usage; `failed` of a completed one)',
      {
        event_reused: err('PAY_003', `Event ${EXAMPLE_IDS.newEvent} was already received with another body (service.usage.requested).`),
        saga_busy: err('PAY_004', `Saga ${EXAMPLE_IDS.saga} is still running its steps; send the completion again shortly.`),
        completed_after_compensation: err('PAY_004', `Usage ${EXAMPLE_IDS.runningUsage} of user ${EXAMPLE_USER} cannot be completed: its saga ${EXAMPLE_IDS.saga} is COMPENSATED (timeout), its charge undone.`),
        failed_after_completion: err('PAY_004', `Usage ${EXAMPLE_IDS.runningUsage} of user ${EXAMPLE_USER} cannot fail: its saga ${EXAMPLE_IDS.saga} is COMPLETED, its charge kept.`),
      },
    ),
  },
  getFluxPaySaga: { 400: badRequest('`sagaId` is not a saga id (`saga_<ULID>`)', { bad_id: idBroken('sagaId', 'saga') }), 404: notFound(`Saga ${EXAMPLE_IDS.saga} was not found.`, `no such saga (${EVICTED})`) },
  listFluxPayOutbox: { 400: LIST_400 },
  createFluxPayWebhookSubscription: {
    400: badRequest('a field breaks its rule (`url` an absolute http(s) URL, `events` the event types FluxPay sends)', { validation_failed: broken('body', 'url', 'must be an absolute http(s) URL') }),
    409: conflict('COMMON_409: FLUXPAY_MAX_SUBSCRIPTIONS subscriptions exist (they never expire): delete those no longer needed, then subscribe again (with a new Idempotency-Key: the refused request’s key replays the refusal)', {
      subscription_limit: err('COMMON_409', subscriptionLimit(100).message),
    }),
  },
  getFluxPayWebhookSubscription: { 400: WEBHOOK_SUBSCRIPTION_400, 404: WEBHOOK_SUBSCRIPTION_404 },
  deleteFluxPayWebhookSubscription: { 400: WEBHOOK_SUBSCRIPTION_400, 404: WEBHOOK_SUBSCRIPTION_404 },
  createFluxPaySubscription: {
    400: badRequest('a field breaks its rule, or the card is invalid (its number 12–19 digits passing the Luhn check, its CVV 3 or 4 digits, expMonth with expYear)', { card_number: CARD_400 }),
    404: { description: 'SUB_001: no subscription plan has this id.', examples: { unknown_plan: UNKNOWN_PLAN } },
    409: conflict(),
  },
  listFluxPaySubscriptions: { 400: LIST_400 },
  getFluxPaySubscription: { 400: SUBSCRIPTION_400, 404: SUBSCRIPTION_404 },
  getFluxPayEntitlements: { 400: SUBSCRIPTION_400, 404: SUBSCRIPTION_404 },
  cancelFluxPaySubscription: {
    400: badRequest('`subscriptionId` is not a subscription id, or the body has a field (it is empty, or none)', { bad_id: idBroken('subscriptionId', 'sub'), unknown_field: broken('body', 'reason', 'is not a known field') }),
    404: SUBSCRIPTION_404,
    409: subscriptionConflict('CANCELED or EXPIRED already', 'EXPIRED; only an ACTIVE or PAST_DUE subscription can be canceled.'),
  },
  changeFluxPaySubscriptionPlan: {
    400: badRequest('`subscriptionId` is not a subscription id, a field breaks its rule, or the plan is billed in another currency', { bad_id: idBroken('subscriptionId', 'sub') }),
    404: { description: 'COMMON_404: no such subscription (an EXPIRED one is evicted FLUXPAY_TTL_MS after it expired); SUB_001: no subscription plan has this id.', examples: { ...SUBSCRIPTION_404.examples, unknown_plan: UNKNOWN_PLAN } },
    409: subscriptionConflict('not ACTIVE', 'PAST_DUE; only an ACTIVE subscription can be changed to another plan.'),
  },
  updateFluxPaySubscriptionCard: {
    400: badRequest('`subscriptionId` is not a subscription id, a field breaks its rule, or the card is invalid (its number 12–19 digits passing the Luhn check, its CVV 3 or 4 digits)', { card_number: CARD_400 }),
    404: SUBSCRIPTION_404,
    409: subscriptionConflict('EXPIRED', 'EXPIRED; only an ACTIVE, PAST_DUE or CANCELED subscription can be given a new card.'),
  },
  getFluxPayWaitingRoom: { 400: badRequest('`roomId` breaks its rule', { bad_id: ROOM_400 }), 404: ROOM_404 },
  enterFluxPayWaitingRoom: { 400: badRequest('`roomId` or the body breaks its rule', { validation_failed: broken('body', 'userId', "must have required property 'userId'") }), 404: ROOM_404 },
  getFluxPayWaitingRoomTicket: {
    400: badRequest('`roomId` breaks its rule, or `ticket` is not a ticket id (`wrt_<ULID>`)', { bad_id: idBroken('ticket', 'wrt') }),
    404: notFound(`Ticket ${EXAMPLE_TICKET} was not found.`, 'no such ticket in this room (an unknown room too)'),
  },
} as const satisfies Record<string, Partial<Record<400 | 404 | 409, ErrorDoc>>>;

// ── waiting rooms (issue 12) ──

const room = {
  roomId: EXAMPLE_ROOM,
  admitPerSecond: 50,
  admissionTtlSeconds: 300,
  protectedServiceIds: [PROTECTED],
  maxActive: null,
  active: true,
  size: 0,
  entered: 0,
  admitted: 0,
  activeTokens: 0,
  used: 0,
  expired: 0,
  currentRate: 50,
  nextAdmissionAt: null,
  createdAt: T,
  updatedAt: T,
};
const ticket = {
  ticket: EXAMPLE_TICKET,
  roomId: EXAMPLE_ROOM,
  userId: EXAMPLE_USER,
  status: 'WAITING',
  position: 1,
  estimatedWaitSeconds: 0,
  enteredAt: T,
  admittedAt: null,
  admissionToken: null,
  expiresAt: null,
  usedAt: null,
  usedFor: null,
};
export const putRoomRequests: Examples = {
  created: ex(`A new room: 50 admissions a second, tokens valid 5 minutes, guarding ${PROTECTED}`, { admitPerSecond: 50, admissionTtlSeconds: 300, protectedServiceIds: [PROTECTED] }),
  updated: ex('The same room, admitting 100 a second from now (the queue keeps its order)', { admitPerSecond: 100, admissionTtlSeconds: 300, protectedServiceIds: [PROTECTED] }),
  unknown_service: ex('A service the billing policy does not know: refused, nothing changes', { admitPerSecond: 100, admissionTtlSeconds: 300, protectedServiceIds: ['ticket-sale'] }),
};
const unknownService = '"ticket-sale" is not a service of the billing policy (its services: ai-writer, image-studio)';
/** The PUT's own refusals: a rate too low or an unknown protected service (400), one room more than FLUXPAY_MAX_WAITING_ROOMS (409). */
export const putRoomErrors = {
  400: {
    description: 'COMMON_400: a field breaks its rule, `admitPerSecond` is above 0 and below 0.001, or `protectedServiceIds` names a service the billing policy does not know (`result.errors` lists each); nothing changes.',
    examples: {
      validation_failed: broken('body', 'admitPerSecond', 'must be >= 0'),
      rate_too_low: err('COMMON_400', `admitPerSecond: ${ADMIT_PER_SECOND_RULE}.`, { errors: [{ field: 'admitPerSecond', reason: ADMIT_PER_SECOND_RULE }] }),
      unknown_service: err('COMMON_400', `protectedServiceIds: ${unknownService}.`, { errors: [{ field: 'protectedServiceIds.0', reason: unknownService }] }),
    },
  },
  409: {
    description: 'WAIT_002: the room does not exist and FLUXPAY_MAX_WAITING_ROOMS rooms do (rooms are never evicted; change an existing one).',
    examples: {
      room_limit: err('WAIT_002', `Waiting room ${EXAMPLE_NEW_ROOM} was not created: there are 1000 rooms already, the most FLUXPAY_MAX_WAITING_ROOMS allows; change an existing room instead.`),
    },
  },
};
export const putRoomCreated: Examples = { created: ex('Created', wrap({ ...room, roomId: EXAMPLE_NEW_ROOM })) };
export const putRoomUpdated: Examples = { updated: ex('Changed', wrap({ ...room, roomId: EXAMPLE_NEW_ROOM, admitPerSecond: 100, currentRate: 100, updatedAt: T1 })) };
export const getRoomResponses: Examples = { room: ex('A room with 120 users waiting', wrap({ ...room, size: 120, entered: 170, admitted: 50, activeTokens: 50, nextAdmissionAt: T1 })) };
export const enterRequests: Examples = { enter: ex('Enter', { userId: EXAMPLE_USER }) };
export const enterResponses: Examples = { waiting: ex('WAITING, first in line', wrap(ticket)) };
export const ticketResponses: Examples = {
  waiting: ex('WAITING, 120th in line', wrap({ ...ticket, position: 120, estimatedWaitSeconds: 3 })),
  admitted: ex('ADMITTED: send admissionToken as X-Admission-Token with POST /api/v1/orders', wrap({ ...ticket, status: 'ADMITTED', position: 0, estimatedWaitSeconds: 0, admittedAt: T, admissionToken: 'adm_01KBA7Q4E4Q7T0X3Z6B9D2F5HK', expiresAt: '2026-11-30T09:05:00.000Z' })),
};
