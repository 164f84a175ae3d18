import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/receiver.ts';
import { afterAttempts, createIntent, deliveryWhen, listDeliveries, webhookFixtures } from '../helpers/webhooks.ts';
import type { TestApp } from '../helpers/app.ts';

/**
 * Webhook fault rules (issue 15) in the dispatcher, observed by a real receiver: duplicate,
 * drop_attempts, delay and reorder. Native intents approve 200 ms after creation (the manual
 * clock), and their `payment.approved` webhook goes to the receiver.
 */

const { app, receiver, closeAll } = webhookFixtures({ WEBHOOK_MAX_RPS: '0', WEBHOOK_BACKOFF_MS: '1000', WEBHOOK_SIGNATURE_SCHEMES: 'standard', WEBHOOK_CONCURRENCY: '1', WEBHOOK_ORIGIN_CONCURRENCY: '1' });
afterEach(closeAll);

async function rule(t: TestApp, body: unknown): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/sim/rules', payload: body as object });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id;
}

describe('webhook fault rules', () => {
  it('duplicate: the same event, with the same id and body, is delivered twice, as two deliveries', async () => {
    const t = await app();
    const r = await receiver();
    const id = await rule(t, { match: { url_prefix: r.origin }, action: { type: 'duplicate' } });
    const intent = await createIntent(t, { scenario: 'approve', webhook_url: r.url('/hooks') });
    await t.clock.advance(200);
    const [a, b] = await r.waitFor(2);
    expect(a?.headers['webhook-id']).toBe(b?.headers['webhook-id']);
    expect(a?.body).toBe(b?.body);
    expect(JSON.parse(a?.body ?? '{}')).toMatchObject({ id: a?.headers['webhook-id'], payment_intent_id: intent });
    const data = await eventually(async () => {
      const page = (await listDeliveries(t, `?payment_intent_id=${intent}`)).data;
      return page.every((d) => d.status === 'delivered') ? page : undefined;
    }, 'both delivered');
    expect(data.map((d) => [d.event_id, d.status])).toEqual([
      [a?.headers['webhook-id'], 'delivered'],
      [a?.headers['webhook-id'], 'delivered'],
    ]);
    expect((await t.app.inject({ url: `/v1/sim/rules/${id}` })).json()).toMatchObject({ hits: 1 });
  });

  it('drop_attempts: the first n attempts are lost as if by the network, so the retries deliver it', async () => {
    const t = await app();
    const r = await receiver();
    const id = await rule(t, { match: { url_prefix: r.origin }, action: { type: 'drop_attempts', n: 2 } });
    const intent = await createIntent(t, { scenario: 'approve', webhook_url: r.url('/hooks') });
    await t.clock.advance(200);
    for (const n of [1, 2]) {
      const d = await deliveryWhen(t, `?payment_intent_id=${intent}`, afterAttempts(n, 'retrying'), `attempt ${n} lost`);
      expect(d.attempts[n - 1]).toMatchObject({ status_code: null, error: `network_error: dropped by fault rule ${id}` });
      await t.clock.advance(Date.parse(d.next_attempt_at as string) - t.clock.now());
    }
    const done = await deliveryWhen(t, `?payment_intent_id=${intent}`, afterAttempts(3, 'delivered'), 'delivered on the third attempt');
    expect(done.attempts.map((a) => a.status_code)).toEqual([null, null, 200]);
    expect(r.requests).toHaveLength(1);
  });

  it('delay: the first attempt waits the sampled delay, shown as next_attempt_at', async () => {
    const t = await app();
    const r = await receiver();
    await rule(t, { match: { url_prefix: r.origin }, action: { type: 'delay', distribution: 'fixed', params: { ms: 5000 } } });
    const intent = await createIntent(t, { scenario: 'approve', webhook_url: r.url('/hooks') });
    await t.clock.advance(200);
    const waiting = await deliveryWhen(t, `?payment_intent_id=${intent}`, (d) => d.status === 'retrying', 'waiting');
    expect(waiting.attempts).toEqual([]);
    expect(Date.parse(waiting.next_attempt_at as string) - Date.parse(waiting.created_at)).toBe(5000);
    expect(r.requests).toHaveLength(0);
    await t.clock.advance(5000);
    await deliveryWhen(t, `?payment_intent_id=${intent}`, afterAttempts(1, 'delivered'), 'delivered after the delay');
    expect(r.requests).toHaveLength(1);
  });

  it('reorder: deliveries to one target are held for the window, then sent out of their order', async () => {
    const t = await app({ RANDOM_SEED: '42' });
    const r = await receiver();
    await rule(t, { match: { url_prefix: r.origin }, action: { type: 'reorder', window_ms: 1000 } });
    const intents: string[] = [];
    for (let i = 0; i < 4; i++) intents.push(await createIntent(t, { reservation_id: `res_${i}`, scenario: 'approve', webhook_url: r.url('/hooks') }));
    await t.clock.advance(200);
    await eventually(async () => ((await listDeliveries(t)).data.length === 4 ? true : undefined), 'four deliveries held');
    expect(r.requests).toHaveLength(0);
    // The order they were created (and held) in: the log lists newest first.
    const held = (await listDeliveries(t)).data.map((d) => d.event_id).reverse();
    await t.clock.advance(1000);
    const received = (await r.waitFor(4)).map((q) => q.headers['webhook-id']);
    expect([...received].sort()).toEqual([...held].sort());
    expect(received).not.toEqual(held);
  });
});

describe('drop_attempts and replays', () => {
  it('a replay of a delivery that failed before any attempt (endpoint_disabled) goes out: the rule lost the first series only', async () => {
    const t = await app();
    const r = await receiver(() => ({ status: 410 }));
    const url = r.url('/hooks');
    const first = await createIntent(t, { scenario: 'approve', webhook_url: url });
    await t.clock.advance(200);
    await deliveryWhen(t, `?payment_intent_id=${first}`, afterAttempts(1, 'failed'), 'the 410');
    r.respond(() => ({ status: 200 }));
    await rule(t, { match: { url_prefix: r.origin }, action: { type: 'drop_attempts', n: 1 } });
    const second = await createIntent(t, { scenario: 'approve', webhook_url: url });
    await t.clock.advance(200);
    const blocked = await deliveryWhen(t, `?payment_intent_id=${second}`, (d) => d.status === 'failed', 'blocked');
    expect(blocked).toMatchObject({ failure_reason: 'endpoint_disabled', attempts: [] });
    const replay = await t.app.inject({ method: 'POST', url: `/v1/sim/webhooks/deliveries/${blocked.id}/replay` });
    expect(replay.statusCode, replay.body).toBe(202);
    const done = await deliveryWhen(t, `?payment_intent_id=${second}`, (d) => d.status !== 'pending', 'replayed', 5000);
    expect(done.attempts.map((a) => a.status_code)).toEqual([200]);
  });
});
