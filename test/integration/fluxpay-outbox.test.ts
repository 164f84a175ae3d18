import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, receiverPool, type ReceivedRequest } from '../helpers/receiver.ts';
import { hasPromtool, inCi, PROMTOOL_MISSING, promtoolCheckMetrics } from '../helpers/promtool.ts';
import { metricSample } from '../helpers/webhooks.ts';
import { chargeCredits, errorOf, fluxpayApps, fpError, fpGet, fpPost, paidOrder, postEvent, resultOf, SUCCESS, usageEvent, type Json } from '../helpers/fluxpay.ts';

/**
 * The transactional outbox and FluxPay's outbound events (issue 11): every state change's event
 * is in the outbox, published by the relay in write order, and delivered to subscribers through
 * the dispatcher as `{eventId, eventType, occurredAt, data}`, signed with Standard Webhooks
 * (verified here with the `standardwebhooks` package, as a receiver would). Receivers listen on
 * 127.0.0.1. The relay's restart is tested on the core (test/unit/fluxpay-outbox.test.ts).
 */

const SECRET = 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==';
// One attempt at a time per receiver: deliveries reach it in the order the relay published them.
const { app, closeAll } = fluxpayApps({ WEBHOOK_MAX_RPS: '0', WEBHOOK_ORIGIN_CONCURRENCY: '1' });
const receivers = receiverPool();
afterEach(async () => {
  await receivers.closeAll();
  await closeAll();
});

function verified(req: ReceivedRequest): Json {
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
  return new Webhook(SECRET).verify(req.body, headers) as Json;
}

describe('the outbox', () => {
  it('every change writes its event; the relay publishes them in write order; GET /api/v1/outbox pages them', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 100);
    await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u-1' });
    await fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'u-1' });
    const declined = await paidOrder(t);
    await fpPost(t, `/api/v1/orders/${declined.order.orderId}/cancel`, {});
    await t.app.fluxpay.relay.idle();
    const page = resultOf(await fpGet(t, '/api/v1/outbox?limit=100'));
    const events = [...page.items].reverse();
    expect(events.map((e: Json) => [e.sequence, e.eventType, e.status])).toEqual([
      [1, 'payment.approved', 'PUBLISHED'],
      [2, 'credit.charged', 'PUBLISHED'],
      [3, 'order.completed', 'PUBLISHED'],
      [4, 'credit.deducted', 'PUBLISHED'],
      [5, 'credit.refunded', 'PUBLISHED'],
      [6, 'payment.approved', 'PUBLISHED'],
      [7, 'order.cancelled', 'PUBLISHED'],
    ]);
    expect(events[3]).toEqual({
      eventId: expect.stringMatching(/^evt_/),
      eventType: 'credit.deducted',
      aggregate: 'credit:user_1',
      sequence: 4,
      status: 'PUBLISHED',
      occurredAt: '2026-01-15T12:00:00.000Z',
      publishedAt: '2026-01-15T12:00:00.000Z',
      data: {
        transactionId: expect.stringMatching(/^tx_/),
        userId: 'user_1',
        type: 'USE',
        amount: 10,
        balanceAfter: 90,
        orderId: null,
        usageId: 'u-1',
        serviceId: 'ai-writer',
        createdAt: '2026-01-15T12:00:00.000Z',
        creditUsageId: expect.stringMatching(/^cu_/),
        balance: 90,
      },
    });
    expect(resultOf(await fpGet(t, '/api/v1/outbox?status=pending'))).toEqual({ items: [], nextCursor: null });
    expect(resultOf(await fpGet(t, '/api/v1/outbox?status=published&limit=3'))).toEqual({ items: page.items.slice(0, 3), nextCursor: page.items[2].eventId });
    // The state as the events show it filters as well.
    expect(resultOf(await fpGet(t, '/api/v1/outbox?status=PUBLISHED&limit=3'))).toEqual({ items: page.items.slice(0, 3), nextCursor: page.items[2].eventId });
    expect(resultOf(await fpGet(t, '/api/v1/outbox?status=PENDING'))).toEqual({ items: [], nextCursor: null });
    expect(resultOf(await fpGet(t, `/api/v1/outbox?cursor=${page.items[4].eventId}`)).items).toEqual(page.items.slice(5));
    // A refusal writes no event.
    expect(errorOf(await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u-2', amount: 1000 }))[0]).toBe(409);
    expect(resultOf(await fpGet(t, '/api/v1/outbox?limit=100')).items).toHaveLength(7);
  });

  it('metrics: outbox depth and publish lag while the relay is stopped; events published by type', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 10);
    await t.app.fluxpay.relay.idle();
    let metrics = (await fpGet(t, '/metrics')).body;
    expect([metricSample(metrics, 'fluxpay_outbox_depth'), metricSample(metrics, 'fluxpay_outbox_publish_lag_seconds'), metricSample(metrics, 'fluxpay_outbox_published_total{event_type="credit.charged"}')]).toEqual([0, 0, 1]);
    await t.app.fluxpay.relay.stop();
    await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u-1' });
    await t.clock.advance(2500);
    metrics = (await fpGet(t, '/metrics')).body;
    expect([metricSample(metrics, 'fluxpay_outbox_depth'), metricSample(metrics, 'fluxpay_outbox_publish_lag_seconds')]).toEqual([1, 2.5]);
    expect(resultOf(await fpGet(t, '/api/v1/outbox?status=pending')).items.map((e: Json) => e.eventType)).toEqual(['credit.deducted']);
  });
});

