import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { createBench, loadAverage, machine, metricLines, percentile, positiveInt, runBench, startServer, stopChild, type ServerChild as Service } from './bench-support.ts';

/**
 * `make bench-bookings`: book-and-pay throughput of the bookings API, and how long a paid booking
 * takes to read `confirmed`.
 *
 * The service runs in a child process (`node src/server.ts`, LOG_LEVEL=warn, stdout on /dev/null)
 * with MOCK_MIN_DELAY_MS=MOCK_MAX_DELAY_MS=0 (no simulated gateway delay), the default
 * EVENT_PROCESSING_DELAY_MS of 50 ms (the inbox processor's delay, part of "time to confirmed"),
 * WEBHOOK_MAX_RPS=0 (the default cap of 500/s would throttle the confirmations being timed) and a
 * PERFORMANCES_FILE catalog of 20 performances of 100 rows × 200 seats, so nothing sells out.
 *
 * BENCH_CONCURRENCY workers (default 32) each loop for BENCH_DURATION_S (default 10, after a 2 s
 * warm-up): POST /bookings (2 seats, with a webhookUrl), then POST /payments/execute (tok_visa,
 * CVV 120: always SUCCESS). Each call's latency is kept. "Time to confirmed" runs from the moment
 * the /payments/execute response arrived to the moment the `booking.confirmed` webhook for that
 * booking reached a receiver in this process: the processor's delay, the processing, and the
 * signed delivery. (Polling GET /bookings/my would add load and a polling interval to the figure.)
 *
 * Exit codes: 0 report printed; 1 the server failed to start, more than 0.1 % of calls failed, or
 * confirmations went missing, since then the figures mean nothing.
 */

const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 32);
const WARMUP_S = 2;
const PERFORMANCES = 20;
const ROWS = 100;
const SEATS_PER_ROW = 200;
const QUANTITY = 2;
/** How long to wait, after the load stops, for the last confirmations. */
const SETTLE_MS = 5_000;
const MAX_FAILURE_RATE = 0.001;

const bench = createBench('bench-bookings');
const { progress } = bench;

/** Row labels A…Z, AA…AZ, BA…: as many as asked, each one to three capital letters. */
function rowLabels(count: number): string[] {
  const labels: string[] = [];
  for (let i = 0; labels.length < count; i++) {
    let n = i;
    let label = '';
    do {
      label = String.fromCharCode(65 + (n % 26)) + label;
      n = Math.floor(n / 26) - 1;
    } while (n >= 0);
    labels.push(label);
  }
  return labels;
}

function writeCatalog(): string {
  const rows = rowLabels(ROWS);
  const catalog = Array.from({ length: PERFORMANCES }, (_, i) => ({
    id: `bench_${String(i + 1).padStart(2, '0')}`,
    title: `Bench performance ${i + 1}`,
    venue: 'Bench Arena',
    startsAt: '2026-12-31T10:00:00.000Z',
    rows,
    seatsPerRow: SEATS_PER_ROW,
  }));
  const file = path.join(bench.scratch, 'performances.json');
  writeFileSync(file, JSON.stringify(catalog));
  return file;
}

function startService(catalog: string): Promise<Service> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'warn',
    WEBHOOK_SECRET: 'whsec_YmVuY2gtZml4ZWQtdGVzdC1zZWNyZXQ=',
    MOCK_MIN_DELAY_MS: '0',
    MOCK_MAX_DELAY_MS: '0',
    WEBHOOK_MAX_RPS: '0',
    PERFORMANCES_FILE: catalog,
  };
  // The default processor delay is part of what is measured; tracing is not.
  delete env.EVENT_PROCESSING_DELAY_MS;
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return startServer(bench, 'the service', ['src/server.ts'], env);
}

/** The webhook receiver: notes when each booking's `booking.confirmed` arrived (performance.now()). */
interface Receiver {
  server: Server;
  url: string;
  confirmedAt: Map<string, number>;
  other: number;
}

