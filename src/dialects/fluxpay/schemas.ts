import { Type, type TSchema } from 'typebox';
import { FLUXPAY_ACCOUNTS } from '../../core/fluxpay/ledger.ts';
import { ORDER_STATUSES, OUTBOX_EVENT_TYPES, PAYMENT_METHODS, PAYMENT_STATUSES, SAGA_STATUSES, SAGA_STEPS, USAGE_EVENT_TYPES, USAGE_STATUSES, CREDIT_TRANSACTION_TYPES } from '../../core/fluxpay/model.ts';
import { SCENARIOS } from '../../core/scenario.ts';
import { MAX_ADMIT_PER_SECOND, MIN_ADMIT_PER_SECOND } from '../../core/waiting-room/room.ts';
import { CLIENT_REFERENCE, IdempotencyKeyHeader, IsoDateTime, PrefixedId, SimMixHeader, WebhookUrl } from '../../http/schemas.ts';

/**
 * Schemas of the FluxPay API (source document 002): camelCase, every answer in the wrapper
 * `{isSuccess, code, message, result}`. Bodies reject unknown fields (a typo in a payment request
 * is an error, not a silent default); query strings ignore unknown parameters.
 * @see issue 11 "Conventions of the dialect"
 */

const Strict = { additionalProperties: false } as const;

export const DEFAULT_PAGE_LIMIT = 20;
export const MAX_PAGE_LIMIT = 100;

const Visible = (max: number, description: string, example: string) =>
  Type.String({ minLength: 1, maxLength: max, pattern: '^[\\x21-\\x7E]+$', 'x-pattern-description': 'visible ASCII characters (no spaces)', description, examples: [example] });

export const UserId = Visible(128, 'The client’s user', 'user_1001');
export const ServiceId = Visible(64, 'The client service (a key of the billing policy’s `services` for priced uses)', 'ai-writer');
export const UsageId = Visible(128, 'The client’s id of one usage: a user’s usageId is deducted once', 'usage-7f3a');
export const EventId = Visible(128, 'The event’s id: an event is processed once per eventId', 'evt-client-0001');
const Amount = (description: string) => Type.Integer({ minimum: 1, maximum: 100_000_000_000, description, examples: [15000] });
const Credits = (description: string) => Type.Integer({ minimum: 1, maximum: 1_000_000_000, description, examples: [10] });

export const OrderIdSchema = PrefixedId('ord', 'ord_<ULID>', 'ord_01KBA7Q4A6J3M8P1T5W9Y2C4HD');
export const PaymentKeySchema = PrefixedId('pk', 'The payment key: pk_<ULID>', 'pk_01KBA7Q4B1K4N9Q2V6X0Z3D5JE');
export const SagaIdSchema = PrefixedId('saga', 'saga_<ULID>', 'saga_01KBA7Q4C2N5R8V1X4Z7B0D3FG');

/** The route pattern of one payment: a regular expression, so every other path under /api/v1/payments stays the payment service's. */
export const PAYMENT_KEY_ROUTE = '/api/v1/payments/:paymentKey(^pk_[0-9A-HJKMNP-TV-Z]{26}$)';

const Nullable = <T extends TSchema>(schema: T, description?: string) => Type.Union([schema, Type.Null()], description === undefined ? {} : { description });
const IsoOrNull = (description: string) => Nullable(IsoDateTime, description);

export const Metadata = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
  maxProperties: 50,
  description: 'Free-form data of the client service. `kind: "CREDIT_CHARGE"` makes it an order that buys credits (`credits`: how many, a whole number from 1 to 1,000,000,000; its amount otherwise)',
  examples: [{ kind: 'CREDIT_CHARGE', credits: 1000 }],
});

// ── the wrapper ──────────────────────────────────────────────────────────────────────────────

export function Wrapped<T extends TSchema>(result: T, title: string) {
  return Type.Object(
    {
      isSuccess: Type.Literal(true),
      code: Type.Literal('SUCCESS'),
      message: Type.String(),
      result,
    },
    { title },
  );
}

export const FieldError = Type.Object({ field: Type.String({ description: 'The field, dotted: `amount`, `card.cvv`, `query.limit`, `body`' }), reason: Type.String() }, { title: 'FluxPayFieldError' });

