import type { Intent, IntentStatus } from './intents.ts';

export interface IntentQuery {
  reservationId?: string | undefined;
  status?: IntentStatus | undefined;
  limit: number;
  /** The id of the last intent of the previous page. */
  cursor?: string | undefined;
}

export interface IntentPage {
  data: Intent[];
  nextCursor: string | null;
}

/**
 * Where intents live. The in-memory store is the default; other back ends implement the same
 * interface. `save` is called after every change so a back end that copies can persist it.
 */
export interface IntentStore {
  get(id: string): Intent | undefined;
  insert(intent: Intent): void;
  save(intent: Intent): void;
  list(query: IntentQuery): IntentPage;
  readonly size: number;
  /** Drops what has outlived its TTL; returns how many intents were evicted. */
  sweep(now: number): number;
}

export interface MemoryStoreOptions {
  ttlMs: number;
  maxIntents: number;
  /** Called with each intent the store evicts, so owners can forget what they hold for it. */
  onEvict?: (intent: Intent) => void;
}

const FINAL: ReadonlySet<IntentStatus> = new Set(['APPROVED', 'FAILED', 'CANCELLED', 'PARTIALLY_REFUNDED', 'REFUNDED']);

/**
 * A bounded in-memory store. Intents are kept in creation order (their ids are monotonic ULIDs),
 * so TTL eviction pops from the front and cursors are a binary search. Removal from the middle
 * (size-bound eviction that skips pending intents) leaves a tombstone in the order array, which is
 * compacted once tombstones outnumber live entries.
 */
export class MemoryIntentStore implements IntentStore {
  readonly #byId = new Map<string, Intent>();
  readonly #byReservation = new Map<string, string[]>();
  #order: string[] = [];
  #head = 0;
  readonly #options: MemoryStoreOptions;

  constructor(options: MemoryStoreOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): Intent | undefined {
    return this.#byId.get(id);
  }

  insert(intent: Intent): void {
    this.sweep(intent.createdAt);
    while (this.#byId.size >= this.#options.maxIntents && this.#evictOldest()) {
      // evict until there is room
    }
    this.#byId.set(intent.id, intent);
    this.#order.push(intent.id);
    const ids = this.#byReservation.get(intent.reservationId);
    if (ids === undefined) this.#byReservation.set(intent.reservationId, [intent.id]);
    else ids.push(intent.id);
  }

  save(_intent: Intent): void {
    // Intents are held by reference: the change is already stored.
  }

  list(query: IntentQuery): IntentPage {
    const ids = query.reservationId === undefined ? this.#order : (this.#byReservation.get(query.reservationId) ?? []);
    const floor = ids === this.#order ? this.#head : 0;
    let i = query.cursor === undefined ? ids.length - 1 : lowerBound(ids, query.cursor, floor) - 1;
    const data: Intent[] = [];
    let nextCursor: string | null = null;
    for (; i >= floor; i--) {
      const intent = this.#byId.get(ids[i] as string);
      if (intent === undefined) continue;
      if (query.status !== undefined && intent.status !== query.status) continue;
      if (data.length === query.limit) {
        nextCursor = (data.at(-1) as Intent).id;
        break;
      }
      data.push(intent);
    }
    return { data, nextCursor };
  }

  sweep(now: number): number {
    const cutoff = now - this.#options.ttlMs;
    let evicted = 0;
    while (this.#head < this.#order.length) {
      const id = this.#order[this.#head] as string;
      const intent = this.#byId.get(id);
      if (intent !== undefined && intent.createdAt > cutoff) break;
      if (intent !== undefined) {
        this.#remove(intent);
        evicted++;
      }
      this.#head++;
    }
    this.#compact();
    return evicted;
  }

  /** Evicts the oldest final intent, or the oldest of all when every intent is pending. */
  #evictOldest(): boolean {
    let oldest: Intent | undefined;
    for (let i = this.#head; i < this.#order.length; i++) {
      const intent = this.#byId.get(this.#order[i] as string);
      if (intent === undefined) continue;
      oldest ??= intent;
      if (FINAL.has(intent.status)) {
        this.#remove(intent);
        this.#compact();
        return true;
      }
    }
    if (oldest === undefined) return false;
    this.#remove(oldest);
    this.#compact();
    return true;
  }

  #remove(intent: Intent): void {
    this.#byId.delete(intent.id);
    const ids = this.#byReservation.get(intent.reservationId);
    if (ids !== undefined) {
      const at = ids.indexOf(intent.id);
      if (at >= 0) ids.splice(at, 1);
      if (ids.length === 0) this.#byReservation.delete(intent.reservationId);
    }
    this.#options.onEvict?.(intent);
  }

  #compact(): void {
    const slots = this.#order.length;
    if (slots < 1024 || slots < 2 * this.#byId.size) return;
    this.#order = this.#order.filter((id, i) => i >= this.#head && this.#byId.has(id));
    this.#head = 0;
  }
}

/** The index of the first id that is not less than `id` (ids sort in creation order). */
function lowerBound(ids: string[], id: string, from: number): number {
  let lo = from;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as string) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
