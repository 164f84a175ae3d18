import { describe, expect, it } from 'vitest';
import { CountingThrottle } from '../../src/log-throttle.ts';
import { STORE_FULL_LOG_INTERVAL_MS, storeFullLog } from '../../src/plugins/app/error-shapes.ts';

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

describe('storeFullLog', () => {
  it('warns of each full store at once, then once per STORE_FULL_LOG_INTERVAL_MS with the refusals since; other problems say nothing', () => {
    let now = 0;
    const lines: unknown[][] = [];
    const log = { warn: (fields: object, message: string) => lines.push([fields, message]) } as unknown as Parameters<typeof storeFullLog>[0];
    const tell = storeFullLog(log, () => now);
    const full = (store: string) => ({ status: 503, code: 'STORE_FULL', message: `${store} is full.`, store });
    tell(full('intents'));
    tell(full('intents'));
    tell(full('bookings'));
    tell({ status: 404, code: 'NOT_FOUND', message: 'No.' });
    now += STORE_FULL_LOG_INTERVAL_MS;
    tell(full('intents'));
    expect(lines).toEqual([
      [{ store: 'intents', refused: 1 }, 'the intents store is full: requests answer 503 STORE_FULL. intents is full.'],
      [{ store: 'bookings', refused: 1 }, 'the bookings store is full: requests answer 503 STORE_FULL. bookings is full.'],
      [{ store: 'intents', refused: 2 }, 'the intents store is full: requests answer 503 STORE_FULL. intents is full.'],
    ]);
  });
});
