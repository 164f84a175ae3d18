/**
 * Seat maps: which seat of which performance is free, held by a pending booking, or sold.
 * A seat is `available`, `locked` (held by one booking until `lockedUntil`) or `reserved` (paid).
 *
 * The store holds the maps and does each operation (hold N seats, release, reserve) as one atomic
 * step, so no two bookings can ever be given the same seat; this module holds the rule that picks
 * the seats. A lapsed lock is never released by the map itself: the booking service owns expiry
 * (a seat freed without its booking's state change would leave a pending booking holding nothing).
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

export type HoldOutcome =
  | { kind: 'held'; seatIds: string[] }
  | { kind: 'sold_out'; available: number }
  | { kind: 'unknown_performance' }
  | { kind: 'already_holding' };

/** The counts of a seat map (`SeatStore.seatsOf`), as the store keeps them. */
export function countsOf(seats: readonly Pick<SeatView, 'status'>[]): SeatCounts {
  const counts: SeatCounts = { total: seats.length, available: 0, held: 0, reserved: 0 };
  for (const seat of seats) {
    if (seat.status === 'available') counts.available += 1;
    else if (seat.status === 'locked') counts.held += 1;
    else counts.reserved += 1;
  }
  return counts;
}

/** A seat's place in its map: row index (front first) and seat index in the row. */
export type SeatPosition = readonly [row: number, seat: number];

/**
 * Picks `quantity` available seats, best available, deterministically:
 * 1. rows front to back (`A` first); in the first row that has `quantity` adjacent available
 *    seats, the run with the lowest seat numbers (`C7`,`C8` when C1–C6 are taken);
 * 2. when no row has such a run, the first `quantity` available seats front to back, lowest
 *    numbers first, across rows.
 * `freeInRow` (available seats per row) lets it skip rows that cannot fit a run. The caller has
 * checked that at least `quantity` seats are available.
 */
export function chooseSeats(rows: ReadonlyArray<ReadonlyArray<{ status: SeatStatus }>>, freeInRow: readonly number[], quantity: number): SeatPosition[] {
  return adjacentRun(rows, freeInRow, quantity) ?? firstAvailable(rows, quantity);
}

function adjacentRun(rows: ReadonlyArray<ReadonlyArray<{ status: SeatStatus }>>, freeInRow: readonly number[], quantity: number): SeatPosition[] | undefined {
  for (let r = 0; r < rows.length; r++) {
    if ((freeInRow[r] ?? 0) < quantity) continue;
    const row = rows[r] as ReadonlyArray<{ status: SeatStatus }>;
    let runStart = 0;
    let runLength = 0;
    for (let i = 0; i < row.length; i++) {
      if ((row[i] as { status: SeatStatus }).status !== 'available') {
        runLength = 0;
        continue;
      }
      if (runLength === 0) runStart = i;
      runLength += 1;
      if (runLength === quantity) return Array.from({ length: quantity }, (_, k) => [r, runStart + k] as const);
    }
  }
  return undefined;
}

function firstAvailable(rows: ReadonlyArray<ReadonlyArray<{ status: SeatStatus }>>, quantity: number): SeatPosition[] {
  const seats: SeatPosition[] = [];
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as ReadonlyArray<{ status: SeatStatus }>;
    for (let i = 0; i < row.length; i++) {
      if ((row[i] as { status: SeatStatus }).status !== 'available') continue;
      seats.push([r, i]);
      if (seats.length === quantity) return seats;
    }
  }
  return seats;
}
