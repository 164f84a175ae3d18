import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemorySchedulerStore } from '../../src/adapters/memory/scheduler.ts';
import { MemoryWaitingRoomStore } from '../../src/adapters/memory/waiting-rooms.ts';
import { createIdFactory } from '../../src/core/ids.ts';
import { LEASE_MS, Scheduler } from '../../src/core/scheduler.ts';
import type { RoomSettings } from '../../src/core/waiting-room/room.ts';
import { WaitingRoomService, type WaitingRoomAdmittedEvent, type WaitingRoomChangedEvent } from '../../src/core/waiting-room/service.ts';
import { ManualClock, settle } from '../helpers/manual-clock.ts';
import { errorOf } from './support.ts';

const T0 = Date.UTC(2026, 10, 30, 9, 0, 0);
const SALE: RoomSettings = { admitPerSecond: 500, admissionTtlSeconds: 120, protectedServiceIds: ['svc_concert'], maxActive: null, active: true };

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

async function setup(settings = SALE, maxTickets = 100_000) {
  const clock = new ManualClock(T0);
  const errors: unknown[] = [];
  const scheduler = new Scheduler({ clock, store: new MemorySchedulerStore(), onError: (error) => errors.push(error) });
  await scheduler.start();
  stop = async () => {
    scheduler.stop();
  };
  const events: WaitingRoomAdmittedEvent[] = [];
  const changes: WaitingRoomChangedEvent[] = [];
  const store = new MemoryWaitingRoomStore({ maxRooms: 10, maxTickets, ttlMs: 3_600_000 });
  const service = new WaitingRoomService({
    store,
    scheduler,
    clock,
    ids: createIdFactory(clock),
    publish: (event) => (event.type === 'waiting_room.admitted' ? events.push(event) : changes.push(event)),
    services: new Set(['svc_concert', 'svc_other']),
  });
  await service.put('sale', settings);
  return { clock, scheduler, service, store, events, changes, errors };
}

/** A room set up with `settings` (as `setup`), user_a entered, then user_b; user_a's admission token. */
async function withPair(settings: RoomSettings) {
  const room = await setup(settings);
  const a = await room.service.enter('sale', 'user_a');
  const b = await room.service.enter('sale', 'user_b');
  const token = (await room.service.ticket('sale', a?.ticket.ticket as string))?.admissionToken as string;
  return { ...room, a, b, token };
}

/** Orders as the guard's `create` makes them, and `exists` of them. */
function orderBook() {
  const orders = new Set<string>();
  const exists = (orderId: string) => Promise.resolve(orders.has(orderId));
  const create = (orderId: string) => () => Promise.resolve(orderId).then((id) => (orders.add(id), id));
  return { exists, create };
}

/** How many timers the clock fired since this call (the scheduler arms one per due job). */
function countTicks(clock: ManualClock): () => number {
  const schedule = clock.schedule.bind(clock);
  let fired = 0;
  clock.schedule = (delayMs, fn) =>
    schedule(delayMs, () => {
      fired += 1;
      fn();
    });
  return () => fired;
}

