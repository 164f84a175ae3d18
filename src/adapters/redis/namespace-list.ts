import type { Redis } from 'ioredis';
import type { ListeningTold } from '../../core/ports.ts';
import { defineScript, type Script } from './connection.ts';
import { listenForNotices, sendNotice } from './notices.ts';
import { storeCall } from './unavailable.ts';

/**
 * The namespaces that exist (issue 15, `X-Sim-Namespace`) with STORE=redis, shared by the replicas
 * of a key prefix, and each namespace's keys (`<prefix>ns:<name>:…`). Each operation on the list is
 * one Lua script; a Redis that cannot be reached answers STORE_UNAVAILABLE (`storeCall`).
 *
 * Keys: `<prefix>namespaces` (name → createdAt, as every version reads it), `<prefix>namespaces:
 * resetting:<name>` (the name's resets under way: a sorted set of each reset's token, scored by the
 * real time it began, so that two resets of one name at once each keep their own), and
 * `<prefix>namespaces:listings` (name → the listing's token, so that a listing is told from the
 * one before a reset; a name listed by a version before 2026-12-04 has none, and its createdAt
 * stands for it).
 * @see src/plugins/app/namespace-registry.ts for what the replicas do with it
 */

/** A reset's token older than this is a replica's that died while resetting: no longer waited for. */
const RESET_MARK_STALE_MS = 30_000;

/**
 * [1, listing, createdAt] listed now, [0, listing, createdAt] listed already (elsewhere, or by this
 * call sent again), [-1] no room, [-2] being reset, [-3] not listed and `only listed`. ARGV: name,
 * createdAt, token, max, now, a reset's stale age, only listed ('1' or '0').
 */
