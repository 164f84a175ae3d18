import fc from 'fast-check';
import type { ApiModel, JsonSchema, OperationSpec, ParamSpec } from './openapi.ts';
import { Fill, isPlainObject, LocalUrl, PoolRef, RawJson, sanitizeUrls, type BodyDraft, type Draft, type HeaderDraft, type PathPiece, type QueryPiece, type Step, type Value } from './values.ts';

/**
 * Requests for every operation of the OpenAPI document: valid-ish ones drawn from the schemas
 * (ids the app handed out are referred to by `PoolRef`, webhook URLs are always local), then
 * mutated: wrong types, missing and extra fields, boundary numbers, huge strings around the body
 * limit, nasty unicode, deep nesting, malformed JSON, wrong content types, odd path and query
 * values, bad Idempotency-Key, x-user-id and Authorization headers, other methods, unknown paths.
 */

export interface GeneratorOptions {
  model: ApiModel;
  /** BODY_LIMIT_BYTES of the app under test. */
  bodyLimit: number;
  /** Callers for `x-user-id`-style headers, and the users the valid tokens are for. */
  users: readonly string[];
  /** Bearer tokens: `valid` ones (one per user) and `invalid` ones (expired, wrong secret, …). */
  tokens: { valid: readonly string[]; invalid: readonly string[] };
  /** Steps of one sequence (one fresh app). */
  sequenceLength: number;
}

// ── the dictionary: names that say which pool an id comes from, and values that mean something ──

const ULID_PATTERN = /^\^([a-z]+)_\[0-9A-HJKMNP-TV-Z\]\{26\}\$$/;
/** Field and parameter names that name an id of a kind. */
const KIND_BY_NAME: Record<string, string> = {
  payment_intent_id: 'pay',
  paymentIntentId: 'pay',
  // The /api/v2 API's `pay_<tx_id>`.
  payment_id: 'v2pay',
  bookingId: 'bk',
  booking_id: 'bk',
  reservationId: 'bk',
  event_id: 'evt',
  eventId: 'evt',
  performanceId: 'perf',
  performance_id: 'perf',
  delivery_id: 'whd',
  deliveryId: 'whd',
  url: 'url',
  webhook_url: 'url',
  webhookUrl: 'url',
  callback_url: 'url',
  callbackUrl: 'url',
  'x-user-id': 'user',
  userId: 'user',
  user_id: 'user',
  // FluxPay's plans (seeded from the billing policy), waiting rooms (named by their creator) and tickets.
  planId: 'plan',
  roomId: 'room',
  ticket: 'wrt',
};
/** For a path parameter called `id`: the collection segment before it says the kind. */
const KIND_BY_SEGMENT: Record<string, string> = { intents: 'pay', deliveries: 'whd', performances: 'perf', bookings: 'bk', events: 'evt', payments: 'bk' };
export const ID_KINDS = ['pay', 'bk', 'whd', 'evt', 'perf'] as const;

/** Values that mean something to the simulator for fields of these names (test cards, CVV rules, tokens). */
const DICTIONARY: Record<string, readonly Value[]> = {
  cvv: ['123', '120', '129', '4561', '999', '1234', '001', '12', '12a'],
  number: ['4242424242424242', '4000000000000002', '4000000000009995', '4000000000000069', '4111111111111111', '4242424242424241', '1234'],
  paymentMethodToken: ['tok_visa', 'tok_mastercard', 'tok_chargeDeclined', 'tok_chargeDeclinedInsufficientFunds', '4242424242424242', '4000 0000 0000 0002', '4000-0000-0000-9995', 'tok_unknown'],
  currency: ['KRW', 'USD', 'JPY', 'EUR'],
  reservation_id: ['r1', 'r2', 'res-001'],
  paymentMethod: ['CREDIT_CARD', 'kakao_pay', 'naver_pay', 'bank_transfer', 'credit_card'],
  type: ['payment.approved', 'payment.failed'],
  // A few tx_ids used again and again: repeats of one request (replays) and of another (409).
  tx_id: ['tx_1001', 'tx_1002', 'tx_fuzz'],
  // FluxPay: priced and unpriced services, usages and client event ids used again (PAY_003, duplicates).
  serviceId: ['ai-writer', 'image-studio', 'unpriced'],
  usageId: ['use-1', 'use-2', 'use-fuzz'],
  orderName: ['1,000 credits', 'report', '주문'],
};

/** Paths the local receiver answers by: 200, 410 Gone (disables the URL), 500 (retried), 302. */
const RECEIVER_PATHS = ['/ok', '/ok/a?x=1', '/gone', '/fail', '/redirect', '/hooks/%C3%A9'];

export interface Hint {
  name?: string | undefined;
  /** The literal path segment before a path parameter. */
  segment?: string | undefined;
  /** For header parameters: their values are strings on the wire. */
  wire?: boolean;
}

export function idKindOf(schema: JsonSchema, hint: Hint): string | undefined {
  const pattern = typeof schema.pattern === 'string' ? ULID_PATTERN.exec(schema.pattern) : null;
  if (pattern?.[1] !== undefined) return pattern[1];
  if (schema.format === 'http-url' || schema.format === 'uri' || schema.format === 'url') return 'url';
  if (hint.name !== undefined) {
    const byName = KIND_BY_NAME[hint.name];
    if (byName !== undefined) return byName;
    if (hint.name === 'id' && hint.segment !== undefined) return KIND_BY_SEGMENT[hint.segment];
  }
  return undefined;
}

const poolRef = (kind: string): fc.Arbitrary<Value> => fc.nat().map((pick) => new PoolRef(kind, pick));

export const localUrlArb: fc.Arbitrary<LocalUrl> = fc
  .tuple(fc.constantFrom<'receiver' | 'closed'>('receiver', 'receiver', 'receiver', 'closed'), fc.constantFrom(...RECEIVER_PATHS), fc.nat(999))
  .map(([target, path, n]) => new LocalUrl(target, n % 3 === 0 ? path : `${path.split('?')[0]}/${n}`));

