import type { FastifyBaseLogger } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { RedisUnreachableError } from './start-refusals.ts';

/**
 * What a start asks of the Redis it reached, once (`checkRedisServer`): its version, which must be
 * 7.0 or later, that it is not a node of a Redis Cluster, that the database REDIS_URL names is the
 * one in use, and whether it drops keys when full, which it warns of.
 */

/** The oldest Redis the back end runs on: its delivery queue reads a consumer group's `lag` from `XINFO GROUPS`, which Redis gives from 7.0. */
export const MIN_REDIS_VERSION: readonly [number, number] = [7, 0];

/** `INFO server`'s `redis_version` (Valkey says the Redis version it matches there), or undefined when missing. */
export function redisVersionOf(info: string): string | undefined {
  return /^redis_version:(\S+?)\r?$/m.exec(info)?.[1];
}

/** The start's refusal of a Redis older than MIN_REDIS_VERSION, or undefined when `version` will do. */
export function versionRefusal(version: string, where: string): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map((part) => Number.parseInt(part, 10));
  const [minMajor, minMinor] = MIN_REDIS_VERSION;
  if (major > minMajor || (major === minMajor && minor >= minMinor)) return undefined;
  return (
    `Redis at ${where} is version ${version}; paysim needs Redis ${minMajor}.${minMinor} or later ` +
    "(its webhook delivery queue reads the consumer group's lag, which XINFO GROUPS gives from 7.0): upgrade it, or set REDIS_URL to another"
  );
}

/** Whether `INFO cluster` says the server runs as a node of a Redis Cluster (`cluster_enabled:1`). */
export function isClusterNode(info: string): boolean {
  return /^cluster_enabled:1\r?$/m.test(info);
}

/**
 * The start's refusal of a node of a Redis Cluster. Before 2026-12-03 a start on one ended on the
 * first script's `ERR Script attempted to access a non local key` (or `CROSSSLOT`), told as
 * "could not be reached; start it".
 */
export function clusterRefusal(where: string): string {
  return (
    `Redis at ${where} is a node of a Redis Cluster (cluster_enabled:1); paysim needs one Redis server, not Redis Cluster: ` +
    'each store operation is one script over several keys, which a cluster runs only when they share a hash slot. ' +
    'Set REDIS_URL to a standalone Redis (a primary with replicas and Sentinel will do) or a managed Redis with cluster mode disabled'
  );
}

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
  // What may go: any key with allkeys-*; with volatile-* only those with a time to live (a user test: the warning said records for both).
  const lost = eviction.policy.startsWith('volatile-')
    ? "the replies kept for calls sent again after a lost reply (a refund could then be made twice) and the replicas' marks of life (a running Idempotency-Key taken for a dead replica's)"
    : 'records, due work and webhook deliveries';
  return (
    `Redis at ${where} evicts keys when full (maxmemory ${eviction.maxmemory} bytes, maxmemory-policy ${eviction.policy}): ` +
    `${lost} could then vanish without a word; set maxmemory-policy noeviction, so that a full Redis refuses writes and calls answer 503 (README: "Redis memory")`
  );
}

/**
 * Selects the database REDIS_URL names (other than 0) once more, to see it taken: ioredis selects it
 * on each connection but only emits Redis' refusal (a number not below its `databases`, 16 unless
 * configured otherwise; an ACL without SELECT), and carries on in database 0, where another
 * deployment's keys may be. Rejects with `RedisUnreachableError` then.
 */
async function checkDatabase(client: Redis, where: string): Promise<void> {
  const db = client.options.db ?? 0;
  if (db === 0) return;
  try {
    await client.select(db);
  } catch (error) {
    // Redis' refusal only (out of range, or an ACL without SELECT); another failure (the connection lost) is the start's to tell.
    if (!(error instanceof Error) || !/^(ERR|NOPERM) /.test(error.message)) throw error;
    const refusal = error.message;
    throw new RedisUnreachableError(
      `Redis at ${where} refused database ${db} (${refusal}): the database number of REDIS_URL must be below Redis' "databases" (16 unless configured otherwise), and an ACL user needs SELECT; the keys would go to database 0`,
      { cause: error },
    );
  }
}

