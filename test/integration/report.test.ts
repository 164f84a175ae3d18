import { get } from 'node:http';
import { SignJWT } from 'jose';
import { parse } from 'csv-parse/sync';
import { afterEach, describe, expect, it } from 'vitest';
import { reportFormat } from '../../src/dialects/native/report.ts';
import type { TestApp } from '../helpers/app.ts';
import { confirm, createOrder, createPayment } from '../helpers/fluxpay.ts';
import type { Receiver } from '../helpers/receiver.ts';
import { createV2, v2Body } from '../helpers/v2.ts';
import { listDeliveries, webhookFixtures } from '../helpers/webhooks.ts';

/**
 * The run report (`GET /v1/sim/report`, issue 15 "Load-test controls"): payments of every dialect
 * made through their own APIs on a manual clock, webhooks delivered to real receivers (one always
 * answering 500, so its delivery fails after its retries), then the whole report compared, as
 * JSON and as CSV parsed back strictly with csv-parse.
 * @see issue 15 "Load-test controls"
 */

const JWT_SECRET = 'report-test-jwt-secret-0123456789abcdef';
const ENV = {
  DEFAULT_APPROVE_DELAY_MS: '0',
  DEFAULT_FAIL_DELAY_MS: '0',
  MOCK_MIN_DELAY_MS: '0',
  MOCK_MAX_DELAY_MS: '0',
  V2_COMPLETE_DELAY_MS: '0',
  WEBHOOK_MAX_RETRIES: '2',
  WEBHOOK_BACKOFF_MS: '1000',
  WEBHOOK_MAX_RPS: '0',
  JWT_SECRET,
};

/** When makePayments' webhooks have all finished (a failing one retries after 1 s and 2 s, with jitter). */
const SETTLED_MS = 10_000;

const fixtures = webhookFixtures(ENV);
afterEach(() => fixtures.closeAll());

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const iso = (ms: number) => new Date(ms).toISOString();
const TRACE_ID = expect.stringMatching(/^[0-9a-f]{32}$/) as unknown as string;

/** Every delivery finished: retries brought forward by moving the clock to their next attempt. */
async function drainDeliveries(t: TestApp): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const open = (await listDeliveries(t, '?limit=500')).data.filter((d) => d.status === 'pending' || d.status === 'retrying');
    if (open.length === 0) return;
    const next = open.map((d) => (d.next_attempt_at === null ? Infinity : Date.parse(d.next_attempt_at))).reduce((a, b) => Math.min(a, b), Infinity);
    if (Number.isFinite(next) && next > t.clock.now()) await t.clock.advance(next - t.clock.now());
    else await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('deliveries did not finish');
}

/** A GET over a real connection that keeps what arrived before the connection ended, and how it ended. */
function partialGet(url: string, accept: string): Promise<{ status: number | undefined; body: string; error: Error | undefined }> {
  return new Promise((resolve) => {
    let body = '';
    let status: number | undefined;
    const req = get(url, { headers: { accept } }, (res) => {
      status = res.statusCode;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status, body, error: undefined }));
      res.on('error', (error) => resolve({ status, body, error }));
    });
    req.on('error', (error) => resolve({ status, body, error }));
  });
}

async function report(t: TestApp, query = '', accept?: string) {
  return t.app.inject({ url: `/v1/sim/report${query}`, headers: accept === undefined ? {} : { accept } });
}

interface Made {
  t: TestApp;
  ok: Receiver;
  failing: Receiver;
  ids: Record<string, string>;
  t0: number;
}

