import type { Redis } from 'ioredis';
import { subjectKey, type Delivery, type DeliveryAttempt, type DeliveryChange, type DeliveryStatus, type Subject } from '../../core/deliveries.ts';
import type { AcceptOutcome, DeliveryExpectation, DeliveryLogStore, DeliveryQuery, InsertOnceOutcome, InsertOutcome, Job, Page, StoreStats } from '../../core/ports.ts';
import { ENQUEUE } from './delivery-queue-lua.ts';
import { SCAN_BUDGET } from '../memory/id-list.ts';
import { BOUNDS, COUNT_ALL, fieldsOf, sweepScript, WALK } from './lua.ts';
import { SCHEDULE_JOB, type RedisSchedulerStore } from './scheduler.ts';
import { callToken, defineScript, RESENT_WITHIN_MS, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';

export interface RedisDeliveryLogOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  ttlMs: number;
  maxDeliveries: number;
  /** The scheduler store on the same Redis: with it, `updateScheduled` writes a change and its job in one script run. */
  scheduler?: RedisSchedulerStore | undefined;
}

/*
 * Keys (P = prefix .. 'dlv:'): KEYS[1] P..'all' (zset, score 0: ids in creation order), KEYS[2]
 * P..'evict' (zset: finished deliveries → createdAt). Built in the scripts from ARGV[1] = P:
 * P..'r:'..id (the record hash), P..'subj:'..subjectKey and P..'ev:'..eventId (zsets like 'all').
 * A record hash holds `b` (the delivery as logged, JSON) and the fields that change or that the
 * scripts read: s, nx (JSON), fr (JSON), ua, ss, at (the attempts, a JSON array), n (how many),
 * t ('1': a test send), sk (subject key, '' without one), ev, ca, ut (its last update's call
 * token); P..'kept:'..token (an update's mark, kept a while).
 */
const PRELUDE = `
local P = ARGV[1]
local ALL, EVICT = KEYS[1], KEYS[2]
local function rec(id) return P .. 'r:' .. id end
local function view(id) return redis.call('HGETALL', rec(id)) end
local function finished(status) return status == 'delivered' or status == 'failed' end
local function remove(id)
  redis.call('ZREM', KEYS[2], id)
  local r = redis.call('HMGET', rec(id), 'sk', 'ev')
  if not r[2] then return 0 end
  redis.call('DEL', rec(id))
  redis.call('ZREM', KEYS[1], id)
  if r[1] ~= '' then redis.call('ZREM', P .. 'subj:' .. r[1], id) end
  redis.call('ZREM', P .. 'ev:' .. r[2], id)
  return 1
end
${BOUNDS}`;

/*
 * The insert, shared by `insert`, `insertOnce` and the delivery queue's `accept`.
 * ARGV: P, id, base, s, nx, fr, ua, ss, at, n, t, sk, ev, ca, max, ttl, batch (then each script's own).
 * `room()` sweeps and makes room (false: the log is full of unfinished deliveries); `write`
 * logs the delivery with the given status and failure reason (JSON); `existing(url)` is the id
 * of the delivery the event already has to `url` (an event has one per URL, or two with a
 * `duplicate` fault rule: few to decode).
 */
const INSERT_PARTS = `${PRELUDE}
local function room()
  sweep(tonumber(ARGV[14]) - tonumber(ARGV[16]), tonumber(ARGV[17]))
  return makeRoom(tonumber(ARGV[15]))
end
local function write(status, fr)
  local id, sk, ev, ca = ARGV[2], ARGV[12], ARGV[13], ARGV[14]
  redis.call('HSET', rec(id), 'b', ARGV[3], 's', status, 'nx', ARGV[5], 'fr', fr, 'ua', ARGV[7], 'ss', ARGV[8],
    'at', ARGV[9], 'n', ARGV[10], 't', ARGV[11], 'sk', sk, 'ev', ev, 'ca', ca)
  redis.call('ZADD', KEYS[1], 0, id)
  if sk ~= '' then redis.call('ZADD', P .. 'subj:' .. sk, 0, id) end
  redis.call('ZADD', P .. 'ev:' .. ev, 0, id)
  if finished(status) then redis.call('ZADD', KEYS[2], ca, id) end
end
local function existing(url)
  for _, id in ipairs(redis.call('ZRANGE', P .. 'ev:' .. ARGV[13], 0, -1)) do
    local b = redis.call('HGET', rec(id), 'b')
    if b and cjson.decode(b)['url'] == url then return id end
  end
  return nil
end
`;

