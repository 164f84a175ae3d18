import { setTimeout as delay } from 'node:timers/promises';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram } from 'prom-client';
import { BOOKING_STATUSES, BookingService } from '../../core/bookings.ts';
import { Ledger } from '../../core/ledger.ts';
import type { Performance } from '../../core/performances.ts';
import { createRandom } from '../../core/random.ts';
import { SeatInventory } from '../../core/seats.ts';
import { isBookingEvent } from '../../core/events.ts';
import { bookingWebhookOf } from '../../webhooks/bookings.ts';

/**
 * Bookings (issue 4): the seat inventory, the ledger and the booking service, built once per app
 * from the core's clock, ids and bus and the configuration; the expiry sweeper, the metrics, the
 * booking webhooks and this part's share of the shutdown drain. Both booking APIs (routes/bookings,
 * routes/payment-service) use `app.bookings`; neither knows the other.
 */

export interface Bookings {
  service: BookingService;
  seats: SeatInventory;
  ledger: Ledger;
  performances: readonly Performance[];
}

declare module 'fastify' {
  interface FastifyInstance {
    bookings: Bookings;
  }
}

/** Processing lag is EVENT_PROCESSING_DELAY_MS (50 ms by default) plus timer slack. */
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** How often the shutdown drain looks whether payments and events are done. */
const DRAIN_POLL_MS = 10;

export default fp(
  async (app) => {
    const { config, clock, ids, bus } = app.core;
    const settings = config.bookings;
    const { registry } = app.metrics;

    const bookingsTotal = new Counter({
      name: 'bookings_total',
      help: 'Bookings that reached each status: pending when created, then confirmed, failed, expired or cancelled.',
      labelNames: ['status'],
      registers: [registry],
    });
    for (const status of BOOKING_STATUSES) bookingsTotal.inc({ status }, 0);
    const payments = new Counter({
      name: 'payments_executed_total',
      help: 'Booking payments decided (POST /payments/execute and /api/v1/payments/process), by result and failure code ("none" on success).',
      labelNames: ['result', 'failure_code'],
      registers: [registry],
    });
    payments.inc({ result: 'success', failure_code: 'none' }, 0);
    const lag = new Histogram({
      name: 'booking_event_processing_lag_seconds',
      help: 'Time from a payment result entering the events inbox to the processor applying it.',
      buckets: LAG_BUCKETS,
      registers: [registry],
    });

    const performances = settings.performances;
    const seats = new SeatInventory(performances);
    const ledger = new Ledger({ clock, ids });
    const service = new BookingService({
      clock,
      // Its own generator (seeded with RANDOM_SEED when set): booking traffic must not shift the
      // sequence of random intent outcomes that a seed makes reproducible.
      random: createRandom(config.randomSeed),
      ids,
      bus,
      seats,
      ledger,
      performances,
      config: {
        seatHoldMs: settings.seatHoldMs,
        eventProcessingDelayMs: settings.eventProcessingDelayMs,
        mockMinDelayMs: settings.mockMinDelayMs,
        mockMaxDelayMs: settings.mockMaxDelayMs,
        bookingTtlMs: settings.ttlMs,
        maxBookings: settings.maxBookings,
      },
      onError: (error, context) => app.log.error({ err: error }, `bookings: ${context} failed`),
      observer: {
        onBooked: () => bookingsTotal.inc({ status: 'pending' }),
        onPayment: (p) => payments.inc({ result: p.isSuccess ? 'success' : 'failure', failure_code: p.failureCode ?? 'none' }),
        onEventProcessed: (event) => lag.observe(((event.processedAt ?? event.createdAt) - event.createdAt) / 1000),
      },
    });

    new Gauge({
      name: 'seats_held',
      help: 'Seats locked by pending bookings, over every performance.',
      registers: [registry],
      collect() {
        this.set(seats.counts().held);
      },
    });
    new Gauge({
      name: 'seats_reserved',
      help: 'Seats sold to confirmed bookings, over every performance.',
      registers: [registry],
      collect() {
        this.set(seats.counts().reserved);
      },
    });
    new Gauge({
      name: 'ledger_imbalance',
      help: 'Total ledger debits minus total credits, in minor units: always 0; anything else is a bug.',
      registers: [registry],
      collect() {
        this.set(ledger.imbalance());
      },
    });

    const { dispatcher } = app.webhooks;
    bus.subscribe((event) => {
      if (!isBookingEvent(event)) return;
      bookingsTotal.inc({ status: event.booking.status });
      const webhook = bookingWebhookOf(event);
      if (webhook !== undefined) dispatcher.deliver(webhook);
    });

    service.start();
    app.decorate('bookings', { service, seats, ledger, performances });

    app.lifecycle.onDrain(async (budgetMs) => {
      // Real time, like the other drainers: a test's manual clock never moves on its own.
      const deadline = Date.now() + budgetMs;
      const unfinished = (): { paymentsInFlight: number; unprocessedEvents: number } => {
        const { paymentsInFlight, unprocessedEvents } = service.counts();
        return { paymentsInFlight, unprocessedEvents };
      };
      let left = unfinished();
      while (left.paymentsInFlight + left.unprocessedEvents > 0 && Date.now() < deadline) {
        await delay(Math.min(DRAIN_POLL_MS, deadline - Date.now()), undefined, { ref: false });
        left = unfinished();
      }
      if (left.paymentsInFlight + left.unprocessedEvents > 0) {
        app.log.warn({ payments_in_flight: left.paymentsInFlight, unprocessed_events: left.unprocessedEvents }, 'shutdown: booking payments or events still unfinished when the drain budget ran out');
      } else {
        app.log.info('shutdown: every booking payment and inbox event was processed');
      }
    });
    app.addHook('onClose', async () => service.stop());
  },
  { name: 'paysim-bookings', dependencies: ['paysim-core', 'paysim-metrics', 'paysim-webhooks', 'paysim-lifecycle'] },
);