describe('WaitingRoomService', () => {
  it('10,000 users entering at once are admitted in exactly their entry order at the set rate, none twice, none skipped, with nobody asking', async () => {
    const { clock, service, events, changes, errors } = await setup();
    const entered = await Promise.all(Array.from({ length: 10_000 }, (_, i) => service.enter('sale', `user_${i}`)));
    // The room's creation, then one waiting_room.entered per new ticket; entering again adds none.
    await service.enter('sale', 'user_0');
    expect(changes.map((e) => `${e.type} ${e.roomId}`)).toEqual(['waiting_room.changed sale', ...Array.from({ length: 10_000 }, () => 'waiting_room.entered sale')]);
    expect(new Set(changes.map((e) => e.id)).size).toBe(10_001);
    const bySequence = new Map(entered.map((e) => [e?.ticket.ticket, e?.ticket.position]));
    expect(entered.every((e) => e?.kind === 'entered')).toBe(true);
    // Positions at entry: the first was admitted on entering (0); the others 1 … 9,999 in entry order.
    expect(entered.map((e) => e?.ticket.position)).toEqual([0, ...Array.from({ length: 9_999 }, (_, i) => i + 1)]);
    // The scheduler's tick publishes admissions as they fall due; nobody polls.
    await clock.advance(25_000);
    expect(errors).toEqual([]);
    expect(events).toHaveLength(10_000);
    expect(new Set(events.map((e) => e.ticket)).size).toBe(10_000);
    expect(events.map((e) => e.ticket)).toEqual(entered.map((e) => e?.ticket.ticket));
    expect(bySequence.size).toBe(10_000);
    const times = events.map((e) => e.admittedAt);
    // 500 a second: one every 2 ms exactly, from the first entry.
    expect(times).toEqual(Array.from({ length: 10_000 }, (_, i) => T0 + i * 2));
    const rate = (times.length - 1) / (((times.at(-1) as number) - (times[0] as number)) / 1000);
    expect(Math.abs(rate - 500) / 500).toBeLessThan(0.05);
    // Each event went out when its admission fell due (within one tick of the scheduler), not in a batch at the end.
    const lateness = events.map((e) => e.occurredAt - e.admittedAt);
    expect(Math.max(...lateness)).toBeLessThan(100);
    expect(await service.get('sale')).toMatchObject({ size: 0, entered: 10_000, admitted: 10_000, activeTokens: 10_000, currentRate: 500, nextAdmissionAt: null });
  });

  it('a ticket reads WAITING with its position and estimate, then ADMITTED with its token, then EXPIRED', async () => {
    const { clock, service } = await setup({ ...SALE, admitPerSecond: 2, admissionTtlSeconds: 30 });
    await service.enter('sale', 'user_first');
    const entered = await service.enter('sale', 'user_a');
    await service.enter('sale', 'user_b');
    const ticket = entered?.ticket.ticket as string;
    expect(await service.ticket('sale', ticket)).toEqual({
      ticket,
      roomId: 'sale',
      userId: 'user_a',
      status: 'WAITING',
      position: 1,
      estimatedWaitSeconds: 1,
      enteredAt: T0,
      admittedAt: null,
      admissionToken: null,
      expiresAt: null,
      usedAt: null,
      usedFor: null,
    });
    expect((await service.enter('sale', 'user_b'))?.ticket).toMatchObject({ status: 'WAITING', position: 2, estimatedWaitSeconds: 1 });
    await clock.advance(500);
    const admitted = await service.ticket('sale', ticket);
    expect(admitted).toMatchObject({ status: 'ADMITTED', position: 0, estimatedWaitSeconds: 0, admittedAt: T0 + 500, expiresAt: T0 + 30_500 });
    expect(admitted?.admissionToken).toMatch(/^adm_[0-9A-HJKMNP-TV-Z]{26}$/);
    await clock.advance(30_000);
    expect(await service.ticket('sale', ticket)).toMatchObject({ status: 'EXPIRED', admissionToken: admitted?.admissionToken });
    expect(await service.ticket('sale', 'wrt_unknown')).toBeUndefined();
    expect(await service.enter('nowhere', 'user_a')).toBeUndefined();
  });

  it('guards orders: a protected service needs an admitted token, once', async () => {
    const { service } = await setup();
    const admitted = await service.enter('sale', 'user_a');
    const token = (await service.ticket('sale', admitted?.ticket.ticket as string))?.admissionToken as string;
    const create = (orderId: string) => () => Promise.resolve(orderId);
    expect(await service.guardOrder('svc_other', undefined, 'ord_1', create('ord_1'))).toEqual({ kind: 'created', value: 'ord_1' });
    expect(await service.guardOrder('svc_concert', undefined, 'ord_1', create('ord_1'))).toMatchObject({ kind: 'refused', refusal: { kind: 'missing', roomIds: ['sale'] } });
    expect(await service.guardOrder('svc_concert', token, 'ord_1', create('ord_1'))).toEqual({ kind: 'created', value: 'ord_1' });
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'))).toMatchObject({ kind: 'refused', refusal: { kind: 'already_used', pending: false, ticket: { usedFor: 'ord_1' } } });
  });

  it('a token whose order is still being written is refused as pending (it may come back); written by a process that stopped before saying so, it is spent when sent again', async () => {
    const { clock, service } = await setup({ ...SALE, admissionTtlSeconds: 300, maxActive: 1 });
    const ticket = (await service.enter('sale', 'user_a'))?.ticket.ticket as string;
    const token = (await service.ticket('sale', ticket))?.admissionToken as string;
    const { exists, create } = orderBook();
    let finish = (): void => undefined;
    const first = service.guardOrder('svc_concert', token, 'ord_1', () => new Promise<string>((resolve) => (finish = () => resolve('ord_1'))), exists);
    await vi.waitFor(() => expect(service.ticket('sale', ticket)).resolves.toMatchObject({ usedFor: 'ord_1' }));
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'already_used', pending: true, ticket: { usedFor: 'ord_1' } } });
    finish();
    expect(await first).toEqual({ kind: 'created', value: 'ord_1' });
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'already_used', pending: false } });
    // ord_3 written, its spend lost (its process stopped): the token holds its slot until asked again.
    const other = (await service.enter('sale', 'user_b'))?.ticket.ticket as string;
    await clock.advance(10); // admitted at the rate's next slot (500 a second)
    const otherToken = (await service.ticket('sale', other))?.admissionToken as string;
    await create('ord_3')();
    void service.guardOrder('svc_concert', otherToken, 'ord_3', () => new Promise<never>(() => undefined), exists);
    await vi.waitFor(() => expect(service.ticket('sale', other)).resolves.toMatchObject({ usedFor: 'ord_3' }));
    expect(await service.get('sale')).toMatchObject({ activeTokens: 1 });
    expect(await service.guardOrder('svc_concert', otherToken, 'ord_4', create('ord_4'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'already_used', pending: false, ticket: { usedFor: 'ord_3' } } });
    expect(await service.get('sale')).toMatchObject({ activeTokens: 0 });
  });

  it('a token used for an order never written whose time is over before a lease from its use (its process stopped): sent again it is refused as expired, not as used for that order (a review)', async () => {
    const { clock, service } = await setup({ ...SALE, admissionTtlSeconds: 10 });
    const ticket = (await service.enter('sale', 'user_a'))?.ticket.ticket as string;
    const token = (await service.ticket('sale', ticket))?.admissionToken as string;
    const { exists, create } = orderBook();
    void service.guardOrder('svc_concert', token, 'ord_1', () => new Promise<never>(() => undefined), exists);
    await vi.waitFor(() => expect(service.ticket('sale', ticket)).resolves.toMatchObject({ usedFor: 'ord_1' }));
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'already_used', pending: true } });
    await clock.advance(10_000);
    expect(10_000).toBeLessThan(LEASE_MS);
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'expired', ticket: { expiresAt: T0 + 10_000, usedFor: 'ord_1' } } });
    // A lease on, given back: expired all the same.
    await clock.advance(LEASE_MS);
    expect(await service.guardOrder('svc_concert', token, 'ord_3', create('ord_3'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'expired' } });
    expect(await service.get('sale')).toMatchObject({ used: 0, expired: 1, activeTokens: 0 });
  });

  it('a token is spent only when the order is created: an order that fails gives it back, until its own expiry', async () => {
    const { clock, service } = await setup({ ...SALE, admissionTtlSeconds: 10 });
    const admitted = await service.enter('sale', 'user_a');
    const ticket = admitted?.ticket.ticket as string;
    const token = (await service.ticket('sale', ticket))?.admissionToken as string;
    const refused = new Error('the order was not created');
    await expect(service.guardOrder('svc_concert', token, 'ord_1', () => Promise.reject(refused))).rejects.toBe(refused);
    expect(await service.ticket('sale', ticket)).toMatchObject({ status: 'ADMITTED', usedAt: null, usedFor: null });
    expect(await service.get('sale')).toMatchObject({ used: 0, activeTokens: 1 });
    expect(await service.guardOrder('svc_concert', token, 'ord_2', () => Promise.resolve('ord_2'))).toEqual({ kind: 'created', value: 'ord_2' });
    expect(await service.ticket('sale', ticket)).toMatchObject({ usedFor: 'ord_2' });
    // Given back after its expiry had passed: EXPIRED at once, not usable.
    const late = await service.enter('sale', 'user_b');
    await clock.advance(10); // admitted 2 ms after user_a (500 a second)
    const lateToken = (await service.ticket('sale', late?.ticket.ticket as string))?.admissionToken as string;
    await expect(
      service.guardOrder('svc_concert', lateToken, 'ord_3', async () => {
        await clock.advance(10_000);
        throw refused;
      }),
    ).rejects.toBe(refused);
    expect(await service.ticket('sale', late?.ticket.ticket as string)).toMatchObject({ status: 'EXPIRED', usedAt: null });
    expect(await service.get('sale')).toMatchObject({ used: 1, expired: 1, activeTokens: 0 });
    expect(await service.guardOrder('svc_concert', lateToken, 'ord_4', () => Promise.resolve('ord_4'))).toMatchObject({ kind: 'refused', refusal: { kind: 'expired' } });
  });

  it('a token used for an order not created whose giving back failed too (the store away): sent again a lease later, it is given back and used', async () => {
    const { clock, service, store } = await setup({ ...SALE, admissionTtlSeconds: 300 });
    const admitted = await service.enter('sale', 'user_a');
    const ticket = admitted?.ticket.ticket as string;
    const token = (await service.ticket('sale', ticket))?.admissionToken as string;
    vi.spyOn(store, 'releaseToken').mockRejectedValueOnce(new Error('the store is away'));
    await expect(service.guardOrder('svc_concert', token, 'ord_1', () => Promise.reject(new Error('the store is away')))).rejects.toThrow('the store is away');
    expect(await service.ticket('sale', ticket)).toMatchObject({ status: 'ADMITTED', usedFor: 'ord_1', usedAt: T0 });
    const { exists, create } = orderBook();
    // Within a lease of its use, the order could still be under way: refused, pending.
    await clock.advance(LEASE_MS - 1);
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'already_used', pending: true, ticket: { usedFor: 'ord_1' } } });
    await clock.advance(1);
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'), exists)).toEqual({ kind: 'created', value: 'ord_2' });
    expect(await service.ticket('sale', ticket)).toMatchObject({ status: 'ADMITTED', usedFor: 'ord_2', usedAt: T0 + LEASE_MS });
    // Used for an order that exists: spent, however long ago.
    await clock.advance(LEASE_MS);
    expect(await service.guardOrder('svc_concert', token, 'ord_3', create('ord_3'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'already_used', pending: false, ticket: { usedFor: 'ord_2' } } });
    expect(await service.get('sale')).toMatchObject({ used: 1 });
  });

  it('a room held at maxActive ticks when a slot frees (the first expiry, or a used token), not in a loop meanwhile', async () => {
    const { clock, service, events } = await setup({ ...SALE, admitPerSecond: 10, admissionTtlSeconds: 60, maxActive: 1 });
    const first = await service.enter('sale', 'user_a');
    await service.enter('sale', 'user_b');
    await service.enter('sale', 'user_c');
    const ticks = countTicks(clock);
    await clock.advance(30_000);
    // Nothing is due until user_a's token expires at +60 s: no tick ran in these 30 s.
    expect(ticks()).toBe(0);
    expect(events.map((e) => e.ticket)).toEqual([first?.ticket.ticket]);
    // user_a's token is used at +30 s: user_b is admitted then, by a tick, with nobody asking.
    const token = (await service.ticket('sale', first?.ticket.ticket as string))?.admissionToken as string;
    expect(await service.guardOrder('svc_concert', token, 'ord_1', () => Promise.resolve('ord_1'))).toMatchObject({ kind: 'created' });
    await clock.advance(1);
    expect(events.map((e) => e.admittedAt - T0)).toEqual([0, 30_000]);
    // user_c waits for user_b's token to expire at +90 s.
    await clock.advance(59_998);
    expect(events).toHaveLength(2);
    await clock.advance(1);
    expect(events.map((e) => e.admittedAt - T0)).toEqual([0, 30_000, 90_000]);
    expect(ticks()).toBeLessThanOrEqual(3);
  });

  it('a room held at maxActive admits nobody into a used token\'s slot while its order is written: the order failing, the token is given back and the room is at its cap, not over it (before 2026-12-06 one over, seen in a user test)', async () => {
    const { clock, service, events, a, b, token } = await withPair({ ...SALE, admitPerSecond: 10, admissionTtlSeconds: 60, maxActive: 1 });
    const refused = new Error('the order was not created');
    await expect(
      service.guardOrder('svc_concert', token, 'ord_1', async () => {
        await clock.advance(5_000); // the order takes a while, and user_b is not admitted meanwhile
        expect(await service.get('sale')).toMatchObject({ activeTokens: 1, used: 1, admitted: 1 });
        throw refused;
      }),
    ).rejects.toBe(refused);
    expect(events.map((e) => e.admittedAt - T0)).toEqual([0]);
    expect(await service.get('sale')).toMatchObject({ activeTokens: 1, maxActive: 1, used: 0, admitted: 1 });
    // The token used again for an order that is written: its slot is free then, and user_b admitted.
    await clock.advance(25_000);
    expect(await service.guardOrder('svc_concert', token, 'ord_2', () => Promise.resolve('ord_2'))).toEqual({ kind: 'created', value: 'ord_2' });
    await clock.advance(1);
    expect(events.map((e) => [e.ticket, e.admittedAt - T0])).toEqual([
      [a?.ticket.ticket, 0],
      [b?.ticket.ticket, 30_000],
    ]);
    expect(await service.get('sale')).toMatchObject({ activeTokens: 1, used: 1, admitted: 2 });
  });

  it('a token whose order was written but not said so (the spend failed) is spent when sent again a lease later: its slot freed, the next user admitted', async () => {
    const { clock, service, store, events, a, b, token } = await withPair({ ...SALE, admitPerSecond: 10, admissionTtlSeconds: 300, maxActive: 1 });
    vi.spyOn(store, 'spendToken').mockRejectedValueOnce(new Error('the store is away'));
    const { exists, create } = orderBook();
    expect(await service.guardOrder('svc_concert', token, 'ord_1', create('ord_1'), exists)).toEqual({ kind: 'created', value: 'ord_1' });
    expect(await service.get('sale')).toMatchObject({ activeTokens: 1, used: 1 });
    await clock.advance(LEASE_MS);
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'), exists)).toMatchObject({ kind: 'refused', refusal: { kind: 'already_used', ticket: { usedFor: 'ord_1' } } });
    expect(events.map((e) => [e.ticket, e.admittedAt - T0])).toEqual([
      [a?.ticket.ticket, 0],
      [b?.ticket.ticket, LEASE_MS],
    ]);
    expect(await service.get('sale')).toMatchObject({ activeTokens: 1, used: 1, admitted: 2 });
  });

  it('the room\'s tick keeps the soonest look asked for: a read that saw the room at its cap and schedules after a spend does not move the tick back to the first expiry (a user test on Redis: the admission published a TTL late)', async () => {
    const { clock, scheduler, service, events, a, b, token } = await withPair({ ...SALE, admitPerSecond: 10, admissionTtlSeconds: 60, maxActive: 1 });
    await clock.advance(10);
    // A read sees the room at its cap (next look: a's expiry) and is slow to write its tick.
    const schedule = scheduler.schedule.bind(scheduler);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    vi.spyOn(scheduler, 'schedule').mockImplementationOnce(async (...args) => {
      await gate;
      return schedule(...args);
    });
    const reading = service.get('sale');
    await settle();
    // a's order is written meanwhile: its slot is free, b is due at the rate's next slot (+100 ms).
    expect(await service.guardOrder('svc_concert', token, 'ord_1', () => Promise.resolve('ord_1'))).toEqual({ kind: 'created', value: 'ord_1' });
    release();
    await reading;
    expect(await scheduler.nextDueAt()).toBe(T0 + 100);
    await clock.advance(90);
    expect(events.map((e) => [e.ticket, e.admittedAt - T0])).toEqual([
      [a?.ticket.ticket, 0],
      [b?.ticket.ticket, 100],
    ]);
  });

  it('an order whose create failed, the store unable to say whether it was written: its token is left used, holding its slot, and given back when sent again a lease later (a review: it was spent, and the room went over its cap)', async () => {
    const { clock, service, events, token } = await withPair({ ...SALE, admitPerSecond: 10, admissionTtlSeconds: 300, maxActive: 1 });
    const orders = new Set<string>();
    let blip = true;
    const exists = (orderId: string) => (blip ? ((blip = false), Promise.reject(new Error('the store is away'))) : Promise.resolve(orders.has(orderId)));
    await expect(service.guardOrder('svc_concert', token, 'ord_1', () => Promise.reject(new Error('not written')), exists)).rejects.toThrow('not written');
    await clock.advance(200);
    expect(await service.get('sale')).toMatchObject({ activeTokens: 1, used: 1, admitted: 1 });
    await clock.advance(LEASE_MS - 200);
    const create = (orderId: string) => async () => {
      expect(await service.get('sale')).toMatchObject({ activeTokens: 1, maxActive: 1 });
      orders.add(orderId);
      return orderId;
    };
    expect(await service.guardOrder('svc_concert', token, 'ord_2', create('ord_2'), exists)).toEqual({ kind: 'created', value: 'ord_2' });
    expect(events).toHaveLength(2); // user_b, once ord_2 is written
  });

  it('a room held at maxActive: a waiting ticket estimates its wait by the live tokens\' expiry as well as by the rate, and a used token shortens it', async () => {
    const { clock, service } = await setup({ ...SALE, admitPerSecond: 1, admissionTtlSeconds: 300, maxActive: 2 });
    const a = await service.enter('sale', 'user_a');
    await clock.advance(1_000);
    await service.enter('sale', 'user_b');
    const c = await service.enter('sale', 'user_c');
    const d = await service.enter('sale', 'user_d');
    const e = await service.enter('sale', 'user_e');
    const wait = async (ticket: typeof c): Promise<unknown> => (await service.ticket('sale', ticket?.ticket.ticket as string))?.estimatedWaitSeconds;
    // user_a admitted at +0 and user_b at +1 s hold both slots until +301 s at the latest: user_c and
    // user_d wait for them (300 s from now), user_e for a slot's second turn (600 s). Before
    // 2026-12-04 they read 0, 1 and 2 s: the rate's estimate alone.
    expect([await wait(c), await wait(d), await wait(e)]).toEqual([300, 300, 600]);
    await clock.advance(100_000);
    expect([await wait(c), await wait(d), await wait(e)]).toEqual([200, 200, 500]);
    // user_a's token used: a slot is free, user_c is admitted at once (by the rate) and the others move up.
    const token = (await service.ticket('sale', a?.ticket.ticket as string))?.admissionToken as string;
    expect(await service.guardOrder('svc_concert', token, 'ord_1', () => Promise.resolve('ord_1'))).toMatchObject({ kind: 'created' });
    await clock.advance(1);
    expect((await service.ticket('sale', c?.ticket.ticket as string))?.status).toBe('ADMITTED');
    expect([await wait(d), await wait(e)]).toEqual([300, 300]);
  });

  it('a room changed while running: the new rate from the change on, the queue in order', async () => {
    const { clock, service, events } = await setup({ ...SALE, admitPerSecond: 10 });
    for (let i = 0; i < 30; i++) await service.enter('sale', `user_${i}`);
    await clock.advance(1_000);
    expect(events).toHaveLength(11);
    expect(await service.put('sale', { ...SALE, admitPerSecond: 100 })).toMatchObject({ kind: 'updated', room: { admitPerSecond: 100, currentRate: 100, size: 19 } });
    await clock.advance(200);
    expect(events.map((e) => e.admittedAt - T0)).toEqual([...Array.from({ length: 11 }, (_, i) => i * 100), ...Array.from({ length: 19 }, (_, i) => 1_010 + i * 10)]);
    expect((await service.list()).map((r) => [r.roomId, r.size, r.admitted])).toEqual([['sale', 0, 30]]);
  });

  it('an entry refused with STORE_FULL publishes the admissions it made on the way, before the tick that would have made them', async () => {
    const { clock, scheduler, service, events, errors } = await setup({ ...SALE, admitPerSecond: 10 }, 3);
    const entered = await Promise.all(['user_a', 'user_b', 'user_c'].map((user) => service.enter('sale', user)));
    expect(events.map((e) => e.ticket)).toEqual([entered[0]?.ticket.ticket]);
    // The room's tick (due at +100) does not run: the entry below is first to find b and c due.
    scheduler.stop();
    await clock.advance(250);
    expect(await errorOf(() => service.enter('sale', 'user_x'))).toMatchObject({ code: 'STORE_FULL', store: 'waiting_room_tickets' });
    expect(events.map((e) => [e.ticket, e.admittedAt - T0, e.occurredAt - T0])).toEqual([
      [entered[0]?.ticket.ticket, 0, 0],
      [entered[1]?.ticket.ticket, 100, 250],
      [entered[2]?.ticket.ticket, 200, 250],
    ]);
    expect(await service.get('sale')).toMatchObject({ size: 0, entered: 3, admitted: 3, activeTokens: 3 });
    expect(errors).toEqual([]);
  });
});

