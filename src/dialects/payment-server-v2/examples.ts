import { createHmac } from 'node:crypto';
import type { ErrorDocs, Examples } from '../../http/openapi.ts';
import { EXAMPLE_WEBHOOK_SECRET } from '../../plugins/external/swagger.ts';
import { DETAILS } from './errors.ts';
import { V2ErrorBody, V2ValidationErrorBody } from './schemas.ts';

/**
 * The Payment Server v3 API's examples for the OpenAPI document, from source document 001's own
 * (`tx_1001`, order 123, user 1, 1,000). Ids and URLs are fixed example values;
 * test/integration/openapi-examples.test.ts replaces them with real ones before sending each
 * request example.
 */

export const EXAMPLE_IDS = {
  /** A payment whose callback was acknowledged: PAYMENT_COMPLETED (read by the GET example). */
  completed: 'pay_tx_1001',
  /** A payment whose callback's first attempt failed: PENDING (confirmed by the confirm example). */
  pending: 'pay_tx_1002',
} as const;

/** The operations server's callback URL of the document's example, on a local receiver. */
export const EXAMPLE_CALLBACK_URL = 'http://127.0.0.1:4000/api/orders/payment/webhook/v2/tx_1001';
/** A callback URL whose receiver is down (nothing listens on port 4001): the first attempt fails, the payment stays PENDING. */
export const EXAMPLE_DOWN_CALLBACK_URL = 'http://127.0.0.1:4001/api/orders/payment/webhook/v2/tx_1002';

const CREATED_AT = '2026-11-30T09:00:00.000Z';
const CONFIRMED_AT = '2026-11-30T09:00:00.000Z';
const CONFIRMED_BY_HAND_AT = '2026-11-30T09:05:00.000Z';

export const createPaymentRequests: Examples = {
  completed: {
    summary: 'The document’s request: auto-completed, the callback acknowledged',
    value: { version: 'v2', tx_id: 'tx_1001', order_id: 123, user_id: 1, amount: 1000, callback_url: EXAMPLE_CALLBACK_URL },
  },
  callback_failed: {
    summary: 'The callback’s receiver is down: PENDING, the callback is retried',
    value: { version: 'v2', tx_id: 'tx_1002', order_id: 124, user_id: 1, amount: 1000, callback_url: EXAMPLE_DOWN_CALLBACK_URL },
  },
};

export const createPaymentResponses: Examples = {
  completed: { summary: 'The callback got a 2xx: PAYMENT_COMPLETED', value: { ok: true, tx_id: 'tx_1001', status: 'PAYMENT_COMPLETED', payment_id: EXAMPLE_IDS.completed } },
  callback_failed: { summary: 'The callback’s first attempt failed: PENDING until a retry succeeds or it is confirmed by hand', value: { ok: true, tx_id: 'tx_1002', status: 'PENDING', payment_id: EXAMPLE_IDS.pending } },
  declined: { summary: '`X-Sim-Scenario: fail`: declined', value: { ok: true, tx_id: 'tx_1003', status: 'PAYMENT_FAILED', payment_id: 'pay_tx_1003' } },
};

export const confirmRequests: Examples = { confirm: { summary: 'Confirm a PENDING payment by hand', value: { payment_id: EXAMPLE_IDS.pending } } };

export const confirmResponses: Examples = {
  confirm: { summary: 'Completed; no callback is sent for it', value: { ok: true, payment_id: EXAMPLE_IDS.pending, status: 'PAYMENT_COMPLETED', confirmed_at: CONFIRMED_BY_HAND_AT } },
};

const completedPayment = {
  payment_id: EXAMPLE_IDS.completed,
  order_id: 123,
  tx_id: 'tx_1001',
  user_id: 1,
  amount: 1000,
  status: 'PAYMENT_COMPLETED',
  created_at: CREATED_AT,
  confirmed_at: CONFIRMED_AT,
  callback_url: EXAMPLE_CALLBACK_URL,
  failure_code: null,
};

const pendingPayment = {
  ...completedPayment,
  payment_id: EXAMPLE_IDS.pending,
  order_id: 124,
  tx_id: 'tx_1002',
  status: 'PENDING',
  confirmed_at: null,
  callback_url: EXAMPLE_DOWN_CALLBACK_URL,
};

