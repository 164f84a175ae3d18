import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FULL_STORES } from '../../src/core/errors.ts';
import { OUTBOX_EVENT_TYPES } from '../../src/core/fluxpay/model.ts';
import { buildTestApp, onRedis, type TestApp } from '../helpers/app.ts';
import { eventually } from '../helpers/receiver.ts';
import { hasPromtool, inCi, PROMTOOL_MISSING, promtoolCheckMetrics } from '../helpers/promtool.ts';
import { afterAttempts, createIntent, deliveryWhen, metricSample, webhookFixtures } from '../helpers/webhooks.ts';

/**
 * The metrics users asked for: refunds (count and amount), end-to-end webhook latency (event to
 * 2xx, across retries), and how full each bounded store is (records against the bound).
 * @see issue 8 "Metrics that users asked for"
 */

const { app, receiver, closeAll } = webhookFixtures({ WEBHOOK_MAX_RPS: '0', WEBHOOK_BACKOFF_MS: '1000' });
afterEach(closeAll);

async function metricsText(t: TestApp): Promise<string> {
  const res = await t.app.inject({ url: '/metrics' });
  expect(res.statusCode).toBe(200);
  return res.body;
}

async function approved(t: TestApp, body: Record<string, unknown>): Promise<string> {
  const id = await createIntent(t, { scenario: 'approve', ...body });
  await t.clock.advance(200);
  expect((await t.app.inject({ url: `/v1/sim/intents/${id}` })).json().status).toBe('APPROVED');
  return id;
}

