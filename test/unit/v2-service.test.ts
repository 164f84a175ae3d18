import { describe, expect, it } from 'vitest';
import { MemoryV2PaymentStore } from '../../src/adapters/memory/v2-payments.ts';
import { EventBus, isV2PaymentEvent, type V2PaymentEvent } from '../../src/core/events.ts';
import { createIdFactory, derivedId } from '../../src/core/ids.ts';
import { createRandom } from '../../src/core/random.ts';
import type { Job, V2BeginOutcome } from '../../src/core/ports.ts';
import type { V2Payment } from '../../src/core/v2/payment.ts';
import { V2_DECIDE_JOB, V2PaymentService } from '../../src/core/v2/service.ts';
import { MemorySchedulerStore } from '../../src/adapters/memory/scheduler.ts';
import { Scheduler } from '../../src/core/scheduler.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { decidingTwice, sharedScheduler, startedScheduler } from './support.ts';

/**
 * The /api/v2 decision made again (issue 14 "kill -9"): a `v2.decide` job that runs again (its
 * process died before the callback was queued, or queueing it failed) makes the same
 * `v2.payment_decided` event: the same id, derived from the payment id and the decision time,
 * and the payment as the decision left it.
 */

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const REQUEST = { txId: 'tx-1', orderId: 7, userId: 42, amount: 15_000, callbackUrl: 'https://shop.example/callback' };

/** `target` with one method put in (or replaced), its own methods called on it (they use private fields). */
function withMethod<T extends object>(target: T, name: string, method: (...args: never[]) => unknown): T {
  return new Proxy(target, {
    get(of, property) {
      if (property === name) return method;
      const value: unknown = Reflect.get(of, property, of);
      return typeof value === 'function' ? value.bind(of) : value;
    },
  });
}

/**
 * `payments` with a `beginScheduled` that writes a new payment and its job as the Redis store's
 * one script does (the payment, then its job if created), noting each call in `calls`.
 */
function writingJobsWith(payments: MemoryV2PaymentStore, jobs: MemorySchedulerStore, calls: string[]): MemoryV2PaymentStore {
  const beginScheduled = async (payment: V2Payment, job: Job): Promise<V2BeginOutcome> => {
    const begun = await payments.begin(payment);
    calls.push(`${begun.kind} ${job.kind} ${job.key} ${job.dueAt - T0}`);
    if (begun.kind === 'created') await jobs.schedule(job);
    return begun;
  };
  return withMethod(payments, 'beginScheduled', beginScheduled);
}

/** `shared`: the scheduler of a store shared by several processes (it polls), with a 30 s lease. */
async function harness(completeDelayMs = 500, shared = false) {
  const clock = new ManualClock(T0);
  const bus = new EventBus();
  const events: V2PaymentEvent[] = [];
  bus.subscribe((event) => {
    if (isV2PaymentEvent(event)) events.push(event);
  });
  const { scheduler, errors } = shared ? await sharedScheduler(clock) : await startedScheduler(clock);
  const store = new MemoryV2PaymentStore({ ttlMs: 86_400_000, maxPayments: 1000 });
  const service = new V2PaymentService({
    store,
    scheduler,
    bus,
    clock,
    random: createRandom(1),
    ids: createIdFactory(clock),
    settings: { defaultScenario: 'approve', completeDelayMs, delayDelayMs: 3000, randomApproveRate: 0.8 },
  });
  return { clock, bus, events, scheduler, errors, service, store };
}

