import type { Clock } from '../clock.ts';
import { DomainError, validationFailed } from '../errors.ts';
import type { RandomSource } from '../random.ts';
import { sample } from './distributions.ts';
import type { Distribution, FaultRule, RequestAction, StoredFaultRule } from './model.ts';
import { EMPTY_MATCHER, RuleMatcher, type CompiledRequestRule, type CompiledWebhookRule, type MatchInput, type RequestSlot } from './matcher.ts';
import type { DialectRoute } from './outcome-routes.ts';
import type { DeclareRulesOutcome, FaultRuleStore } from './ports.ts';
import { toFieldIssues } from './checker.ts';
import { parseRule, windowEndedAt, type ParsedRule } from './validation.ts';
import { NO_WEBHOOK_FAULTS, type WebhookFaultPlan } from './webhook-policy.ts';

/**
 * Fault rules at work (issue 15): created, listed, switched and deleted per namespace, and applied
 * to requests and webhook deliveries. A request is matched against the namespace's compiled rules
 * (matcher.ts); for each rule it matches, in rule order, the service draws from the namespace's
 * random stream (the probability, and a latency sample for latency rules) before anything else,
 * then asks the store whether the match applies (`claimHit`: probability passed, `count` not used
 * up; one atomic step). The first applying rule of each slot (latency, outcome, response) shapes
 * the answer.
 *
 * Determinism: every matched rule draws the same numbers whatever the store answers (1 for a
 * probability strictly between 0 and 1, plus 0–2 for a latency sample), and all draws of one
 * request are taken before its first await, so a seeded run that sends the same requests in the
 * same order makes the same selections and latencies.
 * @see issue 15 "Rules", "Determinism"
 */

export const DEFAULT_NAMESPACE = 'default';

/** Compiled rule sets kept at once; a namespace beyond it is compiled again when next asked. */
const MAX_CACHED_NAMESPACES = 10_000;

export interface FaultRuleServiceDeps {
  store: FaultRuleStore;
  clock: Clock;
  /** A new rule id, `rule_<ULID>` (ids.ts: `() => ids('rule')` once `rule` is an IdPrefix). */
  ruleId: () => string;
  /** The random stream of a namespace (seeded with RANDOM_SEED, one stream per namespace). */
  random: (namespace: string) => RandomSource;
  /**
   * How long a compiled rule set is used before the store's revision is read again (see
   * `#fresh`), for stores shared by several replicas. 0 (the default, right for one process):
   * this service is the only writer and recompiles on its own changes only.
   */
  refreshMs?: number;
  /** The routes rules shape, to refuse a rule that can match none (ParseRuleOptions.routes); none: not checked. */
  routes?: () => readonly DialectRoute[];
  /** Called for every match that applied a rule (for the `rule hits` metric). */
  onHit?: (hit: RuleHit) => void;
  /**
   * Called with the namespace's rules (id → when it was made) each time they are read from the
   * store (a first read, or a revision that changed: a rule made, changed or deleted, here or on
   * another replica), so the `rule hits` metric drops the series of rules that no longer exist.
   * `complete` is false for a read a change made here meanwhile may have outdated: requests still
   * match with it, but a rule missing from it may not have gone.
   */
  onRules?: (namespace: string, rules: ReadonlyMap<string, number>, complete: boolean) => void;
}

export interface RuleHit {
  namespace: string;
  ruleId: string;
  action: FaultRule['action']['type'];
  /** For a hit counted after its request was matched (an outcome's, once the payment is stored): when it was matched (`nextRuleOrder`). */
  matchedOrder?: number;
}

let ruleOrder = 0;
/**
 * A number that grows with each call in this process: it orders a request's match against a rule's
 * deletion (the metric must not count, after the deletion, a hit matched before it), where times
 * on an injected clock can be equal.
 */
export function nextRuleOrder(): number {
  return ++ruleOrder;
}

export type ResponseAction = Extract<RequestAction, { type: 'error' | 'response_lost' | 'timeout' }>;

