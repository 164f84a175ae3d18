import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram } from 'prom-client';
import { unavailableLog } from '../../adapters/redis/unavailable.ts';
import { fluxPayIds, OUTBOX_EVENT_TYPES } from '../../core/fluxpay/model.ts';
import { OutboxRelay } from '../../core/fluxpay/outbox.ts';
import { UsageSagas } from '../../core/fluxpay/saga.ts';
import { FluxPayService } from '../../core/fluxpay/service.ts';
import { createRandom } from '../../core/random.ts';
import { SubscriptionService } from '../../core/subscriptions/service.ts';
import { oncePerScrape } from './metrics.ts';

/**
 * FluxPay's engine (issue 11), built once per app from the core and its store ports: the
 * service, the usage sagas' orchestrator and the outbox relay; their metrics (outbox depth and
 * publish lag, events published, sagas finished and retried), the TTL sweep, and the shutdown
 * drain (the outbox published). The FluxPay dialect uses `app.fluxpay` and adds the publishers.
 */

export interface FluxPay {
  service: FluxPayService;
  /** Billing subscriptions (issue 12). */
  subscriptions: SubscriptionService;
  sagas: UsageSagas;
  relay: OutboxRelay;
}

declare module 'fastify' {
  interface FastifyInstance {
    fluxpay: FluxPay;
  }
}

