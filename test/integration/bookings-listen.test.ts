import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, ISO, ULID, type TestApp } from '../helpers/app.ts';
import { runToExit } from '../helpers/child.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.ts';

/**
 * The whole flow over real sockets, as a ticketing backend sees it: book, pay through either API,
 * the booking turns confirmed, the ledger shows it, and a real receiver gets `booking.*` webhooks
 * whose signatures the `standardwebhooks` library accepts. Then the process: a bad catalog stops
 * the start with one line.
 * @see issue 4 "Tests" (the full flow through a real listening server)
 */

const WEBHOOK_SECRET = 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==';
const JWT_SECRET = 'listen-test-jwt-secret';
const USER = 'user_test_001';
const BK_ID = new RegExp(`^bk_${ULID}$`);
const EVT_ID = new RegExp(`^evt_${ULID}$`);

interface Wire {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

describe('the full flow through a real listening server', () => {
  let t: TestApp;
  let rx: Receiver;
  let base: string;
  const agent = new Agent({ connections: 4 });

  beforeAll(async () => {
    rx = await startReceiver();
    // Signature libraries check the webhook timestamp against the real time.
    t = await buildTestApp({ MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0', WEBHOOK_MAX_RPS: '0', JWT_SECRET }, { clockStart: Date.now() });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await agent.close();
    await t.app.close();
    await rx.close();
  });

  async function call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = { 'x-user-id': USER }): Promise<Wire> {
    const res = await request(`${base}${path}`, {
      dispatcher: agent,
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.statusCode, body: await res.body.json(), headers: res.headers };
  }

  /** The webhook with this index, verified with the library receivers use; its parsed body. */
  async function verifiedWebhook(index: number): Promise<{ req: ReceivedRequest; payload: Record<string, unknown> }> {
    const req = (await rx.waitFor(index + 1))[index]!;
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    const payload = new Webhook(WEBHOOK_SECRET).verify(req.body, headers) as Record<string, unknown>;
    return { req, payload };
  }

  it('book → pay (/payments/execute) → confirmed → ledger, and booking.confirmed reaches the receiver, signed', async () => {
    const booked = await call('POST', '/bookings', { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD', webhookUrl: rx.url('/hooks/bookings') });
    expect(booked.status).toBe(201);
    expect(booked.headers.connection).toBe('keep-alive');
    const { bookingId } = booked.body as { bookingId: string };
    expect(booked.body).toEqual({
      message: 'Booking and payment intent created. Please proceed to payment execution.',
      bookingId: expect.stringMatching(BK_ID),
      totalAmount: 60000,
      seatIds: ['A1', 'A2'],
      expiresAt: new Date(t.clock.now() + 600_000).toISOString(),
    });

    const paid = await call('POST', '/payments/execute', { bookingId, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' });
    expect(paid).toMatchObject({ status: 200, body: { message: 'Payment simulation finished with status: SUCCESS', finalStatus: 'SUCCESS', bookingId, pgMockData: { isSuccess: true, failureCode: null } } });
    expect(rx.requests).toHaveLength(0);

    await t.clock.advance(50); // the inbox processor
    const confirmedAt = new Date(t.clock.now()).toISOString();
    const { req, payload } = await verifiedWebhook(0);
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hooks/bookings');
    expect(req.headers['content-type']).toBe('application/json');
    expect(payload).toEqual({
      id: expect.stringMatching(EVT_ID),
      type: 'booking.confirmed',
      createdAt: confirmedAt,
      bookingId,
      userId: USER,
      performanceId: 'perf_001',
      quantity: 2,
      seatIds: ['A1', 'A2'],
      totalAmount: 60000,
      currency: 'KRW',
      status: 'confirmed',
      paymentStatus: 'SUCCESS',
      paymentMethod: 'CREDIT_CARD',
      failureCode: null,
    });
    expect(req.headers['webhook-id']).toBe(payload.id);
    expect(() => new Webhook(`whsec_${Buffer.from('another-secret-entirely').toString('base64')}`).verify(req.body, Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])))).toThrow();

    const mine = await call('GET', '/bookings/my');
    expect(mine.body).toEqual([expect.objectContaining({ bookingId, status: 'confirmed', seatIds: ['A1', 'A2'] })]);
    const ledger = (await call('GET', `/ledger?bookingId=${bookingId}`)).body as Array<{ account: string; direction: string; amount: number; createdAt: string }>;
    expect(ledger.map((e) => [e.account, e.direction, e.amount, e.createdAt])).toEqual([
      ['CUSTOMER_PAYABLE', 'DEBIT', 60000, confirmedAt],
      ['MERCHANT_BALANCE', 'CREDIT', 60000, confirmedAt],
    ]);
    expect((await call('GET', '/ledger/balances')).body).toEqual({
      balances: [
        { account: 'CUSTOMER_PAYABLE', currency: 'KRW', debits: 60000, credits: 0, balance: 60000 },
        { account: 'MERCHANT_BALANCE', currency: 'KRW', debits: 0, credits: 60000, balance: -60000 },
      ],
      imbalance: 0,
    });
    // The delivery is in the log, by booking.
    const delivery = (await t.app.webhooks.log.list({ limit: 10 })).data.find((d) => d.subject?.id === bookingId);
    expect(delivery).toMatchObject({ status: 'delivered', type: 'booking.confirmed', eventId: payload.id });
  });

  it('book → pay through /api/v1/payments/process with a JWT → confirmed at once, and webhooked', async () => {
    const booked = await call('POST', '/bookings', { performanceId: 'perf_002', quantity: 3, paymentMethod: 'kakao_pay', webhookUrl: rx.url('/hooks/004') });
    const { bookingId } = booked.body as { bookingId: string };
    const token = await new SignJWT({ userId: USER }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(t.clock.now() / 1000) + 600).sign(new TextEncoder().encode(JWT_SECRET));

    expect(await call('POST', '/api/v1/payments/process', { reservationId: bookingId, paymentMethod: 'kakao_pay' }, {})).toMatchObject({ status: 401, body: { error: '인증이 필요합니다.' } });
    const paid = await call('POST', '/api/v1/payments/process', { reservationId: bookingId, paymentMethod: 'kakao_pay' }, { authorization: `Bearer ${token}` });
    expect(paid.status).toBe(200);
    expect(paid.body).toEqual({
      success: true,
      message: '결제가 완료되었습니다.',
      payment: { reservationId: bookingId, paymentMethod: '카카오페이', totalAmount: 90000, paidAt: expect.stringMatching(ISO) },
      reservation: { performanceId: 'perf_002', seats: ['A1', 'A2', 'A3'] },
    });
    expect(((await call('GET', '/bookings/my')).body as Array<{ bookingId: string; status: string }>).find((b) => b.bookingId === bookingId)?.status).toBe('confirmed');
    const { req, payload } = await verifiedWebhook(1);
    expect(req.url).toBe('/hooks/004');
    expect(payload).toMatchObject({ type: 'booking.confirmed', bookingId, status: 'confirmed', paymentMethod: 'kakao_pay', totalAmount: 90000 });
  });

  it('a cancellation is webhooked as booking.cancelled; a failed payment as booking.failed with its code', async () => {
    const cancelled = ((await call('POST', '/bookings', { performanceId: 'perf_003', quantity: 1, paymentMethod: 'CARD', webhookUrl: rx.url('/hooks/c') })).body as { bookingId: string }).bookingId;
    expect(await call('DELETE', '/bookings/my', { bookingId: cancelled })).toMatchObject({ status: 200, body: { message: 'Booking cancelled successfully.' } });
    expect((await verifiedWebhook(2)).payload).toMatchObject({ type: 'booking.cancelled', bookingId: cancelled, status: 'cancelled', paymentStatus: 'PENDING', failureCode: null });

    const failed = ((await call('POST', '/bookings', { performanceId: 'perf_003', quantity: 1, paymentMethod: 'CARD', webhookUrl: rx.url('/hooks/f') })).body as { bookingId: string }).bookingId;
    expect((await call('POST', '/payments/execute', { bookingId: failed, paymentMethodToken: 'tok_chargeDeclined', cvv: '120' })).body).toMatchObject({ finalStatus: 'FAILURE', pgMockData: { failureCode: 'card_declined' } });
    await t.clock.advance(50);
    expect((await verifiedWebhook(3)).payload).toMatchObject({ type: 'booking.failed', bookingId: failed, status: 'failed', paymentStatus: 'FAILURE', failureCode: 'card_declined' });
  });
});

describe('the process', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'paysim-bookings-process-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['a missing PERFORMANCES_FILE', () => ({ PERFORMANCES_FILE: join(dir, 'nope.json') }), /^Invalid configuration: PERFORMANCES_FILE: cannot read .*nope\.json: ENOENT/],
    ['a PERFORMANCES_FILE with a bad entry', () => {
      const path = join(dir, 'bad.json');
      writeFileSync(path, JSON.stringify([{ id: 'p', title: 'T', venue: 'V', startsAt: 'tomorrow' }]));
      return { PERFORMANCES_FILE: path };
    }, /^Invalid configuration: PERFORMANCES_FILE: .*bad\.json: Invalid performances: \/0\/startsAt: /],
    ['MOCK_MIN_DELAY_MS above MOCK_MAX_DELAY_MS', () => ({ MOCK_MIN_DELAY_MS: '900', MOCK_MAX_DELAY_MS: '100' }), /^Invalid configuration: MOCK_MIN_DELAY_MS must not be above MOCK_MAX_DELAY_MS \(got 900 > 100\)$/],
  ])('%s stops the start: exit 1, one line on stderr naming the variable, nothing on stdout', async (_name, env, line) => {
    const { code, stdout, stderr } = await runToExit(env());
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  });
});
