import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import type { BookingEvent } from '../../src/core/events.ts';
import { settle } from '../helpers/manual-clock.ts';
import { buildTestApp, recordBookingEvents, ULID, untilScheduled, type TestApp } from '../helpers/app.ts';

/**
 * The ticketing payment-service API (document 004) through `inject`: payment methods, health,
 * the JWT rules, the body rules, the one-step payment and its race.
 * @see issue 4 "The ticketing payment-service API"
 */

const JSON_TYPE = 'application/json; charset=utf-8';
const SECRET = 'your-secret-key-change-in-production';
const USER = 'user_test_001';
const OTHER = 'user_test_002';
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const at = (ms: number) => new Date(ms).toISOString();
const PROCESS = '/api/v1/payments/process';

let t: TestApp;
let busEvents: BookingEvent[];

async function setup(env: Record<string, string> = {}, options: { clockStart?: number } = {}): Promise<void> {
  t = await buildTestApp({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0', JWT_SECRET: SECRET, ...env }, options);
  busEvents = recordBookingEvents(t);
}
afterEach(async () => {
  await t.app.close();
});

interface TokenOptions {
  secret?: string;
  alg?: string;
  /** Seconds from the app clock's now. */
  expiresIn?: number;
}

/** A token as the ticketing stack's auth service would mint it, timed on the app's clock. */
function token(claims: Record<string, unknown>, options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(t.clock.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'HS256' })
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 3600))
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

function pay(body: unknown, authorization?: string) {
  return t.app.inject({ method: 'POST', url: PROCESS, payload: body as object, headers: authorization === undefined ? {} : { authorization } });
}
async function payAs(user: string, body: unknown) {
  return pay(body, `Bearer ${await token({ userId: user })}`);
}
async function book(user = USER, quantity = 2, performanceId = 'perf_001'): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': user }, payload: { performanceId, quantity, paymentMethod: 'CREDIT_CARD' } });
  expect(res.statusCode).toBe(201);
  return res.json().bookingId;
}
const bookingsOf = async (user = USER) => (await t.app.inject({ url: '/bookings/my', headers: { 'x-user-id': user } })).json();

