import { describe, expect, it } from 'vitest';
import { byId, leastIds } from '../../src/adapters/memory/id-list.ts';
import { createRandom } from '../../src/core/random.ts';

describe('leastIds', () => {
  it('is the first `limit` of the ids sorted by id, in one pass, whatever their order', () => {
    const random = createRandom(7);
    for (const [count, limit] of [[0, 5], [3, 5], [5, 5], [1_000, 100], [1_000, 1], [50, 0]] as const) {
      const ids = Array.from({ length: count }, () => `user_${Math.floor(random.next() * 10_000)}`);
      expect(leastIds(ids, limit), `${count} ids, limit ${limit}`).toEqual([...ids].sort(byId).slice(0, limit));
    }
  });
});
