import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { createOrder, errorOf, fluxpayApps, fpError, resultOf, SUCCESS, type Json } from '../helpers/fluxpay.ts';
import { metricSample } from '../helpers/webhooks.ts';

/**
 * Issue 12 "Rate limiting", black box through the app on the manual clock: every FluxPay answer
 * carries the IETF draft `RateLimit-*` headers; over a route group's limit (the billing policy's
 * `rateLimits:`) a client gets 429 COMMON_429 with `Retry-After`; clients (`X-Client-Id`, else
 * the remote address) and route groups have buckets of their own; windows end on the injected
 * clock; other APIs are not limited; rejections are counted in /metrics.
 */

const { app, closeAll } = fluxpayApps();
afterEach(closeAll);

const dir = mkdtempSync(join(tmpdir(), 'fluxpay-rate-limits-'));
let files = 0;
/** A billing policy file with these `rateLimits:` (YAML flow mappings, one per group). */
function policyWith(limits: Record<string, { max: number; windowSeconds?: number }>): string {
  const file = join(dir, `policy-${++files}.yaml`);
  const lines = Object.entries(limits).map(([group, limit]) => `  ${group}: ${JSON.stringify(limit)}`);
  writeFileSync(file, `services:\n  ai-writer:\n    name: AI Writer\n    creditsPerUse: 10\nrateLimits:\n${lines.join('\n')}\n`);
  return file;
}

/** The rate-limit headers of an answer (and Retry-After), by their wire names. */
function limitHeaders(res: LightMyRequestResponse): Record<string, unknown> {
  return Object.fromEntries(Object.entries(res.headers).filter(([name]) => name.startsWith('ratelimit-') || name === 'retry-after'));
}
const headers = (limit: number, remaining: number, reset: number) => ({ 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(remaining), 'ratelimit-reset': String(reset) });
const refused = (limit: number, reset: number) => ({ ...headers(limit, 0, reset), 'retry-after': String(reset) });
const tooMany = (max: number, windowSeconds: number, group: string, retry: number) => fpError('COMMON_429', `Rate limit exceeded: ${max} requests per ${windowSeconds} s for ${group}; retry in ${retry} s.`);

const orderBody = { userId: 'user_1', serviceId: 'ai-writer', orderName: 'AI Writer report', amount: 15000 };
function postOrder(t: TestApp, clientId?: string, options: { remoteAddress?: string } = {}) {
  return t.app.inject({ method: 'POST', url: '/api/v1/orders', payload: orderBody, headers: clientId === undefined ? {} : { 'x-client-id': clientId }, ...options });
}
function get(t: TestApp, url: string, clientId?: string) {
  return t.app.inject({ url, headers: clientId === undefined ? {} : { 'x-client-id': clientId } });
}

