import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evictionOf, evictionWarning } from '../../src/adapters/redis/eviction.ts';
import { buildTestApp } from '../helpers/app.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';

/*
 * A Redis that drops keys to make room (a `maxmemory` with a policy other than `noeviction`, as a
 * cache's configuration or some hosted Redis' default has it) loses records, due work and
 * deliveries without a word. Before 2026-12-03 a start on one said nothing.
 */

describe('what INFO memory says about eviction', () => {
  it('reads maxmemory and the policy from the text as Redis sends it (CRLF lines), and nothing from a text without them', () => {
    const info = '# Memory\r\nused_memory:1056112\r\nmaxmemory:104857600\r\nmaxmemory_human:100.00M\r\nmaxmemory_policy:allkeys-lru\r\nallocator_frag_ratio:1.00\r\n';
    expect(evictionOf(info)).toEqual({ maxmemory: 104857600, policy: 'allkeys-lru' });
    expect(evictionOf('# Memory\r\nused_memory:1056112\r\n')).toBeUndefined();
  });

  it('warns of every policy that evicts under a maxmemory, and of none without one or with noeviction', () => {
    for (const policy of ['allkeys-lru', 'allkeys-lfu', 'allkeys-random', 'volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl']) {
      expect(evictionWarning({ maxmemory: 1024, policy }, 'redis://r:6379')).toBe(
        `Redis at redis://r:6379 evicts keys when full (maxmemory 1024 bytes, maxmemory-policy ${policy}): records, due work and webhook deliveries could then vanish without a word; set maxmemory-policy noeviction, so that a full Redis refuses writes and calls answer 503 (README: "Redis memory")`,
      );
    }
    expect(evictionWarning({ maxmemory: 1024, policy: 'noeviction' }, 'redis://r:6379')).toBeUndefined();
    expect(evictionWarning({ maxmemory: 0, policy: 'allkeys-lru' }, 'redis://r:6379')).toBeUndefined();
  });
});

if (redisServerOrSkip('a Redis that evicts keys when full')) describe('a Redis that evicts keys when full', () => {
  let server: RedisServerProcess;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  /** The start's warnings about eviction with Redis configured so. */
  async function startWarnings(maxmemory: string, policy: string): Promise<Array<[unknown, unknown, unknown, unknown]>> {
    await admin.config('SET', 'maxmemory', maxmemory);
    await admin.config('SET', 'maxmemory-policy', policy);
    const logs: Array<Record<string, unknown>> = [];
    const t = await buildTestApp({ STORE: 'redis', REDIS_URL: server.url, REDIS_KEY_PREFIX: `evict-${policy}-${maxmemory}:`, SCHEDULER_POLL_MS: '0' }, { logs });
    try {
      // It serves all the same: the warning is the start's only word on it.
      const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_evict', amount: 1000 } });
      expect(created.statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
    } finally {
      await t.app.close();
    }
    return logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('evicts keys')).map((l) => [l.level, l.msg, l.maxmemory, l.maxmemoryPolicy]);
  }

  it('a start on a Redis with a maxmemory and an evicting policy says so once, at warn, with what to set', async () => {
    expect(await startWarnings('100mb', 'allkeys-lru')).toEqual([
      [
        'warn',
        `Redis at ${server.url} evicts keys when full (maxmemory 104857600 bytes, maxmemory-policy allkeys-lru): records, due work and webhook deliveries could then vanish without a word; set maxmemory-policy noeviction, so that a full Redis refuses writes and calls answer 503 (README: "Redis memory")`,
        104857600,
        'allkeys-lru',
      ],
    ]);
    expect((await startWarnings('100mb', 'volatile-ttl')).map(([level, , , policy]) => [level, policy])).toEqual([['warn', 'volatile-ttl']]);
  });

  it('says nothing with noeviction (the examples’ policy), nor without a maxmemory (Redis never evicts then)', async () => {
    expect(await startWarnings('100mb', 'noeviction')).toEqual([]);
    expect(await startWarnings('0', 'allkeys-lru')).toEqual([]);
  });

  it('a user whom an ACL refuses INFO (as some hosted Redis do) starts and serves, the policy unchecked, said at debug', async () => {
    await admin.config('SET', 'maxmemory', '100mb');
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await admin.acl('SETUSER', 'noinfo', 'on', '>noinfo-pass', '~*', '&*', '+@all', '-info');
    const logs: Array<Record<string, unknown>> = [];
    const url = server.url.replace('redis://', 'redis://noinfo:noinfo-pass@');
    const t = await buildTestApp({ STORE: 'redis', REDIS_URL: url, REDIS_KEY_PREFIX: 'evict-noinfo:', SCHEDULER_POLL_MS: '0', LOG_LEVEL: 'debug' }, { logs });
    try {
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_evict', amount: 1000 } })).statusCode).toBe(200);
    } finally {
      await t.app.close();
      await admin.config('SET', 'maxmemory', '0');
    }
    expect(logs.filter((l) => typeof l.msg === 'string' && /evicts keys|eviction policy/.test(l.msg)).map((l) => [l.level, l.msg, l.redis])).toEqual([
      ['debug', 'Redis did not answer INFO memory: its eviction policy is not checked', server.url.replace('redis://', 'redis://noinfo:***@')],
    ]);
    expect(JSON.stringify(logs)).not.toContain('noinfo-pass');
  });
});
