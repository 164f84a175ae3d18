import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DomainError, notFound, type ErrorCode, type FieldIssue } from '../core/errors.ts';
import type { Intent } from '../core/intents.ts';
import { idempotencyHooks } from '../http/idempotency.ts';
import { contentProblem, validationIssues } from '../http/validation.ts';
import { IdempotencyKeyHeader } from '../schemas/common.ts';
import {
  CreateIntentBody,
  CreateIntentResponse,
  DeliveryList,
  DeliveryParams,
  DeliveryView,
  DisabledUrls,
  EmptyBody,
  EnableUrlQuery,
  ErrorBody,
  IntentList,
  IntentParams,
  IntentWithWebhook,
  IntentView,
  ListDeliveriesQuery,
  ListIntentsQuery,
  RefundBody,
  TestWebhookBody,
} from '../schemas/sim.ts';
import type { Delivery } from '../webhooks/delivery-log.ts';
import { isFinished } from '../webhooks/dispatcher.ts';
import { nativePayload } from '../webhooks/native.ts';

/**
 * The native API, `/v1/sim` (source document 000), snake_case, with its own error envelope:
 * `{"error": {"code", "message", "details"?, "trace_id"}}`.
 * @see issue 2 "The API"
 */

/** Codes of other APIs' rules never reach this API; if one did, it would be a 500 worth a log line. */
const STATUS_OF: { [C in ErrorCode]?: number } = {
  VALIDATION_FAILED: 400,
  NOT_FOUND: 404,
  INVALID_STATE: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  REFUND_EXCEEDS_AMOUNT: 422,
  IDEMPOTENCY_KEY_MISMATCH: 422,
};

type Detail = FieldIssue & { in?: string };

/** Renders the native error envelope; exported for the root-level 404 and load-shedding handlers. */
export function sendSimError(reply: FastifyReply, status: number, code: string, message: string, details?: Detail[]): FastifyReply {
  const error: Record<string, unknown> = { code, message };
  if (details !== undefined && details.length > 0) error.details = details;
  if (reply.request.traceId) error.trace_id = reply.request.traceId;
  return reply.code(status).type('application/json; charset=utf-8').send({ error });
}

export function simErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof DomainError && STATUS_OF[error.code] !== undefined) return sendSimError(reply, STATUS_OF[error.code] as number, error.code, error.message, error.details);
  if (error.validation !== undefined) {
    const details = validationIssues(error);
    const first = details[0];
    return sendSimError(reply, 400, 'VALIDATION_FAILED', first ? `${first.in} ${first.field}: ${first.message}` : 'The request is invalid.', details);
  }
  const problem = contentProblem(error);
  if (problem?.kind === 'PAYLOAD_TOO_LARGE') return sendSimError(reply, 413, 'PAYLOAD_TOO_LARGE', 'The request body is larger than the limit (BODY_LIMIT_BYTES).');
  if (problem?.kind === 'UNSUPPORTED_MEDIA_TYPE') return sendSimError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.');
  if (problem?.kind === 'MALFORMED') return sendSimError(reply, 400, 'VALIDATION_FAILED', `The request body could not be read: ${error.message}`);
  request.log.error({ err: error }, 'unhandled error');
  return sendSimError(reply, 500, 'INTERNAL', 'Something went wrong on our side; the request may be retried.');
}

