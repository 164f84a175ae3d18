import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisVersionIssue, scriptFlags, withFlags } from '../../src/adapters/redis/connection.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { eventually } from '../helpers/receiver.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';
import { metricSample } from '../helpers/webhooks.ts';

/*
 * A Redis that takes no writes for now: over its `maxmemory` with `noeviction` (the Compose and
 * Kubernetes examples' policy), it answers `OOM command not allowed…`. Before 2026-12-03 the
 * service answered 500 INTERNAL, logged an error per call, and, worse, a script's writes before
 * its first command that needs memory had run: the claim of due work took the due jobs out of the
 * schedule and then failed, so their decisions never came.
 */

describe('redisVersionIssue', () => {
  it('Redis 7.0 and later serve; an older one is named with what the service needs', () => {
    expect(redisVersionIssue('# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n')).toBeUndefined();
    expect(redisVersionIssue('# Server\r\nredis_version:7.4.1\r\n')).toBeUndefined();
    expect(redisVersionIssue('# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n')).toBe('is Redis 6.2.14; paysim needs Redis 7.0 or later (its scripts declare their flags to Redis, a `#!lua` line)');
    // A server that does not say (a proxy): nothing to hold against it.
    expect(redisVersionIssue('# Server\r\n')).toBeUndefined();
  });
});

describe('scriptFlags', () => {
  it('a script that only reads is no-writes; one that also only frees memory is allow-oom; any other write, or a command that is not a literal, may write', () => {
    expect(scriptFlags("return redis.call('HGETALL', KEYS[1])")).toBe('no-writes');
    expect(scriptFlags("local n = redis.call('ZCARD', KEYS[1]) redis.call('DEL', KEYS[2]) redis.pcall(\"ZREM\", KEYS[1], 'a') return n")).toBe('allow-oom');
    expect(scriptFlags("redis.call('ZREM', KEYS[1], 'a') redis.call('INCRBY', KEYS[2], 1)")).toBe('');
    expect(scriptFlags("local command = ARGV[1] return redis.call(command, KEYS[1])")).toBe('');
    expect(scriptFlags("redis.call('del', KEYS[1])")).toBe('allow-oom');
    expect(withFlags("return redis.call('GET', KEYS[1])")).toBe("#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])");
    expect(withFlags("return redis.call('SET', KEYS[1], 1)")).toBe("#!lua\nreturn redis.call('SET', KEYS[1], 1)");
    expect(withFlags('return 1', '')).toBe('#!lua\nreturn 1');
  });
});

