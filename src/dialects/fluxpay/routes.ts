import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { scenarioFromHeaders, TAKES_OUTCOME } from '../../http/scenario.ts';
import type { FluxPayService } from '../../core/fluxpay/service.ts';
import type { SubscriptionService } from '../../core/subscriptions/service.ts';
import { admissionTokenInUse, FluxPayError } from '../../core/fluxpay/errors.ts';
import type { GuardRefusal, WaitingRoomService } from '../../core/waiting-room/service.ts';
import { noteMaking, resumedMade, type IdempotencyHooks } from '../../http/idempotency.ts';
import { documented, errorResponses, IDEMPOTENT, withExamples } from '../../http/openapi.ts';
import { IdempotencyKeyHeader } from '../../http/schemas.ts';
import * as ex from './examples.ts';
import * as s from './schemas.ts';
import { ok, orderView, outboxView, paymentView, sagaView, subscriptionView, transactionView, usageView } from './views.ts';

/**
 * The routes of the FluxPay API (source document 002, paths and payloads as issue 11 defines
 * them): orders, PG payments, credits, usage events and their sagas, the outbox, webhook
 * subscriptions and the reconciliation. Thin: validate, call the engine, wrap.
 * @see issue 11
 */

export interface FluxPayRoutesOptions {
  idempotent: IdempotencyHooks;
  service: FluxPayService;
  defaultWebhookUrl: string | undefined;
  /** The order guard of issue 12's waiting rooms. */
  rooms: WaitingRoomService;
  newOrderId: () => string;
  /** Billing subscriptions, reconciled with their orders (issue 12). */
  subscriptions: SubscriptionService;
}

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.fluxpayErrorDocs, statuses, options);
const tags = ['fluxpay'];

/** A POST without a body (`curl -X POST …/cancel`) is an empty object, not a validation error. */
const emptyBodyIsObject = async (request: { body: unknown }): Promise<void> => {
  if (request.body === undefined || request.body === null) request.body = {};
};
/** What every POST may answer besides its own refusals. */
const POST_ERRORS = [400, 409, 413, 415, 422, 500, 503];
const GET_ERRORS = [400, 500, 503];

/**
 * An order of a protected service refused: WAIT_001, or (its token used for an order still being
 * written, which may yet fail and give it back) 409 COMMON_409 with Retry-After, not kept under
 * an Idempotency-Key: before, 403 "enter again" (a user test), kept under the key even after the
 * token came back.
 */
function admissionError(serviceId: string, guard: GuardRefusal): FluxPayError {
  if (guard.kind === 'already_used' && guard.pending) return admissionTokenInUse(String(guard.ticket.usedFor));
  return new FluxPayError('WAIT_001', admissionRefusal(serviceId, guard));
}

/** Why an order of a protected service was refused (WAIT_001), in one sentence. */
function admissionRefusal(serviceId: string, guard: GuardRefusal): string {
  const rooms = guard.roomIds.join(', ');
  switch (guard.kind) {
    case 'missing':
      return `Service ${serviceId} is behind waiting room ${rooms}: send the X-Admission-Token of an admitted ticket.`;
    case 'invalid':
      return `The X-Admission-Token is not a token of waiting room ${rooms}, which protects service ${serviceId}.`;
    case 'expired':
      return `This admission token expired at ${new Date(guard.ticket.expiresAt as number).toISOString()}; enter waiting room ${guard.ticket.roomId} again.`;
    case 'already_used':
      return `This admission token was already used (for order ${String(guard.ticket.usedFor)}); enter waiting room ${guard.ticket.roomId} again.`;
  }
}

