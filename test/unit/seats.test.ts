import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/core/errors.ts';
import { DEFAULT_PERFORMANCES, type Performance } from '../../src/core/performances.ts';
import { createRandom } from '../../src/core/random.ts';
import { SeatInventory } from '../../src/core/seats.ts';
import { codeOf } from './support.ts';

const UNTIL = Date.UTC(2026, 0, 15, 12, 10, 0);

function perf(id: string, rows: string[], seatsPerRow: number): Performance {
  return { id, title: id, venue: 'Hall', startsAt: '2026-03-01T10:00:00.000Z', rows, seatsPerRow, priceMinor: 30000, currency: 'KRW' };
}

const HALL = perf('hall', ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'], 20);
const TINY = perf('tiny', ['A', 'B'], 3);

describe('hold', () => {
  it('gives the first booking the front row, lowest numbers, and locks the seats until the given time', () => {
    const seats = new SeatInventory([HALL]);
    expect(seats.hold('hall', 2, 'bk_1', UNTIL)).toEqual(['A1', 'A2']);
    expect(seats.hold('hall', 3, 'bk_2', UNTIL)).toEqual(['A3', 'A4', 'A5']);
    const view = seats.seatsOf('hall');
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
    expect(seats.counts('hall')).toEqual({ total: 200, available: 195, held: 5, reserved: 0 });
  });

  it('keeps a party together in the front-most row that has room: C7, C8', () => {
    const seats = new SeatInventory([HALL]);
    seats.hold('hall', 20, 'bk_a', UNTIL); // A1–A20
    seats.hold('hall', 19, 'bk_b', UNTIL); // B1–B19, B20 left alone
    expect(seats.hold('hall', 6, 'bk_c', UNTIL)).toEqual(['C1', 'C2', 'C3', 'C4', 'C5', 'C6']);
    expect(seats.hold('hall', 2, 'bk_d', UNTIL)).toEqual(['C7', 'C8']);
    expect(seats.hold('hall', 1, 'bk_e', UNTIL)).toEqual(['B20']);
  });

  it('fills the lowest gap that fits, skipping gaps that are too small', () => {
    const seats = new SeatInventory([HALL]);
    seats.hold('hall', 2, 'bk_1', UNTIL); // A1 A2
    seats.hold('hall', 3, 'bk_2', UNTIL); // A3–A5
    seats.hold('hall', 15, 'bk_3', UNTIL); // A6–A20
    seats.release('bk_1');
    expect(seats.hold('hall', 3, 'bk_4', UNTIL)).toEqual(['B1', 'B2', 'B3']);
    seats.release('bk_2');
    expect(seats.hold('hall', 4, 'bk_5', UNTIL)).toEqual(['A1', 'A2', 'A3', 'A4']);
    expect(seats.hold('hall', 1, 'bk_6', UNTIL)).toEqual(['A5']);
  });

  it('splits a party across rows only when no row has enough adjacent seats, front to back', () => {
    const seats = new SeatInventory([TINY]);
    expect(seats.hold('tiny', 2, 'bk_1', UNTIL)).toEqual(['A1', 'A2']);
    expect(seats.hold('tiny', 2, 'bk_2', UNTIL)).toEqual(['B1', 'B2']);
    expect(seats.hold('tiny', 2, 'bk_3', UNTIL)).toEqual(['A3', 'B3']);
    expect(seats.counts('tiny')).toEqual({ total: 6, available: 0, held: 6, reserved: 0 });
  });

  it('is all or nothing: SOLD_OUT when fewer seats are left than asked, and nothing is locked', () => {
    const seats = new SeatInventory([TINY]);
    seats.hold('tiny', 4, 'bk_1', UNTIL);
    const before = seats.seatsOf('tiny');
    expect(() => seats.hold('tiny', 3, 'bk_2', UNTIL)).toThrow('tiny has 2 seats left; 3 requested.');
    expect(codeOf(() => seats.hold('tiny', 3, 'bk_2', UNTIL))).toBe('SOLD_OUT');
    expect(seats.seatsOf('tiny')).toEqual(before);
    expect(seats.seatsOfBooking('bk_2')).toEqual([]);
    expect(seats.hold('tiny', 2, 'bk_2', UNTIL)).toEqual(['B2', 'B3']);
    expect(codeOf(() => seats.hold('tiny', 1, 'bk_3', UNTIL))).toBe('SOLD_OUT');
  });

  it('refuses an unknown performance, a bad quantity and a booking that already holds seats', () => {
    const seats = new SeatInventory([TINY]);
    expect(codeOf(() => seats.hold('nope', 1, 'bk_1', UNTIL))).toBe('NOT_FOUND');
    expect(codeOf(() => seats.hold('tiny', 0, 'bk_1', UNTIL))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => seats.hold('tiny', 1.5, 'bk_1', UNTIL))).toBe('VALIDATION_FAILED');
    seats.hold('tiny', 1, 'bk_1', UNTIL);
    expect(codeOf(() => seats.hold('tiny', 1, 'bk_1', UNTIL))).toBe('INVALID_STATE');
    expect(seats.counts('tiny').held).toBe(1);
  });
});

