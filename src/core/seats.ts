import { DomainError, notFound, validationFailed } from './errors.ts';
import { seatId, type Performance } from './performances.ts';

/**
 * Seat maps: which seat of which performance is free, held by a pending booking, or sold.
 * A seat is `available`, `locked` (held by one booking until `lockedUntil`) or `reserved` (paid).
 *
 * Every operation is synchronous and all-or-nothing, so on Node's single thread no two bookings
 * can ever be given the same seat. The map never releases a lapsed lock by itself: the booking
 * service owns expiry (a seat without its booking's state change would leave a pending booking
 * with nothing held), and it calls `release` when it expires a booking.
 * @see issue 4 "Seat holds", ../../shared/seeds/003_2d28ecb358825d26.txt (occupiedSeats)
 */

export type SeatStatus = 'available' | 'locked' | 'reserved';

export interface SeatView {
  seatId: string;
  row: string;
  number: number;
  status: SeatStatus;
  /** The booking holding or owning the seat; null when available. */
  bookingId: string | null;
  /** Epoch ms when a lock lapses; null unless locked. */
  lockedUntil: number | null;
}

export interface SeatCounts {
  total: number;
  available: number;
  /** Locked by a pending booking. */
  held: number;
  reserved: number;
}

interface Seat {
  seatId: string;
  row: string;
  rowIndex: number;
  number: number;
  status: SeatStatus;
  bookingId: string | null;
  lockedUntil: number | null;
}

/** The seats of one performance, row by row, front to back; seats in a row by number. */
class SeatMap {
  readonly performance: Performance;
  readonly rows: Seat[][];
  /** Available seats per row, so allocation skips rows that cannot fit a request. */
  readonly freeInRow: number[];
  readonly counts: SeatCounts;

  constructor(performance: Performance) {
    this.performance = performance;
    this.rows = performance.rows.map((row, rowIndex) =>
      Array.from({ length: performance.seatsPerRow }, (_, i) => ({
        seatId: seatId(row, i + 1),
        row,
        rowIndex,
        number: i + 1,
        status: 'available' as SeatStatus,
        bookingId: null,
        lockedUntil: null,
      })),
    );
    this.freeInRow = this.rows.map((row) => row.length);
    const total = performance.rows.length * performance.seatsPerRow;
    this.counts = { total, available: total, held: 0, reserved: 0 };
  }
}

interface Holding {
  map: SeatMap;
  seats: Seat[];
}

export class SeatInventory {
  readonly #maps = new Map<string, SeatMap>();
  readonly #byBooking = new Map<string, Holding>();

  constructor(performances: readonly Performance[]) {
    for (const performance of performances) this.#maps.set(performance.id, new SeatMap(performance));
  }

