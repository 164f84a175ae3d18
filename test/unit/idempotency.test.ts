import { describe, expect, it } from 'vitest';
import { fingerprint, IdempotencyStore } from '../../src/core/idempotency.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

const SCOPE = 'POST /v1/payment-intents';
const FP = fingerprint({ amount: 1000, currency: 'EUR' });
const OTHER_FP = fingerprint({ amount: 1001, currency: 'EUR' });
const RESPONSE = { statusCode: 201, body: '{"id":"pay_1"}' };

function store(options: { ttlMs?: number; maxKeys?: number } = {}) {
  const clock = new ManualClock();
  const idem = new IdempotencyStore({ clock, ttlMs: options.ttlMs ?? 60_000, maxKeys: options.maxKeys ?? 1000 });
  return { clock, idem };
}

describe('fingerprint', () => {
  it('ignores key order, at every depth', () => {
    expect(fingerprint({ a: 1, b: { c: [1, 2], d: 'x' } })).toBe(fingerprint({ b: { d: 'x', c: [1, 2] }, a: 1 }));
  });

  it('is equal for a parsed body whatever its original whitespace', () => {
    expect(fingerprint(JSON.parse('{ "amount" : 1000 ,\n "currency":"EUR" }'))).toBe(fingerprint(JSON.parse('{"currency":"EUR","amount":1000}')));
  });

  it('is equal for equivalent number spellings (RFC 8785)', () => {
    expect(fingerprint(JSON.parse('{"a":1.0}'))).toBe(fingerprint({ a: 1 }));
    expect(fingerprint(JSON.parse('{"a":1e3}'))).toBe(fingerprint({ a: 1000 }));
  });

  it('differs for different values, types, array order or extra keys', () => {
    const base = fingerprint({ amount: 1000, currency: 'EUR' });
    const variants = [
      { amount: 1001, currency: 'EUR' },
      { amount: '1000', currency: 'EUR' },
      { amount: 1000, currency: 'eur' },
      { amount: 1000 },
      { amount: 1000, currency: 'EUR', extra: null },
      [1000, 'EUR'],
      null,
    ];
    const prints = variants.map(fingerprint);
    for (const p of prints) expect(p).not.toBe(base);
    expect(new Set(prints).size).toBe(variants.length);
    expect(fingerprint([1, 2])).not.toBe(fingerprint([2, 1]));
  });

  it('is a base64url SHA-256 (43 chars) and stable across calls', () => {
    expect(FP).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fingerprint({ currency: 'EUR', amount: 1000 })).toBe(FP);
  });

  it('treats a missing body as null', () => {
    expect(fingerprint(undefined)).toBe(fingerprint(null));
    expect(fingerprint(undefined)).not.toBe(fingerprint({}));
  });
});

