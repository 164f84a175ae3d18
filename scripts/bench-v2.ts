import { setTimeout as sleep } from 'node:timers/promises';
import {
  autocannon,
  createBench,
  getJson,
  loadAverage,
  machine,
  metricLines,
  percentile,
  positiveInt,
  runBench,
  startReceiverChild,
  startServer,
  StartError,
  stopChild,
  table,
  type AutocannonResult,
  type ServerChild as Service,
} from './bench-support.ts';

/**
 * `make bench-v2`: the Payment Server v3 API (`/api/v2`, issue 10): payments per second, each one
 * auto-completed with its signed callback to a local receiver that answers at once, the latency
 * of the create call (which waits for that callback), and callbacks per second.
 *
 * The service runs in a child process (`node src/server.ts`, LOG_LEVEL=warn, stdout on
 * /dev/null) with V2_COMPLETE_DELAY_MS=0 (the default), WEBHOOK_MAX_RPS=0 (the default cap of
 * 500 callbacks a second would be the figure measured) and WEBHOOK_CONCURRENCY =
 * WEBHOOK_ORIGIN_CONCURRENCY = BENCH_CONCURRENCY: every create waits for its callback, so with one
 * receiver the creates answered per second are at most the callbacks in flight to that origin
 * (32 by default) ÷ one callback's round trip; BENCH_ORIGIN_CONCURRENCY sets another value (32:
 * the defaults). The receiver is scripts/bench-receiver.ts
 * in a child process of its own, on 127.0.0.1, answering 200 at once; it counts each callback
 * and the payment it is about.
 *
 * Load: autocannon (as `make bench`), BENCH_CONCURRENCY connections (default 64) for
 * BENCH_DURATION_S (default 10, after a 2 s warm-up): POST /api/v2/payments, the document's body
 * with a fresh tx_id each time. Payments per second are the 2xx answers per second, each the
 * answer of a payment whose callback's first attempt was made before it; the service's
 * v2_payments_total says how many of them completed (their callback acknowledged) and the
 * receiver how many callbacks arrived in the same window, and the run fails unless all of them did.
 * The create call's latency is every response's, as autocannon measured it.
 *
 * Exit codes: 0 when the report was printed (target met or not); 1 when a server did not start
 * or more than 0.1 % of the calls failed (then the figures mean nothing); 130 when interrupted.
 */

const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 64);
const ORIGIN_CONCURRENCY = positiveInt('BENCH_ORIGIN_CONCURRENCY', CONCURRENCY);
const WARMUP_S = 2;
const TARGET_PAYMENTS_PER_S = 3_000;
const MAX_FAILURE_RATE = 0.001;
/** How long to wait, after the load stops, for callbacks still on their way (there should be none). */
const SETTLE_MS = 3_000;
const SECRET = 'bench_v2_fixed_payment_webhook_secret';

const bench = createBench('bench-v2');
const { progress } = bench;

interface ReceiverProgress {
  requests: number;
  ok: number;
}

interface ReceiverStats {
  requests: number;
  answered_200: number;
  distinct_events_delivered: number;
  duplicates: number;
  latency_ms: { p50: number | null; p90: number | null; p99: number | null; max: number | null };
}

function startReceiver(): Promise<Service> {
  return startReceiverChild(bench, 'the receiver', 'ok');
}

function startService(): Promise<Service> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'warn',
    WEBHOOK_SECRET: 'whsec_YmVuY2gtdjItZml4ZWQtd2ViaG9vay1zZWNyZXQ=',
    PAYMENT_WEBHOOK_SECRET: SECRET,
    WEBHOOK_MAX_RPS: '0',
    V2_COMPLETE_DELAY_MS: '0',
    WEBHOOK_CONCURRENCY: String(Math.max(64, ORIGIN_CONCURRENCY)),
    WEBHOOK_ORIGIN_CONCURRENCY: String(ORIGIN_CONCURRENCY),
  };
  // The defaults are what is measured; tracing is not.
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'V2_DEFAULT_SCENARIO', 'V2_REQUIRE_AUTH', 'V2_EXTRA_SIGNATURE_SCHEMES', 'SERVICE_AUTH_TOKEN']) delete env[name];
  return startServer(bench, 'the service', ['src/server.ts'], env);
}

/** Every payment gets its own tx_id, across the warm-up and the run. */
let sequence = 0;

function paymentBody(callbackUrl: string): string {
  sequence += 1;
  return `{"version":"v2","tx_id":"bench_${sequence}","order_id":${sequence},"user_id":${sequence % 1000},"amount":1000,"callback_url":"${callbackUrl}"}`;
}

/** Loads the create route for `durationS`; every response's latency (ms) goes into `latencies` when given. */
async function load(service: Service, callbackUrl: string, durationS: number, latencies?: number[]): Promise<AutocannonResult> {
  const run = autocannon({
    url: `${service.url}/api/v2/payments`,
    connections: CONCURRENCY,
    duration: durationS,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (request) => ({ ...request, body: paymentBody(callbackUrl) }) }],
  });
  const stop = () => run.stop();
  bench.signal.addEventListener('abort', stop, { once: true });
  run.on('done', () => bench.signal.removeEventListener('abort', stop));
  if (latencies !== undefined) run.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms));
  return run;
}

/** One sample of a metric of the service (0 when absent). */
async function sample(service: Service, name: string): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

