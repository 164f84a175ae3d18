import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, ULID, type TestApp } from '../helpers/app.ts';

/** The fault rules API (issue 15): /v1/sim/rules, and FAULTS_FILE's rules created at start. */

const RULE_ID = new RegExp(`^rule_${ULID}$`);
const JSON_TYPE = 'application/json; charset=utf-8';

let t: TestApp;
const at = () => new Date(t.clock.now()).toISOString();
const post = (payload: unknown) => t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: payload as object });
const get = (url: string) => t.app.inject({ method: 'GET', url });
const del = (url: string) => t.app.inject({ method: 'DELETE', url });

describe('/v1/sim/rules', () => {
  beforeEach(async () => {
    t = await buildTestApp();
  });
  afterEach(async () => {
    await t.app.close();
  });

  it('refuses a query parameter on the routes that take none, and changes nothing (a user test: before 2026-12-05 DELETE /v1/sim/rules?id=… deleted every rule)', async () => {
    for (const id of ['keep-me', 'drop-me']) expect((await post({ id, action: { type: 'duplicate' } })).statusCode).toBe(201);
    const before = (await get('/v1/sim/rules')).json();
    const refused = (name: string) => ({ error: { code: 'VALIDATION_FAILED', message: `querystring /${name}: is not a known field`, details: [{ field: `/${name}`, rule: 'additionalProperties', message: 'is not a known field', in: 'querystring' }], trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) } });
    for (const [method, url, name] of [
      ['DELETE', '/v1/sim/rules?id=drop-me', 'id'],
      ['DELETE', '/v1/sim/rules/drop-me?force=1', 'force'],
      ['GET', '/v1/sim/rules?limit=2', 'limit'],
      ['GET', '/v1/sim/rules/keep-me?cursor=x', 'cursor'],
      ['GET', '/v1/sim/namespaces?limit=1', 'limit'],
      ['POST', '/v1/sim/rules?dry_run=true', 'dry_run'],
    ] as const) {
      const res = await t.app.inject({ method, url, ...(method === 'POST' ? { payload: { action: { type: 'duplicate' } } } : {}) });
      expect([method, url, res.statusCode, res.json()]).toEqual([method, url, 400, refused(name)]);
    }
    expect((await get('/v1/sim/rules')).json()).toEqual(before);
    // Routes with a query of their own refuse only what they do not take, as before.
    expect((await get('/v1/sim/intents?limit=2')).statusCode).toBe(200);
    expect((await del('/v1/sim/rules')).json()).toEqual({ deleted: 2 });
  });

  it('refuses a rule that could match no route, as it would never apply: 400 naming why, and nothing made; rules some request can reach are taken (a user test: before 2026-12-05 each was taken)', async () => {
    const never = (why: string) => ({ code: 'VALIDATION_FAILED', message: `body /match: matches no route paysim answers, so the rule would never apply: ${why}`, details: [{ field: '/match', rule: 'route', message: `matches no route paysim answers, so the rule would never apply: ${why}`, in: 'body' }], trace_id: expect.any(String) });
    for (const [match, why] of [
      [{ route: '/does/not/exist' }, 'no route matches /does/not/exist'],
      [{ dialect: 'fluxpay', route: '/v1/sim/intent' }, 'no route of the fluxpay API matches /v1/sim/intent'],
      [{ dialect: 'native', method: 'PATCH' }, 'the native API has no PATCH route'],
      // OPTIONS requests (CORS preflights) are answered before any route a rule shapes.
      [{ method: 'OPTIONS' }, 'no API has an OPTIONS route'],
      [{ method: 'GET', body: { amount: 1 } }, 'a body condition needs a body, and GET requests have none'],
      [{ dialect: 'fluxpay', route: '/api/v1/orders/:orderId', body: { amount: { gte: 1000 } } }, 'no route of the fluxpay API matches /api/v1/orders/:orderId'],
      [{ route: '/v1/sim/rules' }, 'no route matches /v1/sim/rules'],
    ] as const) {
      const res = await post({ match, action: { type: 'error', status: 502 } });
      expect([match, res.statusCode, res.json().error]).toEqual([match, 400, never(why)]);
    }
    // With another problem (the action's): both at once (a user test: before 2026-12-07 the route's only once the action was mended).
    const both = await post({ match: { route: '/v1/sim/intnet' }, action: { type: 'error', status: 418 } });
    expect([both.statusCode, both.json().error.details.map((d: { field: string; rule: string }) => [d.field, d.rule])]).toEqual([
      400,
      [
        ['/action/status', 'enum'],
        ['/match', 'route'],
      ],
    ]);
    const outcome = await post({ match: { dialect: 'payment-service' }, action: { type: 'outcome', failure_code: 'a b' } });
    expect(outcome.json().error.details.map((d: { field: string; rule: string }) => [d.field, d.rule])).toEqual([
      ['/action/failure_code', 'pattern'],
      ['/match', 'outcome_route'],
    ]);
    expect((await get('/v1/sim/rules')).json()).toEqual({ data: [] });
    // In a namespace's app (X-Sim-Namespace) as in the default one.
    const inNamespace = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', headers: { 'x-sim-namespace': 'ci-job-1' }, payload: { match: { route: '/does/not/exist' }, action: { type: 'error', status: 502 } } });
    expect([inNamespace.statusCode, inNamespace.json().error]).toEqual([400, never('no route matches /does/not/exist')]);
    // Reachable: a literal path of a pattern, patterns and globs, FluxPay's payment read (a pk_ key under the payment service's prefix), the /api/v2 read's wildcard.
    for (const match of [
      { route: '/v1/sim/intents/pay_01M8NQKTX1HWJJ869EJ274WE8W' },
      { dialect: 'fluxpay', route: '/api/v1/payments/pk_*' },
      { dialect: 'fluxpay', method: 'GET', route: '/api/v1/payments/:paymentKey' },
      { dialect: 'payment-service', route: '/api/v1/payments/:paymentKey' },
      { dialect: 'payment-server-v2', method: 'GET', route: '/api/v2/payments/pay_tx_1' },
      { route: '/api/**', body: { amount: { gte: 1 } } },
      { method: 'HEAD', route: '/performances' },
    ]) {
      const res = await post({ match, action: { type: 'error', status: 502 } });
      expect([match, res.statusCode]).toEqual([match, 201]);
    }
  });

  it('creates a request rule (201, defaults filled in), reads it, lists it and deletes it', async () => {
    const res = await post({ name: 'flaky orders', match: { dialect: 'fluxpay', route: '/api/v1/orders/:orderId/cancel', headers: { 'X-Test-Case': 'a' }, body: { reason: { prefix: 'test' } } }, count: 2, action: { type: 'error', status: 429 } });
    expect(res.statusCode).toBe(201);
    expect(res.headers['content-type']).toBe(JSON_TYPE);
    const rule = res.json();
    expect(rule).toEqual({
      id: expect.stringMatching(RULE_ID),
      name: 'flaky orders',
      enabled: true,
      target: 'request',
      match: { dialect: 'fluxpay', method: null, route: '/api/v1/orders/:orderId/cancel', headers: { 'x-test-case': 'a' }, body: { reason: { prefix: 'test' } } },
      probability: 1,
      count: 2,
      window: { from: null, until: null },
      action: { type: 'error', status: 429, retry_after_seconds: 1 },
      hits: 0,
      matched: 0,
      remaining: 2,
      created_at: at(),
      last_hit_at: null,
    });
    expect((await get(`/v1/sim/rules/${rule.id}`)).json()).toEqual(rule);
    expect((await get('/v1/sim/rules')).json()).toEqual({ data: [rule] });

    const deleted = await del(`/v1/sim/rules/${rule.id}`);
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json()).toEqual(rule);
    expect((await get('/v1/sim/rules')).json()).toEqual({ data: [] });
    const gone = await get(`/v1/sim/rules/${rule.id}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toEqual({ error: { code: 'NOT_FOUND', message: `Fault rule ${rule.id} does not exist.`, trace_id: expect.any(String) } });
    expect((await del(`/v1/sim/rules/${rule.id}`)).statusCode).toBe(404);
  });

  it('creates webhook rules with a relative window, lists in creation order, and deletes them all', async () => {
    const a = (await post({ match: { url_prefix: 'http://127.0.0.1:4000/' }, window: { from: 1000, until: 60_000 }, action: { type: 'drop_attempts', n: 2 } })).json();
    const b = (await post({ probability: 0.25, action: { type: 'latency', distribution: 'lognormal', params: { p50: 200, p99: 2000 } } })).json();
    expect(a).toEqual({
      id: expect.stringMatching(RULE_ID),
      name: null,
      enabled: true,
      target: 'webhook',
      match: { url_prefix: 'http://127.0.0.1:4000/' },
      probability: 1,
      count: null,
      window: { from: new Date(t.clock.now() + 1000).toISOString(), until: new Date(t.clock.now() + 60_000).toISOString() },
      action: { type: 'drop_attempts', n: 2 },
      hits: 0,
      matched: 0,
      remaining: null,
      created_at: at(),
      last_hit_at: null,
    });
    expect(b).toMatchObject({ target: 'request', match: { dialect: null, method: null, route: null, headers: {}, body: {} }, probability: 0.25, action: { type: 'latency', distribution: 'lognormal', params: { p50: 200, p99: 2000 } } });
    expect((await get('/v1/sim/rules')).json().data.map((r: { id: string }) => r.id)).toEqual([a.id, b.id]);
    const res = await del('/v1/sim/rules');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ deleted: 2 });
    expect((await get('/v1/sim/rules')).json()).toEqual({ data: [] });
    expect((await del('/v1/sim/rules')).json()).toEqual({ deleted: 0 });
  });

  it('answers 400 naming every problem of a body at once, as JSON pointers, and stores nothing', async () => {
    const res = await post({ match: { route: 'no-slash', colour: 'red' }, probability: 2, action: { type: 'error', status: 418 } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: {
        code: 'VALIDATION_FAILED',
        message: 'body /probability: must be a number from 0 to 1',
        details: [
          { in: 'body', field: '/probability', rule: 'maximum', message: 'must be a number from 0 to 1' },
          { in: 'body', field: '/action/status', rule: 'enum', message: 'must be one of 500, 502, 503, 504, 429' },
          { in: 'body', field: '/match/colour', rule: 'additionalProperties', message: 'is not a known field (a request action matches on dialect, method, route, headers, body)' },
          { in: 'body', field: '/match/route', rule: 'pattern', message: 'must be a path starting with "/" (no query string, no spaces), e.g. /v1/sim/intents, /api/v1/orders/:orderId or /v1/sim/*' },
        ],
        trace_id: expect.any(String),
      },
    });
    const noAction = await post({});
    expect(noAction.json().error.details).toEqual([{ in: 'body', field: '/action', rule: 'required', message: expect.any(String) }]);
    expect((await post({ id: 'has space', action: { type: 'duplicate' } })).json().error.details).toEqual([{ in: 'body', field: '/id', rule: 'pattern', message: expect.any(String) }]);
    expect((await get('/v1/sim/rules')).json()).toEqual({ data: [] });
  });

  it('a rule as GET lists it can be sent back as it is (2026-12-05): its own id kept, its counters start at 0; an id in use is a 400 and changes nothing', async () => {
    const first = await post({ id: 'slow-orders', name: 'slow orders', match: { dialect: 'fluxpay', method: 'POST' }, count: 3, window: { until: 3_600_000 }, action: { type: 'latency', distribution: 'fixed', params: { ms: 5 } } });
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ id: 'slow-orders', remaining: 3 });
    const order = await t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'x-user-id': 'u1' }, payload: { serviceId: 'ai-writer', items: [{ type: 'CREDIT_PURCHASE', productId: 'credits-1000', quantity: 1, unitPrice: 9900 }] } });
    expect(order.headers['x-sim-rule']).toBe('slow-orders');
    const listed = (await get('/v1/sim/rules/slow-orders')).json();
    expect(listed).toMatchObject({ hits: 1, matched: 1, remaining: 2, last_hit_at: at() });

    const taken = await post(listed);
    expect(taken.statusCode).toBe(400);
    expect(taken.json().error.details).toEqual([{ in: 'body', field: '/id', rule: 'unique', message: 'rule slow-orders exists already' }]);
    expect((await get('/v1/sim/rules')).json()).toEqual({ data: [listed] });

    await del('/v1/sim/rules/slow-orders');
    t.clock.advance(1000);
    const again = await post(listed);
    expect(again.statusCode).toBe(201);
    expect(again.json()).toEqual({ ...listed, hits: 0, matched: 0, remaining: 3, created_at: at(), last_hit_at: null });
    // `target` must agree with the action; the counters must be counters.
    const bad = await post({ ...listed, id: 'other', target: 'webhook', hits: 'many' });
    expect(bad.json().error.details).toEqual([
      { in: 'body', field: '/hits', rule: 'type', message: 'must be an integer from 0 to 9007199254740991' },
      { in: 'body', field: '/target', rule: 'const', message: 'must be request for a latency action (it says what the action acts on, and may be left out)' },
    ]);
    expect((await get('/v1/sim/rules')).json().data.map((r: { id: string }) => r.id)).toEqual(['slow-orders']);
  });

  it('answers 400 for a rule that could never apply (2026-12-04): an outcome rule that matches no route taking an outcome, a window already over; stores nothing', async () => {
    const routes = 'POST /v1/sim/intent (native), POST /api/v2/payments (payment-server-v2), POST /payments/execute (bookings), POST /api/v1/payments/confirm (fluxpay), POST /api/v1/subscriptions (fluxpay), POST /api/v1/subscriptions/:subscriptionId/change-plan (fluxpay)';
    const never = `matches none of the routes an outcome rule applies on, so the rule would never apply: its dialect, method and route must allow one of ${routes}`;
    const ended = `must be later than the rule's creation (${at()}): a window that has already ended never applies`;
    const res = await post({ match: { dialect: 'bookings', method: 'GET' }, window: { until: new Date(t.clock.now() - 1).toISOString() }, action: { type: 'outcome', failure_code: 'card_declined' } });
    expect([res.statusCode, res.headers['content-type']]).toEqual([400, JSON_TYPE]);
    expect(res.json()).toEqual({
      error: {
        code: 'VALIDATION_FAILED',
        message: `body /window/until: ${ended}`,
        details: [
          { in: 'body', field: '/window/until', rule: 'window', message: ended },
          { in: 'body', field: '/match', rule: 'outcome_route', message: never },
        ],
        trace_id: expect.any(String),
      },
    });
    expect((await post({ match: { route: '/bookings' }, action: { type: 'outcome', approve: true } })).json().error.details).toEqual([{ in: 'body', field: '/match', rule: 'outcome_route', message: never }]);
    expect((await post({ window: { until: 0 }, action: { type: 'duplicate' } })).json().error.details).toEqual([{ in: 'body', field: '/window/until', rule: 'window', message: ended }]);
    expect((await get('/v1/sim/rules')).json()).toEqual({ data: [] });
    // A dialect with an outcome route, or no route at all, is a rule that can apply.
    expect((await post({ match: { dialect: 'bookings' }, action: { type: 'outcome', approve: true } })).statusCode).toBe(201);
    expect((await post({ match: { headers: { 'x-test-case': 'f1' } }, action: { type: 'outcome', approve: true } })).statusCode).toBe(201);
  });

  it('an Idempotency-Key makes a create safe to send again: one rule, the same answer replayed; another body with the key is 422; a bad key is a 400 naming the header', async () => {
    const send = (payload: object, key: string) => t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload, headers: { 'idempotency-key': key } });
    const body = { name: 'down once', action: { type: 'error', status: 503 } };
    const first = await send(body, 'rule-key-1');
    expect(first.statusCode).toBe(201);
    const again = await send(body, 'rule-key-1');
    expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([201, 'true', first.json()]);
    expect((await get('/v1/sim/rules')).json().data.map((r: { id: string }) => r.id)).toEqual([first.json().id]);
    const other = await send({ ...body, name: 'down twice' }, 'rule-key-1');
    expect([other.statusCode, other.json().error.code]).toEqual([422, 'IDEMPOTENCY_KEY_MISMATCH']);
    const bad = await send(body, 'a key with spaces');
    expect([bad.statusCode, bad.json().error.code, bad.json().error.details]).toEqual([400, 'VALIDATION_FAILED', [{ in: 'headers', field: '/idempotency-key', rule: 'pattern', message: 'must be visible ASCII characters only (no spaces)' }]]);
    expect((await get('/v1/sim/rules')).json().data).toHaveLength(1);
    // A body that is not a rule is answered before the key is taken: not stored, the key stays free.
    const invalid = await send({ action: { type: 'error', status: 418 } }, 'rule-key-2');
    expect([invalid.statusCode, invalid.headers['idempotent-replayed']]).toEqual([400, undefined]);
    const valid = await send(body, 'rule-key-2');
    expect([valid.statusCode, valid.headers['idempotent-replayed']]).toEqual([201, undefined]);
    expect((await get('/v1/sim/rules')).json().data).toHaveLength(2);
  });

  it('answers 400 for an id that is not a rule id, and 415 for a body that is not JSON', async () => {
    const res = await get('/v1/sim/rules/not%20an%20id');
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: '/id', rule: 'pattern', message: 'must be a rule id: rule_<ULID>, or the id its create or FAULTS_FILE gave', in: 'params' }] });
    const form = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.statusCode).toBe(415);
  });
});

