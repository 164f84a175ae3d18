import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/core/errors.ts';
import { isPaymentEvent, type DomainEvent } from '../../src/core/events.ts';
import type { Intent } from '../../src/core/intents.ts';
import { errorOf, EVT_ID, PAY_ID, makeService, scriptedRandom, type Harness } from './support.ts';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const BASE = { reservationId: 'res_1', amount: 1000, currency: 'EUR' };

function types(events: DomainEvent[]): string[] {
  return events.map((e) => e.type);
}

/** Creates an intent and lets its decision fire. */
function decided(h: Harness, scenario: 'approve' | 'fail', amount = 1000): Intent {
  const intent = h.service.create({ ...BASE, amount, scenario });
  h.clock.advance(intent.delayMs);
  return intent;
}

describe('IntentService.create', () => {
  it('returns a PENDING intent with every field', () => {
    const h = makeService();
    const intent = h.service.create({
      reservationId: 'res_42',
      amount: 2599,
      currency: 'USD',
      scenario: 'approve',
      webhookUrl: 'https://example.test/hook',
      metadata: { order: 'o-1' },
    });
    expect(intent).toEqual({
      id: expect.stringMatching(PAY_ID),
      reservationId: 'res_42',
      amount: 2599,
      currency: 'USD',
      scenario: 'approve',
      status: 'PENDING',
      failureCode: null,
      refundedAmount: 0,
      delayMs: 200,
      webhookUrl: 'https://example.test/hook',
      metadata: { order: 'o-1' },
      createdAt: T0,
      updatedAt: T0,
      decidedAt: null,
    });
  });

  it('defaults: no scenario → approve, webhookUrl and metadata null', () => {
    const h = makeService();
    expect(h.service.create(BASE)).toEqual({
      id: expect.stringMatching(PAY_ID),
      ...BASE,
      scenario: 'approve',
      status: 'PENDING',
      failureCode: null,
      refundedAmount: 0,
      delayMs: 200,
      webhookUrl: null,
      metadata: null,
      createdAt: T0,
      updatedAt: T0,
      decidedAt: null,
    });
  });

  it('records card as the scenario when the card decides, and its delay', () => {
    const h = makeService();
    const intent = h.service.create({ ...BASE, card: { number: '4000000000000002' } });
    expect(intent).toMatchObject({ scenario: 'card', delayMs: 100, status: 'PENDING' });
  });

  it('ids are pay_ + ULID and distinct, in creation order', () => {
    const h = makeService();
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      ids.push(h.service.create(BASE).id);
      if (i % 10 === 0) h.clock.advance(1);
    }
    for (const id of ids) expect(id).toMatch(PAY_ID);
    expect(new Set(ids).size).toBe(50);
    expect([...ids].sort()).toEqual(ids);
  });

  it('stores the intent and publishes payment.created with a snapshot', () => {
    const h = makeService();
    const intent = h.service.create(BASE);
    expect(h.service.get(intent.id)).toBe(intent);
    expect(h.store.size).toBe(1);
    expect(h.events).toEqual([{ id: expect.stringMatching(EVT_ID), type: 'payment.created', occurredAt: T0, intent: { ...intent } }]);
    expect(h.events[0]?.intent).not.toBe(intent);
    expect(h.events[0]).not.toHaveProperty('refundAmount');
  });

  it('an invalid card throws VALIDATION_FAILED and creates nothing', () => {
    const h = makeService();
    const error = errorOf(() => h.service.create({ ...BASE, card: { cvv: 'x' } }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(h.store.size).toBe(0);
    expect(h.events).toEqual([]);
    expect(h.service.pendingCount).toBe(0);
    expect(h.clock.pendingTimers).toBe(0);
  });
});

describe('IntentService decisions', () => {
  it('approve: still PENDING at delay-1, APPROVED at the delay, with exactly one payment.approved', () => {
    const h = makeService();
    const intent = h.service.create({ ...BASE, scenario: 'approve' });
    expect(h.service.pendingCount).toBe(1);

    h.clock.advance(199);
    expect(h.service.get(intent.id).status).toBe('PENDING');
    expect(types(h.events)).toEqual(['payment.created']);

    h.clock.advance(1);
    expect(h.service.get(intent.id)).toEqual({
      ...intent,
      status: 'APPROVED',
      failureCode: null,
      decidedAt: T0 + 200,
      updatedAt: T0 + 200,
    });
    expect(h.service.pendingCount).toBe(0);
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved']);
    expect(h.events[1]).toEqual({
      id: expect.stringMatching(EVT_ID),
      type: 'payment.approved',
      occurredAt: T0 + 200,
      intent: { ...intent, status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200 },
    });

    h.clock.advance(1_000_000);
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved']);
  });

  it('fail: FAILED card_declined after failDelayMs with exactly one payment.failed', () => {
    const h = makeService();
    const intent = h.service.create({ ...BASE, scenario: 'fail' });
    h.clock.advance(99);
    expect(intent.status).toBe('PENDING');
    h.clock.advance(1);
    expect(h.service.get(intent.id)).toEqual({
      ...intent,
      status: 'FAILED',
      failureCode: 'card_declined',
      decidedAt: T0 + 100,
      updatedAt: T0 + 100,
    });
    h.clock.advance(10_000);
    expect(types(h.events)).toEqual(['payment.created', 'payment.failed']);
    expect(h.events[1]?.intent).toMatchObject({ status: 'FAILED', failureCode: 'card_declined', decidedAt: T0 + 100 });
  });

  it('delay with an explicit delayMs decides at exactly that time', () => {
    const h = makeService();
    const intent = h.service.create({ ...BASE, scenario: 'delay', delayMs: 5000 });
    expect(intent.delayMs).toBe(5000);
    h.clock.advance(4999);
    expect(intent.status).toBe('PENDING');
    h.clock.advance(1);
    expect(intent).toMatchObject({ status: 'APPROVED', decidedAt: T0 + 5000 });
  });

  it('a card decline carries the card failure code', () => {
    const h = makeService();
    const intent = h.service.create({ ...BASE, card: { number: '4111111111111111', cvv: '447' } });
    h.clock.advance(100);
    expect(intent).toMatchObject({ status: 'FAILED', failureCode: 'DECLINE_7', scenario: 'card' });
  });

  it('random draws once, at creation, from the injected source', () => {
    const random = scriptedRandom(0.9, 0.1);
    const h = makeService({ random });
    const a = h.service.create({ ...BASE, scenario: 'random' });
    const b = h.service.create({ ...BASE, scenario: 'random' });
    expect(random.calls).toBe(2);
    expect(a.delayMs).toBe(100);
    expect(b.delayMs).toBe(200);
    h.clock.advance(200);
    expect(random.calls).toBe(2);
    expect(a).toMatchObject({ status: 'FAILED', failureCode: 'card_declined' });
    expect(b).toMatchObject({ status: 'APPROVED', failureCode: null });
  });

  it('decisions fire in due order, each publishing one event', () => {
    const h = makeService();
    const slow = h.service.create({ ...BASE, scenario: 'delay' });
    const fast = h.service.create({ ...BASE, scenario: 'fail' });
    h.clock.advance(3000);
    expect(h.events.map((e) => [e.type, e.intent.id])).toEqual([
      ['payment.created', slow.id],
      ['payment.created', fast.id],
      ['payment.failed', fast.id],
      ['payment.approved', slow.id],
    ]);
  });

  it('event ids are unique evt_ ids', () => {
    const h = makeService();
    for (let i = 0; i < 5; i++) h.service.create(BASE);
    h.clock.advance(200);
    expect(h.events).toHaveLength(10);
    for (const e of h.events) expect(e.id).toMatch(EVT_ID);
    expect(new Set(h.events.map((e) => e.id)).size).toBe(10);
  });
});

describe('IntentService.cancel', () => {
  it('cancels a PENDING intent, publishes payment.cancelled, and the decision never fires', () => {
    const h = makeService();
    const intent = h.service.create({ ...BASE, scenario: 'approve' });
    h.clock.advance(50);
    const cancelled = h.service.cancel(intent.id);
    expect(cancelled).toBe(intent);
    expect(cancelled).toEqual({ ...intent, status: 'CANCELLED', updatedAt: T0 + 50, decidedAt: null, failureCode: null });
    expect(h.service.pendingCount).toBe(0);
    expect(h.clock.pendingTimers).toBe(0);
    expect(h.events[1]).toEqual({
      id: expect.stringMatching(EVT_ID),
      type: 'payment.cancelled',
      occurredAt: T0 + 50,
      intent: { ...intent, status: 'CANCELLED', updatedAt: T0 + 50 },
    });

    h.clock.advance(86_400_000);
    expect(h.service.get(intent.id).status).toBe('CANCELLED');
    expect(types(h.events)).toEqual(['payment.created', 'payment.cancelled']);
  });

  it.each([
    ['APPROVED', (h: Harness) => decided(h, 'approve')],
    ['FAILED', (h: Harness) => decided(h, 'fail')],
    [
      'CANCELLED',
      (h: Harness) => {
        const i = h.service.create(BASE);
        h.service.cancel(i.id);
        return i;
      },
    ],
    [
      'PARTIALLY_REFUNDED',
      (h: Harness) => {
        const i = decided(h, 'approve');
        h.service.refund(i.id, 1);
        return i;
      },
    ],
    [
      'REFUNDED',
      (h: Harness) => {
        const i = decided(h, 'approve');
        h.service.refund(i.id);
        return i;
      },
    ],
  ] as const)('cancelling a %s intent throws INVALID_STATE and changes nothing', (status, setup) => {
    const h = makeService();
    const intent = setup(h);
    expect(intent.status).toBe(status);
    const before = { ...intent };
    const eventCount = h.events.length;
    const error = errorOf(() => h.service.cancel(intent.id));
    expect(error.code).toBe('INVALID_STATE');
    expect(error.message).toBe(`Payment intent ${intent.id} is ${status}; only a PENDING intent can be cancelled.`);
    expect(intent).toEqual(before);
    expect(h.events).toHaveLength(eventCount);
  });

  it('cancel of an unknown id throws NOT_FOUND', () => {
    const h = makeService();
    expect(errorOf(() => h.service.cancel('pay_nope'))).toMatchObject({ code: 'NOT_FOUND', message: 'Payment intent pay_nope does not exist.' });
  });
});

describe('IntentService.refund', () => {
  it('refunds the whole amount by default → REFUNDED', () => {
    const h = makeService();
    const intent = decided(h, 'approve', 1000);
    h.clock.advance(10);
    const refunded = h.service.refund(intent.id);
    expect(refunded).toBe(intent);
    expect(refunded).toEqual({
      ...intent,
      status: 'REFUNDED',
      refundedAmount: 1000,
      decidedAt: T0 + 200,
      updatedAt: T0 + 210,
    });
    expect(h.events.at(-1)).toEqual({
      id: expect.stringMatching(EVT_ID),
      type: 'payment.refunded',
      occurredAt: T0 + 210,
      refundAmount: 1000,
      intent: { ...intent },
    });
  });

  it('partial → PARTIALLY_REFUNDED, then the rest → REFUNDED, each with its own event', () => {
    const h = makeService();
    const intent = decided(h, 'approve', 1000);
    h.service.refund(intent.id, 300);
    expect(intent).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 300 });
    h.service.refund(intent.id, 200);
    expect(intent).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 500 });
    h.service.refund(intent.id);
    expect(intent).toMatchObject({ status: 'REFUNDED', refundedAmount: 1000 });

    const refunds = h.events.filter((e) => e.type === 'payment.refunded');
    expect(refunds.map((e) => [e.refundAmount, e.intent.refundedAmount, e.intent.status])).toEqual([
      [300, 300, 'PARTIALLY_REFUNDED'],
      [200, 500, 'PARTIALLY_REFUNDED'],
      [500, 1000, 'REFUNDED'],
    ]);
  });

  it('an explicit amount equal to what is left → REFUNDED', () => {
    const h = makeService();
    const intent = decided(h, 'approve', 1000);
    h.service.refund(intent.id, 400);
    h.service.refund(intent.id, 600);
    expect(intent).toMatchObject({ status: 'REFUNDED', refundedAmount: 1000 });
  });

  it('refunding more than is left throws REFUND_EXCEEDS_AMOUNT and changes nothing', () => {
    const h = makeService();
    const intent = decided(h, 'approve', 1000);
    h.service.refund(intent.id, 700);
    const before = { ...intent };
    const eventCount = h.events.length;
    const error = errorOf(() => h.service.refund(intent.id, 301));
    expect(error.code).toBe('REFUND_EXCEEDS_AMOUNT');
    expect(error.message).toBe(`A refund of 301 exceeds the 300 left to refund on ${intent.id}.`);
    expect(intent).toEqual(before);
    expect(h.events).toHaveLength(eventCount);
  });

  it('refunding more than the amount of an untouched intent throws REFUND_EXCEEDS_AMOUNT', () => {
    const h = makeService();
    const intent = decided(h, 'approve', 1000);
    expect(errorOf(() => h.service.refund(intent.id, 1001)).code).toBe('REFUND_EXCEEDS_AMOUNT');
    expect(intent).toMatchObject({ status: 'APPROVED', refundedAmount: 0 });
  });

  it.each([
    ['PENDING', (h: Harness) => h.service.create(BASE)],
    ['FAILED', (h: Harness) => decided(h, 'fail')],
    [
      'CANCELLED',
      (h: Harness) => {
        const i = h.service.create(BASE);
        h.service.cancel(i.id);
        return i;
      },
    ],
    [
      'REFUNDED',
      (h: Harness) => {
        const i = decided(h, 'approve');
        h.service.refund(i.id);
        return i;
      },
    ],
  ] as const)('refunding a %s intent throws INVALID_STATE and changes nothing', (status, setup) => {
    const h = makeService();
    const intent = setup(h);
    expect(intent.status).toBe(status);
    const before = { ...intent };
    const eventCount = h.events.length;
    const error = errorOf(() => h.service.refund(intent.id, 1));
    expect(error.code).toBe('INVALID_STATE');
    expect(error.message).toBe(`Payment intent ${intent.id} is ${status}; only an APPROVED or PARTIALLY_REFUNDED intent can be refunded.`);
    expect(intent).toEqual(before);
    expect(h.events).toHaveLength(eventCount);
  });

  it('refund of an unknown id throws NOT_FOUND', () => {
    const h = makeService();
    expect(errorOf(() => h.service.refund('pay_missing')).code).toBe('NOT_FOUND');
  });
});

