import { EXAMPLE_TRACE_ID, type ErrorDocs, type Examples, type ExtraAnswer } from '../../http/openapi.ts';
import { NAMESPACE_RULE } from '../../core/namespace.ts';
import { parseRule } from '../../core/faults/validation.ts';
import { faultRuleView } from '../../core/faults/view.ts';
import type { FaultRule } from '../../core/faults/model.ts';
import { csvLine } from '../../http/csv.ts';
import { REPORT_CSV_COLUMNS } from './report-views.ts';
import { ErrorBody } from './schemas.ts';

/**
 * The native API's examples for the OpenAPI document, taken from the README's walk-through. Ids
 * are fixed example ids; test/integration/openapi-examples.test.ts replaces them with real ones
 * before sending each request example. Webhook URLs point at a local receiver (127.0.0.1), so a
 * collection generated from the document never calls out of the machine.
 */

export const EXAMPLE_IDS = {
  /** An intent still PENDING (cancel). */
  pendingIntent: 'pay_01KBA7Q3M9X2T5V8N4R6C1D0EF',
  /** An APPROVED intent (read, refund, test webhook). */
  approvedIntent: 'pay_01KBA7Q3M9X2T5V8N4R6C1D0EG',
  /** A finished webhook delivery (replay). */
  delivery: 'whd_01KBA7Q3R2H8W1Y6M0P4S9T7GB',
  event: 'evt_01KBA7Q3R0F5B2K9Z7X3N6Q1VC',
  /** A fault rule (read, delete). */
  rule: 'rule_01KBA7Q4C8D2F6H0J4M8P2R6T0',
} as const;

/** A local receiver, as in the README. */
export const EXAMPLE_WEBHOOK_URL = 'http://127.0.0.1:4000/webhooks/payments';
/** A URL disabled after it answered 410 Gone. */
export const EXAMPLE_GONE_URL = 'http://127.0.0.1:4000/webhooks/retired';

const AT = '2026-11-30T09:00:00.000Z';
const DECIDED_AT = '2026-11-30T09:00:00.200Z';
const TRACE_ID = EXAMPLE_TRACE_ID;

export const createIntentRequests: Examples = {
  approve: {
    summary: 'Approve after the default delay, with a webhook',
    value: { reservation_id: 'rsv_1001', amount: 45000, currency: 'KRW', scenario: 'approve', webhook_url: EXAMPLE_WEBHOOK_URL, metadata: { order: 'A-1001' } },
  },
  card: {
    summary: 'Let the card decide (no scenario): Stripe’s test number 4242… approves whatever the CVV; poll instead of a webhook',
    value: { reservation_id: 'rsv_1002', amount: 30000, card: { number: '4242424242424242', cvv: '129', exp_month: 12, exp_year: 2030 } },
  },
  delay: { summary: 'Stay PENDING for 5 s, then approve (time-outs on the caller’s side)', value: { reservation_id: 'rsv_1003', amount: 12000, scenario: 'delay', delay_ms: 5000 } },
};

export const createIntentResponses: Examples = {
  approve: { summary: 'Created; the result will come by webhook', value: { payment_intent_id: EXAMPLE_IDS.approvedIntent, status: 'PENDING', next: 'webhook' } },
  card: { summary: 'Created; poll GET /v1/sim/intents/{id} for the result', value: { payment_intent_id: 'pay_01KBA7Q3M9X2T5V8N4R6C1D0EH', status: 'PENDING', next: 'poll' } },
  delay: { summary: 'Created; no webhook URL, so poll', value: { payment_intent_id: 'pay_01KBA7Q3M9X2T5V8N4R6C1D0EJ', status: 'PENDING', next: 'poll' } },
};

const intent = {
  payment_intent_id: EXAMPLE_IDS.approvedIntent,
  reservation_id: 'rsv_1001',
  amount: 45000,
  currency: 'KRW',
  scenario: 'approve',
  status: 'APPROVED',
  failure_code: null,
  refunded_amount: 0,
  delay_ms: 200,
  webhook_url: EXAMPLE_WEBHOOK_URL,
  metadata: { order: 'A-1001' },
  created_at: AT,
  updated_at: DECIDED_AT,
  decided_at: DECIDED_AT,
};

