import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryFluxPayStore } from '../../src/adapters/memory/fluxpay.ts';
import { MemorySchedulerStore } from '../../src/adapters/memory/scheduler.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { stampOf, type OutboxEvent, type Payment } from '../../src/core/fluxpay/model.ts';
import { OutboxRelay } from '../../src/core/fluxpay/outbox.ts';
import type { FluxPayStore } from '../../src/core/fluxpay/ports.ts';
import { Scheduler } from '../../src/core/scheduler.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

/**
 * The outbox relay across a restart (issue 11: "never loses or reorders an aggregate's events
 * across a restart of the relay"). A first relay stops at a random point, either while handing an
 * event to a publisher (it was not taken) or after the publishers took it but before it was marked
 * published (the worst moment); a second relay, a new instance on the same store, carries on while
 * more changes are written. Every event is published, the first publication of each is in write
 * order (so in order within each aggregate), and only the event at the crash can be published twice.
 */

const clock = new ManualClock();
const ids = createIdFactory(clock);

class Crash extends Error {}

/** Writes `n` changes of a few users and orders: charges, uses, refunds, approved payments, cancels. */
async function writeChanges(store: FluxPayStore, n: number, salt: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const userId = `user_${i % 3}`;
    const now = clock.now();
    const orderId = ids('ord');
    await store.createOrder({ orderId, userId, serviceId: 's', orderName: 'o', amount: 100, currency: 'KRW', metadata: { kind: 'CREDIT_CHARGE', credits: 50 }, status: 'PENDING', paymentKey: null, sagaId: null, chargedCredits: null, cancelReason: null, createdAt: now, updatedAt: now, paidAt: null, completedAt: null, cancelledAt: null });
    const payment: Payment = { paymentKey: ids('pk'), orderId, userId, amount: 100, currency: 'KRW', method: 'EASY_PAY', card: null, easyPay: { provider: 'X' }, status: 'READY', failureCode: null, decidedBy: null, planned: { status: 'APPROVED', failureCode: null }, createdAt: now, updatedAt: now, approvedAt: null, confirmedAt: null, failedAt: null, cancelledAt: null };
    await store.createPayment(payment);
    await store.confirmPayment({ paymentKey: payment.paymentKey, orderId, amount: 100, decision: { status: 'APPROVED', failureCode: null, decidedBy: 'approve' } }, stampOf(ids, now));
    if (i % 4 === 3) {
      await store.cancelOrder(orderId, 'test', stampOf(ids, now));
      continue;
    }
    await store.chargeCredits(userId, orderId, stampOf(ids, now));
    await store.useCredits({ userId, serviceId: 's', usageId: `${salt}-${i}`, amount: 20, creditUsageId: ids('cu') }, stampOf(ids, now));
    if (i % 2 === 0) await store.refundCredits(userId, `${salt}-${i}`, stampOf(ids, now));
  }
}

/** `memory` with its markPublished replaced by `mark`; `seen` is told the name of every other method taken from it. */
function withMark(memory: MemoryFluxPayStore, mark: (eventIds: string[], now: number) => Promise<number>, seen: (prop: string | symbol) => void = () => undefined): FluxPayStore {
  return new Proxy(memory, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'markPublished') return mark;
      seen(prop);
      return (value as (...args: unknown[]) => unknown).bind(target);
    },
  }) as FluxPayStore;
}

function relayOn(store: FluxPayStore, publish: (event: OutboxEvent) => Promise<void>): OutboxRelay {
  // A scheduler that is never started: the first relay's retry job must not fire after its "crash".
  const scheduler = new Scheduler({ clock, store: new MemorySchedulerStore(), onError: () => {} });
  const relay = new OutboxRelay({ store, scheduler, clock, onError: () => {} });
  relay.addPublisher(publish);
  return relay;
}

/** A started scheduler on a manual clock and a relay whose one publisher fails while `receiver.down`, recording what it got and the errors reported. */
async function relayWithReceiver() {
  const manual = new ManualClock();
  const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 1000 });
  const scheduler = new Scheduler({ clock: manual, store: new MemorySchedulerStore(), onError: () => {} });
  await scheduler.start();
  const errors: unknown[] = [];
  const relay = new OutboxRelay({ store, scheduler, clock: manual, onError: (error) => errors.push(error) });
  const receiver = { down: true };
  const got: number[] = [];
  relay.addPublisher(async (event) => {
    if (receiver.down) throw new Error('receiver down');
    got.push(event.sequence);
  });
  return { manual, store, scheduler, relay, errors, got, receiver };
}

