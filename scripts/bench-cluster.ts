import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { hasRedisServer, REDIS_SERVER_MISSING, startRedisServer, type RedisServerProcess } from '../test/helpers/redis-server.ts';
import {
  createBench,
  loadAverage,
  machine,
  percentile,
  positiveInt,
  roundOrder,
  runBench,
  startServer,
  StartError,
  stopChild,
  table,
  type AutocannonRun,
  type ServerChild,
} from './bench-support.ts';
import { intentRun } from './bench-intents.ts';

/**
 * `make bench-cluster`: `POST /v1/sim/intent` on the memory back end (one process), on Redis (one
 * process) and on Redis with CLUSTER_WORKERS=2, in one run, and the Redis commands each created
 * intent costs (INFO commandstats before and after each round, divided by the intents created).
 * @see issue 14 "Benchmark"
 *
 * It starts its own redis-server (no persistence, a temporary directory) and the three services as
 * children on 127.0.0.1, then loads the targets in turn for BENCH_ROUNDS rounds, as scripts/bench.ts
 * does, so each ratio compares targets measured within seconds of each other on a machine whose
 * speed drifts. Each round also measures the CPU time of the load generator (this process), the
 * service's processes and redis-server (from /proc), which is what says what limits the figures:
 * all of them share the machine's cores.
 *
 * An intent's decision (DEFAULT_APPROVE_DELAY_MS after it, 200 ms) is part of what it costs Redis:
 * after each round on Redis the counters are read only once its decisions are done (its schedule
 * holds no `intent.decide` job). A Redis target can end its load with a backlog of decisions that
 * takes seconds to work off; every round starts only once no Redis target has one, so a round does
 * not share the cores with the previous target's backlog. The targets not under load keep polling
 * the schedule (SCHEDULER_POLL_MS, 4 polls a second each), which adds a few commands a second to
 * every round's count; against thousands of intents that is noise.
 *
 * Exit codes: 0 when the report was produced (targets missed or not), 1 when a server failed to
 * start or more than 0.1 % of requests failed, since then the figures mean nothing.
 *
 * Environment: BENCH_DURATION_S (default 10), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS
 * (default 50), BENCH_LOG_LEVEL (default info, the service's default).
 */

const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 50);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || 'info';
const WARMUP_S = 2;
const MAX_FAILURE_RATE = 0.001;
/** Redis with one process against memory with one process. */
const TARGET_REDIS_RATIO = 0.6;
/** Two workers against one process, both on Redis. */
const TARGET_WORKERS_RATIO = 1.3;
/** How long a round waits at most for the Redis targets' decisions to be made before it starts anyway. */
const SETTLE_TIMEOUT_MS = 60_000;
const SETTLE_POLL_MS = 100;
const CLOCK_TICKS_PER_S = 100;
const CHECK_ATTEMPTS = 10;
/**
 * A service on Redis (two workers, each loading the whole service) takes longer to answer than
 * scripts/bench-support.ts's 15 s on a busy machine: 14 s for one process at load average 8.
 */
const SERVICE_READY_TIMEOUT_MS = 60_000;

const TARGET_NAMES = ['memory', 'redis', 'redis ×2'] as const;
type TargetName = (typeof TARGET_NAMES)[number];

interface Target {
  name: TargetName;
  env: NodeJS.ProcessEnv;
  /** The target's Redis key prefix; undefined on memory. */
  prefix?: string;
  server?: ServerChild;
}

interface Row {
  label: string;
  target: TargetName;
  rps: number;
  total: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU used during the round, in cores (1 = one core busy all the time). */
  cpu: { loadGenerator: number; service: number; redis: number };
  /** Redis commands during the round and the decisions after it, by command; undefined on memory. */
  commands?: Map<string, number>;
}

const bench = createBench('bench-cluster');
const { progress } = bench;
let sequence = 0;

function intentBody(): string {
  sequence += 1;
  return `{"reservation_id":"res_cluster_${sequence}","amount":1000}`;
}

/**
 * One request outside the measurement, so a broken route fails loudly instead of as a row of 4xx.
 * A service just started on a busy machine may shed it (503 OVERLOADED while its event loop is
 * still slow from loading): it is asked again, for up to CHECK_ATTEMPTS seconds.
 */
