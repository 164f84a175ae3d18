import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { MemoryFaultRuleStore } from '../../adapters/memory/fault-rules.ts';
import { DEFAULT_NAMESPACE, FaultRuleService } from '../../core/faults/service.ts';
import type { StoredFaultRule } from '../../core/faults/model.ts';
import { createStreams } from '../../core/random.ts';

/**
 * Fault injection (issue 15): the rule store and service, FAULTS_FILE's rules created at start,
 * and the `fault_rule_hits_total` counter (by rule id and action; a deleted rule's series goes
 * with it). Each namespace draws from its own seeded stream, `faults:<namespace>`, so rules never
 * shift the random outcomes of payments and a seeded run repeats. Namespaces other than `default`
 * come with `X-Sim-Namespace` (a later step).
 */

export interface Faults {
  service: FaultRuleService;
  /** Deletes one rule and its metric series; whether there was such a rule. */
  delete(namespace: string, id: string): Promise<StoredFaultRule | undefined>;
  /** Deletes every rule of the namespace and their metric series; how many. */
  deleteAll(namespace: string): Promise<number>;
}

declare module 'fastify' {
  interface FastifyInstance {
    faults: Faults;
  }
  interface FastifyContextConfig {
    /** false: rules never shape this route's answers (the rules API itself). */
    faults?: boolean;
  }
}

export default fp(
  async (app) => {
    const { config, clock, ids } = app.core;
    const hits = new Counter({
      name: 'fault_rule_hits_total',
      help: 'Requests and webhook deliveries a fault rule applied to, by rule id and action.',
      labelNames: ['rule_id', 'action'],
      registers: [app.metrics.registry],
    });
    const streams = createStreams(config.randomSeed);
    const service = new FaultRuleService({
      store: new MemoryFaultRuleStore({ maxRules: config.faults.maxRules }),
      clock,
      ruleId: () => ids('rule'),
      random: (namespace) => streams(`faults:${namespace}`),
      onHit: (hit) => hits.inc({ rule_id: hit.ruleId, action: hit.action }),
    });
    const forget = (stored: StoredFaultRule): void => void hits.remove({ rule_id: stored.rule.id, action: stored.rule.action.type });
    for (const rule of config.faults.rules) await service.add(DEFAULT_NAMESPACE, rule);
    if (config.faults.file !== undefined) app.log.info({ faults_file: config.faults.file, rules: config.faults.rules.length }, 'fault rules loaded from FAULTS_FILE');

    app.decorate('faults', {
      service,
      async delete(namespace, id) {
        const stored = await service.get(namespace, id);
        if (stored === undefined || !(await service.delete(namespace, id))) return undefined;
        forget(stored);
        return stored;
      },
      async deleteAll(namespace) {
        const rules = await service.list(namespace);
        const deleted = await service.deleteAll(namespace);
        for (const stored of rules) forget(stored);
        return deleted;
      },
    } satisfies Faults);
  },
  { name: 'paysim-faults', dependencies: ['paysim-core', 'paysim-metrics'] },
);
