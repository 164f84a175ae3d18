/**
 * A bounded in-memory store of records whose ids sort in creation order (monotonic ULIDs), with
 * newest-first pages, cursors and secondary indexes. Intents and webhook deliveries are kept in
 * one each.
 *
 * Records are kept in creation order, so TTL eviction pops from the front and a cursor is a
 * binary search. Removal from the middle (size-bound eviction that skips unfinished records)
 * leaves a tombstone in the order array, compacted once tombstones outnumber live entries.
 */

export interface StoredRecord {
  id: string;
  createdAt: number;
}

export interface OrderedStoreOptions<T extends StoredRecord, I extends string> {
  ttlMs: number;
  maxRecords: number;
  /** Finished records are evicted first when the store is full. */
  isFinal: (record: T) => boolean;
  /** Secondary indexes: the key a record is listed under (null: not indexed). Keys must not change. */
  indexes?: Record<I, (record: T) => string | null>;
  onEvict?: (record: T) => void;
}

export interface PageQuery<T, I extends string> {
  limit: number;
  cursor?: string | undefined;
  /** Walk only the records listed under this index key. */
  index?: { name: I; key: string } | undefined;
  filter?: ((record: T) => boolean) | undefined;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export class OrderedStore<T extends StoredRecord, I extends string = never> {
  readonly #byId = new Map<string, T>();
  readonly #indexes = new Map<I, Map<string, string[]>>();
  #order: string[] = [];
  #head = 0;
  readonly #options: OrderedStoreOptions<T, I>;

  constructor(options: OrderedStoreOptions<T, I>) {
    this.#options = options;
    for (const name of Object.keys(options.indexes ?? {}) as I[]) this.#indexes.set(name, new Map());
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): T | undefined {
    return this.#byId.get(id);
  }

  insert(record: T): void {
    this.sweep(record.createdAt);
    while (this.#byId.size >= this.#options.maxRecords && this.#evictOldest()) {
      // evict until there is room
    }
    this.#byId.set(record.id, record);
    this.#order.push(record.id);
    for (const [name, keys] of this.#indexes) {
      const key = this.#keyOf(name, record);
      if (key === null) continue;
      const ids = keys.get(key);
      if (ids === undefined) keys.set(key, [record.id]);
      else ids.push(record.id);
    }
  }

  list(query: PageQuery<T, I>): Page<T> {
    const ids = query.index === undefined ? this.#order : (this.#indexes.get(query.index.name)?.get(query.index.key) ?? []);
    const floor = ids === this.#order ? this.#head : 0;
    let i = query.cursor === undefined ? ids.length - 1 : lowerBound(ids, query.cursor, floor) - 1;
    const data: T[] = [];
    let nextCursor: string | null = null;
    for (; i >= floor; i--) {
      const record = this.#byId.get(ids[i] as string);
      if (record === undefined) continue;
      if (query.filter !== undefined && !query.filter(record)) continue;
      if (data.length === query.limit) {
        nextCursor = (data.at(-1) as T).id;
        break;
      }
      data.push(record);
    }
    return { data, nextCursor };
  }

  /** The newest record listed under an index key (and passing `filter`, when given). */
  latest(name: I, key: string, filter?: (record: T) => boolean): T | undefined {
    const ids = this.#indexes.get(name)?.get(key);
    for (let i = (ids?.length ?? 0) - 1; i >= 0; i--) {
      const record = this.#byId.get((ids as string[])[i] as string);
      if (record !== undefined && (filter === undefined || filter(record))) return record;
    }
    return undefined;
  }

  /** Drops what has outlived its TTL; returns how many records were evicted. */
  sweep(now: number): number {
    const cutoff = now - this.#options.ttlMs;
    let evicted = 0;
    while (this.#head < this.#order.length) {
      const record = this.#byId.get(this.#order[this.#head] as string);
      if (record !== undefined && record.createdAt > cutoff) break;
      if (record !== undefined) {
        this.#remove(record);
        evicted++;
      }
      this.#head++;
    }
    this.#compact();
    return evicted;
  }

  /** Evicts the oldest final record, or the oldest of all when none is final. */
  #evictOldest(): boolean {
    let oldest: T | undefined;
    for (let i = this.#head; i < this.#order.length; i++) {
      const record = this.#byId.get(this.#order[i] as string);
      if (record === undefined) continue;
      oldest ??= record;
      if (this.#options.isFinal(record)) {
        this.#remove(record);
        this.#compact();
        return true;
      }
    }
    if (oldest === undefined) return false;
    this.#remove(oldest);
    this.#compact();
    return true;
  }

  #keyOf(name: I, record: T): string | null {
    return (this.#options.indexes as Record<I, (record: T) => string | null>)[name](record);
  }

  #remove(record: T): void {
    this.#byId.delete(record.id);
    for (const [name, keys] of this.#indexes) {
      const key = this.#keyOf(name, record);
      const ids = key === null ? undefined : keys.get(key);
      if (ids === undefined) continue;
      const at = ids.indexOf(record.id);
      if (at >= 0) ids.splice(at, 1);
      if (ids.length === 0) keys.delete(key as string);
    }
    this.#options.onEvict?.(record);
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
