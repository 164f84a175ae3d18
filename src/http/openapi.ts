import { isDeepStrictEqual } from 'node:util';
import type { TSchema } from 'typebox';
import { NAMESPACE_PATTERN } from '../core/namespace.ts';

/**
 * What a route's schema says beyond validation, for the OpenAPI document: response descriptions,
 * headers and named examples, request examples, and the document-wide finishing touches
 * (named component schemas, optional bodies, the `webhooks` section). Validation and
 * serialisation ignore these keywords (Ajv runs with `strict: false`; fast-json-stringify reads
 * only what it serialises); @fastify/swagger turns `x-response-description`, `headers` and
 * `x-examples` into the response's description, headers and media examples.
 *
 * Example names pair a request with its answer: a request example named `approve` is answered by
 * the response example named `approve` (test/integration/openapi-examples.test.ts sends every
 * request example and checks the status and the body against the document).
 */

/** Security schemes, by the names routes use in `security` (declared in plugins/external/swagger.ts). */
export const SECURITY = {
  /** The payment-service API's JWT (`/api/v1/payments/process`). */
  bearer: 'bearerAuth',
  /** The bookings API's caller header. */
  user: 'userId',
  /** The Payment Server v3 API's `SERVICE_AUTH_TOKEN` (needed with V2_REQUIRE_AUTH=true). */
  service: 'serviceToken',
} as const;

export interface Example {
  summary: string;
  description?: string;
  value: unknown;
}
export type Examples = Readonly<Record<string, Example>>;

interface HeaderDoc {
  description: string;
  schema: Record<string, unknown>;
}

/** Every response header the service documents, by its wire name. */
export const RESPONSE_HEADERS = {
  'X-Request-Id': {
    description: 'The request id: the caller’s own `X-Request-Id` when it is 1–128 letters, digits, `.`, `_`, `:` or `-`, else a generated UUID. Also on the request’s log line.',
    schema: { type: 'string', examples: ['2f6f0a52-4b7e-4d1c-9a53-0f1c27f3a9b4'] },
  },
  'Idempotent-Replayed': {
    description: 'Present (`true`) when this is the stored answer to an earlier request with the same `Idempotency-Key`: nothing was done again.',
    schema: { type: 'string', enum: ['true'] },
  },
  'Retry-After': {
    description: 'Seconds to wait before trying again: with 429 and 503, and with a 409 that a request still in flight is about to settle (an Idempotency-Key in use; in FluxPay also an admission token in use by an order still being created). A 409 without it is final: sent again, it is refused again.',
    schema: { type: 'string', pattern: '^[0-9]+$', examples: ['1'] },
  },
  'X-Next-Cursor': {
    description: 'Present when there are more items: the `cursor` of the next page.',
    schema: { type: 'string', examples: ['bk_01KBA7Q4A6J3M8P1T5W9Y2C4HD'] },
  },
  'WWW-Authenticate': {
    description: 'How to authenticate: `Bearer` (RFC 6750).',
    schema: { type: 'string', examples: ['Bearer'] },
  },
  Link: {
    description: 'Present when there are more items: the next page, `rel="next"` (RFC 8288).',
    schema: { type: 'string', examples: ['</bookings/my?limit=100&cursor=bk_01KBA7Q4A6J3M8P1T5W9Y2C4HD>; rel="next"'] },
  },
  'RateLimit-Limit': {
    description: 'Requests this client (`X-Client-Id`, else its address) may send to this route group in one window (IETF draft RateLimit header fields).',
    schema: { type: 'string', pattern: '^[0-9]+$', examples: ['100000'] },
  },
  'RateLimit-Remaining': {
    description: 'Requests left in the current window, this one counted; 0 with a 429.',
    schema: { type: 'string', pattern: '^[0-9]+$', examples: ['99999'] },
  },
  'RateLimit-Reset': {
    description: 'Seconds until the current window ends and the count starts again.',
    schema: { type: 'string', pattern: '^[0-9]+$', examples: ['1'] },
  },
  'X-Sim-Rule': {
    description:
      'Present when fault rules (`/v1/sim/rules`) shaped this answer (a latency, an error, an outcome): the ids of the rules that applied, in creation order, separated by `, `. Any answer of an operation rules can shape may carry it; the simulator’s own routes never do.',
    schema: { type: 'string', examples: ['rule_01M8P2N817W7HSN9R5DPH91VN7'] },
  },
} as const satisfies Record<string, HeaderDoc>;

