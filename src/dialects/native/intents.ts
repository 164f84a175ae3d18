import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Intent } from '../../core/intents/intent.ts';
import type { IdempotencyHooks } from '../../http/idempotency.ts';
import { IdempotencyKeyHeader } from '../../http/schemas.ts';
import { CreateIntentBody, CreateIntentResponse, EmptyBody, ErrorBody, IntentList, IntentParams, IntentView, IntentWithWebhook, ListIntentsQuery, RefundBody } from './schemas.ts';
import { intentView, webhookSummary } from './views.ts';

/**
 * The intent routes of the native API (`/v1/sim`): create, read, list, cancel, refund.
 * @see issue 2 "The API"
 */

export interface IntentRoutesOptions {
  idempotent: IdempotencyHooks;
}

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorBody]));

/** A POST without a body (`curl -X POST .../cancel`) is an empty object, not a validation error. */
export const emptyBodyIsObject = async (request: { body: unknown }): Promise<void> => {
  if (request.body === undefined || request.body === null) request.body = {};
};

const intentRoutes: FastifyPluginAsync<IntentRoutesOptions> = async (fastify, { idempotent }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { intents } = app.core;
  const deliveries = app.webhooks.log;
  const withWebhook = async (intent: Intent) => ({ ...intentView(intent), webhook: webhookSummary(await deliveries.latestFor({ kind: 'intent', id: intent.id })) });

  app.post(
    '/intent',
    {
      schema: {
        summary: 'Create a payment intent',
        description: 'Creates a PENDING intent; it becomes APPROVED or FAILED after its delay, as the scenario or the card data decide. 503 STORE_FULL when the store holds only PENDING intents.',
        tags: ['intents'],
        headers: IdempotencyKeyHeader,
        body: CreateIntentBody,
        response: { 200: CreateIntentResponse, ...errors(400, 409, 413, 415, 422, 500, 503) },
      },
      ...idempotent,
    },
    async (request) => {
      const b = request.body;
      const intent = await intents.create({
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
    async (request) => withWebhook(await intents.get(request.params.id)),
  );

  app.get(
    '/intents',
    {
      schema: {
        summary: 'List payment intents, newest first',
        description:
          'Filters walk an index; a page may hold fewer than `limit` intents while `next_cursor` is set (a filter that matches rarely stops after a bounded scan): keep paging until `next_cursor` is null.',
        tags: ['intents'],
        querystring: ListIntentsQuery,
        response: { 200: IntentList, ...errors(400, 500, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await intents.list({ reservationId: q.reservation_id, status: q.status, limit: q.limit ?? 50, cursor: q.cursor });
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
      ...idempotent,
    },
    async (request) => intentView(await intents.cancel(request.params.id)),
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
      ...idempotent,
    },
    async (request) => intentView(await intents.refund(request.params.id, request.body.amount)),
  );
};

export default intentRoutes;
