import { IdList } from './id-list.ts';

/**
 * A secondary index: for each key (a reservation, a user, a subject), its ids in creation order.
 * Most keys have one id, so a key holds its id alone until a second one makes it a list: a list
 * object per record would cost more than the record's other indexes together.
 */
export class KeyedIds {
  readonly #byKey = new Map<string, string | IdList>();

  insert(key: string, id: string): void {
    const held = this.#byKey.get(key);
    if (held === undefined) this.#byKey.set(key, id);
    else if (typeof held === 'string') this.#byKey.set(key, IdList.of(held, id));
    else held.insert(id);
  }

  /** The ids of a key, as a list to page through; undefined when it has none. */
  get(key: string): IdList | undefined {
    const held = this.#byKey.get(key);
    return typeof held === 'string' ? IdList.of(held) : held;
  }

  /** One id of `key` is no longer live (see IdList.markDead); the key goes with its last id. */
  markDead(key: string, isLive: (id: string) => boolean): void {
    const held = this.#byKey.get(key);
    if (held === undefined) return;
    if (typeof held === 'string') {
      this.#byKey.delete(key);
      return;
    }
    held.markDead(isLive);
    if (held.size === 0) this.#byKey.delete(key);
  }

  /** Ids a key has (dead entries of a list included until it compacts). */
  size(key: string): number {
    const held = this.#byKey.get(key);
    return held === undefined ? 0 : typeof held === 'string' ? 1 : held.size;
  }
}
