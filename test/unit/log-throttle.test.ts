import { describe, expect, it } from 'vitest';
import { CountingThrottle } from '../../src/log-throttle.ts';

describe('CountingThrottle', () => {
  it('answers the first occurrence at once, then at most once per interval with how many came since the last answer', () => {
    let now = 1_000;
    const throttle = new CountingThrottle(10_000, () => now);
    expect(throttle.take()).toBe(1);
    expect([throttle.take(), throttle.take()]).toEqual([undefined, undefined]);
    now += 9_999;
    expect(throttle.take()).toBeUndefined();
    now += 1;
    expect(throttle.take()).toBe(4);
    now += 60_000;
    expect(throttle.take()).toBe(1);
  });
});
