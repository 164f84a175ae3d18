import { Checker, isoInstant, longerThan, type IssuePath, type ParseResult } from './checker.ts';
import {
  ACTION_TYPES,
  DISTRIBUTIONS,
  ERROR_STATUSES,
  FAULT_DIALECTS,
  HEADER_VALUE_PATTERN,
  HEADER_VALUE_WORDS,
  HTTP_METHODS,
  isRequestAction,
  MAX_BODY_CONDITIONS,
  MAX_BODY_PATH_DEPTH,
  MAX_COUNT,
  MAX_DROP_ATTEMPTS,
  MAX_DURATION_MS,
  MAX_HEADER_CONDITIONS,
  MAX_RELATIVE_WINDOW_MS,
  MAX_RETRY_AFTER_SECONDS,
  retryAfterSecondsOf,
  RULE_ID_PATTERN,
  RULE_NAME_PATTERN,
  RULE_NAME_WORDS,
  type BodyCondition,
  type Distribution,
  type ErrorStatus,
  type FaultDialect,
  type FaultRuleInput,
  type HeaderCondition,
  type HttpMethod,
  type RequestAction,
  type RequestMatch,
  type RuleWindow,
  type WebhookAction,
  type WebhookMatch,
} from './model.ts';
import { canMatchOutcomeRoute, OUTCOME_ROUTE_LIST, whyNoRoute, type DialectRoute } from './outcome-routes.ts';
import { routeIssue } from './route.ts';

/**
 * Reads a rule from its snake_case JSON (a body of `POST /v1/sim/rules`, an entry of FAULTS_FILE)
 * into the model, checking everything a schema cannot say (a range's bounds in order, p99 above
 * p50, a window that ends after it starts and after the rule is made, which match fields go with
 * which action, an outcome rule that can match a route taking an outcome). Every
 * problem is reported, each with its path, so an API answer lists them all and the file loader
 * names the first in one line. The JSON is described in schema.ts (TypeBox, for OpenAPI).
 * @see issue 15 "Rules"
 */

export interface ParseRuleOptions {
  /** Creation time: a relative window bound (ms) counts from it. */
  now: number;
  /**
   * A window already over at `now` is kept (FAULTS_FILE's rules, made anew in each namespace: the
   * caller leaves such a rule out, `windowEnded`) rather than refused (an API body).
   */
  keepEnded?: boolean;
  /**
   * The routes rules shape (the faults plugin collects them as the dialects register theirs): a
   * request rule that can match none of them is refused, as it would never apply (a user test:
   * before 2026-12-05 `/does/not/exist`, the fluxpay dialect on `/v1/sim/intent`, PATCH on the
   * native API and a body condition on GET were all taken). None: not checked (the examples).
   */
  routes?: readonly DialectRoute[];
}

export interface ParsedRule {
  /** The rule's own id, when the body or the file gives one (`X-Sim-Rule` then names it so); else a new one is made. */
  id: string | undefined;
  input: FaultRuleInput;
}

export { RULE_ID_PATTERN };
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
const BODY_SEGMENT = /^[A-Za-z0-9_$-]{1,64}$/;
const FAILURE_CODE = /^[A-Za-z0-9_]{1,64}$/;
const MAX_NAME = 200;
const MAX_STRING = 1024;
const MAX_URL = 2048;

const TOP_KEYS = ['id', 'name', 'enabled', 'match', 'probability', 'count', 'window', 'action'];
/**
 * What a rule as GET /v1/sim/rules lists it has besides: accepted (checked for their type) and
 * ignored, so a listed rule can be given back as it is, to POST or in FAULTS_FILE; a new rule's
 * counters start at zero. `target` must agree with the action.
 */
