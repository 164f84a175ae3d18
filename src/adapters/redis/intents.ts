import type { Redis } from 'ioredis';
import { INTENT_STATUSES, type Intent, type IntentStatus } from '../../core/intents/intent.ts';
import type { InsertOutcome, IntentPatch, IntentQuery, IntentStore, Job, Page, RefundOutcome, StoreStats, Transition } from '../../core/ports.ts';
import { SCAN_BUDGET } from '../memory/id-list.ts';
import { BOUNDS, COUNT_ALL, fieldsOf, sweepScript, WALK } from './lua.ts';
import { defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';
import { type RedisSchedulerStore, SCHEDULE_JOB } from './scheduler.ts';

export interface RedisIntentStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  ttlMs: number;
  maxIntents: number;
  /** The scheduler store on the same Redis: with it, `insertScheduled` writes an intent and its job in one script run. */
  scheduler?: RedisSchedulerStore | undefined;
}


/*
 * Keys (P = prefix .. 'int:'): KEYS[1] P..'all' (zset, score 0, ids in lexical = creation order),
 * KEYS[2] P..'evict' (zset: ids of final intents → createdAt). Built inside the scripts from
 * ARGV[1] = P: P..'r:'..id (the record, a hash), P..'st:'..status and P..'res:'..reservationId
 * (zsets like 'all'; the count of a status is its zset's ZCARD). A record hash holds `b` (the intent
 * as inserted, JSON) and, always all of them, the fields that change or that scripts read: s, fc
 * (JSON), ra, ua, da (JSON), amt, ps, pf (JSON), rid, ca. A change reads the whole record once
 * (HGETALL), writes its fields with one HSET and answers the record it read with the change applied:
 * every Redis call a script makes costs about a microsecond of Redis' time on top of the command,
 * and every intent is decided once (the decisions of one tick share one script run).
 * (Before 2026-12-01 a hash P..'counts' held the count of each status; it is no longer read or written.)
 */
const PRELUDE = `
local P = ARGV[1]
local ALL, EVICT = KEYS[1], KEYS[2]
local function rec(id) return P .. 'r:' .. id end
-- A record as its HGETALL list encoded as one JSON array ('' for none): one string is far cheaper for
-- the client to take from the reply than a list of 22.
local function encode(flat)
  if #flat == 0 then return '' end
  return cjson.encode(flat)
end
local function view(id) return encode(redis.call('HGETALL', rec(id))) end
-- The positions of the values in a record's HGETALL list, by field name.
local function positions(flat)
  local at = {}
  for i = 1, #flat, 2 do at[flat[i]] = i + 1 end
  return at
end
-- Writes {field, value, ...} to the record with one HSET and into flat, the record as read.
local function write(id, flat, at, changes)
  for i = 1, #changes, 2 do flat[at[changes[i]]] = changes[i + 1] end
  redis.call('HSET', rec(id), unpack(changes))
end
-- Moves an intent between the status indexes (the record's own 's' is written by the caller).
local function moveStatus(id, before, after, createdAt)
  if before == after then return end
  redis.call('ZREM', P .. 'st:' .. before, id)
  redis.call('ZADD', P .. 'st:' .. after, 0, id)
  if before == 'PENDING' then redis.call('ZADD', EVICT, createdAt, id) end
end
local function remove(id)
  redis.call('ZREM', EVICT, id)
  local r = redis.call('HMGET', rec(id), 's', 'rid')
  if not r[1] then return 0 end
  redis.call('DEL', rec(id))
  redis.call('ZREM', ALL, id)
  redis.call('ZREM', P .. 'res:' .. r[2], id)
  redis.call('ZREM', P .. 'st:' .. r[1], id)
  return 1
end
${BOUNDS}`;

const INSERT_INTENT = `
-- ARGV: P, id, base, s, fc, ra, ua, da, amt, ps, pf, rid, ca, max, ttl, batch; 1 when stored, 0 when full
local function insertIntent()
  local id, status, ca = ARGV[2], ARGV[4], ARGV[13]
  sweep(tonumber(ca) - tonumber(ARGV[15]), tonumber(ARGV[16]))
  if not makeRoom(tonumber(ARGV[14])) then return 0 end
  redis.call('HSET', rec(id), 'b', ARGV[3], 's', status, 'fc', ARGV[5], 'ra', ARGV[6], 'ua', ARGV[7], 'da', ARGV[8],
    'amt', ARGV[9], 'ps', ARGV[10], 'pf', ARGV[11], 'rid', ARGV[12], 'ca', ca)
  redis.call('ZADD', ALL, 0, id)
  redis.call('ZADD', P .. 'res:' .. ARGV[12], 0, id)
  redis.call('ZADD', P .. 'st:' .. status, 0, id)
  if status ~= 'PENDING' then redis.call('ZADD', EVICT, ca, id) end
  return 1
end
`;

