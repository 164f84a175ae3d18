import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { eventually, receiverPool } from '../helpers/receiver.ts';

/**
 * Namespaces (issue 15, `X-Sim-Namespace`): parallel CI jobs share one paysim. Everything here
 * goes over real HTTP to a listening server (the server hands a namespaced request to its
 * namespace's app before the root app sees it), on the manual clock every namespace shares.
 * Namespaces do not see each other's payments of any dialect, bookings and seat maps, rules or
 * webhook log; a reset empties one; a seeded run in a namespace repeats exactly, whatever other
 * namespaces do meanwhile.
 * @see issue 15 "Load-test controls", "Tests"
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Served {
  t: TestApp;
  base: string;
}

const served: Served[] = [];
const receivers = receiverPool();
afterEach(async () => {
  await Promise.all(served.splice(0).map((s) => s.t.app.close()));
  await receivers.closeAll();
});

async function serve(env: Record<string, string> = {}, options: Parameters<typeof buildTestApp>[1] = {}): Promise<Served> {
  const t = await buildTestApp({ DEFAULT_APPROVE_DELAY_MS: '0', DEFAULT_FAIL_DELAY_MS: '0', ...env }, options);
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const address = t.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on a port');
  const s = { t, base: `http://127.0.0.1:${address.port}` };
  served.push(s);
  return s;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Json;
}

async function call(s: Served, namespace: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${s.base}${path}`, {
    method,
    headers: { ...(namespace === undefined ? {} : { 'x-sim-namespace': namespace }), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Json) };
}

const USER = { 'x-user-id': 'user_ns' };

describe('X-Sim-Namespace: isolation', () => {
  it('payments of every dialect, bookings and seat maps, rules and the webhook log of one namespace are not seen by another, nor by default', async () => {
    const s = await serve();
    const rx = await receivers.start();
    // Namespace ci-a: an intent with a webhook, a booking of all 20 seats of perf_003, a /api/v2 payment, a FluxPay order, a rule.
    const intent = await call(s, 'ci-a', 'POST', '/v1/sim/intent', { reservation_id: 'rsv_a', amount: 1000, scenario: 'approve', webhook_url: rx.url('/hooks') });
    expect(intent.status).toBe(200);
    const id = intent.body.payment_intent_id as string;
    await s.t.clock.advance(0);
    expect((await call(s, 'ci-a', 'GET', `/v1/sim/intents/${id}`)).body).toMatchObject({ payment_intent_id: id, reservation_id: 'rsv_a', status: 'APPROVED' });
    for (let i = 0; i < 2; i++) expect((await call(s, 'ci-a', 'POST', '/bookings', { performanceId: 'perf_003', quantity: 10, paymentMethod: 'CREDIT_CARD' }, USER)).status).toBe(201);
    const v2 = await call(s, 'ci-a', 'POST', '/api/v2/payments', { version: 'v2', tx_id: 'tx-ns-a', order_id: 1, user_id: 1, amount: 1000, callback_url: rx.url('/v2') });
    expect(v2.status).toBe(200);
    const order = await call(s, 'ci-a', 'POST', '/api/v1/orders', { userId: 'user_ns', serviceId: 'ai-writer', orderName: 'Namespaced', amount: 15000 });
    expect(order.status).toBe(200);
    const orderId = order.body.result.orderId as string;
    const rule = await call(s, 'ci-a', 'POST', '/v1/sim/rules', { match: { dialect: 'native', method: 'POST', route: '/v1/sim/intent' }, action: { type: 'error', status: 503, retry_after_seconds: 2 } });
    expect(rule.status).toBe(201);
    const deliveries = await call(s, 'ci-a', 'GET', `/v1/sim/webhooks/deliveries?payment_intent_id=${id}`);
    expect(deliveries.body.data).toHaveLength(1);

    for (const other of ['ci-b', undefined]) {
      // The intent, by id and in the list, with the native API's 404.
      const read = await call(s, other, 'GET', `/v1/sim/intents/${id}`);
      expect([read.status, read.body.error.code, read.body.error.message]).toEqual([404, 'NOT_FOUND', `Payment intent ${id} does not exist.`]);
      expect((await call(s, other, 'GET', '/v1/sim/intents')).body).toEqual({ data: [], next_cursor: null });
      // Its own seat map: all 20 seats of perf_003 free, and bookable.
      const seats = await call(s, other, 'GET', '/performances/perf_003/seats', undefined, USER);
      expect([seats.status, seats.body.counts]).toEqual([200, { total: 20, available: 20, held: 0, reserved: 0 }]);
      expect((await call(s, other, 'GET', '/bookings/my', undefined, USER)).body).toEqual([]);
      // No /api/v2 payment, no FluxPay order.
      expect((await call(s, other, 'GET', '/api/v2/payments/tx-ns-a')).status).toBe(404);
      expect((await call(s, other, 'GET', `/api/v1/orders/${orderId}`)).status).toBe(404);
      // No rule: creating an intent works; no webhook deliveries in its log.
      expect((await call(s, other, 'GET', '/v1/sim/rules')).body).toEqual({ data: [] });
      expect((await call(s, other, 'GET', '/v1/sim/webhooks/deliveries')).body.data).toEqual([]);
      const created = await call(s, other, 'POST', '/v1/sim/intent', { reservation_id: 'rsv_other', amount: 1000, scenario: 'approve' });
      expect([created.status, created.headers.get('x-sim-rule')]).toEqual([200, null]);
    }
    // `X-Sim-Namespace: default` is the same as no header.
    expect((await call(s, 'default', 'GET', '/v1/sim/intents')).body.data.map((i: Json) => i.reservation_id)).toEqual(['rsv_other']);
    // ci-a still has what it made, and its rule applies there only.
    const refused = await call(s, 'ci-a', 'POST', '/v1/sim/intent', { reservation_id: 'rsv_a2', amount: 1000 });
    expect([refused.status, refused.headers.get('retry-after'), refused.headers.get('x-sim-rule'), refused.body.error.code]).toEqual([503, '2', rule.body.id, 'SERVICE_UNAVAILABLE']);
    expect((await call(s, 'ci-a', 'GET', '/v1/sim/intents')).body.data.map((i: Json) => i.reservation_id)).toEqual(['rsv_a']);
    expect((await call(s, 'ci-a', 'GET', '/performances/perf_003/seats', undefined, USER)).body.counts).toEqual({ total: 20, available: 0, held: 20, reserved: 0 });
    expect((await call(s, 'ci-a', 'GET', '/bookings/my', undefined, USER)).body).toHaveLength(2);
    // The webhook of ci-a's intent reached the receiver, and ci-a's log says so.
    await s.t.clock.advance(0);
    const hook = await eventually(() => rx.requests.find((r) => r.url === '/hooks' && r.body.includes(id)), 'the webhook of ci-a');
    expect(JSON.parse(hook.body)).toMatchObject({ type: 'payment.approved' });
    await eventually(async () => ((await call(s, 'ci-a', 'GET', `/v1/sim/webhooks/deliveries?payment_intent_id=${id}`)).body.data[0]?.status === 'delivered' ? true : undefined), 'delivered in ci-a');

    // Each namespace's report holds its own payments only.
    const reportA = await call(s, 'ci-a', 'GET', '/v1/sim/report');
    expect([reportA.body.namespace, reportA.body.payments.map((p: Json) => `${p.dialect}:${p.reference}`).sort()]).toEqual(['ci-a', ['bookings:perf_003', 'bookings:perf_003', 'fluxpay:Namespaced', 'native:rsv_a', 'payment-server-v2:tx-ns-a']]);
    const reportB = await call(s, undefined, 'GET', '/v1/sim/report?namespace=ci-b');
    expect([reportB.body.namespace, reportB.body.payments.map((p: Json) => `${p.dialect}:${p.reference}`)]).toEqual(['ci-b', ['native:rsv_other']]);
  });

  it('DELETE /v1/sim/namespaces/{ns} empties one namespace and leaves the others; GET lists them; default cannot be reset', async () => {
    const s = await serve();
    for (const ns of ['job-1', 'job-2']) {
      expect((await call(s, ns, 'POST', '/v1/sim/intent', { reservation_id: `rsv_${ns}`, amount: 1000 })).status).toBe(200);
      expect((await call(s, ns, 'POST', '/bookings', { performanceId: 'perf_003', quantity: 5, paymentMethod: 'CREDIT_CARD' }, USER)).status).toBe(201);
      expect((await call(s, ns, 'POST', '/v1/sim/rules', { action: { type: 'latency', distribution: 'fixed', params: { ms: 1 } } })).status).toBe(201);
    }
    const listed = await call(s, undefined, 'GET', '/v1/sim/namespaces');
    expect([listed.status, listed.body.max, listed.body.data.map((n: Json) => n.namespace)]).toEqual([200, 64, ['job-1', 'job-2']]);
    expect(listed.body.data[0].created_at).toBe(new Date(s.t.clock.now()).toISOString());

    const reset = await call(s, 'job-2', 'DELETE', '/v1/sim/namespaces/job-1');
    expect([reset.status, reset.body]).toEqual([200, { namespace: 'job-1', existed: true }]);
    expect((await call(s, undefined, 'GET', '/v1/sim/namespaces')).body.data.map((n: Json) => n.namespace)).toEqual(['job-2']);
    // job-1 starts empty again: no intent, a full seat map, no rules.
    expect((await call(s, 'job-1', 'GET', '/v1/sim/intents')).body.data).toEqual([]);
    expect((await call(s, 'job-1', 'GET', '/performances/perf_003/seats', undefined, USER)).body.counts).toEqual({ total: 20, available: 20, held: 0, reserved: 0 });
    expect((await call(s, 'job-1', 'GET', '/v1/sim/rules')).body.data).toEqual([]);
    // job-2 keeps everything.
    expect((await call(s, 'job-2', 'GET', '/v1/sim/intents')).body.data.map((i: Json) => i.reservation_id)).toEqual(['rsv_job-2']);
    expect((await call(s, 'job-2', 'GET', '/performances/perf_003/seats', undefined, USER)).body.counts).toEqual({ total: 20, available: 15, held: 5, reserved: 0 });
    expect((await call(s, 'job-2', 'GET', '/v1/sim/rules')).body.data).toHaveLength(1);

    expect((await call(s, undefined, 'DELETE', '/v1/sim/namespaces/never-used')).body).toEqual({ namespace: 'never-used', existed: false });
    const fallback = await call(s, undefined, 'DELETE', '/v1/sim/namespaces/default');
    expect([fallback.status, fallback.body.error.code, fallback.body.error.details]).toEqual([
      400,
      'VALIDATION_FAILED',
      [
        {
          in: 'params',
          field: '/namespace',
          rule: 'not_default',
          // With Redis a restart keeps the state (2026-12-05: the advice was to restart there too).
          message:
            process.env.PAYSIM_TEST_STORE === 'redis'
              ? 'the default namespace cannot be reset: give each run a namespace of its own, or start on another REDIS_KEY_PREFIX (a restart keeps what Redis holds)'
              : 'the default namespace cannot be reset: restart the service, or give each run a namespace of its own',
        },
      ],
    ]);
    const badName = await call(s, undefined, 'DELETE', '/v1/sim/namespaces/a%20b');
    expect([badName.status, badName.body.error.message]).toEqual([400, 'params /namespace: must be 1 to 64 letters, digits, ".", "_" or "-", not dots alone']);
  });

  it('a reset waits for the requests the namespace is still answering, so none answers after it for a payment it dropped (before, a create held by a latency rule answered 200 after the reset, for an intent that no longer existed)', async () => {
    const s = await serve();
    expect((await call(s, 'slow', 'POST', '/v1/sim/rules', { match: { route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'fixed', params: { ms: 600 } } })).status).toBe(201);
    const answered: string[] = [];
    const creating = call(s, 'slow', 'POST', '/v1/sim/intent', { reservation_id: 'straggler', amount: 1000 }).then((a) => {
      answered.push('create');
      return a;
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const reset = await call(s, undefined, 'DELETE', '/v1/sim/namespaces/slow');
    answered.push('reset');
    const created = await creating;
    expect([created.status, reset.status, reset.body, answered]).toEqual([200, 200, { namespace: 'slow', existed: true }, ['create', 'reset']]);
    // What it made went with the reset, as everything made before it.
    expect((await call(s, 'slow', 'GET', `/v1/sim/intents/${String(created.body.payment_intent_id)}`)).status).toBe(404);
  });

  it('a bad X-Sim-Namespace is a 400 in the shape of each dialect; beyond NAMESPACES_MAX a 409 NAMESPACE_LIMIT; the operations paths ignore the header', async () => {
    const s = await serve({ NAMESPACES_MAX: '1' });
    for (const bad of ['a b', 'x'.repeat(65), 'ns/1', '.', '..']) {
      const native = await call(s, bad, 'GET', '/v1/sim/intents');
      // Named as a header, as a schema names a bad header: in each dialect's way.
      const rule = 'must be 1 to 64 letters, digits, ".", "_" or "-", not dots alone, sent once';
      expect([native.status, native.body.error.code, native.body.error.message, native.body.error.details]).toEqual([
        400,
        'VALIDATION_FAILED',
        `headers /x-sim-namespace: ${rule}`,
        [{ in: 'headers', field: '/x-sim-namespace', rule: 'pattern', message: rule }],
      ]);
      const fluxpay = await call(s, bad, 'GET', '/api/v1/credits/balance?userId=u1');
      expect([fluxpay.status, fluxpay.body.isSuccess, fluxpay.body.code, fluxpay.body.result]).toEqual([400, false, 'COMMON_400', { errors: [{ field: 'header.x-sim-namespace', reason: rule }] }]);
      const bookings = await call(s, bad, 'GET', '/bookings/my', undefined, USER);
      expect([bookings.status, bookings.body]).toEqual([400, { error: `headers /x-sim-namespace: ${rule}`, code: 'VALIDATION_FAILED' }]);
      const v2 = await call(s, bad, 'GET', '/api/v2/payments/tx-1');
      expect([v2.status, v2.body]).toEqual([422, { detail: [{ type: 'pattern', loc: ['header', 'x-sim-namespace'], msg: rule, input: bad }] }]);
      // The payment service names the header, in Korean as its other messages (before 2026-12-07: "잘못된 요청입니다.", which said nothing).
      const paymentService = await call(s, bad, 'GET', '/health');
      expect([paymentService.status, paymentService.body]).toEqual([400, { error: '요청 헤더가 올바르지 않습니다: x-sim-namespace' }]);
    }
    expect((await call(s, 'only-one', 'GET', '/v1/sim/intents')).status).toBe(200);
    const limit = await call(s, 'second', 'POST', '/v1/sim/intent', { reservation_id: 'rsv_2', amount: 1000 });
    expect([limit.status, limit.body.error.code, limit.body.error.message]).toEqual([409, 'NAMESPACE_LIMIT', '1 namespaces exist already (NAMESPACES_MAX); reset one with DELETE /v1/sim/namespaces/{namespace} or use an existing one.']);
    const limitV2 = await call(s, 'second', 'GET', '/api/v2/payments/tx-1');
    expect(limitV2.status).toBe(409);
    const limitPaymentService = await call(s, 'second', 'GET', '/api/v1/payments/methods');
    expect([limitPaymentService.status, limitPaymentService.body]).toEqual([
      409,
      { error: '네임스페이스를 더 만들 수 없습니다(NAMESPACES_MAX). DELETE /v1/sim/namespaces/{namespace}로 하나를 초기화하거나 기존 네임스페이스를 사용하세요.' },
    ]);
    // Nothing was made for it.
    expect((await call(s, undefined, 'GET', '/v1/sim/namespaces')).body.data.map((n: Json) => n.namespace)).toEqual(['only-one']);
    // Health, readiness and the document are the process's, whatever the header says.
    for (const path of ['/healthz', '/readyz', '/openapi.json']) expect((await call(s, 'second', 'GET', path)).status).toBe(200);
    // NAMESPACES_MAX=0: namespaces are off, and the answer says so; default still works.
    const off = await serve({ NAMESPACES_MAX: '0' });
    const refused = await call(off, 'ci-1', 'GET', '/v1/sim/intents');
    expect([refused.status, refused.body.error.message]).toEqual([409, 'Namespaces are switched off (NAMESPACES_MAX=0): send no X-Sim-Namespace, or X-Sim-Namespace: default.']);
    expect((await call(off, 'default', 'GET', '/v1/sim/intents')).status).toBe(200);
  });

  /*
   * A namespace first named during the drain (SIGTERM): before 2026-12-03 its app was started and
   * never drained (the drain had listed the namespaces as it began), so the close cut what it was
   * doing (its webhook attempts: sent twice on Redis). A code review found it.
   */
  it('during the drain a namespace not started yet is refused, 503 with Retry-After in the dialect\'s shape; one already started is served', async () => {
    // An intent due in ten minutes keeps the drain busy for its budget.
    const s = await serve({ DEFAULT_DELAY_DELAY_MS: '600000' });
    expect((await call(s, 'early', 'POST', '/v1/sim/intent', { reservation_id: 'rsv_early', amount: 1000 })).status).toBe(200);
    expect((await call(s, undefined, 'POST', '/v1/sim/intent', { reservation_id: 'rsv_busy', amount: 1000, scenario: 'delay' })).status).toBe(200);
    // Work held in the root keeps its drain in its first step (the requests' wait) for half a second.
    void s.t.app.lifecycle.hold(new Promise((resolve) => setTimeout(resolve, 500)));
    const drained = s.t.app.lifecycle.drain(1_000);
    // A create is refused as every request that may change something is from the drain's start (2026-12-05); a read for want of its namespace.
    const late = await call(s, 'late', 'POST', '/v1/sim/intent', { reservation_id: 'rsv_late', amount: 1000 });
    expect([late.status, late.headers.get('retry-after'), late.body.error.code, late.body.error.message]).toEqual([503, '1', 'SHUTTING_DOWN', 'The simulator is shutting down; retry on another instance.']);
    const lateRead = await call(s, 'late', 'GET', '/v1/sim/intents');
    expect([lateRead.status, lateRead.headers.get('retry-after'), lateRead.body.error.code, lateRead.body.error.message]).toEqual([503, '1', 'NAMESPACE_UNAVAILABLE', 'The service is shutting down.']);
    const lateV2 = await call(s, 'late', 'GET', '/api/v2/payments/tx-1');
    expect([lateV2.status, lateV2.headers.get('retry-after')]).toEqual([503, '1']);
    expect((await call(s, 'early', 'GET', '/v1/sim/intents')).status).toBe(200);
    // A started namespace refuses writes from the root drain's start too (a review: it took them until its own drain began).
    const earlyCreate = await call(s, 'early', 'POST', '/v1/sim/intent', { reservation_id: 'rsv_early_late', amount: 1000 });
    expect([earlyCreate.status, earlyCreate.headers.get('retry-after'), earlyCreate.body.error.code]).toEqual([503, '1', 'SHUTTING_DOWN']);
    await drained;
    expect((await call(s, 'early', 'GET', '/v1/sim/intents?reservation_id=rsv_early_late')).body.data).toEqual([]);
    expect((await call(s, undefined, 'GET', '/v1/sim/namespaces')).body.data.map((n: Json) => n.namespace)).toEqual(['early']);
  });

  it('/metrics adds every namespace up, and a reset namespace keeps its counts (counters never go back)', async () => {
    const s = await serve();
    for (const ns of [undefined, 'm-1', 'm-2', 'm-2']) expect((await call(s, ns, 'POST', '/v1/sim/intent', { reservation_id: 'rsv_m', amount: 1000, scenario: 'approve' })).status).toBe(200);
    const created = async (): Promise<string | undefined> => {
      const text = await (await fetch(`${s.base}/metrics`)).text();
      return text.split('\n').find((line) => line.startsWith('http_requests_total{method="POST",route="/v1/sim/intent",status_code="200"}'));
    };
    expect(await created()).toBe('http_requests_total{method="POST",route="/v1/sim/intent",status_code="200"} 4');
    expect((await call(s, undefined, 'DELETE', '/v1/sim/namespaces/m-2')).status).toBe(200);
    expect(await created()).toBe('http_requests_total{method="POST",route="/v1/sim/intent",status_code="200"} 4');
    expect((await call(s, 'm-2', 'POST', '/v1/sim/intent', { reservation_id: 'rsv_m', amount: 1000 })).status).toBe(200);
    expect(await created()).toBe('http_requests_total{method="POST",route="/v1/sim/intent",status_code="200"} 5');
  });

  it('each namespace makes FAULTS_FILE\'s rules as of its creation: relative windows count from it, and a rule whose window is over is left out, with a warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paysim-ns-faults-'));
    try {
      const path = join(dir, 'faults.yaml');
      const rules = [
        { id: 'short', window: { until: 3000 }, action: { type: 'timeout', ms: 5 } },
        { id: 'dated', window: { until: '2026-01-15T12:00:10.000Z' }, action: { type: 'duplicate' } },
        { id: 'always', action: { type: 'duplicate' } },
      ];
      writeFileSync(path, JSON.stringify({ rules }));
      const logs: Array<Record<string, unknown>> = [];
      const s = await serve({ FAULTS_FILE: path }, { clockStart: Date.parse('2026-01-15T12:00:00.000Z'), logs });
      const windows = async (ns: string | undefined) => {
        const res = await call(s, ns, 'GET', '/v1/sim/rules');
        expect(res.status).toBe(200);
        return (res.body.data as Array<{ id: string; window: { from: string | null; until: string | null } }>).map((rule) => [rule.id, rule.window.until]);
      };
      expect(await windows(undefined)).toEqual([
        ['short', '2026-01-15T12:00:03.000Z'],
        ['dated', '2026-01-15T12:00:10.000Z'],
        ['always', null],
      ]);
      await s.t.clock.advance(5_000);
      expect(await windows('ci-late')).toEqual([
        ['short', '2026-01-15T12:00:08.000Z'],
        ['dated', '2026-01-15T12:00:10.000Z'],
        ['always', null],
      ]);
      await s.t.clock.advance(6_000);
      expect(await windows('ci-later')).toEqual([
        ['short', '2026-01-15T12:00:14.000Z'],
        ['always', null],
      ]);
      expect(logs.filter((line) => line.level === 'warn' && line.faults_file === path).map((line) => [line.namespace, line.rule, line.until, line.msg])).toEqual([
        ['ci-later', 'dated', '2026-01-15T12:00:10.000Z', 'FAULTS_FILE rule dated not made: its window ended at 2026-01-15T12:00:10.000Z, before the rules were made; remove it from the file or move its window'],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a reset namespace takes its rules\' fault_rule_hits_total series with it (its rules are gone); the other namespaces\' stay, each its own series though the ids are the same (before 2026-12-07 one series, their sum, which went back at the reset)', async () => {
    const s = await serve();
    const ruleIn = async (ns: string, hitsWanted: number): Promise<void> => {
      // The same id in both, as FAULTS_FILE's rules are made in every namespace.
      const made = await call(s, ns, 'POST', '/v1/sim/rules', { id: 'f2-down', match: { headers: { 'x-test-case': 'f2' } }, action: { type: 'error', status: 503 } });
      expect(made.status).toBe(201);
      for (let i = 0; i < hitsWanted; i++) {
        const res = await call(s, ns, 'GET', '/v1/sim/intents', undefined, { 'x-test-case': 'f2' });
        expect([res.status, res.headers.get('retry-after'), res.headers.get('x-sim-rule'), res.body]).toEqual([503, '1', 'f2-down', { error: { code: 'SERVICE_UNAVAILABLE', message: 'The payment gateway is unavailable; retry after Retry-After seconds.', trace_id: expect.any(String) } }]);
      }
    };
    await ruleIn('ci-f2-a', 1);
    await ruleIn('ci-f2-b', 2);
    const series = async (): Promise<string[]> => (await (await fetch(`${s.base}/metrics`)).text()).split('\n').filter((line) => line.startsWith('fault_rule_hits_total{'));
    expect((await series()).sort()).toEqual(['fault_rule_hits_total{rule_id="f2-down",action="error",sim_namespace="ci-f2-a"} 1', 'fault_rule_hits_total{rule_id="f2-down",action="error",sim_namespace="ci-f2-b"} 2']);
    const reset = await call(s, undefined, 'DELETE', '/v1/sim/namespaces/ci-f2-a');
    expect([reset.status, reset.body]).toEqual([200, { namespace: 'ci-f2-a', existed: true }]);
    expect(await series()).toEqual(['fault_rule_hits_total{rule_id="f2-down",action="error",sim_namespace="ci-f2-b"} 2']);
    expect((await call(s, 'ci-f2-a', 'GET', '/v1/sim/rules/f2-down')).status).toBe(404);
  });
});

