import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Clock } from './clock.ts';

/**
 * Idempotency keys, after the IETF Idempotency-Key header draft and Stripe's behaviour: a key is
 * scoped to method + route; the first request with it runs and its response is stored; a twin
 * with the same body gets that response again; a different body is a mismatch; a twin that
 * arrives while the first is still running is refused. Only requests that passed validation get
 * here, so invalid requests are never stored.
 * @see https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/
 */

export interface StoredResponse {
  statusCode: number;
  body: string;
}

export type BeginResult =
  | { kind: 'started' }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' };

interface Entry {
  fingerprint: string;
  expiresAt: number;
  response: StoredResponse | null;
}

export interface IdempotencyOptions {
  clock: Clock;
  ttlMs: number;
  maxKeys: number;
}

/** A hash of the request body after RFC 8785 canonicalisation: key order and spacing do not matter. */
export function fingerprint(body: unknown): string {
  return createHash('sha256')
    .update(canonicalize(body ?? null) ?? '')
    .digest('base64url');
}

export class IdempotencyStore {
  /** Insertion order is expiry order (one TTL for all), so the oldest entries are at the front. */
  readonly #entries = new Map<string, Entry>();
  readonly #options: IdempotencyOptions;

  constructor(options: IdempotencyOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  begin(scope: string, key: string, bodyFingerprint: string): BeginResult {
    const now = this.#options.clock.now();
    this.sweep(now);
    const id = entryId(scope, key);
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      if (entry.fingerprint !== bodyFingerprint) return { kind: 'mismatch' };
      return entry.response === null ? { kind: 'in_progress' } : { kind: 'replay', response: entry.response };
    }
    if (this.#entries.size >= this.#options.maxKeys) this.#evictOldest();
    this.#entries.set(id, { fingerprint: bodyFingerprint, expiresAt: now + this.#options.ttlMs, response: null });
    return { kind: 'started' };
  }

  /** Stores the response of a request that `begin` started. */
  complete(scope: string, key: string, response: StoredResponse): void {
    const entry = this.#entries.get(entryId(scope, key));
    if (entry !== undefined) entry.response = response;
  }

  /** Forgets a started request that ended without a response worth replaying (a 5xx), so it can be retried. */
  release(scope: string, key: string): void {
    const id = entryId(scope, key);
    if (this.#entries.get(id)?.response === null) this.#entries.delete(id);
  }

  sweep(now: number): number {
    let evicted = 0;
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt > now) break;
      this.#entries.delete(id);
      evicted++;
    }
    return evicted;
  }

  #evictOldest(): void {
    for (const [id, entry] of this.#entries) {
      if (entry.response === null) continue;
      this.#entries.delete(id);
      return;
    }
  }
}

/** A newline cannot occur in a header value nor in a route, so scope and key never run together. */
function entryId(scope: string, key: string): string {
  return `${scope}\n${key}`;
}