async function checkRoute(server: ServerChild): Promise<void> {
  let response: Response;
  let text: string;
  for (let attempt = 1; ; attempt++) {
    response = await fetch(`${server.url}/v1/sim/intent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: intentBody() });
    text = await response.text();
    if (response.status !== 503 || attempt === CHECK_ATTEMPTS) break;
    await sleep(1000);
  }
  if (response.status !== 200 || !text.includes('"status":"PENDING"')) {
    throw new StartError(`${server.name}: POST /v1/sim/intent answered ${response.status} ${text.slice(0, 300)}`);
  }
}

function load(server: ServerChild, durationS: number): AutocannonRun {
  return intentRun(bench, server, { connections: CONNECTIONS, seconds: durationS, body: intentBody });
}

/** CPU seconds (user + system) a process has used, from /proc; 0 once it is gone. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) in parentheses; utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return 0;
  }
}

/** A process and its children (the workers of a CLUSTER_WORKERS primary), from /proc. */
function processTree(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return [pid, ...children];
}

/** `INFO commandstats` as calls by command name. */
async function commandCalls(client: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const line of (await client.info('commandstats')).split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match !== null) calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}

function difference(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const result = new Map<string, number>();
  for (const [name, calls] of after) {
    const delta = calls - (before.get(name) ?? 0);
    if (delta > 0) result.set(name, delta);
  }
  return result;
}

/** Decisions not yet made in a Redis target's schedule (its `intent.decide` jobs, waiting or claimed). */
async function pendingDecisions(redis: Redis, prefix: string): Promise<number> {
  return redis.hlen(`${prefix}sched:jobs:intent.decide`);
}

/** Waits until the targets with these key prefixes have made every decision (at most SETTLE_TIMEOUT_MS); says so when that took a while. */
async function settle(label: string, redis: Redis, prefixes: string[]): Promise<void> {
  const started = performance.now();
  for (;;) {
    bench.signal.throwIfAborted();
    const left = sum(await Promise.all(prefixes.map((prefix) => pendingDecisions(redis, prefix))));
    const waited = performance.now() - started;
    if (left === 0) {
      if (waited >= 1000) progress(`${label}: waited ${(waited / 1000).toFixed(1)} s for the Redis targets' decisions`);
      return;
    }
    if (waited >= SETTLE_TIMEOUT_MS) {
      progress(`${label}: ${left} decisions still pending after ${SETTLE_TIMEOUT_MS / 1000} s; going on`);
      return;
    }
    await sleep(SETTLE_POLL_MS);
  }
}

async function measure(label: string, target: Target, redis: Redis, redisServer: RedisServerProcess, prefixes: string[]): Promise<Row> {
  bench.signal.throwIfAborted();
  // Not while another Redis target still works off its backlog: that would be measuring both.
  await settle(label, redis, prefixes);
  const server = target.server as ServerChild;
  progress(`${label}: measuring ${DURATION_S} s`);
  const pids = processTree(server.child.pid);
  const serviceCpu = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const before = { self: process.cpuUsage(), service: serviceCpu(), redis: cpuSeconds(redisServer.child.pid), commands: await commandCalls(redis), at: performance.now() };
  const latencies: number[] = [];
  const run = load(server, DURATION_S);
  run.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms));
  const result = await run;
  const seconds = (performance.now() - before.at) / 1000;
  const self = process.cpuUsage(before.self);
  const cpu = {
    loadGenerator: (self.user + self.system) / 1e6 / seconds,
    service: (serviceCpu() - before.service) / seconds,
    redis: (cpuSeconds(redisServer.child.pid) - before.redis) / seconds,
  };
  let commands: Map<string, number> | undefined;
  if (target.prefix !== undefined) {
    await settle(label, redis, [target.prefix]);
    commands = difference(await commandCalls(redis), before.commands);
  }
  const sorted = Float64Array.from(latencies).sort();
  return {
    label,
    target: target.name,
    rps: result.requests.average,
    total: result.requests.total,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    non2xx: result.non2xx,
    errors: result.errors,
    cpu,
    commands,
  };
}

