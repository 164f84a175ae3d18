import type { RevokedSessionStore, StoreStats } from '../../core/ports.ts';

export interface MemoryRevokedSessionsOptions {
  /** Ids held at once; past it the id revoked first goes. */
  max: number;
}

/**
 * The console's logged-out sessions in one process's memory: a Map of id → until, in the order
 * they were revoked (with one session lifetime, also the order they expire), so the bound takes
 * the one kept longest. A lookup past `until` answers false; the sweep forgets those ids.
 */
export class MemoryRevokedSessions implements RevokedSessionStore {
  readonly #until = new Map<string, number>();
  readonly #max: number;

  constructor(options: MemoryRevokedSessionsOptions) {
    this.#max = options.max;
  }

  revoke(id: string, until: number): Promise<void> {
    if (!this.#until.has(id)) {
      this.#until.set(id, until);
      for (const first of this.#until.keys()) {
        if (this.#until.size <= this.#max) break;
        this.#until.delete(first);
      }
    }
    return Promise.resolve();
  }

  isRevoked(id: string, now: number): Promise<boolean> {
    const until = this.#until.get(id);
    return Promise.resolve(until !== undefined && until > now);
  }

  sweep(now: number): Promise<number> {
    let swept = 0;
    // Walked whole (at most `max` ids, once a minute): ids are in revocation order, which is expiry order only with one lifetime.
    for (const [id, until] of this.#until) {
      if (until <= now) {
        this.#until.delete(id);
        swept++;
      }
    }
    return Promise.resolve(swept);
  }

  stats(): Promise<StoreStats> {
    return Promise.resolve({ size: this.#until.size, max: this.#max });
  }
}
