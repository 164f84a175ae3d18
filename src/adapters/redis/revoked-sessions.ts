import type { Redis } from 'ioredis';
import type { RevokedSessionStore, StoreStats } from '../../core/ports.ts';
import { defineScript, type Script } from './connection.ts';

export interface RedisRevokedSessionsOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** Ids held at once; past it the one that expires first goes. */
  max: number;
}

/*
 * KEYS[1] the sorted set id → until. ARGV: id, until, max. NX: a revoke sent again (ioredis sends
 * an unanswered command again after a reconnect) changes nothing.
 */
const REVOKE = `
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
local max = tonumber(ARGV[3])
while redis.call('ZCARD', KEYS[1]) > max do redis.call('ZPOPMIN', KEYS[1]) end
return 1
`;

/**
 * The console's logged-out sessions on Redis, for every replica: one sorted set
 * `<prefix>console:revoked-sessions`, id → until (epoch ms). As every adapter's TTLs, until is on
 * the callers' clock, not a Redis expiry: a lookup compares it with `now`, and the sweep drops the
 * ids past it. Past `max`, the id that expires first goes (memory: the one revoked first, the same
 * with one session lifetime).
 */
export class RedisRevokedSessions implements RevokedSessionStore {
  readonly #client: Redis;
  readonly #key: string;
  readonly #max: number;
  readonly #revoke: Script;

  constructor(client: Redis, options: RedisRevokedSessionsOptions) {
    this.#client = client;
    this.#key = `${options.keyPrefix}console:revoked-sessions`;
    this.#max = options.max;
    this.#revoke = defineScript(client, 'paysimSessionRevoke', REVOKE);
  }

  async revoke(id: string, until: number): Promise<void> {
    await this.#revoke([this.#key], [id, until, this.#max]);
  }

  async isRevoked(id: string, now: number): Promise<boolean> {
    const until = await this.#client.zscore(this.#key, id);
    return until !== null && Number(until) > now;
  }

  async sweep(now: number): Promise<number> {
    return this.#client.zremrangebyscore(this.#key, '-inf', now);
  }

  async stats(): Promise<StoreStats> {
    return { size: await this.#client.zcard(this.#key), max: this.#max };
  }
}
