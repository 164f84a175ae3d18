import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import {
  createBench,
  getJson,
  loadAverage,
  machine,
  positiveInt,
  runBench,
  startReceiverChild,
  startServer,
  StartError,
  stopChild,
  table,
  type ServerChild as Service,
  type SpawnedChild as Child,
} from './bench-support.ts';

/**
 * `make bench-webhooks`: webhook delivery from the service to a local receiver (issue 3, "Benchmark").
 *
 * Three runs, each with a fresh service (`node src/server.ts`) and a fresh receiver
 * (scripts/bench-receiver.ts), each in its own child process:
 *   a) cap off (WEBHOOK_MAX_RPS=0): BENCH_EVENTS intents (default 30,000) with a `webhook_url`,
 *      created through an undici Pool; deliveries/s = events delivered ÷ (last − first delivery as
 *      seen by the receiver), and p50/p99 of event `created_at` → received.
 *   b) WEBHOOK_MAX_RPS=500: 6,500 events (13 s of capacity), the receiver's arrival rate over
 *      [first + 1 s, first + 11 s), and its error against the cap. The service is killed after the window.
 *   c) a receiver answering 500 to a random half of the requests, WEBHOOK_BACKOFF_MS=50,
 *      WEBHOOK_BACKOFF_MAX_MS=500 and WEBHOOK_MAX_RETRIES=20 (a retry budget for a receiver that
 *      fails half the time: 2,000 × 0.5^21 ≈ 0.001 events expected to fail every attempt), so
 *      retries finish quickly, cap off: 2,000 events, waited on until the
 *      delivery log holds nothing pending or retrying (or 60 s); the share of events finally delivered.
 *
 * The service runs with LOG_LEVEL=warn: this measures delivery, not request logging (see `make bench`).
 * Its stdout goes to /dev/null (a pipe would make this process part of the logging cost); its stderr
 * goes to a file so that a failed start can say why. All processes share the machine's cores.
 *
 * Exit codes: 0 when the report was produced (targets met or not); 1 on a setup error (a server did
 * not start, an intent create failed); 130 when interrupted.
 *
 * Environment: BENCH_EVENTS (default 30000, run a), BENCH_RATE_EVENTS (6500, run b),
 * BENCH_FLAKY_EVENTS (2000, run c), BENCH_CONNECTIONS (32), BENCH_IN_FLIGHT (64),
 * BENCH_RUNS (default a,b,c: which runs to do), BENCH_CPU_PROF=<dir>: run the service of run a
 * under `node --cpu-prof` and keep the profile there.
 */

const EVENTS = positiveInt('BENCH_EVENTS', 30_000);
const RATE_EVENTS = positiveInt('BENCH_RATE_EVENTS', 6_500);
const FLAKY_EVENTS = positiveInt('BENCH_FLAKY_EVENTS', 2_000);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 32);
const IN_FLIGHT = positiveInt('BENCH_IN_FLIGHT', 64);
const RUNS = new Set((process.env.BENCH_RUNS || 'a,b,c').split(',').map((r) => r.trim()));
if ([...RUNS].some((r) => !['a', 'b', 'c'].includes(r))) throw new Error(`BENCH_RUNS must be a comma list of a, b, c (got ${JSON.stringify(process.env.BENCH_RUNS)})`);
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF === undefined || process.env.BENCH_CPU_PROF === '' ? undefined : path.resolve(process.env.BENCH_CPU_PROF);

const RATE_CAP = 500;
const RATE_WINDOW_START_MS = 1_000;
const RATE_WINDOW_MS = 10_000;
const FLAKY_BACKOFF_MS = 50;
const FLAKY_MAX_RETRIES = 20;
const FLAKY_BACKOFF_MAX_MS = 500;
const FLAKY_WAIT_MS = 60_000;
/** Run a: stop waiting when no delivery arrived for this long, or after the deadline. */
const STALL_MS = 5_000;
const DELIVERY_DEADLINE_MS = 90_000;

