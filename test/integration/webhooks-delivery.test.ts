import { afterEach, describe, expect, it } from 'vitest';
import { ULID, type TestApp } from '../helpers/app.ts';
import { closedPort, eventually } from '../helpers/receiver.ts';
import { afterAttempts, createIntent, deliveryWhen, listDeliveries, metricSample, webhookFixtures, type DeliveryView } from '../helpers/webhooks.ts';

/**
 * Delivery against a real receiver: retries with backoff, the cap on retries, network errors,
 * timeouts, 410 Gone, Retry-After, a full queue and a slow receiver next to a healthy one.
 * Retries wait on the ManualClock; the test moves it to each `next_attempt_at`.
 * @see issue 3 "Delivery"
 */

const WHD_ID = new RegExp(`^whd_${ULID}$`);

const { app, receiver, closeAll } = webhookFixtures({ WEBHOOK_MAX_RPS: '0', WEBHOOK_BACKOFF_MS: '1000' });
afterEach(closeAll);

async function deliveriesOf(t: TestApp, intentId: string): Promise<DeliveryView[]> {
  return (await listDeliveries(t, `?payment_intent_id=${intentId}`)).data;
}

/** Polls the log until the intent's (only) delivery satisfies `ready`. */
function deliveryOf(t: TestApp, intentId: string, ready: (d: DeliveryView) => boolean, what: string, timeoutMs?: number): Promise<DeliveryView> {
  return deliveryWhen(t, `?payment_intent_id=${intentId}`, ready, what, timeoutMs);
}

/** Moves the ManualClock exactly to the delivery's next_attempt_at. */
async function advanceTo(t: TestApp, d: DeliveryView): Promise<void> {
  expect(d.next_attempt_at).not.toBeNull();
  const due = Date.parse(d.next_attempt_at as string);
  expect(due).toBeGreaterThan(t.clock.now());
  await t.clock.advance(due - t.clock.now());
}

const ms = (iso: string) => Date.parse(iso);

async function metric(t: TestApp, line: string): Promise<number | undefined> {
  return metricSample((await t.app.inject({ url: '/metrics' })).body, line);
}

