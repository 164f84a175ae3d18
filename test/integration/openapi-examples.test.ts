import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_IDS as BOOKING_IDS, EXAMPLE_USER } from '../../src/dialects/bookings/examples.ts';
import { createRuleRequests, EXAMPLE_GONE_URL, EXAMPLE_IDS as NATIVE_IDS, EXAMPLE_WEBHOOK_URL } from '../../src/dialects/native/examples.ts';
import { EXAMPLE_CALLBACK_URL, EXAMPLE_DOWN_CALLBACK_URL, EXAMPLE_IDS as V2_IDS } from '../../src/dialects/payment-server-v2/examples.ts';
import { EXAMPLE_BOOKING_ID } from '../../src/dialects/payment-service/examples.ts';
import { EXAMPLE_IDS as FLUXPAY_IDS, EXAMPLE_NEW_ROOM, EXAMPLE_ROOM, EXAMPLE_SUBSCRIBER_URL, EXAMPLE_TICKET, EXAMPLE_USER as FLUXPAY_USER } from '../../src/dialects/fluxpay/examples.ts';
import { ERROR_STATUSES } from '../../src/core/faults/model.ts';
import { EXAMPLE_TRACE_ID } from '../../src/http/openapi.ts';
import { isHttpUrl } from '../../src/http/validators.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { closedPort, eventually, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { deliveryWhen } from '../helpers/webhooks.ts';

/**
 * The OpenAPI document's examples are true: every request example of every operation is sent to
 * the service (its example ids replaced by real ones made for it), and the answer must have the
 * status of the response example of the same name (else the operation's 2xx), validate against
 * the documented schema of that status, and have the shape of the paired example (the same
 * fields, recursively). The webhooks the service sent meanwhile must validate against the
 * document's `webhooks` section, with the documented signature headers.
 */

const JWT_SECRET = 'openapi-examples-jwt-secret-0123456789';
const DOC_ID = 'https://paysim.test/openapi.json';
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

type Json = Record<string, unknown>;
interface ExampleObject {
  summary?: string;
  value: unknown;
}
interface MediaObject {
  schema?: Json;
  examples?: Record<string, ExampleObject>;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  example?: unknown;
  schema?: Json;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  security?: Array<Record<string, string[]>>;
  requestBody?: { required?: boolean; content: Record<string, MediaObject> };
  responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: Record<string, MediaObject> }>;
}

/** The simulator's own operations, which fault rules never shape (README, fault rules: the rules API, the webhook administration, the report, the namespaces, the ops routes). */
const NEVER_SHAPED = [
  'GET /healthz', 'GET /readyz', 'GET /metrics',
  'GET /v1/sim/webhooks/deliveries', 'POST /v1/sim/webhooks/deliveries/{id}/replay', 'POST /v1/sim/webhook/test', 'GET /v1/sim/webhooks/disabled-urls', 'DELETE /v1/sim/webhooks/disabled-urls',
  'POST /v1/sim/rules', 'GET /v1/sim/rules', 'GET /v1/sim/rules/{id}', 'DELETE /v1/sim/rules/{id}', 'DELETE /v1/sim/rules',
  'GET /v1/sim/report', 'GET /v1/sim/namespaces', 'DELETE /v1/sim/namespaces/{namespace}',
];

/** The native envelope's trace id is the request's: the examples carry a fixed one. */
function withExampleTraceId(body: unknown): unknown {
  if (Array.isArray(body)) return body.map(withExampleTraceId);
  if (typeof body !== 'object' || body === null) return body;
  return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, k === 'trace_id' && typeof v === 'string' ? EXAMPLE_TRACE_ID : withExampleTraceId(v)]));
}

/** Shapes agree where both are known (a null or an empty array on one side matches anything): the same fields, values of the same types. */
function sameShape(a: unknown, b: unknown, path = ''): string[] {
  if (a === null || b === null) return [];
  if (Array.isArray(a) && Array.isArray(b)) return a.length === 0 || b.length === 0 ? [] : sameShape(a[0], b[0], `${path}[0]`);
  if (typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a as Json);
    const kb = Object.keys(b as Json);
    const missing = ka.filter((k) => !kb.includes(k)).map((k) => `${path}/${k} only in the example`);
    const extra = kb.filter((k) => !ka.includes(k)).map((k) => `${path}/${k} only in the answer`);
    return [...missing, ...extra, ...ka.filter((k) => kb.includes(k)).flatMap((k) => sameShape((a as Json)[k], (b as Json)[k], `${path}/${k}`))];
  }
  return typeof a === typeof b ? [] : [`${path}: ${typeof a} in the example, ${typeof b} in the answer`];
}

