import type { Redis } from 'ioredis';
import type { ClaimedJob, Job, SchedulerStore } from '../../core/ports.ts';
import { callToken, defineScript, type Script } from './connection.ts';
import { keepingReply } from './lua.ts';

/*
 * Keys (S = prefix .. 'sched:'): KEYS[1] S..'queue' (zset: member → dueAt, jobs not claimed), KEYS[2]
 * S..'claims' (zset: member → lease end, claimed jobs), KEYS[3] S..'seq' (counter); built from
 * ARGV[1] = S..'jobs:', one hash per kind, S..'jobs:'..kind (key → the job's member now), so that a
 * kind's job count is its hash's HLEN.
 *
 * A member is the whole job: a 16-hex-digit sequence number, its due time (followed, when the job
 * has a trace, by a slash and its `traceparent`, which holds no space), a space, its kind, a
 * newline, its key. The trace goes with the member through claims and releases, so the replica
 * that runs a job runs it in the trace of the request that asked for it. Jobs due at the same time
 * sort in scheduling order, and a reschedule (a new member) goes behind the jobs already due then. A claim gives the job a new member (a new
 * sequence number, in the lease set): that member is the claim's token, so a worker whose lease
 * lapsed, or whose job was rescheduled meanwhile, no longer holds the member its job has, and its
 * `complete` changes nothing. Claims and completes work on whole batches, a few commands each
 * however many jobs they hold.
 */
const PRELUDE = `
local J = ARGV[1]
-- Redis commands with many arguments, in slices well under Lua's stack limit.
local function many(command, key, args, step)
  for i = 1, #args, step do
    redis.call(command, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end
`;

/**
 * Lua: `scheduleJob(queue, claims, seq, J, kind, key, dueAt, trace)` schedules a job, replacing its
 * earlier schedule; `trace` is '' (or nil) for a job without one. Also for the scripts of other
 * stores that schedule a job in the same run as their own write (`RedisSchedulerStore.jobWrite`
 * gives them the keys and arguments).
 */
export const SCHEDULE_JOB = `
local function scheduleJob(queue, claims, seq, J, kind, key, dueAt, trace)
  local old = redis.call('HGET', J .. kind, key)
  if old then
    redis.call('ZREM', queue, old)
    redis.call('ZREM', claims, old)
  end
  local when = dueAt
  if trace and trace ~= '' then when = dueAt .. '/' .. trace end
  local member = string.format('%016x', redis.call('INCR', seq)) .. when .. ' ' .. kind .. '\\n' .. key
  redis.call('HSET', J .. kind, key, member)
  redis.call('ZADD', queue, dueAt, member)
end
`;

/*
 * A schedule and a cancel keep their replies under their call's token (`keepingReply`): run again
 * (its reply lost, ioredis sent it again), a schedule would put back a job that a replica had
 * claimed, or run and completed, since its first run (the job run twice: a claim sent again with
 * it answers the member the schedule then replaced), and a cancel would drop a job scheduled since.
 */
const SCHEDULE = `${PRELUDE}${SCHEDULE_JOB}${keepingReply('ARGV[6]', `
-- ARGV: J, kind, key, dueAt (as given, no space), trace ('' for none), kept-reply prefix, earliest ('1' | '0'), call token
if ARGV[7] == '1' then
  -- Waiting to run (not claimed) by dueAt already: kept.
  local old = redis.call('HGET', J .. ARGV[2], ARGV[3])
  local due = old and redis.call('ZSCORE', KEYS[1], old)
  if due and tonumber(due) <= tonumber(ARGV[4]) then return 1 end
