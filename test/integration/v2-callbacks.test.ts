import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import { LATE_SETTLE_FIRST_MS } from '../../src/http/late-settles.ts';
import { ULID, type TestApp } from '../helpers/app.ts';
import type { Receiver } from '../helpers/receiver.ts';
import { confirmV2, createV2, headersOf, ISO_MS, paymentOf, PYTHON_MISSING, pythonVerify, pythonVerifyAll, runPython, tsVerify, v2Body, v2Deliveries, v2DeliveryWhen } from '../helpers/v2.ts';
import { webhookFixtures, type DeliveryView } from '../helpers/webhooks.ts';

/**
 * What the receiver of a Payment Server v3 callback gets: source document 001's body and headers,
 * byte for byte; a signature that the document's own Python `verify_webhook_signature` (run by
 * python3) and its TypeScript twin accept; retries until the receiver acknowledges, after which
 * the payment is PAYMENT_COMPLETED; replays; and what a manual confirm does (no second callback).
 * @see issue 10 "Callback", "Tests and benchmark"
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const WEBHOOK_SECRET = 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==';
const DOC_SECRET = 'your_webhook_secret_key';
const EVT_ID = new RegExp(`^evt_${ULID}$`);

const { app, receiver, closeAll } = webhookFixtures({ WEBHOOK_MAX_RPS: '0', WEBHOOK_BACKOFF_MS: '1000' });
afterEach(async () => {
  vi.restoreAllMocks();
  await closeAll();
});

/** The headers every callback has, whatever the configuration (values checked where they matter). */
const TRANSPORT = ['host', 'connection', 'content-length', 'content-type', 'user-agent', 'traceparent'];

