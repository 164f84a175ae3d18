import type { FastifyPluginAsync } from 'fastify';
import type { TSchema } from 'typebox';
import { isPaymentEvent } from '../../core/events.ts';
import { createErrorHandler } from '../../http/error-handler.ts';
import { idempotencyHooks } from '../../http/idempotency.ts';
import { withExtraAnswers } from '../../http/openapi.ts';
import { nativeErrors } from './errors.ts';
import { PAYMENT_WEBHOOKS, UNKNOWN_QUERY_ANSWER } from './examples.ts';
import intentRoutes from './intents.ts';
import namespaceRoutes from './namespaces.ts';
import reportRoutes from './report.ts';
import ruleRoutes from './rules.ts';
import webhookAdminRoutes from './webhook-admin.ts';
import { ErrorBody, NoQuery, PaymentWebhook } from './schemas.ts';
import { DELIVERED_PAYMENT_EVENTS, nativeWebhookOf } from './webhook-payload.ts';

/**
 * The native API (source document 000), under `/v1/sim`: payment intents, the webhook
 * administration routes, the fault rules and the run report (issue 15), snake_case, every error in its envelope. Intent events of intents with
 * a `webhook_url` are delivered in its payload, signed with WEBHOOK_SIGNATURE_SCHEMES.
 * @see issue 2, issue 3
 */
const native: FastifyPluginAsync = async (app) => {
  const { config, stores, clock } = app.core;
  app.errorShapes.register(nativeErrors, { fallback: true });

  const idempotent = idempotencyHooks({
    store: stores.idempotency,
    clock,
    lateSettles: app.core.lateSettles,
    shape: nativeErrors,
    onReplay: () => app.metrics.idempotencyReplays.inc(),
    onConflict: () => app.metrics.idempotencyConflicts.inc(),
  });

  await app.register(
    async (scope) => {
      scope.setErrorHandler(createErrorHandler(nativeErrors));
      // A query parameter a route does not take is refused as an unknown body field is: a typo is
      // never silently ignored. Before 2026-12-05, `DELETE /v1/sim/rules?id=x` deleted every rule
      // (a user test), and `GET /v1/sim/rules?limit=2` listed them all.
      scope.addHook('onRoute', (route) => {
        const schema = route.schema;
        if (schema === undefined || schema.querystring !== undefined) return;
        const response = schema.response as Record<string, TSchema> | undefined;
        route.schema = { ...schema, querystring: NoQuery, ...(response === undefined ? {} : { response: withExtraAnswers(response, ErrorBody, [UNKNOWN_QUERY_ANSWER], []) }) };
      });
      await scope.register(intentRoutes, { idempotent });
      await scope.register(webhookAdminRoutes, { idempotent });
      await scope.register(ruleRoutes, { idempotent });
      await scope.register(reportRoutes);
      await scope.register(namespaceRoutes);
    },
    { prefix: '/v1/sim' },
  );

  app.webhooks.deliverEvents((event) => (isPaymentEvent(event) ? nativeWebhookOf(event, config.webhook.schemes) : undefined));
  for (const type of DELIVERED_PAYMENT_EVENTS) {
    const doc = PAYMENT_WEBHOOKS[type];
    if (doc === undefined) throw new Error(`the ${type} webhook is not documented`);
    app.apiDocs.webhook(type, { summary: doc.summary, description: `${doc.description} Sent to the intent’s \`webhook_url\`.`, tag: 'intents', payload: PaymentWebhook, examples: { [type.replace('.', '_')]: { summary: doc.summary, value: doc.example } } });
  }
};

export default native;
