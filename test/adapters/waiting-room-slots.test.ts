import { describe, expect, it } from 'vitest';
import { MemoryWaitingRoomStore } from '../../src/adapters/memory/waiting-rooms.ts';
import { RedisWaitingRoomStore } from '../../src/adapters/redis/waiting-rooms.ts';
import type { WaitingRoomStore } from '../../src/core/waiting-room/ports.ts';
import type { RoomSettings, Ticket } from '../../src/core/waiting-room/room.ts';
import { sentTwice, withRedisServer, type TestRedis } from '../helpers/redis.ts';
import { HOUR, MINUTE, T0 } from './contracts/fixtures.ts';

/**
 * A used token's slot (fa339c2) and the cap, on both stores: cases a review (rev62c) found wrong
 * on 2026-12-06, each failing before its fix.
 */
const ROOM: RoomSettings = { admitPerSecond: 10, admissionTtlSeconds: 10, protectedServiceIds: ['svc_concert'], maxActive: null, active: true };
type Opts = { maxRooms: number; maxTickets: number; ttlMs: number };
let n = 0;
const ids = () => ({ ticket: `wrt_${++n}`, admissionToken: `adm_${n}` });

async function enter(store: WaitingRoomStore, roomId: string, user: string, at: number): Promise<Ticket> {
  const o = await store.enter(roomId, user, ids(), at);
  if (o.kind !== 'entered') throw new Error(o.kind);
  return o.ticket;
}

function suite(name: string, make: (o: Opts) => WaitingRoomStore, extra?: { keys: () => Promise<string[]> }): void {
  describe(name, () => {
    it('a used ticket whose order never said written, swept at the TTL before its room caught up, frees its slot and is not counted expired; no key is left', async () => {
      const store = make({ maxRooms: 10, maxTickets: 100, ttlMs: MINUTE });
      await store.putRoom('room_1', ROOM, T0);
      const a = await enter(store, 'room_1', 'user_a', T0);
      expect((await store.useToken('svc_concert', a.admissionToken, 'ord_1', T0 + 10)).kind).toBe('used');
      // Its process stopped before spendToken; nobody looks at the room for a while.
      expect(await store.sweep(T0 + 10_000 + MINUTE)).toBe(1);
      const room = await store.getRoom('room_1', T0 + 10_000 + MINUTE + 1);
      expect(room?.room).toMatchObject({ admitted: 1, used: 1, expired: 0, activeCount: 0 });
      if (extra) expect(await extra.keys()).toEqual([]);
    });

    it('such a ticket evicted at the bound by an entry into another room before its own room caught up: the same', async () => {
      const store = make({ maxRooms: 10, maxTickets: 2, ttlMs: HOUR });
      await store.putRoom('room_1', ROOM, T0);
      await store.putRoom('room_2', ROOM, T0);
      const a = await enter(store, 'room_1', 'user_a', T0);
      await store.useToken('svc_concert', a.admissionToken, 'ord_1', T0 + 10);
      await enter(store, 'room_2', 'user_b', T0 + 20);
      // Full: the used ticket (ended at its token's expiry, +10,000) is evicted by this entry into room_2.
      await enter(store, 'room_2', 'user_c', T0 + 10_001);
      const room = await store.getRoom('room_1', T0 + 10_002);
      expect(room?.room).toMatchObject({ admitted: 1, used: 1, expired: 0, activeCount: 0 });
      expect(await store.stats()).toMatchObject({ size: 2 });
    });

    it('a room whose maxActive was lowered below its live tokens admits nobody until it is under the new cap (before, one at each expiry)', async () => {
      const store = make({ maxRooms: 10, maxTickets: 100, ttlMs: HOUR });
      await store.putRoom('room_1', { ...ROOM, maxActive: 3 }, T0);
      for (const u of ['a', 'b', 'c', 'd', 'e']) await enter(store, 'room_1', `user_${u}`, T0);
      expect((await store.getRoom('room_1', T0 + 300))?.room).toMatchObject({ admitted: 3, activeCount: 3 });
      await store.putRoom('room_1', { ...ROOM, maxActive: 1 }, T0 + 300);
      // a expires at +10,000 (2 live: b, c): over the cap of 1, nobody should be admitted.
      const r = await store.getRoom('room_1', T0 + 10_050);
      expect(r?.admitted.map((t) => t.userId)).toEqual([]);
      expect(r?.room.activeCount).toBe(2);
      // b expires at +10,100 (1 live), c at +10,200: d is admitted then, e at d's expiry.
      const next = await store.getRoom('room_1', T0 + 10_250);
      expect(next?.admitted.map((t) => [t.userId, (t.admittedAt as number) - T0])).toEqual([['user_d', 10_200]]);
      expect(next?.room.activeCount).toBe(1);
    });

    it('a spent token given back (its order gone) takes a slot again, over the cap, but nobody is admitted until the room is under it', async () => {
      const store = make({ maxRooms: 10, maxTickets: 100, ttlMs: HOUR });
      await store.putRoom('room_1', { ...ROOM, maxActive: 1 }, T0);
      const a = await enter(store, 'room_1', 'user_a', T0);
      for (const u of ['b', 'c', 'd']) await enter(store, 'room_1', `user_${u}`, T0);
      await store.useToken('svc_concert', a.admissionToken, 'ord_1', T0 + 10);
      const spent = await store.spendToken(a.admissionToken, 'ord_1', T0 + 200);
      expect(spent.admitted.map((t) => t.userId)).toEqual(['user_b']);
      // orderExists('ord_1') false a lease on (order evicted): the guard gives it back.
      expect((await store.releaseToken(a.admissionToken, 'ord_1', T0 + 5_000)).released).toBe(true);
      expect((await store.getRoom('room_1', T0 + 5_000))?.room.activeCount).toBe(2);
      // a's token, given back, expires at +10,000; b's holds the only slot until +10,200: nobody is admitted.
      const later = await store.getRoom('room_1', T0 + 10_010);
      expect([later?.admitted, later?.room.activeCount]).toEqual([[], 1]);
    });
  });
}

