import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStores } from '../../src/adapters/memory/index.ts';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { FluxPayStore } from '../../src/core/fluxpay/ports.ts';
import { createRandom, type RandomSource } from '../../src/core/random.ts';
import type { TestApp } from '../helpers/app.ts';
import { SUCCESS, type Json } from '../helpers/fluxpay.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

/**
 * Thousands of random usage flows (document 002's target: "데이터 정합성 100% (주문-결제-크레딧
 * 일치)"), driven through the API while the store fails at random in the saga's steps, the
 * events' starts and ends: before an operation (nothing written) and after it (written, but the
 * caller saw an error, as when a reply is lost). Clients retry a 500 as they would; the saga
 * retries its own steps and compensations on the injected clock. At the end every saga has ended,
 * and every order, payment, credit balance and ledger account agrees: with the reconciliation,
 * and with a model of what each flow asked for.
 * @see issue 11 "The usage saga" (random flows with failures injected into steps)
 */

const TIMEOUT_MS = 20_000;
const USERS = 4;
const FAULTED = new Set(['runSagaStep', 'resolveSaga', 'startSaga', 'useCredits', 'refundCredits']);

class InjectedFault extends Error {
  override name = 'InjectedFault';
}

/** The store, failing at `rate` in the saga's operations: half the failures before the operation, half after it. */
function flaky(store: FluxPayStore, random: RandomSource, rate: { value: number }): FluxPayStore {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fn = (value as (...args: unknown[]) => Promise<unknown>).bind(target);
      if (typeof prop !== 'string' || !FAULTED.has(prop)) return fn;
      return async (...args: unknown[]) => {
        const roll = random.next();
        if (roll < rate.value / 2) throw new InjectedFault(`${prop} failed before writing`);
        const result = await fn(...args);
        if (roll < rate.value) throw new InjectedFault(`${prop} failed after writing`);
        return result;
      };
    },
  });
}

type End = 'completed' | 'failed' | 'timeout' | 'completedTwice' | 'failedThenCompleted';
interface Flow {
  user: number;
  withOrder: boolean;
  credits: number | undefined;
  declineFirst: boolean;
  repeatRequested: boolean;
  end: End;
}

const flowArb: fc.Arbitrary<Flow> = fc.record({
  user: fc.integer({ min: 0, max: USERS - 1 }),
  withOrder: fc.boolean(),
  credits: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
  declineFirst: fc.boolean(),
  repeatRequested: fc.boolean(),
  end: fc.constantFrom<End>('completed', 'failed', 'timeout', 'completedTwice', 'failedThenCompleted'),
});

const runArb = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  faultRate: fc.constantFrom(0, 0.1, 0.25),
  charges: fc.array(fc.integer({ min: 0, max: 300 }), { minLength: USERS, maxLength: USERS }),
  flows: fc.array(flowArb, { minLength: 60, maxLength: 100 }),
});

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function build(seed: number, rate: { value: number }): Promise<TestApp & { clock: ManualClock }> {
  const config = loadConfig({ WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQtZm9yLXBheXNpbQ==', SHUTDOWN_TIMEOUT_MS: '0', RANDOM_SEED: '42', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', FLUXPAY_USAGE_TIMEOUT_MS: String(TIMEOUT_MS) });
  const stores = createMemoryStores(config);
  stores.fluxpay = flaky(stores.fluxpay, createRandom(seed), rate);
  const clock = new ManualClock();
  const app = await buildApp({ config, clock, random: createRandom(seed), stores, logger: false });
  apps.push(app);
  await app.ready();
  return { app, clock, config, events: [] };
}

