import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { eventually, startReceiver } from '../helpers/receiver.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';

/*
 * SIGTERM's drain with a store shared by several replicas: the pending decisions and /api/v2
 * payments it waits for (up to its budget) are every replica's, due work on the shared scheduler
 * that whichever replica runs (or the next start) makes. Before 2026-12-03 what was left when the
 * budget ran out was a warning, as if lost, about work that was often another replica's.
 */

if (redisServerOrSkip('the drain on a shared store')) describe('the drain on a shared store (Redis)', () => {
  let server: RedisServerProcess;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });
  // The scheduler polls the shared store (as on Redis by default; the test runs on Redis set it to 0).
  const SHARED = (): Record<string, string> => ({ STORE: 'redis', REDIS_URL: server.url, SCHEDULER_POLL_MS: '50' });

  it('waits for the shared scheduler’s pending decisions that come due within its budget, whichever replica makes them', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-wait:' };
    const other = await buildTestApp(env, { clockStart: Date.now() });
    const draining = await buildTestApp(env, { logs, clockStart: Date.now() });
    try {
      // Another replica's intent, due in 300 ms of real time: the draining replica's scheduler (it
      // polls the shared store) makes it while it drains; the drain waits for it.
      const made = await other.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-wait', amount: 100, scenario: 'delay', delay_ms: 300 } });
      expect(made.statusCode).toBe(200);
      const drained = draining.app.lifecycle.drain(10_000);
      await eventually(async () => {
        await draining.clock.advance(Math.max(0, Date.now() - draining.clock.now()));
        return (await other.app.core.intents.pendingDecisions()) === 0 ? true : undefined;
      }, 'the decision made');
      await drained;
      expect(logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('intent')).map((l) => [l.level, l.msg])).toEqual([['info', 'shutdown: every pending intent was decided']]);
      expect((await other.app.inject({ url: `/v1/sim/intents/${made.json().payment_intent_id as string}` })).json().status).toBe('APPROVED');
    } finally {
      await draining.app.close();
      await other.app.close();
    }
  });

  /*
   * A rolling restart under load (a helper's, 2026-12-03): the replica read the delivery stream on
   * through its drain's first phase, which waits for every replica's pending intents and so took
   * the whole budget; the close then cut the attempts it had just begun, each sent twice.
   */
  it('takes no delivery from the shared stream once its drain has begun: a webhook queued meanwhile is sent by the next replica to read it', async () => {
    const rx = await startReceiver();
    // An intent due in ten minutes keeps the producers' phase busy for the whole budget.
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-stream:', DEFAULT_APPROVE_DELAY_MS: '0', DEFAULT_DELAY_DELAY_MS: '600000' };
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    let next: Awaited<ReturnType<typeof buildTestApp>> | undefined;
    try {
      expect((await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-busy', amount: 100, scenario: 'delay' } })).statusCode).toBe(200);
      const drained = draining.app.lifecycle.drain(1_500);
      // Decided at once on the draining replica: its webhook goes to the shared stream.
      const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-late', amount: 100, webhook_url: rx.url() } });
      expect(made.statusCode).toBe(200);
      const id = made.json().payment_intent_id as string;
      await eventually(async () => {
        await draining.clock.advance(10);
        return (await draining.app.inject({ url: `/v1/sim/intents/${id}` })).json().status === 'APPROVED' ? true : undefined;
      }, 'the decision');
      await drained;
      await draining.app.close();
      expect(rx.requests).toEqual([]);
      // Nothing lost: the next replica to read the stream sends it.
      next = await buildTestApp(env, { clockStart: Date.now() });
      const [received] = await rx.waitFor(1);
      expect(JSON.parse(received!.body)).toMatchObject({ type: 'payment.approved', payment_intent_id: id });
    } finally {
      await draining.app.close();
      await next?.app.close();
      await rx.close();
    }
  });

  it('claims no due work once its producers have drained: what comes due then is the other replicas’ at once, not after a lease', async () => {
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-quiet:', DEFAULT_APPROVE_DELAY_MS: '0' };
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    const other = await buildTestApp(env, { clockStart: Date.now() });
    // The other replica's clock stands still until the draining one has closed.
    try {
      await draining.app.lifecycle.drain(300);
      // A request the draining replica still answers: its decision comes due at once.
      const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-quiet', amount: 100 } });
      expect(made.statusCode).toBe(200);
      await draining.clock.advance(1_000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await draining.app.core.stores.scheduler.count('intent.decide')).toBe(1);
      await draining.app.close();
      // Not claimed, so no lease to wait out: the other replica's next poll decides it.
      await eventually(async () => {
        await other.clock.advance(100);
        return (await other.app.core.intents.pendingDecisions()) === 0 ? true : undefined;
      }, 'the other replica to decide it', 3_000);
      expect((await other.app.inject({ url: `/v1/sim/intents/${made.json().payment_intent_id as string}` })).json().status).toBe('APPROVED');
    } finally {
      await draining.app.close();
      await other.app.close();
    }
  });

  it('says what is left on the shared scheduler when its budget runs out, at info: nothing is lost', async () => {
    const logs: Array<Record<string, unknown>> = [];
    // Decisions due in ten minutes; booking payments answered at once, their results processed ten minutes later.
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain:', DEFAULT_DELAY_DELAY_MS: '600000', EVENT_PROCESSING_DELAY_MS: '600000', MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' };
    const other = await buildTestApp(env);
    const draining = await buildTestApp(env, { logs });
    // Answered once its payment is decided, ten minutes on: not awaited (the app's close ends it).
    const v2 = other.app
      .inject({ method: 'POST', url: '/api/v2/payments', headers: { 'x-sim-scenario': 'delay' }, payload: { tx_id: 'tx_drain', order_id: 1, user_id: 1, amount: 100, callback_url: 'http://127.0.0.1:9/unused' } })
      .catch(() => undefined);
    try {
      // Another replica's load: an intent, a v2 payment and a booking's payment result left pending.
      expect((await other.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-drain', amount: 100, scenario: 'delay' } })).statusCode).toBe(200);
      const booked = await other.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_drain' }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
      expect(booked.statusCode).toBe(201);
      const paid = other.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': 'user_drain' }, payload: { bookingId: booked.json().bookingId, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' } });
      await other.clock.advance(0);
      expect((await paid).statusCode).toBe(200);
      await eventually(async () => ((await other.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the v2 payment scheduled');

      await draining.app.lifecycle.drain(300);
      const shutdown = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown:'));
      // The producers drain side by side: their lines come in any order.
      expect(shutdown.map((l) => [l.level, l.msg, l.pending_intents ?? l.pending_v2_payments ?? l.unprocessed_events]).sort()).toEqual([
        ['info', 'shutdown: booking payments or events still unfinished when the drain budget ran out are left to the other replicas (or the next start)', 1],
        ['info', 'shutdown: every webhook delivery finished', undefined],
        ['info', 'shutdown: intents still pending when the drain budget ran out are left on the shared scheduler, for the other replicas (or the next start)', 1],
        ['info', 'shutdown: the FluxPay outbox is published', undefined],
        ['info', 'shutdown: v2 payments still undecided when the drain budget ran out are left on the shared scheduler, for the other replicas (or the next start)', 1],
      ]);
      expect(logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
      // Still there, for the other replica to decide.
      expect(await other.app.core.intents.pendingDecisions()).toBe(1);
    } finally {
      await draining.app.close();
      await other.app.close();
      await v2;
    }
  });
});
