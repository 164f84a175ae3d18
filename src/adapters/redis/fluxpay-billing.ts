import type { Redis } from 'ioredis';
import type { CreateOutcome } from '../../core/fluxpay/ports.ts';
import type { Page, StoreStats } from '../../core/ports.ts';
import { MAX_INVOICES, type SubscriptionChange, type SubscriptionQuery, type SubscriptionRecord, type SubscriptionStore, type UpdateOutcome } from '../../core/subscriptions/ports.ts';
import { SUBSCRIPTION_STATUSES, type Subscription, type SubscriptionStatus } from '../../core/subscriptions/subscription.ts';
import { copyRecord } from '../memory/fluxpay-billing.ts';
import { SCAN_BUDGET } from '../memory/id-list.ts';
import { callToken, defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';
import { OUTBOX, type RedisOutbox } from './fluxpay/outbox.ts';
import { RECORDS } from './fluxpay/records.ts';
import { BOUNDS, COUNT_ALL, keepingReply, WALK } from './lua.ts';

export interface RedisBillingStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX); its keys are under `<keyPrefix>bill:`. */
  keyPrefix: string;
  /** FLUXPAY_MAX_BILLING_SUBSCRIPTIONS: subscriptions held at most. */
  maxSubscriptions: number;
  /** FLUXPAY_TTL_MS: an EXPIRED subscription is evicted this long after it expired. */
  ttlMs: number;
}

/*
 * Keys (B = prefix .. 'bill:'): KEYS[1] B..'all' (zset, score 0: ids in creation order), KEYS[2]
 * B..'exp' (zset: EXPIRED subscriptions → when they expired), KEYS[3] B..'counts' (hash: status → n).
 * Built in the scripts from ARGV[1] = B: B..'r:'..id (hash: `s` the subscription's JSON without
 * its ids, `card` JSON; plain `u` userId, `v` version, `st` status, `ct` the call token of the
 * last update), B..'inv:'..id (list: its
 * invoices' JSON, oldest first) and B..'user:'..userId (zset like 'all'). ARGV[2], ARGV[3]: the
 * FluxPay outbox's prefix and bound (./fluxpay/outbox.ts), where a change writes its event.
 */
const PRELUDE = `${RECORDS}${OUTBOX}
local B, O, OMAX = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ALL, EVICT = KEYS[1], KEYS[2]
local function rec(id) return B .. 'r:' .. id end
local function view(id)
  local r = redis.call('HMGET', rec(id), 's', 'u', 'card')
  if not r[1] then return nil end
  return '{"subscriptionId":' .. q(id) .. ',"userId":' .. q(r[2]) .. ',' .. string.sub(r[1], 2, -2) .. ',"card":' .. r[3]
    .. ',"invoices":[' .. table.concat(redis.call('LRANGE', B .. 'inv:' .. id, 0, -1), ',') .. ']}'
end
local function remove(id)
  redis.call('ZREM', EVICT, id)
  local r = redis.call('HMGET', rec(id), 'u', 'st')
  if not r[1] then return 0 end
  redis.call('DEL', rec(id), B .. 'inv:' .. id)
  redis.call('ZREM', ALL, id)
  redis.call('ZREM', B .. 'user:' .. r[1], id)
  redis.call('HINCRBY', KEYS[3], r[2], -1)
  return 1
end
-- The event is about the orders of the invoices its record carries (outboxOrderIds).
local function emitChange(eventId, eventType, id, now)
  local orders, seen = {}, {}
  for _, invoice in ipairs(redis.call('LRANGE', B .. 'inv:' .. id, 0, -1)) do
    local orderId = cjson.decode(invoice).orderId
    if not seen[orderId] then
      seen[orderId] = true
      orders[#orders + 1] = orderId
    end
  end
  emit(O, OMAX, eventId, eventType, 'subscription:' .. id, '{"kind":"subscription","subscription":' .. view(id) .. '}', now, orders)
end
${BOUNDS}`;