describe('GET /api/v1/payments/methods and GET /health', () => {
  it('need no token and answer as document 004', async () => {
    await setup({ JWT_SECRET: '' });
    const methods = await t.app.inject({ url: '/api/v1/payments/methods' });
    expect(methods.statusCode).toBe(200);
    expect(methods.headers['content-type']).toBe(JSON_TYPE);
    expect(methods.json()).toEqual({
      methods: [
        { id: 'naver_pay', name: '네이버페이', description: '네이버페이로 간편하게 결제합니다.', icon: '🟢' },
        { id: 'kakao_pay', name: '카카오페이', description: '카카오페이로 간편하게 결제합니다.', icon: '🟡' },
        { id: 'bank_transfer', name: '계좌이체', description: '실시간 계좌이체로 결제합니다.', icon: '🏦' },
        { id: 'credit_card', name: '신용카드', description: '신용카드 또는 체크카드로 결제합니다.', icon: '💳' },
      ],
    });
    const health = await t.app.inject({ url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok', service: 'payment-service' });
  });
});

describe('POST /api/v1/payments/process: authentication', () => {
  it('503 naming JWT_SECRET while it is unset, token or not', async () => {
    await setup({ JWT_SECRET: '' });
    const id = await book();
    for (const authorization of [undefined, `Bearer ${await token({ userId: USER })}`]) {
      const res = await pay({ reservationId: id, paymentMethod: 'kakao_pay' }, authorization);
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toBe(JSON_TYPE);
      expect(res.json()).toEqual({ error: 'JWT_SECRET이 설정되지 않아 결제 서비스를 사용할 수 없습니다. 환경변수 JWT_SECRET을 설정하세요.' });
    }
    expect((await bookingsOf())[0].status).toBe('pending');
  });

  it.each([
    ['no Authorization header', undefined],
    ['an empty header', ''],
    ['Bearer without a token', 'Bearer '],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
  ])('401 with %s', async (_name, authorization) => {
    await setup();
    const res = await pay({ reservationId: 'bk_01JAAAAAAAAAAAAAAAAAAAAAAA', paymentMethod: 'kakao_pay' }, authorization);
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({ error: '인증이 필요합니다.' });
  });

  it('401 comes before the body is looked at', async () => {
    await setup();
    const res = await pay({ nonsense: true });
    expect([res.statusCode, res.json()]).toEqual([401, { error: '인증이 필요합니다.' }]);
  });

  it.each([
    ['a bad signature', () => token({ userId: USER }, { secret: 'another-secret' })],
    ['an expired token', () => token({ userId: USER }, { expiresIn: -1 })],
    ['garbage', async () => 'not.a.jwt'],
    ['an unsigned token (alg none)', async () => new UnsecuredJWT({ userId: USER }).encode()],
    ['HS512 with the right secret (only HS256 is accepted)', () => token({ userId: USER }, { alg: 'HS512' })],
    ['no userId and no sub claim', () => token({ name: 'someone' })],
    ['an empty userId and no sub', () => token({ userId: '' })],
    ['a userId that is an object', () => token({ userId: { id: 1 } })],
  ])('403 for %s; the booking is left alone', async (_name, make) => {
    await setup();
    const id = await book();
    const res = await pay({ reservationId: id, paymentMethod: 'kakao_pay' }, `Bearer ${await make()}`);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ error: '유효하지 않은 토큰입니다.' });
    expect((await bookingsOf())[0].status).toBe('pending');
  });

  it('expiry is judged on the injected clock', async () => {
    await setup();
    const id = await book();
    const authorization = `Bearer ${await token({ userId: USER }, { expiresIn: 60 })}`;
    await t.clock.advance(61_000);
    const res = await pay({ reservationId: id, paymentMethod: 'kakao_pay' }, authorization);
    expect([res.statusCode, res.json()]).toEqual([403, { error: '유효하지 않은 토큰입니다.' }]);
  });

  it('accepts a token minted by scripts/mint-token.ts with the same JWT_SECRET', async () => {
    await setup({}, { clockStart: Date.now() });
    const id = await book('local-dev');
    const script = resolve(import.meta.dirname, '..', '..', 'scripts', 'mint-token.ts');
    const { stdout } = await promisify(execFile)(process.execPath, [script, 'local-dev', '15m'], { env: { PATH: process.env.PATH ?? '', JWT_SECRET: SECRET } });
    expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const res = await pay({ reservationId: id, paymentMethod: 'naver_pay' }, `Bearer ${stdout.trim()}`);
    expect(res.statusCode).toBe(200);
    // Another secret's token is refused.
    const other = await promisify(execFile)(process.execPath, [script, 'local-dev'], { env: { PATH: process.env.PATH ?? '', JWT_SECRET: 'not-the-secret' } });
    const refused = await pay({ reservationId: await book('local-dev'), paymentMethod: 'naver_pay' }, `Bearer ${other.stdout.trim()}`);
    expect([refused.statusCode, refused.json()]).toEqual([403, { error: '유효하지 않은 토큰입니다.' }]);
  });

  it('the user is the userId claim, else sub; an integer id is read as its digits', async () => {
    await setup();
    const bySub = await book('sub-user');
    const res = await pay({ reservationId: bySub, paymentMethod: 'naver_pay' }, `Bearer ${await token({ sub: 'sub-user' })}`);
    expect(res.statusCode).toBe(200);
    // userId wins over sub.
    const mine = await book(USER);
    const both = await pay({ reservationId: mine, paymentMethod: 'naver_pay' }, `Bearer ${await token({ userId: USER, sub: 'sub-user' })}`);
    expect(both.statusCode).toBe(200);
    const numeric = await book('42');
    const byNumber = await pay({ reservationId: numeric, paymentMethod: 'naver_pay' }, `Bearer ${await token({ userId: 42 })}`);
    expect(byNumber.statusCode).toBe(200);
  });
});