describe('event snapshots', () => {
  it('earlier events do not change when the intent changes later', () => {
    const h = makeService();
    const intent = h.service.create({ ...BASE, metadata: { a: '1' } });
    h.clock.advance(200);
    h.service.refund(intent.id, 100);
    h.service.refund(intent.id);
    intent.metadata!['a'] = 'mutated';

    expect(h.events.map((e) => [e.type, e.intent.status, e.intent.refundedAmount, e.intent.updatedAt, e.intent.decidedAt, e.intent.metadata])).toEqual([
      ['payment.created', 'PENDING', 0, T0, null, { a: '1' }],
      ['payment.approved', 'APPROVED', 0, T0 + 200, T0 + 200, { a: '1' }],
      ['payment.refunded', 'PARTIALLY_REFUNDED', 100, T0 + 200, T0 + 200, { a: '1' }],
      ['payment.refunded', 'REFUNDED', 1000, T0 + 200, T0 + 200, { a: '1' }],
    ]);
  });

  it('a subscriber mutating its snapshot does not affect the intent', () => {
    const h = makeService();
    h.bus.subscribe((e) => {
      if (!isPaymentEvent(e)) return;
      (e.intent as Intent).status = 'FAILED';
      (e.intent as Intent).metadata!['k'] = 'x';
    });
    const intent = h.service.create({ ...BASE, metadata: { k: 'v' } });
    expect(intent).toMatchObject({ status: 'PENDING', metadata: { k: 'v' } });
  });
});

