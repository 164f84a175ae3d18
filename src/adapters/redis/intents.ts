import type { Redis } from 'ioredis';
import { INTENT_STATUSES, type Intent, type IntentStatus } from '../../core/intents/intent.ts';
import type { InsertOutcome, IntentPatch, IntentQuery, IntentStore, Page, RefundOutcome, StoreStats, Transition } from '../../core/ports.ts';
import { SCAN_BUDGET } from '../memory/id-list.ts';
import { BOUNDS, COUNT_ALL, fieldsOf, sweepScript, WALK } from './lua.ts';
import { defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';

export interface RedisIntentStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  ttlMs: number;
  maxIntents: number;
}


/*
 * Keys (P = prefix .. 'int:'): KEYS[1] P..'all' (zset, score 0, ids in lexical = creation order),
 * KEYS[2] P..'counts' (hash status → n), KEYS[3] P..'evict' (zset: ids of final intents → createdAt).
 * Built inside the scripts from ARGV[1] = P: P..'r:'..id (the record, a hash), P..'st:'..status and
 * P..'res:'..reservationId (zsets like 'all'). A record hash holds `b` (the intent as inserted, JSON)
 * and the fields that change or that scripts read: s, fc (JSON), ra, ua, da (JSON), amt, ps, pf (JSON),
 * rid, ca.
 */
const PRELUDE = `
local P = ARGV[1]
local ALL, EVICT = KEYS[1], KEYS[3]
local function rec(id) return P .. 'r:' .. id end
local function view(id) return redis.call('HGETALL', rec(id)) end
local function setStatus(id, before, after, createdAt)
  if before == after then return end
  redis.call('HSET', rec(id), 's', after)
  redis.call('HINCRBY', KEYS[2], before, -1)
  redis.call('HINCRBY', KEYS[2], after, 1)
  redis.call('ZREM', P .. 'st:' .. before, id)
  redis.call('ZADD', P .. 'st:' .. after, 0, id)
  if before == 'PENDING' then redis.call('ZADD', KEYS[3], createdAt, id) end
end
local function remove(id)
  redis.call('ZREM', KEYS[3], id)
  local r = redis.call('HMGET', rec(id), 's', 'rid')
  if not r[1] then return 0 end
  redis.call('DEL', rec(id))
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', P .. 'res:' .. r[2], id)
  redis.call('ZREM', P .. 'st:' .. r[1], id)
  redis.call('HINCRBY', KEYS[2], r[1], -1)
  return 1
end
${BOUNDS}`;

const INSERT = `${PRELUDE}
-- ARGV: P, id, base, s, fc, ra, ua, da, amt, ps, pf, rid, ca, max, ttl, batch
local id, status, ca = ARGV[2], ARGV[4], ARGV[13]
sweep(tonumber(ca) - tonumber(ARGV[15]), tonumber(ARGV[16]))
if not makeRoom(tonumber(ARGV[14])) then return 0 end
redis.call('HSET', rec(id), 'b', ARGV[3], 's', status, 'fc', ARGV[5], 'ra', ARGV[6], 'ua', ARGV[7], 'da', ARGV[8],
  'amt', ARGV[9], 'ps', ARGV[10], 'pf', ARGV[11], 'rid', ARGV[12], 'ca', ca)
redis.call('ZADD', KEYS[1], 0, id)
redis.call('ZADD', P .. 'res:' .. ARGV[12], 0, id)
redis.call('ZADD', P .. 'st:' .. status, 0, id)
redis.call('HINCRBY', KEYS[2], status, 1)
if status ~= 'PENDING' then redis.call('ZADD', KEYS[3], ca, id) end
return 1
`;

const GET = `${PRELUDE}
return view(ARGV[2])
`;

const DECIDE = `${PRELUDE}
-- ARGV: P, id, now
local id, now = ARGV[2], ARGV[3]
local r = redis.call('HMGET', rec(id), 's', 'ps', 'pf', 'ca')
if not r[1] then return {0, {}} end
if r[1] ~= 'PENDING' then return {0, view(id)} end
redis.call('HSET', rec(id), 'fc', r[3], 'da', now, 'ua', now)
setStatus(id, 'PENDING', r[2], r[4])
return {1, view(id)}
`;

