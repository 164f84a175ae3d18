import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Intent } from '../../core/intents/intent.ts';
import { idempotencyNoteOf, noteMaking, resumedId, type IdempotencyHooks } from '../../http/idempotency.ts';
import { documented, errorResponses, IDEMPOTENT, withExamples } from '../../http/openapi.ts';
import { requestedScenario, TAKES_OUTCOME } from '../../http/scenario.ts';
import { IdempotencyKeyHeader } from '../../http/schemas.ts';
import * as ex from './examples.ts';
import { CreateIntentBody, CreateIntentResponse, EmptyBody, intentParams, IntentList, IntentView, IntentWithWebhook, ListIntentsQuery, RefundBody } from './schemas.ts';
import { intentView, webhookSummary } from './views.ts';

/**
 * The intent routes of the native API (`/v1/sim`): create, read, list, cancel, refund.
 * @see issue 2 "The API"
 */

export interface IntentRoutesOptions {
  idempotent: IdempotencyHooks;
}

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.nativeErrorDocs, statuses, options);

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
        operationId: 'createIntent',
        summary: 'Create a payment intent',
        description:
          'Creates a PENDING intent. After its delay it becomes APPROVED or FAILED. What decides, in this order: the `scenario` when one is sent (`approve`, `fail`, `delay`, `random`, or `mix` with the weights in `mix`, else the MIX setting; `mix` alone means scenario `mix`); else, with `card`, the card rules: an expiry in the past declines `expired_card`; Stripe’s test numbers have their outcome (`4242424242424242` approves; `4000000000000002` `card_declined`, `4000000000009995` `insufficient_funds`, `4000000000000069` `expired_card`, `4000000000000127` `incorrect_cvc`, `4000000000000119` `processing_error`); otherwise the CVV’s last digit (0, 1 or 9 approves, any other digit d declines `DECLINE_<d>`; no CVV approves); with neither, MIX when it is set, else approve. The card is checked whatever decides: `number` 12–19 digits passing the Luhn check, `cvv` 3 or 4 digits, `exp_month` with `exp_year` (400 `VALIDATION_FAILED` naming each broken rule). With a `webhook_url` the result is delivered there, signed and retried; without one, poll `GET /v1/sim/intents/{id}`. Send an `Idempotency-Key` to make retries safe. 503 `STORE_FULL` when the store holds only PENDING intents; 503 `STORE_UNAVAILABLE` while Redis (STORE=redis) cannot be reached.',
        tags: ['intents'],
        headers: IdempotencyKeyHeader,
        body: withExamples(CreateIntentBody, ex.createIntentRequests),
        response: {
          200: documented(CreateIntentResponse, { description: 'Created, PENDING: the outcome follows after the delay.', examples: ex.createIntentResponses, headers: IDEMPOTENT }),
          ...errors([400, 409, 413, 415, 422, 500, 503], { idempotent: true }),
        },
      },
      ...idempotent,
      ...TAKES_OUTCOME,
    },
    async (request) => {
      const b = request.body;
      // An earlier request under this Idempotency-Key made it and never answered (its replica died, or
      // Redis failed it after the write): answered as created, not made again (a user test: two payments).
      // Looked up only then: every create passes here, and most have nothing to resume (no await).
      const made = resumedId(request);
      const earlier = made === undefined ? undefined : await intents.find(made);
      if (earlier !== undefined) return createdAnswer(earlier);
      const intent = await intents.create({
        reservationId: b.reservation_id,
        amount: b.amount,
        currency: b.currency ?? 'KRW',
        scenario: requestedScenario(b.scenario, b.mix, 'body', app.core.config.scenarios.mix),
        delayMs: b.delay_ms,
        card: b.card,
        webhookUrl: b.webhook_url,
        metadata: b.metadata,
        forced: request.faultPlan?.outcome ?? undefined,
        idempotency: idempotencyNoteOf(request),
      });
      return createdAnswer(intent);
    },
  );

  app.get(
    '/intents/:id',
    {
      schema: {
        operationId: 'getIntent',
        summary: 'Read a payment intent',
        description: 'The intent as it is now, with a summary of its latest webhook delivery. Intents are kept for INTENT_TTL_MS after their last change (at most INTENT_MAX).',
        tags: ['intents'],
        params: intentParams(ex.EXAMPLE_IDS.approvedIntent),
        response: { 200: documented(IntentWithWebhook, { description: 'The intent.', examples: ex.getIntentResponses }), ...errors([400, 404, 500, 503], { overrides: { 400: ex.badUrl } }) },
      },
    },
    async (request) => withWebhook(await intents.get(request.params.id)),
  );

  app.get(
    '/intents',
    {
      schema: {
        operationId: 'listIntents',
        summary: 'List payment intents, newest first',
        description:
          'Filters walk an index; a page may hold fewer than `limit` intents while `next_cursor` is set (a filter that matches rarely stops after a bounded scan): keep paging until `next_cursor` is null.',
        tags: ['intents'],
        querystring: ListIntentsQuery,
        response: { 200: documented(IntentList, { description: 'A page of intents.', examples: ex.listIntentsResponses }), ...errors([400, 500, 503], { overrides: { 400: ex.badListQuery } }) },
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
        operationId: 'cancelIntent',
        summary: 'Cancel a PENDING payment intent',
        description: 'Cancels an intent before its decision; with a `webhook_url`, `payment.cancelled` is delivered. No body is needed.',
        tags: ['intents'],
        headers: IdempotencyKeyHeader,
        params: intentParams(ex.EXAMPLE_IDS.pendingIntent),
        body: EmptyBody,
        response: {
          200: documented(IntentView, { description: 'Cancelled.', examples: ex.cancelIntentResponses, headers: IDEMPOTENT }),
          ...errors([400, 404, 409, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 400: ex.unknownBodyField, 409: ex.cancelConflict } }),
        },
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
        operationId: 'refundIntent',
        summary: 'Refund an APPROVED payment intent, fully (default) or partly',
        description: 'Refunds `amount`, or all that is left without one; partial refunds add up to at most the intent’s amount. With a `webhook_url`, `payment.refunded` is delivered.',
        tags: ['intents'],
        headers: IdempotencyKeyHeader,
        params: intentParams(ex.EXAMPLE_IDS.approvedIntent),
        body: withExamples(RefundBody, ex.refundIntentRequests),
        response: {
          200: documented(IntentView, { description: 'Refunded: PARTIALLY_REFUNDED or REFUNDED.', examples: ex.refundIntentResponses, headers: IDEMPOTENT }),
          ...errors([400, 404, 409, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 409: ex.refundConflict, 422: ex.refundUnprocessable } }),
        },
      },
      preValidation: emptyBodyIsObject,
      ...idempotent,
    },
    async (request) => {
      // Named before it is made, the name noted on the Idempotency-Key (a shared store): the retry of
      // a refund whose answer was lost (its replica killed, or a 503 after the write) passes the same
      // name and is answered that refund, not refunded again (a user test: refunded twice).
      let token = resumedId(request);
      if (token === undefined) {
        token = intents.newRefundToken();
        await noteMaking(request, token);
      }
      return intentView(await intents.refund(request.params.id, request.body.amount, token));
    },
  );
};

export default intentRoutes;

/** A create's answer: the intent, PENDING, and how its outcome comes (a resumed create answers the same). */
function createdAnswer(intent: Intent): { payment_intent_id: string; status: 'PENDING'; next: 'poll' | 'webhook' } {
  return { payment_intent_id: intent.id, status: 'PENDING', next: intent.webhookUrl === null ? 'poll' : 'webhook' };
}