suite('memory', (o) => new MemoryWaitingRoomStore(o));

withRedisServer('redis', (server) => {
  let prefix = '';
  let redis: TestRedis | undefined;
  suite(
    'redis',
    (o) => {
      redis = server();
      prefix = redis.newPrefix();
      return new RedisWaitingRoomStore(redis.client, { keyPrefix: prefix, ...o });
    },
    { keys: async () => (await (redis as TestRedis).client.keys(`${prefix}wr:t:*`)) },
  );

  it.each([
    ['sent once', false],
    ['sent twice (its reply lost): answered again, its reply kept', true],
  ])('a spend that finds the slot freed by the token\'s expiry answers the admissions of that expiry: %s', async (_, twice) => {
    const r = server();
    const store = new RedisWaitingRoomStore(r.client, { keyPrefix: r.newPrefix(), maxRooms: 10, maxTickets: 100, ttlMs: HOUR });
    await store.putRoom('room_1', { ...ROOM, maxActive: 1 }, T0);
    const a = await enter(store, 'room_1', 'user_a', T0);
    await enter(store, 'room_1', 'user_b', T0);
    await store.useToken('svc_concert', a.admissionToken, 'ord_1', T0 + 10);
    // create() took longer than the token's life: its slot freed at +10,000 and b admitted then, by this call.
    const spend = () => store.spendToken(a.admissionToken, 'ord_1', T0 + 10_050);
    const once = twice ? await sentTwice(r.client, spend) : await spend();
    expect([once.spent, once.admitted.map((t) => [t.userId, (t.admittedAt as number) - T0])]).toEqual([false, [['user_b', 10_000]]]);
  });
});
