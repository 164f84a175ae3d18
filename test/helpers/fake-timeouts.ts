import { vi } from 'vitest';

/**
 * Runs `work` with `setTimeout` and `clearTimeout` faked (vitest's clock: timers fire when the test
 * says, `vi.advanceTimersByTime`, `vi.runOnlyPendingTimers`), everything else real: node:timers/promises'
 * sleep, I/O and `setImmediate` go on, so a test can wait in real time for Redis while the code's
 * own timeouts wait for it. Real timers are back afterwards, however `work` ended.
 */
export async function withFakeTimeouts<T>(work: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  try {
    return await work();
  } finally {
    vi.useRealTimers();
  }
}