const INSERT = `${INSERT_PARTS}
-- The id is new with each insert: there already, it is this very insert run again (its reply lost,
-- ioredis sent it again).
if redis.call('EXISTS', rec(ARGV[2])) == 1 then return 1 end
if not room() then return 0 end
write(ARGV[4], ARGV[6])
return 1
`;

const INSERT_ONCE = `${INSERT_PARTS}
-- ARGV[18]: the delivery's URL
local found = existing(ARGV[18])
-- Its own new id: this very insert run again (its reply lost, ioredis sent it again).
if found == ARGV[2] then return {'ok'} end
if found then return {'exists', view(found)} end
if not room() then return {'full'} end
write(ARGV[4], ARGV[6])
return {'ok'}
`;

/*
 * The delivery queue's \`accept\` (src/adapters/redis/delivery-queue.ts): \`insertOnce\` and the
 * queue's ENQUEUE in one script. KEYS[3]: the delivery stream. ARGV[18]: the URL, ARGV[19]: the
 * stream's group, ARGV[20]: the queue's bound, ARGV[21]: the suffix of the consumers that hold
 * attempts in flight (not counted against the bound). The log's room is made before the stream is
 * touched, so a delivery is queued only if it is logged; one the queue refuses is logged failed.
 */
const ACCEPT = `${INSERT_PARTS}
local function enqueue(KEYS, ARGV)
${ENQUEUE}
end
local found = existing(ARGV[18])
-- Its own new id: this very accept run again (its reply lost, ioredis sent it again); it answers
-- what it did, without queueing the delivery twice.
if found == ARGV[2] then
  local own = redis.call('HMGET', rec(found), 's', 'fr')
  if own[1] == 'failed' and own[2] == '"queue_full"' then return {'queue_full', view(found)} end
  return {'queued'}
end
if found then return {'exists', view(found)} end
if not room() then return {'log_full'} end
local queued = enqueue({KEYS[3]}, {ARGV[19], ARGV[20], ARGV[3], ARGV[21]})
if type(queued) == 'table' then return queued end
if queued == 1 then
  write(ARGV[4], ARGV[6])
  return {'queued'}
end
write('failed', '"queue_full"')
return {'queue_full', view(ARGV[2])}
`;

const GET = `${PRELUDE}
return view(ARGV[2])
`;

