import { describe, expect, it } from 'vitest';
import { periodEnd, periodStart, parsePeriod } from '../../src/core/subscriptions/period.ts';
import { scaled } from '../../src/core/time-scale.ts';

/** @see issue 15 "Load-test controls" (TIME_SCALE) */

describe('scaled', () => {
  it('multiplies and rounds to whole ms; a positive duration stays ≥ 1 ms; 0 stays 0; scale 1 changes nothing', () => {
    expect([scaled(600_000, 0.01), scaled(3000, 0.01), scaled(149, 0.01), scaled(150, 0.01), scaled(1, 0.001), scaled(0, 0.01)]).toEqual([6000, 30, 1, 2, 1, 0]);
    expect([scaled(1000, 1000), scaled(1234, 1), scaled(0, 1000)]).toEqual([1_000_000, 1234, 0]);
  });
});

describe('periodEnd with a TIME_SCALE', () => {
  const JAN_31 = Date.UTC(2026, 0, 31);
  const DAY = 86_400_000;
  it('scales the calendar’s time from the anchor: P1M from January 31 is 28 days (to February 28), × 0.5 = 14 days', () => {
    const month = parsePeriod('P1M');
    expect(periodEnd(JAN_31, month, 0)).toBe(Date.UTC(2026, 1, 28));
    expect(periodEnd(JAN_31, month, 0, 0.5)).toBe(JAN_31 + 14 * DAY);
    // Period 2 ends March 31 (59 days): 29.5 days, counted from the anchor, never from the previous end.
    expect(periodEnd(JAN_31, month, 1, 0.5)).toBe(JAN_31 + 29.5 * DAY);
    expect(periodStart(JAN_31, month, 1, 0.5)).toBe(JAN_31 + 14 * DAY);
    expect(periodEnd(JAN_31, parsePeriod('PT1S'), 0, 0.001)).toBe(JAN_31 + 1);
  });
});
