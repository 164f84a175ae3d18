import { afterAll, beforeAll, describe, it } from 'vitest';
import { RedisIdempotencyStore } from '../../src/adapters/redis/idempotency.ts';
import { RedisIntentStore } from '../../src/adapters/redis/intents.ts';
import { hasRedisServer, REDIS_SERVER_MISSING, startRedis, type TestRedis } from '../helpers/redis.ts';
import { inCi } from '../helpers/promtool.ts';
import { idempotencyStoreContract } from './contracts/idempotency.contract.ts';
import { intentStoreContract } from './contracts/intents.contract.ts';

/**
 * The shared port contracts against the Redis adapters, on a private redis-server this file starts
 * (test/helpers/redis.ts). Every store a suite makes gets a key prefix of its own, so tests never
 * see each other's keys. Skipped without redis-server locally; in CI its absence fails.
 */

if (!hasRedisServer) {
  describe('Redis adapters', () => {
    it.skipIf(!inCi)('need redis-server (skipped: not installed)', () => undefined);
    it.runIf(inCi)('need redis-server', () => {
      throw new Error(REDIS_SERVER_MISSING);
    });
  });
} else {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  intentStoreContract('redis', ({ ttlMs, maxIntents }) => new RedisIntentStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs, maxIntents }));
  idempotencyStoreContract('redis', ({ ttlMs, maxKeys }) => new RedisIdempotencyStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs, maxKeys }));
}