const UPDATE_DELIVERY = `
-- ARGV: P, id, status, nx, fr, ua, newSeries ('1'), attempt (JSON, '' = none), call token.
-- \`expect\` (nil: none): {statuses = a set, attempts = a count}, what the delivery must be for the
-- change to be made; \`before\` (nil: none) runs once the change is to be made, before it is: an
-- error reply from it ends the run with nothing changed. Answers the delivery as it is after the
-- run (the error reply instead, if any), and true when this run made the change, 'again' when an
-- earlier run of this call did, false when it did not (the delivery not as expected, or \`before\` failed).
local function updateDelivery(expect, before)
  local id, status = ARGV[2], ARGV[3]
  local r = redis.call('HMGET', rec(id), 'n', 'at', 'ca', 'ut', 's')
  if not r[1] then return {} end
  -- This very update run again (its reply lost, ioredis sent it again): its attempt is logged once,
  -- and an update made between the two runs (another replica's retry delivered it) stands: its mark
  -- is kept ${RESENT_WITHIN_MS} ms under its call's token (a mark, not the reply: the reply is the whole
  -- delivery, body included, and every attempt updates it), ut on the record for a run later than that.
  local kept = P .. 'kept:' .. ARGV[9]
  if r[4] == ARGV[9] or redis.call('EXISTS', kept) == 1 then return view(id), 'again' end
  local n, attempts = tonumber(r[1]), r[2]
  if expect and (not expect.statuses[r[5]] or n ~= expect.attempts) then return view(id), false end
  if before then
    local failed = before()
    if failed then return failed, false end
  end
  redis.call('SET', kept, '1', 'PX', ${RESENT_WITHIN_MS})
  if ARGV[7] == '1' then
    redis.call('HSET', rec(id), 'ss', n)
    -- A replay's attempts go out: the first series' \`drop_attempts\` plan leaves the record (never
    -- the JSON's first field, which is id; a string's quotes are escaped, and a rule id has no braces).
    local b = redis.call('HGET', rec(id), 'b')
    local plain = string.gsub(b, ',"dropAttempts":%b{}', '', 1)
    if plain ~= b then redis.call('HSET', rec(id), 'b', plain) end
  end
  if ARGV[8] ~= '' then
    if n == 0 then attempts = '[' .. ARGV[8] .. ']' else attempts = string.sub(attempts, 1, -2) .. ',' .. ARGV[8] .. ']' end
    n = n + 1
  end
  redis.call('HSET', rec(id), 's', status, 'nx', ARGV[4], 'fr', ARGV[5], 'ua', ARGV[6], 'at', attempts, 'n', n, 'ut', ARGV[9])
  if finished(status) then redis.call('ZADD', KEYS[2], r[3], id) else redis.call('ZREM', KEYS[2], id) end
  return view(id), true
end
-- ARGV[at] (default 10): the statuses expected (joined by ','), ARGV[at + 1]: the attempts expected.
local function expected(at)
  at = at or 10
  local statuses = {}
  for status in string.gmatch(ARGV[at], '[^,]+') do statuses[status] = true end
  return { statuses = statuses, attempts = tonumber(ARGV[at + 1]) }
end
-- A \`before\` for updateDelivery: the change is made only while the stream entry ARGV[at + 2] of stream
-- ARGV[at] (group ARGV[at + 1]) is held by one of the consumers ARGV[at + 3], ARGV[at + 4] (the
-- DeliveryExpectation's heldAs); none given (ARGV[at] missing): no check. A stream or group that is
-- gone (a flush) holds nothing to take over: the change is made.
local function heldCheck(at)
  if not ARGV[at] then return nil end
  local ok, held = pcall(redis.call, 'XPENDING', ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 2], 1)
  if not ok then return nil end
  local owner = held[1] and held[1][2]
  if owner == ARGV[at + 3] or owner == ARGV[at + 4] then return nil end
  return {}
end
`;

const UPDATE = `${PRELUDE}${UPDATE_DELIVERY}
return (updateDelivery())
`;

/**
 * The update and, when this run made it, its job: KEYS[3..5] and ARGV[10..14] are the scheduler's
 * (RedisSchedulerStore.jobWrite). With ARGV[15] and ARGV[16] (the statuses and the attempts
 * expected, as UPDATE_IF's), only while the delivery is so, and with ARGV[17..21] only while its
 * stream entry is held so (heldCheck): else nothing changes and it answers {}.
 */
const UPDATE_SCHEDULED = `${PRELUDE}${UPDATE_DELIVERY}${SCHEDULE_JOB}
local expect = nil
if ARGV[15] then expect = expected(15) end
local reply, changed = updateDelivery(expect, function() return heldCheck(17) end)
if changed == true then scheduleJob(KEYS[3], KEYS[4], KEYS[5], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14]) end
if changed == false then return {} end
return reply
`;

/** \`updateIf\`: answers {1 or 0 (changed or not), the delivery}, or {} when unknown (or, with ARGV[12..16], its entry not held so). */
const UPDATE_IF = `${PRELUDE}${UPDATE_DELIVERY}
local reply, changed = updateDelivery(expected(), function() return heldCheck(12) end)
if #reply == 0 then return {} end
return { changed and 1 or 0, reply }
`;

