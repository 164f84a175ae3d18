import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { isBookingEvent } from '../../core/events.ts';
import { createErrorHandler, sendProblem } from '../../http/error-handler.ts';
import { idempotencyHooks } from '../../http/idempotency.ts';
import { bookingsErrors } from './errors.ts';
import { BOOKING_WEBHOOKS } from './examples.ts';
import bookingRoutes from './routes.ts';
import { BookingWebhook } from './schemas.ts';
import { bookingWebhookOf, DELIVERED_BOOKING_EVENTS } from './webhook-payload.ts';

/**
 * The bookings API (source document 003): seat holds, card payments through the events inbox,
 * the ledger; camelCase, every route behind `x-user-id`, errors `{"error", "code"}`. Booking
 * events of bookings with a `webhookUrl` are delivered in its camelCase payload.
 * @see issue 4 "The bookings API", ../../../../shared/seeds/003_2d28ecb358825d26.txt
 */

const MAX_USER_ID = 128;

/** The caller, checked by the onRequest hook before anything else runs. */
function userOf(request: FastifyRequest): string {
  return request.headers['x-user-id'] as string;
}

const bookings: FastifyPluginAsync = async (app) => {
  const { config, stores, clock } = app.core;
  app.errorShapes.register(bookingsErrors);

  await app.register(async (scope) => {
    scope.setErrorHandler(createErrorHandler(bookingsErrors));
    // Before parsing and validation: without a caller nothing else is worth looking at.
    scope.addHook('onRequest', async (request, reply) => {
      const user = request.headers['x-user-id'];
      if (typeof user !== 'string' || user.length === 0 || user.length > MAX_USER_ID) {
        return sendProblem(reply, bookingsErrors, { status: 401, code: 'UNAUTHENTICATED', message: `The x-user-id header is required (1–${MAX_USER_ID} characters).` });
      }
    });
    // Keys are scoped to the caller too: another user's key (and so another user's booking) is never replayed.
    const idempotent = idempotencyHooks({
      store: stores.idempotency,
      clock,
      lateSettles: app.core.lateSettles,
      shape: bookingsErrors,
      onReplay: () => app.metrics.idempotencyReplays.inc(),
      onConflict: () => app.metrics.idempotencyConflicts.inc(),
      scopeOf: userOf,
    });
    await scope.register(bookingRoutes, { idempotent, userOf });
  });

  app.webhooks.deliverEvents((event) => (isBookingEvent(event) ? bookingWebhookOf(event, config.webhook.schemes) : undefined));
  for (const type of DELIVERED_BOOKING_EVENTS) {
    const doc = BOOKING_WEBHOOKS[type];
    if (doc === undefined) throw new Error(`the ${type} webhook is not documented`);
    app.apiDocs.webhook(type, { summary: doc.summary, description: `${doc.description} Sent to the booking’s \`webhookUrl\`.`, tag: 'bookings', payload: BookingWebhook, examples: { [type.replace('.', '_')]: { summary: doc.summary, value: doc.example } } });
  }
};

export default bookings;