export const ErrorBody = Type.Object(
  {
    isSuccess: Type.Literal(false),
    code: Type.String({ description: 'PAY_001 … PAY_005, WAIT_001, WAIT_002, SUB_001 … SUB_003, or `COMMON_<HTTP status>` for every other error: COMMON_400, COMMON_404, COMMON_405, COMMON_408, COMMON_409, COMMON_413, COMMON_414, COMMON_415, COMMON_422, COMMON_429, COMMON_431, COMMON_500, COMMON_502, COMMON_503, COMMON_504' }),
    message: Type.String(),
    result: Type.Union([Type.Null(), Type.Object({ errors: Type.Array(FieldError) })], { description: 'null; for COMMON_400, the fields that are wrong' }),
  },
  { title: 'FluxPayError' },
);

// ── orders ───────────────────────────────────────────────────────────────────────────────────

export const CreateOrderBody = Type.Object(
  {
    userId: UserId,
    serviceId: ServiceId,
    orderName: Type.String({ minLength: 1, maxLength: 200, ...CLIENT_REFERENCE, description: 'What is bought, for people (no control characters)', examples: ['AI Writer — 1,000 credits'] }),
    amount: Amount('Minor units (KRW has none)'),
    currency: Type.Optional(Type.String({ format: 'iso4217', default: 'KRW', description: 'ISO 4217; default KRW', examples: ['KRW'] })),
    metadata: Type.Optional(Metadata),
  },
  { ...Strict, title: 'FluxPayCreateOrderRequest' },
);

export const OrderView = Type.Object(
  {
    orderId: Type.String(),
    userId: Type.String(),
    serviceId: Type.String(),
    orderName: Type.String(),
    amount: Type.Integer(),
    currency: Type.String(),
    metadata: Nullable(Type.Record(Type.String(), Type.Unknown())),
    status: Type.Enum(ORDER_STATUSES, { title: 'FluxPayOrderStatus', description: 'PENDING → PAID → COMPLETED | CANCELLED' }),
    paymentKey: Nullable(Type.String(), 'The payment that paid it'),
    sagaId: Nullable(Type.String(), 'The usage saga that holds it'),
    chargedCredits: Nullable(Type.Integer(), 'Credits added by POST /api/v1/credits/charge'),
    cancelReason: Nullable(Type.String()),
    createdAt: IsoDateTime,
    updatedAt: IsoDateTime,
    paidAt: IsoOrNull('When it became PAID'),
    completedAt: IsoOrNull('When it became COMPLETED'),
    cancelledAt: IsoOrNull('When it became CANCELLED'),
  },
  { title: 'FluxPayOrder' },
);

export const OrderParams = Type.Object({ orderId: OrderIdSchema });

export const OrderListQuery = Type.Object({
  userId: Type.Optional(UserId),
  status: Type.Optional(Type.Enum(ORDER_STATUSES, { description: 'Only orders in this status', examples: ['PAID'] })),
  cursor: Type.Optional(OrderIdSchema),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT, examples: [20] })),
}, Strict);

const PageOf = <T extends TSchema>(item: T, title: string) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String(), 'The `cursor` of the next page; null on the last') }, { title });

export const OrderPage = PageOf(OrderView, 'FluxPayOrderPage');

export const CancelOrderBody = Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200, examples: ['changed my mind'] })) }, { ...Strict, title: 'FluxPayCancelOrderRequest' });

// ── payments ─────────────────────────────────────────────────────────────────────────────────

export const CardBody = Type.Object(
  {
    number: Type.String({ pattern: '^[0-9]{12,19}$', 'x-pattern-description': '12 to 19 digits', description: 'Stripe’s test numbers have their outcome; otherwise the CVV’s last digit decides (0, 1, 9 approve)', examples: ['4242424242424242'] }),
    cvv: Type.Optional(Type.String({ pattern: '^[0-9]{3,4}$', 'x-pattern-description': '3 or 4 digits', examples: ['123'] })),
    expMonth: Type.Optional(Type.Integer({ minimum: 1, maximum: 12, examples: [12] })),
    expYear: Type.Optional(Type.Integer({ minimum: 2000, maximum: 2199, examples: [2030] })),
  },
  { ...Strict, title: 'FluxPayCard' },
);