const fluxpayRoutes: FastifyPluginAsync<FluxPayRoutesOptions> = async (fastify, { idempotent, service, defaultWebhookUrl, rooms, newOrderId, subscriptions }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  /** Whether an order is stored: the waiting rooms give back a token used for one that is not. */
  const orderExists = async (orderId: string): Promise<boolean> => (await service.findOrder(orderId)) !== undefined;

  // ── orders ──

  app.post(
    '/api/v1/orders',
    {
      schema: {
        operationId: 'createFluxPayOrder',
        summary: 'Create an order (PENDING)',
        description:
          'An order for a paid use of a service, or (`metadata.kind: CREDIT_CHARGE`) for credits. It is paid by a payment (`POST /api/v1/payments`, then `/confirm`). While an active waiting room protects `serviceId`, the `X-Admission-Token` of a ticket it admitted is required and used up by this order (403 WAIT_001 otherwise; 409 COMMON_409 with `Retry-After` while the token is in use by another order still being created, which may yet fail and give it back); when the order is not created after all (a refused body, a full store), the token is not spent and stays usable until it expires. A token whose order was not created and that could not be given back then (the store away) is given back when sent again `SCHEDULER_LEASE_MS` after its use.',
        tags,
        headers: s.OrderHeaders,
        body: withExamples(s.CreateOrderBody, ex.createOrderRequests),
        response: { 200: documented(s.Wrapped(s.OrderView, 'FluxPayOrderResult'), { description: 'The order, PENDING.', examples: ex.createOrderResponses, headers: IDEMPOTENT }), ...errors([...POST_ERRORS, 403], { idempotent: true, overrides: ex.fluxpayOverrides.createFluxPayOrder }) },
      },
      ...idempotent,
    },
    async (request) => {
      // An earlier request under this Idempotency-Key made it and never answered (its replica was
      // killed, or Redis failed it after the write): answered, not made again (a user test: two
      // orders). Noted but not found, it is made under the noted id: an admission token it used is
      // that order's, and a write of the first request landing late finds it made (a review).
      const resumed = await resumedMade(request, (id) => service.findOrder(id));
      if (resumed.record !== undefined) {
        // The admission token the first request used for it is spent, if that request stopped before saying so.
        const token = request.headers['x-admission-token'];
        if (token !== undefined) await rooms.orderWritten(token, resumed.record.orderId);
        return ok(orderView(resumed.record));
      }
      const orderId = resumed.id ?? newOrderId();
      if (resumed.id === undefined) await noteMaking(request, orderId);
      const guarded = await rooms.guardOrder(request.body.serviceId, request.headers['x-admission-token'], orderId, () => service.createOrder(request.body, orderId), orderExists);
      if (guarded.kind === 'refused') throw admissionError(request.body.serviceId, guarded.refusal);
      return ok(orderView(guarded.value));
    },
  );

  app.get(
    '/api/v1/orders',
    {
      schema: {
        operationId: 'listFluxPayOrders',
        summary: 'Orders, newest first (paged)',
        description: 'All orders, or a user’s (`userId`), of one status (`status`); `limit` per page (default 20, at most 100), `cursor` the `nextCursor` of the previous page.',
        tags,
        querystring: s.OrderListQuery,
        response: { 200: documented(s.Wrapped(s.OrderPage, 'FluxPayOrderPageResult'), { description: 'A page of orders.', examples: ex.listOrderResponses }), ...errors(GET_ERRORS, { overrides: ex.fluxpayOverrides.listFluxPayOrders }) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await service.listOrders({ userId: q.userId, status: q.status, cursor: q.cursor, limit: q.limit ?? s.DEFAULT_PAGE_LIMIT });
      return ok({ items: page.data.map(orderView), nextCursor: page.nextCursor });
    },
  );

  app.get(
    '/api/v1/orders/:orderId',
    {
      schema: {
        operationId: 'getFluxPayOrder',
        summary: 'One FluxPay order',
        description: 'COMMON_404 when unknown (or evicted after FLUXPAY_TTL_MS).',
        tags,
        params: s.OrderParams,
        response: { 200: documented(s.Wrapped(s.OrderView, 'FluxPayOrderResult'), { description: 'The order.', examples: ex.getOrderResponses }), ...errors([400, 404, 500, 503], { overrides: ex.fluxpayOverrides.getFluxPayOrder }) },
      },
    },
    async (request) => ok(orderView(await service.getOrder(request.params.orderId))),
  );

  app.post(
    '/api/v1/orders/:orderId/cancel',
    {
      schema: {
        operationId: 'cancelFluxPayOrder',
        summary: 'Cancel an order (a PAID one is refunded)',
        description: 'PENDING → CANCELLED (a READY payment of it stays READY, and its confirm then answers PAY_004); PAID → CANCELLED with its payment refunded (CANCELLED, the ledger reversed). Event `order.cancelled`. PAY_004 when COMPLETED or CANCELLED already, or while a usage saga holds it.',
        tags,
        headers: IdempotencyKeyHeader,
        params: s.OrderParams,
        body: withExamples(s.CancelOrderBody, ex.cancelRequests),
        response: { 200: documented(s.Wrapped(s.CancelResult, 'FluxPayCancelResultWrapped'), { description: 'Cancelled.', examples: ex.cancelResponses, headers: IDEMPOTENT }), ...errors([...POST_ERRORS, 404], { idempotent: true, overrides: ex.fluxpayOverrides.cancelFluxPayOrder }) },
      },
      preValidation: emptyBodyIsObject,
      ...idempotent,
    },
    async (request) => {
      const { order, payment } = await service.cancelOrder(request.params.orderId, request.body.reason ?? null);
      return ok({ order: orderView(order), payment: payment === null ? null : paymentView(payment) });
    },
  );

  // ── payments ──

  app.post(
    '/api/v1/payments',
    {
      schema: {
        operationId: 'createFluxPayPayment',
        summary: 'Create a payment (READY) for a PENDING order',
        description:
          'Returns the `paymentKey` a checkout widget would hand the client (Toss Payments’ flow). The card rules plan the outcome now (Stripe’s test numbers; else the CVV’s last digit: 0, 1, 9 approve, d declines with DECLINE_<d>; an expired card declines); the card itself is not kept (only its last four digits). PAY_004 unless the order is PENDING. Payments held are bounded by FLUXPAY_MAX_RECORDS (all orders’ together; a declined payment stays with its PENDING order): at the bound the oldest finished orders are evicted with their payments, and when only open orders hold them the answer is 503 COMMON_503 with `Retry-After`.',
        tags,
        headers: IdempotencyKeyHeader,
        body: withExamples(s.CreatePaymentBody, ex.createPaymentRequests),
        response: { 200: documented(s.Wrapped(s.PaymentView, 'FluxPayPaymentResult'), { description: 'The payment, READY.', examples: ex.createPaymentResponses, headers: IDEMPOTENT }), ...errors([...POST_ERRORS, 404], { idempotent: true, overrides: ex.fluxpayOverrides.createFluxPayPayment }) },
      },
      ...idempotent,
    },
    async (request) => {
      // As an order's create: a payment an earlier request under the key made is answered, not made
      // again; noted but not found, it is made under the noted key.
      const resumed = await resumedMade(request, (key) => service.findPayment(key));
      if (resumed.record !== undefined) return ok(paymentView(resumed.record));
      const paymentKey = resumed.id ?? service.newPaymentKey();
      if (resumed.id === undefined) await noteMaking(request, paymentKey);
      return ok(paymentView(await service.createPayment(request.body, paymentKey)));
    },
  );

  app.post(
    '/api/v1/payments/confirm',
    {
      schema: {
        operationId: 'confirmFluxPayPayment',
        summary: 'Confirm a payment (approve or decline)',
        description:
          'The scenario engine decides: `X-Sim-Scenario` when sent, else the outcome the card rules planned. Approved: the payment is APPROVED and its order PAID (event `payment.approved`). Declined: PAY_002 with the failure code, the payment FAILED (event `payment.failed`). PAY_005 when `amount` is not the order’s; PAY_003 when the payment was decided already (the message says how); PAY_004 when the order is not PENDING.',
        tags,
        headers: s.ConfirmHeaders,
        body: withExamples(s.ConfirmBody, ex.confirmRequests),
        response: { 200: documented(s.Wrapped(s.PaymentView, 'FluxPayPaymentResult'), { description: 'Approved.', examples: ex.confirmResponses, headers: IDEMPOTENT }), ...errors([...POST_ERRORS, 402, 404], { idempotent: true, overrides: ex.fluxpayOverrides.confirmFluxPayPayment }) },
      },
      ...idempotent,
      ...TAKES_OUTCOME,
    },
    async (request) => {
      // Held (a `delay` scenario waits inside): the drain waits for it, so that it is answered before the close.
      const { payment } = await app.lifecycle.hold(service.confirmPayment(request.body, { scenario: scenarioFromHeaders(request.headers, app.core.config.scenarios.mix), forced: request.faultPlan?.outcome ?? undefined }));
      return ok(paymentView(payment));
    },
  );

  app.get(
    s.PAYMENT_KEY_ROUTE,
    {
      schema: {
        operationId: 'getFluxPayPayment',
        summary: 'One FluxPay payment',
        description: 'COMMON_404 when unknown. Only `pk_<ULID>` paths are FluxPay’s: other paths under /api/v1/payments belong to the payment service (document 004) and answer in its shape.',
        tags,
        params: s.PaymentParams,
        response: { 200: documented(s.Wrapped(s.PaymentView, 'FluxPayPaymentResult'), { description: 'The payment.', examples: ex.getPaymentResponses }), ...errors([400, 404, 500, 503], { overrides: ex.fluxpayOverrides.getFluxPayPayment }) },
      },
      config: {
        // Documented as what it is to clients: /api/v1/payments/{paymentKey}.
        swaggerTransform: ({ schema }) => ({ schema: { ...schema, params: s.PaymentKeyParams }, url: '/api/v1/payments/:paymentKey' }),
      },
    },
    async (request) => ok(paymentView(await service.getPayment(request.params.paymentKey))),
  );

  // ── credits ──

  app.get(
    '/api/v1/credits/balance',
    {
      schema: {
        operationId: 'getFluxPayCreditBalance',
        summary: 'A user’s credit balance',
        description: '0 for a user who never had credits.',
        tags,
        querystring: s.BalanceQuery,
        response: { 200: documented(s.Wrapped(s.BalanceView, 'FluxPayBalanceResult'), { description: 'The balance.', examples: ex.balanceResponses }), ...errors(GET_ERRORS, { overrides: ex.fluxpayOverrides.getFluxPayCreditBalance }) },
      },
    },
    async (request) => ok({ userId: request.query.userId, balance: await service.balance(request.query.userId) }),
  );

  app.post(
    '/api/v1/credits/charge',
    {
      schema: {
        operationId: 'chargeFluxPayCredits',
        summary: 'Add the credits of a PAID credit-charge order',
        description:
          'The order (the user’s, PAID, `metadata.kind: CREDIT_CHARGE`) adds `metadata.credits` (else its amount) once; it becomes COMPLETED and its payment CONFIRMED. Events `credit.charged`, `order.completed`. PAY_003 when charged already; PAY_004 when not a charge order or not PAID; COMMON_409 when the user has no balance yet and FLUXPAY_MAX_CREDIT_USERS users have one (balances are never evicted), with nothing changed.',
        tags,
        headers: IdempotencyKeyHeader,
        body: withExamples(s.ChargeBody, ex.chargeRequests),
        response: { 200: documented(s.Wrapped(s.ChargeResult, 'FluxPayChargeResultWrapped'), { description: 'Charged.', examples: ex.chargeResponses, headers: IDEMPOTENT }), ...errors([...POST_ERRORS, 404], { idempotent: true, overrides: ex.fluxpayOverrides.chargeFluxPayCredits }) },
      },
      ...idempotent,
    },
    async (request) => {
      const { order, transaction, balance } = await service.chargeCredits(request.body.userId, request.body.orderId);
      return ok({ userId: order.userId, orderId: order.orderId, credits: transaction.amount, balance, transaction: transactionView(transaction) });
    },
  );

  app.post(
    '/api/v1/credits/use',
    {
      schema: {
        operationId: 'useFluxPayCredits',
        summary: 'Deduct credits for a usage',
        description:
          'Deducts `amount`, else the service’s `creditsPerUse` from the billing policy (FLUXPAY_POLICY_FILE). Once per user and `usageId` (PAY_003 again); PAY_001 when the balance is short (nothing changes; a balance never goes below zero). Event `credit.deducted`.',
        tags,
        headers: IdempotencyKeyHeader,
        body: withExamples(s.UseBody, ex.useRequests),
        response: { 200: documented(s.Wrapped(s.UsageView, 'FluxPayUsageResult'), { description: 'Deducted.', examples: ex.useResponses, headers: IDEMPOTENT }), ...errors(POST_ERRORS, { idempotent: true, overrides: ex.fluxpayOverrides.useFluxPayCredits }) },
      },
      ...idempotent,
    },
    async (request) => {
      const { usage, balance } = await service.useCredits(request.body);
      return ok(usageView(usage, balance));
    },
  );

  app.post(
    '/api/v1/credits/refund',
    {
      schema: {
        operationId: 'refundFluxPayCredits',
        summary: 'Restore a usage’s credits',
        description: 'Once (PAY_003 again). Event `credit.refunded`. COMMON_404 for an unknown usage; PAY_004 for a usage saga’s usage (its compensation restores it).',
        tags,
        headers: IdempotencyKeyHeader,
        body: withExamples(s.RefundBody, ex.refundRequests),
        response: { 200: documented(s.Wrapped(s.UsageView, 'FluxPayUsageResult'), { description: 'Refunded.', examples: ex.refundResponses, headers: IDEMPOTENT }), ...errors([...POST_ERRORS, 404], { idempotent: true, overrides: ex.fluxpayOverrides.refundFluxPayCredits }) },
      },
      ...idempotent,
    },
    async (request) => {
      const { usage, balance } = await service.refundCredits(request.body.userId, request.body.usageId);
      return ok(usageView(usage, balance));
    },
  );

  app.get(
    '/api/v1/credits/transactions',
    {
      schema: {
        operationId: 'listFluxPayCreditTransactions',
        summary: 'A user’s credit transactions, newest first (paged)',
        description: 'Charges, uses and refunds, each with the balance after it; each is also a ledger transaction (same id).',
        tags,
        querystring: s.TransactionsQuery,
        response: { 200: documented(s.Wrapped(s.TransactionPage, 'FluxPayCreditTransactionPageResult'), { description: 'A page.', examples: ex.transactionResponses }), ...errors(GET_ERRORS, { overrides: ex.fluxpayOverrides.listFluxPayCreditTransactions }) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await service.transactions(q.userId, { cursor: q.cursor, limit: q.limit ?? s.DEFAULT_PAGE_LIMIT });
      return ok({ items: page.data.map(transactionView), nextCursor: page.nextCursor });
    },
  );

  // ── usage events and sagas ──

  app.post(
    '/api/v1/events',
    {
      schema: {
        operationId: 'postFluxPayUsageEvent',
        summary: 'Report a usage event (service.usage.*): runs the usage saga',
        description:
          'Document 002’s Kafka events, over REST, de-duplicated by `eventId` (a repeat answers `duplicate: true` and does nothing; the same eventId with another body is PAY_003). `service.usage.requested` starts a saga: its order (`orderId`) must be PAID and not a CREDIT_CHARGE order (PAY_004: its credits are charged from it) and is held, and/or credits are deducted (`credits`, else without an order the service’s price); a step that cannot run (PAY_001, PAY_004) compensates at once. `service.usage.completed` completes it (order COMPLETED, payment CONFIRMED); `service.usage.failed`, or no completion within FLUXPAY_USAGE_TIMEOUT_MS, compensates it in reverse order (credits restored, payment refunded, order CANCELLED). An end of a saga that has ended answers as it is when it agrees (`duplicate: false`, the saga unchanged), and PAY_004 when it contradicts how the saga ended (`completed` of a saga COMPENSATING or COMPENSATED, `failed` of a COMPLETED one; sent again, PAY_004 again): of two contradicting ends at once, on any replicas, one succeeds and the other is PAY_004. COMMON_404 for the end of a usage that has no saga.',
        tags,
        headers: IdempotencyKeyHeader,
        body: withExamples(s.UsageEventBody, ex.eventRequests),
        response: { 200: documented(s.Wrapped(s.EventResult, 'FluxPayEventResultWrapped'), { description: 'Processed: the saga as it is now.', examples: ex.eventResponses, headers: IDEMPOTENT }), ...errors([...POST_ERRORS, 404], { idempotent: true, overrides: ex.fluxpayOverrides.postFluxPayUsageEvent }) },
      },
      ...idempotent,
    },
    async (request) => {
      const result = await service.handleEvent(request.body);
      return ok({ eventId: result.eventId, type: result.type, duplicate: result.duplicate, saga: result.saga === undefined ? null : sagaView(result.saga) });
    },
  );

  app.get(
    '/api/v1/sagas/:sagaId',
    {
      schema: {
        operationId: 'getFluxPaySaga',
        summary: 'A usage saga and its steps',
        description: 'Every step and compensation with its time and outcome (SUCCEEDED, FAILED with its code, SKIPPED with why).',
        tags,
        params: s.SagaParams,
        response: { 200: documented(s.Wrapped(s.SagaView, 'FluxPaySagaResult'), { description: 'The saga.', examples: ex.sagaResponses }), ...errors([400, 404, 500, 503], { overrides: ex.fluxpayOverrides.getFluxPaySaga }) },
      },
    },
    async (request) => ok(sagaView(await service.getSaga(request.params.sagaId))),
  );

  // ── outbox, subscriptions, reconciliation ──

  app.get(
    '/api/v1/outbox',
    {
      schema: {
        operationId: 'listFluxPayOutbox',
        summary: 'The outbox, newest first (paged)',
        description: 'Every event written with its state change: `pending` until the relay has handed it to every subscriber, then `published`. Published events are kept for FLUXPAY_TTL_MS.',
        tags,
        querystring: s.OutboxQuery,
        response: { 200: documented(s.Wrapped(s.OutboxPage, 'FluxPayOutboxPageResult'), { description: 'A page.', examples: ex.outboxResponses }), ...errors(GET_ERRORS, { overrides: ex.fluxpayOverrides.listFluxPayOutbox }) },
      },
    },
    async (request) => {
      const q = request.query;
      const status = q.status === undefined ? undefined : q.status.toLowerCase() === 'pending' ? 'PENDING' : 'PUBLISHED';
      const page = await service.listOutbox({ status, cursor: q.cursor, limit: q.limit ?? s.DEFAULT_PAGE_LIMIT });
      return ok({ items: page.data.map(outboxView), nextCursor: page.nextCursor });
    },
  );

  app.post(
    '/api/v1/webhook-subscriptions',
    {
      schema: {
        operationId: 'createFluxPayWebhookSubscription',
        summary: 'Subscribe a URL to events',
        description:
          'Events of the listed types (all when empty) are POSTed to `url` as `{eventId, eventType, occurredAt, data}`, signed with FLUXPAY_SIGNATURE_SCHEMES (Standard Webhooks by default), retried by the dispatcher. A subscription never expires: it stays until deleted (`DELETE /api/v1/webhook-subscriptions/{subscriptionId}`). Beyond FLUXPAY_MAX_SUBSCRIPTIONS (default 100) this answers 409 COMMON_409 and creates nothing, until some are deleted (a retry alone would never succeed, so it is not a 503).',
        tags,
        headers: IdempotencyKeyHeader,
        body: withExamples(s.SubscriptionBody, ex.subscriptionRequests),
        response: { 200: documented(s.Wrapped(s.SubscriptionView, 'FluxPaySubscriptionResult'), { description: 'Subscribed.', examples: ex.subscriptionResponses, headers: IDEMPOTENT }), ...errors(POST_ERRORS, { idempotent: true, overrides: ex.fluxpayOverrides.createFluxPayWebhookSubscription }) },
      },
      ...idempotent,
    },
    async (request) => ok(subscriptionView(await service.subscribe(request.body.url, request.body.events))),
  );

  app.get(
    '/api/v1/webhook-subscriptions',
    {
      schema: {
        operationId: 'listFluxPayWebhookSubscriptions',
        summary: 'Every subscription',
        description: 'In creation order, with FLUXPAY_WEBHOOK_URL (a subscriber of every event) when set.',
        tags,
        response: { 200: documented(s.Wrapped(s.SubscriptionList, 'FluxPaySubscriptionListResult'), { description: 'The subscriptions.', examples: ex.subscriptionListResponses }), ...errors([500, 503]) },
      },
    },
    async () => ok({ items: (await service.listSubscriptions()).map(subscriptionView), defaultUrl: defaultWebhookUrl ?? null }),
  );

  app.get(
    '/api/v1/webhook-subscriptions/:subscriptionId',
    {
      schema: {
        operationId: 'getFluxPayWebhookSubscription',
        summary: 'One subscription',
        description: 'COMMON_404 when unknown (never created, or deleted).',
        tags,
        params: s.WebhookSubscriptionParams,
        response: { 200: documented(s.Wrapped(s.SubscriptionView, 'FluxPaySubscriptionResult'), { description: 'The subscription.', examples: ex.getSubscriptionResponses }), ...errors([400, 404, 500, 503], { overrides: ex.fluxpayOverrides.getFluxPayWebhookSubscription }) },
      },
    },
    async (request) => ok(subscriptionView(await service.getSubscription(request.params.subscriptionId))),
  );

  app.delete(
    '/api/v1/webhook-subscriptions/:subscriptionId',
    {
      schema: {
        operationId: 'deleteFluxPayWebhookSubscription',
        summary: 'Delete a subscription',
        description:
          'Events written from now on are not sent to it (with STORE=redis, on every replica); those written before may still be, up to the end of the batch (at most 256 events) the outbox relay is publishing, which read the subscriptions once; deliveries already made to it (in the delivery log) keep their retries. Its place under FLUXPAY_MAX_SUBSCRIPTIONS is free at once. The answer is the subscription as it was; COMMON_404 when unknown (never created, or deleted already: a second DELETE).',
        tags,
        params: s.WebhookSubscriptionParams,
        response: { 200: documented(s.Wrapped(s.SubscriptionView, 'FluxPaySubscriptionResult'), { description: 'Deleted: the subscription as it was.', examples: ex.deleteSubscriptionResponses }), ...errors([400, 404, 500, 503], { overrides: ex.fluxpayOverrides.deleteFluxPayWebhookSubscription }) },
      },
    },
    async (request) => ok(subscriptionView(await service.unsubscribe(request.params.subscriptionId))),
  );

  app.get(
    '/api/v1/reconciliation',
    {
      schema: {
        operationId: 'getFluxPayReconciliation',
        summary: 'Orders, payments, credits, sagas and the ledger, compared',
        description:
          'Counts and ledger totals, and every mismatch: the ledger balances in every unit; CREDIT_LIABILITY equals the sum of balances; each balance equals its charges − uses + refunds; revenue and credits issued agree with uses and charges; customer payments equal what approved payments collected; each order agrees with its payments and each saga with its order and usage; each subscription invoice with its order; no order was charged twice. `consistent` is true when the list is empty (it must be). It reads every FluxPay record in one step: on Redis one script, during which Redis answers nothing else (about 1.3 s for 10,000 paid orders; past 2 s every replica answers 503 COMMON_503 until it ends), so call it after a load, not during one.',
        tags,
        response: { 200: documented(s.Wrapped(s.ReconciliationView, 'FluxPayReconciliationResult'), { description: 'The report.', examples: ex.reconciliationResponses }), ...errors([500, 503]) },
      },
    },
    async () => ok(await service.reconcile(() => subscriptions.snapshot())),
  );
};

export default fluxpayRoutes;