/*
 * The delivery queue's \`requeue\` (src/adapters/redis/delivery-queue.ts): \`updateIf\` and the
 * queue's ENQUEUE (without a bound) in one script, the entry added only by the run that makes the
 * change. KEYS[3]: the delivery stream. ARGV[12]: the stream's group, ARGV[13]: the delivery as
 * queued (JSON), ARGV[14]: the busy suffix. Answers as UPDATE_IF; NOGROUP (the stream was deleted)
 * with nothing changed.
 */
const REQUEUE = `${PRELUDE}${UPDATE_DELIVERY}
local function enqueue(KEYS, ARGV)
${ENQUEUE}
end
local reply, changed = updateDelivery(expected(), function()
  local queued = enqueue({KEYS[3]}, {ARGV[12], '0', ARGV[13], ARGV[14]})
  if type(queued) == 'table' then return queued end
  return nil
end)
if reply.err then return reply end
if #reply == 0 then return {} end
return { changed and 1 or 0, reply }
`;

const LATEST = `${PRELUDE}${WALK}
-- ARGV: P, subject key
local page = walk(P .. 'subj:' .. ARGV[2], '', 1, -1, function(id) return redis.call('HGET', rec(id), 't') == '0' end, view)
return page[2][1] or {}
`;

const LIST = `${PRELUDE}${WALK}
-- ARGV: P, limit, cursor, subject key, eventId, status, scan budget ('' = no such filter or cursor)
local limit, cursor, sk, ev, status, budget = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local key = KEYS[1]
if ev ~= '' then key = P .. 'ev:' .. ev elseif sk ~= '' then key = P .. 'subj:' .. sk end
return walk(key, cursor, limit, budget, function(id)
  local r = redis.call('HMGET', rec(id), 's', 'sk', 'ev')
  return r[1] and (status == '' or r[1] == status) and (sk == '' or r[2] == sk) and (ev == '' or r[3] == ev)
end, view)
`;

const STATS = COUNT_ALL;

const SWEEP = sweepScript(PRELUDE);

/**
 * The webhook delivery log in Redis, shared by every replica, one Lua script per operation (an
 * update appends its attempt and moves the status in one step, so concurrent updates lose no
 * attempt). Only finished deliveries are evicted; a log full of unfinished ones refuses new ones.
 * Lists walk the creation-ordered set of all deliveries, or the one of an event or a subject.
 *
 * Differences from memory: finished deliveries are evicted in creation order (memory: the order
 * they finished); TTLs follow the callers' clock, not Redis key expiry; an insert sweeps at most
 * 500 deliveries past the TTL (`sweep` takes them all). `latestFor` walks the subject's deliveries
 * newest first past any test sends without a scan budget (a subject has few deliveries).
 */
export class RedisDeliveryLog implements DeliveryLogStore {
  readonly #options: RedisDeliveryLogOptions;
  readonly #keys: [string, string];
  readonly #p: string;
  readonly #scripts: Record<'insert' | 'insertOnce' | 'accept' | 'get' | 'update' | 'updateIf' | 'requeue' | 'latest' | 'list' | 'stats' | 'sweep', Script>;