/** One payment of each kind, through each dialect's API, with webhooks where the dialect sends them. */
async function makePayments(seed = '42'): Promise<Made> {
  const ok = await fixtures.receiver();
  const failing = await fixtures.receiver(() => ({ status: 500, body: 'down' }));
  const t = await fixtures.app({ RANDOM_SEED: seed, FLUXPAY_WEBHOOK_URL: ok.url('/fluxpay') });
  const t0 = t.clock.now();
  const intent = async (body: Json) => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { amount: 1000, currency: 'KRW', ...body } });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().payment_intent_id as string;
  };
  const ids: Record<string, string> = {};
  ids.approved = await intent({ reservation_id: 'rsv_ok', amount: 45000, scenario: 'approve', webhook_url: ok.url('/native') });
  ids.declined = await intent({ reservation_id: 'rsv_fail', amount: 12000, scenario: 'fail', webhook_url: failing.url('/native') });
  ids.mixed = await intent({ reservation_id: 'rsv, "mixed"', amount: 3000, currency: 'USD', mix: 'approve:1,fail:1' });
  await t.clock.advance(0);

  const v2 = await createV2(t, v2Body('tx-report-1', ok.url('/v2'), { amount: 30000 }));
  expect(v2.statusCode, v2.body).toBe(200);
  ids.v2 = 'pay_tx-report-1';

  const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_1' }, payload: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD', webhookUrl: ok.url('/bookings') } });
  expect(booked.statusCode, booked.body).toBe(201);
  ids.booking = booked.json().bookingId;
  const executed = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': 'user_1' }, payload: { bookingId: ids.booking, paymentMethodToken: 'tok_visa', cvv: '120' } });
  expect(executed.statusCode, executed.body).toBe(200);

  const direct = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_2' }, payload: { performanceId: 'perf_002', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
  expect(direct.statusCode, direct.body).toBe(201);
  ids.direct = direct.json().bookingId;
  const now = Math.floor(t.clock.now() / 1000);
  const jwt = await new SignJWT({ userId: 'user_2' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(JWT_SECRET));
  const processed = await t.app.inject({ method: 'POST', url: '/api/v1/payments/process', headers: { authorization: `Bearer ${jwt}` }, payload: { reservationId: ids.direct, paymentMethod: 'kakao_pay' } });
  expect(processed.statusCode, processed.body).toBe(200);

  const paid = await createOrder(t, { orderName: 'Premium plan', amount: 9900 });
  ids.paidOrder = paid.orderId;
  expect((await confirm(t, await createPayment(t, paid.orderId))).statusCode).toBe(200);
  const unpaid = await createOrder(t, { orderName: 'Declined plan', amount: 5000 });
  ids.declinedOrder = unpaid.orderId;
  const declined = await confirm(t, await createPayment(t, unpaid.orderId), { 'x-sim-scenario': 'fail' });
  expect(declined.statusCode, declined.body).not.toBe(200);

  await t.clock.advance(100);
  await drainDeliveries(t);
  // Retries finish at times that depend on when real attempts came back: move on to a fixed instant.
  await t.clock.advance(t0 + SETTLED_MS - t.clock.now());
  return { t, ok, failing, ids, t0 };
}

const deliveries = (count: number, delivered: number, failed: number, attempts: number, last: number | null) => ({ count, delivered, failed, pending: count - delivered - failed, attempts, last_status_code: last });

function row(dialect: string, id: string, reference: string, amount: number, status: string, approved: boolean, failure: string | null, decidedBy: string | null, at: string, d: Json, currency = 'KRW'): Json {
  return { dialect, id, reference, amount, currency, status, approved, failure_code: failure, decided_by: decidedBy, created_at: at, decided_at: at, deliveries: d };
}