describe('RateLimit headers', () => {
  it('every FluxPay answer says where the client stands in its route group (default: 100000 a second), errors of a route included (not unknown paths)', async () => {
    const t = await app();
    const list = await get(t, '/api/v1/orders');
    expect(list.json()).toEqual({ ...SUCCESS, result: { items: [], nextCursor: null } });
    expect(limitHeaders(list)).toEqual(headers(100_000, 99_999, 1));

    // Another group, another bucket.
    const created = await postOrder(t);
    const order = resultOf(created);
    expect(limitHeaders(created)).toEqual(headers(100_000, 99_999, 1));
    const read = await get(t, `/api/v1/orders/${order.orderId as string}`);
    expect(resultOf(read)).toEqual(order);
    expect(limitHeaders(read)).toEqual(headers(100_000, 99_998, 1));

    // Errors of a FluxPay route are counted and carry the headers too.
    const unknown = `ord_${'0'.repeat(26)}`;
    const missing = await get(t, `/api/v1/orders/${unknown}`);
    expect(errorOf(missing)).toEqual([404, fpError('COMMON_404', `Order ${unknown} was not found.`)]);
    expect(limitHeaders(missing)).toEqual(headers(100_000, 99_997, 1));
    const invalid = await get(t, '/api/v1/credits/balance');
    expect(errorOf(invalid)).toEqual([400, fpError('COMMON_400', "querystring /userId: must have required property 'userId'", { errors: [{ field: 'query.userId', reason: "must have required property 'userId'" }] })]);
    expect(limitHeaders(invalid)).toEqual(headers(100_000, 99_996, 1));
    const room = await get(t, '/api/v1/waiting-rooms/nope');
    expect(errorOf(room)).toEqual([404, fpError('COMMON_404', 'Waiting room nope was not found.')]);
    expect(limitHeaders(room)).toEqual(headers(100_000, 99_999, 1));

    // Answered before any FluxPay route is chosen: not counted, no headers.
    const unrouted = await get(t, '/api/v1/orders/x/nope');
    expect(errorOf(unrouted)).toEqual([404, fpError('COMMON_404', 'No route GET /api/v1/orders/x/nope.')]);
    expect(limitHeaders(unrouted)).toEqual({});
    const method = await t.app.inject({ method: 'DELETE', url: '/api/v1/orders' });
    expect(errorOf(method)).toEqual([405, fpError('COMMON_405', 'DELETE is not allowed on /api/v1/orders; use GET, HEAD, POST.')]);
    expect(limitHeaders(method)).toEqual({});

    // Half a second later the window (1 s from the first request of each group) has 1 s left, rounded up.
    await t.clock.advance(500);
    expect(limitHeaders(await get(t, '/api/v1/outbox'))).toEqual(headers(100_000, 99_995, 1));
    await t.clock.advance(500);
    expect(limitHeaders(await get(t, '/api/v1/reconciliation'))).toEqual(headers(100_000, 99_999, 1));
  });

  it('the other APIs are not rate-limited and send no RateLimit headers (the payment service under /api/v1/payments included)', async () => {
    const t = await app({ FLUXPAY_POLICY_FILE: policyWith({ reads: { max: 1 }, orders: { max: 1 } }) });
    for (const url of ['/v1/sim/intents', '/v1/sim/intents', '/performances', '/performances', '/api/v1/payments/methods', '/api/v1/payments/methods', '/api/v2/pending-payments', '/api/v2/pending-payments', '/healthz']) {
      const res = await t.app.inject({ url, headers: { 'x-user-id': 'user_1' } });
      expect(res.statusCode, url).toBe(200);
      expect(limitHeaders(res), url).toEqual({});
    }
    // The FluxPay read limit is untouched by them.
    expect(limitHeaders(await get(t, '/api/v1/orders'))).toEqual(headers(1, 0, 1));
  });
});

