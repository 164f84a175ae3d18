import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';

/**
 * What Redis does when it is full, from its `INFO memory`: its `maxmemory` (0: no limit) and
 * `maxmemory-policy`. Undefined when Redis would not say (`INFO` refused to the user by an ACL, or
 * renamed away, as some hosted Redis do).
 */
export interface RedisEviction {
  maxmemory: number;
  policy: string;
}

/** `INFO memory`'s text as the two fields; undefined when either is missing. */
export function evictionOf(info: string): RedisEviction | undefined {
  const maxmemory = /^maxmemory:(\d+)\r?$/m.exec(info)?.[1];
  const policy = /^maxmemory_policy:(\S+)\r?$/m.exec(info)?.[1];
  return maxmemory === undefined || policy === undefined ? undefined : { maxmemory: Number(maxmemory), policy };
}

/**
 * The warning for a Redis that may drop keys to make room, or undefined when it never does: with
 * `maxmemory` 0 (no limit) or the policy `noeviction`, a full Redis refuses writes, which the
 * service answers 503 STORE_UNAVAILABLE. Any other policy drops keys without a word: an `allkeys-*`
 * one any record, index, due job or waiting delivery; a `volatile-*` one the keys with a time to
 * live, which here are what makes a call sent again by the client after a lost reply answer what it
 * did (a second refund otherwise) and the mark of a replica alive (its running Idempotency-Keys are
 * taken for a dead replica's without it).
 */
export function evictionWarning(eviction: RedisEviction, where: string): string | undefined {
  if (eviction.maxmemory === 0 || eviction.policy === 'noeviction') return undefined;
  return (
    `Redis at ${where} evicts keys when full (maxmemory ${eviction.maxmemory} bytes, maxmemory-policy ${eviction.policy}): ` +
    'records, due work and webhook deliveries could then vanish without a word; set maxmemory-policy noeviction, so that a full Redis refuses writes and calls answer 503 (README: "Redis memory")'
  );
}

/**
 * Logs `evictionWarning` at warn once, at the start, when Redis' `INFO memory` says it evicts;
 * when Redis will not say, a line at debug. A policy changed later (`CONFIG SET`) is not seen.
 */
export async function warnIfEvicting(client: Redis, where: string, log: FastifyBaseLogger): Promise<void> {
  let eviction: RedisEviction | undefined;
  try {
    eviction = evictionOf(await client.info('memory'));
  } catch (error) {
    log.debug({ err: error, redis: where }, 'Redis did not answer INFO memory: its eviction policy is not checked');
    return;
  }
  if (eviction === undefined) return;
  const warning = evictionWarning(eviction, where);
  if (warning !== undefined) log.warn({ redis: where, maxmemory: eviction.maxmemory, maxmemoryPolicy: eviction.policy }, warning);
}
