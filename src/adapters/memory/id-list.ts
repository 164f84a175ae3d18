import type { Page } from '../../core/ports.ts';

/**
 * Ids in ascending order (ids are monotonic ULIDs, so ascending is creation order), with lazy
 * removal: an id that leaves the list stays in the array as a dead entry until dead entries make
 * up half of it, then the array is compacted. The owner says which ids are live, and tells the
 * list each time one of its entries dies, so both removal and compaction are O(1) amortised.
 */
export class IdList {
  #ids: string[] = [];
  #dead = 0;

  static of(...ids: string[]): IdList {
    const list = new IdList();
    for (const id of ids) list.insert(id);
    return list;
  }

  /** Live entries. */
  get size(): number {
    return this.#ids.length - this.#dead;
  }

  /** Adds an id in order: an append when it is the newest (the usual case), else a binary-search insert. */
  insert(id: string): void {
    const ids = this.#ids;
    if (ids.length === 0 || (ids[ids.length - 1] as string) < id) ids.push(id);
    else ids.splice(lowerBound(ids, id), 0, id);
  }

  /** One entry is no longer live; compacts with `isLive` once half the entries are dead. */
  markDead(isLive: (id: string) => boolean): void {
    this.#dead++;
    if (this.#ids.length >= 64 && this.#dead * 2 > this.#ids.length) {
      this.#ids = this.#ids.filter(isLive);
      this.#dead = 0;
    }
  }

  /** The raw array (dead entries included) and the index where a newest-first walk before `cursor` starts. */
  walkFrom(cursor: string | undefined): { ids: readonly string[]; start: number } {
    const start = cursor === undefined ? this.#ids.length - 1 : lowerBound(this.#ids, cursor) - 1;
    return { ids: this.#ids, start };
  }
}

/** How many entries one page may look at before it stops and hands back a cursor (a filter that matches rarely never blocks the event loop). */
export const SCAN_BUDGET = 5000;

/**
 * A newest-first page of live records from `list`, after `cursor`. `recordOf` returns the live
 * record of an id (undefined for a dead entry); `filter` narrows further. At most `SCAN_BUDGET`
 * entries are looked at: when that runs out, the page may be short and `nextCursor` is where the
 * scan stopped, so the next page resumes there.
 */
export function pageOf<T extends { id: string }, V = T>(
  list: IdList,
  query: { limit: number; cursor?: string | undefined },
  recordOf: (id: string) => T | undefined,
  view: (record: T) => V,
  filter?: (record: T) => boolean,
): Page<V> {
  const { ids, start } = list.walkFrom(query.cursor);
  const data: V[] = [];
  let last: string | undefined;
  let examined = 0;
  for (let i = start; i >= 0; i--) {
    if (examined === SCAN_BUDGET) return { data, nextCursor: (ids[i + 1] as string | undefined) ?? null };
    examined++;
    const id = ids[i] as string;
    const record = recordOf(id);
    if (record === undefined || (filter !== undefined && !filter(record))) continue;
    if (data.length === query.limit) return { data, nextCursor: last ?? null };
    data.push(view(record));
    last = id;
  }
  return { data, nextCursor: null };
}

function lowerBound(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as string) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Ids in code-unit order (as the console lists users, and as Redis sorts ULIDs). */
export function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The `limit` least of `ids` in `byId` order, in one pass (a sorted list of at most `limit`, each id
 * placed by `lowerBound`): what a console panel shows of a set that is never cut, read on each live
 * update (sorting all of it each time cost a review's 200,000 users hundreds of milliseconds).
 */
export function leastIds(ids: Iterable<string>, limit: number): string[] {
  const least: string[] = [];
  if (limit <= 0) return least;
  for (const id of ids) {
    if (least.length === limit && byId(id, least[limit - 1] as string) >= 0) continue;
    least.splice(lowerBound(least, id), 0, id);
    if (least.length > limit) least.pop();
  }
  return least;
}