export type ResponseHeader = keyof typeof RESPONSE_HEADERS;

/** The trace id of the examples' error bodies (the native envelope's `trace_id`). */
export const EXAMPLE_TRACE_ID = '2f6f0a524b7e4d1c9a530f1c27f3a9b4';

export interface ResponseDoc {
  description: string;
  examples?: Examples;
  /** Headers besides `X-Request-Id`, which every response carries. */
  headers?: readonly ResponseHeader[];
}

/** Every response of an idempotent POST may be a replay. */
export const IDEMPOTENT: readonly ResponseHeader[] = ['Idempotent-Replayed'];

/** The rate-limit headers, on every answer of a rate-limited route (the FluxPay API's). */
export const RATE_LIMITED: readonly ResponseHeader[] = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'];

/** A documented response schema (`documented`) with more headers, after those it has. */
export function withHeaders<T extends TSchema>(schema: T, names: readonly ResponseHeader[]): T {
  const headers = { ...((schema as { headers?: Record<string, unknown> }).headers ?? {}) };
  for (const name of names) headers[name] = { ...RESPONSE_HEADERS[name].schema, description: RESPONSE_HEADERS[name].description };
  return { ...schema, headers } as T;
}

/** A response schema with its description, headers and named examples. */
export function documented<T extends TSchema>(schema: T, doc: ResponseDoc): T {
  const names: ResponseHeader[] = ['X-Request-Id', ...(doc.headers ?? [])];
  const headers = Object.fromEntries(names.map((name) => [name, { ...RESPONSE_HEADERS[name].schema, description: RESPONSE_HEADERS[name].description }]));
  return { ...schema, 'x-response-description': doc.description, headers, ...(doc.examples === undefined ? {} : { 'x-examples': doc.examples }) } as T;
}

/** A request body schema with named examples. */
export function withExamples<T extends TSchema>(schema: T, examples: Examples): T {
  return { ...schema, 'x-examples': examples } as T;
}

/** How one dialect documents its errors: a description and an example per status (and its own schema where the shape differs, as FastAPI's 422 does). */
export interface ErrorDocs {
  schema: TSchema;
  byStatus: Readonly<Record<number, { description: string; examples: Examples; schema?: TSchema; headers?: readonly ResponseHeader[] }>>;
}

/**
 * The error responses of a route: each status with the dialect's description and example, or
 * the route's own (`overrides`), which say what the status means for that route. 503 carries
 * `Retry-After`, as does an idempotent route's 409 (its key in use); every error of an idempotent route may be a replay except 5xx, which are never stored.
 */
export function errorResponses(docs: ErrorDocs, statuses: readonly number[], options: { idempotent?: boolean; overrides?: Readonly<Record<number, Partial<ResponseDoc>>> } = {}): Record<number, TSchema> {
  const entries = statuses.map((status) => {
    const base = docs.byStatus[status];
    if (base === undefined) throw new Error(`no documentation for error status ${status}`);
    const override = options.overrides?.[status] ?? {};
    const headers: ResponseHeader[] = [...(base.headers ?? [])];
    if (options.idempotent === true && status < 500) headers.push('Idempotent-Replayed');
    // A keyed request's 409 IDEMPOTENCY_KEY_IN_USE says when to ask again for the answer.
    if (status === 503 || status === 429 || (options.idempotent === true && status === 409)) headers.push('Retry-After');
    return [status, documented(base.schema ?? docs.schema, { description: override.description ?? base.description, examples: override.examples ?? base.examples, headers })] as const;
  });
  return Object.fromEntries(entries);
}

/**
 * An answer a route may give that none of its handlers writes (a fault rule's `error`), documented
 * on every route it can come from by `withExtraAnswers`.
 */
export interface ExtraAnswer {
  status: number;
  /** The response's description where the route documents no such status. */
  description: string;
  /** A sentence appended to the description where it does. */
  also: string;
  /** Its example, under `name` (left out where an example of the status has the same value). */
  name: string;
  example: Example;
  /** Its own headers. */
  headers: readonly ResponseHeader[];
  /** Its body's schema where the route documents no such status and it is not the dialect's error schema (FastAPI's 422). */
  schema?: TSchema;
}

