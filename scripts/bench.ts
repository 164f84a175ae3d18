import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  autocannon,
  createBench,
  loadAverage,
  machine,
  percentile,
  positiveInt,
  ROOT,
  runBench,
  startServer,
  StartError,
  stopChild,
  table,
  type AutocannonRun,
  type ServerChild,
} from './bench-support.ts';

/**
 * `make bench`: throughput and latency of `POST /v1/sim/intent`, the service against a bare Fastify
 * server with the same schemas, then the memory cost of intents (scripts/bench-memory.ts).
 *
 * Each target runs in its own child process; they are loaded one at a time, in turn, for
 * BENCH_ROUNDS rounds, so the two cores are shared only by autocannon and the one server under
 * load, and each round compares targets measured within seconds of each other. Server output
 * goes to a descriptor on /dev/null, not a pipe: a pipe would make this process part of the
 * logging cost being measured.
 *
 * Exit codes: 0 when the report was produced (targets missed or not), 1 when a server failed to
 * start or more than 0.1 % of requests failed, since then the figures mean nothing.
 *
 * Environment: BENCH_DURATION_S (default 10), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 50).
 */

const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 50);
const WARMUP_S = 2;
const MAX_FAILURE_RATE = 0.001;
const TARGET_RATIO = 0.5;
const TARGET_P99_MS = 20;