describe('V2PaymentService decisions made again (at least once)', () => {
  it('the decision event’s id is derived from the payment id and the decision time, also when decided within the create (no delay)', async () => {
    const h = await harness(0);
    const { payment } = await h.service.create(REQUEST);
    expect(payment).toMatchObject({ status: 'PENDING', decidedAt: T0 });
    expect(h.events.map((e) => [e.type, e.id])).toEqual([
      ['v2.payment_created', expect.stringMatching(/^evt_/)],
      ['v2.payment_decided', derivedId('evt', T0, 'pay_tx-1')],
    ]);
    expect(derivedId('evt', T0, 'pay_tx-1')).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(derivedId('evt', T0, 'pay_tx-2')).not.toBe(derivedId('evt', T0, 'pay_tx-1'));
  });

  it('a durable part that fails leaves the job to run again, which publishes the same event; the payment is decided once', async () => {
    const h = await harness();
    let failures = 0;
    h.bus.subscribe((event) => (event.type === 'v2.payment_decided' && failures++ === 0 ? Promise.reject(new Error('the delivery stream is away')) : undefined));
    await h.service.create(REQUEST);
    await h.clock.advance(500);
    expect(await h.service.pendingDecisions()).toBe(1);
    await h.clock.advance(100);
    expect(await h.service.pendingDecisions()).toBe(0);
    const decided = h.events.filter((e) => e.type === 'v2.payment_decided');
    expect(decided).toHaveLength(2);
    expect(decided[1]).toEqual({ ...decided[0], again: true });
    expect(decided[0]).toMatchObject({ id: derivedId('evt', T0 + 500, 'pay_tx-1'), occurredAt: T0 + 500, payment: { status: 'PENDING', decidedAt: T0 + 500, confirmedAt: null } });
    expect(await h.service.get('pay_tx-1')).toMatchObject({ status: 'PENDING', decidedAt: T0 + 500 });
    expect(h.errors).toHaveLength(1);
  });

  it('a store that writes a new payment with its decision job in one step (Redis): no second call to schedule it; a repeat schedules nothing; the decision comes when due', async () => {
    const clock = new ManualClock(T0);
    const bus = new EventBus();
    const decided: V2PaymentEvent[] = [];
    bus.subscribe((event) => void (isV2PaymentEvent(event) && event.type === 'v2.payment_decided' && decided.push(event)));
    const jobs = new MemorySchedulerStore();
    const payments = new MemoryV2PaymentStore({ ttlMs: 86_400_000, maxPayments: 1000 });
    const together: string[] = [];
    const store = writingJobsWith(payments, jobs, together);
    // The scheduler's own schedule must not be needed: it fails.
    const schedulerStore = withMethod(jobs, 'schedule', () => Promise.reject(new Error('scheduled separately')));
    const scheduler = new Scheduler({ clock, store: schedulerStore, onError: () => undefined });
    await scheduler.start();
    const service = new V2PaymentService({ store, scheduler, bus, clock, random: createRandom(1), ids: createIdFactory(clock), settings: { defaultScenario: 'approve', completeDelayMs: 500, delayDelayMs: 3000, randomApproveRate: 0.8 } });
    expect((await service.create(REQUEST)).kind).toBe('created');
    expect((await service.create(REQUEST)).kind).toBe('existing');
    expect(together).toEqual([`created ${V2_DECIDE_JOB} pay_tx-1 500`, `existing ${V2_DECIDE_JOB} pay_tx-1 500`]);
    expect(await jobs.count(V2_DECIDE_JOB)).toBe(1);
    await clock.advance(500);
    expect(decided.map((e) => [e.id, e.payment.decidedAt])).toEqual([[derivedId('evt', T0 + 500, 'pay_tx-1'), T0 + 500]]);
    expect(await jobs.count(V2_DECIDE_JOB)).toBe(0);
    scheduler.stop();
  });

  it('no delay, several processes, a store that writes a new payment with its job in one step: the backstop job is written with the payment, none scheduled apart', async () => {
    const clock = new ManualClock(T0);
    const bus = new EventBus();
    const decided: V2PaymentEvent[] = [];
    const jobs = new MemorySchedulerStore();
    const pendingWhenPublished: number[] = [];
    bus.subscribe((event) => {
      if (!isV2PaymentEvent(event) || event.type !== 'v2.payment_decided') return undefined;
      decided.push(event);
      return jobs.count(V2_DECIDE_JOB).then((n) => void pendingWhenPublished.push(n));
    });
    const payments = new MemoryV2PaymentStore({ ttlMs: 86_400_000, maxPayments: 1000 });
    const together: string[] = [];
    const store = writingJobsWith(payments, jobs, together);
    const schedulerStore = withMethod(jobs, 'schedule', () => Promise.reject(new Error('scheduled separately')));
    const scheduler = new Scheduler({ clock, store: schedulerStore, onError: () => undefined, pollMs: 1000, leaseMs: 30_000 });
    await scheduler.start();
    const service = new V2PaymentService({ store, scheduler, bus, clock, random: createRandom(1), ids: createIdFactory(clock), settings: { defaultScenario: 'approve', completeDelayMs: 0, delayDelayMs: 3000, randomApproveRate: 0.8 } });
    expect(await service.create(REQUEST)).toMatchObject({ kind: 'created', payment: { status: 'PENDING', decidedAt: T0 } });
    expect((await service.create(REQUEST)).kind).toBe('existing');
    expect(together).toEqual([`created ${V2_DECIDE_JOB} pay_tx-1 30000`, `existing ${V2_DECIDE_JOB} pay_tx-1 30000`]);
    expect(pendingWhenPublished).toEqual([1]);
    expect(await jobs.count(V2_DECIDE_JOB)).toBe(0);
    await clock.advance(60_000);
    expect(decided.map((e) => e.id)).toEqual([derivedId('evt', T0, 'pay_tx-1')]);
    scheduler.stop();
  });

  it('run again after its callback was acknowledged, the event says what the decision said; a decline stays a decline', async () => {
    const h = await harness();
    await h.service.create(REQUEST);
    await h.service.create({ ...REQUEST, txId: 'tx-2' }, 'fail');
    await h.clock.advance(500);
    await h.service.acknowledge('pay_tx-1');
    await h.clock.advance(1);
    for (const id of ['pay_tx-1', 'pay_tx-2']) await h.scheduler.schedule(V2_DECIDE_JOB, id, h.clock.now());
    await h.clock.advance(0);
    const decided = h.events.filter((e) => e.type === 'v2.payment_decided');
    expect(decided.map((e) => [e.payment.id, e.payment.status, e.payment.failureCode, e.payment.confirmedAt])).toEqual([
      ['pay_tx-1', 'PENDING', null, null],
      ['pay_tx-2', 'PAYMENT_FAILED', 'card_declined', null],
      ['pay_tx-1', 'PENDING', null, null],
      ['pay_tx-2', 'PAYMENT_FAILED', 'card_declined', null],
    ]);
    expect(decided[2]).toEqual({ ...decided[0], again: true });
    expect(decided[3]).toEqual({ ...decided[1], again: true });
    expect(await h.service.get('pay_tx-1')).toMatchObject({ status: 'PAYMENT_COMPLETED', completedBy: 'callback' });
  });

  it('a decision whose reply was lost and whose script ran again (a client that resends after a reconnect) is the first making, not marked again', async () => {
    const h = await harness();
    decidingTwice(h.store);
    await h.service.create(REQUEST);
    await h.clock.advance(500);
    const decided = h.events.filter((e) => e.type === 'v2.payment_decided');
    expect(decided).toEqual([{ id: derivedId('evt', T0 + 500, 'pay_tx-1'), type: 'v2.payment_decided', occurredAt: T0 + 500, payment: expect.objectContaining({ status: 'PENDING', decidedAt: T0 + 500 }) }]);
  });

  it('a payment confirmed by hand before any decision: the job run again publishes nothing', async () => {
    const h = await harness();
    await h.service.create(REQUEST);
    await h.service.confirm('pay_tx-1');
    await h.scheduler.schedule(V2_DECIDE_JOB, 'pay_tx-1', h.clock.now());
    await h.clock.advance(1000);
    expect(h.events.map((e) => e.type)).toEqual(['v2.payment_created', 'v2.payment_completed']);
  });

  it('no delay, shared store: a backstop job stands behind the decision made within the create, cancelled once the callback is queued', async () => {
    const h = await harness(0, true);
    const pendingWhenPublished: number[] = [];
    h.bus.subscribe((event) => (event.type === 'v2.payment_decided' ? h.service.pendingDecisions().then((n) => void pendingWhenPublished.push(n)) : undefined));
    const { payment } = await h.service.create(REQUEST);
    expect(payment).toMatchObject({ status: 'PENDING', decidedAt: T0 });
    expect(pendingWhenPublished).toEqual([1]);
    expect(await h.service.pendingDecisions()).toBe(0);
    await h.clock.advance(60_000);
    expect(h.events.map((e) => e.type)).toEqual(['v2.payment_created', 'v2.payment_decided']);
  });

  it('no delay, shared store: a callback that could not be queued fails the create, and the backstop job makes the same event a lease later', async () => {
    const h = await harness(0, true);
    let failures = 0;
    h.bus.subscribe((event) => (event.type === 'v2.payment_decided' && failures++ === 0 ? Promise.reject(new Error('the delivery stream is away')) : undefined));
    await expect(h.service.create(REQUEST)).rejects.toThrow('the delivery stream is away');
    expect(await h.service.get('pay_tx-1')).toMatchObject({ status: 'PENDING', decidedAt: T0 });
    expect(await h.service.pendingDecisions()).toBe(1);
    await h.clock.advance(29_999);
    expect(h.events.filter((e) => e.type === 'v2.payment_decided')).toHaveLength(1);
    await h.clock.advance(1);
    const decided = h.events.filter((e) => e.type === 'v2.payment_decided');
    expect(decided).toHaveLength(2);
    expect(decided[1]).toEqual({ ...decided[0], again: true });
    expect(decided[0]?.id).toBe(derivedId('evt', T0, 'pay_tx-1'));
    expect(await h.service.pendingDecisions()).toBe(0);
  });

  it('no delay, memory (a scheduler of this process alone): no backstop job is ever scheduled', async () => {
    const h = await harness(0);
    const scheduled: string[] = [];
    const schedule = h.scheduler.schedule.bind(h.scheduler);
    h.scheduler.schedule = (kind, key, dueAt) => {
      scheduled.push(kind);
      return schedule(kind, key, dueAt);
    };
    await h.service.create(REQUEST);
    expect(scheduled).toEqual([]);
  });
});