const INSERT = `${PRELUDE}${INSERT_INTENT}
return insertIntent()
`;

/** The insert and, when it stored the intent, its job: KEYS[3..5] and ARGV[17..20] are the scheduler's (RedisSchedulerStore.jobWrite). */
const INSERT_SCHEDULED = `${PRELUDE}${INSERT_INTENT}${SCHEDULE_JOB}
if insertIntent() == 0 then return 0 end
scheduleJob(KEYS[3], KEYS[4], KEYS[5], ARGV[17], ARGV[18], ARGV[19], ARGV[20])
return 1
`;

const GET = `${PRELUDE}
return view(ARGV[2])
`;

const DECIDE = `${PRELUDE}
-- ARGV: P, then id, now of each decision; answers ok (1 or 0), the record (encoded) of each, in order
local out = {}
for i = 2, #ARGV, 2 do
  local id, now = ARGV[i], ARGV[i + 1]
  local flat = redis.call('HGETALL', rec(id))
  if #flat == 0 then
    out[#out + 1] = 0
    out[#out + 1] = ''
  else
    local at = positions(flat)
    local ok = 0
    if flat[at.s] == 'PENDING' then
      local after = flat[at.ps]
      write(id, flat, at, {'fc', flat[at.pf], 'da', now, 'ua', now, 's', after})
      moveStatus(id, 'PENDING', after, flat[at.ca])
      ok = 1
    end
    out[#out + 1] = ok
    out[#out + 1] = encode(flat)
  end
end
return out
`;

const TRANSITION = `${PRELUDE}
-- ARGV: P, id, status, fc ('' = keep), da ('' = keep), ua, from...
local id = ARGV[2]
local flat = redis.call('HGETALL', rec(id))
if #flat == 0 then return {0, ''} end
local at = positions(flat)
local before = flat[at.s]
local allowed = false
for i = 7, #ARGV do if ARGV[i] == before then allowed = true end end
if not allowed then return {0, encode(flat)} end
local changes = {'ua', ARGV[6], 's', ARGV[3]}
if ARGV[4] ~= '' then changes[#changes + 1] = 'fc'; changes[#changes + 1] = ARGV[4] end
if ARGV[5] ~= '' then changes[#changes + 1] = 'da'; changes[#changes + 1] = ARGV[5] end
write(id, flat, at, changes)
moveStatus(id, before, ARGV[3], flat[at.ca])
return {1, encode(flat)}
`;