export const getIntentResponses: Examples = {
  approved: {
    summary: 'Approved, its webhook delivered',
    value: { ...intent, webhook: { status: 'delivered', attempts: 1, last_status_code: 200, last_attempt_at: DECIDED_AT } },
  },
};

export const listIntentsResponses: Examples = {
  page: { summary: 'A page of one, and the cursor of the next', value: { data: [intent], next_cursor: EXAMPLE_IDS.approvedIntent } },
};

export const cancelIntentResponses: Examples = {
  cancel: {
    summary: 'Cancelled before its decision: no webhook of a decision will follow',
    value: {
      ...intent,
      payment_intent_id: EXAMPLE_IDS.pendingIntent,
      status: 'CANCELLED',
      updated_at: '2026-11-30T09:00:00.100Z',
      decided_at: null,
    },
  },
};

export const refundIntentRequests: Examples = {
  partial: { summary: 'Refund 5,000 of 45,000', value: { amount: 5000 } },
  full: { summary: 'Refund what is left (no body, or an empty one)', value: {} },
};

export const refundIntentResponses: Examples = {
  partial: { summary: 'Partly refunded', value: { ...intent, status: 'PARTIALLY_REFUNDED', refunded_amount: 5000, updated_at: '2026-11-30T09:00:01.000Z' } },
  full: { summary: 'Fully refunded', value: { ...intent, status: 'REFUNDED', refunded_amount: 45000, updated_at: '2026-11-30T09:00:01.000Z' } },
};

const delivery = {
  id: EXAMPLE_IDS.delivery,
  event_id: EXAMPLE_IDS.event,
  type: 'payment.approved',
  url: EXAMPLE_WEBHOOK_URL,
  payment_intent_id: EXAMPLE_IDS.approvedIntent,
  subject: { kind: 'intent', id: EXAMPLE_IDS.approvedIntent },
  test: false,
  status: 'delivered',
  attempts: [{ at: DECIDED_AT, status_code: 200, duration_ms: 3.1, error: null }],
  next_attempt_at: null,
  failure_reason: null,
  created_at: DECIDED_AT,
  updated_at: DECIDED_AT,
};

export const listDeliveriesResponses: Examples = {
  page: { summary: 'A delivered webhook', value: { data: [delivery], next_cursor: null } },
};

export const replayResponses: Examples = {
  replay: {
    summary: 'The same delivery queued again: its earlier attempt kept, created_at unchanged, status pending',
    value: { ...delivery, status: 'pending', updated_at: '2026-11-30T09:05:00.000Z' },
  },
};

export const testWebhookRequests: Examples = {
  approved: { summary: 'Send payment.approved for an intent to a local receiver', value: { payment_intent_id: EXAMPLE_IDS.approvedIntent, type: 'payment.approved', webhook_url: EXAMPLE_WEBHOOK_URL } },
};

export const testWebhookResponses: Examples = {
  approved: { summary: 'Queued for delivery', value: { sent: true, delivery_id: EXAMPLE_IDS.delivery } },
  queue_full: { summary: 'Logged as failed at once: WEBHOOK_QUEUE_MAX deliveries already wait', value: { sent: false, delivery_id: EXAMPLE_IDS.delivery, failure_reason: 'queue_full' } },
};

export const disabledUrlsResponses: Examples = {
  list: { summary: 'One URL, disabled when it answered 410', value: { data: [{ url: EXAMPLE_GONE_URL, disabled_at: '2026-11-30T09:00:02.000Z' }] } },
};

export const enableUrlResponses: Examples = { enable: { summary: 'Deliveries to it resume', value: { url: EXAMPLE_GONE_URL, enabled: true } } };

// --- the webhook the native API sends ---

