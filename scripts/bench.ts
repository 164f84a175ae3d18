import { spawn, type ChildProcess } from 'node:child_process';
import { once, type EventEmitter } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/**
 * `make bench`: throughput and latency of `POST /v1/sim/intent`, the service against a bare Fastify
 * server with the same schemas, then the memory cost of intents (scripts/bench-memory.ts).
 *
 * Each target runs in its own child process, one at a time, so the two cores are shared only by
 * autocannon and the one server under test. Server output goes to a descriptor on /dev/null, not
 * a pipe: a pipe would make this process part of the logging cost being measured.
 *
 * Exit codes: 0 when the report was produced (targets missed or not), 1 when a server failed to
 * start or more than 0.1 % of requests failed, since then the figures mean nothing.
 *
 * Environment: BENCH_DURATION_S (default 10), BENCH_CONNECTIONS (default 50).
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 50);
const WARMUP_S = 2;
const READY_TIMEOUT_MS = 15_000;
/** Above the service's SHUTDOWN_TIMEOUT_MS default (10 s), so a graceful drain is never cut short. */
const STOP_TIMEOUT_MS = 15_000;
const MAX_FAILURE_RATE = 0.001;
const TARGET_RATIO = 0.5;
const TARGET_P99_MS = 20;

// autocannon ships no types and has no @types package; this is the part of its API used here.
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  method: string;
  headers: Record<string, string>;
  requests: Array<{ setupRequest: (request: AutocannonRequest) => AutocannonRequest }>;
}
interface AutocannonResult {
  requests: { average: number; total: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type AutocannonRun = EventEmitter & PromiseLike<AutocannonResult> & { stop(): void };
const autocannon = createRequire(import.meta.url)('autocannon') as (options: AutocannonOptions) => AutocannonRun;

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

interface RunningServer {
  name: string;
  url: string;
  child: ChildProcess;
  stderrPath: string;
}

const live = new Set<ChildProcess>();
/** Aborted on SIGINT/SIGTERM: no new child is started and the running load stops at once. */
const interrupted = new AbortController();
const scratch = mkdtempSync(path.join(os.tmpdir(), 'paysim-bench-'));
/** Every request gets its own reservation id, across targets and runs, as real clients would send. */
let sequence = 0;

class StartError extends Error {
  override name = 'StartError';
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got ${JSON.stringify(raw)})`);
  return value;
}

function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/** Asks the kernel for a free port; the tiny window before the child binds it is acceptable here. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('could not read a free port');
  return address.port;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function tail(file: string, bytes = 2000): string {
  try {
    return readFileSync(file, 'utf8').slice(-bytes).trim();
  } catch {
    return '';
  }
}

async function startServer(name: string, script: string, env: NodeJS.ProcessEnv): Promise<RunningServer> {
  const port = await freePort();
  const stderrPath = path.join(scratch, `${name.replace(/\W+/g, '_')}.stderr`);
  const out = openSync('/dev/null', 'w');
  // stderr goes to a file, not /dev/null, so a failed start can say why.
  const err = openSync(stderrPath, 'w');
  const child = spawn(process.execPath, [script], {
    cwd: ROOT,
    env: { ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', out, err],
  });
  closeSync(out);
  closeSync(err);
  live.add(child);
  child.once('exit', () => live.delete(child));
  const server = { name, url: `http://127.0.0.1:${port}`, child, stderrPath };
  await waitUntilHealthy(server);
  return server;
}

async function waitUntilHealthy(server: RunningServer): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (hasExited(server.child)) {
      const why = tail(server.stderrPath);
      throw new StartError(`${server.name} exited (code ${server.child.exitCode}, signal ${server.child.signalCode}) before /healthz answered${why ? `:\n${why}` : ''}`);
    }
    try {
      const response = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new StartError(`${server.name} did not answer /healthz within ${READY_TIMEOUT_MS} ms`);
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = sleep(STOP_TIMEOUT_MS, 'timeout' as const);
  if ((await Promise.race([exited, timer])) === 'timeout' && !hasExited(child)) {
    child.kill('SIGKILL');
    await exited;
  }
}

function intentBody(): string {
  sequence += 1;
  return `{"reservation_id":"res_bench_${sequence}","amount":1000}`;
}

/** One request outside the measurement, so a broken route fails loudly instead of as a row of 4xx. */
async function checkRoute(server: RunningServer): Promise<void> {
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

function load(server: RunningServer, durationS: number): AutocannonRun {
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
  interrupted.signal.addEventListener('abort', stop, { once: true });
  run.on('done', () => interrupted.signal.removeEventListener('abort', stop));
  return run;
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function measure(label: string, script: string, env: NodeJS.ProcessEnv): Promise<Row> {
  interrupted.signal.throwIfAborted();
  progress(`${label}: starting`);
  const server = await startServer(label, script, env);
  try {
    await checkRoute(server);
    progress(`${label}: warm-up ${WARMUP_S} s`);
    await load(server, WARMUP_S);
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
  } finally {
    await stopServer(server.child);
  }
}

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
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i] as number) : v.padStart(widths[i] as number))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

