import { describe, expect, it, vi } from 'vitest';
import { DomainError } from '../../src/core/errors.ts';
import { isPaymentEvent, type DomainEvent } from '../../src/core/events.ts';
import type { Intent } from '../../src/core/intents/intent.ts';
import { derivedId } from '../../src/core/ids.ts';
import { CANCEL_EVENT_JOB, DECIDE_JOB, REFUND_EVENT_JOB, refundJobKey } from '../../src/core/intents/service.ts';
import type { IntentStore } from '../../src/core/ports.ts';
import { decidingTwice, errorOf, EVT_ID, PAY_ID, makeService, scriptedRandom, type Harness } from './support.ts';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const BASE = { reservationId: 'res_1', amount: 1000, currency: 'EUR' };
const APPROVE = { status: 'APPROVED', failureCode: null } as const;

function types(events: DomainEvent[]): string[] {
  return events.map((e) => e.type);
}

/** Creates an intent and lets its decision run; the intent as it is then. */
async function decided(h: Harness, scenario: 'approve' | 'fail', amount = 1000): Promise<Intent> {
  const intent = await h.service.create({ ...BASE, amount, scenario });
  await h.clock.advance(intent.delayMs);
  return h.service.get(intent.id);
}

describe('IntentService.create', () => {
  it('returns a PENDING intent with every field, the planned outcome among them', async () => {
    const h = await makeService();
    const intent = await h.service.create({
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
      planned: APPROVE,
    });
  });

  it('defaults: no scenario → approve, webhookUrl and metadata null', async () => {
    const h = await makeService();
    expect(await h.service.create(BASE)).toEqual({
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
      planned: APPROVE,
    });
  });

  it('records card as the scenario when the card decides, and its delay and planned decline', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, card: { number: '4000000000000002' } });
    expect(intent).toMatchObject({ scenario: 'card', delayMs: 100, status: 'PENDING', planned: { status: 'FAILED', failureCode: 'card_declined' } });
  });

  it('ids are pay_ + ULID and distinct, in creation order', async () => {
    const h = await makeService();
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      ids.push((await h.service.create(BASE)).id);
      if (i % 10 === 0) await h.clock.advance(1);
    }
    for (const id of ids) expect(id).toMatch(PAY_ID);
    expect(new Set(ids).size).toBe(50);
    expect([...ids].sort()).toEqual(ids);
  });

  it('stores the intent, schedules its decision as one job, and publishes payment.created', async () => {
    const h = await makeService();
    const intent = await h.service.create(BASE);
    expect(await h.service.get(intent.id)).toEqual(intent);
    expect((await h.store.stats()).size).toBe(1);
    expect(await h.scheduler.pending(DECIDE_JOB)).toBe(1);
    expect(await h.service.pendingDecisions()).toBe(1);
    expect(h.events).toEqual([{ id: expect.stringMatching(EVT_ID), type: 'payment.created', occurredAt: T0, intent }]);
    expect(h.events[0]).not.toHaveProperty('refundAmount');
  });

  it('a thousand pending intents share one clock timer, not one each', async () => {
    const h = await makeService();
    for (let i = 0; i < 1000; i++) await h.service.create({ ...BASE, scenario: 'delay', delayMs: 1000 + i });
    expect(h.clock.pendingTimers).toBe(1);
    expect(await h.service.pendingDecisions()).toBe(1000);
    await h.clock.advance(2000);
    expect(await h.service.pendingDecisions()).toBe(0);
    expect(h.events.filter((e) => e.type === 'payment.approved')).toHaveLength(1000);
  });

  it('an invalid card throws VALIDATION_FAILED and creates nothing', async () => {
    const h = await makeService();
    const error = await errorOf(() => h.service.create({ ...BASE, card: { cvv: 'x' } }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect((await h.store.stats()).size).toBe(0);
    expect(h.events).toEqual([]);
    expect(await h.service.pendingDecisions()).toBe(0);
  });

  it('STORE_FULL when the store holds only PENDING intents: nothing stored, no job left, no event', async () => {
    const h = await makeService({ store: { maxIntents: 2 } });
    await h.service.create(BASE);
    await h.service.create(BASE);
    const error = await errorOf(() => h.service.create(BASE));
    expect(error).toMatchObject({ code: 'STORE_FULL', store: 'intents' });
    expect((await h.store.stats()).size).toBe(2);
    expect(await h.service.pendingDecisions()).toBe(2);
    expect(types(h.events)).toEqual(['payment.created', 'payment.created']);
    // Once one is decided, it may go to make room.
    await h.clock.advance(200);
    await h.service.create(BASE);
    expect((await h.store.stats()).size).toBe(2);
  });

  it('a store that fails: the create rejects with its error, publishes nothing, and leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const h = await makeService();
      const insertFailure = new Error('insert failed');
      h.store.insert = () => Promise.reject(insertFailure);
      await expect(h.service.create(BASE)).rejects.toBe(insertFailure);

      // A scheduler store that does I/O: the insert fails while the schedule is still on its way.
      const schedule = h.schedulerStore.schedule.bind(h.schedulerStore);
      h.schedulerStore.schedule = (job) => new Promise<void>((resolve) => setTimeout(() => resolve(schedule(job)), 20));
      await expect(h.service.create(BASE)).rejects.toBe(insertFailure);

      // Both fail: the scheduler's error is the one reported; the insert's is handled, not thrown.
      const scheduleFailure = new Error('schedule failed');
      h.schedulerStore.schedule = () => Promise.reject(scheduleFailure);
      await expect(h.service.create(BASE)).rejects.toBe(scheduleFailure);
      expect(h.events).toEqual([]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('IntentService.create on a store that writes the intent and its job in one operation (insertScheduled, as Redis does)', () => {
  it('makes that one call instead of schedule + insert, and the decision is made when due; when full, STORE_FULL and no job', async () => {
    const h = await makeService({ store: { maxIntents: 1 } });
    const calls: string[] = [];
    (h.store as IntentStore).insertScheduled = async (intent, job) => {
      calls.push(`${job.kind} ${job.key} +${job.dueAt - intent.createdAt}`);
      const inserted = await h.store.insert(intent);
      if (inserted.ok) await h.schedulerStore.schedule(job);
      return inserted;
    };
    const schedule = vi.spyOn(h.scheduler, 'schedule');
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    expect(calls).toEqual([`${DECIDE_JOB} ${intent.id} +200`]);
    expect(schedule).not.toHaveBeenCalled();
    const error = await errorOf(() => h.service.create(BASE));
    expect(error).toMatchObject({ code: 'STORE_FULL', store: 'intents' });
    expect(await h.service.pendingDecisions()).toBe(1);
    // The job was written by the store, not by the scheduler: only its timer makes the decision on time.
    await h.clock.advance(199);
    expect((await h.service.get(intent.id)).status).toBe('PENDING');
    await h.clock.advance(1);
    expect((await h.service.get(intent.id)).status).toBe('APPROVED');
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved']);
    expect(await h.service.pendingDecisions()).toBe(0);
  });
});

describe('IntentService decisions', () => {
  it('approve: still PENDING at delay-1, APPROVED at the delay, with exactly one payment.approved', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });

    await h.clock.advance(199);
    expect((await h.service.get(intent.id)).status).toBe('PENDING');
    expect(types(h.events)).toEqual(['payment.created']);

    await h.clock.advance(1);
    const approved = { ...intent, status: 'APPROVED', failureCode: null, decidedAt: T0 + 200, updatedAt: T0 + 200 };
    expect(await h.service.get(intent.id)).toEqual(approved);
    expect(await h.service.pendingDecisions()).toBe(0);
    expect(h.events[1]).toEqual({ id: expect.stringMatching(EVT_ID), type: 'payment.approved', occurredAt: T0 + 200, intent: approved });

    await h.clock.advance(1_000_000);
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved']);
  });

  it('a decision that runs before its intent is stored (a shared store: another replica ran the job while the insert was on its way) is retried, and decides it once stored', async () => {
    const h = await makeService();
    const insert = h.store.insert.bind(h.store);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    h.store.insert = async (intent) => {
      await gate;
      return insert(intent);
    };
    const creating = h.service.create({ ...BASE, scenario: 'approve' });
    // The job is scheduled; the insert waits. The decision comes due and finds nothing.
    await h.clock.advance(200);
    expect(await h.service.pendingDecisions()).toBe(1);
    release();
    const intent = await creating;
    expect((await h.service.get(intent.id)).status).toBe('PENDING');
    // The retry (100 ms later) decides it.
    await h.clock.advance(100);
    expect(await h.service.get(intent.id)).toMatchObject({ status: 'APPROVED', decidedAt: T0 + 300 });
    expect(await h.service.pendingDecisions()).toBe(0);
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved']);
  });

  it('fail: FAILED card_declined after failDelayMs with exactly one payment.failed', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, scenario: 'fail' });
    await h.clock.advance(99);
    expect((await h.service.get(intent.id)).status).toBe('PENDING');
    await h.clock.advance(1);
    expect(await h.service.get(intent.id)).toEqual({ ...intent, status: 'FAILED', failureCode: 'card_declined', decidedAt: T0 + 100, updatedAt: T0 + 100 });
    await h.clock.advance(10_000);
    expect(types(h.events)).toEqual(['payment.created', 'payment.failed']);
    expect(h.events[1]?.intent).toMatchObject({ status: 'FAILED', failureCode: 'card_declined', decidedAt: T0 + 100 });
  });

  it('delay with an explicit delayMs decides at exactly that time', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, scenario: 'delay', delayMs: 5000 });
    expect(intent.delayMs).toBe(5000);
    await h.clock.advance(4999);
    expect((await h.service.get(intent.id)).status).toBe('PENDING');
    await h.clock.advance(1);
    expect(await h.service.get(intent.id)).toMatchObject({ status: 'APPROVED', decidedAt: T0 + 5000 });
  });

  it('a card decline carries the card failure code', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, card: { number: '4111111111111111', cvv: '447' } });
    await h.clock.advance(100);
    expect(await h.service.get(intent.id)).toMatchObject({ status: 'FAILED', failureCode: 'DECLINE_7', scenario: 'card' });
  });

  it('random draws once, at creation, from the injected source', async () => {
    const random = scriptedRandom(0.9, 0.1);
    const h = await makeService({ random });
    const a = await h.service.create({ ...BASE, scenario: 'random' });
    const b = await h.service.create({ ...BASE, scenario: 'random' });
    expect(random.calls).toBe(2);
    expect(a.delayMs).toBe(100);
    expect(b.delayMs).toBe(200);
    await h.clock.advance(200);
    expect(random.calls).toBe(2);
    expect(await h.service.get(a.id)).toMatchObject({ status: 'FAILED', failureCode: 'card_declined' });
    expect(await h.service.get(b.id)).toMatchObject({ status: 'APPROVED', failureCode: null });
  });

  it('decisions fire in due order, each publishing one event', async () => {
    const h = await makeService();
    const slow = await h.service.create({ ...BASE, scenario: 'delay' });
    const fast = await h.service.create({ ...BASE, scenario: 'fail' });
    await h.clock.advance(3000);
    expect(h.events.map((e) => [e.type, e.intent.id])).toEqual([
      ['payment.created', slow.id],
      ['payment.created', fast.id],
      ['payment.failed', fast.id],
      ['payment.approved', slow.id],
    ]);
  });

  it('event ids are unique evt_ ids', async () => {
    const h = await makeService();
    for (let i = 0; i < 5; i++) await h.service.create(BASE);
    await h.clock.advance(200);
    expect(h.events).toHaveLength(10);
    for (const e of h.events) expect(e.id).toMatch(EVT_ID);
    expect(new Set(h.events.map((e) => e.id)).size).toBe(10);
  });
});

