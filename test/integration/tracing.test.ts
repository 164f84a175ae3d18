import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serverProcesses, type ServerProcess } from '../helpers/child.ts';
import { startCollector, type Collector, type ReceivedSpan } from '../helpers/otlp-collector.ts';
import { closedPort, eventually, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { redisServerOrSkip, startRedis, type TestRedis } from '../helpers/redis.ts';

/**
 * Tracing as a team's collector sees it: `node src/server.ts` in a child process exporting to an
 * OTLP/gRPC collector of the test's, its webhooks to a receiver of the test's. One trace per
 * payment, from the client's request to the webhook it gets, however many payments share the
 * scheduler's timer and whichever process sends the webhook.
 */

const servers = serverProcesses();
/**
 * The service with tracedServer's settings alone, started at its first use and kept for the file:
 * the tests that need no other settings share it (their traces and paths are their own), instead of
 * waiting 2–3 s for a start each.
 */
const sharedServers = serverProcesses();
let shared: ServerProcess | undefined;
function sharedServer(): ServerProcess {
  shared ??= tracedServer({}, sharedServers);
  return shared;
}
let collector: Collector;
let receiver: Receiver;
beforeAll(async () => {
  collector = await startCollector();
  receiver = await startReceiver();
});
afterAll(async () => {
  await sharedServers.killAll();
  await Promise.all([collector.close(), receiver.close()]);
});
afterEach(async () => {
  await servers.killAll();
  collector.spans.length = 0;
  receiver.requests.length = 0;
});

/** A trace of the test's: its id is `i` in hex, padded; `sampled` its flags' bit. */
function traceOf(i: number, sampled = true): { traceId: string; traceparent: string } {
  const traceId = `abcd${i.toString(16).padStart(28, '0')}`;
  return { traceId, traceparent: `00-${traceId}-${(0x1000 + i).toString(16).padStart(16, '0')}-${sampled ? '01' : '00'}` };
}

function tracedServer(env: Record<string, string> = {}, of = servers): ServerProcess {
  return of.start({
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
    OTEL_SERVICE_NAME: 'paysim-traced',
    // Export every 100 ms.
    OTEL_BSP_SCHEDULE_DELAY: '100',
    // Decided 300 ms after their create: the scheduler's one timer, armed by the first request, runs them all.
    DEFAULT_APPROVE_DELAY_MS: '300',
    WEBHOOK_MAX_RPS: '0',
    ...env,
  });
}

/** Six payments sent at once, each in a trace of its own (the last one unsampled): each one's webhook carries its own trace on. */
async function expectWebhooksInTheirTraces(server: ServerProcess): Promise<void> {
  const traces = Array.from({ length: 6 }, (_, i) => traceOf(i + 1, i < 5));
  const answers = await Promise.all(
    traces.map(async ({ traceparent }, i) =>
      fetch(await server.url('/v1/sim/intent'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent },
        body: JSON.stringify({ reservation_id: `traced-${i}`, amount: 100, webhook_url: receiver.url(`/hook/${i}`) }),
      }),
    ),
  );
  expect(answers.map((res) => res.status)).toEqual([200, 200, 200, 200, 200, 200]);
  const webhooks = await receiver.waitFor(6, 10_000);
  const byPath = new Map(webhooks.map((request) => [request.url, request.headers.traceparent]));
  traces.forEach(({ traceId }, i) => {
    // Sampled: flags 01; the unsampled one keeps its trace id with flags 00 (it had a new sampled trace before).
    expect([i, byPath.get(`/hook/${i}`)]).toEqual([i, expect.stringMatching(new RegExp(`^00-${traceId}-(?!0{16})[0-9a-f]{16}-${i < 5 ? '01' : '00'}$`))]);
  });
  // The collector has each sampled payment's request span and its webhook attempt, in its trace, the attempt under a span of it.
  // Spans of these traces only: the shared service, kept across tests, may still export another test's late.
  const sampled = traces.slice(0, 5).map((trace) => trace.traceId);
  const ours = (span: ReceivedSpan): boolean => sampled.includes(span.traceId);
  const attempts = await collector.waitFor((span) => span.name === 'webhook.attempt' && ours(span), 5);
  const requests = await collector.waitFor((span) => span.name === 'POST /v1/sim/intent' && ours(span), 5);
  const traceIds = (spans: ReceivedSpan[]) => spans.map((span) => span.traceId).sort();
  expect(traceIds(attempts)).toEqual(sampled);
  expect(traceIds(requests)).toEqual(sampled);
  for (const attempt of attempts) {
    expect(attempt.parentSpanId).not.toBe('');
    // The webhook's traceparent names the attempt's own span.
    expect(webhooks.find((w) => w.headers.traceparent?.includes(attempt.traceId))?.headers.traceparent).toBe(`00-${attempt.traceId}-${attempt.spanId}-01`);
  }
  expect(collector.spans.filter((span) => span.traceId === traces[5]?.traceId)).toEqual([]);
}

