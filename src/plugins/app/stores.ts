import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { watchDataLoss, type DataLossWatch } from '../../adapters/redis/data-loss.ts';
import { markReplica, othersAlive, type ReplicaMarks } from '../../adapters/redis/replicas.ts';
import { keepGenerated, sharedGenerated, type GeneratedName } from '../../adapters/redis/generated.ts';
import { createRedisStores } from '../../adapters/redis/index.ts';
import { refusalLog } from '../../adapters/redis/unavailable.ts';
import { REDIS_START_TIMEOUT_MS, untilSilentFor, type WatchedRedis } from '../../adapters/redis/watched-client.ts';
import { createMemoryStores } from '../../adapters/memory/index.ts';
import type { Config } from '../../config.ts';
import type { Stores } from '../../core/ports.ts';

/** At a close, the most it waits for Redis to take this replica's mark away (else it lapses by itself). */
const REPLICA_LEAVE_WAIT_MS = 500;

/**
 * The back end behind the store ports, chosen once at start (STORE): this process's memory (the
 * default), or one Redis shared by every replica. With Redis, one client serves every adapter
 * (decorated as `app.redis`, opened by buildApp before it registers this plugin: `openRedis`,
 * which waits for a Redis that is loading its data set, and closed by buildApp with the app), and
 * the seat maps are laid out before the first request. The client reconnects by itself; while
 * it cannot reach Redis, or Redis is still loading its data set (it refuses commands meanwhile),
 * store calls answer STORE_UNAVAILABLE and `storeUnavailable()` says why (for /readyz). Tests may
 * pass stores of their own (a contract suite's adapter, say).
 */

export { REDIS_START_TIMEOUT_MS } from '../../adapters/redis/watched-client.ts';
export { lostDuringStart, RedisUnreachableError } from '../../adapters/redis/start-refusals.ts';

export interface StoresOptions {
  config: Config;
  stores?: Stores | undefined;
  /** Wraps the stores made (or given) before they are decorated (a test's instruments). */
  wrap?: ((stores: Stores) => Stores) | undefined;
  /** A namespace's app (STORE=redis): the root app's client and its health; its own keys come from `config.redis.keyPrefix`. */
  shared?: { client: Redis; storeUnavailable(): string | undefined; othersMayServe(): boolean } | undefined;
  /** The root app's client (STORE=redis), opened and waited for by buildApp, which closes it with the app. */
  connection?: WatchedRedis | undefined;
  /** How often the root app looks for a loss of Redis' data and of its generated values (DATA_LOSS_CHECK_MS, GENERATED_CHECK_MS by default): tests shorten it. */
  redisChecksMs?: number | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    stores: Stores;
    /** The Redis client of STORE=redis; undefined with memory. */
    redis: Redis | undefined;
    /** STORE=redis, the root app: how many times this process saw Redis lose its data (`watchDataLoss`); undefined otherwise. */
    redisDataLosses: (() => number) | undefined;
    /** STORE=redis, the root app: subscribes to the liveness PING's round trips (WatchedRedis.onPing), for `redis_ping_seconds`. */
    redisPings: ((listener: (seconds: number) => void) => void) | undefined;
    /** Why the store cannot be used now (Redis unreachable, or loading its data set), or undefined when it can. */
    storeUnavailable(): string | undefined;
    /**
     * Whether another process may run this one's shared work (a due decision, a webhook's attempt),
     * whose events this one then never sees: with memory never; on Redis while another replica or
     * worker has a mark of life (adapters/redis/replicas.ts, its last beat at most a second ago),
     * or whenever this one keeps none to count them by.
     */
    othersMayServe(): boolean;
  }
}

/**
 * STORE=redis: the values this process generated (the webhook secret without WEBHOOK_SECRET, the
 * console's session key without CONSOLE_TOKEN) are replaced in `config`, before anything reads
 * them, by the ones stored on Redis under the key prefix, so that every replica and worker signs
 * with the same ones (src/adapters/redis/generated.ts).
 */
async function adoptSharedGenerated(config: Config, client: Redis): Promise<Map<GeneratedName, string>> {
  const prefix = config.redis.keyPrefix;
  const adopted = new Map<GeneratedName, string>();
  if (config.webhookSecretGenerated) {
    const secret = await sharedGenerated(client, prefix, 'webhook-secret', config.webhookSecret);
    // The /api/v2 callbacks' secret is the webhook secret unless PAYMENT_WEBHOOK_SECRET is set.
    if (config.v2.webhookSecret === config.webhookSecret) config.v2.webhookSecret = secret;
    config.webhookSecret = secret;
    adopted.set('webhook-secret', secret);
  }
  if (config.console.token === undefined) {
    config.console.sessionKey = await sharedGenerated(client, prefix, 'console-session-key', randomBytes(32).toString('base64'));
    adopted.set('console-session-key', config.console.sessionKey);
  }
  return adopted;
}

