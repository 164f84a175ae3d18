import { describe, expect, it } from 'vitest';
import { DEFAULT_PERFORMANCES, type Performance } from '../../../src/core/bookings/performances.ts';
import type { SeatStore } from '../../../src/core/ports.ts';
import type { HoldOutcome, SeatView } from '../../../src/core/seats.ts';
import { concurrently, MINUTE, T0, tally } from './fixtures.ts';

export type SeatStoreFactory = (performances: readonly Performance[]) => Promise<SeatStore> | SeatStore;

const SMALL: Performance = {
  id: 'perf_small',
  title: 'A small room',
  venue: 'Test hall',
  startsAt: '2026-03-01T10:00:00.000Z',
  rows: ['A', 'B'],
  seatsPerRow: 5,
  priceMinor: 10_000,
  currency: 'KRW',
};
const HALL = DEFAULT_PERFORMANCES[0] as Performance;
const UNTIL = T0 + 10 * MINUTE;

const seat = (seatId: string, status: SeatView['status'] = 'available', bookingId: string | null = null): SeatView => ({
  seatId,
  row: seatId.slice(0, 1),
  number: Number(seatId.slice(1)),
  status,
  bookingId,
  lockedUntil: status === 'locked' ? UNTIL : null,
});

/** The SeatStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh over a catalog. */
export function seatStoreContract(name: string, make: SeatStoreFactory): void {
  const small = () => make([SMALL, HALL]);

  async function seatIdsOf(store: SeatStore, bookingId: string, quantity: number, performanceId = SMALL.id): Promise<string[]> {
    const outcome = await store.hold(performanceId, quantity, bookingId, UNTIL);
    if (outcome.kind !== 'held') throw new Error(`hold of ${quantity} for ${bookingId}: ${outcome.kind}`);
    return outcome.seatIds;
  }

  describe(`SeatStore contract: ${name}`, () => {
    it('a fresh performance has every seat available, front row first', async () => {
      const store = await small();
      expect(await store.seatsOf(SMALL.id)).toEqual(['A1', 'A2', 'A3', 'A4', 'A5', 'B1', 'B2', 'B3', 'B4', 'B5'].map((id) => seat(id)));
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 10, held: 0, reserved: 0 });
      expect(await store.seatsOf('perf_unknown')).toBeUndefined();
      expect(await store.counts('perf_unknown')).toBeUndefined();
    });

    it('holds the best available seats: the first adjacent run front to back, else the first free ones', async () => {
      const store = await small();
      expect(await store.hold(SMALL.id, 2, 'bk_1', UNTIL)).toEqual({ kind: 'held', seatIds: ['A1', 'A2'] });
      expect(await store.hold(SMALL.id, 4, 'bk_2', UNTIL)).toEqual({ kind: 'held', seatIds: ['B1', 'B2', 'B3', 'B4'] });
      expect(await store.hold(SMALL.id, 2, 'bk_3', UNTIL)).toEqual({ kind: 'held', seatIds: ['A3', 'A4'] });
      expect(await store.hold(SMALL.id, 2, 'bk_4', UNTIL)).toEqual({ kind: 'held', seatIds: ['A5', 'B5'] });
      expect(await store.seatsOf(SMALL.id)).toEqual([
        seat('A1', 'locked', 'bk_1'),
        seat('A2', 'locked', 'bk_1'),
        seat('A3', 'locked', 'bk_3'),
        seat('A4', 'locked', 'bk_3'),
        seat('A5', 'locked', 'bk_4'),
        seat('B1', 'locked', 'bk_2'),
        seat('B2', 'locked', 'bk_2'),
        seat('B3', 'locked', 'bk_2'),
        seat('B4', 'locked', 'bk_2'),
        seat('B5', 'locked', 'bk_4'),
      ]);
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 0, held: 10, reserved: 0 });
    });

    it('refuses an unknown performance, a booking that already holds seats, and more than is free', async () => {
      const store = await small();
      expect(await store.hold('perf_unknown', 1, 'bk_1', UNTIL)).toEqual({ kind: 'unknown_performance' });
      await seatIdsOf(store, 'bk_1', 7);
      expect(await store.hold(SMALL.id, 1, 'bk_1', UNTIL)).toEqual({ kind: 'already_holding' });
      expect(await store.hold(HALL.id, 1, 'bk_1', UNTIL)).toEqual({ kind: 'already_holding' });
      expect(await store.hold(SMALL.id, 4, 'bk_2', UNTIL)).toEqual({ kind: 'sold_out', available: 3 });
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 3, held: 7, reserved: 0 });
    });

    it('release frees every seat of a booking, once; the booking may hold again', async () => {
      const store = await small();
      const held = await seatIdsOf(store, 'bk_1', 3);
      expect(await store.release('bk_1')).toEqual(held);
      expect(await store.release('bk_1')).toEqual([]);
      expect(await store.release('bk_unknown')).toEqual([]);
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 10, held: 0, reserved: 0 });
      expect((await store.seatsOf(SMALL.id))?.every((s) => s.status === 'available' && s.bookingId === null && s.lockedUntil === null)).toBe(true);
      expect(await store.hold(SMALL.id, 3, 'bk_1', UNTIL)).toEqual({ kind: 'held', seatIds: held });
    });

    it('reserve turns a booking’s locked seats into reserved ones, idempotently; release frees them too', async () => {
      const store = await small();
      await seatIdsOf(store, 'bk_1', 2);
      await seatIdsOf(store, 'bk_2', 1);
      expect(await store.reserve('bk_1')).toEqual(['A1', 'A2']);
      expect(await store.reserve('bk_1')).toEqual(['A1', 'A2']);
      expect(await store.reserve('bk_unknown')).toEqual([]);
      expect((await store.seatsOf(SMALL.id))?.slice(0, 4)).toEqual([seat('A1', 'reserved', 'bk_1'), seat('A2', 'reserved', 'bk_1'), seat('A3', 'locked', 'bk_2'), seat('A4')]);
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 7, held: 1, reserved: 2 });
      expect(await store.release('bk_1')).toEqual(['A1', 'A2']);
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 9, held: 1, reserved: 0 });
    });

    it('forget drops an evicted booking’s entry, its sold seats staying sold; a booking with locked seats is kept (they are freed first)', async () => {
      const store = await small();
      const locked = await seatIdsOf(store, 'bk_1', 2);
      await seatIdsOf(store, 'bk_2', 3);
      await store.reserve('bk_2');
      await store.forget('bk_2');
      await store.forget('bk_1');
      await store.forget('bk_unknown');
      // Gone: nothing of it is freed any more (before 2026-12-03 the entry stayed for good).
      expect(await store.release('bk_2')).toEqual([]);
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 5, held: 2, reserved: 3 });
      expect((await store.seatsOf(SMALL.id))?.slice(2, 5)).toEqual([seat('A3', 'reserved', 'bk_2'), seat('A4', 'reserved', 'bk_2'), seat('A5', 'reserved', 'bk_2')]);
      expect(await store.releaseHeld('bk_1')).toEqual(locked);
    });

    it('releaseHeld frees a booking’s locked seats only: reserved ones stay its own', async () => {
      const store = await small();
      const held = await seatIdsOf(store, 'bk_1', 2);
      await seatIdsOf(store, 'bk_2', 3);
      expect(await store.reserve('bk_2')).toEqual(['A3', 'A4', 'A5']);
      expect(await store.releaseHeld('bk_2')).toEqual([]);
      expect(await store.releaseHeld('bk_1')).toEqual(held);
      expect(await store.releaseHeld('bk_1')).toEqual([]);
      expect(await store.releaseHeld('bk_unknown')).toEqual([]);
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 7, held: 0, reserved: 3 });
      expect((await store.seatsOf(SMALL.id))?.slice(0, 6)).toEqual([
        seat('A1'),
        seat('A2'),
        seat('A3', 'reserved', 'bk_2'),
        seat('A4', 'reserved', 'bk_2'),
        seat('A5', 'reserved', 'bk_2'),
        seat('B1'),
      ]);
      expect(await store.hold(SMALL.id, 2, 'bk_1', UNTIL)).toEqual({ kind: 'held', seatIds: held });
      expect(await store.hold(SMALL.id, 1, 'bk_2', UNTIL)).toEqual({ kind: 'already_holding' });
      expect(await store.release('bk_2')).toEqual(['A3', 'A4', 'A5']);
      expect(await store.counts(SMALL.id)).toEqual({ total: 10, available: 8, held: 2, reserved: 0 });
    });

    it('counts without a performance sum over the whole catalog', async () => {
      const store = await small();
      await seatIdsOf(store, 'bk_1', 2);
      await seatIdsOf(store, 'bk_2', 5, HALL.id);
      await store.reserve('bk_2');
      expect(await store.counts()).toEqual({ total: 210, available: 203, held: 2, reserved: 5 });
      expect(await store.counts(HALL.id)).toEqual({ total: 200, available: 195, held: 0, reserved: 5 });
    });

    it('what it hands out are copies', async () => {
      const store = await small();
      const held = await seatIdsOf(store, 'bk_1', 2);
      held.push('B1');
      const seats = (await store.seatsOf(SMALL.id)) as SeatView[];
      (seats[0] as SeatView).status = 'available';
      seats.pop();
      expect(await store.seatsOf(SMALL.id)).toHaveLength(10);
      expect((await store.seatsOf(SMALL.id))?.[0]).toEqual(seat('A1', 'locked', 'bk_1'));
      expect(await store.release('bk_1')).toEqual(['A1', 'A2']);
    });

    describe('under concurrent calls', () => {
      it('1,000 holds of one seat on 200 seats: exactly 200 held, no seat twice', async () => {
        const store = await small();
        const results = await concurrently(1_000, (i) => store.hold(HALL.id, 1, `bk_${i}`, UNTIL));
        expect(tally(results)).toEqual({ held: 200, sold_out: 800 });
        for (const r of results) if (r.kind === 'sold_out') expect(r.available).toBe(0);
        const given = results.flatMap((r) => (r.kind === 'held' ? r.seatIds : []));
        expect(new Set(given).size).toBe(200);
        expect(await store.counts(HALL.id)).toEqual({ total: 200, available: 0, held: 200, reserved: 0 });
        const owners = new Map<string, string>();
        results.forEach((r, i) => {
          if (r.kind === 'held') owners.set(r.seatIds[0] as string, `bk_${i}`);
        });
        for (const s of (await store.seatsOf(HALL.id)) as SeatView[]) expect(s).toEqual(seat(s.seatId, 'locked', owners.get(s.seatId) ?? 'none'));
      });

      it('holds of mixed sizes never share a seat and the counts add up', async () => {
        const store = await small();
        const results: HoldOutcome[] = await concurrently(300, (i) => store.hold(HALL.id, (i % 4) + 1, `bk_${i}`, UNTIL));
        const given = results.flatMap((r, i) => {
          if (r.kind !== 'held') return [];
          expect(r.seatIds).toHaveLength((i % 4) + 1);
          return r.seatIds;
        });
        expect(new Set(given).size).toBe(given.length);
        const counts = await store.counts(HALL.id);
        expect(counts).toEqual({ total: 200, available: 200 - given.length, held: given.length, reserved: 0 });
        expect(((await store.seatsOf(HALL.id)) as SeatView[]).filter((s) => s.status === 'locked')).toHaveLength(given.length);
        // Sold out means too few seats were left for that size, never that seats went missing.
        for (const r of results) if (r.kind === 'sold_out') expect(r.available).toBeLessThan(4);
      });

      it('of 50 holds by one booking exactly one is held', async () => {
        const store = await small();
        const results = await concurrently(50, () => store.hold(HALL.id, 2, 'bk_1', UNTIL));
        expect(tally(results)).toEqual({ held: 1, already_holding: 49 });
        expect(await store.counts(HALL.id)).toEqual({ total: 200, available: 198, held: 2, reserved: 0 });
      });

      it('releases and new holds running together keep every count consistent', async () => {
        const store = await small();
        await concurrently(100, (i) => store.hold(HALL.id, 2, `bk_old_${i}`, UNTIL));
        const results = await concurrently<string[] | HoldOutcome>(200, (i) => (i % 2 === 0 ? store.release(`bk_old_${i / 2}`) : store.hold(HALL.id, 2, `bk_new_${i}`, UNTIL)));
        const seats = (await store.seatsOf(HALL.id)) as SeatView[];
        const locked = seats.filter((s) => s.status === 'locked');
        const newHolds = results.filter((r) => !Array.isArray(r) && r.kind === 'held').length;
        expect(locked).toHaveLength(2 * newHolds);
        expect(locked.every((s) => s.bookingId?.startsWith('bk_new_'))).toBe(true);
        expect(await store.counts(HALL.id)).toEqual({ total: 200, available: 200 - locked.length, held: locked.length, reserved: 0 });
      });
    });
  });
}
