import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { loadConfig } from '../../src/config.ts';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defineScript } from '../../src/adapters/redis/connection.ts';
import { DEFAULT_PERFORMANCES, type Performance } from '../../src/core/bookings/performances.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { paymentTransaction } from '../../src/core/ledger.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { RedisDeliveryLog } from '../../src/adapters/redis/deliveries.ts';
import { RedisDeliveryQueue } from '../../src/adapters/redis/delivery-queue.ts';
import type { Delivery } from '../../src/core/deliveries.ts';
import type { ClaimedJob } from '../../src/core/ports.ts';
import { RedisDisabledUrls } from '../../src/adapters/redis/disabled-urls.ts';
import { RedisIdempotencyStore } from '../../src/adapters/redis/idempotency.ts';
import { ENTRY_OVERHEAD_BYTES, MemoryIdempotencyStore } from '../../src/adapters/memory/idempotency.ts';
import { RedisIntentStore } from '../../src/adapters/redis/intents.ts';
import { REFUND_TOKENS } from '../../src/adapters/redis/intents-lua.ts';
import { createRedisStores } from '../../src/adapters/redis/index.ts';
import { RedisLedgerStore } from '../../src/adapters/redis/ledger.ts';
import { RedisRateLimitStore } from '../../src/adapters/redis/rate-limits.ts';
import { RedisSeatStore } from '../../src/adapters/redis/seats.ts';
import { RedisSchedulerStore } from '../../src/adapters/redis/scheduler.ts';
import { RedisV2PaymentStore } from '../../src/adapters/redis/v2-payments.ts';
import { sentTogetherTwice, sentTwice, type TestRedis, withRedisServer } from '../helpers/redis.ts';
import { deliveryLogContract } from './contracts/deliveries.contract.ts';
import { deliveryQueueContract } from './contracts/delivery-queue.contract.ts';
import { disabledUrlStoreContract } from './contracts/disabled-urls.contract.ts';
import { idempotencyStoreContract } from './contracts/idempotency.contract.ts';
import { intentStoreContract } from './contracts/intents.contract.ts';
import { ledgerStoreContract } from './contracts/ledger.contract.ts';
import { seatStoreContract } from './contracts/seats.contract.ts';
import { schedulerStoreContract } from './contracts/scheduler.contract.ts';
import { aDelivery, anIntent, aV2Payment, DAY, HOUR, T0 } from './contracts/fixtures.ts';

/**
 * The shared port contracts against the Redis adapters, on a private redis-server this file starts
 * (test/helpers/redis.ts). Every store a suite makes gets a key prefix of its own, so tests never
 * see each other's keys. Skipped without redis-server locally; in CI its absence fails.
 */

/** A begin that started its request, with its claim. */
const STARTED = { kind: 'started', claim: expect.any(String) as unknown };

