import { readFileSync } from 'node:fs';
import swagger, { type SwaggerTransform } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { TSchema } from 'typebox';
import { renderedBody, type ErrorShape } from '../../http/error-handler.ts';
import { PARAMETER_TOO_LONG_MESSAGE } from '../../http/problem.ts';
import { EXAMPLE_TRACE_ID, finishDocument, SECURITY, withExtraAnswers, type Examples, type ExtraAnswer } from '../../http/openapi.ts';
import { MAX_URL_LENGTH } from '../app/request-context.ts';
import { faultAnswers, shapedByFaults } from '../app/fault-hooks.ts';
import { namespaceAnswers } from '../app/namespaces.ts';
import { legacySigner } from '../../webhooks/signers/legacy.ts';
import { standardSigner } from '../../webhooks/signers/standard.ts';
import { stripeSigner } from '../../webhooks/signers/stripe.ts';

/**
 * The OpenAPI document, generated from the route schemas (@fastify/swagger), and Swagger UI at
 * the root (@fastify/swagger-ui): opening the simulator's address in a browser shows its API,
 * with "Authorize" for the bearer token and the `x-user-id` header. Dialects add the webhooks
 * they send with `app.apiDocs.webhook(…)`; the document is rendered once, on first request.
 */

const PACKAGE = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string; homepage?: string };

/** The document's `info.version`: the package's version. */
export const API_VERSION = PACKAGE.version;

/** Signature headers, by scheme: which WEBHOOK_SIGNATURE_SCHEMES entry sends them. */
const SIGNATURE_HEADERS: ReadonlyArray<{ name: string; scheme: string; description: string }> = [
  { name: 'webhook-id', scheme: 'standard', description: 'Standard Webhooks: the event id, the same on every retry and replay (de-duplicate on it).' },
  { name: 'webhook-timestamp', scheme: 'standard', description: 'Standard Webhooks: unix seconds of this attempt.' },
  { name: 'webhook-signature', scheme: 'standard', description: 'Standard Webhooks: `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`; space-separated, one per secret during a rotation (WEBHOOK_SECRET_PREVIOUS).' },
  { name: 'x-webhook-id', scheme: 'legacy', description: 'Source document 000: the event id.' },
  { name: 'x-timestamp', scheme: 'legacy', description: 'Source document 000: epoch milliseconds of this attempt.' },
  { name: 'x-signature', scheme: 'legacy', description: 'Source document 000: `sha256=<hex HMAC-SHA256 of the body followed by x-timestamp>`; comma-separated during a rotation.' },
  { name: 'stripe-signature', scheme: 'stripe', description: 'Stripe’s scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, one `v1` per secret.' },
];

/**
 * The header examples are real signatures of the example body, made with this secret at this
 * time: a receiver's verification code can be checked against them.
 */
export const EXAMPLE_WEBHOOK_SECRET = 'whsec_cGF5c2ltLWV4YW1wbGUtc2VjcmV0LTEyMzQ1Njc4';
export const EXAMPLE_WEBHOOK_TIME = Date.parse('2026-11-30T09:00:00.200Z');
const exampleSigners = [standardSigner([EXAMPLE_WEBHOOK_SECRET]), legacySigner([EXAMPLE_WEBHOOK_SECRET]), stripeSigner([EXAMPLE_WEBHOOK_SECRET])];

/** A header of a webhook with a scheme of its own, and its value for the first example body. */
export interface WebhookHeaderDoc {
  name: string;
  description: string;
  example: string;
  required: boolean;
}

export interface WebhookDoc {
  summary: string;
  description: string;
  /** The API whose clients receive it: its tag. */
  tag: string;
  payload: TSchema;
  examples: Examples;
  /**
   * The headers of a webhook that is not signed with WEBHOOK_SIGNATURE_SCHEMES (the Payment
   * Server v3 API's callback), with their example values; `signing` says how it is signed.
   */
  headers?: readonly WebhookHeaderDoc[];
  signing?: string;
}

export interface ApiDocs {
  /** Documents a webhook a dialect sends, under the document's `webhooks`. */
  webhook(event: string, doc: WebhookDoc): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    apiDocs: ApiDocs;
  }
}

