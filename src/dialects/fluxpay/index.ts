import type { FastifyPluginAsync } from 'fastify';
import { idempotencyHooks } from '../../http/idempotency.ts';
import type { OutboxEvent } from '../../core/fluxpay/model.ts';
import { fluxpayErrorHandler, fluxpayErrors } from './errors.ts';
import { exampleEnvelope, exampleWebhookHeaders, FLUXPAY_WEBHOOK_EXAMPLES } from './examples.ts';
import fluxpayRateLimits from './rate-limits.ts';
import fluxpayRoutes from './routes.ts';
import waitingRoomRoutes from './waiting-room-routes.ts';
import subscriptionRoutes from './subscription-routes.ts';
import { webhookEnvelopeOf } from './schemas.ts';
import { envelopeOf, fluxpayWebhookOf } from './webhook-payload.ts';

/**
 * The FluxPay API (source document 002): orders, PG payments, prepaid credits, usage events and
 * their sagas, the transactional outbox and its webhook subscribers, the reconciliation.
 * camelCase, every answer in the wrapper `{isSuccess, code, message, result}`, the document's
 * PAY_00x codes. It shares `/api/v1/payments` with the payment service (document 004): FluxPay
 * answers `/api/v1/payments`, `/confirm` and `/pk_…`, the payment service the rest (errors.ts).
 *
 * The outbox relay hands each event, in order, to every subscriber of its type and to
 * FLUXPAY_WEBHOOK_URL through the one dispatcher, and only then marks it published.
 * @see issue 11, ../../../../shared/seeds/002_38de3c186cddda84.txt
 */

const fluxpay: FastifyPluginAsync = async (app) => {
  const { config, stores, clock } = app.core;
  const { service, relay } = app.fluxpay;
  app.errorShapes.register(fluxpayErrors);
  const schemes = Object.freeze([...config.fluxpay.schemes]);

  await app.register(async (scope) => {
    scope.setErrorHandler(fluxpayErrorHandler());
    // Before the routes: it limits (and documents the limits of) every route added after it.
    await scope.register(fluxpayRateLimits, { limits: config.fluxpay.policy.rateLimits });
    const idempotent = idempotencyHooks({
      store: stores.idempotency,
      clock,
      lateSettles: app.core.lateSettles,
      shape: fluxpayErrors,
      onReplay: () => app.metrics.idempotencyReplays.inc(),
      onConflict: () => app.metrics.idempotencyConflicts.inc(),
    });
    await scope.register(fluxpayRoutes, { idempotent, service, defaultWebhookUrl: config.fluxpay.webhookUrl, rooms: app.waitingRooms, newOrderId: () => service.newOrderId(), subscriptions: app.fluxpay.subscriptions });
    await scope.register(waitingRoomRoutes, { rooms: app.waitingRooms, idempotent });
    await scope.register(subscriptionRoutes, { idempotent, subscriptions: app.fluxpay.subscriptions });
  });

  // Publishing = every subscriber's delivery accepted (logged) by the dispatcher; a failure to
  // accept throws, and the relay tries the same event again later, before any later one.
  relay.addPublisher(async (event: OutboxEvent, batch) => {
    const urls = new Set<string>();
    if (config.fluxpay.webhookUrl !== undefined) urls.add(config.fluxpay.webhookUrl);
    // Read once for the events the relay read together (after reading them: every subscription
    // made before any of them was written is there).
    for (const sub of await batch.once('subscriptions', () => service.listSubscriptions())) if (sub.events.length === 0 || sub.events.includes(event.eventType)) urls.add(sub.url);
    if (urls.size === 0) return;
    const body = envelopeOf(event);
    for (const url of urls) await app.webhooks.dispatcher.deliver(fluxpayWebhookOf(event, url, body, schemes));
  });

  for (const [type, doc] of Object.entries(FLUXPAY_WEBHOOK_EXAMPLES)) {
    const headers = exampleWebhookHeaders(type);
    app.apiDocs.webhook(`fluxpay.${type}`, {
      summary: doc.summary,
      description: `${doc.description} Sent to every subscriber of \`${type}\` (POST /api/v1/webhook-subscriptions) and to FLUXPAY_WEBHOOK_URL, once the outbox relay publishes it (in write order).`,
      tag: 'fluxpay',
      payload: webhookEnvelopeOf(type),
      examples: { [type.replace('.', '_')]: { summary: doc.summary, value: exampleEnvelope(type) } },
      signing:
        'Sent as `POST` with `content-type: application/json` and a W3C `traceparent`, signed with FLUXPAY_SIGNATURE_SCHEMES (default `standard`: Standard Webhooks, the secret WEBHOOK_SECRET). `webhook-id` is the `eventId`: the same on every retry, replay and republication; de-duplicate on it.',
      headers: [
        { name: 'webhook-id', description: 'Standard Webhooks: the eventId.', example: headers['webhook-id'] as string, required: true },
        { name: 'webhook-timestamp', description: 'Standard Webhooks: unix seconds of this attempt.', example: headers['webhook-timestamp'] as string, required: true },
        { name: 'webhook-signature', description: 'Standard Webhooks: `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`; one per secret during a rotation.', example: headers['webhook-signature'] as string, required: true },
      ],
    });
  }
};

export default fluxpay;
