import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { parse as parseYaml } from 'yaml';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_PATH, renderOpenApiYaml } from '../../scripts/openapi.ts';
import { DELIVERED_BOOKING_EVENTS } from '../../src/dialects/bookings/webhook-payload.ts';
import { DELIVERED_PAYMENT_EVENTS } from '../../src/dialects/native/webhook-payload.ts';
import { OUTBOX_EVENT_TYPES } from '../../src/core/fluxpay/model.ts';
import { EXAMPLE_WEBHOOK_SECRET } from '../../src/plugins/external/swagger.ts';
import { EXAMPLE_TRACE_ID } from '../../src/http/openapi.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

interface Media {
  schema?: Record<string, unknown>;
  examples?: Record<string, { value: unknown }>;
}
interface Operation {
  operationId?: string;
  tags?: string[];
  summary?: string;
  description?: string;
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string; example?: unknown }>;
  requestBody?: { required?: boolean; content?: Record<string, Media> };
  responses?: Record<string, { description?: string; headers?: Record<string, unknown>; content?: Record<string, Media> }>;
}
interface Document {
  openapi: string;
  info: Record<string, unknown>;
  servers: unknown[];
  paths: Record<string, Record<string, Operation>>;
  webhooks: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Record<string, unknown>>; headers: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

/** The examples of the answers to a bad X-Sim-Namespace or X-Client-Id, which every operation (every FluxPay one) lists. */
const HEADER_ANSWERS = ['bad_namespace', 'bad_client_id'];

const PACKAGE = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('OpenAPI document', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => {
    await t.app.close();
  });

  it('the committed openapi/payment-sim.yaml matches the routes', async () => {
    const committed = await readFile(OPENAPI_PATH, 'utf8').catch(() => '');
    const fresh = await renderOpenApiYaml();
    // Compared as a boolean first so a stale file fails with the fix, not a 1,700-line diff.
    expect(committed === fresh, 'openapi/payment-sim.yaml is stale: run make openapi').toBe(true);
  });

  it('the YAML reads the same to a YAML 1.1 reader (PyYAML, SnakeYAML) as to a 1.2 one, and as the served JSON (2026-12-05: 287 date-times and two `n`s were read as dates and false)', async () => {
    const text = await readFile(OPENAPI_PATH, 'utf8');
    const asServed = (await t.app.inject({ url: '/openapi.json' })).json<{ servers: unknown }>();
    const read12 = parseYaml(text) as { servers: unknown };
    expect(parseYaml(text, { version: '1.1' })).toEqual(read12);
    expect({ ...read12, servers: asServed.servers }).toEqual(asServed);
  });

