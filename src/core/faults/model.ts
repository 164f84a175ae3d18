import { NO_CONTROL_CHARACTERS_SOURCE } from '../text.ts';

/**
 * Fault rules (issue 15): what a rule matches, what it does, and the limits every rule keeps.
 * Two kinds share one id space, one store and one list (`/v1/sim/rules`):
 * - request rules shape an API answer (latency, error, response_lost, timeout, outcome) and match
 *   on dialect, method, route, headers and body fields;
 * - webhook rules shape outbound deliveries (duplicate, reorder, delay, drop_attempts) and match
 *   on the target URL's prefix, or every target.
 * The action's `type` says which kind a rule is. The core works on the camelCase model below;
 * the snake_case JSON of `/v1/sim/rules` and FAULTS_FILE is read by validation.ts (a FAULTS_FILE's
 * document by file.ts) and written by view.ts.
 * @see ../../../../notes/issue15-spec.md "Rules", "Webhook faults"
 */

/** The dialects a rule may name: one per folder of src/dialects. */
export const FAULT_DIALECTS = ['native', 'bookings', 'payment-service', 'payment-server-v2', 'fluxpay'] as const;
export type FaultDialect = (typeof FAULT_DIALECTS)[number];

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The statuses an `error` action may answer: what gateways answer when they are down or throttling. */
export const ERROR_STATUSES = [500, 502, 503, 504, 429] as const;
export type ErrorStatus = (typeof ERROR_STATUSES)[number];

export const DISTRIBUTIONS = ['fixed', 'uniform', 'normal', 'lognormal'] as const;
export type DistributionKind = (typeof DISTRIBUTIONS)[number];

export const REQUEST_ACTIONS = ['latency', 'error', 'response_lost', 'timeout', 'outcome'] as const;
export type RequestActionType = (typeof REQUEST_ACTIONS)[number];
export const WEBHOOK_ACTIONS = ['duplicate', 'reorder', 'delay', 'drop_attempts'] as const;
export type WebhookActionType = (typeof WEBHOOK_ACTIONS)[number];
export const ACTION_TYPES = [...REQUEST_ACTIONS, ...WEBHOOK_ACTIONS] as const;

/** The longest latency, delay, timeout or reorder window a rule may ask for (10 minutes, as `delay_ms`). */
export const MAX_DURATION_MS = 600_000;
/**
 * `Retry-After` of a 429 or 503 rule that gives none: a throttling or unavailable answer always
 * says when to come back (its body tells the client to use the header). A 500, 502 or 504 rule
 * sends one only when it gives one; their bodies never mention it.
 */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;
/** The statuses that always carry `Retry-After`. */
const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set<ErrorStatus>([429, 503]);
export const MAX_RETRY_AFTER_SECONDS = 86_400;
export const MAX_DROP_ATTEMPTS = 100;
export const MAX_COUNT = 1_000_000_000;
/** A rule's id: `rule_<ULID>`, or one the body or FAULTS_FILE gives. */
export const RULE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A rule's name: text without control characters, as the console and the logs show it on one line. */
export const RULE_NAME_PATTERN = new RegExp(NO_CONTROL_CHARACTERS_SOURCE);
export const RULE_NAME_WORDS = 'text without control characters (newline, tab, …)';
/**
 * A header condition's value: what HTTP lets a client send (RFC 9110 5.5: no control character
 * but tab; C1 code points are sent as UTF-8, obs-text bytes, which Node accepts); any other never matches.
 */
const HEADER_VALUE_SOURCE = '^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F]*$';
export const HEADER_VALUE_PATTERN = new RegExp(HEADER_VALUE_SOURCE);
export const HEADER_VALUE_WORDS = 'a value HTTP allows in a header: no control character but tab';
export const MAX_HEADER_CONDITIONS = 20;
export const MAX_BODY_CONDITIONS = 20;
export const MAX_BODY_PATH_DEPTH = 8;
/** A relative window bound is at most a year after the rule's creation. */
export const MAX_RELATIVE_WINDOW_MS = 366 * 86_400_000;

/** Latency in milliseconds, as a distribution; samples are truncated at 0 and at MAX_DURATION_MS. */
export type Distribution =
  | { kind: 'fixed'; ms: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'normal'; mean: number; stddev: number }
  /** Given by its median and 99th percentile, as latencies are usually described. */
  | { kind: 'lognormal'; p50: number; p99: number };