const CREATE = `${PRELUDE}
-- ARGV: B, O, outbox bound, id, userId, s, card, version, status, createdAt, eventId, max, ttl, batch, invoice...
local id, user, status, ca = ARGV[4], ARGV[5], ARGV[9], ARGV[10]
-- The id is new with each create: there already, it is this very create run again (its reply
-- lost, ioredis sent it again), which must not count it or publish its event twice.
if redis.call('EXISTS', rec(id)) == 1 then return 1 end
sweep(tonumber(ca) - tonumber(ARGV[13]), tonumber(ARGV[14]))
if not makeRoom(tonumber(ARGV[12])) then return 0 end
redis.call('HSET', rec(id), 's', ARGV[6], 'card', ARGV[7], 'u', user, 'v', ARGV[8], 'st', status)
redis.call('DEL', B .. 'inv:' .. id)
for i = 15, #ARGV do redis.call('RPUSH', B .. 'inv:' .. id, ARGV[i]) end
redis.call('ZADD', ALL, 0, id)
redis.call('ZADD', B .. 'user:' .. user, 0, id)
redis.call('HINCRBY', KEYS[3], status, 1)
emitChange(ARGV[11], 'subscription.activated', id, ca)
return 1
`;

const UPDATE = `${PRELUDE}${keepingReply("B .. 'kept:'", `
-- ARGV: B, O, outbox bound, id, s, version, status, expired at (or updatedAt), updatedAt, card ('' = keep),
-- invoice ('' = none), invoices kept, eventId ('' = none), eventType, call token
local id, version, status = ARGV[4], tonumber(ARGV[6]), ARGV[7]
local r = redis.call('HMGET', rec(id), 'v', 'st', 'ct')
if not r[1] then return {'not_found'} end
-- This very update run again (its reply lost, ioredis sent it again): it answers what it did.
if tonumber(r[1]) == version and r[3] == ARGV[15] then return {'updated', view(id)} end
if tonumber(r[1]) ~= version - 1 then return {'conflict', view(id)} end
redis.call('HSET', rec(id), 's', ARGV[5], 'v', ARGV[6], 'st', status, 'ct', ARGV[15])
if ARGV[10] ~= '' then redis.call('HSET', rec(id), 'card', ARGV[10]) end
if ARGV[11] ~= '' then
  redis.call('RPUSH', B .. 'inv:' .. id, ARGV[11])
  redis.call('LTRIM', B .. 'inv:' .. id, -tonumber(ARGV[12]), -1)
end
if status ~= r[2] then
  redis.call('HINCRBY', KEYS[3], r[2], -1)
  redis.call('HINCRBY', KEYS[3], status, 1)
end
if status == 'EXPIRED' and r[2] ~= 'EXPIRED' then redis.call('ZADD', EVICT, ARGV[8], id) end
if ARGV[13] ~= '' then emitChange(ARGV[13], ARGV[14], id, ARGV[9]) end
return {'updated', view(id)}
`)}`;

const GET = `${PRELUDE}
return view(ARGV[4]) or ''
`;

const LIST = `${PRELUDE}${WALK}
-- ARGV: B, O, outbox bound, limit, cursor, userId ('' = all), scan budget
local key = ALL
if ARGV[6] ~= '' then key = B .. 'user:' .. ARGV[6] end
return walk(key, ARGV[5], tonumber(ARGV[4]), tonumber(ARGV[7]), function(id) return redis.call('EXISTS', rec(id)) == 1 end, view)
`;

const SNAPSHOT = `${PRELUDE}
local out = {}
for _, id in ipairs(redis.call('ZRANGE', ALL, 0, -1)) do out[#out + 1] = view(id) end
return out
`;

const COUNTS = `return redis.call('HGETALL', KEYS[3])`;

const SWEEP = `${PRELUDE}
-- ARGV: B, O, outbox bound, cutoff, batch
return sweep(tonumber(ARGV[4]), tonumber(ARGV[5]))
`;

/**
 * FluxPay's billing subscriptions (`sub_`, issue 12) in Redis, shared by every replica. A change
 * and the outbox event that reports it are one Lua script that writes both this store's keys and
 * the FluxPay store's outbox (its layout: ./fluxpay/outbox.ts), so the relay publishes every
 * FluxPay event in one order and never one for a change that did not happen. An update applies
 * only to the version it was computed from: of concurrent changes, on any replica, one applies.
 *
 * Bounds as memory: EXPIRED subscriptions go `ttlMs` after they expired, or the oldest expired
 * first when a new one finds the store full; open ones never do (a create then answers `full`).
 * Differences from memory: TTLs follow the callers' clock; a create sweeps at most 500 expired
 * subscriptions (`sweep` takes them all).
 */
export class RedisBillingStore implements SubscriptionStore {
  readonly #options: RedisBillingStoreOptions;
  readonly #keys: [string, string, string];
  readonly #head: [string, string, number];
  readonly #scripts: Record<'create' | 'update' | 'get' | 'list' | 'snapshot' | 'counts' | 'stats' | 'sweep', Script>;

