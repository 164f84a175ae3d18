import { describe, expect, it } from 'vitest';
import { createIdFactory, type IdFactory } from '../../src/core/ids.ts';
import { MemoryIntentStore, type IntentQuery, type MemoryStoreOptions } from '../../src/core/intent-store.ts';
import type { Intent, IntentStatus } from '../../src/core/intents.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { makeIntent } from './support.ts';

const DAY = 86_400_000;

interface Fixture {
  clock: ManualClock;
  ids: IdFactory;
  store: MemoryIntentStore;
  evicted: Intent[];
  /** Inserts an intent created now, then moves the clock on by `stepMs`. */
  add(overrides?: Partial<Intent>, stepMs?: number): Intent;
}

function fixture(options: Partial<MemoryStoreOptions> = {}): Fixture {
  const clock = new ManualClock();
  const ids = createIdFactory(clock);
  const evicted: Intent[] = [];
  const store = new MemoryIntentStore({ ttlMs: DAY, maxIntents: 1_000_000, onEvict: (i) => evicted.push(i), ...options });
  return {
    clock,
    ids,
    store,
    evicted,
    add(overrides = {}, stepMs = 1) {
      const intent = makeIntent(ids, clock.now(), overrides);
      store.insert(intent);
      clock.advance(stepMs);
      return intent;
    },
  };
}

/** Follows nextCursor until the end; fails if it loops. */
function pageAll(store: MemoryIntentStore, query: Omit<IntentQuery, 'cursor'>): { pages: Intent[][]; all: Intent[] } {
  const pages: Intent[][] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 10_000; guard++) {
    const page = store.list({ ...query, cursor });
    pages.push(page.data);
    if (page.nextCursor === null) return { pages, all: pages.flat() };
    expect(page.nextCursor).toBe(page.data.at(-1)?.id);
    cursor = page.nextCursor;
  }
  throw new Error('paging did not terminate');
}

const newestFirst = (intents: Intent[]) => [...intents].reverse();
const idsOf = (intents: Intent[]) => intents.map((i) => i.id);

describe('MemoryIntentStore basics', () => {
  it('get returns the inserted intent by reference; unknown → undefined', () => {
    const f = fixture();
    const a = f.add();
    expect(f.store.get(a.id)).toBe(a);
    expect(f.store.get('pay_unknown')).toBeUndefined();
    expect(f.store.size).toBe(1);
  });

  it('save keeps the (mutated) intent', () => {
    const f = fixture();
    const a = f.add({ status: 'PENDING' });
    a.status = 'APPROVED';
    f.store.save(a);
    expect(f.store.get(a.id)?.status).toBe('APPROVED');
    expect(f.store.list({ limit: 10, status: 'APPROVED' }).data).toEqual([a]);
  });

  it('an empty store lists nothing', () => {
    const f = fixture();
    expect(f.store.list({ limit: 10 })).toEqual({ data: [], nextCursor: null });
    expect(f.store.list({ limit: 10, reservationId: 'res_x' })).toEqual({ data: [], nextCursor: null });
  });
});

