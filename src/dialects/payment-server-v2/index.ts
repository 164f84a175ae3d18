import { timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isStoreUnavailable, unavailableReason } from '../../core/errors.ts';
import { isDeliveryEvent, isV2PaymentEvent } from '../../core/events.ts';
import { createErrorHandler, sendProblem } from '../../http/error-handler.ts';
import { idempotencyHooks } from '../../http/idempotency.ts';
import type { LateWriteKind } from '../../http/late-settles.ts';
import { isSuccess } from '../../webhooks/retry-policy.ts';
import { DETAILS, fastApiIssues, sendValidation, v2Errors } from './errors.ts';
import { exampleCallbackHeaders, V2_CALLBACKS } from './examples.ts';
import v2Routes from './routes.ts';
import { V2Callback } from './schemas.ts';
import { paymentV2Signer, V2_SIGNATURE_SCHEME, V2_SUBJECT_KIND, v2CallbackOf } from './webhook-payload.ts';
import { CallbackWaits } from './waits.ts';
import { useFastApiBodies } from './bodies.ts';

/**
 * The Payment Server v3 API (source document 001), under `/api/v2`: payments auto-completed with
 * a signed callback, the payment list, manual confirm, one payment. snake_case, errors in
 * FastAPI's shape, so the document's clients (an operations server, a Streamlit console) work
 * against paysim unchanged. Where the original broke its own document, paysim keeps the
 * document's promise: a repeated `tx_id` is the same payment (no second callback), and a callback
 * that fails is retried until it is acknowledged.
 * @see issue 10, ../../../../shared/seeds/001_8ef7263c4f45841a.txt
 */

const BEARER = /^Bearer\s+(.+)$/i;

/** Whether `header` is `Bearer <token>`, compared in constant time. */
function bearerMatches(header: string | undefined, token: Buffer): boolean {
  const given = header === undefined ? undefined : BEARER.exec(header)?.[1]?.trim();
  if (given === undefined) return false;
  const bytes = Buffer.from(given, 'utf8');
  return bytes.length === token.length && timingSafeEqual(bytes, token);
}

/** What Fastify validated, as the client sent it: query values as text (pydantic reports the raw string), the rest as parsed. */
function validatedData(request: FastifyRequest, context: string): unknown {
  switch (context) {
    case 'querystring': {
      const at = request.url.indexOf('?');
      return at < 0 ? {} : Object.fromEntries(new URLSearchParams(request.url.slice(at + 1)));
    }
    case 'headers':
      return request.headers;
    case 'params':
      return request.params;
    default:
      return request.body;
  }
}

