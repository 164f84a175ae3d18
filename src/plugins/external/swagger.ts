import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * The OpenAPI document, generated from the route schemas (@fastify/swagger), and Swagger UI at
 * the root (@fastify/swagger-ui): opening the simulator's address in a browser shows its API.
 */

export const API_VERSION = '1.0.0';

export async function registerSwagger(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'paysim',
        version: API_VERSION,
        description: 'A payment simulator: payment intents decided by scenario or card data, signed webhooks with retries.',
      },
      tags: [
        { name: 'intents', description: 'The native payment-intent API (/v1/sim)' },
        { name: 'webhooks', description: 'Webhook deliveries: log, replay, test sends, disabled URLs' },
        { name: 'operations', description: 'Health, readiness and metrics' },
        { name: 'bookings', description: 'The bookings API (document 003): seat holds, card payments, the events inbox and the ledger; every route needs x-user-id' },
        { name: 'payment-service', description: 'The ticketing payment-service API (document 004): /api/v1/payments/* behind a JWT, and /health' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/' });
  app.get('/docs', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/'));
}
