import type { Delivery } from '../core/deliveries.ts';
import type { DeliveryQueue } from '../core/ports.ts';

/**
 * What a dispatcher holds of a shared delivery queue (Redis): the deliveries taken from it and not
 * yet acknowledged, each under the ticket (stream entry) it came with, and those whose attempt is
 * in flight. A delivery can come twice (a second entry of it: its retry queued twice, by a retry
 * job run again after its lease lapsed); it is attempted once per change of it:
 * - a second entry while the first waits in its lane: the first is acknowledged and its lane item
 *   passed over (`superseded`); before 2026-12-04 both were attempted;
 * - a second entry while the first's attempt is in flight: the first is acknowledged by its
 *   attempt's end, and the second is read again once that attempt has ended (`inFlightBefore`,
 *   then the dispatcher's check of the log); before 2026-12-04 (later that day) it was sent again
 *   after the first, even when the receiver had answered 2xx.
 * A memory queue hands deliveries over without a ticket: nothing is held here then.
 */
export class QueueHoldings {
  readonly #queue: DeliveryQueue;
  readonly #onError: (error: unknown, context: string) => void;
  /** The ticket of each delivery taken and not yet acknowledged: its latest entry's. */
  readonly #tickets = new Map<string, string>();
  /** The ticket each delivery handed over came with. */
  readonly #ticketOf = new WeakMap<Delivery, string>();
  /** The deliveries whose attempt is in flight, with its ticket and its end (recorded or not). At most one per delivery. */
  readonly #inFlight = new Map<string, { ticket: string; end: PromiseWithResolvers<void> }>();
  /** Deliveries handed over while an attempt of theirs was in flight, with that attempt's end. */
  readonly #recheck = new WeakMap<Delivery, Promise<void>>();

  constructor(queue: DeliveryQueue, onError: (error: unknown, context: string) => void) {
    this.#queue = queue;
    this.#onError = onError;
  }

  /** A delivery handed over under `ticket`: held from now on, under that ticket. */
  take(delivery: Delivery, ticket: string): void {
    const earlier = this.#tickets.get(delivery.id);
    const inFlight = this.#inFlight.get(delivery.id);
    if (inFlight !== undefined) this.#recheck.set(delivery, inFlight.end.promise);
    // Acknowledged rather than left held (and kept from other consumers) for good; one in flight is its attempt's to acknowledge.
    if (earlier !== undefined && earlier !== ticket && earlier !== inFlight?.ticket) {
      void this.#queue.ack(earlier).catch((error: unknown) => this.#onError(error, `acknowledging a second entry of delivery ${delivery.id}`));
    }
    this.#tickets.set(delivery.id, ticket);
    this.#ticketOf.set(delivery, ticket);
  }

  /** The ticket the delivery was handed over with; none when it came from a memory queue. */
  ticketOf(delivery: Delivery): string | undefined {
    return this.#ticketOf.get(delivery);
  }

  /** Handed over under a ticket that is no longer the delivery's: a later entry of it came while this one waited, and is attempted instead. */
  superseded(delivery: Delivery): boolean {
    const ticket = this.#ticketOf.get(delivery);
    return ticket !== undefined && this.#tickets.get(delivery.id) !== ticket;
  }

  /** The end of an attempt that was in flight when the delivery was handed over, if one was: it is read again after it. */
  inFlightBefore(delivery: Delivery): Promise<void> | undefined {
    return this.#recheck.get(delivery);
  }

  /** The delivery is held (taken, not yet acknowledged). */
  holds(id: string): boolean {
    return this.#tickets.has(id);
  }

  /**
   * The attempt of a delivery held under `ticket` begins: it is in flight, no longer waiting (the
   * queue is told, not awaited: an attempt that waited for Redis's answer found its dispatcher
   * closing meanwhile and left the delivery pending, a CI run saw it; one taken over by another
   * process meanwhile is still made, its result recorded only as the log allows).
   */
  begin(id: string, ticket: string): void {
    this.#inFlight.set(id, { ticket, end: Promise.withResolvers<void>() });
    void this.#queue.begin(ticket);
  }

  /**
   * The entry of a delivery held under `ticket` is another process's now (it took it over while
   * this one's attempt was in flight): dropped here and in the queue, neither acknowledged nor
   * handed back; that process acknowledges it. True when the delivery is held no longer.
   */
  lost(id: string, ticket: string): boolean {
    this.#drop(id, ticket);
    this.#queue.forget(ticket);
    return !this.#tickets.has(id);
  }

  /** No longer holds `ticket`'s delivery, nor has its attempt in flight; whether `ticket` was its latest entry. */
  #drop(id: string, ticket: string): boolean {
    const current = this.#tickets.get(id) === ticket;
    if (current) this.#tickets.delete(id);
    const inFlight = this.#inFlight.get(id);
    if (inFlight?.ticket === ticket) {
      this.#inFlight.delete(id);
      inFlight.end.resolve();
    }
    return current;
  }

  /**
   * Acknowledges the entry once its attempt's result is recorded; else hands it back to the queue.
   * True when the delivery is held no longer (no later entry of it came meanwhile). A store that
   * fails is reported: the entry is then taken over once idle, by a replica that reads the log first.
   */
  async end(id: string, ticket: string, recorded: boolean): Promise<boolean> {
    const current = this.#drop(id, ticket);
    try {
      if (recorded) await this.#queue.ack(ticket);
      else this.#queue.release(ticket);
    } catch (error) {
      this.#onError(error, `acknowledging webhook delivery ${id}`);
    }
    return current;
  }

  /** Hands back every delivery held whose attempt has not begun (a close); answers their ids. */
  releaseWaiting(): string[] {
    const released: string[] = [];
    for (const [id, ticket] of this.#tickets) {
      if (this.#inFlight.get(id)?.ticket === ticket) continue;
      this.#tickets.delete(id);
      this.#queue.release(ticket);
      released.push(id);
    }
    return released;
  }
}