/** What makePayments leads to: each dialect newest first; the mix (seed 42) declines `mixed`. */
function expectedReport(m: Made): Json {
  const at = iso(m.t0);
  const { ids } = m;
  return {
    namespace: 'default',
    since: null,
    generated_at: iso(m.t.clock.now()),
    payments: [
      row('native', ids.mixed as string, 'rsv, "mixed"', 3000, 'FAILED', false, 'card_declined', 'mix', at, deliveries(0, 0, 0, 0, null), 'USD'),
      // WEBHOOK_MAX_RETRIES=2: the first attempt and two retries, all answered 500.
      row('native', ids.declined as string, 'rsv_fail', 12000, 'FAILED', false, 'card_declined', 'fail', at, deliveries(1, 0, 1, 3, 500)),
      row('native', ids.approved as string, 'rsv_ok', 45000, 'APPROVED', true, null, 'approve', at, deliveries(1, 1, 0, 1, 200)),
      row('payment-server-v2', 'pay_tx-report-1', 'tx-report-1', 30000, 'PAYMENT_COMPLETED', true, null, 'approve', at, deliveries(1, 1, 0, 1, 200)),
      // Paid through the payment-service API; it has no webhookUrl.
      row('bookings', ids.direct as string, 'perf_002', 30000, 'confirmed', true, null, null, at, deliveries(0, 0, 0, 0, null)),
      row('bookings', ids.booking as string, 'perf_001', 60000, 'confirmed', true, null, null, at, deliveries(1, 1, 0, 1, 200)),
      // Its payment failed (payment.failed delivered); the order stays PENDING.
      row('fluxpay', ids.declinedOrder as string, 'Declined plan', 5000, 'PENDING', false, 'card_declined', 'fail', at, deliveries(1, 1, 0, 1, 200)),
      row('fluxpay', ids.paidOrder as string, 'Premium plan', 9900, 'PAID', true, null, 'card', at, deliveries(1, 1, 0, 1, 200)),
    ],
    totals: {
      payments: 8,
      by_dialect: byDialect({ native: { APPROVED: 1, FAILED: 2 }, 'payment-server-v2': { PAYMENT_COMPLETED: 1 }, bookings: { confirmed: 2 }, fluxpay: { PAID: 1, PENDING: 1 } }),
      approved_amounts: { KRW: 45000 + 30000 + 30000 + 60000 + 9900 },
      deliveries: { count: 6, delivered: 5, failed: 1, pending: 0, attempts: 8 },
    },
  };
}

/** Every dialect with every status it has, 0 unless `counts` says otherwise. */
function byDialect(counts: Partial<Record<string, Record<string, number>>>): Json {
  const statuses: Record<string, string[]> = {
    native: ['PENDING', 'APPROVED', 'FAILED', 'CANCELLED', 'PARTIALLY_REFUNDED', 'REFUNDED'],
    'payment-server-v2': ['PENDING', 'PAYMENT_COMPLETED', 'PAYMENT_FAILED'],
    bookings: ['pending', 'confirmed', 'failed', 'expired', 'cancelled'],
    fluxpay: ['PENDING', 'PAID', 'COMPLETED', 'CANCELLED'],
  };
  return Object.fromEntries(
    Object.entries(statuses).map(([dialect, names]) => {
      const by_status = Object.fromEntries(names.map((name) => [name, counts[dialect]?.[name] ?? 0]));
      return [dialect, { payments: Object.values(by_status).reduce((a, b) => a + b, 0), by_status }];
    }),
  );
}

const CSV_COLUMNS = ['dialect', 'id', 'reference', 'amount', 'currency', 'status', 'approved', 'failure_code', 'decided_by', 'created_at', 'decided_at', 'deliveries', 'delivered', 'failed', 'pending', 'attempts', 'last_status_code'];

/** A JSON row as the CSV writes it: every field a string, null empty, the deliveries flattened. */
function csvRecordOf(p: Json): string[] {
  const d = p.deliveries as Json;
  return [p.dialect, p.id, p.reference, p.amount, p.currency, p.status, p.approved, p.failure_code, p.decided_by, p.created_at, p.decided_at, d.count, d.delivered, d.failed, d.pending, d.attempts, d.last_status_code].map((v) => (v === null ? '' : String(v)));
}

/** Ids are ULIDs with random bits: each distinct id becomes its prefix and the order it first appears in. */
function withOrdinalIds(text: string): string {
  const seen = new Map<string, string>();
  return text.replace(/\b(pay|bk|ord)_[0-9A-HJKMNP-TV-Z]{26}\b/g, (id, prefix: string) => {
    let name = seen.get(id);
    if (name === undefined) seen.set(id, (name = `${prefix}_#${seen.size + 1}`));
    return name;
  });
}