const paymentServerV2: FastifyPluginAsync = async (app) => {
  const { config, stores, clock, bus } = app.core;
  const service = app.v2Payments;
  app.errorShapes.register(v2Errors);
  app.webhooks.signers.register(paymentV2Signer(config.v2.webhookSecret, config.v2.serviceAuthToken));
  const schemes = Object.freeze([V2_SIGNATURE_SCHEME, ...config.v2.extraSchemes]);
  // An overdue wait reads its payment: another replica may have decided it and made its callback's
  // attempt. Its answer is then known once the payment is completed, or once the first attempt is
  // over for a declined payment (its status stays) or failed for an approved one (PENDING); an
  // approved payment whose attempt succeeded is completed by the replica that made it, a moment later.
  const waits = new CallbackWaits(config.webhook.timeoutMs, () => app.storeUnavailable(), {
    now: () => clock.now(),
    eager: () => app.othersMayServe(),
    look: async (id) => {
      const payment = await service.get(id);
      if (payment === undefined) return undefined;
      if (payment.status === 'PAYMENT_COMPLETED') return { decidedAt: payment.decidedAt, completed: true };
      if (payment.decidedAt === null) return { decidedAt: null, completed: false };
      const delivery = await app.webhooks.log.latestFor({ kind: V2_SUBJECT_KIND, id });
      const first = delivery?.attempts[0];
      // A delivery failed without an attempt (its endpoint disabled, the log full) ends the first request's wait too (webhook.failed).
      const answered = delivery?.status === 'failed' || (first !== undefined && (payment.status === 'PAYMENT_FAILED' || !isSuccess(first)));
      return { decidedAt: payment.decidedAt, completed: answered };
    },
  });

  await app.register(async (scope) => {
    useFastApiBodies(scope);
    const base = createErrorHandler(v2Errors);
    scope.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      if (error.validation !== undefined) return sendValidation(reply, fastApiIssues(error.validation, error.validationContext ?? 'body', validatedData(request, error.validationContext ?? 'body')));
      return base(error, request, reply);
    });
    // A query parameter given more than once is its last value, as FastAPI reads a scalar parameter
    // (`?limit=2&limit=3` lists 3), not an array that no schema here takes.
    scope.addHook('preValidation', async (request) => {
      const query = request.query as Record<string, unknown> | null;
      if (query === null || typeof query !== 'object') return;
      for (const [name, value] of Object.entries(query)) if (Array.isArray(value)) query[name] = value.at(-1);
    });
    const token = config.v2.serviceAuthToken === undefined ? undefined : Buffer.from(config.v2.serviceAuthToken, 'utf8');
    if (config.v2.requireAuth && token !== undefined) {
      // Before the body is read: a caller without the token learns nothing about its request.
      scope.addHook('onRequest', async (request, reply) => {
        if (!bearerMatches(request.headers.authorization, token)) {
          return sendProblem(reply, v2Errors, { status: 401, code: 'UNAUTHENTICATED', message: DETAILS.unauthenticated, headers: { 'www-authenticate': 'Bearer' } });
        }
      });
    }
    const idempotent = idempotencyHooks({
      store: stores.idempotency,
      clock,
      lateSettles: app.core.lateSettles,
      shape: v2Errors,
      onReplay: () => app.metrics.idempotencyReplays.inc(),
      onConflict: () => app.metrics.idempotencyConflicts.inc(),
    });
    await scope.register(v2Routes, { idempotent, waits, service });
  });

  /** A payment's completion after its callback was acknowledged, tried again while the store is away. */
  const V2_ACKNOWLEDGE: LateWriteKind = {
    dropped: 'v2: a payment whose callback was acknowledged while the store was away is not completed later: too many writes wait; it stays PENDING (confirm it, or replay its callback)',
    failed: 'v2: completing a payment after its callback was acknowledged failed when tried again; it stays PENDING (confirm it, or replay its callback)',
  };

  app.webhooks.deliverEvents((event) => (isV2PaymentEvent(event) ? v2CallbackOf(event, schemes) : undefined));

  // What the callbacks' outcomes mean: an acknowledged `payment.completed` completes its payment
  // (on any attempt or replay; the store refuses it for a payment that is not waiting for one),
  // and the first attempt of each ends the wait of the create that made it.
  bus.subscribe((event) => {
    if (isV2PaymentEvent(event)) {
      if (event.type === 'v2.payment_decided') waits.decided(event.payment.id);
      else if (event.type === 'v2.payment_completed') waits.settle(event.payment.id);
      return;
    }
    if (!isDeliveryEvent(event) || event.delivery.subject?.kind !== V2_SUBJECT_KIND) return;
    const id = event.delivery.subject.id;
    switch (event.type) {
      case 'webhook.attempted':
        if (event.attempt !== undefined && !isSuccess(event.attempt)) waits.settle(id);
        break;
      case 'webhook.delivered':
        service.acknowledge(id).then(
          () => waits.settle(id),
          (error: unknown) => {
            waits.settle(id);
            // The store away (Redis) just after it recorded the delivery: tried again until it takes it.
            // Before 2026-12-06 the payment stayed PENDING for good, its callback delivered (a user test).
            if (isStoreUnavailable(error)) {
              // A payment.failed callback completes nothing (its payment stays PAYMENT_FAILED): nothing to try again.
              if (event.delivery.type !== 'payment.completed') return;
              if (app.core.lateSettles.add(() => service.acknowledge(id).then(() => undefined), V2_ACKNOWLEDGE)) {
                app.log.warn({ payment_id: id, redis_error: unavailableReason(error) }, 'v2: completing a payment after its callback was acknowledged could not reach the store; it is tried again until it can be');
                return;
              }
            }
            app.log.error({ err: error, payment_id: id }, 'v2: completing a payment after its callback was acknowledged failed');
          },
        );
        break;
      case 'webhook.failed':
        waits.settle(id);
        break;
      default:
        break;
    }
  });
  app.addHook('onClose', async () => waits.close());

  for (const [type, doc] of Object.entries(V2_CALLBACKS) as Array<[keyof typeof V2_CALLBACKS, (typeof V2_CALLBACKS)[keyof typeof V2_CALLBACKS]]>) {
    const headers = exampleCallbackHeaders(type);
    app.apiDocs.webhook(`v2.${type}`, {
      summary: doc.summary,
      description: `${doc.description} Sent to the payment’s \`callback_url\`.`,
      tag: 'payment-server-v2',
      payload: V2Callback,
      examples: { [type.replace('.', '_')]: { summary: doc.summary, value: doc.example } },
      signing:
        'Sent as `POST` with `content-type: application/json` and a W3C `traceparent`, signed as source document 001 signs: `X-Payment-Signature` is base64(HMAC-SHA256(secret, raw body)), the secret PAYMENT_WEBHOOK_SECRET (else WEBHOOK_SECRET). No other signature scheme is sent unless V2_EXTRA_SIGNATURE_SCHEMES names some.',
      headers: [
        { name: 'x-payment-event', description: '`payment.completed` or `payment.failed`.', example: headers['x-payment-event'] as string, required: true },
        { name: 'x-payment-signature', description: 'base64(HMAC-SHA256(secret, raw body)): verify the raw bytes before parsing them (the document’s `verify_webhook_signature`).', example: headers['x-payment-signature'] as string, required: true },
        { name: 'x-payment-webhook-id', description: 'The event id, the same on every retry and replay: de-duplicate on it.', example: headers['x-payment-webhook-id'] as string, required: true },
        { name: 'authorization', description: '`Bearer <SERVICE_AUTH_TOKEN>`, when SERVICE_AUTH_TOKEN is set.', example: headers.authorization as string, required: false },
      ],
    });
  }
};

export default paymentServerV2;
