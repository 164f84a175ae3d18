import type { Redis } from 'ioredis';
import type { Job, StoreStats, Transition, V2BeginOutcome, V2PaymentPage, V2PaymentQuery, V2PaymentStore } from '../../core/ports.ts';
import { v2CursorSeq, V2_STATUSES, type V2Completion, type V2Payment, type V2Status } from '../../core/v2/payment.ts';
import { BOUNDS, COUNT_ALL, fieldsOf, sweepScript } from './lua.ts';
import { callToken, defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';
import { SCHEDULE_JOB, type RedisSchedulerStore } from './scheduler.ts';

export interface RedisV2PaymentStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** Finished payments older than this (from their creation) are evicted. */
  ttlMs: number;
  maxPayments: number;
  /** The scheduler store on the same Redis: with it, `beginScheduled` writes a new payment and its decision's job in one script run. */
  scheduler?: RedisSchedulerStore | undefined;
}

/*
 * Keys (P = prefix .. 'v2:'): KEYS[1] P..'all' (zset: id → creation sequence), KEYS[2] P..'counts'
 * (hash: status → n), KEYS[3] P..'evict' (zset: finished payments → createdAt), KEYS[4] P..'seq'
 * (counter). Built in the scripts from ARGV[1] = P: P..'r:'..id (the payment hash) and
 * P..'st:'..status (zsets like 'all'). Ids (`pay_<tx_id>`) say nothing about when a payment was
 * made, so the sets are scored by a sequence number (a list's cursor is one: ZREVRANGEBYSCORE from
 * below it). A payment hash holds `b` (the payment as begun, JSON), `rq` (its request fields,
 * JSON: what makes a repeat the same request) and the fields that change or that scripts read: s,
 * fc, da, co, cb (JSON), ps and pf (the plan), ca, q, bt and ct, the call tokens of its begin and
 * its completion (connection.ts `callToken`).
 */
const PRELUDE = `
local P = ARGV[1]
local ALL, EVICT = KEYS[1], KEYS[3]
local function rec(id) return P .. 'r:' .. id end
local function view(id) return redis.call('HGETALL', rec(id)) end
local function setStatus(id, before, after)
  local r = redis.call('HMGET', rec(id), 'q', 'ca')
  redis.call('HSET', rec(id), 's', after)
  redis.call('HINCRBY', KEYS[2], before, -1)
  redis.call('HINCRBY', KEYS[2], after, 1)
  redis.call('ZREM', P .. 'st:' .. before, id)
  redis.call('ZADD', P .. 'st:' .. after, r[1], id)
  if after ~= 'PENDING' then redis.call('ZADD', EVICT, r[2], id) end
end
local function remove(id)
  redis.call('ZREM', EVICT, id)
  local s = redis.call('HGET', rec(id), 's')
  if not s then return 0 end
  redis.call('DEL', rec(id))
  redis.call('ZREM', ALL, id)
  redis.call('ZREM', P .. 'st:' .. s, id)
  redis.call('HINCRBY', KEYS[2], s, -1)
  return 1
end
${BOUNDS}`;

const BEGIN_PAYMENT = `
-- ARGV: P, id, base, request, s, fc, da, co, cb, ps, pf, ca, max, ttl, batch, call token
local function begin()
  local id, status, ca = ARGV[2], ARGV[5], ARGV[12]
  local there = redis.call('HMGET', rec(id), 'rq', 'bt', 'ct')
  if there[1] then
    -- This very begin run again (its reply lost, ioredis sent it again): created, once. Its token is
    -- in bt, which nothing else writes (before 2026-12-06 in ct, which a completion overwrites: a
    -- begin sent again after another replica's confirm answered as a replay, a review; records
    -- written then still have it in ct).
    if there[2] == ARGV[16] or there[3] == ARGV[16] then return {'created', view(id), 'again'} end
    if there[1] == ARGV[4] then return {'existing', view(id)} end
    return {'conflict', view(id)}
  end
  sweep(tonumber(ca) - tonumber(ARGV[14]), tonumber(ARGV[15]))
  if not makeRoom(tonumber(ARGV[13])) then return {'full'} end
  local q = redis.call('INCR', KEYS[4])
  redis.call('HSET', rec(id), 'b', ARGV[3], 'rq', ARGV[4], 's', status, 'fc', ARGV[6], 'da', ARGV[7], 'co', ARGV[8], 'cb', ARGV[9],
    'ps', ARGV[10], 'pf', ARGV[11], 'ca', ca, 'q', q, 'bt', ARGV[16])
  redis.call('ZADD', ALL, q, id)
  redis.call('ZADD', P .. 'st:' .. status, q, id)
  redis.call('HINCRBY', KEYS[2], status, 1)
  if status ~= 'PENDING' then redis.call('ZADD', EVICT, ca, id) end
  return {'created', view(id)}
end
`;

const BEGIN = `${PRELUDE}${BEGIN_PAYMENT}
return begin()
`;

