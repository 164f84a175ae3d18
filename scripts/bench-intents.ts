import { autocannon, percentile, StartError, startServer, table, type AutocannonRun, type Bench, type ServerChild } from './bench-support.ts';

/**
 * The load of `make bench` and `make bench-faults`: `POST /v1/sim/intent` with a fresh
 * reservation id per request, measured by autocannon against a server child, one round at a time.
 * Shared so both benchmarks send exactly the same requests and report the same columns.
 */

export interface IntentRow {
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

export interface IntentLoadOptions {
  connections: number;
  durationS: number;
  warmupS: number;
}

export interface IntentLoad {
  /** Starts a target, checks its route and warms it up; it then idles until its rounds. */
  prepare(label: string, script: string, env: NodeJS.ProcessEnv): Promise<ServerChild>;
  /** One round of load against a server that is already up: its figures. */
  measure(label: string, server: ServerChild): Promise<IntentRow>;
}

/**
 * One autocannon run of `POST /v1/sim/intent` against `server`, each request with the body
 * `body()` makes; stopped when the bench is interrupted (a stopping server is not hammered until
 * the duration is over).
 */
export function intentRun(bench: Bench, server: ServerChild, options: { connections: number; seconds: number; body: () => string }): AutocannonRun {
  const run = autocannon({
    url: `${server.url}/v1/sim/intent`,
    connections: options.connections,
    duration: options.seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // setupRequest rather than idReplacement: the latter precomputes Content-Length for a fixed
    // id length, while this builds each request (and its length) from the actual body.
    requests: [{ setupRequest: (request) => ({ ...request, body: options.body() }) }],
  });
  const stop = () => run.stop();
  bench.signal.addEventListener('abort', stop, { once: true });
  run.on('done', () => bench.signal.removeEventListener('abort', stop));
  return run;
}

export function intentLoad(bench: Bench, options: IntentLoadOptions): IntentLoad {
  const { connections, durationS, warmupS } = options;
  /** Every request gets its own reservation id, across targets and runs, as real clients would send. */
  let sequence = 0;
  const intentBody = (): string => {
    sequence += 1;
    return `{"reservation_id":"res_bench_${sequence}","amount":1000}`;
  };

  /** One request outside the measurement, so a broken route fails loudly instead of as a row of 4xx. */
  const checkRoute = async (server: ServerChild): Promise<void> => {
    const response = await fetch(`${server.url}/v1/sim/intent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: intentBody() });
    const text = await response.text();
    if (response.status !== 200 || !text.includes('"status":"PENDING"')) {
      throw new StartError(`${server.name}: POST /v1/sim/intent answered ${response.status} ${text.slice(0, 300)}`);
    }
  };

  const load = (server: ServerChild, seconds: number): AutocannonRun => intentRun(bench, server, { connections, seconds, body: intentBody });

  return {
    async prepare(label, script, env) {
      bench.progress(`${label}: starting`);
      const server = await startServer(bench, label, [script], env);
      await checkRoute(server);
      bench.progress(`${label}: warm-up ${warmupS} s`);
      await load(server, warmupS);
      return server;
    },
    async measure(label, server) {
      bench.signal.throwIfAborted();
      bench.progress(`${label}: measuring ${durationS} s`);
      // autocannon's latency percentiles stop at p90/p97.5, so every response time is kept for p95.
      // Like autocannon's defaults, non-2xx responses count too.
      const latencies: number[] = [];
      const run = load(server, durationS);
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
    },
  };
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

export function formatIntentTable(rows: IntentRow[]): string {
  const header = ['target', 'req/s (avg)', 'requests', 'p50 ms', 'p95 ms', 'p99 ms', 'non-2xx', 'errors', 'timeouts'];
  const cells = rows.map((r) => [r.label, r.rps.toFixed(0), String(r.total), r.p50.toFixed(2), r.p95.toFixed(2), r.p99.toFixed(2), String(r.non2xx), String(r.errors), String(r.timeouts)]);
  return table(header, cells, (column) => column > 0);
}

/** Rows where more than `maxRate` of the requests failed: their figures mean nothing. */
export function failingRows(rows: IntentRow[], maxRate: number): IntentRow[] {
  return rows.filter((r) => (r.non2xx + r.errors) / Math.max(1, r.total + r.errors) > maxRate);
}

/** The service as deployed by default, apart from the port, a fixed secret and (if set) tracing. */
export function serviceEnv(logLevel: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: logLevel, WEBHOOK_SECRET: 'whsec_YmVuY2gtZml4ZWQtdGVzdC1zZWNyZXQ=', ...extra };
  // Tracing would export to a collector; the benchmark measures the default, untraced service.
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return env;
}