const READ_ONLY_KEYS = ['target', 'hits', 'matched', 'remaining', 'created_at', 'last_hit_at'];
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
const REQUEST_MATCH_KEYS = ['dialect', 'method', 'route', 'headers', 'body'];
const WEBHOOK_MATCH_KEYS = ['url_prefix'];
const RANGE_KEYS = ['gte', 'gt', 'lte', 'lt'] as const;
/**
 * A header or body field named `__proto__`: a JSON body cannot carry it (secure-json-parse refuses
 * it), but FAULTS_FILE's JSON.parse and YAML keep it as a key, and assigned to the conditions it
 * would set their prototype instead, so the condition vanished and the rule matched every request
 * (a review, 2026-12-05). No request has such a header or body field worth matching.
 */
const PROTO = '__proto__';
const PROTO_REFUSED = 'is not accepted as a name (__proto__)';

/**
 * Whether a request rule's match can apply anywhere: an outcome rule applies only on the routes
 * that take an outcome, and any rule only on a route paysim answers (`routes`, when known); each
 * problem is an issue.
 */
function appliesSomewhere(c: Checker, match: RequestMatch, outcome: boolean, routes: ParseRuleOptions['routes']): boolean {
  if (outcome && !canMatchOutcomeRoute(match)) {
    c.issue(['match'], 'outcome_route', `matches none of the routes an outcome rule applies on, so the rule would never apply: its dialect, method and route must allow one of ${OUTCOME_ROUTE_LIST}`);
    return false;
  }
  const why = routes === undefined ? undefined : whyNoRoute(match, routes);
  if (why !== undefined) c.issue(['match'], 'route', `matches no route paysim answers, so the rule would never apply: ${why}`);
  return why === undefined;
}

/** Parses one rule; `issues` paths are relative to the rule. */
export function parseRule(json: unknown, options: ParseRuleOptions): ParseResult<ParsedRule> {
  const c = new Checker();
  const rule = c.object(json, []);
  if (rule === undefined) return c.result<ParsedRule>(undefined);
  for (const key of Object.keys(rule)) {
    if (!TOP_KEYS.includes(key) && !READ_ONLY_KEYS.includes(key)) c.issue([key], 'additionalProperties', `is not a known field (known: ${TOP_KEYS.join(', ')}; and, read-only as GET lists a rule, ${READ_ONLY_KEYS.join(', ')})`);
  }
  checkReadOnly(c, rule);
  let id: string | undefined;
  if (rule.id !== undefined) id = c.string(rule.id, ['id'], { pattern: RULE_ID_PATTERN, words: '1–64 letters, digits, ".", "_" or "-", starting with a letter or digit' });
  const name = rule.name === undefined || rule.name === null ? null : (c.string(rule.name, ['name'], { max: MAX_NAME, pattern: RULE_NAME_PATTERN, words: RULE_NAME_WORDS }) ?? null);
  const enabled = rule.enabled === undefined ? true : c.boolean(rule.enabled, ['enabled']);
  const probability = rule.probability === undefined ? 1 : c.number(rule.probability, ['probability'], { min: 0, max: 1 });
  const count = rule.count === undefined || rule.count === null ? null : c.integer(rule.count, ['count'], 1, MAX_COUNT);
  const window = rule.window === undefined || rule.window === null ? { from: null, until: null } : parseWindow(c, rule.window, options.now, options.keepEnded === true);
  const action = c.required(rule, 'action', []) ? parseAction(c, rule.action) : undefined;
  const common = { name, enabled: enabled ?? true, probability: probability ?? 1, count: count ?? null, window: window ?? { from: null, until: null } };
  if (action === undefined) {
    // Check the match anyway, so every problem is reported at once: as the action's type says, if it says.
    const type = typeof rule.action === 'object' && rule.action !== null ? (rule.action as { type?: unknown }).type : undefined;
    const target = typeof type === 'string' ? targetOf(type) : undefined;
    // A match that parses is checked against the routes too (before 2026-12-07 a route typo showed
    // only once the action was mended: a user test).
    if (target === 'request') {
      const match = parseRequestMatch(c, rule.match ?? {});
      if (match !== undefined) appliesSomewhere(c, match, type === 'outcome', options.routes);
    } else if (target === 'webhook') parseWebhookMatch(c, rule.match ?? {});
    else if (rule.match !== undefined) c.object(rule.match, ['match'], [...REQUEST_MATCH_KEYS, ...WEBHOOK_MATCH_KEYS]);
    return c.result<ParsedRule>(undefined);
  }
  if (rule.target !== undefined && rule.target !== action.target && (rule.target === 'request' || rule.target === 'webhook')) {
    c.issue(['target'], 'const', `must be ${action.target} for ${/^[aeiou]/.test(action.action.type) ? 'an' : 'a'} ${action.action.type} action (it says what the action acts on, and may be left out)`);
  }
  let input: FaultRuleInput | undefined;
  if (action.target === 'request') {
    const match = parseRequestMatch(c, rule.match ?? {});
    if (match !== undefined && appliesSomewhere(c, match, action.action.type === 'outcome', options.routes)) input = { ...common, target: 'request', match, action: action.action };
  } else {
    const match = parseWebhookMatch(c, rule.match ?? {});
    if (match !== undefined) input = { ...common, target: 'webhook', match, action: action.action };
  }
  return c.result(input === undefined ? undefined : { id, input });
}

