import { Pool } from 'undici';
import { createBench, loadAverage, machine, metricLines, percentile, positiveInt, runBench, startServer, StartError, stopChild, table, type ServerChild as Service } from './bench-support.ts';

/**
 * `make bench-fluxpay`: the FluxPay engine API (issue 11): complete flows per second, each
 * order → payment → confirm → `service.usage.requested` (the paid order held by a saga) →
 * `service.usage.completed` (order COMPLETED, payment CONFIRMED), five calls one after another,
 * with no delay anywhere (the card approves at once, no scenario waits). Document 002's targets:
 * 1,000 TPS and zero duplicate charges.
 *
 * The service runs in a child process (`node src/server.ts`, LOG_LEVEL=warn, stdout on
 * /dev/null), with no webhook subscriber (the outbox is still written and published: the relay
 * runs for every change). The load is BENCH_CONCURRENCY flows at once (default 64), each on its
 * own keep-alive connection of one undici Pool to 127.0.0.1, for BENCH_DURATION_S (default 10,
 * after a 2 s warm-up). A flow counts when all its five calls answered 2xx with the expected
 * states; the p99 of each call is over every call of the measured window.
 *
 * After the load: `GET /api/v1/reconciliation` (it must list no mismatch and no duplicate charge)
 * and the outbox's depth once the relay has caught up.
 *
 * Exit codes: 0 when the report was printed (target met or not); 1 when the service did not start,
 * more than 0.1 % of the flows failed, or the reconciliation found a mismatch or a duplicate
 * charge; 130 when interrupted.
 */

const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 64);
const WARMUP_S = 2;
const TARGET_FLOWS_PER_S = 1_000;
const MAX_FAILURE_RATE = 0.001;
const SETTLE_MS = 5_000;

/** A JSON answer, read loosely: the fields the flow checks. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const bench = createBench('bench-fluxpay');
const { progress } = bench;

const CALLS = ['order', 'payment', 'confirm', 'requested', 'completed'] as const;
type Call = (typeof CALLS)[number];

interface Recorder {
  flows: number;
  failures: number;
  firstFailure: string | undefined;
  latencies: Record<Call, number[]> | undefined;
}

function startService(): Promise<Service> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', WEBHOOK_SECRET: 'whsec_YmVuY2gtZmx1eHBheS1maXhlZC1zZWNyZXQ=' };
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'FLUXPAY_WEBHOOK_URL', 'FLUXPAY_POLICY_FILE', 'FLUXPAY_MAX_RECORDS']) delete env[name];
  // Room for every order of the run: the measurement is of flows, not of evictions.
  env.FLUXPAY_MAX_RECORDS = '2000000';
  return startServer(bench, 'the service', ['src/server.ts'], env);
}

let sequence = 0;

async function call(pool: Pool, path: string, body: unknown): Promise<{ status: number; json: Json }> {
  const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.body.json()) as Json;
  return { status: res.statusCode, json };
}

/** One whole flow; throws with what went wrong. */
async function flow(pool: Pool, latencies: Record<Call, number[]> | undefined): Promise<void> {
  const n = ++sequence;
  const userId = `bench_user_${n % 5000}`;
  const timed = async (name: Call, path: string, body: unknown) => {
    const started = performance.now();
    const answer = await call(pool, path, body);
    latencies?.[name].push(performance.now() - started);
    if (answer.status !== 200 || answer.json.isSuccess !== true) throw new Error(`${name}: ${answer.status} ${JSON.stringify(answer.json).slice(0, 200)}`);
    return answer.json.result as Json;
  };
  const order = await timed('order', '/api/v1/orders', { userId, serviceId: 'ai-writer', orderName: `bench ${n}`, amount: 1000 });
  const payment = await timed('payment', '/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123' } });
  const approved = await timed('confirm', '/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: order.orderId, amount: 1000 });
  if (approved.status !== 'APPROVED') throw new Error(`confirm: ${approved.status}`);
  const requested = await timed('requested', '/api/v1/events', { eventId: `bench-req-${n}`, type: 'service.usage.requested', userId, serviceId: 'ai-writer', usageId: `bench-use-${n}`, orderId: order.orderId });
  if (requested.saga?.status !== 'RUNNING') throw new Error(`requested: saga ${requested.saga?.status}`);
  const completed = await timed('completed', '/api/v1/events', { eventId: `bench-done-${n}`, type: 'service.usage.completed', userId, serviceId: 'ai-writer', usageId: `bench-use-${n}` });
  if (completed.saga?.status !== 'COMPLETED') throw new Error(`completed: saga ${completed.saga?.status}`);
}

async function load(pool: Pool, durationS: number, recorder: Recorder): Promise<void> {
  const until = Date.now() + durationS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < until && !bench.signal.aborted) {
        try {
          await flow(pool, recorder.latencies);
          recorder.flows++;
        } catch (error) {
          recorder.failures++;
          recorder.firstFailure ??= (error as Error).message;
        }
      }
    }),
  );
}