describe('the outbox relay across a restart', () => {
  it('loses nothing and reorders nothing; only the event at the crash may be published twice', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 60 }), fc.boolean(), fc.integer({ min: 1, max: 12 }), async (crashAt, afterPublish, moreChanges) => {
        const memory = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 100_000 });
        let marks = 0;
        let armed = true;
        // A store whose marking fails once, at the crash (the publishers took the event; it stays pending).
        const store = withMark(memory, async (eventIds, now) => {
          if (armed && afterPublish && marks++ === crashAt) throw new Crash('crashed before marking');
          return memory.markPublished(eventIds, now);
        });
        await writeChanges(store, 12, 'a');
        const written = await memory.pendingOutbox(10_000);
        const published: OutboxEvent[] = [];

        let taken = 0;
        const first = relayOn(store, async (event) => {
          if (!afterPublish && taken++ === crashAt) throw new Crash('crashed while publishing');
          published.push(event);
        });
        await first.run();
        await first.stop();
        const crashed = published.length < written.length;
        if (crashed) expect((await memory.outboxStats()).pending).toBe(written.length - (afterPublish ? published.length - 1 : published.length));

        armed = false;
        // The restart: a new relay on the same store, while more changes are written.
        const second = relayOn(store, async (event) => void published.push(event));
        const running = second.run();
        await writeChanges(store, moreChanges, 'b');
        second.kick();
        await running;
        await second.idle();
        const all = [...written, ...(await memory.listOutbox({ limit: 10_000 })).data.filter((e) => !written.some((w) => w.eventId === e.eventId))];

        // Nothing lost, nothing left pending.
        expect(new Set(published.map((e) => e.eventId))).toEqual(new Set(all.map((e) => e.eventId)));
        expect((await memory.outboxStats()).pending).toBe(0);
        // First publications in write order: within every aggregate, and across them.
        const firsts = published.filter((e, i) => published.findIndex((p) => p.eventId === e.eventId) === i);
        expect(firsts.map((e) => e.sequence)).toEqual([...firsts.map((e) => e.sequence)].sort((a, b) => a - b));
        // Only the event at the crash is published twice, and only when it crashed after publishing.
        const twice = published.length - firsts.length;
        expect(twice).toBe(afterPublish && crashAt < written.length ? 1 : 0);
      }),
      { numRuns: 60, seed: 2026 },
    );
  });

  it('says whether a run is in progress, from a kick until its last event is marked', async () => {
    const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 1000 });
    let release = (): void => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const taken: number[] = [];
    const relay = relayOn(store, async (event) => {
      await held;
      taken.push(event.sequence);
    });
    expect(relay.running).toBe(false);
    await writeChanges(store, 1, 'r');
    relay.kick();
    expect(relay.running).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect([relay.running, taken]).toEqual([true, []]);
    release();
    await relay.idle();
    // payment.approved, credit.charged, order.completed, credit.deducted, credit.refunded, in order.
    expect([relay.running, taken, (await store.outboxStats()).pending]).toEqual([false, [1, 2, 3, 4, 5], 0]);
  });

  it('a publisher that keeps failing holds the outbox back in order, and the relay retries it on the clock', async () => {
    const { manual, store, scheduler, relay, errors, got, receiver } = await relayWithReceiver();
    await writeChanges(store, 2, 'c');
    await relay.run();
    expect([got, errors.length, (await store.outboxStats()).pending]).toEqual([[], 1, 9]);
    await manual.advance(100);
    expect(errors.length).toBe(2);
    receiver.down = false;
    await manual.advance(200);
    await relay.idle();
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect((await store.outboxStats()).pending).toBe(0);
    scheduler.stop();
  });

  it('the retry job starts the relay and ends: a long run holds back neither the scheduler’s other jobs nor the next run of due work (2026-12-05, a review)', async () => {
    const manual = new ManualClock();
    const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 1000 });
    const scheduler = new Scheduler({ clock: manual, store: new MemorySchedulerStore(), onError: () => {} });
    const relay = new OutboxRelay({ store, scheduler, clock: manual, onError: () => {} });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const got: number[] = [];
    relay.addPublisher(async (event) => {
      await held;
      got.push(event.sequence);
    });
    const ran: string[] = [];
    scheduler.register('other', (key) => {
      ran.push(key);
    });
    await writeChanges(store, 1, 'held');
    await scheduler.schedule('fluxpay.outbox', 'relay', manual.now());
    await scheduler.schedule('other', 'a', manual.now());
    const first = await Promise.race([scheduler.runDue().then(() => 'ran'), new Promise((resolve) => setTimeout(() => resolve('held back'), 300))]);
    expect([first, ran, relay.running, got]).toEqual(['ran', ['a'], true, []]);
    await scheduler.schedule('other', 'b', manual.now());
    expect(await Promise.race([scheduler.runDue().then(() => 'ran'), new Promise((resolve) => setTimeout(() => resolve('held back'), 300))])).toBe('ran');
    expect(ran).toEqual(['a', 'b']);
    release();
    await relay.idle();
    expect([got.length, (await store.outboxStats()).pending]).toEqual([5, 0]);
  });

  it('while a failed publication waits for its retry, writes do not retry it at once: one failure reported per retry, not per write', async () => {
    const { manual, store, scheduler, relay, errors, got, receiver } = await relayWithReceiver();
    await writeChanges(store, 1, 'k0');
    relay.kick();
    await relay.idle();
    expect(errors.length).toBe(1);
    for (let i = 1; i <= 5; i++) {
      await writeChanges(store, 1, `k${i}`);
      relay.kick();
      await relay.idle();
    }
    expect(errors.length).toBe(1);
    // The retry (100 ms later) fails once more; then, the stream back, the next one publishes everything, in order.
    await manual.advance(100);
    await relay.idle();
    expect(errors.length).toBe(2);
    receiver.down = false;
    await manual.advance(200);
    await relay.idle();
    expect([errors.length, got, (await store.outboxStats()).pending]).toEqual([2, Array.from({ length: got.length }, (_, i) => i + 1), 0]);
    expect(got.length).toBeGreaterThan(20);
    // Kicks run at once again.
    await writeChanges(store, 1, 'k6');
    relay.kick();
    await relay.idle();
    expect((await store.outboxStats()).pending).toBe(0);
    scheduler.stop();
  });

  it('a failed publication whose retry another process ran (a shared store): kicks and polls here go on once its retry time passed (a review: they waited for a run here to succeed, for good)', async () => {
    const manual = new ManualClock();
    const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 1000 });
    const shared = new MemorySchedulerStore();
    const schedulerA = new Scheduler({ clock: manual, store: shared, onError: () => {} });
    const schedulerB = new Scheduler({ clock: manual, store: shared, onError: () => {} });
    let down = false;
    const got: string[] = [];
    const relayOf = (scheduler: Scheduler, pollMs?: number) => {
      const relay = new OutboxRelay({ store, scheduler, clock: manual, onError: () => {}, pollMs });
      relay.addPublisher(async (event) => {
        if (down) throw new Error('the delivery stream refuses writes');
        got.push(event.eventId);
      });
      return relay;
    };
    /** A change the relay fails to hand over (its retry job goes in the shared schedule); then, the stream back, B's scheduler runs that retry. */
    const failedThenRetriedByB = async (relay: OutboxRelay, salt: string, begin: () => void) => {
      down = true;
      await writeChanges(store, 1, salt);
      begin();
      await relay.idle();
      down = false;
      await manual.advance(100);
      await schedulerB.runDue();
    };
    const a = relayOf(schedulerA);
    const b = relayOf(schedulerB);
    // B's relay publishes everything, then B goes.
    await failedThenRetriedByB(a, 'shared-1', () => a.kick());
    await b.idle();
    expect((await store.outboxStats()).pending).toBe(0);
    await b.stop();
    // A writes again: its kick runs (its retry time has passed), nothing waits for a run of A's to succeed.
    await writeChanges(store, 1, 'shared-2');
    a.kick();
    await a.idle();
    expect((await store.outboxStats()).pending).toBe(0);
    // A polling relay in the same state, its retry taken by B's scheduler (whose relay has stopped): its poll publishes once the retry time passed.
    const c = relayOf(new Scheduler({ clock: manual, store: shared, onError: () => {} }), 250);
    await failedThenRetriedByB(c, 'shared-3', () => c.start());
    expect((await store.outboxStats()).pending).toBeGreaterThan(0);
    await manual.advance(250);
    await c.idle();
    expect((await store.outboxStats()).pending).toBe(0);
    await c.stop();
    await a.stop();
  });

  it('when the store is away for the outbox and for the retry job alike (Redis down), the relay retries on a timer of its own, says so once, and publishes once it is back', async () => {
    const manual = new ManualClock();
    const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 1000 });
    await writeChanges(store, 1, 'away');
    const away = new Error('Redis is away');
    let storeDown = true;
    let reads = 0;
    const outboxStore = new Proxy(store, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (property === 'pendingOutbox') {
          return (limit: number) => {
            reads++;
            return storeDown ? Promise.reject(away) : target.pendingOutbox(limit);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const jobs = new MemorySchedulerStore();
    const schedulerStore = new Proxy(jobs, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (property === 'schedule') return (...args: Parameters<typeof target.schedule>) => (storeDown ? Promise.reject(away) : target.schedule(...args));
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const scheduler = new Scheduler({ clock: manual, store: schedulerStore, onError: () => {} });
    const errors: unknown[] = [];
    const relay = new OutboxRelay({ store: outboxStore, scheduler, clock: manual, onError: (error) => errors.push(error) });
    const got: number[] = [];
    relay.addPublisher(async (event) => void got.push(event.sequence));
    await relay.run();
    // The read failed, and so did writing the retry job: reported once; nothing published.
    expect([got, errors, reads]).toEqual([[], [away], 1]);
    await manual.advance(100);
    await relay.idle();
    // Retried by its own timer (one more read), not reported again.
    expect([got, errors.length, reads]).toEqual([[], 1, 2]);
    storeDown = false;
    // The second retry is 200 ms after the second failure.
    await manual.advance(200);
    await relay.idle();
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect((await store.outboxStats()).pending).toBe(0);
    await relay.stop();
  });
});