export const CreatePaymentBody = Type.Object(
  {
    orderId: OrderIdSchema,
    method: Type.Enum(PAYMENT_METHODS, { description: 'CARD (with `card`) or EASY_PAY (with `easyPay`)' }),
    card: Type.Optional(CardBody),
    easyPay: Type.Optional(Type.Object({ provider: Type.String({ minLength: 1, maxLength: 40, examples: ['TOSSPAY'] }) }, { ...Strict, title: 'FluxPayEasyPay' })),
  },
  { ...Strict, title: 'FluxPayCreatePaymentRequest' },
);

export const PaymentView = Type.Object(
  {
    paymentKey: Type.String(),
    orderId: Type.String(),
    userId: Type.String(),
    amount: Type.Integer(),
    currency: Type.String(),
    method: Type.Enum(PAYMENT_METHODS),
    card: Nullable(Type.Object({ last4: Type.String(), expMonth: Nullable(Type.Integer()), expYear: Nullable(Type.Integer()) }, { title: 'FluxPayCardSummary' }), 'Only the last four digits are kept'),
    easyPay: Nullable(Type.Object({ provider: Type.String() })),
    status: Type.Enum(PAYMENT_STATUSES, { title: 'FluxPayPaymentStatus', description: 'READY → APPROVED → CONFIRMED | CANCELLED; READY → FAILED' }),
    failureCode: Nullable(Type.String(), 'Why it failed: card_declined, DECLINE_<d>, expired_card, …'),
    decidedBy: Nullable(Type.String(), 'What decided the outcome: rule (a fault rule’s outcome, which beats the others), else the X-Sim-Scenario (approve, fail, delay, random, mix), else card, or approve (EASY_PAY); null until decided'),
    createdAt: IsoDateTime,
    updatedAt: IsoDateTime,
    approvedAt: IsoOrNull('When it was approved'),
    confirmedAt: IsoOrNull('When its order completed'),
    failedAt: IsoOrNull('When it failed'),
    cancelledAt: IsoOrNull('When it was cancelled (refunded)'),
  },
  { title: 'FluxPayPayment' },
);

export const CancelResult = Type.Object({ order: OrderView, payment: Nullable(PaymentView, 'Its payment, CANCELLED (refunded) when the order was PAID') }, { title: 'FluxPayCancelResult' });

export const ConfirmBody = Type.Object(
  { paymentKey: PaymentKeySchema, orderId: OrderIdSchema, amount: Amount('Must equal the order’s amount') },
  { ...Strict, title: 'FluxPayConfirmRequest' },
);

export const ConfirmHeaders = Type.Object({
  'x-sim-scenario': Type.Optional(
    Type.Enum(SCENARIOS, {
      description: 'The outcome, whatever the card says: `approve`, `fail` (card_declined), `delay` (approved after DEFAULT_DELAY_DELAY_MS), `random` (RANDOM_APPROVE_RATE), `mix` (weights in `X-Sim-Mix`, else the MIX setting)',
      examples: ['fail'],
    }),
  ),
  ...SimMixHeader.properties,
  ...IdempotencyKeyHeader.properties,
});

export const PaymentParams = Type.Object({ paymentKey: Type.String() });
export const PaymentKeyParams = Type.Object({ paymentKey: { ...PaymentKeySchema, examples: ['pk_01KBA7Q4B1K4N9Q2V6X0Z3D5JF'] } });

// ── credits ──────────────────────────────────────────────────────────────────────────────────

export const BalanceQuery = Type.Object({ userId: UserId }, Strict);
export const BalanceView = Type.Object({ userId: Type.String(), balance: Type.Integer({ minimum: 0 }) }, { title: 'FluxPayBalance' });

export const ChargeBody = Type.Object({ userId: UserId, orderId: OrderIdSchema }, { ...Strict, title: 'FluxPayChargeRequest' });

export const TransactionView = Type.Object(
  {
    transactionId: Type.String({ description: 'tx_<ULID>: also the ledger transaction' }),
    userId: Type.String(),
    type: Type.Enum(CREDIT_TRANSACTION_TYPES),
    amount: Type.Integer({ description: 'Credits moved (positive; `type` gives the direction)' }),
    balanceAfter: Type.Integer(),
    orderId: Nullable(Type.String()),
    usageId: Nullable(Type.String()),
    serviceId: Nullable(Type.String()),
    createdAt: IsoDateTime,
  },
  { title: 'FluxPayCreditTransaction' },
);

