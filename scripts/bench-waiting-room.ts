import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import {
  autocannon,
  createBench,
  loadAverage,
  machine,
  metricLines,
  percentile,
  positiveInt,
  runBench,
  startServer,
  StartError,
  stopChild,
  table,
  type AutocannonRequest,
  type AutocannonResult,
  type ServerChild as Service,
} from './bench-support.ts';

/**
 * `make bench-waiting-room`: FluxPay's virtual waiting room (issue 12, "Tests and benchmark"):
 *
 * 1. enters per second: `POST /api/v1/waiting-rooms/{roomId}/enter`, a distinct user each time,
 *    into a room admitting BENCH_ADMIT_PER_SECOND a second (so enters also admit, as in a sale);
 * 2. ticket polls per second: `GET /api/v1/waiting-rooms/{roomId}/tickets/{ticket}`, round robin
 *    over BENCH_POLL_TICKETS tickets of a room where some are ADMITTED and most WAITING;
 *    the target for both: ≥ 5,000 operations a second on this machine;
 * 3. the admission-rate error over BENCH_ADMISSION_SECONDS (default 30): a room paused while
 *    rate × seconds × 1.2 users enter, then set to BENCH_ADMIT_PER_SECOND (default 200); the
 *    tickets are polled in entry order (the next ones due, every 100 ms) as clients would; the
 *    admissions whose `admittedAt` falls in the window are compared with rate × seconds, and so
 *    are those the polling clients saw by its end (they lag by one poll). The run also checks
 *    that admission followed entry order with no ticket skipped.
 *
 * Loads 1 and 2: autocannon (as `make bench-v2`), BENCH_CONCURRENCY connections (default 64) for
 * BENCH_DURATION_S each (default 10, after a 2 s warm-up). Operations per second are 2xx answers
 * per second. The service runs in a child process (`node src/server.ts`, LOG_LEVEL=warn, stdout
 * on /dev/null) with the default settings otherwise (load shedding included).
 *
 * Exit codes: 0 when the report was printed (targets met or not); 1 when the service did not
 * start, more than 0.1 % of the calls failed, or admission skipped a ticket or broke entry order;
 * 130 when interrupted.
 */

const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 64);
const ADMISSION_S = positiveInt('BENCH_ADMISSION_SECONDS', 30);
const RATE = positiveInt('BENCH_ADMIT_PER_SECOND', 200);
const POLL_TICKETS = positiveInt('BENCH_POLL_TICKETS', 2_000);
const WARMUP_S = 2;
const TARGET_OPS_PER_S = 5_000;
const TARGET_RATE_ERROR = 0.05;
const MAX_FAILURE_RATE = 0.001;
/** How often the clients of run 3 poll the tickets that are due next. */
const POLL_EVERY_MS = 100;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const bench = createBench('bench-waiting-room');
const { progress } = bench;

function startService(): Promise<Service> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'FLUXPAY_WEBHOOK_URL', 'FLUXPAY_POLICY_FILE', 'FLUXPAY_MAX_WAITING_TICKETS']) delete env[name];
  // Room for every ticket of the run: what is measured is entering, not refusals of a full store.
  env.FLUXPAY_MAX_WAITING_TICKETS = '5000000';
  return startServer(bench, 'the service', ['src/server.ts'], env);
}

async function call(pool: Pool, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<Json> {
  const res = await pool.request({ method, path, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = (await res.body.json()) as Json;
  if (res.statusCode >= 300 || json.isSuccess !== true) throw new StartError(`${method} ${path} answered ${res.statusCode} ${JSON.stringify(json).slice(0, 300)}`);
  return json.result as Json;
}

function putRoom(pool: Pool, roomId: string, admitPerSecond: number): Promise<Json> {
  return call(pool, 'PUT', `/api/v1/waiting-rooms/${roomId}`, { admitPerSecond, admissionTtlSeconds: 3600, protectedServiceIds: ['ai-writer'] });
}

/** `count` distinct users enter the paused room `roomId`, CONCURRENCY at a time; their tickets in entry order (a paused room's position is the entry order). */
async function enterMany(pool: Pool, roomId: string, prefix: string, count: number): Promise<Json[]> {
  const tickets: Json[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count && !bench.signal.aborted) {
        const i = next++;
        tickets.push(await call(pool, 'POST', `/api/v1/waiting-rooms/${roomId}/enter`, { userId: `${prefix}_${i}` }));
      }
    }),
  );
  bench.signal.throwIfAborted();
  return tickets.sort((a, b) => (a.position as number) - (b.position as number));
}