const TARGET_DELIVERIES_PER_S = 5_000;
const TARGET_RATE_ERROR_PCT = 5;
const TARGET_DELIVERED_SHARE = 1;

const SECRET = 'whsec_YmVuY2gtd2ViaG9va3MtZml4ZWQtc2VjcmV0';

interface Receiver extends Child {
  url: string;
  hookUrl: string;
}

interface ReceiverProgress {
  requests: number;
  ok: number;
  first_at: number | null;
  last_at: number | null;
  now: number;
}
interface ReceiverStats {
  requests: number;
  answered_200: number;
  answered_500: number;
  distinct_events_seen: number;
  distinct_events_delivered: number;
  duplicates: number;
  first_delivery_at: number | null;
  last_delivery_at: number | null;
  latency_ms: { p50: number | null; p90: number | null; p99: number | null; max: number | null };
  window: { from_ms: number; to_ms: number; requests: number | null } | null;
  delivered_after: { at: number; requests: number } | null;
}

interface CreateResult {
  seconds: number;
  /** When the last create returned, in epoch ms (comparable with the receiver's times). */
  endedAt: number;
  overloadRetries: number;
}

const bench = createBench('bench-webhooks');
const { progress } = bench;
/** Every intent gets its own reservation id, across runs. */
let sequence = 0;

async function startReceiver(name: string, mode: 'ok' | 'flaky'): Promise<Receiver> {
  const receiver = await startReceiverChild(bench, `${name} receiver`, mode);
  return { ...receiver, hookUrl: `${receiver.url}/hook` };
}

function startService(name: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<Service> {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'warn',
    WEBHOOK_SECRET: SECRET,
    DEFAULT_APPROVE_DELAY_MS: '0',
    ...env,
  };
  // Tracing would export to a collector; the benchmark measures the default, untraced service.
  delete childEnv.OTEL_EXPORTER_OTLP_ENDPOINT;
  return startServer(bench, `${name} service`, [...nodeArgs, 'src/server.ts'], childEnv);
}

/**
 * Creates `count` intents (scenario approve, so each yields one payment.approved webhook), at most
 * IN_FLIGHT at a time over a Pool of CONNECTIONS keep-alive connections. A 503 (load shedding) is
 * retried after a short pause and counted; any other failure is a setup error.
 */