describe('the outbox relay publishes a batch with one read of what its events share and their marks together', () => {
  /** A store that records its calls: each mark's start, and how many marks were out when each began. */
  function countingStore() {
    const memory = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 100_000 });
    const calls: string[] = [];
    let marksOut = 0;
    const outAtStart: number[] = [];
    const failMark = new Set<string>();
    const mark = async (eventIds: string[], now: number): Promise<number> => {
      calls.push('mark');
      outAtStart.push(marksOut++);
      // An answer a turn later, as a round trip's: marks issued together are all out at once.
      await new Promise((resolve) => setImmediate(resolve));
      marksOut--;
      if (eventIds.some((id) => failMark.has(id))) throw new Error('mark lost');
      return memory.markPublished(eventIds, now);
    };
    const store = withMark(memory, mark, (prop) => prop === 'pendingOutbox' && calls.push('read'));
    return { memory, store, calls, outAtStart, failMark };
  }

  it('the subscriptions (anything `once` reads) once per batch, every event in order, then every mark at once (before 2026-12-07 a read and a mark per event: on Redis about 330 events a second under 1,000 FluxPay flows a second)', async () => {
    const { memory, store, calls, outAtStart } = countingStore();
    await writeChanges(memory, 6, 'batch');
    const written = (await memory.pendingOutbox(1000)).map((event) => event.eventId);
    const got: string[] = [];
    let reads = 0;
    const relay = relayOn(store, async () => undefined);
    relay.addPublisher(async (event, batch) => {
      await batch.once('subscriptions', async () => ++reads);
      got.push(event.eventId);
    });
    await relay.run();
    expect(got).toEqual(written);
    expect(reads).toBe(1);
    // Read, every mark, read again (nothing left): the marks all out together.
    expect(calls).toEqual(['read', ...written.map(() => 'mark'), 'read']);
    expect(outAtStart).toEqual(written.map((_, i) => i));
    expect((await memory.outboxStats()).pending).toBe(0);
  });

  it('a publication that fails midway: those before it are marked, it and the later ones stay pending and go out on the retry, in order; a mark that fails leaves only its event pending', async () => {
    const { memory, store, failMark } = countingStore();
    await writeChanges(memory, 4, 'mid');
    const written = (await memory.pendingOutbox(1000)).map((event) => event.eventId);
    const got: string[] = [];
    let fail = true;
    const errors: unknown[] = [];
    const scheduler = new Scheduler({ clock, store: new MemorySchedulerStore(), onError: () => {} });
    const relay = new OutboxRelay({ store, scheduler, clock, onError: (error) => errors.push(error) });
    relay.addPublisher(async (event) => {
      if (fail && event.eventId === written[3]) throw new Error('receiver down');
      got.push(event.eventId);
    });
    await relay.run();
    expect(got).toEqual(written.slice(0, 3));
    expect((await memory.pendingOutbox(1000)).map((event) => event.eventId)).toEqual(written.slice(3));
    expect(errors.map(String)).toEqual(['Error: receiver down']);
    fail = false;
    failMark.add(written[5] as string);
    await relay.run();
    expect(got).toEqual(written);
    // Its mark lost: the one event is pending (published again on the next run), the rest are marked.
    expect((await memory.pendingOutbox(1000)).map((event) => event.eventId)).toEqual([written[5]]);
    expect(errors.map(String)).toEqual(['Error: receiver down', 'Error: mark lost']);
    failMark.clear();
    await relay.run();
    expect(got).toEqual([...written, written[5]]);
    expect((await memory.outboxStats()).pending).toBe(0);
  });
});