describe('IntentService decisions made again (at least once, issue 14 "kill -9")', () => {
  it('the decision event’s id is derived from the intent and the decision time: evt_, the decision time, the intent id’s random part', async () => {
    const h = await makeService();
    const intent = await decided(h, 'approve');
    const approved = h.events[1] as (typeof h.events)[number];
    expect(approved.id).toBe(derivedId('evt', T0 + 200, intent.id));
    expect(approved.id).toMatch(EVT_ID);
    expect(approved.id.slice(-16)).toBe(intent.id.slice(-16));
  });

  it('memory: nothing subscribes with a durable part, so the job completes without awaiting anything more', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    expect(h.bus.publishDurable({ id: 'evt_x', type: 'payment.created', occurredAt: T0, intent })).toBeUndefined();
  });

  it('a durable part that fails leaves the job to run again: the same event (id, time, snapshot) is published again, the intent decided once, the job completed once it succeeds', async () => {
    const h = await makeService();
    let failures = 0;
    const durable: string[] = [];
    h.bus.subscribe((event) => {
      if (event.type !== 'payment.approved') return undefined;
      durable.push(event.id);
      return failures++ < 2 ? Promise.reject(new Error('the delivery stream is away')) : Promise.resolve();
    });
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    await h.clock.advance(200);
    expect(await h.service.pendingDecisions()).toBe(1);
    // The scheduler's backoff: 100 ms, then 200 ms.
    await h.clock.advance(100);
    expect(await h.service.pendingDecisions()).toBe(1);
    await h.clock.advance(200);
    expect(await h.service.pendingDecisions()).toBe(0);
    const approved = { ...intent, status: 'APPROVED', failureCode: null, decidedAt: T0 + 200, updatedAt: T0 + 200 };
    expect(await h.service.get(intent.id)).toEqual(approved);
    const eventId = derivedId('evt', T0 + 200, intent.id);
    expect(durable).toEqual([eventId, eventId, eventId]);
    // Made again: the same fact, marked so that counts skip it (isMadeAgain).
    const event = { id: eventId, type: 'payment.approved', occurredAt: T0 + 200, intent: approved };
    expect(h.events.slice(1)).toEqual([event, { ...event, again: true }, { ...event, again: true }]);
    await h.clock.advance(1_000_000);
    expect(h.events).toHaveLength(4);
  });

  it('run again after a refund, the decision’s event says what the decision said (status, refunded amount, time), with its id', async () => {
    const h = await makeService();
    const intent = await decided(h, 'approve', 1000);
    await h.clock.advance(10);
    await h.service.refund(intent.id, 400);
    // The job again, as a replica whose lease lapsed would run it.
    await h.scheduler.schedule(DECIDE_JOB, intent.id, h.clock.now());
    await h.clock.advance(0);
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved', 'payment.refunded', 'payment.approved']);
    expect(h.events[3]).toEqual({ ...h.events[1], again: true });
    expect(h.events[3]?.intent).toEqual({ ...intent, status: 'APPROVED', refundedAmount: 0, updatedAt: T0 + 200 });
    expect(await h.service.get(intent.id)).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 400, decidedAt: T0 + 200 });
  });

  it('a failed decision is made again as payment.failed with its failure code', async () => {
    const h = await makeService();
    const intent = await decided(h, 'fail');
    // A run again comes a retry's backoff or a lease later, never in the decision's millisecond.
    await h.clock.advance(1);
    await h.scheduler.schedule(DECIDE_JOB, intent.id, h.clock.now());
    await h.clock.advance(0);
    expect(types(h.events)).toEqual(['payment.created', 'payment.failed', 'payment.failed']);
    expect(h.events[2]).toEqual({ ...h.events[1], again: true });
    expect(h.events[2]?.intent).toMatchObject({ status: 'FAILED', failureCode: 'card_declined' });
  });

  it('a decision whose reply was lost and whose script ran again (a client that resends after a reconnect) is the first making, not marked again', async () => {
    const h = await makeService();
    decidingTwice(h.store);
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    await h.clock.advance(200);
    expect(h.events.slice(1)).toEqual([{ id: derivedId('evt', T0 + 200, intent.id), type: 'payment.approved', occurredAt: T0 + 200, intent: { ...intent, status: 'APPROVED', decidedAt: T0 + 200, updatedAt: T0 + 200 } }]);
    expect(await h.service.pendingDecisions()).toBe(0);
  });

  it('an intent cancelled before its decision: the job run again publishes nothing', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    await h.service.cancel(intent.id);
    await h.scheduler.schedule(DECIDE_JOB, intent.id, h.clock.now());
    await h.clock.advance(1000);
    expect(types(h.events)).toEqual(['payment.created', 'payment.cancelled']);
    expect(await h.service.pendingDecisions()).toBe(0);
  });
});

