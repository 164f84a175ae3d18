import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest, onSendHookHandler, preValidationHookHandler, RouteOptions } from 'fastify';
import { ERROR_STATUSES, retryAfterSecondsOf, type ErrorStatus } from '../../core/faults/model.ts';
import type { FaultRuleService, RequestFaultPlan } from '../../core/faults/service.ts';
import type { MatchInput } from '../../core/faults/matcher.ts';
import { OUTCOME_ROUTES, outcomeRouteOf, type DialectRoute, type OutcomeRoute } from '../../core/faults/outcome-routes.ts';
import { renderedBody, sendProblem, type ErrorShape } from '../../http/error-handler.ts';
import type { ErrorShapes } from '../../http/error-shapes.ts';
import { EXAMPLE_TRACE_ID, type ExtraAnswer } from '../../http/openapi.ts';
import type { Problem } from '../../http/problem.ts';
import { loggedUrl } from '../../http/logged-url.ts';
import { SAFE_METHODS } from './lifecycle.ts';
import { lineWrittenElsewhere } from './request-context.ts';
import { routeOf } from '../../http/route-template.ts';

/**
 * The hooks that apply fault rules (issue 15) to requests, and the answers they send. The faults
 * plugin (./faults.ts: the rules, their counter and FAULTS_FILE) adds them with `addFaultHooks`;
 * with FAULTS_ENABLED=false it adds none.
 *
 * Every route of a dialect (a path some dialect's error shape owns; not the rules API, not the
 * ops routes or the console) gets two route hooks, added last so they run after the route's own:
 * - preValidation (the body is parsed, nothing is validated or stored yet): the request is
 *   planned. With no request rule this is one check and nothing else. Then `X-Sim-Rule` names
 *   the applying rules; `latency` waits; `error` answers in the dialect's shape with
 *   `Retry-After`; `timeout` holds the connection, then resets it; `outcome` is left on the
 *   request for the route to hand to the core's decision. Outcome rules match only the routes
 *   that do so (`config.faultOutcome`: native intents, /api/v2 payments, the bookings API's
 *   /payments/execute, FluxPay's confirm, subscribe and change-plan); on any other route they
 *   are not matched, so they spend no `count` and send no `X-Sim-Rule`.
 * - onSend, after the route's own (so an idempotent route has stored its answer): a
 *   `response_lost` request has its connection reset instead of answered; what the handler
 *   committed stays committed.
 */

/**
 * How a fault waits (latency, timeout): real time. `endsWithClient`: given up when the client goes
 * away (a timeout's hold: nothing is left to reset). A latency's wait is not: the route runs after
 * it, as a slow gateway carries out a request whose client gave up. Tests pass their own.
 */
export type FaultWait = (ms: number, request: FastifyRequest, endsWithClient: boolean) => Promise<void>;

/**
 * The core code and message of each `error` status, before the dialect renders them. A 429 and a
 * 503 always carry `Retry-After` (`retryAfterSecondsOf`), so their messages point at it; a 500,
 * 502 or 504 carries it only when its rule gives one, so theirs never do.
 */
const ERRORS: Readonly<Record<ErrorStatus, { code: string; message: string }>> = {
  500: { code: 'INTERNAL', message: 'Something went wrong on our side; the request may be retried.' },
  502: { code: 'BAD_GATEWAY', message: 'The payment gateway answered badly; the request may be retried.' },
  503: { code: 'SERVICE_UNAVAILABLE', message: 'The payment gateway is unavailable; retry after Retry-After seconds.' },
  504: { code: 'GATEWAY_TIMEOUT', message: 'The payment gateway did not answer in time; the request may be retried.' },
  429: { code: 'RATE_LIMITED', message: 'Too many requests; retry after Retry-After seconds.' },
};

/** The problem an `error` rule answers, before the dialect renders it. */
function faultProblem(status: ErrorStatus, retryAfterS: number | undefined): Problem {
  return { status, ...ERRORS[status], retryAfterS };
}

/**
 * Whether fault rules shape a route: not one no dialect owns (the ops routes, the console, the
 * docs) nor one with NO_FAULTS (the simulator's own routes). The plugin's hooks and the OpenAPI
 * document's fault answers (plugins/external/swagger.ts) both go by it.
 */
export function shapedByFaults(route: { url: string; config?: { faults?: boolean } | undefined }, shapes: ErrorShapes): boolean {
  return route.config?.faults !== false && shapes.ownerOf(route.url) !== undefined;
}

/** What an `error` rule's answer is, in the OpenAPI document's words. */
const ANSWER_WORDS: Readonly<Record<ErrorStatus, string>> = {
  500: 'an internal error',
  502: 'the gateway answered badly',
  503: 'the gateway is unavailable',
  504: 'the gateway did not answer in time',
  429: 'too many requests',
};

