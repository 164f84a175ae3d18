import { describe, expect, it } from 'vitest';
import type { Delivery, DeliveryAttempt } from '../../src/core/deliveries.ts';
import { summariseDeliveries, type ReportRow } from '../../src/core/report/rows.ts';
import { TotalsAccumulator } from '../../src/core/report/totals.ts';

/** The run report's delivery summary and totals (src/core/report), on plain records. */

const attempt = (at: number, statusCode: number | null): DeliveryAttempt => ({ at, statusCode, durationMs: 5, error: statusCode === null ? 'ECONNREFUSED' : null });

function delivery(id: string, status: Delivery['status'], attempts: DeliveryAttempt[], test = false): Delivery {
  return { id, eventId: `evt_${id}`, type: 'payment.approved', url: 'http://127.0.0.1:9/h', subject: { kind: 'intent', id: 'pay_1' }, test, body: '{}', extraHeaders: {}, schemes: ['standard'], status, attempts, seriesStart: 0, nextAttemptAt: null, failureReason: null, createdAt: 0, updatedAt: 0 };
}

describe('summariseDeliveries', () => {
  it('counts by outcome, sums attempts, takes the newest attempt’s status over all deliveries, and leaves test sends out', () => {
    const summary = summariseDeliveries([
      delivery('a', 'failed', [attempt(10, 500), attempt(1010, null), attempt(3010, 503)]),
      delivery('b', 'delivered', [attempt(2000, 200)]),
      delivery('c', 'retrying', [attempt(2500, 429)]),
      delivery('d', 'pending', []),
      delivery('t', 'delivered', [attempt(9000, 204)], true),
    ]);
    expect(summary).toEqual({ count: 4, delivered: 1, failed: 1, pending: 2, attempts: 5, lastStatusCode: 503 });
  });

  it('an attempt with no answer as the newest gives null', () => {
    expect(summariseDeliveries([delivery('a', 'retrying', [attempt(10, 500), attempt(20, null)])]).lastStatusCode).toBeNull();
    expect(summariseDeliveries([])).toEqual({ count: 0, delivered: 0, failed: 0, pending: 0, attempts: 0, lastStatusCode: null });
  });
});

describe('TotalsAccumulator', () => {
  const row = (dialect: ReportRow['dialect'], status: string, approved: boolean, amount: number, currency: string, attempts = 0): ReportRow => ({
    dialect, id: 'x', reference: 'r', amount, currency, status, approved, failureCode: null, decidedBy: null, createdAt: 0, decidedAt: null,
    deliveries: { count: attempts > 0 ? 1 : 0, delivered: attempts === 1 ? 1 : 0, failed: attempts > 1 ? 1 : 0, pending: 0, attempts, lastStatusCode: null },
  });

  it('adds up per dialect and status (every state present), approved amounts per currency sorted, deliveries', () => {
    const totals = new TotalsAccumulator();
    for (const r of [row('native', 'REFUNDED', true, 500, 'USD', 1), row('native', 'FAILED', false, 900, 'KRW', 3), row('fluxpay', 'PAID', true, 1000, 'KRW'), row('native', 'APPROVED', true, 200, 'EUR')]) totals.add(r);
    const result = totals.result();
    expect(result.payments).toBe(4);
    expect(result.byDialect.native).toEqual({ payments: 3, byStatus: { PENDING: 0, APPROVED: 1, FAILED: 1, CANCELLED: 0, PARTIALLY_REFUNDED: 0, REFUNDED: 1 } });
    expect(result.byDialect.fluxpay).toEqual({ payments: 1, byStatus: { PENDING: 0, PAID: 1, COMPLETED: 0, CANCELLED: 0 } });
    expect(result.byDialect['payment-server-v2']).toEqual({ payments: 0, byStatus: { PENDING: 0, PAYMENT_COMPLETED: 0, PAYMENT_FAILED: 0 } });
    expect(Object.entries(result.approvedAmounts)).toEqual([['EUR', 200], ['KRW', 1000], ['USD', 500]]);
    expect(result.deliveries).toEqual({ count: 2, delivered: 1, failed: 1, pending: 0, attempts: 4 });
    // A copy: adding more does not change a result already taken.
    totals.add(row('native', 'APPROVED', true, 1, 'EUR'));
    expect(result.byDialect.native.payments).toBe(3);
  });
});