export const getPaymentResponses: Examples = { completed: { summary: 'A completed payment', value: completedPayment } };

export const listResponses: Examples = {
  pending: {
    summary: 'The PENDING payments (counts are of every payment held)',
    value: { pending_count: 1, completed_count: 5, failed_count: 0, payments: { [EXAMPLE_IDS.pending]: pendingPayment } },
  },
};

// --- the callback ---

const EXAMPLE_EVENT_ID = 'evt_01KBA7Q4C2N5R8V1X4Z7B0D3FG';

// The callback carries the payment's fields in the same order, without callback_url and failure_code.
const { callback_url: _callbackUrl, failure_code: _failureCode, ...completedFields } = completedPayment;
const completedCallback = { version: 'v2', ...completedFields };

const failedCallback = { ...completedCallback, payment_id: 'pay_tx_1003', tx_id: 'tx_1003', status: 'PAYMENT_FAILED', confirmed_at: null, failure_code: 'card_declined' };

/** What each callback means, an example body, and its headers (a real signature of that body's exact bytes with the example secret). */
export const V2_CALLBACKS = {
  'payment.completed': {
    summary: 'A payment was auto-completed (Payment Server v3)',
    description: 'The payment’s auto-completion: `status` PAYMENT_COMPLETED, `confirmed_at` when it ran. The payment becomes PAYMENT_COMPLETED when the receiver answers 2xx (until then it is PENDING).',
    example: completedCallback,
  },
  'payment.failed': {
    summary: 'A payment was declined (Payment Server v3)',
    description: 'The payment was declined (`X-Sim-Scenario: fail`, or `random`): `status` PAYMENT_FAILED, `failure_code` card_declined, `confirmed_at` null.',
    example: failedCallback,
  },
} as const;

export function exampleCallbackHeaders(type: keyof typeof V2_CALLBACKS): Record<string, string> {
  const body = JSON.stringify(V2_CALLBACKS[type].example);
  return {
    'x-payment-event': type,
    'x-payment-signature': createHmac('sha256', Buffer.from(EXAMPLE_WEBHOOK_SECRET, 'utf8')).update(body).digest('base64'),
    'x-payment-webhook-id': EXAMPLE_EVENT_ID,
    authorization: 'Bearer ops-service-token',
  };
}

// --- errors ---

const detail = (text: string) => ({ summary: text, value: { detail: text } });

/** getV2Payment's 400: a path with bad percent-encoding (`%ZZ`), refused before any route. */
export const badPaymentPath = { description: 'The path has bad percent-encoding (`%ZZ`).', examples: { bad_url: detail('The request path is not a valid URL (bad percent-encoding).') } };

