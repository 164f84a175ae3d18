import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { scenarioFromHeaders, TAKES_OUTCOME } from '../../http/scenario.ts';
import type { SubscriptionService } from '../../core/subscriptions/service.ts';
import { noteMaking, resumedMade, type IdempotencyHooks } from '../../http/idempotency.ts';
import { IdempotencyKeyHeader } from '../../http/schemas.ts';
import { documented, errorResponses, IDEMPOTENT, withExamples } from '../../http/openapi.ts';
import * as ex from './examples.ts';
import * as s from './schemas.ts';
import { billingSummaryView, billingView, entitlementsView, ok, planView } from './views.ts';

/**
 * The billing-subscription routes of the FluxPay API (issue 12 "Subscriptions"): plans, subscribe
 * (the first period charged through the payment engine), cancel at period end, change of plan,
 * the card renewals are charged to, reads with invoices, entitlements. Renewals, dunning and
 * expiry run as due work on the scheduler, not on a route.
 */

export interface SubscriptionRoutesOptions {
  idempotent: IdempotencyHooks;
  subscriptions: SubscriptionService;
}

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.fluxpayErrorDocs, statuses, options);
const tags = ['fluxpay'];
const POST_ERRORS = [400, 409, 413, 415, 422, 500, 503];
const GET_ERRORS = [400, 500, 503];

/** A POST without a body (`curl -X POST …/cancel`) is an empty object, not a validation error. */
const emptyBodyIsObject = async (request: { body: unknown }): Promise<void> => {
  if (request.body === undefined || request.body === null) request.body = {};
};

