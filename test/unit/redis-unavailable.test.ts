import { describe, expect, it } from 'vitest';
import { asStoreError, isRedisUnavailable, RedisNotServingError, UNAVAILABLE_LOG_INTERVAL_MS, unavailableAsStoreError, unavailableLog } from '../../src/adapters/redis/unavailable.ts';
import { ShuttingDownError, StoreUnavailableError, storeCallMayHaveRun, unavailableReason } from '../../src/core/errors.ts';

/** The one place where Redis' connection failures become STORE_UNAVAILABLE. @see issue 14 "Redis unavailable" */

/** An error as ioredis gives it up: by name, by socket code, or by its message. */
function named(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}
function coded(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code });
}

describe('isRedisUnavailable', () => {
  it.each([
    ['MaxRetriesPerRequestError', named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 2). Refer to "maxRetriesPerRequest" option for details.')],
    ['the connection closed', new Error('Connection is closed.')],
    ['ECONNREFUSED', coded('ECONNREFUSED')],
    ['ECONNRESET', coded('ECONNRESET')],
    ['ETIMEDOUT', coded('ETIMEDOUT')],
    ['offline queue off', new Error("Stream isn't writeable and enableOfflineQueue options is false")],
    ['Redis loading its AOF', named('ReplyError', 'LOADING Redis is loading the dataset in memory')],
    ['no reply within commandTimeout (Redis silent)', new Error('Command timed out')],
    ['not sent: Redis known silent or unreachable', new RedisNotServingError('Redis at redis://127.0.0.1:6379 has not answered for 2 s')],
    // The calls ioredis held, rejected with its reconnect's refusal of the credentials (rev78a: 500 INTERNAL before).
    ['a reconnect refused the password (its handshake)', named('ReplyError', 'WRONGPASS invalid username-password pair or user is disabled.')],
    ['a reconnect asked for a password (its ready check)', new Error('Ready check failed: NOAUTH Authentication required.')],
  ])('%s: unavailable', (_what, error) => {
    expect(isRedisUnavailable(error)).toBe(true);
  });

  it.each([
    ['a Lua error', named('ReplyError', 'ERR user_script:3: attempt to compare nil with number')],
    ['a wrong type', named('ReplyError', 'WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a reply that only begins like a time-out', named('ReplyError', 'Command timed out while waiting for the lock')],
    ['not an error', 'ECONNREFUSED'],
  ])('%s: passes unchanged', (_what, error) => {
    expect(isRedisUnavailable(error)).toBe(false);
  });
});

describe('whether a call Redis could not answer may have run (StoreUnavailableError.mayHaveRun)', () => {
  it.each([
    ['written and then the connection lost (ioredis gave up after its reconnects)', named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 2). Refer to "maxRetriesPerRequest" option for details.'), true],
    ['written and unanswered within commandTimeout', new Error('Command timed out'), true],
    ['the connection closed under it', new Error('Connection is closed.'), true],
    ['the rest of an auto-pipelined batch whose connection closed after some replies (written: some ran, a review)', named('AbortError', 'Command aborted due to connection close'), true],
    ['written and unanswered when Redis was found silent', new RedisNotServingError('Redis at redis://127.0.0.1:6379 has not answered for 2 s', { sent: true }), true],
    ['not sent: Redis known silent or unreachable', new RedisNotServingError('Redis at redis://127.0.0.1:6379 has not answered for 2 s'), false],
    ['queued for a connection and given up unwritten', new RedisNotServingError('Reached the max retries per request limit (which is 2).', { cause: named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 2).') }), false],
    ['refused by Redis loading its AOF', named('ReplyError', 'LOADING Redis is loading the dataset in memory'), false],
    ['refused by a full Redis', named('ReplyError', "OOM command not allowed when used memory > 'maxmemory'."), false],
    ['refused by a replica', named('ReplyError', "READONLY You can't write against a read only replica."), false],
    // Written before the connection was lost, and sent again at the reconnect whose credentials were refused.
    ['written, then held for a reconnect that refused the password', named('ReplyError', 'WRONGPASS invalid username-password pair or user is disabled.'), true],
  ])('%s: %s', (_what, error, expected) => {
    const stored = asStoreError(error);
    expect(stored).toBeInstanceOf(StoreUnavailableError);
    expect([(stored as StoreUnavailableError).mayHaveRun, storeCallMayHaveRun(stored), storeCallMayHaveRun(new Error('wrapped', { cause: stored }))]).toEqual([expected, expected, expected]);
  });

  it('another error, and a StoreUnavailableError made without saying, did not', () => {
    expect([storeCallMayHaveRun(new Error('ERR')), storeCallMayHaveRun(new StoreUnavailableError()), storeCallMayHaveRun(undefined)]).toEqual([false, false, false]);
  });
});

describe('unavailableAsStoreError', () => {
  class Store {
    #calls = 0;
    readonly label = 'store';
    async get(fail?: Error): Promise<number> {
      this.#calls++;
      if (fail !== undefined) throw fail;
      return this.#calls;
    }
    count(): number {
      return this.#calls;
    }
  }

  it('keeps results and the adapter’s own `this` (private fields), and non-function properties', async () => {
    const guarded = unavailableAsStoreError(new Store());
    expect(await guarded.get()).toBe(1);
    expect(await guarded.get()).toBe(2);
    expect(guarded.count()).toBe(2);
    expect(guarded.label).toBe('store');
    expect(guarded.get).toBe(guarded.get);
  });

  it('turns a connection failure into StoreUnavailableError (STORE_UNAVAILABLE) with the cause, and leaves other errors as they are', async () => {
    const guarded = unavailableAsStoreError(new Store());
    const closed = new Error('Connection is closed.');
    const rejected = await guarded.get(closed).catch((error: unknown) => error);
    expect(rejected).toBeInstanceOf(StoreUnavailableError);
    expect(rejected).toMatchObject({ code: 'STORE_UNAVAILABLE', message: 'The store is unavailable; retry shortly.', cause: closed });
    const bug = new TypeError('a bug');
    await expect(guarded.get(bug)).rejects.toBe(bug);
  });

  it('calls a method replaced on the store after its first use (as the store alone would), and the original again once put back', async () => {
    const guarded = unavailableAsStoreError(new Store());
    expect(await guarded.get()).toBe(1);
    const original = guarded.get;
    guarded.get = () => Promise.reject(new Error('Connection is closed.'));
    await expect(guarded.get()).rejects.toBeInstanceOf(StoreUnavailableError);
    guarded.get = original;
    expect(await guarded.get()).toBe(2);
  });
});

describe('unavailableLog (the webhook dispatcher’s and the outbox relay’s lines while Redis is unavailable)', () => {
  const notSent = (): StoreUnavailableError =>
    new StoreUnavailableError({ cause: new RedisNotServingError('Redis at redis://127.0.0.1:6379 did not take the command: not sent', { cause: named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 2).') }) });

  it("tells the first failure at once and those after it, within the interval, at the flush with their count, in Redis' words without a stack; another error is left to the caller", () => {
    const lines: Array<[string, Record<string, unknown>, string]> = [];
    const log = { warn: (fields: Record<string, unknown>, msg: string) => void lines.push(['warn', fields, msg]) };
    let now = 0;
    const timers: Array<() => void> = [];
    const unavailable = unavailableLog(log as never, (n) => `${n} more since the last line`, () => now, (fn) => void timers.push(fn));
    expect(unavailable(notSent(), 'reading failed: the store is unavailable', { what: 'read' })).toBe(true);
    now = 1_000;
    expect(unavailable(coded('ECONNREFUSED'), 'writing failed: the store is unavailable')).toBe(true);
    expect(unavailable(new Error('ERR Error running script'), 'a bug')).toBe(false);
    unavailable.flush();
    expect(lines).toEqual([
      ['warn', { what: 'read', failed: 1, redis_error: 'Redis at redis://127.0.0.1:6379 did not take the command: not sent: Reached the max retries per request limit (which is 2).' }, 'reading failed: the store is unavailable'],
      ['warn', { failed: 1, redis_error: 'connect ECONNREFUSED 127.0.0.1:6379' }, '1 more since the last line'],
    ]);
    // Past the interval, the next failure is a line of its own again.
    now = UNAVAILABLE_LOG_INTERVAL_MS + 1_000;
    unavailable(notSent(), 'reading failed: the store is unavailable');
    expect(lines.length).toBe(3);
  });

  it('unavailableReason leaves out the guard’s own words; a ShuttingDownError keeps its', () => {
    expect(unavailableReason(new StoreUnavailableError({ cause: coded('ECONNRESET') }))).toBe('connect ECONNRESET 127.0.0.1:6379');
    expect(unavailableReason(new ShuttingDownError())).toBe('The simulator is shutting down; retry on another instance.');
  });
});
