import { copyRule, copyStored, type FaultRule, type StoredFaultRule } from '../../core/faults/model.ts';
import type { ClaimOutcome, CreateRuleOutcome, FaultRuleStore, RuleCounters } from '../../core/faults/ports.ts';
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
  #revision = 0;
  readonly #options: MemoryFaultRuleStoreOptions;

  constructor(options: MemoryFaultRuleStoreOptions = { maxRules: DEFAULT_MAX_FAULT_RULES }) {
    this.#options = options;
  }

  create(namespace: string, rule: FaultRule): Promise<CreateRuleOutcome> {
    if (this.#ids.has(rule.id)) return Promise.resolve({ ok: false, reason: 'exists' });
    if (this.#ids.size >= this.#options.maxRules) return Promise.resolve({ ok: false, reason: 'full', max: this.#options.maxRules });
    let rules = this.#namespaces.get(namespace);
    if (rules === undefined) {
      rules = new Map();
      this.#namespaces.set(namespace, rules);
    }
    rules.set(rule.id, { rule: copyRule(rule), hits: 0, matched: 0, lastHitAt: null });
    this.#ids.add(rule.id);
    this.#changed(namespace);
    return Promise.resolve({ ok: true });
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