const webhookBody = {
  id: EXAMPLE_IDS.event,
  type: 'payment.approved',
  created_at: DECIDED_AT,
  payment_intent_id: EXAMPLE_IDS.approvedIntent,
  reservation_id: 'rsv_1001',
  amount: 45000,
  currency: 'KRW',
  status: 'APPROVED',
  failure_code: null,
  refunded_amount: 0,
  ts: DECIDED_AT,
  metadata: { order: 'A-1001' },
};

/** What each webhook of the native API means, and an example body. */
export const PAYMENT_WEBHOOKS: Readonly<Record<string, { summary: string; description: string; example: Record<string, unknown> }>> = {
  'payment.approved': { summary: 'An intent was approved', description: 'The intent’s decision: APPROVED.', example: webhookBody },
  'payment.failed': {
    summary: 'An intent failed',
    description: 'The intent’s decision: FAILED; `failure_code` says why (`card_declined`, `insufficient_funds`, …).',
    example: { ...webhookBody, type: 'payment.failed', status: 'FAILED', failure_code: 'card_declined' },
  },
  'payment.cancelled': {
    summary: 'A PENDING intent was cancelled',
    description: 'Cancelled before its decision (POST /v1/sim/intents/{id}/cancel).',
    example: { ...webhookBody, type: 'payment.cancelled', status: 'CANCELLED', created_at: '2026-11-30T09:00:00.100Z', ts: '2026-11-30T09:00:00.100Z' },
  },
  'payment.refunded': {
    summary: 'An intent was refunded',
    description: 'A refund, partial (PARTIALLY_REFUNDED) or full (REFUNDED); `refunded_amount` is the total so far.',
    example: { ...webhookBody, type: 'payment.refunded', status: 'PARTIALLY_REFUNDED', refunded_amount: 5000, created_at: '2026-11-30T09:00:01.000Z', ts: '2026-11-30T09:00:01.000Z' },
  },
};

// --- errors ---

export const problem = (code: string, message: string, extra: Record<string, unknown> = {}) => ({ error: { code, message, ...extra, trace_id: TRACE_ID } });

export const nativeErrorDocs: ErrorDocs = {
  schema: ErrorBody,
  byStatus: {
    400: {
      description: 'The request is invalid: `details` lists each broken rule with where it is (`in`, a JSON pointer `field`), the rule and a message.',
      examples: {
        validation_failed: {
          summary: 'A field breaks a rule',
          value: problem('VALIDATION_FAILED', 'body /amount: must be >= 1', { details: [{ field: '/amount', rule: 'minimum', message: 'must be >= 1', in: 'body' }] }),
        },
      },
    },
    404: { description: 'No such resource (or it was evicted after its TTL).', examples: { not_found: { summary: 'Unknown id', value: problem('NOT_FOUND', `Payment intent ${EXAMPLE_IDS.pendingIntent} does not exist.`) } } },
    409: {
      description: '`INVALID_STATE`: the resource is not in a state that allows this; `IDEMPOTENCY_KEY_IN_USE`: a request with this key is still running, or (with Redis) took the key over from this one, which then did nothing.',
      examples: { in_use: { summary: 'The same key, still running', value: problem('IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still being processed; retry later.') } },
    },
    413: { description: 'The body is larger than BODY_LIMIT_BYTES.', examples: { too_large: { summary: 'Too large', value: problem('PAYLOAD_TOO_LARGE', 'The request body is larger than the limit (BODY_LIMIT_BYTES).') } } },
    415: {
      description: 'The body is not `application/json`, names a UTF-16 or UTF-32 charset (any other is not read: the body is UTF-8), or is compressed (`Content-Encoding` is not decoded). An empty body is no body, whatever its (well-formed) type.',
      examples: { media_type: { summary: 'Not JSON', value: problem('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.') }, encoded: { summary: 'Compressed', value: problem('UNSUPPORTED_MEDIA_TYPE', 'The request body is encoded (Content-Encoding: gzip), which is not read: send it uncompressed.') } },
    },
    422: {
      description: '`IDEMPOTENCY_KEY_MISMATCH`: this `Idempotency-Key` was used with another body.',
      examples: { mismatch: { summary: 'Key reused with another body', value: problem('IDEMPOTENCY_KEY_MISMATCH', 'This Idempotency-Key was used with a different request body.') } },
    },
    406: {
      description: '`NOT_ACCEPTABLE`: the `Accept` header allows none of the formats the route answers in.',
      examples: { not_acceptable: { summary: 'Neither JSON nor CSV', value: problem('NOT_ACCEPTABLE', 'The report is available as application/json or text/csv; the Accept header allows neither.') } },
    },
    500: { description: 'A fault of the simulator; the request may be retried.', examples: { internal: { summary: 'Internal', value: problem('INTERNAL', 'Something went wrong on our side; the request may be retried.') } } },
    503: {
      description:
        '`OVERLOADED` (load shedding), `SHUTTING_DOWN`, `STORE_FULL` (the store holds only PENDING intents), or `STORE_UNAVAILABLE` (STORE=redis and Redis cannot be reached; the service reconnects by itself): retry after `Retry-After` seconds.',
      examples: {
        overloaded: { summary: 'Load shedding', value: problem('OVERLOADED', 'The simulator is overloaded (eventLoopDelay); retry after 1 s.') },
        store_unavailable: { summary: 'Redis is unreachable', value: problem('STORE_UNAVAILABLE', 'The store is unavailable; retry shortly.') },
      },
    },
  },
};

