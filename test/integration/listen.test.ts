import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/** The native API over a real socket: what curl and load generators see. */
describe('a real listening server', () => {
  let t: TestApp;
  let base: string;
  const agent = new Agent({ connections: 4 });

  beforeAll(async () => {
    t = await buildTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await agent.close();
    await t.app.close();
  });

  it('creates, decides and reads an intent over keep-alive connections', async () => {
    const created = await request(`${base}/v1/sim/intent`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'listen-1' },
      body: JSON.stringify({ reservation_id: 'res_sock', amount: 42000, scenario: 'fail', webhook_url: 'http://127.0.0.1:9/hook' }),
    });
    expect(created.statusCode).toBe(200);
    expect(created.headers['x-request-id']).toBe('listen-1');
    expect(created.headers.connection).toBe('keep-alive');
    const body = (await created.body.json()) as { payment_intent_id: string };
    expect(body).toEqual({ payment_intent_id: expect.stringMatching(/^pay_/), status: 'PENDING', next: 'webhook' });

    await t.clock.advance(100);
    const read = await request(`${base}/v1/sim/intents/${body.payment_intent_id}`, { dispatcher: agent });
    expect(read.statusCode).toBe(200);
    expect(await read.body.json()).toMatchObject({ status: 'FAILED', failure_code: 'card_declined', webhook_url: 'http://127.0.0.1:9/hook' });
  });

  it('answers 400 for malformed JSON and 415 for form posts on the wire', async () => {
    const bad = await request(`${base}/v1/sim/intent`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(bad.statusCode).toBe(400);
    expect(((await bad.body.json()) as { error: { code: string } }).error.code).toBe('VALIDATION_FAILED');
    const form = await request(`${base}/v1/sim/intent`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
    expect(form.statusCode).toBe(415);
    expect(((await form.body.json()) as { error: { code: string } }).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