/** The begin and, when it created the payment, its decision's job: KEYS[5..7] and ARGV[17..21] are the scheduler's (RedisSchedulerStore.jobWrite). */
const BEGIN_SCHEDULED = `${PRELUDE}${BEGIN_PAYMENT}${SCHEDULE_JOB}
local outcome = begin()
if outcome[1] == 'created' and not outcome[3] then scheduleJob(KEYS[5], KEYS[6], KEYS[7], ARGV[17], ARGV[18], ARGV[19], ARGV[20], ARGV[21]) end
return outcome
`;

const GET = `${PRELUDE}
return view(ARGV[2])
`;

const DECIDE = `${PRELUDE}
-- ARGV: P, id, now
local id = ARGV[2]
local r = redis.call('HMGET', rec(id), 's', 'da', 'ps', 'pf')
if not r[1] then return {0, {}} end
if r[1] ~= 'PENDING' or r[2] ~= 'null' then return {0, view(id)} end
redis.call('HSET', rec(id), 'da', ARGV[3])
if r[3] == 'PAYMENT_FAILED' then
  redis.call('HSET', rec(id), 'fc', r[4])
  setStatus(id, 'PENDING', 'PAYMENT_FAILED')
end
return {1, view(id)}
`;

const COMPLETE = `${PRELUDE}
-- ARGV: P, id, by (callback | manual), now, call token
local id, by = ARGV[2], ARGV[3]
local r = redis.call('HMGET', rec(id), 's', 'da', 'ps', 'ct')
if not r[1] then return {0, {}} end
-- This very completion run again (its reply lost, ioredis sent it again): it answers that it completed.
if r[4] == ARGV[5] then return {1, view(id)} end
if r[1] ~= 'PENDING' then return {0, view(id)} end
local confirmedAt = ARGV[4]
if by == 'callback' then
  if r[2] == 'null' or r[3] ~= 'PAYMENT_COMPLETED' then return {0, view(id)} end
  confirmedAt = r[2]
end
redis.call('HSET', rec(id), 'co', confirmedAt, 'cb', cjson.encode(by), 'ct', ARGV[5])
setStatus(id, 'PENDING', 'PAYMENT_COMPLETED')
return {1, view(id)}
`;

const LIST = `${PRELUDE}
-- ARGV: P, limit, status ('' = every payment), cursor ('' = the newest; else a creation sequence number: those before it)
local key = ALL
if ARGV[3] ~= '' then key = P .. 'st:' .. ARGV[3] end
local max = '+inf'
if ARGV[4] ~= '' then max = '(' .. ARGV[4] end
local limit = tonumber(ARGV[2])
-- One more than a page: whether there is a next one.
local found = redis.call('ZREVRANGEBYSCORE', key, max, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
local out, places = {}, {}
for i = 1, math.min(#found, 2 * limit), 2 do
  out[#out + 1] = view(found[i])
  places[#places + 1] = found[i + 1]
end
local more = 0
if #found > 2 * limit then more = 1 end
return {more, out, places}
`;

const COUNTS = `return redis.call('HGETALL', KEYS[2])`;

const SWEEP = sweepScript(PRELUDE);

/**
 * The `/api/v2` payments in Redis, shared by every replica, one Lua script per port operation:
 * `begin` checks the tx_id and stores in one step, so of any number of concurrent requests with
 * one tx_id, on any replicas, exactly one creates; `decide` and `complete` are guarded transitions.
 * Lists read the creation-ordered set of all payments or the one of a status newest first (each
 * set holds only its live payments, so a page reads no more than `limit`).
 *
 * Bounds: PENDING payments are never evicted; finished ones wait in a sorted set by creation time,
 * from which both the TTL sweep and the size bound take. Differences from memory: finished payments
 * go in creation order (memory: the order they finished); TTLs follow the callers' clock, not Redis
 * key expiry; a `begin` sweeps at most 500 payments past the TTL (`sweep` takes them all).
 */
export class RedisV2PaymentStore implements V2PaymentStore {
  readonly #options: RedisV2PaymentStoreOptions;
  readonly #keys: string[];
  readonly #p: string;
  readonly #scripts: Record<'begin' | 'get' | 'decide' | 'complete' | 'list' | 'counts' | 'stats' | 'sweep', Script>;

