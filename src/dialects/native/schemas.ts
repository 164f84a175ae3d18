import { Type } from 'typebox';
import { DELIVERY_STATUSES } from '../../core/deliveries.ts';
import { INTENT_STATUSES } from '../../core/intents/intent.ts';
import { SCENARIOS } from '../../core/scenario.ts';
import { CLIENT_REFERENCE, IsoDateTime, PrefixedId, WebhookUrl } from '../../http/schemas.ts';

/**
 * Schemas of the native API (`/v1/sim`), snake_case as in source document 000.
 * Objects reject unknown fields: a typo in a payment request is an error, not a silent default.
 */

const Strict = { additionalProperties: false } as const;

export const IntentId = PrefixedId('pay');

export const Card = Type.Object(
  {
    number: Type.Optional(
      Type.String({ minLength: 1, maxLength: 19, description: 'Card number: 12 to 19 digits passing the Luhn check (else 400, rule `incorrect_number`). Stripe’s test numbers have their own outcome, whatever the CVV' }),
    ),
    cvv: Type.Optional(Type.String({ minLength: 1, maxLength: 4, description: '3 or 4 digits (else 400, rule `invalid_cvc`). Unless the card expired or its number is a Stripe test number, the last digit decides: 0, 1, 9 approve; d declines with DECLINE_<d>' })),
    exp_month: Type.Optional(Type.Integer({ minimum: 1, maximum: 12 })),
    exp_year: Type.Optional(Type.Integer({ minimum: 2000, maximum: 2199 })),
  },
  { ...Strict, title: 'Card', description: 'Card data, always checked; without a `scenario` (or `mix`) the card rules decide the outcome: an expiry in the past declines `expired_card`, a Stripe test number has its outcome, otherwise the CVV’s last digit decides (no CVV approves)' },
);

export const CreateIntentBody = Type.Object(
  {
    reservation_id: Type.String({ minLength: 1, maxLength: 128, ...CLIENT_REFERENCE }),
    amount: Type.Integer({ minimum: 1, maximum: 100_000_000_000, description: 'Minor units of the currency' }),
    currency: Type.Optional(Type.String({ format: 'iso4217', default: 'KRW', description: 'An ISO 4217 currency code in use (KRW, USD, EUR, …)' })),
    scenario: Type.Optional(Type.Enum(SCENARIOS)),
    mix: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Weighted outcomes for scenario `mix` (or without a scenario), e.g. `approve:90,fail:7,delay:3`: each payment picks one with probability weight / total, from the seeded random stream. Default: the MIX setting', examples: ['approve:90,fail:7,delay:3'] })),
    delay_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    card: Type.Optional(Card),
    webhook_url: Type.Optional(WebhookUrl),
    // propertyNames, not the record's key schema: Ajv checks the latter only as a pattern, never its length.
    metadata: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 500 }), { maxProperties: 20, propertyNames: { minLength: 1, maxLength: 40 }, description: 'At most 20 string values of at most 500 characters; keys of 1–40 characters' })),
  },
  { ...Strict, title: 'CreateIntentRequest' },
);

export const CreateIntentResponse = Type.Object({
  payment_intent_id: IntentId,
  status: Type.Literal('PENDING'),
  next: Type.Union([Type.Literal('webhook'), Type.Literal('poll')], { description: '`webhook` when the result will be delivered to `webhook_url`, else `poll`' }),
}, { title: 'CreateIntentResponse' });

export const IntentStatus = Type.Enum(INTENT_STATUSES, { title: 'IntentStatus' });

export const IntentView = Type.Object({
  payment_intent_id: IntentId,
  reservation_id: Type.String(),
  amount: Type.Integer(),
  currency: Type.String(),
  scenario: Type.String({ description: 'approve | fail | delay | random | mix, or card when the card data decided' }),
  status: IntentStatus,
  failure_code: Type.Union([Type.String(), Type.Null()]),
  refunded_amount: Type.Integer(),
  delay_ms: Type.Integer(),
  webhook_url: Type.Union([Type.String(), Type.Null()]),
  metadata: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
  created_at: IsoDateTime,
  updated_at: IsoDateTime,
  decided_at: Type.Union([IsoDateTime, Type.Null()]),
}, { title: 'PaymentIntent' });

