import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest, onSendHookHandler, preValidationHookHandler, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import type { Config } from '../../config.ts';
import { ERROR_STATUSES, retryAfterSecondsOf, type ErrorStatus, type StoredFaultRule } from '../../core/faults/model.ts';
import { FaultRuleService, nextRuleOrder, type RequestFaultPlan } from '../../core/faults/service.ts';
import type { MatchInput } from '../../core/faults/matcher.ts';
import { fileRulesMatchingNoRoute, parseFaultsFile } from '../../core/faults/file.ts';
import { windowEnded } from '../../core/faults/validation.ts';
import { StartProblem } from '../../start-error.ts';
import { OUTCOME_ROUTES, outcomeRouteOf, type DialectRoute, type OutcomeRoute } from '../../core/faults/outcome-routes.ts';
import { createStreams } from '../../core/random.ts';
import { renderedBody, sendProblem, type ErrorShape } from '../../http/error-handler.ts';
import type { ErrorShapes } from '../../http/error-shapes.ts';
import { EXAMPLE_TRACE_ID, type ExtraAnswer } from '../../http/openapi.ts';
import type { Problem } from '../../http/problem.ts';
import { loggedUrl } from '../../http/logged-url.ts';
import type { WebhookFaults } from '../../webhooks/dispatcher.ts';
import { SAFE_METHODS } from './lifecycle.ts';
import { loggedListening } from '../../adapters/redis/notices.ts';
import { lineWrittenElsewhere } from './request-context.ts';
import { routeOf } from '../../http/route-template.ts';

/**
 * With a store shared by several replicas (Redis), how long a replica uses its compiled rules
 * before it checks the shared revision again: a rule created, changed or deleted on one replica
 * applies on every other within this time. One Redis call a second per namespace in use.
 */
export const SHARED_RULES_REFRESH_MS = 1000;

/**
 * Fault injection (issue 15): the rule store and service, FAULTS_FILE's rules created at start,
 * the `fault_rule_hits_total` counter (by rule id and action; a deleted rule's series goes with
 * it: at once on the replica that deleted it, on another when it next reads the shared rules,
 * which a /metrics scrape does too; a reset namespace's series go in namespace-registry.ts), and the
 * hooks that apply request rules to every dialect's routes. Each namespace draws from its own
 * seeded stream, `faults:<namespace>`, so rules never shift the random outcomes of
 * payments and a seeded run repeats. A namespace's app (`X-Sim-Namespace`) has its own rules,
 * stores and streams; `app.namespace` names it.
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
 *
 * With FAULTS_ENABLED=false none of this exists: `app.faults` is null, no route gets a hook, the
 * rules API is not registered (404) and webhook deliveries are never faulted; `faultPlan` stays
 * null on every request. The benchmark's baseline (scripts/bench-faults.ts), and the setting for
 * users who never inject faults.
 */

/**
 * How a fault waits (latency, timeout): real time. `endsWithClient`: given up when the client goes
 * away (a timeout's hold: nothing is left to reset). A latency's wait is not: the route runs after
 * it, as a slow gateway carries out a request whose client gave up. Tests pass their own.
 */
export type FaultWait = (ms: number, request: FastifyRequest, endsWithClient: boolean) => Promise<void>;

export interface FaultsOptions {
  wait?: FaultWait | undefined;
}

/** Rules gone (deleted, or seen gone) whose time of going an app keeps, at most: see `goneAt`. */
const MAX_GONE_MARKS = 10_000;

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

export interface Faults {
  service: FaultRuleService;
  /** Deletes one rule and its metric series; whether there was such a rule. */
  delete(namespace: string, id: string): Promise<StoredFaultRule | undefined>;
  /** Deletes every rule of the namespace and their metric series; how many. */
  deleteAll(namespace: string): Promise<number>;
  /** What the dispatcher asks of webhook rules. */
  webhooks: WebhookFaults;
  /**
   * Checks FAULTS_FILE's rules against the routes the dialects registered (one that can match none
   * ends the start) and makes them: called by buildApp once every dialect is registered, before
   * any onReady hook, so the scheduler's first run (due webhooks among it) meets the file's rules
   * and a failing start has done nothing (2026-12-05, a review: at onReady it came after both).
   */
  loadFile(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Null with FAULTS_ENABLED=false. */
    faults: Faults | null;
  }
  interface FastifyRequest {
    /** What fault rules do to this request; null when none applies. */
    faultPlan: RequestFaultPlan | null;
  }
  interface FastifyContextConfig {
    /** false: rules never shape this route's answers (the rules API itself). */
    faults?: boolean;
    /**
     * true: the route creates or decides a payment and hands `faultPlan.outcome` to the core's
     * decision. `outcome` rules match these routes only (README: the outcome action's list).
     */
    faultOutcome?: boolean;
  }
}

