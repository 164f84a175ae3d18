import { randomUUID } from 'node:crypto';
import type { BeginResult, StoredResponse } from '../../core/idempotency.ts';
import type { IdempotencyStore, StoreStats } from '../../core/ports.ts';

export interface MemoryIdempotencyOptions {
  ttlMs: number;
  maxKeys: number;
}

interface Entry {
  fingerprint: string;
  expiresAt: number;
  response: StoredResponse | null;
  /** The begin that made it: only its request's complete or release settles it. */
  claim: string;
  /** What the entry costs, estimated, for the byte figure. */
  bytes: number;
}

/**
 * Per-entry cost beyond its strings' characters (one byte each: V8 keeps ASCII strings one byte a
 * character): the Map slot, the entry and response objects and the string headers, as measured
 * with scripts/bench-memory.ts.
 */
export const ENTRY_OVERHEAD_BYTES = 230;

/** The most completed keys one begin evicts to come back down to the bound (Redis' script takes as many). */
const EVICTED_PER_BEGIN = 1_000;

/**
 * Idempotency keys in one process's memory. A Map keeps insertion order, and with one TTL for
 * every key insertion order is expiry order, so the TTL sweep pops from the front. A key whose
 * request still runs when its TTL ends (a TTL shorter than the request) moves to a second Map
 * instead, where the sweep never looks: it stays until its request stores its answer (which then
 * goes at once: its time is up) or releases it. Every request of the one process settles its key,
 * so nothing stays there longer than a request runs. At the bound, the oldest completed key goes
 * (an in-flight one never does: its request would lose its claim), and past it (in-flight keys
 * pushed it there) as many as bring it back down. `stats().bytes` estimates the
 * memory held, stored responses included.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, Entry>();
  /** Keys past their TTL whose requests still run. */
  readonly #overdue = new Map<string, Entry>();
  readonly #options: MemoryIdempotencyOptions;
  #bytes = 0;

  constructor(options: MemoryIdempotencyOptions) {
    this.#options = options;
  }

  begin(scope: string, key: string, fingerprint: string, now: number): Promise<BeginResult> {
    this.#sweep(now);
    const id = entryId(scope, key);
    const entry = this.#entries.get(id) ?? this.#overdue.get(id);
    if (entry !== undefined) {
      if (entry.fingerprint !== fingerprint) return Promise.resolve({ kind: 'mismatch' });
      return Promise.resolve(entry.response === null ? { kind: 'in_progress' } : { kind: 'replay', response: copyResponse(entry.response) });
    }
    // At the bound the oldest completed key goes; past it (keys in flight, which never go, pushed it
    // there), down to it, up to EVICTED_PER_BEGIN keys, as Redis' (before 2026-12-06 one went a begin
    // and the store stayed over: a retry replayed here ran again on Redis, a review).
    const excess = this.#entries.size + this.#overdue.size - this.#options.maxKeys + 1;
    if (excess > 0) this.#evictOldestCompleted(Math.min(excess, EVICTED_PER_BEGIN));
    const bytes = id.length + fingerprint.length + ENTRY_OVERHEAD_BYTES;
    const claim = randomUUID();
    this.#entries.set(id, { fingerprint, expiresAt: now + this.#options.ttlMs, response: null, claim, bytes });
    this.#bytes += bytes;
    return Promise.resolve({ kind: 'started', claim });
  }

  complete(scope: string, key: string, claim: string, response: StoredResponse): Promise<void> {
    const id = entryId(scope, key);
    const overdue = this.#overdue.get(id);
    // Its time is up: the answer would be swept at once.
    if (overdue?.claim === claim) this.#forget(this.#overdue, id, overdue);
    const entry = this.#entries.get(id);
    if (entry !== undefined && entry.response === null && entry.claim === claim) {
      entry.response = copyResponse(response);
      entry.claim = ''; // settled: no call settles it again
      const extra = response.body.length;
      entry.bytes += extra;
      this.#bytes += extra;
    }
    return Promise.resolve();
  }

  release(scope: string, key: string, claim: string): Promise<void> {
    const id = entryId(scope, key);
    const overdue = this.#overdue.get(id);
    if (overdue?.claim === claim) this.#forget(this.#overdue, id, overdue);
    const entry = this.#entries.get(id);
    if (entry?.response === null && entry.claim === claim) this.#forget(this.#entries, id, entry);
    return Promise.resolve();
  }

  /** Nothing to forget: memory keeps nothing per running request besides its entry, which stays as it is. */
  abandon(): void {
    // nothing to do
  }

  stats(): Promise<StoreStats & { bytes: number }> {
    return Promise.resolve({ size: this.#entries.size + this.#overdue.size, max: this.#options.maxKeys, bytes: this.#bytes });
  }

  sweep(now: number): Promise<number> {
    return Promise.resolve(this.#sweep(now));
  }

  #sweep(now: number): number {
    let evicted = 0;
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt > now) break;
      if (entry.response === null) {
        this.#entries.delete(id);
        this.#overdue.set(id, entry);
        continue;
      }
      this.#forget(this.#entries, id, entry);
      evicted++;
    }
    return evicted;
  }

  #evictOldestCompleted(count: number): void {
    let left = count;
    for (const [id, entry] of this.#entries) {
      if (entry.response === null) continue;
      this.#forget(this.#entries, id, entry);
      if (--left === 0) return;
    }
  }

  #forget(map: Map<string, Entry>, id: string, entry: Entry): void {
    map.delete(id);
    this.#bytes -= entry.bytes;
  }
}

function copyResponse(response: StoredResponse): StoredResponse {
  return response.headers === undefined ? { ...response } : { ...response, headers: { ...response.headers } };
}

/** A newline cannot occur in a header value nor in a scope, so scope and key never run together. */
function entryId(scope: string, key: string): string {
  return `${scope}\n${key}`;
}
