import type { Clock } from '../clock.ts';
import type { BookingEvent, BookingEventType, EventBus } from '../events.ts';
import { derivedId, type IdFactory } from '../ids.ts';
import { paymentTransaction } from '../ledger.ts';
import type { BookingStore, LedgerStore, SeatStore, Transition } from '../ports.ts';
import type { Scheduler } from '../scheduler.ts';
import { copyBooking, type Booking } from './booking.ts';

/**
 * The end of a booking: its payment's settlement, shared by the inbox processor (document 003) and
 * the one-step payment (document 004), confirm (ledger transaction, seats sold, status confirmed)
 * or fail (status failed, seats freed); and `finish`, which every way out of pending (these two,
 * a cancel, an expiry) ends with: the status event told, the seats freed, the expiry job cancelled.
 *
 * Each step is idempotent, so a settlement that runs twice (a retried job) does the work once:
 * the ledger posts one transaction per booking, reserving and releasing seats repeat harmlessly,
 * and the status change is guarded (`pending` only).
 *
 * With a store shared by several processes, the booking's `booking.expire` job is its status
 * event's backstop, as a native cancel has its job: it stays until the event's durable effects are
 * done (its webhook logged and queued), so a process killed in between (or a store that fails
 * then) leaves the event to that job, here or on another replica, which makes the same event
 * again (its id and time derived from the booking's id and `settledAt`). A settlement run again
 * (a job whose process died) that finds the booking already in its state makes it again too.
 * @see issue 14 "kill -9"
 */

export const EXPIRE_JOB = 'booking.expire';

export interface SettlementDeps {
  clock: Clock;
  ids: IdFactory;
  bus: EventBus;
  bookings: BookingStore;
  seats: SeatStore;
  ledger: LedgerStore;
  scheduler: Scheduler;
}

type SettledEventType = Exclude<BookingEventType, 'booking.created'>;

export class Settlement {
  readonly #deps: SettlementDeps;

  constructor(deps: SettlementDeps) {
    this.#deps = deps;
  }

  /**
   * Ledger first: it is the step that validates, so a refusal leaves seats and status untouched.
   * A booking found no longer pending (which a payment's hold prevents) gets its ledger
   * transaction and seats undone, unless it is already confirmed (a second run); one whose seats
   * are no longer its own fails, its ledger transaction undone.
   */
  async confirm(booking: Booking): Promise<Booking | undefined> {
    const { clock, ids, bookings, seats, ledger } = this.#deps;
    await ledger.post(paymentTransaction({ reference: booking.id, amount: booking.totalAmount, currency: booking.currency }, ids, clock.now()));
    // Fewer seats reserved than booked: they were lost (Redis lost the seat map alone, and a hold
    // may have been given them since), so the booking is not confirmed: its payment undone, it fails.
    if ((await seats.reserve(booking.id)).length < booking.quantity) {
      await ledger.removeReference(booking.id);
      return this.fail(booking);
    }
    const at = clock.now();
    const result = await bookings.transition(booking.id, ['pending'], 'confirmed', at);
    const settled = settledBy(result, 'confirmed');
    if (settled !== undefined) {
      await this.finish(settled.booking, settled.again);
      return settled.booking;
    }
    await ledger.removeReference(booking.id);
    await seats.release(booking.id);
    return result.ok ? result.record : result.current;
  }

  async fail(booking: Booking): Promise<Booking | undefined> {
    const at = this.#deps.clock.now();
    const result = await this.#deps.bookings.transition(booking.id, ['pending'], 'failed', at);
    const settled = settledBy(result, 'failed');
    if (settled !== undefined) await this.finish(settled.booking, settled.again);
    return result.ok ? result.record : result.current;
  }

  /**
   * What follows a booking's leaving pending (`booking` as it left it): its status event, then its
   * seats freed (failed, expired, cancelled; releasing is idempotent), then its expiry job cancelled,
   * its work done. With a shared store the event's durable effects are awaited first; when they
   * fail, the failure is reported and the expiry job (re)scheduled a lease later, to make the event
   * again, and the caller goes on (the change is stored: a client answered 503 would retry a
   * change already made). `again`: the event is made again (not counted twice), and with one
   * process only, where nothing is lost, it is not made at all.
   */
  async finish(booking: Booking, again = false): Promise<void> {
    const { bus, seats, scheduler, clock } = this.#deps;
    const event = statusEvent(booking, again);
    let told = true;
    if (!scheduler.shared) {
      if (event !== undefined && !again) bus.publish(event);
    } else if (event !== undefined) {
      try {
        await bus.publishDurable(event);
      } catch (error) {
        told = false;
        bus.report(error, event);
        await scheduler.schedule(EXPIRE_JOB, booking.id, clock.now() + scheduler.leaseMs);
      }
    }
    if (booking.status !== 'confirmed') await seats.release(booking.id);
    // Tidiness only when it fails: the job finds the booking settled, makes its event again (sent once per URL) and ends.
    if (told) await scheduler.cancel(EXPIRE_JOB, booking.id).catch(() => false);
  }

  /** `booking.created` (not a webhook: told on the bus alone). */
  created(booking: Booking): void {
    const { bus, clock, ids } = this.#deps;
    // A snapshot of its own: what the caller is handed may be changed by the caller.
    bus.publish({ id: ids('evt'), type: 'booking.created', occurredAt: clock.now(), booking: copyBooking(booking) });
  }
}

/**
 * The settled booking of a transition to `to`: the booking it stored; or, refused, the booking
 * found already in `to` (a second run: its event made again). Undefined when it is in another
 * state. (The same call run again by the Redis client after a lost reply is answered as stored by
 * the store itself: its call token.)
 */
function settledBy(result: Transition<Booking>, to: Booking['status']): { booking: Booking; again: boolean } | undefined {
  if (result.ok) return { booking: result.record, again: false };
  if (result.current?.status !== to) return undefined;
  return { booking: result.current, again: true };
}

/**
 * The event of a booking that left pending: `booking.<status>`, its id derived from the booking's
 * id and `settledAt`, which is its time, so the event made again is the same event. A booking
 * settled before `settledAt` was kept has none: its event cannot be made again (undefined).
 */
export function statusEvent(booking: Booking, again = false): BookingEvent | undefined {
  if (booking.status === 'pending' || booking.settledAt === null) return undefined;
  const type: SettledEventType = `booking.${booking.status}`;
  // A snapshot of its own: what the caller is handed may be changed by the caller.
  const event: BookingEvent = { id: derivedId('evt', booking.settledAt, booking.id), type, occurredAt: booking.settledAt, booking: copyBooking(booking) };
  if (again) event.again = true;
  return event;
}