describe('IntentService.get / list', () => {
  it('get of an unknown id throws NOT_FOUND', () => {
    const h = makeService();
    const error = errorOf(() => h.service.get('pay_01ARZ3NDEKTSV4RRFFQ69G5FAV'));
    expect(error).toBeInstanceOf(DomainError);
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toBe('Payment intent pay_01ARZ3NDEKTSV4RRFFQ69G5FAV does not exist.');
  });

  it('list delegates to the store, newest first', () => {
    const h = makeService();
    const a = h.service.create(BASE);
    const b = h.service.create({ ...BASE, reservationId: 'res_2' });
    expect(h.service.list({ limit: 10 })).toEqual({ data: [b, a], nextCursor: null });
    expect(h.service.list({ limit: 10, reservationId: 'res_2' })).toEqual({ data: [b], nextCursor: null });
  });
});

describe('IntentService.drain', () => {
  it('resolves with 0 at once when nothing is pending', async () => {
    const h = makeService();
    await expect(h.service.drain(1000)).resolves.toBe(0);
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('resolves with 0 once every pending decision has fired', async () => {
    const h = makeService();
    h.service.create({ ...BASE, scenario: 'fail' });
    h.service.create({ ...BASE, scenario: 'approve' });
    let result: number | undefined;
    void h.service.drain(10_000).then((n) => (result = n));

    h.clock.advance(100);
    await Promise.resolve();
    expect(result).toBeUndefined();

    h.clock.advance(100);
    await Promise.resolve();
    expect(result).toBe(0);
    expect(h.clock.pendingTimers).toBe(0); // its timeout timer is cancelled
  });

  it('resolves with the count left when the timeout passes first', async () => {
    const h = makeService();
    h.service.create({ ...BASE, scenario: 'fail' }); // 100 ms
    h.service.create({ ...BASE, scenario: 'delay' }); // 3000 ms
    h.service.create({ ...BASE, scenario: 'delay', delayMs: 5000 });
    const drained = h.service.drain(1000);

    h.clock.advance(999);
    let settled = false;
    void drained.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);

    h.clock.advance(1);
    await expect(drained).resolves.toBe(2);
    expect(h.service.pendingCount).toBe(2);
  });

  it('cancelling the last pending intent also completes a drain', async () => {
    const h = makeService();
    const intent = h.service.create({ ...BASE, scenario: 'delay' });
    const drained = h.service.drain(60_000);
    h.service.cancel(intent.id);
    await expect(drained).resolves.toBe(0);
  });

  it('several concurrent drains all resolve', async () => {
    const h = makeService();
    h.service.create(BASE);
    const a = h.service.drain(1000);
    const b = h.service.drain(50);
    h.clock.advance(50);
    await expect(b).resolves.toBe(1);
    h.clock.advance(150);
    await expect(a).resolves.toBe(0);
  });
});

describe('forget', () => {
  it('drops the pending decision of an intent: the timer never fires', () => {
    const h = makeService();
    const intent = h.service.create(BASE);
    h.service.forget(intent.id);
    expect(h.service.pendingCount).toBe(0);
    h.clock.advance(10_000);
    expect(intent.status).toBe('PENDING');
    expect(types(h.events)).toEqual(['payment.created']);
  });

  it('a pending intent the store evicted is decided without error and without an event', () => {
    const h = makeService({ store: { maxIntents: 1 } });
    const first = h.service.create(BASE);
    h.service.create(BASE); // evicts `first`, which is pending
    expect(() => h.service.get(first.id)).toThrow(DomainError);
    h.clock.advance(200);
    expect(h.service.pendingCount).toBe(0);
    expect(h.events.filter((e) => e.type === 'payment.approved').map((e) => e.intent.id)).not.toContain(first.id);
  });
});

describe('failing subscribers', () => {
  it('a throwing subscriber breaks neither create nor the other subscribers; onError gets the error and event', () => {
    const h = makeService();
    const boom = new Error('boom');
    h.bus.subscribe(() => {
      throw boom;
    });
    const after: string[] = [];
    h.bus.subscribe((e) => after.push(e.type));

    const intent = h.service.create(BASE);
    expect(intent.status).toBe('PENDING');
    expect(h.service.get(intent.id)).toBe(intent);
    expect(after).toEqual(['payment.created']);
    expect(types(h.events)).toEqual(['payment.created']);
    expect(h.busErrors).toEqual([{ error: boom, event: h.events[0] }]);

    h.clock.advance(200);
    expect(intent.status).toBe('APPROVED');
    expect(after).toEqual(['payment.created', 'payment.approved']);
    expect(h.busErrors).toHaveLength(2);
  });

  it('unsubscribe stops delivery', () => {
    const h = makeService();
    const seen: string[] = [];
    const off = h.bus.subscribe((e) => seen.push(e.type));
    h.service.create(BASE);
    off();
    h.clock.advance(200);
    expect(seen).toEqual(['payment.created']);
  });
});

describe('IntentService.refund guards the amount itself', () => {
  it.each([0, -500, 1.5, Number.NaN])('rejects %s with VALIDATION_FAILED and changes nothing', (amount) => {
    const h = makeService();
    const intent = h.service.create({ reservationId: 'r', amount: 1000, currency: 'KRW' });
    h.clock.advance(200);
    const before = { ...intent };
    const eventsBefore = h.events.length;
    expect(() => h.service.refund(intent.id, amount)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', details: [{ field: '/amount', rule: 'minimum', message: 'must be a positive integer' }] }));
    expect(intent).toEqual(before);
    expect(h.events.length).toBe(eventsBefore);
  });
});