describe('IntentService.cancel', () => {
  it('cancels a PENDING intent, publishes payment.cancelled, and the decision never runs', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    await h.clock.advance(50);
    const cancelled = await h.service.cancel(intent.id);
    expect(cancelled).toEqual({ ...intent, status: 'CANCELLED', updatedAt: T0 + 50 });
    expect(await h.service.pendingDecisions()).toBe(0);
    // Its id derived from the intent's and the cancel's time: a backstop job on a shared store makes the same.
    expect(h.events[1]).toEqual({ id: derivedId('evt', T0 + 50, intent.id), type: 'payment.cancelled', occurredAt: T0 + 50, intent: cancelled });

    await h.clock.advance(86_400_000);
    expect((await h.service.get(intent.id)).status).toBe('CANCELLED');
    expect(types(h.events)).toEqual(['payment.created', 'payment.cancelled']);
  });

  it('a cancel and the due decision racing: exactly one wins, with one event', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    const [cancelled] = await Promise.allSettled([h.service.cancel(intent.id), h.clock.advance(200)]);
    const final = await h.service.get(intent.id);
    expect(cancelled.status === 'fulfilled' ? 'CANCELLED' : 'APPROVED').toBe(final.status);
    expect(types(h.events)).toHaveLength(2);
  });

  it.each([
    ['APPROVED', (h: Harness) => decided(h, 'approve')],
    ['FAILED', (h: Harness) => decided(h, 'fail')],
    ['CANCELLED', async (h: Harness) => h.service.cancel((await h.service.create(BASE)).id)],
    ['PARTIALLY_REFUNDED', async (h: Harness) => h.service.refund((await decided(h, 'approve')).id, 1)],
    ['REFUNDED', async (h: Harness) => h.service.refund((await decided(h, 'approve')).id)],
  ] as const)('cancelling a %s intent throws INVALID_STATE and changes nothing', async (status, setup) => {
    const h = await makeService();
    const intent = await setup(h);
    expect(intent.status).toBe(status);
    const eventCount = h.events.length;
    const error = await errorOf(() => h.service.cancel(intent.id));
    expect(error.code).toBe('INVALID_STATE');
    expect(error.message).toBe(`Payment intent ${intent.id} is ${status}; only a PENDING intent can be cancelled.`);
    expect(await h.service.get(intent.id)).toEqual(intent);
    expect(h.events).toHaveLength(eventCount);
  });

  it('cancel of an unknown id throws NOT_FOUND', async () => {
    const h = await makeService();
    expect(await errorOf(() => h.service.cancel('pay_nope'))).toMatchObject({ code: 'NOT_FOUND', message: 'Payment intent pay_nope does not exist.' });
  });
});