/**
 * The answers of `error` rules in `shape`, as the OpenAPI document shows them on every route rules
 * shape (plugins/external/swagger.ts): each status, its headers, and the body `apply` sends (the
 * dialect's own rendering of it, with the examples' trace id).
 */
export function faultAnswers(shape: ErrorShape): ExtraAnswer[] {
  return ERROR_STATUSES.map((status) => {
    const always = retryAfterSecondsOf({ status, retryAfterSeconds: null }) !== null;
    const retry = always ? 'retry after `Retry-After` seconds, the rule’s `retry_after_seconds` or 1' : 'the request may be retried; `Retry-After` only when the rule gives `retry_after_seconds`';
    return {
      status,
      description: `A fault rule’s \`error\` action (\`X-Sim-Rule\` names it): ${ANSWER_WORDS[status]}. Nothing was done; ${retry}.`,
      also: `Also a fault rule’s \`error\` action (\`X-Sim-Rule\` names it): nothing was done; ${retry}.`,
      name: 'fault_rule',
      example: { summary: `A fault rule’s error action (status ${status})`, value: renderedBody(shape, faultProblem(status, undefined), EXAMPLE_TRACE_ID) },
      headers: ['Retry-After'],
    };
  });
}

export interface FaultHooksOptions {
  service: FaultRuleService;
  /** The namespace whose rules apply (`app.namespace`). */
  namespace: string;
  /** The routes rules shape, by dialect and method, for the service to check rules against: filled here as the dialects register theirs. */
  shapedRoutes: DialectRoute[];
  wait?: FaultWait | undefined;
}

/**
 * Adds to `app` the onRoute hook that gives every route rules shape its two hooks (and checks the
 * routes that take an outcome against OUTCOME_ROUTES), and the onReady check that none is missing.
 */
