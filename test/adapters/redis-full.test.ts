import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { createRedisClient, READONLY_RECONNECT_MS, readonlyReconnects, SWEEP_BATCH } from '../../src/adapters/redis/connection.ts';
import { isRedisUnavailable } from '../../src/adapters/redis/unavailable.ts';
import { RedisIdempotencyStore } from '../../src/adapters/redis/idempotency.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { eventually } from '../helpers/receiver.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';
import { metricSample } from '../helpers/webhooks.ts';

/*
 * A Redis that takes no writes for now: over its `maxmemory` with `noeviction` (the Compose and
 * Kubernetes examples' policy), it answers `OOM command not allowed…`. Before 2026-12-03 the
 * service answered 500 INTERNAL ("the request may be retried") with an error line per call, and a
 * start on it said Redis could not be reached.
 */

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

  it('a start on a Redis that refuses writes ends on one line that says so and what to do', async () => {
    await admin.config('SET', 'maxmemory', '1');
    try {
      const started = buildTestApp({ STORE: 'redis', REDIS_URL: server.url, REDIS_KEY_PREFIX: 'full-start:', SCHEDULER_POLL_MS: '0' });
      await expect(started).rejects.toMatchObject({
        name: 'RedisUnreachableError',
        // Redis names the script and its line where it refused it.
        message: expect.stringMatching(new RegExp(`^Redis at ${server.url} refuses writes \\(OOM command not allowed when used memory > 'maxmemory'\\.[^)]*\\); Redis is over its maxmemory: give it more memory, or lower the store bounds \\(README: "Redis memory"\\)$`)),
      });
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
  });

  it('an Idempotency-Key taken on a full Redis (its begin swept an expired key first, so Redis let it finish) is given back there too', async () => {
    const store = new RedisIdempotencyStore(admin, { keyPrefix: 'full-idem:', ttlMs: 1_000, maxKeys: 100, inFlightHoldMs: 1_000 });
    const scope = 'POST /v1/sim/intent';
    const old = await store.begin(scope, 'old', 'fp', 0);
    if (old.kind !== 'started') throw new Error('not started');
    await store.complete(scope, 'old', old.claim, { statusCode: 200, body: '{}' });
    await admin.config('SET', 'maxmemory', '1');
    try {
      const taken = await store.begin(scope, 'new', 'fp', 5_000);
      if (taken.kind !== 'started') throw new Error('not started');
      await store.release(scope, 'new', taken.claim);
      expect(await store.stats()).toEqual({ size: 0, max: 100, bytes: 0 });
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
  });

  it('the idempotency sweep frees expired keys on a full Redis even when a running request’s expired key comes first', async () => {
    const store = new RedisIdempotencyStore(admin, { keyPrefix: 'full-sweep:', ttlMs: 1_000, maxKeys: 100, inFlightHoldMs: 10_000 });
    const scope = 'POST /v1/sim/intent';
    // Still running past its TTL (expired at 1,000, held until 10,000), then one completed (expired at 1,010).
    const running = await store.begin(scope, 'running', 'fp', 0);
    const done = await store.begin(scope, 'done', 'fp', 10);
    if (running.kind !== 'started' || done.kind !== 'started') throw new Error('not started');
    await store.complete(scope, 'done', done.claim, { statusCode: 200, body: '{}' });
    await admin.config('SET', 'maxmemory', '1');
    try {
      // Before 2026-12-03 the running key's move to its hold was the script's first write: refused, nothing freed.
      expect(await store.sweep(2_000)).toBe(1);
      expect((await store.stats()).size).toBe(1);
      expect(await admin.zscore('full-sweep:idem:order', `${scope}\nrunning`)).toBe('10000');
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      await store.release(scope, 'running', running.claim);
    }
  });

  it('the idempotency sweep gets past a whole batch of running requests’ expired keys on a full Redis, and frees what follows', async () => {
    const store = new RedisIdempotencyStore(admin, { keyPrefix: 'full-sweep-batch:', ttlMs: 1_000, maxKeys: 10_000, inFlightHoldMs: 10_000 });
    const scope = 'POST /v1/sim/intent';
    // A whole sweep batch of requests still running past their TTL (expired at 1,000, held until 10,000), then one completed (expired at 1,010).
    const running = await Promise.all(Array.from({ length: SWEEP_BATCH }, (_, i) => store.begin(scope, `running-${i}`, 'fp', 0)));
    const done = await store.begin(scope, 'done', 'fp', 10);
    if (done.kind !== 'started' || running.some((r) => r.kind !== 'started')) throw new Error('not started');
    await store.complete(scope, 'done', done.claim, { statusCode: 200, body: '{}' });
    await admin.config('SET', 'maxmemory', '1');
    try {
      // Before, the first run's first write was a running key's move to its hold: refused, and each sweep failed on the same batch.
      expect(await store.sweep(2_000)).toBe(1);
      expect((await store.stats()).size).toBe(SWEEP_BATCH);
      // Left where they were, to be moved by a sweep once Redis takes writes again.
      expect(await admin.zscore('full-sweep-batch:idem:order', `${scope}\nrunning-0`)).toBe('1000');
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      for (const [i, r] of running.entries()) if (r.kind === 'started') await store.release(scope, `running-${i}`, r.claim);
    }
  });

  it('a sweep leaves running keys in place only when Redis is full: another refusal (a replica’s READONLY) is the sweep’s error', async () => {
    const store = new RedisIdempotencyStore(admin, { keyPrefix: 'full-sweep-ro:', ttlMs: 1_000, maxKeys: 100, inFlightHoldMs: 10_000 });
    const scope = 'POST /v1/sim/intent';
    const running = await store.begin(scope, 'running', 'fp', 0);
    if (running.kind !== 'started') throw new Error('not started');
    // A replica of nothing that answers: it keeps its data and refuses writes.
    await admin.call('REPLICAOF', '127.0.0.1', '1');
    try {
      await expect(store.sweep(2_000)).rejects.toThrow(/^READONLY /);
    } finally {
      await admin.call('REPLICAOF', 'NO', 'ONE');
      await store.release(scope, 'running', running.claim);
    }
  });

  it('writes answer 503 STORE_UNAVAILABLE with Retry-After in each dialect’s shape; reads, /readyz and /metrics work; due work waits and is done once Redis takes writes again; one error line says why', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const prefix = 'full:';
    const t: TestApp = await buildTestApp({ STORE: 'redis', REDIS_URL: server.url, REDIS_KEY_PREFIX: prefix, SCHEDULER_POLL_MS: '0', IDEMPOTENCY_TTL_MS: '1000' }, { logs });
    try {
      const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'idempotency-key': 'full-1' }, payload: { reservation_id: 'res_full_1', amount: 1000, scenario: 'approve' } });
      expect(created.statusCode).toBe(200);
      const id = created.json().payment_intent_id as string;
      const others = 11;
      for (let i = 0; i < others; i++) expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `res_full_other_${i}`, amount: 1000 } })).statusCode).toBe(200);

      await admin.config('SET', 'maxmemory', '1');
      // The decisions are due: claimed (the claim's first write frees memory, so Redis lets it
      // finish), each refused at its first write, and none lost.
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
      expect([metrics.statusCode, metricSample(metrics.body, 'store_records{store="intents"}')]).toEqual([200, 1 + others]);
      // The sweep still frees room: the key, past its TTL, goes.
      expect(await t.app.core.stores.idempotency.sweep(t.clock.now())).toBe(1);
      expect((await t.app.core.stores.idempotency.stats()).size).toBe(0);
      // A keyed create: its key is taken (the begin's sweep deletes first, so Redis lets it finish),
      // the create is refused, and its key given back at once: the client's retry gets the 503 again, not 409.
      for (let i = 0; i < 2; i++) {
        const keyed = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers: { 'idempotency-key': 'full-2' }, payload: { reservation_id: 'res_full_3', amount: 1000 } });
        expect([keyed.statusCode, keyed.json().error.code]).toEqual([503, 'STORE_UNAVAILABLE']);
      }
      expect(t.app.core.lateSettles.pending).toBe(0);
      // Nothing the refused calls asked for is there.
      expect(await admin.exists(`${prefix}int:res:res_full_2`)).toBe(0);
      expect(await admin.hget(`${prefix}int:r:${id}`, 's')).toBe('PENDING');

      const refusals = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Redis refuses writes'));
      expect(refusals.map((l) => [l.level, l.msg])).toEqual([
        ['error', 'Redis refuses writes: calls that write answer 503 STORE_UNAVAILABLE until it takes them again; Redis is over its maxmemory: give it more memory, or lower the store bounds (README: "Redis memory")'],
      ]);
      // Redis' answer, without a stack (ioredis' own, before 2026-12-08).
      expect(refusals.map((l) => [String(l.redis_error).replace(/ script: .*$/, ''), l.err])).toEqual([["OOM command not allowed when used memory > 'maxmemory'.", undefined]]);
      // The twelve decisions that failed: one line (not one each), at warn.
      expect(logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('due work')).map((l) => [l.level, l.msg, l.job_kind])).toEqual([
        ['warn', 'due work could not be done: the store is unavailable; it will be retried', 'intent.decide'],
      ]);
      expect(logs.find((l) => l.msg === 'due work could not be done: the store is unavailable; it will be retried')?.failed).toBe(1);
      // Besides them, only what could not be done and is done later: no 500, no other failure. (The
      // waiting rooms' figures for /metrics come from a script that admits due tickets: a write.)
      const streamFailed = (l: Record<string, unknown>): boolean => /^event stream: \d+ event\(s\) could not be appended: Redis is unreachable or refuses writes; /.test(String(l.msg));
      const expected = new Set(['metrics: a store could not be read; its metrics keep their last values until it can']);
      expect(logs.filter((l) => l.level === 'error' && l !== refusals[0] && !expected.has(l.msg as string) && !streamFailed(l))).toEqual([]);
      // The event stream's failures: one line within 10 s however many appends Redis refused (a user test: pairs of lines, flipping), in Redis' words, without a stack.
      const streamLines = logs.filter(streamFailed);
      expect(streamLines.length).toBeLessThanOrEqual(1);
      for (const line of streamLines) expect([line.err, String(line.redis_error)]).toEqual([undefined, expect.stringMatching(/^OOM /)]);

      // Room again: the decision comes, and writes are taken.
      await admin.config('SET', 'maxmemory', '0');
      await eventually(async () => {
        await t.clock.advance(5_000);
        const after = await t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` });
        return after.json().status === 'APPROVED' ? true : undefined;
      }, 'the decision made once Redis takes writes again', 10_000);
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_full_2', amount: 1000 } })).statusCode).toBe(200);
      // What the stream missed, said once it takes appends again, in words that fit a full Redis too.
      const missed = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('event stream: appending works again'));
      expect(missed.map((l) => String(l.msg).replace(/\d+ event/, 'N event'))).toEqual(
        missed.length === 0 ? [] : ['event stream: appending works again; N event(s) published while Redis was unreachable or refused writes are not in the stream (event_stream_missed_events counts them)'],
      );
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      await t.app.close();
    }
  });
});

/** A TCP proxy to one of two Redis ports; `to` points new connections at another (as a failover moves a name). */
async function switchingProxy(port: number): Promise<{ url: string; to(port: number): void; close(): Promise<void> }> {
  let upstream = port;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const target = createConnection({ host: '127.0.0.1', port: upstream });
    for (const socket of [client, target]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(target).pipe(client);
    client.on('close', () => target.destroy());
    target.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`,
    to: (next) => {
      upstream = next;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

if (redisServerOrSkip('a Redis that became a replica (a failover)')) describe('a Redis that became a replica (a failover)', () => {
  it('a write it refuses (READONLY) answers as unavailable, and the client connects again: through a name that now leads to the new primary, the next write is taken', async () => {
    const primary = await startRedisServer();
    const demoted = await startRedisServer();
    const admin = new Redis(demoted.url);
    await admin.replicaof('127.0.0.1', String(primary.port));
    const proxy = await switchingProxy(demoted.port);
    const client = createRedisClient({ url: proxy.url });
    try {
      const refused = (await client.set('k', 'v').catch((error: unknown) => error)) as Error;
      expect([refused.message.startsWith('READONLY '), isRedisUnavailable(refused)]).toEqual([true, true]);
      // The failover moved the name; the connection open on the old primary is dropped, and the next one reaches the new.
      proxy.to(primary.port);
      await eventually(async () => ((await client.set('k', 'v').catch(() => 'refused')) === 'OK' ? true : undefined), 'a write taken by the new primary', 5_000);
      const check = new Redis(primary.url);
      expect(await check.get('k')).toBe('v');
      check.disconnect();
    } finally {
      client.disconnect();
      admin.disconnect();
      await proxy.close();
      await demoted.stop();
      await primary.stop();
    }
  });

  it('it connects again at most once a second however many writes are refused: reads go on being answered meanwhile (before 2026-12-06 each refused write dropped the connection, and a user test saw /readyz at 503 nearly all the time)', async () => {
    const replica = await startRedisServer();
    const admin = new Redis(replica.url);
    await admin.set('k', 'before');
    // A replica of a primary that is not there: it serves reads and refuses every write.
    await admin.replicaof('127.0.0.1', '1');
    const client = createRedisClient({ url: replica.url });
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    try {
      await client.get('k');
      const started = Date.now();
      const reads: string[] = [];
      for (let i = 0; i < 20; i++) {
        const refused = (await client.set('k', 'v').catch((error: unknown) => error)) as Error;
        expect(refused.message.startsWith('READONLY ')).toBe(true);
        reads.push(String(await client.get('k').catch((error: unknown) => (error as Error).message)));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const seconds = (Date.now() - started) / 1000;
      // The first refusal connects again at once (a failover's name may have moved), then at most one a second.
      expect(reconnects).toBeLessThanOrEqual(1 + Math.ceil(seconds));
      expect(reads.filter((read) => read !== 'before').length).toBeLessThanOrEqual(reconnects);
    } finally {
      client.disconnect();
      await admin.replicaof('NO', 'ONE');
      admin.disconnect();
      await replica.stop();
    }
  });

  it('readonlyReconnects: yes to a READONLY reply, then no for READONLY_RECONNECT_MS, and never to another error; each client (its options, as ioredis calls it) has its own second (a review: a duplicate()d stream reader waited on the main client’s)', () => {
    let now = 5_000;
    const reconnect = readonlyReconnects(() => now);
    const [main, reader] = [{ name: 'main client options' }, { name: 'a duplicate’s options' }];
    const readonly = new Error("READONLY You can't write against a read only replica.");
    expect([reconnect.call(main, readonly), reconnect.call(main, readonly), reconnect.call(main, new Error('OOM command not allowed'))]).toEqual([true, false, false]);
    expect([reconnect.call(reader, readonly), reconnect.call(reader, readonly)]).toEqual([true, false]);
    now += READONLY_RECONNECT_MS - 1;
    expect(reconnect.call(main, readonly)).toBe(false);
    now += 1;
    expect([reconnect.call(main, readonly), reconnect.call(main, readonly)]).toEqual([true, false]);
  });
});

/*
 * A Redis whose ACL narrows paysim's user while it runs (the start checks the user, so only then):
 * each call refused whole with `NOPERM`.
 */
if (redisServerOrSkip('a Redis user narrowed while paysim runs')) describe('a Redis user narrowed while paysim runs', () => {
  it('a Redis user narrowed while the replica runs (ACL SETUSER … resetkeys): its calls answer 503 STORE_UNAVAILABLE with Retry-After in each dialect’s shape, not 500; one error line says why and what to do; served again once given back (before 2026-12-07: 500 INTERNAL and a stack per call, h78b)', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const prefix = 'narrowed:';
    const user = 'narrowed';
    // A server of its own: the ACL it changes is the whole server's.
    const server = await startRedisServer();
    const admin = new Redis(server.url, { lazyConnect: true });
    await admin.connect();
    await admin.acl('SETUSER', user, 'on', `>${user}-pass`, `~${prefix}*`, '+@all');
    const t: TestApp = await buildTestApp({ STORE: 'redis', REDIS_URL: server.url.replace('redis://', `redis://${user}:${user}-pass@`), REDIS_KEY_PREFIX: prefix, SCHEDULER_POLL_MS: '0' }, { logs });
    try {
      const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_acl_1', amount: 1000 } });
      expect(created.statusCode).toBe(200);
      const id = created.json().payment_intent_id as string;
      await admin.acl('SETUSER', user, 'resetkeys', '~other:*');
      const native = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_acl_2', amount: 1000 } });
      expect([native.statusCode, native.headers['retry-after'], native.json()]).toEqual([
        503,
        '1',
        { error: { code: 'STORE_UNAVAILABLE', message: 'The store is unavailable; retry shortly.', trace_id: expect.any(String) } },
      ]);
      const read = await t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` });
      expect([read.statusCode, read.json().error.code]).toEqual([503, 'STORE_UNAVAILABLE']);
      const booking = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } });
      expect([booking.statusCode, booking.headers['retry-after'], booking.json()]).toEqual([503, '1', { error: 'The store is unavailable; retry shortly.', code: 'STORE_UNAVAILABLE' }]);
      // Nothing the refused calls asked for is there, and no 500 was answered or logged with its stack per call.
      expect(await admin.exists(`${prefix}int:res:res_acl_2`)).toBe(0);
      expect(logs.filter((l) => l.level === 'error' && typeof l.msg === 'string' && l.msg.startsWith('Redis refuses')).map((l) => [l.msg, String(l.redis_error).split(' ')[0], l.err])).toEqual([
        [
          'Redis refuses this user\'s calls: the calls it refuses answer 503 STORE_UNAVAILABLE until its ACL allows them again; the Redis user lost a key or command it needs (its ACL changed while paysim runs): give it back every key under REDIS_KEY_PREFIX and the commands (README: "Running several replicas")',
          'NOPERM',
          undefined,
        ],
      ]);
      expect(logs.filter((l) => l.statusCode === 500 || (typeof l.msg === 'string' && l.msg.includes('INTERNAL')))).toEqual([]);
      // Given back: served again.
      await admin.acl('SETUSER', user, 'resetkeys', `~${prefix}*`);
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_acl_2', amount: 1000 } })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` })).json().status).toBe('PENDING');
    } finally {
      await admin.acl('SETUSER', user, 'resetkeys', `~${prefix}*`);
      await t.app.close();
      admin.disconnect();
      await server.stop();
    }
  });
});
