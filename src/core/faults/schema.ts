import { Type, type TSchema } from 'typebox';
import { ACTION_TYPES, DISTRIBUTIONS, ERROR_STATUSES, FAULT_DIALECTS, HTTP_METHODS, MAX_BODY_CONDITIONS, MAX_COUNT, MAX_DROP_ATTEMPTS, MAX_DURATION_MS, MAX_HEADER_CONDITIONS, MAX_RETRY_AFTER_SECONDS, RULE_ID_PATTERN, RULE_NAME_PATTERN, RULE_NAME_WORDS, HEADER_VALUE_PATTERN, HEADER_VALUE_WORDS } from './model.ts';

/**
 * The JSON of a fault rule (`POST /v1/sim/rules`, FAULTS_FILE's `rules`, and the rule views), as
 * TypeBox schemas for the OpenAPI document. snake_case, as the rest of `/v1/sim`. The schemas say
 * the shape; `parseRule` (validation.ts) is the authority and also checks what a schema cannot
 * (bounds in order, which match fields go with which action, an ISO window). Objects reject
 * unknown fields.
 *
 * The action is a union over `type`; Ajv reports a bad union member as one error per branch, so
 * the route should let `parseRule` report the body's problems (see the report of issue 15's core).
 */

const Strict = { additionalProperties: false } as const;
const Ms = (description: string) => Type.Number({ minimum: 0, maximum: MAX_DURATION_MS, description });

export const DistributionParams = Type.Object(
  {
    ms: Type.Optional(Ms('fixed: the latency')),
    min: Type.Optional(Ms('uniform: the least latency')),
    max: Type.Optional(Ms('uniform: the greatest latency (≥ min)')),
    mean: Type.Optional(Ms('normal: the mean')),
    stddev: Type.Optional(Ms('normal: the standard deviation')),
    p50: Type.Optional(Ms('lognormal: the median (> 0)')),
    p99: Type.Optional(Ms('lognormal: the 99th percentile (≥ p50)')),
  },
  { ...Strict, description: 'Milliseconds. fixed: {ms}; uniform: {min, max}; normal: {mean, stddev}; lognormal: {p50, p99}. Samples are truncated at 0 and 600,000.' },
);

const WithDistribution = {
  distribution: Type.Enum(DISTRIBUTIONS, { description: 'fixed | uniform | normal | lognormal' }),
  params: DistributionParams,
};

const Action = (type: string, fields: Record<string, TSchema>, description: string) =>
  Type.Object({ type: Type.Literal(type), ...fields }, { ...Strict, title: `FaultAction_${type}`, description });

export const FaultAction = Type.Union(
  [
    Action('latency', WithDistribution, 'Request: the answer waits a sampled latency.'),
    Action(
      'error',
      {
        status: Type.Union(ERROR_STATUSES.map((s) => Type.Literal(s)), { description: '500, 502, 503, 504 or 429' }),
        retry_after_seconds: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: MAX_RETRY_AFTER_SECONDS }), Type.Null()], { description: 'Sent as Retry-After; a 429 or 503 without one says 1 (a 500, 502 or 504 without one sends no Retry-After)' })),
      },
      "Request: answered with this status and an error body in the dialect's shape; nothing is committed.",
    ),
    Action('response_lost', {}, 'Request: the payment is committed, then the connection is reset before the answer.'),
    Action('timeout', { ms: Type.Integer({ minimum: 1, maximum: MAX_DURATION_MS, description: 'How long the connection is held open before it is reset' }) }, 'Request: held open, then reset; nothing is committed.'),
    Action(
      'outcome',
      {
        approve: Type.Optional(Type.Literal(true, { description: 'Force approval' })),
        failure_code: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_]{1,64}$', 'x-pattern-description': '1–64 letters, digits or "_"', description: 'Force a failure with this code' })),
      },
      'Request: forces the decision of the payment the request creates or decides. Only POST /v1/sim/intent, POST /api/v2/payments, POST /payments/execute and FluxPay’s POST /api/v1/payments/confirm, POST /api/v1/subscriptions and POST /api/v1/subscriptions/{id}/change-plan take an outcome; on any other request the rule does not match (not counted in matched or hits, its count kept), and a rule whose match.dialect, match.method and match.route allow none of these routes is refused (400, /match, rule outcome_route). Exactly one of approve and failure_code.',
    ),
    Action('duplicate', {}, 'Webhook: the same event, with the same id, is sent twice.'),
    Action('reorder', { window_ms: Type.Integer({ minimum: 1, maximum: MAX_DURATION_MS, description: "Deliveries to one target are held this long from the first, then sent shuffled" }) }, 'Webhook: deliveries arrive out of order.'),
    Action('delay', WithDistribution, 'Webhook: the first attempt waits a sampled delay.'),
    Action('drop_attempts', { n: Type.Integer({ minimum: 1, maximum: MAX_DROP_ATTEMPTS, description: 'The first n attempts of each delivery are lost, whichever replica makes them (a replay\'s attempts go out)' }) }, 'Webhook: attempts fail as if the network lost them, so retries happen.'),
  ],
  { title: 'FaultAction', description: `type: ${ACTION_TYPES.join(' | ')}` },
);

const HeaderValue = (options: { minLength?: number; description?: string }) =>
  Type.String({ ...options, maxLength: 1024, pattern: HEADER_VALUE_PATTERN.source, 'x-pattern-description': HEADER_VALUE_WORDS });
const TextCondition = Type.Union([HeaderValue({ description: 'Equal to' }), Type.Object({ prefix: HeaderValue({ minLength: 1 }) }, Strict)]);

