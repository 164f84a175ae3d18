import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { hasPromtool, inCi, PROMTOOL_MISSING, promtoolCheckMetrics } from '../helpers/promtool.ts';

/**
 * `/metrics` passes Prometheus's own linter, `promtool check metrics` (test/helpers/promtool.ts:
 * skipped locally without promtool, failing under CI).
 */

describe('GET /metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => {
    await t.app.close();
  });

  it.skipIf(!hasPromtool && !inCi)('passes promtool check metrics', async () => {
    if (!hasPromtool) {
      throw new Error(PROMTOOL_MISSING);
    }

    // Some traffic, so every family has samples: a success, a 400, a 404, a read, a decision.
    const created = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-metrics', amount: 100, scenario: 'approve' } });
    expect(created.statusCode).toBe(200);
    const id = created.json<{ payment_intent_id: string }>().payment_intent_id;
    expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: {} })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'GET', url: '/v1/sim/intents/pay_00000000000000000000000000' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: '/no-such-route' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/v1/sim/intents/${id}` })).statusCode).toBe(200);
    await t.clock.advance(10_000);

    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain('payment_intents_created_total{scenario="approve"} 1');
    expect(res.body).toContain('payment_intents_finalized_total{status="APPROVED"} 1');
    expect(res.body).toMatch(/^http_requests_total\{method="POST",route="\/v1\/sim\/intent",status_code="400"\} 1$/m);

    const { code, output } = await promtoolCheckMetrics(res.body);
    expect(output, 'promtool check metrics printed problems').toBe('');
    expect(code).toBe(0);
  });
});