describe('MemoryIntentStore.list', () => {
  it('lists newest first', () => {
    const f = fixture();
    const all = Array.from({ length: 5 }, () => f.add());
    expect(f.store.list({ limit: 10 })).toEqual({ data: newestFirst(all), nextCursor: null });
  });

  it('lists newest first for intents created in the same millisecond (monotonic ids)', () => {
    const f = fixture();
    const all = Array.from({ length: 20 }, () => f.add({}, 0));
    expect(idsOf(f.store.list({ limit: 100 }).data)).toEqual(idsOf(newestFirst(all)));
  });

  it('respects limit and sets nextCursor to the last id of the page', () => {
    const f = fixture();
    const all = Array.from({ length: 5 }, () => f.add());
    const page = f.store.list({ limit: 2 });
    expect(page).toEqual({ data: [all[4], all[3]], nextCursor: all[3]?.id });
  });

  it('nextCursor is null when the page holds exactly the rest', () => {
    const f = fixture();
    const all = Array.from({ length: 4 }, () => f.add());
    expect(f.store.list({ limit: 4 })).toEqual({ data: newestFirst(all), nextCursor: null });
    expect(f.store.list({ limit: 2, cursor: all[2]?.id })).toEqual({ data: [all[1], all[0]], nextCursor: null });
  });

  it('23 intents with limit 5: pages of 5,5,5,5,3 covering everything exactly once', () => {
    const f = fixture();
    const all = Array.from({ length: 23 }, () => f.add());
    const { pages, all: listed } = pageAll(f.store, { limit: 5 });
    expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
    expect(idsOf(listed)).toEqual(idsOf(newestFirst(all)));
    expect(new Set(idsOf(listed)).size).toBe(23);
  });

  it('a cursor starts right after that intent', () => {
    const f = fixture();
    const all = Array.from({ length: 6 }, () => f.add());
    expect(f.store.list({ limit: 2, cursor: all[4]?.id })).toEqual({ data: [all[3], all[2]], nextCursor: all[2]?.id });
    expect(f.store.list({ limit: 2, cursor: all[0]?.id })).toEqual({ data: [], nextCursor: null });
  });

  it('a cursor of an intent that no longer exists still pages correctly', () => {
    const f = fixture({ maxIntents: 5 });
    const all = Array.from({ length: 6 }, () => f.add()); // all[0] evicted by size
    expect(f.store.get(all[0]!.id)).toBeUndefined();
    const page = f.store.list({ limit: 10, cursor: all[3]?.id });
    expect(page).toEqual({ data: [all[2], all[1]], nextCursor: null });
  });

  it('filters by reservationId, newest first, with cursors', () => {
    const f = fixture();
    const all = Array.from({ length: 30 }, (_, i) => f.add({ reservationId: `res_${i % 3}` }));
    const res1 = newestFirst(all.filter((i) => i.reservationId === 'res_1'));
    const { pages, all: listed } = pageAll(f.store, { limit: 4, reservationId: 'res_1' });
    expect(pages.map((p) => p.length)).toEqual([4, 4, 2]);
    expect(idsOf(listed)).toEqual(idsOf(res1));
    expect(f.store.list({ limit: 10, reservationId: 'res_none' })).toEqual({ data: [], nextCursor: null });
  });

  it('filters by status, with cursors', () => {
    const f = fixture();
    const statuses: IntentStatus[] = ['PENDING', 'APPROVED', 'FAILED', 'APPROVED', 'CANCELLED'];
    const all = Array.from({ length: 25 }, (_, i) => f.add({ status: statuses[i % statuses.length] }));
    const approved = newestFirst(all.filter((i) => i.status === 'APPROVED'));
    const { pages, all: listed } = pageAll(f.store, { limit: 3, status: 'APPROVED' });
    expect(approved).toHaveLength(10);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 1]);
    expect(idsOf(listed)).toEqual(idsOf(approved));
  });

  it('a status filter whose last match fills the page gives nextCursor null', () => {
    const f = fixture();
    const a = f.add({ status: 'FAILED' });
    f.add({ status: 'APPROVED' });
    const b = f.add({ status: 'FAILED' });
    f.add({ status: 'APPROVED' });
    expect(f.store.list({ limit: 2, status: 'FAILED' })).toEqual({ data: [b, a], nextCursor: null });
  });

  it('filters by reservationId and status together, with cursors', () => {
    const f = fixture();
    const all = Array.from({ length: 40 }, (_, i) =>
      f.add({ reservationId: i % 2 === 0 ? 'res_even' : 'res_odd', status: i % 3 === 0 ? 'FAILED' : 'APPROVED' }),
    );
    const expected = newestFirst(all.filter((i) => i.reservationId === 'res_even' && i.status === 'FAILED'));
    expect(expected).toHaveLength(7);
    const { pages, all: listed } = pageAll(f.store, { limit: 2, reservationId: 'res_even', status: 'FAILED' });
    expect(pages.map((p) => p.length)).toEqual([2, 2, 2, 1]);
    expect(idsOf(listed)).toEqual(idsOf(expected));
  });
});