describe('OpenAPI examples, sent to the service', () => {
  let t: TestApp;
  let receiver: Receiver;
  let doc: { paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>; webhooks: Record<string, { post: Operation }>; components: Json };
  let ajv: Ajv2020;
  let token: string;
  /** Where nothing listens: a callback receiver that is down. */
  let downPort: number;
  let v2Payments = 0;
  const validators = new Map<string, ValidateFunction>();

  /** Lets the manual clock run due work (a zero processing delay, decisions) until `promise` settles. */
  async function drive<T>(promise: Promise<T>): Promise<T> {
    let done = false;
    void promise.finally(() => (done = true)).catch(() => {});
    while (!done) {
      await t.clock.advance(0);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return promise;
  }

  async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await drive(
      t.app.inject({
        method: method as 'GET',
        url,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      }),
    );
    return res;
  }

  const user = { 'x-user-id': EXAMPLE_USER };

  async function newBooking(webhookUrl?: string): Promise<string> {
    const res = await call('POST', '/bookings', { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD', ...(webhookUrl === undefined ? {} : { webhookUrl }) }, user);
    expect(res.statusCode).toBe(201);
    return res.json().bookingId;
  }

  async function approvedIntent(): Promise<string> {
    const res = await call('POST', '/v1/sim/intent', { reservation_id: 'rsv_fixture', amount: 45000, scenario: 'approve', webhook_url: receiver.url('/webhooks/payments') });
    const id: string = res.json().payment_intent_id;
    await t.clock.advance(1000);
    await deliveryWhen(t, `?payment_intent_id=${id}`, (d) => d.status === 'delivered', `the approval of ${id} delivered`);
    return id;
  }

  /** A v2 payment of a fresh tx_id (the examples' own tx_ids stay theirs): completed when its callback goes to the receiver, PENDING when it goes nowhere. */
  async function v2Payment(callbackUrl: string, status: string): Promise<string> {
    const res = await call('POST', '/api/v2/payments', { tx_id: `tx_fixture_${++v2Payments}`, order_id: 1, user_id: 1, amount: 1000, callback_url: callbackUrl });
    expect(res.json().status).toBe(status);
    return res.json().payment_id;
  }

  // ── FluxPay: its example user always has credits; every other example id is made fresh ──
  let fluxpaySeq = 0;
  const fresh = (prefix: string) => `${prefix}-fx-${++fluxpaySeq}`;
  async function fluxpayOrder(body: Record<string, unknown> = {}): Promise<{ orderId: string; amount: number }> {
    const res = await call('POST', '/api/v1/orders', { userId: FLUXPAY_USER, serviceId: 'ai-writer', orderName: 'fixture', amount: 15000, ...body });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().result;
  }
  async function fluxpayPayment(orderId: string): Promise<string> {
    const res = await call('POST', '/api/v1/payments', { orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123' } });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().result.paymentKey;
  }
  async function fluxpayPaid(body: Record<string, unknown> = {}): Promise<{ orderId: string; paymentKey: string }> {
    const order = await fluxpayOrder(body);
    const paymentKey = await fluxpayPayment(order.orderId);
    expect((await call('POST', '/api/v1/payments/confirm', { paymentKey, orderId: order.orderId, amount: order.amount })).statusCode).toBe(200);
    return { orderId: order.orderId, paymentKey };
  }
  async function fluxpayRequested(): Promise<{ sagaId: string; usageId: string }> {
    const usageId = fresh('usage');
    const res = await call('POST', '/api/v1/events', { eventId: fresh('evt'), type: 'service.usage.requested', userId: FLUXPAY_USER, serviceId: 'ai-writer', usageId, credits: 10 });
    expect(res.json().result.saga.status, res.body).toBe('RUNNING');
    return { sagaId: res.json().result.saga.sagaId, usageId };
  }
  /** Each example id or URL, and how to make a real one for one request (`made`: the ids made for it so far). */
  const fixtures: Record<string, (made: Map<string, string>) => Promise<string>> = {
    [NATIVE_IDS.pendingIntent]: async () => (await call('POST', '/v1/sim/intent', { reservation_id: 'rsv_fixture', amount: 1000, scenario: 'delay', delay_ms: 600_000 })).json().payment_intent_id,
    [NATIVE_IDS.approvedIntent]: approvedIntent,
    [NATIVE_IDS.delivery]: async () => {
      const id = await approvedIntent();
      const res = await call('GET', `/v1/sim/webhooks/deliveries?payment_intent_id=${id}`);
      return res.json().data[0].id;
    },
    // The latency example's rule (only requests tagged X-Test-Case match it, so it shapes no other example's answer).
    [NATIVE_IDS.rule]: async () => (await call('POST', '/v1/sim/rules', createRuleRequests.latency?.value)).json().id,
    [EXAMPLE_WEBHOOK_URL]: async () => receiver.url('/webhooks/payments'),
    [EXAMPLE_GONE_URL]: async () => {
      const url = receiver.url('/webhooks/retired');
      const intent = await approvedIntent();
      expect((await call('POST', '/v1/sim/webhook/test', { payment_intent_id: intent, type: 'payment.approved', webhook_url: url })).statusCode).toBe(202);
      await eventually(async () => ((await call('GET', '/v1/sim/webhooks/disabled-urls')).json().data.some((d: { url: string }) => d.url === url) ? true : undefined), `${url} disabled`);
      return url;
    },
    'http://127.0.0.1:4000/webhooks/bookings': async () => receiver.url('/webhooks/bookings'),
    [BOOKING_IDS.toPay]: () => newBooking(),
    [BOOKING_IDS.toCancel]: () => newBooking(receiver.url('/webhooks/bookings')),
    [BOOKING_IDS.confirmed]: async () => {
      const id = await newBooking(receiver.url('/webhooks/bookings'));
      expect((await call('POST', '/payments/execute', { bookingId: id, paymentMethodToken: 'tok_visa', cvv: '120' }, user)).statusCode).toBe(200);
      await t.clock.advance(1000);
      return id;
    },
    [EXAMPLE_BOOKING_ID]: () => newBooking(),
    [EXAMPLE_CALLBACK_URL]: async () => receiver.url('/api/orders/payment/webhook/v2/tx_1001'),
    [EXAMPLE_DOWN_CALLBACK_URL]: async () => `http://127.0.0.1:${downPort}/api/orders/payment/webhook/v2/tx_1002`,
    [V2_IDS.completed]: () => v2Payment(receiver.url('/api/orders/payment/webhook/v2/fixture'), 'PAYMENT_COMPLETED'),
    [V2_IDS.pending]: () => v2Payment(`http://127.0.0.1:${downPort}/fixture`, 'PENDING'),
    [FLUXPAY_USER]: async () => {
      const balance = (await call('GET', `/api/v1/credits/balance?userId=${FLUXPAY_USER}`)).json().result.balance as number;
      if (balance < 500) {
        const { orderId } = await fluxpayPaid({ orderName: 'credits', amount: 10000, metadata: { kind: 'CREDIT_CHARGE', credits: 1000 } });
        expect((await call('POST', '/api/v1/credits/charge', { userId: FLUXPAY_USER, orderId })).statusCode).toBe(200);
      }
      return FLUXPAY_USER;
    },
    [FLUXPAY_IDS.pendingOrder]: async () => (await fluxpayOrder()).orderId,
    [FLUXPAY_IDS.chargeOrder]: async () => (await fluxpayPaid({ orderName: '1,000 credits', amount: 10000, metadata: { kind: 'CREDIT_CHARGE', credits: 1000 } })).orderId,
    // The confirm example's payment is of its order (`pendingOrder`): the payment is made for the order made for the request, which it makes first when there is none yet.
    [FLUXPAY_IDS.readyPayment]: async (made) => {
      if (!made.has(FLUXPAY_IDS.pendingOrder)) made.set(FLUXPAY_IDS.pendingOrder, (await fluxpayOrder()).orderId);
      return fluxpayPayment(made.get(FLUXPAY_IDS.pendingOrder) as string);
    },
    [FLUXPAY_IDS.approvedPayment]: async () => (await fluxpayPaid()).paymentKey,
    [FLUXPAY_IDS.saga]: async () => (await fluxpayRequested()).sagaId,
    [FLUXPAY_IDS.newUsage]: async () => fresh('usage'),
    [FLUXPAY_IDS.newEvent]: async () => fresh('evt'),
    [FLUXPAY_IDS.completedEvent]: async () => fresh('evt'),
    [FLUXPAY_IDS.failedEvent]: async () => fresh('evt'),
    [FLUXPAY_IDS.runningUsage]: async () => (await fluxpayRequested()).usageId,
    [FLUXPAY_IDS.deductedUsage]: async () => {
      const usageId = fresh('usage');
      expect((await call('POST', '/api/v1/credits/use', { userId: FLUXPAY_USER, serviceId: 'ai-writer', usageId })).statusCode).toBe(200);
      return usageId;
    },
    [EXAMPLE_SUBSCRIBER_URL]: async () => receiver.url('/fluxpay/events'),
    // A webhook subscription of its own for each request (a DELETE example removes the one it names).
    [FLUXPAY_IDS.subscription]: async () => {
      const res = await call('POST', '/api/v1/webhook-subscriptions', { url: receiver.url('/fluxpay/fixture'), events: ['order.cancelled'] });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().result.subscriptionId as string;
    },
    [FLUXPAY_IDS.billingSubscription]: async () => {
      const res = await call('POST', '/api/v1/subscriptions', { userId: FLUXPAY_USER, planId: 'basic-monthly', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().result.subscriptionId as string;
    },
    // Waiting rooms: one paused room (its tickets stay WAITING) guarding a service no other example orders.
    [EXAMPLE_ROOM]: async () => exampleRoom(),
    [EXAMPLE_TICKET]: async () => (await call('POST', `/api/v1/waiting-rooms/${await exampleRoom()}/enter`, { userId: fresh('user') })).json().result.ticket as string,
    // The same id each time: the `created` example (sent first) creates it, `updated` changes it.
    [EXAMPLE_NEW_ROOM]: async () => 'room-fx-put',
  };
  let roomReady: Promise<string> | undefined;
  function exampleRoom(): Promise<string> {
    roomReady ??= call('PUT', '/api/v1/waiting-rooms/room-fx', { admitPerSecond: 0, admissionTtlSeconds: 300, protectedServiceIds: ['image-studio'] }).then((res) => {
      expect(res.statusCode).toBe(201);
      return 'room-fx';
    });
    return roomReady;
  }

  /** Replaces every example id or URL in `value` (strings, recursively, one at a time: a fixture may use the ids made before it) with a real one made for this request. */
  async function substitute(value: unknown, made: Map<string, string>): Promise<unknown> {
    if (typeof value === 'string') {
      let out = value;
      for (const [example, make] of Object.entries(fixtures)) {
        if (!out.includes(example)) continue;
        if (!made.has(example)) made.set(example, await make(made));
        out = out.split(example).join(made.get(example) as string);
      }
      return out;
    }
    if (Array.isArray(value)) {
      const items: unknown[] = [];
      for (const v of value) items.push(await substitute(v, made));
      return items;
    }
    if (typeof value === 'object' && value !== null) {
      const entries: Array<[string, unknown]> = [];
      for (const [k, v] of Object.entries(value)) entries.push([k, await substitute(v, made)]);
      return Object.fromEntries(entries);
    }
    return value;
  }

  function validatorFor(schema: Json): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = validators.get(key);
    if (validate === undefined) {
      // A reference into the document, from outside it.
      const rooted = JSON.parse(key.replaceAll('"#/components/', `"${DOC_ID}#/components/`)) as Json;
      validate = ajv.compile(rooted);
      validators.set(key, validate);
    }
    return validate;
  }

  function expectValid(schema: Json | undefined, value: unknown, what: string): void {
    expect(schema, `${what} has a schema`).toBeDefined();
    const validate = validatorFor(schema as Json);
    expect(validate(value) ? [] : validate.errors, `${what} validates against the document`).toEqual([]);
  }

  beforeAll(async () => {
    receiver = await startReceiver((req) => ({ status: req.url === '/webhooks/retired' ? 410 : 200, body: 'ok' }));
    downPort = await closedPort();
    t = await buildTestApp({ JWT_SECRET, MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0', WEBHOOK_SIGNATURE_SCHEMES: 'standard,legacy,stripe', FLUXPAY_WEBHOOK_URL: receiver.url('/fluxpay/default') }, { clockStart: Date.now() });
    const res = await t.app.inject({ url: '/openapi.json' });
    doc = res.json();
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addFormat('http-url', { type: 'string', validate: isHttpUrl });
    ajv.addSchema({ $id: DOC_ID, components: doc.components });
    token = await new SignJWT({ userId: EXAMPLE_USER }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(JWT_SECRET));
  });
  afterAll(async () => {
    await receiver.close();
    await t.app.close();
  });

  const operations = (): Array<{ path: string; method: string; op: Operation }> =>
    Object.entries(doc.paths).flatMap(([path, item]) => METHODS.flatMap((method) => (item[method] === undefined ? [] : [{ path, method, op: item[method] as Operation }])));

  it('every operation has examples for its request body and each of its responses', () => {
    const missing: string[] = [];
    for (const { op } of operations()) {
      const body = op.requestBody?.content['application/json'];
      if (op.requestBody?.required === true && Object.keys(body?.examples ?? {}).length === 0) missing.push(`${op.operationId} request`);
      for (const [status, response] of Object.entries(op.responses)) {
        const media = Object.values(response.content ?? {})[0];
        if (Object.keys(media?.examples ?? {}).length === 0) missing.push(`${op.operationId} ${status}`);
      }
      for (const p of op.parameters ?? []) if ((p.in === 'path' || p.required === true) && p.example === undefined) missing.push(`${op.operationId} parameter ${p.name}`);
    }
    expect(missing).toEqual([]);
  });

  it('every request example gets the documented answer', async () => {
    const sent: string[] = [];
    for (const { path, method, op } of operations()) {
      const media = op.requestBody?.content['application/json'];
      const requests: Array<[string, unknown]> = Object.entries(media?.examples ?? {}).map(([name, e]) => [name, e.value]);
      if (requests.length === 0) requests.push(['', undefined]);
      for (const [name, example] of requests) {
        const made = new Map<string, string>();
        let url = path;
        const query = new URLSearchParams();
        const headers: Record<string, string> = {};
        for (const p of op.parameters ?? []) {
          if (p.example === undefined) continue;
          const value = String(await substitute(p.example, made));
          if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(value));
          if (p.in === 'query') query.set(p.name, value);
        }
        for (const requirement of op.security ?? []) {
          if ('userId' in requirement) headers['x-user-id'] = EXAMPLE_USER;
          if ('bearerAuth' in requirement) headers.authorization = `Bearer ${token}`;
        }
        const body = await substitute(example, made);
        const target = query.size === 0 ? url : `${url}?${query}`;
        const res = await call(method.toUpperCase(), target, body, headers);
        const what = `${op.operationId}${name === '' ? '' : ` (${name})`}: ${method.toUpperCase()} ${target}`;
        sent.push(what);

        const paired = Object.entries(op.responses).find(([, r]) => Object.values(r.content ?? {}).some((m) => name !== '' && m.examples?.[name] !== undefined));
        const success = Object.keys(op.responses).filter((s) => s.startsWith('2'));
        const expected = paired?.[0] ?? success[0];
        // One success, or (PUT of a waiting room: 201 created, 200 changed) each paired with its request example.
        expect(success.length === 1 || paired !== undefined, `${op.operationId} documents one success, or pairs each with a request example`).toBe(true);
        expect(String(res.statusCode), `${what} → ${res.body.slice(0, 300)}`).toBe(expected);

        const response = op.responses[String(res.statusCode)];
        const [contentType, documented] = Object.entries(response?.content ?? {})[0] ?? [];
        expect(res.headers['content-type'], what).toMatch(new RegExp(`^${(contentType ?? '').split(';')[0]}`));
        expect(res.headers['x-request-id'], `${what}: X-Request-Id`).toBeTruthy();
        if (contentType !== 'application/json') continue;
        const answer = res.json();
        expectValid(documented?.schema, answer, what);
        const exampleAnswer = documented?.examples?.[name]?.value ?? Object.values(documented?.examples ?? {})[0]?.value;
        expect(sameShape(exampleAnswer, answer), `${what}: the example and the answer have the same fields`).toEqual([]);
      }
    }
    // Every operation was exercised at least once.
    expect(sent.length).toBeGreaterThanOrEqual(operations().length);
  }, 60_000);

  it('the webhooks sent meanwhile validate against the webhooks section, with the documented signature headers', async () => {
    await t.clock.advance(1000);
    await receiver.waitFor(1);
    const types = new Set<string>();
    for (const req of receiver.requests.filter((r) => r.url !== '/webhooks/retired')) {
      const v2Event = req.headers['x-payment-event'];
      if (typeof v2Event === 'string') {
        // A Payment Server v3 callback: its event is a header, its headers its own.
        const hook = doc.webhooks[`v2.${v2Event}`];
        expect(hook, `v2.${v2Event} is documented`).toBeDefined();
        const post = (hook as { post: Operation }).post;
        expectValid(post.requestBody?.content['application/json']?.schema, JSON.parse(req.body), `webhook v2.${v2Event}`);
        const documentedHeaders = new Set((post.parameters ?? []).map((p) => p.name));
        for (const name of ['x-payment-event', 'x-payment-signature', 'x-payment-webhook-id']) {
          expect(documentedHeaders.has(name), `${name} is documented`).toBe(true);
          expect(req.headers[name], `v2.${v2Event} carries ${name}`).toBeTruthy();
        }
        types.add(`v2.${v2Event}`);
        continue;
      }
      const envelope = JSON.parse(req.body) as { eventType?: string };
      if (typeof envelope.eventType === 'string') {
        // A FluxPay event: its envelope, signed with Standard Webhooks only.
        const fluxHook = doc.webhooks[`fluxpay.${envelope.eventType}`];
        expect(fluxHook, `fluxpay.${envelope.eventType} is documented`).toBeDefined();
        const post = (fluxHook as { post: Operation }).post;
        expectValid(post.requestBody?.content['application/json']?.schema, envelope, `webhook fluxpay.${envelope.eventType}`);
        for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
          expect((post.parameters ?? []).some((p) => p.name === name), `${name} is documented`).toBe(true);
          expect(req.headers[name], `fluxpay.${envelope.eventType} carries ${name}`).toBeTruthy();
        }
        types.add(`fluxpay.${envelope.eventType}`);
        continue;
      }
      const body = JSON.parse(req.body) as { type: string };
      const hook = doc.webhooks[body.type];
      expect(hook, `${body.type} is documented`).toBeDefined();
      const post = (hook as { post: Operation }).post;
      expectValid(post.requestBody?.content['application/json']?.schema, body, `webhook ${body.type}`);
      const documentedHeaders = new Set((post.parameters ?? []).map((p) => p.name));
      for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'x-webhook-id', 'x-timestamp', 'x-signature', 'stripe-signature']) {
        expect(documentedHeaders.has(name), `${name} is documented`).toBe(true);
        expect(req.headers[name], `${body.type} carries ${name}`).toBeTruthy();
      }
      types.add(body.type);
    }
    expect([...types].sort()).toEqual(expect.arrayContaining(['booking.cancelled', 'booking.confirmed', 'payment.approved', 'payment.refunded', 'v2.payment.completed', 'fluxpay.payment.approved', 'fluxpay.credit.charged', 'fluxpay.credit.deducted', 'fluxpay.order.completed']));
  });
  /** The request of an operation with its parameters' examples as they are (a rule answers before anything is looked up), its credentials and `headers`. */
  function faultRequest(path: string, method: string, op: Operation, headers: Record<string, string>) {
    let url = path;
    const query = new URLSearchParams();
    for (const p of op.parameters ?? []) {
      if (p.example === undefined) continue;
      if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(String(p.example)));
      if (p.in === 'query') query.set(p.name, String(p.example));
    }
    const all = { ...headers };
    for (const requirement of op.security ?? []) {
      if ('userId' in requirement) all['x-user-id'] = EXAMPLE_USER;
      if ('bearerAuth' in requirement) all.authorization = `Bearer ${token}`;
    }
    return t.app.inject({ method: method.toUpperCase() as 'GET', url: query.size === 0 ? url : `${url}?${query}`, headers: all });
  }

  async function faultRule(status: number, testCase: string): Promise<string> {
    const res = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match: { headers: { 'x-test-case': testCase } }, action: { type: 'error', status } } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  it("a fault rule's error answers, each status on every operation rules shape, are documented: the schema, the example, Retry-After, X-Sim-Rule", async () => {
    const shaped = operations().filter(({ path, method }) => !NEVER_SHAPED.includes(`${method.toUpperCase()} ${path}`));
    expect(shaped.length).toBe(operations().length - NEVER_SHAPED.length);
    const problems: string[] = [];
    for (const status of ERROR_STATUSES) {
      const testCase = `openapi-fault-${status}`;
      const id = await faultRule(status, testCase);
      for (const { path, method, op } of shaped) {
        const res = await faultRequest(path, method, op, { 'x-test-case': testCase });
        const what = `${op.operationId} ${status}`;
        const response = op.responses[String(status)];
        if (res.statusCode !== status) problems.push(`${what}: answered ${res.statusCode} ${res.body.slice(0, 200)}`);
        if (response === undefined) {
          problems.push(`${what}: not documented`);
          continue;
        }
        const [contentType, media] = Object.entries(response.content ?? {})[0] ?? [];
        expect(res.headers['content-type'], what).toMatch(new RegExp(`^${contentType ?? 'none'}`));
        const body = res.json();
        expectValid(media?.schema, body, what);
        const examples = Object.values(media?.examples ?? {}).map((e) => e.value);
        if (!examples.some((e) => JSON.stringify(e) === JSON.stringify(withExampleTraceId(body)))) problems.push(`${what}: no example is the answer ${res.body}`);
        const documentedHeaders = Object.keys(response.headers ?? {});
        // Sent with this answer: X-Sim-Rule, Retry-After (429 and 503 without retry_after_seconds: 1), and what every answer of the route carries.
        const sent = ['X-Request-Id', 'X-Sim-Rule', ...(status === 429 || status === 503 ? ['Retry-After'] : []), ...documentedHeaders.filter((h) => h.startsWith('RateLimit-'))];
        for (const name of sent) if (res.headers[name.toLowerCase()] === undefined) problems.push(`${what}: no ${name} in the answer`);
        for (const name of ['X-Sim-Rule', 'Retry-After']) if (!documentedHeaders.includes(name)) problems.push(`${what}: ${name} not documented`);
        expect(res.headers['x-sim-rule'], what).toBe(id);
        if (res.headers['retry-after'] !== undefined && res.headers['retry-after'] !== (status === 429 || status === 503 ? '1' : undefined)) problems.push(`${what}: Retry-After ${String(res.headers['retry-after'])}`);
        // Every other response of the operation may carry X-Sim-Rule too (a latency rule's answer does).
        for (const [other, r] of Object.entries(op.responses)) if (!Object.keys(r.headers ?? {}).includes('X-Sim-Rule')) problems.push(`${op.operationId} ${other}: X-Sim-Rule not documented`);
      }
    }
    expect(problems).toEqual([]);
  }, 60_000);

  it('the operations rules never shape list none of it, and a rule does not shape them', async () => {
    const own = operations().filter(({ path, method }) => NEVER_SHAPED.includes(`${method.toUpperCase()} ${path}`));
    expect(own.map(({ path, method }) => `${method.toUpperCase()} ${path}`).sort()).toEqual([...NEVER_SHAPED].sort());
    const problems: string[] = [];
    for (const { path, method, op } of own) {
      for (const [status, r] of Object.entries(op.responses)) {
        if (Object.keys(r.headers ?? {}).includes('X-Sim-Rule')) problems.push(`${op.operationId} ${status}: X-Sim-Rule`);
        if (['429', '502', '504'].includes(status)) problems.push(`${op.operationId}: ${status}`);
        if (Object.values(r.content ?? {}).some((m) => m.examples?.fault_rule !== undefined)) problems.push(`${op.operationId} ${status}: a fault_rule example`);
        if (r.description.includes('fault rule’s `error` action')) problems.push(`${op.operationId} ${status}: describes a fault rule's answer`);
      }
      // A rule of its own for each request (DELETE /v1/sim/rules takes every rule).
      const testCase = `openapi-own-${op.operationId}`;
      await faultRule(502, testCase);
      const res = await faultRequest(path, method, op, { 'x-test-case': testCase });
      if (res.statusCode === 502 || res.headers['x-sim-rule'] !== undefined) problems.push(`${op.operationId}: shaped, ${res.statusCode} ${String(res.headers['x-sim-rule'])}`);
    }
    expect(problems).toEqual([]);
    await t.app.inject({ method: 'DELETE', url: '/v1/sim/rules' });
  });
});
