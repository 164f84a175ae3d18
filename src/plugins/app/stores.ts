import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { createRedisClient, LOADED, LOADING_SEEN, redisLoading, shownLoading, shownRedisUrl, type RedisLoading } from '../../adapters/redis/connection.ts';
import { sharedGenerated } from '../../adapters/redis/generated.ts';
import { createRedisStores } from '../../adapters/redis/index.ts';
import { createMemoryStores } from '../../adapters/memory/index.ts';
import type { Config } from '../../config.ts';
import type { Stores } from '../../core/ports.ts';

/**
 * The back end behind the store ports, chosen once at start (STORE): this process's memory (the
 * default), or one Redis shared by every replica. With Redis, one client serves every adapter
 * (decorated as `app.redis`), the seat maps are laid out before the first request, and the client
 * is closed when the app closes. The client reconnects by itself; while it cannot reach Redis,
 * or Redis is still loading its data set (it refuses commands meanwhile), store calls answer
 * STORE_UNAVAILABLE and `storeUnavailable()` says why (for /readyz). A start waits for a Redis
 * that is loading, with a line on progress. Tests may pass stores of their own (a contract suite's
 * adapter, say).
 */

export interface StoresOptions {
  config: Config;
  stores?: Stores | undefined;
  /** Wraps the stores made (or given) before they are decorated (a test's instruments). */
  wrap?: ((stores: Stores) => Stores) | undefined;
  /** A namespace's app (STORE=redis): the root app's client and its health; its own keys come from `config.redis.keyPrefix`. */
  shared?: { client: Redis; storeUnavailable(): string | undefined } | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    stores: Stores;
    /** The Redis client of STORE=redis; undefined with memory. */
    redis: Redis | undefined;
    /** Why the store cannot be used now (Redis unreachable, or loading its data set), or undefined when it can. */
    storeUnavailable(): string | undefined;
  }
}

/** A start that cannot reach Redis: told on one line, like a bad configuration. */
export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError';
}

/**
 * How long a start waits for Redis to answer: a server that takes the connection and never
 * answers (a `rediss://` URL for a Redis without TLS, a port of something else) would otherwise
 * hold the start until Fastify's plugin timeout (10 s), which ends it with a stack trace.
 */
export const REDIS_START_TIMEOUT_MS = 8000;

/** The reason a start gives while no attempt has failed yet. */
const NOT_CONNECTED = 'not connected yet';

/** How often Redis is asked whether it is still loading its data set, at start and after a reconnect. */
export const LOADING_POLL_MS = 250;
/** How often a start that waits for Redis to load says how far it is. */
const LOADING_LOG_EVERY_MS = 5000;

/**
 * STORE=redis: the values this process generated (the webhook secret without WEBHOOK_SECRET, the
 * console's session key without CONSOLE_TOKEN) are replaced in `config`, before anything reads
 * them, by the ones stored on Redis under the key prefix, so that every replica and worker signs
 * with the same ones (src/adapters/redis/generated.ts).
 */
async function adoptSharedGenerated(config: Config, client: Redis): Promise<void> {
  const prefix = config.redis.keyPrefix;
  if (config.webhookSecretGenerated) {
    const secret = await sharedGenerated(client, prefix, 'webhook-secret', config.webhookSecret);
    // The /api/v2 callbacks' secret is the webhook secret unless PAYMENT_WEBHOOK_SECRET is set.
    if (config.v2.webhookSecret === config.webhookSecret) config.v2.webhookSecret = secret;
    config.webhookSecret = secret;
  }
  if (config.console.token === undefined) config.console.sessionKey = await sharedGenerated(client, prefix, 'console-session-key', randomBytes(32).toString('base64'));
}

