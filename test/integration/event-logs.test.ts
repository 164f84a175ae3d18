import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createRandom } from '../../src/core/random.ts';
import { loggerOptions } from '../../src/logger.ts';
import { originAndPath } from '../../src/http/logged-url.ts';
import { FAILURE_WARNINGS_PER_INTERVAL, LOG_FULL_MSG, RETRY_WARNINGS_PER_INTERVAL, WARNING_INTERVAL_MS } from '../../src/plugins/app/event-logs.ts';
import { REENABLED_WARNINGS_PER_INTERVAL } from '../../src/plugins/app/webhooks.ts';
import { ISO, ULID } from '../helpers/app.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { eventually, receiverPool } from '../helpers/receiver.ts';
import { metricSample } from '../helpers/webhooks.ts';

/**
 * What the log says about webhook trouble (warn) and decisions (debug): the records themselves,
 * from the app's pino logger writing to memory, with real receivers and time on a manual clock.
 * @see issue 8 "Logs people can read"
 */

type LogRecord = Record<string, unknown> & { level: string; msg: string };

interface LogApp {
  app: FastifyInstance;
  clock: ManualClock;
  records: LogRecord[];
  /** Bus events of `type` published so far. */
  count(type: string): number;
}

const WHD_ID = new RegExp(`^whd_${ULID}$`);
const RETRY_MSG = 'webhook attempt failed; retry scheduled';

const apps: FastifyInstance[] = [];
const receivers = receiverPool();
afterEach(async () => {
  await receivers.closeAll();
  for (const app of apps.splice(0)) await app.close();
});