export default fp<FaultsOptions>(
  async (app, options) => {
    const { config, clock, ids } = app.core;
    app.decorateRequest('faultPlan', null);
    if (!config.faults.enabled) {
      app.decorate('faults', null);
      return;
    }
    const namespace = app.namespace;
    const shared = config.store.backend === 'redis';
    /** The series this app's counter holds: rule id → action. */
    const series = new Map<string, string>();
    // A scrape on Redis first reads the shared revision when it is due (as a request does), so
    // the series of a rule deleted on another replica leave even while no request comes here.
    const hits = new Counter({
      name: 'fault_rule_hits_total',
      help: 'Requests and webhook deliveries a fault rule applied to, by rule id, action and sim_namespace (X-Sim-Namespace; default without it; not `namespace`, which Kubernetes service discovery sets on every target); a rule deleted (on any replica, or with its namespace) takes its series with it.',
      labelNames: ['rule_id', 'action', 'sim_namespace'],
      registers: [app.metrics.registry],
      async collect() {
        if (shared && series.size > 0) await app.metrics.fromStore(() => service.matcher(namespace), () => undefined);
      },
    });
    /**
     * When rules went (`nextRuleOrder`): each one deleted here or seen gone, and every rule at
     * once (`DELETE /v1/sim/rules`). A hit counted after its rule went (an outcome's, counted once
     * its slow request stored the payment) but matched before brought its series back (a user
     * test); one matched after (the same id made again) counts. Before 2026-12-07 a first mend kept
     * the ids of the rules as last loaded, which dropped hits of rules made meanwhile (a review).
     */
    const goneAt = new Map<string, number>();
    let allGoneAt = 0;
    /**
     * The namespace's rules as last read (`onRules`), id → when made: those missing from the next
     * read went, hit here or not, and so did one made again with the same id (another `createdAt`).
     */
    const known = new Map<string, number>();
    const forget = (ruleId: string): void => {
      const action = series.get(ruleId);
      if (action === undefined) return;
      series.delete(ruleId);
      hits.remove({ rule_id: ruleId, action, sim_namespace: namespace });
    };
    /** A rule went (deleted here, or seen gone or made again): marked when, its series dropped, no longer known. */
    const went = (ruleId: string): void => {
      goneAt.delete(ruleId);
      goneAt.set(ruleId, nextRuleOrder());
      // Held requests last seconds: the oldest marks go first past a bound.
      if (goneAt.size > MAX_GONE_MARKS) goneAt.delete(goneAt.keys().next().value as string);
      forget(ruleId);
      known.delete(ruleId);
    };
    const streams = createStreams(config.randomSeed);
    // The routes rules shape, by dialect and method (filled by the onRoute hook below): a rule that can match none of them is refused.
    const shapedRoutes: DialectRoute[] = [];
    const service = new FaultRuleService({
      store: app.stores.faultRules,
      clock,
      // With Redis the rules are shared: another replica's change is seen here at once (told below), or within a second.
      refreshMs: shared ? SHARED_RULES_REFRESH_MS : 0,
      ruleId: () => ids('rule'),
      random: (namespace) => streams(`faults:${namespace}`),
      routes: () => shapedRoutes,
      onHit: (hit) => {
        if (hit.matchedOrder !== undefined && (hit.matchedOrder < allGoneAt || hit.matchedOrder < (goneAt.get(hit.ruleId) ?? 0))) return;
        series.set(hit.ruleId, hit.action);
        // By namespace (`sim_namespace`: Kubernetes' service discovery labels every target `namespace`,
        // which would rename this one): rules of the same id in two of them (FAULTS_FILE's, made in
        // each) were one series, the sum of both, which went backwards when one namespace was reset.
        hits.inc({ rule_id: hit.ruleId, action: hit.action, sim_namespace: namespace });
      },
      // The rules as the store has them (after a change here, or one another replica made): the series of every other rule go.
      onRules: (ruleNamespace, rules, complete) => {
        if (ruleNamespace !== namespace) return;
        // A rule made again with the same id (another `createdAt`) is another rule: the old one
        // went, and its held hit must not count for the new one (a review, 2026-12-07). Told so by
        // any read, kept or not: the reads of a namespace come one after another, so this one is
        // the newest (a review: an incomplete read that kept the old time dropped the new rule's hit).
        // One made again within the same millisecond is not told apart.
        for (const [ruleId, madeAt] of rules) {
          const before = known.get(ruleId);
          if (before !== undefined && before !== madeAt) went(ruleId);
          known.set(ruleId, madeAt);
        }
        // A read a change here may have outdated (not kept): a rule missing from it may still exist.
        // Requests matched with it all the same, so its rules are known (a review: one first matched
        // through such a read and deleted on another replica before the next read got its series back).
        if (!complete) return;
        // Every rule that went since the last read, not only those with a series here: an outcome
        // rule whose first hit is still held has none yet (a review: deleted on another replica, its
        // series came back when that request stored its payment).
        for (const ruleId of new Set([...known.keys(), ...series.keys()])) {
          if (!rules.has(ruleId)) went(ruleId);
        }
      },
    });
    // With Redis: a change another replica made to this namespace's rules applies here at once (its
    // notice), not at the next refresh; the refresh stays for a notice lost.
    const stopListening = app.stores.faultRules.listen?.(
      (changed) => service.changedElsewhere(changed),
      // Refused (an ACL without the channel or @pubsub): said once, since a change then takes up to the refresh to apply.
      loggedListening(app.log, { sim_namespace: namespace }, {
        notices: 'fault-rule change notices',
        meanwhile: `a rule changed on another replica applies here within ${SHARED_RULES_REFRESH_MS / 1000} s (at the next refresh), not by the next request`,
        again: 'rule changes on other replicas apply here by the next request again',
        othersMeanwhile: `a rule changed here applies on the other replicas within ${SHARED_RULES_REFRESH_MS / 1000} s (at their next refresh), not by the next request`,
        othersAgain: 'rule changes here apply on the other replicas by the next request again',
      }),
    );
    if (stopListening !== undefined) app.addHook('onClose', async () => stopListening());

    app.decorate<Faults | null>('faults', {
      service,
      async loadFile() {
        // FAULTS_FILE's rules were read before any route existed: one that can match none ends the
        // start now, as the file's other problems end it. Then they are made (before 2026-12-05, at
        // this plugin's registration, unchecked): each namespace starts with FAULTS_FILE's rules, as
        // the default one does (on Redis, once per content of the file).
        const never = fileRulesMatchingNoRoute(config.faults.document, config.faults.rules, shapedRoutes);
        if (never !== undefined) throw new StartProblem(`FAULTS_FILE: ${never}`);
        if (config.faults.file !== undefined) await declareFileRules(app.log, service, namespace, config.faults, clock.now());
      },
      async delete(namespace, id) {
        const stored = await service.get(namespace, id);
        if (stored === undefined || !(await service.delete(namespace, id))) return undefined;
        // Marked already, so the same id made again here is a rule of its own at the next read.
        went(stored.rule.id);
        return stored;
      },
      async deleteAll(namespace) {
        const deleted = await service.deleteAll(namespace);
        allGoneAt = nextRuleOrder();
        for (const ruleId of [...series.keys()]) forget(ruleId);
        known.clear();
        return deleted;
      },
      webhooks: { plan: (url) => service.planWebhook(namespace, url), random: streams(`faults:${namespace}:reorder`) },
    } satisfies Faults);

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
  },
  { name: 'paysim-faults', dependencies: ['paysim-core', 'paysim-metrics'] },
);

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