interface Row {
  label: string;
  rps: number;
  total: number;
  p50: number;
  p95: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

const bench = createBench('bench');
const { progress } = bench;
/** Every request gets its own reservation id, across targets and runs, as real clients would send. */
let sequence = 0;

function intentBody(): string {
  sequence += 1;
  return `{"reservation_id":"res_bench_${sequence}","amount":1000}`;
}

/** One request outside the measurement, so a broken route fails loudly instead of as a row of 4xx. */
async function checkRoute(server: ServerChild): Promise<void> {
  const response = await fetch(`${server.url}/v1/sim/intent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: intentBody(),
  });
  const text = await response.text();
  if (response.status !== 200 || !text.includes('"status":"PENDING"')) {
    throw new StartError(`${server.name}: POST /v1/sim/intent answered ${response.status} ${text.slice(0, 300)}`);
  }
}

function load(server: ServerChild, durationS: number): AutocannonRun {
  const run = autocannon({
    url: `${server.url}/v1/sim/intent`,
    connections: CONNECTIONS,
    duration: durationS,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // setupRequest rather than idReplacement: the latter precomputes Content-Length for a fixed
    // id length, while this builds each request (and its length) from the actual body.
    requests: [{ setupRequest: (request) => ({ ...request, body: intentBody() }) }],
  });
  // Otherwise a stopping server would be hammered (and slowed down) until the duration is over.
  const stop = () => run.stop();
  bench.signal.addEventListener('abort', stop, { once: true });
  run.on('done', () => bench.signal.removeEventListener('abort', stop));
  return run;
}

/** One round of load against a server that is already up: its figures. */
async function measure(label: string, server: ServerChild): Promise<Row> {
  bench.signal.throwIfAborted();
  progress(`${label}: measuring ${DURATION_S} s`);
  // autocannon's latency percentiles stop at p90/p97.5, so every response time is kept for p95.
  // Like autocannon's defaults, non-2xx responses count too.
  const latencies: number[] = [];
  const run = load(server, DURATION_S);
  run.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms));
  const result = await run;
  const sorted = Float64Array.from(latencies).sort();
  return {
    label,
    rps: result.requests.average,
    total: result.requests.total,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/** Starts a target, checks its route and warms it up; it then idles until its rounds. */
async function prepare(label: string, script: string, env: NodeJS.ProcessEnv): Promise<ServerChild> {
  progress(`${label}: starting`);
  const server = await startServer(bench, label, [script], env);
  await checkRoute(server);
  progress(`${label}: warm-up ${WARMUP_S} s`);
  await load(server, WARMUP_S);
  return server;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

function formatTable(rows: Row[]): string {
  const header = ['target', 'req/s (avg)', 'requests', 'p50 ms', 'p95 ms', 'p99 ms', 'non-2xx', 'errors', 'timeouts'];
  const cells = rows.map((r) => [
    r.label,
    r.rps.toFixed(0),
    String(r.total),
    r.p50.toFixed(2),
    r.p95.toFixed(2),
    r.p99.toFixed(2),
    String(r.non2xx),
    String(r.errors),
    String(r.timeouts),
  ]);
  return table(header, cells, (column) => column > 0);
}

/** The service as deployed by default, apart from the port, a fixed secret and (if set) tracing. */
function serviceEnv(logLevel: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: logLevel, WEBHOOK_SECRET: 'whsec_bench_fixed_test_secret' };
  // Tracing would export to a collector; the benchmark measures the default, untraced service.
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return env;
}

/** scripts/bench-memory.ts: bytes per record of each store, then (`--full`) the whole process at the default bounds, in a process of its own. */
async function runMemoryBench(): Promise<number> {
  for (const args of [[], ['--full']]) {
    bench.signal.throwIfAborted();
    progress(`memory: node --expose-gc scripts/bench-memory.ts ${args.join(' ')}`);
    const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=8192', 'scripts/bench-memory.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    bench.track(child);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    if (signal !== null || code !== 0) return code ?? 1;
  }
  return 0;
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  const targets: Array<[string, string, NodeJS.ProcessEnv]> = [
    ['bare fastify', 'scripts/bench-bare-server.ts', { ...process.env }],
    ['service', 'src/server.ts', serviceEnv('info')],
    ['service (LOG_LEVEL=warn)', 'src/server.ts', serviceEnv('warn')],
    // The console records every decision and webhook attempt for its charts even when no page is
    // open (issue 13: it must cost nothing measurable): the same service without it.
    ['service (CONSOLE_ENABLED=false)', 'src/server.ts', { ...serviceEnv('info'), CONSOLE_ENABLED: 'false' }],
  ];
  const servers: ServerChild[] = [];
  for (const [label, script, env] of targets) servers.push(await prepare(label, script, env));
  // Rounds of each target in turn, servers kept up: this machine's speed drifts over tens of
  // seconds, so each round's service is compared with the bare server of the same round.
  const rounds: Row[][] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const row: Row[] = [];
    for (const [i, server] of servers.entries()) row.push(await measure(`${targets[i]?.[0] ?? server.name} #${round}`, server));
    rounds.push(row);
  }
  for (const server of servers) await stopChild(server.child);
  // An interrupted last run returns early with partial figures: do not report them.
  bench.signal.throwIfAborted();
  const loadAfter = loadAverage();

  const ratios = rounds.map(([bare, service]) => (service as Row).rps / (bare as Row).rps);
  const quietRatios = rounds.map(([, service, quiet]) => (quiet as Row).rps / (service as Row).rps);
  const consoleRatios = rounds.map(([, service, , noConsole]) => (service as Row).rps / (noConsole as Row).rps);
  const ratio = median(ratios);
  const p99 = median(rounds.map(([, service]) => (service as Row).p99));
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  console.log('');
  console.log('paysim bench: POST /v1/sim/intent, a fresh reservation_id per request, amount 1000');
  console.log(`machine: ${machine()}`);
  console.log(`load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
  console.log(`load: autocannon, ${CONNECTIONS} connections; ${ROUNDS} rounds of ${DURATION_S} s per target, targets in turn, after a ${WARMUP_S} s warm-up each`);
  console.log('note: autocannon runs on the same cores as the server under test');
  console.log('"service" is the default configuration (LOG_LEVEL=info, one log line per request, stdout on /dev/null)');
  console.log('');
  console.log(formatTable(rounds.flat()));
  console.log('');
  console.log(`ratio service/bare per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}`);
  console.log(`ratio service/bare = ${ratio.toFixed(2)} (median of the rounds; target ≥ ${TARGET_RATIO.toFixed(2)}) ${verdict(ratio >= TARGET_RATIO)}`);
  console.log(`service p99 = ${p99.toFixed(2)} ms (median of the rounds; target < ${TARGET_P99_MS} ms) ${verdict(p99 < TARGET_P99_MS)}`);
  console.log(`request logging: at LOG_LEVEL=warn the service does ${median(quietRatios).toFixed(2)}× the req/s of LOG_LEVEL=info (median of the rounds)`);
  console.log(`console (nobody watching): the service with it does ${median(consoleRatios).toFixed(2)}× the req/s of CONSOLE_ENABLED=false (per round: ${consoleRatios.map((r) => r.toFixed(2)).join(', ')})`);
  console.log('');

  const failing = rounds.flat().filter((r) => (r.non2xx + r.errors) / Math.max(1, r.total + r.errors) > MAX_FAILURE_RATE);
  const memoryCode = await runMemoryBench();
  if (failing.length > 0) {
    console.error(`bench: more than ${MAX_FAILURE_RATE * 100} % of requests failed for: ${failing.map((r) => r.label).join(', ')}`);
    return 1;
  }
  if (memoryCode !== 0) {
    console.error(`bench: scripts/bench-memory.ts exited with ${memoryCode}`);
    return 1;
  }
  return 0;
}

await runBench(bench, main);