async function logApp(env: Record<string, string> = {}): Promise<LogApp> {
  const config = loadConfig({
    WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==',
    SHUTDOWN_TIMEOUT_MS: '0',
    RANDOM_SEED: '42',
    WEBHOOK_MAX_RPS: '0',
    LOG_LEVEL: 'debug',
    MOCK_MIN_DELAY_MS: '0',
    MOCK_MAX_DELAY_MS: '0',
    ...env,
  });
  const records: LogRecord[] = [];
  // The process's own options (levels as labels, redaction), writing each record to memory.
  const logger = pino(loggerOptions(config), { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  const clock = new ManualClock();
  const app = await buildApp({ config, clock, random: createRandom(config.randomSeed), logger });
  apps.push(app);
  const counts = new Map<string, number>();
  app.core.bus.subscribe((event) => void counts.set(event.type, (counts.get(event.type) ?? 0) + 1));
  await app.ready();
  return { app, clock, records, count: (type) => counts.get(type) ?? 0 };
}

async function createIntent(t: LogApp, body: Record<string, unknown>): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_1', amount: 1000, scenario: 'approve', ...body } });
  expect(res.statusCode).toBe(200);
  return res.json().payment_intent_id;
}

const withMsg = (t: LogApp, msg: string | RegExp) => t.records.filter((r) => (typeof msg === 'string' ? r.msg === msg : msg.test(r.msg)));
const waitForRecord = (t: LogApp, msg: string | RegExp, count = 1) =>
  eventually(() => (withMsg(t, msg).length >= count ? withMsg(t, msg) : undefined), `${count} log record(s) ${String(msg)}`);

describe('webhook trouble is logged at warn', () => {
  it('a retry after an error: delivery id, origin and path only (no query string), attempt number, reason and when it retries', async () => {
    const rx = await receivers.start(() => ({ status: 503 }));
    const t = await logApp({ WEBHOOK_BACKOFF_MS: '1000' });
    const id = await createIntent(t, { webhook_url: rx.url('/hook?token=s3cr3t&x=1') });
    await t.clock.advance(200);
    const [first] = await waitForRecord(t, RETRY_MSG);
    expect(first).toEqual({
      level: 'warn',
      time: expect.stringMatching(ISO),
      service: 'paysim',
      msg: RETRY_MSG,
      delivery_id: expect.stringMatching(WHD_ID),
      event_type: 'payment.approved',
      subject: `intent:${id}`,
      url: `${rx.origin}/hook`,
      attempt: 1,
      reason: 'HTTP 503',
      next_attempt_at: expect.stringMatching(ISO),
    });

    // The second attempt is numbered 2.
    await t.clock.advance(Date.parse(first!.next_attempt_at as string) - t.clock.now());
    const records = await waitForRecord(t, RETRY_MSG, 2);
    expect(records[1]).toMatchObject({ delivery_id: first!.delivery_id, attempt: 2, reason: 'HTTP 503' });
    expect(JSON.stringify(t.records)).not.toContain('s3cr3t');
  });

  it('a network error is the retry reason, in words', async () => {
    const rx = await receivers.start();
    const url = rx.url('/down');
    await rx.close();
    const t = await logApp();
    await createIntent(t, { webhook_url: url });
    await t.clock.advance(200);
    const [record] = await waitForRecord(t, RETRY_MSG);
    expect(record).toMatchObject({ level: 'warn', url, attempt: 1, reason: expect.stringMatching(/^ECONNREFUSED/) });
  });

  it('a delivery that ends failed: its id, target, attempts made and the failure reason', async () => {
    const rx = await receivers.start(() => ({ status: 500 }));
    const t = await logApp({ WEBHOOK_MAX_RETRIES: '0' });
    const id = await createIntent(t, { webhook_url: rx.url('/hook') });
    await t.clock.advance(200);
    const [record] = await waitForRecord(t, 'webhook delivery failed');
    expect(record).toEqual({
      level: 'warn',
      time: expect.stringMatching(ISO),
      service: 'paysim',
      msg: 'webhook delivery failed',
      delivery_id: expect.stringMatching(WHD_ID),
      event_type: 'payment.approved',
      subject: `intent:${id}`,
      url: `${rx.origin}/hook`,
      attempt: 1,
      reason: 'max_retries_exceeded: HTTP 500',
    });
    expect(withMsg(t, RETRY_MSG)).toEqual([]);
  });

  it('410 Gone: the delivery ends gone and the URL is disabled, both at warn; a later delivery fails as endpoint_disabled', async () => {
    const rx = await receivers.start(() => ({ status: 410 }));
    const t = await logApp();
    await createIntent(t, { webhook_url: rx.url('/gone?sig=s3cr3t') });
    await t.clock.advance(200);
    const [gone] = await waitForRecord(t, 'webhook delivery gone: the receiver answered 410');
    expect(gone).toMatchObject({ level: 'warn', delivery_id: expect.stringMatching(WHD_ID), url: `${rx.origin}/gone`, attempt: 1, reason: 'gone' });
    const [disabled] = withMsg(t, /^webhook URL disabled/);
    expect(disabled).toMatchObject({ level: 'warn', url: `${rx.origin}/gone`, delivery_id: gone!.delivery_id, reason: 'HTTP 410 Gone' });
    expect(disabled!.msg).toContain('DELETE /v1/sim/webhooks/disabled-urls?url=… with the whole URL, its query too, as GET /v1/sim/webhooks/disabled-urls lists it: the log leaves the query out');
    // Neither is also logged as a plain failure.
    expect(withMsg(t, 'webhook delivery failed')).toEqual([]);

    await createIntent(t, { webhook_url: rx.url('/gone?sig=s3cr3t') });
    await t.clock.advance(200);
    const [blocked] = await waitForRecord(t, 'webhook delivery failed');
    expect(blocked).toMatchObject({ level: 'warn', url: `${rx.origin}/gone`, attempt: 0, reason: 'endpoint_disabled' });
    expect(rx.requests).toHaveLength(1);
    expect(JSON.stringify(t.records)).not.toContain('s3cr3t');
  });

  it(`past WEBHOOK_MAX_DISABLED_URLS a 410 re-enables the URL disabled first and says so at warn (origin and path only), ${REENABLED_WARNINGS_PER_INTERVAL} a minute, then their count; deliveries to it go out again (before 2026-12-07: not logged)`, async () => {
    const rx = await receivers.start(() => ({ status: 410 }));
    const t = await logApp({ WEBHOOK_MAX_DISABLED_URLS: '1' });
    const start = t.clock.now();
    const gone = (n: number) => rx.url(`/gone-${String(n)}?sig=s3cr3t`);
    // One URL after another answers 410: each disables its own and re-enables the one before.
    const urls = REENABLED_WARNINGS_PER_INTERVAL + 3;
    for (let n = 0; n < urls; n++) {
      await createIntent(t, { reservation_id: `res_${String(n)}`, webhook_url: gone(n) });
      await t.clock.advance(200);
      await waitForRecord(t, 'webhook delivery gone: the receiver answered 410', n + 1);
    }
    const told = withMsg(t, /^webhook URL re-enabled/);
    expect(told.map((r) => r.url)).toEqual(Array.from({ length: REENABLED_WARNINGS_PER_INTERVAL }, (_, n) => `${rx.origin}/gone-${String(n)}`));
    expect(told[0]).toEqual({
      level: 'warn',
      time: expect.stringMatching(ISO),
      service: 'paysim',
      msg: 'webhook URL re-enabled: WEBHOOK_MAX_DISABLED_URLS (1) URLs were disabled and another answered 410, so the one disabled first is attempted again',
      url: `${rx.origin}/gone-0`,
      max_disabled_urls: 1,
      // The delivery whose 410 pushed it out: the next URL's, whose own lines come first.
      delivery_id: expect.stringMatching(WHD_ID),
    });
    const second = withMsg(t, /^webhook delivery gone/)[1];
    expect((told[0] as LogRecord).delivery_id).toBe((second as LogRecord).delivery_id);
    const order = t.records.map((r) => r.msg).filter((msg) => /^webhook URL (disabled|re-enabled)/.test(msg)).slice(0, 3);
    expect(order.map((msg) => msg.split(':')[0])).toEqual(['webhook URL disabled', 'webhook URL disabled', 'webhook URL re-enabled']);
    // The other 2 are counted, and told when the minute since the first one told ends (that was in
    // the second URL's 200 ms on the clock).
    await t.clock.advance(start + 200 + WARNING_INTERVAL_MS - t.clock.now());
    expect(withMsg(t, /^webhook URLs re-enabled/)).toEqual([]);
    await t.clock.advance(200);
    const [summary] = await waitForRecord(t, /^webhook URLs re-enabled/);
    const since = (summary as LogRecord).since as string;
    expect(Date.parse(since)).toBeGreaterThan(start + 200);
    expect(Date.parse(since)).toBeLessThanOrEqual(start + 400);
    expect(summary).toEqual({
      level: 'warn',
      time: expect.stringMatching(ISO),
      service: 'paysim',
      msg: `webhook URLs re-enabled at WEBHOOK_MAX_DISABLED_URLS: 2 more since ${since}`,
      urls: 2,
      since,
      max_disabled_urls: 1,
    });
    // The first URL is attempted again (a second request, its own 410), and the only one disabled is the last.
    await createIntent(t, { reservation_id: 'res_again', webhook_url: gone(0) });
    await t.clock.advance(200);
    await waitForRecord(t, 'webhook delivery gone: the receiver answered 410', urls + 1);
    expect(rx.requests.filter((r) => r.url.startsWith('/gone-0?'))).toHaveLength(2);
    const listed = await t.app.inject({ url: '/v1/sim/webhooks/disabled-urls' });
    expect(listed.json()).toMatchObject({ data: [{ url: gone(0) }] });
    expect(JSON.stringify(t.records)).not.toContain('s3cr3t');
  });

  it(`retry warnings: at most ${RETRY_WARNINGS_PER_INTERVAL} per receiver origin a minute, then one summary of the rest`, async () => {
    const dead = await receivers.start(() => ({ status: 503 }));
    const other = await receivers.start(() => ({ status: 500 }));
    // Retries wait 2 minutes: none of them runs within the minute the test watches.
    const t = await logApp({ WEBHOOK_BACKOFF_MS: '120000', WEBHOOK_BACKOFF_MAX_MS: '120000' });
    const start = t.clock.now();
    const flood = RETRY_WARNINGS_PER_INTERVAL + 3;
    for (let i = 0; i < flood; i++) await createIntent(t, { reservation_id: `res_${i}`, webhook_url: dead.url('/hook') });
    await t.clock.advance(200);
    await eventually(() => (t.count('webhook.retry_scheduled') === flood ? true : undefined), `${flood} retries scheduled`);

    const warnings = withMsg(t, RETRY_MSG);
    expect(warnings).toHaveLength(RETRY_WARNINGS_PER_INTERVAL);
    expect(new Set(warnings.map((w) => w.delivery_id)).size).toBe(RETRY_WARNINGS_PER_INTERVAL);
    expect(withMsg(t, /suppressed/)).toEqual([]);

    // Another receiver has a budget of its own.
    await createIntent(t, { webhook_url: other.url('/hook') });
    await t.clock.advance(200);
    await eventually(() => (t.count('webhook.retry_scheduled') === flood + 1 ? true : undefined), 'the other receiver’s retry');
    expect(withMsg(t, RETRY_MSG).filter((w) => w.url === `${other.origin}/hook`)).toHaveLength(1);

    // When the minute that began with the first warning is over: one line with the count left out.
    await t.clock.advance(start + 200 + WARNING_INTERVAL_MS - t.clock.now() - 1);
    expect(withMsg(t, /suppressed/)).toEqual([]);
    await t.clock.advance(1);
    const summaries = withMsg(t, /^webhook retry warnings suppressed/);
    expect(summaries).toEqual([
      {
        level: 'warn',
        time: expect.stringMatching(ISO),
        service: 'paysim',
        msg: `webhook retry warnings suppressed: 3 more retries to ${dead.origin} since ${new Date(start + 200).toISOString()}`,
        origin: dead.origin,
        suppressed: 3,
        since: new Date(start + 200).toISOString(),
      },
    ]);
  });

  it(`failure warnings are limited the same way (${FAILURE_WARNINGS_PER_INTERVAL} per origin a minute); what is left out is told at close`, async () => {
    const rx = await receivers.start(() => ({ status: 500 }));
    const t = await logApp({ WEBHOOK_MAX_RETRIES: '0' });
    const flood = FAILURE_WARNINGS_PER_INTERVAL + 2;
    for (let i = 0; i < flood; i++) await createIntent(t, { reservation_id: `res_${i}`, webhook_url: rx.url('/hook') });
    await t.clock.advance(200);
    await eventually(() => (t.count('webhook.failed') === flood ? true : undefined), `${flood} deliveries failed`);
    expect(withMsg(t, 'webhook delivery failed')).toHaveLength(FAILURE_WARNINGS_PER_INTERVAL);
    await t.app.close();
    expect(withMsg(t, /^webhook failure warnings suppressed/)).toMatchObject([{ level: 'warn', origin: rx.origin, suppressed: 2 }]);
  });

  it('webhooks dropped because the delivery log is full: the first of a minute at error, with its delivery, then one line with the count of the rest', async () => {
    const rx = await receivers.start(() => ({ status: 503 }));
    // Two deliveries retrying (their retries 2 minutes away) fill the log; every later webhook is dropped.
    const t = await logApp({ WEBHOOK_LOG_MAX: '2', WEBHOOK_BACKOFF_MS: '120000', WEBHOOK_BACKOFF_MAX_MS: '120000' });
    for (let i = 0; i < 2; i++) await createIntent(t, { reservation_id: `res_kept_${i}`, webhook_url: rx.url('/hook') });
    await t.clock.advance(200);
    await eventually(() => (t.count('webhook.retry_scheduled') === 2 ? true : undefined), 'two deliveries retrying');
    const start = t.clock.now();
    const dropped = 25;
    for (let i = 0; i < dropped; i++) await createIntent(t, { reservation_id: `res_dropped_${i}`, webhook_url: rx.url('/hook') });
    await t.clock.advance(200);
    await eventually(() => (t.count('webhook.failed') === dropped ? true : undefined), `${dropped} webhooks dropped`);
    const errors = t.records.filter((r) => r.level === 'error');
    expect(errors).toEqual([
      {
        level: 'error',
        time: expect.stringMatching(ISO),
        service: 'paysim',
        msg: LOG_FULL_MSG,
        delivery_id: expect.stringMatching(WHD_ID),
        event_type: 'payment.approved',
        subject: expect.stringMatching(/^intent:pay_/),
        url: `${rx.origin}/hook`,
        attempt: 0,
        event_id: expect.stringMatching(/^evt_/),
        reason: 'log_full',
      },
    ]);
    // The dropped delivery is in no log; its event is the one of the intent it came from.
    const first = errors[0] as LogRecord;
    expect((await t.app.inject({ method: 'GET', url: `/v1/sim/webhooks/deliveries/${String(first.delivery_id)}` })).statusCode).toBe(404);
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metricSample(metrics, 'webhook_deliveries_total{result="dropped"}')).toBe(dropped);
    // Neither a failure warning per drop nor any other line about them.
    expect(withMsg(t, 'webhook delivery failed')).toEqual([]);
    // The minute began with the first drop (the decisions ran 200 ms after `start`).
    await t.clock.advance(start + 200 + WARNING_INTERVAL_MS - t.clock.now() - 1);
    expect(t.records.filter((r) => r.level === 'error')).toHaveLength(1);
    await t.clock.advance(1);
    const since = new Date(start + 200).toISOString();
    expect(t.records.filter((r) => r.level === 'error').slice(1)).toEqual([
      { level: 'error', time: expect.stringMatching(ISO), service: 'paysim', msg: `webhooks dropped as the delivery log was full: ${dropped - 1} more since ${since}`, reason: 'log_full', suppressed: dropped - 1, since },
    ]);
    // A new minute: its first drop is logged again; what it left out is told at close.
    for (let i = 0; i < 3; i++) await createIntent(t, { reservation_id: `res_later_${i}`, webhook_url: rx.url('/hook') });
    await t.clock.advance(200);
    await eventually(() => (t.count('webhook.failed') === dropped + 3 ? true : undefined), 'three more dropped');
    expect(t.records.filter((r) => r.level === 'error').map((r) => r.msg)).toEqual([LOG_FULL_MSG, expect.stringMatching(/^webhooks dropped as the delivery log was full: 24 more/), LOG_FULL_MSG]);
    await t.app.close();
    expect(t.records.filter((r) => r.level === 'error').slice(3)).toMatchObject([{ msg: expect.stringMatching(/^webhooks dropped as the delivery log was full: 2 more since /), suppressed: 2 }]);
  });

  it('the target is logged as origin and path: never user info, query or fragment', () => {
    expect(originAndPath('https://user:pw@hooks.example.com:8443/a/b?token=x#frag')).toBe('https://hooks.example.com:8443/a/b');
    expect(originAndPath('http://127.0.0.1:3000')).toBe('http://127.0.0.1:3000/');
    expect(originAndPath('not a url')).toBe('(invalid URL)');
  });
});

