import type { FastifyReply, FastifyRequest, onRequestAbortHookHandler, onSendHookHandler, preHandlerHookHandler } from 'fastify';
import { fingerprint, type IdempotencyStore } from '../core/idempotency.ts';

/**
 * Route hooks that make a POST idempotent under the `Idempotency-Key` header. They run after
 * schema validation (preHandler), so a request that fails validation is never stored. A response
 * of 5xx releases the key so the client can retry; any other response is stored and replayed with
 * `Idempotent-Replayed: true`.
 */

export interface IdempotencyHooks {
  preHandler: preHandlerHookHandler;
  onSend: onSendHookHandler;
  onRequestAbort: onRequestAbortHookHandler;
}

export type IdempotencyConflict = 'IDEMPOTENCY_KEY_MISMATCH' | 'IDEMPOTENCY_KEY_IN_USE';

export interface IdempotencyHookOptions {
  store: IdempotencyStore;
  /** Sends the API's own error for a conflict (422 mismatch, 409 in use). */
  sendConflict: (reply: FastifyReply, conflict: IdempotencyConflict, message: string) => FastifyReply;
  onReplay?: () => void;
  onConflict?: () => void;
  /** Narrows the scope further, e.g. to the caller, so one caller's key never replays another's response. */
  scopeOf?: (request: FastifyRequest) => string;
}

interface Claim {
  scope: string;
  key: string;
  settled: boolean;
}

const claims = new WeakMap<FastifyRequest, Claim>();

export function idempotencyHooks(options: IdempotencyHookOptions): IdempotencyHooks {
  const { store } = options;
  return {
    preHandler(request, reply, done) {
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string') return done();
      // The concrete path, not the route pattern: a key reused on /intents/A/cancel and
      // /intents/B/cancel names two different operations.
      const path = `${request.method} ${request.url.split('?', 1)[0]}`;
      const scope = options.scopeOf === undefined ? path : `${path}\n${options.scopeOf(request)}`;
      const result = store.begin(scope, key, fingerprint(request.body));
      switch (result.kind) {
        case 'started':
          claims.set(request, { scope, key, settled: false });
          return done();
        case 'replay':
          options.onReplay?.();
          reply.code(result.response.statusCode).header('idempotent-replayed', 'true').type('application/json; charset=utf-8').send(result.response.body);
          return;
        case 'mismatch':
          options.onConflict?.();
          options.sendConflict(reply, 'IDEMPOTENCY_KEY_MISMATCH', 'This Idempotency-Key was used with a different request body.');
          return;
        case 'in_progress':
          options.onConflict?.();
          options.sendConflict(reply, 'IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still being processed; retry later.');
          return;
      }
    },
    onSend(request, reply, payload, done) {
      const claim = claims.get(request);
      if (claim !== undefined && !claim.settled) {
        claim.settled = true;
        if (reply.statusCode >= 500 || typeof payload !== 'string') store.release(claim.scope, claim.key);
        else store.complete(claim.scope, claim.key, { statusCode: reply.statusCode, body: payload });
      }
      done(null, payload);
    },
    onRequestAbort(request, done) {
      const claim = claims.get(request);
      if (claim !== undefined && !claim.settled) {
        claim.settled = true;
        store.release(claim.scope, claim.key);
      }
      done();
    },
  };
}
