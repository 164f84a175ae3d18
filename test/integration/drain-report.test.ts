import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { receiverPool } from '../helpers/receiver.ts';
import { createIntent } from '../helpers/webhooks.ts';

/*
 * What the drain's report says of the intents left undecided, and of the webhook deliveries left when its budget runs out: in memory
 * they are lost with the process (a warning, with their ids: at most 100, and says when there
 * were more); with Redis what the replica held goes back to the shared queue (info: nothing is lost).
 */

const rxs = receiverPool();
let t: TestApp | undefined;
afterEach(async () => {
  await rxs.closeAll();
  await t?.app.close();
  t = undefined;
});

describe('the drain report of unfinished webhook deliveries', () => {
  it('lists at most 100 ids and says so when there were more; in memory a warning, with Redis an info line: left to the other replicas', async () => {
    const rx = await rxs.start(() => ({ hang: true }));
    const logs: Array<Record<string, unknown>> = [];
    t = await buildTestApp({ WEBHOOK_CONCURRENCY: '1', WEBHOOK_TIMEOUT_MS: '30000', WEBHOOK_MAX_RPS: '0' }, { logs });
    const count = 101;
    for (let i = 0; i < count; i++) await createIntent(t, { reservation_id: `r-drain-${i}`, scenario: 'approve', webhook_url: rx.url() });
    await t.clock.advance(200);
    await rx.waitFor(1);
    await t.app.lifecycle.drain(200);
    const report = logs.find((l) => 'unfinished_deliveries' in l);
    const onRedis = process.env.PAYSIM_TEST_STORE === 'redis';
    // With Redis this replica holds what it has read: the one in flight and its read-ahead (2 × WEBHOOK_CONCURRENCY).
    const held = onRedis ? 3 : count;
    expect(report).toMatchObject({
      level: onRedis ? 'info' : 'warn',
      msg: onRedis ? 'shutdown: webhook deliveries this replica held are left to the other replicas (or the next start)' : 'shutdown: webhook deliveries still unfinished when the drain budget ran out',
      unfinished_deliveries: held,
    });
    expect(report?.delivery_ids).toHaveLength(Math.min(held, 100));
    expect(report?.delivery_ids_truncated).toBe(held > 100 ? true : undefined);
  });
});

describe('the drain report of undecided intents', () => {
  it('lists at most 100 of their ids and says so when there were more (before 2026-12-05 only their count); a warning, or with a shared scheduler (Redis) an info line: left on it', async () => {
    const logs: Array<Record<string, unknown>> = [];
    t = await buildTestApp({}, { logs });
    const made: string[] = [];
    for (let i = 0; i < 101; i++) made.push(await createIntent(t, { reservation_id: `r-undecided-${i}`, scenario: 'delay', delay_ms: 60_000 }));
    await t.app.lifecycle.drain(50);
    const report = logs.find((l) => 'pending_intents' in l);
    // The test apps on Redis poll no shared scheduler (SCHEDULER_POLL_MS=0): their decisions are their own, as in memory.
    const shared = t.app.core.scheduler.shared;
    expect(report).toMatchObject({
      level: shared ? 'info' : 'warn',
      msg: shared ? 'shutdown: intents still pending when the drain budget ran out are left on the shared scheduler, for the other replicas (or the next start)' : 'shutdown: intents still pending when the drain budget ran out',
      pending_intents: 101,
      intent_ids_truncated: true,
    });
    const ids = report?.intent_ids as string[];
    expect([ids.length, new Set(ids).size, ids.every((id) => made.includes(id))]).toEqual([100, 100, true]);
  });
});
