import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisFluxPayStore } from '../../src/adapters/redis/fluxpay.ts';
import { hasRedisServer, REDIS_SERVER_MISSING, startRedis, type TestRedis } from '../helpers/redis.ts';
import { inCi } from '../helpers/promtool.ts';
import { fluxPayStoreContract } from './contracts/fluxpay.contract.ts';

/**
 * FluxPay's store contracts against the Redis adapters, on a private redis-server this file starts
 * (test/helpers/redis.ts), and the races of several replicas: stores on separate connections with
 * one key prefix. Skipped without redis-server locally; in CI its absence fails.
 */

if (!hasRedisServer) {
  describe('Redis FluxPay adapters', () => {
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

  fluxPayStoreContract('redis', ({ ttlMs, maxRecords }) => new RedisFluxPayStore(redis.client, { keyPrefix: redis.newPrefix(), ttlMs, maxRecords }));
}
