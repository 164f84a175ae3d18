import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.ts';
import { eventually } from '../helpers/receiver.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';

/*
 * SIGTERM's drain with a store shared by several replicas: the pending decisions, v2 payments and
 * booking events are due work on the shared scheduler, made by whichever replica runs when they
 * are due. Before 2026-12-03 the drain waited for the shared count to reach 0, so a replica that
 * took no load at all waited its whole budget (20 s in the Kubernetes example) while the others
 * kept creating intents, and warned about intents that were not its own.
 */

if (redisServerOrSkip('the drain on a shared store')) describe('the drain on a shared store (Redis)', () => {
  let server: RedisServerProcess;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('does not wait for the shared scheduler’s pending decisions: it says they are left for the other replicas (or the next start)', async () => {
    const logs: Array<Record<string, unknown>> = [];
    // Decisions due in ten minutes; booking payments answered at once, their results processed ten minutes later.
    const env = { STORE: 'redis', REDIS_URL: server.url, REDIS_KEY_PREFIX: 'drain:', DEFAULT_DELAY_DELAY_MS: '600000', EVENT_PROCESSING_DELAY_MS: '600000', MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' };
    const other = await buildTestApp(env);
    const draining = await buildTestApp(env, { logs });
    // Answered once its payment is decided, ten minutes on: not awaited (the app's close ends it).
    const v2 = other.app.inject({ method: 'POST', url: '/api/v2/payments', headers: { 'x-sim-scenario': 'delay' }, payload: { tx_id: 'tx_drain', order_id: 1, user_id: 1, amount: 100, callback_url: 'http://127.0.0.1:9/unused' } }).catch(() => undefined);
    try {
      // Another replica's load: an intent, a v2 payment and a booking payment left pending.
      expect((await other.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-drain', amount: 100, scenario: 'delay' } })).statusCode).toBe(200);
      const booked = await other.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_drain' }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
      expect(booked.statusCode).toBe(201);
      const paid = other.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': 'user_drain' }, payload: { bookingId: booked.json().bookingId, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' } });
      await other.clock.advance(0);
      expect((await paid).statusCode).toBe(200);
      await eventually(async () => ((await other.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the v2 payment scheduled');

      // A budget the test's own timeout (20 s) is far shorter than: waiting for them would fail it.
      await draining.app.lifecycle.drain(600_000);
      const shutdown = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown:'));
      // The producers drain side by side: their lines come in any order.
      expect(shutdown.map((l) => [l.level, l.msg, l.pending_intents ?? l.pending_v2_payments ?? l.unprocessed_events]).sort()).toEqual([
        ['info', 'shutdown: booking payments or events still unfinished are left on the shared scheduler, for the other replicas (or the next start)', 1],
        ['info', 'shutdown: every webhook delivery finished', undefined],
        ['info', 'shutdown: intents still pending are left on the shared scheduler, for the other replicas (or the next start)', 1],
        ['info', 'shutdown: the FluxPay outbox is published', undefined],
        ['info', 'shutdown: v2 payments still undecided are left on the shared scheduler, for the other replicas (or the next start)', 1],
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