export const urlNotDisabled: Examples = {
  not_disabled: { summary: 'Not disabled', value: problem('NOT_FOUND', `Disabled URL ${EXAMPLE_WEBHOOK_URL} does not exist.`) },
};

export const cancelConflict = {
  description: '`INVALID_STATE`: only a PENDING intent can be cancelled; `IDEMPOTENCY_KEY_IN_USE`.',
  examples: { decided: { summary: 'Already decided', value: problem('INVALID_STATE', `Payment intent ${EXAMPLE_IDS.approvedIntent} is APPROVED; only a PENDING intent can be cancelled.`) } },
};

export const refundConflict = {
  description: '`INVALID_STATE`: only an APPROVED or PARTIALLY_REFUNDED intent can be refunded; `IDEMPOTENCY_KEY_IN_USE`.',
  examples: { not_approved: { summary: 'Not approved', value: problem('INVALID_STATE', `Payment intent ${EXAMPLE_IDS.pendingIntent} is PENDING; only an APPROVED or PARTIALLY_REFUNDED intent can be refunded.`) } },
};

export const refundUnprocessable = {
  description: '`REFUND_EXCEEDS_AMOUNT`: more than is left to refund; `IDEMPOTENCY_KEY_MISMATCH`.',
  examples: { exceeds: { summary: 'Too much', value: problem('REFUND_EXCEEDS_AMOUNT', `A refund of 50000 exceeds the 45000 left to refund on ${EXAMPLE_IDS.approvedIntent}.`) } },
};

export const replayConflict = {
  description: '`INVALID_STATE`: the delivery is still pending or retrying, or another replay of it came first; `IDEMPOTENCY_KEY_IN_USE`.',
  examples: { unfinished: { summary: 'Still retrying', value: problem('INVALID_STATE', `Webhook delivery ${EXAMPLE_IDS.delivery} is retrying; only a delivered or failed delivery can be replayed.`) } },
};

// --- per-operation error examples (what each operation really answers) ---

const detail = (field: string, rule: string, message: string, where: string) => ({ field, rule, message, in: where });

/** A GET whose only 400 is a path the URL parser cannot read. */
export const badUrl = {
  description: '`BAD_URL`: the path has bad percent-encoding.',
  examples: { bad_url: { summary: 'Bad percent-encoding', value: problem('BAD_URL', 'The request path is not a valid URL (bad percent-encoding).') } },
};