end
scheduleJob(KEYS[1], KEYS[2], KEYS[3], J, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
`)}`;

const CANCEL = `${PRELUDE}${keepingReply('ARGV[4]', `
-- ARGV: J, kind, key, kept-reply prefix, call token
local member = redis.call('HGET', J .. ARGV[2], ARGV[3])
if not member then return 0 end
redis.call('ZREM', KEYS[1], member)
redis.call('ZREM', KEYS[2], member)
redis.call('HDEL', J .. ARGV[2], ARGV[3])
return 1
`)}`;

/**
 * A claim's reply is kept under its call's token when it claimed jobs: a claim run again (its reply
 * lost, ioredis sent it again) finds nothing due, and the jobs it had moved into leases would wait
 * out a whole lease before anyone ran them (an intent decided 30 s late).
 */
const CLAIM = `${PRELUDE}${keepingReply('ARGV[5]', `
-- ARGV: J, now, limit, lease end, kept-reply prefix, call token. Lapsed claims first (earliest lease end first), then due jobs.
local limit = tonumber(ARGV[3])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, limit)
local due = {}
if #lapsed < limit then due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, limit - #lapsed) end
local n = #lapsed + #due
if n == 0 then return {} end
many('ZREM', KEYS[2], lapsed, 1000)
many('ZREM', KEYS[1], due, 1000)
local seq = redis.call('INCRBY', KEYS[3], n) - n
local claimed, leases, byKind = {}, {}, {}
local function claim(member)
  seq = seq + 1
  local job = string.sub(member, 17)
  local new = string.format('%016x', seq) .. job
  claimed[#claimed + 1] = new
  leases[#leases + 1] = ARGV[4]
  leases[#leases + 1] = new
  local id = string.sub(job, string.find(job, ' ', 1, true) + 1)
  local cut = string.find(id, '\\n', 1, true)
  local kind = string.sub(id, 1, cut - 1)
  local fields = byKind[kind]
  if not fields then
    fields = {}
    byKind[kind] = fields
  end
  fields[#fields + 1] = string.sub(id, cut + 1)
  fields[#fields + 1] = new
end
for _, member in ipairs(lapsed) do claim(member) end
for _, member in ipairs(due) do claim(member) end
many('ZADD', KEYS[2], leases, 1000)
for kind, fields in pairs(byKind) do many('HSET', J .. kind, fields, 1000) end
return claimed
`, '#reply > 0')}`;

const COMPLETE = `${PRELUDE}
-- ARGV: J, then kind, key, token for each job
local members, byKind = {}, {}
for i = 2, #ARGV, 3 do
  local kind, key, token = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HGET', J .. kind, key) == token then
    members[#members + 1] = token
    local keys = byKind[kind]
    if not keys then
      keys = {}
      byKind[kind] = keys
    end
    keys[#keys + 1] = key
  end
end
many('ZREM', KEYS[2], members, 1000)
for kind, keys in pairs(byKind) do many('HDEL', J .. kind, keys, 1000) end
return #members
`;

/*
 * A job is given back only while its claim's token is its member: sent again (its reply lost), the
 * first run gave it a new member, and the second changes nothing.
 */
const RELEASE = `${PRELUDE}${SCHEDULE_JOB}
-- ARGV: J, then kind, key, token, dueAt, trace ('' for none) for each job
local n = 0
for i = 2, #ARGV, 5 do
  local kind, key = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', J .. kind, key) == ARGV[i + 2] then
    scheduleJob(KEYS[1], KEYS[2], KEYS[3], J, kind, key, ARGV[i + 3], ARGV[i + 4])
    n = n + 1
  end
end
return n
`;

/*
 * The layout of paysim before this one (S..'due' and S..'leases' with members of sequence number and
 * job id, S..'members', 'tokens', 'dueat' and 'counts' hashes): its jobs move into this layout, all
 * due again at their due time (a claim made by the earlier version is not this version's to
 * complete), and its keys go. KEYS: old due, old leases, old members, old tokens, old dueat, old
 * counts, then this layout's queue, claims and seq; ARGV[1] = J.
 */
const ADOPT = `${SCHEDULE_JOB}
local J = ARGV[1]
local jobs = redis.call('HGETALL', KEYS[3])
for i = 1, #jobs, 2 do
  local id = jobs[i]
  local cut = string.find(id, '\\n', 1, true)
  if cut then
    local dueAt = redis.call('HGET', KEYS[5], id) or '0'
    scheduleJob(KEYS[7], KEYS[8], KEYS[9], J, string.sub(id, 1, cut - 1), string.sub(id, cut + 1), dueAt)
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return #jobs / 2
`;

const NEXT_DUE = `
local due = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
local lease = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
if due and lease then
  if tonumber(lease) < tonumber(due) then return lease end
  return due
end
return due or lease or ''
`;

/**
 * Due work in Redis, shared by every replica: a sorted set of jobs by due time and one of claimed
 * jobs by the end of their lease, each operation one Lua script. `claimDue` moves due jobs (and
 * claims whose lease lapsed: their worker died or stalled) to the lease set under a new token in
 * one step, so two replicas never claim one job at once; `complete` removes a job only while the
 * token is still its claim's, so a worker finishing after its lease lapsed, or after the job was
 * rescheduled, changes nothing. Times are the callers' (`now`): replicas are expected to share a
 * clock within a small fraction of the lease.
 *
 * Commands per job: 4 to schedule it (HGET, INCR, HSET, ZADD; 2 ZREMs more when it had a schedule,
 * and the GET and SET of its kept reply on its own), 1 to complete it (its HGET), 7 to give it back
 * (`release`: its HGET, then a reschedule's 6); a claim and a complete of a whole batch add a
 * handful (ZRANGEBYSCORE, ZREM, INCRBY, ZADD, HSET, HDEL; a claim's GET of a kept reply, and its
 * SET when it claimed jobs), however many jobs the batch holds.
 */
export class RedisSchedulerStore implements SchedulerStore {
  readonly #client: Redis;
  readonly #keys: string[];
  readonly #jobs: string;
  readonly #schedule: Script;
  readonly #cancel: Script;
  readonly #claim: Script;
  readonly #complete: Script;
  readonly #release: Script;
  readonly #nextDue: Script;
  readonly #adopt: Script;
  readonly #earlierKeys: string[];
  /** Prefix of the kept replies of claims, schedules and cancels (`keepingReply`). */
  readonly #kept: string;

  constructor(client: Redis, options: { keyPrefix: string }) {
    const p = `${options.keyPrefix}sched:`;
    this.#client = client;
    this.#keys = ['queue', 'claims', 'seq'].map((name) => p + name);
    this.#earlierKeys = [...['due', 'leases', 'members', 'tokens', 'dueat', 'counts'].map((name) => p + name), ...this.#keys];
    this.#jobs = `${p}jobs:`;
    this.#kept = `${p}kept:`;
    this.#schedule = defineScript(client, 'paysimSchedSchedule', SCHEDULE);
    this.#cancel = defineScript(client, 'paysimSchedCancel', CANCEL);
    this.#claim = defineScript(client, 'paysimSchedClaim', CLAIM);
    this.#complete = defineScript(client, 'paysimSchedComplete', COMPLETE);
    this.#release = defineScript(client, 'paysimSchedRelease', RELEASE);
    this.#nextDue = defineScript(client, 'paysimSchedNextDue', NEXT_DUE);
    this.#adopt = defineScript(client, 'paysimSchedAdopt', ADOPT);
  }

  /**
   * Moves the jobs a Redis holds in the layout of paysim's earlier versions into this one (a dev
   * stack's Redis with an append-only file kept across an upgrade), once; the number of jobs
   * moved. Replicas must be upgraded together: an earlier version still running keeps writing its
   * own layout, which this one does not read.
   */
  async adoptEarlierLayout(): Promise<number> {
    if ((await this.#client.exists(this.#earlierKeys[2] as string)) === 0) return 0;
    return Number(await this.#adopt(this.#earlierKeys, [this.#jobs]));
  }

  async schedule(job: Job, options?: { earliest?: boolean }): Promise<void> {
    const { keys, args } = this.jobWrite(job);
    await this.#schedule(keys, [...args, this.#kept, options?.earliest === true ? '1' : '0', callToken()]);
  }

  /**
   * `script` (another store's write that calls `scheduleJob` with its KEYS and ARGV after its own)
   * as a function of that store's keys and arguments and a job: the job's follow.
   */
  withJob(script: Script): (keys: readonly string[], args: ReadonlyArray<string | number>, job: Job, after?: readonly string[]) => Promise<unknown> {
    return (keys, args, job, after = []) => {
      const write = this.jobWrite(job);
      return script([...keys, ...write.keys], [...args, ...write.args, ...after]);
    };
  }

  /** The keys and arguments of `scheduleJob` (SCHEDULE_JOB) for `job`, for a script that schedules it with its own write. */
  jobWrite(job: Job): { keys: readonly string[]; args: string[] } {
    // String(n) never holds a space (and for a time in ms, no exponent): the member's due time ends at its first space.
    return { keys: this.#keys, args: [this.#jobs, job.kind, job.key, String(job.dueAt), traceOf(job)] };
  }

  async cancel(kind: string, key: string): Promise<boolean> {
    return (await this.#cancel(this.#keys, [this.#jobs, kind, key, this.#kept, callToken()])) === 1;
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
    if (limit <= 0) return [];
    const claimed = (await this.#claim(this.#keys, [this.#jobs, now, limit, now + leaseMs, this.#kept, callToken()])) as string[];
    return claimed.map((member) => {
      const space = member.indexOf(' ', 16);
      const cut = member.indexOf('\n', space);
      const job: ClaimedJob = { kind: member.slice(space + 1, cut), key: member.slice(cut + 1), dueAt: 0, token: member };
      const slash = member.indexOf('/', 16);
      if (slash === -1 || slash > space) job.dueAt = Number(member.slice(16, space));
      else {
        job.dueAt = Number(member.slice(16, slash));
        job.trace = member.slice(slash + 1, space);
      }
      return job;
    });
  }

  async complete(jobs: readonly ClaimedJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const args: string[] = [this.#jobs];
    for (const job of jobs) args.push(job.kind, job.key, job.token);
    await this.#complete(this.#keys, args);
  }

  async release(jobs: readonly ClaimedJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const args: string[] = [this.#jobs];
    // String(n) never holds a space: see jobWrite.
    for (const job of jobs) args.push(job.kind, job.key, job.token, String(job.dueAt), traceOf(job));
    await this.#release(this.#keys, args);
  }

  async nextDueAt(): Promise<number | undefined> {
    const next = (await this.#nextDue(this.#keys, [])) as string;
    return next === '' ? undefined : Number(next);
  }

  count(kind: string): Promise<number> {
    return this.#client.hlen(this.#jobs + kind);
  }

  /** HSCAN, a page at a time, until `limit` keys or the end: never the whole hash at once. */
  async keys(kind: string, limit: number): Promise<string[]> {
    const keys = new Set<string>();
    let cursor = '0';
    while (keys.size < limit) {
      const [next, page] = await this.#client.hscan(this.#jobs + kind, cursor, 'COUNT', Math.min(1000, Math.max(10, limit)));
      for (let i = 0; i < page.length && keys.size < limit; i += 2) keys.add(page[i] as string);
      cursor = next;
      if (cursor === '0') break;
    }
    return [...keys];
  }
}

/**
 * A job's trace as the member keeps it: a W3C `traceparent` (lower-case hex and dashes, so never a
 * space or a slash that would end the due time or the trace early), or '' for none.
 */
function traceOf(job: Job): string {
  return job.trace !== undefined && TRACEPARENT.test(job.trace) ? job.trace : '';
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
