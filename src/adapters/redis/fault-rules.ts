import type { Redis } from 'ioredis';
import type { FaultRule, StoredFaultRule } from '../../core/faults/model.ts';
import type { ClaimOutcome, CreateRuleOutcome, DeclareRulesOutcome, FaultRuleStore, RuleCounters } from '../../core/faults/ports.ts';
import type { ListeningTold, StoreStats } from '../../core/ports.ts';
import { fieldsOf, keepingReply } from './lua.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { listenForNotices, sendNotice } from './notices.ts';

export interface RedisFaultRuleStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** Rules held across every namespace; a create beyond it is refused (rules are never evicted). */
  maxRules: number;
}

/*
 * Keys (F = prefix .. 'faults:'): KEYS[1] F..'ids' (hash: rule id → its namespace: ids are unique
 * across namespaces), KEYS[2] F..'rev' (hash: namespace → revision; none for an empty namespace),
 * KEYS[3] F..'seq' (counter of creations), KEYS[4] F..'revseq' (counter of revisions), KEYS[5]
 * F..'declared' (hash: namespace → its last declaration of FAULTS_FILE's rules, JSON: fp, the
 * file's fingerprint, and ids, the rules it made). Built in
 * the scripts from ARGV[1] = F: F..'ns:'..namespace (zset: rule id → creation sequence) and
 * F..'r:'..id (the rule hash: b = the rule as created (JSON), en ('1' | '0'), cnt (its count, ''
 * for none), hits, matched, lh (lastHitAt, '' for none), ct (its create's call token)), and
 * F..'claim:'..token, F..'release:'..token, F..'del:'..token, F..'create:'..token and
 * F..'set:'..token (a claim's, a release's, a delete's, a create's and an enable's or disable's
 * reply, kept a while).
 */
const PRELUDE = `
local F = ARGV[1]
local function rec(id) return F .. 'r:' .. id end
local function set(ns) return F .. 'ns:' .. ns end
-- The rule's hash if it is in namespace ns, else nil.
local function find(ns, id)
  if redis.call('HGET', KEYS[1], id) ~= ns then return nil end
  return rec(id)
end
-- A rule added after the namespace's others, with zero counters (ct: its create's call token).
local function add(ns, id, body, en, cnt, ct)
  redis.call('HSET', KEYS[1], id, ns)
  redis.call('HSET', rec(id), 'b', body, 'en', en, 'cnt', cnt, 'hits', 0, 'matched', 0, 'lh', '', 'ct', ct)
  redis.call('ZADD', set(ns), redis.call('INCR', KEYS[3]), id)
end
local function remove(ns, id)
  redis.call('DEL', rec(id))
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', set(ns), id)
end
-- One counter for every revision, so a namespace emptied and filled again never repeats one. It
-- starts at the caller's time in microseconds (the script's last argument but one: Redis' TIME is
-- refused to ACL users without @fast), so a counter deleted with its namespace (a namespace reset)
-- starts again above any revision handed out before (one a microsecond at most since, clocks in
-- sync): a replica that still holds an older revision of the namespace's rules reads them again.
local function changed(ns)
  if redis.call('ZCARD', set(ns)) > 0 then
    if redis.call('EXISTS', KEYS[4]) == 0 then
      redis.call('SET', KEYS[4], ARGV[#ARGV - 1])
    end
    redis.call('HSET', KEYS[2], ns, redis.call('INCR', KEYS[4]))
  else
    redis.call('HDEL', KEYS[2], ns)
  end
end
`;

const CREATE = `${PRELUDE}${keepingReply("F .. 'create:'", `
-- ARGV: F, namespace, id, rule JSON, enabled, count ('' = none), max, clock (µs), call token
local ns, id = ARGV[2], ARGV[3]
if redis.call('HEXISTS', KEYS[1], id) == 1 then
  -- This very create run again (its reply lost, ioredis sent it again): it made the rule.
  if redis.call('HGET', rec(id), 'ct') == ARGV[9] then return 'ok' end
  return 'exists'
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[7]) then return 'full' end
add(ns, id, ARGV[4], ARGV[5], ARGV[6], ARGV[9])
changed(ns)
return 'ok'
`)}`;