describe('refunds', () => {
  it('counts each refund (partial ones too) and sums the amount by currency; a refused refund counts nothing', async () => {
    const t = await app();
    const before = await metricsText(t);
    expect(metricSample(before, 'refunds_total{currency="KRW"}')).toBe(0);
    expect(metricSample(before, 'refunded_amount_total{currency="KRW"}')).toBe(0);

    const krw = await approved(t, { reservation_id: 'r-krw', amount: 45_000 });
    const usd = await approved(t, { reservation_id: 'r-usd', amount: 1_999, currency: 'USD' });
    const refund = (id: string, body: Record<string, unknown>) => t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/refund`, payload: body });
    expect((await refund(krw, { amount: 5_000 })).statusCode).toBe(200);
    expect((await refund(krw, {})).statusCode).toBe(200); // the remaining 40,000
    expect((await refund(krw, { amount: 1 })).statusCode).toBe(409); // nothing left
    expect((await refund(usd, { amount: 2_000 })).statusCode).toBe(422); // more than the amount
    expect((await refund(usd, { amount: 999 })).statusCode).toBe(200);

    const text = await metricsText(t);
    expect(metricSample(text, 'refunds_total{currency="KRW"}')).toBe(2);
    expect(metricSample(text, 'refunded_amount_total{currency="KRW"}')).toBe(45_000);
    expect(metricSample(text, 'refunds_total{currency="USD"}')).toBe(1);
    expect(metricSample(text, 'refunded_amount_total{currency="USD"}')).toBe(999);
    expect(text).toContain('# TYPE refunds_total counter');
    expect(text).toContain('# TYPE refunded_amount_total counter');
  });
});

describe('end-to-end webhook latency', () => {
  it('observes event → 2xx once per delivery, retries included; a failed delivery and a replay are not observed', async () => {
    let calls = 0;
    // The first attempt of the flaky receiver fails: its delivery lands one backoff (1 s ± jitter) later.
    const flaky = await receiver(() => (++calls === 1 ? { status: 503 } : { status: 200 }));
    const dead = await receiver(() => ({ status: 500 }));
    const t = await app({ WEBHOOK_MAX_RETRIES: '1' });
    const a = await createIntent(t, { webhook_url: flaky.url() });
    const b = await createIntent(t, { webhook_url: dead.url() });
    await t.clock.advance(200);
    const retrying = await deliveryWhen(t, `?payment_intent_id=${a}`, afterAttempts(1, 'retrying'), 'a retrying');
    const failing = await deliveryWhen(t, `?payment_intent_id=${b}`, afterAttempts(1, 'retrying'), 'b retrying');
    const wait = Math.max(Date.parse(retrying.next_attempt_at!), Date.parse(failing.next_attempt_at!)) - t.clock.now();
    await t.clock.advance(wait);
    const delivered = await deliveryWhen(t, `?payment_intent_id=${a}`, afterAttempts(2, 'delivered'), 'a delivered');
    await deliveryWhen(t, `?payment_intent_id=${b}`, afterAttempts(2, 'failed'), 'b failed');

    const text = await metricsText(t);
    expect(text).toContain('# TYPE webhook_delivery_latency_seconds histogram');
    expect(metricSample(text, 'webhook_delivery_latency_seconds_count')).toBe(1);
    // The event was published when the intent was decided; the 2xx came at the retry, on the manual
    // clock: no earlier than the retry was sent, no later than where the clock stands (the answer of
    // a real socket may come in after the clock has moved on to the other retry's time).
    const created = Date.parse(delivered.created_at);
    const sum = metricSample(text, 'webhook_delivery_latency_seconds_sum')!;
    expect(sum).toBeGreaterThanOrEqual((Date.parse(delivered.attempts[1]!.at) - created) / 1000);
    expect(sum).toBeLessThanOrEqual((t.clock.now() - created) / 1000);
    expect(sum).toBeGreaterThan(0.5);
    expect(metricSample(text, 'webhook_delivery_latency_seconds_bucket{le="0.5"}')).toBe(0);
    // Between 1 and 5 s, the first retries' steps (2026-12-05: nothing between 2.5 and 5 s made a p99 of 4.09 s out of 2.5 s retries).
    expect(['1.5', '2', '4'].map((le) => metricSample(text, `webhook_delivery_latency_seconds_bucket{le="${le}"}`) !== undefined)).toEqual([true, true, true]);
    expect(metricSample(text, 'webhook_delivery_latency_seconds_bucket{le="+Inf"}')).toBe(1);

    // A replay delivers again, but its latency from the original event would say nothing.
    expect((await t.app.inject({ method: 'POST', url: `/v1/sim/webhooks/deliveries/${delivered.id}/replay` })).statusCode).toBe(202);
    await deliveryWhen(t, `?payment_intent_id=${a}`, afterAttempts(3, 'delivered'), 'a replayed');
    expect(metricSample(await metricsText(t), 'webhook_delivery_latency_seconds_count')).toBe(1);
  });
});

describe('requests whose client went away', () => {
  it('are counted in http_requests_total as 499 (no response was sent), once, though their work was done', async () => {
    // An /api/v2 payment answers once decided: with the delay scenario, ten minutes on.
    const t = await app({ DEFAULT_DELAY_DELAY_MS: '600000' });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address() as AddressInfo;
    const client = new AbortController();
    const sent = fetch(`http://127.0.0.1:${address.port}/api/v2/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim-scenario': 'delay' },
      body: JSON.stringify({ tx_id: 'tx_gone', order_id: 1, user_id: 1, amount: 100, callback_url: 'http://127.0.0.1:9/unused' }),
      signal: client.signal,
    }).catch((error: unknown) => error);
    await eventually(async () => ((await t.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the payment made');
    client.abort();
    await sent;
    const sample = 'http_requests_total{method="POST",route="/api/v2/payments",status_code="499"}';
    await eventually(async () => (metricSample(await metricsText(t), sample) === 1 ? true : undefined), 'the abandoned request counted');
    // Its answer, when the decision comes, is sent to no one and not counted again.
    await t.clock.advance(600_000);
    expect(await t.app.v2Payments.pendingDecisions()).toBe(0);
    const text = await metricsText(t);
    expect(metricSample(text, sample)).toBe(1);
    expect(text.match(/^http_requests_total\{method="POST",route="\/api\/v2\/payments",.*$/gm)).toEqual([`${sample} 1`]);
    // Requests answered are counted once, under their status, whether over a socket or injected.
    await fetch(`http://127.0.0.1:${address.port}/healthz`).then((res) => res.text());
    for (let i = 0; i < 2; i++) await t.app.inject({ url: '/healthz' });
    expect((await metricsText(t)).match(/^http_requests_total\{method="GET",route="\/healthz",.*$/gm)).toEqual(['http_requests_total{method="GET",route="/healthz",status_code="200"} 3']);
  });

  it('are logged once, as closed with 499 and their duration, though their answer comes later (2026-12-07, a user test: counted, never logged)', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const t = await buildTestApp({ DEFAULT_DELAY_DELAY_MS: '600000', WEBHOOK_MAX_RPS: '0' }, { logs });
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const address = t.app.server.address() as AddressInfo;
      const client = new AbortController();
      const sent = fetch(`http://127.0.0.1:${address.port}/api/v2/payments?token=secret-LEAK`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sim-scenario': 'delay', 'x-request-id': 'gone-1' },
        body: JSON.stringify({ tx_id: 'tx_gone_logged', order_id: 1, user_id: 1, amount: 100, callback_url: 'http://127.0.0.1:9/unused' }),
        signal: client.signal,
      }).catch((error: unknown) => error);
      await eventually(async () => ((await t.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the payment made');
      client.abort();
      await sent;
      const lines = () => logs.filter((line) => line.request_id === 'gone-1' && line.status_code !== undefined);
      await eventually(() => (lines().length > 0 ? true : undefined), 'the line of the closed request');
      expect(lines()).toEqual([
        expect.objectContaining({ level: 'info', msg: 'request closed before its answer ended', method: 'POST', url: '/api/v2/payments?token=[redacted]', route: '/api/v2/payments', status_code: 499, duration_ms: expect.any(Number) }),
      ]);
      // Its answer, made when the decision comes, goes to no one and is not logged again.
      await t.clock.advance(600_000);
      expect(await t.app.v2Payments.pendingDecisions()).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(lines()).toHaveLength(1);
      // An answered request is logged once, as completed.
      await fetch(`http://127.0.0.1:${address.port}/healthz`, { headers: { 'x-request-id': 'answered-1' } }).then((res) => res.text());
      await eventually(() => (logs.some((line) => line.request_id === 'answered-1') ? true : undefined), 'the answered request logged');
      expect(logs.filter((line) => line.request_id === 'answered-1').map((line) => [line.msg, line.status_code])).toEqual([['request completed', 200]]);
      // One whose connection a response_lost rule reset: logged once, as closed with 499, as it is counted.
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match: { route: '/v1/sim/intent' }, count: 1, action: { type: 'response_lost' } } })).statusCode).toBe(201);
      const lost = await fetch(`http://127.0.0.1:${address.port}/v1/sim/intent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'lost-1' },
        body: JSON.stringify({ reservation_id: 'rsv_lost_logged', amount: 100 }),
      }).catch((error: unknown) => error);
      expect(lost).toBeInstanceOf(TypeError);
      await eventually(() => (logs.some((line) => line.request_id === 'lost-1') ? true : undefined), 'the lost request logged');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(logs.filter((line) => line.request_id === 'lost-1').map((line) => [line.msg, line.status_code])).toEqual([['request closed before its answer ended', 499]]);
      // One a timeout rule holds and then resets writes its own line, and only that one, whether its client waits or leaves first (rev74d: two).
      // The client leaves once the rule holds both (its hits say so), not after a fixed 100 ms: with Redis
      // on a loaded machine the rule's plan took longer than that, and the client left before the hold
      // (h79d: 3 runs in 4 at load 6-9). The hold is long enough for the hits to be read meanwhile.
      const timeoutRule = { match: { route: '/v1/sim/intents', headers: { 'x-test-case': 'timeout' } }, action: { type: 'timeout', ms: 2000 } };
      const created = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: timeoutRule });
      expect(created.statusCode).toBe(201);
      const ruleId = (created.json() as { id: string }).id;
      const leaving = new AbortController();
      const held = ['timeout-waits', 'timeout-leaves'].map((id) =>
        fetch(`http://127.0.0.1:${address.port}/v1/sim/intents`, { headers: { 'x-test-case': 'timeout', 'x-request-id': id }, signal: id === 'timeout-leaves' ? leaving.signal : undefined }).catch((error: unknown) => error),
      );
      await eventually(async () => ((await t.app.inject({ url: `/v1/sim/rules/${ruleId}` })).json() as { hits: number }).hits === 2 || undefined, 'both requests held');
      leaving.abort();
      // The client left while the rule held it (its fetch aborted, not reset): else this did not test 'leaves first'.
      const [waited, left] = await Promise.all(held);
      expect([waited instanceof TypeError, (left as Error).name]).toEqual([true, 'AbortError']);
      await eventually(() => (logs.filter((line) => String(line.request_id).startsWith('timeout-')).length >= 2 ? true : undefined), 'the held requests logged');
      await new Promise((resolve) => setTimeout(resolve, 400));
      for (const id of ['timeout-waits', 'timeout-leaves']) expect(logs.filter((line) => line.request_id === id).map((line) => line.msg)).toEqual(['fault rule timeout: connection reset']);
      // One handed to a namespace's app is logged by that app only (rev74e: nothing tested it; without, two lines).
      const namespaced = await t.app.inject({ url: '/v1/sim/intents', headers: { 'x-sim-namespace': 'ci-1', 'x-request-id': 'namespaced-1' } });
      expect(namespaced.statusCode).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(logs.filter((line) => line.request_id === 'namespaced-1').map((line) => [line.msg, line.status_code])).toEqual([['request completed', 200]]);
    } finally {
      await t.app.close();
    }
  });

  it('a request whose answer a response_lost rule lost is counted as 499, once: its intent made, its answer sent to no one', async () => {
    const t = await app();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address() as AddressInfo;
    const rule = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match: { route: '/v1/sim/intent' }, count: 1, action: { type: 'response_lost' } } });
    expect(rule.statusCode).toBe(201);
    const sent = await fetch(`http://127.0.0.1:${address.port}/v1/sim/intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reservation_id: 'rsv_lost', amount: 100 }),
    }).catch((error: unknown) => error);
    expect(sent).toBeInstanceOf(TypeError); // fetch failed: the connection was reset
    expect((await t.app.inject({ url: '/v1/sim/intents?reservation_id=rsv_lost' })).json().data).toHaveLength(1);
    const sample = 'http_requests_total{method="POST",route="/v1/sim/intent",status_code="499"}';
    await eventually(async () => (metricSample(await metricsText(t), sample) === 1 ? true : undefined), 'the lost answer counted');
    expect((await metricsText(t)).match(/^http_requests_total\{method="POST",route="\/v1\/sim\/intent",.*$/gm)).toEqual([`${sample} 1`]);
  });
});

describe('a stream closed by its client', () => {
  it('the console’s live feed, read and closed (a tab closed), is counted under the 200 it answered, not as a 499', async () => {
    const t = await app();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address() as AddressInfo;
    const client = new AbortController();
    const res = await fetch(`http://127.0.0.1:${address.port}/console/events`, { signal: client.signal });
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream; charset=utf-8']);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('event: hello');
    client.abort();
    await reader.closed.catch(() => undefined);
    const series = (text: string) => text.match(/^http_requests_total\{method="GET",route="\/console\/events",.*$/gm);
    await eventually(async () => (series(await metricsText(t)) !== null ? true : undefined), 'the closed stream counted');
    expect(series(await metricsText(t))).toEqual(['http_requests_total{method="GET",route="/console/events",status_code="200"} 1']);
    // No response time: a stream's lifetime is not one.
    expect(await metricsText(t)).not.toContain('http_request_duration_seconds_count{method="GET",route="/console/events"');
  });
});