describe('over the limit', () => {
  it('a burst gets exactly `max` answers, then 429 COMMON_429 with Retry-After until the window ends on the clock; nothing is done for a refused request', async () => {
    const t = await app({ FLUXPAY_POLICY_FILE: policyWith({ orders: { max: 3, windowSeconds: 10 } }) });
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await postOrder(t, 'shop-a'));
    expect(answers.map((res) => res.statusCode)).toEqual([200, 200, 200, 429, 429, 429]);
    expect(answers.slice(0, 3).map(limitHeaders)).toEqual([headers(3, 2, 10), headers(3, 1, 10), headers(3, 0, 10)]);
    for (const res of answers.slice(3)) {
      expect(res.json()).toEqual(tooMany(3, 10, 'orders', 10));
      expect(limitHeaders(res)).toEqual(refused(3, 10));
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    }
    // Three orders exist, not six; reads are another group (the default limit).
    const list = await get(t, '/api/v1/orders', 'shop-a');
    expect(resultOf(list).items).toHaveLength(3);
    expect(limitHeaders(list)).toEqual(headers(100_000, 99_999, 1));

    // Retry-After counts down with the clock (rounded up to whole seconds).
    await t.clock.advance(4_000);
    const later = await postOrder(t, 'shop-a');
    expect(errorOf(later)).toEqual([429, tooMany(3, 10, 'orders', 6)]);
    expect(limitHeaders(later)).toEqual(refused(3, 6));
    await t.clock.advance(5_999);
    expect(limitHeaders(await postOrder(t, 'shop-a'))).toEqual(refused(3, 1));

    // The window ends: a new one starts with the next request.
    await t.clock.advance(1);
    const again = await postOrder(t, 'shop-a');
    expect(again.statusCode).toBe(200);
    expect(limitHeaders(again)).toEqual(headers(3, 2, 10));
  });

  it('the OpenAPI document’s 429 example of each route is its own group’s limit as configured, the answer a client gets at the start of a window (before, every route said 100 a second for orders)', async () => {
    const t = await app({ FLUXPAY_POLICY_FILE: policyWith({ orders: { max: 3, windowSeconds: 10 }, reads: { max: 2, windowSeconds: 30 } }) });
    const document = (await t.app.inject({ url: '/openapi.json' })).json();
    const example429 = (path: string, method: string) => document.paths[path][method].responses['429'].content['application/json'].examples.rate_limited.value;
    expect(example429('/api/v1/orders', 'post')).toEqual(tooMany(3, 10, 'orders', 10));
    expect(example429('/api/v1/credits/balance', 'get')).toEqual(tooMany(2, 30, 'reads', 30));
    expect(example429('/api/v1/credits/use', 'post')).toEqual(tooMany(100_000, 1, 'credits', 1));
    // What the first refused request of a window gets is that example.
    for (let i = 0; i < 3; i++) await postOrder(t, 'doc');
    expect((await postOrder(t, 'doc')).json()).toEqual(example429('/api/v1/orders', 'post'));
  });

  it('each client has its own bucket: X-Client-Id, else the remote address (IPv6 by /64; an X-Client-Id that looks like an address is still another client)', async () => {
    const t = await app({ FLUXPAY_POLICY_FILE: policyWith({ orders: { max: 2, windowSeconds: 60 } }) });
    const statuses = async (send: () => Promise<LightMyRequestResponse>, n: number) => {
      const out = [];
      for (let i = 0; i < n; i++) out.push((await send()).statusCode);
      return out;
    };
    expect(await statuses(() => postOrder(t, 'shop-a'), 3)).toEqual([200, 200, 429]);
    expect(await statuses(() => postOrder(t, 'shop-b'), 3)).toEqual([200, 200, 429]);
    // Without X-Client-Id: the remote address (127.0.0.1 under inject unless told otherwise).
    expect(await statuses(() => postOrder(t), 3)).toEqual([200, 200, 429]);
    expect(await statuses(() => postOrder(t, undefined, { remoteAddress: '10.1.2.3' }), 3)).toEqual([200, 200, 429]);
    expect(await statuses(() => postOrder(t, '127.0.0.1'), 3)).toEqual([200, 200, 429]);
    // IPv6 addresses count by their /64 (one host's privacy addresses are one client).
    expect(await statuses(() => postOrder(t, undefined, { remoteAddress: '2001:db8::1' }), 1)).toEqual([200]);
    expect(await statuses(() => postOrder(t, undefined, { remoteAddress: '2001:db8::2:3' }), 2)).toEqual([200, 429]);
    expect(await statuses(() => postOrder(t, undefined, { remoteAddress: '2001:db8:0:1::1' }), 1)).toEqual([200]);
    // A client id is the key even from another address: shop-a is still over its limit.
    const moved = await postOrder(t, 'shop-a', { remoteAddress: '10.9.9.9' });
    expect(errorOf(moved)).toEqual([429, tooMany(2, 60, 'orders', 60)]);
  });

  it('route groups: each FluxPay route counts in its group (writes by resource, reads together, waiting rooms together, other writes as orders)', async () => {
    const limits = Object.fromEntries(['orders', 'payments', 'credits', 'events', 'subscriptions', 'waiting-rooms', 'reads'].map((group) => [group, { max: 1, windowSeconds: 30 }]));
    const t = await app({ FLUXPAY_POLICY_FILE: policyWith(limits) });
    const order = `ord_${'0'.repeat(26)}`;
    const payment = `pk_${'0'.repeat(26)}`;
    const pairs: Array<[string, [string, string, Json?], [string, string, Json?]]> = [
      ['orders', ['POST', '/api/v1/orders', orderBody], ['POST', `/api/v1/orders/${order}/cancel`, {}]],
      ['payments', ['POST', '/api/v1/payments', { orderId: order, method: 'CARD', card: { number: '4242424242424242', cvv: '123' } }], ['POST', '/api/v1/payments/confirm', { paymentKey: payment, orderId: order, amount: 1 }]],
      ['credits', ['POST', '/api/v1/credits/use', { userId: 'u1', serviceId: 'ai-writer', usageId: 'use-1' }], ['POST', '/api/v1/credits/refund', { userId: 'u1', usageId: 'use-1' }]],
      ['events', ['POST', '/api/v1/events', { eventId: 'e1', type: 'service.usage.failed', serviceId: 'ai-writer', userId: 'u1', usageId: 'use-1' }], ['POST', '/api/v1/events', { eventId: 'e2', type: 'service.usage.failed', serviceId: 'ai-writer', userId: 'u1', usageId: 'use-1' }]],
      ['subscriptions', ['POST', '/api/v1/subscriptions', { userId: 'u1', planId: 'nope', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } }], ['POST', `/api/v1/subscriptions/sub_${'0'.repeat(26)}/cancel`, {}]],
      ['waiting-rooms', ['PUT', '/api/v1/waiting-rooms/sale', { admitPerSecond: 1, admissionTtlSeconds: 60, protectedServiceIds: [] }], ['GET', '/api/v1/waiting-rooms/sale']],
      ['reads', ['GET', `/api/v1/payments/${payment}`], ['GET', '/api/v1/reconciliation']],
    ];
    for (const [group, first, second] of pairs) {
      const [method1, url1, body1] = first;
      const one = await t.app.inject({ method: method1 as 'GET', url: url1, ...(body1 === undefined ? {} : { payload: body1 }) });
      expect(one.statusCode, `${group}: ${method1} ${url1}`).not.toBe(429);
      expect(limitHeaders(one), `${group}: ${method1} ${url1}`).toEqual(headers(1, 0, 30));
      const [method2, url2, body2] = second;
      const two = await t.app.inject({ method: method2 as 'GET', url: url2, ...(body2 === undefined ? {} : { payload: body2 }) });
      expect(errorOf(two), `${group}: ${method2} ${url2}`).toEqual([429, tooMany(1, 30, group, 30)]);
    }
    // Other writes count as orders: already used up.
    expect(errorOf(await t.app.inject({ method: 'POST', url: '/api/v1/webhook-subscriptions', payload: { url: 'http://127.0.0.1:9/hook', events: [] } }))).toEqual([429, tooMany(1, 30, 'orders', 30)]);
  });

  it('rejections are counted by route group in /metrics', async () => {
    const t = await app({ FLUXPAY_POLICY_FILE: policyWith({ orders: { max: 1, windowSeconds: 5 }, reads: { max: 2, windowSeconds: 5 } }) });
    for (let i = 0; i < 4; i++) await postOrder(t, 'shop-a');
    for (let i = 0; i < 3; i++) await get(t, '/api/v1/outbox', 'shop-a');
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metricSample(metrics, 'fluxpay_rate_limit_rejections_total{group="orders"}')).toBe(3);
    expect(metricSample(metrics, 'fluxpay_rate_limit_rejections_total{group="reads"}')).toBe(1);
    for (const group of ['payments', 'credits', 'events', 'waiting-rooms']) expect(metricSample(metrics, `fluxpay_rate_limit_rejections_total{group="${group}"}`), group).toBe(0);
    expect(metrics).toContain('# TYPE fluxpay_rate_limit_rejections_total counter');
  });
});

