import type { Redis } from 'ioredis';
import type { CreateOutcome, FluxPaySubscriptionStore, WebhookSubscription } from '../../core/fluxpay/ports.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { keepingReply } from './lua.ts';

export interface RedisFluxPaySubscriptionOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  maxSubscriptions: number;
}

/*
 * Keys (S = prefix .. 'fpsubs:'): KEYS[1] S..'r' (hash: subscription id → the subscription, JSON),
 * KEYS[2] S..'order' (zset: id → creation sequence), KEYS[3] S..'seq' (counter); S..'r:del:'..token
 * (a remove's reply, kept a while).
 */
const ADD = keepingReply("KEYS[1] .. ':add:'", `
-- ARGV: id, JSON, max, call token. An id added again keeps its place (as a Map's key does) and is never
-- refused at the bound: ids are new with each add, so that is this very add run again (its reply
-- lost, ioredis sent it again), which must not answer full for the subscription it stored.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1]) end
return 1
`);

const GET = `return redis.call('HGET', KEYS[1], ARGV[1]) or ''`;

const LIST = `
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = redis.call('HGET', KEYS[1], id) end
return out
`;

/**
 * Answers the subscription removed (its JSON), '' when there was none. Its reply kept under its
 * call's token (lua.ts `keepingReply`): the subscription is gone, so a second run would answer 404
 * to the delete that removed it.
 */
const REMOVE = keepingReply(
  "KEYS[1] .. ':del:'",
  `
-- ARGV: id, call token
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return '' end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return json
`,
);

/**
 * FluxPay's webhook subscriptions (`whs_`) in Redis, shared by every replica: one hash of the
 * subscriptions and a sorted set of their creation order, each operation one Lua script (an `add`
 * checks the bound and writes in one step, so concurrent adds never pass it). Bounded as memory is:
 * a full store refuses, nothing is evicted. Differences from memory: none in behaviour.
 */
export class RedisFluxPaySubscriptionStore implements FluxPaySubscriptionStore {
  readonly #options: RedisFluxPaySubscriptionOptions;
  readonly #keys: string[];
  readonly #scripts: Record<'add' | 'get' | 'list' | 'remove', Script>;

  constructor(client: Redis, options: RedisFluxPaySubscriptionOptions) {
    this.#options = options;
    const s = `${options.keyPrefix}fpsubs:`;
    this.#keys = ['r', 'order', 'seq'].map((name) => s + name);
    this.#scripts = {
      add: defineScript(client, 'paysimFluxPaySubsAdd', ADD),
      get: defineScript(client, 'paysimFluxPaySubsGet', GET),
      list: defineScript(client, 'paysimFluxPaySubsList', LIST),
      remove: defineScript(client, 'paysimFluxPaySubsRemove', REMOVE),
    };
  }

  async add(subscription: WebhookSubscription): Promise<CreateOutcome<WebhookSubscription>> {
    const stored = copy(subscription);
    const added = await this.#scripts.add(this.#keys, [stored.subscriptionId, JSON.stringify(stored), this.#options.maxSubscriptions, callToken()]);
    return added === 1 ? { kind: 'created', record: stored } : { kind: 'full' };
  }

  async get(subscriptionId: string): Promise<WebhookSubscription | undefined> {
    const json = (await this.#scripts.get(this.#keys, [subscriptionId])) as string;
    return json === '' ? undefined : decode(json);
  }

  async list(): Promise<WebhookSubscription[]> {
    return ((await this.#scripts.list(this.#keys, [])) as string[]).map(decode);
  }

  async remove(subscriptionId: string): Promise<WebhookSubscription | undefined> {
    const json = (await this.#scripts.remove(this.#keys, [subscriptionId, callToken()])) as string;
    return json === '' ? undefined : decode(json);
  }
}

/** Only the subscription's own fields; its event list frozen, as memory hands it out. */
function copy(subscription: WebhookSubscription): WebhookSubscription {
  return { subscriptionId: subscription.subscriptionId, url: subscription.url, events: Object.freeze([...subscription.events]), createdAt: subscription.createdAt };
}

function decode(json: string): WebhookSubscription {
  return copy(JSON.parse(json) as WebhookSubscription);
}