describe('webhook deliveries waiting to start', () => {
  it('webhook_queue_waiting counts what WEBHOOK_QUEUE_MAX bounds: with Redis the shared stream’s, not only what this replica read', async () => {
    const rx = await receiver(() => ({ hang: true }));
    const t = await app({ WEBHOOK_CONCURRENCY: '1', WEBHOOK_TIMEOUT_MS: '30000' });
    for (let i = 0; i < 6; i++) await createIntent(t, { reservation_id: `r-q-${i}`, scenario: 'approve', webhook_url: rx.url() });
    await t.clock.advance(200);
    await rx.waitFor(1);
    // One attempt in flight (the receiver never answers), five waiting: with Redis, at most two of
    // them read by this replica (its read-ahead), the rest still in the stream.
    // Until the replica has read ahead (with Redis), the two figures move: wait for both.
    const held = onRedis ? 2 : 5;
    const waiting = await eventually(async () => {
      const text = await metricsText(t);
      return metricSample(text, 'webhook_queue_waiting') === 5 && metricSample(text, 'webhook_queue_depth') === held ? text : undefined;
    }, `five deliveries waiting to start, ${held} of them held by this process`);
    expect(metricSample(waiting, 'webhook_in_flight')).toBe(1);
    expect(rx.requests).toHaveLength(1);
  });
});

