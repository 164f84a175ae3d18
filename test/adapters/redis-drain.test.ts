import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { eventually } from '../helpers/receiver.ts';
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

  it('says what is left on the shared scheduler when its budget runs out, at info: nothing is lost', async () => {
    const logs: Array<Record<string, unknown>> = [];
    // Decisions due in ten minutes.
    const env = { STORE: 'redis', REDIS_URL: server.url, REDIS_KEY_PREFIX: 'drain:', DEFAULT_DELAY_DELAY_MS: '600000' };
    const other = await buildTestApp(env);
    const draining = await buildTestApp(env, { logs });
    // Answered once its payment is decided, ten minutes on: not awaited (the app's close ends it).
    const v2 = other.app
      .inject({ method: 'POST', url: '/api/v2/payments', headers: { 'x-sim-scenario': 'delay' }, payload: { tx_id: 'tx_drain', order_id: 1, user_id: 1, amount: 100, callback_url: 'http://127.0.0.1:9/unused' } })
      .catch(() => undefined);
    try {
      // Another replica's load: an intent and a v2 payment left pending.
      expect((await other.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-drain', amount: 100, scenario: 'delay' } })).statusCode).toBe(200);
      await eventually(async () => ((await other.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the v2 payment scheduled');

      await draining.app.lifecycle.drain(300);
      const shutdown = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown:'));
      // The producers drain side by side: their lines come in any order.
      expect(shutdown.map((l) => [l.level, l.msg, l.pending_intents ?? l.pending_v2_payments]).sort()).toEqual([
        ['info', 'shutdown: every booking payment and inbox event was processed', undefined],
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
