import { describe, expect, it } from 'vitest';
import type { BeginResult, StoredResponse } from '../../../src/core/idempotency.ts';
import type { IdempotencyStore } from '../../../src/core/ports.ts';
import { concurrently, DAY, HOUR, MINUTE, T0, tally } from './fixtures.ts';

export interface IdempotencyStoreOptions {
  /** A key is forgotten this long after its `begin`. */
  ttlMs: number;
  maxKeys: number;
}

export type IdempotencyStoreFactory = (options: IdempotencyStoreOptions) => Promise<IdempotencyStore> | IdempotencyStore;

const SCOPE = 'POST /v1/sim/payment-intents';
const CREATED: StoredResponse = { statusCode: 201, body: '{"id":"pay_1"}', headers: { location: '/v1/sim/payment-intents/pay_1' } };
/** A begin that started its request: its claim is the store's own name for it. */
const STARTED = { kind: 'started', claim: expect.any(String) as unknown };

/** The claim of a begin that started. */
function claimOf(result: BeginResult): string {
  if (result.kind !== 'started') throw new Error(`expected the begin to start, it was ${result.kind}`);
  return result.claim;
}

/** The IdempotencyStore port's contract (src/core/ports.ts), for any adapter `make` builds fresh. */
export function idempotencyStoreContract(name: string, make: IdempotencyStoreFactory): void {
  const roomy = () => make({ ttlMs: DAY, maxKeys: 1_000 });

  /** A key begun and completed at `now`. */
  async function completed(store: IdempotencyStore, key: string, now = T0, response = CREATED): Promise<void> {
    await store.complete(SCOPE, key, claimOf(await store.begin(SCOPE, key, 'fp', now)), response);
  }

  describe(`IdempotencyStore contract: ${name}`, () => {
    it('starts a new key; a twin is in progress until the response is stored, then replays it', async () => {
      const store = await roomy();
      const started = await store.begin(SCOPE, 'k1', 'fp', T0);
      expect(started).toEqual(STARTED);
      expect(await store.begin(SCOPE, 'k1', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
      await store.complete(SCOPE, 'k1', claimOf(started), CREATED);
      expect(await store.begin(SCOPE, 'k1', 'fp', T0 + 2)).toEqual({ kind: 'replay', response: CREATED });
      expect(await store.begin(SCOPE, 'k1', 'fp', T0 + 3)).toEqual({ kind: 'replay', response: CREATED });
    });

    it('a different body under the same key is a mismatch, in progress or completed', async () => {
      const store = await roomy();
      const claim = claimOf(await store.begin(SCOPE, 'k1', 'fp', T0));
      expect(await store.begin(SCOPE, 'k1', 'other', T0)).toEqual({ kind: 'mismatch' });
      await store.complete(SCOPE, 'k1', claim, CREATED);
      expect(await store.begin(SCOPE, 'k1', 'other', T0)).toEqual({ kind: 'mismatch' });
    });

    it('keys are scoped: the same key in another scope is another request', async () => {
      const store = await roomy();
      await completed(store, 'k1');
      expect(await store.begin('POST /api/v1/payments', 'k1', 'other', T0)).toEqual(STARTED);
      expect(await store.begin(SCOPE, 'k1', 'fp', T0)).toEqual({ kind: 'replay', response: CREATED });
    });

    it('complete stores only the response of a started request, and only the first', async () => {
      const store = await roomy();
      await store.complete(SCOPE, 'never-begun', 'a claim never made', CREATED);
      expect(await store.begin(SCOPE, 'never-begun', 'fp', T0)).toEqual(STARTED);
      const claim = claimOf(await store.begin(SCOPE, 'k1', 'fp', T0));
      await store.complete(SCOPE, 'k1', claim, CREATED);
      await store.complete(SCOPE, 'k1', claim, { statusCode: 500, body: 'late' });
      expect(await store.begin(SCOPE, 'k1', 'fp', T0)).toEqual({ kind: 'replay', response: CREATED });
    });

    it('release forgets an in-progress key only', async () => {
      const store = await roomy();
      await store.release(SCOPE, 'k1', claimOf(await store.begin(SCOPE, 'k1', 'fp', T0)));
      expect(await store.begin(SCOPE, 'k1', 'other', T0 + 1)).toEqual(STARTED);
      const claim = claimOf(await store.begin(SCOPE, 'k2', 'fp', T0));
      await store.complete(SCOPE, 'k2', claim, CREATED);
      await store.release(SCOPE, 'k2', claim);
      expect(await store.begin(SCOPE, 'k2', 'fp', T0 + 2)).toEqual({ kind: 'replay', response: CREATED });
      await store.release(SCOPE, 'unknown', claim);
      expect((await store.stats()).size).toBe(2);
    });

    it('complete and release settle only the claim their begin made: another claim of the key, or none, is left as it is', async () => {
      const store = await roomy();
      const first = claimOf(await store.begin(SCOPE, 'k1', 'fp', T0));
      // A later claim of the key, as made after the first's hold lapsed (or a call sent again late), is not the first's.
      const other = claimOf(await store.begin(SCOPE, 'k2', 'fp', T0));
      expect(other).not.toBe(first);
      await store.release(SCOPE, 'k1', other);
      await store.complete(SCOPE, 'k1', other, { statusCode: 200, body: 'not this request' });
      expect(await store.begin(SCOPE, 'k1', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
      await store.release(SCOPE, 'k1', first);
      const second = claimOf(await store.begin(SCOPE, 'k1', 'fp', T0 + 2));
      // The first request's claim is gone: its late answer or release leaves the second's.
      await store.complete(SCOPE, 'k1', first, { statusCode: 200, body: 'late' });
      await store.release(SCOPE, 'k1', first);
      expect(await store.begin(SCOPE, 'k1', 'fp', T0 + 3)).toEqual({ kind: 'in_progress' });
      await store.complete(SCOPE, 'k1', second, CREATED);
      expect(await store.begin(SCOPE, 'k1', 'fp', T0 + 4)).toEqual({ kind: 'replay', response: CREATED });
      expect((await store.stats()).size).toBe(2);
    });

    it('abandon leaves the key as it is (begun: a twin is in progress) and may be called again, or for a claim settled already', async () => {
      const store = await roomy();
      const claim = claimOf(await store.begin(SCOPE, 'k', 'fp', T0));
      store.abandon(claim);
      store.abandon(claim);
      expect(await store.begin(SCOPE, 'k', 'fp', T0 + 1)).toEqual({ kind: 'in_progress' });
      const done = claimOf(await store.begin(SCOPE, 'd', 'fp', T0));
      await store.complete(SCOPE, 'd', done, CREATED);
      store.abandon(done);
      expect(await store.begin(SCOPE, 'd', 'fp', T0 + 1)).toEqual({ kind: 'replay', response: CREATED });
      expect((await store.stats()).size).toBe(2);
    });

    it('responses go in and come out as copies, headers included', async () => {
      const store = await roomy();
      const response: StoredResponse = { statusCode: 201, body: '{"id":"pay_1"}', headers: { location: '/pay_1' } };
      await completed(store, 'k1', T0, response);
      response.statusCode = 500;
      (response.headers as Record<string, string>).location = '/changed-by-caller';
      const replay = (await store.begin(SCOPE, 'k1', 'fp', T0)) as Extract<BeginResult, { kind: 'replay' }>;
      replay.response.body = 'changed';
      (replay.response.headers as Record<string, string>)['x-extra'] = '1';
      expect(await store.begin(SCOPE, 'k1', 'fp', T0)).toEqual({ kind: 'replay', response: { statusCode: 201, body: '{"id":"pay_1"}', headers: { location: '/pay_1' } } });
    });

    describe('under concurrent calls', () => {
      it('of 200 begins of one key exactly one starts; the others are in progress', async () => {
        const store = await roomy();
        const results = await concurrently(200, () => store.begin(SCOPE, 'k1', 'fp', T0));
        expect(tally(results)).toEqual({ started: 1, in_progress: 199 });
        expect((await store.stats()).size).toBe(1);
      });

      it('with two bodies racing, one starts and only the other body is a mismatch', async () => {
        const store = await roomy();
        const results = await concurrently(200, (i) => store.begin(SCOPE, 'k1', i % 2 === 0 ? 'fp-a' : 'fp-b', T0));
        expect(tally(results)).toEqual({ started: 1, in_progress: 99, mismatch: 100 });
        const winner = results.findIndex((r) => r.kind === 'started') % 2;
        results.forEach((r, i) => {
          if (r.kind === 'mismatch') expect(i % 2).not.toBe(winner);
        });
      });

      it('200 different keys begun at once all start', async () => {
        const store = await roomy();
        const results = await concurrently(200, (i) => store.begin(SCOPE, `k${i}`, 'fp', T0));
        expect(tally(results)).toEqual({ started: 200 });
        expect((await store.stats()).size).toBe(200);
      });
    });

    describe('bounds and TTL', () => {
      it('keys expire ttlMs after their begin', async () => {
        const store = await make({ ttlMs: HOUR, maxKeys: 100 });
        await completed(store, 'done', T0);
        await store.begin(SCOPE, 'running', 'fp', T0);
        await store.begin(SCOPE, 'later', 'fp', T0 + HOUR / 2);
        expect(await store.begin(SCOPE, 'done', 'fp', T0 + HOUR - 1)).toEqual({ kind: 'replay', response: CREATED });
        expect(await store.begin(SCOPE, 'running', 'fp', T0 + HOUR - 1)).toEqual({ kind: 'in_progress' });
        expect(await store.sweep(T0 + HOUR - 1)).toBe(0);
        // The completed key goes; the running one stays while its request runs (see below).
        expect(await store.sweep(T0 + HOUR + 1)).toBe(1);
        expect(await store.stats()).toMatchObject({ size: 2, max: 100 });
        expect(await store.begin(SCOPE, 'done', 'fp', T0 + HOUR + 1)).toEqual(STARTED);
        expect(await store.begin(SCOPE, 'later', 'fp', T0 + HOUR + 1)).toEqual({ kind: 'in_progress' });
        expect(await store.begin(SCOPE, 'running', 'fp', T0 + HOUR + 1)).toEqual({ kind: 'in_progress' });
      });

      it('a TTL shorter than a request: its key is kept while it runs, then goes once it has stored its answer or released it', async () => {
        const store = await make({ ttlMs: 1_000, maxKeys: 100 });
        const slow = claimOf(await store.begin(SCOPE, 'slow', 'fp', T0));
        const failing = claimOf(await store.begin(SCOPE, 'failing', 'fp', T0));
        await completed(store, 'quick', T0);
        // At the TTL: the completed key goes; the two running ones stay, so a twin is still refused.
        expect(await store.sweep(T0 + 1_000)).toBe(1);
        expect(await store.begin(SCOPE, 'slow', 'fp', T0 + 1_000)).toEqual({ kind: 'in_progress' });
        const quick = await store.begin(SCOPE, 'quick', 'fp', T0 + 1_000);
        expect(quick).toEqual(STARTED);
        expect((await store.stats()).size).toBe(3);
        // Half an hour on (a request held by a long delay scenario): still refused.
        expect(await store.sweep(T0 + 30 * MINUTE)).toBe(0);
        expect(await store.begin(SCOPE, 'slow', 'another body', T0 + 30 * MINUTE)).toEqual({ kind: 'mismatch' });
        // It ends: its answer is stored, and as the key's TTL counts from its begin, it goes.
        await store.complete(SCOPE, 'slow', slow, CREATED);
        // Its time was up: it no longer counts (the running 'failing' and the new 'quick' do).
        expect((await store.stats()).size).toBe(2);
        const slowAgain = await store.begin(SCOPE, 'slow', 'fp', T0 + 30 * MINUTE);
        expect(slowAgain).toEqual(STARTED);
        await store.release(SCOPE, 'failing', failing);
        const failingAgain = await store.begin(SCOPE, 'failing', 'fp', T0 + 30 * MINUTE);
        expect(failingAgain).toEqual(STARTED);
        await store.sweep(T0 + 30 * MINUTE + 1_000);
        await Promise.all(
          [
            ['slow', slowAgain],
            ['failing', failingAgain],
            ['quick', quick],
          ].map(([key, begun]) => store.release(SCOPE, key as string, claimOf(begun as BeginResult))),
        );
        expect(await store.stats()).toMatchObject({ size: 0, bytes: 0 });
      });

      it('an expired key starts afresh without a sweep', async () => {
        const store = await make({ ttlMs: HOUR, maxKeys: 100 });
        await completed(store, 'k1', T0);
        expect(await store.begin(SCOPE, 'k1', 'new-body', T0 + HOUR + 1)).toEqual(STARTED);
      });

      it('at the bound the oldest completed key goes, never an in-progress one', async () => {
        const store = await make({ ttlMs: DAY, maxKeys: 3 });
        await store.begin(SCOPE, 'running', 'fp', T0);
        await completed(store, 'oldest-done', T0 + 1);
        await completed(store, 'newer-done', T0 + 2);
        expect(await store.begin(SCOPE, 'fourth', 'fp', T0 + 3)).toEqual(STARTED);
        expect(await store.stats()).toMatchObject({ size: 3, max: 3 });
        expect(await store.begin(SCOPE, 'running', 'fp', T0 + 4)).toEqual({ kind: 'in_progress' });
        expect(await store.begin(SCOPE, 'newer-done', 'fp', T0 + 4)).toEqual({ kind: 'replay', response: CREATED });
        expect(await store.begin(SCOPE, 'fourth', 'fp', T0 + 4)).toEqual({ kind: 'in_progress' });
        expect(await store.begin(SCOPE, 'oldest-done', 'fp', T0 + 4)).toEqual(STARTED);
      });

      it('past the bound (requests in flight that could not go pushed it there), a begin brings it back down to it, the oldest completed keys first (before 2026-12-06 memory let one go a begin and stayed over, where Redis came down: a retry replayed on one ran again on the other)', async () => {
        const store = await make({ ttlMs: DAY, maxKeys: 2 });
        const claims: string[] = [];
        for (const [i, key] of ['a', 'b', 'c'].entries()) claims.push(((await store.begin(SCOPE, key, 'fp', T0 + i)) as { claim: string }).claim);
        for (const [i, key] of ['a', 'b', 'c'].entries()) await store.complete(SCOPE, key, claims[i] as string, CREATED);
        expect(await store.stats()).toMatchObject({ size: 3, max: 2 });
        expect(await store.begin(SCOPE, 'd', 'fp', T0 + 10)).toEqual(STARTED);
        expect(await store.stats()).toMatchObject({ size: 2, max: 2 });
        expect(await store.begin(SCOPE, 'c', 'fp', T0 + 11)).toEqual({ kind: 'replay', response: CREATED });
        expect(await store.begin(SCOPE, 'b', 'fp', T0 + 11)).toEqual(STARTED);
      });

      it('a store full of in-progress keys still starts new ones rather than drop a claim', async () => {
        const store = await make({ ttlMs: DAY, maxKeys: 2 });
        await store.begin(SCOPE, 'a', 'fp', T0);
        await store.begin(SCOPE, 'b', 'fp', T0);
        expect(await store.begin(SCOPE, 'c', 'fp', T0)).toEqual(STARTED);
        expect(await store.begin(SCOPE, 'a', 'fp', T0)).toEqual({ kind: 'in_progress' });
        expect(await store.begin(SCOPE, 'b', 'fp', T0)).toEqual({ kind: 'in_progress' });
      });

      it('stats().bytes grows with stored response bodies and shrinks when keys go', async () => {
        const store = await make({ ttlMs: HOUR, maxKeys: 100 });
        const empty = (await store.stats()).bytes;
        const k1 = claimOf(await store.begin(SCOPE, 'k1', 'fp', T0));
        const begun = (await store.stats()).bytes;
        expect(begun).toBeGreaterThan(empty);
        await store.complete(SCOPE, 'k1', k1, { statusCode: 200, body: 'x'.repeat(10_000) });
        const withBody = (await store.stats()).bytes;
        expect(withBody).toBeGreaterThanOrEqual(begun + 10_000);
        await store.release(SCOPE, 'k2', claimOf(await store.begin(SCOPE, 'k2', 'fp', T0 + 1)));
        expect((await store.stats()).bytes).toBe(withBody);
        expect(await store.sweep(T0 + 2 * HOUR)).toBe(1);
        expect(await store.stats()).toEqual({ size: 0, max: 100, bytes: empty });
      });

      it('release gives back what the key held', async () => {
        const store = await roomy();
        const empty = (await store.stats()).bytes;
        await store.release(SCOPE, 'k1', claimOf(await store.begin(SCOPE, 'k1', 'fp', T0)));
        expect(await store.stats()).toEqual({ size: 0, max: 1_000, bytes: empty });
      });
    });
  });
}
