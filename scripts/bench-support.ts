import { spawn, type ChildProcess } from 'node:child_process';
import { once, type EventEmitter } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/**
 * The process plumbing the benchmark scripts (bench.ts, bench-webhooks.ts, bench-bookings.ts,
 * bench-v2.ts) share: children started with stdout on /dev/null (or a pipe) and stderr in a scratch file,
 * waiting for /healthz, stopping them (SIGTERM, then SIGKILL), cleaning up on errors and on
 * SIGINT/SIGTERM, and the report's small helpers (environment integers, machine line, load
 * average, percentiles, tables), the receiver child (scripts/bench-receiver.ts), reading the
 * service's JSON and metrics, and the typed autocannon loader. Importing it has no side effects; each script calls
 * `createBench` once its environment has been read.
 */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const READY_TIMEOUT_MS = 15_000;
/** Above the service's SHUTDOWN_TIMEOUT_MS default (10 s), so a graceful drain is never cut short. */
export const STOP_TIMEOUT_MS = 15_000;

/** A setup failure worth one line (`<script>: <message>`) rather than a stack trace. */
export class StartError extends Error {
  override name = 'StartError';
}

/** A positive integer from the environment, or `fallback` when unset or empty. */
export function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got ${JSON.stringify(raw)})`);
  return value;
}

/** One benchmark run: its name (the prefix of every progress line), its children and scratch folder. */
export interface Bench {
  readonly name: string;
  /** Aborted on SIGINT/SIGTERM: no new child is started and the running load stops at once. */
  readonly signal: AbortSignal;
  /** A fresh temporary folder, removed when the run ends. */
  readonly scratch: string;
  /** Children still running, stopped when the run ends. */
  readonly live: Set<ChildProcess>;
  /** A progress line on stderr: `<name>: <message>`. */
  progress(message: string): void;
  /** Follows a child until it exits, so the run's end can stop it. */
  track(child: ChildProcess): void;
  abort(): void;
}

export function createBench(name: string): Bench {
  const interrupted = new AbortController();
  const live = new Set<ChildProcess>();
  return {
    name,
    signal: interrupted.signal,
    scratch: mkdtempSync(path.join(os.tmpdir(), `paysim-${name}-`)),
    live,
    progress: (message) => {
      process.stderr.write(`${name}: ${message}\n`);
    },
    track: (child) => {
      live.add(child);
      child.once('exit', () => live.delete(child));
    },
    abort: () => interrupted.abort(),
  };
}

/** Asks the kernel for a free port; the tiny window before the child binds it is acceptable here. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('could not read a free port');
  return address.port;
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export function tail(file: string, bytes = 2000): string {
  try {
    return readFileSync(file, 'utf8').slice(-bytes).trim();
  } catch {
    return '';
  }
}

export interface SpawnedChild {
  name: string;
  child: ChildProcess;
  stderrPath: string;
}
export interface ServerChild extends SpawnedChild {
  /** `http://127.0.0.1:<port>` */
  url: string;
}

/** `<name> exited (code …, signal …) before <what>`, with the end of its stderr. */
export function exitedError(c: SpawnedChild, what: string): StartError {
  const why = tail(c.stderrPath);
  return new StartError(`${c.name} exited (code ${c.child.exitCode}, signal ${c.child.signalCode}) before ${what}${why ? `:\n${why}` : ''}`);
}

/**
 * Starts `node <args>` in ROOT, tracked by the run. stdout goes to /dev/null (a pipe would make
 * this process part of the logging cost being measured) unless `stdout: 'pipe'`; stderr goes to a
 * file in the scratch folder, not /dev/null, so a failed start can say why.
 */
export function spawnChild(bench: Bench, name: string, args: string[], env: NodeJS.ProcessEnv, stdout: 'null' | 'pipe' = 'null'): SpawnedChild {
  bench.signal.throwIfAborted();
  const stderrPath = path.join(bench.scratch, `${name.replace(/\W+/g, '_')}.stderr`);
  const out = stdout === 'pipe' ? 'pipe' : openSync('/dev/null', 'w');
  const err = openSync(stderrPath, 'w');
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', out, err] });
  if (typeof out === 'number') closeSync(out);
  closeSync(err);
  bench.track(child);
  return { name, child, stderrPath };
}

/**
 * Starts scripts/bench-receiver.ts in `mode` (BENCH_RECEIVER_MODE); it reports its port as the first
 * line on stdout, and the rest of that pipe is drained so the child can never block on it.
 */
export async function startReceiverChild(bench: Bench, name: string, mode: 'ok' | 'flaky'): Promise<ServerChild> {
  const c = spawnChild(bench, name, ['scripts/bench-receiver.ts'], { ...process.env, BENCH_RECEIVER_MODE: mode }, 'pipe');
  const { child } = c;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', () => reject(exitedError(c, 'reporting its port')));
  });
  const line = await Promise.race([first, sleep(READY_TIMEOUT_MS, 'timeout' as const)]);
  lines.close();
  child.stdout?.resume();
  if (line === 'timeout') throw new StartError(`${c.name} did not report its port within ${READY_TIMEOUT_MS} ms`);
  const { port } = JSON.parse(line) as { port: number };
  return { ...c, url: `http://127.0.0.1:${port}` };
}

