import type { Intent, IntentStatus } from './intents.ts';
import { OrderedStore } from './ordered-store.ts';

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

/** The bounded in-memory intent store: TTL, a maximum size (oldest final intents go first), cursors. */
export class MemoryIntentStore implements IntentStore {
  readonly #records: OrderedStore<Intent, 'reservation'>;

  constructor(options: MemoryStoreOptions) {
    this.#records = new OrderedStore<Intent, 'reservation'>({
      ttlMs: options.ttlMs,
      maxRecords: options.maxIntents,
      isFinal: (intent) => intent.status !== 'PENDING',
      indexes: { reservation: (intent) => intent.reservationId },
      ...(options.onEvict === undefined ? {} : { onEvict: options.onEvict }),
    });
  }

  get size(): number {
    return this.#records.size;
  }

  get(id: string): Intent | undefined {
    return this.#records.get(id);
  }

  insert(intent: Intent): void {
    this.#records.insert(intent);
  }

  save(_intent: Intent): void {
    // Intents are held by reference: the change is already stored.
  }

  list(query: IntentQuery): IntentPage {
    const { status } = query;
    return this.#records.list({
      limit: query.limit,
      cursor: query.cursor,
      index: query.reservationId === undefined ? undefined : { name: 'reservation', key: query.reservationId },
      filter: status === undefined ? undefined : (intent) => intent.status === status,
    });
  }

  sweep(now: number): number {
    return this.#records.sweep(now);
  }
}
