import type { BodyCondition, FaultRule, HeaderCondition, RequestMatch, RequestRule, RuleWindow, WebhookRule } from './model.ts';
import { compileRoute, MAX_PATTERN_PATH, requestPath, routeMatches, type CompiledRoute } from './route.ts';

/**
 * Which rules a request or a delivery matches, before probability and `count` (those go through
 * the store, see service.ts). A rule set is compiled once, when it changes: disabled rules are
 * left out, routes become regular expressions, body paths are split, and request rules are put in
 * buckets by dialect and method (filled on first use), so a request looks only at the rules that
 * could apply to its dialect and method. With no rules a request costs one check; rules of other
 * dialects or methods cost nothing.
 * @see scripts/bench-faults-matcher.ts for what a match costs (and scripts/bench-faults.ts over HTTP)
 */

/** What the HTTP layer knows of a request when it asks (after the body is parsed, before it is validated). */
export interface MatchInput {
  /** The dialect that owns the route (`native`, `fluxpay`, …). */
  dialect: string;
  method: string;
  /** The router's pattern of the route (`/api/v1/orders/:orderId`), if one matched. */
  routePattern?: string | undefined;
  /** The request's URL path; a query string is ignored. */
  path: string;
  /** Node's headers: lower-case names. */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The parsed JSON body, if any. */
  body?: unknown;
  /**
   * Whether the route takes an `outcome` (it creates or decides a payment and hands the rule's
   * decision to the core: the routes with `config.faultOutcome`). On any other route an outcome
   * rule does not match at all: it is neither matched nor applied, and its `count` is kept.
   */
  takesOutcome: boolean;
}

/** The three things a request rule can do to one answer; one rule at most fills each. */
export type RequestSlot = 'latency' | 'outcome' | 'response';

export interface CompiledRequestRule {
  rule: RequestRule;
  /** Position in rule order. */
  index: number;
  /** The window as numbers (−∞ and +∞ when open), so the check is two comparisons. */
  from: number;
  until: number;
  slot: RequestSlot;
  route: CompiledRoute | null;
  /** Each header's condition in the forms its value may arrive in (`onTheWire`): one of them must match. */
  headers: readonly (readonly [string, readonly HeaderCondition[]])[];
  body: readonly (readonly [readonly string[], BodyCondition])[];
}

export interface CompiledWebhookRule {
  rule: WebhookRule;
  /** Its `url_prefix` with the scheme and host in lower case (`caseFoldedOrigin`); null: every URL. */
  prefix: string | null;
}

/**
 * `url` with its scheme and host in lower case, as URLs compare them (`HTTP://Hooks.Example:80/A` →
 * `http://hooks.example:80/A`); the user information, path, query and fragment as written (they
 * may differ by case). A prefix that ends inside its authority (`http://Hook`) cannot say whether
 * that is a user name or a host: the matcher also compares it as written (`matchWebhook`).
 */
export function caseFoldedOrigin(url: string): string {
  const schemeEnd = url.indexOf('://');
  if (schemeEnd < 0) return url;
  const authorityStart = schemeEnd + 3;
  let end = url.length;
  for (let i = authorityStart; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35) {
      // `/`, `?` or `#`: the authority ends.
      end = i;
      break;
    }
  }
  const at = url.lastIndexOf('@', end - 1);
  const hostStart = at >= authorityStart ? at + 1 : authorityStart;
  return url.slice(0, authorityStart).toLowerCase() + url.slice(authorityStart, hostStart) + url.slice(hostStart, end).toLowerCase() + url.slice(end);
}

const NONE: readonly never[] = Object.freeze([]);

export class RuleMatcher {
  /** Every enabled request rule, in rule order. */
  readonly #request: CompiledRequestRule[];
  readonly #webhook: CompiledWebhookRule[];
  /** dialect → method → the request rules that may apply. */
  readonly #buckets = new Map<string, Map<string, Bucket>>();
  /** Rules are matched against their own dialect and method names only; a stranger's name gets no bucket of its own. */
  static readonly #MAX_BUCKETS = 256;
  #bucketCount = 0;

  private constructor(request: CompiledRequestRule[], webhook: CompiledWebhookRule[]) {
    this.#request = request;
    this.#webhook = webhook;
  }

  /** Compiles rules given in rule order (the order they were created in). */
  static compile(rules: readonly FaultRule[]): RuleMatcher {
    const request: CompiledRequestRule[] = [];
    const webhook: CompiledWebhookRule[] = [];
    for (const rule of rules) {
      if (!rule.enabled) continue;
      if (rule.target === 'webhook') webhook.push({ rule, prefix: rule.match.urlPrefix === null ? null : caseFoldedOrigin(rule.match.urlPrefix) });
      else request.push(compileRequestRule(rule, request.length));
    }
    return new RuleMatcher(request, webhook);
  }

  get requestRules(): number {
    return this.#request.length;
  }

  get webhookRules(): number {
    return this.#webhook.length;
  }