/** What rules do to one request. */
export interface RequestFaultPlan {
  /** The rules that shape the answer, in rule order: `X-Sim-Rule` lists them (one id in the usual case). */
  ruleIds: readonly string[];
  /** Wait this long before answering (ms, fractional). */
  latency: { ruleId: string; ms: number } | null;
  /**
   * Force the decision of a payment this request creates or confirms: approve (null) or fail with
   * the code. The service that stores the payment marks it `applied`; `settleOutcome` gives the
   * rule's hit back when it was not (the request was refused, or replayed an earlier answer).
   */
  outcome: { ruleId: string; failureCode: string | null; applied?: boolean; matchedOrder: number } | null;
  /** Answer with an error, reset after committing, or hold then reset. */
  response: { ruleId: string; action: ResponseAction } | null;
}

export const NO_FAULTS: RequestFaultPlan = Object.freeze({ ruleIds: Object.freeze([]) as readonly string[], latency: null, outcome: null, response: null });
/** One promise for every request of a namespace without request rules. */
const NO_FAULTS_RESOLVED = Promise.resolve(NO_FAULTS);

/** A plan being filled in. */
type Mutable<T extends { ruleIds: readonly string[] }> = Omit<T, 'ruleIds'> & { ruleIds: string[] };

/** How long a caller with rules compiled before waits for a read of the store's revision (real time) before it goes on with those. */
const STALE_WAIT_MS = 100;

interface CacheEntry {
  matcher: RuleMatcher;
  revision: number;
  /** When the revision was last read (or a read of it last failed: see `#matcher`). */
  checkedAt: number;
}

export class FaultRuleService {
  readonly #deps: FaultRuleServiceDeps;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #loading = new Map<string, Promise<RuleMatcher>>();
  /** When each read of the store in #loading started (real time): how long callers with rules compiled before may still wait for it. */
  readonly #loadStartedAt = new WeakMap<Promise<RuleMatcher>, number>();
  /** Bumped by every change this service makes, so a load that started before it is not cached after it. */
  #generation = 0;
  /**
   * Notices of another process's changes (`changedElsewhere`), of any namespace: a load one came
   * during is kept due for a refresh (a notice of another namespace costs that load's namespace one
   * more read of the revision; a service serves one namespace's app).
   */
  #told = 0;

  constructor(deps: FaultRuleServiceDeps) {
    this.#deps = deps;
  }

  /** Creates a rule from a request body (snake_case JSON): VALIDATION_FAILED naming every problem, as JSON pointers. */
  async create(namespace: string, body: unknown): Promise<StoredFaultRule> {
    return this.add(namespace, this.parse(body));
  }

