import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, storedIntents, type TestApp } from '../helpers/app.ts';

/**
 * FAULTS_ENABLED=false (issue 15 "Performance"): fault injection off entirely. No route carries
 * the fault hooks, the rules API is gone (404 in the native shape), and the routes answer as they
 * do with fault injection on and no rules.
 */

let t: TestApp;
afterEach(async () => {
  await t.app.close();
});

/** Every route with its hooks' function names, from Fastify's own route tree. */
const routeTree = () => t.app.printRoutes({ includeHooks: true, commonPrefix: false });

const NOT_FOUND = (method: string, url: string) => ({ error: { code: 'NOT_FOUND', message: `No route ${method} ${url}.`, trace_id: expect.any(String) } });

describe('FAULTS_ENABLED', () => {
  it('true (the default): the dialect routes carry the fault hooks and the rules API answers', async () => {
    t = await buildTestApp();
    expect(t.app.faults).not.toBeNull();
    const tree = routeTree();
    expect(tree).toMatch(/\(preValidation\) \[[^\n]*"plan\(\)"/);
    expect(tree).toMatch(/\(onSend\) \[[^\n]*"loseAnswer\(\)"/);
    expect((await t.app.inject({ url: '/v1/sim/rules' })).json()).toEqual({ data: [] });
  });

  it('false: no fault hook on any route, /v1/sim/rules answers 404, and intents are created as usual', async () => {
    t = await buildTestApp({ FAULTS_ENABLED: 'false' });
    expect(t.app.faults).toBeNull();
    const tree = routeTree();
    expect(tree).toContain('/intent (POST)');
    expect(tree).not.toContain('"plan()"');
    expect(tree).not.toContain('"loseAnswer()"');

    for (const [method, url] of [
      ['GET', '/v1/sim/rules'],
      ['POST', '/v1/sim/rules'],
      ['DELETE', '/v1/sim/rules'],
      ['GET', '/v1/sim/rules/rule_01M8P2N817W7HSN9R5DPH91VN7'],
      ['DELETE', '/v1/sim/rules/rule_01M8P2N817W7HSN9R5DPH91VN7'],
    ] as const) {
      const res = await t.app.inject({ method, url, ...(method === 'POST' ? { payload: { action: { type: 'error', status: 503 } } } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json()).toEqual(NOT_FOUND(method, url));
    }

    const res = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'rsv_off', amount: 15000 }, headers: { 'x-test-case': 'lost-answer' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-sim-rule']).toBeUndefined();
    expect(res.json()).toEqual({ payment_intent_id: expect.stringMatching(/^pay_/), status: 'PENDING', next: 'poll' });
    expect(await storedIntents(t)).toBe(1);
    expect(await t.app.inject({ url: '/metrics' }).then((m) => m.body)).not.toContain('fault_rule_hits_total');

    // The served OpenAPI document shows no rule's answers: no 502 or 504, no fault_rule example, no X-Sim-Rule;
    // the 414 of a URL too long is answered at the door, rules or not (since 2026-12-05 on every operation).
    const doc = (await t.app.inject({ url: '/openapi.json' })).json();
    const create = doc.paths['/v1/sim/intent'].post;
    expect(Object.keys(create.responses)).toEqual(['200', '400', '409', '413', '414', '415', '422', '500', '503']);
    expect(Object.keys(create.responses['414'].content['application/json'].examples)).toEqual(['uri_too_long']);
    const text = JSON.stringify(doc.paths);
    expect([text.includes('"502"'), text.includes('"504"'), text.includes('"fault_rule":'), text.includes('X-Sim-Rule')]).toEqual([false, false, false, false]);
  });
});
