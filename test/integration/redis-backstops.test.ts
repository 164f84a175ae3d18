import { afterEach, expect, it, vi } from 'vitest';
import type { RedisDeliveryLog } from '../../src/adapters/redis/deliveries.ts';
import { derivedId } from '../../src/core/ids.ts';
import { EXPIRE_JOB } from '../../src/core/bookings/settlement.ts';
import { CANCEL_EVENT_JOB, DECIDE_JOB, REFUND_EVENT_JOB } from '../../src/core/intents/service.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { eventually as eventuallyWithin, receiverPool } from '../helpers/receiver.ts';
import { withRedisServer } from '../helpers/redis.ts';

/**
 * A native cancel or refund, and a booking's status event, on the Redis back end as several
 * replicas run it (the shared schedule polled, as in production; the other Redis suites run one
 * app alone without the poll): its backstop job stands behind its webhook. A webhook that cannot be queued fails nothing the
 * client sees: the change is answered, the job sends the webhook a lease later with the id the
 * change gave its event, and the metrics count the change once.
 * @see issue 14 "kill -9", README "Nothing lost at a kill"
 */

const START = Date.UTC(2026, 0, 15, 12, 0, 0);
const LEASE_MS = 30_000;
/** Real time allowed for what happens over Redis and HTTP. Under the test's own limit (20 s), so that a wait that runs out names what it waited for. */
const REAL_TIME_BUDGET_MS = 15_000;
const eventually = <T>(probe: () => Promise<T | undefined>, what: string): Promise<T> => eventuallyWithin(probe, what, REAL_TIME_BUDGET_MS);