const subscriptionRoutes: FastifyPluginAsync<SubscriptionRoutesOptions> = async (fastify, { idempotent, subscriptions }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/api/v1/subscriptions/plans',
    {
      schema: {
        operationId: 'listFluxPayPlans',
        summary: 'Subscription plans',
        description: 'The plans of the billing policy (FLUXPAY_POLICY_FILE `plans:`): price per period (an ISO 8601 duration), credits included each period and the features unlocked.',
        tags,
        response: { 200: documented(s.Wrapped(s.PlanList, 'FluxPayPlanListResult'), { description: 'Every plan.', examples: ex.planListResponses }), ...errors([500, 503]) },
      },
    },
    async () => ok({ items: subscriptions.plans().map(planView) }),
  );

  app.post(
    '/api/v1/subscriptions',
    {
      schema: {
        operationId: 'createFluxPaySubscription',
        summary: 'Subscribe: the first period is charged now',
        description:
          'Charges the plan’s price through the payment engine (an order and a card payment, decided like `POST /api/v1/payments/confirm`: `X-Sim-Scenario`, else the card rules) → ACTIVE, event `subscription.activated`; renewals are charged to the same card (its last four digits and expiry are kept, never its number) at each period end. Declined → 402 PAY_002 and nothing is created (the order is CANCELLED, the payment FAILED). SUB_001 for an unknown plan.',
        tags,
        headers: s.SubscriptionChargeHeaders,
        body: withExamples(s.SubscribeBody, ex.subscribeRequests),
        response: {
          200: documented(s.Wrapped(s.BillingSubscriptionView, 'FluxPayBillingSubscriptionResult'), { description: 'ACTIVE, with its first invoice.', examples: ex.subscribeResponses, headers: IDEMPOTENT }),
          ...errors([...POST_ERRORS, 402, 404], { idempotent: true, overrides: ex.fluxpayOverrides.createFluxPaySubscription }),
        },
      },
      ...idempotent,
      ...TAKES_OUTCOME,
    },
    async (request) => {
      // A subscription an earlier request under this Idempotency-Key made and never answered (its
      // replica killed, or Redis failed it after the write) is answered, not made (and charged)
      // again. Noted but not found, it is made anew under a new id, noted in its place: under the
      // noted one, a late write of the earlier request (held by a partition) would make this one's
      // write a no-op and its charge an invisible second one (a review); so it is a second
      // subscription to see. The earlier request's charge, if it made one, is refunded by its guard.
      const resumed = await resumedMade(request, (id) => subscriptions.find(id));
      if (resumed.record !== undefined) return ok(billingView(resumed.record));
      const subscriptionId = subscriptions.newSubscriptionId();
      await noteMaking(request, subscriptionId);
      return ok(billingView(await subscriptions.subscribe(request.body, { scenario: scenarioFromHeaders(request.headers, app.core.config.scenarios.mix), forced: request.faultPlan?.outcome ?? undefined }, subscriptionId)));
    },
  );

  app.get(
    '/api/v1/subscriptions',
    {
      schema: {
        operationId: 'listFluxPaySubscriptions',
        summary: 'Subscriptions, newest first (paged)',
        description: 'All subscriptions, or a user’s (`userId`), without their invoices; `limit` per page (default 20, at most 100), `cursor` the `nextCursor` of the previous page.',
        tags,
        querystring: s.BillingSubscriptionQuery,
        response: { 200: documented(s.Wrapped(s.BillingSubscriptionPage, 'FluxPayBillingSubscriptionPageResult'), { description: 'A page.', examples: ex.billingListResponses }), ...errors(GET_ERRORS, { overrides: ex.fluxpayOverrides.listFluxPaySubscriptions }) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await subscriptions.list({ userId: q.userId, cursor: q.cursor, limit: q.limit ?? s.DEFAULT_PAGE_LIMIT });
      return ok({ items: page.data.map(billingSummaryView), nextCursor: page.nextCursor });
    },
  );

  app.get(
    '/api/v1/subscriptions/:subscriptionId',
    {
      schema: {
        operationId: 'getFluxPaySubscription',
        summary: 'One subscription, with its invoices',
        description: 'Every charge is an invoice (INITIAL, RENEWAL, RETRY, PRORATION) with the order and payment that made it. COMMON_404 when unknown (an EXPIRED one is evicted FLUXPAY_TTL_MS after it expired).',
        tags,
        params: s.BillingSubscriptionParams,
        response: { 200: documented(s.Wrapped(s.BillingSubscriptionView, 'FluxPayBillingSubscriptionResult'), { description: 'The subscription.', examples: ex.billingResponses }), ...errors([...GET_ERRORS, 404], { overrides: ex.fluxpayOverrides.getFluxPaySubscription }) },
      },
    },
    async (request) => ok(billingView(await subscriptions.get(request.params.subscriptionId))),
  );

  app.get(
    '/api/v1/subscriptions/:subscriptionId/entitlements',
    {
      schema: {
        operationId: 'getFluxPayEntitlements',
        summary: 'What the subscription entitles to, and what is used',
        description:
          'The plan’s features and its credits per period; `used` is the user’s credits deducted minus refunded since the period began (`POST /api/v1/credits/use` and usage sagas), the running total less the use noted when the period began, so it counts the whole period whatever FluxPay still holds. `entitled` is false once EXPIRED.',
        tags,
        params: s.BillingSubscriptionParams,
        response: { 200: documented(s.Wrapped(s.EntitlementsView, 'FluxPayEntitlementsResult'), { description: 'The entitlements now.', examples: ex.entitlementsResponses }), ...errors([...GET_ERRORS, 404], { overrides: ex.fluxpayOverrides.getFluxPayEntitlements }) },
      },
    },
    async (request) => ok(entitlementsView(await subscriptions.entitlements(request.params.subscriptionId))),
  );

  app.post(
    '/api/v1/subscriptions/:subscriptionId/cancel',
    {
      preValidation: emptyBodyIsObject,
      schema: {
        operationId: 'cancelFluxPaySubscription',
        summary: 'Cancel at the period end',
        description:
          'ACTIVE → CANCELED (`cancelAtPeriodEnd`): usable until `currentPeriodEnd`, then EXPIRED without a charge (event `subscription.canceled`, then `subscription.expired`). PAST_DUE → EXPIRED at once (dunning stops). SUB_002 when CANCELED or EXPIRED already.',
        tags,
        headers: IdempotencyKeyHeader,
        params: s.BillingSubscriptionParams,
        body: withExamples(s.CancelSubscriptionBody, ex.cancelSubscriptionRequests),
        response: {
          200: documented(s.Wrapped(s.BillingSubscriptionView, 'FluxPayBillingSubscriptionResult'), { description: 'Canceled.', examples: ex.cancelSubscriptionResponses, headers: IDEMPOTENT }),
          ...errors([...POST_ERRORS, 404], { idempotent: true, overrides: ex.fluxpayOverrides.cancelFluxPaySubscription }),
        },
      },
      ...idempotent,
    },
    async (request) => ok(billingView(await subscriptions.cancel(request.params.subscriptionId))),
  );

  app.post(
    '/api/v1/subscriptions/:subscriptionId/change-plan',
    {
      schema: {
        operationId: 'changeFluxPaySubscriptionPlan',
        summary: 'Change plan: upgrade now (prorated), downgrade at the next renewal',
        description:
          'A plan that costs more per unit of time is an upgrade: it applies at once and the rest of the period is charged to the card on file, (new rate − old rate) × time left, rounded half up (a PRORATION invoice; declined → 402 PAY_002 and nothing changes). Any other plan is a downgrade, kept in `pendingPlanId` and applied (and charged) at the next renewal. The current plan again clears a pending downgrade. Event `subscription.plan_changed`. SUB_002 unless ACTIVE; SUB_001 for an unknown plan.',
        tags,
        params: s.BillingSubscriptionParams,
        headers: s.SubscriptionChargeHeaders,
        body: withExamples(s.ChangePlanBody, ex.changePlanRequests),
        response: {
          200: documented(s.Wrapped(s.BillingSubscriptionView, 'FluxPayBillingSubscriptionResult'), { description: 'Changed (or scheduled).', examples: ex.changePlanResponses, headers: IDEMPOTENT }),
          ...errors([...POST_ERRORS, 402, 404], { idempotent: true, overrides: ex.fluxpayOverrides.changeFluxPaySubscriptionPlan }),
        },
      },
      ...idempotent,
      ...TAKES_OUTCOME,
    },
    async (request) => ok(billingView(await subscriptions.changePlan(request.params.subscriptionId, request.body.planId, { scenario: scenarioFromHeaders(request.headers, app.core.config.scenarios.mix), forced: request.faultPlan?.outcome ?? undefined }))),
  );

  app.post(
    '/api/v1/subscriptions/:subscriptionId/card',
    {
      schema: {
        operationId: 'updateFluxPaySubscriptionCard',
        summary: 'Change the card renewals are charged to',
        description:
          'The card rules decide each later charge as they would this card’s (Stripe’s test numbers, else the CVV’s last digit; an expiry passed by the charge date declines `expired_card`): a test can make a chosen renewal decline by switching to `4000000000000002` before it, and recover by switching back before the next dunning retry. No charge now. SUB_002 when EXPIRED.',
        tags,
        headers: IdempotencyKeyHeader,
        params: s.BillingSubscriptionParams,
        body: withExamples(s.UpdateCardBody, ex.updateCardRequests),
        response: {
          200: documented(s.Wrapped(s.BillingSubscriptionView, 'FluxPayBillingSubscriptionResult'), { description: 'The new card is on file.', examples: ex.updateCardResponses, headers: IDEMPOTENT }),
          ...errors([...POST_ERRORS, 404], { idempotent: true, overrides: ex.fluxpayOverrides.updateFluxPaySubscriptionCard }),
        },
      },
      ...idempotent,
    },
    async (request) => ok(billingView(await subscriptions.updateCard(request.params.subscriptionId, request.body.card))),
  );
};

export default subscriptionRoutes;
