import { describe, expect, it } from 'vitest';
import { WarningLimiter } from '../../src/webhooks/warning-limiter.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

/** The rate limit on webhook warnings: per key, on the injected clock, with a summary of what it left out. */

function limiter(limit = 3, intervalMs = 60_000) {
  const clock = new ManualClock();
  const summaries: Array<{ key: string; count: number; since: number }> = [];
  const l = new WarningLimiter(clock, { limit, intervalMs }, (key, count, since) => summaries.push({ key, count, since }));
  return { clock, summaries, l, t0: clock.now() };
}

describe('WarningLimiter', () => {
  it('lets `limit` warnings per key through in an interval and counts the rest', () => {
    const { l, summaries } = limiter(3);
    expect(Array.from({ length: 5 }, () => l.allow('http://a'))).toEqual([true, true, true, false, false]);
    // Another key has a budget of its own.
    expect(l.allow('http://b')).toBe(true);
    expect(summaries).toEqual([]);
  });

  it('tells the suppressed count once, when the interval ends, on the clock; then the key starts afresh', async () => {
    const { l, clock, summaries, t0 } = limiter(2, 60_000);
    l.allow('k');
    await clock.advance(10_000);
    for (let i = 0; i < 6; i++) l.allow('k');
    expect(summaries).toEqual([]);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(49_999);
    expect(summaries).toEqual([]);
    await clock.advance(1);
    expect(summaries).toEqual([{ key: 'k', count: 5, since: t0 }]);
    expect(clock.pendingTimers).toBe(0);
    expect(l.size).toBe(0);
    expect(l.allow('k')).toBe(true);
    expect(l.allow('k')).toBe(true);
    expect(l.allow('k')).toBe(false);
  });

  it('a steady flood costs at most limit + 1 lines per interval', async () => {
    const { l, clock, summaries } = limiter(10, 60_000);
    let passed = 0;
    // 10 warnings a second for 10 minutes.
    for (let i = 0; i < 6000; i++) {
      if (l.allow('http://dead')) passed++;
      await clock.advance(100);
    }
    l.flush();
    expect(passed).toBe(100);
    expect(summaries).toHaveLength(10);
    expect(passed + summaries.reduce((sum, s) => sum + s.count, 0)).toBe(6000);
  });

  it('an interval with nothing suppressed sets no timer and tells nothing', async () => {
    const { l, clock, summaries } = limiter(3);
    l.allow('k');
    l.allow('k');
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(120_000);
    expect(l.allow('k')).toBe(true);
    expect(summaries).toEqual([]);
  });

  it('flush tells what the open intervals suppressed and cancels their timers', () => {
    const { l, clock, summaries, t0 } = limiter(1);
    l.allow('a');
    l.allow('a');
    l.allow('b');
    l.flush();
    expect(summaries).toEqual([{ key: 'a', count: 1, since: t0 }]);
    expect(clock.pendingTimers).toBe(0);
    expect(l.size).toBe(0);
  });

  it('close tells what was suppressed, then lets every warning through and sets no timer (an interval would end after the process)', () => {
    const { l, clock, summaries, t0 } = limiter(0);
    expect(l.allow('a')).toBe(false);
    l.close();
    expect(summaries).toEqual([{ key: 'a', count: 1, since: t0 }]);
    expect([l.allow('a'), l.allow('a'), l.allow('b')]).toEqual([true, true, true]);
    expect(clock.pendingTimers).toBe(0);
    expect(l.size).toBe(0);
  });

  it('forgets keys whose interval ended when many keys are tracked', async () => {
    const { l, clock } = limiter(1, 1000);
    for (let i = 0; i < 1000; i++) l.allow(`http://host-${i}`);
    expect(l.size).toBe(1000);
    await clock.advance(1000);
    l.allow('http://new');
    expect(l.size).toBe(1);
  });
});