/** A service over a store that holds no room (as after a Redis flush), each store call a couple of milliseconds late, as over Redis. */
async function lostRoom() {
  const clock = new ManualClock(T0);
  const scheduler = new Scheduler({ clock, store: new MemorySchedulerStore(), onError: () => undefined });
  await scheduler.start();
  stop = async () => scheduler.stop();
  const store = new MemoryWaitingRoomStore({ maxRooms: 10, maxTickets: 1000, ttlMs: 3_600_000 });
  const rawPut = store.putRoom.bind(store);
  /** Run once just before the next write of a room (`beforeWrite.next`): another replica's PUT landing then. */
  const beforeWrite: { next: (() => Promise<unknown>) | undefined } = { next: undefined };
  for (const method of ['useToken', 'createRoom', 'getRoom', 'putRoom'] as const) {
    const call = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
    (store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      const landing = method === 'createRoom' || method === 'putRoom' ? beforeWrite.next : undefined;
      beforeWrite.next = landing === undefined ? beforeWrite.next : undefined;
      await landing?.();
      return call(...args);
    };
  }
  const restored: Array<[string, string]> = [];
  const service = new WaitingRoomService({
    store,
    scheduler,
    clock,
    ids: createIdFactory(clock),
    publish: () => undefined,
    services: new Set(['svc_concert', 'svc_other']),
    declared: new Map([['sale', SALE]]),
    onRestored: (roomId, outcome) => restored.push([roomId, outcome]),
  });
  return { service, restored, rawPut, beforeWrite };
}