  /** The enabled request rules `input` matches at `now`, in rule order; inside their window only. */
  matchRequest(input: MatchInput, now: number): readonly CompiledRequestRule[] {
    if (this.#request.length === 0) return NONE;
    const bucket = this.#bucket(input.dialect, input.method);
    if (bucket.size === 0) return NONE;
    const path = requestPath(input.path);
    let matched: CompiledRequestRule[] | undefined;
    if (bucket.byPath.size > 0) {
      matched = collect(bucket.byPath.get(path), input, path, now, matched);
      if (input.routePattern !== undefined && input.routePattern !== path) matched = collect(bucket.byPath.get(input.routePattern), input, path, now, matched);
    }
    let sources = matched === undefined ? 0 : 1;
    if (bucket.anyPattern !== null && path.length <= MAX_PATTERN_PATH && bucket.anyPattern.test(path)) {
      const before = matched?.length ?? 0;
      matched = collect(bucket.patterned, input, path, now, matched);
      if ((matched?.length ?? 0) > before) sources++;
    }
    const before = matched?.length ?? 0;
    matched = collect(bucket.unrouted, input, path, now, matched);
    if ((matched?.length ?? 0) > before) sources++;
    if (matched === undefined) return NONE;
    // Each source adds its rules in rule order; from several, put them back in rule order.
    if (sources > 1) matched.sort((a, b) => a.index - b.index);
    return matched;
  }

  /** The enabled webhook rules a delivery to `url` matches at `now`, in rule order (the prefix's scheme and host without case). */
  matchWebhook(url: string, now: number): readonly CompiledWebhookRule[] {
    if (this.#webhook.length === 0) return NONE;
    let matched: CompiledWebhookRule[] | undefined;
    let folded: string | undefined;
    for (const compiled of this.#webhook) {
      const prefix = compiled.prefix;
      if (!inWindow(compiled.rule.window, now)) continue;
      // As written (a prefix ending inside a user name), or with the scheme and host folded on both sides.
      if (prefix !== null && !url.startsWith(compiled.rule.match.urlPrefix as string) && !(folded ??= caseFoldedOrigin(url)).startsWith(prefix)) continue;
      (matched ??= []).push(compiled);
    }
    return matched ?? NONE;
  }

  #bucket(dialect: string, method: string): Bucket {
    const byMethod = this.#buckets.get(dialect);
    const cached = byMethod?.get(method);
    if (cached !== undefined) return cached;
    const bucket: Bucket = { size: 0, byPath: new Map(), patterned: [], anyPattern: null, unrouted: [] };
    for (const c of this.#request) {
      if (!matchesDialectAndMethod(c.rule.match, dialect, method)) continue;
      bucket.size++;
      if (c.route === null) bucket.unrouted.push(c);
      else if (c.route.kind === 'regex') bucket.patterned.push(c);
      else {
        const list = bucket.byPath.get(c.route.path);
        if (list === undefined) bucket.byPath.set(c.route.path, [c]);
        else list.push(c);
      }
    }
    if (bucket.patterned.length > 0) {
      const sources = new Set(bucket.patterned.map((c) => (c.route as { source: string }).source));
      bucket.anyPattern = new RegExp([...sources].map((source) => `(?:${source})`).join('|'));
    }
    if (this.#bucketCount < RuleMatcher.#MAX_BUCKETS) {
      this.#bucketCount++;
      if (byMethod === undefined) this.#buckets.set(dialect, new Map([[method, bucket]]));
      else byMethod.set(method, bucket);
    }
    return bucket;
  }
}

/**
 * The request rules of one dialect and method. Rules with a literal route are found by the
 * request's path (or route pattern) in a map, so rules for other paths cost nothing; rules with a
 * pattern or a glob are looked at only when one expression made of all their routes matches the
 * path (one test instead of one per rule); rules without a route are checked one by one.
 */
interface Bucket {
  size: number;
  byPath: Map<string, CompiledRequestRule[]>;
  patterned: CompiledRequestRule[];
  /** The alternation of the patterned rules' anchored expressions; null without such rules. */
  anyPattern: RegExp | null;
  unrouted: CompiledRequestRule[];
}

/** Adds the rules of `candidates` that `input` matches to `matched` (made on the first). */
function collect(candidates: readonly CompiledRequestRule[] | undefined, input: MatchInput, path: string, now: number, matched: CompiledRequestRule[] | undefined): CompiledRequestRule[] | undefined {
  if (candidates === undefined) return matched;
  for (const compiled of candidates) {
    if (compiled.slot === 'outcome' && !input.takesOutcome) continue;
    if (now < compiled.from || now >= compiled.until) continue;
    // A literal route was matched by the map lookup; routeMatches holds for it too.
    if (compiled.route !== null && compiled.route.kind === 'regex' && !routeMatches(compiled.route, path, input.routePattern)) continue;
    if (compiled.headers.length > 0 && !headersMatch(compiled.headers, input.headers)) continue;
    if (compiled.body.length > 0 && !bodyMatches(compiled.body, input.body)) continue;
    (matched ??= []).push(compiled);
  }
  return matched;
}

function compileRequestRule(rule: RequestRule, index: number): CompiledRequestRule {
  const { match, action } = rule;
  const slot: RequestSlot = action.type === 'latency' ? 'latency' : action.type === 'outcome' ? 'outcome' : 'response';
  return {
    rule,
    index,
    from: rule.window.from ?? Number.NEGATIVE_INFINITY,
    until: rule.window.until ?? Number.POSITIVE_INFINITY,
    slot,
    route: match.route === null ? null : compileRoute(match.route),
    headers: Object.entries(match.headers).map(([name, condition]) => [name, onTheWire(condition)] as const),
    body: Object.entries(match.body).map(([field, condition]) => [field.split('.'), condition] as const),
  };
}

/** Whether a request rule's `dialect` and `method` (null: any) let it match a request of this dialect and method. */
export function matchesDialectAndMethod(match: Pick<RequestMatch, 'dialect' | 'method'>, dialect: string, method: string): boolean {
  return (match.dialect === null || match.dialect === dialect) && (match.method === null || match.method === method);
}

export function inWindow(window: RuleWindow, now: number): boolean {
  return (window.from === null || now >= window.from) && (window.until === null || now < window.until);
}

function headersMatch(conditions: CompiledRequestRule['headers'], headers: MatchInput['headers']): boolean {
  for (const [name, condition] of conditions) {
    // Own keys only: a rule on a header named `constructor` must not read the object's prototype.
    const value = Object.hasOwn(headers, name) ? headers[name] : undefined;
    if (value === undefined) return false;
    if (typeof value === 'string' ? !anyMatches(condition, value) : !value.some((v) => anyMatches(condition, v))) return false;
  }
  return true;
}

/**
 * A header condition in the forms a value beyond ASCII may arrive in, as Node reads header bytes
 * (one latin1 character each): its UTF-8 bytes, as most clients send it (curl, a browser: `결제`
 * matched since 2026-12-05; before, such a rule was taken and never matched, a user test), and,
 * for characters up to U+00FF, the latin1 byte of an older client (`é` as 0xE9, which matched
 * before). An ASCII value is its own bytes: one form.
 */
function onTheWire(condition: HeaderCondition): readonly HeaderCondition[] {
  const text = condition.kind === 'equals' ? condition.value : condition.prefix;
  // As many bytes as UTF-16 units: nothing beyond ASCII.
  if (Buffer.byteLength(text, 'utf8') === text.length) return [condition];
  const utf8 = Buffer.from(text, 'utf8').toString('latin1');
  return [condition.kind === 'equals' ? { kind: 'equals', value: utf8 } : { kind: 'prefix', prefix: utf8 }, condition];
}

function anyMatches(conditions: readonly HeaderCondition[], value: string): boolean {
  for (const condition of conditions) if (textMatches(condition, value)) return true;
  return false;
}

function textMatches(condition: HeaderCondition, value: string): boolean {
  return condition.kind === 'equals' ? value === condition.value : value.startsWith(condition.prefix);
}

function bodyMatches(conditions: CompiledRequestRule['body'], body: unknown): boolean {
  for (const [segments, condition] of conditions) {
    const found = fieldAt(body, segments);
    if (found === MISSING || !valueMatches(condition, found)) return false;
  }
  return true;
}

const MISSING = Symbol('missing');

/** The value at a dotted path: object keys, and array indexes given as digits. */
export function fieldAt(body: unknown, segments: readonly string[]): unknown {
  let value = body;
  for (const segment of segments) {
    if (typeof value !== 'object' || value === null) return MISSING;
    if (Array.isArray(value)) {
      if (!/^\d+$/.test(segment)) return MISSING;
      value = value[Number(segment)];
    } else {
      if (!Object.hasOwn(value, segment)) return MISSING;
      value = (value as Record<string, unknown>)[segment];
    }
    if (value === undefined) return MISSING;
  }
  return value;
}

/** Equality is strict (the number 1000 is not the string "1000"); a prefix needs a string, a range a number. */
function valueMatches(condition: BodyCondition, value: unknown): boolean {
  switch (condition.kind) {
    case 'equals':
      return value === condition.value;
    case 'prefix':
      return typeof value === 'string' && value.startsWith(condition.prefix);
    case 'range':
      return (
        typeof value === 'number' &&
        (condition.gte === undefined || value >= condition.gte) &&
        (condition.gt === undefined || value > condition.gt) &&
        (condition.lte === undefined || value <= condition.lte) &&
        (condition.lt === undefined || value < condition.lt)
      );
  }
}

/**
 * The matcher of no rules (shared). A module constant, not a static field: tsc compiles a static
 * initializer that names its own class into a reference that is still undefined when it runs.
 */
export const EMPTY_MATCHER: RuleMatcher = RuleMatcher.compile([]);
