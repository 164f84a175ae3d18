import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import { LATE_SETTLE_FIRST_MS, LATE_SETTLES_MAX } from '../../src/http/late-settles.ts';
import { buildTestApp, storedIntents, type TestApp } from '../helpers/app.ts';

/*
 * A request whose Idempotency-Key was taken just before the store went away (Redis), and that
 * ended while it was away, could not settle its key: the key stayed begun, and the client's retry
 * with it, which the 503 asks for, was refused 409 IDEMPOTENCY_KEY_IN_USE for the key's whole TTL
 * (24 h). The settle is now tried again until the store takes it.
 */
let t: TestApp;
let logs: Array<Record<string, unknown>>;
beforeEach(async () => {
  logs = [];
  t = await buildTestApp({}, { logs });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await t.app.close();
});

const body = { reservation_id: 'res_late', amount: 900 };

function create(key: string) {
  return t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: body, headers: { 'idempotency-key': key } });
}

/** Every call of `method` of the app's idempotency store refused as an unreachable store, while `away()`. */
function refusedWhile(method: 'complete' | 'release', away: () => boolean): { calls: number } {
  const store = t.app.core.stores.idempotency;
  const real = store[method].bind(store) as (...args: unknown[]) => Promise<void>;
  const seen = { calls: 0 };
  vi.spyOn(store, method).mockImplementation((...args: unknown[]) => {
    seen.calls++;
    return away() ? Promise.reject(new StoreUnavailableError()) : real(...args);
  });
  return seen;
}

describe('an Idempotency-Key the store could not settle (Redis away as the request ended)', () => {
  it('a 5xx’s release is tried again until the store takes it; the client’s retry is then run, not refused 409 for the key’s TTL', async () => {
    let away = true;
    const intents = t.app.core.stores.intents;
    const insert = intents.insertScheduled === undefined ? 'insert' : 'insertScheduled';
    const inserts = vi.spyOn(intents, insert).mockImplementation(() => (away ? Promise.reject(new StoreUnavailableError()) : Promise.reject(new Error('not this test’s call'))));
    const releases = refusedWhile('release', () => away);

    const failed = await create('late-1');
    expect([failed.statusCode, failed.json().error.code, failed.headers['retry-after']]).toEqual([503, 'STORE_UNAVAILABLE', expect.any(String)]);
    expect(releases.calls).toBe(1);
    // In the store's words, without a stack (before 2026-12-08 its err, with the stack).
    expect(logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('the Idempotency-Key could not be settled')).map(({ level, redis_error, err, msg }) => ({ level, redis_error, err, msg }))).toEqual([
      { level: 'warn', redis_error: 'The store is unavailable; retry shortly.', err: undefined, msg: 'the Idempotency-Key could not be settled: the store is unavailable; it is tried again until it can be' },
    ]);
    // Still away: the key is begun, and tries go on, at 250 ms, then 500 ms, 1 s later.
    expect((await create('late-1')).json().error.code).toBe('IDEMPOTENCY_KEY_IN_USE');
    await t.clock.advance(LATE_SETTLE_FIRST_MS + 500 + 1000);
    expect(releases.calls).toBe(4);
    expect(t.app.core.lateSettles.pending).toBe(1);

    // Back: the next try releases the key, and the client's retry runs the operation.
    away = false;
    inserts.mockRestore();
    await t.clock.advance(2000);
    expect(releases.calls).toBe(5);
    expect(t.app.core.lateSettles.pending).toBe(0);
    const retried = await create('late-1');
    expect(retried.statusCode).toBe(200);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    expect(await storedIntents(t)).toBe(1);
  });

  it('an answer the store could not take is stored once it can: the client’s retry gets it replayed, no second intent', async () => {
    let away = true;
    const completes = refusedWhile('complete', () => away);
    const first = await create('late-2');
    expect(first.statusCode).toBe(200);
    expect(completes.calls).toBe(1);
    away = false;
    await t.clock.advance(LATE_SETTLE_FIRST_MS);
    expect(completes.calls).toBe(2);
    const again = await create('late-2');
    expect([again.statusCode, again.body, again.headers['idempotent-replayed']]).toEqual([200, first.body, 'true']);
    expect(await storedIntents(t)).toBe(1);
  });

  it('a settle that fails otherwise is not tried again, and one still waiting when the app closes is dropped', async () => {
    const store = t.app.core.stores.idempotency;
    vi.spyOn(store, 'complete').mockRejectedValueOnce(new Error('a bug in the store'));
    expect((await create('late-3')).statusCode).toBe(200);
    expect(t.app.core.lateSettles.pending).toBe(0);
    expect(logs.filter((l) => l.msg === 'the Idempotency-Key could not be settled in the store').map((l) => l.level)).toEqual(['error']);

    const completes = refusedWhile('complete', () => true);
    expect((await create('late-4')).statusCode).toBe(200);
    expect(t.app.core.lateSettles.pending).toBe(1);
    await t.app.close();
    expect(t.app.core.lateSettles.pending).toBe(0);
    await t.clock.advance(60_000);
    expect(completes.calls).toBe(1);
  });

  it('a settle that cannot wait (LATE_SETTLES_MAX already wait) is given up at the store: its claim no longer counts as running here', async () => {
    const store = t.app.core.stores.idempotency;
    const running = () => ('running' in store ? (store.running as number) : 0);
    for (let i = 0; i < LATE_SETTLES_MAX; i++) t.app.core.lateSettles.add(() => Promise.reject(new StoreUnavailableError()));
    const abandoned = vi.spyOn(store, 'abandon');
    const begins = vi.spyOn(store, 'begin');
    refusedWhile('complete', () => true);
    expect((await create('late-5')).statusCode).toBe(200);
    const begun = (await begins.mock.results[0]?.value) as { kind: string; claim: string };
    expect(begun).toEqual({ kind: 'started', claim: expect.any(String) });
    expect(abandoned.mock.calls).toEqual([[begun.claim]]);
    expect([t.app.core.lateSettles.pending, running()]).toEqual([LATE_SETTLES_MAX, 0]);
    expect(logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('Idempotency-Key')).map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'an Idempotency-Key the store could not settle is not tried again: too many wait; it stays begun until its TTL, or with Redis until this replica’s mark of life lapses'],
      ['error', 'the Idempotency-Key could not be settled in the store'],
    ]);
  });
});