// ── schemas → arbitraries of valid-ish values ───────────────────────────────────────────────────

const MAX_DEPTH = 6;

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

const patternCache = new Map<string, fc.Arbitrary<string> | null>();

function patternArb(pattern: string): fc.Arbitrary<string> | null {
  if (patternCache.has(pattern)) return patternCache.get(pattern) ?? null;
  let arb: fc.Arbitrary<string> | null;
  try {
    const re = new RegExp(pattern);
    arb = fc.stringMatching(re);
    // Probe once: unsupported syntax fails here rather than mid-run.
    fc.sample(arb, { numRuns: 1, seed: 1 });
  } catch {
    arb = null;
  }
  patternCache.set(pattern, arb);
  return arb;
}

function examplesOf(schema: JsonSchema): Value[] {
  const examples: Value[] = [];
  if (Array.isArray(schema.examples)) examples.push(...(schema.examples as Value[]));
  if (schema.example !== undefined) examples.push(schema.example as Value);
  if (schema.default !== undefined) examples.push(schema.default as Value);
  // A document's example URL may name any host: generated requests only ever name 127.0.0.1.
  return examples.filter((e) => e !== undefined).map(sanitizeUrls);
}

/** Valid-ish values of `schema`: what a well-behaved client would send, with the ids and URLs it would use. */
export function valueArb(schema: JsonSchema, hint: Hint = {}, depth = 0): fc.Arbitrary<Value> {
  const base = baseArb(schema, hint, depth);
  const examples = examplesOf(schema);
  const dictionary = hint.name === undefined ? undefined : DICTIONARY[hint.name];
  const options: Array<fc.WeightedArbitrary<Value>> = [{ arbitrary: base, weight: 6 }];
  if (examples.length > 0) options.push({ arbitrary: fc.constantFrom(...examples), weight: 2 });
  if (dictionary !== undefined && (schema.type === 'string' || schema.type === undefined) && schema.enum === undefined) options.push({ arbitrary: fc.constantFrom(...dictionary.map(sanitizeUrls)), weight: 6 });
  return options.length === 1 ? base : fc.oneof(...options);
}

function baseArb(schema: JsonSchema, hint: Hint, depth: number): fc.Arbitrary<Value> {
  if (depth > MAX_DEPTH) return fc.constant(null);
  if ('const' in schema) return fc.constant(schema.const as Value);
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return fc.constantFrom(...(schema.enum as Value[]));
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) return fc.oneof(...branches.map((b) => valueArb({ ...withoutCombinator(schema, key), ...(b as JsonSchema) }, hint, depth + 1)));
  }
  if (Array.isArray(schema.allOf)) return valueArb(mergeAllOf(schema), hint, depth + 1);
  const type = schema.type;
  if (Array.isArray(type)) return fc.oneof(...type.map((t) => baseArb({ ...schema, type: t }, hint, depth)));
  switch (type) {
    case 'string':
      return stringArb(schema, hint);
    case 'integer':
      return integerArb(schema);
    case 'number':
      return fc.oneof(integerArb(schema), fc.double({ min: numberOr(schema.minimum, -1e6), max: numberOr(schema.maximum, 1e6), noNaN: true, noDefaultInfinity: true }));
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return arrayArb(schema, hint, depth);
    case 'object':
      return objectArb(schema, depth);
    default:
      if (schema.properties !== undefined || schema.additionalProperties !== undefined) return objectArb(schema, depth);
      if (schema.items !== undefined) return arrayArb(schema, hint, depth);
      if (idKindOf(schema, hint) !== undefined) return stringArb(schema, hint);
      return fc.oneof(fc.string({ maxLength: 8 }), fc.integer({ min: -10, max: 1000 }), fc.boolean(), fc.constant(null));
  }
}

function withoutCombinator(schema: JsonSchema, key: string): JsonSchema {
  const { [key]: _dropped, ...rest } = schema;
  return rest;
}

function mergeAllOf(schema: JsonSchema): JsonSchema {
  const merged: JsonSchema = { ...withoutCombinator(schema, 'allOf') };
  for (const part of schema.allOf as JsonSchema[]) {
    for (const [key, value] of Object.entries(part)) {
      if (key === 'properties') merged.properties = { ...(merged.properties as JsonSchema | undefined), ...(value as JsonSchema) };
      else if (key === 'required') merged.required = [...((merged.required as string[] | undefined) ?? []), ...(value as string[])];
      else merged[key] = value;
    }
  }
  return merged;
}

function stringArb(schema: JsonSchema, hint: Hint): fc.Arbitrary<Value> {
  const kind = idKindOf(schema, hint);
  const minLength = numberOr(schema.minLength, 0);
  const pattern = typeof schema.pattern === 'string' ? patternArb(schema.pattern) : null;
  // A pattern bounds the length itself (a bk_ id is 29 characters): only an explicit maxLength filters it.
  const maxLength = numberOr(schema.maxLength, pattern === null ? minLength + 24 : Number.POSITIVE_INFINITY);
  let plain: fc.Arbitrary<string>;
  if (pattern !== null) plain = pattern.filter((s) => s.length >= minLength && s.length <= maxLength);
  // Mostly codes in use, now and then three letters that are none (a 400 naming /currency).
  else if (schema.format === 'iso4217') plain = fc.oneof({ arbitrary: fc.constantFrom('KRW', 'USD', 'EUR', 'JPY', 'GBP'), weight: 9 }, { arbitrary: fc.constantFrom('XYZ', 'krw', 'EURO'), weight: 1 });
  else if (schema.format === 'date-time') plain = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
  else {
    const max = Math.max(minLength, Math.min(maxLength, minLength + 16));
    plain = fc.oneof(
      { arbitrary: fc.string({ minLength, maxLength: max, unit: 'grapheme-ascii' }), weight: 4 },
      { arbitrary: fc.string({ minLength, maxLength: max, unit: 'grapheme' }), weight: 1 },
    );
  }
  if (kind === 'url') return localUrlArb;
  if (kind === undefined) return plain;
  // Mostly an id the app handed out; now and then a well-formed one it never did, or another kind's.
  return fc.oneof({ arbitrary: poolRef(kind), weight: 12 }, { arbitrary: plain, weight: 2 }, { arbitrary: fc.constantFrom(...ID_KINDS).chain(poolRef), weight: 1 });
}