if (redisServerOrSkip('a Redis over its maxmemory')) describe('a Redis over its maxmemory', () => {
  let server: RedisServerProcess;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url, { lazyConnect: true });
    await admin.connect();
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  /** A key's contents, whatever its encoding (a hash's DUMP follows its table's order, which a read's rehash step may change). */
  async function contents(key: string): Promise<unknown> {
    const type = await admin.type(key);
    switch (type) {
      case 'hash':
        return Object.entries(await admin.hgetall(key)).sort(([a], [b]) => (a < b ? -1 : 1));
      case 'zset':
        return admin.zrange(key, '0', '-1', 'WITHSCORES');
      case 'stream':
        return admin.xrange(key, '-', '+');
      case 'list':
        return admin.lrange(key, 0, -1);
      case 'set':
        return (await admin.smembers(key)).sort();
      default:
        return admin.get(key);
    }
  }

  /** Every key of the prefix with its contents: equal before and after means nothing was written. */
  async function dataset(prefix: string): Promise<Map<string, unknown>> {
    const keys = (await admin.keys(`${prefix}*`)).sort();
    return new Map(await Promise.all(keys.map(async (key) => [key, await contents(key)] as const)));
  }

  it('a start on a Redis that refuses writes ends on one line that says so and what to do', async () => {
    await admin.config('SET', 'maxmemory', '1');
    try {
      await expect(buildTestApp({ STORE: 'redis', REDIS_URL: server.url, REDIS_KEY_PREFIX: 'full-start:', SCHEDULER_POLL_MS: '0' })).rejects.toMatchObject({
        name: 'RedisUnreachableError',
        message: `Redis at ${server.url} refuses writes (OOM command not allowed when used memory > 'maxmemory'.); Redis is over its maxmemory: give it more memory, or lower the store bounds (README: "Redis memory")`,
      });
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
  });

  it('writes answer 503 STORE_UNAVAILABLE with Retry-After in each dialect’s shape and change nothing; reads and /metrics work; due work waits, nothing lost; one error line says why', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const prefix = 'full:';
    const t: TestApp = await buildTestApp({ STORE: 'redis', REDIS_URL: server.url, REDIS_KEY_PREFIX: prefix, SCHEDULER_POLL_MS: '0' }, { logs });
    try {
      const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_full_1', amount: 1000, scenario: 'approve' } });
      expect(created.statusCode).toBe(200);
      const id = created.json().payment_intent_id as string;
      // The create's event goes to the outbound stream after its answer.
      await eventually(async () => ((await admin.xlen(`${prefix}events`)) === 1 ? true : undefined), 'the created event on the stream');
      const before = await dataset(prefix);

      await admin.config('SET', 'maxmemory', '1');
      // The decision is due; its claim is refused, and it is not lost.
      await t.clock.advance(1_000);
      const native = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_full_2', amount: 1000 } });
      expect([native.statusCode, native.headers['retry-after'], native.json()]).toEqual([
        503,
        '1',
        { error: { code: 'STORE_UNAVAILABLE', message: 'The store is unavailable; retry shortly.', trace_id: expect.any(String) } },
      ]);
      const cancel = await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${id}/cancel` });
      expect([cancel.statusCode, cancel.json().error.code]).toEqual([503, 'STORE_UNAVAILABLE']);
      const booking = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
      expect([booking.statusCode, booking.headers['retry-after'], booking.json()]).toEqual([503, '1', { error: 'The store is unavailable; retry shortly.', code: 'STORE_UNAVAILABLE' }]);

      // Reads still work, and so do /readyz and /metrics.
      const readyz = await t.app.inject({ method: 'GET', url: '/readyz' });
      expect([readyz.statusCode, readyz.json()]).toEqual([200, { status: 'ready' }]);
      const read = await t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` });
      expect([read.statusCode, read.json().status]).toEqual([200, 'PENDING']);
      const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
      expect([metrics.statusCode, metricSample(metrics.body, 'store_records{store="intents"}')]).toEqual([200, 1]);
      expect(await dataset(prefix)).toEqual(before);

      const refusals = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Redis refuses writes'));
      expect(refusals.map((l) => [l.level, l.msg])).toEqual([
        ['error', 'Redis refuses writes: calls that write answer 503 STORE_UNAVAILABLE until it takes them again; Redis is over its maxmemory: give it more memory, or lower the store bounds (README: "Redis memory")'],
      ]);
      // Besides it, only what could not be done and is done later: no 500, no other failure. (The
      // waiting rooms' figures for /metrics come from a script that admits due tickets: a write.)
      const expected = new Set(['due work failed; it will be retried', 'event stream: appending to the event stream failed', 'metrics: a store could not be read; its metrics keep their last values until it can']);
      expect(logs.filter((l) => l.level === 'error' && l !== refusals[0] && !expected.has(l.msg as string))).toEqual([]);

      // Room again: the decision comes, and writes are taken.
      await admin.config('SET', 'maxmemory', '0');
      await eventually(async () => {
        await t.clock.advance(5_000);
        const after = await t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` });
        return after.json().status === 'APPROVED' ? true : undefined;
      }, 'the decision made once Redis takes writes again', 10_000);
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_full_2', amount: 1000 } })).statusCode).toBe(200);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      await t.app.close();
    }
  });
});