type DocumentedSchema = TSchema & { headers?: Record<string, unknown>; 'x-response-description'?: string; 'x-examples'?: Examples };

/**
 * A route's documented responses (`schema.response`, each made by `documented`) with `answers`:
 * a status the route does not document gets its own response in `errorSchema` (the dialect's),
 * with the answer's headers and those every documented response of the route has (X-Request-Id,
 * FluxPay's RateLimit-*: what the route's hooks put on every answer, this one included); a status
 * it documents keeps its schema and gets the answer's headers, example and sentence. `everyAnswer`:
 * headers any answer of the route may carry. The schemas passed in are left as they are.
 */
export function withExtraAnswers(response: Readonly<Record<string, TSchema>>, errorSchema: TSchema, answers: readonly ExtraAnswer[], everyAnswer: readonly ResponseHeader[]): Record<string, TSchema> {
  const documentedResponses = Object.values(response) as DocumentedSchema[];
  const headerSets = documentedResponses.map((schema) => Object.keys(schema.headers ?? {}));
  const common = (headerSets[0] ?? ['X-Request-Id']).filter((name): name is ResponseHeader => name in RESPONSE_HEADERS && headerSets.every((names) => names.includes(name)));
  const out: Record<string, TSchema> = { ...response };
  for (const answer of answers) {
    const key = String(answer.status);
    const existing = out[key] as DocumentedSchema | undefined;
    if (existing === undefined) {
      const schema = documented(answer.schema ?? errorSchema, { description: answer.description, examples: { [answer.name]: answer.example } });
      out[key] = withHeaders(schema, [...answer.headers, ...common.filter((name) => name !== 'X-Request-Id')]);
      continue;
    }
    const examples = existing['x-examples'] ?? {};
    const known = Object.values(examples).some((e) => isDeepStrictEqual(e.value, answer.example.value));
    const missing = answer.headers.filter((name) => !(name in (existing.headers ?? {})));
    out[key] = withHeaders(
      { ...existing, 'x-response-description': `${existing['x-response-description'] ?? ''} ${answer.also}`.trim(), 'x-examples': known ? examples : { ...examples, [answer.name]: answer.example } },
      missing,
    );
  }
  return Object.fromEntries(Object.entries(out).map(([status, schema]) => [status, withHeaders(schema, everyAnswer)]));
}

// --- the document as a whole ---

type Json = Record<string, unknown>;

/** Keywords whose value is a schema, or a list or map of schemas (JSON Schema 2020-12). */
const SCHEMA_KEYWORDS = ['items', 'additionalProperties', 'propertyNames', 'not', 'contains', 'if', 'then', 'else', 'unevaluatedProperties', 'unevaluatedItems'];
const SCHEMA_LIST_KEYWORDS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SCHEMA_MAP_KEYWORDS = ['properties', 'patternProperties', '$defs', 'dependentSchemas'];

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Moves every schema with a `title` to `components.schemas` under that title and refers to it,
 * innermost first. Two different schemas with one title are a mistake in the route schemas, and
 * fail the document's generation.
 */
function hoist(schema: unknown, components: Json): unknown {
  if (!isObject(schema) || typeof schema.$ref === 'string') return schema;
  const out: Json = { ...schema };
  for (const keyword of SCHEMA_KEYWORDS) if (isObject(out[keyword])) out[keyword] = hoist(out[keyword], components);
  for (const keyword of SCHEMA_LIST_KEYWORDS) if (Array.isArray(out[keyword])) out[keyword] = (out[keyword] as unknown[]).map((s) => hoist(s, components));
  for (const keyword of SCHEMA_MAP_KEYWORDS) {
    if (isObject(out[keyword])) out[keyword] = Object.fromEntries(Object.entries(out[keyword]).map(([name, s]) => [name, hoist(s, components)]));
  }
  const title = out.title;
  if (typeof title !== 'string') return out;
  const existing = components[title];
  if (existing !== undefined && !isDeepStrictEqual(existing, out)) throw new Error(`two different schemas are titled ${JSON.stringify(title)}`);
  components[title] = out;
  return { $ref: `#/components/schemas/${title}` };
}