function machine(): string {
  const cpus = os.cpus();
  const gib = (os.totalmem() / 2 ** 30).toFixed(1);
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${gib} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

/** The service as deployed by default, apart from the port, a fixed secret and (if set) tracing. */
function serviceEnv(logLevel: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: logLevel, WEBHOOK_SECRET: 'whsec_bench_fixed_test_secret' };
  // Tracing would export to a collector; the benchmark measures the default, untraced service.
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return env;
}

async function runMemoryBench(): Promise<number> {
  interrupted.signal.throwIfAborted();
  progress('memory: node --expose-gc scripts/bench-memory.ts');
  const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=8192', 'scripts/bench-memory.ts'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  live.add(child);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  live.delete(child);
  if (signal !== null) return 1;
  return code ?? 1;
}

/** Other work on the machine skews every figure; the report says how busy it was. */
function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' / ');
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  const rows: Row[] = [];
  rows.push(await measure('bare fastify', 'scripts/bench-bare-server.ts', { ...process.env }));
  rows.push(await measure('service', 'src/server.ts', serviceEnv('info')));
  rows.push(await measure('service (LOG_LEVEL=warn)', 'src/server.ts', serviceEnv('warn')));
  // An interrupted last run returns early with partial figures: do not report them.
  interrupted.signal.throwIfAborted();
  const [bare, service, quiet] = rows as [Row, Row, Row];
  const loadAfter = loadAverage();

  const ratio = service.rps / bare.rps;
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  console.log('');
  console.log('paysim bench: POST /v1/sim/intent, a fresh reservation_id per request, amount 1000');
  console.log(`machine: ${machine()}`);
  console.log(`load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
  console.log(`load: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s per target after a ${WARMUP_S} s warm-up, targets run one after another`);
  console.log('note: autocannon runs on the same cores as the server under test');
  console.log('"service" is the default configuration (LOG_LEVEL=info, one log line per request, stdout on /dev/null)');
  console.log('');
  console.log(formatTable(rows));
  console.log('');
  console.log(`ratio service/bare = ${ratio.toFixed(2)} (target ≥ ${TARGET_RATIO.toFixed(2)}) ${verdict(ratio >= TARGET_RATIO)}`);
  console.log(`service p99 = ${service.p99.toFixed(2)} ms (target < ${TARGET_P99_MS} ms) ${verdict(service.p99 < TARGET_P99_MS)}`);
  console.log(`request logging: service at LOG_LEVEL=warn does ${(quiet.rps / service.rps).toFixed(2)}× the req/s of LOG_LEVEL=info (ratio to bare ${(quiet.rps / bare.rps).toFixed(2)})`);
  console.log('');

  const failing = rows.filter((r) => (r.non2xx + r.errors) / Math.max(1, r.total + r.errors) > MAX_FAILURE_RATE);
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

async function cleanUp(): Promise<void> {
  await Promise.all([...live].map(stopServer));
  rmSync(scratch, { recursive: true, force: true });
}

// Ctrl-C or a CI timeout must not leave a server holding a port.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    interrupted.abort();
    void cleanUp().finally(() => process.exit(130));
  });
}
// Last resort if something throws past the handlers above: exit handlers cannot await.
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

let exitCode: number;
try {
  exitCode = await main();
} catch (error) {
  // After Ctrl-C the abort error is expected; the signal handler reports the exit.
  if (!interrupted.signal.aborted) console.error(error instanceof StartError ? `bench: ${error.message}` : error);
  exitCode = interrupted.signal.aborted ? 130 : 1;
} finally {
  await cleanUp();
}
process.exitCode = exitCode;