describe('IntentService.refund', () => {
  it('refunds the whole amount by default → REFUNDED', async () => {
    const h = await makeService();
    const intent = await decided(h, 'approve', 1000);
    await h.clock.advance(10);
    const refunded = await h.service.refund(intent.id);
    expect(refunded).toEqual({ ...intent, status: 'REFUNDED', refundedAmount: 1000, decidedAt: T0 + 200, updatedAt: T0 + 210 });
    expect(h.events.at(-1)).toEqual({ id: derivedId('evt', T0 + 210, `${intent.id}/1000`), type: 'payment.refunded', occurredAt: T0 + 210, refundAmount: 1000, intent: refunded });
  });

  it('partial → PARTIALLY_REFUNDED, then the rest → REFUNDED, each with its own event', async () => {
    const h = await makeService();
    const intent = await decided(h, 'approve', 1000);
    expect(await h.service.refund(intent.id, 300)).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 300 });
    expect(await h.service.refund(intent.id, 200)).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 500 });
    expect(await h.service.refund(intent.id)).toMatchObject({ status: 'REFUNDED', refundedAmount: 1000 });

    const refunds = h.events.filter((e) => e.type === 'payment.refunded');
    expect(refunds.map((e) => [e.refundAmount, e.intent.refundedAmount, e.intent.status])).toEqual([
      [300, 300, 'PARTIALLY_REFUNDED'],
      [200, 500, 'PARTIALLY_REFUNDED'],
      [500, 1000, 'REFUNDED'],
    ]);
  });

  it('an explicit amount equal to what is left → REFUNDED', async () => {
    const h = await makeService();
    const intent = await decided(h, 'approve', 1000);
    await h.service.refund(intent.id, 400);
    expect(await h.service.refund(intent.id, 600)).toMatchObject({ status: 'REFUNDED', refundedAmount: 1000 });
  });

  it('refunding more than is left throws REFUND_EXCEEDS_AMOUNT and changes nothing', async () => {
    const h = await makeService();
    const intent = await decided(h, 'approve', 1000);
    const partly = await h.service.refund(intent.id, 700);
    const eventCount = h.events.length;
    const error = await errorOf(() => h.service.refund(intent.id, 301));
    expect(error.code).toBe('REFUND_EXCEEDS_AMOUNT');
    expect(error.message).toBe(`A refund of 301 exceeds the 300 left to refund on ${intent.id}.`);
    expect(await h.service.get(intent.id)).toEqual(partly);
    expect(h.events).toHaveLength(eventCount);
  });

  it('concurrent refunds never refund more than the amount', async () => {
    const h = await makeService();
    const intent = await decided(h, 'approve', 1000);
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => h.service.refund(intent.id, 70)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(14);
    expect(await h.service.get(intent.id)).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: 980 });
  });

  it.each([
    ['PENDING', (h: Harness) => h.service.create(BASE)],
    ['FAILED', (h: Harness) => decided(h, 'fail')],
    ['CANCELLED', async (h: Harness) => h.service.cancel((await h.service.create(BASE)).id)],
    ['REFUNDED', async (h: Harness) => h.service.refund((await decided(h, 'approve')).id)],
  ] as const)('refunding a %s intent throws INVALID_STATE and changes nothing', async (status, setup) => {
    const h = await makeService();
    const intent = await setup(h);
    expect(intent.status).toBe(status);
    const eventCount = h.events.length;
    const error = await errorOf(() => h.service.refund(intent.id, 1));
    expect(error.code).toBe('INVALID_STATE');
    expect(error.message).toBe(`Payment intent ${intent.id} is ${status}; only an APPROVED or PARTIALLY_REFUNDED intent can be refunded.`);
    expect(await h.service.get(intent.id)).toEqual(intent);
    expect(h.events).toHaveLength(eventCount);
  });

  it('refund of an unknown id throws NOT_FOUND', async () => {
    const h = await makeService();
    expect((await errorOf(() => h.service.refund('pay_missing'))).code).toBe('NOT_FOUND');
  });

  it.each([0, -500, 1.5, Number.NaN])('an amount of %s is VALIDATION_FAILED and changes nothing', async (amount) => {
    const h = await makeService();
    const intent = await decided(h, 'approve');
    const eventsBefore = h.events.length;
    expect(await errorOf(() => h.service.refund(intent.id, amount))).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: '/amount', rule: 'minimum', message: 'must be a positive integer' }] });
    expect(await h.service.get(intent.id)).toEqual(intent);
    expect(h.events.length).toBe(eventsBefore);
  });
});

