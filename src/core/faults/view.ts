import { retryAfterSecondsOf, type BodyCondition, type Distribution, type FaultRule, type HeaderCondition, type RequestAction, type StoredFaultRule, type WebhookAction } from './model.ts';

/**
 * A rule as the native API (`/v1/sim/rules`) and the console show it: the snake_case JSON it was
 * created with, normalized (defaults filled in, header names in lower case, window bounds as ISO
 * times), plus its id, kind and counters. Everything but the added fields is accepted back by
 * `parseRule`, so a listed rule can be posted again as it is.
 * @see schema.ts (FaultRuleView)
 */

export interface FaultRuleJson {
  id: string;
  name: string | null;
  enabled: boolean;
  /** `request` or `webhook`: which the action acts on. */
  target: 'request' | 'webhook';
  match: Record<string, unknown>;
  probability: number;
  count: number | null;
  window: { from: string | null; until: string | null };
  action: Record<string, unknown>;
  /** Matches that applied the rule. */
  hits: number;
  /** Matches of the rule's filters inside its window, applied or not (the probability said no, `count` was used up, another rule filled the slot). */
  matched: number;
  /** Applications left of `count`; null without a count. */
  remaining: number | null;
  created_at: string;
  last_hit_at: string | null;
}

export function faultRuleView(stored: StoredFaultRule): FaultRuleJson {
  const { rule } = stored;
  return {
    id: rule.id,
    name: rule.name,
    enabled: rule.enabled,
    target: rule.target,
    match: matchJson(rule),
    probability: rule.probability,
    count: rule.count,
    window: { from: iso(rule.window.from), until: iso(rule.window.until) },
    action: actionJson(rule.action),
    hits: stored.hits,
    matched: stored.matched,
    remaining: rule.count === null ? null : Math.max(0, rule.count - stored.hits),
    created_at: new Date(rule.createdAt).toISOString(),
    last_hit_at: iso(stored.lastHitAt),
  };
}

function matchJson(rule: FaultRule): Record<string, unknown> {
  if (rule.target === 'webhook') return { url_prefix: rule.match.urlPrefix };
  const { dialect, method, route, headers, body } = rule.match;
  return {
    dialect,
    method,
    route,
    headers: Object.fromEntries(Object.entries(headers).map(([name, c]) => [name, textJson(c)])),
    body: Object.fromEntries(Object.entries(body).map(([field, c]) => [field, bodyJson(c)])),
  };
}

function textJson(condition: HeaderCondition): unknown {
  return condition.kind === 'equals' ? condition.value : { prefix: condition.prefix };
}

function bodyJson(condition: BodyCondition): unknown {
  switch (condition.kind) {
    case 'equals':
      return condition.value;
    case 'prefix':
      return { prefix: condition.prefix };
    case 'range': {
      const range: Record<string, number> = {};
      for (const key of ['gte', 'gt', 'lte', 'lt'] as const) {
        const bound = condition[key];
        if (bound !== undefined) range[key] = bound;
      }
      return range;
    }
  }
}

export function actionJson(action: RequestAction | WebhookAction): Record<string, unknown> {
  switch (action.type) {
    case 'latency':
    case 'delay':
      return { type: action.type, ...distributionJson(action.distribution) };
    case 'error':
      return { type: action.type, status: action.status, retry_after_seconds: retryAfterSecondsOf(action) };
    case 'timeout':
      return { type: action.type, ms: action.ms };
    case 'outcome':
      return action.failureCode === null ? { type: action.type, approve: true } : { type: action.type, failure_code: action.failureCode };
    case 'reorder':
      return { type: action.type, window_ms: action.windowMs };
    case 'drop_attempts':
      return { type: action.type, n: action.n };
    case 'response_lost':
    case 'duplicate':
      return { type: action.type };
  }
}

function distributionJson(distribution: Distribution): { distribution: string; params: Record<string, number> } {
  const { kind, ...params } = distribution;
  return { distribution: kind, params };
}

function iso(at: number | null): string | null {
  return at === null ? null : new Date(at).toISOString();
}