/** GET `url` as JSON (10 s timeout); a non-2xx answer throws. */
export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return (await response.json()) as T;
}

/** The service's /metrics lines that start with `prefix`, joined for the report. */
export async function metricLines(server: ServerChild, prefix: string): Promise<string> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(prefix))
    .join(', ');
}

// autocannon ships no types and has no @types package; this is the part of its API the benchmarks use.
export interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
}
export interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  method: string;
  headers: Record<string, string>;
  requests: Array<{ setupRequest: (request: AutocannonRequest) => AutocannonRequest }>;
}
export interface AutocannonResult {
  requests: { average: number; total: number };
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}
export type AutocannonRun = EventEmitter & PromiseLike<AutocannonResult> & { stop(): void };
/** Runs autocannon, loaded on first use so that importing this module loads nothing. */
export function autocannon(options: AutocannonOptions): AutocannonRun {
  const run = createRequire(import.meta.url)('autocannon') as (options: AutocannonOptions) => AutocannonRun;
  return run(options);
}

/** Starts a server child on a free port of 127.0.0.1 (PORT and HOST set in `env`) and waits (up to `readyTimeoutMs`) for its /healthz. */
export async function startServer(bench: Bench, name: string, args: string[], env: NodeJS.ProcessEnv, readyTimeoutMs = READY_TIMEOUT_MS): Promise<ServerChild> {
  bench.signal.throwIfAborted();
  const port = await freePort();
  const spawned = spawnChild(bench, name, args, { ...env, HOST: '127.0.0.1', PORT: String(port) });
  const server = { ...spawned, url: `http://127.0.0.1:${port}` };
  await waitUntilHealthy(server, readyTimeoutMs);
  return server;
}

export async function waitUntilHealthy(server: ServerChild, readyTimeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (hasExited(server.child)) throw exitedError(server, '/healthz answered');
    try {
      const response = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new StartError(`${server.name} did not answer /healthz within ${readyTimeoutMs} ms`);
}

/** Sends `signal` (SIGTERM by default) and waits for the exit; SIGKILL after STOP_TIMEOUT_MS. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (hasExited(child)) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  // Unref'd: once the child has exited, this timer must not keep the bench alive for 15 s.
  const timer = sleep(STOP_TIMEOUT_MS, 'timeout' as const, { ref: false });
  if ((await Promise.race([exited, timer])) === 'timeout' && !hasExited(child)) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Runs `main` and sets process.exitCode to what it returns: 1 when it throws (a StartError as one
 * line `<name>: <message>`), 130 when interrupted. Every child is stopped and the scratch folder
 * removed in every case; Ctrl-C or a CI timeout must not leave a server holding a port.
 */
export async function runBench(bench: Bench, main: () => Promise<number>): Promise<void> {
  const cleanUp = async (): Promise<void> => {
    await Promise.all([...bench.live].map((child) => stopChild(child)));
    rmSync(bench.scratch, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      bench.progress(`${signal}: stopping`);
      bench.abort();
      void cleanUp().finally(() => process.exit(130));
    });
  }
  // Last resort if something throws past the handlers above: exit handlers cannot await.
  process.on('exit', () => {
    for (const child of bench.live) child.kill('SIGKILL');
  });

  let exitCode: number;
  try {
    exitCode = await main();
  } catch (error) {
    // After Ctrl-C the abort error is expected; the signal handler reports the exit.
    if (!bench.signal.aborted) console.error(error instanceof StartError ? `${bench.name}: ${error.message}` : error);
    exitCode = bench.signal.aborted ? 130 : 1;
  } finally {
    await cleanUp();
  }
  process.exitCode = exitCode;
}

/** CPU model, cores, RAM, Node and kernel, for the report's `machine:` line. */
export function machine(): string {
  const cpus = os.cpus();
  const gib = (os.totalmem() / 2 ** 30).toFixed(1);
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${gib} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

/** Other work on the machine skews every figure; the report says how busy it was. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}

/** Nearest-rank percentile of an ascending array. */
/**
 * The order in which round `round` (1-based) loads `count` targets: rotated by one each round
 * (0 1 2, 1 2 0, 2 0 1, …). This VM slows down over a run of loads (its speed drifts by tens of
 * per cent within a minute), so a target always loaded last would always meet the slowest machine;
 * rotated, each target takes each place equally often over a multiple of `count` rounds.
 */
export function roundOrder(round: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => (i + round - 1) % count);
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/**
 * A plain-text table: a header, a rule of dashes, then the rows, columns two spaces apart and as
 * wide as their widest cell; left-aligned unless `alignRight(column)`; no trailing spaces.
 */
export function table(header: string[], rows: string[][], alignRight: (column: number) => boolean = () => false): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((v, i) => (alignRight(i) ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
