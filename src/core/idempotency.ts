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
 * How long a key whose request is still running is kept at least, whatever IDEMPOTENCY_TTL_MS says:
 * a TTL shorter than a request (a fault's latency, a `delay` scenario) must not free the key for a
 * twin while the first still runs. Longer than any request the service runs (a fault holds one at
 * most 10 minutes), and still finite, so a claim left by a replica killed mid-request goes.
 */
export const IN_FLIGHT_HOLD_MS = 15 * 60_000;

export type BeginResult =
  | { kind: 'started' }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' };

/** A hash of the request body after RFC 8785 canonicalisation: key order and spacing do not matter. */
export function fingerprint(body: unknown): string {
  return createHash('sha256')
    .update(canonicalize(body ?? null) ?? '')
    .digest('base64url');
}
