import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import cluster from 'node:cluster';
import { AggregatorRegistry, Gauge, type Registry } from 'prom-client';
import { workerMetrics } from '../../cluster-metrics.ts';
import type { MetricsJson } from '../../metrics-json.ts';
import { generatedKey } from '../../adapters/redis/generated.ts';
import { documented } from '../../http/openapi.ts';

/**
 * Liveness, readiness, metrics and the OpenAPI document. These answer even under load shedding:
 * an orchestrator that cannot read /readyz or a Prometheus that cannot scrape would make an
 * overload look like an outage.
 */

const exemptFromShedding = { pressureHandler: () => {} };

const Liveness = Type.Object({ status: Type.Literal('ok') }, { title: 'Liveness' });

const Readiness = Type.Object(
  {
    status: Type.Union([Type.Literal('ready'), Type.Literal('shutting_down'), Type.Literal('store_unavailable')]),
    details: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Warnings an operator should see, by topic' })),
  },
  { title: 'Readiness' },
);

const METRICS_EXAMPLE = [
  '# HELP payment_intents_created_total Payment intents created, by the scenario that decides them (card when the card data does).',
  '# TYPE payment_intents_created_total counter',
  'payment_intents_created_total{scenario="approve"} 42',
  '',
].join('\n');

const opsRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  /** What /readyz answers, and the `ready` gauge says. */
  const readiness = () => {
    const unavailable = app.storeUnavailable();
    const status = app.lifecycle.shuttingDown || app.lifecycle.leaving ? ('shutting_down' as const) : unavailable !== undefined ? ('store_unavailable' as const) : ('ready' as const);
    return { status, unavailable };
  };
  // The root app's only (ops routes are the root's): /metrics adds the namespaces' gauges up.
  new Gauge({
    name: 'ready',
    help: 'Whether /readyz answers 200 (1) or 503 (0): shutting down, or the store (Redis) unreachable or loading its data set; /readyz says why.',
    registers: [app.metrics.registry],
    collect() {
      this.set(readiness().status === 'ready' ? 1 : 0);
    },
  });

  app.get(
    '/healthz',
    {
      config: exemptFromShedding,
      schema: {
        operationId: 'getLiveness',
        summary: 'Liveness',
        description: 'Answers while the process serves requests, even under load shedding: for an orchestrator’s liveness probe.',
        tags: ['operations'],
        response: { 200: documented(Liveness, { description: 'Alive.', examples: { ok: { summary: 'Alive', value: { status: 'ok' } } } }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: exemptFromShedding,
      schema: {
        operationId: 'getReadiness',
        summary: 'Readiness: 503 while shutting down or while the store is unreachable or loading',
        description:
          'For a readiness probe: 200 `ready`; 503 `shutting_down` once SIGTERM arrived (for SHUTDOWN_DELAY_MS while every other request is still served as usual, so a load balancer takes the replica out; then while the drain is under way, and once the server closes); 503 `store_unavailable` while Redis (STORE=redis) cannot be reached or is still loading its data set after a restart, with the reason in `details.store` (the service reconnects by itself and is ready again when Redis is). `details` also names configuration an operator should fix, such as an unset WEBHOOK_SECRET.',
        tags: ['operations'],
        response: {
          200: documented(Readiness, {
            description: 'Ready.',
            examples: {
              ready: { summary: 'Ready', value: { status: 'ready' } },
              generated_secret: {
                summary: 'Ready, with a warning',
                value: { status: 'ready', details: { webhook_secret: 'WEBHOOK_SECRET is not set: webhooks are signed with a random secret generated at start (see the log); set WEBHOOK_SECRET so receivers can verify them.' } },
              },
            },
          }),
          503: documented(Readiness, {
            description: 'Shutting down, or the store is unreachable or loading: send no more traffic.',
            examples: {
              shutting_down: { summary: 'Shutting down (leaving the balancer, draining or closing)', value: { status: 'shutting_down' } },
              store_unavailable: {
                summary: 'Redis is unreachable',
                value: { status: 'store_unavailable', details: { store: 'Redis at redis://127.0.0.1:6379 is unreachable (connect ECONNREFUSED 127.0.0.1:6379); reconnecting' } },
              },
              store_loading: {
                summary: 'Redis is loading its data set',
                value: { status: 'store_unavailable', details: { store: 'Redis at redis://127.0.0.1:6379 is loading its data set (43 % loaded)' } },
              },
            },
          }),
        },
      },
    },
    async (_request, reply) => {
      const details: Record<string, string> = {};
      if (app.core.config.webhookSecretGenerated) {
        const { config } = app.core;
        const where = config.store.backend === 'redis' ? `generated by the first process on the key prefix and kept on Redis (${generatedKey(config.redis.keyPrefix, 'webhook-secret')}), shared by every replica` : 'generated at start';
        details.webhook_secret = `WEBHOOK_SECRET is not set: webhooks are signed with a random secret ${where} (see the log); set WEBHOOK_SECRET so receivers can verify them.`;
      }
      const { status, unavailable } = readiness();
      if (unavailable !== undefined) details.store = unavailable;
      const body = { status, ...(Object.keys(details).length > 0 ? { details } : {}) };
      // Closing: the checker's connection goes too, as with every request refused then.
      if (app.lifecycle.closing) reply.header('connection', 'close');
      return reply.code(status === 'ready' ? 200 : 503).send(body);
    },
  );

  /** This process's metrics with the namespaces' (X-Sim-Namespace, in registries of their own), added up series by series; none: the root's registry alone. */
  const withNamespaces = async (): Promise<Registry> => {
    const namespaces = await app.namespaces.metrics();
    return namespaces.length === 0 ? app.metrics.registry : AggregatorRegistry.aggregate([await app.metrics.registry.getMetricsAsJSON(), ...namespaces]);
  };
  const ownMetrics = async (): Promise<MetricsJson> => (await withNamespaces()).getMetricsAsJSON();
  // A worker of CLUSTER_WORKERS=N answers every worker's metrics combined (src/cluster-metrics.ts).
  const workers = cluster.isWorker && app.core.config.clusterWorkers > 1 ? workerMetrics(ownMetrics) : undefined;
  if (workers !== undefined) app.addHook('onClose', async () => workers.stop());

  app.get(
    '/metrics',
    {
      config: exemptFromShedding,
      schema: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description: 'The Prometheus text exposition format (version 0.0.4): HTTP, intent, booking, webhook, idempotency and store metrics, and the process’s own. Every namespace (`X-Sim-Namespace`) counts in the same series (added up); with `CLUSTER_WORKERS` > 1, every worker does too, whichever worker the scrape reached. Scrape it; it answers even under load shedding.',
        tags: ['operations'],
        produces: ['text/plain'],
        response: {
          200: documented(Type.String(), { description: 'The metrics.', examples: { scrape: { summary: 'An excerpt', value: METRICS_EXAMPLE } } }),
          503: documented(Type.String(), {
            description: 'With `CLUSTER_WORKERS` > 1 only: the workers’ combined metrics could not be had within 5 s (the primary gone, busy or paused, or no worker has sent its metrics yet); Prometheus records a failed scrape, not one worker’s counts (a counter reset).',
            examples: { combined: { summary: 'No combined metrics', value: "the primary did not send the workers' combined metrics within 5000 ms\n" } },
            headers: ['Retry-After'],
          }),
        },
      },
    },
    async (_request, reply) => {
      const { registry } = app.metrics;
      reply.type(registry.contentType);
      if (workers !== undefined) {
        try {
          return reply.send(await workers.combined());
        } catch (error) {
          // Not this worker's own: about 1/N of the counts, which Prometheus would read as a reset (a review).
          app.log.warn({ err: error }, "metrics: the workers' combined metrics could not be had; answered 503");
          return reply.code(503).header('retry-after', '1').type('text/plain; charset=utf-8').send(`${error instanceof Error ? error.message : String(error)}\n`);
        }
      }
      return reply.send(await (await withNamespaces()).metrics());
    },
  );

  app.get('/openapi.json', { config: exemptFromShedding, schema: { hide: true } }, async () => app.swagger());
};

export default opsRoutes;
