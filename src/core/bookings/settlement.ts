import type { Clock } from '../clock.ts';
import type { BookingEventType, EventBus } from '../events.ts';
import type { IdFactory } from '../ids.ts';
import { paymentTransaction } from '../ledger.ts';
import type { BookingStore, LedgerStore, SeatStore } from '../ports.ts';
import { copyBooking, type Booking } from './booking.ts';

/**
 * The end of a booking's payment, shared by the inbox processor (document 003) and the one-step
 * payment (document 004): confirm (ledger transaction, seats sold, status confirmed) or fail
 * (status failed, seats freed), each published on the bus.
 *
 * Each step is idempotent, so a settlement that runs twice (a retried job) does the work once:
 * the ledger posts one transaction per booking, reserving and releasing seats repeat harmlessly,
 * and the status change is guarded (`pending` only).
 */

export interface SettlementDeps {
  clock: Clock;
  ids: IdFactory;
  bus: EventBus;
  bookings: BookingStore;
  seats: SeatStore;
  ledger: LedgerStore;
}

export class Settlement {
  readonly #deps: SettlementDeps;

  constructor(deps: SettlementDeps) {
    this.#deps = deps;
  }

  /**
   * Ledger first: it is the step that validates, so a refusal leaves seats and status untouched.
   * A booking found no longer pending (which a payment's hold prevents) gets its ledger
   * transaction and seats undone, unless it is already confirmed (a second run).
   */
  async confirm(booking: Booking): Promise<Booking | undefined> {
    const { clock, ids, bookings, seats, ledger } = this.#deps;
    await ledger.post(paymentTransaction({ reference: booking.id, amount: booking.totalAmount, currency: booking.currency }, ids, clock.now()));
    await seats.reserve(booking.id);
    const result = await bookings.transition(booking.id, ['pending'], 'confirmed');
    if (result.ok) {
      this.publish('booking.confirmed', result.record);
      return result.record;
    }
    if (result.current?.status !== 'confirmed') {
      await ledger.removeReference(booking.id);
      await seats.release(booking.id);
    }
    return result.current;
  }

  async fail(booking: Booking): Promise<Booking | undefined> {
    const { bookings, seats } = this.#deps;
    const result = await bookings.transition(booking.id, ['pending'], 'failed');
    // Published as soon as it is failed: a release that fails then is done again by the retry.
    if (result.ok) this.publish('booking.failed', result.record);
    const status = result.ok ? result.record.status : result.current?.status;
    if (status === 'failed') await seats.release(booking.id);
    return result.ok ? result.record : result.current;
  }

  publish(type: BookingEventType, booking: Booking): void {
    const { bus, clock, ids } = this.#deps;
    // A snapshot of its own: what the caller is handed may be changed by the caller.
    bus.publish({ id: ids('evt'), type, occurredAt: clock.now(), booking: copyBooking(booking) });
  }
}