describe('metrics', () => {
  it.skipIf(!hasPromtool && !inCi)('the FluxPay families (and the fluxpay store fill) pass promtool check metrics', async () => {
    if (!hasPromtool) throw new Error(PROMTOOL_MISSING);
    const t = await app({ FLUXPAY_MAX_RECORDS: '500' });
    await chargeCredits(t, 'user_1', 10);
    await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', credits: 10 }));
    await postEvent(t, usageEvent('failed', { userId: 'user_1', usageId: 'use-1' }));
    await chargeCredits(t, 'user_1', 10);
    await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-2', credits: 10 }));
    const completed = usageEvent('completed', { userId: 'user_1', usageId: 'use-2' });
    await postEvent(t, completed);
    await postEvent(t, completed);
    // The deadline of the first passes after it was compensated: it is not counted again.
    await t.clock.advance(60_000);
    await t.app.fluxpay.relay.idle();
    const text = (await fpGet(t, '/metrics')).body;
    for (const family of ['fluxpay_outbox_depth', 'fluxpay_outbox_publish_lag_seconds', 'fluxpay_outbox_published_total', 'fluxpay_outbox_publish_delay_seconds', 'fluxpay_sagas_total', 'fluxpay_saga_retries_total']) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(['COMPLETED', 'COMPENSATED'].map((status) => metricSample(text, `fluxpay_sagas_total{status="${status}"}`))).toEqual([1, 1]);
    expect([metricSample(text, 'store_records{store="fluxpay"}'), metricSample(text, 'store_capacity{store="fluxpay"}')]).toEqual([2, 500]);
    const { code, output } = await promtoolCheckMetrics(text);
    expect(output).toBe('');
    expect(code).toBe(0);
  });
});

