import { seatId, type Performance } from '../../core/bookings/performances.ts';
import type { SeatStore } from '../../core/ports.ts';
import { chooseSeats, type HoldOutcome, type SeatCounts, type SeatStatus, type SeatView } from '../../core/seats.ts';

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
  readonly rows: Seat[][];
  /** Available seats per row, so allocation skips rows that cannot fit a request. */
  readonly freeInRow: number[];
  readonly counts: SeatCounts;

  constructor(performance: Performance) {
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

/**
 * The seat inventory in one process's memory: one seat map per performance of the catalog.
 * Every operation runs to completion synchronously, all or nothing, so no two bookings can ever
 * be given the same seat.
 */
export class MemorySeatStore implements SeatStore {
  readonly #maps = new Map<string, SeatMap>();
  readonly #byBooking = new Map<string, Holding>();

  constructor(performances: readonly Performance[]) {
    for (const performance of performances) this.#maps.set(performance.id, new SeatMap(performance));
  }

  hold(performanceId: string, quantity: number, bookingId: string, until: number): Promise<HoldOutcome> {
    const map = this.#maps.get(performanceId);
    if (map === undefined) return Promise.resolve({ kind: 'unknown_performance' });
    if (this.#byBooking.has(bookingId)) return Promise.resolve({ kind: 'already_holding' });
    if (!Number.isSafeInteger(quantity) || quantity < 1 || map.counts.available < quantity) {
      return Promise.resolve({ kind: 'sold_out', available: map.counts.available });
    }
    const seats = chooseSeats(map.rows, map.freeInRow, quantity).map(([r, i]) => (map.rows[r] as Seat[])[i] as Seat);
    for (const seat of seats) {
      seat.status = 'locked';
      seat.bookingId = bookingId;
      seat.lockedUntil = until;
      (map.freeInRow[seat.rowIndex] as number) -= 1;
    }
    map.counts.available -= seats.length;
    map.counts.held += seats.length;
    this.#byBooking.set(bookingId, { map, seats });
    return Promise.resolve({ kind: 'held', seatIds: seats.map((s) => s.seatId) });
  }

  release(bookingId: string): Promise<string[]> {
    return Promise.resolve(this.#free(bookingId, () => true));
  }

  releaseHeld(bookingId: string): Promise<string[]> {
    return Promise.resolve(this.#free(bookingId, (seat) => seat.status === 'locked'));
  }

  reserve(bookingId: string): Promise<string[]> {
    const holding = this.#byBooking.get(bookingId);
    if (holding === undefined) return Promise.resolve([]);
    const { map, seats } = holding;
    for (const seat of seats) {
      if (seat.status !== 'locked') continue;
      seat.status = 'reserved';
      seat.lockedUntil = null;
      map.counts.held -= 1;
      map.counts.reserved += 1;
    }
    return Promise.resolve(seats.map((s) => s.seatId));
  }

  forget(bookingId: string): Promise<void> {
    const holding = this.#byBooking.get(bookingId);
    if (holding !== undefined && holding.seats.every((seat) => seat.status !== 'locked')) this.#byBooking.delete(bookingId);
    return Promise.resolve();
  }

  /** Frees the booking's seats that `which` picks; the booking keeps the others. */
  #free(bookingId: string, which: (seat: Seat) => boolean): string[] {
    const holding = this.#byBooking.get(bookingId);
    if (holding === undefined) return [];
    const { map, seats } = holding;
    const freed = seats.filter(which);
    const kept = seats.filter((seat) => !which(seat));
    if (kept.length === 0) this.#byBooking.delete(bookingId);
    else this.#byBooking.set(bookingId, { map, seats: kept });
    for (const seat of freed) {
      if (seat.status === 'locked') map.counts.held -= 1;
      else if (seat.status === 'reserved') map.counts.reserved -= 1;
      seat.status = 'available';
      seat.bookingId = null;
      seat.lockedUntil = null;
      (map.freeInRow[seat.rowIndex] as number) += 1;
    }
    map.counts.available += freed.length;
    return freed.map((s) => s.seatId);
  }

  seatsOf(performanceId: string): Promise<SeatView[] | undefined> {
    const map = this.#maps.get(performanceId);
    if (map === undefined) return Promise.resolve(undefined);
    return Promise.resolve(
      map.rows.flatMap((row) => row.map((s) => ({ seatId: s.seatId, row: s.row, number: s.number, status: s.status, bookingId: s.bookingId, lockedUntil: s.lockedUntil }))),
    );
  }

  counts(performanceId?: string): Promise<SeatCounts | undefined> {
    if (performanceId !== undefined) {
      const map = this.#maps.get(performanceId);
      return Promise.resolve(map === undefined ? undefined : { ...map.counts });
    }
    const sum: SeatCounts = { total: 0, available: 0, held: 0, reserved: 0 };
    for (const map of this.#maps.values()) {
      sum.total += map.counts.total;
      sum.available += map.counts.available;
      sum.held += map.counts.held;
      sum.reserved += map.counts.reserved;
    }
    return Promise.resolve(sum);
  }
}