/**
 * Asks Redis once, at the start, for its `INFO server`, `INFO cluster` and `INFO memory`: rejects
 * with `RedisUnreachableError` (one line, the start ends, nothing written) when it is older than
 * MIN_REDIS_VERSION or a node of a Redis Cluster, or refuses the database REDIS_URL names; logs
 * `evictionWarning` at warn when it evicts. When Redis will not say (`INFO` refused to the user by
 * an ACL, or renamed away, as some hosted Redis do), a line at debug and the start goes on (the
 * database is checked all the same). A policy changed later (`CONFIG SET`) is not seen.
 */
export async function checkRedisServer(client: Redis, where: string, log: FastifyBaseLogger): Promise<void> {
  let info: [server: string, cluster: string, memory: string] | undefined;
  try {
    info = await Promise.all([client.info('server'), client.info('cluster'), client.info('memory')]);
  } catch (error) {
    log.debug({ err: error, redis: where }, 'Redis did not answer INFO: its version, cluster mode and eviction policy are not checked');
  }
  if (info === undefined) return checkDatabase(client, where);
  const [server, cluster, memory] = info;
  const version = redisVersionOf(server);
  const refusal = version === undefined ? undefined : versionRefusal(version, where);
  if (refusal !== undefined) throw new RedisUnreachableError(refusal);
  // Before the database: a cluster node refuses any but 0, and the cluster is what to change.
  if (isClusterNode(cluster)) throw new RedisUnreachableError(clusterRefusal(where));
  await checkDatabase(client, where);
  const eviction = evictionOf(memory);
  const warning = eviction === undefined ? undefined : evictionWarning(eviction, where);
  if (warning !== undefined) log.warn({ redis: where, maxmemory: eviction?.maxmemory, maxmemoryPolicy: eviction?.policy }, warning);
}

/** How often the start asks whether this user may run TIME before it says it could not (a busy or cut-off Redis), and the pause between. */
export const RATE_CAP_CLOCK_TRIES = 3;
const RATE_CAP_CLOCK_RETRY_MS = 250;

/**
 * Whether this user may run `TIME` inside a script, which the shared webhook rate cap
 * (`WEBHOOK_MAX_RPS` > 0) does: its bucket counts time on Redis' own clock, one clock for every
 * replica (adapters/redis/rate-cap.ts). `TIME` is only in the ACL category `@fast`, which the
 * README's least user lacks unless given `+time`. Rejects with `RedisUnreachableError` (one line,
 * the start ends) when the ACL refuses it. A user without scripts is left to the first store call;
 * a Redis that cannot answer is asked RATE_CAP_CLOCK_TRIES times, then said at warn. Before
 * 2026-12-06 such a user started, and every webhook waited in the stream for good, its rate-cap
 * token refused (a user test).
 */
export async function checkRateCapClock(client: Pick<Redis, 'eval'>, where: string, log: Pick<FastifyBaseLogger, 'warn'>): Promise<void> {
  // Asked of the ACL itself (`redis.acl_check_cmd`, Redis 7.0 and later), not read from a refusal's
  // words, which Redis 7.2 changed (a review).
  for (let tries = 1; ; tries++) {
    let allowed: unknown;
    try {
      allowed = await client.eval("return redis.acl_check_cmd('time') and 1 or 0", 0);
    } catch (error) {
      // No scripts for this user: the first store call's to tell, on its own line.
      if (error instanceof Error && error.message.startsWith('NOPERM ')) return;
      // Redis busy with another's script, a replica cut off from its primary, the connection lost: asked again, then said.
      if (tries < RATE_CAP_CLOCK_TRIES) {
        await sleep(RATE_CAP_CLOCK_RETRY_MS);
        continue;
      }
      log.warn(
        { err: error, redis: where },
        "could not ask Redis whether this user may run TIME, which the shared webhook rate cap reads (WEBHOOK_MAX_RPS): if its ACL refuses it, webhooks wait in the delivery stream, each with an error line 'taking a webhook rate-cap token failed'; give the user +time",
      );
      return;
    }
    if (allowed !== 0) return;
    throw new RedisUnreachableError(
      `Redis at ${where} refuses this user TIME (its ACL), which the shared webhook rate cap reads for one clock on every replica: give the user +time (or the category @fast), or set WEBHOOK_MAX_RPS=0 for no rate cap`,
    );
  }
}