/** Its reply kept under its call's token: a second run would answer `kept`. */
const DECLARE = `${PRELUDE}${keepingReply("F .. 'create:'", `
-- ARGV: F, namespace, fingerprint, max, n, then n times (id, rule JSON, enabled, count ('' = none)), clock (µs), call token
local ns, fp, n = ARGV[2], ARGV[3], tonumber(ARGV[5])
local raw = redis.call('HGET', KEYS[5], ns)
local last = raw and cjson.decode(raw)
if last and last.fp == fp then return {'kept'} end
local going, count = {}, 0
local function goes(id)
  if not going[id] then going[id], count = true, count + 1 end
end
if last then
  for _, id in ipairs(last.ids) do
    if redis.call('HGET', KEYS[1], id) == ns then goes(id) end
  end
end
local ids = {}
for i = 0, n - 1 do
  local id = ARGV[6 + i * 4]
  local owner = redis.call('HGET', KEYS[1], id)
  if owner == ns then goes(id) elseif owner then return {'exists', id} end
  ids[#ids + 1] = id
end
if redis.call('HLEN', KEYS[1]) - count + n > tonumber(ARGV[4]) then return {'full'} end
for id in pairs(going) do remove(ns, id) end
for i = 0, n - 1 do
  local at = 6 + i * 4
  add(ns, ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[#ARGV])
end
-- An empty list would be encoded as an object ({}), read back as an empty table all the same.
redis.call('HSET', KEYS[5], ns, cjson.encode({fp = fp, ids = ids}))
changed(ns)
return {'applied', count}
`)}`;

const GET = `${PRELUDE}
local key = find(ARGV[2], ARGV[3])
if not key then return {} end
return redis.call('HGETALL', key)
`;

const LIST = `${PRELUDE}
local out = {}
for _, id in ipairs(redis.call('ZRANGE', set(ARGV[2]), 0, -1)) do out[#out + 1] = redis.call('HGETALL', rec(id)) end
return out
`;

const SET_ENABLED = `${PRELUDE}${keepingReply("F .. 'set:'", `
-- ARGV: F, namespace, id, enabled ('1' | '0'), clock (µs), call token
local key = find(ARGV[2], ARGV[3])
if not key then return {} end
if redis.call('HGET', key, 'en') ~= ARGV[4] then
  redis.call('HSET', key, 'en', ARGV[4])
  changed(ARGV[2])
end
return redis.call('HGETALL', key)
`)}`;

/** Its reply kept under its call's token (lua.ts `keepingReply`): the rule is gone, so a second run would answer 404 to the delete that removed it. */
const DELETE = `${PRELUDE}${keepingReply("F .. 'del:'", `
-- ARGV: F, namespace, id, clock (µs), call token
local ns, id = ARGV[2], ARGV[3]
if not find(ns, id) then return 0 end
remove(ns, id)
changed(ns)
return 1
`)}`;

/** Its reply kept under its call's token, as DELETE's: a second run would count no rule deleted. */
const DELETE_ALL = `${PRELUDE}${keepingReply("F .. 'del:'", `
-- ARGV: F, namespace, clock (µs), call token
local ns = ARGV[2]
local ids = redis.call('ZRANGE', set(ns), 0, -1)
for _, id in ipairs(ids) do
  redis.call('DEL', rec(id))
  redis.call('HDEL', KEYS[1], id)
end
redis.call('DEL', set(ns))
changed(ns)
return #ids
`)}`;

/** Its reply kept under its call's token (the last argument; lua.ts `keepingReply`): several claims of one rule may be sent again together. */
const CLAIM_HIT = `${PRELUDE}${keepingReply("F .. 'claim:'", `
-- ARGV: F, namespace, id, sampled ('1' | '0'), now, call token
local key = find(ARGV[2], ARGV[3])
if not key then return {'gone'} end
local r = redis.call('HMGET', key, 'en', 'cnt', 'hits')
if r[1] ~= '1' then return {'gone'} end
redis.call('HINCRBY', key, 'matched', 1)
if ARGV[4] ~= '1' then return {'probability'} end
if r[2] ~= '' and tonumber(r[3]) >= tonumber(r[2]) then return {'exhausted'} end
redis.call('HSET', key, 'lh', ARGV[5])
return {'applied', redis.call('HINCRBY', key, 'hits', 1)}
`)}`;

/** One hit given back; its reply kept under its call's token, so a release sent again is not made twice. */
const RELEASE_HIT = `${PRELUDE}${keepingReply("F .. 'release:'", `
-- ARGV: F, namespace, id, call token
local key = find(ARGV[2], ARGV[3])
if not key or tonumber(redis.call('HGET', key, 'hits')) <= 0 then return 0 end
redis.call('HINCRBY', key, 'hits', -1)
return 1
`)}`;

const COUNTERS = `${PRELUDE}
local out = {}
for _, id in ipairs(redis.call('ZRANGE', set(ARGV[2]), 0, -1)) do
  local r = redis.call('HMGET', rec(id), 'hits', 'matched')
  out[#out + 1] = {id, tonumber(r[1]), tonumber(r[2])}
end
return out
`;

const REVISION = `return tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')`;

const STATS = `return redis.call('HLEN', KEYS[1])`;

/**
 * Fault rules and their counters in Redis, shared by every replica, one Lua script per port
 * operation: `claimHit` decides and counts in one step, so "the first N matches" holds across
 * replicas; `create` checks the id and the bound and writes in one step. Each namespace's rules
 * are a sorted set in creation order; a rule's revision-bearing changes (create, enable, delete)
 * move the namespace's revision from one shared counter, so a replica that compiled the rules
 * notices another's change. A change is also told to the other replicas at once (a notice on
 * F..'changed', the namespace as its message: `listen`), before the call that made it answers (once
 * its own copy came back: notices.ts), so a client that makes a rule on one replica and sends its
 * next request to another finds the rule applied there, all but rarely (4 in 5,700 missed it, a
 * replica that handled the request a moment before the notice); a notice lost (a reconnect, an ACL
 * without channels) leaves the change to their refresh, within a second. Before 2026-12-07 only the refresh told them: a rule applied on another
 * replica up to a second after it was made (a user test: a `count: 1` rule made on one replica
 * missed the next request, sent to the other). Differences from memory: none in behaviour.
 */
export class RedisFaultRuleStore implements FaultRuleStore {
  readonly #client: Redis;
  readonly #options: RedisFaultRuleStoreOptions;
  readonly #keys: string[];
  readonly #f: string;
  /** The channel of this store's change notices. */
  readonly #channel: string;
  readonly #scripts: Record<'create' | 'declare' | 'get' | 'list' | 'setEnabled' | 'delete' | 'deleteAll' | 'claimHit' | 'releaseHit' | 'counters' | 'revision' | 'stats', Script>;

  constructor(client: Redis, options: RedisFaultRuleStoreOptions) {
    this.#client = client;
    this.#options = options;
    this.#f = `${options.keyPrefix}faults:`;
    this.#channel = `${this.#f}changed`;
    this.#keys = ['ids', 'rev', 'seq', 'revseq', 'declared'].map((name) => this.#f + name);
    this.#scripts = {
      create: defineScript(client, 'paysimFaultsCreate', CREATE),
      declare: defineScript(client, 'paysimFaultsDeclare', DECLARE),
      get: defineScript(client, 'paysimFaultsGet', GET),
      list: defineScript(client, 'paysimFaultsList', LIST),
      setEnabled: defineScript(client, 'paysimFaultsSetEnabled', SET_ENABLED),
      delete: defineScript(client, 'paysimFaultsDelete', DELETE),
      deleteAll: defineScript(client, 'paysimFaultsDeleteAll', DELETE_ALL),
      claimHit: defineScript(client, 'paysimFaultsClaimHit', CLAIM_HIT),
      releaseHit: defineScript(client, 'paysimFaultsReleaseHit', RELEASE_HIT),
      counters: defineScript(client, 'paysimFaultsCounters', COUNTERS),
      revision: defineScript(client, 'paysimFaultsRevision', REVISION),
      stats: defineScript(client, 'paysimFaultsStats', STATS),
    };
  }

  async create(namespace: string, rule: FaultRule): Promise<CreateRuleOutcome> {
    const args = [this.#f, namespace, rule.id, JSON.stringify(rule), rule.enabled ? '1' : '0', rule.count ?? '', this.#options.maxRules, ...changeTail()];
    const outcome = (await this.#scripts.create(this.#keys, args)) as 'ok' | 'exists' | 'full';
    if (outcome === 'ok') {
      await this.#changed(namespace);
      return { ok: true };
    }
    return outcome === 'full' ? { ok: false, reason: 'full', max: this.#options.maxRules } : { ok: false, reason: 'exists' };
  }

  async declare(namespace: string, fingerprint: string, rules: readonly FaultRule[]): Promise<DeclareRulesOutcome> {
    const each = rules.flatMap((rule) => [rule.id, JSON.stringify(rule), rule.enabled ? '1' : '0', rule.count ?? '']);
    const [kind, detail] = (await this.#scripts.declare(this.#keys, [this.#f, namespace, fingerprint, this.#options.maxRules, rules.length, ...each, ...changeTail()])) as [string, (number | string)?];
    if (kind === 'kept') return { kind };
    if (kind === 'full') return { kind, max: this.#options.maxRules };
    if (kind === 'exists') return { kind, id: detail as string };
    await this.#changed(namespace);
    return { kind: 'applied', replaced: detail as number };
  }

  async get(namespace: string, id: string): Promise<StoredFaultRule | undefined> {
    return decodeRule((await this.#scripts.get(this.#keys, [this.#f, namespace, id])) as string[]);
  }

  async list(namespace: string): Promise<StoredFaultRule[]> {
    return ((await this.#scripts.list(this.#keys, [this.#f, namespace])) as string[][]).map((flat) => decodeRule(flat) as StoredFaultRule);
  }

  async setEnabled(namespace: string, id: string, enabled: boolean): Promise<StoredFaultRule | undefined> {
    const rule = decodeRule((await this.#scripts.setEnabled(this.#keys, [this.#f, namespace, id, enabled ? '1' : '0', ...changeTail()])) as string[]);
    // Told also when it was on (or off) already: a notice too many costs the others one read of the revision.
    if (rule !== undefined) await this.#changed(namespace);
    return rule;
  }

  async delete(namespace: string, id: string): Promise<boolean> {
    const deleted = (await this.#scripts.delete(this.#keys, [this.#f, namespace, id, ...changeTail()])) === 1;
    if (deleted) await this.#changed(namespace);
    return deleted;
  }

  async deleteAll(namespace: string): Promise<number> {
    const deleted = Number(await this.#scripts.deleteAll(this.#keys, [this.#f, namespace, ...changeTail()]));
    if (deleted > 0) await this.#changed(namespace);
    return deleted;
  }

  listen(onChange: (namespace?: string) => void, told: ListeningTold = {}): () => void {
    return listenForNotices(this.#client, this.#channel, { onNotice: onChange, onResubscribed: () => onChange(), ...told });
  }

  /** Tells the other replicas (a call of its own, after the change's script: one that fails, refused by an ACL or Redis gone, fails nothing). */
  async #changed(namespace: string): Promise<void> {
    await sendNotice(this.#client, this.#channel, namespace);
  }

  async claimHit(namespace: string, id: string, sampled: boolean, now: number): Promise<ClaimOutcome> {
    const [kind, hits] = (await this.#scripts.claimHit(this.#keys, [this.#f, namespace, id, sampled ? '1' : '0', now, callToken()])) as [string, number?];
    if (kind === 'gone') return { kind };
    if (kind === 'applied') return { kind, hits: hits as number };
    return { kind: 'skipped', reason: kind as 'probability' | 'exhausted' };
  }

  async releaseHit(namespace: string, id: string): Promise<boolean> {
    return (await this.#scripts.releaseHit(this.#keys, [this.#f, namespace, id, callToken()])) === 1;
  }

  async counters(namespace: string): Promise<RuleCounters[]> {
    const rows = (await this.#scripts.counters(this.#keys, [this.#f, namespace])) as Array<[string, number, number]>;
    return rows.map(([id, hits, matched]) => ({ id, hits, matched }));
  }

  async revision(namespace: string): Promise<number> {
    return Number(await this.#scripts.revision(this.#keys, [this.#f, namespace]));
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#scripts.stats(this.#keys, [])), max: this.#options.maxRules };
  }
}

/** The last two arguments of a script that may change a namespace's revision: this process's clock in microseconds (where a new revision counter starts), and the call's token. */
function changeTail(): [number, string] {
  return [Date.now() * 1000, callToken()];
}

/** A rule hash (HGETALL's flat list) as a stored rule; undefined for an empty one. */
function decodeRule(flat: readonly string[]): StoredFaultRule | undefined {
  if (flat.length === 0) return undefined;
  const fields = fieldsOf(flat);
  const rule = JSON.parse(fields.b as string) as FaultRule;
  rule.enabled = fields.en === '1';
  return { rule, hits: Number(fields.hits), matched: Number(fields.matched), lastHitAt: fields.lh === '' ? null : Number(fields.lh) };
}