/** The listed rule's read-only fields: of their type, else refused; their values are not used. */
function checkReadOnly(c: Checker, rule: Record<string, unknown>): void {
  if (rule.target !== undefined) c.oneOf(rule.target, ['target'], ['request', 'webhook']);
  for (const key of ['hits', 'matched'] as const) if (rule[key] !== undefined) c.integer(rule[key], [key], 0, MAX_COUNTER);
  if (rule.remaining !== undefined && rule.remaining !== null) c.integer(rule.remaining, ['remaining'], 0, MAX_COUNTER);
  for (const key of ['created_at', 'last_hit_at'] as const) {
    const value = rule[key];
    if (value === undefined || (value === null && key === 'last_hit_at')) continue;
    if (typeof value !== 'string' || isoInstant(value) === undefined) c.issue([key], 'format', `must be an ISO 8601 date-time${key === 'last_hit_at' ? ' or null' : ''}`);
  }
}

/** Whether the rule's window is over at `now` (its `until` passed): it would never apply. */
export function windowEnded(rule: ParsedRule, now: number): boolean {
  return windowEndedAt(rule.input, now) !== undefined;
}

/** When a rule's window ended, if it has at `now` (its `until` passed: it would never apply again). */
export function windowEndedAt(rule: { window: { until: number | null } }, now: number): number | undefined {
  const { until } = rule.window;
  return until !== null && until <= now ? until : undefined;
}

// ── parts ───────────────────────────────────────────────────────────────────────────────────────

function parseWindow(c: Checker, json: unknown, now: number, keepEnded: boolean): RuleWindow | undefined {
  const window = c.object(json, ['window'], ['from', 'until']);
  if (window === undefined) return undefined;
  const from = window.from === undefined || window.from === null ? null : parseInstant(c, window.from, ['window', 'from'], now);
  const until = window.until === undefined || window.until === null ? null : parseInstant(c, window.until, ['window', 'until'], now);
  if (from === undefined || until === undefined) return undefined;
  if (from !== null && until !== null && until <= from) {
    c.issue(['window', 'until'], 'window', 'must be after window.from');
    return undefined;
  }
  // A window over before the rule exists never opens (an ISO time in the past, or 0 ms after creation).
  if (until !== null && until <= now && !keepEnded) {
    c.issue(['window', 'until'], 'window', `must be later than the rule's creation (${new Date(now).toISOString()}): a window that has already ended never applies`);
    return undefined;
  }
  return { from, until };
}