describe('store fill', () => {
  it('store_records and store_capacity per bounded store, read when scraped', async () => {
    const rx = await receiver();
    const t = await app({ STORE_MAX_INTENTS: '50', IDEMPOTENCY_MAX_KEYS: '40', WEBHOOK_LOG_MAX: '30', BOOKINGS_MAX: '20', V2_PAYMENTS_MAX: '10' });
    const empty = await metricsText(t);
    const stores = ['intents', 'idempotency_keys', 'webhook_deliveries', 'bookings', 'v2_payments'];
    expect(stores.map((s) => metricSample(empty, `store_records{store="${s}"}`))).toEqual([0, 0, 0, 0, 0]);
    expect(stores.map((s) => metricSample(empty, `store_capacity{store="${s}"}`))).toEqual([50, 40, 30, 20, 10]);
    expect(stores.map((s) => metricSample(empty, `store_fill_ratio{store="${s}"}`))).toEqual([0, 0, 0, 0, 0]);
    // Every store that can refuse with STORE_FULL has its series from the start, so rate() sees the first refusals.
    expect(FULL_STORES.map((s) => metricSample(empty, `store_full_total{store="${s}"}`))).toEqual(FULL_STORES.map(() => 0));

    for (let i = 0; i < 3; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'idempotency-key': `key-${i}` }, payload: { reservation_id: `r-${i}`, amount: 100, webhook_url: rx.url() } });
      expect(res.statusCode).toBe(200);
    }
    await createIntent(t, { reservation_id: 'r-unkeyed', amount: 100 });
    const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_test_001' }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
    expect(booked.statusCode).toBe(201);
    await t.clock.advance(200);
    await rx.waitFor(3);
    const paid = await t.app.inject({ method: 'POST', url: '/api/v2/payments', payload: { tx_id: 'tx_fill', order_id: 1, user_id: 1, amount: 100, callback_url: rx.url() } });
    expect(paid.json().status).toBe('PAYMENT_COMPLETED');

    const text = await metricsText(t);
    expect(stores.map((s) => metricSample(text, `store_records{store="${s}"}`))).toEqual([4, 3, 4, 1, 1]);
    expect(stores.map((s) => metricSample(text, `store_capacity{store="${s}"}`))).toEqual([50, 40, 30, 20, 10]);
    expect(stores.map((s) => metricSample(text, `store_fill_ratio{store="${s}"}`))).toEqual([4 / 50, 3 / 40, 4 / 30, 1 / 20, 1 / 10]);
    expect(text).toContain('# TYPE store_records gauge');
    expect(text).toContain('# TYPE store_capacity gauge');
    expect(text).toContain('# TYPE store_fill_ratio gauge');
  });

  it('store_fill_ratio is the fullest namespace’s, where the records and bounds /metrics adds up hide it', async () => {
    const t = await app({ STORE_MAX_INTENTS: '2' });
    const create = (n: number) =>
      t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'x-sim-namespace': 'loadtest' }, payload: { reservation_id: `r-ns-${n}`, amount: 100, scenario: 'delay' } });
    expect([(await create(1)).statusCode, (await create(2)).statusCode]).toEqual([200, 200]);
    const full = await create(3);
    expect([full.statusCode, full.json().error.code]).toEqual([503, 'STORE_FULL']);
    // The default namespace half full: the fullest is 1, where a sum of the fills would say 1.5.
    await createIntent(t, { reservation_id: 'r-root', amount: 100, scenario: 'delay' });
    const text = await metricsText(t);
    expect(['store_records', 'store_capacity', 'store_fill_ratio', 'store_full_total'].map((m) => metricSample(text, `${m}{store="intents"}`))).toEqual([3, 4, 1, 1]);
  });

  it('a full store is told in the log once a minute at most, per store, with the refusals since and what makes room (before 2026-12-05 only each request\'s info line said so)', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const t = await buildTestApp({ STORE_MAX_INTENTS: '1' }, { logs });
    try {
      await createIntent(t, { reservation_id: 'r-held', amount: 100, scenario: 'delay' });
      for (let i = 0; i < 3; i++) expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-full-${i}`, amount: 100 } })).statusCode).toBe(503);
      expect(logs.filter((l) => l.level === 'warn').map((l) => [l.store, l.refused, l.msg])).toEqual([
        ['intents', 1, 'the intents store is full: requests answer 503 STORE_FULL. The intents store is full of PENDING intents, which it keeps until each is decided: retry once some are (after their delay), or raise STORE_MAX_INTENTS.'],
      ]);
    } finally {
      await t.app.close();
    }
  });

  it.skipIf(!hasPromtool && !inCi)('the new families pass promtool check metrics', async () => {
    if (!hasPromtool) throw new Error(PROMTOOL_MISSING);
    const t = await app();
    const id = await approved(t, { reservation_id: 'r-p', amount: 100 });
    expect((await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/refund`, payload: {} })).statusCode).toBe(200);
    const text = await metricsText(t);
    for (const family of ['refunds_total', 'refunded_amount_total', 'webhook_attempts_total', 'webhook_retries_total', 'webhook_delivery_latency_seconds', 'store_records', 'store_capacity', 'v2_payments_total']) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    const { code, output } = await promtoolCheckMetrics(text);
    expect(output).toBe('');
    expect(code).toBe(0);
  });
});

