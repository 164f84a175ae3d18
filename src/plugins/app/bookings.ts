import fp from 'fastify-plugin';
import { Gauge } from 'prom-client';
import { InboxProcessor } from '../../core/bookings/inbox.ts';
import { BookingPayments } from '../../core/bookings/payments.ts';
import { Catalog, type Performance } from '../../core/bookings/performances.ts';
import { BookingService } from '../../core/bookings/service.ts';
import { Settlement } from '../../core/bookings/settlement.ts';
import { createRandom } from '../../core/random.ts';
import { BOOKING_PAYMENT_ABANDON } from '../../http/late-settles.ts';
import { oncePerScrape } from './metrics.ts';

/**
 * Bookings (issue 4): the booking service, its payments, the inbox processor and their shared
 * settlement, built once per app from the core and the stores; the seat and ledger gauges, this
 * part's share of the shutdown drain, and its TTL sweep. Both booking dialects (bookings,
 * payment-service) use `app.bookings`; neither knows the other.
 */

export interface Bookings {
  service: BookingService;
  payments: BookingPayments;
  inbox: InboxProcessor;
  performances: readonly Performance[];
}

declare module 'fastify' {
  interface FastifyInstance {
    bookings: Bookings;
  }
}

export default fp(
  async (app) => {
    const { config, clock, ids, bus, stores, scheduler } = app.core;
    const settings = config.bookings;
    const bookingConfig = {
      seatHoldMs: settings.seatHoldMs,
      eventProcessingDelayMs: settings.eventProcessingDelayMs,
      mockMinDelayMs: settings.mockMinDelayMs,
      mockMaxDelayMs: settings.mockMaxDelayMs,
    };
    const { bookings, seats, ledger } = stores;
    const settlement = new Settlement({ clock, ids, bus, bookings, seats, ledger, scheduler });
    const catalog = new Catalog(settings.performances);
    const service = new BookingService({
      clock,
      ids,
      bookings,
      seats,
      ledger,
      scheduler,
      settlement,
      catalog,
      config: bookingConfig,
      onCancelTookOver: ({ bookingId }) =>
        app.log.warn({ booking_id: bookingId }, 'booking cancel: the payment in flight had been for longer than its delay and a lease (its replica killed or stalled): ended, and the booking cancelled (expired, when its hold had passed)'),
    });
    const payments = new BookingPayments({
      clock,
      // Its own generator (seeded with RANDOM_SEED when set): booking traffic must not shift the
      // sequence of random intent outcomes that a seed makes reproducible.
      random: createRandom(config.randomSeed),
      ids,
      bus,
      bookings,
      seats,
      scheduler,
      settlement,
      config: bookingConfig,
      retryWhenStoreIsBack: (write) => app.core.lateSettles.add(write, BOOKING_PAYMENT_ABANDON),
      onTakeOver: ({ bookingId, side }) =>
        app.log.warn(
          { booking_id: bookingId },
          side === 'took_over'
            ? 'booking payment: the payment in flight had been for longer than its delay and a lease (its replica killed or stalled): ended, and this one began in its place'
            : 'booking payment: ended elsewhere while this process waited (another payment began in its place, this process taken for lost, or the hold’s backstop ended it): its result is not recorded, and it answers as the booking is now',
        ),
    });
    const inbox = new InboxProcessor({ clock, ids, bus, bookings, scheduler, settlement });

    const { registry, fromStore } = app.metrics;
    // One read of the seat counts per scrape feeds both seat gauges.
    const seatCounts = oncePerScrape(() => seats.counts());
    new Gauge({
      name: 'seats_held',
      help: 'Seats locked by pending bookings, over every performance.',
      registers: [registry],
      async collect() {
        await fromStore(seatCounts, (counts) => this.set(counts?.held ?? 0));
      },
    });
    new Gauge({
      name: 'seats_reserved',
      help: 'Seats sold to confirmed bookings, over every performance.',
      registers: [registry],
      async collect() {
        await fromStore(seatCounts, (counts) => this.set(counts?.reserved ?? 0));
      },
    });
    new Gauge({
      name: 'ledger_imbalance',
      help: 'Total ledger debits minus total credits, in minor units: always 0; anything else is a bug.',
      registers: [registry],
      async collect() {
        await fromStore(
          () => ledger.imbalance(),
          (imbalance) => this.set(imbalance),
        );
      },
    });

    app.decorate('bookings', { service, payments, inbox, performances: settings.performances });
    app.core.onSweep((now) => service.sweep(now));

    app.lifecycle.onDrain(async (budgetMs) => {
      // Handing off, only the payments on this process's own timers are waited for.
      const { handingOff } = app.lifecycle;
      const left = await app.lifecycle.waitWhileOpen(
        budgetMs,
        () => bookings.counts(),
        (counts) => (handingOff ? payments.inFlight === 0 : counts.paymentsInFlight + counts.unprocessedEvents === 0),
      );
      // Closed during the drain (its namespace reset on another replica): nothing of it left to tell.
      if (app.lifecycle.closing) return;
      const counts = { payments_in_flight: left.paymentsInFlight, unprocessed_events: left.unprocessedEvents };
      if (left.paymentsInFlight + left.unprocessedEvents === 0) {
        app.log.info('shutdown: every booking payment and inbox event was processed');
      } else if (handingOff && payments.inFlight === 0) {
        app.log.info(counts, 'shutdown: booking payments or events still unfinished are the other replicas’ (their payments, or due work on the shared scheduler)');
      } else if (app.core.scheduler.shared && payments.inFlight === 0) {
        // Shared (Redis): the counts are every replica's; the inbox's events are due work on the
        // shared scheduler, and the payments in flight are the others' (each waits on the timer of
        // the process that took it, so this one's own would be cut by its exit: warned below).
        app.log.info(counts, 'shutdown: booking payments or events still unfinished when the drain budget ran out are left to the other replicas (or the next start)');
      } else {
        app.log.warn(counts, 'shutdown: booking payments or events still unfinished when the drain budget ran out');
      }
    });
  },
  { name: 'paysim-bookings', dependencies: ['paysim-core', 'paysim-metrics', 'paysim-webhooks', 'paysim-lifecycle'] },
);