  constructor(client: Redis, options: RedisDeliveryLogOptions) {
    this.#options = options;
    this.#p = `${options.keyPrefix}dlv:`;
    this.#keys = [`${this.#p}all`, `${this.#p}evict`];
    this.#scripts = {
      insert: defineScript(client, 'paysimDeliveryInsert', INSERT),
      insertOnce: defineScript(client, 'paysimDeliveryInsertOnce', INSERT_ONCE),
      accept: defineScript(client, 'paysimDeliveryAccept', ACCEPT),
      get: defineScript(client, 'paysimDeliveryGet', GET),
      update: defineScript(client, 'paysimDeliveryUpdate', UPDATE),
      updateIf: defineScript(client, 'paysimDeliveryUpdateIf', UPDATE_IF),
      requeue: defineScript(client, 'paysimDeliveryRequeue', REQUEUE),
      latest: defineScript(client, 'paysimDeliveryLatest', LATEST),
      list: defineScript(client, 'paysimDeliveryList', LIST),
      stats: defineScript(client, 'paysimDeliveryStats', STATS),
      sweep: defineScript(client, 'paysimDeliverySweep', SWEEP),
    };
    const { scheduler } = options;
    if (scheduler !== undefined) {
      const updateScheduled = scheduler.withJob(defineScript(client, 'paysimDeliveryUpdateScheduled', UPDATE_SCHEDULED));
      this.updateScheduled = async (id, change, job, expect) =>
        decodeDelivery((await updateScheduled(this.#keys, this.#updateArgs(id, change), job, expect === undefined ? [] : [expect.statuses.join(','), String(expect.attempts), ...heldArgs(expect)])) as string[]);
    }
  }

  async insert(delivery: Delivery): Promise<InsertOutcome> {
    const inserted = await this.#scripts.insert(this.#keys, this.#insertArgs(delivery));
    return inserted === 1 ? { ok: true } : { ok: false, reason: 'full' };
  }

  async insertOnce(delivery: Delivery): Promise<InsertOnceOutcome> {
    const [kind, flat] = (await this.#scripts.insertOnce(this.#keys, [...this.#insertArgs(delivery), delivery.url])) as [string, string[]?];
    if (kind === 'exists') return { ok: false, reason: 'exists', existing: decodeDelivery(flat as string[]) as Delivery };
    return kind === 'ok' ? { ok: true } : { ok: false, reason: 'full' };
  }

  /**
   * \`insertOnce\` and the queue's enqueue into \`stream\` (its key, group and bound), one script:
   * the delivery queue's \`accept\` (RedisDeliveryQueue), which calls it. A NOGROUP error (the
   * stream was deleted) changes nothing: the caller makes the group and calls again.
   */
  async insertOnceAndQueue(delivery: Delivery, stream: { key: string; group: string; max: number; busySuffix: string }): Promise<AcceptOutcome> {
    const args = [...this.#insertArgs(delivery), delivery.url, stream.group, stream.max, stream.busySuffix];
    const [kind, flat] = (await this.#scripts.accept([...this.#keys, stream.key], args)) as [AcceptOutcome['kind'], string[]?];
    switch (kind) {
      case 'exists':
      case 'queue_full':
        return { kind, delivery: decodeDelivery(flat as string[]) as Delivery };
      case 'queued':
      case 'log_full':
        return { kind };
    }
  }

  #insertArgs(delivery: Delivery): Array<string | number> {
    const { ttlMs, maxDeliveries } = this.#options;
    return [
      this.#p,
      delivery.id,
      JSON.stringify(delivery),
      delivery.status,
      JSON.stringify(delivery.nextAttemptAt),
      JSON.stringify(delivery.failureReason),
      delivery.updatedAt,
      delivery.seriesStart,
      JSON.stringify(delivery.attempts),
      delivery.attempts.length,
      delivery.test ? '1' : '0',
      delivery.subject === null ? '' : subjectKey(delivery.subject),
      delivery.eventId,
      delivery.createdAt,
      maxDeliveries,
      ttlMs,
      SWEEP_BATCH,
    ];
  }

  async get(id: string): Promise<Delivery | undefined> {
    return decodeDelivery((await this.#scripts.get(this.#keys, [this.#p, id])) as string[]);
  }

  async update(id: string, change: DeliveryChange): Promise<Delivery | undefined> {
    return decodeDelivery((await this.#scripts.update(this.#keys, this.#updateArgs(id, change))) as string[]);
  }

  async updateIf(id: string, expect: DeliveryExpectation, change: DeliveryChange): Promise<{ delivery: Delivery; changed: boolean } | undefined> {
    const reply = (await this.#scripts.updateIf(this.#keys, [...this.#updateArgs(id, change), expect.statuses.join(','), expect.attempts, ...heldArgs(expect)])) as [number, string[]] | [];
    return changedOf(reply);
  }

  /**
   * \`updateIf\` and, when it makes the change, the queue's enqueue of \`queued\` (the delivery as
   * changed) into \`stream\` (its key, group), one script: the delivery queue's \`requeue\`
   * (RedisDeliveryQueue), which calls it. A NOGROUP error (the stream was deleted) changes
   * nothing: the caller makes the group and calls again.
   */
  async updateIfAndQueue(
    id: string,
    expect: DeliveryExpectation,
    change: DeliveryChange,
    queued: Delivery,
    stream: { key: string; group: string; busySuffix: string },
  ): Promise<{ delivery: Delivery; changed: boolean } | undefined> {
    const args = [...this.#updateArgs(id, change), expect.statuses.join(','), expect.attempts, stream.group, JSON.stringify(queued), stream.busySuffix];
    return changedOf((await this.#scripts.requeue([...this.#keys, stream.key], args)) as [number, string[]] | []);
  }

  /** A change and its job in one script run (the job scheduled only by the run that made the change); only with the scheduler's store. */
  readonly updateScheduled?: (id: string, change: DeliveryChange, job: Job, expect?: DeliveryExpectation) => Promise<Delivery | undefined>;

  #updateArgs(id: string, change: DeliveryChange): Array<string | number> {
    const attempt = change.attempt === undefined ? '' : JSON.stringify(attemptOf(change.attempt));
    return [this.#p, id, change.status, JSON.stringify(change.nextAttemptAt), JSON.stringify(change.failureReason), change.updatedAt, change.newSeries === true ? '1' : '0', attempt, callToken()];
  }

  async latestFor(subject: Subject): Promise<Delivery | undefined> {
    return decodeDelivery((await this.#scripts.latest(this.#keys, [this.#p, subjectKey(subject)])) as string[]);
  }

  async list(query: DeliveryQuery): Promise<Page<Delivery>> {
    const subject = query.subject === undefined ? '' : subjectKey(query.subject);
    const args = [this.#p, query.limit, query.cursor ?? '', subject, query.eventId ?? '', query.status ?? '', SCAN_BUDGET];
    const [cursor, records] = (await this.#scripts.list(this.#keys, args)) as [string, string[][]];
    return { data: records.map((flat) => decodeDelivery(flat) as Delivery), nextCursor: cursor === '' ? null : cursor };
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#scripts.stats(this.#keys, [])), max: this.#options.maxDeliveries };
  }

  async sweep(now: number): Promise<number> {
    return sweepInBatches(async () => (await this.#scripts.sweep(this.#keys, [this.#p, now - this.#options.ttlMs, SWEEP_BATCH])) as [number, number]);
  }
}

/** Only the attempt's own fields, in a fixed order. */
function attemptOf(attempt: DeliveryAttempt): DeliveryAttempt {
  return { at: attempt.at, statusCode: attempt.statusCode, durationMs: attempt.durationMs, error: attempt.error };
}

function changedOf(reply: [number, string[]] | []): { delivery: Delivery; changed: boolean } | undefined {
  if (reply.length === 0) return undefined;
  return { delivery: decodeDelivery(reply[1]) as Delivery, changed: reply[0] === 1 };
}

/** The stream entry an expectation's heldAs names, as heldCheck reads it (none: no check). */
function heldArgs(expect: DeliveryExpectation): string[] {
  const held = expect.heldAs;
  return held === undefined ? [] : [held.stream, held.group, held.entry, held.consumers[0] ?? '', held.consumers[1] ?? ''];
}

function decodeDelivery(flat: readonly string[]): Delivery | undefined {
  if (flat.length === 0) return undefined;
  const fields = fieldsOf(flat);
  const base = JSON.parse(fields.b as string) as Delivery;
  return {
    ...base,
    status: fields.s as DeliveryStatus,
    nextAttemptAt: JSON.parse(fields.nx as string) as number | null,
    failureReason: JSON.parse(fields.fr as string) as string | null,
    updatedAt: Number(fields.ua),
    seriesStart: Number(fields.ss),
    attempts: JSON.parse(fields.at as string) as DeliveryAttempt[],
  };
}