async function startReceiver(): Promise<Receiver> {
  const confirmedAt = new Map<string, number>();
  const receiver = { confirmedAt, other: 0 } as Receiver;
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const at = performance.now();
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type?: string; bookingId?: string };
        if (body.type === 'booking.confirmed' && typeof body.bookingId === 'string') confirmedAt.set(body.bookingId, at);
        else receiver.other += 1;
      } catch {
        receiver.other += 1;
      }
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('receiver: no port');
  receiver.server = server;
  receiver.url = `http://127.0.0.1:${address.port}/hooks/bookings`;
  return receiver;
}

interface Samples {
  pairs: number;
  book: number[];
  execute: number[];
  /** Booking id → performance.now() when its /payments/execute response arrived. */
  paidAt: Map<string, number>;
  failures: Map<string, number>;
  calls: number;
}

function newSamples(): Samples {
  return { pairs: 0, book: [], execute: [], paidAt: new Map(), failures: new Map(), calls: 0 };
}

async function post(agent: Agent, url: string, user: string, body: unknown): Promise<{ status: number; json: Record<string, unknown>; ms: number }> {
  const started = performance.now();
  const res = await request(url, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': user }, body: JSON.stringify(body) });
  const json = (await res.body.json()) as Record<string, unknown>;
  return { status: res.statusCode, json, ms: performance.now() - started };
}

/** Runs book-and-pay pairs on every worker until `durationS` has passed; records into `samples` when given. */
async function drive(service: Service, agent: Agent, receiver: Receiver, durationS: number, samples: Samples, label: string): Promise<number> {
  const until = performance.now() + durationS * 1000;
  let sequence = 0;
  const started = performance.now();
  const worker = async (w: number): Promise<void> => {
    const user = `bench_${label}_${w}`;
    while (performance.now() < until && !bench.signal.aborted) {
      const performanceId = `bench_${String((sequence++ % PERFORMANCES) + 1).padStart(2, '0')}`;
      samples.calls += 1;
      let booked;
      try {
        booked = await post(agent, `${service.url}/bookings`, user, { performanceId, quantity: QUANTITY, paymentMethod: 'CREDIT_CARD', webhookUrl: receiver.url });
      } catch (error) {
        count(samples.failures, `POST /bookings: ${(error as Error).message}`);
        continue;
      }
      samples.book.push(booked.ms);
      if (booked.status !== 201) {
        count(samples.failures, `POST /bookings ${booked.status} ${String(booked.json.code)}`);
        continue;
      }
      const bookingId = booked.json.bookingId as string;
      samples.calls += 1;
      let paid;
      try {
        paid = await post(agent, `${service.url}/payments/execute`, user, { bookingId, paymentMethodToken: 'tok_visa', cvv: '120' });
      } catch (error) {
        count(samples.failures, `POST /payments/execute: ${(error as Error).message}`);
        continue;
      }
      samples.execute.push(paid.ms);
      if (paid.status !== 200 || paid.json.finalStatus !== 'SUCCESS') {
        count(samples.failures, `POST /payments/execute ${paid.status} ${String(paid.json.code ?? paid.json.finalStatus)}`);
        continue;
      }
      samples.paidAt.set(bookingId, performance.now());
      samples.pairs += 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  return (performance.now() - started) / 1000;
}

function count(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function stats(values: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = Float64Array.from(values).sort();
  return { n: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  const catalog = writeCatalog();
  const receiver = await startReceiver();
  const agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 30_000 });
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  try {
    progress('starting the service');
    service = await startService(catalog);
    progress(`warm-up ${WARMUP_S} s`);
    await drive(service, agent, receiver, WARMUP_S, newSamples(), 'warmup');
    bench.signal.throwIfAborted();
    progress(`measuring ${DURATION_S} s with ${CONCURRENCY} workers`);
    const samples = newSamples();
    const elapsedS = await drive(service, agent, receiver, DURATION_S, samples, 'run');
    bench.signal.throwIfAborted();

    // The last confirmations are still on their way (processor delay, delivery).
    const settleUntil = Date.now() + SETTLE_MS;
    const arrived = (): number => [...samples.paidAt.keys()].filter((id) => receiver.confirmedAt.has(id)).length;
    while (arrived() < samples.paidAt.size && Date.now() < settleUntil) await sleep(20);
    const confirm: number[] = [];
    for (const [id, paidAt] of samples.paidAt) {
      const at = receiver.confirmedAt.get(id);
      if (at !== undefined) confirm.push(at - paidAt);
    }
    const missing = samples.paidAt.size - confirm.length;
    const loadAfter = loadAverage();

    const book = stats(samples.book);
    const execute = stats(samples.execute);
    const confirmed = stats(confirm);
    const failures = [...samples.failures.values()].reduce((a, b) => a + b, 0);
    const ms = (v: number) => v.toFixed(2).padStart(8);
    console.log('');
    console.log('paysim bench-bookings: POST /bookings (2 seats, webhookUrl) then POST /payments/execute (tok_visa, CVV 120), in pairs');
    console.log(`machine: ${machine()}`);
    console.log(`load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
    console.log(`load: ${CONCURRENCY} workers (one pair at a time each) over ${CONCURRENCY} keep-alive connections, ${DURATION_S} s after a ${WARMUP_S} s warm-up; load generator and webhook receiver share the machine with the service`);
    console.log(
      `service: node src/server.ts, LOG_LEVEL=warn (stdout on /dev/null), MOCK_MIN_DELAY_MS=0, MOCK_MAX_DELAY_MS=0, EVENT_PROCESSING_DELAY_MS=50 (default), WEBHOOK_MAX_RPS=0, ${PERFORMANCES} performances × ${ROWS} rows × ${SEATS_PER_ROW} seats`,
    );
    console.log('');
    console.log(`pairs: ${samples.pairs} in ${elapsedS.toFixed(2)} s = ${(samples.pairs / elapsedS).toFixed(0)} pairs/s (${((2 * samples.pairs) / elapsedS).toFixed(0)} calls/s)`);
    console.log('');
    console.log('call                          n     p50 ms    p95 ms    p99 ms    max ms');
    console.log(`POST /bookings          ${String(book.n).padStart(7)} ${ms(book.p50)}  ${ms(book.p95)}  ${ms(book.p99)}  ${ms(book.max)}`);
    console.log(`POST /payments/execute  ${String(execute.n).padStart(7)} ${ms(execute.p50)}  ${ms(execute.p95)}  ${ms(execute.p99)}  ${ms(execute.max)}`);
    console.log(`execute → confirmed     ${String(confirmed.n).padStart(7)} ${ms(confirmed.p50)}  ${ms(confirmed.p95)}  ${ms(confirmed.p99)}  ${ms(confirmed.max)}`);
    console.log('  ("execute → confirmed": from the /payments/execute response to the booking.confirmed webhook reaching the receiver;');
    console.log('   it includes the 50 ms EVENT_PROCESSING_DELAY_MS)');
    console.log('');
    console.log(`failed calls: ${failures}${failures > 0 ? ` (${[...samples.failures].map(([k, v]) => `${k}: ${v}`).join('; ')})` : ''}`);
    console.log(`confirmations missing after ${SETTLE_MS / 1000} s: ${missing}; other webhooks received: ${receiver.other}`);
    console.log(`service metrics: ${await metricLines(service, 'bookings_total{status="confirmed"}')}; ${await metricLines(service, 'ledger_imbalance')}; ${await metricLines(service, 'seats_reserved')}`);
    console.log('');

    if (failures / Math.max(1, samples.calls) > MAX_FAILURE_RATE) {
      console.error(`bench-bookings: more than ${MAX_FAILURE_RATE * 100} % of calls failed`);
      return 1;
    }
    if (missing > 0) {
      console.error(`bench-bookings: ${missing} paid bookings never reported booking.confirmed`);
      return 1;
    }
    return 0;
  } finally {
    await agent.close();
    if (service !== undefined) await stopChild(service.child);
    await new Promise<void>((resolve) => {
      receiver.server.close(() => resolve());
      receiver.server.closeAllConnections();
    });
  }
}

await runBench(bench, main);