describe('retries', () => {
  it('a receiver failing 3 times then answering 200: 4 identical requests, backoff 1×, 2×, 4× within ±20 %', async () => {
    let n = 0;
    const rx = await receiver(() => (n++ < 3 ? { status: 500, body: 'boom' } : { status: 200 }));
    const t = await app();
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);

    let d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the first attempt');
    expect(d).toMatchObject({ status: 'retrying', failure_reason: null, attempts: [{ status_code: 500, error: null }] });
    for (let attempt = 2; attempt <= 4; attempt++) {
      const before = rx.requests.length;
      await advanceTo(t, d);
      await rx.waitFor(before + 1);
      d = await deliveryOf(t, id, afterAttempts(attempt), `attempt ${attempt}`);
    }

    expect(rx.requests).toHaveLength(4);
    expect(d.status).toBe('delivered');
    expect(d.failure_reason).toBeNull();
    expect(d.next_attempt_at).toBeNull();
    expect(d.id).toMatch(WHD_ID);
    expect(d.attempts.map((a) => a.status_code)).toEqual([500, 500, 500, 200]);
    expect(d.attempts.map((a) => a.error)).toEqual([null, null, null, null]);
    for (const a of d.attempts) expect(a.duration_ms).toBeGreaterThanOrEqual(0);

    // Backoff n = 1000 × 2^(n−1) ± 20 %.
    const at = d.attempts.map((a) => ms(a.at));
    const gaps = at.slice(1).map((x, i) => x - (at[i] as number));
    [1000, 2000, 4000].forEach((base, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(base * 0.8);
      expect(gaps[i]).toBeLessThanOrEqual(base * 1.2);
    });

    // Same bytes and the same webhook-id on every attempt; the timestamps are those of each attempt.
    const bodies = new Set(rx.requests.map((r) => r.body));
    expect(bodies.size).toBe(1);
    expect(new Set(rx.requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(rx.requests[0]!.headers['webhook-id']).toBe(d.event_id);
    expect(JSON.parse(rx.requests[0]!.body).id).toBe(d.event_id);
    expect(rx.requests.map((r) => r.headers['webhook-timestamp'])).toEqual(at.map((x) => String(Math.floor(x / 1000))));
    expect(rx.requests.map((r) => r.headers['x-timestamp'])).toEqual(at.map(String));
    // A fresh trace context per attempt.
    expect(new Set(rx.requests.map((r) => r.headers.traceparent)).size).toBe(4);

    // The intent's summary follows the delivery.
    const intent = (await t.app.inject({ url: `/v1/sim/intents/${id}` })).json();
    expect(intent.webhook).toEqual({ status: 'delivered', attempts: 4, last_status_code: 200, last_attempt_at: d.attempts[3]!.at });

    expect(await metric(t, 'webhook_retries_total')).toBe(3);
    expect(await metric(t, 'webhook_attempts_total{outcome="http_error"}')).toBe(3);
    expect(await metric(t, 'webhook_attempts_total{outcome="success"}')).toBe(1);
    expect(await metric(t, 'webhook_deliveries_total{result="delivered"}')).toBe(1);
  });

  it('WEBHOOK_MAX_RETRIES=2 with a receiver that always fails: 3 attempts, then failed max_retries_exceeded', async () => {
    const rx = await receiver(() => ({ status: 500 }));
    const t = await app({ WEBHOOK_MAX_RETRIES: '2' });
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    let d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'attempt 1');
    await advanceTo(t, d);
    d = await deliveryOf(t, id, afterAttempts(2, 'retrying'), 'attempt 2');
    await advanceTo(t, d);
    d = await deliveryOf(t, id, afterAttempts(3), 'attempt 3');

    expect(d.status).toBe('failed');
    expect(d.failure_reason).toMatch(/^max_retries_exceeded/);
    expect(d.failure_reason).toBe('max_retries_exceeded: HTTP 500');
    expect(d.next_attempt_at).toBeNull();
    expect(d.attempts.map((a) => a.status_code)).toEqual([500, 500, 500]);
    // Nothing more is attempted, however far the clock moves.
    await t.clock.advance(3_600_000);
    expect(rx.requests).toHaveLength(3);
    expect((await deliveriesOf(t, id))[0]!.attempts).toHaveLength(3);
    expect(await metric(t, 'webhook_deliveries_total{result="failed"}')).toBe(1);
    expect(await metric(t, 'webhook_retries_total')).toBe(2);
    expect(await metric(t, 'webhook_attempts_total{outcome="http_error"}')).toBe(3);
  });

  it('WEBHOOK_MAX_RETRIES=0: one attempt only', async () => {
    const rx = await receiver(() => ({ status: 502 }));
    const t = await app({ WEBHOOK_MAX_RETRIES: '0' });
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    const d = await deliveryOf(t, id, afterAttempts(1, 'failed'), 'the only attempt');
    expect(d).toMatchObject({ status: 'failed', failure_reason: 'max_retries_exceeded: HTTP 502', attempts: [{ status_code: 502, error: null }] });
  });

  it('a webhook_url with credentials is sent to without them, with Authorization: Basic made of them (before, undici dropped them and a receiver behind basic auth answered 401)', async () => {
    const rx = await receiver(() => ({ status: 200 }));
    const t = await app();
    // The password percent-encoded as a URL writes it: `s3cr@t:pw` is the credential's own text.
    const url = rx.url('/auth?token=abc123').replace('http://', 'http://ops:s3cr%40t%3Apw@');
    const id = await createIntent(t, { webhook_url: url });
    await t.clock.advance(200);
    await deliveryOf(t, id, afterAttempts(1, 'delivered'), 'the delivery');
    const [got] = rx.requests;
    expect([got?.url, got?.headers.authorization]).toEqual(['/auth?token=abc123', `Basic ${Buffer.from('ops:s3cr@t:pw').toString('base64')}`]);
    // Without credentials no Authorization is sent.
    const plain = await createIntent(t, { webhook_url: rx.url('/plain') });
    await t.clock.advance(200);
    await deliveryOf(t, plain, afterAttempts(1, 'delivered'), 'the plain delivery');
    expect(rx.requests.find((r) => r.url === '/plain')?.headers.authorization).toBeUndefined();
  });

  it('a 3xx is not success: retried', async () => {
    const rx = await receiver(() => ({ status: 302, headers: { location: '/elsewhere' } }));
    const t = await app();
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    const d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the first attempt');
    expect(d.attempts[0]).toMatchObject({ status_code: 302, error: null });
  });

  it('a network error (nothing listening) is recorded and retried', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/hooks`;
    const t = await app();
    const id = await createIntent(t, { webhook_url: url });
    await t.clock.advance(200);
    let d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the first attempt');
    expect(d.attempts[0]!.status_code).toBeNull();
    expect(d.attempts[0]!.error).toMatch(/ECONNREFUSED/);
    const at = ms(d.attempts[0]!.at);
    expect(ms(d.next_attempt_at!) - at).toBeGreaterThanOrEqual(800);
    expect(ms(d.next_attempt_at!) - at).toBeLessThanOrEqual(1200);
    await advanceTo(t, d);
    d = await deliveryOf(t, id, afterAttempts(2, 'retrying'), 'the retry');
    expect(d.attempts[1]!.error).toMatch(/ECONNREFUSED/);
    expect(await metric(t, 'webhook_attempts_total{outcome="network_error"}')).toBe(2);
  });
});

describe('timeout', () => {
  it('a receiver that never answers: "timeout after 300 ms", retried, then delivered when it answers', async () => {
    const rx = await receiver(() => ({ hang: true }));
    const t = await app({ WEBHOOK_TIMEOUT_MS: '300' });
    const id = await createIntent(t, { webhook_url: rx.url() });
    // Taken before the advance, which begins the attempt (after it, a stall there left the bound 50 ms: a review).
    const started = Date.now();
    await t.clock.advance(200);
    let d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the timed-out attempt');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(d.attempts[0]).toMatchObject({ status_code: null, error: 'timeout after 300 ms' });
    expect(d.attempts[0]!.duration_ms).toBeGreaterThanOrEqual(290);
    expect(d.attempts[0]!.duration_ms).toBeLessThan(2000);
    // The request was aborted: the receiver's held request is gone.
    await eventually(() => (rx.held === 0 ? true : undefined), 'the aborted request to be closed');

    rx.respond(() => ({ status: 204 }));
    await advanceTo(t, d);
    d = await deliveryOf(t, id, afterAttempts(2, 'delivered'), 'the retry');
    expect(d.attempts.map((a) => a.status_code)).toEqual([null, 204]);
    expect(rx.requests).toHaveLength(2);
    expect(rx.requests[1]!.body).toBe(rx.requests[0]!.body);
    expect(await metric(t, 'webhook_attempts_total{outcome="timeout"}')).toBe(1);
    expect(await metric(t, 'webhook_attempts_total{outcome="success"}')).toBe(1);
  });

  it('a receiver that answers headers but is slower than the timeout is also a timeout', async () => {
    const rx = await receiver(() => ({ status: 200, delayMs: 1500 }));
    const t = await app({ WEBHOOK_TIMEOUT_MS: '300' });
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    const d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the timed-out attempt');
    expect(d.attempts[0]).toMatchObject({ status_code: null, error: 'timeout after 300 ms' });
  });
});

describe('410 Gone', () => {
  it('fails the delivery with reason gone, disables the URL until re-enabled, and is never retried', async () => {
    const rx = await receiver(() => ({ status: 410 }));
    const t = await app();
    const url = rx.url('/gone');
    const first = await createIntent(t, { webhook_url: url });
    await t.clock.advance(200);
    const d = await deliveryOf(t, first, afterAttempts(1, 'failed'), 'the 410');
    expect(d).toMatchObject({ status: 'failed', failure_reason: 'gone', next_attempt_at: null, attempts: [{ status_code: 410, error: null }] });
    await t.clock.advance(600_000);
    expect(rx.requests).toHaveLength(1);

    const disabled = (await t.app.inject({ url: '/v1/sim/webhooks/disabled-urls' })).json();
    expect(disabled).toEqual({ data: [{ url, disabled_at: d.attempts[0]!.at }] });

    // A later intent's webhook to the same URL fails without a request.
    rx.respond(() => ({ status: 200 }));
    const second = await createIntent(t, { webhook_url: url });
    await t.clock.advance(200);
    const blocked = await deliveryOf(t, second, (x) => x.status === 'failed', 'the blocked delivery');
    expect(blocked).toMatchObject({ status: 'failed', failure_reason: 'endpoint_disabled', attempts: [], next_attempt_at: null });
    expect(rx.requests).toHaveLength(1);

    // Another path on the same origin is a different URL: not disabled.
    const other = await createIntent(t, { webhook_url: rx.url('/other') });
    await t.clock.advance(200);
    await deliveryOf(t, other, afterAttempts(1, 'delivered'), 'the other path');
    expect(rx.requests.map((r) => r.url)).toEqual(['/gone', '/other']);

    // Re-enable: 200, then the URL receives webhooks again; a second DELETE is a 404.
    const enabled = await t.app.inject({ method: 'DELETE', url: `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent(url)}` });
    expect(enabled.statusCode).toBe(200);
    expect(enabled.json()).toEqual({ url, enabled: true });
    expect((await t.app.inject({ url: '/v1/sim/webhooks/disabled-urls' })).json()).toEqual({ data: [] });
    const third = await createIntent(t, { webhook_url: url });
    await t.clock.advance(200);
    await deliveryOf(t, third, afterAttempts(1, 'delivered'), 'delivery after re-enabling');
    expect(rx.requests.map((r) => r.url)).toEqual(['/gone', '/other', '/gone']);

    const again = await t.app.inject({ method: 'DELETE', url: `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent(url)}` });
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('NOT_FOUND');
  });

  it('DELETE for a URL that was never disabled → 404 NOT_FOUND; without url → 400', async () => {
    const t = await app();
    const res = await t.app.inject({ method: 'DELETE', url: `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('http://127.0.0.1:9/never')}` });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('NOT_FOUND');
    const missing = await t.app.inject({ method: 'DELETE', url: '/v1/sim/webhooks/disabled-urls' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.code).toBe('VALIDATION_FAILED');
  });
});

describe('retry jitter and RANDOM_SEED', () => {
  /** The backoff of each of three retries (next attempt − the failed one) of a webhook whose receiver always fails, on an app with `seed`. */
  async function backoffs(seed: string): Promise<number[]> {
    const rx = await receiver(() => ({ status: 500 }));
    const t = await app({ RANDOM_SEED: seed });
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    const out: number[] = [];
    let d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the first attempt');
    for (let attempt = 2; attempt <= 4; attempt++) {
      out.push(ms(d.next_attempt_at!) - ms(d.attempts.at(-1)!.at));
      await advanceTo(t, d);
      d = await deliveryOf(t, id, afterAttempts(attempt), `attempt ${attempt}`);
    }
    return out;
  }

  it('repeats with the same seed, and differs with another', async () => {
    const first = await backoffs('42');
    // 1 s, 2 s, 4 s, each ±20 %.
    first.forEach((backoff, i) => {
      expect(backoff).toBeGreaterThanOrEqual(0.8 * 1000 * 2 ** i);
      expect(backoff).toBeLessThanOrEqual(1.2 * 1000 * 2 ** i);
    });
    expect(await backoffs('42')).toEqual(first);
    expect(await backoffs('43')).not.toEqual(first);
  });

  /** The first backoff of each of two webhooks made in one order, whose receivers fail after `delays` ms each. */
  async function overlapping(delays: [number, number]): Promise<number[]> {
    const t = await app({ RANDOM_SEED: '42' });
    const ids: string[] = [];
    for (const delayMs of delays) {
      const rx = await receiver(() => ({ status: 500, delayMs }));
      ids.push(await createIntent(t, { webhook_url: rx.url() }));
    }
    await t.clock.advance(200);
    const out: number[] = [];
    for (const id of ids) {
      const d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the first attempt');
      out.push(ms(d.next_attempt_at!) - ms(d.attempts[0]!.at));
    }
    return out;
  }

  it('draws as each attempt starts: two overlapping attempts keep their backoffs whichever ends first', async () => {
    expect(await overlapping([300, 0])).toEqual(await overlapping([0, 300]));
  });
});

describe('Retry-After', () => {
  it('503 with Retry-After: 7 → the next attempt exactly 7 s later (no jitter)', async () => {
    let n = 0;
    const rx = await receiver(() => (n++ === 0 ? { status: 503, headers: { 'retry-after': '7' } } : { status: 200 }));
    const t = await app();
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    const d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the 503');
    expect(d.attempts[0]!.status_code).toBe(503);
    expect(ms(d.next_attempt_at!)).toBe(ms(d.attempts[0]!.at) + 7000);

    await t.clock.advance(6999);
    expect(rx.requests).toHaveLength(1);
    expect((await deliveriesOf(t, id))[0]).toMatchObject({ status: 'retrying', attempts: [{ status_code: 503 }] });
    await t.clock.advance(1);
    const done = await deliveryOf(t, id, afterAttempts(2, 'delivered'), 'the retry');
    expect(ms(done.attempts[1]!.at) - ms(done.attempts[0]!.at)).toBe(7000);
  });

  it('429 with a Retry-After beyond WEBHOOK_BACKOFF_MAX_MS is capped', async () => {
    const rx = await receiver(() => ({ status: 429, headers: { 'retry-after': '120' } }));
    const t = await app({ WEBHOOK_BACKOFF_MAX_MS: '30000' });
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    const d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the 429');
    expect(ms(d.next_attempt_at!)).toBe(ms(d.attempts[0]!.at) + 30000);
  });

  it('Retry-After as an HTTP date is honoured', async () => {
    // Rounded up to the second the date can say: 20–21 s on (rounded down, a stall of the round trip could take it under 18 s: a review).
    const rx = await receiver(() => ({ status: 503, headers: { 'retry-after': new Date(Math.ceil((Date.now() + 20_000) / 1000) * 1000).toUTCString() } }));
    const t = await app();
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    const d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the 503');
    const delay = ms(d.next_attempt_at!) - ms(d.attempts[0]!.at);
    // Second granularity of the date and the time the round trip took.
    expect(delay).toBeGreaterThanOrEqual(18_000);
    expect(delay).toBeLessThanOrEqual(21_000);
  });

  it('Retry-After on a 500 is ignored: ordinary backoff', async () => {
    const rx = await receiver(() => ({ status: 500, headers: { 'retry-after': '30' } }));
    const t = await app();
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    const d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'the 500');
    const delay = ms(d.next_attempt_at!) - ms(d.attempts[0]!.at);
    expect(delay).toBeGreaterThanOrEqual(800);
    expect(delay).toBeLessThanOrEqual(1200);
  });

  it('exponential backoff is capped at WEBHOOK_BACKOFF_MAX_MS', async () => {
    const rx = await receiver(() => ({ status: 500 }));
    const t = await app({ WEBHOOK_BACKOFF_MS: '1000', WEBHOOK_BACKOFF_MAX_MS: '1500' });
    const id = await createIntent(t, { webhook_url: rx.url() });
    await t.clock.advance(200);
    let d = await deliveryOf(t, id, afterAttempts(1, 'retrying'), 'attempt 1');
    await advanceTo(t, d);
    d = await deliveryOf(t, id, afterAttempts(2, 'retrying'), 'attempt 2');
    await advanceTo(t, d);
    d = await deliveryOf(t, id, afterAttempts(3, 'retrying'), 'attempt 3');
    // 2nd and 3rd retries would be 2000 and 4000 (±20 %): both capped to 1500.
    expect(ms(d.attempts[2]!.at) - ms(d.attempts[1]!.at)).toBe(1500);
    expect(ms(d.next_attempt_at!) - ms(d.attempts[2]!.at)).toBe(1500);
  });
});

describe('queue full', () => {
  it('WEBHOOK_QUEUE_MAX=2, WEBHOOK_CONCURRENCY=1: the extra deliveries fail with queue_full, counted as dropped; creating intents still works', async () => {
    const rx = await receiver(() => ({ hang: true }));
    const t = await app({ WEBHOOK_QUEUE_MAX: '2', WEBHOOK_CONCURRENCY: '1', WEBHOOK_TIMEOUT_MS: '10000' });
    // One in flight (held by the receiver) before the others come. On Redis a delivery starts once a
    // replica has read it from the stream, a round trip after it is queued; in memory it starts as
    // it is queued: in flight first, the bound then means the same on both back ends.
    const ids = [await createIntent(t, { reservation_id: 'r0', webhook_url: rx.url() })];
    await t.clock.advance(200);
    await rx.waitFor(1);
    // Then two queued, three dropped.
    for (let i = 1; i < 6; i++) ids.push(await createIntent(t, { reservation_id: `r${i}`, webhook_url: rx.url() }));
    await t.clock.advance(200);

    const all: DeliveryView[] = [];
    for (const id of ids) all.push(...(await deliveriesOf(t, id)));
    expect(all).toHaveLength(6);
    const byStatus = (s: string) => all.filter((d) => d.status === s);
    expect(byStatus('pending')).toHaveLength(3);
    expect(byStatus('failed')).toHaveLength(3);
    for (const d of byStatus('failed')) expect(d).toMatchObject({ failure_reason: 'queue_full', attempts: [], next_attempt_at: null });
    // First come, first served: the first three were accepted.
    expect(all.map((d) => d.status)).toEqual(['pending', 'pending', 'pending', 'failed', 'failed', 'failed']);

    expect(await metric(t, 'webhook_deliveries_total{result="dropped"}')).toBe(3);
    // On Redis the two queued are counted once this replica has read them (waiting in its lanes).
    await eventually(async () => ((await metric(t, 'webhook_queue_depth')) === 2 ? true : undefined), 'two deliveries queued');
    expect(await metric(t, 'webhook_in_flight')).toBe(1);

    // The API keeps answering while the queue is full.
    const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'late', amount: 1, webhook_url: rx.url() } });
    expect(res.statusCode).toBe(200);
    expect(rx.requests).toHaveLength(1);
  });
});

describe('isolation', () => {
  it('a receiver that never answers does not hold up deliveries to a healthy one (WEBHOOK_CONCURRENCY=4)', async () => {
    const slow = await receiver(() => ({ hang: true }));
    const healthy = await receiver();
    const t = await app({ WEBHOOK_CONCURRENCY: '4', WEBHOOK_TIMEOUT_MS: '30000' });
    for (let i = 0; i < 8; i++) await createIntent(t, { reservation_id: `slow${i}`, webhook_url: slow.url() });
    const healthyIds: string[] = [];
    for (let i = 0; i < 6; i++) healthyIds.push(await createIntent(t, { reservation_id: `ok${i}`, webhook_url: healthy.url() }));
    await t.clock.advance(200);

    // Well before the slow receiver's 30 s time-out would free the pool (not a bound in ms: the machine's load is not the test's).
    await healthy.waitFor(6, 10_000);
    for (const id of healthyIds) await deliveryOf(t, id, afterAttempts(1, 'delivered'), `healthy delivery ${id}`);
    // The slow receiver holds only its origin's share of the pool (2 of 4).
    await slow.waitFor(2);
    expect(slow.requests).toHaveLength(2);
    expect(slow.held).toBe(2);
  });
});
