import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import type { DomainEvent } from '../../src/core/events.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/*
 * A subscriber whose durable part fails because the store is unavailable (Redis away, or full and
 * refusing writes) fails for every event published meanwhile: before 2026-12-03 that was an error
 * line each, thousands a second under load. Now one line per 10 s with the count since; any other
 * failure is still a line each.
 */
describe('event subscribers failing for want of the store', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.app.close();
    t = undefined;
  });

  it('are logged once per 10 s with their count, the first with its event; other failures each time', async () => {
    const logs: Array<Record<string, unknown>> = [];
    t = await buildTestApp({ SCHEDULER_POLL_MS: '0' }, { logs });
    const { bus } = t.app.core;
    let failure: Error = new StoreUnavailableError();
    bus.subscribe(() => Promise.reject(failure));
    const publish = (n: number): DomainEvent => ({ id: `evt_sub_${n}`, type: 'waiting_room.changed', occurredAt: t!.clock.now(), roomId: 'room_1' });
    const failures = (): Array<[unknown, unknown, unknown, unknown]> =>
      logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('event subscriber failed')).map((l) => [l.level, l.msg, l.event_id, l.failed]);

    for (let i = 1; i <= 5; i++) bus.publish(publish(i));
    await tick();
    expect(failures()).toEqual([['error', 'event subscriber failed: the store is unavailable', 'evt_sub_1', 1]]);

    failure = new Error('a bug');
    bus.publish(publish(6));
    await tick();
    expect(failures().at(-1)).toEqual(['error', 'event subscriber failed', 'evt_sub_6', undefined]);

    failure = new StoreUnavailableError();
    await t.clock.advance(9_999);
    bus.publish(publish(7));
    await tick();
    expect(failures()).toHaveLength(2);
    await t.clock.advance(1);
    bus.publish(publish(8));
    await tick();
    // The four after the first line, the one at 9,999 ms and this one.
    expect(failures().at(-1)).toEqual(['error', 'event subscriber failed: the store is unavailable', 'evt_sub_8', 6]);
  });
});