export default fp<StoresOptions>(
  async (app, options) => {
    const { config } = options;
    const wrap = options.wrap ?? ((stores: Stores) => stores);
    if (options.stores !== undefined || config.store.backend === 'memory') {
      app.decorate('stores', wrap(options.stores ?? createMemoryStores(config)));
      app.decorate('redis', undefined);
      app.decorate('storeUnavailable', () => undefined);
      return;
    }

    const { shared } = options;
    if (shared !== undefined) {
      const closed = new AbortController();
      app.decorate('stores', wrap(await createRedisStores(config, shared.client, closed.signal)));
      app.decorate('redis', shared.client);
      app.decorate('storeUnavailable', shared.storeUnavailable);
      // The client is the root app's to close.
      app.addHook('onClose', async () => closed.abort());
      return;
    }

    const where = shownRedisUrl(config.redis.url);
    const client = createRedisClient(config.redis);
    let lastError = NOT_CONNECTED;
    /** The connection is lost; `warned`: this outage was logged. */
    let down = false;
    let warned = false;
    /** Before the first connection, a failure is the start's to tell (one line), not a warning. */
    let connected = false;
    // Without a listener ioredis prints every failed reconnect; one line per outage is enough.
    client.on('error', (error: Error) => {
      lastError = error.message;
      down = true;
      if (warned || !connected) return;
      warned = true;
      app.log.warn({ err: error, redis: where }, 'Redis is unreachable: store calls answer 503 STORE_UNAVAILABLE until it is back; reconnecting');
    });
    client.on('close', () => {
      // Each failed reconnect closes too: keep the reason the last attempt gave.
      if (down || client.status === 'end') return;
      down = true;
      lastError = 'the connection closed';
    });
    /** What Redis said last about loading its data set, asked at each connection until it is done; undefined when it serves. */
    let loading: RedisLoading | undefined;
    /** A new connection whose first question (is Redis loading?) has no answer yet: not ready until it has. */
    let checking = false;
    let watching = false;
    /** Asked to watch while watching (a reconnect meanwhile): ask again once this watch ends. */
    let again = false;
    /** The start waits for a load itself (below); `closing`: the app closes. */
    let started = false;
    let closing = false;
    const watchLoading = async (): Promise<void> => {
      if (watching) {
        again = true;
        return;
      }
      watching = true;
      let told = false;
      try {
        while (!closing && client.status === 'ready') {
          // A failed question (the connection lost again) is the status' to tell.
          loading = await redisLoading(client).catch(() => undefined);
          checking = false;
          if (loading === undefined) break;
          if (!told) app.log.warn({ redis: where }, `Redis is loading its data set (${shownLoading(loading)}): store calls answer 503 STORE_UNAVAILABLE until it is done`);
          told = true;
          await sleep(LOADING_POLL_MS, undefined, { ref: false });
        }
        if (told && loading === undefined && client.status === 'ready') {
          app.log.info({ redis: where }, 'Redis has loaded its data set');
          client.emit(LOADED);
        }
      } finally {
        watching = false;
        if (again && !closing) {
          again = false;
          void watchLoading();
        }
      }
    };
    client.on('ready', () => {
      connected = true;
      if (warned) app.log.info({ redis: where }, 'Redis is reachable again');
      down = false;
      warned = false;
      if (!started) return;
      checking = true;
      void watchLoading();
    });
    // A store call refused because Redis loads: a load on a live connection (a replica's resync) gets watched too.
    client.on(LOADING_SEEN, () => {
      if (started) void watchLoading();
    });

    let stores: Stores;
    let timer: NodeJS.Timeout | undefined;
    try {
      /** Rejects once Redis has said nothing for REDIS_START_TIMEOUT_MS; `heard` starts that wait again. */
      let heard = (): void => undefined;
      const silent = new Promise<never>((_, reject) => {
        heard = () => {
          clearTimeout(timer);
          timer = setTimeout(() => reject(new Error('no answer')), REDIS_START_TIMEOUT_MS);
        };
      });
      heard();
      // A Redis loading its data set answers, but refuses the stores' commands until it is done: wait for it.
      const made = (async () => {
        let toldAt = Number.NEGATIVE_INFINITY;
        for (;;) {
          const progress = await redisLoading(client);
          heard();
          if (progress === undefined) break;
          if (Date.now() - toldAt >= LOADING_LOG_EVERY_MS) {
            app.log.info({ redis: where }, `Redis is loading its data set (${shownLoading(progress)}); the start waits for it`);
            toldAt = Date.now();
          }
          await sleep(LOADING_POLL_MS);
        }
        const redisStores = await createRedisStores(config, client);
        // The shared generated values are read with the stores, under the same wait and the same refusal.
        await adoptSharedGenerated(config, client);
        return redisStores;
      })();
      stores = await Promise.race([made, silent]);
    } catch (error) {
      client.disconnect();
      const silentServer = error instanceof Error && error.message === 'no answer';
      const why = silentServer
        ? `no answer within ${REDIS_START_TIMEOUT_MS / 1000} s${connected ? '' : ': is it Redis, and does it speak TLS if and only if the URL is rediss://?'}`
        : lastError !== NOT_CONNECTED
          ? lastError
          : error instanceof Error
            ? error.message
            : String(error);
      throw new RedisUnreachableError(`Redis at ${where} could not be reached (${why}); start it or set REDIS_URL`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
    started = true;
    app.decorate('stores', wrap(stores));
    app.decorate('redis', client);
    app.decorate('storeUnavailable', () => {
      if (client.status !== 'ready') return `Redis at ${where} is unreachable (${lastError}); reconnecting`;
      if (checking) return `Redis at ${where} took the connection; asking whether it serves`;
      return loading === undefined ? undefined : `Redis at ${where} is loading its data set (${shownLoading(loading)})`;
    });
    app.addHook('onClose', async () => {
      closing = true;
      // QUIT lets the replies of commands already sent arrive; a client that is away has nothing to wait for.
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    });
  },
  { name: 'paysim-stores' },
);
