import fp from 'fastify-plugin';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics: default process metrics, HTTP metrics by route pattern, and the domain
 * counters fed from the event bus (so they count the same facts webhooks see).
 * A hand-written hook rather than fastify-metrics: the metric names are fixed by the issue and the
 * hook is a few lines, where the plugin would need renaming and disabling most of its defaults.
 */

export interface Metrics {
  registry: Registry;
  idempotencyReplays: Counter;
  idempotencyConflicts: Counter;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export default fp(
  async (app) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    // prom-client names these gauges `*_total`, which promtool rejects (that suffix is for
    // counters); the same counts stay available per type as nodejs_active_{handles,requests,resources}.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);

    const requests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status_code'],
      registers: [registry],
    });
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving a request to sending its response, by route pattern.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    const created = new Counter({
      name: 'payment_intents_created_total',
      help: 'Payment intents created, by the scenario that decides them (card when the card data does).',
      labelNames: ['scenario'],
      registers: [registry],
    });
    const finalized = new Counter({
      name: 'payment_intents_finalized_total',
      help: 'Payment intents that left PENDING, by the status they reached.',
      labelNames: ['status'],
      registers: [registry],
    });
    const idempotencyReplays = new Counter({
      name: 'idempotency_replays_total',
      help: 'Requests answered with a stored response because their Idempotency-Key was seen before.',
      registers: [registry],
    });
    const idempotencyConflicts = new Counter({
      name: 'idempotency_conflicts_total',
      help: 'Requests refused because their Idempotency-Key was in use or used with another body.',
      registers: [registry],
    });

    app.core.bus.subscribe((event) => {
      switch (event.type) {
        case 'payment.created':
          created.inc({ scenario: event.intent.scenario });
          break;
        case 'payment.approved':
        case 'payment.failed':
        case 'payment.cancelled':
          finalized.inc({ status: event.intent.status });
          break;
        default:
          break;
      }
    });

    app.addHook('onResponse', (request, reply, done) => {
      // The route pattern, never the raw path: raw paths carry ids and would explode cardinality.
      const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: reply.statusCode };
      requests.inc(labels);
      duration.observe(labels, reply.elapsedTime / 1000);
      done();
    });

    app.decorate('metrics', { registry, idempotencyReplays, idempotencyConflicts });
  },
  { name: 'paysim-metrics', dependencies: ['paysim-core'] },
);