export const v2ErrorDocs: ErrorDocs = {
  schema: V2ErrorBody,
  byStatus: {
    400: { description: 'The payment is not PENDING: it completed or failed already.', examples: { not_pending: detail(`Payment ${EXAMPLE_IDS.completed} is PAYMENT_COMPLETED; only a PENDING payment can be confirmed`) } },
    401: {
      description: 'With V2_REQUIRE_AUTH=true: no `Authorization: Bearer <SERVICE_AUTH_TOKEN>`, or another token.',
      examples: { unauthenticated: detail(DETAILS.unauthenticated) },
      headers: ['WWW-Authenticate'],
    },
    404: { description: 'No such payment (or it was evicted after V2_PAYMENT_TTL_MS).', examples: { not_found: detail(DETAILS.notFound) } },
    409: {
      description: 'A request with this `Idempotency-Key` is still being processed.',
      examples: { in_use: detail('A request with this Idempotency-Key is still being processed; retry later.') },
    },
    413: { description: 'The body is larger than BODY_LIMIT_BYTES.', examples: { too_large: detail('The request body is larger than the limit (BODY_LIMIT_BYTES).') } },
    415: {
      description: 'The body has a `Content-Type` that is not JSON (one without a `Content-Type`, or with `application/…+json` and any `charset`, is read as JSON, as FastAPI reads it), or the body is compressed (`Content-Encoding` is not decoded).',
      examples: { media_type: detail('Send the body as application/json.'), encoded: detail('The request body is encoded (Content-Encoding: gzip), which is not read: send it uncompressed.') },
    },
    422: {
      description: 'FastAPI’s validation error: one item per problem, with pydantic’s `type`, where (`loc`), a message (`msg`), the value (`input`) and the rule’s parameters (`ctx`). Malformed JSON is `json_invalid` at the position where it broke; a reused `Idempotency-Key` with another body is `idempotency_key_mismatch`.',
      schema: V2ValidationErrorBody,
      examples: {
        validation_failed: {
          summary: 'A missing field and an amount of 0',
          value: {
            detail: [
              { type: 'missing', loc: ['body', 'tx_id'], msg: 'Field required', input: { order_id: 123, user_id: 1, amount: 0, callback_url: EXAMPLE_CALLBACK_URL } },
              { type: 'greater_than_equal', loc: ['body', 'amount'], msg: 'Input should be greater than or equal to 1', input: 0, ctx: { ge: 1 } },
            ],
          },
        },
        json_invalid: {
          summary: 'Malformed JSON',
          value: { detail: [{ type: 'json_invalid', loc: ['body', 13], msg: 'JSON decode error', input: {}, ctx: { error: 'Unexpected end of input (expected a property name in double quotes)' } }] },
        },
      },
    },
    500: { description: 'A fault of the simulator; the request may be retried.', examples: { internal: detail('Something went wrong on our side; the request may be retried.') } },
    503: {
      description: 'Load shedding, a store full of PENDING payments, the store unreachable (STORE=redis and Redis away), or shutting down: retry after `Retry-After` seconds.',
      examples: {
        overloaded: detail('The simulator is overloaded (eventLoopDelay); retry after 1 s.'),
        store_full: detail('The v2_payments store is full of PENDING payments, which it keeps until each is finished: confirm them (POST /api/v2/confirm-payment) or let their callbacks be acknowledged, or raise V2_PAYMENTS_MAX; retrying alone does not make room until some finish.'),
        store_unavailable: detail('The store is unavailable; retry shortly.'),
      },
    },
  },
};

/** A body whose bytes are not UTF-8 text: FastAPI's 400 (src/http/json-body.ts), on every route that takes a body (ut72c: on none). */
const UNPARSABLE_BODY = { description: 'The body is not UTF-8 text (FastAPI’s answer to a body it cannot decode).', example: detail('There was an error parsing the body') };

/** The create's 400. */
export const createUnparsable = { description: UNPARSABLE_BODY.description, examples: { unparsable_body: UNPARSABLE_BODY.example } };

/** The confirm's 400: the payment is not PENDING, or its body cannot be decoded. */
export const confirmBadRequest = {
  description: `The payment is not PENDING: it completed or failed already. Or: ${UNPARSABLE_BODY.description}`,
  examples: { not_pending: detail(`Payment ${EXAMPLE_IDS.completed} is PAYMENT_COMPLETED; only a PENDING payment can be confirmed`), unparsable_body: UNPARSABLE_BODY.example },
};

/** The create's 409 is also a tx_id reused with another body. */
export const createConflict = {
  description: 'The `tx_id` was used before with another body (another order, user, amount or callback URL); or a request with this `Idempotency-Key` is still being processed.',
  examples: { tx_id_reused: detail('tx_id tx_1001 was already used with a different request') },
};

/** The confirm's 422: its body has only `payment_id`. */
export const confirmInvalid = {
  description: 'FastAPI’s validation error: `payment_id` is missing or not a string of the allowed length, or the body has another field (`extra_forbidden`); malformed JSON is `json_invalid`; a reused `Idempotency-Key` with another body is `idempotency_key_mismatch`.',
  examples: {
    validation_failed: { summary: 'No payment_id', value: { detail: [{ type: 'missing', loc: ['body', 'payment_id'], msg: 'Field required', input: {} }] } },
  },
};

/** A list's 422: a query parameter breaks its rule. */
export const badListQuery = {
  description: 'A query parameter breaks its rule (`limit` 1–10,000, `status` one of the statuses).',
  examples: {
    validation_failed: {
      summary: 'limit out of range',
      value: { detail: [{ type: 'less_than_equal', loc: ['query', 'limit'], msg: 'Input should be less than or equal to 10000', input: '20000', ctx: { le: 10000 } }] },
    },
  },
};