  /** A request body (snake_case JSON) as the rule it describes: VALIDATION_FAILED naming every problem, as JSON pointers. */
  parse(body: unknown): ParsedRule {
    const routes = this.#deps.routes?.();
    const parsed = parseRule(body, { now: this.#deps.clock.now(), ...(routes === undefined ? {} : { routes }) });
    if (!parsed.ok) throw validationFailed(toFieldIssues(parsed.issues).map((issue) => ({ in: 'body', ...issue })));
    return parsed.value;
  }

  /** Adds a parsed rule (a request's; FAULTS_FILE's go through `declare`). */
  async add(namespace: string, parsed: ParsedRule): Promise<StoredFaultRule> {
    const rule = this.#ruleOf(parsed);
    const outcome = await this.#deps.store.create(namespace, rule);
    this.#invalidate(namespace);
    if (!outcome.ok) {
      if (outcome.reason === 'exists') throw validationFailed([{ in: 'body', field: '/id', rule: 'unique', message: `rule ${rule.id} exists already` }]);
      throw tooManyRules(outcome.max);
    }
    return { rule, hits: 0, matched: 0, lastHitAt: null };
  }

  /**
   * FAULTS_FILE's rules in `namespace`, made once for each content of the file (`fingerprint`):
   * see FaultRuleStore.declare. A rule without an id in the file gets a new one.
   */
  async declare(namespace: string, parsed: readonly ParsedRule[], fingerprint: string): Promise<DeclareRulesOutcome> {
    const outcome = await this.#deps.store.declare(namespace, fingerprint, parsed.map((rule) => this.#ruleOf(rule)));
    if (outcome.kind === 'applied') this.#invalidate(namespace);
    return outcome;
  }

  /** The rule to store: the id its body or FAULTS_FILE entry gave, or a new one, made now. */
  #ruleOf(parsed: ParsedRule): FaultRule {
    return { ...parsed.input, id: parsed.id ?? this.#deps.ruleId(), createdAt: this.#deps.clock.now() } as FaultRule;
  }

  get(namespace: string, id: string): Promise<StoredFaultRule | undefined> {
    return this.#deps.store.get(namespace, id);
  }

  list(namespace: string): Promise<StoredFaultRule[]> {
    return this.#deps.store.list(namespace);
  }

  /**
   * Switches a rule on or off. A rule whose window has ended is not switched on (INVALID_STATE,
   * nothing changed): it would never apply again, as the API refuses to create one. A rule's window
   * never changes, so the check need not be atomic with the switch.
   */
  async setEnabled(namespace: string, id: string, enabled: boolean): Promise<StoredFaultRule | undefined> {
    if (enabled) {
      const current = await this.#deps.store.get(namespace, id);
      if (current === undefined) return undefined;
      const ended = windowEndedAt(current.rule, this.#deps.clock.now());
      if (ended !== undefined) {
        throw new DomainError('INVALID_STATE', `Rule ${id}'s window ended at ${new Date(ended).toISOString()}: switched on, it would never apply again. Create a rule with a window that has not ended instead.`);
      }
    }
    const stored = await this.#deps.store.setEnabled(namespace, id, enabled);
    this.#invalidate(namespace);
    return stored;
  }

  async delete(namespace: string, id: string): Promise<boolean> {
    const deleted = await this.#deps.store.delete(namespace, id);
    this.#invalidate(namespace);
    return deleted;
  }

  async deleteAll(namespace: string): Promise<number> {
    const deleted = await this.#deps.store.deleteAll(namespace);
    this.#invalidate(namespace);
    return deleted;
  }

  /**
   * NO_FAULTS when the namespace's compiled rules (already loaded) say no rule matches this
   * request: a synchronous answer for the common case, so a hook need not wait. Undefined when
   * `planRequest` must be awaited (a rule matches, or the rules are not loaded yet).
   */
  peekRequest(namespace: string, input: MatchInput): RequestFaultPlan | undefined {
    const matcher = this.#fresh(namespace);
    if (matcher === undefined) return undefined;
    return matcher.matchRequest(input, this.#deps.clock.now()).length === 0 ? NO_FAULTS : undefined;
  }

  /** True when the namespace's compiled rules are loaded and hold no enabled request rule: the hot path's one check. */
  hasNoRequestRules(namespace: string): boolean {
    const matcher = this.#fresh(namespace);
    return matcher !== undefined && matcher.requestRules === 0;
  }

  /** What the namespace's rules do to this request. With no rule matching, NO_FAULTS and no store call. */
  planRequest(namespace: string, input: MatchInput): Promise<RequestFaultPlan> {
    const matcher = this.#fresh(namespace);
    if (matcher !== undefined && matcher.requestRules === 0) return NO_FAULTS_RESOLVED;
    return this.#planRequest(namespace, input, matcher);
  }

  async #planRequest(namespace: string, input: MatchInput, cached: RuleMatcher | undefined): Promise<RequestFaultPlan> {
    const matcher = cached ?? (await this.#matcher(namespace));
    const now = this.#deps.clock.now();
    const matched = matcher.matchRequest(input, now);
    if (matched.length === 0) return NO_FAULTS;
    const drawn = this.#draw(namespace, matched, (c) => (c.rule.action.type === 'latency' ? c.rule.action.distribution : undefined));
    const filled = new Set<RequestSlot>();
    const plan: Mutable<RequestFaultPlan> = { ruleIds: [], latency: null, outcome: null, response: null };
    for (const { compiled, sampled, ms } of drawn) {
      const { rule, slot } = compiled;
      // An outcome's hit is counted in the metric when its request has stored a payment (settleOutcome).
      const applied = await this.#claim(namespace, rule, sampled && !filled.has(slot), now, slot !== 'outcome');
      if (!applied) continue;
      filled.add(slot);
      plan.ruleIds.push(rule.id);
      const action = rule.action;
      if (action.type === 'latency') plan.latency = { ruleId: rule.id, ms };
      else if (action.type === 'outcome') plan.outcome = { ruleId: rule.id, failureCode: action.failureCode, matchedOrder: nextRuleOrder() };
      else plan.response = { ruleId: rule.id, action };
    }
    return plan.ruleIds.length === 0 ? NO_FAULTS : plan;
  }

  /** What the namespace's webhook rules do to a delivery to `url`, decided once when it is created. */
  async planWebhook(namespace: string, url: string): Promise<WebhookFaultPlan> {
    const matcher = this.#fresh(namespace) ?? (await this.#matcher(namespace));
    const now = this.#deps.clock.now();
    const matched = matcher.matchWebhook(url, now);
    if (matched.length === 0) return NO_WEBHOOK_FAULTS;
    const drawn = this.#draw(namespace, matched, (c) => (c.rule.action.type === 'delay' ? c.rule.action.distribution : undefined));
    const plan: Mutable<WebhookFaultPlan> = { ...NO_WEBHOOK_FAULTS, ruleIds: [] };
    for (const { compiled, sampled, ms } of drawn) {
      const { rule } = compiled;
      const action = rule.action;
      const slotTaken = action.type === 'duplicate' ? plan.duplicate !== null : action.type === 'reorder' ? plan.reorder !== null : action.type === 'delay' ? plan.delay !== null : plan.dropAttempts !== null;
      if (!(await this.#claim(namespace, rule, sampled && !slotTaken, now))) continue;
      plan.ruleIds.push(rule.id);
      if (action.type === 'duplicate') plan.duplicate = { ruleId: rule.id };
      else if (action.type === 'reorder') plan.reorder = { ruleId: rule.id, windowMs: action.windowMs };
      else if (action.type === 'delay') plan.delay = { ruleId: rule.id, ms };
      else plan.dropAttempts = { ruleId: rule.id, n: action.n };
    }
    return plan.ruleIds.length === 0 ? NO_WEBHOOK_FAULTS : plan;
  }

  /** The namespace's compiled rules (for the bench, and for callers that match without applying). */
  async matcher(namespace: string): Promise<RuleMatcher> {
    return this.#fresh(namespace) ?? (await this.#matcher(namespace));
  }

  /** Every draw of one request, before any await: whether each rule passed its probability, and its latency sample. */
  #draw<C extends CompiledRequestRule | CompiledWebhookRule>(namespace: string, matched: readonly C[], distributionOf: (c: C) => Distribution | undefined) {
    const random = this.#deps.random(namespace);
    return matched.map((compiled) => {
      const p = compiled.rule.probability;
      const sampled = p >= 1 ? true : p <= 0 ? false : random.next() < p;
      const distribution = distributionOf(compiled);
      return { compiled, sampled, ms: distribution === undefined ? 0 : sample(distribution, random) };
    });
  }

  async #claim(namespace: string, rule: FaultRule, sampled: boolean, now: number, counted = true): Promise<boolean> {
    const outcome = await this.#deps.store.claimHit(namespace, rule.id, sampled, now);
    if (outcome.kind !== 'applied') return false;
    if (counted) this.#deps.onHit?.({ namespace, ruleId: rule.id, action: rule.action.type });
    return true;
  }

  /**
   * After the request a plan's `outcome` was claimed for: counted as a hit when a payment was stored
   * with it (`applied`), else the hit is given back (the rule's `hits` one less, so a `count` is
   * spent on payments only: a request refused by validation or by the route, or an idempotent
   * replay, takes none). Never throws: a hit that cannot be given back (the store away) stays spent.
   */
  async settleOutcome(namespace: string, outcome: NonNullable<RequestFaultPlan['outcome']>): Promise<void> {
    if (outcome.applied === true) {
      this.#deps.onHit?.({ namespace, ruleId: outcome.ruleId, action: 'outcome', matchedOrder: outcome.matchedOrder });
      return;
    }
    await this.#deps.store.releaseHit(namespace, outcome.ruleId).catch(() => undefined);
  }

  /**
   * The cached matcher when it may be used without asking the store: with a store shared by
   * several replicas (`refreshMs` > 0), one checked less than `refreshMs` ago. A caller that gets
   * none reads the revision (`#matcher`: one read for all callers at once), so a change made on
   * another replica applies here within `refreshMs`, however long this replica was idle.
   */
  #fresh(namespace: string): RuleMatcher | undefined {
    const entry = this.#cache.get(namespace);
    if (entry === undefined) return undefined;
    const refreshMs = this.#deps.refreshMs ?? 0;
    if (refreshMs > 0 && this.#deps.clock.now() - entry.checkedAt >= refreshMs) return undefined;
    return entry.matcher;
  }

  /**
   * The namespace's rules as the store has them. When the store cannot be read (Redis away) and
   * rules were compiled before, those go on applying, and the store is asked again `refreshMs`
   * later, not on every request: a route that needs no store does not fail with it. Nor does it
   * wait on a store slow to answer (Redis silent, before it is found so): with rules compiled
   * before, callers wait for a read at most STALE_WAIT_MS of real time from its start, then go on
   * with those while it goes on (before 2026-12-03 such a request waited as long as the read, 2.5 s
   * at the start of a silence, a helper measured).
   */
  #matcher(namespace: string): Promise<RuleMatcher> {
    const load = this.#loading.get(namespace) ?? this.#startLoad(namespace);
    const stale = this.#cache.get(namespace);
    if (stale === undefined) return load;
    const left = STALE_WAIT_MS - (Date.now() - (this.#loadStartedAt.get(load) ?? Date.now()));
    if (left <= 0) return Promise.resolve(stale.matcher);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<RuleMatcher>((resolve) => {
      timer = setTimeout(() => resolve(stale.matcher), left);
    });
    return Promise.race([load, late]).finally(() => clearTimeout(timer));
  }

  #startLoad(namespace: string): Promise<RuleMatcher> {
    const load = this.#load(namespace)
      .catch((error: unknown) => {
        const entry = this.#cache.get(namespace);
        if (entry === undefined) throw error;
        entry.checkedAt = this.#deps.clock.now();
        return entry.matcher;
      })
      .finally(() => {
        if (this.#loading.get(namespace) === load) this.#loading.delete(namespace);
      });
    this.#loading.set(namespace, load);
    this.#loadStartedAt.set(load, Date.now());
    return load;
  }

  async #load(namespace: string): Promise<RuleMatcher> {
    const { store, clock } = this.#deps;
    const generation = this.#generation;
    const told = this.#told;
    const entry = this.#cache.get(namespace);
    const revision = await store.revision(namespace);
    let matcher: RuleMatcher;
    let made: ReadonlyMap<string, number> | undefined;
    if (entry !== undefined && entry.revision === revision) matcher = entry.matcher;
    else {
      const rules = await store.list(namespace);
      matcher = rules.length === 0 ? EMPTY_MATCHER : RuleMatcher.compile(rules.map((s) => s.rule));
      made = new Map(rules.map((s) => [s.rule.id, s.rule.createdAt]));
    }
    // A change made meanwhile by this service invalidated the namespace: do not cache what may
    // predate it, and report it as incomplete (the requests waiting on it match with it all the same).
    const complete = generation === this.#generation;
    // Told of a change elsewhere meanwhile: what it read may predate that change, so it is read again at the next use.
    if (complete) this.#remember(namespace, { matcher, revision, checkedAt: this.#told === told ? clock.now() : Number.NEGATIVE_INFINITY });
    if (made !== undefined) this.#deps.onRules?.(namespace, made, complete);
    return matcher;
  }

  #remember(namespace: string, entry: CacheEntry): void {
    this.#cache.delete(namespace);
    if (this.#cache.size >= MAX_CACHED_NAMESPACES) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(namespace, entry);
  }

  /**
   * Another process changed the namespace's rules (its store said so: `FaultRuleStore.listen`), or,
   * with no namespace, any namespace's may have changed: the next caller reads the revision before
   * it uses the rules, as after a refresh interval (still with the rules compiled before while that
   * read is slow, and when it fails). A load in flight may have read the revision before the
   * change: later callers start a new one, and what it read is kept as due for a refresh (not
   * dropped: a notice of this process's own change, which comes back to it too, would leave no rules
   * compiled when it came during the load that followed the change, and a silent Redis then held
   * every request the 2.5 s it takes to be found so: a first version did, a test caught it).
   */
  changedElsewhere(namespace?: string): void {
    this.#told++;
    for (const [name, entry] of this.#cache) if (namespace === undefined || name === namespace) entry.checkedAt = Number.NEGATIVE_INFINITY;
    if (namespace === undefined) this.#loading.clear();
    else this.#loading.delete(namespace);
  }

  #invalidate(namespace: string): void {
    this.#generation++;
    this.#cache.delete(namespace);
    // A load in flight may have read the rules before the change: later callers start a new one.
    this.#loading.delete(namespace);
  }
}

/** The store holds its maximum of rules: a client error (delete rules first), not a 503 (rules never leave by themselves). */
export function tooManyRules(max: number): DomainError {
  return validationFailed([{ in: 'body', field: '/', rule: 'max_rules', message: `at most ${max} rules may exist at once; delete some first` }]);
}