/** An ISO 8601 date-time, or milliseconds after `now` (the rule's creation). */
function parseInstant(c: Checker, json: unknown, path: IssuePath, now: number): number | undefined {
  if (typeof json === 'number') {
    const ms = c.integer(json, path, 0, MAX_RELATIVE_WINDOW_MS);
    return ms === undefined ? undefined : now + ms;
  }
  if (typeof json === 'string') {
    const at = isoInstant(json);
    if (at !== undefined) return at;
  }
  c.issue(path, 'format', 'must be an ISO 8601 date-time such as 2026-11-20T10:00:00.000Z, or milliseconds after the rule is created');
  return undefined;
}

type ParsedAction = { target: 'request'; action: RequestAction } | { target: 'webhook'; action: WebhookAction };

function parseAction(c: Checker, json: unknown): ParsedAction | undefined {
  const path = ['action'];
  const raw = c.object(json, path);
  if (raw === undefined) return undefined;
  if (!c.required(raw, 'type', path)) return undefined;
  const type = c.oneOf(raw.type, [...path, 'type'], ACTION_TYPES);
  if (type === undefined) return undefined;
  const at = (key: string): IssuePath => [...path, key];
  switch (type) {
    case 'latency':
    case 'delay': {
      c.onlyKeys(raw, path, ['type', 'distribution', 'params']);
      const distribution = parseDistribution(c, raw, path);
      if (distribution === undefined) return undefined;
      return type === 'latency' ? { target: 'request', action: { type, distribution } } : { target: 'webhook', action: { type, distribution } };
    }
    case 'error': {
      c.onlyKeys(raw, path, ['type', 'status', 'retry_after_seconds']);
      const status = c.required(raw, 'status', path) ? c.oneOf(raw.status, at('status'), ERROR_STATUSES) : undefined;
      const given = raw.retry_after_seconds === undefined || raw.retry_after_seconds === null ? null : c.integer(raw.retry_after_seconds, at('retry_after_seconds'), 0, MAX_RETRY_AFTER_SECONDS);
      if (status === undefined || given === undefined) return undefined;
      return { target: 'request', action: { type, status: status as ErrorStatus, retryAfterSeconds: retryAfterSecondsOf({ status: status as ErrorStatus, retryAfterSeconds: given }) } };
    }
    case 'response_lost':
      c.onlyKeys(raw, path, ['type']);
      return { target: 'request', action: { type } };
    case 'timeout': {
      c.onlyKeys(raw, path, ['type', 'ms']);
      const ms = c.required(raw, 'ms', path) ? c.integer(raw.ms, at('ms'), 1, MAX_DURATION_MS) : undefined;
      return ms === undefined ? undefined : { target: 'request', action: { type, ms } };
    }
    case 'outcome': {
      c.onlyKeys(raw, path, ['type', 'approve', 'failure_code']);
      if ((raw.approve === undefined) === (raw.failure_code === undefined)) {
        c.issue(path, 'oneOf', 'must have either approve: true or a failure_code');
        return undefined;
      }
      if (raw.approve !== undefined) {
        if (raw.approve !== true) {
          c.issue(at('approve'), 'const', 'must be true (to force a failure, give failure_code instead)');
          return undefined;
        }
        return { target: 'request', action: { type, failureCode: null } };
      }
      const failureCode = c.string(raw.failure_code, at('failure_code'), { pattern: FAILURE_CODE, words: '1–64 letters, digits or "_" (e.g. insufficient_funds)' });
      return failureCode === undefined ? undefined : { target: 'request', action: { type, failureCode } };
    }
    case 'duplicate':
      c.onlyKeys(raw, path, ['type']);
      return { target: 'webhook', action: { type } };
    case 'reorder': {
      c.onlyKeys(raw, path, ['type', 'window_ms']);
      const windowMs = c.required(raw, 'window_ms', path) ? c.integer(raw.window_ms, at('window_ms'), 1, MAX_DURATION_MS) : undefined;
      return windowMs === undefined ? undefined : { target: 'webhook', action: { type, windowMs } };
    }
    case 'drop_attempts': {
      c.onlyKeys(raw, path, ['type', 'n']);
      const n = c.required(raw, 'n', path) ? c.integer(raw.n, at('n'), 1, MAX_DROP_ATTEMPTS) : undefined;
      return n === undefined ? undefined : { target: 'webhook', action: { type, n } };
    }
  }
}

