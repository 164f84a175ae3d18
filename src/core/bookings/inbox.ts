import type { Clock } from '../clock.ts';
import { DomainError, notFound, NotStoredYetError } from '../errors.ts';
import type { EventBus } from '../events.ts';
import type { IdFactory } from '../ids.ts';
import type { BookingStore } from '../ports.ts';
import type { Scheduler } from '../scheduler.ts';
import type { InboxEvent } from './booking.ts';
import type { Settlement } from './settlement.ts';

/**
 * The events inbox processor (document 003): each payment result written to the inbox is applied
 * `EVENT_PROCESSING_DELAY_MS` later by a due `booking.process-event` job. Success confirms the
 * booking (ledger transaction, seats sold); failure fails it (seats freed).
 *
 * Idempotent: the settlement runs before the event is marked processed and every step of it is
 * idempotent, so an event applied twice (a retried job, or a direct call) writes one ledger
 * transaction and makes one status event (with a store shared by several processes, the second
 * run makes it again, marked `again`, for a first making whose process may have died before its
 * webhook was queued: `Settlement.finish`). A booking already in the state its event leads to
 * is settled again (a run cut off after the status change, its seats not yet freed or sold, is
 * finished so); a booking in any other state is left as it is.
 * @see issue 4 "Events inbox", ../../../../shared/seeds/003_2d28ecb358825d26.txt
 */

export const PROCESS_JOB = 'booking.process-event';

export interface InboxProcessorDeps {
  clock: Clock;
  ids: IdFactory;
  bus: EventBus;
  bookings: BookingStore;
  scheduler: Scheduler;
  settlement: Settlement;
}

export class InboxProcessor {
  readonly #deps: InboxProcessorDeps;

  constructor(deps: InboxProcessorDeps) {
    this.#deps = deps;
    deps.scheduler.register(PROCESS_JOB, async (eventId) => {
      await this.process(eventId).catch((error: unknown) => {
        // Not stored (yet): the payment schedules the job before it writes the event, and with a
        // store shared by several replicas another one can run the job in between. Throwing makes
        // the scheduler retry it with backoff (MAX_ATTEMPTS), as an intent's decision does;
        // completing it here left the booking pending for good. An event evicted with its
        // booking is given up after the last attempt.
        if (error instanceof DomainError && error.code === 'NOT_FOUND') throw new NotStoredYetError(`inbox event ${eventId} is not stored (yet): its processing is retried`, { cause: error });
        throw error;
      });
    });
  }

  /** Applies an inbox event (see above); the event as it now is. NOT_FOUND for an unknown event. */
  async process(eventId: string): Promise<InboxEvent> {
    const { bookings, clock, bus, ids, settlement } = this.#deps;
    const event = await bookings.event(eventId);
    if (event === undefined) throw notFound('Event', eventId);
    if (event.processedAt !== null) return event;
    const booking = await bookings.get(event.bookingId);
    // Pending: settled now. Already in the state the event leads to: settled again, which finishes
    // a settlement cut off by a store that failed (its seats not yet freed or reserved); each step is idempotent.
    if (booking !== undefined && (booking.status === 'pending' || booking.status === (event.type === 'PAYMENT_SUCCEEDED' ? 'confirmed' : 'failed'))) {
      if (event.type === 'PAYMENT_SUCCEEDED') await settlement.confirm(booking);
      else await settlement.fail(booking);
    }
    const marked = await bookings.markEventProcessed(eventId, clock.now());
    if (marked === undefined) throw notFound('Event', eventId);
    if (marked.first) bus.publish({ id: ids('evt'), type: 'booking.event_processed', occurredAt: clock.now(), event: marked.event });
    return marked.event;
  }
}
