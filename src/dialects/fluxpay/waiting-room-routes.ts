import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { notFound } from '../../core/fluxpay/errors.ts';
import type { WaitingRoomService } from '../../core/waiting-room/service.ts';
import type { IdempotencyHooks } from '../../http/idempotency.ts';
import { documented, errorResponses, IDEMPOTENT, withExamples } from '../../http/openapi.ts';
import { IdempotencyKeyHeader } from '../../http/schemas.ts';
import * as ex from './examples.ts';
import * as s from './schemas.ts';
import { ok, roomView, ticketView } from './views.ts';

/**
 * The waiting-room routes of the FluxPay API (issue 12 "Virtual waiting room"): create or change a
 * room, read it, enter it, poll a ticket. The order guard sits on `POST /api/v1/orders` (routes.ts).
 */

export interface WaitingRoomRoutesOptions {
  rooms: WaitingRoomService;
  idempotent: IdempotencyHooks;
}

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.fluxpayErrorDocs, statuses, options);
const tags = ['fluxpay'];

const waitingRoomRoutes: FastifyPluginAsync<WaitingRoomRoutesOptions> = async (fastify, { rooms, idempotent }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.put(
    '/api/v1/waiting-rooms/:roomId',
    {
      schema: {
        operationId: 'putFluxPayWaitingRoom',
        summary: 'Create or change a waiting room',
        description:
          'Creates the room (201) or changes a running one (200): a new `admitPerSecond` applies from now, spaced from the last admission; the queue keeps its order. While `active`, `POST /api/v1/orders` for `protectedServiceIds` needs an `X-Admission-Token` (else 403 WAIT_001). `protectedServiceIds` must be services of the billing policy (else 400 COMMON_400, nothing changes); a new room beyond FLUXPAY_MAX_WAITING_ROOMS is refused with 409 WAIT_002 (rooms are never evicted).',
        tags,
        params: s.NewRoomParams,
        body: withExamples(s.PutRoomBody, ex.putRoomRequests),
        response: {
          200: documented(s.Wrapped(s.RoomView, 'FluxPayWaitingRoomResult'), { description: 'The room, changed.', examples: ex.putRoomUpdated }),
          201: documented(s.Wrapped(s.RoomView, 'FluxPayWaitingRoomResult'), { description: 'The room, created.', examples: ex.putRoomCreated }),
          ...errorResponses(ex.fluxpayErrorDocs, [400, 409, 413, 415, 429, 500, 503], { overrides: ex.putRoomErrors }),
        },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const { kind, room } = await rooms.put(request.params.roomId, {
        admitPerSecond: b.admitPerSecond,
        admissionTtlSeconds: b.admissionTtlSeconds,
        protectedServiceIds: b.protectedServiceIds,
        maxActive: b.maxActive ?? null,
        active: b.active ?? true,
      });
      return reply.code(kind === 'created' ? 201 : 200).send(ok(roomView(room)));
    },
  );

  app.get(
    '/api/v1/waiting-rooms/:roomId',
    {
      schema: {
        operationId: 'getFluxPayWaitingRoom',
        summary: 'A waiting room: its settings, size, admitted so far, current rate',
        description: 'The room brought up to now: `size` users waiting, `admitted` so far, `currentRate` admissions per second (0 while paused or inactive), `nextAdmissionAt`. COMMON_404 when unknown.',
        tags,
        params: s.RoomParams,
        response: { 200: documented(s.Wrapped(s.RoomView, 'FluxPayWaitingRoomResult'), { description: 'The room now.', examples: ex.getRoomResponses }), ...errors([400, 404, 429, 500, 503], { overrides: ex.fluxpayOverrides.getFluxPayWaitingRoom }) },
      },
    },
    async (request) => {
      const room = await rooms.get(request.params.roomId);
      if (room === undefined) throw notFound('Waiting room', request.params.roomId);
      return ok(roomView(room));
    },
  );

  app.post(
    '/api/v1/waiting-rooms/:roomId/enter',
    {
      schema: {
        operationId: 'enterFluxPayWaitingRoom',
        summary: 'Enter a waiting room (WAITING, with a position)',
        description:
          'A ticket at the back of the queue; a user who holds a ticket still WAITING (or ADMITTED, unused, unexpired) gets that ticket again, with its position now. With an `Idempotency-Key`, the same request again is answered as the first was (`Idempotent-Replayed: true`), another body with the key is 422 COMMON_422. 503 COMMON_503 when FLUXPAY_MAX_WAITING_TICKETS live tickets are held.',
        tags,
        headers: IdempotencyKeyHeader,
        params: s.RoomParams,
        body: withExamples(s.EnterBody, ex.enterRequests),
        response: {
          200: documented(s.Wrapped(s.TicketView, 'FluxPayWaitingRoomTicketResult'), { description: 'The ticket.', examples: ex.enterResponses, headers: IDEMPOTENT }),
          ...errors([400, 404, 409, 413, 415, 422, 429, 500, 503], { idempotent: true, overrides: ex.fluxpayOverrides.enterFluxPayWaitingRoom }),
        },
      },
      ...idempotent,
    },
    async (request) => {
      const entered = await rooms.enter(request.params.roomId, request.body.userId);
      if (entered === undefined) throw notFound('Waiting room', request.params.roomId);
      return ok(ticketView(entered.ticket));
    },
  );

  app.get(
    '/api/v1/waiting-rooms/:roomId/tickets/:ticket',
    {
      schema: {
        operationId: 'getFluxPayWaitingRoomTicket',
        summary: 'Poll a ticket: WAITING, ADMITTED (with its admission token) or EXPIRED',
        description: 'WAITING with `position` (1-based) and `estimatedWaitSeconds` (whole seconds, at the current rate; null while paused); ADMITTED with `admissionToken` (send it as X-Admission-Token with POST /api/v1/orders, once) valid until `expiresAt`; EXPIRED once the token lapsed unused.',
        tags,
        params: s.TicketParams,
        response: { 200: documented(s.Wrapped(s.TicketView, 'FluxPayWaitingRoomTicketResult'), { description: 'The ticket now.', examples: ex.ticketResponses }), ...errors([400, 404, 429, 500, 503], { overrides: ex.fluxpayOverrides.getFluxPayWaitingRoomTicket }) },
      },
    },
    async (request) => {
      const ticket = await rooms.ticket(request.params.roomId, request.params.ticket);
      if (ticket === undefined) throw notFound('Ticket', request.params.ticket);
      return ok(ticketView(ticket));
    },
  );
};

export default waitingRoomRoutes;