describe('the outbox relay and a change written as a run ends', () => {
  it('a kick that comes while a run is ending is never lost: the change it reports is published without another write', async () => {
    const lost: number[] = [];
    // The change is written (and kicks) a chosen number of microtask turns after the run's last read found nothing.
    for (let turns = 0; turns <= 12; turns++) {
      const memory = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 100_000 });
      const now = clock.now();
      const orderId = ids('ord');
      await memory.createOrder({ orderId, userId: 'user_1', serviceId: 's', orderName: 'o', amount: 100, currency: 'KRW', metadata: null, status: 'PENDING', paymentKey: null, sagaId: null, chargedCredits: null, cancelReason: null, createdAt: now, updatedAt: now, paidAt: null, completedAt: null, cancelledAt: null });
      const payment: Payment = { paymentKey: ids('pk'), orderId, userId: 'user_1', amount: 100, currency: 'KRW', method: 'EASY_PAY', card: null, easyPay: { provider: 'X' }, status: 'READY', failureCode: null, decidedBy: null, planned: { status: 'APPROVED', failureCode: null }, createdAt: now, updatedAt: now, approvedAt: null, confirmedAt: null, failedAt: null, cancelledAt: null };
      await memory.createPayment(payment);
      const late: { relay?: OutboxRelay } = {};
      let armed = true;
      const store = new Proxy(memory, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (property !== 'pendingOutbox') return typeof value === 'function' ? value.bind(target) : value;
          return async (limit: number) => {
            const pending = await target.pendingOutbox(limit);
            if (armed && pending.length === 0) {
              armed = false;
              let step: Promise<void> = Promise.resolve();
              for (let i = 0; i < turns; i++) step = step.then(() => undefined);
              void step.then(() => {
                // The memory store writes the change and its event within the call.
                void target.confirmPayment({ paymentKey: payment.paymentKey, orderId, amount: 100, decision: { status: 'APPROVED', failureCode: null, decidedBy: 'approve' } }, stampOf(ids, now));
                late.relay?.kick();
              });
            }
            return pending;
          };
        },
      });
      const relay = relayOn(store, async () => {});
      late.relay = relay;
      await relay.run();
      // Let the late change and its kick happen, and any run they started end.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      await relay.idle();
      if ((await memory.outboxStats()).pending > 0) lost.push(turns);
      await relay.stop();
    }
    expect(lost).toEqual([]);
  });
});

