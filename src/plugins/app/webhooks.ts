import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram } from 'prom-client';
import { Agent } from 'undici';
import { isPaymentEvent } from '../../core/events.ts';
import { DeliveryLog } from '../../webhooks/delivery-log.ts';
import { WebhookDispatcher } from '../../webhooks/dispatcher.ts';
import { nativeWebhookOf } from '../../webhooks/native.ts';

/**
 * Webhook delivery: one dispatcher and one undici Agent per app, fed from the event bus, with its
 * metrics, its share of the shutdown drain, and its log swept with the stores.
 */

export interface Webhooks {
  dispatcher: WebhookDispatcher;
  log: DeliveryLog;
}

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: Webhooks;
  }
}

/** How many ids of unfinished deliveries a shutdown log line lists. */
const MAX_IDS_LOGGED = 100;

export default fp(
  async (app) => {
    const { config, clock, ids, bus } = app.core;
    const settings = config.webhook;
    const agent = new Agent({
      keepAliveTimeout: 10_000,
      connections: settings.originConcurrency,
      connect: { timeout: settings.timeoutMs },
    });
    const log = new DeliveryLog({ ttlMs: settings.logTtlMs, maxDeliveries: settings.logMax });

    const { registry } = app.metrics;
    const results = new Counter({
      name: 'webhook_deliveries_total',
      help: 'Webhook delivery outcomes: delivered, retried (a retry was scheduled), failed (final), dropped (queue full or shutting down).',
      labelNames: ['result'],
      registers: [registry],
    });
    for (const result of ['delivered', 'retried', 'failed', 'dropped']) results.inc({ result }, 0);
    const attemptDuration = new Histogram({
      name: 'webhook_attempt_duration_seconds',
      help: 'Duration of one webhook attempt, from sending the request to reading the response.',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });

    const dispatcher = new WebhookDispatcher({
      clock,
      ids,
      log,
      agent,
      keys: { secrets: [config.webhookSecret, ...(settings.previousSecret === undefined ? [] : [settings.previousSecret])], schemes: settings.schemes },
      settings,
      observer: {
        onResult: (result) => results.inc({ result }),
        onAttempt: (seconds, ok) => attemptDuration.observe({ outcome: ok ? 'success' : 'failure' }, seconds),
      },
    });
    new Gauge({
      name: 'webhook_queue_depth',
      help: 'Webhook deliveries waiting for a worker (not counting those waiting on a retry timer).',
      registers: [registry],
      collect() {
        this.set(dispatcher.queueDepth);
      },
    });
    new Gauge({
      name: 'webhook_in_flight',
      help: 'Webhook attempts in flight.',
      registers: [registry],
      collect() {
        this.set(dispatcher.inFlight);
      },
    });

    bus.subscribe((event) => {
      if (!isPaymentEvent(event)) return;
      const webhook = nativeWebhookOf(event);
      if (webhook !== undefined) dispatcher.deliver(webhook);
    });

    app.decorate('webhooks', { dispatcher, log });

    app.lifecycle.onDrain(async (budgetMs) => {
      const left = await dispatcher.drain(budgetMs);
      if (left.length === 0) {
        app.log.info('shutdown: every webhook delivery finished');
        return;
      }
      const counts: Record<string, number> = {};
      for (const delivery of left) counts[delivery.status] = (counts[delivery.status] ?? 0) + 1;
      app.log.warn(
        { unfinished_deliveries: left.length, by_status: counts, delivery_ids: left.slice(0, MAX_IDS_LOGGED).map((d) => d.id) },
        'shutdown: webhook deliveries still unfinished when the drain budget ran out',
      );
    }, 'delivery');

    app.core.onSweep((now) => log.sweep(now));
    app.addHook('onClose', async () => {
      dispatcher.close();
      // The drain has had its budget: abort what is still in flight rather than wait for it.
      await agent.destroy();
    });
  },
  { name: 'paysim-webhooks', dependencies: ['paysim-core', 'paysim-metrics', 'paysim-lifecycle'] },
);