describe('X-Sim-Namespace: determinism with RANDOM_SEED', () => {
  /**
   * One run: 60 random-scenario intents and 30 mixed ones in the namespace, with a rule that fails
   * half the creates (probability 0.5) and one that delays every create by a uniform sample,
   * interleaved with traffic in another namespace that differs between runs; returns what the
   * client saw, the delays the rule planned, and the namespace's report without ids and times.
   */
  async function run(s: Served, namespace: string, noise: number): Promise<{ answers: string[]; delays: number[]; report: Json[] }> {
    expect((await call(s, undefined, 'DELETE', `/v1/sim/namespaces/${namespace}`)).status).toBe(200);
    const rule = await call(s, namespace, 'POST', '/v1/sim/rules', { name: 'flaky', match: { method: 'POST', route: '/v1/sim/intent' }, probability: 0.5, action: { type: 'error', status: 502 } });
    expect(rule.status).toBe(201);
    const slow = await call(s, namespace, 'POST', '/v1/sim/rules', { match: { method: 'POST', route: '/v1/sim/intent' }, action: { type: 'latency', distribution: 'uniform', params: { min: 1, max: 1000 } } });
    expect(slow.status).toBe(201);
    waits.length = 0;
    const answers: string[] = [];
    for (let i = 0; i < 90; i++) {
      for (let n = 0; n < noise; n++) await call(s, 'noise', 'POST', '/v1/sim/intent', { reservation_id: `noise_${i}_${n}`, amount: 500, scenario: 'random' });
      const body = i < 60 ? { reservation_id: `rsv_${i}`, amount: 1000 + i, scenario: 'random' } : { reservation_id: `rsv_${i}`, amount: 1000 + i, scenario: 'mix', mix: 'approve:70,fail:20,delay:10' };
      const res = await call(s, namespace, 'POST', '/v1/sim/intent', body);
      // X-Sim-Rule names the rules that applied: the latency rule always, the flaky one when drawn.
      answers.push(`${res.status}:${(res.headers.get('x-sim-rule') ?? '').split(', ').length}`);
    }
    await s.t.clock.advance(60_000);
    const report = (await call(s, namespace, 'GET', '/v1/sim/report')).body.payments as Json[];
    const delays = waits.filter((w) => w.namespace === namespace).map((w) => w.ms);
    expect(delays).toHaveLength(90);
    return { answers, delays, report: report.map((p) => ({ reference: p.reference, amount: p.amount, status: p.status, failure_code: p.failure_code, decided_by: p.decided_by })) };
  }

  /** The latencies fault rules planned, by namespace (recorded instead of waited). */
  const waits: Array<{ namespace: string; ms: number }> = [];
  const faultWait = async (ms: number, request: { headers: Record<string, unknown> }): Promise<void> => void waits.push({ namespace: String(request.headers['x-sim-namespace'] ?? 'default'), ms });

  it('the same requests in a namespace give the same outcomes, rule selections and latencies on every run, whatever another namespace does meanwhile', async () => {
    const s = await serve({ RANDOM_SEED: '2026', DEFAULT_DELAY_DELAY_MS: '1000' }, { faultWait });
    const first = await run(s, 'seeded', 0);
    const second = await run(s, 'seeded', 2);
    expect(second).toEqual(first);
    // Not a constant: the rule failed some creates and let the others through, and the random outcomes differ.
    expect(new Set(first.answers)).toEqual(new Set(['200:1', '502:2']));
    expect(new Set(first.report.map((p) => p.status))).toEqual(new Set(['APPROVED', 'FAILED']));
    expect(new Set(first.delays).size).toBeGreaterThan(80);
    // Another namespace with the same requests draws its own sequence.
    const elsewhere = await run(s, 'seeded-2', 0);
    expect(elsewhere.answers).not.toEqual(first.answers);
    // A fresh process with the same seed repeats it again.
    const s2 = await serve({ RANDOM_SEED: '2026', DEFAULT_DELAY_DELAY_MS: '1000' }, { faultWait });
    expect(await run(s2, 'seeded', 1)).toEqual(first);
  });
});