  constructor(client: Redis, options: RedisV2PaymentStoreOptions) {
    this.#options = options;
    this.#p = `${options.keyPrefix}v2:`;
    this.#keys = ['all', 'counts', 'evict', 'seq'].map((name) => this.#p + name);
    this.#scripts = {
      begin: defineScript(client, 'paysimV2Begin', BEGIN),
      get: defineScript(client, 'paysimV2Get', GET),
      decide: defineScript(client, 'paysimV2Decide', DECIDE),
      complete: defineScript(client, 'paysimV2Complete', COMPLETE),
      list: defineScript(client, 'paysimV2List', LIST),
      counts: defineScript(client, 'paysimV2Counts', COUNTS),
      stats: defineScript(client, 'paysimV2Stats', COUNT_ALL),
      sweep: defineScript(client, 'paysimV2Sweep', SWEEP),
    };
    const { scheduler } = options;
    if (scheduler !== undefined) {
      const beginScheduled = scheduler.withJob(defineScript(client, 'paysimV2BeginScheduled', BEGIN_SCHEDULED));
      this.beginScheduled = async (payment, job) => beginOutcome(await beginScheduled(this.#keys, this.#beginArgs(payment), job));
    }
  }

  /**
   * `begin` and, when it creates the payment, its decision's job, in one script run: a process
   * killed in between cannot leave a PENDING payment that nothing will decide. Only with the
   * scheduler's store (`options.scheduler`).
   */
  readonly beginScheduled?: (payment: V2Payment, job: Job) => Promise<V2BeginOutcome>;

  async begin(payment: V2Payment): Promise<V2BeginOutcome> {
    return beginOutcome(await this.#scripts.begin(this.#keys, this.#beginArgs(payment)));
  }

  #beginArgs(payment: V2Payment): Array<string | number> {
    const { ttlMs, maxPayments } = this.#options;
    return [
      this.#p,
      payment.id,
      JSON.stringify(payment),
      JSON.stringify([payment.txId, payment.orderId, payment.userId, payment.amount, payment.callbackUrl]),
      payment.status,
      JSON.stringify(payment.failureCode),
      JSON.stringify(payment.decidedAt),
      JSON.stringify(payment.confirmedAt),
      JSON.stringify(payment.completedBy),
      payment.planned.status,
      JSON.stringify(payment.planned.failureCode),
      payment.createdAt,
      maxPayments,
      ttlMs,
      SWEEP_BATCH,
      callToken(),
    ];
  }

  async get(id: string): Promise<V2Payment | undefined> {
    return decodePayment((await this.#scripts.get(this.#keys, [this.#p, id])) as string[]);
  }

  async decide(id: string, now: number): Promise<Transition<V2Payment>> {
    return toTransition((await this.#scripts.decide(this.#keys, [this.#p, id, now])) as [number, string[]]);
  }

  async complete(id: string, by: V2Completion, now: number): Promise<Transition<V2Payment>> {
    return toTransition((await this.#scripts.complete(this.#keys, [this.#p, id, by, now, callToken()])) as [number, string[]]);
  }

  async list(query: V2PaymentQuery): Promise<V2PaymentPage> {
    const cursor = query.cursor === undefined ? '' : String(v2CursorSeq(query.cursor));
    if (query.limit <= 0) return { data: [], cursors: [], nextCursor: null };
    const [more, records, places] = (await this.#scripts.list(this.#keys, [this.#p, query.limit, query.status ?? '', cursor])) as [number, string[][], string[]];
    // Scores come back as Redis writes doubles: the sequence's integers as they are.
    const cursors = places.map((place) => String(Number(place)));
    return { data: records.map((flat) => decodePayment(flat) as V2Payment), cursors, nextCursor: more === 1 ? (cursors.at(-1) ?? null) : null };
  }

  async counts(): Promise<Record<V2Status, number>> {
    const fields = fieldsOf((await this.#scripts.counts(this.#keys, [])) as string[]);
    return Object.fromEntries(V2_STATUSES.map((status) => [status, Number(fields[status] ?? 0)])) as Record<V2Status, number>;
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#scripts.stats(this.#keys, [])), max: this.#options.maxPayments };
  }

  async sweep(now: number): Promise<number> {
    return sweepInBatches(async () => (await this.#scripts.sweep(this.#keys, [this.#p, now - this.#options.ttlMs, SWEEP_BATCH])) as [number, number]);
  }
}

function toTransition([ok, flat]: [number, string[]]): Transition<V2Payment> {
  const payment = decodePayment(flat);
  return ok === 1 ? { ok: true, record: payment as V2Payment } : { ok: false, current: payment };
}

/** A payment hash (HGETALL's flat list) as a payment; undefined for an empty one. The plan comes frozen, as memory hands it out. */
function decodePayment(flat: readonly string[]): V2Payment | undefined {
  if (flat.length === 0) return undefined;
  const fields = fieldsOf(flat);
  const base = JSON.parse(fields.b as string) as V2Payment;
  return {
    ...base,
    status: fields.s as V2Status,
    failureCode: JSON.parse(fields.fc as string) as string | null,
    decidedAt: JSON.parse(fields.da as string) as number | null,
    confirmedAt: JSON.parse(fields.co as string) as number | null,
    completedBy: JSON.parse(fields.cb as string) as V2Completion | null,
    planned: Object.freeze(base.planned),
  };
}

/** A begin script's answer as the port's outcome. */
function beginOutcome(reply: unknown): V2BeginOutcome {
  const [kind, flat] = reply as [V2BeginOutcome['kind'], string[]?];
  if (kind === 'full') return { kind };
  return { kind, payment: decodePayment(flat as string[]) as V2Payment };
}