describe('FAULTS_MAX_RULES', () => {
  afterEach(async () => {
    await t.app.close();
  });

  it('refuses a rule beyond the bound with 400 max_rules; a delete makes room', async () => {
    t = await buildTestApp({ FAULTS_MAX_RULES: '1' });
    const first = (await post({ action: { type: 'duplicate' } })).json();
    const res = await post({ action: { type: 'duplicate' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({
      code: 'VALIDATION_FAILED',
      message: 'body /: at most 1 rules may exist at once; delete some first',
      details: [{ in: 'body', field: '/', rule: 'max_rules', message: 'at most 1 rules may exist at once; delete some first' }],
      trace_id: expect.any(String),
    });
    await del(`/v1/sim/rules/${first.id}`);
    expect((await post({ action: { type: 'duplicate' } })).statusCode).toBe(201);
  });
});

describe('FAULTS_FILE', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'paysim-faults-'));
  });
  afterEach(async () => {
    await t.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the file’s rules at start, in its order, with the ids it gives', async () => {
    const path = join(dir, 'faults.yaml');
    writeFileSync(
      path,
      ['rules:', '  - id: slow-v2', '    match: { dialect: payment-server-v2, method: POST }', '    action: { type: latency, distribution: uniform, params: { min: 10, max: 20 } }', '  - match: { url_prefix: "http://127.0.0.1:4000/" }', '    action: { type: duplicate }', ''].join('\n'),
    );
    t = await buildTestApp({ FAULTS_FILE: path });
    const { data } = (await get('/v1/sim/rules')).json();
    expect(data).toEqual([
      expect.objectContaining({ id: 'slow-v2', target: 'request', match: { dialect: 'payment-server-v2', method: 'POST', route: null, headers: {}, body: {} }, action: { type: 'latency', distribution: 'uniform', params: { min: 10, max: 20 } } }),
      expect.objectContaining({ id: expect.stringMatching(RULE_ID), target: 'webhook', match: { url_prefix: 'http://127.0.0.1:4000/' }, action: { type: 'duplicate' } }),
    ]);
    expect((await get('/v1/sim/rules/slow-v2')).json().id).toBe('slow-v2');
    expect((await del('/v1/sim/rules/slow-v2')).statusCode).toBe(200);
  });

  it('a file rule that could match no route ends the start on one line naming it, and nothing is made (2026-12-05)', async () => {
    const path = join(dir, 'faults.yaml');
    writeFileSync(path, ['rules:', '  - id: typo', '    match: { route: /v1/sim/intnet }', '    action: { type: error, status: 502 }', '  - match: { dialect: native, method: PATCH }', '    action: { type: latency, distribution: fixed, params: { ms: 10 } }', '  - id: fine', '    match: { route: /v1/sim/intent }', '    action: { type: error, status: 503 }', ''].join('\n'));
    await expect(buildTestApp({ FAULTS_FILE: path })).rejects.toThrow(
      'FAULTS_FILE: rules[0] (typo) matches no route paysim answers, so it would never apply: no route matches /v1/sim/intnet; rules[1] matches no route paysim answers, so it would never apply: the native API has no PATCH route',
    );
    t = await buildTestApp();
  });

  it('takes what GET /v1/sim/rules answered, saved as it is (2026-12-05): the same rules, ids and windows, counters at 0', async () => {
    t = await buildTestApp();
    await post({ id: 'v2-down', match: { dialect: 'payment-server-v2' }, count: 2, action: { type: 'error', status: 503, retry_after_seconds: 2 } });
    await post({ match: { url_prefix: 'http://127.0.0.1:4000/' }, window: { from: 1000, until: 7_200_000 }, action: { type: 'drop_attempts', n: 1 } });
    expect((await t.app.inject({ method: 'GET', url: '/api/v2/pending-payments' })).statusCode).toBe(503);
    const saved = (await get('/v1/sim/rules')).payload;
    expect(JSON.parse(saved).data[0]).toMatchObject({ id: 'v2-down', hits: 1 });
    await t.app.close();

    const path = join(dir, 'saved.json');
    writeFileSync(path, saved);
    t = await buildTestApp({ FAULTS_FILE: path });
    const listed = JSON.parse(saved).data.map((rule: Record<string, unknown>) => ({ ...rule, hits: 0, matched: 0, remaining: rule.count, created_at: at(), last_hit_at: null }));
    expect((await get('/v1/sim/rules')).json()).toEqual({ data: listed });
  });
});