withRedisServer('cancel and refund backstops on Redis', (server) => {
  const open: TestApp[] = [];
  const receivers = receiverPool();
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(open.splice(0).map((t) => t.app.close()));
    await receivers.closeAll();
  });

  async function replica(prefix: string, env: Record<string, string> = {}): Promise<TestApp> {
    const t = await buildTestApp({ STORE: 'redis', REDIS_URL: server().url, REDIS_KEY_PREFIX: prefix, SCHEDULER_POLL_MS: '1000', SCHEDULER_LEASE_MS: String(LEASE_MS), ...env }, { clockStart: START });
    open.push(t);
    return t;
  }

  const create = async (t: TestApp, body: object): Promise<string> => (await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: body })).json<{ payment_intent_id: string }>().payment_intent_id;
  const backstops = (t: TestApp) => t.app.core.scheduler.pending(CANCEL_EVENT_JOB, REFUND_EVENT_JOB);
  const metric = (text: string, series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it('a refund and a cancel whose webhooks cannot be queued answer 200; a lease later each webhook goes once with the id its change gave it; the metrics count one refund of 400 and one cancel; the event stream tells each twice, the second marked again', async () => {
    const prefix = server().newPrefix();
    const t = await replica(prefix);
    const rx = await receivers.start();
    const hook = rx.url('/hooks');
    const approved = await create(t, { reservation_id: 'res_refund', amount: 1000, currency: 'KRW', scenario: 'approve', webhook_url: hook });
    const pending = await create(t, { reservation_id: 'res_cancel', amount: 2000, currency: 'KRW', scenario: 'delay', delay_ms: 600_000, webhook_url: hook });
    await t.clock.advance(200);
    await eventually(async () => ((await t.app.inject({ url: `/v1/sim/intents/${approved}` })).json<{ status: string }>().status === 'APPROVED' ? true : undefined), 'the approval');
    await eventually(async () => (rx.requests.length === 1 ? true : undefined), 'the approval’s webhook');

    // The delivery log and stream fail twice, as a Redis that is away for a moment would.
    const log = t.app.webhooks.log as RedisDeliveryLog;
    vi.spyOn(log, 'insertOnceAndQueue').mockRejectedValueOnce(new Error('Connection is closed.')).mockRejectedValueOnce(new Error('Connection is closed.'));
    const refund = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${approved}/refund`, payload: { amount: 400 } });
    const cancel = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${pending}/cancel` });
    expect([refund.statusCode, refund.json()]).toEqual([200, expect.objectContaining({ payment_intent_id: approved, status: 'PARTIALLY_REFUNDED', refunded_amount: 400, updated_at: new Date(START + 200).toISOString() })]);
    expect([cancel.statusCode, cancel.json()]).toEqual([200, expect.objectContaining({ payment_intent_id: pending, status: 'CANCELLED', refunded_amount: 0, updated_at: new Date(START + 200).toISOString() })]);
    expect(await backstops(t)).toBe(2);
    expect(rx.requests).toHaveLength(1);

    await t.clock.advance(LEASE_MS);
    await eventually(async () => (rx.requests.length === 3 ? true : undefined), 'the two webhooks from the backstop jobs');
    await eventually(async () => ((await backstops(t)) === 0 ? true : undefined), 'the backstop jobs completed');
    const bodies = rx.requests.slice(1).map((r) => JSON.parse(r.body) as Record<string, unknown>);
    const at = new Date(START + 200).toISOString();
    const refundId = derivedId('evt', START + 200, `${approved}/400`);
    const cancelId = derivedId('evt', START + 200, pending);
    expect(bodies.sort((x, y) => String(x.type).localeCompare(String(y.type)))).toEqual([
      { id: cancelId, type: 'payment.cancelled', created_at: at, payment_intent_id: pending, reservation_id: 'res_cancel', amount: 2000, currency: 'KRW', status: 'CANCELLED', failure_code: null, refunded_amount: 0, ts: at, metadata: null },
      { id: refundId, type: 'payment.refunded', created_at: at, payment_intent_id: approved, reservation_id: 'res_refund', amount: 1000, currency: 'KRW', status: 'PARTIALLY_REFUNDED', failure_code: null, refunded_amount: 400, ts: at, metadata: null },
    ]);

    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metric(metrics, 'refunds_total{currency="KRW"}')).toBe(1);
    expect(metric(metrics, 'refunded_amount_total{currency="KRW"}')).toBe(400);
    expect(metric(metrics, 'payment_intents_finalized_total{status="CANCELLED"}')).toBe(1);

    // The outbound event stream: at least once; a consumer de-duplicates on the id (here the repeat
    // says `again`; with the first append failed too, the entry marked `again` would be the only one).
    await eventually(async () => ((await server().client.xlen(`${prefix}events`)) >= 7 ? true : undefined), 'the stream entries');
    const entries = (await server().client.xrange(`${prefix}events`, '-', '+')).map(([, fields]) => Object.fromEntries(fields.reduce<string[][]>((pairs, v, i) => (i % 2 === 0 ? [...pairs, [v]] : (pairs.at(-1)!.push(v), pairs)), [])) as Record<string, string>);
    const changes = entries.filter((e) => e.type === 'payment.refunded' || e.type === 'payment.cancelled');
    expect(changes.map((e) => [e.type, e.id, (JSON.parse(e.data!) as { again?: boolean }).again ?? false])).toEqual([
      ['payment.refunded', refundId, false],
      ['payment.cancelled', cancelId, false],
      ...(changes[2]?.type === 'payment.refunded'
        ? [
            ['payment.refunded', refundId, true],
            ['payment.cancelled', cancelId, true],
          ]
        : [
            ['payment.cancelled', cancelId, true],
            ['payment.refunded', refundId, true],
          ]),
    ]);
  });

  it('a cancel whose decision job cannot be removed (the store fails then) still answers 200: its webhook goes once, and the decision’s job, run later, leaves it CANCELLED', async () => {
    const prefix = server().newPrefix();
    const t = await replica(prefix);
    const rx = await receivers.start();
    const pending = await create(t, { reservation_id: 'res_1', amount: 2000, currency: 'KRW', scenario: 'approve', delay_ms: 5000, webhook_url: rx.url('/hooks') });
    const store = t.app.stores.scheduler;
    const cancelJob = store.cancel.bind(store);
    vi.spyOn(store, 'cancel').mockImplementation((kind, key) => (kind === DECIDE_JOB ? Promise.reject(new Error('Connection is closed.')) : cancelJob(kind, key)));
    const cancel = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${pending}/cancel`, headers: { 'idempotency-key': 'cancel-1' } });
    expect([cancel.statusCode, cancel.json<{ status: string }>().status]).toEqual([200, 'CANCELLED']);
    vi.restoreAllMocks();
    // Its repeat is the stored answer, not a 409.
    const again = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${pending}/cancel`, headers: { 'idempotency-key': 'cancel-1' } });
    expect([again.statusCode, again.headers['idempotent-replayed'], again.body]).toEqual([200, 'true', cancel.body]);
    await eventually(async () => (rx.requests.length === 1 ? true : undefined), 'the cancel’s webhook');
    expect(await backstops(t)).toBe(0);
    expect(await t.app.core.intents.pendingDecisions()).toBe(1);
    await t.clock.advance(5000);
    await eventually(async () => ((await t.app.core.intents.pendingDecisions()) === 0 ? true : undefined), 'the decision’s job ran');
    expect((await t.app.inject({ url: `/v1/sim/intents/${pending}` })).json<{ status: string }>().status).toBe('CANCELLED');
    expect(rx.requests.map((r) => (JSON.parse(r.body) as { type: string }).type)).toEqual(['payment.cancelled']);
  });

  it('a booking cancel and an inbox confirmation whose webhooks cannot be queued: the cancel answers 200, the booking is confirmed; a lease later the expiry job sends each webhook once, with the id its booking and settle time give it; bookings_total counts each once', async () => {
    const prefix = server().newPrefix();
    const t = await replica(prefix, { MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' });
    const rx = await receivers.start();
    const hook = rx.url('/hooks');
    const book = async (user: string): Promise<string> => {
      const res = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': user }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD', webhookUrl: hook } });
      expect(res.statusCode).toBe(201);
      return res.json<{ bookingId: string }>().bookingId;
    };
    const toCancel = await book('user_cancel');
    const toPay = await book('user_pay');
    await t.clock.advance(10);

    const log = t.app.webhooks.log as RedisDeliveryLog;
    vi.spyOn(log, 'insertOnceAndQueue').mockRejectedValueOnce(new Error('Connection is closed.')).mockRejectedValueOnce(new Error('Connection is closed.'));
    const cancel = await t.app.inject({ method: 'DELETE', url: '/bookings/my', headers: { 'x-user-id': 'user_cancel' }, payload: { bookingId: toCancel } });
    expect(cancel.statusCode).toBe(200);
    const pay = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': 'user_pay' }, payload: { bookingId: toPay, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' } });
    expect([pay.statusCode, pay.json<{ finalStatus: string }>().finalStatus]).toEqual([200, 'SUCCESS']);
    await t.clock.advance(50); // the events inbox's job
    const statusOf = async (user: string) => (await t.app.inject({ url: '/bookings/my', headers: { 'x-user-id': user } })).json<Array<{ status: string }>>()[0]?.status;
    await eventually(async () => ((await statusOf('user_pay')) === 'confirmed' ? true : undefined), 'the confirmation');
    expect(await statusOf('user_cancel')).toBe('cancelled');
    expect(rx.requests).toHaveLength(0);
    expect(await t.app.core.scheduler.pending(EXPIRE_JOB)).toBe(2);

    await t.clock.advance(LEASE_MS);
    await eventually(async () => (rx.requests.length === 2 ? true : undefined), 'the two webhooks from the expiry jobs');
    await eventually(async () => ((await t.app.core.scheduler.pending(EXPIRE_JOB)) === 0 ? true : undefined), 'the expiry jobs completed');
    const bodies = rx.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>).sort((x, y) => String(x.type).localeCompare(String(y.type)));
    const common = { userId: expect.any(String), performanceId: 'perf_001', quantity: 1, totalAmount: 30000, currency: 'KRW', paymentMethod: 'CREDIT_CARD', failureCode: null };
    expect(bodies).toEqual([
      { ...common, id: derivedId('evt', START + 10, toCancel), type: 'booking.cancelled', createdAt: new Date(START + 10).toISOString(), bookingId: toCancel, userId: 'user_cancel', seatIds: ['A1'], status: 'cancelled', paymentStatus: 'PENDING' },
      { ...common, id: derivedId('evt', START + 60, toPay), type: 'booking.confirmed', createdAt: new Date(START + 60).toISOString(), bookingId: toPay, userId: 'user_pay', seatIds: ['A2'], status: 'confirmed', paymentStatus: 'SUCCESS' },
    ]);
    // Each sent by its expiry job when due, a lease after its change failed to queue it.
    const logged = (await t.app.inject({ url: '/v1/sim/webhooks/deliveries?limit=10' })).json<{ data: Array<{ type: string; created_at: string }> }>().data;
    expect(logged.map((d) => [d.type, d.created_at]).sort()).toEqual([
      ['booking.cancelled', new Date(START + 10 + LEASE_MS).toISOString()],
      ['booking.confirmed', new Date(START + 60 + LEASE_MS).toISOString()],
    ]);
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(['pending', 'cancelled', 'confirmed'].map((status) => metric(metrics, `bookings_total{status="${status}"}`))).toEqual([2, 1, 1]);
  });

  it('FluxPay: events a replica wrote and never published (its relay gone, as at a kill) are published by another replica’s poll of the outbox, once, and counted once', async () => {
    const prefix = server().newPrefix();
    const rx = await receivers.start();
    const env = { FLUXPAY_WEBHOOK_URL: rx.url('/fluxpay') };
    const a = await replica(prefix, env);
    const b = await replica(prefix, env);
    await a.app.fluxpay.relay.stop();
    const fp = async (path: string, body: object) => {
      const res = await a.app.inject({ method: 'POST', url: path, payload: body });
      expect([res.statusCode, res.json<{ code: string }>().code], res.body).toEqual([200, 'SUCCESS']);
      return res.json<{ result: Record<string, string> }>().result;
    };
    const order = await fp('/api/v1/orders', { userId: 'user_poll', serviceId: 'ai-writer', orderName: '100 credits', amount: 1000, metadata: { kind: 'CREDIT_CHARGE', credits: 100 } });
    const payment = await fp('/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } });
    await fp('/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: order.orderId, amount: 1000 });
    const pending = (await a.app.stores.fluxpay.outboxStats()).pending;
    expect(pending).toBeGreaterThan(0);
    expect(rx.requests).toHaveLength(0);

    await b.clock.advance(1000); // one poll of B's relay
    await eventually(async () => (rx.requests.length === pending ? true : undefined), 'the events published by B');
    expect((await b.app.stores.fluxpay.outboxStats()).pending).toBe(0);
    const types = rx.requests.map((r) => (JSON.parse(r.body) as { eventType: string }).eventType);
    expect(types).toContain('payment.approved');
    expect(new Set(rx.requests.map((r) => r.headers['webhook-id'])).size).toBe(pending);
    const published = metric((await b.app.inject({ url: '/metrics' })).body, 'fluxpay_outbox_published_total{event_type="payment.approved"}');
    expect(published).toBe(1);
  });
  it.each([
    [{}, 64],
    [{ SCHEDULER_CONCURRENCY: '3' }, 3],
  ])('with %j a replica runs %i due jobs at once, the next as one ends (README "Redis far away")', async (env, lanes) => {
    const t = await replica(server().newPrefix(), env);
    const { scheduler } = t.app.core;
    let running = 0;
    let most = 0;
    let done = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    scheduler.register('test.lanes', async () => {
      most = Math.max(most, ++running);
      await gate;
      running--;
      done++;
    });
    const jobs = lanes + 5;
    for (let i = 0; i < jobs; i++) await scheduler.schedule('test.lanes', `job-${i}`, START);
    const run = scheduler.runDue();
    await eventually(async () => (running === lanes ? true : undefined), `${lanes} jobs running`);
    // No lane more, however long they take.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect([running, most]).toEqual([lanes, lanes]);
    open();
    await run;
    expect([done, most, await scheduler.pending('test.lanes')]).toEqual([jobs, lanes, 0]);
  });
});
