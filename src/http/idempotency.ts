import type { FastifyReply, FastifyRequest, onSendHookHandler, preHandlerHookHandler } from 'fastify';
import type { Clock } from '../core/clock.ts';
import { idempotencyKeyLost, isStoreUnavailable, unavailableReason } from '../core/errors.ts';
import { fingerprint, type IdempotencyNote } from '../core/idempotency.ts';
import type { IdempotencyStore } from '../core/ports.ts';
import { sendProblem, type ErrorShape } from './error-handler.ts';
import type { LateSettles } from './late-settles.ts';
import { IN_FLIGHT_RETRY_AFTER_S } from './problem.ts';
import { isKeyConflict, isTransient } from './transient-answers.ts';

/**
 * Route hooks that make a POST idempotent under the `Idempotency-Key` header. They run after
 * schema validation (preHandler), so a request that fails validation is never stored. A response
 * of 5xx, or a refusal another request in flight is about to make untrue (a payment in progress),
 * releases the key so the client can retry; any other response is stored and replayed with
 * `Idempotent-Replayed: true`. A client that goes away mid-request changes nothing: the handler
 * still ends with a response (onSend), which settles the key, so no abort hook (and no listener
 * per request) is needed.
 *
 * A key is scoped to the operation, not to the URL's spelling: method, route pattern and the
 * decoded, NFC-normalised path parameters (so `/v1/sim/intent/`, `/v1/sim/inten%74` and
 * `/v1/sim/intent` are one operation, and `/intents/A/cancel` and `/intents/B/cancel` are two),
 * plus the caller where the dialect has one.
 * @see https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/
 */

export interface IdempotencyHooks {
  preHandler: preHandlerHookHandler;
  onSend: onSendHookHandler;
}

export interface IdempotencyHookOptions {
  store: IdempotencyStore;
  clock: Clock;
  /** Where a settle the store could not take (Redis away) waits to be tried again. */
  lateSettles: LateSettles;
  /** The dialect's error shape, for 422 IDEMPOTENCY_KEY_MISMATCH and 409 IDEMPOTENCY_KEY_IN_USE. */
  shape: ErrorShape;
  onReplay?: () => void;
  onConflict?: () => void;
  /** Narrows the scope further, e.g. to the caller, so one caller's key never replays another's response. */
  scopeOf?: (request: FastifyRequest) => string;
}

interface Claim {
  scope: string;
  key: string;
  /** The store's name for this request's begin: settling it touches this claim only. */
  claim: string;
  settled: boolean;
}

const claims = new WeakMap<FastifyRequest, Claim>();
/** The requests that resume what an earlier request of their key made (`BeginResult` `resume`): its id. */
const resumed = new WeakMap<FastifyRequest, string>();
/** Where each request's write notes what it made (a shared store's `noteOf`). */
const notes = new WeakMap<FastifyRequest, IdempotencyNote>();
/** The store of each request that has a note (`noteMaking`). */
const stores = new WeakMap<FastifyRequest, IdempotencyStore>();

/** Where the route's write notes what this keyed request made, in the same step (undefined: no key, or a store of one process). */
export function idempotencyNoteOf(request: FastifyRequest): IdempotencyNote | undefined {
  return notes.get(request);
}

/** The id an earlier request under this request's key noted (`resumedMade`), without looking for its record. */
export function resumedId(request: FastifyRequest): string | undefined {
  return resumed.get(request);
}

/**
 * What an earlier request under this request's Idempotency-Key made, or was about to make, and never
 * answered (its replica died, or it answered a 5xx: Redis slow or away): its `id` as noted, and the
 * `record` when it is stored, which the route answers as created instead of making another. Without
 * the record (never written, or evicted since) the route makes it: under that id where a late write
 * of the earlier request then finds it made (orders, payments), under a new one, noted again, where
 * that write would be taken for this one's (bookings, subscriptions). Both undefined for every other request.
 */
export async function resumedMade<T>(request: FastifyRequest, find: (id: string) => Promise<T | undefined>): Promise<{ id?: string | undefined; record?: T | undefined }> {
  const id = resumed.get(request);
  return id === undefined ? {} : { id, record: await find(id) };
}

/**
 * Notes on this keyed request's Idempotency-Key the id of what it is about to make, before its
 * write, for a create whose write cannot note it itself: a retry after a lost answer (its replica
 * killed, or a 5xx after the write) then answers that record (`resumedMade`) instead of making a
 * second one. Nothing without a key, or with a store of one process. IDEMPOTENCY_KEY_IN_USE
 * (transient), nothing noted, when the key is no longer this request's.
 */