/** A list: a query parameter breaks its rule. */
export const badListQuery = {
  description:
    'A query parameter breaks its rule (unknown parameters too), or a `cursor` that is not an id of this list’s kind (`pay_<ULID>` for intents, `whd_<ULID>` for deliveries): only its form is checked (a well-formed id of no intent or delivery is not refused).',
  examples: {
    validation_failed: {
      summary: 'limit out of range',
      value: problem('VALIDATION_FAILED', 'querystring /limit: must be >= 1', { details: [detail('/limit', 'minimum', 'must be >= 1', 'querystring')] }),
    },
  },
};

/** A bodyless POST given a body with a field. */
export const unknownBodyField = {
  description: 'The body, when there is one, must be empty or `{}`: a field is refused; malformed JSON too.',
  examples: {
    unknown_field: {
      summary: 'A field the operation does not take',
      value: problem('VALIDATION_FAILED', 'body /reason: is not a known field', { details: [detail('/reason', 'additionalProperties', 'is not a known field', 'body')] }),
    },
  },
};

export const testWebhookInvalid = {
  description: 'The body is invalid: `type` is one of payment.approved, payment.failed; `webhook_url` an absolute http(s) URL.',
  examples: {
    validation_failed: {
      summary: 'Another event type',
      value: problem('VALIDATION_FAILED', 'body /type: must be one of payment.approved, payment.failed', {
        details: [detail('/type', 'enum', 'must be one of payment.approved, payment.failed', 'body')],
      }),
    },
  },
};

export const testWebhookConflict = {
  description: '`INVALID_STATE`: the URL is disabled (it answered 410 Gone; nothing is logged); `IDEMPOTENCY_KEY_IN_USE`.',
  examples: {
    disabled: {
      summary: 'The URL is disabled',
      value: problem('INVALID_STATE', `${EXAMPLE_WEBHOOK_URL} is disabled since it answered 410 Gone: re-enable it (DELETE /v1/sim/webhooks/disabled-urls?url=…, or the console's Webhooks page) to send to it again.`),
    },
  },
};

export const urlRequired = {
  description: '`url` is required (1–2048 characters; unknown parameters are refused). It is not checked to be a URL: any other text is simply not disabled (404).',
  examples: {
    validation_failed: {
      summary: 'No url',
      value: problem('VALIDATION_FAILED', "querystring /url: must have required property 'url'", { details: [detail('/url', 'required', "must have required property 'url'", 'querystring')] }),
    },
  },
};

export const deliveryNotFound = {
  description: 'No such delivery (or it left the log after WEBHOOK_LOG_TTL_MS).',
  examples: { not_found: { summary: 'Unknown delivery', value: problem('NOT_FOUND', `Webhook delivery ${EXAMPLE_IDS.delivery} does not exist.`) } },
};

// --- fault rules (issue 15) ---

/**
 * The rule examples match only requests that carry `X-Test-Case` (as a test suite tags the case it
 * runs), so the examples sent by test/integration/openapi-examples.test.ts never shape another
 * example's answer.
 */
const ruleExamples = {
  latency: {
    summary: 'Slow big native payments: lognormal latency, p50 200 ms and p99 2 s, for half of them',
    value: {
      name: 'slow big payments',
      match: { dialect: 'native', method: 'POST', route: '/v1/sim/intent', headers: { 'x-test-case': 'slow-gateway' }, body: { amount: { gte: 1_000_000 } } },
      probability: 0.5,
      action: { type: 'latency', distribution: 'lognormal', params: { p50: 200, p99: 2000 } },
    },
  },
  error: {
    summary: 'The first 3 FluxPay order reads answer 503 with Retry-After: 2',
    value: { match: { dialect: 'fluxpay', route: '/api/v1/orders/:orderId', headers: { 'x-test-case': 'flaky-orders' } }, count: 3, action: { type: 'error', status: 503, retry_after_seconds: 2 } },
  },
  response_lost: {
    summary: 'Commit the /api/v2 payment, then reset the connection before the answer',
    value: { match: { dialect: 'payment-server-v2', method: 'POST', route: '/api/v2/payments', headers: { 'x-test-case': 'lost-answer' } }, count: 1, action: { type: 'response_lost' } },
  },
  outcome: {
    summary: 'Decline every native intent of one test case with insufficient_funds',
    value: { match: { route: '/v1/sim/intent', headers: { 'x-test-case': 'declines' } }, action: { type: 'outcome', failure_code: 'insufficient_funds' } },
  },
  duplicate: {
    summary: 'Send every webhook to one receiver twice, with the same event id',
    value: { name: 'duplicate webhooks', match: { url_prefix: 'http://127.0.0.1:4000/webhooks/' }, window: { until: 600_000 }, action: { type: 'duplicate' } },
  },
} as const satisfies Examples;