describe('a room the billing policy declares, lost by the store', () => {
  it('a burst of orders that finds it missing: one makes it again, every one waits for that and is guarded (none goes through without a token)', async () => {
    const { service, restored } = await lostRoom();
    let created = 0;
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => service.guardOrder('svc_concert', undefined, `ord_${i}`, async () => (created += 1))),
    );
    // Before, only the first waited for the room to be made again: 49 were created unguarded.
    expect([created, outcomes.map((o) => (o.kind === 'refused' ? o.refusal.kind : o.kind))]).toEqual([0, Array.from({ length: 50 }, () => 'missing')]);
    expect(restored).toEqual([['sale', 'created']]);
    // An order of a service it does not protect is not held up by it.
    expect(await service.guardOrder('svc_other', undefined, 'ord_other', async () => 'made')).toEqual({ kind: 'created', value: 'made' });
  });

  it('made by a PUT (another replica, a user) just before it is made again: left as that PUT made it, nothing warned', async () => {
    const { service, restored, rawPut, beforeWrite } = await lostRoom();
    beforeWrite.next = () => rawPut('sale', { ...SALE, admitPerSecond: 0, protectedServiceIds: ['svc_other'] }, T0);
    // The room no longer protects svc_concert: its order is made, and the room keeps the PUT's settings.
    expect(await service.guardOrder('svc_concert', undefined, 'ord_1', async () => 'made')).toEqual({ kind: 'created', value: 'made' });
    expect((await service.get('sale'))?.protectedServiceIds).toEqual(['svc_other']);
    expect(restored).toEqual([]);
  });
});

describe('a failed restore of a declared room', () => {
  it('fails its call, and the next call tries again at once (it is not shared on for a second)', async () => {
    const { service, beforeWrite } = await lostRoom();
    beforeWrite.next = () => Promise.reject(new Error('Connection is closed.'));
    await expect(service.guardOrder('svc_concert', undefined, 'ord_1', async () => 'made')).rejects.toThrow('Connection is closed.');
    // Before, this one got the first try's error again without asking the store.
    const second = await service.guardOrder('svc_concert', undefined, 'ord_2', async () => 'made');
    expect(second.kind === 'refused' ? second.refusal.kind : second.kind).toBe('missing');
  });
});