/** autocannon over `setupRequest` for `durationS`; every response's latency (ms) into `latencies` when given. */
function load(service: Service, method: 'GET' | 'POST', setupRequest: (request: AutocannonRequest) => AutocannonRequest, durationS: number, latencies?: number[]): PromiseLike<AutocannonResult> {
  const run = autocannon({ url: service.url, connections: CONCURRENCY, duration: durationS, method, headers: { 'content-type': 'application/json' }, requests: [{ setupRequest }] });
  const stop = () => run.stop();
  bench.signal.addEventListener('abort', stop, { once: true });
  run.on('done', () => bench.signal.removeEventListener('abort', stop));
  if (latencies !== undefined) run.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms));
  return run;
}

interface Measured {
  result: AutocannonResult;
  latencies: Float64Array;
}

async function measure(label: string, service: Service, method: 'GET' | 'POST', setupRequest: (request: AutocannonRequest) => AutocannonRequest): Promise<Measured> {
  progress(`${label}: warm-up ${WARMUP_S} s`);
  await load(service, method, setupRequest, WARMUP_S);
  bench.signal.throwIfAborted();
  progress(`${label}: measuring ${DURATION_S} s with ${CONCURRENCY} connections`);
  const latencies: number[] = [];
  const result = await load(service, method, setupRequest, DURATION_S, latencies);
  bench.signal.throwIfAborted();
  return { result, latencies: Float64Array.from(latencies).sort() };
}

interface AdmissionRun {
  entered: number;
  /** The server's admission times (epoch ms), in entry order, of every ticket seen ADMITTED. */
  admittedAt: number[];
  /** When the new rate took effect on the server (the room's updatedAt). */
  startedAt: number;
  /** Tickets the clients had seen ADMITTED when the window ended (wall clock). */
  seenByEnd: number;
  polls: number;
  roomAdmitted: number;
}

/**
 * Run 3: a paused room fills up, then admits at RATE; clients poll the tickets due next (in entry
 * order) every POLL_EVERY_MS until ADMISSION_S have passed, and once more after.
 */
async function admissionRun(pool: Pool): Promise<AdmissionRun> {
  const roomId = 'bench-admission';
  const count = Math.ceil(RATE * ADMISSION_S * 1.2);
  await putRoom(pool, roomId, 0);
  progress(`admission: ${count} users enter a paused room`);
  const tickets = await enterMany(pool, roomId, 'admission_user', count);
  const settled = tickets.map((t) => t.ticket as string);
  progress(`admission: ${RATE}/s for ${ADMISSION_S} s, tickets polled in entry order every ${POLL_EVERY_MS} ms`);
  const room = await putRoom(pool, roomId, RATE);
  const startedAt = Date.parse(room.updatedAt as string);
  const wallEnd = performance.now() + ADMISSION_S * 1000;
  const admittedAt: number[] = [];
  let polls = 0;
  // Poll the first ticket not yet seen admitted and the ones due within the next 200 ms.
  const batch = Math.ceil((RATE * 2 * POLL_EVERY_MS) / 1000) + 1;
  const pollRound = async (): Promise<void> => {
    const from = admittedAt.length;
    const answers = await Promise.all(settled.slice(from, from + batch).map((ticket) => call(pool, 'GET', `/api/v1/waiting-rooms/${roomId}/tickets/${ticket}`)));
    polls += answers.length;
    for (const answer of answers) {
      if (answer.status === 'WAITING') break;
      admittedAt.push(Date.parse(answer.admittedAt as string));
    }
  };
  while (performance.now() < wallEnd && !bench.signal.aborted) {
    const round = performance.now();
    await pollRound();
    await sleep(Math.max(0, POLL_EVERY_MS - (performance.now() - round)));
  }
  bench.signal.throwIfAborted();
  const seenByEnd = admittedAt.length;
  // Catch up with the admissions due in the window that the last poll had not seen yet.
  for (let i = 0; i < 20 && (admittedAt.at(-1) ?? 0) < startedAt + ADMISSION_S * 1000 && admittedAt.length < settled.length; i++) await pollRound();
  const after = await call(pool, 'GET', `/api/v1/waiting-rooms/${roomId}`);
  return { entered: count, admittedAt, startedAt, seenByEnd, polls, roomAdmitted: after.admitted as number };
}

function opsRow(name: string, m: Measured): string[] {
  return [name, `${(m.result['2xx'] / DURATION_S).toFixed(0)} (${m.result['2xx']} in ${DURATION_S} s)`];
}