export async function noteMaking(request: FastifyRequest, id: string): Promise<void> {
  const note = notes.get(request);
  const store = stores.get(request);
  if (note === undefined || store?.note === undefined) return;
  // The key is no longer this request's (its retry took it on another replica): written here, it would be made twice.
  if (!(await store.note(note, id))) throw idempotencyKeyLost();
}

/**
 * The call that settles a request's key: its answer stored, or (a 5xx, a refusal another request
 * in flight is about to make untrue: `transient-answers.ts`, or an answer that is not a string) the key given back. Made out here, apart from the hook's closures, so that one tried
 * again later (`LateSettles`) holds only these values, not the request, its body or its reply.
 */
function settleOf(store: IdempotencyStore, held: Claim, statusCode: number, payload: unknown, transient: boolean): () => Promise<void> {
  const { scope, key, claim } = held;
  if (statusCode >= 500 || transient || typeof payload !== 'string') return () => store.release(scope, key, claim);
  return () => store.complete(scope, key, claim, { statusCode, body: payload });
}

/** The operation a request stands for: method, route pattern and its normalised parameters. */
export function operationOf(request: FastifyRequest): string {
  const params = request.params as Record<string, string> | undefined;
  const names = params === undefined ? [] : Object.keys(params).sort();
  const values = names.map((name) => `${name}=${String(params?.[name]).normalize('NFC')}`).join('&');
  return `${request.method} ${request.routeOptions.url ?? request.url}${values === '' ? '' : ` ${values}`}`;
}

export function idempotencyHooks(options: IdempotencyHookOptions): IdempotencyHooks {
  const { store, clock, shape } = options;
  const conflict = (reply: FastifyReply, status: number, code: string, message: string, retryAfterS?: number): FastifyReply => {
    options.onConflict?.();
    return sendProblem(reply, shape, { status, code, message, retryAfterS });
  };
  const claim = async (request: FastifyRequest, reply: FastifyReply, key: string): Promise<boolean> => {
    const operation = operationOf(request);
    const scope = options.scopeOf === undefined ? operation : `${operation}\n${options.scopeOf(request)}`;
    const result = await store.begin(scope, key, fingerprint(request.body), clock.now());
    switch (result.kind) {
      case 'resume':
      case 'started': {
        // Resumed: the key is this request's, as a started one's, and what its earlier request made is the answer.
        if (result.kind === 'resume') resumed.set(request, result.made);
        claims.set(request, { scope, key, claim: result.claim, settled: false });
        const note = store.noteOf?.(scope, key, result.claim);
        if (note !== undefined) {
          notes.set(request, note);
          stores.set(request, store);
        }
        return true;
      }
      case 'replay':
        options.onReplay?.();
        reply.code(result.response.statusCode).headers(result.response.headers ?? {}).header('idempotent-replayed', 'true').type('application/json; charset=utf-8');
        reply.send(result.response.body);
        return false;
      case 'mismatch':
        conflict(reply, 422, 'IDEMPOTENCY_KEY_MISMATCH', 'This Idempotency-Key was used with a different request body.');
        return false;
      case 'in_progress':
        conflict(reply, 409, 'IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still being processed; retry later.', IN_FLIGHT_RETRY_AFTER_S);
        return false;
    }
  };
  return {
    // Callback style: a request without a key (most of them) passes without a promise.
    preHandler(request, reply, done) {
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string') return done();
      claim(request, reply, key).then(
        (proceed) => {
          if (proceed) done();
        },
        (error: Error) => done(error),
      );
    },
    onSend(request, reply, payload, done) {
      const held = claims.get(request);
      if (held === undefined || held.settled) return done(null, payload);
      held.settled = true;
      // Its key taken over before its write (the hooks' own refusals never get here: they hold no claim).
      if (isKeyConflict(reply)) options.onConflict?.();
      const settle = settleOf(store, held, reply.statusCode, payload, isTransient(reply));
      settle().then(
        () => done(null, payload),
        (error: Error) => {
          // The store went away during the request (Redis): the answer still goes out as it is
          // (a 503 stays a 503; a created intent is not hidden behind a 500), and the settle is
          // tried again until the store takes it. Otherwise it is given up (abandon): the key stays
          // begun until its TTL, or with Redis until this replica's mark of life lapses.
          if (isStoreUnavailable(error) && options.lateSettles.add(settle)) request.log.warn({ redis_error: unavailableReason(error) }, 'the Idempotency-Key could not be settled: the store is unavailable; it is tried again until it can be');
          else {
            store.abandon(held.claim);
            request.log.error({ err: error }, 'the Idempotency-Key could not be settled in the store');
          }
          done(null, payload);
        },
      );
    },
  };
}