const TRANSITION = `${PRELUDE}
-- ARGV: P, id, status, fc ('' = keep), da ('' = keep), ua, from...
local id = ARGV[2]
local r = redis.call('HMGET', rec(id), 's', 'ca')
if not r[1] then return {0, {}} end
local allowed = false
for i = 7, #ARGV do if ARGV[i] == r[1] then allowed = true end end
if not allowed then return {0, view(id)} end
if ARGV[4] ~= '' then redis.call('HSET', rec(id), 'fc', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', rec(id), 'da', ARGV[5]) end
redis.call('HSET', rec(id), 'ua', ARGV[6])
setStatus(id, r[1], ARGV[3], r[2])
return {1, view(id)}
`;

const REFUND = `${PRELUDE}
-- ARGV: P, id, amount ('' = all that is left), now
local id = ARGV[2]
local r = redis.call('HMGET', rec(id), 's', 'amt', 'ra', 'ca')
if not r[1] then return {'not_found'} end
if r[1] ~= 'APPROVED' and r[1] ~= 'PARTIALLY_REFUNDED' then return {'invalid_state', view(id)} end
local amount, refunded = tonumber(r[2]), tonumber(r[3])
local left = amount - refunded
local refund = left
if ARGV[3] ~= '' then refund = tonumber(ARGV[3]) end
if refund > left then return {'exceeds', view(id), left} end
refunded = refunded + refund
redis.call('HSET', rec(id), 'ra', string.format('%d', refunded), 'ua', ARGV[4])
local after = 'PARTIALLY_REFUNDED'
if refunded == amount then after = 'REFUNDED' end
setStatus(id, r[1], after, r[4])
return {'refunded', view(id), refund}
`;

const LIST = `${PRELUDE}${WALK}
-- ARGV: P, limit, cursor, reservationId, status, scan budget ('' = no such filter or cursor)
local limit, cursor, rid, status, budget = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local key = KEYS[1]
local narrowest = nil
if rid ~= '' then narrowest = P .. 'res:' .. rid end
if status ~= '' then
  local byStatus = P .. 'st:' .. status
  if narrowest == nil or redis.call('ZCARD', byStatus) < redis.call('ZCARD', narrowest) then narrowest = byStatus end
end
if narrowest then key = narrowest end
return walk(key, cursor, limit, budget, function(id)
  local r = redis.call('HMGET', rec(id), 's', 'rid')
  return r[1] and (status == '' or r[1] == status) and (rid == '' or r[2] == rid)
end, view)
`;

const COUNTS = `return redis.call('HGETALL', KEYS[2])`;
const STATS = COUNT_ALL;

const SWEEP = sweepScript(PRELUDE);

/**
 * The intents port in Redis, one Lua script per operation (a guarded transition, a refund that
 * checks what is left, an insert that evicts to make room: each one atomic). Indexes are sorted
 * sets with one score, so ids sort lexically, which for ULIDs is creation order: one of all ids,
 * one per reservation and one per status; a filtered list walks the narrowest and checks the
 * other filter on each record, at most `SCAN_BUDGET` records a page, as memory does.
 *
 * Bounds: PENDING intents are never evicted; final ones wait in a sorted set by creation time,
 * which both the TTL sweep and the size bound take from the front. Differences from memory: memory
 * evicts in the order intents were decided, this in the order they were created (the same give or
 * take the decision delay); TTLs follow the callers' clock (`now`, `createdAt`), not Redis key
 * expiry; an insert sweeps at most 500 intents past the TTL (`sweep` takes them all).
 */
export class RedisIntentStore implements IntentStore {
  readonly #options: RedisIntentStoreOptions;
  readonly #keys: [string, string, string];
  readonly #p: string;
  readonly #insert: Script;
  readonly #get: Script;
  readonly #decide: Script;
  readonly #transition: Script;
  readonly #refund: Script;
  readonly #list: Script;
  readonly #counts: Script;
  readonly #stats: Script;
  readonly #sweep: Script;

  constructor(client: Redis, options: RedisIntentStoreOptions) {
    this.#options = options;
    this.#p = `${options.keyPrefix}int:`;
    this.#keys = [`${this.#p}all`, `${this.#p}counts`, `${this.#p}evict`];
    this.#insert = defineScript(client, 'paysimIntentInsert', INSERT);
    this.#get = defineScript(client, 'paysimIntentGet', GET);
    this.#decide = defineScript(client, 'paysimIntentDecide', DECIDE);
    this.#transition = defineScript(client, 'paysimIntentTransition', TRANSITION);
    this.#refund = defineScript(client, 'paysimIntentRefund', REFUND);
    this.#list = defineScript(client, 'paysimIntentList', LIST);
    this.#counts = defineScript(client, 'paysimIntentCounts', COUNTS);
    this.#stats = defineScript(client, 'paysimIntentStats', STATS);
    this.#sweep = defineScript(client, 'paysimIntentSweep', SWEEP);
  }