export function intentView(intent: Intent) {
  return {
    payment_intent_id: intent.id,
    reservation_id: intent.reservationId,
    amount: intent.amount,
    currency: intent.currency,
    scenario: intent.scenario,
    status: intent.status,
    failure_code: intent.failureCode,
    refunded_amount: intent.refundedAmount,
    delay_ms: intent.delayMs,
    webhook_url: intent.webhookUrl,
    metadata: intent.metadata,
    created_at: new Date(intent.createdAt).toISOString(),
    updated_at: new Date(intent.updatedAt).toISOString(),
    decided_at: intent.decidedAt === null ? null : new Date(intent.decidedAt).toISOString(),
  };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function deliveryView(delivery: Delivery) {
  return {
    id: delivery.id,
    event_id: delivery.eventId,
    type: delivery.type,
    url: delivery.url,
    payment_intent_id: delivery.intentId,
    test: delivery.test,
    status: delivery.status,
    attempts: delivery.attempts.map((a) => ({ at: iso(a.at) as string, status_code: a.statusCode, duration_ms: a.durationMs, error: a.error })),
    next_attempt_at: iso(delivery.nextAttemptAt),
    failure_reason: delivery.failureReason,
    created_at: iso(delivery.createdAt) as string,
    updated_at: iso(delivery.updatedAt) as string,
  };
}

function webhookSummary(delivery: Delivery | undefined) {
  if (delivery === undefined) return null;
  const last = delivery.attempts.at(-1);
  return { status: delivery.status, attempts: delivery.attempts.length, last_status_code: last?.statusCode ?? null, last_attempt_at: iso(last?.at ?? null) };
}

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorBody]));

const simRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { intents, idempotency } = app.core;
  const { dispatcher, log: deliveries } = app.webhooks;
  const withWebhook = (intent: Intent) => ({ ...intentView(intent), webhook: webhookSummary(deliveries.latestForIntent(intent.id)) });

  // Only JSON bodies: anything else is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(simErrorHandler);

  const idem = idempotencyHooks({
    store: idempotency,
    sendConflict: (reply, conflict, message) => sendSimError(reply, conflict === 'IDEMPOTENCY_KEY_MISMATCH' ? 422 : 409, conflict, message),
    onReplay: () => app.metrics.idempotencyReplays.inc(),
    onConflict: () => app.metrics.idempotencyConflicts.inc(),
  });
  // A POST without a body (`curl -X POST .../cancel`) is an empty object, not a validation error.
  const emptyBodyIsObject = async (request: { body: unknown }) => {
    if (request.body === undefined || request.body === null) request.body = {};
  };

  app.post(
    '/intent',
    {
      schema: {
        summary: 'Create a payment intent',
        description: 'Creates a PENDING intent; it becomes APPROVED or FAILED after its delay, as the scenario or the card data decide.',
        tags: ['intents'],
        headers: IdempotencyKeyHeader,
        body: CreateIntentBody,
        response: { 200: CreateIntentResponse, ...errors(400, 409, 413, 415, 422, 500, 503) },
      },
      ...idem,
    },
    async (request) => {
      const b = request.body;
      const intent = intents.create({
        reservationId: b.reservation_id,
        amount: b.amount,
        currency: b.currency ?? 'KRW',
        scenario: b.scenario,
        delayMs: b.delay_ms,
        card: b.card,
        webhookUrl: b.webhook_url,
        metadata: b.metadata,
      });
      return { payment_intent_id: intent.id, status: 'PENDING' as const, next: intent.webhookUrl === null ? ('poll' as const) : ('webhook' as const) };
    },
  );

  app.get(
    '/intents/:id',
    {
      schema: {
        summary: 'Read a payment intent',
        tags: ['intents'],
        params: IntentParams,
        response: { 200: IntentWithWebhook, ...errors(400, 404, 500, 503) },
      },
    },
    async (request) => withWebhook(intents.get(request.params.id)),
  );

  app.get(
    '/intents',
    {
      schema: {
        summary: 'List payment intents, newest first',
        tags: ['intents'],
        querystring: ListIntentsQuery,
        response: { 200: IntentList, ...errors(400, 500, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = intents.list({ reservationId: q.reservation_id, status: q.status, limit: q.limit ?? 50, cursor: q.cursor });
      return { data: page.data.map(intentView), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/intents/:id/cancel',
    {
      schema: {
        summary: 'Cancel a PENDING payment intent',
        tags: ['intents'],
        headers: IdempotencyKeyHeader,
        params: IntentParams,
        body: EmptyBody,
        response: { 200: IntentView, ...errors(400, 404, 409, 413, 415, 422, 500, 503) },
      },
      preValidation: emptyBodyIsObject,
      ...idem,
    },
    async (request) => intentView(intents.cancel(request.params.id)),
  );

  app.post(
    '/intents/:id/refund',
    {
      schema: {
        summary: 'Refund an APPROVED payment intent, fully (default) or partly',
        tags: ['intents'],
        headers: IdempotencyKeyHeader,
        params: IntentParams,
        body: RefundBody,
        response: { 200: IntentView, ...errors(400, 404, 409, 413, 415, 422, 500, 503) },
      },
      preValidation: emptyBodyIsObject,
      ...idem,
    },
    async (request) => intentView(intents.refund(request.params.id, request.body.amount)),
  );

  app.get(
    '/webhooks/deliveries',
    {
      schema: {
        summary: 'List webhook deliveries, newest first',
        tags: ['webhooks'],
        querystring: ListDeliveriesQuery,
        response: { 200: DeliveryList, ...errors(400, 500, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = deliveries.list({ intentId: q.payment_intent_id, eventId: q.event_id, status: q.status, limit: q.limit ?? 50, cursor: q.cursor });
      return { data: page.data.map(deliveryView), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/webhooks/deliveries/:id/replay',
    {
      schema: {
        summary: 'Deliver a webhook again: a new attempt series with the same event id and body',
        description: 'Re-enables the URL if it had answered 410 Gone.',
        tags: ['webhooks'],
        headers: IdempotencyKeyHeader,
        params: DeliveryParams,
        body: EmptyBody,
        response: { 202: DeliveryView, ...errors(400, 404, 409, 413, 415, 422, 500, 503) },
      },
      preValidation: emptyBodyIsObject,
      ...idem,
    },
    async (request, reply) => {
      const delivery = deliveries.get(request.params.id);
      if (delivery === undefined) throw notFound('Webhook delivery', request.params.id);
      if (!isFinished(delivery)) {
        throw new DomainError('INVALID_STATE', `Webhook delivery ${delivery.id} is ${delivery.status}; only a delivered or failed delivery can be replayed.`);
      }
      return reply.code(202).send(deliveryView(dispatcher.replay(delivery)));
    },
  );

  app.post(
    '/webhook/test',
    {
      schema: {
        summary: 'Send a test webhook for an intent to any URL',
        description: 'Delivers the intent as if the given event had just happened, signed and retried like any webhook (source document 000).',
        tags: ['webhooks'],
        headers: IdempotencyKeyHeader,
        body: TestWebhookBody,
        response: { 202: Type.Object({ sent: Type.Literal(true) }), ...errors(400, 404, 409, 413, 415, 422, 500, 503) },
      },
      ...idem,
    },
    async (request, reply) => {
      const { payment_intent_id: id, type, webhook_url: url } = request.body;
      const intent = intents.get(id);
      const approved = type === 'payment.approved';
      const eventId = app.core.ids('evt');
      const snapshot = { ...intent, status: approved ? ('APPROVED' as const) : ('FAILED' as const), failureCode: approved ? null : (intent.failureCode ?? 'card_declined') };
      dispatcher.deliver({ eventId, type, url, body: nativePayload(eventId, type, app.core.clock.now(), snapshot), intentId: intent.id, test: true });
      return reply.code(202).send({ sent: true as const });
    },
  );

  app.get(
    '/webhooks/disabled-urls',
    { schema: { summary: 'URLs disabled after answering 410 Gone', tags: ['webhooks'], response: { 200: DisabledUrls, ...errors(500, 503) } } },
    async () => ({ data: dispatcher.disabledUrls().map((d) => ({ url: d.url, disabled_at: iso(d.disabledAt) as string })) }),
  );

  app.delete(
    '/webhooks/disabled-urls',
    {
      schema: {
        summary: 'Re-enable a URL disabled after 410 Gone',
        tags: ['webhooks'],
        querystring: EnableUrlQuery,
        response: { 200: Type.Object({ url: Type.String(), enabled: Type.Literal(true) }), ...errors(400, 404, 500, 503) },
      },
    },
    async (request) => {
      if (!dispatcher.enableUrl(request.query.url)) throw notFound('Disabled URL', request.query.url);
      return { url: request.query.url, enabled: true as const };
    },
  );
};

export default simRoutes;