async function prepare(target: Target): Promise<void> {
  progress(`${target.name}: starting`);
  target.server = await startServer(bench, target.name, ['src/server.ts'], target.env, SERVICE_READY_TIMEOUT_MS);
  await checkRoute(target.server);
  progress(`${target.name}: warm-up ${WARMUP_S} s`);
  await load(target.server, WARMUP_S);
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

const sum = (values: Iterable<number>): number => {
  let total = 0;
  for (const value of values) total += value;
  return total;
};

/** Intents created in a round: the 2xx answers (each one a new intent: every request has a fresh reservation id). */
const created = (row: Row): number => row.total - row.non2xx;

function formatTable(rows: Row[]): string {
  const header = ['target', 'intents/s', 'requests', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'CPU: load gen', 'service', 'redis', 'Redis cmds/intent'];
  const cells = rows.map((r) => [
    r.label,
    r.rps.toFixed(0),
    String(r.total),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    String(r.non2xx),
    String(r.errors),
    r.cpu.loadGenerator.toFixed(2),
    r.cpu.service.toFixed(2),
    r.cpu.redis.toFixed(2),
    r.commands === undefined ? '-' : (sum(r.commands.values()) / Math.max(1, created(r))).toFixed(1),
  ]);
  return table(header, cells, (column) => column > 0);
}

/** All the CPU a round used (load generator, service, redis-server), in cores. */
const cpuTotal = (row: Row): number => row.cpu.loadGenerator + row.cpu.service + row.cpu.redis;

/** Intents/s the target would do with all `cores` busy at the CPU per intent its round used. */
const wholeMachine = (row: Row, cores: number): number => (row.rps * cores) / cpuTotal(row);

/** Commands per created intent by command, over every round of the Redis targets, largest first. */
function commandBreakdown(rows: Row[]): string {
  const totals = new Map<string, number>();
  let intents = 0;
  for (const row of rows) {
    if (row.commands === undefined) continue;
    intents += created(row);
    for (const [name, calls] of row.commands) totals.set(name, (totals.get(name) ?? 0) + calls);
  }
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .map(([name, calls]) => `${name} ${(calls / Math.max(1, intents)).toFixed(2)}`)
    .join(', ');
}

function serviceEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: LOG_LEVEL, WEBHOOK_SECRET: 'whsec_YmVuY2gtZml4ZWQtdGVzdC1zZWNyZXQ=', ...extra };
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return env;
}