function hoistMedia(content: unknown, components: Json): void {
  if (!isObject(content)) return;
  for (const media of Object.values(content)) if (isObject(media) && media.schema !== undefined) media.schema = hoist(media.schema, components);
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

function operationsOf(pathItems: unknown): Json[] {
  if (!isObject(pathItems)) return [];
  return Object.values(pathItems).flatMap((item) => (isObject(item) ? METHODS.map((m) => item[m]).filter(isObject) : []));
}

/**
 * The finishing touches @fastify/swagger cannot express per route: named component schemas, a
 * request body that is optional when none of its fields is required (a bodyless POST works), and
 * the `webhooks` the dialects send.
 */
/** The request header that picks a namespace (issue 15), as every dialect's operation takes it. */
const NAMESPACE_PARAMETER: Json = {
  name: 'x-sim-namespace',
  in: 'header',
  required: false,
  description:
    'The namespace the request acts in: each is a simulator of its own (payments, bookings, seat maps, rules, webhook log, random stream), made when a request first names it, until it is reset (`DELETE /v1/sim/namespaces/{namespace}`). Without it, or with `default`: the default namespace. A name that breaks the pattern is a 400; more than NAMESPACES_MAX namespaces, a 409 `NAMESPACE_LIMIT`.',
  schema: { type: 'string', pattern: NAMESPACE_PATTERN },
  // `default` first: Swagger UI and Postman fill the first example in, which must not move a try-out elsewhere.
  examples: { default: { summary: 'The default namespace (the same as no header)', value: 'default' }, ci_job: { summary: 'A CI job of its own', value: 'ci-job-1842' } },
};

export function finishDocument(document: Json, webhooks: Json, namespaced: (path: string) => boolean = () => false): Json {
  const components = isObject(document.components) ? document.components : {};
  // Every dialect's operation takes X-Sim-Namespace (one parameter, referenced).
  if (isObject(document.paths)) {
    for (const [path, item] of Object.entries(document.paths)) {
      if (!namespaced(path) || !isObject(item)) continue;
      for (const operation of Object.values(item)) {
        if (!isObject(operation)) continue;
        operation.parameters = [...(Array.isArray(operation.parameters) ? operation.parameters : []), { $ref: '#/components/parameters/Namespace' }];
      }
    }
  }
  const schemas: Json = isObject(components.schemas) ? { ...components.schemas } : {};
  const finished: Json = { ...document, ...(Object.keys(webhooks).length > 0 ? { webhooks: JSON.parse(JSON.stringify(webhooks)) as Json } : {}) };
  for (const operation of operationsOf(finished.paths)) {
    const body = operation.requestBody;
    const media = isObject(body) && isObject(body.content) ? Object.values(body.content)[0] : undefined;
    const required = isObject(media) && isObject(media.schema) ? media.schema.required : undefined;
    if (isObject(body) && (!Array.isArray(required) || required.length === 0)) body.required = false;
  }
  for (const operation of [...operationsOf(finished.paths), ...operationsOf(finished.webhooks)]) {
    if (isObject(operation.requestBody)) hoistMedia(operation.requestBody.content, schemas);
    if (isObject(operation.responses)) {
      for (const response of Object.values(operation.responses)) {
        if (!isObject(response)) continue;
        hoistMedia(response.content, schemas);
        const documentedHeaders = response.headers;
        if (isObject(documentedHeaders)) {
          response.headers = Object.fromEntries(Object.entries(documentedHeaders).map(([name, h]) => [name, name in RESPONSE_HEADERS ? { $ref: `#/components/headers/${name}` } : h]));
        }
      }
    }
  }
  const sorted = Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b)));
  const headers = Object.fromEntries(Object.entries(RESPONSE_HEADERS).map(([name, h]) => [name, { description: h.description, schema: h.schema }]));
  // A fresh copy: shared objects would come out of the YAML as anchors and aliases.
  const parameters = { ...(isObject(components.parameters) ? components.parameters : {}), Namespace: NAMESPACE_PARAMETER };
  return JSON.parse(JSON.stringify({ ...finished, components: { ...components, schemas: sorted, headers, parameters } })) as Json;
}