describe('copies', () => {
  it('earlier events do not change when the intent changes later, and what callers get cannot be changed', async () => {
    const h = await makeService();
    const intent = await h.service.create({ ...BASE, metadata: { a: '1' } });
    await h.clock.advance(200);
    await h.service.refund(intent.id, 100);
    const last = await h.service.refund(intent.id);
    // What the service hands out is frozen: a caller cannot change an event's snapshot through it.
    expect(() => {
      (last as { status: string }).status = 'FAILED';
    }).toThrow(TypeError);
    expect(() => {
      (intent.metadata as Record<string, string>)['a'] = 'mutated';
    }).toThrow(TypeError);

    expect(h.events.map((e) => [e.type, e.intent.status, e.intent.refundedAmount, e.intent.updatedAt, e.intent.decidedAt, e.intent.metadata])).toEqual([
      ['payment.created', 'PENDING', 0, T0, null, { a: '1' }],
      ['payment.approved', 'APPROVED', 0, T0 + 200, T0 + 200, { a: '1' }],
      ['payment.refunded', 'PARTIALLY_REFUNDED', 100, T0 + 200, T0 + 200, { a: '1' }],
      ['payment.refunded', 'REFUNDED', 1000, T0 + 200, T0 + 200, { a: '1' }],
    ]);
    expect((await h.service.get(intent.id)).status).toBe('REFUNDED');
  });

  it('a subscriber mutating its snapshot does not affect the stored intent', async () => {
    const h = await makeService();
    h.bus.subscribe((e) => {
      if (isPaymentEvent(e)) (e.intent as Intent).status = 'FAILED';
    });
    const intent = await h.service.create({ ...BASE, metadata: { k: 'v' } });
    expect(await h.service.get(intent.id)).toMatchObject({ status: 'PENDING', metadata: { k: 'v' } });
  });
});