async function main(): Promise<number> {
  if (!hasRedisServer) throw new StartError(REDIS_SERVER_MISSING.replace(' and CI is set', ''));
  const loadBefore = loadAverage();
  const startedAt = new Date();
  progress('redis-server: starting');
  const redisServer = await startRedisServer();
  // Stopped with the services when the run is interrupted (the finally below does not run then).
  bench.track(redisServer.child);
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
  try {
    const targets: Target[] = [
      { name: 'memory', env: serviceEnv({ STORE: 'memory', CLUSTER_WORKERS: '1' }) },
      { name: 'redis', prefix: 'bench1:', env: serviceEnv({ STORE: 'redis', REDIS_URL: redisServer.url, REDIS_KEY_PREFIX: 'bench1:', CLUSTER_WORKERS: '1' }) },
      { name: 'redis ×2', prefix: 'bench2:', env: serviceEnv({ STORE: 'redis', REDIS_URL: redisServer.url, REDIS_KEY_PREFIX: 'bench2:', CLUSTER_WORKERS: '2' }) },
    ];
    for (const target of targets) await prepare(target);
    const prefixes = targets.flatMap((target) => (target.prefix === undefined ? [] : [target.prefix]));
    const rounds: Row[][] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const row: Row[] = [];
      for (const i of roundOrder(round, targets.length)) {
        const target = targets[i] as (typeof targets)[number];
        row[i] = await measure(`${target.name} #${round}`, target, redis, redisServer, prefixes);
      }
      rounds.push(row);
    }
    for (const target of targets) if (target.server !== undefined) await stopChild(target.server.child);
    bench.signal.throwIfAborted();
    const loadAfter = loadAverage();

    const redisRatios = rounds.map(([memory, one]) => (one as Row).rps / (memory as Row).rps);
    const workerRatios = rounds.map(([, one, two]) => (two as Row).rps / (one as Row).rps);
    const redisRatio = median(redisRatios);
    const workerRatio = median(workerRatios);
    // What the CPU allows: a target that used all the machine's cores at the CPU per intent it
    // used in its round would do `wholeMachine(row)` intents/s. Against the other target's measured
    // rate, that is the most its ratio could be on this machine by filling idle cores alone.
    const machineCores = cpus().length;
    const redisBounds = rounds.map(([memory, one]) => wholeMachine(one as Row, machineCores) / (memory as Row).rps);
    const workerBounds = rounds.map(([, one, two]) => wholeMachine(two as Row, machineCores) / (one as Row).rps);
    const all = rounds.flat();
    const medianOf = (name: TargetName, pick: (row: Row) => number) => median(all.filter((r) => r.target === name).map(pick));
    const redisRows = all.filter((r) => r.commands !== undefined);
    const commandsPerIntent = sum(redisRows.map((r) => sum((r.commands as Map<string, number>).values()))) / Math.max(1, sum(redisRows.map(created)));
    const scriptsPerIntent = sum(redisRows.map((r) => (r.commands?.get('evalsha') ?? 0) + (r.commands?.get('eval') ?? 0))) / Math.max(1, sum(redisRows.map(created)));
    const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
    const cores = (name: TargetName) =>
      `load generator ${medianOf(name, (r) => r.cpu.loadGenerator).toFixed(2)}, service ${medianOf(name, (r) => r.cpu.service).toFixed(2)}, redis-server ${medianOf(name, (r) => r.cpu.redis).toFixed(2)}`;

    console.log('');
    console.log('paysim bench-cluster: POST /v1/sim/intent, a fresh reservation_id per request, amount 1000 (each approved 200 ms later)');
    console.log(`machine: ${machine()}`);
    console.log(`started ${startedAt.toISOString()}; load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
    console.log(`load: autocannon, ${CONNECTIONS} connections; ${ROUNDS} rounds of ${DURATION_S} s per target, targets in an order rotated each round (so none is always loaded last), after a ${WARMUP_S} s warm-up each; LOG_LEVEL=${LOG_LEVEL}`);
    console.log('targets: memory = STORE=memory, one process; redis = STORE=redis, one process; redis ×2 = STORE=redis CLUSTER_WORKERS=2; one redis-server (no persistence) on 127.0.0.1');
    console.log('CPU columns: cores used during the round (1.00 = one core all the time) by autocannon (this process), the service (its workers included) and redis-server');
    console.log('');
    console.log(formatTable(all));
    console.log('');
    console.log(`redis/memory per round: ${redisRatios.map((r) => r.toFixed(2)).join(', ')}`);
    console.log(`ratio redis/memory = ${redisRatio.toFixed(3)} (median of the rounds; target ≥ ${TARGET_REDIS_RATIO.toFixed(2)}) ${verdict(redisRatio >= TARGET_REDIS_RATIO)}`);
    console.log(`2 workers/1 worker on redis per round: ${workerRatios.map((r) => r.toFixed(2)).join(', ')}`);
    console.log(`ratio 2 workers/1 worker = ${workerRatio.toFixed(3)} (median of the rounds; target ≥ ${TARGET_WORKERS_RATIO.toFixed(2)}) ${verdict(workerRatio >= TARGET_WORKERS_RATIO)}`);
    for (const name of TARGET_NAMES) {
      console.log(`${name}: ${medianOf(name, (r) => r.rps).toFixed(0)} intents/s, p99 ${medianOf(name, (r) => r.p99).toFixed(2)} ms (medians); cores used: ${cores(name)}`);
    }
    console.log(
      `Redis commands per created intent (its creation and its decision): ${commandsPerIntent.toFixed(1)}, of them ${scriptsPerIntent.toFixed(1)} scripts (EVALSHA/EVAL, one round trip each); ` +
        'commands run inside scripts count as well',
    );
    console.log(`by command: ${commandBreakdown(all)}`);
    // Microseconds of CPU per created intent, in total and by process (medians of the rounds).
    const cpuPerIntent = (name: TargetName) => {
      const per = (pick: (row: Row) => number) => medianOf(name, (r) => (pick(r) * 1e6) / r.rps).toFixed(0);
      return `${name} ${per(cpuTotal)} (${per((r) => r.cpu.loadGenerator)} + ${per((r) => r.cpu.service)} + ${per((r) => r.cpu.redis)})`;
    };
    console.log(`CPU per created intent (µs, medians; autocannon + service + redis-server): ${TARGET_NAMES.map(cpuPerIntent).join('; ')}`);
    console.log(
      `with the whole machine (${machineCores} cores) at that CPU per intent: redis at most ${median(redisBounds).toFixed(2)}× memory's measured rate (rounds ${redisBounds.map((r) => r.toFixed(2)).join(', ')}), ` +
        `redis ×2 at most ${median(workerBounds).toFixed(2)}× one worker's (rounds ${workerBounds.map((r) => r.toFixed(2)).join(', ')}): ` +
        'a ratio below its target here is out of reach on this machine by using idle cores alone; the CPU per intent has to fall',
    );
    console.log(
      `what limits it: ${machine().split(', ')[1]} shared by autocannon, the service and redis-server; the cores used by the three together ` +
        `(${medianOf('redis ×2', cpuTotal).toFixed(2)} for redis ×2) against the cores there are ` +
        'say whether the machine, not the service, is the ceiling; a second worker only helps with a core to spare',
    );
    console.log('');

    const failing = all.filter((r) => (r.non2xx + r.errors) / Math.max(1, r.total + r.errors) > MAX_FAILURE_RATE);
    if (failing.length > 0) {
      console.error(`bench-cluster: more than ${MAX_FAILURE_RATE * 100} % of requests failed for: ${failing.map((r) => r.label).join(', ')}`);
      return 1;
    }
    return 0;
  } finally {
    redis.disconnect();
    await redisServer.stop();
  }
}

await runBench(bench, main);