function integerArb(schema: JsonSchema): fc.Arbitrary<number> {
  let min = numberOr(schema.minimum, -1_000_000);
  let max = numberOr(schema.maximum, 1_000_000);
  if (typeof schema.exclusiveMinimum === 'number') min = Math.floor(schema.exclusiveMinimum) + 1;
  if (typeof schema.exclusiveMaximum === 'number') max = Math.ceil(schema.exclusiveMaximum) - 1;
  min = Math.max(Math.ceil(min), Number.MIN_SAFE_INTEGER);
  max = Math.min(Math.floor(max), Number.MAX_SAFE_INTEGER);
  if (max < min) return fc.constant(min);
  // Small values near the minimum are the common case (amounts that leave room for partial refunds, 1–3 seats).
  return fc.oneof({ arbitrary: fc.integer({ min, max: Math.min(max, min + 20) }), weight: 3 }, { arbitrary: fc.integer({ min, max }), weight: 1 }, { arbitrary: fc.constantFrom(min, max), weight: 1 });
}

function arrayArb(schema: JsonSchema, hint: Hint, depth: number): fc.Arbitrary<Value> {
  const items = (schema.items ?? {}) as JsonSchema;
  const minLength = numberOr(schema.minItems, 0);
  const maxLength = Math.max(minLength, Math.min(numberOr(schema.maxItems, 3), 3));
  return fc.array(valueArb(items, hint, depth + 1), { minLength, maxLength });
}

function objectArb(schema: JsonSchema, depth: number): fc.Arbitrary<Value> {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set(((schema.required ?? []) as string[]).filter((k) => k in properties));
  const model: Record<string, fc.Arbitrary<Value>> = {};
  for (const [name, sub] of Object.entries(properties)) model[name] = valueArb(sub, { name }, depth + 1);
  const known = fc.record(model, { requiredKeys: [...required] }) as fc.Arbitrary<{ [key: string]: Value }>;
  const additional = schema.additionalProperties;
  if (additional === undefined || additional === false || additional === true) return known;
  const names = (schema.propertyNames ?? {}) as JsonSchema;
  const keyMin = Math.max(1, numberOr(names.minLength, 1));
  const keyMax = Math.max(keyMin, Math.min(numberOr(names.maxLength, 12), 12));
  const maxKeys = Math.min(numberOr(schema.maxProperties, 3), 3);
  const extra = fc.dictionary(
    fc.string({ minLength: keyMin, maxLength: keyMax, unit: 'grapheme-ascii' }).filter((k) => k !== '__proto__' && !(k in properties)),
    valueArb(additional as JsonSchema, {}, depth + 1),
    { maxKeys },
  );
  return fc.tuple(known, extra).map(([a, b]) => {
    const out: { [key: string]: Value } = {};
    for (const [k, v] of Object.entries(b)) put(out, k, v);
    for (const [k, v] of Object.entries(a)) put(out, k, v);
    return out;
  });
}

// ── valid-ish requests ──────────────────────────────────────────────────────────────────────────

function paramValueArb(param: ParamSpec, segment: string | undefined): fc.Arbitrary<Value> {
  return valueArb(param.schema, { name: param.name, segment, wire: param.in !== 'path' });
}

/** The header and its values for an operation's credential parameters. */
function credentialArb(options: GeneratorOptions, name: string): fc.Arbitrary<Value> | undefined {
  if (name === 'authorization') return fc.constantFrom(...options.tokens.valid).map((t) => `Bearer ${t}`);
  if (KIND_BY_NAME[name] === 'user') return fc.constantFrom(...options.users);
  return undefined;
}

/** A valid-ish request for operation `index`. */
export function validDraftArb(options: GeneratorOptions, index: number): fc.Arbitrary<Draft> {
  const op = options.model.operations[index] as OperationSpec;
  const pathParams = new Map(op.params.filter((p) => p.in === 'path').map((p) => [p.name, p]));
  const pieces: Array<fc.Arbitrary<PathPiece>> = [];
  let previous: string | undefined;
  for (const segment of op.segments) {
    if ('literal' in segment) {
      pieces.push(fc.constant({ lit: `/${segment.literal}` }));
      previous = segment.literal;
    } else {
      const param = pathParams.get(segment.param) ?? { name: segment.param, in: 'path' as const, required: true, schema: { type: 'string', minLength: 1 } };
      pieces.push(fc.constant({ lit: '/' }));
      pieces.push(paramValueArb(param, previous).map((value) => ({ value })));
    }
  }
  const query: Array<fc.Arbitrary<QueryPiece | null>> = op.params
    .filter((p) => p.in === 'query')
    .map((p) => {
      const piece = paramValueArb(p, undefined).map((value): QueryPiece | null => ({ name: p.name, value }));
      return p.required ? piece : fc.option(piece, { freq: 2, nil: null });
    });
  const headers: Array<fc.Arbitrary<HeaderDraft | null>> = op.params
    .filter((p) => p.in === 'header')
    .map((p) => {
      let value = credentialArb(options, p.name) ?? paramValueArb(p, undefined);
      // Keys that repeat, so replays, mismatches and conflicts happen.
      if (p.name === 'idempotency-key') value = fc.oneof({ arbitrary: fc.constantFrom('k1', 'k2', 'k3', 'key-4'), weight: 3 }, { arbitrary: value, weight: 1 });
      // X-Sim-Namespace: `default` (the stores this harness instruments), or a name that is not one
      // (a 400 that must change nothing). A valid other name acts in another namespace's app, whose
      // stores are not instrumented and whose records no chain could reach: namespaces.test.ts
      // covers those.
      if (p.name === 'x-sim-namespace') value = fc.oneof({ arbitrary: fc.constant('default'), weight: 3 }, { arbitrary: fc.constantFrom('a b', 'x'.repeat(65), 'ns/1', ''), weight: 1 });
      const header = value.map((v): HeaderDraft | null => ({ name: p.name, values: [v] }));
      return p.required || p.name === 'authorization' ? header : fc.option(header, { freq: 2, nil: null });
    });
  if (op.bearer && !op.params.some((p) => p.name === 'authorization')) {
    headers.push((credentialArb(options, 'authorization') as fc.Arbitrary<Value>).map((v) => ({ name: 'authorization', values: [v] })));
  }
  let body: fc.Arbitrary<BodyDraft> = fc.constant({ kind: 'none' });
  if (op.body !== undefined) {
    const json = valueArb(op.body.schema).map((value): BodyDraft => ({ kind: 'json', value }));
    body = op.body.required ? json : fc.oneof({ arbitrary: json, weight: 3 }, { arbitrary: fc.constant<BodyDraft>({ kind: 'none' }), weight: 1 });
  }
  return fc.record({ path: fc.tuple(...pieces), query: fc.tuple(...query), headers: fc.tuple(...headers), body }).map(
    (r): Draft => ({
      op: index,
      method: op.method,
      path: r.path,
      pathSuffix: '',
      query: r.query.filter((q): q is QueryPiece => q !== null),
      headers: r.headers.filter((h): h is HeaderDraft => h !== null),
      body: r.body,
      contentType: undefined,
      tags: [],
    }),
  );
}