export function addFaultHooks(app: FastifyInstance, options: FaultHooksOptions): void {
  const { service, namespace, shapedRoutes } = options;
  const wait = options.wait ?? realWait;
  const shapes = app.errorShapes;

  /** Applies a planned request's rules; true when a rule answered it (an error, a timeout's reset), so the route must not run. */
  const apply = async (request: FastifyRequest, reply: FastifyReply, shape: ErrorShape, plan: RequestFaultPlan): Promise<boolean> => {
    request.faultPlan = plan;
    reply.header('x-sim-rule', plan.ruleIds.join(', '));
    // Waited out even if the client goes away meanwhile: the route then runs when the delay ends,
    // not at once (before 2026-12-04 a client that timed out early saw the payment made early).
    if (plan.latency !== null) await wait(plan.latency.ms, request, false);
    const response = plan.response?.action;
    if (response === undefined) return false;
    // response_lost: the route runs; loseAnswer (onSend) reads the plan and resets instead of answering.
    if (response.type === 'response_lost') return false;
    if (response.type === 'timeout') {
      // Nothing is committed: the route never runs, and the client sees its connection reset.
      // An outcome claimed with it decides nothing, so it is given back (the answer's onSend never runs).
      if (plan.outcome !== null) await service.settleOutcome(namespace, plan.outcome);
      // Nor does the drain wait for it (before 2026-12-05 a hold in flight kept a stop for its whole budget: a review).
      if (!SAFE_METHODS.has(request.method)) app.lifecycle.endWrite(reply.raw);
      reply.hijack();
      lineWrittenElsewhere(request);
      await wait(response.ms, request, true);
      resetConnection(request);
      // A hijacked request gets no request line of its own: this is its line.
      request.log.info({ method: request.method, url: loggedUrl(request.url), route: routeOf(request), rule_id: plan.response?.ruleId, held_ms: response.ms }, 'fault rule timeout: connection reset');
    } else {
      const retryAfterS = retryAfterSecondsOf(response) ?? undefined;
      sendProblem(reply, shape, faultProblem(response.status, retryAfterS));
    }
    return true;
  };

  const plan: preValidationHookHandler = function (request, reply, done) {
    // The hot path: no request rule at all.
    if (service.hasNoRequestRules(namespace)) return done();
    const shape = shapes.forUrl(request.url);
    const input: MatchInput = {
      dialect: shape.name,
      method: request.method,
      routePattern: request.routeOptions.url,
      path: request.url,
      headers: request.headers,
      body: request.body,
      takesOutcome: request.routeOptions.config.faultOutcome === true,
    };
    const peeked = service.peekRequest(namespace, input);
    if (peeked !== undefined && peeked.ruleIds.length === 0) return done();
    // A request a rule answered goes no further: `done` is not called. The answer's onSend (an
    // outcome rule's hit given back) may still be running, so `reply.sent` is not yet true, and
    // Fastify would have run the route behind the error: the payment was made and answered twice
    // (a user test: error + outcome rules, 2026-12-05; once on Redis the second answer's headers
    // threw and took the process down).
    service
      .planRequest(namespace, input)
      .then((planned) => (planned.ruleIds.length === 0 ? false : apply(request, reply, shape, planned)))
      .then((answered) => {
        if (!answered) done();
      }, done);
  };

  const loseAnswer: onSendHookHandler = function (request, reply, payload, done) {
    // faultPlan is null unless a rule applied: one property read on the hot path.
    const plan = request.faultPlan;
    if (plan == null) return done(null, payload);
    if (plan.outcome === null) {
      if (plan.response?.action.type === 'response_lost') resetConnection(request);
      return done(null, payload);
    }
    // An outcome rule's hit counts when the request stored a payment with it; a request refused
    // (by validation or the route) or replayed gives it back, and its answer does not name the rule.
    const outcome = plan.outcome;
    // Settled once, whatever sends again.
    request.faultPlan = { ...plan, outcome: null };
    if (outcome.applied !== true) {
      const named = plan.ruleIds.filter((id) => id !== outcome.ruleId);
      if (named.length === 0) reply.removeHeader('x-sim-rule');
      else reply.header('x-sim-rule', named.join(', '));
    }
    service.settleOutcome(namespace, outcome).then(() => {
      if (plan.response?.action.type === 'response_lost') resetConnection(request);
      done(null, payload);
    }, done);
  };

  // The routes marked TAKES_OUTCOME are exactly OUTCOME_ROUTES (what validation lets an outcome rule match): checked here, as they are registered.
  const outcomeRoutes = new Set<OutcomeRoute>();
  app.addHook('onRoute', (route: RouteOptions) => {
    const owner = shapes.ownerOf(route.url)?.name;
    for (const method of hooksOf(route.method)) {
      const listed = outcomeRouteOf(owner, method, route.url);
      const marked = route.config?.faultOutcome === true;
      if (marked && listed === undefined) throw new Error(`${method} ${route.url} takes a fault rule's outcome but is not in OUTCOME_ROUTES (core/faults/outcome-routes.ts): list it there, or outcome rules for it are refused`);
      if (!marked && listed !== undefined) throw new Error(`${method} ${route.url} is in OUTCOME_ROUTES (core/faults/outcome-routes.ts) but does not take a fault rule's outcome (TAKES_OUTCOME)`);
      if (listed !== undefined) outcomeRoutes.add(listed);
    }
    if (!shapedByFaults(route, shapes)) return;
    // The dialect of the requests it answers, as the plan hook reads it (from the path): FluxPay's
    // `/api/v1/payments/:paymentKey(^pk_…)` sits under the payment service's prefix.
    const dialect = shapes.forUrl(samplePath(route.url)).name;
    for (const method of hooksOf(route.method)) shapedRoutes.push({ dialect, method, route: route.url });
    route.preValidation = [...hooksOf(route.preValidation), plan];
    route.onSend = [...hooksOf(route.onSend), loseAnswer];
  });
  app.addHook('onReady', async () => {
    const missing = OUTCOME_ROUTES.filter((r) => !outcomeRoutes.has(r));
    if (missing.length > 0) throw new Error(`OUTCOME_ROUTES (core/faults/outcome-routes.ts) lists routes no dialect registers with TAKES_OUTCOME: ${missing.map((r) => `${r.method} ${r.route}`).join(', ')}`);
  });
}

/**
 * A path a router pattern answers: each parameter as `x`, after the literal start of its own
 * expression (`:paymentKey(^pk_…)` as `pk_x`), a wildcard as `x`.
 */
function samplePath(pattern: string): string {
  return pattern
    .split('/')
    .map((segment) => (segment === '*' ? 'x' : segment.startsWith(':') ? `${/\(\^?([A-Za-z0-9_-]*)/.exec(segment)?.[1] ?? ''}x` : segment))
    .join('/');
}

function hooksOf<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}

/** Waits `ms` of real time; with `endsWithClient`, resolves early when the client closes the connection. */
const realWait: FaultWait = async (ms, request, endsWithClient) => {
  if (!endsWithClient) return sleep(ms, undefined, { ref: false });
  const gone = new AbortController();
  const onClose = (): void => gone.abort();
  request.raw.socket?.once('close', onClose);
  try {
    await sleep(ms, undefined, { signal: gone.signal, ref: false });
  } catch {
    // The client went away: nothing left to wait for.
  } finally {
    request.raw.socket?.off('close', onClose);
  }
};

/** Resets the request's connection (a TCP RST, as a gateway that lost the answer): the client sees ECONNRESET, never a response. */
function resetConnection(request: FastifyRequest): void {
  const socket = request.raw.socket as (typeof request.raw.socket & { resetAndDestroy?: () => void }) | null;
  if (socket === null || socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}