describe('IntentService.get / list', () => {
  it('get of an unknown id throws NOT_FOUND', async () => {
    const h = await makeService();
    const error = await errorOf(() => h.service.get('pay_01ARZ3NDEKTSV4RRFFQ69G5FAV'));
    expect(error).toBeInstanceOf(DomainError);
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toBe('Payment intent pay_01ARZ3NDEKTSV4RRFFQ69G5FAV does not exist.');
  });

  it('list delegates to the store, newest first', async () => {
    const h = await makeService();
    const a = await h.service.create(BASE);
    const b = await h.service.create({ ...BASE, reservationId: 'res_2' });
    expect(await h.service.list({ limit: 10 })).toEqual({ data: [b, a], nextCursor: null });
    expect(await h.service.list({ limit: 10, reservationId: 'res_2' })).toEqual({ data: [b], nextCursor: null });
  });
});

describe('failing subscribers', () => {
  it('a throwing subscriber breaks neither create nor the other subscribers; onError gets the error and event', async () => {
    const h = await makeService();
    const boom = new Error('boom');
    h.bus.subscribe(() => {
      throw boom;
    });
    const after: string[] = [];
    h.bus.subscribe((e) => after.push(e.type));

    const intent = await h.service.create(BASE);
    expect(await h.service.get(intent.id)).toEqual(intent);
    expect(after).toEqual(['payment.created']);
    expect(h.busErrors).toEqual([{ error: boom, event: h.events[0] }]);

    await h.clock.advance(200);
    expect((await h.service.get(intent.id)).status).toBe('APPROVED');
    expect(after).toEqual(['payment.created', 'payment.approved']);
    expect(h.busErrors).toHaveLength(2);
  });

  it('unsubscribe stops delivery', async () => {
    const h = await makeService();
    const seen: string[] = [];
    const off = h.bus.subscribe((e) => seen.push(e.type));
    await h.service.create(BASE);
    off();
    await h.clock.advance(200);
    expect(seen).toEqual(['payment.created']);
  });
});

