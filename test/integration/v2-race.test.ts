import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createV2, paymentOf, v2Body, v2Deliveries } from '../helpers/v2.ts';
import { metricSample, webhookFixtures } from '../helpers/webhooks.ts';

/**
 * The tx_id race: many identical requests at once create one payment and send one callback (the
 * original server processed a repeated tx_id again), and they all get the first one's answer.
 * Over real sockets on 127.0.0.1 as well as in process.
 * @see issue 10 "Idempotency"
 */

const { app, receiver, closeAll } = webhookFixtures({ WEBHOOK_MAX_RPS: '0' });
afterEach(closeAll);

async function v2Metric(t: Awaited<ReturnType<typeof app>>, status: string): Promise<number | undefined> {
  return metricSample((await t.app.inject({ url: '/metrics' })).body, `v2_payments_total{status="${status}"}`);
}

describe('200 concurrent identical requests', () => {
  it('over real sockets: one payment, one callback, 200 identical answers (199 replayed)', async () => {
    // The receiver takes its time, so the twins arrive while the first is still waiting for it.
    const rx = await receiver(() => ({ status: 200, delayMs: 50 }));
    const t = await app();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    const agent = new Agent({ connections: 200 });
    try {
      const body = JSON.stringify(v2Body('tx_race', rx.url()));
      const answers = await Promise.all(
        Array.from({ length: 200 }, async () => {
          const res = await request(`http://127.0.0.1:${port}/api/v2/payments`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body });
          return { status: res.statusCode, replayed: res.headers['idempotent-replayed'], body: await res.body.text() };
        }),
      );
      expect(new Set(answers.map((a) => `${a.status} ${a.body}`))).toEqual(new Set(['200 {"ok":true,"tx_id":"tx_race","status":"PAYMENT_COMPLETED","payment_id":"pay_tx_race"}']));
      expect(answers.filter((a) => a.replayed === 'true')).toHaveLength(199);
    } finally {
      await agent.close();
    }
    expect(rx.requests).toHaveLength(1);
    expect(await v2Deliveries(t, 'pay_tx_race')).toHaveLength(1);
    expect((await t.app.stores.v2Payments.stats()).size).toBe(1);
    expect(await paymentOf(t, 'pay_tx_race')).toMatchObject({ status: 'PAYMENT_COMPLETED' });
    expect(await v2Metric(t, 'PENDING')).toBe(1);
    expect(await v2Metric(t, 'PAYMENT_COMPLETED')).toBe(1);
  });

  it('in process, with a callback that fails: one payment, one callback series, all answer PENDING', async () => {
    const rx = await receiver(() => ({ status: 500 }));
    const t = await app();
    const answers = await Promise.all(Array.from({ length: 200 }, () => createV2(t, v2Body('tx_race2', rx.url()))));
    expect(new Set(answers.map((a) => `${a.statusCode} ${a.body}`))).toEqual(new Set(['200 {"ok":true,"tx_id":"tx_race2","status":"PENDING","payment_id":"pay_tx_race2"}']));
    expect(answers.filter((a) => a.headers['idempotent-replayed'] === 'true')).toHaveLength(199);
    expect(rx.requests).toHaveLength(1);
    expect(await v2Deliveries(t, 'pay_tx_race2')).toHaveLength(1);
  });

  it('mixed with other bodies for the tx_id: the first one wins, the same body replays, any other is 409', async () => {
    const rx = await receiver();
    const t = await app();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => createV2(t, v2Body('tx_mixed', rx.url(), { amount: i % 4 === 3 ? 9999 : 1000 }))));
    const byStatus = (s: number) => answers.filter((a) => a.statusCode === s);
    expect(byStatus(200)).toHaveLength(150);
    expect(byStatus(409)).toHaveLength(50);
    expect(new Set(byStatus(409).map((a) => a.body))).toEqual(new Set(['{"detail":"tx_id tx_mixed was already used with a different request"}']));
    expect(await paymentOf(t, 'pay_tx_mixed')).toMatchObject({ amount: 1000, status: 'PAYMENT_COMPLETED' });
    expect(rx.requests).toHaveLength(1);
  });
});