const REGISTER = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[5]) - tonumber(ARGV[6]))
if redis.call('ZCARD', KEYS[2]) > 0 then return {-2} end
local at = redis.call('HGET', KEYS[1], ARGV[1])
if at then return {0, redis.call('HGET', KEYS[3], ARGV[1]) or at, at} end
if ARGV[7] == '1' then return {-3} end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {-1} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return {1, ARGV[3], ARGV[2]}
`;

/**
 * Off the list, the reset's token among the name's resets; whether there was something to reset
 * (listed, or another live reset under way: also when this call is sent again). ARGV: name, token,
 * now, a reset's stale age.
 */
const BEGIN_RESET = `
local listed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
local others = redis.call('ZCARD', KEYS[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if listed == 1 or others > 0 then return 1 end
return 0
`;

/** The reset's token goes (the others' stay). ARGV: name, token. */
const END_RESET = `
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`;

/** A namespace as the list holds it: when it was made, and its listing (another one means it was reset and made again). */
export interface Listing {
  createdAt: number;
  listedAs: string;
}

export type RegisterOutcome = { kind: 'listed'; listing: Listing } | { kind: 'full' } | { kind: 'resetting' } | { kind: 'not_listed' };

/** The key prefix of a namespace's state in Redis. */
export function namespaceKeyPrefix(rootPrefix: string, namespace: string): string {
  return `${rootPrefix}ns:${namespace}:`;
}

export class RedisNamespaceList {
  readonly #client: Redis;
  readonly #keyPrefix: string;
  readonly #list: string;
  readonly #listings: string;
  readonly #register: Script;
  readonly #beginReset: Script;
  readonly #endReset: Script;
  /** The channel a reset is told on (`<prefix>namespaces:reset`, a namespace's name per message). */
  readonly #channel: string;

  constructor(client: Redis, keyPrefix: string) {
    this.#client = client;
    this.#keyPrefix = keyPrefix;
    this.#channel = `${keyPrefix}namespaces:reset`;
    this.#list = `${keyPrefix}namespaces`;
    this.#listings = `${keyPrefix}namespaces:listings`;
    this.#register = defineScript(client, 'paysimNamespaceRegister', REGISTER);
    this.#beginReset = defineScript(client, 'paysimNamespaceBeginReset', BEGIN_RESET);
    this.#endReset = defineScript(client, 'paysimNamespaceEndReset', END_RESET);
  }

  #keys(namespace: string): string[] {
    return [this.#list, `${this.#keyPrefix}namespaces:resetting:${namespace}`, this.#listings];
  }

  /** Lists `namespace` (made at `createdAt`, its listing `token`) while the list has room for `max`, or answers its listing; `onlyListed`: lists nothing. */
  async register(namespace: string, createdAt: number, token: string, max: number, onlyListed: boolean): Promise<RegisterOutcome> {
    const [made, listedAs, at] = (await storeCall(this.#register(this.#keys(namespace), [namespace, createdAt, token, max, Date.now(), RESET_MARK_STALE_MS, onlyListed ? '1' : '0']))) as [number, string?, string?];
    if (made === -1) return { kind: 'full' };
    if (made === -2) return { kind: 'resetting' };
    if (made === -3) return { kind: 'not_listed' };
    return { kind: 'listed', listing: { listedAs: listedAs as string, createdAt: Number(at) } };
  }

  /**
   * A reset under `token` begins: off the list, marked as under way, and the replicas told on the
   * channel, so they close their apps of it now rather than at their next sync. Whether there was
   * something to reset. The message is a call of its own, whose failure is not the reset's: a user
   * whose ACL has no channels (Redis 7's default, `resetchannels`) or no `@pubsub` still resets,
   * and the replicas learn of it at their sync.
   */
  async beginReset(namespace: string, token: string): Promise<boolean> {
    const existed = Number(await storeCall(this.#beginReset(this.#keys(namespace), [namespace, token, Date.now(), RESET_MARK_STALE_MS]))) === 1;
    await sendNotice(this.#client, this.#channel, namespace);
    return existed;
  }

  /**
   * Calls `onReset` with the name of each namespace a replica begins to reset, on the process's
   * subscribed connection (a subscribed connection serves nothing else), subscribed again at each reconnect. A
   * message missed meanwhile, or a subscription refused (an ACL without channels: `told.onRefused`
   * hears why, once until it is subscribed, and `told.onAllowed` when it is), is made up for by the
   * caller's periodic read of the list. Answers how to stop listening.
   */
  listen(onReset: (namespace: string) => void, told: ListeningTold = {}): () => void {
    // The process's one subscribed connection, shared with the fault rules' notices (notices.ts).
    return listenForNotices(this.#client, this.#channel, { onNotice: onReset, onResubscribed: () => undefined, ...told });
  }

  /** The reset under `token` ends (its mark goes). */
  async endReset(namespace: string, token: string): Promise<void> {
    await storeCall(this.#endReset(this.#keys(namespace), [namespace, token]));
  }

  /** Every namespace listed, with its listing. */
  async all(): Promise<Map<string, Listing>> {
    const [list, listings] = await Promise.all([storeCall(this.#client.hgetall(this.#list)), storeCall(this.#client.hgetall(this.#listings))]);
    return new Map(Object.entries(list).map(([namespace, at]) => [namespace, { createdAt: Number(at), listedAs: listings[namespace] ?? at }]));
  }

  /** Deletes a namespace's keys; how many went. */
  async wipe(namespace: string): Promise<number> {
    let removed = 0;
    let cursor = '0';
    do {
      const [next, keys] = await storeCall(this.#client.scan(cursor, 'MATCH', `${globEscaped(namespaceKeyPrefix(this.#keyPrefix, namespace))}*`, 'COUNT', 1000));
      cursor = next;
      if (keys.length > 0) removed += await storeCall(this.#client.unlink(...keys));
    } while (cursor !== '0');
    return removed;
  }
}

/**
 * `text` as a glob pattern of SCAN MATCH that matches it alone: REDIS_KEY_PREFIX may hold `*`, `?`,
 * `[`, `]` and `\` (before 2026-12-04 a reset under prefix `t[1]:` deleted prefix `t1:`'s keys and kept its own).
 */
export function globEscaped(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