function latencyRow(name: string, m: Measured): string[] {
  const ms = (p: number) => percentile(m.latencies, p).toFixed(2);
  return [`${name}: p50 / p99 / max ms`, `${ms(50)} / ${ms(99)} / ${ms(100)}`];
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  progress('starting the service');
  const service = await startService();
  const pool = new Pool(service.url, { connections: CONCURRENCY, pipelining: 1 });
  try {
    // 1. enters
    await putRoom(pool, 'bench-enter', RATE);
    let user = 0;
    const enterBody = (request: AutocannonRequest): AutocannonRequest => ({ ...request, method: 'POST', path: '/api/v1/waiting-rooms/bench-enter/enter', body: `{"userId":"bench_user_${++user}"}` });
    const enters = await measure('enters', service, 'POST', enterBody);

    // 2. ticket polls
    await putRoom(pool, 'bench-poll', 0);
    const pollTickets = (await enterMany(pool, 'bench-poll', 'poll_user', POLL_TICKETS)).map((t) => t.ticket as string);
    await putRoom(pool, 'bench-poll', RATE); // some get admitted while they are polled
    let poll = 0;
    const pollPath = (request: AutocannonRequest): AutocannonRequest => ({ ...request, method: 'GET', path: `/api/v1/waiting-rooms/bench-poll/tickets/${pollTickets[poll++ % pollTickets.length] as string}` });
    const polls = await measure('polls', service, 'GET', pollPath);
    const loadAfterLoads = loadAverage();

    // 3. the admission rate over ADMISSION_S
    const admission = await admissionRun(pool);
    const loadAfter = loadAverage();

    const windowEnd = admission.startedAt + ADMISSION_S * 1000;
    const inWindow = admission.admittedAt.filter((at) => at < windowEnd).length;
    const expected = RATE * ADMISSION_S;
    const error = (inWindow - expected) / expected;
    const seenError = (admission.seenByEnd - expected) / expected;
    const inOrder = admission.admittedAt.every((at, i) => i === 0 || at >= (admission.admittedAt[i - 1] as number));
    const startsAtRate = admission.admittedAt[0] === admission.startedAt;

    const failures = (m: Measured) => m.result.non2xx + m.result.errors + m.result.timeouts;
    const enterOps = enters.result['2xx'] / DURATION_S;
    const pollOps = polls.result['2xx'] / DURATION_S;
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`;

    console.log('');
    console.log('paysim bench-waiting-room: FluxPay waiting rooms: enters/s (distinct users), ticket polls/s, and the admission rate over a window');
    console.log(`machine: ${machine()}`);
    console.log(`load average (1/5/15 min): ${loadBefore} at the start, ${loadAfterLoads} after the enter and poll loads, ${loadAfter} at the end`);
    console.log(`load: autocannon, ${CONCURRENCY} connections (one call at a time each), ${DURATION_S} s per figure after a ${WARMUP_S} s warm-up; the load generator and the service share the machine's cores`);
    console.log('service: node src/server.ts, LOG_LEVEL=warn (stdout on /dev/null), FLUXPAY_MAX_WAITING_TICKETS=5000000, otherwise the defaults');
    console.log('');
    console.log(
      table(
        ['figure', 'value'],
        [
          opsRow(`enters/s (2xx, a distinct user each, room admitting ${RATE}/s)`, enters),
          latencyRow('enter', enters),
          opsRow(`ticket polls/s (2xx, round robin over ${POLL_TICKETS} tickets)`, polls),
          latencyRow('poll', polls),
          ['other answers: enters / polls (non-2xx, errors, timeouts)', `${failures(enters)} / ${failures(polls)}`],
          [`admitted in ${ADMISSION_S} s at ${RATE}/s (server's admittedAt)`, `${inWindow} of ${expected} expected: error ${pct(error)}`],
          [`seen ADMITTED by polling clients at the window's end`, `${admission.seenByEnd}: error ${pct(seenError)} (${admission.polls} polls)`],
          ['admission order', `${inOrder && startsAtRate ? 'entry order, none skipped, first at the rate change' : 'BROKEN'} (${admission.admittedAt.length} admitted of ${admission.entered} entered; room says ${admission.roomAdmitted})`],
        ],
      ),
    );
    console.log('');
    console.log(`targets: ≥ ${TARGET_OPS_PER_S.toLocaleString('en-US')} operations/s: enters ${enterOps >= TARGET_OPS_PER_S ? 'met' : 'missed'} (${enterOps.toFixed(0)}/s), polls ${pollOps >= TARGET_OPS_PER_S ? 'met' : 'missed'} (${pollOps.toFixed(0)}/s); admission rate within ±${TARGET_RATE_ERROR * 100} %: ${Math.abs(error) <= TARGET_RATE_ERROR ? 'met' : 'missed'} (${pct(error)})`);
    console.log(`service metrics: ${await metricLines(service, 'fluxpay_waiting_room_admissions_total')}; ${await metricLines(service, 'fluxpay_waiting_room_queue_length')}`);
    console.log('');

    for (const [name, m] of [['enters', enters], ['polls', polls]] as const) {
      if (failures(m) / Math.max(1, m.result['2xx'] + failures(m)) > MAX_FAILURE_RATE) {
        console.error(`bench-waiting-room: more than ${MAX_FAILURE_RATE * 100} % of the ${name} failed`);
        return 1;
      }
    }
    if (!inOrder || !startsAtRate) {
      console.error('bench-waiting-room: admission did not follow entry order at the rate change');
      return 1;
    }
    return 0;
  } finally {
    await pool.close();
    await stopChild(service.child);
  }
}

await runBench(bench, main);
