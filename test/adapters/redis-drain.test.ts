import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildTestApp } from '../helpers/app.ts';
import { confirm, createOrder, createPayment, resultOf } from '../helpers/fluxpay.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { eventually, startReceiver } from '../helpers/receiver.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';
import { REORDER_BACKSTOP_JOB, RETRY_JOB } from '../../src/webhooks/dispatcher.ts';

/*
 * SIGTERM's drain with a store shared by several replicas: the pending decisions and /api/v2
 * payments it waits for (up to its budget) are every replica's, due work on the shared scheduler
 * that whichever replica runs (or the next start) makes. Before 2026-12-03 what was left when the
 * budget ran out was a warning, as if lost, about work that was often another replica's.
 */

if (redisServerOrSkip('the drain on a shared store')) describe('the drain on a shared store (Redis)', () => {
  let server: RedisServerProcess;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });
  // The scheduler polls the shared store (as on Redis by default; the test runs on Redis set it to 0).
  const SHARED = (): Record<string, string> => ({ STORE: 'redis', REDIS_URL: server.url, SCHEDULER_POLL_MS: '50' });

  /** The drain's lines about webhook deliveries (its end line among them). */
  const webhookEndLines = (logs: Array<Record<string, unknown>>) => logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('webhook deliver'));
  const expectEveryDeliveryFinished = (logs: Array<Record<string, unknown>>) => expect(webhookEndLines(logs).map((l) => [l.level, l.msg])).toEqual([['info', 'shutdown: every webhook delivery finished']]);
  /** The one delivery, its first attempt failed, was sent again in the drain, which says every delivery finished. */
  async function expectSentOnItsRetry(t: Awaited<ReturnType<typeof buildTestApp>>, rx: Awaited<ReturnType<typeof startReceiver>>, logs: Array<Record<string, unknown>>): Promise<void> {
    expect(rx.requests.length).toBe(2);
    const [delivery] = (await t.app.webhooks.log.list({ limit: 1 })).data;
    expect([delivery?.status, delivery?.attempts.map((a) => a.statusCode)]).toEqual(['delivered', [500, 200]]);
    expectEveryDeliveryFinished(logs);
  }

  /** Waits for `work`, moving each app's clock with real time meanwhile (their schedulers run what comes due). */
  async function movingClocks<T>(work: Promise<T>, apps: ReadonlyArray<Awaited<ReturnType<typeof buildTestApp>>>): Promise<T> {
    let done = false;
    void work.finally(() => (done = true)).catch(() => undefined);
    while (!done) {
      for (const t of apps) await t.clock.advance(Math.max(0, Date.now() - t.clock.now()));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return work;
  }

  it('alone, it waits for the shared scheduler’s pending decisions that come due within its budget, another replica’s among them', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-wait:' };
    const other = await buildTestApp(env, { clockStart: Date.now() });
    const draining = await buildTestApp(env, { logs, clockStart: Date.now() });
    try {
      // Another replica's intent, due in 300 ms of real time; that replica is gone since: the
      // draining replica's scheduler (it polls the shared store) makes it while it drains, and the drain waits for it.
      const made = await other.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-wait', amount: 100, scenario: 'delay', delay_ms: 300 } });
      expect(made.statusCode).toBe(200);
      await other.app.close();
      const drained = draining.app.lifecycle.drain(10_000);
      await eventually(async () => {
        await draining.clock.advance(Math.max(0, Date.now() - draining.clock.now()));
        return (await draining.app.core.intents.pendingDecisions()) === 0 ? true : undefined;
      }, 'the decision made');
      await drained;
      expect(draining.app.lifecycle.handingOff).toBe(false);
      expect(logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('intent')).map((l) => [l.level, l.msg])).toEqual([['info', 'shutdown: every pending intent was decided']]);
      expect((await draining.app.inject({ url: `/v1/sim/intents/${made.json().payment_intent_id as string}` })).json().status).toBe('APPROVED');
    } finally {
      await draining.app.close();
      await other.app.close();
    }
  });

  /*
   * Before 2026-12-04 a replica stopped under load waited its whole budget for every replica's
   * pending work (a rolling restart took replicas × SHUTDOWN_TIMEOUT_MS): with another replica
   * alive, that work is the other's, and the drain waits only for what is its own.
   */
  it('with another replica alive, it hands its shared work off: the drain ends well within its budget once the attempts it began end; the other makes its decisions and sends the rest; each webhook arrives once', async () => {
    // Each answer takes 300 ms; two attempts at once per replica: at the drain's start it has begun two and holds more, read and not begun.
    const rx = await startReceiver(() => ({ status: 200, body: 'ok', delayMs: 300 }));
    const logs: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-hand-off:', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_CONCURRENCY: '2', WEBHOOK_ORIGIN_CONCURRENCY: '2' };
    const other = await buildTestApp(env, { clockStart: Date.now() });
    const draining = await buildTestApp(env, { logs, clockStart: Date.now() });
    try {
      const decided: string[] = [];
      for (let i = 0; i < 6; i++) {
        const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-now-${i}`, amount: 100, scenario: 'approve', webhook_url: rx.url() } });
        decided.push(made.json().payment_intent_id as string);
      }
      const pending: string[] = [];
      for (let i = 0; i < 5; i++) {
        const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-later-${i}`, amount: 100, scenario: 'delay', delay_ms: 60_000, webhook_url: rx.url() } });
        pending.push(made.json().payment_intent_id as string);
      }
      // The draining replica decides the first six and begins their attempts.
      await draining.clock.advance(0);
      await eventually(async () => (rx.requests.length >= 1 ? true : undefined), 'attempts begun');
      const started = Date.now();
      await movingClocks(draining.app.lifecycle.drain(10_000), [draining, other]);
      const took = Date.now() - started;
      await draining.app.close();
      // The budget was 10 s: it waited for its attempts in flight (300 ms each), no more.
      expect(took).toBeLessThan(3_000);
      expect(draining.app.lifecycle.handingOff).toBe(true);
      const shutdown = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown:'));
      expect(shutdown.find((l) => l.other_replicas !== undefined)).toMatchObject({ level: 'info', other_replicas: 1 });
      const left = shutdown.find((l) => l.pending_intents !== undefined);
      expect(left).toMatchObject({ level: 'info', pending_intents: 5, msg: 'shutdown: intents still pending are left on the shared scheduler, for the other replicas' });
      // Which ones (since 2026-12-05): the five the other replica decides, read from the shared scheduler.
      expect([...(left?.intent_ids as string[])].sort()).toEqual([...pending].sort());
      expect(left).not.toHaveProperty('intent_ids_truncated');
      await other.clock.advance(60_000);
      await eventually(async () => {
        await other.clock.advance(100);
        return rx.requests.length >= 11 ? true : undefined;
      }, 'every webhook');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(rx.requests.map((r) => (JSON.parse(r.body) as { payment_intent_id: string }).payment_intent_id).sort()).toEqual([...decided, ...pending].sort());
    } finally {
      await draining.app.close();
      await other.app.close();
      await rx.close();
    }
  });

  it('handing off, it still waits for its own requests: an /api/v2 create waiting for its answer here gets it before the close', async () => {
    const rx = await startReceiver();
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-own-v2:', V2_COMPLETE_DELAY_MS: '300' };
    const other = await buildTestApp(env, { clockStart: Date.now() });
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    try {
      const creating = draining.app.inject({ method: 'POST', url: '/api/v2/payments', payload: { tx_id: 'tx_own', order_id: 1, user_id: 1, amount: 100, callback_url: rx.url('/callback') } });
      await eventually(async () => ((await other.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the payment stored');
      await movingClocks(draining.app.lifecycle.drain(10_000), [draining, other]);
      expect(draining.app.lifecycle.handingOff).toBe(true);
      await draining.app.close();
      const answered = await creating;
      expect([answered.statusCode, answered.json()]).toEqual([200, { ok: true, tx_id: 'tx_own', status: 'PAYMENT_COMPLETED', payment_id: 'pay_tx_own' }]);
      expect(rx.requests).toHaveLength(1);
    } finally {
      await draining.app.close();
      await other.app.close();
      await rx.close();
    }
  });

  it('handing off, it still waits for a booking payment in flight on its own timer, answered before the close', async () => {
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-own-booking:', MOCK_MIN_DELAY_MS: '400', MOCK_MAX_DELAY_MS: '400' };
    const other = await buildTestApp(env, { clockStart: Date.now() });
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    try {
      const user = { 'x-user-id': 'user_own' };
      const booked = await draining.app.inject({ method: 'POST', url: '/bookings', headers: user, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
      const bookingId = booked.json().bookingId as string;
      const paying = draining.app.inject({ method: 'POST', url: '/payments/execute', headers: user, payload: { bookingId, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' } });
      await eventually(async () => (draining.app.bookings.payments.inFlight === 1 ? true : undefined), 'the payment in flight');
      await movingClocks(draining.app.lifecycle.drain(10_000), [draining, other]);
      expect(draining.app.lifecycle.handingOff).toBe(true);
      await draining.app.close();
      const paid = await paying;
      expect([paid.statusCode, paid.json().finalStatus, paid.json().bookingId]).toEqual([200, 'SUCCESS', bookingId]);
    } finally {
      await draining.app.close();
      await other.app.close();
    }
  });

  it('a replica whose scheduler does not poll (SCHEDULER_POLL_MS=0) is not counted as alive: it would never take the work (a code review: its decisions waited for the next start)', async () => {
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-not-polling:' };
    const notPolling = await buildTestApp({ ...env, SCHEDULER_POLL_MS: '0' }, { clockStart: Date.now() });
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    try {
      // Nothing pending: a drain alone ends at once (its budget only bounds the check).
      await draining.app.lifecycle.drain(2_000);
      expect(draining.app.lifecycle.handingOff).toBe(false);
      // It may hand off itself, to a replica that polls.
      const polling = await buildTestApp(env, { clockStart: Date.now() });
      await notPolling.app.lifecycle.drain(2_000);
      expect(notPolling.app.lifecycle.handingOff).toBe(true);
      await polling.app.close();
    } finally {
      await draining.app.close();
      await notPolling.app.close();
    }
  });

  it('handing off, a FluxPay confirm held in it by a delay scenario is answered before the close', async () => {
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-own-confirm:', DEFAULT_DELAY_DELAY_MS: '400' };
    const other = await buildTestApp(env, { clockStart: Date.now() });
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    try {
      const order = await createOrder(draining);
      const payment = await createPayment(draining, order.orderId as string);
      const confirming = confirm(draining, payment, { 'x-sim-scenario': 'delay' });
      await eventually(() => (draining.app.lifecycle.held === 1 ? true : undefined), 'the confirm waiting for its delay');
      await movingClocks(draining.app.lifecycle.drain(10_000), [draining, other]);
      expect(draining.app.lifecycle.handingOff).toBe(true);
      await draining.app.close();
      const confirmed = await confirming;
      expect([confirmed.statusCode, resultOf(confirmed).status]).toEqual([200, 'APPROVED']);
    } finally {
      await draining.app.close();
      await other.app.close();
    }
  });

  it('two replicas stopped at once: one hands off, the last to ask drains as if alone and makes the decisions', async () => {
    const logsA: Array<Record<string, unknown>> = [];
    const logsB: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-both:' };
    const a = await buildTestApp(env, { logs: logsA, clockStart: Date.now() });
    const b = await buildTestApp(env, { logs: logsB, clockStart: Date.now() });
    try {
      const made = await a.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-both', amount: 100, scenario: 'delay', delay_ms: 300 } });
      await movingClocks(Promise.all([a.app.lifecycle.drain(5_000), b.app.lifecycle.drain(5_000)]), [a, b]);
      expect([a.app.lifecycle.handingOff, b.app.lifecycle.handingOff].sort()).toEqual([false, true]);
      const alone = a.app.lifecycle.handingOff ? b : a;
      expect((await alone.app.inject({ url: `/v1/sim/intents/${made.json().payment_intent_id as string}` })).json().status).toBe('APPROVED');
      expect([...logsA, ...logsB].filter((l) => l.msg === 'shutdown: every pending intent was decided')).toHaveLength(1);
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });

  it('alone on Redis, it sends the webhooks of the decisions its drain makes', async () => {
    const rx = await startReceiver();
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-alone:', DEFAULT_APPROVE_DELAY_MS: '200' };
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    try {
      const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-alone', amount: 100, webhook_url: rx.url() } });
      expect(made.statusCode).toBe(200);
      const drained = draining.app.lifecycle.drain(3_000);
      await eventually(async () => {
        await draining.clock.advance(50);
        return rx.requests.length === 1 ? true : undefined;
      }, 'the webhook');
      await drained;
      expect(JSON.parse(rx.requests[0]!.body)).toMatchObject({ type: 'payment.approved', payment_intent_id: made.json().payment_intent_id });
    } finally {
      await draining.app.close();
      await rx.close();
    }
  });

  /**
   * A delivery whose first attempt failed, its retry due 240–360 ms later on the app's clock (which
   * moves with real time), and nothing held; then the drain, alone. `slowRetryMs`: once the drain
   * began, the retry's job reads its delivery that much later (it is claimed meanwhile and nothing
   * is in the stream). Checks that the retry was sent in the drain; answers how long it took and
   * how many reads were slowed.
   */
  async function drainWithARetryDue(prefix: string, slowRetryMs = 0): Promise<{ drainedMs: number; slowed: number }> {
    let calls = 0;
    const rx = await startReceiver(() => (++calls === 1 ? { status: 500 } : { status: 200, body: 'ok' }));
    const logs: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: prefix, DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_BACKOFF_MS: '300', WEBHOOK_TIMEOUT_MS: '1000' };
    const draining = await buildTestApp(env, { logs, clockStart: Date.now() });
    try {
      const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-${prefix}`, amount: 100, webhook_url: rx.url() } });
      expect(made.statusCode).toBe(200);
      await eventually(async () => {
        await draining.clock.advance(10);
        const [delivery] = (await draining.app.webhooks.log.list({ limit: 1 })).data;
        return delivery?.status === 'retrying' ? true : undefined;
      }, 'the first attempt failed, its retry scheduled');
      const log = draining.app.webhooks.log;
      const get = log.get.bind(log);
      let slowed = 0;
      if (slowRetryMs > 0) {
        log.get = async (id: string) => {
          slowed += 1;
          await new Promise((resolve) => setTimeout(resolve, slowRetryMs));
          return get(id);
        };
      }
      const drainedFrom = Date.now();
      await movingClocks(draining.app.lifecycle.drain(4_000), [draining]);
      const drainedMs = Date.now() - drainedFrom;
      log.get = get;
      await expectSentOnItsRetry(draining, rx, logs);
      return { drainedMs, slowed };
    } finally {
      await draining.app.close();
      await rx.close();
    }
  }

  it('alone on Redis, it sends the retries that fall due in its drain, as memory does: it no longer stops once it holds nothing (2026-12-05, a user test: 150 webhooks left for the next start)', async () => {
    expect((await drainWithARetryDue('drain-retry:')).drainedMs).toBeLessThan(2_500);
  });

  it('alone on Redis, it waits for a retry its own scheduler has claimed and is still queueing (2026-12-06, a CI run: the drain ended while the job ran, the retry unsent)', async () => {
    // For 400 ms the retry's job is claimed (due at its lease's end by the store's account, far past the drain) and nothing is in the stream or held.
    expect((await drainWithARetryDue('drain-claimed-retry:', 400)).slowed).toBeGreaterThan(0);
  });

  it('alone on Redis, it waits for the retry of an attempt that fails while it reads the shared backlog (2026-12-06, a review: held when the reads began, neither held nor counted at their end)', async () => {
    let calls = 0;
    // The first attempt fails 150 ms after it arrives; the retry succeeds.
    const rx = await startReceiver(() => (++calls === 1 ? { status: 500, delayMs: 150 } : { status: 200, body: 'ok' }));
    const logs: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-failing-attempt:', SCHEDULER_POLL_MS: '0', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_BACKOFF_MS: '300', WEBHOOK_TIMEOUT_MS: '1000' };
    // No scheduler poll: no run of its own is under way at the drain's first look, which would make it look again anyway.
    const draining = await buildTestApp(env, { logs, clockStart: Date.now() });
    const { scheduler } = draining.app.core;
    try {
      const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-failing', amount: 100, webhook_url: rx.url() } });
      expect(made.statusCode).toBe(200);
      await eventually(async () => {
        await draining.clock.advance(10);
        return rx.requests.length === 1 ? true : undefined;
      }, 'the first attempt in flight');
      // The drain's first look at the scheduler's retries answers 300 ms after it read them (none
      // then): meanwhile the attempt fails, its retry is scheduled and the delivery let go.
      const pending = scheduler.pending.bind(scheduler);
      let slowed = 0;
      scheduler.pending = async (...kinds: string[]) => {
        const count = await pending(...kinds);
        if (kinds.includes(RETRY_JOB) && slowed++ === 0) await new Promise((resolve) => setTimeout(resolve, 300));
        return count;
      };
      await movingClocks(draining.app.lifecycle.drain(4_000), [draining]);
      scheduler.pending = pending;
      expect(slowed).toBeGreaterThan(1);
      await expectSentOnItsRetry(draining, rx, logs);
    } finally {
      await draining.app.close();
      await rx.close();
    }
  });

  /**
   * A replica alone on Redis with webhook rules `actions` (a reorder of ten minutes among them) and
   * three intents whose webhooks are logged retrying (held, or delayed), then drained for
   * `budgetMs`: every webhook is sent in the drain, nothing is left on the schedule, and the end
   * line says so. Answers the intent ids in the order made and in the order their webhooks came.
   */
  async function drainWithRules(prefix: string, actions: object[], budgetMs: number, env: Record<string, string> = {}): Promise<{ ids: string[]; sent: string[] }> {
    const rx = await startReceiver();
    const logs: Array<Record<string, unknown>> = [];
    const draining = await buildTestApp({ ...SHARED(), REDIS_KEY_PREFIX: prefix, DEFAULT_APPROVE_DELAY_MS: '0', ...env }, { logs, clockStart: Date.now() });
    try {
      for (const action of actions) {
        const rule = await draining.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: { match: { url_prefix: rx.url() }, action } });
        expect(rule.statusCode, rule.body).toBe(201);
      }
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-${prefix}${i}`, amount: 100, webhook_url: rx.url() } });
        ids.push(made.json().payment_intent_id as string);
      }
      await eventually(async () => {
        await draining.clock.advance(10);
        return (await draining.app.webhooks.log.list({ limit: 10, status: 'retrying' })).data.length === 3 ? true : undefined;
      }, 'the 3 held or delayed');
      await movingClocks(draining.app.lifecycle.drain(budgetMs), [draining]);
      const sent = rx.requests.map((r) => (JSON.parse(r.body) as { payment_intent_id: string }).payment_intent_id);
      expect([...sent].sort()).toEqual([...ids].sort());
      expect(await draining.app.core.scheduler.pending(REORDER_BACKSTOP_JOB, RETRY_JOB)).toBe(0);
      expectEveryDeliveryFinished(logs);
      return { ids, sent };
    } finally {
      await draining.app.close();
      await rx.close();
    }
  }

  it('alone on Redis, it sends the deliveries it holds for reordering in its drain, shuffled, as memory does (2026-12-06, a review: left in the stream for the next start)', async () => {
    // One attempt at a time to the receiver: they arrive in the released order, never the original.
    const { ids, sent } = await drainWithRules('drain-reorder:', [{ type: 'reorder', window_ms: 600_000 }], 4_000, { WEBHOOK_ORIGIN_CONCURRENCY: '1' });
    expect(sent).not.toEqual(ids);
  });

  it('alone on Redis, it sends a delivery a reorder rule would hold when its first attempt’s delay ends in the drain: nothing is held once the drain released the hold (a review: held a new window, left to the next start)', async () => {
    // Their first attempts delayed 1.5 s: the delay ends in the drain, after its release of the hold.
    await drainWithRules('drain-reorder-late:', [{ type: 'reorder', window_ms: 600_000 }, { type: 'delay', distribution: 'fixed', params: { ms: 1_500 } }], 6_000);
  });

  it('alone on Redis, its end line counts the reorder backstops a dead replica left among the retries on the shared scheduler (a review: it said none)', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-backstop:' };
    const draining = await buildTestApp(env, { logs, clockStart: Date.now() });
    try {
      // A dead replica's hold: its backstop due in ten minutes.
      await draining.app.core.scheduler.schedule(REORDER_BACKSTOP_JOB, 'whd_01KDEADREPLICAHELD00000000', draining.clock.now() + 600_000);
      await movingClocks(draining.app.lifecycle.drain(2_000), [draining]);
      expect(webhookEndLines(logs).map((l) => [l.msg, l.scheduled_retries])).toEqual([
        ['shutdown: every webhook delivery this replica held finished; 0 deliveries waiting in the shared delivery stream, 1 retry on the shared scheduler are left to the other replicas (or the next start)', 1],
      ]);
    } finally {
      await draining.app.close();
    }
  });

  it('alone on Redis, it sends the webhooks of the decisions its drain makes and their retries, once the decisions are made (a review: it stopped waiting before them)', async () => {
    const seen = new Set<string>();
    // Each event's first request fails, its retry succeeds.
    const rx = await startReceiver((req) => {
      const id = String(req.headers['webhook-id']);
      if (seen.has(id)) return { status: 200, body: 'ok' };
      seen.add(id);
      return { status: 500 };
    });
    const logs: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-decided-retry:', DEFAULT_APPROVE_DELAY_MS: '400', WEBHOOK_BACKOFF_MS: '300', WEBHOOK_TIMEOUT_MS: '1000' };
    const draining = await buildTestApp(env, { logs, clockStart: Date.now() });
    try {
      for (let i = 0; i < 3; i++) expect((await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-dr-${i}`, amount: 100, webhook_url: rx.url() } })).statusCode).toBe(200);
      // Stopped at once: the decisions come 400 ms into the drain, their first attempts fail, the retries 240–360 ms later.
      await movingClocks(draining.app.lifecycle.drain(6_000), [draining]);
      expect(rx.requests.length).toBe(6);
      const listed = (await draining.app.webhooks.log.list({ limit: 10 })).data;
      expect(listed.map((d) => [d.status, d.attempts.map((a) => a.statusCode)])).toEqual(Array.from({ length: 3 }, () => ['delivered', [500, 200]]));
      expectEveryDeliveryFinished(logs);
    } finally {
      await draining.app.close();
      await rx.close();
    }
  });

  it('alone on Redis, it does not wait for retries due after attempts may begin: the drain ends, and the line counts them (a review: the stop took its whole budget)', async () => {
    const rx = await startReceiver(() => ({ status: 500 }));
    const logs: Array<Record<string, unknown>> = [];
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-late-retry:', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_BACKOFF_MS: '20000', WEBHOOK_TIMEOUT_MS: '1000' };
    const draining = await buildTestApp(env, { logs, clockStart: Date.now() });
    try {
      expect((await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-late', amount: 100, webhook_url: rx.url() } })).statusCode).toBe(200);
      await eventually(async () => {
        await draining.clock.advance(Math.max(0, Date.now() - draining.clock.now()));
        return (await draining.app.webhooks.log.list({ limit: 1 })).data[0]?.status === 'retrying' ? true : undefined;
      }, 'the first attempt failed, its retry due in 16-24 s');
      const drainedFrom = Date.now();
      await movingClocks(draining.app.lifecycle.drain(6_000), [draining]);
      expect(Date.now() - drainedFrom).toBeLessThan(2_000);
      expect(webhookEndLines(logs).map((l) => [l.msg, l.waiting_in_stream, l.scheduled_retries, l.in_flight_elsewhere])).toEqual([
        ['shutdown: every webhook delivery this replica held finished; 0 deliveries waiting in the shared delivery stream, 1 retry on the shared scheduler are left to the other replicas (or the next start)', 0, 1, 0],
      ]);
    } finally {
      await draining.app.close();
      await rx.close();
    }
  });

  /*
   * A rolling restart under load (a helper's, 2026-12-03): the drain's producers' phase waits for
   * every replica's pending intents, so it took the whole budget while the replica read on from
   * the delivery stream, and the close then cut the attempts it had just begun: 24–64 webhooks
   * sent twice per stop. The producers' phase now leaves the delivery phase WEBHOOK_TIMEOUT_MS and
   * a margin, and no attempt begins that could not end before the close.
   */
  it('cuts no attempt at its close under a slow receiver: every webhook arrives once, those it had not begun sent by the next replica', { timeout: 40_000 }, async () => {
    // Every answer takes 300 ms of the 2 s an attempt may take (with 600 ms, an attempt that a loaded
    // machine made late timed out after its answer came, and was rightly sent again: not this test's point).
    const rx = await startReceiver(() => ({ status: 200, body: 'ok', delayMs: 300 }));
    // An intent due in ten minutes keeps the producers' phase busy until its end.
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-cut:', DEFAULT_APPROVE_DELAY_MS: '0', DEFAULT_DELAY_DELAY_MS: '600000', WEBHOOK_TIMEOUT_MS: '2000', WEBHOOK_CONCURRENCY: '4' };
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    let next: Awaited<ReturnType<typeof buildTestApp>> | undefined;
    const ids: string[] = [];
    try {
      expect((await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-busy', amount: 100, scenario: 'delay' } })).statusCode).toBe(200);
      // The producers' phase leaves the delivery phase 2.5 s (the time-out and the record's margin) of 7 s.
      const drained = draining.app.lifecycle.drain(7_000);
      // Work arriving all through the drain, each decided at once here: made through the service, as
      // the API refuses creates from the drain's start (2026-12-05); the stream is fed all the same.
      let draining_ = true;
      void drained.finally(() => (draining_ = false));
      for (let i = 0; draining_ && i < 200; i++) {
        ids.push((await draining.app.core.intents.create({ reservationId: `r-cut-${i}`, amount: 100, currency: 'KRW', webhookUrl: rx.url() })).id);
        await draining.clock.advance(10);
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      await drained;
      await draining.app.close();
      expect(ids.length).toBeGreaterThan(20);
      // The next replica decides what was left undecided and sends what is left in the stream.
      const nextApp = await buildTestApp(env, { clockStart: Date.now() });
      next = nextApp;
      await eventually(async () => {
        await nextApp.clock.advance(50);
        return rx.requests.length >= ids.length ? true : undefined;
      }, 'every webhook', 15_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const perIntent = new Map<string, number>();
      for (const request of rx.requests) {
        const id = (JSON.parse(request.body) as { payment_intent_id: string }).payment_intent_id;
        perIntent.set(id, (perIntent.get(id) ?? 0) + 1);
      }
      expect([...perIntent.keys()].sort()).toEqual([...ids].sort());
      expect([...perIntent.values()].filter((n) => n > 1)).toEqual([]);
    } finally {
      await draining.app.close();
      await next?.app.close();
      await rx.close();
    }
  });

  /**
   * A replica alone on a Redis of its own, with one webhook attempt in flight (its receiver answers
   * after `receiverDelayMs`); `work` gets them, and everything is stopped after it.
   */
  async function withAttemptInFlight(
    prefix: string,
    receiverDelayMs: number,
    work: (setup: { own: RedisServerProcess; t: Awaited<ReturnType<typeof buildTestApp>>; rx: Awaited<ReturnType<typeof startReceiver>>; endLines: () => Array<Record<string, unknown>> }) => Promise<void>,
    moreEnv: Record<string, string> = {},
  ): Promise<void> {
    const own = await startRedisServer();
    const logs: Array<Record<string, unknown>> = [];
    const rx = await startReceiver(() => ({ status: 200, body: 'ok', delayMs: receiverDelayMs }));
    const env = { STORE: 'redis', REDIS_URL: own.url, SCHEDULER_POLL_MS: '50', REDIS_KEY_PREFIX: prefix, DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_TIMEOUT_MS: String(receiverDelayMs + 1_000), ...moreEnv };
    const t = await buildTestApp(env, { logs, clockStart: Date.now() });
    try {
      const made = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-${prefix}`, amount: 100, webhook_url: rx.url() } });
      expect(made.statusCode).toBe(200);
      // The clock moves only until the webhook is logged: a rate cap's next token must not come meanwhile
      // (on a busy machine the first request took long enough to reach the receiver for it to come).
      await eventually(async () => {
        if ((await t.app.webhooks.log.list({ limit: 1 })).data.length === 0) await t.clock.advance(10);
        return rx.requests.length === 1 ? true : undefined;
      }, 'the attempt in flight');
      // The drain's end lines about the webhooks.
      const endLines = () => logs.filter((l) => l.msg === 'shutdown: every webhook delivery finished' || l.unrecorded_deliveries !== undefined);
      await work({ own, t, rx, endLines });
    } finally {
      await t.app.close();
      await rx.close();
      await own.stop();
    }
  }

  it('Redis gone in the drain: an attempt made then whose result cannot be recorded is named, left to a takeover, and the end line no longer says every delivery finished (a user test found it)', async () => {
    // The attempt is in flight (a second; 400 ms before 2026-12-06, which a stall before the pause could outlast: a review) when Redis stops: its result cannot be recorded.
    await withAttemptInFlight('drain-unrecorded:', 1_000, async ({ own, t, endLines }) => {
      const ids = (await t.app.webhooks.log.list({ limit: 10 })).data.map((d) => d.id);
      expect(ids).toHaveLength(1);
      const drained = t.app.lifecycle.drain(5_000);
      await own.pause();
      await drained;
      expect(endLines().map((l) => [l.level, l.msg, l.unrecorded_deliveries, l.delivery_ids])).toEqual([
        ['warn', 'shutdown: webhook deliveries whose attempt in the drain failed on the store, their results not recorded: the other replicas (or the next start) take them over and send them, again with the same event ids where the attempt had reached the receiver', 1, ids],
      ]);
    });
  });

  /**
   * The in-flight attempt's result fails to be recorded once (its delivery goes back to the stream
   * and is read again here), then the drain runs with its producers' phase, and the stream's reader,
   * kept going 1.5 s by a request held in the process; answers whether the failure happened.
   */
  async function drainAfterOneFailedRecord(t: Awaited<ReturnType<typeof buildTestApp>>): Promise<boolean> {
    const log = t.app.webhooks.log;
    // An attempt taken from the shared stream records its end only while the log holds the delivery as it found it (updateIf).
    const updateIf = log.updateIf.bind(log);
    let failed = false;
    log.updateIf = async (...args) => {
      if (failed) return updateIf(...args);
      failed = true;
      throw new Error('the store failed once');
    };
    void t.app.lifecycle.hold(new Promise((resolve) => setTimeout(resolve, 1_500)));
    await t.app.lifecycle.drain(5_000);
    return failed;
  }

  it('a store failure in the drain that this replica outlives: the delivery read again and recorded here is no longer named (a code review)', async () => {
    await withAttemptInFlight('drain-recorded-later:', 300, async ({ t, rx, endLines }) => {
      const failed = await drainAfterOneFailedRecord(t);
      const [delivery] = (await t.app.webhooks.log.list({ limit: 10 })).data;
      expect([failed, rx.requests.length, delivery?.status]).toEqual([true, 2, 'delivered']);
      expect(endLines().map((l) => [l.level, l.msg])).toEqual([['info', 'shutdown: every webhook delivery finished']]);
    });
  });

  /**
   * The in-flight attempt's result fails to be recorded once, and the delivery, read again, waits for
   * a rate-cap token that never comes (one a second, on the app's clock, which stands still) until the
   * drain lets it go as too late. With `wallClockLagMs`, the wall clock reads that much behind from
   * the moment the drain's time to stop beginning attempts is set: its timer fires before
   * `Date.now()` reaches that time, as a Node timer can by a millisecond (the CI of 2026-12-03 saw the
   * attempt go out then).
   */
  async function handedBackUnmade(prefix: string, wallClockLagMs: number): Promise<void> {
    await withAttemptInFlight(
      prefix,
      300,
      async ({ t, rx, endLines }) => {
        const dispatcher = t.app.webhooks.dispatcher;
        const drainEndsAt = dispatcher.drainEndsAt.bind(dispatcher);
        dispatcher.drainEndsAt = (deadline) => {
          drainEndsAt(deadline);
          if (wallClockLagMs > 0 && !vi.isMockFunction(Date.now)) {
            const realNow = Date.now.bind(Date);
            vi.spyOn(Date, 'now').mockImplementation(() => realNow() - wallClockLagMs);
          }
        };
        try {
          const failed = await drainAfterOneFailedRecord(t);
          const [delivery] = (await t.app.webhooks.log.list({ limit: 10 })).data;
          expect([failed, rx.requests.length, delivery?.status]).toEqual([true, 1, 'pending']);
          expect(endLines().map((l) => [l.level, l.unrecorded_deliveries, l.delivery_ids])).toEqual([['warn', 1, [delivery?.id]]]);
        } finally {
          vi.restoreAllMocks();
        }
      },
      { WEBHOOK_MAX_RPS: '1' },
    );
  }

  it('read again but handed back unmade (its rate-cap token too late in the drain): still named, for the others to send (a second code review)', async () => {
    await handedBackUnmade('drain-handed-back-unmade:', 0);
  });

  it('the drain\'s timer firing before the wall clock reads its time: the attempt it wakes is still handed back unmade (a CI run saw it made)', async () => {
    await handedBackUnmade('drain-timer-early:', 30);
  });

  it('under a rate cap, a delivery whose token comes too late in the drain is handed back, not begun (and cut by the close: a code review saw it sent twice); each is sent once', async () => {
    const rx = await startReceiver(() => ({ status: 200, body: 'ok', delayMs: 800 }));
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-capped:', DEFAULT_APPROVE_DELAY_MS: '0', WEBHOOK_TIMEOUT_MS: '1000', WEBHOOK_MAX_RPS: '2', WEBHOOK_ORIGIN_CONCURRENCY: '8' };
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    let next: Awaited<ReturnType<typeof buildTestApp>> | undefined;
    const ids: string[] = [];
    try {
      for (let i = 0; i < 14; i++) {
        const made = await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: `r-capped-${i}`, amount: 100, webhook_url: rx.url() } });
        ids.push(made.json().payment_intent_id as string);
      }
      const drainedFrom = Date.now();
      const drained = draining.app.lifecycle.drain(3_000);
      let draining_ = true;
      void drained.finally(() => (draining_ = false));
      // Its clock (the rate cap's) moves with real time.
      while (draining_) {
        await draining.clock.advance(Math.max(0, Date.now() - draining.clock.now()));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await draining.app.close();
      // The draining replica's attempts (a token every 500 ms) all began before the drain's deadline
      // less WEBHOOK_TIMEOUT_MS and the margin (1,500 ms), so none could be cut by the close.
      const closedAt = Date.now();
      const sentByIt = rx.requests.filter((request) => request.receivedAt <= closedAt).map((request) => request.receivedAt - drainedFrom);
      // 400 ms for an attempt begun to reach the receiver (100 before 2026-12-06: a review); the next token, had one begun, comes 500 ms after the last.
      expect(sentByIt.filter((at) => at > 1_500 + 400)).toEqual([]);
      const nextApp = await buildTestApp(env, { clockStart: Date.now() });
      next = nextApp;
      await eventually(async () => {
        await nextApp.clock.advance(Math.max(0, Date.now() - nextApp.clock.now()));
        return rx.requests.length >= ids.length ? true : undefined;
      }, 'every webhook', 20_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const sent = rx.requests.map((request) => (JSON.parse(request.body) as { payment_intent_id: string }).payment_intent_id);
      expect([...sent].sort()).toEqual([...ids].sort());
    } finally {
      await draining.app.close();
      await next?.app.close();
      await rx.close();
    }
  });

  it('stops reading the stream once no attempt may begin, though its producers still drain: nothing read only to be handed back (a third review found the loop)', async () => {
    const rx = await startReceiver();
    // WEBHOOK_TIMEOUT_MS 1,000: attempts may begin until 500 ms of a 2,000 ms drain, whose producers' phase (busy with an intent due in ten minutes) runs until 1,000 ms.
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain-loop:', DEFAULT_APPROVE_DELAY_MS: '0', DEFAULT_DELAY_DELAY_MS: '600000', WEBHOOK_TIMEOUT_MS: '1000' };
    const draining = await buildTestApp(env, { clockStart: Date.now() });
    const admin = new Redis(server.url);
    try {
      expect((await draining.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-loop-busy', amount: 100, scenario: 'delay' } })).statusCode).toBe(200);
      const drainedFrom = Date.now();
      const drained = draining.app.lifecycle.drain(2_000);
      // Between the reader's stop (at 500 ms) and the producers' phase's end (1,000 ms), 200 ms from the first (100 before 2026-12-06: a review).
      await new Promise((resolve) => setTimeout(resolve, 700));
      // Made through the service: the API refuses creates from the drain's start (2026-12-05).
      for (let i = 0; i < 3; i++) await draining.app.core.intents.create({ reservationId: `r-loop-${i}`, amount: 100, currency: 'KRW', webhookUrl: rx.url() });
      await draining.clock.advance(10);
      await drained;
      expect(Date.now() - drainedFrom).toBeGreaterThanOrEqual(1_000);
      // Their three entries wait in the stream, unread; each read and handed back would have appended one more.
      expect(await admin.xlen('drain-loop:whq')).toBe(3);
      expect(rx.requests).toEqual([]);
    } finally {
      admin.disconnect();
      await draining.app.close();
      await rx.close();
    }
  });

  it('claims no due work once its close has begun, before its dispatcher closes: a decision due then is the other replica’s', async () => {
    // A user refused CLIENT UNBLOCK (as hosted Redis give): the close of the delivery stream's
    // reader waits up to a second for its blocking read, a second in which the dispatcher is closed.
    const admin = new Redis(server.url);
    await admin.acl('SETUSER', 'noblock', 'on', '>noblock-pass', '~*', '&*', '+@all', '-client|unblock');
    admin.disconnect();
    const env = { ...SHARED(), REDIS_URL: server.url.replace('redis://', 'redis://noblock:noblock-pass@'), REDIS_KEY_PREFIX: 'drain-quiet:', DEFAULT_APPROVE_DELAY_MS: '1000' };
    const closingOne = await buildTestApp(env, { clockStart: Date.now() });
    // The other replica's clock stands still until the first has closed.
    const other = await buildTestApp(env, { clockStart: Date.now() });
    try {
      const made = await closingOne.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-quiet', amount: 100 } });
      expect(made.statusCode).toBe(200);
      const id = made.json().payment_intent_id as string;
      const closed = closingOne.app.close();
      await eventually(() => (closingOne.app.lifecycle.closing ? true : undefined), 'the close to begin');
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Its decision comes due on the closing replica's clock, its dispatcher closed: not claimed there.
      await closingOne.clock.advance(1_000);
      await closed;
      expect((await other.app.inject({ url: `/v1/sim/intents/${id}` })).json().status).toBe('PENDING');
      await eventually(async () => {
        await other.clock.advance(100);
        return (await other.app.inject({ url: `/v1/sim/intents/${id}` })).json().status === 'APPROVED' ? true : undefined;
      }, 'the other replica to decide it', 3_000);
    } finally {
      await closingOne.app.close();
      await other.app.close();
    }
  });

  it('says what is left on the shared scheduler when its budget runs out, at info: nothing is lost', async () => {
    const logs: Array<Record<string, unknown>> = [];
    // Decisions due in ten minutes; booking payments answered at once, their results processed ten minutes later.
    const env = { ...SHARED(), REDIS_KEY_PREFIX: 'drain:', DEFAULT_DELAY_DELAY_MS: '600000', EVENT_PROCESSING_DELAY_MS: '600000', MOCK_MIN_DELAY_MS: '0', MOCK_MAX_DELAY_MS: '0' };
    // Alone (another replica alive, it would hand its shared work off: above).
    const draining = await buildTestApp(env, { logs });
    const other = draining;
    // Answered once its payment is decided, ten minutes on: not awaited (the app's close ends it).
    const v2 = other.app
      .inject({ method: 'POST', url: '/api/v2/payments', headers: { 'x-sim-scenario': 'delay' }, payload: { tx_id: 'tx_drain', order_id: 1, user_id: 1, amount: 100, callback_url: 'http://127.0.0.1:9/unused' } })
      .catch(() => undefined);
    try {
      // Its load: an intent, a v2 payment and a booking's payment result left pending.
      expect((await other.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-drain', amount: 100, scenario: 'delay' } })).statusCode).toBe(200);
      const booked = await other.app.inject({ method: 'POST', url: '/bookings', headers: { 'x-user-id': 'user_drain' }, payload: { performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' } });
      expect(booked.statusCode).toBe(201);
      const paid = other.app.inject({ method: 'POST', url: '/payments/execute', headers: { 'x-user-id': 'user_drain' }, payload: { bookingId: booked.json().bookingId, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' } });
      await other.clock.advance(0);
      expect((await paid).statusCode).toBe(200);
      await eventually(async () => ((await other.app.v2Payments.pendingDecisions()) === 1 ? true : undefined), 'the v2 payment scheduled');

      await draining.app.lifecycle.drain(300);
      const shutdown = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown:'));
      // The producers drain side by side: their lines come in any order.
      expect(shutdown.find((l) => l.pending_v2_payments !== undefined)?.payment_ids).toEqual(['pay_tx_drain']);
      expect(shutdown.map((l) => [l.level, l.msg, l.pending_intents ?? l.pending_v2_payments ?? l.unprocessed_events]).sort()).toEqual([
        ['info', 'shutdown: booking payments or events still unfinished when the drain budget ran out are left to the other replicas (or the next start)', 1],
        ['info', 'shutdown: every webhook delivery finished', undefined],
        ['info', 'shutdown: intents still pending when the drain budget ran out are left on the shared scheduler, for the other replicas (or the next start)', 1],
        ['info', 'shutdown: the FluxPay outbox is published', undefined],
        ['info', 'shutdown: v2 payments still undecided when the drain budget ran out are left on the shared scheduler, for the other replicas (or the next start)', 1],
        // Its own request: the v2 create waiting in it for the payment's decision.
        ['warn', 'shutdown: requests still waiting for their answer when the drain budget ran out (their connections are closed; a retry answers on another replica or after the restart)', undefined],
      ]);
      expect(logs.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.waiting_requests)).toEqual([1]);
      // Still there, for the other replica to decide.
      expect(await other.app.core.intents.pendingDecisions()).toBe(1);
    } finally {
      await draining.app.close();
      await v2;
    }
  });
});