withRedisServer('Redis adapters', (server) => {
  let redis: TestRedis;
  beforeAll(() => {
    redis = server();
  });

  intentStoreContract('redis', ({ ttlMs, maxIntents }) => new RedisIntentStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs, maxIntents }));
  idempotencyStoreContract('redis', ({ ttlMs, maxKeys }) => new RedisIdempotencyStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs, maxKeys, inFlightHoldMs: 2 * DAY }));
  deliveryLogContract('redis', ({ ttlMs, maxDeliveries }) => new RedisDeliveryLog(redis.client, { keyPrefix: redis.newPrefix(), ttlMs, maxDeliveries }));
  const queues: RedisDeliveryQueue[] = [];
  afterEach(async () => {
    for (const queue of queues.splice(0)) await queue.stop();
  });
  deliveryQueueContract('redis', async ({ maxDeliveries }) => {
    const keyPrefix = redis.newPrefix();
    const log = new RedisDeliveryLog(redis.client, { keyPrefix, ttlMs: 86_400_000, maxDeliveries });
    const queue = await RedisDeliveryQueue.create(redis.client, log, { keyPrefix, claimIdleMs: 30_000, readAhead: 100, onError: () => undefined });
    queues.push(queue);
    const handed: Delivery[] = [];
    queue.start((delivery, _origin, ticket) => {
      handed.push(delivery);
      void queue.ack(ticket as string);
    });
    return { queue, log, handed };
  });
  disabledUrlStoreContract('redis', ({ maxUrls }) => new RedisDisabledUrls(redis.client, { keyPrefix: redis.newPrefix(), maxUrls }));
  ledgerStoreContract('redis', () => new RedisLedgerStore(redis.client, { keyPrefix: redis.newPrefix() }));
  seatStoreContract('redis', (performances) => RedisSeatStore.create(redis.client, { keyPrefix: redis.newPrefix() }, performances));
  schedulerStoreContract('redis', () => new RedisSchedulerStore(redis.client, { keyPrefix: redis.newPrefix() }));

  it('RedisDisabledUrls: URLs disabled by a version that kept no order are placed first, oldest disabledAt first, by the next disable, and go first at the bound; so are an older replica’s changes made since', async () => {
    const keyPrefix = redis.newPrefix();
    const hash = `${keyPrefix}disabled-urls`;
    const sorted = async (store: RedisDisabledUrls) => (await store.list()).map((u) => u.url).sort();
    await redis.client.hset(hash, { 'http://x.test/': T0 + 5, 'http://y.test/': T0, 'http://z.test/': T0 + 9 });
    const store = new RedisDisabledUrls(redis.client, { keyPrefix, maxUrls: 4 });
    await store.disable('http://n1.test/', T0 + 100);
    expect(await sorted(store)).toEqual(['http://n1.test/', 'http://x.test/', 'http://y.test/', 'http://z.test/']);
    await store.disable('http://n2.test/', T0 + 101);
    expect(await store.isDisabled('http://y.test/')).toBe(false);
    expect(await redis.client.zrange(`${hash}:order`, '0', '-1')).toEqual(['http://x.test/', 'http://z.test/', 'http://n1.test/', 'http://n2.test/']);
    // An older replica enables x and disables w (the hash alone): w goes first, x leaves the order.
    await redis.client.hdel(hash, 'http://x.test/');
    await redis.client.hsetnx(hash, 'http://w.test/', T0 + 200);
    await store.disable('http://n3.test/', T0 + 300);
    expect(await sorted(store)).toEqual(['http://n1.test/', 'http://n2.test/', 'http://n3.test/', 'http://z.test/']);
    expect(await redis.client.zrange(`${hash}:order`, '0', '-1')).toEqual(['http://z.test/', 'http://n1.test/', 'http://n2.test/', 'http://n3.test/']);
  });

  it('a script Redis no longer knows (its script cache flushed, as by a restart) is loaded again by the call that needs it', async () => {
    const client = redis.connect();
    const script = defineScript(client, 'testEcho', `return {KEYS[1], ARGV[1], ARGV[2]}`);
    expect(await script(['k'], ['a', 7])).toEqual(['k', 'a', '7']);
    await client.script('FLUSH');
    const sha = createHash('sha1').update(`return {KEYS[1], ARGV[1], ARGV[2]}`).digest('hex');
    expect(await client.script('EXISTS', sha)).toEqual([0]);
    expect(await script(['k2'], ['b', 8])).toEqual(['k2', 'b', '8']);
    expect(await client.script('EXISTS', sha)).toEqual([1]);
    // A script that fails says why, as Redis put it.
    const failing = defineScript(client, 'testFail', `return redis.call('INCR', KEYS[1])`);
    const text = `${redis.newPrefix()}text`;
    await client.set(text, 'x');
    await expect(failing([text], [])).rejects.toThrow(/ERR value is not an integer/);
    client.disconnect();
  });

  it('RedisIntentStore: decisions sent together all fail when their one script run cannot reach Redis, and change nothing', async () => {
    const keyPrefix = redis.newPrefix();
    const options = { keyPrefix, ttlMs: 86_400_000, maxIntents: 1000 };
    const client = redis.connect();
    const store = new RedisIntentStore(client, options);
    const ids = createIdFactory(new ManualClock(T0));
    const intents = Array.from({ length: 3 }, () => ({
      id: ids('pay'), reservationId: 'res_1', amount: 100, currency: 'KRW', scenario: 'approve' as const, status: 'PENDING' as const, failureCode: null, refundedAmount: 0,
      delayMs: 200, webhookUrl: null, metadata: null, createdAt: T0, updatedAt: T0, decidedAt: null, planned: { status: 'APPROVED' as const, failureCode: null },
    }));
    for (const intent of intents) expect(await store.insert(intent)).toEqual({ ok: true });
    client.disconnect();
    const results = await Promise.allSettled(intents.map((intent) => store.decide(intent.id, T0 + 200)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/Connection is closed/);
    const again = new RedisIntentStore(redis.client, options);
    for (const intent of intents) expect(await again.get(intent.id)).toEqual(intent);
    expect(await again.decide((intents[0] as (typeof intents)[number]).id, T0 + 300)).toEqual({ ok: true, record: { ...intents[0], status: 'APPROVED', decidedAt: T0 + 300, updatedAt: T0 + 300 } });
  });

  /** An intent store with the scheduler's on a connection of its own and a key prefix of its own. */
  function scheduledIntents(): { keyPrefix: string; client: TestRedis['client']; store: RedisIntentStore } {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const scheduler = new RedisSchedulerStore(client, { keyPrefix });
    return { keyPrefix, client, store: new RedisIntentStore(client, { keyPrefix, ttlMs: 86_400_000, maxIntents: 100, scheduler }) };
  }

  it('RedisIntentStore: a refund or a cancel whose script the client sent twice (its reply lost, sent again after a reconnect) is applied once and answered alike; another call is a call of its own', async () => {
    const { keyPrefix, client, store } = scheduledIntents();
    const approved = anIntent({ amount: 1000, status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200 });
    const pending = anIntent({ amount: 1000 });
    await store.insert(approved);
    await store.insert(pending);
    const job = (key: string) => ({ kind: 'intent.refund_event', key, dueAt: T0 + 30_000 });

    const refund = await sentTwice(client, () => store.refundScheduled!(approved.id, 300, T0 + 300, job(approved.id)));
    expect(refund).toEqual({ kind: 'refunded', amount: 300, at: T0 + 300, intent: { ...approved, status: 'PARTIALLY_REFUNDED', refundedAmount: 300, updatedAt: T0 + 300 } });
    const plain = await sentTwice(client, () => store.refund(approved.id, undefined, T0 + 400));
    expect(plain).toEqual({ kind: 'refunded', amount: 700, at: T0 + 400, intent: { ...approved, status: 'REFUNDED', refundedAmount: 1000, updatedAt: T0 + 400 } });
    expect(await store.get(approved.id)).toMatchObject({ status: 'REFUNDED', refundedAmount: 1000 });
    expect((await redis.client.hkeys(`${keyPrefix}sched:jobs:intent.refund_event`)).sort()).toEqual([`${approved.id}/300/300/${T0 + 300}`]);
    // A second call of the same amount is its own call: refused, as nothing is left.
    expect(await store.refund(approved.id, 300, T0 + 500)).toMatchObject({ kind: 'invalid_state' });

    const cancel = await sentTwice(client, () => store.cancelScheduled!(pending.id, T0 + 600, { kind: 'intent.cancel_event', key: pending.id, dueAt: T0 + 30_600 }));
    expect(cancel).toEqual({ ok: true, record: { ...pending, status: 'CANCELLED', updatedAt: T0 + 600 } });
    // Another cancel (its own token) is refused.
    expect(await store.cancelScheduled!(pending.id, T0 + 600, { kind: 'intent.cancel_event', key: pending.id, dueAt: T0 + 30_600 })).toMatchObject({ ok: false, current: { status: 'CANCELLED' } });
    expect(await store.counts()).toMatchObject({ REFUNDED: 1, CANCELLED: 1, PENDING: 0 });
    client.disconnect();
  });

  it('RedisIntentStore: a refund sent again together with a claim of its backstop job (one dropped connection) leaves the job to run once', async () => {
    const { keyPrefix, client, store } = scheduledIntents();
    const scheduler = new RedisSchedulerStore(client, { keyPrefix });
    const approved = anIntent({ amount: 1000, status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200 });
    await store.insert(approved);
    const job = { kind: 'intent.refund_event', key: approved.id, dueAt: T0 + 1_000 };
    // Redis holds both scripts already, so both are sent (and run) in the order called.
    expect(await store.refundScheduled!('pay_none', 1, T0, job)).toEqual({ kind: 'not_found' });
    expect(await scheduler.claimDue(T0, 1, 1_000)).toEqual([]);
    const [refund, claimed] = await sentTogetherTwice<unknown>(client, [() => store.refundScheduled!(approved.id, 300, T0 + 300, job), () => scheduler.claimDue(T0 + 1_000, 10, 1_000)]);
    expect(refund).toEqual({ kind: 'refunded', amount: 300, at: T0 + 300, intent: { ...approved, status: 'PARTIALLY_REFUNDED', refundedAmount: 300, updatedAt: T0 + 300 } });
    expect((claimed as ClaimedJob[]).map((j) => [j.kind, j.key])).toEqual([['intent.refund_event', `${approved.id}/300/300/${T0 + 300}`]]);
    await scheduler.complete(claimed as ClaimedJob[]);
    // Ran and completed once: nothing left to claim, even after the lease.
    expect(await scheduler.count('intent.refund_event')).toBe(0);
    expect(await scheduler.claimDue(T0 + 5_000, 10, 1_000)).toEqual([]);
    client.disconnect();
  });

  it('RedisIntentStore: several refunds of one intent sent again together (a dropped connection with all of them waiting) each refund once and answer as their first run', async () => {
    const { keyPrefix, client, store } = scheduledIntents();
    const approved = anIntent({ amount: 1000, status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200 });
    await store.insert(approved);
    const job = (amount: number) => ({ kind: 'intent.refund_event', key: `${approved.id}:${amount}`, dueAt: T0 + 30_000 });
    const replies = await sentTogetherTwice(client, [
      () => store.refundScheduled!(approved.id, 300, T0 + 300, job(300)),
      () => store.refundScheduled!(approved.id, 200, T0 + 300, job(200)),
      () => store.refund(approved.id, 100, T0 + 300),
    ]);
    // Each answered with the intent as its own refund left it (the first run's answer).
    const after = (refunded: number) => ({ ...approved, status: 'PARTIALLY_REFUNDED', refundedAmount: refunded, updatedAt: T0 + 300 });
    expect(replies).toEqual([
      { kind: 'refunded', amount: 300, at: T0 + 300, intent: after(300) },
      { kind: 'refunded', amount: 200, at: T0 + 300, intent: after(500) },
      { kind: 'refunded', amount: 100, at: T0 + 300, intent: after(600) },
    ]);
    expect(await store.get(approved.id)).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 600 });
    // Each backstop job once, keyed by the total after its own refund.
    expect((await client.hkeys(`${keyPrefix}sched:jobs:intent.refund_event`)).sort()).toEqual([`${approved.id}:200/500/200/${T0 + 300}`, `${approved.id}:300/300/300/${T0 + 300}`]);
    // The tokens of the intent's last REFUND_TOKENS refunds are kept beside it, no more.
    expect(await client.llen(`${keyPrefix}int:rts:${approved.id}`)).toBe(3);
    for (let i = 0; i < REFUND_TOKENS + 5; i++) await store.refund(approved.id, 1, T0 + 400);
    expect(await client.llen(`${keyPrefix}int:rts:${approved.id}`)).toBe(REFUND_TOKENS);
    client.disconnect();
  });

  it('RedisIntentStore: a refund named by its caller (a keyed request) and made again later under that name answers the refund as made, at its own time; an entry kept before 2026-12-05 (no time) answers the call\'s', async () => {
    const { keyPrefix, client, store } = scheduledIntents();
    const approved = anIntent({ amount: 1000, status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200 });
    await store.insert(approved);
    const job = { kind: 'intent.refund_event', key: approved.id, dueAt: T0 + 30_000 };
    const first = { kind: 'refunded', amount: 300, at: T0 + 300, intent: { ...approved, status: 'PARTIALLY_REFUNDED', refundedAmount: 300, updatedAt: T0 + 300 } };
    expect(await store.refundScheduled!(approved.id, 300, T0 + 300, job, 'named-1')).toEqual(first);
    expect(await store.refund(approved.id, 100, T0 + 400)).toMatchObject({ kind: 'refunded', amount: 100 });
    // Its retry a minute later: the same refund, as it left the intent, and no second backstop job.
    expect(await store.refundScheduled!(approved.id, 300, T0 + 60_000, job, 'named-1')).toEqual(first);
    expect(await store.get(approved.id)).toMatchObject({ refundedAmount: 400 });
    expect(await client.hkeys(`${keyPrefix}sched:jobs:intent.refund_event`)).toEqual([`${approved.id}/300/300/${T0 + 300}`]);
    // An entry written by a version before 2026-12-05: 'token amount total'.
    await client.lpush(`${keyPrefix}int:rts:${approved.id}`, 'old-token 50 450');
    expect(await store.refund(approved.id, 50, T0 + 70_000, 'old-token')).toEqual({ kind: 'refunded', amount: 50, at: T0 + 70_000, intent: { ...approved, status: 'PARTIALLY_REFUNDED', refundedAmount: 450, updatedAt: T0 + 70_000 } });
    expect(await store.get(approved.id)).toMatchObject({ refundedAmount: 400 });
    client.disconnect();
  });

  it('a create, an idempotency begin, a seat hold, a delivery insert and a delivery queued whose script the client sent twice (its reply lost, sent again after a reconnect) are applied once and answered as the first run; another call is a call of its own', async () => {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const scheduler = new RedisSchedulerStore(client, { keyPrefix });
    const intents = new RedisIntentStore(client, { keyPrefix, ttlMs: 86_400_000, maxIntents: 100, scheduler });
    const pending = anIntent({ amount: 1000 });
    const scheduled = anIntent({ amount: 2000 });
    expect(await sentTwice(client, () => intents.insert(pending))).toEqual({ ok: true });
    const decide = { kind: 'intent.decide', key: scheduled.id, dueAt: T0 + 200 };
    expect(await sentTwice(client, () => intents.insertScheduled!(scheduled, decide))).toEqual({ ok: true });
    expect(await intents.counts()).toMatchObject({ PENDING: 2 });
    // Its job scheduled once: one sequence number drawn, one entry queued.
    expect([await client.get(`${keyPrefix}sched:seq`), await client.zcard(`${keyPrefix}sched:queue`), await client.hkeys(`${keyPrefix}sched:jobs:intent.decide`)]).toEqual(['1', 1, [scheduled.id]]);
    // Decided since, the same insert run once more leaves the decision as it is.
    const decided = { ...pending, status: 'APPROVED' as const, decidedAt: T0 + 200, updatedAt: T0 + 200 };
    expect(await intents.decide(pending.id, T0 + 200)).toEqual({ ok: true, record: decided });
    expect(await intents.insert(pending)).toEqual({ ok: true });
    expect(await intents.get(pending.id)).toEqual(decided);
    expect(await intents.counts()).toMatchObject({ PENDING: 1, APPROVED: 1 });

    const idempotency = new RedisIdempotencyStore(client, { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: 2 * DAY });
    expect(await sentTwice(client, () => idempotency.begin('POST /v1/sim/intent', 'key-1', 'fp', T0))).toEqual({ kind: 'started', claim: expect.any(String) });
    expect(await idempotency.begin('POST /v1/sim/intent', 'key-1', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
    expect(await idempotency.stats()).toMatchObject({ size: 1 });

    const SMALL: Performance = { id: 'perf_small', title: 'A small room', venue: 'Test hall', startsAt: '2026-03-01T10:00:00.000Z', rows: ['A', 'B'], seatsPerRow: 5, priceMinor: 10_000, currency: 'KRW' };
    const seats = await RedisSeatStore.create(client, { keyPrefix }, [SMALL]);
    const held = await sentTwice(client, () => seats.hold(SMALL.id, 2, 'bk_twice', T0 + HOUR));
    expect(held).toEqual({ kind: 'held', seatIds: ['A1', 'A2'] });
    expect(await seats.counts(SMALL.id)).toEqual({ total: 10, available: 8, held: 2, reserved: 0 });
    expect(await seats.hold(SMALL.id, 2, 'bk_twice', T0 + HOUR)).toEqual({ kind: 'already_holding' });
    expect(await seats.hold(SMALL.id, 1, 'bk_other', T0 + HOUR)).toEqual({ kind: 'held', seatIds: ['A3'] });

    const log = new RedisDeliveryLog(client, { keyPrefix, ttlMs: DAY, maxDeliveries: 100 });
    const first = aDelivery({ eventId: 'evt_twice', url: 'https://a.example/hooks' });
    expect(await sentTwice(client, () => log.insertOnce(first))).toEqual({ ok: true });
    const plain = aDelivery({ id: 'whd_plain' });
    expect(await sentTwice(client, () => log.insert(plain))).toEqual({ ok: true });
    // Run again after its first attempt was logged, the insert leaves the attempt where it is.
    const attempted = await log.update(plain.id, { status: 'retrying', attempt: { at: T0 + 1, statusCode: 503, durationMs: 5, error: null }, nextAttemptAt: T0 + 1_001, failureReason: null, updatedAt: T0 + 1 });
    expect(await log.insert(plain)).toEqual({ ok: true });
    expect(await log.get(plain.id)).toEqual(attempted);
    // Another delivery of that event to that URL is refused, and answered the first.
    expect(await log.insertOnce({ ...first, id: 'whd_other' })).toEqual({ ok: false, reason: 'exists', existing: first });
    const queue = await RedisDeliveryQueue.create(client, log, { keyPrefix, claimIdleMs: 30_000, readAhead: 100, onError: () => undefined });
    const accepted = aDelivery({ eventId: 'evt_accepted', url: 'https://a.example/hooks' });
    expect(await sentTwice(client, () => queue.accept(accepted, 'https://a.example', 0))).toEqual({ kind: 'queued' });
    expect(await client.xlen(queue.key)).toBe(1);
    // A retry queued (ENQUEUE, with a token of its own): once.
    expect(await sentTwice(client, () => queue.enqueue(accepted, 'https://a.example', 0))).toBe(true);
    expect(await client.xlen(queue.key)).toBe(2);
    // Refused by a full queue (two wait, at most 2): logged failed once, and answered so both times.
    const refused = aDelivery({ eventId: 'evt_refused', url: 'https://a.example/hooks' });
    const answer = await sentTwice(client, () => queue.accept(refused, 'https://a.example', 2));
    expect(answer).toEqual({ kind: 'queue_full', delivery: { ...refused, status: 'failed', failureReason: 'queue_full' } });
    expect([await client.xlen(queue.key), (await log.list({ limit: 10, eventId: 'evt_refused' })).data]).toEqual([2, [answer.kind === 'queue_full' ? answer.delivery : undefined]]);
    expect(await log.stats()).toMatchObject({ size: 4 });
    await queue.stop();
    client.disconnect();
  });

  it('RedisIdempotencyStore: stats().bytes of a key and a scope that are not ASCII is memory’s figure (before 2026-12-06 Lua counted UTF-8 bytes: 280 against 277)', async () => {
    const options = { ttlMs: DAY, maxKeys: 100 };
    const memory = new MemoryIdempotencyStore(options);
    const store = new RedisIdempotencyStore(redis.client, { ...options, keyPrefix: redis.newPrefix(), inFlightHoldMs: 2 * DAY });
    for (const s of [memory, store]) expect(await s.begin('POST /v1/sim/intents/:id/refund id=café', 'clé-ü', 'fp', T0)).toMatchObject({ kind: 'started' });
    expect(await store.stats()).toEqual(await memory.stats());
    expect((await memory.stats()).bytes).toBe('POST /v1/sim/intents/:id/refund id=café'.length + 'clé-ü'.length + 'fp'.length + ENTRY_OVERHEAD_BYTES + 1);
  });

  it('RedisRateLimitStore: a hit whose script the client sent twice (its reply lost, sent again after a reconnect) counts one request and answers as its first run, as memory counts it', async () => {
    const client = redis.connect();
    const store = new RedisRateLimitStore(client, { keyPrefix: redis.newPrefix(), maxKeys: 10 });
    expect(await store.hit('client|payments', 60_000, T0)).toEqual({ current: 1, resetAt: T0 + 60_000 });
    // Before 2026-12-04 the second run counted it again: 3, and the next hit 4 (a client refused one request early).
    expect(await sentTwice(client, () => store.hit('client|payments', 60_000, T0 + 1))).toEqual({ current: 2, resetAt: T0 + 60_000 });
    expect(await store.hit('client|payments', 60_000, T0 + 2)).toEqual({ current: 3, resetAt: T0 + 60_000 });
    // A window that starts anew is a hit like the others: counted once.
    expect(await sentTwice(client, () => store.hit('client|payments', 60_000, T0 + 60_000))).toEqual({ current: 1, resetAt: T0 + 120_000 });
    expect(await store.hit('client|payments', 60_000, T0 + 60_001)).toEqual({ current: 2, resetAt: T0 + 120_000 });
    client.disconnect();
  });

  it('RedisIntentStore.insertScheduled writes the intent and its job in one script run, or neither when the store is full', async () => {
    const keyPrefix = redis.newPrefix();
    const scheduler = new RedisSchedulerStore(redis.client, { keyPrefix });
    const store = new RedisIntentStore(redis.client, { keyPrefix, ttlMs: 86_400_000, maxIntents: 2, scheduler });
    const plain = new RedisIntentStore(redis.client, { keyPrefix, ttlMs: 86_400_000, maxIntents: 2 });
    expect(plain.insertScheduled).toBeUndefined();
    const ids = createIdFactory(new ManualClock(T0));
    const pending = () => ({
      id: ids('pay'), reservationId: 'res_1', amount: 100, currency: 'KRW', scenario: 'approve' as const, status: 'PENDING' as const, failureCode: null, refundedAmount: 0,
      delayMs: 200, webhookUrl: null, metadata: null, createdAt: T0, updatedAt: T0, decidedAt: null, planned: { status: 'APPROVED' as const, failureCode: null },
    });
    const [a, b, c] = [pending(), pending(), pending()];
    const insertScheduled = store.insertScheduled as NonNullable<typeof store.insertScheduled>;
    expect(await insertScheduled(a, { kind: 'intent.decide', key: a.id, dueAt: T0 + 200 })).toEqual({ ok: true });
    // A job already scheduled for the key is replaced, as `schedule` does.
    await scheduler.schedule({ kind: 'intent.decide', key: b.id, dueAt: T0 + 50 });
    expect(await insertScheduled(b, { kind: 'intent.decide', key: b.id, dueAt: T0 + 300 })).toEqual({ ok: true });
    // Full (two PENDING intents, none evictable): neither the intent nor its job.
    expect(await insertScheduled(c, { kind: 'intent.decide', key: c.id, dueAt: T0 + 100 })).toEqual({ ok: false, reason: 'full' });
    expect(await store.get(a.id)).toEqual(a);
    expect(await store.get(b.id)).toEqual(b);
    expect(await store.get(c.id)).toBeUndefined();
    expect(await scheduler.count('intent.decide')).toBe(2);
    expect(await scheduler.nextDueAt()).toBe(T0 + 200);
    const claimed = await scheduler.claimDue(T0 + 1000, 10, 30_000);
    expect(claimed.map(({ kind, key, dueAt }) => ({ kind, key, dueAt }))).toEqual([
      { kind: 'intent.decide', key: a.id, dueAt: T0 + 200 },
      { kind: 'intent.decide', key: b.id, dueAt: T0 + 300 },
    ]);
  });

  it('RedisIdempotencyStore restarted with a smaller IDEMPOTENCY_MAX_KEYS comes down to it at the next begin (it evicted one key a begin: the excess stayed until its TTL)', async () => {
    const keyPrefix = redis.newPrefix();
    const before = new RedisIdempotencyStore(redis.client, { keyPrefix, ttlMs: DAY, maxKeys: 20, inFlightHoldMs: DAY });
    const response = { statusCode: 200, headers: {}, body: '{}' };
    for (let i = 0; i < 20; i++) {
      const begun = await before.begin('POST /v1/sim/intent', `k${i}`, 'fp', T0 + i);
      if (begun.kind !== 'started') throw new Error(begun.kind);
      await before.complete('POST /v1/sim/intent', `k${i}`, begun.claim, response);
    }
    expect((await before.stats()).size).toBe(20);
    const after = new RedisIdempotencyStore(redis.client, { keyPrefix, ttlMs: DAY, maxKeys: 5, inFlightHoldMs: DAY });
    expect(await after.begin('POST /v1/sim/intent', 'new', 'fp', T0 + 100)).toMatchObject({ kind: 'started' });
    expect((await after.stats()).size).toBe(5);
    // The newest stayed; the oldest went.
    expect(await after.begin('POST /v1/sim/intent', 'k19', 'fp', T0 + 101)).toMatchObject({ kind: 'replay' });
    expect(await after.begin('POST /v1/sim/intent', 'k0', 'fp', T0 + 102)).toMatchObject({ kind: 'started' });
  });

  it('an intent written under an Idempotency-Key is noted on the key: a begin after its replica died, or after a 5xx released it, resumes it (the same body only); a write of another claim is refused, nothing written', async () => {
    const { keyPrefix, client, store: intents } = scheduledIntents();
    const replicaA = new RedisIdempotencyStore(client, { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY });
    const replicaB = new RedisIdempotencyStore(redis.client, { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY });
    const scope = 'POST /v1/sim/intent';
    const job = (intent: { id: string }) => ({ kind: 'intent.decide', key: intent.id, dueAt: T0 + 200 });
    const claimOf = (begun: Awaited<ReturnType<RedisIdempotencyStore['begin']>>) => (begun.kind === 'started' || begun.kind === 'resume' ? begun.claim : undefined) as string;

    // Killed after its write: once A's mark of life is gone, B's begin resumes what A made.
    const killed = anIntent();
    const claimA = claimOf(await replicaA.begin(scope, 'k-killed', 'fp', T0));
    expect(await intents.insertScheduled!(killed, job(killed), replicaA.noteOf(scope, 'k-killed', claimA))).toEqual({ ok: true });
    expect(await replicaB.begin(scope, 'k-killed', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
    replicaA.abandon(claimA);
    await redis.client.del(...(await redis.client.keys(`${keyPrefix}idem:alive:*`)));
    expect(await replicaB.begin(scope, 'k-killed', 'other-fp', T0 + 2)).toEqual({ kind: 'mismatch' });
    const resumed = await replicaB.begin(scope, 'k-killed', 'fp', T0 + 3);
    expect(resumed).toEqual({ kind: 'resume', claim: expect.any(String), made: killed.id });
    // Its answer stored under the resumed claim, the key replays it.
    await replicaB.complete(scope, 'k-killed', claimOf(resumed), { statusCode: 200, body: '{"payment_intent_id":"x"}' });
    expect(await replicaB.begin(scope, 'k-killed', 'fp', T0 + 4)).toMatchObject({ kind: 'replay' });

    // Answered 503 after its write (released): the next begin resumes it, even on the same replica;
    // sent twice (its reply lost), the resuming begin answers resume both times (a review: 'started'
    // the second time, and the route made a second payment).
    const failed = anIntent();
    const claim = claimOf(await replicaB.begin(scope, 'k-503', 'fp', T0));
    await intents.insertScheduled!(failed, job(failed), replicaB.noteOf(scope, 'k-503', claim));
    await replicaB.release(scope, 'k-503', claim);
    expect(await sentTwice(client, () => new RedisIdempotencyStore(client, { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY }).begin(scope, 'k-503', 'fp', T0 + 1))).toEqual({ kind: 'resume', claim: expect.any(String), made: failed.id });

    // Released without a write (the 503 came first): the key is free, as before.
    const early = claimOf(await replicaB.begin(scope, 'k-none', 'fp', T0));
    await replicaB.release(scope, 'k-none', early);
    expect(await replicaB.begin(scope, 'k-none', 'fp', T0 + 1)).toEqual({ kind: 'started', claim: expect.any(String) });

    // A write under a claim that is no longer the key's (its hold let it go, another took it) writes
    // nothing (before 2026-12-05 it wrote a second intent, noting nothing).
    const stale = anIntent();
    const current = claimOf(await replicaB.begin(scope, 'k-stale', 'fp', T0));
    expect(await intents.insertScheduled!(stale, job(stale), replicaB.noteOf(scope, 'k-stale', 'another-claim'))).toEqual({ ok: false, reason: 'key_lost' });
    expect(await intents.get(stale.id)).toBeUndefined();
    await replicaB.release(scope, 'k-stale', current);
    expect(await replicaB.begin(scope, 'k-stale', 'fp', T0 + 1)).toEqual({ kind: 'started', claim: expect.any(String) });
    client.disconnect();
  });

  it('note: what a keyed request is about to make, noted before its write while its claim is the key\'s, is resumed after a 5xx released the key; under a claim no longer the key\'s nothing is noted', async () => {
    const idem = new RedisIdempotencyStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY });
    const scope = 'POST /api/v1/orders';
    const begun = await idem.begin(scope, 'k-noted', 'fp', T0);
    if (begun.kind !== 'started') throw new Error(begun.kind);
    expect(await idem.note(idem.noteOf(scope, 'k-noted', begun.claim), 'ord_1')).toBe(true);
    await idem.release(scope, 'k-noted', begun.claim);
    expect(await idem.begin(scope, 'k-noted', 'other-fp', T0 + 1)).toEqual({ kind: 'mismatch' });
    expect(await idem.begin(scope, 'k-noted', 'fp', T0 + 2)).toEqual({ kind: 'resume', claim: expect.any(String), made: 'ord_1' });

    const current = await idem.begin(scope, 'k-stale', 'fp', T0);
    if (current.kind !== 'started') throw new Error(current.kind);
    expect(await idem.note(idem.noteOf(scope, 'k-stale', 'another-claim'), 'ord_2')).toBe(false);
    await idem.release(scope, 'k-stale', current.claim);
    expect(await idem.begin(scope, 'k-stale', 'other-fp', T0 + 1)).toEqual({ kind: 'started', claim: expect.any(String) });
  });

  it('a key released after its write is settled as a completed one: it expires at its TTL (not its in-flight hold), a resume holds it a hold at most, and at the bound it goes before a newer completed key (a review)', async () => {
    const { keyPrefix, client, store: intents } = scheduledIntents();
    const idem = (maxKeys: number, ttlMs: number) => new RedisIdempotencyStore(client, { keyPrefix, ttlMs, maxKeys, inFlightHoldMs: 15 * 60_000 });
    const scope = 'POST /v1/sim/intent';
    const releasedAfterWrite = async (store: RedisIdempotencyStore, key: string, at: number) => {
      const begun = await store.begin(scope, key, 'fp', at);
      if (begun.kind !== 'started') throw new Error(begun.kind);
      const intent = anIntent();
      await intents.insertScheduled!(intent, { kind: 'intent.decide', key: intent.id, dueAt: at + 200 }, store.noteOf(scope, key, begun.claim));
      await store.release(scope, key, begun.claim);
      return intent;
    };
    // TTL 1 s: gone after it, though its in-flight hold is 15 minutes.
    const short = idem(100, 1_000);
    await releasedAfterWrite(short, 'k-ttl', T0);
    expect(await short.sweep(T0 + 5_000)).toBe(1);
    expect(await short.begin(scope, 'k-ttl', 'other-fp', T0 + 5_001)).toMatchObject({ kind: 'started' });
    // At the bound (3): three released keys and then two completed ones: the newest completed still replays.
    const small = idem(3, DAY);
    for (const key of ['r1', 'r2', 'r3']) await releasedAfterWrite(small, key, T0 + 10);
    for (const key of ['ok1', 'ok2']) {
      const begun = await small.begin(scope, key, 'fp', T0 + 20);
      if (begun.kind !== 'started') throw new Error(begun.kind);
      await small.complete(scope, key, begun.claim, { statusCode: 200, body: `{"key":"${key}"}` });
    }
    expect(await small.begin(scope, 'ok2', 'fp', T0 + 21)).toMatchObject({ kind: 'replay' });
    expect(await small.begin(scope, 'ok1', 'fp', T0 + 22)).toMatchObject({ kind: 'replay' });
    expect((await small.stats()).size).toBe(3);
    // Resumed a moment before its TTL, its answer a 5xx again: still gone at its TTL plus a hold, not a TTL later.
    const day = idem(100, DAY);
    const made = await releasedAfterWrite(day, 'k-late', T0);
    const resumed = await day.begin(scope, 'k-late', 'fp', T0 + DAY - 10);
    expect(resumed).toEqual({ kind: 'resume', claim: expect.any(String), made: made.id });
    if (resumed.kind !== 'resume') throw new Error(resumed.kind);
    await day.release(scope, 'k-late', resumed.claim);
    expect(await day.begin(scope, 'k-late', 'other-fp', T0 + DAY + 1)).toMatchObject({ kind: 'started' });
    client.disconnect();
  });

  it('every script that schedules a job with its own write keeps the job’s trace in it, for the replica that claims it; an untraced job has none', async () => {
    const trace = (i: number) => `00-${String(i).padStart(32, 'a')}-00f067aa0ba902b7-01`;
    const { keyPrefix, client, store: intents } = scheduledIntents();
    const scheduler = new RedisSchedulerStore(client, { keyPrefix });
    const v2 = new RedisV2PaymentStore(client, { keyPrefix, ttlMs: DAY, maxPayments: 10, scheduler });
    const log = new RedisDeliveryLog(client, { keyPrefix, ttlMs: DAY, maxDeliveries: 10, scheduler });
    const [created, untraced, cancelled, refunded] = [anIntent(), anIntent(), anIntent(), anIntent({ amount: 1000, status: 'APPROVED', decidedAt: T0, updatedAt: T0 })];
    const payment = aV2Payment();
    const delivery = aDelivery();
    expect(await intents.insertScheduled!(created, { kind: 'intent.decide', key: created.id, dueAt: T0 + 1, trace: trace(1) })).toEqual({ ok: true });
    expect(await intents.insertScheduled!(untraced, { kind: 'intent.decide', key: untraced.id, dueAt: T0 + 2 })).toEqual({ ok: true });
    await intents.insert(cancelled);
    expect(await intents.cancelScheduled!(cancelled.id, T0, { kind: 'intent.cancel_event', key: cancelled.id, dueAt: T0 + 3, trace: trace(3) })).toMatchObject({ ok: true });
    await intents.insert(refunded);
    expect(await intents.refundScheduled!(refunded.id, 300, T0, { kind: 'intent.refund_event', key: refunded.id, dueAt: T0 + 4, trace: trace(4) })).toMatchObject({ kind: 'refunded' });
    expect(await v2.beginScheduled!(payment, { kind: 'v2.decide', key: payment.id, dueAt: T0 + 5, trace: trace(5) })).toEqual({ kind: 'created', payment });
    await log.insert(delivery);
    const change = { status: 'retrying' as const, attempt: { at: T0, statusCode: 503, durationMs: 5, error: null }, nextAttemptAt: T0 + 6, failureReason: null, updatedAt: T0 };
    expect(await log.updateScheduled!(delivery.id, change, { kind: 'webhook.retry', key: delivery.id, dueAt: T0 + 6, trace: trace(6) })).toMatchObject({ status: 'retrying' });
    const claimed = await scheduler.claimDue(T0 + 10, 10, 30_000);
    expect(claimed.map(({ kind, key, dueAt, trace }) => ({ kind, key, dueAt, trace }))).toEqual([
      { kind: 'intent.decide', key: created.id, dueAt: T0 + 1, trace: trace(1) },
      { kind: 'intent.decide', key: untraced.id, dueAt: T0 + 2, trace: undefined },
      { kind: 'intent.cancel_event', key: cancelled.id, dueAt: T0 + 3, trace: trace(3) },
      { kind: 'intent.refund_event', key: `${refunded.id}/300/300/${T0}`, dueAt: T0 + 4, trace: trace(4) },
      { kind: 'v2.decide', key: payment.id, dueAt: T0 + 5, trace: trace(5) },
      { kind: 'webhook.retry', key: delivery.id, dueAt: T0 + 6, trace: trace(6) },
    ]);
    // What is not a traceparent (a space or a slash would end the member's due time early) is not kept.
    await scheduler.schedule({ kind: 'intent.decide', key: 'odd', dueAt: T0 + 7, trace: '00-a b/c' });
    expect(await scheduler.claimDue(T0 + 10, 10, 30_000)).toEqual([{ kind: 'intent.decide', key: 'odd', dueAt: T0 + 7, token: expect.any(String) }]);
    client.disconnect();
  });

  it('RedisV2PaymentStore.beginScheduled writes a new payment and its job in one script run; a repeat or a conflict schedules nothing, a full store writes neither', async () => {
    const keyPrefix = redis.newPrefix();
    const scheduler = new RedisSchedulerStore(redis.client, { keyPrefix });
    const store = new RedisV2PaymentStore(redis.client, { keyPrefix, ttlMs: 86_400_000, maxPayments: 2, scheduler });
    expect(new RedisV2PaymentStore(redis.client, { keyPrefix, ttlMs: 86_400_000, maxPayments: 2 }).beginScheduled).toBeUndefined();
    const beginScheduled = store.beginScheduled as NonNullable<typeof store.beginScheduled>;
    const job = (payment: { id: string }, dueAt: number) => ({ kind: 'v2.decide', key: payment.id, dueAt });
    const [a, b, c] = [aV2Payment(), aV2Payment(), aV2Payment()];
    expect(await beginScheduled(a, job(a, T0 + 200))).toEqual({ kind: 'created', payment: a });
    // The same request again, and another request with its tx_id: answered, and its job left where it was.
    expect(await beginScheduled(a, job(a, T0 + 900))).toEqual({ kind: 'existing', payment: a });
    expect(await beginScheduled({ ...a, amount: 5 }, job(a, T0 + 900))).toEqual({ kind: 'conflict', payment: a });
    expect(await beginScheduled(b, job(b, T0 + 300))).toEqual({ kind: 'created', payment: b });
    // Full (two PENDING payments, none evictable): neither the payment nor its job.
    expect(await beginScheduled(c, job(c, T0 + 100))).toEqual({ kind: 'full' });
    expect(await store.get(c.id)).toBeUndefined();
    const claimed = await scheduler.claimDue(T0 + 1000, 10, 30_000);
    expect(claimed.map(({ kind, key, dueAt }) => ({ kind, key, dueAt }))).toEqual([
      { kind: 'v2.decide', key: a.id, dueAt: T0 + 200 },
      { kind: 'v2.decide', key: b.id, dueAt: T0 + 300 },
    ]);
  });

  it('an /api/v2 begin and completion and a delivery update whose script the client sent twice (its reply lost, sent again after a reconnect) are applied once and answered as the first run', async () => {
    const keyPrefix = redis.newPrefix();
    const client = redis.connect();
    const scheduler = new RedisSchedulerStore(client, { keyPrefix });
    const store = new RedisV2PaymentStore(client, { keyPrefix, ttlMs: DAY, maxPayments: 10, scheduler });
    const [a, b] = [aV2Payment(), aV2Payment()];
    const job = (payment: { id: string }) => ({ kind: 'v2.decide', key: payment.id, dueAt: T0 + 200 });
    expect(await sentTwice(client, () => store.beginScheduled!(a, job(a)))).toEqual({ kind: 'created', payment: a });
    expect(await sentTwice(client, () => store.begin(b))).toEqual({ kind: 'created', payment: b });
    // Another request with that tx_id is a repeat; the job was scheduled once.
    expect(await store.beginScheduled!(a, job(a))).toEqual({ kind: 'existing', payment: a });
    expect([await client.get(`${keyPrefix}sched:seq`), await client.zcard(`${keyPrefix}sched:queue`)]).toEqual(['1', 1]);
    const completed = { ...b, status: 'PAYMENT_COMPLETED' as const, confirmedAt: T0 + 50, completedBy: 'manual' as const };
    expect(await sentTwice(client, () => store.complete(b.id, 'manual', T0 + 50))).toEqual({ ok: true, record: completed });
    expect(await store.complete(b.id, 'manual', T0 + 60)).toEqual({ ok: false, current: completed });
    expect(await store.counts()).toMatchObject({ PENDING: 1, PAYMENT_COMPLETED: 1 });

    const log = new RedisDeliveryLog(client, { keyPrefix, ttlMs: DAY, maxDeliveries: 10 });
    const delivery = aDelivery();
    await log.insert(delivery);
    const attempt = { at: T0 + 1, statusCode: 503, durationMs: 5, error: null };
    const retrying = await sentTwice(client, () => log.update(delivery.id, { status: 'retrying', attempt, nextAttemptAt: T0 + 1_001, failureReason: null, updatedAt: T0 + 1 }));
    expect(retrying?.attempts).toHaveLength(1);
    expect(await log.get(delivery.id)).toEqual(retrying);
    client.disconnect();
  });

  it('RedisIntentStore keeps no index of PENDING intents and unlinks the one an earlier version left (a Redis kept across an upgrade)', async () => {
    const keyPrefix = redis.newPrefix();
    const c = redis.client;
    const store = new RedisIntentStore(c, { keyPrefix, ttlMs: 86_400_000, maxIntents: 100 });
    const [a, b] = [anIntent(), anIntent()];
    for (const intent of [a, b]) expect(await store.insert(intent)).toEqual({ ok: true });
    await store.decide(a.id, T0 + 200);
    expect((await c.keys(`${keyPrefix}int:st:*`)).sort()).toEqual([`${keyPrefix}int:st:APPROVED`]);
    // As an earlier version left it: its index of PENDING intents, with b, the decided a and an id long gone.
    await c.zadd(`${keyPrefix}int:st:PENDING`, 0, a.id, 0, b.id, 0, 'pay_gone');
    // Neither read nor written any more: counts and lists are right with it there.
    const counts = { PENDING: 1, APPROVED: 1, FAILED: 0, CANCELLED: 0, PARTIALLY_REFUNDED: 0, REFUNDED: 0 };
    expect(await store.counts()).toEqual(counts);
    expect(await store.list({ limit: 10, status: 'PENDING' })).toEqual({ data: [b], nextCursor: null });
    expect(await c.zcard(`${keyPrefix}int:st:PENDING`)).toBe(3);
    expect(await store.dropEarlierIndex()).toBe(true);
    expect(await c.exists(`${keyPrefix}int:st:PENDING`)).toBe(0);
    expect(await store.dropEarlierIndex()).toBe(false);
    expect(await store.counts()).toEqual(counts);
    expect(await store.list({ limit: 10, status: 'PENDING' })).toEqual({ data: [b], nextCursor: null });
    // One an earlier replica writes again during an upgrade goes with the next TTL sweep.
    await c.zadd(`${keyPrefix}int:st:PENDING`, 0, b.id);
    expect(await store.sweep(T0)).toBe(0);
    expect(await c.exists(`${keyPrefix}int:st:PENDING`)).toBe(0);
  });

  it('RedisSchedulerStore adopts the jobs of the earlier layout (a Redis kept across an upgrade), once, claimed ones due again', async () => {
    const keyPrefix = redis.newPrefix();
    const s = `${keyPrefix}sched:`;
    const c = redis.client;
    // As paysim's earlier scheduler left them: one job waiting, one claimed by an earlier replica.
    const waiting = `${'1'.padStart(16, '0')}intent.decide\npay_old`;
    const claimed = `${'2'.padStart(16, '0')}booking.expire\nbk old`;
    await c.hset(`${s}members`, 'intent.decide\npay_old', waiting, 'booking.expire\nbk old', claimed);
    await c.hset(`${s}dueat`, 'intent.decide\npay_old', String(T0 + 5), 'booking.expire\nbk old', String(T0));
    await c.hset(`${s}tokens`, 'booking.expire\nbk old', '7');
    await c.hset(`${s}counts`, 'intent.decide', '1', 'booking.expire', '1');
    await c.zadd(`${s}due`, T0 + 5, waiting);
    await c.zadd(`${s}leases`, T0 + 30_000, claimed);
    await c.set(`${s}seq`, '7');
    const store = new RedisSchedulerStore(c, { keyPrefix });
    expect(await store.adoptEarlierLayout()).toBe(2);
    expect(await c.exists(`${s}due`, `${s}leases`, `${s}members`, `${s}tokens`, `${s}dueat`, `${s}counts`)).toBe(0);
    expect(await store.count('intent.decide')).toBe(1);
    expect(await store.count('booking.expire')).toBe(1);
    expect(await store.nextDueAt()).toBe(T0);
    const claims = await store.claimDue(T0 + 5, 10, 30_000);
    expect(claims).toEqual([
      { kind: 'booking.expire', key: 'bk old', dueAt: T0, token: expect.any(String) },
      { kind: 'intent.decide', key: 'pay_old', dueAt: T0 + 5, token: expect.any(String) },
    ]);
    await store.complete(claims);
    expect(await store.count('intent.decide')).toBe(0);
    expect(await store.adoptEarlierLayout()).toBe(0);
  });

  describe('RedisSchedulerStore leases across consumers', () => {
    const LEASE = 30_000;

    it('a claim whose script the client sent twice (its reply lost) hands over the jobs its first run claimed, not an empty batch that would leave them to wait out the lease', async () => {
      const keyPrefix = redis.newPrefix();
      const client = redis.connect();
      const store = new RedisSchedulerStore(client, { keyPrefix });
      await store.schedule({ kind: 'intent.decide', key: 'pay_1', dueAt: T0 });
      await store.schedule({ kind: 'intent.decide', key: 'pay_2', dueAt: T0 + 5 });
      const claimed = await sentTwice(client, () => store.claimDue(T0 + 5, 10, LEASE));
      expect(claimed.map((j) => [j.kind, j.key, j.dueAt])).toEqual([
        ['intent.decide', 'pay_1', T0],
        ['intent.decide', 'pay_2', T0 + 5],
      ]);
      // Claimed once: completed under those tokens, nothing is left; an empty claim keeps nothing.
      await store.complete(claimed);
      // The claim's kept reply and each schedule's.
      expect(await client.keys(`${keyPrefix}sched:kept:*`)).toHaveLength(3);
      expect(await sentTwice(client, () => store.claimDue(T0 + LEASE + 5, 10, LEASE))).toEqual([]);
      expect(await client.keys(`${keyPrefix}sched:kept:*`)).toHaveLength(3);
      expect(await store.nextDueAt()).toBeUndefined();
      client.disconnect();
    });

    it('a schedule sent again together with a claim of its job (one dropped connection) leaves the job to run once; a cancel sent again with a schedule leaves the schedule', async () => {
      const keyPrefix = redis.newPrefix();
      const client = redis.connect();
      const store = new RedisSchedulerStore(client, { keyPrefix });
      const job = { kind: 'booking.expire', key: 'bk_1', dueAt: T0 };
      // First runs: the schedule, then the claim of the job it queued; then both again, in that order.
      const [, claimed] = await sentTogetherTwice<unknown>(client, [() => store.schedule(job), () => store.claimDue(T0, 10, LEASE)]);
      expect((claimed as ClaimedJob[]).map((j) => [j.kind, j.key, j.dueAt])).toEqual([['booking.expire', 'bk_1', T0]]);
      await store.complete(claimed as ClaimedJob[]);
      // Ran and completed once: nothing left to claim, even after the lease.
      expect(await store.count('booking.expire')).toBe(0);
      expect(await store.claimDue(T0 + LEASE + 1, 10, LEASE)).toEqual([]);
      // A cancel, then a schedule of the same job, both sent again: the cancel answers its first
      // run's true and the job stays scheduled, once.
      await store.schedule({ ...job, dueAt: T0 + 5 });
      // Redis holds the cancel's script already, so both are sent (and run) in the order called.
      expect(await store.cancel('booking.expire', 'bk_none')).toBe(false);
      const [cancelled] = await sentTogetherTwice<unknown>(client, [() => store.cancel('booking.expire', 'bk_1'), () => store.schedule({ ...job, dueAt: T0 + 10 })]);
      expect(cancelled).toBe(true);
      expect(await store.count('booking.expire')).toBe(1);
      expect(await store.nextDueAt()).toBe(T0 + 10);
      expect((await store.claimDue(T0 + 10, 10, LEASE)).map((j) => [j.key, j.dueAt])).toEqual([['bk_1', T0 + 10]]);
      client.disconnect();
    });

    it('a job claimed by a consumer that died is claimed by another once the lease lapses, and only then', async () => {
      const keyPrefix = redis.newPrefix();
      const dying = redis.connect();
      const consumerA = new RedisSchedulerStore(dying, { keyPrefix });
      const consumerB = new RedisSchedulerStore(redis.connect(), { keyPrefix });
      await consumerB.schedule({ kind: 'intent.decide', key: 'pay_1', dueAt: T0 });
      await consumerB.schedule({ kind: 'intent.decide', key: 'pay_2', dueAt: T0 + 10 });
      const [claim] = await consumerA.claimDue(T0, 1, LEASE);
      expect(claim).toMatchObject({ kind: 'intent.decide', key: 'pay_1', dueAt: T0 });
      dying.disconnect(); // A dies holding pay_1: its lease is all that is left of it.
      expect((await consumerB.claimDue(T0 + LEASE - 1, 10, LEASE)).map((j) => j.key)).toEqual(['pay_2']);
      const [taken] = await consumerB.claimDue(T0 + LEASE, 10, LEASE);
      expect(taken).toMatchObject({ kind: 'intent.decide', key: 'pay_1', dueAt: T0 });
      expect(taken?.token).not.toBe(claim?.token);
      // A late completion under A's token (say A was only stalled) leaves B's claim alone.
      const lateA = new RedisSchedulerStore(redis.connect(), { keyPrefix });
      await lateA.complete([claim as NonNullable<typeof claim>]);
      expect(await consumerB.count('intent.decide')).toBe(2);
      await consumerB.complete([taken as NonNullable<typeof taken>]);
      expect(await consumerB.count('intent.decide')).toBe(1);
      expect(await consumerB.nextDueAt()).toBe(T0 + LEASE - 1 + LEASE);
    });

    it('consumers on separate connections claiming at once never share a job', async () => {
      const keyPrefix = redis.newPrefix();
      const consumers = Array.from({ length: 4 }, () => new RedisSchedulerStore(redis.connect(), { keyPrefix }));
      for (let i = 0; i < 200; i++) await (consumers[0] as RedisSchedulerStore).schedule({ kind: 'intent.decide', key: `pay_${i}`, dueAt: T0 + (i % 5) });
      const batches = await Promise.all(Array.from({ length: 40 }, (_, i) => (consumers[i % 4] as RedisSchedulerStore).claimDue(T0 + 5, 7, LEASE)));
      const keys = batches.flat().map((j) => j.key);
      expect(keys).toHaveLength(200);
      expect(new Set(keys).size).toBe(200);
    });
  });

  it('RedisSeatStore lays out a map and its counts in one script: replicas starting at once, and a map an earlier version left without counts', async () => {
    const [first, second] = DEFAULT_PERFORMANCES as [Performance, Performance];
    const total = first.rows.length * first.seatsPerRow;
    const whole = { total, available: total, held: 0, reserved: 0 };
    // Three replicas laying out one Redis at once: one layout, counts whole.
    const keyPrefix = redis.newPrefix();
    const stores = await Promise.all([0, 1, 2].map(() => RedisSeatStore.create(redis.connect(), { keyPrefix }, DEFAULT_PERFORMANCES)));
    expect(await stores[0]!.counts(first.id)).toEqual(whole);
    expect(await stores[0]!.hold(first.id, 2, 'bk_1', T0 + 60_000)).toEqual({ kind: 'held', seatIds: ['A1', 'A2'] });
    // A replica starting later keeps what is held.
    const later = await RedisSeatStore.create(redis.client, { keyPrefix }, DEFAULT_PERFORMANCES);
    expect(await later.counts(first.id)).toEqual({ total, available: total - 2, held: 2, reserved: 0 });

    // An earlier version wrote the map and its counts in two round trips: cut between them, the
    // performance was unknown for good (every start's SET NX failed). The next start counts the map.
    const cut = redis.newPrefix();
    await redis.client.set(`${cut}seats:map:${first.id}`, '0'.repeat(total));
    await redis.client.set(`${cut}seats:map:${second.id}`, `RL${'0'.repeat(second.rows.length * second.seatsPerRow - 2)}`);
    const healed = await RedisSeatStore.create(redis.client, { keyPrefix: cut }, DEFAULT_PERFORMANCES);
    expect(await healed.counts(first.id)).toEqual(whole);
    const secondTotal = second.rows.length * second.seatsPerRow;
    expect(await healed.counts(second.id)).toEqual({ total: secondTotal, available: secondTotal - 2, held: 1, reserved: 1 });
    expect(await healed.hold(first.id, 1, 'bk_2', T0 + 60_000)).toEqual({ kind: 'held', seatIds: ['A1'] });
    expect(await healed.counts(first.id)).toEqual({ total, available: total - 1, held: 1, reserved: 0 });
  });

  it('RedisSeatStore: a map Redis lost alone (its owners and bookings kept) is laid out anew, and a booking of the old map frees or reserves none of the seats given since (before 2026-12-03 a seat could be sold twice)', async () => {
    const SMALL: Performance = { id: 'perf_small', title: 'A small room', venue: 'Test hall', startsAt: '2026-03-01T10:00:00.000Z', rows: ['A', 'B'], seatsPerRow: 5, priceMinor: 10_000, currency: 'KRW' };
    const keyPrefix = redis.newPrefix();
    const store = await RedisSeatStore.create(redis.client, { keyPrefix }, [SMALL]);
    const until = T0 + 60_000;
    expect(await store.hold(SMALL.id, 2, 'bk_x', until)).toEqual({ kind: 'held', seatIds: ['A1', 'A2'] });
    await redis.client.del(`${keyPrefix}seats:map:${SMALL.id}`);
    expect(await store.hold(SMALL.id, 2, 'bk_y', until)).toEqual({ kind: 'held', seatIds: ['A1', 'A2'] });
    // X's expiry frees nothing of Y's, and its reserve takes none.
    expect(await store.releaseHeld('bk_x')).toEqual([]);
    expect(await store.reserve('bk_x')).toEqual([]);
    expect(await store.hold(SMALL.id, 2, 'bk_z', until)).toEqual({ kind: 'held', seatIds: ['A3', 'A4'] });
    expect(await store.reserve('bk_y')).toEqual(['A1', 'A2']);
    expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 6, held: 2, reserved: 2 });
    expect(await store.release('bk_x')).toEqual([]);
    expect((await store.seatsOf(SMALL.id))?.slice(0, 4).map((s) => [s.seatId, s.status, s.bookingId])).toEqual([
      ['A1', 'reserved', 'bk_y'],
      ['A2', 'reserved', 'bk_y'],
      ['A3', 'locked', 'bk_z'],
      ['A4', 'locked', 'bk_z'],
    ]);
  });

  it('RedisSeatStore: a booking released while its map is lost frees nothing and leaves no short map behind; the map comes back whole at the next read', async () => {
    const SMALL: Performance = { id: 'perf_small', title: 'A small room', venue: 'Test hall', startsAt: '2026-03-01T10:00:00.000Z', rows: ['A', 'B'], seatsPerRow: 5, priceMinor: 10_000, currency: 'KRW' };
    const keyPrefix = redis.newPrefix();
    const store = await RedisSeatStore.create(redis.client, { keyPrefix }, [SMALL]);
    expect((await store.hold(SMALL.id, 2, 'bk_x', T0 + 60_000)).kind).toBe('held');
    await redis.client.del(`${keyPrefix}seats:map:${SMALL.id}`);
    // Before, the release wrote into the missing key: a map of 2 seats padded with NULs, counts of 12 of 10.
    expect(await store.releaseHeld('bk_x')).toEqual([]);
    expect(await store.release('bk_x')).toEqual([]);
    expect(await redis.client.exists(`${keyPrefix}seats:map:${SMALL.id}`)).toBe(0);
    expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 10, held: 0, reserved: 0 });
    expect(await store.seatsOf(SMALL.id)).toHaveLength(10);
    expect(await store.hold(SMALL.id, 3, 'bk_y', T0 + 60_000)).toEqual({ kind: 'held', seatIds: ['A1', 'A2', 'A3'] });
  });

  it('RedisIdempotencyStore: a claim whose request never settles (a replica killed mid-request) goes at its hold, by a begin or a sweep', async () => {
    const store = new RedisIdempotencyStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs: 1_000, maxKeys: 100, inFlightHoldMs: HOUR });
    const scope = 'POST /v1/sim/payment-intents';
    await Promise.all(['begun', 'swept'].map((key) => store.begin(scope, key, 'fp', T0)));
    expect(await store.sweep(T0 + HOUR - 1)).toBe(0);
    expect(await store.begin(scope, 'begun', 'fp', T0 + HOUR - 1)).toEqual({ kind: 'in_progress' });
    expect(await store.sweep(T0 + HOUR)).toBe(2);
    expect(await store.begin(scope, 'begun', 'fp', T0 + HOUR)).toEqual({ kind: 'started', claim: expect.any(String) });
    expect((await store.stats()).size).toBe(1);
    // A TTL longer than the hold keeps a claim for the TTL.
    const long = new RedisIdempotencyStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs: 2 * HOUR, maxKeys: 100, inFlightHoldMs: HOUR });
    await long.begin(scope, 'k', 'fp', T0);
    expect(await long.begin(scope, 'k', 'fp', T0 + 2 * HOUR - 1)).toEqual({ kind: 'in_progress' });
    expect(await long.begin(scope, 'k', 'fp', T0 + 2 * HOUR)).toEqual({ kind: 'started', claim: expect.any(String) });
  });

  it('RedisIdempotencyStore: a key in progress on a replica that died (its mark of life lapsed) is free for the retry; one on a live replica stays in progress, its mark renewed while it runs', async () => {
    const keyPrefix = redis.newPrefix();
    const options = { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY, aliveMs: 1_500 };
    const killed = new AbortController();
    const dying = new RedisIdempotencyStore(redis.client, { ...options, closed: killed.signal });
    const living = new RedisIdempotencyStore(redis.client, options);
    const other = new RedisIdempotencyStore(redis.client, options);
    const scope = 'POST /v1/sim/intent';
    const begun = await dying.begin(scope, 'on-the-dying', 'fp', T0);
    const running = await living.begin(scope, 'on-the-living', 'fp', T0);
    expect([begun, running]).toEqual([STARTED, STARTED]);
    expect(await other.begin(scope, 'on-the-dying', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
    // The dying replica stops renewing its mark (as a killed process does); the living one renews
    // its own every 500 ms while its request runs, over twice the mark's life.
    killed.abort();
    await sleep(3_500);
    const retry = await other.begin(scope, 'on-the-dying', 'fp', T0 + 2);
    expect(retry).toEqual(STARTED);
    expect(await other.begin(scope, 'on-the-living', 'fp', T0 + 2)).toEqual({ kind: 'in_progress' });
    // The dead request's late answer is not the retry's.
    await dying.complete(scope, 'on-the-dying', (begun as { claim: string }).claim, { statusCode: 200, body: '{"from":"the dead"}' });
    await other.complete(scope, 'on-the-dying', (retry as { claim: string }).claim, { statusCode: 200, body: '{"from":"the retry"}' });
    expect(await living.begin(scope, 'on-the-dying', 'fp', T0 + 3)).toEqual({ kind: 'replay', response: { statusCode: 200, body: '{"from":"the retry"}' } });
    // Settled: the living replica stops renewing; nothing of its runs.
    expect(living.running).toBe(1);
    await living.complete(scope, 'on-the-living', (running as { claim: string }).claim, { statusCode: 201, body: '{}' });
    expect(living.running).toBe(0);
    expect((await other.stats()).size).toBe(2);
  });

  it('RedisIdempotencyStore: a replica’s own key in progress stays its own though its mark lapsed (Redis away longer than the mark), and the mark is set again as Redis serves again', async () => {
    const keyPrefix = redis.newPrefix();
    const store = new RedisIdempotencyStore(redis.client, { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY, aliveMs: 60_000 });
    const mark = async () => redis.client.keys(`${keyPrefix}idem:alive:*`);
    expect(await store.begin('POST /v1/sim/intent', 'k', 'fp', T0)).toEqual(STARTED);
    expect(await mark()).toHaveLength(1);
    await redis.client.del(...(await mark()));
    // The client's retry reaches the replica that runs the request: still in progress, not a twin.
    expect(await store.begin('POST /v1/sim/intent', 'k', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
    store.servedAgain();
    await sleep(50);
    expect(await mark()).toHaveLength(1);
  });

  it('RedisIdempotencyStore: once every request with a key is settled, the mark is no longer renewed, nor set as Redis serves again', async () => {
    const keyPrefix = redis.newPrefix();
    const store = new RedisIdempotencyStore(redis.client, { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY, aliveMs: 300 });
    const begun = await store.begin('POST /v1/sim/intent', 'k', 'fp', T0);
    expect(begun).toEqual(STARTED);
    await store.complete('POST /v1/sim/intent', 'k', (begun as { claim: string }).claim, { statusCode: 200, body: '{}' });
    await sleep(700);
    store.servedAgain();
    await sleep(50);
    expect(await redis.client.keys(`${keyPrefix}idem:alive:*`)).toEqual([]);
  });

  it('RedisIdempotencyStore: a claim whose settle was given up (abandon) no longer counts as running: the mark is no longer renewed for it, and its key stays begun', async () => {
    const keyPrefix = redis.newPrefix();
    const store = new RedisIdempotencyStore(redis.client, { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY, aliveMs: 300 });
    const other = new RedisIdempotencyStore(redis.client, { keyPrefix, ttlMs: DAY, maxKeys: 100, inFlightHoldMs: DAY, aliveMs: 300 });
    const begun = await store.begin('POST /v1/sim/intent', 'k', 'fp', T0);
    if (begun.kind !== 'started') throw new Error('not started');
    await sleep(700);
    expect([store.running, await redis.client.keys(`${keyPrefix}idem:alive:*`)]).toEqual([1, [expect.any(String)]]);
    store.abandon(begun.claim);
    store.abandon(begun.claim);
    expect(store.running).toBe(0);
    await sleep(700);
    store.servedAgain();
    await sleep(50);
    expect(await redis.client.keys(`${keyPrefix}idem:alive:*`)).toEqual([]);
    // The key itself is as it was: begun, this replica's (whose mark has now lapsed: another takes it).
    expect(await store.begin('POST /v1/sim/intent', 'k', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
    const taken = await other.begin('POST /v1/sim/intent', 'k', 'fp', T0 + 2);
    expect(taken).toEqual(STARTED);
    await other.release('POST /v1/sim/intent', 'k', (taken as { claim: string }).claim);
    expect(other.running).toBe(0);
  });

  it('the stores set their replica’s mark of life again when the client is ready again (a reconnect), while a request with a key runs', async () => {
    const client = redis.connect();
    const keyPrefix = redis.newPrefix();
    const closed = new AbortController();
    const stores = await createRedisStores(loadConfig({ STORE: 'redis', REDIS_KEY_PREFIX: keyPrefix }), client, closed.signal);
    try {
      expect(await stores.idempotency.begin('POST /v1/sim/intent', 'k', 'fp', T0)).toEqual(STARTED);
      const mark = async () => redis.client.keys(`${keyPrefix}idem:alive:*`);
      await redis.client.del(...(await mark()));
      client.emit('ready');
      await sleep(50);
      expect(await mark()).toHaveLength(1);
    } finally {
      closed.abort();
      client.disconnect();
    }
  });

  it('RedisIdempotencyStore: a request still running when its key’s hold lapsed neither stores its answer over the claim another request made since nor releases it', async () => {
    const store = new RedisIdempotencyStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs: 1_000, maxKeys: 100, inFlightHoldMs: HOUR });
    const scope = 'POST /v1/sim/payment-intents';
    const slow = await store.begin(scope, 'k', 'fp', T0);
    const slowRelease = await store.begin(scope, 'r', 'fp', T0);
    // The hold lapsed: the client's retries take the keys (on another replica, say).
    const retry = await store.begin(scope, 'k', 'fp', T0 + HOUR);
    const retryR = await store.begin(scope, 'r', 'fp', T0 + HOUR);
    expect([slow, slowRelease, retry, retryR]).toEqual(Array.from({ length: 4 }, () => ({ kind: 'started', claim: expect.any(String) })));
    if (slow.kind !== 'started' || slowRelease.kind !== 'started' || retry.kind !== 'started') throw new Error('not started');
    // The slow requests end now: their answer and their release are not the retries'.
    await store.complete(scope, 'k', slow.claim, { statusCode: 201, body: '{"id":"the slow one"}' });
    await store.release(scope, 'r', slowRelease.claim);
    expect(await store.begin(scope, 'k', 'fp', T0 + HOUR + 1)).toEqual({ kind: 'in_progress' });
    expect(await store.begin(scope, 'r', 'fp', T0 + HOUR + 1)).toEqual({ kind: 'in_progress' });
    await store.complete(scope, 'k', retry.claim, { statusCode: 201, body: '{"id":"the retry"}' });
    expect(await store.begin(scope, 'k', 'fp', T0 + HOUR + 2)).toEqual({ kind: 'replay', response: { statusCode: 201, body: '{"id":"the retry"}' } });
    expect((await store.stats()).size).toBe(2);
  });

  it('RedisIdempotencyStore: a begin past one sweep batch of expired keys (500) still finds its own key expired', async () => {
    const store = new RedisIdempotencyStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs: 1_000, maxKeys: 10_000, inFlightHoldMs: HOUR });
    const scope = 'POST /v1/sim/payment-intents';
    // 600 keys completed at T0; 'zz' sorts after the others, so a sweep of 500 leaves it.
    const keys = [...Array.from({ length: 600 }, (_, i) => `k${String(i).padStart(3, '0')}`), 'zz'];
    const begun = await Promise.all(keys.map((key) => store.begin(scope, key, 'fp', T0)));
    expect(begun).toEqual(keys.map(() => ({ kind: 'started', claim: expect.any(String) })));
    await Promise.all(keys.map((key, i) => store.complete(scope, key, (begun[i] as { claim: string }).claim, { statusCode: 201, body: '{}' })));
    // Expired: another body is a new request, not a mismatch, though the begin's own sweep stopped at 500.
    expect(await store.begin(scope, 'zz', 'another body', T0 + 1_000)).toEqual({ kind: 'started', claim: expect.any(String) });
    // The 100 the sweep left, and zz begun again.
    expect((await store.stats()).size).toBe(101);
  });

  it('RedisLedgerStore reads every entry in the order written past one script chunk (1,000 entries)', async () => {
    const ledger = new RedisLedgerStore(redis.client, { keyPrefix: redis.newPrefix() });
    const ids = createIdFactory(new ManualClock(T0));
    const posted = await Promise.all(Array.from({ length: 1_300 }, (_, i) => ledger.post(paymentTransaction({ reference: `bk_${i}`, amount: 100 + i, currency: 'KRW' }, ids, T0))));
    const entries = await ledger.entries();
    expect(entries).toHaveLength(2_600);
    expect(entries.map((e) => e.entryId)).toEqual(posted.flatMap((t) => t.entries.map((e) => e.entryId)));
    expect(await ledger.imbalance()).toBe(0);
  });
});
