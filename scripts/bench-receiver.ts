import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/**
 * The webhook receiver of `make bench-webhooks` (scripts/bench-webhooks.ts) and `make bench-v2`, run as its own child
 * process so that its CPU time is not mixed with the load generator's.
 *
 * It listens on 127.0.0.1, port 0, and writes one line `{"port": N}` to stdout once listening.
 * Every POST is recorded (receive time, the payload's `created_at` and `id`, the status answered)
 * in preallocated arrays, with no per-request logging or allocation beyond the body itself.
 *
 * BENCH_RECEIVER_MODE: `ok` (default) answers 200; `flaky` answers 500 to a random half of the
 * requests, with a fresh coin per request (a retry of the same event can fail again).
 *
 * GET /progress → cheap counters, polled while a run is going.
 * GET /stats?from=&to=&after= → the summary: counts, distinct event ids delivered (answered 200),
 * duplicates, latency percentiles (receive time − created_at, of requests answered 200), first
 * and last delivery times, how many requests arrived in [first + from, first + to) ms, and how
 * many were answered 200 at or after `after` (epoch ms).
 */

const MODE = process.env.BENCH_RECEIVER_MODE === 'flaky' ? 'flaky' : 'ok';

let capacity = 1 << 16;
/** Receive time in epoch ms, with sub-ms precision from the monotonic clock. */
let receivedAt = new Float64Array(capacity);
/** The event's `created_at` in epoch ms (NaN when the body could not be read). */
let createdAt = new Float64Array(capacity);
let answered = new Uint16Array(capacity);
const eventIds: string[] = new Array<string>(capacity);
let count = 0;
let nonPost = 0;

const origin = performance.timeOrigin;

function grow(): void {
  capacity *= 2;
  const r = new Float64Array(capacity);
  r.set(receivedAt);
  receivedAt = r;
  const c = new Float64Array(capacity);
  c.set(createdAt);
  createdAt = c;
  const a = new Uint16Array(capacity);
  a.set(answered);
  answered = a;
  eventIds.length = capacity;
}

/** `"key":"value"` out of the serialised payload, without a full JSON.parse per request. */
function field(body: string, key: string): string | undefined {
  const marker = `"${key}":"`;
  const start = body.indexOf(marker);
  if (start === -1) return undefined;
  const from = start + marker.length;
  const end = body.indexOf('"', from);
  return end === -1 ? undefined : body.slice(from, end);
}

function record(body: string): number {
  const now = origin + performance.now();
  if (count === capacity) grow();
  const i = count++;
  receivedAt[i] = now;
  const created = field(body, 'created_at');
  createdAt[i] = created === undefined ? Number.NaN : Date.parse(created);
  // The native and bookings payloads carry the event's `id`; a Payment Server v3 callback (bench-v2) names its payment.
  eventIds[i] = field(body, 'id') ?? field(body, 'payment_id') ?? '';
  const status = MODE === 'flaky' && Math.random() < 0.5 ? 500 : 200;
  answered[i] = status;
  return status;
}

function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

function round(value: number | null, digits = 2): number | null {
  return value === null || !Number.isFinite(value) ? null : Math.round(value * 10 ** digits) / 10 ** digits;
}

function progress() {
  let ok = 0;
  for (let i = 0; i < count; i++) if (answered[i] === 200) ok++;
  return { mode: MODE, requests: count, ok, first_at: count > 0 ? receivedAt[0] : null, last_at: count > 0 ? receivedAt[count - 1] : null, now: origin + performance.now() };
}

function stats(fromMs: number | null, toMs: number | null, after: number | null) {
  const delivered = new Map<string, number>();
  const seen = new Set<string>();
  const latencies = new Float64Array(count);
  let n = 0;
  let ok = 0;
  let firstOk = Number.POSITIVE_INFINITY;
  let lastOk = Number.NEGATIVE_INFINITY;
  let okAfter = 0;
  for (let i = 0; i < count; i++) {
    const id = eventIds[i] as string;
    seen.add(id);
    if (answered[i] !== 200) continue;
    ok++;
    delivered.set(id, (delivered.get(id) ?? 0) + 1);
    const at = receivedAt[i] as number;
    if (at < firstOk) firstOk = at;
    if (at > lastOk) lastOk = at;
    if (after !== null && at >= after) okAfter++;
    const latency = at - (createdAt[i] as number);
    if (Number.isFinite(latency)) latencies[n++] = latency;
  }
  let duplicates = 0;
  for (const times of delivered.values()) if (times > 1) duplicates += times - 1;
  const sorted = latencies.subarray(0, n).sort();
  const first = count > 0 ? (receivedAt[0] as number) : Number.NaN;
  let inWindow: number | null = null;
  if (fromMs !== null && toMs !== null && count > 0) {
    inWindow = 0;
    const lo = first + fromMs;
    const hi = first + toMs;
    for (let i = 0; i < count; i++) {
      const at = receivedAt[i] as number;
      if (at >= lo && at < hi) inWindow++;
    }
  }
  return {
    mode: MODE,
    requests: count,
    answered_200: ok,
    answered_500: count - ok,
    non_post: nonPost,
    distinct_events_seen: seen.size,
    distinct_events_delivered: delivered.size,
    duplicates,
    first_request_at: count > 0 ? first : null,
    last_request_at: count > 0 ? receivedAt[count - 1] : null,
    first_delivery_at: ok > 0 ? firstOk : null,
    last_delivery_at: ok > 0 ? lastOk : null,
    latency_ms: { p50: round(percentile(sorted, 50)), p90: round(percentile(sorted, 90)), p99: round(percentile(sorted, 99)), max: round(percentile(sorted, 100)) },
    window: fromMs === null || toMs === null ? null : { from_ms: fromMs, to_ms: toMs, requests: inWindow },
    delivered_after: after === null ? null : { at: after, requests: okAfter },
  };
}

function sendJson(res: ServerResponse, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function numberParam(params: URLSearchParams, name: string): number | null {
  const raw = params.get(name);
  if (raw === null || raw === '') return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.method === 'POST') {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      res.statusCode = record(body);
      res.end();
    });
    return;
  }
  const url = new URL(req.url ?? '/', 'http://receiver');
  if (url.pathname === '/progress') return sendJson(res, progress());
  if (url.pathname === '/stats') return sendJson(res, stats(numberParam(url.searchParams, 'from'), numberParam(url.searchParams, 'to'), numberParam(url.searchParams, 'after')));
  if (url.pathname === '/healthz') return sendJson(res, { ok: true });
  nonPost++;
  res.statusCode = 404;
  res.end();
});
// Longer than the dispatcher's keep-alive (10 s), so connections are reused for the whole run.
server.keepAliveTimeout = 30_000;

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('could not read the receiver port');
  process.stdout.write(`${JSON.stringify({ port: address.port, mode: MODE })}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(0));