/** One create outside the measurement, so a broken route fails loudly instead of as a run of errors. */
async function checkRoute(service: Service, callbackUrl: string): Promise<void> {
  const response = await fetch(`${service.url}/api/v2/payments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: paymentBody(callbackUrl) });
  const text = await response.text();
  if (response.status !== 200 || !text.includes('"status":"PAYMENT_COMPLETED"')) throw new StartError(`POST /api/v2/payments answered ${response.status} ${text.slice(0, 300)}`);
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  progress('starting the receiver and the service');
  const receiver = await startReceiver();
  const callbackUrl = `${receiver.url}/api/orders/payment/webhook/v2`;
  let service: Service | undefined;
  try {
    service = await startService();
    await checkRoute(service, callbackUrl);
    progress(`warm-up ${WARMUP_S} s`);
    await load(service, callbackUrl, WARMUP_S);
    bench.signal.throwIfAborted();

    progress(`measuring ${DURATION_S} s with ${CONCURRENCY} connections`);
    const before = { received: (await getJson<ReceiverProgress>(`${receiver.url}/progress`)).requests, created: await sample(service, 'v2_payments_total{status="PENDING"}'), completed: await sample(service, 'v2_payments_total{status="PAYMENT_COMPLETED"}') };
    const latencies: number[] = [];
    const result = await load(service, callbackUrl, DURATION_S, latencies);
    bench.signal.throwIfAborted();
    const loadAfter = loadAverage();
    // A callback is acknowledged before its create answers: nothing should still be on its way.
    const settleUntil = Date.now() + SETTLE_MS;
    const counts = async () => ({ received: (await getJson<ReceiverProgress>(`${receiver.url}/progress`)).requests, created: await sample(service as Service, 'v2_payments_total{status="PENDING"}'), completed: await sample(service as Service, 'v2_payments_total{status="PAYMENT_COMPLETED"}') });
    let after = await counts();
    while ((after.completed < after.created || after.received < after.created - before.created + before.received) && Date.now() < settleUntil) {
      await sleep(50);
      after = await counts();
    }
    const stats = await getJson<ReceiverStats>(`${receiver.url}/stats`);

    const elapsedS = DURATION_S;
    const sorted = Float64Array.from(latencies).sort();
    const ms = (p: number) => percentile(sorted, p).toFixed(2);
    const created = after.created - before.created;
    const completed = after.completed - before.completed;
    const received = after.received - before.received;
    const paymentsPerS = result['2xx'] / elapsedS;
    const callbacksPerS = received / elapsedS;
    const failures = result.non2xx + result.errors + result.timeouts;
    const calls = result['2xx'] + failures;
    const met = paymentsPerS >= TARGET_PAYMENTS_PER_S;

    console.log('');
    console.log('paysim bench-v2: POST /api/v2/payments (the document’s body, a fresh tx_id each), each auto-completed with its signed callback before it answers');
    console.log(`machine: ${machine()}`);
    console.log(`load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
    console.log(`load: autocannon, ${CONCURRENCY} connections (one call at a time each), ${DURATION_S} s after a ${WARMUP_S} s warm-up; the load generator, the service and the receiver share the machine's cores`);
    console.log(
      `service: node src/server.ts, LOG_LEVEL=warn (stdout on /dev/null), V2_COMPLETE_DELAY_MS=0, WEBHOOK_MAX_RPS=0, WEBHOOK_CONCURRENCY=${Math.max(64, ORIGIN_CONCURRENCY)}, WEBHOOK_ORIGIN_CONCURRENCY=${ORIGIN_CONCURRENCY}; receiver: scripts/bench-receiver.ts on 127.0.0.1, 200 at once`,
    );
    console.log('');
    console.log(
      table(
        ['figure', 'value'],
        [
          ['payments/s (2xx answers)', `${paymentsPerS.toFixed(0)} (${result['2xx']} in ${elapsedS} s)`],
          ['of them PAYMENT_COMPLETED (v2_payments_total)', `${completed} of ${created} created`],
          ['create call p50 / p95 / p99 / max ms', `${ms(50)} / ${ms(95)} / ${ms(99)} / ${ms(100)} (${sorted.length} calls)`],
          ['callbacks/s (received)', `${callbacksPerS.toFixed(0)} (${received} in the same window)`],
          ['callback event → received p50 / p99 ms (receiver)', `${stats.latency_ms.p50 ?? '-'} / ${stats.latency_ms.p99 ?? '-'}`],
          ['callbacks received in all / distinct payments / duplicates', `${stats.requests} / ${stats.distinct_events_delivered} / ${stats.duplicates}`],
          ['other answers (non-2xx, errors, timeouts)', `${result.non2xx} / ${result.errors} / ${result.timeouts}`],
        ],
      ),
    );
    console.log('');
    console.log(`target: ≥ ${TARGET_PAYMENTS_PER_S.toLocaleString('en-US')} payments/s: ${met ? 'met' : 'missed'} (${paymentsPerS.toFixed(0)}/s measured in this run)`);
    console.log(`service metrics: ${await metricLines(service, 'v2_payments_total')}; ${await metricLines(service, 'webhook_attempts_total{outcome="success"}')}`);
    console.log('');

    if (failures / Math.max(1, calls) > MAX_FAILURE_RATE) {
      console.error(`bench-v2: more than ${MAX_FAILURE_RATE * 100} % of the calls failed`);
      return 1;
    }
    if (completed < created || received < created) {
      console.error(`bench-v2: of ${created} payments created, ${completed} completed and ${received} callbacks arrived`);
      return 1;
    }
    if (stats.duplicates > 0) {
      console.error(`bench-v2: ${stats.duplicates} payments were called back more than once`);
      return 1;
    }
    return 0;
  } finally {
    if (service !== undefined) await stopChild(service.child);
    await stopChild(receiver.child);
  }
}

await runBench(bench, main);
