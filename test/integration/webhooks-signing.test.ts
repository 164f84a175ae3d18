import { createHmac } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import Stripe from 'stripe';
import { afterEach, describe, expect, it } from 'vitest';
import { ULID, type TestApp } from '../helpers/app.ts';
import type { ReceivedRequest, Receiver } from '../helpers/receiver.ts';
import { createIntent, deliveryWhen, webhookFixtures, type DeliveryView } from '../helpers/webhooks.ts';

/**
 * What a receiver gets: the native payload, byte for byte, and signatures that the libraries
 * receivers already use (standardwebhooks, stripe) accept, plus the legacy scheme by hand.
 * @see issue 3 "What is delivered", "Signing"
 */

const SECRET = 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==';
const OLD_SECRET = `whsec_${Buffer.from('the-previous-secret-0123').toString('base64')}`;
const EVT_ID = new RegExp(`^evt_${ULID}$`);

const fixtures = webhookFixtures({ WEBHOOK_MAX_RPS: '0' });
afterEach(fixtures.closeAll);

async function setup(env: Record<string, string> = {}): Promise<{ t: TestApp; rx: Receiver }> {
  const rx = await fixtures.receiver();
  // Signature libraries check the timestamp against the real time.
  const t = await fixtures.app(env, Date.now());
  return { t, rx };
}

/** The delivery log's only delivery for an intent, once it is final. */
function finalDelivery(t: TestApp, intentId: string): Promise<DeliveryView> {
  return deliveryWhen(t, `?payment_intent_id=${intentId}`, (d) => d.status === 'delivered' || d.status === 'failed', `a final delivery for ${intentId}`);
}

function headersOf(req: ReceivedRequest): Record<string, string> {
  return Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
}

const hmacHex = (secret: string, data: string) => createHmac('sha256', secret).update(data, 'utf8').digest('hex');