describe('the callback on the wire', () => {
  it('payment.completed: the document’s body byte for byte, its headers and no other signature scheme', async () => {
    const rx = await receiver();
    const t = await app({ PAYMENT_WEBHOOK_SECRET: DOC_SECRET });
    await createV2(t, v2Body('tx_1001', rx.url('/api/orders/payment/webhook/v2/tx_1001')));
    const [req] = await rx.waitFor(1);
    expect([req!.method, req!.url]).toEqual(['POST', '/api/orders/payment/webhook/v2/tx_1001']);
    expect(req!.body).toBe(
      `{"version":"v2","payment_id":"pay_tx_1001","order_id":123,"tx_id":"tx_1001","user_id":1,"amount":1000,"status":"PAYMENT_COMPLETED","created_at":"${ISO_MS(T0)}","confirmed_at":"${ISO_MS(T0)}"}`,
    );
    const h = headersOf(req!);
    expect(Object.keys(h).sort()).toEqual([...TRANSPORT, 'x-payment-event', 'x-payment-signature', 'x-payment-webhook-id'].sort());
    expect(h).toMatchObject({ 'content-type': 'application/json', 'x-payment-event': 'payment.completed', 'x-payment-webhook-id': expect.stringMatching(EVT_ID) });
    expect(h['x-payment-signature']).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(tsVerify(req!.body, h['x-payment-signature']!, DOC_SECRET)).toBe(true);
  });

  it('payment.failed: PAYMENT_FAILED, confirmed_at null, and failure_code', async () => {
    const rx = await receiver();
    const t = await app();
    await createV2(t, v2Body('tx_1003', rx.url(), { order_id: 7, user_id: 42, amount: 55_000 }), { 'x-sim-scenario': 'fail' });
    const [req] = await rx.waitFor(1);
    expect(req!.body).toBe(
      `{"version":"v2","payment_id":"pay_tx_1003","order_id":7,"tx_id":"tx_1003","user_id":42,"amount":55000,"status":"PAYMENT_FAILED","created_at":"${ISO_MS(T0)}","confirmed_at":null,"failure_code":"card_declined"}`,
    );
    expect(headersOf(req!)['x-payment-event']).toBe('payment.failed');
    // No PAYMENT_WEBHOOK_SECRET: WEBHOOK_SECRET signs, by its UTF-8 bytes as the document's function reads a secret.
    expect(tsVerify(req!.body, headersOf(req!)['x-payment-signature']!, WEBHOOK_SECRET)).toBe(true);
  });

  it('with SERVICE_AUTH_TOKEN: Authorization: Bearer <token>, never stored in the delivery log', async () => {
    const rx = await receiver();
    const t = await app({ SERVICE_AUTH_TOKEN: 'ops-service-token' });
    await createV2(t, v2Body('tx_auth', rx.url()));
    const [req] = await rx.waitFor(1);
    expect(headersOf(req!).authorization).toBe('Bearer ops-service-token');
    const log = await t.app.inject({ url: '/v1/sim/webhooks/deliveries' });
    expect(log.body).not.toContain('ops-service-token');
  });

  it('with SERVICE_AUTH_TOKEN and credentials in callback_url: the Bearer token stands, the URL’s credentials are not sent instead (before, Basic replaced it: a reviewer’s find)', async () => {
    const rx = await receiver();
    const t = await app({ SERVICE_AUTH_TOKEN: 'ops-service-token' });
    await createV2(t, v2Body('tx_auth_creds', rx.url().replace('http://', 'http://ops:pw@')));
    const [req] = await rx.waitFor(1);
    expect(headersOf(req!).authorization).toBe('Bearer ops-service-token');
  });

  it('V2_EXTRA_SIGNATURE_SCHEMES adds other schemes (here Standard Webhooks, verified by its library)', async () => {
    const rx = await receiver();
    const t = await app({ V2_EXTRA_SIGNATURE_SCHEMES: 'standard' }, Date.now());
    await createV2(t, v2Body('tx_std', rx.url()));
    const [req] = await rx.waitFor(1);
    const h = headersOf(req!);
    expect(Object.keys(h).sort()).toEqual([...TRANSPORT, 'x-payment-event', 'x-payment-signature', 'x-payment-webhook-id', 'webhook-id', 'webhook-timestamp', 'webhook-signature'].sort());
    expect(h['webhook-id']).toBe(h['x-payment-webhook-id']);
    expect(new Webhook(WEBHOOK_SECRET).verify(req!.body, h)).toMatchObject({ payment_id: 'pay_tx_std', status: 'PAYMENT_COMPLETED' });
    expect(tsVerify(req!.body, h['x-payment-signature']!, WEBHOOK_SECRET)).toBe(true);
  });

  it('is in the delivery log like every other delivery, with its subject', async () => {
    const rx = await receiver();
    const t = await app();
    await createV2(t, v2Body('tx_log', rx.url()));
    const [d] = await v2Deliveries(t, 'pay_tx_log');
    expect(d).toMatchObject({
      type: 'payment.completed',
      url: rx.url(),
      payment_intent_id: null,
      subject: { kind: 'v2_payment', id: 'pay_tx_log' },
      status: 'delivered',
      attempts: [{ status_code: 200, error: null }],
    });
    expect(d!.event_id).toBe(headersOf(rx.requests[0]!)['x-payment-webhook-id']);
  });
});

describe.runIf(runPython)('the document’s Python verify_webhook_signature, run by python3', () => {
  it.each([
    ['PAYMENT_WEBHOOK_SECRET', { PAYMENT_WEBHOOK_SECRET: DOC_SECRET }, DOC_SECRET],
    ['WEBHOOK_SECRET (no PAYMENT_WEBHOOK_SECRET)', {}, WEBHOOK_SECRET],
    ['a secret with non-ASCII characters', { PAYMENT_WEBHOOK_SECRET: '결제-비밀-키' }, '결제-비밀-키'],
  ])('accepts real deliveries signed with %s, and refuses tampered ones', async (_name, env, secret) => {
    expect(runPython, PYTHON_MISSING).toBe(true);
    const rx = await receiver();
    const t = await app(env);
    await createV2(t, v2Body('tx_py1', rx.url(), { amount: 12_345 }));
    await createV2(t, v2Body('결제_py2', rx.url()), { 'x-sim-scenario': 'fail' });
    const requests = await rx.waitFor(2);
    // Each delivery as received, then the same checks for a changed byte, another secret, or another signature; all in one python3.
    const cases = requests.flatMap((req) => {
      const raw = Buffer.from(req.body, 'utf8');
      const signature = headersOf(req)['x-payment-signature']!;
      const tampered = Buffer.from(req.body.replace('"amount":', '"amount": '), 'utf8');
      expect(tsVerify(raw, signature, secret)).toBe(true);
      expect(tsVerify(tampered, signature, secret)).toBe(false);
      return [
        { body: raw, signature, secret },
        { body: tampered, signature, secret },
        { body: raw, signature, secret: `${secret}x` },
        { body: raw, signature: `${signature.slice(0, -2)}A=`, secret },
      ];
    });
    expect(pythonVerifyAll(cases).map((r) => r.output)).toEqual(['valid', 'invalid', 'invalid', 'invalid', 'valid', 'invalid', 'invalid', 'invalid']);
    // The single-case form the other tests use gives the same answer.
    expect(pythonVerify(cases[0]!.body, cases[0]!.signature, secret)).toEqual({ valid: true, output: 'valid' });
  });
});