describe('IdempotencyStore', () => {
  it('first begin → started', () => {
    const { idem } = store();
    expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'started' });
    expect(idem.size).toBe(1);
  });

  it('same key and fingerprint before complete → in_progress', () => {
    const { idem } = store();
    idem.begin(SCOPE, 'k1', FP);
    expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'in_progress' });
    expect(idem.size).toBe(1);
  });

  it('a different fingerprint → mismatch, while in progress and after completion', () => {
    const { idem } = store();
    idem.begin(SCOPE, 'k1', FP);
    expect(idem.begin(SCOPE, 'k1', OTHER_FP)).toEqual({ kind: 'mismatch' });
    idem.complete(SCOPE, 'k1', RESPONSE);
    expect(idem.begin(SCOPE, 'k1', OTHER_FP)).toEqual({ kind: 'mismatch' });
    // The mismatch did not overwrite the stored entry.
    expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'replay', response: RESPONSE });
  });

  it('after complete → replay with the stored response, every time', () => {
    const { idem } = store();
    idem.begin(SCOPE, 'k1', FP);
    idem.complete(SCOPE, 'k1', { statusCode: 201, body: '{"id":"pay_1"}' });
    expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'replay', response: { statusCode: 201, body: '{"id":"pay_1"}' } });
    expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'replay', response: { statusCode: 201, body: '{"id":"pay_1"}' } });
  });

  it('stores 4xx responses too', () => {
    const { idem } = store();
    idem.begin(SCOPE, 'k1', FP);
    idem.complete(SCOPE, 'k1', { statusCode: 409, body: '{"code":"INVALID_STATE"}' });
    expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'replay', response: { statusCode: 409, body: '{"code":"INVALID_STATE"}' } });
  });

  it('complete of an unknown key is ignored', () => {
    const { idem } = store();
    idem.complete(SCOPE, 'never-begun', RESPONSE);
    expect(idem.size).toBe(0);
    expect(idem.begin(SCOPE, 'never-begun', FP)).toEqual({ kind: 'started' });
  });

  it('release forgets an unfinished entry so the request can run again', () => {
    const { idem } = store();
    idem.begin(SCOPE, 'k1', FP);
    idem.release(SCOPE, 'k1');
    expect(idem.size).toBe(0);
    expect(idem.begin(SCOPE, 'k1', OTHER_FP)).toEqual({ kind: 'started' });
  });

  it('release leaves a completed entry in place', () => {
    const { idem } = store();
    idem.begin(SCOPE, 'k1', FP);
    idem.complete(SCOPE, 'k1', RESPONSE);
    idem.release(SCOPE, 'k1');
    expect(idem.size).toBe(1);
    expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'replay', response: RESPONSE });
  });

  it('release of an unknown key does nothing', () => {
    const { idem } = store();
    idem.begin(SCOPE, 'k1', FP);
    idem.release(SCOPE, 'k2');
    idem.release('GET /x', 'k1');
    expect(idem.size).toBe(1);
    expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'in_progress' });
  });

  it('scopes separate equal keys', () => {
    const { idem } = store();
    expect(idem.begin('POST /v1/payment-intents', 'same', FP)).toEqual({ kind: 'started' });
    expect(idem.begin('POST /v1/payment-intents/:id/refund', 'same', OTHER_FP)).toEqual({ kind: 'started' });
    idem.complete('POST /v1/payment-intents', 'same', RESPONSE);
    expect(idem.begin('POST /v1/payment-intents/:id/refund', 'same', OTHER_FP)).toEqual({ kind: 'in_progress' });
    expect(idem.begin('POST /v1/payment-intents', 'same', FP)).toEqual({ kind: 'replay', response: RESPONSE });
    expect(idem.size).toBe(2);
  });

  it('keys are case-sensitive', () => {
    const { idem } = store();
    idem.begin(SCOPE, 'Key', FP);
    expect(idem.begin(SCOPE, 'key', OTHER_FP)).toEqual({ kind: 'started' });
  });

  describe('TTL', () => {
    it('a completed entry replays until ttlMs, then the key starts afresh', () => {
      const { clock, idem } = store({ ttlMs: 60_000 });
      idem.begin(SCOPE, 'k1', FP);
      idem.complete(SCOPE, 'k1', RESPONSE);
      clock.advance(59_999);
      expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'replay', response: RESPONSE });
      clock.advance(1);
      expect(idem.begin(SCOPE, 'k1', OTHER_FP)).toEqual({ kind: 'started' });
      expect(idem.size).toBe(1);
    });

    it('an in-progress entry also expires', () => {
      const { clock, idem } = store({ ttlMs: 1000 });
      idem.begin(SCOPE, 'k1', FP);
      clock.advance(1000);
      expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'started' });
    });

    it('the TTL counts from begin, not from complete', () => {
      const { clock, idem } = store({ ttlMs: 1000 });
      idem.begin(SCOPE, 'k1', FP);
      clock.advance(900);
      idem.complete(SCOPE, 'k1', RESPONSE);
      clock.advance(100);
      expect(idem.begin(SCOPE, 'k1', FP)).toEqual({ kind: 'started' });
    });

    it('sweep(now) drops expired entries, oldest first, and returns the count', () => {
      const { clock, idem } = store({ ttlMs: 1000 });
      idem.begin(SCOPE, 'a', FP);
      clock.advance(300);
      idem.begin(SCOPE, 'b', FP);
      clock.advance(300);
      idem.begin(SCOPE, 'c', FP);
      // now = start + 600; a expires at start + 1000, b at start + 1300, c at start + 1600
      expect(idem.sweep(clock.now() + 399)).toBe(0);
      expect(idem.sweep(clock.now() + 400)).toBe(1); // a
      expect(idem.sweep(clock.now() + 699)).toBe(0);
      expect(idem.sweep(clock.now() + 700)).toBe(1); // b
      expect(idem.size).toBe(1);
      expect(idem.begin(SCOPE, 'c', FP)).toEqual({ kind: 'in_progress' });
    });

    it('begin sweeps other expired keys too', () => {
      const { clock, idem } = store({ ttlMs: 1000 });
      idem.begin(SCOPE, 'a', FP);
      idem.begin(SCOPE, 'b', FP);
      clock.advance(1000);
      idem.begin(SCOPE, 'c', FP);
      expect(idem.size).toBe(1);
    });

    it('a released and re-begun key gets a fresh TTL', () => {
      const { clock, idem } = store({ ttlMs: 1000 });
      idem.begin(SCOPE, 'a', FP);
      clock.advance(500);
      idem.begin(SCOPE, 'b', FP);
      idem.release(SCOPE, 'a');
      idem.begin(SCOPE, 'a', FP);
      clock.advance(999);
      // now = 1499: the first `a` (begun at 0) would have expired at 1000; the new one lives to 1500
      expect(idem.begin(SCOPE, 'a', FP)).toEqual({ kind: 'in_progress' });
      clock.advance(1);
      expect(idem.begin(SCOPE, 'a', FP)).toEqual({ kind: 'started' });
    });
  });

  describe('maxKeys', () => {
    it('evicts the oldest completed entry when full', () => {
      const { clock, idem } = store({ maxKeys: 3 });
      for (const key of ['a', 'b', 'c']) {
        idem.begin(SCOPE, key, FP);
        idem.complete(SCOPE, key, { statusCode: 201, body: key });
        clock.advance(1);
      }
      expect(idem.begin(SCOPE, 'd', FP)).toEqual({ kind: 'started' });
      expect(idem.size).toBe(3);
      expect(idem.begin(SCOPE, 'a', OTHER_FP)).toEqual({ kind: 'started' }); // a was evicted (this evicts b)
      expect(idem.begin(SCOPE, 'c', FP)).toEqual({ kind: 'replay', response: { statusCode: 201, body: 'c' } });
      expect(idem.begin(SCOPE, 'd', FP)).toEqual({ kind: 'in_progress' });
      expect(idem.size).toBe(3);
    });

    it('skips in-progress entries when evicting', () => {
      const { idem } = store({ maxKeys: 3 });
      idem.begin(SCOPE, 'running', FP);
      idem.begin(SCOPE, 'done1', FP);
      idem.complete(SCOPE, 'done1', RESPONSE);
      idem.begin(SCOPE, 'done2', FP);
      idem.complete(SCOPE, 'done2', RESPONSE);

      expect(idem.begin(SCOPE, 'new', FP)).toEqual({ kind: 'started' });
      expect(idem.size).toBe(3);
      expect(idem.begin(SCOPE, 'running', FP)).toEqual({ kind: 'in_progress' });
      expect(idem.begin(SCOPE, 'done2', FP)).toEqual({ kind: 'replay', response: RESPONSE });
      expect(idem.begin(SCOPE, 'done1', OTHER_FP)).toEqual({ kind: 'started' }); // was evicted
    });

    it('a begin on an existing key never evicts', () => {
      const { idem } = store({ maxKeys: 2 });
      idem.begin(SCOPE, 'a', FP);
      idem.complete(SCOPE, 'a', RESPONSE);
      idem.begin(SCOPE, 'b', FP);
      idem.complete(SCOPE, 'b', RESPONSE);
      expect(idem.begin(SCOPE, 'b', FP)).toEqual({ kind: 'replay', response: RESPONSE });
      expect(idem.begin(SCOPE, 'a', FP)).toEqual({ kind: 'replay', response: RESPONSE });
      expect(idem.size).toBe(2);
    });
  });
});
