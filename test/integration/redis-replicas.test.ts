import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import type { Stores } from '../../src/core/ports.ts';
import { LOADED, LOADING_SEEN, redisLoading } from '../../src/adapters/redis/connection.ts';
import { SHARED_RULES_REFRESH_MS } from '../../src/plugins/app/faults.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { redisServerOrSkip, refusedInAclLog, startRedis, type TestRedis } from '../helpers/redis.ts';
import { v2Body } from '../helpers/v2.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { LOOK_AFTER_DUE_MS } from '../../src/dialects/payment-server-v2/waits.ts';

/**
 * Two replicas of the whole service on one Redis (STORE=redis, one key prefix), as behind a load
 * balancer: a client alternating between them sees one service. Each replica runs on its own
 * manual clock; the clocks start together and are moved together, as two machines' clocks agree.
 * The Redis server is private to this file, with AOF on so a stop and restart keeps its data.
 */

const START = Date.UTC(2026, 0, 15, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
/** Real time allowed for what happens over Redis after a clock moved (a decision, a reconnect). */
const REAL_TIME_BUDGET_MS = 20_000;
/** Two apps start in a few seconds on an idle machine, several times that on a busy one. */
const TEST_TIMEOUT_MS = 90_000;
/**
 * How often the apps of the data-loss tests look at Redis (`redisChecksMs`): DATA_LOSS_CHECK_MS and
 * GENERATED_CHECK_MS are 5 s, and those tests waited several of them (about 25 s between the two).
 */
const CHECK_MS = 1_000;

/** Polls `probe` in real time until it returns something, within REAL_TIME_BUDGET_MS. */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + REAL_TIME_BUDGET_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

if (redisServerOrSkip('replicas on Redis')) {
  let redis: TestRedis;
  const open: TestApp[] = [];
  beforeAll(async () => {
    redis = await startRedis({ appendOnly: true });
  });
  /** Replicas made by `failingAfterWrite`, with their stores changed. */
  const failing: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all([...open.splice(0).map((t) => t.app.close()), ...failing.splice(0).map((a) => a.close())]);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** Two replicas sharing one key prefix (a fresh one per test). */
  async function replicas(env: Record<string, string> = {}): Promise<[TestApp, TestApp]> {
    const shared = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), ...env };
    const a = await buildTestApp(shared, { clockStart: START });
    open.push(a);
    const b = await buildTestApp(shared, { clockStart: START });
    open.push(b);
    return [a, b];
  }

  /** A one-seat booking of `userId` made on `t`, and its card payment (`POST /payments/execute`, on `t` unless told). */
  async function aBookingToPay(t: TestApp, userId: string): Promise<{ bookingId: string; pay: (token?: string, on?: TestApp) => ReturnType<typeof inject> }> {
    const headers = { 'x-user-id': userId };
    const booked = await inject(t, { method: 'POST', url: '/bookings', headers, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
    expect(booked.statusCode).toBe(201);
    const bookingId = booked.json().bookingId as string;
    return { bookingId, pay: (token = 'tok_visa', on = t) => inject(on, { method: 'POST', url: '/payments/execute', headers, payload: { bookingId, paymentMethodToken: token, cvv: '120' } }) };
  }

  /**
   * Replica A on a new prefix, whose stores `wrap` changes (a write that goes through, then fails as
   * if Redis failed the call after it: `writtenThenFailed`), and replica B beside it (a test app on
   * START's manual clock); both are closed after the test.
   */
  async function failingAfterWrite(wrap: (stores: Stores) => void, options: { env?: Record<string, string>; clock?: ManualClock } = {}): Promise<{ a: FastifyInstance; b: TestApp }> {
    const env = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), SHUTDOWN_TIMEOUT_MS: '0', WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==', ...options.env };
    const a = await buildApp({
      config: loadConfig(env),
      clock: options.clock,
      logger: false,
      wrapStores: (stores) => {
        wrap(stores);
        return stores;
      },
    });
    await a.ready();
    failing.push(a);
    const b = await buildTestApp(env, { clockStart: START });
    open.push(b);
    return { a, b };
  }
  /** A store call whose write goes through, then fails (its reply lost, Redis slow): the client gets 503. */
  const writtenThenFailed =
    <A extends unknown[], R>(write: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await write(...args);
      throw new StoreUnavailableError();
    };

  const inject = (t: TestApp, options: InjectOptions): Promise<LightMyRequestResponse> => t.app.inject(options);
  /** The `ready` gauge of a /metrics text. */
  const readyGauge = (text: string): number | undefined => {
    const line = /^ready (\S+)$/m.exec(text);
    return line === null ? undefined : Number(line[1]);
  };
  const createIntent = (t: TestApp, body: object, headers: Record<string, string> = {}) => inject(t, { method: 'POST', url: '/v1/sim/intent', payload: body, headers });
  const getIntent = (t: TestApp, id: string) => inject(t, { method: 'GET', url: `/v1/sim/intents/${id}` });

  describe('two replicas on one Redis', { timeout: TEST_TIMEOUT_MS }, () => {
    it('without WEBHOOK_SECRET and CONSOLE_TOKEN, they sign webhooks and console sessions with the values the first one generated, kept on Redis across restarts', async () => {
      const prefix = redis.newPrefix();
      const env = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, SHUTDOWN_TIMEOUT_MS: '0' };
      const start = async (extra: Record<string, string> = {}) => {
        const config = loadConfig({ ...env, ...extra });
        const drawn = config.webhookSecret;
        const app = await buildApp({ config, logger: false });
        await app.ready();
        return { app, config, drawn };
      };
      const a = await start();
      const b = await start();
      try {
        // Each drew its own; both sign with the first one's, the /api/v2 callbacks too (PAYMENT_WEBHOOK_SECRET unset).
        expect(b.drawn).not.toBe(a.drawn);
        expect([a.config.webhookSecret, b.config.webhookSecret, b.config.v2.webhookSecret, b.config.webhookSecretGenerated]).toEqual([a.drawn, a.drawn, a.drawn, true]);
        const signed = (t: typeof a) => t.app.webhooks.signers.headers(['standard', 'payment-v2'], 'evt_1', '{"x":1}', START);
        expect(signed(b)).toEqual(signed(a));
        expect(await redis.client.get(`${prefix}generated:webhook-secret`)).toBe(a.drawn);
        // A console session and its CSRF token from A are good on B: past the CSRF check (no such rule: 404), not 403.
        const page = await a.app.inject({ method: 'GET', url: '/console/rules' });
        const cookie = String(page.headers['set-cookie']).split(';', 1)[0] as string;
        const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] as string;
        const post = await b.app.inject({ method: 'POST', url: '/console/rules/rule_x/delete', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${csrf}` });
        expect(post.statusCode, post.body.includes("CSRF") ? "refused: CSRF" : "").toBe(404);
        expect(b.config.console.sessionKey).toBe(a.config.console.sessionKey);
      } finally {
        await Promise.all([a.app.close(), b.app.close()]);
      }
      // A restart keeps them (Redis kept them); configured values are never replaced.
      const again = await start();
      const own = await start({ WEBHOOK_SECRET: 'whsec_b3duLXNlY3JldC1vZi10aGlzLXJlcGxpY2E=', PAYMENT_WEBHOOK_SECRET: 'v2-own-secret', CONSOLE_TOKEN: 'console-token-own' });
      try {
        expect(again.config.webhookSecret).toBe(a.drawn);
        expect([own.config.webhookSecret, own.config.v2.webhookSecret, own.config.webhookSecretGenerated, own.config.console.sessionKey]).toEqual(['whsec_b3duLXNlY3JldC1vZi10aGlzLXJlcGxpY2E=', 'v2-own-secret', false, undefined]);
      } finally {
        await Promise.all([again.app.close(), own.app.close()]);
      }
    });

    it('an intent created on A is read and cancelled on B; another, approved, is refunded on A and read on B (whole bodies)', async () => {
      const [a, b] = await replicas();
      const created = await createIntent(a, { reservation_id: 'res_1', amount: 15000, scenario: 'delay', delay_ms: 60_000, metadata: { order: 'o-1' } });
      expect(created.statusCode).toBe(200);
      const id = created.json().payment_intent_id as string;
      expect(created.json()).toEqual({ payment_intent_id: id, status: 'PENDING', next: 'poll' });

      const pending = {
        payment_intent_id: id,
        reservation_id: 'res_1',
        amount: 15000,
        currency: 'KRW',
        scenario: 'delay',
        status: 'PENDING',
        failure_code: null,
        refunded_amount: 0,
        delay_ms: 60_000,
        webhook_url: null,
        metadata: { order: 'o-1' },
        created_at: iso(START),
        updated_at: iso(START),
        decided_at: null,
        webhook: null,
      };
      const readOnB = await getIntent(b, id);
      expect(readOnB.statusCode).toBe(200);
      expect(readOnB.json()).toEqual(pending);

      await Promise.all([a.clock.advance(50), b.clock.advance(50)]);
      const cancelled = await inject(b, { method: 'POST', url: `/v1/sim/intents/${id}/cancel` });
      expect(cancelled.statusCode).toBe(200);
      const { webhook: _none, ...intentFields } = pending;
      const cancelledBody = { ...intentFields, status: 'CANCELLED', updated_at: iso(START + 50) };
      expect(cancelled.json()).toEqual(cancelledBody);
      expect((await getIntent(a, id)).json()).toEqual({ ...cancelledBody, webhook: null });
      // B cancelled A's scheduled decision too: nothing is left to decide.
      expect(await a.app.core.scheduler.pending('intent.decide')).toBe(0);

      const second = (await createIntent(b, { reservation_id: 'res_2', amount: 9000, scenario: 'approve' })).json().payment_intent_id as string;
      await Promise.all([a.clock.advance(200), b.clock.advance(200)]);
      await eventually(async () => ((await getIntent(a, second)).json().status === 'APPROVED' ? true : undefined), 'the approval');
      const refunded = await inject(a, { method: 'POST', url: `/v1/sim/intents/${second}/refund`, payload: { amount: 4000 } });
      expect(refunded.statusCode).toBe(200);
      const refundedBody = {
        payment_intent_id: second,
        reservation_id: 'res_2',
        amount: 9000,
        currency: 'KRW',
        scenario: 'approve',
        status: 'PARTIALLY_REFUNDED',
        failure_code: null,
        refunded_amount: 4000,
        delay_ms: 200,
        webhook_url: null,
        metadata: null,
        created_at: iso(START + 50),
        updated_at: iso(START + 250),
        decided_at: iso(START + 250),
      };
      expect(refunded.json()).toEqual(refundedBody);
      expect((await getIntent(b, second)).json()).toEqual({ ...refundedBody, webhook: null });
      // More than is left, asked of the other replica, is refused by the shared state.
      const tooMuch = await inject(b, { method: 'POST', url: `/v1/sim/intents/${second}/refund`, payload: { amount: 5001 } });
      expect(tooMuch.statusCode).toBe(422);
      expect(tooMuch.json().error).toMatchObject({ code: 'REFUND_EXCEEDS_AMOUNT', message: `A refund of 5001 exceeds the 5000 left to refund on ${second}.` });
      // Exactly one replica decided it, once.
      const approvals = [...a.events, ...b.events].filter((e) => e.type === 'payment.approved' && e.intent.id === second);
      expect(approvals).toHaveLength(1);
    });

    it('200 concurrent creates with one Idempotency-Key, split across both, create one intent', async () => {
      const [a, b] = await replicas();
      const body = { reservation_id: 'res_idem', amount: 700, scenario: 'delay', delay_ms: 60_000 };
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => createIntent(i % 2 === 0 ? a : b, body, { 'idempotency-key': 'one-key' })));
      const ok = answers.filter((r) => r.statusCode === 200);
      const busy = answers.filter((r) => r.statusCode === 409);
      expect(ok.length + busy.length).toBe(200);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      const ids = new Set(ok.map((r) => r.json().payment_intent_id as string));
      expect(ids.size).toBe(1);
      const [id] = [...ids];
      for (const r of ok) expect(r.json()).toEqual({ payment_intent_id: id, status: 'PENDING', next: 'poll' });
      expect(ok.filter((r) => r.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
      for (const r of busy) expect(r.json().error.code).toBe('IDEMPOTENCY_KEY_IN_USE');
      expect((await a.app.stores.intents.stats()).size).toBe(1);
      expect((await b.app.stores.intents.list({ limit: 10 })).data.map((i) => i.id)).toEqual([id]);
      expect(await b.app.core.scheduler.pending('intent.decide')).toBe(1);
      expect([...a.events, ...b.events].filter((e) => e.type === 'payment.created')).toHaveLength(1);
      // Once the first has answered, every retry on either replica is its replay.
      for (const t of [a, b]) {
        const again = await createIntent(t, body, { 'idempotency-key': 'one-key' });
        expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([200, 'true', { payment_intent_id: id, status: 'PENDING', next: 'poll' }]);
      }
    });

    it('a keyed create whose intent was written but whose answer was a 503 (Redis slow after the write): the retry on the other replica answers that intent, not a second one (a user test: two payments)', async () => {
      // Replica A: its insert is written, then Redis "fails" it (the reply lost): the client gets 503.
      const { a, b: other } = await failingAfterWrite((stores) => {
        const insertScheduled = stores.intents.insertScheduled?.bind(stores.intents);
        if (insertScheduled === undefined) throw new Error('a Redis intent store writes its job with the intent');
        stores.intents.insertScheduled = writtenThenFailed(insertScheduled);
      });
      const body = { reservation_id: 'res_resumed', amount: 700, scenario: 'approve' };
      const failed = await a.inject({ method: 'POST', url: '/v1/sim/intent', payload: body, headers: { 'idempotency-key': 'resumed-key' } });
      expect([failed.statusCode, failed.json().error.code]).toEqual([503, 'STORE_UNAVAILABLE']);
      const written = (await other.app.stores.intents.list({ limit: 10, reservationId: 'res_resumed' })).data;
      expect(written).toHaveLength(1);
      const retried = await createIntent(other, body, { 'idempotency-key': 'resumed-key' });
      expect([retried.statusCode, retried.headers['idempotent-replayed'], retried.json()]).toEqual([200, undefined, { payment_intent_id: written[0]?.id, status: 'PENDING', next: 'poll' }]);
      expect((await other.app.stores.intents.list({ limit: 10, reservationId: 'res_resumed' })).data).toHaveLength(1);
      // Answered now: the next retry is its replay; another body under the key is refused.
      const again = await createIntent(other, body, { 'idempotency-key': 'resumed-key' });
      expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([200, 'true', retried.json()]);
      expect((await createIntent(other, { ...body, amount: 701 }, { 'idempotency-key': 'resumed-key' })).statusCode).toBe(422);
    });

    it('a FluxPay order, a FluxPay payment and a booking made under a key whose answer was a 503 (Redis failed the call after the write): the retry on the other replica answers what was made, not a second one (before 2026-12-05 each was made twice)', async () => {
      // Replica A: each create's write goes through, then Redis "fails" it (the reply lost): the client gets 503.
      const { a, b } = await failingAfterWrite((stores) => {
        stores.fluxpay.createOrder = writtenThenFailed(stores.fluxpay.createOrder.bind(stores.fluxpay));
        stores.fluxpay.createPayment = writtenThenFailed(stores.fluxpay.createPayment.bind(stores.fluxpay));
        stores.bookings.insert = writtenThenFailed(stores.bookings.insert.bind(stores.bookings));
      });
      const keyed = (key: string, options: InjectOptions): InjectOptions => ({ ...options, headers: { ...(options.headers as Record<string, string> | undefined), 'idempotency-key': key } });
      const tryBoth = async (key: string, options: InjectOptions) => {
        const failed = await a.inject(keyed(key, options));
        expect(failed.statusCode).toBe(503);
        const retried = await inject(b, keyed(key, options));
        const again = await inject(b, keyed(key, options));
        // The retry answers what A made, as created; the next one replays that answer.
        expect(retried.headers['idempotent-replayed']).toBeUndefined();
        expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([retried.statusCode, 'true', retried.json()]);
        return retried;
      };

      const orderBody = { userId: 'user_resumed', serviceId: 'chat', orderName: 'resumed', amount: 1000 };
      const order = await tryBoth('order-key', { method: 'POST', url: '/api/v1/orders', payload: orderBody });
      const orders = (await b.app.stores.fluxpay.listOrders({ limit: 10, userId: 'user_resumed' })).data;
      expect(orders.map((o) => o.orderId)).toEqual([order.json().result.orderId]);
      expect([order.statusCode, order.json().result.status, order.json().result.amount]).toEqual([200, 'PENDING', 1000]);

      const paymentBody = { orderId: orders[0]?.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '100', expMonth: 12, expYear: 2030 } };
      const payment = await tryBoth('payment-key', { method: 'POST', url: '/api/v1/payments', payload: paymentBody });
      expect([payment.statusCode, payment.json().result.status, payment.json().result.orderId]).toEqual([200, 'READY', orders[0]?.orderId]);
      expect((await b.app.stores.fluxpay.paymentStats()).size).toBe(1);
      expect((await b.app.stores.fluxpay.getPayment(payment.json().result.paymentKey as string))?.orderId).toBe(orders[0]?.orderId);

      const booking = await tryBoth('booking-key', { method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_resumed' }, payload: { performanceId: 'perf_002', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
      const bookings = (await b.app.stores.bookings.listForUser('user_resumed', { limit: 10 })).data;
      expect(bookings.map((x) => [x.id, x.seatIds])).toEqual([[booking.json().bookingId, booking.json().seatIds]]);
      expect([booking.statusCode, booking.json().seatIds]).toEqual([201, expect.arrayContaining([expect.any(String), expect.any(String)])]);
      expect((await b.app.stores.seats.counts('perf_002'))?.held).toBe(2);

    });

    it('an order under an admission token, written and answered 503: its token is spent, not given back; the keyed retry on the other replica answers that order, and the token makes no second one (a review: two orders of one token)', async () => {
      // On B's clock: the room's times are the test clock's.
      const { a, b } = await failingAfterWrite(
        (stores) => {
          stores.fluxpay.createOrder = writtenThenFailed(stores.fluxpay.createOrder.bind(stores.fluxpay));
        },
        { clock: new ManualClock(START) },
      );
      const put = await inject(b, { method: 'PUT', url: '/api/v1/waiting-rooms/sale', payload: { admitPerSecond: 10, admissionTtlSeconds: 600, protectedServiceIds: ['ai-writer'], maxActive: 1 } });
      expect(put.statusCode).toBe(201);
      const userA = (await inject(b, { method: 'POST', url: '/api/v1/waiting-rooms/sale/enter', payload: { userId: 'user_a' } })).json().result;
      const userB = (await inject(b, { method: 'POST', url: '/api/v1/waiting-rooms/sale/enter', payload: { userId: 'user_b' } })).json().result;
      expect([userA.status, userB.status]).toEqual(['ADMITTED', 'WAITING']);
      const order = (key: string | undefined, orderName: string): InjectOptions => ({
        method: 'POST',
        url: '/api/v1/orders',
        payload: { userId: 'user_a', serviceId: 'ai-writer', orderName, amount: 15000 },
        headers: { 'x-admission-token': userA.admissionToken as string, ...(key === undefined ? {} : { 'idempotency-key': key }) },
      });
      expect((await a.inject(order('k1', 'first'))).statusCode).toBe(503);
      const retried = await inject(b, order('k1', 'first'));
      expect([retried.statusCode, retried.json().result.orderName]).toEqual([200, 'first']);
      // Spent with its order written: its slot is free (user_b is admitted at the rate's next slot, 100 ms on).
      expect((await inject(b, { url: '/api/v1/waiting-rooms/sale' })).json().result).toMatchObject({ activeTokens: 0, used: 1, admitted: 1 });
      const second = await inject(b, order(undefined, 'second'));
      expect([second.statusCode, second.json().code]).toEqual([403, 'WAIT_001']);
      expect((await b.app.stores.fluxpay.listOrders({ limit: 10, userId: 'user_a' })).data.map((o) => o.orderName)).toEqual(['first']);
    });

    it('a FluxPay subscription written under a key whose answer was a 503: the retry on the other replica answers it, charged once (before 2026-12-05 a second subscription, charged again)', async () => {
      const { a, b } = await failingAfterWrite((stores) => {
        stores.billing.create = writtenThenFailed(stores.billing.create.bind(stores.billing));
      });
      const subscribe = { method: 'POST' as const, url: '/api/v1/subscriptions', headers: { 'idempotency-key': 'subscription-key' }, payload: { userId: 'user_subscribed', planId: 'basic-monthly', card: { number: '4242424242424242', cvv: '100', expMonth: 12, expYear: 2030 } } };
      expect((await a.inject(subscribe)).statusCode).toBe(503);
      const [written] = (await b.app.stores.billing.list({ userId: 'user_subscribed', limit: 10 })).data;
      const retried = await inject(b, subscribe);
      expect([retried.statusCode, retried.headers['idempotent-replayed'], retried.json().result.subscriptionId, retried.json().result.status]).toEqual([200, undefined, written?.subscriptionId, 'ACTIVE']);
      expect((await b.app.stores.billing.list({ userId: 'user_subscribed', limit: 10 })).data).toHaveLength(1);
      expect((await b.app.stores.fluxpay.listOrders({ limit: 10, userId: 'user_subscribed' })).data).toHaveLength(1);
      const again = await inject(b, subscribe);
      expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([200, 'true', retried.json()]);
    });

    it('a resumed create whose first request never wrote it is made under the noted id: a FluxPay order\'s admission token, used by the first request and not given back, is that order\'s (a review: 403 WAIT_001, kept under the key); a booking resumed after its hold lapsed is a new booking, not the expired one answered as booked (a review)', async () => {
      const clock = new ManualClock(START, { awaitWork: true });
      const failing = <A extends unknown[], R>(_call: (...args: A) => Promise<R>) => (): Promise<R> => Promise.reject(new StoreUnavailableError());
      const { a, b } = await failingAfterWrite(
        (stores) => {
          stores.fluxpay.createOrder = failing(stores.fluxpay.createOrder);
          stores.waitingRooms.releaseToken = failing(stores.waitingRooms.releaseToken);
          stores.bookings.insert = writtenThenFailed(stores.bookings.insert.bind(stores.bookings));
        },
        { clock, env: { SEAT_HOLD_MS: '60000', MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' } },
      );
      expect((await inject(b, { method: 'PUT', url: '/api/v1/waiting-rooms/sale', payload: { admitPerSecond: 2, admissionTtlSeconds: 600, protectedServiceIds: ['ai-writer'] } })).statusCode).toBe(201);
      const token = (await inject(b, { method: 'POST', url: '/api/v1/waiting-rooms/sale/enter', payload: { userId: 'user_1' } })).json().result.admissionToken as string;
      const order = { method: 'POST' as const, url: '/api/v1/orders', headers: { 'x-admission-token': token, 'idempotency-key': 'room-key' }, payload: { userId: 'user_1', serviceId: 'ai-writer', orderName: 'r', amount: 15000 } };
      expect((await a.inject(order)).statusCode).toBe(503);
      const retried = await inject(b, order);
      expect([retried.statusCode, retried.json().result?.status]).toEqual([200, 'PENDING']);
      expect((await b.app.stores.fluxpay.listOrders({ limit: 10, userId: 'user_1' })).data.map((o) => o.orderId)).toEqual([retried.json().result.orderId]);
      // The token is that order's now: another key's order with it is refused.
      expect((await inject(b, { ...order, headers: { ...order.headers, 'idempotency-key': 'other-key' } })).json().code).toBe('WAIT_001');

      const booking = { method: 'POST' as const, url: '/bookings', headers: { 'x-user-id': 'user_9', 'idempotency-key': 'late-key' }, payload: { performanceId: 'perf_002', quantity: 2, paymentMethod: 'CREDIT_CARD' } };
      expect((await a.inject(booking)).statusCode).toBe(503);
      const first = (await b.app.stores.bookings.listForUser('user_9', { limit: 10 })).data;
      await Promise.all([clock.advance(120_000), b.clock.advance(120_000)]);
      const rebooked = await inject(b, booking);
      expect(rebooked.statusCode).toBe(201);
      expect(rebooked.json().bookingId).not.toBe(first[0]?.id);
      expect((await b.app.stores.bookings.get(rebooked.json().bookingId as string))?.status).toBe('pending');
      expect((await b.app.stores.bookings.get(first[0]?.id as string))?.status).toBe('expired');
      expect((await b.app.stores.seats.counts('perf_002'))?.held).toBe(2);
      const again = await inject(b, booking);
      expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([201, 'true', rebooked.json()]);

      // Paid since (found in the user's list): the retry answers that booking, not a second one (a review).
      const paidKey = { ...booking, headers: { ...booking.headers, 'x-user-id': 'user_paid', 'idempotency-key': 'paid-key' } };
      expect((await a.inject(paidKey)).statusCode).toBe(503);
      const [paid] = (await b.app.stores.bookings.listForUser('user_paid', { limit: 10 })).data;
      expect((await inject(b, { method: 'POST', url: '/payments/execute', headers: { 'x-user-id': 'user_paid' }, payload: { bookingId: paid?.id, paymentMethodToken: 'tok_visa', cvv: '120' } })).json().finalStatus).toBe('SUCCESS');
      await eventually(async () => {
        if ((await b.app.stores.bookings.get(paid?.id as string))?.status === 'confirmed') return true;
        await b.clock.advance(100);
        return undefined;
      }, 'the payment applied');
      const retriedPaid = await inject(b, paidKey);
      expect([retriedPaid.statusCode, retriedPaid.json().bookingId]).toEqual([201, paid?.id]);
      expect((await b.app.stores.bookings.listForUser('user_paid', { limit: 10 })).data.map((x) => x.status)).toEqual(['confirmed']);
    });

    it('a keyed create that finds, before its write, that its key was taken by another request (its retry on another replica, this one cut off from Redis) writes nothing and answers 409 IDEMPOTENCY_KEY_IN_USE in its shape (a review: two orders, two intents)', async () => {
      // Before the write, the key is taken by another claim (what a retry elsewhere does once this replica's mark lapsed).
      const takenBeforeWrite = (entryOf: () => string | undefined) => async () => {
        const entry = entryOf();
        if (entry !== undefined) await redis.client.hset(entry, 'ct', 'another-claim');
      };
      let entry: string | undefined;
      const { a, b } = await failingAfterWrite((stores) => {
        const idem = stores.idempotency;
        const noteOf = idem.noteOf?.bind(idem);
        if (noteOf === undefined) throw new Error('a Redis idempotency store notes what a request makes');
        idem.noteOf = (scope, key, claim) => {
          const note = noteOf(scope, key, claim);
          entry = note.entry;
          return note;
        };
        const take = takenBeforeWrite(() => entry);
        const note = idem.note?.bind(idem);
        if (note !== undefined) idem.note = async (...args) => (await take(), note(...args));
        const insertScheduled = stores.intents.insertScheduled?.bind(stores.intents);
        if (insertScheduled !== undefined) stores.intents.insertScheduled = async (...args) => (await take(), insertScheduled(...args));
      });
      const order = await a.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'idempotency-key': 'lost-1' }, payload: { userId: 'user_lost', serviceId: 'chat', orderName: 'r', amount: 1000 } });
      expect([order.statusCode, order.json(), order.headers['retry-after']]).toEqual([409, { isSuccess: false, code: 'COMMON_409', message: 'Another request with this Idempotency-Key (a retry on another replica) took it over while this one could not reach Redis; that request answers it, and nothing was done here.', result: null }, '1']);
      expect((await b.app.stores.fluxpay.listOrders({ limit: 10, userId: 'user_lost' })).data).toEqual([]);
      const intent = await a.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'idempotency-key': 'lost-2' }, payload: { reservation_id: 'res_lost_key', amount: 700 } });
      expect([intent.statusCode, intent.json().error.code, intent.headers['retry-after']]).toEqual([409, 'IDEMPOTENCY_KEY_IN_USE', '1']);
      expect((await b.app.stores.intents.list({ limit: 10, reservationId: 'res_lost_key' })).data).toEqual([]);
      // Counted as the key's refusals are.
      expect(/^idempotency_conflicts_total (\d+)$/m.exec((await a.inject({ url: '/metrics' })).body)?.[1]).toBe('2');
    });

    it('a keyed refund written but answered 503 (Redis failed the call after the write): the retry on the other replica answers that refund, not a second one, and its event is the one the first refund\'s backstop would tell (before 2026-12-05 it refunded twice)', async () => {
      const { a, b } = await failingAfterWrite((stores) => {
        const refundScheduled = stores.intents.refundScheduled?.bind(stores.intents);
        if (refundScheduled === undefined) throw new Error('a Redis intent store writes its job with the refund');
        stores.intents.refundScheduled = writtenThenFailed(refundScheduled);
      });
      const id = (await createIntent(b, { reservation_id: 'res_refund_resumed', amount: 9000, scenario: 'approve' })).json().payment_intent_id as string;
      await b.clock.advance(200);
      await eventually(async () => ((await getIntent(b, id)).json().status === 'APPROVED' ? true : undefined), 'the approval');
      const refund = { method: 'POST' as const, url: `/v1/sim/intents/${id}/refund`, payload: { amount: 4000 }, headers: { 'idempotency-key': 'refund-key' } };
      const failed = await a.inject(refund);
      expect([failed.statusCode, failed.json().error.code]).toEqual([503, 'STORE_UNAVAILABLE']);
      const refundedAt = (await b.app.stores.intents.get(id))?.updatedAt as number;
      const retried = await inject(b, refund);
      const { webhook: _none, ...stored } = (await getIntent(b, id)).json();
      expect([retried.statusCode, retried.headers['idempotent-replayed'], retried.json()]).toEqual([200, undefined, stored]);
      expect([stored.status, stored.refunded_amount, stored.updated_at]).toEqual(['PARTIALLY_REFUNDED', 4000, iso(refundedAt)]);
      const again = await inject(b, refund);
      expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([200, 'true', retried.json()]);
      // One event, at the refund's own time, and the first refund's backstop job taken off (it told the same event).
      expect(b.events.filter((e) => e.type === 'payment.refunded').map((e) => [e.occurredAt, e.intent.refundedAmount])).toEqual([[refundedAt, 4000]]);
      expect(await b.app.core.scheduler.pending('intent.refund_event')).toBe(0);
    });

    it('a decision scheduled on A is made by B when A is gone: B polls the shared schedule', async () => {
      const [a, b] = await replicas();
      const id = (await createIntent(a, { reservation_id: 'res_3', amount: 500, scenario: 'delay', delay_ms: 5000 })).json().payment_intent_id as string;
      await a.app.close();
      open.splice(open.indexOf(a), 1);
      // B was never told of the job: only its poll can find it.
      await b.clock.advance(5000);
      const decided = await eventually(async () => {
        const intent = (await getIntent(b, id)).json();
        if (intent.status !== 'PENDING') return intent;
        await b.clock.advance(250);
        return undefined;
      }, 'B to decide the intent');
      expect(decided).toMatchObject({ payment_intent_id: id, status: 'APPROVED', failure_code: null });
      expect(Date.parse(decided.decided_at)).toBeGreaterThanOrEqual(START + 5000);
      expect(b.events.filter((e) => e.intent.id === id).map((e) => e.type)).toEqual(['payment.approved']);
      expect(await b.app.core.scheduler.pending('intent.decide')).toBe(0);
    });
  });

  describe('an /api/v2 create on one replica whose payment the other decides', { timeout: TEST_TIMEOUT_MS }, () => {
    /**
     * A creates `txId` (its own deliveries drained: B makes the callback's attempt, whose events A
     * never sees); only B's clock reaches the decision, due in 3 s, and moves on until `done`; then
     * A's clock passes the due time (its scheduler finds the job done) and its wait reads the
     * payment. A's answer, or undefined after 10 s.
     */
    async function createdOnADecidedByB(env: Record<string, string>, scenario: string, txId: string, done: (b: TestApp, rx: Receiver) => Promise<boolean>, what: string) {
      const [a, b] = await replicas(env);
      const rx = await startReceiver();
      try {
        await a.app.webhooks.dispatcher.drain(1_000);
        const creating = inject(a, { method: 'POST', url: '/api/v2/payments', headers: { 'x-sim-scenario': scenario }, payload: v2Body(txId, rx.url('/callback')) });
        await eventually(async () => ((await b.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the payment stored, its decision due in 3 s');
        await b.clock.advance(3_000);
        await eventually(async () => {
          if (await done(b, rx)) return true;
          await b.clock.advance(250);
          return undefined;
        }, what);
        await a.clock.advance(3_000 + LOOK_AFTER_DUE_MS);
        return { answered: await Promise.race([creating, sleep(10_000).then(() => undefined)]), rx };
      } finally {
        await rx.close();
      }
    }

    it('answers once the other replica has decided it and its callback completed it, by reading its payment past the due time (before 2026-12-03 it never answered)', async () => {
      const { answered, rx } = await createdOnADecidedByB(
        {},
        'delay',
        'tx_other',
        async (b) => (await inject(b, { url: '/api/v2/payments/pay_tx_other' })).json().status === 'PAYMENT_COMPLETED',
        'B to decide the payment and its callback to complete it',
      );
      expect(rx.requests).toHaveLength(1);
      expect([answered?.statusCode, answered?.json()]).toEqual([200, { ok: true, tx_id: 'tx_other', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_other' }]);
    });

    it('a declined one answers PAYMENT_FAILED once the other replica’s first attempt is recorded, not at the bound WEBHOOK_TIMEOUT_MS after the decision', async () => {
      // The bound is 20 s: before 2026-12-03 the create waited for it.
      const { answered } = await createdOnADecidedByB(
        { V2_COMPLETE_DELAY_MS: '3000', WEBHOOK_TIMEOUT_MS: '20000' },
        'fail',
        'tx_declined',
        async (_b, rx) => rx.requests.length === 1,
        'B to decide the payment and make its callback’s attempt',
      );
      expect([answered?.statusCode, answered?.json()]).toEqual([200, { ok: true, tx_id: 'tx_declined', status: 'PAYMENT_FAILED', payment_id: 'pay_tx_declined' }]);
    });
  });

  describe('an /api/v2 create repeated on the other replica while the first waits', { timeout: TEST_TIMEOUT_MS }, () => {
    it('the repeat waits for the same answer (PAYMENT_COMPLETED), as a twin in one process does; a repeat after the answer replays it at once (a helper: before 2026-12-04 it answered PENDING at once)', async () => {
      const [a, b] = await replicas({ V2_COMPLETE_DELAY_MS: '1000' });
      const rx = await startReceiver();
      try {
        const create = (t: TestApp) => inject(t, { method: 'POST', url: '/api/v2/payments', payload: v2Body('tx_twin', rx.url('/callback')) });
        const first = create(a);
        await eventually(async () => ((await b.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the payment stored, its decision due in 1 s');
        const repeat = create(b);
        // Neither answers before the decision, however long they wait (B's store checks read it PENDING, undecided).
        expect(await Promise.race([repeat.then(() => 'answered'), sleep(3 * LOOK_AFTER_DUE_MS + 200).then(() => 'waiting')])).toBe('waiting');
        // Past the due time by LOOK_AFTER_DUE_MS: either replica may claim the decision and either may
        // send the callback, and A's wait reads its payment once its clock is that far past the due
        // time. Advanced by 1 s only, A waited for ever whenever B both decided it and sent its
        // callback (a CI run on 2026-12-05 timed out here after 90 s).
        await Promise.all([a.clock.advance(1_000 + LOOK_AFTER_DUE_MS), b.clock.advance(1_000 + LOOK_AFTER_DUE_MS)]);
        const completed = { ok: true, tx_id: 'tx_twin', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_twin' };
        const [one, two] = await Promise.all([first, repeat]);
        expect([one.statusCode, one.headers['idempotent-replayed'], one.json()]).toEqual([200, undefined, completed]);
        expect([two.statusCode, two.headers['idempotent-replayed'], two.json()]).toEqual([200, 'true', completed]);
        expect(rx.requests).toHaveLength(1);
        const later = await create(b);
        expect([later.statusCode, later.headers['idempotent-replayed'], later.json()]).toEqual([200, 'true', completed]);
      } finally {
        await rx.close();
      }
    });
  });

  describe('Redis losing its data with the connections open (FLUSHDB, a key deleted)', { timeout: TEST_TIMEOUT_MS }, () => {
    it('bookings, the performances and their seats work at once on both replicas: the maps are laid out again by the calls that find them missing (before 2026-12-03: 404 and 500 until a reconnect)', async () => {
      const [a, b] = await replicas();
      const user = { 'x-user-id': 'user_flush' };
      const book = (t: TestApp) => inject(t, { method: 'POST', url: '/bookings', headers: user, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
      expect((await book(a)).statusCode).toBe(201);
      await redis.client.flushdb();
      const performances = await inject(b, { url: '/performances', headers: user });
      expect(performances.statusCode).toBe(200);
      for (const p of performances.json() as Array<{ seats: { total: number; available: number; held: number; reserved: number } }>) {
        expect(p.seats).toEqual({ total: p.seats.total, available: p.seats.total, held: 0, reserved: 0 });
      }
      const seats = await inject(a, { url: '/performances/perf_002/seats', headers: user });
      const seatsBody = seats.json() as { counts: object; seats: Array<{ status: string }> };
      expect([seats.statusCode, seatsBody.seats.every((seat) => seat.status === 'available'), seatsBody.counts]).toEqual([200, true, { total: seatsBody.seats.length, available: seatsBody.seats.length, held: 0, reserved: 0 }]);
      const again = await book(b);
      expect([again.statusCode, again.json().seatIds]).toEqual([201, ['A1', 'A2']]);
      // Only a performance's counts deleted: counted again from its map, the hold above kept.
      await redis.client.del(`${a.config.redis.keyPrefix}seats:n:perf_001`);
      const third = await book(a);
      expect([third.statusCode, third.json().seatIds]).toEqual([201, ['A3', 'A4']]);
      const perf1 = ((await inject(b, { url: '/performances', headers: user })).json() as Array<{ performanceId: string; seats: { total: number; held: number } }>).find((p) => p.performanceId === 'perf_001');
      expect(perf1?.seats.held).toBe(4);
    });

    it('a seat map lost alone under pending bookings: their seats may be held again by others, and a payment of the old map fails its booking instead of confirming seats another has (before 2026-12-03 both were confirmed)', async () => {
      const [a, b] = await replicas({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' });
      const user = { 'x-user-id': 'user_lost' };
      const book = async (t: TestApp) => {
        const res = await inject(t, { method: 'POST', url: '/bookings', headers: user, payload: { performanceId: 'perf_003', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
        expect(res.statusCode).toBe(201);
        return res.json() as { bookingId: string; seatIds: string[] };
      };
      const pay = (t: TestApp, bookingId: string) => inject(t, { method: 'POST', url: '/payments/execute', headers: user, payload: { bookingId, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' } });
      const x = await book(a);
      await redis.client.del(`${a.config.redis.keyPrefix}seats:map:perf_003`);
      const y = await book(b);
      expect(y.seatIds).toEqual(x.seatIds);
      await pay(a, x.bookingId);
      await pay(b, y.bookingId);
      // The payments' events are processed as due work, by either replica.
      const statuses = await eventually(async () => {
        const mine = (await inject(a, { url: '/bookings/my', headers: user })).json() as Array<{ bookingId: string; status: string }>;
        if (mine.every((bk) => bk.status !== 'pending')) return new Map(mine.map((bk) => [bk.bookingId, bk.status]));
        await Promise.all([a.clock.advance(100), b.clock.advance(100)]);
        return undefined;
      }, 'both payments processed');
      expect(statuses).toEqual(new Map([[x.bookingId, 'failed'], [y.bookingId, 'confirmed']]));
      expect((await inject(b, { url: `/ledger?bookingId=${x.bookingId}`, headers: user })).json()).toEqual([]);
      const seats = (await inject(b, { url: '/performances/perf_003/seats', headers: user })).json() as { counts: object; seats: Array<{ seatId: string; status: string; bookingId: string | null }> };
      expect(seats.seats.filter((s) => s.status !== 'available').map((s) => [s.seatId, s.status, s.bookingId])).toEqual(y.seatIds.map((id) => [id, 'reserved', y.bookingId]));
      expect(seats.counts).toEqual({ total: seats.seats.length, available: seats.seats.length - 2, held: 0, reserved: 2 });
    });
  });

  describe('how long Redis takes to answer, told', { timeout: TEST_TIMEOUT_MS }, () => {
    it('redis_ping_seconds: the liveness PING\'s round trips, twice a second; a Redis paused for 800 ms shows as a round trip of 0.3 s or more; one silent for 3.5 s adds nothing (before 2026-12-05 no metric said Redis was slow)', async () => {
      const t = await buildTestApp({ STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix() }, { clockStart: START });
      open.push(t);
      /** The histogram's series: count, and how many round trips took longer than 0.2 s. */
      const roundTrips = async () => {
        const text = (await inject(t, { url: '/metrics' })).body;
        const figure = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
        const count = figure(/^redis_ping_seconds_count (\d+)$/m);
        return { count, slow: count - figure(/^redis_ping_seconds_bucket\{le="0\.2"\} (\d+)$/m) };
      };
      await eventually(async () => ((await roundTrips()).count >= 2 ? true : undefined), 'two PINGs answered');
      expect((await roundTrips()).slow).toBe(0);
      // Every client but this one waits 800 ms: a PING is sent within its first 500 ms, and answered 300 ms later at least.
      await redis.client.call('CLIENT', 'PAUSE', '800', 'ALL');
      await eventually(async () => ((await roundTrips()).slow >= 1 ? true : undefined), 'a slow round trip');
      const text = (await inject(t, { url: '/metrics' })).body;
      expect(text).toContain('# HELP redis_ping_seconds Round trip of this process’s liveness PING to Redis, every half second while it serves (once the previous one is answered): how long a store call waits for Redis now, behind this process’s own commands and event loop too.');
      expect(text).toMatch(/^redis_ping_seconds_bucket\{le="\+Inf"\} \d+$/m);
      // Not silent (that takes 2 s): ready all along.
      expect(readyGauge(text)).toBe(1);

      // Paused for 3.5 s: silent (503 at once meanwhile), then serving again. The PINGs that spanned
      // the silence are not waits of any call: none is observed (a user test saw 1-10 s after it).
      const before = await roundTrips();
      await redis.client.call('CLIENT', 'PAUSE', '3500', 'ALL');
      await eventually(async () => (readyGauge((await inject(t, { url: '/metrics' })).body) === 0 ? true : undefined), 'Redis found silent');
      await eventually(async () => (readyGauge((await inject(t, { url: '/metrics' })).body) === 1 ? true : undefined), 'Redis serving again');
      await eventually(async () => ((await roundTrips()).count >= before.count + 2 ? true : undefined), 'PINGs answered again');
      const after = (await inject(t, { url: '/metrics' })).body;
      expect(Number(/^redis_ping_seconds_bucket\{le="1"\} (\d+)$/m.exec(after)?.[1])).toBe(Number(/^redis_ping_seconds_count (\d+)$/m.exec(after)?.[1]));
    });
  });

  describe('a Redis that lost its data, told', { timeout: TEST_TIMEOUT_MS }, () => {
    it('each replica warns once per loss within DATA_LOSS_CHECK_MS and counts it in redis_data_losses_total; a replica started after says nothing (before 2026-12-03 nothing did)', async () => {
      const logsA: Array<Record<string, unknown>> = [];
      const logsB: Array<Record<string, unknown>> = [];
      const env = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix() };
      // Checks every CHECK_MS, not DATA_LOSS_CHECK_MS: the same checks, told sooner.
      const a = await buildTestApp(env, { clockStart: START, logs: logsA, redisChecksMs: CHECK_MS });
      open.push(a);
      const b = await buildTestApp(env, { clockStart: START, logs: logsB, redisChecksMs: CHECK_MS });
      open.push(b);
      const key = `${a.config.redis.keyPrefix}meta:epoch`;
      const losses = (logs: Array<Record<string, unknown>>) => logs.filter((l) => String(l.msg).startsWith("Redis lost paysim's data")).map((l) => [l.level, l.losses]);
      const counted = async (t: TestApp) => /^redis_data_losses_total (\d+)$/m.exec((await inject(t, { url: '/metrics' })).body)?.[1];
      expect([await counted(a), await counted(b)]).toEqual(['0', '0']);
      const made = await createIntent(a, { reservation_id: 'res_lost', amount: 1000 });
      await redis.client.flushdb();
      await eventually(async () => (losses(logsA).length === 1 && losses(logsB).length === 1 ? true : undefined), 'both replicas to tell the loss');
      expect([losses(logsA), losses(logsB)]).toEqual([[['warn', 1]], [['warn', 1]]]);
      // One of them stored the mark again; the other took it: the next checks say nothing more.
      expect(await redis.client.exists(key)).toBe(1);
      const message = logsA.find((l) => String(l.msg).startsWith("Redis lost paysim's data"))?.msg;
      expect(message).toMatch(
        new RegExp(
          `^Redis lost paysim's data \\(${key} was (missing|made anew by another process): FLUSHALL or FLUSHDB, a restart without persistence, or eviction\\): the intents, bookings, payments, due work and webhook deliveries made before are gone, and their reads answer 404; keep Redis' data with an AOF \\(appendonly yes\\) and maxmemory-policy noeviction \\(README: "Redis memory"\\)$`,
        ),
      );
      expect((await getIntent(b, made.json().payment_intent_id as string)).statusCode).toBe(404);
      // Two checks or more of each later: nothing more told.
      await sleep(2 * CHECK_MS + 500);
      expect([losses(logsA).length, losses(logsB).length, await counted(a), await counted(b)]).toEqual([1, 1, '1', '1']);
      // A replica started after the loss knows nothing of it.
      const logsC: Array<Record<string, unknown>> = [];
      const c = await buildTestApp(env, { clockStart: START, logs: logsC, redisChecksMs: CHECK_MS });
      open.push(c);
      // Lost again: told again.
      await redis.client.flushdb();
      await eventually(async () => (losses(logsA).length === 2 && losses(logsC).length === 1 ? true : undefined), 'the second loss told');
      expect(await counted(a)).toBe('2');
    });
  });

  describe('generated values that Redis lost', { timeout: TEST_TIMEOUT_MS }, () => {
    it('the running replicas store theirs again within GENERATED_CHECK_MS, with one warning, so a replica started after takes it; one that finds another value says so once', async () => {
      const logs: Array<Record<string, unknown>> = [];
      const env = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), WEBHOOK_SECRET: '' };
      // Checks every CHECK_MS, not GENERATED_CHECK_MS: the same checks, told sooner.
      const a = await buildTestApp(env, { clockStart: START, logs, redisChecksMs: CHECK_MS });
      open.push(a);
      const key = `${a.config.redis.keyPrefix}generated:webhook-secret`;
      const secret = a.config.webhookSecret;
      expect(await redis.client.get(key)).toBe(secret);
      await redis.client.flushdb();
      await eventually(async () => ((await redis.client.get(key)) === secret ? true : undefined), 'A to store its secret again');
      const b = await buildTestApp(env, { clockStart: START });
      open.push(b);
      // Before 2026-12-03, B drew a secret of its own, and webhooks were signed with two.
      expect(b.config.webhookSecret).toBe(secret);
      // The loss itself is told too (its own test below).
      const warned = () => logs.filter((l) => l.level === 'warn' && !String(l.msg).startsWith("Redis lost paysim's data")).map((l) => l.msg);
      expect(warned()).toEqual([
        `the generated webhook secret was missing from Redis (${key}: Redis lost its data?): this process stored its own again, which replicas started from now on take`,
        `the generated console session key was missing from Redis (${a.config.redis.keyPrefix}generated:console-session-key: Redis lost its data?): this process stored its own again, which replicas started from now on take`,
      ]);
      // Another value there (a replica started before A stored its own back): said once, however many checks.
      await redis.client.set(key, 'whsec_b3RoZXItcmVwbGljYS1zZWNyZXQ=');
      await sleep(2 * CHECK_MS + 500);
      expect(warned().slice(2)).toEqual([
        `the generated webhook secret on Redis (${key}) is not this process' (Redis lost it, and another process stored its own): replicas sign webhooks with different secrets until they restart; set WEBHOOK_SECRET`,
      ]);
    });
  });

  describe('a waiting room of the billing policy that Redis lost', { timeout: TEST_TIMEOUT_MS }, () => {
    it('is made again from the policy by the call that finds it missing, with one warning: orders of its service are guarded again, it is read and listed (before 2026-12-03 orders went through unguarded)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'paysim-policy-'));
      const policy = join(dir, 'policy.yaml');
      writeFileSync(policy, 'services:\n  chat:\n    creditsPerUse: 7\nwaitingRooms:\n  launch:\n    admitPerSecond: 0.001\n    admissionTtlSeconds: 120\n    protectedServiceIds: [chat]\n');
      try {
        const logs: Array<Record<string, unknown>> = [];
        const shared = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), FLUXPAY_POLICY_FILE: policy };
        const a = await buildTestApp(shared, { clockStart: START, logs });
        open.push(a);
        const b = await buildTestApp(shared, { clockStart: START });
        open.push(b);
        const order = (t: TestApp) => inject(t, { method: 'POST', url: '/api/v1/orders', payload: { userId: 'user_1', serviceId: 'chat', orderName: 'x', amount: 1000 } });
        expect([(await order(a)).json().code]).toEqual(['WAIT_001']);
        await redis.client.flushdb();
        // The order finds the room missing and makes it again before it is guarded.
        expect([(await order(a)).json().code]).toEqual(['WAIT_001']);
        expect(logs.filter((l) => l.level === 'warn' && !String(l.msg).startsWith("Redis lost paysim's data")).map((l) => [l.msg, l.room])).toEqual([
          ['waiting room launch, declared in the billing policy, was not in the store (Redis lost its data?): made again from the policy, with no one waiting', 'launch'],
        ]);
        const room = await inject(b, { url: '/api/v1/waiting-rooms/launch' });
        expect([room.statusCode, room.json().result]).toEqual([200, expect.objectContaining({ roomId: 'launch', admitPerSecond: 0.001, protectedServiceIds: ['chat'], size: 0 })]);
        // Lost again: a read on B makes it again; so does a scrape of /metrics, which lists the rooms.
        await redis.client.flushdb();
        await sleep(1_000);
        expect((await inject(b, { url: '/api/v1/waiting-rooms/launch' })).statusCode).toBe(200);
        await redis.client.flushdb();
        await sleep(1_000);
        expect((await inject(a, { url: '/metrics' })).body).toContain('fluxpay_waiting_room_queue_length{room="launch"} 0');
        expect(await b.app.core.stores.waitingRooms.getRoom('launch', START)).toBeDefined();
        // And an entry (a room made anew admits its first entrant at once).
        await redis.client.flushdb();
        await sleep(1_000);
        const entered = await inject(b, { method: 'POST', url: '/api/v1/waiting-rooms/launch/enter', payload: { userId: 'user_2' } });
        expect([entered.statusCode, entered.json().result]).toEqual([200, expect.objectContaining({ roomId: 'launch', userId: 'user_2', status: 'ADMITTED', position: 0 })]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('a waiting room of the billing policy changed by a PUT', { timeout: TEST_TIMEOUT_MS }, () => {
    it('a replica started later keeps what the PUT changed and who waits; a changed declaration in the policy applies at the next start (before 2026-12-03 every start PUT the policy\'s settings again)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'paysim-policy-'));
      const policy = join(dir, 'policy.yaml');
      const declared = (admitPerSecond: number) => `services:\n  chat:\n    creditsPerUse: 7\nwaitingRooms:\n  launch:\n    admitPerSecond: ${admitPerSecond}\n    admissionTtlSeconds: 120\n    protectedServiceIds: [chat]\n`;
      writeFileSync(policy, declared(0.001));
      try {
        const shared = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), FLUXPAY_POLICY_FILE: policy };
        const a = await buildTestApp(shared, { clockStart: START });
        open.push(a);
        for (const userId of ['user_1', 'user_2', 'user_3']) expect((await inject(a, { method: 'POST', url: '/api/v1/waiting-rooms/launch/enter', payload: { userId } })).statusCode).toBe(200);
        const put = await inject(a, { method: 'PUT', url: '/api/v1/waiting-rooms/launch', payload: { admitPerSecond: 0, admissionTtlSeconds: 60, protectedServiceIds: ['chat'], active: false } });
        expect(put.statusCode).toBe(200);
        const room = async (t: TestApp) => {
          const { admitPerSecond, admissionTtlSeconds, active, size, entered } = (await inject(t, { url: '/api/v1/waiting-rooms/launch' })).json().result;
          return { admitPerSecond, admissionTtlSeconds, active, size, entered };
        };
        const afterPut = { admitPerSecond: 0, admissionTtlSeconds: 60, active: false, size: 2, entered: 3 };
        expect(await room(a)).toEqual(afterPut);
        // A second replica (a scale-up, a restart) with the same policy: the room stays as the PUT left it.
        const b = await buildTestApp(shared, { clockStart: START });
        open.push(b);
        expect(await room(b)).toEqual(afterPut);
        // The policy's declaration of the room changed (a rolling update): it applies, the queue kept.
        writeFileSync(policy, declared(0.002));
        const c = await buildTestApp(shared, { clockStart: START });
        open.push(c);
        expect(await room(c)).toEqual({ admitPerSecond: 0.002, admissionTtlSeconds: 120, active: true, size: 2, entered: 3 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('fault rules on two replicas', { timeout: TEST_TIMEOUT_MS }, () => {
    /**
     * REDIS_URL as a user whose ACL has no channels (Redis 7's default for a new user): the change
     * notices are refused, and the replicas learn of each other's changes by their refresh alone, at
     * the times of their manual clocks (which these tests are about).
     */
    let noNotices: string | undefined;
    async function noticesRefused(): Promise<string> {
      if (noNotices === undefined) {
        await redis.client.acl('SETUSER', 'rules-nochannels', 'on', '>rules-nochannels-pass', '~*', 'resetchannels', '+@all');
        noNotices = redis.url.replace('redis://', 'redis://rules-nochannels:rules-nochannels-pass@');
      }
      return noNotices;
    }

    it('a rule created on A applies on B at once, B having compiled its rules before and its clock not moved (A tells B: a notice on Redis pub/sub); disabled and deleted on B, it stops on A at once (before 2026-12-07, only after SHARED_RULES_REFRESH_MS)', async () => {
      const [a, b] = await replicas();
      const body = { reservation_id: 'res_rule_told', amount: 1000 };
      for (const t of [a, b]) expect((await createIntent(t, body)).statusCode).toBe(200);
      const created = await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: { match: { dialect: 'native', method: 'POST', route: '/v1/sim/intent' }, action: { type: 'error', status: 503 } } });
      expect(created.statusCode).toBe(201);
      const ruleId = created.json().id as string;
      const refused = async (t: TestApp): Promise<unknown[]> => {
        const res = await createIntent(t, body);
        return [res.statusCode, res.headers['x-sim-rule']];
      };
      // The notice reaches B over a connection of its own: in real time, with neither clock moved.
      await eventually(async () => ((await refused(b))[0] === 503 ? true : undefined), 'B to apply the rule A made');
      expect(await refused(b)).toEqual([503, ruleId]);
      // Switched off and on on B as the console does.
      const faultsOf = (t: TestApp) => t.app.faults as NonNullable<typeof t.app.faults>;
      expect(await faultsOf(b).service.setEnabled('default', ruleId, false)).toMatchObject({ rule: { id: ruleId, enabled: false } });
      await eventually(async () => ((await refused(a))[0] === 200 ? true : undefined), 'A to stop applying the rule B disabled');
      expect(await faultsOf(b).service.setEnabled('default', ruleId, true)).toMatchObject({ rule: { id: ruleId, enabled: true } });
      await eventually(async () => ((await refused(a))[0] === 503 ? true : undefined), 'A to apply the rule B enabled again');
      expect((await inject(b, { method: 'DELETE', url: `/v1/sim/rules/${ruleId}` })).statusCode).toBe(200);
      await eventually(async () => ((await refused(a))[0] === 200 ? true : undefined), 'A to stop applying the rule B deleted');
      expect(await refused(a)).toEqual([200, undefined]);
    });

    it('one subscribed connection per process carries the namespace resets and every namespace’s fault-rule notices; a namespace reset and the app’s close leave none behind', async () => {
      const prefix = redis.newPrefix();
      const a = await buildTestApp({ STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix }, { clockStart: START });
      open.push(a);
      const ns = { 'x-sim-namespace': 'ci-one-connection' };
      expect((await createIntent(a, { reservation_id: 'res_one_connection', amount: 100 }, ns)).statusCode).toBe(200);
      const channels = [`${prefix}namespaces:reset`, `${prefix}faults:changed`, `${prefix}ns:ci-one-connection:faults:changed`];
      const numsub = async (): Promise<unknown[]> => (await redis.client.pubsub('NUMSUB', ...channels)) as unknown[];
      /** This server's subscribed connections, by how many channels each holds (`CLIENT LIST`'s sub=). */
      const subscribed = async (): Promise<number[]> => [...((await redis.client.client('LIST')) as string).matchAll(/\bsub=(\d+)/g)].map((m) => Number(m[1])).filter((n) => n > 0);
      await eventually(async () => ((await numsub()).every((v, i) => i % 2 === 0 || v === 1) ? true : undefined), 'the three channels subscribed');
      expect(await subscribed()).toEqual([3]);
      expect((await inject(a, { method: 'DELETE', url: '/v1/sim/namespaces/ci-one-connection' })).statusCode).toBe(200);
      await eventually(async () => (JSON.stringify(await subscribed()) === '[2]' ? true : undefined), 'the reset namespace’s channel unsubscribed');
      await a.app.close();
      open.splice(open.indexOf(a), 1);
      await eventually(async () => ((await subscribed()).length === 0 ? true : undefined), 'the subscribed connection closed with the app');
    });

    it('a rule created on A applies on B within SHARED_RULES_REFRESH_MS of B\'s clock when the notices are refused (an ACL without channels; B had its rules compiled before); deleted on B, it stops on A as soon', async () => {
      const [a, b] = await replicas({ REDIS_URL: await noticesRefused() });
      const body = { reservation_id: 'res_rule', amount: 1000 };
      // Both have compiled their (empty) rule sets.
      for (const t of [a, b]) expect((await createIntent(t, body)).statusCode).toBe(200);
      const created = await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: { match: { dialect: 'native', method: 'POST', route: '/v1/sim/intent' }, action: { type: 'error', status: 503 } } });
      expect(created.statusCode).toBe(201);
      const ruleId = created.json().id as string;
      const refused = (res: LightMyRequestResponse) => [res.statusCode, res.headers['x-sim-rule']];
      expect(refused(await createIntent(a, body))).toEqual([503, ruleId]);
      // B uses what it compiled until its refresh time has passed; then its first request reads the shared revision.
      expect(refused(await createIntent(b, body))).toEqual([200, undefined]);
      await b.clock.advance(SHARED_RULES_REFRESH_MS);
      expect(refused(await createIntent(b, body))).toEqual([503, ruleId]);
      // The hits are shared.
      expect((await inject(b, { method: 'GET', url: `/v1/sim/rules/${ruleId}` })).json()).toMatchObject({ id: ruleId, hits: 2 });

      expect((await inject(b, { method: 'DELETE', url: `/v1/sim/rules/${ruleId}` })).statusCode).toBe(200);
      expect(refused(await createIntent(b, body))).toEqual([200, undefined]);
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      expect(refused(await createIntent(a, body))).toEqual([200, undefined]);
    });

    it('with the notices refused (an ACL without channels) each replica says so once, in Redis\' words: one line for the namespace resets, one for each namespace\'s fault rules, not again at a reconnect; the app serves as before; once allowed, each says so at info', async () => {
      const logs: Array<Record<string, unknown>> = [];
      const prefix = redis.newPrefix();
      const a = await buildTestApp({ STORE: 'redis', REDIS_URL: await noticesRefused(), REDIS_KEY_PREFIX: prefix }, { clockStart: START, logs });
      open.push(a);
      const refusedLines = () => logs.filter((line) => String(line.msg).startsWith('Redis refused this replica'));
      const ns = { 'x-sim-namespace': 'ci-refused' };
      expect((await createIntent(a, { reservation_id: 'res_refused', amount: 100 }, ns)).statusCode).toBe(200);
      await eventually(async () => (refusedLines().length === 3 ? true : undefined), 'three lines');
      const shown = refusedLines().map((line) => [line.level, line.sim_namespace, line.channel, String(line.redis_error).split(' ')[0], String(line.msg).split(':')[0]]);
      expect(shown.sort((x, y) => String(x[2]).localeCompare(String(y[2])))).toEqual([
        ['warn', 'default', `${prefix}faults:changed`, 'NOPERM', "Redis refused this replica's subscription to fault-rule change notices"],
        ['warn', undefined, `${prefix}namespaces:reset`, 'NOPERM', "Redis refused this replica's subscription to namespace reset notices"],
        ['warn', 'ci-refused', `${prefix}ns:ci-refused:faults:changed`, 'NOPERM', "Redis refused this replica's subscription to fault-rule change notices"],
      ]);
      // Its subscribed connection made again (each channel refused again, as Redis counts): nothing more said.
      const channels = [`${prefix}faults:changed`, `${prefix}namespaces:reset`, `${prefix}ns:ci-refused:faults:changed`];
      const refusals = async (): Promise<number[]> => Promise.all(channels.map((channel) => refusedInAclLog(redis.client, channel)));
      const before = await refusals();
      await redis.client.call('CLIENT', 'KILL', 'USER', 'rules-nochannels');
      await eventually(async () => ((await refusals()).every((n, i) => n > (before[i] as number)) ? true : undefined), 'the subscriptions refused again');
      expect((await createIntent(a, { reservation_id: 'res_refused_after', amount: 100 }, ns)).statusCode).toBe(200);
      expect(refusedLines()).toHaveLength(3);
      // Allowed (and the connection made again, rather than waiting for the next try): each says so, at info.
      await redis.client.acl('SETUSER', 'rules-nochannels', `&${prefix}*`);
      try {
        await redis.client.call('CLIENT', 'KILL', 'USER', 'rules-nochannels');
        const allowedLines = () => logs.filter((line) => String(line.msg).startsWith('Redis lets this replica subscribe'));
        await eventually(async () => (allowedLines().length === 3 ? true : undefined), 'three lines saying the notices are on');
        expect(allowedLines().map((line) => [line.level, line.channel]).sort((x, y) => String(x[1]).localeCompare(String(y[1])))).toEqual(channels.map((channel) => ['info', channel]));
      } finally {
        await redis.client.acl('SETUSER', 'rules-nochannels', 'resetchannels');
      }
    });

    it('a replica whose Redis user loses @pubsub while running (Redis keeps its subscriptions, refuses its PUBLISH) says so at its next rule change, once, and at info once a notice is taken again (rev77b: nothing said until the next reconnect)', async () => {
      const logs: Array<Record<string, unknown>> = [];
      const prefix = redis.newPrefix();
      const user = `rules-losespubsub-${prefix.replace(/\W/g, '')}`;
      await redis.client.acl('SETUSER', user, 'on', `>${user}-pass`, '~*', `&${prefix}*`, '+@all');
      const a = await buildTestApp({ STORE: 'redis', REDIS_URL: redis.url.replace('redis://', `redis://${user}:${user}-pass@`), REDIS_KEY_PREFIX: prefix }, { clockStart: START, logs });
      open.push(a);
      expect((await createIntent(a, { reservation_id: 'res_pubsub', amount: 100 })).statusCode).toBe(200);
      await eventually(async () => ((await redis.client.pubsub('NUMSUB', `${prefix}faults:changed`))[1] === 1 ? true : undefined), 'the rules channel subscribed');
      await redis.client.acl('SETUSER', user, '-@pubsub');
      const told = (start: string) => logs.filter((line) => String(line.msg).startsWith(start)).map((line) => [line.level, line.sim_namespace, line.channel, String(line.redis_error).split(' ')[0], line.msg]);
      const rule = { match: { headers: { 'x-test-case': 'pubsub' } }, action: { type: 'error', status: 503 } };
      for (let i = 0; i < 2; i++) expect((await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: rule })).statusCode).toBe(201);
      expect(told('Redis refused')).toEqual([
        [
          'warn',
          'default',
          `${prefix}faults:changed`,
          'NOPERM',
          "Redis refused this replica's fault-rule change notices (PUBLISH): a rule changed here applies on the other replicas within 1 s (at their next refresh), not by the next request; give the Redis user @pubsub and the channels under REDIS_KEY_PREFIX (ACL +@pubsub &<REDIS_KEY_PREFIX>*); the next change sends one again",
        ],
      ]);
      await redis.client.acl('SETUSER', user, '+@pubsub');
      expect((await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: rule })).statusCode).toBe(201);
      expect(told('Redis takes')).toEqual([['info', 'default', `${prefix}faults:changed`, 'undefined', "Redis takes this replica's fault-rule change notices now: rule changes here apply on the other replicas by the next request again"]]);
      expect(told('Redis refused')).toHaveLength(1);
    });

    it('a rule deleted on B (one, or all of them) leaves A\'s /metrics as soon as A reads the shared revision again, at its next scrape a refresh later with no request in between (notices refused)', async () => {
      const [a, b] = await replicas({ REDIS_URL: await noticesRefused() });
      const series = async (t: TestApp): Promise<string[]> => (await inject(t, { url: '/metrics' })).body.split('\n').filter((line) => line.startsWith('fault_rule_hits_total{'));
      const hitOnBoth = async (): Promise<string> => {
        const created = await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: { match: { headers: { 'x-test-case': 'f2' } }, action: { type: 'error', status: 503 } } });
        expect(created.statusCode).toBe(201);
        const id = created.json().id as string;
        for (const t of [a, b]) {
          await t.clock.advance(SHARED_RULES_REFRESH_MS);
          const res = await inject(t, { url: '/v1/sim/intents', headers: { 'x-test-case': 'f2' } });
          expect([res.statusCode, res.headers['retry-after'], res.headers['x-sim-rule'], res.json()]).toEqual([503, '1', id, { error: { code: 'SERVICE_UNAVAILABLE', message: 'The payment gateway is unavailable; retry after Retry-After seconds.', trace_id: expect.any(String) } }]);
        }
        for (const t of [a, b]) expect(await series(t)).toEqual([`fault_rule_hits_total{rule_id="${id}",action="error",sim_namespace="default"} 1`]);
        return id;
      };
      // One rule, deleted on B: gone from B's /metrics at once, from A's once its rules are due for a refresh.
      const one = await hitOnBoth();
      const deleted = await inject(b, { method: 'DELETE', url: `/v1/sim/rules/${one}` });
      expect([deleted.statusCode, deleted.json().id]).toEqual([200, one]);
      expect(await series(b)).toEqual([]);
      expect(await series(a)).toEqual([`fault_rule_hits_total{rule_id="${one}",action="error",sim_namespace="default"} 1`]);
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      expect(await series(a)).toEqual([]);
      expect((await inject(a, { url: `/v1/sim/rules/${one}` })).statusCode).toBe(404);
      // Every rule, deleted on B.
      const all = await hitOnBoth();
      expect((await inject(b, { method: 'DELETE', url: '/v1/sim/rules' })).json()).toEqual({ deleted: 1 });
      expect(await series(b)).toEqual([]);
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      expect(await series(a)).toEqual([]);
      expect((await inject(a, { url: `/v1/sim/rules/${all}` })).statusCode).toBe(404);
    });

    /** Two replicas on one prefix, A's fault latency held by the test until `release`; the rules `decides` (outcome) and `holds` (latency) on the intent route. */
    async function heldReplicas() {
      // Notices refused: A reads the rules again when its clock says so.
      const shared = { STORE: 'redis', REDIS_URL: await noticesRefused(), REDIS_KEY_PREFIX: redis.newPrefix() };
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let holding!: () => void;
      const entered = new Promise<void>((resolve) => (holding = resolve));
      const a = await buildTestApp(shared, { clockStart: START, faultWait: () => (holding(), held) });
      open.push(a);
      const b = await buildTestApp(shared, { clockStart: START });
      open.push(b);
      const decides = { id: 'decides', match: { route: '/v1/sim/intent' }, action: { type: 'outcome', failure_code: 'card_declined' } };
      const holds = { id: 'holds', match: { route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'fixed', params: { ms: 1000 } } };
      const seriesOf = async (id: string): Promise<string[]> => (await inject(a, { url: '/metrics' })).body.split('\n').filter((line) => line.startsWith('fault_rule_hits_total{') && line.includes(`"${id}"`));
      /** Both rules made on A, and an intent A decides with `decides` held by `holds`: its answer to come. */
      const heldIntent = async (reservationId: string): Promise<{ pending: Promise<LightMyRequestResponse> }> => {
        for (const payload of [decides, holds]) expect((await inject(a, { method: 'POST', url: '/v1/sim/rules', payload })).statusCode).toBe(201);
        const pending = inject(a, { method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: reservationId, amount: 100 } });
        await entered;
        return { pending };
      };
      return { a, b, decides, holds, entered, release, seriesOf, heldIntent };
    }

    it('an outcome rule deleted on B while A holds a request it decided (a latency rule beside it) gets no series on A when that request stores its payment after A read the rules again (a review: it came back and stayed)', async () => {
      const { a, b, release, seriesOf, heldIntent } = await heldReplicas();
      const { pending } = await heldIntent('rsv_held');
      expect((await inject(b, { method: 'DELETE', url: '/v1/sim/rules/decides' })).statusCode).toBe(200);
      // A reads the shared rules again (a request a refresh later) before the held request goes on.
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      expect((await inject(a, { url: '/v1/sim/intents' })).statusCode).toBe(200);
      release();
      expect((await pending).statusCode).toBe(200);
      expect(await seriesOf('decides')).toEqual([]);
    });

    /**
     * A request to A that reads the rules (a refresh due) with that read held in the store's list
     * while A makes a rule of its own, so A does not keep the read; `pending`: the request's answer to come.
     */
    async function unkeptRead(a: TestApp, reservationId: string): Promise<{ pending: Promise<LightMyRequestResponse> }> {
      const store = a.app.stores.faultRules as unknown as { list: (namespace: string) => Promise<unknown[]> };
      const list = store.list.bind(store);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let listing!: () => void;
      const listed = new Promise<void>((resolve) => (listing = resolve));
      let first = true;
      store.list = async (namespace) => {
        const rules = await list(namespace);
        if (first) {
          first = false;
          listing();
          await gate;
        }
        return rules;
      };
      const pending = inject(a, { method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: reservationId, amount: 100 } });
      await listed;
      const other = { id: 'other', match: { route: '/v1/sim/intents' }, probability: 0, action: { type: 'error', status: 500 } };
      expect((await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: other })).statusCode).toBe(201);
      release();
      return { pending };
    }

    it('an outcome rule A first matched through a read it did not keep (A changed a rule meanwhile), deleted on B before A reads again, gets no series on A (a review, 2026-12-07: it came back and stayed)', async () => {
      const { a, b, decides, holds, entered, release, seriesOf } = await heldReplicas();
      expect((await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: holds })).statusCode).toBe(201);
      expect((await inject(a, { url: '/v1/sim/intents' })).statusCode).toBe(200);
      expect((await inject(b, { method: 'POST', url: '/v1/sim/rules', payload: decides })).statusCode).toBe(201);
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      // A's next read of the rules is held in its list while A makes a rule of its own: A does not keep that read.
      const { pending } = await unkeptRead(a, 'rsv_unkept');
      await entered;
      expect((await inject(b, { method: 'DELETE', url: '/v1/sim/rules/decides' })).statusCode).toBe(200);
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      expect((await inject(a, { url: '/v1/sim/intents' })).statusCode).toBe(200);
      release();
      const answered = await pending;
      expect([answered.statusCode, answered.headers['x-sim-rule']]).toEqual([200, 'holds, decides']);
      expect(await seriesOf('decides')).toEqual([]);
    });

    it('an outcome rule deleted on B and made again there with the same id while A holds a request the old one decided: the old hit does not count for the new rule (a review, 2026-12-07: it did)', async () => {
      const { a, b, decides, release, seriesOf, heldIntent } = await heldReplicas();
      const { pending } = await heldIntent('rsv_remade');
      expect((await inject(b, { method: 'DELETE', url: '/v1/sim/rules/decides' })).statusCode).toBe(200);
      // Made again a moment later (a rule is told from one made before with the same id by when it was made).
      await b.clock.advance(5);
      expect((await inject(b, { method: 'POST', url: '/v1/sim/rules', payload: { ...decides, match: { route: '/v1/sim/intent', headers: { 'x-other': '1' } } } })).statusCode).toBe(201);
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      expect((await inject(a, { url: '/v1/sim/intents' })).statusCode).toBe(200);
      release();
      expect((await pending).statusCode).toBe(200);
      expect((await inject(a, { url: '/v1/sim/rules/decides' })).json()).toMatchObject({ id: 'decides', hits: 0 });
      expect(await seriesOf('decides')).toEqual([]);
      // The new rule's own hits count, from 1.
      const hit = await inject(a, { method: 'POST', url: '/v1/sim/intent', headers: { 'x-other': '1' }, payload: { reservation_id: 'rsv_new_rule', amount: 100 } });
      expect(hit.statusCode).toBe(200);
      expect(await seriesOf('decides')).toEqual(['fault_rule_hits_total{rule_id="decides",action="outcome",sim_namespace="default"} 1']);
    });

    it('a rule made again on B with the same id and first matched on A through a read A did not keep: its hit stays counted at A\'s next read (a review of the first mend, 2026-12-07: it was dropped)', async () => {
      const { a, b, decides, seriesOf } = await heldReplicas();
      expect((await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: decides })).statusCode).toBe(201);
      expect((await inject(a, { url: '/v1/sim/intents' })).statusCode).toBe(200);
      expect((await inject(b, { method: 'DELETE', url: '/v1/sim/rules/decides' })).statusCode).toBe(200);
      await b.clock.advance(5);
      expect((await inject(b, { method: 'POST', url: '/v1/sim/rules', payload: decides })).statusCode).toBe(201);
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      const answered = await (await unkeptRead(a, 'rsv_new_via_unkept')).pending;
      expect([answered.statusCode, answered.headers['x-sim-rule']]).toEqual([200, 'decides']);
      expect((await inject(a, { url: '/v1/sim/intents' })).statusCode).toBe(200);
      expect((await inject(a, { url: '/v1/sim/rules/decides' })).json()).toMatchObject({ id: 'decides', hits: 1 });
      expect(await seriesOf('decides')).toEqual(['fault_rule_hits_total{rule_id="decides",action="outcome",sim_namespace="default"} 1']);
    });

    it('a namespace reset on B takes the series of its rules out of A\'s /metrics once A has closed its app of it', async () => {
      const [a, b] = await replicas();
      const ns = { 'x-sim-namespace': 'ci-f2' };
      const made = await inject(b, { method: 'POST', url: '/v1/sim/rules', headers: ns, payload: { match: { headers: { 'x-test-case': 'f2' } }, action: { type: 'error', status: 503 } } });
      expect(made.statusCode).toBe(201);
      const id = made.json().id as string;
      const res = await inject(a, { url: '/v1/sim/intents', headers: { ...ns, 'x-test-case': 'f2' } });
      expect([res.statusCode, res.headers['retry-after'], res.headers['x-sim-rule']]).toEqual([503, '1', id]);
      const series = async (): Promise<string[]> => (await inject(a, { url: '/metrics' })).body.split('\n').filter((line) => line.startsWith('fault_rule_hits_total{'));
      expect(await series()).toEqual([`fault_rule_hits_total{rule_id="${id}",action="error",sim_namespace="ci-f2"} 1`]);
      expect((await inject(b, { method: 'DELETE', url: '/v1/sim/namespaces/ci-f2' })).json()).toEqual({ namespace: 'ci-f2', existed: true });
      // A's sync closes its app of the namespace (the reset waits 1.5 s for it before it answers; a loaded machine may be later).
      await eventually(async () => ((await series()).length === 0 ? true : undefined), 'the series to leave A\'s /metrics');
      expect(await series()).toEqual([]);
    });

    it('FAULTS_FILE: the second replica starts, the file\'s rules are made once, and a restart with the same file keeps them as the API left them; a changed file replaces them (before 2026-12-03 the second start ended on "rule slow-intents exists already")', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'paysim-faults-'));
      const file = join(dir, 'faults.yaml');
      const rules = (status: number) =>
        ['rules:', '  - id: slow-intents', '    match: { dialect: native, method: GET }', '    action: { type: latency, distribution: fixed, params: { ms: 1 } }', '  - match: { dialect: native, method: POST, route: /v1/sim/intent }', `    action: { type: error, status: ${status} }`, ''].join('\n');
      writeFileSync(file, rules(503));
      try {
        const logs: Array<Record<string, unknown>> = [];
        const shared = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), FAULTS_FILE: file };
        const a = await buildTestApp(shared, { clockStart: START });
        open.push(a);
        let b = await buildTestApp(shared, { clockStart: START, logs });
        open.push(b);
        const listed = async (t: TestApp, headers: Record<string, string> = {}) =>
          ((await inject(t, { url: '/v1/sim/rules', headers })).json().data as Array<{ id: string; enabled: boolean; action: { status?: number } }>).map((r) => [r.id === 'slow-intents' ? r.id : 'generated', r.enabled, r.action.status ?? null]);
        expect(await listed(b)).toEqual([
          ['slow-intents', true, null],
          ['generated', true, 503],
        ]);
        expect(logs.filter((l) => typeof l.faults_file === 'string').map((l) => [l.level, l.msg, l.rules])).toEqual([
          ['info', 'fault rules of FAULTS_FILE already made from this file (by another replica, or before a restart): kept as they are, with their counters and as the API left them', 2],
        ]);
        // Through A: one disabled, the other deleted; B restarts with the same file and does not make them again.
        const generated = ((await inject(a, { url: '/v1/sim/rules' })).json().data as Array<{ id: string }>)[1]!.id;
        expect(await a.app.faults?.service.setEnabled('default', 'slow-intents', false)).toMatchObject({ rule: { enabled: false } });
        expect((await inject(a, { method: 'DELETE', url: `/v1/sim/rules/${generated}` })).statusCode).toBe(200);
        await b.app.close();
        b = await buildTestApp(shared, { clockStart: START });
        open.push(b);
        expect(await listed(b)).toEqual([['slow-intents', false, null]]);
        expect((await createIntent(b, { reservation_id: 'res_ff', amount: 1000 })).statusCode).toBe(200);
        // A namespace: made on A, then started on B (from the shared list, or by its request); the file's rules once there too.
        const ns = { 'x-sim-namespace': 'ci-faults-file' };
        expect(await listed(a, ns)).toEqual([
          ['slow-intents', true, null],
          ['generated', true, 503],
        ]);
        expect(await listed(b, ns)).toEqual([
          ['slow-intents', true, null],
          ['generated', true, 503],
        ]);
        // A new content of the file (a rolling update): its rules replace those the earlier one made.
        writeFileSync(file, rules(502));
        await b.app.close();
        b = await buildTestApp(shared, { clockStart: START, logs });
        open.push(b);
        expect(await listed(b)).toEqual([
          ['slow-intents', true, null],
          ['generated', true, 502],
        ]);
        expect(logs.filter((l) => typeof l.faults_file === 'string').at(-1)).toMatchObject({ level: 'info', msg: 'fault rules loaded from FAULTS_FILE, replacing 1 made from an earlier content of the file or with an id it gives', rules: 2, replaced: 1 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('FAULTS_FILE changed while the rules made through the API fill FAULTS_MAX_RULES: the start ends on one line, the rules as they were', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'paysim-faults-'));
      const file = join(dir, 'faults.yaml');
      const rule = (status: number) => [`  - match: { dialect: native, method: POST }`, `    action: { type: error, status: ${status} }`];
      writeFileSync(file, ['rules:', ...rule(503), ''].join('\n'));
      try {
        const shared = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), FAULTS_FILE: file, FAULTS_MAX_RULES: '2' };
        const a = await buildTestApp(shared, { clockStart: START });
        open.push(a);
        expect((await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: { match: { dialect: 'fluxpay' }, action: { type: 'error', status: 500 } } })).statusCode).toBe(201);
        writeFileSync(file, ['rules:', ...rule(502), ...rule(504), ''].join('\n'));
        await expect(buildTestApp(shared, { clockStart: START })).rejects.toThrow(
          'FAULTS_FILE: its 2 rules do not fit: at most 2 rules may exist at once (FAULTS_MAX_RULES); delete some with DELETE /v1/sim/rules, or raise FAULTS_MAX_RULES',
        );
        const statuses = ((await inject(a, { url: '/v1/sim/rules' })).json().data as Array<{ action: { status: number } }>).map((r) => r.action.status);
        expect(statuses).toEqual([503, 500]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a namespace reset on B and a rule made in it again on B at once: A, which had compiled the namespace\'s old rules, applies the new one', async () => {
      const [a, b] = await replicas();
      const ns = { 'x-sim-namespace': 'ci-rules' };
      const body = { reservation_id: 'res_ns_rule', amount: 1000 };
      const rule = (status: number) => ({ match: { dialect: 'native', method: 'POST', route: '/v1/sim/intent' }, action: { type: 'error', status } });
      const old = await inject(b, { method: 'POST', url: '/v1/sim/rules', headers: ns, payload: rule(500) });
      expect(old.statusCode).toBe(201);
      // A compiles the namespace's rules: the old one applies there.
      expect((await createIntent(a, body, ns)).statusCode).toBe(500);
      // Within one sync interval: B resets the namespace and makes it again with another rule.
      expect((await inject(b, { method: 'DELETE', url: '/v1/sim/namespaces/ci-rules' })).statusCode).toBe(200);
      const fresh = await inject(b, { method: 'POST', url: '/v1/sim/rules', headers: ns, payload: rule(502) });
      expect(fresh.statusCode).toBe(201);
      const answer = await eventually(async () => {
        await a.clock.advance(SHARED_RULES_REFRESH_MS);
        const res = await createIntent(a, body, ns);
        return res.statusCode === 502 ? res : undefined;
      }, 'A to apply the rule of the namespace made again');
      expect(answer.headers['x-sim-rule']).toBe(fresh.json().id);
    });
  });

  describe('a Redis kept across an upgrade', { timeout: TEST_TIMEOUT_MS }, () => {
    it("a start unlinks the earlier versions' index of PENDING intents, and PENDING intents are listed without it", async () => {
      const prefix = redis.newPrefix();
      // As an earlier version left it: its index of PENDING intents, holding an id this Redis no longer has.
      await redis.client.zadd(`${prefix}int:st:PENDING`, 0, 'pay_from_before');
      const t = await buildTestApp({ STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix }, { clockStart: START });
      open.push(t);
      expect(await redis.client.exists(`${prefix}int:st:PENDING`)).toBe(0);
      const created = await createIntent(t, { reservation_id: 'res_upgrade', amount: 1000, scenario: 'delay', delay_ms: 60_000 });
      expect(created.statusCode).toBe(200);
      const listed = await inject(t, { method: 'GET', url: '/v1/sim/intents?status=PENDING' });
      const intent = (await getIntent(t, created.json().payment_intent_id as string)).json();
      expect(intent).toMatchObject({ reservation_id: 'res_upgrade', status: 'PENDING' });
      // A list shows each intent as the single read does, without its webhook's delivery summary.
      const { webhook, ...inList } = intent;
      expect(webhook).toBeNull();
      expect([listed.statusCode, listed.json()]).toEqual([200, { data: [inList], next_cursor: null }]);
      expect(await redis.client.exists(`${prefix}int:st:PENDING`)).toBe(0);
    });
  });

  describe('namespaces on the shared client', { timeout: TEST_TIMEOUT_MS }, () => {
    it('add no listeners of their own to it however many start, leave none behind when their start fails, and a namespace reset is not laid out again at a reconnect or the end of a load', async () => {
      const warnings: string[] = [];
      const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
      process.on('warning', onWarning);
      try {
        const prefix = redis.newPrefix();
        const t = await buildTestApp({ STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix }, { clockStart: START });
        open.push(t);
        const client = t.app.redis as NonNullable<typeof t.app.redis>;
        const counts = () => [client.listenerCount('ready'), client.listenerCount(LOADED), client.listenerCount(LOADING_SEEN)];
        const inNamespace = (namespace: string, reservation: string) =>
          inject(t, { method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: reservation, amount: 100 }, headers: { 'x-sim-namespace': namespace } });
        expect((await inNamespace('ns0', 'r0')).statusCode).toBe(200);
        const withOne = counts();
        for (let i = 1; i < 12; i++) expect((await inNamespace(`ns${i}`, `r${i}`)).statusCode).toBe(200);
        expect(counts()).toEqual(withOne);
        // A namespace whose start fails after its stores were made: its webhook stream's key holds a
        // string. It leaves no listener, and no connection (its stream reader's), behind.
        const connections = async () => String(await redis.client.call('CLIENT', 'LIST')).trim().split('\n').length;
        const before = await connections();
        await redis.client.set(`${prefix}ns:broken:whq`, 'x');
        for (let i = 0; i < 3; i++) expect((await inNamespace('broken', `b${i}`)).statusCode).toBe(500);
        expect(counts()).toEqual(withOne);
        // (A closed connection leaves Redis' list once Redis has seen it close.)
        await eventually(async () => ((await connections()) === before ? true : undefined), 'the failed starts\' connections gone');
        await t.app.namespaces.reset('broken');
        expect(await redis.client.keys(`${prefix}ns:broken:*`)).toEqual([]);
        client.emit('ready');
        client.emit(LOADED);
        await sleep(300);
        expect(await redis.client.keys(`${prefix}ns:broken:*`)).toEqual([]);
        expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
      } finally {
        process.off('warning', onWarning);
      }
    });
  });

  describe('Redis loading its data set after a restart', { timeout: TEST_TIMEOUT_MS }, () => {
    it('while it loads, /readyz says how far it is and calls answer 503 STORE_UNAVAILABLE at once, not after the load; then full service with what it had, the seat maps laid out again; a start meanwhile waits for the load, past Fastify\'s 10 s for a plugin, saying so', async () => {
      // A Redis of its own, slow to load: 60,000 keys at 200 µs each take 12 s or more.
      const slow = await startRedis({ appendOnly: true, keyLoadDelayMicros: 200 });
      try {
        const env = { STORE: 'redis', REDIS_URL: slow.url, REDIS_KEY_PREFIX: 'load:' };
        const a = await buildTestApp(env, { clockStart: START });
        open.push(a);
        const before = (await createIntent(a, { reservation_id: 'res_load', amount: 700, scenario: 'delay', delay_ms: 60_000 })).json().payment_intent_id as string;
        const beforeBody = (await getIntent(a, before)).json();
        const filler = slow.client.pipeline();
        for (let i = 0; i < 60_000; i++) filler.set(`filler:${i}`, 'x');
        await filler.exec();
        // Maps lost (as by a Redis that kept no data): laid out again once the load ends.
        const seatKeys = () => slow.client.keys('load:seats:*');
        const maps = (await seatKeys()).sort();
        expect(maps.length).toBeGreaterThan(0);
        await slow.client.del(...maps);

        await slow.pause();
        await slow.resume({ loaded: false });
        const client = a.app.redis as NonNullable<typeof a.app.redis>;
        const loadingNow = async () => (await redisLoading(client).catch(() => undefined)) !== undefined;
        const port = new URL(slow.url).port;
        const readyz = await eventually(async () => {
          const res = await inject(a, { url: '/readyz' });
          return res.statusCode === 503 && String(res.json().details?.store).includes('is loading') ? res : undefined;
        }, '/readyz to say Redis is loading');
        expect(readyz.json()).toEqual({
          status: 'store_unavailable',
          details: { store: expect.stringMatching(new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${port} is loading its data set \\(\\d+ % loaded\\)$`)) },
        });

        const during = await createIntent(a, { reservation_id: 'res_load_2', amount: 100 });
        const read = await getIntent(a, before);
        // Both answered while Redis still loads: neither waited for the load (before, they did, and then answered 200).
        expect(await loadingNow()).toBe(true);
        expect(during.statusCode).toBe(503);
        expect(during.headers['retry-after']).toBe('1');
        expect(during.json()).toEqual({ error: { code: 'STORE_UNAVAILABLE', message: 'The store is unavailable; retry shortly.', trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) } });
        expect([read.statusCode, read.json().error.code]).toEqual([503, 'STORE_UNAVAILABLE']);

        // A process started now waits for the load before it serves, and says how far it is (under a
        // key prefix of its own: its start lays out seat maps of its own, not A's).
        const logs: Array<Record<string, unknown>> = [];
        const b = await buildTestApp({ ...env, REDIS_KEY_PREFIX: 'load-b:' }, { clockStart: START, logs });
        open.push(b);
        const waited = logs.filter((line) => String(line.msg).startsWith('Redis is loading'));
        expect(waited.length).toBeGreaterThan(0);
        expect(waited[0]).toMatchObject({ level: 'info', redis: slow.url, msg: expect.stringMatching(/^Redis is loading its data set \(\d+ % loaded\); the start waits for it$/) });
        expect(await loadingNow()).toBe(false);

        await eventually(async () => ((await inject(a, { url: '/readyz' })).statusCode === 200 ? true : undefined), 'readiness after the load');
        // A's maps, laid out again by A when the load ended.
        await eventually(async () => ((await seatKeys()).length === maps.length ? true : undefined), "A's seat maps laid out again");
        expect((await seatKeys()).sort()).toEqual(maps);
        const booked = await inject(a, { method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
        expect([booked.statusCode, booked.json().seatIds]).toEqual([201, ['A1', 'A2']]);
        expect((await inject(a, { url: '/readyz' })).json()).toEqual({ status: 'ready' });
        expect((await getIntent(a, before)).json()).toEqual(beforeBody);
        const after = await createIntent(a, { reservation_id: 'res_load_3', amount: 100, scenario: 'delay', delay_ms: 60_000 });
        expect(after.statusCode).toBe(200);
        expect((await getIntent(a, after.json().payment_intent_id)).json()).toMatchObject({ payment_intent_id: after.json().payment_intent_id, status: 'PENDING' });
        expect((await inject(b, { url: '/readyz' })).json()).toEqual({ status: 'ready' });
      } finally {
        await Promise.all(open.splice(0).map((t) => t.app.close()));
        await slow.stop();
      }
    });
  });

  describe('Redis silent (paused, its connections open)', { timeout: TEST_TIMEOUT_MS }, () => {
    it('/readyz says so within a few seconds, calls answer 503 STORE_UNAVAILABLE in their dialect and are not run later, one warning; answering again, full service without a restart', async () => {
      const logs: Array<Record<string, unknown>> = [];
      const env = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix() };
      const a = await buildTestApp(env, { clockStart: START, logs });
      open.push(a);
      const b = await buildTestApp(env, { clockStart: START });
      open.push(b);
      expect((await createIntent(a, { reservation_id: 'res_silent_0', amount: 100, scenario: 'delay', delay_ms: 60_000 })).statusCode).toBe(200);
      // A rule for one client's requests to a route that needs no store (its application is counted in Redis).
      const rule = await inject(a, { method: 'POST', url: '/v1/sim/rules', payload: { match: { route: '/health', headers: { 'x-test-case': 'silent' } }, action: { type: 'latency', distribution: 'fixed', params: { ms: 1 } } } });
      expect(rule.statusCode).toBe(201);
      expect((await inject(a, { url: '/health', headers: { 'x-test-case': 'silent' } })).headers['x-sim-rule']).toBe(rule.json().id);
      redis.freeze();
      try {
        // A route that needs no store, its fault rules due for a refresh whose read Redis does not
        // answer: it goes on with the rules read last after a moment. Before, it waited for the read
        // to fail (the silence found, about 2.5 s).
        await a.clock.advance(SHARED_RULES_REFRESH_MS);
        const asked = Date.now();
        expect((await inject(a, { url: '/health' })).json()).toEqual({ status: 'ok', service: 'payment-service' });
        expect(Date.now() - asked).toBeLessThan(1_000);
        // A request the rule matches cannot count its application: 503 in its dialect's shape, not the rule's fault (README "Webhooks with Redis").
        const matched = await inject(a, { url: '/health', headers: { 'x-test-case': 'silent' } });
        expect([matched.statusCode, matched.headers['retry-after'], matched.headers['x-sim-rule'], matched.json()]).toEqual([503, '1', undefined, { error: '서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.' }]);

        // Before, /readyz said ready for as long as Redis was silent, and every call waited for it.
        const readyz = await eventually(async () => {
          const res = await inject(a, { url: '/readyz' });
          return res.statusCode === 503 ? res : undefined;
        }, '/readyz to say Redis is silent');
        expect(readyz.json()).toEqual({ status: 'store_unavailable', details: { store: expect.stringMatching(new RegExp(`^Redis at ${redis.url} has not answered for \\d+ s \\(paused, overloaded, or cut off by the network\\)$`)) } });
        for (const t of [a, b]) await eventually(async () => ((await inject(t, { url: '/readyz' })).statusCode === 503 ? true : undefined), 'both replicas not ready');
        // Prometheus sees it too: /metrics still answers, its `ready` gauge 0 (before, nothing it exported said so).
        const silentMetrics = await inject(a, { url: '/metrics' });
        expect([silentMetrics.statusCode, readyGauge(silentMetrics.body)]).toEqual([200, 0]);

        // A call waits at most for the batch of commands in flight to time out (3 s), then answers 503.
        const started = Date.now();
        const native = await createIntent(a, { reservation_id: 'res_silent_1', amount: 100 });
        expect(Date.now() - started).toBeLessThan(5_000);
        expect([native.statusCode, native.headers['retry-after']]).toEqual([503, '1']);
        expect(native.json()).toEqual({ error: { code: 'STORE_UNAVAILABLE', message: 'The store is unavailable; retry shortly.', trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) } });
        const booking = await inject(b, { method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_silent' }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
        expect([booking.statusCode, booking.headers['retry-after'], booking.json()]).toEqual([503, '1', { error: 'The store is unavailable; retry shortly.', code: 'STORE_UNAVAILABLE' }]);
        const v2 = await inject(b, { method: 'GET', url: '/api/v2/payments/pay_tx_silent' });
        expect([v2.statusCode, v2.headers['retry-after'], v2.json()]).toEqual([503, '1', { detail: 'The store is unavailable; retry shortly.' }]);
        // Once found silent, calls answer at once.
        const again = Date.now();
        expect((await createIntent(b, { reservation_id: 'res_silent_2', amount: 100 })).statusCode).toBe(503);
        expect(Date.now() - again).toBeLessThan(1_000);
        // One line on Redis (the parts that poll it say their own, as for a Redis stopped).
        expect(logs.filter((l) => String(l.msg).startsWith('Redis')).map((l) => [l.level, l.msg])).toEqual([
          ['warn', 'Redis has not answered for 2 s (paused, overloaded, or cut off by the network): store calls answer 503 STORE_UNAVAILABLE until it answers; those sent before may still run when it does'],
        ]);
      } finally {
        redis.thaw();
      }
      for (const t of [a, b]) await eventually(async () => ((await inject(t, { url: '/readyz' })).statusCode === 200 ? true : undefined), 'readiness after Redis answers again');
      expect(readyGauge((await inject(a, { url: '/metrics' })).body)).toBe(1);
      expect(logs.filter((l) => String(l.msg).startsWith('Redis')).map((l) => [l.level, l.msg]).slice(1)).toEqual([['info', 'Redis answers again']]);
      // The creates refused while it was silent were never sent: none of them ran when it answered again.
      for (const reservation of ['res_silent_1', 'res_silent_2']) {
        const listed = await inject(a, { url: `/v1/sim/intents?reservation_id=${reservation}` });
        expect([reservation, listed.statusCode, listed.json().data]).toEqual([reservation, 200, []]);
      }
      expect((await createIntent(b, { reservation_id: 'res_silent_3', amount: 100, scenario: 'delay', delay_ms: 60_000 })).statusCode).toBe(200);
    });
  });

  describe('a booking payment whose replica stalls (or dies) during its delay', { timeout: TEST_TIMEOUT_MS }, () => {
    it('the other replica takes it over once the longest delay and a lease have passed since it began, and pays; the stalled one, waking, records nothing and answers 409 (before 2026-12-06 refused as in progress until the hold and a lease had passed)', async () => {
      const [a, b] = await replicas({ MOCK_MIN_DELAY_MS: '1000', MOCK_MAX_DELAY_MS: '1000' });
      const { bookingId, pay } = await aBookingToPay(a, 'user_stalled');
      // A's payment begins and waits for its delay on A's clock, which stands still (A stalled, or gone).
      const onA = pay('tok_chargeDeclined');
      await eventually(async () => ((await a.app.bookings.service.counts()).paymentsInFlight === 1 ? true : undefined), 'the payment in flight on A');
      // On B: in progress within the longest delay and a lease (SCHEDULER_LEASE_MS) of its begin, then taken over.
      await b.clock.advance(1_000 + b.app.core.scheduler.leaseMs);
      const refused = await pay('tok_visa', b);
      expect([refused.statusCode, refused.json().code]).toEqual([409, 'PAYMENT_ALREADY_PROCESSED']);
      await b.clock.advance(1);
      const onB = pay('tok_visa', b);
      await eventually(async () => ((await a.app.core.stores.bookings.get(bookingId))?.paymentInFlight === 'execute' && b.app.bookings.payments.inFlight === 1 ? true : undefined), 'the payment in flight on B');
      // A wakes while B's payment is in its delay: its decline is not B's result.
      await a.clock.advance(1_000);
      const answeredA = await onA;
      expect([answeredA.statusCode, answeredA.json().code]).toEqual([409, 'PAYMENT_ALREADY_PROCESSED']);
      await b.clock.advance(1_000);
      const answeredB = await onB;
      expect([answeredB.statusCode, answeredB.json().finalStatus]).toEqual([200, 'SUCCESS']);
      const stored = await b.app.core.stores.bookings.get(bookingId);
      expect([stored?.paymentIntent.status, stored?.paymentInFlight, (await b.app.core.stores.bookings.events(bookingId)).map((e) => e.type)]).toEqual(['SUCCESS', null, ['PAYMENT_SUCCEEDED']]);
    });
  });

  describe('a booking whose payment’s replica stalls (or dies) during its delay, cancelled on the other', { timeout: TEST_TIMEOUT_MS }, () => {
    it('the cancel is refused as in progress until the longest delay and a lease have passed since the payment began, then cancels and frees the seat; the stalled replica, waking, records nothing (before 2026-12-06 refused until the hold and a lease had passed)', async () => {
      const [a, b] = await replicas({ MOCK_MIN_DELAY_MS: '1000', MOCK_MAX_DELAY_MS: '1000' });
      const { bookingId, pay } = await aBookingToPay(a, 'user_stalled_cancel');
      const cancel = () => inject(b, { method: 'DELETE', url: '/bookings/my', headers: { 'x-user-id': 'user_stalled_cancel' }, payload: { bookingId } });
      const onA = pay();
      await eventually(async () => ((await a.app.bookings.service.counts()).paymentsInFlight === 1 ? true : undefined), 'the payment in flight on A');
      await b.clock.advance(1_000 + b.app.core.scheduler.leaseMs);
      const refused = await cancel();
      expect([refused.statusCode, refused.json()]).toEqual([400, { error: `A payment for booking ${bookingId} is already in progress.`, code: 'PAYMENT_ALREADY_PROCESSED' }]);
      await b.clock.advance(1);
      const cancelled = await cancel();
      expect([cancelled.statusCode, cancelled.json()]).toEqual([200, { message: 'Booking cancelled successfully.' }]);
      // A wakes: its approval is not recorded on the cancelled booking.
      await a.clock.advance(1_000);
      const answeredA = await onA;
      expect([answeredA.statusCode, answeredA.json()]).toEqual([409, { error: `Booking ${bookingId} is cancelled; only a pending, unpaid booking can be paid or cancelled.`, code: 'PAYMENT_ALREADY_PROCESSED' }]);
      const stored = await b.app.core.stores.bookings.get(bookingId);
      expect([stored?.status, stored?.paymentIntent.status, stored?.paymentInFlight, await b.app.core.stores.bookings.events(bookingId)]).toEqual(['cancelled', 'PENDING', null, []]);
      expect((await b.app.bookings.service.counts()).seats).toMatchObject({ held: 0, reserved: 0 });
    });
  });

  describe('a booking payment whose begin Redis took as it went silent', { timeout: TEST_TIMEOUT_MS }, () => {
    it('answers 503, and once Redis answers again the begin it ran is ended, so the client’s retry pays (before 2026-12-06 it was refused as in progress for the hold and a lease, about 10.5 minutes)', async () => {
      const [a] = await replicas({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' });
      const { bookingId, pay } = await aBookingToPay(a, 'user_lost_begin');
      // Another booking paid first: the begin's script is in Redis' cache, so the one sent while it is silent runs when it reads it (not NOSCRIPT).
      const warm = await (await aBookingToPay(a, 'user_lost_begin')).pay();
      expect([warm.statusCode, warm.json().finalStatus]).toEqual([200, 'SUCCESS']);
      redis.freeze();
      let answered: Awaited<ReturnType<typeof pay>>;
      try {
        // Sent into the open connection of a Redis that reads nothing: it fails when the silence is found (2 s).
        answered = await pay();
      } finally {
        redis.thaw();
      }
      expect([answered.statusCode, answered.headers['retry-after'], answered.json()]).toEqual([503, '1', { error: 'The store is unavailable; retry shortly.', code: 'STORE_UNAVAILABLE' }]);
      await eventually(async () => ((await inject(a, { url: '/readyz' })).statusCode === 200 ? true : undefined), 'readiness after Redis answers again');
      // Redis ran the begin when it read it (its token is on the booking: `ft`), leaving the booking
      // in payment with nothing of this process running it. Its abort, by that token, went after it
      // once Redis answered, or waits for its next try on the replica's clock (250 ms, then
      // doubling), taken now. Without it, never (the hold is 10 minutes).
      expect(await redis.client.hget(`${a.app.core.config.redis.keyPrefix}bk:r:${bookingId}`, 'ft')).toMatch(/^[0-9a-f-]{36}$/);
      await eventually(async () => {
        await a.clock.advance(500);
        return (await a.app.core.stores.bookings.get(bookingId))?.paymentInFlight === null ? true : undefined;
      }, 'the lost begin ended');
      const paid = await pay();
      expect([paid.statusCode, paid.json().finalStatus]).toEqual([200, 'SUCCESS']);
    });
  });

  describe('Redis stopped and restarted', { timeout: TEST_TIMEOUT_MS }, () => {
    it('a booking payment cut short by the outage answers 503, and once Redis is back its retry is taken (not refused as in progress until the hold has passed)', async () => {
      const [a] = await replicas({ MOCK_MIN_DELAY_MS: '1000', MOCK_MAX_DELAY_MS: '1000' });
      const { pay } = await aBookingToPay(a, 'user_cut');
      // In flight: its processing delay (1 s of the replica's clock) runs after Redis has gone.
      const cut = pay();
      await eventually(async () => ((await a.app.bookings.service.counts()).paymentsInFlight === 1 ? true : undefined), 'the payment in flight');
      await redis.pause();
      try {
        await a.clock.advance(1_000);
        const answered = await cut;
        expect([answered.statusCode, answered.headers['retry-after'], answered.json()]).toEqual([503, '1', { error: 'The store is unavailable; retry shortly.', code: 'STORE_UNAVAILABLE' }]);
      } finally {
        await redis.resume();
      }
      await eventually(async () => ((await inject(a, { url: '/readyz' })).statusCode === 200 ? true : undefined), 'readiness after Redis is back');
      // The payment's end is tried again (250 ms, then doubling, on the replica's clock) and taken now.
      await eventually(async () => {
        await a.clock.advance(500);
        return (await a.app.bookings.service.counts()).paymentsInFlight === 0 ? true : undefined;
      }, 'the cut payment ended');
      const retried = pay();
      await eventually(async () => ((await a.app.bookings.service.counts()).paymentsInFlight === 1 ? true : undefined), 'the retry in flight');
      await a.clock.advance(1_000);
      const paid = await retried;
      // Before, 409 PAYMENT_ALREADY_PROCESSED ("already in progress") until the hold had passed.
      expect([paid.statusCode, paid.json().finalStatus]).toEqual([200, 'SUCCESS']);
    });

    it('an /api/v2 create waiting for its decision when Redis goes away answers 503 in FastAPI’s shape within seconds, not after the outage; the payment is there after, and a retry answers it', async () => {
      const [a] = await replicas();
      // Its decision is due in 3 s (DEFAULT_DELAY_DELAY_MS) of the replica's manual clock, which does not move: the create waits for it.
      const started = Date.now();
      const creating = inject(a, { method: 'POST', url: '/api/v2/payments', headers: { 'x-sim-scenario': 'delay' }, payload: v2Body('tx_away', 'http://127.0.0.1:9/unused') });
      await eventually(async () => ((await a.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the payment stored, its decision pending');
      await redis.pause();
      try {
        const answered = await creating;
        // Before, it waited for the whole outage (and the decision after it).
        expect(Date.now() - started).toBeLessThan(10_000);
        expect([answered.statusCode, answered.headers['retry-after'], answered.json()]).toEqual([503, '1', { detail: 'The store is unavailable; retry shortly.' }]);
      } finally {
        await redis.resume();
      }
      await eventually(async () => ((await inject(a, { url: '/readyz' })).statusCode === 200 ? true : undefined), 'readiness after Redis is back');
      const read = await inject(a, { url: '/api/v2/payments/pay_tx_away' });
      expect([read.statusCode, read.json().status]).toEqual([200, 'PENDING']);
      // A retry with the same tx_id waits for the payment as the first request would have (since
      // 2026-12-04: it follows the payment in the store), until its decision and its callback's
      // first attempt (refused here: PENDING).
      const retrying = inject(a, { method: 'POST', url: '/api/v2/payments', payload: v2Body('tx_away', 'http://127.0.0.1:9/unused') });
      expect(await Promise.race([retrying.then(() => 'answered'), sleep(3 * LOOK_AFTER_DUE_MS + 200).then(() => 'waiting')])).toBe('waiting');
      await a.clock.advance(3_000);
      const retried = await retrying;
      expect([retried.statusCode, retried.headers['idempotent-replayed'], retried.json()]).toEqual([200, 'true', { ok: true, tx_id: 'tx_away', status: 'PENDING', payment_id: 'pay_tx_away' }]);
      expect(await a.app.v2Payments.pendingDecisions()).toBe(0);
    });

    it('while Redis is away /readyz says why and calls answer 503 STORE_UNAVAILABLE in their dialect; after it is back, full service without a restart', async () => {
      const [a, b] = await replicas();
      const before = (await createIntent(a, { reservation_id: 'res_4', amount: 1200, scenario: 'delay', delay_ms: 60_000 })).json().payment_intent_id as string;
      const beforeBody = (await getIntent(b, before)).json();
      expect((await inject(a, { url: '/readyz' })).json()).toEqual({ status: 'ready' });

      await redis.pause();
      const port = new URL(redis.url).port;
      const reason = `Redis at ${redis.url} is unreachable (connect ECONNREFUSED 127.0.0.1:${port}); reconnecting`;
      const readyz = await eventually(async () => {
        const res = await inject(a, { url: '/readyz' });
        return res.statusCode === 503 && res.json().details?.store === reason ? res : undefined;
      }, '/readyz to say Redis is unreachable');
      expect(readyz.json()).toEqual({ status: 'store_unavailable', details: { store: reason } });
      // A route that needs no store answers as ever, its fault rules due for a refresh: the read of
      // the shared revision fails, and the rules read last go on applying (the next read a second later).
      await a.clock.advance(SHARED_RULES_REFRESH_MS);
      for (let i = 0; i < 3; i++) expect((await inject(a, { url: '/health' })).json()).toEqual({ status: 'ok', service: 'payment-service' });

      const native = await createIntent(b, { reservation_id: 'res_5', amount: 100 });
      expect(native.statusCode).toBe(503);
      expect(native.headers['retry-after']).toBe('1');
      expect(native.json()).toEqual({ error: { code: 'STORE_UNAVAILABLE', message: 'The store is unavailable; retry shortly.', trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) } });

      const read = await getIntent(a, before);
      expect([read.statusCode, read.json().error.code]).toEqual([503, 'STORE_UNAVAILABLE']);

      // The booking's first store call (its expiry job) fails: it answers then, nothing held. The
      // reads' first store call (the seat map or its counts) fails: they answer then.
      const { seats } = a.app.core.stores;
      const ownCalls = [vi.spyOn(seats, 'hold')];
      const booking = await inject(a, { method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
      expect(booking.statusCode).toBe(503);
      expect(booking.headers['retry-after']).toBe('1');
      expect(booking.json()).toEqual({ error: 'The store is unavailable; retry shortly.', code: 'STORE_UNAVAILABLE' });
      for (const url of ['/performances', '/performances/perf_001/seats']) {
        const res = await inject(a, { url, headers: { 'x-user-id': 'user_1' } });
        expect([url, res.statusCode, res.json()]).toEqual([url, 503, { error: 'The store is unavailable; retry shortly.', code: 'STORE_UNAVAILABLE' }]);
      }
      for (const spy of ownCalls) {
        expect(spy).not.toHaveBeenCalled();
        spy.mockRestore();
      }
      // Each refusal is counted where it was answered (PaysimStoreUnavailable fires on any): a's four, b's one.
      const refused = async (t: TestApp) => /^store_unavailable_total (\d+)$/m.exec((await inject(t, { url: '/metrics' })).body)?.[1];
      expect([await refused(a), await refused(b)]).toEqual(['4', '1']);

      await redis.resume();
      for (const t of [a, b]) await eventually(async () => ((await inject(t, { url: '/readyz' })).statusCode === 200 ? true : undefined), 'readiness after Redis is back');
      expect((await inject(b, { url: '/readyz' })).json()).toEqual({ status: 'ready' });
      // What Redis acknowledged before it stopped is there (AOF), on either replica.
      expect((await getIntent(a, before)).json()).toEqual(beforeBody);
      const after = await createIntent(b, { reservation_id: 'res_6', amount: 100, scenario: 'delay', delay_ms: 60_000 });
      expect(after.statusCode).toBe(200);
      expect((await getIntent(a, after.json().payment_intent_id)).json()).toMatchObject({ payment_intent_id: after.json().payment_intent_id, status: 'PENDING' });
      const booked = await inject(b, { method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
      expect([booked.statusCode, booked.json().seatIds]).toEqual([201, ['A1', 'A2']]);
    });

    it('while Redis is away every other dialect, the report and the namespaces answer 503 in their shapes, /metrics keeps answering with the last values, one log line', async () => {
      const jwtSecret = 'replicas-secret';
      const logs: Array<Record<string, unknown>> = [];
      const a = await buildTestApp({ STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), JWT_SECRET: jwtSecret, CONSOLE_ENABLED: 'true' }, { clockStart: START, logs });
      open.push(a);
      const token = await new SignJWT({ userId: 'user_1' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(Math.floor(START / 1000) + 600)
        .sign(new TextEncoder().encode(jwtSecret));
      const booked = await inject(a, { method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 3, paymentMethod: 'CREDIT_CARD' } });
      expect(booked.statusCode).toBe(201);
      const intent = (await createIntent(a, { reservation_id: 'res_console', amount: 100, scenario: 'delay', delay_ms: 600_000 })).json().payment_intent_id as string;
      expect((await inject(a, { url: `/console/payments/intent/${intent}` })).statusCode).toBe(200);
      const gauges = (text: string) => text.split('\n').filter((line) => /^(seats_held|seats_reserved|ledger_imbalance|store_records\{store="bookings"\}) /.test(line));
      const before = gauges((await inject(a, { url: '/metrics' })).body);
      expect(before).toEqual(['store_records{store="bookings"} 1', 'seats_held 3', 'seats_reserved 0', 'ledger_imbalance 0']);

      await redis.pause();
      await eventually(async () => ((await inject(a, { url: '/readyz' })).statusCode === 503 ? true : undefined), '/readyz to say Redis is unreachable');
      const unavailable = 'The store is unavailable; retry shortly.';
      const nativeBody = { error: { code: 'STORE_UNAVAILABLE', message: unavailable, trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) } };
      const cases: Array<[string, InjectOptions, unknown]> = [
        ['payment service', { method: 'POST', url: '/api/v1/payments/process', headers: { authorization: `Bearer ${token}` }, payload: { reservationId: booked.json().bookingId, paymentMethod: 'kakao_pay' } }, { error: '서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.' }],
        ['/api/v2', { method: 'POST', url: '/api/v2/payments', payload: v2Body('tx_away', 'http://127.0.0.1:9/callback') }, { detail: unavailable }],
        ['FluxPay', { url: '/api/v1/credits/balance?userId=user_1' }, { isSuccess: false, code: 'COMMON_503', message: unavailable, result: null }],
        ['the report', { url: '/v1/sim/report' }, nativeBody],
        ['the report as CSV', { url: '/v1/sim/report', headers: { accept: 'text/csv' } }, nativeBody],
        ['the namespaces', { url: '/v1/sim/namespaces' }, nativeBody],
        ['a namespace reset', { method: 'DELETE', url: '/v1/sim/namespaces/ci-1' }, nativeBody],
      ];
      const answers = await Promise.all(cases.map(([, options]) => inject(a, options)));
      cases.forEach(([what, , body], i) => {
        const res = answers[i] as LightMyRequestResponse;
        expect([what, res.statusCode, res.headers['retry-after'], res.json()]).toEqual([what, 503, '1', body]);
      });
      // The console: its error page, not "does not exist", for a payment it cannot read now.
      for (const url of [`/console/payments/intent/${intent}`, `/console/payments/booking/${booked.json().bookingId}`]) {
        const page = await inject(a, { url });
        expect([url, page.statusCode, page.headers['retry-after'], page.headers['content-type']]).toEqual([url, 503, '1', 'text/html; charset=utf-8']);
        expect(page.body).toContain(unavailable);
      }

      // Prometheus still gets every metric: the gauges a store feeds keep their last values.
      const logged = logs.length;
      for (let scrape = 0; scrape < 2; scrape++) {
        const metrics = await inject(a, { url: '/metrics' });
        expect(metrics.statusCode).toBe(200);
        expect(gauges(metrics.body)).toEqual(before);
        expect(metrics.body).toMatch(/^http_requests_total\{method="POST",route="\/bookings",status_code="201"\} 1$/m);
        // Every refusal counted, whatever its dialect's shape: the 7 answers and the console's 2 pages.
        expect(metrics.body).toMatch(/^store_unavailable_total 9$/m);
      }
      expect(logs.slice(logged).filter((line) => String(line.msg).startsWith('metrics:')).map((line) => line.msg)).toEqual([
        'metrics: a store could not be read; its metrics keep their last values until it can',
      ]);

      // The store sweep (once a minute) fails each time while Redis is away: logged once.
      const intentsStore = a.app.core.stores.intents;
      const sweepIntents = intentsStore.sweep.bind(intentsStore);
      let sweeps = 0;
      intentsStore.sweep = (now) => sweepIntents(now).finally(() => void (sweeps += 1));
      await eventually(async () => {
        if (sweeps >= 3) return true;
        await a.clock.advance(60_000);
        await sleep(100);
        return undefined;
      }, 'three sweeps while Redis is away');
      // In Redis' words, without a stack (before 2026-12-08 its err, a StoreUnavailableError).
      expect(logs.filter((line) => line.msg === 'store sweep failed').map((line) => [line.level, line.failed, line.err, typeof line.redis_error])).toEqual([['error', expect.any(Number), undefined, 'string']]);

      await redis.resume();
      await eventually(async () => ((await inject(a, { url: '/readyz' })).statusCode === 200 ? true : undefined), 'readiness after Redis is back');
      const report = await inject(a, { url: '/v1/sim/report' });
      expect([report.statusCode, report.json().payments.map((p: { id: string }) => p.id)]).toEqual([200, [intent, booked.json().bookingId]]);
      expect((await inject(a, { url: '/v1/sim/namespaces' })).json()).toEqual({ data: [], max: 64 });
      // The outage, told once as it began and once as it ended; a reconnect made while the restarted
      // Redis still read its AOF says so too, and that it has loaded (h79b, h79d: 1 run in 7 at load 9).
      const told = logs.filter((line) => String(line.msg).startsWith('Redis is') || line.msg === 'Redis has loaded its data set').map((line) => [line.level, line.msg]);
      const whileLoading = [
        ['warn', expect.stringMatching(/^Redis is loading its data set \(\d+ % loaded\): store calls answer 503 STORE_UNAVAILABLE until it is done$/)],
        ['info', 'Redis has loaded its data set'],
      ];
      expect(told).toEqual([
        ['warn', 'Redis is unreachable: store calls answer 503 STORE_UNAVAILABLE until it is back; reconnecting'],
        ['info', 'Redis is reachable again'],
        ...(told.length > 2 ? whileLoading : []),
      ]);
    });
  });
}