async function createIntents(service: Service, webhookUrl: string, count: number, label: string): Promise<CreateResult> {
  const pool = new Pool(service.url, { connections: CONNECTIONS, pipelining: 1 });
  let next = 0;
  let overloadRetries = 0;
  let failure: Error | undefined;
  const started = performance.now();
  const worker = async () => {
    while (next < count && failure === undefined && !bench.signal.aborted) {
      next++;
      sequence++;
      const body = `{"reservation_id":"res_whbench_${label}_${sequence}","amount":1000,"scenario":"approve","webhook_url":"${webhookUrl}"}`;
      for (let attempt = 0; ; attempt++) {
        const res = await pool.request({ path: '/v1/sim/intent', method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const text = await res.body.text();
        if (res.statusCode === 200) break;
        if (res.statusCode === 503 && attempt < 5) {
          overloadRetries++;
          await sleep(100);
          continue;
        }
        failure = new StartError(`${label}: POST /v1/sim/intent answered ${res.statusCode} ${text.slice(0, 300)}`);
        return;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
  } catch (error) {
    failure ??= new StartError(`${label}: POST /v1/sim/intent failed: ${(error as Error).message}`);
  } finally {
    await pool.close();
  }
  bench.signal.throwIfAborted();
  if (failure !== undefined) throw failure;
  const ended = performance.now();
  return { seconds: (ended - started) / 1000, endedAt: performance.timeOrigin + ended, overloadRetries };
}

/** Kernel clock ticks per second, for /proc/<pid>/stat; 100 on every usual Linux. */
let clockTicks: number | undefined;

/** CPU time (user + system, s) a child used so far, from /proc; undefined where there is no /proc. */
function childCpuSeconds(child: ChildProcess): number | undefined {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

interface CpuSplit {
  service: number | undefined;
  receiver: number | undefined;
  generator: number;
  wallS: number;
}

function cpuMark(service: Child, receiver: Child) {
  return { service: childCpuSeconds(service.child), receiver: childCpuSeconds(receiver.child), self: process.cpuUsage(), at: performance.now() };
}

function cpuSince(mark: ReturnType<typeof cpuMark>, service: Child, receiver: Child): CpuSplit {
  const diff = (now: number | undefined, then: number | undefined) => (now === undefined || then === undefined ? undefined : now - then);
  const self = process.cpuUsage(mark.self);
  return {
    service: diff(childCpuSeconds(service.child), mark.service),
    receiver: diff(childCpuSeconds(receiver.child), mark.receiver),
    generator: (self.user + self.system) / 1e6,
    wallS: (performance.now() - mark.at) / 1000,
  };
}

/** Values of one metric family, keyed by its label set as written (`{result="failed"}`). */
async function metrics(service: Service): Promise<Map<string, number>> {
  const response = await fetch(`${service.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

function metric(values: Map<string, number>, name: string): number {
  return values.get(name) ?? 0;
}

function attemptsFromMetrics(values: Map<string, number>): number {
  return metric(values, 'webhook_attempt_duration_seconds_count{outcome="success"}') + metric(values, 'webhook_attempt_duration_seconds_count{outcome="failure"}');
}

// ---------------------------------------------------------------------------------------------

interface ThroughputResult {
  events: number;
  create: CreateResult;
  stats: ReceiverStats;
  deliveriesPerS: number;
  spanS: number;
  /** Last delivery − last create returned, in s: how long a webhook backlog outlived the load. */
  tailS: number;
  /** Events delivered after the last create returned, and their rate (the backlog draining alone). */
  tailDelivered: number;
  tailRate: number;
  /** CPU used by each process from the first create to the last delivery (about). */
  cpu: CpuSplit;
  dropped: number;
  failed: number;
  timedOut: boolean;
}

async function runThroughput(): Promise<ThroughputResult> {
  const label = 'a';
  progress(`a) cap off: starting receiver and service${CPU_PROF_DIR ? ` (service under --cpu-prof, profile in ${CPU_PROF_DIR})` : ''}`);
  const receiver = await startReceiver(label, 'ok');
  let nodeArgs: string[] = [];
  if (CPU_PROF_DIR !== undefined) {
    mkdirSync(CPU_PROF_DIR, { recursive: true });
    nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`];
  }
  const service = await startService(label, { WEBHOOK_MAX_RPS: '0' }, nodeArgs);
  try {
    progress(`a) creating ${EVENTS} intents with webhook_url (${CONNECTIONS} connections, ${IN_FLIGHT} in flight)`);
    const mark = cpuMark(service, receiver);
    const create = await createIntents(service, receiver.hookUrl, EVENTS, label);
    progress(`a) created in ${create.seconds.toFixed(2)} s (${(EVENTS / create.seconds).toFixed(0)}/s); waiting for deliveries`);
    const deadline = Date.now() + DELIVERY_DEADLINE_MS;
    let lastOk = -1;
    let lastChange = Date.now();
    let timedOut = false;
    for (;;) {
      bench.signal.throwIfAborted();
      const p = await getJson<ReceiverProgress>(`${receiver.url}/progress`);
      if (p.ok >= EVENTS) break;
      if (p.ok !== lastOk) {
        lastOk = p.ok;
        lastChange = Date.now();
      }
      if (Date.now() - lastChange > STALL_MS || Date.now() > deadline) {
        timedOut = true;
        progress(`a) stopped waiting: ${p.ok} of ${EVENTS} delivered`);
        break;
      }
      await sleep(200);
    }
    const cpu = cpuSince(mark, service, receiver);
    const stats = await getJson<ReceiverStats>(`${receiver.url}/stats?after=${create.endedAt}`);
    const m = await metrics(service);
    const tailS = ((stats.last_delivery_at ?? 0) - create.endedAt) / 1000;
    const tailDelivered = stats.delivered_after?.requests ?? 0;
    const spanS = ((stats.last_delivery_at ?? 0) - (stats.first_delivery_at ?? 0)) / 1000;
    const deliveriesPerS = spanS > 0 ? stats.distinct_events_delivered / spanS : Number.NaN;
    progress(`a) ${stats.distinct_events_delivered} delivered in ${spanS.toFixed(2)} s = ${deliveriesPerS.toFixed(0)}/s`);
    return {
      events: EVENTS,
      create,
      stats,
      deliveriesPerS,
      spanS,
      tailS,
      tailDelivered,
      tailRate: tailS > 0.25 ? tailDelivered / tailS : Number.NaN,
      cpu,
      dropped: metric(m, 'webhook_deliveries_total{result="dropped"}'),
      failed: metric(m, 'webhook_deliveries_total{result="failed"}'),
      timedOut,
    };
  } finally {
    await stopChild(service.child);
    await stopChild(receiver.child);
  }
}

interface RateResult {
  events: number;
  create: CreateResult;
  windowRequests: number;
  rate: number;
  errorPct: number;
}

async function runRateCap(): Promise<RateResult> {
  const label = 'b';
  progress(`b) WEBHOOK_MAX_RPS=${RATE_CAP}: starting receiver and service`);
  const receiver = await startReceiver(label, 'ok');
  const service = await startService(label, { WEBHOOK_MAX_RPS: String(RATE_CAP) });
  try {
    progress(`b) creating ${RATE_EVENTS} intents`);
    const create = await createIntents(service, receiver.hookUrl, RATE_EVENTS, label);
    progress(`b) created in ${create.seconds.toFixed(2)} s; waiting for the window [first + ${RATE_WINDOW_START_MS / 1000} s, first + ${(RATE_WINDOW_START_MS + RATE_WINDOW_MS) / 1000} s)`);
    const end = RATE_WINDOW_START_MS + RATE_WINDOW_MS;
    const deadline = Date.now() + end + 15_000;
    for (;;) {
      bench.signal.throwIfAborted();
      const p = await getJson<ReceiverProgress>(`${receiver.url}/progress`);
      if (p.first_at !== null && p.now >= p.first_at + end + 50) break;
      if (Date.now() > deadline) throw new StartError('b) the receiver got no delivery');
      await sleep(p.first_at === null ? 50 : Math.max(20, Math.min(500, p.first_at + end + 60 - p.now)));
    }
    const stats = await getJson<ReceiverStats>(`${receiver.url}/stats?from=${RATE_WINDOW_START_MS}&to=${end}`);
    const windowRequests = stats.window?.requests ?? 0;
    const rate = windowRequests / (RATE_WINDOW_MS / 1000);
    const errorPct = ((rate - RATE_CAP) / RATE_CAP) * 100;
    progress(`b) ${windowRequests} arrivals in the window = ${rate.toFixed(1)}/s (${errorPct >= 0 ? '+' : ''}${errorPct.toFixed(2)} %)`);
    return { events: RATE_EVENTS, create, windowRequests, rate, errorPct };
  } finally {
    // The rest of the backlog is not waited for.
    await stopChild(service.child, 'SIGKILL');
    await stopChild(receiver.child);
  }
}

interface FlakyResult {
  events: number;
  create: CreateResult;
  stats: ReceiverStats;
  share: number;
  waitedS: number;
  settled: boolean;
  unsettled: number;
  attemptsMetric: number;
  failed: number;
  retried: number;
  dropped: number;
  /** Failed deliveries from the log, grouped as `<failure_reason> after <n> attempts`. */
  failures: Map<string, number>;
}

async function countByStatus(service: Service, status: string): Promise<number> {
  const page = await getJson<{ data: unknown[] }>(`${service.url}/v1/sim/webhooks/deliveries?status=${status}&limit=1`);
  return page.data.length;
}

async function runFlaky(): Promise<FlakyResult> {
  const label = 'c';
  progress(`c) receiver failing half its requests, WEBHOOK_BACKOFF_MS=${FLAKY_BACKOFF_MS}, WEBHOOK_BACKOFF_MAX_MS=${FLAKY_BACKOFF_MAX_MS}, WEBHOOK_MAX_RETRIES=${FLAKY_MAX_RETRIES}: starting`);
  const receiver = await startReceiver(label, 'flaky');
  const service = await startService(label, { WEBHOOK_MAX_RPS: '0', WEBHOOK_BACKOFF_MS: String(FLAKY_BACKOFF_MS), WEBHOOK_BACKOFF_MAX_MS: String(FLAKY_BACKOFF_MAX_MS), WEBHOOK_MAX_RETRIES: String(FLAKY_MAX_RETRIES) });
  try {
    progress(`c) creating ${FLAKY_EVENTS} intents`);
    const create = await createIntents(service, receiver.hookUrl, FLAKY_EVENTS, label);
    progress(`c) created; waiting until no delivery is pending or retrying (at most ${FLAKY_WAIT_MS / 1000} s)`);
    const started = Date.now();
    let settled = false;
    let lastReport = started;
    for (;;) {
      bench.signal.throwIfAborted();
      const p = await getJson<ReceiverProgress>(`${receiver.url}/progress`);
      // Every event must have reached the receiver once before "nothing pending" means anything.
      if (p.requests >= FLAKY_EVENTS && (await countByStatus(service, 'retrying')) === 0 && (await countByStatus(service, 'pending')) === 0) {
        settled = true;
        break;
      }
      if (Date.now() - started > FLAKY_WAIT_MS) break;
      if (Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        progress(`c) ${((Date.now() - started) / 1000).toFixed(0)} s: ${p.requests} attempts received, ${p.ok} answered 200`);
      }
      await sleep(250);
    }
    const waitedS = (Date.now() - started) / 1000;
    let unsettled = 0;
    if (!settled) {
      const list = await getJson<{ data: unknown[] }>(`${service.url}/v1/sim/webhooks/deliveries?status=retrying&limit=1000`);
      const pending = await getJson<{ data: unknown[] }>(`${service.url}/v1/sim/webhooks/deliveries?status=pending&limit=1000`);
      unsettled = list.data.length + pending.data.length;
    }
    const stats = await getJson<ReceiverStats>(`${receiver.url}/stats`);
    const m = await metrics(service);
    const failed = await getJson<{ data: Array<{ failure_reason: string | null; attempts: unknown[] }> }>(`${service.url}/v1/sim/webhooks/deliveries?status=failed&limit=100`);
    const failures = new Map<string, number>();
    for (const d of failed.data) {
      const key = `${d.failure_reason ?? 'no reason'} after ${d.attempts.length} attempts`;
      failures.set(key, (failures.get(key) ?? 0) + 1);
    }
    const share = stats.distinct_events_delivered / FLAKY_EVENTS;
    progress(`c) settled=${settled} after ${waitedS.toFixed(1)} s: ${stats.distinct_events_delivered} of ${FLAKY_EVENTS} delivered, ${stats.requests} attempts`);
    return {
      events: FLAKY_EVENTS,
      create,
      stats,
      share,
      waitedS,
      settled,
      unsettled,
      attemptsMetric: attemptsFromMetrics(m),
      failed: metric(m, 'webhook_deliveries_total{result="failed"}'),
      retried: metric(m, 'webhook_deliveries_total{result="retried"}'),
      dropped: metric(m, 'webhook_deliveries_total{result="dropped"}'),
      failures,
    };
  } finally {
    await stopChild(service.child);
    await stopChild(receiver.child);
  }
}

// ---------------------------------------------------------------------------------------------

const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
const ms = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(1)} ms`);
const int = (value: number) => Math.round(value).toLocaleString('en-US');
const cpuS = (value: number | undefined) => (value === undefined ? 'n/a' : value.toFixed(2));

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  progress(`load average before: ${loadBefore}`);
  const a = RUNS.has('a') ? await runThroughput() : undefined;
  const b = RUNS.has('b') ? await runRateCap() : undefined;
  const c = RUNS.has('c') ? await runFlaky() : undefined;
  const loadAfter = loadAverage();

  const rows: string[][] = [];
  const notes: string[] = [];
  const verdicts: string[] = [];
  if (a !== undefined) {
    const met = a.deliveriesPerS >= TARGET_DELIVERIES_PER_S;
    verdicts.push(`deliveries/s ${verdict(met)}`);
    rows.push(
      [`a) cap off, ${int(a.events)} events`, 'deliveries/s (receiver: first → last)', int(a.deliveriesPerS), `≥ ${int(TARGET_DELIVERIES_PER_S)}`, verdict(met)],
      ['', 'events delivered / duplicates', `${int(a.stats.distinct_events_delivered)} / ${a.stats.duplicates}`, `${int(a.events)} / 0`, verdict(a.stats.distinct_events_delivered === a.events && a.stats.duplicates === 0)],
      ['', 'span first → last delivery', `${a.spanS.toFixed(2)} s`, '', ''],
      ['', 'delivery latency p50 (created_at → received)', ms(a.stats.latency_ms.p50), '', ''],
      ['', 'delivery latency p99', ms(a.stats.latency_ms.p99), '', ''],
      ['', 'delivery latency max', ms(a.stats.latency_ms.max), '', ''],
      ['', 'intent creates/s (load generator)', `${int(a.events / a.create.seconds)} (${a.create.seconds.toFixed(2)} s)`, '', ''],
      ['', 'last delivery after the last create', `${a.tailS.toFixed(2)} s`, '', ''],
      ['', 'backlog drain after the last create', Number.isNaN(a.tailRate) ? 'n/a (no backlog)' : `${int(a.tailDelivered)} in ${a.tailS.toFixed(2)} s = ${int(a.tailRate)}/s`, '', ''],
      ['', 'failed / dropped (metrics)', `${a.failed} / ${a.dropped}`, '0 / 0', verdict(a.failed === 0 && a.dropped === 0)],
      ['', 'CPU s: service / receiver / load generator', `${cpuS(a.cpu.service)} / ${cpuS(a.cpu.receiver)} / ${cpuS(a.cpu.generator)} in ${a.cpu.wallS.toFixed(2)} s`, '', ''],
      ['', 'service CPU per event (create + delivery)', a.cpu.service === undefined ? 'n/a' : `${int((a.cpu.service / a.events) * 1e6)} µs`, '', ''],
    );
    if (a.timedOut) notes.push(`a) stopped waiting before every event arrived (no progress for ${STALL_MS / 1000} s or ${DELIVERY_DEADLINE_MS / 1000} s elapsed)`);
    if (a.tailS < 0.25) {
      notes.push('a) deliveries kept pace with intent creation: the rate was set by the load generator and the create path, not by the dispatcher');
    } else {
      notes.push(
        `a) webhooks queued up while intents were being created (so p50/p99 are mostly queueing): the service's one thread, sharing ${os.cpus().length} cores with the load generator and the receiver, set the rate; once creates stopped, the backlog drained at ${int(a.tailRate)}/s`,
      );
    }
  }
  if (b !== undefined) {
    const met = Math.abs(b.errorPct) <= TARGET_RATE_ERROR_PCT;
    verdicts.push(`rate cap ${verdict(met)}`);
    rows.push(
      [`b) WEBHOOK_MAX_RPS=${RATE_CAP}, ${int(b.events)} events`, 'arrivals in [t0+1 s, t0+11 s)', int(b.windowRequests), '', ''],
      ['', 'measured rate', `${b.rate.toFixed(1)}/s`, `${RATE_CAP}/s`, ''],
      ['', 'error vs cap', `${b.errorPct >= 0 ? '+' : ''}${b.errorPct.toFixed(2)} %`, `±${TARGET_RATE_ERROR_PCT} %`, verdict(met)],
    );
  }
  if (c !== undefined) {
    const met = c.share >= TARGET_DELIVERED_SHARE;
    verdicts.push(`finally delivered ${verdict(met)}`);
    rows.push(
      [`c) 50 % of requests → 500, ${int(c.events)} events`, 'events finally delivered', `${(c.share * 100).toFixed(2)} % (${int(c.stats.distinct_events_delivered)})`, '100 %', verdict(met)],
      ['', 'settled (nothing pending/retrying)', c.settled ? `yes, after ${c.waitedS.toFixed(1)} s` : `NO after ${c.waitedS.toFixed(1)} s (${c.unsettled} left)`, 'yes', verdict(c.settled)],
      ['', 'attempts (receiver / metrics)', `${int(c.stats.requests)} / ${int(c.attemptsMetric)}`, '', ''],
      ['', 'answered 200 / 500', `${int(c.stats.answered_200)} / ${int(c.stats.answered_500)}`, '', ''],
      ['', 'failed deliveries (metrics)', String(c.failed), '0', verdict(c.failed === 0)],
      ['', 'retries scheduled / dropped (metrics)', `${int(c.retried)} / ${c.dropped}`, '', ''],
      ['', 'duplicate 200s for one event', String(c.stats.duplicates), '0', verdict(c.stats.duplicates === 0)],
    );
    for (const [reason, n] of c.failures) notes.push(`c) failed delivery in the log: ${n} × ${reason}`);
    const expected = c.events * 0.5 ** (FLAKY_MAX_RETRIES + 1);
    notes.push(
      `c) with ${FLAKY_MAX_RETRIES + 1} attempts at a coin flip each, ${int(c.events)} × 0.5^${FLAKY_MAX_RETRIES + 1} ≈ ${expected.toFixed(2)} events are expected to fail every attempt by chance (P(none) ≈ ${(Math.exp(-expected) * 100).toFixed(0)} %); such a failure is final (max_retries_exceeded), not lost`,
    );
  }
  const shed = [a, b, c].reduce((sum, run) => sum + (run?.create.overloadRetries ?? 0), 0);
  if (shed > 0) notes.push(`${shed} creates answered 503 (load shedding) and were retried`);

  console.log('');
  console.log('paysim bench-webhooks: webhook delivery from the service to a local receiver');
  console.log(`machine: ${machine()}`);
  console.log(`load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
  console.log('note: the load generator, the service and the receiver share the same cores (each in its own process)');
  console.log('service: node src/server.ts, LOG_LEVEL=warn (this measures delivery, not request logging), WEBHOOK_SECRET fixed, DEFAULT_APPROVE_DELAY_MS=0 (events fire at once), stdout on /dev/null');
  console.log(`load: undici Pool, ${CONNECTIONS} connections, ${IN_FLIGHT} creates in flight, scenario approve (one payment.approved webhook per intent)`);
  console.log('receiver: node:http on 127.0.0.1, no per-request logging; latency = receive time − payload created_at (ms resolution)');
  if (c !== undefined) console.log(`run c uses WEBHOOK_BACKOFF_MS=${FLAKY_BACKOFF_MS}, WEBHOOK_BACKOFF_MAX_MS=${FLAKY_BACKOFF_MAX_MS} and WEBHOOK_MAX_RETRIES=${FLAKY_MAX_RETRIES}: a retry budget sized for a receiver that fails half the time, finishing quickly`);
  console.log('');
  console.log(table(['run', 'figure', 'value', 'target', 'verdict'], rows));
  console.log('');
  for (const note of notes) console.log(note);
  console.log(`result: ${verdicts.join(', ')}`);
  return 0;
}

await runBench(bench, main);