  /** `outbox`: the FluxPay store's (RedisFluxPayStore.outbox), where changes write their events. */
  constructor(client: Redis, options: RedisBillingStoreOptions, outbox: RedisOutbox) {
    this.#options = options;
    const b = `${options.keyPrefix}bill:`;
    this.#keys = [`${b}all`, `${b}exp`, `${b}counts`];
    this.#head = [b, outbox.prefix, outbox.maxEvents];
    this.#scripts = {
      create: defineScript(client, 'paysimBillingCreate', CREATE),
      update: defineScript(client, 'paysimBillingUpdate', UPDATE),
      get: defineScript(client, 'paysimBillingGet', GET),
      list: defineScript(client, 'paysimBillingList', LIST),
      snapshot: defineScript(client, 'paysimBillingSnapshot', SNAPSHOT),
      counts: defineScript(client, 'paysimBillingCounts', COUNTS),
      stats: defineScript(client, 'paysimBillingStats', COUNT_ALL),
      sweep: defineScript(client, 'paysimBillingSweep', SWEEP),
    };
  }

  async create(record: SubscriptionRecord, eventId: string): Promise<CreateOutcome<SubscriptionRecord>> {
    const { maxSubscriptions, ttlMs } = this.#options;
    const args = [record.subscriptionId, record.userId, subscriptionJson(record), JSON.stringify(record.card), record.version, record.status, record.createdAt, eventId, maxSubscriptions, ttlMs, SWEEP_BATCH];
    const created = await this.#scripts.create(this.#keys, [...this.#head, ...args, ...record.invoices.map((i) => JSON.stringify(i))]);
    return created === 1 ? { kind: 'created', record: copyRecord(record) } : { kind: 'full' };
  }

  async get(subscriptionId: string): Promise<SubscriptionRecord | undefined> {
    const json = (await this.#scripts.get(this.#keys, [...this.#head, subscriptionId])) as string;
    return json === '' ? undefined : (JSON.parse(json) as SubscriptionRecord);
  }

  async list(query: SubscriptionQuery): Promise<Page<SubscriptionRecord>> {
    const [cursor, records] = (await this.#scripts.list(this.#keys, [...this.#head, query.limit, query.cursor ?? '', query.userId ?? '', SCAN_BUDGET])) as [string, string[]];
    return { data: records.map((json) => JSON.parse(json) as SubscriptionRecord), nextCursor: cursor === '' ? null : cursor };
  }

  async update(change: SubscriptionChange): Promise<UpdateOutcome> {
    const { next } = change;
    const args = [
      next.subscriptionId,
      subscriptionJson(next),
      next.version,
      next.status,
      next.expiredAt ?? next.updatedAt,
      next.updatedAt,
      change.card === null ? '' : JSON.stringify(change.card),
      change.invoice === null ? '' : JSON.stringify(change.invoice),
      MAX_INVOICES,
      change.event?.eventId ?? '',
      change.event?.eventType ?? '',
      callToken(),
    ];
    const [kind, json] = (await this.#scripts.update(this.#keys, [...this.#head, ...args])) as [string, string?];
    if (kind === 'not_found') return { kind };
    return { kind: kind as 'updated' | 'conflict', record: JSON.parse(json as string) as SubscriptionRecord };
  }

  async snapshot(): Promise<SubscriptionRecord[]> {
    return ((await this.#scripts.snapshot(this.#keys, this.#head)) as string[]).map((json) => JSON.parse(json) as SubscriptionRecord);
  }

  async counts(): Promise<Record<SubscriptionStatus, number>> {
    const counts = Object.fromEntries(SUBSCRIPTION_STATUSES.map((status) => [status, 0])) as Record<SubscriptionStatus, number>;
    const flat = (await this.#scripts.counts(this.#keys, [])) as string[];
    for (let i = 0; i < flat.length; i += 2) counts[flat[i] as SubscriptionStatus] = Number(flat[i + 1]);
    return counts;
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#scripts.stats(this.#keys, [])), max: this.#options.maxSubscriptions };
  }

  async sweep(now: number): Promise<number> {
    return sweepInBatches(async () => (await this.#scripts.sweep(this.#keys, [...this.#head, now - this.#options.ttlMs, SWEEP_BATCH])) as [number, number]);
  }
}

/** The subscription's own fields as JSON, without its ids, card and invoices (the record's parts kept apart; a change never moves its ids). */
function subscriptionJson(subscription: Subscription | SubscriptionRecord): string {
  const { subscriptionId: _id, userId: _user, card: _card, invoices: _invoices, ...fields } = subscription as SubscriptionRecord;
  return JSON.stringify(fields);
}