/** The signature headers of WEBHOOK_SIGNATURE_SCHEMES, with the real signatures of the first example body. */
function schemeHeaders(event: string, doc: WebhookDoc): Array<Record<string, unknown>> {
  const example = Object.values(doc.examples)[0]?.value as { id?: string } | undefined;
  if (example === undefined || typeof example.id !== 'string') throw new Error(`the ${event} webhook needs an example with an id`);
  const signed: Record<string, string> = {};
  for (const signer of exampleSigners) Object.assign(signed, signer.headers(example.id, JSON.stringify(example), EXAMPLE_WEBHOOK_TIME));
  return SIGNATURE_HEADERS.map((h) => ({
    name: h.name,
    in: 'header',
    required: false,
    description: `${h.description} Sent when WEBHOOK_SIGNATURE_SCHEMES includes \`${h.scheme}\`.`,
    schema: { type: 'string' },
    example: signed[h.name],
  }));
}

function webhookPathItem(event: string, doc: WebhookDoc): Record<string, unknown> {
  const ownHeaders = doc.headers;
  const parameters =
    ownHeaders === undefined
      ? schemeHeaders(event, doc)
      : ownHeaders.map((h) => ({ name: h.name, in: 'header', required: h.required, description: h.description, schema: { type: 'string' }, example: h.example }));
  const signing =
    ownHeaders === undefined
      ? 'Sent as `POST` with `content-type: application/json`, signed with the schemes of WEBHOOK_SIGNATURE_SCHEMES (default `standard,legacy`), with a W3C `traceparent`.'
      : (doc.signing ?? '');
  const time = ownHeaders === undefined ? ` at ${new Date(EXAMPLE_WEBHOOK_TIME).toISOString()}` : '';
  return {
    post: {
      operationId: `webhook_${event.replace(/[^A-Za-z0-9]+/g, '_')}`,
      summary: doc.summary,
      description: [
        doc.description,
        signing,
        `The header examples are the real signatures of the first example body (its exact bytes, as \`JSON.stringify\` writes it) with the example secret \`${EXAMPLE_WEBHOOK_SECRET}\`${time}: check your verification code against them.`,
      ].join('\n\n'),
      tags: [doc.tag],
      parameters,
      requestBody: { required: true, content: { 'application/json': { schema: JSON.parse(JSON.stringify(doc.payload)) as unknown, examples: doc.examples } } },
      responses: {
        '2XX': { description: 'Received: the delivery is done.' },
        '410': { description: 'Gone: the delivery ends `gone` and the URL is disabled (no more deliveries to it) until re-enabled or replayed.' },
        default: {
          description:
            'Anything else (or a timeout after WEBHOOK_TIMEOUT_MS, or a refused connection) is retried with exponential backoff and jitter, WEBHOOK_MAX_RETRIES times; a `Retry-After` on 429 or 503 sets the wait.',
        },
      },
    },
  };
}

/** Fastify's default `maxParamLength`: a longer path parameter is a 414 (src/http/problem.ts). */
const MAX_PARAM_LENGTH = 100;

/**
 * The 414s every route may answer before it runs, in `shape`: a URL too long
 * (plugins/app/request-context.ts) and, on a route with path parameters, one of them too long (the
 * router's, src/http/problem.ts).
 */
function uriTooLongAnswers(shape: ErrorShape, hasParams: boolean, elsewhere: ErrorShape | undefined): ExtraAnswer[] {
  // FluxPay's payment read shares `/api/v1/payments` with the payment service: a key not of its
  // form is the payment service's path, and so is its 414.
  // A `pk_…` path is FluxPay's whatever follows (its 414 is FluxPay's: a user test found the document said otherwise).
  const other = elsewhere === undefined ? '' : ` A parameter that does not start with \`pk_\` is a path of the ${elsewhere.name} API's, answered in its shape: \`${JSON.stringify(renderedBody(elsewhere, { status: 414, code: 'URI_TOO_LONG', message: PARAMETER_TOO_LONG_MESSAGE }, EXAMPLE_TRACE_ID))}\`.`;
  const what = `The request URL is longer than ${MAX_URL_LENGTH} characters${hasParams ? `, or a path parameter longer than ${MAX_PARAM_LENGTH}` : ''}: nothing was done.${other}`;
  const answer = (name: string, summary: string, message: string, also: string): ExtraAnswer => ({
    status: 414,
    description: what,
    also,
    name,
    example: { summary, value: renderedBody(shape, { status: 414, code: 'URI_TOO_LONG', message }, EXAMPLE_TRACE_ID) },
    headers: [],
  });
  const url = answer('uri_too_long', 'A URL too long', `The request URL is longer than ${MAX_URL_LENGTH} characters.`, `Also: ${what}`);
  return hasParams ? [url, answer('parameter_too_long', 'A path parameter too long', PARAMETER_TOO_LONG_MESSAGE, '')] : [url];
}