const BodyCondition = Type.Union([
  Type.String({ maxLength: 1024, description: 'Equal to (strictly: 1000 is not "1000")' }),
  Type.Number(),
  Type.Boolean(),
  Type.Null(),
  Type.Object({ prefix: Type.String({ minLength: 1, maxLength: 1024 }) }, Strict),
  Type.Object({ gte: Type.Optional(Type.Number()), gt: Type.Optional(Type.Number()), lte: Type.Optional(Type.Number()), lt: Type.Optional(Type.Number()) }, { ...Strict, minProperties: 1, description: 'A numeric range' }),
]);

export const FaultMatch = Type.Object(
  {
    dialect: Type.Optional(Type.Union([Type.Enum(FAULT_DIALECTS), Type.Null()], { description: 'Request rules: only this dialect' })),
    method: Type.Optional(Type.Union([Type.Enum(HTTP_METHODS), Type.Null()], { description: 'Request rules: only this method' })),
    route: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 512 }), Type.Null()], { description: 'Request rules: a path (/v1/sim/intents), a route pattern (/api/v1/orders/:orderId) or a glob (/v1/sim/*, /api/**)' })),
    headers: Type.Optional(Type.Record(Type.String(), TextCondition, { maxProperties: MAX_HEADER_CONDITIONS, description: 'Request rules: header name (case-insensitive) → value, or {"prefix": …}' })),
    body: Type.Optional(Type.Record(Type.String(), BodyCondition, { maxProperties: MAX_BODY_CONDITIONS, description: 'Request rules: field path (amount, card.number, items.0.sku) → value, {"prefix": …} or a range {"gte", "gt", "lte", "lt"}' })),
    url_prefix: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 2048 }), Type.Null()], { description: 'Webhook rules: deliveries to URLs starting with this (scheme and host compared without case); none: every delivery' })),
  },
  { ...Strict, title: 'FaultMatch', description: 'Every condition given must hold; none given: every request (or delivery).' },
);

const Instant = Type.Union([Type.String({ format: 'date-time' }), Type.Integer({ minimum: 0 }), Type.Null()], { description: 'An ISO 8601 date-time, or milliseconds after the rule is created' });

/** A listed rule's fields that a create takes and does not use (checked for their type): see validation.ts READ_ONLY_KEYS. */
const ignored = (description: string) => `Read-only, as GET lists the rule: ${description}; a create takes it and does not use it, so a listed rule can be sent back as it is (a new rule's counters start at 0)`;

export const CreateFaultRuleBody = Type.Object(
  {
    id: Type.Optional(Type.String({ pattern: RULE_ID_PATTERN.source, description: "The rule's own id, which `X-Sim-Rule` and the console then show (1–64 letters, digits, `.`, `_` or `-`, starting with a letter or digit); an id in use is refused (400, `/id`, rule `unique`). None: `rule_<ULID>`" })),
    name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 200, pattern: RULE_NAME_PATTERN.source, 'x-pattern-description': RULE_NAME_WORDS }), Type.Null()])),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    match: Type.Optional(FaultMatch),
    probability: Type.Optional(Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'Chance that a match applies the rule' })),
    count: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: MAX_COUNT }), Type.Null()], { description: 'Apply at most N times (to the matches that passed the probability); null: no limit. What is left: the rule’s remaining' })),
    window: Type.Optional(Type.Union([Type.Object({ from: Type.Optional(Instant), until: Type.Optional(Instant) }, Strict), Type.Null()], { description: 'When the rule applies: from inclusive, until exclusive; until must be later than the rule’s creation (a window already over is refused: 400, /window/until)' })),
    action: FaultAction,
    target: Type.Optional(Type.Union([Type.Literal('request'), Type.Literal('webhook')], { description: 'Read-only, as GET lists the rule: what the action acts on; when given it must agree with the action (else 400, `/target`)' })),
    hits: Type.Optional(Type.Integer({ minimum: 0, description: ignored('matches that applied the rule') })),
    matched: Type.Optional(Type.Integer({ minimum: 0, description: ignored('matches of its filters') })),
    remaining: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: ignored('applications left of count') })),
    created_at: Type.Optional(Type.String({ format: 'date-time', description: ignored('when it was made') })),
    last_hit_at: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: ignored('its last application') })),
  },
  {
    ...Strict,
    title: 'CreateFaultRuleRequest',
    examples: [
      { name: 'slow big payments', match: { dialect: 'native', method: 'POST', route: '/v1/sim/intents', body: { amount: { gte: 1_000_000 } } }, probability: 0.5, action: { type: 'latency', distribution: 'lognormal', params: { p50: 200, p99: 2000 } } },
      { match: { route: '/api/v1/orders/:orderId', headers: { 'x-tenant': 'acme' } }, count: 3, action: { type: 'error', status: 503, retry_after_seconds: 2 } },
      { match: { url_prefix: 'https://hooks.example/' }, action: { type: 'duplicate' } },
    ],
  },
);

export const FaultRuleView = Type.Object(
  {
    id: Type.String(),
    name: Type.Union([Type.String(), Type.Null()]),
    enabled: Type.Boolean(),
    target: Type.Union([Type.Literal('request'), Type.Literal('webhook')]),
    match: FaultMatch,
    probability: Type.Number(),
    count: Type.Union([Type.Integer(), Type.Null()]),
    window: Type.Object({ from: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]), until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]) }),
    action: FaultAction,
    hits: Type.Integer({ description: 'Matches that applied the rule' }),
    matched: Type.Integer({ description: 'Matches of its filters inside its window, applied or not (an outcome rule matches only requests whose route takes an outcome)' }),
    remaining: Type.Union([Type.Integer(), Type.Null()], { description: 'Applications left of count' }),
    created_at: Type.String({ format: 'date-time' }),
    last_hit_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { title: 'FaultRule' },
);

export const FaultRuleList = Type.Object({ data: Type.Array(FaultRuleView) }, { title: 'FaultRuleList' });
