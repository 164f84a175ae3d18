import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { scenarioFromHeaders, TAKES_OUTCOME } from '../../http/scenario.ts';
import { v2PaymentId, type V2Payment } from '../../core/v2/payment.ts';
import type { V2PaymentService } from '../../core/v2/service.ts';
import { sendProblem } from '../../http/error-handler.ts';
import type { IdempotencyHooks } from '../../http/idempotency.ts';
import { documented, errorResponses, IDEMPOTENT, SECURITY, withExamples } from '../../http/openapi.ts';
import { IdempotencyKeyHeader } from '../../http/schemas.ts';
import { DETAILS, v2Errors } from './errors.ts';
import * as ex from './examples.ts';
import {
  ConfirmPaymentBody,
  ConfirmPaymentResponse,
  CreatePaymentBody,
  CreatePaymentHeaders,
  CreatePaymentResponse,
  DEFAULT_LIST_LIMIT,
  ListQuery,
  PaymentIdParams,
  PaymentList,
  PaymentView,
  WildcardParams,
} from './schemas.ts';
import { iso, paymentView } from './views.ts';
import type { CallbackWaits } from './waits.ts';

/**
 * The routes of the Payment Server v3 API (source document 001): create (auto-completed, with its
 * signed callback), manual confirm, the payment list, and one payment (the console needs it; the
 * original had none).
 * @see issue 10 "Endpoints", ../../../../shared/seeds/001_8ef7263c4f45841a.txt
 */

export interface V2RoutesOptions {
  idempotent: IdempotencyHooks;
  waits: CallbackWaits;
  service: V2PaymentService;
}

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.v2ErrorDocs, statuses, options);
/** A token is needed only with V2_REQUIRE_AUTH=true: either requirement is enough. */
const security: Array<Record<string, string[]>> = [{}, { [SECURITY.service]: [] }];
const tags = ['payment-server-v2'];

const notFound = { status: 404, code: 'PAYMENT_NOT_FOUND', message: DETAILS.notFound } as const;