describe('MemoryIntentStore TTL', () => {
  it('sweep evicts intents older than ttlMs and returns the count', () => {
    const f = fixture({ ttlMs: 1000 });
    const old = [f.add({}, 100), f.add({}, 100), f.add({}, 100)]; // created at T, T+100, T+200
    const young = f.add({}, 0); // created at T+300
    const t = young.createdAt;
    expect(f.store.sweep(t + 999 - 300)).toBe(0); // oldest is 999 ms old
    expect(f.store.sweep(old[0]!.createdAt + 1001)).toBe(1);
    expect(f.store.sweep(old[2]!.createdAt + 1001)).toBe(2);
    expect(f.store.size).toBe(1);
    expect(f.store.get(young.id)).toBe(young);
    expect(idsOf(f.evicted)).toEqual(idsOf(old));
    expect(f.store.list({ limit: 10 })).toEqual({ data: [young], nextCursor: null });
  });

  it('an intent exactly ttlMs old is evicted; one ms younger is kept', () => {
    const f = fixture({ ttlMs: 1000 });
    const a = f.add({}, 0);
    expect(f.store.sweep(a.createdAt + 999)).toBe(0);
    expect(f.store.sweep(a.createdAt + 1000)).toBe(1);
  });

  it('sweep evicts pending intents too', () => {
    const f = fixture({ ttlMs: 10 });
    f.add({ status: 'PENDING' }, 0);
    expect(f.store.sweep(f.clock.now() + 10)).toBe(1);
    expect(f.store.size).toBe(0);
  });

  it('insert sweeps expired intents first', () => {
    const f = fixture({ ttlMs: 1000 });
    const a = f.add({}, 500);
    const b = f.add({}, 600); // now = a + 1100
    const c = f.add({}, 0);
    expect(f.store.size).toBe(2);
    expect(f.evicted).toEqual([a]);
    expect(f.store.list({ limit: 10 }).data).toEqual([c, b]);
  });

  it('TTL-evicted intents leave the reservation index', () => {
    const f = fixture({ ttlMs: 1000 });
    f.add({ reservationId: 'res_a' }, 2000);
    const b = f.add({ reservationId: 'res_a' }, 0);
    expect(f.store.list({ limit: 10, reservationId: 'res_a' })).toEqual({ data: [b], nextCursor: null });
  });

  it('sweep on an empty or fresh store evicts nothing', () => {
    const f = fixture({ ttlMs: 1000 });
    expect(f.store.sweep(f.clock.now())).toBe(0);
    f.add();
    expect(f.store.sweep(f.clock.now())).toBe(0);
    expect(f.evicted).toEqual([]);
  });
});

describe('MemoryIntentStore size bound', () => {
  it('inserting N+1 evicts the oldest FINAL intent; an older PENDING one survives', () => {
    const f = fixture({ maxIntents: 3 });
    const pending = f.add({ status: 'PENDING' });
    const approved = f.add({ status: 'APPROVED' });
    const failed = f.add({ status: 'FAILED' });
    const fresh = f.add({ status: 'PENDING' });
    expect(f.evicted).toEqual([approved]);
    expect(f.store.size).toBe(3);
    expect(f.store.get(approved.id)).toBeUndefined();
    expect(f.store.list({ limit: 10 })).toEqual({ data: [fresh, failed, pending], nextCursor: null });
  });

  it.each(['APPROVED', 'FAILED', 'CANCELLED', 'PARTIALLY_REFUNDED', 'REFUNDED'] as const)('%s counts as final', (status) => {
    const f = fixture({ maxIntents: 2 });
    const pending = f.add({ status: 'PENDING' });
    const final = f.add({ status });
    f.add({ status: 'PENDING' });
    expect(f.evicted).toEqual([final]);
    expect(f.store.get(pending.id)).toBe(pending);
  });

  it('when everything is pending, the oldest is evicted', () => {
    const f = fixture({ maxIntents: 3 });
    const all = Array.from({ length: 5 }, () => f.add({ status: 'PENDING' }));
    expect(f.evicted).toEqual([all[0], all[1]]);
    expect(f.store.list({ limit: 10 }).data).toEqual(newestFirst(all.slice(2)));
  });

  it('size never exceeds maxIntents and evictions are reported once each', () => {
    const f = fixture({ maxIntents: 7 });
    const all: Intent[] = [];
    for (let i = 0; i < 100; i++) {
      all.push(f.add({ status: i % 4 === 0 ? 'PENDING' : 'APPROVED' }));
      expect(f.store.size).toBeLessThanOrEqual(7);
    }
    expect(f.store.size).toBe(7);
    expect(f.evicted).toHaveLength(93);
    expect(new Set(idsOf(f.evicted)).size).toBe(93);
    const kept = new Set(idsOf(f.store.list({ limit: 100 }).data));
    expect(kept.size).toBe(7);
    for (const e of f.evicted) expect(kept.has(e.id)).toBe(false);
  });

  it('size-evicted intents leave the reservation index', () => {
    const f = fixture({ maxIntents: 2 });
    const a = f.add({ reservationId: 'res_a' });
    const b = f.add({ reservationId: 'res_a' });
    const c = f.add({ reservationId: 'res_b' });
    expect(f.evicted).toEqual([a]);
    expect(f.store.list({ limit: 10, reservationId: 'res_a' })).toEqual({ data: [b], nextCursor: null });
    expect(f.store.list({ limit: 10, reservationId: 'res_b' })).toEqual({ data: [c], nextCursor: null });
  });

  it('maxIntents 1 keeps only the newest', () => {
    const f = fixture({ maxIntents: 1 });
    f.add();
    const b = f.add();
    expect(f.store.list({ limit: 10 })).toEqual({ data: [b], nextCursor: null });
  });
});

