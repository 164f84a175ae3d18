import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import type { Config } from '../../config.ts';
import type { StoredFaultRule } from '../../core/faults/model.ts';
import { FaultRuleService, nextRuleOrder, type RequestFaultPlan } from '../../core/faults/service.ts';
import { fileRulesMatchingNoRoute, parseFaultsFile } from '../../core/faults/file.ts';
import { windowEnded } from '../../core/faults/validation.ts';
import { StartProblem } from '../../start-error.ts';
import type { DialectRoute } from '../../core/faults/outcome-routes.ts';
import { createStreams } from '../../core/random.ts';
import type { WebhookFaults } from '../../webhooks/dispatcher.ts';
import { addFaultHooks, type FaultWait } from './fault-hooks.ts';
import { loggedListening } from '../../adapters/redis/notices.ts';

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
 * hooks that apply request rules to every dialect's routes (./fault-hooks.ts: `addFaultHooks`).
 * Each namespace draws from its own seeded stream, `faults:<namespace>`, so rules never shift the
 * random outcomes of payments and a seeded run repeats. A namespace's app (`X-Sim-Namespace`) has
 * its own rules, stores and streams; `app.namespace` names it.
 *
 * With FAULTS_ENABLED=false none of this exists: `app.faults` is null, no route gets a hook, the
 * rules API is not registered (404) and webhook deliveries are never faulted; `faultPlan` stays
 * null on every request. The benchmark's baseline (scripts/bench-faults.ts), and the setting for
 * users who never inject faults.
 */

export interface FaultsOptions {
  wait?: FaultWait | undefined;
}

/** Rules gone (deleted, or seen gone) whose time of going an app keeps, at most: see `goneAt`. */
const MAX_GONE_MARKS = 10_000;

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
    // The routes rules shape, by dialect and method (filled by the onRoute hook of ./fault-hooks.ts): a rule that can match none of them is refused.
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

    addFaultHooks(app, { service, namespace, shapedRoutes, wait: options.wait });
  },
  { name: 'paysim-faults', dependencies: ['paysim-core', 'paysim-metrics'] },
);

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