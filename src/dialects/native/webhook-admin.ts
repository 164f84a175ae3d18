import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { notFound } from '../../core/errors.ts';
import type { IdempotencyHooks } from '../../http/idempotency.ts';
import { documented, errorResponses, IDEMPOTENT, withExamples } from '../../http/openapi.ts';
import { NO_FAULTS } from '../../http/scenario.ts';
import { IdempotencyKeyHeader } from '../../http/schemas.ts';
import * as ex from './examples.ts';
import { emptyBodyIsObject } from './intents.ts';
import { DeliveryList, DeliveryParams, DeliveryView, DisabledUrls, EmptyBody, EnabledUrl, EnableUrlQuery, ListDeliveriesQuery, TestWebhookBody, TestWebhookSent } from './schemas.ts';
import { deliveryView, iso } from './views.ts';
import { sendTestWebhook } from './webhook-payload.ts';

/**
 * The webhook administration routes of the native API (`/v1/sim/webhooks…`, `/v1/sim/webhook/test`):
 * the delivery log of every dialect's webhooks, replays, test sends and disabled URLs. Fault rules
 * never shape them (`config.faults: false`), as the rules API: a "gateway down" rule on `/v1/sim/**`
 * leaves the log readable while it runs (before 2026-12-04 these answered the rule's 503).
 * @see issue 3 "Operating it"
 */

export interface WebhookAdminOptions {
  idempotent: IdempotencyHooks;
}

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.nativeErrorDocs, statuses, options);

const webhookAdminRoutes: FastifyPluginAsync<WebhookAdminOptions> = async (fastify, { idempotent }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { intents, ids, clock, config } = app.core;
  const { dispatcher, log: deliveries } = app.webhooks;

  app.get(
    '/webhooks/deliveries',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'listWebhookDeliveries',
        summary: 'List webhook deliveries, newest first',
        description:
          'Every API’s deliveries, with each attempt’s status code, duration and error; `payment_intent_id`, `booking_id`, `event_id` and `status` filter them (together: the deliveries that match all). A page may hold fewer than `limit` while `next_cursor` is set (a bounded scan): keep paging until `next_cursor` is null. Deliveries are kept for WEBHOOK_LOG_TTL_MS (at most WEBHOOK_LOG_MAX).',
        tags: ['webhooks'],
        querystring: ListDeliveriesQuery,
        response: { 200: documented(DeliveryList, { description: 'A page of deliveries.', examples: ex.listDeliveriesResponses }), ...errors([400, 500, 503], { overrides: { 400: ex.badListQuery } }) },
      },
    },
    async (request) => {
      const q = request.query;
      // Filters combine: a delivery is about one thing, an intent or a booking, so both match none.
      if (q.payment_intent_id !== undefined && q.booking_id !== undefined) return { data: [], next_cursor: null };
      const subject = q.payment_intent_id !== undefined ? { kind: 'intent', id: q.payment_intent_id } : q.booking_id !== undefined ? { kind: 'booking', id: q.booking_id } : undefined;
      const page = await deliveries.list({ subject, eventId: q.event_id, status: q.status, limit: q.limit ?? 50, cursor: q.cursor });
      return { data: page.data.map(deliveryView), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/webhooks/deliveries/:id/replay',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'replayWebhookDelivery',
        summary: 'Deliver a webhook again',
        description:
          'Delivers the same delivery record again: a new attempt series (its retries counted afresh) with the same event id, body and signature schemes, signed afresh. The record keeps its id, its `created_at` and its earlier attempts (the new ones are added to them); it is `pending` again. Re-enables the URL if it had answered 410 Gone. 409 `INVALID_STATE` while the delivery is still pending or retrying, and to the second of two replays made at once (or one that found the delivery changed under it). No body is needed.',
        tags: ['webhooks'],
        headers: IdempotencyKeyHeader,
        params: DeliveryParams,
        body: EmptyBody,
        response: {
          202: documented(DeliveryView, { description: 'Queued again: the same delivery (its earlier attempts kept), status pending.', examples: ex.replayResponses, headers: IDEMPOTENT }),
          ...errors([400, 404, 409, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 400: ex.unknownBodyField, 404: ex.deliveryNotFound, 409: ex.replayConflict } }),
        },
      },
      preValidation: emptyBodyIsObject,
      ...idempotent,
    },
    async (request, reply) => reply.code(202).send(deliveryView(await dispatcher.replay(request.params.id))),
  );

  app.post(
    '/webhook/test',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'sendTestWebhook',
        summary: 'Send a test webhook for an intent to any URL',
        description: 'Delivers the intent as if the given event had just happened, signed and retried like any webhook (source document 000). The delivery is marked `test`.',
        tags: ['webhooks'],
        headers: IdempotencyKeyHeader,
        body: withExamples(TestWebhookBody, ex.testWebhookRequests),
        response: {
          202: documented(TestWebhookSent, { description: 'Logged and queued for delivery (`sent: true`), or logged as failed at once with its reason (`sent: false`: `queue_full`, `shutting_down`, `log_full`, the last not kept in the log).', examples: ex.testWebhookResponses, headers: IDEMPOTENT }),
          ...errors([400, 404, 409, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 400: ex.testWebhookInvalid, 409: ex.testWebhookConflict } }),
        },
      },
      ...idempotent,
    },
    async (request, reply) => {
      const { payment_intent_id: id, type, webhook_url: url } = request.body;
      const intent = await intents.get(id);
      const delivery = await sendTestWebhook({ dispatcher, ids, clock, schemes: config.webhook.schemes }, intent, type, url);
      // Failed at once (the queue full, the service shutting down): logged so, with its reason.
      if (delivery.status === 'failed') return reply.code(202).send({ sent: false, delivery_id: delivery.id, failure_reason: delivery.failureReason ?? 'unknown' });
      return reply.code(202).send({ sent: true, delivery_id: delivery.id });
    },
  );

  app.get(
    '/webhooks/disabled-urls',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'listDisabledWebhookUrls',
        summary: 'URLs disabled after answering 410 Gone',
        description: 'A receiver that answers 410 Gone disables its URL: nothing more is sent to it until it is re-enabled here or a delivery to it is replayed. At most WEBHOOK_MAX_DISABLED_URLS URLs (10,000) stay disabled: past it, the URL disabled first is re-enabled.',
        tags: ['webhooks'],
        response: { 200: documented(DisabledUrls, { description: 'The disabled URLs.', examples: ex.disabledUrlsResponses }), ...errors([500, 503]) },
      },
    },
    async () => ({ data: (await dispatcher.disabledUrls()).map((d) => ({ url: d.url, disabled_at: iso(d.disabledAt) as string })) }),
  );

  app.delete(
    '/webhooks/disabled-urls',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'enableWebhookUrl',
        summary: 'Re-enable a URL disabled after 410 Gone',
        description: 'Deliveries to the URL resume with the next event; 404 when the URL is not disabled.',
        tags: ['webhooks'],
        querystring: EnableUrlQuery,
        response: {
          200: documented(EnabledUrl, { description: 'Re-enabled.', examples: ex.enableUrlResponses }),
          ...errors([400, 404, 500, 503], { overrides: { 400: ex.urlRequired, 404: { description: 'The URL is not disabled.', examples: ex.urlNotDisabled } } }),
        },
      },
    },
    async (request) => {
      if (!(await dispatcher.enableUrl(request.query.url))) throw notFound('Disabled URL', request.query.url);
      return { url: request.query.url, enabled: true as const };
    },
  );
};

export default webhookAdminRoutes;