describe('MemoryIntentStore after evictions and compaction', () => {
  it('pages through a small store that churned through thousands of intents (middle evictions)', () => {
    const f = fixture({ maxIntents: 50 });
    // Every 5th intent stays PENDING, so size-bound eviction removes from the middle (tombstones).
    const all = Array.from({ length: 4000 }, (_, i) => f.add({ status: i % 5 === 0 ? 'PENDING' : 'APPROVED', reservationId: `res_${i % 2}` }));
    expect(f.store.size).toBe(50);
    expect(f.evicted).toHaveLength(3950);

    const live = all.filter((i) => f.store.get(i.id) !== undefined);
    expect(live).toHaveLength(50);
    const { all: listed } = pageAll(f.store, { limit: 7 });
    expect(idsOf(listed)).toEqual(idsOf(newestFirst(live)));

    const { all: pendingListed } = pageAll(f.store, { limit: 3, status: 'PENDING' });
    expect(idsOf(pendingListed)).toEqual(idsOf(newestFirst(live.filter((i) => i.status === 'PENDING'))));

    const { all: res1 } = pageAll(f.store, { limit: 4, reservationId: 'res_1' });
    expect(idsOf(res1)).toEqual(idsOf(newestFirst(live.filter((i) => i.reservationId === 'res_1'))));
  });

  // 2000 old + 1000 young: the sweep leaves 3000 slots for 1000 live intents, so the order array
  // is compacted; 900 old + 1000 young leaves the head advanced without compaction.
  it.each([
    [2000, 'with compaction'],
    [900, 'without compaction'],
  ])('pages correctly after a TTL sweep of %i intents (%s)', (oldCount) => {
    const f = fixture({ ttlMs: 1000 });
    const start = f.clock.now();
    const old = Array.from({ length: oldCount }, () => f.add({}, 0));
    f.clock.advance(600);
    const young = Array.from({ length: 1000 }, () => f.add({}, 0));
    expect(f.store.size).toBe(oldCount + 1000);
    expect(f.store.sweep(start + 1000)).toBe(oldCount);
    expect(idsOf(f.evicted)).toEqual(idsOf(old));
    expect(f.store.size).toBe(1000);
    const { pages, all: listed } = pageAll(f.store, { limit: 33 });
    expect(pages).toHaveLength(Math.ceil(1000 / 33));
    expect(idsOf(listed)).toEqual(idsOf(newestFirst(young)));
    // A cursor older than everything left yields nothing; the newest id as cursor skips only it.
    expect(f.store.list({ limit: 5, cursor: old[10]?.id })).toEqual({ data: [], nextCursor: null });
    expect(f.store.list({ limit: 2, cursor: young[999]?.id })).toEqual({ data: [young[998], young[997]], nextCursor: young[997]?.id });
    // Inserting after the sweep still lists first.
    const next = f.add({}, 0);
    expect(f.store.list({ limit: 1 })).toEqual({ data: [next], nextCursor: next.id });
    expect(f.store.list({ limit: 1, cursor: next.id }).data).toEqual([young[999]]);
  });

  it('mixed TTL and size evictions keep a consistent view', () => {
    const f = fixture({ ttlMs: 500, maxIntents: 100 });
    const all: Intent[] = [];
    for (let i = 0; i < 3000; i++) all.push(f.add({ status: i % 3 === 0 ? 'PENDING' : 'FAILED' }, i % 10 === 0 ? 3 : 0));
    const live = all.filter((i) => f.store.get(i.id) !== undefined);
    expect(f.store.size).toBe(live.length);
    expect(f.store.size).toBeLessThanOrEqual(100);
    expect(f.evicted).toHaveLength(3000 - live.length);
    const { all: listed } = pageAll(f.store, { limit: 9 });
    expect(idsOf(listed)).toEqual(idsOf(newestFirst(live)));
  });
});