describe('X-Client-Id', () => {
  it('a malformed X-Client-Id is a 400 COMMON_400 naming the header, counted against no one', async () => {
    const t = await app({ FLUXPAY_POLICY_FILE: policyWith({ orders: { max: 2, windowSeconds: 60 } }) });
    const reason = "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit";
    for (const id of ['a:b', 'shop a', '-shop', 'x'.repeat(65), 'ünicode']) {
      const res = await postOrder(t, id);
      expect(errorOf(res), id).toEqual([400, fpError('COMMON_400', `header.x-client-id: ${reason}`, { errors: [{ field: 'header.x-client-id', reason }] })]);
      expect(limitHeaders(res), id).toEqual({});
    }
    // Neither the address nor anyone else was charged for them.
    expect(limitHeaders(await postOrder(t))).toEqual(headers(2, 1, 60));
    expect(limitHeaders(await postOrder(t, 'x'.repeat(64)))).toEqual(headers(2, 1, 60));
  });
});

describe('bounded store', () => {
  it('beyond FLUXPAY_RATE_LIMIT_MAX_KEYS the oldest window is dropped (that client starts a fresh window)', async () => {
    const t = await app({ FLUXPAY_POLICY_FILE: policyWith({ orders: { max: 5, windowSeconds: 60 } }), FLUXPAY_RATE_LIMIT_MAX_KEYS: '2' });
    await createOrder(t, {});
    expect(limitHeaders(await postOrder(t, 'c1'))).toEqual(headers(5, 4, 60));
    expect(limitHeaders(await postOrder(t, 'c1'))).toEqual(headers(5, 3, 60));
    // A third window evicts the oldest: the address's (from createOrder).
    expect(limitHeaders(await postOrder(t, 'c2'))).toEqual(headers(5, 4, 60));
    expect((await t.app.stores.rateLimits.stats()).size).toBe(2);
    expect(limitHeaders(await postOrder(t, 'c1'))).toEqual(headers(5, 2, 60));
    // The address starts afresh (4 left, not 3), evicting c1, which starts afresh in turn.
    expect(limitHeaders(await postOrder(t))).toEqual(headers(5, 4, 60));
    expect(limitHeaders(await postOrder(t, 'c1'))).toEqual(headers(5, 4, 60));
    expect((await t.app.stores.rateLimits.stats()).size).toBe(2);
  });
});
