import { describe, expect, it } from 'vitest';
import { backPath, withoutNotice } from '../../src/console/access.ts';

describe('withoutNotice', () => {
  it.each([
    ['/console/payments?notice=refund', '/console/payments'],
    ['/console/payments?status=open&notice=refund', '/console/payments?status=open'],
    ['/console/payments?notice=refund&status=open', '/console/payments?status=open'],
    ['/console/payments?notice=a&notice=b', '/console/payments'],
    ['/console/payments?notice=a&status=open&notice=b&q=x', '/console/payments?status=open&q=x'],
    ['/console/payments?renotice=a&notice=b', '/console/payments?renotice=a'],
    ['/console/payments?status=open', '/console/payments?status=open'],
    ['/console', '/console'],
  ])('%s → %s', (address, expected) => {
    expect(withoutNotice(address)).toBe(expected);
  });
});

describe('backPath', () => {
  it.each([
    ['/console/payments?status=open', '/console/payments?status=open'],
    ['/console/../admin', '/fallback'],
    ['/console/%2e%2e/admin', '/fallback'],
    ['https://elsewhere.example/console', '/fallback'],
    ['//elsewhere.example/console', '/fallback'],
    [undefined, '/fallback'],
  ])('%s → %s', (value, expected) => {
    expect(backPath(value, '/fallback')).toBe(expected);
  });
});