export const ChargeResult = Type.Object(
  { userId: Type.String(), orderId: Type.String(), credits: Type.Integer(), balance: Type.Integer(), transaction: TransactionView },
  { title: 'FluxPayChargeResult' },
);

export const UseBody = Type.Object(
  { userId: UserId, serviceId: ServiceId, usageId: UsageId, amount: Type.Optional(Credits('Credits to deduct; default: the service’s creditsPerUse in the billing policy')) },
  { ...Strict, title: 'FluxPayUseRequest' },
);

export const RefundBody = Type.Object({ userId: UserId, usageId: UsageId }, { ...Strict, title: 'FluxPayRefundRequest' });

export const UsageView = Type.Object(
  {
    creditUsageId: Type.String({ description: 'cu_<ULID>' }),
    usageId: Type.String(),
    userId: Type.String(),
    serviceId: Type.String(),
    amount: Type.Integer(),
    status: Type.Enum(USAGE_STATUSES),
    sagaId: Nullable(Type.String()),
    balance: Type.Integer({ description: 'The user’s balance after this call' }),
    createdAt: IsoDateTime,
    refundedAt: IsoOrNull('When it was refunded'),
  },
  { title: 'FluxPayCreditUsage' },
);

export const TransactionsQuery = Type.Object({
  userId: UserId,
  cursor: Type.Optional(PrefixedId('tx', 'tx_<ULID>: the last transactionId of the previous page')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT })),
}, Strict);
export const TransactionPage = PageOf(TransactionView, 'FluxPayCreditTransactionPage');

// ── usage events and sagas ───────────────────────────────────────────────────────────────────

export const UsageEventBody = Type.Object(
  {
    eventId: EventId,
    type: Type.Enum(USAGE_EVENT_TYPES, { description: 'requested starts a saga; completed or failed ends it' }),
    userId: UserId,
    serviceId: ServiceId,
    usageId: UsageId,
    orderId: Type.Optional(OrderIdSchema),
    credits: Type.Optional(Credits('Credits the usage costs (requested); default without orderId: the service’s price')),
  },
  { ...Strict, title: 'FluxPayUsageEvent' },
);

export const SagaView = Type.Object(
  {
    sagaId: Type.String(),
    eventId: Type.String(),
    userId: Type.String(),
    serviceId: Type.String(),
    usageId: Type.String(),
    orderId: Nullable(Type.String()),
    credits: Nullable(Type.Integer()),
    status: Type.Enum(SAGA_STATUSES, { title: 'FluxPaySagaStatus', description: 'RUNNING → COMPLETED, or RUNNING → COMPENSATING → COMPENSATED' }),
    failureReason: Nullable(Type.String(), 'service.usage.failed, timeout, or the code of the step that failed'),
    steps: Type.Array(
      Type.Object(
        {
          step: Type.Enum(SAGA_STEPS),
          kind: Type.Enum(['ACTION', 'COMPENSATION']),
          status: Type.Enum(['SUCCEEDED', 'FAILED', 'SKIPPED']),
          at: IsoDateTime,
          reason: Nullable(Type.String()),
        },
        { title: 'FluxPaySagaStep' },
      ),
    ),
    deadlineAt: IsoDateTime,
    createdAt: IsoDateTime,
    updatedAt: IsoDateTime,
    completedAt: IsoOrNull('When it became COMPLETED or COMPENSATED'),
  },
  { title: 'FluxPaySaga' },
);

export const EventResult = Type.Object(
  { eventId: Type.String(), type: Type.String(), duplicate: Type.Boolean({ description: 'The eventId was received before: nothing was done again' }), saga: Nullable(SagaView) },
  { title: 'FluxPayEventResult' },
);

export const SagaParams = Type.Object({ sagaId: SagaIdSchema });

// ── outbox, subscriptions, reconciliation ────────────────────────────────────────────────────

export const OutboxEventView = Type.Object(
  {
    eventId: Type.String(),
    eventType: Type.Enum(OUTBOX_EVENT_TYPES),
    aggregate: Type.String({ description: 'order:<id>, payment:<key> or credit:<userId>' }),
    sequence: Type.Integer({ description: 'Write order: published in this order' }),
    status: Type.Enum(['PENDING', 'PUBLISHED']),
    occurredAt: IsoDateTime,
    publishedAt: IsoOrNull('When the relay published it'),
    data: Type.Record(Type.String(), Type.Unknown(), { description: 'What webhook subscribers receive as `data`' }),
  },
  { title: 'FluxPayOutboxEvent' },
);