describe('a cancel or a refund on a store shared by several processes (issue 14 "kill -9")', () => {
  /** The count of `kind` jobs whenever a payment.cancelled or payment.refunded is published, and the subscriber failing (as a store that is away) for the first `failing` of them. */
  function watch(h: Harness, kind: string, failing = 0) {
    const pending: number[] = [];
    let failed = 0;
    h.bus.subscribe((event) => {
      if (event.type !== 'payment.cancelled' && event.type !== 'payment.refunded') return undefined;
      return h.schedulerStore.count(kind).then((n) => {
        pending.push(n);
        if (failed++ < failing) throw new Error('the delivery stream is away');
      });
    });
    return pending;
  }

  it('a cancel writes its backstop job with the change and cancels it once the event’s webhooks are queued; nothing is made again', async () => {
    const h = await makeService({ shared: true });
    const pending = watch(h, CANCEL_EVENT_JOB);
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    await h.clock.advance(50);
    const cancelled = await h.service.cancel(intent.id);
    expect(cancelled).toEqual({ ...intent, status: 'CANCELLED', updatedAt: T0 + 50 });
    expect(pending).toEqual([1]);
    expect(await h.schedulerStore.count(CANCEL_EVENT_JOB)).toBe(0);
    expect(await h.service.pendingDecisions()).toBe(0);
    await h.clock.advance(60_000);
    expect(h.events.slice(1)).toEqual([{ id: derivedId('evt', T0 + 50, intent.id), type: 'payment.cancelled', occurredAt: T0 + 50, intent: cancelled }]);
    expect(h.busErrors).toEqual([]);
  });

  it('a cancel whose webhook cannot be queued still answers the cancelled intent; its job makes the same event a lease later, once', async () => {
    const h = await makeService({ shared: true });
    const pending = watch(h, CANCEL_EVENT_JOB, 1);
    const intent = await h.service.create({ ...BASE, scenario: 'approve' });
    await h.clock.advance(50);
    const cancelled = await h.service.cancel(intent.id);
    expect(cancelled.status).toBe('CANCELLED');
    expect(h.busErrors.map((e) => [String(e.error), e.event.type])).toEqual([['Error: the delivery stream is away', 'payment.cancelled']]);
    expect(await h.schedulerStore.count(CANCEL_EVENT_JOB)).toBe(1);
    await h.clock.advance(29_999);
    expect(types(h.events)).toEqual(['payment.created', 'payment.cancelled']);
    await h.clock.advance(1);
    expect(types(h.events)).toEqual(['payment.created', 'payment.cancelled', 'payment.cancelled']);
    expect(h.events[2]).toEqual({ ...h.events[1], again: true });
    expect(h.events[1]).toEqual({ id: derivedId('evt', T0 + 50, intent.id), type: 'payment.cancelled', occurredAt: T0 + 50, intent: cancelled });
    expect(pending).toEqual([1, 1]);
    expect(await h.schedulerStore.count(CANCEL_EVENT_JOB)).toBe(0);
    await h.clock.advance(60_000);
    expect(h.events).toHaveLength(3);
  });

  it('a cancel refused (not PENDING) writes no job', async () => {
    const h = await makeService({ shared: true });
    const intent = await decided(h, 'approve');
    expect(await errorOf(() => h.service.cancel(intent.id))).toMatchObject({ code: 'INVALID_STATE' });
    expect(await h.schedulerStore.count(CANCEL_EVENT_JOB)).toBe(0);
  });

  it('refunds whose webhooks cannot be queued: each job, keyed by the refund, makes that refund’s event again as the refund left the intent, after a later refund too', async () => {
    const h = await makeService({ shared: true });
    const pending = watch(h, REFUND_EVENT_JOB, 2);
    const intent = await decided(h, 'approve', 1000);
    await h.clock.advance(10);
    const partly = await h.service.refund(intent.id, 300);
    await h.clock.advance(5);
    const rest = await h.service.refund(intent.id);
    expect([partly.status, rest.status]).toEqual(['PARTIALLY_REFUNDED', 'REFUNDED']);
    expect(pending).toEqual([1, 2]);
    expect(h.busErrors).toHaveLength(2);
    const first = { id: derivedId('evt', T0 + 210, `${intent.id}/300`), type: 'payment.refunded', occurredAt: T0 + 210, refundAmount: 300, intent: { ...intent, status: 'PARTIALLY_REFUNDED', refundedAmount: 300, updatedAt: T0 + 210 } };
    const second = { id: derivedId('evt', T0 + 215, `${intent.id}/1000`), type: 'payment.refunded', occurredAt: T0 + 215, refundAmount: 700, intent: { ...intent, status: 'REFUNDED', refundedAmount: 1000, updatedAt: T0 + 215 } };
    expect(h.events.slice(2)).toEqual([first, second]);
    await h.clock.advance(30_000);
    expect(h.events.slice(2)).toEqual([first, second, { ...first, again: true }, { ...second, again: true }]);
    expect(await h.schedulerStore.count(REFUND_EVENT_JOB)).toBe(0);
    await h.clock.advance(60_000);
    expect(h.events).toHaveLength(6);
  });

  it('a refund whose webhook is queued cancels its job (the key it was written under)', async () => {
    const h = await makeService({ shared: true });
    const pending = watch(h, REFUND_EVENT_JOB);
    const intent = await decided(h, 'approve', 1000);
    await h.service.refund(intent.id, 250);
    expect(pending).toEqual([1]);
    expect(await h.schedulerStore.count(REFUND_EVENT_JOB)).toBe(0);
    await h.clock.advance(60_000);
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved', 'payment.refunded']);
  });

  it('a job whose intent is no longer stored, or whose key names no refund or cancel of it, does nothing', async () => {
    const h = await makeService({ shared: true });
    const approved = await decided(h, 'approve', 1000);
    await h.scheduler.schedule(REFUND_EVENT_JOB, refundJobKey('pay_gone', 100, 100, T0), h.clock.now());
    await h.scheduler.schedule(CANCEL_EVENT_JOB, 'pay_gone', h.clock.now());
    await h.scheduler.schedule(REFUND_EVENT_JOB, refundJobKey(approved.id, 100, 100, T0), h.clock.now());
    await h.scheduler.schedule(REFUND_EVENT_JOB, approved.id, h.clock.now());
    await h.scheduler.schedule(CANCEL_EVENT_JOB, approved.id, h.clock.now());
    await h.clock.advance(0);
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved']);
    expect([await h.schedulerStore.count(REFUND_EVENT_JOB), await h.schedulerStore.count(CANCEL_EVENT_JOB)]).toEqual([0, 0]);
  });

  it('memory (a scheduler of this process alone): no backstop job is ever scheduled, the events are published at once', async () => {
    const h = await makeService();
    const scheduled: string[] = [];
    const schedule = h.schedulerStore.schedule.bind(h.schedulerStore);
    h.schedulerStore.schedule = (job) => {
      scheduled.push(job.kind);
      return schedule(job);
    };
    const intent = await decided(h, 'approve', 1000);
    await h.service.refund(intent.id, 100);
    await h.service.cancel((await h.service.create(BASE)).id);
    expect(scheduled).toEqual([DECIDE_JOB, DECIDE_JOB]);
    expect(types(h.events)).toEqual(['payment.created', 'payment.approved', 'payment.refunded', 'payment.created', 'payment.cancelled']);
  });
});