const DISTRIBUTION_PARAMS: Record<Distribution['kind'], readonly string[]> = {
  fixed: ['ms'],
  uniform: ['min', 'max'],
  normal: ['mean', 'stddev'],
  lognormal: ['p50', 'p99'],
};

/** `distribution` and its `params`, all in milliseconds. */
export function parseDistribution(c: Checker, raw: Record<string, unknown>, path: IssuePath): Distribution | undefined {
  if (!c.required(raw, 'distribution', path)) return undefined;
  const kind = c.oneOf(raw.distribution, [...path, 'distribution'], DISTRIBUTIONS);
  if (kind === undefined) return undefined;
  const names = DISTRIBUTION_PARAMS[kind];
  if (!c.required(raw, 'params', path)) return undefined;
  const paramsPath = [...path, 'params'];
  const params = c.object(raw.params, paramsPath, names);
  if (params === undefined) return undefined;
  const values: Record<string, number> = {};
  let complete = true;
  for (const name of names) {
    if (!c.required(params, name, paramsPath)) {
      complete = false;
      continue;
    }
    const value = c.number(params[name], [...paramsPath, name], { min: 0, max: MAX_DURATION_MS });
    if (value === undefined) complete = false;
    else values[name] = value;
  }
  if (!complete) return undefined;
  const v = (name: string) => values[name] as number;
  switch (kind) {
    case 'fixed':
      return { kind, ms: v('ms') };
    case 'uniform':
      if (v('max') < v('min')) return c.issue([...paramsPath, 'max'], 'minimum', 'must be at least params.min');
      return { kind, min: v('min'), max: v('max') };
    case 'normal':
      return { kind, mean: v('mean'), stddev: v('stddev') };
    case 'lognormal':
      if (v('p50') <= 0) return c.issue([...paramsPath, 'p50'], 'exclusiveMinimum', 'must be greater than 0');
      if (v('p99') < v('p50')) return c.issue([...paramsPath, 'p99'], 'minimum', 'must be at least params.p50');
      return { kind, p50: v('p50'), p99: v('p99') };
  }
}

function parseRequestMatch(c: Checker, json: unknown): RequestMatch | undefined {
  const path = ['match'];
  const raw = c.object(json, path);
  if (raw === undefined) return undefined;
  for (const key of Object.keys(raw)) {
    if (REQUEST_MATCH_KEYS.includes(key)) continue;
    if (WEBHOOK_MATCH_KEYS.includes(key)) c.issue([...path, key], 'additionalProperties', `is for webhook actions (${WEBHOOK_ACTION_LIST}); a request action matches on ${REQUEST_MATCH_KEYS.join(', ')}`);
    else c.issue([...path, key], 'additionalProperties', `is not a known field (a request action matches on ${REQUEST_MATCH_KEYS.join(', ')})`);
  }
  const dialect = raw.dialect === undefined || raw.dialect === null ? null : c.oneOf(raw.dialect, [...path, 'dialect'], FAULT_DIALECTS);
  const method = raw.method === undefined || raw.method === null ? null : c.oneOf(raw.method, [...path, 'method'], HTTP_METHODS);
  let route: string | null | undefined = null;
  if (raw.route !== undefined && raw.route !== null) {
    route = c.string(raw.route, [...path, 'route'], { max: 512 });
    const problem = route === undefined ? undefined : routeIssue(route);
    if (problem !== undefined) route = c.issue([...path, 'route'], 'pattern', problem);
  }
  const headers = raw.headers === undefined ? {} : parseHeaders(c, raw.headers, [...path, 'headers']);
  const body = raw.body === undefined ? {} : parseBody(c, raw.body, [...path, 'body']);
  if (dialect === undefined || method === undefined || route === undefined || headers === undefined || body === undefined) return undefined;
  return { dialect: dialect as FaultDialect | null, method: method as HttpMethod | null, route, headers, body };
}