/**
 * FAULTS_FILE's rules in `namespace`, made once for each content of the file: the start of a
 * process with a shared store (Redis) whose rules another replica made from this file already,
 * or this one before a restart, keeps them as they are (with their counters, and as the API left
 * them); a changed file replaces the rules the earlier one made. On memory every start makes them.
 * A file that cannot be applied (too many rules, an id another namespace holds) ends the start on
 * one line.
 */
async function declareFileRules(log: FastifyBaseLogger, service: FaultRuleService, namespace: string, faults: Config['faults'], now: number): Promise<void> {
  // Read as of this namespace's creation (checked at start, so nothing new can be wrong): relative
  // windows count from it, and a rule whose window is over by now is left out, logged (before
  // 2026-12-04 every namespace got the rules as read at start, windows and all).
  const rules = parseFaultsFile(faults.document, now).filter((rule, i) => {
    if (!windowEnded(rule, now)) return true;
    const name = rule.id ?? `rules[${i}]`;
    const until = new Date(rule.input.window.until as number).toISOString();
    log.warn({ faults_file: faults.file, rule: name, until }, `FAULTS_FILE rule ${name} not made: its window ended at ${until}, before the rules were made; remove it from the file or move its window`);
    return false;
  });
  const outcome = await service.declare(namespace, rules, faults.fingerprint);
  const where = { faults_file: faults.file, rules: rules.length };
  if (outcome.kind === 'applied') {
    const replaced = outcome.replaced === 0 ? '' : `, replacing ${outcome.replaced} made from an earlier content of the file or with an id it gives`;
    log.info({ ...where, replaced: outcome.replaced }, `fault rules loaded from FAULTS_FILE${replaced}`);
  } else if (outcome.kind === 'kept') {
    log.info(where, 'fault rules of FAULTS_FILE already made from this file (by another replica, or before a restart): kept as they are, with their counters and as the API left them');
  } else if (outcome.kind === 'full') {
    throw new StartProblem(`FAULTS_FILE: its ${faults.rules.length} rules do not fit: at most ${outcome.max} rules may exist at once (FAULTS_MAX_RULES); delete some with DELETE /v1/sim/rules, or raise FAULTS_MAX_RULES`);
  } else {
    throw new StartProblem(`FAULTS_FILE: rule id ${outcome.id} is another namespace's rule; give the file's rule another id`);
  }
}
