import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * Idempotency keys, after the IETF Idempotency-Key header draft and Stripe's behaviour: a key is
 * scoped to an operation (method, route and its parameters, and the caller where there is one);
 * the first request with it runs and its response is stored; a twin with the same body gets that
 * response again; a different body is a mismatch; a twin that arrives while the first is still
 * running is refused. `begin`, `complete` and `release` are each one atomic store operation.
 * Only requests that passed validation get here, so invalid requests are never stored.
 * @see https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/
 */

export interface StoredResponse {
  statusCode: number;
  body: string;
  /** Response headers worth replaying (none by default). */
  headers?: Record<string, string> | undefined;
}

/**
 * The margin past the longest wait a handler makes (`inFlightHoldMs`) for which a key whose request
 * is still running is kept on Redis, whatever IDEMPOTENCY_TTL_MS says.
 */
export const IN_FLIGHT_MARGIN_MS = 15 * 60_000;

/**
 * How long after its begin a key whose request is still running is kept at least on Redis: a TTL
 * shorter than a request (FluxPay's `delay` scenario, a booking payment's mock delay, both scaled
 * by TIME_SCALE) must not free the key for a twin while the first still runs, and the hold must
 * stay finite, so a claim left by a replica killed mid-request goes. (Fault latencies run before
 * the key is taken.) Memory needs none: every request of the one process settles its key.
 */
export function inFlightHoldMs(longestHandlerWaitMs: number): number {
  return longestHandlerWaitMs + IN_FLIGHT_MARGIN_MS;
}

export type BeginResult =
  /**
   * The key is this request's: `claim` names this begin, and the request's `complete` or `release`
   * passes it back, so it settles only its own claim, never one another request made of the same
   * key since (after its hold lapsed, or a call of it sent again late by a Redis client).
   */
  | { kind: 'started'; claim: string }
  /**
   * The key's earlier request made `made` (noted by its own write, `IdempotencyNote`) and never
   * answered it (its replica died, or its answer was a 5xx): this request takes the key (`claim`, as
   * started) and answers what was made instead of making it again.
   */
  | { kind: 'resume'; claim: string; made: string }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' };

/**
 * Where a keyed request's write notes what it made, in the same atomic step (a shared store: the
 * key's entry and the claim that must still be its own), so that a retry after a lost answer
 * resumes it (`BeginResult` `resume`) instead of making a second one.
 */
export interface IdempotencyNote {
  entry: string;
  claim: string;
}

/** A hash of the request body after RFC 8785 canonicalisation: key order and spacing do not matter. */
export function fingerprint(body: unknown): string {
  return createHash('sha256')
    .update(canonicalize(body ?? null) ?? '')
    .digest('base64url');
}