const v2Routes: FastifyPluginAsync<V2RoutesOptions> = async (fastify, { idempotent, waits, service }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/v2/payments',
    {
      schema: {
        operationId: 'createV2Payment',
        summary: 'Create a payment: auto-completed, with a signed callback',
        description:
          'Creates payment `pay_<tx_id>` and auto-completes it after V2_COMPLETE_DELAY_MS (default 0; the original server slept 2 s): the outcome is `X-Sim-Scenario` (or the weights of `X-Sim-Mix`), else V2_DEFAULT_SCENARIO (unset: `mix` when MIX is set, else `approve`). The callback is POSTed to `callback_url`, signed (`X-Payment-Signature`), and retried by the dispatcher. The answer waits for the decision and the callback’s first attempt (at most WEBHOOK_TIMEOUT_MS): PAYMENT_COMPLETED when that attempt got a 2xx, PENDING otherwise (it becomes PAYMENT_COMPLETED when a retry succeeds or when confirmed by hand), PAYMENT_FAILED when declined. The same `tx_id` with the same body answers the same payment again (`Idempotent-Replayed: true`, no second callback); with another body it is 409.',
        tags,
        security,
        headers: CreatePaymentHeaders,
        body: withExamples(CreatePaymentBody, ex.createPaymentRequests),
        response: {
          200: documented(CreatePaymentResponse, { description: 'The payment and its status after the callback’s first attempt.', examples: ex.createPaymentResponses, headers: IDEMPOTENT }),
          ...errors([400, 401, 409, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 400: ex.createUnparsable, 409: ex.createConflict } }),
        },
      },
      ...idempotent,
      ...TAKES_OUTCOME,
    },
    async (request, reply) => {
      const b = request.body;
      const id = v2PaymentId(b.tx_id);
      const scenario = scenarioFromHeaders(request.headers, app.core.config.scenarios.mix);
      // A twin of a create still answering in this process waits for that one's answer.
      const twin = waits.pending(id);
      const wait = twin === undefined ? waits.open(id) : undefined;
      let outcome;
      try {
        outcome = await service.create({ txId: b.tx_id, orderId: b.order_id, userId: b.user_id, amount: b.amount, callbackUrl: b.callback_url }, scenario, request.faultPlan?.outcome ?? undefined);
      } catch (error) {
        if (wait !== undefined) waits.drop(wait);
        throw error;
      }
      if (outcome.kind === 'conflict') {
        if (wait !== undefined) waits.drop(wait);
        // The tx_id is this API's idempotency key: its replays and conflicts count with the header's.
        app.metrics.idempotencyConflicts.inc();
        return sendProblem(reply, v2Errors, { status: 409, code: 'TX_ID_CONFLICT', message: `tx_id ${b.tx_id} was already used with a different request` });
      }
      if (outcome.kind === 'existing') {
        reply.header('idempotent-replayed', 'true');
        app.metrics.idempotencyReplays.inc();
        // No twin here: the first request is another replica's, or over; this one follows the payment in the store while its answer is still to come.
        // Held: the drain waits for it (lifecycle.ts), so that it is answered before the close.
        if (twin !== undefined) await app.lifecycle.hold(twin);
        else if (wait !== undefined && (await waits.follow(wait))) await app.lifecycle.hold(wait.done);
      } else {
        // Created here while a twin's wait was open happens only with a store that does not
        // order concurrent calls as they came (another back end): then this answers the status
        // the payment has now, without waiting.
        if (wait !== undefined && outcome.kind === 'created') {
          waits.expect(wait, outcome.decisionDueAt);
          await app.lifecycle.hold(wait.done);
        }
      }
      const payment = (await service.get(id)) ?? outcome.payment;
      return { ok: true as const, tx_id: payment.txId, status: payment.status, payment_id: payment.id };
    },
  );

  app.post(
    '/api/v2/confirm-payment',
    {
      schema: {
        operationId: 'confirmV2Payment',
        summary: 'Confirm a PENDING payment by hand',
        description: 'Completes a PENDING payment (one whose callback has not been acknowledged yet, or not decided yet). No callback is sent for it. 404 when unknown, 400 when it is not PENDING.',
        tags,
        security,
        headers: IdempotencyKeyHeader,
        body: withExamples(ConfirmPaymentBody, ex.confirmRequests),
        response: {
          200: documented(ConfirmPaymentResponse, { description: 'Completed.', examples: ex.confirmResponses, headers: IDEMPOTENT }),
          ...errors([400, 401, 404, 409, 413, 415, 422, 500, 503], { idempotent: true, overrides: { 400: ex.confirmBadRequest, 422: ex.confirmInvalid } }),
        },
      },
      ...idempotent,
    },
    async (request, reply) => {
      const outcome = await service.confirm(request.body.payment_id);
      switch (outcome.kind) {
        case 'not_found':
          return sendProblem(reply, v2Errors, notFound);
        case 'not_pending':
          return sendProblem(reply, v2Errors, { status: 400, code: 'NOT_PENDING', message: `Payment ${outcome.payment.id} is ${outcome.payment.status}; only a PENDING payment can be confirmed` });
        case 'confirmed':
          return { ok: true as const, payment_id: outcome.payment.id, status: 'PAYMENT_COMPLETED' as const, confirmed_at: iso(outcome.payment.confirmedAt) as string };
      }
    },
  );

  app.get(
    '/api/v2/pending-payments',
    {
      schema: {
        operationId: 'listV2Payments',
        summary: 'Every payment held: the counts by status, and the newest payments by id',
        description:
          'The counts are of every payment held, whatever `limit` and `status` say; `payments` maps payment ids to payments, newest first, at most `limit` (default 1,000, at most 10,000), of `status` when given (a parameter given twice counts with its last value, as FastAPI reads it). Payments are held for V2_PAYMENT_TTL_MS (at most V2_PAYMENTS_MAX; PENDING ones are never evicted).',
        tags,
        security,
        querystring: ListQuery,
        response: { 200: documented(PaymentList, { description: 'The payments.', examples: ex.listResponses }), ...errors([401, 422, 500, 503], { overrides: { 422: ex.badListQuery } }) },
      },
    },
    async (request) => {
      const { limit, status } = request.query;
      const [counts, payments] = await Promise.all([service.counts(), service.list({ limit: limit ?? DEFAULT_LIST_LIMIT, status })]);
      return { pending_count: counts.PENDING, completed_count: counts.PAYMENT_COMPLETED, failed_count: counts.PAYMENT_FAILED, payments: mapOf(payments.data) };
    },
  );

  app.get(
    // A wildcard, not `:payment_id`: the router cuts named parameters at 100 characters, and a
    // payment id (`pay_` and a tx_id of up to 128 characters, percent-encoded in the URL) can be longer.
    '/api/v2/payments/*',
    {
      schema: {
        operationId: 'getV2Payment',
        summary: 'One payment',
        description: 'The payment as the list shows it (the original server had no such route; its console needs one). 404 when unknown or evicted.',
        tags,
        security,
        params: WildcardParams,
        response: { 200: documented(PaymentView, { description: 'The payment.', examples: ex.getPaymentResponses }), ...errors([400, 401, 404, 500, 503], { overrides: { 400: ex.badPaymentPath } }) },
      },
      config: {
        // Documented as what it is to clients: /api/v2/payments/{payment_id}.
        swaggerTransform: ({ schema }) => ({ schema: { ...schema, params: PaymentIdParams }, url: '/api/v2/payments/:payment_id' }),
      },
    },
    async (request, reply) => {
      const id = request.params['*'];
      const payment = id === '' ? undefined : await service.get(id);
      if (payment === undefined) return sendProblem(reply, v2Errors, notFound);
      return paymentView(payment);
    },
  );
};

/** Payments by id, in the order given (ids start with `pay_`, so no key is an array index and the order holds). */
function mapOf(payments: readonly V2Payment[]): Record<string, ReturnType<typeof paymentView>> {
  const out: Record<string, ReturnType<typeof paymentView>> = {};
  for (const payment of payments) out[payment.id] = paymentView(payment);
  return out;
}

export default v2Routes;