export const OutboxQuery = Type.Object({
  status: Type.Optional(
    Type.Enum(['pending', 'published', 'PENDING', 'PUBLISHED'], { description: 'Only events in this state; either case (the events show it in upper case)', examples: ['pending'] }),
  ),
  cursor: Type.Optional(PrefixedId('evt', 'evt_<ULID>: the last eventId of the previous page')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT })),
}, Strict);
export const OutboxPage = PageOf(OutboxEventView, 'FluxPayOutboxPage');

export const SubscriptionBody = Type.Object(
  {
    url: { ...WebhookUrl, description: 'Absolute http(s) URL, without spaces, control characters or backslashes: receives the signed events', examples: ['http://127.0.0.1:4000/fluxpay/events'] },
    events: Type.Array(Type.Enum(OUTBOX_EVENT_TYPES), { maxItems: OUTBOX_EVENT_TYPES.length * 2, description: 'The event types it receives; empty: all of them' }),
  },
  { ...Strict, title: 'FluxPaySubscriptionRequest' },
);

export const SubscriptionView = Type.Object(
  { subscriptionId: Type.String({ description: 'whs_<ULID> (a webhook subscription)' }), url: Type.String(), events: Type.Array(Type.String()), createdAt: IsoDateTime },
  { title: 'FluxPaySubscription' },
);

export const WebhookSubscriptionParams = Type.Object({ subscriptionId: PrefixedId('whs', 'A webhook subscription: whs_<ULID>', 'whs_01KBA7Q4D3P6S9W2Y5A8C1E4GM') });

export const SubscriptionList = Type.Object({ items: Type.Array(SubscriptionView), defaultUrl: Nullable(Type.String(), 'FLUXPAY_WEBHOOK_URL: receives every event') }, { title: 'FluxPaySubscriptionList' });

const Count = Type.Integer({ minimum: 0 });
export const ReconciliationView = Type.Object(
  {
    consistent: Type.Boolean({ description: 'True when nothing disagrees' }),
    orders: Type.Object({ total: Count, PENDING: Count, PAID: Count, COMPLETED: Count, CANCELLED: Count }),
    payments: Type.Object({ total: Count, READY: Count, APPROVED: Count, CONFIRMED: Count, FAILED: Count, CANCELLED: Count }),
    credits: Type.Object({ users: Count, totalBalance: Count, charged: Count, used: Count, refunded: Count }),
    sagas: Type.Object({ total: Count, running: Count, completed: Count, compensating: Count, compensated: Count }),
    ledger: Type.Object({
      accounts: Type.Array(Type.Object({ account: Type.Enum(FLUXPAY_ACCOUNTS), unit: Type.String({ description: 'A currency, or CREDIT' }), debits: Count, credits: Count, balance: Type.Integer({ description: 'debits − credits' }) })),
      debits: Type.Record(Type.String(), Count, { description: 'By unit' }),
      credits: Type.Record(Type.String(), Count, { description: 'By unit' }),
    }),
    duplicateCharges: Type.Integer({ minimum: 0, description: 'Orders with more than one approved payment: must be 0' }),
    outbox: Type.Object({ pending: Count, published: Count }),
    subscriptions: Type.Object({ total: Count, ACTIVE: Count, PAST_DUE: Count, CANCELED: Count, EXPIRED: Count, invoices: Type.Object({ PAID: Count, DECLINED: Count, REFUNDED: Count }) }, { description: 'Billing subscriptions by status, and their invoices' }),
    mismatches: Type.Array(Type.Object({ kind: Type.String(), subject: Type.String(), message: Type.String() }, { title: 'FluxPayMismatch' })),
  },
  { title: 'FluxPayReconciliation' },
);

// ── waiting rooms (issue 12) ─────────────────────────────────────────────────────────────────