describe('random usage flows with failures injected into the saga’s steps', () => {
  it('every order, payment, credit balance and ledger account agrees at the end', async () => {
    let flowsRun = 0;
    let faultsSeen = 0;
    await fc.assert(
      fc.asyncProperty(runArb, async (run) => {
        const rate = { value: 0 };
        const t = await build(run.seed, rate);
        let eventSeq = 0;
        const call = async (method: 'GET' | 'POST', url: string, payload?: Json): Promise<LightMyRequestResponse> => t.app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
        /** A client that retries what failed on the server's side (500), as Kafka redelivers. */
        const send = async (url: string, payload: Json): Promise<LightMyRequestResponse> => {
          for (let attempt = 0; ; attempt++) {
            const res = await call('POST', url, payload);
            if (res.statusCode !== 500) return res;
            faultsSeen++;
            expect(attempt, `${url} keeps failing`).toBeLessThan(60);
          }
        };
        const result = (res: LightMyRequestResponse): Json => {
          expect(res.statusCode, res.body).toBe(200);
          expect(res.json()).toMatchObject(SUCCESS);
          return res.json().result as Json;
        };

        // Credits for each user: a CREDIT_CHARGE order, paid and charged (no faults yet).
        const userId = (i: number) => `user_${i}`;
        for (let i = 0; i < USERS; i++) {
          const charge = run.charges[i] as number;
          if (charge === 0) continue;
          const order = result(await call('POST', '/api/v1/orders', { userId: userId(i), serviceId: 'ai-writer', orderName: 'credits', amount: charge * 10, metadata: { kind: 'CREDIT_CHARGE', credits: charge } }));
          const payment = result(await call('POST', '/api/v1/payments', { orderId: order.orderId, method: 'EASY_PAY', easyPay: { provider: 'TOSSPAY' } }));
          result(await call('POST', '/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: order.orderId, amount: order.amount }));
          result(await call('POST', '/api/v1/credits/charge', { userId: userId(i), orderId: order.orderId }));
        }
        rate.value = run.faultRate;

        // Start every flow: its order paid (after a declined payment, sometimes), its usage requested.
        const started = await Promise.all(
          run.flows.map(async (flow, n) => {
            const user = userId(flow.user);
            let orderId: string | undefined;
            let paymentKey: string | undefined;
            if (flow.withOrder) {
              const order = result(await call('POST', '/api/v1/orders', { userId: user, serviceId: 'ai-writer', orderName: `flow ${n}`, amount: 1000 + n }));
              if (flow.declineFirst) {
                const declined = result(await call('POST', '/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4111111111111111', cvv: '442' } }));
                expect((await call('POST', '/api/v1/payments/confirm', { paymentKey: declined.paymentKey, orderId: order.orderId, amount: order.amount })).json().code).toBe('PAY_002');
              }
              const payment = result(await call('POST', '/api/v1/payments', { orderId: order.orderId, method: 'CARD', card: { number: '4242424242424242', cvv: '120' } }));
              result(await call('POST', '/api/v1/payments/confirm', { paymentKey: payment.paymentKey, orderId: order.orderId, amount: order.amount }));
              orderId = order.orderId;
              paymentKey = payment.paymentKey;
            }
            const requested = { eventId: `evt-${++eventSeq}`, type: 'service.usage.requested', userId: user, serviceId: 'ai-writer', usageId: `use-${n}`, ...(orderId === undefined ? {} : { orderId }), ...(flow.credits === undefined ? {} : { credits: flow.credits }) };
            const first = result(await send('/api/v1/events', requested));
            if (flow.repeatRequested) expect(result(await send('/api/v1/events', requested)).duplicate).toBe(true);
            return { flow, user, orderId, paymentKey, usageId: `use-${n}`, sagaId: first.saga.sagaId as string };
          }),
        );
        // Steps that failed are retried on the clock (well within the usage timeout).
        for (let i = 0; i < 20; i++) await t.clock.advance(100);

        // End them as each flow says, in rounds: an end answered PAY_004 because its saga's steps are
        // still being retried is sent again after the clock has moved on; one answered PAY_004
        // because it contradicts how the saga ended (a completion after the failure, or of a saga
        // compensated for short credits) is done with.
        const queues = started.map((s) => {
          const end = (type: 'completed' | 'failed') => ({ eventId: `evt-${++eventSeq}`, type: `service.usage.${type}`, userId: s.user, serviceId: 'ai-writer', usageId: s.usageId });
          const completed = end('completed');
          const ends: Record<End, Json[]> = { completed: [completed], completedTwice: [completed, completed], failed: [end('failed')], failedThenCompleted: [end('failed'), completed], timeout: [] };
          return [...ends[s.flow.end]];
        });
        for (let round = 0; queues.some((q) => q.length > 0); round++) {
          expect(round, 'ends still refused as busy').toBeLessThan(200);
          await Promise.all(
            queues.map(async (queue, n) => {
              while (queue.length > 0) {
                const event = queue[0] as Json;
                const res = await send('/api/v1/events', event);
                const { usageId, user, sagaId, flow } = started[n] as (typeof started)[number];
                // The completion after a failure is never a success.
                const refused = flow.end === 'failedThenCompleted' && event.type === 'service.usage.completed';
                if (res.statusCode === 409 && res.json().code === 'PAY_004') {
                  const { message } = res.json() as Json;
                  if (String(message).endsWith('send the completion again shortly.')) return;
                  expect([event.type, message]).toEqual([
                    'service.usage.completed',
                    expect.stringMatching(new RegExp(`^Usage ${usageId} of user ${user} cannot be completed: its saga ${sagaId} is COMPENSAT(ING|ED) \\((service\\.usage\\.failed|PAY_001)\\), its charge undone\\.$`)),
                  ]);
                  expect(refused || result(await call('GET', `/api/v1/sagas/${sagaId}`)).failureReason === 'PAY_001', flow.end).toBe(true);
                } else {
                  result(res);
                  expect(refused, `${flow.end}: ${res.body}`).toBe(false);
                }
                queue.shift();
              }
            }),
          );
          await t.clock.advance(100);
        }
        // Past every deadline, and long enough for every retry (faults stop, as an outage ends).
        for (let i = 0; i < 30; i++) await t.clock.advance(1000);
        rate.value = 0;
        for (let i = 0; i < 20; i++) await t.clock.advance(1000);
        await t.app.fluxpay.relay.idle();

        // Every saga ended as its flow asked (or compensated when its credits were short).
        const spent = new Map<string, number>();
        for (const s of started) {
          const saga = result(await call('GET', `/api/v1/sagas/${s.sagaId}`));
          const completes = (s.flow.end === 'completed' || s.flow.end === 'completedTwice') && saga.failureReason !== 'PAY_001';
          expect([s.flow.end, saga.status], JSON.stringify(saga)).toEqual([s.flow.end, completes ? 'COMPLETED' : 'COMPENSATED']);
          const reasons: Record<End, Array<string | null>> = {
            completed: [null, 'PAY_001'],
            completedTwice: [null, 'PAY_001'],
            failed: ['service.usage.failed', 'PAY_001'],
            failedThenCompleted: ['service.usage.failed', 'PAY_001'],
            timeout: ['timeout', 'PAY_001'],
          };
          expect(reasons[s.flow.end]).toContain(saga.failureReason);
          if (s.orderId !== undefined) {
            const order = result(await call('GET', `/api/v1/orders/${s.orderId}`));
            const payment = result(await call('GET', `/api/v1/payments/${s.paymentKey as string}`));
            expect([order.status, payment.status, order.paymentKey]).toEqual(completes ? ['COMPLETED', 'CONFIRMED', s.paymentKey] : ['CANCELLED', 'CANCELLED', s.paymentKey]);
          }
          const credits = s.flow.credits ?? (s.orderId === undefined ? 10 : 0);
          if (completes) spent.set(s.user, (spent.get(s.user) ?? 0) + credits);
        }
        for (let i = 0; i < USERS; i++) {
          const balance = result(await call('GET', `/api/v1/credits/balance?userId=${userId(i)}`)).balance as number;
          expect(balance, userId(i)).toBe((run.charges[i] as number) - (spent.get(userId(i)) ?? 0));
          expect(balance).toBeGreaterThanOrEqual(0);
        }
        const report = result(await call('GET', '/api/v1/reconciliation'));
        expect([report.mismatches, report.consistent, report.duplicateCharges, report.sagas.running, report.sagas.compensating, report.outbox.pending]).toEqual([[], true, 0, 0, 0, 0]);
        flowsRun += run.flows.length;
        await t.app.close();
        apps.splice(apps.indexOf(t.app), 1);
      }),
      { numRuns: 25, seed: 11_2026, endOnFailure: true },
    );
    // "Thousands of random flows", and the faults really happened.
    expect(flowsRun).toBeGreaterThanOrEqual(1500);
    expect(faultsSeen).toBeGreaterThan(100);
  }, 300_000);
});
