import { expect, it } from 'vitest';
import { BACKSTOP_LOG_INTERVAL_MS } from '../../src/plugins/app/webhooks.ts';
import { REORDER_BACKSTOP_JOB, RETRY_JOB } from '../../src/webhooks/dispatcher.ts';
import { buildTestApp } from '../helpers/app.ts';
import { withRedisServer } from '../helpers/redis.ts';
import { eventually, startReceiver } from '../helpers/receiver.ts';

/*
 * Two apps on one Redis prefix: one holds webhook deliveries for a `reorder` rule and stops (its
 * clock never moves again, as a process killed with kill -9 leaves its hold), the other's scheduler
 * runs their backstops once the window and a lease have passed, sends them, and says so in one line.
 */
withRedisServer('a dead replica’s reorder hold on Redis', (server) => {
  it('the replica that runs the backstops sends the held deliveries once, with their event ids, and logs one info line with their count (2026-12-06, a review: nothing was logged)', async () => {
    const rx = await startReceiver();
    const env = {
      STORE: 'redis',
      REDIS_URL: server().url,
      REDIS_KEY_PREFIX: server().newPrefix(),
      SCHEDULER_POLL_MS: '50',
      SCHEDULER_LEASE_MS: '1000',
      WEBHOOK_MAX_RPS: '0',
      DEFAULT_APPROVE_DELAY_MS: '0',
    };
    const holding = await buildTestApp(env, { clockStart: Date.now() });
    const logs: Array<Record<string, unknown>> = [];
    let other: Awaited<ReturnType<typeof buildTestApp>> | undefined;
    try {
      const rule = await holding.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match: { url_prefix: rx.url() }, action: { type: 'reorder', window_ms: 60_000 } } });
      expect(rule.statusCode, rule.body).toBe(201);
      for (let i = 0; i < 2; i++) {
        const made = await holding.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-backstop-${i}`, amount: 100, webhook_url: rx.url() } });
        expect(made.statusCode, made.body).toBe(200);
      }
      // Decided, their webhooks held: retrying, never attempted, a backstop each. Its clock stops here.
      await eventually(async () => {
        await holding.clock.advance(10);
        return (await holding.app.webhooks.log.list({ limit: 10, status: 'retrying' })).data.length === 2 ? true : undefined;
      }, 'the 2 held');
      const held = (await holding.app.webhooks.log.list({ limit: 10 })).data;
      expect(await holding.app.core.scheduler.pending(REORDER_BACKSTOP_JOB)).toBe(2);

      other = await buildTestApp(env, { logs, clockStart: holding.clock.now() });
      const backstopLines = () => logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('held for reordering'));
      // Past the window and the lease on the other's clock: its scheduler runs both backstops in one run.
      await other.clock.advance(61_100);
      await eventually(async () => {
        await other!.clock.advance(10);
        return rx.requests.length === 2 ? true : undefined;
      }, 'the 2 sent');
      expect(backstopLines()).toEqual([]);
      await other.clock.advance(BACKSTOP_LOG_INTERVAL_MS);
      expect(backstopLines().map((l) => [l.level, l.msg, l.deliveries])).toEqual([
        ['info', 'webhooks: queued 2 webhook deliveries another replica held for reordering past its window and SCHEDULER_LEASE_MS (it stopped or stalled): sent unshuffled', 2],
      ]);
      const sent = rx.requests.map((r) => String(r.headers['webhook-id']));
      expect([...sent].sort()).toEqual(held.map((d) => d.eventId).sort());
      await eventually(async () => ((await other!.app.webhooks.log.list({ limit: 10, status: 'delivered' })).data.length === 2 ? true : undefined), 'both logged delivered');
      expect(await other.app.core.scheduler.pending(REORDER_BACKSTOP_JOB, RETRY_JOB)).toBe(0);
    } finally {
      await other?.app.close();
      // Its drain releases what it held: found sent, nothing goes out again.
      await holding.app.close();
      await rx.close();
    }
    expect(rx.requests).toHaveLength(2);
  });
});