const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export default fp(
  async (app) => {
    const { config, clock, ids: appIds, stores, scheduler, bus } = app.core;
    const ids = fluxPayIds(appIds);
    const store = stores.fluxpay;
    const registers = [app.metrics.registry];

    const published = new Counter({ name: 'fluxpay_outbox_published_total', help: 'FluxPay outbox events published to the subscribers, by event type.', labelNames: ['event_type'], registers });
    for (const eventType of OUTBOX_EVENT_TYPES) published.inc({ event_type: eventType }, 0);
    const publishDelay = new Histogram({
      name: 'fluxpay_outbox_publish_delay_seconds',
      help: 'Time from a FluxPay state change (its outbox event written) to the event published.',
      buckets: LAG_BUCKETS,
      registers,
    });
    const publishFailures = new Counter({ name: 'fluxpay_outbox_publish_failures_total', help: 'FluxPay outbox publications that failed (the relay retries them, in order).', registers });
    const sagasFinished = new Counter({ name: 'fluxpay_sagas_total', help: 'FluxPay usage sagas that ended, by status (COMPLETED or COMPENSATED).', labelNames: ['status'], registers });
    for (const status of ['COMPLETED', 'COMPENSATED']) sagasFinished.inc({ status }, 0);
    const sagaRetries = new Counter({ name: 'fluxpay_saga_retries_total', help: 'FluxPay saga steps (or compensations) whose store operation failed and that were scheduled again.', registers });

    const unavailable = unavailableLog(app.log, (failed) => `fluxpay: publishing the outbox failed ${failed} more ${failed === 1 ? 'time' : 'times'} since the last line: the store is unavailable; it will be retried`, () => clock.now());
    const relay = new OutboxRelay({
      store,
      scheduler,
      clock,
      // Shared by several replicas (Redis): as often as the scheduler looks for others' work.
      pollMs: config.scheduler.pollMs,
      onError: (error, event) => {
        publishFailures.inc();
        // The store unavailable (Redis away: each poll's read, a publication's mark): retried once it
        // is back, so one warning per 10 s with the count, as the scheduler's; anything else is an
        // error each, with its stack.
        const fields = { event_id: event?.eventId, event_type: event?.eventType };
        if (!unavailable(error, 'fluxpay: publishing the outbox failed: the store is unavailable; it will be retried', fields)) app.log.error({ err: error, ...fields }, 'fluxpay: publishing the outbox failed; it will be retried');
      },
      onPublished: (event, at) => {
        published.inc({ event_type: event.eventType });
        publishDelay.observe(Math.max(0, at - event.occurredAt) / 1000);
        // On the bus once published (not when written): in write order, after every subscriber
        // has it, so a watcher never sees an event the webhooks may still lose or reorder.
        bus.publish({ id: event.eventId, type: 'fluxpay.event', occurredAt: at, event: { ...event, status: 'PUBLISHED', publishedAt: at } });
      },
    });
    const sagas = new UsageSagas({
      store,
      scheduler,
      clock,
      ids,
      onChange: () => relay.kick(),
      onRetry: (error, sagaId) => {
        sagaRetries.inc();
        app.log.warn({ err: error, saga_id: sagaId }, 'fluxpay: a saga step failed; it will be retried');
      },
      onFinished: (saga) => sagasFinished.inc({ status: saga.status }),
    });
    const service = new FluxPayService({
      store,
      subscriptions: stores.fluxpaySubscriptions,
      sagas,
      relay,
      clock,
      // Its own generator, so FluxPay traffic does not shift the seeded sequence of other APIs' outcomes.
      random: createRandom(config.randomSeed),
      ids,
      settings: { usageTimeoutMs: config.fluxpay.usageTimeoutMs, scenarios: config.scenarios, policy: config.fluxpay.policy, maxSubscriptions: config.fluxpay.maxSubscriptions },
      bus,
    });
    const subscriptions = new SubscriptionService({
      store: stores.billing,
      fluxpay: service,
      relay,
      scheduler,
      clock,
      ids,
      settings: { policy: config.fluxpay.policy, dunningDelaysMs: config.fluxpay.dunningDelaysMs, timeScale: config.timeScale },
    });
    app.decorate('fluxpay', { service, subscriptions, sagas, relay });

    new Gauge({
      name: 'fluxpay_subscriptions',
      help: 'FluxPay billing subscriptions held, by status (ACTIVE, PAST_DUE, CANCELED until their period ends, EXPIRED until evicted).',
      labelNames: ['status'],
      registers,
      async collect() {
        await app.metrics.fromStore(
          () => stores.billing.counts(),
          (counts) => {
            for (const [status, count] of Object.entries(counts)) this.set({ status }, count);
          },
        );
      },
    });

    // One read of the outbox's figures per scrape feeds both outbox gauges.
    const outboxStats = oncePerScrape(() => store.outboxStats());
    new Gauge({
      name: 'fluxpay_outbox_depth',
      help: 'FluxPay outbox events written and not yet published.',
      registers,
      async collect() {
        await app.metrics.fromStore(outboxStats, ({ pending }) => this.set(pending));
      },
    });
    new Gauge({
      name: 'fluxpay_outbox_publish_lag_seconds',
      help: 'Age of the oldest FluxPay outbox event not yet published (0 when none waits).',
      registers,
      async collect() {
        await app.metrics.fromStore(outboxStats, ({ oldestPendingAt }) => this.set(oldestPendingAt === null ? 0 : Math.max(0, clock.now() - oldestPendingAt) / 1000));
      },
    });

    app.core.onSweep((now) => store.sweep(now));
    app.core.onSweep((now) => stores.billing.sweep(now));
    // What was written before a restart is published once the app is up (the scheduler has started); with a shared outbox, polled from then on.
    app.addHook('onReady', async () => relay.start());
    app.lifecycle.onDrain(async (budgetMs) => {
      // Handing off, the shared outbox is published by the others' relays.
      const left = await app.lifecycle.waitWhileOpen(
        app.lifecycle.handingOff ? 0 : budgetMs,
        async () => (await store.outboxStats()).pending,
        (pending) => pending === 0,
        () => relay.kick(),
      );
      // Closed during the drain (its namespace reset on another replica): nothing of it left to tell.
      if (app.lifecycle.closing) return;
      if (left > 0 && app.lifecycle.handingOff) app.log.info({ pending_outbox_events: left }, 'shutdown: FluxPay outbox events still unpublished are left in the shared outbox, for the other replicas to publish');
      else if (left > 0) app.log.warn({ pending_outbox_events: left }, 'shutdown: FluxPay outbox events still unpublished when the drain budget ran out (they stay in the outbox)');
      else app.log.info('shutdown: the FluxPay outbox is published');
    });
    app.addHook('onClose', async () => {
      await relay.stop();
      unavailable.flush();
    });
  },
  { name: 'paysim-fluxpay', dependencies: ['paysim-core', 'paysim-lifecycle', 'paysim-metrics'] },
);