export const IntentParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'pay_<ULID>' }) });

/** The intent id of a route, with the example id the route's examples use. */
export const intentParams = (example: string) => Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'pay_<ULID>', examples: [example] }) });

/** The query of a native route that takes none: any parameter is refused (400, `is not a known field`). */
export const NoQuery = Type.Object({}, Strict);

export const ListIntentsQuery = Type.Object(
  {
    reservation_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, ...CLIENT_REFERENCE, description: 'Only the intents of this reservation', examples: ['res_1001'] })),
    status: Type.Optional(Type.Enum(INTENT_STATUSES, { description: 'Only the intents in this status', examples: ['APPROVED'] })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Intents per page', examples: [20] })),
    cursor: Type.Optional(PrefixedId('pay', 'The next_cursor of the previous page', 'pay_01KBA7Q3M9X2T5V8N4R6C1D0EG')),
  },
  Strict,
);

export const IntentList = Type.Object(
  {
    data: Type.Array(IntentView),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'The `cursor` of the next page; null on the last' }),
  },
  { title: 'PaymentIntentList' },
);

export const RefundBody = Type.Object({ amount: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000_000, description: 'Minor units; default: all that is left to refund' })) }, { ...Strict, title: 'RefundRequest' });

export const EmptyBody = Type.Object({}, { ...Strict, title: 'EmptyRequest', description: 'No body, an empty body, or `{}`' });

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String(),
          in: Type.Optional(Type.String()),
          rule: Type.String(),
          message: Type.String(),
        }),
      ),
    ),
    trace_id: Type.Optional(Type.String({ description: 'The trace id of the request (W3C, 32 hex digits), as in the logs' })),
  }),
}, { title: 'NativeError' });

export const WebhookSummary = Type.Union([
  Type.Object({
    status: Type.String({ description: 'pending | retrying | delivered | failed' }),
    attempts: Type.Integer(),
    last_status_code: Type.Union([Type.Integer(), Type.Null()]),
    last_attempt_at: Type.Union([IsoDateTime, Type.Null()]),
  }),
  Type.Null(),
], { title: 'WebhookSummary', description: 'The latest webhook delivery of the intent; null when it has none' });

export const IntentWithWebhook = Type.Object({ ...IntentView.properties, webhook: WebhookSummary }, { title: 'PaymentIntentWithWebhook' });

export const DeliveryStatus = Type.Enum(DELIVERY_STATUSES, { title: 'DeliveryStatus' });