export default fp<StoresOptions>(
  async (app, options) => {
    const { config } = options;
    const wrap = options.wrap ?? ((stores: Stores) => stores);
    if (options.stores !== undefined || config.store.backend === 'memory') {
      app.decorate('stores', wrap(options.stores ?? createMemoryStores(config)));
      app.decorate('redis', undefined);
      app.decorate('redisDataLosses', undefined);
      app.decorate('redisPings', undefined);
      app.decorate('storeUnavailable', () => undefined);
      app.decorate('othersMayServe', () => false);
      return;
    }

    const { shared } = options;
    if (shared !== undefined) {
      const closed = new AbortController();
      const refusals = refusalLog(app.log);
      app.decorate('stores', wrap(await createRedisStores(config, shared.client, closed.signal, refusals)));
      app.decorate('redis', shared.client);
      app.decorate('redisDataLosses', undefined);
      app.decorate('redisPings', undefined);
      app.decorate('storeUnavailable', shared.storeUnavailable);
      app.decorate('othersMayServe', shared.othersMayServe);
      // The client is the root app's to close.
      app.addHook('onClose', async () => {
        closed.abort();
        refusals.flush();
      });
      return;
    }

    const { connection } = options;
    if (connection === undefined) throw new Error('STORE=redis: buildApp opens the Redis client (openRedis) before the stores plugin');
    const { client } = connection;
    let stores: Stores;
    let generated: Map<GeneratedName, string>;
    let dataLoss: DataLossWatch;
    const closed = new AbortController();
    // The refused writes after the last line, told before the process goes.
    const refusals = refusalLog(app.log);
    app.addHook('onClose', async () => {
      closed.abort();
      refusals.flush();
    });
    try {
      // Redis serves (openRedis waited for it): the stores, the shared generated values and the mark of its data, under the same bound on silence.
      [stores, generated, dataLoss] = await untilSilentFor(REDIS_START_TIMEOUT_MS, async () => {
        const redisStores = await createRedisStores(config, client, closed.signal, refusals);
        return [redisStores, await adoptSharedGenerated(config, client), await watchDataLoss(client, config.redis.keyPrefix, app.log, options.redisChecksMs)] as const;
      });
    } catch (error) {
      throw connection.failed(error);
    }
    closed.signal.addEventListener('abort', dataLoss.stop, { once: true });
    // A replica that takes others' due work (its scheduler polls the shared store: SCHEDULER_POLL_MS
    // > 0) keeps a mark of life once it is ready (adapters/redis/replicas.ts); a drain (SIGTERM)
    // takes it away and counts the others alive to leave its shared work to. A close (a failed
    // start, a test) takes it away too, within a bound (Redis away: it lapses by itself).
    let replicas: ReplicaMarks | undefined;
    if (config.scheduler.pollMs > 0) {
      app.addHook('onReady', async () => {
        replicas = await markReplica(client, config.redis.keyPrefix);
      });
    }
    app.lifecycle.handOffWhen(async () => (replicas === undefined ? othersAlive(client, config.redis.keyPrefix) : replicas.leave()));
    app.addHook('onClose', async () => {
      // leave() stops the beats first.
      if (replicas !== undefined) await Promise.race([replicas.leave().catch(() => undefined), delay(REPLICA_LEAVE_WAIT_MS, undefined, { ref: false })]);
    });
    if (generated.size > 0) closed.signal.addEventListener('abort', keepGenerated(client, config.redis.keyPrefix, generated, app.log, options.redisChecksMs), { once: true });
    connection.serve();
    app.decorate('stores', wrap(stores));
    app.decorate('redis', client);
    app.decorate('redisDataLosses', () => dataLoss.losses);
    app.decorate('redisPings', (listener: (seconds: number) => void) => connection.onPing(listener));
    app.decorate('storeUnavailable', () => connection.unavailable());
    // Without a mark of its own (SCHEDULER_POLL_MS=0, or not ready yet) it cannot count the others: any may.
    app.decorate('othersMayServe', () => replicas === undefined || replicas.others() > 0);
  },
  { name: 'paysim-stores', dependencies: ['paysim-lifecycle'] },
);