/** Moves the manual clock to the delivery's next attempt. */
async function toNextAttempt(t: TestApp, d: DeliveryView): Promise<void> {
  expect(d.next_attempt_at).not.toBeNull();
  await t.clock.advance(Date.parse(d.next_attempt_at as string) - t.clock.now());
}

describe('retries until the receiver acknowledges', () => {
  it('a flaky receiver (503, 503, then 200): PENDING, then PAYMENT_COMPLETED once a retry succeeds; the same bytes every time', async () => {
    let n = 0;
    const rx = await receiver(() => (n++ < 2 ? { status: 503, body: 'busy' } : { status: 200 }));
    const t = await app({ PAYMENT_WEBHOOK_SECRET: DOC_SECRET });
    const res = await createV2(t, v2Body('tx_flaky', rx.url()));
    expect(res.json()).toEqual({ ok: true, tx_id: 'tx_flaky', status: 'PENDING', payment_id: 'pay_tx_flaky' });

    let d = await v2DeliveryWhen(t, 'pay_tx_flaky', (x) => x.status === 'retrying' && x.attempts.length === 1, 'the first attempt');
    await toNextAttempt(t, d);
    d = await v2DeliveryWhen(t, 'pay_tx_flaky', (x) => x.status === 'retrying' && x.attempts.length === 2, 'the second attempt');
    expect(await paymentOf(t, 'pay_tx_flaky')).toMatchObject({ status: 'PENDING', confirmed_at: null });
    await toNextAttempt(t, d);
    d = await v2DeliveryWhen(t, 'pay_tx_flaky', (x) => x.status === 'delivered', 'the third attempt');
    expect(d.attempts.map((a) => a.status_code)).toEqual([503, 503, 200]);

    // The acknowledgement completed the payment, with the confirmed_at its callback carried.
    expect(await paymentOf(t, 'pay_tx_flaky')).toMatchObject({ status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0) });
    expect((await t.app.inject({ url: '/api/v2/pending-payments' })).json()).toMatchObject({ pending_count: 0, completed_count: 1 });
    expect(rx.requests).toHaveLength(3);
    const [first] = rx.requests;
    for (const req of rx.requests) {
      expect(req.body).toBe(first!.body);
      expect(headersOf(req)['x-payment-webhook-id']).toBe(headersOf(first!)['x-payment-webhook-id']);
      expect(tsVerify(req.body, headersOf(req)['x-payment-signature']!, DOC_SECRET)).toBe(true);
      if (runPython) expect(pythonVerify(req.body, headersOf(req)['x-payment-signature']!, DOC_SECRET).valid).toBe(true);
    }
    // The same request again answers the status it has now, and calls nobody back.
    const again = await createV2(t, v2Body('tx_flaky', rx.url()));
    expect([again.headers['idempotent-replayed'], again.json().status]).toEqual(['true', 'PAYMENT_COMPLETED']);
    expect(rx.requests).toHaveLength(3);
  });

  it('retries spent: the delivery fails in the log, the payment stays PENDING; a replay that gets through completes it', async () => {
    let healthy = false;
    const rx = await receiver(() => (healthy ? { status: 204 } : { status: 500 }));
    const t = await app({ WEBHOOK_MAX_RETRIES: '1' });
    expect((await createV2(t, v2Body('tx_spent', rx.url()))).json().status).toBe('PENDING');
    const d = await v2DeliveryWhen(t, 'pay_tx_spent', (x) => x.status === 'retrying', 'the first attempt');
    await toNextAttempt(t, d);
    const failed = await v2DeliveryWhen(t, 'pay_tx_spent', (x) => x.status === 'failed', 'the delivery failed');
    expect(failed.failure_reason).toMatch(/^max_retries_exceeded/);
    expect(await paymentOf(t, 'pay_tx_spent')).toMatchObject({ status: 'PENDING' });

    healthy = true;
    const replay = await t.app.inject({ method: 'POST', url: `/v1/sim/webhooks/deliveries/${failed.id}/replay` });
    expect(replay.statusCode).toBe(202);
    await v2DeliveryWhen(t, 'pay_tx_spent', (x) => x.status === 'delivered', 'the replay delivered');
    expect(await paymentOf(t, 'pay_tx_spent')).toMatchObject({ status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0) });
    expect(rx.requests).toHaveLength(3);
    expect(new Set(rx.requests.map((r) => r.body)).size).toBe(1);
  });

  it('the store away just after the callback was acknowledged (Redis): the payment is completed once it is back, not left PENDING for good (before 2026-12-06: a user test)', async () => {
    const rx = await receiver(() => ({ status: 200 }));
    const logs: Array<Record<string, unknown>> = [];
    const t = await app({ PAYMENT_WEBHOOK_SECRET: DOC_SECRET }, undefined, logs);
    const store = t.app.core.stores.v2Payments;
    const real = store.complete.bind(store);
    let away = true;
    const completions: string[] = [];
    vi.spyOn(store, 'complete').mockImplementation((id, by, now) => {
      completions.push(by);
      return away && by === 'callback' ? Promise.reject(new StoreUnavailableError()) : real(id, by, now);
    });
    // The first attempt is delivered; its payment's completion is refused, so the create answers what is stored.
    expect((await createV2(t, v2Body('tx_ack_away', rx.url()))).json().status).toBe('PENDING');
    expect((await v2DeliveryWhen(t, 'pay_tx_ack_away', (x) => x.status === 'delivered', 'delivered')).attempts.map((a) => a.status_code)).toEqual([200]);
    // Tried again 250 ms, then 500 ms and 1 s later, while the store is still away.
    await t.clock.advance(LATE_SETTLE_FIRST_MS + 500 + 1000);
    expect(completions).toEqual(['callback', 'callback', 'callback', 'callback']);
    expect(await paymentOf(t, 'pay_tx_ack_away')).toMatchObject({ status: 'PENDING', confirmed_at: null });
    expect(t.app.core.lateSettles.pending).toBe(1);
    // One warning, in the store's words, without a stack (before 2026-12-08 its err, with the stack).
    expect(logs.filter((l) => String(l.msg).startsWith('v2: completing')).map(({ time: _time, service: _service, ...line }) => line)).toEqual([
      { level: 'warn', payment_id: 'pay_tx_ack_away', redis_error: 'The store is unavailable; retry shortly.', msg: 'v2: completing a payment after its callback was acknowledged could not reach the store; it is tried again until it can be' },
    ]);

    // Back: the next try completes it, with the confirmed_at its callback carried; no second callback.
    away = false;
    await t.clock.advance(1000);
    expect(completions).toHaveLength(5);
    expect(t.app.core.lateSettles.pending).toBe(0);
    expect(await paymentOf(t, 'pay_tx_ack_away')).toMatchObject({ status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0) });
    expect((await t.app.inject({ url: '/api/v2/pending-payments' })).json()).toMatchObject({ pending_count: 0, completed_count: 1 });
    expect(rx.requests).toHaveLength(1);
  });

  it('the store away just after a payment.failed callback was acknowledged: nothing to complete, nothing tried again (a user test saw the retry’s warning for failed payments)', async () => {
    const rx = await receiver(() => ({ status: 200 }));
    const t = await app();
    const store = t.app.core.stores.v2Payments;
    const real = store.complete.bind(store);
    const completions: string[] = [];
    vi.spyOn(store, 'complete').mockImplementation((id, by, now) => {
      completions.push(by);
      return by === 'callback' ? Promise.reject(new StoreUnavailableError()) : real(id, by, now);
    });
    expect((await createV2(t, v2Body('tx_failed_away', rx.url()), { 'x-sim-scenario': 'fail' })).json().status).toBe('PAYMENT_FAILED');
    await v2DeliveryWhen(t, 'pay_tx_failed_away', (x) => x.status === 'delivered', 'delivered');
    expect([completions, t.app.core.lateSettles.pending]).toEqual([['callback'], 0]);
    await t.clock.advance(LATE_SETTLE_FIRST_MS * 4);
    expect(completions).toEqual(['callback']);
    expect(await paymentOf(t, 'pay_tx_failed_away')).toMatchObject({ status: 'PAYMENT_FAILED' });
  });

  it('confirmed by hand while its callback is retrying: completed at once, no second callback; the retries of the first go on', async () => {
    let n = 0;
    const rx = await receiver(() => (n++ < 1 ? { status: 500 } : { status: 200 }));
    const t = await app();
    await createV2(t, v2Body('tx_both', rx.url()));
    const d = await v2DeliveryWhen(t, 'pay_tx_both', (x) => x.status === 'retrying', 'the first attempt');
    await t.clock.advance(100);
    expect((await confirmV2(t, 'pay_tx_both')).json()).toEqual({ ok: true, payment_id: 'pay_tx_both', status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0 + 100) });
    await toNextAttempt(t, d);
    await v2DeliveryWhen(t, 'pay_tx_both', (x) => x.status === 'delivered', 'the retry delivered');
    // The manual confirmation stands: the acknowledgement changes nothing.
    expect(await paymentOf(t, 'pay_tx_both')).toMatchObject({ status: 'PAYMENT_COMPLETED', confirmed_at: ISO_MS(T0 + 100) });
    expect(await v2Deliveries(t, 'pay_tx_both')).toHaveLength(1);
    expect(rx.requests.map((r) => headersOf(r)['x-payment-event'])).toEqual(['payment.completed', 'payment.completed']);
    expect(new Set(rx.requests.map((r) => r.body)).size).toBe(1);
  });
});