async function getResult(service: Service, path: string): Promise<Json> {
  const res = await fetch(`${service.url}${path}`);
  const json = (await res.json()) as Json;
  if (res.status !== 200) throw new StartError(`GET ${path} answered ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json.result as Json;
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  progress('starting the service');
  const service = await startService();
  const pool = new Pool(service.url, { connections: CONCURRENCY, pipelining: 1 });
  try {
    const check: Recorder = { flows: 0, failures: 0, firstFailure: undefined, latencies: undefined };
    await flow(pool, undefined).catch((error: unknown) => {
      throw new StartError(`one flow outside the measurement failed: ${(error as Error).message}`);
    });
    progress(`warm-up ${WARMUP_S} s`);
    await load(pool, WARMUP_S, check);
    bench.signal.throwIfAborted();

    progress(`measuring ${DURATION_S} s with ${CONCURRENCY} flows at once`);
    const measured: Recorder = { flows: 0, failures: 0, firstFailure: undefined, latencies: { order: [], payment: [], confirm: [], requested: [], completed: [] } };
    const started = performance.now();
    await load(pool, DURATION_S, measured);
    const elapsedS = (performance.now() - started) / 1000;
    bench.signal.throwIfAborted();
    const loadAfter = loadAverage();

    // The relay publishes what the last calls wrote.
    const settleUntil = Date.now() + SETTLE_MS;
    let report = await getResult(service, '/api/v1/reconciliation');
    while (report.outbox.pending > 0 && Date.now() < settleUntil) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      report = await getResult(service, '/api/v1/reconciliation');
    }

    const flowsPerS = measured.flows / elapsedS;
    const latencies = measured.latencies as Record<Call, number[]>;
    const p = (name: Call, q: number) => percentile(Float64Array.from(latencies[name]).sort(), q).toFixed(2);
    const all = Float64Array.from(CALLS.flatMap((name) => latencies[name])).sort();
    const totalFlows = check.flows + measured.flows + 1;
    const met = flowsPerS >= TARGET_FLOWS_PER_S;

    console.log('');
    console.log('paysim bench-fluxpay: complete flows, each order → payment → confirm → service.usage.requested → service.usage.completed (five calls in a row), no delays');
    console.log(`machine: ${machine()}`);
    console.log(`load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
    console.log(`load: ${CONCURRENCY} flows at once over one undici Pool (${CONCURRENCY} keep-alive connections to 127.0.0.1), ${DURATION_S} s after a ${WARMUP_S} s warm-up; the load generator and the service share the machine's cores`);
    console.log('service: node src/server.ts, LOG_LEVEL=warn (stdout on /dev/null), no webhook subscriber (the outbox is written and published all the same)');
    console.log('');
    console.log(
      table(
        ['figure', 'value'],
        [
          ['flows/s (all five calls 2xx, states as expected)', `${flowsPerS.toFixed(0)} (${measured.flows} in ${elapsedS.toFixed(1)} s); calls/s ${((measured.flows * 5) / elapsedS).toFixed(0)}`],
          ['failed flows', `${measured.failures}${measured.firstFailure === undefined ? '' : ` (first: ${measured.firstFailure})`}`],
          ...CALLS.map((name) => [`${name}: p50 / p99 / max ms`, `${p(name, 50)} / ${p(name, 99)} / ${p(name, 100)}`]),
          ['any call: p50 / p99 ms', `${percentile(all, 50).toFixed(2)} / ${percentile(all, 99).toFixed(2)}`],
          ['duplicate charges (reconciliation)', String(report.duplicateCharges)],
          ['reconciliation', `${report.consistent === true ? 'consistent' : 'MISMATCHES'}: ${report.mismatches.length} mismatches; orders ${report.orders.total} (${report.orders.COMPLETED} COMPLETED), payments ${report.payments.CONFIRMED} CONFIRMED, sagas ${report.sagas.completed} COMPLETED / ${report.sagas.running} RUNNING`],
          ['outbox after the run', `${report.outbox.pending} pending, ${report.outbox.published} published`],
        ],
      ),
    );
    console.log('');
    console.log(`target: ≥ ${TARGET_FLOWS_PER_S.toLocaleString('en-US')} flows/s: ${met ? 'met' : 'missed'} (${flowsPerS.toFixed(0)}/s measured in this run); duplicate charges: ${report.duplicateCharges} (target 0)`);
    console.log(`service metrics: ${await metricLines(service, 'fluxpay_sagas_total')}; ${await metricLines(service, 'fluxpay_outbox_depth')}`);
    console.log('');

    if (measured.failures / Math.max(1, measured.flows + measured.failures) > MAX_FAILURE_RATE) {
      console.error(`bench-fluxpay: more than ${MAX_FAILURE_RATE * 100} % of the flows failed`);
      return 1;
    }
    if (report.consistent !== true || report.duplicateCharges !== 0) {
      console.error(`bench-fluxpay: the reconciliation found ${report.mismatches.length} mismatches and ${report.duplicateCharges} duplicate charges: ${JSON.stringify(report.mismatches.slice(0, 5))}`);
      return 1;
    }
    if (report.orders.COMPLETED < totalFlows - check.failures - measured.failures) {
      console.error(`bench-fluxpay: ${report.orders.COMPLETED} orders COMPLETED, fewer than the ${totalFlows} flows that succeeded`);
      return 1;
    }
    return 0;
  } finally {
    await pool.close();
    await stopChild(service.child);
  }
}

await runBench(bench, main);
