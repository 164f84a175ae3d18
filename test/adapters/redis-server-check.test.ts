import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shownRedisUrl } from '../../src/adapters/redis/connection.ts';
import { checkRateCapClock, checkRedisServer, clusterRefusal, evictionOf, RATE_CAP_CLOCK_TRIES, evictionWarning, isClusterNode, redisVersionOf, versionRefusal } from '../../src/adapters/redis/server-check.ts';
import { certificateRefusal, downReason, keptCertificateRefusal, startRefusal } from '../../src/adapters/redis/start-refusals.ts';
import { buildTestApp } from '../helpers/app.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';

/*
 * REDIS_URL as logs, /readyz and start errors show it, and what a start that reached a Redis which
 * refused it says. Before 2026-12-03 a password given as `?password=` (ioredis takes it) was shown
 * as it was, and every refusal read "could not be reached …; start it or set REDIS_URL".
 */
describe('REDIS_URL shown, and a refused start in words', () => {
  it.each([
    ['redis://:s3cr3t@127.0.0.1:6379/3', 'redis://:***@127.0.0.1:6379/3'],
    ['redis://app:s3cr3t@redis:6379', 'redis://app:***@redis:6379'],
    // A password written without its colon: Redis takes it as a user name, and it is hidden all the same.
    ['redis://s3cr3t@redis:6379', 'redis://***@redis:6379'],
    ['redis://127.0.0.1:6379/?password=s3cr3t', 'redis://127.0.0.1:6379/?password=***'],
    ['rediss://redis:6380/?username=app&password=s3cr3t&db=2&family=6', 'rediss://redis:6380/?username=***&password=***&db=2&family=6'],
    ['redis://redis:6379/?sentinelPassword=s3cr3t&password=a&password=b', 'redis://redis:6379/?sentinelPassword=***&password=***'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
  ])('%s is shown as %s', (url, shown) => {
    expect(shownRedisUrl(url)).toBe(shown);
  });

  it('the TIME check: a Redis that cannot be asked (busy with a script, a replica cut off) is asked again, then said at warn and the start goes on; a user without scripts is left to the first store call; Redis 7.2’s refusal words are a refusal too', async () => {
    const where = 'redis://app:***@r:6379';
    const warned: unknown[][] = [];
    const log = { warn: (...args: unknown[]) => void warned.push(args) };
    let asked = 0;
    const busy = { eval: () => (asked++, Promise.reject(new Error('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.'))) };
    await checkRateCapClock(busy as never, where, log as never);
    expect([asked, warned.length, (warned[0]?.[1] as string).startsWith('could not ask Redis whether this user may run TIME')]).toEqual([RATE_CAP_CLOCK_TRIES, 1, true]);
    asked = 0;
    const noScripts = { eval: () => (asked++, Promise.reject(new Error("NOPERM this user has no permissions to run the 'eval' command"))) };
    await checkRateCapClock(noScripts as never, where, log as never);
    expect([asked, warned.length]).toEqual([1, 1]);
    await expect(checkRateCapClock({ eval: () => Promise.resolve(0) } as never, where, log as never)).rejects.toMatchObject({ name: 'RedisUnreachableError' });
    await expect(checkRateCapClock({ eval: () => Promise.resolve(1) } as never, where, log as never)).resolves.toBeUndefined();
    expect(startRefusal(where, "ERR ACL failure in script: User app has no permissions to run the 'time' command script: f, on @user_script:1.")).toMatch(/^Redis at redis:\/\/app:\*\*\*@r:6379 refuses this user a command or key that paysim needs \(ERR ACL failure in script/);
  });

  it('says what Redis refused and what to set, on one line', () => {
    const at = 'redis://app:***@r:6379';
    expect(startRefusal(at, 'WRONGPASS invalid username-password pair or user is disabled.')).toBe(
      `Redis at ${at} refused the user or password (WRONGPASS invalid username-password pair or user is disabled.); set the ones it knows in REDIS_URL`,
    );
    expect(startRefusal(at, 'NOAUTH HELLO must be called with the client already authenticated')).toBe(
      `Redis at ${at} asks for a password (NOAUTH HELLO must be called with the client already authenticated); put it in REDIS_URL: redis://:password@host, or redis://user:password@host for an ACL user`,
    );
    expect(startRefusal(at, "NOPERM User app has no permissions to run the 'evalsha' command")).toBe(
      `Redis at ${at} refuses this user a command or key that paysim needs (NOPERM User app has no permissions to run the 'evalsha' command); give it the keys under REDIS_KEY_PREFIX and the commands the README names (Running several replicas)`,
    );
    expect(startRefusal(at, 'connect ECONNREFUSED 127.0.0.1:6379')).toBe(`Redis at ${at} could not be reached (connect ECONNREFUSED 127.0.0.1:6379); start it or set REDIS_URL`);
  });

  it('while reconnecting, a refused client certificate stays the reason through the later attempts reset after the handshake (TLS 1.3: the write before the alert), not through a reset before it or another error (a review: /readyz flipped to "is unreachable (write ECONNRESET)")', () => {
    const at = 'rediss://r:6380';
    const failure = (code: string, message: string): Error => Object.assign(new Error(message), { code });
    const alert = failure('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'error:0A000418:SSL routines::tlsv1 alert unknown ca');
    const reset = failure('ECONNRESET', 'write ECONNRESET');
    const refused = `Redis at ${at} refused the client certificate of REDIS_TLS_CERT (TLS alert unknown ca: not signed by a CA it trusts); give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key signed by a CA in its tls-ca-cert-file`;
    // Each attempt's error and whether its handshake was over, folded as watched-client.ts does; the reason after each.
    const attempts: Array<[Error, boolean]> = [
      [reset, true],
      [alert, true],
      [reset, true],
      [failure('EPIPE', 'write EPIPE'), true],
      [reset, true],
      [reset, false],
      [alert, true],
      [failure('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:6380'), false],
      [reset, true],
    ];
    let kept: string | undefined;
    const reasons = attempts.map(([error, afterHandshake]) => {
      kept = keptCertificateRefusal(certificateRefusal(at, error), kept, error, afterHandshake);
      return downReason(at, error.message, kept);
    });
    const unreachable = (why: string): string => `Redis at ${at} is unreachable (${why})`;
    expect(reasons).toEqual([
      unreachable('write ECONNRESET'),
      refused,
      refused,
      refused,
      refused,
      unreachable('write ECONNRESET'),
      refused,
      unreachable('connect ECONNREFUSED 127.0.0.1:6380'),
      unreachable('write ECONNRESET'),
    ]);
  });
});

/*
 * A Redis older than 7.0 (Ubuntu 22.04's and Debian 11's packages are 6.0): before 2026-12-03 a
 * start on one went on, and the webhook delivery queue then failed on its streams' commands.
 */

describe('the database a start selects again', () => {
  it('only Redis refusing it is told as a refused database; a connection lost meanwhile is the start’s own failure, unchanged', async () => {
    const lost = new Error('Connection is closed.');
    // INFO answered with no section it reads: the start goes on to the database.
    const client = { options: { db: 3 }, info: () => Promise.resolve(''), select: () => Promise.reject(lost) } as unknown as Parameters<typeof checkRedisServer>[0];
    await expect(checkRedisServer(client, 'redis://r:6379/3', {} as Parameters<typeof checkRedisServer>[2])).rejects.toBe(lost);
  });
});

describe('the Redis version a start asks for', () => {
  it('reads redis_version from INFO server (Valkey says the Redis version it matches there)', () => {
    expect(redisVersionOf('# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n')).toBe('7.0.15');
    expect(redisVersionOf('# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n')).toBe('7.2.4');
    expect(redisVersionOf('# Server\r\n')).toBeUndefined();
  });

  it('refuses what is older than 7.0 with one line that names the version and what to do, and takes 7.0 and later', () => {
    for (const version of ['7.0.0', '7.0.15', '7.2.4', '7.4.1', '8.0.2', '10.1.0']) expect(versionRefusal(version, 'redis://r:6379')).toBeUndefined();
    for (const version of ['6.2.14', '6.0.16', '5.0.7', '2.8.0']) {
      expect(versionRefusal(version, 'redis://r:6379')).toBe(
        `Redis at redis://r:6379 is version ${version}; paysim needs Redis 7.0 or later (its webhook delivery queue reads the consumer group's lag, which XINFO GROUPS gives from 7.0): upgrade it, or set REDIS_URL to another`,
      );
    }
  });
});

describe('a node of a Redis Cluster', () => {
  it('is read from INFO cluster', () => {
    expect(isClusterNode('# Cluster\r\ncluster_enabled:1\r\n')).toBe(true);
    expect(isClusterNode('# Cluster\r\ncluster_enabled:0\r\n')).toBe(false);
    expect(isClusterNode('')).toBe(false);
  });

  /*
   * Before 2026-12-03 a start on one ended on its first script's "non local key" refusal, told as
   * "could not be reached …; start it or set REDIS_URL".
   */
  if (redisServerOrSkip('a start on a node of a real Redis Cluster')) {
    it('a start on one ends on one line that says why and what to use instead, whatever database REDIS_URL names', async () => {
      const node = await startRedisServer({ extraArgs: ['--cluster-enabled', 'yes'] });
      try {
        for (const url of [node.url, `${node.url}/3`]) {
          await expect(buildTestApp({ STORE: 'redis', REDIS_URL: url, REDIS_KEY_PREFIX: 'cluster-node:', SCHEDULER_POLL_MS: '0' })).rejects.toMatchObject({
            name: 'RedisUnreachableError',
            message: clusterRefusal(url),
          });
        }
        expect(clusterRefusal('redis://r:6379')).toBe(
          'Redis at redis://r:6379 is a node of a Redis Cluster (cluster_enabled:1); paysim needs one Redis server, not Redis Cluster: each store operation is one script over several keys, which a cluster runs only when they share a hash slot. Set REDIS_URL to a standalone Redis (a primary with replicas and Sentinel will do) or a managed Redis with cluster mode disabled',
        );
      } finally {
        await node.stop();
      }
    });
  }
});

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

  it('warns of every policy that evicts under a maxmemory, saying what it may drop (with volatile-*, only the keys with a time to live: a user test), and of none without one or with noeviction', () => {
    for (const policy of ['allkeys-lru', 'allkeys-lfu', 'allkeys-random']) {
      expect(evictionWarning({ maxmemory: 1024, policy }, 'redis://r:6379')).toBe(
        `Redis at redis://r:6379 evicts keys when full (maxmemory 1024 bytes, maxmemory-policy ${policy}): records, due work and webhook deliveries could then vanish without a word; set maxmemory-policy noeviction, so that a full Redis refuses writes and calls answer 503 (README: "Redis memory")`,
      );
    }
    for (const policy of ['volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl']) {
      expect(evictionWarning({ maxmemory: 1024, policy }, 'redis://r:6379')).toBe(
        `Redis at redis://r:6379 evicts keys when full (maxmemory 1024 bytes, maxmemory-policy ${policy}): the replies kept for calls sent again after a lost reply (a refund could then be made twice) and the replicas' marks of life (a running Idempotency-Key taken for a dead replica's) could then vanish without a word; set maxmemory-policy noeviction, so that a full Redis refuses writes and calls answer 503 (README: "Redis memory")`,
      );
    }
    expect(evictionWarning({ maxmemory: 1024, policy: 'noeviction' }, 'redis://r:6379')).toBeUndefined();
    expect(evictionWarning({ maxmemory: 0, policy: 'allkeys-lru' }, 'redis://r:6379')).toBeUndefined();
  });
});

if (redisServerOrSkip('what a start asks of a real Redis')) describe('what a start asks of a real Redis (its database, version and eviction policy) and how it says Redis refused it', () => {
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

  it('a start on a Redis that says it is 6.2 ends on one line that says what is needed, and leaves nothing behind', async () => {
    // The real server behind a proxy that changes its INFO server's version line only (same length, so the reply's size holds).
    const real = redisVersionOf(await admin.info('server'))!;
    const older = `6.2.${'9'.repeat(real.length - 4)}`;
    const proxy = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: server.port });
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => client.write(chunk.toString('latin1').replace(`redis_version:${real}`, `redis_version:${older}`), 'latin1'));
      const end = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const url = `redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      await expect(buildTestApp({ STORE: 'redis', REDIS_URL: url, REDIS_KEY_PREFIX: 'old-version:', SCHEDULER_POLL_MS: '0' })).rejects.toMatchObject({
        name: 'RedisUnreachableError',
        message: `Redis at ${url} is version ${older}; paysim needs Redis 7.0 or later (its webhook delivery queue reads the consumer group's lag, which XINFO GROUPS gives from 7.0): upgrade it, or set REDIS_URL to another`,
      });
      // Refused before the stores were made: no key of the prefix written.
      expect(await admin.keys('old-version:*')).toEqual([]);
    } finally {
      proxy.close();
      await once(proxy, 'close');
    }
  });

  it('a user with only its keys and the categories the README names, and TIME (no INFO, no CLIENT, no @admin, no other command of @fast) serves: intents, their webhooks, bookings, FluxPay, fault rules, /readyz; its only warnings say the notices are refused', async () => {
    await admin.acl('SETUSER', 'least', 'on', '>least-pass', 'resetkeys', '~least:*', 'resetchannels', '-@all', '+@read', '+@write', '+@scripting', '+@stream', '+@connection', '+time');
    const url = server.url.replace('redis://', 'redis://least:least-pass@');
    const rx = await startReceiver();
    const logs: Array<Record<string, unknown>> = [];
    const t = await buildTestApp({ STORE: 'redis', REDIS_URL: url, REDIS_KEY_PREFIX: 'least:', SCHEDULER_POLL_MS: '50', DEFAULT_APPROVE_DELAY_MS: '0' }, { logs, clockStart: Date.now() });
    try {
      const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_least', amount: 1000, webhook_url: rx.url() } });
      expect(created.statusCode).toBe(200);
      await t.clock.advance(1_000);
      await rx.waitFor(1);
      expect(JSON.parse(rx.requests[0]!.body)).toMatchObject({ type: 'payment.approved', payment_intent_id: created.json().payment_intent_id, status: 'APPROVED' });
      const booking = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
      expect(booking.statusCode).toBe(201);
      const order = await t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'idempotency-key': 'least-order-1' }, payload: { userId: 'user_1', serviceId: 'ai-writer', orderName: 'least', amount: 1000 } });
      expect(order.statusCode).toBeLessThan(300);
      // Fault rules on a fresh prefix: their first revision used Redis' TIME (@fast) before 2026-12-03, so these answered 500.
      const rule = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match: { dialect: 'fluxpay' }, action: { type: 'error', status: 503 } } });
      expect(rule.statusCode).toBe(201);
      expect((await t.app.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'idempotency-key': 'least-order-2' }, payload: { userId: 'user_1', serviceId: 'ai-writer', orderName: 'least', amount: 1000 } })).statusCode).toBe(503);
      expect((await t.app.inject({ method: 'DELETE', url: '/v1/sim/rules' })).statusCode).toBe(200);
      // A namespace and its reset: the reset's message on the channel is refused to this user (no channels, no @pubsub), the reset is not.
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'x-sim-namespace': 'least-ns' }, payload: { reservation_id: 'res_least_ns', amount: 1000 } })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'DELETE', url: '/v1/sim/namespaces/least-ns' })).json()).toEqual({ namespace: 'least-ns', existed: true });
      expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
    } finally {
      await t.app.close();
      await rx.close();
    }
    // Its only warnings: Redis refused the replicas' notices (no channels, no @pubsub: see the README), once per channel.
    const warnings = logs.filter((l) => l.level === 'error' || l.level === 'warn').map((l) => [l.level, l.channel, String(l.msg).split(':')[0], String(l.redis_error).split(' ')[0]]);
    expect(warnings.sort((a, b) => String(a[1]).localeCompare(String(b[1])))).toEqual([
      ['warn', 'least:faults:changed', "Redis refused this replica's subscription to fault-rule change notices", 'NOPERM'],
      ['warn', 'least:namespaces:reset', "Redis refused this replica's subscription to namespace reset notices", 'NOPERM'],
      ['warn', 'least:ns:least-ns:faults:changed', "Redis refused this replica's subscription to fault-rule change notices", 'NOPERM'],
    ]);
  });

  it('a user refused TIME (the README’s categories without +time) ends the start on one line that says what to give it, with the shared rate cap on; with WEBHOOK_MAX_RPS=0 (none) it starts (a user test: it started, and every webhook waited in the stream for good)', async () => {
    await admin.acl('SETUSER', 'notime', 'on', '>notime-pass', 'resetkeys', '~notime:*', 'resetchannels', '-@all', '+@read', '+@write', '+@scripting', '+@stream', '+@connection');
    const at = server.url.replace('redis://', '');
    const env = { STORE: 'redis', REDIS_URL: `redis://notime:notime-pass@${at}`, REDIS_KEY_PREFIX: 'notime:', SCHEDULER_POLL_MS: '0' };
    const refused = await buildTestApp({ ...env, WEBHOOK_MAX_RPS: '50' }).then(
      () => new Error('started'),
      (error: unknown) => error as Error,
    );
    expect([refused.name, refused.message]).toEqual([
      'RedisUnreachableError',
      `Redis at redis://notime:***@${at} refuses this user TIME (its ACL), which the shared webhook rate cap reads for one clock on every replica: give the user +time (or the category @fast), or set WEBHOOK_MAX_RPS=0 for no rate cap`,
    ]);
    expect(refused.message).not.toContain('notime-pass');
    const t = await buildTestApp({ ...env, WEBHOOK_MAX_RPS: '0' });
    try {
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_notime', amount: 1000 } })).statusCode).toBe(200);
    } finally {
      await t.app.close();
    }
  });

  it('a user whose channels are taken while a replica runs (its namespace-reset subscription then refused): the replica serves on, nothing unhandled (a review: ioredis’ own resubscribe left the NOPERM unhandled, and the process shut down)', async () => {
    await admin.acl('SETUSER', 'losing', 'on', '>losing-pass', 'resetkeys', '~losing:*', 'resetchannels', '&losing:*', '+@all');
    const url = server.url.replace('redis://', 'redis://losing:losing-pass@');
    const logs: Array<Record<string, unknown>> = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const t = await buildTestApp({ STORE: 'redis', REDIS_URL: url, REDIS_KEY_PREFIX: 'losing:', SCHEDULER_POLL_MS: '0' }, { logs });
    try {
      const subscribers = async () => Number(((await admin.call('PUBSUB', 'NUMSUB', 'losing:namespaces:reset')) as [string, number])[1]);
      for (let i = 0; i < 50 && (await subscribers()) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await subscribers()).toBe(1);
      // Redis drops the subscribed connection at once; it comes back, and its SUBSCRIBE is refused.
      await admin.acl('SETUSER', 'losing', 'resetchannels');
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await subscribers()).toBe(0);
      expect(unhandled).toEqual([]);
      expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_losing', amount: 1000 } })).statusCode).toBe(200);
    } finally {
      await t.app.close();
      process.off('unhandledRejection', onUnhandled);
    }
    expect(logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  });

  it('a start that Redis refuses (a wrong password, also as ?password=; a user without scripts; keys outside its patterns) ends on one line saying which, its password never shown', async () => {
    await admin.acl('SETUSER', 'noscripts', 'on', '>noscripts-pass', '~*', '&*', '+@all', '-@scripting');
    await admin.acl('SETUSER', 'otherkeys', 'on', '>otherkeys-pass', 'resetkeys', '~other:*', '&*', '+@all');
    await admin.acl('SETUSER', 'nohset', 'on', '>nohset-pass', '~*', '&*', '+@all', '-hset');
    const at = server.url.replace('redis://', '');
    const cases: Array<[string, string, string]> = [
      [`redis://least:wrong-pass-1@${at}`, `redis://least:***@${at}`, 'refused the user or password (WRONGPASS invalid username-password pair or user is disabled.); set the ones it knows in REDIS_URL'],
      [`redis://${at}/?username=least&password=wrong-pass-2`, `redis://${at}/?username=***&password=***`, 'refused the user or password (WRONGPASS invalid username-password pair or user is disabled.); set the ones it knows in REDIS_URL'],
      [`redis://noscripts:noscripts-pass@${at}`, `redis://noscripts:***@${at}`, "refuses this user a command or key that paysim needs (NOPERM this user has no permissions to run the 'evalsha' command); give it the keys under REDIS_KEY_PREFIX and the commands the README names (Running several replicas)"],
      [`redis://otherkeys:otherkeys-pass@${at}`, `redis://otherkeys:***@${at}`, 'refuses this user a command or key that paysim needs ('],
      // A command refused inside a script (Redis words it otherwise than NOPERM).
      [`redis://nohset:nohset-pass@${at}`, `redis://nohset:***@${at}`, 'refuses this user a command or key that paysim needs ('],
    ];
    for (const [url, shown, says] of cases) {
      const refused = await buildTestApp({ STORE: 'redis', REDIS_URL: url, REDIS_KEY_PREFIX: 'refused:', SCHEDULER_POLL_MS: '0' }).then(
        () => new Error('started'),
        (error: unknown) => error as Error,
      );
      expect([refused.name, refused.message.startsWith(`Redis at ${shown} ${says}`), refused.message]).toEqual(['RedisUnreachableError', true, expect.any(String)]);
      expect(refused.message).not.toMatch(/wrong-pass|noscripts-pass|otherkeys-pass|nohset-pass/);
      expect(refused.message).not.toContain('\n');
    }
  });

  it('a database REDIS_URL names is used; one Redis refuses ends the start on one line instead of going on in database 0', async () => {
    const three = new Redis(`${server.url}/3`);
    try {
      const t = await buildTestApp({ STORE: 'redis', REDIS_URL: `${server.url}/3`, REDIS_KEY_PREFIX: 'db3:', SCHEDULER_POLL_MS: '0' });
      try {
        expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_db3', amount: 1000 } })).statusCode).toBe(200);
      } finally {
        await t.app.close();
      }
      expect((await three.keys('db3:*')).length).toBeGreaterThan(0);
      expect(await admin.keys('db3:*')).toEqual([]);
    } finally {
      three.disconnect();
    }
    await expect(buildTestApp({ STORE: 'redis', REDIS_URL: `${server.url}/42`, REDIS_KEY_PREFIX: 'db42:', SCHEDULER_POLL_MS: '0' })).rejects.toMatchObject({
      name: 'RedisUnreachableError',
      message: `Redis at ${server.url}/42 refused database 42 (ERR DB index is out of range): the database number of REDIS_URL must be below Redis' "databases" (16 unless configured otherwise), and an ACL user needs SELECT; the keys would go to database 0`,
    });
    // Before 2026-12-03 the start went on, and wrote to database 0.
    expect(await admin.keys('db42:*')).toEqual([]);
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
      ['debug', 'Redis did not answer INFO: its version, cluster mode and eviction policy are not checked', server.url.replace('redis://', 'redis://noinfo:***@')],
    ]);
    expect(JSON.stringify(logs)).not.toContain('noinfo-pass');
  });
});