const REFUND = `${PRELUDE}
-- ARGV: P, id, amount ('' = all that is left), now
local id = ARGV[2]
local flat = redis.call('HGETALL', rec(id))
if #flat == 0 then return {'not_found'} end
local at = positions(flat)
local before = flat[at.s]
if before ~= 'APPROVED' and before ~= 'PARTIALLY_REFUNDED' then return {'invalid_state', encode(flat)} end
local amount, refunded = tonumber(flat[at.amt]), tonumber(flat[at.ra])
local left = amount - refunded
local refund = left
if ARGV[3] ~= '' then refund = tonumber(ARGV[3]) end
if refund > left then return {'exceeds', encode(flat), left} end
refunded = refunded + refund
local after = 'PARTIALLY_REFUNDED'
if refunded == amount then after = 'REFUNDED' end
write(id, flat, at, {'ra', string.format('%d', refunded), 'ua', ARGV[4], 's', after})
moveStatus(id, before, after, flat[at.ca])
return {'refunded', encode(flat), refund}
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

const COUNTS = `
-- ARGV: P, the statuses; answers status, count, status, count, …
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = ARGV[i]
  out[#out + 1] = redis.call('ZCARD', ARGV[1] .. 'st:' .. ARGV[i])
end
return out
`;
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
  readonly #keys: [string, string];
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
  /** The decisions asked for in this tick, sent together at its end (`decide`). */
  #decisions: PendingDecision[] = [];

  constructor(client: Redis, options: RedisIntentStoreOptions) {
    this.#options = options;
    this.#p = `${options.keyPrefix}int:`;
    this.#keys = [`${this.#p}all`, `${this.#p}evict`];
    this.#insert = defineScript(client, 'paysimIntentInsert', INSERT);
    this.#get = defineScript(client, 'paysimIntentGet', GET);
    this.#decide = defineScript(client, 'paysimIntentDecide', DECIDE);
    this.#transition = defineScript(client, 'paysimIntentTransition', TRANSITION);
    this.#refund = defineScript(client, 'paysimIntentRefund', REFUND);
    this.#list = defineScript(client, 'paysimIntentList', LIST);
    this.#counts = defineScript(client, 'paysimIntentCounts', COUNTS);
    this.#stats = defineScript(client, 'paysimIntentStats', STATS);
    this.#sweep = defineScript(client, 'paysimIntentSweep', SWEEP);
    const { scheduler } = options;
    if (scheduler !== undefined) {
      const insertScheduled = defineScript(client, 'paysimIntentInsertScheduled', INSERT_SCHEDULED);
      this.insertScheduled = async (intent, job) => {
        const write = scheduler.jobWrite(job);
        const stored = await insertScheduled([...this.#keys, ...write.keys], [...this.#insertArgs(intent), ...write.args]);
        return stored === 1 ? { ok: true } : { ok: false, reason: 'full' };
      };
    }
  }

  async insert(intent: Intent): Promise<InsertOutcome> {
    return (await this.#insert(this.#keys, this.#insertArgs(intent))) === 1 ? { ok: true } : { ok: false, reason: 'full' };
  }

  /**
   * The intent and its job (its decision) in one script run, so neither is ever stored without the
   * other and a create is one command; only with the scheduler's store (`options.scheduler`).
   */
  readonly insertScheduled?: (intent: Intent, job: Job) => Promise<InsertOutcome>;

  #insertArgs(intent: Intent): Array<string | number> {
    const { ttlMs, maxIntents } = this.#options;
    return [
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
    ];
  }

  async get(id: string): Promise<Intent | undefined> {
    return decodeIntent((await this.#get(this.#keys, [this.#p, id])) as string);
  }

  /**
   * Decisions asked for in one tick (the scheduler runs a batch's jobs in lanes, so a batch's
   * decisions come together) go to Redis in one script run, which decides each as its own guarded
   * transition, in order: one command for up to `DECIDE_BATCH` decisions instead of one each.
   */
  decide(id: string, now: number): Promise<Transition<Intent>> {
    return new Promise((resolve, reject) => {
      if (this.#decisions.length === 0) process.nextTick(this.#sendDecisions);
      this.#decisions.push({ id, now, resolve, reject });
      if (this.#decisions.length >= DECIDE_BATCH) this.#sendDecisions();
    });
  }

  readonly #sendDecisions = (): void => {
    const batch = this.#decisions;
    if (batch.length === 0) return;
    this.#decisions = [];
    const args: Array<string | number> = [this.#p];
    for (const { id, now } of batch) args.push(id, now);
    this.#decide(this.#keys, args).then(
      (reply) => {
        const flat = reply as Array<number | string>;
        batch.forEach((decision, i) => {
          try {
            decision.resolve(toTransition([flat[2 * i] as number, flat[2 * i + 1] as string]));
          } catch (error) {
            decision.reject(error);
          }
        });
      },
      (error: unknown) => {
        for (const decision of batch) decision.reject(error);
      },
    );
  };

  async transition(id: string, from: readonly IntentStatus[], patch: IntentPatch): Promise<Transition<Intent>> {
    const failureCode = patch.failureCode === undefined ? '' : JSON.stringify(patch.failureCode);
    const decidedAt = patch.decidedAt === undefined ? '' : JSON.stringify(patch.decidedAt);
    return toTransition((await this.#transition(this.#keys, [this.#p, id, patch.status, failureCode, decidedAt, patch.updatedAt, ...from])) as [number, string]);
  }

  async refund(id: string, amount: number | undefined, now: number): Promise<RefundOutcome> {
    const [kind, encoded, figure] = (await this.#refund(this.#keys, [this.#p, id, amount ?? '', now])) as [string, string?, number?];
    if (kind === 'not_found') return { kind };
    const intent = decodeIntent(encoded as string) as Intent;
    if (kind === 'invalid_state') return { kind, intent };
    if (kind === 'exceeds') return { kind, intent, left: figure as number };
    return { kind: 'refunded', intent, amount: figure as number };
  }

  async list(query: IntentQuery): Promise<Page<Intent>> {
    const [cursor, records] = (await this.#list(this.#keys, [this.#p, query.limit, query.cursor ?? '', query.reservationId ?? '', query.status ?? '', SCAN_BUDGET])) as [string, string[]];
    return { data: records.map((encoded) => decodeIntent(encoded) as Intent), nextCursor: cursor === '' ? null : cursor };
  }

  async counts(): Promise<Record<IntentStatus, number>> {
    const flat = (await this.#counts(this.#keys, [this.#p, ...INTENT_STATUSES])) as Array<string | number>;
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

/** At most this many decisions go in one script run. */
const DECIDE_BATCH = 128;

interface PendingDecision {
  id: string;
  now: number;
  resolve: (transition: Transition<Intent>) => void;
  reject: (error: unknown) => void;
}

function toTransition([ok, encoded]: [number, string]): Transition<Intent> {
  const record = decodeIntent(encoded);
  return ok === 1 ? { ok: true, record: record as Intent } : { ok: false, current: record };
}

/** A record hash (HGETALL's flat field/value list, as the scripts' `encode` answers it) as an intent; undefined for '' (none). */
function decodeIntent(encoded: string): Intent | undefined {
  if (encoded === '') return undefined;
  const fields = fieldsOf(JSON.parse(encoded) as string[]);
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