export const RoomId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'x-pattern-description': '1–64 letters, digits, ., _ or -, starting with a letter or digit', description: 'The room', examples: ['concert-2026'] });
export const RoomParams = Type.Object({ roomId: RoomId });
export const NewRoomParams = Type.Object({ roomId: { ...RoomId, examples: ['summer-sale'] } });
export const TicketParams = Type.Object({ roomId: RoomId, ticket: PrefixedId('wrt', 'The ticket: wrt_<ULID>', 'wrt_01KBA7Q4E4Q7T0X3Z6B9D2F5HJ') });

export const PutRoomBody = Type.Object(
  {
    admitPerSecond: Type.Number({ minimum: 0, maximum: MAX_ADMIT_PER_SECOND, description: `Admissions per second: 0 pauses admission (the queue keeps its order), else from ${MIN_ADMIT_PER_SECOND} (one every ${1 / MIN_ADMIT_PER_SECOND} s; a rate above 0 below it: 400 COMMON_400)`, examples: [50] }),
    admissionTtlSeconds: Type.Integer({ minimum: 1, maximum: 86_400, description: 'How long an admission token stays valid once given', examples: [300] }),
    protectedServiceIds: Type.Array(ServiceId, { maxItems: 100, description: 'Services of the billing policy whose POST /api/v1/orders needs an X-Admission-Token while the room is active (another service: 400 COMMON_400)', examples: [['image-studio']] }),
    maxActive: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000_000 }), 'At most this many admitted users hold a live token at once (null or absent: no limit)')),
    active: Type.Optional(Type.Boolean({ description: 'false: admits nobody new and protects nothing (default true)' })),
  },
  { ...Strict, title: 'FluxPayPutWaitingRoomRequest' },
);

export const RoomView = Type.Object(
  {
    roomId: RoomId,
    admitPerSecond: Type.Number(),
    admissionTtlSeconds: Type.Integer(),
    protectedServiceIds: Type.Array(Type.String()),
    maxActive: Nullable(Type.Integer()),
    active: Type.Boolean(),
    size: Type.Integer({ description: 'Users waiting now' }),
    entered: Type.Integer({ description: 'Tickets given out so far' }),
    admitted: Type.Integer({ description: 'Users admitted so far' }),
    activeTokens: Type.Integer({ description: 'Admission tokens holding a slot (what `maxActive` caps): neither expired nor used for an order that was written; a token used for an order still being written counts until the order is' }),
    used: Type.Integer({ description: 'Admission tokens used for an order' }),
    expired: Type.Integer({ description: 'Admission tokens that expired unused' }),
    currentRate: Type.Number({ description: 'Admissions per second now (0 while paused or inactive)' }),
    nextAdmissionAt: IsoOrNull('When the rate allows the next admission (null when nobody waits or admission is paused); with maxActive tokens live, the next user waits for one to be spent (used for an order that was written) or to expire as well'),
    createdAt: IsoDateTime,
    updatedAt: IsoDateTime,
  },
  { title: 'FluxPayWaitingRoom' },
);

export const EnterBody = Type.Object({ userId: UserId }, { ...Strict, title: 'FluxPayEnterWaitingRoomRequest' });

export const TicketView = Type.Object(
  {
    ticket: Type.String(),
    roomId: Type.String(),
    userId: Type.String(),
    status: Type.Union([Type.Literal('WAITING'), Type.Literal('ADMITTED'), Type.Literal('EXPIRED')]),
    position: Type.Integer({ description: '1-based among those waiting; 0 once admitted' }),
    estimatedWaitSeconds: Type.Union([Type.Number(), Type.Null()], { description: 'Seconds until admission (null while admission is paused); 0 once admitted. At the current rate, and with maxActive reached, by the live tokens: as if none were spent, so a spent token admits sooner' }),
    enteredAt: IsoDateTime,
    admittedAt: IsoOrNull('When the user was admitted'),
    admissionToken: Type.Union([Type.String(), Type.Null()], { description: 'Once ADMITTED (or EXPIRED): the token to send as X-Admission-Token' }),
    expiresAt: IsoOrNull('When the admission token expires'),
    usedAt: IsoOrNull('When the token was used for an order'),
    usedFor: Type.Union([Type.String(), Type.Null()], { description: 'The order the token was used for' }),
  },
  { title: 'FluxPayWaitingRoomTicket' },
);

