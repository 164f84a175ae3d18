import { Type } from 'typebox';
import { REPORT_DIALECTS } from '../../core/report/rows.ts';
import { NAMESPACE_PATTERN, NAMESPACE_RULE } from '../../core/namespace.ts';
import { IsoDateTime } from '../../http/schemas.ts';

/**
 * Schemas of the run report (`GET /v1/sim/report`, issue 15), snake_case as the rest of `/v1/sim`.
 * The JSON body is streamed (see report.ts); this schema documents it in the OpenAPI document.
 */

/** ISO 8601 UTC: a date and time with `Z`, seconds and up to three decimals optional. */
export const SINCE_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,3})?)?Z$';

export const ReportQuery = Type.Object(
  {
    namespace: Type.Optional(
      Type.String({
        pattern: NAMESPACE_PATTERN,
        'x-pattern-description': NAMESPACE_RULE,
        description: 'The namespace to report on: by default the request’s own (`X-Sim-Namespace`, else `default`). A namespace that does not exist (never named since the start or its last reset) is answered with 404.',
        examples: ['default', 'ci-job-1842'],
      }),
    ),
    since: Type.Optional(
      Type.String({
        pattern: SINCE_PATTERN,
        'x-pattern-description': 'an ISO 8601 UTC date and time, e.g. 2026-11-30T09:00:00Z',
        description: 'Only payments created at or after this instant (ISO 8601 UTC, ending in `Z`).',
        examples: ['2026-01-01T00:00:00.000Z'],
      }),
    ),
  },
  { additionalProperties: false },
);

const Count = Type.Integer({ minimum: 0 });

export const ReportDeliveries = Type.Object(
  {
    count: Type.Integer({ minimum: 0, description: 'Webhook deliveries of this payment in the delivery log (test sends left out)' }),
    delivered: Count,
    failed: Count,
    pending: Type.Integer({ minimum: 0, description: 'Pending or retrying' }),
    attempts: Type.Integer({ minimum: 0, description: 'Attempts over all its deliveries' }),
    last_status_code: Type.Union([Type.Integer(), Type.Null()], { description: 'The HTTP status of the newest attempt; null when none was made or it got no answer' }),
  },
  { title: 'ReportDeliveries' },
);

export const ReportRowView = Type.Object(
  {
    dialect: Type.Enum(REPORT_DIALECTS, { description: '`bookings` includes the bookings paid through the payment-service API' }),
    id: Type.String({ description: 'pay_… (native, /api/v2), bk_… (bookings), ord_… (FluxPay)' }),
    reference: Type.String({ description: 'The client’s reference: reservation_id (native), tx_id (/api/v2), the performance (bookings), the order name (FluxPay)' }),
    amount: Type.Integer({ description: 'Minor units of the currency' }),
    currency: Type.String(),
    status: Type.String({ description: 'The final state, in the dialect’s words: an intent’s status, a v2 payment’s status, a booking’s status, a FluxPay order’s status' }),
    approved: Type.Boolean({ description: 'The money was collected (even if refunded or cancelled since)' }),
    failure_code: Type.Union([Type.String(), Type.Null()]),
    decided_by: Type.Union([Type.String(), Type.Null()], { description: 'rule when a fault rule’s outcome decided the payment, in every dialect (before 2026-12-04 only FluxPay’s said so); else approve | fail | delay | random | mix | card: the scenario, mix or card data that decided it (native intents and /api/v2 payments name it before the decision too, and an /api/v2 payment confirmed by hand before its decision keeps it); null for bookings their CVV rule decided, and for FluxPay payments not decided yet' }),
    created_at: IsoDateTime,
    decided_at: Type.Union([IsoDateTime, Type.Null()]),
    deliveries: ReportDeliveries,
  },
  { title: 'ReportPayment' },
);

export const ReportTotalsView = Type.Object(
  {
    payments: Count,
    by_dialect: Type.Record(Type.String(), Type.Object({ payments: Count, by_status: Type.Record(Type.String(), Count) }), { description: 'Every dialect: how many payments, and how many in each of its final states (every state present, 0 when none)' }),
    approved_amounts: Type.Record(Type.String(), Type.Integer(), { description: 'Per currency: the sum of approved payments’ amounts, in minor units (refunds not subtracted)' }),
    deliveries: Type.Object({ count: Count, delivered: Count, failed: Count, pending: Count, attempts: Count }),
  },
  { title: 'ReportTotals' },
);

export const ReportView = Type.Object(
  {
    namespace: Type.String(),
    since: Type.Union([IsoDateTime, Type.Null()]),
    generated_at: IsoDateTime,
    payments: Type.Array(ReportRowView, { description: 'Every payment: native intents, /api/v2 payments, bookings, FluxPay orders, each dialect newest first' }),
    totals: ReportTotalsView,
  },
  { title: 'Report' },
);