describe('GET /v1/sim/report', () => {
  it('lists every payment of every dialect with its final state, its deliveries and the totals (whole body)', async () => {
    const made = await makePayments();
    const res = await report(made.t);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers.vary).toBe('Accept');
    expect(res.json()).toEqual(expectedReport(made));
    // namespace=default is the same report.
    expect((await report(made.t, '?namespace=default')).body).toBe(res.body);
    // The failing receiver did get every attempt.
    expect(made.failing.requests).toHaveLength(3);
  });

  it('decided_by is rule for every payment a fault rule’s outcome decided, in every dialect (before 2026-12-04 only FluxPay’s; the others named their scenario, card or null); the intent’s own scenario is unchanged', async () => {
    // V2_COMPLETE_DELAY_MS and a delay_ms leave time for a manual confirm and a cancel before the decision.
    const t = await fixtures.app({ V2_COMPLETE_DELAY_MS: '5000' });
    const ok = await fixtures.receiver();
    const t0 = t.clock.now();
    const rule = async (match: Json, action: Json) => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match, action: { type: 'outcome', ...action } } });
      expect(res.statusCode, res.body).toBe(201);
    };
    const byRule = { 'x-test-case': 'by-rule' };
    await rule({ headers: byRule, body: { scenario: 'approve' } }, { failure_code: 'insufficient_funds' });
    await rule({ headers: byRule }, { approve: true });
    const intent = async (body: Json, headers: Record<string, string> = {}) => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', headers, payload: { reservation_id: 'rsv_rule', amount: 1000, currency: 'KRW', ...body } });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().payment_intent_id as string;
    };
    const declinedByRule = await intent({ scenario: 'approve' }, byRule);
    const approvedByRule = await intent({ scenario: 'fail' }, byRule);
    const cancelledFirst = await intent({ scenario: 'fail', delay_ms: 60_000 }, byRule);
    const byScenario = await intent({ scenario: 'fail' });
    expect((await t.app.inject({ method: 'POST', url: `/v1/sim/intents/${cancelledFirst}/cancel` })).statusCode).toBe(200);
    // Each create answers once its payment is decided (or confirmed): sent now, awaited after the clock has moved.
    const v2Creates = [
      createV2(t, v2Body('tx-rule-1', ok.url('/v2')), { ...byRule, 'x-sim-scenario': 'fail' }),
      createV2(t, v2Body('tx-rule-2', ok.url('/v2')), byRule),
      createV2(t, v2Body('tx-plain', ok.url('/v2')), { 'x-sim-scenario': 'fail' }),
    ];
    const book = async (user: string) => (await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': user }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } })).json().bookingId as string;
    const bookingByRule = await book('user_r');
    const bookingByCvv = await book('user_c');
    // CVV 120 approves: the rule (approve) and the CVV agree, and still the rule decided it.
    for (const [bookingId, user, headers] of [[bookingByRule, 'user_r', byRule], [bookingByCvv, 'user_c', {}]] as const) {
      const res = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': user, ...headers }, payload: { bookingId, paymentMethodToken: 'tok_chargeDeclined', cvv: '120' } });
      expect(res.statusCode, res.body).toBe(200);
    }
    const order = await createOrder(t, { orderName: 'Ruled', amount: 5000 });
    expect((await confirm(t, await createPayment(t, order.orderId), { ...byRule, 'x-sim-scenario': 'fail' })).statusCode).toBe(200);
    await t.clock.advance(1000);
    // The second v2 payment is confirmed by hand before its decision: the confirm decided it, not the rule.
    expect((await t.app.inject({ method: 'POST', url: '/api/v2/confirm-payment', payload: { payment_id: 'pay_tx-rule-2' } })).statusCode).toBe(200);
    await t.clock.advance(10_000);
    expect((await Promise.all(v2Creates)).map((res) => res.statusCode)).toEqual([200, 200, 200]);

    // By id: payments created at the same instant are listed in an order of each store's own.
    const rows = Object.fromEntries(((await report(t)).json().payments as Json[]).map((p) => [p.id, [p.dialect, p.status, p.failure_code, p.decided_by, p.decided_at]]));
    const at = (ms: number) => iso(t0 + ms);
    expect(rows).toEqual({
      [byScenario]: ['native', 'FAILED', 'card_declined', 'fail', at(0)],
      [cancelledFirst]: ['native', 'CANCELLED', null, 'fail', null],
      [approvedByRule]: ['native', 'APPROVED', null, 'rule', at(0)],
      [declinedByRule]: ['native', 'FAILED', 'insufficient_funds', 'rule', at(0)],
      'pay_tx-plain': ['payment-server-v2', 'PAYMENT_FAILED', 'card_declined', 'fail', at(5000)],
      'pay_tx-rule-2': ['payment-server-v2', 'PAYMENT_COMPLETED', null, 'approve', at(1000)],
      'pay_tx-rule-1': ['payment-server-v2', 'PAYMENT_COMPLETED', null, 'rule', at(5000)],
      [bookingByCvv]: ['bookings', 'failed', 'card_declined', null, at(0)],
      [bookingByRule]: ['bookings', 'confirmed', null, 'rule', at(0)],
      [order.orderId]: ['fluxpay', 'PAID', null, 'rule', at(0)],
    });
    // The intent's API still shows the scenario it was asked for.
    expect((await t.app.inject({ url: `/v1/sim/intents/${declinedByRule}` })).json()).toMatchObject({ scenario: 'approve', status: 'FAILED', failure_code: 'insufficient_funds' });
  });

  it('Accept: text/csv answers RFC 4180 CSV: a header row and one row per payment, equal to the JSON rows (parsed back strictly)', async () => {
    const made = await makePayments();
    const json = (await report(made.t)).json() as Json;
    const res = await report(made.t, '', 'text/csv');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8; header=present');
    expect(res.body.endsWith('\r\n')).toBe(true);
    // The reference with a comma and quotes is quoted, its quotes doubled.
    expect(res.body).toContain(`,"rsv, ""mixed""",3000,USD,FAILED,false,card_declined,mix,`);
    const records = parse(res.body, { relax_quotes: false, relax_column_count: false, record_delimiter: '\r\n' }) as string[][];
    expect(records[0]).toEqual(CSV_COLUMNS);
    expect(records.slice(1)).toEqual((json.payments as Json[]).map(csvRecordOf));
    // text/csv preferred by q-value; text/* too.
    expect((await report(made.t, '', 'application/json;q=0.5, text/csv')).body).toBe(res.body);
    expect((await report(made.t, '', 'text/*')).body).toBe(res.body);
  });

  it('CSV: a reference a spreadsheet would run as a formula is written with a leading apostrophe; the JSON keeps it as sent (2026-12-05)', async () => {
    const t = await fixtures.app();
    const formula = '=HYPERLINK("http://127.0.0.1:9/x","open")';
    for (const reservation of [formula, '@SUM(1)', 'plain-1']) {
      expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: reservation, amount: 100, scenario: 'approve' } })).statusCode).toBe(200);
    }
    const json = (await report(t)).json() as Json;
    expect((json.payments as Json[]).map((p) => p.reference)).toEqual(['plain-1', '@SUM(1)', formula]);
    const records = parse((await report(t, '', 'text/csv')).body, { relax_quotes: false, relax_column_count: false, record_delimiter: '\r\n' }) as string[][];
    expect(records.slice(1).map((r) => r[CSV_COLUMNS.indexOf('reference')])).toEqual(['plain-1', "'@SUM(1)", `'${formula}`]);
  });

  it('since keeps the payments created at or after it, in every dialect', async () => {
    const made = await makePayments();
    const { t } = made;
    await t.clock.advance(60_000);
    const cut = t.clock.now();
    const late = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'rsv_late', amount: 700, currency: 'KRW', scenario: 'approve' } });
    const lateId = late.json().payment_intent_id as string;
    const order = await createOrder(t, { orderName: 'Late order', amount: 1200 });
    await t.clock.advance(0);
    const at = iso(cut);
    for (const since of [at, at.replace('.000Z', 'Z')]) {
      const res = await report(t, `?since=${encodeURIComponent(since)}`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({
        namespace: 'default',
        since: at,
        generated_at: at,
        payments: [
          row('native', lateId, 'rsv_late', 700, 'APPROVED', true, null, 'approve', at, deliveries(0, 0, 0, 0, null)),
          { ...row('fluxpay', order.orderId as string, 'Late order', 1200, 'PENDING', false, null, null, at, deliveries(0, 0, 0, 0, null)), decided_at: null },
        ],
        totals: {
          payments: 2,
          by_dialect: byDialect({ native: { APPROVED: 1 }, fluxpay: { PENDING: 1 } }),
          approved_amounts: { KRW: 700 },
          deliveries: { count: 0, delivered: 0, failed: 0, pending: 0, attempts: 0 },
        },
      });
    }
    // One millisecond later: nothing.
    const empty = await report(t, `?since=${encodeURIComponent(iso(cut + 1))}`);
    expect(empty.json()).toEqual({ namespace: 'default', since: iso(cut + 1), generated_at: at, payments: [], totals: { payments: 0, by_dialect: byDialect({}), approved_amounts: {}, deliveries: { count: 0, delivered: 0, failed: 0, pending: 0, attempts: 0 } } });
  });

  it('a bad since or a bad namespace is 400 VALIDATION_FAILED, a namespace that does not exist is 404; an Accept of neither JSON nor CSV is 406 (whole bodies)', async () => {
    const t = await fixtures.app();
    // Where the broken value was is named both ways: by the schema (pattern) and by the route's own check (format).
    const problem = (field: string, rule: string, message: string) => ({
      error: { code: 'VALIDATION_FAILED', message: `querystring ${field}: ${message}`, details: [{ field, rule, message, in: 'querystring' }], trace_id: TRACE_ID },
    });
    const sinceRule = 'must be an ISO 8601 UTC date and time, e.g. 2026-11-30T09:00:00Z';
    for (const since of ['2026-11-30', '2026-11-30T09:00:00+09:00', 'yesterday']) {
      const res = await report(t, `?since=${encodeURIComponent(since)}`);
      expect([res.statusCode, res.json()]).toEqual([400, problem('/since', 'pattern', sinceRule)]);
    }
    for (const since of ['2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-11-30T24:00:00Z', '2026-11-30T23:59:60Z']) {
      const res = await report(t, `?since=${encodeURIComponent(since)}`);
      expect([res.statusCode, res.json()]).toEqual([400, problem('/since', 'format', 'must be a valid ISO 8601 UTC date and time')]);
    }
    const badName = await report(t, '?namespace=a%20b');
    expect([badName.statusCode, badName.json()]).toEqual([400, problem('/namespace', 'pattern', 'must be 1 to 64 letters, digits, ".", "_" or "-", not dots alone')]);
    const other = await report(t, '?namespace=ci-job-7');
    expect([other.statusCode, other.json()]).toEqual([404, { error: { code: 'NOT_FOUND', message: 'The namespace ci-job-7 does not exist.', trace_id: TRACE_ID } }]);
    // The namespace a request names exists once named, and is reported on (empty here).
    const named = await t.app.inject({ method: 'GET', url: '/v1/sim/intents', headers: { 'x-sim-namespace': 'ci-job-7' } });
    expect(named.statusCode).toBe(200);
    const empty = await report(t, '?namespace=ci-job-7');
    expect([empty.statusCode, empty.json().namespace, empty.json().payments]).toEqual([200, 'ci-job-7', []]);
    const unknown = await report(t, '?limit=5');
    expect(unknown.statusCode).toBe(400);
    const xml = await report(t, '', 'application/xml');
    expect([xml.statusCode, xml.headers['content-type'], xml.json()]).toEqual([406, 'application/json; charset=utf-8', { error: { code: 'NOT_ACCEPTABLE', message: 'The report is available as application/json or text/csv; the Accept header allows neither.', trace_id: TRACE_ID } }]);
  });

  it('a store failing midway cuts the body short: the client never gets a complete-looking 200', async () => {
    const t = await fixtures.app();
    const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'rsv_cut', amount: 1000, scenario: 'approve' } });
    expect(created.statusCode).toBe(200);
    await createOrder(t, { orderName: 'Cut order' });
    const store = t.app.stores.fluxpay;
    const listOrders = store.listOrders.bind(store);
    store.listOrders = () => Promise.reject(new Error('the store went away'));
    try {
      // Over a real connection: the status and the native row arrived, then the connection was cut.
      const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
      for (const [accept, rows] of [['application/json', 0], ['text/csv', 2]] as const) {
        const got = await partialGet(`${address}/v1/sim/report`, accept);
        expect(got.status).toBe(200);
        expect(got.error).toBeDefined();
        expect(got.body).toContain('rsv_cut');
        if (accept === 'application/json') {
          expect(got.body.startsWith('{"namespace":"default","since":null,')).toBe(true);
          expect(got.body).not.toContain('"totals"');
          expect(() => JSON.parse(got.body) as unknown).toThrow(SyntaxError);
        } else {
          // The header and the intent, not the order.
          expect(got.body.split('\r\n').filter((line) => line !== '')).toHaveLength(rows);
        }
      }
      await expect(report(t)).rejects.toThrow('response destroyed before completion');
    } finally {
      store.listOrders = listOrders;
    }
    // The app is fine afterwards.
    expect(((await report(t)).json() as Json).totals.payments).toBe(2);
  });

  it('reads past one batch: 1,201 intents are all in the report, newest first', async () => {
    const t = await fixtures.app();
    const ids: string[] = [];
    for (let i = 0; i < 1201; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `rsv_${i}`, amount: 100 + i, scenario: 'approve' } });
      ids.push(res.json().payment_intent_id as string);
    }
    await t.clock.advance(0);
    const body = (await report(t)).json() as Json;
    expect((body.payments as Json[]).map((p) => p.id)).toEqual(ids.reverse());
    expect(body.totals.approved_amounts).toEqual({ KRW: 1201 * 100 + (1200 * 1201) / 2 });
    const csv = parse((await report(t, '', 'text/csv')).body) as string[][];
    expect(csv).toHaveLength(1202);
  });

  it('two runs with RANDOM_SEED=42 and the same requests give the same report, ids aside (JSON and CSV)', async () => {
    const runs: string[][] = [];
    for (let run = 0; run < 2; run++) {
      const { t, ok, failing } = await makePayments('42');
      // Mixed and random outcomes come from the seeded stream.
      for (let i = 0; i < 20; i++) {
        await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `rsv_seed_${i}`, amount: 1000 + i, scenario: i % 2 === 0 ? 'random' : 'mix', mix: i % 2 === 0 ? undefined : 'approve:1,fail:1' } });
      }
      await t.clock.advance(0);
      runs.push([withOrdinalIds((await report(t)).body), withOrdinalIds((await report(t, '', 'text/csv')).body)]);
      await ok.close();
      await failing.close();
      await t.app.close();
    }
    const [first, second] = runs as [string[], string[]];
    expect(second[0]).toBe(first[0]);
    expect(second[1]).toBe(first[1]);
    // Both outcomes occurred, so the comparison would see a different pick.
    const statuses = (JSON.parse(first[0] as string) as Json).payments.filter((p: Json) => String(p.reference).startsWith('rsv_seed_')).map((p: Json) => p.status);
    expect(new Set(statuses)).toEqual(new Set(['APPROVED', 'FAILED']));
  });
});

describe('reportFormat', () => {
  it('picks by q-value, then order; nothing acceptable is undefined', () => {
    expect(reportFormat(undefined)).toBe('json');
    expect(reportFormat('text/csv')).toBe('csv');
    expect(reportFormat('application/json;q=0.5, text/csv')).toBe('csv');
    expect(reportFormat('text/csv;q=0.2, application/json;q=0.9')).toBe('json');
    expect(reportFormat('text/*')).toBe('csv');
    expect(reportFormat('*/*')).toBe('json');
    expect(reportFormat('text/csv;q=0, application/xml')).toBeUndefined();
    expect(reportFormat('application/xml')).toBeUndefined();
  });
});
