import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { balanceOf, chargeCredits, confirm, createOrder, createPayment, fluxpayApps, fpGet, fpPost, reconciliation, resultOf, type Json } from '../helpers/fluxpay.ts';

/**
 * Credit races (issue 11 "Tests and benchmark"): 200 concurrent uses of one balance never take it
 * below zero, and 200 concurrent uses with one usageId deduct once; over real sockets on
 * 127.0.0.1 as well as in process. And 200 concurrent confirms of one order's payments approve one.
 */

const { app, closeAll } = fluxpayApps();
afterEach(closeAll);

describe('200 concurrent credit uses', () => {
  it('of one balance, over real sockets: exactly as many succeed as the balance covers; it never goes below zero', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 555);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as { port: number };
    const agent = new Agent({ connections: 200 });
    let answers: Array<{ status: number; body: Json }>;
    try {
      answers = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const res = await request(`http://127.0.0.1:${port}/api/v1/credits/use`, {
            method: 'POST',
            dispatcher: agent,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ userId: 'user_1', serviceId: 'ai-writer', usageId: `u-${i}`, amount: 10 }),
          });
          return { status: res.statusCode, body: (await res.body.json()) as Json };
        }),
      );
    } finally {
      await agent.close();
    }
    const ok = answers.filter((a) => a.status === 200);
    const short = answers.filter((a) => a.status === 409);
    expect([ok.length, short.length]).toEqual([55, 145]);
    expect(new Set(short.map((a) => a.body.code))).toEqual(new Set(['PAY_001']));
    // Each success saw a distinct balance after it: 545, 535, …, 5.
    expect(ok.map((a) => a.body.result.balance as number).sort((a, b) => b - a)).toEqual(Array.from({ length: 55 }, (_, i) => 545 - 10 * i));
    expect(await balanceOf(t, 'user_1')).toBe(5);
    const report = await reconciliation(t);
    expect([report.consistent, report.credits]).toEqual([true, { users: 1, totalBalance: 5, charged: 555, used: 550, refunded: 0 }]);
  });

  it('with one usageId, in process: deducted once; 199 are PAY_003', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 1000);
    const answers = await Promise.all(Array.from({ length: 200 }, () => fpPost(t, '/api/v1/credits/use', { userId: 'user_1', serviceId: 'ai-writer', usageId: 'same', amount: 7 })));
    const byStatus = (s: number) => answers.filter((a) => a.statusCode === s);
    expect([byStatus(200).length, byStatus(409).length]).toEqual([1, 199]);
    expect(new Set(byStatus(409).map((a) => a.json().code))).toEqual(new Set(['PAY_003']));
    expect(await balanceOf(t, 'user_1')).toBe(993);
    expect(resultOf(await fpGet(t, '/api/v1/credits/transactions?userId=user_1')).items.filter((x: Json) => x.type === 'USE')).toHaveLength(1);
    // And 200 concurrent refunds of it restore it once.
    const refunds = await Promise.all(Array.from({ length: 200 }, () => fpPost(t, '/api/v1/credits/refund', { userId: 'user_1', usageId: 'same' })));
    expect(refunds.filter((r) => r.statusCode === 200)).toHaveLength(1);
    expect(await balanceOf(t, 'user_1')).toBe(1000);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });

  it('usage sagas: 200 concurrent requested events of one user, one balance: never below zero, every saga agrees', async () => {
    const t = await app();
    await chargeCredits(t, 'user_1', 333);
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => fpPost(t, '/api/v1/events', { eventId: `e-${i}`, type: 'service.usage.requested', userId: 'user_1', serviceId: 'ai-writer', usageId: `s-${i}`, credits: 10 })),
    );
    const sagas = answers.map((a) => resultOf(a).saga as Json);
    expect(sagas.filter((s) => s.status === 'RUNNING')).toHaveLength(33);
    expect(sagas.filter((s) => s.status === 'COMPENSATED' && s.failureReason === 'PAY_001')).toHaveLength(167);
    expect(await balanceOf(t, 'user_1')).toBe(3);
    expect((await reconciliation(t)).mismatches).toEqual([]);
  });
});

describe('200 concurrent confirms', () => {
  it('of 200 payments of one order: one approves, the rest are PAY_004; no duplicate charge', async () => {
    const t = await app();
    const order = await createOrder(t);
    const payments = await Promise.all(Array.from({ length: 200 }, () => createPayment(t, order.orderId)));
    const answers = await Promise.all(payments.map((p) => confirm(t, p)));
    expect(answers.filter((a) => a.statusCode === 200)).toHaveLength(1);
    expect(new Set(answers.filter((a) => a.statusCode !== 200).map((a) => `${a.statusCode} ${a.json().code}`))).toEqual(new Set(['409 PAY_004']));
    const report = await reconciliation(t);
    expect([report.duplicateCharges, report.payments.APPROVED, report.payments.READY, report.mismatches]).toEqual([0, 1, 199, []]);
  });
});
