import { describe, expect, it } from 'vitest';
import type { WaitingRoomStore } from '../../../src/core/waiting-room/ports.ts';
import type { RoomSettings, Ticket } from '../../../src/core/waiting-room/room.ts';
import { concurrently, HOUR, MINUTE, T0, tally } from './fixtures.ts';

export interface WaitingRoomStoreOptions {
  maxRooms: number;
  maxTickets: number;
  /** Ended tickets older than this (from their end) may be swept. */
  ttlMs: number;
}

export type WaitingRoomStoreFactory = (options: WaitingRoomStoreOptions) => Promise<WaitingRoomStore> | WaitingRoomStore;

const ROOMY: WaitingRoomStoreOptions = { maxRooms: 100, maxTickets: 100_000, ttlMs: HOUR };

/** 10 admissions a second (one every 100 ms), tokens valid 60 s, protecting service `svc_concert`. */
const TEN_PER_S: RoomSettings = { admitPerSecond: 10, admissionTtlSeconds: 60, protectedServiceIds: ['svc_concert'], maxActive: null, active: true };

let sequence = 0;
const fresh = (prefix: string) => `${prefix}_${(++sequence).toString().padStart(8, '0')}`;
const newIds = () => ({ ticket: fresh('wrt'), admissionToken: fresh('adm') });
/** A putRoom outcome that must not be `full` (these stores have room for it). */
function put<T extends { kind: string }>(outcome: T): Exclude<T, { kind: 'full' }> {
  if (outcome.kind === 'full') throw new Error('putRoom: full');
  return outcome as Exclude<T, { kind: 'full' }>;
}

