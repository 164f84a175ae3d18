import fp from 'fastify-plugin';
import { Gauge } from 'prom-client';
import { Agent } from 'undici';
import type { DomainEvent } from '../../core/events.ts';
import { WebhookDispatcher, type WebhookRequest } from '../../webhooks/dispatcher.ts';
import { legacySigner } from '../../webhooks/signers/legacy.ts';
import { SignerRegistry } from '../../webhooks/signers/registry.ts';
import { standardSigner } from '../../webhooks/signers/standard.ts';
import { stripeSigner } from '../../webhooks/signers/stripe.ts';
import type { DeliveryLogStore } from '../../core/ports.ts';

/**
 * Webhook delivery: one dispatcher, one undici Agent and the registry of signers per app, with
 * the gauges of its queue, its share of the shutdown drain, and its log swept with the stores.
 * Dialects subscribe to the bus and hand the dispatcher their deliveries.
 */

export interface Webhooks {
  dispatcher: WebhookDispatcher;
  log: DeliveryLogStore;
  signers: SignerRegistry;
  /** Delivers the webhook a dialect makes of a bus event (undefined: none for this event). */
  deliverEvents(webhookOf: (event: DomainEvent) => WebhookRequest | undefined): void;
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
    const { config, clock, ids, bus, stores, scheduler } = app.core;
    const settings = config.webhook;
    const agent = new Agent({ keepAliveTimeout: 10_000, connections: settings.originConcurrency, connect: { timeout: settings.timeoutMs } });
    const secrets = [config.webhookSecret, ...(settings.previousSecret === undefined ? [] : [settings.previousSecret])];
    const signers = new SignerRegistry();
    signers.register(standardSigner(secrets));
    signers.register(legacySigner(secrets));
    signers.register(stripeSigner(secrets));

    const dispatcher = new WebhookDispatcher({
      clock,
      ids,
      bus,
      log: stores.deliveries,
      disabled: stores.disabledUrls,
      scheduler,
      agent,
      signers,
      settings,
      onError: (error, context) => app.log.error({ err: error }, `webhooks: ${context} failed`),
      faults: app.faults.webhooks,
    });

    const { registry } = app.metrics;
    new Gauge({
      name: 'webhook_queue_depth',
      help: 'Webhook deliveries waiting for a worker or a rate-cap token (not counting those waiting to retry).',
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

    const deliverEvents = (webhookOf: (event: DomainEvent) => WebhookRequest | undefined): void => {
      bus.subscribe((event) => {
        const webhook = webhookOf(event);
        if (webhook === undefined) return;
        dispatcher.deliver(webhook).catch((error: unknown) => app.log.error({ err: error, event_id: event.id, event_type: event.type }, 'a webhook could not be accepted'));
      });
    };
    app.decorate('webhooks', { dispatcher, log: stores.deliveries, signers, deliverEvents });

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

    app.core.onSweep((now) => stores.deliveries.sweep(now));
    app.addHook('onClose', async () => {
      dispatcher.close();
      // The drain has had its budget: abort what is still in flight rather than wait for it.
      await agent.destroy();
    });
  },
  { name: 'paysim-webhooks', dependencies: ['paysim-core', 'paysim-metrics', 'paysim-lifecycle', 'paysim-faults'] },
);
