import { Type } from 'typebox';
import { SCENARIOS } from '../../core/scenario.ts';
import { V2_STATUSES } from '../../core/v2/payment.ts';
import { CLIENT_REFERENCE, IdempotencyKeyHeader, IsoDateTime, SimMixHeader, WebhookUrl } from '../../http/schemas.ts';

/**
 * Schemas of the Payment Server v3 API (source document 001), snake_case as that server wrote
 * them. Bodies reject unknown fields (pydantic's `extra_forbidden`): a typo in a payment request
 * is an error, not a silent default. Query strings ignore unknown parameters, as FastAPI does.
 * @see issue 10 "Endpoints", ../../../../shared/seeds/001_8ef7263c4f45841a.txt
 */

const Strict = { additionalProperties: false } as const;

export const TX_ID_MAX = 128;
/** `pay_` and a tx_id. */
export const PAYMENT_ID_MAX = TX_ID_MAX + 4;
export const DEFAULT_LIST_LIMIT = 1000;
export const MAX_LIST_LIMIT = 10_000;

const ClientId = (description: string) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description });
const PaymentId = Type.String({ minLength: 1, maxLength: PAYMENT_ID_MAX, description: '`pay_<tx_id>`' });
export const V2StatusSchema = Type.Enum(V2_STATUSES, { title: 'V2PaymentStatus', description: 'PENDING until auto-completion and its callback are done (or a manual confirm); PAYMENT_FAILED when declined' });

export const CreatePaymentBody = Type.Object(
  {
    version: Type.Optional(Type.Literal('v2', { description: 'The API version: `v2` when present' })),
    tx_id: Type.String({ minLength: 1, maxLength: TX_ID_MAX, ...CLIENT_REFERENCE, description: 'The client’s transaction id: the payment is `pay_<tx_id>`. The same tx_id with the same body returns that payment again (no second callback); with another body it is 409' }),
    order_id: ClientId('The client’s order'),
    user_id: ClientId('The client’s user'),
    amount: Type.Integer({ minimum: 1, maximum: 100_000_000_000, description: 'Minor units (KRW has none)' }),
    callback_url: { ...WebhookUrl, description: 'Absolute http(s) URL, without spaces, control characters or backslashes: receives the signed callback (`payment.completed` or `payment.failed`)' },
  },
  { ...Strict, title: 'V2CreatePaymentRequest' },
);

export const CreatePaymentHeaders = Type.Object({
  'x-sim-scenario': Type.Optional(
    Type.Enum(SCENARIOS, {
      description: 'The outcome, without changing the body: `approve` (completed), `fail` (PAYMENT_FAILED, card_declined), `delay` (completed after DEFAULT_DELAY_DELAY_MS), `random` (RANDOM_APPROVE_RATE), `mix` (weights in `X-Sim-Mix`, else the MIX setting). Default: V2_DEFAULT_SCENARIO (unset: mix when MIX is set, else approve)',
      examples: ['fail'],
    }),
  ),
  ...SimMixHeader.properties,
  ...IdempotencyKeyHeader.properties,
});

export const CreatePaymentResponse = Type.Object(
  {
    ok: Type.Literal(true),
    tx_id: Type.String(),
    status: V2StatusSchema,
    payment_id: Type.String({ description: '`pay_<tx_id>`' }),
  },
  { title: 'V2CreatePaymentResponse' },
);

export const ConfirmPaymentBody = Type.Object({ payment_id: PaymentId }, { ...Strict, title: 'V2ConfirmPaymentRequest' });

export const ConfirmPaymentResponse = Type.Object(
  {
    ok: Type.Literal(true),
    payment_id: Type.String(),
    status: Type.Literal('PAYMENT_COMPLETED'),
    confirmed_at: IsoDateTime,
  },
  { title: 'V2ConfirmPaymentResponse' },
);

export const PaymentView = Type.Object(
  {
    payment_id: Type.String(),
    order_id: Type.Integer(),
    tx_id: Type.String(),
    user_id: Type.Integer(),
    amount: Type.Integer(),
    status: V2StatusSchema,
    created_at: IsoDateTime,
    confirmed_at: Type.Union([IsoDateTime, Type.Null()], { description: 'When it became PAYMENT_COMPLETED; null until then' }),
    callback_url: Type.String(),
    failure_code: Type.Union([Type.String(), Type.Null()], { description: '`card_declined` when declined; null otherwise' }),
  },
  { title: 'V2Payment' },
);

export const PaymentList = Type.Object(
  {
    pending_count: Type.Integer({ description: 'PENDING payments held (all of them, whatever `limit` and `status` say)' }),
    completed_count: Type.Integer({ description: 'PAYMENT_COMPLETED payments held' }),
    failed_count: Type.Integer({ description: 'PAYMENT_FAILED payments held' }),
    payments: Type.Record(Type.String(), PaymentView, { description: 'By payment id, newest first: at most `limit`, of `status` when given' }),
  },
  { title: 'V2PaymentList' },
);

export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT, description: 'Payments in the map at most', examples: [100] })),
  status: Type.Optional(Type.Enum(V2_STATUSES, { description: 'Only the payments in this status', examples: ['PENDING'] })),
});

/** The route's own parameter: a wildcard, so a payment id of any length reaches it (a named parameter is cut at 100 characters). */
export const WildcardParams = Type.Object({ '*': Type.String() });

/** How the document shows that parameter. */
/** The path's payment id: any text (a wildcard, so that a `tx_id` with a slash is one id); one that names no payment, however long, is a 404. */
export const PaymentIdParams = Type.Object({ payment_id: Type.String({ minLength: 1, description: '`pay_<tx_id>`; one that names no payment (one longer than the 132 characters an id has, too) is a 404', examples: ['pay_tx_1001'] }) });

export const V2ErrorBody = Type.Object(
  { detail: Type.String({ description: 'What went wrong: `Payment not found`, `Not authenticated`, `Not Found`, …' }) },
  { title: 'V2Error', description: 'FastAPI’s error shape' },
);

export const V2ValidationErrorBody = Type.Object(
  {
    detail: Type.Array(
      Type.Object(
        {
          type: Type.String({ description: 'pydantic’s error type: missing, int_type, greater_than_equal, literal_error, url_scheme, json_invalid, extra_forbidden, …' }),
          loc: Type.Array(Type.Union([Type.String(), Type.Integer()]), { description: 'Where: `["body", "amount"]`, `["query", "limit"]`, `["body", 41]` (where malformed JSON broke)' }),
          msg: Type.String(),
          input: Type.Unknown({ description: 'The value that was refused' }),
          ctx: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'The rule’s parameters, e.g. `{"ge": 1}`' })),
        },
        { title: 'V2ValidationIssue' },
      ),
      { minItems: 1 },
    ),
  },
  { title: 'V2ValidationError', description: 'FastAPI’s 422: one item per problem' },
);

/** The callback's body (documented under the document's `webhooks`). */
export const V2Callback = Type.Object(
  {
    version: Type.Literal('v2'),
    payment_id: Type.String(),
    order_id: Type.Integer(),
    tx_id: Type.String(),
    user_id: Type.Integer(),
    amount: Type.Integer(),
    status: Type.Enum(['PAYMENT_COMPLETED', 'PAYMENT_FAILED']),
    created_at: IsoDateTime,
    confirmed_at: Type.Union([IsoDateTime, Type.Null()], { description: 'When auto-completion ran; null for a failure' }),
    failure_code: Type.Optional(Type.String({ description: 'Only in `payment.failed`: card_declined' })),
  },
  { title: 'V2Callback', additionalProperties: false },
);