/** The WaitingRoomStore port's contract (src/core/waiting-room/ports.ts), for any adapter `make` builds fresh. */
export function waitingRoomStoreContract(name: string, make: WaitingRoomStoreFactory): void {
  async function roomWith(settings: RoomSettings, options = ROOMY): Promise<WaitingRoomStore> {
    const store = await make(options);
    const created = await store.putRoom('room_1', settings, T0);
    expect(created.kind).toBe('created');
    return store;
  }

  async function enterAll(store: WaitingRoomStore, users: number, at: number, roomId = 'room_1'): Promise<Ticket[]> {
    const tickets: Ticket[] = [];
    for (let i = 0; i < users; i++) {
      const outcome = await store.enter(roomId, `user_${i}`, newIds(), at);
      if (outcome.kind !== 'entered') throw new Error(`enter: ${outcome.kind}`);
      tickets.push(outcome.ticket);
    }
    return tickets;
  }

  describe(`WaitingRoomStore contract: ${name}`, () => {
    describe('rooms', () => {
      it('putRoom creates a room with its settings and zero counts; getRoom reads it; an unknown room is undefined', async () => {
        const store = await make(ROOMY);
        const created = put(await store.putRoom('room_1', TEN_PER_S, T0));
        expect(created).toEqual({
          kind: 'created',
          admitted: [],
          nextDueAt: null,
          room: {
            roomId: 'room_1',
            ...TEN_PER_S,
            createdAt: T0,
            updatedAt: T0,
            entered: 0,
            admitted: 0,
            expired: 0,
            used: 0,
            activeCount: 0,
            lastAdmittedAt: null,
            nextAdmissionAt: Number.NEGATIVE_INFINITY,
          },
        });
        expect(await store.getRoom('room_1', T0 + 5)).toEqual({ room: created.room, admitted: [], nextDueAt: null });
        expect(await store.getRoom('room_2', T0)).toBeUndefined();
        expect(await store.enter('room_2', 'user_1', newIds(), T0)).toEqual({ kind: 'no_room' });
        expect(await store.getTicket('room_2', 'wrt_x', T0)).toBeUndefined();
      });

      it('returns copies: changing what it returned changes nothing stored', async () => {
        const store = await roomWith(TEN_PER_S);
        const read = await store.getRoom('room_1', T0);
        read?.room.protectedServiceIds.push('svc_other');
        if (read !== undefined) read.room.entered = 99;
        expect((await store.getRoom('room_1', T0))?.room).toMatchObject({ entered: 0, protectedServiceIds: ['svc_concert'] });
      });

      it('putRoom refuses a room beyond maxRooms (`full`), still changes existing ones', async () => {
        const store = await make({ ...ROOMY, maxRooms: 2 });
        await store.putRoom('room_1', TEN_PER_S, T0);
        await store.putRoom('room_2', TEN_PER_S, T0);
        expect(await store.putRoom('room_3', TEN_PER_S, T0)).toEqual({ kind: 'full', maxRooms: 2 });
        expect(await store.getRoom('room_3', T0)).toBeUndefined();
        expect(await store.putRoom('room_2', { ...TEN_PER_S, admitPerSecond: 5 }, T0 + 1)).toMatchObject({ kind: 'updated', room: { admitPerSecond: 5 } });
        expect((await store.listRooms(T0 + 1)).rooms.map((r) => r.roomId)).toEqual(['room_1', 'room_2']);
      });

      it('createRoom creates only where no room is: an existing one is left as it is (`exists`), and `full` as putRoom', async () => {
        const store = await make({ ...ROOMY, maxRooms: 2 });
        expect(await store.createRoom('room_1', TEN_PER_S, T0)).toMatchObject({ kind: 'created', room: { roomId: 'room_1', admitPerSecond: 10 }, admitted: [] });
        await store.putRoom('room_1', { ...TEN_PER_S, admitPerSecond: 0, protectedServiceIds: [] }, T0 + 1);
        expect(await store.createRoom('room_1', TEN_PER_S, T0 + 2)).toEqual({ kind: 'exists' });
        expect((await store.getRoom('room_1', T0 + 2))?.room).toMatchObject({ admitPerSecond: 0, protectedServiceIds: [] });
        await store.putRoom('room_2', TEN_PER_S, T0);
        expect(await store.createRoom('room_3', TEN_PER_S, T0)).toEqual({ kind: 'full', maxRooms: 2 });
      });

      /*
       * A room of the billing policy at each start: before 2026-12-03 every start PUT it, so a
       * restart, a scale-up or the second replica undid what an operator's PUT had changed.
       */
      it('declareRoom creates, then keeps the room whatever a PUT changed while the declaration is the same; another declaration changes it as a PUT, its queue kept', async () => {
        const store = await make({ ...ROOMY, maxRooms: 2 });
        expect(await store.declareRoom('room_1', TEN_PER_S, 'decl-1', T0)).toMatchObject({ kind: 'created', room: { roomId: 'room_1', admitPerSecond: 10, active: true }, admitted: [] });
        await enterAll(store, 3, T0);
        await store.putRoom('room_1', { ...TEN_PER_S, admitPerSecond: 1, active: false }, T0 + 1);
        expect(await store.declareRoom('room_1', TEN_PER_S, 'decl-1', T0 + 2)).toEqual({ kind: 'kept' });
        expect((await store.getRoom('room_1', T0 + 2))?.room).toMatchObject({ admitPerSecond: 1, active: false, entered: 3, updatedAt: T0 + 1 });
        const changed = { ...TEN_PER_S, admitPerSecond: 20 };
        expect(await store.declareRoom('room_1', changed, 'decl-2', T0 + 3)).toMatchObject({ kind: 'updated', room: { admitPerSecond: 20, active: true, entered: 3, updatedAt: T0 + 3 } });
        expect(await store.declareRoom('room_1', changed, 'decl-2', T0 + 4)).toEqual({ kind: 'kept' });
        // A room only PUT has no declaration: the first declaration changes it.
        await store.putRoom('room_2', { ...TEN_PER_S, admitPerSecond: 1 }, T0);
        expect(await store.declareRoom('room_2', TEN_PER_S, 'decl-1', T0 + 5)).toMatchObject({ kind: 'updated', room: { admitPerSecond: 10 } });
        expect(await store.declareRoom('room_3', TEN_PER_S, 'decl-1', T0)).toEqual({ kind: 'full', maxRooms: 2 });
      });

      it('createRoom with a declaration: the next declareRoom with it keeps the room', async () => {
        const store = await make(ROOMY);
        await store.createRoom('room_1', TEN_PER_S, T0, 'decl-1');
        await store.putRoom('room_1', { ...TEN_PER_S, active: false }, T0 + 1);
        expect(await store.declareRoom('room_1', TEN_PER_S, 'decl-1', T0 + 2)).toEqual({ kind: 'kept' });
        expect((await store.getRoom('room_1', T0 + 2))?.room.active).toBe(false);
        // Without one (a room made create-only by hand), the declaration changes it.
        await store.createRoom('room_2', { ...TEN_PER_S, active: false }, T0);
        expect(await store.declareRoom('room_2', TEN_PER_S, 'decl-1', T0 + 2)).toMatchObject({ kind: 'updated', room: { active: true } });
      });

      it('starts at once with one declaration change the room once', async () => {
        const store = await make(ROOMY);
        await store.putRoom('room_1', { ...TEN_PER_S, admitPerSecond: 1 }, T0);
        const outcomes = await concurrently(10, () => store.declareRoom('room_1', TEN_PER_S, 'decl-1', T0 + 1));
        expect(tally(outcomes)).toEqual({ updated: 1, kept: 9 });
      });

      it('listRooms: every room in creation order', async () => {
        const store = await roomWith(TEN_PER_S);
        await store.putRoom('room_0', { ...TEN_PER_S, admitPerSecond: 1 }, T0 + 1);
        const { rooms } = await store.listRooms(T0 + 2);
        expect(rooms.map((r) => [r.roomId, r.admitPerSecond])).toEqual([
          ['room_1', 10],
          ['room_0', 1],
        ]);
      });
    });

    describe('entering and admission', () => {
      it('sequence numbers in entry order; the first of an idle room is admitted at once, the rest wait in line', async () => {
        const store = await roomWith(TEN_PER_S);
        const first = await store.enter('room_1', 'user_a', { ticket: 'wrt_a', admissionToken: 'adm_a' }, T0 + 10);
        expect(first).toMatchObject({ kind: 'entered', ticket: { ticket: 'wrt_a', sequence: 1, status: 'ADMITTED', enteredAt: T0 + 10 } });
        if (first.kind !== 'entered') throw new Error('not entered');
        // The ticket comes back as it is after the call; its admission is reported too.
        expect(first.admitted).toEqual([
          { ticket: 'wrt_a', roomId: 'room_1', userId: 'user_a', sequence: 1, status: 'ADMITTED', enteredAt: T0 + 10, admittedAt: T0 + 10, admissionToken: 'adm_a', expiresAt: T0 + 10 + 60_000, usedAt: null, usedFor: null },
        ]);
        const second = await store.enter('room_1', 'user_b', { ticket: 'wrt_b', admissionToken: 'adm_b' }, T0 + 20);
        expect(second).toMatchObject({ kind: 'entered', admitted: [], ticket: { sequence: 2, status: 'WAITING' }, room: { entered: 2, admitted: 1, activeCount: 1, nextAdmissionAt: T0 + 110 } });
      });

      it('entering again with a live ticket returns that ticket; ids given the second time are not used', async () => {
        const store = await roomWith(TEN_PER_S);
        await enterAll(store, 3, T0);
        const again = await store.enter('room_1', 'user_2', newIds(), T0 + 1);
        expect(again).toMatchObject({ kind: 'existing', ticket: { userId: 'user_2', sequence: 3, status: 'WAITING' }, room: { entered: 3 } });
        const admittedAgain = await store.enter('room_1', 'user_0', newIds(), T0 + 2);
        expect(admittedAgain).toMatchObject({ kind: 'existing', ticket: { sequence: 1, status: 'ADMITTED' } });
      });

      it('admits in entry order, one every 1000/admitPerSecond ms, each at its own time however rarely the room is looked at', async () => {
        const polled = await roomWith(TEN_PER_S);
        const once = await roomWith(TEN_PER_S);
        await enterAll(polled, 20, T0);
        await enterAll(once, 20, T0);
        const seen: Ticket[] = [];
        for (let t = T0; t <= T0 + 3_000; t += 7) seen.push(...((await polled.getRoom('room_1', t))?.admitted ?? []));
        const atOnce = (await once.getRoom('room_1', T0 + 3_000))?.admitted ?? [];
        // Ticket 1 was admitted on entering; 2 … 20 follow, 100 ms apart.
        expect(seen.map((t) => t.sequence)).toEqual(Array.from({ length: 19 }, (_, i) => i + 2));
        expect(seen.map((t) => t.admittedAt)).toEqual(Array.from({ length: 19 }, (_, i) => T0 + (i + 1) * 100));
        const when = (t: Ticket) => [t.userId, t.sequence, t.status, t.admittedAt, t.expiresAt];
        expect(atOnce.map(when)).toEqual(seen.map(when));
        // Each admission is handed out once.
        expect((await once.getRoom('room_1', T0 + 3_000))?.admitted).toEqual([]);
      });

      it('a ticket is read as it is after the room was brought up to date', async () => {
        const store = await roomWith(TEN_PER_S);
        const [, second] = await enterAll(store, 2, T0);
        const read = await store.getTicket('room_1', (second as Ticket).ticket, T0 + 100);
        expect(read?.admitted.map((t) => t.sequence)).toEqual([2]);
        expect(read?.room).toMatchObject({ admitted: 2, activeCount: 2 });
        expect(await store.getTicket('room_1', 'wrt_unknown', T0)).toBeUndefined();
      });

      it('a late entrant into an idle room is admitted on entering; spacing is kept from the last admission', async () => {
        const store = await roomWith(TEN_PER_S);
        await enterAll(store, 1, T0);
        const late = await store.enter('room_1', 'user_late', newIds(), T0 + 50);
        expect(late).toMatchObject({ kind: 'entered', admitted: [] });
        expect((await store.getRoom('room_1', T0 + 100))?.admitted.map((t) => [t.userId, t.admittedAt])).toEqual([['user_late', T0 + 100]]);
        const idle = await store.enter('room_1', 'user_idle', newIds(), T0 + 5_000);
        expect(idle).toMatchObject({ kind: 'entered', admitted: [{ userId: 'user_idle', admittedAt: T0 + 5_000 }] });
      });
    });

    describe('changing a running room', () => {
      it('a higher rate applies from the change; the queue keeps its order', async () => {
        const store = await roomWith(TEN_PER_S);
        await enterAll(store, 10, T0);
        const changed = put(await store.putRoom('room_1', { ...TEN_PER_S, admitPerSecond: 100 }, T0 + 250));
        expect(changed.kind).toBe('updated');
        expect(changed.admitted.map((t) => [t.sequence, t.admittedAt])).toEqual([
          [2, T0 + 100],
          [3, T0 + 200],
          // the last admission was at +200; at 100/s the next may come 10 ms later, so at once
          [4, T0 + 250],
        ]);
        const later = await store.getRoom('room_1', T0 + 300);
        expect(later?.admitted.map((t) => [t.sequence, t.admittedAt])).toEqual([
          [5, T0 + 260],
          [6, T0 + 270],
          [7, T0 + 280],
          [8, T0 + 290],
          [9, T0 + 300],
        ]);
        expect(later?.room).toMatchObject({ admitPerSecond: 100, createdAt: T0, updatedAt: T0 + 250 });
      });

      it('rate 0 pauses admission; resuming admits from the resume', async () => {
        const store = await roomWith(TEN_PER_S);
        await enterAll(store, 3, T0);
        await store.putRoom('room_1', { ...TEN_PER_S, admitPerSecond: 0 }, T0 + 50);
        expect((await store.getRoom('room_1', T0 + 10_000))?.admitted).toEqual([]);
        const resumed = put(await store.putRoom('room_1', TEN_PER_S, T0 + 10_000));
        expect(resumed.admitted.map((t) => [t.sequence, t.admittedAt])).toEqual([[2, T0 + 10_000]]);
      });

      it('an inactive room admits nobody and protects nothing', async () => {
        const store = await roomWith({ ...TEN_PER_S, active: false });
        const [ticket] = await enterAll(store, 1, T0);
        expect(ticket?.status).toBe('WAITING');
        expect((await store.getRoom('room_1', T0 + MINUTE))?.admitted).toEqual([]);
        expect(await store.useToken('svc_concert', undefined, 'ord_1', T0)).toEqual({ kind: 'unprotected' });
      });
    });

    describe('tokens', () => {
      it('fractional settings, as TIME_SCALE makes them (issue 15: 2 a second and 60 s tokens at 0.01): one admission every 5 ms, tokens valid 600 ms, stored as given', async () => {
        const scaled: RoomSettings = { ...TEN_PER_S, admitPerSecond: 200, admissionTtlSeconds: 0.6 };
        const store = await roomWith(scaled);
        const [first, , third] = await enterAll(store, 3, T0);
        const read = await store.getRoom('room_1', T0 + 10);
        expect(read?.room).toMatchObject({ admitPerSecond: 200, admissionTtlSeconds: 0.6, admitted: 3, activeCount: 3 });
        expect(read?.admitted.map((t) => [t.sequence, t.admittedAt, t.expiresAt])).toEqual([
          [2, T0 + 5, T0 + 605],
          [3, T0 + 10, T0 + 610],
        ]);
        expect(await store.getTicket('room_1', (first as Ticket).ticket, T0 + 599)).toMatchObject({ ticket: { status: 'ADMITTED', expiresAt: T0 + 600 } });
        expect(await store.getTicket('room_1', (first as Ticket).ticket, T0 + 600)).toMatchObject({ ticket: { status: 'EXPIRED' } });
        expect(await store.getTicket('room_1', (third as Ticket).ticket, T0 + 609)).toMatchObject({ ticket: { status: 'ADMITTED' } });
      });

      it('an admitted token expires after admissionTtlSeconds; entering again then gives a new ticket at the back', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 1 });
        const [first] = await enterAll(store, 2, T0);
        const read = await store.getRoom('room_1', T0 + 1_000);
        expect(read?.room).toMatchObject({ admitted: 2, expired: 1, activeCount: 1 });
        expect(await store.getTicket('room_1', (first as Ticket).ticket, T0 + 1_000)).toMatchObject({ ticket: { status: 'EXPIRED', usedAt: null } });
        const again = await store.enter('room_1', 'user_0', newIds(), T0 + 1_001);
        expect(again).toMatchObject({ kind: 'entered', ticket: { userId: 'user_0', sequence: 3, status: 'ADMITTED', admittedAt: T0 + 1_001 } });
      });

      it('useToken: unprotected, missing, invalid, used once, already used, expired', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 10 });
        const [first, second, third] = await enterAll(store, 3, T0);
        expect(await store.useToken('svc_other', undefined, 'ord_0', T0)).toEqual({ kind: 'unprotected' });
        expect(await store.useToken('svc_concert', undefined, 'ord_1', T0)).toEqual({ kind: 'missing', roomIds: ['room_1'], admitted: [] });
        expect(await store.useToken('svc_concert', 'adm_forged', 'ord_1', T0)).toMatchObject({ kind: 'invalid', roomIds: ['room_1'] });
        // The token of a ticket still waiting is no token yet.
        expect(await store.useToken('svc_concert', (third as Ticket).admissionToken, 'ord_1', T0)).toMatchObject({ kind: 'invalid' });
        const used = await store.useToken('svc_concert', (first as Ticket).admissionToken, 'ord_1', T0 + 5);
        expect(used).toEqual({ kind: 'used', admitted: [], nextDueAt: T0 + 100, ticket: { ...first, status: 'ADMITTED', admittedAt: T0, expiresAt: T0 + 10_000, usedAt: T0 + 5, usedFor: 'ord_1' } });
        expect(await store.useToken('svc_concert', (first as Ticket).admissionToken, 'ord_2', T0 + 6)).toMatchObject({ kind: 'already_used', ticket: { usedFor: 'ord_1' } });
        // Used, it holds its slot until its order is written (spendToken).
        expect((await store.getRoom('room_1', T0 + 6))?.room).toMatchObject({ used: 1, activeCount: 1 });
        const late = await store.useToken('svc_concert', (second as Ticket).admissionToken, 'ord_3', T0 + 100 + 10_000);
        expect(late).toMatchObject({ kind: 'expired', ticket: { sequence: 2, status: 'EXPIRED' } });
      });

      it('releaseToken gives a used token back (ADMITTED, unused, usable once more); only for the order it was used for', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 10 });
        const [first] = await enterAll(store, 1, T0);
        const token = (first as Ticket).admissionToken;
        await store.useToken('svc_concert', token, 'ord_1', T0 + 5);
        expect(await store.releaseToken(token, 'ord_other', T0 + 6)).toEqual({ released: false, admitted: [] });
        expect(await store.releaseToken('adm_forged', 'ord_1', T0 + 6)).toEqual({ released: false, admitted: [] });
        expect(await store.releaseToken(token, 'ord_1', T0 + 6)).toEqual({ released: true, admitted: [] });
        expect(await store.getTicket('room_1', (first as Ticket).ticket, T0 + 6)).toMatchObject({ room: { used: 0, activeCount: 1 }, ticket: { status: 'ADMITTED', usedAt: null, usedFor: null } });
        expect(await store.releaseToken(token, 'ord_1', T0 + 7)).toEqual({ released: false, admitted: [] });
        expect(await store.useToken('svc_concert', token, 'ord_2', T0 + 8)).toMatchObject({ kind: 'used', ticket: { usedFor: 'ord_2' } });
        // Used again, it ends when its token would have expired (+10,000), not at its first use.
        expect(await store.sweep(T0 + 10_000 + HOUR - 1)).toBe(0);
        expect(await store.sweep(T0 + 10_000 + HOUR)).toBe(1);
      });

      it('releaseToken after the token’s expiry: the ticket is EXPIRED at once', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 10 });
        const [first] = await enterAll(store, 1, T0);
        const token = (first as Ticket).admissionToken;
        await store.useToken('svc_concert', token, 'ord_1', T0 + 5);
        expect(await store.releaseToken(token, 'ord_1', T0 + 10_001)).toEqual({ released: true, admitted: [] });
        expect(await store.getTicket('room_1', (first as Ticket).ticket, T0 + 10_001)).toMatchObject({ room: { used: 0, expired: 1, activeCount: 0 }, ticket: { status: 'EXPIRED', usedAt: null } });
        expect(await store.useToken('svc_concert', token, 'ord_2', T0 + 10_002)).toMatchObject({ kind: 'expired' });
        // Kept until the TTL from its expiry, then swept.
        expect(await store.sweep(T0 + 10_000 + HOUR - 1)).toBe(0);
        expect(await store.sweep(T0 + 10_000 + HOUR)).toBe(1);
      });

      it('a token is good only for the services its own room protects', async () => {
        const store = await roomWith(TEN_PER_S);
        await store.putRoom('room_b', { ...TEN_PER_S, protectedServiceIds: ['svc_sports'] }, T0);
        const [concert] = await enterAll(store, 1, T0);
        expect(await store.useToken('svc_sports', (concert as Ticket).admissionToken, 'ord_1', T0)).toMatchObject({ kind: 'invalid', roomIds: ['room_b'] });
        expect(await store.useToken('svc_concert', (concert as Ticket).admissionToken, 'ord_1', T0)).toMatchObject({ kind: 'used' });
      });

      it('spendToken: the order written, the used token\'s slot is free from then; once, only for its order', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 10, maxActive: 1 });
        const [first] = (await enterAll(store, 2, T0)) as [Ticket, Ticket];
        expect(await store.spendToken(first.admissionToken, 'ord_1', T0 + 5)).toEqual({ spent: false, roomId: null, admitted: [], nextDueAt: null }); // not used
        await store.useToken('svc_concert', first.admissionToken, 'ord_1', T0 + 5);
        expect(await store.spendToken(first.admissionToken, 'ord_other', T0 + 6)).toEqual({ spent: false, roomId: null, admitted: [], nextDueAt: null });
        expect(await store.spendToken('adm_forged', 'ord_1', T0 + 6)).toEqual({ spent: false, roomId: null, admitted: [], nextDueAt: null });
        const spent = await store.spendToken(first.admissionToken, 'ord_1', T0 + 300);
        expect([spent.spent, spent.admitted.map((t) => [t.sequence, t.admittedAt]), spent.nextDueAt]).toEqual([true, [[2, T0 + 300]], null]);
        expect(await store.getTicket('room_1', first.ticket, T0 + 300)).toMatchObject({ room: { used: 1, activeCount: 1, expired: 0 }, ticket: { status: 'ADMITTED', usedFor: 'ord_1' } });
        expect(await store.spendToken(first.admissionToken, 'ord_1', T0 + 301)).toMatchObject({ spent: false, admitted: [] });
        expect((await store.getRoom('room_1', T0 + 301))?.room).toMatchObject({ used: 1, activeCount: 1 });
      });

      it('useToken of a used token says whether its order is still pending: until spent, or its own time over (the slot freed either way)', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 10 });
        const [first, second] = (await enterAll(store, 2, T0)) as [Ticket, Ticket];
        await store.useToken('svc_concert', first.admissionToken, 'ord_1', T0 + 200);
        await store.useToken('svc_concert', second.admissionToken, 'ord_2', T0 + 200);
        const again = (token: string, at: number) => store.useToken('svc_concert', token, 'ord_again', at);
        expect(await again(first.admissionToken, T0 + 201)).toMatchObject({ kind: 'already_used', pending: true, ticket: { usedFor: 'ord_1' } });
        await store.spendToken(first.admissionToken, 'ord_1', T0 + 300);
        expect(await again(first.admissionToken, T0 + 301)).toMatchObject({ kind: 'already_used', pending: false, ticket: { usedFor: 'ord_1' } });
        // ord_2 never said written: pending until the token's own expiry (admitted at T0 + 100), then not.
        expect(await again(second.admissionToken, T0 + 100 + 10_000 - 1)).toMatchObject({ kind: 'already_used', pending: true });
        expect(await again(second.admissionToken, T0 + 100 + 10_000)).toMatchObject({ kind: 'already_used', pending: false, ticket: { usedFor: 'ord_2' } });
      });

      it('maxActive: a used token holds its slot while its order is written: given back, the room is still at its cap, never over it (before 2026-12-06 one over)', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 10, maxActive: 1 });
        const [first, second] = (await enterAll(store, 2, T0)) as [Ticket, Ticket];
        await store.useToken('svc_concert', first.admissionToken, 'ord_1', T0 + 5);
        expect(await store.getRoom('room_1', T0 + 500)).toMatchObject({ admitted: [], room: { admitted: 1, activeCount: 1 }, nextDueAt: T0 + 10_000 });
        expect(await store.releaseToken(first.admissionToken, 'ord_1', T0 + 600)).toEqual({ released: true, admitted: [] });
        expect(await store.getTicket('room_1', second.ticket, T0 + 600)).toMatchObject({ room: { admitted: 1, used: 0, activeCount: 1 }, ticket: { status: 'WAITING' } });
        // Used for an order never said written (its process stopped): its slot frees at its expiry, and it stays used.
        await store.useToken('svc_concert', first.admissionToken, 'ord_2', T0 + 700);
        const later = await store.getTicket('room_1', first.ticket, T0 + 10_000);
        expect(later?.admitted.map((t) => [t.sequence, t.admittedAt])).toEqual([[2, T0 + 10_000]]);
        expect(later).toMatchObject({ room: { admitted: 2, used: 1, expired: 0, activeCount: 1 }, ticket: { status: 'ADMITTED', usedFor: 'ord_2' } });
        // Given back then (its order found missing): it takes a slot again, until its own expiry, which has passed: EXPIRED at once.
        expect(await store.releaseToken(first.admissionToken, 'ord_2', T0 + 10_001)).toEqual({ released: true, admitted: [] });
        expect(await store.getTicket('room_1', first.ticket, T0 + 10_001)).toMatchObject({ room: { used: 0, expired: 1, activeCount: 1 }, ticket: { status: 'EXPIRED', usedAt: null } });
      });

      it('maxActive: a full room admits the next user when a token is spent or when the first one expires', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 5, maxActive: 2 });
        const [first] = await enterAll(store, 5, T0);
        expect((await store.getRoom('room_1', T0 + 1_000))?.room).toMatchObject({ admitted: 2, activeCount: 2 });
        await store.useToken('svc_concert', (first as Ticket).admissionToken, 'ord_1', T0 + 1_000);
        expect((await store.getRoom('room_1', T0 + 1_000))?.admitted).toEqual([]);
        expect((await store.spendToken((first as Ticket).admissionToken, 'ord_1', T0 + 1_000)).admitted.map((t) => [t.sequence, t.admittedAt])).toEqual([[3, T0 + 1_000]]);
        // Ticket 2 (admitted at +100) expires at +5,100: ticket 4 is admitted then, not before, and the room says so.
        expect(await store.getRoom('room_1', T0 + 5_099)).toMatchObject({ admitted: [], nextDueAt: T0 + 5_100 });
        const next = await store.getRoom('room_1', T0 + 6_000);
        expect(next?.admitted.map((t) => [t.sequence, t.admittedAt])).toEqual([
          [4, T0 + 5_100],
          [5, T0 + 6_000],
        ]);
        expect(next?.room).toMatchObject({ admitted: 5, used: 1, expired: 2, activeCount: 2 });
        expect(next?.nextDueAt).toBeNull(); // nobody waits
      });

      /*
       * A code review found memory keeping a used token among the active ones (skipped only when it
       * came first) and adding it again when it was given back: it expired twice, `expired` counted
       * 3, activeCount went to -1 and the full room admitted a third user.
       */
      it('maxActive: a token used and given back while another expires first is expired once, and the room still admits no more than maxActive', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 30, maxActive: 2 });
        const [, second] = (await enterAll(store, 2, T0)) as [Ticket, Ticket];
        // Admitted at +100, ticket 2 expires at +30,100, after ticket 1 (+30,000).
        expect(await store.useToken('svc_concert', second.admissionToken, 'ord_1', T0 + 10_000)).toMatchObject({ kind: 'used', ticket: { admittedAt: T0 + 100 } });
        expect(await store.releaseToken(second.admissionToken, 'ord_1', T0 + 20_000)).toEqual({ released: true, admitted: [] });
        expect((await store.getRoom('room_1', T0 + MINUTE))?.room).toMatchObject({ admitted: 2, used: 0, expired: 2, activeCount: 0 });
        const late = [];
        for (const user of ['user_c', 'user_d', 'user_e']) late.push(await store.enter('room_1', user, newIds(), T0 + MINUTE));
        expect(late.map((o) => (o.kind === 'entered' ? o.ticket.status : o.kind))).toEqual(['ADMITTED', 'WAITING', 'WAITING']);
        // user_d at the rate's next slot; user_e only when user_c's token expires (+90,000).
        const full = await store.getRoom('room_1', T0 + MINUTE + 1_000);
        expect(full?.admitted.map((t) => [t.userId, t.admittedAt])).toEqual([['user_d', T0 + MINUTE + 100]]);
        expect(full).toMatchObject({ room: { admitted: 4, expired: 2, activeCount: 2 }, nextDueAt: T0 + MINUTE + 30_000 });
      });
    });

    describe('under concurrent calls', () => {
      it('1,000 users entering at once get sequence numbers 1 … 1,000, none twice', async () => {
        const store = await roomWith({ ...TEN_PER_S, admitPerSecond: 0 });
        const outcomes = await concurrently(1_000, (i) => store.enter('room_1', `user_${i}`, newIds(), T0));
        expect(tally(outcomes)).toEqual({ entered: 1_000 });
        const sequences = outcomes.map((o) => (o.kind === 'entered' ? o.ticket.sequence : 0)).sort((a, b) => a - b);
        expect(sequences).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
      });

      it('one user entering 100 times at once gets one ticket', async () => {
        const store = await roomWith({ ...TEN_PER_S, admitPerSecond: 0 });
        const outcomes = await concurrently(100, () => store.enter('room_1', 'user_1', newIds(), T0));
        expect(tally(outcomes)).toEqual({ entered: 1, existing: 99 });
        expect(new Set(outcomes.map((o) => (o.kind === 'entered' || o.kind === 'existing' ? o.ticket.ticket : '')))).toHaveProperty('size', 1);
      });

      it('200 orders with one token at once: exactly one uses it', async () => {
        const store = await roomWith(TEN_PER_S);
        const [ticket] = await enterAll(store, 1, T0);
        const outcomes = await concurrently(200, (i) => store.useToken('svc_concert', (ticket as Ticket).admissionToken, `ord_${i}`, T0 + 1));
        expect(tally(outcomes)).toEqual({ used: 1, already_used: 199 });
      });
    });

    describe('bounds', () => {
      it('a store of live tickets refuses a new one; ended tickets are evicted first, oldest ended first', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 1 }, { ...ROOMY, maxTickets: 3, ttlMs: HOUR });
        const [first] = await enterAll(store, 3, T0);
        expect(await store.enter('room_1', 'user_x', newIds(), T0 + 1)).toEqual({ kind: 'full', ...(await store.getRoom('room_1', T0 + 1)) });
        expect(await store.stats()).toEqual({ size: 3, max: 3 });
        // Ticket 1 expires at +1,000: then it is the one evicted.
        const entered = await store.enter('room_1', 'user_x', newIds(), T0 + 1_000);
        expect(entered).toMatchObject({ kind: 'entered', ticket: { sequence: 4 } });
        expect(await store.getTicket('room_1', (first as Ticket).ticket, T0 + 1_000)).toBeUndefined();
      });

      it('a refused entry still admits what fell due, and answers those admissions (once) with the room as it left it', async () => {
        const store = await roomWith(TEN_PER_S, { ...ROOMY, maxTickets: 3 });
        const [first, second, third] = (await enterAll(store, 3, T0)) as [Ticket, Ticket, Ticket];
        expect([first.status, second.status, third.status]).toEqual(['ADMITTED', 'WAITING', 'WAITING']);
        // Due at +100 and +200; nobody asked until this entry at +250, refused: three live tickets.
        const refused = await store.enter('room_1', 'user_x', newIds(), T0 + 250);
        const room = await store.getRoom('room_1', T0 + 250);
        expect(room?.admitted).toEqual([]);
        expect(refused).toEqual({
          kind: 'full',
          room: room?.room,
          admitted: [
            { ...second, status: 'ADMITTED', admittedAt: T0 + 100, expiresAt: T0 + 60_100 },
            { ...third, status: 'ADMITTED', admittedAt: T0 + 200, expiresAt: T0 + 60_200 },
          ],
          nextDueAt: null,
        });
        expect(room?.room).toMatchObject({ entered: 3, admitted: 3, activeCount: 3 });
        expect((await store.getTicket('room_1', second.ticket, T0 + 251))?.ticket).toMatchObject({ status: 'ADMITTED', admittedAt: T0 + 100 });
        expect(await store.stats()).toEqual({ size: 3, max: 3 });
      });

      it('an entry long after the last call admits the backlog and answers each admission, even of a ticket that ended and was swept in the same call', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 1 }, { ...ROOMY, ttlMs: MINUTE });
        const [, second, third] = (await enterAll(store, 3, T0)) as [Ticket, Ticket, Ticket];
        // An hour on: b and c were due at +100 and +200, their tokens expired a second later, a minute past that they are swept.
        const entered = await store.enter('room_1', 'user_x', newIds(), T0 + HOUR);
        if (entered.kind !== 'entered') throw new Error(`enter: ${entered.kind}`);
        expect(entered.admitted).toEqual([
          { ...second, status: 'EXPIRED', admittedAt: T0 + 100, expiresAt: T0 + 1_100 },
          { ...third, status: 'EXPIRED', admittedAt: T0 + 200, expiresAt: T0 + 1_200 },
          { ...entered.ticket, status: 'ADMITTED', admittedAt: T0 + HOUR, expiresAt: T0 + HOUR + 1_000 },
        ]);
        expect(entered.room).toMatchObject({ entered: 4, admitted: 4, expired: 3, activeCount: 1 });
        expect(await store.getTicket('room_1', second.ticket, T0 + HOUR)).toBeUndefined();
        expect(await store.stats()).toEqual({ size: 1, max: ROOMY.maxTickets });
      });

      it('a used ticket stays until its token would have expired, at the bound and by TTL, so that its token can be given back until then', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 10 }, { ...ROOMY, maxTickets: 2, ttlMs: MINUTE });
        const [first] = await enterAll(store, 1, T0);
        const token = (first as Ticket).admissionToken;
        expect((await store.useToken('svc_concert', token, 'ord_1', T0 + 5)).kind).toBe('used');
        const second = await store.enter('room_1', 'user_b', newIds(), T0 + 6);
        if (second.kind !== 'entered') throw new Error(`enter: ${second.kind}`);
        // At the bound the used ticket is not taken; by TTL neither; its token is given back.
        expect(await store.enter('room_1', 'user_c', newIds(), T0 + 7)).toEqual({ kind: 'full', ...(await store.getRoom('room_1', T0 + 7)) });
        expect(await store.sweep(T0 + 5 + MINUTE)).toBe(0);
        expect(await store.releaseToken(token, 'ord_1', T0 + 8)).toEqual({ released: true, admitted: [] });
        expect((await store.useToken('svc_concert', token, 'ord_2', T0 + 9)).kind).toBe('used');
        // Its token's expiry (+10,000) ends it: from then the bound takes it (user_b's, admitted at +100, is live until +10,100).
        // Refused, the entry admits user_b's ticket, due at +100 with nobody asking since.
        const refused = await store.enter('room_1', 'user_c', newIds(), T0 + 9_999);
        const room = await store.getRoom('room_1', T0 + 9_999);
        expect(refused).toEqual({ kind: 'full', room: room?.room, admitted: [{ ...second.ticket, status: 'ADMITTED', admittedAt: T0 + 100, expiresAt: T0 + 10_100 }], nextDueAt: null });
        expect(await store.enter('room_1', 'user_c', newIds(), T0 + 10_000)).toMatchObject({ kind: 'entered', ticket: { sequence: 3 } });
        expect(await store.getTicket('room_1', (first as Ticket).ticket, T0 + 10_000)).toBeUndefined();
      });

      it('sweep drops tickets that ended more than the TTL ago, and nothing live', async () => {
        const store = await roomWith({ ...TEN_PER_S, admissionTtlSeconds: 1 }, { ...ROOMY, maxTickets: 100, ttlMs: MINUTE });
        const [first, second] = await enterAll(store, 3, T0);
        await store.useToken('svc_concert', (first as Ticket).admissionToken, 'ord_1', T0 + 10);
        // Ticket 1, used at +10, ends when its token would have expired (+1,000); at +1,100 ticket 2
        // (admitted at +100) expires; ticket 3 (admitted at +200) is still live until +1,200.
        expect(await store.sweep(T0 + 10 + MINUTE)).toBe(0);
        expect(await store.sweep(T0 + 1_000 + MINUTE)).toBe(1);
        expect(await store.getTicket('room_1', (first as Ticket).ticket, T0 + MINUTE)).toBeUndefined();
        expect(await store.getTicket('room_1', (second as Ticket).ticket, T0 + MINUTE)).toMatchObject({ ticket: { status: 'EXPIRED' } });
        expect(await store.sweep(T0 + 1_200 + MINUTE)).toBe(2);
        expect(await store.stats()).toEqual({ size: 0, max: 100 });
      });
    });
  });
}
