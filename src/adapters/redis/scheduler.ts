import type { Redis } from 'ioredis';
import type { ClaimedJob, Job, SchedulerStore } from '../../core/ports.ts';
import { defineScript, type Script } from './connection.ts';

/*
 * Keys (P = prefix .. 'sched:'): KEYS[1] due (zset: member → dueAt, jobs not claimed), KEYS[2]
 * leases (zset: member → lease end, claimed jobs), KEYS[3] members (hash: job id → member),
 * KEYS[4] tokens (hash: job id → token of its claim), KEYS[5] due times (hash: job id → dueAt),
 * KEYS[6] counts (hash: kind → jobs), KEYS[7] seq (counter). A job id is kind .. '\n' .. key; its
 * member is a 16-hex-digit sequence number then the id, so jobs due at the same time sort in
 * scheduling order, and a reschedule (a new member) goes behind the jobs already due then.
 */
const PRELUDE = `
local function forget(id, member)
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
end
local function kindOf(id) return string.sub(id, 1, string.find(id, '\\n', 1, true) - 1) end
`;

const SCHEDULE = `${PRELUDE}
-- ARGV: id, dueAt
local id = ARGV[1]
local old = redis.call('HGET', KEYS[3], id)
if old then
  forget(id, old)
else
  redis.call('HINCRBY', KEYS[6], kindOf(id), 1)
end
local member = string.format('%016x', redis.call('INCR', KEYS[7])) .. id
redis.call('HSET', KEYS[3], id, member)
redis.call('HSET', KEYS[5], id, ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[2], member)
`;

const CANCEL = `${PRELUDE}
-- ARGV: id
local member = redis.call('HGET', KEYS[3], ARGV[1])
if not member then return 0 end
forget(ARGV[1], member)
redis.call('HINCRBY', KEYS[6], kindOf(ARGV[1]), -1)
return 1
`;

const CLAIM = `
-- ARGV: now, limit, leaseMs. Lapsed claims first (earliest lease end first), then due jobs.
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local leaseEnd = string.format('%d', now + tonumber(ARGV[3]))
local claimed = {}
local function claim(member, from)
  redis.call('ZREM', from, member)
  local id = string.sub(member, 17)
  local token = tostring(redis.call('INCR', KEYS[7]))
  redis.call('HSET', KEYS[4], id, token)
  redis.call('ZADD', KEYS[2], leaseEnd, member)
  claimed[#claimed + 1] = {id, redis.call('HGET', KEYS[5], id), token}
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit)
for _, member in ipairs(lapsed) do claim(member, KEYS[2]) end
if #claimed < limit then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit - #claimed)
  for _, member in ipairs(due) do claim(member, KEYS[1]) end
end
return claimed
`;

const COMPLETE = `${PRELUDE}
-- ARGV: id, token
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
forget(ARGV[1], redis.call('HGET', KEYS[3], ARGV[1]))
redis.call('HINCRBY', KEYS[6], kindOf(ARGV[1]), -1)
return 1
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

const COUNT = `return tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '0')`;

/**
 * Due work in Redis, shared by every replica: a sorted set of jobs by due time and one of claimed
 * jobs by the end of their lease, each operation one Lua script. `claimDue` moves due jobs (and
 * claims whose lease lapsed: their worker died or stalled) to the lease set under a new token in
 * one step, so two replicas never claim one job at once; `complete` removes a job only while the
 * token is still its claim's, so a worker finishing after its lease lapsed, or after the job was
 * rescheduled, changes nothing. Times are the callers' (`now`): replicas are expected to share a
 * clock within a small fraction of the lease.
 */
export class RedisSchedulerStore implements SchedulerStore {
  readonly #keys: string[];
  readonly #schedule: Script;
  readonly #cancel: Script;
  readonly #claim: Script;
  readonly #complete: Script;
  readonly #nextDue: Script;
  readonly #count: Script;

  constructor(client: Redis, options: { keyPrefix: string }) {
    const p = `${options.keyPrefix}sched:`;
    this.#keys = ['due', 'leases', 'members', 'tokens', 'dueat', 'counts', 'seq'].map((name) => p + name);
    this.#schedule = defineScript(client, 'paysimSchedSchedule', SCHEDULE);
    this.#cancel = defineScript(client, 'paysimSchedCancel', CANCEL);
    this.#claim = defineScript(client, 'paysimSchedClaim', CLAIM);
    this.#complete = defineScript(client, 'paysimSchedComplete', COMPLETE);
    this.#nextDue = defineScript(client, 'paysimSchedNextDue', NEXT_DUE);
    this.#count = defineScript(client, 'paysimSchedCount', COUNT);
  }

  async schedule(job: Job): Promise<void> {
    await this.#schedule(this.#keys, [jobId(job.kind, job.key), job.dueAt]);
  }

  async cancel(kind: string, key: string): Promise<boolean> {
    return (await this.#cancel(this.#keys, [jobId(kind, key)])) === 1;
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
    if (limit <= 0) return [];
    const claimed = (await this.#claim(this.#keys, [now, limit, leaseMs])) as Array<[string, string, string]>;
    return claimed.map(([id, dueAt, token]) => {
      const cut = id.indexOf('\n');
      return { kind: id.slice(0, cut), key: id.slice(cut + 1), dueAt: Number(dueAt), token };
    });
  }

  async complete(job: ClaimedJob): Promise<void> {
    await this.#complete(this.#keys, [jobId(job.kind, job.key), job.token]);
  }

  async nextDueAt(): Promise<number | undefined> {
    const next = (await this.#nextDue(this.#keys, [])) as string;
    return next === '' ? undefined : Number(next);
  }

  async count(kind: string): Promise<number> {
    return Number(await this.#count(this.#keys, [kind]));
  }
}

/** Kinds are handler names (`intent.decide`): they never hold a newline. */
function jobId(kind: string, key: string): string {
  return `${kind}\n${key}`;
}