describe('counters with a known set of label values', () => {
  // A series born at its first increment loses that increment to rate() and increase(): in a
  // review's run the dashboard's "Intents decided by outcome" integrated to FAILED 0 while 23 failed.
  it('are there at 0 on a fresh app, every known label value', async () => {
    const text = await metricsText(await app());
    const expected = [
      ...['approve', 'fail', 'delay', 'random', 'mix', 'card'].map((scenario) => `payment_intents_created_total{scenario="${scenario}"}`),
      ...['APPROVED', 'FAILED', 'CANCELLED'].map((status) => `payment_intents_finalized_total{status="${status}"}`),
      ...OUTBOX_EVENT_TYPES.map((type) => `fluxpay_outbox_published_total{event_type="${type}"}`),
      'payments_executed_total{result="success",failure_code="none"}',
      ...['DECLINE_2', 'DECLINE_8', 'card_declined', 'insufficient_funds', 'expired_card', 'incorrect_cvc', 'processing_error'].map(
        (code) => `payments_executed_total{result="failure",failure_code="${code}"}`,
      ),
      'webhook_attempt_duration_seconds_count{outcome="success"}',
      'webhook_attempt_duration_seconds_count{outcome="failure"}',
      // Already there before: store_full_total, bookings_total, v2_payments_total, the webhook counters.
      'store_full_total{store="intents"}',
      'bookings_total{status="failed"}',
      'v2_payments_total{status="PAYMENT_FAILED"}',
      'webhook_deliveries_total{result="failed"}',
      'fluxpay_sagas_total{status="COMPENSATED"}',
    ];
    expect(expected.filter((series) => metricSample(text, series) !== 0)).toEqual([]);
    // No other failure code: the CVV digits that approve (0, 1, 9) have none.
    expect(text).not.toContain('failure_code="DECLINE_0"');
  });

  it('ready: 1 while /readyz answers 200 (with Redis stopped or silent, 0: test/integration/redis-replicas.test.ts)', async () => {
    const text = await metricsText(await app());
    expect(metricSample(text, 'ready')).toBe(1);
    expect(text).toContain('# TYPE ready gauge');
  });

  it('add their first event to the 0 (one series, counted once)', async () => {
    const t = await app();
    await createIntent(t, { scenario: 'fail' });
    await t.clock.advance(5_000);
    const text = await metricsText(t);
    expect(metricSample(text, 'payment_intents_created_total{scenario="fail"}')).toBe(1);
    expect(metricSample(text, 'payment_intents_finalized_total{status="FAILED"}')).toBe(1);
    expect(text.match(/^payment_intents_finalized_total\{status="FAILED"\}/gm)).toHaveLength(1);
  });
});