describe('POST /api/v1/payments/process: the payment', () => {
  it('200: confirms the booking in one step (seats reserved, ledger written, event recorded) and answers as document 004', async () => {
    await setup();
    const id = await book(USER, 3);
    const res = await payAs(USER, { reservationId: id, paymentMethod: 'kakao_pay' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(JSON_TYPE);
    expect(res.json()).toEqual({
      success: true,
      message: '결제가 완료되었습니다.',
      payment: { reservationId: id, paymentMethod: '카카오페이', totalAmount: 90000, paidAt: at(T0) },
      reservation: { performanceId: 'perf_001', seats: ['A1', 'A2', 'A3'] },
    });
    // No processor step: everything has happened when the answer arrives.
    expect((await bookingsOf())[0]).toMatchObject({ bookingId: id, status: 'confirmed' });
    const headers = { 'x-user-id': USER };
    expect((await t.app.inject({ url: '/performances/perf_001/seats', headers })).json().counts).toEqual({ total: 200, available: 197, held: 0, reserved: 3 });
    const ledger = (await t.app.inject({ url: `/ledger?bookingId=${id}`, headers })).json();
    expect(ledger.map((e: { account: string; direction: string; amount: number }) => [e.account, e.direction, e.amount])).toEqual([
      ['CUSTOMER_PAYABLE', 'DEBIT', 90000],
      ['MERCHANT_BALANCE', 'CREDIT', 90000],
    ]);
    expect((await t.app.inject({ url: `/events?bookingId=${id}`, headers })).json()).toEqual([
      {
        eventId: expect.stringMatching(new RegExp(`^evt_${ULID}$`)),
        type: 'PAYMENT_SUCCEEDED',
        bookingId: id,
        details: { failureCode: null, paymentMethodToken: null, paymentMethod: 'kakao_pay', amount: 90000, currency: 'KRW' },
        createdAt: at(T0),
        processedAt: at(T0),
      },
    ]);
    expect(busEvents.map((e) => [e.type, e.booking.id])).toEqual([['booking.confirmed', id]]);
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('payments_executed_total{result="success",failure_code="none"} 1');
    expect(metrics).toContain('bookings_total{status="confirmed"} 1');
  });

  it.each([
    ['no fields', {}, '예약 ID와 결제 수단은 필수입니다.'],
    ['no paymentMethod', { reservationId: 'bk_01JAAAAAAAAAAAAAAAAAAAAAAA' }, '예약 ID와 결제 수단은 필수입니다.'],
    ['an empty reservationId', { reservationId: '', paymentMethod: 'kakao_pay' }, '예약 ID와 결제 수단은 필수입니다.'],
    ['a null reservationId (missing, as the original’s !reservationId took it)', { reservationId: null, paymentMethod: 'kakao_pay' }, '예약 ID와 결제 수단은 필수입니다.'],
    ['a null paymentMethod', { reservationId: 'bk_01JAAAAAAAAAAAAAAAAAAAAAAA', paymentMethod: null }, '예약 ID와 결제 수단은 필수입니다.'],
    ['a uuid', { reservationId: '3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c', paymentMethod: 'kakao_pay' }, '유효하지 않은 예약 ID입니다.'],
    ['a lower-case ULID', { reservationId: 'bk_01jaaaaaaaaaaaaaaaaaaaaaaa', paymentMethod: 'kakao_pay' }, '유효하지 않은 예약 ID입니다.'],
    ['a numeric id', { reservationId: 12, paymentMethod: 'kakao_pay' }, '유효하지 않은 예약 ID입니다.'],
    ['an unknown method', { reservationId: 'bk_01JAAAAAAAAAAAAAAAAAAAAAAA', paymentMethod: 'paypal' }, '지원하지 않는 결제 수단입니다.'],
    ['a display name as the method', { reservationId: 'bk_01JAAAAAAAAAAAAAAAAAAAAAAA', paymentMethod: '카카오페이' }, '지원하지 않는 결제 수단입니다.'],
    ['an unknown field', { reservationId: 'bk_01JAAAAAAAAAAAAAAAAAAAAAAA', paymentMethod: 'kakao_pay', amount: 1 }, '알 수 없는 필드가 포함되어 있습니다: amount'],
    ['an array body', [], '잘못된 요청입니다.'],
  ])('400 for %s', async (_name, body, error) => {
    await setup();
    const res = await payAs(USER, body);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe(JSON_TYPE);
    expect(res.json()).toEqual({ error });
  });

  it('400 for malformed JSON (in Korean, saying where it broke), 415 for a form', async () => {
    await setup();
    const authorization = `Bearer ${await token({ userId: USER })}`;
    const bad = await t.app.inject({ method: 'POST', url: PROCESS, headers: { authorization, 'content-type': 'application/json' }, payload: '{"reservationId":' });
    expect([bad.statusCode, bad.json()]).toEqual([400, { error: '요청 본문의 JSON 형식이 올바르지 않습니다 (1행 18열, 위치 17).' }]);
    const form = await t.app.inject({ method: 'POST', url: PROCESS, headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'reservationId=x' });
    expect([form.statusCode, form.json()]).toEqual([415, { error: '요청 본문은 application/json 형식이어야 합니다.' }]);
  });

  it('404 when the booking does not exist or is another user’s', async () => {
    await setup();
    const unknown = await payAs(USER, { reservationId: 'bk_01JAAAAAAAAAAAAAAAAAAAAAAA', paymentMethod: 'kakao_pay' });
    expect([unknown.statusCode, unknown.json()]).toEqual([404, { error: '예약을 찾을 수 없습니다.' }]);
    const theirs = await book(OTHER);
    const foreign = await payAs(USER, { reservationId: theirs, paymentMethod: 'kakao_pay' });
    expect([foreign.statusCode, foreign.json()]).toEqual([404, { error: '예약을 찾을 수 없습니다.' }]);
    expect((await bookingsOf(OTHER))[0].status).toBe('pending');
  });

  it('400 when already paid, expired, cancelled or failed', async () => {
    await setup();
    const paid = await book();
    expect((await payAs(USER, { reservationId: paid, paymentMethod: 'bank_transfer' })).statusCode).toBe(200);
    const again = await payAs(USER, { reservationId: paid, paymentMethod: 'bank_transfer' });
    expect([again.statusCode, again.json()]).toEqual([400, { error: '이미 결제된 예약입니다.' }]);

    const cancelled = await book();
    await t.app.inject({ method: 'DELETE', url: '/bookings/my', headers: { 'x-user-id': USER }, payload: { bookingId: cancelled } });
    const c = await payAs(USER, { reservationId: cancelled, paymentMethod: 'bank_transfer' });
    expect([c.statusCode, c.json()]).toEqual([400, { error: '취소된 예약입니다.' }]);

    const failed = await book();
    await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': USER }, payload: { bookingId: failed, paymentMethodToken: 'tok_visa', cvv: '442' } });
    const decided = await payAs(USER, { reservationId: failed, paymentMethod: 'bank_transfer' });
    expect([decided.statusCode, decided.json()]).toEqual([400, { error: '이미 결제가 진행 중인 예약입니다.' }]);
    await t.clock.advance(50);
    const f = await payAs(USER, { reservationId: failed, paymentMethod: 'bank_transfer' });
    expect([f.statusCode, f.json()]).toEqual([400, { error: '결제에 실패한 예약입니다. 다시 예약해 주세요.' }]);

    const lapsed = await book();
    await t.clock.advance(600_000);
    const e = await payAs(USER, { reservationId: lapsed, paymentMethod: 'bank_transfer' });
    expect([e.statusCode, e.json()]).toEqual([400, { error: '만료된 예약입니다.' }]);
    // Expired before anyone looked (the due expiry), and expired on the spot (no expiry run yet) read the same.
    const fresh = await book();
    t.app.core.scheduler.stop();
    await t.clock.advance(600_000);
    const onTheSpot = await payAs(USER, { reservationId: fresh, paymentMethod: 'bank_transfer' });
    expect([onTheSpot.statusCode, onTheSpot.json()]).toEqual([400, { error: '만료된 예약입니다.' }]);
  });

  it('waits out the processing delay on the injected clock', async () => {
    await setup({ MOCK_MIN_DELAY_MS: '500', MOCK_MAX_DELAY_MS: '1500' });
    const id = await book();
    const authorization = `Bearer ${await token({ userId: USER })}`;
    const before = t.clock.pendingTimers;
    let answered = false;
    const paying = pay({ reservationId: id, paymentMethod: 'credit_card' }, authorization).then((res) => {
      answered = true;
      return res;
    });
    await untilScheduled(t, before);
    await t.clock.advance(499);
    // Everything due by now has run and settled (the manual clock's advance waits for it): no answer may be due.
    await settle();
    expect(answered).toBe(false);
    expect((await bookingsOf())[0].status).toBe('pending');
    await t.clock.advance(1001);
    const res = await paying;
    expect(res.statusCode).toBe(200);
    const paidAt = Date.parse(res.json().payment.paidAt);
    expect(paidAt - T0).toBeGreaterThanOrEqual(500);
    expect(paidAt - T0).toBeLessThanOrEqual(1500);
    expect(res.json().payment.paymentMethod).toBe('신용카드');
    expect((await bookingsOf())[0].status).toBe('confirmed');
  });

  it.each([
    ['without a delay', { MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' }],
    ['with the default 500–1500 ms delay', { MOCK_MIN_DELAY_MS: '500', MOCK_MAX_DELAY_MS: '1500' }],
  ])('two concurrent calls for one booking %s: exactly one 200, one ledger transaction', async (_name, env) => {
    await setup(env);
    const id = await book();
    const authorization = `Bearer ${await token({ userId: USER })}`;
    const before = t.clock.pendingTimers;
    const calls = [pay({ reservationId: id, paymentMethod: 'naver_pay' }, authorization), pay({ reservationId: id, paymentMethod: 'kakao_pay' }, authorization)];
    const both = Promise.all(calls);
    if (env.MOCK_MAX_DELAY_MS !== '0') {
      await untilScheduled(t, before);
      // The loser answers at once, while the winner waits for the clock: only then does the clock move.
      await Promise.race(calls);
      await t.clock.advance(1500);
    }
    const results = await both;
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 400]);
    // With a delay the loser arrives while the winner is in flight; without one the winner may already be done.
    const loser = results.find((r) => r.statusCode === 400)!.json();
    if (env.MOCK_MAX_DELAY_MS === '0') expect([{ error: '이미 결제가 진행 중인 예약입니다.' }, { error: '이미 결제된 예약입니다.' }]).toContainEqual(loser);
    else expect(loser).toEqual({ error: '이미 결제가 진행 중인 예약입니다.' });
    const ledger = (await t.app.inject({ url: `/ledger?bookingId=${id}`, headers: { 'x-user-id': USER } })).json();
    expect(ledger).toHaveLength(2);
    expect(busEvents.map((e) => e.type)).toEqual(['booking.confirmed']);
  });

  it('a payment through one API excludes the other: /payments/execute after /api/v1/payments/process is a 409', async () => {
    await setup();
    const id = await book();
    expect((await payAs(USER, { reservationId: id, paymentMethod: 'naver_pay' })).statusCode).toBe(200);
    const execute = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': USER }, payload: { bookingId: id, paymentMethodToken: 'tok_visa', cvv: '120' } });
    expect([execute.statusCode, execute.json().code]).toEqual([409, 'PAYMENT_ALREADY_PROCESSED']);
  });
});
