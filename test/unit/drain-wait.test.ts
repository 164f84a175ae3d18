import { describe, expect, it } from 'vitest';
import { waitUntil } from '../../src/plugins/app/lifecycle.ts';

describe('waitUntil (a drainer’s wait)', () => {
  it('reads again until what is left is done, hurrying the work before each wait, and answers the last reading', async () => {
    const readings = [3, 2, 0, 7];
    const calls: string[] = [];
    const left = await waitUntil(
      5_000,
      async () => {
        const value = readings.shift() ?? -1;
        calls.push(`read ${value}`);
        return value;
      },
      (value) => value === 0,
      () => calls.push('kick'),
    );
    expect(left).toBe(0);
    expect(calls).toEqual(['read 3', 'kick', 'read 2', 'kick', 'read 0']);
  });

  it('answers at once, without waiting or hurrying, when nothing is left', async () => {
    let kicks = 0;
    const started = Date.now();
    const left = await waitUntil(
      5_000,
      async () => ({ payments: 0, events: 0 }),
      (counts) => counts.payments + counts.events === 0,
      () => kicks++,
    );
    expect([left, kicks]).toEqual([{ payments: 0, events: 0 }, 0]);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('gives up when the budget of real time runs out and answers what is still left', async () => {
    let reads = 0;
    const started = Date.now();
    const left = await waitUntil(
      60,
      async () => {
        reads++;
        return 4;
      },
      (value) => value === 0,
    );
    const took = Date.now() - started;
    expect(left).toBe(4);
    // Every 10 ms within 60 ms: a handful of readings, and no reading long after the budget.
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(reads).toBeLessThanOrEqual(8);
    expect(took).toBeGreaterThanOrEqual(55);
    expect(took).toBeLessThan(2_000);
  });
});
