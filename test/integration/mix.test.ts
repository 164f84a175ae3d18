import { afterEach, describe, expect, it } from 'vitest';
import { parseMix, pickMix, type Mix } from '../../src/core/faults/mix.ts';
import { createRandom } from '../../src/core/random.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { confirm, createOrder, createPayment, errorOf, resultOf } from '../helpers/fluxpay.ts';
import { createV2, paymentOf, v2Body } from '../helpers/v2.ts';

/**
 * The weighted outcome mix of load tests (issue 15): scenario `mix` with weights per request (the
 * native API's `mix` field, other dialects' `X-Sim-Mix` header) or the MIX setting, picked from
 * the seeded random stream, so a seeded run picks the same outcomes every time.
 * @see issue 15 "Load-test controls"
 */

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.app.close()));
});

async function app(env: Record<string, string> = {}): Promise<TestApp> {
  const t = await buildTestApp({ DEFAULT_APPROVE_DELAY_MS: '0', DEFAULT_FAIL_DELAY_MS: '0', DEFAULT_DELAY_DELAY_MS: '1000', ...env });
  apps.push(t);
  return t;
}

function mixOf(text: string): Mix {
  const parsed = parseMix(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.mix;
}

async function createIntent(t: TestApp, body: Record<string, unknown>) {
  return t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_mix', amount: 1000, ...body } });
}

async function statusOf(t: TestApp, id: string): Promise<Record<string, unknown>> {
  return (await t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` })).json();
}

describe('native intents: scenario mix', () => {
  it('200 intents with mix approve:60,fail:30,delay:10 end exactly as the seeded stream picks (RANDOM_SEED=42), and again on a second run', async () => {
    const run = async (): Promise<string[]> => {
      const t = await app();
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) {
        const res = await createIntent(t, { scenario: 'mix', mix: 'approve:60,fail:30,delay:10' });
        expect(res.statusCode).toBe(200);
        ids.push((res.json() as { payment_intent_id: string }).payment_intent_id);
      }
      await t.clock.advance(1000);
      const ends: string[] = [];
      for (const id of ids) {
        const intent = await statusOf(t, id);
        expect(intent.scenario).toBe('mix');
        ends.push(`${String(intent.status)}/${String(intent.failure_code)}/${String(intent.delay_ms)}`);
      }
      return ends;
    };
    const random = createRandom(42);
    const mix = mixOf('approve:60,fail:30,delay:10');
    const expected = Array.from({ length: 200 }, () => ({ approve: 'APPROVED/null/0', fail: 'FAILED/card_declined/0', delay: 'APPROVED/null/1000' })[pickMix(mix, random)]);
    const first = await run();
    expect(first).toEqual(expected);
    expect(await run()).toEqual(first);
    // All three outcomes occur in 200 picks of these weights.
    expect(new Set(first).size).toBe(3);
  });

  it('a mix without a scenario is scenario mix; MIX decides an intent that names no scenario and gives no card', async () => {
    const t = await app({ MIX: 'fail:1' });
    const a = (await createIntent(t, { mix: 'approve:1' })).json() as { payment_intent_id: string };
    const b = (await createIntent(t, {})).json() as { payment_intent_id: string };
    const c = (await createIntent(t, { scenario: 'mix' })).json() as { payment_intent_id: string };
    const d = (await createIntent(t, { scenario: 'approve' })).json() as { payment_intent_id: string };
    await t.clock.advance(0);
    const seen = await Promise.all([a, b, c, d].map(async (x) => {
      const intent = await statusOf(t, x.payment_intent_id);
      return [intent.scenario, intent.status, intent.failure_code];
    }));
    expect(seen).toEqual([
      ['mix', 'APPROVED', null],
      ['mix', 'FAILED', 'card_declined'],
      ['mix', 'FAILED', 'card_declined'],
      ['approve', 'APPROVED', null],
    ]);
  });

  it('bad input is 400 in the native shape and creates nothing: weights that do not parse, a mix beside another scenario, mix without weights or MIX', async () => {
    const t = await app();
    const cases: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ scenario: 'mix', mix: 'approve:90,maybe:10' }, { field: '/mix', rule: 'mix', message: 'names an unknown outcome "maybe" (outcomes: approve, fail, delay)', in: 'body' }],
      [{ scenario: 'fail', mix: 'approve:1' }, { field: '/mix', rule: 'mix_with_scenario', message: 'is given only with scenario mix or without a scenario (the scenario is fail)', in: 'body' }],
      [{ scenario: 'mix' }, { field: '/scenario', rule: 'mix_needs_weights', message: 'mix needs weights such as approve:90,fail:7,delay:3: send them with the request (the mix field, or the X-Sim-Mix header) or set MIX', in: 'body' }],
      [{ mix: 'approve:0,fail:0' }, { field: '/mix', rule: 'mix', message: 'must give at least one outcome a weight above 0', in: 'body' }],
    ];
    for (const [body, issue] of cases) {
      const res = await createIntent(t, body);
      const where = issue.in === undefined ? '' : `${String(issue.in)} `;
      expect([res.statusCode, res.json()]).toEqual([
        400,
        { error: { code: 'VALIDATION_FAILED', message: `${where}${String(issue.field)}: ${String(issue.message)}`, details: [issue], trace_id: expect.any(String) } },
      ]);
    }
    expect((await t.app.stores.intents.stats()).size).toBe(0);
  });
});

describe('/api/v2 and FluxPay: X-Sim-Scenario: mix with X-Sim-Mix', () => {
  it('/api/v2: the header decides; without X-Sim-Scenario a sent mix applies; MIX is the default when V2_DEFAULT_SCENARIO is unset', async () => {
    const t = await app({ MIX: 'fail:1' });
    const url = 'http://127.0.0.1:9/unused';
    const approved = await createV2(t, v2Body('tx_mix_1', url), { 'x-sim-scenario': 'mix', 'x-sim-mix': 'approve:1' });
    expect(approved.json()).toMatchObject({ ok: true, tx_id: 'tx_mix_1' });
    expect(await paymentOf(t, 'pay_tx_mix_1')).toMatchObject({ failure_code: null });
    const failed = await createV2(t, v2Body('tx_mix_2', url));
    expect(failed.json()).toMatchObject({ tx_id: 'tx_mix_2', status: 'PAYMENT_FAILED' });
    expect(await paymentOf(t, 'pay_tx_mix_2')).toMatchObject({ status: 'PAYMENT_FAILED', failure_code: 'card_declined' });
    const bad = await createV2(t, v2Body('tx_mix_3', url), { 'x-sim-mix': 'approve' });
    // FastAPI's shape, as for a bad X-Sim-Scenario: 422, the header's loc.
    expect([bad.statusCode, bad.json()]).toEqual([
      422,
      { detail: [{ type: 'mix', loc: ['header', 'x-sim-mix'], msg: 'must be weighted outcomes such as approve:90,fail:7,delay:3 (outcomes: approve, fail, delay); "approve" is not name:weight', input: 'approve' }] },
    ]);
    expect((await t.app.inject({ method: 'GET', url: '/api/v2/payments/pay_tx_mix_3' })).statusCode).toBe(404);
  });

  it('FluxPay confirm: a mix that picks fail declines with PAY_002 and decidedBy mix; a bad X-Sim-Mix is COMMON_400 naming the header', async () => {
    const t = await app();
    const order = await createOrder(t);
    const payment = await createPayment(t, order.orderId);
    const bad = await confirm(t, payment, { 'x-sim-scenario': 'mix', 'x-sim-mix': 'fail:-1' });
    const [badStatus, badBody] = errorOf(bad);
    expect(badStatus).toBe(400);
    expect(badBody).toEqual({
      isSuccess: false,
      code: 'COMMON_400',
      message: 'headers /x-sim-mix: gives fail the weight "-1"; a weight is an integer from 0 to 1000000',
      result: { errors: [{ field: 'header.x-sim-mix', reason: 'gives fail the weight "-1"; a weight is an integer from 0 to 1000000' }] },
    });
    const declined = await confirm(t, payment, { 'x-sim-scenario': 'mix', 'x-sim-mix': 'fail:1' });
    const [status, body] = errorOf(declined);
    expect([status, body.code]).toEqual([402, 'PAY_002']);
    const approvedOrder = await createOrder(t);
    const approvedPayment = await createPayment(t, approvedOrder.orderId);
    const approved = resultOf(await confirm(t, approvedPayment, { 'x-sim-mix': 'approve:3' }));
    expect(approved).toMatchObject({ status: 'APPROVED', decidedBy: 'mix' });
  });

  it('FluxPay subscribe with X-Sim-Scenario: mix and no weights anywhere is COMMON_400 at the edge: no order, no payment, no subscription', async () => {
    const t = await app();
    const before = await t.app.stores.fluxpay.orderCounts();
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/subscriptions',
      headers: { 'x-sim-scenario': 'mix' },
      payload: { userId: 'user_mix', planId: 'basic-monthly', card: { number: '4242424242424242', cvv: '123', expMonth: 12, expYear: 2030 } },
    });
    expect([res.statusCode, res.json()]).toEqual([
      400,
      {
        isSuccess: false,
        code: 'COMMON_400',
        message: 'headers /x-sim-scenario: mix needs weights such as approve:90,fail:7,delay:3: send them with the request (the mix field, or the X-Sim-Mix header) or set MIX',
        result: { errors: [{ field: 'header.x-sim-scenario', reason: 'mix needs weights such as approve:90,fail:7,delay:3: send them with the request (the mix field, or the X-Sim-Mix header) or set MIX' }] },
      },
    ]);
    expect(await t.app.stores.fluxpay.orderCounts()).toEqual(before);
    expect((await t.app.inject({ url: '/api/v1/subscriptions?userId=user_mix' })).json().result.items).toEqual([]);
  });
});
