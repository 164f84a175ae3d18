import type { ListeningTold, StoreStats } from '../ports.ts';
import type { FaultRule, StoredFaultRule } from './model.ts';

/**
 * The store of fault rules and their counters, per namespace (`X-Sim-Namespace`; `default` when a
 * request names none). Rule ids are unique across namespaces, but a rule is only found in its
 * own. Each method is one atomic step (one Lua script for Redis); `claimHit` in particular
 * decides and counts in one step, so "the first N matches" holds under concurrent requests and
 * across replicas. Returns copies.
 * @see issue 15 "Rules", "Namespaces"
 */
export interface FaultRuleStore {
  /** Adds a rule after the namespace's others; `full` when the store holds its maximum, `exists` when the id is taken. */
  create(namespace: string, rule: FaultRule): Promise<CreateRuleOutcome>;
  get(namespace: string, id: string): Promise<StoredFaultRule | undefined>;
  /** The namespace's rules in creation order, with their counters. */
  list(namespace: string): Promise<StoredFaultRule[]>;
  /** Switches a rule on or off (its counters stay); undefined when there is no such rule. */
  setEnabled(namespace: string, id: string, enabled: boolean): Promise<StoredFaultRule | undefined>;
  /** Whether there was such a rule. */
  delete(namespace: string, id: string): Promise<boolean>;
  /** Removes every rule of the namespace; returns how many. */
  deleteAll(namespace: string): Promise<number>;
  /**
   * FAULTS_FILE's rules, made once for each content of the file (`fingerprint`) in one step:
   * `kept` (nothing changed) when the namespace's rules were last declared with this fingerprint,
   * by any process on the store: the rules stay as the API left them. Otherwise the rules the last
   * declaration made that are still there, and rules of the namespace with an id of `rules`, go;
   * `rules` are created after the others; `applied` says how many went. `full` when that would
   * hold more than the store's maximum, `exists` when an id of `rules` is another namespace's:
   * nothing changed then. A namespace emptied (`deleteAll`) keeps its declaration.
   */
  declare(namespace: string, fingerprint: string, rules: readonly FaultRule[]): Promise<DeclareRulesOutcome>;
  /**
   * Counts one match of the rule's filters (`matched`, whatever the outcome) and decides whether
   * it applies: it does when `sampled` (it passed the rule's probability, drawn by the caller from
   * the namespace's seeded stream) and the rule has applied fewer than `count` times; then `hits`
   * grows by one and `lastHitAt` becomes `now`. One step: of 200 concurrent claims on a rule of
   * `count` 5 that all passed the probability, exactly 5 apply.
   */
  claimHit(namespace: string, id: string, sampled: boolean, now: number): Promise<ClaimOutcome>;
  /**
   * Gives back one applied hit of the rule (`hits` one less, never below zero; `matched` and
   * `lastHitAt` kept): its request did not do what the rule was for (an outcome rule's request
   * stored no payment). False when the rule is gone or has no hit. One step, as `claimHit`.
   */
  releaseHit(namespace: string, id: string): Promise<boolean>;
  /** `hits` and `matched` of every rule of the namespace, in creation order (for metrics and the console). */
  counters(namespace: string): Promise<RuleCounters[]>;
  /**
   * A number that changes whenever the namespace's rule set does (create, enable, delete): a
   * service that compiled the rules checks it to notice another replica's change.
   */
  revision(namespace: string): Promise<number>;
  /**
   * With a store shared by several processes: calls `onChange` with a namespace as soon as another
   * process has changed its rules (create, enable, delete), or with none when changes may have gone
   * untold (the notices' connection was down). A hint that the revision should be read now rather
   * than at the next refresh; it may never come, so the refresh stays. `told.onRefused` hears why
   * (and on which channel) when the store cannot listen (a Redis user without the channel), once
   * until it can, and `told.onAllowed` when it can again. Answers how to stop.
   */
  listen?(onChange: (namespace?: string) => void, told?: ListeningTold): () => void;
  /** Rules held across every namespace, and the most the store holds. */
  stats(): Promise<StoreStats>;
}

export type DeclareRulesOutcome = { kind: 'applied'; replaced: number } | { kind: 'kept' } | { kind: 'full'; max: number } | { kind: 'exists'; id: string };

export type CreateRuleOutcome = { ok: true } | { ok: false; reason: 'full'; max: number } | { ok: false; reason: 'exists' };

export type ClaimOutcome =
  | { kind: 'applied'; hits: number }
  /** Matched, but not applied: the probability said no, or `count` is used up. */
  | { kind: 'skipped'; reason: 'probability' | 'exhausted' }
  /** No such rule (deleted meanwhile), or it is disabled. */
  | { kind: 'gone' };

export interface RuleCounters {
  id: string;
  hits: number;
  matched: number;
}