export const DeliveryView = Type.Object({
  id: Type.String({ description: 'whd_<ULID>' }),
  event_id: Type.String({ description: 'evt_<ULID>; the webhook-id receivers de-duplicate on' }),
  type: Type.String(),
  url: Type.String(),
  payment_intent_id: Type.Union([Type.String(), Type.Null()], { description: 'The intent, for deliveries of intent events' }),
  subject: Type.Union([Type.Object({ kind: Type.String({ description: 'intent, booking, …' }), id: Type.String() }), Type.Null()], { description: 'What the delivery is about, whatever the API that produced it' }),
  test: Type.Boolean({ description: 'sent by POST /v1/sim/webhook/test' }),
  status: DeliveryStatus,
  attempts: Type.Array(
    Type.Object({
      at: IsoDateTime,
      status_code: Type.Union([Type.Integer(), Type.Null()]),
      duration_ms: Type.Number(),
      error: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
  next_attempt_at: Type.Union([IsoDateTime, Type.Null()]),
  failure_reason: Type.Union([Type.String(), Type.Null()]),
  created_at: IsoDateTime,
  updated_at: IsoDateTime,
}, { title: 'WebhookDelivery' });

export const ListDeliveriesQuery = Type.Object(
  {
    payment_intent_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only the deliveries of this intent', examples: ['pay_01KBA7Q3M9X2T5V8N4R6C1D0EG'] })),
    booking_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only the deliveries of this booking (`booking.*` webhooks of the bookings API); with `payment_intent_id` too, none (a delivery is about one of them)', examples: ['bk_01KBA7Q4A6J3M8P1T5W9Y2C4HF'] })),
    event_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only the deliveries of this event (the webhook-id)', examples: ['evt_01KBA7Q3R0F5B2K9Z7X3N6Q1VC'] })),
    status: Type.Optional(Type.Enum(DELIVERY_STATUSES, { description: 'Only the deliveries in this status', examples: ['delivered'] })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Deliveries per page', examples: [20] })),
    cursor: Type.Optional(PrefixedId('whd', 'The next_cursor of the previous page', 'whd_01KBA7Q3R2H8W1Y6M0P4S9T7GB')),
  },
  Strict,
);

export const DeliveryList = Type.Object({ data: Type.Array(DeliveryView), next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'The `cursor` of the next page; null on the last' }) }, { title: 'WebhookDeliveryList' });

export const DeliveryParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'whd_<ULID>', examples: ['whd_01KBA7Q3R2H8W1Y6M0P4S9T7GB'] }) });

export const TestWebhookBody = Type.Object(
  {
    payment_intent_id: Type.String({ minLength: 1, maxLength: 64 }),
    type: Type.Enum(['payment.approved', 'payment.failed']),
    webhook_url: WebhookUrl,
  },
  { ...Strict, title: 'TestWebhookRequest' },
);

export const DisabledUrls = Type.Object({ data: Type.Array(Type.Object({ url: Type.String(), disabled_at: IsoDateTime })) }, { title: 'DisabledUrlList' });

export const EnableUrlQuery = Type.Object({ url: Type.String({ minLength: 1, maxLength: 2048, description: 'The disabled URL, exactly as listed', examples: ['http://127.0.0.1:4000/webhooks/retired'] }) }, Strict);

export const EnabledUrl = Type.Object({ url: Type.String(), enabled: Type.Literal(true) }, { title: 'EnabledUrl' });

export const TestWebhookSent = Type.Object(
  {
    sent: Type.Boolean({ description: 'true: logged and queued; false: failed at once (`failure_reason`), logged as failed unless the log was full' }),
    delivery_id: Type.String({ description: 'The delivery, as GET /v1/sim/webhooks/deliveries?payment_intent_id=… lists it (marked `test`); POST /v1/sim/webhooks/deliveries/{id}/replay sends it again once it has ended' }),
    failure_reason: Type.Optional(Type.String({ description: 'Why it failed at once: `queue_full`, `shutting_down`, or `log_full` (the log is full of unfinished deliveries: not kept, its id answers 404)' })),
  },
  { title: 'TestWebhookSent' },
);

/** The body of the native API's webhooks (documented under the document's `webhooks`). */
export const PaymentWebhook = Type.Object(
  {
    id: Type.String({ description: 'The event id (evt_<ULID>), the same on every retry and replay: de-duplicate on it' }),
    type: Type.Enum(['payment.approved', 'payment.failed', 'payment.cancelled', 'payment.refunded']),
    created_at: IsoDateTime,
    payment_intent_id: IntentId,
    reservation_id: Type.String(),
    amount: Type.Integer(),
    currency: Type.String(),
    status: IntentStatus,
    failure_code: Type.Union([Type.String(), Type.Null()]),
    refunded_amount: Type.Integer(),
    ts: Type.String({ format: 'date-time', description: 'Source document 000’s timestamp: the same instant as created_at' }),
    metadata: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
  },
  { title: 'PaymentWebhook' },
);
