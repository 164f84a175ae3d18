import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/webhooks/token-bucket.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

describe('TokenBucket', () => {
  it('starts full, then serves waiters in order at the rate, with a single timer', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(clock, 10, 2);
    const served: number[] = [];
    for (let i = 0; i < 6; i++) void bucket.take().then(() => served.push(i));
    await settle();
    expect(served).toEqual([0, 1]);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(99);
    await settle();
    expect(served).toEqual([0, 1]);
    await clock.advance(1);
    await settle();
    expect(served).toEqual([0, 1, 2]);
    await clock.advance(300);
    await settle();
    expect(served).toEqual([0, 1, 2, 3, 4, 5]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('never holds more than its capacity after an idle spell', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(clock, 100, 3);
    await clock.advance(60_000);
    const served: number[] = [];
    for (let i = 0; i < 5; i++) void bucket.take().then(() => served.push(i));
    await settle();
    expect(served).toEqual([0, 1, 2]);
  });

  it('releaseAll frees every waiter and cancels its timer', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(clock, 1, 1);
    const served: number[] = [];
    for (let i = 0; i < 4; i++) void bucket.take().then(() => served.push(i));
    await settle();
    bucket.releaseAll();
    await settle();
    expect(served).toEqual([0, 1, 2, 3]);
    expect(clock.pendingTimers).toBe(0);
  });
});