const WEBHOOK_ACTION_LIST = 'duplicate, reorder, delay, drop_attempts';

function parseWebhookMatch(c: Checker, json: unknown): WebhookMatch | undefined {
  const path = ['match'];
  const raw = c.object(json, path);
  if (raw === undefined) return undefined;
  for (const key of Object.keys(raw)) {
    if (WEBHOOK_MATCH_KEYS.includes(key)) continue;
    if (REQUEST_MATCH_KEYS.includes(key)) c.issue([...path, key], 'additionalProperties', `is for request actions; a webhook action (${WEBHOOK_ACTION_LIST}) matches on url_prefix only`);
    else c.issue([...path, key], 'additionalProperties', 'is not a known field (a webhook action matches on url_prefix)');
  }
  if (raw.url_prefix === undefined || raw.url_prefix === null) return { urlPrefix: null };
  const urlPrefix = c.string(raw.url_prefix, [...path, 'url_prefix'], { max: MAX_URL, pattern: /^https?:\/\/[^\s]+$/i, words: 'the start of an absolute http(s) URL, e.g. https://hooks.example/' });
  return urlPrefix === undefined ? undefined : { urlPrefix };
}

function parseHeaders(c: Checker, json: unknown, path: IssuePath): Record<string, HeaderCondition> | undefined {
  const raw = c.object(json, path);
  if (raw === undefined) return undefined;
  const entries = Object.entries(raw);
  if (entries.length > MAX_HEADER_CONDITIONS) return c.issue(path, 'maxProperties', `must have at most ${MAX_HEADER_CONDITIONS} headers`);
  const headers: Record<string, HeaderCondition> = {};
  let ok = true;
  for (const [name, value] of entries) {
    const at = [...path, name];
    if (!HEADER_NAME.test(name)) {
      ok = false;
      c.issue(at, 'propertyNames', 'is not a header name');
      continue;
    }
    if (name === PROTO) {
      ok = false;
      c.issue(at, 'propertyNames', PROTO_REFUSED);
      continue;
    }
    const lower = name.toLowerCase();
    // Own keys only: `constructor` is a header name like any other (before 2026-12-05 it was refused as given twice).
    if (Object.hasOwn(headers, lower)) {
      ok = false;
      c.issue(at, 'uniqueKeys', 'names a header already given (header names are case-insensitive)');
      continue;
    }
    const condition = parseTextCondition(c, value, at);
    if (condition === undefined) ok = false;
    else headers[lower] = condition;
  }
  return ok ? headers : undefined;
}

function parseTextCondition(c: Checker, json: unknown, path: IssuePath): HeaderCondition | undefined {
  if (typeof json === 'string') {
    if (longerThan(json, MAX_STRING)) return c.issue(path, 'maxLength', `must be at most ${MAX_STRING} characters`);
    return HEADER_VALUE_PATTERN.test(json) ? { kind: 'equals', value: json } : c.issue(path, 'pattern', `must be ${HEADER_VALUE_WORDS}`);
  }
  const raw = c.objectOr(json, path, 'must be a string (equals) or {"prefix": "…"}');
  if (raw === undefined) return undefined;
  c.onlyKeys(raw, path, ['prefix']);
  if (!c.required(raw, 'prefix', path)) return undefined;
  const prefix = c.string(raw.prefix, [...path, 'prefix'], { max: MAX_STRING, pattern: HEADER_VALUE_PATTERN, words: HEADER_VALUE_WORDS });
  return prefix === undefined ? undefined : { kind: 'prefix', prefix };
}

