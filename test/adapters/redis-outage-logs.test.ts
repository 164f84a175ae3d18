import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../src/core/events.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { eventually, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';

/*
 * What an app on a real redis-server logs of a Redis restart from the loops that call Redis on their
 * own: the webhook dispatcher, the FluxPay outbox relay and the outbound event stream. Redis
 * unavailable is told without a stack: the dispatcher's and the relay's failures (retried, handed
 * back or taken over once Redis is back) in one warning per 10 s with the count, as the
 * scheduler's, the event stream's lost events in one error line when appending fails and one with
 * the outage's count when it works again. Before 2026-12-07 each was an error line with a stack (a
 * 3.5 s restart under a light load: 14 and 15 a replica).
 */

type Line = Record<string, unknown>;

/** Redis' or ioredis' words for a connection lost or given up on (`unavailableReason`). */
const REDIS_GONE = /Redis at redis:\/\/127\.0\.0\.1:\d+ did not take the command|Reached the max retries per request limit|Connection is closed|ECONNREFUSED|ECONNRESET/;

/** The warn and error lines whose message starts with `prefix`, in order, without their time and service. */
function linesOf(logs: Line[], prefix: string): Line[] {
  return logs.filter((l) => (l.level === 'warn' || l.level === 'error') && String(l.msg).startsWith(prefix)).map(({ time: _time, service: _service, ...rest }) => rest);
}

if (redisServerOrSkip('the log of a Redis outage'))
  describe('the log of a Redis outage (a real redis-server, stopped and started again)', () => {
    let server: RedisServerProcess;
    let receiver: Receiver | undefined;
    let apps = 0;
    const open: TestApp[] = [];
    beforeAll(async () => {
      server = await startRedisServer({ appendOnly: true });
    });
    afterEach(async () => {
      for (const t of open.splice(0)) await t.app.close();
      await receiver?.close();
      receiver = undefined;
      // Running again for the next test, whatever this one left.
      if (server.child.exitCode !== null || server.child.signalCode !== null) await server.resume();
    });
    afterAll(async () => {
      await server.stop();
    });

    async function app(logs: Line[], env: Record<string, string> = {}): Promise<TestApp> {
      const t = await buildTestApp({ STORE: 'redis', REDIS_URL: server.url, REDIS_KEY_PREFIX: `outage:${++apps}:`, SCHEDULER_POLL_MS: '0', LOG_LEVEL: 'info', ...env }, { logs });
      open.push(t);
      return t;
    }

    /** Stops Redis, and waits until the app has seen it gone (`/readyz`'s cause). */
    async function stopRedis(t: TestApp): Promise<void> {
      await server.pause();
      await eventually(() => t.app.storeUnavailable(), 'the outage seen', 10_000);
    }

    async function closed(t: TestApp): Promise<void> {
      open.splice(open.indexOf(t), 1);
      await t.app.close();
    }

    it("the webhook dispatcher: its stream's reader, an attempt's record and its hand-back failing for want of Redis are one warning without a stack, the failures held back told at the close with their count, and the delivery sent again once Redis is back (before: an error line with a stack each)", { timeout: 30_000 }, async () => {
      const logs: Line[] = [];
      // A receiver that never answers; its `held` falls back to 0 when an attempt gives up (its connection closed).
      const rx = await startReceiver(() => ({ hang: true }));
      receiver = rx;
      const { requests } = rx;
      const t = await app(logs, { WEBHOOK_TIMEOUT_MS: '1500', WEBHOOK_CLAIM_IDLE_MS: '30000' });
      const url = rx.url('/hook');
      const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_outage', amount: 1000, scenario: 'approve', webhook_url: url } });
      expect(created.statusCode).toBe(200);
      await t.clock.advance(t.config.scenarios.approveDelayMs);
      // Its attempt in flight: Redis goes away before it times out.
      await eventually(() => (requests.length === 1 ? true : undefined), 'the attempt sent');
      await stopRedis(t);
      // The attempt times out; its record fails, and so does the hand-back of its stream entry.
      await eventually(() => (rx.held === 0 ? true : undefined), 'the attempt timed out');
      await server.resume();
      // The hand-back, tried again, is taken: the delivery is sent again.
      await eventually(() => (requests.length === 2 ? true : undefined), 'the delivery sent again', 10_000);
      await closed(t);
      const reason = { redis_error: expect.stringMatching(REDIS_GONE) };
      expect(linesOf(logs, 'webhooks:')).toEqual([
        { level: 'warn', failed: 1, ...reason, msg: 'webhooks: reading the webhook delivery stream failed: the store is unavailable' },
        { level: 'warn', failed: 2, ...reason, msg: 'webhooks: 2 more store calls of the webhook dispatcher failed since the last line: the store is unavailable; each is tried again, or its delivery taken over, once it is back' },
      ]);
    });

    it("the webhook dispatcher: a store call that fails for want of Redis as the app closes (the hand-back of the entry its aborted attempt held) is told in the close's line with the count, not left to the throttle's timer, which the exit never runs (rev79a: counted after the close's line)", { timeout: 30_000 }, async () => {
      const logs: Line[] = [];
      // A receiver that never answers: the attempt is still in flight when the app closes.
      const rx = await startReceiver(() => ({ hang: true }));
      receiver = rx;
      const t = await app(logs, { WEBHOOK_TIMEOUT_MS: '60000' });
      const url = rx.url('/hook');
      const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_close', amount: 1000, scenario: 'approve', webhook_url: url } });
      expect(created.statusCode).toBe(200);
      await t.clock.advance(t.config.scenarios.approveDelayMs);
      await eventually(() => (rx.requests.length === 1 ? true : undefined), 'the attempt sent');
      await stopRedis(t);
      // The stream's reader fails first (the interval's line); the close's failures come after it.
      await eventually(() => (linesOf(logs, 'webhooks:').length === 1 ? true : undefined), 'the reader failed');
      await closed(t);
      const reason = { redis_error: expect.stringMatching(REDIS_GONE) };
      expect(linesOf(logs, 'webhooks:')).toEqual([
        { level: 'warn', failed: 1, ...reason, msg: 'webhooks: reading the webhook delivery stream failed: the store is unavailable' },
        { level: 'warn', failed: expect.any(Number), ...reason, msg: expect.stringMatching(/^webhooks: \d+ more store calls? of the webhook dispatcher failed since the last line: the store is unavailable; each is tried again, or its delivery taken over, once it is back$/) },
      ]);
    });

    it('the FluxPay outbox relay: a read of the outbox that fails for want of Redis is one warning without a stack (before: an error line with a stack)', { timeout: 30_000 }, async () => {
      const logs: Line[] = [];
      const t = await app(logs);
      await stopRedis(t);
      await t.app.fluxpay.relay.run();
      await server.resume();
      await eventually(() => (t.app.storeUnavailable() === undefined ? true : undefined), 'Redis back', 10_000);
      await closed(t);
      expect(linesOf(logs, 'fluxpay:')).toEqual([{ level: 'warn', failed: 1, redis_error: expect.stringMatching(REDIS_GONE), msg: 'fluxpay: publishing the outbox failed: the store is unavailable; it will be retried' }]);
    });

    it("the connection, the scheduler, the namespaces' sync, the store sweep and /metrics: each outage line says Redis' words (redis_error), without a stack, as the loops' lines (before 2026-12-08: err, its stack)", { timeout: 30_000 }, async () => {
      const logs: Line[] = [];
      const t = await app(logs, { SCHEDULER_POLL_MS: '1000' });
      await stopRedis(t);
      // The scheduler's poll, on the app's clock: its claim fails.
      await t.clock.advance(1000);
      await eventually(() => (linesOf(logs, 'due work').length === 1 ? true : undefined), 'the claim failed');
      // The namespaces' sync, every second of real time.
      await eventually(() => (linesOf(logs, 'the shared list').length === 1 ? true : undefined), 'the sync failed', 5000);
      const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      // The store sweep, every 60 s of the app's clock.
      await t.clock.advance(59_000);
      await eventually(() => (linesOf(logs, 'store sweep').length === 1 ? true : undefined), 'the sweep failed');
      await server.resume();
      await eventually(() => (t.app.storeUnavailable() === undefined ? true : undefined), 'Redis back', 10_000);
      await closed(t);
      const reason = { redis_error: expect.stringMatching(REDIS_GONE) };
      expect(linesOf(logs, 'Redis is')).toEqual([
        { level: 'warn', redis_error: 'the connection closed', redis: server.url, msg: 'Redis is unreachable: store calls answer 503 STORE_UNAVAILABLE until it is back; reconnecting' },
      ]);
      expect(linesOf(logs, 'due work')[0]).toEqual({ level: 'warn', failed: 1, ...reason, msg: 'due work could not be claimed from the store; trying again' });
      expect(linesOf(logs, 'the shared list')).toEqual([{ level: 'warn', ...reason, msg: 'the shared list of namespaces could not be read; trying again' }]);
      expect(linesOf(logs, 'metrics:')).toEqual([{ level: 'error', ...reason, msg: 'metrics: a store could not be read; its metrics keep their last values until it can' }]);
      expect(linesOf(logs, 'store sweep')).toEqual([{ level: 'error', failed: 11, of: 11, ...reason, msg: 'store sweep failed' }]);
      // No line of the outage carries a stack.
      expect(logs.filter((l) => l.err !== undefined)).toEqual([]);
    });

    it('the event stream: events not appended for want of Redis are one error line saying how many and why, without a stack, and one with the whole count once appending works again (before: an error line with a stack)', { timeout: 30_000 }, async () => {
      const logs: Line[] = [];
      const t = await app(logs);
      const publish = (id: string): void => t.app.core.bus.publish({ id, type: 'booking.event_processed', occurredAt: t.clock.now(), event: { id } } as unknown as DomainEvent);
      await stopRedis(t);
      // Three in one turn (one append), then two more while it still fails.
      for (const id of ['evt_1', 'evt_2', 'evt_3']) publish(id);
      await eventually(() => (linesOf(logs, 'event stream:').length === 1 ? true : undefined), 'the first append failed');
      for (const id of ['evt_4', 'evt_5']) publish(id);
      await eventually(async () => ((await t.app.metrics.registry.getSingleMetric('event_stream_missed_events')?.get())?.values[0]?.value === 5 ? true : undefined), 'the second append failed');
      await server.resume();
      await eventually(() => (t.app.storeUnavailable() === undefined ? true : undefined), 'Redis back', 10_000);
      publish('evt_after');
      // Appended (the stream holds it alone): the close tells the outage over at once (else after 10 s of appends that work).
      await eventually(async () => ((await t.app.redis?.xlen(`${t.config.redis.keyPrefix}events`)) === 1 ? true : undefined), 'the append after the outage');
      await closed(t);
      expect(linesOf(logs, 'event stream:')).toEqual([
        {
          level: 'error',
          missed_events: 3,
          redis_error: expect.stringMatching(REDIS_GONE),
          msg: 'event stream: 3 event(s) could not be appended: Redis is unreachable or refuses writes; the events published until appending works again are not in the stream either (event_stream_missed_events counts them; the count is told when it works again)',
        },
        {
          level: 'error',
          missed_events: 5,
          uncertain_events: 0,
          msg: 'event stream: appending works again; 5 event(s) published while Redis was unreachable or refused writes are not in the stream (event_stream_missed_events counts them)',
        },
      ]);
    });
  });
