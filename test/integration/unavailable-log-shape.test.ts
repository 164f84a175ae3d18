import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisNotServingError } from '../../src/adapters/redis/unavailable.ts';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import type { DomainEvent } from '../../src/core/events.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/*
 * The core's lines of an outage (the scheduler's, the bus's) in the shape of every other line of
 * one: Redis' words (`redis_error`: the message, and the cause's of a RedisNotServingError that
 * wraps one), no stack; any other error keeps its stack (`err`). Before 2026-12-08 they carried
 * `err`, so one outage's log had two shapes. The store's failures are stood in here; the real
 * outage is test/adapters/redis-outage-logs.test.ts.
 */

type Line = Record<string, unknown>;

/** A guarded store's call given up on while Redis was away, as the guard rejects it. */
function unavailable(): StoreUnavailableError {
  const ioredis = new Error('Reached the max retries per request limit (which is 2). Refer to "maxRetriesPerRequest" option for details.');
  return new StoreUnavailableError({ cause: new RedisNotServingError('Redis at redis://127.0.0.1:6379 did not take the command: not sent', { cause: ioredis }) });
}
const REASON = 'Redis at redis://127.0.0.1:6379 did not take the command: not sent: Reached the max retries per request limit (which is 2). Refer to "maxRetriesPerRequest" option for details.';

/** The lines whose message starts with `prefix`, without their time and service. */
function linesOf(logs: Line[], prefix: string): Line[] {
  return logs.filter((l) => String(l.msg).startsWith(prefix)).map(({ time: _time, service: _service, ...rest }) => rest);
}

describe('the core logs the store unavailable in Redis words, without a stack', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.app.close();
    t = undefined;
  });

  it("the bus: a subscriber's failure for want of the store is the throttled error line with redis_error; another failure keeps its err", async () => {
    const logs: Line[] = [];
    t = await buildTestApp({ SCHEDULER_POLL_MS: '0' }, { logs });
    let failure: Error = unavailable();
    t.app.core.bus.subscribe(() => Promise.reject(failure));
    const publish = (n: number): void => t!.app.core.bus.publish({ id: `evt_shape_${n}`, type: 'waiting_room.changed', occurredAt: t!.clock.now(), roomId: 'room_1' } as DomainEvent);
    publish(1);
    publish(2);
    await tick();
    failure = new Error('a bug');
    publish(3);
    await tick();
    expect(linesOf(logs, 'event subscriber failed')).toEqual([
      { level: 'error', event_id: 'evt_shape_1', event_type: 'waiting_room.changed', failed: 1, redis_error: REASON, msg: 'event subscriber failed: the store is unavailable' },
      { level: 'error', event_id: 'evt_shape_3', event_type: 'waiting_room.changed', err: expect.objectContaining({ message: 'a bug', stack: expect.stringContaining('Error: a bug') }), msg: 'event subscriber failed' },
    ]);
  });

  it('the scheduler: due work that fails for want of the store is the throttled warning with redis_error', async () => {
    const logs: Line[] = [];
    t = await buildTestApp({ SCHEDULER_POLL_MS: '0' }, { logs });
    const { scheduler } = t.app.core;
    scheduler.register('test.shape', () => Promise.reject(unavailable()));
    await scheduler.schedule('test.shape', 'k1', t.clock.now());
    await scheduler.runDue();
    expect(linesOf(logs, 'due work')).toEqual([{ level: 'warn', job_kind: 'test.shape', job_key: 'k1', failed: 1, redis_error: REASON, msg: 'due work could not be done: the store is unavailable; it will be retried' }]);
  });

  it("the scheduler: a run that cannot claim for want of the store is one warning per 10 s with redis_error and the count (the second run's held back); a run that fails otherwise (a bug) keeps its err, on a line of its own (before: one throttle held either back)", async () => {
    const logs: Line[] = [];
    t = await buildTestApp({ SCHEDULER_POLL_MS: '0' }, { logs });
    const { scheduler, stores } = t.app.core;
    let failure: Error = unavailable();
    stores.scheduler.claimDue = () => Promise.reject(failure);
    await scheduler.runDue();
    await scheduler.runDue();
    failure = new Error('a bug');
    await scheduler.runDue();
    await scheduler.runDue();
    expect(linesOf(logs, 'due work could not be claimed')).toEqual([
      { level: 'warn', failed: 1, redis_error: REASON, msg: 'due work could not be claimed from the store; trying again' },
      { level: 'warn', failed: 1, err: expect.objectContaining({ message: 'a bug', stack: expect.stringContaining('Error: a bug') }), msg: 'due work could not be claimed from the store; trying again' },
    ]);
  });

  it("the scheduler: the failed claims held back after the outage's last line are told with their count once it ends (here the close), not carried into the next outage's first line (by hand: a second outage's first line said failed 18)", async () => {
    const logs: Line[] = [];
    t = await buildTestApp({ SCHEDULER_POLL_MS: '0' }, { logs });
    const { scheduler, stores } = t.app.core;
    stores.scheduler.claimDue = () => Promise.reject(unavailable());
    await scheduler.runDue();
    await scheduler.runDue();
    await scheduler.runDue();
    await t.app.close();
    t = undefined;
    expect(linesOf(logs, 'due work could not be claimed')).toEqual([
      { level: 'warn', failed: 1, redis_error: REASON, msg: 'due work could not be claimed from the store; trying again' },
      { level: 'warn', failed: 2, redis_error: REASON, msg: 'due work could not be claimed from the store 2 more times since the last line: the store is unavailable; trying again' },
    ]);
  });
});