/**
 * Segments of unknown paths sent as written (a traversal, percent-escapes broken on purpose); any
 * other segment is percent-encoded, so a generated one that holds `%` beside `\` or `#` stays one
 * path (as sent raw it is no URL at all: `/\%7#` names a host).
 */
const RAW_SEGMENTS: ReadonlySet<string> = new Set(['..', '%00', '%2F', '%E0%A4%A']);

/** A request to a path no operation has: under a documented prefix, or anywhere. */
export function unknownRouteArb(options: GeneratorOptions): fc.Arbitrary<Draft> {
  const prefixes = [...new Set(options.model.operations.flatMap((op) => [`/${op.segments[0] && 'literal' in op.segments[0] ? op.segments[0].literal : ''}`, op.path.replace(/\/\{[^}]+\}.*$/, '')]))];
  return fc
    .record({
      prefix: fc.constantFrom('', ...prefixes),
      tail: fc.array(fc.oneof(fc.constantFrom('nope', 'x', '..', '%00', '%2F', 'index.html', '.env', 'admin', 'v2', '%E0%A4%A', '😀'), fc.string({ minLength: 1, maxLength: 8, unit: 'grapheme-ascii' })), { minLength: 1, maxLength: 3 }),
      method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'),
      user: fc.option(fc.constantFrom(...options.users), { nil: undefined }),
    })
    .map(({ prefix, tail, method, user }): Draft => ({
      op: -1,
      method,
      path: [{ lit: prefix }, ...tail.flatMap((t): PathPiece[] => (RAW_SEGMENTS.has(t) ? [{ raw: `/${t}` }] : [{ lit: '/' }, { value: t }]))],
      pathSuffix: '',
      query: [],
      headers: user === undefined ? [] : [{ name: 'x-user-id', values: [user] }],
      body: method === 'POST' || method === 'PUT' || method === 'PATCH' ? { kind: 'json', value: {} } : { kind: 'none' },
      contentType: undefined,
      tags: ['unknown-route'],
    }));
}

// ── mutations ───────────────────────────────────────────────────────────────────────────────────

export const MUTATIONS = [
  'body.drop',
  'body.extra',
  'body.type',
  'body.number',
  'body.huge',
  'body.unicode',
  'body.deep',
  'body.whole',
  'body.raw',
  'body.bytes',
  'body.unexpected',
  'ctype',
  'clength',
  'path.param',
  'path.shape',
  'query.extra',
  'query.dup',
  'query.value',
  'query.drop',
  'query.huge',
  'query.raw',
  'hdr.idem',
  'hdr.user',
  'hdr.auth',
  'hdr.misc',
  'method',
] as const;

export type MutationKind = (typeof MUTATIONS)[number];

export interface Mutation {
  kind: MutationKind;
  /** Which target (a field, a parameter, a header), modulo how many there are. */
  at: number;
  /** Which replacement, modulo the table's size. */
  variant: number;
  /** Random text for the replacements that take some. */
  text: string;
}

const MAX_SAFE_PLUS_2 = '9007199254740993';

const WRONG_TYPES: readonly Value[] = [0, 1.5, -1, true, false, null, '', 'x', [], {}, [1, 2], { a: 1 }, '1', 'true', 'null', ['x']];

const BOUNDARY_NUMBERS: readonly Value[] = [
  0,
  -1,
  1,
  new RawJson('-0'),
  Number.MAX_SAFE_INTEGER,
  new RawJson(MAX_SAFE_PLUS_2),
  -Number.MAX_SAFE_INTEGER,
  new RawJson('1e308'),
  new RawJson('-1e308'),
  new RawJson('1e999'),
  new RawJson('-1e999'),
  1.5,
  0.1,
  new RawJson('5e-324'),
  2 ** 31,
  2 ** 32,
  new RawJson('9223372036854775808'),
  new RawJson('1.0'),
  new RawJson('1E2'),
  new RawJson('100000000000.0'),
  100_000_000_000,
  100_000_000_001,
  10,
  11,
  12,
  13,
  500,
  501,
  600_000,
  600_001,
  1999,
  2200,
  'NaN',
  'Infinity',
  '-Infinity',
  '1e999',
  '0x10',
  ' 1',
  '1 ',
  '',
  '１２３',
  '1_000',
];