export const createRuleRequests: Examples = ruleExamples;

/** The answer to an example: the rule as the API shows it (parsed and viewed by the service's own code), with fixed ids and times. */
function ruleView(body: unknown, id: string, hits = 0): unknown {
  const createdAt = Date.parse(AT);
  const parsed = parseRule(body, { now: createdAt });
  if (!parsed.ok) throw new Error(`a fault rule example is invalid: ${JSON.stringify(parsed.issues)}`);
  const rule = { ...parsed.value.input, id, createdAt } as FaultRule;
  return faultRuleView({ rule, hits, matched: hits, lastHitAt: hits === 0 ? null : Date.parse(DECIDED_AT) });
}

const RULE_IDS = {
  latency: EXAMPLE_IDS.rule,
  error: 'rule_01KBA7Q4C8D2F6H0J4M8P2R6T1',
  response_lost: 'rule_01KBA7Q4C8D2F6H0J4M8P2R6T2',
  outcome: 'rule_01KBA7Q4C8D2F6H0J4M8P2R6T3',
  duplicate: 'rule_01KBA7Q4C8D2F6H0J4M8P2R6T4',
} as const;

export const createRuleResponses: Examples = Object.fromEntries(
  Object.entries(ruleExamples).map(([name, example]) => [name, { summary: 'Created', value: ruleView(example.value, RULE_IDS[name as keyof typeof RULE_IDS]) }]),
);

export const listRulesResponses: Examples = {
  rules: { summary: 'Two rules, the first applied once', value: { data: [ruleView(ruleExamples.error.value, RULE_IDS.error, 1), ruleView(ruleExamples.duplicate.value, RULE_IDS.duplicate)] } },
};

export const getRuleResponses: Examples = {
  rule: { summary: 'A latency rule that applied twice', value: ruleView(ruleExamples.latency.value, EXAMPLE_IDS.rule, 2) },
};

export const deleteRuleResponses: Examples = {
  deleted: { summary: 'Deleted, with its last counters', value: ruleView(ruleExamples.latency.value, EXAMPLE_IDS.rule, 2) },
};

export const deleteRulesResponses: Examples = {
  deleted: { summary: 'Three rules deleted', value: { deleted: 3 } },
};

export const badRule = {
  description: 'The rule is invalid: `details` names every problem at once, as JSON pointers into the body.',
  examples: {
    invalid: {
      summary: 'An unknown status and a probability above 1',
      value: problem('VALIDATION_FAILED', 'body /probability: must be a number from 0 to 1', {
        details: [detail('/probability', 'maximum', 'must be a number from 0 to 1', 'body'), detail('/action/status', 'enum', 'must be one of 500, 502, 503, 504, 429', 'body')],
      }),
    },
  },
};

/** A query parameter a route that takes none was sent (src/dialects/native/index.ts): its 400. */
export const UNKNOWN_QUERY_ANSWER: ExtraAnswer = {
  status: 400,
  description: 'A query parameter was sent: this route takes none (a typo is never silently ignored).',
  also: 'Also: a query parameter was sent, which this route does not take.',
  name: 'unknown_query',
  example: {
    summary: 'A query parameter the route does not take',
    value: problem('VALIDATION_FAILED', 'querystring /limit: is not a known field', { details: [detail('/limit', 'additionalProperties', 'is not a known field', 'querystring')] }),
  },
  headers: [],
};