  async insert(intent: Intent): Promise<InsertOutcome> {
    const { ttlMs, maxIntents } = this.#options;
    const inserted = await this.#insert(this.#keys, [
      this.#p,
      intent.id,
      JSON.stringify(intent),
      intent.status,
      JSON.stringify(intent.failureCode),
      intent.refundedAmount,
      intent.updatedAt,
      JSON.stringify(intent.decidedAt),
      intent.amount,
      intent.planned.status,
      JSON.stringify(intent.planned.failureCode),
      intent.reservationId,
      intent.createdAt,
      maxIntents,
      ttlMs,
      SWEEP_BATCH,
    ]);
    return inserted === 1 ? { ok: true } : { ok: false, reason: 'full' };
  }

  async get(id: string): Promise<Intent | undefined> {
    return decodeIntent((await this.#get(this.#keys, [this.#p, id])) as string[]);
  }

  async decide(id: string, now: number): Promise<Transition<Intent>> {
    return toTransition((await this.#decide(this.#keys, [this.#p, id, now])) as [number, string[]]);
  }

  async transition(id: string, from: readonly IntentStatus[], patch: IntentPatch): Promise<Transition<Intent>> {
    const failureCode = patch.failureCode === undefined ? '' : JSON.stringify(patch.failureCode);
    const decidedAt = patch.decidedAt === undefined ? '' : JSON.stringify(patch.decidedAt);
    return toTransition((await this.#transition(this.#keys, [this.#p, id, patch.status, failureCode, decidedAt, patch.updatedAt, ...from])) as [number, string[]]);
  }

  async refund(id: string, amount: number | undefined, now: number): Promise<RefundOutcome> {
    const [kind, flat, figure] = (await this.#refund(this.#keys, [this.#p, id, amount ?? '', now])) as [string, string[]?, number?];
    if (kind === 'not_found') return { kind };
    const intent = decodeIntent(flat as string[]) as Intent;
    if (kind === 'invalid_state') return { kind, intent };
    if (kind === 'exceeds') return { kind, intent, left: figure as number };
    return { kind: 'refunded', intent, amount: figure as number };
  }

  async list(query: IntentQuery): Promise<Page<Intent>> {
    const [cursor, records] = (await this.#list(this.#keys, [this.#p, query.limit, query.cursor ?? '', query.reservationId ?? '', query.status ?? '', SCAN_BUDGET])) as [string, string[][]];
    return { data: records.map((flat) => decodeIntent(flat) as Intent), nextCursor: cursor === '' ? null : cursor };
  }

  async counts(): Promise<Record<IntentStatus, number>> {
    const flat = (await this.#counts(this.#keys, [])) as string[];
    const counts = Object.fromEntries(INTENT_STATUSES.map((status) => [status, 0])) as Record<IntentStatus, number>;
    for (let i = 0; i < flat.length; i += 2) counts[flat[i] as IntentStatus] = Number(flat[i + 1]);
    return counts;
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#stats(this.#keys, [])), max: this.#options.maxIntents };
  }

  async sweep(now: number): Promise<number> {
    return sweepInBatches(async () => (await this.#sweep(this.#keys, [this.#p, now - this.#options.ttlMs, SWEEP_BATCH])) as [number, number]);
  }
}

function toTransition([ok, flat]: [number, string[]]): Transition<Intent> {
  const record = decodeIntent(flat);
  return ok === 1 ? { ok: true, record: record as Intent } : { ok: false, current: record };
}

/** A record hash (HGETALL's flat field/value list) as an intent; undefined for an empty one. */
function decodeIntent(flat: readonly string[]): Intent | undefined {
  if (flat.length === 0) return undefined;
  const fields = fieldsOf(flat);
  const base = JSON.parse(fields.b as string) as Intent;
  return {
    ...base,
    status: fields.s as IntentStatus,
    failureCode: JSON.parse(fields.fc as string) as string | null,
    refundedAmount: Number(fields.ra),
    updatedAt: Number(fields.ua),
    decidedAt: JSON.parse(fields.da as string) as number | null,
    metadata: base.metadata === null ? null : Object.freeze(base.metadata),
    planned: Object.freeze(base.planned),
  };
}