describe('release and reserve', () => {
  it('reserve turns locks into sales; release frees locked or reserved seats and is idempotent', () => {
    const seats = new SeatInventory([TINY]);
    seats.hold('tiny', 2, 'bk_1', UNTIL);
    seats.hold('tiny', 1, 'bk_2', UNTIL);
    expect(seats.reserve('bk_1')).toEqual(['A1', 'A2']);
    expect(seats.seatsOf('tiny').slice(0, 3)).toEqual([
      { seatId: 'A1', row: 'A', number: 1, status: 'reserved', bookingId: 'bk_1', lockedUntil: null },
      { seatId: 'A2', row: 'A', number: 2, status: 'reserved', bookingId: 'bk_1', lockedUntil: null },
      { seatId: 'A3', row: 'A', number: 3, status: 'locked', bookingId: 'bk_2', lockedUntil: UNTIL },
    ]);
    expect(seats.counts('tiny')).toEqual({ total: 6, available: 3, held: 1, reserved: 2 });
    expect(seats.reserve('bk_1')).toEqual(['A1', 'A2']);
    expect(seats.counts('tiny')).toEqual({ total: 6, available: 3, held: 1, reserved: 2 });

    expect(seats.release('bk_2')).toEqual(['A3']);
    expect(seats.release('bk_2')).toEqual([]);
    expect(seats.counts('tiny')).toEqual({ total: 6, available: 4, held: 0, reserved: 2 });
    expect(seats.release('bk_1')).toEqual(['A1', 'A2']);
    expect(seats.counts('tiny')).toEqual({ total: 6, available: 6, held: 0, reserved: 0 });
    expect(seats.seatsOf('tiny').every((s) => s.status === 'available' && s.bookingId === null && s.lockedUntil === null)).toBe(true);
  });

  it('refuses to reserve for a booking that holds nothing', () => {
    const seats = new SeatInventory([TINY]);
    expect(codeOf(() => seats.reserve('bk_x'))).toBe('INVALID_STATE');
  });

  it('lets a booking id hold again once released', () => {
    const seats = new SeatInventory([TINY]);
    seats.hold('tiny', 1, 'bk_1', UNTIL);
    seats.release('bk_1');
    expect(seats.hold('tiny', 1, 'bk_1', UNTIL)).toEqual(['A1']);
  });
});

describe('queries', () => {
  it('sums counts over every performance and returns copies', () => {
    const seats = new SeatInventory(DEFAULT_PERFORMANCES);
    seats.hold('perf_001', 3, 'bk_1', UNTIL);
    seats.hold('perf_003', 2, 'bk_2', UNTIL);
    seats.reserve('bk_2');
    expect(seats.counts()).toEqual({ total: 420, available: 415, held: 3, reserved: 2 });
    const view = seats.seatsOf('perf_001');
    view[0]!.status = 'available';
    expect(seats.seatsOf('perf_001')[0]!.status).toBe('locked');
    expect(seats.seatsOfBooking('bk_1')).toEqual(['A1', 'A2', 'A3']);
    expect(seats.has('perf_002')).toBe(true);
    expect(seats.has('perf_009')).toBe(false);
    expect(codeOf(() => seats.seatsOf('perf_009'))).toBe('NOT_FOUND');
    expect(codeOf(() => seats.counts('perf_009'))).toBe('NOT_FOUND');
  });
});

describe('no seat is ever held twice', () => {
  it('1,000 holds of one seat against 200 seats: exactly 200 held, 800 SOLD_OUT', () => {
    const seats = new SeatInventory([HALL]);
    const held: string[] = [];
    const refused: string[] = [];
    for (let i = 0; i < 1000; i++) {
      try {
        held.push(...seats.hold('hall', 1, `bk_${i}`, UNTIL));
      } catch (error) {
        refused.push((error as DomainError).code);
      }
    }
    expect(held).toHaveLength(200);
    expect(new Set(held).size).toBe(200);
    expect(refused).toHaveLength(800);
    expect(new Set(refused)).toEqual(new Set(['SOLD_OUT']));
    expect(seats.counts('hall')).toEqual({ total: 200, available: 0, held: 200, reserved: 0 });
  });

  it('mixed quantities: every seat goes to at most one booking and a refusal only happens when too few are left', () => {
    const seats = new SeatInventory([HALL]);
    const random = createRandom(4);
    const owner = new Map<string, string>();
    let granted = 0;
    let refusedWithRoom = 0;
    for (let i = 0; i < 1000; i++) {
      const quantity = 1 + Math.floor(random.next() * 6);
      const available = seats.counts('hall').available;
      try {
        const got = seats.hold('hall', quantity, `bk_${i}`, UNTIL);
        expect(got).toHaveLength(quantity);
        for (const id of got) {
          expect(owner.has(id)).toBe(false);
          owner.set(id, `bk_${i}`);
        }
        granted += quantity;
        if (i % 7 === 0) {
          for (const id of seats.release(`bk_${i - 3}`)) {
            owner.delete(id);
            granted -= 1;
          }
        }
      } catch (error) {
        expect((error as DomainError).code).toBe('SOLD_OUT');
        if (available >= quantity) refusedWithRoom++;
      }
      const counts = seats.counts('hall');
      expect(counts.held).toBe(granted);
      expect(counts.available + counts.held).toBe(200);
    }
    expect(refusedWithRoom).toBe(0);
    for (const seat of seats.seatsOf('hall')) {
      expect(seat.bookingId).toBe(owner.get(seat.seatId) ?? null);
    }
  });
});