describe('decisions are logged at debug', () => {
  it('an intent decided', async () => {
    const t = await logApp();
    const id = await createIntent(t, { scenario: 'fail' });
    await t.clock.advance(100);
    const [record] = await waitForRecord(t, 'payment intent decided');
    expect(record).toEqual({
      level: 'debug',
      time: expect.stringMatching(ISO),
      service: 'paysim',
      msg: 'payment intent decided',
      intent_id: id,
      reservation_id: 'res_1',
      scenario: 'fail',
      status: 'FAILED',
      failure_code: 'card_declined',
    });
  });

  it('a booking payment decided', async () => {
    const t = await logApp();
    const user = { 'x-user-id': 'user_test_001' };
    const booked = await t.app.inject({ method: 'POST', url: '/bookings', headers: user, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
    expect(booked.statusCode).toBe(201);
    const bookingId = booked.json().bookingId as string;
    const paid = await t.app.inject({ method: 'POST', url: '/payments/execute', headers: user, payload: { bookingId, paymentMethodToken: 'tok_visa', cvv: '442' } });
    expect(paid.statusCode).toBe(200);
    const [record] = await waitForRecord(t, 'booking payment decided');
    expect(record).toMatchObject({ level: 'debug', booking_id: bookingId, kind: 'execute', result: 'failure', failure_code: 'DECLINE_2' });
  });

  it('not at LOG_LEVEL=info', async () => {
    const t = await logApp({ LOG_LEVEL: 'info' });
    await createIntent(t, { scenario: 'approve' });
    await t.clock.advance(200);
    await eventually(() => (t.count('payment.approved') === 1 ? true : undefined), 'the decision');
    expect(t.records.filter((r) => r.level === 'debug')).toEqual([]);
  });
});

describe('the request line', () => {
  it('writes the URL without the query\'s secrets: a password in a URL given as a value, a value named as a secret', async () => {
    const { app, records } = await logApp();
    const webhook = 'https://hooks:hunter2@receiver.example/pay';
    const res = await app.inject({ method: 'DELETE', url: `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent(webhook)}&token=s3cr3t` });
    expect(res.statusCode).toBe(400);
    const line = records.find((r) => r.msg === 'request completed');
    expect(line).toMatchObject({ method: 'DELETE', url: `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('https://hooks:***@receiver.example/pay')}&token=[redacted]`, status_code: 400 });
    expect(JSON.stringify(records)).not.toMatch(/hunter2|s3cr3t/);
  });
});