export const badRuleId = {
  description: 'The id is not a rule id.',
  examples: { bad_id: { summary: 'Not a rule id', value: problem('VALIDATION_FAILED', 'params /id: must be a rule id: rule_<ULID>, or the id its create or FAULTS_FILE gave', { details: [detail('/id', 'pattern', 'must be a rule id: rule_<ULID>, or the id its create or FAULTS_FILE gave', 'params')] }) } },
};

export const ruleNotFound = {
  description: 'No such rule (it was deleted, or never existed).',
  examples: { not_found: { summary: 'Unknown rule', value: problem('NOT_FOUND', `Fault rule ${EXAMPLE_IDS.rule} does not exist.`) } },
};

// --- the run report ---

const reportDeliveries = (count: number, delivered: number, failed: number, attempts: number, last: number | null) => ({ count, delivered, failed, pending: count - delivered - failed, attempts, last_status_code: last });

const reportPayments = [
  { dialect: 'native', id: EXAMPLE_IDS.approvedIntent, reference: 'rsv_1002', amount: 45000, currency: 'KRW', status: 'APPROVED', approved: true, failure_code: null, decided_by: 'approve', created_at: AT, decided_at: DECIDED_AT, deliveries: reportDeliveries(1, 0, 1, 6, 500) },
  { dialect: 'native', id: EXAMPLE_IDS.pendingIntent, reference: 'rsv_1001', amount: 12000, currency: 'KRW', status: 'FAILED', approved: false, failure_code: 'card_declined', decided_by: 'card', created_at: AT, decided_at: DECIDED_AT, deliveries: reportDeliveries(1, 1, 0, 1, 200) },
  { dialect: 'payment-server-v2', id: 'pay_tx-20261130-0001', reference: 'tx-20261130-0001', amount: 30000, currency: 'KRW', status: 'PAYMENT_COMPLETED', approved: true, failure_code: null, decided_by: 'approve', created_at: AT, decided_at: '2026-11-30T09:00:03.000Z', deliveries: reportDeliveries(1, 1, 0, 1, 200) },
  { dialect: 'bookings', id: 'bk_01KBA7Q4A6J3M8P1T5W9Y2C4HD', reference: 'perf_001', amount: 100000, currency: 'KRW', status: 'confirmed', approved: true, failure_code: null, decided_by: null, created_at: AT, decided_at: '2026-11-30T09:00:01.200Z', deliveries: reportDeliveries(0, 0, 0, 0, null) },
  { dialect: 'fluxpay', id: 'ord_01KBA7Q5B1C2D3E4F5G6H7J8K9', reference: 'Premium plan', amount: 9900, currency: 'KRW', status: 'PAID', approved: true, failure_code: null, decided_by: 'card', created_at: AT, decided_at: DECIDED_AT, deliveries: reportDeliveries(1, 1, 0, 1, 200) },
];

export const reportResponses: Examples = {
  report: {
    summary: 'Two intents (one webhook failed after its retries), a v2 payment, a booking and a FluxPay order',
    value: {
      namespace: 'default',
      since: null,
      generated_at: '2026-11-30T09:10:00.000Z',
      payments: reportPayments,
      totals: {
        payments: 5,
        by_dialect: {
          native: { payments: 2, by_status: { PENDING: 0, APPROVED: 1, FAILED: 1, CANCELLED: 0, PARTIALLY_REFUNDED: 0, REFUNDED: 0 } },
          'payment-server-v2': { payments: 1, by_status: { PENDING: 0, PAYMENT_COMPLETED: 1, PAYMENT_FAILED: 0 } },
          bookings: { payments: 1, by_status: { pending: 0, confirmed: 1, failed: 0, expired: 0, cancelled: 0 } },
          fluxpay: { payments: 1, by_status: { PENDING: 0, PAID: 1, COMPLETED: 0, CANCELLED: 0 } },
        },
        approved_amounts: { KRW: 184900 },
        deliveries: { count: 4, delivered: 3, failed: 1, pending: 0, attempts: 9 },
      },
    },
  },
};