describe('tracing to an OTLP collector', () => {
  it('memory: each payment’s webhook in its own request’s trace, though one timer decides them all; unsampled ones keep their trace id, flags 00', async () => {
    const server = sharedServer();
    await expectWebhooksInTheirTraces(server);
  });

  it('memory: a FluxPay payment’s webhook in its confirm’s trace, the relay publishing each event in the trace that wrote it', async () => {
    const server = tracedServer({ FLUXPAY_WEBHOOK_URL: receiver.url('/fluxpay') });
    const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(await server.url(path), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      expect([path, res.status]).toEqual([path, 200]);
      return ((await res.json()) as { result: Record<string, string> }).result;
    };
    const payments: Array<{ orderId: string; paymentKey: string }> = [];
    for (let i = 0; i < 3; i++) {
      const order = await post('/api/v1/orders', { userId: `user_${i}`, serviceId: 'ai-writer', orderName: 'credits', amount: 10000, metadata: { kind: 'CREDIT_CHARGE', credits: 1000 } });
      const payment = await post('/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } });
      payments.push({ orderId: order.orderId as string, paymentKey: payment.paymentKey as string });
    }
    await Promise.all(payments.map(({ orderId, paymentKey }, i) => post('/api/v1/payments/confirm', { orderId, paymentKey, amount: 10000 }, { traceparent: traceOf(100 + i).traceparent })));
    const approved = await eventually(() => {
      const found = receiver.requests.filter((request) => request.body.includes('"payment.approved"'));
      return found.length >= 3 ? found : undefined;
    }, 'three payment.approved webhooks');
    payments.forEach(({ paymentKey }, i) => {
      const webhook = approved.find((request) => request.body.includes(paymentKey));
      expect([i, webhook?.headers.traceparent]).toEqual([i, expect.stringMatching(new RegExp(`^00-${traceOf(100 + i).traceId}-[0-9a-f]{16}-01$`))]);
    });
  });

  it('an attempt that got no answer (a closed port) is an error span with no response status; one answered has its status', async () => {
    const server = tracedServer({ WEBHOOK_MAX_RETRIES: '0', DEFAULT_APPROVE_DELAY_MS: '0' });
    const closed = `http://127.0.0.1:${await closedPort()}/hook`;
    for (const [i, url] of [closed, receiver.url('/hook/answered')].entries()) {
      const res = await fetch(await server.url('/v1/sim/intent'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: traceOf(50 + i).traceparent },
        body: JSON.stringify({ reservation_id: `status-${i}`, amount: 100, webhook_url: url }),
      });
      expect(res.status).toBe(200);
    }
    // Its own two (the shared server's, kept across tests, may still export another test's late).
    const attempts = await collector.waitFor((span) => span.name === 'webhook.attempt' && [50, 51].some((n) => span.traceId === traceOf(n).traceId), 2);
    const of = (i: number) => attempts.find((span) => span.traceId === traceOf(50 + i).traceId);
    expect([of(0)?.statusCode, 'http.response.status_code' in (of(0)?.attributes ?? {})]).toEqual([2, false]);
    expect([of(1)?.statusCode, of(1)?.attributes['http.response.status_code']]).toEqual([0, 200]);
  });

  it('a request’s span is an error, with its exception, for a 5xx answer or a connection cut before its answer, and no span of a 4xx’s trace is: its status is left unset however it was refused (before 2026-12-07 a thrown 400 or 404 was an error, its handler’s span too, an unmatched 404 or a 405 was not; a fault rule’s timeout left its span open for good)', async () => {
    // One intent at most, decided in a minute: a second one is refused 503 STORE_FULL, an error thrown.
    const server = tracedServer({ STORE_MAX_INTENTS: '1', DEFAULT_APPROVE_DELAY_MS: '60000' });
    const send = async (n: number, method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<number> => {
      const headers: Record<string, string> = { traceparent: traceOf(n).traceparent, ...extra };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(await server.url(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      await res.arrayBuffer();
      return res.status;
    };
    // A fault rule answers 503 to the requests that ask for it: an error answered by the service itself.
    const rule = await send(60, 'POST', '/v1/sim/rules', { match: { route: '/v1/sim/intents/:id', headers: { 'x-test-case': 'down' } }, action: { type: 'error', status: 503, retry_after_seconds: 1 } });
    expect(rule).toBe(201);
    const cases = [
      { n: 61, method: 'POST', path: '/v1/sim/intent', body: { amount: 'ten' } }, // validation: thrown
      { n: 62, method: 'GET', path: '/v1/sim/intents/pi_unknown' }, // an unknown id: thrown
      { n: 63, method: 'GET', path: '/v1/sim/no-such-route' }, // unmatched: answered as is
      { n: 64, method: 'DELETE', path: '/v1/sim/intent' }, // another method: answered as is
      { n: 65, method: 'GET', path: '/v1/sim/intents/pi_any', down: true }, // the fault rule's 503: answered as is
      { n: 66, method: 'POST', path: '/v1/sim/intent', body: { reservation_id: 'r-1', amount: 100 } },
      { n: 67, method: 'POST', path: '/v1/sim/intent', body: { reservation_id: 'r-2', amount: 100 } }, // STORE_FULL: thrown
    ];
    const statuses: number[] = [];
    for (const c of cases) statuses.push(await send(c.n, c.method, c.path, c.body, c.down === true ? { 'x-test-case': 'down' } : {}));
    expect(statuses).toEqual([400, 404, 404, 405, 503, 200, 503]);
    const spans = await collector.waitFor((span) => cases.some((c) => span.traceId === traceOf(c.n).traceId && span.parentSpanId === traceOf(c.n).traceparent.split('-')[2]), cases.length);
    const seen = cases.map((c) => {
      const span = spans.find((s) => s.traceId === traceOf(c.n).traceId);
      return [span?.attributes['http.response.status_code'], span?.statusCode, span?.events];
    });
    expect(seen).toEqual([
      [400, 0, []],
      [404, 0, []],
      [404, 0, []],
      [405, 0, []],
      [503, 2, []],
      [200, 0, []],
      [503, 2, ['exception']],
    ]);
    // No other span of the 4xx's traces is an error either (@fastify/otel's handler span was).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const of4xx = collector.spans.filter((span) => cases.slice(0, 4).some((c) => span.traceId === traceOf(c.n).traceId));
    expect(of4xx.filter((span) => span.statusCode !== 0 || span.events.length > 0)).toEqual([]);

    // Cut before the answer: a body that never came whole (the client went away), and a fault rule's
    // timeout, which resets the connection with no answer at all.
    await send(68, 'POST', '/v1/sim/rules', { match: { headers: { 'x-test-case': 'to' } }, action: { type: 'timeout', ms: 200 } });
    const { port } = new URL(await server.url('/'));
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /v1/sim/intent HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 30000\r\ntraceparent: ${traceOf(69).traceparent}\r\n\r\n{"reservation_id": "cut",`);
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 200);
      });
    });
    await expect(send(70, 'GET', '/v1/sim/intents/pi_any', undefined, { 'x-test-case': 'to' })).rejects.toThrow();
    const cut = await collector.waitFor((span) => [69, 70].some((n) => span.traceId === traceOf(n).traceId && span.parentSpanId === traceOf(n).traceparent.split('-')[2]), 2);
    expect([69, 70].map((n) => cut.find((span) => span.traceId === traceOf(n).traceId)).map((span) => [span?.name, span?.statusCode, span?.statusMessage])).toEqual([
      ['POST /v1/sim/intent', 2, 'request closed before its answer ended'],
      ['GET /v1/sim/intents/:id', 2, 'request closed before its answer ended'],
    ]);
  });

  it('pipelined requests on one socket: each has its span, none makes Node warn of a listener leak, and a cut ends the spans of every request still open on it (before 2026-12-07 each request added a close listener to its socket: 11 pipelined requests printed a MaxListenersExceededWarning to stderr)', async () => {
    const server = sharedServer();
    const { port } = new URL(await server.url('/'));
    /** Writes `requests` on one connection at once and reads until the server closes it, or 3 s. */
    const pipelined = (requests: string[]): Promise<string> =>
      new Promise((resolve) => {
        let answers = '';
        const socket = connect(Number(port), '127.0.0.1', () => socket.write(requests.join('')));
        socket.setEncoding('utf8').on('data', (chunk: string) => (answers += chunk));
        const timer = setTimeout(() => socket.destroy(), 3000);
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(answers);
        });
        socket.on('error', () => undefined);
      });
    const get = (n: number, extra = '') => `GET /v1/sim/intents/pi_unknown_${n} HTTP/1.1\r\nhost: 127.0.0.1\r\ntraceparent: ${traceOf(n).traceparent}\r\n${extra}\r\n`;
    const many = Array.from({ length: 15 }, (_, i) => 80 + i);
    const answers = await pipelined(many.map((n, i) => get(n, i === many.length - 1 ? 'connection: close\r\n' : '')));
    expect(answers.match(/HTTP\/1\.1 \d{3}/g)).toEqual(many.map(() => 'HTTP/1.1 404'));
    const spans = await collector.waitFor((span) => many.some((n) => span.traceId === traceOf(n).traceId && span.parentSpanId === traceOf(n).traceparent.split('-')[2]), many.length);
    expect(many.map((n) => spans.filter((span) => span.traceId === traceOf(n).traceId).map((span) => [span.name, span.attributes['http.response.status_code'], span.statusCode]))).toEqual(
      many.map(() => [['GET /v1/sim/intents/:id', 404, 0]]),
    );

    // A fault rule's timeout resets the connection with the first request unanswered: the two behind it on the socket end their spans as well.
    const rule = await fetch(await server.url('/v1/sim/rules'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ match: { headers: { 'x-test-case': 'to' } }, action: { type: 'timeout', ms: 200 } }),
    });
    expect(rule.status).toBe(201);
    const cut = [96, 97, 98];
    expect(await pipelined(cut.map((n) => get(n, 'x-test-case: to\r\n')))).toBe('');
    const ended = await collector.waitFor((span) => cut.some((n) => span.traceId === traceOf(n).traceId && span.parentSpanId === traceOf(n).traceparent.split('-')[2]), cut.length);
    expect(cut.map((n) => ended.filter((span) => span.traceId === traceOf(n).traceId).map((span) => [span.name, span.statusCode, span.statusMessage]))).toEqual(
      cut.map(() => [['GET /v1/sim/intents/:id', 2, 'request closed before its answer ended']]),
    );
    expect(server.stderr).not.toContain('MaxListenersExceededWarning');
  });

  it('names a request’s span by its route, and keeps its query’s secrets out of it as the log does', async () => {
    const server = sharedServer();
    const res = await fetch(await server.url('/v1/sim/webhooks/disabled-urls?url=http%3A%2F%2Fu%3Apw-LEAK%40127.0.0.1%2Fx&token=tok-LEAK'), { headers: { traceparent: traceOf(40).traceparent } });
    expect(res.status).toBe(400);
    const [span] = await collector.waitFor((s) => s.traceId === traceOf(40).traceId && s.parentSpanId === traceOf(40).traceparent.split('-')[2], 1);
    expect(span).toMatchObject({
      service: 'paysim-traced',
      name: 'GET /v1/sim/webhooks/disabled-urls',
      attributes: { 'http.route': '/v1/sim/webhooks/disabled-urls', 'url.path': '/v1/sim/webhooks/disabled-urls', 'url.query': 'url=http%3A%2F%2Fu%3A***%40127.0.0.1%2Fx&token=[redacted]' },
    });
    expect(JSON.stringify(collector.spans)).not.toContain('LEAK');
  });
});

if (redisServerOrSkip('tracing to an OTLP collector with STORE=redis')) {
  describe('tracing to an OTLP collector with STORE=redis', () => {
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis.stop();
    });

    it('each payment’s webhook in its own request’s trace: the delivery carries it through the shared stream', async () => {
      const server = tracedServer({ STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix() });
      await expectWebhooksInTheirTraces(server);
    });

    it('a payment whose replica died before its decision: the replica that decides it sends its webhook in the request’s trace (the job keeps it)', async () => {
      const env = { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), SCHEDULER_POLL_MS: '100', DEFAULT_APPROVE_DELAY_MS: '1500' };
      const [first, second] = [tracedServer(env), tracedServer(env)];
      await Promise.all([first.url('/'), second.url('/')]);
      const { traceId, traceparent } = traceOf(60);
      const res = await fetch(await first.url('/v1/sim/intent'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent },
        body: JSON.stringify({ reservation_id: 'traced-orphan', amount: 100, webhook_url: receiver.url('/hook/orphan') }),
      });
      expect(res.status).toBe(200);
      // Gone before its decision was due: the other replica's poll claims the job.
      first.kill('SIGKILL');
      await first.waitForExit(5_000);
      const [webhook] = await receiver.waitFor(1, 10_000);
      expect([webhook?.url, webhook?.headers.traceparent]).toEqual(['/hook/orphan', expect.stringMatching(new RegExp(`^00-${traceId}-(?!0{16})[0-9a-f]{16}-01$`))]);
      // Its trace's attempt, of the replica that decided it (not another test's late span of the shared service).
      const [attempt] = await collector.waitFor((span) => span.name === 'webhook.attempt' && span.traceId === traceId, 1);
      expect([attempt?.traceId, attempt?.parentSpanId]).toEqual([traceId, expect.stringMatching(/^[0-9a-f]{16}$/)]);
    });
  });
}