export const OrderHeaders = Type.Object({ ...IdempotencyKeyHeader.properties, 'x-admission-token': Type.Optional(Type.String({ maxLength: 128, examples: ['adm_01KBA7Q4E4Q7T0X3Z6B9D2F5HK'], description: 'The admission token of a waiting room protecting the order’s service (WAIT_001 without it)' })) });

// ── billing subscriptions (issue 12) ─────────────────────────────────────────────────────────

export const BillingSubscriptionIdSchema = PrefixedId('sub', 'A billing subscription: sub_<ULID>', 'sub_01KBA7Q4F5R8T1W4Y7A0C3E6HJ');
export const BillingSubscriptionParams = Type.Object({ subscriptionId: BillingSubscriptionIdSchema });
export const PlanId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'x-pattern-description': '1–64 letters, digits, ., _ or -, starting with a letter or digit', description: 'A plan of the billing policy', examples: ['basic-monthly'] });

export const PlanView = Type.Object(
  {
    planId: Type.String(),
    name: Type.String(),
    price: Type.Integer({ description: 'Minor units per period' }),
    currency: Type.String(),
    period: Type.String({ description: 'ISO 8601 duration: P1M, P1Y, PT1M…' }),
    credits: Type.Integer({ description: 'Credits included each period (entitlements)' }),
    features: Type.Array(Type.String(), { description: 'Features of the policy’s services the plan unlocks' }),
  },
  { title: 'FluxPayPlan' },
);
export const PlanList = Type.Object({ items: Type.Array(PlanView) }, { title: 'FluxPayPlanList' });

export const SubscribeBody = Type.Object({ userId: UserId, planId: PlanId, card: CardBody }, { ...Strict, title: 'FluxPaySubscribeRequest' });
export const CancelSubscriptionBody = Type.Object({}, { ...Strict, title: 'FluxPayCancelSubscriptionRequest', description: 'Empty (or no body)' });
export const ChangePlanBody = Type.Object({ planId: PlanId }, { ...Strict, title: 'FluxPayChangePlanRequest' });
export const UpdateCardBody = Type.Object({ card: CardBody }, { ...Strict, title: 'FluxPayUpdateCardRequest' });
export const SubscriptionChargeHeaders = Type.Object({
  'x-sim-scenario': Type.Optional(Type.Enum(SCENARIOS, { description: 'The outcome of the charge this request makes, whatever the card says (as for `POST /api/v1/payments/confirm`)', examples: ['fail'] })),
  ...SimMixHeader.properties,
  ...IdempotencyKeyHeader.properties,
});

export const InvoiceView = Type.Object(
  {
    invoiceId: Type.String({ description: 'inv_<ULID>' }),
    kind: Type.Enum(['INITIAL', 'RENEWAL', 'RETRY', 'PRORATION']),
    planId: Type.String(),
    amount: Type.Integer(),
    currency: Type.String(),
    periodStart: IsoDateTime,
    periodEnd: IsoDateTime,
    status: Type.Enum(['PAID', 'DECLINED', 'REFUNDED']),
    orderId: Type.String({ description: 'The FluxPay order of the charge (COMPLETED when paid, CANCELLED when declined)' }),
    paymentKey: Type.String(),
    failureCode: Nullable(Type.String(), 'Why the card was declined'),
    createdAt: IsoDateTime,
  },
  { title: 'FluxPayInvoice' },
);

const billingFields = {
  subscriptionId: Type.String({ description: 'sub_<ULID>' }),
  userId: Type.String(),
  planId: Type.String(),
  status: Type.Enum(['ACTIVE', 'PAST_DUE', 'CANCELED', 'EXPIRED'], { description: 'CANCELED: canceled, usable until currentPeriodEnd, then EXPIRED' }),
  cancelAtPeriodEnd: Type.Boolean(),
  currentPeriodStart: IsoDateTime,
  currentPeriodEnd: IsoDateTime,
  pendingPlanId: Nullable(Type.String(), 'A downgrade waiting for the next renewal'),
  nextChargeAt: IsoOrNull('The next renewal (ACTIVE) or dunning retry (PAST_DUE)'),
  dunningAttempt: Type.Integer({ minimum: 0, description: 'Declined charges of the current renewal' }),
  card: Type.Object({ last4: Type.String(), expMonth: Nullable(Type.Integer()), expYear: Nullable(Type.Integer()) }),
  canceledAt: IsoOrNull('When it was canceled'),
  expiredAt: IsoOrNull('When it expired'),
  createdAt: IsoDateTime,
  updatedAt: IsoDateTime,
};
export const BillingSubscriptionSummary = Type.Object(billingFields, { title: 'FluxPayBillingSubscriptionSummary' });
export const BillingSubscriptionView = Type.Object({ ...billingFields, invoices: Type.Array(InvoiceView, { description: 'Oldest first (the newest 24)' }) }, { title: 'FluxPayBillingSubscription' });
export const BillingSubscriptionQuery = Type.Object({
  userId: Type.Optional(UserId),
  cursor: Type.Optional(BillingSubscriptionIdSchema),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT, examples: [20] })),
}, Strict);
export const BillingSubscriptionPage = PageOf(BillingSubscriptionSummary, 'FluxPayBillingSubscriptionPage');