/** The same report as CSV: REPORT_CSV_COLUMNS, then one row per payment with its deliveries' figures flattened (RFC 4180, CRLF). */
export const reportCsvResponses: Examples = {
  report: {
    summary: 'The same report as CSV (Accept: text/csv): a header row, one row per payment, no totals',
    value: [
      csvLine(REPORT_CSV_COLUMNS),
      ...reportPayments.map(({ deliveries: d, ...p }) =>
        csvLine([p.dialect, p.id, p.reference, p.amount, p.currency, p.status, p.approved, p.failure_code, p.decided_by, p.created_at, p.decided_at, d.count, d.delivered, d.failed, d.pending, d.attempts, d.last_status_code]),
      ),
    ].join(''),
  },
};

export const badReportQuery = {
  description: '`since` is not an ISO 8601 UTC instant, or `namespace` is not a namespace name.',
  examples: {
    bad_since: { summary: 'since without a time zone', value: problem('VALIDATION_FAILED', 'querystring /since: must be an ISO 8601 UTC date and time, e.g. 2026-11-30T09:00:00Z', { details: [detail('/since', 'pattern', 'must be an ISO 8601 UTC date and time, e.g. 2026-11-30T09:00:00Z', 'querystring')] }) },
    bad_namespace: { summary: 'Not a namespace name', value: problem('VALIDATION_FAILED', `querystring /namespace: must be ${NAMESPACE_RULE}`, { details: [detail('/namespace', 'pattern', `must be ${NAMESPACE_RULE}`, 'querystring')] }) },
  },
};

export const reportNamespaceNotFound = {
  description: 'No such namespace: none named it since the start or since it was last reset.',
  examples: { not_found: { summary: 'Unknown namespace', value: problem('NOT_FOUND', 'The namespace ci-job-1843 does not exist.') } },
};

// --- namespaces ---

export const listNamespacesResponses: Examples = {
  two: {
    summary: 'Two CI jobs',
    value: {
      data: [
        { namespace: 'ci-job-1842', created_at: '2026-11-30T09:00:00.000Z' },
        { namespace: 'ci-job-1843', created_at: '2026-11-30T09:00:04.250Z' },
      ],
      max: 64,
    },
  },
};

export const resetNamespaceResponses: Examples = {
  reset: { summary: 'Reset', value: { namespace: 'ci-job-1842', existed: true } },
  nothing: { summary: 'Nothing to reset', value: { namespace: 'ci-job-1999', existed: false } },
};

export const badNamespace = {
  description: 'Not a namespace name, or `default` (which cannot be reset).',
  examples: {
    bad_name: { summary: 'Not a namespace name', value: problem('VALIDATION_FAILED', `params /namespace: must be ${NAMESPACE_RULE}`, { details: [detail('/namespace', 'pattern', `must be ${NAMESPACE_RULE}`, 'params')] }) },
    default: {
      summary: 'The default namespace',
      value: problem('VALIDATION_FAILED', 'params /namespace: the default namespace cannot be reset: restart the service, or give each run a namespace of its own', {
        details: [detail('/namespace', 'not_default', 'the default namespace cannot be reset: restart the service, or give each run a namespace of its own', 'params')],
      }),
    },
    default_redis: {
      summary: 'The default namespace, with STORE=redis (a restart keeps what Redis holds)',
      value: problem('VALIDATION_FAILED', 'params /namespace: the default namespace cannot be reset: give each run a namespace of its own, or start on another REDIS_KEY_PREFIX (a restart keeps what Redis holds)', {
        details: [detail('/namespace', 'not_default', 'the default namespace cannot be reset: give each run a namespace of its own, or start on another REDIS_KEY_PREFIX (a restart keeps what Redis holds)', 'params')],
      }),
    },
  },
};