export type HeaderCondition = { kind: 'equals'; value: string } | { kind: 'prefix'; prefix: string };

/** Bounds of a numeric range; at least one is set. */
export interface NumericRange {
  gte?: number | undefined;
  gt?: number | undefined;
  lte?: number | undefined;
  lt?: number | undefined;
}

export type BodyScalar = string | number | boolean | null;

export type BodyCondition = { kind: 'equals'; value: BodyScalar } | { kind: 'prefix'; prefix: string } | ({ kind: 'range' } & NumericRange);

export interface RequestMatch {
  dialect: FaultDialect | null;
  method: HttpMethod | null;
  /** A route pattern (`/api/v1/orders/:orderId`), a literal path, or a glob (`/v1/sim/*`, `/api/**`). */
  route: string | null;
  /** Lower-case header name → condition. */
  headers: Readonly<Record<string, HeaderCondition>>;
  /** Dotted field path (`card.number`, `items.0.amount`) → condition. */
  body: Readonly<Record<string, BodyCondition>>;
}

export interface WebhookMatch {
  /** Deliveries whose target URL starts with this; null: every delivery. */
  urlPrefix: string | null;
}

export type RequestAction =
  | { type: 'latency'; distribution: Distribution }
  | { type: 'error'; status: ErrorStatus; retryAfterSeconds: number | null }
  /** The payment is committed, then the connection is reset before the answer. */
  | { type: 'response_lost' }
  /** The connection is held open `ms`, then reset; nothing is committed. */
  | { type: 'timeout'; ms: number }
  /** Forces the decision of matching payments: approve (`failureCode` null) or fail with the code. */
  | { type: 'outcome'; failureCode: string | null };

export type WebhookAction =
  | { type: 'duplicate' }
  | { type: 'reorder'; windowMs: number }
  | { type: 'delay'; distribution: Distribution }
  | { type: 'drop_attempts'; n: number };

/** When a rule applies, as epoch ms; null: unbounded on that side. `from` is inclusive, `until` exclusive. */
export interface RuleWindow {
  from: number | null;
  until: number | null;
}

interface RuleCommon {
  id: string;
  name: string | null;
  enabled: boolean;
  /** Chance (0–1) that a match applies the rule. */
  probability: number;
  /** The rule applies to its first `count` matches (those that passed the probability); null: no limit. */
  count: number | null;
  window: RuleWindow;
  createdAt: number;
}

export type RequestRule = RuleCommon & { target: 'request'; match: RequestMatch; action: RequestAction };
export type WebhookRule = RuleCommon & { target: 'webhook'; match: WebhookMatch; action: WebhookAction };
export type FaultRule = RequestRule | WebhookRule;

/** A rule as given (a body of `POST /v1/sim/rules` or an entry of FAULTS_FILE), before it has an id. */
export type FaultRuleInput = Omit<RequestRule, 'id' | 'createdAt'> | Omit<WebhookRule, 'id' | 'createdAt'>;

/** A stored rule with its counters. */
export interface StoredFaultRule {
  rule: FaultRule;
  /** Matches that applied the rule (passed the probability, within `count`). */
  hits: number;
  /** Every match of the rule's filters inside its window, applied or not. */
  matched: number;
  lastHitAt: number | null;
}

export function isRequestAction(type: string): type is RequestActionType {
  return (REQUEST_ACTIONS as readonly string[]).includes(type);
}

/** A deep copy (rules are plain data: objects, arrays and scalars). */
export function copyRule<T extends FaultRule>(rule: T): T {
  return structuredClone(rule);
}

export function copyStored(stored: StoredFaultRule): StoredFaultRule {
  return { rule: copyRule(stored.rule), hits: stored.hits, matched: stored.matched, lastHitAt: stored.lastHitAt };
}

/**
 * The `Retry-After` (seconds) an `error` action sends, or null for none: its own, else 1 for a
 * 429 or 503. Rules made now store that 1 (validation.ts); a 503 rule stored by a version before
 * 2026-12-04 (Redis, FAULTS_FILE kept) has null, and is sent and shown with 1 too.
 */
export function retryAfterSecondsOf(action: { status: ErrorStatus; retryAfterSeconds: number | null }): number | null {
  return action.retryAfterSeconds ?? (RETRY_AFTER_STATUSES.has(action.status) ? DEFAULT_RETRY_AFTER_SECONDS : null);
}
