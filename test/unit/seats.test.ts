import { describe, expect, it } from 'vitest';
import { MemorySeatStore } from '../../src/adapters/memory/seats.ts';
import { DEFAULT_PERFORMANCES, type Performance } from '../../src/core/bookings/performances.ts';
import { createRandom } from '../../src/core/random.ts';
import { chooseSeats, type SeatStatus } from '../../src/core/seats.ts';

/**
 * The seat-allocation rule (core/seats.ts), through the in-memory seat store that applies it.
 * What every seat store must do (all or nothing, no seat twice under concurrent holds, copies)
 * is the seat contract suite's (test/adapters).
 */

const UNTIL = Date.UTC(2026, 0, 15, 12, 10, 0);

function perf(id: string, rows: string[], seatsPerRow: number): Performance {
  return { id, title: id, venue: 'Hall', startsAt: '2026-03-01T10:00:00.000Z', rows, seatsPerRow, priceMinor: 30000, currency: 'KRW' };
}

const HALL = perf('hall', ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'], 20);
const TINY = perf('tiny', ['A', 'B'], 3);

/** The seat ids a hold was given, or the kind of its refusal. */
async function hold(seats: MemorySeatStore, performanceId: string, quantity: number, bookingId: string): Promise<string[] | string> {
  const outcome = await seats.hold(performanceId, quantity, bookingId, UNTIL);
  return outcome.kind === 'held' ? outcome.seatIds : outcome.kind;
}

describe('chooseSeats', () => {
  const row = (...statuses: SeatStatus[]) => statuses.map((status) => ({ status }));
  const free = (rows: Array<Array<{ status: SeatStatus }>>) => rows.map((r) => r.filter((s) => s.status === 'available').length);

  it('takes the lowest-numbered adjacent run in the front-most row that has one', () => {
    const rows = [row('locked', 'available', 'locked', 'available', 'available'), row('available', 'available', 'available', 'available', 'available')];
    expect(chooseSeats(rows, free(rows), 2)).toEqual([
      [0, 3],
      [0, 4],
    ]);
    expect(chooseSeats(rows, free(rows), 3)).toEqual([
      [1, 0],
      [1, 1],
      [1, 2],
    ]);
  });

  it('falls back to the first available seats front to back when no row has a run', () => {
    const rows = [row('available', 'locked', 'available'), row('reserved', 'available', 'locked')];
    expect(chooseSeats(rows, free(rows), 3)).toEqual([
      [0, 0],
      [0, 2],
      [1, 1],
    ]);
  });
});

describe('hold', () => {
  it('gives the first booking the front row, lowest numbers, and locks the seats until the given time', async () => {
    const seats = new MemorySeatStore([HALL]);
    expect(await hold(seats, 'hall', 2, 'bk_1')).toEqual(['A1', 'A2']);
    expect(await hold(seats, 'hall', 3, 'bk_2')).toEqual(['A3', 'A4', 'A5']);
    const view = (await seats.seatsOf('hall')) ?? [];
    expect(view).toHaveLength(200);
    expect(view.slice(0, 6)).toEqual([
      { seatId: 'A1', row: 'A', number: 1, status: 'locked', bookingId: 'bk_1', lockedUntil: UNTIL },
      { seatId: 'A2', row: 'A', number: 2, status: 'locked', bookingId: 'bk_1', lockedUntil: UNTIL },
      { seatId: 'A3', row: 'A', number: 3, status: 'locked', bookingId: 'bk_2', lockedUntil: UNTIL },
      { seatId: 'A4', row: 'A', number: 4, status: 'locked', bookingId: 'bk_2', lockedUntil: UNTIL },
      { seatId: 'A5', row: 'A', number: 5, status: 'locked', bookingId: 'bk_2', lockedUntil: UNTIL },
      { seatId: 'A6', row: 'A', number: 6, status: 'available', bookingId: null, lockedUntil: null },
    ]);
    expect(view.at(-1)).toMatchObject({ seatId: 'J20', row: 'J', number: 20 });
    expect(await seats.counts('hall')).toEqual({ total: 200, available: 195, held: 5, reserved: 0 });
  });

  it('keeps a party together in the front-most row that has room: C7, C8', async () => {
    const seats = new MemorySeatStore([HALL]);
    await hold(seats, 'hall', 20, 'bk_a'); // A1–A20
    await hold(seats, 'hall', 19, 'bk_b'); // B1–B19, B20 left alone
    expect(await hold(seats, 'hall', 6, 'bk_c')).toEqual(['C1', 'C2', 'C3', 'C4', 'C5', 'C6']);
    expect(await hold(seats, 'hall', 2, 'bk_d')).toEqual(['C7', 'C8']);
    expect(await hold(seats, 'hall', 1, 'bk_e')).toEqual(['B20']);
  });

  it('fills the lowest gap that fits, skipping gaps that are too small', async () => {
    const seats = new MemorySeatStore([HALL]);
    await hold(seats, 'hall', 2, 'bk_1'); // A1 A2
    await hold(seats, 'hall', 3, 'bk_2'); // A3–A5
    await hold(seats, 'hall', 15, 'bk_3'); // A6–A20
    await seats.release('bk_1');
    expect(await hold(seats, 'hall', 3, 'bk_4')).toEqual(['B1', 'B2', 'B3']);
    await seats.release('bk_2');
    expect(await hold(seats, 'hall', 4, 'bk_5')).toEqual(['A1', 'A2', 'A3', 'A4']);
    expect(await hold(seats, 'hall', 1, 'bk_6')).toEqual(['A5']);
  });

  it('splits a party across rows only when no row has enough adjacent seats, front to back', async () => {
    const seats = new MemorySeatStore([TINY]);
    expect(await hold(seats, 'tiny', 2, 'bk_1')).toEqual(['A1', 'A2']);
    expect(await hold(seats, 'tiny', 2, 'bk_2')).toEqual(['B1', 'B2']);
    expect(await hold(seats, 'tiny', 2, 'bk_3')).toEqual(['A3', 'B3']);
    expect(await seats.counts('tiny')).toEqual({ total: 6, available: 0, held: 6, reserved: 0 });
  });

  it('is all or nothing: sold out when fewer seats are left than asked, and nothing is locked', async () => {
    const seats = new MemorySeatStore([TINY]);
    await hold(seats, 'tiny', 4, 'bk_1');
    const before = await seats.seatsOf('tiny');
    expect(await seats.hold('tiny', 3, 'bk_2', UNTIL)).toEqual({ kind: 'sold_out', available: 2 });
    expect(await seats.seatsOf('tiny')).toEqual(before);
    expect(await hold(seats, 'tiny', 2, 'bk_2')).toEqual(['B2', 'B3']);
    expect(await hold(seats, 'tiny', 1, 'bk_3')).toBe('sold_out');
  });

  it('refuses an unknown performance and a booking that already holds seats', async () => {
    const seats = new MemorySeatStore([TINY]);
    expect(await hold(seats, 'nope', 1, 'bk_1')).toBe('unknown_performance');
    await hold(seats, 'tiny', 1, 'bk_1');
    expect(await hold(seats, 'tiny', 1, 'bk_1')).toBe('already_holding');
    expect((await seats.counts('tiny'))?.held).toBe(1);
  });
});

describe('release and reserve', () => {
  it('reserve turns locks into sales; release frees locked or reserved seats and is idempotent', async () => {
    const seats = new MemorySeatStore([TINY]);
    await hold(seats, 'tiny', 2, 'bk_1');
    await hold(seats, 'tiny', 1, 'bk_2');
    expect(await seats.reserve('bk_1')).toEqual(['A1', 'A2']);
    expect(((await seats.seatsOf('tiny')) ?? []).slice(0, 3)).toEqual([
      { seatId: 'A1', row: 'A', number: 1, status: 'reserved', bookingId: 'bk_1', lockedUntil: null },
      { seatId: 'A2', row: 'A', number: 2, status: 'reserved', bookingId: 'bk_1', lockedUntil: null },
      { seatId: 'A3', row: 'A', number: 3, status: 'locked', bookingId: 'bk_2', lockedUntil: UNTIL },
    ]);
    expect(await seats.counts('tiny')).toEqual({ total: 6, available: 3, held: 1, reserved: 2 });
    expect(await seats.reserve('bk_1')).toEqual(['A1', 'A2']);
    expect(await seats.counts('tiny')).toEqual({ total: 6, available: 3, held: 1, reserved: 2 });

    expect(await seats.release('bk_2')).toEqual(['A3']);
    expect(await seats.release('bk_2')).toEqual([]);
    expect(await seats.counts('tiny')).toEqual({ total: 6, available: 4, held: 0, reserved: 2 });
    expect(await seats.release('bk_1')).toEqual(['A1', 'A2']);
    expect(await seats.counts('tiny')).toEqual({ total: 6, available: 6, held: 0, reserved: 0 });
    expect(((await seats.seatsOf('tiny')) ?? []).every((s) => s.status === 'available' && s.bookingId === null && s.lockedUntil === null)).toBe(true);
  });

  it('reserving for a booking that holds nothing changes nothing', async () => {
    const seats = new MemorySeatStore([TINY]);
    expect(await seats.reserve('bk_x')).toEqual([]);
    expect(await seats.counts('tiny')).toEqual({ total: 6, available: 6, held: 0, reserved: 0 });
  });

  it('lets a booking id hold again once released', async () => {
    const seats = new MemorySeatStore([TINY]);
    await hold(seats, 'tiny', 1, 'bk_1');
    await seats.release('bk_1');
    expect(await hold(seats, 'tiny', 1, 'bk_1')).toEqual(['A1']);
  });
});

describe('queries', () => {
  it('sums counts over every performance and returns copies', async () => {
    const seats = new MemorySeatStore(DEFAULT_PERFORMANCES);
    await hold(seats, 'perf_001', 3, 'bk_1');
    await hold(seats, 'perf_003', 2, 'bk_2');
    await seats.reserve('bk_2');
    expect(await seats.counts()).toEqual({ total: 420, available: 415, held: 3, reserved: 2 });
    const view = (await seats.seatsOf('perf_001')) ?? [];
    view[0]!.status = 'available';
    expect((await seats.seatsOf('perf_001'))?.[0]?.status).toBe('locked');
    expect(await seats.seatsOf('perf_009')).toBeUndefined();
    expect(await seats.counts('perf_009')).toBeUndefined();
  });
});

describe('random holds and releases', () => {
  it('mixed quantities: every seat goes to at most one booking and a refusal only happens when too few are left', async () => {
    const seats = new MemorySeatStore([HALL]);
    const random = createRandom(4);
    const owner = new Map<string, string>();
    let granted = 0;
    let refusedWithRoom = 0;
    for (let i = 0; i < 1000; i++) {
      const quantity = 1 + Math.floor(random.next() * 6);
      const available = (await seats.counts('hall'))?.available ?? 0;
      const got = await hold(seats, 'hall', quantity, `bk_${i}`);
      if (typeof got === 'string') {
        expect(got).toBe('sold_out');
        if (available >= quantity) refusedWithRoom++;
      } else {
        expect(got).toHaveLength(quantity);
        for (const id of got) {
          expect(owner.has(id)).toBe(false);
          owner.set(id, `bk_${i}`);
        }
        granted += quantity;
        if (i % 7 === 0) {
          for (const id of await seats.release(`bk_${i - 3}`)) {
            owner.delete(id);
            granted -= 1;
          }
        }
      }
      const counts = (await seats.counts('hall')) ?? { held: -1, available: -1 };
      expect(counts.held).toBe(granted);
      expect(counts.available + counts.held).toBe(200);
    }
    expect(refusedWithRoom).toBe(0);
    for (const seat of (await seats.seatsOf('hall')) ?? []) expect(seat.bookingId).toBe(owner.get(seat.seatId) ?? null);
  });
});