export const EntitlementsView = Type.Object(
  {
    subscriptionId: Type.String(),
    userId: Type.String(),
    planId: Type.String(),
    status: Type.Enum(['ACTIVE', 'PAST_DUE', 'CANCELED', 'EXPIRED']),
    entitled: Type.Boolean({ description: 'The plan’s features are usable: ACTIVE, CANCELED until its period ends, PAST_DUE while dunning retries run' }),
    periodStart: IsoDateTime,
    periodEnd: IsoDateTime,
    features: Type.Array(Type.String()),
    credits: Type.Object({
      included: Type.Integer({ description: 'The plan’s credits per period' }),
      used: Type.Integer({ description: 'The user’s credits deducted minus refunded since periodStart (the running total less the use noted when the period began); negative when credits used before were refunded since' }),
      remaining: Type.Integer({ description: 'max(0, included − used)' }),
    }),
  },
  { title: 'FluxPayEntitlements' },
);

// ── webhooks: the envelope of each kind of event, with its `data` (views.ts eventData) ──────────

const envelope = (kind: string, data: TSchema, title: string) =>
  Type.Object(
    {
      eventId: Type.String({ description: 'evt_<ULID>: the same on every retry and republication; de-duplicate on it' }),
      eventType: Type.Enum(OUTBOX_EVENT_TYPES.filter((type) => type.startsWith(`${kind}.`))),
      occurredAt: IsoDateTime,
      data,
    },
    { title, additionalProperties: false },
  );

/**
 * The webhook of each kind of FluxPay event (documented under the document's `webhooks`), by the
 * kind its type starts with: a payment's (the payment), an order's (the order and its payment), a
 * credit movement's (the transaction, the usage it belongs to, the balance after) and a billing
 * subscription's (the subscription and its latest invoice).
 */
export const WEBHOOK_ENVELOPES: Readonly<Record<'payment' | 'order' | 'credit' | 'subscription', TSchema>> = {
  payment: envelope('payment', PaymentView, 'FluxPayPaymentWebhook'),
  order: envelope('order', Type.Object({ ...OrderView.properties, payment: Nullable(PaymentView, 'Its payment, if it has one') }, { title: 'FluxPayOrderEventData' }), 'FluxPayOrderWebhook'),
  credit: envelope(
    'credit',
    Type.Object(
      {
        ...TransactionView.properties,
        creditUsageId: Nullable(Type.String(), 'cu_<ULID>: the usage deducted or refunded (null for a charge)'),
        balance: Type.Integer({ description: 'The balance after it (= balanceAfter)' }),
      },
      { title: 'FluxPayCreditEventData' },
    ),
    'FluxPayCreditWebhook',
  ),
  subscription: envelope(
    'subscription',
    Type.Object({ ...billingFields, latestInvoice: Nullable(InvoiceView, 'Its newest invoice') }, { title: 'FluxPaySubscriptionEventData' }),
    'FluxPaySubscriptionWebhook',
  ),
};

/** The webhook schema of an event type (`credit.charged` → the credit kind's). */
export function webhookEnvelopeOf(eventType: string): TSchema {
  const kind = eventType.slice(0, eventType.indexOf('.')) as keyof typeof WEBHOOK_ENVELOPES;
  const schema = WEBHOOK_ENVELOPES[kind] as TSchema | undefined;
  if (schema === undefined) throw new Error(`no webhook schema for ${eventType}`);
  return schema;
}