describe('the outbox relay on an outbox shared by several processes (issue 14 "kill -9")', () => {
  /** A relay as a process of its own runs it: a scheduler that is never started, `pollMs` as given, and what it counted as published. */
  function processRelay(store: FluxPayStore, pollMs: number | undefined, taken: string[]) {
    const scheduler = new Scheduler({ clock, store: new MemorySchedulerStore(), onError: () => {} });
    const counted: string[] = [];
    const relay = new OutboxRelay({ store, scheduler, clock, onError: () => {}, onPublished: (event) => counted.push(event.eventId), pollMs });
    relay.addPublisher(async (event) => {
      taken.push(event.eventId);
      // A publication that takes a moment (a Redis round trip): the other process's relay reads the same event meanwhile.
      await new Promise((resolve) => setImmediate(resolve));
    });
    return { relay, counted };
  }

  it('with pollMs, events another process wrote and never kicked for (it was killed) are published within one poll; without, they wait for a kick', async () => {
    for (const pollMs of [250, undefined]) {
      const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 100_000 });
      const taken: string[] = [];
      const { relay, counted } = processRelay(store, pollMs, taken);
      relay.start();
      await relay.idle();
      await writeChanges(store, 3, `poll-${pollMs ?? 0}`);
      const written = (await store.pendingOutbox(100)).map((event) => event.eventId);
      expect(written.length).toBeGreaterThan(5);
      await clock.advance(249);
      await relay.idle();
      expect(taken).toEqual([]);
      await clock.advance(1);
      await relay.idle();
      expect([taken, counted, (await store.outboxStats()).pending]).toEqual(pollMs === undefined ? [[], [], written.length] : [written, written, 0]);
      await relay.stop();
    }
  });

  it('two processes’ relays on one outbox: each event is counted published once, by the relay whose mark made it so', async () => {
    const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 100_000 });
    await writeChanges(store, 6, 'two');
    const written = (await store.pendingOutbox(100)).map((event) => event.eventId);
    const taken: string[] = [];
    const a = processRelay(store, 250, taken);
    const b = processRelay(store, 250, taken);
    await Promise.all([a.relay.run(), b.relay.run()]);
    expect((await store.outboxStats()).pending).toBe(0);
    // Both took some events (each delivery is sent once per URL by the delivery log), but each is counted once.
    expect(taken.length).toBeGreaterThan(written.length);
    expect([...a.counted, ...b.counted].sort()).toEqual([...written].sort());
    await Promise.all([a.relay.stop(), b.relay.stop()]);
  });

  it('the poll does not hurry a failed publication’s retry (its delay grows): the failures reported are those without the poll; once the outbox is readable and empty again, the poll goes on', async () => {
    const reported: number[] = [];
    for (const pollMs of [undefined, 250]) {
      const manual = new ManualClock();
      const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 1000 });
      await writeChanges(store, 1, `fail-${pollMs ?? 0}`);
      const scheduler = new Scheduler({ clock: manual, store: new MemorySchedulerStore(), onError: () => {} });
      await scheduler.start();
      let failing = true;
      const errors: unknown[] = [];
      const relay = new OutboxRelay({ store, scheduler, clock: manual, onError: (error) => errors.push(error), pollMs });
      const got: string[] = [];
      relay.addPublisher(async (event) => {
        if (failing) throw new Error('the delivery stream refuses writes');
        got.push(event.eventId);
      });
      relay.start();
      await manual.advance(30_000);
      await relay.idle();
      reported.push(errors.length);
      failing = false;
      await manual.advance(30_000);
      await relay.idle();
      expect((await store.outboxStats()).pending).toBe(0);
      // Written afterwards with no kick (another process): the poll, going on, publishes it.
      const before = got.length;
      await writeChanges(store, 1, `after-${pollMs ?? 0}`);
      await manual.advance(250);
      await relay.idle();
      expect(got.length > before).toBe(pollMs !== undefined);
      await relay.stop();
      scheduler.stop();
    }
    expect(reported[1]).toBe(reported[0]);
    expect(reported[0]).toBeLessThan(12);
  });

  it('after reads of the outbox failed (the store away) and it came back empty, the poll goes on: what another process writes then is published within a poll', async () => {
    const manual = new ManualClock();
    const store = new MemoryFluxPayStore({ ttlMs: 86_400_000, maxRecords: 1000 });
    let down = true;
    const outboxStore = new Proxy(store, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (property === 'pendingOutbox') return (limit: number) => (down ? Promise.reject(new Error('Redis is away')) : target.pendingOutbox(limit));
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const scheduler = new Scheduler({ clock: manual, store: new MemorySchedulerStore(), onError: () => {} });
    await scheduler.start();
    const relay = new OutboxRelay({ store: outboxStore, scheduler, clock: manual, onError: () => {}, pollMs: 250 });
    const got: string[] = [];
    relay.addPublisher(async (event) => void got.push(event.eventId));
    relay.start();
    await manual.advance(1000);
    down = false;
    await manual.advance(60_000);
    await relay.idle();
    expect(got).toEqual([]);
    await writeChanges(store, 1, 'back');
    await manual.advance(250);
    await relay.idle();
    expect(got.length).toBeGreaterThan(0);
    expect((await store.outboxStats()).pending).toBe(0);
    await relay.stop();
    scheduler.stop();
  });
});