describe('the receiver of a real socket', () => {
  it('a callback to a receiver that answers 410 disables its URL, like every webhook; the payment stays PENDING', async () => {
    const rx: Receiver = await receiver(() => ({ status: 410 }));
    const t = await app();
    expect((await createV2(t, v2Body('tx_gone', rx.url('/gone')))).json().status).toBe('PENDING');
    await v2DeliveryWhen(t, 'pay_tx_gone', (x) => x.status === 'failed' && x.failure_reason === 'gone', 'the delivery gone');
    expect((await t.app.inject({ url: '/v1/sim/webhooks/disabled-urls' })).json().data).toEqual([{ url: rx.url('/gone'), disabled_at: ISO_MS(T0) }]);
  });

  it('to a disabled URL (no attempt made): the create and a repeat of it both answer PENDING at once, not after WEBHOOK_TIMEOUT_MS (a code review: before 2026-12-04 the repeat waited the whole bound)', async () => {
    const rx: Receiver = await receiver(() => ({ status: 410 }));
    const t = await app({ WEBHOOK_TIMEOUT_MS: '20000' });
    await createV2(t, v2Body('tx_gone_first', rx.url('/gone')));
    await v2DeliveryWhen(t, 'pay_tx_gone_first', (x) => x.status === 'failed', 'the URL disabled');
    const pending = { ok: true, tx_id: 'tx_disabled', status: 'PENDING', payment_id: 'pay_tx_disabled' };
    for (const label of ['create', 'repeat']) {
      const started = Date.now();
      const res = await createV2(t, v2Body('tx_disabled', rx.url('/gone')));
      expect([label, res.statusCode, res.json()]).toEqual([label, 200, pending]);
      expect(Date.now() - started, label).toBeLessThan(10_000);
    }
    expect((await v2Deliveries(t, 'pay_tx_disabled')).map((d) => [d.status, d.attempts.length])).toEqual([['failed', 0]]);
  });
});