const NASTY_STRINGS: readonly string[] = [
  '\u0000',
  'a\u0000b',
  '\uD800',
  '\uDC00x',
  'x\uDBFF',
  '😀',
  '𝕏𝕐𝕫',
  'e\u0301',
  '\u0301',
  'a\u0300\u0301\u0302\u0303\u0304\u0305',
  '\u202Eabc',
  'مرحبا',
  'שלום\u200F',
  '\u200B',
  '\uFEFF',
  '\u2028\u2029',
  'ß',
  'İ',
  'ﬀ',
  '\t\n\r',
  '\\',
  '"',
  "'",
  '${x}',
  '%00',
  '../',
  '<script>',
  ' ',
  '',
  'ｐｅｒｆ＿００１',
  '\u007F',
  '\uFFFF',
  '\uFFFD',
];

const HUGE_SIZES = [1000, 10_000] as const;

const DEEP = [10, 100, 1000, 5000] as const;

/** The first `length` characters of a JSON text, but never a URL cut short: "http://127.0." names no host the runner allows. */
export function cutAt(json: string, length: number): string {
  return json.slice(0, length).replace(/https?:\/\/[^"]*$/, '');
}

const RAW_BODIES: ReadonlyArray<string | ((json: string) => string)> = [
  '',
  ' ',
  '{',
  '}',
  '{"a":',
  '[1,2',
  'nul',
  'undefined',
  "{'a':1}",
  '{"a":1,}',
  '{"a":1}//c',
  '/*c*/{}',
  (json) => `\uFEFF${json}`,
  (json) => cutAt(json, Math.max(1, json.length >> 1)),
  (json) => `${json}x`,
  (json) => `${json}${json}`,
  (json) => json.replace(/^\{/, '{"__proto__":{"polluted":1},'),
  (json) => json.replace(/^\{/, '{"constructor":{"prototype":{"polluted":1}},'),
  (json) => json.replace(/^\{("[^"]+"):/, '{$1:"dup",$1:'),
  'NaN',
  'Infinity',
  '-',
  '1e999',
  '"\\ud800"',
  '"\\u0000"',
  '{"a":"\\x41"}',
  '\u0000',
  (json) => `${json}\u0000`,
  'null',
  '[]',
  '"just a string"',
  '{"a":1}\n{"a":2}',
  (json) => ` \n\t${json}\n `,
];

const CONTENT_TYPES: ReadonlyArray<string | null> = [
  null,
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/json;charset=UTF-8',
  'APPLICATION/JSON',
  'Application/Json; Charset=utf-8',
  'application/jsonx',
  'application/json-patch+json',
  'application/vnd.api+json',
  'application/problem+json',
  '',
  ' ',
  'application/json, text/plain',
  '*/*',
  'application/*',
  'json',
  'application/json; boundary=x; charset=utf-8',
  'text/json',
  'application/x-json',
  'application/json ; charset=utf-8',
  'application/json; charset="utf-8"',
  'application/json; foo',
];

const ODD_PATH_VALUES: ReadonlyArray<PathPiece> = [
  { raw: '..' },
  { raw: '.' },
  { raw: '%00' },
  { raw: 'a%00b' },
  { raw: '%2e%2e' },
  { raw: '%2F' },
  { raw: 'a%2Fb' },
  { raw: '%' },
  { raw: '%zz' },
  { raw: '%E0%A4%A' },
  { raw: '%ED%A0%80' },
  { raw: '%C0%AE' },
  { raw: '%FF' },
  { raw: '' },
  { raw: '%20' },
  { raw: '%252e' },
  { raw: ';a=b' },
  { raw: '*' },
  { raw: '{id}' },
  { raw: ':id' },
  { raw: '%3F' },
  { raw: '%23' },
  { value: 'a'.repeat(64) },
  { value: 'a'.repeat(65) },
  { value: 'a'.repeat(100) },
  { value: 'a'.repeat(101) },
  { value: 'a'.repeat(1000) },
  { value: ' ' },
  { value: '😀' },
  { value: 'e\u0301' },
  { value: '\u202E' },
  { value: '\uD800' },
  { value: `pay_${'Z'.repeat(26)}` },
  { value: `bk_${'0'.repeat(26)}` },
  { value: 'pay_01KAAAAAAAAAAAAAAAAAAAAAAA' },
  { value: 'null' },
  { value: 'undefined' },
  { value: '0' },
  { value: '-1' },
  { value: 'PERF_001' },
  { value: 'perf_001 ' },
];

const ODD_QUERY_VALUES: readonly Value[] = ['', ' ', '0', '-1', '1.5', '1e3', MAX_SAFE_PLUS_2, 'NaN', 'true', 'null', '[]', '{}', '😀', '\u0000', 'a'.repeat(65), 'a'.repeat(129), 'a'.repeat(3000), 'PENDING ', 'pending', `pay_${'Z'.repeat(26)}`, 'http://127.0.0.1:1/x'];

const RAW_QUERIES: readonly string[] = ['?', '?&&&', '?=', '?a', '?a==b', '?%', '?%zz=1', '?limit=%E0%A4%A', '?limit=1&', '?a=b#c', '?;', '?%C3%A9=%C3%A9', '?limit=1;limit=2', '?__proto__[x]=1', '?constructor[prototype][x]=1', '?limit[]=1', '?limit[a]=1', '?+=+', '?limit=%2B1', '?limit=%00'];

const QUERY_NAMES: readonly string[] = ['x', 'LIMIT', '__proto__', 'constructor', 'hasOwnProperty', 'limit[]', 'a[b]', '', ' ', '😀', 'status', 'cursor', 'limit'];

const IDEMPOTENCY_KEYS: ReadonlyArray<Value | Value[]> = ['', ' ', 'a'.repeat(255), 'a'.repeat(256), 'a'.repeat(10_000), 'ключ', '😀', 'a b', '\t', 'k1\t', ['k1', 'k2'], ['k1', 'k1'], 'k1', '"k1"', 'k\u007F'];

const USER_IDS: ReadonlyArray<Value | Value[] | undefined> = [undefined, '', ' ', 'a'.repeat(128), 'a'.repeat(129), 'a'.repeat(100_000), '사용자', '😀', ['user_fuzz_a', 'user_fuzz_b'], 'user_fuzz_a ', ' user_fuzz_a', '\t', 'USER_FUZZ_A', 'user_fuzz_a\u0301'];

const MISC_HEADERS: ReadonlyArray<[string, Value]> = [
  ['x-request-id', 'a'.repeat(200)],
  ['x-request-id', 'id with spaces'],
  ['x-request-id', '😀'],
  ['x-request-id', ''],
  ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
  ['traceparent', '00-00000000000000000000000000000000-b7ad6b7169203331-01'],
  ['traceparent', 'garbage'],
  ['traceparent', 'x'.repeat(5000)],
  ['accept', 'text/html'],
  ['accept', 'application/xml'],
  ['accept', ''],
  ['accept-charset', 'iso-8859-1'],
  ['accept-encoding', 'gzip, br'],
  ['content-encoding', 'gzip'],
  ['x-forwarded-for', '127.0.0.1, 10.0.0.1'],
  ['x-http-method-override', 'DELETE'],
  ['expect', '100-continue'],
  ['cookie', 'a=b'],
  ['x-user-id', 'user_fuzz_a'],
  ['origin', 'http://127.0.0.1'],
];

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND'] as const;

function pickOf<T>(table: readonly T[], n: number): T {
  return table[n % table.length] as T;
}

type JsonPath = Array<string | number>;

/** Every place in a JSON value (the root included), depth-first. */
function pathsOf(value: Value, prefix: JsonPath = [], out: JsonPath[] = []): JsonPath[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, [...prefix, i], out));
  else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}

/** Sets an own, enumerable property, even one called `__proto__`. */
export function put(target: { [key: string]: Value }, key: string, value: Value): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function clone(value: Value): Value {
  if (Array.isArray(value)) return value.map(clone);
  if (isPlainObject(value)) {
    const out: { [key: string]: Value } = {};
    for (const [k, v] of Object.entries(value)) put(out, k, clone(v));
    return out;
  }
  return value;
}

function getAt(value: Value, path: JsonPath): Value | undefined {
  let node: Value | undefined = value;
  for (const key of path) {
    if (Array.isArray(node) && typeof key === 'number') node = node[key];
    else if (isPlainObject(node) && typeof key === 'string') node = node[key];
    else return undefined;
  }
  return node;
}

function setAt(root: Value, path: JsonPath, replacement: Value | undefined): Value {
  if (path.length === 0) return replacement === undefined ? null : replacement;
  const copy = clone(root);
  const parent = getAt(copy, path.slice(0, -1));
  const key = path[path.length - 1] as string | number;
  if (Array.isArray(parent) && typeof key === 'number') {
    if (replacement === undefined) parent.splice(key, 1);
    else parent[key] = replacement;
  } else if (isPlainObject(parent) && typeof key === 'string') {
    if (replacement === undefined) delete parent[key];
    else put(parent, key, replacement);
  }
  return copy;
}

function jsonBody(draft: Draft): Value | undefined {
  return draft.body.kind === 'json' ? draft.body.value : undefined;
}

/** A JSON text of the body, placeholders as plain strings: what raw-text mutations start from. */
function roughJson(value: Value | undefined): string {
  return JSON.stringify(value ?? {}, (_k, v: unknown) => (v instanceof PoolRef ? `${v.kind}_01KFUZZFUZZFUZZFUZZFUZZFUZZ` : v instanceof LocalUrl ? 'http://127.0.0.1:1/ok' : v instanceof RawJson ? 0 : v instanceof Fill ? '' : v)) ?? '{}';
}

function withBody(draft: Draft, value: Value): Draft {
  return { ...draft, body: { kind: 'json', value } };
}

function setHeader(draft: Draft, name: string, values: Value[] | undefined): Draft {
  const headers = draft.headers.filter((h) => h.name !== name);
  if (values !== undefined) headers.push({ name, values });
  return { ...draft, headers };
}

/** Applies one mutation. Mutations never produce a non-local webhook URL: the runner checks that too. */
export function mutate(draft: Draft, m: Mutation, options: GeneratorOptions): Draft {
  const tagged = { ...draft, tags: [...draft.tags, m.kind] };
  const body = jsonBody(draft);
  const paths = body === undefined ? [] : pathsOf(body);
  const target = paths.length === 0 ? [] : (paths[m.at % paths.length] as JsonPath);
  switch (m.kind) {
    case 'body.drop': {
      if (body === undefined) return { ...tagged, body: { kind: 'none' } };
      const keyed = paths.filter((p) => p.length > 0);
      if (keyed.length === 0) return { ...tagged, body: { kind: 'none' } };
      return withBody(tagged, setAt(body, pickOf(keyed, m.at), undefined));
    }
    case 'body.extra': {
      const objects = paths.filter((p) => isPlainObject(getAt(body ?? {}, p)));
      const at = objects.length === 0 ? [] : pickOf(objects, m.at);
      const name = pickOf(['extra', 'AMOUNT', 'amount ', '', '__fuzz', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', m.text || 'x'], m.variant);
      const root = isPlainObject(body) ? body : {};
      const parent = clone(getAt(root, at) ?? {}) as { [key: string]: Value };
      put(parent, name, pickOf(WRONG_TYPES, m.variant >> 4));
      return withBody(tagged, at.length === 0 ? parent : setAt(root, at, parent));
    }
    case 'body.type':
      return withBody(tagged, setAt(body ?? {}, target, pickOf(WRONG_TYPES, m.variant)));
    case 'body.number':
      return withBody(tagged, setAt(body ?? {}, target.length === 0 && paths.length > 1 ? (paths[1] as JsonPath) : target, pickOf(BOUNDARY_NUMBERS, m.variant)));
    case 'body.huge': {
      const unit = pickOf(['a', 'é', '😀', '\u0000', ' '], m.variant >> 3);
      const sizes: Value[] = [...HUGE_SIZES.map((n) => unit.repeat(Math.ceil(n / unit.length))), new Fill('under', unit), new Fill('over', unit), new Fill('under', 'a'), new Fill('over', 'a'), 'a'.repeat(options.bodyLimit * 2)];
      const strings = paths.filter((p) => p.length > 0);
      const at = strings.length === 0 ? ['huge'] : pickOf(strings, m.at);
      return withBody(tagged, setAt(isPlainObject(body) || Array.isArray(body) ? body : {}, at, pickOf(sizes, m.variant)));
    }
    case 'body.unicode': {
      const nasty = pickOf([...NASTY_STRINGS, m.text], m.variant);
      const current = getAt(body ?? {}, target);
      const replacement = typeof current === 'string' && m.variant % 3 !== 0 ? (m.variant % 3 === 1 ? `${current}${nasty}` : `${nasty}${current}`) : nasty;
      return withBody(tagged, setAt(body ?? {}, target, replacement));
    }
    case 'body.deep': {
      const depth = pickOf(DEEP, m.variant);
      const nested = m.variant % 2 === 0 ? new RawJson(`${'['.repeat(depth)}1${']'.repeat(depth)}`) : new RawJson(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
      return withBody(tagged, setAt(body ?? {}, target, nested));
    }
    case 'body.whole':
      return withBody(tagged, pickOf<Value>([null, [], 'str', 123, true, {}, [body ?? {}], new RawJson('""'), new RawJson('0'), false], m.variant));
    case 'body.raw': {
      const raw = pickOf(RAW_BODIES, m.variant);
      return { ...tagged, body: { kind: 'text', text: typeof raw === 'string' ? raw : raw(roughJson(body)) } };
    }
    case 'body.bytes': {
      const json = Buffer.from(roughJson(body), 'utf8');
      const bad = pickOf([[0xff], [0xfe, 0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xae], [0xe2, 0x82]], m.variant);
      // Inside the first string value, where a decoder has to deal with it; else in front.
      const quote = json.indexOf(0x3a /* : */);
      const at = quote >= 0 && json[quote + 1] === 0x22 ? quote + 2 : 0;
      return { ...tagged, body: { kind: 'bytes', bytes: [...json.subarray(0, at), ...bad, ...json.subarray(at)] } };
    }
    case 'body.unexpected':
      return draft.body.kind === 'none' ? { ...tagged, body: { kind: 'json', value: { unexpected: true } } } : { ...tagged, body: { kind: 'text', text: '{"unexpected":true}' } };
    case 'ctype':
      return { ...tagged, contentType: pickOf(CONTENT_TYPES, m.variant), body: draft.body.kind === 'none' && m.at % 2 === 0 ? { kind: 'json', value: {} } : draft.body };
    case 'clength':
      return draft.body.kind === 'none' ? tagged : { ...tagged, contentLength: pickOf(['0', '1', '2'], m.variant) };
    case 'path.param': {
      const params = draft.path.map((p, i) => ('value' in p ? i : -1)).filter((i) => i >= 0);
      if (params.length === 0) return mutate(draft, { ...m, kind: 'path.shape' }, options);
      const odd = pickOf<PathPiece>([...ODD_PATH_VALUES, { value: m.text || 'x' }, { value: new PoolRef(pickOf(['pay', 'bk', 'whd', 'evt', 'perf'], m.variant >> 2), m.at) }], m.variant);
      const path = [...draft.path];
      path[pickOf(params, m.at)] = odd;
      return { ...tagged, path };
    }
    case 'path.shape': {
      const variant = m.variant % 12;
      const path = [...draft.path];
      const lits = path.map((p, i) => ('lit' in p && p.lit.length > 1 ? i : -1)).filter((i) => i >= 0);
      const lit = lits.length === 0 ? -1 : pickOf(lits, m.at);
      const litText = lit >= 0 ? (path[lit] as { lit: string }).lit : '';
      switch (variant) {
        case 0:
          return { ...tagged, pathSuffix: '/' };
        case 1:
          return { ...tagged, pathSuffix: '//' };
        case 2:
          return { ...tagged, pathSuffix: `/${m.text ? encodeURIComponent(m.text.replace(/[\uD800-\uDFFF]/g, '')) : 'extra'}` };
        case 3:
          return { ...tagged, pathSuffix: ';a=b' };
        case 4:
          return { ...tagged, pathSuffix: '%00' };
        case 5:
          if (lit < 0) return { ...tagged, pathSuffix: '/..' };
          path[lit] = { lit: litText.toUpperCase() };
          return { ...tagged, path };
        case 6:
          if (lit < 0) return { ...tagged, pathSuffix: '%2F' };
          // Percent-encode one letter of a literal: /v1/sim/inten%74s is the same path to a decoder.
          path[lit] = { raw: litText.replace(/[a-z](?=[^a-z]*$)/, (c) => `%${c.charCodeAt(0).toString(16)}`) };
          return { ...tagged, path };
        case 7:
          return { ...tagged, path: [{ lit: '/' }, ...path] };
        case 8:
          return { ...tagged, path: path.slice(0, Math.max(1, path.length - 1)) };
        case 9:
          return { ...tagged, pathSuffix: '/./' };
        case 10:
          return { ...tagged, path: [{ raw: '/x/..' }, ...path] };
        default:
          return { ...tagged, pathSuffix: '%2F..%2F..%2Fetc%2Fpasswd' };
      }
    }
    case 'query.extra':
      return { ...tagged, query: [...draft.query, { name: pickOf([...QUERY_NAMES, m.text], m.at), value: pickOf(ODD_QUERY_VALUES, m.variant) }] };
    case 'query.dup': {
      const existing = draft.query.filter((q): q is { name: string; value: Value } => 'name' in q);
      const twin = existing.length === 0 ? { name: 'limit', value: '1' as Value } : pickOf(existing, m.at);
      return { ...tagged, query: [...draft.query, { name: twin.name, value: m.variant % 2 === 0 ? twin.value : pickOf(ODD_QUERY_VALUES, m.variant) }] };
    }
    case 'query.value': {
      const op = options.model.operations[draft.op];
      const names = [...new Set([...(op?.params.filter((p) => p.in === 'query').map((p) => p.name) ?? []), ...draft.query.filter((q): q is { name: string; value: Value } => 'name' in q).map((q) => q.name)])];
      if (names.length === 0) return mutate(draft, { ...m, kind: 'query.extra' }, options);
      const name = pickOf(names, m.at);
      return { ...tagged, query: [...draft.query.filter((q) => !('name' in q) || q.name !== name), { name, value: pickOf([...ODD_QUERY_VALUES, ...BOUNDARY_NUMBERS.filter((v) => typeof v !== 'object'), m.text], m.variant) }] };
    }
    case 'query.drop':
      return draft.query.length === 0 ? mutate(draft, { ...m, kind: 'query.raw' }, options) : { ...tagged, query: draft.query.filter((_q, i) => i !== m.at % draft.query.length) };
    case 'query.huge':
      // Around the 8,192-character URL limit, and a long value well under it.
      return { ...tagged, query: [...draft.query, { name: 'pad', value: 'q'.repeat(pickOf([3000, 8000, 8150, 8200, 9000, 20_000], m.variant)) }] };
    case 'query.raw':
      return { ...tagged, query: [...draft.query, { raw: pickOf(RAW_QUERIES, m.variant) }] };
    case 'hdr.idem': {
      const v = pickOf([...IDEMPOTENCY_KEYS, m.text], m.variant);
      return setHeader(tagged, 'idempotency-key', Array.isArray(v) ? v : [v]);
    }
    case 'hdr.user': {
      const v = pickOf([...USER_IDS, m.text], m.variant);
      return setHeader(tagged, 'x-user-id', v === undefined ? undefined : Array.isArray(v) ? v : [v]);
    }
    case 'hdr.auth': {
      const valid = pickOf(options.tokens.valid, m.at);
      const invalid = pickOf(options.tokens.invalid, m.at);
      const variants: Array<Value[] | undefined> = [
        undefined,
        [''],
        ['Bearer'],
        ['Bearer '],
        ['Basic dXNlcjpwYXNz'],
        [`bearer ${valid}`],
        [`Bearer  ${valid}  `],
        [valid],
        [`Bearer ${valid} x`],
        [`Bearer ${invalid}`],
        [`Bearer ${invalid}`],
        [`Bearer ${invalid}`],
        ['Bearer a.b.c'],
        [`Bearer ${'A'.repeat(10_000)}`],
        [`Bearer ${valid}${valid}`],
        [`Bearer ${valid}`, `Bearer ${invalid}`],
        [`Bearer ${invalid}`, `Bearer ${valid}`],
        [`Bearer ${valid.slice(0, -2)}`],
        [`Bearer ${m.text}`],
        ['Bearer 😀'],
      ];
      return setHeader(tagged, 'authorization', pickOf(variants, m.variant));
    }
    case 'hdr.misc': {
      const [name, value] = pickOf(MISC_HEADERS, m.variant);
      return { ...tagged, headers: [...draft.headers.filter((h) => h.name !== name), { name, values: [value] }] };
    }
    case 'method': {
      const op = options.model.operations[draft.op];
      const taken = op === undefined ? [] : (options.model.methodsByPath.get(op.path) ?? []);
      const others = METHODS.filter((x) => !taken.includes(x));
      return { ...tagged, method: pickOf(others.length === 0 ? METHODS : others, m.variant) };
    }
  }
}

export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom(...MUTATIONS),
  at: fc.nat(),
  variant: fc.nat(),
  text: fc.oneof(fc.string({ maxLength: 12, unit: 'binary' }), fc.string({ maxLength: 12, unit: 'grapheme' })),
});

/** A request to any operation: valid-ish (about half), or with one to three mutations; now and then a path no operation has. */
export function requestArb(options: GeneratorOptions): fc.Arbitrary<Draft> {
  const ops = options.model.operations;
  // Operations that create things (a POST without path parameters) run more often, so later requests find things to act on.
  const perOp = ops.map((op, index) => ({
    arbitrary: validDraftArb(options, index),
    weight: op.method === 'POST' && !op.segments.some((s) => 'param' in s) ? 3 : 1,
  }));
  const base = fc.oneof({ arbitrary: fc.oneof(...perOp), weight: 30 }, { arbitrary: unknownRouteArb(options), weight: 1 });
  const mutations = fc.oneof(
    { arbitrary: fc.constant<Mutation[]>([]), weight: 9 },
    { arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 1 }), weight: 8 },
    { arbitrary: fc.array(mutationArb, { minLength: 2, maxLength: 3 }), weight: 3 },
  );
  return fc.tuple(base, mutations).map(([draft, ms]) => ms.reduce((d, m) => mutate(d, m, options), draft));
}

/** How far the clock moves in an `advance` step: decisions (100–3,000 ms), retries, seat holds lapsing. */
const ADVANCES = [0, 10, 60, 150, 250, 1000, 3500, 20_000, 60_001, 600_001];

export function stepArb(options: GeneratorOptions): fc.Arbitrary<Step> {
  return fc.oneof(
    { arbitrary: requestArb(options).map((draft): Step => ({ kind: 'request', draft })), weight: 24 },
    { arbitrary: fc.constantFrom(...ADVANCES).map((ms): Step => ({ kind: 'advance', ms })), weight: 1 },
  );
}

/** One sequence: the steps run, in order, against one fresh app. */
export function sequenceArb(options: GeneratorOptions): fc.Arbitrary<Step[]> {
  return fc.array(stepArb(options), { minLength: options.sequenceLength, maxLength: options.sequenceLength });
}
