import { describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/core/idempotency.ts';

/** Body fingerprints (RFC 8785). What every idempotency store must do is the idempotency contract suite's (test/adapters). */

const FP = fingerprint({ amount: 1000, currency: 'EUR' });

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