describe('the native payload', () => {
  it('payment.approved: exactly the documented fields, JSON, POST, with the standard and legacy headers', async () => {
    const { t, rx } = await setup();
    const id = await createIntent(t, { reservation_id: 'res_42', amount: 15000, webhook_url: rx.url('/hooks/pay?shop=1'), metadata: { order: 'o-1', user: 'u-9' } });
    await t.clock.advance(200);
    const decidedAt = new Date(t.clock.now()).toISOString();
    const [req] = await rx.waitFor(1);
    const body = JSON.parse(req!.body);

    expect(body).toEqual({
      id: expect.stringMatching(EVT_ID),
      type: 'payment.approved',
      created_at: decidedAt,
      payment_intent_id: id,
      reservation_id: 'res_42',
      amount: 15000,
      currency: 'KRW',
      status: 'APPROVED',
      failure_code: null,
      refunded_amount: 0,
      ts: decidedAt,
      metadata: { order: 'o-1', user: 'u-9' },
    });
    // The key order is the documented one: the body is serialised once by the service, not re-ordered.
    expect(Object.keys(body)).toEqual(['id', 'type', 'created_at', 'payment_intent_id', 'reservation_id', 'amount', 'currency', 'status', 'failure_code', 'refunded_amount', 'ts', 'metadata']);
    expect(req!.method).toBe('POST');
    expect(req!.url).toBe('/hooks/pay?shop=1');
    const h = headersOf(req!);
    expect(h['content-type']).toBe('application/json');
    expect(h['content-length']).toBe(String(Buffer.byteLength(req!.body)));
    expect(h['user-agent']).toBe('paysim-webhooks/1.0');
    expect(h.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(h['webhook-id']).toBe(body.id);
    expect(h['webhook-timestamp']).toBe(String(Math.floor(t.clock.now() / 1000)));
    expect(h['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(h['x-webhook-id']).toBe(body.id);
    expect(h['x-timestamp']).toBe(String(t.clock.now()));
    expect(h['x-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    // Default schemes are standard,legacy: no Stripe header.
    expect(h['stripe-signature']).toBeUndefined();

    // The event id is the bus event's id and the delivery log's event_id.
    expect(t.events.find((e) => e.type === 'payment.approved')?.id).toBe(body.id);
    const delivery = await finalDelivery(t, id);
    expect(delivery).toMatchObject({ event_id: body.id, type: 'payment.approved', url: rx.url('/hooks/pay?shop=1'), status: 'delivered', payment_intent_id: id });
  });

  it('payment.failed carries FAILED and the failure code; metadata null when none was given', async () => {
    const { t, rx } = await setup();
    const id = await createIntent(t, { reservation_id: 'res_f', amount: 500, currency: 'USD', card: { number: '4000000000009995' }, webhook_url: rx.url() });
    await t.clock.advance(100);
    const at = new Date(t.clock.now()).toISOString();
    const [req] = await rx.waitFor(1);
    expect(JSON.parse(req!.body)).toEqual({
      id: expect.stringMatching(EVT_ID),
      type: 'payment.failed',
      created_at: at,
      payment_intent_id: id,
      reservation_id: 'res_f',
      amount: 500,
      currency: 'USD',
      status: 'FAILED',
      failure_code: 'insufficient_funds',
      refunded_amount: 0,
      ts: at,
      metadata: null,
    });
  });

  it('payment.cancelled when a PENDING intent is cancelled (and no decision webhook afterwards)', async () => {
    const { t, rx } = await setup();
    const id = await createIntent(t, { reservation_id: 'res_c', amount: 700, webhook_url: rx.url() });
    await t.clock.advance(50);
    const res = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/cancel` });
    expect(res.statusCode).toBe(200);
    const at = new Date(t.clock.now()).toISOString();
    const [req] = await rx.waitFor(1);
    expect(JSON.parse(req!.body)).toEqual({
      id: expect.stringMatching(EVT_ID),
      type: 'payment.cancelled',
      created_at: at,
      payment_intent_id: id,
      reservation_id: 'res_c',
      amount: 700,
      currency: 'KRW',
      status: 'CANCELLED',
      failure_code: null,
      refunded_amount: 0,
      ts: at,
      metadata: null,
    });
    await finalDelivery(t, id);
    await t.clock.advance(1000);
    // The cancelled decision never fires: the delivery log holds one delivery only.
    const list = (await t.app.inject({ url: `/v1/sim/webhooks/deliveries?payment_intent_id=${id}` })).json();
    expect(list.data.map((d: { type: string }) => d.type)).toEqual(['payment.cancelled']);
    expect(rx.requests).toHaveLength(1);
  });

  it('payment.refunded: PARTIALLY_REFUNDED then REFUNDED with the refunded_amount so far', async () => {
    const { t, rx } = await setup();
    const id = await createIntent(t, { reservation_id: 'res_r', amount: 10000, webhook_url: rx.url() });
    await t.clock.advance(200);
    await rx.waitFor(1);

    await t.clock.advance(1000);
    const partial = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/refund`, payload: { amount: 3000 } });
    expect(partial.statusCode).toBe(200);
    const partialAt = new Date(t.clock.now()).toISOString();
    const [, first] = await rx.waitFor(2);

    await t.clock.advance(1000);
    const full = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/refund`, payload: {} });
    expect(full.statusCode).toBe(200);
    const fullAt = new Date(t.clock.now()).toISOString();
    const [, , second] = await rx.waitFor(3);

    const common = { type: 'payment.refunded', payment_intent_id: id, reservation_id: 'res_r', amount: 10000, currency: 'KRW', failure_code: null, metadata: null };
    expect(JSON.parse(first!.body)).toEqual({ ...common, id: expect.stringMatching(EVT_ID), created_at: partialAt, ts: partialAt, status: 'PARTIALLY_REFUNDED', refunded_amount: 3000 });
    expect(JSON.parse(second!.body)).toEqual({ ...common, id: expect.stringMatching(EVT_ID), created_at: fullAt, ts: fullAt, status: 'REFUNDED', refunded_amount: 10000 });
    const ids = rx.requests.map((r) => r.headers['webhook-id']);
    expect(new Set(ids).size).toBe(3);
  });

  it('an intent without webhook_url produces no delivery', async () => {
    const { t, rx } = await setup();
    const id = await createIntent(t, { reservation_id: 'res_n', amount: 1 });
    await t.clock.advance(200);
    expect((await t.app.inject({ url: `/v1/sim/intents/${id}` })).json()).toMatchObject({ status: 'APPROVED', webhook: null });
    expect((await t.app.inject({ url: '/v1/sim/webhooks/deliveries' })).json()).toEqual({ data: [], next_cursor: null });
    expect(rx.requests).toHaveLength(0);
  });
});

describe('signatures', () => {
  it('standard, legacy and stripe together: each verified (standardwebhooks, by hand, stripe)', async () => {
    const { t, rx } = await setup({ WEBHOOK_SIGNATURE_SCHEMES: 'standard,legacy,stripe' });
    await createIntent(t, { reservation_id: 'res_s', amount: 15000, webhook_url: rx.url() });
    await t.clock.advance(200);
    const [req] = await rx.waitFor(1);
    const h = headersOf(req!);
    const body = req!.body;

    // standard: the real library, with the whsec_ secret.
    const verified = new Webhook(SECRET).verify(body, h);
    expect(verified).toEqual(JSON.parse(body));
    expect(h['webhook-signature']).toBe(
      `v1,${createHmac('sha256', Buffer.from('dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==', 'base64')).update(`${h['webhook-id']}.${h['webhook-timestamp']}.${body}`).digest('base64')}`,
    );

    // legacy: hex HMAC-SHA256(secret, body + X-Timestamp), keyed by the secret's UTF-8 bytes.
    expect(h['x-timestamp']).toMatch(/^\d{13}$/);
    expect(h['x-signature']).toBe(`sha256=${hmacHex(SECRET, body + h['x-timestamp'])}`);
    expect(h['x-webhook-id']).toBe(h['webhook-id']);

    // stripe: the real library's helper.
    const stripe = new Stripe('sk_test_x');
    const event = stripe.webhooks.constructEvent(body, h['stripe-signature']!, SECRET);
    expect(event).toEqual(JSON.parse(body));
    expect(h['stripe-signature']).toBe(`t=${h['webhook-timestamp']},v1=${hmacHex(SECRET, `${h['webhook-timestamp']}.${body}`)}`);
  });

  it('a tampered body or a wrong secret fails verification (the check is real)', async () => {
    const { t, rx } = await setup({ WEBHOOK_SIGNATURE_SCHEMES: 'standard,stripe' });
    await createIntent(t, { reservation_id: 'res_t', amount: 1, webhook_url: rx.url() });
    await t.clock.advance(200);
    const [req] = await rx.waitFor(1);
    const h = headersOf(req!);
    const tampered = req!.body.replace('"amount":1', '"amount":2');
    expect(tampered).not.toBe(req!.body);
    expect(() => new Webhook(SECRET).verify(tampered, h)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(OLD_SECRET).verify(req!.body, h)).toThrow(WebhookVerificationError);
    const stripe = new Stripe('sk_test_x');
    expect(() => stripe.webhooks.constructEvent(tampered, h['stripe-signature']!, SECRET)).toThrow(/signature/i);
    expect(() => stripe.webhooks.constructEvent(req!.body, h['stripe-signature']!, OLD_SECRET)).toThrow(/signature/i);
  });

  it('only the schemes asked for: WEBHOOK_SIGNATURE_SCHEMES=stripe sends Stripe-Signature alone', async () => {
    const { t, rx } = await setup({ WEBHOOK_SIGNATURE_SCHEMES: 'stripe' });
    await createIntent(t, { reservation_id: 'res_o', amount: 1, webhook_url: rx.url() });
    await t.clock.advance(200);
    const [req] = await rx.waitFor(1);
    const h = headersOf(req!);
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'x-webhook-id', 'x-timestamp', 'x-signature']) expect(h[name]).toBeUndefined();
    expect(new Stripe('sk_test_x').webhooks.constructEvent(req!.body, h['stripe-signature']!, SECRET)).toMatchObject({ type: 'payment.approved' });
  });

  it('rotation: with WEBHOOK_SECRET_PREVIOUS each scheme carries both signatures, and a verifier holding only the old secret accepts', async () => {
    const { t, rx } = await setup({ WEBHOOK_SIGNATURE_SCHEMES: 'standard,legacy,stripe', WEBHOOK_SECRET_PREVIOUS: OLD_SECRET });
    await createIntent(t, { reservation_id: 'res_rot', amount: 2500, webhook_url: rx.url() });
    await t.clock.advance(200);
    const [req] = await rx.waitFor(1);
    const h = headersOf(req!);
    const body = req!.body;
    const ts = h['webhook-timestamp']!;

    // standard: two space-separated v1 signatures, current first.
    const sigs = h['webhook-signature']!.split(' ');
    expect(sigs).toHaveLength(2);
    const std = (secret: string) => `v1,${createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(`${h['webhook-id']}.${ts}.${body}`).digest('base64')}`;
    expect(sigs).toEqual([std(SECRET), std(OLD_SECRET)]);
    expect(new Webhook(SECRET).verify(body, h)).toEqual(JSON.parse(body));
    expect(new Webhook(OLD_SECRET).verify(body, h)).toEqual(JSON.parse(body));

    // legacy: comma-separated.
    expect(h['x-signature']).toBe(`sha256=${hmacHex(SECRET, body + h['x-timestamp'])},sha256=${hmacHex(OLD_SECRET, body + h['x-timestamp'])}`);

    // stripe: t= then two v1=.
    expect(h['stripe-signature']).toBe(`t=${ts},v1=${hmacHex(SECRET, `${ts}.${body}`)},v1=${hmacHex(OLD_SECRET, `${ts}.${body}`)}`);
    const stripe = new Stripe('sk_test_x');
    expect(stripe.webhooks.constructEvent(body, h['stripe-signature']!, SECRET)).toEqual(JSON.parse(body));
    expect(stripe.webhooks.constructEvent(body, h['stripe-signature']!, OLD_SECRET)).toEqual(JSON.parse(body));
    expect(() => stripe.webhooks.constructEvent(body, h['stripe-signature']!, 'whsec_someone-else-entirely')).toThrow(/signature/i);
  });

  it('a secret without the whsec_ prefix keys the standard scheme by its UTF-8 bytes', async () => {
    const plain = 'plain-secret-without-prefix';
    const { t, rx } = await setup({ WEBHOOK_SECRET: plain });
    await createIntent(t, { reservation_id: 'res_p', amount: 1, webhook_url: rx.url() });
    await t.clock.advance(200);
    const [req] = await rx.waitFor(1);
    const h = headersOf(req!);
    // standardwebhooks takes a non-whsec secret as base64 too; hand it the raw bytes instead.
    expect(new Webhook(Buffer.from(plain, 'utf8'), { format: 'raw' }).verify(req!.body, h)).toEqual(JSON.parse(req!.body));
    expect(h['x-signature']).toBe(`sha256=${hmacHex(plain, req!.body + h['x-timestamp'])}`);
  });

  it.each([
    ['ASCII', 'local-dev-secret', true],
    ['non-ASCII', 'lokales-Geheimnis-ä-秘密', false],
  ])("a plain %s secret: the README's new Webhook(…, { format: 'raw' }) verifies a real delivery", async (_kind, plain, stringKeyWorks) => {
    const { t, rx } = await setup({ WEBHOOK_SECRET: plain });
    await createIntent(t, { reservation_id: 'res_raw', amount: 1, webhook_url: rx.url() });
    await t.clock.advance(200);
    const [req] = await rx.waitFor(1);
    const h = headersOf(req!);
    const body = req!.body;
    // As the README shows it: the secret's UTF-8 bytes, raw. Works for any secret.
    expect(new Webhook(Buffer.from(plain, 'utf8'), { format: 'raw' }).verify(body, h)).toEqual(JSON.parse(body));
    // The string form takes one byte per UTF-16 unit: the same bytes for an ASCII secret only.
    if (stringKeyWorks) expect(new Webhook(plain, { format: 'raw' }).verify(body, h)).toEqual(JSON.parse(body));
    else expect(() => new Webhook(plain, { format: 'raw' }).verify(body, h)).toThrow(WebhookVerificationError);
    // Without { format: 'raw' } the library base64-decodes a plain secret into another key.
    expect(() => new Webhook(plain).verify(body, h)).toThrow();
  });
});
