import type { Redis } from 'ioredis';
import type { Config } from '../../config.ts';
import type { Stores } from '../../core/ports.ts';
import { createMemoryStores } from '../memory/index.ts';
import { RedisDeliveryLog } from './deliveries.ts';
import { RedisDisabledUrls } from './disabled-urls.ts';
import { RedisIdempotencyStore } from './idempotency.ts';
import { RedisIntentStore } from './intents.ts';
import { RedisLedgerStore } from './ledger.ts';
import { RedisSchedulerStore } from './scheduler.ts';
import { RedisSeatStore } from './seats.ts';
import { asStoreError, guardStores } from './unavailable.ts';

/**
 * The ports whose Redis adapter is not built yet: with STORE=redis they stay in each process's
 * memory, so their state is not shared between replicas, and the start warns naming them. Each
 * port leaves this list when its adapter lands in `createRedisStores`; once it is empty, every
 * replica shares everything.
 */
export const PORTS_NOT_YET_ON_REDIS = ['bookings', 'v2Payments', 'fluxpay', 'fluxpaySubscriptions', 'billing', 'waitingRooms', 'rateLimits'] as const satisfies ReadonlyArray<keyof Stores>;

type PortOnRedis = Exclude<keyof Stores, (typeof PORTS_NOT_YET_ON_REDIS)[number]>;

/**
 * Every port on one Redis (STORE=redis), bounded by the configuration as memory's are, each key
 * under `config.redis.keyPrefix`. Lays out what must exist before the first request (the seat
 * maps of the catalog, where missing, and again on every reconnect), so it needs Redis to
 * answer; a connection failure rejects with STORE_UNAVAILABLE. Every port's calls map connection failures to STORE_UNAVAILABLE.
 */
export async function createRedisStores(config: Config, client: Redis): Promise<Stores> {
  const { keyPrefix } = config.redis;
  const layOutSeats = (): Promise<RedisSeatStore> => RedisSeatStore.create(client, { keyPrefix }, config.bookings.performances);
  const seats = await layOutSeats().catch((error: unknown) => Promise.reject(asStoreError(error)));
  // A Redis that came back without its data (restarted without persistence) gets the catalog's
  // seat maps again on reconnect; maps that exist are left as they are.
  client.on('ready', () => void layOutSeats().catch(() => undefined));
  const onRedis: Pick<Stores, PortOnRedis> = {
    intents: new RedisIntentStore(client, { keyPrefix, ttlMs: config.store.intentTtlMs, maxIntents: config.store.maxIntents }),
    idempotency: new RedisIdempotencyStore(client, { keyPrefix, ttlMs: config.idempotency.ttlMs, maxKeys: config.idempotency.maxKeys }),
    seats,
    ledger: new RedisLedgerStore(client, { keyPrefix }),
    deliveries: new RedisDeliveryLog(client, { keyPrefix, ttlMs: config.webhook.logTtlMs, maxDeliveries: config.webhook.logMax }),
    disabledUrls: new RedisDisabledUrls(client, { keyPrefix }),
    scheduler: new RedisSchedulerStore(client, { keyPrefix }),
  };
  const memory = createMemoryStores(config);
  const notYet = Object.fromEntries(PORTS_NOT_YET_ON_REDIS.map((port) => [port, memory[port]])) as Pick<Stores, (typeof PORTS_NOT_YET_ON_REDIS)[number]>;
  return guardStores({ ...onRedis, ...notYet });
}
