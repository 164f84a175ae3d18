import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.ts';

/** The system clock's timers (src/core/clock.ts). */
describe('systemClock.schedule', () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  afterEach(() => {
    process.off('warning', onWarning);
    warnings.length = 0;
  });

  it('a delay beyond a Node timer’s 2^31 − 1 ms (a monthly renewal) waits that bound, without a TimeoutOverflowWarning (before, it fired after 1 ms, every millisecond for the scheduler)', async () => {
    process.on('warning', onWarning);
    let fired = 0;
    const month = 31 * 86_400_000;
    expect(month).toBeGreaterThan(2 ** 31 - 1);
    const timer = systemClock.schedule(month, () => void fired++);
    await new Promise((resolve) => setTimeout(resolve, 50));
    timer.cancel();
    expect([fired, warnings.map((w) => w.name)]).toEqual([0, []]);
  });

  it('a short delay fires once, and a cancelled one never', async () => {
    let fired = 0;
    systemClock.schedule(5, () => void fired++);
    systemClock.schedule(5, () => void (fired += 10)).cancel();
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(fired).toBe(1);
  });
});