describe('webhook subscriptions', () => {
  it('subscribers get the events of their types, in order, signed (Standard Webhooks), in the envelope', async () => {
    const all = await receivers.start();
    const credits = await receivers.start();
    const t = await app({}, { clockStart: Date.now() });
    const sub = resultOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: credits.url('/hooks'), events: ['credit.charged', 'credit.deducted'] }));
    expect(sub).toEqual({ subscriptionId: expect.stringMatching(/^whs_[0-9A-HJKMNP-TV-Z]{26}$/), url: credits.url('/hooks'), events: ['credit.charged', 'credit.deducted'], createdAt: expect.any(String) });
    resultOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: all.url('/all'), events: [] }));
    expect(resultOf(await fpGet(t, '/api/v1/webhook-subscriptions'))).toEqual({ items: [sub, expect.objectContaining({ url: all.url('/all'), events: [] })], defaultUrl: null });

    await chargeCredits(t, 'user_1', 100);
    await fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'u-1' });
    const received = await all.waitFor(4);
    const types = received.map((r) => verified(r).eventType);
    expect(types).toEqual(['payment.approved', 'credit.charged', 'order.completed', 'credit.deducted']);
    const outbox = [...resultOf(await fpGet(t, '/api/v1/outbox')).items].reverse();
    // The envelope is the outbox event as GET /api/v1/outbox shows it, without its bookkeeping.
    expect(received.map((r) => JSON.parse(r.body))).toEqual(outbox.map((e: Json) => ({ eventId: e.eventId, eventType: e.eventType, occurredAt: e.occurredAt, data: e.data })));
    expect(received[0]?.headers['webhook-id']).toBe(outbox[0].eventId);
    const mine = await credits.waitFor(2);
    expect(mine.map((r) => verified(r).eventType)).toEqual(['credit.charged', 'credit.deducted']);
    // Tampered bytes do not verify.
    expect(() => new Webhook(SECRET).verify(`${received[0]?.body ?? ''} `, received[0]?.headers as Record<string, string>)).toThrow();
  });

  it('FLUXPAY_WEBHOOK_URL is a subscriber of every event; deliveries are in the delivery log', async () => {
    const rx = await receivers.start();
    const t = await app({ FLUXPAY_WEBHOOK_URL: rx.url('/default') }, { clockStart: Date.now() });
    expect(resultOf(await fpGet(t, '/api/v1/webhook-subscriptions'))).toEqual({ items: [], defaultUrl: rx.url('/default') });
    await paidOrder(t);
    const [req] = await rx.waitFor(1);
    expect(verified(req as ReceivedRequest)).toMatchObject({ eventType: 'payment.approved', data: { status: 'APPROVED' } });
    const log = await eventually(async () => {
      const res = await t.app.inject({ url: '/v1/sim/webhooks/deliveries?limit=10' });
      const found = (res.json().data as Json[]).filter((d) => d.subject?.kind === 'fluxpay_event');
      return found.length === 1 && found[0]?.status === 'delivered' ? found : undefined;
    }, 'the delivery logged as delivered');
    expect(log[0]).toMatchObject({ type: 'payment.approved', url: rx.url('/default'), event_id: JSON.parse((req as ReceivedRequest).body).eventId });
  });

  it('DELETE /api/v1/webhook-subscriptions/{id} answers the subscription; later events go to the others only, a delivery already made keeps its retries; GET and DELETE of it then 404', async () => {
    // The removed subscription's receiver refuses its first delivery, so that delivery is still retrying when it is removed.
    const gone = await receivers.start((req) => (req.index === 0 ? { status: 503, body: 'busy' } : { status: 200, body: 'ok' }));
    const kept = await receivers.start();
    const t = await app({}, { clockStart: Date.now() });
    const removed = resultOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: gone.url('/gone'), events: ['payment.approved'] }));
    const other = resultOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: kept.url('/kept'), events: ['payment.approved'] }));
    expect((await fpGet(t, `/api/v1/webhook-subscriptions/${removed.subscriptionId}`)).json()).toEqual({ ...SUCCESS, result: removed });
    await paidOrder(t);
    await t.app.fluxpay.relay.idle();
    const [first] = await gone.waitFor(1);
    await kept.waitFor(1);
    const firstEventId = first?.headers['webhook-id'];

    const res = await t.app.inject({ method: 'DELETE', url: `/api/v1/webhook-subscriptions/${removed.subscriptionId}` });
    expect([res.statusCode, res.json()]).toEqual([200, { isSuccess: true, code: 'SUCCESS', message: 'Request succeeded.', result: { subscriptionId: removed.subscriptionId, url: gone.url('/gone'), events: ['payment.approved'], createdAt: removed.createdAt } }]);
    const notFound = { isSuccess: false, code: 'COMMON_404', message: `Webhook subscription ${removed.subscriptionId} was not found.`, result: null };
    for (const method of ['DELETE', 'GET'] as const) {
      const again = await t.app.inject({ method, url: `/api/v1/webhook-subscriptions/${removed.subscriptionId}` });
      expect([method, again.statusCode, again.json()]).toEqual([method, 404, notFound]);
    }
    expect(resultOf(await fpGet(t, '/api/v1/webhook-subscriptions'))).toEqual({ items: [other], defaultUrl: null });

    const { payment } = await paidOrder(t);
    await t.app.fluxpay.relay.idle();
    const [, second] = await kept.waitFor(2);
    expect(JSON.parse(second?.body ?? '{}')).toMatchObject({ eventType: 'payment.approved', data: { paymentKey: payment.paymentKey } });
    // The first delivery to the removed subscription is retried (the backoff is about 1 s) and delivered; the second event never went to it.
    await t.clock.advance(2000);
    const retried = await gone.waitFor(2);
    expect(retried.map((r) => r.headers['webhook-id'])).toEqual([firstEventId, firstEventId]);
    const log = await eventually(async () => {
      const deliveries = (await t.app.inject({ url: '/v1/sim/webhooks/deliveries?limit=20' })).json().data as Json[];
      const toGone = deliveries.filter((d) => d.url === gone.url('/gone'));
      return toGone.length === 1 && toGone[0]?.status === 'delivered' ? deliveries : undefined;
    }, 'the removed subscription’s one delivery delivered');
    expect(log.filter((d) => d.url === gone.url('/gone')).map((d) => [d.event_id, d.attempts.length])).toEqual([[firstEventId, 2]]);
    expect(log.filter((d) => d.url === kept.url('/kept'))).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(gone.requests).toHaveLength(2);
  });

  it('beyond FLUXPAY_MAX_SUBSCRIPTIONS a subscription is refused with 409 COMMON_409 saying to delete some (not a 503 to retry); a DELETE makes room', async () => {
    const t = await app({ FLUXPAY_MAX_SUBSCRIPTIONS: '2' });
    const subscribe = (path: string, key: string) => fpPost(t, '/api/v1/webhook-subscriptions', { url: `http://127.0.0.1:9/${path}`, events: [] }, { 'idempotency-key': key });
    const first = resultOf(await subscribe('a', 'k-a'));
    const second = resultOf(await subscribe('b', 'k-b'));
    const refusal = {
      isSuccess: false,
      code: 'COMMON_409',
      message:
        'No webhook subscription was created: FLUXPAY_MAX_SUBSCRIPTIONS (2) exist already, and they never expire. Delete those no longer needed (DELETE /api/v1/webhook-subscriptions/{subscriptionId}; GET /api/v1/webhook-subscriptions lists them), then subscribe again.',
      result: null,
    };
    const refused = await subscribe('c', 'k-c');
    expect([refused.statusCode, refused.headers['retry-after'], refused.json()]).toEqual([409, undefined, refusal]);
    expect(resultOf(await fpGet(t, '/api/v1/webhook-subscriptions')).items).toEqual([first, second]);
    expect(resultOf(await t.app.inject({ method: 'DELETE', url: `/api/v1/webhook-subscriptions/${first.subscriptionId}` }))).toEqual(first);
    // The refused request's key replays its answer (a 4xx is stored with the key); a new key subscribes.
    const replayed = await subscribe('c', 'k-c');
    expect([replayed.statusCode, replayed.headers['idempotent-replayed'], replayed.json()]).toEqual([409, 'true', refusal]);
    const third = resultOf(await subscribe('c', 'k-c2'));
    expect(resultOf(await fpGet(t, '/api/v1/webhook-subscriptions')).items).toEqual([second, third]);
    expect(errorOf(await subscribe('d', 'k-d'))).toEqual([409, refusal]);
    // Not counted as a full store: FluxPay's webhook subscriptions have no store_full_total series.
    expect((await fpGet(t, '/metrics')).body).not.toMatch(/store_full_total\{store="fluxpay_subscriptions"\}/);
  });

  it('GET and DELETE of a subscription id that is not one are COMMON_400 naming path.subscriptionId', async () => {
    const t = await app();
    for (const method of ['DELETE', 'GET'] as const) {
      const res = await t.app.inject({ method, url: '/api/v1/webhook-subscriptions/sub_01KBA7Q4D3P6S9W2Y5A8C1E4GM' });
      expect([method, res.statusCode, res.json()]).toEqual([
        method,
        400,
        fpError('COMMON_400', 'params /subscriptionId: must be whs_ followed by a 26-character ULID', { errors: [{ field: 'path.subscriptionId', reason: 'must be whs_ followed by a 26-character ULID' }] }),
      ]);
    }
  });

  it('bad subscriptions are COMMON_400 and nothing is stored', async () => {
    const t = await app();
    expect(errorOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: 'ftp://x', events: [] }))).toEqual([400, fpError('COMMON_400', expect.any(String), { errors: [{ field: 'url', reason: 'must be an absolute http(s) URL' }] })]);
    expect(errorOf(await fpPost(t, '/api/v1/webhook-subscriptions', { url: 'http://127.0.0.1:1/x', events: ['payment.refunded'] }))[1].result.errors).toEqual([
      { field: 'events.0', reason: 'must be one of payment.approved, payment.failed, credit.charged, credit.deducted, credit.refunded, order.completed, order.cancelled, subscription.activated, subscription.renewed, subscription.past_due, subscription.canceled, subscription.plan_changed, subscription.expired' },
    ]);
    expect(resultOf(await fpGet(t, '/api/v1/webhook-subscriptions')).items).toEqual([]);
  });

  it('a saga’s compensation publishes credit.refunded and order.cancelled, after what it undoes', async () => {
    const rx = await receivers.start();
    const t = await app({ FLUXPAY_WEBHOOK_URL: rx.url('/default') }, { clockStart: Date.now() });
    await chargeCredits(t, 'user_1', 20);
    const { order } = await paidOrder(t);
    await postEvent(t, usageEvent('requested', { userId: 'user_1', usageId: 'use-1', orderId: order.orderId, credits: 20 }));
    await postEvent(t, usageEvent('failed', { userId: 'user_1', usageId: 'use-1' }));
    const received = await rx.waitFor(7);
    expect(received.map((r) => verified(r).eventType)).toEqual(['payment.approved', 'credit.charged', 'order.completed', 'payment.approved', 'credit.deducted', 'credit.refunded', 'order.cancelled']);
    expect(verified(received[6] as ReceivedRequest).data).toMatchObject({ orderId: order.orderId, status: 'CANCELLED', payment: { status: 'CANCELLED' } });
  });
});