  it('GET /openapi.json serves an OpenAPI 3.1 document with every route', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const doc = res.json<Document>();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'paysim', version: PACKAGE.version, contact: { name: 'paysim maintainers' } });
    expect(doc.servers).toEqual([{ url: 'http://localhost:8080', description: 'This simulator (PUBLIC_URL)' }]);

    const routes = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
    expect(routes.sort()).toEqual(
      [
        'GET /healthz', 'GET /readyz', 'GET /metrics',
        'POST /v1/sim/intent', 'GET /v1/sim/intents/{id}', 'GET /v1/sim/intents', 'POST /v1/sim/intents/{id}/cancel', 'POST /v1/sim/intents/{id}/refund',
        'GET /v1/sim/webhooks/deliveries', 'POST /v1/sim/webhooks/deliveries/{id}/replay', 'POST /v1/sim/webhook/test', 'GET /v1/sim/webhooks/disabled-urls', 'DELETE /v1/sim/webhooks/disabled-urls',
        'POST /v1/sim/rules', 'GET /v1/sim/rules', 'GET /v1/sim/rules/{id}', 'DELETE /v1/sim/rules/{id}', 'DELETE /v1/sim/rules', 'GET /v1/sim/report', 'GET /v1/sim/namespaces', 'DELETE /v1/sim/namespaces/{namespace}',
        'POST /bookings', 'POST /payments/execute', 'GET /bookings/my', 'DELETE /bookings/my', 'GET /performances', 'GET /performances/{id}/seats', 'GET /events', 'GET /ledger', 'GET /ledger/balances',
        'GET /api/v1/payments/methods', 'POST /api/v1/payments/process', 'GET /health',
        'POST /api/v2/payments', 'POST /api/v2/confirm-payment', 'GET /api/v2/pending-payments', 'GET /api/v2/payments/{payment_id}',
        'POST /api/v1/orders', 'GET /api/v1/orders', 'GET /api/v1/orders/{orderId}', 'POST /api/v1/orders/{orderId}/cancel',
        'POST /api/v1/payments', 'POST /api/v1/payments/confirm', 'GET /api/v1/payments/{paymentKey}',
        'GET /api/v1/credits/balance', 'POST /api/v1/credits/charge', 'POST /api/v1/credits/use', 'POST /api/v1/credits/refund', 'GET /api/v1/credits/transactions',
        'POST /api/v1/events', 'GET /api/v1/sagas/{sagaId}', 'GET /api/v1/outbox', 'POST /api/v1/webhook-subscriptions', 'GET /api/v1/webhook-subscriptions', 'GET /api/v1/webhook-subscriptions/{subscriptionId}', 'DELETE /api/v1/webhook-subscriptions/{subscriptionId}', 'GET /api/v1/reconciliation',
        'PUT /api/v1/waiting-rooms/{roomId}', 'GET /api/v1/waiting-rooms/{roomId}', 'POST /api/v1/waiting-rooms/{roomId}/enter', 'GET /api/v1/waiting-rooms/{roomId}/tickets/{ticket}',
        'GET /api/v1/subscriptions/plans', 'POST /api/v1/subscriptions', 'GET /api/v1/subscriptions', 'GET /api/v1/subscriptions/{subscriptionId}', 'GET /api/v1/subscriptions/{subscriptionId}/entitlements',
        'POST /api/v1/subscriptions/{subscriptionId}/cancel', 'POST /api/v1/subscriptions/{subscriptionId}/change-plan', 'POST /api/v1/subscriptions/{subscriptionId}/card',
      ].sort(),
    );
    // Hidden routes stay out of the document.
    expect(doc.paths['/openapi.json']).toBeUndefined();
    expect(doc.paths['/']).toBeUndefined();

    const create = doc.paths['/v1/sim/intent']!.post!;
    expect(create.requestBody).toMatchObject({ required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/CreateIntentRequest' } } } });
    expect(doc.components.schemas.CreateIntentRequest).toMatchObject({ type: 'object', additionalProperties: false, required: ['reservation_id', 'amount'] });
    // 429, 502 and 504 are a fault rule's answers (500 and 503 the route's own too); 414 a URL too long, answered at the door.
    expect(Object.keys(create.responses ?? {})).toEqual(['200', '400', '409', '413', '414', '415', '422', '429', '500', '502', '503', '504']);
    expect(create.responses!['414']).toMatchObject({
      description: 'The request URL is longer than 8192 characters: nothing was done.',
      content: { 'application/json': { examples: { uri_too_long: { value: { error: { code: 'URI_TOO_LONG', message: 'The request URL is longer than 8192 characters.' } } } } } },
    });
    // Each dialect's shape; a route with a path parameter says that a long one is refused too.
    expect(doc.paths['/api/v1/orders/{orderId}']!.get!.responses!['414']).toMatchObject({
      description: 'The request URL is longer than 8192 characters, or a path parameter longer than 100: nothing was done.',
      content: { 'application/json': { examples: { uri_too_long: { value: { isSuccess: false, code: 'COMMON_414', message: 'The request URL is longer than 8192 characters.', result: null } } } } },
    });
    // FluxPay's payment read shares /api/v1/payments with the payment service: a key not of its form
    // is the payment service's path, and its 414 is in that shape, as its description says (2026-12-05).
    const paymentRead = doc.paths['/api/v1/payments/{paymentKey}']!.get!.responses!['414']!;
    const serviceShape = { error: '요청 URI가 너무 깁니다.' };
    expect(paymentRead.description).toBe(
      `The request URL is longer than 8192 characters, or a path parameter longer than 100: nothing was done. A parameter that does not start with \`pk_\` is a path of the payment-service API's, answered in its shape: \`${JSON.stringify(serviceShape)}\`.`,
    );
    const notPk = await t.app.inject({ url: `/api/v1/payments/${'x'.repeat(101)}` });
    expect([notPk.statusCode, notPk.json()]).toEqual([414, serviceShape]);
    // Only there: the orders' read has no other owner.
    expect(doc.paths['/api/v1/orders/{orderId}']!.get!.responses!['414']!.description).not.toContain('form');
    expect(doc.paths['/api/v2/payments']!.post!.responses!['414']!.content!['application/json']!.examples).toEqual({ uri_too_long: { summary: 'A URL too long', value: { detail: 'The request URL is longer than 8192 characters.' } } });
    // What is documented is what is answered.
    for (const [url, example] of [
      [`/api/v1/orders/ord_${'x'.repeat(200)}`, doc.paths['/api/v1/orders/{orderId}']!.get!.responses!['414']!.content!['application/json']!.examples!.parameter_too_long!.value],
      [`/api/v1/orders?userId=${'x'.repeat(8200)}`, doc.paths['/api/v1/orders']!.get!.responses!['414']!.content!['application/json']!.examples!.uri_too_long!.value],
      [`/v1/sim/intents?reservation_id=${'x'.repeat(8200)}`, doc.paths['/v1/sim/intents']!.get!.responses!['414']!.content!['application/json']!.examples!.uri_too_long!.value],
    ] as const) {
      const res = await t.app.inject({ url });
      expect(res.statusCode).toBe(414);
      expect(res.json()).toEqual(JSON.parse(JSON.stringify(example).replaceAll(EXAMPLE_TRACE_ID, res.json().error?.trace_id ?? EXAMPLE_TRACE_ID)));
    }
  });

  it('every /v1/sim operation without query parameters documents the 400 of one sent anyway, with the answer it gets (2026-12-05)', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/sim')) continue;
      for (const [method, op] of Object.entries(item)) {
        if ((op.parameters ?? []).some((p) => p.in === 'query')) continue;
        checked++;
        const example = op.responses?.['400']?.content?.['application/json']?.examples?.unknown_query?.value as { error: { trace_id: string } } | undefined;
        expect(example, `${method.toUpperCase()} ${path}`).toBeDefined();
        const url = `${path.replace(/\{[^}]+\}/g, 'x')}?limit=2`;
        // A body that passes (its first example), so the query is what is refused.
        const bodyExamples = (op.requestBody as { content?: Record<string, { examples?: Record<string, { value?: unknown }> }> } | undefined)?.content?.['application/json']?.examples;
        const payload = Object.values(bodyExamples ?? {})[0]?.value;
        const res = await t.app.inject({ method: method.toUpperCase() as 'GET', url, ...(payload === undefined ? {} : { payload: payload as object }) });
        expect([url, res.statusCode, res.json()]).toEqual([url, 400, { ...example, error: { ...example!.error, trace_id: res.json().error.trace_id } }]);
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('every operation with a path parameter: a parameter of 101 characters (its example made longer) is answered as its 414 example says, or not a 414 where none is documented (2026-12-05: the /api/v2 payment read, a wildcard route, documented one it never answers)', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    const problems: string[] = [];
    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.includes('{')) continue;
      for (const [method, op] of Object.entries(item)) {
        let first = true;
        const url = path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
          const param = (op.parameters ?? []).find((p) => p.in === 'path' && p.name === name) as { example?: unknown; schema?: { examples?: unknown[] } } | undefined;
          const example = String(param?.schema?.examples?.[0] ?? param?.example ?? 'x');
          const value = first ? example + 'x'.repeat(101) : example;
          first = false;
          return value;
        });
        const res = await t.app.inject({ method: method.toUpperCase() as 'GET', url, headers: { 'x-user-id': 'user_test_001' } });
        const documented = op.responses?.['414']?.content?.['application/json']?.examples?.parameter_too_long?.value;
        checked++;
        if (documented === undefined) {
          if (res.statusCode === 414) problems.push(`${method.toUpperCase()} ${path}: 414 not documented as parameter_too_long`);
          continue;
        }
        const body = res.json() as { error?: { trace_id?: string } };
        const expected = JSON.parse(JSON.stringify(documented).replaceAll(EXAMPLE_TRACE_ID, body.error?.trace_id ?? EXAMPLE_TRACE_ID));
        if (res.statusCode !== 414 || !isDeepStrictEqual(body, expected)) problems.push(`${method.toUpperCase()} ${path}: ${res.statusCode} ${res.body}`);
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(problems).toEqual([]);
  });

  it('every operation that takes X-Sim-Namespace documents what a bad one and one too many are answered, and every FluxPay one a bad X-Client-Id, as they are answered (2026-12-07, a user test: 41 operations listed no 409, five no 400)', async () => {
    // NAMESPACES_MAX=0: any name but `default` is one too many, so nothing is made.
    const off = await buildTestApp({ NAMESPACES_MAX: '0' });
    try {
      const doc = (await off.app.inject({ url: '/openapi.json' })).json<Document>();
      const problems: string[] = [];
      let checked = 0;
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(item)) {
          if (!(op.parameters ?? []).some((p) => (p as { $ref?: string }).$ref === '#/components/parameters/Namespace')) continue;
          checked++;
          // Each path parameter its example (FluxPay's `pk_…` payment read is the payment service's path with another).
          const url = path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
            const param = (op.parameters ?? []).find((p) => p.in === 'path' && p.name === name) as { example?: unknown; schema?: { examples?: unknown[] } } | undefined;
            return String(param?.schema?.examples?.[0] ?? param?.example ?? 'x');
          });
          const fluxpay = op.tags?.includes('fluxpay') === true;
          for (const [header, value, name] of [
            ['x-sim-namespace', 'a b', 'bad_namespace'],
            ['x-sim-namespace', 'ci-1', 'namespace_limit'],
            ...(fluxpay ? ([['x-client-id', '!bad!', 'bad_client_id']] as const) : []),
          ] as const) {
            const documented = Object.entries(op.responses ?? {}).find(([, r]) => r.content?.['application/json']?.examples?.[name] !== undefined);
            if (documented === undefined) {
              problems.push(`${method.toUpperCase()} ${path}: no ${name} answer`);
              continue;
            }
            const [status, response] = documented;
            // A valid body (its first example), so the header is what is refused.
            const bodyExamples = (op.requestBody as { content?: Record<string, { examples?: Record<string, { value?: unknown }> }> } | undefined)?.content?.['application/json']?.examples;
            const payload = Object.values(bodyExamples ?? {})[0]?.value;
            const res = await off.app.inject({ method: method.toUpperCase() as 'GET', url, headers: { [header]: value }, ...(payload === undefined ? {} : { payload: payload as object }) });
            const body = res.json() as { error?: { trace_id?: string } };
            const example = response.content?.['application/json']?.examples?.[name]?.value;
            const expected = JSON.parse(JSON.stringify(example).replaceAll(EXAMPLE_TRACE_ID, body.error?.trace_id ?? EXAMPLE_TRACE_ID));
            if (String(res.statusCode) !== status || !isDeepStrictEqual(body, expected)) problems.push(`${method.toUpperCase()} ${path} ${header}: ${value}: ${res.statusCode} ${res.body}, documented ${status} ${JSON.stringify(example)}`);
          }
        }
      }
      expect(checked).toBeGreaterThan(60);
      expect(problems).toEqual([]);
    } finally {
      await off.app.close();
    }
  });

  it('every operation has an operationId, a summary, a description, and responses with descriptions, headers and content types', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    const problems: string[] = [];
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const name = `${method.toUpperCase()} ${path}`;
        if (typeof op.operationId !== 'string' || ids.has(op.operationId)) problems.push(`${name}: operationId`);
        ids.add(op.operationId ?? '');
        if (!op.summary) problems.push(`${name}: summary`);
        if (!op.description) problems.push(`${name}: description`);
        if (op.tags?.includes('fluxpay') === true && op.responses?.['429'] === undefined) problems.push(`${name}: 429`);
        if (op.tags?.includes('fluxpay') === true && !(op.parameters ?? []).some((p) => p.in === 'header' && p.name === 'x-client-id')) problems.push(`${name}: X-Client-Id`);
        const idempotent = (op.parameters ?? []).some((p) => p.name === 'idempotency-key');
        // A body can be too large or of another type (2026-12-05: the waiting room's PUT did not say 413).
        if (op.requestBody !== undefined) for (const status of ['413', '415']) if (op.responses?.[status] === undefined) problems.push(`${name}: ${status}`);
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          if (!response.description || response.description === 'Default Response') problems.push(`${name} ${status}: description`);
          const headers = Object.keys(response.headers ?? {});
          if (!headers.includes('X-Request-Id')) problems.push(`${name} ${status}: X-Request-Id`);
          // A 429, and a 414 answered at the door, are decided before the Idempotency-Key is looked at: never a replay.
          if (idempotent && Number(status) < 500 && status !== '429' && status !== '414' && !headers.includes('Idempotent-Replayed')) problems.push(`${name} ${status}: Idempotent-Replayed`);
          // FluxPay's routes are rate-limited (issue 12): every answer says where the client stands, a 429 when to come back.
          const fluxpay = op.tags?.includes('fluxpay') === true;
          if (fluxpay && !['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'].every((h) => headers.includes(h))) problems.push(`${name} ${status}: RateLimit-*`);
          if (!fluxpay && headers.some((h) => h.startsWith('RateLimit-'))) problems.push(`${name} ${status}: RateLimit-* on a route that is not rate-limited`);
          if (status === '429' && !headers.includes('Retry-After')) problems.push(`${name} ${status}: Retry-After`);
          // /readyz's 503 is a state (shutting down), not a refusal to retry.
          if (status === '503' && op.operationId !== 'getReadiness' && !headers.includes('Retry-After')) problems.push(`${name} ${status}: Retry-After`);
          // The run report answers JSON or (Accept: text/csv) CSV: one media type each; every other response has one.
          const contentTypes = Object.keys(response.content ?? {});
          const expectedTypes = op.operationId === 'getRunReport' && status === '200' ? ['application/json', 'text/csv'] : undefined;
          if (expectedTypes === undefined ? contentTypes.length !== 1 : contentTypes.join() !== expectedTypes.join()) problems.push(`${name} ${status}: content types ${contentTypes.join(', ')}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(Object.keys(doc.components.headers).sort()).toEqual(['Idempotent-Replayed', 'Link', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After', 'WWW-Authenticate', 'X-Next-Cursor', 'X-Request-Id', 'X-Sim-Rule']);
    expect(Object.keys(doc.paths['/api/v1/orders']!.post!.responses!['429']!.headers!)).toEqual(['X-Request-Id', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'X-Sim-Rule']);
    // A fault rule's 502 on a FluxPay route: what every answer of it carries, Retry-After, X-Sim-Rule.
    expect(Object.keys(doc.paths['/api/v1/orders']!.post!.responses!['502']!.headers!)).toEqual(['X-Request-Id', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'X-Sim-Rule']);
    expect(Object.keys(doc.paths['/api/v2/payments']!.post!.responses!['401']!.headers!)).toEqual(['X-Request-Id', 'WWW-Authenticate', 'Idempotent-Replayed', 'X-Sim-Rule']);
    expect(Object.keys(doc.paths['/metrics']!.get!.responses!['200']!.content!)).toEqual(['text/plain']);
    expect(Object.keys(doc.paths['/bookings/my']!.get!.responses!['200']!.headers!)).toEqual(['X-Request-Id', 'X-Next-Cursor', 'Link', 'X-Sim-Rule']);
  });

  it('declares bearer JWT and x-user-id as security schemes, and the routes that need them', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    expect(doc.components.securitySchemes).toEqual({
      bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: expect.any(String) },
      userId: { type: 'apiKey', in: 'header', name: 'x-user-id', description: expect.any(String) },
      serviceToken: { type: 'http', scheme: 'bearer', description: expect.any(String) },
    });
    // /api/v2 takes SERVICE_AUTH_TOKEN only with V2_REQUIRE_AUTH=true: no requirement, or the token.
    for (const [path, method] of [['/api/v2/payments', 'post'], ['/api/v2/confirm-payment', 'post'], ['/api/v2/pending-payments', 'get'], ['/api/v2/payments/{payment_id}', 'get']] as const) {
      expect(doc.paths[path]![method]!.security, path).toEqual([{}, { serviceToken: [] }]);
    }
    const process = doc.paths['/api/v1/payments/process']!.post!;
    expect(process.security).toEqual([{ bearerAuth: [] }]);
    // The token is sent by "Authorize", not typed into a header field.
    expect((process.parameters ?? []).map((p) => p.name)).not.toContain('authorization');
    for (const path of ['/bookings', '/payments/execute', '/bookings/my', '/performances', '/performances/{id}/seats', '/events', '/ledger', '/ledger/balances']) {
      for (const op of Object.values(doc.paths[path]!)) {
        expect(op.security, path).toEqual([{ userId: [] }]);
        expect((op.parameters ?? []).map((p) => p.name), path).not.toContain('x-user-id');
      }
    }
    expect(doc.paths['/api/v1/payments/methods']!.get!.security).toBeUndefined();
    expect(doc.paths['/v1/sim/intent']!.post!.security).toBeUndefined();
  });

  it('the payment reads of /api/v2 and FluxPay document the 400 of a path with bad percent-encoding, as answered (a user test: in neither operation)', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    for (const [path, url] of [['/api/v2/payments/{payment_id}', '/api/v2/payments/%ZZ'], ['/api/v1/payments/{paymentKey}', '/api/v1/payments/pk_%ZZ']] as const) {
      // The header answers every operation lists are checked by the X-Sim-Namespace test.
      const documented = Object.entries(doc.paths[path]!.get!.responses!['400']!.content!['application/json']!.examples!)
        .filter(([name]) => !HEADER_ANSWERS.includes(name))
        .map(([, e]) => e.value);
      const res = await t.app.inject({ url });
      expect([path, res.statusCode, documented]).toEqual([path, 400, [res.json()]]);
    }
    expect(doc.paths['/api/v2/payments/{payment_id}']!.get!.parameters?.find((p) => 'name' in p && p.name === 'payment_id')).not.toHaveProperty('schema.maxLength');
  });

  it("getSeatMap's 400 documents each 400 it gets: a query parameter (it takes none), bad percent-encoding, and an id over 64 characters", async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    const documentedBodies = Object.entries(doc.paths['/performances/{id}/seats']!.get!.responses!['400']!.content!['application/json']!.examples!)
      .filter(([name]) => !HEADER_ANSWERS.includes(name))
      .map(([, e]) => e.value);
    const answers = [];
    for (const path of ['perf_001/seats?foo=1', '%E0%A4%A/seats', `${'p'.repeat(65)}/seats`]) {
      const res = await t.app.inject({ url: `/performances/${path}`, headers: { 'x-user-id': 'user_test_001' } });
      expect(res.statusCode, path).toBe(400);
      answers.push(res.json());
    }
    expect(documentedBodies).toEqual(answers);
  });

  it('bodyless POSTs declare an optional body, and accept content-type: application/json with an empty body', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    expect(doc.paths['/v1/sim/intents/{id}/cancel']!.post!.requestBody?.required).toBe(false);
    expect(doc.paths['/v1/sim/intents/{id}/refund']!.post!.requestBody?.required).toBe(false);
    expect(doc.paths['/v1/sim/webhooks/deliveries/{id}/replay']!.post!.requestBody?.required).toBe(false);
    expect(doc.paths['/bookings']!.post!.requestBody?.required).toBe(true);

    const create = (body: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'rsv_empty', amount: 1000, ...body } });
    const pending = (await create({ scenario: 'delay', delay_ms: 600_000 })).json().payment_intent_id as string;
    const cancel = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${pending}/cancel`, headers: { 'content-type': 'application/json' }, payload: '' });
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json()).toMatchObject({ payment_intent_id: pending, status: 'CANCELLED' });

    const approved = (await create({ scenario: 'approve' })).json().payment_intent_id as string;
    await t.clock.advance(1000);
    const refund = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${approved}/refund`, headers: { 'content-type': 'application/json' }, payload: '' });
    expect(refund.statusCode).toBe(200);
    expect(refund.json()).toMatchObject({ payment_intent_id: approved, status: 'REFUNDED', refunded_amount: 1000 });
  });

  it('names shared schemas in components.schemas, and documents every webhook with its signature headers', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['PaymentIntent', 'NativeError', 'WebhookDelivery', 'Booking', 'BookingsError', 'ProcessPaymentRequest', 'PaymentServiceError', 'PaymentWebhook', 'BookingWebhook']),
    );
    expect(Object.keys(doc.webhooks).sort()).toEqual([...DELIVERED_BOOKING_EVENTS, ...DELIVERED_PAYMENT_EVENTS, 'v2.payment.completed', 'v2.payment.failed', ...OUTBOX_EVENT_TYPES.map((e) => `fluxpay.${e}`)].sort());
    for (const [event, item] of Object.entries(doc.webhooks)) {
      const post = item.post!;
      if (event.startsWith('fluxpay.')) {
        // FluxPay's envelope, signed with FLUXPAY_SIGNATURE_SCHEMES (Standard Webhooks by default).
        // Each kind of event its own envelope, whose data is that kind's view (credit.charged: FluxPayCreditWebhook).
        const kind = event.split('.')[1] ?? '';
        expect(post.requestBody?.content?.['application/json']?.schema, event).toEqual({ $ref: `#/components/schemas/FluxPay${kind.charAt(0).toUpperCase()}${kind.slice(1)}Webhook` });
        expect((post.parameters ?? []).map((p) => p.name)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
        continue;
      }
      if (event.startsWith('v2.')) {
        // Source document 001's callback: its own headers, no WEBHOOK_SIGNATURE_SCHEMES.
        expect(post.requestBody?.content?.['application/json']?.schema, event).toEqual({ $ref: '#/components/schemas/V2Callback' });
        expect((post.parameters ?? []).map((p) => p.name)).toEqual(['x-payment-event', 'x-payment-signature', 'x-payment-webhook-id', 'authorization']);
        continue;
      }
      expect(post.requestBody?.content?.['application/json']?.schema, event).toEqual({ $ref: event.startsWith('payment.') ? '#/components/schemas/PaymentWebhook' : '#/components/schemas/BookingWebhook' });
      expect((post.parameters ?? []).map((p) => p.name)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'x-webhook-id', 'x-timestamp', 'x-signature', 'stripe-signature']);
    }
  });

  it("the webhooks' header examples are real signatures of their example bodies, as the verification libraries compute them", async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<Document>();
    const stripe = new Stripe('sk_test_unused');
    for (const [event, item] of Object.entries(doc.webhooks)) {
      const post = item.post!;
      const body = JSON.stringify(Object.values(post.requestBody!.content!['application/json']!.examples!)[0]!.value);
      const h = Object.fromEntries((post.parameters ?? []).map((p) => [p.name, String(p.example)]));
      if (event.startsWith('v2.')) {
        // The document's verify_webhook_signature: base64 HMAC-SHA256 of the raw body, keyed by the secret's UTF-8 bytes.
        expect(h['x-payment-signature'], event).toBe(createHmac('sha256', Buffer.from(EXAMPLE_WEBHOOK_SECRET, 'utf8')).update(body).digest('base64'));
        expect(h['x-payment-event'], event).toBe(event.slice('v2.'.length));
        continue;
      }
      if (event.startsWith('fluxpay.')) {
        expect(h['webhook-id'], event).toBe(JSON.parse(body).eventId);
        expect(new Webhook(EXAMPLE_WEBHOOK_SECRET).sign(h['webhook-id']!, new Date(Number(h['webhook-timestamp']) * 1000), body), event).toBe(h['webhook-signature']);
        continue;
      }
      expect(h['webhook-id'], event).toBe(JSON.parse(body).id);
      const standard = new Webhook(EXAMPLE_WEBHOOK_SECRET).sign(h['webhook-id']!, new Date(Number(h['webhook-timestamp']) * 1000), body);
      expect(h['webhook-signature'], event).toBe(standard);
      expect(h['x-signature'], event).toBe(`sha256=${createHmac('sha256', EXAMPLE_WEBHOOK_SECRET).update(body + h['x-timestamp']).digest('hex')}`);
      // A tolerance of years: the example was signed at a fixed time.
      expect(stripe.webhooks.constructEvent(body, h['stripe-signature']!, EXAMPLE_WEBHOOK_SECRET, 1e9).id, event).toBe(JSON.parse(body).id);
    }
  });

  it('servers follow PUBLIC_URL', async () => {
    const other = await buildTestApp({ PUBLIC_URL: 'http://127.0.0.1:18080/' });
    try {
      expect((await other.app.inject({ url: '/openapi.json' })).json<Document>().servers).toEqual([{ url: 'http://127.0.0.1:18080', description: 'This simulator (PUBLIC_URL)' }]);
    } finally {
      await other.app.close();
    }
  });

  it('the committed document has no YAML aliases (some tools cannot read them)', async () => {
    const committed = await readFile(OPENAPI_PATH, 'utf8');
    expect(committed).not.toMatch(/(^|\s)[&*]a\d+(\s|$)/m);
  });

  it('GET / serves Swagger UI, and its initializer loads the generated document', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toMatch(/swagger/i);
    const init = await t.app.inject({ method: 'GET', url: '/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
    const spec = await t.app.inject({ method: 'GET', url: '/json' });
    expect(spec.json().paths['/v1/sim/intent']).toBeDefined();
  });

  it('GET /docs redirects to /', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/');
  });
});
