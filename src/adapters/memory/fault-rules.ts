import { copyRule, copyStored, type FaultRule, type StoredFaultRule } from '../../core/faults/model.ts';
import type { ClaimOutcome, CreateRuleOutcome, DeclareRulesOutcome, FaultRuleStore, RuleCounters } from '../../core/faults/ports.ts';
import type { StoreStats } from '../../core/ports.ts';

export interface MemoryFaultRuleStoreOptions {
  /** Rules held across every namespace; a create beyond it is refused (rules are never evicted: they are what the client asked for). */
  maxRules: number;
}

/** The default bound: far more rules than a test plan names, few enough that listing them stays cheap. */
export const DEFAULT_MAX_FAULT_RULES = 1_000;

/**
 * Fault rules in one process's memory. Each call is synchronous inside, so it is one atomic step
 * (claimHit reads and counts without a turn of the event loop in between). Namespaces keep their
 * rules in insertion order (a Map's), which is creation order.
 */
export class MemoryFaultRuleStore implements FaultRuleStore {
  readonly #namespaces = new Map<string, Map<string, StoredFaultRule>>();
  /** Every rule id of every namespace: ids are unique across namespaces. */
  readonly #ids = new Set<string>();
  readonly #revisions = new Map<string, number>();
  /** Per namespace, the last declaration (`declare`): its fingerprint and the ids it made. */
  readonly #declared = new Map<string, { fingerprint: string; ids: string[] }>();
  #revision = 0;
  readonly #options: MemoryFaultRuleStoreOptions;

  constructor(options: MemoryFaultRuleStoreOptions = { maxRules: DEFAULT_MAX_FAULT_RULES }) {
    this.#options = options;
  }

  create(namespace: string, rule: FaultRule): Promise<CreateRuleOutcome> {
    if (this.#ids.has(rule.id)) return Promise.resolve({ ok: false, reason: 'exists' });
    if (this.#ids.size >= this.#options.maxRules) return Promise.resolve({ ok: false, reason: 'full', max: this.#options.maxRules });
    this.#add(namespace, rule);
    this.#changed(namespace);
    return Promise.resolve({ ok: true });
  }

  /** Adds the rule (its id checked free) after the namespace's others, with zero counters. */
  #add(namespace: string, rule: FaultRule): void {
    let rules = this.#namespaces.get(namespace);
    if (rules === undefined) {
      rules = new Map();
      this.#namespaces.set(namespace, rules);
    }
    rules.set(rule.id, { rule: copyRule(rule), hits: 0, matched: 0, lastHitAt: null });
    this.#ids.add(rule.id);
  }

  get(namespace: string, id: string): Promise<StoredFaultRule | undefined> {
    const stored = this.#namespaces.get(namespace)?.get(id);
    return Promise.resolve(stored === undefined ? undefined : copyStored(stored));
  }

  list(namespace: string): Promise<StoredFaultRule[]> {
    const rules = this.#namespaces.get(namespace);
    return Promise.resolve(rules === undefined ? [] : [...rules.values()].map(copyStored));
  }

  setEnabled(namespace: string, id: string, enabled: boolean): Promise<StoredFaultRule | undefined> {
    const stored = this.#namespaces.get(namespace)?.get(id);
    if (stored === undefined) return Promise.resolve(undefined);
    if (stored.rule.enabled !== enabled) {
      stored.rule.enabled = enabled;
      this.#changed(namespace);
    }
    return Promise.resolve(copyStored(stored));
  }

  delete(namespace: string, id: string): Promise<boolean> {
    const rules = this.#namespaces.get(namespace);
    if (rules === undefined || !rules.delete(id)) return Promise.resolve(false);
    this.#ids.delete(id);
    if (rules.size === 0) this.#namespaces.delete(namespace);
    this.#changed(namespace);
    return Promise.resolve(true);
  }

  deleteAll(namespace: string): Promise<number> {
    const rules = this.#namespaces.get(namespace);
    if (rules === undefined) return Promise.resolve(0);
    for (const id of rules.keys()) this.#ids.delete(id);
    this.#namespaces.delete(namespace);
    this.#changed(namespace);
    return Promise.resolve(rules.size);
  }

  declare(namespace: string, fingerprint: string, rules: readonly FaultRule[]): Promise<DeclareRulesOutcome> {
    const last = this.#declared.get(namespace);
    if (last?.fingerprint === fingerprint) return Promise.resolve({ kind: 'kept' });
    const own = this.#namespaces.get(namespace);
    const going = new Set((last?.ids ?? []).filter((id) => own?.has(id) === true));
    for (const rule of rules) {
      if (own?.has(rule.id) === true) going.add(rule.id);
      else if (this.#ids.has(rule.id)) return Promise.resolve({ kind: 'exists', id: rule.id });
    }
    if (this.#ids.size - going.size + rules.length > this.#options.maxRules) return Promise.resolve({ kind: 'full', max: this.#options.maxRules });
    for (const id of going) {
      own?.delete(id);
      this.#ids.delete(id);
    }
    if (own?.size === 0) this.#namespaces.delete(namespace);
    for (const rule of rules) this.#add(namespace, rule);
    this.#declared.set(namespace, { fingerprint, ids: rules.map((rule) => rule.id) });
    this.#changed(namespace);
    return Promise.resolve({ kind: 'applied', replaced: going.size });
  }

  claimHit(namespace: string, id: string, sampled: boolean, now: number): Promise<ClaimOutcome> {
    const stored = this.#namespaces.get(namespace)?.get(id);
    if (stored === undefined || !stored.rule.enabled) return Promise.resolve({ kind: 'gone' });
    stored.matched++;
    if (!sampled) return Promise.resolve({ kind: 'skipped', reason: 'probability' });
    if (stored.rule.count !== null && stored.hits >= stored.rule.count) return Promise.resolve({ kind: 'skipped', reason: 'exhausted' });
    stored.hits++;
    stored.lastHitAt = now;
    return Promise.resolve({ kind: 'applied', hits: stored.hits });
  }

  releaseHit(namespace: string, id: string): Promise<boolean> {
    const stored = this.#namespaces.get(namespace)?.get(id);
    if (stored === undefined || stored.hits === 0) return Promise.resolve(false);
    stored.hits--;
    return Promise.resolve(true);
  }

  counters(namespace: string): Promise<RuleCounters[]> {
    const rules = this.#namespaces.get(namespace);
    return Promise.resolve(rules === undefined ? [] : [...rules.values()].map((s) => ({ id: s.rule.id, hits: s.hits, matched: s.matched })));
  }

  revision(namespace: string): Promise<number> {
    return Promise.resolve(this.#revisions.get(namespace) ?? 0);
  }

  stats(): Promise<StoreStats> {
    return Promise.resolve({ size: this.#ids.size, max: this.#options.maxRules });
  }

  /**
   * Revisions come from one counter, so a namespace emptied and filled again never repeats an old
   * one. An empty namespace has revision 0 and no entry, so namespaces come and go without a trace.
   */
  #changed(namespace: string): void {
    if (this.#namespaces.has(namespace)) this.#revisions.set(namespace, ++this.#revision);
    else this.#revisions.delete(namespace);
  }
}
