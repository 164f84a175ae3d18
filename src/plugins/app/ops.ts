import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';

/**
 * Liveness, readiness, metrics and the OpenAPI document. These answer even under load shedding:
 * an orchestrator that cannot read /readyz or a Prometheus that cannot scrape would make an
 * overload look like an outage.
 */

const exemptFromShedding = { pressureHandler: () => {} };

const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('shutting_down')]),
  details: Type.Optional(Type.Record(Type.String(), Type.String())),
});

const opsRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/healthz',
    { config: exemptFromShedding, schema: { summary: 'Liveness', tags: ['operations'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    { config: exemptFromShedding, schema: { summary: 'Readiness: 503 while shutting down', tags: ['operations'], response: { 200: Readiness, 503: Readiness } } },
    async (_request, reply) => {
      const details: Record<string, string> = {};
      if (app.core.config.webhookSecretGenerated) {
        details.webhook_secret = 'WEBHOOK_SECRET is not set: webhooks are signed with a random secret generated at start (see the log); set WEBHOOK_SECRET so receivers can verify them.';
      }
      const body = { status: app.lifecycle.shuttingDown ? ('shutting_down' as const) : ('ready' as const), ...(Object.keys(details).length > 0 ? { details } : {}) };
      return reply.code(app.lifecycle.shuttingDown ? 503 : 200).send(body);
    },
  );

  app.get('/metrics', { config: exemptFromShedding, schema: { summary: 'Prometheus metrics', tags: ['operations'], produces: ['text/plain'] } }, async (_request, reply) => {
    const { registry } = app.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  app.get('/openapi.json', { config: exemptFromShedding, schema: { hide: true } }, async () => app.swagger());
};

export default opsRoutes;