function parseBody(c: Checker, json: unknown, path: IssuePath): Record<string, BodyCondition> | undefined {
  const raw = c.object(json, path);
  if (raw === undefined) return undefined;
  const entries = Object.entries(raw);
  if (entries.length > MAX_BODY_CONDITIONS) return c.issue(path, 'maxProperties', `must have at most ${MAX_BODY_CONDITIONS} fields`);
  const body: Record<string, BodyCondition> = {};
  let ok = true;
  for (const [field, value] of entries) {
    const at = [...path, field];
    const segments = field.split('.');
    if (segments.length > MAX_BODY_PATH_DEPTH || !segments.every((s) => BODY_SEGMENT.test(s))) {
      ok = false;
      c.issue(at, 'propertyNames', `must be a field path such as amount or card.number (at most ${MAX_BODY_PATH_DEPTH} names of letters, digits, "_", "-" or "$", joined by ".")`);
      continue;
    }
    if (segments.includes(PROTO)) {
      ok = false;
      c.issue(at, 'propertyNames', PROTO_REFUSED);
      continue;
    }
    const condition = parseBodyCondition(c, value, at);
    if (condition === undefined) ok = false;
    else body[field] = condition;
  }
  return ok ? body : undefined;
}

function parseBodyCondition(c: Checker, json: unknown, path: IssuePath): BodyCondition | undefined {
  if (json === null || typeof json === 'boolean') return { kind: 'equals', value: json };
  if (typeof json === 'string') return !longerThan(json, MAX_STRING) ? { kind: 'equals', value: json } : c.issue(path, 'maxLength', `must be at most ${MAX_STRING} characters`);
  if (typeof json === 'number') return Number.isFinite(json) ? { kind: 'equals', value: json } : c.issue(path, 'type', 'must be a finite number');
  const words = 'must be a value to equal, {"prefix": "…"}, or a numeric range such as {"gte": 1000000}';
  const raw = c.objectOr(json, path, words);
  if (raw === undefined) return undefined;
  if ('prefix' in raw) {
    c.onlyKeys(raw, path, ['prefix']);
    const prefix = c.string(raw.prefix, [...path, 'prefix'], { max: MAX_STRING });
    return prefix === undefined ? undefined : { kind: 'prefix', prefix };
  }
  c.onlyKeys(raw, path, RANGE_KEYS);
  const range: { kind: 'range'; gte?: number; gt?: number; lte?: number; lt?: number } = { kind: 'range' };
  let ok = true;
  let given = 0;
  for (const key of RANGE_KEYS) {
    if (raw[key] === undefined) continue;
    given++;
    const value = c.number(raw[key], [...path, key], {});
    if (value === undefined) ok = false;
    else range[key] = value;
  }
  if (given === 0) return c.issue(path, 'minProperties', words);
  if (!ok) return undefined;
  if (range.gte !== undefined && range.gt !== undefined) return c.issue([...path, 'gt'], 'not', 'cannot be given with gte');
  if (range.lte !== undefined && range.lt !== undefined) return c.issue([...path, 'lt'], 'not', 'cannot be given with lte');
  const low = range.gte ?? range.gt;
  const high = range.lte ?? range.lt;
  if (low !== undefined && high !== undefined && (high < low || (high === low && (range.gt !== undefined || range.lt !== undefined)))) {
    return c.issue(path, 'range', 'must be a range that some number is in (the lower bound is above the upper one)');
  }
  return range;
}

/** Whether an action type is known and which kind of rule it makes; for callers that look before parsing. */
export function targetOf(type: string): 'request' | 'webhook' | undefined {
  if (isRequestAction(type)) return 'request';
  return (ACTION_TYPES as readonly string[]).includes(type) ? 'webhook' : undefined;
}