/** A route's path with each `:name` parameter replaced by the first example of its schema (else `x`). */
function examplePath(url: string, params: unknown): string {
  const properties = (params as { properties?: Record<string, { examples?: unknown[] }> } | undefined)?.properties ?? {};
  return url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_match, name: string) => {
    const example = properties[name]?.examples?.[0];
    return typeof example === 'string' ? example : 'x';
  });
}

export interface SwaggerOptions {
  /** Where clients reach the service: the document's `servers`. */
  publicUrl: string;
  /** NAMESPACES_MAX, for the example of the 409 NAMESPACE_LIMIT. */
  namespacesMax: number;
}

export async function registerSwagger(app: FastifyInstance, options: SwaggerOptions): Promise<void> {
  const webhooks: Record<string, unknown> = {};
  app.decorate('apiDocs', {
    webhook(event: string, doc: WebhookDoc) {
      if (event in webhooks) throw new Error(`webhook ${event} is documented twice`);
      webhooks[event] = webhookPathItem(event, doc);
    },
  } satisfies ApiDocs);

  // Answers a route may give that none of its handlers writes, documented on every route they can
  // come from; added to the route's swaggerTransform (after its own, when it has one). The dialect
  // whose shape they take is the one that owns the documented path with its parameters' examples
  // in it, as it is for a request (FluxPay's `/api/v1/payments/pk_…` is one route with the payment
  // service's other paths under it).
  // - Every route: the 414 of a URL too long (and of a path parameter too long, where it has one),
  //   answered at the door in its dialect's shape (before 2026-12-05 documented on none).
  // - Every route fault rules shape (shapedByFaults: the fault hooks' own test): what an `error`
  //   rule answers on it, and that any of its answers may carry X-Sim-Rule; the simulator's own
  //   routes do not.
  app.addHook('onRoute', (route) => {
    const own = route.config?.swaggerTransform;
    if (own === false || route.schema?.hide === true) return;
    const faulted = app.faults !== null && shapedByFaults(route, app.errorShapes);
    // The router's own pattern decides: a wildcard route (/api/v2/payments/*, documented with a
    // parameter by its own transform) has no parameter the router could find too long.
    const hasParams = /:[A-Za-z_]/.test(route.url);
    const transform: SwaggerTransform = (input) => {
      const out = own === undefined ? { schema: input.schema, url: input.url } : own(input);
      const response = out.schema.response as Record<string, TSchema> | undefined;
      if (response === undefined) return out;
      const path = examplePath(out.url, out.schema.params);
      const shape = app.errorShapes.forUrl(path);
      const owner = app.errorShapes.ownerOf(path);
      // A parameter of none of this route's forms: the path of whichever API owns it then.
      const other = hasParams ? app.errorShapes.forUrl(out.url.replace(/:[A-Za-z_][A-Za-z0-9_]*/g, '~'.repeat(MAX_PARAM_LENGTH + 1))) : shape;
      // A dialect's route (one the namespace hook sees): its answers to X-Sim-Namespace.
      const namespaced = owner === undefined ? [] : namespaceAnswers(shape, options.namespacesMax);
      const answers = [...uriTooLongAnswers(shape, hasParams, other === shape ? undefined : other), ...namespaced, ...(faulted && owner !== undefined ? faultAnswers(owner) : [])];
      return { ...out, schema: { ...out.schema, response: withExtraAnswers(response, shape.schema, answers, faulted ? ['X-Sim-Rule'] : []) } };
    };
    route.config = { ...route.config, swaggerTransform: transform };
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'paysim',
        version: API_VERSION,
        summary: 'A payment simulator for reservation and ticketing systems',
        description:
          'paysim stands in for a payment gateway in local stacks, CI and load tests. It speaks several real APIs so their clients work unchanged: the native payment-intent API (`/v1/sim`), the bookings API, the ticketing payment-service API, the Payment Server v3 API (`/api/v2`) and the FluxPay engine API (orders, payments, credits, usage sagas, the outbox). Outcomes follow the scenario or the card data; results arrive as signed, retried webhooks.\n\nEvery error comes back in the shape of the API that owns the path. Every POST that creates something accepts an `Idempotency-Key`. A method a path does not take is answered `405` with `Allow` (the methods it takes), in that shape too: OpenAPI has no operation to list it on. Every operation lists `414`: a URL longer than 8,192 characters (and, on the operations whose `414` says so, a path parameter longer than 100) is refused before any route runs. A body sent to an operation that takes none is read all the same: one larger than BODY_LIMIT_BYTES is `413`, one that is not JSON (or is encoded, `Content-Encoding`) `415`, in the shape of the API.',
        contact: { name: 'paysim maintainers' },
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: options.publicUrl, description: 'This simulator (PUBLIC_URL)' }],
      tags: [
        { name: 'intents', description: 'The native payment-intent API (/v1/sim)' },
        { name: 'webhooks', description: 'Webhook deliveries of every API: log, replay, test sends, disabled URLs' },
        { name: 'faults', description: 'Fault rules (/v1/sim/rules): latency, errors, lost answers, time-outs and forced outcomes for every API, and duplicated, reordered, delayed or dropped webhooks' },
        { name: 'reports', description: 'The run report (/v1/sim/report): every payment of every dialect, its webhooks and totals, as JSON or CSV' },
        { name: 'namespaces', description: 'Namespaces (X-Sim-Namespace): isolated simulators in one process, listed and reset' },
        { name: 'operations', description: 'Health, readiness and metrics' },
        { name: 'bookings', description: 'The bookings API (source document 003): seat holds, card payments, the events inbox and the ledger; every route needs `x-user-id`' },
        { name: 'payment-service', description: 'The ticketing payment-service API (source document 004): /api/v1/payments/* behind a JWT, and /health' },
        {
          name: 'payment-server-v2',
          description: 'The Payment Server v3 API (source document 001): /api/v2 payments auto-completed with a signed callback (`X-Payment-Signature`), the payment list and manual confirm; errors in FastAPI’s shape',
        },
        {
          name: 'fluxpay',
          description:
            'The FluxPay engine API (source document 002): orders, PG payments, prepaid credits, usage events run as sagas with compensation, the transactional outbox and its webhook subscribers, the reconciliation. Every answer is `{isSuccess, code, message, result}`; under /api/v1/payments FluxPay owns `/api/v1/payments`, `/confirm` and `/{paymentKey}` (pk_…), the payment service every other path',
        },
      ],
      components: {
        securitySchemes: {
          [SECURITY.bearer]: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'An HS256 JWT signed with JWT_SECRET; the user is its `userId` claim, else `sub`. `make token USER=user_test_001` prints one.',
          },
          [SECURITY.user]: { type: 'apiKey', in: 'header', name: 'x-user-id', description: 'The caller of the bookings API (1–128 characters), e.g. `user_test_001`.' },
          [SECURITY.service]: {
            type: 'http',
            scheme: 'bearer',
            description: 'SERVICE_AUTH_TOKEN, for /api/v2 when the service runs with V2_REQUIRE_AUTH=true (otherwise no token is needed).',
          },
        },
      },
    },
    transformObject: (generated) => {
      if (!('openapiObject' in generated)) throw new Error('an OpenAPI 3 document was expected');
      const namespaced = (path: string): boolean => app.errorShapes.ownerOf(path.replace(/\{[^}]+\}/g, 'x')) !== undefined;
      return finishDocument(generated.openapiObject as Record<string, unknown>, webhooks, namespaced) as typeof generated.openapiObject;
    },
  });
  await app.register(swaggerUi, { routePrefix: '/', uiConfig: { persistAuthorization: false, displayOperationId: true } });
  app.get('/docs', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/'));
}