describe('request durations', () => {
  it.each([
    [7000, { '5': 0, '10': 1, '600': 1, '+Inf': 1 }],
    // 2026-12-05 (an SRE's check in a real Prometheus): with nothing between 1 and 2.5 s, the bookings API's 0.5–1.5 s payments read as a p99 of 2.47 s.
    [1200, { '1': 0, '1.5': 1, '2': 1, '2.5': 1 }],
    // Just above a bucket's lower edge, so that the request's own real time (tens of ms on a busy machine) cannot carry it past the next (700 ms left 50: a review saw 56).
    [520, { '0.5': 0, '0.75': 1, '1': 1 }],
  ] as const)('a %i ms fault-rule latency lands in the bucket just above it', async (ms, expected) => {
    // The rule's wait moves the clock Fastify times requests with (performance.now) by its delay, at once.
    let waited = 0;
    const realNow = performance.now.bind(performance);
    const now = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + waited);
    try {
      const t = await buildTestApp({}, { faultWait: async (ms) => void (waited += ms) });
      try {
        const rule = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match: { route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'fixed', params: { ms } } } });
        expect(rule.statusCode, rule.body).toBe(201);
        const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'rsv_slow', amount: 1000 } });
        expect(res.statusCode).toBe(200);
        const text = await metricsText(t);
        const bucket = (le: string) => metricSample(text, `http_request_duration_seconds_bucket{le="${le}",method="POST",route="/v1/sim/intent",status_code="200"}`);
        expect(metricSample(text, 'http_request_duration_seconds_sum{method="POST",route="/v1/sim/intent",status_code="200"}')).toBeGreaterThanOrEqual(ms / 1000);
        expect(Object.fromEntries(Object.keys(expected).map((le) => [le, bucket(le)]))).toEqual(expected);
      } finally {
        await t.app.close();
      }
    } finally {
      now.mockRestore();
    }
  });
});