  /**
   * Locks `quantity` seats for `bookingId` until `until` (epoch ms) and returns their ids in seat order.
   *
   * Best available, deterministically:
   * 1. rows front to back (`A` first); in the first row that has `quantity` adjacent available
   *    seats, the run with the lowest seat numbers (`C7`,`C8` when C1–C6 are taken);
   * 2. when no row has such a run, the first `quantity` available seats front to back, lowest
   *    numbers first, across rows.
   *
   * All or nothing: NOT_FOUND for an unknown performance, SOLD_OUT when fewer than `quantity` seats
   * are available (nothing is locked), INVALID_STATE when the booking already holds seats.
   */
  hold(performanceId: string, quantity: number, bookingId: string, until: number): string[] {
    const map = this.#maps.get(performanceId);
    if (map === undefined) throw notFound('Performance', performanceId);
    if (!Number.isSafeInteger(quantity) || quantity < 1) {
      throw validationFailed([{ field: '/quantity', rule: 'minimum', message: 'must be a whole number of at least 1' }]);
    }
    if (this.#byBooking.has(bookingId)) throw new DomainError('INVALID_STATE', `Booking ${bookingId} already holds seats.`);
    if (map.counts.available < quantity) {
      throw new DomainError(
        'SOLD_OUT',
        `${performanceId} has ${map.counts.available} seat${map.counts.available === 1 ? '' : 's'} left; ${quantity} requested.`,
      );
    }
    const seats = adjacentRun(map, quantity) ?? firstAvailable(map, quantity);
    for (const seat of seats) {
      seat.status = 'locked';
      seat.bookingId = bookingId;
      seat.lockedUntil = until;
      map.freeInRow[seat.rowIndex]! -= 1;
    }
    map.counts.available -= seats.length;
    map.counts.held += seats.length;
    this.#byBooking.set(bookingId, { map, seats });
    return seats.map((s) => s.seatId);
  }

  /**
   * Frees every seat of a booking, locked or reserved, and returns their ids; a booking that holds
   * nothing returns [] (releasing is idempotent).
   */
  release(bookingId: string): string[] {
    const holding = this.#byBooking.get(bookingId);
    if (holding === undefined) return [];
    this.#byBooking.delete(bookingId);
    const { map, seats } = holding;
    for (const seat of seats) {
      if (seat.status === 'locked') map.counts.held -= 1;
      else if (seat.status === 'reserved') map.counts.reserved -= 1;
      seat.status = 'available';
      seat.bookingId = null;
      seat.lockedUntil = null;
      map.freeInRow[seat.rowIndex]! += 1;
    }
    map.counts.available += seats.length;
    return seats.map((s) => s.seatId);
  }

  /** Turns a booking's locked seats into reserved (sold) seats; INVALID_STATE when it holds none. */
  reserve(bookingId: string): string[] {
    const holding = this.#byBooking.get(bookingId);
    if (holding === undefined) throw new DomainError('INVALID_STATE', `Booking ${bookingId} holds no seats.`);
    const { map, seats } = holding;
    for (const seat of seats) {
      if (seat.status !== 'locked') continue;
      seat.status = 'reserved';
      seat.lockedUntil = null;
      map.counts.held -= 1;
      map.counts.reserved += 1;
    }
    return seats.map((s) => s.seatId);
  }

  /** Ids of the seats a booking locks or owns, in seat order; [] when none. */
  seatsOfBooking(bookingId: string): string[] {
    return this.#byBooking.get(bookingId)?.seats.map((s) => s.seatId) ?? [];
  }

  /** Every seat of a performance, front row first, with its state; NOT_FOUND when unknown. */
  seatsOf(performanceId: string): SeatView[] {
    const map = this.#maps.get(performanceId);
    if (map === undefined) throw notFound('Performance', performanceId);
    return map.rows.flatMap((row) =>
      row.map((s) => ({ seatId: s.seatId, row: s.row, number: s.number, status: s.status, bookingId: s.bookingId, lockedUntil: s.lockedUntil })),
    );
  }

  /** Seat counts of one performance, or summed over all of them. */
  counts(performanceId?: string): SeatCounts {
    if (performanceId !== undefined) {
      const map = this.#maps.get(performanceId);
      if (map === undefined) throw notFound('Performance', performanceId);
      return { ...map.counts };
    }
    const sum: SeatCounts = { total: 0, available: 0, held: 0, reserved: 0 };
    for (const map of this.#maps.values()) {
      sum.total += map.counts.total;
      sum.available += map.counts.available;
      sum.held += map.counts.held;
      sum.reserved += map.counts.reserved;
    }
    return sum;
  }

  has(performanceId: string): boolean {
    return this.#maps.has(performanceId);
  }
}

/** The lowest-numbered run of `quantity` adjacent available seats in the front-most row that has one. */
function adjacentRun(map: SeatMap, quantity: number): Seat[] | undefined {
  for (let r = 0; r < map.rows.length; r++) {
    if (map.freeInRow[r]! < quantity) continue;
    const row = map.rows[r]!;
    let runStart = 0;
    let runLength = 0;
    for (let i = 0; i < row.length; i++) {
      if (row[i]!.status !== 'available') {
        runLength = 0;
        continue;
      }
      if (runLength === 0) runStart = i;
      runLength += 1;
      if (runLength === quantity) return row.slice(runStart, runStart + quantity);
    }
  }
  return undefined;
}

/** The first `quantity` available seats, front to back, lowest numbers first. The caller checked there are enough. */
function firstAvailable(map: SeatMap, quantity: number): Seat[] {
  const seats: Seat[] = [];
  for (const row of map.rows) {
    for (const seat of row) {
      if (seat.status !== 'available') continue;
      seats.push(seat);
      if (seats.length === quantity) return seats;
    }
  }
  return seats;
}
