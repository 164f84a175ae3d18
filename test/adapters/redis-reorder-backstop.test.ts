import { expect, it } from 'vitest';
import { BACKSTOP_LOG_INTERVAL_MS } from '../../src/plugins/app/webhooks.ts';
import { REORDER_BACKSTOP_JOB, RETRY_JOB } from '../../src/webhooks/dispatcher.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { withRedisServer } from '../helpers/redis.ts';
import { eventually, startReceiver, type Receiver } from '../helpers/receiver.ts';

/*
 * Two apps on one Redis prefix: one holds webhook deliveries for a `reorder` rule and stops (its
 * clock never moves again, as a process killed with kill -9 leaves its hold), the other's scheduler
 * runs their backstops once the window and a lease have passed, sends them, and says so in one line.
 */
withRedisServer('a dead replica’s reorder hold on Redis', (server) => {
  const LINE = "webhooks: queued 2 webhook deliveries held for reordering whose release never came (the replica holding them stopped or stalled, or could not reach Redis at the window's end): sent unshuffled";
  const backstopLines = (logs: Array<Record<string, unknown>>) => logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('held for reordering')).map((l) => [l.level, l.msg, l.deliveries]);

  /**
   * Runs `check` with two deliveries held by a replica whose clock then stops, and the other
   * replica (its logs in `logs`) past their window and lease, once both are sent; closes both after.
   */
  async function heldByAStoppedReplica(check: (other: TestApp, logs: Array<Record<string, unknown>>, rx: Receiver, held: string[]) => Promise<void>): Promise<void> {
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
    let other: TestApp | undefined;
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
      const held = (await holding.app.webhooks.log.list({ limit: 10 })).data.map((d) => d.eventId);
      expect(await holding.app.core.scheduler.pending(REORDER_BACKSTOP_JOB)).toBe(2);

      other = await buildTestApp(env, { logs, clockStart: holding.clock.now() });
      // Past the window and the lease on the other's clock: its scheduler runs both backstops in one run.
      await other.clock.advance(61_100);
      const running = other;
      await eventually(async () => {
        await running.clock.advance(10);
        return rx.requests.length === 2 ? true : undefined;
      }, 'the 2 sent');
      await check(other, logs, rx, held);
    } finally {
      await other?.app.close();
      // Its drain releases what it held: found sent, nothing goes out again.
      await holding.app.close();
      await rx.close();
    }
    expect(rx.requests).toHaveLength(2);
  }

  it('the replica that runs the backstops sends the held deliveries once, with their event ids, and logs one info line with their count (2026-12-06, a review: nothing was logged)', async () => {
    await heldByAStoppedReplica(async (other, logs, rx, held) => {
      // One line for both, at the end of the second that began with the first.
      await other.clock.advance(BACKSTOP_LOG_INTERVAL_MS);
      expect(backstopLines(logs)).toEqual([['info', LINE, 2]]);
      expect(rx.requests.map((r) => String(r.headers['webhook-id'])).sort()).toEqual([...held].sort());
      await eventually(async () => ((await other.app.webhooks.log.list({ limit: 10, status: 'delivered' })).data.length === 2 ? true : undefined), 'both logged delivered');
      expect(await other.app.core.scheduler.pending(REORDER_BACKSTOP_JOB, RETRY_JOB)).toBe(0);
    });
  });

  it('a replica that closes before the line’s second has ended logs it at its close', async () => {
    await heldByAStoppedReplica(async (other, logs) => {
      await other.app.close();
      expect(backstopLines(logs)).toEqual([['info', LINE, 2]]);
    });
  });
});
